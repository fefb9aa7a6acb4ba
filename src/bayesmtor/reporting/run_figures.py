"""The figures of a run, drawn from its frozen results into ``figures/`` (PNG and SVG).

Forest plot of every fitted analysis (observed, shrunken, pooled Bayesian, pooled frequentist
and predictive rows), tau prior vs posterior (at least :data:`TAU_FIGURE_MIN_K` trials), funnel
plot (at least :data:`FUNNEL_MIN_K` trials) and prior-sensitivity plots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmtor.pipeline.results import AnalysisResult
from bayesmtor.pipeline.stages import Priors
from bayesmtor.plans import Plan

__all__ = ["FUNNEL_MIN_K", "TAU_FIGURE_MIN_K", "analysis_figures", "sensitivity_figures"]

#: Smallest number of trials for which the tau prior-vs-posterior plot is drawn: with one trial
#: the data say nothing about tau (the posterior is the prior), so the plot would be empty talk.
TAU_FIGURE_MIN_K = 2

#: Smallest number of trials for which a funnel plot is drawn.
FUNNEL_MIN_K = 3


def analysis_figures(
    figdir: Path, plan: Plan, priors: Priors, f: AnalysisResult, rows: pd.DataFrame
) -> list[tuple[str, Path]]:
    """Forest plot (of the forest ``rows``), tau prior vs posterior and funnel plot of one
    analysis; returns ``[(caption, png path)]``."""
    from bayesmtor.reporting import figures as plots

    figs: list[tuple[str, Path]] = []
    trials = list(dict.fromkeys(r for r, t in zip(rows["label"], rows["trial"], strict=True) if t))
    ax = plots.forest_plot(
        rows[["label", "kind", "estimate", "low", "high", "weight"]],
        measure=f.measure,
        title=f"{f.task.outcome} | {f.task.comparison} | {f.measure}",
        ci_prob=plan.ci_prob,
    )
    paths = plots.save_figure(ax.figure, figdir / f"forest_{f.id}")
    figs.append(
        (
            f"Forest plot {f.id}: {f.task.outcome}, {f.task.comparison}, {f.measure}; "
            f"trials: {'; '.join(trials)}",
            paths[0],
        )
    )
    if f.k >= TAU_FIGURE_MIN_K:
        ax = _tau_figure(f, priors, plots)
        if ax is not None:
            paths = plots.save_figure(ax.figure, figdir / f"tau_{f.id}")
            figs.append(
                (f"Heterogeneity tau {f.id}: prior ({plan.priors.tau}) and posterior", paths[0])
            )
    if f.k >= FUNNEL_MIN_K and f.es_table is not None:
        centre = f.freq.estimate if f.freq is not None else f.bayes_row["mu_median"]
        ax = plots.funnel_plot(
            f.es_table["yi"].to_numpy(float),
            f.es_table["sei"].to_numpy(float),
            estimate=float(centre),
            measure=f.measure,
            labels=f.es_table["study"].astype(str).tolist(),
            ci_prob=plan.ci_prob,
        )
        paths = plots.save_figure(ax.figure, figdir / f"funnel_{f.id}")
        figs.append((f"Funnel plot {f.id} ({f.k} trials)", paths[0]))
    return figs


def sensitivity_figures(figdir: Path, sensitivity: pd.DataFrame) -> list[tuple[str, Path]]:
    """One prior-sensitivity plot per measure (at most 6 analyses per plot)."""
    from bayesmtor.reporting import figures as plots

    figs = []
    for measure, grp in sensitivity.groupby("measure", sort=False):
        ids = list(dict.fromkeys(grp["analysis"]))
        for start in range(0, len(ids), 6):
            chunk = ids[start : start + 6]
            sub = grp.loc[grp["analysis"].isin(chunk)]
            ax = plots.prior_sensitivity_plot(
                sub[["prior", "mu_median", "mu_low", "mu_high", "tau_median", "analysis"]],
                measure=str(measure),
            )
            stem = f"prior_sensitivity_{measure}" + (f"_{start // 6 + 1}" if len(ids) > 6 else "")
            paths = plots.save_figure(ax.figure, figdir / stem)
            figs.append((f"Prior sensitivity ({measure}): {', '.join(chunk)}", paths[0]))
    return figs


def _tau_figure(f: AnalysisResult, priors: Priors, plots: Any) -> Any:
    draws = None
    if f.exact is not None:
        post = f.exact
        top = max(float(priors.tau.ppf(0.99)), float(post.tau_quantile(0.995)))
        grid = np.linspace(0.0, top, 300)
        post_pdf = np.asarray(post.tau_pdf(grid), dtype=float)
        if f.check_idata is not None:
            draws = f.check_idata.posterior["tau"].values.ravel()
    elif f.bayes is not None:
        from scipy import stats

        draws = f.bayes.idata.posterior["tau"].values.ravel()
        top = max(float(priors.tau.ppf(0.99)), float(np.quantile(draws, 0.995)))
        grid = np.linspace(0.0, top, 300)
        # reflected kernel density estimate (tau >= 0)
        kde = stats.gaussian_kde(np.concatenate([draws, -draws]))
        post_pdf = 2.0 * kde(grid)
    else:
        return None
    prior_pdf = np.asarray(priors.tau.pdf(grid), dtype=float)
    prior_pdf = np.where(np.isfinite(prior_pdf), prior_pdf, 0.0)
    post_pdf = np.where(np.isfinite(post_pdf), post_pdf, 0.0)
    ax = plots.tau_prior_posterior_plot(
        grid,
        prior_pdf,
        post_pdf,
        prior_label=str(priors.tau.label or priors.tau.family),
        posterior_draws=draws,
    )
    ax.set_title(f"τ: {f.task.outcome} | {f.task.comparison} | {f.measure}")
    return ax
