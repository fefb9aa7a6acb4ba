"""Vectorised estimators behind :mod:`bayesmtor.frequentist`.

Every estimator is written once, for ``m`` meta-analyses at a time: study values sit in padded
``(m, kmax)`` arrays with a boolean mask, and all sums run along the study axis: tau^2
estimators, the Q-profile interval, inference and prediction, the internal standardisation, and
the inverse-variance, Mantel-Haenszel and Peto cores.
"""

from __future__ import annotations

import numpy as np

from bayesmtor import _special as special
from bayesmtor.vocabulary import RE_METHODS

_EPS = np.finfo(float).eps
_GRID = np.concatenate([[0.0], np.logspace(-6.0, 0.0, 16)])  # relative grid for ML/REML search
# Cells (rows x grid points x studies) of one grid evaluation of the likelihood: its ~15
# temporaries of 512 KB stay in cache and are re-used by the allocator. At 2e6 cells each
# temporary was a fresh 16 MB mapping, and page faults made the grid of 10,000 analyses
# 0.25 s in a new process instead of 0.05 s.
_GRID_CELLS = 65_536
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

    ``fun(t, rows)`` evaluates the function of the rows ``rows`` (indices) at ``t`` (one value
    per row); each step evaluates only the rows not yet converged. Every row's arithmetic is
    its own, so its root does not depend on which other rows are still searching.
    """
    a = lo.astype(float).copy()
    b = hi.astype(float).copy()
    fa = np.zeros_like(a)
    fb = np.zeros_like(b)
    start = np.flatnonzero(active)
    fa[start] = fun(a[start], start)
    fb[start] = fun(b[start], start)
    x = 0.5 * (a + b)
    done = ~active | (fa == 0.0) | (fb == 0.0)
    x = np.where(fa == 0.0, a, np.where(fb == 0.0, b, x))
    for _ in range(_MAX_BISECT):
        rows = np.flatnonzero(~done)
        if rows.size == 0:
            break
        ar, br, far, fbr, xr = a[rows], b[rows], fa[rows], fb[rows], x[rows]
        m = 0.5 * (ar + br)
        fm = fun(m, rows)
        s = np.sqrt(np.maximum(fm * fm - far * fbr, 0.0))
        step = np.where(s > 0, (m - ar) * np.sign(far - fbr) * fm / np.where(s > 0, s, 1.0), 0.0)
        xn = m + step
        xn = np.clip(xn, np.minimum(ar, br), np.maximum(ar, br))
        fx = fun(xn, rows)
        # new bracket
        opp_mx = np.sign(fm) != np.sign(fx)
        opp_ax = np.sign(far) != np.sign(fx)
        a[rows] = np.where(opp_mx, m, np.where(opp_ax, ar, xn))
        fa[rows] = np.where(opp_mx, fm, np.where(opp_ax, far, fx))
        b[rows] = np.where(opp_mx, xn, np.where(opp_ax, xn, br))
        fb[rows] = np.where(opp_mx, fx, np.where(opp_ax, fx, fbr))
        scale = np.maximum(np.abs(xn), 1e-300)
        done[rows] = (
            (fx == 0.0)
            | (np.abs(b[rows] - a[rows]) <= 4.0 * _EPS * scale)
            | (np.abs(xn - xr) <= 2.0 * _EPS * scale)
        )
        x[rows] = xn
    return np.where(active, x, lo)


def _loglik_and_score(y, v, mask, tau2, reml: bool):
    """Profile (restricted) log-likelihood and its derivative in tau2 (times 2), per row.

    ``tau2`` may be (m,) or (m, G) (a grid per row); then y, v, mask are broadcast as
    (m, 1, kmax).
    """
    t = np.asarray(tau2, dtype=float)[..., None]
    vt = v + t
    w = mask / vt
    sw = w.sum(axis=-1)
    mu = (w * y).sum(axis=-1) / sw
    r2 = mask * (y - mu[..., None]) ** 2
    # log(v + t) of the studies only: padding holds v = 1, so its log is finite and the mask
    # makes it 0 (a masked ``np.log(..., where=)`` would be 2-3x slower: no SIMD loop)
    logv = (np.log(vt) * mask).sum(axis=-1)
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
    chunk = max(1, _GRID_CELLS // (y.shape[1] * _GRID.size))
    for s0 in range(0, m, chunk):
        sl = slice(s0, s0 + chunk)
        ll, _ = _loglik_and_score(y[sl, None, :], v[sl, None, :], mask[sl, None, :], grid[sl], reml)
        best_j[sl] = np.argmax(np.where(np.isfinite(ll), ll, -np.inf), axis=1)
    rows = np.arange(m)
    lo = grid[rows, np.maximum(best_j - 1, 0)]
    hi = grid[rows, np.minimum(best_j + 1, _GRID.size - 1)]
    lo = np.where(best_j == 0, 0.0, lo)

    def score(t, rows=slice(None)):
        return _loglik_and_score(y[rows], v[rows], mask[rows], t, reml)[1]

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
        elif method == "HS":
            # Hunter-Schmidt: (Q - k) / sum w with fixed-effect weights (metafor method="HS")
            w, sw, mu = _wsums(y, v, mask, 0.0)
            q = (w * (y - mu[:, None]) ** 2).sum(axis=1)
            tau2 = np.maximum(0.0, (q - kf) / sw)
        elif method == "HE":
            vbar = np.where(mask, v, 0.0).sum(axis=1) / kf
            tau2 = np.maximum(0.0, s2y - vbar)
        elif method == "SJ":
            t0 = ss / kf
            w, sw, mu = _wsums(y, v, mask, t0)
            q = (w * (y - mu[:, None]) ** 2).sum(axis=1)
            tau2 = t0 * q / (kf - 1.0)
        elif method in ("PM", "EB"):
            # Morris' empirical Bayes estimator solves the same equation as Paule-Mandel when
            # there are no moderators: sum w (k/(k-1) r^2 - v - tau2) = 0 <=> Q_gen = k - 1.
            q0 = _q_gen(y, v, mask, 0.0)
            active = (k >= 2) & (q0 > kf - 1.0)
            upper = np.where(active, s2y, 1.0)

            def f(t, rows):
                return _q_gen(y[rows], v[rows], mask[rows], t) - (kf[rows] - 1.0)

            tau2 = np.where(active, _bisect(f, np.zeros_like(upper), upper, active), 0.0)
        elif method in ("REML", "ML"):
            upper = np.where(np.isfinite(s2y) & (s2y > 0), 10.0 * s2y, 1e-12)
            tau2 = _tau2_likelihood(y, v, mask, k, method == "REML", upper)
        else:  # pragma: no cover - guarded by callers
            raise ValueError(method)
    return np.where(k >= 2, tau2, np.nan)


def _tau2_qprofile(y, v, mask, ci_prob: float) -> tuple[np.ndarray, np.ndarray]:
    """Q-profile confidence interval for tau^2 (Viechtbauer 2007), as metafor ``confint()``.

    Each bound solves ``Q_gen(tau2) = chi2 quantile`` by a bracketed root search to
    floating-point resolution. The bracket is never capped: ``Q_gen(t) < ss / t`` (with ``ss``
    the sum of squares of the estimates around their mean), so ``[0, ss / crit]`` always holds
    the root, where metafor searches ``[0, max(100, 10 tau2)]`` by default and can return that
    limit instead of the bound.
    """
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

        def f(t, rows, crit=crit):
            return _q_gen(y[rows], v[rows], mask[rows], t) - crit[rows]

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


def _core_iv(
    y, v, mask, method: str, test: str, ci_prob: float, pi: str = "t"
) -> dict[str, np.ndarray]:
    """Inverse-variance fits (FE or random effects) for every row.

    Fits the standardised data (:func:`_standardise`) and back-transforms, so results are
    scale-equivariant and overflow-free for any data in the safe range. Signed zeros are
    normalised (never ``-0.0``). The boolean key ``hksj_degenerate`` marks rows whose HKSJ
    scale factor is 0 (see :func:`_warn_undefined`). ``pi`` is the distribution of the
    prediction interval (:func:`_prediction`); callers pass the configured default.
    """
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        out = _core_iv_impl(y, v, mask, method, test, ci_prob, pi)
    return _no_signed_zeros(out)


def _no_signed_zeros(out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Turn every ``-0.0`` of the float outputs into ``0.0`` (``-0.0 + 0.0 == +0.0``)."""
    return {key: val + 0.0 if val.dtype.kind == "f" else val for key, val in out.items()}


