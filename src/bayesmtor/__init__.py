"""bayesmtor: Bayesian meta-analysis of randomized trials of mTOR inhibitors in breast cancer.

The verbs of R metafor and bayesmeta, from ``import bayesmtor as bm``::

    es = bm.escalc(bm.read_meta_data("trials.csv"), "RR")
    freq = bm.rma(es, method="REML")
    bayes = bm.bayesmeta(es)               # exact quadrature; engine="mcmc" for PyMC
    bm.compare(bayes, freq)                # the two side by side, in one schema

Names are loaded on first use, so ``import bayesmtor`` is quick and the frequentist path never
imports PyMC.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("bayesmtor")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0.0.0+unknown"

#: Public name -> (module, attribute); ``None`` as attribute means the module itself.
_API: dict[str, tuple[str, str | None]] = {
    "read_meta_data": ("bayesmtor.inputs", "read_meta_data"),
    "escalc": ("bayesmtor.effects", "escalc"),
    "rma": ("bayesmtor.frequentist", "rma"),
    "rma_mh": ("bayesmtor.frequentist", "rma_mh"),
    "rma_peto": ("bayesmtor.frequentist", "rma_peto"),
    "bayesmeta": ("bayesmtor.api", "bayesmeta"),
    "compare": ("bayesmtor.schema", "compare"),
    "TauPrior": ("bayesmtor.bayes.priors", "TauPrior"),
    "MuPrior": ("bayesmtor.bayes.priors", "MuPrior"),
    "load_plan": ("bayesmtor.plans", "load_plan"),
    "run_plan": ("bayesmtor.pipeline.run", "run_plan"),
    "write_run": ("bayesmtor.reporting.write", "write_run"),
    "datasets": ("bayesmtor.datasets", None),
}

__all__ = [*_API, "__version__"]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _API[name]
    except KeyError:
        raise AttributeError(f"module 'bayesmtor' has no attribute {name!r}") from None
    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
