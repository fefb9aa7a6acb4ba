"""Reading and validating user data for a meta-analysis.

One entry point, :func:`read_meta_data`, accepts a CSV file or a :class:`pandas.DataFrame` in
one of four shapes, each with a ``study`` label column:

``counts``
    ``events_trt, n_trt, events_ctl, n_ctl`` -- events and totals per arm (binary outcomes).
    metafor's names are read as this shape too: the cells ``ai, bi, ci, di`` (treated events,
    treated non-events, control events, control non-events; ``n_trt = ai + bi``,
    ``n_ctl = ci + di``) or ``ai, n1i, ci, n2i`` (events and totals). Errors name the column
    as written (``bi``), and the table read holds the ``counts`` columns.
``ratio_ci``
    ``estimate, ci_low, ci_high`` -- a published ratio (HR, RR, OR) with its 95% CI. A row may
    leave *both* bounds empty (a ratio printed without a CI); it is kept, and
    :func:`bayesmtor.effects.escalc` marks it as excluded from pooling.
``log_se``
    ``yi, sei`` -- a log ratio and its standard error.
``means``
    ``mean_trt, sd_trt, n_trt, mean_ctl, sd_ctl, n_ctl`` -- mean, standard deviation and number
    of participants per arm (continuous outcomes; ``--measure MD`` or ``SMD``). metafor's names
    ``m1i, sd1i, n1i, m2i, sd2i, n2i`` are read as this shape too (errors name the column as
    written). Means must be finite, SDs > 0 and sizes whole numbers >= 2.

Column names are normalised (stripped, lower case, spaces and hyphens to ``_``). Other columns
are kept as ``extra_columns`` (e.g. ``outcome`` or ``drug_class`` for grouping).

How a CSV file is read
----------------------
Strictly, so that a file is either read as its author meant or refused with the line to fix:

* UTF-8 text (a byte-order mark at the start is removed; NUL bytes, UTF-16 and Latin-1 are
  refused). Lines may end in LF, CRLF or CR.
* Separated by commas, semicolons or tabs, whichever of the three occurs in the header line
  outside quotes; a header in which more than one occurs (``study;yi,sei``) could be read two
  ways and is refused, naming the line and the column. ``"`` quotes: a quoted field keeps
  every character between its quotes (separators, ``#``, line breaks, spaces), and ``""``
  inside it is one ``"``. Spaces right after a separator are skipped, so
  ``Smith, "Jones, 2010"`` is two fields.
* Every record has exactly as many fields as the header; one more (an unquoted comma in a label,
  such as ``Smith, 2010``) or one fewer is an error naming the line and both counts. The header
  names must be non-empty and unique, also after normalisation (``n_trt`` and ``N_TRT``).
* There is no comment syntax: a line or label starting with ``#`` is data.
* Blank lines (empty, or only spaces and tabs) and records in which every field is empty
  (``,,,,``, as spreadsheets write) are ignored wherever they are.

The curated tables of :mod:`bayesmtor.data` are read by the same reader.

Values
------
* The shape's value columns hold plain numbers (``12``, ``0.45``, ``-1.2e-3``; surrounding
  spaces are ignored). An empty cell, or ``NA``, ``NaN``, ``N/A``, ``null``, ``none`` or ``-``,
  is missing (allowed only for both CI bounds of a ratio); any other text -- a thousands
  separator, a decimal comma, ``%``, ``TRUE``, digits other than ASCII -- is refused.
* Study labels, grouping columns and the other extra columns of a file are text, compared and
  printed exactly as written apart from surrounding whitespace, which is removed: nothing is
  turned into a number, so ``1``, ``1.0`` and ``01`` are three groups, and ``007`` stays
  ``007``. For a DataFrame, grouping and extra columns keep the values given.

Row numbers in messages
-----------------------
For a file, an error names the **line of the file** on which the record starts (the header is
line 1 when it is the first line; a record with a quoted line break is on the line where it
starts): ``trials.csv, line 5, study 'Gamma 2012', column 'n_ctl': ...``
(:attr:`~bayesmtor.errors.InputError.line`). For a DataFrame it names ``row N``, the 1-based
position (the first row is row 1, whatever the index). In both cases
:attr:`~bayesmtor.errors.InputError.row` is that 1-based position among the data rows, and
:attr:`MetaInput.lines` maps positions to lines.
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from bayesmtor._frames import all_text, frame_of
from bayesmtor._strictcsv import check_header, read_csv_file
from bayesmtor.errors import InputError

__all__ = ["CELL_LAYOUTS", "MEANS_LAYOUT", "SHAPES", "MetaInput", "group_codes", "read_meta_data"]

#: Required numeric columns of each input shape (besides ``study``).
SHAPES: dict[str, tuple[str, ...]] = {
    "counts": ("events_trt", "n_trt", "events_ctl", "n_ctl"),
    "ratio_ci": ("estimate", "ci_low", "ci_high"),
    "log_se": ("yi", "sei"),
    "means": ("mean_trt", "sd_trt", "n_trt", "mean_ctl", "sd_ctl", "n_ctl"),
}
STUDY = "study"
#: metafor's cell names read as the ``counts`` shape: (treated events, treated non-events or
#: total, control events, control non-events or total).
CELL_LAYOUTS: dict[str, tuple[str, ...]] = {
    "cells": ("ai", "bi", "ci", "di"),
    "cells_n": ("ai", "n1i", "ci", "n2i"),
}
_CELL_NAMES = frozenset(name for layout in CELL_LAYOUTS.values() for name in layout)
#: metafor's names of the ``means`` shape, in the order of ``SHAPES["means"]``.
MEANS_LAYOUT: tuple[str, ...] = ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")
_SHAPE_LIST = (
    "counts (events_trt, n_trt, events_ctl, n_ctl), ratio_ci (estimate, ci_low, ci_high), "
    "log_se (yi, sei) or means (mean_trt, sd_trt, n_trt, mean_ctl, sd_ctl, n_ctl)"
)
_DATAFRAME_SOURCE = "<DataFrame>"
# Text that counts as an empty (missing) cell rather than as non-numeric text.
_MISSING_TEXT = frozenset({"", "na", "nan", "n/a", "null", "none", "-"})
_MISSING_LEN = max(map(len, _MISSING_TEXT))
_NO_LABEL = frozenset({"", "nan", "na", "none", "null"})  # study labels that mean "no label"
_NO_LABEL_LEN = max(map(len, _NO_LABEL))


@dataclass(frozen=True, eq=False)
class MetaInput:
    """Validated meta-analysis input.

    Attributes
    ----------
    columns : dict of str to numpy.ndarray
        The validated columns under their normalised names: ``study`` (object array of str),
        the shape's numeric columns (int64 counts, float64 otherwise), then the extra columns
        in input order (text for a file, the values given for a DataFrame).
    frame : pandas.DataFrame
        The same columns as a DataFrame (built on first use; reading a file does not import
        pandas).
    shape : str
        ``"counts"``, ``"ratio_ci"``, ``"log_se"`` or ``"means"``.
    source : str
        File name, the ``name`` given, or ``"<DataFrame>"``.
    extra_columns : tuple of str
        Columns kept besides ``study`` and the shape's columns.
    by : tuple of str
        Grouping columns within which study labels are unique.
    lines : numpy.ndarray or None
        For a file, the line on which each row of ``frame`` starts (``int64``, header = line 1
        when it is the first line); ``None`` for a DataFrame.
    """

    columns: dict[str, np.ndarray]
    shape: str
    source: str
    extra_columns: tuple[str, ...] = ()
    by: tuple[str, ...] = ()
    lines: np.ndarray | None = None

    @functools.cached_property
    def frame(self) -> pd.DataFrame:
        """The validated columns as a pandas DataFrame (a ``RangeIndex``)."""
        return frame_of(self.columns)

    @property
    def k(self) -> int:
        """Number of rows (studies)."""
        return len(self.columns[STUDY])

    @property
    def value_columns(self) -> tuple[str, ...]:
        """The numeric columns of this shape."""
        return SHAPES[self.shape]

    def summary(self) -> pd.DataFrame:
        """One row per column: its role, dtype, missing cells, minimum and maximum."""
        import pandas as pd

        rows = []
        for col in self.frame.columns:
            if col == STUDY:
                role = "study label"
            elif col in SHAPES[self.shape]:
                role = f"{self.shape} value"
            elif col in self.by:
                role = "grouping (by)"
            else:
                role = "extra"
            series = self.frame[col]
            numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(
                series
            )
            rows.append(
                {
                    "column": col,
                    "role": role,
                    "dtype": str(series.dtype),
                    "n_missing": int(series.isna().sum()),
                    "n_distinct": int(series.nunique(dropna=True)),
                    "min": float(series.min()) if numeric and series.notna().any() else np.nan,
                    "max": float(series.max()) if numeric and series.notna().any() else np.nan,
                }
            )
        return pd.DataFrame(
            rows, columns=["column", "role", "dtype", "n_missing", "n_distinct", "min", "max"]
        )

    def __repr__(self) -> str:
        studies = list(self.columns[STUDY])
        shown = ", ".join(repr(s) for s in studies[:3]) + (", ..." if len(studies) > 3 else "")
        extra = f", extra_columns={self.extra_columns!r}" if self.extra_columns else ""
        by = f", by={self.by!r}" if self.by else ""
        return (
            f"MetaInput(source={self.source!r}, shape={self.shape!r}, k={self.k}, "
            f"studies=[{shown}]{extra}{by})"
        )


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


class _Where:
    """Where a row is: ``line N`` of a file, or ``row N`` (1-based position) of a DataFrame."""

    def __init__(self, source: str, lines: np.ndarray | None) -> None:
        self.source = source
        self.lines = lines  # file line (1-based) of each data row

    def at(self, pos: int) -> dict[str, int | None]:
        """``row=`` and ``line=`` arguments of :class:`InputError` for 0-based ``pos``."""
        line = int(self.lines[pos]) if self.lines is not None else None
        return {"row": int(pos) + 1, "line": line}

    def name(self, pos: int) -> str:
        """``"line 7"`` or ``"row 6"``."""
        if self.lines is not None:
            return f"line {int(self.lines[pos])}"
        return f"row {int(pos) + 1}"


def _normalise_name(name: object) -> str:
    text = str(name).strip().lower()
    return re.sub(r"[\s\-]+", "_", text)


def _suggest(name: str, candidates: list[str]) -> str | None:
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return match[0] if match else None


def _not_found(what: str, hint: str, normalised: list[str], label: str, column: str) -> InputError:
    """The error for a column ``what`` missing from the header ``normalised``."""
    return InputError(
        f"{what} not found{hint or '.'} Found: {', '.join(normalised)}.",
        source=label,
        column=column,
    )


def _cell_text(text: str) -> str:
    """A cell's text for a message: quoted, on one line."""
    return repr(text) if any(ch in text for ch in "\n\r'") else f"'{text}'"


