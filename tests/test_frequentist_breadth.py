"""Heterogeneity intervals, tau2_se, HS/EB, both prediction intervals, subgroups, leave-one-out,
cumulative meta-analysis, Egger's and Begg's tests, rma.mh's all-event tables and metafor's input
names, each against R metafor.

Reference values: tests/reference/breadth_reference.json, written once by
tests/reference/breadth_reference.R (the R call of every value is stored next to it) with tight
convergence, from the data in tests/reference/breadth_datasets/ (the files read here).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

import bayesmtor as bm
from bayesmtor import cli, config, frequentist
from bayesmtor.errors import InputError, LowPowerWarning
from bayesmtor.frequentist import sensitivity
from bayesmtor.schema import HETEROGENEITY_COLUMNS, POOLED_COLUMNS, SECTION_KEYS

REF_DIR = Path(__file__).parent / "reference"
DATA = REF_DIR / "breadth_datasets"
REL_TOL = 1e-6  # metafor run with threshold = tol = 1e-13: both sides converge far below this
QP_TOL = 1e-4  # Q-profile bounds, the tolerance asked for; reached: about 1e-13 (see test)
ABS_TOL = 1e-10  # for values that are 0 on both sides
METHODS = ("DL", "REML", "HS", "EB", "ML")
FITS = [("bcg", "RR"), ("bcg", "OR"), ("hackshaw", "generic"), ("normand", "generic")]


@pytest.fixture(scope="module")
def ref() -> dict:
    with open(REF_DIR / "breadth_reference.json", encoding="utf-8") as fh:
        return {k: v["values"] for k, v in json.load(fh)["references"].items()}


def _close(ours, theirs, what, rtol=REL_TOL) -> None:
    ours = np.array([np.nan if x is None else x for x in np.atleast_1d(ours)], dtype=float)
    theirs = np.array([np.nan if x is None else x for x in np.atleast_1d(theirs)], dtype=float)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=ABS_TOL, err_msg=what)


def _meta(name: str):
    return bm.read_meta_data(DATA / f"{name}.csv")


def _pool_json(capsys, argv: list[str]) -> dict:
    code = cli.main(["pool", *argv, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


# --------------------------------------------------------------------------------------------
# fits: estimators, tau2_se, heterogeneity intervals, both prediction intervals
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("name", "measure"), FITS)
def test_fit_matches_metafor(ref, name, measure, method):
    r = ref[f"{name}/{measure}/{method}"]
    res = frequentist.meta_analysis(_meta(name), measure=measure, method=method, pi="z")
    for key in ("k", "estimate", "se", "ci_low", "ci_high", "pval", "Q", "Q_pval", "tau2"):
        _close(getattr(res, key), r[key], f"{name} {measure} {method} {key}")
    _close(res.I2_tau, r["I2_tau"], "I2_tau")
    _close(res.H2_tau, r["H2_tau"], "H2_tau")
    # tau2_se: metafor's se.tau2 for ML and REML; null for the other estimators (by design)
    if method in ("ML", "REML"):
        _close(res.tau2_se, r["tau2_se"], "tau2_se")
    else:
        assert math.isnan(res.tau2_se) and res.to_dict()["tau2_se"] is None
    for q in ("tau2", "tau", "I2", "H2"):
        for side in ("low", "high"):
            _close(getattr(res, f"{q}_ci_{side}"), r[f"{q}_ci_{side}"], f"{q}_ci_{side}", QP_TOL)
    _close([res.pi_low, res.pi_high], [r["pi_low_z"], r["pi_high_z"]], "predict() z interval")
    t = frequentist.meta_analysis(_meta(name), measure=measure, method=method, pi="t")
    _close([t.pi_low, t.pi_high], [r["pi_low_t"], r["pi_high_t"]], "t(k-2) interval")
    assert t.pi_dist == "t" and res.pi_dist == "z"


def test_q_profile_bounds_reach_machine_precision(ref):
    """The bounds are roots found to floating-point resolution, far inside QP_TOL."""
    worst = 0.0
    for name, measure in FITS:
        for method in METHODS:
            r = ref[f"{name}/{measure}/{method}"]
            res = frequentist.meta_analysis(_meta(name), measure=measure, method=method)
            for side in ("low", "high"):
                theirs = r[f"tau2_ci_{side}"]
                if theirs:
                    worst = max(worst, abs(getattr(res, f"tau2_ci_{side}") / theirs - 1))
    assert worst < 1e-10, worst


def test_upper_bound_is_not_capped_where_metafor_default_would_be(ref):
    """k = 2: the upper Q-profile bound of tau2 (246.4) lies above metafor's default search
    limit max(100, 10 tau2) = 100; the reference used tau2.max = 1e5, and so do we, unasked."""
    r = ref["bcg_k2/RR/DL"]
    assert r["tau2_ci_high"] > 100
    for method in METHODS:
        res = frequentist.meta_analysis(_meta("bcg_k2"), measure="RR", method=method, pi="z")
        _close(res.tau2_ci_high, r["tau2_ci_high"], f"{method} tau2_ci_high", QP_TOL)
        for key in ("estimate", "se", "tau2", "I2_ci_high", "H2_ci_high", "tau_ci_high"):
            _close(getattr(res, key), ref[f"bcg_k2/RR/{method}"][key], f"k=2 {method} {key}")


def test_k2_prediction_interval_z_only(ref):
    """pi='z' is defined for k = 2 (metafor predict()); t(k-2) = t(0) is not."""
    r = ref["bcg_k2/RR/REML"]
    z = frequentist.meta_analysis(_meta("bcg_k2"), measure="RR", method="REML", pi="z")
    _close([z.pi_low, z.pi_high], [r["pi_low_z"], r["pi_high_z"]], "k=2 z interval")
    with pytest.warns(bm.errors.NotEstimableWarning, match="k >= 3"):
        t = frequentist.meta_analysis(_meta("bcg_k2"), measure="RR", method="REML", pi="t")
    assert math.isnan(t.pi_low) and t.to_dict()["pi_high"] is None


def test_default_prediction_interval_is_t_from_config():
    assert config.defaults["pi_dist"] == "t"
    assert "Cochrane" in config.REGISTRY["pi_dist"].reason
    res = bm.rma(bm.escalc(_meta("bcg"), "RR"), method="REML")
    assert res.pi_dist == "t"
    with pytest.raises(InputError, match="prediction-interval"):
        bm.rma(bm.escalc(_meta("bcg"), "RR"), method="REML", pi="normal")


def test_eb_equals_pm():
    es = bm.escalc(_meta("hackshaw"), "generic")
    eb, pm = bm.rma(es, method="EB"), bm.rma(es, method="PM")
    assert eb.tau2 == pytest.approx(pm.tau2, rel=1e-12)


def test_confint_like_metafor(ref):
    res = bm.rma(bm.escalc(_meta("bcg"), "RR"), method="REML")
    table = bm.confint(res)
    r = ref["bcg/RR/REML"]
    assert list(table.index) == ["tau2", "tau", "I2", "H2"]
    _close(table.loc["I2"].tolist(), [r["I2_tau"], r["I2_ci_low"], r["I2_ci_high"]], "I2 row")
    _close(table.loc["tau"].tolist()[1:], [r["tau_ci_low"], r["tau_ci_high"]], "tau row")
    fe = bm.rma(bm.escalc(_meta("bcg"), "RR"), method="FE")
    assert bm.confint(fe).isna().all().all()
    with pytest.raises(InputError, match="PoolResult"):
        bm.confint("not a fit")


def test_schema_lists_the_new_keys_for_every_result_kind():
    """Frequentist rows carry them; fixed-effect fits and posteriors give None."""
    assert set(HETEROGENEITY_COLUMNS) <= set(POOLED_COLUMNS)
    es = bm.escalc(_meta("normand"), "generic")
    fe = bm.schema.json_record(bm.schema.pooled_row(bm.rma(es, method="FE")))
    assert all(fe[key] is None for key in HETEROGENEITY_COLUMNS)
    post = bm.bayesmeta(es)
    row = bm.schema.json_record(bm.schema.pooled_row(post))
    assert all(row[key] is None for key in HETEROGENEITY_COLUMNS)


# --------------------------------------------------------------------------------------------
# subgroups, leave-one-out, cumulative, bias: the CLI sections
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("measure", ["RR", "OR"])
def test_subgroups_leave_one_out_cumulative_match_metafor(ref, capsys, measure, method):
    out = _pool_json(
        capsys,
        [
            str(DATA / "bcg.csv"),
            "--measure", measure, "--method", method, "--pi", "z",
            "--subgroup", "alloc", "--leave-one-out", "--cumulative", "year",
        ],
    )  # fmt: skip
    base = f"bcg/{measure}/{method}"
    _close(out["estimate"], ref[base]["estimate"], "overall fit stays on top")
    sub = ref[f"{base}/subgroup_alloc"]
    assert [g["level"] for g in out["subgroups"]] == ["alternate", "random", "systematic"]
    for ours, theirs in zip(out["subgroups"], sub["subgroups"], strict=True):
        assert list(ours) == list(SECTION_KEYS["subgroups"])
        for key in SECTION_KEYS["subgroups"][1:]:
            _close(ours[key], theirs[key], f"subgroup {ours['level']} {key}")
    for key in SECTION_KEYS["subgroup_test"]:
        _close(out[key], sub[key], key)
    loo = ref[f"{base}/leave1out"]
    assert [r["omitted"] for r in out["leave_one_out"]] == loo["omitted"]  # file order
    for key in SECTION_KEYS["leave_one_out"][1:]:
        _close([r[key] for r in out["leave_one_out"]], loo[key], f"leave1out {key}")
    _check_cumulative(out["cumulative"], ref[f"{base}/cumul_year"], method)


def _check_cumulative(rows, cum, method):
    """Against cumul(); for ML/REML against the global likelihood maximum of each step, which
    the R script finds with optimize() (metafor's Fisher scoring stops at tau2 ~ 0 on some ML
    steps of dat.bcg, at a log-likelihood up to 0.19 lower)."""
    assert [r["added"] for r in rows] == cum["added"]
    want = cum
    if "global" in cum:  # metafor's value where it is the maximum, optimize()'s where not
        g = cum["global"]
        worse = [x is not None and x > 1e-8 for x in g["loglik_gain"]]
        want = {
            key: [gv if w else mv for gv, mv, w in zip(g[key], cum[key], worse, strict=True)]
            for key in ("estimate", "ci_low", "ci_high", "tau2")
        }
    for key in ("estimate", "ci_low", "ci_high"):
        _close([r[key] for r in rows], want[key], f"cumul {key}")
    _close([r["k"] for r in rows], cum["k"], "cumul k")
    # tau2 with one study is not estimable: null (metafor prints 0)
    assert rows[0]["tau2"] is None
    _close([r["tau2"] for r in rows[1:]], want["tau2"][1:], "cumul tau2")


@pytest.mark.parametrize("method", ["REML", "HS", "ML"])
def test_cumulative_with_tied_years_keeps_file_order(ref, method):
    """dat.hackshaw1998: 37 studies, many sharing a year; metafor's order() is stable too."""
    table = frequentist.cumulative(
        _meta("hackshaw"), order="year", measure="generic", method=method
    )
    rows = [
        {**r, "tau2": None if np.isnan(r["tau2"]) else r["tau2"]} for r in table.to_dict("records")
    ]
    _check_cumulative(rows, ref[f"hackshaw/generic/{method}/cumul_year"], method)


