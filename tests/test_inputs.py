"""Tests of bayesmtor.inputs: reading, shape detection and validation of user data."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayesmtor._strictcsv import column_ref, parse_csv_text, read_csv_file
from bayesmtor.errors import InputError
from bayesmtor.inputs import MetaInput, group_codes, read_meta_data

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


def test_reads_counts_csv_with_extra_columns(tmp_path: Path) -> None:
    text = (
        "Study, Events_Trt, n-trt, events_ctl, n_ctl, outcome, year\n"
        "A,1,10,2,10,orr,2010\n"
        "B,0,12,3,11,orr,007\n"
    )
    meta = read_meta_data(_write(tmp_path, text))
    assert isinstance(meta, MetaInput)
    assert meta.shape == "counts"
    assert meta.source == "trials.csv"
    assert meta.extra_columns == ("outcome", "year")
    assert list(meta.frame.columns) == [
        "study",
        "events_trt",
        "n_trt",
        "events_ctl",
        "n_ctl",
        "outcome",
        "year",
    ]
    assert meta.frame["year"].tolist() == ["2010", "007"]  # extra columns stay text
    assert meta.lines is not None and meta.lines.tolist() == [2, 3]
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
        ["line 4", "Gamma 2012", "events_trt", "negative"],
        "events_trt",
    ),
    (
        "non_integer_count",
        "\n".join([COUNTS_HEADER, *COUNTS_ROWS[:2], "Gamma 2012,2.5,40,4,39"]),
        ["line 4", "Gamma 2012", "events_trt", "whole number"],
        "events_trt",
    ),
    (
        "events_exceed_total",
        "\n".join([COUNTS_HEADER, *COUNTS_ROWS[:2], "Gamma 2012,2,40,41,39"]),
        ["line 4", "Gamma 2012", "events_ctl", "exceed", "n_ctl"],
        "events_ctl",
    ),
    (
        "total_zero",
        "\n".join([COUNTS_HEADER, *COUNTS_ROWS[:2], "Gamma 2012,0,0,4,39"]),
        ["line 4", "Gamma 2012", "n_trt", "0 participants"],
        "n_trt",
    ),
    (
        "empty_cell",
        "\n".join([COUNTS_HEADER, *COUNTS_ROWS[:2], "Gamma 2012,2,40,,39"]),
        ["line 4", "Gamma 2012", "events_ctl", "empty"],
        "events_ctl",
    ),
    (
        "non_numeric_text",
        "\n".join([COUNTS_HEADER, *COUNTS_ROWS[:2], "Gamma 2012,2,40,4,39 pts"]),
        ["line 4", "Gamma 2012", "n_ctl", "non-numeric text '39 pts'"],
        "n_ctl",
    ),
    (
        "ratio_not_positive",
        "\n".join([RATIO_HEADER, "BOLERO-2,0.44,0.36,0.53", "TAMRAD,0,0.36,0.81"]),
        ["line 3", "TAMRAD", "estimate", "not positive"],
        "estimate",
    ),
    (
        "ci_bound_not_positive",
        "\n".join([RATIO_HEADER, "BOLERO-2,0.44,0.36,0.53", "TAMRAD,0.54,-0.1,0.81"]),
        ["line 3", "TAMRAD", "ci_low", "not positive"],
        "ci_low",
    ),
    (
        "ci_excludes_estimate",
        "\n".join([RATIO_HEADER, "BOLERO-2,0.44,0.46,0.53"]),
        ["line 2", "BOLERO-2", "estimate", "outside its CI"],
        "estimate",
    ),
    (
        "ci_lower_not_below_upper",
        "\n".join([RATIO_HEADER, "BOLERO-2,0.44,0.53,0.36"]),
        ["line 2", "BOLERO-2", "ci_low", "not below upper"],
        "ci_low",
    ),
    (
        "ci_one_bound_missing",
        "\n".join([RATIO_HEADER, "BOLERO-2,0.44,0.36,"]),
        ["line 2", "BOLERO-2", "ci_high", "only one CI bound"],
        "ci_high",
    ),
    (
        "se_not_positive",
        "\n".join([LOGSE_HEADER, "A,-0.8,0.1", "B,-0.5,0"]),
        ["line 3", "'B'", "sei", "not positive"],
        "sei",
    ),
    (
        "infinite_value",
        "\n".join([LOGSE_HEADER, "A,-inf,0.1"]),
        ["line 2", "'A'", "yi", "finite"],
        "yi",
    ),
    (
        "nan_text",
        "\n".join([LOGSE_HEADER, "A,-0.8,0.1", "B,NaN,0.2"]),
        ["line 3", "'B'", "yi", "missing"],
        "yi",
    ),
    (
        "duplicate_study",
        "\n".join([COUNTS_HEADER, *COUNTS_ROWS, "Beta 2011,1,10,1,10"]),
        ["line 5", "Beta 2011", "study", "duplicate", "already on line 3"],
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
        ["trials.csv, line 4:", "6 fields where the header (line 1) has 5", "quote labels"],
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
    assert info.value.row == 3  # the third data row ...
    assert info.value.line == 4  # ... is on line 4 of the file, which the message names
    assert info.value.study == "Gamma 2012"
    assert str(info.value).startswith("trials.csv, line 4, study 'Gamma 2012', ")
    assert "row 3" not in str(info.value)


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


# ---------------------------------------------------------------------------------------------
# the strict reader: fields verbatim, line of every record, one dialect for both passes
# ---------------------------------------------------------------------------------------------


def test_quoted_fields_kept_verbatim(tmp_path: Path) -> None:
    text = (
        "study,note,yi,sei\n"
        '"Smith, 2010","  two spaces, a # and\na line break  ",-0.2,0.1\n'
        '"say ""hi""",,-0.4,0.2\n'
    )
    table = read_csv_file(_write(tmp_path, text))
    assert table.frame["note"].tolist() == ["  two spaces, a # and\na line break  ", ""]
    assert table.frame["study"].tolist() == ["Smith, 2010", 'say "hi"']
    assert table.frame["yi"].tolist() == ["-0.2", "-0.4"]  # text: the reader converts nothing
    assert table.lines.tolist() == [2, 4] and table.header_line == 1


