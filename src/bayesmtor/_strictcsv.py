"""The one CSV reader of the package: strict, with the file line of every record.

Every CSV that bayesmtor reads -- a user's file given to :func:`bayesmtor.inputs.read_meta_data`
(``bayesmtor pool``, frequentist or ``--bayes``) and the curated tables of :mod:`bayesmtor.data`
-- goes through :func:`read_csv_file`. The rules (also listed in :mod:`bayesmtor.inputs`):

* The file is UTF-8; a byte-order mark at its start is removed; NUL bytes are refused.
* Fields are separated by commas, semicolons or tabs: the separator is read off the header
  line, as the one of ``,``, ``;`` and tab that occurs there outside double quotes. A header
  with none of them is one column (comma-separated); a header in which two or three of them
  occur outside quotes could be read two ways and is refused, naming the line and the first
  column that holds the other separator. Fields may be quoted with ``"``; a ``"`` inside a
  quoted field is written ``""``. A quoted field keeps every character between its quotes:
  separators, ``#``, line breaks, leading and trailing spaces. Spaces right after a separator
  are skipped, so ``A, "Smith, 2010"`` is two fields (the second one quoted). Text after a
  closing quote or a quote that is never closed is an error.
* There is no comment syntax: a line starting with ``#`` is a record like any other.
* Lines may end in LF, CRLF or CR. Blank lines (empty, or only spaces and tabs) and records
  in which every field is empty or only spaces and tabs (``,,,,``, as spreadsheets write below
  the data) are ignored wherever they are, whatever their number of fields.
* The first record is the header. Every name must be non-empty and unique (also after the
  caller's normalisation, e.g. ``n_trt`` and ``N_TRT``); every other record must have exactly
  as many fields as the header.
* Line numbers count the lines of the file from 1 (the header is line 1 when nothing precedes
  it); a record spanning several lines (a quoted line break) is on the line where it starts.

The file is read once, by the :mod:`csv` module (``strict=True``), without splitting lines
first: the pass validates the structure, records the first line of each record and appends
each field to its column. The columns are NumPy object arrays of Python strings; a pandas
DataFrame of them (:attr:`CsvTable.frame`) is built only when asked for, so that reading a
file does not import pandas.
"""

from __future__ import annotations

import csv
import io
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from bayesmtor._frames import frame_of
from bayesmtor.errors import InputError

__all__ = [
    "CsvTable",
    "check_header",
    "column_ref",
    "parse_csv_bytes",
    "parse_csv_text",
    "read_csv_file",
]

#: The dialect of the pass: the separator of the header (:func:`_delimiter`), double
#: quote, ``""`` as the escape, spaces after a separator skipped, no escape character, no
#: comment character.
_CSV_DIALECT = {
    "quotechar": '"',
    "doublequote": True,
    "skipinitialspace": True,
    "quoting": csv.QUOTE_MINIMAL,
    "strict": True,
}
_BLANK = " \t"  # a record of one field made of these characters only is a blank line
#: The separators a file may use, in the order their names are listed in messages.
DELIMITERS: dict[str, str] = {",": "','", ";": "';'", "\t": "a tab"}


@dataclass(frozen=True, eq=False)
class CsvTable:
    """A CSV file read by :func:`read_csv_file`.

    Attributes
    ----------
    columns : dict of str to numpy.ndarray
        One entry per header field, named as in the header and in its order: an object array
        of the cells, every cell a ``str`` exactly as read (no number conversion, no
        missing-value markers).
    lines : numpy.ndarray
        ``int64``, the line of the file on which each row starts.
    header_line : int
        The line of the header.
    delimiter : str
        The separator read off the header: ``","``, ``";"`` or ``"\\t"``.
    """

    columns: dict[str, np.ndarray]
    lines: np.ndarray
    header_line: int
    delimiter: str = ","

    @property
    def frame(self) -> pd.DataFrame:
        """The columns as a pandas DataFrame of ``str`` cells with a ``RangeIndex``."""
        return frame_of(self.columns)


