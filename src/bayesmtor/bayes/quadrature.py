"""Numerical core of the exact engine (:mod:`bayesmtor.bayes.exact`).

Gauss--Legendre panels on a mapped tau axis and their adaptive refinement, the conditional
normal of ``mu`` (and of each ``theta_i``) given ``tau``, normal mixtures (CDF, density,
moments, quantiles), all tiled so that memory stays bounded (config ``exact_chunk_cells``).
The public classes and functions are in :mod:`bayesmtor.bayes.exact`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.polynomial import polynomial as npoly

from bayesmtor import _special as special
from bayesmtor import config
from bayesmtor.bayes.priors import MuPrior, TauPrior, log_tau_density
from bayesmtor.errors import ConvergenceWarning, InputError

_LOG2PI = math.log(2.0 * math.pi)
_GL_N = 8
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_GL_N)
_P_START = 2  # panels at the first level
_MAX_DOUBLINGS = 12  # up to 2 * 2**12 = 8192 panels (65,536 nodes)
# Studies are summed in fixed blocks of this many (by einsum within a block, block totals added in
# order), so the result never depends on how much is evaluated at once (config
# "exact_chunk_cells"): only on the data. One block covers every meta-analysis up to 4096 studies.
_STUDY_BLOCK = 4096
# Meta-analyses evaluated together (one chunk of a batch): as many as fill "exact_chunk_cells"
# with the conditional sums on a typical grid (64 nodes) plus the grid state of each analysis
# (weights, means and precisions at two refinement levels and the convergence checks: about 16
# arrays over the nodes).
_NODES_HINT = 64
_STATE_ARRAYS = 16


def _chunk_cells() -> int:
    """Cells (analyses x points x terms) evaluated per NumPy call (config "exact_chunk_cells")."""
    value = config.get("exact_chunk_cells")
    if type(value) is int and value >= 1:  # the common case, checked first (called often)
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(
            f"config 'exact_chunk_cells' must be a positive integer, got {value!r}",
            column="exact_chunk_cells",
        )
    return int(value)


_WHOLE = [(slice(None), slice(None))]  # one tile: the whole array


def _tiles(rows: int, cols: int, width: int) -> list[tuple[slice, slice]]:
    """Tiles of a (rows x cols) result whose entries each reduce ``width`` terms.

    Whole rows are kept together while they fit in ``exact_chunk_cells``; a single row that
    does not fit is split by columns. Every entry is computed the same way whatever the tiling.
    """
    cells = _chunk_cells()
    per_row = cols * max(1, width)
    if rows * per_row <= cells:
        return _WHOLE
    if per_row <= cells:
        step = cells // per_row
        return [(slice(i, i + step), slice(None)) for i in range(0, rows, step)]
    step = max(1, cells // max(1, width))
    return [
        (slice(i, i + 1), slice(j, j + step)) for i in range(rows) for j in range(0, cols, step)
    ]


def _row_slices(rows: int, per_row: int) -> list[slice]:
    """Row slices holding at most ``exact_chunk_cells`` cells each (at least one row)."""
    step = max(1, _chunk_cells() // max(1, per_row))
    return [slice(i, i + step) for i in range(0, rows, step)] or [slice(0, 0)]


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


def _weights(v: np.ndarray, mask: np.ndarray, t2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Marginal variances v + tau^2 and weights 1 / (v + tau^2) (0 for padding), (r, n, k).

    The weights are ``mask / var``: padding holds v = 1, so var > 0 there and the weight is
    exactly 0 (and 1 / var elsewhere, the same bits as a division where the study is present,
    without the 2-3x slower masked loop of ``np.divide(..., where=)``)."""
    var = v[:, None, :] + t2
    return var, np.divide(mask[:, None, :], var, dtype=float)


def _masked_log(var: np.ndarray, mask: np.ndarray, t2: np.ndarray) -> np.ndarray:
    """log(var) where the study is present (``mask`` (r, k) over var's (r, n, k)), else 0.

    Padding holds v = 1, so with every tau^2 finite its log is finite and multiplying by the
    mask gives 0; an infinite tau^2 takes the masked, slower ``np.log(..., where=)``."""
    if np.isfinite(t2).all():
        out = np.log(var)
        out *= mask[:, None, :]
        return out
    inside = np.broadcast_to(mask[:, None, :], var.shape)
    return np.log(var, out=np.zeros_like(var), where=inside)


