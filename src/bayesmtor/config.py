"""One registry of defaults, with the reason for each.

Functions take ``None`` for these options and look the value up here, so a user can change a
default once (``bayesmtor.config.defaults["ci_prob"] = 0.9``) and every table follows.
"""

from __future__ import annotations

from typing import Any

#: Default options. Keys are the keyword names used throughout the package.
defaults: dict[str, Any] = {
    # Interval probability for confidence, credible and prediction intervals alike: the 2014
    # paper, RevMan 5 and metafor all report 95% intervals, so both sides match by default.
    "ci_prob": 0.95,
    # Central (equal-tailed) credible intervals, not HDI: they are invariant to the log/ratio
    # back-transformation, so the ratio-scale interval is exp() of the log-scale one.
    "ci_kind": "eti",
    # Default prior on tau (between-trial SD of log ratios): half-normal with scale 0.5. It puts
    # 95% of its mass below tau = 0.98, i.e. trial-specific ratios within a factor of ~2.7 of
    # the pooled ratio, which covers the heterogeneity seen in oncology and is weakly
    # informative when trials are few (Friede et al. 2017; Röver et al. 2021, Res Synth Methods).
    "tau_prior": ("half-normal", {"scale": 0.5}),
    # Default prior on mu (pooled log ratio): normal(0, 4), i.e. practically flat on plausible
    # ratios (95% of its mass within ratios 1/2500 to 2500) but proper, so k = 1 still works.
    "mu_prior": ("normal", {"mean": 0.0, "sd": 4.0}),
    # Zero-cell rule of RevMan 5 and metafor's escalc(add=1/2, to="only0", drop00=TRUE).
    "cc_add": 0.5,
    "cc_to": "only0",
    "drop00": True,
    # Quadrature tolerance of the exact engine (bound on the absolute error of posterior CDFs).
    "exact_tol": 1e-6,
    # Working-memory bound of the exact engine: cells (analyses x quadrature nodes x studies)
    # evaluated per NumPy call. Each call holds about five float64 temporaries of this size
    # (~80 MB at 2e6), whatever the number of studies or analyses. 2e6 is as fast as any value
    # (10,000 analyses of 1-10 studies: 1.8 s at 2e6 and 4e6, 1.9 s at 1e6, 2.0 s at 8e6,
    # 2.3 s at 5e5; smaller tiles add call overhead, larger ones leave the CPU caches).
    # Results do not depend on it.
    "exact_chunk_cells": 2_000_000,
    # MCMC: 4 chains x 2000 draws gives bulk ESS well above 400 for these 2-parameter models.
    "chains": 4,
    "draws": 2000,
    "tune": 1000,
    "target_accept": 0.9,
    # Convergence gate (Vehtari et al. 2021): what counts as a clean MCMC fit.
    "rhat_max": 1.01,
    "ess_min": 400,
    "random_seed": 20141001,
    # Safe range of log-scale effects yi and standard errors sei (bayesmtor.validation): values
    # beyond it are refused with an InputError on every side (frequentist, exact, MCMC). Inside
    # it every intermediate of the estimators stays finite in float64: inverse-variance weights
    # 1/v up to 1e100, standardised residuals up to 2e100 and their squares up to 4e200, and sums
    # of these over 1e7 studies. Real data are far inside: log ratios lie within +-40 (a ratio of
    # 1e17) and standard errors of log ratios above 1e-8 (a trial of 1e16 patients).
    "yi_abs_max": 1e50,
    "sei_min": 1e-50,
    "sei_max": 1e50,
}


def get(key: str, value: Any = None) -> Any:
    """Return ``value`` if it is not ``None``, else the registered default for ``key``."""
    if value is not None:
        return value
    try:
        return defaults[key]
    except KeyError:  # pragma: no cover - programming error
        raise KeyError(f"no default registered for '{key}'") from None
