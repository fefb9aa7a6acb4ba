"""The paper's unit (reports) beside each trial counted once, for every efficacy analysis."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from bayesmtor import config
from bayesmtor.datasets import BOLERO2, comparative_dataset
from bayesmtor.errors import InputError, NotEstimableWarning

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