def _numeric_column(
    raw: pd.Series, column: str, where: _Where, studies: list[str], shape: str
) -> np.ndarray:
    """Convert one column to float; non-numeric text raises, missing text becomes NaN.

    ``raw`` is a file's column (an object array of ``str``) or a DataFrame's (a Series).
    """
    if isinstance(raw, np.ndarray):  # a file's column: every cell a str
        values = np.full(raw.size, np.nan)
        text = [c.strip() for c in raw.tolist()]
    else:
        values, text = _frame_column_text(raw, column, where, studies, shape)
        if text is None:
            return values
    present = np.flatnonzero(~_missing_text(text))
    if present.size:
        chosen = [text[i] for i in present.tolist()]
        joined = "".join(chosen)
        try:
            if not joined.isascii() or "_" in joined:  # float() would accept 1_000 and ١٢
                raise ValueError
            values[present] = np.array(chosen, dtype=object).astype(np.float64)
        except ValueError:
            pos = next(int(i) for i, t in zip(present, chosen, strict=True) if not _plain(t))
            raise InputError(
                f"non-numeric text {_cell_text(text[pos])} in a numeric column; write a plain "
                "number such as 12 or 0.45 (decimal point, no thousands separator, no % sign), "
                "or leave the cell empty only where that is allowed.",
                source=where.source,
                **where.at(pos),
                study=studies[pos],
                column=column,
            ) from None
    return values


