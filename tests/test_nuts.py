"""The NumPy NUTS of bayesmtor.bayes.nuts: its densities, its choice, reproducibility, imports.

Agreement of its posteriors with the exact engine is tested in tests/test_mcmc_vs_exact.py
(beside PyMC's sampler, one family-wise bound); here the pieces it is built from.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from bayesmtor import config
from bayesmtor.bayes import nuts, sampling
from bayesmtor.bayes import pymc_models as pmm
from bayesmtor.bayes.priors import MuPrior, TauPrior
from bayesmtor.errors import ConvergenceWarning, InputError

Y = np.array([-0.89, -1.59, -1.35, -1.44, -0.22, -0.79, -1.62, 0.01, -0.47, -1.37, -0.34, 0.45])
S = np.array([0.57, 0.44, 0.64, 0.14, 0.23, 0.11, 0.44, 0.06, 0.24, 0.27, 0.11, 0.73])
CLASSES = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2])
ONEHOT = (CLASSES[:, None] == np.arange(3)[None, :]).astype(float)

TAU_PRIORS = [
    TauPrior.half_normal(0.5),
    TauPrior.half_cauchy(0.3),
    TauPrior.half_student_t(0.5, 3.0),
    TauPrior.uniform(0.0, 2.0),
    TauPrior.uniform(0.05, 1.5),
    TauPrior.log_normal(-1.5, 1.2),
]
MU_PRIORS = [MuPrior.normal(0.0, 4.0), MuPrior.flat()]
POINTS = [np.array(p) for p in ([-0.6, -1.2, -0.8], [0.3, 0.7, -2.0], [-2.0, -4.0, 1.0])]


def _numeric_grad(f, x, h=1e-6):
    return np.array([(f(list(x + e))[0] - f(list(x - e))[0]) / (2 * h) for e in np.eye(x.size) * h])


@pytest.mark.parametrize("mu_prior", MU_PRIORS, ids=str)
@pytest.mark.parametrize("tau_prior", TAU_PRIORS, ids=str)
def test_gradients_match_finite_differences(tau_prior, mu_prior):
    """Analytic gradients of both densities agree with central differences (relative 1e-6:
    the differences themselves are good to ~1e-9 at this step)."""
    dens = [
        nuts.normal_normal_density(Y, S, tau_prior, mu_prior),
        nuts.multilevel_density(Y, S, ONEHOT, (mu_prior, tau_prior, tau_prior)),
    ]
    for d in dens:
        for p in POINTS:
            x = p[: d.init.size]
            _, g = d.logp_grad(list(x))
            num = _numeric_grad(d.logp_grad, x)
            np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-6 * (1 + np.abs(num).max()))


@pytest.mark.parametrize("tau_prior", TAU_PRIORS, ids=str)
def test_normal_normal_density_is_the_posterior_kernel(tau_prior):
    """Up to a constant, the unconstrained density is log p(y | mu, tau) + log p(mu) + log
    p(tau) + log |d tau / d z|, written out independently here with the priors' own logpdf."""
    mu_prior = MuPrior.normal(-0.5, 2.0)
    d = nuts.normal_normal_density(Y, S, tau_prior, mu_prior)
    diffs = []
    for mu, z in ((-0.6, -1.1), (0.2, -0.2), (-1.5, 0.3)):
        if tau_prior.family == "uniform":
            lo, hi = tau_prior["lower"], tau_prior["upper"]
            u = 1.0 / (1.0 + np.exp(-z))
            tau, log_jac = lo + (hi - lo) * u, np.log((hi - lo) * u * (1 - u))
        else:
            tau, log_jac = np.exp(z), z
        var = S**2 + tau**2
        loglik = -0.5 * np.sum(np.log(2 * np.pi * var) + (Y - mu) ** 2 / var)
        want = loglik + mu_prior.logpdf(mu) + tau_prior.logpdf(tau) + log_jac
        diffs.append(d.logp_grad([mu, z])[0] - float(want))
    assert np.ptp(diffs) < 1e-9, diffs


def test_multilevel_density_is_the_marginal_normal():
    """The Sherman-Morrison form equals the multivariate normal log density of y with
    covariance diag(s^2 + tau^2) + sigma^2 [same class] (dense, via numpy.linalg), up to the
    prior terms, which are the same at every point here (flat mu; priors added back)."""
    tp = TauPrior.half_normal(0.5)
    d = nuts.multilevel_density(Y, S, ONEHOT, (MuPrior.flat(), tp, tp))
    diffs = []
    for mu, zt, zs in POINTS:
        tau, sig = np.exp(zt), np.exp(zs)
        cov = np.diag(S**2 + tau**2) + sig**2 * (ONEHOT @ ONEHOT.T)
        r = Y - mu
        _, logdet = np.linalg.slogdet(cov)
        mvn = -0.5 * (Y.size * np.log(2 * np.pi) + logdet + r @ np.linalg.solve(cov, r))
        want = mvn + tp.logpdf(tau) + zt + tp.logpdf(sig) + zs
        diffs.append(d.logp_grad([mu, zt, zs])[0] - float(want))
    assert np.ptp(diffs) < 1e-9, diffs


