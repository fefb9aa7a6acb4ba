"""The Bayesian side: prior objects, the exact quadrature engine and the PyMC models.

* :mod:`bayesmtor.bayes.priors` -- :class:`TauPrior` and :class:`MuPrior`, the one prior grammar
  (``from_string`` / ``to_string``); NumPy/SciPy only.
* :mod:`bayesmtor.bayes.exact` -- the exact posterior of the normal--normal model by quadrature.
* :mod:`bayesmtor.bayes.pymc_models` -- the PyMC models, their convergence gate and retries.

Names are loaded on first use, so importing this package (or the priors and the exact engine)
never imports PyMC; only :mod:`bayesmtor.bayes.pymc_models` does.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> module that defines it.
_API: dict[str, str] = {
    "MuPrior": "bayesmtor.bayes.priors",
    "TauPrior": "bayesmtor.bayes.priors",
    "TURNER_COMPARISON_TYPES": "bayesmtor.bayes.priors",
    "TURNER_OUTCOME_TYPES": "bayesmtor.bayes.priors",
    "TURNER_TABLE": "bayesmtor.bayes.priors",
    "default_mu_prior": "bayesmtor.bayes.priors",
    "default_tau_prior": "bayesmtor.bayes.priors",
    "BatchPosterior": "bayesmtor.bayes.exact",
    "ExactPosterior": "bayesmtor.bayes.exact",
    "conditional_normal": "bayesmtor.bayes.exact",
    "exact_batch": "bayesmtor.bayes.exact",
    "exact_batch_groups": "bayesmtor.bayes.exact",
    "exact_batch_posterior": "bayesmtor.bayes.exact",
    "exact_posterior": "bayesmtor.bayes.exact",
    "BayesResult": "bayesmtor.bayes.results",
    "fit_binomial_normal": "bayesmtor.bayes.pymc_models",
    "fit_multilevel": "bayesmtor.bayes.pymc_models",
    "fit_normal_normal": "bayesmtor.bayes.pymc_models",
    "typical_within_variance": "bayesmtor.bayes.pymc_models",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    try:
        module = _API[name]
    except KeyError:
        raise AttributeError(f"module 'bayesmtor.bayes' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
