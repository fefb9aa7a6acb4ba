"""The fitting stages of a plan run, each a function from frozen results to frozen results.

1. **Data and effect sizes** (:func:`prepare`): :func:`bayesmtor.datasets.comparative_dataset`
   with the plan's unit of analysis and BOLERO-2 rule, then :func:`bayesmtor.effects.escalc`
   (log RR/OR/HR or RD; RevMan 5 zero-cell rule).
2. **Frequentist** pooling with the plan's method. ``MH`` and ``PETO`` need 2x2 counts, so
   hazard ratios are then pooled by fixed-effect inverse variance, as RevMan 5 does for generic
   inverse-variance data.
3. **Exact posterior** (quadrature, :func:`bayesmtor.bayes.exact.exact_posterior`) of the
   normal-normal model unless the analysis says ``bayes = "mcmc"``, and its InferenceData of
   independent draws (:func:`exact_idata`).
4. **MCMC results** taken over (:func:`apply_fit`) or compared with the exact posterior
   (:func:`apply_check`, differences in Monte Carlo standard errors).
5. **Prior sensitivity** (:func:`sensitivity`): every normal-normal analysis refitted exactly
   under each tau prior (vectorised over analyses, :func:`bayesmtor.bayes.exact.exact_batch`).
6. **Replication** of the 2014 paper (:func:`replication`), when that module is installed.

Every stage returns a new :class:`~bayesmtor.pipeline.results.AnalysisResult`
(:func:`dataclasses.replace`); none writes a file.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from bayesmtor import __version__, config
from bayesmtor.effects import RAW_COUNT_COLUMNS
from bayesmtor.errors import BayesMTORError
from bayesmtor.pipeline.results import AnalysisResult, Replication
from bayesmtor.plans import Plan
from bayesmtor.vocabulary import RATIO_MEASURES

__all__ = [
    "Priors",
    "add_ratio_columns",
    "apply_check",
    "check_table",
    "apply_fit",
    "exact_idata",
    "exact_row",
    "exact_seed",
    "freq_method",
    "plan_priors",
    "prepare",
    "replication",
    "sensitivity",
    "with_provenance",
]


@dataclass(frozen=True)
class Priors:
    """The plan's priors as prior objects.

    Attributes
    ----------
    tau, mu, tau_class : TauPrior, MuPrior, TauPrior
        Prior of the between-trial SD, of the pooled effect and of the between-class SD.
    """

    tau: Any
    mu: Any
    tau_class: Any


def plan_priors(plan: Plan) -> Priors:
    """The prior objects of ``plan`` (parsed once, when the plan was loaded)."""
    return Priors(tau=plan.priors.tau, mu=plan.priors.mu, tau_class=plan.priors.tau_class)


def freq_method(plan: Plan, measure: str) -> str:
    """The frequentist method used for ``measure`` (hazard ratios: FE instead of MH/PETO)."""
    method = plan.frequentist.method
    if measure == "HR" and method in ("MH", "PETO"):
        return "FE"  # generic inverse variance, as RevMan 5
    return method


def exact_seed(plan: Plan, index: int) -> int:
    """Seed of the exact-posterior draws of the ``index``-th analysis."""
    return int(plan.mcmc.seed) + 100_000 + index


# --------------------------------------------------------------------------------------------
# data, frequentist, exact
# --------------------------------------------------------------------------------------------


def prepare(result: AnalysisResult, plan: Plan, priors: Priors) -> AnalysisResult:
    """Dataset, effect sizes, frequentist result and (exact engine) the exact posterior.

    Raises
    ------
    bayesmtor.errors.EstimationError, bayesmtor.errors.InputError
        The data cannot be pooled; the caller records the analysis as failed.
    """
    result = _data(result, plan)
    if result.status != "ok":
        return result
    result = _frequentist(result, plan)
    if result.engine == "exact" and result.spec.likelihood == "normal-normal":
        result = _exact(result, plan, priors)
    return result


def _data(result: AnalysisResult, plan: Plan) -> AnalysisResult:
    """Effect sizes of every comparison of the analysis, and what was left out."""
    from bayesmtor.datasets import comparative_dataset
    from bayesmtor.effects import escalc

    task = result.task
    excluded, es_tables = [], []
    for comp in task.comparisons:
        ds = comparative_dataset(task.outcome, comp, plan.unit, plan.bolero2)
        excl = ds.excluded.copy()
        excl.insert(0, "comparison", comp)
        excluded.append(excl)
        if ds.k == 0:
            continue
        es = escalc(ds.data, result.measure)
        table = es.table.copy()
        table["comparison"] = comp
        for study, reason in es.dropped:
            excluded.append(
                pd.DataFrame(
                    {
                        "comparison": [comp],
                        "study": [study],
                        "report_id": [pd.NA],
                        "reason": [reason],
                    }
                )
            )
        es_tables.append(table)
    result = replace(result, excluded=pd.concat(excluded, ignore_index=True) if excluded else None)
    if not es_tables:
        return replace(
            result, status="skipped", reason=f"no usable trial for '{task.outcome}' (k = 0)"
        )
    all_rows = pd.concat(es_tables, ignore_index=True)
    inc = all_rows.loc[all_rows["included"].astype(bool)].reset_index(drop=True)
    if task.spec.likelihood == "multilevel" and inc["study"].duplicated().any():
        inc["study"] = inc["study"] + " [" + inc["comparison"] + "]"
    result = replace(result, dataset_rows=all_rows, es_table=inc, k=len(inc))
    if result.k == 0:
        return replace(
            result,
            status="skipped",
            reason="no trial left after computing effect sizes (k = 0): "
            + "; ".join(
                f"{s}: {r}"
                for s, r in zip(all_rows["study"], all_rows["exclusion_reason"], strict=True)
            ),
        )
    return result


def _frequentist(result: AnalysisResult, plan: Plan) -> AnalysisResult:
    """The frequentist pooled result with the plan's method (warnings kept as notes)."""
    from bayesmtor import frequentist

    all_rows, inc = result.dataset_rows, result.es_table
    method = freq_method(plan, result.measure)
    notes = list(result.notes)
    freq = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if method in ("MH", "PETO"):
                counts = [all_rows[col].to_numpy(float) for col in RAW_COUNT_COLUMNS]
                studies = all_rows["study"].astype(str).tolist()
                if method == "MH":
                    freq = frequentist.rma_mh(
                        *counts, measure=result.measure, ci_prob=plan.ci_prob, studies=studies
                    )
                else:
                    freq = frequentist.rma_peto(*counts, ci_prob=plan.ci_prob, studies=studies)
            else:
                hksj = plan.frequentist.hksj and method not in ("FE",) and result.k >= 2
                freq = frequentist.rma(
                    inc["yi"].to_numpy(float),
                    vi=inc["vi"].to_numpy(float),
                    method=method,
                    test="knha" if hksj else "z",
                    ci_prob=plan.ci_prob,
                    measure=result.measure,
                    studies=inc["study"].astype(str).tolist(),
                )
        except BayesMTORError as exc:
            notes.append(f"frequentist {method} not estimable: {exc}")
    notes.extend(f"frequentist {method}: {w.message}" for w in caught)
    return replace(result, freq=freq, freq_method=method, notes=tuple(notes))


