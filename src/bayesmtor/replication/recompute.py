"""Every published result recomputed and compared with its printed numbers, within one unit of
the last printed digit.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from bayesmtor import config
from bayesmtor.data import load_published_results
from bayesmtor.datasets import comparative_dataset
from bayesmtor.replication.pooling import _count_frame, _interp_specs, _Pool, _pool_values, _run
from bayesmtor.replication.reasons import _cause, _not_reproducible_reason
from bayesmtor.replication.results import (
    COMPARED_FIELDS,
    INTERPRETATION_COLUMNS,
    TABLE_COLUMNS,
    ReplicationResult,
    _fmt_num,
)
from bayesmtor.vocabulary import check_prob

# Printed forms that are more precise than the one in ``source_text``: Figure 3A's estimate is
# printed "RR = 0.9" in the Results text but "relative risk = 0.90" in the Abstract (p. 3333).
_PRINTED_ELSEWHERE: dict[str, dict[str, str]] = {"fig3a_orr_neoadjuvant": {"estimate": "0.90"}}


_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_TOL = 1e-9  # floating-point slack on the one-unit rule


def _decimals(value: float, text: str, override: str | None) -> int:
    """Decimals of the most precise printed form of ``value`` in ``text`` (or the override)."""
    if override is not None:
        return len(override.split(".")[1]) if "." in override else 0
    best = None
    for tok in _NUMBER.findall(text or ""):
        if math.isclose(float(tok), value, rel_tol=0, abs_tol=1e-12):
            d = len(tok.split(".")[1]) if "." in tok else 0
            best = d if best is None else max(best, d)
    if best is None:  # not found verbatim: fall back on the stored value's own digits
        s = f"{value:.10f}".rstrip("0")
        best = len(s.split(".")[1]) if "." in s else 0
    return best


def _units(pub: pd.Series) -> dict[str, float]:
    """One unit of the last printed digit for every printed number of a published row."""
    over = _PRINTED_ELSEWHERE.get(str(pub["result_id"]), {})
    out = {}
    for name, (col, _) in COMPARED_FIELDS.items():
        val = pub[col]
        if pd.notna(val):
            out[name] = 10.0 ** -_decimals(float(val), str(pub["source_text"]), over.get(name))
    return out


def _deviations(
    pub: pd.Series, pool: _Pool, units: dict[str, float], compare_ci: bool
) -> dict[str, float]:
    """|ours - printed| / unit for every compared printed number."""
    ours = _pool_values(pool)
    dev = {}
    for name, unit in units.items():
        if name.startswith("ci_") and not compare_ci:
            continue
        mine = ours[name]
        printed = float(pub[COMPARED_FIELDS[name][0]])
        dev[name] = abs(mine - printed) / unit if math.isfinite(mine) else math.inf
    return dev


def _one_result(pub: pd.Series, ci_prob: float) -> tuple[dict, list[dict]]:
    rid = str(pub["result_id"])
    row = {c: np.nan for c in TABLE_COLUMNS}
    for c in ("result_id", "source_location", "outcome", "comparison", "measure", "model"):
        row[c] = "" if pd.isna(pub[c]) else str(pub[c])
    for name, (col, _) in COMPARED_FIELDS.items():
        row[f"published_{name}"] = float(pub[col]) if pd.notna(pub[col]) else np.nan
    row["k_reports"] = 0
    row["reports_used"] = ""
    outcome, comparison = str(pub["outcome"]), str(pub["comparison"])
    ds = None
    if outcome not in ("", "nan") and comparison not in ("", "nan"):
        ds = comparative_dataset(outcome, comparison, unit="report")
    why = _not_reproducible_reason(pub, ds, ci_prob)
    if why is not None or ds is None:
        row["status"] = "not_reproducible"
        row["reason"] = why or "inputs not printed"
        return row, []

    units = _units(pub)
    compare_ci = math.isclose(ci_prob, config.get("published_ci_prob"))
    frame = _count_frame(ds, "round_half_up") if ds.measure == "RR" else None
    irows = []
    pools: dict[str, _Pool] = {}
    for i, spec in enumerate(_interp_specs(rid, ds.measure, frame)):
        pool, dropped = _run(spec, ds, ci_prob)
        dev = _deviations(pub, pool, units, compare_ci)
        pools[spec.name] = pool
        used = "; ".join(pool.studies)
        irows.append(
            dict(
                result_id=rid,
                interpretation=spec.name,
                primary=i == 0,
                rows=spec.rows,
                zero_cell=spec.zero_cell,
                rounding=spec.rounding,
                k_reports=pool.k,
                reports_used=used,
                dropped=dropped,
                **_pool_values(pool),
                max_deviation_units=max(dev.values()) if dev else np.nan,
                outside=", ".join(k for k, d in dev.items() if d > 1 + _TOL),
            )
        )
    interps = pd.DataFrame(irows, columns=list(INTERPRETATION_COLUMNS))
    first = interps.iloc[0]
    primary = pools[first["interpretation"]]
    row.update(
        **_pool_values(primary, prefix="ours_"),
        k_reports=primary.k,
        reports_used=first["reports_used"],
    )
    dev = _deviations(pub, primary, units, compare_ci)
    worst = max(dev, key=dev.get) if dev else ""
    ci_note = "" if compare_ci else f"; intervals at {100 * ci_prob:g}% not compared"
    if all(d <= 1 + _TOL for d in dev.values()):
        row["status"] = "matches"
        row["reason"] = (
            f"every printed number within one unit of its last digit (largest deviation "
            f"{dev[worst]:.2f} units, {worst}; {primary.k} report rows, {first['interpretation']})"
            + ci_note
        )
    else:
        outside = [
            f"{k} {_fmt_num(getattr(primary, k))} vs printed "
            f"{_fmt_num(float(pub[COMPARED_FIELDS[k][0]]))} ({d:.1f} units)"
            for k, d in dev.items()
            if d > 1 + _TOL
        ]
        matches_any = interps[interps["outside"] == ""]
        best = interps.sort_values("max_deviation_units", kind="stable").iloc[0]
        if len(matches_any):
            alt = f"; reading {matches_any.iloc[0]['interpretation']} matches"
        elif not bool(best["primary"]) and rid != "fig2c_orr":
            alt = (
                f"; closest reading: {best['interpretation']} "
                f"(largest deviation {best['max_deviation_units']:.1f} units)"
            )
        else:
            alt = ""
        row["status"] = "differs"
        row["reason"] = (
            "outside one unit: "
            + "; ".join(outside)
            + ". "
            + _cause(pub, ds, primary, interps)
            + alt
            + ci_note
        )
    return row, irows


def replicate(ci_prob: float | None = None) -> ReplicationResult:
    """Recompute every pooled result the 2014 paper prints and compare.

    Parameters
    ----------
    ci_prob : float, optional
        Interval probability of our intervals (default ``config.defaults["ci_prob"]``, 0.95).
        The printed intervals are 95%; at any other level the interval bounds are reported but
        not compared.

    Returns
    -------
    ReplicationResult
        ``table`` with one row per row of ``data/published_results.csv`` (same order) and the
        columns :data:`TABLE_COLUMNS`; ``interpretations`` with every reading computed.

    Raises
    ------
    InputError
        ``ci_prob`` outside (0, 1).

    Notes
    -----
    Method (the paper's, RevMan 5): fixed-effect Mantel-Haenszel RR on report-level rows
    (``comparative_dataset(..., unit="report")``), 1/2 added to every cell of a table with a
    zero cell, Cochran's Q around the MH estimate, ``I2 = max(0, (Q - df) / Q)``; PFS by
    fixed-effect inverse variance of log HR with SE = (ln hi - ln lo) / (2 x 1.96). Rows
    without a CI (Novartis 2012 HR 0.45) cannot enter. See ``docs/replication-notes.md``.
    """
    p = check_prob(config.get("ci_prob", ci_prob), "ci_prob")
    published = load_published_results()
    rows, irows = [], []
    for _, pub in published.iterrows():
        row, ir = _one_result(pub, p)
        rows.append(row)
        irows.extend(ir)
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    for c in TABLE_COLUMNS:
        if c.startswith(("published_", "ours_")):
            table[c] = table[c].astype("float64")
    table["k_reports"] = table["k_reports"].astype("int64")
    interps = pd.DataFrame(irows, columns=list(INTERPRETATION_COLUMNS))
    return ReplicationResult(table=table, interpretations=interps, ci_prob=p)