def _core_iv_impl(y, v, mask, method, test, ci_prob, pi):
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
        out.update(_heterogeneity_intervals(lo, hi, s2, d, k))
        out["tau2_se"] = _tau2_se(w, sw, method, k) * d2
    else:
        w, sw, mu = w0, sw0, mu0
        nan = np.full(k.shape, np.nan)
        out.update(tau2=nan, tau2_ci_low=nan, tau2_ci_high=nan, tau=nan, I2_tau=nan, H2_tau=nan)
        out.update({key: nan for key in HET_INTERVAL_KEYS + ("tau2_se",)})
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
        out.update(_prediction(mu_raw, se_raw, out["tau2"], k, ci_prob, pi))
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


def _heterogeneity_intervals(lo, hi, s2, d, k) -> dict[str, np.ndarray]:
    """I2, H2 and tau intervals from the Q-profile bounds of tau2 (standardised units).

    As metafor ``confint()``: ``I2 = 100 tau2 / (tau2 + s2)``, ``H2 = 1 + tau2 / s2`` with the
    typical within-study variance ``s2``, ``tau = sqrt(tau2)``, each monotone in tau2.
    """
    ok = k >= 2
    out = {}
    for side, t in (("low", lo), ("high", hi)):
        out[f"I2_ci_{side}"] = np.where(ok, 100.0 * t / (t + s2), np.nan)
        out[f"H2_ci_{side}"] = np.where(ok, 1.0 + t / s2, np.nan)
        out[f"tau_ci_{side}"] = np.where(ok, np.sqrt(t) * d, np.nan)
    return out


