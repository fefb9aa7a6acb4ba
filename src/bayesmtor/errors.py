"""Exception and warning classes raised by bayesmtor.

Every error a user can cause derives from :class:`BayesMTORError`, so that the command line
can turn it into one clear message and exit status 2 instead of a traceback.
"""

from __future__ import annotations


class BayesMTORError(Exception):
    """Base class of every error bayesmtor raises on purpose."""


class InputError(BayesMTORError, ValueError):
    """Bad data: names the source, the line or row (study) and the column, what is wrong and what is right.

    Parameters
    ----------
    message : str
        What is wrong and what would be right (one line).
    source : str, optional
        File name, or the name given to a DataFrame (``"<DataFrame>"`` by default).
    row : int, optional
        1-based position of the record among the data rows: the first record under the header
        (or the first row of a DataFrame or array) is row 1, whatever the DataFrame's index.
    line : int, optional
        For data read from a file, the line of the file on which the record starts (the header
        is line 1 when it is the first line). A record whose quoted field spans several lines
        is on the line where it starts.
    study : str, optional
        The study label of the record.
    column : str, optional
        The column (normalised name) or argument concerned.

    Notes
    -----
    The message begins with ``source, line N`` when a line is known, else ``source, row N``,
    then the study and the column, so a file error always points at the line to open in an
    editor and a DataFrame error at the position ``N - 1`` for ``iloc``.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        row: int | None = None,
        line: int | None = None,
        study: str | None = None,
        column: str | None = None,
    ) -> None:
        self.source = source
        self.row = row
        self.line = line
        self.study = study
        self.column = column
        where = []
        if source:
            where.append(str(source))
        if line is not None:
            where.append(f"line {line}")
        elif row is not None:
            where.append(f"row {row}")
        if study is not None:
            where.append(f"study {_quote(study)}")
        if column is not None:
            where.append(f"column '{column}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


def _quote(label: str) -> str:
    """A study label in quotes, on one line (a label read from a quoted field may hold newlines)."""
    text = str(label)
    if "\n" in text or "\r" in text or "'" in text:
        return repr(text)
    return f"'{text}'"


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


class DegenerateIntervalWarning(UserWarning):
    """An interval has zero width because the data show no spread (e.g. HKSJ on identical studies).

    The reported interval is what the formula gives (as metafor reports it), but zero width
    reflects a scale factor of 0, not certainty; prefer an interval that does not rescale by
    the observed spread (e.g. the z interval) for such data.
    """


class LowPowerWarning(UserWarning):
    """A test was run on too few studies to detect what it tests for (e.g. small-study tests
    with k < 10, Cochrane Handbook 13.3.5.4); its p-value is valid but a large one means little."""
