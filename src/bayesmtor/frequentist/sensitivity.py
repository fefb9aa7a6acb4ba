"""Sensitivity and small-study analyses: ``cumulative``, ``regtest``, ``ranktest``, ``confint``.

With :func:`bayesmtor.frequentist.leave_one_out` and
:func:`bayesmtor.frequentist.subgroup_analysis` these are metafor's ``cumul()``,
``regtest(model="lm", predictor="sei")``, ``ranktest()``, ``leave1out()`` and ``confint()``.
Every function takes the data in any form :func:`bayesmtor.frequentist.meta_analysis` takes
(an ``EffectSizes``, a ``MetaInput`` or a DataFrame), so that the study values come from the one
effect-size route, :func:`bayesmtor.effects.escalc`.

:func:`pool_sections` builds the sections that ``bayesmtor pool`` adds on request
(``--subgroup``, ``--leave-one-out``, ``--cumulative``, ``--bias``), with the keys listed in
:data:`bayesmtor.schema.SECTION_KEYS`.

References
----------
Egger, Davey Smith, Schneider & Minder (1997) BMJ 315:629. Begg & Mazumdar (1994) Biometrics
50:1088. Kendall (1938) Biometrika 30:81. Sterne et al. (2011) BMJ 343:d4002 (no small-study
test with fewer than 10 studies).
"""

from __future__ import annotations

import math
import re
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from bayesmtor import config
from bayesmtor.effects import EffectSizes
from bayesmtor.errors import EstimationError, InputError, LowPowerWarning, NotEstimableWarning
from bayesmtor.frequentist.analyses import (
    _check_options,
    _fit_subsets,
    _group_table,
    leave_one_out,
    subgroup_analysis,
)
from bayesmtor.frequentist.api import _as_1d, _effect_sizes, egger_test
from bayesmtor.frequentist.results import EggerResult, PoolResult, RankTestResult
from bayesmtor.inputs import MetaInput
from bayesmtor.schema import SECTION_KEYS, json_record
from bayesmtor.vocabulary import FE_METHODS

__all__ = ["confint", "cumulative", "pool_sections", "ranktest", "regtest"]


# --------------------------------------------------------------------------------------------
# cumulative meta-analysis
# --------------------------------------------------------------------------------------------


def _sort_key(values: Any) -> np.ndarray:
    """Values to sort by: numbers if every value reads as a plain number, else the text."""
    arr = np.asarray(values, dtype=object)
    try:
        numbers = np.array([float(str(x).strip()) for x in arr], dtype=float)
        if np.all(np.isfinite(numbers)):
            return numbers
    except ValueError:
        pass
    return np.array([str(x) for x in arr], dtype=object)