def _frame_column_text(
    raw: pd.Series, column: str, where: _Where, studies: list[str], shape: str
) -> tuple[np.ndarray, list[str] | None]:
    """A DataFrame column's numbers, and the text of its cells still to convert (None: all
    converted); true/false values are refused."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(raw):
        pos = 0
        raise InputError(
            f"column holds true/false values; {shape} needs numbers here.",
            source=where.source,
            **where.at(pos),
            study=studies[pos],
            column=column,
        )
    if pd.api.types.is_numeric_dtype(raw):
        return raw.to_numpy(dtype=float, na_value=np.nan), None
    cells = raw.to_numpy(dtype=object)
    n = cells.size
    values = np.full(n, np.nan)
    if pd.api.types.infer_dtype(cells, skipna=False) == "string":
        text = [c.strip() for c in cells]  # every cell a str (always so for a file)
    else:  # a DataFrame column mixing numbers, missing values and text
        text = []
        for pos, cell in enumerate(cells.tolist()):
            if cell is None or cell is pd.NA or (isinstance(cell, float) and math.isnan(cell)):
                text.append("")
            elif isinstance(cell, (int, float, np.integer, np.floating)) and not isinstance(
                cell, (bool, np.bool_)
            ):
                values[pos] = float(cell)
                text.append("")
            else:
                text.append(str(cell).strip())
    return values, text


def _missing_text(text: list[str]) -> np.ndarray:
    """True where a stripped cell is empty or a missing-value word (NA, NaN, null, ...)."""
    n = len(text)
    short = np.flatnonzero(np.fromiter(map(len, text), dtype=np.int64, count=n) <= _MISSING_LEN)
    missing = np.zeros(n, dtype=bool)
    for i in short.tolist():  # only cells short enough to be one of the words
        missing[i] = text[i].lower() in _MISSING_TEXT
    return missing


def _plain(text: str) -> bool:
    """True if ``text`` is a number written with ASCII characters (what float() may read)."""
    if not text.isascii() or "_" in text:
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def _cell_layout(columns: list[str], source: str) -> tuple[str, ...] | None:
    """metafor's cell columns of the header (``ai, bi, ci, di`` or ``ai, n1i, ci, n2i``), if any.

    Refuses a header that holds some of these names but neither layout completely, or both.
    """
    named = [c for c in columns if c in _CELL_NAMES]
    if not named:
        return None
    complete = [cols for cols in CELL_LAYOUTS.values() if all(c in columns for c in cols)]
    if len(complete) == 1 and set(named) == set(complete[0]):
        return complete[0]
    raise InputError(
        f"metafor cell columns found ({', '.join(named)}), but not one complete layout: give "
        "ai, bi, ci, di (events and non-events per arm) or ai, n1i, ci, n2i (events and "
        "totals), not a mixture.",
        source=source,
        column=next(c for c in named if c not in complete[0])
        if complete
        else next(c for cols in CELL_LAYOUTS.values() for c in cols if c not in columns),
    )


def _means_layout(columns: list[str], source: str) -> tuple[str, ...] | None:
    """metafor's means columns (``m1i, sd1i, n1i, m2i, sd2i, n2i``) of the header, if any.

    ``n1i``/``n2i`` alone are metafor's totals of counts; ``m1i``, ``sd1i``, ``m2i`` or
    ``sd2i`` make the header a means one, which must then hold all six and no cell names.
    """
    if not any(c in columns for c in ("m1i", "sd1i", "m2i", "sd2i")):
        return None
    missing = [c for c in MEANS_LAYOUT if c not in columns]
    cells = [c for c in columns if c in _CELL_NAMES and c not in MEANS_LAYOUT]
    if missing or cells:
        raise InputError(
            "metafor's means columns found, but "
            + (f"missing: {', '.join(missing)}" if missing else f"also cells {', '.join(cells)}")
            + "; give m1i, sd1i, n1i, m2i, sd2i, n2i (means, SDs and sizes per arm).",
            source=source,
            column=(missing or cells)[0],
        )
    return MEANS_LAYOUT


def _detect_shape(columns: list[str], source: str) -> str:
    # n_trt and n_ctl belong to counts and means: a shape is present by its own columns
    shared = {"n_trt", "n_ctl"}
    present = {
        shape: [c for c in cols if c in columns and c not in shared]
        for shape, cols in SHAPES.items()
    }
    means = _means_layout(columns, source)
    if means is not None:
        present["means"] = present["means"] + list(means)
    cells = _cell_layout(columns, source) if means is None else None
    if cells is not None:
        present["counts"] = present["counts"] + list(cells)
    with_any = [shape for shape, found in present.items() if found]
    if len(with_any) > 1:
        listing = "; ".join(f"{s}: {', '.join(present[s])}" for s in with_any)
        raise InputError(
            f"columns of more than one input shape are present ({listing}). Use exactly one "
            f"shape per table: {_SHAPE_LIST}; remove or rename the others.",
            source=source,
        )
    others = [c for c in columns if c != STUDY]
    if means is not None:
        if present["means"] != list(means) or any(c in columns for c in shared):
            raise InputError(
                "columns of more than one input shape are present (means: "
                f"{', '.join(c for c in columns if c in SHAPES['means'] or c in means)}); give "
                "the means once, either as mean_trt, sd_trt, n_trt, mean_ctl, sd_ctl, n_ctl or "
                "as metafor's m1i, sd1i, n1i, m2i, sd2i, n2i.",
                source=source,
            )
        return "means"
    if cells is not None:
        if present["counts"] != list(cells) or any(c in columns for c in shared):
            raise InputError(
                f"columns of more than one input shape are present (counts: "
                f"{', '.join(c for c in columns if c in SHAPES['counts'] or c in cells)}); give "
                "the counts once, either as events_trt, "
                "n_trt, events_ctl, n_ctl or as metafor's ai, bi, ci, di / ai, n1i, ci, n2i.",
                source=source,
            )
        return "counts"
    if with_any:
        shape = with_any[0]
    else:
        # No exact column: pick the shape whose names the columns resemble most.
        scores = {
            shape: sum(_suggest(req, others) is not None for req in cols)
            for shape, cols in SHAPES.items()
        }
        shape = max(scores, key=lambda s: scores[s])
        if scores[shape] == 0:
            raise InputError(
                f"no recognised value columns (found: {', '.join(columns) or 'none'}). "
                f"Expected a 'study' column plus one shape: {_SHAPE_LIST}.",
                source=source,
            )
    missing = [c for c in SHAPES[shape] if c not in columns]
    if missing:
        unused = [c for c in others if c not in SHAPES[shape]]
        needed = ", ".join((STUDY,) + SHAPES[shape])
        for req in missing:
            guess = _suggest(req, unused)
            if guess is not None:
                raise InputError(
                    f"column '{guess}' is not a {shape} column and '{req}' was not found; "
                    f"did you mean '{req}'? Rename it ({shape} needs: {needed}).",
                    source=source,
                    column=guess,
                )
        raise InputError(
            f"required column '{missing[0]}' is missing (the {shape} shape needs: {needed}; "
            f"missing: {', '.join(missing)}).",
            source=source,
            column=missing[0],
        )
    return shape


def _check_finite(
    values: pd.Series, column: str, where: _Where, studies: list[str], allow_nan: bool = False
) -> None:
    arr = np.asarray(values, dtype=float)
    for pos in np.flatnonzero(~np.isfinite(arr)):
        if allow_nan and np.isnan(arr[pos]):
            continue
        what = "an empty or missing (NaN) cell" if np.isnan(arr[pos]) else f"value {arr[pos]}"
        raise InputError(
            f"{what}; a finite number is required here.",
            source=where.source,
            **where.at(pos),
            study=studies[pos],
            column=column,
        )


def _fail_first(
    mask: np.ndarray,
    where: _Where,
    studies: list[str],
    column: str,
    message: object,
) -> None:
    """Raise for the first row where ``mask`` is True; ``message(pos)`` builds the text."""
    hits = np.flatnonzero(mask)
    if hits.size:
        pos = int(hits[0])
        raise InputError(
            f"{message(pos)}.",  # type: ignore[operator]
            source=where.source,
            **where.at(pos),
            study=studies[pos],
            column=column,
        )


def _validate_counts(
    frame: pd.DataFrame, where: _Where, studies: list[str], names: tuple[str, ...] | None = None
) -> None:
    """Check the count columns ``names`` (default the counts shape's; else metafor's cells)."""
    names = SHAPES["counts"] if names is None else names
    for col in names:
        _check_finite(frame[col], col, where, studies)
        arr = np.asarray(frame[col], dtype=float)
        _fail_first(
            arr < 0,
            where,
            studies,
            col,
            lambda p, a=arr: f"negative count {a[p]:g}; counts must be whole numbers >= 0",
        )
        _fail_first(
            arr != np.round(arr),
            where,
            studies,
            col,
            lambda p, a=arr: f"count {a[p]:g} is not a whole number; counts must be integers",
        )
        _fail_first(
            arr > 2.0**53,
            where,
            studies,
            col,
            lambda p, a=arr: (
                f"count {a[p]:g} is too large to be a number of participants "
                "(above 2^53); check the cell"
            ),
        )
    if names == CELL_LAYOUTS["cells"]:
        for ev, non in (("ai", "bi"), ("ci", "di")):
            total = np.asarray(frame[ev], dtype=float) + np.asarray(frame[non], dtype=float)
            _fail_first(
                total == 0,
                where,
                studies,
                non,
                lambda p, ev=ev, non=non: (
                    f"no participants in the arm ({ev} + {non} = 0); an arm needs at least one"
                ),
            )
        return
    for ev, tot in zip(names[::2], names[1::2], strict=True):
        e = np.asarray(frame[ev], dtype=float)
        n = np.asarray(frame[tot], dtype=float)
        _fail_first(
            n == 0,
            where,
            studies,
            tot,
            lambda p, tot=tot: f"total of 0 participants in the arm; '{tot}' must be >= 1",
        )
        _fail_first(
            e > n,
            where,
            studies,
            ev,
            lambda p, e=e, n=n, ev=ev, tot=tot: (
                f"{e[p]:g} events exceed the arm total '{tot}' = {n[p]:g}; "
                f"'{ev}' must be between 0 and '{tot}'"
            ),
        )


def _finite_positive(
    frame: pd.DataFrame,
    column: str,
    where: _Where,
    studies: list[str],
    message: Callable[[float], str],
) -> np.ndarray:
    """``column`` as floats, refused unless finite and > 0; ``message(value)`` says why not."""
    _check_finite(frame[column], column, where, studies)
    values = np.asarray(frame[column], dtype=float)
    _fail_first(values <= 0, where, studies, column, lambda p: message(values[p]))
    return values


def _validate_ratio_ci(frame: pd.DataFrame, where: _Where, studies: list[str]) -> None:
    est = _finite_positive(
        frame,
        "estimate",
        where,
        studies,
        lambda x: f"ratio {x:g} is not positive; a ratio (HR, RR, OR) must be > 0",
    )
    lo = np.asarray(frame["ci_low"], dtype=float)
    hi = np.asarray(frame["ci_high"], dtype=float)
    for col in ("ci_low", "ci_high"):
        _check_finite(frame[col], col, where, studies, allow_nan=True)
    one_missing = np.isnan(lo) != np.isnan(hi)
    hits = np.flatnonzero(one_missing)
    if hits.size:
        pos = int(hits[0])
        col = "ci_low" if np.isnan(lo[pos]) else "ci_high"
        raise InputError(
            "only one CI bound is given; give both bounds, or leave both "
            "empty for a ratio printed without a CI (it is then excluded from pooling).",
            source=where.source,
            **where.at(pos),
            study=studies[pos],
            column=col,
        )
    both = ~np.isnan(lo)
    for col, bound in (("ci_low", lo), ("ci_high", hi)):
        _fail_first(
            both & (bound <= 0),
            where,
            studies,
            col,
            lambda p, b=bound: f"CI bound {b[p]:g} is not positive; the CI of a ratio must be > 0",
        )
    _fail_first(
        both & (lo >= hi),
        where,
        studies,
        "ci_low",
        lambda p: (
            f"lower bound {lo[p]:g} is not below upper bound {hi[p]:g}; need ci_low < ci_high"
        ),
    )
    _fail_first(
        both & ((est < lo) | (est > hi)),
        where,
        studies,
        "estimate",
        lambda p: (
            f"estimate {est[p]:g} lies outside its CI [{lo[p]:g}, {hi[p]:g}]; "
            "need ci_low <= estimate <= ci_high (check for swapped or mistyped columns)"
        ),
    )


def _validate_log_se(frame: pd.DataFrame, where: _Where, studies: list[str]) -> None:
    _check_finite(frame["yi"], "yi", where, studies)
    _finite_positive(
        frame,
        "sei",
        where,
        studies,
        lambda x: f"standard error {x:g} is not positive; 'sei' must be > 0",
    )


def _validate_means(
    frame: pd.DataFrame, where: _Where, studies: list[str], names: tuple[str, ...] | None = None
) -> None:
    """Means finite, SDs finite and > 0, sizes whole numbers from 2 to 2^53."""
    mean1, sd1, n1, mean2, sd2, n2 = SHAPES["means"] if names is None else names
    for col in (mean1, mean2):
        _check_finite(frame[col], col, where, studies)
    for col in (sd1, sd2):
        _finite_positive(
            frame, col, where, studies,
            lambda x: f"standard deviation {x:g} is not positive; an SD must be > 0",
        )  # fmt: skip
    for col in (n1, n2):
        _check_finite(frame[col], col, where, studies)
        arr = np.asarray(frame[col], dtype=float)
        _fail_first(
            (arr != np.round(arr)) | (arr > 2.0**53), where, studies, col,
            lambda p, a=arr: f"size {a[p]:g} is not a whole number of participants",
        )  # fmt: skip
        _fail_first(
            arr < 2, where, studies, col,
            lambda p, a=arr: f"size {a[p]:g} is below 2; an arm's SD needs at least 2 "
            "participants",
        )  # fmt: skip


def _check_duplicates(
    frame: dict[str, np.ndarray], by: tuple[str, ...], where: _Where, studies: list[str]
) -> None:
    keys = [STUDY, *by]
    cols = [np.asarray(frame[key], dtype=object) for key in keys]
    hit = _first_duplicate(cols)
    if hit is not None:
        pos, first = hit
        label = studies[pos]
        scope = " within the group " + ", ".join(f"{b}={frame[b][pos]!r}" for b in by) if by else ""
        raise InputError(
            f"duplicate study label{scope}: the same label is already on {where.name(first)}. "
            "Each study may appear once"
            + (" per group" if by else "")
            + "; make labels unique (e.g. add the year or a subgroup name)"
            + ("" if by else ", or give grouping columns with by=")
            + ".",
            source=where.source,
            **where.at(pos),
            study=label,
            column=STUDY,
        )


def _first_duplicate(cols: list[np.ndarray]) -> tuple[int, int] | None:
    """The first row (file order) whose values in ``cols`` equal those of an earlier row, and
    that earlier row; None if every row is distinct.

    Rows are compared by a combined hash first (sorted, in C), and only rows sharing a hash
    value are compared exactly, so memory stays a few integers per row.
    """
    n = cols[0].size
    if n < 2:
        return None
    combined = np.zeros(n, dtype=np.uint64)
    for col in cols:
        h = np.fromiter(map(hash, col), dtype=np.int64, count=n).view(np.uint64)
        combined = combined * np.uint64(1_000_003) ^ h
    order = np.argsort(combined, kind="stable")
    ordered = combined[order]
    same = np.flatnonzero(ordered[1:] == ordered[:-1])
    if same.size == 0:
        return None
    best: tuple[int, int] | None = None
    starts = same[np.r_[True, np.diff(same) > 1]]  # the first pair of each run of equal hashes
    for s0 in starts.tolist():
        s1 = s0 + 1
        while s1 + 1 < n and ordered[s1 + 1] == ordered[s0]:
            s1 += 1
        seen: dict[tuple, int] = {}
        for pos in order[s0 : s1 + 1].tolist():  # file order within the run (stable sort)
            first = seen.setdefault(tuple(col[pos] for col in cols), pos)
            if first != pos:
                if best is None or pos < best[0]:
                    best = (pos, first)
                break
    return best


# --------------------------------------------------------------------------------------------
# public entry point
# --------------------------------------------------------------------------------------------


def read_meta_data(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    name: str | None = None,
    by: tuple[str, ...] | list[str] | str | None = None,
) -> MetaInput:
    """Read and validate meta-analysis data from a CSV file or a DataFrame.

    Parameters
    ----------
    source : str, os.PathLike or pandas.DataFrame
        Path of a CSV file (UTF-8, comma-separated, one header line, no comment syntax; the
        reading rules are in the module docstring) or a DataFrame. A DataFrame is never
        modified.
    name : str, optional
        Name used for the data in messages and results (default: the file name, or
        ``"<DataFrame>"``).
    by : str or sequence of str, optional
        Grouping columns (e.g. ``("outcome", "drug_class")``). Study labels must be unique
        within each group instead of over the whole table; the columns must exist and have
        no empty cells. Group keys are compared exactly as written (text for a file, the
        values given for a DataFrame).

    Returns
    -------
    MetaInput
        The validated copy, its shape, the columns kept and, for a file, the line of each row.

    Raises
    ------
    bayesmtor.errors.InputError
        For unreadable or malformed files (wrong field counts, duplicate or empty column
        names, quoting errors), missing/misspelled columns, mixed shapes, empty data, empty or
        non-finite cells, impossible values (negative or fractional counts, events above the
        total, empty arms, non-positive ratios or SEs, CIs not containing their estimate) and
        duplicate study labels. A file error names the line of the file (``error.line``); a
        DataFrame error the 1-based row (``error.row``, also set for files).
    """
    by_cols = _by_columns(by)
    raw, original, label, lines, n_rows = _load(source, name)
    raw, normalised = _normalised_columns(raw, original, label)
    shape = _check_columns(normalised, by_cols, label)
    if n_rows == 0:
        raise InputError("no data rows (only a header); add one row per study.", source=label)

    where = _Where(label, lines)
    studies = _study_labels(raw[STUDY], where)
    cells = _cell_layout(normalised, label) if shape == "counts" else None
    if shape == "means":
        cells = _means_layout(normalised, label)
    if cells is not None and shape == "means":
        out = _means_from_metafor(raw, cells, where, studies)
    elif cells is not None:
        out = _counts_from_cells(raw, cells, where, studies)
    else:
        out = _value_columns(raw, shape, where, studies)
    extra = tuple(
        c for c in normalised if c != STUDY and c not in SHAPES[shape] and c not in (cells or ())
    )
    _add_extra_columns(out, raw, extra, from_file=lines is not None)
    del raw
    _check_groups(out, by_cols, where, studies, from_file=lines is not None)
    _validate_values(out, shape, where, studies)
    _check_duplicates(out, by_cols, where, studies)

    return MetaInput(
        columns=out, shape=shape, source=label, extra_columns=extra, by=by_cols, lines=lines
    )


def _by_columns(by: tuple[str, ...] | list[str] | str | None) -> tuple[str, ...]:
    """The grouping columns given as ``by=``, as normalised names."""
    if by is None:
        return ()
    if isinstance(by, str):
        return (_normalise_name(by),)
    return tuple(_normalise_name(b) for b in by)


def _load(
    source: object, name: str | None
) -> tuple[dict[str, Any], list[str], str, np.ndarray | None, int]:
    """The raw columns of ``source`` (by header name), its header as given, its label, (for
    a file) its lines, and its number of rows.

    A DataFrame's columns are copied (as Series); a file is read by the strict CSV reader
    (object arrays of ``str``), and a header starting with ``#`` (a comment line taken for the
    header) is refused.
    """
    if not isinstance(source, (str, os.PathLike)):
        import pandas as pd

        if isinstance(source, pd.DataFrame):
            label = name or _DATAFRAME_SOURCE
            original = [str(c) for c in source.columns]
            check_header(original, source=label, line=None, normalise=_normalise_name)
            copy = source.copy(deep=True).reset_index(drop=True)
            raw = {orig: copy.iloc[:, j] for j, orig in enumerate(original)}
            return raw, original, label, None, len(copy)
        raise InputError(
            f"'source' must be a path to a CSV file or a pandas DataFrame, not "
            f"{type(source).__name__}.",
            source=name,
        )
    path = Path(source)
    label = name or path.name
    table = read_csv_file(path, source=label, normalise=_normalise_name)
    raw, lines, header_line = dict(table.columns), table.lines, table.header_line
    del table  # so that a value column's text is freed once converted
    original = list(raw)
    if (
        original
        and original[0].lstrip().startswith("#")
        and STUDY not in map(_normalise_name, original)
    ):
        raise InputError(
            "the header starts with '#', but there is no comment syntax: the first line "
            "that is not blank is the header. Remove the lines above the real header.",
            source=label,
            line=header_line,
            column=STUDY,
        )
    return raw, original, label, lines, len(lines)


def _normalised_columns(
    raw: dict[str, Any], original: list[str], label: str
) -> tuple[dict[str, Any], list[str]]:
    """``raw`` under the normalised column names, and those names.

    Empty and duplicate names were refused by the header check; a column pandas had to name
    (``Unnamed: 3``) is refused here.
    """
    normalised = [_normalise_name(c) for c in original]
    for orig, norm in zip(original, normalised, strict=True):
        if norm.startswith("unnamed:"):
            raise InputError(
                f"a column has no header (pandas called it '{orig}'); give every column a "
                "name, or remove trailing commas.",
                source=label,
                column=orig,
            )
    return {norm: raw[orig] for orig, norm in zip(original, normalised, strict=True)}, normalised


def _check_columns(normalised: list[str], by_cols: tuple[str, ...], label: str) -> str:
    """The input shape of the header ``normalised``, which must hold ``study`` and ``by_cols``."""
    if STUDY not in normalised:
        guess = _suggest(STUDY, normalised)
        hint = f"; column '{guess}' looks like it — did you mean 'study'?" if guess else ""
        raise _not_found(
            "required column 'study' (one label per study)", hint, normalised, label, guess or STUDY
        )
    shape = _detect_shape(normalised, label)
    for b in by_cols:
        if b not in normalised:
            guess = _suggest(b, normalised)
            hint = f"; did you mean '{guess}'?" if guess else ""
            raise _not_found(f"grouping column '{b}' given in by=", hint, normalised, label, b)
    return shape


def _value_columns(
    raw: pd.DataFrame,
    shape: str,
    where: _Where,
    studies: list[str],
    names: tuple[str, ...] | None = None,
) -> pd.DataFrame:
    """A new frame of the study labels and the shape's value columns (or ``names``), as floats.

    Each value column is removed from ``raw`` once converted, so that its text is freed.
    """
    labels = np.empty(len(studies), dtype=object)
    labels[:] = studies
    out: dict[str, np.ndarray] = {STUDY: labels}
    for col in SHAPES[shape] if names is None else names:
        out[col] = _numeric_column(raw[col], col, where, studies, shape)
        del raw[col]  # free the text of a value column as soon as it is converted
    return out


def _counts_from_cells(
    raw: pd.DataFrame, cells: tuple[str, ...], where: _Where, studies: list[str]
) -> pd.DataFrame:
    """The ``counts`` columns from metafor's cells, each cell checked under its own name."""
    values = _value_columns(raw, "counts", where, studies, cells)
    _validate_counts(values, where, studies, cells)
    a, second, c, fourth = (np.asarray(values[col], dtype=float) for col in cells)
    totals = (a + second, c + fourth) if cells == CELL_LAYOUTS["cells"] else (second, fourth)
    return {
        STUDY: values[STUDY],
        "events_trt": a,
        "n_trt": totals[0],
        "events_ctl": c,
        "n_ctl": totals[1],
    }


