"""Bayesian meta-regression by MCMC (PyMC/NUTS), the same model as the exact engine.

``y_i ~ N(x_i' beta, s_i^2 + tau^2)`` (study effects integrated out), ``tau ~`` a
:class:`~bayesmtor.bayes.priors.TauPrior`, ``beta`` flat or with independent normal priors
(:func:`bayesmtor.bayes.regression.beta_priors`). Sampled through the package's one retry loop
and convergence gate (:mod:`bayesmtor.bayes.sampling`); checked against
:func:`bayesmtor.bayes.regression.exact_regression` within Monte Carlo error by the tests.
The exact engine is the reference for this model; this one is the base for extensions the
exact engine cannot integrate (e.g. several variance components).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm

from bayesmtor import config
from bayesmtor.bayes.priors import TauPrior
from bayesmtor.bayes.regression import beta_priors
from bayesmtor.bayes.sampling import pymc_sample, sample_with_retries
from bayesmtor.design import Design
from bayesmtor.vocabulary import check_prob


@dataclass(frozen=True, eq=False)
class McmcRegressionResult:
    """A PyMC meta-regression: ``idata`` (posterior ``beta`` with dims ``term``, ``tau``), the
    convergence ``gate``, and summaries with Monte Carlo standard errors."""

    measure: str
    design: Design
    tau_prior: TauPrior
    beta_prior: tuple[Any, ...]
    ci_prob: float
    idata: Any = field(repr=False)
    gate: dict[str, Any] = field(default_factory=dict)

    @property
    def terms(self) -> tuple[str, ...]:
        return self.design.terms

    def _q(self) -> list[float]:
        a = 1.0 - self.ci_prob
        return [a / 2.0, 0.5, 1.0 - a / 2.0]

    @property
    def coefficients(self) -> pd.DataFrame:
        """``term, mean, sd, median, low, high, mcse_mean, ess_bulk`` per coefficient."""
        beta = self.idata.posterior["beta"]
        rows = []
        for j, term in enumerate(self.terms):
            d = beta.isel(term=j).values
            q = np.quantile(d, self._q())
            rows.append(
                {
                    "term": term, "mean": float(d.mean()), "sd": float(d.std(ddof=1)),
                    "median": float(q[1]), "low": float(q[0]), "high": float(q[2]),
                    "mcse_mean": float(np.ravel(az.mcse(d, method="mean"))[0]),
                    "ess_bulk": float(np.ravel(az.ess(d, method="bulk"))[0]),
                }
            )  # fmt: skip
        return pd.DataFrame(rows)

    def tau_quantile(self, q: Any) -> np.ndarray:
        return np.quantile(self.idata.posterior["tau"].values, q)

    def to_dict(self) -> dict[str, Any]:
        from bayesmtor.frequentist.regression import low_power_warning

        tq = self.tau_quantile(self._q())
        return {
            "model": "meta-regression", "engine": "mcmc", "measure": self.measure,
            "ci_prob": self.ci_prob, "k": self.design.k, "p": self.design.p,
            "mods": list(self.design.mods), "intercept": self.design.intercept,
            "tau_prior": self.tau_prior.label, "beta_prior": [b.label for b in self.beta_prior],
            "coefficients": self.coefficients.to_dict("records"),
            "tau_median": float(tq[1]), "tau_low": float(tq[0]), "tau_high": float(tq[2]),
            "divergences": self.gate.get("divergences"), "rhat_max": self.gate.get("rhat_max"),
            "ess_bulk_min": self.gate.get("ess_bulk_min"),
            "warning": low_power_warning(self.design.k, self.design.p),
        }  # fmt: skip


def mcmc_regression(
    yi: Any, sei: Any, design: Design, *, tau_prior: Any = None, beta_prior: Any = None,
    ci_prob: float | None = None, measure: str = "generic", random_seed: int | None = None,
    draws: int | None = None, tune: int | None = None, chains: int | None = None,
    target_accept: float | None = None,
) -> McmcRegressionResult:  # fmt: skip
    """Sample the meta-regression of ``yi`` (SEs ``sei``) on ``design`` with NUTS.

    Sampler settings default to the registry (``draws``, ``tune``, ``chains``,
    ``target_accept``, ``random_seed``, ``mcmc_max_retries``).
    """
    tp = TauPrior.coerce(tau_prior)
    priors = beta_priors(beta_prior, design.p, design.terms)
    ci = check_prob(config.get("ci_prob", ci_prob), "ci_prob")
    y = np.asarray(yi, dtype=float)
    s = np.asarray(sei, dtype=float)
    with pm.Model(coords={"term": list(design.terms)}) as model:
        tau = tp.to_pymc("tau")
        if priors[0].is_flat:
            beta = pm.Flat("beta", dims="term")
        else:
            beta = pm.Normal(
                "beta",
                mu=np.array([b.mean for b in priors]),
                sigma=np.array([b.sd for b in priors]),
                dims="term",
            )
        mean = pm.math.dot(design.matrix, beta)
        pm.Normal("y", mu=mean, sigma=pm.math.sqrt(s**2 + tau**2), observed=y)

    def sampler(**kw: Any) -> Any:
        return pymc_sample(model, cores=1, **kw)

    seed = int(config.get("random_seed", random_seed))
    run = sample_with_retries(
        sampler,
        draws=int(config.get("draws", draws)),
        tune=int(config.get("tune", tune)),
        chains=int(config.get("chains", chains)),
        target_accept=float(config.get("target_accept", target_accept)),
        seed=seed,
        max_retries=int(config.get("mcmc_max_retries")),
        var_names=["beta", "tau"],
    )
    if not run.converged:
        import warnings

        from bayesmtor.errors import ConvergenceWarning

        warnings.warn(
            f"meta-regression MCMC did not pass the convergence gate: {run.gate['reason']}",
            ConvergenceWarning,
            stacklevel=2,
        )
    return McmcRegressionResult(
        measure=measure, design=design, tau_prior=tp, beta_prior=priors, ci_prob=ci,
        idata=run.idata, gate=dict(run.gate),
    )  # fmt: skip


__all__ = ["McmcRegressionResult", "mcmc_regression"]
