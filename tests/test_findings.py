"""The summary of findings: direction of benefit or harm from the outcome metadata, single
trials, flags, and the report table built from it."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bayesmtor import config
from bayesmtor.datasets import available_analyses
from bayesmtor.outcomes import comparison_label, outcome_info
from bayesmtor.pipeline.run import run_plan
from bayesmtor.plans import parse_plan
from bayesmtor.reporting.findings import (
    COLUMNS,
    findings_table_html,
    flag_rules,
    format_probability,
    format_ratio_interval,
    summary_of_findings,
)
from bayesmtor.reporting.tables import build_tables

PLAN = """
analysis = [
    { outcome = "pfs", comparison = "everolimus_endocrine", measure = "HR" },
    { outcome = "orr", comparison = "everolimus_neoadjuvant", measure = "RR" },
    { outcome = "ae_grade34:asthenia", comparison = "everolimus_neoadjuvant", measure = "RR" },
    { outcome = "ae_any:stomatitis", comparison = "everolimus_endocrine", measure = "RR" },
]

[plan]
name = "findings_test"
description = "Efficacy with 2 and 3 trials, adverse events with 1 and 2 trials."
unit = "trial"
"""

PFS, ORR = "pfs.everolimus_endocrine.HR", "orr.everolimus_neoadjuvant.RR"
AE1, AE2 = (
    "ae_grade34-asthenia.everolimus_neoadjuvant.RR",
    "ae_any-stomatitis.everolimus_endocrine.RR",
)


@pytest.fixture(scope="module")
def run():
    return run_plan(parse_plan(PLAN, source="findings.toml"))


@pytest.fixture(scope="module")
def sof(run):
    return summary_of_findings(run.analyses, run.plan).set_index("analysis")


def _fit(run, aid):
    return next(f for f in run.analyses if f.id == aid)


def test_every_bundled_outcome_and_comparison_has_a_direction_and_label():
    table = available_analyses("trial")
    for code in table["outcome"].unique():
        info = outcome_info(code)
        assert info.known, code
        assert info.role in ("efficacy", "safety") and info.label != code
    for code in table["comparison"].unique():
        assert comparison_label(code) != code


def test_direction_is_data_not_a_guess():
    assert outcome_info("pfs").favourable == "lower" and outcome_info("pfs").role == "efficacy"
    assert outcome_info("orr").favourable == "higher"
    assert outcome_info("cbr").favourable == "higher"
    ae = outcome_info("ae_any:rash")
    assert (ae.role, ae.favourable, ae.label) == ("safety", "lower", "Any-grade rash")
    # unknown codes, and a kind without its event, get no direction at all
    for code in ("qol", "pfs_median", "ae_any", "orr:rash"):
        info = outcome_info(code)
        assert not info.known and info.role is None, code
        assert "not listed" in info.reason


def test_probability_of_benefit_or_harm_follows_the_direction(run, sof):
    for aid in (PFS, ORR, AE1, AE2):
        p_below = float(_fit(run, aid).bayes_row["p_mu_below_0"])
        row = sof.loc[aid]
        assert row["p_below_null"] == p_below
        if aid == PFS:  # HR < 1 is a benefit
            assert (row["probability_of"], row["probability_side"]) == ("benefit", "HR < 1")
            assert row["probability"] == p_below
        elif aid == ORR:  # RR > 1 is a benefit
            assert (row["probability_of"], row["probability_side"]) == ("benefit", "RR > 1")
            assert row["probability"] == pytest.approx(1 - p_below, abs=1e-15)
        else:  # an adverse event: RR > 1 is a harm
            assert (row["probability_of"], row["probability_side"]) == ("harm", "RR > 1")
            assert row["probability"] == pytest.approx(1 - p_below, abs=1e-15)
    # efficacy rows come first
    assert list(sof["role"]) == ["efficacy", "efficacy", "safety", "safety"]


def test_unknown_direction_is_flagged_and_stated_neutrally(run):
    f = _fit(run, PFS)
    odd = replace(f, task=replace(f.task, outcome="qol"))
    row = summary_of_findings([odd], run.plan).iloc[0]
    assert "direction unknown" in row["flags"]
    assert row["probability_of"] == "" and row["probability_side"] == "HR < 1"
    assert row["probability"] == float(f.bayes_row["p_mu_below_0"])
    cell = dict(zip([c.header for c in COLUMNS], [c.cell(row) for c in COLUMNS], strict=True))
    assert "direction unknown" in cell["Posterior probability"]
    assert "benefit" not in cell["Posterior probability"]


def test_numbers_are_the_pooled_results_on_the_ratio_scale(run, sof):
    tables = build_tables(run)
    bayes = tables["pooled_bayes"].set_index("analysis")
    freq = tables["pooled_frequentist"].set_index("analysis")
    for aid in (PFS, ORR, AE2):
        row = sof.loc[aid]
        for a, b in (
            ("bayes_median", "mu_median"),
            ("bayes_low", "mu_low"),
            ("bayes_high", "mu_high"),
        ):
            assert row[a] == pytest.approx(math.exp(bayes.loc[aid, b]), rel=1e-12)
        for a, b in (
            ("freq_estimate", "estimate"),
            ("freq_low", "ci_low"),
            ("freq_high", "ci_high"),
        ):
            assert row[a] == pytest.approx(math.exp(freq.loc[aid, b]), rel=1e-12)
        assert row["I2"] == pytest.approx(freq.loc[aid, "I2"])
        assert row["k"] == bayes.loc[aid, "k"]
    assert tables["summary_of_findings"]["analysis"].tolist() == list(sof.index)


def test_bayes_factors_and_model_averaging_are_those_of_the_exact_posterior(run, sof):
    """The summary's Bayes factors and model-averaged ratio are the model-averaging table's
    (whose values tests/test_bayes_factors.py checks against R bayesmeta)."""
    ma = build_tables(run)["model_averaging"].set_index("analysis")
    for aid in (PFS, ORR, AE1, AE2):
        row = sof.loc[aid]
        for a in ("bf_tau0", "bf_mu0", "bf_inclusion_effect"):
            assert row[a] == pytest.approx(ma.loc[aid, a], rel=1e-12)
        for a, b in (("bma_median", "bma_mu_median"), ("bma_low", "bma_mu_low"),
                     ("bma_high", "bma_mu_high")):  # fmt: skip
            assert row[a] == pytest.approx(math.exp(ma.loc[aid, b]), rel=1e-12)
    cells = {c.header: c.cell(sof.loc[PFS].to_dict()) for c in COLUMNS}
    cell = cells["Model-averaged [{pct}]; BF(mu = 0), BF(tau = 0)"]
    assert cell.count("[") == 1 and "; BF " in cell


def test_patients_are_the_randomised_arm_sizes(run, sof):
    # PFS: BOLERO-2 (485 + 239) and Bachelot 2012 (54 + 57), from data/studies.csv
    assert sof.loc[PFS, "patients"] == 485 + 239 + 54 + 57
    inc = _fit(run, ORR).es_table
    assert sof.loc[ORR, "patients"] == float((inc["n_trt"] + inc["n_ctl"]).sum())


def test_single_trial_is_not_pooled_and_has_no_prediction_interval(run, sof):
    row = sof.loc[AE1]
    assert row["k"] == 1
    assert row["flags"].split("; ")[0] == "single trial"
    assert "prior-dominated tau" not in row["flags"]  # implied by 'single trial'
    assert np.isnan(row["pred_low"]) and np.isnan(row["pred_high"])
    assert np.isnan(row["I2"])
    cells = {c.header: c.cell(row) for c in COLUMNS}
    assert cells["Prediction, new trial [{pct}]"] == "– (prior only)"
    assert "trial's own" in cells["Frequentist {method} [{pct} CI]"]
    tables = build_tables(run)
    forest = tables[f"forest_{AE1}"]
    assert not forest["label"].str.startswith("Pooled, frequentist").any()
    pred = forest.loc[forest["kind"] == "predictive"].iloc[0]
    assert "prior only" in pred["note"]
    side = tables["side_by_side"].set_index("analysis")
    assert side.loc[AE1, "Bayes prediction [95%]"] == "prior only (k = 1)"
    # with 3 trials: pooled, and a prediction interval
    assert "single trial" not in sof.loc[ORR, "flags"]
    assert np.isfinite(sof.loc[ORR, "pred_low"])
    assert side.loc[ORR, "Bayes prediction [95%]"].startswith("[")  # no dash for the estimate


def test_prior_dominated_tau_rule(run, sof):
    prior = run.plan.priors.tau
    width = float(prior.ppf(0.975) - prior.ppf(0.025))
    for aid, row in sof.iterrows():
        expect = (
            row["k"] > 1
            and (row["tau_high"] - row["tau_low"]) >= config.get("flag_prior_dominated_tau") * width
        )
        assert ("prior-dominated tau" in row["flags"]) == expect, aid
    assert "prior-dominated tau" in sof.loc[PFS, "flags"]  # 2 trials, nearly the prior


def test_flag_rules_name_their_thresholds():
    rules = flag_rules()
    assert "80%" in rules["prior-dominated tau"] and "50%" in rules["substantial heterogeneity"]
    assert {"single trial", "direction unknown"} <= set(rules)


def test_formatting():
    assert format_ratio_interval(0.4712, 0.2611, 0.8834) == "0.47 [0.26, 0.88]"
    assert format_ratio_interval(math.nan, 0.18, 1.33) == "[0.18, 1.33]"
    assert format_ratio_interval(0.2, 0.0088, 0.89) == "0.20 [0.0088, 0.89]"
    assert format_ratio_interval(1.0, math.nan, 2.0) == ""
    assert [format_probability(p) for p in (0.98, 0.996, 0.9995, 0.0004, 0.5)] == [
        "98%", "99.6%", ">99.9%", "<0.1%", "50%",
    ]  # fmt: skip


def test_table_html_links_groups_and_escapes(run, sof):
    frame = sof.reset_index()
    frame.loc[0, "flags"] = "<b>odd</b>"
    markup = findings_table_html(
        frame, plan=run.plan, table_id="summary-of-findings", anchors={PFS: "a-" + PFS}
    )
    assert markup.count('<table class="data findings" id="summary-of-findings">') == 1
    assert f'<a href="#a-{PFS}">Progression-free survival (HR)</a>' in markup
    assert "Efficacy" in markup and "Adverse events" in markup
    assert "<b>" not in markup and "&lt;b&gt;odd&lt;/b&gt;" in markup
    assert "Frequentist REML [95% CI]" in markup
    assert isinstance(frame, pd.DataFrame)
