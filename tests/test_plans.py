"""Analysis plans: the shipped plans load, round-trip through TOML, and bad plans fail clearly."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bayesmtor import config
from bayesmtor._resources import models_path
from bayesmtor.bayes.priors import MuPrior, TauPrior
from bayesmtor.errors import PlanError
from bayesmtor.plans import (
    AnalysisSpec,
    Plan,
    PriorSpec,
    SensitivitySpec,
    list_plans,
    load_plan,
    parse_plan,
)

BAD_DIR = Path(__file__).resolve().parent / "data" / "bad" / "plans"
BAD_FILES = sorted(BAD_DIR.glob("*.toml"))
SHIPPED = ("primary", "seed_replication", "prior_sensitivity")

MINIMAL = """
[plan]
name = "minimal"
description = "Smallest valid plan."
unit = "trial"

[[analysis]]
outcome = "pfs"
comparison = "everolimus_endocrine"
measure = "HR"
"""


def _bad_file_header(path: Path) -> tuple[str, str]:
    """First line: '# <key>: <what is wrong>'; second line: '# expect: <message fragment>'."""
    first, second = path.read_text(encoding="utf-8").splitlines()[:2]
    assert first.startswith("# ") and ":" in first, (
        f"{path.name}: first line must say what is wrong"
    )
    assert second.startswith("# expect: "), f"{path.name}: second line must be '# expect: ...'"
    return first[2:].split(":", 1)[0].strip(), second[len("# expect: ") :].strip()


# --- shipped plans ----------------------------------------------------------------------------


def test_list_plans_names_the_bundled_toml_files() -> None:
    names = list_plans()
    assert names == sorted(names)
    assert set(SHIPPED) <= set(names)
    assert "README" not in names


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_plan_loads_by_bare_name(name: str) -> None:
    plan = load_plan(name)
    assert isinstance(plan, Plan)
    assert plan.name == name  # the bundled file name and the plan name agree
    assert plan.source == models_path(f"{name}.toml")
    assert plan.analyses and plan.description.strip()


@pytest.mark.parametrize("name", SHIPPED)
def test_round_trip_to_toml_and_back_gives_an_equal_plan(name: str, tmp_path: Path) -> None:
    plan = load_plan(name)
    path = tmp_path / f"{name}_as_run.toml"
    path.write_text(plan.to_toml(), encoding="utf-8")
    again = load_plan(path)
    assert again == plan
    assert again.to_dict() == plan.to_dict()
    assert again.to_toml() == plan.to_toml()
    assert again.source == path  # the source is recorded but not part of equality


def test_bare_name_and_path_load_the_same_plan() -> None:
    by_name = load_plan("primary")
    assert load_plan(models_path("primary.toml")) == by_name
    assert load_plan(str(models_path("primary.toml"))) == by_name


def test_unknown_bare_name_lists_the_plans_and_suggests_one() -> None:
    with pytest.raises(
        PlanError, match=r"did you mean 'primary'\?.*available plans: .*seed_replication"
    ):
        load_plan("primray")


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(PlanError, match="nowhere.toml: analysis plan file not found"):
        load_plan(missing)


def test_primary_plan_content() -> None:
    plan = load_plan("primary")
    assert plan.unit == "trial" and plan.bolero2 == "latest_full_report"
    assert plan.engine.bayes == "exact"
    assert plan.frequentist.method == "REML"
    assert plan.priors.tau == TauPrior.half_normal(0.5) and plan.priors.mu == MuPrior.normal(0, 4)
    checked = {(a.outcome, a.comparison) for a in plan.analyses if a.check_with_mcmc}
    assert checked == {(o, "everolimus_endocrine") for o in ("pfs", "cbr", "orr")}
    multilevel = [a for a in plan.analyses if a.likelihood == "multilevel"]
    assert (
        len(multilevel) == 1 and multilevel[0].bayes == "mcmc" and multilevel[0].comparison == "*"
    )
    # budget: four small PyMC fits must fit in about a minute on 2 cores; at 2 x (2000 + 1000)
    # iterations per fit the whole plan measured 30 s (benchmarks/bench_run.py)
    assert plan.mcmc.chains * (plan.mcmc.draws + plan.mcmc.tune) <= 6000
    assert plan.uses_mcmc


def test_seed_replication_plan_content() -> None:
    plan = load_plan("seed_replication")
    assert plan.unit == "report" and plan.bolero2 is None
    assert plan.frequentist.method == "MH" and not plan.frequentist.hksj
    assert not plan.uses_mcmc
    assert ("pfs", "HR") in {(a.outcome, a.measure) for a in plan.analyses}


def test_prior_sensitivity_plan_content() -> None:
    plan = load_plan("prior_sensitivity")
    assert plan.sensitivity is not None
    priors = plan.sensitivity.tau_priors
    assert len(priors) == 6
    assert plan.priors.tau in priors  # the reference prior is one of the sweep
    assert TauPrior.turner("signs_symptoms", "pharma_vs_placebo") in priors
    assert TauPrior.uniform(0, 2) in priors and TauPrior.half_cauchy(0.5) in priors
    assert [p.to_string() for p in priors][4] == "turner:signs_symptoms,pharma_vs_placebo"


# --- defaults and resolution ------------------------------------------------------------------


def test_defaults_are_resolved_from_config_and_written_out() -> None:
    plan = parse_plan(MINIMAL)
    assert plan.ci_prob == config.defaults["ci_prob"]
    assert plan.bolero2 == "latest_full_report"
    assert plan.mcmc.draws == config.defaults["draws"]
    assert plan.mcmc.seed == config.defaults["random_seed"]
    assert plan.frequentist.method == "REML"
    assert plan.priors.tau == TauPrior.half_normal(0.5) and plan.priors.mu == MuPrior.normal(0, 4)
    assert plan.analyses == (AnalysisSpec("pfs", "everolimus_endocrine", "HR"),)
    text = plan.to_toml()
    assert "draws = 2000" in text and 'likelihood = "normal-normal"' in text
    assert parse_plan(text) == plan


def test_changed_config_default_reaches_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(config.defaults, "draws", 123)
    assert parse_plan(MINIMAL).mcmc.draws == 123


def test_engine_check_with_mcmc_is_inherited_by_exact_analyses_only() -> None:
    text = (
        MINIMAL
        + """
