"""The forest plot: a RevMan-style table of the studies beside their intervals.

Columns, left to right: the study, events / total per arm (count data), each study's weight
in the frequentist fit (percent), the interval plot, and the estimate with its interval.
Below the studies the pooled rows (diamonds), the prediction interval, and the footnotes: the
heterogeneity line (Tau², Chi², df, P, I²) and the test for the overall effect, as RevMan 5
prints them; "Favours ..." labels under the axis. :func:`forest_plot` draws from rows,
:func:`~bayesmtor.reporting.result_plots.result_forest` from a pooled result (:meth:`PoolResult.plot_forest
<bayesmtor.frequentist.PoolResult.plot_forest>`, :meth:`BayesMetaResult.plot_forest
<bayesmtor.api.BayesMetaResult.plot_forest>`).

Shares the measure scales, axis styling and colours of :mod:`bayesmtor.reporting.figures`;
like every plot there it takes ``ax=None`` and returns the Axes it drew on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesmtor import config
from bayesmtor.errors import InputError
from bayesmtor.reporting.figures import (
    _COLORS,
    _LEGEND,
    FOREST_KINDS,
    _Measure,
    _measure,
    _numeric,
    _plain,
    _require_columns,
    _style_x_axis,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["favours_labels", "forest_plot"]

#: Optional count columns of the forest rows, in column order.
COUNT_COLUMNS = ("events_trt", "n_trt", "events_ctl", "n_ctl")
#: Rows of a subgroup forest plot: a subgroup's heading line, its pooled diamond and a line
#: of text (its heterogeneity and overall-effect lines). With a heading, every row keeps its
#: place in the order given (see :func:`forest_plot`).
SUBGROUP_KINDS = ("heading", "subtotal", "note")
_KINDS = (*FOREST_KINDS, *SUBGROUP_KINDS)
_POOLED = ("pooled_bayes", "pooled_freq", "subtotal")
_BOLD = ("heading", *_POOLED, "predictive")

_FONT = 8.5  # points, every text of the table
_LINE = 0.25  # inches per row
_GAP = 14.0  # points between columns
_PLOT_WIDTH = 2.9  # inches of the interval plot


def forest_plot(
    rows: pd.DataFrame,
    *,
    measure: str,
    ax: Axes | None = None,
    title: str | None = None,
    ci_prob: float | None = None,
    footnotes: Sequence[str] = (),
    favours: tuple[str, str] | None = None,
    arms: tuple[str, str] = ("Treatment", "Control"),
    weight_label: str | None = None,
) -> Axes:
    """Forest plot of study estimates, shrunken estimates, pooled rows and a predictive interval.

    Parameters
    ----------
    rows : pandas.DataFrame
        One row per drawn element, columns

        ``label`` (str)
            Text of the study column. An ``observed`` and a ``shrunken`` row with the same
            label share one line (the shrunken marker is drawn slightly below the observed one).
        ``kind``
            One of ``"observed"`` (square, sized by ``weight``), ``"shrunken"`` (Bayesian
            study-specific estimate, circle), ``"pooled_bayes"`` and ``"pooled_freq"``
            (diamonds), ``"predictive"`` (bar).
        ``estimate``, ``low``, ``high``
            Point estimate and interval on the analysis scale (log scale for OR/RR/HR). Missing
            values are allowed and shown as "not estimable"; a predictive row may omit the
            estimate.
        ``weight`` (optional)
            Weight of observed rows in percent, printed in the weight column; square area grows
            with it. A pooled frequentist row with a weight prints it too (100%).
        ``events_trt``, ``n_trt``, ``events_ctl``, ``n_ctl`` (optional)
            Counts per arm, printed as events and totals (count data); missing cells are blank.

        The order of rows is kept: studies (observed/shrunken) first, in order of first
        appearance, then pooled and predictive rows. The frame is not modified.

        A subgroup forest plot adds ``"heading"`` rows (a subgroup's name, bold, nothing
        drawn), ``"subtotal"`` rows (the subgroup's pooled diamond; the count columns show
        its studies' totals) and ``"note"`` rows (a line of small text, e.g. the subgroup's
        heterogeneity line). With a heading, every row gets its own line in the order given
        (an observed and a shrunken row of one study still share one), a small gap before
        each further heading and before the overall rows after the last subgroup.
    measure : {"OR", "RR", "HR", "RD", "generic"}
        Effect measure; ratios (``"generic"`` is an unnamed ratio) are drawn on a log axis
        labelled with ratio values, RD on a linear axis.
    ax : matplotlib.axes.Axes, optional
        Axes of the interval plot; the table columns are written beside it, outside it. A new
        figure sized to the rows and the longest label is made if omitted.
    title : str, optional
        Title, left-aligned over the table; defaults to ``"Forest plot (<measure name>)"``.
    ci_prob : float, optional
        Interval probability, for the header of the estimate column; defaults to
        ``config.defaults["ci_prob"]``.
    footnotes : sequence of str
        Lines printed under the rows, left-aligned in the study column (e.g.
        :func:`heterogeneity_line` and :func:`overall_effect_line`).
    favours : (str, str), optional
        Labels written under the axis left and right of the null line, e.g.
        ``("Favours everolimus", "Favours placebo")`` (see :func:`favours_labels`).
    arms : (str, str)
        Headers of the two count column groups.
    weight_label : str, optional
        Which weights the weight column holds (e.g. ``"REML"``), printed under its header.

    Returns
    -------
    matplotlib.axes.Axes
    """
    where = "forest_plot(rows)"
    meas = _measure(measure, "forest_plot")
    ci_prob = float(config.get("ci_prob", ci_prob))
    data = _forest_data(rows, where)
    positions, line_labels, n_trial, gap, y = _forest_layout(data)
    cells = _table_cells(data, meas, y, positions, line_labels, n_trial)
    notes = [str(n) for n in footnotes if str(n)]
    geometry = _Geometry.of(cells, notes, arms, weight_label, ci_prob, meas)
    rows_of_notes = 0 if geometry.notes_below else len(notes)
    n_lines = len(positions) + (rows_of_notes + 0.4 if rows_of_notes else 0)
    if ax is None:
        paired = any(k == "shrunken" for k in data.kinds)
        ax = _table_axes(geometry, n_lines * (1.45 if paired else 1.0))
    to_x = meas.to_display
    x = (to_x(data.est), to_x(data.low), to_x(data.high))
    used = _forest_marks(ax, meas, data, y, x)

    _style_x_axis(ax, meas, np.concatenate(x))
    ax.lines[-1].remove()  # the full-height null line: redrawn over the rows only
    last = positions[-1] if positions else 0.0
    ax.plot([meas.null, meas.null], [-0.6, last + 0.5], color="#888888", linewidth=0.9, zorder=1.5)
    ax.set_yticks([])
    ax.tick_params(axis="x", labelsize=_FONT)
    bottom = last + 0.7 + (0.75 * rows_of_notes + 0.3 if rows_of_notes else 0.0)
    ax.set_ylim(bottom, -0.7)
    if n_trial and len(positions) > n_trial:
        ax.plot(
            ax.get_xlim(),
            [n_trial - 1 + (gap + 1) / 2] * 2,
            color="#cccccc",
            linewidth=0.8,
            zorder=0,
        )
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    _write_table(ax, geometry, cells)
    _write_notes(ax, geometry, notes, last)
    if favours is not None:
        _favours(ax, meas, favours)
    if "shrunken" in used:
        _forest_legend(ax, used, favours is not None)
    heading = _plain(title) if title is not None else f"Forest plot ({meas.name.lower()})"
    ax.set_title(
        heading,
        loc="left",
        x=geometry.title_x(ax),
        pad=34,
        fontsize=_FONT + 2,
        fontweight="bold",
    )
    return ax


def favours_labels(treatment: str, control: str, benefit: str | None = None) -> tuple[str, str]:
    """The ``(left, right)`` "Favours ..." labels of a forest plot.

    Parameters
    ----------
    treatment, control : str
        Names of the arms.
    benefit : {"lower", "higher"}, optional
        ``"lower"``: values below the null favour the treatment (an HR of progression, an RR of
        an adverse event), so the treatment is named on the left; ``"higher"``: above the null
        (an RR of response). Default ``config.defaults["forest_benefit"]``.
    """
    side = config.get("forest_benefit", benefit)
    if side not in ("lower", "higher"):
        raise InputError(f"benefit must be 'lower' or 'higher', got {side!r}", column="benefit")
    left, right = f"Favours {treatment}", f"Favours {control}"
    return (left, right) if side == "lower" else (right, left)


@dataclass(frozen=True)
class _ForestData:
    labels: list[str]
    kinds: list[str]
    est: np.ndarray
    low: np.ndarray
    high: np.ndarray
    weight: np.ndarray | None
    seen: frozenset[tuple[str, str]]
    counts: np.ndarray | None = None


def _forest_data(rows: pd.DataFrame, where: str) -> _ForestData:
    """The rows checked: known kinds, one row per label and kind, low <= high."""
    frame = _require_columns(rows, ["label", "kind", "estimate", "low", "high"], where)
    if len(frame) == 0:
        raise InputError("the table has no rows; nothing to plot", source=where)
    labels = [str(v) for v in frame["label"].tolist()]
    kinds = [str(v) for v in frame["kind"].tolist()]
    for i, kind in enumerate(kinds):
        if kind not in _KINDS:
            raise InputError(
                f"unknown kind {kind!r}; expected one of {', '.join(_KINDS)}",
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
    ordered = "heading" in kinds
    for i, key in enumerate(zip(labels, kinds, strict=True)):
        if key in seen and not (ordered and key[1] in SUBGROUP_KINDS):
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
    counts = None
    if any(c in frame.columns for c in COUNT_COLUMNS):
        counts = np.column_stack(
            [
                _numeric(frame, c, where, "label")
                if c in frame.columns
                else np.full(len(frame), np.nan)
                for c in COUNT_COLUMNS
            ]
        )
        if not np.isfinite(counts).any():
            counts = None
    return _ForestData(labels, kinds, est, low, high, weight, frozenset(seen), counts)


def _forest_layout(
    data: _ForestData,
) -> tuple[list[float], list[str], int, float, np.ndarray]:
    """One line per trial label, then one per pooled/predictive row: ``(line positions, line
    labels, number of trial lines, gap before the pooled rows, y of every row)``."""
    labels, kinds = data.labels, data.kinds
    if "heading" in kinds:
        return _ordered_layout(data)
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
            base += -0.17 if kind == "observed" else 0.21
        y[i] = base
    return positions, line_labels, n_trial, gap, y


def _ordered_layout(
    data: _ForestData,
) -> tuple[list[float], list[str], int, float, np.ndarray]:
    """The layout of a subgroup forest plot: the rows in the order given, one line each (a
    study's observed and shrunken rows share theirs), a gap before each heading but the
    first and before the overall rows that follow the last subgroup."""
    labels, kinds = data.labels, data.kinds
    positions: list[float] = []
    line_labels: list[str] = []
    y = np.empty(len(labels))
    study_line: dict[tuple[int, str], int] = {}  # (subgroup, label) -> line
    group, pos, after_groups = -1, -1.0, False
    for i, (label, kind) in enumerate(zip(labels, kinds, strict=True)):
        if kind == "heading":
            group += 1
            pos += 1.6 if group > 0 else 1.0
        elif kind in ("observed", "shrunken") and (group, label) in study_line:
            y[i] = positions[study_line[(group, label)]]
            continue
        elif kind in ("pooled_bayes", "pooled_freq", "predictive") and not after_groups:
            after_groups = True
            pos += 1.6
        else:
            pos += 1.0
        if kind in ("observed", "shrunken"):
            study_line[(group, label)] = len(positions)
        positions.append(pos)
        line_labels.append(label)
        y[i] = pos
    pairs = {float(y[i]) for i, k in enumerate(kinds) if k == "shrunken"}
    for i, kind in enumerate(kinds):  # a study with both rows: observed above, shrunken below
        if kind in ("observed", "shrunken") and float(y[i]) in pairs:
            y[i] += -0.17 if kind == "observed" else 0.21
    return positions, line_labels, 0, 0.0, y


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
        if kind in ("heading", "note"):
            continue
        color = _COLORS["pooled_freq" if kind == "subtotal" else kind]
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
        elif kind in _POOLED and has_ci:
            centre = (
                x_est[i]
                if np.isfinite(x_est[i])
                else (math.sqrt(x_lo[i] * x_hi[i]) if meas.is_ratio else 0.5 * (x_lo[i] + x_hi[i]))
            )
            h = 0.28
            diamond = Polygon(
                [(x_lo[i], yi), (centre, yi - h), (x_hi[i], yi), (centre, yi + h)],
                closed=True,
                facecolor=color if kind == "pooled_bayes" else "white",  # subtotal: as FE/RE
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


# --------------------------------------------------------------------------------------------
# the table beside the plot
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Cells:
    """The texts of the table, each with its y (data units)."""

    study: list[tuple[float, str, bool]]
    counts: list[tuple[float, tuple[str, str, str, str]]] | None
    weight: list[tuple[float, str]] | None
    estimate: list[tuple[float, str, str]]
    notes: tuple[tuple[float, str], ...] = ()  # "note" rows: small text, may run past the column


def _count_text(value: float) -> str:
    if not math.isfinite(value):
        return ""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _estimate_text(meas: _Measure, est: float, lo: float, hi: float) -> str:
    if math.isfinite(lo) and math.isfinite(hi):
        interval = f"[{meas.fmt(lo)}, {meas.fmt(hi)}]"
        return f"{meas.fmt(est)} {interval}" if math.isfinite(est) else interval
    if math.isfinite(est):
        return f"{meas.fmt(est)} [not estimable]"
    return "Not estimable"


def _table_cells(
    data: _ForestData,
    meas: _Measure,
    y: np.ndarray,
    positions: list[float],
    line_labels: list[str],
    n_trial: int,
) -> _Cells:
    """Study labels, counts, weights and estimates as text, at their heights."""
    if "heading" in data.kinds:  # a subgroup plot: each line's own row decides its style
        lines = np.asarray(positions, dtype=float)
        kind_of, text_y = {}, {}
        for i, k in enumerate(data.kinds):  # lines are >= 1 apart, a pair's offsets < 0.25
            j = int(np.argmin(np.abs(lines - y[i])))
            if k != "shrunken":
                kind_of[j], text_y[j] = k, float(y[i])
        study = [
            (text_y.get(j, pos), lab, kind_of.get(j) in _BOLD)
            for j, (pos, lab) in enumerate(zip(positions, line_labels, strict=True))
            if kind_of.get(j) != "note"
        ]
        note_rows = tuple(
            (pos, lab)
            for j, (pos, lab) in enumerate(zip(positions, line_labels, strict=True))
            if kind_of.get(j) == "note"
        )
    else:
        note_rows = ()
        at = {
            lab: y[i]
            for i, (lab, k) in enumerate(zip(data.labels, data.kinds, strict=True))
            if k == "observed"
        }
        study = [
            (at.get(lab, pos) if i < n_trial else pos, lab, i >= n_trial)
            for i, (pos, lab) in enumerate(zip(positions, line_labels, strict=True))
        ]
    counts: list[tuple[float, tuple[str, str, str, str]]] | None = None
    weight: list[tuple[float, str]] | None = None
    observed = [i for i, k in enumerate(data.kinds) if k == "observed"]
    pooled = [i for i, k in enumerate(data.kinds) if k.startswith("pooled")]
    if data.counts is not None:
        counts = []
        for i in observed:
            counts.append((y[i], tuple(_count_text(v) for v in data.counts[i])))  # type: ignore[arg-type]
        if pooled:  # totals of the pooled studies on the (frequentist) total row, as RevMan
            inc = [i for i in observed if np.isfinite(data.est[i])]
            totals = np.nansum(data.counts[inc], axis=0) if inc else np.full(4, np.nan)
            freq = [i for i in pooled if data.kinds[i] == "pooled_freq"]
            row = (freq or pooled)[0]
            counts.append((y[row], tuple(_count_text(v) for v in totals)))  # type: ignore[arg-type]
        start = 0
        for i, kind in enumerate(data.kinds):  # a subtotal: the totals of its subgroup
            if kind == "heading":
                start = i
            elif kind == "subtotal":
                inc = [j for j in observed if start < j < i and np.isfinite(data.est[j])]
                totals = np.nansum(data.counts[inc], axis=0) if inc else np.full(4, np.nan)
                counts.append((y[i], tuple(_count_text(v) for v in totals)))  # type: ignore[arg-type]
    if data.weight is not None and np.isfinite(data.weight).any():
        weight = [
            (y[i], f"{data.weight[i]:.1f}%")
            for i, k in enumerate(data.kinds)
            if k in ("observed", *_POOLED) and np.isfinite(data.weight[i])
        ]
    shown = [meas.to_display(v) for v in (data.est, data.low, data.high)]
    estimate = [
        (y[i], _estimate_text(meas, *(float(v[i]) for v in shown)), kind)
        for i, kind in enumerate(data.kinds)
        if kind not in ("heading", "note")
    ]
    return _Cells(study, counts, weight, estimate, note_rows)


def _text_width(text: str, size: float = _FONT, bold: bool = False) -> float:
    """Width of ``text`` in inches, as matplotlib draws it."""
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    renderer = _RENDERER.get("agg")
    if renderer is None:
        renderer = _RENDERER.setdefault("agg", RendererAgg(10, 10, 72))
    prop = FontProperties(size=size, weight="bold" if bold else "normal")
    width, _, _ = renderer.get_text_width_height_descent(text, prop, ismath=False)
    return float(width) / 72.0


_RENDERER: dict[str, Any] = {}


@dataclass(frozen=True)
class _Geometry:
    """Where each column sits, in inches from the plot's left edge (left columns, negative)
    or its right edge (the estimate column)."""

    study_x: float
    count_x: tuple[float, float, float, float] | None
    weight_x: float | None
    estimate_x: float
    left: float
    right: float
    notes_below: bool
    headers: tuple[tuple[float, float, str, str, bool], ...]  # (x, line, text, ha, from right)

    @classmethod
    def of(
        cls,
        cells: _Cells,
        notes: Sequence[str],
        arms: tuple[str, str],
        weight_label: str | None,
        ci_prob: float,
        meas: _Measure,
    ) -> _Geometry:
        gap = _GAP / 72.0
        pos = -gap
        headers: list[tuple[float, float, str, str, bool]] = []
        weight_x = None
        if cells.weight is not None:
            sub = f"% ({weight_label})" if weight_label else "%"
            width = max(_text_width(t) for t in ["Weight", sub, *(w for _, w in cells.weight)])
            weight_x = pos
            headers += [(pos, 1, "Weight", "right", False), (pos, 0, sub, "right", False)]
            pos -= width + gap
        count_x = None
        if cells.counts is not None:
            xs = [0.0] * 4
            for col in (3, 2, 1, 0):
                texts = ["Events" if col in (0, 2) else "Total", *(c[col] for _, c in cells.counts)]
                xs[col] = pos
                width = max(_text_width(t) for t in texts)
                pos -= width + (gap if col in (0, 2) else 8.0 / 72.0)
                headers.append((xs[col], 0, "Events" if col in (0, 2) else "Total", "right", False))
            count_x = (xs[0], xs[1], xs[2], xs[3])
            for arm, (first, last) in zip(arms, ((0, 1), (2, 3)), strict=True):
                w_first = max(
                    _text_width(t) for t in ["Events", *(c[first] for _, c in cells.counts)]
                )
                centre = 0.5 * (xs[first] - w_first + xs[last])
                headers.append((centre, 1, _plain(arm), "center", False))
        study_w = max(
            [_text_width("Study", bold=True)]
            + [_text_width(_plain(t), bold=b) for _, t, b in cells.study]
        )
        if cells.notes:  # a note runs over the empty columns of its line, not into the plot
            widest = max(_text_width(_plain(t), _FONT - 0.5) for _, t in cells.notes)
            study_w = max(study_w, widest + pos + 0.5 * gap)
        study_x = pos - study_w
        note_w = max((_text_width(n, _FONT - 0.5) for n in notes), default=0.0)
        headers.append((study_x, 0, "Study", "left", False))
        pct = f"{100 * ci_prob:g}%"
        est_header = f"{meas.code} [{pct} interval]"
        est_w = max(
            [_text_width(est_header, bold=True)] + [_text_width(t) for _, t, _ in cells.estimate]
        )
        headers.append((gap, 0, est_header, "left", True))
        left = -study_x
        right = max(gap + est_w, note_w - left - _PLOT_WIDTH)
        below = note_w <= left - 0.2  # the notes fit left of the axis, under the table
        if below:
            right = gap + est_w
        return cls(study_x, count_x, weight_x, gap, left, right + 0.1, below, tuple(headers))

    def title_x(self, ax: Axes) -> float:
        """The study column's left edge in axes fraction (for a left-aligned title)."""
        width = ax.get_position().width * ax.figure.get_figwidth()
        return self.study_x / width if width > 0 else 0.0


def _table_axes(geometry: _Geometry, n_lines: float) -> Axes:
    """A new figure holding the table: the plot axes placed right of the left columns."""
    from matplotlib.figure import Figure

    top, bottom = 0.85, 1.05  # inches: title and headers; axis, favours labels, x label, legend
    width = geometry.left + _PLOT_WIDTH + geometry.right + 0.2
    height = top + bottom + _LINE * max(n_lines, 1.0)
    fig = Figure(figsize=(width, height))
    return fig.add_axes(
        (
            (geometry.left + 0.1) / width,
            bottom / height,
            _PLOT_WIDTH / width,
            (height - top - bottom) / height,
        )
    )


def _cell(
    ax: Axes, x_in: float, y: float, text: str, ha: str, anchor: float = 0.0, **style: Any
) -> None:
    """Write ``text`` at ``x_in`` inches from the plot's left (``anchor=0``) or right
    (``anchor=1``) edge, at height ``y`` in data units; never clipped."""
    from matplotlib.transforms import ScaledTranslation, blended_transform_factory

    xt = ax.transAxes + ScaledTranslation(x_in, 0.0, ax.figure.dpi_scale_trans)
    style.setdefault("fontsize", _FONT)
    ax.text(
        anchor,
        y,
        _plain(text),
        transform=blended_transform_factory(xt, ax.transData),
        ha=ha,
        va="center",
        clip_on=False,
        **style,
    )


def _write_table(ax: Axes, g: _Geometry, cells: _Cells) -> None:
    """Headers above the plot, then every cell of the table."""
    from matplotlib.transforms import ScaledTranslation, blended_transform_factory

    for x_in, line, text, ha, from_right in g.headers:
        xt = ax.transAxes + ScaledTranslation(x_in, 0.0, ax.figure.dpi_scale_trans)
        yt = ax.transAxes + ScaledTranslation(
            0.0, (5.0 + 11.0 * line) / 72.0, ax.figure.dpi_scale_trans
        )
        ax.text(
            1.0 if from_right else 0.0,
            1.0,
            text,
            transform=blended_transform_factory(xt, yt),
            ha=ha,
            va="bottom",
            fontsize=_FONT,
            fontweight="bold",
            clip_on=False,
        )
    for y, text, bold in cells.study:  # gid: the study column can be found again
        _cell(ax, g.study_x, y, text, "left", fontweight="bold" if bold else "normal", gid="study")
    for y, text in cells.notes:
        _cell(ax, g.study_x, y, text, "left", fontsize=_FONT - 0.5)
    if cells.counts is not None and g.count_x is not None:
        for y, texts in cells.counts:
            for x_in, text in zip(g.count_x, texts, strict=True):
                if text:
                    _cell(ax, x_in, y, text, "right")
    if cells.weight is not None and g.weight_x is not None:
        for y, text in cells.weight:
            _cell(ax, g.weight_x, y, text, "right")
    for y, text, kind in cells.estimate:
        shrunk = kind == "shrunken"
        _cell(
            ax,
            g.estimate_x,
            y,
            text,
            "left",
            anchor=1.0,
            fontsize=_FONT - 1 if shrunk else _FONT,
            color=_COLORS[kind] if shrunk else "#222222",
            fontweight="bold" if kind in _POOLED else "normal",
        )


def _write_notes(ax: Axes, g: _Geometry, notes: Sequence[str], last: float) -> None:
    """The footnotes: beside the x axis, under the table, when they fit there; else as rows
    under the pooled rows."""
    from matplotlib.transforms import ScaledTranslation, blended_transform_factory

    size = _FONT - 0.5
    for i, note in enumerate(notes):
        if not g.notes_below:
            _cell(ax, g.study_x, last + 1.0 + 0.75 * i, note, "left", fontsize=size)
            continue
        trans = ax.figure.dpi_scale_trans
        xt = ax.transAxes + ScaledTranslation(g.study_x, 0.0, trans)
        yt = ax.transAxes + ScaledTranslation(0.0, -(2.0 + 12.0 * i) / 72.0, trans)
        ax.text(
            0.0,
            0.0,
            _plain(note),
            transform=blended_transform_factory(xt, yt),
            ha="left",
            va="top",
            fontsize=size,
            clip_on=False,
        )


def _favours(ax: Axes, meas: _Measure, favours: tuple[str, str]) -> None:
    """The "Favours ..." labels under the axis, either side of the null line."""
    from matplotlib.transforms import ScaledTranslation, blended_transform_factory

    trans = ax.figure.dpi_scale_trans
    yt = ax.transAxes + ScaledTranslation(0.0, -17.0 / 72.0, trans)
    for text, sign, ha in ((favours[0], -1.0, "right"), (favours[1], 1.0, "left")):
        xt = ax.transData + ScaledTranslation(sign * 4.0 / 72.0, 0.0, trans)
        ax.text(
            meas.null,
            0.0,
            _plain(text),
            transform=blended_transform_factory(xt, yt),
            ha=ha,
            va="top",
            fontsize=_FONT,
            clip_on=False,
        )
    ax.xaxis.labelpad = 16.0


def _forest_legend(ax: Axes, used: Sequence[str], below_favours: bool) -> None:
    """A legend below the x label for the kinds drawn, in :data:`FOREST_KINDS` order."""
    from matplotlib.lines import Line2D
    from matplotlib.transforms import ScaledTranslation

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
    drop = (0.62 if below_favours else 0.45, ax.figure.dpi_scale_trans)
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        bbox_transform=ax.transAxes + ScaledTranslation(0.0, -drop[0], drop[1]),
        ncol=min(3, len(handles)),
        fontsize=_FONT - 0.5,
        frameon=False,
    )
