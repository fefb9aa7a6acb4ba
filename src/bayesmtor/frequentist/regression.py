"""Meta-regression (mixed-effects models with moderators), as metafor ``rma(yi, vi, mods=...)``.

The model is ``y_i ~ N(x_i' beta, v_i + tau^2)`` with ``x_i`` a row of a
:class:`~bayesmtor.design.Design`. ``method`` is ``"FE"`` (tau^2 = 0) or a residual tau^2
estimator: ``"DL"`` (the method of moments of Raudenbush 2009: ``(QE - (k - p)) / tr(P)``,
truncated at 0), ``"ML"`` or ``"REML"`` (global maximum of the (restricted) likelihood, found on
a grid and refined by a bracketed root search of the score). Coefficients are tested with z, or
with ``test="knha"`` by the Knapp-Hartung adjustment (their covariance scaled by the weighted
residual mean square ``r' W r / (k - p)``, untruncated, t on ``k - p`` df; metafor's
``test="knha"``).

QM is the Wald test of every coefficient but the intercept (of all of them without one); with
``knha`` it is metafor's F statistic ``b' V^-1 b / m`` on ``(m, k - p)`` df. QE is the test of
residual heterogeneity (fixed-effect weights, ``k - p`` df). R2 is metafor's pseudo-R2: for a
random-effects fit ``max(0, 100 (tau2_0 - tau2) / tau2_0)`` with ``tau2_0`` from the
intercept-only fit by the same method (0 when ``tau2_0 = 0``); for FE, as metafor, the adjusted
R2 of the weighted least-squares fit, ``max(0, 100 adj.R2)``; ``None`` without an intercept.

Numbers agree with R metafor 3.8 at 1e-6 relative on dat.bcg (tests/reference/regression_*).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayesmtor import _special as special
from bayesmtor.design import Design
from bayesmtor.errors import EstimationError, InputError
from bayesmtor.vocabulary import REGRESSION_METHODS

_EPS = np.finfo(float).eps
_GRID = np.concatenate([[0.0], np.logspace(-8.0, 0.0, 41)])

#: Keys of :meth:`RegressionResult.to_dict` (and of ``bayesmtor pool --mods --json``), in order.
REGRESSION_JSON_KEYS: tuple[str, ...] = (
    "model", "measure", "method", "test", "ci_prob", "k", "p", "mods", "intercept",
    "coefficients", "QM", "QM_df", "QM_df2", "QM_pval", "QE", "QE_df", "QE_pval", "R2", "tau2",
    "tau", "warning",
)  # fmt: skip
COEFFICIENT_KEYS: tuple[str, ...] = ("term", "estimate", "se", "ci_low", "ci_high", "stat", "pval")


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def low_power_warning(k: int, p: int) -> str:
    """The caution printed with every meta-regression (few studies give almost no power)."""
    return (
        f"meta-regression on k = {k} studies with {p} coefficients: with so few studies a "
        "moderator analysis has almost no power to detect a real difference, and an apparent "
        "association is observational (across trials, not randomized) and easily confounded. "
        "Read it as hypothesis-generating."
    )


@dataclass(frozen=True, eq=False)
class RegressionResult:
    """A frequentist meta-regression; effects on the analysis (log for ratios) scale.

    ``coefficients`` is a DataFrame with columns ``term, estimate, se, ci_low, ci_high, stat,
    pval``. Undefined quantities are ``nan`` (``None`` in :meth:`to_dict`).
    """

    measure: str
    method: str
    test: str
    ci_prob: float
    design: Design
    beta: np.ndarray
    vb: np.ndarray
    k: int
    QM: float
    QM_df: int
    QM_df2: float
    QM_pval: float
    QE: float
    QE_df: int
    QE_pval: float
    R2: float
    tau2: float
    yi: np.ndarray
    vi: np.ndarray
    studies: tuple[str, ...] = ()
    excluded: tuple[tuple[str, str], ...] = field(default=())

    @property
    def terms(self) -> tuple[str, ...]:
        return self.design.terms

    @property
    def p(self) -> int:
        return self.design.p

    @property
    def tau(self) -> float:
        return math.sqrt(self.tau2) if math.isfinite(self.tau2) else math.nan

    @property
    def df(self) -> float:
        """Degrees of freedom of the coefficient tests (``k - p`` with knha, else inf)."""
        return float(self.k - self.p) if self.test == "knha" else math.inf

    @property
    def weights(self) -> np.ndarray:
        """Model weights ``1 / (v_i + tau^2)`` in percent."""
        w = 1.0 / (self.vi + (self.tau2 if math.isfinite(self.tau2) else 0.0))
        return 100.0 * w / w.sum()

    @property
    def coefficients(self) -> pd.DataFrame:
        se = np.sqrt(np.diag(self.vb))
        crit, stat = _crit(self.test, self.ci_prob, self.df), self.beta / se
        return pd.DataFrame(
            {
                "term": list(self.terms),
                "estimate": self.beta,
                "se": se,
                "ci_low": self.beta - crit * se,
                "ci_high": self.beta + crit * se,
                "stat": stat,
                "pval": _pval(stat, self.df),
            }
        )

    def summary(self) -> pd.DataFrame:
        """The coefficient table, indexed by term."""
        return self.coefficients.set_index("term")

    def predict(self, rows: Any) -> pd.DataFrame:
        """Fitted values ``x' beta`` at design ``rows`` (m x p) with SE and confidence interval."""
        x = np.atleast_2d(np.asarray(rows, dtype=float))
        if x.shape[1] != self.p:
            raise InputError(f"prediction rows need {self.p} columns ({', '.join(self.terms)})")
        pred = x @ self.beta
        se = np.sqrt(np.einsum("ij,jk,ik->i", x, self.vb, x))
        crit = _crit(self.test, self.ci_prob, self.df)
        return pd.DataFrame(
            {"pred": pred, "se": se, "ci_low": pred - crit * se, "ci_high": pred + crit * se}
        )

    def to_dict(self) -> dict[str, Any]:
        coefs = [
            {key: (row[key] if key == "term" else _num(row[key])) for key in COEFFICIENT_KEYS}
            for row in self.coefficients.to_dict("records")
        ]
        return {
            "model": "meta-regression",
            "measure": self.measure,
            "method": self.method,
            "test": self.test,
            "ci_prob": self.ci_prob,
            "k": self.k,
            "p": self.p,
            "mods": list(self.design.mods),
            "intercept": self.design.intercept,
            "coefficients": coefs,
            "QM": _num(self.QM),
            "QM_df": self.QM_df,
            "QM_df2": _num(self.QM_df2),
            "QM_pval": _num(self.QM_pval),
            "QE": _num(self.QE),
            "QE_df": self.QE_df,
            "QE_pval": _num(self.QE_pval),
            "R2": _num(self.R2),
            "tau2": _num(self.tau2),
            "tau": _num(self.tau),
            "warning": low_power_warning(self.k, self.p),
        }

    def __str__(self) -> str:
        return format_regression(self)

    def __repr__(self) -> str:
        return (
            f"RegressionResult(method={self.method!r}, test={self.test!r}, k={self.k}, "
            f"terms={list(self.terms)}, tau2={self.tau2:.4g}, QM={self.QM:.4g})"
        )


