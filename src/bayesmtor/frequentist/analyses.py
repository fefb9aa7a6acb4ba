"""Whole tables: ``meta_analysis``, ``pool_groups``, ``subgroup_analysis``, ``leave_one_out``.

Data frames in the shapes of :mod:`bayesmtor.inputs` and ``EffectSizes`` objects of
:mod:`bayesmtor.effects`; every group of a table is pooled in one vectorised call.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from bayesmtor.errors import EstimationError, InputError, NotEstimableWarning
from bayesmtor.frequentist._core import FE_METHODS, _core_iv, _core_mh, _core_peto
from bayesmtor.frequentist.api import (
    _as_1d,
    _check_measure,
    _check_method,
    _check_test,
    _ci_prob,
    _count_mask,
    _counts,
    _pad,
    _result_from_row,
    _warn_undefined,
    rma,
)
from bayesmtor.frequentist.results import JSON_KEYS, PoolResult, SubgroupResult
from bayesmtor.inputs import group_codes
from bayesmtor.validation import check_safe_range

# --------------------------------------------------------------------------------------------
# data frames in the shapes of bayesmtor.inputs
# --------------------------------------------------------------------------------------------

_COUNT_COLS = ("events_trt", "n_trt", "events_ctl", "n_ctl")


def _frame_shape(frame: pd.DataFrame) -> str:
    cols = set(frame.columns)
    if set(_COUNT_COLS) <= cols:
        return "counts"
    if {"yi", "sei"} <= cols:
        return "log_se"
    if {"estimate", "ci_low", "ci_high"} <= cols:
        return "ratio_ci"
    raise InputError(
        "cannot tell the data shape: need columns events_trt, n_trt, events_ctl, n_ctl "
        "(counts), or yi, sei (log_se), or estimate, ci_low, ci_high (ratio_ci); found "
        + ", ".join(map(str, frame.columns))
    )


def _yi_vi_frame(frame: pd.DataFrame, shape: str, measure: str, lines: Any = None):
    """Study estimates and variances from a frame (via :mod:`bayesmtor.effects`).

    Returns (yi, vi, reason) with reason "" for studies used in pooling. ``effects`` is
    imported only when needed, to keep ``bayesmtor pool`` quick. A study to be pooled whose
    yi or sei lies outside the safe range (:mod:`bayesmtor.validation`) is refused, naming its
    row (1-based position in ``frame``) or, given ``lines``, its line of the file.
    """
    n = len(frame)
    reason = np.array([""] * n, dtype=object)
    labels: dict[str, Any] = {}
    if shape == "log_se":
        y = _as_1d(frame["yi"], "yi")
        se = _as_1d(frame["sei"], "sei")
        check_safe_range(y, se, lines=lines, studies=_studies(frame))  # before squaring
        v = se**2
    elif shape == "ratio_ci":
        from bayesmtor import effects

        est, lo, hi = (_as_1d(frame[c], c) for c in ("estimate", "ci_low", "ci_high"))
        y, v = effects.log_ratio_from_ci(est, lo, hi)
        reason[~np.isfinite(v)] = effects.REASON_NO_CI
        labels = effects.ratio_ci_range_labels()
    else:
        if measure not in ("RR", "OR", "RD"):
            raise InputError(f"2x2 counts give RR, OR or RD, not '{measure}'", column="measure")
        from bayesmtor import effects

        a, b, c, d = _counts(*(frame[col] for col in _COUNT_COLS))
        func = {"RR": effects.log_rr, "OR": effects.log_or, "RD": effects.risk_difference}
        y, v = func[measure](a, a + b, c, c + d)
        finite = np.isfinite(a) & np.isfinite(b) & np.isfinite(c) & np.isfinite(d)
        dz = finite & (((a == 0) & (c == 0)) | ((b == 0) & (d == 0))) & ~np.isfinite(y)
        none = dz & (a == 0) & (c == 0)
        reason[none] = f"no events in either arm: uninformative for {measure}, dropped"
        reason[dz & ~none] = (
            f"all participants had the event in both arms: uninformative for {measure}, dropped"
        )
        reason[~finite] = "missing counts"
    if shape != "log_se":
        use = reason == ""
        if shape == "counts":  # a zero cell left uncorrected is excluded below, not refused
            use &= np.isfinite(y) & np.isfinite(v) & (v > 0)
        with np.errstate(invalid="ignore"):
            se = np.sqrt(v)
        check_safe_range(y, se, mask=use, lines=lines, studies=_studies(frame), **labels)
    bad = ~np.isfinite(y) | ~np.isfinite(v) | ~(v > 0)
    reason[bad & (reason == "")] = "missing estimate or non-positive variance"
    return y, v, reason


def meta_analysis(
    data: Any,
    measure: str | None = None,
    method: str = "REML",
    hksj: bool = False,
    ci_prob: float | None = None,
    mh_correction: str = "revman",
) -> PoolResult:
    """Pool one data set given as an ``EffectSizes``, a ``MetaInput`` or a DataFrame.

    Parameters
    ----------
    data : EffectSizes, MetaInput or pandas.DataFrame
        An ``EffectSizes`` (columns study, yi, vi, included), a ``MetaInput`` or a DataFrame
        in one of the input shapes (counts / ratio_ci / log_se, plus a ``study`` column).
        ``"MH"`` and ``"PETO"`` need counts.
    measure : str, optional
        ``"RR"``, ``"OR"``, ``"RD"``, ``"HR"`` or ``"generic"``. Default: the measure of an
        ``EffectSizes``; ``"RR"`` for counts, ``"generic"`` otherwise.
    method : str
        One of :data:`METHODS`.
    hksj : bool
        Hartung-Knapp-Sidik-Jonkman interval (random-effects methods only).
    ci_prob : float, optional
    mh_correction : {"revman", "none"}
        Zero-cell rule inside the MH estimate, see :func:`rma_mh`.
    """
    method = _check_method(method)
    test = _check_test("z", hksj)
    if hksj and method in FE_METHODS:
        raise InputError(f"HKSJ applies to random-effects methods, not '{method}'", column="hksj")
    table = getattr(data, "table", None)
    reasons: dict[str, str] = {}
    if isinstance(table, pd.DataFrame) and {"yi", "vi"} <= set(table.columns):
        es_measure = getattr(data, "measure", None)
        if measure is None:
            measure = es_measure or "generic"
        elif es_measure is not None and _check_measure(measure) != es_measure:
            raise InputError(
                f"measure '{measure}' differs from the effect sizes' measure '{es_measure}'",
                column="measure",
            )
        measure = _check_measure(measure)
        studies = table["study"].astype(str).tolist() if "study" in table else None
        reasons = dict(getattr(data, "dropped", ()))
        if method in ("MH", "PETO"):
            if not {"ai", "ci", "n1i", "n2i", "cc_add"} <= set(table.columns):
                raise InputError(f"method '{method}' needs 2x2 counts", column="method")
            # back to the raw counts: MH and Peto apply their own zero-cell rule
            add = table["cc_add"].to_numpy(float)
            raw = {
                "study": table["study"].astype(str),
                "events_trt": table["ai"].to_numpy(float) - add,
                "n_trt": table["n1i"].to_numpy(float) - 2.0 * add,
                "events_ctl": table["ci"].to_numpy(float) - add,
                "n_ctl": table["n2i"].to_numpy(float) - 2.0 * add,
            }
            frame = pd.DataFrame(raw)
        else:
            inc = table["included"].to_numpy(bool) if "included" in table else None
            y = table["yi"].to_numpy(float)
            v = table["vi"].to_numpy(float)
            if inc is not None:
                y = np.where(inc, y, np.nan)
            res = rma(
                y, vi=v, method=method, test=test, ci_prob=ci_prob, measure=measure, studies=studies
            )
            excluded = tuple((st, reasons.get(st, why)) for st, why in res.excluded)
            return dataclasses.replace(res, excluded=excluded)
    else:
        frame = getattr(data, "frame", data)
        if measure is None:
            shape = getattr(data, "shape", None)
            measure = "RR" if shape == "counts" else "generic"
    if not isinstance(frame, pd.DataFrame):
        raise InputError(
            "'data' must be an EffectSizes, a MetaInput or a pandas DataFrame, not "
            f"{type(data).__name__}"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = pool_groups(
            frame,
            by=None,
            measure=measure,
            method=method,
            hksj=hksj,
            ci_prob=ci_prob,
            mh_correction=mh_correction,
            as_results=True,
            lines=getattr(data, "lines", None),
        )
    out = res[0]
    if out.k == 0:
        source = getattr(data, "source", None)
        why = "; ".join(f"'{st}': {reasons.get(st, r)}" for st, r in out.excluded[:3])
        more = f" (and {len(out.excluded) - 3} more)" if len(out.excluded) > 3 else ""
        prefix = f"{source}: " if source else ""
        raise EstimationError(
            f"{prefix}no study can be pooled (k = 0): {why}{more}. At least one study with "
            "an estimable effect is needed."
        )
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if reasons:  # keep the exclusion reasons given by escalc()
        excluded = tuple((st, reasons.get(st, why)) for st, why in out.excluded)
        out = dataclasses.replace(out, excluded=excluded)
    return out


def _studies(frame: pd.DataFrame) -> np.ndarray:
    if "study" in frame.columns:
        return frame["study"].astype(str).to_numpy()
    return np.array([str(i + 1) for i in range(len(frame))], dtype=object)


def pool_groups(
    frame: pd.DataFrame,
    by: str | list[str] | None,
    measure: str = "RR",
    method: str = "REML",
    hksj: bool = False,
    ci_prob: float | None = None,
    mh_correction: str = "revman",
    as_results: bool = False,
    *,
    lines: Any = None,
) -> pd.DataFrame | list[PoolResult]:
    """Pool every group of ``frame`` at once (one vectorised fit for all groups).

    Parameters
    ----------
    frame : pandas.DataFrame
        Studies in one of the input shapes (counts / ratio_ci / log_se) with grouping columns.
    by : str, list of str or None
        Grouping columns; ``None`` pools the whole frame. Keys are compared as given (text
        read from a file stays text: ``1``, ``1.0`` and ``01`` are three groups) and groups
        are numbered in order of first appearance (:func:`bayesmtor.inputs.group_codes`, the
        rule of ``bayesmtor pool --bayes --by`` too).
    measure, method, hksj, ci_prob, mh_correction
        As in :func:`meta_analysis`.
    as_results : bool
        Return a list of :class:`PoolResult` (one per group, in group order) instead of a
        DataFrame.
    lines : array-like of int, optional
        Line of the file of each row of ``frame`` (:attr:`bayesmtor.inputs.MetaInput.lines`),
        named by errors instead of the row position.

    Returns
    -------
    pandas.DataFrame or list of PoolResult
        DataFrame: the grouping columns, then :data:`JSON_KEYS` (log scale), one row per group.
    """
    measure = _check_measure(measure)
    method = _check_method(method)
    test = _check_test("z", hksj)
    if hksj and method in FE_METHODS:
        raise InputError(f"HKSJ applies to random-effects methods, not '{method}'", column="hksj")
    p = _ci_prob(ci_prob)
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"'frame' must be a pandas DataFrame, not {type(frame).__name__}")
    by_cols = [] if by is None else ([by] if isinstance(by, str) else list(by))
    missing = [c for c in by_cols if c not in frame.columns]
    if missing:
        raise InputError(
            f"grouping column(s) {', '.join(missing)} not found; columns are "
            + ", ".join(map(str, frame.columns)),
            column=missing[0],
        )
    if len(frame) == 0:
        raise EstimationError("no studies to pool (k = 0)")
    shape = _frame_shape(frame)
    if shape != "counts" and measure == "RD":
        raise InputError(
            f"measure 'RD' needs 2x2 counts (events_trt, n_trt, events_ctl, n_ctl); {shape} "
            "data give a ratio: use HR, RR, OR or generic",
            column="measure",
        )
    if by_cols:
        keys = frame[by_cols]
        if keys.isna().to_numpy().any():
            row = int(np.flatnonzero(keys.isna().to_numpy().any(axis=1))[0])
            raise InputError("missing group label", row=row + 1, column=by_cols[0])
        codes, group_keys = group_codes(frame, by_cols)  # first appearance, keys as given
    else:
        codes = np.zeros(len(frame), dtype=np.int64)
        group_keys = [()]
    n_groups = len(group_keys)
    labels = _studies(frame)
    if method in ("MH", "PETO"):
        if shape != "counts":
            raise InputError(
                f"method '{method}' needs 2x2 counts (events_trt, n_trt, events_ctl, n_ctl)",
                column="method",
            )
        if method == "PETO" and measure != "OR":
            raise InputError("Peto's method pools odds ratios: use --measure OR", column="measure")
        a, b, c, d = _counts(*(frame[col] for col in _COUNT_COLS))
        keep, excl_list = _count_mask(a, b, c, d, labels, measure)
        reason = np.array([""] * len(frame), dtype=object)
        why = dict(excl_list)
        for i in np.flatnonzero(~keep):
            reason[i] = why.get(labels[i], "excluded")
        use = keep
        arrays = [_pad(x[use], codes[use], n_groups)[0] for x in (a, b, c, d)]
        _, mask = _pad(a[use], codes[use], n_groups)
        if method == "MH":
            if measure not in ("RR", "OR", "RD"):
                raise InputError("Mantel-Haenszel needs RR, OR or RD", column="measure")
            out = _core_mh(*arrays, mask, measure, mh_correction, p)
        else:
            out = _core_peto(*arrays, mask, p)
    else:
        y, v, reason = _yi_vi_frame(frame, shape, measure, lines=lines)
        use = reason == ""
        ypad, mask = _pad(y[use], codes[use], n_groups)
        vpad, _ = _pad(v[use], codes[use], n_groups)
        out = _core_iv(ypad, vpad, mask, method, test, p)
    _warn_undefined(out, method)
    if as_results:
        results = []
        for g in range(n_groups):
            in_g = codes == g
            studies = labels[in_g & use].tolist()
            excluded = [(labels[i], reason[i]) for i in np.flatnonzero(in_g & ~use)]
            results.append(
                _result_from_row(
                    out,
                    g,
                    measure=measure,
                    method=method,
                    test=test,
                    ci_prob=p,
                    studies=studies,
                    excluded=excluded,
                )
            )
        return results
    table = pd.DataFrame(group_keys, columns=by_cols) if by_cols else pd.DataFrame(index=[0])
    table["measure"] = measure
    table["method"] = method
    table["test"] = test
    table["ci_prob"] = p
    for key in JSON_KEYS[4:]:
        table[key] = out[key]
    return table.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# subgroups, leave-one-out, Egger
# --------------------------------------------------------------------------------------------


def subgroup_analysis(
    frame: pd.DataFrame,
    by: str,
    measure: str = "RR",
    method: str = "REML",
    hksj: bool = False,
    ci_prob: float | None = None,
    mh_correction: str = "revman",
) -> SubgroupResult:
    """Pooled result per subgroup and RevMan's test for subgroup differences.

    Each subgroup is pooled separately (its own tau^2 for random-effects methods). The test
    is Cochran's Q of the subgroup estimates with weights 1/SE^2 on G-1 df; for ``"FE"`` it
    equals the moderator test of a fixed-effects meta-regression on the subgroup factor.
    Subgroups are listed sorted by their label as text, like the levels of an R factor.
    """
    if not isinstance(by, str):
        raise InputError("'by' must be one column name for a subgroup analysis", column="by")
    results = pool_groups(
        frame,
        by=by,
        measure=measure,
        method=method,
        hksj=hksj,
        ci_prob=ci_prob,
        mh_correction=mh_correction,
        as_results=True,
    )
    # pool_groups numbers groups by first appearance; subgroups are listed sorted, as R's levels
    labels = [str(key[0]) for key in group_codes(frame, [by])[1]]
    order = sorted(range(len(labels)), key=labels.__getitem__)
    results = [results[g] for g in order]
    groups = tuple(labels[g] for g in order)
    est = np.array([r.estimate for r in results])
    se = np.array([r.se for r in results])
    ok = np.isfinite(est) & np.isfinite(se) & (se > 0)
    if ok.sum() < 2:
        warnings.warn(
            "the test for subgroup differences needs two estimable subgroups",
            NotEstimableWarning,
            stacklevel=2,
        )
        qb, dfb, pb = float("nan"), float("nan"), float("nan")
    else:
        w = 1.0 / se[ok] ** 2
        mu = np.sum(w * est[ok]) / np.sum(w)
        qb = float(np.sum(w * (est[ok] - mu) ** 2))
        dfb = float(ok.sum() - 1)
        pb = float(special.chdtrc(dfb, qb))
    return SubgroupResult(
        by=by,
        groups=groups,
        results=tuple(results),
        Q_between=qb,
        Q_between_df=dfb,
        Q_between_pval=pb,
    )


def leave_one_out(
    data: Any,
    measure: str = "RR",
    method: str = "REML",
    hksj: bool = False,
    ci_prob: float | None = None,
    mh_correction: str = "revman",
) -> pd.DataFrame:
    """Refit without each study in turn (all k fits in one vectorised call).

    Parameters
    ----------
    data : MetaInput or pandas.DataFrame
        One meta-analysis in one of the input shapes.

    Returns
    -------
    pandas.DataFrame
        One row per omitted study: ``study`` then :data:`JSON_KEYS` (log scale). Note that
        metafor's ``leave1out`` reports ``I2_tau``/``H2_tau`` for random-effects models.
    """
    frame = getattr(data, "frame", data)
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"'data' must be a MetaInput or a DataFrame, not {type(data).__name__}")
    n = len(frame)
    if n < 2:
        raise EstimationError("leave-one-out needs at least two studies")
    labels = _studies(frame)
    idx = np.arange(n)
    rep_rows = np.concatenate([np.delete(idx, i) for i in range(n)])
    group = np.repeat(np.arange(n), n - 1)
    big = frame.iloc[rep_rows].reset_index(drop=True)
    big["__omitted__"] = pd.Categorical(group)
    big["__omitted__"] = group
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotEstimableWarning)
        res = pool_groups(
            big,
            by="__omitted__",
            measure=measure,
            method=method,
            hksj=hksj,
            ci_prob=ci_prob,
            mh_correction=mh_correction,
        )
    # one group per omitted study: put the rows in omitted-study order
    res["__order__"] = res["__omitted__"].astype(int)
    res = res.sort_values("__order__").reset_index(drop=True)
    res.insert(0, "study", labels)
    return res.drop(columns=["__omitted__", "__order__"])