def test_metafor_ml_cumul_stops_below_the_maximum_where_we_do_not(ref):
    """The ML steps where cumul() disagrees are those where its tau2 has a lower likelihood."""
    cum = ref["bcg/RR/ML/cumul_year"]
    gain = np.array([np.nan if g is None else g for g in cum["global"]["loglik_gain"]])
    assert np.nanmax(gain) > 0.1  # metafor's fit is worse there, by the R script's own ll()
    assert np.all(gain[~np.isnan(gain)] > -1e-9)  # and never better


@pytest.mark.parametrize("name", ["bcg/RR", "bcg/OR", "hackshaw/generic", "normand/generic"])
def test_bias_tests_match_regtest_and_ranktest(ref, capsys, name):
    data, measure = name.split("/")
    r = ref[f"{name}/bias"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowPowerWarning)
        out = _pool_json(capsys, [str(DATA / f"{data}.csv"), "--measure", measure, "--bias"])
    assert list(out["egger"]) == list(SECTION_KEYS["egger"])
    for key in SECTION_KEYS["egger"]:
        _close(out["egger"][key], r[key], f"egger {key}")
    _close(out["begg"]["tau"], r["begg_tau"], "Kendall's tau")
    _close(out["begg"]["pval"], r["begg_pval"], "Begg p (exact: no ties)")