def format_regression(res: RegressionResult) -> str:
    """A metafor-like text summary of a meta-regression."""
    pct = f"{100 * res.ci_prob:g}%"
    lines = [
        f"Meta-regression ({res.method}{', Knapp-Hartung' if res.test == 'knha' else ''}), "
        f"k = {res.k}, measure {res.measure}",
    ]
    if math.isfinite(res.tau2):
        r2 = f", R2 = {res.R2:.2f}%" if math.isfinite(res.R2) else ""
        lines.append(f"residual tau^2 = {res.tau2:.4g} (tau = {res.tau:.4g}){r2}")
    lines.append(f"QE({res.QE_df}) = {res.QE:.4f}, p = {res.QE_pval:.4g}")
    if res.test == "knha":
        lines.append(f"QM: F({res.QM_df}, {res.QM_df2:g}) = {res.QM:.4f}, p = {res.QM_pval:.4g}")
    else:
        lines.append(f"QM({res.QM_df}) = {res.QM:.4f}, p = {res.QM_pval:.4g}")
    table = res.coefficients.rename(
        columns={"ci_low": f"ci_low {pct}", "ci_high": f"ci_high {pct}",
                 "stat": "t" if res.test == "knha" else "z"}
    )  # fmt: skip
    lines.append(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    lines.append("Caution: " + low_power_warning(res.k, res.p))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# computation
# ---------------------------------------------------------------------------------------------
def _crit(test: str, ci_prob: float, df: float) -> float:
    q = 0.5 + ci_prob / 2.0
    return float(special.ndtri(q) if not math.isfinite(df) else special.stdtrit(df, q))


def _pval(stat: np.ndarray, df: float) -> np.ndarray:
    if not math.isfinite(df):
        return 2.0 * special.ndtr(-np.abs(stat))
    return 2.0 * special.stdtr(df, -np.abs(stat))


def _gls(y: np.ndarray, v: np.ndarray, x: np.ndarray, tau2: float):
    """Weighted least squares at ``tau2``: beta, (X'WX)^-1, weights, residuals."""
    w = 1.0 / (v + tau2)
    sw = np.sqrt(w)
    q, r = np.linalg.qr(x * sw[:, None])
    rinv = np.linalg.solve(r, np.eye(r.shape[0]))
    beta = rinv @ (q.T @ (y * sw))
    vb = rinv @ rinv.T
    return beta, vb, w, y - x @ beta


def _trace_p(w: np.ndarray, vb: np.ndarray, x: np.ndarray) -> float:
    """tr(P) with P = W - W X (X'WX)^-1 X' W, without forming the k x k matrix."""
    wx = x * w[:, None]
    return float(np.sum(w) - np.sum(vb * (wx.T @ wx)))


def _loglik_score(y, v, x, tau2: float, reml: bool) -> tuple[float, float]:
    """(Restricted) log-likelihood (without constants) and twice its derivative in tau2."""
    beta, vb, w, r = _gls(y, v, x, tau2)
    ll = -0.5 * (np.sum(np.log(v + tau2)) + np.sum(w * r * r))
    score = float(np.sum(w * w * r * r) - np.sum(w))  # ML: r'W^2 r - tr(W)
    if reml:
        # P y = W r and tr(P) = tr(W) - tr((X'WX)^-1 X'W^2 X): no k x k matrix is formed
        ll += 0.5 * np.linalg.slogdet(vb)[1]  # - log|X'WX| / 2
        score = float(np.sum(w * w * r * r)) - _trace_p(w, vb, x)
    return float(ll), score


def _tau2_likelihood(y, v, x, reml: bool) -> float:
    """Global maximiser of the (restricted) likelihood over tau2 >= 0."""
    _, _, _, r = _gls(y, v, x, 0.0)
    upper = 10.0 * max(float(np.mean(r * r)), float(np.max(v)))
    grid = upper * _GRID
    lls = np.array([_loglik_score(y, v, x, t, reml)[0] for t in grid])
    j = int(np.argmax(np.where(np.isfinite(lls), lls, -np.inf)))
    lo = grid[max(j - 1, 0)]
    hi = grid[min(j + 1, grid.size - 1)]
    while j == grid.size - 1 and _loglik_score(y, v, x, hi, reml)[1] > 0:
        lo, hi = hi, 10.0 * hi  # the maximum lies beyond the grid
        if hi > 1e300:
            raise EstimationError("the likelihood increases without bound in tau^2")
    if _loglik_score(y, v, x, lo, reml)[1] <= 0.0:
        return float(lo)

    def score(t: float) -> float:
        return _loglik_score(y, v, x, t, reml)[1]

    # bisection + secant (Illinois) on the score, to floating-point resolution
    a, b, fa, fb = lo, hi, score(lo), score(hi)
    if fb >= 0.0:
        return float(hi)
    side = 0
    for _ in range(400):
        c = b - fb * (b - a) / (fb - fa) if fb != fa else 0.5 * (a + b)
        if not (min(a, b) < c < max(a, b)):
            c = 0.5 * (a + b)
        fc = score(c)
        if fc == 0.0 or abs(b - a) <= 4.0 * _EPS * max(abs(c), 1e-300):
            return float(c)
        if (fc > 0) == (fa > 0):
            a, fa = c, fc
            if side == -1:
                fb *= 0.5
            side = -1
        else:
            b, fb = c, fc
            if side == 1:
                fa *= 0.5
            side = 1
    return float(0.5 * (a + b))


def residual_tau2(y: np.ndarray, v: np.ndarray, x: np.ndarray, method: str) -> float:
    """Residual tau^2 of the mixed-effects model by ``method`` (0 for FE)."""
    k, p = x.shape
    if method == "FE":
        return 0.0
    if method == "DL":
        _, vb, w, r = _gls(y, v, x, 0.0)
        qe = float(np.sum(w * r * r))  # y' P y
        return max(0.0, (qe - (k - p)) / _trace_p(w, vb, x))
    if method in ("ML", "REML"):
        return _tau2_likelihood(y, v, x, method == "REML")
    raise InputError(
        f"meta-regression supports the methods {', '.join(REGRESSION_METHODS)}, not '{method}'",
        column="method",
    )


def _weighted_adj_r2(y: np.ndarray, v: np.ndarray, x: np.ndarray) -> float:
    """Adjusted R2 of the weighted least-squares fit (weights 1/v), as R ``summary(lm)``."""
    k, p = x.shape
    beta, _, w, r = _gls(y, v, x, 0.0)
    ybar = np.sum(w * y) / np.sum(w)
    rss = float(np.sum(w * r * r))
    mss = float(np.sum(w * (x @ beta - ybar) ** 2))
    r2 = mss / (mss + rss)
    return 1.0 - (1.0 - r2) * (k - 1) / (k - p)


def fit_regression(
    yi: Any, vi: Any, design: Design, *, method: str = "REML", test: str = "z",
    ci_prob: float = 0.95, measure: str = "generic", studies: Any = (), excluded: Any = (),
) -> RegressionResult:  # fmt: skip
    """Fit the meta-regression of ``yi`` (variances ``vi``) on ``design``.

    Every study must have a finite estimate and a positive variance (the caller drops the
    others before building the design).
    """
    method = str(method).upper()
    if method not in REGRESSION_METHODS:
        raise InputError(
            f"meta-regression supports the methods {', '.join(REGRESSION_METHODS)}, not '{method}'",
            column="method",
        )
    test = str(test).lower()
    if test not in ("z", "knha"):
        raise InputError(
            f"meta-regression supports the tests 'z' and 'knha', not '{test}'", column="test"
        )
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    x = design.matrix
    if y.shape != v.shape or y.shape[0] != x.shape[0]:
        raise InputError(f"{y.size} estimates for a design of {x.shape[0]} rows", column="mods")
    k, p = x.shape
    tau2 = residual_tau2(y, v, x, method)
    beta, vb, w, r = _gls(y, v, x, tau2)
    if test == "knha":
        vb = vb * float(np.sum(w * r * r) / (k - p))
    tested = list(design.tested)
    m = len(tested)
    bm = beta[tested]
    qm = float(bm @ np.linalg.solve(vb[np.ix_(tested, tested)], bm))
    if test == "knha":
        qm, qm_df2 = qm / m, float(k - p)
        from scipy.special import fdtrc  # the F test of moderators only

        qm_p = float(fdtrc(m, k - p, qm))
    else:
        qm_df2 = math.nan
        qm_p = float(special.chdtrc(m, qm))
    _, _, w0, r0 = _gls(y, v, x, 0.0)
    qe = float(np.sum(w0 * r0 * r0))  # y' P y with fixed-effect weights
    r2 = math.nan
    if design.intercept and p > 1:
        if method == "FE":
            r2 = max(0.0, 100.0 * _weighted_adj_r2(y, v, x))
        else:
            tau2_0 = residual_tau2(y, v, np.ones((k, 1)), method)
            r2 = 0.0 if tau2_0 == 0.0 else max(0.0, 100.0 * (tau2_0 - tau2) / tau2_0)
    return RegressionResult(
        measure=measure, method=method, test=test, ci_prob=float(ci_prob), design=design,
        beta=beta, vb=vb, k=k, QM=qm, QM_df=m, QM_df2=qm_df2, QM_pval=qm_p, QE=qe, QE_df=k - p,
        QE_pval=float(special.chdtrc(k - p, qe)), R2=r2,
        tau2=math.nan if method == "FE" else tau2, yi=y, vi=v, studies=tuple(studies),
        excluded=tuple(excluded),
    )  # fmt: skip


def rma_regression(
    data: Any, mods: Any, *, intercept: bool = True, method: str = "REML", test: str = "z",
    ci_prob: float | None = None, measure: str | None = None,
) -> RegressionResult:  # fmt: skip
    """Meta-regression of an ``EffectSizes``, ``MetaInput`` or DataFrame on ``mods``.

    ``mods``: moderator column names of the study table (coded as R's ``model.matrix``, see
    :mod:`bayesmtor.design`), or an explicit design matrix (one row per included study).
    This is ``bm.rma(data, mods=...)``.
    """
    from bayesmtor import config
    from bayesmtor.design import regression_inputs
    from bayesmtor.vocabulary import check_prob

    rd = regression_inputs(data, mods, measure=measure, intercept=intercept)
    return fit_regression(
        rd.yi, rd.vi, rd.design, method=method, test=test,
        ci_prob=check_prob(config.get("ci_prob", ci_prob), "ci_prob"), measure=rd.measure,
        studies=rd.studies, excluded=rd.excluded,
    )  # fmt: skip
