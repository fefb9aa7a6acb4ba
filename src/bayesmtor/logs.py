"""Logging: the package logger ``bayesmtor``, and the samplers' chatter kept out of sight.

bayesmtor logs through the standard :mod:`logging` module under the logger ``bayesmtor``,
which has only a :class:`logging.NullHandler`: a program that configures logging sees the
records, anyone else sees nothing (the command line shows them with ``-v``).

PyMC, PyTensor and ArviZ write to standard error on their own: PyMC's logger has a handler of
its own ("Initializing NUTS using jitter+adapt_diag...", "Sampling 4 chains for ..."), and
PyTensor and ArviZ issue warnings (PyTensor's "could not link to a BLAS installation").
While :func:`third_party_quiet` is active, which every MCMC fit of the package is,

* the log records of the loggers in :data:`THIRD_PARTY` go to ``bayesmtor.<their name>``
  (e.g. ``bayesmtor.pymc.sampling.mcmc``) instead of their own handlers, and
* warnings issued from inside those packages are logged there at WARNING level instead of
  being printed; the package's own warnings (e.g. :class:`~bayesmtor.errors.ConvergenceWarning`)
  are issued as usual.

So by default nothing of it reaches standard output or standard error, and
``logging.getLogger("bayesmtor").setLevel(logging.INFO)`` with a handler (``bayesmtor -v``) lets
it through. Convergence is judged by the package's own gate, not by PyMC's messages.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator
from pathlib import PurePath

__all__ = ["LOGGER_NAME", "THIRD_PARTY", "configure_cli_logging", "logger", "third_party_quiet"]

#: The package logger's name.
LOGGER_NAME = "bayesmtor"

#: Packages whose log records and warnings :func:`third_party_quiet` routes to the package
#: logger.
THIRD_PARTY: tuple[str, ...] = ("pymc", "pytensor", "arviz", "nutpie", "numba")

logger = logging.getLogger(LOGGER_NAME)
logger.addHandler(logging.NullHandler())


class _Forward(logging.Handler):
    """Hand a third-party record to ``bayesmtor.<name>`` if that logger is enabled for it."""

    def emit(self, record: logging.LogRecord) -> None:
        target = logging.getLogger(f"{LOGGER_NAME}.{record.name}")
        if target.isEnabledFor(record.levelno):
            target.handle(record)


def _third_party_file(filename: str) -> str | None:
    """The package of :data:`THIRD_PARTY` a source file belongs to, if any."""
    parts = PurePath(filename).parts
    for name in THIRD_PARTY:
        if name in parts:
            return name
    return None


@contextlib.contextmanager
def third_party_quiet() -> Iterator[None]:
    """Route the log records and warnings of PyMC, PyTensor and ArviZ to the package logger
    while the block runs (see the module notes); everything is restored afterwards."""
    forward = _Forward()
    saved = []
    for name in THIRD_PARTY:
        lib = logging.getLogger(name)
        saved.append((lib, lib.handlers[:], lib.propagate, lib.level))
        lib.handlers = [forward]
        lib.propagate = False
        if lib.level == logging.NOTSET or lib.level > logging.INFO:
            lib.setLevel(logging.INFO)  # so that -v sees PyMC's progress lines
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        for lib, handlers, propagate, level in saved:
            lib.handlers = handlers
            lib.propagate = propagate
            lib.setLevel(level)
    for w in caught:
        owner = _third_party_file(w.filename)
        if owner is None:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
        else:
            logging.getLogger(f"{LOGGER_NAME}.{owner}").warning(
                "%s: %s", w.category.__name__, " ".join(str(w.message).split())
            )


def configure_cli_logging(verbosity: int) -> None:
    """Show the package's log records on standard error: ``-v`` INFO, ``-vv`` DEBUG.

    Without ``-v`` nothing is added (third-party chatter stays silent). Calling it again
    replaces the handler it added before.
    """
    for handler in list(logger.handlers):
        if getattr(handler, "_bayesmtor_cli", False):
            logger.removeHandler(handler)
    if verbosity <= 0:
        logger.setLevel(logging.NOTSET)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._bayesmtor_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("bayesmtor: %(levelname)s: %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbosity == 1 else logging.DEBUG)
