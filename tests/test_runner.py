"""`run_plan` (fitting) and `write_run` (writing) through their API, on small exact-only plans.

The run of the primary plan (MCMC included) is exercised end to end in test_cli_run.py.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from bayesmtor import __version__
from bayesmtor.datasets import comparative_dataset
from bayesmtor.errors import OutputError, PlanError
from bayesmtor.pipeline.run import analysis_id, expand_plan, run_plan
from bayesmtor.plans import parse_plan
from bayesmtor.reporting.write import write_run

pytestmark = pytest.mark.slow  # each run writes ~30 files and a dozen figures (5-15 s)

SMALL_PLAN = """
[plan]
name = "small_test"
description = "Two exact analyses, one analysis without data, and a prior sweep."
unit = "trial"

[[analysis]]
outcome = "pfs"
comparison = "everolimus_endocrine"
measure = "HR"

[[analysis]]
outcome = "orr"
comparison = "everolimus_neoadjuvant"
measure = "RR"

# Baselga 2009 is the only trial and has no event in either arm: k = 0 after escalc.
[[analysis]]
outcome = "ae_grade34:anorexia"
comparison = "everolimus_neoadjuvant"
measure = "RR"

[sensitivity]
tau_priors = ["half-normal:0.25", "half-normal:1"]
"""

TINY_PLAN = """
[plan]
name = "tiny_test"
description = "One exact analysis with one trial."
unit = "trial"