def cumulative(
    data: Any,
    *,
    order: Any = None,
    measure: str | None = None,
    method: str = "REML",
    test: str = "z",
    ci_prob: float | None = None,
    mh_correction: str = "revman",
    pi: str | None = None,
) -> pd.DataFrame:
    """Cumulative meta-analysis, as metafor ``cumul(res, order=...)``.

    The studies are sorted ascending by ``order`` (stable: ties keep their order in the data)
    and pooled again each time one is added, with the same method (all fits in one vectorised
    call). Studies excluded before pooling (e.g. double-zero tables) add no row.

    Parameters
    ----------
    data : EffectSizes, MetaInput or pandas.DataFrame
        One meta-analysis, as in :func:`bayesmtor.frequentist.meta_analysis`.
    order : str or sequence, optional
        A column of the data (e.g. ``"year"``) or one value per study. Values that all read as
        numbers sort as numbers, others as text. Default: the order of the data.
    measure, method, test, ci_prob, mh_correction, pi
        As in :func:`bayesmtor.frequentist.meta_analysis`.

    Returns
    -------
    pandas.DataFrame
        One row per study added: ``added`` (its label), ``k`` (studies pooled so far), then
        the columns of :func:`bayesmtor.frequentist.pool_groups`. ``tau2`` is NaN while
        k = 1 (metafor prints 0 there: with one study tau^2 is not estimable).
    """
    method, test = _check_options(method, test)
    es = _effect_sizes(data, measure)
    n = len(es.table)
    if n == 0:
        raise EstimationError("no studies to pool (k = 0)")
    if order is None:
        key = np.arange(n)
    elif isinstance(order, str):
        column = _normalise(order)
        if column not in es.table.columns:
            raise InputError(
                f"order column '{order}' not found; columns are "
                + ", ".join(map(str, es.table.columns)),
                column=order,
            )
        key = _sort_key(es.table[column].to_numpy())
    else:
        key = _sort_key(list(order))
        if key.size != n:
            raise InputError(f"'order' has {key.size} values for {n} studies", column="order")
    perm = np.argsort(key, kind="stable")
    rows = np.concatenate([perm[: j + 1] for j in range(n)])
    codes = np.repeat(np.arange(n), np.arange(1, n + 1))
    fit = {"method": method, "test": test, "ci_prob": ci_prob, "mh_correction": mh_correction}
    fits = _fit_subsets(es, rows, codes, n, **fit, pi=pi)
    table = _group_table(fits, ["__step__"]).drop(columns=["__step__"])
    # the last step holds every study, in the sorted order: their exclusion reasons
    keep = fits.reason[-n:] == ""
    table.insert(0, "added", es.table["study"].astype(str).to_numpy()[perm])
    return table[keep].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# small-study tests
# --------------------------------------------------------------------------------------------


def _study_values(yi: Any, sei: Any, vi: Any, measure: str | None) -> tuple[np.ndarray, ...]:
    """``(yi, vi)`` of the studies pooled: from data, or from arrays (finite pairs only)."""
    import pandas as pd

    if isinstance(yi, (EffectSizes, MetaInput, pd.DataFrame)):
        if sei is not None or vi is not None:
            raise InputError("give the data alone, without 'sei' or 'vi'")
        es = _effect_sizes(yi, measure)
        table = es.table[es.table["included"].to_numpy(bool)]
        return table["yi"].to_numpy(float), table["vi"].to_numpy(float)
    y = _as_1d(yi, "yi")
    if (sei is None) == (vi is None):
        raise InputError("give exactly one of 'sei' and 'vi'", column="sei")
    v = _as_1d(vi, "vi") if vi is not None else _as_1d(sei, "sei") ** 2
    if v.shape != y.shape:
        raise InputError(f"'yi' has {y.size} values but the variances have {v.size}", column="vi")
    ok = np.isfinite(y) & np.isfinite(v) & (v > 0)
    return y[ok], v[ok]


def _warn_power(k: int, test: str) -> None:
    min_k = config.get("bias_min_k")
    if k < min_k:
        warnings.warn(
            f"{test} with k = {k} studies: small-study tests have little power with fewer than "
            f"{min_k} studies (Sterne et al. 2011), so a large p-value does not show the "
            "absence of small-study effects",
            LowPowerWarning,
            stacklevel=3,
        )


def regtest(
    yi: Any,
    sei: Any = None,
    vi: Any = None,
    *,
    measure: str | None = None,
    ci_prob: float | None = None,
) -> EggerResult:
    """Egger's regression test, as metafor ``regtest(res, model="lm", predictor="sei")``.

    Weighted least squares of ``yi`` on ``sei`` with weights ``1/vi`` and a free residual
    variance: the coefficient of ``sei`` is Egger's bias coefficient (the intercept of the
    standardised regression ``yi/sei ~ 1/sei``), tested with t on k-2 df (two-sided). The
    test does not depend on the tau^2 estimator. Warns (:class:`LowPowerWarning`) when k < 10
    (config key ``bias_min_k``).

    Parameters
    ----------
    yi : array-like, EffectSizes, MetaInput or pandas.DataFrame
        Study estimates (log scale for ratios), or the data (the studies ``escalc`` keeps).
    sei, vi : array-like, optional
        Standard errors or variances (exactly one) when ``yi`` is an array.
    measure : str, optional
        The measure of data given as a ``MetaInput`` or DataFrame.
    ci_prob : float, optional
        Probability of the interval of the limit estimate (default from config).

    Returns
    -------
    EggerResult
        ``to_dict()`` gives ``intercept, se, stat, df, pval``.
    """
    y, v = _study_values(yi, sei, vi, measure)
    _warn_power(int(y.size), "Egger's test")
    return egger_test(y, vi=v, ci_prob=ci_prob)