def test_rank_test_with_ties_uses_the_normal_approximation(ref):
    r = ref["normand_tied_se/generic/ranktest"]
    with pytest.warns(LowPowerWarning, match="k = 9"):
        res = bm.ranktest(_meta("normand_tied_se"), measure="generic")
    assert not res.exact
    _close([res.tau, res.pval], [r["begg_tau"], r["begg_pval"]], "ranktest with ties")


def test_exact_kendall_distribution_against_enumeration():
    """The exact p-value by the Mahonian recursion equals counting all permutations (n = 6)."""
    import itertools

    x = np.array([0.3, -1.2, 0.8, 2.0, -0.1, 1.1])
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    tau, p, exact = sensitivity._kendall(x, y)
    assert exact

    def s_of(perm):
        return sum(np.sign(perm[i] - perm[j]) for i in range(6) for j in range(i + 1, 6))

    s_obs = tau * 15
    stats = [s_of(perm) for perm in itertools.permutations(range(6))]
    p_enum = 2 * min(
        np.mean([s >= s_obs - 1e-9 for s in stats]), np.mean([s <= s_obs + 1e-9 for s in stats])
    )
    assert p == pytest.approx(min(p_enum, 1.0), rel=1e-12)


def test_bias_warns_of_low_power_below_ten_studies(capsys):
    code = cli.main(["pool", str(DATA / "normand.csv"), "--measure", "generic", "--bias"])
    err = capsys.readouterr().err
    assert code == 0
    assert "Egger's test with k = 9" in err and "little power" in err
    with pytest.warns(LowPowerWarning):
        bm.regtest(_meta("normand"), measure="generic")


