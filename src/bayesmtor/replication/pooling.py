"""The paper's method (RevMan 5: Mantel-Haenszel RR, inverse-variance HR) and the fixed set of
alternative readings of each published result.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayesmtor.data import load_adverse_events, load_efficacy_arms
from bayesmtor.datasets import Dataset
from bayesmtor.effects import log_ratio_from_ci
from bayesmtor.errors import NotEstimableWarning
from bayesmtor.frequentist import rma, rma_mh
from bayesmtor.replication.results import COMPARED_FIELDS

# Row sets other than "all". Figure 2C: the printed RR may come from the sensitivity analysis
# without study [21] (see docs/replication-notes.md); Figure 2D is by definition that analysis
# ("when one of the study, which is out of range [21], was removed", Results text).
_ROW_SETS: dict[str, tuple[str, ...]] = {
    "fig2c_orr": ("all", "drop_outlier"),
    "fig2d_orr_without_ref21": ("drop_outlier",),
}


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


def _pool_values(pool: _Pool, prefix: str = "") -> dict[str, float]:
    """The compared numbers of ``pool`` (:data:`COMPARED_FIELDS`), keyed ``prefix + name``."""
    return {prefix + name: getattr(pool, name) for name in COMPARED_FIELDS}


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