[[analysis]]
outcome = "cbr"
comparison = "temsirolimus_endocrine"
measure = "RR"
"""

FITTED = ("pfs.everolimus_endocrine.HR", "orr.everolimus_neoadjuvant.RR")
SKIPPED = "ae_grade34-anorexia.everolimus_neoadjuvant.RR"


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runner") / "out"
    lines: list[str] = []
    result = run_plan(parse_plan(SMALL_PLAN, source="small.toml"), progress=lines.append)
    files = write_run(result, out, progress=lines.append)
    return result, files, out, lines


def _run(plan, out, **options):
    return write_run(run_plan(plan), out, **options)


def test_every_promised_file_exists(small_run):
    _, files, out, _ = small_run
    expected = [
        "report.html",
        "plan.toml",
        "run.json",
        "tables/pooled.csv",
        "tables/pooled_bayes.csv",
        "tables/pooled_frequentist.csv",
        "tables/side_by_side.csv",
        "tables/excluded_studies.csv",
        "tables/analyses.csv",
        "tables/prior_sensitivity.csv",
        "tables/replication.csv",
        "tables/unit_comparison.csv",
        "tables/model_averaging.csv",
        "figures/prior_sensitivity_HR.png",
        "figures/prior_sensitivity_RR.svg",
        # funnel plot only with >= 3 trials (ORR neoadjuvant has 3)
        "figures/funnel_orr.everolimus_neoadjuvant.RR.png",
    ]
    for aid in FITTED:
        expected += [
            f"tables/forest_{aid}.csv",
            f"idata/{aid}.nc",
            f"figures/forest_{aid}.png",
            f"figures/forest_{aid}.svg",
            f"figures/tau_{aid}.png",
            f"figures/tau_{aid}.svg",
        ]
    missing = [p for p in expected if not (out / p).is_file()]
    assert not missing
    assert not (out / "figures" / "funnel_pfs.everolimus_endocrine.HR.png").exists()
    assert not any(SKIPPED in p.name for p in out.rglob("*") if p.suffix in (".nc", ".png"))
    on_disk = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert [str(p.relative_to(out)) for p in files] == on_disk
    # no hidden partial folder left beside the output
    assert [p.name for p in out.parent.iterdir()] == ["out"]


def test_statuses_skip_reason_and_progress(small_run):
    result, _, _, lines = small_run
    status = {a.id: a for a in result.analyses}
    assert [status[a].status for a in FITTED] == ["ok", "ok"]
    assert status[SKIPPED].status == "skipped" and "k = 0" in status[SKIPPED].reason
    assert status[SKIPPED].k == 0
    assert result.summary().columns[:3].tolist() == ["id", "outcome", "comparison"]
    assert any(line.startswith("[1/3] pfs everolimus_endocrine HR:") for line in lines)
    assert any("exact posterior ... done" in line for line in lines)
    assert any("skipped" in line for line in lines)


def test_tables_have_expected_columns(small_run):
    _, _, out, _ = small_run
    bayes = pd.read_csv(out / "tables" / "pooled_bayes.csv")
    for col in ("analysis", "outcome", "comparison", "measure", "engine", "k", "mu_median",
                "mu_low", "mu_high", "tau_median", "tau_low", "tau_high", "pred_low",
                "pred_high", "p_mu_below_0", "mu_median_ratio"):  # fmt: skip
        assert col in bayes.columns, col
    assert set(bayes["analysis"]) == set(FITTED)
    assert (bayes["engine"] == "exact").all()
    assert (bayes["mu_low"] < bayes["mu_median"]).all()
    assert (bayes["mu_median"] < bayes["mu_high"]).all()
    freq = pd.read_csv(out / "tables" / "pooled_frequentist.csv")
    for col in ("analysis", "method", "k", "estimate", "ci_low", "ci_high", "tau2", "I2"):
        assert col in freq.columns, col
    assert set(freq["method"]) == {"REML"}
    side = pd.read_csv(out / "tables" / "side_by_side.csv")
    assert set(side["analysis"]) == set(FITTED)
    assert any(c.startswith("Bayes median") for c in side.columns)
    assert any(c.startswith("frequentist estimate") for c in side.columns)
    sens = pd.read_csv(out / "tables" / "prior_sensitivity.csv")
    assert set(sens["prior"]) == {"half-normal:0.25", "half-normal:1"}
    assert len(sens) == 2 * len(FITTED)
    # a wider tau prior cannot narrow the interval of the pooled effect here
    width = sens.assign(w=sens["mu_high"] - sens["mu_low"]).pivot(
        index="analysis", columns="prior", values="w"
    )
    assert (width["half-normal:1"] > width["half-normal:0.25"]).all()


def test_model_averaging_table_and_report_section(small_run):
    """The plan's Bayes factors and model averaging are those of each analysis's exact
    posterior (whose values tests/test_bayes_factors.py checks against R bayesmeta)."""
    from bayesmtor.bayes.model_averaging import model_average

    result, _, out, _ = small_run
    table = pd.read_csv(out / "tables" / "model_averaging.csv").set_index("analysis")
    assert set(table.index) == set(FITTED)
    for f in (a for a in result.analyses if a.id in FITTED):
        row, bf, bma = table.loc[f.id], f.exact.bayes_factors(), model_average(f.exact)
        for key in ("log_marginal_likelihood", "bf_tau0", "bf_mu0"):
            assert row[key] == pytest.approx(bf[key], rel=1e-9)
        probs = bma.models.set_index("name")["posterior_prob"]
        for name, p in probs.items():
            assert row[f"posterior_prob_{name}"] == pytest.approx(p, rel=1e-9, abs=1e-300)
        assert row["bma_mu_median"] == pytest.approx(bma.mu_median, rel=1e-9, abs=1e-300)
        assert row["bma_mu_median_ratio"] == pytest.approx(math.exp(bma.mu_median), rel=1e-9)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="bayes-factors"' in html and "model averaging" in html


def test_forest_rows_list_every_trial_of_the_dataset(small_run):
    _, _, out, _ = small_run
    for aid, (outcome, comparison) in zip(
        FITTED, [("pfs", "everolimus_endocrine"), ("orr", "everolimus_neoadjuvant")], strict=True
    ):
        rows = pd.read_csv(out / "tables" / f"forest_{aid}.csv")
        trials = set(comparative_dataset(outcome, comparison, "trial").data["study"])
        observed = set(rows.loc[rows["kind"] == "observed", "label"])
        shrunken = set(rows.loc[rows["kind"] == "shrunken", "label"])
        assert observed == trials and shrunken == trials
        assert {"pooled_bayes", "pooled_freq", "predictive"} <= set(rows["kind"])


def test_excluded_studies_include_the_single_arm_cohort(small_run):
    _, _, out, _ = small_run
    excl = pd.read_csv(out / "tables" / "excluded_studies.csv")
    cohort = excl.loc[excl["study"] == "West-Iran rapamycin cohort", "reason"]
    assert len(cohort) >= 1 and cohort.str.contains("no comparator").all()
    # BOLERO-2 enters once: its other reports are listed as excluded, with the reason
    pfs = excl.loc[excl["analysis"] == FITTED[0]]
    assert pfs["reason"].str.contains("BOLERO-2 counted once").any()


def test_run_json_and_plan_toml(small_run):
    result, files, out, _ = small_run
    info = json.loads((out / "run.json").read_text())
    assert info["bayesmtor_version"] == __version__
    assert info["plan"] == "small_test"
    assert info["priors"]["tau"] == "half-normal:0.5" and info["priors"]["mu"] == "normal:0,4"
    assert info["priors"]["sensitivity_tau"] == ["half-normal:0.25", "half-normal:1"]
    assert {a["id"]: a["status"] for a in info["analyses"]}[SKIPPED] == "skipped"
    assert all(f"{aid}:exact_draws" in info["seeds"] for aid in FITTED)
    assert info["timings_seconds"]["total"] > 0
    assert set(info["files"]) == {str(p.relative_to(out)) for p in files}
    assert parse_plan((out / "plan.toml").read_text()) == result.plan


def test_idata_reloads_with_arviz_and_is_labelled_exact(small_run):
    az = pytest.importorskip("arviz")
    _, _, out, _ = small_run
    for aid in FITTED:
        idata = az.from_netcdf(out / "idata" / f"{aid}.nc")  # ArviZ's default engine
        assert idata.posterior.attrs["engine"] == "exact"
        assert idata.posterior.attrs["draws_are"] == "independent exact draws"
        assert idata.posterior.sizes["chain"] == 4
        assert {"mu", "tau", "theta", "theta_new"} <= set(idata.posterior.data_vars)
        assert idata.posterior.sizes["draw"] >= 1000
        assert "y" in idata.observed_data


def test_report_has_a_section_per_analysis(small_run):
    from bayesmtor.reporting.html import inspect_html_report

    _, _, out, _ = small_run
    rep = inspect_html_report(out / "report.html")
    assert rep["all_images_embedded"] and rep["external_resources"] == []
    for sec in ("methods", "side-by-side", "sensitivity", "replication", "excluded", "diagnostics"):
        assert sec in rep["section_ids"]
    for aid in FITTED:
        assert f"a-{aid}" in rep["section_ids"]
    assert f"a-{SKIPPED}" not in rep["section_ids"]
    assert rep["meta"]["bayesmtor version"] == __version__
    assert rep["n_images"] == len(list((out / "figures").glob("*.png")))


def test_refuses_existing_folder_and_force_replaces(tmp_path):
    # A folder of the user's own files is refused, with or without force.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("my results")
    for force in (False, True):
        with pytest.raises(OutputError, match="did not write"):
            _run(parse_plan(TINY_PLAN), mine, force=force)
        assert [p.name for p in mine.iterdir()] == ["keep.txt"]
    # An earlier output of bayesmtor is refused without force and replaced with it.
    out = tmp_path / "out"
    _run(parse_plan(TINY_PLAN), out)
    with pytest.raises(OutputError, match="--force"):
        _run(parse_plan(TINY_PLAN), out)
    result = run_plan(parse_plan(TINY_PLAN))
    write_run(result, out, force=True)
    assert (out / "report.html").is_file()
    assert [a.status for a in result.analyses] == ["ok"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "out"]


def test_interruption_leaves_no_output(tmp_path, monkeypatch):
    from bayesmtor.reporting import html

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(html, "write_run_report", interrupt)
    result = run_plan(parse_plan(TINY_PLAN))
    with pytest.raises(KeyboardInterrupt):
        write_run(result, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_bad_plan_name_is_a_plan_error(tmp_path):
    with pytest.raises(PlanError, match="no bundled analysis plan"):
        run_plan("no_such_plan")
    assert list(tmp_path.iterdir()) == []


def test_expand_plan_wildcards():
    plan = parse_plan(
        """