def test_line_numbers_with_blank_lines_crlf_cr_and_line_breaks(tmp_path: Path) -> None:
    # line 1, 2 blank; header on 3; CRLF row on 4; blank 5; a record over lines 6-7; CR row on 8
    text = '\n  \nstudy,yi,sei\r\nA,-0.2,0.1\r\n\n"B\nb",-0.4,0.2\rC,0.1,0.2\r'
    path = tmp_path / "mixed.csv"
    path.write_bytes(text.encode("utf-8"))
    table = read_csv_file(path)
    assert table.header_line == 3
    assert table.lines.tolist() == [4, 6, 8]
    assert table.frame["study"].tolist() == ["A", "B\nb", "C"]
    with pytest.raises(InputError) as info:
        read_meta_data(_write(tmp_path, text.replace("C,0.1,0.2", "C,0.1,-0.2")))
    assert (info.value.line, info.value.row, info.value.study) == (8, 3, "C")


def test_records_of_empty_cells_ignored_wherever_they_are(tmp_path: Path) -> None:
    tail = read_meta_data(_write(tmp_path, "study,yi,sei\nA,-0.2,0.1\n,,\n\n , ,\n,,\n"))
    assert tail.k == 1 and tail.lines.tolist() == [2]
    # in the middle, with fewer fields than the header, or only spaces and tabs: ignored too
    middle = read_meta_data(
        _write(tmp_path, "study,yi,sei\nA,-0.2,0.1\n,,\n,\n \t, ,\nB,-0.4,0.2\n,,,,\n")
    )
    assert middle.frame["study"].tolist() == ["A", "B"] and middle.lines.tolist() == [2, 6]
    # a record with one filled field is data: its empty label is refused on its line
    with pytest.raises(InputError, match="empty study label") as info:
        read_meta_data(_write(tmp_path, "study,yi,sei\nA,-0.2,0.1\n,-0.3,\nB,-0.4,0.2\n"))
    assert info.value.line == 3


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("study,yi,sei\nA,-0.2,0.1\nSmith, 2010,-0.4,0.2\n", 3, "4 fields where the header"),
        ("study,yi,sei\nA,-0.2\n", 2, "2 fields where the header (line 1) has 3"),
        ('study,yi,sei\nA,-0.2,0.1\n"B,-0.4,0.2\n', 3, "unexpected end of data"),
        ('study,yi,sei\n"A" x,-0.2,0.1\n', 2, "',' expected after '\"'"),
        ("\n\nstudy,yi,sei,Study\nA,1,1,1\n", 3, "column 1 (A) 'study' and column 4 (D) 'Study'"),
        ("study,yi,sei\n\n#A,-0.2,0.1\nB,-0.4\n", 4, "2 fields"),  # '#A' is a row, line 3
    ],
)
def test_structure_errors_name_the_line(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    with pytest.raises(InputError) as info:
        read_meta_data(_write(tmp_path, text))
    assert info.value.line == line
    assert str(info.value).startswith(f"trials.csv, line {line}")
    assert fragment in str(info.value)


def test_column_letters_beyond_z() -> None:
    assert [column_ref(i) for i in (0, 25, 26, 27, 701, 702)] == [
        "column 1 (A)",
        "column 26 (Z)",
        "column 27 (AA)",
        "column 28 (AB)",
        "column 702 (ZZ)",
        "column 703 (AAA)",
    ]


def test_dataframe_duplicate_names_after_normalising() -> None:
    frame = pd.DataFrame([["a", 0.1, 0.2, 0.3]], columns=["study", "yi", "sei", " YI "])
    with pytest.raises(InputError, match=r"column 2 \(B\) 'yi' and column 4 \(D\) ' YI '"):
        read_meta_data(frame)


def test_columns_equal_what_pandas_reads(tmp_path: Path) -> None:
    """The one csv pass builds the columns that pandas' C parser (an independent reader, same
    dialect) reads from the same file: quoted separators and line breaks, blank lines and
    records of empty fields skipped, each cell a str as written."""
    good = 'study,yi,sei\n"A, a",-0.2,0.1\n\n"B\nb", -0.4 ,0.2\n,,\nC,1e-3,0.3\n'
    path = _write(tmp_path, good)
    table = read_csv_file(path)
    theirs = pd.read_csv(
        path, dtype=object, na_filter=False, keep_default_na=False, skipinitialspace=True
    )
    theirs = theirs[(theirs != "").any(axis=1)].reset_index(drop=True)
    pd.testing.assert_frame_equal(table.frame, theirs.astype(object))
    assert list(table.columns) == ["study", "yi", "sei"]
    assert all(col.dtype == object for col in table.columns.values())
    assert table.columns["study"].tolist() == ["A, a", "B\nb", "C"]
    assert table.lines.tolist() == [2, 4, 7]


_FIELD = st.text(alphabet=st.sampled_from(list('ab ,"#\n\r\t;1.-')), max_size=6)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.lists(_FIELD, min_size=3, max_size=3), min_size=1, max_size=6))
def test_round_trip_of_quoted_fields(rows: list[list[str]]) -> None:
    """What csv.writer quotes is read back verbatim, each record on the line it starts on."""
    header = ["c1", "c2", "c3"]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(header)
    expected_lines = []
    for row in rows:
        # a line ends in CRLF, LF or CR, also inside quotes (as an editor counts lines)
        expected_lines.append(len(re.findall(r"\r\n|\r|\n", buffer.getvalue())) + 1)
        writer.writerow(row)
    text = buffer.getvalue()
    table = parse_csv_text(text, source="t.csv")
    # every record kept except those whose cells are all empty or spaces and tabs
    keep = [i for i, row in enumerate(rows) if "".join(row).strip(" \t")]
    assert table.frame.values.tolist() == [rows[i] for i in keep]
    assert table.lines.tolist() == [expected_lines[i] for i in keep]


