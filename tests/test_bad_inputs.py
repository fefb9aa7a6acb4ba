"""Malformed inputs are refused cleanly: exit status 2, one message naming file/row/column.

The catalogue ``tests/data/bad/*.csv`` is described in ``tests/data/bad/README.md``. Each file
goes through ``bayesmtor pool`` in-process (``cli.main``; frequentist and ``--bayes``) and through
the Python API; one subprocess run proves that the real entry point shows no traceback either.
The malformed plans of ``tests/data/bad/plans`` go through ``load_plan`` and ``bayesmtor run``.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from bayesmtor import cli, frequentist
from bayesmtor.bayes.exact import exact_posterior
from bayesmtor.errors import BayesMTORError, EstimationError, InputError, PlanError
from bayesmtor.inputs import read_meta_data

BAD_DIR = Path(__file__).resolve().parent / "data" / "bad"
PLAN_DIR = BAD_DIR / "plans"


@dataclass(frozen=True)
class Bad:
    """Expected refusal of one catalogue file."""

    measure: str
    error: type[BayesMTORError] = InputError
    line: int | None = None  # line of the file (header = line 1) named by the message
    column: str | None = None
    text: str = ""  # a fragment the message must contain (case-insensitive)


CATALOGUE: dict[str, Bad] = {
    "counts_negative_events.csv": Bad("RR", line=3, column="events_trt", text="negative"),
    "counts_noninteger_total.csv": Bad("RR", line=2, column="n_trt", text="whole number"),
    "counts_events_exceed_total.csv": Bad("RR", line=4, column="events_ctl", text="exceed"),
    "counts_zero_total.csv": Bad("RR", line=2, column="n_trt", text="0 participants"),
    "counts_nan_cell.csv": Bad("RR", line=3, column="events_ctl", text="missing"),
    "counts_empty_cell.csv": Bad("RR", line=2, column="n_trt", text="empty"),
    "counts_text_in_numeric.csv": Bad("RR", line=3, column="events_trt", text="twelve"),
    "counts_inf.csv": Bad("RR", line=3, column="n_trt", text="finite"),
    "counts_percent_sign.csv": Bad("RR", line=2, column="events_trt", text="12%"),
    "counts_thousands_separator.csv": Bad("RR", line=2, column="n_trt", text="1,024"),
    "counts_boolean_text.csv": Bad("RR", line=3, column="events_ctl", text="TRUE"),
    "counts_overflow.csv": Bad("RR", line=3, column="n_trt", text="too large"),
    "counts_missing_column.csv": Bad("RR", column="n_ctl", text="missing"),
    "counts_misspelled_column.csv": Bad("RR", column="evnts_trt", text="did you mean"),
    "counts_duplicate_study.csv": Bad("RR", line=4, column="study", text="already on line 2"),
    "counts_empty_study_label.csv": Bad("RR", line=3, column="study", text="empty study label"),
    "counts_duplicate_column.csv": Bad(
        "RR", line=1, column="n_trt", text="column 3 (C) 'n_trt' and column 6 (F) 'N_TRT'"
    ),
    "counts_all_double_zero.csv": Bad("OR", error=EstimationError, text="no events"),
    "counts_with_hr_measure.csv": Bad("HR", column="measure", text="HR"),
    "ratio_with_rd_measure.csv": Bad("RD", column="measure", text="RD"),
    "ratio_zero_estimate.csv": Bad("HR", line=3, column="estimate", text="not positive"),
    "ratio_negative_ci_low.csv": Bad("HR", line=2, column="ci_low", text="not positive"),
    "ratio_ci_excludes_estimate.csv": Bad("HR", line=3, column="estimate", text="outside"),
    "ratio_lower_ge_upper.csv": Bad("HR", line=3, column="ci_low", text="not below"),
    "ratio_one_bound_missing.csv": Bad("HR", line=2, column="ci_high", text="one CI bound"),
    "ratio_inf_estimate.csv": Bad("HR", line=2, column="estimate", text="finite"),
    "decimal_comma.csv": Bad("HR", line=2, column="estimate", text="0,80"),
    "logse_zero_se.csv": Bad("HR", line=3, column="sei", text="not positive"),
    "logse_negative_se.csv": Bad("HR", line=2, column="sei", text="not positive"),
    "logse_nan_yi.csv": Bad("HR", line=3, column="yi", text="missing"),
    "logse_neg_inf_yi.csv": Bad("HR", line=3, column="yi", text="finite"),
    "empty_file.csv": Bad("RR", text="empty"),
    "blank_lines_only.csv": Bad("RR", text="empty"),
    "comments_only.csv": Bad("RR", line=1, column="study", text="no comment syntax"),
    "header_only.csv": Bad("RR", text="no data rows"),
    "mixed_shapes.csv": Bad("RR", text="more than one input shape"),
    "no_study_column.csv": Bad("RR", column="study", text="not found"),
    "no_value_columns.csv": Bad("RR", text="no recognised value columns"),
    "ambiguous_separator.csv": Bad("HR", line=1, column="study;yi", text="more than one separator"),
    "ambiguous_separator_after_blank.csv": Bad(
        "HR", line=3, column="study;yi", text="more than one separator"
    ),
    "semicolon_decimal_comma.csv": Bad("HR", line=2, column="yi", text="non-numeric"),
    "cells_negative.csv": Bad("RR", line=3, column="bi", text="negative"),
    "cells_incomplete.csv": Bad("RR", column="di", text="not one complete layout"),
    "cells_n_events_exceed.csv": Bad("RR", line=3, column="ci", text="exceed"),
    "unbalanced_quote.csv": Bad("RR", line=2, text="cannot parse"),
    "ragged_row.csv": Bad("RR", line=3, text="6 fields where the header (line 1) has 5"),
    "trailing_comma_header.csv": Bad("RR", line=1, text="column 6 (F) of the header has no name"),
    "latin1_encoded.csv": Bad("RR", text="UTF-8"),
    "utf16_encoded.csv": Bad("RR", text="UTF-8"),
    "binary_garbage.csv": Bad("RR", text="UTF-8"),
    "nul_bytes.csv": Bad("RR", text="NUL"),
    # strict reading: field counts, duplicate names, no comment syntax, line numbers
    "extra_field.csv": Bad("RR", line=2, text="6 fields where the header (line 1) has 5"),
    "missing_field.csv": Bad("RR", line=3, text="4 fields where the header (line 1) has 5"),
    "unquoted_comma_label.csv": Bad("HR", line=4, text="quote labels that contain commas"),
    "duplicate_column_exact.csv": Bad(
        "HR", line=1, column="yi", text="column 2 (B) and column 4 (D) of the header are both"
    ),
    "duplicate_study_column.csv": Bad(
        "HR", line=1, column="study", text="column 1 (A) and column 4 (D) of the header are both"
    ),
    "duplicate_events_column.csv": Bad(
        "RR", line=1, column="events_ctl", text="column 4 (D) 'events_ctl' and column 6 (F)"
    ),
    "comment_line_above_header.csv": Bad("HR", line=2, text="no comment syntax"),
    "text_after_closing_quote.csv": Bad("HR", line=2, text="',' expected after '\"'"),
    "multiline_label_bad_se.csv": Bad("HR", line=4, column="sei", text="(subgroup B)"),
    "blank_line_then_bad_value.csv": Bad("HR", line=5, column="yi", text="'abc'"),
    "crlf_bad_value.csv": Bad("HR", line=3, column="sei", text="not positive"),
    "bom_bad_value.csv": Bad("HR", line=2, column="sei", text="not positive"),
    "cr_only_bad_value.csv": Bad("HR", line=4, column="sei", text="finite"),
}
MIN_CATALOGUE = 60  # the catalogue must cover at least this many malformed CSV files
N_BAD_PLANS = 34  # malformed analysis plans in tests/data/bad/plans
_LINE = re.compile(r"\bline (\d+)\b")


@dataclass(frozen=True)
class Accepted:
    """Expected result of a tricky but valid file (``accepted/``), derived by hand.

    ``groups`` maps each group key (as written in the file, in order of first appearance) to
    ``(k, fixed-effect estimate, its SE)``; files without groups use the key ``None``. The
    estimate is the inverse-variance mean ``sum(y / s^2) / sum(1 / s^2)`` of the rows, its SE
    ``1 / sqrt(sum(1 / s^2))``; ``rows`` holds the ``(study, yi, sei)`` of those rows.
    """

    rows: tuple[tuple[str, float, float], ...]
    groups: dict[str | None, tuple[int, float, float]]
    lines: tuple[int, ...]


_A, _B = ("A", -0.2, 0.1), ("B", -0.4, 0.2)
# A and B: weights 100 and 25; (-20 - 10) / 125 = -0.24, SE 1/sqrt(125)
_AB = {None: (2, -0.24, 125**-0.5)}
ACCEPTED: dict[str, Accepted] = {
    # '#' is data: weights 100, 25, 25; (-20 - 10 + 2.5) / 150
    "hash_labels.csv": Accepted(
        rows=(("#1 Smith 2010", -0.2, 0.1), ("# Jones 2011", -0.4, 0.2), ("# Lee 2012", 0.1, 0.2)),
        groups={None: (3, -27.5 / 150, 150**-0.5)},
        lines=(2, 3, 4),
    ),
    # the first label spans lines 2-3; weights 100, 100, 25: (-30 - 10 + 5) / 225
    "quoted_label_comma_newline.csv": Accepted(
        rows=(
            ("Smith, 2010\n(ER+ subgroup)", -0.3, 0.1),
            ('O\'Brien "BOLERO" 2012', -0.1, 0.1),
            ("Baker 2013", 0.2, 0.2),
        ),
        groups={None: (3, -35 / 225, 1 / 15)},
        lines=(2, 4, 5),
    ),
    # g = 1 (A, D): (-20 + 10) / 125; g = 1.0 (B, E): (-10 - 10) / 125; g = 01 (C) alone
    "by_keys_1_10_01.csv": Accepted(
        rows=(
            ("A", -0.2, 0.1),
            ("B", -0.4, 0.2),
            ("C", 0.1, 0.2),
            ("D", 0.4, 0.2),
            ("E", -0.1, 0.1),
        ),
        groups={
            "1": (2, -10 / 125, 125**-0.5),
            "1.0": (2, -20 / 125, 125**-0.5),
            "01": (1, 0.1, 0.2),
        },
        lines=(2, 3, 4, 5, 6),
    ),
    # g = 007 (A, C): (-20 + 7.5) / 125; g = 7 (B) alone
    "by_keys_007_7.csv": Accepted(
        rows=(("A", -0.2, 0.1), ("B", -0.4, 0.2), ("C", 0.3, 0.2)),
        groups={"007": (2, -12.5 / 125, 125**-0.5), "7": (1, -0.4, 0.2)},
        lines=(2, 3, 4),
    ),
    # four keys that are equal as numbers in pairs, one study each
    "by_keys_inf_1e999.csv": Accepted(
        rows=(("A", -0.2, 0.1), ("B", -0.4, 0.2), ("C", 0.1, 0.1), ("D", 0.3, 0.1)),
        groups={
            "inf": (1, -0.2, 0.1),
            "1e999": (1, -0.4, 0.2),
            "1e3": (1, 0.1, 0.1),
            "1000": (1, 0.3, 0.1),
        },
        lines=(2, 3, 4, 5),
    ),
    "trailing_empty_lines.csv": Accepted(rows=(_A, _B), groups=_AB, lines=(2, 3)),
    "crlf_line_endings.csv": Accepted(rows=(_A, _B), groups=_AB, lines=(2, 3)),
    "bom_header.csv": Accepted(rows=(_A, _B), groups=_AB, lines=(2, 3)),
    "blank_lines_middle.csv": Accepted(rows=(_A, _B), groups=_AB, lines=(2, 5)),
    "space_after_comma_quoted.csv": Accepted(
        rows=(("Smith, 2010", -0.2, 0.1), ("Lee 2011", -0.4, 0.2)), groups=_AB, lines=(2, 3)
    ),
    "semicolon_separated.csv": Accepted(rows=(_A, _B), groups=_AB, lines=(2, 3)),
    "tab_separated.csv": Accepted(rows=(_A, _B), groups=_AB, lines=(2, 3)),
    "empty_record_middle.csv": Accepted(rows=(_A, _B), groups=_AB, lines=(2, 4)),
}
ACCEPTED_DIR = BAD_DIR / "accepted"
HAND_TOL = 1e-12  # hand-derived fixed-effect means of a few terms, up to float round-off
EXACT_TOL = 1e-9  # one engine, the same rows: batch and single fits agree to its tolerance


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
    in_readme = set(re.findall(r"^\| `([^`/]+\.csv)` \|", readme, flags=re.M))
    assert on_disk == set(CATALOGUE), "catalogue in the test and files on disk differ"
    assert in_readme == on_disk, "README.md table and files on disk differ"
    assert len(on_disk) >= MIN_CATALOGUE
    accepted = {p.name for p in ACCEPTED_DIR.glob("*.csv")}
    assert accepted == set(ACCEPTED), "accepted files in the test and on disk differ"
    assert set(re.findall(r"^\| `accepted/([^`]+\.csv)` \|", readme, flags=re.M)) == accepted


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
    assert _LINE.findall(message)[:1] == ([str(spec.line)] if spec.line else []), message
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
    assert _LINE.findall(message)[:1] == ([str(spec.line)] if spec.line else []), message
    if spec.column is not None and spec.column != "measure":
        assert f"column '{spec.column}'" in message, message


@pytest.mark.parametrize("name", sorted(n for n, b in CATALOGUE.items() if b.line is not None))
def test_both_engines_name_the_same_line(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``pool`` (frequentist) and ``pool --bayes`` (exact) print the same error, same line."""
    spec = CATALOGUE[name]
    path = str(BAD_DIR / name)
    _, _, freq = _run_cli(capsys, ["pool", path, "--measure", spec.measure, "--method", "DL"])
    _, _, bayes = _run_cli(capsys, ["pool", path, "--measure", spec.measure, "--bayes"])
    freq_msg, bayes_msg = freq.strip().splitlines()[-1], bayes.strip().splitlines()[-1]
    assert freq_msg == bayes_msg
    assert _LINE.search(freq_msg).group(1) == str(spec.line)  # type: ignore[union-attr]


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_api_raises_documented_class(name: str) -> None:
    spec = CATALOGUE[name]
    with pytest.raises(spec.error) as info:
        _api(name, spec)
    exc = info.value
    if isinstance(exc, InputError):
        assert exc.line == spec.line
        if spec.column is not None:
            assert exc.column == spec.column


