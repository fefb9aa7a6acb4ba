"""Meta-regressions in analysis plans: validation, the fits of a run and the report's figure."""

from __future__ import annotations

import numpy as np
import pytest

from bayesmtor.errors import PlanError
from bayesmtor.plans import load_plan, parse_plan

HEAD = """
[plan]
name = "metareg"
description = "Meta-regression plan."
unit = "trial"
"""

PLAN = (
    HEAD
    + """
[frequentist]
method = "FE"

[[analysis]]
outcome = "orr"
comparison = "everolimus_*"
measure = "RR"
mods = ["setting"]

[[analysis]]
outcome = "orr"
comparison = "*"
measure = "RR"
mods = ["jadad_total"]
"""
)


def _one(body: str) -> str:
    return HEAD + "\n[[analysis]]\n" + body


def test_plan_with_mods_round_trips():
    plan = parse_plan(PLAN)
    assert [a.mods for a in plan.analyses] == [("setting",), ("jadad_total",)]
    again = parse_plan(plan.to_toml())
    assert again.analyses == plan.analyses
    assert [a.mods for a in load_plan("primary").analyses if a.mods] == [
        ("setting",),
        ("jadad_total",),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('outcome = "orr"\ncomparison = "*"\nmeasure = "RR"\nmods = "setting"\n',
         r"analysis\[1\]\.mods: must be a list"),
        ('outcome = "orr"\ncomparison = "*"\nmeasure = "RR"\nmods = ["setting"]\nbayes = "mcmc"\n',
         r"analysis\[1\]\.bayes: a meta-regression \(mods\) in a plan uses the exact engine"),
        ('outcome = "ae_any:*"\ncomparison = "*"\nmeasure = "RR"\nmods = ["setting"]\n',
         r"needs one outcome, not a wildcard"),
        ('outcome = "orr"\ncomparison = "everolimus_*"\nmeasure = "RR"\n',
         r"analysis\[1\]\.comparison"),
        ('outcome = "orr"\ncomparison = "*"\nmeasure = "RR"\nmods = ["a", "a"]\n',
         r"names a column twice"),
    ],
)  # fmt: skip
def test_bad_mods_fail_clearly(body, message):
    with pytest.raises(PlanError, match=message):
        parse_plan(_one(body))


def test_fit_regressions_matches_subgroups_with_fixed_effect():
    """An independent route: with FE weights, a meta-regression on one binary moderator gives
    the reference group's fixed-effect estimate as intercept and the difference of the two
    groups' fixed-effect estimates as slope (both with their inverse-variance SEs)."""
    import bayesmtor as bm
    from bayesmtor.datasets import comparative_dataset
    from bayesmtor.pipeline.regression import fit_regressions

    plan = parse_plan(PLAN)
    regs = fit_regressions(plan)
    setting, jadad = regs
    assert setting.fitted and jadad.fitted, (setting.reason, jadad.reason)
    assert setting.comparisons == ("everolimus_endocrine", "everolimus_neoadjuvant")
    assert setting.k == 5 and jadad.k == 6
    assert setting.freq.terms == ("intrcpt", "settingneoadjuvant")
    fits = [
        bm.rma(bm.escalc(comparative_dataset("orr", c, "trial").data, "RR"), method="FE")
        for c in setting.comparisons
    ]
    beta, se = setting.freq.beta, np.sqrt(np.diag(setting.freq.vb))
    np.testing.assert_allclose(beta[0], fits[0].estimate, rtol=1e-10)
    np.testing.assert_allclose(beta[1], fits[1].estimate - fits[0].estimate, rtol=1e-10)
    np.testing.assert_allclose(se[1], np.hypot(fits[0].se, fits[1].se), rtol=1e-10)
    # the exact posterior's tau prior is the plan's
    assert setting.exact.tau_prior == plan.priors.tau
    assert list(setting.table["setting"]) == ["metastatic"] * 2 + ["neoadjuvant"] * 3


def test_tables_and_bubble_plot_of_a_regression():
    from bayesmtor.pipeline.regression import fit_regressions
    from bayesmtor.reporting.regression import bubble_plot, regression_tables

    regs = fit_regressions(parse_plan(PLAN))

    class _Run:
        regressions = regs

    tables = regression_tables(_Run())
    coef = tables["meta_regression"]
    assert set(coef["engine"]) == {"frequentist", "exact"} and len(coef) == 8
    studies = tables["meta_regression_studies"]
    np.testing.assert_allclose(studies.groupby("analysis")["weight_percent"].sum(), 100.0)
    for reg in regs:
        ax = bubble_plot(reg)
        offsets = ax.collections[-1].get_offsets()
        assert len(offsets) == reg.k  # one bubble per trial
        assert "almost no power" in ax.get_title()
        ax.figure.clear()