# ---------------------------------------------------------------------------------------------
# values: numbers strictly, text as written
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["1_000", "١٢", "0x10", "1,5", "12 pts"])
def test_numbers_must_be_plain_ascii(tmp_path: Path, cell: str) -> None:
    with pytest.raises(InputError, match="non-numeric text") as info:
        read_meta_data(_write(tmp_path, f'study,yi,sei\nA,-0.2,0.1\nB,"{cell}",0.2\n'))
    assert (info.value.line, info.value.column) == (3, "yi")


def test_numbers_with_spaces_and_missing_ci_accepted(tmp_path: Path) -> None:
    text = "study,estimate,ci_low,ci_high\nA, 0.80 ,0.7 , 0.9\nB,0.5,NA,\n"
    meta = read_meta_data(_write(tmp_path, text))
    assert meta.frame["estimate"].tolist() == [0.8, 0.5]
    assert meta.frame["ci_low"].isna().tolist() == [False, True]


def test_group_keys_are_text_as_written(tmp_path: Path) -> None:
    text = "study,g,yi,sei\nA, 1 ,-0.2,0.1\nB,1.0,-0.4,0.2\nC,01,0.1,0.2\nA,1.0,0.0,0.3\n"
    meta = read_meta_data(_write(tmp_path, text), by="g")
    assert meta.frame["g"].tolist() == ["1", "1.0", "01", "1.0"]  # spaces around removed
    codes, keys = group_codes(meta.frame, ["g"])
    assert codes.tolist() == [0, 1, 2, 1] and keys == [("1",), ("1.0",), ("01",)]
    with pytest.raises(InputError, match="empty grouping cell") as info:
        read_meta_data(_write(tmp_path, text.replace("C,01", "C,  ")), by="g")
    assert (info.value.line, info.value.column, info.value.study) == (4, "g", "C")


