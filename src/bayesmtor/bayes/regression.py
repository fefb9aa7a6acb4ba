"""Exact Bayesian meta-regression by quadrature over tau, as R bayesmeta's ``bmr()``.

Model
-----
``y_i ~ N(x_i' beta, s_i^2 + tau^2)`` (the study effects integrated out), ``tau ~`` any
:class:`~bayesmtor.bayes.priors.TauPrior`, and ``beta`` flat (the default, improper: unit
density) or with independent normal priors ``beta_j ~ N(M_j, S_j^2)``. Given tau, ``beta`` is
normal with precision ``A = X' W X + S^-2`` and mean ``A^-1 (X' W y + S^-2 M)``
(``W = diag(1 / (s_i^2 + tau^2))``), and the marginal likelihood ``p(y | tau)`` is analytic; so
the posterior reduces to the one-dimensional marginal posterior of tau, and each coefficient
(and any linear combination ``x' beta``, e.g. a fitted line) is a normal mixture over tau.

Numerics
--------
The tau axis, its map, the Gauss-Legendre panels, the refinement rule and its accuracy
guarantee are those of the exact engine (:mod:`bayesmtor.bayes.quadrature`): panels double
until the largest change, between two rules, of the tau CDF at the panel edges, of every
coefficient's CDF at ``mean + {-2,..,2} sd`` and of the marginal likelihood is below ``tol``
(config ``exact_tol``). Summaries: mixture moments, and central quantiles by the engine's
safeguarded Newton iteration.

Bayes factors (proper priors on every coefficient only, as bayesmeta): ``bf_tau0`` =
``p(y | tau = 0) / p(y)``, and per coefficient the Savage-Dickey ratio
``p(beta_j = 0 | y) / p(beta_j = 0)``; values above 1 favour the null.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayesmtor import config
from bayesmtor.bayes.priors import MuPrior, TauPrior
from bayesmtor.bayes.quadrature import (
    _GL_W,
    _GL_X,
    _LOG2PI,
    _MAX_DOUBLINGS,
    _P_START,
    _change,
    _Grid,
    _Map,
    _mix_moments,
    _mix_pdf,
    _mix_quantile,
    _warn_unconverged,
)
from bayesmtor.design import Design
from bayesmtor.errors import InputError
from bayesmtor.vocabulary import check_prob

#: Keys of :meth:`ExactRegressionPosterior.to_dict` (``bayesmtor pool --bayes --mods --json``).
BAYES_REGRESSION_JSON_KEYS: tuple[str, ...] = (
    "model", "engine", "measure", "ci_prob", "k", "p", "mods", "intercept", "tau_prior",
    "beta_prior", "coefficients", "tau_median", "tau_low", "tau_high", "bf_tau0",
    "error_estimate", "warning",
)  # fmt: skip
BAYES_COEFFICIENT_KEYS: tuple[str, ...] = ("term", "mean", "sd", "median", "low", "high", "bf0")


def beta_priors(beta_prior: Any, p: int, terms: Sequence[str]) -> tuple[MuPrior, ...]:
    """One prior per coefficient: None (flat), a prior or text for all, or one per term."""
    if beta_prior is None or isinstance(beta_prior, (str, MuPrior)):
        priors = (MuPrior.coerce(beta_prior if beta_prior is not None else "flat"),) * p
    else:
        priors = tuple(MuPrior.coerce(b) for b in beta_prior)
        if len(priors) != p:
            raise InputError(
                f"{len(priors)} coefficient priors for {p} coefficients ({', '.join(terms)})",
                column="beta_prior",
            )
    flat = [b.is_flat for b in priors]
    if any(flat) and not all(flat):
        raise InputError(
            "give every coefficient a normal prior, or none (flat); a mix is not supported",
            column="beta_prior",
        )
    return priors


def _conditional_regression(
    y: np.ndarray, v: np.ndarray, x: np.ndarray, tau: np.ndarray, priors: tuple[MuPrior, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log p(y | tau), E[beta | tau, y] (n, p) and Cov[beta | tau, y] (n, p, p) at ``tau`` (n,)."""
    k, p = x.shape
    var = v[None, :] + (tau**2)[:, None]  # (n, k)
    w = 1.0 / var
    a = np.einsum("ki,nk,kj->nij", x, w, x)
    b = np.einsum("ki,nk->ni", x, w * y[None, :])
    flat = priors[0].is_flat
    if not flat:
        m0 = np.array([pr.mean for pr in priors])
        p0 = 1.0 / np.array([pr.sd for pr in priors]) ** 2
        a = a + np.diag(p0)[None, :, :]
        b = b + (p0 * m0)[None, :]
    chol = np.linalg.cholesky(a)
    mean = np.linalg.solve(a, b[..., None])[..., 0]
    eye = np.broadcast_to(np.eye(p), a.shape)
    linv = np.linalg.solve(chol, eye)
    cov = np.einsum("nki,nkj->nij", linv, linv)
    resid = y[None, :] - mean @ x.T
    quad = (w * resid**2).sum(axis=1)
    logdet_a = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    logdet_v = np.log(var).sum(axis=1)
    if flat:
        ll = -0.5 * (k - p) * _LOG2PI - 0.5 * logdet_v - 0.5 * logdet_a - 0.5 * quad
    else:
        quad = quad + ((mean - m0[None, :]) ** 2 * p0[None, :]).sum(axis=1)
        ll = (
            -0.5 * k * _LOG2PI - 0.5 * logdet_v - 0.5 * logdet_a + 0.5 * np.log(p0).sum()
            - 0.5 * quad
        )  # fmt: skip
    return ll, mean, cov


