"""Exact (deterministic quadrature) posterior of the normal-normal random-effects model.

Model
-----
``y_i ~ N(theta_i, s_i^2)``, ``theta_i ~ N(mu, tau^2)``, ``mu ~`` normal or flat prior,
``tau ~`` any :class:`~bayesmtor.bayes.priors.TauPrior`. Given tau, everything is normal and ``mu``
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
  An analysis that does not converge on this map, and whose posterior mode of ``log tau``
  (found on a logarithmic scan) lies more than a factor 1000 from ``c`` -- estimates many
  standard errors apart, or a prior on another scale than the data -- is refined again on a
  map centred at that mode, and the better of the two rules is kept.
* Estimates, the prior mean and the mixtures of ``mu``, ``theta_i`` and ``theta_new`` are
  taken relative to the midpoint of each analysis's estimates, which is added back on output:
  their posteriors keep the precision of the data's spread wherever the data lie (translation
  equivariance to rounding; estimates of 1e50 with standard errors of 1 are no harder than
  estimates near 0).
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
  bracketed by the extreme component quantiles (to ~1e-12 of the mixture's SD, so results
  scale with the data: multiplying estimates, standard errors and prior scales by ``c``
  multiplies every quantile by ``c`` and leaves probabilities unchanged).
* Memory: sums over studies and over quadrature nodes are evaluated in tiles of at most
  ``config.defaults["exact_chunk_cells"]`` cells (analyses x nodes x studies), analyses in
  chunks, and shrunken study effects in slices of studies, so working memory does not grow
  with the number of studies or of analyses (one meta-analysis of 100,000 studies runs in
  about 250 MB, interpreter included). Studies are summed in fixed blocks of 4096 whose
  totals are added in order, and every tile computes its entries exactly as one large array
  would: results do not depend on the chunk size.

:func:`exact_batch` evaluates many meta-analyses at once (``m x kmax`` arrays with a mask),
:func:`exact_batch_groups` the same from one entry per study (long format, bucketed by size so
that a few large analyses do not pad many small ones). All analyses share the transformed tau
grid, the arithmetic is broadcast over analyses, and only analyses not yet converged are
refined further. An analysis depends on the others of its batch only through the shared map
``c`` (differences within ``tol``) and, to rounding, through the width it is padded to.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from bayesmtor import config
from bayesmtor.bayes.priors import MuPrior, TauPrior, check_proper_posterior
from bayesmtor.bayes.quadrature import (
    _GL_N,
    _LOG2PI,
    _STATE_SHARE,
    _check_inputs,
    _chunk_cells,
    _conditional,
    _data_map,
    _Grid,
    _log_prior,
    _Map,
    _mix_cdf,
    _mix_moments,
    _mix_pdf,
    _mix_quantile,
    _row_slices,
    _solve,
    _tiles,
    _typical_variance,
    _warn_unconverged,
    conditional_normal,
)
from bayesmtor.bayes.workers import processes, run_buckets
from bayesmtor.errors import EstimationError, InputError, NotEstimableWarning
from bayesmtor.vocabulary import check_prob

__all__ = [
    "BatchPosterior",
    "ExactPosterior",
    "conditional_normal",
    "exact_batch",
    "exact_batch_groups",
    "exact_batch_posterior",
    "exact_posterior",
]


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
        errs = self.error_estimate[~np.isnan(self.error_estimate)]
        worst = f"{errs.max():.2g}" if errs.size else "none"
        return (
            f"BatchPosterior(m={self.k.size}, tau_prior={self.tau_prior!r}, "
            f"mu_prior={self.mu_prior!r}, max error estimate={worst})"
        )

    def _apply(self, fn: Any, x: Any, *, by_column: bool = True) -> np.ndarray:
        """Evaluate ``fn(group, x_rows)`` per quadrature group; x is (m,), (m, q) or scalar.

        Each group is evaluated in tiles of at most ``exact_chunk_cells`` cells (entries x
        nodes); ``by_column=False`` keeps the entries of a row together (``fn`` iterates per row).
        """
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
            xs = a2[gr.rows]
            g, q = xs.shape
            n = gr.tau.size
            if by_column:
                tiles = _tiles(g, q, n)
            else:
                tiles = [(rs, slice(None)) for rs in _row_slices(g, q * n)]
            for rs, cs in tiles:
                out[gr.rows[rs], cs] = fn(gr.take(rs), np.ascontiguousarray(xs[rs, cs]))
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
        return self._per_row(lambda g: (g.pw * g.tau).sum(axis=1))

    def mu_cdf(self, x: Any) -> np.ndarray:
        """Posterior CDF of mu."""
        return self._apply(lambda g, xx: _mix_cdf(xx - g.ref[:, None], *g.mu_mix()), x)

    def mu_quantile(self, q: Any) -> np.ndarray:
        """Posterior quantiles of mu."""
        return self._apply(
            lambda g, qq: g.ref[:, None] + _mix_quantile(qq, *g.mu_mix()), q, by_column=False
        )

    def mu_mean(self) -> np.ndarray:
        """Posterior mean of mu."""
        return self._per_row(lambda g: g.ref + _mix_moments(*g.mu_mix())[0])

    def mu_sd(self) -> np.ndarray:
        """Posterior standard deviation of mu."""
        return self._per_row(lambda g: _mix_moments(*g.mu_mix())[1])

    def theta_new_quantile(self, q: Any) -> np.ndarray:
        """Quantiles of the effect in a new trial (posterior predictive of theta_new)."""
        return self._apply(
            lambda g, qq: g.ref[:, None] + _mix_quantile(qq, *g.new_mix()), q, by_column=False
        )

    def interval(self, what: str, ci_prob: float, kind: str | None = None) -> np.ndarray:
        """Credible interval (m, 2) of ``what`` (``"mu"``, ``"tau"`` or ``"theta_new"``).

        ``kind`` ``"central"`` (equal tails) or ``"shortest"`` (default config ``"ci_kind"``):
        the narrowest interval holding ``ci_prob``, found by minimising the width
        ``Q(a + ci_prob) - Q(a)`` over the probability ``a`` left of it (golden-section search
        to 1e-11 in ``a``, vectorised over analyses; the width is unimodal in ``a`` for the
        unimodal posteriors of this model). For tau the interval ``[Q(0), Q(ci_prob)]``
        (``[0, q]`` for priors on [0, inf)) is kept when it is the narrowest, as in R
        bayesmeta's ``post.interval(method="shortest")``.
        """
        kind_ = _check_kind(kind)
        qfn = {
            "mu": self.mu_quantile, "tau": self.tau_quantile, "theta_new": self.theta_new_quantile,
        }[what]  # fmt: skip
        m = self.k.size
        if kind_ == "central":
            return qfn(np.tile([(1.0 - ci_prob) / 2.0, (1.0 + ci_prob) / 2.0], (m, 1)))

        def width(a: np.ndarray) -> np.ndarray:
            q = qfn(np.column_stack([a, a + ci_prob]))
            return q[:, 1] - q[:, 0]

        span = 1.0 - ci_prob
        lo = np.full(m, span * 1e-9 if what != "tau" else 0.0)
        hi = np.full(m, span * (1.0 - 1e-9))
        ratio = (math.sqrt(5.0) - 1.0) / 2.0
        x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        f1, f2 = width(x1), width(x2)
        for _ in range(_GOLDEN_STEPS):
            left = ~(f1 > f2)  # the minimum lies in [lo, x2] (NaN rows: either way)
            hi, lo = np.where(left, x2, hi), np.where(left, lo, x1)
            new = np.where(left, hi - ratio * (hi - lo), lo + ratio * (hi - lo))
            fn = width(new)
            x1, f1, x2, f2 = (
                np.where(left, new, x2), np.where(left, fn, f2),
                np.where(left, x1, new), np.where(left, f1, fn),
            )  # fmt: skip
        a = 0.5 * (lo + hi)
        out = qfn(np.column_stack([a, a + ci_prob]))
        if what == "tau":  # the interval from the lower end of the support, when narrower
            edge = qfn(np.tile([0.0, ci_prob], (m, 1)))
            narrower = (edge[:, 1] - edge[:, 0]) <= (out[:, 1] - out[:, 0])
            out = np.where(narrower[:, None], edge, out)
        return out

    def p_mu_below(self, threshold: float = 0.0) -> np.ndarray:
        """Posterior probability that mu < threshold."""
        return self.mu_cdf(np.full(self.k.size, float(threshold)))

    @property
    def priors_proper(self) -> bool:
        """True when both priors are proper, so that marginal likelihoods and Bayes factors
        are defined."""
        return self.tau_prior.is_proper and not self.mu_prior.is_flat

    def log_marginal_likelihood(self) -> np.ndarray | None:
        """log p(y) = log of the integral of ``prod_i N(y_i; mu, s_i^2 + tau^2) p(mu) p(tau)``
        over mu and tau, both priors normalised (``None`` unless both priors are proper)."""
        if not self.priors_proper:
            return None
        return self._per_row(lambda g: g.log_z)

    def log_likelihood_tau0(self) -> np.ndarray:
        """log p(y | tau = 0): mu integrated out analytically under its normal prior."""
        return self._per_row(lambda g: _at_tau0(g)[0])

    def fixed_effect_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and SD of the conjugate posterior of mu at tau = 0 (the fixed-effect model)."""
        mean = self._per_row(lambda g: g.ref + _at_tau0(g)[1])
        sd = self._per_row(lambda g: 1.0 / np.sqrt(_at_tau0(g)[2]))
        return mean, sd

    def log_likelihood_mu0(self) -> np.ndarray:
        """log p(y | mu = 0), the integral over tau of ``p(tau) prod_i N(y_i; 0, s_i^2 + tau^2)``.

        By the Savage-Dickey identity (mu and tau are independent a priori),
        ``p(y | mu = 0) = p(y) p(mu = 0 | y) / p(mu = 0)``: the posterior density of mu at 0
        is a normal mixture over the same quadrature nodes.
        """

        def one(g: _Grid) -> np.ndarray:
            dens = _mix_pdf(-g.ref[:, None], *g.mu_mix())[:, 0]
            with np.errstate(divide="ignore"):
                return g.log_z + np.log(dens) - float(self.mu_prior.logpdf(0.0))

        return self._per_row(one)

    def log_likelihood_null(self) -> np.ndarray:
        """log p(y | mu = 0, tau = 0) = sum_i log N(y_i; 0, s_i^2)."""

        def one(g: _Grid) -> np.ndarray:
            y = g.y + g.ref[:, None]
            terms = -0.5 * (_LOG2PI + np.log(g.v) + y * y / g.v)
            return np.where(g.mask, terms, 0.0).sum(axis=1)

        return self._per_row(one)

    def bayes_factors(self) -> dict[str, np.ndarray]:
        """``log_marginal_likelihood``, ``bf_tau0 = p(y | tau = 0) / p(y)`` and
        ``bf_mu0 = p(y | mu = 0) / p(y)`` per analysis (R bayesmeta's
        ``bayesfactor["actual", ]``); NaN unless both priors are proper."""
        m = self.k.size
        if not self.priors_proper:
            nan = np.full(m, np.nan)
            return {"log_marginal_likelihood": nan, "bf_tau0": nan.copy(), "bf_mu0": nan.copy()}
        lz = self._per_row(lambda g: g.log_z)
        with np.errstate(over="ignore"):
            return {
                "log_marginal_likelihood": lz,
                "bf_tau0": np.exp(self.log_likelihood_tau0() - lz),
                "bf_mu0": np.exp(self.log_likelihood_mu0() - lz),
            }


