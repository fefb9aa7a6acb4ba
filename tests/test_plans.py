"""Analysis plans: the shipped plans load, round-trip through TOML, and bad plans fail clearly."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bayesmtor import config
from bayesmtor._resources import models_path
from bayesmtor.errors import PlanError
from bayesmtor.plans import (
    AnalysisSpec,
    Plan,
    list_plans,
    load_plan,
    parse_plan,
    prior_problem,
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
    assert plan.priors.tau == "half-normal:0.5" and plan.priors.mu == "normal:0,4"
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
    assert any(p.startswith("turner:") for p in priors)
    assert "uniform:0,2" in priors and "half-cauchy:0.5" in priors


# --- defaults and resolution ------------------------------------------------------------------


def test_defaults_are_resolved_from_config_and_written_out() -> None:
    plan = parse_plan(MINIMAL)
    assert plan.ci_prob == config.defaults["ci_prob"]
    assert plan.bolero2 == "latest_full_report"
    assert plan.mcmc.draws == config.defaults["draws"]
    assert plan.mcmc.seed == config.defaults["random_seed"]
    assert plan.frequentist.method == "REML"
    assert plan.priors.tau == "half-normal:0.5" and plan.priors.mu == "normal:0,4"
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
    assert repr(plan).startswith("Plan(name='primary', unit='trial', analyses=9")
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


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("half-normal:0.5", "tau"),
        ("half-cauchy:1", "tau"),
        ("half-student-t:0.5,3", "tau"),
        ("uniform:0,2", "tau"),
        ("log-normal:-2,1.5", "tau"),
        ("turner:adverse_events,pharma_vs_placebo", "tau"),
        ("normal:0,4", "mu"),
        ("flat", "mu"),
    ],
)
def test_prior_grammar_accepts(text: str, kind: str) -> None:
    assert prior_problem(text, kind) is None


@pytest.mark.parametrize(
    ("text", "kind", "fragment"),
    [
        ("half-normal", "tau", "needs parameters"),
        ("half-normal:0", "tau", "must be > 0"),
        ("half-normal:0.5,1", "tau", "expects 1 number"),
        ("half-student-t:0.5,0", "tau", "must be > 0"),
        ("uniform:2,1", "tau", "0 <= A < B"),
        ("uniform:0,inf", "tau", "not a finite number"),
        ("log-normal:0,abc", "tau", "'abc' is not a number"),
        ("turner:a,b,c", "tau", "separated by one comma"),
        ("normal:0,4", "tau", "unknown tau prior family 'normal'"),
        ("half-normal:0.5", "mu", "unknown mu prior family"),
        ("flat:1", "mu", "takes no parameters"),
        (0.5, "tau", "must be a string"),
    ],
)
def test_prior_grammar_rejects(text: object, kind: str, fragment: str) -> None:
    problem = prior_problem(text, kind)
    assert problem is not None and fragment in problem
