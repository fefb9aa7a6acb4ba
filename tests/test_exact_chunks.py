"""The exact engine in chunks, on very different scales and with very different SEs.

* Chunking: the engine evaluates its sums in tiles of ``config["exact_chunk_cells"]`` cells.
  With a tiny tile every result must be *identical* (not merely close) to the default, and
  summing studies in small blocks must agree with one block to rounding.
* Scale equivariance: multiplying the estimates, their standard errors, the scale of the tau
  prior and the location and sd of the mu prior by ``c`` must multiply every quantile of mu,
  tau and theta_new by ``c`` and leave every probability unchanged. Both posteriors are exact
  to the engine's documented tolerance ``tol`` on CDF values, so they may differ by ``2 tol``.
  Likewise shifting the estimates and the prior mean shifts mu and theta_new (translation).
* References written here by hand: the Higgins-Thompson typical variance of studies whose
  SEs differ by up to 1e100, and the tau posterior of estimates 1e8 SEs apart (where the SEs
  are negligible and the marginal likelihood has a closed form).
"""

from __future__ import annotations

import math
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from bayesmtor import config
from bayesmtor.bayes import exact as ex
from bayesmtor.bayes import quadrature
from bayesmtor.bayes.exact import (
    exact_batch,
    exact_batch_groups,
    exact_batch_posterior,
    exact_posterior,
)
from bayesmtor.bayes.priors import MuPrior, TauPrior
from bayesmtor.errors import ConvergenceWarning, InputError, NotEstimableWarning

# Eight-schools data, Rubin (1981), as printed in the bayesmeta vignette.
SCHOOLS_Y = np.array([28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16])
SCHOOLS_SE = np.array([14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6])
# A synthetic log odds-ratio example (numbers chosen for the test, not real trial data).
SYN_Y = np.array([-0.62, -0.15, -1.10, 0.20, -0.45])
SYN_SE = np.array([0.30, 0.25, 0.45, 0.35, 0.20])

# A tile smaller than any row of any computation below: every sum is split as far as it goes.
TINY_CELLS = 64


def _ragged_batch(seed: int = 11) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    m, kmax = 9, 7
    k = rng.integers(1, kmax + 1, size=m)
    k[4] = 0  # an analysis without studies
    mask = np.arange(kmax)[None, :] < k[:, None]
    se = rng.uniform(0.1, 0.6, size=(m, kmax))
    y = rng.normal(-0.3, 0.5, size=(m, kmax))
    return y, se, mask