@dataclass(frozen=True, eq=False)
class _RegGrid(_Grid):
    """The engine's grid with one row per coefficient (all rows share the tau posterior).

    Row ``j`` carries the mixture of ``beta_j``; ``h_at`` evaluates the regression's kernel.
    """

    design: np.ndarray | None = None
    priors: tuple[MuPrior, ...] = ()
    ybar: np.ndarray | None = None  # the data (k,)
    vbar: np.ndarray | None = None
    cov: np.ndarray | None = None  # (n, p, p)
    means: np.ndarray | None = None  # (n, p)

    def h_at(self, x: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        tau = self.xmap.tau(x)
        fin = np.isfinite(tau)
        tt = np.where(fin, tau, 1.0)
        ll, _, _ = _conditional_regression(
            self.ybar, self.vbar, self.design, tt.ravel(), self.priors
        )
        ll = ll.reshape(tt.shape)
        logk = ll + self.tp.logpdf(tt) + self.xmap.log_jac(np.where(fin, x, 0.0))
        shift = self.shift if rows is None else self.shift[rows]
        return np.where(fin, np.exp(logk - shift[:, None]), 0.0)


def _make_reg_grid(
    panels: int, y: np.ndarray, v: np.ndarray, x: np.ndarray, tp: TauPrior,
    priors: tuple[MuPrior, ...], xmap: _Map,
) -> _RegGrid:  # fmt: skip
    edges = np.linspace(xmap.x0, xmap.x1, panels + 1)
    half = 0.5 * (edges[1:] - edges[:-1])
    mid = 0.5 * (edges[1:] + edges[:-1])
    xs = (mid[:, None] + half[:, None] * _GL_X[None, :]).ravel()
    qw = (half[:, None] * _GL_W[None, :]).ravel()
    tau = xmap.tau(xs)
    fin = np.isfinite(tau)
    ll, mean, cov = _conditional_regression(y, v, x, np.where(fin, tau, 1.0), priors)
    logk = np.where(fin, ll + tp.logpdf(np.where(fin, tau, 1.0)) + xmap.log_jac(xs), -np.inf)
    shift = float(logk.max())
    h = np.exp(logk - shift)
    z = float((h * qw).sum())
    pw = h * qw / z
    p = x.shape[1]
    sd = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))  # (n, p)
    rows = np.arange(p)
    rep = np.ones((p, 1))
    return _RegGrid(
        rows=rows, panels=panels, xmap=xmap, tp=tp, mp=priors[0], x=xs, tau=tau, qw=qw,
        y=rep * y[None, :], v=rep * v[None, :], mask=np.ones((p, y.size), bool),
        ref=np.zeros(p), shift=np.full(p, shift), z=np.full(p, z), h=rep * h[None, :],
        pw=rep * pw[None, :], mean=mean.T.copy(), prec=1.0 / sd.T**2, design=x,
        priors=priors, ybar=y, vbar=v, cov=cov, means=mean,
    )  # fmt: skip


