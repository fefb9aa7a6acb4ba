"""The CSV tables of a run, built from its frozen results (nothing here fits or writes).

``summary_of_findings`` (the headline rows, :mod:`bayesmtor.reporting.findings`), ``pooled``
(every pooled result, frequentist and Bayesian, in the one pooled-result schema of
:mod:`bayesmtor.schema`), ``pooled_bayes``, ``pooled_frequentist``, ``side_by_side``,
``excluded_studies``, ``single_arm_cohort``, ``analyses`` (status of every expanded analysis),
``forest_<id>`` (the rows of each forest plot: observed and shrunken trial effects, pooled and predictive rows),
``mcmc_check`` and ``mcmc_diagnostics`` (when MCMC ran), ``prior_sensitivity`` (with
``[sensitivity]``), ``multilevel_<id>``, and ``replication`` / ``unit_comparison`` when
:mod:`bayesmtor.replication` is available.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayesmtor.pipeline import POSTERIOR_COLUMNS
from bayesmtor.pipeline.results import AnalysisResult, RunResult
from bayesmtor.pipeline.stages import add_ratio_columns
from bayesmtor.plans import Plan
from bayesmtor.reporting.findings import format_ratio_interval, summary_of_findings
from bayesmtor.vocabulary import RATIO_MEASURES, z_quantile

__all__ = ["build_tables", "forest_rows", "model_averaging", "pooled", "side_by_side"]


def _base(f: AnalysisResult) -> dict[str, Any]:
    return {
        "analysis": f.id,
        "outcome": f.task.outcome,
        "comparison": f.task.comparison,
        "measure": f.measure,
        "likelihood": f.spec.likelihood,
    }


_BAYES_COLS = [
    *(c for b in ("mu_mean", "mu_sd", *POSTERIOR_COLUMNS) for c in (b, f"{b}_mcse")),
    "quad_error",
]  # every MCMC number with its Monte Carlo standard error (NaN for the exact engine)
_FREQ_COLS = [
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "pval",
    "tau2",
    "tau",
    "I2",
    "Q",
    "Q_df",
    "Q_pval",
    "pi_low",
    "pi_high",
]


def build_tables(result: RunResult) -> dict[str, pd.DataFrame]:
    """Every table of a run, by name (the file stem below ``tables/``)."""
    plan = result.plan
    fits = result.analyses
    done = [f for f in fits if f.fitted]
    tables: dict[str, pd.DataFrame] = {
        "summary_of_findings": summary_of_findings(done, plan),
        "pooled_bayes": _pooled_bayes(done, plan),
        "pooled_frequentist": _pooled_frequentist(fits),
        "side_by_side": side_by_side(done, plan),
        "pooled": pooled(fits, plan),
        "model_averaging": model_averaging(done),
    }
    tables.update(_excluded(fits))
    tables["analyses"] = pd.DataFrame([f.record().to_dict() for f in fits])
    tables.update(_mcmc_tables(fits))
    if result.sensitivity is not None:
        tables["prior_sensitivity"] = result.sensitivity
    if result.replication.table is not None:
        tables["replication"] = pd.DataFrame(result.replication.table)
    if result.replication.units is not None:
        tables["unit_comparison"] = pd.DataFrame(result.replication.units)
    for f in done:
        tables[f"forest_{f.id}"] = forest_rows(f, plan)
        if f.bayes is not None and f.spec.likelihood == "multilevel":
            tables[f"multilevel_{f.id}"] = f.bayes.summary(plan.ci_prob).reset_index()
    from bayesmtor.reporting.regression import regression_tables

    tables.update(regression_tables(result))
    return tables


def pooled(fits: Sequence[AnalysisResult], plan: Plan) -> pd.DataFrame:
    """Every pooled result of the run in the one pooled-result schema
    (:data:`bayesmtor.schema.POOLED_COLUMNS`): per analysis a ``frequentist`` row and an
    ``exact`` or ``mcmc`` row, the same columns for each; ``excluded`` as ``study: reason``
    entries joined by ``"; "``."""
    from bayesmtor import schema

    rows = []
    for f in fits:
        excluded: list[tuple[str, str]] = []
        if f.excluded is not None:
            study, reason = f.excluded["study"].astype(str), f.excluded["reason"].astype(str)
            excluded = list(zip(study, reason, strict=True))
        for res in (f.freq, f.exact, f.bayes):
            if res is None:
                continue
            row = schema.pooled_row(res, ci_prob=plan.ci_prob, measure=f.measure, excluded=excluded)
            row["excluded"] = "; ".join(f"{s}: {r}" for s, r in row["excluded"])
            rows.append({**_base(f), **row})  # the schema's measure column stands for both
    ids = [c for c in _base_cols() if c not in schema.POOLED_COLUMNS]
    return pd.DataFrame(rows, columns=[*ids, *schema.POOLED_COLUMNS])


def _pooled_bayes(done: Sequence[AnalysisResult], plan: Plan) -> pd.DataFrame:
    bayes = pd.DataFrame(
        [
            {
                **_base(f),
                "engine": f.engine,
                "k": f.k,
                "studies": "; ".join(f.es_table["study"].astype(str)),
                **{c: f.bayes_row.get(c, np.nan) for c in _BAYES_COLS},
                "ci_prob": plan.ci_prob,
                "status": f.status,
            }
            for f in done
        ],
        columns=[*_base_cols(), "engine", "k", "studies", *_BAYES_COLS, "ci_prob", "status"],
    )
    add_ratio_columns(bayes, ["mu_median", "mu_low", "mu_high", "pred_low", "pred_high"])
    return bayes


def model_averaging(done: Sequence[AnalysisResult]) -> pd.DataFrame:
    """Bayes factors and model averaging of each analysis's exact posterior: the marginal
    likelihood, ``bf_tau0``, ``bf_mu0``, the posterior probabilities of FE-null, FE-effect,
    RE-null and RE-effect, the inclusion Bayes factors and the model-averaged quantiles of mu
    (with ``_ratio`` columns for ratio measures); NaN where a prior is improper."""
    from bayesmtor.bayes.model_averaging import BMA_COLUMNS

    cols = ["log_marginal_likelihood", "bf_tau0", "bf_mu0", *BMA_COLUMNS]
    table = pd.DataFrame(
        [{**_base(f), "k": f.k, **{c: f.evidence.get(c, np.nan) for c in cols}} for f in done],
        columns=[*_base_cols(), "k", *cols],
    )
    add_ratio_columns(table, ["bma_mu_median", "bma_mu_low", "bma_mu_high"])
    return table


def _pooled_frequentist(fits: Sequence[AnalysisResult]) -> pd.DataFrame:
    freq = pd.DataFrame(
        [
            {
                **_base(f),
                "method": f.freq.method,
                "test": f.freq.test,
                "k": f.freq.k,
                **{c: getattr(f.freq, c) for c in _FREQ_COLS},
                "ci_prob": f.freq.ci_prob,
            }
            for f in fits
            if f.freq is not None
        ],
        columns=[*_base_cols(), "method", "test", "k", *_FREQ_COLS, "ci_prob"],
    )
    add_ratio_columns(freq, ["estimate", "ci_low", "ci_high", "pi_low", "pi_high"])
    return freq


def _excluded(fits: Sequence[AnalysisResult]) -> dict[str, pd.DataFrame]:
    """``excluded_studies`` (every analysis, then the single-arm cohort) and
    ``single_arm_cohort``."""
    from bayesmtor.datasets import single_arm_cohort

    excl = []
    for f in fits:
        if f.excluded is not None and len(f.excluded):
            e = f.excluded.copy()
            e.insert(0, "analysis", f.id)
            excl.append(e)
    cohort = single_arm_cohort()
    excl.append(
        pd.DataFrame(
            {
                "analysis": ["(every analysis)"],
                "comparison": [""],
                "study": ["West-Iran rapamycin cohort"],
                "report_id": ["west_iran_cohort"],
                "reason": [cohort.reason],
            }
        )
    )
    excluded = pd.concat(excl, ignore_index=True)
    excluded = excluded.drop_duplicates().reset_index(drop=True)
    return {"excluded_studies": excluded, "single_arm_cohort": cohort.summary()}


def _mcmc_tables(fits: Sequence[AnalysisResult]) -> dict[str, pd.DataFrame]:
    """``mcmc_check`` and ``mcmc_diagnostics``, when any MCMC ran."""
    tables: dict[str, pd.DataFrame] = {}
    checks = [f.check_table for f in fits if f.check_table is not None]
    if checks:
        tables["mcmc_check"] = pd.concat(checks, ignore_index=True)
    diag_rows = []
    for f in fits:
        if f.check_diag is not None:
            diag_rows.append({"analysis": f.id, "fit": "check (normal-normal)", **f.check_diag})
        if f.bayes_diag is not None:
            diag_rows.append({"analysis": f.id, "fit": f.spec.likelihood, **f.bayes_diag})
    if diag_rows:
        tables["mcmc_diagnostics"] = pd.DataFrame(diag_rows)
    return tables


def _base_cols() -> list[str]:
    return ["analysis", "outcome", "comparison", "measure", "likelihood"]


def _fmt_interval(est: float, lo: float, hi: float, ratio: bool) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "not estimable"
    f = math.exp if ratio else (lambda x: x)
    return format_ratio_interval(f(est), f(lo), f(hi))


def side_by_side(done: Sequence[AnalysisResult], plan: Plan) -> pd.DataFrame:
    pct = f"{100 * plan.ci_prob:g}%"
    rows = []
    for f in done:
        ratio = f.measure in RATIO_MEASURES
        b = f.bayes_row
        fr = f.freq
        rows.append(
            {
                **_base(f),
                "k": f.k,
                "engine": f.engine,
                f"Bayes median [{pct} CrI]": _fmt_interval(
                    b["mu_median"], b["mu_low"], b["mu_high"], ratio
                ),
                f"Bayes prediction [{pct}]": (
                    "prior only (k = 1)"
                    if f.k == 1
                    else _fmt_interval(float("nan"), b["pred_low"], b["pred_high"], ratio)
                ),
                "Bayes tau median [interval]": _fmt_interval(
                    b["tau_median"], b["tau_low"], b["tau_high"], False
                ),
                "P(effect < null)": round(float(b["p_mu_below_0"]), 4),
                "frequentist method": fr.method if fr is not None else "",
                f"frequentist estimate [{pct} CI]": (
                    _fmt_interval(fr.estimate, fr.ci_low, fr.ci_high, ratio)
                    if fr is not None
                    else "not estimable"
                ),
                "frequentist tau": (
                    f"{fr.tau:.2f}" if fr is not None and math.isfinite(fr.tau) else ""
                ),
                "I2 (%)": f"{fr.I2:.1f}" if fr is not None and math.isfinite(fr.I2) else "",
                "status": f.status,
            }
        )
    return pd.DataFrame(rows)


def forest_rows(f: AnalysisResult, plan: Plan) -> pd.DataFrame:
    """Rows of the forest plot (analysis scale): every trial of the data, then pooled rows."""
    pct = f"{100 * plan.ci_prob:g}%"
    multi = f.spec.likelihood == "multilevel"
    rows = _trial_rows(f, _z(plan.ci_prob))
    b = f.bayes_row
    if multi and f.bayes is not None:
        summ = f.bayes.summary(plan.ci_prob)
        for c in f.bayes.drug_classes:
            row = summ.loc[f"mu_class[{c}]"]
            rows.append(
                _pooled_row(
                    f"Class mean, {c.replace('_', ' + ')} (Bayes, {pct} CrI)",
                    "pooled_bayes",
                    row["median"],
                    row["q_low"],
                    row["q_high"],
                    "multilevel",
                )
            )
    engine = "exact" if f.engine == "exact" else "MCMC"
    rows.append(
        _pooled_row(
            f"Pooled, Bayesian {engine} ({pct} CrI)",
            "pooled_bayes",
            b["mu_median"],
            b["mu_low"],
            b["mu_high"],
            "",
        )
    )
    single = f.k == 1
    if f.freq is not None:
        fr = f.freq
        rows.append(
            _pooled_row(
                f"Trial estimate, frequentist ({pct} CI; one trial, nothing pooled)"
                if single
                else f"Pooled, frequentist {fr.method} ({pct} CI)",
                "pooled_freq",
                fr.estimate,
                fr.ci_low,
                fr.ci_high,
                "single trial" if single else "",
            )
        )
    rows.append(
        _pooled_row(
            f"Prediction, new trial (Bayes, {pct})",
            "predictive",
            _predictive_median(f),
            b["pred_low"],
            b["pred_high"],
            "prior only: one trial carries no information on tau" if single else "",
        )
    )
    return pd.DataFrame(rows)


def _predictive_median(f: AnalysisResult) -> float:
    """Posterior median of the effect in a new trial (nan when no posterior gives it)."""
    if f.exact is not None:
        return float(f.exact.theta_new_quantile(0.5))
    if f.bayes is not None:
        return float(np.median(f.bayes.idata.posterior["theta_new"].values))
    return float("nan")


def _trial_rows(f: AnalysisResult, z: float) -> list[dict[str, Any]]:
    """An ``observed`` row for every study row of the data (excluded ones with the reason),
    each followed by its ``shrunken`` row when the trial was pooled."""
    rows: list[dict[str, Any]] = []
    multi = f.spec.likelihood == "multilevel"
    inc = f.es_table
    # frequentist weights (random-effects weights when tau is estimated)
    weights: dict[str, float] = {}
    if f.freq is not None:
        t2 = f.freq.tau2 if math.isfinite(f.freq.tau2) else 0.0
        w = 1.0 / (inc["vi"].to_numpy(float) + t2)
        w = 100 * w / w.sum()
        weights = dict(zip(inc["study"].astype(str), w, strict=True))
        data = f.freq.data  # the fit's own weights (MH, Peto or inverse variance)
        if data is not None and data.weights is not None and not multi:
            weights = {
                lab: w
                for lab, w, ok in zip(data.labels, data.weights, data.included, strict=True)
                if ok
            }
    counts = [c for c in ("events_trt", "n_trt", "events_ctl", "n_ctl") if c in f.dataset_rows]
    shr = (
        {} if f.shrunken is None else {str(r.study): r for r in f.shrunken.itertuples(index=False)}
    )
    inc_labels = inc["study"].astype(str).tolist()
    for r in f.dataset_rows.itertuples(index=False):
        label = str(r.study)
        if multi and inc_labels.count(label) == 0 and f"{label} [{r.comparison}]" in inc_labels:
            label = f"{label} [{r.comparison}]"
        included = bool(r.included)
        yi, se = float(r.yi), float(r.sei)
        est_ok = included and math.isfinite(yi) and math.isfinite(se)
        rows.append(
            {
                "label": label,
                "kind": "observed",
                "estimate": yi if est_ok else np.nan,
                "low": yi - z * se if est_ok else np.nan,
                "high": yi + z * se if est_ok else np.nan,
                "weight": weights.get(label, np.nan),
                "trial": True,
                "included": included,
                "comparison": r.comparison,
                "note": "" if included else str(r.exclusion_reason),
                **{c: float(getattr(r, c)) for c in counts},
            }
        )
        s = shr.get(label)
        if s is not None:
            rows.append(
                {
                    "label": label,
                    "kind": "shrunken",
                    "estimate": s.median,
                    "low": s.q_low,
                    "high": s.q_high,
                    "weight": np.nan,
                    "trial": True,
                    "included": True,
                    "comparison": r.comparison,
                    "note": "posterior median of the trial's effect",
                }
            )
    return rows


def _pooled_row(label: str, kind: str, est: float, lo: float, hi: float, note: str) -> dict:
    return {
        "label": label,
        "kind": kind,
        "estimate": float(est),
        "low": float(lo),
        "high": float(hi),
        "weight": np.nan,
        "trial": False,
        "included": True,
        "comparison": "",
        "note": note,
    }


def _z(ci_prob: float) -> float:
    return z_quantile(ci_prob)