def ranktest(
    yi: Any,
    sei: Any = None,
    vi: Any = None,
    *,
    measure: str | None = None,
) -> RankTestResult:
    """Begg and Mazumdar's rank correlation test, as metafor ``ranktest(res)``.

    Kendall's tau-b between ``(yi - mu_FE) / sqrt(vi - 1/sum w)`` and ``vi`` (``w = 1/vi``,
    ``mu_FE`` the fixed-effect estimate). Without ties the two-sided p-value is exact, from the
    distribution of Kendall's statistic (as metafor, which calls ``cor.test(exact=TRUE)``), for
    k <= 300 (config key ``kendall_exact_max_k``); with ties, or with more studies, it is the
    normal approximation with the
    tie-corrected variance and no continuity correction (what ``cor.test`` falls back to with
    ties). Warns (:class:`LowPowerWarning`) when
    k < 10.

    Parameters
    ----------
    yi : array-like, EffectSizes, MetaInput or pandas.DataFrame
        Study estimates, or the data (the studies ``escalc`` keeps).
    sei, vi : array-like, optional
        Standard errors or variances (exactly one) when ``yi`` is an array.
    measure : str, optional
        The measure of data given as a ``MetaInput`` or DataFrame.

    Returns
    -------
    RankTestResult
        ``to_dict()`` gives ``tau, pval``.
    """
    y, v = _study_values(yi, sei, vi, measure)
    k = int(y.size)
    if k < 3:
        raise EstimationError(f"the rank correlation test needs at least 3 studies, got k = {k}")
    _warn_power(k, "the rank correlation test")
    w = 1.0 / v
    mu = float(np.sum(w * y) / np.sum(w))
    with np.errstate(invalid="ignore"):
        ystar = (y - mu) / np.sqrt(v - 1.0 / np.sum(w))
    tau, pval, exact = _kendall(ystar, v)
    return RankTestResult(k=k, tau=tau, pval=pval, exact=exact)


