"""The PyMC meta-regression against the exact one, within Monte Carlo error.

One small fit: Crins et al. 2014 (CrinsEtAl2014 of bayesmeta), log OR ~ IL2RA, tau ~
half-normal(0.5), beta ~ N(0, 2^2) on both coefficients, 2 chains x 2000 draws.
``benchmarks/seed_sweep_regression.py`` reruns :func:`comparisons` over many seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from familywise import FAMILY_ALPHA, mcse_z_bound

from bayesmtor.bayes.regression import exact_regression
from bayesmtor.design import model_matrix

SEED = 20141001
QUANTILES = (0.025, 0.5, 0.975)
TAU_PRIOR = "half-normal:0.5"
BETA_PRIOR = "normal:0,2"
SAMPLING = {"draws": 2000, "chains": 2, "tune": 1000}
#: Per coefficient: the mean and three quantiles; tau: three quantiles (2 x 4 + 3 = 11).
M_FAMILY = 11
#: Relative SD of the estimated MCSE on the side that inflates z: 0.053 in the seed sweep
#: (benchmarks/seed_sweep_regression.py, 20 seeds), rounded up with a wide margin.
MCSE_REL_SD = 0.15
#: Largest |z| allowed over the family (see familywise.mcse_z_bound): 4.83. In the sweep the
#: 220 z-scores have SD 1.02, the worst family max |z| is 2.84 and no seed fails.
Z_MAX = mcse_z_bound(M_FAMILY, MCSE_REL_SD)


def _ess(x: np.ndarray) -> float:
    import arviz as az

    return float(np.ravel(az.ess(np.asarray(x, dtype=float), method="mean"))[0])


def fit_pair(reference_dir, seed=SEED):
    from bayesmtor.bayes.pymc_regression import mcmc_regression

    crins = pd.read_csv(reference_dir / "regression_datasets" / "crins.csv")
    design = model_matrix(crins, ["IL2RA"])
    args = (crins["yi"], crins["sei"], design)
    priors = {"tau_prior": TAU_PRIOR, "beta_prior": BETA_PRIOR}
    fit = mcmc_regression(*args, random_seed=seed, **priors, **SAMPLING)
    return fit, exact_regression(*args, **priors)


def comparisons(fit, ex) -> dict[str, tuple[float, float, float]]:
    """``name -> (mcmc, exact, z)`` with ``z = (MCMC - exact) / MCSE``: means with the exact
    SD over sqrt(ESS); quantiles on the probability scale (as familywise.mcmc_vs_exact)."""
    post = fit.idata.posterior
    coefs = ex.coefficients
    out = {}
    draws_of = {term: post["beta"].isel(term=j).values for j, term in enumerate(ex.terms)}
    draws_of["tau"] = post["tau"].values
    for j, term in enumerate(ex.terms):
        d = draws_of[term]
        mean, sd = coefs.loc[j, "mean"], coefs.loc[j, "sd"]
        out[f"{term} mean"] = (float(d.mean()), mean, (d.mean() - mean) * math.sqrt(_ess(d)) / sd)
    from bayesmtor.bayes.quadrature import _mix_quantile

    wts, means, sds = ex._coef_mix()
    for name, d in draws_of.items():
        for q in QUANTILES:
            if name == "tau":
                ref = float(ex.tau_quantile(q)[0])
            else:
                j = ex.terms.index(name)
                ref = float(_mix_quantile(np.array([[q]]), wts[j : j + 1], means[j : j + 1],
                                          sds[j : j + 1])[0, 0])  # fmt: skip
            below = d <= ref
            z = (q - below.mean()) / math.sqrt(q * (1 - q) / _ess(below))
            out[f"{name} q{q}"] = (float(np.quantile(d, q)), ref, float(z))
    assert len(out) == M_FAMILY
    return out


@pytest.mark.slow
def test_mcmc_regression_within_mcse_of_exact(reference_dir):
    """Every quantity within ``Z_MAX`` MCSEs of the exact posterior (family-wise false-failure
    rate ``FAMILY_ALPHA = 0.001`` over the 11 comparisons, Bonferroni, inflated for the noise
    of the estimated MCSE)."""
    fit, ex = fit_pair(reference_dir)
    assert fit.gate["clean"], fit.gate
    found = comparisons(fit, ex)
    worst = max(found, key=lambda w: abs(found[w][2]))
    m, e, z = found[worst]
    assert abs(z) < Z_MAX, (
        f"{worst}: mcmc {m:.5g} exact {e:.5g}, |z| {abs(z):.2f} >= {Z_MAX:.2f} "
        f"(family-wise level {FAMILY_ALPHA})"
    )
    out = fit.to_dict()
    assert out["engine"] == "mcmc" and [c["term"] for c in out["coefficients"]] == list(ex.terms)
