"""The frozen dataclasses of an analysis plan: :class:`Plan` and its specs.

Construction validates (the same checks and messages as for a file, see
:mod:`bayesmtor.plans.validate`); :meth:`Plan.to_toml` writes the plan back as TOML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bayesmtor.errors import PlanError
from bayesmtor.plans.validate import SCHEMA_VERSION, _outcome_overlaps, _Validator

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from bayesmtor.bayes.priors import MuPrior, TauPrior


# --------------------------------------------------------------------------------------------
# Dataclasses
# --------------------------------------------------------------------------------------------


class _FieldTable:
    """A spec whose TOML table is its dataclass fields, in declaration order."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict in TOML key order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class AnalysisSpec(_FieldTable):
    """One ``[[analysis]]`` table, with the engine choices resolved.

    Attributes
    ----------
    outcome : str
        ``"orr"``, ``"cbr"``, ``"pfs"``, ``"ae_any:<event>"``, ``"ae_grade34:<event>"``, or a
        wildcard ``"ae_any:*"`` / ``"ae_grade34:*"`` (every event available in the data).
    comparison : str
        A comparison id (see ``COMPARISONS``) or ``"*"`` (every comparison with the outcome).
    measure : str
        ``"RR"``, ``"OR"``, ``"RD"`` (count outcomes) or ``"HR"`` (``pfs`` only).
    likelihood : str
        ``"normal-normal"``, ``"binomial-normal"`` or ``"multilevel"``.
    bayes : str
        Bayesian engine for this analysis: ``"exact"`` or ``"mcmc"``.
    check_with_mcmc : bool
        Also fit by MCMC and compare with the exact posterior (exact engine only).
    mods : tuple of str
        Moderators (study-table columns such as ``"jadad_total"`` or ``"setting"``): a
        meta-regression across every comparison matching ``comparison`` (an id, ``"*"`` or a
        pattern such as ``"everolimus_*"``), frequentist and exact Bayesian
        (:mod:`bayesmtor.pipeline.regression`). Empty for a plain analysis.
    """

    outcome: str
    comparison: str
    measure: str
    likelihood: str = "normal-normal"
    bayes: str = "exact"
    check_with_mcmc: bool = False
    mods: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """A compact identifier, ``outcome|comparison|measure|likelihood``."""
        key = f"{self.outcome}|{self.comparison}|{self.measure}|{self.likelihood}"
        return key + (f"|mods={','.join(self.mods)}" if self.mods else "")

    @property
    def is_wildcard(self) -> bool:
        """True if the outcome or the comparison is a wildcard to expand against the data."""
        return self.outcome.endswith(":*") or self.comparison == "*"

    def matches(self, outcome: str, comparison: str) -> bool:
        """Whether a concrete ``(outcome, comparison)`` of the data falls under this analysis."""
        return _outcome_overlaps(self.outcome, outcome) and self.comparison in ("*", comparison)

    def __repr__(self) -> str:
        check = ", check_with_mcmc" if self.check_with_mcmc else ""
        mods = f", mods={list(self.mods)}" if self.mods else ""
        return (
            f"AnalysisSpec({self.outcome} | {self.comparison} | {self.measure} | "
            f"{self.likelihood} | {self.bayes}{check}{mods})"
        )


@dataclass(frozen=True)
class PriorSpec:
    """The priors of a plan (``[priors]``), as prior objects parsed once when the plan is built.

    A :class:`Plan` built in code may give prior strings here; the plan stores the parsed
    objects (:meth:`~bayesmtor.bayes.priors.TauPrior.from_string`, the one prior grammar).

    Attributes
    ----------
    tau : TauPrior
        Prior on the between-trial SD tau, e.g. ``half-normal:0.5``.
    mu : MuPrior
        Prior on the pooled log effect mu, e.g. ``normal:0,4`` or ``flat``.
    tau_class : TauPrior
        Prior on the between-class SD of the multilevel model.
    """

    tau: TauPrior
    mu: MuPrior
    tau_class: TauPrior

    def to_dict(self) -> dict[str, Any]:
        """Plain dict in TOML key order, each prior as its string (``to_string()``)."""
        return {"tau": str(self.tau), "mu": str(self.mu), "tau_class": str(self.tau_class)}


@dataclass(frozen=True)
class EngineSpec(_FieldTable):
    """Plan-wide Bayesian engine (``[engine]``); ``[[analysis]]`` tables may override it."""

    bayes: str = "exact"
    check_with_mcmc: bool = False


