"""Reproduce the 2014 paper's pooled results, and show what changes when each trial counts once.

The 2014 meta-analysis (Int J Clin Exp Med 2014;7(10):3333-3343) pooled with RevMan 5:
fixed-effect Mantel-Haenszel risk ratios on report-level rows (every report and every subgroup
of a report is a study, so BOLERO-2 enters up to seven times), the chi-squared heterogeneity test
and I2, and PFS hazard ratios by generic inverse variance of the log HR with the standard error
taken from the printed 95% CI. :func:`replicate` redoes every pooled result the paper prints
(``data/published_results.csv``: Figures 2A-2D, 3A-3C, Tables 6-7, Abstract and text) with that
method on the curated inputs and classifies each one:

``"matches"``
    every printed number (estimate, CI bounds, heterogeneity p, I2, Z) is reproduced within one
    unit of its last printed digit (``|ours - printed| <= 10**-decimals``);
``"differs"``
    computed, but at least one printed number is further away; ``reason`` names the numbers and
    the cause;
``"not_reproducible"``
    the seed does not print the inputs (``reason`` says which).

The primary computation of each result is the paper's stated method on all report-level rows
the seed prints, with counts ``round_half_up(percent / 100 * n)`` and RevMan's zero-cell rule
(1/2 added to every cell of a table with a zero cell, also inside the MH estimate). A small,
fixed set of alternative readings is computed as well and kept in
:attr:`ReplicationResult.interpretations` - never tuned to a target:

* ``rounding``: ``"round_half_up"`` (the curated integer counts) or ``"unrounded"`` (the
  printed proportion times n, kept fractional: shows how much the rounding of counts matters);
* ``zero_cell`` (only where a table has a zero cell): ``"revman"``, ``"none"`` (MH estimate
  from raw counts, metafor's ``rma.mh`` default) or ``"drop_zero_row"``;
* ``rows``: ``"all"``; ``"drop_outlier"`` (Figure 2C/2D: without the one row whose removal
  leaves the least heterogeneity - the paper's study "[21]", identified from the data);
  for PFS ``"one_row_per_report"`` (the "6 studies" of Figure 2: subgroups of one report
  combined by inverse variance).

:func:`unit_comparison` puts the paper's unit (reports) beside each trial counted once
(``unit="trial"`` with the default BOLERO-2 rule and the partition alternatives), with
fixed-effect, REML and exact Bayesian results. :func:`format_replication` renders a result for
the command line and :func:`replication_exit_status` gives its exit status.

Examples
--------
>>> res = replicate()
>>> res.table.set_index("result_id").loc["fig2b_cbr", "status"]
'matches'
"""

from __future__ import annotations

import math
import re
import textwrap
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from bayesmtor import config
from bayesmtor.data import load_adverse_events, load_efficacy_arms, load_published_results
from bayesmtor.datasets import BOLERO2, Dataset, comparative_dataset
from bayesmtor.effects import log_ratio_from_ci
from bayesmtor.errors import BayesMTORError, InputError, NotEstimableWarning
from bayesmtor.frequentist import rma, rma_mh
from bayesmtor.vocabulary import check_prob, z_quantile

__all__ = [
    "COMPARED_FIELDS",
    "INTERPRETATION_COLUMNS",
    "STATUSES",
    "TABLE_COLUMNS",
    "UNIT_COMPARISON_COLUMNS",
    "ReplicationResult",
    "format_replication",
    "replicate",
    "replication_exit_status",
    "unit_comparison",
]

#: The three possible values of the ``status`` column.
STATUSES: tuple[str, ...] = ("matches", "differs", "not_reproducible")

#: Columns of :attr:`ReplicationResult.table`, in order (stable: the CLI writes them to CSV).
TABLE_COLUMNS: tuple[str, ...] = (
    "result_id",
    "source_location",
    "outcome",
    "comparison",
    "measure",
    "model",
    "published_estimate",
    "published_ci_low",
    "published_ci_high",
    "published_het_p",
    "published_I2",
    "published_Z",
    "ours_estimate",
    "ours_ci_low",
    "ours_ci_high",
    "ours_het_p",
    "ours_I2",
    "ours_Z",
    "k_reports",
    "reports_used",
    "status",
    "reason",
)