def _tau2_se(w, sw, method, k) -> np.ndarray:
    """Standard error of the ML/REML tau2 (metafor ``se.tau2``), NaN for other methods.

    ML: ``sqrt(2 / sum w^2)``; REML: ``sqrt(2 / tr(P P))`` with
    ``P = W - W 1 1' W / sum w``, so ``tr(P P) = sum w^2 - 2 sum w^3 / sum w
    + (sum w^2 / sum w)^2``; ``w = 1 / (v + tau2)``.
    """
    sw2 = (w * w).sum(axis=1)
    if method == "ML":
        info = sw2
    elif method == "REML":
        info = sw2 - 2.0 * (w**3).sum(axis=1) / sw + (sw2 / sw) ** 2
    else:
        return np.full(k.shape, np.nan)
    return np.where(k >= 2, np.sqrt(2.0 / info), np.nan)


#: Keys of the heterogeneity intervals computed by :func:`_heterogeneity_intervals`.
HET_INTERVAL_KEYS = (
    "I2_ci_low", "I2_ci_high", "H2_ci_low", "H2_ci_high", "tau_ci_low", "tau_ci_high",
)  # fmt: skip


def _prediction(mu, se, tau2, k, ci_prob, pi="t") -> dict[str, np.ndarray]:
    """Prediction interval ``mu +/- crit sqrt(tau2 + se^2)``.

    ``pi="t"``: t on k-2 df (Higgins, Thompson & Spiegelhalter 2009; Cochrane Handbook),
    defined for k >= 3. ``pi="z"``: the normal quantile, as metafor ``predict()``, for k >= 2.
    """
    if pi == "z":
        crit = _crit("z", ci_prob, k.astype(float))
        ok = k >= 2
    else:
        crit = _crit("t", ci_prob, (k - 2).astype(float))
        ok = k >= 3
    with np.errstate(invalid="ignore"):
        half = crit * np.sqrt(tau2 + se * se)
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


def _core_mh(a, b, c, d, mask, measure: str, correction: str, ci_prob: float, qmask=None):
    """Mantel-Haenszel fits for every row.

    ``mask`` marks the tables of the MH estimate, ``qmask`` (default ``mask``) those of
    Cochran's Q and of ``k``: metafor's ``rma.mh()`` keeps tables without non-events (or
    without events) in both arms in the MH sums but drops them from the study-level yi/vi
    (``drop00=TRUE``). Double-zero tables must be out of ``qmask``.
    """
    qmask = mask if qmask is None else qmask
    a = np.where(mask, a, 0.0)
    b = np.where(mask, b, 0.0)
    c = np.where(mask, c, 0.0)
    d = np.where(mask, d, 0.0)
    k = qmask.sum(axis=1)
    yi, vi = _escalc_counts(measure, a, b, c, d, qmask)
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
        q = np.where(qmask, (yi - beta[:, None]) ** 2 / vi, 0.0).sum(axis=1)
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
    for key in ("tau2", "tau2_ci_low", "tau2_ci_high", "tau", "I2_tau", "H2_tau", "tau2_se"):
        out.setdefault(key, nan)
    for key in HET_INTERVAL_KEYS:
        out.setdefault(key, nan)
    out.setdefault("pi_low", nan)
    out.setdefault("pi_high", nan)
    return _no_signed_zeros(out)