def _means_from_metafor(
    raw: pd.DataFrame, names: tuple[str, ...], where: _Where, studies: list[str]
) -> pd.DataFrame:
    """The ``means`` columns from metafor's names, each checked under its own name."""
    values = _value_columns(raw, "means", where, studies, names)
    _validate_means(values, where, studies, names)
    renamed = dict(zip(SHAPES["means"], names, strict=True))
    return {STUDY: values[STUDY], **{new: values[old] for new, old in renamed.items()}}


def _add_extra_columns(
    out: pd.DataFrame, raw: pd.DataFrame, extra: tuple[str, ...], *, from_file: bool
) -> None:
    """Copy the ``extra`` columns of ``raw`` to ``out``: a file's text stripped, else as given."""
    for col in extra:
        if from_file:  # text from a file: kept as text, surrounding whitespace removed
            stripped = np.empty(len(raw[col]), dtype=object)
            stripped[:] = [cell.strip() for cell in raw[col].tolist()]
            out[col] = stripped
        else:
            out[col] = raw[col].to_numpy(copy=True)


def _check_groups(
    out: pd.DataFrame,
    by_cols: tuple[str, ...],
    where: _Where,
    studies: list[str],
    *,
    from_file: bool,
) -> None:
    """Refuse an empty grouping cell (``""`` from a file, a missing value in a DataFrame)."""
    for b in by_cols:
        column = out[b]
        if from_file:
            missing = np.asarray(column == "", dtype=bool)
        else:
            import pandas as pd

            missing = np.asarray(pd.isna(column), dtype=bool)
        hits = np.flatnonzero(missing)
        if hits.size:
            pos = int(hits[0])
            raise InputError(
                f"empty grouping cell; every row needs a value in '{b}'.",
                source=where.source,
                **where.at(pos),
                study=studies[pos],
                column=b,
            )


