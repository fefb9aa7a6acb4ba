"""Invariants checked on generated data (hypothesis, bounded and derandomized).

* Order: permuting the studies changes no frequentist result (all methods) and no exact
  posterior.
* Arms: swapping treatment and control negates log effects (and RD) and swaps the interval ends
  (counts: MH, Peto and inverse variance; published ratios: exact-engine mu quantiles under the
  symmetric default mu prior).
* A study with an SE of 1e8 carries no information: FE, ML, REML and the exact engine ignore it.
* Exact-engine posterior CDFs are monotone, start at 0, reach 1 and invert their quantiles.
* As the tau prior concentrates at 0 (half-normal, scale 1e-4) and the mu prior flattens, the
  Bayesian posterior of mu tends to the fixed-effect inverse-variance normal.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayesmtor import effects, frequentist
from bayesmtor.bayes.exact import exact_posterior
from bayesmtor.bayes.priors import MuPrior, TauPrior
from bayesmtor.errors import NotEstimableWarning

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FAST = settings(SETTINGS, max_examples=50)  # frequentist only: milliseconds per example
EXACT = settings(SETTINGS, max_examples=20)  # two or more quadrature posteriors per example

ORDER_TOL = 1e-7  # reordering sums only changes round-off; iterative tau^2 solvers stop at ~1e-10
EXACT_TOL = 1e-6  # quadrature tolerance asked of the exact engine here
POST_TOL = 1e-5  # posterior quantiles/CDFs agree to ten times the quadrature tolerance
HUGE_SE = 1e8  # weight 1e-16 relative to SEs of order 1
FE_LIMIT_TOL = 1e-4  # tau ~ 1e-4 adds ~1e-8 to variances >= 2.5e-3: relative effect << 1e-4

IV_METHODS = ("FE",) + frequentist.RE_METHODS
POOL_KEYS = ("estimate", "se", "ci_low", "ci_high", "pval", "tau2", "Q", "I2")


@st.composite
def log_se_data(draw: st.DrawFn, min_k: int = 2, max_k: int = 8) -> tuple[np.ndarray, ...]:
    k = draw(st.integers(min_k, max_k))
    y = draw(st.lists(st.floats(-3.0, 3.0), min_size=k, max_size=k))
    se = draw(st.lists(st.floats(0.05, 2.0), min_size=k, max_size=k))
    return np.array(y), np.array(se)


@st.composite
def count_data(draw: st.DrawFn) -> pd.DataFrame:
    """2x2 tables, zero cells allowed; the first study always has events in one arm at least."""
    k = draw(st.integers(2, 6))
    rows = []
    for i in range(k):
        n1 = draw(st.integers(5, 200))
        n2 = draw(st.integers(5, 200))
        a = draw(st.integers(1 if i == 0 else 0, n1 - 1 if i == 0 else n1))
        c = draw(st.integers(0, n2))
        rows.append(
            {"study": f"S{i + 1}", "events_trt": a, "n_trt": n1, "events_ctl": c, "n_ctl": n2}
        )
    return pd.DataFrame(rows)


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotEstimableWarning)
        return func(*args, **kwargs)


def _close(a: float, b: float, tol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def _assert_same(r1, r2, keys=POOL_KEYS, tol=ORDER_TOL) -> None:
    for key in keys:
        a, b = getattr(r1, key), getattr(r2, key)
        assert _close(a, b, tol), f"{key}: {a!r} != {b!r}"


def _swap_arms(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(
        columns={
            "events_trt": "events_ctl",
            "n_trt": "n_ctl",
            "events_ctl": "events_trt",
            "n_ctl": "n_trt",
        }
    )[list(frame.columns)]


# --------------------------------------------------------------------------------------------
# order of studies
# --------------------------------------------------------------------------------------------


@FAST
@given(data=log_se_data(), seed=st.integers(0, 2**32 - 1))
def test_permutation_invariance_iv(data, seed) -> None:
    y, se = data
    perm = np.random.default_rng(seed).permutation(y.size)
    for method in IV_METHODS:
        r1 = _quiet(frequentist.rma, y, se, method=method)
        r2 = _quiet(frequentist.rma, y[perm], se[perm], method=method)
        _assert_same(r1, r2)


@SETTINGS
@given(frame=count_data(), seed=st.integers(0, 2**32 - 1))
def test_permutation_invariance_counts(frame, seed) -> None:
    perm = np.random.default_rng(seed).permutation(len(frame))
    shuffled = frame.iloc[perm].reset_index(drop=True)
    for measure, method in (
        ("RR", "MH"),
        ("OR", "MH"),
        ("RD", "MH"),
        ("OR", "PETO"),
        ("RR", "REML"),
        ("OR", "DL"),
    ):
        r1 = _quiet(frequentist.meta_analysis, frame, measure=measure, method=method)
        r2 = _quiet(frequentist.meta_analysis, shuffled, measure=measure, method=method)
        _assert_same(r1, r2)
        assert sorted(r1.studies) == sorted(r2.studies)


@EXACT
@given(data=log_se_data(max_k=6), seed=st.integers(0, 2**32 - 1))
def test_permutation_invariance_exact(data, seed) -> None:
    y, se = data
    perm = np.random.default_rng(seed).permutation(y.size)
    p1 = exact_posterior(y, se, tol=EXACT_TOL)
    p2 = exact_posterior(y[perm], se[perm], tol=EXACT_TOL)
    q = np.array([0.025, 0.5, 0.975])
    np.testing.assert_allclose(p1.mu_quantile(q), p2.mu_quantile(q), atol=POST_TOL)
    np.testing.assert_allclose(p1.tau_quantile(q), p2.tau_quantile(q), atol=POST_TOL)


# --------------------------------------------------------------------------------------------
# swapping arms
# --------------------------------------------------------------------------------------------


@SETTINGS
@given(frame=count_data())
def test_swapping_arms_negates_counts(frame) -> None:
    swapped = _swap_arms(frame)
    for measure, method in (
        ("RR", "MH"),
        ("OR", "MH"),
        ("RD", "MH"),
        ("OR", "PETO"),
        ("RR", "FE"),
        ("OR", "DL"),
        ("RD", "REML"),
    ):
        r1 = _quiet(frequentist.meta_analysis, frame, measure=measure, method=method)
        r2 = _quiet(frequentist.meta_analysis, swapped, measure=measure, method=method)
        assert _close(r2.estimate, -r1.estimate, ORDER_TOL), (measure, method)
        assert _close(r2.ci_low, -r1.ci_high, ORDER_TOL), (measure, method)
        assert _close(r2.ci_high, -r1.ci_low, ORDER_TOL), (measure, method)
        _assert_same(r1, r2, keys=("se", "pval", "tau2", "Q"))


@st.composite
def ratio_ci_data(draw: st.DrawFn) -> pd.DataFrame:
    k = draw(st.integers(1, 6))
    rows = []
    for i in range(k):
        log_est = draw(st.floats(-2.0, 2.0))
        below = draw(st.floats(0.05, 1.5))
        above = draw(st.floats(0.05, 1.5))
        rows.append(
            {
                "study": f"S{i + 1}",
                "estimate": math.exp(log_est),
                "ci_low": math.exp(log_est - below),
                "ci_high": math.exp(log_est + above),
            }
        )
    return pd.DataFrame(rows)


@EXACT
@given(frame=ratio_ci_data())
def test_swapping_arms_ratio_inputs_exact(frame) -> None:
    """HR of control vs treatment = 1/HR, CI (1/hi, 1/lo): mu quantiles mirror around 0."""
    swapped = pd.DataFrame(
        {
            "study": frame["study"],
            "estimate": 1 / frame["estimate"],
            "ci_low": 1 / frame["ci_high"],
            "ci_high": 1 / frame["ci_low"],
        }
    )
    t1 = effects.escalc(frame, measure="HR").table
    t2 = effects.escalc(swapped, measure="HR").table
    np.testing.assert_allclose(t2["yi"], -t1["yi"], atol=1e-12)
    np.testing.assert_allclose(t2["sei"], t1["sei"], rtol=1e-12)
    p1 = exact_posterior(t1["yi"], t1["sei"], tol=EXACT_TOL)  # default mu prior N(0, 4)
    p2 = exact_posterior(t2["yi"], t2["sei"], tol=EXACT_TOL)
    q = np.array([0.025, 0.25, 0.5, 0.75, 0.975])
    np.testing.assert_allclose(p2.mu_quantile(q), -p1.mu_quantile(1 - q), atol=POST_TOL)
    np.testing.assert_allclose(p2.tau_quantile(q), p1.tau_quantile(q), atol=POST_TOL)


# --------------------------------------------------------------------------------------------
# an uninformative study
# --------------------------------------------------------------------------------------------


@EXACT
@given(data=log_se_data(), extra=st.floats(-5.0, 5.0))
def test_infinite_se_study_changes_nothing(data, extra) -> None:
    y, se = data
    y2, se2 = np.append(y, extra), np.append(se, HUGE_SE)
    for method in ("FE", "ML", "REML"):
        r1 = _quiet(frequentist.rma, y, se, method=method)
        r2 = _quiet(frequentist.rma, y2, se2, method=method)
        _assert_same(r1, r2, keys=("estimate", "se", "ci_low", "ci_high", "tau2", "Q"))
    p1 = exact_posterior(y, se, tol=EXACT_TOL)
    p2 = exact_posterior(y2, se2, tol=EXACT_TOL)
    q = np.array([0.025, 0.5, 0.975])
    np.testing.assert_allclose(p2.mu_quantile(q), p1.mu_quantile(q), atol=POST_TOL)
    np.testing.assert_allclose(p2.tau_quantile(q), p1.tau_quantile(q), atol=POST_TOL)


# --------------------------------------------------------------------------------------------
# exact engine: CDFs
# --------------------------------------------------------------------------------------------

_TAU_PRIORS = st.sampled_from(
    ["half-normal:0.5", "half-cauchy:0.5", "half-normal:2", "uniform:0,3", None]
)


@EXACT
@given(data=log_se_data(min_k=1), tau_prior=_TAU_PRIORS)
def test_exact_cdfs_monotone_and_reach_one(data, tau_prior) -> None:
    y, se = data
    post = exact_posterior(y, se, tau_prior=tau_prior, tol=EXACT_TOL)
    tau_grid = np.concatenate([[0.0], np.geomspace(1e-4, 1e3, 120)])
    tc = post.tau_cdf(tau_grid)
    assert np.all(np.diff(tc) >= -POST_TOL)
    assert tc[0] == pytest.approx(0.0, abs=POST_TOL)
    assert tc[-1] == pytest.approx(1.0, abs=POST_TOL)
    centre, spread = post.mu_mean(), post.mu_sd()
    mu_grid = centre + spread * np.linspace(-40.0, 40.0, 161)
    mc = post.mu_cdf(mu_grid)
    assert np.all(np.diff(mc) >= -POST_TOL)
    assert mc[0] == pytest.approx(0.0, abs=POST_TOL)
    assert mc[-1] == pytest.approx(1.0, abs=POST_TOL)
    q = np.array([0.01, 0.1, 0.5, 0.9, 0.99])
    np.testing.assert_allclose(post.mu_cdf(post.mu_quantile(q)), q, atol=POST_TOL)
    np.testing.assert_allclose(post.tau_cdf(post.tau_quantile(q)), q, atol=POST_TOL)


# --------------------------------------------------------------------------------------------
# limit: tau prior at 0 -> fixed effect
# --------------------------------------------------------------------------------------------


@SETTINGS
@given(data=log_se_data(min_k=1), mu_prior=st.sampled_from(["flat", "normal:0,1000"]))
def test_tau_prior_at_zero_gives_fixed_effect(data, mu_prior) -> None:
    y, se = data
    fe = frequentist.rma(y, se, method="FE")
    post = exact_posterior(
        y,
        se,
        tau_prior=TauPrior.half_normal(1e-4),
        mu_prior=MuPrior.coerce(mu_prior),
        tol=EXACT_TOL,
    )
    assert post.mu_mean() == pytest.approx(fe.estimate, abs=FE_LIMIT_TOL)
    assert post.mu_sd() == pytest.approx(fe.se, rel=FE_LIMIT_TOL)
    lo, hi = post.mu_quantile([(1 - fe.ci_prob) / 2, (1 + fe.ci_prob) / 2])
    assert lo == pytest.approx(fe.ci_low, abs=FE_LIMIT_TOL)
    assert hi == pytest.approx(fe.ci_high, abs=FE_LIMIT_TOL)
