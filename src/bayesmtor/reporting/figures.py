"""Figures: funnel, tau prior/posterior and prior-sensitivity plots, and what every plot shares.

The forest plot is in :mod:`bayesmtor.reporting.forest`; it uses the measure scales, axis
styling and colours defined here.

Every plotting function takes ``ax=None`` and returns the :class:`matplotlib.axes.Axes` it
drew on (like lifelines). Without ``ax`` a new :class:`matplotlib.figure.Figure` is made with
the object-oriented API, so nothing here touches pyplot's global state, opens a window or needs
a display; call :func:`save_figure` to write it.

Effect sizes arrive on the analysis scale: the *log* scale for ratio measures (OR, RR, HR) and
the identity scale for the risk difference. Ratio measures are drawn on a logarithmic x-axis
whose ticks are labelled with ratio values, with a vertical line at the ratio 1; differences on
a linear axis with a line at 0.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesmtor import config
from bayesmtor.errors import InputError
from bayesmtor.reporting.atomic import atomic_write_bytes
from bayesmtor.vocabulary import z_quantile

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "FOREST_KINDS",
    "figure_bytes",
    "funnel_plot",
    "prior_sensitivity_plot",
    "save_figure",
    "tau_prior_posterior_plot",
]

#: Row kinds understood by :func:`forest_plot`, in legend order.
FOREST_KINDS = ("observed", "shrunken", "pooled_bayes", "pooled_freq", "predictive")

_COLORS = {
    "observed": "#222222",
    "shrunken": "#1f77b4",
    "pooled_bayes": "#1f77b4",
    "pooled_freq": "#555555",
    "predictive": "#1f77b4",
    "prior": "#d62728",
}
_LEGEND = {
    "observed": "Observed (study)",
    "shrunken": "Bayesian shrunken (study)",
    "pooled_bayes": "Pooled, Bayesian",
    "pooled_freq": "Pooled, frequentist",
    "predictive": "Predictive interval",
}


@dataclass(frozen=True)
class _Measure:
    code: str
    name: str
    is_ratio: bool

    @property
    def null(self) -> float:
        return 1.0 if self.is_ratio else 0.0

    def to_display(self, value: np.ndarray | float) -> np.ndarray:
        arr = np.asarray(value, dtype=float)
        return np.exp(arr) if self.is_ratio else arr

    def fmt(self, value: float) -> str:
        if not math.isfinite(value):
            return "NA"
        if self.is_ratio:
            return f"{value:.2f}" if value < 100 else f"{value:.3g}"
        return f"{value:.3f}"


_MEASURES = {
    "OR": _Measure("OR", "Odds ratio", True),
    "RR": _Measure("RR", "Risk ratio", True),
    "HR": _Measure("HR", "Hazard ratio", True),
    "RD": _Measure("RD", "Risk difference", False),
    "MD": _Measure("MD", "Mean difference", False),
    "SMD": _Measure("SMD", "Standardised mean difference", False),
    # Unnamed ratio given as yi (log ratio) and sei, as in EffectSizes(scale="log").
    "GENERIC": _Measure("Ratio", "Ratio", True),
}


def _measure(measure: str, where: str) -> _Measure:
    key = str(measure).strip().upper()
    if key not in _MEASURES:
        raise InputError(
            f"unknown measure {measure!r}; expected one of OR, RR, HR, generic (ratios, given on "
            "the log scale) or RD, MD, SMD (differences, identity scale)",
            source=where,
            column="measure",
        )
    return _MEASURES[key]


def _new_axes(width: float, height: float) -> Axes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig.add_subplot()


def _below_axes(ax: Axes) -> Any:
    """Transform placing a legend a fixed distance below the x-axis label, whatever the height."""
    from matplotlib.transforms import ScaledTranslation

    return ax.transAxes + ScaledTranslation(0.0, -0.62, ax.figure.dpi_scale_trans)


def _margin_text(ax: Axes, y: float, text: str, transform: Any, **style: Any) -> None:
    """Write ``text`` in the right margin at height ``y``: left-aligned just past the axes, never
    clipped; ``transform`` takes x in axes and y in data units."""
    ax.text(1.02, y, text, transform=transform, ha="left", va="center", clip_on=False, **style)


def _plain(text: object) -> str:
    """Text shown literally by matplotlib (a '$' would otherwise start mathtext)."""
    return str(text).replace("$", r"\$")


def _require_columns(frame: object, columns: Sequence[str], where: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(
            f"expected a pandas DataFrame with columns {list(columns)}, got {type(frame).__name__}",
            source=where,
        )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"missing column(s) {missing}; the table needs {list(columns)} "
            f"(it has {list(map(str, frame.columns))})",
            source=where,
            column=missing[0],
        )
    return frame


def _numeric(frame: pd.DataFrame, column: str, where: str, label_col: str) -> np.ndarray:
    """A float column; non-numeric cells raise an InputError naming the row."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    raw = frame[column].to_numpy()
    for i, (v, r) in enumerate(zip(values, raw, strict=True)):
        if np.isnan(v) and not pd.isna(r):
            raise InputError(
                f"value {r!r} is not a number",
                source=where,
                row=i + 1,
                study=str(frame[label_col].iloc[i]),
                column=column,
            )
    return values