def _exact(result: AnalysisResult, plan: Plan, priors: Priors) -> AnalysisResult:
    """The exact posterior of the normal-normal model, its pooled row and shrunken trials."""
    from bayesmtor.bayes.exact import exact_posterior

    inc = result.es_table
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        post = exact_posterior(
            inc["yi"].to_numpy(float),
            inc["sei"].to_numpy(float),
            tau_prior=priors.tau,
            mu_prior=priors.mu,
            labels=inc["study"].astype(str).tolist(),
        )
    th = post.theta_summary(plan.ci_prob)
    return replace(
        result,
        exact=post,
        bayes_row=exact_row(post, plan.ci_prob),
        shrunken=th[["study", "mean", "median", "q_low", "q_high"]].copy(),
        evidence=exact_evidence(post, plan.ci_prob),
        notes=result.notes + tuple(f"exact posterior: {w.message}" for w in caught),
    )


def exact_evidence(post: Any, ci_prob: float) -> dict[str, float]:
    """Bayes factors of an exact posterior and, when both priors are proper, its model
    averaging over FE-null, FE-effect, RE-null and RE-effect (NaN columns otherwise)."""
    from bayesmtor.bayes.model_averaging import BMA_COLUMNS, bma_batch, bma_columns

    batch = post._batch
    out = {k: float(v[0]) for k, v in batch.bayes_factors().items()}
    if batch.priors_proper:
        out.update(
            {k: float(v[0]) for k, v in bma_columns(bma_batch(batch, None, ci_prob)).items()}
        )
    else:
        out.update(dict.fromkeys(BMA_COLUMNS, float("nan")))
    return out


