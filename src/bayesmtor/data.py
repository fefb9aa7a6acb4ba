"""Loaders of the curated data tables shipped in ``data/``.

Every table was transcribed by hand from the two source documents (the 2014 meta-analysis of
mTOR inhibitors in breast cancer, ``mtor_meta_analysis_2014.txt``, and the West-Iran rapamycin
cohort, ``rapamycin_west_iran_cohort.txt``); ``data/README.md`` is the data dictionary and lists
every judgement call. Each loader

* reads its CSV through :func:`bayesmtor._resources.data_path`,
* checks that every required column is present and that every value parses to the declared
  type (and, for a few columns, lies in the declared set of values),
* returns a **fresh** :class:`pandas.DataFrame` with explicit dtypes: text columns are
  ``"string"`` (empty text stays ``""``), counts are nullable ``"Int64"``, measurements are
  ``"float64"`` (``NaN`` where the source prints nothing).

Problems raise :class:`bayesmtor.errors.InputError` naming the file, the CSV line (``row``;
the header is line 1, so the first data row is row 2) and the column.

Examples
--------
>>> from bayesmtor.data import load_hazard_ratios
>>> hr = load_hazard_ratios()
>>> hr.loc[hr.report_id == "hortobagyi2011", ["hr", "ci_low", "ci_high"]].iloc[0].tolist()
[0.44, 0.36, 0.53]
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from bayesmtor._resources import data_path
from bayesmtor._strictcsv import read_csv_file
from bayesmtor.errors import InputError

__all__ = [
    "Cohort",
    "SCHEMAS",
    "load_adverse_events",
    "load_cohort",
    "load_efficacy_arms",
    "load_hazard_ratios",
    "load_paper_counts",
    "load_published_results",
    "load_studies",
    "load_table",
]

_S, _I, _F = "string", "Int64", "float64"

_PROVENANCE = {"source_document": _S, "source_location": _S, "source_text": _S, "notes": _S}
_KEYS = {"report_id": _S, "trial_id": _S, "partition": _S, "level": _S, "comparison": _S}

#: Column -> dtype of every bundled table (all columns are required).
SCHEMAS: dict[str, dict[str, str]] = {
    "studies.csv": {
        "report_id": _S,
        "first_author": _S,
        "year": _I,
        "trial_id": _S,
        "trial_name": _S,
        "phase": _S,
        "design": _S,
        "population": _S,
        "setting": _S,
        "mtor_inhibitor": _S,
        "partner_therapy": _S,
        "control": _S,
        "drug_class": _S,
        "comparison": _S,
        "jadad_randomization": _I,
        "jadad_blinding": _I,
        "jadad_withdrawals": _I,
        "jadad_total": _I,
        "n_trt": _I,
        "n_ctl": _I,
        **_PROVENANCE,
    },
    "efficacy_arms.csv": {
        **_KEYS,
        "arm": _S,
        "outcome": _S,
        "value_printed": _S,
        "percent": _F,
        "median_months": _F,
        "n": _I,
        "events": _I,
        "events_rule": _S,
        **_PROVENANCE,
        "n_source_location": _S,
        "n_source_text": _S,
    },
    "hazard_ratios.csv": {
        **_KEYS,
        "outcome": _S,
        "hr": _F,
        "ci_low": _F,
        "ci_high": _F,
        "ci_level": _F,
        "value_printed": _S,
        **_PROVENANCE,
    },
    "adverse_events.csv": {
        **_KEYS,
        "arm": _S,
        "grade": _S,
        "event_printed": _S,
        "event": _S,
        "value_printed": _S,
        "percent": _F,
        "n": _I,
        "events": _I,
        "events_rule": _S,
        **_PROVENANCE,
        "n_source_location": _S,
        "n_source_text": _S,
    },
    "published_results.csv": {
        "result_id": _S,
        "source_document": _S,
        "source_location": _S,
        "also_printed_in": _S,
        "outcome": _S,
        "comparison": _S,
        "measure": _S,
        "measure_printed": _S,
        "model": _S,
        "estimate": _F,
        "ci_low": _F,
        "ci_high": _F,
        "het_p": _F,
        "i2": _F,
        "z": _F,
        "p_value_text": _S,
        "source_text": _S,
        "notes": _S,
    },
    "paper_counts.csv": {
        "count_id": _S,
        "quantity": _S,
        "value": _F,
        "unit": _S,
        "comparison": _S,
        **_PROVENANCE,
    },
    "cohort_groups.csv": {
        "group_id": _I,
        "label": _S,
        "er_pr": _S,
        "her2": _S,
        "receptor_status_printed": _S,
        "treatments_printed": _S,
        "n": _I,
        "os_5yr_percent": _F,
        **_PROVENANCE,
    },
    "cohort_comparisons.csv": {
        "comparison_id": _S,
        "group_a": _I,
        "group_b": _I,
        "os_5yr_a": _F,
        "os_5yr_b": _F,
        "p_value": _F,
        "p_value_printed": _S,
        "figure": _S,
        **_PROVENANCE,
    },
    "cohort_characteristics.csv": {
        "variable": _S,
        "level": _S,
        "n": _I,
        "percent": _F,
        "mean": _F,
        "sd": _F,
        "value_printed": _S,
        **_PROVENANCE,
    },
}

#: Columns that place a row of an arm-level or hazard-ratio table (all required).
_RESULT_KEY: tuple[str, ...] = ("report_id", "trial_id", "partition", "level", "comparison")

#: Columns that may not be empty, per table.
_NOT_EMPTY: dict[str, tuple[str, ...]] = {
    "studies.csv": (
        "report_id",
        "trial_id",
        "design",
        "drug_class",
        "source_document",
        "source_location",
        "source_text",
    ),
    "efficacy_arms.csv": (
        *_RESULT_KEY,
        "arm",
        "outcome",
        "value_printed",
        "n",
        "source_text",
        "n_source_text",
    ),
    "hazard_ratios.csv": (*_RESULT_KEY, "outcome", "hr", "source_text"),
    "adverse_events.csv": (
        *_RESULT_KEY,
        "arm",
        "grade",
        "event_printed",
        "event",
        "value_printed",
        "n",
        "source_text",
        "n_source_text",
    ),
    "published_results.csv": ("result_id", "source_location", "source_text"),
    "paper_counts.csv": ("count_id", "value", "source_text"),
    "cohort_groups.csv": ("group_id", "label", "os_5yr_percent", "source_text"),
    "cohort_comparisons.csv": ("comparison_id", "group_a", "group_b", "p_value", "source_text"),
    "cohort_characteristics.csv": ("variable", "value_printed", "source_text"),
}

#: Allowed values of categorical columns, per table.
_ALLOWED: dict[str, dict[str, frozenset[str]]] = {
    "efficacy_arms.csv": {
        "arm": frozenset({"trt", "ctl"}),
        "outcome": frozenset({"orr", "cbr", "pfs_median", "response_palpation"}),
    },
    "adverse_events.csv": {
        "arm": frozenset({"trt", "ctl"}),
        "grade": frozenset({"any", "3-4", "3-5"}),
    },
    "hazard_ratios.csv": {"outcome": frozenset({"pfs"})},
    "studies.csv": {"design": frozenset({"RCT", "single-arm cohort"})},
}


def load_table(filename: str, path: str | Path | None = None) -> pd.DataFrame:
    """Read and validate one curated table.

    Parameters
    ----------
    filename : str
        Name of a bundled table, one of the keys of :data:`SCHEMAS` (e.g. ``"studies.csv"``).
    path : str or Path, optional
        Read this file instead of the bundled one (it must follow the same schema). Useful to
        validate an edited copy.

    Returns
    -------
    pandas.DataFrame
        A fresh frame with the dtypes of :data:`SCHEMAS`.

    Raises
    ------
    InputError
        If the table is unknown, a required column is missing, a value does not parse to its
        type, a required value is empty, or a categorical value is outside its allowed set.
    """
    src = Path(path) if path is not None else data_path(filename)
    try:
        stamp = src.stat().st_mtime_ns
    except OSError:
        stamp = -1
    return _load_table_cached(filename, str(src), stamp).copy(deep=True)


def _cell_error(message: str, filename: str, lines: np.ndarray, i: int, col: str) -> InputError:
    """The error for the value of ``col`` in data row ``i`` (0-based) of ``filename``."""
    return InputError(message, source=filename, row=i + 1, line=int(lines[i]), column=col)


@lru_cache(maxsize=32)
def _load_table_cached(filename: str, src_text: str, stamp: int) -> pd.DataFrame:
    """Parse and validate once per file version (``stamp`` = modification time)."""
    src = Path(src_text)
    if filename not in SCHEMAS:
        raise InputError(
            f"unknown table '{filename}'; expected one of {sorted(SCHEMAS)}", source=filename
        )
    schema = SCHEMAS[filename]
    table = read_csv_file(src, source=filename)  # the package's one strict CSV reader
    raw, lines = table.frame, table.lines
    missing = [c for c in schema if c not in raw.columns]
    if missing:
        raise InputError(
            f"required column(s) {missing} missing; the file must have the columns {list(schema)}",
            source=filename,
            column=missing[0],
        )
    out = {}
    for col, dtype in schema.items():
        values = raw[col].str.strip()
        if dtype == _S:
            out[col] = values.astype("string")
            continue
        numeric = pd.to_numeric(values.where(values != "", None), errors="coerce")
        bad = numeric.isna() & (values != "")
        if bad.any():
            i = int(bad.idxmax())
            raise _cell_error(
                f"value '{values[i]}' is not a number; write a plain number or leave the cell "
                "empty when the source prints nothing",
                filename,
                lines,
                i,
                col,
            )
        if dtype == _I:
            frac = numeric.notna() & (numeric != numeric.round())
            if frac.any():
                i = int(frac.idxmax())
                raise _cell_error(
                    f"value '{values[i]}' must be a whole number (a count)", filename, lines, i, col
                )
            out[col] = numeric.round().astype("Int64")
        else:
            out[col] = numeric.astype("float64")
    frame = pd.DataFrame(out, index=pd.RangeIndex(len(raw)))
    extra = [c for c in raw.columns if c not in schema]
    for col in extra:  # tolerated, kept as text after the declared columns
        frame[col] = raw[col].astype("string")
    for col in _NOT_EMPTY.get(filename, ()):
        empty = frame[col].isna() | (frame[col].astype("string") == "")
        if empty.any():
            i = int(empty.idxmax())
            raise _cell_error("required value is empty", filename, lines, i, col)
    for col, allowed in _ALLOWED.get(filename, {}).items():
        bad = ~frame[col].isin(allowed)
        if bad.any():
            i = int(bad.idxmax())
            raise _cell_error(
                f"value '{frame[col][i]}' not allowed; expected one of {sorted(allowed)}",
                filename,
                lines,
                i,
                col,
            )
    return frame


def load_studies() -> pd.DataFrame:
    """One row per report: the 12 reports of Table 5 of the 2014 paper plus the cohort.

    Columns: identifiers (``report_id``, ``trial_id``, ``trial_name``), design and population,
    drug and comparison group, the four Jadad items, printed arm sizes and provenance.
    BOLERO-2 is one trial reported five times (``trial_id == "BOLERO-2"``).
    """
    return load_table("studies.csv")


def load_efficacy_arms() -> pd.DataFrame:
    """Per-arm efficacy (long): ORR, CBR, median PFS and the Discussion's palpation response.

    One row per report x partition level x arm x outcome; ``percent`` as printed, ``n`` the arm
    size and ``events`` the derived count ``round_half_up(percent / 100 * n)``.
    """
    return load_table("efficacy_arms.csv")


def load_hazard_ratios() -> pd.DataFrame:
    """PFS hazard ratios with their 95% CIs (``NaN`` where the source prints no CI)."""
    return load_table("hazard_ratios.csv")


def load_adverse_events() -> pd.DataFrame:
    """Per-arm adverse events (long): any grade (Table 2), grade 3-4 (Tables 3-4), grade 3-5.

    ``event_printed`` is the source's wording, ``event`` the canonical lowercase name
    (e.g. "Interstitial lung disease" -> ``pneumonitis``; see ``data/README.md``).
    """
    return load_table("adverse_events.csv")


def load_published_results() -> pd.DataFrame:
    """The 2014 paper's own pooled results (Figures 2-3, Tables 6-7), kept apart from the data."""
    return load_table("published_results.csv")