[engine]
check_with_mcmc = true

[[analysis]]
outcome = "orr"
comparison = "*"
measure = "RR"
likelihood = "multilevel"
bayes = "mcmc"

[[analysis]]
outcome = "cbr"
comparison = "everolimus_endocrine"
measure = "RR"
check_with_mcmc = false
"""
    )
    plan = parse_plan(text)
    assert [a.check_with_mcmc for a in plan.analyses] == [True, False, False]
    assert [a.bayes for a in plan.analyses] == ["exact", "mcmc", "exact"]


def test_wildcards_match_concrete_outcomes() -> None:
    spec = AnalysisSpec("ae_any:*", "*", "RR")
    assert spec.is_wildcard
    assert spec.matches("ae_any:stomatitis", "everolimus_endocrine")
    assert not spec.matches("ae_grade34:stomatitis", "everolimus_endocrine")
    assert not AnalysisSpec("orr", "everolimus_neoadjuvant", "RR").matches(
        "orr", "temsirolimus_endocrine"
    )


# --- readable output --------------------------------------------------------------------------


def test_repr_describe_and_summary_are_readable() -> None:
    plan = load_plan("primary")
    assert repr(plan).startswith("Plan(name='primary', unit='trial', analyses=11")
    text = plan.describe()
    assert "BOLERO-2: latest_full_report" in text and "multilevel" in text
    assert len([line for line in text.splitlines() if "everolimus_endocrine" in line]) == 4
    table = plan.summary()
    assert list(table.columns) == [
        "outcome",
        "comparison",
        "measure",
        "likelihood",
        "bayes",
        "check_with_mcmc",
    ]
    assert len(table) == len(plan.analyses) and table.index[0] == 1


# --- validation -------------------------------------------------------------------------------


def test_there_are_enough_bad_plan_files() -> None:
    assert len(BAD_FILES) >= 12


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_bad_plan_raises_plan_error_naming_file_and_key(path: Path) -> None:
    key, expected = _bad_file_header(path)
    with pytest.raises(PlanError) as info:
        load_plan(path)
    message = str(info.value)
    assert str(path) in message
    assert key in message
    assert expected in message


def test_every_problem_is_reported_at_once() -> None:
    text = """
[plan]
name = "Two Problems"
description = "x"
unit = "trial"

[mcmc]
chains = 0