def test_group_codes_first_appearance_several_columns() -> None:
    frame = pd.DataFrame({"a": ["x", "y", "x", "y", "x"], "b": [2.0, 1, 2, 2, 1.0]})
    codes, keys = group_codes(frame, ["a", "b"])
    assert codes.tolist() == [0, 1, 0, 2, 3]
    assert keys == [("x", 2.0), ("y", 1.0), ("y", 2.0), ("x", 1.0)]
    with pytest.raises(InputError, match="missing group label") as info:
        group_codes(pd.DataFrame({"a": ["x", None]}), ["a"])
    assert info.value.row == 2


def test_dataframe_rows_are_positions_not_index_labels() -> None:
    frame = pd.DataFrame(
        {"study": ["a", "b", "c"], "yi": [0.1, 0.2, 0.3], "sei": [0.1, -0.2, 0.3]},
        index=[10, 20, 30],
    )
    with pytest.raises(InputError) as info:
        read_meta_data(frame)
    assert (info.value.row, info.value.line) == (2, None)
    assert str(info.value).startswith("<DataFrame>, row 2, study 'b', column 'sei'")


def test_pool_groups_in_order_of_first_appearance_subgroups_sorted() -> None:
    """pool_groups lists groups as they first appear; subgroup_analysis sorts them like R."""
    from bayesmtor.frequentist import pool_groups, subgroup_analysis

    frame = pd.DataFrame(
        {
            "study": ["A", "B", "C", "D"],
            "g": ["b", "a", "b", "a"],
            "yi": [-0.2, 0.3, -0.4, 0.1],
            "sei": [0.1, 0.1, 0.2, 0.2],
        }
    )
    table = pool_groups(frame, by="g", measure="HR", method="FE")
    assert table["g"].tolist() == ["b", "a"]
    # b: (A, C) weights 100, 25: (-20 - 10) / 125; a: (B, D): (30 + 2.5) / 125
    np.testing.assert_allclose(table["estimate"], [-30 / 125, 32.5 / 125], rtol=1e-12)
    sub = subgroup_analysis(frame, by="g", measure="HR", method="FE")
    assert sub.groups == ("a", "b")
    np.testing.assert_allclose([r.estimate for r in sub.results], [32.5 / 125, -30 / 125])


@settings(max_examples=100, deadline=None)
@given(
    first=st.lists(st.sampled_from(["a", "b", "1", "1.0", "01", " a"]), min_size=1, max_size=30),
    numbers=st.lists(st.sampled_from([0, 1, 2, -3, 10**12]), min_size=30, max_size=30),
)
def test_group_codes_number_groups_like_pandas_factorize(first, numbers) -> None:
    """Groups numbered by first appearance, keys exactly as given: the codes of a text and an
    integer column, alone and together, are those of pandas.factorize (the reference)."""
    n = len(first)
    cols = {
        "study": np.array([f"s{i}" for i in range(n)], dtype=object),
        "g": np.array(first, dtype=object),
        "h": np.array(numbers[:n], dtype=np.int64),
    }
    frame = pd.DataFrame(cols)
    for by in (["g"], ["h"], ["g", "h"]):
        codes, keys = group_codes(cols, by)
        ref, _ = pd.factorize(pd.MultiIndex.from_frame(frame[by]) if len(by) > 1 else frame[by[0]])
        assert codes.tolist() == ref.tolist()
        assert keys == list(dict.fromkeys(zip(*(frame[b].tolist() for b in by), strict=True)))
        assert group_codes(frame, by)[0].tolist() == codes.tolist()


def test_group_codes_refuse_a_missing_key() -> None:
    for values in ([1.0, float("nan")], ["a", None]):
        cols = {"study": np.array(["x", "y"], dtype=object), "g": np.array(values)}
        with pytest.raises(InputError, match="missing group label") as info:
            group_codes(cols, ["g"])
        assert info.value.row == 2


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", -1, -2, 1, 1.0]), st.sampled_from(["x", "y"])),
        max_size=12,
    )
)
def test_first_duplicate_is_the_first_repeated_row(rows) -> None:
    """The hashed search finds the row a plain scan finds (-1 and -2 share a hash in CPython,
    1 and 1.0 are equal): the first row equal to an earlier one, and that earlier row."""
    from bayesmtor.inputs import _first_duplicate

    expected = None
    for pos, row in enumerate(rows):
        earlier = [i for i in range(pos) if rows[i] == row]
        if earlier:
            expected = (pos, earlier[0])
            break
    cols = [np.array([r[j] for r in rows], dtype=object) for j in range(2)] if rows else None
    assert (_first_duplicate(cols) if rows else None) == expected
