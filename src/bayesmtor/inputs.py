"""Reading and validating user data for a meta-analysis.

One entry point, :func:`read_meta_data`, accepts a CSV file or a :class:`pandas.DataFrame` in
one of three shapes, each with a ``study`` label column:

``counts``
    ``events_trt, n_trt, events_ctl, n_ctl`` -- events and totals per arm (binary outcomes).
``ratio_ci``
    ``estimate, ci_low, ci_high`` -- a published ratio (HR, RR, OR) with its 95% CI. A row may
    leave *both* bounds empty (a ratio printed without a CI); it is kept, and
    :func:`bayesmtor.effects.escalc` marks it as excluded from pooling.
``log_se``
    ``yi, sei`` -- a log ratio and its standard error.

Column names are normalised (stripped, lower case, spaces and hyphens to ``_``). Other columns
are kept as ``extra_columns`` (e.g. ``outcome`` or ``drug_class`` for grouping).

Row numbers in error messages are **1-based data rows**: the first row under the header is
row 1. For files, the physical line of the file is given too (comment lines starting with
``#`` and the header counted), so ``row 3`` of a CSV without comments is on line 4.
"""

from __future__ import annotations

import difflib
import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayesmtor.errors import InputError

__all__ = ["SHAPES", "MetaInput", "read_meta_data"]

#: Required numeric columns of each input shape (besides ``study``).
SHAPES: dict[str, tuple[str, ...]] = {
    "counts": ("events_trt", "n_trt", "events_ctl", "n_ctl"),
    "ratio_ci": ("estimate", "ci_low", "ci_high"),
    "log_se": ("yi", "sei"),
}
STUDY = "study"
_DATAFRAME_SOURCE = "<DataFrame>"
# Text that counts as an empty (missing) cell rather than as non-numeric text.
_MISSING_TEXT = frozenset({"", "na", "nan", "n/a", "null", "none", "-"})


@dataclass(frozen=True, eq=False)
class MetaInput:
    """Validated meta-analysis input.

    Attributes
    ----------
    frame : pandas.DataFrame
        A validated copy with normalised column names: ``study`` (str), the shape's numeric
        columns (int64 counts, float64 otherwise), then the extra columns in input order.
    shape : str
        ``"counts"``, ``"ratio_ci"`` or ``"log_se"``.
    source : str
        File name, the ``name`` given, or ``"<DataFrame>"``.
    extra_columns : tuple of str
        Columns kept besides ``study`` and the shape's columns.
    by : tuple of str
        Grouping columns within which study labels are unique.
    """

    frame: pd.DataFrame
    shape: str
    source: str
    extra_columns: tuple[str, ...] = ()
    by: tuple[str, ...] = ()

    @property
    def k(self) -> int:
        """Number of rows (studies)."""
        return len(self.frame)

    @property
    def value_columns(self) -> tuple[str, ...]:
        """The numeric columns of this shape."""
        return SHAPES[self.shape]

    def summary(self) -> pd.DataFrame:
        """One row per column: its role, dtype, missing cells, minimum and maximum."""
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
        studies = list(self.frame[STUDY])
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
    """Turns a 0-based position into the row wording used in messages."""

    def __init__(self, source: str, line_of_row: list[int] | None) -> None:
        self.source = source
        self.line_of_row = line_of_row  # physical file line (1-based) of each data row

    def row(self, pos: int) -> int:
        return pos + 1

    def note(self, pos: int) -> str:
        if self.line_of_row is not None and pos < len(self.line_of_row):
            return f" (row = 1-based data row under the header; line {self.line_of_row[pos]} of the file)"
        return " (row = 1-based position in the table)"


def _normalise_name(name: object) -> str:
    text = str(name).strip().lower()
    return re.sub(r"[\s\-]+", "_", text)


def _suggest(name: str, candidates: list[str]) -> str | None:
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return match[0] if match else None


