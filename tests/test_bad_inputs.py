"""Malformed inputs are refused cleanly: exit status 2, one message naming file/row/column.

The catalogue ``tests/data/bad/*.csv`` is described in ``tests/data/bad/README.md``. Each file
goes through ``bayesmtor pool`` in-process (``cli.main``; frequentist and ``--bayes``) and through
the Python API; one subprocess run proves that the real entry point shows no traceback either.
The malformed plans of ``tests/data/bad/plans`` go through ``load_plan`` and ``bayesmtor run``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from bayesmtor import cli, frequentist
from bayesmtor.errors import BayesMTORError, EstimationError, InputError, PlanError
from bayesmtor.exact import exact_posterior
from bayesmtor.inputs import read_meta_data

BAD_DIR = Path(__file__).resolve().parent / "data" / "bad"
PLAN_DIR = BAD_DIR / "plans"


@dataclass(frozen=True)
class Bad:
    """Expected refusal of one catalogue file."""

    measure: str
    error: type[BayesMTORError] = InputError
    row: int | None = None
    column: str | None = None
    text: str = ""  # a fragment the message must contain (case-insensitive)


CATALOGUE: dict[str, Bad] = {
    "counts_negative_events.csv": Bad("RR", row=2, column="events_trt", text="negative"),
    "counts_noninteger_total.csv": Bad("RR", row=1, column="n_trt", text="whole number"),
    "counts_events_exceed_total.csv": Bad("RR", row=3, column="events_ctl", text="exceed"),
    "counts_zero_total.csv": Bad("RR", row=1, column="n_trt", text="0 participants"),
    "counts_nan_cell.csv": Bad("RR", row=2, column="events_ctl", text="missing"),
    "counts_empty_cell.csv": Bad("RR", row=1, column="n_trt", text="empty"),
    "counts_text_in_numeric.csv": Bad("RR", row=2, column="events_trt", text="twelve"),
    "counts_inf.csv": Bad("RR", row=2, column="n_trt", text="finite"),
    "counts_percent_sign.csv": Bad("RR", row=1, column="events_trt", text="12%"),
    "counts_thousands_separator.csv": Bad("RR", row=1, column="n_trt", text="1,024"),
    "counts_boolean_text.csv": Bad("RR", row=2, column="events_ctl", text="TRUE"),
    "counts_overflow.csv": Bad("RR", row=2, column="n_trt", text="too large"),
    "counts_missing_column.csv": Bad("RR", column="n_ctl", text="missing"),
    "counts_misspelled_column.csv": Bad("RR", column="evnts_trt", text="did you mean"),
    "counts_duplicate_study.csv": Bad("RR", row=3, column="study", text="duplicate"),
    "counts_empty_study_label.csv": Bad("RR", row=2, column="study", text="empty study label"),
    "counts_duplicate_column.csv": Bad("RR", column="n_trt", text="both mean"),
    "counts_all_double_zero.csv": Bad("OR", error=EstimationError, text="no events"),
    "counts_with_hr_measure.csv": Bad("HR", column="measure", text="HR"),
    "ratio_with_rd_measure.csv": Bad("RD", column="measure", text="RD"),
    "ratio_zero_estimate.csv": Bad("HR", row=2, column="estimate", text="not positive"),
    "ratio_negative_ci_low.csv": Bad("HR", row=1, column="ci_low", text="not positive"),
    "ratio_ci_excludes_estimate.csv": Bad("HR", row=2, column="estimate", text="outside"),
    "ratio_lower_ge_upper.csv": Bad("HR", row=2, column="ci_low", text="not below"),
    "ratio_one_bound_missing.csv": Bad("HR", row=1, column="ci_high", text="one CI bound"),
    "ratio_inf_estimate.csv": Bad("HR", row=1, column="estimate", text="finite"),
    "decimal_comma.csv": Bad("HR", row=1, column="estimate", text="0,80"),
    "logse_zero_se.csv": Bad("HR", row=2, column="sei", text="not positive"),
    "logse_negative_se.csv": Bad("HR", row=1, column="sei", text="not positive"),
    "logse_nan_yi.csv": Bad("HR", row=2, column="yi", text="missing"),
    "logse_neg_inf_yi.csv": Bad("HR", row=2, column="yi", text="finite"),
    "empty_file.csv": Bad("RR", text="empty"),
    "blank_lines_only.csv": Bad("RR", text="empty"),
    "comments_only.csv": Bad("RR", text="empty"),
    "header_only.csv": Bad("RR", text="no data rows"),
    "mixed_shapes.csv": Bad("RR", text="more than one input shape"),
    "no_study_column.csv": Bad("RR", column="study", text="not found"),
    "no_value_columns.csv": Bad("RR", text="no recognised value columns"),
    "semicolon_delimiter.csv": Bad("RR", column="study", text="separated by ';'"),
    "tab_delimiter.csv": Bad("RR", column="study", text="separated by a tab"),
    "unbalanced_quote.csv": Bad("RR", text="cannot parse"),
    "ragged_row.csv": Bad("RR", text="line 3"),
    "trailing_comma_header.csv": Bad("RR", text="no header"),
    "latin1_encoded.csv": Bad("RR", text="UTF-8"),
    "utf16_encoded.csv": Bad("RR", text="UTF-8"),
    "binary_garbage.csv": Bad("RR", text="UTF-8"),
    "nul_bytes.csv": Bad("RR", text="NUL"),
}
MIN_CATALOGUE = 25  # the catalogue must cover at least this many malformed CSV files
N_BAD_PLANS = 34  # malformed analysis plans in tests/data/bad/plans


def _run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _api(name: str, spec: Bad) -> None:
    """The Python route the command takes: read, then pool."""
    meta = read_meta_data(BAD_DIR / name)
    frequentist.meta_analysis(meta, measure=spec.measure, method="DL")


# --------------------------------------------------------------------------------------------
# the catalogue is complete and documented
# --------------------------------------------------------------------------------------------


def test_catalogue_matches_folder_and_readme() -> None:
    on_disk = {p.name for p in BAD_DIR.glob("*.csv")}
    readme = (BAD_DIR / "README.md").read_text(encoding="utf-8")
    in_readme = set(re.findall(r"^\| `([^`]+\.csv)` \|", readme, flags=re.M))
    assert on_disk == set(CATALOGUE), "catalogue in the test and files on disk differ"
    assert in_readme == on_disk, "README.md table and files on disk differ"
    assert len(on_disk) >= MIN_CATALOGUE


def test_bad_plan_count() -> None:
    assert len(list(PLAN_DIR.glob("*.toml"))) == N_BAD_PLANS


# --------------------------------------------------------------------------------------------
# command line (in-process)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_cli_refuses_bad_file(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    spec = CATALOGUE[name]
    path = BAD_DIR / name
    code, out, err = _run_cli(
        capsys, ["pool", str(path), "--measure", spec.measure, "--method", "DL", "--json"]
    )
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    message = lines[0]
    assert message.startswith("bayesmtor: error: ")
    assert name in message, "the message must name the file"
    if spec.row is not None:
        assert re.search(rf"\brow {spec.row}\b", message), message
    if spec.column is not None:
        assert f"column '{spec.column}'" in message, message
    assert spec.text.lower() in message.lower(), message
    assert "\x00" not in message


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_cli_bayes_refuses_bad_file(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``pool --bayes`` (exact engine) refuses the same files; warnings may precede the error."""
    spec = CATALOGUE[name]
    argv = ["pool", str(BAD_DIR / name), "--measure", spec.measure, "--bayes", "--json"]
    code, out, err = _run_cli(capsys, argv)
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith("bayesmtor: warning: ") for line in lines[:-1]), err
    message = lines[-1]
    assert message.startswith(f"bayesmtor: error: {name}"), message
    if spec.row is not None:
        assert re.search(rf"\brow {spec.row}\b", message), message
    if spec.column is not None and spec.column != "measure":
        assert f"column '{spec.column}'" in message, message


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_api_raises_documented_class(name: str) -> None:
    spec = CATALOGUE[name]
    with pytest.raises(spec.error) as info:
        _api(name, spec)
    exc = info.value
    if isinstance(exc, InputError):
        if spec.row is not None:
            assert exc.row == spec.row
        if spec.column is not None:
            assert exc.column == spec.column


