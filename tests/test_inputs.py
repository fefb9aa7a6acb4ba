"""Tests of bayesmtor.inputs: reading, shape detection and validation of user data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayesmtor.errors import InputError
from bayesmtor.inputs import MetaInput, read_meta_data

COUNTS_HEADER = "study,events_trt,n_trt,events_ctl,n_ctl"
COUNTS_ROWS = ["Alpha 2010,3,50,1,48", "Beta 2011,5,60,2,61", "Gamma 2012,0,40,4,39"]


def _write(tmp_path: Path, text: str, name: str = "trials.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _counts_csv(tmp_path: Path, bad_row: str | None = None, header: str = COUNTS_HEADER) -> Path:
    rows = list(COUNTS_ROWS)
    if bad_row is not None:
        rows[2] = bad_row  # data row 3, line 4 of the file
    return _write(tmp_path, "\n".join([header, *rows]) + "\n")


# ---------------------------------------------------------------------------------------------
# good input
# ---------------------------------------------------------------------------------------------


def test_reads_counts_csv_with_comments_and_extra_columns(tmp_path: Path) -> None:
    text = (
        "# source: made-up example\n"
        "Study, Events_Trt, n-trt, events_ctl, n_ctl, outcome\n"
        "A,1,10,2,10,orr\n"
        "B,0,12,3,11,orr\n"
    )
    meta = read_meta_data(_write(tmp_path, text))
    assert isinstance(meta, MetaInput)
    assert meta.shape == "counts"
    assert meta.source == "trials.csv"
    assert meta.extra_columns == ("outcome",)
    assert list(meta.frame.columns) == [
        "study",
        "events_trt",
        "n_trt",
        "events_ctl",
        "n_ctl",
        "outcome",
    ]
    assert meta.frame["events_trt"].dtype == np.int64
    assert meta.frame["study"].tolist() == ["A", "B"]
    assert "shape='counts'" in repr(meta) and "k=2" in repr(meta)
    summary = meta.summary()
    assert list(summary.columns) == [
        "column",
        "role",
        "dtype",
        "n_missing",
        "n_distinct",
        "min",
        "max",
    ]
    assert summary.set_index("column").loc["outcome", "role"] == "extra"


@pytest.mark.parametrize(
    ("frame", "shape"),
    [
        (
            pd.DataFrame({"study": ["a"], "estimate": [0.44], "ci_low": [0.36], "ci_high": [0.53]}),
            "ratio_ci",
        ),
        (pd.DataFrame({"study": ["a"], "yi": [-0.8], "sei": [0.1]}), "log_se"),
    ],
)
def test_detects_shapes(frame: pd.DataFrame, shape: str) -> None:
    meta = read_meta_data(frame, name="typed")
    assert meta.shape == shape
    assert meta.source == "typed"


def test_dataframe_is_not_mutated() -> None:
    df = pd.DataFrame(
        {
            " Study ": ["a", "b"],
            "events_trt": [1.0, 2.0],
            "n_trt": [10, 10],
            "events_ctl": [0, 1],
            "n_ctl": [9, 9],
            "Drug Class": ["everolimus", "everolimus"],
        },
        index=[10, 20],
    )
    before = df.copy(deep=True)
    meta = read_meta_data(df)
    pd.testing.assert_frame_equal(df, before)
    assert meta.source == "<DataFrame>"
    assert meta.extra_columns == ("drug_class",)
    meta.frame.loc[0, "events_trt"] = 5  # the copy is independent of the caller's frame
    pd.testing.assert_frame_equal(df, before)


def test_ratio_without_ci_is_allowed() -> None:
    df = pd.DataFrame(
        {
            "study": ["a", "b"],
            "estimate": [0.44, 0.45],
            "ci_low": [0.36, None],
            "ci_high": [0.53, None],
        }
    )
    meta = read_meta_data(df)
    assert meta.frame["ci_low"].isna().tolist() == [False, True]


def test_duplicates_allowed_across_by_groups(tmp_path: Path) -> None:
    text = (
        "study,outcome,drug_class,events_trt,n_trt,events_ctl,n_ctl\n"
        "A,orr,everolimus,1,10,2,10\n"
        "A,cbr,everolimus,4,10,2,10\n"
        "A,orr,temsirolimus,1,10,2,10\n"
    )
    meta = read_meta_data(_write(tmp_path, text), by=("outcome", "drug_class"))
    assert meta.by == ("outcome", "drug_class")
    assert meta.k == 3
    with pytest.raises(InputError, match="duplicate study label"):
        read_meta_data(_write(tmp_path, text), by="outcome")


# ---------------------------------------------------------------------------------------------
# bad input: one case per problem; each names the source, row/study and column
# ---------------------------------------------------------------------------------------------

RATIO_HEADER = "study,estimate,ci_low,ci_high"
LOGSE_HEADER = "study,yi,sei"

# (id, csv text, expected substrings in the message, expected InputError.column)
BAD_CSV = [
    (
        "negative_count",
        "\n".join([COUNTS_HEADER, *COUNTS_ROWS[:2], "Gamma 2012,-1,40,4,39"]),
        ["row 3", "Gamma 2012", "events_trt", "negative", "line 4"],
        "events_trt",
    ),
    (
        "non_integer_count",
        "\n".join([COUNTS_HEADER, *COUNTS_ROWS[:2], "Gamma 2012,2.5,40,4,39"]),
        ["row 3", "Gamma 2012", "events_trt", "whole number"],
        "events_trt",
    ),
    (
        "events_exceed_total",
        "\n".join([COUNTS_HEADER, *COUNTS_ROWS[:2], "Gamma 2012,2,40,41,39"]),
        ["row 3", "Gamma 2012", "events_ctl", "exceed", "n_ctl"],
        "events_ctl",
    ),
    (
        "total_zero",
        "\n".join([COUNTS_HEADER, *COUNTS_ROWS[:2], "Gamma 2012,0,0,4,39"]),
        ["row 3", "Gamma 2012", "n_trt", "0 participants"],
        "n_trt",
    ),
    (
        "empty_cell",
        "\n".join([COUNTS_HEADER, *COUNTS_ROWS[:2], "Gamma 2012,2,40,,39"]),
        ["row 3", "Gamma 2012", "events_ctl", "empty"],
        "events_ctl",
    ),
    (
        "non_numeric_text",
        "\n".join([COUNTS_HEADER, *COUNTS_ROWS[:2], "Gamma 2012,2,40,4,39 pts"]),
        ["row 3", "Gamma 2012", "n_ctl", "non-numeric text '39 pts'"],
        "n_ctl",
    ),
    (
        "ratio_not_positive",
        "\n".join([RATIO_HEADER, "BOLERO-2,0.44,0.36,0.53", "TAMRAD,0,0.36,0.81"]),
        ["row 2", "TAMRAD", "estimate", "not positive"],
        "estimate",
    ),
    (
        "ci_bound_not_positive",
        "\n".join([RATIO_HEADER, "BOLERO-2,0.44,0.36,0.53", "TAMRAD,0.54,-0.1,0.81"]),
        ["row 2", "TAMRAD", "ci_low", "not positive"],
        "ci_low",
    ),
    (
        "ci_excludes_estimate",
        "\n".join([RATIO_HEADER, "BOLERO-2,0.44,0.46,0.53"]),
        ["row 1", "BOLERO-2", "estimate", "outside its CI"],
        "estimate",
    ),
    (
        "ci_lower_not_below_upper",
        "\n".join([RATIO_HEADER, "BOLERO-2,0.44,0.53,0.36"]),
        ["row 1", "BOLERO-2", "ci_low", "not below upper"],
        "ci_low",
    ),
    (
        "ci_one_bound_missing",
        "\n".join([RATIO_HEADER, "BOLERO-2,0.44,0.36,"]),
        ["row 1", "BOLERO-2", "ci_high", "only one CI bound"],
        "ci_high",
    ),
    (
        "se_not_positive",
        "\n".join([LOGSE_HEADER, "A,-0.8,0.1", "B,-0.5,0"]),
        ["row 2", "'B'", "sei", "not positive"],
        "sei",
    ),
    (
        "infinite_value",
        "\n".join([LOGSE_HEADER, "A,-inf,0.1"]),
        ["row 1", "'A'", "yi", "finite"],
        "yi",
    ),
    (
        "nan_text",
        "\n".join([LOGSE_HEADER, "A,-0.8,0.1", "B,NaN,0.2"]),
        ["row 2", "'B'", "yi", "missing"],
        "yi",
    ),
    (
        "duplicate_study",
        "\n".join([COUNTS_HEADER, *COUNTS_ROWS, "Beta 2011,1,10,1,10"]),
        ["row 4", "Beta 2011", "study", "duplicate", "row 2"],
        "study",
    ),
    (
        "misspelled_column",
        "\n".join(["study,event_trt,n_trt,events_ctl,n_ctl", *COUNTS_ROWS]),
        ["'event_trt'", "did you mean 'events_trt'"],
        "event_trt",
    ),
    (
        "missing_column",
        "\n".join(["study,events_trt,n_trt,events_ctl", "A,1,10,2"]),
        ["'n_ctl' is missing", "counts"],
        "n_ctl",
    ),
    (
        "missing_study_column",
        "\n".join(["studies,events_trt,n_trt,events_ctl,n_ctl", "A,1,10,2,10"]),
        ["'study'", "did you mean"],
        "studies",
    ),
    (
        "mixed_shapes",
        "\n".join(["study,events_trt,n_trt,events_ctl,n_ctl,yi,sei", "A,1,10,2,10,0.1,0.2"]),
        ["more than one input shape", "counts", "log_se"],
        None,
    ),
    (
        "header_only",
        COUNTS_HEADER,
        ["no data rows"],
        None,
    ),
    (
        "empty_file",
        "",
        ["file is empty"],
        None,
    ),
    (
        "parse_error",
        "\n".join([COUNTS_HEADER, *COUNTS_ROWS[:2], "Gamma, 2012,0,40,4,39"]),
        ["cannot parse the CSV", "line 4 of the file"],
        None,
    ),
]


@pytest.mark.parametrize(
    ("text", "fragments", "column"),
    [pytest.param(text, frags, col, id=case) for case, text, frags, col in BAD_CSV],
)
def test_bad_csv_raises_clear_input_error(
    tmp_path: Path, text: str, fragments: list[str], column: str | None
) -> None:
    path = _write(tmp_path, text + ("\n" if text else ""))
    with pytest.raises(InputError) as info:
        read_meta_data(path)
    message = str(info.value)
    assert message.startswith("trials.csv"), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    assert info.value.column == column
    assert "Traceback" not in message


def test_row_number_convention_in_message(tmp_path: Path) -> None:
    path = _counts_csv(tmp_path, bad_row="Gamma 2012,-1,40,4,39")
    with pytest.raises(InputError) as info:
        read_meta_data(path)
    assert info.value.row == 3
    assert info.value.study == "Gamma 2012"
    assert "1-based data row" in str(info.value)


def test_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a file"):
        read_meta_data(tmp_path)
    with pytest.raises(InputError, match="file not found"):
        read_meta_data(tmp_path / "absent.csv")


@pytest.mark.parametrize(
    ("frame", "fragments", "column"),
    [
        pytest.param(
            pd.DataFrame(
                {
                    "study": ["a", "b"],
                    "events_trt": [1, 3],
                    "n_trt": [10, 2],
                    "events_ctl": [0, 0],
                    "n_ctl": [5, 5],
                }
            ),
            ["row 2", "'b'", "events_trt", "exceed"],
            "events_trt",
            id="events_exceed_total",
        ),
        pytest.param(
            pd.DataFrame({"study": ["a", "b"], "yi": [0.1, np.nan], "sei": [0.1, 0.2]}),
            ["row 2", "'b'", "yi", "missing"],
            "yi",
            id="nan",
        ),
        pytest.param(
            pd.DataFrame({"study": ["a"], "yi": [0.1], "sei": [np.inf]}),
            ["row 1", "'a'", "sei", "finite"],
            "sei",
            id="inf",
        ),
        pytest.param(
            pd.DataFrame({"study": ["a", "a"], "yi": [0.1, 0.2], "sei": [0.1, 0.2]}),
            ["row 2", "'a'", "study", "duplicate"],
            "study",
            id="duplicate",
        ),
        pytest.param(
            pd.DataFrame({"study": pd.Series([], dtype=str), "yi": [], "sei": []}),
            ["no data rows"],
            None,
            id="no_rows",
        ),
        pytest.param(
            pd.DataFrame({"study": ["a"], "yi": ["big"], "sei": [0.1]}),
            ["row 1", "'a'", "yi", "non-numeric text 'big'"],
            "yi",
            id="non_numeric",
        ),
    ],
)
def test_bad_dataframe_raises_clear_input_error(
    frame: pd.DataFrame, fragments: list[str], column: str | None
) -> None:
    before = frame.copy(deep=True)
    with pytest.raises(InputError) as info:
        read_meta_data(frame)
    message = str(info.value)
    assert message.startswith("<DataFrame>")
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    assert info.value.column == column
    pd.testing.assert_frame_equal(frame, before)


def test_unknown_by_column_suggests_name() -> None:
    df = pd.DataFrame({"study": ["a"], "outcome": ["orr"], "yi": [0.1], "sei": [0.1]})
    with pytest.raises(InputError, match="did you mean 'outcome'"):
        read_meta_data(df, by=("outcomes",))


def test_wrong_source_type() -> None:
    with pytest.raises(InputError, match="must be a path"):
        read_meta_data(42)  # type: ignore[arg-type]
