"""Thresholds and comparisons for statistical tests that run with a fixed seed.

Such a test must pass a correct implementation on (almost) any seed and machine: the chance
that *any* of its comparisons fails - counting every comparison of every parametrised case as
one family - stays below ``FAMILY_ALPHA``. Each comparison is therefore made at level
``FAMILY_ALPHA / m`` (Bonferroni; valid whatever the correlation between comparisons).
``benchmarks/seed_sweep_*.py`` rerun the tests' computations over many seeds to show it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import arviz as az
import numpy as np
from scipy import stats

#: Family-wise false-failure rate allowed for one statistical test (all its cases together).
FAMILY_ALPHA = 0.001


def bonferroni_alpha(m: int) -> float:
    """Level of each of ``m`` comparisons so that the family's false-failure rate is at most
    ``FAMILY_ALPHA``."""
    return FAMILY_ALPHA / m


def bonferroni_z(m: int) -> float:
    """Two-sided normal bound for each of ``m`` comparisons: ``Phi^-1(1 - FAMILY_ALPHA/(2m))``."""
    return float(stats.norm.isf(bonferroni_alpha(m) / 2))


def mcse_z_bound(m: int, mcse_rel_sd: float) -> float:
    """Bound on ``|estimate - exact| / MCSE`` when the MCSE is itself estimated.

    An MCSE estimated from the same draws is off by a relative error ``eps``; with the Monte
    Carlo error ``e ~ N(0, s^2)`` and ``eps ~ N(0, r^2)`` independent, ``P(|e| > T s (1 + eps))
    = 2 Phi(-T / sqrt(1 + T^2 r^2))``. Setting that to ``FAMILY_ALPHA / m`` gives
    ``T = z / sqrt(1 - z^2 r^2)`` with ``z = bonferroni_z(m)``: the plain Bonferroni bound
    inflated for the noise of the MCSE (``r`` is measured by the seed sweep).
    """
    z = bonferroni_z(m)
    if z * mcse_rel_sd >= 1.0:
        raise ValueError(f"MCSE relative SD {mcse_rel_sd} too large for a bound at m = {m}")
    return z / math.sqrt(1.0 - (z * mcse_rel_sd) ** 2)


@dataclass(frozen=True)
class Comparison:
    """One MCMC estimate against the exact engine.

    ``z`` is ``(MCMC - exact) / MCSE``. For a mean the MCSE is ``sd / sqrt(ESS)`` with the
    exact posterior SD. A quantile is compared on the probability scale: the share ``p`` of
    draws below the exact ``q``-quantile has, for a correct sampler, mean ``q`` and MCSE
    ``sqrt(q (1 - q) / ESS)`` (ESS of the indicator), and ``z = (q - p) / MCSE`` has the sign of
    ``MCMC quantile - exact quantile``. Only the ESS is estimated, never a variance or a
    density, so the MCSE is much less noisy than an order-statistic MCSE of a tail quantile.
    """

    mcmc: float
    exact: float
    z: float
    ess: float


def _ess(draws: np.ndarray) -> float:
    return float(az.ess(np.asarray(draws, dtype=float), method="mean"))


def mcmc_vs_exact(posterior: Any, ex: Any, quantities: Sequence[str]) -> dict[str, Comparison]:
    """Compare ``posterior`` (an ArviZ posterior group with ``mu``, ``tau``, ``theta_new``) with
    the exact posterior ``ex`` on ``quantities`` such as ``"mu mean"`` or ``"tau q0.975"``."""
    exact_mean = {"mu": (ex.mu_mean(), ex.mu_sd()), "theta_new": (ex.mu_mean(), ex.theta_new_sd())}
    exact_q = {"mu": ex.mu_quantile, "tau": ex.tau_quantile, "theta_new": ex.theta_new_quantile}
    out = {}
    for what in quantities:
        var, stat = what.split()
        draws = posterior[var].values  # (chain, draw)
        if stat == "mean":
            mean, sd = exact_mean[var]
            ess = _ess(draws)
            z = (draws.mean() - mean) * math.sqrt(ess) / sd
            out[what] = Comparison(float(draws.mean()), float(mean), float(z), ess)
        else:
            q = float(stat[1:])
            ref = float(exact_q[var](q))
            below = draws <= ref
            ess = _ess(below)
            z = (q - below.mean()) / math.sqrt(q * (1 - q) / ess)
            out[what] = Comparison(float(np.quantile(draws, q)), ref, float(z), ess)
    return out
