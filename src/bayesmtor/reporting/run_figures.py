"""The figures of a run, drawn from its frozen results into ``figures/`` (PNG and SVG).

Forest plot of every fitted analysis (observed, shrunken, pooled Bayesian, pooled frequentist
and predictive rows), tau prior vs posterior (at least ``tau_figure_min_k`` trials), funnel
plot (at least ``funnel_min_k`` trials) and prior-sensitivity plots (:mod:`bayesmtor.config`).
The figures are drawn by ``figure_processes`` forked processes side by side (:class:`FigureDrawing`,
started before the writer turns to the tables and netCDF files, so both go on at once); each
returns the PNG and SVG bytes and this process writes them, so every write goes through the
output folder.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmtor import config
from bayesmtor._processes import child_setup
from bayesmtor.pipeline.results import AnalysisResult, RunResult
from bayesmtor.pipeline.stages import Priors
from bayesmtor.plans import Plan
from bayesmtor.reporting.atomic import atomic_write_bytes

__all__ = ["FigureDrawing", "run_figures"]

#: One figure to write: ``(caption, file stem, figure)``.
Drawing = tuple[str, str, Any]


def _analysis_drawings(
    plan: Plan, priors: Priors, f: AnalysisResult, rows: pd.DataFrame
) -> list[Drawing]:
    """Forest plot (of the forest ``rows``), tau prior vs posterior and funnel plot of one
    analysis."""
    from bayesmtor.reporting import figures as plots
    from bayesmtor.reporting.forest import favours_labels, forest_plot
    from bayesmtor.reporting.result_plots import bayesian_line, heterogeneity_line
    from bayesmtor.reporting.result_plots import overall_effect_line as overall

    trials = list(dict.fromkeys(r for r, t in zip(rows["label"], rows["trial"], strict=True) if t))
    benefit = _benefit(f.task.outcome)
    treatment = _treatment(f.task.comparison)
    notes: list[str] = []
    if f.k >= 2:
        b = f.bayes_row
        tau = (b.get("tau_median"), b.get("tau_low"), b.get("tau_high"))
        if all(v is not None and np.isfinite(float(v)) for v in tau):
            notes.append(
                bayesian_line(
                    str(plan.priors.tau),
                    tau,  # type: ignore[arg-type]
                    float(b.get("p_mu_below_0", np.nan)),
                    f.measure,
                    benefit,
                )
            )
        if f.freq is not None:
            notes += [n for n in (heterogeneity_line(f.freq), overall(f.freq)) if n]
    else:
        notes.append("One trial: no pooled estimate")
    columns = ["label", "kind", "estimate", "low", "high", "weight"]
    columns += [c for c in ("events_trt", "n_trt", "events_ctl", "n_ctl") if c in rows]
    drawn = rows if f.k >= 2 else rows.loc[rows["kind"] == "observed"]  # one trial: a trial
    from bayesmtor.outcomes import comparison_label

    ax = forest_plot(
        drawn[columns],
        measure=f.measure,
        title=f"{_outcome_name(f.task.outcome)}: {comparison_label(f.task.comparison)} "
        f"({f.measure})",
        ci_prob=plan.ci_prob,
        footnotes=notes,
        favours=favours_labels(treatment, "control", benefit) if benefit else None,
        arms=(treatment[:1].upper() + treatment[1:], "Control"),
        weight_label=f.freq.method if f.freq is not None else None,
    )
    caption = (
        f"Forest plot {f.id}: {f.task.outcome}, {f.task.comparison}, {f.measure}; "
        f"trials: {'; '.join(trials)}"
    )
    drawings: list[Drawing] = [(caption, f"forest_{f.id}", ax.figure)]
    if f.k >= int(config.get("tau_figure_min_k")):
        ax = _tau_figure(f, priors, plots)
        if ax is not None:
            caption = f"Heterogeneity tau {f.id}: prior ({plan.priors.tau}) and posterior"
            drawings.append((caption, f"tau_{f.id}", ax.figure))
    if f.k >= int(config.get("funnel_min_k")) and f.es_table is not None:
        centre = f.freq.estimate if f.freq is not None else f.bayes_row["mu_median"]
        ax = plots.funnel_plot(
            f.es_table["yi"].to_numpy(float),
            f.es_table["sei"].to_numpy(float),
            estimate=float(centre),
            measure=f.measure,
            labels=f.es_table["study"].astype(str).tolist(),
            ci_prob=plan.ci_prob,
        )
        drawings.append((f"Funnel plot {f.id} ({f.k} trials)", f"funnel_{f.id}", ax.figure))
    return drawings


def _outcome_name(outcome: str) -> str:
    """The readable name of an outcome code (``data/outcomes.csv``)."""
    from bayesmtor.outcomes import outcome_info

    return outcome_info(outcome).label


def _benefit(outcome: str) -> str | None:
    """Which side of the null favours the treatment, from ``data/outcomes.csv`` (``None``
    when the outcome is not listed: the plot then names no side)."""
    from bayesmtor.outcomes import outcome_info

    return outcome_info(outcome).favourable


def _treatment(comparison: str) -> str:
    """The mTOR inhibitor of a comparison id (``"everolimus_endocrine"`` -> ``"everolimus"``)."""
    if not comparison or comparison == "all":  # the multilevel model pools every comparison
        return "mTOR inhibitor"
    return comparison.split("_", 1)[0]


def _sensitivity_drawings(sensitivity: pd.DataFrame) -> list[Drawing]:
    """One prior-sensitivity plot per measure (at most 6 analyses per plot)."""
    from bayesmtor.reporting import figures as plots

    drawings: list[Drawing] = []
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
            caption = f"Prior sensitivity ({measure}): {', '.join(chunk)}"
            drawings.append((caption, stem, ax.figure))
    return drawings


#: The drawing jobs of the run being drawn, read by the forked processes (set before the fork).
_JOBS: list[Callable[[], list[Drawing]]] = []


def _quiet_worker(parent: int) -> None:
    """Set up a drawing process: signals, output and the lifetime of its parent.

    The run that forked it handles Ctrl-C and SIGTERM and ends the pool, which then stops its
    processes with the default SIGTERM action. A drawing process must not outlive its parent:
    after a SIGKILL of the run, idle pool processes would otherwise wait for work forever (each
    holds the write end of the task queue, so none sees end-of-file) and keep the run's stdout
    and stderr open. On Linux the kernel sends SIGTERM when the parent dies; everywhere the
    standard streams are pointed at the null device, so nothing waiting on them is held up.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    child_setup(parent, "bayesmtor-figs")
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def _render(index: int) -> list[tuple[str, str, dict[str, bytes]]]:
    """Draw job ``index`` of :data:`_JOBS`: ``[(caption, stem, {"png": ..., "svg": ...})]``."""
    from bayesmtor.reporting.figures import figure_bytes

    return [(caption, stem, figure_bytes(fig)) for caption, stem, fig in _JOBS[index]()]