#: Columns of :attr:`ReplicationResult.interpretations`, in order.
INTERPRETATION_COLUMNS: tuple[str, ...] = (
    "result_id",
    "interpretation",
    "primary",
    "rows",
    "zero_cell",
    "rounding",
    "k_reports",
    "reports_used",
    "dropped",
    "estimate",
    "ci_low",
    "ci_high",
    "het_p",
    "I2",
    "Z",
    "max_deviation_units",
    "outside",
)

#: Columns of :func:`unit_comparison`, in order.
UNIT_COMPARISON_COLUMNS: tuple[str, ...] = (
    "outcome",
    "comparison",
    "measure",
    "unit",
    "bolero2",
    "k",
    "bolero2_rows",
    "studies",
    "fe_method",
    "fe_estimate",
    "fe_ci_low",
    "fe_ci_high",
    "fe_het_p",
    "re_method",
    "re_estimate",
    "re_ci_low",
    "re_ci_high",
    "re_tau",
    "bayes_median",
    "bayes_ci_low",
    "bayes_ci_high",
    "bayes_tau_median",
    "note",
)

#: Printed number -> (published column, our column). ``Z`` is compared as |Z| (RevMan prints
#: the magnitude).
COMPARED_FIELDS: dict[str, tuple[str, str]] = {
    "estimate": ("estimate", "ours_estimate"),
    "ci_low": ("ci_low", "ours_ci_low"),
    "ci_high": ("ci_high", "ours_ci_high"),
    "het_p": ("het_p", "ours_het_p"),
    "I2": ("i2", "ours_I2"),
    "Z": ("z", "ours_Z"),
}

# Printed forms that are more precise than the one in ``source_text``: Figure 3A's estimate is
# printed "RR = 0.9" in the Results text but "relative risk = 0.90" in the Abstract (p. 3333).
_PRINTED_ELSEWHERE: dict[str, dict[str, str]] = {"fig3a_orr_neoadjuvant": {"estimate": "0.90"}}

# Row sets other than "all". Figure 2C: the printed RR may come from the sensitivity analysis
# without study [21] (see docs/replication-notes.md); Figure 2D is by definition that analysis
# ("when one of the study, which is out of range [21], was removed", Results text).
_ROW_SETS: dict[str, tuple[str, ...]] = {
    "fig2c_orr": ("all", "drop_outlier"),
    "fig2d_orr_without_ref21": ("drop_outlier",),
}

# Number of trials a pooled result rests on, where the paper states it and the seed prints
# fewer: "two other studies that enrolled 2104 women examined ... temsirolimus" (Abstract).
_STATED_STUDIES: dict[str, int] = {"temsirolimus_endocrine": 2}

_TABLE7_REASON = (
    "Table 7 pools grade 3-4 adverse events of everolimus plus exemestane, but Tables 1-4 print "
    "no grade 3-4 events for any everolimus-endocrine report (Table 2 gives any-grade events; "
    "the grade 3-4 rows of Tables 3-4 belong to neoadjuvant everolimus and temsirolimus), so "
    "not one study row of this pool is printed"
)
_FIXED_REASONS: dict[str, str] = {
    "fig2_legend_rr_p075": (
        "referent unclear: the Figure 2 legend's 'RR (p = 0.75)' matches no everolimus-endocrine "
        "analysis (printed heterogeneity p: PFS 0.71, CBR 0.8, ORR 0.009, ORR without [21] "
        "0.699); 0.75 equals the printed p of the temsirolimus CBR pool (Figure 3C), whose "
        "inputs are not printed (Wolff 2013 CBR)"
    ),
    "table6_hyperglycemia": (
        "Table 2 prints no hyperglycemia rate for any report or arm, so no 2x2 table exists"
    ),
    "table6_anorexia": (
        "Table 2 prints 'Decreased appetite' only for control arms (Noguchi 2013 Asian 8% and "
        "non-Asian 14%, Bachelot 2012 30%) and never for an everolimus arm, so no 2x2 table "
        "exists"
    ),
}

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_TOL = 1e-9  # floating-point slack on the one-unit rule


# --------------------------------------------------------------------------------------------
# result object


