"""ArviZ, imported without the one numba compilation that its import forces.

ArviZ (0.17-0.22) imports its plotting modules, and one of them (``arviz.stats.ecdf_utils``)
decorates a helper of the ECDF confidence bands, ``_binom_pmf``, with ``numba.vectorize`` and
an explicit signature, which numba compiles when the module is imported: about 0.9 s in every
process that imports ArviZ, and nothing caches it. :func:`load` imports ArviZ with such
signature-bound ``vectorize`` calls given numba's lazy form instead (the same function,
compiled on its first call for the types of that call), so the helper costs nothing unless an
ECDF band is computed. Nothing else changes: every other use of numba by ArviZ passes a
function, not a signature, and is handed to numba as it is.
"""

from __future__ import annotations

import sys
import threading
from types import ModuleType

__all__ = ["load"]

_LOCK = threading.Lock()


def load() -> ModuleType:
    """The ``arviz`` module, imported on the first call (see the module's docstring)."""
    module = sys.modules.get("arviz")
    if module is not None:
        return module
    with _LOCK:
        try:
            import numba
        except ImportError:  # pragma: no cover - numba comes with PyTensor
            import arviz

            return arviz
        eager = numba.vectorize

        def lazy(*args, **kwargs):  # type: ignore[no-untyped-def]
            if args and isinstance(args[0], list | tuple | str):  # signatures: compile later
                return eager(**kwargs)
            return eager(*args, **kwargs)

        numba.vectorize = lazy
        try:
            import arviz
        finally:
            numba.vectorize = eager
    return arviz
