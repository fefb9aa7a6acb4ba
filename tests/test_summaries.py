"""The pooled-result schema: the same columns for the frequentist fit, the exact and the MCMC
posterior, and the side-by-side comparison built from it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesmtor as bm
from bayesmtor import schema
from bayesmtor.bayes.exact import exact_batch
from bayesmtor.errors import InputError

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
def fits():
    yi, sei = _log_rr()
    freq = bm.rma(yi, sei, method="REML", measure="RR")
    exact = bm.bayesmeta(yi, sei, measure="RR")
    return freq, exact


def test_rows_share_the_columns(fits):
    freq, exact = fits
    rows = [schema.pooled_row(r) for r in (freq, exact)]
    rows.append(schema.pooled_row(exact.posterior, measure="RR"))
    for row in rows:
        assert tuple(row) == schema.POOLED_COLUMNS
        assert row["k"] == 6 and row["measure"] == "RR" and row["ci_prob"] == 0.95
        assert row["ci_low"] < row["estimate"] < row["ci_high"]
        assert row["pred_low"] < row["ci_low"] and row["pred_high"] > row["ci_high"]
        assert row["tau2"] == pytest.approx(row["tau"] ** 2)
    assert rows[0]["engine"] == "frequentist" and rows[1]["engine"] == "exact"
    assert rows[0]["tau_low"] == pytest.approx(np.sqrt(freq.tau2_ci_low))
    assert rows[0]["I2"] == freq.I2_tau  # random effects: metafor's I2, in percent
    post = exact.posterior
    assert rows[1]["estimate"] == pytest.approx(post.mu_quantile(0.5))
    assert rows[1]["se"] == pytest.approx(post.mu_sd())
    assert rows[1]["I2"] == pytest.approx(100 * post.i2_quantile(0.5))  # percent, not a share
    assert rows[1]["p_mu_below_0"] == pytest.approx(post.p_mu_below(0.0))
    assert np.isnan(rows[1]["pval"]) and np.isnan(rows[0]["p_mu_below_0"])


def test_exact_table_frame_matches_the_single_posterior(fits):
    _, exact = fits
    yi, sei = _log_rr()
    table = exact_batch(yi[None, :], sei[None, :], ci_prob=0.9)
    s2 = exact.posterior.s2_typical
    frame = schema.exact_table_frame(
        table, measure="RR", ci_prob=0.9, tau_prior=exact.posterior.tau_prior,
        mu_prior=exact.posterior.mu_prior, s2_typical=s2,
    )  # fmt: skip
    one = schema.pooled_row(exact, ci_prob=0.9)
    assert list(frame.columns) == list(schema.POOLED_COLUMNS)
    for col in ("estimate", "ci_low", "ci_high", "tau", "tau_low", "tau_high", "I2", "pred_low"):
        assert frame.loc[0, col] == pytest.approx(one[col], rel=1e-6), col
    assert frame.loc[0, "tau_prior"] == one["tau_prior"]


def test_frequentist_table_frame_matches_the_single_fit():
    yi, sei = _log_rr()
    frame = pd.DataFrame({"study": [f"s{i}" for i in range(6)], "yi": yi, "sei": sei})
    frame["g"] = ["a", "a", "a", "b", "b", "b"]
    table = bm.frequentist.pool_groups(frame, by="g", measure="generic", method="DL")
    rows = schema.frequentist_table_frame(table)
    one = schema.pooled_row(bm.rma(yi[:3], sei[:3], method="DL", measure="generic"))
    for col in ("estimate", "se", "ci_low", "tau", "tau_low", "tau_high", "I2", "pred_low"):
        assert rows.loc[0, col] == pytest.approx(one[col], nan_ok=True), col


def test_pooled_frame_and_json_record(fits):
    freq, exact = fits
    frame = schema.pooled_frame({("pfs", "freq"): freq, ("pfs", "exact"): exact}, by=("o", "d"))
    assert list(frame.columns) == ["o", "d", *schema.POOLED_COLUMNS]
    assert frame["engine"].tolist() == ["frequentist", "exact"]
    rec = schema.json_record({**schema.pooled_row(exact), "excluded": (("x", "why"),)})
    assert rec["excluded"] == [{"study": "x", "reason": "why"}] and rec["pval"] is None


def test_compare_side_by_side(fits):
    freq, exact = fits
    table = bm.compare(exact, freq)
    assert list(table.columns) == ["bayesian", "frequentist"]
    assert table.loc["engine"].tolist() == ["exact", "frequentist"]
    assert table.loc["ratio", "frequentist"] == pytest.approx(np.exp(freq.estimate))
    assert table.loc["estimate", "bayesian"] == schema.pooled_row(exact)["estimate"]


@pytest.mark.mcmc
def test_mcmc_row_beside_exact():
    yi, sei = _log_rr()
    mcmc = bm.bayesmeta(
        yi, sei, engine="mcmc", measure="RR", random_seed=21,
        sample_kwargs={"draws": 1000, "chains": 2},
    )  # fmt: skip
    row = schema.pooled_row(mcmc)
    exact = schema.pooled_row(bm.bayesmeta(yi, sei, measure="RR"))
    assert tuple(row) == schema.POOLED_COLUMNS and row["engine"] == "mcmc"
    assert row["divergences"] == 0 and row["converged"]
    assert 0 <= row["I2"] <= 100
    # same data and priors: both engines describe one posterior (loose; the Monte Carlo check
    # in test_mcmc_vs_exact.py is the strict one)
    assert abs(row["estimate"] - exact["estimate"]) < 0.05
    assert mcmc.summary().index.tolist() == bm.bayesmeta(yi, sei).summary().index.tolist()


def test_input_errors(fits):
    freq, exact = fits
    with pytest.raises(InputError, match="cannot describe"):
        schema.pooled_row(object())
    with pytest.raises(InputError, match="refit"):
        schema.pooled_row(freq, ci_prob=0.9)
    with pytest.raises(InputError, match="freq_result"):
        bm.compare(exact, exact)
    with pytest.raises(InputError, match="'by'"):
        schema.pooled_frame({"a": freq}, by=("x", "y"))
