"""Tests of the exact quadrature engine (bayesmtor.bayes.exact).

Reference values come from two independent sources:

1. Published output of the R package bayesmeta (vignette "An introduction to meta-analysis
   using the bayesmeta package", C. Röver; the eight-schools data ``Rubin1981``), and
2. a brute-force integration written here: the joint posterior density of (mu, tau) is
   integrated numerically in both dimensions (scipy.integrate.quad over tau, a 1,600-point
   Gauss-Legendre rule over mu), with no analytic marginalisation and no normal mixtures.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from bayesmtor.bayes.exact import exact_batch, exact_batch_posterior, exact_posterior
from bayesmtor.bayes.priors import MuPrior, TauPrior
from bayesmtor.errors import InputError

# Eight-schools data, Rubin (1981), J Educ Stat 6:377-401, as printed in the bayesmeta vignette.
SCHOOLS = list("ABCDEFGH")
SCHOOLS_Y = [28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16]
SCHOOLS_SE = [14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6]

# Quadrature tolerance used when comparing with printed 7-digit values.
TIGHT = 1e-10


def _half_unit(printed: str) -> float:
    """Half a unit of the last printed digit (the precision of a printed number)."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return 0.5 * 10.0 ** (-decimals)


def _assert_printed(value: float, printed: str) -> None:
    assert abs(value - float(printed)) <= _half_unit(printed) + 1e-12, (value, printed)


@pytest.fixture(scope="module")
def schools_1():
    # bayesmeta(y, sigma, mu.prior.mean=0, mu.prior.sd=50,
    #           tau.prior=function(t){dhalfcauchy(t, scale=25)})
    return exact_posterior(
        SCHOOLS_Y, SCHOOLS_SE, tau_prior=TauPrior.half_cauchy(25.0),
        mu_prior=MuPrior.normal(0.0, 50.0), tol=TIGHT, labels=SCHOOLS,
    )  # fmt: skip


def test_published_schools_tau_summaries(schools_1) -> None:
    """bayesmeta vignette, schools.example.1: tau summaries, printed to 7 significant digits.

    bayesmeta computes the marginal posterior of tau by adaptive numerical integration, so
    these are compared at the printed precision (half a unit of the last printed digit).
    """
    p = schools_1
    _assert_printed(p.tau_quantile(0.5), "4.758539")
    _assert_printed(p.tau_mean(), "5.884511")
    _assert_printed(p.tau_sd(), "4.869904")
    _assert_printed(p.tau_quantile(0.95), "15.16589")  # qposterior(tau.p=0.95)
    lo, hi = p.tau_quantile([0.025, 0.975])  # qposterior(tau.p=c(0.025, 0.975))
    _assert_printed(lo, "0.2199559")
    _assert_printed(hi, "18.0531718")


# bayesmeta derives the summaries of mu, theta_new and the shrinkage estimates from its DIRECT
# normal-mixture approximation (Röver & Friede 2017, J Comput Graph Stat 26:823-832; default
# divergence bound delta = 0.01), so the printed digits carry that approximation error. The
# brute-force tests below show our values are exact to ~1e-9 for the same quantities
# (test_schools_brute_force: E[mu] and E[theta_A] of this very example).
# Tolerance for mu and theta_new: 1e-3 posterior standard deviations (largest deviation seen:
# 5.7e-4 sd, the sd of mu in schools.example.2; example 1 agrees within 1.4e-4 sd).
DIRECT_TOL_SD = 1e-3
# Shrinkage estimates carry a larger DIRECT error in bayesmeta's output: 2.5e-3 posterior SDs.
DIRECT_TOL_SHRINK_SD = 2.5e-3


def test_published_schools_mu_and_prediction(schools_1) -> None:
    p = schools_1
    sd_mu = 4.995762
    for value, published in [
        (p.mu_quantile(0.5), 7.962961),
        (p.mu_mean(), 7.985729),
        (p.mu_sd(), 4.995762),
        (p.mu_quantile(0.95), 16.11009),  # qposterior(mu.p=0.95)
    ]:
        assert abs(value - published) <= DIRECT_TOL_SD * sd_mu, (value, published)
    # 1 - pposterior(mu=0) = 0.9487521 (a probability: same bound in probability units)
    assert abs((1.0 - p.p_mu_below(0.0)) - 0.9487521) <= DIRECT_TOL_SD
    s = p.summary()
    sd_new = 9.126767
    assert abs(s.loc["theta_new", "median"] - 7.926819) <= DIRECT_TOL_SD * sd_new
    assert abs(s.loc["theta_new", "mean"] - 7.985729) <= DIRECT_TOL_SD * sd_new
    assert abs(s.loc["theta_new", "sd"] - sd_new) <= DIRECT_TOL_SD * sd_new