def _validate_values(out: pd.DataFrame, shape: str, where: _Where, studies: list[str]) -> None:
    """Check the value columns of ``out`` by the rules of ``shape``; counts become int64."""
    if shape == "counts":
        _validate_counts(out, where, studies)
        for col in SHAPES[shape]:
            out[col] = out[col].astype("int64")
    elif shape == "ratio_ci":
        _validate_ratio_ci(out, where, studies)
    elif shape == "means":
        _validate_means(out, where, studies)
        for col in ("n_trt", "n_ctl"):
            out[col] = out[col].astype("int64")
    else:
        _validate_log_se(out, where, studies)


def _study_labels(raw: pd.Series, where: _Where) -> list[str]:
    """The labels as text without surrounding whitespace; an empty label is refused."""
    if isinstance(raw, np.ndarray):  # a file's column: every cell a str
        studies = [cell.strip() for cell in raw.tolist()]
    else:
        studies = _frame_labels(raw)
    lengths = np.fromiter(map(len, studies), dtype=np.int64, count=len(studies))
    for pos in np.flatnonzero(lengths <= _NO_LABEL_LEN).tolist():
        if studies[pos].lower() in _NO_LABEL:
            raise InputError(
                "empty study label; every row needs a label in 'study'.",
                source=where.source,
                **where.at(pos),
                column=STUDY,
            )
    return studies