# Golden-section steps of the shortest-interval search: 0.618^50 of (1 - ci_prob) < 1e-11.
_GOLDEN_STEPS = 50


def _check_kind(kind: str | None) -> str:
    from bayesmtor.vocabulary import INTERVAL_KINDS

    value = config.get("ci_kind", kind)
    if value not in INTERVAL_KINDS:
        raise InputError(
            f"interval kind must be one of {', '.join(INTERVAL_KINDS)}, got {value!r}",
            column="interval",
        )
    return str(value)


def _at_tau0(g: _Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log p(y | tau = 0), E[mu | tau = 0, y] - ref and its precision, per analysis of ``g``."""
    ll, mean, prec = _conditional(g.y, g.v, g.mask, np.zeros(1), g.mp, g.ref)
    return ll[:, 0], mean[:, 0], prec[:, 0]


def _options(
    tau_prior: TauPrior | str | None, mu_prior: MuPrior | str | None, tol: float | None
) -> tuple[TauPrior, MuPrior, float]:
    tp = TauPrior.coerce(tau_prior)
    mp = MuPrior.coerce(mu_prior)
    tol_ = float(config.get("exact_tol", tol))
    if not (tol_ > 0 and math.isfinite(tol_)):
        raise InputError(f"'tol' must be a positive number, got {tol!r}", column="tol")
    return tp, mp, tol_


def _warn_empty(empty: np.ndarray) -> None:
    n = int(empty.sum())
    if n:
        warnings.warn(
            f"{n} meta-analys{'is has' if n == 1 else 'es have'} no studies; results are "
            "reported as missing",
            NotEstimableWarning,
            stacklevel=3,
        )


def _check_proper(tp: TauPrior, mp: MuPrior, k: np.ndarray) -> None:
    """Refuse improper posteriors (see :func:`~bayesmtor.bayes.priors.check_proper_posterior`)
    for the smallest analysis that has studies."""
    live = k[k > 0]
    if live.size:
        check_proper_posterior(tp, mp, int(live.min()))


def _prepare(
    yi: Any, sei: Any, mask: Any, tp: TauPrior, mp: MuPrior
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, _Map]:
    """Checked (m x kmax) data, variances, mask (one placeholder study in each empty analysis,
    so that the arrays stay rectangular), numbers of studies and the tau map of the batch."""
    y, s, mk = _check_inputs(yi, sei, mask)
    k = mk.sum(axis=1)
    _check_proper(tp, mp, k)
    v = s**2
    xmap = _data_map(tp, v, mk)  # from the studies only, not from placeholders
    empty = k == 0
    _warn_empty(empty)
    if empty.any():
        mk = mk.copy()
        mk[empty, 0] = True
    return y, v, mk, k, xmap


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

    The analyses are refined in chunks (config ``"exact_chunk_cells"``), so working memory
    does not grow with ``m`` or ``kmax``; the posterior returned keeps, per analysis, one
    mixture weight, mean and precision per quadrature node (typically 32 to 128 nodes).

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
    tp, mp, tol_ = _options(tau_prior, mu_prior, tol)
    y, v, mk, k, xmap = _prepare(yi, sei, mask, tp, mp)
    err = np.full(k.size, np.inf)
    failed: list[np.ndarray] = []
    groups = list(_solve(y, v, mk, tp, mp, tol_, xmap, err, failed))
    _warn_unconverged(failed, tol_)
    err = np.where(k == 0, np.nan, err)
    return BatchPosterior(
        k=k, tau_prior=tp, mu_prior=mp, tol=tol_, error_estimate=err, _groups=tuple(groups),
        _s2_typical=_typical_variance(v, mk),
    )  # fmt: skip


_TABLE_COLUMNS = (
    "mu_mean", "mu_median", "mu_low", "mu_high", "tau_median", "tau_low", "tau_high",
    "pred_low", "pred_high", "p_mu_below_0", "quad_error", "log_marginal_likelihood", "bf_tau0",
    "bf_mu0",
)  # fmt: skip


def _fill_table(
    out: dict[str, np.ndarray], rows: np.ndarray, y: np.ndarray, v: np.ndarray,
    mask: np.ndarray, tp: TauPrior, mp: MuPrior, tol: float, xmap: _Map, ci: float,
    failed: list[np.ndarray], kind: str = "central", bma: Any = None,
) -> None:  # fmt: skip
    """Summaries of the analyses (y, v, mask) into ``out[column][rows]``.

    Final groups are summarised together until they hold about ``exact_chunk_cells / 4``
    (analyses x nodes), then dropped, so memory stays bounded however far analyses refine.
    """
    err = np.full(y.shape[0], np.inf)
    pending: list[_Grid] = []
    held = 0
    for grid in _solve(y, v, mask, tp, mp, tol, xmap, err, failed):
        pending.append(grid)
        held += grid.rows.size * grid.tau.size
        if held * _STATE_SHARE > _chunk_cells():
            _summarise(out, rows, pending, mask, err, tp, mp, tol, ci, kind, bma)
            pending, held = [], 0
    if pending:
        _summarise(out, rows, pending, mask, err, tp, mp, tol, ci, kind, bma)


def _summarise(
    out: dict[str, np.ndarray], rows: np.ndarray, groups: list[_Grid], mask: np.ndarray,
    err: np.ndarray, tp: TauPrior, mp: MuPrior, tol: float, ci: float, kind: str,
    bma: Any = None,
) -> None:  # fmt: skip
    at = np.concatenate([g.rows for g in groups])
    m = at.size
    local, start = [], 0
    for g in groups:  # the groups' rows renumbered 0 .. m - 1 in the order of ``at``
        local.append(replace(g, rows=np.arange(start, start + g.rows.size)))
        start += g.rows.size
    post = BatchPosterior(
        k=mask[at].sum(axis=1), tau_prior=tp, mu_prior=mp, tol=tol, error_estimate=err[at],
        _groups=tuple(local), _s2_typical=np.full(m, np.nan),
    )  # fmt: skip
    lo, hi = (1.0 - ci) / 2.0, (1.0 + ci) / 2.0
    mu_q = post.mu_quantile(np.tile([0.5, lo, hi], (m, 1)))
    tau_q = post.tau_quantile(np.tile([0.5, lo, hi], (m, 1)))
    pred = post.theta_new_quantile(np.tile([lo, hi], (m, 1)))
    if kind == "shortest":  # medians unchanged
        mu_q[:, 1:] = post.interval("mu", ci, kind)
        tau_q[:, 1:] = post.interval("tau", ci, kind)
        pred = post.interval("theta_new", ci, kind)
    cols = (
        post.mu_mean(), mu_q[:, 0], mu_q[:, 1], mu_q[:, 2], tau_q[:, 0], tau_q[:, 1],
        tau_q[:, 2], pred[:, 0], pred[:, 1], post.p_mu_below(0.0), err[at],
        *post.bayes_factors().values(),
    )  # fmt: skip
    for name, col in zip(_TABLE_COLUMNS, cols, strict=True):
        out[name][rows[at]] = col
    if bma is not None:  # the prior model probabilities, checked
        from bayesmtor.bayes.model_averaging import bma_batch, bma_columns

        for name, col in bma_columns(bma_batch(post, bma, ci)).items():
            out[name][rows[at]] = col


def _table(k: np.ndarray, out: dict[str, np.ndarray]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(_table_columns(k, out))


def _table_columns(k: np.ndarray, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    empty = k == 0
    for col in out.values():
        col[empty] = np.nan
    return {"k": k.astype(int), **out}


def exact_batch(
    yi: Any,
    sei: Any,
    mask: Any = None,
    *,
    tau_prior: TauPrior | str | None = None,
    mu_prior: MuPrior | str | None = None,
    tol: float | None = None,
    ci_prob: float | None = None,
    interval: str | None = None,
) -> pd.DataFrame:
    """Summaries of ``m`` meta-analyses at once (one row each; vectorised over analyses).

    The analyses are evaluated and summarised in chunks (config ``"exact_chunk_cells"``), so
    working memory does not grow with ``m`` or ``kmax``. For analyses of very different sizes,
    :func:`exact_batch_groups` avoids padding them all to the largest.

    ``interval`` is ``"central"`` or ``"shortest"`` (default config ``"ci_kind"``); see
    :meth:`BatchPosterior.interval`.

    Returns
    -------
    pandas.DataFrame
        Columns ``k, mu_mean, mu_median, mu_low, mu_high, tau_median, tau_low, tau_high,
        pred_low, pred_high, p_mu_below_0`` (``ci_prob`` intervals; ``pred_*`` is the
        interval for a new trial's effect theta_new), ``quad_error`` (the quadrature error
        estimate reached) and ``log_marginal_likelihood, bf_tau0, bf_mu0`` (NaN unless both
        priors are proper; :meth:`BatchPosterior.bayes_factors`). Rows without studies are
        missing (NaN).
    """
    ci = _check_ci(ci_prob)
    kind = _check_kind(interval)
    tp, mp, tol_ = _options(tau_prior, mu_prior, tol)
    y, v, mk, k, xmap = _prepare(yi, sei, mask, tp, mp)
    out = {name: np.full(k.size, np.nan) for name in _TABLE_COLUMNS}
    failed: list[np.ndarray] = []
    _fill_table(out, np.arange(k.size), y, v, mk, tp, mp, tol_, xmap, ci, failed, kind)
    _warn_unconverged(failed, tol_)
    return _table(k, out)


def exact_batch_groups(
    yi: Any,
    sei: Any,
    group: Any,
    *,
    n_groups: int | None = None,
    tau_prior: TauPrior | str | None = None,
    mu_prior: MuPrior | str | None = None,
    tol: float | None = None,
    ci_prob: float | None = None,
    interval: str | None = None,
    bma: bool = False,
    bma_prior_probs: Any = None,
) -> pd.DataFrame:
    """Summaries of many meta-analyses given one study per entry (long format).

    Gives the same table as :func:`exact_batch` would for the studies scattered into padded
    ``(n_groups x kmax)`` arrays, without building them: analyses are evaluated in buckets of
    similar size (k in 1, 2, 3-4, 5-8, 9-16, ...), each padded only to its own largest k, so
    one analysis of 100,000 studies beside 100,000 analyses of one study costs memory in
    proportion to the number of studies. All share the tau grid of the whole batch.

    Parameters
    ----------
    yi, sei : array_like, shape (n,)
        Estimates and standard errors of all studies.
    group : array_like of int, shape (n,)
        The meta-analysis of each study: integer codes ``0 .. n_groups - 1`` (for example from
        :func:`pandas.factorize`). Within an analysis, studies keep their order.
    n_groups : int, optional
        Number of meta-analyses (default: the largest code + 1). Codes without studies give
        rows of missing values.
    tau_prior, mu_prior, tol, ci_prob, interval :
        As for :func:`exact_batch`.
    bma : bool
        Also average over the four models of
        :mod:`~bayesmtor.bayes.model_averaging` (columns
        :data:`~bayesmtor.bayes.model_averaging.BMA_COLUMNS`); both priors must be proper.
    bma_prior_probs : mapping or sequence, optional
        Prior model probabilities (default config ``"bma_prior_probs"``).

    Returns
    -------
    pandas.DataFrame
        One row per code, in code order, with the columns of :func:`exact_batch`.
    """
    import pandas as pd

    return pd.DataFrame(
        exact_batch_group_columns(
            yi, sei, group, n_groups=n_groups, tau_prior=tau_prior, mu_prior=mu_prior, tol=tol,
            ci_prob=ci_prob, interval=interval, bma=bma, bma_prior_probs=bma_prior_probs,
        )
    )  # fmt: skip


def exact_batch_group_columns(
    yi: Any,
    sei: Any,
    group: Any,
    *,
    n_groups: int | None = None,
    tau_prior: TauPrior | str | None = None,
    mu_prior: MuPrior | str | None = None,
    tol: float | None = None,
    ci_prob: float | None = None,
    interval: str | None = None,
    bma: bool = False,
    bma_prior_probs: Any = None,
) -> dict[str, np.ndarray]:
    """:func:`exact_batch_groups` as a dict of columns (one value per code), without pandas
    (``bayesmtor pool --bayes``)."""
    ci = _check_ci(ci_prob)
    kind = _check_kind(interval)
    tp, mp, tol_ = _options(tau_prior, mu_prior, tol)
    y, s, _ = _check_inputs(yi, sei, None)
    y, v = y[0], s[0] ** 2
    codes, m = _group_codes(group, y.size, n_groups)
    k = np.bincount(codes, minlength=m)
    _check_proper(tp, mp, k)
    names = _TABLE_COLUMNS
    probs = None
    if bma:
        from bayesmtor.bayes.model_averaging import BMA_COLUMNS, check_model_priors, require_proper

        require_proper(tp, mp)
        probs = check_model_priors(bma_prior_probs)
        names = (*_TABLE_COLUMNS, *BMA_COLUMNS)
    xmap = _data_map(tp, v, np.ones(v.size, dtype=bool))
    _warn_empty(k == 0)
    order = np.argsort(codes, kind="stable")
    ys, vs = y[order], v[order]
    start = np.cumsum(k) - k
    size_class = np.ceil(np.log2(np.maximum(k, 1))).astype(int)
    out = {name: np.full(m, np.nan) for name in names}
    failed: list[np.ndarray] = []
    jobs = []
    for c in np.unique(size_class[k > 0]):
        rows = np.flatnonzero((size_class == c) & (k > 0))
        width = int(k[rows].max())
        mk = np.arange(width)[None, :] < k[rows][:, None]
        idx = np.where(mk, start[rows][:, None] + np.arange(width)[None, :], 0)
        jobs.append((rows, np.where(mk, ys[idx], 0.0), np.where(mk, vs[idx], 1.0), mk))
        del idx

    def fill(part, local, yb, vb, mk, part_failed):
        _fill_table(part, local, yb, vb, mk, tp, mp, tol_, xmap, ci, part_failed, kind, probs)

    run_buckets(fill, names, out, jobs, failed, processes(int((k > 0).sum())))
    _warn_unconverged(failed, tol_)
    return _table_columns(k, out)


def _group_codes(group: Any, n: int, n_groups: int | None) -> tuple[np.ndarray, int]:
    codes = np.asarray(group)
    if codes.shape != (n,) or not (codes.dtype.kind in "iu" or n == 0):
        raise InputError(
            f"'group' must be {n} integer codes (one per study, e.g. from pandas.factorize), "
            f"got {codes.dtype} values of shape {codes.shape}",
            column="group",
        )
    codes = codes.astype(np.intp)
    top = int(codes.max()) + 1 if n else 0
    if n_groups is not None:
        if (
            isinstance(n_groups, bool)
            or not isinstance(n_groups, (int, np.integer))
            or n_groups < 0
        ):
            raise InputError(
                f"'n_groups' must be a non-negative integer, got {n_groups!r}", column="n_groups"
            )
        if top > n_groups:
            raise InputError(
                f"group code {top - 1} is out of range for n_groups={n_groups}; codes must be "
                f"0 .. n_groups - 1",
                column="group",
            )
    if n and codes.min() < 0:
        raise InputError(
            f"group code {int(codes.min())} is negative; codes must be 0 .. n_groups - 1",
            column="group",
        )
    return codes, top if n_groups is None else int(n_groups)


def _scalar(r: np.ndarray) -> np.ndarray | float:
    """A 0-d result as a float, any other as it is."""
    return float(r) if r.ndim == 0 else r


def _check_ci(ci_prob: float | None) -> float:
    return check_prob(config.get("ci_prob", ci_prob), "ci_prob")


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
        p(y) under the proper priors (``None`` with a flat mu prior or an improper tau
        prior); it under- or overflows for data on extreme scales or with many studies, where
        :attr:`log_marginal_likelihood` does not.
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
    def log_marginal_likelihood(self) -> float | None:
        """log p(y) under the proper priors (``None`` unless both priors are proper)."""
        lml = self._batch.log_marginal_likelihood()
        return None if lml is None else float(lml[0])

    def bayes_factors(self) -> dict[str, float | None]:
        """``log_marginal_likelihood``, ``bf_tau0 = p(y | tau = 0) / p(y)`` (> 1 when the data
        favour tau = 0) and ``bf_mu0 = p(y | mu = 0) / p(y)``: R bayesmeta's
        ``marginal.likelihood`` and ``bayesfactor["actual", ]``. All ``None`` unless both
        priors are proper."""
        return {
            key: None if math.isnan(v[0]) else float(v[0])
            for key, v in self._batch.bayes_factors().items()
        }

    @property
    def _g(self) -> _Grid:
        return self._batch._groups[0]

    def _vec(self, x: Any) -> tuple[np.ndarray, tuple[int, ...]]:
        a = np.asarray(x, dtype=float)
        return a.reshape(1, -1), a.shape

    def _at(self, fn: Callable[[np.ndarray], np.ndarray], x: Any) -> np.ndarray:
        """A function of the one-analysis batch (``fn``) at the points ``x``, shaped as ``x``."""
        xx, shape = self._vec(x)
        return fn(xx).reshape(shape)

    # --- tau
    def tau_pdf(self, tau: Any) -> np.ndarray:
        """Posterior density of tau (exact evaluation, not interpolated)."""
        t, shape = self._vec(tau)
        tt = np.where(t > 0, t, 0.0)
        g = self._g
        ll, _, _ = _conditional(g.y, g.v, g.mask, tt[0], self.mu_prior, g.ref)
        logpost = _log_prior(self.tau_prior, tt, g.v, g.mask) + ll - self._g.log_z[0]
        return np.where(t >= 0, np.exp(logpost), 0.0).reshape(shape)

    def tau_cdf(self, tau: Any) -> np.ndarray:
        """Posterior CDF of tau."""
        return self._at(self._batch.tau_cdf, tau)

    def tau_quantile(self, q: Any) -> np.ndarray | float:
        """Posterior quantiles of tau."""
        return _scalar(self._at(self._batch.tau_quantile, q))

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
        return self._at(self._batch.mu_cdf, x)

    def mu_quantile(self, q: Any) -> np.ndarray | float:
        """Posterior quantiles of mu."""
        return _scalar(self._at(self._batch.mu_quantile, q))

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
        return _mix_cdf(xx - self._g.ref[:, None], *self._g.new_mix()).reshape(shape)

    def theta_new_quantile(self, q: Any) -> np.ndarray | float:
        """Quantiles of a new trial's effect theta_new (prediction interval end points)."""
        return _scalar(self._at(self._batch.theta_new_quantile, q))

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
        return _scalar(t**2 / (t**2 + self.s2_typical))

    def _i2_moments(self) -> tuple[float, float]:
        t2 = self._g.tau**2
        i2 = t2 / (t2 + self.s2_typical)
        m = float((self._g.pw[0] * i2).sum())
        return m, float(math.sqrt(max((self._g.pw[0] * i2**2).sum() - m * m, 0.0)))

    # --- study-specific effects
    def _theta_mix(self, studies: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normal mixtures of theta_i - ref over the nodes of positive posterior weight (with
        many studies the posterior of tau is narrow and most weights underflow to exactly 0)."""
        a = self._g
        live = a.pw[0] > 0
        t2 = a.tau[None, live] ** 2  # (1, n)
        s2 = (self.sei[studies] ** 2)[:, None]  # (k, 1)
        b = s2 / (s2 + t2)
        means = (1.0 - b) * a.y[0, studies][:, None] + b * a.mean[0][None, live]
        var = s2 * t2 / (s2 + t2) + b**2 / a.prec[0][None, live]
        wts = np.broadcast_to(a.pw[0][live], means.shape)
        return np.ascontiguousarray(wts), means, np.sqrt(np.maximum(var, 1e-300))

    def theta_summary(self, ci_prob: float | None = None) -> pd.DataFrame:
        """Shrinkage estimates: posterior of each study's effect theta_i.

        Columns: ``study, yi, sei, mean, sd, median, q_low, q_high`` (central interval).
        Studies are evaluated in chunks (config ``"exact_chunk_cells"``), so memory does not
        grow with k beyond the table itself.
        """
        import pandas as pd

        ci = _check_ci(ci_prob)
        probs = [0.5, (1 - ci) / 2, (1 + ci) / 2]
        mean, sd, qs = np.empty(self.k), np.empty(self.k), np.empty((self.k, 3))
        for sl in _row_slices(self.k, 3 * int((self._g.pw[0] > 0).sum())):
            wts, means, sds = self._theta_mix(sl)
            mean[sl], sd[sl] = _mix_moments(wts, means, sds)
            qs[sl] = _mix_quantile(np.tile(probs, (wts.shape[0], 1)), wts, means, sds)
        ref = self._g.ref[0]
        df = pd.DataFrame(
            {
                "study": list(self.labels),
                "yi": self.yi,
                "sei": self.sei,
                "mean": ref + mean,
                "sd": sd,
                "median": ref + qs[:, 0],
                "q_low": ref + qs[:, 1],
                "q_high": ref + qs[:, 2],
            }
        )
        df.attrs["ci_prob"] = ci
        return df

    # --- tables and draws
    def interval(self, what: str, ci_prob: float | None = None, kind: str | None = None):
        """Credible interval ``(low, high)`` of ``"mu"``, ``"tau"`` or ``"theta_new"``,
        ``kind`` ``"central"`` or ``"shortest"`` (default config ``"ci_kind"``); see
        :meth:`BatchPosterior.interval`."""
        lo, hi = self._batch.interval(what, _check_ci(ci_prob), kind)[0]
        return float(lo), float(hi)

    def summary(self, ci_prob: float | None = None, interval: str | None = None) -> pd.DataFrame:
        """Posterior summary: rows ``mu, tau, theta_new, I2``; columns ``mean, sd, median,
        q_low, q_high`` (``ci_prob`` interval, central or shortest by ``interval``; defaults
        from the config registry: ``ci_prob`` and ``ci_kind``). I2 is monotone in tau, so its
        interval is the image of tau's."""
        import pandas as pd

        ci = _check_ci(ci_prob)
        kind = _check_kind(interval)
        qs = [0.5, (1 - ci) / 2, (1 + ci) / 2]
        new_q = np.asarray(self.theta_new_quantile(qs))
        mu_q = np.asarray(self.mu_quantile(qs))
        tau_q = np.asarray(self.tau_quantile(qs))
        if kind == "shortest":
            mu_q[1:] = self.interval("mu", ci, kind)
            tau_q[1:] = self.interval("tau", ci, kind)
            new_q[1:] = self.interval("theta_new", ci, kind)
        i2_q = tau_q**2 / (tau_q**2 + self.s2_typical)
        i2_mean, i2_sd = self._i2_moments()
        rows = {
            "mu": [self.mu_mean(), self.mu_sd(), *mu_q],
            "tau": [self.tau_mean(), self.tau_sd(), *tau_q],
            "theta_new": [self.mu_mean(), self.theta_new_sd(), *new_q],
            "I2": [i2_mean, i2_sd, *i2_q],
        }
        df = pd.DataFrame.from_dict(
            rows, orient="index", columns=["mean", "sd", "median", "q_low", "q_high"]
        )
        df.index.name = "parameter"
        df.attrs["ci_prob"] = ci
        df.attrs["ci_kind"] = kind
        return df

    def draws(self, n: int, rng: np.random.Generator | int | None) -> pd.DataFrame:
        """Independent posterior draws of ``tau, mu, theta_new`` (columns), e.g. for plots or
        comparison with MCMC. ``rng`` is a numpy Generator or a seed."""
        import pandas as pd

        if int(n) < 1:
            raise InputError(f"'n' must be a positive integer, got {n!r}", column="n")
        gen = np.random.default_rng(rng)
        u = gen.uniform(size=int(n))
        tau = np.asarray(self.tau_quantile(u), dtype=float).reshape(-1)
        g = self._g
        _, mean, prec = _conditional(g.y, g.v, g.mask, tau, self.mu_prior, g.ref)
        mu = g.ref[0] + mean[0] + gen.standard_normal(tau.size) / np.sqrt(prec[0])
        new = mu + tau * gen.standard_normal(tau.size)
        return pd.DataFrame({"tau": tau, "mu": mu, "theta_new": new})

    def to_inference_data(
        self, *, draws: int | None = None, chains: int | None = None, seed: int = 0
    ) -> Any:
        """ArviZ InferenceData of independent draws from this exact posterior.

        The draws are exact (quadrature inverse-CDF), not MCMC: ``posterior.attrs["engine"]``
        is ``"exact"``, ``posterior.attrs["draws_are"]`` is ``"independent exact draws"`` and
        the attribute ``note`` says so. They are stored as several chains of independent
        draws so that ArviZ's diagnostics see the shape they expect (``az.summary`` gives no
        warning; R-hat is 1 and the ESS about the number of draws, up to Monte Carlo noise).
        The ``posterior`` group holds ``mu``, ``tau``, ``theta_new`` and the study effects
        ``theta`` (dims ``chain, draw[, trial]``), as the MCMC fits do; ``observed_data`` holds ``y`` and ``constant_data`` ``sei``.

        Parameters
        ----------
        draws : int, optional
            Draws per chain; default ``config.defaults["exact_draws"]`` (1000).
        chains : int, optional
            Number of chains (independent blocks of draws, for tools that expect chains);
            default ``config.defaults["exact_chains"]`` (4).
        seed : int
            Seed of the draws (the same seed gives the same draws).
        """
        from bayesmtor._arviz import load as _load_arviz

        az = _load_arviz()

        n = int(config.get("exact_draws", draws))
        m = int(config.get("exact_chains", chains))
        if n < 1 or m < 1:
            raise InputError(f"draws and chains must be positive, got {draws!r}, {chains!r}")
        rng = np.random.default_rng(seed)
        d = self.draws(n * m, rng)
        tau, mu = d["tau"].to_numpy(), d["mu"].to_numpy()
        y, s = self.yi, self.sei
        mean, var = conditional_normal(y[None, :], s[None, :] ** 2, mu[:, None], tau[:, None] ** 2)
        theta = mean + np.sqrt(var) * rng.standard_normal(mean.shape)
        idata = az.from_dict(
            posterior={
                "mu": mu.reshape(m, n),
                "tau": tau.reshape(m, n),
                "theta_new": d["theta_new"].to_numpy().reshape(m, n),
                "theta": theta.reshape(m, n, len(y)),
            },
            observed_data={"y": y},
            constant_data={"sei": s},
            coords={"trial": list(self.labels)},
            dims={"theta": ["trial"], "y": ["trial"], "sei": ["trial"]},
        )
        blocks = "one chain" if m == 1 else f"{m} chains of {n}"
        idata.posterior.attrs.update(
            {
                "engine": "exact",
                "draws_are": "independent exact draws",
                "note": (
                    f"{n * m} independent draws from the exact (quadrature) posterior of the "
                    f"normal-normal model ({blocks}), no MCMC: the chains are independent "
                    "blocks of exact draws"
                ),
                "tau_prior": self.tau_prior.to_string(),
                "mu_prior": self.mu_prior.to_string(),
                "seed": int(seed),
                "quadrature_error_estimate": float(self.error_estimate),
            }
        )
        return idata

    @property
    def idata(self) -> Any:
        """:meth:`to_inference_data` with its defaults (config ``exact_chains`` chains of
        ``exact_draws`` draws, seed 0), so that an exact posterior offers ``.idata`` and
        ``.summary()`` as an MCMC fit does."""
        return self.to_inference_data()


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
