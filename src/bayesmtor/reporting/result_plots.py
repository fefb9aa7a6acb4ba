"""Forest and funnel plots of one pooled result: what ``result.plot_forest()`` and
``result.plot_funnel()`` draw, for a frequentist fit (:class:`~bayesmtor.frequentist.PoolResult`)
and a Bayesian one (:class:`~bayesmtor.api.BayesMetaResult`) alike.

The rows come from the study data the result carries (:class:`~bayesmtor.studies.StudyData`);
the footnotes are the lines RevMan 5 prints under a forest plot, in its words:

* ``Heterogeneity: Tau² = 0.04; Chi² = 3.21, df = 2 (P = 0.20); I² = 38%`` (Tau² for
  random-effects fits only; Chi² is Cochran's Q and I² = (Q - df) / Q, as RevMan);
* ``Test for overall effect: Z = 2.54 (P = 0.01)`` (``t = ..., df = ...`` for the t and HKSJ
  tests);
* for a Bayesian fit, ``Bayesian (τ ~ prior): τ = median [interval]; P(HR < 1) = 0.98``, the
  posterior probability that the pooled effect lies on the side that favours the treatment.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesmtor import config
from bayesmtor.errors import InputError, NotEstimableWarning
from bayesmtor.vocabulary import RE_METHODS, z_quantile

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from bayesmtor.frequentist.results import PoolResult
    from bayesmtor.studies import StudyData

__all__ = [
    "PLOT_SUFFIXES",
    "bayesian_line",
    "check_plot_path",
    "write_forest",
    "heterogeneity_line",
    "overall_effect_line",
    "result_forest",
    "result_funnel",
    "subgroup_forest",
    "subgroup_differences_line",
    "write_subgroup_forest",
]

#: File suffixes of ``bayesmtor pool --plot``, and the format each one writes.
PLOT_SUFFIXES = {".png": "png", ".svg": "svg"}

_MODEL = {"FE": "fixed effect, inverse variance", "MH": "Mantel-Haenszel, fixed effect"}
_MODEL["PETO"] = "Peto, fixed effect"


def p_text(p: float) -> str:
    """A p-value as RevMan 5 prints it: ``P < 0.00001``, ``P = 0.0003``, ``P = 0.28``."""
    if not math.isfinite(p):
        return "P = NA"
    if p < 0.00001:
        return "P < 0.00001"
    if p >= 0.01:
        return f"P = {p:.2f}"
    rounded = float(f"{p:.1g}")  # one significant digit below 0.01, as RevMan
    return f"P = {rounded:.{-math.floor(math.log10(rounded))}f}"


def _prob_text(p: float) -> str:
    """A posterior probability to two decimals: ``= 0.98``, ``> 0.99``, ``< 0.01``."""
    if p > 0.995:
        return "> 0.99"
    if p < 0.005:
        return "< 0.01"
    return f"= {p:.2f}"


def bayesian_line(
    prior: str,
    tau: tuple[float, float, float],
    p_below: float,
    measure: str,
    benefit: str | None = None,
) -> str:
    """``Bayesian (τ ~ prior): τ = median [low, high]; P(HR < 1) = 0.98``: tau's posterior
    median and interval, and the posterior probability that the pooled effect lies on the side
    of the null that favours the treatment (``benefit``, default
    ``config.defaults["forest_benefit"]``). ``p_below`` is P(mu < 0) on the analysis scale."""
    from bayesmtor.reporting.figures import _measure

    meas = _measure(measure, "bayesian_line")
    side = config.get("forest_benefit", benefit)
    null = "1" if meas.is_ratio else "0"
    p = p_below if side == "lower" else 1.0 - p_below
    sign = "<" if side == "lower" else ">"
    med, lo, hi = (float(v) for v in tau)
    return (
        f"Bayesian (τ ~ {prior}): τ = {med:.2f} [{lo:.2f}, {hi:.2f}]; "
        f"P({meas.code} {sign} {null}) {_prob_text(p)}"
    )


def heterogeneity_line(result: PoolResult) -> str:
    """``Heterogeneity: Tau² = ..; Chi² = .., df = .. (P = ..); I² = ..%`` of a fit with at
    least two studies (``""`` otherwise). Tau² appears for random-effects methods only."""
    if result.k < 2 or not math.isfinite(result.Q):
        return ""
    parts = []
    if result.method in RE_METHODS and math.isfinite(result.tau2):
        tau2 = result.tau2
        parts.append(f"Tau² = {tau2:.3f}" if 0 < tau2 < 0.01 else f"Tau² = {tau2:.2f}")
    parts.append(f"Chi² = {result.Q:.2f}, df = {result.Q_df:.0f} ({p_text(result.Q_pval)})")
    if math.isfinite(result.I2):
        parts.append(f"I² = {result.I2:.0f}%")
    return "Heterogeneity: " + "; ".join(parts)


def overall_effect_line(result: PoolResult) -> str:
    """``Test for overall effect: Z = .. (P = ..)`` (``t = .., df = ..`` for t-based tests)."""
    if not math.isfinite(result.stat):
        return ""
    stat = abs(result.stat)
    if result.test == "z":
        return f"Test for overall effect: Z = {stat:.2f} ({p_text(result.pval)})"
    return (
        f"Test for overall effect: t = {stat:.2f}, df = {result.stat_df:.0f} "
        f"({p_text(result.pval)})"
    )


def _study_rows(data: StudyData, z: float, weights: Any = None) -> list[dict[str, Any]]:
    """One ``observed`` row per study (not estimable where it was not pooled)."""
    w = weights if weights is not None else data.weights
    rows = []
    for i, label in enumerate(data.labels):
        ok = data.included[i] and math.isfinite(data.yi[i]) and math.isfinite(data.sei[i])
        yi, se = data.yi[i], data.sei[i]
        row = {
            "label": label,
            "kind": "observed",
            "estimate": yi if ok else np.nan,
            "low": yi - z * se if ok else np.nan,
            "high": yi + z * se if ok else np.nan,
            "weight": float(w[i]) if w is not None else np.nan,
        }
        if data.counts is not None:
            row.update(
                zip(("events_trt", "n_trt", "events_ctl", "n_ctl"), data.counts[i], strict=True)
            )
        rows.append(row)
    return rows


def _pooled_row(label: str, kind: str, est: float, lo: float, hi: float, w: float = np.nan) -> dict:
    return {"label": label, "kind": kind, "estimate": est, "low": lo, "high": hi, "weight": w}


def _freq_rows(r: PoolResult) -> tuple[list[dict[str, Any]], list[str]]:
    """The pooled and prediction rows of a frequentist fit and its two footnotes."""
    if r.k < 2:
        return [], []
    pct = f"{100 * r.ci_prob:g}%"
    model = _MODEL.get(r.method, f"random effects, {r.method}")
    rows = [
        _pooled_row(
            f"Total ({pct} CI), {model}", "pooled_freq", r.estimate, r.ci_low, r.ci_high, 100.0
        )
    ]
    if math.isfinite(r.pi_low) and math.isfinite(r.pi_high):
        rows.append(
            _pooled_row(
                f"Prediction interval ({pct}), {r.method}",
                "predictive",
                r.estimate,
                r.pi_low,
                r.pi_high,
            )
        )
    notes = [n for n in (heterogeneity_line(r), overall_effect_line(r)) if n]
    return rows, notes


def _weight_label(r: PoolResult) -> str:
    return {"FE": "IV, fixed", "PETO": "Peto"}.get(r.method, r.method)


def _check_data(result: Any, what: str) -> StudyData:
    data = getattr(result, "data", None)
    if data is None:
        raise InputError(
            f"this result carries no study data, so it cannot draw its {what}; results of "
            "bm.rma, bm.rma_mh, bm.rma_peto, bm.bayesmeta and bayesmtor.frequentist."
            "meta_analysis carry them (the per-group fits of a table do not)",
            column="data",
        )
    return data


def _measure_of(result: Any) -> str:
    m = getattr(result, "measure", None)
    return "generic" if m is None else str(m)


def result_forest(
    result: Any,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    treatment: str = "treatment",
    control: str = "control",
    benefit: str | None = None,
    frequentist: Any = True,
    shrunken: bool = True,
) -> Axes:
    """Forest plot of a :class:`~bayesmtor.frequentist.PoolResult` or a
    :class:`~bayesmtor.api.BayesMetaResult` (see their ``plot_forest`` methods).

    A fit of one study draws that study alone: no pooled diamond and no prediction row.
    """
    from bayesmtor.reporting.forest import favours_labels, forest_plot

    data = _check_data(result, "forest plot")
    favours = favours_labels(treatment, control, benefit)
    arms = (treatment[:1].upper() + treatment[1:], control[:1].upper() + control[1:])
    measure = _measure_of(result)
    if hasattr(result, "posterior"):
        rows, notes, freq = _bayes_rows(result, data, benefit, frequentist, shrunken)
        weight_label = _weight_label(freq) if freq is not None else None
        ci = float(config.get("ci_prob"))
    else:
        ci = result.ci_prob
        rows = _study_rows(data, z_quantile(ci))
        pooled, notes = _freq_rows(result)
        rows += pooled
        weight_label = _weight_label(result)
        if result.k < 2:
            notes = ["One study: no pooled estimate"]
    return forest_plot(
        pd.DataFrame(rows),
        measure=measure,
        ax=ax,
        title=title,
        ci_prob=ci,
        footnotes=notes,
        favours=favours,
        arms=arms,
        weight_label=weight_label,
    )


def subgroup_differences_line(result: Any) -> str:
    """``Test for subgroup differences: Chi² = .., df = .. (P = ..), I² = ..%`` of a
    :class:`~bayesmtor.frequentist.SubgroupResult` (``""`` without two estimable subgroups);
    I² = (Q - df) / Q of the between-subgroup Q, as RevMan 5 prints it."""
    q, df, p = result.Q_between, result.Q_between_df, result.Q_between_pval
    if not (math.isfinite(q) and math.isfinite(df)):
        return ""
    i2 = max(0.0, (q - df) / q) * 100.0 if q > 0 else 0.0
    return f"Test for subgroup differences: Chi² = {q:.2f}, df = {df:.0f} ({p_text(p)}), I² = {i2:.1f}%"


def subgroup_forest(
    data: Any,
    by: str,
    *,
    measure: str | None = None,
    method: str = "REML",
    test: str = "z",
    ci_prob: float | None = None,
    mh_correction: str = "revman",
    pi: str | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    treatment: str = "treatment",
    control: str = "control",
    benefit: str | None = None,
) -> Axes:
    """Forest plot of a subgroup analysis, RevMan style: under each subgroup's heading its
    studies, its subtotal diamond and its heterogeneity and overall-effect lines; then the
    overall fit of all studies, and the test for subgroup differences
    (:func:`bayesmtor.frequentist.subgroup_analysis`).

    Each subgroup is its own fit (its own tau²), so the weights shown are percentages within
    the subgroup (each subgroup's studies sum to 100%); the overall row is the fit of all
    studies together. Subgroups are listed sorted by their label as text.

    Parameters
    ----------
    data : EffectSizes, MetaInput or pandas.DataFrame
        The studies, with the subgroup column ``by``.
    by : str
        The subgroup column.
    measure, method, test, ci_prob, mh_correction, pi
        As in :func:`bayesmtor.frequentist.meta_analysis`.
    ax, title, treatment, control, benefit
        As in :func:`result_forest`.
    """
    from bayesmtor import frequentist
    from bayesmtor.reporting.forest import favours_labels, forest_plot

    fit = {"measure": measure, "method": method, "test": test, "ci_prob": ci_prob,
           "mh_correction": mh_correction, "pi": pi}  # fmt: skip
    with warnings.catch_warnings():  # as the fits of pool --subgroup, which said them
        warnings.simplefilter("ignore", NotEstimableWarning)
        sub = frequentist.subgroup_analysis(data, by=by, **fit)
    overall = frequentist.meta_analysis(data, **fit)
    columns = getattr(data, "columns", None)
    column = columns[by] if isinstance(columns, dict) else data[by].to_numpy()
    levels = np.array([str(v) for v in np.asarray(column).tolist()], dtype=object)
    ci = overall.ci_prob
    z = z_quantile(ci)
    pct = f"{100 * ci:g}%"
    rows: list[dict[str, Any]] = []
    for level in sub.groups:
        with warnings.catch_warnings():  # the subgroup fits warned in subgroup_analysis
            warnings.simplefilter("ignore", NotEstimableWarning)
            part = frequentist.meta_analysis(_subset(data, levels == level), **fit)
        rows.append(_pooled_row(f"{by}: {level}", "heading", np.nan, np.nan, np.nan))
        part_data = _check_data(part, "forest plot")
        rows += _study_rows(part_data, z)
        if part.k >= 2:
            rows.append(_pooled_row(f"Subtotal ({pct} CI)", "subtotal", part.estimate,
                                    part.ci_low, part.ci_high))  # fmt: skip
        for note in (heterogeneity_line(part), overall_effect_line(part)):
            if note:
                rows.append(_pooled_row(note, "note", np.nan, np.nan, np.nan))
    pooled, notes = _freq_rows(overall)
    for row in pooled:
        row["weight"] = np.nan  # the study weights are within subgroups
    rows += pooled
    notes = [*notes, subgroup_differences_line(sub)]
    arms = (treatment[:1].upper() + treatment[1:], control[:1].upper() + control[1:])
    return forest_plot(
        pd.DataFrame(rows),
        measure=overall.measure,
        ax=ax,
        title=title,
        ci_prob=ci,
        footnotes=[n for n in notes if n],
        favours=favours_labels(treatment, control, benefit),
        arms=arms,
        weight_label=f"{_weight_label(overall)}, within subgroup",
    )


def _subset(data: Any, keep: np.ndarray) -> Any:
    """The rows ``keep`` of an EffectSizes, a MetaInput or a DataFrame, as the same kind."""
    import dataclasses

    columns = getattr(data, "columns", None)
    if not isinstance(columns, dict):
        return data[keep].reset_index(drop=True)
    part = {name: np.asarray(col)[keep] for name, col in columns.items()}
    if hasattr(data, "dropped"):  # EffectSizes: its exclusions among the rows kept
        cols = (part["study"].tolist(), part["exclusion_reason"].tolist(), part["included"])
        rows = zip(*cols, strict=True)
        dropped = tuple((str(s), str(r)) for s, r, inc in rows if not inc)
        return dataclasses.replace(data, columns=part, dropped=dropped)
    lines = None if data.lines is None else data.lines[keep]
    return dataclasses.replace(data, columns=part, lines=lines)


def _companion(result: Any, data: StudyData, frequentist: Any) -> Any:
    """The frequentist fit drawn beside a Bayesian one (``None`` for none)."""
    if frequentist is False or frequentist is None:
        return None
    if frequentist is not True:
        if not hasattr(frequentist, "method") or not hasattr(frequentist, "estimate"):
            raise InputError(
                "frequentist must be True, False or a PoolResult (bm.rma, bm.rma_mh, ...), "
                f"not {type(frequentist).__name__}",
                column="frequentist",
            )
        return frequentist
    from bayesmtor.frequentist.api import rma

    inc = np.asarray(data.included, dtype=bool)
    if inc.sum() < 2:
        return None
    y, s = np.asarray(data.yi)[inc], np.asarray(data.sei)[inc]
    labels = [lab for lab, k in zip(data.labels, inc, strict=True) if k]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rma(
            y,
            sei=s,
            method=config.get("forest_method"),
            measure=_measure_of(result),
            studies=labels,
        )


def _companion_weights(data: StudyData, freq: Any) -> list[float] | None:
    """The frequentist weights placed at the studies of ``data`` (matched by label)."""
    fd = getattr(freq, "data", None)
    if fd is None or fd.weights is None:
        return None
    by_label = {
        lab: w for lab, w, inc in zip(fd.labels, fd.weights, fd.included, strict=True) if inc
    }
    return [
        float(by_label.get(lab, np.nan)) if inc else np.nan
        for lab, inc in zip(data.labels, data.included, strict=True)
    ]


def _bayes_summary(result: Any, ci: float) -> tuple[pd.DataFrame, pd.DataFrame | None, float, str]:
    """Posterior summary, shrunken study estimates, P(mu < 0) and the tau prior's label."""
    post = result.posterior
    summ = result.summary(ci_prob=ci)
    if result.engine == "exact":
        shr = post.theta_summary(ci)
        p_below = float(post.p_mu_below(0.0))
        prior = post.tau_prior.label or repr(post.tau_prior)
    else:
        theta = post.idata.posterior["theta"]
        draws = np.asarray(theta.values, dtype=float).reshape(-1, theta.shape[-1])
        q = np.quantile(draws, [0.5, (1 - ci) / 2, (1 + ci) / 2], axis=0)
        shr = pd.DataFrame(
            {"study": list(post.labels), "median": q[0], "q_low": q[1], "q_high": q[2]}
        )
        p_below = float(np.mean(np.asarray(post.idata.posterior["mu"].values) < 0.0))
        prior = str(post.priors.get("tau", "tau prior"))
    return summ, shr, p_below, prior


def _bayes_rows(
    result: Any, data: StudyData, benefit: str | None, frequentist: Any, shrunken: bool
) -> tuple[list[dict[str, Any]], list[str], Any]:
    """Study, shrunken, pooled and predictive rows of a Bayesian fit, and its footnotes."""
    from bayesmtor.reporting.figures import _measure

    ci = float(config.get("ci_prob"))
    pct = f"{100 * ci:g}%"
    freq = _companion(result, data, frequentist)
    rows = _study_rows(
        data, z_quantile(ci), _companion_weights(data, freq) if freq is not None else None
    )
    summ, shr, p_below, prior = _bayes_summary(result, ci)
    meas = _measure(_measure_of(result), "plot_forest")
    mu, tau, new = summ.loc["mu"], summ.loc["tau"], summ.loc["theta_new"]
    est = f"{meas.fmt(float(meas.to_display(mu['median'])))} [{meas.fmt(float(meas.to_display(mu['q_low'])))}, {meas.fmt(float(meas.to_display(mu['q_high'])))}]"
    if result.k < 2:
        note = f"One study: no pooled estimate. Bayesian posterior of the effect, {meas.code} {est} ({pct} CrI), τ from its prior ({prior})"
        return rows, [note], freq
    if shrunken and shr is not None:
        out: list[dict[str, Any]] = []
        by_label = {str(r.study): r for r in shr.itertuples(index=False)}
        for row in rows:
            out.append(row)
            s = by_label.get(str(row["label"]))
            if s is not None and math.isfinite(row["estimate"]):
                out.append(
                    {
                        "label": row["label"],
                        "kind": "shrunken",
                        "estimate": s.median,
                        "low": s.q_low,
                        "high": s.q_high,
                        "weight": np.nan,
                    }
                )
        rows = out
    rows.append(
        _pooled_row(
            f"Pooled, Bayesian ({pct} CrI)", "pooled_bayes", mu["median"], mu["q_low"], mu["q_high"]
        )
    )
    notes: list[str] = []
    freq_rows, freq_notes = _freq_rows(freq) if freq is not None else ([], [])
    rows += [r for r in freq_rows if r["kind"] == "pooled_freq"]
    rows.append(
        _pooled_row(
            f"Prediction, new study (Bayesian, {pct})",
            "predictive",
            new["median"],
            new["q_low"],
            new["q_high"],
        )
    )
    notes.append(
        bayesian_line(
            prior, (tau["median"], tau["q_low"], tau["q_high"]), p_below, meas.code, benefit
        )
    )
    notes += freq_notes
    return rows, notes, freq


def result_funnel(result: Any, *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Contour-enhanced funnel plot of the pooled studies of a result, centred on its pooled
    estimate (the posterior median of mu for a Bayesian fit)."""
    from bayesmtor.reporting.figures import funnel_plot

    data = _check_data(result, "funnel plot")
    inc = np.asarray(data.included, dtype=bool)
    yi, sei = np.asarray(data.yi)[inc], np.asarray(data.sei)[inc]
    labels = [lab for lab, k in zip(data.labels, inc, strict=True) if k]
    if hasattr(result, "posterior"):
        centre = float(result.summary().loc["mu", "median"])
        ci = None
    else:
        centre, ci = result.estimate, result.ci_prob
    ax = funnel_plot(
        yi, sei, estimate=centre, measure=_measure_of(result), ax=ax, labels=labels, ci_prob=ci
    )
    if title is not None:
        ax.set_title(title)
    return ax


def check_plot_path(path: str) -> str:
    """The format of a forest-plot file from its suffix (``.png`` or ``.svg``, any case).

    Raises
    ------
    bayesmtor.errors.OutputError
        Another suffix, or no file name.
    """
    from pathlib import Path

    from bayesmtor.errors import OutputError

    target = Path(path)
    if not str(path).strip() or not target.name or str(path).endswith(("/", "\\")):
        raise OutputError(f"--plot needs a file name ending in .png or .svg, got {str(path)!r}")
    fmt = PLOT_SUFFIXES.get(target.suffix.lower())
    if fmt is None:
        raise OutputError(
            f"--plot '{path}': unknown suffix {target.suffix or '(none)'!r}; the forest plot is "
            "written as PNG (.png) or SVG (.svg), chosen by the suffix"
        )
    if target.is_dir():
        raise OutputError(f"--plot '{path}' is a folder; give a file name ending in .png or .svg")
    return fmt


def write_forest(path: str, result: Any, *, title: str | None = None) -> Any:
    """Draw ``result.plot_forest(title=title)`` and write it to ``path`` atomically (a
    temporary file in the same folder, then renamed: a reader never sees half a file, and an
    existing file is replaced only by a complete one), as PNG or SVG by the suffix.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    return _write_figure(path, lambda: result.plot_forest(title=title))


def write_subgroup_forest(path: str, data: Any, by: str, **options: Any) -> Any:
    """:func:`subgroup_forest` of ``data`` by ``by`` (``options`` as there) written to ``path``
    as :func:`write_forest` writes; returns the file written."""
    return _write_figure(path, lambda: subgroup_forest(data, by, **options))


def _write_figure(path: str, draw: Any) -> Any:
    """The figure of the Axes ``draw()`` returns, written atomically to ``path`` as PNG or SVG
    by its suffix (checked before anything is drawn)."""
    from pathlib import Path

    from bayesmtor.reporting.atomic import atomic_write_bytes
    from bayesmtor.reporting.figures import figure_bytes

    fmt = check_plot_path(path)
    ax = draw()
    return atomic_write_bytes(Path(path), figure_bytes(ax.figure, formats=(fmt,))[fmt])
