"""Validation of analysis plans: the schema's vocabulary, the prior strings and every key.

:class:`_Validator` collects every problem of one raw plan dict (from a TOML file or from a
:class:`~bayesmtor.plans.schema.Plan` built in code) and raises one
:class:`~bayesmtor.errors.PlanError` that names the file, the line and the key of each.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from bayesmtor import config
from bayesmtor.errors import BayesMTORError, PlanError
from bayesmtor.vocabulary import (
    BOLERO2_CHOICES,
    COMPARISONS,
    CONTINUOUS_MEASURES,
    COUNT_OUTCOMES,
    ENGINES,
    LIKELIHOODS,
    TIME_TO_EVENT_OUTCOMES,
    UNITS,
)
from bayesmtor.vocabulary import FE_METHODS as FIXED_EFFECT_METHODS
from bayesmtor.vocabulary import MEASURES as _ALL_MEASURES
from bayesmtor.vocabulary import METHODS as FREQ_METHODS

#: The only schema version this module reads and writes.
SCHEMA_VERSION = 1

# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------

# Names come from bayesmtor.vocabulary; a comparison may also be "*" (all of them).
AE_PREFIXES = ("ae_any", "ae_grade34")
#: Measures a plan may name: every measure but ``generic`` (a plan pools named outcomes) and
#: the continuous MD and SMD (the curated tables hold no means).
MEASURES = tuple(m for m in _ALL_MEASURES if m not in ("generic", *CONTINUOUS_MEASURES))

_NAME_RE = re.compile(r"^[a-z0-9_]+$")
_EVENT_RE = re.compile(r"^[a-z][a-z0-9_]*$")

_TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "plan": ("schema_version", "name", "description", "unit", "bolero2", "ci_prob"),
    "analysis": (
        *("outcome", "comparison", "measure", "likelihood", "bayes", "check_with_mcmc"),
        "mods",  # a meta-regression (bayesmtor.pipeline.regression)
    ),
    "priors": ("tau", "mu", "tau_class"),
    "engine": ("bayes", "check_with_mcmc"),
    "mcmc": ("draws", "tune", "chains", "target_accept", "seed"),
    "frequentist": ("method", "hksj"),
    "sensitivity": ("tau_priors",),
}
_TOP_LEVEL = tuple(_TABLE_KEYS)


# --------------------------------------------------------------------------------------------
# Priors: read by the one prior grammar, TauPrior.from_string / MuPrior.from_string
# --------------------------------------------------------------------------------------------

_PRIOR_EXAMPLE = {"tau": "'half-normal:0.5'", "mu": "'normal:0,4'"}


def _parse_prior(value: Any, kind: str) -> tuple[Any, str | None]:
    """The prior object for ``value`` (a prior string or a prior object), or what is wrong.

    ``kind`` is ``"tau"`` (also for ``tau_class``) or ``"mu"``. The parser is the one prior
    grammar of :mod:`bayesmtor.bayes.priors` (NumPy/SciPy only, never PyMC).
    """
    from bayesmtor.bayes.priors import MuPrior, TauPrior

    cls = MuPrior if kind == "mu" else TauPrior
    if isinstance(value, cls):
        return value, None
    if not isinstance(value, str):
        return None, f"must be a string such as {_PRIOR_EXAMPLE[kind]}, got {_type_name(value)}"
    try:
        return cls.from_string(value), None
    except (BayesMTORError, ValueError) as exc:
        return None, str(exc)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    names = {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "an array",
        dict: "a table",
    }
    return f"{names.get(type(value), type(value).__name__)} ({value!r})"


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _outcome_overlaps(a: str, b: str) -> bool:
    if a == b:
        return True
    pa, _, ea = a.partition(":")
    pb, _, eb = b.partition(":")
    return pa == pb and pa in AE_PREFIXES and "*" in (ea, eb)


class _Validator:
    """Collects every problem of one raw plan dict and raises one PlanError listing them."""

    def __init__(self, origin: str, text: str | None) -> None:
        self.origin = origin
        self.text = text
        self.problems: list[str] = []
        self._lines = _KeyLines(text) if text is not None else None

    # -- reporting ----------------------------------------------------------------------
    def add(self, key: tuple[Any, ...], message: str) -> None:
        label = _key_label(key)
        line = self._lines.find(key) if self._lines is not None else None
        where = f"line {line}: " if line else ""
        self.problems.append(f"{where}{label}: {message}")

    def raise_if_any(self) -> None:
        if not self.problems:
            return
        if len(self.problems) == 1:
            raise PlanError(
                f"{self.origin}, {self.problems[0]}"
                if self.problems[0].startswith("line ")
                else f"{self.origin}: {self.problems[0]}"
            )
        listing = "\n".join(f"  - {p}" for p in self.problems)
        raise PlanError(
            f"{self.origin}: {len(self.problems)} problems in the analysis plan:\n{listing}"
        )

    # -- typed getters --------------------------------------------------------------------
    def _get(
        self,
        table: Mapping[str, Any],
        key: tuple[Any, ...],
        kind: str,
        required: bool = False,
        default: Any = None,
    ) -> Any:
        name = key[-1]
        if name not in table:
            if required:
                self.add(key, f"required key is missing; add {name} = {_EXAMPLES.get(name, '...')}")
            return default
        value = table[name]
        ok = {
            "str": isinstance(value, str),
            "bool": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, int | float) and not isinstance(value, bool),
        }[kind]
        if not ok:
            wanted = {
                "str": "a string",
                "bool": "true or false",
                "int": "an integer",
                "float": "a number",
            }[kind]
            example = _EXAMPLES.get(name)
            self.add(
                key,
                f"must be {wanted}, got {_type_name(value)}"
                + (f"; e.g. {name} = {example}" if example else ""),
            )
            return default
        return float(value) if kind == "float" else value

    def _enum(
        self,
        table: Mapping[str, Any],
        key: tuple[Any, ...],
        allowed: tuple[str, ...],
        required: bool = False,
        default: str | None = None,
    ) -> str | None:
        value = self._get(table, key, "str", required=required, default=None)
        if value is None:
            return default
        if value not in allowed:
            hint = _did_you_mean(value, allowed)
            self.add(
                key,
                f"'{value}' is not allowed{hint}; use one of: "
                + ", ".join(f"'{a}'" for a in allowed),
            )
            return default
        return value

    def _table(self, raw: Mapping[str, Any], name: str, required: bool = False) -> dict[str, Any]:
        if name not in raw:
            if required:
                self.add((name,), f"the [{name}] table is missing")
            return {}
        value = raw[name]
        if not isinstance(value, dict):
            self.add((name,), f"must be a table [{name}], got {_type_name(value)}")
            return {}
        for k in value:
            if k not in _TABLE_KEYS[name]:
                self._unknown((name, k), _TABLE_KEYS[name], f"[{name}]")
        return value

    def _unknown(self, key: tuple[Any, ...], allowed: tuple[str, ...], where: str) -> None:
        name = str(key[-1])
        if name == "ci_prob" and key[0] == "frequentist":
            self.add(
                key,
                "ci_prob belongs in [plan]: it sets confidence, credible and "
                "prediction intervals alike",
            )
            return
        hint = _did_you_mean(name, allowed)
        self.add(key, f"unknown key in {where}{hint}; allowed keys: " + ", ".join(allowed))

    # -- the schema -------------------------------------------------------------------------
    def validate(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        for k, v in raw.items():
            if k in _TOP_LEVEL:
                continue
            owner = next((t for t, keys in _TABLE_KEYS.items() if k in keys), None)
            if owner is not None and not isinstance(v, dict):
                self.add(
                    (k,),
                    f"top-level key; it belongs inside the [{owner}] table"
                    if owner != "analysis"
                    else "top-level key; it belongs inside an [[analysis]] table",
                )
            elif isinstance(v, dict | list):
                hint = _did_you_mean(k, _TOP_LEVEL)
                self.add(
                    (k,),
                    f"unknown table [{k}]{hint}; allowed tables: "
                    + ", ".join(
                        "[[analysis]]" if t == "analysis" else f"[{t}]" for t in _TOP_LEVEL
                    ),
                )
            else:
                self._unknown((k,), _TOP_LEVEL, "the plan (top level)")

        out: dict[str, Any] = {}
        out["plan"] = self._plan(raw)
        out["priors"] = self._priors(raw)
        engine = self._engine(raw)
        out["engine"] = engine
        out["mcmc"] = self._mcmc(raw)
        out["frequentist"] = self._frequentist(raw)
        sens = self._sensitivity(raw)
        if sens is not None:
            out["sensitivity"] = sens
        out["analysis"] = self._analyses(raw, engine, out["frequentist"])
        self.raise_if_any()
        return out

    def _plan(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        t = self._table(raw, "plan", required=True)
        version = self._get(t, ("plan", "schema_version"), "int", default=SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            self.add(
                ("plan", "schema_version"),
                f"schema version {version} is not supported; "
                f"this bayesmtor reads schema_version = {SCHEMA_VERSION}",
            )
        name = self._get(t, ("plan", "name"), "str", required=True)
        if name is not None and not _NAME_RE.match(name):
            self.add(
                ("plan", "name"),
                f"'{name}' must match ^[a-z0-9_]+$ (lowercase letters, "
                f"digits, underscores), e.g. '{_slug(name)}'",
            )
        desc = self._get(t, ("plan", "description"), "str", required=True)
        if desc is not None and not desc.strip():
            self.add(("plan", "description"), "must not be empty; say what the plan is for")
        unit = self._enum(t, ("plan", "unit"), UNITS, required=True)
        bolero2 = self._enum(t, ("plan", "bolero2"), BOLERO2_CHOICES)
        if unit == "report" and "bolero2" in t:
            self.add(
                ("plan", "bolero2"),
                'only applies to unit = "trial": with unit = "report" '
                "every BOLERO-2 report and subgroup is its own study; remove bolero2 or set "
                'unit = "trial"',
            )
            bolero2 = None
        elif unit == "trial" and bolero2 is None:
            bolero2 = BOLERO2_CHOICES[0]
        ci_prob = self._get(t, ("plan", "ci_prob"), "float", default=None)
        if ci_prob is not None and not 0 < ci_prob < 1:
            self.add(
                ("plan", "ci_prob"),
                f"{ci_prob:g} is outside (0, 1); write a probability "
                "such as 0.95 (not a percentage)",
            )
        result = {
            "name": name,
            "description": desc,
            "unit": unit,
            "ci_prob": float(config.get("ci_prob", ci_prob)),
        }
        if bolero2 is not None:
            result["bolero2"] = bolero2
        return result

    def _priors(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        from bayesmtor.bayes.priors import default_mu_prior, default_tau_prior

        t = self._table(raw, "priors")
        out = {}
        defaults = {
            "tau": default_tau_prior,
            "mu": default_mu_prior,
            "tau_class": default_tau_prior,
        }
        for name, default in defaults.items():
            if name not in t:
                out[name] = default()
                continue
            prior, problem = _parse_prior(t[name], "mu" if name == "mu" else "tau")
            if problem:
                self.add(("priors", name), problem)
            out[name] = prior
        return out

    def _engine(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        t = self._table(raw, "engine")
        bayes = self._enum(t, ("engine", "bayes"), ENGINES, default="exact")
        check = self._get(t, ("engine", "check_with_mcmc"), "bool", default=False)
        if bayes == "mcmc" and check:
            self.add(
                ("engine", "check_with_mcmc"),
                "compares MCMC with the exact posterior, so it "
                'needs bayes = "exact"; with bayes = "mcmc" set check_with_mcmc = false',
            )
        return {"bayes": bayes, "check_with_mcmc": check}

    def _mcmc(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        t = self._table(raw, "mcmc")
        out: dict[str, Any] = {}
        for name, cfg, minimum in (
            ("draws", "draws", 1),
            ("tune", "tune", 0),
            ("chains", "chains", 1),
            ("seed", "random_seed", 0),
        ):
            value = self._get(t, ("mcmc", name), "int", default=None)
            if value is not None and value < minimum:
                rule = "a positive integer" if minimum == 1 else "a non-negative integer"
                self.add(
                    ("mcmc", name),
                    f"{value} is not allowed; must be {rule}, e.g. {name} = {config.get(cfg)}",
                )
            out[name] = int(config.get(cfg, value))
        ta = self._get(t, ("mcmc", "target_accept"), "float", default=None)
        if ta is not None and not 0 < ta < 1:
            self.add(
                ("mcmc", "target_accept"),
                f"{ta:g} is outside (0, 1); NUTS needs a "
                f"target acceptance probability such as {config.get('target_accept')}",
            )
        out["target_accept"] = float(config.get("target_accept", ta))
        return {k: out[k] for k in _TABLE_KEYS["mcmc"]}

    def _frequentist(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        t = self._table(raw, "frequentist")
        method = self._enum(t, ("frequentist", "method"), FREQ_METHODS, default="REML")
        hksj = self._get(t, ("frequentist", "hksj"), "bool", default=False)
        if hksj and method in FIXED_EFFECT_METHODS:
            self.add(
                ("frequentist", "hksj"),
                f"the Hartung-Knapp-Sidik-Jonkman adjustment is for "
                f'random-effects models, not method = "{method}"; set hksj = false or use '
                "one of: " + ", ".join(m for m in FREQ_METHODS if m not in FIXED_EFFECT_METHODS),
            )
        return {"method": method, "hksj": hksj}

    def _sensitivity(self, raw: Mapping[str, Any]) -> dict[str, Any] | None:
        if "sensitivity" not in raw:
            return None
        t = self._table(raw, "sensitivity")
        key = ("sensitivity", "tau_priors")
        if "tau_priors" not in t:
            if isinstance(raw["sensitivity"], dict):
                self.add(
                    key,
                    "required key is missing; add tau_priors = "
                    '["half-normal:0.25", "half-normal:1"] or remove [sensitivity]',
                )
            return None
        value = t["tau_priors"]
        if not isinstance(value, list) or not value:
            self.add(
                key,
                "must be a non-empty array of tau prior strings, e.g. "
                f'["half-normal:0.25", "half-normal:1"], got {_type_name(value)}',
            )
            return None
        seen: list[tuple[Any, int]] = []
        out = []
        for i, item in enumerate(value, start=1):
            prior, problem = _parse_prior(item, "tau")
            if problem:
                self.add(("sensitivity", "tau_priors", i), problem)
                continue
            first = next((j for other, j in seen if other == prior), None)
            if first is not None:
                self.add(
                    ("sensitivity", "tau_priors", i),
                    f"'{prior}' repeats entry {first}; list each prior once",
                )
                continue
            seen.append((prior, i))
            out.append(prior)
        return {"tau_priors": out}

    def _analyses(
        self, raw: Mapping[str, Any], engine: Mapping[str, Any], freq: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        value = raw.get("analysis")
        if value is None:
            self.add(
                ("analysis",),
                "at least one [[analysis]] table is required, e.g.\n"
                '    [[analysis]]\n    outcome = "pfs"\n    comparison = '
                '"everolimus_endocrine"\n    measure = "HR"',
            )
            return []
        if isinstance(value, dict):
            self.add(
                ("analysis",),
                "must be an array of tables: write [[analysis]] (double "
                "brackets), once per analysis, not [analysis]",
            )
            return []
        if not isinstance(value, list) or not value:
            self.add(
                ("analysis",), f"must be one or more [[analysis]] tables, got {_type_name(value)}"
            )
            return []
        out: list[dict[str, Any]] = []
        seen: list[tuple[int, dict[str, Any]]] = []
        for i, entry in enumerate(value, start=1):
            spec = self._analysis(i, entry, engine, freq)
            if spec is None:
                continue
            for j, other in seen:
                if not _overlap(other, spec):
                    continue
                same = all(other[k] == spec[k] for k in ("outcome", "comparison"))
                what = "duplicates" if same else "overlaps (through a wildcard) with"
                self.add(
                    ("analysis", i),
                    f"{what} analysis[{j}] ({other['outcome']} | "
                    f"{other['comparison']} | {other['measure']} | "
                    f"{other['likelihood']}); each fit must be listed once: remove one "
                    "or narrow the wildcard",
                )
                break
            seen.append((i, spec))
            out.append(spec)
        return out

    def _analysis(
        self, i: int, entry: Any, engine: Mapping[str, Any], freq: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        base = ("analysis", i)
        if not isinstance(entry, dict):
            self.add(base, f"must be a table, got {_type_name(entry)}")
            return None
        n_before = len(self.problems)
        for k in entry:
            if k not in _TABLE_KEYS["analysis"]:
                self._unknown((*base, k), _TABLE_KEYS["analysis"], "[[analysis]]")
        outcome = self._get(entry, (*base, "outcome"), "str", required=True)
        if outcome is not None:
            problem = _outcome_problem(outcome)
            if problem:
                self.add((*base, "outcome"), problem)
                outcome = None
        mods = self._mods(entry, (*base, "mods"))
        raw_comparison = entry.get("comparison")
        if mods and isinstance(raw_comparison, str) and _comparison_pattern(raw_comparison):
            comparison = raw_comparison  # a pattern such as "everolimus_*" (meta-regression)
        else:
            comparison = self._enum(
                entry, (*base, "comparison"), (*COMPARISONS, "*"), required=True
            )
        measure = self._enum(entry, (*base, "measure"), MEASURES, required=True)
        likelihood = self._enum(entry, (*base, "likelihood"), LIKELIHOODS, default="normal-normal")
        bayes = self._enum(entry, (*base, "bayes"), ENGINES, default=engine["bayes"])
        check = self._get(entry, (*base, "check_with_mcmc"), "bool", default=None)

        is_tte = outcome in TIME_TO_EVENT_OUTCOMES
        if outcome is not None and measure is not None:
            if measure == "HR" and not is_tte:
                self.add(
                    (*base, "measure"),
                    f"HR is only for the time-to-event outcome 'pfs'; "
                    f"outcome '{outcome}' is counted, so use RR, OR or RD",
                )
            elif measure != "HR" and is_tte:
                self.add(
                    (*base, "measure"),
                    f"outcome 'pfs' is a hazard ratio, so measure must be 'HR', not '{measure}'",
                )
        if likelihood == "binomial-normal":
            if is_tte or measure == "HR":
                self.add(
                    (*base, "likelihood"),
                    "'binomial-normal' models 2x2 counts; it cannot "
                    'fit a hazard ratio. Use likelihood = "normal-normal" for pfs',
                )
            elif measure == "RD":
                self.add(
                    (*base, "likelihood"),
                    "'binomial-normal' supports measure 'OR' or "
                    "'RR', not 'RD'; change the measure or use \"normal-normal\"",
                )
        if likelihood == "multilevel" and comparison not in (None, "*"):
            self.add(
                (*base, "comparison"),
                "a 'multilevel' analysis pools the drug classes "
                'around one mTOR mean, so it needs comparison = "*"; for one comparison '
                'use likelihood = "normal-normal"',
            )
        if likelihood in ("multilevel", "binomial-normal") and bayes == "exact":
            self.add(
                (*base, "likelihood"),
                f"'{likelihood}' has no exact (quadrature) "
                'posterior and needs MCMC: add bayes = "mcmc" to this [[analysis]] '
                'table or set bayes = "mcmc" in [engine]',
            )
        if check is None:
            check = bool(engine["check_with_mcmc"]) and bayes == "exact"
        elif check and bayes == "mcmc":
            self.add(
                (*base, "check_with_mcmc"),
                "compares MCMC with the exact posterior, so it "
                'needs bayes = "exact"; set check_with_mcmc = false for an MCMC analysis',
            )
        if freq["method"] == "PETO" and measure in ("RR", "RD"):
            self.add(
                (*base, "measure"),
                f'[frequentist] method = "PETO" estimates odds ratios '
                f'only; use measure = "OR" here or another method (e.g. "MH") for '
                f"'{measure}'",
            )
        if mods:
            check = self._regression_rules(base, likelihood, bayes, entry, outcome)
        if len(self.problems) > n_before:
            return None
        return {
            "outcome": outcome,
            "comparison": comparison,
            "measure": measure,
            "likelihood": likelihood,
            "bayes": bayes,
            "check_with_mcmc": check,
            "mods": mods,
        }

    def _mods(self, entry: Mapping[str, Any], key: tuple[Any, ...]) -> tuple[str, ...]:
        """The ``mods`` of an analysis: a list of distinct, non-empty column names."""
        value = entry.get("mods", [])
        if not isinstance(value, list | tuple) or not all(
            isinstance(m, str) and m.strip() for m in value
        ):
            self.add(key, 'must be a list of study-table columns such as ["jadad_total"]')
            return ()
        if len(set(value)) != len(value):
            self.add(key, "names a column twice; list each moderator once")
        return tuple(m.strip() for m in value)

    def _regression_rules(
        self, base: tuple[Any, ...], likelihood: Any, bayes: Any, entry: Any, outcome: Any
    ) -> bool:
        """A meta-regression is normal-normal, exact, without an MCMC check, of one outcome."""
        if likelihood != "normal-normal":
            self.add((*base, "likelihood"), 'a meta-regression (mods) is "normal-normal"')
        if bayes != "exact":
            self.add(
                (*base, "bayes"),
                'a meta-regression (mods) in a plan uses the exact engine: bayes = "exact" '
                "(MCMC meta-regression is available from Python and pool --mods)",
            )
        if entry.get("check_with_mcmc") is True:
            self.add((*base, "check_with_mcmc"), "is not available for a meta-regression (mods)")
        if isinstance(outcome, str) and outcome.endswith(":*"):
            self.add(
                (*base, "outcome"), "a meta-regression (mods) needs one outcome, not a wildcard"
            )
        return False


def _comparison_pattern(text: str) -> bool:
    """Whether ``text`` is a pattern (with ``*``) matching at least one comparison id."""
    import fnmatch

    return "*" in text and any(fnmatch.fnmatchcase(c, text) for c in COMPARISONS)


def _overlap(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Two analyses that would produce at least one identical fit."""
    return (
        tuple(a.get("mods", ())) == tuple(b.get("mods", ()))
        and a["measure"] == b["measure"]
        and a["likelihood"] == b["likelihood"]
        and _outcome_overlaps(a["outcome"], b["outcome"])
        and (a["comparison"] == b["comparison"] or "*" in (a["comparison"], b["comparison"]))
    )