def test_sections_refused_with_by_or_bayes(capsys):
    for extra in (["--by", "alloc"], ["--bayes"]):
        code = cli.main(["pool", str(DATA / "bcg.csv"), "--measure", "RR", "--bias", *extra])
        assert code == 2 and "cannot be combined" in capsys.readouterr().err


def test_subgroup_column_errors_name_the_place(tmp_path, capsys):
    code = cli.main(["pool", str(DATA / "bcg.csv"), "--measure", "RR", "--subgroup", "nope"])
    assert code == 2 and "--subgroup column 'nope' not found" in capsys.readouterr().err
    path = tmp_path / "gap.csv"
    path.write_text("study,g,yi,sei\nA,x,0.1,0.2\nB,,0.3,0.2\nC,y,0.2,0.3\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        sensitivity.pool_sections(
            bm.read_meta_data(path), measure="generic", method="DL", subgroup="g"
        )
    assert (info.value.line, info.value.column) == (3, "g")


# --------------------------------------------------------------------------------------------
# Mantel-Haenszel without correction; metafor's input names; separators
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("measure", ["RR", "OR"])
def test_mh_none_keeps_all_event_tables_like_rma_mh(ref, measure):
    r = ref[f"bcg_full/{measure}/MH_none"]
    meta = _meta("bcg_full")
    res = frequentist.meta_analysis(meta, measure=measure, method="MH", mh_correction="none")
    for key in ("estimate", "se", "ci_low", "ci_high", "Q"):
        _close(getattr(res, key), r[key], f"MH none {key}")
    assert res.k == r["k_yi"] == 13  # the all-event table is out of Q (drop00), as in metafor
    # RevMan's rule drops it from the estimate too, which moves RR (the number the spec quotes)
    revman = frequentist.meta_analysis(meta, measure=measure, method="MH")
    if measure == "RR":
        assert abs(revman.estimate - r["estimate"]) > 0.01
        assert "still enter the Mantel-Haenszel estimate" in res.excluded[0][1]


@pytest.mark.parametrize("shape", ["bcg_cells", "bcg_n", "bcg_semicolon", "bcg_tab"])
def test_every_file_shape_and_separator_gives_the_same_json(capsys, shape):
    argv = ["--measure", "OR", "--method", "REML", "--subgroup", "alloc", "--cumulative", "year"]
    base = _pool_json(capsys, [str(DATA / "bcg.csv"), *argv])
    other = _pool_json(capsys, [str(DATA / f"{shape}.csv"), *argv])
    assert other == base
    bayes = ["--measure", "OR", "--bayes"]  # the Bayesian side reads them alike
    assert _pool_json(capsys, [str(DATA / f"{shape}.csv"), *bayes]) == _pool_json(
        capsys, [str(DATA / "bcg.csv"), *bayes]
    )


def test_metafor_cell_names_read_as_counts():
    meta = _meta("bcg_cells")
    assert meta.shape == "counts"
    plain = _meta("bcg")
    for col in ("events_trt", "n_trt", "events_ctl", "n_ctl"):
        assert meta.frame[col].tolist() == plain.frame[col].tolist()
    assert meta.extra_columns == ("year", "alloc")


def test_ambiguous_header_refused_with_file_line_and_column(tmp_path, capsys):
    path = tmp_path / "two_ways.csv"
    path.write_text("\nstudy;yi\tsei\nA;0.1;0.2\n", encoding="utf-8")
    code = cli.main(["pool", str(path), "--measure", "HR"])
    err = capsys.readouterr().err
    assert code == 2
    assert "two_ways.csv, line 2, column 'yi sei'" in err and "';' (once) and a tab" in err
    # a separator inside quotes does not count
    path.write_text('study,"yi",sei\n"A;B",0.1,0.2\n"C\tD",0.3,0.2\n', encoding="utf-8")
    assert bm.read_meta_data(path).frame["study"].tolist() == ["A;B", "C\tD"]


@pytest.mark.parametrize("n", [12, 120, 301])
def test_kendall_matches_scipy(n):
    """Exact (no ties, k <= EXACT_KENDALL_MAX_K) and asymptotic p-values, against SciPy."""
    from scipy import stats

    rng = np.random.default_rng(n)
    x, y = rng.normal(size=n), rng.normal(size=n)
    tau, p, exact = sensitivity._kendall(x, y)
    assert exact == (n <= config.defaults["kendall_exact_max_k"])
    ref = stats.kendalltau(x, y, method="exact" if exact else "asymptotic")
    assert tau == pytest.approx(ref.statistic, abs=1e-15)
    assert p == pytest.approx(ref.pvalue, rel=1e-10)