@dataclass(frozen=True, eq=False)
class ReplicationResult:
    """Published pooled results of the 2014 paper beside ours.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per published result (``data/published_results.csv``), columns
        :data:`TABLE_COLUMNS`. ``published_*`` and ``ours_*`` are on the ratio scale (het_p
        and I2 as printed: p-value and percent; Z as |Z|). ``ours_*`` come from the primary
        interpretation (the paper's method on all printed report rows) and are empty for
        ``not_reproducible`` rows. ``reports_used`` joins the study labels with ``"; "``.
    interpretations : pandas.DataFrame
        Every reading computed (columns :data:`INTERPRETATION_COLUMNS`), the primary one
        flagged; ``max_deviation_units`` is the largest ``|ours - printed|`` in units of the last
        printed digit and ``outside`` lists the numbers further than one unit.
    ci_prob : float
        Interval probability of ``ours_ci_*``. Printed intervals are 95%; at another level the
        interval bounds are not compared.
    """

    table: pd.DataFrame
    interpretations: pd.DataFrame
    ci_prob: float

    def status_counts(self) -> dict[str, int]:
        """Number of results per status (all three statuses, zeros included)."""
        counts = self.table["status"].value_counts()
        return {s: int(counts.get(s, 0)) for s in STATUSES}

    def summary(self) -> pd.DataFrame:
        """Compact table: ``result_id, source_location, published, ours, het_p_published,
        het_p_ours, k_reports, status, reason`` (estimates formatted as ``"1.92 [1.69, 2.17]"``)."""
        t = self.table
        return pd.DataFrame(
            {
                "result_id": t["result_id"],
                "source_location": t["source_location"],
                "published": [_fmt_ratio(*r, printed=True) for r in _triples(t, "published")],
                "ours": [_fmt_ratio(*r) for r in _triples(t, "ours")],
                "het_p_published": t["published_het_p"],
                "het_p_ours": t["ours_het_p"],
                "k_reports": t["k_reports"],
                "status": t["status"],
                "reason": t["reason"],
            }
        )

    def to_frame(self) -> pd.DataFrame:
        """A copy of :attr:`table` (what ``bayesmtor replicate`` writes to CSV)."""
        return self.table.copy()

    def __repr__(self) -> str:
        c = self.status_counts()
        lines = [
            f"ReplicationResult: {len(self.table)} published results of the 2014 paper "
            f"({c['matches']} matches, {c['differs']} differs, "
            f"{c['not_reproducible']} not_reproducible), ours at {100 * self.ci_prob:g}%"
        ]
        for r in self.summary().itertuples(index=False):
            lines.append(f"  {r.result_id:30s} {r.status:17s} {r.published:24s} ours {r.ours}")
        return "\n".join(lines)

    __str__ = __repr__


def _triples(t: pd.DataFrame, prefix: str) -> list[tuple[float, float, float]]:
    cols = [f"{prefix}_estimate", f"{prefix}_ci_low", f"{prefix}_ci_high"]
    return list(t[cols].astype(float).itertuples(index=False, name=None))


def _fmt_ratio(est: float, lo: float, hi: float, printed: bool = False) -> str:
    """``"est [lo, hi]"``: printed values as stored, ours with 3 decimals (2 from 10 up)."""

    def one(x: float) -> str:
        if printed:
            return f"{x:g}"
        return f"{x:.2f}" if abs(x) >= 10 else f"{x:.3f}"

    if not math.isfinite(est):
        return "-"
    if math.isfinite(lo) and math.isfinite(hi):
        return f"{one(est)} [{one(lo)}, {one(hi)}]"
    return one(est)


# --------------------------------------------------------------------------------------------
# pooling helpers


@dataclass(frozen=True)
class _Pool:
    """One pooled result on the ratio scale."""

    k: int
    studies: tuple[str, ...]
    estimate: float
    ci_low: float
    ci_high: float
    het_p: float
    I2: float
    Z: float
    Q: float
    Q_df: float
    se: float


def _from_fit(fit, studies: list[str]) -> _Pool:
    return _Pool(
        k=int(fit.k),
        studies=tuple(studies),
        estimate=math.exp(fit.estimate),
        ci_low=math.exp(fit.ci_low),
        ci_high=math.exp(fit.ci_high),
        het_p=float(fit.Q_pval),
        I2=float(fit.I2),
        Z=abs(float(fit.stat)),
        Q=float(fit.Q),
        Q_df=float(fit.Q_df),
        se=float(fit.se),
    )