def _solve_regression(y, v, x, tp, priors, tol) -> tuple[_RegGrid, float]:
    """The finest rule needed for ``tol`` (the engine's doubling and stopping rule)."""
    scale = float(np.median(np.sqrt(v)))
    xmap = _Map.for_prior(tp, scale)
    prev = _make_reg_grid(_P_START, y, v, x, tp, priors, xmap)
    err = math.inf
    while True:
        cur = _make_reg_grid(2 * prev.panels, y, v, x, tp, priors, xmap)
        err = float(_change(prev, cur).max())
        if err < tol:
            return cur, err
        if cur.panels >= _P_START * 2**_MAX_DOUBLINGS:
            _warn_unconverged([np.array([err])], tol)
            return cur, err
        prev = cur


@dataclass(frozen=True, eq=False)
class ExactRegressionPosterior:
    """Exact posterior of a meta-regression (see the module docstring).

    ``coefficients`` (a DataFrame: ``term, mean, sd, median, low, high, bf0``), tau quantiles
    ``tau_median, tau_low, tau_high``, ``bf_tau0`` (proper coefficient priors only) and
    :meth:`predict` for fitted values ``x' beta``.
    """

    measure: str
    design: Design
    yi: np.ndarray
    sei: np.ndarray
    tau_prior: TauPrior
    beta_prior: tuple[MuPrior, ...]
    ci_prob: float
    tol: float
    error_estimate: float
    studies: tuple[str, ...] = ()
    excluded: tuple[tuple[str, str], ...] = ()
    _grid: _RegGrid = field(repr=False, default=None)  # type: ignore[assignment]

    @property
    def k(self) -> int:
        return int(self.yi.size)

    @property
    def p(self) -> int:
        return self.design.p

    @property
    def terms(self) -> tuple[str, ...]:
        return self.design.terms

    @property
    def proper(self) -> bool:
        return not self.beta_prior[0].is_flat

    def _q(self) -> np.ndarray:
        a = 1.0 - self.ci_prob
        return np.array([a / 2.0, 0.5, 1.0 - a / 2.0])

    def tau_quantile(self, q: Any) -> np.ndarray:
        """Posterior quantiles of tau."""
        qq = np.atleast_1d(np.asarray(q, dtype=float))
        g = self._grid.take(np.array([0]))
        return self._grid.xmap.tau(g.quantile(qq[None, :]))[0]

    def tau_cdf(self, tau: Any) -> np.ndarray:
        t = np.atleast_1d(np.asarray(tau, dtype=float))
        g = self._grid.take(np.array([0]))
        return g.cdf(self._grid.xmap.x(t)[None, :])[0]

    @property
    def tau_low(self) -> float:
        return float(self.tau_quantile(self._q()[0])[0])

    @property
    def tau_median(self) -> float:
        return float(self.tau_quantile(0.5)[0])

    @property
    def tau_high(self) -> float:
        return float(self.tau_quantile(self._q()[2])[0])

    @property
    def log_marginal_likelihood(self) -> float | None:
        """log p(y) (proper coefficient priors only)."""
        return float(self._grid.log_z[0]) if self.proper else None

    @property
    def bf_tau0(self) -> float | None:
        """``p(y | tau = 0) / p(y)`` (proper priors only; above 1 favours tau = 0)."""
        if not self.proper:
            return None
        ll0, _, _ = _conditional_regression(
            self.yi, self.sei**2, self.design.matrix, np.zeros(1), self.beta_prior
        )
        return float(np.exp(ll0[0] - self._grid.log_z[0]))

    def _coef_mix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        g = self._grid
        return g.pw, g.mean, 1.0 / np.sqrt(g.prec)

    def bf0(self) -> np.ndarray:
        """Savage-Dickey Bayes factors ``p(beta_j = 0 | y) / p(beta_j = 0)`` (NaN if flat)."""
        if not self.proper:
            return np.full(self.p, np.nan)
        post0 = _mix_pdf(np.zeros((self.p, 1)), *self._coef_mix())[:, 0]
        m0 = np.array([b.mean for b in self.beta_prior])
        s0 = np.array([b.sd for b in self.beta_prior])
        prior0 = np.exp(-0.5 * (m0 / s0) ** 2) / (math.sqrt(2.0 * math.pi) * s0)
        return post0 / prior0

    @property
    def coefficients(self) -> pd.DataFrame:
        wts, means, sds = self._coef_mix()
        mean, sd = _mix_moments(wts, means, sds)
        qs = _mix_quantile(np.broadcast_to(self._q(), (self.p, 3)), wts, means, sds)
        return pd.DataFrame(
            {
                "term": list(self.terms),
                "mean": mean,
                "sd": sd,
                "median": qs[:, 1],
                "low": qs[:, 0],
                "high": qs[:, 2],
                "bf0": self.bf0(),
            }
        )

    def summary(self) -> pd.DataFrame:
        """Coefficients and tau, indexed by parameter."""
        coefs = self.coefficients.set_index("term")
        tau = pd.DataFrame(
            {"median": [self.tau_median], "low": [self.tau_low], "high": [self.tau_high]},
            index=["tau"],
        )
        return pd.concat([coefs, tau])

    def predict(self, rows: Any) -> pd.DataFrame:
        """Posterior of ``x' beta`` at design ``rows`` (mean, sd, median, central interval)."""
        x = np.atleast_2d(np.asarray(rows, dtype=float))
        if x.shape[1] != self.p:
            raise InputError(f"prediction rows need {self.p} columns ({', '.join(self.terms)})")
        g = self._grid
        means = x @ g.means.T  # (m, n)
        sds = np.sqrt(np.einsum("mi,nij,mj->mn", x, g.cov, x))
        wts = np.broadcast_to(g.pw[0], means.shape)
        mean, sd = _mix_moments(wts, means, sds)
        qs = _mix_quantile(np.broadcast_to(self._q(), (x.shape[0], 3)), wts, means, sds)
        return pd.DataFrame(
            {"mean": mean, "sd": sd, "median": qs[:, 1], "low": qs[:, 0], "high": qs[:, 2]}
        )

    def to_dict(self) -> dict[str, Any]:
        from bayesmtor.frequentist.regression import low_power_warning

        def num(x: Any) -> Any:
            return None if x is None or not math.isfinite(float(x)) else float(x)

        coefs = [
            {key: (row[key] if key == "term" else num(row[key])) for key in BAYES_COEFFICIENT_KEYS}
            for row in self.coefficients.to_dict("records")
        ]
        bf = self.bf_tau0
        return {
            "model": "meta-regression",
            "engine": "exact",
            "measure": self.measure,
            "ci_prob": self.ci_prob,
            "k": self.k,
            "p": self.p,
            "mods": list(self.design.mods),
            "intercept": self.design.intercept,
            "tau_prior": self.tau_prior.label or str(self.tau_prior),
            "beta_prior": [b.label or b.family for b in self.beta_prior],
            "coefficients": coefs,
            "tau_median": self.tau_median,
            "tau_low": self.tau_low,
            "tau_high": self.tau_high,
            "bf_tau0": num(bf),
            "error_estimate": self.error_estimate,
            "warning": low_power_warning(self.k, self.p),
        }

    def __repr__(self) -> str:
        return (
            f"ExactRegressionPosterior(k={self.k}, terms={list(self.terms)}, "
            f"tau_median={self.tau_median:.4g}, error_estimate={self.error_estimate:.1g})"
        )

    def __str__(self) -> str:
        from bayesmtor.frequentist.regression import low_power_warning

        pct = f"{100 * self.ci_prob:g}%"
        head = (
            f"Bayesian meta-regression (exact), k = {self.k}, measure {self.measure}, "
            f"tau ~ {self.tau_prior.label}, beta ~ {self.beta_prior[0].label or 'flat'}\n"
            f"tau: median {self.tau_median:.4f}, {pct} interval [{self.tau_low:.4f}, "
            f"{self.tau_high:.4f}]"
        )
        table = self.coefficients.to_string(index=False, float_format=lambda x: f"{x:.4f}")
        return f"{head}\n{table}\nCaution: {low_power_warning(self.k, self.p)}"


