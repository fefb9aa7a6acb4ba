"""Prior distributions for the normal-normal random-effects model, as plain data objects.

A prior is a small frozen dataclass (family, parameters, label) that knows its density, CDF,
quantile function and random draws (NumPy/SciPy, vectorised) and can build the matching PyMC
random variable on request. Keeping the specification apart from any PyMC graph means the
frequentist code path and the exact quadrature engine never import PyMC.

Families for the heterogeneity standard deviation ``tau`` (:class:`TauPrior`):

* ``half-normal:S``          tau = |X|, X ~ N(0, S^2)
* ``half-cauchy:S``          tau = |X|, X ~ Cauchy(0, S)
* ``half-student-t:S,NU``    tau = S |T|, T ~ Student-t with NU degrees of freedom
* ``uniform:A,B``            tau ~ U(A, B), 0 <= A < B
* ``log-normal:M,S``         log tau ~ N(M, S^2)
* ``turner:OUTCOME,COMPARISON``  the empirical log-normal priors of Turner et al. (2015)
* ``uniform``                the improper uniform prior on [0, inf) (``uniform:A,B`` is proper)
* ``jeffreys``               the improper Jeffreys prior of R bayesmeta,
  ``p(tau) ~ sqrt(sum_i (tau / (s_i^2 + tau^2))^2)``: it depends on the standard errors
  ``s_i``, so its density is evaluated with the data (:meth:`TauPrior.log_density`)

The two improper priors give a proper posterior only with enough studies (see
:func:`check_proper_posterior`); they have no CDF, quantiles, draws or normalising constant,
so marginal likelihoods and Bayes factors are not defined with them.

Families for the overall effect ``mu`` (:class:`MuPrior`): ``normal:M,S`` and ``flat``.

References
----------
Turner RM, Jackson D, Wei Y, Thompson SG, Higgins JPT (2015). Predictive distributions for
between-study heterogeneity and simple methods for their application in Bayesian meta-analysis.
Statistics in Medicine 34(6):984-998. doi:10.1002/sim.6381 (Table IV).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

import numpy as np

from bayesmtor import _special as special
from bayesmtor import config
from bayesmtor.errors import PriorError
from bayesmtor.vocabulary import z_quantile

__all__ = [
    "IMPROPER_TAU_FAMILIES",
    "MuPrior",
    "TURNER_COMPARISON_TYPES",
    "TURNER_OUTCOME_TYPES",
    "TURNER_TABLE",
    "TauPrior",
    "check_proper_posterior",
    "default_mu_prior",
    "default_tau_prior",
]

# ---------------------------------------------------------------------------------------------
# Turner et al. (2015), Table IV: predictive distributions log(tau^2) ~ N(m, s^2) for a new
# meta-analysis of binary outcomes (log odds ratios), by outcome type and comparison type.
# Values as tabulated in Turner RM et al., Stat Med 2015;34(6):984-998, Table IV, transcribed
# from the TurnerEtAlParameters array of the R package bayesmeta (Roever 2020, J Stat Softw
# 93(6)), which cites the same table. All 16 x 5 = 80 cells are present.
# ---------------------------------------------------------------------------------------------

#: Outcome-type ids (keys) and the wording of Turner et al. (2015).
TURNER_OUTCOME_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "all_cause_mortality": "all-cause mortality",
        "obstetric": "obstetric outcomes",
        "cause_specific_mortality": (
            "cause-specific mortality / major morbidity event / composite (mortality or morbidity)"
        ),
        "resource_use": "resource use / hospital stay / process",
        "surgical_device": "surgical / device related success / failure",
        "withdrawals": "withdrawals / drop-outs",
        "internal_structure": "internal / structure-related outcomes",
        "general_physical_health": "general physical health indicators",
        "adverse_events": "adverse events",
        "infection": "infection / onset of new disease",
        "signs_symptoms": "signs / symptoms reflecting continuation / end of condition",
        "pain": "pain",
        "quality_of_life": "quality of life / functioning (dichotomized)",
        "mental_health": "mental health indicators",
        "biological_markers": "biological markers (dichotomized)",
        "subjective": "subjective outcomes (various)",
    }
)

#: Comparison-type ids (keys) and the wording of Turner et al. (2015).
TURNER_COMPARISON_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "pharma_vs_placebo": "pharmacological vs. placebo / control",
        "pharma_vs_pharma": "pharmacological vs. pharmacological",
        "nonpharma_vs_placebo": "non-pharmacological vs. placebo / control",
        "nonpharma_vs_pharma": "non-pharmacological vs. pharmacological",
        "nonpharma_vs_nonpharma": "non-pharmacological vs. non-pharmacological",
    }
)

# Columns follow TURNER_COMPARISON_TYPES order, rows TURNER_OUTCOME_TYPES order.
_TURNER_MEAN = (
    (-3.95, -4.18, -4.17, -2.92, -3.50),
    (-3.52, -3.75, -3.74, -2.49, -3.08),
    (-3.71, -3.95, -3.93, -2.68, -3.27),
    (-2.34, -2.58, -2.56, -1.31, -1.90),
    (-2.14, -2.37, -2.36, -1.11, -1.69),
    (-2.99, -3.23, -3.21, -1.96, -2.55),
    (-2.71, -2.94, -2.93, -1.67, -2.26),
    (-2.29, -2.53, -2.51, -1.26, -1.85),
    (-1.87, -2.10, -2.10, -0.84, -1.43),
    (-2.49, -2.73, -2.71, -1.46, -2.05),
    (-2.06, -2.29, -2.28, -1.03, -1.61),
    (-1.83, -2.06, -2.05, -0.80, -1.38),
    (-2.54, -2.78, -2.77, -1.51, -2.10),
    (-2.12, -2.35, -2.34, -1.09, -1.67),
    (-1.77, -2.00, -1.99, -0.74, -1.33),
    (-2.70, -2.93, -2.92, -1.67, -2.26),
)
_TURNER_SD = (
    (1.34, 1.41, 1.55, 1.02, 1.26),
    (1.74, 1.79, 1.91, 1.50, 1.68),
    (1.74, 1.79, 1.91, 1.51, 1.68),
    (1.74, 1.79, 1.91, 1.50, 1.68),
    (1.74, 1.79, 1.91, 1.50, 1.68),
    (1.74, 1.79, 1.91, 1.51, 1.68),
    (1.74, 1.79, 1.92, 1.51, 1.68),
    (1.53, 1.58, 1.72, 1.25, 1.46),
    (1.52, 1.58, 1.71, 1.24, 1.45),
    (1.52, 1.58, 1.71, 1.24, 1.45),
    (1.51, 1.58, 1.71, 1.24, 1.45),
    (1.52, 1.58, 1.71, 1.25, 1.45),
    (1.54, 1.60, 1.73, 1.27, 1.47),
    (1.53, 1.60, 1.72, 1.27, 1.47),
    (1.52, 1.58, 1.71, 1.24, 1.45),
    (1.52, 1.58, 1.71, 1.25, 1.45),
)

#: ``TURNER_TABLE[(outcome_id, comparison_id)] = (m, s)`` with log(tau^2) ~ N(m, s^2).
TURNER_TABLE: Mapping[tuple[str, str], tuple[float, float]] = MappingProxyType(
    {
        (o, c): (_TURNER_MEAN[i][j], _TURNER_SD[i][j])
        for i, o in enumerate(TURNER_OUTCOME_TYPES)
        for j, c in enumerate(TURNER_COMPARISON_TYPES)
    }
)

_TAU_FORMS = (
    "'half-normal:SCALE', 'half-cauchy:SCALE', 'half-student-t:SCALE,NU', 'uniform:LOWER,UPPER', "
    "'log-normal:MEANLOG,SDLOG', 'turner:OUTCOME,COMPARISON', 'uniform' (improper) or "
    "'jeffreys' (improper)"
)
_MU_FORMS = "'normal:MEAN,SD' or 'flat'"

_P = TypeVar("_P", "TauPrior", "MuPrior")

_TAU_FAMILY_ALIASES = {
    "half-normal": "half-normal",
    "halfnormal": "half-normal",
    "half-cauchy": "half-cauchy",
    "halfcauchy": "half-cauchy",
    "half-student-t": "half-student-t",
    "half-t": "half-student-t",
    "halfstudentt": "half-student-t",
    "uniform": "uniform",
    "log-normal": "log-normal",
    "lognormal": "log-normal",
    "turner": "turner",
    "jeffreys": "jeffreys",
}

_TAU_PARAM_NAMES = {
    "half-normal": ("scale",),
    "half-cauchy": ("scale",),
    "half-student-t": ("scale", "nu"),
    "uniform": ("lower", "upper"),
    "log-normal": ("meanlog", "sdlog"),
    "improper-uniform": (),
    "jeffreys": (),
}

#: The improper tau families (no normalising constant; propriety needs enough studies).
IMPROPER_TAU_FAMILIES = ("improper-uniform", "jeffreys")

_MU_FAMILY_ALIASES = {"normal": "normal", "flat": "flat"}

#: The written form of every family, for messages.
_FORMS = {
    "half-normal": "half-normal:SCALE",
    "half-cauchy": "half-cauchy:SCALE",
    "half-student-t": "half-student-t:SCALE,NU",
    "uniform": "uniform:LOWER,UPPER",
    "log-normal": "log-normal:MEANLOG,SDLOG",
    "turner": "turner:OUTCOME,COMPARISON",
    "improper-uniform": "uniform",
    "jeffreys": "jeffreys",
    "normal": "normal:MEAN,SD",
    "flat": "flat",
}


def _split(text: Any, kind: str) -> tuple[str, list[str] | None]:
    """The canonical family of a prior string and its argument texts (``None`` without ``:``).

    The first step of the one prior grammar, shared by :meth:`TauPrior.from_string` and
    :meth:`MuPrior.from_string`.
    """
    forms, aliases = (
        (_TAU_FORMS, _TAU_FAMILY_ALIASES) if kind == "tau" else (_MU_FORMS, _MU_FAMILY_ALIASES)
    )
    if not isinstance(text, str):
        raise PriorError(
            f"a {kind} prior must be a string, got {type(text).__name__} {text!r}; "
            f"accepted forms: {forms}"
        )
    head, sep, rest = text.strip().partition(":")
    family = aliases.get(head.strip().lower().replace("_", "-"))
    if family is None:
        close = difflib.get_close_matches(head.strip().lower(), sorted(set(aliases.values())), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise PriorError(
            f"unknown {kind} prior family {head.strip()!r}{hint} in {text!r}; "
            f"accepted forms: {forms}"
        )
    return family, ([part.strip() for part in rest.split(",")] if sep else None)


def _numbers(text: str, parts: list[str], family: str, names: tuple[str, ...]) -> list[float]:
    """The finite numbers of a prior string, one per parameter name."""
    form = _FORMS[family]
    if len(parts) != len(names):
        raise PriorError(
            f"cannot read prior {text!r}: {family} needs {len(names)} number(s) "
            f"({','.join(n.upper() for n in names)}), got {len(parts)}; write {form}"
        )
    values = []
    for name, part in zip(names, parts, strict=True):
        try:
            value = float(part)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise PriorError(
                f"cannot read prior {text!r}: {name.upper()} must be a finite number, got {part!r}; "
                f"write {form}"
            )
        values.append(value)
    return values


def _norm_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")


def _match_key(text: str, table: Mapping[str, str], what: str) -> str:
    """Match an id or Turner's wording (or a unique prefix of either) to a key of ``table``."""
    key = _norm_key(text)
    candidates: dict[str, str] = {}
    for k, wording in table.items():
        candidates[k] = k
        candidates[_norm_key(wording)] = k
    if key in candidates:
        return candidates[key]
    hits = {v for c, v in candidates.items() if key and c.startswith(key)}
    if len(hits) == 1:
        return hits.pop()
    raise PriorError(
        f"unknown Turner et al. (2015) {what} {text!r}"
        + (" (ambiguous prefix)" if len(hits) > 1 else "")
        + f"; expected one of: {', '.join(table)}"
    )


