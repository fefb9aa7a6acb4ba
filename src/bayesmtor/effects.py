"""Effect sizes per study: log ratios (RR, OR, HR), risk differences, mean differences (MD) and
standardised mean differences (SMD, Hedges' g) with their variances.

Conventions follow R metafor's ``escalc()`` (Viechtbauer 2010, J Stat Softw 36(3)), so that
numbers can be checked against it:

* 2x2 cells ``ai`` (events) and ``bi`` (non-events) in the treatment arm, ``ci``/``di`` in the
  control arm; ``n1i = ai + bi``, ``n2i = ci + di``.
* Zero cells: ``add`` is added to all four cells of a study according to ``to``:
  ``"only0"`` (only studies with a zero cell, study by study), ``"all"`` (every study),
  ``"if0all"`` (every study of a meta-analysis if any of them has a zero cell) or ``"none"``.
  The arm totals grow by ``2 * add``. The default (``config``: add=0.5, to="only0") is the
  RevMan 5 rule, i.e. ``escalc(add=1/2, to="only0", drop00=TRUE)``.
* Double-zero studies (no events in either arm, or all participants with the event in both
  arms) carry no information on a ratio scale; with ``drop00=True`` their ``yi``/``vi`` are
  missing and the study is excluded. The default is ``config["drop00"]`` (True) for ratio
  measures and **False for RD**, because a risk difference of 0 is well defined and RevMan
  keeps such studies for RD. An explicit ``drop00=True`` with RD drops them, as escalc does.
* Variances (metafor's default ``vtype="LS"``), after correction:
  RR ``1/a - 1/n1 + 1/c - 1/n2``; OR ``1/a + 1/b + 1/c + 1/d``;
  RD ``p1 (1 - p1) / n1 + p2 (1 - p2) / n2``.
* A ratio with a CI: ``yi = ln(estimate)``, ``sei = (ln U - ln L) / (2 z)`` with
  ``z = 1.959964``, the two-sided standard normal quantile of a 95% CI
  (:func:`bayesmtor.vocabulary.z_quantile`).

A study whose estimate or variance is not finite, or whose variance is 0 (a zero cell left
uncorrected with ``to="none"``), stays in the table with ``included=False`` and a reason.
A ratio printed without a CI (``ratio_ci`` row with both bounds empty) stays in the table
with ``included=False`` and reason ``"ratio printed without CI or SE: excluded from pooling"``.
A study to be pooled whose ``yi`` or ``sei`` lies outside the safe range of
:mod:`bayesmtor.validation` is refused with an :class:`~bayesmtor.errors.InputError`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
from numpy.typing import ArrayLike, NDArray

from bayesmtor import config
from bayesmtor._frames import frame_of
from bayesmtor.errors import InputError
from bayesmtor.inputs import SHAPES, STUDY, MetaInput, read_meta_data
from bayesmtor.validation import check_safe_range
from bayesmtor.vocabulary import (
    CONTINUOUS_MEASURES,
    SHAPE_MEASURES,
    SMD_CONVENTIONS,
    ZERO_CELL_TO,
    z_quantile,
)

__all__ = [
    "MEASURES",
    "MEANS_COLUMNS",
    "RAW_COUNT_COLUMNS",
    "CorrectedCells",
    "EffectArrays",
    "EffectSizes",
    "continuity_correction",
    "double_zero_reason",
    "escalc",
    "log_or",
    "log_ratio_from_ci",
    "log_rr",
    "mean_difference",
    "risk_difference",
    "standardized_mean_difference",
]

#: Measures accepted by :func:`escalc` for each input shape, the first the shape's default
#: (:data:`bayesmtor.vocabulary.SHAPE_MEASURES`).
MEASURES = SHAPE_MEASURES
_TO_OPTIONS = ZERO_CELL_TO
REASON_NO_CI = "ratio printed without CI or SE: excluded from pooling"
#: Raw 2x2 counts kept in :attr:`EffectSizes.table` for counts data (before any correction).
RAW_COUNT_COLUMNS = ("events_trt", "n_trt", "events_ctl", "n_ctl")
#: The means shape's columns, kept in :attr:`EffectSizes.table` for means data.
MEANS_COLUMNS = SHAPES["means"]


class CorrectedCells(NamedTuple):
    """2x2 cells after the zero-cell rule (float arrays of the broadcast shape)."""

    ai: NDArray[np.float64]
    bi: NDArray[np.float64]
    ci: NDArray[np.float64]
    di: NDArray[np.float64]
    n1i: NDArray[np.float64]
    n2i: NDArray[np.float64]
    added: NDArray[np.float64]  # amount added to each cell of the study (0 or add)
    double_zero: NDArray[np.bool_]  # double-zero (or double-full) studies
    dropped: NDArray[np.bool_]  # set to NaN because of drop00


class EffectArrays(NamedTuple):
    """Study-level estimates: ``yi`` and its sampling variance ``vi`` (same shape)."""

    yi: NDArray[np.float64]
    vi: NDArray[np.float64]


def _lgamma(x: np.ndarray) -> np.ndarray:
    """log|Gamma(x)| elementwise by :func:`math.lgamma` (``inf`` at the poles, as SciPy's
    ``gammaln``), so that the effect sizes need no SciPy import."""

    def one(v: float) -> float:
        if math.isnan(v):
            return math.nan
        if v == math.inf or (v <= 0 and v == math.floor(v)):
            return math.inf
        return math.lgamma(v)

    arr = np.asarray(x, dtype=float)
    return np.array([one(v) for v in arr.ravel().tolist()]).reshape(arr.shape)


def _check_to(to: str) -> str:
    if to not in _TO_OPTIONS:
        raise InputError(
            f"to={to!r} is not a zero-cell option; use one of {', '.join(map(repr, _TO_OPTIONS))}."
        )
    return to


def continuity_correction(
    ai: ArrayLike,
    n1i: ArrayLike,
    ci: ArrayLike,
    n2i: ArrayLike,
    add: float | None = None,
    to: str | None = None,
    drop00: bool | None = None,
) -> CorrectedCells:
    """Apply metafor's zero-cell rule to event counts, vectorised.

    Parameters
    ----------
    ai, n1i, ci, n2i : array_like
        Events and totals of the treatment and control arms. Any shapes that broadcast
        together; the **last axis indexes the studies of one meta-analysis** (e.g. an
        ``(m, k)`` array holds m meta-analyses of k studies).
    add : float, optional
        Amount added to each cell (default ``config["cc_add"]``, 0.5).
    to : {"only0", "all", "if0all", "none"}, optional
        ``"only0"`` corrects each element (study) with a zero cell on its own; ``"if0all"``
        corrects every study of a meta-analysis (a slice along the last axis) if any of its
        studies has a zero cell. Default ``config["cc_to"]``.
    drop00 : bool, optional
        Set double-zero studies to NaN (default ``config["drop00"]``).

    Returns
    -------
    CorrectedCells
    """
    add = float(config.get("cc_add", add))
    to = _check_to(config.get("cc_to", to))
    drop00 = bool(config.get("drop00", drop00))
    a, n1, c, n2 = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (ai, n1i, ci, n2i)))
    b = n1 - a
    d = n2 - c
    double = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
    dropped = double & drop00
    has_zero = ((a == 0) | (b == 0) | (c == 0) | (d == 0)) & ~dropped
    if to == "all":
        corr = np.ones(a.shape, dtype=bool)
    elif to == "only0":
        corr = has_zero
    elif to == "if0all":
        if a.ndim == 0:
            corr = has_zero
        else:
            corr = np.broadcast_to(np.any(has_zero, axis=-1, keepdims=True), a.shape)
    else:
        corr = np.zeros(a.shape, dtype=bool)
    added = np.where(corr, add, 0.0)
    nan = np.where(dropped, np.nan, 0.0)
    a2, b2, c2, d2 = (x + added + nan for x in (a, b, c, d))
    return CorrectedCells(
        ai=a2,
        bi=b2,
        ci=c2,
        di=d2,
        n1i=a2 + b2,
        n2i=c2 + d2,
        added=np.where(dropped, np.nan, added),
        double_zero=double,
        dropped=dropped,
    )


def double_zero_reason(events_trt: float, events_ctl: float, measure: str) -> str:
    """Why a double-zero study is excluded for ``measure``: one wording for every engine.

    ``events_trt``/``events_ctl`` are the raw event counts of the study (both 0: no events;
    otherwise every participant had the event in both arms).
    """
    which = (
        "no events in either arm"
        if events_trt == 0 and events_ctl == 0
        else "every participant had the event in both arms"
    )
    return f"double-zero study ({which}): uninformative for {measure}, dropped (drop00=True)"


def log_rr(
    ai: ArrayLike,
    n1i: ArrayLike,
    ci: ArrayLike,
    n2i: ArrayLike,
    add: float | None = None,
    to: str | None = None,
    drop00: bool | None = None,
) -> EffectArrays:
    """Log risk ratio and its variance, vectorised (metafor ``escalc(measure="RR")``).

    ``yi = ln(a/n1) - ln(c/n2)``, ``vi = 1/a - 1/n1 + 1/c - 1/n2`` on corrected cells. See
    :func:`continuity_correction` for ``add``/``to``/``drop00`` and broadcasting. Studies with
    a zero cell left uncorrected (``to="none"``) give infinite or NaN values; dropped
    double-zero studies give NaN.
    """
    cells = continuity_correction(ai, n1i, ci, n2i, add=add, to=to, drop00=drop00)
    with np.errstate(divide="ignore", invalid="ignore"):
        yi = np.log(cells.ai / cells.n1i) - np.log(cells.ci / cells.n2i)
        vi = 1.0 / cells.ai - 1.0 / cells.n1i + 1.0 / cells.ci - 1.0 / cells.n2i
    return EffectArrays(yi=yi, vi=vi)


def log_or(
    ai: ArrayLike,
    n1i: ArrayLike,
    ci: ArrayLike,
    n2i: ArrayLike,
    add: float | None = None,
    to: str | None = None,
    drop00: bool | None = None,
) -> EffectArrays:
    """Log odds ratio and its variance, vectorised (metafor ``escalc(measure="OR")``).

    ``yi = ln(a d / (b c))``, ``vi = 1/a + 1/b + 1/c + 1/d`` on corrected cells. See
    :func:`continuity_correction` for the options and broadcasting.
    """
    cells = continuity_correction(ai, n1i, ci, n2i, add=add, to=to, drop00=drop00)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1 = cells.ai / cells.n1i
        p2 = cells.ci / cells.n2i
        yi = np.log(p1 / (1.0 - p1)) - np.log(p2 / (1.0 - p2))
        vi = 1.0 / cells.ai + 1.0 / cells.bi + 1.0 / cells.ci + 1.0 / cells.di
    return EffectArrays(yi=yi, vi=vi)


def risk_difference(
    ai: ArrayLike,
    n1i: ArrayLike,
    ci: ArrayLike,
    n2i: ArrayLike,
    add: float | None = None,
    to: str | None = None,
    drop00: bool | None = False,
) -> EffectArrays:
    """Risk difference and its variance, vectorised (metafor ``escalc(measure="RD")``).

    ``yi = a/n1 - c/n2``, ``vi = p1 (1 - p1)/n1 + p2 (1 - p2)/n2`` (metafor ``vtype="LS"``),
    computed, like metafor, on the corrected cells when ``to`` adds to a study. Double-zero
    studies are kept by default (``drop00=False``; ``None`` also means False here).
    """
    cells = continuity_correction(
        ai, n1i, ci, n2i, add=add, to=to, drop00=bool(drop00) if drop00 is not None else False
    )
    p1 = cells.ai / cells.n1i
    p2 = cells.ci / cells.n2i
    yi = p1 - p2
    vi = p1 * (1.0 - p1) / cells.n1i + p2 * (1.0 - p2) / cells.n2i
    return EffectArrays(yi=yi, vi=vi)


def log_ratio_from_ci(
    est: ArrayLike,
    lo: ArrayLike,
    hi: ArrayLike,
    ci_prob: float | None = None,
) -> EffectArrays:
    """Log ratio and variance from a ratio and its confidence interval, vectorised.

    ``yi = ln(est)``, ``sei = (ln hi - ln lo) / (2 z)`` with ``z`` the two-sided normal
    quantile (:func:`bayesmtor.vocabulary.z_quantile`, 1.959964 for a 95% interval);
    ``vi = sei**2``. Broadcasts over any shapes; missing bounds give NaN variance.

    Parameters
    ----------
    est, lo, hi : array_like
        Ratio estimates and the lower/upper bounds of their intervals (all > 0).
    ci_prob : float, optional
        Coverage of the given intervals; default config ``input_ci_prob`` (0.95, the level of
        published intervals), not the reporting default ``config["ci_prob"]``.
    """
    z = z_quantile(config.get("input_ci_prob", ci_prob))
    e, low, high = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (est, lo, hi)))
    with np.errstate(divide="ignore", invalid="ignore"):
        yi = np.log(e)
        sei = (np.log(high) - np.log(low)) / (2.0 * z)
    return EffectArrays(yi=yi, vi=sei**2)


def mean_difference(
    m1i: ArrayLike,
    sd1i: ArrayLike,
    n1i: ArrayLike,
    m2i: ArrayLike,
    sd2i: ArrayLike,
    n2i: ArrayLike,
) -> EffectArrays:
    """Mean difference and its variance, vectorised (metafor ``escalc(measure="MD")``).

    ``yi = m1 - m2``, ``vi = sd1^2 / n1 + sd2^2 / n2`` (metafor's default, the variance without
    assuming equal SDs; RevMan 5 uses the same). Broadcasts over any shapes.
    """
    m1, s1, n1, m2, s2, n2 = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (m1i, sd1i, n1i, m2i, sd2i, n2i))
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        return EffectArrays(yi=m1 - m2, vi=s1**2 / n1 + s2**2 / n2)


def standardized_mean_difference(
    m1i: ArrayLike,
    sd1i: ArrayLike,
    n1i: ArrayLike,
    m2i: ArrayLike,
    sd2i: ArrayLike,
    n2i: ArrayLike,
    *,
    convention: str | None = None,
) -> EffectArrays:
    """Standardised mean difference (Hedges' g) and its variance, vectorised.

    ``d = (m1 - m2) / s`` with the pooled SD ``s = sqrt(((n1-1) sd1^2 + (n2-1) sd2^2) / (N-2))``,
    ``N = n1 + n2``, then ``g = J d`` with a small-sample correction ``J``:

    * ``convention="metafor"`` (metafor ``escalc(measure="SMD")`` with its default
      ``vtype="LS"``): the exact ``J = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2))``, ``m = N - 2``
      (Hedges 1981), and ``vi = 1/n1 + 1/n2 + g^2 / (2 N)``.
    * ``convention="revman"`` (RevMan 5, "Hedges' adjusted g"; Deeks & Higgins 2010,
      *Statistical algorithms in Review Manager 5*; Deeks, Altman & Bradburn 2001): the
      approximation ``J = 1 - 3 / (4 N - 9)`` and ``vi = N / (n1 n2) + g^2 / (2 (N - 3.94))``.
      Both the estimate and the variance differ from metafor's: ``J`` by about ``1e-3 / m^2``
      relative, and the variance's last term by the factor ``N / (N - 3.94)``.

    The default convention is ``config["smd_convention"]`` (``"metafor"``).
    """
    convention = config.get("smd_convention", convention)
    if convention not in SMD_CONVENTIONS:
        raise InputError(
            f"convention={convention!r} is not an SMD convention; use one of "
            f"{', '.join(map(repr, SMD_CONVENTIONS))}.",
            column="convention",
        )
    m1, s1, n1, m2, s2, n2 = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (m1i, sd1i, n1i, m2i, sd2i, n2i))
    )
    big_n = n1 + n2
    with np.errstate(divide="ignore", invalid="ignore"):
        sp = np.sqrt(((n1 - 1.0) * s1**2 + (n2 - 1.0) * s2**2) / (big_n - 2.0))
        d = (m1 - m2) / sp
        if convention == "revman":
            g = (1.0 - 3.0 / (4.0 * big_n - 9.0)) * d
            vi = big_n / (n1 * n2) + g**2 / (2.0 * (big_n - 3.94))
        else:
            m = big_n - 2.0
            j = np.where(m > 1, np.exp(_lgamma(m / 2.0) - np.log(np.sqrt(m / 2.0))
                                       - _lgamma((m - 1.0) / 2.0)), np.nan)  # fmt: skip
            g = j * d
            vi = 1.0 / n1 + 1.0 / n2 + g**2 / (2.0 * big_n)
    return EffectArrays(yi=g, vi=vi)


def ratio_ci_range_labels(ci_prob: float | None = None) -> dict[str, tuple[str, str]]:
    """How ``yi``/``sei`` of a ratio with a CI are named in safe-range messages.

    Keyword arguments ``columns`` and ``quantities`` of
    :func:`bayesmtor.validation.check_safe_range` for ``ratio_ci`` data whose intervals have
    coverage ``ci_prob`` (default config ``input_ci_prob``).
    """
    two_z = 2.0 * z_quantile(config.get("input_ci_prob", ci_prob))
    return {
        "columns": ("estimate", "ci_low"),
        "quantities": ("yi = ln(estimate)", f"sei = (ln ci_high - ln ci_low) / {two_z:.6f}"),
    }


# --------------------------------------------------------------------------------------------
# table-level API
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class EffectSizes:
    """Study-level effect sizes ready for pooling.

    Attributes
    ----------
    columns : dict of str to numpy.ndarray
        The per-study table as arrays (what :attr:`table` shows).
    table : pandas.DataFrame
        The same as a DataFrame (built on first use), one row per input row: ``study, yi, vi, sei, included, exclusion_reason``; for counts
        also the raw counts as read, ``events_trt, n_trt, events_ctl, n_ctl`` (before any
        continuity correction, for methods with their own zero-cell rule such as
        Mantel-Haenszel and Peto, and for binomial likelihoods), the corrected cells
        ``ai, bi, ci, di, n1i, n2i`` and ``cc_add`` (amount added to each cell of that study);
        then the input's extra columns.
    measure : str
        ``"RR"``, ``"OR"``, ``"RD"``, ``"HR"``, ``"generic"``, ``"MD"`` or ``"SMD"``.
    scale : str
        ``"log"`` (yi is a log ratio) or ``"identity"`` (RD, MD, SMD: differences, null 0).
    dropped : tuple of (str, str)
        ``(study, reason)`` for each row excluded from pooling.
    source : str
        Name of the data source.
    add, to, drop00 : float, str, bool or None
        Zero-cell options used (None for non-count data).
    smd_convention : str or None
        ``"metafor"`` or ``"revman"`` for an SMD (:func:`standardized_mean_difference`).
    """

    columns: dict[str, np.ndarray]
    measure: str
    scale: str
    dropped: tuple[tuple[str, str], ...]
    source: str = "<DataFrame>"
    add: float | None = None
    to: str | None = None
    drop00: bool | None = None
    smd_convention: str | None = None

    @functools.cached_property
    def table(self) -> pd.DataFrame:
        """The per-study table as a pandas DataFrame (a ``RangeIndex``)."""
        return frame_of(self.columns)

    @property
    def k(self) -> int:
        """Number of studies included in pooling."""
        return int(np.count_nonzero(self.columns["included"]))

    @property
    def has_counts(self) -> bool:
        """Whether the table holds the raw 2x2 counts (counts data)."""
        return set(RAW_COUNT_COLUMNS) <= set(self.columns)

    def raw_counts(self) -> tuple[NDArray[np.float64], ...]:
        """Raw ``(events_trt, n_trt, events_ctl, n_ctl)`` of every row, before correction.

        Raises
        ------
        bayesmtor.errors.InputError
            If the effect sizes were not computed from 2x2 counts.
        """
        if not self.has_counts:
            raise InputError(
                "these effect sizes were not computed from 2x2 counts (events_trt, n_trt, "
                "events_ctl, n_ctl)",
                source=self.source,
            )
        return tuple(np.asarray(self.columns[col], dtype=float) for col in RAW_COUNT_COLUMNS)

    def included(self) -> pd.DataFrame:
        """Copy of the rows included in pooling."""
        return self.table.loc[self.table["included"]].reset_index(drop=True)

    def to_ratio(self, ci_prob: float | None = None) -> pd.DataFrame:
        """Per-study estimate and interval on the ratio scale: ``exp(yi +- z sei)``.

        Columns: ``study``, ``<measure>``, ``<measure> lower 95%``, ``<measure> upper 95%``
        (``ratio`` for generic), ``yi``, ``sei``, ``included``, ``exclusion_reason``.

        Parameters
        ----------
        ci_prob : float, optional
            Interval probability (default ``config["ci_prob"]``).
        """
        if self.scale != "log":
            raise InputError(
                f"measure {self.measure} is not a ratio; use .summary() for risk differences.",
                source=self.source,
            )
        label = self.measure if self.measure != "generic" else "ratio"
        return self._interval_table(ci_prob, np.exp, label)

    def summary(self, ci_prob: float | None = None) -> pd.DataFrame:
        """Per-study estimate with its interval (ratio scale for ratios), inclusion and reason."""
        transform = np.exp if self.scale == "log" else (lambda x: x)
        label = self.measure if self.measure != "generic" else "estimate"
        return self._interval_table(ci_prob, transform, label)

    def _interval_table(self, ci_prob: float | None, transform: object, label: str) -> pd.DataFrame:
        import pandas as pd

        prob = float(config.get("ci_prob", ci_prob))
        pct = f"{100 * prob:g}%"
        z = z_quantile(prob)
        t = self.table
        yi = t["yi"].to_numpy(dtype=float)
        se = t["sei"].to_numpy(dtype=float)
        f = transform  # type: ignore[assignment]
        return pd.DataFrame(
            {
                "study": t["study"].to_numpy(),
                label: f(yi),  # type: ignore[operator]
                f"{label} lower {pct}": f(yi - z * se),  # type: ignore[operator]
                f"{label} upper {pct}": f(yi + z * se),  # type: ignore[operator]
                "yi": yi,
                "sei": se,
                "included": t["included"].to_numpy(),
                "exclusion_reason": t["exclusion_reason"].to_numpy(),
            }
        )

    def __repr__(self) -> str:
        n = len(self.columns[STUDY])
        cc = (
            f", add={self.add:g}, to={self.to!r}, drop00={self.drop00}"
            if self.add is not None
            else ""
        )
        drop = ""
        if self.dropped:
            names = ", ".join(repr(s) for s, _ in self.dropped[:3])
            drop = f", dropped=[{names}{', ...' if len(self.dropped) > 3 else ''}]"
        return (
            f"EffectSizes(measure={self.measure!r}, scale={self.scale!r}, source={self.source!r}, "
            f"k={self.k} of {n}{cc}{drop})"
        )


def escalc(
    data: MetaInput | pd.DataFrame,
    measure: str | None = None,
    *,
    add: float | None = None,
    to: str | None = None,
    drop00: bool | None = None,
    input_ci_prob: float | None = None,
    smd_convention: str | None = None,
) -> EffectSizes:
    """Compute per-study effect sizes, like metafor's ``escalc()``.

    Parameters
    ----------
    data : MetaInput or pandas.DataFrame
        Validated input (:func:`bayesmtor.inputs.read_meta_data`); a DataFrame is validated
        first (and never modified).
    measure : str, optional
        counts: ``"RR"`` (default), ``"OR"``, ``"RD"``; ratio_ci: ``"HR"``, ``"RR"``,
        ``"OR"`` or ``"generic"`` (default); log_se: ``"generic"`` (default) or the ratio the
        log refers to (``"HR"``, ``"RR"``, ``"OR"``), only a label for these two shapes; means:
        ``"MD"`` (default; :func:`mean_difference`) or ``"SMD"`` (Hedges' g,
        :func:`standardized_mean_difference`).
    add, to, drop00 : optional
        Zero-cell rule for counts (defaults in :mod:`bayesmtor.config`: 0.5, ``"only0"``,
        True; ``drop00`` defaults to False for RD). See :func:`continuity_correction`.
    input_ci_prob : float, optional
        Coverage of the intervals in ratio_ci data (default config ``input_ci_prob``, 0.95).
    smd_convention : {"metafor", "revman"}, optional
        Hedges' g of metafor's ``escalc`` (default, config ``smd_convention``) or of RevMan 5.

    Returns
    -------
    EffectSizes

    Raises
    ------
    bayesmtor.errors.InputError
        For invalid data (see :func:`bayesmtor.inputs.read_meta_data`), and for a study to be
        pooled whose ``yi`` or ``sei`` (after conversion) lies outside the safe range of
        :mod:`bayesmtor.validation` (``|yi| <= 1e50``, ``1e-50 <= sei <= 1e50``), naming
        its line (row), column, value and limit.
    """

    meta = data if isinstance(data, MetaInput) else read_meta_data(data)
    measure = _canonical_measure(meta, measure)
    frame = meta.columns
    studies = frame[STUDY]
    if meta.shape == "counts":
        comp = _from_counts(frame, measure, add=add, to=to, drop00=drop00)
    elif meta.shape == "ratio_ci":
        comp = _from_ratio_ci(frame, input_ci_prob)
    elif meta.shape == "means":
        comp = _from_means(frame, measure, smd_convention)
    else:
        comp = _from_log_se(frame)
    # One safe range for every engine, checked after the conversion to yi/sei.
    check_safe_range(
        comp.yi, comp.sei, lines=meta.lines, studies=studies, source=meta.source, **comp.safe
    )
    yi = np.where(np.isfinite(comp.yi), comp.yi, np.nan)
    vi = np.where(np.isfinite(comp.vi), comp.vi, np.nan)
    reasons = comp.reasons
    included = reasons == ""
    columns: dict[str, object] = {
        STUDY: studies,
        "yi": yi,
        "vi": vi,
        "sei": np.sqrt(vi),
        "included": included,
        "exclusion_reason": np.where(included, None, reasons),
        **comp.columns,
    }
    for col in meta.extra_columns:
        columns[col] = np.array(frame[col], copy=True)
    dropped = tuple((str(studies[pos]), str(reasons[pos])) for pos in np.flatnonzero(~included))
    return EffectSizes(
        columns=columns,
        measure=measure,
        scale="identity" if measure == "RD" or measure in CONTINUOUS_MEASURES else "log",
        dropped=dropped,
        source=meta.source,
        **comp.options,
    )


def _canonical_measure(meta: MetaInput, measure: str | None) -> str:
    """``measure`` spelled as in :data:`MEASURES`, refused if the shape cannot give it."""
    if measure is None:
        measure = {"counts": "RR", "means": "MD"}.get(meta.shape, "generic")
    allowed = MEASURES[meta.shape]
    canonical = {m.lower(): m for m in allowed}
    if not isinstance(measure, str) or measure.lower() not in canonical:
        hint = ""
        if str(measure).upper() in CONTINUOUS_MEASURES:
            hint = (
                " MD and SMD are differences of means: they need the means shape (mean_trt, "
                "sd_trt, n_trt, mean_ctl, sd_ctl, n_ctl)."
            )
        elif meta.shape == "means":
            hint = " Means, SDs and sizes give differences of means, not ratios or risks."
        raise InputError(
            f"measure={measure!r} cannot be computed from {meta.shape} data; use one of "
            f"{', '.join(map(repr, allowed))}.{hint}",
            source=meta.source,
            column="measure",
        )
    return canonical[measure.lower()]


class _Computed(NamedTuple):
    """Per-study values of one input shape, before the table is assembled."""

    yi: NDArray[np.float64]
    vi: NDArray[np.float64]
    sei: NDArray[np.float64]
    reasons: NDArray[np.object_]  # "" for a study to be pooled
    safe: dict[str, object]  # keyword arguments of check_safe_range
    columns: dict[str, object]  # shape-specific columns of the table
    options: dict[str, object]  # zero-cell options used (EffectSizes fields)


def _from_counts(frame, measure, *, add, to, drop00) -> _Computed:
    used_add = float(config.get("cc_add", add))
    used_to = _check_to(config.get("cc_to", to))
    if drop00 is None:
        used_drop00 = False if measure == "RD" else bool(config.get("drop00"))
    else:
        used_drop00 = bool(drop00)
    args = tuple(np.asarray(frame[col]) for col in RAW_COUNT_COLUMNS)
    func = {"RR": log_rr, "OR": log_or, "RD": risk_difference}[measure]
    yi, vi = func(*args, add=used_add, to=used_to, drop00=used_drop00)
    cells = continuity_correction(*args, add=used_add, to=used_to, drop00=used_drop00)
    reasons = np.full(len(frame[STUDY]), "", dtype=object)
    a_raw, c_raw = args[0], args[2]
    for pos in np.flatnonzero(cells.dropped):
        reasons[pos] = double_zero_reason(a_raw[pos], c_raw[pos], measure)
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(yi) & np.isfinite(vi) & (vi > 0)) & ~cells.dropped
    for pos in np.flatnonzero(bad):
        reasons[pos] = (
            f"zero cell without correction (to={used_to!r}): {measure} not estimable "
            "(infinite or zero variance)"
        )
    columns: dict[str, object] = {  # the raw counts as read, before any continuity correction
        col: np.array(frame[col], copy=True) for col in RAW_COUNT_COLUMNS
    }
    # the corrected cells and the amount added to each (fields 0-6 of CorrectedCells)
    columns.update(zip(("ai", "bi", "ci", "di", "n1i", "n2i", "cc_add"), cells[:7], strict=True))
    options = {"add": used_add, "to": used_to, "drop00": used_drop00}
    return _Computed(yi, vi, np.sqrt(vi), reasons, {"mask": reasons == ""}, columns, options)


def _from_ratio_ci(frame, input_ci_prob) -> _Computed:
    yi, vi = log_ratio_from_ci(
        np.asarray(frame["estimate"]),
        np.asarray(frame["ci_low"]),
        np.asarray(frame["ci_high"]),
        ci_prob=input_ci_prob,
    )
    reasons = np.full(len(frame[STUDY]), "", dtype=object)
    reasons[np.isnan(vi)] = REASON_NO_CI
    columns = {col: np.array(frame[col], copy=True) for col in ("estimate", "ci_low", "ci_high")}
    safe = ratio_ci_range_labels(input_ci_prob)
    return _Computed(yi, vi, np.sqrt(vi), reasons, safe, columns, {})


def _from_means(frame, measure, smd_convention) -> _Computed:
    args = tuple(np.asarray(frame[col], dtype=float) for col in MEANS_COLUMNS)
    options: dict[str, object] = {}
    if measure == "SMD":
        used = config.get("smd_convention", smd_convention)
        yi, vi = standardized_mean_difference(*args, convention=used)
        options["smd_convention"] = used
    else:
        yi, vi = mean_difference(*args)
    reasons = np.full(len(frame[STUDY]), "", dtype=object)
    with np.errstate(invalid="ignore"):
        reasons[~(np.isfinite(yi) & np.isfinite(vi) & (vi > 0))] = f"{measure} not estimable"
    columns = {col: np.array(frame[col], copy=True) for col in MEANS_COLUMNS}
    safe = {
        "columns": ("mean_trt", "sd_trt"),
        "quantities": (measure, f"SE of {measure}"),
        "mask": reasons == "",
    }
    return _Computed(yi, vi, np.sqrt(vi), reasons, safe, columns, options)


def _from_log_se(frame) -> _Computed:
    yi = np.array(frame["yi"], dtype=float)
    sei = np.asarray(frame["sei"], dtype=float)
    with np.errstate(over="ignore"):  # an SE beyond the safe range is refused just after
        vi = sei**2
    return _Computed(yi, vi, sei, np.full(len(frame[STUDY]), "", dtype=object), {}, {}, {})