def _read_csv(path: Path, source: str) -> tuple[pd.DataFrame, list[int]]:
    """Read a CSV as text cells; drop full-line ``#`` comments; remember physical lines."""
    if not path.exists():
        raise InputError(f"file not found: '{path}'. Give the path of a CSV file.", source=source)
    if not path.is_file():
        raise InputError(
            f"'{path}' is not a file (it is a directory or a special file). Give a CSV file.",
            source=source,
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"cannot decode the file as UTF-8 ({exc.reason} at byte {exc.start}); "
            "save it as UTF-8 CSV.",
            source=source,
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror}.", source=source) from None
    if "\x00" in text:
        raise InputError(
            f"the file contains NUL bytes (first at character {text.index(chr(0))}), so it is "
            "binary or UTF-16, not a UTF-8 text CSV; save it as UTF-8 CSV.",
            source=source,
        )
    kept: list[str] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        kept.append(line)
        lines.append(number)
    if not kept:
        raise InputError(
            "the file is empty (no header and no data rows); expected a header line such as "
            "'study,events_trt,n_trt,events_ctl,n_ctl' followed by one row per study.",
            source=source,
        )
    try:
        frame = pd.read_csv(
            io.StringIO("\n".join(kept)),
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
        )
    except pd.errors.ParserError as exc:
        message = str(exc).strip()
        found = re.search(r"line (\d+)", message)
        where = ""
        if found:
            logical = int(found.group(1))
            if 1 <= logical <= len(lines):
                where = f" at line {lines[logical - 1]} of the file"
        raise InputError(
            f"cannot parse the CSV{where}: {message}. Each line needs the same number of "
            "comma-separated fields as the header; quote labels that contain commas.",
            source=source,
        ) from None
    except (pd.errors.EmptyDataError, ValueError) as exc:
        raise InputError(f"cannot parse the CSV: {exc}.", source=source) from None
    return frame, lines[1:]


def _numeric_column(
    raw: pd.Series, column: str, where: _Where, studies: list[str], shape: str
) -> pd.Series:
    """Convert one column to float; non-numeric text raises, missing text becomes NaN."""
    if pd.api.types.is_bool_dtype(raw):
        pos = 0
        raise InputError(
            f"column holds true/false values; {shape} needs numbers here.",
            source=where.source,
            row=where.row(pos),
            study=studies[pos],
            column=column,
        )
    if pd.api.types.is_numeric_dtype(raw):
        return pd.Series(raw.to_numpy(dtype=float, na_value=np.nan), index=raw.index)
    values = np.full(len(raw), np.nan)
    for pos, cell in enumerate(raw.tolist()):
        if cell is None or (isinstance(cell, float) and math.isnan(cell)):
            continue
        if isinstance(cell, (int, float, np.integer, np.floating)) and not isinstance(cell, bool):
            values[pos] = float(cell)
            continue
        text = str(cell).strip()
        if text.lower() in _MISSING_TEXT:
            continue
        try:
            values[pos] = float(text)
        except ValueError:
            raise InputError(
                f"non-numeric text '{text}' in a numeric column{where.note(pos)}; "
                "write a plain number such as 12 or 0.45 (decimal point, no thousands "
                "separator, no % sign), or leave the cell empty only where that is allowed.",
                source=where.source,
                row=where.row(pos),
                study=studies[pos],
                column=column,
            ) from None
    return pd.Series(values, index=raw.index)


def _detect_shape(columns: list[str], source: str) -> str:
    present = {shape: [c for c in cols if c in columns] for shape, cols in SHAPES.items()}
    with_any = [shape for shape, found in present.items() if found]
    if len(with_any) > 1:
        listing = "; ".join(f"{s}: {', '.join(present[s])}" for s in with_any)
        raise InputError(
            f"columns of more than one input shape are present ({listing}). Use exactly one "
            "shape per table: counts (events_trt, n_trt, events_ctl, n_ctl), ratio_ci "
            "(estimate, ci_low, ci_high) or log_se (yi, sei); remove or rename the others.",
            source=source,
        )
    others = [c for c in columns if c != STUDY]
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
                "Expected a 'study' column plus one shape: counts (events_trt, n_trt, "
                "events_ctl, n_ctl), ratio_ci (estimate, ci_low, ci_high) or log_se (yi, sei).",
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
    arr = values.to_numpy(dtype=float)
    for pos in np.flatnonzero(~np.isfinite(arr)):
        if allow_nan and np.isnan(arr[pos]):
            continue
        what = "an empty or missing (NaN) cell" if np.isnan(arr[pos]) else f"value {arr[pos]}"
        raise InputError(
            f"{what}{where.note(pos)}; a finite number is required here.",
            source=where.source,
            row=where.row(pos),
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
            f"{message(pos)}{where.note(pos)}.",  # type: ignore[operator]
            source=where.source,
            row=where.row(pos),
            study=studies[pos],
            column=column,
        )


