"""The forest plot: trial estimates, shrunken estimates, pooled rows and a predictive interval.

Shares the measure scales, axis styling and colours of :mod:`bayesmtor.reporting.figures`;
like every plot there it takes ``ax=None`` and returns the Axes it drew on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayesmtor import config
from bayesmtor.errors import InputError
from bayesmtor.reporting.figures import (
    _COLORS,
    _LEGEND,
    FOREST_KINDS,
    _below_axes,
    _margin_text,
    _Measure,
    _measure,
    _new_axes,
    _numeric,
    _plain,
    _require_columns,
    _style_x_axis,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["forest_plot"]


def forest_plot(
    rows: pd.DataFrame,
    *,
    measure: str,
    ax: Axes | None = None,
    title: str | None = None,
    ci_prob: float | None = None,
) -> Axes:
    """Forest plot of trial estimates, shrunken estimates, pooled rows and a predictive interval.

    Parameters
    ----------
    rows : pandas.DataFrame
        One row per drawn element, columns

        ``label`` (str)
            y-axis label. An ``observed`` and a ``shrunken`` row with the same label share one
            line (the shrunken marker is drawn slightly below the observed one).
        ``kind``
            One of ``"observed"`` (square, sized by ``weight``), ``"shrunken"`` (Bayesian
            trial-specific estimate, circle), ``"pooled_bayes"`` and ``"pooled_freq"``
            (diamonds), ``"predictive"`` (bar).
        ``estimate``, ``low``, ``high``
            Point estimate and interval on the analysis scale (log scale for OR/RR/HR). Missing
            values are allowed and shown as "not estimable"; a predictive row may omit the
            estimate.
        ``weight`` (optional)
            Relative weight of observed rows; square area grows with it.

        The order of rows is kept: trials (observed/shrunken) first, in order of first
        appearance, then pooled and predictive rows. The frame is not modified.
    measure : {"OR", "RR", "HR", "RD", "generic"}
        Effect measure; ratios (``"generic"`` is an unnamed ratio) are drawn on a log axis
        labelled with ratio values, RD on a linear axis.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure sized to the number of rows is made if omitted.
    title : str, optional
        Axes title; defaults to ``"Forest plot (<measure name>)"``.
    ci_prob : float, optional
        Interval probability, used in the header of the text column; defaults to
        ``config.defaults["ci_prob"]``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    where = "forest_plot(rows)"
    meas = _measure(measure, "forest_plot")
    ci_prob = float(config.get("ci_prob", ci_prob))
    data = _forest_data(rows, where)
    positions, line_labels, n_trial, gap, y = _forest_layout(data)
    if ax is None:
        longest = max(len(s) for s in line_labels)
        width = min(13.0, 7.5 + 0.07 * longest)
        ax = _new_axes(width, 1.9 + 0.36 * len(line_labels))
    to_x = meas.to_display
    x = (to_x(data.est), to_x(data.low), to_x(data.high))
    used = _forest_marks(ax, meas, data, y, x)

    _style_x_axis(ax, meas, np.concatenate(x))
    ax.set_yticks(positions, [_plain(s) for s in line_labels])
    ax.tick_params(axis="y", length=0)
    top = -1.0
    ax.set_ylim(positions[-1] + 0.75, top)
    if n_trial and len(positions) > n_trial:
        ax.axhline(n_trial - 1 + (gap + 1) / 2, color="#cccccc", linewidth=0.8, zorder=0)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    _forest_text(ax, meas, ci_prob, data.kinds, y, x, top)
    _forest_legend(ax, used)
    ax.set_title(_plain(title) if title is not None else f"Forest plot ({meas.name.lower()})")
    return ax


@dataclass(frozen=True)
class _ForestData:
    labels: list[str]
    kinds: list[str]
    est: np.ndarray
    low: np.ndarray
    high: np.ndarray
    weight: np.ndarray | None
    seen: frozenset[tuple[str, str]]