def test_published_schools_shrinkage(schools_1) -> None:
    """schools.example.1$theta[, c("A","G","H")] (mean, sd, median)."""
    published = {
        "A": (11.095255, 7.901084, 10.093581),
        "G": (10.336032, 6.631039, 9.786985),
        "H": (8.474644, 7.456906, 8.266594),
    }
    th = schools_1.theta_summary().set_index("study")
    for study, (mean, sd, median) in published.items():
        row = th.loc[study]
        tol = DIRECT_TOL_SHRINK_SD * sd
        assert abs(row["mean"] - mean) <= tol
        assert abs(row["sd"] - sd) <= tol
        assert abs(row["median"] - median) <= tol


def test_published_schools_uniform_prior() -> None:
    """schools.example.2: improper uniform priors on tau and mu (bayesmeta defaults).

    The improper uniform prior on tau is represented by uniform(0, 1e6): the likelihood
    decays like tau^-7 here, so truncation changes E[tau^2] by O(1e6^-4 * 1e12) ~ 1e-12
    (truncating at 1e3 instead would move the printed sd by 1e-6).
    """
    p = exact_posterior(
        SCHOOLS_Y, SCHOOLS_SE, tau_prior=TauPrior.uniform(0.0, 1e6),
        mu_prior=MuPrior.flat(), tol=TIGHT,
    )  # fmt: skip
    _assert_printed(p.tau_quantile(0.5), "5.227732")
    _assert_printed(p.tau_mean(), "6.585992")
    _assert_printed(p.tau_sd(), "5.685974")
    sd_mu = 5.246683
    assert abs(p.mu_quantile(0.5) - 8.055861) <= DIRECT_TOL_SD * sd_mu
    assert abs(p.mu_mean() - 8.092138) <= DIRECT_TOL_SD * sd_mu
    assert abs(p.mu_sd() - sd_mu) <= DIRECT_TOL_SD * sd_mu
    assert abs(p.theta_new_quantile(0.5) - 8.008111) <= DIRECT_TOL_SD * 10.148132
    assert p.marginal_likelihood is None  # improper mu prior


