"""The words of the package: every measure, method, test, shape, engine and comparison.

Each name set is a :data:`typing.Literal` alias (for annotations) and a tuple of the same
values (for validation and error messages), so that one edit here changes what every module
accepts. Beside them live the small numerics every stage needs: the two-sided normal quantile
:func:`z_quantile`, the probability check :func:`check_prob` and :func:`is_ratio`.

This module imports only the standard library (and :mod:`bayesmtor.errors`), so reading it costs
nothing and it can sit at the bottom of the import graph.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from bayesmtor.errors import InputError

__all__ = [
    "BENEFIT_DIRECTIONS",
    "BOLERO2_CHOICES",
    "COMPARISONS",
    "COUNT_MEASURES",
    "COUNT_METHODS",
    "COUNT_OUTCOMES",
    "CONTINUOUS_MEASURES",
    "ENGINES",
    "FE_METHODS",
    "INTERVAL_KINDS",
    "LIKELIHOODS",
    "MEASURES",
    "METHODS",
    "PI_DISTS",
    "RATIO_MEASURES",
    "RE_METHODS",
    "REGRESSION_METHODS",
    "REVMAN_DATA_TYPES",
    "SHAPES",
    "SHAPE_MEASURES",
    "SMD_CONVENTIONS",
    "TAU2_ESTIMATORS",
    "TESTS",
    "TIME_TO_EVENT_OUTCOMES",
    "UNITS",
    "ZERO_CELL_TO",
    "Comparison",
    "ContinuousMeasure",
    "Engine",
    "IntervalKind",
    "Measure",
    "Method",
    "PredictionDist",
    "Shape",
    "Test",
    "Unit",
    "check_prob",
    "is_ratio",
    "z_quantile",
]

# --------------------------------------------------------------------------------------------
# Effect measures and input shapes
# --------------------------------------------------------------------------------------------

Measure = Literal["RR", "OR", "RD", "HR", "generic", "MD", "SMD"]
#: Every effect measure: risk ratio, odds ratio, risk difference, hazard ratio, ``generic``
#: (a log-scale effect whose ratio is not named), mean difference and standardised mean
#: difference.
MEASURES: tuple[Measure, ...] = ("RR", "OR", "RD", "HR", "generic", "MD", "SMD")
#: Measures pooled on the log scale and reported as ratios (``exp`` of the pooled value).
RATIO_MEASURES: tuple[Measure, ...] = ("RR", "OR", "HR")
#: Measures computed from 2x2 event counts.
COUNT_MEASURES: tuple[Measure, ...] = ("RR", "OR", "RD")

ContinuousMeasure = Literal["MD", "SMD"]
#: Measures of continuous outcomes, from means, SDs and sizes: the mean difference and the
#: standardised mean difference (Hedges' g). Computed from the ``means`` shape or read from
#: RevMan files; pooled on their own (difference) scale, null at 0.
CONTINUOUS_MEASURES: tuple[ContinuousMeasure, ...] = ("MD", "SMD")
#: Conventions of the SMD: metafor's escalc (exact Hedges correction, default) or RevMan 5's.
SMD_CONVENTIONS: tuple[str, ...] = ("metafor", "revman")
#: Data types of RevMan analyses: 2x2 counts, means and SDs, generic inverse variance (an
#: estimate with its SE), and O-E with variance (individual patient data).
REVMAN_DATA_TYPES: tuple[str, ...] = ("dichotomous", "continuous", "generic", "o_e")

Shape = Literal["counts", "ratio_ci", "log_se", "means"]
#: Input shapes: 2x2 counts, a ratio with its confidence interval, a log effect with its SE,
#: means with SDs and sizes per arm.
SHAPES: tuple[Shape, ...] = ("counts", "ratio_ci", "log_se", "means")
#: Measures each input shape allows; the first is the shape's default. For ``ratio_ci`` and
#: ``log_se`` the measure only labels the ratio the numbers refer to.
SHAPE_MEASURES: Mapping[Shape, tuple[Measure, ...]] = MappingProxyType(
    {
        "counts": COUNT_MEASURES,
        "ratio_ci": ("HR", "RR", "OR", "generic"),
        "log_se": ("generic", "HR", "RR", "OR"),
        "means": CONTINUOUS_MEASURES,
    }
)

#: Cells the zero-cell correction is added to (metafor ``escalc(to=...)``).
ZERO_CELL_TO: tuple[str, ...] = ("only0", "all", "if0all", "none")

# --------------------------------------------------------------------------------------------
# Methods, tests, engines, intervals
# --------------------------------------------------------------------------------------------

Method = Literal["FE", "MH", "PETO", "DL", "REML", "PM", "ML", "SJ", "HE", "HS", "EB"]
#: Fixed-effect methods: inverse variance, Mantel-Haenszel, Peto.
FE_METHODS: tuple[Method, ...] = ("FE", "MH", "PETO")
#: Random-effects methods, named by their tau^2 estimator (metafor ``rma(method=...)``).
RE_METHODS: tuple[Method, ...] = ("DL", "REML", "PM", "ML", "SJ", "HE", "HS", "EB")
#: The tau^2 estimators (the random-effects methods under their other name).
TAU2_ESTIMATORS: tuple[Method, ...] = RE_METHODS
#: Fixed-effect methods computed from 2x2 counts (not from yi and sei).
COUNT_METHODS: tuple[Method, ...] = ("MH", "PETO")
#: Every pooling method.
METHODS: tuple[Method, ...] = FE_METHODS + RE_METHODS
#: Methods of a meta-regression (metafor ``rma(mods=...)``): fixed effect and residual tau^2
#: by moments (DL) or (restricted) maximum likelihood.
REGRESSION_METHODS: tuple[Method, ...] = ("FE", "DL", "ML", "REML")

PredictionDist = Literal["t", "z"]
#: Distributions of the prediction interval: t on k-2 df (Cochrane) or normal (metafor).
PI_DISTS: tuple[PredictionDist, ...] = ("t", "z")

Test = Literal["z", "t", "knha"]
#: Tests and intervals of the pooled effect: normal, t with k - 1 df, Knapp-Hartung.
TESTS: tuple[Test, ...] = ("z", "t", "knha")

Engine = Literal["exact", "mcmc"]
#: Bayesian engines: quadrature of the normal-normal posterior, or PyMC/NUTS.
ENGINES: tuple[Engine, ...] = ("exact", "mcmc")

IntervalKind = Literal["central", "shortest"]
#: Credible interval kinds: central (equal-tailed) or shortest (narrowest holding ci_prob).
INTERVAL_KINDS: tuple[IntervalKind, ...] = ("central", "shortest")

#: Bayesian likelihoods of the analysis plans.
LIKELIHOODS: tuple[str, ...] = ("normal-normal", "binomial-normal", "multilevel")

# --------------------------------------------------------------------------------------------
# The 2014 paper's data: comparisons, outcomes, unit of analysis
# --------------------------------------------------------------------------------------------

Comparison = Literal["everolimus_endocrine", "everolimus_neoadjuvant", "temsirolimus_endocrine"]
#: Comparison (drug-class) groups of the 2014 paper.
COMPARISONS: tuple[Comparison, ...] = (
    "everolimus_endocrine",
    "everolimus_neoadjuvant",
    "temsirolimus_endocrine",
)
#: Outcomes given as event counts (objective response, clinical benefit).
COUNT_OUTCOMES: tuple[str, ...] = ("orr", "cbr")
#: Outcomes given as hazard ratios (progression-free survival).
TIME_TO_EVENT_OUTCOMES: tuple[str, ...] = ("pfs",)

Unit = Literal["trial", "report"]
#: Unit of analysis: each trial once, or each report as the paper pooled them.
UNITS: tuple[Unit, ...] = ("trial", "report")

#: Which side of the null favours the treatment: ``"lower"`` (a ratio below 1, or a difference
#: below 0, favours the treatment: an HR of progression, an RR of an adverse event) or
#: ``"higher"`` (an RR of response or of clinical benefit).
BENEFIT_DIRECTIONS: tuple[str, ...] = ("lower", "higher")
#: How BOLERO-2 enters a by-trial analysis: its latest full report, or one of its two subgroup
#: partitions combined back into one trial.
BOLERO2_CHOICES: tuple[str, ...] = (
    "latest_full_report",
    "partition:visceral_metastases",
    "partition:region",
)

# --------------------------------------------------------------------------------------------
# Shared numerics
# --------------------------------------------------------------------------------------------


def check_prob(value: object, name: str) -> float:
    """Return ``value`` as a float if it is a probability strictly between 0 and 1.

    Parameters
    ----------
    value : object
        The number to check (an interval probability, a level, a threshold).
    name : str
        The argument or setting it came from, named in the error.

    Returns
    -------
    float

    Raises
    ------
    InputError
        If ``value`` is not a real number in the open interval (0, 1).
    """
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    prob = float(value) if real else math.nan  # type: ignore[arg-type]
    if not 0.0 < prob < 1.0:
        raise InputError(
            f"'{name}' must be a number strictly between 0 and 1 (e.g. 0.95), got {value!r}",
            column=name,
        )
    return prob


def z_quantile(ci_prob: float) -> float:
    """Two-sided standard normal quantile of a central interval of probability ``ci_prob``.

    Parameters
    ----------
    ci_prob : float
        Coverage of the interval, strictly between 0 and 1.

    Returns
    -------
    float
        ``z`` with ``P(|Z| <= z) = ci_prob``: 1.9599639845400536 for 0.95, R's
        ``qnorm(0.975)`` to the bit. Computed by :func:`bayesmtor._special.ndtri` (Wichura's
        AS 241, the algorithm of R's ``qnorm``), imported on first call; it needs NumPy only.
        (``scipy.special.ndtri``, another algorithm, returns 1.959963984540054 at 0.975, two
        ulps above R's value.)

    Raises
    ------
    InputError
        If ``ci_prob`` is not strictly between 0 and 1.
    """
    prob = check_prob(ci_prob, "ci_prob")
    from bayesmtor._special import ndtri

    return float(ndtri(0.5 + prob / 2.0))


def is_ratio(measure: str | None) -> bool:
    """True if ``measure`` is pooled on the log scale and reported as a ratio (RR, OR, HR)."""
    return measure in RATIO_MEASURES