def _forest_data(rows: pd.DataFrame, where: str) -> _ForestData:
    """The rows checked: known kinds, one row per label and kind, low <= high."""
    frame = _require_columns(rows, ["label", "kind", "estimate", "low", "high"], where)
    if len(frame) == 0:
        raise InputError("the table has no rows; nothing to plot", source=where)
    labels = [str(v) for v in frame["label"].tolist()]
    kinds = [str(v) for v in frame["kind"].tolist()]
    for i, kind in enumerate(kinds):
        if kind not in FOREST_KINDS:
            raise InputError(
                f"unknown kind {kind!r}; expected one of {', '.join(FOREST_KINDS)}",
                source=where,
                row=i + 1,
                study=labels[i],
                column="kind",
            )
    est = _numeric(frame, "estimate", where, "label")
    low = _numeric(frame, "low", where, "label")
    high = _numeric(frame, "high", where, "label")
    weight = _numeric(frame, "weight", where, "label") if "weight" in frame.columns else None
    seen: set[tuple[str, str]] = set()
    for i, key in enumerate(zip(labels, kinds, strict=True)):
        if key in seen:
            raise InputError(
                f"duplicate row for label {key[0]!r} and kind {key[1]!r}; each label may "
                "appear once per kind",
                source=where,
                row=i + 1,
                study=key[0],
                column="label",
            )
        seen.add(key)
        if np.isfinite(low[i]) and np.isfinite(high[i]) and low[i] > high[i]:
            raise InputError(
                f"interval low {low[i]:g} is above high {high[i]:g}",
                source=where,
                row=i + 1,
                study=key[0],
                column="low",
            )
    return _ForestData(labels, kinds, est, low, high, weight, frozenset(seen))


def _forest_layout(
    data: _ForestData,
) -> tuple[list[float], list[str], int, float, np.ndarray]:
    """One line per trial label, then one per pooled/predictive row: ``(line positions, line
    labels, number of trial lines, gap before the pooled rows, y of every row)``."""
    labels, kinds = data.labels, data.kinds
    trial_lines: dict[str, int] = {}
    line_of_row: list[int] = [0] * len(labels)
    line_labels: list[str] = []
    for label, kind in zip(labels, kinds, strict=True):
        if kind in ("observed", "shrunken") and label not in trial_lines:
            trial_lines[label] = len(line_labels)
            line_labels.append(label)
    n_trial = len(line_labels)
    gap = 0.6 if n_trial else 0.0
    positions: list[float] = list(map(float, range(n_trial)))
    for i, kind in enumerate(kinds):
        if kind in ("observed", "shrunken"):
            line_of_row[i] = trial_lines[labels[i]]
        else:
            line_of_row[i] = len(line_labels)
            positions.append(len(line_labels) + gap)
            line_labels.append(labels[i])
    seen = data.seen
    both = {lab for lab in trial_lines if (lab, "observed") in seen and (lab, "shrunken") in seen}
    y = np.empty(len(labels))
    for i, kind in enumerate(kinds):
        base = positions[line_of_row[i]]
        if labels[i] in both and kind in ("observed", "shrunken"):
            base += -0.14 if kind == "observed" else 0.2
        y[i] = base
    return positions, line_labels, n_trial, gap, y