@dataclass(frozen=True)
class MCMCSpec(_FieldTable):
    """NUTS settings (``[mcmc]``), used by ``bayes = "mcmc"`` and by ``check_with_mcmc``."""

    draws: int
    tune: int
    chains: int
    target_accept: float
    seed: int


@dataclass(frozen=True)
class FrequentistSpec(_FieldTable):
    """Frequentist cross-check (``[frequentist]``).

    ``method`` is a metafor ``rma`` method (``FE DL REML PM ML SJ HE``) or a RevMan/metafor
    ``rma.mh``/``rma.peto`` method (``MH PETO``). MH and Peto do not apply to hazard ratios: HR
    analyses are then pooled by fixed-effect inverse variance, as RevMan 5 does.
    """

    method: str = "REML"
    hksj: bool = False


@dataclass(frozen=True)
class SensitivitySpec:
    """Prior sensitivity sweep (``[sensitivity]``): every analysis is refitted per tau prior.

    ``tau_priors`` holds :class:`~bayesmtor.bayes.priors.TauPrior` objects (strings given in code
    are parsed when the :class:`Plan` is built).
    """

    tau_priors: tuple[TauPrior, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict in TOML key order, each prior as its string."""
        return {"tau_priors": [str(p) for p in self.tau_priors]}


@dataclass(frozen=True)
class Plan:
    """A validated analysis plan; build it with :func:`load_plan` or :func:`parse_plan`.

    Direct construction (or ``dataclasses.replace``) is validated too, with the same messages;
    the source is then reported as ``<Plan object>``.

    Attributes
    ----------
    name, description : str
        Identifier (``^[a-z0-9_]+$``) and one-paragraph purpose.
    unit : str
        ``"trial"`` or ``"report"`` (see ``models/README.md``).
    bolero2 : str or None
        How BOLERO-2 enters a ``unit = "trial"`` plan; ``None`` for ``unit = "report"``.
    ci_prob : float
        Interval probability for confidence, credible and prediction intervals alike.
    analyses : tuple of AnalysisSpec
    priors : PriorSpec
    engine : EngineSpec
    mcmc : MCMCSpec
    frequentist : FrequentistSpec
    sensitivity : SensitivitySpec or None
    source : Path or None
        File the plan was read from (not part of equality).
    """

    name: str
    description: str
    unit: str
    bolero2: str | None
    ci_prob: float
    analyses: tuple[AnalysisSpec, ...]
    priors: PriorSpec
    engine: EngineSpec
    mcmc: MCMCSpec
    frequentist: FrequentistSpec
    sensitivity: SensitivitySpec | None = None
    source: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # Same checks as for a file, so that dataclasses.replace() cannot build a bad plan.
        if not isinstance(self.analyses, tuple):
            object.__setattr__(self, "analyses", tuple(self.analyses))
        origin = str(self.source) if self.source is not None else "<Plan object>"
        raw = self.to_dict()
        # The validator takes prior objects as they are and parses prior strings.
        raw["priors"] = {k: getattr(self.priors, k) for k in ("tau", "mu", "tau_class")}
        if self.sensitivity is not None:
            raw["sensitivity"] = {"tau_priors": list(self.sensitivity.tau_priors)}
        norm = _Validator(origin, text=None).validate(raw)
        # Fill what validation resolves (default BOLERO-2 handling, float ci_prob, priors).
        object.__setattr__(self, "bolero2", norm["plan"].get("bolero2"))
        object.__setattr__(self, "ci_prob", norm["plan"]["ci_prob"])
        object.__setattr__(self, "priors", PriorSpec(**norm["priors"]))
        if self.sensitivity is not None:
            sens = SensitivitySpec(tuple(norm["sensitivity"]["tau_priors"]))
            object.__setattr__(self, "sensitivity", sens)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: Path | None = None) -> Plan:
        """Build a plan from the nested layout of :meth:`to_dict` (prior strings or objects);
        validated like a file."""
        p = data["plan"]
        sens = data.get("sensitivity")
        return cls(
            name=p["name"],
            description=p["description"],
            unit=p["unit"],
            bolero2=p.get("bolero2"),
            ci_prob=p["ci_prob"],
            analyses=tuple(
                AnalysisSpec(**{**a, "mods": tuple(a.get("mods", ()))}) for a in data["analysis"]
            ),
            priors=PriorSpec(**data["priors"]),
            engine=EngineSpec(**data["engine"]),
            mcmc=MCMCSpec(**data["mcmc"]),
            frequentist=FrequentistSpec(**data["frequentist"]),
            sensitivity=SensitivitySpec(tuple(sens["tau_priors"])) if sens is not None else None,
            source=source,
        )

    @property
    def uses_mcmc(self) -> bool:
        """True if any analysis samples with PyMC (``bayes = "mcmc"`` or ``check_with_mcmc``)."""
        return any(a.bayes == "mcmc" or a.check_with_mcmc for a in self.analyses)

    def to_dict(self) -> dict[str, Any]:
        """Nested plain dict with the TOML layout; every default is explicit."""
        plan: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "description": self.description,
            "unit": self.unit,
        }
        if self.bolero2 is not None:
            plan["bolero2"] = self.bolero2
        plan["ci_prob"] = self.ci_prob
        out: dict[str, Any] = {
            "plan": plan,
            "priors": _to_dict(self.priors),
            "engine": _to_dict(self.engine),
            "mcmc": _to_dict(self.mcmc),
            "frequentist": _to_dict(self.frequentist),
        }
        if self.sensitivity is not None:
            out["sensitivity"] = _to_dict(self.sensitivity)
        out["analysis"] = [_to_dict(a) for a in self.analyses]
        return out

    def to_toml(self) -> str:
        """TOML text that :func:`parse_plan` reads back into an equal plan."""
        data = self.to_dict()
        lines = [
            f"# Analysis plan '{self.name}' as run (schema version {SCHEMA_VERSION});",
            "# every default is written out. Schema: models/README.md of bayesmtor.",
        ]
        for table in ("plan", "priors", "engine", "mcmc", "frequentist", "sensitivity"):
            if table not in data:
                continue
            lines += ["", f"[{table}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in data[table].items()]
        for entry in data["analysis"]:
            lines += ["", "[[analysis]]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in entry.items()]
        return "\n".join(lines) + "\n"

    def summary(self) -> pd.DataFrame:
        """One row per analysis: outcome, comparison, measure, likelihood, bayes, check."""
        import pandas as pd

        rows = [
            {
                "analysis": i,
                "outcome": a.outcome,
                "comparison": a.comparison,
                "measure": a.measure,
                "likelihood": a.likelihood,
                "bayes": a.bayes,
                "check_with_mcmc": a.check_with_mcmc,
            }
            for i, a in enumerate(self.analyses, start=1)
        ]
        return pd.DataFrame(rows).set_index("analysis")

    def describe(self) -> str:
        """Multi-line, human-readable account of the plan."""
        out = [
            f"Plan '{self.name}': {self.description}",
            f"  unit: {self.unit}" + (f" (BOLERO-2: {self.bolero2})" if self.bolero2 else ""),
            f"  intervals: {self.ci_prob:g}",
            f"  priors: tau ~ {self.priors.tau}; mu ~ {self.priors.mu}"
            + (
                f"; tau_class ~ {self.priors.tau_class}"
                if any(a.likelihood == "multilevel" for a in self.analyses)
                else ""
            ),
            f"  frequentist: {self.frequentist.method}"
            + (" + HKSJ" if self.frequentist.hksj else ""),
        ]
        if self.uses_mcmc:
            m = self.mcmc
            out.append(
                f"  mcmc: {m.chains} chains x {m.draws} draws (tune {m.tune}), "
                f"target_accept {m.target_accept:g}, seed {m.seed}"
            )
        if self.sensitivity is not None:
            out.append("  sensitivity (tau): " + "; ".join(map(str, self.sensitivity.tau_priors)))
        out.append(f"  analyses ({len(self.analyses)}):")
        for i, a in enumerate(self.analyses, start=1):
            engine = a.bayes + (" + mcmc check" if a.check_with_mcmc else "")
            engine += f" meta-regression on {', '.join(a.mods)}" if a.mods else ""
            out.append(
                f"    {i:>2}. {a.outcome:<18} {a.comparison:<24} {a.measure:<3} "
                f"{a.likelihood:<16} {engine}"
            )
        return "\n".join(out)

    def __repr__(self) -> str:
        sens = (
            f", sensitivity={len(self.sensitivity.tau_priors)} tau priors"
            if self.sensitivity
            else ""
        )
        return (
            f"Plan(name={self.name!r}, unit={self.unit!r}, analyses={len(self.analyses)}, "
            f"engine={self.engine.bayes!r}, frequentist={self.frequentist.method!r}{sens})"
        )


def _to_dict(obj: Any) -> dict[str, Any]:
    to_dict = getattr(obj, "to_dict", None)
    if to_dict is None:
        raise PlanError(f"<Plan object>: expected a spec object, got {type(obj).__name__}")
    return to_dict()


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")  # pragma: no cover
