"""Meta-regressions of a run in the report: tables, bubble plots and a report section.

The bubble plot shows each study's effect against the moderator (ratio measures on a log
axis), point area proportional to its weight in the random-effects meta-regression, the
exact Bayesian fitted line (posterior median of ``x' beta``) with its central credible band,
and the frequentist fitted line (dashed). A categorical moderator puts its levels side by side
with the fitted value and interval of each level. With several moderators the first is on the
axis; the others are held at their mean (numbers) or reference level (categories).
Nothing here fits a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["bubble_plot", "regression_drawings", "regression_sections", "regression_tables"]

POWER_WARNING = (
    "Caution: these meta-regressions rest on 2 to 6 trials. With so few trials a moderator "
    "analysis has almost no power to detect a real difference (a wide interval is expected "
    "even for a large one), the moderator varies between trials rather than by randomization, "
    "so an association is observational and easily confounded by everything else in which "
    "the trials differ (population, partner drug, setting, quality), and each trial's "
    "moderator is one value for the whole trial. Read them as hypothesis-generating, never as "
    "evidence that the effect depends on the moderator."
)


def regression_tables(result: Any) -> dict[str, pd.DataFrame]:
    """``meta_regression`` (one row per coefficient and engine) and ``meta_regression_studies``
    (the studies of each meta-regression with their moderators and weights)."""
    regs = [r for r in getattr(result, "regressions", ()) if r.fitted]
    if not regs:
        return {}
    rows, studies = [], []
    for r in regs:
        fr, ex = r.freq, r.exact
        for c in fr.coefficients.to_dict("records"):
            rows.append({
                "analysis": r.id, "engine": "frequentist", "method": fr.method, "k": fr.k,
                "term": c["term"], "estimate": c["estimate"], "se_or_sd": c["se"],
                "low": c["ci_low"], "high": c["ci_high"], "pval": c["pval"],
                "tau2": fr.tau2, "tau_median": np.nan, "QM": fr.QM, "QM_pval": fr.QM_pval,
                "QE": fr.QE, "QE_pval": fr.QE_pval, "R2": fr.R2,
            })  # fmt: skip
        tau_median = ex.tau_median
        for c in ex.coefficients.to_dict("records"):
            rows.append({
                "analysis": r.id, "engine": "exact", "method": "bmr", "k": ex.k,
                "term": c["term"], "estimate": c["median"], "se_or_sd": c["sd"],
                "low": c["low"], "high": c["high"], "pval": np.nan, "tau2": np.nan,
                "tau_median": tau_median, "QM": np.nan, "QM_pval": np.nan, "QE": np.nan,
                "QE_pval": np.nan, "R2": np.nan,
            })  # fmt: skip
        tab = r.table.copy()
        tab.insert(0, "analysis", r.id)
        tab["weight_percent"] = fr.weights
        studies.append(tab)
    return {
        "meta_regression": pd.DataFrame(rows),
        "meta_regression_studies": pd.concat(studies, ignore_index=True),
    }


def _fitted(reg: Any, rows: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    return reg.exact.predict(rows), reg.freq.predict(rows)


def bubble_plot(reg: Any, *, ax: Any = None) -> Any:
    """Bubble plot of one meta-regression (see the module docstring); returns the Axes."""
    from bayesmtor.design import prediction_rows
    from bayesmtor.reporting.figures import _measure, _new_axes, _plain

    design = reg.exact.design
    mod = design.moderators[0]
    measure = _measure(reg.freq.measure, "bubble_plot")
    if ax is None:
        ax = _new_axes(7.0, 4.6)
    y = reg.table["yi"].to_numpy(float)
    w = reg.freq.weights
    size = 40.0 + 900.0 * w / w.max()
    disp = measure.to_display
    if mod.kind == "numeric":
        x = reg.table[mod.column].astype(float).to_numpy()
        span = x.max() - x.min()
        grid = np.linspace(x.min() - 0.05 * span, x.max() + 0.05 * span, 101)
        bayes, freq = _fitted(reg, prediction_rows(design, mod.column, grid))
        ax.fill_between(grid, disp(bayes["low"]), disp(bayes["high"]), color="#1f77b4",
                        alpha=0.18, linewidth=0, label="Bayesian credible band")  # fmt: skip
        ax.plot(grid, disp(bayes["median"]), color="#1f77b4", label="Bayesian fitted (median)")
        ax.plot(grid, disp(freq["pred"]), color="#d62728", linestyle="--",
                label=f"frequentist fitted ({reg.freq.method})")  # fmt: skip
        ax.set_xlabel(_plain(mod.column))
    else:
        levels = list(mod.levels)
        pos = {lev: i for i, lev in enumerate(levels)}
        x = np.array([pos[str(v)] for v in reg.table[mod.column]], dtype=float)
        rng = np.random.default_rng(0)
        x = x + rng.uniform(-0.08, 0.08, x.size)  # a little jitter, fixed
        bayes, freq = _fitted(reg, prediction_rows(design, mod.column, levels))
        at = np.arange(len(levels), dtype=float)
        ax.errorbar(at + 0.22, disp(bayes["median"]),
                    yerr=[disp(bayes["median"]) - disp(bayes["low"]),
                          disp(bayes["high"]) - disp(bayes["median"])],
                    fmt="D", color="#1f77b4", capsize=4, label="Bayesian fitted (median, interval)")  # fmt: skip
        ax.errorbar(at + 0.34, disp(freq["pred"]),
                    yerr=[disp(freq["pred"]) - disp(freq["ci_low"]),
                          disp(freq["ci_high"]) - disp(freq["pred"])],
                    fmt="s", color="#d62728", capsize=4, mfc="white",
                    label=f"frequentist fitted ({reg.freq.method})")  # fmt: skip
        ax.set_xticks(at, [_plain(lev) for lev in levels])
        ax.set_xlim(-0.5, len(levels) - 0.3)
        ax.set_xlabel(_plain(mod.column))
    ax.scatter(x, disp(y), s=size, color="#444444", alpha=0.55, edgecolor="black",
               label="trial (area: weight)", zorder=3)  # fmt: skip
    for xi, yi, label in zip(x, disp(y), reg.table["study"], strict=True):
        ax.annotate(_plain(label), (xi, yi), xytext=(6, 4), textcoords="offset points",
                    fontsize=7, color="#333333")  # fmt: skip
    if measure.is_ratio:
        from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

        from bayesmtor.reporting.figures import _format_tick, _ratio_ticks

        ax.set_yscale("log")
        lo, hi = ax.get_ylim()
        ticks = _ratio_ticks(min(lo, 0.9), max(hi, 1.1))
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_major_formatter(FixedFormatter([_format_tick(t) for t in ticks]))
        ax.yaxis.set_minor_locator(NullLocator())
    ax.axhline(measure.null, color="#888888", linewidth=0.9)
    ax.set_ylabel(f"{measure.name} ({measure.code})" + (", log scale" if measure.is_ratio else ""))
    ax.set_title(_plain(f"{reg.id} (k = {reg.k}): few trials, almost no power"), fontsize=10)
    legend = ax.legend(fontsize=7, loc="best")
    for handle in legend.legend_handles:  # the trials' marker at a fixed size
        if hasattr(handle, "set_sizes"):
            handle.set_sizes([40.0])
    return ax


def regression_drawings(reg: Any) -> list[tuple[str, str, Any]]:
    """The bubble plot of one meta-regression as ``(caption, stem, figure)``."""
    ax = bubble_plot(reg)
    caption = (
        f"Bubble plot {reg.id}: effect against {reg.exact.design.moderators[0].column}, "
        f"{reg.k} trials (area: weight); fitted lines with {100 * reg.exact.ci_prob:g}% bands. "
        "Almost no power."
    )
    return [(caption, f"bubble_{reg.id}", ax.figure)]


def regression_sections(
    result: Any, tables: Mapping[str, pd.DataFrame], figures: Mapping[str, Sequence[Any]]
) -> list[Any]:
    """One report section for all meta-regressions of the run (none without any)."""
    from bayesmtor.reporting.html import ReportSection

    regs = list(getattr(result, "regressions", ()))
    if not regs:
        return []
    lines = [POWER_WARNING, ""]
    for r in regs:
        if not r.fitted:
            lines.append(f"- {r.id}: {r.status} ({r.reason})")
            continue
        fr = r.freq
        lines.append(
            f"- {r.id}: {r.spec.outcome} across {', '.join(r.comparisons)} on "
            f"{', '.join(r.spec.mods)}; k = {r.k}; frequentist {fr.method} QM = {fr.QM:.3g} "
            f"(p = {fr.QM_pval:.3g}), residual tau^2 = {fr.tau2:.3g}; exact Bayesian "
            f"(bayesmeta bmr, flat coefficients) tau median {r.exact.tau_median:.3g}"
        )
    tabs: list[tuple[str, pd.DataFrame]] = []
    if "meta_regression" in tables:
        tabs.append(("Meta-regression coefficients (log scale), both engines",
                     tables["meta_regression"]))  # fmt: skip
        tabs.append(("Trials of each meta-regression, moderators and weights",
                     tables["meta_regression_studies"]))  # fmt: skip
    figs = tuple(f for r in regs for f in figures.get(r.id, ()))
    return [
        ReportSection(
            id="meta-regression",
            title="Meta-regression (moderators): exploratory, almost no power with 2-6 trials",
            text="\n".join(lines),
            tables=tuple(tabs),
            figures=figs,
            collapsible=True,
        )
    ]
