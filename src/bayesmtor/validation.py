"""The safe range of log-scale effects and standard errors, shared by every engine.

The frequentist estimators (:mod:`bayesmtor.frequentist`), the exact engine
(:mod:`bayesmtor.bayes.exact`) and the PyMC models (:mod:`bayesmtor.bayes.pymc_models`) all work in float64.
Inside the **safe range**

* ``|yi| <= config.defaults["yi_abs_max"]`` (1e50) and
* ``config.defaults["sei_min"] <= sei <= config.defaults["sei_max"]`` (1e-50 to 1e50)

every intermediate they compute stays finite: inverse-variance weights up to 1e100, standardised
residuals up to 2e100 and their squares up to 4e200, and sums of these over 1e7 studies. Real
data sit far inside it: log ratios lie within +-40 (a ratio of 1e17) and standard errors of log
ratios above 1e-8 (a trial of 1e16 patients). A value beyond the range is therefore a data
error (a ratio typed as its log, a missing-value code, a variance of 0), and
:func:`check_safe_range` refuses it with an :class:`~bayesmtor.errors.InputError` naming the row,
the column, the value and the limit, instead of letting an overflow turn it into a wrong answer.

Ratios with a CI and 2x2 counts are checked after their conversion to ``yi``/``sei`` by
:func:`bayesmtor.effects.escalc`: a hazard ratio of 1e-300 (yi = -690.8) is accepted; a CI so
narrow that its width is 0 in double precision (sei = 0) is refused.

This module imports only numpy and the package's registry and errors, so every stage can use it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayesmtor import config
from bayesmtor.errors import InputError

__all__ = ["SAFE_RANGE_KEYS", "check_safe_range", "safe_range"]

#: Registry keys (in :data:`bayesmtor.config.defaults`) of the safe range.
SAFE_RANGE_KEYS: tuple[str, str, str] = ("yi_abs_max", "sei_min", "sei_max")


def safe_range() -> tuple[float, float, float]:
    """The registered safe range ``(yi_abs_max, sei_min, sei_max)``.

    Returns
    -------
    tuple of float
        Read from :data:`bayesmtor.config.defaults` at call time (1e50, 1e-50, 1e50 unless
        changed there).
    """
    return tuple(float(config.get(key)) for key in SAFE_RANGE_KEYS)  # type: ignore[return-value]


def check_safe_range(
    yi: Any,
    sei: Any,
    *,
    mask: Any = None,
    rows: Any = None,
    lines: Any = None,
    studies: Any = None,
    source: str | None = None,
    columns: tuple[str, str] = ("yi", "sei"),
    quantities: tuple[str, str] = ("yi", "sei"),
) -> None:
    """Refuse log-scale effects and standard errors outside the safe range.

    Missing values (NaN) are skipped: whether a missing value excludes a study or is an error
    is the caller's rule. Infinite values are outside the range.

    Parameters
    ----------
    yi, sei : array_like
        Log-scale effects and their standard errors, same shape: one meta-analysis (1-D) or
        ``m`` meta-analyses padded to ``(m, kmax)`` (2-D, with ``mask``).
    mask : array_like of bool, optional
        Entries to check (padding cells are False). Default: every entry.
    rows : array_like, optional
        Row number to report for each entry, numbered as the caller numbers its rows (e.g.
        the line of a file), broadcastable to the shape of ``yi``. Default: the 1-based
        position for 1-D input; for 2-D input no row, and the message gives the 1-based
        meta-analysis and study positions instead.
    lines : array_like, optional
        For data read from a file, the line of the file of each entry (e.g.
        :attr:`bayesmtor.inputs.MetaInput.lines`), broadcastable like ``rows``; the message
        then names the line.
    studies : array_like of str, optional
        Study label of each entry (same broadcasting as ``rows``).
    source : str, optional
        Name of the data (file name), used in the message.
    columns : tuple of (str, str)
        Column names the two quantities come from, as the user knows them (e.g.
        ``("estimate", "ci_low")`` for ratios with a CI).
    quantities : tuple of (str, str)
        How ``yi`` and ``sei`` are written in the message, e.g. ``("ln(estimate)",
        "(ln ci_high - ln ci_low) / 3.919928")``.

    Raises
    ------
    bayesmtor.errors.InputError
        For the first entry (in row order) outside the range, naming its row (or line),
        study, column, value and the limit with its registry key.
    """
    y = np.array(yi, dtype=float, ndmin=1)
    s = np.array(sei, dtype=float, ndmin=1)
    if y.shape != s.shape:
        raise InputError(
            f"'yi' has shape {y.shape} but 'sei' has shape {s.shape}; they must match",
            source=source,
            column=columns[1],
        )
    limits = safe_range()
    found = _first_outside(y, s, limits, mask)
    if found is None:
        return
    flat, in_yi = found
    idx = np.unravel_index(flat, y.shape)
    where = (
        f" (meta-analysis {idx[0] + 1}, study {idx[1] + 1} of it; 1-based)" if y.ndim == 2 else ""
    )
    if rows is not None:
        row = _pick(rows, y.shape, idx)
    else:
        row = flat + 1 if y.ndim == 1 else None
    line = None if lines is None else _pick(lines, y.shape, idx)
    study = None if studies is None else str(_pick(studies, y.shape, idx))
    if in_yi:
        message = _yi_message(quantities[0], float(y[idx]), limits, where)
        column = columns[0]
    else:
        message = _sei_message(quantities[1], float(s[idx]), limits, where)
        column = columns[1]
    raise InputError(message, source=source, row=row, line=line, study=study, column=column)


def _first_outside(
    y: np.ndarray, s: np.ndarray, limits: tuple[float, float, float], mask: Any
) -> tuple[int, bool] | None:
    """The flat position of the first entry outside ``limits`` and whether its ``yi`` is.

    ``None`` when every entry (of ``mask``) is inside or missing.
    """
    y_max, s_min, s_max = limits
    with np.errstate(invalid="ignore"):
        bad_y = ~np.isnan(y) & ~(np.abs(y) <= y_max)
        bad_s = ~np.isnan(s) & ~((s >= s_min) & (s <= s_max))
    bad = bad_y | bad_s
    if mask is not None:
        bad &= np.broadcast_to(np.asarray(mask, dtype=bool), y.shape)
    if not bad.any():
        return None
    flat = int(np.flatnonzero(bad)[0])
    return flat, bool(bad_y.flat[flat])


def _yi_message(quantity: str, val: float, limits: tuple[float, float, float], where: str) -> str:
    """Why ``quantity = val`` (a log-scale effect) is refused."""
    return (
        f"{quantity} = {val:.6g} is outside the safe range |yi| <= {limits[0]:g} "
        f"(bayesmtor.config key 'yi_abs_max'){where}: beyond it the estimators' float64 "
        "arithmetic can overflow. Real log ratios lie within +-40 (a ratio of 1e17); "
        "check the value (a number in the wrong column, unit or scale?)"
    )


def _sei_message(quantity: str, val: float, limits: tuple[float, float, float], where: str) -> str:
    """Why ``quantity = val`` (a standard error) is refused: too large, too small or not > 0."""
    _, s_min, s_max = limits
    if val > s_max:
        return (
            f"{quantity} = {val:.6g} is above the safe maximum {s_max:g} "
            f"(bayesmtor.config key 'sei_max'){where}: beyond it the estimators' float64 "
            "arithmetic can overflow. Real standard errors of log ratios are below 10; "
            "check the value (a missing-value code or a unit error?)"
        )
    if val > 0:
        return (
            f"{quantity} = {val:.6g} is below the safe minimum {s_min:g} "
            f"(bayesmtor.config key 'sei_min'){where}: beyond it the estimators' float64 "
            "arithmetic can overflow. Real standard errors of log ratios are above 1e-8; "
            "check the value (a unit or typing error?)"
        )
    return (
        f"{quantity} = {val:.6g} is not positive; a standard error must lie in "
        f"the safe range {s_min:g} <= sei <= {s_max:g} (bayesmtor.config keys "
        f"'sei_min', 'sei_max'){where}. Check the value (a standard error of 0, or an "
        "interval without width?)"
    )


def _pick(values: Any, shape: tuple[int, ...], idx: tuple[Any, ...]) -> Any:
    """The entry of ``values`` (broadcast to ``shape``) at ``idx``, as a Python scalar."""
    item = np.broadcast_to(np.asarray(values, dtype=object), shape)[idx]
    return item.item() if isinstance(item, np.generic) else item