def test_cli_missing_file_and_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for target in (tmp_path / "nope.csv", tmp_path):
        code, out, err = _run_cli(capsys, ["pool", str(target), "--measure", "RR", "--json"])
        assert code == 2 and out == "" and "Traceback" not in err
        assert target.name in err


def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    good = BAD_DIR / "counts_with_hr_measure.csv"  # valid counts
    for argv in (
        ["pool", str(good), "--measure", "XYZ"],
        ["pool", str(good), "--measure", "RR", "--method", "nope"],
        ["pool", str(good)],
    ):
        code, out, err = _run_cli(capsys, argv)
        assert code == 2 and out == "" and "Traceback" not in err, argv


def test_cli_hksj_with_fixed_effect_refused(capsys: pytest.CaptureFixture[str]) -> None:
    good = BAD_DIR / "counts_with_hr_measure.csv"
    code, out, err = _run_cli(
        capsys, ["pool", str(good), "--measure", "RR", "--method", "MH", "--hksj", "--json"]
    )
    assert code == 2 and out == "" and "Traceback" not in err
    assert "HKSJ" in err


def test_real_entry_point_has_no_traceback() -> None:
    """One subprocess run of ``python -m bayesmtor`` on a binary file."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bayesmtor",
            "pool",
            str(BAD_DIR / "binary_garbage.csv"),
            "--measure",
            "RR",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("bayesmtor: error: binary_garbage.csv")


# --------------------------------------------------------------------------------------------
# DataFrames through the API (the same rules as files; rows are 1-based positions)
# --------------------------------------------------------------------------------------------

_GOOD = {
    "study": ["A", "B", "C"],
    "events_trt": [12, 9, 20],
    "n_trt": [120, 95, 210],
    "events_ctl": [8, 7, 15],
    "n_ctl": [118, 97, 205],
}


@pytest.mark.parametrize(
    ("column", "pos", "value"),
    [
        ("events_trt", 1, -1),
        ("n_ctl", 2, 0),
        ("events_ctl", 0, 500),
        ("n_trt", 1, 95.5),
        ("events_trt", 2, float("nan")),
        ("n_trt", 0, float("inf")),
        ("events_ctl", 1, "seven"),
    ],
)
def test_dataframe_errors_name_row_and_column(column: str, pos: int, value: object) -> None:
    frame = pd.DataFrame(_GOOD).astype({column: object})
    frame.loc[pos, column] = value
    before = frame.copy(deep=True)
    with pytest.raises(InputError) as info:
        read_meta_data(frame, name="mydata")
    assert info.value.row == pos + 1
    assert info.value.column == column
    assert str(info.value).startswith("mydata, row")
    pd.testing.assert_frame_equal(frame, before)  # the caller's frame is untouched


def test_negative_se_refused_by_every_engine() -> None:
    """Squaring a negative SE into a variance would hide the error: it is refused instead."""
    y, se = [0.1, 0.2], [0.1, -0.2]
    frame = pd.DataFrame({"study": ["A", "B"], "yi": y, "sei": se})
    calls = (
        lambda: frequentist.rma(y, se, method="REML"),
        lambda: frequentist.meta_analysis(frame, measure="HR", method="FE"),
        lambda: exact_posterior(y, se),
    )
    for call in calls:
        with pytest.raises(InputError) as info:
            call()
        assert info.value.column == "sei"


def test_non_dataframe_source_refused() -> None:
    with pytest.raises(InputError):
        read_meta_data(12345)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# analysis plans on the command line
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(PLAN_DIR.glob("*.toml")), ids=lambda p: p.name)
def test_bad_plans(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Through ``load_plan`` (PlanError) and ``bayesmtor run PLAN`` (exit 2, no output)."""
    from bayesmtor.plans import load_plan

    with pytest.raises(PlanError) as info:
        load_plan(path)
    assert path.name in str(info.value)
    out = tmp_path / "out"
    code, stdout, err = _run_cli(capsys, ["run", str(path), "--out", str(out)])
    assert code == 2, err
    assert "Traceback" not in err
    assert path.name in err
    assert not out.exists(), "a refused plan must not leave an output folder"


def test_run_refuses_unusable_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An existing non-empty folder (without --force) or a file as --out: exit 2, untouched."""
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.csv").write_text("mine\n")
    a_file = tmp_path / "a_file"
    a_file.write_text("mine\n")
    for out in (full, a_file):
        code, stdout, err = _run_cli(capsys, ["run", "primary", "--out", str(out), "--quiet"])
        assert code == 2, err
        assert "Traceback" not in err and out.name in err
    assert (full / "keep.csv").read_text() == "mine\n" and a_file.read_text() == "mine\n"
    code, _, err = _run_cli(capsys, ["run", "no_such_plan", "--out", str(tmp_path / "x")])
    assert code == 2 and "no_such_plan" in err and not (tmp_path / "x").exists()
