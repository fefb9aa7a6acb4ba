"""Exact (deterministic quadrature) posterior of the normal-normal random-effects model.

Model
-----
``y_i ~ N(theta_i, s_i^2)``, ``theta_i ~ N(mu, tau^2)``, ``mu ~`` normal or flat prior,
``tau ~`` any :class:`~bayesmtor.priors.TauPrior`. Given tau, everything is normal and ``mu``
(and each ``theta_i``) can be integrated analytically, so the joint posterior reduces to the
one-dimensional marginal posterior of tau, and the posteriors of ``mu``, ``theta_i`` and of a
new trial's effect ``theta_new`` are normal mixtures over tau (the approach of R bayesmeta;
Röver 2020, J Stat Softw 93(6)).

Numerics
--------
* Transform ``tau = c x / (1 - x)``, ``x`` in ``[0, 1)`` (or the image of a bounded prior
  support), with ``c`` the smaller of the prior median and the median standard error of the
  data. The integrand ``p(tau) L(tau) dtau/dx`` is smooth and bounded on the bounded
  variable, and the posterior sits near the middle of the range rather than at an end point.
* The range of ``x`` is split into ``P`` equal panels, each with an 8-point Gauss-Legendre
  rule. The same nodes carry the normal mixtures of ``mu``, ``theta_i`` and ``theta_new``.
* ``P`` starts at 4 (after a first comparison with 2) and doubles. After each doubling the
  change between the two rules is measured on posterior CDF values: the tau CDF at the coarse
  panel edges, the mu CDF at ``mean + {-2,-1,0,1,2} sd``, and the relative change of the
  marginal likelihood. Refinement stops when the largest change is below ``tol`` (default
  ``config.defaults["exact_tol"]``). Gauss-Legendre errors fall geometrically with ``P``, so
  the change is a conservative estimate of the error of the coarser rule, and the finer rule
  (the one kept) is more accurate still. The reached estimate is stored as
  ``error_estimate`` (``quad_error`` in batch output); the tests check it against an
  independent brute-force integration. If ``P`` would exceed 8192 a
  :class:`~bayesmtor.errors.ConvergenceWarning` is issued.
* The tau CDF at an arbitrary point adds an exact Gauss-Legendre integral over the partial
  panel; tau quantiles invert the panel interpolant by bisection and are polished by Newton
  steps on the exact CDF. Quantiles of the normal mixtures use a safeguarded Newton iteration
  bracketed by the extreme component quantiles (to ~1e-12).

:func:`exact_batch` evaluates many meta-analyses at once (``m x kmax`` arrays with a mask):
all share the transformed tau grid, the arithmetic is broadcast over analyses, and only
analyses not yet converged are refined further.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.polynomial import polynomial as npoly
from scipy import special

from bayesmtor import config
from bayesmtor.errors import ConvergenceWarning, EstimationError, InputError, NotEstimableWarning
from bayesmtor.priors import MuPrior, TauPrior

__all__ = [
    "BatchPosterior",
    "ExactPosterior",
    "conditional_normal",
    "exact_batch",
    "exact_batch_posterior",
    "exact_posterior",
]

_LOG2PI = math.log(2.0 * math.pi)
_GL_N = 8
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_GL_N)
_P_START = 2  # panels at the first level
_MAX_DOUBLINGS = 12  # up to 2 * 2**12 = 8192 panels (65,536 nodes)
_BLOCK_ELEMENTS = 4_000_000  # analyses x nodes x studies evaluated per block (memory bound)


def _antiderivative_basis() -> np.ndarray:
    """Coefficients (ascending powers of s) of A_j(s) = int_{-1}^{s} l_j(r) dr, l_j Lagrange."""
    vander = np.vander(_GL_X, _GL_N, increasing=True)  # rows: nodes, cols: powers
    coef = np.linalg.solve(vander, np.eye(_GL_N))  # column j: coefficients of l_j
    out = np.zeros((_GL_N, _GL_N + 1))
    for j in range(_GL_N):
        anti = npoly.polyint(coef[:, j])
        anti[0] -= npoly.polyval(-1.0, anti)
        out[j] = anti
    return out


_ANTI = _antiderivative_basis()  # (8, 9)


# ---------------------------------------------------------------------------------------------
# conditional (given tau) quantities
# ---------------------------------------------------------------------------------------------
def conditional_normal(y: Any, v: Any, m: Any, t2: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of theta given y ~ N(theta, v) and theta ~ N(m, t2).

    The shrunken trial effect of the normal-normal model given (mu, tau); written so that it
    stays exact as t2 -> 0 (mean -> m, variance -> 0). Arguments broadcast against each other.
    """
    y, v, m, t2 = (np.asarray(x, dtype=float) for x in (y, v, m, t2))
    denom = v + t2
    return (y * t2 + m * v) / denom, v * t2 / denom