[plan]
name = "w"
description = "wildcards"
unit = "trial"
[[analysis]]
outcome = "ae_any:*"
comparison = "everolimus_endocrine"
measure = "RR"
[[analysis]]
outcome = "orr"
comparison = "*"
measure = "RR"
likelihood = "multilevel"
bayes = "mcmc"
"""
    )
    available = pd.DataFrame(
        {
            "outcome": ["ae_any:rash", "ae_any:nausea", "orr", "orr", "ae_grade34:rash"],
            "comparison": [
                "everolimus_endocrine",
                "temsirolimus_endocrine",
                "everolimus_endocrine",
                "everolimus_neoadjuvant",
                "everolimus_endocrine",
            ],
        }  # fmt: skip
    )
    tasks = expand_plan(plan, available)
    assert [t.id for t in tasks] == [
        "ae_any-rash.everolimus_endocrine.RR",
        "orr.all.RR.multilevel",
    ]
    assert tasks[1].comparisons == ("everolimus_endocrine", "everolimus_neoadjuvant")
    assert analysis_id("pfs", "everolimus_endocrine", "HR", "normal-normal") == (
        "pfs.everolimus_endocrine.HR"
    )


def test_run_plan_writes_nothing_and_its_results_are_frozen(tmp_path, monkeypatch):
    import dataclasses

    monkeypatch.chdir(tmp_path)
    result = run_plan(parse_plan(TINY_PLAN))
    assert list(tmp_path.iterdir()) == []
    (analysis,) = result.analyses
    assert analysis.status == "ok" and analysis.fitted and analysis.idata is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        analysis.status = "failed"
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.analyses = ()
    assert result.summary()["id"].tolist() == [analysis.id]
    assert analysis.summary().loc[0, "status"] == "ok"


def test_check_output_refuses_before_the_run(tmp_path):
    from bayesmtor.reporting.write import check_output

    plan = parse_plan(TINY_PLAN)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("my results")
    with pytest.raises(OutputError, match="did not write"):
        check_output(mine, plan=plan, force=True)
    check_output(tmp_path / "new", plan=plan)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_pooled_table_uses_the_one_schema(small_run):
    from bayesmtor.schema import POOLED_COLUMNS

    _, _, out, _ = small_run
    pooled = pd.read_csv(out / "tables" / "pooled.csv")
    assert pooled.columns.tolist()[-len(POOLED_COLUMNS) :] == list(POOLED_COLUMNS)
    assert set(zip(pooled["analysis"], pooled["engine"], strict=True)) == {
        (a, e) for a in FITTED for e in ("frequentist", "exact")
    }
    # the same quantities as the engine-specific tables (posterior median of mu and the
    # frequentist estimate), reached through the schema: equal up to rounding
    bayes = pd.read_csv(out / "tables" / "pooled_bayes.csv").set_index("analysis")
    freq = pd.read_csv(out / "tables" / "pooled_frequentist.csv").set_index("analysis")
    rows = pooled.set_index(["analysis", "engine"])
    for aid in FITTED:
        assert rows.loc[(aid, "exact"), "estimate"] == pytest.approx(
            bayes.loc[aid, "mu_median"], rel=1e-9
        )
        assert rows.loc[(aid, "frequentist"), "estimate"] == pytest.approx(
            freq.loc[aid, "estimate"], rel=1e-12
        )
        assert rows.loc[(aid, "exact"), "excluded"] == rows.loc[(aid, "frequentist"), "excluded"]


def test_write_run_fits_nothing(tmp_path, monkeypatch):
    from bayesmtor.bayes import exact
    from bayesmtor.pipeline import stages

    result = run_plan(parse_plan(TINY_PLAN))

    def no_fit(*args, **kwargs):
        raise AssertionError("write_run must not fit")

    for module, name in ((exact, "exact_posterior"), (exact, "exact_batch"), (stages, "prepare")):
        monkeypatch.setattr(module, name, no_fit)
    files = write_run(result, tmp_path / "out")
    assert tmp_path / "out" / "report.html" in files
    assert tmp_path / "out" / "tables" / "pooled.csv" in files


MCMC_PLAN = """
analysis = [
    { outcome = "pfs", comparison = "everolimus_endocrine", measure = "HR" },
    { outcome = "cbr", comparison = "everolimus_endocrine", measure = "RR" },
    { outcome = "orr", comparison = "*", measure = "RR", likelihood = "multilevel", bayes = "mcmc" },
]