def _frame_labels(raw: pd.Series) -> list[str]:
    """A DataFrame's study labels as text; a missing value becomes an empty label."""
    import pandas as pd

    cells = raw.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(cells, skipna=False) == "string":
        studies = [cell.strip() for cell in cells]
    else:
        studies = [
            ""
            if cell is None or cell is pd.NA or (isinstance(cell, float) and math.isnan(cell))
            else str(cell).strip()
            for cell in cells
        ]
    return studies


def group_codes(frame: pd.DataFrame, by: list[str] | tuple[str, ...]) -> tuple[np.ndarray, list]:
    """Number the groups of ``frame`` by the columns ``by``, in order of first appearance.

    This is the grouping rule of ``bayesmtor pool --by`` on both engines: two rows are in the
    same group when their keys are equal as given -- text from a file compares as text, so
    ``1``, ``1.0`` and ``01`` are three groups -- and the groups are numbered in the order in
    which their first row appears.

    Parameters
    ----------
    frame : pandas.DataFrame or dict of str to array
        The rows (e.g. :attr:`MetaInput.frame`, :attr:`MetaInput.columns` or an effect-size
        table); a dict must hold a ``study`` column.
    by : list or tuple of str
        The grouping columns; no cell may be missing.

    Returns
    -------
    codes : numpy.ndarray
        ``intp``, the group number of each row (0 for the first group).
    keys : list of tuple
        The key of each group (one value per column of ``by``), in group order.

    Raises
    ------
    bayesmtor.errors.InputError
        If a grouping cell is missing (NaN or None); ``row`` is its 1-based position.
    """

    by = list(by)
    n = len(frame[STUDY]) if isinstance(frame, dict) else len(frame)
    combined = np.zeros(n, dtype=np.int64)
    for col in by:
        values = np.asarray(frame[col])
        codes, n_uniques, missing = _factorize(values)
        if missing is not None:
            raise InputError("missing group label", row=missing + 1, column=col)
        # keys so far x this column, renumbered at once so the values stay below n**2
        combined, _, _ = _factorize(combined * n_uniques + codes)
    codes = combined.astype(np.intp, copy=False)
    if not by:
        return codes, [()]
    _, first = np.unique(codes, return_index=True)
    columns = [np.asarray(frame[col])[first].tolist() for col in by]
    return codes, list(zip(*columns, strict=True))