# --------------------------------------------------------------------------------------------
# tricky but valid files: read as written, with the hand-derived result
# --------------------------------------------------------------------------------------------


def _grouped(name: str) -> list[str]:
    return ["--by", "g"] if None not in ACCEPTED[name].groups else []


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_file_read_as_written(name: str) -> None:
    spec = ACCEPTED[name]
    meta = read_meta_data(ACCEPTED_DIR / name, by="g" if _grouped(name) else None)
    assert meta.frame["study"].tolist() == [r[0] for r in spec.rows]
    assert meta.frame["yi"].tolist() == [r[1] for r in spec.rows]
    assert meta.frame["sei"].tolist() == [r[2] for r in spec.rows]
    assert meta.lines is not None and meta.lines.tolist() == list(spec.lines)
    if _grouped(name):
        assert list(dict.fromkeys(meta.frame["g"])) == list(spec.groups)  # text, as written


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_file_frequentist(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    spec = ACCEPTED[name]
    argv = ["pool", str(ACCEPTED_DIR / name), "--measure", "HR", "--method", "FE", "--json"]
    code, out, err = _run_cli(capsys, argv + _grouped(name))
    assert code == 0, err
    result = json.loads(out)
    records = result if isinstance(result, list) else [result]
    keys = [r.get("g") for r in records]
    assert keys == list(spec.groups)  # order of first appearance, labels verbatim
    for record, (k, est, se) in zip(records, spec.groups.values(), strict=True):
        assert record["k"] == k
        assert record["estimate"] == pytest.approx(est, abs=HAND_TOL)
        assert record["se"] == pytest.approx(se, abs=HAND_TOL)


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_file_bayes(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The exact engine gets the same rows: same groups in the same order, same k, and the
    posterior median of mu equals that of the hand-typed rows of each group."""
    spec = ACCEPTED[name]
    argv = ["pool", str(ACCEPTED_DIR / name), "--measure", "HR", "--bayes", "--json"]
    code, out, err = _run_cli(capsys, argv + _grouped(name))
    assert code == 0, err
    result = json.loads(out)
    records = result if isinstance(result, list) else [result]
    assert [r.get("g") for r in records] == list(spec.groups)
    by_group: dict[str | None, list[tuple[float, float]]] = {g: [] for g in spec.groups}
    keys = _group_of_rows(name)
    for (_, y, s), g in zip(spec.rows, keys, strict=True):
        by_group[g].append((y, s))
    for record, (g, (k, _, _)) in zip(records, spec.groups.items(), strict=True):
        assert record["k"] == k
        ys, ss = zip(*by_group[g], strict=True)
        expected = float(exact_posterior(list(ys), list(ss)).mu_quantile(0.5))
        assert record["mu_median"] == pytest.approx(expected, abs=EXACT_TOL)


def _group_of_rows(name: str) -> list[str | None]:
    """The group key of each row of an accepted file, read with the csv module directly."""
    with open(ACCEPTED_DIR / name, encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
        sep = next((d for d in (";", "\t") if d in first), ",")  # the file's one separator
        handle.seek(0)
        reader = csv.DictReader(handle, skipinitialspace=True, delimiter=sep)
        rows = [r for r in reader if any(r.values())]
    return [r["g"] for r in rows] if _grouped(name) else [None] * len(rows)


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
