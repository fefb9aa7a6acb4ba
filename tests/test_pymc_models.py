"""PyMC models: structure of the InferenceData, netCDF round trip, the convergence gate,
reproducibility, and agreement of MCMC with the exact (quadrature) engine.

The BCG vaccine trials (Colditz et al. 1994, JAMA 271:698, Table 1; distributed as ``dat.bcg``
in R's metadat/metafor) are the public test dataset: 2x2 counts of tuberculosis cases among
vaccinated (tpos/tneg) and unvaccinated (cpos/cneg) participants in 13 trials, and the
allocation method of each trial, used here as a grouping for the multilevel model.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest
from familywise import mcmc_vs_exact, mcse_z_bound

from bayesmtor import config
from bayesmtor.bayes import pymc_models as pmm
from bayesmtor.bayes import sampling
from bayesmtor.bayes.exact import exact_posterior
from bayesmtor.errors import ConvergenceWarning, EstimationError, InputError

# Colditz et al. (1994), Table 1: tpos, tneg, cpos, cneg for trials 1..13.
BCG_COUNTS = np.array(
    [
        [4, 119, 11, 128],  # Aronson 1948
        [6, 300, 29, 274],  # Ferguson & Simes 1949
        [3, 228, 11, 209],  # Rosenthal et al 1960
        [62, 13536, 248, 12619],  # Hart & Sutherland 1977
        [33, 5036, 47, 5761],  # Frimodt-Moller et al 1973
        [180, 1361, 372, 1079],  # Stein & Aronson 1953
        [8, 2537, 10, 619],  # Vandiviere et al 1973
        [505, 87886, 499, 87892],  # TPT Madras 1980
        [29, 7470, 45, 7232],  # Coetzee & Berjak 1968
        [17, 1699, 65, 1600],  # Rosenthal et al 1961
        [186, 50448, 141, 27197],  # Comstock et al 1974
        [5, 2493, 3, 2338],  # Comstock & Webster 1969
        [27, 16886, 29, 17825],  # Comstock et al 1976
    ],
    dtype=float,
)
BCG_LABELS = [f"bcg_{i}" for i in range(1, 14)]
BCG_ALLOC = ["random"] * 4 + ["alternate"] * 2 + ["random"] * 3 + ["systematic"] * 4

# MCMC against the exact engine on these quantities (z = (MCMC - exact) / MCSE, see
# tests/familywise.py). Family-wise false-failure rate 0.001 over the 8 comparisons
# (Bonferroni: |z| < 3.84), inflated for the noise of the estimated MCSE: relative SD 0.086 at
# most in a 100-seed sweep (benchmarks/seed_sweep_mcmc.py, 2 chains x 1000 draws), taken as
# 0.10, gives |z| < 4.15. In that sweep the worst family max |z| was 3.64 and no seed failed.
# Power: a bias of 5.8 MCSEs, i.e. 0.18 posterior SD for a mean or median and 0.57 SD for a
# 2.5% or 97.5% quantile, is caught with probability 95%.
BCG_QUANTITIES = ("mu mean", "mu q0.025", "mu q0.5", "mu q0.975", "tau q0.5", "theta_new mean",
                  "theta_new q0.025", "theta_new q0.975")  # fmt: skip
BCG_MCSE_REL_SD = 0.10
N_MCSE = mcse_z_bound(len(BCG_QUANTITIES), BCG_MCSE_REL_SD)
# The binomial-normal and normal-normal models are different models (exact likelihood vs
# normal approximation); on trials without zero cells their pooled log RR should differ by
# much less than one posterior SD (~0.3 here). Loose sanity bound, not an agreement test.
BINOMIAL_VS_NN_LOGRR = 0.15


def bcg_log_rr() -> tuple[np.ndarray, np.ndarray]:
    """Log relative risk and its SE with the standard large-sample formula (no zero cells)."""
    a, b, c, d = BCG_COUNTS.T
    yi = np.log(a / (a + b)) - np.log(c / (c + d))
    vi = 1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)
    return yi, np.sqrt(vi)


@pytest.fixture(scope="session")
def nn_fit() -> pmm.BayesResult:
    yi, sei = bcg_log_rr()
    return pmm.fit_normal_normal(
        yi, sei, labels=BCG_LABELS, measure="RR", draws=1000, chains=2, random_seed=1994
    )


# -- structure -------------------------------------------------------------------------------


def test_normal_normal_idata_structure(nn_fit):
    idata = nn_fit.idata
    for group in (
        "posterior",
        "prior",
        "prior_predictive",
        "posterior_predictive",
        "observed_data",
        "sample_stats",
    ):
        assert group in idata.groups(), group
    post = idata.posterior
    assert list(post["trial"].values) == BCG_LABELS
    assert post["theta"].dims == ("chain", "draw", "trial")
    assert post["theta_new"].dims == ("chain", "draw")
    assert set(idata.prior.data_vars) >= {"mu", "tau", "theta", "theta_new", "I2"}
    assert idata.prior["theta"].dims[-1] == "trial"
    assert idata.posterior_predictive["y"].dims == ("chain", "draw", "trial")
    assert nn_fit.engine == "mcmc" and nn_fit.model == "normal_normal"
    assert nn_fit.converged and nn_fit.reason is None
    assert nn_fit.diagnostics["divergences"] == 0
    assert nn_fit.diagnostics["rhat_max"] <= 1.01
    assert "clean" in repr(nn_fit)


def test_shrunken_effects_lie_between_estimate_and_mean(nn_fit):
    # theta_i | mu, tau, y is a precision-weighted average of y_i and mu, so its posterior
    # mean must lie between y_i and the posterior mean of mu (up to Monte Carlo noise).
    yi, _ = bcg_log_rr()
    theta = nn_fit.idata.posterior["theta"].mean(("chain", "draw")).values
    mu = float(nn_fit.idata.posterior["mu"].mean())
    lo, hi = np.minimum(yi, mu) - 0.02, np.maximum(yi, mu) + 0.02
    assert np.all((theta >= lo) & (theta <= hi))


def test_summary_columns_and_rows(nn_fit):
    s = nn_fit.summary(threshold=0.8)
    assert list(s.index) == ["mu", "ratio", "tau", "I2", "theta_new", "ratio_new"]
    assert list(s.columns) == [
        "mean",
        "sd",
        "median",
        "q_low",
        "q_high",
        "mcse_mean",
        "ess_bulk",
        "ess_tail",
        "r_hat",
        "p_ratio_below_1",
        "p_ratio_below_threshold",
    ]
    # central intervals: the ratio interval is exp() of the log interval
    assert s.loc["ratio", "q_low"] == pytest.approx(np.exp(s.loc["mu", "q_low"]), rel=1e-9)
    assert s.loc["mu", "p_ratio_below_threshold"] <= s.loc["mu", "p_ratio_below_1"]
    assert np.isnan(s.loc["tau", "p_ratio_below_1"])
    narrow = nn_fit.summary(ci_prob=0.5)
    assert (
        narrow.loc["mu", "q_high"] - narrow.loc["mu", "q_low"]
        < s.loc["mu", "q_high"] - s.loc["mu", "q_low"]
    )
    assert nn_fit.p_ratio_below(1.0) == pytest.approx(s.loc["mu", "p_ratio_below_1"])


def test_netcdf_round_trip(nn_fit, tmp_path):
    path = nn_fit.to_netcdf(tmp_path / "fit.nc")
    back = pmm.BayesResult.from_netcdf(path)
    assert back.labels == nn_fit.labels
    assert back.converged == nn_fit.converged and back.measure == "RR"
    assert back.diagnostics["divergences"] == nn_fit.diagnostics["divergences"]
    for group in ("posterior", "prior", "posterior_predictive", "observed_data", "sample_stats"):
        assert group in back.idata.groups()
    np.testing.assert_array_equal(
        back.idata.posterior["theta"].values, nn_fit.idata.posterior["theta"].values
    )
    assert list(back.idata.posterior["trial"].values) == BCG_LABELS
    assert back.summary().equals(nn_fit.summary())


def test_from_netcdf_rejects_foreign_file(tmp_path):
    idata = az.from_dict(posterior={"mu": np.zeros((2, 5))})
    path = tmp_path / "other.nc"
    idata.to_netcdf(str(path), engine="netcdf4")
    with pytest.raises(InputError, match="not a bayesmtor MCMC result"):
        pmm.BayesResult.from_netcdf(path)


# -- convergence gate ----------------------------------------------------------------------


def test_gate_flags_a_short_run():
    # 30 draws per chain cannot reach ESS 400: the gate must fail, warn and flag it.
    yi, sei = bcg_log_rr()
    with pytest.warns(ConvergenceWarning, match="convergence gate"):
        res = pmm.fit_normal_normal(
            yi, sei, draws=30, tune=30, chains=2, max_retries=0, random_seed=3
        )
    assert not res.converged
    assert "ESS" in res.reason
    assert "NOT CONVERGED" in repr(res)
    assert len(res.diagnostics["attempts"]) == 1


def test_gate_retries_with_higher_target_accept(monkeypatch):
    calls = []

    def never_clean(idata, var_names=None):
        calls.append(int(idata.posterior.sizes["draw"]))
        return {
            "divergences": 3,
            "rhat_max": 1.0,
            "ess_bulk_min": 100.0,
            "ess_tail_min": 100.0,
            "rhat_threshold": 1.01,
            "ess_min": 400.0,
            "clean": False,
            "reason": "3 divergent transition(s); min bulk ESS 100 < 400",
        }

    monkeypatch.setattr(sampling, "convergence_gate", never_clean)
    yi, sei = bcg_log_rr()
    with pytest.warns(ConvergenceWarning, match="3 run"):
        res = pmm.fit_normal_normal(yi, sei, draws=20, tune=20, chains=2, random_seed=5)
    attempts = res.diagnostics["attempts"]
    assert [a["target_accept"] for a in attempts] == [0.9, 0.95, 0.99]
    assert [a["tune"] for a in attempts] == [20, 40, 80]
    assert calls == [20, 40, 80]  # ESS short -> draws doubled on each retry
    assert not res.converged and "divergent" in res.reason


def test_same_seed_is_bit_identical():
    yi, sei = bcg_log_rr()
    kw = dict(draws=100, tune=100, chains=2, max_retries=0, random_seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = pmm.fit_normal_normal(yi[:5], sei[:5], **kw)
        b = pmm.fit_normal_normal(yi[:5], sei[:5], **kw)
    for group in ("posterior", "prior", "posterior_predictive"):
        for var in a.idata[group].data_vars:
            np.testing.assert_array_equal(a.idata[group][var].values, b.idata[group][var].values)


# -- inputs ----------------------------------------------------------------------------------


def test_bad_inputs_name_study_and_column():
    with pytest.raises(InputError, match=r"study 'b'.*column 'sei'"):
        pmm.fit_normal_normal([0.1, 0.2], [0.1, -1.0], labels=["a", "b"])
    with pytest.raises(InputError, match="each trial must count once"):
        pmm.fit_normal_normal([0.1, 0.2], [0.1, 0.2], labels=["a", "a"])
    with pytest.raises(InputError, match=r"study 't2'.*column 'events_ctl'"):
        pmm.fit_binomial_normal([1, 2], [10, 10], [3, 12], [10, 10], labels=["t1", "t2"])
    with pytest.raises(InputError, match="measure"):
        pmm.fit_binomial_normal([1], [10], [3], [10], measure="HR")
    with pytest.raises(EstimationError, match="sample_kwargs repeats"):
        pmm.fit_normal_normal([0.1], [0.2], sample_kwargs={"draws": 10})


def test_typical_within_variance_equal_variances():
    # With equal variances v the Higgins-Thompson typical variance is v itself.
    assert pmm.typical_within_variance([0.04] * 5) == pytest.approx(0.04)


# -- binomial-normal and multilevel ----------------------------------------------------------


def _zero_cell_fit() -> pmm.BayesResult:
    # Synthetic counts (structure check): a zero cell in trial s2, a double-zero trial s3.
    return pmm.fit_binomial_normal(
        [3, 0, 0, 6],
        [50, 40, 30, 60],
        [8, 4, 0, 11],
        [50, 41, 30, 58],
        measure="OR",
        labels=["s1", "s2", "s3", "s4"],
        draws=500,
        chains=2,
        max_retries=0,
        random_seed=7,
    )


@pytest.mark.slow
@pytest.mark.mcmc
def test_binomial_normal_handles_zero_cells():
    with warnings.catch_warnings():
        # 500 draws may fall short of the ESS gate; only the structure is checked here
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = _zero_cell_fit()
    post = res.idata.posterior
    assert post["theta"].dims == ("chain", "draw", "trial")
    assert np.all(np.isfinite(post["theta"].values))
    assert set(res.idata.observed_data.data_vars) == {"events_trt", "events_ctl"}
    assert "prior" in res.idata.groups() and "posterior_predictive" in res.idata.groups()
    assert res.diagnostics["divergences"] == 0


@pytest.mark.slow
@pytest.mark.mcmc
def test_multilevel_structure_and_class_rows():
    yi, sei = bcg_log_rr()
    res = pmm.fit_multilevel(
        yi,
        sei,
        BCG_ALLOC,
        labels=BCG_LABELS,
        measure="RR",
        draws=1000,
        chains=2,
        target_accept=0.95,  # at 0.9 this seed gives one divergence and a (slower) retry
        random_seed=13,
    )
    post = res.idata.posterior
    assert list(post["drug_class"].values) == ["random", "alternate", "systematic"]
    assert post["mu_class"].dims == ("chain", "draw", "drug_class")
    assert post["theta"].dims == ("chain", "draw", "trial")
    s = res.summary()
    assert {
        "mu_class[random]",
        "mu_class[alternate]",
        "mu_class[systematic]",
        "sigma_class",
    } <= set(s.index)
    assert res.converged and res.diagnostics["divergences"] == 0  # after retries if needed
    with pytest.raises(InputError, match="each trial must count once"):
        pmm.fit_multilevel([0.1, 0.2], [0.1, 0.1], ["x", "y"], labels=["t", "t"])


# -- agreement with the exact engine -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.mcmc
def test_normal_normal_agrees_with_exact_engine(nn_fit):
    yi, sei = bcg_log_rr()
    exact = exact_posterior(yi, sei)  # same default priors as the MCMC fit
    assert nn_fit.diagnostics["divergences"] == 0
    assert nn_fit.converged
    found = mcmc_vs_exact(nn_fit.idata.posterior, exact, BCG_QUANTITIES)
    far = {what: round(c.z, 2) for what, c in found.items() if abs(c.z) >= N_MCSE}
    assert not far, f"|MCMC - exact| / MCSE >= {N_MCSE:.2f}: {far}"


@pytest.mark.slow
@pytest.mark.mcmc
def test_binomial_normal_rr_close_to_normal_normal():
    # Loose sanity check on six of the smaller BCG trials (1, 2, 3, 6, 10, 12; no zero cells): exact-binomial and normal-approximation models should give similar
    # pooled log RRs. Not an agreement test: the two are different models. target_accept=0.99
    # because the RR constraint max(0, theta) puts a kink in the log density, which at 0.9-0.95
    # can cost one divergent transition and a retry by the gate.
    small = [0, 1, 2, 5, 9, 11]
    a, b, c, d = BCG_COUNTS[small].T
    yi, sei = bcg_log_rr()
    binom = pmm.fit_binomial_normal(
        a, a + b, c, c + d, measure="RR", draws=1000, chains=2, target_accept=0.99, random_seed=17
    )
    nn = pmm.fit_normal_normal(yi[small], sei[small], draws=1000, chains=2, random_seed=17)
    assert binom.diagnostics["divergences"] == 0
    assert binom.converged
    mu_b = float(binom.idata.posterior["mu"].median())
    mu_n = float(nn.idata.posterior["mu"].median())
    assert abs(mu_b - mu_n) < BINOMIAL_VS_NN_LOGRR


# -- one model builder, one retry loop ---------------------------------------------------------


def test_retry_loop_seeds_are_seed_plus_attempt(monkeypatch):
    """The one retry schedule: attempt a samples with seed + a until the gate passes."""
    runs = []

    def fake_sampler(**settings):
        runs.append(settings)
        return {"attempt": len(runs) - 1}

    def gate(idata, var_names=None):
        clean = idata["attempt"] == 2
        return {"divergences": 0, "rhat_max": 1.0, "ess_bulk_min": 10.0, "ess_tail_min": 10.0,
                "rhat_threshold": 1.01, "ess_min": 400.0, "clean": clean,
                "reason": None if clean else "min bulk ESS 10 < 400"}  # fmt: skip

    monkeypatch.setattr(sampling, "convergence_gate", gate)
    run = sampling.sample_with_retries(
        fake_sampler, draws=100, tune=50, chains=2, target_accept=0.9, seed=41, max_retries=3
    )
    assert run.converged and run.attempt_seeds == [41, 42, 43]
    assert [r["seed"] for r in runs] == [41, 42, 43]
    assert [r["draws"] for r in runs] == [100, 200, 400]  # short ESS: draws doubled
    assert [r["target_accept"] for r in runs] == [0.9, 0.95, 0.99]
    assert [a["attempt"] for a in run.attempts] == [0, 1, 2]


@pytest.mark.mcmc
def test_check_and_fit_build_the_same_normal_normal_model(monkeypatch):
    """With PyMC's sampler, fit_normal_normal and the plan run's MCMC check both build
    sampling.NormalNormalModel."""
    from bayesmtor.bayes.priors import MuPrior, TauPrior
    from bayesmtor.pipeline import mcmc_worker
    from bayesmtor.plans import load_plan

    built = []
    init = sampling.NormalNormalModel.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        built.append(self)

    monkeypatch.setattr(sampling.NormalNormalModel, "__init__", spy)
    monkeypatch.setitem(config.defaults, "mcmc_sampler", "pymc")
    yi, sei = bcg_log_rr()
    kw = dict(draws=200, tune=200, chains=2, max_retries=0, random_seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = pmm.fit_normal_normal(yi[:5], sei[:5], tau_prior="half-normal:0.5", **kw)
    plan = load_plan("primary")
    job = mcmc_worker.MCMCJob(
        "bcg", "check", "bcg", 0, "RR", tuple(BCG_LABELS[:5]), 7, {"yi": yi[:5], "sei": sei[:5]}
    )
    messages = []
    mcmc_worker._run_jobs(plan, [job], messages.append)
    results = [m for m in messages if m[0] == "result"]
    assert len(built) == 2 and all(type(b) is sampling.NormalNormalModel for b in built)
    fit_model, check_model = (b.model for b in built)
    assert [v.name for v in fit_model.free_RVs] == [v.name for v in check_model.free_RVs]
    assert {v.name for v in fit_model.observed_RVs} == {"y"}
    assert {v.name for v in check_model.observed_RVs} == {"y"}
    assert {v.name for v in fit_model.data_vars} == {"yi", "sei"}
    assert {v.name for v in check_model.data_vars} == {"yi", "sei"}
    assert plan.priors.tau == TauPrior.half_normal(0.5) and plan.priors.mu == MuPrior.normal(0, 4)
    check_idata, diag = results[0][2][0]
    assert set(check_idata.posterior.data_vars) >= {"mu", "tau", "theta", "theta_new"}
    assert diag["seed"] == 7 + diag["attempts"] - 1  # seed + attempt, as for every fit
    assert fit.diagnostics["attempt_seeds"] == [7]


# -- one result shape: the exact posterior offers .summary() and .idata as an MCMC fit -----------


def test_exact_posterior_inference_data_is_labelled_exact(nn_fit):
    yi, sei = bcg_log_rr()
    exact = exact_posterior(yi, sei, labels=BCG_LABELS)
    idata = exact.to_inference_data(draws=100, chains=3, seed=2)
    post = idata.posterior
    assert post.attrs["engine"] == "exact" and "no MCMC" in post.attrs["note"]
    assert post.attrs["tau_prior"] == "half-normal:0.5" and post.attrs["seed"] == 2
    assert post["mu"].shape == (3, 100) and post["theta"].dims == ("chain", "draw", "trial")
    assert list(post["trial"].values) == BCG_LABELS
    # the variables and dims of the MCMC fit's posterior, and the same core summary
    mcmc_post = nn_fit.idata.posterior
    for var in ("mu", "tau", "theta", "theta_new"):
        assert post[var].dims == mcmc_post[var].dims, var
    core = ["mean", "sd", "median", "q_low", "q_high"]
    rows = ["mu", "tau", "I2", "theta_new"]
    assert list(exact.summary().loc[rows, core].columns) == core
    assert list(nn_fit.summary().loc[rows, core].columns) == core
    # exact draws: the same seed gives the same draws; the first block is the first n draws
    again = exact.to_inference_data(draws=100, chains=3, seed=2).posterior
    np.testing.assert_array_equal(again["tau"].values, post["tau"].values)
    first = exact.draws(300, np.random.default_rng(2))
    np.testing.assert_array_equal(post["tau"].values.ravel(), first["tau"].to_numpy())
    assert exact.idata.posterior["mu"].shape[0] == 4  # config exact_chains: several chains