def exact_regression(
    yi: Any, sei: Any, design: Design, *, tau_prior: TauPrior | str | None = None,
    beta_prior: Any = None, ci_prob: float | None = None, tol: float | None = None,
    measure: str = "generic", studies: Any = (), excluded: Any = (),
) -> ExactRegressionPosterior:  # fmt: skip
    """Exact posterior of the meta-regression of ``yi`` (SEs ``sei``) on ``design``.

    ``tau_prior``: prior object or text (default: config); ``beta_prior``: None (flat on every
    coefficient), a prior or text such as ``"normal:0,2"`` for every coefficient, or one per
    coefficient; ``ci_prob``: central interval probability (default config ``ci_prob``).
    """
    tp = TauPrior.coerce(tau_prior)
    priors = beta_priors(beta_prior, design.p, design.terms)
    ci = check_prob(config.get("ci_prob", ci_prob), "ci_prob")
    tol_ = float(config.get("exact_tol", tol))
    if not (tol_ > 0 and math.isfinite(tol_)):
        raise InputError(f"'tol' must be a positive number, got {tol!r}", column="tol")
    y = np.asarray(yi, dtype=float)
    s = np.asarray(sei, dtype=float)
    if y.shape != s.shape or y.size != design.k:
        raise InputError(f"{y.size} estimates for a design of {design.k} rows", column="mods")
    from bayesmtor.validation import check_safe_range

    check_safe_range(y, s)
    grid, err = _solve_regression(y, s**2, design.matrix, tp, priors, tol_)
    return ExactRegressionPosterior(
        measure=measure, design=design, yi=y, sei=s, tau_prior=tp, beta_prior=priors,
        ci_prob=ci, tol=tol_, error_estimate=err, studies=tuple(studies),
        excluded=tuple(excluded), _grid=grid,
    )  # fmt: skip