def test_schools_brute_force(schools_1) -> None:
    """E[mu] and E[theta_A] of schools.example.1 by direct 2-D integration (independent)."""
    y, se = np.array(SCHOOLS_Y), np.array(SCHOOLS_SE)
    x, w = np.polynomial.legendre.leggauss(200)
    edges = np.linspace(-400.0, 400.0, 17)  # mu prior sd 50: +-8 sd
    mu = np.concatenate(
        [0.5 * (b - a) * x + 0.5 * (a + b) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    )
    wm = np.concatenate([0.5 * (b - a) * w for a, b in zip(edges[:-1], edges[1:], strict=True)])

    def inner(tau: float, f) -> float:
        var = se**2 + tau**2
        ll = -0.5 * (
            np.log(2 * np.pi * var)[None, :] + (y[None, :] - mu[:, None]) ** 2 / var[None, :]
        )
        logp = ll.sum(axis=1) - mu**2 / 5000.0 + stats.halfcauchy.logpdf(tau, scale=25.0) + 40.0
        return float(np.sum(wm * f(mu, tau) * np.exp(logp)))

    def integral(f) -> float:
        return integrate.quad(lambda t: inner(t, f), 0, np.inf, epsabs=0, epsrel=1e-11, limit=200)[
            0
        ]

    z = integral(lambda m, t: 1.0)
    e_mu = integral(lambda m, t: m) / z
    # E[theta_A | mu, tau, y] = (tau^2 y_A + s_A^2 mu) / (s_A^2 + tau^2)
    e_a = integral(lambda m, t: (t**2 * 28.39 + 14.9**2 * m) / (14.9**2 + t**2)) / z
    assert schools_1.mu_mean() == pytest.approx(e_mu, abs=1e-6)
    th = schools_1.theta_summary().set_index("study")
    assert th.loc["A", "mean"] == pytest.approx(e_a, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# brute-force reference (independent code path)
# ---------------------------------------------------------------------------------------------
# A synthetic log odds-ratio example (numbers chosen for the test, not real trial data).
SYN_Y = np.array([-0.62, -0.15, -1.10, 0.20, -0.45])
SYN_SE = np.array([0.30, 0.25, 0.45, 0.35, 0.20])
SYN_TAU = TauPrior.half_normal(0.5)
SYN_MU = MuPrior.normal(0.0, 4.0)
# Brute force and engine must agree to this absolute level (CDF values, means, log Z).
BRUTE_TOL = 1e-6


class _Brute:
    """Two-dimensional integration of the unnormalised joint posterior of (mu, tau)."""

    def __init__(self) -> None:
        x, w = np.polynomial.legendre.leggauss(100)
        edges = np.linspace(-40.0, 40.0, 17)  # mu prior sd 4: +-10 sd
        self.mu = np.concatenate(
            [0.5 * (b - a) * x + 0.5 * (a + b) for a, b in zip(edges[:-1], edges[1:], strict=True)]
        )
        self.w = np.concatenate(
            [0.5 * (b - a) * w for a, b in zip(edges[:-1], edges[1:], strict=True)]
        )
        self.z = self.integral(lambda mu, tau: np.ones_like(mu))

    @staticmethod
    def joint(mu: np.ndarray, tau: float) -> np.ndarray:
        var = SYN_SE**2 + tau**2
        loglik = -0.5 * (
            np.log(2 * np.pi * var)[None, :] + (SYN_Y[None, :] - mu[:, None]) ** 2 / var[None, :]
        )
        log_mu = -0.5 * np.log(2 * np.pi * 16.0) - mu**2 / 32.0
        log_tau = 0.5 * np.log(2 / np.pi) - np.log(0.5) - 0.5 * (tau / 0.5) ** 2  # half-normal
        return np.exp(loglik.sum(axis=1) + log_mu + log_tau)

    def integral(self, f, tau_hi: float = np.inf, mu_hi: float | None = None) -> float:
        if mu_hi is None:
            mu, w = self.mu, self.w
        else:  # Gauss-Legendre on [-40, mu_hi]
            x, ww = np.polynomial.legendre.leggauss(400)
            mu, w = 0.5 * (mu_hi + 40.0) * x + 0.5 * (mu_hi - 40.0), 0.5 * (mu_hi + 40.0) * ww

        def inner(tau: float) -> float:
            return float(np.sum(w * f(mu, tau) * self.joint(mu, tau)))

        val, _ = integrate.quad(inner, 0.0, tau_hi, epsabs=0.0, epsrel=1e-11, limit=200)
        return val


@pytest.fixture(scope="module")
def brute() -> dict[str, float]:
    b = _Brute()
    one = lambda mu, tau: np.ones_like(mu)  # noqa: E731
    return {
        "log_z": float(np.log(b.z)),
        "mu_mean": b.integral(lambda mu, tau: mu) / b.z,
        "tau_mean": b.integral(lambda mu, tau: tau * np.ones_like(mu)) / b.z,
        "tau_cdf_0.3": b.integral(one, tau_hi=0.3) / b.z,
        "mu_cdf_-0.3": b.integral(one, mu_hi=-0.3) / b.z,
    }


def _engine_errors(tol: float, brute: dict[str, float]) -> float:
    p = exact_posterior(SYN_Y, SYN_SE, tau_prior=SYN_TAU, mu_prior=SYN_MU, tol=tol)
    mine = {
        "log_z": float(np.log(p.marginal_likelihood)),
        "mu_mean": p.mu_mean(),
        "tau_mean": p.tau_mean(),
        "tau_cdf_0.3": float(p.tau_cdf(0.3)),
        "mu_cdf_-0.3": float(p.mu_cdf(-0.3)),
    }
    return max(abs(mine[key] - brute[key]) for key in brute)


def test_engine_matches_brute_force(brute: dict[str, float]) -> None:
    assert _engine_errors(1e-6, brute) < BRUTE_TOL


def test_error_shrinks_as_tol_tightens(brute: dict[str, float]) -> None:
    loose = _engine_errors(1e-3, brute)
    tight = _engine_errors(1e-6, brute)
    assert loose > tight
    assert loose < 1e-3 and tight < 1e-6  # the tolerance bounds the error actually reached


def test_error_estimate_is_reported_and_below_tol() -> None:
    p = exact_posterior(SYN_Y, SYN_SE, tau_prior=SYN_TAU, mu_prior=SYN_MU, tol=1e-8)
    assert 0 <= p.error_estimate < 1e-8
    assert p.n_nodes >= 16


# ---------------------------------------------------------------------------------------------
# internal consistency
# ---------------------------------------------------------------------------------------------
def test_tau_density_integrates_to_cdf() -> None:
    p = exact_posterior(SYN_Y, SYN_SE, tau_prior=SYN_TAU, mu_prior=SYN_MU, tol=1e-9)
    total, _ = integrate.quad(lambda t: float(p.tau_pdf(t)), 0, np.inf, epsabs=1e-12)
    assert total == pytest.approx(1.0, abs=1e-8)
    med = p.tau_quantile(0.5)
    part, _ = integrate.quad(lambda t: float(p.tau_pdf(t)), 0, med, epsabs=1e-12)
    assert part == pytest.approx(0.5, abs=1e-8)
    np.testing.assert_allclose(p.mu_cdf(p.mu_quantile([0.1, 0.9])), [0.1, 0.9], atol=1e-10)


def test_batch_quantiles_invert_the_cdfs_also_far_in_the_tails() -> None:
    # The quantiles stop iterating once a step is below rounding in relative terms; the CDF
    # at the answer must give the probability back, for tiny probabilities as well.
    y, se, mask = _random_batch(m := 60, kmax=10, k_min=2, se_range=(0.05, 0.8), y_sd=0.6)
    post = exact_batch_posterior(y, se, mask)
    probs = np.tile([1e-12, 1e-6, 0.025, 0.5, 0.975, 1.0 - 1e-6], (m, 1))
    tq = post.tau_quantile(probs)
    np.testing.assert_allclose(post.tau_cdf(tq), probs, rtol=1e-10, atol=1e-15)
    assert (post.tau_quantile(np.zeros((m, 1))) == 0.0).all()  # the end of the support
    mq = post.mu_quantile(probs)
    np.testing.assert_allclose(post.mu_cdf(mq), probs, rtol=0, atol=1e-12)


def test_single_study_marginal_likelihood() -> None:
    # k = 1: y ~ N(m0, s^2 + tau^2 + sd0^2) given tau; integrate over the tau prior directly.
    y, s = 0.4, 0.3
    p = exact_posterior([y], [s], tau_prior=SYN_TAU, mu_prior=SYN_MU, tol=1e-9)
    ref, _ = integrate.quad(
        lambda t: stats.norm.pdf(y, 0.0, np.sqrt(s**2 + t**2 + 16.0)) * SYN_TAU.pdf(t), 0, np.inf,
        epsabs=0, epsrel=1e-12,
    )  # fmt: skip
    assert p.marginal_likelihood == pytest.approx(ref, rel=1e-8)


def test_summary_table_layout_and_i2() -> None:
    p = exact_posterior(SYN_Y, SYN_SE, labels=[f"t{i}" for i in range(5)])
    s = p.summary()
    assert list(s.index) == ["mu", "tau", "theta_new", "I2"]
    assert list(s.columns) == ["mean", "sd", "median", "q_low", "q_high"]
    assert s.attrs["ci_prob"] == 0.95
    # I2 quantiles are the tau quantiles mapped through tau^2 / (tau^2 + s^2)
    w = 1 / SYN_SE**2
    s2 = (len(w) - 1) * w.sum() / (w.sum() ** 2 - (w**2).sum())
    t = s.loc["tau", "median"]
    assert s.loc["I2", "median"] == pytest.approx(t**2 / (t**2 + s2), rel=1e-12)
    # prediction interval contains the credible interval of mu
    assert s.loc["theta_new", "q_low"] < s.loc["mu", "q_low"]
    s90 = p.summary(ci_prob=0.9)
    assert s90.loc["mu", "q_high"] < s.loc["mu", "q_high"]
    th = p.theta_summary()
    assert list(th["study"]) == [f"t{i}" for i in range(5)]
    assert "ExactPosterior(k=5" in repr(p)


def test_draws_agree_with_exact_moments() -> None:
    p = exact_posterior(SYN_Y, SYN_SE, tau_prior=SYN_TAU, mu_prior=SYN_MU)
    d = p.draws(5000, rng=np.random.default_rng(7))
    assert list(d.columns) == ["tau", "mu", "theta_new"]
    n = len(d)
    # within 4 Monte Carlo standard errors
    assert abs(d["mu"].mean() - p.mu_mean()) < 4 * p.mu_sd() / np.sqrt(n)
    assert abs(d["tau"].mean() - p.tau_mean()) < 4 * p.tau_sd() / np.sqrt(n)
    assert abs(d["theta_new"].mean() - p.mu_mean()) < 4 * p.theta_new_sd() / np.sqrt(n)


def _random_batch(m: int, kmax: int, k_min: int = 1, se_range=(0.1, 0.6), y_sd=0.5):
    """A padded batch (y, se, mask) of m analyses of k_min..kmax studies (seed 3)."""
    rng = np.random.default_rng(3)
    k = rng.integers(k_min, kmax + 1, size=m)
    mask = np.arange(kmax)[None, :] < k[:, None]
    se = rng.uniform(*se_range, size=(m, kmax))
    y = rng.normal(-0.3, y_sd, size=(m, kmax))
    return y, se, mask


def test_batch_equals_single() -> None:
    y, se, mask = _random_batch(40, kmax=6)
    k = mask.sum(axis=1)
    y_in = y.copy()
    df = exact_batch(y, se, mask, tau_prior="half-normal:0.5", mu_prior="normal:0,4")
    np.testing.assert_array_equal(y, y_in)  # inputs untouched
    assert list(df.columns[:11]) == [
        "k", "mu_mean", "mu_median", "mu_low", "mu_high", "tau_median", "tau_low", "tau_high",
        "pred_low", "pred_high", "p_mu_below_0",
    ]  # fmt: skip
    for i in [0, 7, 19, 33]:
        p = exact_posterior(y[i, : k[i]], se[i, : k[i]])
        s = p.summary()
        row = df.iloc[i]
        assert row["k"] == k[i]
        np.testing.assert_allclose(
            [row["mu_median"], row["mu_low"], row["tau_median"], row["tau_high"], row["pred_low"]],
            [s.loc["mu", "median"], s.loc["mu", "q_low"], s.loc["tau", "median"],
             s.loc["tau", "q_high"], s.loc["theta_new", "q_low"]],
            rtol=1e-9, atol=1e-10,
        )  # fmt: skip
        assert row["p_mu_below_0"] == pytest.approx(p.p_mu_below(0.0), abs=1e-10)


def test_batch_empty_row_is_missing() -> None:
    y = np.array([[0.1, 0.2], [0.0, 0.0]])
    se = np.array([[0.2, 0.3], [1.0, 1.0]])
    mask = np.array([[True, True], [False, False]])
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        df = exact_batch(y, se, mask)
    assert any("no studies" in str(r.message) for r in rec)
    assert df.loc[1, "k"] == 0 and pd.isna(df.loc[1, "mu_median"])
    assert np.isfinite(df.loc[0, "mu_median"])


def test_flat_mu_prior_in_batch() -> None:
    post = exact_batch_posterior([[0.1, 0.5, -0.2]], [[0.2, 0.3, 0.25]], mu_prior="flat")
    assert post.log_marginal_likelihood() is None
    assert 0 < post.p_mu_below(0.0)[0] < 1


def test_input_errors_name_the_column_and_study() -> None:
    with pytest.raises(InputError, match=r"study 'b'.*column 'sei'"):
        exact_posterior([0.1, 0.2], [0.2, -0.1], labels=["a", "b"])
    with pytest.raises(InputError, match="column 'yi'"):
        exact_posterior([0.1, np.nan], [0.2, 0.1])
    with pytest.raises(InputError, match="shape"):
        exact_posterior([0.1, 0.2], [0.2])
    with pytest.raises(InputError, match="ci_prob"):
        exact_posterior([0.1], [0.2]).summary(ci_prob=1.5)
    with pytest.raises(InputError, match="meta-analysis 2, study 1 of it; 1-based"):
        exact_batch([[0.1, 0.2], [0.3, 0.1]], [[0.1, 0.1], [0.0, 0.1]])