def _factorize(values: np.ndarray) -> tuple[np.ndarray, int, int | None]:
    """Codes of ``values`` numbered by first appearance (equal values, one code), the number
    of distinct values, and the position of the first missing value (None, NaN or pandas' NA;
    None if there is none)."""
    if values.dtype == object:
        cells = values.tolist()
        if not all_text(cells):  # text (a file) is never missing
            for pos, cell in enumerate(cells):
                if cell is None or cell != cell or _is_pandas_na(cell):  # cell != cell: NaN
                    return np.zeros(0, np.int64), 0, pos
        index = {cell: i for i, cell in enumerate(dict.fromkeys(cells))}  # first appearance
        codes = np.fromiter(map(index.__getitem__, cells), np.int64, len(cells))
        return codes, len(index), None
    if values.dtype.kind in "fc":
        bad = np.flatnonzero(np.isnan(values))
        if bad.size:
            return np.zeros(0, np.int64), 0, int(bad[0])
    uniques, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    rank = np.empty(uniques.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(uniques.size)
    return rank[inverse.reshape(-1)], int(uniques.size), None


def _is_pandas_na(cell: object) -> bool:
    """Whether ``cell`` is pandas' ``NA`` (only a DataFrame's cells can be; pandas is then
    already imported)."""
    pd = sys.modules.get("pandas")
    return pd is not None and cell is pd.NA