def _weighted_sq(w: np.ndarray, y: np.ndarray, mean: np.ndarray) -> np.ndarray:
    d = y[:, None, :] - mean[:, :, None]
    d *= d
    return np.einsum("rnk,rnk->rn", w, d)


def _conditional_tile(
    y: np.ndarray, v: np.ndarray, mask: np.ndarray, t2: np.ndarray, mu_prior: MuPrior,
    ref: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """:func:`_conditional` for ``y, v, mask`` (r, k), ``t2`` (1 or r, n) and ``ref`` (r,)."""
    t2 = t2[:, :, None]
    k = y.shape[1]
    blocks = [slice(j, j + _STUDY_BLOCK) for j in range(0, k, _STUDY_BLOCK)]
    w: np.ndarray | None = None
    if len(blocks) == 1:
        var, w = _weights(v, mask, t2)
        s0 = np.einsum("rnk->rn", w)
        s1 = np.einsum("rnk,rk->rn", w, y)
        logdet = np.einsum("rnk->rn", _masked_log(var, mask, t2))
        del var
    else:  # block totals added in order: the same result however the work is tiled
        s0 = s1 = logdet = 0.0
        for b in blocks:
            var, wb = _weights(v[:, b], mask[:, b], t2)
            s0 = s0 + np.einsum("rnk->rn", wb)
            s1 = s1 + np.einsum("rnk,rk->rn", wb, y[:, b])
            logdet = logdet + np.einsum("rnk->rn", _masked_log(var, mask[:, b], t2))
            del var, wb

    def quad_sum(mean: np.ndarray) -> np.ndarray:
        if w is not None:
            return _weighted_sq(w, y, mean)
        total = 0.0
        for b in blocks:
            total = total + _weighted_sq(_weights(v[:, b], mask[:, b], t2)[1], y[:, b], mean)
        return total

    kk = mask.sum(axis=1)[:, None]
    if mu_prior.is_flat:
        prec = s0
        mean = s1 / prec
        quad = quad_sum(mean)
        loglik = -0.5 * (kk - 1) * _LOG2PI - 0.5 * logdet - 0.5 * np.log(prec) - 0.5 * quad
    else:
        m0, sd0 = (mu_prior.mean - ref)[:, None], mu_prior.sd
        p0 = 1.0 / sd0**2
        prec = s0 + p0
        mean = (s1 + p0 * m0) / prec
        quad = quad_sum(mean) + p0 * (m0 - mean) ** 2
        loglik = (
            -0.5 * kk * _LOG2PI - 0.5 * logdet - math.log(sd0) - 0.5 * np.log(prec) - 0.5 * quad
        )
    return loglik, mean, prec


def _conditional(
    y: np.ndarray, v: np.ndarray, mask: np.ndarray, tau: np.ndarray, mu_prior: MuPrior,
    ref: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Log marginal likelihood, E[mu | tau, y] - ref and precision of mu | tau, y.

    ``y, v, mask`` are (m, k), the estimates given relative to each analysis's reference
    point ``ref`` (m,) (see :func:`_centre`); ``tau`` is (n,) (shared grid) or (m, n). Returns
    (m, n) arrays. With a flat prior on mu the log likelihood is that of the improper prior
    with unit density.
    The sums over studies are evaluated in tiles of at most ``exact_chunk_cells`` cells (rows,
    then points, then blocks of :data:`_STUDY_BLOCK` studies), so memory does not grow with k.
    """
    t2 = np.asarray(tau, dtype=float) ** 2
    t2 = t2[None, :] if t2.ndim == 1 else t2
    m, k = y.shape
    n = t2.shape[1]
    tiles = _tiles(m, n, min(k, _STUDY_BLOCK))
    if len(tiles) == 1:
        return _conditional_tile(y, v, mask, t2, mu_prior, ref)
    out = tuple(np.empty((m, n)) for _ in range(3))
    shared = t2.shape[0] == 1
    for rs, cs in tiles:
        part = _conditional_tile(
            y[rs], v[rs], mask[rs], t2[:, cs] if shared else t2[rs, cs], mu_prior, ref[rs]
        )
        for o, p_ in zip(out, part, strict=True):
            o[rs, cs] = p_
    return out  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# normal mixtures
# ---------------------------------------------------------------------------------------------
def _mix_tiled(kernel: Any, x: np.ndarray, *per_row: np.ndarray, lead: tuple = ()) -> np.ndarray:
    """``kernel(x, *per_row)`` -> (*lead, a, q), evaluated in tiles of ``exact_chunk_cells``."""
    a, q = x.shape
    tiles = _tiles(a, q, per_row[0].shape[1])
    if len(tiles) == 1:
        return kernel(x, *per_row)
    out = np.empty((*lead, a, q))
    for rs, cs in tiles:
        out[..., rs, cs] = kernel(x[rs, cs], *(arr[rs] for arr in per_row))
    return out


def _mix_cdf_kernel(
    x: np.ndarray, wts: np.ndarray, means: np.ndarray, sds: np.ndarray
) -> np.ndarray:
    z = (x[:, :, None] - means[:, None, :]) / sds[:, None, :]
    return np.einsum("aqj,aj->aq", special.ndtr_sum(z), wts)


def _mix_pdf_kernel(
    x: np.ndarray, wts: np.ndarray, means: np.ndarray, sds: np.ndarray
) -> np.ndarray:
    z = (x[:, :, None] - means[:, None, :]) / sds[:, None, :]
    dens = np.exp(-0.5 * z * z) / (math.sqrt(2.0 * math.pi) * sds[:, None, :])
    return np.einsum("aqj,aj->aq", dens, wts)


def _mix_newton_kernel(
    x: np.ndarray, wts: np.ndarray, means: np.ndarray, sds: np.ndarray
) -> np.ndarray:
    """CDF, density and the density's derivative of the mixture -> (3, a, q), in one pass."""
    z = (x[:, :, None] - means[:, None, :]) / sds[:, None, :]
    cdf, dens = special.ndtr_sum_and_pdf(z)
    dens /= sds[:, None, :]
    z *= dens
    z /= sds[:, None, :]  # -d/dx of each component's density
    return np.stack([np.einsum("aqj,aj->aq", arr, wts) for arr in (cdf, dens, z)])


def _mix_cdf(x: np.ndarray, wts: np.ndarray, means: np.ndarray, sds: np.ndarray) -> np.ndarray:
    """CDF of sum_j wts[a, j] N(means[a, j], sds[a, j]^2) at x[a, q] -> (a, q).

    The components' CDFs come from :func:`bayesmtor._special.ndtr_sum`: each within 2.3e-16
    absolute, so the sum is accurate to rounding (far below the quadrature's tolerance)."""
    return _mix_tiled(_mix_cdf_kernel, x, wts, means, sds)


def _mix_pdf(x: np.ndarray, wts: np.ndarray, means: np.ndarray, sds: np.ndarray) -> np.ndarray:
    return _mix_tiled(_mix_pdf_kernel, x, wts, means, sds)


def _mix_moments(
    wts: np.ndarray, means: np.ndarray, sds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    mean = (wts * means).sum(axis=1)
    second = (wts * (sds**2 + means**2)).sum(axis=1)
    return mean, np.sqrt(np.maximum(second - mean**2, 0.0))


#: A Halley step below this fraction of the scale leaves an error ~ (1e-6)^3 of it.
_HALLEY_ACCEPT = 1e-6
#: A Newton step (tau quantiles) below this fraction of the smaller of x and the panel width
#: leaves an error of the order of (1e-7)^2 of it.
_NEWTON_ACCEPT = 1e-7


def _mix_quantile(
    q: np.ndarray, wts: np.ndarray, means: np.ndarray, sds: np.ndarray, xtol: float = 1e-12
) -> np.ndarray:
    """Quantiles q[a, p] of normal mixtures (vectorised safeguarded Halley) -> (a, p).

    The root is bracketed by the smallest and largest component quantiles (the mixture CDF is
    a weighted mean of the component CDFs); Halley steps (the mixture's density and its
    derivative come with the CDF from one pass) leaving the bracket are replaced by bisection.
    Only rows not yet converged are iterated. A root is converged when the step is below
    ``xtol`` times the mixture's SD plus ``|x|`` (relative, so the answer scales with the data),
    or when a Halley step was below ``_HALLEY_ACCEPT`` times that scale (its error then is of
    the order of the cube of that fraction). Rows are evaluated in slices of at most
    ``exact_chunk_cells`` cells.
    """
    q = np.array(np.broadcast_to(np.asarray(q, dtype=float), (wts.shape[0], np.shape(q)[-1])))
    slices = _row_slices(q.shape[0], q.shape[1] * wts.shape[1])
    if len(slices) == 1:
        return _mix_quantile_rows(q, wts, means, sds, xtol)
    out = np.empty(q.shape)
    for sl in slices:
        out[sl] = _mix_quantile_rows(q[sl], wts[sl], means[sl], sds[sl], xtol)
    return out


def _mix_quantile_rows(
    q: np.ndarray, wts: np.ndarray, means: np.ndarray, sds: np.ndarray, xtol: float
) -> np.ndarray:
    zq = special.ndtri(np.clip(q, 1e-300, 1.0 - 1e-16))
    live = (wts > 0)[:, None, :]
    comp = means[:, None, :] + sds[:, None, :] * zq[:, :, None]  # (a, p, n)
    lo = np.where(live, comp, np.inf).min(axis=2)
    hi = np.where(live, comp, -np.inf).max(axis=2)
    del comp
    mu, sd = _mix_moments(wts, means, sds)
    x = np.clip(mu[:, None] + sd[:, None] * zq, lo, hi)
    todo = np.arange(q.shape[0])
    for _ in range(100):
        xs, qs, los, his = x[todo], q[todo], lo[todo], hi[todo]
        if todo.size == wts.shape[0]:  # every row: no copies of the mixtures
            w, mn, sg = wts, means, sds
        else:
            w, mn, sg = wts[todo], means[todo], sds[todo]
        cdf, d, minus_d2 = _mix_tiled(_mix_newton_kernel, xs, w, mn, sg, lead=(3,))
        f = cdf - qs
        los = np.where(f < 0, xs, los)
        his = np.where(f > 0, xs, his)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # Halley's step (cubic convergence): f / f' / (1 - f f'' / (2 f'^2))
            xn = xs - f / d / (1.0 + 0.5 * f * minus_d2 / (d * d))
        bad = ~np.isfinite(xn) | (xn < los) | (xn > his)
        xn = np.where(bad, 0.5 * (los + his), xn)
        scale = sd[todo][:, None] + np.abs(xs)
        step = np.abs(xn - xs)
        # converged when the step is below xtol * scale, or when a Halley step (not a
        # bisection) was so small that the error after it, ~ step^3 / scale^2, is far below
        # that; this saves the evaluation that would only confirm convergence
        done = (
            (step <= xtol * scale)
            | (~bad & (step <= _HALLEY_ACCEPT * scale))
            | (f == 0)
            | (his - los <= xtol * scale)
        )
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
        good = math.isfinite(data_scale) and data_scale > 0
        if not tp.is_proper:  # no prior median: the data scale alone
            return cls.centred(tp, data_scale if good else 1.0)
        c = float(tp.ppf(0.5))
        if good:
            c = min(c, data_scale)
        return cls.centred(tp, c)

    @classmethod
    def centred(cls, tp: TauPrior, c: float) -> _Map:
        """The map with x = 1/2 at tau = c, restricted to the support of the prior."""
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
    y: np.ndarray  # (g, k)   estimates minus ref
    v: np.ndarray
    mask: np.ndarray
    ref: np.ndarray  # (g,)   reference point of each analysis (mu, theta are stored minus it)
    shift: np.ndarray  # (g,)   h = exp(log posterior kernel in x - shift)
    z: np.ndarray  # (g,)
    h: np.ndarray  # (g, n)
    pw: np.ndarray  # (g, n)    normalised posterior weights of the nodes
    mean: np.ndarray  # (g, n)  E[mu | tau, y] - ref
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
            ref=self.ref[keep], shift=self.shift[keep], z=self.z[keep], h=self.h[keep], pw=self.pw[keep],
            mean=self.mean[keep], prec=self.prec[keep],
        )  # fmt: skip

    def cum(self) -> np.ndarray:
        """Posterior tau CDF at the panel edges, (g, P + 1)."""
        g = self.h.shape[0]
        per = (self.h * self.qw).reshape(g, self.panels, _GL_N).sum(axis=2) / self.z[:, None]
        return np.concatenate([np.zeros((g, 1)), np.cumsum(per, axis=1)], axis=1)

    def mu_mix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normal mixture of mu - ref (weights, means, sds)."""
        return self.pw, self.mean, 1.0 / np.sqrt(self.prec)

    def new_mix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normal mixture of theta_new - ref."""
        return self.pw, self.mean, np.sqrt(self.tau[None, :] ** 2 + 1.0 / self.prec)

    def h_at(self, x: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Scaled posterior kernel at points x (g, q), evaluated exactly; with ``rows``
        (indices), of those analyses (x then has one row per index)."""
        tau = self.xmap.tau(x)
        fin = np.isfinite(tau)
        tt = np.where(fin, tau, 1.0)
        y, v, mask, ref, shift = (
            (self.y, self.v, self.mask, self.ref, self.shift)
            if rows is None
            else (self.y[rows], self.v[rows], self.mask[rows], self.ref[rows], self.shift[rows])
        )
        ll, _, _ = _conditional(y, v, mask, tt, self.mp, ref)
        logk = ll + _log_prior(self.tp, tt, v, mask) + self.xmap.log_jac(np.where(fin, x, 0.0))
        return np.where(fin, np.exp(logk - shift[:, None]), 0.0)

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
        basis = np.einsum("gqi,ji->gqj", s[..., None] ** np.arange(_GL_N + 1), _ANTI)
        part = (basis * hh).sum(axis=-1) * (0.5 * self.width) / self.z[:, None]
        return np.take_along_axis(cum, idx, axis=1) + part

    def _partial_panel(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For points x: the panel of each, half the width of its partial panel [left, x],
        and that partial panel's 8 Gauss-Legendre nodes (x.shape + (8,))."""
        idx, frac = self._locate(x)
        half = 0.5 * frac * self.width
        left = self.xmap.x0 + idx * self.width
        return idx, half, left[..., None] + half[..., None] * (_GL_X + 1.0)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """Tau CDF at x (g, q): panel edges plus an exact Gauss-Legendre partial panel."""
        idx, half, nodes = self._partial_panel(x)
        g = x.shape[0]
        hv = self.h_at(nodes.reshape(g, -1)).reshape(nodes.shape)
        part = (hv * _GL_W).sum(axis=-1) * half / self.z[:, None]
        return np.clip(np.take_along_axis(self.cum(), idx, axis=1) + part, 0.0, 1.0)

    def quantile(self, q: np.ndarray) -> np.ndarray:
        """x (g, q) with tau CDF = q: bisection on the interpolant, then Newton on the exact CDF."""
        cum = self.cum()
        idx = np.clip((cum[:, None, :] <= q[:, :, None]).sum(axis=2) - 1, 0, self.panels - 1)
        left = self.xmap.x0 + idx * self.width
        lo, hi = left, left + self.width
        # The bisection stays inside each point's panel, so the interpolant of that panel (the
        # polynomial of cdf_interp, in s = 2 frac - 1) is gathered once and evaluated by Horner.
        g, nq = idx.shape
        gather = (idx[:, :, None] * _GL_N + np.arange(_GL_N)).reshape(g, -1)
        hh = np.take_along_axis(self.h, gather, axis=1).reshape(g, nq, _GL_N)
        coef = (hh @ _ANTI) * ((0.5 * self.width) / self.z)[:, None, None]  # (g, q, 9)
        base = np.take_along_axis(cum, idx, axis=1)
        for _ in range(25):
            mid = 0.5 * (lo + hi)
            s = 2.0 * (mid - left) / self.width - 1.0
            poly = coef[..., _GL_N]
            for i in range(_GL_N - 1, -1, -1):
                poly = poly * s + coef[..., i]
            below = base + poly < q
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        x = 0.5 * (lo + hi)
        # Up to three Newton steps on the exact CDF, each for the points still moving: after
        # a step below _NEWTON_ACCEPT of the smaller of x and the panel width, the next would
        # be of the order of its square (quadratic convergence), far below rounding. A step
        # that is not finite or leaves the panel is not taken; that point would not move
        # again. q = 0 is the lower end of the support, exactly.
        r, c = np.divmod(np.flatnonzero(q != 0), nq)
        cum = cum[r]
        for _ in range(3):
            xs = x[r, c]
            cdf, dens = self._cdf_and_density(xs, r, cum)
            with np.errstate(divide="ignore", invalid="ignore"):
                step = (cdf - q[r, c]) / dens
            ok = np.isfinite(step) & (np.abs(step) < self.width)
            xn = np.where(ok, np.clip(xs - step, self.xmap.x0, self.xmap.x1), xs)
            x[r, c] = xn
            scale = np.minimum(np.abs(xn), self.width)
            more = np.flatnonzero(ok & (np.abs(step) > _NEWTON_ACCEPT * scale))
            if not more.size:
                break
            r, c, cum = r[more], c[more], cum[more]
        return np.where(q == 0, self.xmap.x0, x)

    def _cdf_and_density(
        self, x: np.ndarray, rows: np.ndarray, cum: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Tau CDF (as :meth:`cdf`) and density at points x (p,) of the analyses ``rows``
        (p,), whose panel-edge CDFs are ``cum`` (p, P + 1): one evaluation of the kernel at
        the 8 Gauss-Legendre nodes of each partial panel and at the point itself."""
        idx, half, nodes = self._partial_panel(x)
        pts = np.empty((x.size, _GL_N + 1))
        pts[:, :_GL_N] = nodes
        pts[:, _GL_N] = x
        hv = self.h_at(pts, rows)
        z = self.z[rows]
        part = (hv[:, :_GL_N] * _GL_W).sum(axis=-1) * half / z
        cdf = np.clip(cum[np.arange(x.size), idx] + part, 0.0, 1.0)
        return cdf, hv[:, _GL_N] / z


def _log_prior(tp: TauPrior, tau: np.ndarray, v: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Log prior density of tau, (1, n) or (g, n); the data-dependent Jeffreys prior is
    evaluated in row slices of at most ``exact_chunk_cells`` cells."""
    if tp.family != "jeffreys":
        return log_tau_density(tp, tau, v, mask)
    g = v.shape[0]
    per_row = int(np.shape(tau)[-1]) * v.shape[1]
    tau2 = np.broadcast_to(tau, (g, np.shape(tau)[-1])) if np.ndim(tau) == 2 else tau
    parts = [
        log_tau_density(tp, tau2[sl] if np.ndim(tau2) == 2 else tau2, v[sl], mask[sl])
        for sl in _row_slices(g, per_row)
    ]
    return np.concatenate(parts, axis=0)


def _make_grid(
    panels: int, rows: np.ndarray, y: np.ndarray, v: np.ndarray, mask: np.ndarray,
    ref: np.ndarray, tp: TauPrior, mp: MuPrior, xmap: _Map,
) -> _Grid:  # fmt: skip
    edges = np.linspace(xmap.x0, xmap.x1, panels + 1)
    half = 0.5 * (edges[1:] - edges[:-1])
    mid = 0.5 * (edges[1:] + edges[:-1])
    x = (mid[:, None] + half[:, None] * _GL_X[None, :]).ravel()
    qw = (half[:, None] * _GL_W[None, :]).ravel()
    tau = xmap.tau(x)
    loglik, mean, prec = _conditional(y, v, mask, tau, mp, ref)
    logk = loglik + _log_prior(tp, tau, v, mask) + xmap.log_jac(x)[None, :]
    shift = logk.max(axis=1)
    h = np.exp(logk - shift[:, None])
    z = (h * qw).sum(axis=1)  # a sum per row (a matrix product would depend on the batch)
    pw = h * qw[None, :] / z[:, None]
    return _Grid(
        rows, panels, xmap, tp, mp, x, tau, qw, y, v, mask, ref, shift, z, h, pw, mean, prec
    )


def _probe_points(gr: _Grid, rows: Any = slice(None)) -> np.ndarray:
    mu, sd = _mix_moments(*(a[rows] for a in gr.mu_mix()))
    return mu[:, None] + sd[:, None] * np.array([-2.0, -1.0, 0.0, 1.0, 2.0])[None, :]


def _change(coarse: _Grid, fine: _Grid, tol: float | None = None) -> np.ndarray:
    """Largest change of posterior CDF summaries between two rules, per analysis.

    With ``tol``, the change of the mu CDF (the costly part) is computed only for analyses
    whose tau CDF and marginal likelihood changed by less than ``tol``; the others get the
    larger of those two changes, already at least ``tol`` (not converged either way).
    """
    d_tau = np.abs(coarse.cum() - fine.cum()[:, ::2]).max(axis=1)
    with np.errstate(over="ignore"):  # an overflow is an infinite change: not converged
        d_z = np.abs(np.expm1(fine.log_z - coarse.log_z))
    out = np.maximum(d_tau, d_z)
    rows = slice(None) if tol is None else np.flatnonzero(~(out >= tol))
    pts = _probe_points(coarse, rows)
    mixes = [tuple(a[rows] for a in grid.mu_mix()) for grid in (coarse, fine)]
    d_mu = np.abs(_mix_cdf(pts, *mixes[0]) - _mix_cdf(pts, *mixes[1])).max(axis=1, initial=0.0)
    out[rows] = np.maximum(out[rows], d_mu)
    return out


def _solve(
    y: np.ndarray, v: np.ndarray, mask: np.ndarray, tp: TauPrior, mp: MuPrior, tol: float,
    xmap: _Map, err: np.ndarray, failed: list[np.ndarray],
) -> Iterator[_Grid]:  # fmt: skip
    """Final quadrature groups of an (m x width) batch, each yielded once its analyses are done.

    Analyses are taken a chunk at a time (``exact_chunk_cells``) and refined on their own, so
    neither the chunking nor the order changes any result. Group rows are positions in the
    batch; ``err`` (m,) receives the error estimates, and the error estimates of analyses
    that did not converge are appended to ``failed``. A caller that summarises each group as
    it comes holds one group at a time.
    """
    m, width = y.shape
    step = max(1, _chunk_cells() // (_NODES_HINT * (width + _STATE_ARRAYS)))
    for i in range(0, m, step):
        sl = slice(i, min(i + step, m))
        chunk_err = err[sl]  # a view: written by the refinement
        ref = _centre(y[sl], mask[sl])
        yc = np.where(mask[sl], y[sl] - ref[:, None], 0.0)
        first = _make_grid(_P_START, np.arange(sl.stop - i), yc, v[sl], mask[sl], ref, tp, mp, xmap)
        for grid, converged in _refine(first, tol, chunk_err):
            parts = [grid] if converged else _recentre(grid, tol, chunk_err, failed)
            for part in parts:
                yield replace(part, rows=part.rows + i)


# Analyses refined together hold about 16 (analyses x nodes) arrays (weights, means and
# precisions at two levels, and the convergence checks); each is kept below a quarter of
# "exact_chunk_cells" by halving the analyses still refined when the grid grows.
_STATE_SHARE = 4


def _refine(prev: _Grid, tol: float, err: np.ndarray) -> Iterator[tuple[_Grid, bool]]:
    """Double the panels of the analyses of ``prev`` until each converges.

    Yields ``(group, True)`` for analyses that reached ``tol`` at a level and, after the last
    level (8192 panels), ``(group, False)`` for the others; ``err[rows]`` receives the error
    estimates. Analyses are refined on their own, so halving them as the grid grows (to bound
    memory) does not change any result.
    """
    cells = _chunk_cells()
    while True:
        panels = 2 * prev.panels
        rows = prev.rows.size
        if rows > 1 and rows * panels * _GL_N * _STATE_SHARE > cells:
            half = rows // 2
            halves = [prev.take(np.arange(half, rows)), prev.take(np.arange(half))]
            del prev  # the halves are copies: memory is handed on
            while halves:
                yield from _refine(halves.pop(), tol, err)
            return
        cur = _make_grid(
            panels, prev.rows, prev.y, prev.v, prev.mask, prev.ref, prev.tp, prev.mp, prev.xmap
        )
        last = panels >= _P_START * 2**_MAX_DOUBLINGS
        ch = _change(prev, cur, None if last else tol)  # the whole estimate where it is reported
        err[cur.rows] = ch
        ok = ch < tol
        if ok.any():
            yield cur.take(np.flatnonzero(ok)), True
        if ok.all():
            return
        if last:
            yield cur.take(np.flatnonzero(~ok)), False
            return
        prev = cur.take(np.flatnonzero(~ok))


# Logarithmic scan locating the posterior mode of tau for re-centred maps (tau^2 stays finite).
_SCAN_TAU = 10.0 ** np.arange(-150.0, 150.125, 0.125)
# Re-centre a map only when the mode lies this far (a factor) from the shared centre.
_RECENTRE_FACTOR = 1e3


def _recentre(grid: _Grid, tol: float, err: np.ndarray, failed: list[np.ndarray]) -> list[_Grid]:
    """Retry analyses that did not converge on the shared map with a map of their own.

    The shared map is centred for the batch as a whole; an analysis whose tau posterior lies
    orders of magnitude away (estimates spread over many standard errors, or a prior on a
    very different scale) can then sit within rounding of x = 0 or x = 1. Such an analysis
    (mode of p(log tau | y) more than ``_RECENTRE_FACTOR`` away from the shared centre) is
    refined again on a map centred at that mode, and the rule with the smaller error estimate
    is kept. Updates ``err``; appends the error estimates still above ``tol`` to ``failed``;
    returns the groups of all analyses of ``grid``.
    """
    tp, mp = grid.tp, grid.mp
    ll, _, _ = _conditional(grid.y, grid.v, grid.mask, _SCAN_TAU, mp, grid.ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = ll + _log_prior(tp, _SCAN_TAU, grid.v, grid.mask) + np.log(_SCAN_TAU)[None, :]
    logp = np.where(np.isnan(logp), -np.inf, logp)
    mode = _SCAN_TAU[np.argmax(logp, axis=1)]
    far = np.isfinite(logp.max(axis=1)) & (
        np.abs(np.log(mode / grid.xmap.c)) > math.log(_RECENTRE_FACTOR)
    )
    kept = np.ones(grid.rows.size, dtype=bool)
    out: list[_Grid] = []
    for i in np.flatnonzero(far):
        one = grid.take(np.array([i]))
        own_err = np.full(1, np.inf)
        first = _make_grid(
            _P_START, np.zeros(1, dtype=np.intp), one.y, one.v, one.mask, one.ref, tp, mp,
            _Map.centred(tp, float(mode[i])),
        )  # fmt: skip
        own = [g for g, _ in _refine(first, tol, own_err)]
        if own_err[0] < err[one.rows[0]]:
            out.extend(replace(g, rows=one.rows) for g in own)
            err[one.rows[0]] = own_err[0]
            kept[i] = False
    if kept.any():
        out.append(grid.take(np.flatnonzero(kept)))
    failed.append(err[grid.rows][~(err[grid.rows] < tol)])
    return out


def _warn_unconverged(failed: list[np.ndarray], tol: float) -> None:
    errs = np.concatenate(failed) if failed else np.empty(0)
    if errs.size:
        warnings.warn(
            f"exact quadrature did not reach tol={tol:g} for {errs.size} meta-analys"
            f"{'is' if errs.size == 1 else 'es'} after {_P_START * 2**_MAX_DOUBLINGS} panels; "
            f"largest error estimate {errs.max():.2g} (results are still reported)",
            ConvergenceWarning,
            stacklevel=3,
        )


def _centre(y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reference point of each analysis: the midpoint of its estimates (0 without studies).

    The engine works with estimates, mu and theta relative to it, so that their posteriors
    keep the precision of the data's spread wherever the data lie (estimates of 1e50 with
    standard errors of 1 give mu - ref to full precision), and adds it back on output.
    """
    lo = np.where(mask, y, np.inf).min(axis=1, initial=np.inf)
    hi = np.where(mask, y, -np.inf).max(axis=1, initial=-np.inf)
    ref = 0.5 * lo + 0.5 * hi
    return np.where(np.isfinite(ref), ref, 0.0)


def _data_map(tp: TauPrior, v: np.ndarray, mask: np.ndarray) -> _Map:
    """The tau map of a batch: prior median and median standard error of all its studies."""
    scale = float(np.median(np.sqrt(v[mask]))) if mask.any() else math.nan
    return _Map.for_prior(tp, scale)


def _typical_variance(v: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Higgins-Thompson typical within-study variance, per analysis (k = 1: that variance).

    ``(k - 1) sum(w) / (sum(w)^2 - sum(w^2))`` with ``w = 1 / v``. The denominator is written
    as ``2 sum_i w_i sum_{j<i} w_j`` (positive terms only) and the weights are scaled by their
    largest value, so it stays accurate when the standard errors differ by many orders of
    magnitude, where the textbook difference cancels to zero.
    """
    w = np.where(mask, 1.0 / np.where(mask, v, 1.0), 0.0)
    top = w.max(axis=1, initial=0.0)
    top = np.where(top > 0, top, 1.0)
    u = w / top[:, None]
    k = mask.sum(axis=1)
    su = u.sum(axis=1)
    before = np.zeros_like(u)
    np.cumsum(u[:, :-1], axis=1, out=before[:, 1:])
    cross = 2.0 * (u * before).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = np.where(k > 1, (k - 1) * su / cross, 1.0 / su) / top
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