def _kendall(x: np.ndarray, y: np.ndarray) -> tuple[float, float, bool]:
    """Kendall's tau-b and its two-sided p-value, as R ``cor.test(method="kendall")``.

    Exact without ties for k <= ``config.defaults["kendall_exact_max_k"]`` (the exact
    distribution costs O(k^3) operations); the normal approximation otherwise.
    """
    n = x.size
    s = 0.0  # concordant minus discordant pairs, in blocks of rows (memory O(block * n))
    block = max(1, 2_000_000 // max(n, 1))
    for i0 in range(0, n, block):
        i = np.arange(i0, min(i0 + block, n))[:, None]
        j = np.arange(n)[None, :]
        prod = np.sign(x[i] - x[None, :]) * np.sign(y[i] - y[None, :])
        s += float(np.where(j > i, prod, 0.0).sum())
    n0 = n * (n - 1) / 2.0
    tx = _tie_sizes(x)
    ty = _tie_sizes(y)
    n1 = float(np.sum(tx * (tx - 1)) / 2.0)
    n2 = float(np.sum(ty * (ty - 1)) / 2.0)
    tau = s / math.sqrt((n0 - n1) * (n0 - n2))
    if tx.size == 0 and ty.size == 0 and n <= config.get("kendall_exact_max_k"):
        # exact: T, the number of concordant pairs, has the distribution of the number of
        # inversions of a random permutation (Mahonian); R's pkendall(q, n) = P(T <= q)
        q = round((tau + 1.0) * n * (n - 1) / 4.0)
        cdf = np.cumsum(_mahonian(n))
        if q > n * (n - 1) / 4.0:
            p = 1.0 - (cdf[q - 1] if q >= 1 else 0.0)
        else:
            p = cdf[q]
        return tau, float(min(2.0 * p, 1.0)), True
    v0 = n * (n - 1) * (2 * n + 5)
    vt = float(np.sum(tx * (tx - 1) * (2 * tx + 5)))
    vu = float(np.sum(ty * (ty - 1) * (2 * ty + 5)))
    v1 = float(np.sum(tx * (tx - 1))) * float(np.sum(ty * (ty - 1)))
    v2 = float(np.sum(tx * (tx - 1) * (tx - 2))) * float(np.sum(ty * (ty - 1) * (ty - 2)))
    var_s = (v0 - vt - vu) / 18.0 + v1 / (2.0 * n * (n - 1)) + v2 / (9.0 * n * (n - 1) * (n - 2))
    z = s / math.sqrt(var_s)
    return tau, float(math.erfc(abs(z) / math.sqrt(2.0))), False


def _tie_sizes(x: np.ndarray) -> np.ndarray:
    """Sizes of the groups of equal values (only groups of two or more)."""
    _, counts = np.unique(x, return_counts=True)
    return counts[counts > 1].astype(float)


def _mahonian(n: int) -> np.ndarray:
    """Probabilities of 0 .. n(n-1)/2 inversions in a random permutation of n items."""
    size = n * (n - 1) // 2 + 1
    p = np.zeros(size)
    p[0] = 1.0
    for i in range(2, n + 1):  # insert item i: adds 0 .. i-1 inversions, each with prob 1/i
        c = np.concatenate([[0.0], np.cumsum(p)])
        lo = np.maximum(np.arange(size) - i + 1, 0)
        p = (c[np.arange(size) + 1] - c[lo]) / i
    return p


# --------------------------------------------------------------------------------------------
# heterogeneity intervals
# --------------------------------------------------------------------------------------------


def confint(result: PoolResult) -> pd.DataFrame:
    """The Q-profile intervals of tau2, tau, I2 and H2 of a fit, as metafor ``confint(res)``.

    Parameters
    ----------
    result : PoolResult
        A random-effects fit (the rows are NaN for a fixed-effect fit).

    Returns
    -------
    pandas.DataFrame
        Index ``tau2, tau, I2, H2``; columns ``estimate, ci_low, ci_high`` (see
        :meth:`PoolResult.confint`).
    """
    if not isinstance(result, PoolResult):
        raise InputError(
            f"confint() takes a frequentist fit (PoolResult), not {type(result).__name__}",
            column="result",
        )
    return result.confint()


# --------------------------------------------------------------------------------------------
# the sections of `bayesmtor pool`
# --------------------------------------------------------------------------------------------


def _normalise(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def _check_column(meta: Any, name: str, flag: str) -> str:
    """The normalised ``name`` of a column of ``meta`` with no empty cell, else InputError."""
    column = _normalise(name)
    frame = meta.frame if isinstance(meta, MetaInput) else meta
    source = getattr(meta, "source", None)
    if column not in frame.columns:
        raise InputError(
            f"{flag} column '{name}' not found; columns are " + ", ".join(map(str, frame.columns)),
            source=source,
            column=name,
        )
    cells = frame[column].to_numpy(dtype=object)
    empty = [i for i, c in enumerate(cells) if c is None or str(c).strip() in ("", "nan")]
    if empty:
        lines = getattr(meta, "lines", None)
        pos = empty[0]
        raise InputError(
            f"empty cell in the {flag} column; every study needs a value in '{column}'.",
            source=source,
            line=int(lines[pos]) if lines is not None else None,
            row=pos + 1,
            column=column,
        )
    return column


def _records(frame: pd.DataFrame, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """JSON-ready rows of ``frame``, the columns ``keys`` in order."""
    return [json_record({key: row[key] for key in keys}) for row in frame.to_dict("records")]


def pool_sections(
    meta: Any,
    *,
    measure: str | None,
    method: str,
    test: str = "z",
    ci_prob: float | None = None,
    mh_correction: str = "revman",
    pi: str | None = None,
    subgroup: str | None = None,
    leave1out: bool = False,
    cumulative_by: str | None = None,
    bias: bool = False,
) -> dict[str, Any]:
    """The optional sections of ``bayesmtor pool --json``, JSON-ready, keys in schema order.

    Parameters
    ----------
    meta : MetaInput, EffectSizes or pandas.DataFrame
        The data of the overall fit.
    measure, method, test, ci_prob, mh_correction, pi
        As in :func:`bayesmtor.frequentist.meta_analysis` (every section refits with them).
    subgroup : str, optional
        Column of the subgroups: adds ``subgroups`` and ``Q_between``, ``Q_between_df``,
        ``Q_between_pval``.
    leave1out : bool
        Adds ``leave_one_out`` (file order).
    cumulative_by : str, optional
        Column to order the cumulative meta-analysis by: adds ``cumulative``.
    bias : bool
        Adds ``egger`` and ``begg`` (warns when k < 10).

    Returns
    -------
    dict
        The requested sections only, each with the keys of
        :data:`bayesmtor.schema.SECTION_KEYS`.
    """
    fit = {
        "measure": measure,
        "method": method,
        "test": test,
        "ci_prob": ci_prob,
        "mh_correction": mh_correction,
        "pi": pi,
    }
    out: dict[str, Any] = {}
    if subgroup is not None:
        column = _check_column(meta, subgroup, "--subgroup")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotEstimableWarning)
            sub = subgroup_analysis(meta, by=column, **fit)
        keys = SECTION_KEYS["subgroups"]
        out["subgroups"] = [
            json_record({"level": level, **{key: getattr(res, key) for key in keys[1:]}})
            for level, res in zip(sub.groups, sub.results, strict=True)
        ]
        out.update(json_record({key: getattr(sub, key) for key in SECTION_KEYS["subgroup_test"]}))
    if leave1out:
        table = leave_one_out(meta, **fit).rename(columns={"study": "omitted"})
        if method not in FE_METHODS:  # metafor's leave1out reports the tau-based I2
            table["I2"] = table["I2_tau"]
        out["leave_one_out"] = _records(table, SECTION_KEYS["leave_one_out"])
    if cumulative_by is not None:
        column = _check_column(meta, cumulative_by, "--cumulative")
        table = cumulative(meta, order=column, **fit)
        out["cumulative"] = _records(table, SECTION_KEYS["cumulative"])
    if bias:
        es = _effect_sizes(meta, measure)
        out["egger"] = regtest(es).to_dict()
        out["begg"] = ranktest(es).to_dict()
    return out


def format_sections(sections: dict[str, Any], measure: str) -> str:
    """The sections of :func:`pool_sections` as readable text (log scale, as the JSON)."""
    import pandas as pd

    blocks = []
    for name, title in (
        ("subgroups", "subgroups"),
        ("leave_one_out", "leave-one-out"),
        ("cumulative", "cumulative meta-analysis"),
    ):
        if name in sections:
            frame = pd.DataFrame(sections[name], columns=list(SECTION_KEYS[name]))
            with pd.option_context("display.width", 120, "display.max_columns", 20):
                text = frame.to_string(index=False, float_format=lambda x: f"{x:.4f}")
            blocks.append(f"{title} (log scale for ratio measures):\n{text}")
    if "Q_between" in sections and sections["Q_between"] is not None:
        blocks.append(
            f"test for subgroup differences: Q = {sections['Q_between']:.4f} on "
            f"{sections['Q_between_df']:g} df, p = {sections['Q_between_pval']:.4g}"
        )
    if "egger" in sections:
        e = sections["egger"]
        blocks.append(
            f"Egger's test: bias coefficient = {e['intercept']:.4f} (SE {e['se']:.4f}), "
            f"t({e['df']}) = {e['stat']:.4f}, p = {e['pval']:.4g}"
        )
    if "begg" in sections:
        b = sections["begg"]
        blocks.append(
            f"Begg's rank correlation test: Kendall's tau = {b['tau']:.4f}, p = {b['pval']:.4g}"
        )
    return "\n\n".join(blocks)