def _mh(frame: pd.DataFrame, zero_cell: str, ci_prob: float) -> _Pool:
    """Mantel-Haenszel RR under one zero-cell rule."""
    f = frame
    if zero_cell == "drop_zero_row":
        zero = (f["events_trt"] == 0) | (f["events_ctl"] == 0)
        zero |= (f["events_trt"] == f["n_trt"]) | (f["events_ctl"] == f["n_ctl"])
        f = f.loc[~zero]
    correction = "none" if zero_cell == "none" else "revman"
    cols = [f[c].to_numpy(float) for c in ("events_trt", "n_trt", "events_ctl", "n_ctl")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotEstimableWarning)
        fit = rma_mh(*cols, measure="RR", ci_prob=ci_prob, mh_correction=correction,
                     studies=f["study"].tolist())  # fmt: skip
    return _from_fit(fit, list(fit.studies))


def _iv_hr(frame: pd.DataFrame, rows: str, ci_prob: float) -> _Pool:
    """Fixed-effect inverse-variance pool of log HRs, SE from the printed 95% CI (RevMan)."""
    y, v = log_ratio_from_ci(
        frame["estimate"].to_numpy(float),
        frame["ci_low"].to_numpy(float),
        frame["ci_high"].to_numpy(float),
    )
    ok = np.isfinite(y) & np.isfinite(v)
    f = frame.loc[ok].assign(_y=y[ok], _v=v[ok])
    if rows == "one_row_per_report":
        parts = []
        for _, g in f.groupby("report_id", sort=False):
            w = 1.0 / g["_v"].to_numpy()
            label = g["study"].iloc[0].split(",")[0].rstrip(")") + ")" if len(g) > 1 else None
            parts.append(
                dict(
                    study=label or g["study"].iloc[0],
                    _y=float((w * g["_y"].to_numpy()).sum() / w.sum()),
                    _v=float(1.0 / w.sum()),
                )
            )
        f = pd.DataFrame(parts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotEstimableWarning)
        fit = rma(f["_y"].to_numpy(), vi=f["_v"].to_numpy(), method="FE", measure="HR",
                  ci_prob=ci_prob, studies=f["study"].tolist())  # fmt: skip
    return _from_fit(fit, list(fit.studies))


def _count_frame(ds: Dataset, rounding: str) -> pd.DataFrame:
    """Study rows as float counts; ``"unrounded"`` replaces events by percent / 100 * n."""
    f = ds.data[["study", "report_id", "partition", "level"]].astype(str).copy()
    for c in ("events_trt", "n_trt", "events_ctl", "n_ctl"):
        f[c] = ds.data[c].astype(float).to_numpy()
    if rounding == "round_half_up":
        return f
    outcome = ds.outcome
    if outcome in ("orr", "cbr"):
        arms = load_efficacy_arms()
        arms = arms[arms["outcome"] == outcome]
    else:
        grade, event = outcome.split(":", 1)
        ae = load_adverse_events()
        grade_sel = ae["grade"] == "any" if grade == "ae_any" else ae["grade"] != "any"
        arms = ae[grade_sel & (ae["event"] == event)]
    arms = arms[arms["comparison"] == ds.comparison]
    pct = {
        (r.report_id, r.partition, r.level, r.arm): r.percent / 100.0 * float(r.n)
        for r in arms.itertuples(index=False)
    }
    for arm in ("trt", "ctl"):
        f[f"events_{arm}"] = [
            pct[(r.report_id, r.partition, r.level, arm)] for r in f.itertuples(index=False)
        ]
    return f


def _has_zero(frame: pd.DataFrame) -> bool:
    return bool(((frame["events_trt"] == 0) | (frame["events_ctl"] == 0)).any())


def _drop_outlier(frame: pd.DataFrame, zero_cell: str, ci_prob: float) -> tuple[pd.DataFrame, str]:
    """Leave out the row whose removal leaves the largest heterogeneity p-value."""
    best, best_p = None, -1.0
    for i in range(len(frame)):
        p = _mh(frame.drop(frame.index[i]), zero_cell, ci_prob).het_p
        if p > best_p:
            best, best_p = i, p
    return frame.drop(frame.index[best]), str(frame["study"].iloc[best])


# --------------------------------------------------------------------------------------------
# printed precision and comparison


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


