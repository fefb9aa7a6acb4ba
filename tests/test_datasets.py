"""Analysis-ready datasets: BOLERO-2 once per trial-level analysis, the paper's rows per report."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bayesmtor.data import load_efficacy_arms, load_hazard_ratios
from bayesmtor.datasets import (
    BOLERO2,
    COMPARISONS,
    Dataset,
    available_analyses,
    comparative_dataset,
    single_arm_cohort,
)
from bayesmtor.errors import InputError

RULES = [None, "partition:visceral_metastases", "partition:region"]

#: Published pooled RRs reproduced from the derived counts. The counts are rounded from
#: percentages printed to 0.1-1 percentage point and the paper prints 2 decimals, so the
#: Mantel-Haenszel RR and its CI limits can differ by a few hundredths.
TOL_PUBLISHED_RR = 0.02


def _mh_rr(frame: pd.DataFrame) -> tuple[float, float, float]:
    """Mantel-Haenszel pooled risk ratio with the Greenland-Robins 95% CI."""
    a, n1 = frame["events_trt"].to_numpy(float), frame["n_trt"].to_numpy(float)
    c, n2 = frame["events_ctl"].to_numpy(float), frame["n_ctl"].to_numpy(float)
    tot = n1 + n2
    r, s = np.sum(a * n2 / tot), np.sum(c * n1 / tot)
    p = np.sum((n1 * n2 * (a + c) - a * c * tot) / tot**2)
    rr, se = r / s, math.sqrt(p / (r * s))
    return rr, rr * math.exp(-1.959964 * se), rr * math.exp(1.959964 * se)


@pytest.fixture(scope="module")
def analyses() -> dict[str | None, pd.DataFrame]:
    return {rule: available_analyses("trial", bolero2=rule) for rule in RULES}


@pytest.mark.slow
@pytest.mark.parametrize("rule", RULES)
def test_trial_unit_counts_bolero2_at_most_once(rule, analyses):
    for row in analyses[rule].itertuples(index=False):
        ds = comparative_dataset(row.outcome, row.comparison, unit="trial", bolero2=rule)
        assert ds.data["trial_id"].is_unique, (rule, row.outcome, row.comparison)
        assert ds.k == row.k >= 1
        assert (ds.data["trial_id"] == BOLERO2).sum() <= 1


def test_default_rule_picks_the_latest_usable_full_report():
    pick = {o: comparative_dataset(o, "everolimus_endocrine").data for o in ("pfs", "orr", "cbr")}
    bolero = {o: d.loc[d["trial_id"] == BOLERO2, "report_id"].tolist() for o, d in pick.items()}
    # Novartis 2012 prints its HR without a CI, so PFS falls back to Baselga 2012
    assert bolero == {"pfs": ["baselga2012"], "orr": ["novartis2012"], "cbr": ["hortobagyi2011"]}
    pfs = comparative_dataset("pfs", "everolimus_endocrine")
    reasons = dict(zip(pfs.excluded["report_id"], pfs.excluded["reason"], strict=False))
    assert "without CI" in reasons["novartis2012"]
    assert "BOLERO-2" in reasons["hortobagyi2011"]
    named = comparative_dataset("orr", "everolimus_endocrine", bolero2="report:baselga2012")
    assert "baselga2012" in named.data["report_id"].tolist()


def test_report_unit_reproduces_the_papers_rows():
    orr = comparative_dataset("orr", "everolimus_endocrine", unit="report")
    assert orr.data["study"].tolist() == [
        "BOLERO-2 (Baselga 2012)",
        "BOLERO-2 (Hortobagyi 2011)",
        "BOLERO-2 (Noguchi 2013, Asian)",
        "BOLERO-2 (Noguchi 2013, non-Asian)",
        "BOLERO-2 (Novartis 2012)",
        "Bachelot 2012",
    ]
    cbr = comparative_dataset("cbr", "everolimus_endocrine", unit="report")
    assert cbr.k == 6 and (cbr.data["trial_id"] == BOLERO2).sum() == 5
    pfs = comparative_dataset("pfs", "everolimus_endocrine", unit="report")
    assert pfs.k == 7 and pfs.measure == "HR" and pfs.input_shape == "ratio_ci"
    # Table 1 numbers carried through unchanged
    hort = pfs.data.set_index("report_id").loc["hortobagyi2011"]
    assert (hort["estimate"], hort["ci_low"], hort["ci_high"]) == (0.44, 0.36, 0.53)
    campone = cbr.data.set_index("study").loc["BOLERO-2 (Campone 2013, visceral metastases)"]
    assert (campone["events_trt"], campone["n_trt"], campone["n_ctl"]) == (121, 271, 135)


@pytest.mark.parametrize(
    ("outcome", "comparison", "published"),
    [
        # Figure 2B: pooled RR for CBR 1.92, 95% CI 1.69-2.17 (fixed effect)
        ("cbr", "everolimus_endocrine", (1.92, 1.69, 2.17)),
        # Figure 3A: pooled RR for neoadjuvant ORR 0.9, 95% CI 0.77-1.05
        ("orr", "everolimus_neoadjuvant", (0.90, 0.77, 1.05)),
    ],
)
def test_report_unit_counts_reproduce_published_pooled_rr(outcome, comparison, published):
    ds = comparative_dataset(outcome, comparison, unit="report")
    got = _mh_rr(ds.data)
    assert np.allclose(got, published, atol=TOL_PUBLISHED_RR), got


def test_partition_rules_sum_the_levels():
    arms = load_efficacy_arms()
    for rule, rep in (
        ("partition:visceral_metastases", "campone2013"),
        ("partition:region", "noguchi2013"),
    ):
        ds = comparative_dataset("cbr", "everolimus_endocrine", bolero2=rule)
        row = ds.data[ds.data["trial_id"] == BOLERO2].iloc[0]
        assert row["report_id"] == rep and row["level"] == "combined"
        src = arms[(arms["report_id"] == rep) & (arms["outcome"] == "cbr")]
        for arm in ("trt", "ctl"):
            part = src[src["arm"] == arm]
            assert row[f"events_{arm}"] == part["events"].sum()
            assert row[f"n_{arm}"] == part["n"].sum()
        assert (row["n_trt"], row["n_ctl"]) == (485, 239)
        reasons = ds.excluded.set_index("report_id")["reason"]
        assert "BOLERO-2" in reasons["hortobagyi2011"]


def test_partition_rule_combines_log_hr_by_inverse_variance():
    ds = comparative_dataset("pfs", "everolimus_endocrine", bolero2="partition:region")
    row = ds.data[ds.data["trial_id"] == BOLERO2].iloc[0]
    hr = load_hazard_ratios()
    sub = hr[hr["report_id"] == "noguchi2013"]
    y = np.log(sub["hr"].to_numpy())
    se = (np.log(sub["ci_high"].to_numpy()) - np.log(sub["ci_low"].to_numpy())) / (2 * 1.959964)
    w = 1 / se**2
    assert math.isclose(row["estimate"], math.exp(np.sum(w * y) / np.sum(w)), rel_tol=1e-6)
    assert sub["hr"].min() <= row["estimate"] <= sub["hr"].max()
    assert "approximates" in row["notes"]


def test_partition_rule_errors_when_the_outcome_is_missing():
    with pytest.raises(InputError, match="lacks a usable 'orr'"):
        comparative_dataset("orr", "everolimus_endocrine", bolero2="partition:visceral_metastases")
    with pytest.raises(InputError, match="lacks a usable 'ae_any:pneumonitis'"):
        comparative_dataset(
            "ae_any:pneumonitis", "everolimus_endocrine", bolero2="partition:region"
        )


def test_exclusions_carry_reasons():
    ds = comparative_dataset("ae_grade34:rash", "temsirolimus_endocrine", unit="report")
    assert ds.k == 0  # Wolff 2013 control printed "< 0.5%"
    reasons = ds.excluded.set_index("report_id")["reason"]
    assert "< 0.5%" in reasons["wolff2013"]
    assert reasons["west_iran_cohort"] == "single-arm cohort: no comparator"
    assert "Table 5 only" in reasons["bhattacharyya2011"]
    for outcome, comparison in (
        ("orr", "temsirolimus_endocrine"),
        ("ae_grade34:dyspnea", "temsirolimus_endocrine"),
    ):
        ex = comparative_dataset(outcome, comparison).excluded
        assert (ex["reason"].str.len() > 0).all()
        assert ex["report_id"].isin(["wolff2013", "chow2006"]).any()
    dys = comparative_dataset("ae_grade34:dyspnea", "temsirolimus_endocrine").excluded
    assert "grade 3-5" in dys.set_index("report_id").loc["chow2006", "reason"]


def test_dataset_object_and_listing(analyses):
    ds = comparative_dataset("orr", "everolimus_neoadjuvant")
    assert isinstance(ds, Dataset) and ds.measure == "RR" and ds.input_shape == "counts"
    assert list(ds.data.columns[:7]) == [
        "study",
        "trial_id",
        "report_id",
        "partition",
        "level",
        "drug_class",
        "comparison",
    ]
    assert {"events_trt", "n_trt", "events_ctl", "n_ctl"} <= set(ds.data.columns)
    assert "Baselga 2009" in ds.describe() and "k=3" in repr(ds)
    table = analyses[None]
    assert set(table["comparison"]) == set(COMPARISONS)
    key = table.set_index(["outcome", "comparison"])["k"]
    assert key[("orr", "everolimus_endocrine")] == 2
    assert key[("orr", "everolimus_neoadjuvant")] == 3
    assert key[("pfs", "everolimus_endocrine")] == 2
    assert (table["k"] >= 1).all()


def test_bad_arguments_raise_input_error():
    with pytest.raises(InputError, match="unknown outcome"):
        comparative_dataset("os", "everolimus_endocrine")
    with pytest.raises(InputError, match="unknown comparison"):
        comparative_dataset("orr", "sirolimus")
    with pytest.raises(InputError, match="unknown unit"):
        comparative_dataset("orr", "everolimus_endocrine", unit="arm")
    with pytest.raises(InputError, match="unknown bolero2 rule"):
        comparative_dataset("orr", "everolimus_endocrine", bolero2="first")
    with pytest.raises(InputError, match="only to unit='trial'"):
        comparative_dataset(
            "orr", "everolimus_endocrine", unit="report", bolero2="latest_full_report"
        )
    with pytest.raises(InputError, match="not a full-population BOLERO-2 report"):
        comparative_dataset("pfs", "everolimus_endocrine", bolero2="report:novartis2012")


def test_single_arm_cohort_is_never_pooled():
    cohort = single_arm_cohort()
    assert cohort.reason.startswith("single-arm cohort: no comparator")
    assert cohort.summary()["os_5yr_percent"].tolist() == [93.3, 42.8, 72.7]
    assert "P=0.006" in cohort.describe()