def exact_row(post: Any, ci_prob: float) -> dict[str, Any]:
    """Pooled Bayesian summary of an exact posterior (the ``pooled_bayes`` columns)."""
    lo, hi = (1 - ci_prob) / 2, (1 + ci_prob) / 2
    mu_q = np.asarray(post.mu_quantile([0.5, lo, hi]), dtype=float)
    tau_q = np.asarray(post.tau_quantile([0.5, lo, hi]), dtype=float)
    pred = np.asarray(post.theta_new_quantile([lo, hi]), dtype=float)
    return {
        "mu_mean": post.mu_mean(),
        "mu_sd": post.mu_sd(),
        "mu_median": mu_q[0],
        "mu_low": mu_q[1],
        "mu_high": mu_q[2],
        "tau_median": tau_q[0],
        "tau_low": tau_q[1],
        "tau_high": tau_q[2],
        "pred_low": pred[0],
        "pred_high": pred[1],
        "p_mu_below_0": post.p_mu_below(0.0),
        "quad_error": post.error_estimate,
    }


def exact_idata(result: AnalysisResult, plan: Plan, seed: int) -> Any:
    """InferenceData of independent draws from the exact posterior (engine="exact")."""
    idata = result.exact.to_inference_data(
        draws=config.get("exact_draws"), chains=config.get("exact_chains"), seed=seed
    )
    idata.posterior.attrs.update(
        {"analysis_id": result.id, "measure": result.measure, "bayesmtor_version": __version__}
    )
    return idata


# --------------------------------------------------------------------------------------------
# MCMC: one worker process, so that sampling overlaps with the figures of the main process
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# MCMC results: a check of the exact posterior, or the fit itself
# --------------------------------------------------------------------------------------------


def check_table(result: AnalysisResult, idata: Any, plan: Plan) -> pd.DataFrame:
    """The check's draws against the exact posterior: one row per parameter and statistic,
    with the difference in MCSE units and whether it is within config ``agreement_mcse``."""
    from bayesmtor._arviz import load as _load_arviz

    az = _load_arviz()

    ci = plan.ci_prob
    lo, hi = (1 - ci) / 2, (1 + ci) / 2
    ex = result.exact
    rows = []
    for name, exact_mean, qfun in (
        ("mu", ex.mu_mean(), ex.mu_quantile),
        ("tau", ex.tau_mean(), ex.tau_quantile),
        ("theta_new", ex.mu_mean(), ex.theta_new_quantile),
    ):
        x = np.asarray(idata.posterior[name].values, dtype=float)  # (chain, draw)
        flat = x.ravel()
        stats = [
            (
                "mean",
                float(exact_mean),
                float(flat.mean()),
                float(np.ravel(az.mcse(x, method="mean"))[0]),
            )
        ]
        for label, q in (("median", 0.5), (f"q{lo:g}", lo), (f"q{hi:g}", hi)):
            se = float(np.ravel(az.mcse(x, method="quantile", prob=q))[0])
            stats.append((label, float(qfun(q)), float(np.quantile(flat, q)), se))
        for stat, e, mc, se in stats:
            z = (mc - e) / se if se > 0 else float("nan")
            rows.append(
                {
                    "analysis": result.id,
                    "parameter": name,
                    "statistic": stat,
                    "exact": e,
                    "mcmc": mc,
                    "mcse": se,
                    "difference": mc - e,
                    "difference_in_mcse": z,
                    "agree": bool(abs(z) <= config.get("agreement_mcse"))
                    if math.isfinite(z)
                    else False,
                }
            )
    return pd.DataFrame(rows)