def _pool_values(pool: _Pool, prefix: str = "") -> dict[str, float]:
    """The compared numbers of ``pool`` (:data:`COMPARED_FIELDS`), keyed ``prefix + name``."""
    return {prefix + name: getattr(pool, name) for name in COMPARED_FIELDS}


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


def _fmt_num(x: float) -> str:
    if not math.isfinite(x):
        return "NA"
    if x != 0 and abs(x) < 0.01:
        return f"{x:.4f}"
    return f"{x:.3f}"


# --------------------------------------------------------------------------------------------
# one published result


@dataclass(frozen=True)
class _Interp:
    rows: str
    zero_cell: str
    rounding: str

    @property
    def name(self) -> str:
        return f"rows={self.rows}; zero_cell={self.zero_cell}; rounding={self.rounding}"


def _interp_specs(result_id: str, measure: str, frame: pd.DataFrame | None) -> list[_Interp]:
    if measure == "HR":
        return [
            _Interp("all_with_ci", "not_applicable", "not_applicable"),
            _Interp("one_row_per_report", "not_applicable", "not_applicable"),
        ]
    row_sets = _ROW_SETS.get(result_id, ("all",))
    zeros = ("revman", "none", "drop_zero_row") if _has_zero(frame) else ("revman",)
    specs = []
    for rows in row_sets:
        for zero in zeros:
            for rounding in ("round_half_up", "unrounded"):
                specs.append(_Interp(rows, zero, rounding))
    return specs


def _run(spec: _Interp, ds: Dataset, ci_prob: float) -> tuple[_Pool, str]:
    """Pool one interpretation; returns the pool and a note (the dropped outlier, if any)."""
    if ds.measure == "HR":
        return _iv_hr(ds.data, spec.rows, ci_prob), ""
    frame = _count_frame(ds, spec.rounding)
    note = ""
    if spec.rows == "drop_outlier":
        frame, dropped = _drop_outlier(frame, spec.zero_cell, ci_prob)
        note = dropped
    return _mh(frame, spec.zero_cell, ci_prob), note


def _other_rows(ds: Dataset) -> str:
    """Reports of the comparison group that print the outcome for no arm / one arm only."""
    ex = ds.excluded
    ex = ex[~ex["reason"].str.contains("no comparison group|single-arm cohort", regex=True)]
    return "; ".join(f"{r.study} ({r.reason})" for r in ex.itertuples(index=False))


def _not_reproducible_reason(pub: pd.Series, ds: Dataset | None, ci_prob: float) -> str | None:
    rid = str(pub["result_id"])
    if rid in _FIXED_REASONS:
        return _FIXED_REASONS[rid]
    outcome, comparison = str(pub["outcome"]), str(pub["comparison"])
    if outcome.startswith("ae_grade34:"):
        return _TABLE7_REASON
    if comparison in _STATED_STUDIES:
        stated = _STATED_STUDIES[comparison]
        parts = []
        for out in ("orr", "cbr") if outcome in ("", "nan") else (outcome,):
            d = comparative_dataset(out, comparison, unit="report")
            if d.k >= stated:
                continue
            txt = f"{out.upper()}: printed for {', '.join(d.data['study'])} only"
            if d.k >= 1:
                p = _mh(_count_frame(d, "round_half_up"), "revman", ci_prob)
                txt += (
                    f" (alone: RR {_fmt_num(p.estimate)} [{_fmt_num(p.ci_low)}, "
                    f"{_fmt_num(p.ci_high)}])"
                )
            missing = _other_rows(d)
            if missing:
                txt += f"; missing: {missing}"
            parts.append(txt)
        if parts:
            return (
                f"the paper pools {stated} temsirolimus trials (Abstract: 'two other studies "
                "that enrolled 2104 women'), but the seed prints the inputs of fewer: "
                + " | ".join(parts)
            )
    if outcome in ("", "nan") or comparison in ("", "nan"):
        return "the printed statement names no single outcome and comparison"
    if ds is not None and ds.k == 0:
        return "no report prints this outcome for both arms: " + _other_rows(ds)
    return None


