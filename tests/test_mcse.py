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
# family-wise false-failure rate below 0.1%. ArviZ's quantile MCSE is itself an estimate with
# a small bias for tail quantiles of autocorrelated chains (~5% here, seed sweep), allowed on
# top. An MCSE that ignored the autocorrelation would be off by sqrt((1 + rho) / (1 - rho)),
# a factor 1.3 to 2.4 for these chains, and fail.
BIAS = 0.05
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
