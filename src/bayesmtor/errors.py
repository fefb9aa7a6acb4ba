"""Exception and warning classes raised by bayesmtor.

Every error a user can cause derives from :class:`BayesMTORError`, so that the command line
can turn it into one clear message and exit status 2 instead of a traceback.
"""

from __future__ import annotations


class BayesMTORError(Exception):
    """Base class of every error bayesmtor raises on purpose."""


class InputError(BayesMTORError, ValueError):
    """Bad data: names the source, the row (study) and the column, what is wrong and what is right."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        row: int | None = None,
        study: str | None = None,
        column: str | None = None,
    ) -> None:
        self.source = source
        self.row = row
        self.study = study
        self.column = column
        where = []
        if source:
            where.append(str(source))
        if row is not None:
            where.append(f"row {row}")
        if study is not None:
            where.append(f"study '{study}'")
        if column is not None:
            where.append(f"column '{column}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class PlanError(BayesMTORError, ValueError):
    """An analysis plan (``models/*.toml``) is malformed; names the file and the key."""


class PriorError(BayesMTORError, ValueError):
    """A prior specification is invalid (bad parameter, unknown family)."""


class EstimationError(BayesMTORError, RuntimeError):
    """A model cannot be estimated from the data given (e.g. k = 0 after exclusions)."""


class OutputError(BayesMTORError, OSError):
    """An output folder cannot be written (exists without --force, not writable)."""


class ConvergenceWarning(UserWarning):
    """MCMC did not pass the convergence gate (divergences, R-hat, ESS) even after retrying."""


class NotEstimableWarning(UserWarning):
    """A quantity is undefined for these data (e.g. tau^2 with k = 1) and is reported as missing."""
