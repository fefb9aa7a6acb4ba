"""Monte Carlo standard errors: the reported MCSE matches the observed seed-to-seed spread.

The draws come from autocorrelated chains with a known distribution (tests/mcse_check.py), so
the test checks the MCSE computation itself, whatever sampler produced the draws. Seed sweep:
benchmarks/seed_sweep_mcse.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from familywise import bonferroni_z
from mcse_check import KEYS, spread_ratios

from bayesmtor.bayes.mcse import draw_summary, mcse_key, schema_values, shortest_window

REPS = 120
# log(SD_obs / RMS(MCSE)): the sample SD over REPS replications has a relative error of
# ~1 / sqrt(2 (REPS - 1)) (normal estimates); Bonferroni over the summaries keeps the
# family-wise false-failure rate below 0.1% for that part. ArviZ's MCSEs are themselves
# estimates and are conservative on these chains: the observed spread is 0-20% below the
# reported MCSE (mean log ratio about -0.07, tail quantiles and the SD most), and the log
# ratios spread more than the normal approximation says. The allowance on top comes from the
# seed sweep (benchmarks/seed_sweep_mcse.py, seeds 0-199): each seed's largest |log ratio| has
# mean 0.162, SD 0.044 and maximum 0.289, and follows a Gumbel distribution (location 0.141,
# scale 0.039; Kolmogorov-Smirnov p = 0.59) whose tail beyond the bound would be 0.4% with
# 0.10 on top (bound 0.354) and is 0.07% with 0.17 (bound 0.424; lognormal and gamma fits
# give less). An MCSE that ignored the autocorrelation would be off by
# sqrt((1 + rho) / (1 - rho)), a factor 1.7 (mu, log 0.53) and 2.4 (tau) here, and fail.
BIAS = 0.17
BOUND = bonferroni_z(len(KEYS)) / math.sqrt(2 * (REPS - 1)) + BIAS


@pytest.mark.slow
def test_reported_mcse_matches_seed_to_seed_spread() -> None:
    ratios = spread_ratios(seed=20141001, reps=REPS)
    off = {k: r for k, r in ratios.items() if abs(math.log(r)) > BOUND}
    assert not off, f"seed-to-seed SD / MCSE outside exp(+-{BOUND:.3f}): {off}"


def test_every_summary_has_its_mcse_and_schema_names() -> None:
    rng = np.random.default_rng(3)
    tau = np.abs(rng.standard_normal((2, 400)))
    draws = {"mu": rng.standard_normal((2, 400)), "tau": tau,
             "theta_new": rng.standard_normal((2, 400)), "I2": tau**2 / (1 + tau**2)}  # fmt: skip
    for interval in ("central", "shortest"):
        s = draw_summary(draws, 0.9, interval)
        values = [k for k in s if not k.endswith("_mcse")]
        assert set(KEYS) | {"I2_median"} <= set(values)
        assert all(mcse_key(k) in s and s[mcse_key(k)] >= 0 for k in values)
        row = schema_values(s)
        assert row["estimate"] == s["mu_median"] and row["tau2"] == s["tau_median"] ** 2
        assert all(mcse_key(k) in row for k in row if not k.endswith("_mcse"))
    mu = draws["mu"].ravel()
    assert draw_summary(draws, 0.9, "central")["mu_low"] == np.quantile(mu, 0.05)


def test_shortest_window_is_the_narrowest_interval_of_the_draws() -> None:
    x = np.random.default_rng(5).exponential(size=2001)
    p_lo, p_hi = shortest_window(x, 0.9)
    lo, hi = np.quantile(x, [p_lo, p_hi])
    s = np.sort(x)
    n_in = math.ceil(0.9 * x.size)
    assert hi - lo == pytest.approx(np.min(s[n_in - 1 :] - s[: x.size - n_in + 1]), rel=1e-12)
    assert lo == s[0]  # an exponential's narrowest interval starts at its smallest draw
    assert np.mean((x >= lo) & (x <= hi)) >= 0.9


def test_plan_mcmc_rows_carry_mcse() -> None:
    """A plan's MCMC result (here a stand-in holding exact posterior draws in four chains)
    gives its pooled numbers from the draws, each with its MCSE."""
    import types

    from bayesmtor.bayes.exact import exact_posterior
    from bayesmtor.pipeline.expand import expand_plan
    from bayesmtor.pipeline.results import AnalysisResult
    from bayesmtor.pipeline.stages import apply_fit
    from bayesmtor.plans import parse_plan

    plan = parse_plan(
        '[plan]\nname = "t"\ndescription = "t"\nunit = "trial"\n\n[[analysis]]\n'
        'outcome = "pfs"\ncomparison = "everolimus_endocrine"\nmeasure = "HR"\n',
        source="t.toml",
    )
    task = expand_plan(plan)[0]
    idata = exact_posterior([-0.84, -0.62], [0.11, 0.21]).to_inference_data(draws=500, chains=4)
    res = types.SimpleNamespace(
        idata=idata, diagnostics={}, converged=True, reason=None, model="normal_normal"
    )
    out = apply_fit(AnalysisResult(task=task, index=0, engine="mcmc"), res, plan)
    row = out.bayes_row
    mu = idata.posterior["mu"].values.ravel()
    assert row["mu_median"] == np.median(mu)
    numbers = [k for k in row if not k.endswith("_mcse") and k != "quad_error"]
    assert {"mu_median", "tau_high", "pred_low", "p_mu_below_0"} <= set(numbers)
    assert all(row[mcse_key(k)] > 0 for k in numbers)