[plan]
name = "mcmc_workers"
description = "Two MCMC checks and a multilevel fit, sampled by one or by two workers."
unit = "trial"

[engine]
check_with_mcmc = true

[mcmc]
chains = 2
draws = 150
tune = 150
target_accept = 0.9
seed = 7
"""


@pytest.mark.mcmc
def test_mcmc_draws_do_not_depend_on_the_number_of_workers():
    """Each MCMC fit carries its own seed, so one worker, two workers (which take the fits in
    another order) and the main process alone give the same draws, bit for bit."""
    from bayesmtor import config

    plan = parse_plan(MCMC_PLAN, source="mcmc_workers.toml")
    runs = []
    try:
        for processes, in_subprocess in ((1, True), (2, True), (1, False)):
            config.set("mcmc_processes", processes)
            config.set("mcmc_in_subprocess", in_subprocess)
            runs.append({r.id: r for r in run_plan(plan).analyses})
    finally:
        config.reset("mcmc_processes")
        config.reset("mcmc_in_subprocess")
    first = runs[0]
    sampled = [(rid, r) for rid, r in first.items() if r.check_idata is not None or r.bayes]
    assert len(sampled) == 3, sorted(first)
    for other in runs[1:]:
        for rid, r in sampled:
            a = r.check_idata if r.check_idata is not None else r.bayes.idata
            o = other[rid]
            b = o.check_idata if o.check_idata is not None else o.bayes.idata
            for name in ("mu", "tau"):
                assert (a.posterior[name].values == b.posterior[name].values).all(), (rid, name)
            assert r.status == o.status, rid
            assert pd.Series(r.bayes_row).equals(pd.Series(o.bayes_row)), rid