[[analysis]]
outcome = "pfs"
comparison = "everolimus_endocrine"
measure = "HR"
"""
    with pytest.raises(PlanError) as info:
        parse_plan(text, source="inline.toml")
    message = str(info.value)
    assert message.startswith("inline.toml: 2 problems")
    assert "line 3: plan.name" in message and "line 8: mcmc.chains" in message


def test_direct_construction_is_validated_too() -> None:
    plan = load_plan("seed_replication")
    with pytest.raises(PlanError, match=r"mcmc\.draws: -5 is not allowed"):
        dataclasses.replace(plan, mcmc=dataclasses.replace(plan.mcmc, draws=-5))
    with pytest.raises(PlanError, match=r"analysis\[1\]\.measure: HR is only for"):
        dataclasses.replace(plan, analyses=(AnalysisSpec("orr", "everolimus_endocrine", "HR"),))
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.name = "other"  # type: ignore[misc]


def _with_priors(lines: str) -> str:
    return MINIMAL.replace("[[analysis]]", f"[priors]\n{lines}\n\n[[analysis]]")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("half-normal:0.5", "tau"),
        ("half-cauchy:1", "tau"),
        ("half-student-t:0.5,3", "tau"),
        ("half-t:0.5,3", "tau"),
        ("halfnormal:0.5", "tau"),
        ("uniform:0,2", "tau"),
        ("log-normal:-2,1.5", "tau"),
        ("turner:adverse_events,pharma_vs_placebo", "tau"),
        ("normal:0,4", "mu"),
        ("flat", "mu"),
    ],
)
def test_plan_reads_priors_with_the_one_prior_grammar(text: str, kind: str) -> None:
    """A plan accepts exactly what TauPrior/MuPrior.from_string accept, as prior objects."""
    cls = MuPrior if kind == "mu" else TauPrior
    plan = parse_plan(_with_priors(f'{kind} = "{text}"'))
    prior = getattr(plan.priors, kind)
    assert isinstance(prior, cls) and prior == cls.from_string(text)
    # written back in the grammar, read back to an equal plan
    assert f'{kind} = "{prior.to_string()}"' in plan.to_toml()
    assert parse_plan(plan.to_toml()) == plan


def test_half_t_in_a_plan_is_the_prior_of_the_command_line() -> None:
    plan = parse_plan(_with_priors('tau = "half-t:0.5,3"'))
    assert plan.priors.tau == TauPrior.half_student_t(0.5, 3)
    assert str(plan.priors.tau) == "half-student-t:0.5,3"


def test_a_log_normal_config_default_prior_works_in_a_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lognormal = ("log-normal", {"meanlog": -1.5, "sdlog": 0.8})
    monkeypatch.setitem(config.defaults, "tau_prior", lognormal)
    plan = parse_plan(MINIMAL)
    assert plan.priors.tau == TauPrior.log_normal(-1.5, 0.8)
    assert plan.priors.tau_class == TauPrior.log_normal(-1.5, 0.8)
    assert parse_plan(plan.to_toml()) == plan
    monkeypatch.setitem(config.defaults, "tau_prior", "turner:adverse_events,pharma_vs_placebo")
    assert parse_plan(MINIMAL).priors.tau == TauPrior.turner("adverse_events", "pharma_vs_placebo")


def test_plan_built_in_code_parses_prior_strings() -> None:
    plan = parse_plan(MINIMAL)
    built = dataclasses.replace(
        plan,
        priors=PriorSpec(tau="half-t:1,4", mu="flat", tau_class="half-normal:0.5"),  # type: ignore[arg-type]
        sensitivity=SensitivitySpec(("half-normal:1", TauPrior.uniform(0, 2))),  # type: ignore[arg-type]
    )
    assert built.priors.tau == TauPrior.half_student_t(1, 4) and built.priors.mu.is_flat
    assert built.sensitivity is not None
    assert built.sensitivity.tau_priors == (TauPrior.half_normal(1), TauPrior.uniform(0, 2))
    assert parse_plan(built.to_toml()) == built


def test_sensitivity_repeats_are_found_through_aliases() -> None:
    sweep = '[sensitivity]\ntau_priors = ["half-t:0.5,3", "half-student-t:0.5,3"]\n\n'
    text = MINIMAL.replace("[[analysis]]", sweep + "[[analysis]]")
    with pytest.raises(PlanError, match=r"tau_priors\[2\]: 'half-student-t:0.5,3' repeats entry 1"):
        parse_plan(text)


@pytest.mark.parametrize(
    ("text", "kind", "fragment"),
    [
        ("half-normal", "tau", "needs parameters"),
        ("half-normal:0", "tau", "must be finite and > 0"),
        ("half-normal:0.5,1", "tau", "needs 1 number(s) (SCALE), got 2"),
        ("half-student-t:0.5,0", "tau", "'nu' must be finite and > 0"),
        ("uniform:2,1", "tau", "0 <= lower < upper"),
        ("uniform:0,inf", "tau", "UPPER must be a finite number, got 'inf'"),
        ("log-normal:0,abc", "tau", "SDLOG must be a finite number, got 'abc'"),
        ("turner:a,b,c", "tau", "separated by one comma"),
        ("half-norml:0.5", "tau", "did you mean 'half-normal'"),
        ("normal:0,4", "tau", "unknown tau prior family 'normal'"),
        ("half-normal:0.5", "mu", "unknown mu prior family"),
        ("flat:1", "mu", "takes no parameters"),
        (0.5, "tau", "must be a string"),
    ],
)
def test_plan_rejects_bad_priors_naming_line_and_key(
    text: object, kind: str, fragment: str
) -> None:
    value = f'"{text}"' if isinstance(text, str) else str(text)
    with pytest.raises(PlanError) as info:
        parse_plan(_with_priors(f"{kind} = {value}"), source="p.toml")
    message = str(info.value)
    line = _with_priors(f"{kind} = {value}").splitlines().index(f"{kind} = {value}") + 1
    assert f"line {line}: priors.{kind}: " in message and fragment in message, message


def test_plan_from_dict_is_the_inverse_of_to_dict() -> None:
    plan = load_plan("prior_sensitivity")
    assert Plan.from_dict(plan.to_dict()) == plan
