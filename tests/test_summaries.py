"""Summary tables: one row per outcome x drug class, and the Bayesian/frequentist join."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesmtor import pymc_models as pmm
from bayesmtor.errors import InputError
from bayesmtor.exact import exact_posterior
from bayesmtor.summaries import BAYES_COLUMNS, bayes_summary_table, side_by_side

# Colditz et al. (1994), JAMA 271:698, Table 1 (R: metadat::dat.bcg), trials 1-6:
# tpos, tneg, cpos, cneg. Used only as realistic input; no reference values are taken.
COUNTS = np.array(
    [
        [4, 119, 11, 128],
        [6, 300, 29, 274],
        [3, 228, 11, 209],
        [62, 13536, 248, 12619],
        [33, 5036, 47, 5761],
        [180, 1361, 372, 1079],
    ],
    dtype=float,
)


def _log_rr() -> tuple[np.ndarray, np.ndarray]:
    a, b, c, d = COUNTS.T
    yi = np.log(a / (a + b)) - np.log(c / (c + d))
    return yi, np.sqrt(1 / a - 1 / (a + b) + 1 / c - 1 / (c + d))


@pytest.fixture(scope="module")
def results():
    yi, sei = _log_rr()
    mcmc = pmm.fit_normal_normal(yi, sei, measure="RR", draws=1000, chains=2, random_seed=21)
    exact = exact_posterior(yi, sei)
    return {("pfs", "everolimus_endocrine"): mcmc, ("pfs", "temsirolimus_endocrine"): exact}


@pytest.mark.mcmc
def test_bayes_summary_table_columns_and_rows(results):
    table = bayes_summary_table(results, threshold=0.8)
    assert list(table.columns) == ["outcome", "drug_class", *BAYES_COLUMNS]
    assert len(table) == 2
    mc = table.set_index("drug_class").loc["everolimus_endocrine"]
    ex = table.set_index("drug_class").loc["temsirolimus_endocrine"]
    assert mc["engine"] == "mcmc" and ex["engine"] == "exact"
    assert mc["divergences"] == 0 and bool(mc["converged"])
    assert np.isnan(ex["rhat_max"]) and bool(ex["converged"])
    for row in (mc, ex):
        assert row["mu_low"] < row["mu_median"] < row["mu_high"]
        assert row["ratio_median"] == pytest.approx(np.exp(row["mu_median"]))
        assert row["pred_low"] < row["mu_low"] and row["pred_high"] > row["mu_high"]
        assert 0 <= row["p_ratio_below_threshold"] <= row["p_ratio_below_1"] <= 1
        assert row["threshold"] == 0.8 and row["k"] == 6
    # same data and priors: the two engines describe the same posterior (loose check; the
    # Monte Carlo agreement test in test_pymc_models.py is the strict one)
    assert mc["mu_median"] == pytest.approx(ex["mu_median"], abs=0.05)


@pytest.mark.mcmc
def test_ci_prob_narrows_intervals(results):
    wide = bayes_summary_table(results)
    narrow = bayes_summary_table(results, ci_prob=0.5)
    assert np.all(narrow["mu_high"] - narrow["mu_low"] < wide["mu_high"] - wide["mu_low"])
    assert wide["p_ratio_below_threshold"].isna().all()


@pytest.mark.mcmc
def test_side_by_side_prefixes_and_join(results):
    bayes = bayes_summary_table(results)
    freq = pd.DataFrame(
        {
            "outcome": ["pfs", "orr"],
            "drug_class": ["everolimus_endocrine", "everolimus_endocrine"],
            "estimate": [-0.7, 0.3],
            "ci_low": [-1.1, 0.1],
            "ci_high": [-0.3, 0.5],
            "tau2": [0.3, 0.0],
            "I2": [90.0, 0.0],
        }
    ).set_index(["outcome", "drug_class"])
    freq_before = freq.copy()
    out = side_by_side(bayes, freq)
    pd.testing.assert_frame_equal(freq, freq_before)  # caller's table untouched
    assert out.columns[:2].tolist() == ["outcome", "drug_class"]
    assert {"bayes_mu_median", "bayes_converged", "freq_estimate", "freq_tau2"} <= set(out.columns)
    assert all(c.startswith(("bayes_", "freq_")) for c in out.columns[2:])
    assert len(out) == 3  # outer join: pfs x 2 classes from bayes, orr from freq only
    row = out[(out.outcome == "pfs") & (out.drug_class == "everolimus_endocrine")].iloc[0]
    assert row["freq_estimate"] == -0.7 and row["bayes_engine"] == "mcmc"


def test_input_errors():
    with pytest.raises(InputError, match="drug_class"):
        side_by_side(pd.DataFrame({"outcome": ["pfs"]}), pd.DataFrame({"outcome": ["pfs"]}))
    with pytest.raises(InputError, match="more than one row"):
        dup = pd.DataFrame({"outcome": ["pfs", "pfs"], "drug_class": ["a", "a"]})
        side_by_side(dup, dup.iloc[:1])
    with pytest.raises(InputError, match="expected a BayesResult"):
        bayes_summary_table({("pfs", "a"): object()})
    with pytest.raises(InputError, match="ci_prob"):
        bayes_summary_table({}, ci_prob=1.5)