def _everything(y: np.ndarray, se: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Every kind of output of the engine, as arrays."""
    out: dict[str, np.ndarray] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotEstimableWarning)
        out["table"] = exact_batch(y, se, mask, tau_prior="half-cauchy:0.5").to_numpy(float)
        post = exact_batch_posterior(y, se, mask, mu_prior="flat")
        codes = np.repeat(np.arange(y.shape[0]), mask.sum(axis=1))
        out["groups"] = exact_batch_groups(y[mask], se[mask], codes, n_groups=y.shape[0])
        out["groups"] = out["groups"].to_numpy(float)
    m = y.shape[0]
    grid = np.tile(np.linspace(0.05, 0.8, 5), (m, 1))
    probs = np.tile([0.01, 0.3, 0.5, 0.99], (m, 1))
    out.update(
        tau_cdf=post.tau_cdf(grid), tau_q=post.tau_quantile(probs), mu_cdf=post.mu_cdf(grid - 0.4),
        mu_q=post.mu_quantile(probs), new_q=post.theta_new_quantile(probs),
        tau_mean=post.tau_mean(), mu_sd=post.mu_sd(), err=post.error_estimate,
    )  # fmt: skip
    p = exact_posterior(
        SCHOOLS_Y, SCHOOLS_SE, tau_prior="half-cauchy:25", mu_prior="normal:0,50", tol=1e-9
    )
    out["summary"] = p.summary().to_numpy()
    out["theta"] = p.theta_summary()[["mean", "sd", "median", "q_low", "q_high"]].to_numpy()
    out["tau_pdf"] = p.tau_pdf(np.linspace(0.0, 40.0, 30))
    out["tau_cdf_1"] = p.tau_cdf(np.linspace(0.0, 40.0, 30))
    out["new_cdf"] = p.theta_new_cdf(np.linspace(-20.0, 40.0, 30))
    out["draws"] = p.draws(200, rng=5).to_numpy()
    out["lml"] = np.array([p.log_marginal_likelihood, p.n_nodes, p.error_estimate])
    return out


def _assert_identical(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_tiny_chunks_give_identical_results(monkeypatch) -> None:
    """Tiles of 64 cells split every row, node range and mixture evaluation; nothing changes.

    Each tile computes its entries exactly as the whole array would (reductions run along the
    studies or nodes of one entry only, never across entries), so the comparison is exact.
    """
    data = _ragged_batch()
    default = _everything(*data)
    monkeypatch.setitem(config.defaults, "exact_chunk_cells", TINY_CELLS)
    _assert_identical(default, _everything(*data))


def test_study_blocks_sum_like_one_block(monkeypatch) -> None:
    """Studies summed in blocks of 3 (the 8 schools in 3 blocks) agree with one block to
    rounding, and the blocked sums too are identical whatever the tile size."""
    one_block = _everything(*_ragged_batch())
    monkeypatch.setattr(quadrature, "_STUDY_BLOCK", 3)
    blocked = _everything(*_ragged_batch())
    for key in one_block:
        np.testing.assert_allclose(blocked[key], one_block[key], rtol=1e-11, atol=1e-13)
    monkeypatch.setitem(config.defaults, "exact_chunk_cells", TINY_CELLS)
    _assert_identical(blocked, _everything(*_ragged_batch()))


def test_memory_of_a_large_meta_analysis_follows_the_chunk_size(monkeypatch) -> None:
    """5,000 studies (512 quadrature nodes): with tiles of 50,000 cells the largest traced
    allocation total stays a few MB. Unchunked, each (nodes x studies) temporary alone would
    take 512 * 5000 * 8 B = 20 MB, and about five of them are alive at once."""
    rng = np.random.default_rng(20141001)
    sei = rng.uniform(0.1, 0.8, 5000)
    yi = rng.normal(-0.3, np.sqrt(0.2**2 + sei**2))
    monkeypatch.setitem(config.defaults, "exact_chunk_cells", 50_000)
    tracemalloc.start()
    try:
        post = exact_posterior(yi, sei)
        post.summary()
        post.theta_summary()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert post.n_nodes >= 256  # the case is large enough to matter
    assert peak < 12e6, f"peak traced allocation {peak / 1e6:.1f} MB"


def test_memory_stays_bounded_when_no_analysis_converges(monkeypatch) -> None:
    """tol = 1e-17 is below rounding: all 8 analyses refine to 8192 panels (65,536 nodes).

    One analysis on that grid holds ~8 MB (about 16 arrays of 65,536 float64); refined and
    summarised one at a time, the batch stays near that, where holding the 8 together would
    take over 40 MB."""
    rng = np.random.default_rng(1)
    y, s = rng.normal(0.0, 0.5, (8, 5)), rng.uniform(0.1, 0.5, (8, 5))
    monkeypatch.setitem(config.defaults, "exact_chunk_cells", 50_000)
    tracemalloc.start()
    try:
        with pytest.warns(ConvergenceWarning, match="tol=1e-17 for 8 meta-analyses"):
            table = exact_batch(y, s, tol=1e-17)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.isfinite(table.drop(columns="quad_error").to_numpy()).all()
    assert peak < 30e6, f"peak traced allocation {peak / 1e6:.1f} MB"


def test_groups_in_long_format_match_the_padded_batch() -> None:
    """Long-format input (studies shuffled across groups, one code without studies) gives the
    table of the padded batch: sizes 1..17 fall in five size buckets, each padded to its own
    largest k, so entries agree to rounding (padding changes the order of the sums)."""
    rng = np.random.default_rng(5)
    sizes = np.array([3, 1, 17, 2, 0, 9, 4, 5, 2, 17])
    codes = np.repeat(np.arange(sizes.size), sizes)
    rng.shuffle(codes)
    yi = rng.normal(-0.2, 0.4, codes.size)
    sei = rng.uniform(0.1, 0.7, codes.size)
    with pytest.warns(NotEstimableWarning, match="1 meta-analysis has no studies"):
        long = exact_batch_groups(yi, sei, codes, tau_prior="half-normal:0.5")
    kmax = sizes.max()
    y, s = np.zeros((sizes.size, kmax)), np.ones((sizes.size, kmax))
    mask = np.zeros((sizes.size, kmax), dtype=bool)
    for g in range(sizes.size):  # file order within each group
        y[g, : sizes[g]], s[g, : sizes[g]] = yi[codes == g], sei[codes == g]
        mask[g, : sizes[g]] = True
    with pytest.warns(NotEstimableWarning):
        padded = exact_batch(y, s, mask, tau_prior="half-normal:0.5")
    assert list(long.columns) == list(padded.columns)
    assert long["k"].tolist() == sizes.tolist()
    assert long.loc[4].drop("k").isna().all()
    values = [c for c in padded.columns if c not in ("k", "quad_error")]
    np.testing.assert_allclose(long[values], padded[values], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(long["quad_error"], padded["quad_error"], atol=1e-13)


def test_groups_of_equal_size_give_exactly_the_padded_table() -> None:
    rng = np.random.default_rng(8)
    y, s = rng.normal(0.0, 0.5, (30, 6)), rng.uniform(0.1, 0.5, (30, 6))
    long = exact_batch_groups(y.ravel(), s.ravel(), np.repeat(np.arange(30), 6))
    pd.testing.assert_frame_equal(long, exact_batch(y, s), check_exact=True)


def test_batches_without_analyses() -> None:
    table = exact_batch(np.zeros((0, 3)), np.ones((0, 3)))
    assert table.empty and list(table.columns) == ["k", *ex._TABLE_COLUMNS]
    assert exact_batch_groups([], [], np.array([], dtype=int)).empty
    assert "m=0" in repr(exact_batch_posterior(np.zeros((0, 3)), np.ones((0, 3))))


@pytest.mark.parametrize(
    ("group", "n_groups", "match"),
    [
        ([0, 1, -1], None, "negative"),
        ([0.0, 1.0, 1.0], None, "integer codes"),
        ([0, 1], None, "3 integer codes"),
        ([0, 1, 3], 3, "out of range"),
        ([0, 1, 1], -2, "non-negative"),
    ],
)
def test_group_codes_are_checked(group, n_groups, match) -> None:
    with pytest.raises(InputError, match=match):
        exact_batch_groups([0.1, 0.2, 0.3], [0.2, 0.2, 0.2], group, n_groups=n_groups)


@pytest.mark.parametrize("value", [0, -5, 2.5, "many", True])
def test_chunk_size_must_be_a_positive_integer(monkeypatch, value) -> None:
    """Refused with the key named, when set (the registry validates) or at the latest when used."""
    with pytest.raises(InputError, match="exact_chunk_cells"):
        monkeypatch.setitem(config.defaults, "exact_chunk_cells", value)
        exact_posterior(SYN_Y, SYN_SE)


# ---------------------------------------------------------------------------------------------
# scale equivariance
# ---------------------------------------------------------------------------------------------
SCALES = [1e-45, 1e-20, 1e20, 1e45]
SCALE_TOL = 1e-8  # quadrature tolerance of both fits
CDF_TOL = 2 * SCALE_TOL  # two fits each within tol of the same exact CDF
PROBS = np.array([0.025, 0.5, 0.975])
TURNER = TauPrior.turner("adverse_events", "pharma_vs_placebo")  # log-normal on tau


def _tau_prior(family: str, c: float) -> TauPrior:
    """Every tau family is a scale family: tau' = c tau has the prior with scale c times."""
    if family == "half-normal":
        return TauPrior.half_normal(0.5 * c)
    if family == "half-cauchy":
        return TauPrior.half_cauchy(0.5 * c)
    if family == "half-student-t":
        return TauPrior.half_student_t(0.5 * c, 3.0)
    if family == "uniform":
        return TauPrior.uniform(0.01 * c, 5.0 * c)
    # log tau' = log tau + log c: the Turner prior (log-normal) with meanlog shifted
    return TauPrior.log_normal(TURNER["meanlog"] + math.log(c), TURNER["sdlog"])


def _mu_prior(kind: str, c: float) -> MuPrior:
    return MuPrior.flat() if kind == "flat" else MuPrior.normal(0.1 * c, 4.0 * c)


def _fit(family: str, mu: str, c: float):
    return exact_posterior(
        SYN_Y * c, SYN_SE * c, tau_prior=_tau_prior(family, c), mu_prior=_mu_prior(mu, c),
        tol=SCALE_TOL,
    )  # fmt: skip


_REFERENCE: dict[tuple[str, str], object] = {}


def _reference(family: str, mu: str):
    if (family, mu) not in _REFERENCE:
        _REFERENCE[family, mu] = _fit(family, mu, 1.0)
    return _REFERENCE[family, mu]


FAMILIES = ["half-normal", "half-cauchy", "half-student-t", "uniform", "log-normal"]


@pytest.mark.parametrize("c", SCALES)
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mu", ["normal", "flat"])
def test_scale_equivariance(c: float, family: str, mu: str) -> None:
    ref, post = _reference(family, mu), _fit(family, mu, c)
    # probabilities do not change
    assert abs(post.p_mu_below(0.0) - ref.p_mu_below(0.0)) <= CDF_TOL
    pts = np.array([0.05, 0.2, 0.5])
    np.testing.assert_allclose(post.tau_cdf(pts * c), ref.tau_cdf(pts), rtol=0, atol=CDF_TOL)
    np.testing.assert_allclose(post.mu_cdf(-pts * c), ref.mu_cdf(-pts), rtol=0, atol=CDF_TOL)
    # quantiles scale by c: q_c / c is the same quantile of the unscaled posterior
    for quantile, cdf in (
        (post.mu_quantile, ref.mu_cdf),
        (post.tau_quantile, ref.tau_cdf),
        (post.theta_new_quantile, ref.theta_new_cdf),
    ):
        np.testing.assert_allclose(cdf(np.asarray(quantile(PROBS)) / c), PROBS, atol=CDF_TOL)
    # shrunken study effects: a CDF error e moves a quantile by e / density, and the density
    # of theta_i at its 2.5% and 97.5% points is >= 0.05 / sd (0.058 / sd for a normal)
    th_c, th_1 = post.theta_summary(), ref.theta_summary()
    for col in ("mean", "median", "q_low", "q_high"):
        dev = np.abs(th_c[col].to_numpy() / c - th_1[col].to_numpy()) / th_1["sd"].to_numpy()
        assert dev.max() <= CDF_TOL / 0.05, col
    assert post.s2_typical / c**2 == pytest.approx(ref.s2_typical, rel=1e-13)
    # p(c y) = c^-k p(y): the log marginal likelihood shifts by -k log c (relative tol on p)
    if mu == "normal":
        shift = post.log_marginal_likelihood + SYN_Y.size * math.log(c)
        assert abs(math.expm1(shift - ref.log_marginal_likelihood)) <= CDF_TOL
    else:
        assert post.log_marginal_likelihood is None


@pytest.mark.parametrize("c", SCALES)
def test_scale_equivariance_of_a_batch(c: float) -> None:
    y, se, mask = _ragged_batch(seed=2)
    mask[4, 0] = True  # every analysis has a study here
    kw = {"tol": SCALE_TOL}
    ref = exact_batch_posterior(
        y, se, mask, tau_prior=TauPrior.half_normal(0.5), mu_prior=MuPrior.normal(0, 4), **kw
    )
    table = exact_batch(
        y * c, se * c, mask, tau_prior=TauPrior.half_normal(0.5 * c),
        mu_prior=MuPrior.normal(0, 4 * c), **kw,
    )  # fmt: skip
    m = y.shape[0]
    full = np.ones(m)
    np.testing.assert_allclose(table["p_mu_below_0"], ref.p_mu_below(0.0), atol=CDF_TOL)
    for col, prob in (("mu_median", 0.5), ("mu_low", 0.025), ("mu_high", 0.975)):
        np.testing.assert_allclose(ref.mu_cdf(table[col] / c), prob * full, atol=CDF_TOL)
    for col, prob in (("tau_median", 0.5), ("tau_low", 0.025), ("tau_high", 0.975)):
        np.testing.assert_allclose(ref.tau_cdf(table[col] / c), prob * full, atol=CDF_TOL)


@pytest.mark.parametrize("shift", [-1e6, 1e12])
def test_translation_equivariance(shift: float) -> None:
    """Estimates and the prior mean of mu shifted by ``shift``: mu and theta_new quantiles
    shift by it; tau, the sd of mu and probabilities relative to the shifted data stay.

    The shifted estimates are rounded (spacing 1.2e-4 at 1e12), so the reference is the fit
    of exactly those numbers shifted back (``(y + shift) - shift`` is exact). Quantiles come
    back on the shifted scale, rounded there: that rounding (a few spacings, divided by the
    sd of mu for CDF units) is allowed on top of ``2 tol``.
    """
    y = SYN_Y + shift
    m0 = 0.1 + shift
    ref = exact_posterior(y - shift, SYN_SE, mu_prior=MuPrior.normal(m0 - shift, 4.0), tol=1e-9)
    post = exact_posterior(y, SYN_SE, mu_prior=MuPrior.normal(m0, 4.0), tol=1e-9)
    np.testing.assert_allclose(post.tau_quantile(PROBS), ref.tau_quantile(PROBS), rtol=1e-9)
    assert post.mu_sd() == pytest.approx(ref.mu_sd(), rel=1e-9)
    assert post.theta_new_sd() == pytest.approx(ref.theta_new_sd(), rel=1e-9)
    atol = 2e-9 + 4 * np.spacing(abs(shift)) / ref.mu_sd()
    for quantile, cdf in (
        (post.mu_quantile, ref.mu_cdf),
        (post.theta_new_quantile, ref.theta_new_cdf),
    ):
        np.testing.assert_allclose(cdf(np.asarray(quantile(PROBS)) - shift), PROBS, atol=atol)
    assert abs(post.p_mu_below(shift) - ref.p_mu_below(0.0)) <= atol


def test_estimates_at_the_edge_of_the_range() -> None:
    """Three estimates of 1e50 with standard errors 1 (flat mu prior): the posterior of
    mu - 1e50 is that of estimates at 0, which double precision cannot show next to 1e50
    (its spacing there is 1.4e34) but which the engine keeps: the sd of mu, tau, and
    P(mu < 1e50) = 1/2 (the posterior is symmetric about the common estimate)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # converged: no ConvergenceWarning
        far = exact_posterior([1e50] * 3, [1.0] * 3, mu_prior="flat", tol=SCALE_TOL)
    zero = exact_posterior([0.0] * 3, [1.0] * 3, mu_prior="flat", tol=SCALE_TOL)
    assert far.mu_quantile(0.5) == 1e50 and far.mu_mean() == 1e50
    assert far.p_mu_below(1e50) == pytest.approx(0.5, abs=CDF_TOL)
    assert far.mu_sd() == pytest.approx(zero.mu_sd(), rel=1e-12)
    assert far.theta_new_sd() == pytest.approx(zero.theta_new_sd(), rel=1e-12)
    np.testing.assert_allclose(far.tau_quantile(PROBS), zero.tau_quantile(PROBS), rtol=1e-12)
    assert far.theta_summary()["sd"].to_numpy() == pytest.approx(
        zero.theta_summary()["sd"].to_numpy(), rel=1e-12
    )


# ---------------------------------------------------------------------------------------------
# very different standard errors; estimates far apart
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sei", "expected"),
    [
        # k = 2: (k - 1) sum(w) / (sum(w)^2 - sum(w^2)) = (w1 + w2) / (2 w1 w2) = (v1 + v2) / 2
        ([1e-9, 1.0], (1e-18 + 1.0) / 2),
        ([1e-50, 1e50], (1e-100 + 1e100) / 2),
        # k = 3, w = (1e40, 1, 1): 2 (1e40 + 2) / (2 (1e40 + 1e40 + 1))
        ([1e-20, 1.0, 1.0], (1e40 + 2.0) / (2e40 + 1.0)),
    ],
)
def test_typical_variance_with_standard_errors_orders_of_magnitude_apart(sei, expected) -> None:
    """The textbook difference sum(w)^2 - sum(w^2) cancels to 0 here (s2 would be inf)."""
    post = exact_posterior(np.linspace(0.1, 0.3, len(sei)), sei)
    assert post.s2_typical == pytest.approx(expected, rel=1e-12)
    t = post.summary().loc["tau", "median"]
    assert post.summary().loc["I2", "median"] == pytest.approx(t**2 / (t**2 + expected), rel=1e-12)


def test_estimates_far_apart_in_standard_errors() -> None:
    """Estimates 1e8 standard errors apart under a prior on their scale (half-Cauchy, 1e8).

    The map shared by a batch is centred near the standard errors (1), where this posterior
    of tau (near 1e8) sits within 1e-8 of the end of the range; the engine refines such an
    analysis again on a map centred at its own mode. Reference, derived by hand: with a flat
    mu prior, p(y | tau) is proportional to sigma^-(k-1) exp(-S / (2 sigma^2)), sigma^2 =
    s^2 + tau^2, S = sum (y - ybar)^2, and s^2 / tau^2 ~ 1e-16 is negligible; so
    p(tau | y) ~ halfcauchy(tau) tau^-2 exp(-S / (2 tau^2)), integrated by the trapezoid rule
    on log tau (400,000 steps over 1e5..1e14: relative error ~1e-9), and
    P(mu < 0 | tau, y) = Phi(-ybar sqrt(k) / tau).
    """
    y = np.array([1e8, -1e8, 5e7])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # converged: no ConvergenceWarning, no overflow
        post = exact_posterior(
            y, np.ones(3), tau_prior=TauPrior.half_cauchy(1e8), mu_prior="flat", tol=1e-9
        )
    k, ybar = y.size, y.mean()
    S = ((y - ybar) ** 2).sum()
    u = np.linspace(math.log(1e5), math.log(1e14), 400_001)
    t = np.exp(u)
    logk = stats.halfcauchy.logpdf(t, scale=1e8) - (k - 1) * u - S / (2 * t * t) + u
    dens = np.exp(logk - logk.max())
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]))])
    cdf = cum / cum[-1]
    pts = np.array([3e7, 1e8, 3e8, 1e9])
    np.testing.assert_allclose(post.tau_cdf(pts), np.interp(np.log(pts), u, cdf), atol=1e-7)
    below = dens * special.ndtr(-ybar * math.sqrt(k) / t)
    p_below = np.sum(0.5 * (below[1:] + below[:-1])) / cum[-1]
    assert post.p_mu_below(0.0) == pytest.approx(p_below, abs=1e-7)


def test_log_marginal_likelihood() -> None:
    y, se = np.tile(SYN_Y, 2), np.tile(SYN_SE, 2)  # k = 10
    post = exact_posterior(y, se, tau_prior="half-normal:0.5", mu_prior="normal:0,4")
    assert post.log_marginal_likelihood == pytest.approx(math.log(post.marginal_likelihood))
    # on a scale where p(y) itself underflows (c^-k = 1e-450), its logarithm does not
    far = exact_posterior(
        y * 1e45, se * 1e45, tau_prior=TauPrior.half_normal(0.5e45),
        mu_prior=MuPrior.normal(0.0, 4e45),
    )  # fmt: skip
    assert far.marginal_likelihood == 0.0
    expected = post.log_marginal_likelihood - y.size * math.log(1e45)
    assert far.log_marginal_likelihood == pytest.approx(expected, rel=1e-6)
    assert exact_posterior(SYN_Y, SYN_SE, mu_prior="flat").log_marginal_likelihood is None


def test_batches_split_across_processes_give_identical_results() -> None:
    """Rows of each size bucket computed by forked workers (2 and 3 processes, batches from a
    single study to 17) are those of one process, bit for bit; the unconverged-warning and
    the no-studies warning still reach the caller. Run in a fresh interpreter: the engine
    does not fork from a process with other threads (pytest may have some)."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import json, warnings
        import numpy as np
        from bayesmtor import config
        from bayesmtor.bayes.exact import exact_batch_group_columns
        from bayesmtor.bayes import workers

        rng = np.random.default_rng(21)
        sizes = rng.integers(0, 18, 400)
        codes = np.repeat(np.arange(sizes.size), sizes)
        rng.shuffle(codes)
        yi, sei = rng.normal(-0.2, 0.4, codes.size), rng.uniform(0.1, 0.7, codes.size)
        config.defaults["exact_parallel_min"] = 1
        out, said = {}, {}
        for n in (1, 2, 3):
            config.defaults["exact_processes"] = n
            assert workers.processes(400) == min(n, len(__import__("os").sched_getaffinity(0)))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                out[n] = exact_batch_group_columns(yi, sei, codes, tol=1e-14, bma=True)
            said[n] = sorted({str(w.message)[:40] for w in caught})
        same = all(
            np.array_equal(out[1][key], out[n][key], equal_nan=True)
            for n in (2, 3) for key in out[1]
        )
        print(json.dumps({"same": same, "said": said, "keys": len(out[1])}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    import json

    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["same"] and info["keys"] > 14
    assert info["said"]["1"] == info["said"]["2"] == info["said"]["3"]
    assert any("no studies" in s for s in info["said"]["1"])


def test_a_worker_that_dies_is_an_error_not_a_hang() -> None:
    """A worker killed mid-batch (as the kernel's out-of-memory killer would) makes the batch
    fail with an EstimationError naming the remedy, instead of waiting for it forever."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import os
        import numpy as np
        from bayesmtor import config
        from bayesmtor.bayes import workers
        from bayesmtor.bayes.exact import exact_batch_group_columns
        from bayesmtor.errors import EstimationError

        parent, work = os.getpid(), workers._work

        def dying(index):  # the forked workers die; this process computes its own share
            if os.getpid() != parent:
                os._exit(9)
            return work(index)

        workers._work = dying
        config.defaults["exact_parallel_min"] = 1
        config.defaults["exact_processes"] = 2
        codes = np.repeat(np.arange(50), 3)
        try:
            exact_batch_group_columns(np.zeros(150), np.full(150, 0.2), codes)
        except EstimationError as exc:
            print("refused:", exc)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "refused:" in proc.stdout and "exact_processes = 1" in proc.stdout
