"""Frequentist meta-analysis on the log scale, matching R metafor.

Every estimator is written once, for ``m`` meta-analyses at a time: study values sit in padded
``(m, kmax)`` arrays with a boolean mask, and all sums run along the study axis. A single
meta-analysis is the case ``m = 1``; pooling per group (``pool_groups``), leave-one-out and
subgroup analyses reuse the same core with one row per fit.

Methods
-------
Fixed effect
    ``"FE"`` inverse variance; ``"MH"`` Mantel-Haenszel for RR (Greenland-Robins variance), OR
    (Robins-Breslow-Greenland variance) and RD; ``"PETO"`` Peto's one-step odds ratio.
Random effects
    ``"DL"``, ``"REML"``, ``"PM"``, ``"ML"``, ``"SJ"``, ``"HE"`` estimators of tau^2, with the
    Q-profile confidence interval for tau^2 (Viechtbauer 2007) and, on request, the
    Hartung-Knapp-Sidik-Jonkman (HKSJ) interval for the pooled effect (untruncated, t on k-1 df).

Zero cells in Mantel-Haenszel
    RevMan 5 adds 1/2 to every cell of a study with a zero cell, also inside the MH estimate, and
    drops studies without events (or without non-events) in both arms. This is the default
    (``mh_correction="revman"``); in metafor it is
    ``rma.mh(..., add=c(1/2, 1/2), to=c("only0", "only0"), drop00=c(TRUE, TRUE))``.
    ``mh_correction="none"`` gives metafor's default ``rma.mh()``, whose MH estimate uses the
    uncorrected counts (``add=1/2, to="only0"`` then only affect the study-level yi/vi used for
    Cochran's Q). For RD the MH estimate never needs a correction and uses raw counts either way,
    and double-zero tables are kept (a risk difference of 0 is informative). metafor's
    ``correct`` argument only concerns the continuity correction of the Cochran-Mantel-Haenszel
    test statistic, not the MH estimate.

Heterogeneity
    Q is taken around the fixed-effect estimate (around the MH estimate for MH; Peto's Q for
    Peto), ``I2 = max(0, (Q - df) / Q) * 100`` and ``H2 = Q / df`` as in RevMan. For random-effects
    fits metafor reports ``I2 = 100 tau^2 / (tau^2 + s^2)`` and ``H2 = (tau^2 + s^2) / s^2`` with
    ``s^2`` the typical within-study variance (Higgins & Thompson 2002); these are ``I2_tau`` and
    ``H2_tau``.

Prediction interval
    ``mu +/- t(k-2) sqrt(tau^2 + SE^2)`` (Higgins, Thompson & Spiegelhalter 2009) for
    random-effects fits with k >= 3 (metafor's ``predict()`` uses z instead).

References
----------
DerSimonian & Laird (1986) Control Clin Trials 7:177. Paule & Mandel (1982) J Res NBS 87:377.
Sidik & Jonkman (2005) Stat Med 24:3147. Hedges & Olkin (1985). Viechtbauer (2005) J Educ Behav
Stat 30:261; (2007) Stat Med 26:37. Greenland & Robins (1985) Biometrics 41:55. Robins, Breslow &
Greenland (1986) Biometrics 42:311. Yusuf et al. (1985) Prog Cardiovasc Dis 27:335. Hartung &
Knapp (2001) Stat Med 20:3875. Egger et al. (1997) BMJ 315:629. Deeks & Higgins (2010)
Statistical algorithms in Review Manager 5.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from bayesmtor import config
from bayesmtor.errors import (
    DegenerateIntervalWarning,
    EstimationError,
    InputError,
    NotEstimableWarning,
)
from bayesmtor.inputs import group_codes
from bayesmtor.validation import check_safe_range

__all__ = [
    "FE_METHODS",
    "RE_METHODS",
    "METHODS",
    "MEASURES",
    "PoolResult",
    "SubgroupResult",
    "EggerResult",
    "rma",
    "rma_mh",
    "rma_peto",
    "meta_analysis",
    "pool_groups",
    "subgroup_analysis",
    "leave_one_out",
    "egger_test",
]

FE_METHODS: tuple[str, ...] = ("FE", "MH", "PETO")
RE_METHODS: tuple[str, ...] = ("DL", "REML", "PM", "ML", "SJ", "HE")
METHODS: tuple[str, ...] = FE_METHODS + RE_METHODS
MEASURES: tuple[str, ...] = ("RR", "OR", "RD", "HR", "generic")
RATIO_MEASURES: frozenset[str] = frozenset({"RR", "OR", "HR"})
TESTS: tuple[str, ...] = ("z", "t", "knha")

#: Keys of :meth:`PoolResult.to_dict` (and of ``bayesmtor pool --json``), in order.
JSON_KEYS: tuple[str, ...] = (
    "measure",
    "method",
    "test",
    "ci_prob",
    "k",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "stat",
    "stat_df",
    "pval",
    "tau2",
    "tau2_ci_low",
    "tau2_ci_high",
    "tau",
    "I2",
    "H2",
    "I2_tau",
    "H2_tau",
    "Q",
    "Q_df",
    "Q_pval",
    "pi_low",
    "pi_high",
)

_EPS = np.finfo(float).eps
_GRID = np.concatenate([[0.0], np.logspace(-6.0, 0.0, 16)])  # relative grid for ML/REML search
_MAX_BISECT = 200


# --------------------------------------------------------------------------------------------
# vectorised core
# --------------------------------------------------------------------------------------------


def _wsums(y: np.ndarray, v: np.ndarray, mask: np.ndarray, tau2: np.ndarray | float):
    """Weighted sums for weights 1/(v + tau2); returns (w, sw, mu).

    Padded cells must hold finite values (y = 0, v = 1); floating-point warnings are silenced
    once by the caller (:func:`_core_iv`), not here, because this runs in every iteration.
    """
    t = np.asarray(tau2, dtype=float)
    if t.ndim == 1:
        t = t[:, None]
    w = mask / (v + t)
    sw = w.sum(axis=-1)
    mu = (w * y).sum(axis=-1) / sw
    return w, sw, mu


def _q_gen(y, v, mask, tau2):
    """Generalised Q statistic sum w (y - mu_w)^2 with w = 1/(v + tau2)."""
    w, _, mu = _wsums(y, v, mask, tau2)
    return (w * (y - mu[..., None]) ** 2).sum(axis=-1)


def _bisect(fun, lo: np.ndarray, hi: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Root of ``fun`` bracketed by [lo, hi] for every active row, all rows in lock-step.

    Ridders' method: each step evaluates the midpoint and an exponential-fit point that is
    guaranteed to lie inside the bracket, and keeps the root bracketed, so it cannot fail;
    convergence is quadratic near the root. Stops when the bracket (or the step) is at
    floating-point resolution, after at most ``_MAX_BISECT`` steps. Inactive rows return
    ``lo``.
    """
    a = lo.astype(float).copy()
    b = hi.astype(float).copy()
    fa = fun(a)
    fb = fun(b)
    x = 0.5 * (a + b)
    done = ~active | (fa == 0.0) | (fb == 0.0)
    x = np.where(fa == 0.0, a, np.where(fb == 0.0, b, x))
    for _ in range(_MAX_BISECT):
        if done.all():
            break
        m = 0.5 * (a + b)
        fm = fun(m)
        s = np.sqrt(np.maximum(fm * fm - fa * fb, 0.0))
        step = np.where(s > 0, (m - a) * np.sign(fa - fb) * fm / np.where(s > 0, s, 1.0), 0.0)
        xn = m + step
        xn = np.clip(xn, np.minimum(a, b), np.maximum(a, b))
        fx = fun(xn)
        # new bracket
        opp_mx = np.sign(fm) != np.sign(fx)
        opp_ax = np.sign(fa) != np.sign(fx)
        na = np.where(opp_mx, m, np.where(opp_ax, a, xn))
        nfa = np.where(opp_mx, fm, np.where(opp_ax, fa, fx))
        nb = np.where(opp_mx, xn, np.where(opp_ax, xn, b))
        nfb = np.where(opp_mx, fx, np.where(opp_ax, fx, fb))
        scale = np.maximum(np.abs(xn), 1e-300)
        conv = (
            (fx == 0.0)
            | (np.abs(nb - na) <= 4.0 * _EPS * scale)
            | (np.abs(xn - x) <= 2.0 * _EPS * scale)
        )
        upd = ~done
        a = np.where(upd, na, a)
        fa = np.where(upd, nfa, fa)
        b = np.where(upd, nb, b)
        fb = np.where(upd, nfb, fb)
        x = np.where(upd, xn, x)
        done = done | conv
    return np.where(active, x, lo)


