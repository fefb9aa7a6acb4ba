"""The computation shared by tests/test_mcse.py and benchmarks/seed_sweep_mcse.py.

Autocorrelated chains with a known stationary distribution stand in for a sampler: ``mu`` and
``theta_new`` are Gaussian AR(1) chains, ``tau`` the absolute value of one (a half-normal with
its mass at 0, like a tau posterior). Over ``reps`` independent replications, the spread of each
summary of :func:`bayesmtor.bayes.mcse.draw_summary` (its seed-to-seed SD) is compared with the
root mean square of the MCSEs it reports.
"""

from __future__ import annotations

import numpy as np

from bayesmtor.bayes.mcse import draw_summary, mcse_key

CHAINS, DRAWS = 4, 1000
# lag-1 autocorrelations of the chains (NUTS on tau in a funnel mixes more slowly than on mu)
RHO = {"mu": 0.5, "tau": 0.7, "theta_new": 0.3}
KEYS = (
    "mu_mean", "mu_sd", "mu_median", "mu_low", "mu_high", "tau_median", "tau_low", "tau_high",
    "pred_low", "pred_high", "p_mu_below_0",
)  # fmt: skip


def ar1(rng: np.random.Generator, rho: float) -> np.ndarray:
    """(CHAINS, DRAWS) stationary Gaussian AR(1) chains with unit variance."""
    e = rng.standard_normal((CHAINS, DRAWS))
    x = np.empty_like(e)
    x[:, 0] = e[:, 0]
    c = np.sqrt(1.0 - rho * rho)
    for t in range(1, DRAWS):
        x[:, t] = rho * x[:, t - 1] + c * e[:, t]
    return x


def spread_ratios(seed: int, reps: int, interval: str = "central") -> dict[str, float]:
    """seed-to-seed SD / RMS reported MCSE, per summary."""
    rng = np.random.default_rng(seed)
    values = {k: [] for k in KEYS}
    errors = {k: [] for k in KEYS}
    for _ in range(reps):
        draws = {
            "mu": 0.3 + ar1(rng, RHO["mu"]),
            "tau": np.abs(ar1(rng, RHO["tau"])),
            "theta_new": 0.3 + 2.0 * ar1(rng, RHO["theta_new"]),
        }
        s = draw_summary(draws, 0.95, interval)
        for k in KEYS:
            values[k].append(s[k])
            errors[k].append(s[mcse_key(k)])
    return {
        k: float(np.std(values[k], ddof=1) / np.sqrt(np.mean(np.square(errors[k])))) for k in KEYS
    }