def apply_check(
    result: AnalysisResult, idata: Any, diag: dict[str, Any], plan: Plan
) -> AnalysisResult:
    """Compare the check's draws with the exact posterior and set the status accordingly."""
    table = check_table(result, idata, plan)
    result = replace(result, check_idata=idata, check_diag=diag, check_table=table)
    if not diag["rhat_max"] <= float(config.get("rhat_max")):
        return replace(
            result,
            status="not converged",
            reason="MCMC check did not converge, so it cannot confirm the exact posterior: "
            f"{diag['reason']}",
        )
    if not table["agree"].all():
        bad = table.loc[~table["agree"]]
        return replace(
            result,
            status="check disagrees",
            reason="MCMC and exact posterior differ by more than {:g} MCSE: {}".format(
                config.get("agreement_mcse"),
                ", ".join(
                    f"{p} {s} ({z:+.1f})"
                    for p, s, z in zip(
                        bad["parameter"], bad["statistic"], bad["difference_in_mcse"], strict=True
                    )
                ),
            ),
        )
    zmax = float(np.nanmax(np.abs(table["difference_in_mcse"])))
    note = f"MCMC check agrees with the exact posterior (largest difference {zmax:.1f} MCSE)"
    if not diag["converged"]:
        note += (
            f"; the check run itself is flagged ({diag['reason']}), which does not affect "
            "the exact result"
        )
    return replace(result, notes=(*result.notes, note))


def apply_fit(result: AnalysisResult, res: Any, plan: Plan) -> AnalysisResult:
    """Take over an MCMC result (binomial-normal, multilevel or MCMC normal-normal)."""
    from bayesmtor.bayes.mcse import draw_summary, posterior_draws

    post = res.idata.posterior
    # every number from the draws, each with its Monte Carlo standard error (<key>_mcse)
    drawn = draw_summary(posterior_draws(res.idata), plan.ci_prob, "central")
    bayes_row = {k: v for k, v in drawn.items() if not k.startswith("I2")}
    bayes_row["quad_error"] = np.nan
    lo, hi = (1 - plan.ci_prob) / 2, (1 + plan.ci_prob) / 2
    th = post["theta"]
    shrunken = pd.DataFrame(
        {
            "study": [str(t) for t in th["trial"].values],
            "mean": th.mean(("chain", "draw")).values,
            "median": th.median(("chain", "draw")).values,
            "q_low": th.quantile(lo, ("chain", "draw")).values,
            "q_high": th.quantile(hi, ("chain", "draw")).values,
        }
    )
    d = res.diagnostics
    res.idata.posterior.attrs.update(
        {"engine": "mcmc", "analysis_id": result.id, "model": res.model}
    )
    result = replace(
        result,
        bayes=res,
        bayes_row=bayes_row,
        shrunken=shrunken,
        idata=res.idata,
        bayes_diag={
            "divergences": d.get("divergences"),
            "rhat_max": d.get("rhat_max"),
            "ess_bulk_min": d.get("ess_bulk_min"),
            "ess_tail_min": d.get("ess_tail_min"),
            "converged": res.converged,
            "reason": res.reason,
            "attempts": len(d.get("attempts", ())),
            "draws": d.get("draws"),
            "tune": d.get("tune"),
            "chains": d.get("chains"),
            "seed": d.get("random_seed"),
        },
    )
    if not res.converged:
        return replace(
            result,
            status="not converged",
            reason=f"MCMC did not pass the convergence gate: {res.reason}",
        )
    return result