def run_figures(
    figdir: Path, result: RunResult, tables: Mapping[str, pd.DataFrame]
) -> dict[str, list[tuple[str, Path]]]:
    """Draw and write every figure of a run into ``figdir``.

    Returns
    -------
    dict
        ``{analysis id or "sensitivity": [(caption, png path)]}``, in the order of the run.
    """
    with FigureDrawing(result, tables) as drawing:
        return drawing.write(figdir)


class FigureDrawing:
    """The figures of a run, drawn by ``figure_processes`` forked processes from the moment
    this object is made, while the caller does other work (the run's tables and netCDF files);
    :meth:`write` waits for them and writes them. Leaving the ``with`` block ends the
    processes, finished or not (an error or an interruption of the caller)."""

    def __init__(self, result: RunResult, tables: Mapping[str, pd.DataFrame]) -> None:
        import multiprocessing as mp

        from bayesmtor.pipeline.stages import plan_priors
        from bayesmtor.reporting.regression import regression_drawings

        plan = result.plan
        priors = plan_priors(plan)
        self.keys: list[str] = []
        self.pool: Any = None
        self.pending: Any = None
        _JOBS.clear()
        for f in result.analyses:
            if f.fitted:
                self.keys.append(f.id)
                rows = tables[f"forest_{f.id}"]
                _JOBS.append(functools.partial(_analysis_drawings, plan, priors, f, rows))
        for r in result.regressions:
            if r.fitted:
                self.keys.append(r.id)
                _JOBS.append(functools.partial(regression_drawings, r))
        if result.sensitivity is not None:
            self.keys.append("sensitivity")
            _JOBS.append(functools.partial(_sensitivity_drawings, result.sensitivity))
        processes = min(int(config.get("figure_processes")), len(_JOBS))
        if processes > 1 and "fork" in mp.get_all_start_methods():
            try:
                self.pool = mp.get_context("fork").Pool(
                    processes, initializer=_quiet_worker, initargs=(os.getpid(),)
                )
                self.pending = self.pool.map_async(_render, range(len(_JOBS)), chunksize=1)
            except BaseException:
                self.close()
                raise

    def __enter__(self) -> FigureDrawing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, figdir: Path) -> dict[str, list[tuple[str, Path]]]:
        """Wait for the figures and write them into ``figdir`` (PNG and SVG);
        ``{analysis id or "sensitivity": [(caption, png path)]}``, in the order of the run."""
        if self.pending is not None:
            rendered = self.pending.get()
        else:
            rendered = [_render(i) for i in range(len(_JOBS))]
        self.close()
        figures: dict[str, list[tuple[str, Path]]] = {}
        for key, drawn in zip(self.keys, rendered, strict=True):
            figures[key] = []
            for caption, stem, data in drawn:
                paths = [atomic_write_bytes(figdir / f"{stem}.{fmt}", b) for fmt, b in data.items()]
                figures[key].append((caption, paths[0]))
        return figures

    def close(self) -> None:
        """End the drawing processes (finished or not) and forget the jobs."""
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None
        self.pending = None
        _JOBS.clear()