def _loglik_and_score(y, v, mask, tau2, reml: bool):
    """Profile (restricted) log-likelihood and its derivative in tau2 (times 2), per row.

    ``tau2`` may be (m,) or (m, G) (a grid per row); then y, v, mask are broadcast as
    (m, 1, kmax).
    """
    t = np.asarray(tau2, dtype=float)[..., None]
    w = mask / (v + t)
    sw = w.sum(axis=-1)
    mu = (w * y).sum(axis=-1) / sw
    r2 = mask * (y - mu[..., None]) ** 2
    logv = (mask * np.log(v + t)).sum(axis=-1)
    w2 = w * w
    q = (w * r2).sum(axis=-1)
    sw2 = w2.sum(axis=-1)
    score = (w2 * r2).sum(axis=-1) - sw
    ll = -0.5 * (logv + q)
    if reml:
        score = score + sw2 / sw
        ll = ll - 0.5 * np.log(sw)
    return ll, score


def _tau2_likelihood(y, v, mask, k, reml: bool, upper: np.ndarray) -> np.ndarray:
    """Global maximiser of the (restricted) likelihood in [0, upper], all rows in lock-step.

    A fixed log-spaced grid (evaluated at once for all rows) locates the best basin; a
    bracketed root search on the score between the grid neighbours of the best grid point
    then gives the maximum to machine precision. The answer is always in [0, upper]; no
    Fisher scoring, so it cannot diverge.
    """
    m = y.shape[0]
    grid = upper[:, None] * _GRID[None, :]
    best_j = np.empty(m, dtype=int)
    chunk = max(1, 2_000_000 // (y.shape[1] * _GRID.size))
    for s0 in range(0, m, chunk):
        sl = slice(s0, s0 + chunk)
        ll, _ = _loglik_and_score(y[sl, None, :], v[sl, None, :], mask[sl, None, :], grid[sl], reml)
        best_j[sl] = np.argmax(np.where(np.isfinite(ll), ll, -np.inf), axis=1)
    rows = np.arange(m)
    lo = grid[rows, np.maximum(best_j - 1, 0)]
    hi = grid[rows, np.minimum(best_j + 1, _GRID.size - 1)]
    lo = np.where(best_j == 0, 0.0, lo)

    def score(t):
        return _loglik_and_score(y, v, mask, t, reml)[1]

    s_lo = score(lo)
    s_hi = score(hi)
    at_lo = s_lo <= 0.0
    at_hi = s_hi >= 0.0
    active = (k >= 2) & ~at_lo & ~at_hi
    root = _bisect(score, lo, hi, active)
    out = np.where(at_lo, lo, np.where(at_hi, hi, root))
    return out


def _tau2_estimate(y, v, mask, method: str) -> np.ndarray:
    """tau^2 for every row (NaN where k < 2)."""
    k = mask.sum(axis=1)
    kf = k.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        ybar = np.where(mask, y, 0.0).sum(axis=1) / kf
        ss = np.where(mask, (y - ybar[:, None]) ** 2, 0.0).sum(axis=1)
        s2y = ss / (kf - 1.0)
        if method == "DL":
            w, sw, mu = _wsums(y, v, mask, 0.0)
            q = (w * (y - mu[:, None]) ** 2).sum(axis=1)
            c = _cross_sum(w) / sw  # = sum w - sum w^2 / sum w
            tau2 = np.maximum(0.0, (q - (kf - 1.0)) / c)
        elif method == "HE":
            vbar = np.where(mask, v, 0.0).sum(axis=1) / kf
            tau2 = np.maximum(0.0, s2y - vbar)
        elif method == "SJ":
            t0 = ss / kf
            w, sw, mu = _wsums(y, v, mask, t0)
            q = (w * (y - mu[:, None]) ** 2).sum(axis=1)
            tau2 = t0 * q / (kf - 1.0)
        elif method == "PM":
            q0 = _q_gen(y, v, mask, 0.0)
            active = (k >= 2) & (q0 > kf - 1.0)
            upper = np.where(active, s2y, 1.0)

            def f(t):
                return _q_gen(y, v, mask, t) - (kf - 1.0)

            tau2 = np.where(active, _bisect(f, np.zeros_like(upper), upper, active), 0.0)
        elif method in ("REML", "ML"):
            upper = np.where(np.isfinite(s2y) & (s2y > 0), 10.0 * s2y, 1e-12)
            tau2 = _tau2_likelihood(y, v, mask, k, method == "REML", upper)
        else:  # pragma: no cover - guarded by callers
            raise ValueError(method)
    return np.where(k >= 2, tau2, np.nan)


def _tau2_qprofile(y, v, mask, ci_prob: float) -> tuple[np.ndarray, np.ndarray]:
    """Q-profile confidence interval for tau^2 (Viechtbauer 2007), as metafor ``confint()``."""
    k = mask.sum(axis=1)
    df = (k - 1).astype(float)
    alpha = 1.0 - ci_prob
    ok = k >= 2
    dfs = np.where(ok, df, 1.0)
    crit_low = special.chdtri(dfs, alpha / 2.0)  # chi2 quantile 1 - alpha/2: lower bound
    crit_high = special.chdtri(dfs, 1.0 - alpha / 2.0)  # chi2 quantile alpha/2: upper bound
    kf = k.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        ybar = np.where(mask, y, 0.0).sum(axis=1) / kf
        ss = np.where(mask, (y - ybar[:, None]) ** 2, 0.0).sum(axis=1)
    q0 = _q_gen(y, v, mask, 0.0)
    out = []
    for crit in (crit_low, crit_high):
        active = ok & (q0 > crit)
        # Q_gen(t) <= ss / t, so the root lies below ss / crit.
        upper = np.where(active, ss / crit * (1.0 + 1e-9), 1.0)

        def f(t, crit=crit):
            return _q_gen(y, v, mask, t) - crit

        root = _bisect(f, np.zeros_like(upper), upper, active)
        out.append(np.where(ok, np.where(active, root, 0.0), np.nan))
    return out[0], out[1]


def _typical_v(v, mask):
    """Typical within-study variance s^2 of Higgins & Thompson (2002)."""
    k = mask.sum(axis=1).astype(float)
    w = np.where(mask, 1.0 / v, 0.0)
    sw = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (k - 1.0) * sw / _cross_sum(w)


def _crit(test: str, ci_prob: float, df: np.ndarray) -> np.ndarray:
    alpha = 1.0 - ci_prob
    if test == "z":
        return np.full(df.shape, special.ndtri(1.0 - alpha / 2.0))
    with np.errstate(invalid="ignore"):
        return np.where(df >= 1, special.stdtrit(np.maximum(df, 1), 1.0 - alpha / 2.0), np.nan)


def _pvalue(stat: np.ndarray, test: str, df: np.ndarray) -> np.ndarray:
    if test == "z":
        return 2.0 * special.ndtr(-np.abs(stat))
    with np.errstate(invalid="ignore"):
        return np.where(df >= 1, 2.0 * special.stdtr(np.maximum(df, 1), -np.abs(stat)), np.nan)


def _heterogeneity(q: np.ndarray, kq: np.ndarray) -> dict[str, np.ndarray]:
    df = (kq - 1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = df >= 1
        qp = np.where(ok, special.chdtrc(np.maximum(df, 1), q), np.nan)
        i2 = np.where(ok, np.where(q > 0, np.maximum(0.0, (q - df) / q) * 100.0, 0.0), np.nan)
        h2 = np.where(ok, q / df, np.nan)
    return {"Q": np.where(ok, q, np.nan), "Q_df": df, "Q_pval": qp, "I2": i2, "H2": h2}


def _standardise(y, v, mask):
    """Standardised copy of every row: ``y' = (y - c) / d``, ``v' = v / d^2``.

    ``c`` is the midrange of the row's estimates and ``d`` the geometric mean of its smallest
    and largest standard error. Every estimator here is location and scale equivariant, so a
    fit of the standardised data, back-transformed (``mu d + c``, ``tau2 d^2``), is the fit of
    the raw data; but its absolute thresholds (grid floors, the HKSJ tolerance) become relative
    and no intermediate can overflow. For data in the safe range of
    :mod:`bayesmtor.validation`, ``|y'| <= 1e100`` and ``v'`` lies in [1e-100, 1e100], so the
    weights, their squares and the squared standardised residuals stay below 1e201 and their
    sums over 1e7 studies finite. Identical estimates standardise to exactly 0.

    Returns ``(y', v', c, d)``; padding cells get ``y' = 0``, ``v' = 1``; rows without
    studies get ``c = 0``, ``d = 1``.
    """
    has = mask.any(axis=1)
    s = np.sqrt(v)
    lo = np.where(mask, y, np.inf).min(axis=1)
    hi = np.where(mask, y, -np.inf).max(axis=1)
    c = np.where(has, 0.5 * lo + 0.5 * hi, 0.0)
    s_lo = np.where(mask, s, np.inf).min(axis=1)
    s_hi = np.where(mask, s, 0.0).max(axis=1)
    d = np.where(has, np.sqrt(s_lo) * np.sqrt(s_hi), 1.0)
    ys = np.where(mask, (y - c[:, None]) / d[:, None], 0.0)
    vs = np.where(mask, (s / d[:, None]) ** 2, 1.0)
    return ys, vs, c, d


def _cross_sum(w):
    """``(sum w)^2 - sum w^2 = sum_i w_i sum_{j != i} w_j`` per row, without cancellation.

    The difference form loses every digit when one weight dominates (it is then the
    difference of two nearly equal squares); the sum over pairs of positive terms does not.
    """
    zeros = np.zeros_like(w[:, :1])
    before = np.concatenate([zeros, np.cumsum(w, axis=1)[:, :-1]], axis=1)
    after = np.concatenate([np.cumsum(w[:, ::-1], axis=1)[:, ::-1][:, 1:], zeros], axis=1)
    return (w * (before + after)).sum(axis=1)


def _core_iv(y, v, mask, method: str, test: str, ci_prob: float) -> dict[str, np.ndarray]:
    """Inverse-variance fits (FE or random effects) for every row.

    Fits the standardised data (:func:`_standardise`) and back-transforms, so results are
    scale-equivariant and overflow-free for any data in the safe range. Signed zeros are
    normalised (never ``-0.0``). The boolean key ``hksj_degenerate`` marks rows whose HKSJ
    scale factor is 0 (see :func:`_warn_undefined`).
    """
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        out = _core_iv_impl(y, v, mask, method, test, ci_prob)
    return _no_signed_zeros(out)


def _no_signed_zeros(out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Turn every ``-0.0`` of the float outputs into ``0.0`` (``-0.0 + 0.0 == +0.0``)."""
    return {key: val + 0.0 if val.dtype.kind == "f" else val for key, val in out.items()}


def _core_iv_impl(y, v, mask, method, test, ci_prob):
    k = mask.sum(axis=1)
    y, v, c, d = _standardise(y, v, mask)
    d2 = d * d
    w0, sw0, mu0 = _wsums(y, v, mask, 0.0)
    q = (w0 * (y - mu0[:, None]) ** 2).sum(axis=1)
    out: dict[str, np.ndarray] = _heterogeneity(q, k)
    random = method in RE_METHODS
    if random:
        tau2 = _tau2_estimate(y, v, mask, method)
        t_use = np.where(np.isfinite(tau2), tau2, 0.0)
        w, sw, mu = _wsums(y, v, mask, t_use)
        lo, hi = _tau2_qprofile(y, v, mask, ci_prob)
        s2 = _typical_v(v, mask)
        # I2 and H2 of tau are ratios of variances: the same in standardised units
        out["I2_tau"] = np.where(k >= 2, 100.0 * tau2 / (tau2 + s2), np.nan)
        out["H2_tau"] = np.where(k >= 2, (tau2 + s2) / s2, np.nan)
        out.update(tau2=tau2 * d2, tau2_ci_low=lo * d2, tau2_ci_high=hi * d2, tau=np.sqrt(tau2) * d)
    else:
        w, sw, mu = w0, sw0, mu0
        nan = np.full(k.shape, np.nan)
        out.update(tau2=nan, tau2_ci_low=nan, tau2_ci_high=nan, tau=nan, I2_tau=nan, H2_tau=nan)
    se = 1.0 / np.sqrt(sw)
    stat_df = (k - 1).astype(float)
    degenerate = np.zeros(k.shape, dtype=bool)
    if test == "knha":
        # HKSJ scale factor q / (k - 1) with q the weighted residual sum of squares (scale-free).
        # Like metafor, q <= machine epsilon (all estimates equal) gives a factor of 0.
        qk = (w * (y - mu[:, None]) ** 2).sum(axis=1)
        degenerate = (k >= 2) & (qk <= _EPS)
        factor = np.where(degenerate, 0.0, qk / stat_df)
        se = np.where(k >= 2, np.sqrt(factor / sw), np.nan)
    out["hksj_degenerate"] = degenerate
    mu_raw = c + d * mu
    se_raw = d * se
    out.update(_inference(mu_raw, se_raw, k, test, ci_prob, stat_df))
    out["k"] = k
    if random:
        out.update(_prediction(mu_raw, se_raw, out["tau2"], k, ci_prob))
    else:
        nan = np.full(k.shape, np.nan)
        out.update(pi_low=nan, pi_high=nan)
    return out


def _inference(mu, se, k, test, ci_prob, stat_df) -> dict[str, np.ndarray]:
    crit = _crit(test, ci_prob, stat_df)
    se = np.where(k > 0, se, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        stat = mu / se
    return {
        "estimate": mu,
        "se": se,
        "ci_low": mu - crit * se,
        "ci_high": mu + crit * se,
        "stat": stat,
        "stat_df": stat_df if test != "z" else np.full(k.shape, np.nan),
        "pval": _pvalue(stat, test, stat_df),
    }


def _prediction(mu, se, tau2, k, ci_prob) -> dict[str, np.ndarray]:
    df = (k - 2).astype(float)
    crit = _crit("t", ci_prob, df)
    with np.errstate(invalid="ignore"):
        half = crit * np.sqrt(tau2 + se * se)
    ok = k >= 3
    return {"pi_low": np.where(ok, mu - half, np.nan), "pi_high": np.where(ok, mu + half, np.nan)}


def _escalc_counts(measure, a, b, c, d, mask):
    """Study yi/vi for Cochran's Q (RevMan/escalc rule: 1/2 added to zero-cell tables)."""
    from bayesmtor import effects

    func = {"RR": effects.log_rr, "OR": effects.log_or, "RD": effects.risk_difference}[measure]
    # double-zero tables are already masked out; padding cells get harmless dummy counts
    a1 = np.where(mask, a, 1.0)
    n1 = np.where(mask, a + b, 2.0)
    c1 = np.where(mask, c, 1.0)
    n2 = np.where(mask, c + d, 2.0)
    yi, vi = func(a1, n1, c1, n2, drop00=False)
    return np.where(mask, yi, 0.0), np.where(mask, vi, 1.0)


def _core_mh(a, b, c, d, mask, measure: str, correction: str, ci_prob: float):
    """Mantel-Haenszel fits for every row. Double-zero tables must already be masked out."""
    a = np.where(mask, a, 0.0)
    b = np.where(mask, b, 0.0)
    c = np.where(mask, c, 0.0)
    d = np.where(mask, d, 0.0)
    k = mask.sum(axis=1)
    yi, vi = _escalc_counts(measure, a, b, c, d, mask)
    if correction == "revman" and measure in ("RR", "OR"):
        from bayesmtor import effects

        # RevMan 5: the study-level zero-cell rule also inside the MH estimate (padding re-zeroed)
        cells = effects.continuity_correction(a, a + b, c, c + d, to="only0", drop00=False)
        a, b, c, d = (np.where(mask, x, 0.0) for x in (cells.ai, cells.bi, cells.ci, cells.di))
    n1, n2 = a + b, c + d
    big_n = np.where(mask, n1 + n2, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        if measure == "RR":
            r = (a * n2 / big_n).sum(axis=1)
            s = (c * n1 / big_n).sum(axis=1)
            beta = np.log(r / s)
            var = (np.where(mask, (n1 * n2 * (a + c) - a * c * big_n) / big_n**2, 0.0)).sum(
                axis=1
            ) / (r * s)
        elif measure == "OR":
            p = (a + d) / big_n
            qq = (b + c) / big_n
            ri = a * d / big_n
            si = b * c / big_n
            r = ri.sum(axis=1)
            s = si.sum(axis=1)
            beta = np.log(r / s)
            var = 0.5 * (
                (p * ri).sum(axis=1) / r**2
                + (p * si + qq * ri).sum(axis=1) / (r * s)
                + (qq * si).sum(axis=1) / s**2
            )
        else:  # RD (Greenland & Robins 1985; Sato's variance as in metafor)
            wsum = (n1 * n2 / big_n).sum(axis=1)
            beta = (np.where(mask, (a * n2 - c * n1) / big_n, 0.0)).sum(axis=1) / wsum
            term1 = np.where(
                mask,
                c * (n1 / big_n) ** 2
                - a * (n2 / big_n) ** 2
                + (n1 / big_n) * (n2 / big_n) * (n2 - n1) / 2,
                0.0,
            ).sum(axis=1)
            term2 = np.where(mask, a * (n2 - c) / big_n + c * (n1 - a) / big_n, 0.0).sum(axis=1)
            var = (beta * term1 + term2 / 2.0) / wsum**2
        bad = ~np.isfinite(beta) | ~(var > 0)
        beta = np.where(bad, np.nan, beta)
        se = np.where(bad, np.nan, np.sqrt(var))
        q = np.where(mask, (yi - beta[:, None]) ** 2 / vi, 0.0).sum(axis=1)
    out = _heterogeneity(np.maximum(q, 0.0), k)
    out.update(_inference(beta, se, k, "z", ci_prob, (k - 1).astype(float)))
    out["k"] = k
    return _fill_nan(out)


def _core_peto(a, b, c, d, mask, ci_prob: float):
    """Peto one-step odds ratio for every row (raw counts, double-zero tables masked out)."""
    a = np.where(mask, a, 0.0)
    b = np.where(mask, b, 0.0)
    c = np.where(mask, c, 0.0)
    d = np.where(mask, d, 0.0)
    k = mask.sum(axis=1)
    n1, n2 = a + b, c + d
    big_n = np.where(mask, n1 + n2, 2.0)
    xt, yt = a + c, b + d
    e = xt * n1 / big_n
    var_i = np.where(mask, xt * yt * (n1 / big_n) * (n2 / big_n) / (big_n - 1.0), 0.0)
    o_e = np.where(mask, a - e, 0.0)
    sv = var_i.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = np.where(sv > 0, o_e.sum(axis=1) / sv, np.nan)
        se = np.where(sv > 0, 1.0 / np.sqrt(sv), np.nan)
        q = np.where(var_i > 0, o_e**2 / np.where(var_i > 0, var_i, 1.0), 0.0).sum(axis=1)
        q = np.maximum(0.0, q - o_e.sum(axis=1) ** 2 / sv)
    out = _heterogeneity(q, k)
    out.update(_inference(beta, se, k, "z", ci_prob, (k - 1).astype(float)))
    out["k"] = k
    return _fill_nan(out)


def _fill_nan(out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add the random-effects-only keys as NaN to a fixed-effect result."""
    nan = np.full(out["k"].shape, np.nan)
    for key in ("tau2", "tau2_ci_low", "tau2_ci_high", "tau", "I2_tau", "H2_tau"):
        out.setdefault(key, nan)
    out.setdefault("pi_low", nan)
    out.setdefault("pi_high", nan)
    return _no_signed_zeros(out)


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------


def _none_if_nan(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


@dataclass(frozen=True)
class PoolResult:
    """One pooled meta-analysis. Effect fields are on the analysis (log for ratios) scale.

    ``stat`` is the z value (``test="z"``) or the t value (``"t"``/``"knha"``, with ``stat_df``
    degrees of freedom); ``zval``/``tval`` give the same number under its own name. Undefined
    quantities are ``nan`` (``None`` in :meth:`to_dict`).
    """

    measure: str
    method: str
    test: str
    ci_prob: float
    k: int
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    stat: float
    stat_df: float
    pval: float
    tau2: float
    tau2_ci_low: float
    tau2_ci_high: float
    tau: float
    I2: float
    H2: float
    I2_tau: float
    H2_tau: float
    Q: float
    Q_df: float
    Q_pval: float
    pi_low: float
    pi_high: float
    studies: tuple[str, ...] = ()
    excluded: tuple[tuple[str, str], ...] = ()

    @property
    def zval(self) -> float:
        """z statistic (nan for t-based tests)."""
        return self.stat if self.test == "z" else float("nan")

    @property
    def tval(self) -> float:
        """t statistic (nan for the z test)."""
        return self.stat if self.test != "z" else float("nan")

    @property
    def is_ratio(self) -> bool:
        """Whether the measure is a ratio pooled on the log scale."""
        return self.measure in RATIO_MEASURES

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (keys :data:`JSON_KEYS`, ``None`` where undefined, log scale)."""
        out: dict[str, Any] = {}
        for key in JSON_KEYS:
            val = getattr(self, key)
            if isinstance(val, (np.floating, float)):
                val = _none_if_nan(float(val))
            elif isinstance(val, np.integer):
                val = int(val)
            out[key] = val
        out["excluded"] = [{"study": s, "reason": r} for s, r in self.excluded]
        return out

    def summary(self) -> pd.DataFrame:
        """Pooled effect on the log (analysis) scale and, for ratios, the ratio scale."""
        level = f"{100 * self.ci_prob:g}%"
        cols = [
            "estimate",
            "se",
            f"ci_low {level}",
            f"ci_high {level}",
            f"pi_low {level}",
            f"pi_high {level}",
            "stat",
            "pval",
        ]
        base = [self.estimate, self.se, self.ci_low, self.ci_high, self.pi_low, self.pi_high]
        rows = {f"{_log_label(self.measure)}": base + [self.stat, self.pval]}
        if self.is_ratio:
            e = [math.exp(x) if math.isfinite(x) else float("nan") for x in base]
            e[1] = float("nan")
            rows[self.measure] = e + [float("nan"), float("nan")]
        df = pd.DataFrame.from_dict(rows, orient="index", columns=cols)
        df.index.name = "scale"
        return df

    def heterogeneity(self) -> pd.DataFrame:
        """One-row DataFrame with Q, its df and p-value, I2, H2, tau2 (with CI) and tau."""
        keys = ["k", "Q", "Q_df", "Q_pval", "I2", "H2", "I2_tau", "H2_tau"]
        keys += ["tau2", "tau2_ci_low", "tau2_ci_high", "tau"]
        return pd.DataFrame([{key: getattr(self, key) for key in keys}])

    def __repr__(self) -> str:
        return _format_result(self)

    __str__ = __repr__


def _log_label(measure: str) -> str:
    return f"log {measure}" if measure in RATIO_MEASURES else measure


def _fmt(x: float, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "NA"
    if abs(x) >= 1e6:  # e.g. an effect of 1e40 within the safe range: no 41-digit fields
        return f"{x:.{max(digits, 4)}g}"
    return f"{x:.{digits}f}"


def _format_result(r: PoolResult) -> str:
    kind = "fixed-effect" if r.method in FE_METHODS else "random-effects"
    level = f"{100 * r.ci_prob:g}%"
    lines = [f"PoolResult: {kind} meta-analysis, method={r.method}, measure={r.measure}, k={r.k}"]
    stat_name = "z" if r.test == "z" else f"t({_fmt(r.stat_df, 0)})"
    lines.append(
        f"  {_log_label(r.measure)}: {_fmt(r.estimate)} (SE {_fmt(r.se)}), {level} CI "
        f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}], {stat_name} = {_fmt(r.stat, 2)}, "
        f"p = {_fmt(r.pval, 4)}" + (" [HKSJ]" if r.test == "knha" else "")
    )
    if r.is_ratio and math.isfinite(r.estimate):
        lines.append(
            f"  {r.measure}: {_fmt(math.exp(r.estimate))} [{_fmt(math.exp(r.ci_low))}, "
            f"{_fmt(math.exp(r.ci_high))}]"
        )
    if math.isfinite(r.pi_low):
        ex = (
            f" ({r.measure} [{_fmt(math.exp(r.pi_low))}, {_fmt(math.exp(r.pi_high))}])"
            if r.is_ratio
            else ""
        )
        lines.append(f"  {level} prediction interval: [{_fmt(r.pi_low)}, {_fmt(r.pi_high)}]{ex}")
    lines.append(
        f"  heterogeneity: Q = {_fmt(r.Q, 2)} on {_fmt(r.Q_df, 0)} df (p = {_fmt(r.Q_pval)}), "
        f"I2 = {_fmt(r.I2, 1)}%, H2 = {_fmt(r.H2, 2)}"
    )
    if r.method in RE_METHODS:
        lines.append(
            f"  tau2 = {_fmt(r.tau2)} {level} CI [{_fmt(r.tau2_ci_low)}, {_fmt(r.tau2_ci_high)}], "
            f"tau = {_fmt(r.tau)}, I2(tau) = {_fmt(r.I2_tau, 1)}%"
        )
    if r.excluded:
        lines.append("  excluded: " + "; ".join(f"{s} ({why})" for s, why in r.excluded))
    return "\n".join(lines)


@dataclass(frozen=True)
class SubgroupResult:
    """Pooled result per subgroup and the test for subgroup differences.

    ``Q_between`` is Cochran's Q of the subgroup estimates around their inverse-variance
    weighted mean (weights 1/SE^2), on ``n_groups - 1`` df, as RevMan 5 reports it.
    """

    by: str
    groups: tuple[str, ...]
    results: tuple[PoolResult, ...]
    Q_between: float
    Q_between_df: float
    Q_between_pval: float

    def summary(self) -> pd.DataFrame:
        """One row per subgroup (log scale), keys of :meth:`PoolResult.to_dict`."""
        rows = []
        for g, r in zip(self.groups, self.results, strict=True):
            d = r.to_dict()
            d.pop("excluded")
            rows.append({self.by: g, **d})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "by": self.by,
            "groups": [
                {self.by: g, **r.to_dict()} for g, r in zip(self.groups, self.results, strict=True)
            ],
            "Q_between": _none_if_nan(float(self.Q_between)),
            "Q_between_df": _none_if_nan(float(self.Q_between_df)),
            "Q_between_pval": _none_if_nan(float(self.Q_between_pval)),
        }

    def __repr__(self) -> str:
        lines = [f"SubgroupResult by '{self.by}': {len(self.groups)} groups"]
        for g, r in zip(self.groups, self.results, strict=True):
            lines.append(
                f"  {g}: k={r.k}, {_log_label(r.measure)} = {_fmt(r.estimate)} "
                f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}], I2 = {_fmt(r.I2, 1)}%"
            )
        lines.append(
            f"  test for subgroup differences: Q = {_fmt(self.Q_between, 2)} on "
            f"{_fmt(self.Q_between_df, 0)} df, p = {_fmt(self.Q_between_pval)}"
        )
        return "\n".join(lines)


@dataclass(frozen=True)
class EggerResult:
    """Egger's regression test, as metafor ``regtest(model="lm", predictor="sei")``.

    Weighted least squares of yi on sei with weights 1/vi and a free residual variance; the
    slope (``bias``) is Egger's intercept of the standardised regression, tested with t on k-2
    df. ``limit_estimate`` is the intercept (the effect as SE -> 0).
    """

    k: int
    bias: float
    bias_se: float
    tval: float
    df: int
    pval: float
    limit_estimate: float
    limit_ci_low: float
    limit_ci_high: float
    ci_prob: float

    def summary(self) -> pd.DataFrame:
        """One-row DataFrame of the fields."""
        return pd.DataFrame([{f.name: getattr(self, f.name) for f in fields(self)}])

    def __repr__(self) -> str:
        return (
            f"EggerResult: k={self.k}, bias = {_fmt(self.bias)} (SE {_fmt(self.bias_se)}), "
            f"t({self.df}) = {_fmt(self.tval, 3)}, p = {_fmt(self.pval)}; limit estimate "
            f"{_fmt(self.limit_estimate)} [{_fmt(self.limit_ci_low)}, {_fmt(self.limit_ci_high)}]"
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


def _check_test(test: str, hksj: bool) -> str:
    t = "knha" if hksj else str(test).lower()
    if t == "hksj":
        t = "knha"
    if t not in TESTS:
        raise InputError(f"unknown test '{test}'; use 'z', 't' or 'knha' (HKSJ)", column="test")
    return t


def _ci_prob(ci_prob: float | None) -> float:
    p = float(config.get("ci_prob", ci_prob))
    if not 0.0 < p < 1.0:
        raise InputError(f"ci_prob must lie strictly between 0 and 1, got {p}", column="ci_prob")
    return p


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


def _warn_undefined(out: dict[str, np.ndarray], method: str, label: str = "") -> None:
    where = f" ({label})" if label else ""
    k = out["k"]
    if method in RE_METHODS and np.any(k < 2):
        warnings.warn(
            f"tau^2 is not estimable with k = 0 or k = 1{where}; reported as missing",
            NotEstimableWarning,
            stacklevel=3,
        )
    if method in RE_METHODS and np.any(k < 3):
        warnings.warn(
            f"the prediction interval needs k >= 3{where}; reported as missing",
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
            if method in ("MH", "PETO")
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


def _result_from_row(out, i, *, measure, method, test, ci_prob, studies=(), excluded=()):
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
        studies=tuple(studies),
        excluded=tuple(excluded),
        **vals,
    )


# --------------------------------------------------------------------------------------------
# public API: single analyses
# --------------------------------------------------------------------------------------------


def rma(
    yi: Any,
    sei: Any = None,
    vi: Any = None,
    method: str = "REML",
    test: str = "z",
    ci_prob: float | None = None,
    measure: str = "generic",
    studies: Any = None,
) -> PoolResult:
    """Inverse-variance meta-analysis of estimates ``yi`` (log scale for ratios).

    Parameters
    ----------
    yi : array-like
        Study estimates. NaN marks a missing value: the study is excluded.
    sei, vi : array-like, optional
        Standard errors or sampling variances (exactly one of them); NaN is missing. Every
        study not missing must lie in the safe range of :mod:`bayesmtor.validation`
        (``|yi| <= 1e50``, ``1e-50 <= sei <= 1e50``), else :class:`InputError` names it.
        Inside the range the fit is scale-equivariant and free of overflow.
    method : str
        ``"FE"`` or a tau^2 estimator: ``"DL"``, ``"REML"``, ``"PM"``, ``"ML"``, ``"SJ"``, ``"HE"``.
    test : str
        ``"z"`` (default), ``"t"`` (t on k-1 df) or ``"knha"`` (Hartung-Knapp-Sidik-Jonkman).
        When all estimates are equal the HKSJ scale factor is 0 (as in metafor): the interval
        has zero width and a :class:`~bayesmtor.errors.DegenerateIntervalWarning` says so.
    ci_prob : float, optional
        Interval probability (default from :mod:`bayesmtor.config`).
    measure : str
        Label of the effect measure (``"RR"``, ``"OR"``, ``"HR"``, ``"RD"`` or ``"generic"``).
    studies : sequence of str, optional
        Study labels, kept in the result.

    Returns
    -------
    PoolResult
    """
    method = _check_method(method)
    if method in ("MH", "PETO"):
        raise InputError(f"method '{method}' needs 2x2 counts; use rma_mh() or rma_peto()")
    measure = _check_measure(measure)
    test = _check_test(test, False)
    p = _ci_prob(ci_prob)
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
        y[keep][None, :], v[keep][None, :], np.ones((1, keep.sum()), bool), method, test, p
    )
    _warn_undefined(out, method)
    kept = [labels[i] for i in np.flatnonzero(keep)]
    return _result_from_row(
        out,
        0,
        measure=measure,
        method=method,
        test=test,
        ci_prob=p,
        studies=kept,
        excluded=excluded,
    )


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
    ratio and are dropped; a risk difference of 0 is informative, so RD keeps them (RevMan).
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
            reason = (
                "no events in either arm"
                if a[i] == 0 and c[i] == 0
                else "all participants had events"
            )
            excluded.append((labels[i], reason))
    return finite & ~dz, excluded


def rma_mh(
    ai: Any,
    n1i: Any,
    ci: Any,
    n2i: Any,
    measure: str = "RR",
    ci_prob: float | None = None,
    mh_correction: str = "revman",
    studies: Any = None,
) -> PoolResult:
    """Mantel-Haenszel fixed-effect meta-analysis of 2x2 tables.

    Parameters
    ----------
    ai, n1i, ci, n2i : array-like
        Events and totals in the treatment (1) and control (2) arms.
    measure : {"RR", "OR", "RD"}
    ci_prob : float, optional
    mh_correction : {"revman", "none"}
        ``"revman"``: add 1/2 to all cells of tables with a zero cell also inside the MH
        estimate (RevMan 5); ``"none"``: raw counts (metafor's ``rma.mh`` default).
        Double-zero tables are dropped either way; they carry no information on RR/OR.
    studies : sequence of str, optional

    Returns
    -------
    PoolResult
        Q is around the MH estimate with study yi/vi from 1/2 added to zero-cell tables.
    """
    measure = _check_measure(measure)
    if measure not in ("RR", "OR", "RD"):
        raise InputError(f"Mantel-Haenszel needs RR, OR or RD, not '{measure}'", column="measure")
    if mh_correction not in ("revman", "none"):
        raise InputError("mh_correction must be 'revman' or 'none'", column="mh_correction")
    p = _ci_prob(ci_prob)
    a, b, c, d = _counts(ai, n1i, ci, n2i)
    labels = _labels(studies, a.size)
    keep, excluded = _count_mask(a, b, c, d, labels, measure)
    if not keep.any():
        raise EstimationError("no 2x2 table with events is left for Mantel-Haenszel (k = 0)")
    sel = [x[keep][None, :] for x in (a, b, c, d)]
    out = _core_mh(*sel, np.ones_like(sel[0], bool), measure, mh_correction, p)
    _warn_undefined(out, "MH")
    kept = [labels[i] for i in np.flatnonzero(keep)]
    return _result_from_row(
        out, 0, measure=measure, method="MH", test="z", ci_prob=p, studies=kept, excluded=excluded
    )


def rma_peto(
    ai: Any,
    n1i: Any,
    ci: Any,
    n2i: Any,
    ci_prob: float | None = None,
    studies: Any = None,
) -> PoolResult:
    """Peto one-step odds ratio (fixed effect), as metafor ``rma.peto``.

    Uses raw counts (no continuity correction is needed); double-zero tables are dropped.
    """
    p = _ci_prob(ci_prob)
    a, b, c, d = _counts(ai, n1i, ci, n2i)
    labels = _labels(studies, a.size)
    keep, excluded = _count_mask(a, b, c, d, labels)
    if not keep.any():
        raise EstimationError("no 2x2 table with events is left for Peto's method (k = 0)")
    sel = [x[keep][None, :] for x in (a, b, c, d)]
    out = _core_peto(*sel, np.ones_like(sel[0], bool), p)
    _warn_undefined(out, "PETO")
    kept = [labels[i] for i in np.flatnonzero(keep)]
    return _result_from_row(
        out, 0, measure="OR", method="PETO", test="z", ci_prob=p, studies=kept, excluded=excluded
    )


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