def with_provenance(result: AnalysisResult, plan: Plan) -> AnalysisResult:
    """Stamp every InferenceData of ``result`` with the provenance that run.json carries, so
    each ``.nc`` file names its version, plan, analysis and priors whatever produced it."""
    provenance = {
        "bayesmtor_version": __version__,
        "plan": plan.name,
        "analysis_id": result.id,
        "tau_prior": plan.priors.tau.to_string(),
        "mu_prior": plan.priors.mu.to_string(),
    }
    for idata in (result.idata, result.check_idata):
        if idata is not None:
            idata.posterior.attrs.update(provenance)
    return result


# --------------------------------------------------------------------------------------------
# sensitivity and replication
# --------------------------------------------------------------------------------------------


def add_ratio_columns(table: pd.DataFrame, cols: Sequence[str]) -> None:
    """Add ``<col>_ratio`` (exp of the column for ratio measures, NaN otherwise), in place."""
    if "measure" not in table.columns:
        return
    ratio = table["measure"].isin(RATIO_MEASURES).to_numpy()
    for c in cols:
        if c in table.columns:
            vals = table[c].to_numpy(dtype=float)
            table[f"{c}_ratio"] = np.where(ratio, np.exp(vals), np.nan)


def sensitivity(
    plan: Plan, priors: Priors, results: Sequence[AnalysisResult]
) -> pd.DataFrame | None:
    """Every normal-normal analysis refitted exactly under each tau prior of ``[sensitivity]``."""
    from bayesmtor.bayes.exact import exact_batch

    use = [
        r
        for r in results
        if r.es_table is not None and r.k > 0 and r.spec.likelihood == "normal-normal"
    ]
    if not use or plan.sensitivity is None:
        return None
    kmax = max(r.k for r in use)
    y = np.zeros((len(use), kmax))
    s = np.ones((len(use), kmax))
    mask = np.zeros((len(use), kmax), dtype=bool)
    for i, r in enumerate(use):
        y[i, : r.k] = r.es_table["yi"].to_numpy(float)
        s[i, : r.k] = r.es_table["sei"].to_numpy(float)
        mask[i, : r.k] = True
    out = []
    for prior in plan.sensitivity.tau_priors:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tab = exact_batch(y, s, mask, tau_prior=prior, mu_prior=priors.mu, ci_prob=plan.ci_prob)
        tab.insert(0, "prior", prior.to_string())
        tab.insert(0, "measure", [r.measure for r in use])
        tab.insert(0, "analysis", [r.id for r in use])
        tab["reference_prior"] = prior == plan.priors.tau
        out.append(tab)
    table = pd.concat(out, ignore_index=True)
    add_ratio_columns(table, ["mu_median", "mu_low", "mu_high", "pred_low", "pred_high"])
    return table


def replication(plan: Plan) -> Replication:
    """The replication of the 2014 paper, or why it is missing."""
    try:
        from bayesmtor import replication as rep  # type: ignore[attr-defined]
    except ImportError:
        return Replication(False, "The replication module is not part of this installation.")
    try:
        result = rep.replicate(ci_prob=plan.ci_prob)
        text = rep.format_replication(result)
        table = result.table
        units = rep.unit_comparison(ci_prob=plan.ci_prob, tau_prior=plan.priors.tau)
    except BayesMTORError as exc:
        return Replication(False, f"The replication of the 2014 paper failed: {exc}")
    return Replication(True, text, table, units)