def _ratio_ticks(lo: float, hi: float) -> list[float]:
    """Readable ratio tick values between ``lo`` and ``hi`` (both > 0)."""
    levels = (
        (1.0,),
        (1.0, 2.0, 5.0),
        (1.0, 1.5, 2.0, 3.0, 5.0, 7.0),
        (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0),
    )
    e_lo, e_hi = math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1
    best: list[float] = []
    for mantissas in levels:
        ticks = sorted(
            {
                float(f"{m * 10.0**e:.6g}")
                for e in range(e_lo, e_hi + 1)
                for m in mantissas
                if lo <= m * 10.0**e <= hi
            }
        )
        if len(ticks) < 6 and lo <= 0.5 <= hi and 0.5 not in ticks:  # 0.5 and 2: mirrors
            ticks = sorted({*ticks, 0.5, *([2.0] if lo <= 2.0 <= hi else [])})
        best = ticks
        if len(ticks) >= 4:
            break
    if len(best) > 10:  # very wide range: decades only
        best = [t for t in best if math.isclose(math.log10(t), round(math.log10(t)))]
    return best


def _format_tick(value: float) -> str:
    return f"{value:g}"


def _style_x_axis(ax: Axes, measure: _Measure, values: np.ndarray) -> None:
    """Scale, limits, ticks, no-effect line and label of the effect axis."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter, NullLocator

    finite = values[np.isfinite(values)]
    if measure.is_ratio:
        finite = finite[finite > 0]
        lo = min([measure.null, *finite.tolist()])
        hi = max([measure.null, *finite.tolist()])
        span = math.log(hi) - math.log(lo)
        pad = max(0.08 * span, 0.05)
        lo, hi = math.exp(math.log(lo) - pad), math.exp(math.log(hi) + pad)
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ticks = _ratio_ticks(lo, hi)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FixedFormatter([_format_tick(t) for t in ticks]))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
        code = "" if measure.code == measure.name else f"{measure.code}, "
        ax.set_xlabel(f"{measure.name} ({code}log scale)")
    else:
        lo = min([measure.null, *finite.tolist()])
        hi = max([measure.null, *finite.tolist()])
        pad = max(0.08 * (hi - lo), 0.01)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_xlabel(f"{measure.name} ({measure.code})")
    ax.axvline(measure.null, color="#888888", linewidth=0.9, linestyle="-", zorder=1.5)


# --------------------------------------------------------------------------------------------
# funnel plot
# --------------------------------------------------------------------------------------------
def _funnel_inputs(
    yi: Sequence[float],
    sei: Sequence[float],
    labels: Sequence[str] | None,
    estimate: Any,
    where: str,
) -> tuple[np.ndarray, np.ndarray, list[str] | None, float]:
    """The funnel plot's inputs checked: as many finite ``yi`` as positive ``sei`` (and
    labels), and a finite pooled estimate."""
    names = None if labels is None else [str(v) for v in labels]
    y = np.asarray(pd.to_numeric(pd.Series(list(yi)), errors="coerce"), dtype=float)
    s = np.asarray(pd.to_numeric(pd.Series(list(sei)), errors="coerce"), dtype=float)
    if y.shape != s.shape:
        raise InputError(
            f"yi has {y.size} values but sei has {s.size}; they must match",
            source=where,
            column="sei",
        )
    if y.size == 0:
        raise InputError("no trials given; nothing to plot", source=where, column="yi")
    for i in range(y.size):
        study = None if names is None or i >= len(names) else names[i]
        if not np.isfinite(y[i]):
            raise InputError(
                "yi is missing or not finite", source=where, row=i + 1, study=study, column="yi"
            )
        if not (np.isfinite(s[i]) and s[i] > 0):
            raise InputError(
                f"sei must be a positive finite number, got {s[i]:g}",
                source=where,
                row=i + 1,
                study=study,
                column="sei",
            )
    if names is not None and len(names) != y.size:
        raise InputError(f"{len(names)} labels for {y.size} trials", source=where, column="labels")
    try:
        estimate = float(estimate)
    except (TypeError, ValueError):
        raise InputError(
            f"the pooled estimate {estimate!r} is not a number", source=where, column="estimate"
        ) from None
    if not np.isfinite(estimate):
        raise InputError("the pooled estimate is not finite", source=where, column="estimate")
    return y, s, names, estimate


def funnel_plot(
    yi: Sequence[float] | np.ndarray | pd.Series,
    sei: Sequence[float] | np.ndarray | pd.Series,
    *,
    estimate: float,
    measure: str,
    ax: Axes | None = None,
    labels: Sequence[str] | None = None,
    ci_prob: float | None = None,
) -> Axes:
    """Funnel plot: effect (x) against standard error (y, inverted, 0 at the top).

    Parameters
    ----------
    yi, sei : array-like
        Trial effects on the analysis scale (log scale for ratios) and their standard errors.
    estimate : float
        Pooled effect on the analysis scale; the funnel is centred on it.
    measure : {"OR", "RR", "HR", "RD", "generic"}
    ax : matplotlib.axes.Axes, optional
    labels : sequence of str, optional
        Trial labels written next to the points.
    ci_prob : float, optional
        Probability of the pseudo-confidence limits ``estimate ± z * SE`` (default
        ``config.defaults["ci_prob"]``, i.e. the usual pseudo-95% funnel).

    Returns
    -------
    matplotlib.axes.Axes
    """
    where = "funnel_plot"
    meas = _measure(measure, where)
    ci_prob = float(config.get("ci_prob", ci_prob))
    y, s, names, estimate = _funnel_inputs(yi, sei, labels, estimate, where)

    if ax is None:
        ax = _new_axes(7.6, 5.0)
    z = z_quantile(ci_prob)
    se_max = float(s.max()) * 1.1
    se_grid = np.linspace(0.0, se_max, 50)
    to_x = meas.to_display
    levels = sorted(float(v) for v in config.get("funnel_contours"))
    z_levels = [z_quantile(p) for p in levels]
    ax.plot(to_x(estimate - z * se_grid), se_grid, color="#555555", linestyle="--", linewidth=1)
    ax.plot(
        to_x(estimate + z * se_grid),
        se_grid,
        color="#555555",
        linestyle="--",
        linewidth=1,
        label=f"Pseudo {100 * ci_prob:g}% limits",
    )
    ax.axvline(
        float(to_x(estimate)), color=_COLORS["pooled_bayes"], linewidth=1.2, label="Pooled estimate"
    )
    ax.plot(
        to_x(y),
        s,
        linestyle="none",
        marker="o",
        color=_COLORS["observed"],
        markerfacecolor="white",
        markeredgewidth=1.3,
        markersize=6,
        label="Studies",
        zorder=3,
    )
    if names is not None:
        for lab, xv, sv in zip(names, to_x(y), s, strict=True):
            ax.annotate(
                _plain(lab),
                (float(xv), float(sv)),
                xytext=(4, 3),
                textcoords="offset points",
                fontsize=7,
                color="#444444",
            )
    reach = max(z, *z_levels) * se_max
    extent = np.concatenate(
        [to_x(y), to_x(estimate + np.array([-z, z]) * se_max), to_x(np.array([-reach, reach]))]
    )
    _style_x_axis(ax, meas, extent)
    _funnel_contours(ax, meas, se_grid, levels, z_levels)
    ax.set_ylim(se_max, 0.0)
    ax.set_ylabel(f"Standard error of {'log ' if meas.is_ratio else ''}{meas.code}")
    ax.set_title(f"Funnel plot ({meas.name.lower()})")
    # outside the axes: a legend never covers a point
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    return ax


def _funnel_contours(
    ax: Axes, meas: _Measure, se_grid: np.ndarray, levels: list[float], z_levels: list[float]
) -> None:
    """Shaded regions of two-sided significance of each study's own test against the null
    (contour-enhanced funnel, Peters et al. 2008; the levels of metafor's ``funnel(level=)``):
    white where p > 1 - levels[0], darker the smaller p. Call after the x limits are set."""
    shades = ("#ffffff", "#dcdcdc", "#bdbdbd", "#9e9e9e", "#808080", "#646464")
    lo, hi = ax.get_xlim()
    to_x = meas.to_display
    bounds = [0.0, *z_levels, math.inf]
    alphas = [1.0, *[1.0 - p for p in levels], 0.0]
    for j in range(len(bounds) - 1):
        inner, outer = bounds[j], bounds[j + 1]
        color = shades[min(j, len(shades) - 1)]
        label = (
            (None if j == 0 else f"{alphas[j + 1]:.2g} < p < {alphas[j]:.2g}")
            if math.isfinite(outer)
            else f"p < {alphas[j]:.2g}"
        )
        for sign in (-1.0, 1.0):
            near = to_x(sign * inner * se_grid)
            far = to_x(sign * outer * se_grid) if math.isfinite(outer) else None
            if far is None:
                far = np.full(se_grid.shape, hi if sign > 0 else lo)
            far = np.clip(far, lo, hi)
            near = np.clip(near, lo, hi)
            ax.fill_betweenx(
                se_grid,
                near,
                far,
                color=color,
                linewidth=0,
                zorder=0,
                label=label if sign > 0 else None,
            )
    ax.axvline(meas.null, color="#888888", linewidth=0.8, zorder=0.5)


# --------------------------------------------------------------------------------------------
# tau prior vs posterior
# --------------------------------------------------------------------------------------------
def tau_prior_posterior_plot(
    tau_grid: Sequence[float] | np.ndarray,
    prior_pdf: Sequence[float] | np.ndarray,
    posterior_pdf: Sequence[float] | np.ndarray,
    *,
    ax: Axes | None = None,
    prior_label: str | None = None,
    posterior_draws: Sequence[float] | np.ndarray | None = None,
) -> Axes:
    """Prior and posterior density of the between-trial standard deviation tau.

    Parameters
    ----------
    tau_grid : array-like
        Increasing grid of tau values (>= 0).
    prior_pdf, posterior_pdf : array-like
        Densities on ``tau_grid`` (e.g. exact quadrature).
    ax : matplotlib.axes.Axes, optional
    prior_label : str, optional
        Legend text of the prior (e.g. ``"half-normal(0.5)"``).
    posterior_draws : array-like, optional
        MCMC draws of tau, shown as a density histogram behind the curves.

    Returns
    -------
    matplotlib.axes.Axes
    """
    where = "tau_prior_posterior_plot"
    grid = np.asarray(tau_grid, dtype=float).ravel()
    prior = np.asarray(prior_pdf, dtype=float).ravel()
    post = np.asarray(posterior_pdf, dtype=float).ravel()
    if grid.size < 2:
        raise InputError("tau_grid needs at least two points", source=where, column="tau_grid")
    for name, arr in (("prior_pdf", prior), ("posterior_pdf", post)):
        if arr.shape != grid.shape:
            raise InputError(
                f"{name} has {arr.size} values but tau_grid has {grid.size}",
                source=where,
                column=name,
            )
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise InputError("densities must be finite and non-negative", source=where, column=name)
    if not (np.all(np.isfinite(grid)) and np.all(np.diff(grid) > 0) and grid[0] >= 0):
        raise InputError(
            "tau_grid must be finite, non-negative and strictly increasing",
            source=where,
            column="tau_grid",
        )
    if ax is None:
        ax = _new_axes(6.5, 4.2)
    if posterior_draws is not None:
        draws = np.asarray(posterior_draws, dtype=float).ravel()
        draws = draws[np.isfinite(draws)]
        if draws.size:
            # Density relative to *all* draws, so draws beyond the grid are not re-normalised in.
            bins = min(60, max(10, draws.size // 50))
            width = (grid[-1] - grid[0]) / bins
            ax.hist(
                draws,
                bins=bins,
                range=(grid[0], grid[-1]),
                weights=np.full(draws.size, 1.0 / (draws.size * width)),
                color=_COLORS["shrunken"],
                alpha=0.25,
                label="Posterior (MCMC draws)",
            )
    ax.plot(
        grid,
        prior,
        color=_COLORS["prior"],
        linestyle="--",
        linewidth=1.6,
        label=f"Prior: {_plain(prior_label)}" if prior_label else "Prior",
    )
    ax.plot(grid, post, color=_COLORS["pooled_bayes"], linewidth=1.8, label="Posterior")
    ax.set_xlim(grid[0], grid[-1])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("τ (between-trial standard deviation, analysis scale)")
    ax.set_ylabel("Density")
    ax.set_title("Heterogeneity τ: prior and posterior")
    ax.legend(fontsize=8, frameon=False)
    return ax


# --------------------------------------------------------------------------------------------
# prior sensitivity
# --------------------------------------------------------------------------------------------
def _check_unique_priors(priors: list[str], analyses: list[str] | None, where: str) -> None:
    """Each prior at most once per analysis."""
    seen: set[tuple[str, str]] = set()
    for i, p in enumerate(priors):
        key = (p, analyses[i] if analyses else "")
        if key in seen:
            raise InputError(
                f"prior {p!r} appears twice" + (f" for analysis {key[1]!r}" if analyses else ""),
                source=where,
                row=i + 1,
                study=p,
                column="prior",
            )
        seen.add(key)


def _sensitivity_rows(
    ax: Axes,
    meas: _Measure,
    priors: list[str],
    analyses: list[str] | None,
    prior_order: list[str],
    offsets: np.ndarray,
    x: tuple[np.ndarray, np.ndarray, np.ndarray],
    tau: np.ndarray | None,
    text_tf: Any,
) -> None:
    """One interval and median per row, its printed value right of the axes, coloured by
    analysis when there are several."""
    import matplotlib as mpl

    cycle = mpl.rcParams["axes.prop_cycle"].by_key().get("color", ["#1f77b4"])
    groups = list(dict.fromkeys(analyses)) if analyses else [""]
    n_g = len(groups)
    x_med, x_lo, x_hi = x
    y = np.empty(len(priors))
    drawn: set[str] = set()
    for i, p in enumerate(priors):
        g = groups.index(analyses[i]) if analyses else 0
        y[i] = prior_order.index(p) + offsets[g]
        color = cycle[g % len(cycle)] if n_g > 1 else _COLORS["pooled_bayes"]
        label = groups[g] if (n_g > 1 and groups[g] not in drawn) else None
        if np.isfinite(x_lo[i]) and np.isfinite(x_hi[i]):
            ax.plot([x_lo[i], x_hi[i]], [y[i], y[i]], color=color, linewidth=1.4)
        if np.isfinite(x_med[i]):
            ax.plot(
                x_med[i],
                y[i],
                marker="o",
                color=color,
                markersize=6,
                linestyle="none",
                label=_plain(label) if label else None,
            )
            if label:
                drawn.add(groups[g])
        if np.isfinite(x_lo[i]) and np.isfinite(x_hi[i]):
            txt = (
                f"{meas.fmt(float(x_med[i]))} [{meas.fmt(float(x_lo[i]))}, "
                f"{meas.fmt(float(x_hi[i]))}]"
            )
        else:
            txt = "not estimable"
        if tau is not None:
            txt += f"   τ {tau[i]:.2f}" if np.isfinite(tau[i]) else "   τ NA"
        _margin_text(ax, y[i], txt, text_tf, fontsize=8, color=color if n_g > 1 else "#222222")


def prior_sensitivity_plot(
    table: pd.DataFrame,
    *,
    measure: str,
    ax: Axes | None = None,
) -> Axes:
    """Pooled effect under each prior: posterior median and credible interval per row.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``prior`` (label), ``mu_median``, ``mu_low``, ``mu_high`` (analysis scale: log
        for ratios), optional ``tau_median`` (shown in the text column) and optional
        ``analysis``: when present, the analyses are drawn side by side within each prior's
        line (offset markers, one colour per analysis, with a legend).
    measure : {"OR", "RR", "HR", "RD", "generic"}
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    where = "prior_sensitivity_plot(table)"
    meas = _measure(measure, "prior_sensitivity_plot")
    frame = _require_columns(table, ["prior", "mu_median", "mu_low", "mu_high"], where)
    if len(frame) == 0:
        raise InputError("the table has no rows; nothing to plot", source=where)
    priors = [str(v) for v in frame["prior"].tolist()]
    med = _numeric(frame, "mu_median", where, "prior")
    low = _numeric(frame, "mu_low", where, "prior")
    high = _numeric(frame, "mu_high", where, "prior")
    tau = _numeric(frame, "tau_median", where, "prior") if "tau_median" in frame.columns else None
    analyses = [str(v) for v in frame["analysis"].tolist()] if "analysis" in frame.columns else None
    prior_order = list(dict.fromkeys(priors))
    groups = list(dict.fromkeys(analyses)) if analyses else [""]
    n_g = len(groups)
    _check_unique_priors(priors, analyses, where)

    if ax is None:
        longest = max(len(s) for s in prior_order)
        ax = _new_axes(min(13.0, 7.5 + 0.07 * longest), 1.8 + (0.3 + 0.22 * n_g) * len(prior_order))
    spread = min(0.56, 0.28 * (n_g - 1))
    offsets = np.linspace(-spread / 2, spread / 2, n_g) if n_g > 1 else np.array([0.0])
    x_med, x_lo, x_hi = meas.to_display(med), meas.to_display(low), meas.to_display(high)
    from matplotlib.transforms import blended_transform_factory

    text_tf = blended_transform_factory(ax.transAxes, ax.transData)
    x = (x_med, x_lo, x_hi)
    _sensitivity_rows(ax, meas, priors, analyses, prior_order, offsets, x, tau, text_tf)
    _style_x_axis(ax, meas, np.concatenate([x_med, x_lo, x_hi]))
    if n_g > 1:  # shaded bands keep each prior's analyses together
        for j in range(0, len(prior_order), 2):
            ax.axhspan(j - 0.5, j + 0.5, color="#f2f2f2", zorder=0, linewidth=0)
    ax.set_yticks(np.arange(len(prior_order)), [_plain(s) for s in prior_order])
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(len(prior_order) - 0.5, -1.0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    header = f"{meas.code} median [interval]" + ("   τ median" if tau is not None else "")
    _margin_text(ax, -0.8, header, text_tf, fontsize=8, fontweight="bold")
    ax.set_ylabel("Prior")
    ax.set_title(f"Prior sensitivity of the pooled {meas.name.lower()}")
    if n_g > 1:
        ax.legend(
            title="Analysis",
            fontsize=8,
            title_fontsize=8,
            frameon=False,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            bbox_transform=_below_axes(ax),
            ncol=min(3, n_g),
        )
    return ax


# --------------------------------------------------------------------------------------------
# saving
# --------------------------------------------------------------------------------------------
def save_figure(fig: Figure, path_stem: Path) -> list[Path]:
    """Write ``fig`` as ``<path_stem>.png`` (150 dpi) and ``<path_stem>.svg``.

    Files are written atomically and reproducibly (no creation date or software stamp in the
    metadata, fixed SVG id salt), so reruns give byte-identical SVGs. The SVG keeps its text as
    ``<text>`` elements (``svg.fonttype = "none"``): labels can be searched, selected and
    edited, and a viewer draws them in its own copy of the font (DejaVu Sans, else a sans-serif).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        Figure to save (``ax.figure`` of a returned Axes).
    path_stem : Path
        Output path without suffix; a suffix already present in the name is kept
        (``"forest_pfs.everolimus"`` gives ``forest_pfs.everolimus.png``).

    Returns
    -------
    list of Path
        The PNG and the SVG path.
    """
    stem = Path(path_stem)
    return [
        atomic_write_bytes(stem.parent / f"{stem.name}.{fmt}", data)
        for fmt, data in figure_bytes(fig).items()
    ]


#: Blank margin (inches) around the figure in the one Agg drawing of :func:`figure_bytes`, so
#: that what the tight box takes in beyond the figure's edge (labels, legends and notes placed
#: below the axes) is drawn too.
_MARGIN_INCHES = 2.0


def figure_bytes(fig: Figure, formats: Sequence[str] = ("png", "svg")) -> dict[str, bytes]:
    """``{"png": ..., "svg": ...}``: the bytes :func:`save_figure` writes, for writing elsewhere
    (``formats``: which of the two).

    The pictures are those of ``savefig(bbox_inches="tight", facecolor="white")`` (150 dpi
    PNG, SVG with text kept as text), drawn in fewer passes: the figure is laid out (layout
    engine) and measured once, on the one 150-dpi Agg drawing that becomes the PNG (a canvas
    with a margin around the figure, cut to the tight box), and the SVG is drawn once, into
    that box, with the layout held. ``savefig`` lays out and measures every text again for each
    format, and draws each twice (once to find the box, once to draw into it).
    """
    import matplotlib as mpl
    from matplotlib._tight_bbox import adjust_bbox
    from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
    from matplotlib.transforms import Bbox

    dpi, margin = 150, _MARGIN_INCHES
    out: dict[str, bytes] = {}
    old_canvas, old_face, old_dpi = fig.canvas, fig.patch.get_facecolor(), fig.dpi
    engine = fig.get_layout_engine()
    restore = None
    try:
        fig.patch.set_facecolor("white")
        fig.dpi = dpi
        FigureCanvasAgg(fig)
        w, h = fig.get_size_inches()
        renderer = RendererAgg(int((w + 2 * margin) * dpi), int((h + 2 * margin) * dpi), dpi)
        if engine is not None:
            with renderer._draw_disabled():
                fig.draw(renderer)  # the layout engine runs here, once
            fig.set_layout_engine("none")  # and its positions are kept from here on
        restore = adjust_bbox(fig, Bbox([[-margin, -margin], [w + margin, h + margin]]), renderer)
        fig.draw(renderer)
        pad = float(mpl.rcParams["savefig.pad_inches"])
        drawn = fig.get_tightbbox(renderer).padded(pad)  # inches on the canvas with margins
        restore()
        restore = None
        box = Bbox(drawn.get_points() - margin)  # the same box in the figure's own inches
        if "png" in formats:
            out["png"] = _cropped_png(fig, renderer, drawn, box, dpi)
        if "svg" in formats:
            buffer = io.BytesIO()
            # text stays text in the SVG (searchable, selectable, editable), as in the PNG
            with mpl.rc_context({"svg.hashsalt": "bayesmtor", "svg.fonttype": "none"}):
                fig.savefig(
                    buffer, format="svg", bbox_inches=box, facecolor="white",
                    metadata={"Date": None, "Creator": None},
                )  # fmt: skip
            out["svg"] = buffer.getvalue()
    finally:
        if restore is not None:
            restore()
        if engine is not None:
            fig.set_layout_engine(engine)
        fig.patch.set_facecolor(old_face)
        fig.dpi = old_dpi
        fig.set_canvas(old_canvas)
    return {fmt: out[fmt] for fmt in ("png", "svg") if fmt in formats}


def _cropped_png(fig: Figure, renderer: Any, drawn: Any, box: Any, dpi: float) -> bytes:
    """The PNG of the Agg drawing in ``renderer`` cut to ``drawn`` (inches on its canvas);
    drawn again into ``box`` (the figure's inches), as savefig does, should the box reach the
    canvas's edge."""
    import matplotlib as mpl

    rgba = np.asarray(renderer.buffer_rgba())
    height, width = rgba.shape[:2]
    x0 = round(drawn.x0 * dpi)
    x1 = x0 + int(drawn.width * dpi)
    y0 = round(height - drawn.y1 * dpi)
    y1 = y0 + int(drawn.height * dpi)
    buffer = io.BytesIO()
    if x0 > 0 and y0 > 0 and x1 < width and y1 < height:
        mpl.image.imsave(
            buffer, rgba[y0:y1, x0:x1], format="png", origin="upper", dpi=dpi,
            metadata={"Software": None},
        )  # fmt: skip
    else:  # pragma: no cover - a figure reaching more than the margin beyond its edge
        fig.savefig(
            buffer, format="png", dpi=dpi, bbox_inches=box, facecolor="white",
            metadata={"Software": None},
        )  # fmt: skip
    return buffer.getvalue()