def _prior_top(tau_prior: Any) -> float:
    """The prior's 99% quantile (0 for an improper prior, which has none)."""
    return float(tau_prior.ppf(0.99)) if tau_prior.is_proper else 0.0


def _tau_figure(f: AnalysisResult, priors: Priors, plots: Any) -> Any:
    draws = None
    if f.exact is not None:
        post = f.exact
        top = max(_prior_top(priors.tau), float(post.tau_quantile(0.995)))
        grid = np.linspace(0.0, top, 300)
        post_pdf = np.asarray(post.tau_pdf(grid), dtype=float)
        if f.check_idata is not None:
            draws = f.check_idata.posterior["tau"].values.ravel()
    elif f.bayes is not None:
        from scipy import stats

        draws = f.bayes.idata.posterior["tau"].values.ravel()
        top = max(_prior_top(priors.tau), float(np.quantile(draws, 0.995)))
        grid = np.linspace(0.0, top, 300)
        # reflected kernel density estimate (tau >= 0)
        kde = stats.gaussian_kde(np.concatenate([draws, -draws]))
        post_pdf = 2.0 * kde(grid)
    else:
        return None
    label = str(priors.tau.label or priors.tau.family)
    post_pdf = np.where(np.isfinite(post_pdf), post_pdf, 0.0)
    if priors.tau.is_proper:
        prior_pdf = np.asarray(priors.tau.pdf(grid), dtype=float)
    else:  # no normalising constant: its shape, scaled to the posterior's peak
        dens = np.exp(priors.tau.log_density(grid, f.es_table["sei"].to_numpy(float)))
        prior_pdf = dens * (post_pdf.max() / max(float(np.max(dens)), 1e-300))
        label += ", improper: scaled to the posterior's peak"
    prior_pdf = np.where(np.isfinite(prior_pdf), prior_pdf, 0.0)
    ax = plots.tau_prior_posterior_plot(
        grid,
        prior_pdf,
        post_pdf,
        prior_label=label,
        posterior_draws=draws,
    )
    name = _outcome_name(f.task.outcome)
    ax.set_title(f"τ: {name}, {_treatment(f.task.comparison)} vs control ({f.measure})")
    return ax