def _cause(pub: pd.Series, ds: Dataset, primary: _Pool, interps: pd.DataFrame) -> str:
    """One or two sentences on why a computed result differs (written per result type)."""
    rid = str(pub["result_id"])
    alts = interps[~interps["primary"]]
    if ds.measure == "HR":
        p_plus = float(stats.chi2.sf(primary.Q, primary.Q_df + 1))
        n_bolero = int((ds.data["trial_id"] == BOLERO2).sum())
        z95 = z_quantile(config.get("published_ci_prob"))
        se_pub = (math.log(float(pub["ci_high"])) - math.log(float(pub["ci_low"]))) / (2 * z95)
        return (
            f"estimate and CI are within one unit, but Q = {primary.Q:.2f} on "
            f"{primary.Q_df:g} df from the {primary.k} report rows that print a CI gives "
            f"p = {primary.het_p:.3f}; on {primary.Q_df + 1:g} df it gives p = {p_plus:.3f}, "
            "and the printed interval is narrower than ours (SE of the pooled log HR "
            f"{se_pub:.3f} vs {primary.se:.3f}): both point to more information than these rows "
            "carry, consistent with "
            "Novartis 2012 (HR 0.45, printed without a CI) having entered with a CI the seed "
            "does not print. Either way the interval rests on counting BOLERO-2 "
            f"{n_bolero} times (k = {primary.k} report rows, one trial); see unit_comparison()"
        )
    if rid == "fig2c_orr":
        drop = alts[alts["rows"] == "drop_outlier"].copy()
        pub_est = [float(pub[c]) for c in ("estimate", "ci_low", "ci_high")]
        drop["_d"] = [
            max(abs(math.log(x) - math.log(y)) for x, y in zip(r, pub_est, strict=True))
            for r in drop[["estimate", "ci_low", "ci_high"]].itertuples(index=False, name=None)
        ]
        alt = drop.sort_values("_d").iloc[0]
        rev = drop[(drop["zero_cell"] == "revman") & (drop["rounding"] == "round_half_up")].iloc[0]
        dropped = str(alt["dropped"])
        return (
            f"the printed heterogeneity p = 0.009 is reproduced on all {primary.k} report rows "
            f"(p = {primary.het_p:.4f}), but the printed RR 9.18 [5.21, 16.15] is not: it lies "
            f"close to the pool without study [21] = {dropped} (RevMan zero-cell rule: "
            f"{_fmt_num(rev['estimate'])} [{_fmt_num(rev['ci_low'])}, {_fmt_num(rev['ci_high'])}]"
            f"; closest reading {alt['interpretation']}: {_fmt_num(alt['estimate'])} "
            f"[{_fmt_num(alt['ci_low'])}, {_fmt_num(alt['ci_high'])}]), so Figure 2C appears to "
            "print the estimate of the five BOLERO-2 rows with the heterogeneity of all six; no "
            "reading reproduces 9.18 [5.21, 16.15] within one unit (the paper's event counts are "
            "not printed)"
        )
    if rid == "fig2d_orr_without_ref21":
        dropped = str(interps.iloc[0]["dropped"])
        rng = interps["het_p"].astype(float)
        full = _count_frame(ds, "round_half_up")
        pub_ci = config.get("published_ci_prob")
        loo = [_mh(full.drop(full.index[i]), "revman", pub_ci).het_p for i in range(len(full))]
        het_alpha = config.get("het_alpha")
        n_ok = sum(p >= het_alpha for p in loo)
        which = "the only row" if n_ok == 1 else f"one of {n_ok} rows"
        return (
            f"study [21] identified from the data as {dropped}: {which} whose removal makes the "
            f"heterogeneity non-significant (p >= {het_alpha:g}, the paper's threshold); across "
            f"the zero-cell and rounding readings p ranges {rng.min():.3f}-{rng.max():.3f}, "
            "none within 0.001 of 0.699; the paper's p came from STATA with event counts that "
            "are not printed (ours are derived from printed percentages)"
        )
    missing = _other_rows(ds)
    txt = (
        "counts derived from Table 2 percentages x Table 1 arm sizes for the "
        f"{primary.k} report rows that print the event in both arms"
    )
    if missing:
        txt += f"; not printed for both arms: {missing}"
    return txt + (
        "; the paper's own counts are not printed and evidently differ from these (Table 2 lists "
        "only the most common toxic effects per arm, and its percentages may rest on other "
        "denominators, e.g. safety populations, than the Table 1 arm sizes)"
    )


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


# --------------------------------------------------------------------------------------------
# public API


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