def _outcome_problem(outcome: str) -> str | None:
    allowed = (
        "'orr', 'cbr', 'pfs', 'ae_any:<event>', 'ae_grade34:<event>', 'ae_any:*', 'ae_grade34:*'"
    )
    if outcome in COUNT_OUTCOMES or outcome in TIME_TO_EVENT_OUTCOMES:
        return None
    prefix, sep, event = outcome.partition(":")
    if sep and prefix in AE_PREFIXES:
        if event == "*" or _EVENT_RE.match(event):
            return None
        return (
            f"adverse-event name '{event}' must be a lowercase canonical name such as "
            f"'stomatitis' (letters, digits, underscores), or '*' for every event"
        )
    hint = _did_you_mean(
        prefix if sep else outcome, (*COUNT_OUTCOMES, *TIME_TO_EVENT_OUTCOMES, *AE_PREFIXES)
    )
    return f"unknown outcome '{outcome}'{hint}; allowed: {allowed}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "my_plan"


_EXAMPLES = {
    "name": '"my_plan"',
    "description": '"..."',
    "unit": '"trial"',
    "outcome": '"pfs"',
    "comparison": '"everolimus_endocrine"',
    "measure": '"HR"',
    "likelihood": '"normal-normal"',
    "bayes": '"exact"',
    "check_with_mcmc": "false",
    "hksj": "false",
    "method": '"REML"',
    "draws": str(config.get("draws")),
    "tune": str(config.get("tune")),
    "chains": str(config.get("chains")),
    "seed": str(config.get("random_seed")),
    "target_accept": str(config.get("target_accept")),
    "ci_prob": str(config.get("ci_prob")),
    "tau": '"half-normal:0.5"',
    "tau_class": '"half-normal:0.5"',
    "mu": '"normal:0,4"',
    "schema_version": str(SCHEMA_VERSION),
}