def check_tau_prior_scale(measure: str | None, tau_prior: Any) -> None:
    """Refuse the default tau prior for a mean difference (``MD``), which is in the units of
    its outcome (:func:`~bayesmtor.bayes.priors.default_prior_problem`); the coefficients'
    default, flat, has no scale."""
    from bayesmtor.bayes.priors import default_prior_problem

    problem = default_prior_problem(measure, tau_prior, "flat")
    if problem:
        raise InputError(problem, column="tau_prior")


def bayes_regression(
    data: Any,
    mods: Any,
    *,
    intercept: bool = True,
    engine: str = "exact",
    tau_prior: Any = None,
    beta_prior: Any = None,
    ci_prob: float | None = None,
    measure: str | None = None,
    random_seed: int | None = None,
) -> Any:
    """Bayesian meta-regression of an ``EffectSizes``, ``MetaInput`` or DataFrame on ``mods``.

    ``mods`` as in :func:`bayesmtor.frequentist.regression.rma_regression`; ``engine``
    ``"exact"`` (an :class:`ExactRegressionPosterior`) or ``"mcmc"`` (PyMC, a
    :class:`~bayesmtor.bayes.pymc_regression.McmcRegressionResult`; ``random_seed`` its seed).

    A mean difference (``MD``) needs ``tau_prior`` on the outcome's scale: the default is
    scaled for log ratios (:func:`~bayesmtor.bayes.priors.default_prior_problem`); the
    coefficients' default, flat, has no scale.
    """
    from bayesmtor.design import regression_inputs

    rd = regression_inputs(data, mods, measure=measure, intercept=intercept)
    check_tau_prior_scale(rd.measure, tau_prior)
    common = {"tau_prior": tau_prior, "beta_prior": beta_prior, "ci_prob": ci_prob}
    if engine == "mcmc":
        from bayesmtor.bayes.pymc_regression import mcmc_regression

        return mcmc_regression(
            rd.yi, np.sqrt(rd.vi), rd.design, measure=rd.measure, random_seed=random_seed,
            **common,
        )  # fmt: skip
    return exact_regression(
        rd.yi, np.sqrt(rd.vi), rd.design, measure=rd.measure, studies=rd.studies,
        excluded=rd.excluded, **common,
    )  # fmt: skip
