"""Single analyses from arrays: ``rma``, ``rma_mh``, ``rma_peto`` and ``egger_test``.

Also the argument checks, padding and warnings shared with :mod:`bayesmtor.frequentist.analyses`.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import fields
from typing import Any

import numpy as np

from bayesmtor import _special as special
from bayesmtor import config
from bayesmtor._frames import is_frame
from bayesmtor.effects import EffectSizes, double_zero_reason, escalc
from bayesmtor.errors import (
    DegenerateIntervalWarning,
    EstimationError,
    InputError,
    NotEstimableWarning,
)
from bayesmtor.frequentist._core import _core_iv, _core_mh, _core_peto
from bayesmtor.frequentist.results import EggerResult, PoolResult
from bayesmtor.inputs import MetaInput, read_meta_data
from bayesmtor.studies import StudyData
from bayesmtor.validation import check_safe_range
from bayesmtor.vocabulary import (
    COUNT_MEASURES,
    COUNT_METHODS,
    MEASURES,
    METHODS,
    PI_DISTS,
    RE_METHODS,
    TESTS,
    check_prob,
)

# --------------------------------------------------------------------------------------------
# argument checking and padding
# --------------------------------------------------------------------------------------------


def _check_method(method: str) -> str:
    m = str(method).upper()
    if m not in METHODS:
        raise InputError(
            f"unknown method '{method}'; use one of {', '.join(METHODS)}", column="method"
        )
    return m


def _check_measure(measure: str) -> str:
    for known in MEASURES:
        if str(measure).lower() == known.lower():
            return known
    raise InputError(
        f"unknown measure '{measure}'; use one of {', '.join(MEASURES)}", column="measure"
    )


def _check_test(test: str) -> str:
    t = str(test).lower()
    if t not in TESTS:
        raise InputError(f"unknown test '{test}'; use 'z', 't' or 'knha' (HKSJ)", column="test")
    return t


def _ci_prob(ci_prob: float | None) -> float:
    return check_prob(config.get("ci_prob", ci_prob), "ci_prob")


def _pi_dist(pi: str | None) -> str:
    """The prediction-interval distribution: ``pi`` or the configured default."""
    value = config.get("pi_dist", pi)
    if value not in PI_DISTS:
        raise InputError(
            f"unknown prediction-interval distribution '{pi}'; use 't' (t on k-2 df) or 'z' "
            "(normal, as metafor predict())",
            column="pi",
        )
    return value


def _as_1d(x: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"'{name}' must be numeric", column=name) from None
    if name in ("sei", "vi") and np.any(arr[np.isfinite(arr)] < 0):  # squaring would hide it
        i = int(np.flatnonzero(np.isfinite(arr) & (arr < 0))[0])
        raise InputError(f"negative value {arr[i]:g}; '{name}' must be > 0", row=i + 1, column=name)
    return arr


def _pad(values: np.ndarray, codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Scatter 1-D ``values`` into an (n_groups, kmax) array by group code (stable order)."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    counts = np.bincount(codes, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(codes.size) - starts[sorted_codes]
    kmax = int(counts.max()) if counts.size else 0
    out = np.zeros((n_groups, max(kmax, 1)))
    mask = np.zeros((n_groups, max(kmax, 1)), dtype=bool)
    out[sorted_codes, pos] = values[order]
    mask[sorted_codes, pos] = True
    return out, mask


def _warn_undefined(
    out: dict[str, np.ndarray], method: str, label: str = "", pi: str = "t"
) -> None:
    where = f" ({label})" if label else ""
    k = out["k"]
    if method in RE_METHODS and np.any(k < 2):
        warnings.warn(
            f"tau^2 is not estimable with k = 0 or k = 1{where}; reported as missing",
            NotEstimableWarning,
            stacklevel=3,
        )
    k_pi = 2 if pi == "z" else 3
    if method in RE_METHODS and np.any(k < k_pi):
        warnings.warn(
            f"the prediction interval with pi='{pi}' needs k >= {k_pi}{where} (pi='z', "
            "metafor's predict(), needs k >= 2); reported as missing",
            NotEstimableWarning,
            stacklevel=3,
        )
    missing = ~np.isfinite(out["estimate"])
    if np.any(missing & (k == 0)):
        warnings.warn(
            f"the pooled estimate is not estimable{where} (k = 0: no study can be pooled); "
            "reported as missing",
            NotEstimableWarning,
            stacklevel=3,
        )
    if np.any(missing & (k > 0)):
        why = (
            "no events (or only events) in one arm of every study"
            if method in COUNT_METHODS
            else "its weights are not finite"
        )
        warnings.warn(
            f"the pooled estimate is not estimable{where} ({why}); reported as missing",
            NotEstimableWarning,
            stacklevel=3,
        )
    if np.any(out.get("hksj_degenerate", False)):
        warnings.warn(
            f"HKSJ scale factor is 0{where}: the studies' estimates are identical (weighted "
            "residual sum of squares <= 2.2e-16), so the HKSJ interval has zero width and "
            "p = 0 (as metafor reports it). Zero width reflects no observed spread, not "
            "certainty; the z interval (without HKSJ) is more sensible for these data",
            DegenerateIntervalWarning,
            stacklevel=3,
        )


def _result_from_row(
    out, i, *, measure, method, test, ci_prob, studies=(), excluded=(), pi_dist=None
):
    vals = {}
    for f in fields(PoolResult):
        if f.name in out:
            x = out[f.name][i]
            vals[f.name] = int(x) if f.name == "k" else float(x)
    return PoolResult(
        measure=measure,
        method=method,
        test=test,
        ci_prob=ci_prob,
        pi_dist=pi_dist if method in RE_METHODS else None,
        studies=tuple(studies),
        excluded=tuple(excluded),
        **vals,
    )


def _single_result(out, keep, labels, excluded, **fit: Any) -> PoolResult:
    """The one fit in ``out`` as a result; its studies are the ``labels`` where ``keep``.

    ``fit``: the ``measure``, ``method``, ``test``, ``ci_prob`` (and ``pi_dist``) of
    :func:`_result_from_row`.
    """
    kept = [labels[i] for i in np.flatnonzero(keep)]
    return _result_from_row(out, 0, studies=kept, excluded=excluded, **fit)


# --------------------------------------------------------------------------------------------
# public API: single analyses
# --------------------------------------------------------------------------------------------


def rma(
    yi: Any,
    sei: Any = None,
    vi: Any = None,
    *,
    method: str = "REML",
    test: str = "z",
    ci_prob: float | None = None,
    measure: str | None = None,
    studies: Any = None,
    pi: str | None = None,
    mods: Any = None,
    intercept: bool = True,
) -> PoolResult | Any:
    """Inverse-variance meta-analysis, as metafor ``rma``; with ``mods``, a meta-regression.

    Parameters
    ----------
    yi : array-like or EffectSizes
        Study estimates (log scale for ratios); NaN marks a missing value and excludes the
        study. Or an :class:`~bayesmtor.effects.EffectSizes` (as metafor's ``rma`` takes an
        ``escalc`` object): its ``yi``/``vi``, study labels, measure and exclusion reasons are
        used, and ``sei``, ``vi`` and ``studies`` must not be given.
    sei, vi : array-like, optional
        Standard errors or sampling variances (exactly one of them); NaN is missing. Every
        study not missing must lie in the safe range of :mod:`bayesmtor.validation`
        (``|yi| <= 1e50``, ``1e-50 <= sei <= 1e50``), else :class:`InputError` names it.
        Inside the range the fit is scale-equivariant and free of overflow.
    method : str
        ``"FE"`` or a tau^2 estimator: ``"DL"``, ``"REML"``, ``"PM"``, ``"ML"``, ``"SJ"``,
        ``"HE"``, ``"HS"`` (Hunter-Schmidt, ``max(0, (Q - k) / sum w)``) or ``"EB"`` (Morris'
        empirical Bayes, which equals ``"PM"`` without moderators).
    test : str
        ``"z"`` (default), ``"t"`` (t on k-1 df) or ``"knha"`` (Hartung-Knapp-Sidik-Jonkman).
        When all estimates are equal the HKSJ scale factor is 0 (as in metafor): the interval
        has zero width and a :class:`~bayesmtor.errors.DegenerateIntervalWarning` says so.
    ci_prob : float, optional
        Interval probability (default from :mod:`bayesmtor.config`).
    measure : str, optional
        Label of the effect measure (``"RR"``, ``"OR"``, ``"HR"``, ``"RD"`` or ``"generic"``);
        default the measure of an ``EffectSizes``, else ``"generic"``.
    studies : sequence of str, optional
        Study labels, kept in the result.
    pi : {"t", "z"}, optional
        Prediction interval: ``"t"``, t on k-2 df (Cochrane Handbook; k >= 3), or ``"z"``,
        ``estimate +/- z sqrt(se^2 + tau2)`` as metafor ``predict()`` (k >= 2). Default
        ``config.defaults["pi_dist"]`` (``"t"``).
    mods : list of str, str, DataFrame or array, optional
        Moderators of a meta-regression (metafor's ``mods``): column names of the study table
        of an ``EffectSizes`` (coded as R's ``model.matrix``, see :mod:`bayesmtor.design`), or an
        explicit design matrix with one row per included study (with array data, only this).
        Methods FE, DL, ML, REML; tests z or knha. Returns a
        :class:`~bayesmtor.frequentist.regression.RegressionResult`.
    intercept : bool
        With ``mods`` given as column names: include the intercept ``intrcpt`` (default).

    Returns
    -------
    PoolResult
        With the Q-profile intervals of tau2, tau, I2 and H2 (``result.confint()``) and, for
        ML and REML, ``tau2_se``. With ``mods``, a ``RegressionResult``.
    """
    if mods is not None:
        if pi is not None:
            raise InputError("'pi' is not available for a meta-regression (mods)", column="pi")
        return _regression(yi, sei, vi, mods, intercept, method, test, ci_prob, measure, studies)
    if isinstance(yi, EffectSizes):
        if sei is not None or vi is not None or studies is not None:
            raise InputError("give an EffectSizes alone, without 'sei', 'vi' or 'studies'")
        es = _check_es_measure(yi, measure)
        table = es.columns
        res = rma(
            np.where(np.asarray(table["included"], bool), np.asarray(table["yi"], float), np.nan),
            vi=np.asarray(table["vi"], float),
            method=method,
            test=test,
            ci_prob=ci_prob,
            measure=es.measure,
            studies=[str(s) for s in table["study"].tolist()],
            pi=pi,
        )
        return _with_data(_with_reasons(res, dict(es.dropped)), es)
    method = _check_method(method)
    if method in COUNT_METHODS:
        raise InputError(f"method '{method}' needs 2x2 counts; use rma_mh() or rma_peto()")
    measure = _check_measure("generic" if measure is None else measure)
    test = _check_test(test)
    p = _ci_prob(ci_prob)
    pi = _pi_dist(pi)
    y = _as_1d(yi, "yi")
    if (sei is None) == (vi is None):
        raise InputError("give exactly one of 'sei' and 'vi'", column="sei")
    se = np.sqrt(_as_1d(vi, "vi")) if vi is not None else _as_1d(sei, "sei")
    if se.shape != y.shape:
        raise InputError(f"'yi' has {y.size} values but the variances have {se.size}", column="vi")
    labels = _labels(studies, y.size)
    missing = np.isnan(y) | np.isnan(se)
    # a missing value excludes its study; any other value must lie in the safe range
    names = {"columns": ("yi", "vi"), "quantities": ("yi", "sqrt(vi)")} if vi is not None else {}
    check_safe_range(y, se, mask=~missing, studies=labels, **names)
    v = se**2
    excluded = [(labels[i], "missing estimate or variance") for i in np.flatnonzero(missing)]
    keep = ~missing
    if not keep.any():
        raise EstimationError("no study with both an estimate and a variance (k = 0)")
    out = _core_iv(
        y[keep][None, :], v[keep][None, :], np.ones((1, keep.sum()), bool), method, test, p, pi
    )
    _warn_undefined(out, method, pi=pi)
    res = _single_result(
        out, keep, labels, excluded, measure=measure, method=method, test=test, ci_prob=p,
        pi_dist=pi,
    )  # fmt: skip
    tau2 = res.tau2 if method in RE_METHODS and np.isfinite(res.tau2) else 0.0
    kind = "random effects" if method in RE_METHODS else "fixed effect"
    data = StudyData.from_arrays(
        y, se, labels, keep, ["" if k else "missing estimate or variance" for k in keep]
    ).with_weights(1.0 / (v[keep] + tau2), f"{method} (inverse variance, {kind})")
    return dataclasses.replace(res, data=data)


def _with_data(res: PoolResult, es: EffectSizes | None, share: float = 1.0) -> PoolResult:
    """``res`` carrying the studies of ``es`` (counts, labels, reasons) with its own weights;
    ``share``: the pooled studies' part of the fit's total weight (< 1 when a table outside
    them still enters the estimate), which scales their percentages."""
    if share != 1.0 and res.data is not None and res.data.weights is not None:
        pct = np.asarray(res.data.weights, dtype=float) * share
        res = dataclasses.replace(
            res, data=dataclasses.replace(res.data, weights=tuple(float(x) for x in pct))
        )
    if es is None or res.data is None:
        return res
    data = StudyData.from_effect_sizes(es)
    if data.included != res.data.included:  # a study escalc kept was not pooled
        data = dataclasses.replace(
            data, included=res.data.included, reasons=res.data.reasons, yi=res.data.yi
        )
    weights = dataclasses.replace(data, weights=res.data.weights, weights_of=res.data.weights_of)
    return dataclasses.replace(res, data=weights)


def _count_data(labels, cells, keep, excluded, weights, measure: str, of: str) -> StudyData:
    """Study data of an MH or Peto fit from its cells ``(a, b, c, d)`` and weights; each
    study's own effect follows escalc (1/2 added to the cells of a zero-cell table)."""
    from bayesmtor import effects

    a, b, c, d = cells
    func = {"RR": effects.log_rr, "OR": effects.log_or, "RD": effects.risk_difference}[measure]
    with np.errstate(divide="ignore", invalid="ignore"):
        yi, vi = func(a, a + b, c, c + d, drop00=False)
    yi, sei = np.where(keep, yi, np.nan), np.where(keep, np.sqrt(vi), np.nan)
    reasons = dict(excluded)
    data = StudyData(
        labels=tuple(labels),
        yi=tuple(float(x) for x in yi),
        sei=tuple(float(x) for x in sei),
        included=tuple(bool(x) for x in keep),
        reasons=tuple(
            "" if k else str(reasons.get(lab, "excluded"))
            for lab, k in zip(labels, keep, strict=True)
        ),
        counts=tuple(
            (float(w), float(w + x), float(y), float(y + z))
            for w, x, y, z in zip(a, b, c, d, strict=True)
        ),
    )
    return data.with_weights(weights, of)


def _mh_weights(a, b, c, d, measure: str, correction: str) -> np.ndarray:
    """Mantel-Haenszel weights of the pooled tables (metafor ``weights.rma.mh``), on the cells
    the MH estimate uses (1/2 added to zero-cell tables under the RevMan rule)."""
    if correction == "revman" and measure in ("RR", "OR"):
        from bayesmtor import effects

        cells = effects.continuity_correction(a, a + b, c, c + d, to="only0", drop00=False)
        a, b, c, d = cells.ai, cells.bi, cells.ci, cells.di
    n1, n2 = a + b, c + d
    big_n = n1 + n2
    if measure == "RR":
        return c * n1 / big_n
    if measure == "OR":
        return b * c / big_n
    return n1 * n2 / big_n


def _peto_weights(a, b, c, d) -> np.ndarray:
    """Peto weights: the hypergeometric variance of the treatment-arm events."""
    n1, n2 = a + b, c + d
    big_n = n1 + n2
    return (a + c) * (b + d) * (n1 / big_n) * (n2 / big_n) / (big_n - 1.0)


def _regression(yi, sei, vi, mods, intercept, method, test, ci_prob, measure, studies):
    """``rma(..., mods=...)``: the meta-regression of effect sizes or of arrays."""
    from bayesmtor.design import explicit_design
    from bayesmtor.frequentist.regression import fit_regression, rma_regression

    if isinstance(yi, EffectSizes):
        if sei is not None or vi is not None or studies is not None:
            raise InputError("give an EffectSizes alone, without 'sei', 'vi' or 'studies'")
        return rma_regression(
            _check_es_measure(yi, measure), mods, intercept=intercept, method=method, test=test,
            ci_prob=ci_prob,
        )  # fmt: skip
    if isinstance(mods, str) or (
        isinstance(mods, (list, tuple)) and all(isinstance(m, str) for m in mods)
    ):
        raise InputError(
            "moderator names need a study table: give an EffectSizes (bm.escalc) as data, or an "
            "explicit design matrix as 'mods'",
            column="mods",
        )
    y = _as_1d(yi, "yi")
    if (sei is None) == (vi is None):
        raise InputError("give exactly one of 'sei' and 'vi'", column="sei")
    v = _as_1d(vi, "vi") if vi is not None else _as_1d(sei, "sei") ** 2
    check_safe_range(y, np.sqrt(v))
    return fit_regression(
        y, v, explicit_design(mods), method=method, test=test, ci_prob=_ci_prob(ci_prob),
        measure=_check_measure("generic" if measure is None else measure),
        studies=_labels(studies, y.size),
    )  # fmt: skip


def _with_reasons(res: PoolResult, reasons: dict[str, str]) -> PoolResult:
    """``res`` with the exclusion reasons given by ``escalc()`` where it gave one."""
    if not reasons:
        return res
    excluded = tuple((st, reasons.get(st, why)) for st, why in res.excluded)
    return dataclasses.replace(res, excluded=excluded)


def _check_es_measure(es: EffectSizes, measure: str | None) -> EffectSizes:
    if measure is not None and _check_measure(measure) != es.measure:
        raise InputError(
            f"measure '{measure}' differs from the effect sizes' measure '{es.measure}'",
            column="measure",
        )
    return es


def _effect_sizes(data: Any, measure: str | None, by: Any = ()) -> EffectSizes:
    """``data`` (EffectSizes, MetaInput or DataFrame) as effect sizes: the one route, escalc."""
    if isinstance(data, EffectSizes):
        return _check_es_measure(data, measure)
    if is_frame(data):
        data = read_meta_data(data, by=tuple(by))
    if not isinstance(data, MetaInput):
        raise InputError(
            "'data' must be an EffectSizes, a MetaInput or a pandas DataFrame, not "
            f"{type(data).__name__}"
        )
    if measure is not None:
        measure = _check_measure(measure)
        if data.shape != "counts" and measure == "RD":
            raise InputError(
                f"measure 'RD' needs 2x2 counts (events_trt, n_trt, events_ctl, n_ctl); "
                f"{data.shape} data give a ratio: use HR, RR, OR or generic",
                column="measure",
            )
    return escalc(data, measure)


def _labels(studies: Any, n: int) -> list[str]:
    if studies is None:
        return [str(i + 1) for i in range(n)]
    labels = [str(s) for s in studies]
    if len(labels) != n:
        raise InputError(f"{len(labels)} study labels for {n} studies", column="study")
    return labels


def _counts(ai, n1i, ci, n2i):
    a, n1, c, n2 = (_as_1d(x, nm) for x, nm in ((ai, "ai"), (n1i, "n1i"), (ci, "ci"), (n2i, "n2i")))
    if not (a.shape == n1.shape == c.shape == n2.shape):
        raise InputError("ai, n1i, ci and n2i must have the same length")
    for arr, nm in ((a, "ai"), (n1, "n1i"), (c, "ci"), (n2, "n2i")):
        if np.any(arr[np.isfinite(arr)] < 0):
            raise InputError(f"'{nm}' has negative counts", column=nm)
    if np.any((a > n1) | (c > n2)):
        i = int(np.flatnonzero((a > n1) | (c > n2))[0])
        raise InputError(
            "more events than participants in an arm",
            row=i + 1,
            column="ai" if a[i] > n1[i] else "ci",
        )
    return a, n1 - a, c, n2 - c


def _count_mask(a, b, c, d, labels, measure="OR"):
    """Studies used by MH/Peto: finite counts and, for ratios, not double-zero.

    Double-zero tables (no events, or only events, in both arms) carry no information on a
    ratio and are dropped, with the reason :func:`bayesmtor.effects.escalc` gives; a risk
    difference of 0 is informative, so RD keeps them (RevMan).
    """
    finite = np.isfinite(a) & np.isfinite(b) & np.isfinite(c) & np.isfinite(d)
    dz = finite & (((a == 0) & (c == 0)) | ((b == 0) & (d == 0)))
    if measure == "RD":
        dz = np.zeros_like(dz)
    excluded = []
    for i in range(a.size):
        if not finite[i]:
            excluded.append((labels[i], "missing counts"))
        elif dz[i]:
            excluded.append((labels[i], double_zero_reason(a[i], c[i], measure)))
    return finite & ~dz, excluded


_MH_NOTE = "; its counts still enter the Mantel-Haenszel estimate (metafor rma.mh)"


def _mh_tables(a, b, c, d, labels, measure, correction):
    """Tables of the MH estimate and of Q/k for ``rma_mh``, and the excluded with reasons.

    ``"revman"``: double-zero tables are dropped from both (RevMan 5). ``"none"``: as metafor
    ``rma.mh()``, every table with finite counts enters the MH sums (a table with events in
    every participant of both arms contributes to the RR estimate), while the study-level
    yi/vi of Cochran's Q drop the double-zero tables (``drop00=TRUE``).
    """
    use, excluded = _count_mask(a, b, c, d, labels, measure)
    if correction != "none" or measure == "RD":
        return use, use, excluded
    est = np.isfinite(a) & np.isfinite(b) & np.isfinite(c) & np.isfinite(d)
    # _count_mask lists the tables not in ``use`` in file order
    # only a table with events in every participant of both arms moves the MH sums (of RR)
    moves = est & (measure == "RR") & (b == 0) & (d == 0)
    excluded = [
        (lab, why + _MH_NOTE if moves[i] else why)
        for i, (lab, why) in zip(np.flatnonzero(~use), excluded, strict=True)
    ]
    return est, use, excluded


def _count_arrays(ai, n1i, ci, n2i, measure, studies):
    """Cells ``(a, b, c, d)``, labels and escalc's reasons from counts or from data."""
    if isinstance(ai, (EffectSizes, MetaInput)) or is_frame(ai):
        if isinstance(ai, EffectSizes) and not ai.has_counts:
            raise InputError(f"Mantel-Haenszel and Peto need 2x2 counts, not {ai.measure} data")
        es = _effect_sizes(ai, measure)
        if studies is not None:
            raise InputError("give the data alone, without 'studies'")
        ai, n1i, ci, n2i = es.raw_counts()
        return (*_counts(ai, n1i, ci, n2i), [str(s) for s in es.columns["study"].tolist()], es)
    a, b, c, d = _counts(ai, n1i, ci, n2i)
    return a, b, c, d, _labels(studies, a.size), None


def rma_mh(
    ai: Any,
    n1i: Any = None,
    ci: Any = None,
    n2i: Any = None,
    *,
    measure: str | None = None,
    ci_prob: float | None = None,
    mh_correction: str = "revman",
    studies: Any = None,
) -> PoolResult:
    """Mantel-Haenszel fixed-effect meta-analysis of 2x2 tables, as metafor ``rma.mh``.

    Parameters
    ----------
    ai, n1i, ci, n2i : array-like
        Events and totals in the treatment (1) and control (2) arms. Or ``ai`` alone: an
        :class:`~bayesmtor.effects.EffectSizes` of counts, a ``MetaInput`` or a DataFrame of
        counts; the raw counts (before any continuity correction) are used.
    measure : {"RR", "OR", "RD"}, optional
        Default: the measure of an ``EffectSizes``, else ``"RR"``.
    ci_prob : float, optional
        Interval probability (default from :mod:`bayesmtor.config`).
    mh_correction : {"revman", "none"}
        ``"revman"``: add 1/2 to all cells of tables with a zero cell also inside the MH
        estimate, and drop tables without events (or without non-events) in both arms
        (RevMan 5); ``"none"``: raw counts, as metafor's ``rma.mh()`` default, which keeps
        every table in the MH sums (a table with events in every participant of both arms
        moves the RR estimate) and drops only the double-zero tables' study-level yi/vi from
        Q and ``k``.
    studies : sequence of str, optional
        Study labels for count arrays.

    Returns
    -------
    PoolResult
        Q is around the MH estimate with study yi/vi from 1/2 added to zero-cell tables.
    """
    if measure is None:
        measure = ai.measure if isinstance(ai, EffectSizes) else "RR"
    measure = _check_measure(measure)
    if measure not in COUNT_MEASURES:
        raise InputError(f"Mantel-Haenszel needs RR, OR or RD, not '{measure}'", column="measure")
    if mh_correction not in ("revman", "none"):
        raise InputError("mh_correction must be 'revman' or 'none'", column="mh_correction")
    p = _ci_prob(ci_prob)
    a, b, c, d, labels, es = _count_arrays(ai, n1i, ci, n2i, measure, studies)
    est, keep, excluded = _mh_tables(a, b, c, d, list(labels), measure, mh_correction)
    if not keep.any():
        raise EstimationError("no 2x2 table with events is left for Mantel-Haenszel (k = 0)")
    sel = [x[est][None, :] for x in (a, b, c, d)]
    out = _core_mh(
        *sel, np.ones_like(sel[0], bool), measure, mh_correction, p, qmask=keep[est][None, :]
    )
    _warn_undefined(out, "MH")
    res = _single_result(
        out, keep, labels, excluded, measure=measure, method="MH", test="z", ci_prob=p
    )
    if es is not None:
        # escalc's reason, plus the note of _mh_tables where the table stays in the MH sums
        noted = {st: why for st, why in excluded if why.endswith(_MH_NOTE)}
        reasons = {st: why + (_MH_NOTE if st in noted else "") for st, why in es.dropped}
        res = _with_reasons(res, reasons)
    # metafor's weights: of every table in the MH sums, shown for the studies pooled
    w = _mh_weights(*(x[est] for x in (a, b, c, d)), measure, mh_correction)
    shown = w[keep[est]]
    data = _count_data(labels, (a, b, c, d), keep, res.excluded, shown, measure, "MH")
    share = float(np.sum(shown) / np.sum(w)) if np.sum(w) > 0 else 1.0
    return _with_data(dataclasses.replace(res, data=data), es, share=share)


def rma_peto(
    ai: Any,
    n1i: Any = None,
    ci: Any = None,
    n2i: Any = None,
    *,
    ci_prob: float | None = None,
    studies: Any = None,
) -> PoolResult:
    """Peto one-step odds ratio (fixed effect), as metafor ``rma.peto``.

    Parameters
    ----------
    ai, n1i, ci, n2i : array-like
        Events and totals in the treatment (1) and control (2) arms, or ``ai`` alone: an
        :class:`~bayesmtor.effects.EffectSizes` of counts (measure OR), a ``MetaInput`` or a
        DataFrame of counts. Raw counts are used (no continuity correction is needed);
        double-zero tables are dropped.
    ci_prob : float, optional
        Interval probability (default from :mod:`bayesmtor.config`).
    studies : sequence of str, optional
        Study labels for count arrays.

    Returns
    -------
    PoolResult
    """
    p = _ci_prob(ci_prob)
    a, b, c, d, labels, es = _count_arrays(ai, n1i, ci, n2i, "OR", studies)
    keep, excluded = _count_mask(a, b, c, d, labels)
    if not keep.any():
        raise EstimationError("no 2x2 table with events is left for Peto's method (k = 0)")
    sel = [x[keep][None, :] for x in (a, b, c, d)]
    out = _core_peto(*sel, np.ones_like(sel[0], bool), p)
    _warn_undefined(out, "PETO")
    res = _single_result(
        out, keep, labels, excluded, measure="OR", method="PETO", test="z", ci_prob=p
    )
    res = res if es is None else _with_reasons(res, dict(es.dropped))
    w = _peto_weights(*(x[keep] for x in (a, b, c, d)))
    data = _count_data(labels, (a, b, c, d), keep, res.excluded, w, "OR", "Peto")
    return _with_data(dataclasses.replace(res, data=data), es)


def egger_test(
    yi: Any,
    sei: Any = None,
    vi: Any = None,
    ci_prob: float | None = None,
) -> EggerResult:
    """Egger's regression test for funnel-plot asymmetry.

    Same as metafor ``regtest(x, model="lm", predictor="sei")``: weighted least squares of
    ``yi`` on ``sei`` with weights ``1/vi`` and a multiplicative residual variance; the slope
    is tested with t on k-2 df.
    """
    p = _ci_prob(ci_prob)
    y = _as_1d(yi, "yi")
    if (sei is None) == (vi is None):
        raise InputError("give exactly one of 'sei' and 'vi'", column="sei")
    v = _as_1d(vi, "vi") if vi is not None else _as_1d(sei, "sei") ** 2
    ok = np.isfinite(y) & np.isfinite(v) & (v > 0)
    y, v = y[ok], v[ok]
    k = int(y.size)
    if k < 3:
        raise EstimationError(f"Egger's test needs at least 3 studies, got k = {k}")
    s = np.sqrt(v)
    w = 1.0 / v
    x = np.column_stack([np.ones(k), s])
    xtw = x.T * w
    cov_unscaled = np.linalg.inv(xtw @ x)
    beta = cov_unscaled @ (xtw @ y)
    resid = y - x @ beta
    df = k - 2
    sigma2 = float(np.sum(w * resid**2) / df)
    cov = cov_unscaled * sigma2
    se = np.sqrt(np.diag(cov))
    tval = float(beta[1] / se[1])
    crit = special.stdtrit(df, 0.5 + p / 2.0)
    return EggerResult(
        k=k,
        bias=float(beta[1]),
        bias_se=float(se[1]),
        tval=tval,
        df=df,
        pval=float(2.0 * special.stdtr(df, -abs(tval))),
        limit_estimate=float(beta[0]),
        limit_ci_low=float(beta[0] - crit * se[0]),
        limit_ci_high=float(beta[0] + crit * se[0]),
        ci_prob=p,
    )