def _validate_counts(frame: pd.DataFrame, where: _Where, studies: list[str]) -> None:
    for col in SHAPES["counts"]:
        _check_finite(frame[col], col, where, studies)
        arr = frame[col].to_numpy(dtype=float)
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
    for ev, tot in (("events_trt", "n_trt"), ("events_ctl", "n_ctl")):
        e = frame[ev].to_numpy(dtype=float)
        n = frame[tot].to_numpy(dtype=float)
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


def _validate_ratio_ci(frame: pd.DataFrame, where: _Where, studies: list[str]) -> None:
    _check_finite(frame["estimate"], "estimate", where, studies)
    est = frame["estimate"].to_numpy(dtype=float)
    _fail_first(
        est <= 0,
        where,
        studies,
        "estimate",
        lambda p: f"ratio {est[p]:g} is not positive; a ratio (HR, RR, OR) must be > 0",
    )
    lo = frame["ci_low"].to_numpy(dtype=float)
    hi = frame["ci_high"].to_numpy(dtype=float)
    for col in ("ci_low", "ci_high"):
        _check_finite(frame[col], col, where, studies, allow_nan=True)
    one_missing = np.isnan(lo) != np.isnan(hi)
    hits = np.flatnonzero(one_missing)
    if hits.size:
        pos = int(hits[0])
        col = "ci_low" if np.isnan(lo[pos]) else "ci_high"
        raise InputError(
            f"only one CI bound is given{where.note(pos)}; give both bounds, or leave both "
            "empty for a ratio printed without a CI (it is then excluded from pooling).",
            source=where.source,
            row=where.row(pos),
            study=studies[pos],
            column=col,
        )
    both = ~np.isnan(lo)
    _fail_first(
        both & (lo <= 0),
        where,
        studies,
        "ci_low",
        lambda p: f"CI bound {lo[p]:g} is not positive; the CI of a ratio must be > 0",
    )
    _fail_first(
        both & (hi <= 0),
        where,
        studies,
        "ci_high",
        lambda p: f"CI bound {hi[p]:g} is not positive; the CI of a ratio must be > 0",
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
    _check_finite(frame["sei"], "sei", where, studies)
    se = frame["sei"].to_numpy(dtype=float)
    _fail_first(
        se <= 0,
        where,
        studies,
        "sei",
        lambda p: f"standard error {se[p]:g} is not positive; 'sei' must be > 0",
    )


def _check_duplicates(
    frame: pd.DataFrame, by: tuple[str, ...], where: _Where, studies: list[str]
) -> None:
    keys = [STUDY, *by]
    dup = frame.duplicated(subset=keys, keep="first").to_numpy()
    hits = np.flatnonzero(dup)
    if hits.size:
        pos = int(hits[0])
        label = studies[pos]
        first = int(np.flatnonzero((frame[keys] == frame[keys].iloc[pos]).all(axis=1))[0])
        scope = (
            " within the group " + ", ".join(f"{b}={frame[b].iloc[pos]!r}" for b in by)
            if by
            else ""
        )
        raise InputError(
            f"duplicate study label{scope}: the same label is already on row {first + 1}. "
            "Each study may appear once"
            + (" per group" if by else "")
            + "; make labels unique (e.g. add the year or a subgroup name)"
            + ("" if by else ", or give grouping columns with by=")
            + f"{where.note(pos)}.",
            source=where.source,
            row=where.row(pos),
            study=label,
            column=STUDY,
        )


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
        Path of a CSV file (UTF-8, comma-separated, one header line; full-line comments
        starting with ``#`` are skipped) or a DataFrame. A DataFrame is never modified.
    name : str, optional
        Name used for the data in messages and results (default: the file name, or
        ``"<DataFrame>"``).
    by : str or sequence of str, optional
        Grouping columns (e.g. ``("outcome", "drug_class")``). Study labels must be unique
        within each group instead of over the whole table; the columns must exist and have
        no empty cells.

    Returns
    -------
    MetaInput
        The validated copy, its shape and the columns kept.

    Raises
    ------
    bayesmtor.errors.InputError
        For unreadable files, missing/misspelled columns, mixed shapes, empty data, empty or
        non-finite cells, impossible values (negative or fractional counts, events above the
        total, empty arms, non-positive ratios or SEs, CIs not containing their estimate) and
        duplicate study labels. Rows are 1-based data rows (the header is not counted).
    """
    by_cols: tuple[str, ...]
    if by is None:
        by_cols = ()
    elif isinstance(by, str):
        by_cols = (_normalise_name(by),)
    else:
        by_cols = tuple(_normalise_name(b) for b in by)

    line_of_row: list[int] | None
    if isinstance(source, pd.DataFrame):
        label = name or _DATAFRAME_SOURCE
        raw = source.copy(deep=True)
        line_of_row = None
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name or path.name
        raw, line_of_row = _read_csv(path, label)
    else:
        raise InputError(
            f"'source' must be a path to a CSV file or a pandas DataFrame, not "
            f"{type(source).__name__}.",
            source=name,
        )

    # Normalise column names.
    original = [str(c) for c in raw.columns]
    normalised = [_normalise_name(c) for c in raw.columns]
    seen: dict[str, str] = {}
    for orig, norm in zip(original, normalised, strict=True):
        if norm in seen:
            raise InputError(
                f"two columns ('{seen[norm]}' and '{orig}') both mean '{norm}'; keep one of them.",
                source=label,
                column=norm,
            )
        if norm.startswith("unnamed:") or norm == "":
            raise InputError(
                f"a column has no header (pandas called it '{orig}'); give every column a "
                "name, or remove trailing commas.",
                source=label,
                column=orig,
            )
        seen[norm] = orig
    raw.columns = normalised
    raw = raw.reset_index(drop=True)

    if STUDY not in normalised:
        guess = _suggest(STUDY, normalised)
        hint = f"; column '{guess}' looks like it — did you mean 'study'?" if guess else ""
        if len(original) == 1 and (";" in original[0] or "\t" in original[0]):
            sep = "';'" if ";" in original[0] else "a tab"
            hint = f"; the header looks separated by {sep}: save the file comma-separated."
        raise InputError(
            f"required column 'study' (one label per study) not found{hint} "
            f"Found: {', '.join(normalised)}.",
            source=label,
            column=guess or STUDY,
        )
    shape = _detect_shape(normalised, label)
    for b in by_cols:
        if b not in normalised:
            guess = _suggest(b, normalised)
            hint = f"; did you mean '{guess}'?" if guess else ""
            raise InputError(
                f"grouping column '{b}' given in by= not found{hint} "
                f"Found: {', '.join(normalised)}.",
                source=label,
                column=b,
            )

    if len(raw) == 0:
        raise InputError("no data rows (only a header); add one row per study.", source=label)

    where = _Where(label, line_of_row)
    # Study labels.
    study_raw = raw[STUDY]
    studies: list[str] = []
    for pos, cell in enumerate(study_raw.tolist()):
        text = "" if cell is None or (isinstance(cell, float) and math.isnan(cell)) else str(cell)
        text = text.strip()
        if not text or text.lower() in {"nan", "na", "none", "null"}:
            raise InputError(
                f"empty study label{where.note(pos)}; every row needs a label in 'study'.",
                source=label,
                row=where.row(pos),
                column=STUDY,
            )
        studies.append(text)

    values = SHAPES[shape]
    out = pd.DataFrame({STUDY: pd.Series(studies, dtype=object)})
    for col in values:
        out[col] = _numeric_column(raw[col], col, where, studies, shape)
    extra = tuple(c for c in normalised if c != STUDY and c not in values)
    for col in extra:
        series = raw[col]
        if line_of_row is not None:
            # Text read from a file: turn number-only columns back into numbers.
            blank = series.astype(str).str.strip().str.lower().isin(_MISSING_TEXT)
            converted = pd.to_numeric(series.where(~blank), errors="coerce")
            if converted[~blank].notna().all():
                series = converted
            else:
                series = series.where(~blank)
        out[col] = series.to_numpy(copy=True)
    for b in by_cols:
        missing = out[b].isna().to_numpy()
        hits = np.flatnonzero(missing)
        if hits.size:
            pos = int(hits[0])
            raise InputError(
                f"empty grouping cell{where.note(pos)}; every row needs a value in '{b}'.",
                source=label,
                row=where.row(pos),
                study=studies[pos],
                column=b,
            )

    if shape == "counts":
        _validate_counts(out, where, studies)
        for col in values:
            out[col] = out[col].astype("int64")
    elif shape == "ratio_ci":
        _validate_ratio_ci(out, where, studies)
    else:
        _validate_log_se(out, where, studies)
    _check_duplicates(out, by_cols, where, studies)

    return MetaInput(frame=out, shape=shape, source=label, extra_columns=extra, by=by_cols)
