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
from typing import Any

#: Module -> the public names it provides (each under its own name there).
_FROM: dict[str, tuple[str, ...]] = {
    "bayesmtor.inputs": ("read_meta_data",),
    "bayesmtor.effects": ("escalc",),
    "bayesmtor.design": ("model_matrix",),
    "bayesmtor.frequentist": (
        "rma",
        "rma_mh",
        "rma_peto",
        "confint",
        "leave1out",
        "cumul",
        "regtest",
        "ranktest",
    ),
    "bayesmtor.api": ("bayesmeta",),
    "bayesmtor.schema": ("compare",),
    "bayesmtor.bayes.priors": ("TauPrior", "MuPrior"),
    "bayesmtor.plans": ("load_plan",),
    "bayesmtor.pipeline.run": ("run_plan",),
    "bayesmtor.reporting.write": ("write_run",),
    "bayesmtor.revman": ("read_revman", "read_revman_review", "revman_reanalysis"),
}

#: Public name -> (module, attribute); ``None`` as attribute means the module itself.
_API: dict[str, tuple[str, str | None]] = {
    **{name: (module, name) for module, names in _FROM.items() for name in names},
    "datasets": ("bayesmtor.datasets", None),
}

__all__ = [*_API, "__version__"]


def _version() -> str:
    """The installed version; read on first use (importlib.metadata costs ~30 ms to import)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bayesmtor")
    except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        return "0.0.0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        globals()[name] = value = _version()
        return value
    try:
        module, attr = _API[name]
    except KeyError:
        raise AttributeError(f"module 'bayesmtor' has no attribute {name!r}") from None
    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API, "__version__"})