def _conditional(
    y: np.ndarray, v: np.ndarray, mask: np.ndarray, tau: np.ndarray, mu_prior: MuPrior
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log marginal likelihood, E[mu | tau, y] and precision of mu | tau, y.

    ``y, v, mask`` are (m, k); ``tau`` is (n,) (shared grid) or (m, n). Returns (m, n) arrays.
    With a flat prior on mu the log likelihood is that of the improper prior with unit density.
    """
    t2 = np.asarray(tau, dtype=float) ** 2
    t2 = t2[None, :, None] if t2.ndim == 1 else t2[:, :, None]
    var = v[:, None, :] + t2  # (m, n, k)
    w = np.where(mask[:, None, :], 1.0 / var, 0.0)
    s0 = w.sum(axis=2)
    s1 = (w * y[:, None, :]).sum(axis=2)
    logdet = np.where(mask[:, None, :], np.log(var), 0.0).sum(axis=2)
    kk = mask.sum(axis=1)[:, None]
    if mu_prior.is_flat:
        prec = s0
        mean = s1 / prec
        quad = (w * (y[:, None, :] - mean[:, :, None]) ** 2).sum(axis=2)
        loglik = -0.5 * (kk - 1) * _LOG2PI - 0.5 * logdet - 0.5 * np.log(prec) - 0.5 * quad
    else:
        m0, sd0 = mu_prior.mean, mu_prior.sd
        p0 = 1.0 / sd0**2
        prec = s0 + p0
        mean = (s1 + p0 * m0) / prec
        quad = (w * (y[:, None, :] - mean[:, :, None]) ** 2).sum(axis=2) + p0 * (m0 - mean) ** 2
        loglik = (
            -0.5 * kk * _LOG2PI - 0.5 * logdet - math.log(sd0) - 0.5 * np.log(prec) - 0.5 * quad
        )
    return loglik, mean, prec


def _conditional_blocked(
    y: np.ndarray, v: np.ndarray, mask: np.ndarray, tau: np.ndarray, mu_prior: MuPrior
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m, k = y.shape
    n = tau.shape[-1]
    block = max(1, _BLOCK_ELEMENTS // max(1, n * k))
    if m <= block:
        return _conditional(y, v, mask, tau, mu_prior)
    parts = [
        _conditional(
            y[i : i + block],
            v[i : i + block],
            mask[i : i + block],
            tau if tau.ndim == 1 else tau[i : i + block],
            mu_prior,
        )
        for i in range(0, m, block)
    ]
    return tuple(np.concatenate([p[j] for p in parts], axis=0) for j in range(3))  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# normal mixtures
# ---------------------------------------------------------------------------------------------
def _mix_cdf(x: np.ndarray, wts: np.ndarray, means: np.ndarray, sds: np.ndarray) -> np.ndarray:
    """CDF of sum_j wts[a, j] N(means[a, j], sds[a, j]^2) at x[a, q] -> (a, q)."""
    z = (x[:, :, None] - means[:, None, :]) / sds[:, None, :]
    return np.einsum("aqj,aj->aq", special.ndtr(z), wts)


def _mix_pdf(x: np.ndarray, wts: np.ndarray, means: np.ndarray, sds: np.ndarray) -> np.ndarray:
    z = (x[:, :, None] - means[:, None, :]) / sds[:, None, :]
    dens = np.exp(-0.5 * z * z) / (math.sqrt(2.0 * math.pi) * sds[:, None, :])
    return np.einsum("aqj,aj->aq", dens, wts)


def _mix_moments(
    wts: np.ndarray, means: np.ndarray, sds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    mean = (wts * means).sum(axis=1)
    second = (wts * (sds**2 + means**2)).sum(axis=1)
    return mean, np.sqrt(np.maximum(second - mean**2, 0.0))


def _mix_quantile(
    q: np.ndarray, wts: np.ndarray, means: np.ndarray, sds: np.ndarray, xtol: float = 1e-12
) -> np.ndarray:
    """Quantiles q[a, p] of normal mixtures (vectorised safeguarded Newton) -> (a, p).

    The root is bracketed by the smallest and largest component quantiles (the mixture CDF is
    a weighted mean of the component CDFs); Newton steps leaving the bracket are replaced by
    bisection. Only rows not yet converged are iterated.
    """
    q = np.array(np.broadcast_to(np.asarray(q, dtype=float), (wts.shape[0], np.shape(q)[-1])))
    zq = special.ndtri(np.clip(q, 1e-300, 1.0 - 1e-16))
    live = (wts > 0)[:, None, :]
    comp = means[:, None, :] + sds[:, None, :] * zq[:, :, None]  # (a, p, n)
    lo = np.where(live, comp, np.inf).min(axis=2)
    hi = np.where(live, comp, -np.inf).max(axis=2)
    mu, sd = _mix_moments(wts, means, sds)
    x = np.clip(mu[:, None] + sd[:, None] * zq, lo, hi)
    todo = np.arange(q.shape[0])
    for _ in range(100):
        xs, qs, los, his = x[todo], q[todo], lo[todo], hi[todo]
        w, mn, sg = wts[todo], means[todo], sds[todo]
        f = _mix_cdf(xs, w, mn, sg) - qs
        los = np.where(f < 0, xs, los)
        his = np.where(f > 0, xs, his)
        d = _mix_pdf(xs, w, mn, sg)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            xn = xs - f / d
        bad = ~np.isfinite(xn) | (xn < los) | (xn > his)
        xn = np.where(bad, 0.5 * (los + his), xn)
        done = (np.abs(xn - xs) <= xtol * (1.0 + np.abs(xs))) | (f == 0) | (his - los <= xtol)
        x[todo], lo[todo], hi[todo] = xn, los, his
        todo = todo[~done.all(axis=1)]
        if todo.size == 0:
            break
    return x


# ---------------------------------------------------------------------------------------------
# quadrature grids
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Map:
    """Transform ``tau = c x / (1 - x)``, x in ``[x0, x1]`` (a bounded variable)."""

    c: float
    x0: float
    x1: float

    @classmethod
    def for_prior(cls, tp: TauPrior, data_scale: float) -> _Map:
        """Centre the map (x = 1/2) at the smaller of the prior median and a data scale.

        The posterior of tau lives below the prior's bulk or near the spread of the estimates
        (of the order of their standard errors), so this keeps it away from x = 1 even for
        very wide priors such as uniform(0, 1e5).
        """
        c = float(tp.ppf(0.5))
        if math.isfinite(data_scale) and data_scale > 0:
            c = min(c, data_scale)
        if tp.family == "uniform":
            lo, hi = tp["lower"], tp["upper"]
            return cls(c, lo / (lo + c), hi / (hi + c))
        return cls(c, 0.0, 1.0)

    def tau(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.where(x < 1.0, self.c * x / np.maximum(1.0 - x, 1e-300), np.inf)

    def x(self, tau: np.ndarray) -> np.ndarray:
        t = np.maximum(np.asarray(tau, dtype=float), 0.0)
        with np.errstate(invalid="ignore"):
            out = np.where(np.isinf(t), 1.0, t / (t + self.c))
        return np.clip(out, self.x0, self.x1)

    def log_jac(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return math.log(self.c) - 2.0 * np.log1p(-np.minimum(x, 1.0))


@dataclass(frozen=True, eq=False)
class _Grid:
    """Composite Gauss-Legendre rule (P panels x 8 nodes in x) for a group of analyses."""

    rows: np.ndarray  # (g,) positions in the batch
    panels: int
    xmap: _Map
    tp: TauPrior
    mp: MuPrior
    x: np.ndarray  # (n,)
    tau: np.ndarray  # (n,)
    qw: np.ndarray  # (n,)
    y: np.ndarray  # (g, k)
    v: np.ndarray
    mask: np.ndarray
    shift: np.ndarray  # (g,)   h = exp(log posterior kernel in x - shift)
    z: np.ndarray  # (g,)
    h: np.ndarray  # (g, n)
    pw: np.ndarray  # (g, n)    normalised posterior weights of the nodes
    mean: np.ndarray  # (g, n)  E[mu | tau, y]
    prec: np.ndarray  # (g, n)  1 / Var[mu | tau, y]

    @property
    def log_z(self) -> np.ndarray:
        """log p(y) (log marginal likelihood)."""
        return np.log(self.z) + self.shift

    @property
    def width(self) -> float:
        return (self.xmap.x1 - self.xmap.x0) / self.panels

    def take(self, keep: np.ndarray) -> _Grid:
        return replace(
            self, rows=self.rows[keep], y=self.y[keep], v=self.v[keep], mask=self.mask[keep],
            shift=self.shift[keep], z=self.z[keep], h=self.h[keep], pw=self.pw[keep],
            mean=self.mean[keep], prec=self.prec[keep],
        )  # fmt: skip

    def cum(self) -> np.ndarray:
        """Posterior tau CDF at the panel edges, (g, P + 1)."""
        g = self.h.shape[0]
        per = (self.h * self.qw).reshape(g, self.panels, _GL_N).sum(axis=2) / self.z[:, None]
        return np.concatenate([np.zeros((g, 1)), np.cumsum(per, axis=1)], axis=1)

    def mu_mix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.pw, self.mean, 1.0 / np.sqrt(self.prec)

    def new_mix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.pw, self.mean, np.sqrt(self.tau[None, :] ** 2 + 1.0 / self.prec)

    def h_at(self, x: np.ndarray) -> np.ndarray:
        """Scaled posterior kernel at points x (g, q), evaluated exactly."""
        tau = self.xmap.tau(x)
        fin = np.isfinite(tau)
        tt = np.where(fin, tau, 1.0)
        ll, _, _ = _conditional_blocked(self.y, self.v, self.mask, tt, self.mp)
        logk = ll + self.tp.logpdf(tt) + self.xmap.log_jac(np.where(fin, x, 0.0))
        return np.where(fin, np.exp(logk - self.shift[:, None]), 0.0)

    def _locate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = (np.clip(x, self.xmap.x0, self.xmap.x1) - self.xmap.x0) / self.width
        idx = np.clip(np.floor(t).astype(int), 0, self.panels - 1)
        return idx, t - idx

    def cdf_interp(self, x: np.ndarray, cum: np.ndarray) -> np.ndarray:
        """Tau CDF at x (g, q) from the degree-7 interpolant of each panel (cheap)."""
        idx, frac = self._locate(x)
        g, q = x.shape
        gather = (idx[:, :, None] * _GL_N + np.arange(_GL_N)).reshape(g, -1)
        hh = np.take_along_axis(self.h, gather, axis=1).reshape(g, q, _GL_N)
        s = 2.0 * frac - 1.0
        basis = (s[..., None] ** np.arange(_GL_N + 1)) @ _ANTI.T
        part = (basis * hh).sum(axis=-1) * (0.5 * self.width) / self.z[:, None]
        return np.take_along_axis(cum, idx, axis=1) + part

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """Tau CDF at x (g, q): panel edges plus an exact Gauss-Legendre partial panel."""
        idx, frac = self._locate(x)
        half = 0.5 * frac * self.width
        left = self.xmap.x0 + idx * self.width
        nodes = left[..., None] + half[..., None] * (_GL_X + 1.0)
        g = x.shape[0]
        hv = self.h_at(nodes.reshape(g, -1)).reshape(nodes.shape)
        part = (hv * _GL_W).sum(axis=-1) * half / self.z[:, None]
        return np.clip(np.take_along_axis(self.cum(), idx, axis=1) + part, 0.0, 1.0)

    def quantile(self, q: np.ndarray) -> np.ndarray:
        """x (g, q) with tau CDF = q: bisection on the interpolant, then Newton on the exact CDF."""
        cum = self.cum()
        idx = np.clip((cum[:, None, :] <= q[:, :, None]).sum(axis=2) - 1, 0, self.panels - 1)
        lo = self.xmap.x0 + idx * self.width
        hi = lo + self.width
        for _ in range(25):
            mid = 0.5 * (lo + hi)
            below = self.cdf_interp(mid, cum) < q
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        x = 0.5 * (lo + hi)
        for _ in range(3):
            f = self.cdf(x) - q
            d = self.h_at(x) / self.z[:, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                step = f / d
            ok = np.isfinite(step) & (np.abs(step) < self.width)
            x = np.where(ok, np.clip(x - step, self.xmap.x0, self.xmap.x1), x)
        return x


def _make_grid(
    panels: int, rows: np.ndarray, y: np.ndarray, v: np.ndarray, mask: np.ndarray,
    tp: TauPrior, mp: MuPrior, xmap: _Map,
) -> _Grid:  # fmt: skip
    edges = np.linspace(xmap.x0, xmap.x1, panels + 1)
    half = 0.5 * (edges[1:] - edges[:-1])
    mid = 0.5 * (edges[1:] + edges[:-1])
    x = (mid[:, None] + half[:, None] * _GL_X[None, :]).ravel()
    qw = (half[:, None] * _GL_W[None, :]).ravel()
    tau = xmap.tau(x)
    loglik, mean, prec = _conditional_blocked(y, v, mask, tau, mp)
    logk = loglik + (tp.logpdf(tau) + xmap.log_jac(x))[None, :]
    shift = logk.max(axis=1)
    h = np.exp(logk - shift[:, None])
    z = h @ qw
    pw = h * qw[None, :] / z[:, None]
    return _Grid(rows, panels, xmap, tp, mp, x, tau, qw, y, v, mask, shift, z, h, pw, mean, prec)


def _probe_points(gr: _Grid) -> np.ndarray:
    mu, sd = _mix_moments(*gr.mu_mix())
    return mu[:, None] + sd[:, None] * np.array([-2.0, -1.0, 0.0, 1.0, 2.0])[None, :]


def _change(coarse: _Grid, fine: _Grid) -> np.ndarray:
    """Largest change of posterior CDF summaries between two rules, per analysis."""
    d_tau = np.abs(coarse.cum() - fine.cum()[:, ::2]).max(axis=1)
    pts = _probe_points(coarse)
    d_mu = np.abs(_mix_cdf(pts, *coarse.mu_mix()) - _mix_cdf(pts, *fine.mu_mix())).max(axis=1)
    d_z = np.abs(np.expm1(fine.log_z - coarse.log_z))
    return np.maximum(np.maximum(d_tau, d_mu), d_z)


def _adaptive(
    y: np.ndarray, v: np.ndarray, mask: np.ndarray, tp: TauPrior, mp: MuPrior, tol: float
) -> tuple[list[_Grid], np.ndarray]:
    """Double the panels of each analysis until converged; returns the final groups and errors."""
    m = y.shape[0]
    xmap = _Map.for_prior(tp, float(np.median(np.sqrt(v[mask]))))
    err = np.full(m, np.inf)
    groups: list[_Grid] = []
    prev = _make_grid(_P_START, np.arange(m), y, v, mask, tp, mp, xmap)
    panels = _P_START
    for _ in range(_MAX_DOUBLINGS):
        panels *= 2
        cur = _make_grid(panels, prev.rows, prev.y, prev.v, prev.mask, tp, mp, xmap)
        ch = _change(prev, cur)
        err[cur.rows] = ch
        ok = ch < tol
        if ok.any():
            groups.append(cur.take(np.flatnonzero(ok)))
        if ok.all():
            break
        prev = cur.take(np.flatnonzero(~ok))
    else:
        groups.append(cur.take(np.flatnonzero(~ok)))
        bad = cur.rows[~ok]
        warnings.warn(
            f"exact quadrature did not reach tol={tol:g} for {bad.size} meta-analys"
            f"{'is' if bad.size == 1 else 'es'} after {panels} panels; largest error "
            f"estimate {err[bad].max():.2g} (results are still reported)",
            ConvergenceWarning,
            stacklevel=3,
        )
    return groups, err


def _typical_variance(v: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Higgins-Thompson typical within-study variance, per analysis (k = 1: that variance)."""
    w = np.where(mask, 1.0 / np.where(mask, v, 1.0), 0.0)
    k = mask.sum(axis=1)
    sw = w.sum(axis=1)
    sw2 = (w**2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = np.where(k > 1, (k - 1) * sw / (sw**2 - sw2), 1.0 / sw)
    return s2


# ---------------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------------
def _check_inputs(
    yi: Any, sei: Any, mask: Any, labels: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        y = np.array(yi, dtype=float, ndmin=1)
        s = np.array(sei, dtype=float, ndmin=1)
    except (TypeError, ValueError):
        raise InputError("'yi' and 'sei' must be numeric arrays", column="yi/sei") from None
    if y.shape != s.shape:
        raise InputError(
            f"'yi' has shape {y.shape} but 'sei' has shape {s.shape}; they must match",
            column="sei",
        )
    if mask is None:
        mk = np.ones(y.shape, dtype=bool)
    else:
        mk = np.array(mask, dtype=bool, ndmin=1)
        if mk.shape != y.shape:
            raise InputError(
                f"'mask' has shape {mk.shape} but 'yi' has shape {y.shape}; they must match",
                column="mask",
            )
    single = y.ndim == 1
    y2, s2, m2 = (y[None, :], s[None, :], mk[None, :]) if single else (y, s, mk)
    if y2.ndim != 2:
        raise InputError(f"'yi' must be 1-D (one meta-analysis) or 2-D (m x kmax), got {y.ndim}-D")
    bad_y = m2 & ~np.isfinite(y2)
    bad_s = m2 & ~(np.isfinite(s2) & (s2 > 0))
    for bad, col, what in ((bad_y, "yi", "a finite number"), (bad_s, "sei", "finite and > 0")):
        if bad.any():
            r, c = np.argwhere(bad)[0]
            val = (y2 if col == "yi" else s2)[r, c]
            study = None
            if single and labels is not None:
                study = str(list(labels)[c])
            raise InputError(
                f"value {float(val)!r} is invalid; it must be {what}"
                + ("" if single else f" (meta-analysis {r + 1}, study {c + 1} of it; 1-based)"),
                row=int(c) + 1 if single else None,  # 1-based position, as for every input
                study=study,
                column=col,
            )
    # the safe range shared with the frequentist side and the MCMC models
    from bayesmtor.validation import check_safe_range

    check_safe_range(y, s, mask=mk, studies=labels if single and labels is not None else None)
    y2 = np.where(m2, y2, 0.0)
    s2 = np.where(m2, s2, 1.0)
    return y2, s2, m2


# ---------------------------------------------------------------------------------------------
# batch
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class BatchPosterior:
    """Exact posteriors of ``m`` meta-analyses evaluated together (vectorised).

    Methods take one value per meta-analysis (shape ``(m,)``) or a matrix ``(m, q)``.
    """

    k: np.ndarray
    tau_prior: TauPrior
    mu_prior: MuPrior
    tol: float
    error_estimate: np.ndarray
    _groups: tuple[_Grid, ...] = field(repr=False)
    _s2_typical: np.ndarray = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"BatchPosterior(m={self.k.size}, tau_prior={self.tau_prior!r}, "
            f"mu_prior={self.mu_prior!r}, max error estimate={np.nanmax(self.error_estimate):.2g})"
        )

    def _apply(self, fn: Any, x: Any) -> np.ndarray:
        """Evaluate ``fn(group, x_rows)`` per quadrature group; x is (m,), (m, q) or scalar."""
        m = self.k.size
        a = np.asarray(x, dtype=float)
        flat = a.ndim <= 1
        if a.ndim == 0:
            a2 = np.full((m, 1), float(a))
        elif a.ndim == 1:
            a2 = a.reshape(m, 1)
        else:
            a2 = a
        out = np.full(a2.shape, np.nan)
        for gr in self._groups:
            out[gr.rows] = fn(gr, np.ascontiguousarray(a2[gr.rows]))
        out[self.k == 0] = np.nan
        return out[:, 0] if flat else out

    def _per_row(self, fn: Any) -> np.ndarray:
        out = np.full(self.k.size, np.nan)
        for gr in self._groups:
            out[gr.rows] = fn(gr)
        out[self.k == 0] = np.nan
        return out

    def tau_cdf(self, tau: Any) -> np.ndarray:
        """Posterior CDF of tau."""
        return self._apply(lambda g, t: g.cdf(g.xmap.x(t)), tau)

    def tau_quantile(self, q: Any) -> np.ndarray:
        """Posterior quantiles of tau."""
        return self._apply(lambda g, qq: g.xmap.tau(g.quantile(qq)), q)

    def tau_mean(self) -> np.ndarray:
        """Posterior mean of tau."""
        return self._per_row(lambda g: g.pw @ g.tau)

    def mu_cdf(self, x: Any) -> np.ndarray:
        """Posterior CDF of mu."""
        return self._apply(lambda g, xx: _mix_cdf(xx, *g.mu_mix()), x)

    def mu_quantile(self, q: Any) -> np.ndarray:
        """Posterior quantiles of mu."""
        return self._apply(lambda g, qq: _mix_quantile(qq, *g.mu_mix()), q)

    def mu_mean(self) -> np.ndarray:
        """Posterior mean of mu."""
        return self._per_row(lambda g: _mix_moments(*g.mu_mix())[0])

    def mu_sd(self) -> np.ndarray:
        """Posterior standard deviation of mu."""
        return self._per_row(lambda g: _mix_moments(*g.mu_mix())[1])

    def theta_new_quantile(self, q: Any) -> np.ndarray:
        """Quantiles of the effect in a new trial (posterior predictive of theta_new)."""
        return self._apply(lambda g, qq: _mix_quantile(qq, *g.new_mix()), q)

    def p_mu_below(self, threshold: float = 0.0) -> np.ndarray:
        """Posterior probability that mu < threshold."""
        return self.mu_cdf(np.full(self.k.size, float(threshold)))

    def log_marginal_likelihood(self) -> np.ndarray | None:
        """log p(y) (``None`` with a flat mu prior, where it is not defined)."""
        if self.mu_prior.is_flat:
            return None
        return self._per_row(lambda g: g.log_z)


def exact_batch_posterior(
    yi: Any,
    sei: Any,
    mask: Any = None,
    *,
    tau_prior: TauPrior | str | None = None,
    mu_prior: MuPrior | str | None = None,
    tol: float | None = None,
) -> BatchPosterior:
    """Exact posteriors of ``m`` meta-analyses given as ``m x kmax`` arrays.

    Parameters
    ----------
    yi, sei : array_like, shape (m, kmax)
        Estimates and standard errors (padding entries are ignored where ``mask`` is False).
    mask : array_like of bool, shape (m, kmax), optional
        True where a study is present. Default: all present.
    tau_prior, mu_prior : prior object, prior text or None
        Priors shared by all analyses (``None``: the registered defaults).
    tol : float, optional
        Quadrature tolerance (default ``config.defaults["exact_tol"]``).
    """
    tp = TauPrior.coerce(tau_prior)
    mp = MuPrior.coerce(mu_prior)
    tol_ = float(config.get("exact_tol", tol))
    if not (tol_ > 0 and math.isfinite(tol_)):
        raise InputError(f"'tol' must be a positive number, got {tol!r}", column="tol")
    y, s, mk = _check_inputs(yi, sei, mask)
    k = mk.sum(axis=1)
    empty = k == 0
    if empty.any():
        warnings.warn(
            f"{int(empty.sum())} meta-analys{'is has' if empty.sum() == 1 else 'es have'} no "
            "studies; results are reported as missing",
            NotEstimableWarning,
            stacklevel=2,
        )
        # evaluate a harmless placeholder (one study) so the arrays stay rectangular
        mk = mk.copy()
        mk[empty, 0] = True
    v = s**2
    groups, err = _adaptive(y, v, mk, tp, mp, tol_)
    err = np.where(empty, np.nan, err)
    return BatchPosterior(
        k=k, tau_prior=tp, mu_prior=mp, tol=tol_, error_estimate=err, _groups=tuple(groups),
        _s2_typical=_typical_variance(v, mk),
    )  # fmt: skip


def exact_batch(
    yi: Any,
    sei: Any,
    mask: Any = None,
    *,
    tau_prior: TauPrior | str | None = None,
    mu_prior: MuPrior | str | None = None,
    tol: float | None = None,
    ci_prob: float | None = None,
) -> pd.DataFrame:
    """Summaries of ``m`` meta-analyses at once (one row each; vectorised over analyses).

    Returns
    -------
    pandas.DataFrame
        Columns ``k, mu_mean, mu_median, mu_low, mu_high, tau_median, tau_low, tau_high,
        pred_low, pred_high, p_mu_below_0`` (central ``ci_prob`` intervals; ``pred_*`` is the
        interval for a new trial's effect theta_new) and ``quad_error`` (the quadrature error
        estimate reached). Rows without studies are missing (NaN).
    """
    ci = _check_ci(ci_prob)
    post = exact_batch_posterior(yi, sei, mask, tau_prior=tau_prior, mu_prior=mu_prior, tol=tol)
    lo, hi = (1.0 - ci) / 2.0, (1.0 + ci) / 2.0
    m = post.k.size
    mu_q = post.mu_quantile(np.tile([0.5, lo, hi], (m, 1)))
    tau_q = post.tau_quantile(np.tile([0.5, lo, hi], (m, 1)))
    pred = post.theta_new_quantile(np.tile([lo, hi], (m, 1)))
    return pd.DataFrame(
        {
            "k": post.k.astype(int),
            "mu_mean": post.mu_mean(),
            "mu_median": mu_q[:, 0],
            "mu_low": mu_q[:, 1],
            "mu_high": mu_q[:, 2],
            "tau_median": tau_q[:, 0],
            "tau_low": tau_q[:, 1],
            "tau_high": tau_q[:, 2],
            "pred_low": pred[:, 0],
            "pred_high": pred[:, 1],
            "p_mu_below_0": post.p_mu_below(0.0),
            "quad_error": post.error_estimate,
        }
    )


def _check_ci(ci_prob: float | None) -> float:
    ci = config.get("ci_prob", ci_prob)
    try:
        ci = float(ci)
    except (TypeError, ValueError):
        raise InputError(f"'ci_prob' must be a number in (0, 1), got {ci_prob!r}") from None
    if not 0.0 < ci < 1.0:
        raise InputError(f"'ci_prob' must be in (0, 1), got {ci!r}", column="ci_prob")
    return ci


# ---------------------------------------------------------------------------------------------
# single meta-analysis
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ExactPosterior:
    """Exact posterior of one random-effects meta-analysis (see the module docstring).

    Attributes
    ----------
    yi, sei : numpy.ndarray
        The data (log scale).
    labels : tuple of str
        Study labels.
    tau_prior, mu_prior :
        The priors used.
    tol : float
        Requested quadrature tolerance.
    error_estimate : float
        Reached estimate of the absolute error of posterior CDF values.
    n_nodes : int
        Number of quadrature nodes (mixture components) used.
    marginal_likelihood : float or None
        p(y) under the proper priors (``None`` with a flat mu prior).
    """

    yi: np.ndarray
    sei: np.ndarray
    labels: tuple[str, ...]
    tau_prior: TauPrior
    mu_prior: MuPrior
    tol: float
    error_estimate: float
    n_nodes: int
    marginal_likelihood: float | None
    _batch: BatchPosterior = field(repr=False)

    def __repr__(self) -> str:
        mu = self.mu_mean()
        return (
            f"ExactPosterior(k={self.k}, tau_prior={self.tau_prior.label or self.tau_prior!r}, "
            f"mu_prior={self.mu_prior.label}, mu_mean={mu:.4g}, "
            f"tau_median={self.tau_quantile(0.5):.4g}, error_estimate={self.error_estimate:.1g})"
        )

    @property
    def k(self) -> int:
        """Number of studies."""
        return int(self.yi.size)

    @property
    def _g(self) -> _Grid:
        return self._batch._groups[0]

    def _vec(self, x: Any) -> tuple[np.ndarray, tuple[int, ...]]:
        a = np.asarray(x, dtype=float)
        return a.reshape(1, -1), a.shape

    # --- tau
    def tau_pdf(self, tau: Any) -> np.ndarray:
        """Posterior density of tau (exact evaluation, not interpolated)."""
        t, shape = self._vec(tau)
        tt = np.where(t > 0, t, 0.0)
        ll, _, _ = _conditional(
            self.yi[None, :],
            self.sei[None, :] ** 2,
            np.ones((1, self.k), bool),
            tt[0],
            self.mu_prior,
        )
        logpost = self.tau_prior.logpdf(tt) + ll - self._g.log_z[0]
        return np.where(t >= 0, np.exp(logpost), 0.0).reshape(shape)

    def tau_cdf(self, tau: Any) -> np.ndarray:
        """Posterior CDF of tau."""
        t, shape = self._vec(tau)
        return self._batch.tau_cdf(t).reshape(shape)

    def tau_quantile(self, q: Any) -> np.ndarray | float:
        """Posterior quantiles of tau."""
        qq, shape = self._vec(q)
        r = self._batch.tau_quantile(qq).reshape(shape)
        return float(r) if r.ndim == 0 else r

    def tau_mean(self) -> float:
        """Posterior mean of tau."""
        return float((self._g.pw[0] * self._g.tau).sum())

    def tau_sd(self) -> float:
        """Posterior standard deviation of tau."""
        m = self.tau_mean()
        return float(math.sqrt(max((self._g.pw[0] * self._g.tau**2).sum() - m * m, 0.0)))

    # --- mu
    def mu_cdf(self, x: Any) -> np.ndarray:
        """Posterior CDF of mu."""
        xx, shape = self._vec(x)
        return self._batch.mu_cdf(xx).reshape(shape)

    def mu_quantile(self, q: Any) -> np.ndarray | float:
        """Posterior quantiles of mu."""
        qq, shape = self._vec(q)
        r = self._batch.mu_quantile(qq).reshape(shape)
        return float(r) if r.ndim == 0 else r

    def mu_mean(self) -> float:
        """Posterior mean of mu."""
        return float(self._batch.mu_mean()[0])

    def mu_sd(self) -> float:
        """Posterior standard deviation of mu."""
        return float(self._batch.mu_sd()[0])

    def p_mu_below(self, threshold: float = 0.0) -> float:
        """Posterior probability that mu < threshold."""
        return float(self._batch.p_mu_below(threshold)[0])

    # --- theta_new
    def theta_new_cdf(self, x: Any) -> np.ndarray:
        """CDF of a new trial's effect theta_new."""
        xx, shape = self._vec(x)
        return _mix_cdf(xx, *self._g.new_mix()).reshape(shape)

    def theta_new_quantile(self, q: Any) -> np.ndarray | float:
        """Quantiles of a new trial's effect theta_new (prediction interval end points)."""
        qq, shape = self._vec(q)
        r = self._batch.theta_new_quantile(qq).reshape(shape)
        return float(r) if r.ndim == 0 else r

    def theta_new_sd(self) -> float:
        """Standard deviation of theta_new."""
        return float(_mix_moments(*self._g.new_mix())[1][0])

    # --- I^2
    @property
    def s2_typical(self) -> float:
        """Higgins-Thompson typical within-study variance used for I^2."""
        return float(self._batch._s2_typical[0])

    def i2_quantile(self, q: Any) -> np.ndarray | float:
        """Posterior quantiles of I^2 = tau^2 / (tau^2 + s^2) (monotone in tau)."""
        t = np.asarray(self.tau_quantile(q), dtype=float)
        r = t**2 / (t**2 + self.s2_typical)
        return float(r) if r.ndim == 0 else r

    def _i2_moments(self) -> tuple[float, float]:
        t2 = self._g.tau**2
        i2 = t2 / (t2 + self.s2_typical)
        m = float((self._g.pw[0] * i2).sum())
        return m, float(math.sqrt(max((self._g.pw[0] * i2**2).sum() - m * m, 0.0)))

    # --- study-specific effects
    def _theta_mix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a = self._g
        t2 = a.tau[None, :] ** 2  # (1, n)
        s2 = (self.sei**2)[:, None]  # (k, 1)
        b = s2 / (s2 + t2)
        means = (1.0 - b) * self.yi[:, None] + b * a.mean[0][None, :]
        var = s2 * t2 / (s2 + t2) + b**2 / a.prec[0][None, :]
        wts = np.broadcast_to(a.pw[0], means.shape)
        return np.ascontiguousarray(wts), means, np.sqrt(np.maximum(var, 1e-300))

    def theta_summary(self, ci_prob: float | None = None) -> pd.DataFrame:
        """Shrinkage estimates: posterior of each study's effect theta_i.

        Columns: ``study, yi, sei, mean, sd, median, q_low, q_high`` (central interval).
        """
        ci = _check_ci(ci_prob)
        wts, means, sds = self._theta_mix()
        mean, sd = _mix_moments(wts, means, sds)
        qs = _mix_quantile(np.tile([0.5, (1 - ci) / 2, (1 + ci) / 2], (self.k, 1)), wts, means, sds)
        df = pd.DataFrame(
            {
                "study": list(self.labels),
                "yi": self.yi,
                "sei": self.sei,
                "mean": mean,
                "sd": sd,
                "median": qs[:, 0],
                "q_low": qs[:, 1],
                "q_high": qs[:, 2],
            }
        )
        df.attrs["ci_prob"] = ci
        return df

    # --- tables and draws
    def summary(self, ci_prob: float | None = None) -> pd.DataFrame:
        """Posterior summary: rows ``mu, tau, theta_new, I2``; columns ``mean, sd, median,
        q_low, q_high`` (central ``ci_prob`` interval; default from the config registry)."""
        ci = _check_ci(ci_prob)
        qs = [0.5, (1 - ci) / 2, (1 + ci) / 2]
        new_q = np.asarray(self.theta_new_quantile(qs))
        i2_mean, i2_sd = self._i2_moments()
        rows = {
            "mu": [self.mu_mean(), self.mu_sd(), *np.asarray(self.mu_quantile(qs))],
            "tau": [self.tau_mean(), self.tau_sd(), *np.asarray(self.tau_quantile(qs))],
            "theta_new": [self.mu_mean(), self.theta_new_sd(), *new_q],
            "I2": [i2_mean, i2_sd, *np.asarray(self.i2_quantile(qs))],
        }
        df = pd.DataFrame.from_dict(
            rows, orient="index", columns=["mean", "sd", "median", "q_low", "q_high"]
        )
        df.index.name = "parameter"
        df.attrs["ci_prob"] = ci
        return df

    def draws(self, n: int, rng: np.random.Generator | int | None) -> pd.DataFrame:
        """Independent posterior draws of ``tau, mu, theta_new`` (columns), e.g. for plots or
        comparison with MCMC. ``rng`` is a numpy Generator or a seed."""
        if int(n) < 1:
            raise InputError(f"'n' must be a positive integer, got {n!r}", column="n")
        gen = np.random.default_rng(rng)
        u = gen.uniform(size=int(n))
        tau = np.asarray(self.tau_quantile(u), dtype=float).reshape(-1)
        _, mean, prec = _conditional(
            self.yi[None, :], self.sei[None, :] ** 2, np.ones((1, self.k), bool), tau, self.mu_prior
        )
        mu = mean[0] + gen.standard_normal(tau.size) / np.sqrt(prec[0])
        new = mu + tau * gen.standard_normal(tau.size)
        return pd.DataFrame({"tau": tau, "mu": mu, "theta_new": new})


def exact_posterior(
    yi: Any,
    sei: Any,
    *,
    tau_prior: TauPrior | str | None = None,
    mu_prior: MuPrior | str | None = None,
    tol: float | None = None,
    labels: Any = None,
) -> ExactPosterior:
    """Exact posterior of one random-effects meta-analysis.

    Parameters
    ----------
    yi, sei : array_like, shape (k,)
        Study estimates (e.g. log odds ratios) and their standard errors.
    tau_prior, mu_prior : prior object, prior text (``"half-normal:0.5"``) or None
        ``None`` uses the registered defaults (``config.defaults``).
    tol : float, optional
        Quadrature tolerance on posterior CDF values (default ``config.defaults["exact_tol"]``).
    labels : sequence of str, optional
        Study labels (default ``"1".."k"``).

    Returns
    -------
    ExactPosterior

    Examples
    --------
    >>> post = exact_posterior([-0.5, -0.2, -0.9], [0.3, 0.25, 0.4])
    >>> post.summary().loc["mu", "median"] < 0
    True
    """
    y = np.array(yi, dtype=float, ndmin=1) if _is_numeric(yi) else None
    if y is None or y.ndim != 1:
        raise InputError("'yi' must be a 1-D sequence of numbers (one meta-analysis)", column="yi")
    if labels is None:
        labs = tuple(str(i + 1) for i in range(y.size))
    else:
        labs = tuple(str(x) for x in labels)
        if len(labs) != y.size:
            raise InputError(
                f"{len(labs)} labels given for {y.size} studies; give one label per study",
                column="labels",
            )
    if y.size == 0:
        raise EstimationError("no studies: a meta-analysis needs at least one estimate")
    _check_inputs(yi, sei, None, labs)
    post = exact_batch_posterior(
        np.asarray(yi, float)[None, :], np.asarray(sei, float)[None, :], None,
        tau_prior=tau_prior, mu_prior=mu_prior, tol=tol,
    )  # fmt: skip
    lml = post.log_marginal_likelihood()
    return ExactPosterior(
        yi=np.asarray(yi, dtype=float).copy(),
        sei=np.asarray(sei, dtype=float).copy(),
        labels=labs,
        tau_prior=post.tau_prior,
        mu_prior=post.mu_prior,
        tol=post.tol,
        error_estimate=float(post.error_estimate[0]),
        n_nodes=int(post._groups[0].panels * _GL_N),
        marginal_likelihood=None if lml is None else float(np.exp(lml[0])),
        _batch=post,
    )


def _is_numeric(x: Any) -> bool:
    try:
        np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        return False
    return True