def load_paper_counts() -> pd.DataFrame:
    """Totals and other printed numbers of the 2014 paper (search flow, enrolment totals)."""
    return load_table("paper_counts.csv")


@dataclass(frozen=True)
class Cohort:
    """The single-arm West-Iran rapamycin cohort (43 women; no comparator).

    Attributes
    ----------
    groups : pandas.DataFrame
        The three receptor groups with their treatments and 5-year overall survival (%);
        group sizes are not printed (``n`` is missing).
    comparisons : pandas.DataFrame
        Pairwise group comparisons of survival with their printed p-values.
    characteristics : pandas.DataFrame
        Table 1 of the cohort (n and %, mean and SD) plus enrolment numbers from the text.
    """

    groups: pd.DataFrame
    comparisons: pd.DataFrame
    characteristics: pd.DataFrame

    def summary(self) -> pd.DataFrame:
        """Receptor groups with 5-year overall survival (columns group_id, label, n, os_5yr_percent)."""
        return self.groups[["group_id", "label", "n", "os_5yr_percent"]].copy()

    def __repr__(self) -> str:
        rows = ", ".join(
            f"group {g.group_id} ({g.label}): 5-y OS {g.os_5yr_percent:g}%"
            for g in self.groups.itertuples()
        )
        return f"Cohort(single-arm rapamycin cohort; {rows})"


def load_cohort() -> Cohort:
    """Load the three cohort tables into a frozen :class:`Cohort` (fresh frames each call)."""
    return Cohort(
        groups=load_table("cohort_groups.csv"),
        comparisons=load_table("cohort_comparisons.csv"),
        characteristics=load_table("cohort_characteristics.csv"),
    )