def _key_label(key: tuple[Any, ...]) -> str:
    """``("analysis", 2, "measure")`` -> ``analysis[2].measure``."""
    out = ""
    for part in key:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _KeyLines:
    """Best-effort line numbers of tables and keys in the TOML text, for messages."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_\-]+)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")

    def __init__(self, text: str) -> None:
        # (section, index or None, key or None) -> line number
        self.index: dict[tuple[str | None, int | None, str | None], int] = {}
        counts: dict[str, int] = {}
        section: str | None = None
        number: int | None = None
        for lineno, line in enumerate(text.splitlines(), start=1):
            m = self._HEADER.match(line)
            if m:
                section = m.group(2)
                if m.group(1) == "[[":
                    counts[section] = counts.get(section, 0) + 1
                    number = counts[section]
                else:
                    number = None
                self.index.setdefault((section, number, None), lineno)
                continue
            m = self._KEY.match(line)
            if m:
                self.index.setdefault((section, number, m.group(1)), lineno)

    def find(self, key: tuple[Any, ...]) -> int | None:
        if len(key) == 1:
            return self.index.get((None, None, key[0])) or self.index.get((key[0], None, None))
        if isinstance(key[1], int):  # analysis[i] or analysis[i].name
            name = key[2] if len(key) > 2 else None
            return self.index.get((key[0], key[1], name)) or self.index.get((key[0], key[1], None))
        return self.index.get((key[0], None, key[1])) or self.index.get((key[0], None, None))