def _positive(name: str, value: Any, family: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise PriorError(f"{family} prior: '{name}' must be a number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise PriorError(f"{family} prior: '{name}' must be finite and > 0, got {value!r}")
    return v


def _finite(name: str, value: Any, family: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise PriorError(f"{family} prior: '{name}' must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise PriorError(f"{family} prior: '{name}' must be finite, got {value!r}")
    return v


def _fmt(v: float) -> str:
    return f"{v:g}"


def _num(v: float) -> str:
    """Shortest text that reads back to exactly ``v`` (``0.5``, ``3``, ``1e-05``)."""
    text = repr(float(v))
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class TauPrior:
    """Prior distribution of the between-study standard deviation ``tau`` (>= 0).

    Build with the named constructors (:meth:`half_normal`, :meth:`half_cauchy`,
    :meth:`half_student_t`, :meth:`uniform`, :meth:`log_normal`, :meth:`turner`) or
    :meth:`from_string`; the fields are plain data.

    Parameters
    ----------
    family : str
        One of ``"half-normal"``, ``"half-cauchy"``, ``"half-student-t"``, ``"uniform"``,
        ``"log-normal"``. (The Turner et al. priors are log-normal on tau.)
    params : tuple of (str, float)
        Parameters in the order listed in the module docstring, e.g. ``(("scale", 0.5),)``.
    label : str
        Human-readable description (source of the prior, for tables and plots). Not compared:
        two priors are equal when their family and parameters are.
    """

    family: str
    params: tuple[tuple[str, float], ...]
    label: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.family not in _TAU_PARAM_NAMES:
            raise PriorError(
                f"unknown tau prior family {self.family!r}; expected one of "
                f"{', '.join(_TAU_PARAM_NAMES)}"
            )
        names = tuple(n for n, _ in self.params)
        if names != _TAU_PARAM_NAMES[self.family]:
            raise PriorError(
                f"{self.family} prior needs parameters {_TAU_PARAM_NAMES[self.family]}, got {names}"
            )
        p = dict(self.params)
        fam = self.family
        if fam in ("half-normal", "half-cauchy"):
            _positive("scale", p["scale"], fam)
        elif fam == "half-student-t":
            _positive("scale", p["scale"], fam)
            _positive("nu", p["nu"], fam)
        elif fam == "uniform":
            lo = _finite("lower", p["lower"], fam)
            hi = _finite("upper", p["upper"], fam)
            if lo < 0 or hi <= lo:
                raise PriorError(
                    f"uniform prior on tau needs 0 <= lower < upper, got lower={lo}, upper={hi}"
                )
        elif fam == "log-normal":
            _finite("meanlog", p["meanlog"], fam)
            _positive("sdlog", p["sdlog"], fam)
        # normalise the values to float, keeping the frozen dataclass immutable
        object.__setattr__(self, "params", tuple((n, float(v)) for n, v in self.params))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def half_normal(cls, scale: float) -> TauPrior:
        """Half-normal prior, tau = |X| with X ~ N(0, scale^2)."""
        return cls("half-normal", *_labelled("half-normal", scale=scale))

    @classmethod
    def half_cauchy(cls, scale: float) -> TauPrior:
        """Half-Cauchy prior with the given scale (median = scale)."""
        return cls("half-cauchy", *_labelled("half-Cauchy", scale=scale))

    @classmethod
    def half_student_t(cls, scale: float, nu: float) -> TauPrior:
        """Half-Student-t prior: tau = scale * |T|, T ~ t with ``nu`` degrees of freedom."""
        return cls("half-student-t", *_labelled("half-Student-t", scale=scale, nu=nu))

    @classmethod
    def uniform(cls, lower: float, upper: float) -> TauPrior:
        """Uniform prior on tau over [lower, upper], 0 <= lower < upper."""
        return cls("uniform", *_labelled("uniform", named=False, lower=lower, upper=upper))

    @classmethod
    def improper_uniform(cls) -> TauPrior:
        """The improper uniform prior on tau, constant on [0, inf) (bayesmeta's "uniform")."""
        return cls("improper-uniform", (), "uniform(0, inf) (improper)")

    @classmethod
    def jeffreys(cls) -> TauPrior:
        """bayesmeta's improper "Jeffreys" prior, ``sqrt(sum_i (tau / (s_i^2 + tau^2))^2)``.

        Its density depends on the standard errors of the analysis (:meth:`log_density`).
        """
        return cls("jeffreys", (), "Jeffreys (improper)")

    @classmethod
    def log_normal(cls, meanlog: float, sdlog: float) -> TauPrior:
        """Log-normal prior on tau itself: log(tau) ~ N(meanlog, sdlog^2)."""
        return cls("log-normal", *_labelled("log-normal", meanlog=meanlog, sdlog=sdlog))

    @classmethod
    def turner(cls, outcome_type: str, comparison_type: str) -> TauPrior:
        """Empirical prior of Turner et al. (2015, Stat Med 34:984-998, Table IV).

        Turner et al. give log(tau^2) ~ N(m, s^2) for log odds ratios; on tau this is
        log(tau) ~ N(m/2, (s/2)^2), a log-normal prior.

        Parameters
        ----------
        outcome_type : str
            An id of :data:`TURNER_OUTCOME_TYPES` (e.g. ``"adverse_events"``), Turner's
            wording (``"adverse events"``) or a unique prefix of either.
        comparison_type : str
            An id of :data:`TURNER_COMPARISON_TYPES` (e.g. ``"pharma_vs_placebo"``), Turner's
            wording or a unique prefix.

        Examples
        --------
        >>> TauPrior.turner("adverse_events", "pharma_vs_placebo").params
        (('meanlog', -0.935), ('sdlog', 0.76))
        """
        o = _match_key(outcome_type, TURNER_OUTCOME_TYPES, "outcome type")
        c = _match_key(comparison_type, TURNER_COMPARISON_TYPES, "comparison type")
        m, s = TURNER_TABLE[(o, c)]
        label = (
            f"Turner et al. 2015 ({TURNER_OUTCOME_TYPES[o]}; {TURNER_COMPARISON_TYPES[c]}): "
            f"log tau^2 ~ N({m:.2f}, {s:.2f}^2)"
        )
        return cls("log-normal", (("meanlog", m / 2.0), ("sdlog", s / 2.0)), label)

    @classmethod
    def from_spec(cls, family: str, params: Mapping[str, float]) -> TauPrior:
        """Build from a family name and a parameter mapping (the form of the defaults registry)."""
        fam = _TAU_FAMILY_ALIASES.get(str(family).strip().lower().replace("_", "-"))
        if str(family).strip().lower() == "improper-uniform":
            fam = "uniform"
        if fam is None:
            raise PriorError(f"unknown tau prior family {family!r}; accepted forms: {_TAU_FORMS}")
        if fam == "uniform" and not params:
            return cls.improper_uniform()
        if fam == "jeffreys":
            if params:
                raise PriorError(f"the jeffreys prior takes no parameters, got {sorted(params)}")
            return cls.jeffreys()
        if fam == "turner":
            try:
                return cls.turner(params["outcome_type"], params["comparison_type"])
            except KeyError:
                raise PriorError(
                    "turner prior needs parameters 'outcome_type' and 'comparison_type'"
                ) from None
        names = _TAU_PARAM_NAMES[fam]
        missing = [n for n in names if n not in params]
        extra = [n for n in params if n not in names]
        if missing or extra:
            raise PriorError(
                f"{fam} prior needs parameters {list(names)}; missing {missing}, unexpected {extra}"
            )
        ctor = {
            "half-normal": cls.half_normal,
            "half-cauchy": cls.half_cauchy,
            "half-student-t": cls.half_student_t,
            "uniform": cls.uniform,
            "log-normal": cls.log_normal,
        }[fam]
        return ctor(*(params[n] for n in names))

    @classmethod
    def from_string(cls, text: str) -> TauPrior:
        """Parse ``"family:p1,p2"``, e.g. ``"half-normal:0.5"`` or ``"turner:adverse_events,pharma_vs_placebo"``.

        The one prior grammar of the package (command line, plans, configuration). Family names
        ignore case and accept ``_`` for ``-`` and the aliases ``half-t``, ``halfnormal``,
        ``halfcauchy``, ``halfstudentt`` and ``lognormal``. :meth:`to_string` writes a prior
        back in this grammar.

        Raises
        ------
        PriorError
            On unknown family, wrong number of parameters or invalid values; the message says
            what is wrong and the form to write.
        """
        family, parts = _split(text, "tau")
        form = _FORMS[family]
        if family == "uniform" and parts is None:
            return cls.improper_uniform()
        if family == "jeffreys":
            if parts is not None:
                raise PriorError(
                    f"cannot read tau prior {text!r}: jeffreys takes no parameters; write jeffreys"
                )
            return cls.jeffreys()
        if parts is None:
            raise PriorError(
                f"cannot read tau prior {text!r}: {family} needs parameters; write {form}"
            )
        if family == "turner":
            if len(parts) != 2 or not all(parts):
                raise PriorError(
                    f"cannot read tau prior {text!r}: turner needs an outcome type and a "
                    f"comparison type separated by one comma: {form}, e.g. "
                    "'turner:signs_symptoms,pharma_vs_placebo'"
                )
            return cls.turner(parts[0], parts[1])
        names = _TAU_PARAM_NAMES[family]
        values = _numbers(text, parts, family, names)
        try:
            return cls.from_spec(family, dict(zip(names, values, strict=True)))
        except PriorError as exc:
            raise PriorError(f"cannot read tau prior {text!r}: {exc}; write {form}") from None

    @classmethod
    def coerce(cls, value: TauPrior | str | None) -> TauPrior:
        """Return ``value`` as a :class:`TauPrior`: ``None`` gives the default, text is parsed."""
        return _coerce(value, TauPrior, default_tau_prior, "tau", _TAU_FORMS)

    def to_string(self) -> str:
        """The prior in the grammar of :meth:`from_string`, which reads it back to an equal prior.

        A Turner et al. prior is written with its type ids (``"turner:OUTCOME,COMPARISON"``);
        numbers are written in full precision.

        Examples
        --------
        >>> TauPrior.from_string("half-t:0.5,3").to_string()
        'half-student-t:0.5,3'
        """
        turner = self._turner_key()
        if turner is not None:
            return f"turner:{turner[0]},{turner[1]}"
        if not self.params:
            return _FORMS[self.family]
        return self.family + ":" + ",".join(_num(v) for _, v in self.params)

    def __str__(self) -> str:
        return self.to_string()

    def _turner_key(self) -> tuple[str, str] | None:
        if self.family != "log-normal" or not self.label.startswith("Turner et al. 2015 ("):
            return None
        for o, c in TURNER_TABLE:
            ref = TauPrior.turner(o, c)
            if ref == self and ref.label == self.label:
                return o, c
        return None

    # ------------------------------------------------------------------ accessors
    @property
    def param_dict(self) -> Mapping[str, float]:
        """Read-only mapping of the parameters."""
        return MappingProxyType(dict(self.params))

    @property
    def is_proper(self) -> bool:
        """False for the improper priors (``uniform`` without bounds, ``jeffreys``)."""
        return self.family not in IMPROPER_TAU_FAMILIES

    @property
    def tail_exponent(self) -> float:
        """``a`` with ``p(tau) ~ tau^-a`` as tau -> inf (``inf`` for lighter tails).

        0 for the improper uniform prior, 1 for the Jeffreys prior, 2 for the half-Cauchy,
        ``nu + 1`` for the half-Student-t; used by :func:`check_proper_posterior`.
        """
        return {
            "improper-uniform": 0.0,
            "jeffreys": 1.0,
            "half-cauchy": 2.0,
            "half-student-t": dict(self.params).get("nu", 0.0) + 1.0,
        }.get(self.family, math.inf)

    def _refuse_improper(self, what: str) -> None:
        if not self.is_proper:
            raise PriorError(
                f"the {self.to_string()} prior on tau is improper: it has no {what}; use a "
                "proper prior (e.g. half-normal:0.5 or uniform:0,2)"
            )

    def log_density(self, tau: Any, sei: Any) -> np.ndarray:
        """Log density of tau for an analysis with standard errors ``sei`` (k,).

        The same as :meth:`logpdf` for every family but the Jeffreys prior, whose
        (unnormalised) density depends on the standard errors.
        """
        s = np.asarray(sei, dtype=float).reshape(1, -1)
        t = np.asarray(tau, dtype=float)
        return log_tau_density(self, t.reshape(-1), s**2, np.ones(s.shape, bool))[0].reshape(
            t.shape
        )

    def __getitem__(self, name: str) -> float:
        return dict(self.params)[name]

    def __repr__(self) -> str:
        args = "".join(f", {n}={_fmt(v)}" for n, v in self.params)
        generic = self.label == "" or self.label.split("(")[0].lower() == self.family
        lab = "" if generic or not self.params else f", label={self.label!r}"
        return f"TauPrior({self.family!r}{args}{lab})"

    def describe(self) -> str:
        """One line of text: the label, the prior median and 95% interval of tau."""
        if not self.is_proper:
            return f"tau ~ {self.label}; improper, no prior quantiles"
        lo, med, hi = self.ppf(np.array([0.025, 0.5, 0.975]))
        return (
            f"tau ~ {self.label or self.family}; prior median {med:.3g}, "
            f"95% interval [{lo:.3g}, {hi:.3g}]"
        )

    # ------------------------------------------------------------------ distribution
    # Closed forms (bayesmtor._special, NumPy only): the exact engine evaluates the prior density on every
    # quadrature node of every analysis, and building scipy.stats distributions per call (and
    # importing scipy.stats) cost more than the quadrature itself.
    def logpdf(self, tau: Any) -> np.ndarray:
        """Log density of tau (``-inf`` outside the support; unnormalised for the improper
        uniform prior; the Jeffreys prior needs the data: :meth:`log_density`)."""
        t = np.asarray(tau, dtype=float)
        if self.family == "improper-uniform":
            return np.where(t >= 0, 0.0, -np.inf)
        if self.family == "jeffreys":
            raise PriorError(
                "the Jeffreys prior on tau depends on the standard errors of the analysis; "
                "evaluate it with log_density(tau, sei)"
            )
        fam = self.family
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if fam == "half-normal":
                s = self["scale"]
                out = 0.5 * math.log(2.0 / math.pi) - math.log(s) - 0.5 * (t / s) ** 2
            elif fam == "half-cauchy":
                s = self["scale"]
                out = math.log(2.0 / (math.pi * s)) - np.log1p((t / s) ** 2)
            elif fam == "half-student-t":
                s, nu = self["scale"], self["nu"]
                const = (
                    math.log(2.0)
                    + math.lgamma((nu + 1.0) / 2.0)
                    - math.lgamma(nu / 2.0)
                    - 0.5 * math.log(nu * math.pi)
                    - math.log(s)
                )
                out = const - 0.5 * (nu + 1.0) * np.log1p((t / s) ** 2 / nu)
            elif fam == "uniform":
                lo, hi = self["lower"], self["upper"]
                inside = (t >= lo) & (t <= hi)
                return np.where(inside, -math.log(hi - lo), -np.inf)
            else:  # log-normal
                m, sd = self["meanlog"], self["sdlog"]
                lt = np.log(np.where(t > 0, t, 1.0))
                out = -lt - math.log(sd * math.sqrt(2.0 * math.pi)) - 0.5 * ((lt - m) / sd) ** 2
                return np.where(t > 0, out, -np.inf)
            return np.where(t >= 0, out, -np.inf)

    def pdf(self, tau: Any) -> np.ndarray:
        """Density of tau."""
        return np.exp(self.logpdf(tau))

    def cdf(self, tau: Any) -> np.ndarray:
        """Cumulative distribution function of tau."""
        self._refuse_improper("CDF")
        t = np.asarray(tau, dtype=float)
        fam = self.family
        tp = np.maximum(t, 0.0)
        if fam == "half-normal":
            out = special.erf(tp / (self["scale"] * math.sqrt(2.0)))
        elif fam == "half-cauchy":
            out = (2.0 / math.pi) * np.arctan(tp / self["scale"])
        elif fam == "half-student-t":
            out = 2.0 * special.stdtr(self["nu"], tp / self["scale"]) - 1.0
        elif fam == "uniform":
            lo, hi = self["lower"], self["upper"]
            return np.clip((t - lo) / (hi - lo), 0.0, 1.0)
        else:  # log-normal
            with np.errstate(divide="ignore"):
                z = (np.log(tp) - self["meanlog"]) / self["sdlog"]
            out = special.ndtr(z)
        return np.where(t > 0, out, 0.0)

    def ppf(self, q: Any) -> np.ndarray:
        """Quantile function of tau (vectorised)."""
        self._refuse_improper("quantiles")
        qq = np.asarray(q, dtype=float)
        fam = self.family
        if fam == "half-normal":
            return self["scale"] * special.ndtri((1.0 + qq) / 2.0)
        if fam == "half-cauchy":
            return self["scale"] * np.tan(np.pi * qq / 2.0)
        if fam == "half-student-t":
            return self["scale"] * special.stdtrit(self["nu"], (1.0 + qq) / 2.0)
        if fam == "uniform":
            return self["lower"] + qq * (self["upper"] - self["lower"])
        return np.exp(self["meanlog"] + self["sdlog"] * special.ndtri(qq))

    def rvs(self, size: int | tuple[int, ...], rng: np.random.Generator | int | None) -> np.ndarray:
        """Random draws of tau using ``rng`` (a Generator or a seed)."""
        gen = np.random.default_rng(rng)
        return self.ppf(gen.uniform(size=size))

    def mean(self) -> float:
        """Prior mean of tau (``inf`` where it does not exist)."""
        self._refuse_improper("mean")
        p = dict(self.params)
        fam = self.family
        if fam == "half-normal":
            return p["scale"] * math.sqrt(2.0 / math.pi)
        if fam == "half-cauchy":
            return math.inf
        if fam == "half-student-t":
            nu = p["nu"]
            if nu <= 1:
                return math.inf
            return (
                2.0
                * p["scale"]
                * math.sqrt(nu / math.pi)
                * math.exp(math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2))
                / (nu - 1)
            )
        if fam == "uniform":
            return (p["lower"] + p["upper"]) / 2.0
        return math.exp(p["meanlog"] + p["sdlog"] ** 2 / 2.0)

    # ------------------------------------------------------------------ PyMC
    def to_pymc(self, name: str) -> Any:
        """Create the matching PyMC random variable in the current model context.

        PyMC is imported here only, so that code paths that never build a PyMC model do not
        pay for (or depend on) importing it.
        """
        import pymc as pm  # lazy on purpose

        p = dict(self.params)
        fam = self.family
        if fam == "improper-uniform":
            return pm.HalfFlat(name)
        if fam == "jeffreys":
            raise PriorError(
                "the Jeffreys prior on tau is available on the exact engine only (--engine exact)"
            )
        if fam == "half-normal":
            return pm.HalfNormal(name, sigma=p["scale"])
        if fam == "half-cauchy":
            return pm.HalfCauchy(name, beta=p["scale"])
        if fam == "half-student-t":
            return pm.HalfStudentT(name, nu=p["nu"], sigma=p["scale"])
        if fam == "uniform":
            return pm.Uniform(name, lower=p["lower"], upper=p["upper"])
        return pm.LogNormal(name, mu=p["meanlog"], sigma=p["sdlog"])


@dataclass(frozen=True)
class MuPrior:
    """Prior distribution of the overall effect ``mu``: normal or (improper) flat.

    Parameters
    ----------
    family : str
        ``"normal"`` or ``"flat"``.
    params : tuple of (str, float)
        ``(("mean", M), ("sd", S))`` for normal, ``()`` for flat.
    label : str
        Human-readable description; not compared.
    """

    family: str
    params: tuple[tuple[str, float], ...] = ()
    label: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.family == "normal":
            names = tuple(n for n, _ in self.params)
            if names != ("mean", "sd"):
                raise PriorError(f"normal prior on mu needs parameters ('mean', 'sd'), got {names}")
            p = dict(self.params)
            _finite("mean", p["mean"], "normal")
            _positive("sd", p["sd"], "normal")
            object.__setattr__(self, "params", tuple((n, float(v)) for n, v in self.params))
        elif self.family == "flat":
            if self.params:
                raise PriorError("flat prior on mu takes no parameters")
        else:
            raise PriorError(
                f"unknown mu prior family {self.family!r}; accepted forms: {_MU_FORMS}"
            )

    @classmethod
    def normal(cls, mean: float, sd: float) -> MuPrior:
        """Normal prior N(mean, sd^2) on mu."""
        return cls("normal", *_labelled("normal", mean=mean, sd=sd))

    @classmethod
    def flat(cls) -> MuPrior:
        """Improper uniform prior on the real line."""
        return cls("flat", (), "flat (improper uniform)")

    @classmethod
    def from_spec(cls, family: str, params: Mapping[str, float] | None) -> MuPrior:
        """Build from a family name and parameter mapping (the defaults registry form)."""
        fam = str(family).strip().lower()
        if fam == "flat":
            return cls.flat()
        if fam == "normal":
            params = params or {}
            if set(params) != {"mean", "sd"}:
                raise PriorError(
                    f"normal prior on mu needs parameters 'mean' and 'sd', got {sorted(params)}"
                )
            return cls.normal(params["mean"], params["sd"])
        raise PriorError(f"unknown mu prior family {family!r}; accepted forms: {_MU_FORMS}")

    @classmethod
    def from_string(cls, text: str) -> MuPrior:
        """Parse ``"normal:M,S"`` or ``"flat"`` (the grammar of :meth:`TauPrior.from_string`)."""
        family, parts = _split(text, "mu")
        if family == "flat":
            if parts is not None:
                raise PriorError(
                    f"cannot read mu prior {text!r}: flat takes no parameters; "
                    f"accepted forms: {_MU_FORMS}"
                )
            return cls.flat()
        if parts is None:
            raise PriorError(
                f"cannot read mu prior {text!r}: normal needs parameters; write normal:MEAN,SD"
            )
        mean, sd = _numbers(text, parts, "normal", ("mean", "sd"))
        try:
            return cls.normal(mean, sd)
        except PriorError as exc:
            raise PriorError(
                f"cannot read mu prior {text!r}: {exc}; write normal:MEAN,SD"
            ) from None

    @classmethod
    def coerce(cls, value: MuPrior | str | None) -> MuPrior:
        """Return ``value`` as a :class:`MuPrior`: ``None`` gives the default, text is parsed."""
        return _coerce(value, MuPrior, default_mu_prior, "mu", _MU_FORMS)

    def to_string(self) -> str:
        """The prior in the grammar of :meth:`from_string` (``"normal:M,S"`` or ``"flat"``)."""
        if self.is_flat:
            return "flat"
        return f"normal:{_num(self.mean)},{_num(self.sd)}"

    def __str__(self) -> str:
        return self.to_string()

    @property
    def is_flat(self) -> bool:
        """True for the improper flat prior."""
        return self.family == "flat"

    @property
    def param_dict(self) -> Mapping[str, float]:
        """Read-only mapping of the parameters."""
        return MappingProxyType(dict(self.params))

    @property
    def mean(self) -> float:
        """Prior mean (``nan`` for the flat prior)."""
        return dict(self.params)["mean"] if not self.is_flat else math.nan

    @property
    def sd(self) -> float:
        """Prior standard deviation (``inf`` for the flat prior)."""
        return dict(self.params)["sd"] if not self.is_flat else math.inf

    def __repr__(self) -> str:
        if self.is_flat:
            return "MuPrior('flat')"
        return f"MuPrior('normal', mean={_fmt(self.mean)}, sd={_fmt(self.sd)})"

    def describe(self) -> str:
        """One line of text describing the prior."""
        if self.is_flat:
            return "mu ~ flat (improper uniform on the real line)"
        z = z_quantile(0.95)
        lo, hi = self.mean - z * self.sd, self.mean + z * self.sd
        return f"mu ~ {self.label or 'normal'}; 95% prior interval [{lo:.3g}, {hi:.3g}]"

    def logpdf(self, mu: Any) -> np.ndarray:
        """Log density (0 everywhere for the flat prior, i.e. an unnormalised constant)."""
        x = np.asarray(mu, dtype=float)
        if self.is_flat:
            return np.zeros_like(x)
        z = (x - self.mean) / self.sd
        return -0.5 * z * z - math.log(self.sd * math.sqrt(2.0 * math.pi))

    def to_pymc(self, name: str) -> Any:
        """Create the matching PyMC random variable in the current model context."""
        import pymc as pm  # lazy on purpose

        if self.is_flat:
            return pm.Flat(name)
        return pm.Normal(name, mu=self.mean, sigma=self.sd)


def default_tau_prior() -> TauPrior:
    """The tau prior registered in :data:`bayesmtor.config.defaults` (``"tau_prior"``)."""
    return _registered(TauPrior, "tau_prior")


def default_mu_prior() -> MuPrior:
    """The mu prior registered in :data:`bayesmtor.config.defaults` (``"mu_prior"``)."""
    return _registered(MuPrior, "mu_prior")


def default_prior_problem(
    measure: str | None,
    tau_prior: Any,
    mu_prior: Any,
    names: tuple[str, str] = ("tau_prior", "mu_prior"),
) -> str | None:
    """Why the default priors do not fit ``measure``, or ``None`` when they may be used.

    The registered defaults (config ``tau_prior``, ``mu_prior``) are set for unit-free effects:
    log ratios and standardised mean differences (an SMD of d is about a log odds ratio of
    ``pi d / sqrt(3)``, Chinn 2000, Stat Med 19:3127-3131, so half-normal(0.5) on tau of an SMD
    is about half-normal(0.9) on tau of a log OR, within the range of weakly informative
    priors studied for log ratios). A mean difference (``"MD"``) is in the units of its outcome
    (mmHg, points of a score, days), where those scales mean nothing, so both priors must be
    given -- as arguments (``names``) or by a changed config default.
    """
    if measure != "MD":
        return None
    missing = [
        name
        for name, value, key in zip(
            names, (tau_prior, mu_prior), ("tau_prior", "mu_prior"), strict=True
        )  # fmt: skip
        if value is None and config.get(key) == config.REGISTRY[key].default
    ]
    if not missing:
        return None
    return (
        "a mean difference (MD) is in the units of its outcome, but the default priors (tau ~ "
        "half-normal(0.5), mu ~ normal(0, 4)) are scaled for log ratios and SMDs, where they "
        f"would be arbitrary here; give {' and '.join(missing)} on the outcome's scale (e.g. "
        "tau ~ half-normal:S with S a plausible between-study SD of the effect, mu ~ normal:0,M "
        "with M wider than any plausible effect), or pool the SMD instead."
    )


def _registered(kind: type[_P], key: str) -> _P:
    """The prior of the defaults registry under ``key``: a prior, its text, or
    ``(family, params)``."""
    spec = config.get(key)
    if isinstance(spec, kind):
        return spec
    if isinstance(spec, str):
        return kind.from_string(spec)
    family, params = spec
    return kind.from_spec(family, params)


def _coerce(
    value: _P | str | None, kind: type[_P], default: Callable[[], _P], what: str, forms: str
) -> _P:
    """``value`` as a prior of ``kind``: ``None`` gives ``default()``, text is parsed
    (``what``: "tau" or "mu"; ``forms``: the accepted forms, for the message)."""
    if value is None:
        return default()
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        return kind.from_string(value)
    raise PriorError(
        f"{what} prior must be a {kind.__name__}, a string ({forms}) or None, got "
        f"{type(value).__name__}"
    )


def _labelled(name: str, *, named: bool = True, **params: float) -> tuple[Any, str]:
    """The ``params`` of a prior constructor, in order, and its label ``name(p1, p2)``, each
    value written as ``key=value`` when ``named``."""
    shown = (f"{k}={_fmt(float(v))}" if named else _fmt(float(v)) for k, v in params.items())
    return tuple(params.items()), f"{name}({', '.join(shown)})"


def log_tau_density(tp: TauPrior, tau: np.ndarray, v: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Log prior density of tau at ``tau`` ((n,) shared or (g, n) per analysis) for analyses
    with variances ``v`` (g, k) and study mask ``mask`` (g, k): (g, n) for the Jeffreys prior
    and for per-analysis ``tau``, (1, n) otherwise."""
    tau = np.asarray(tau, dtype=float)
    tau = tau[None, :] if tau.ndim == 1 else tau
    if tp.family != "jeffreys":
        return tp.logpdf(tau)
    t = np.where(np.isfinite(tau), tau, 0.0)[:, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(mask[:, None, :], t / (v[:, None, :] + t * t), 0.0)
        top = r.max(axis=2)
        scaled = np.where(top[:, :, None] > 0, r / np.where(top > 0, top, 1.0)[:, :, None], 0.0)
        out = np.log(top) + 0.5 * np.log((scaled * scaled).sum(axis=2))
    return np.where(np.isfinite(tau) & (tau > 0), out, -np.inf)


def check_proper_posterior(tau_prior: TauPrior, mu_prior: MuPrior, k: int) -> None:
    """Refuse a prior and a number of studies ``k`` that give an improper posterior.

    Derivation. Let ``L(tau) = p(y | tau)``, mu integrated out. ``L`` is continuous and bounded
    on [0, inf) (every marginal variance is at least min s_i^2 > 0), and every prior density
    here is integrable near tau = 0, so the posterior is proper exactly when the integral of
    ``p(tau) L(tau)`` converges at infinity. As tau -> inf, with weights
    ``w_i = 1 / (s_i^2 + tau^2) ~ tau^-2``:

    * normal mu prior: ``y ~ N(m 1, diag(s^2 + tau^2) + s0^2 1 1')``, whose determinant
      grows like ``tau^(2k)``, so ``L(tau) ~ c tau^-k``;
    * flat mu prior: ``L(tau) = (2 pi)^(-(k-1)/2) prod_i w_i^(1/2) (sum_i w_i)^(-1/2)
      exp(-Q(tau)/2)``, with ``prod w^(1/2) ~ tau^-k``, ``(sum w)^(-1/2) ~ tau / sqrt(k)`` and
      ``Q -> 0``, so ``L(tau) ~ c tau^-(k-1)`` (``L = 1`` for k = 1).

    With ``p(tau) ~ tau^-a`` (:attr:`TauPrior.tail_exponent`: a = 0 for the improper uniform,
    1 for the Jeffreys prior, whose terms ``tau / (s_i^2 + tau^2) ~ 1 / tau``), the integral
    converges iff ``a + k > 1`` (normal mu) or ``a + k - 1 > 1`` (flat mu). A proper tau prior
    always gives a proper posterior (``L`` is bounded), and mu given tau is then normal for
    k >= 1. Hence the smallest k: uniform + flat mu 3, uniform + normal mu 2, Jeffreys + flat
    mu 2, Jeffreys + normal mu 1.

    Raises
    ------
    PriorError
        When the posterior would be improper; the message names the priors and the number of
        studies needed.
    """
    if tau_prior.is_proper:
        return
    shift = 1 if mu_prior.is_flat else 0
    need = int(math.floor(1 + shift - tau_prior.tail_exponent)) + 1
    if k < need:
        raise PriorError(
            f"the posterior is improper with tau ~ {tau_prior.to_string()} and "
            f"mu ~ {mu_prior.to_string()} for k = {k} "
            f"stud{'y' if k == 1 else 'ies'}: these priors need at least {need} studies; use a "
            "proper tau prior (e.g. half-normal:0.5)"
            + (" or a normal mu prior" if mu_prior.is_flat else "")
        )