def _unit_settings(comparison: str) -> list[tuple[str, str | None]]:
    settings: list[tuple[str, str | None]] = [("report", None), ("trial", "latest_full_report")]
    if comparison == "everolimus_endocrine":
        settings += [
            ("trial", "partition:visceral_metastases"),
            ("trial", "partition:region"),
        ]
    return settings


#: Efficacy analyses compared by :func:`unit_comparison` (outcome, comparison).
UNIT_ANALYSES: tuple[tuple[str, str], ...] = (
    ("pfs", "everolimus_endocrine"),
    ("cbr", "everolimus_endocrine"),
    ("orr", "everolimus_endocrine"),
    ("orr", "everolimus_neoadjuvant"),
    ("orr", "temsirolimus_endocrine"),
    ("cbr", "temsirolimus_endocrine"),
)


def unit_comparison(ci_prob: float | None = None, tau_prior: object = None) -> pd.DataFrame:
    """The paper's unit (reports) beside each trial counted once, for every efficacy analysis.

    Parameters
    ----------
    ci_prob : float, optional
        Probability of all intervals, confidence and credible alike (default from
        ``config.defaults``).
    tau_prior : TauPrior, prior text (``"half-normal:0.5"``) or None
        Prior on tau for the exact Bayesian posterior (default ``config.defaults["tau_prior"]``);
        the prior on mu is the registered default.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`UNIT_COMPARISON_COLUMNS`; one row per analysis of :data:`UNIT_ANALYSES` x
        unit setting: ``unit="report"`` (every report and subgroup a study, the paper's unit),
        ``unit="trial"`` with ``bolero2="latest_full_report"`` and, for everolimus + endocrine
        therapy, the partition rules ``"partition:visceral_metastases"`` and
        ``"partition:region"``. Ratios (``*_estimate``, ``*_ci_*``, ``bayes_*``) are on the ratio
        scale; ``re_tau`` and ``bayes_tau_median`` on the log scale. ``fe_method`` is ``"MH"``
        (RR, RevMan zero-cell rule) or ``"FE"`` (inverse variance, HR); ``re_method`` is
        ``"REML"``. With k = 1 the random-effects and Bayesian columns are empty; a rule the
        data cannot serve (e.g. Campone 2013 prints no ORR) gives a row with ``k = 0`` and the
        reason in ``note``.
    """
    from bayesmtor.bayes.exact import exact_posterior
    from bayesmtor.effects import escalc
    from bayesmtor.frequentist import meta_analysis

    p = float(config.get("ci_prob", ci_prob))
    qs = [0.5, (1 - p) / 2, (1 + p) / 2]
    rows = []
    for outcome, comparison in UNIT_ANALYSES:
        for unit, rule in _unit_settings(comparison):
            rec = {c: np.nan for c in UNIT_COMPARISON_COLUMNS}
            rec.update(outcome=outcome, comparison=comparison, unit=unit, bolero2=rule or "",
                       k=0, bolero2_rows=0, studies="", note="")  # fmt: skip
            try:
                ds = comparative_dataset(outcome, comparison, unit=unit, bolero2=rule)
            except InputError as err:
                rec.update(measure="HR" if outcome == "pfs" else "RR", note=f"not available: {err}")
                rows.append(rec)
                continue
            rec.update(
                measure=ds.measure,
                k=ds.k,
                bolero2_rows=int((ds.data["trial_id"] == BOLERO2).sum()),
                studies="; ".join(ds.data["study"]),
            )
            fe_method = "FE" if ds.measure == "HR" else "MH"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotEstimableWarning)
                fe = meta_analysis(ds.data, measure=ds.measure, method=fe_method, ci_prob=p)
                rec.update(
                    fe_method=fe_method,
                    fe_estimate=math.exp(fe.estimate),
                    fe_ci_low=math.exp(fe.ci_low),
                    fe_ci_high=math.exp(fe.ci_high),
                    fe_het_p=fe.Q_pval,
                    re_method="REML",
                )
                if ds.k < 2:
                    rec["note"] = (
                        f"k = {ds.k}: a single study, nothing to pool; between-trial "
                        "heterogeneity cannot be estimated"
                    )
                    rows.append(rec)
                    continue
                re_fit = meta_analysis(ds.data, measure=ds.measure, method="REML", ci_prob=p)
            es = escalc(ds.data, measure=ds.measure).included()
            post = exact_posterior(
                es["yi"].to_numpy(float), es["sei"].to_numpy(float), tau_prior=tau_prior,
                labels=es["study"].tolist(),
            )  # fmt: skip
            mu = np.exp(np.asarray(post.mu_quantile(qs), dtype=float))
            rec.update(
                re_estimate=math.exp(re_fit.estimate),
                re_ci_low=math.exp(re_fit.ci_low),
                re_ci_high=math.exp(re_fit.ci_high),
                re_tau=re_fit.tau,
                bayes_median=mu[0],
                bayes_ci_low=mu[1],
                bayes_ci_high=mu[2],
                bayes_tau_median=float(post.tau_quantile(0.5)),
            )
            if rec["bolero2_rows"] > 1:
                rec["note"] = f"BOLERO-2 enters {rec['bolero2_rows']} times (one trial)"
            rows.append(rec)
    out = pd.DataFrame(rows, columns=list(UNIT_COMPARISON_COLUMNS))
    out["k"] = out["k"].astype("int64")
    out["bolero2_rows"] = out["bolero2_rows"].astype("int64")
    out.attrs["ci_prob"] = p
    return out