def test_windows_are_stans():
    """Stan's warm-up schedule for 1000 iterations: metric updates after 100, 150, 250, 450
    and 950 (init buffer 75, windows 25, 50, 100, 200, 500, term buffer 50)."""
    assert nuts._windows(1000) == (75, [100, 150, 250, 450, 950])
    start, ends = nuts._windows(100)  # short warm-up: 15% / 75% / 10%
    assert start == 15 and ends[-1] == 90


def test_same_seed_same_draws_and_chains_differ():
    d = nuts.normal_normal_density(Y, S, TauPrior.half_normal(0.5), MuPrior.normal(0, 4))
    kw = dict(draws=50, tune=50, chains=2, target_accept=0.9)
    a, b, c = (nuts.sample_nuts(d, seed=seed, **kw) for seed in (3, 3, 4))
    np.testing.assert_array_equal(a.posterior["mu"], b.posterior["mu"])
    np.testing.assert_array_equal(a.sample_stats["n_steps"], b.sample_stats["n_steps"])
    assert not np.array_equal(a.posterior["mu"], c.posterior["mu"])
    assert not np.array_equal(a.posterior["mu"][0], a.posterior["mu"][1])


def test_overflowing_trajectory_is_a_rejected_point():
    d = nuts.normal_normal_density(Y, S, TauPrior.half_normal(0.5), MuPrior.normal(0, 4))
    chain = nuts._Chain(d, np.random.default_rng(0), 10)
    assert chain.density([0.0, 800.0])[0] == -np.inf  # tau = e^800 overflows


def test_choose_sampler_default_fallback_and_refusal():
    tp, mp = TauPrior.half_normal(0.5), MuPrior.normal(0, 4)
    assert config.get("mcmc_sampler") == "numpy"
    assert sampling.choose_sampler(None, (tp, mp)) == "numpy"
    assert sampling.choose_sampler("pymc", (tp, mp)) == "pymc"
    # PyMC keyword arguments: the default falls back to PyMC, an explicit request is refused
    assert sampling.choose_sampler(None, (tp, mp), {"init": "adapt_diag"}) == "pymc"
    with pytest.raises(InputError, match="sample_kwargs"):
        sampling.choose_sampler("numpy", (tp, mp), {"init": "adapt_diag"})
    with pytest.raises(InputError, match="unknown MCMC sampler"):
        sampling.choose_sampler("stan", (tp, mp))


def test_numpy_fit_structure_and_gate():
    """A NumPy fit carries the groups of a PyMC fit, with y's predictive groups drawn from the
    posterior draws, and passes through the same gate."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = pmm.fit_normal_normal(Y, S, draws=300, tune=300, chains=2, random_seed=1)
    idata = res.idata
    assert {"posterior", "sample_stats", "prior", "prior_predictive", "posterior_predictive",
            "observed_data"} <= set(idata.groups())  # fmt: skip
    assert set(idata.posterior.data_vars) >= {"mu", "tau", "theta", "theta_new", "I2"}
    assert idata.posterior_predictive["y"].shape == (*idata.posterior["mu"].shape, Y.size)
    assert idata.prior["tau"].shape == (1, config.get("prior_draws"))
    assert "NumPy" in idata.posterior.attrs["sampler"]
    assert {"divergences", "rhat_max", "ess_bulk_min", "attempts"} <= set(res.diagnostics)
    assert res.diagnostics["attempts"][0]["target_accept"] == config.get("target_accept")


def test_numpy_path_imports_no_pymc():
    code = textwrap.dedent(
        """
        import json, sys
        from bayesmtor.bayes.pymc_models import fit_multilevel, fit_normal_normal
        y, s = [0.1, -0.3, 0.2, -0.5], [0.2, 0.3, 0.25, 0.4]
        fit_normal_normal(y, s, draws=100, tune=100, chains=2)
        fit_multilevel(y, s, ["a", "a", "b", "b"], draws=100, tune=100, chains=2)
        print(json.dumps([m for m in ("pymc", "pytensor") if m in sys.modules]))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_worker_check_uses_the_numpy_sampler():
    from bayesmtor.pipeline import mcmc_worker
    from bayesmtor.plans import load_plan

    plan = load_plan("primary")
    job = mcmc_worker.MCMCJob(
        "x", "check", "x", 0, "RR", tuple(f"t{i}" for i in range(5)), 7, {"yi": Y[:5], "sei": S[:5]}
    )
    messages = []
    mcmc_worker._run_jobs(plan, [job], messages.append)
    (result,) = [m for m in messages if m[0] == "result"]
    idata, diag = result[2][0]
    assert "NumPy" in idata.posterior.attrs["sampler"]
    assert set(idata.posterior.data_vars) >= {"mu", "tau", "theta", "theta_new"}
    assert diag["seed"] == 7 + diag["attempts"] - 1