def column_ref(position: int) -> str:
    """``"column 3 (C)"`` for the 0-based ``position``: the number and the spreadsheet letter."""
    letters = ""
    n = position + 1
    while n:
        n, rest = divmod(n - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return f"column {position + 1} ({letters})"


def check_header(
    names: list[str],
    *,
    source: str,
    line: int | None,
    normalise: Callable[[str], str] | None = None,
) -> None:
    """Refuse empty and duplicate column names (exact, then after ``normalise``).

    Parameters
    ----------
    names : list of str
        The column names in order.
    source : str
        Name of the data in messages.
    line : int or None
        Line of the header in the file (``None`` for a DataFrame).
    normalise : callable, optional
        Maps a name to the form the caller compares (e.g. lower case, spaces to ``_``).
    """
    where = " of the header" if line is not None else ""
    for pos, name in enumerate(names):
        if not str(name).strip():
            raise InputError(
                f"{column_ref(pos)}{where} has no name (no header); give every column a name, "
                "or remove the trailing commas.",
                source=source,
                line=line,
            )
    keys: list[tuple[str, Callable[[str], str] | None]] = [("named", None)]
    if normalise is not None:
        keys.append(("mean", normalise))
    for verb, fn in keys:
        seen: dict[str, int] = {}
        for pos, name in enumerate(names):
            key = fn(str(name)) if fn is not None else str(name)
            if key in seen:
                first = seen[key]
                if verb == "named":
                    what = (
                        f"{column_ref(first)} and {column_ref(pos)}{where} are both named '{key}'"
                    )
                else:
                    what = (
                        f"{column_ref(first)} '{names[first]}' and {column_ref(pos)} "
                        f"'{name}'{where} both mean '{key}'"
                    )
                raise InputError(
                    f"{what}; keep one of them or rename the other (each column is read once, "
                    "so a second copy would be ignored).",
                    source=source,
                    line=line,
                    column=key,
                )
            seen[key] = pos


def read_csv_file(
    path: str | Path,
    *,
    source: str | None = None,
    normalise: Callable[[str], str] | None = None,
) -> CsvTable:
    """Read a CSV file strictly (rules in the module docstring).

    Parameters
    ----------
    path : str or Path
        The file.
    source : str, optional
        Name of the file in messages (default: its name).
    normalise : callable, optional
        Column names equal after this function are refused as duplicates.

    Returns
    -------
    CsvTable

    Raises
    ------
    bayesmtor.errors.InputError
        A missing or unreadable file, a file that is not UTF-8 text, an empty file, a header
        with empty or duplicate names, a record with more or fewer fields than the header, or
        a quoting error; each names the line.
    """
    path = Path(path)
    label = source or path.name
    if not path.exists():
        raise InputError(f"file not found: '{path}'. Give the path of a CSV file.", source=label)
    if not path.is_file():
        raise InputError(
            f"'{path}' is not a file (it is a directory or a special file). Give a CSV file.",
            source=label,
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror}.", source=label) from None
    return parse_csv_bytes(data, source=label, normalise=normalise)


def parse_csv_text(
    text: str, *, source: str, normalise: Callable[[str], str] | None = None
) -> CsvTable:
    """Parse CSV text held in memory strictly; see :func:`read_csv_file`."""
    return parse_csv_bytes(text.encode("utf-8"), source=source, normalise=normalise)


def parse_csv_bytes(
    data: bytes, *, source: str, normalise: Callable[[str], str] | None = None
) -> CsvTable:
    """Parse the bytes of a CSV file strictly; see :func:`read_csv_file`.

    The pass reads the bytes through a decoder, so the text is never held in memory as a
    whole (a Python ``io.StringIO`` would take 4 bytes per character).
    """
    try:
        data.decode("utf-8")  # validate only; the passes decode chunk by chunk
    except UnicodeDecodeError as exc:
        raise InputError(
            f"cannot decode the file as UTF-8 ({exc.reason} at byte {exc.start}); "
            "save it as UTF-8 CSV.",
            source=source,
        ) from None
    if b"\x00" in data:
        raise InputError(
            f"the file contains NUL bytes (first at byte {data.index(0)}), so it is binary or "
            "UTF-16, not a UTF-8 text CSV; save it as UTF-8 CSV.",
            source=source,
        )
    sep = _delimiter(data, source)
    header, header_line, starts, cells = _scan(data, source, normalise, sep)
    lines = np.frombuffer(starts, dtype=np.int64).copy() if len(starts) else np.zeros(0, np.int64)
    columns = dict(zip(header, cells, strict=True))
    return CsvTable(columns=columns, lines=lines, header_line=header_line, delimiter=sep)


def _text(data: bytes) -> io.TextIOWrapper:
    """The bytes as a text stream: UTF-8 without its BOM, line ends untranslated."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")


def _delimiter(data: bytes, source: str) -> str:
    """The separator of the file, read off its header (the first line that is not blank).

    Each of ``,``, ``;`` and tab is counted outside double quotes (a ``"`` opens or closes a
    quoted stretch). Exactly one present: that one; none: ``,`` (a one-column header); more
    than one: the header could be read two ways, and it is refused.
    """
    line_no, header = 0, ""
    for number, line in enumerate(_text(data), start=1):
        if line.strip(_BLANK + "\r\n"):
            line_no, header = number, line.rstrip("\r\n")
            break
    outside = "".join(part for i, part in enumerate(header.split('"')) if i % 2 == 0)
    found = [sep for sep in DELIMITERS if sep in outside]
    if len(found) <= 1:
        return found[0] if found else ","
    counts = {sep: outside.count(sep) for sep in found}
    main = max(found, key=lambda sep: counts[sep])  # ties: the first in DELIMITERS
    fields = next(csv.reader([header], delimiter=main, **_CSV_DIALECT))
    pos, field = next(
        (i, f) for i, f in enumerate(fields) if any(sep in f for sep in found if sep != main)
    )
    listing = " and ".join(
        f"{DELIMITERS[sep]} ({'once' if counts[sep] == 1 else f'{counts[sep]} times'})"
        for sep in found
    )
    raise InputError(
        f"the header could be read with more than one separator: it holds {listing} outside "
        f"quotes, and {column_ref(pos)} '{field.strip()}' (read with {DELIMITERS[main]}) holds "
        "another. Use one separator throughout (commas, semicolons or tabs), and quote a column "
        'name that contains another one ("a;b").',
        source=source,
        line=line_no,
        column=field.strip() or None,
    )


# --------------------------------------------------------------------------------------------
# pass 1: structure and lines
# --------------------------------------------------------------------------------------------


def _is_blank(row: list[str]) -> bool:
    return not row or (len(row) == 1 and not row[0].strip(_BLANK))


def _scan(
    data: bytes, source: str, normalise: Callable[[str], str] | None, sep: str = ","
) -> tuple[list[str], int, array, list[np.ndarray]]:
    """Validate the structure; return the header, its line, each record's line and the
    columns (an object array of the cells of each header field)."""
    reader = csv.reader(_text(data), delimiter=sep, **_CSV_DIALECT)
    starts = array("q")
    header: list[str] | None = None
    header_line = 0
    n_fields = 0
    rows: list[list[str]] = []  # a batch of records, moved to the columns when full
    parts: list[list[np.ndarray]] = []
    prev = 0
    try:
        for row in reader:
            start = prev + 1
            prev = reader.line_num
            if header is None:
                if _is_blank(row):
                    continue
                header, header_line, n_fields = row, start, len(row)
                check_header(row, source=source, line=header_line, normalise=normalise)
                parts = [[] for _ in row]
                continue
            # a blank line, or a record of empty fields (the first field decides most rows)
            if not (row and row[0].strip(_BLANK)) and not "".join(row).strip(_BLANK):
                continue
            if len(row) != n_fields:
                _check_count(len(row), header, start, header_line, len(starts) + 1, source)
            starts.append(start)
            rows.append(row)
            if len(rows) == _BATCH:
                _move(rows, parts)
    except csv.Error as exc:
        raise InputError(
            f"cannot parse the CSV record that starts on this line ({exc}). A quoted field must "
            'be closed by a second " followed by a comma or the end of the line; write a " '
            'inside a quoted field as "".',
            source=source,
            line=prev + 1,
            row=len(starts) + 1 if header is not None else None,
        ) from None
    if header is None:
        raise InputError(
            "the file is empty (no header and no data rows); expected a header line such as "
            "'study,events_trt,n_trt,events_ctl,n_ctl' followed by one row per study.",
            source=source,
        )
    _move(rows, parts)
    columns = [np.concatenate(p) if p else np.empty(0, dtype=object) for p in parts]
    return header, header_line, starts, columns


_BATCH = 65536  # records held as lists before their fields join the columns


def _move(rows: list[list[str]], parts: list[list[np.ndarray]]) -> None:
    """Append the fields of ``rows`` to the column pieces ``parts`` and empty ``rows``."""
    if rows:
        for piece, values in zip(parts, zip(*rows, strict=True), strict=True):
            column = np.empty(len(values), dtype=object)
            column[:] = values
            piece.append(column)
        rows.clear()


def _check_count(
    got: int, header: list[str], line: int, header_line: int, row: int, source: str
) -> None:
    want = len(header)
    if got == want:
        return
    hint = (
        'quote labels that contain commas ("Smith, 2010") and check for a stray comma'
        if got > want
        else "a value is missing: every row needs one field per column (leave a cell empty "
        "as nothing between two commas)"
    )
    if header[0].lstrip().startswith("#"):
        hint = (
            "it starts with '#', but there is no comment syntax: "
            "remove the lines above the real header"
        )
    raise InputError(
        f"{got} field{'s' if got != 1 else ''} where the header (line {header_line}) has "
        f"{want}; {hint}.",
        source=source,
        line=line,
        row=row,
    )