def format_replication(result: ReplicationResult, width: int = 100) -> str:
    """Plain-text table of a :class:`ReplicationResult` for the command line.

    Parameters
    ----------
    result : ReplicationResult
    width : int
        Line width for the wrapped reasons.

    Returns
    -------
    str
        A header with the status counts, one line per published result (id, where printed,
        published and our estimate [CI], heterogeneity p both ways, k, status), then the reason
        of every result that is not ``"matches"``.
    """
    if not isinstance(result, ReplicationResult):
        raise InputError(
            f"'result' must be a ReplicationResult (from replicate()), not {type(result).__name__}"
        )
    s = result.summary()
    c = result.status_counts()
    lines = [
        "Replication of the 2014 meta-analysis (Int J Clin Exp Med 2014;7(10):3333-3343)",
        "method: RevMan 5 fixed-effect Mantel-Haenszel RR / inverse-variance HR on report-level "
        f"rows; ours at {100 * result.ci_prob:g}%",
        f"{c['matches']} matches, {c['differs']} differs, {c['not_reproducible']} "
        "not_reproducible (within one unit of the last printed digit = matches)",
        "",
    ]

    def p_txt(x: float) -> str:
        return "-" if not math.isfinite(x) else _fmt_num(x)

    header = (
        f"{'result':28s} {'where':16s} {'published':24s} {'ours':24s} "
        f"{'het p pub/ours':17s} {'k':>2s}  status"
    )
    lines += [header, "-" * len(header)]
    for r in s.itertuples(index=False):
        het = f"{p_txt(float(r.het_p_published))}/{p_txt(float(r.het_p_ours))}"
        k = str(r.k_reports) if r.k_reports else "-"
        lines.append(
            f"{r.result_id[:28]:28s} {r.source_location[:16]:16s} {r.published:24s} "
            f"{r.ours:24s} {het:17s} {k:>2s}  {r.status}"
        )
    notes = [r for r in s.itertuples(index=False) if r.status != "matches"]
    if notes:
        lines += ["", "reasons:"]
        for r in notes:
            lines += textwrap.wrap(
                f"{r.result_id} [{r.status}]: {r.reason}",
                width=width,
                initial_indent="  ",
                subsequent_indent="      ",
            )
    return "\n".join(lines)


def replication_exit_status(result: ReplicationResult) -> int:
    """Exit status of ``bayesmtor replicate``: 0 unless the result is malformed.

    ``"differs"`` and ``"not_reproducible"`` are findings about the paper, not failures, so they
    give 0. 1 means an internal error: not a :class:`ReplicationResult`, a status outside
    :data:`STATUSES`, a missing column, or a published result missing or repeated.
    """
    try:
        if not isinstance(result, ReplicationResult):
            return 1
        t = result.table
        if list(t.columns) != list(TABLE_COLUMNS):
            return 1
        if not t["status"].isin(STATUSES).all() or t["result_id"].duplicated().any():
            return 1
        expected = set(load_published_results()["result_id"].astype(str))
        return 0 if set(t["result_id"].astype(str)) == expected else 1
    except (BayesMTORError, KeyError, ValueError):  # pragma: no cover - defensive
        return 1