def _forest_marks(
    ax: Axes, meas: _Measure, data: _ForestData, y: np.ndarray, x: tuple[np.ndarray, ...]
) -> list[str]:
    """Squares, circles, diamonds and bars of every row; returns the kinds drawn."""
    from matplotlib.patches import Polygon

    x_est, x_lo, x_hi = x
    kinds, weight = data.kinds, data.weight
    wmax = None
    if weight is not None:
        valid = weight[np.isfinite(weight) & (weight > 0)]
        wmax = float(valid.max()) if valid.size else None
    used: list[str] = []
    for i, kind in enumerate(kinds):
        yi = y[i]
        color = _COLORS[kind]
        has_ci = np.isfinite(x_lo[i]) and np.isfinite(x_hi[i])
        if kind in ("observed", "shrunken"):
            if has_ci:
                ax.plot(
                    [x_lo[i], x_hi[i]],
                    [yi, yi],
                    color=color,
                    linewidth=1.1 if kind == "observed" else 1.0,
                    linestyle="-" if kind == "observed" else (0, (3, 1.5)),
                    zorder=2,
                )
            if np.isfinite(x_est[i]):
                if kind == "observed":
                    size = 6.0
                    if wmax is not None and weight is not None and np.isfinite(weight[i]):
                        size = 4.0 + 8.0 * math.sqrt(max(weight[i], 0.0) / wmax)
                    ax.plot(x_est[i], yi, marker="s", markersize=size, color=color, zorder=3)
                else:
                    ax.plot(
                        x_est[i],
                        yi,
                        marker="o",
                        markersize=5,
                        color=color,
                        markerfacecolor="white",
                        markeredgewidth=1.4,
                        zorder=3,
                    )
        elif kind in ("pooled_bayes", "pooled_freq") and has_ci:
            centre = (
                x_est[i]
                if np.isfinite(x_est[i])
                else (math.sqrt(x_lo[i] * x_hi[i]) if meas.is_ratio else 0.5 * (x_lo[i] + x_hi[i]))
            )
            h = 0.28
            diamond = Polygon(
                [(x_lo[i], yi), (centre, yi - h), (x_hi[i], yi), (centre, yi + h)],
                closed=True,
                facecolor=color if kind == "pooled_bayes" else "white",
                edgecolor=color,
                linewidth=1.3,
                zorder=3,
            )
            ax.add_patch(diamond)
        elif kind == "predictive" and has_ci:
            ax.plot(
                [x_lo[i], x_hi[i]],
                [yi, yi],
                color=color,
                linewidth=5,
                alpha=0.35,
                solid_capstyle="butt",
                zorder=2,
            )
            ax.plot(
                [x_lo[i], x_hi[i]],
                [yi, yi],
                color=color,
                linewidth=0,
                marker="|",
                markersize=10,
                markeredgewidth=1.5,
                zorder=3,
            )
        if kind not in used and (has_ci or np.isfinite(x_est[i])):
            used.append(kind)
    return used


def _forest_text(
    ax: Axes,
    meas: _Measure,
    ci_prob: float,
    kinds: Sequence[str],
    y: np.ndarray,
    x: tuple[np.ndarray, ...],
    top: float,
) -> None:
    """The column of printed estimates and intervals right of the axes."""
    from matplotlib.transforms import blended_transform_factory

    x_est, x_lo, x_hi = x
    text_tf = blended_transform_factory(ax.transAxes, ax.transData)
    pct = f"{100 * ci_prob:g}%"
    _margin_text(
        ax, top + 0.35, f"{meas.code} [{pct} interval]", text_tf, fontsize=9, fontweight="bold"
    )
    for i, kind in enumerate(kinds):
        if np.isfinite(x_lo[i]) and np.isfinite(x_hi[i]):
            point = meas.fmt(float(x_est[i])) if np.isfinite(x_est[i]) else "–"
            txt = f"{point} [{meas.fmt(float(x_lo[i]))}, {meas.fmt(float(x_hi[i]))}]"
        elif np.isfinite(x_est[i]):
            txt = f"{meas.fmt(float(x_est[i]))} [not estimable]"
        else:
            txt = "not estimable"
        _margin_text(
            ax,
            y[i],
            txt,
            text_tf,
            fontsize=8 if kind == "shrunken" else 9,
            color=_COLORS[kind] if kind == "shrunken" else "#222222",
            fontweight="bold" if kind.startswith("pooled") else "normal",
        )


def _forest_legend(ax: Axes, used: Sequence[str]) -> None:
    """A legend below the axes for the kinds drawn, in :data:`FOREST_KINDS` order."""
    from matplotlib.lines import Line2D

    handles = []
    for kind in FOREST_KINDS:
        if kind not in used:
            continue
        c = _COLORS[kind]
        if kind == "observed":
            h = Line2D([], [], color=c, marker="s", markersize=6, linewidth=1.1)
        elif kind == "shrunken":
            h = Line2D(
                [],
                [],
                color=c,
                marker="o",
                markerfacecolor="white",
                markersize=5,
                linewidth=1.0,
                linestyle=(0, (3, 1.5)),
            )
        elif kind == "predictive":
            h = Line2D([], [], color=c, linewidth=5, alpha=0.35)
        else:
            h = Line2D(
                [],
                [],
                color=c,
                marker="D",
                linestyle="none",
                markersize=7,
                markerfacecolor=c if kind == "pooled_bayes" else "white",
            )
        h.set_label(_LEGEND[kind])
        handles.append(h)
    if handles:
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            bbox_transform=_below_axes(ax),
            ncol=min(3, len(handles)),
            fontsize=8,
            frameon=False,
        )
