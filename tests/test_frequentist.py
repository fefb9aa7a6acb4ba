"""bayesmtor.frequentist against R metafor 3.8-1.

Reference values: tests/reference/rma_reference.json, written by
tests/reference/rma_reference.R (the exact R call of every value is stored next to it) from
metafor's bundled datasets dat.bcg (Colditz et al. 1994), dat.nielweise2007 (Niel-Weise et al.
2007), dat.yusuf1985 table 6 (Yusuf et al. 1985) and dat.hackshaw1998 (Hackshaw et al. 1997),
exported as tests/reference/rma_datasets/*.csv.
"""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from bayesmtor import frequentist as F
from bayesmtor.errors import BayesMTORError, EstimationError, InputError, NotEstimableWarning

#: metafor iterates to threshold=1e-12 / tol=1e-13; both sides then agree far below this.
REL_TOL = 1e-6
#: Absolute floor for values that are (near) zero, e.g. tau2 = 0 or I2 = 0 at the boundary.
ABS_TOL = 1e-10

DATASETS = ("bcg", "nielweise", "yusuf", "hackshaw")
IV_METHODS = ("FE", "DL", "REML", "PM", "ML", "SJ", "HE")


@pytest.fixture(scope="module")
def ref(reference_dir):
    with open(reference_dir / "rma_reference.json") as fh:
        data = json.load(fh)
    assert data["metafor_version"].startswith("3.8")
    return {r["id"]: r["values"] for r in data["references"]}


@pytest.fixture(scope="module")
def datasets(reference_dir):
    return {n: pd.read_csv(reference_dir / "rma_datasets" / f"{n}.csv") for n in DATASETS}


def assert_close(actual, expected, what):
    if expected is None:
        assert actual is None or not np.isfinite(actual), f"{what}: expected missing, got {actual}"
        return
    a = np.asarray(actual, dtype=float)
    b = np.asarray(expected, dtype=float)
    assert a.shape == b.shape, what
    np.testing.assert_allclose(a, b, rtol=REL_TOL, atol=ABS_TOL, err_msg=what)


def compare(result_dict, expected, rid, skip=("k_tables",)):
    for key, val in expected.items():
        if key in skip:
            continue
        assert key in result_dict, f"{rid}: no key {key}"
        assert_close(result_dict[key], val, f"{rid} {key}")


def _fit_cases():
    cases = []
    for name in ("bcg", "nielweise", "yusuf"):
        measures = ("RR", "OR", "RD") if name == "nielweise" else ("RR", "OR")
        for ms in measures:
            for mt in IV_METHODS:
                cases.append((name, ms, mt, "z"))
                if mt != "FE":
                    cases.append((name, ms, mt, "knha"))
    for mt in IV_METHODS:
        cases.append(("hackshaw", "generic", mt, "z"))
        if mt != "FE":
            cases.append(("hackshaw", "generic", mt, "knha"))
    return cases


@pytest.mark.parametrize(("name", "measure", "method", "test"), _fit_cases())
def test_inverse_variance_matches_metafor(ref, datasets, name, measure, method, test):
    # end to end: counts -> effects (escalc rule) -> pooling, or yi/sei -> pooling
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotEstimableWarning)
        res = F.meta_analysis(datasets[name], measure=measure, method=method, test=test)
    rid = f"{name}/{measure}/{method}/{test}"
    compare(res.to_dict(), ref[rid], rid)


@pytest.mark.parametrize("method", IV_METHODS)
def test_rma_on_metafor_yi_vi(ref, method):
    # pooling alone, fed metafor's own escalc() values
    es = ref["nielweise/RR/escalc"]
    yi = np.array([np.nan if x is None else x for x in es["yi"]])
    vi = np.array([np.nan if x is None else x for x in es["vi"]])
    res = F.rma(yi, vi=vi, method=method, measure="RR")
    assert len(res.excluded) == 1  # the double-zero study
    compare(res.to_dict(), ref[f"nielweise/RR/{method}/z"], method)


@pytest.mark.parametrize("name", ["bcg", "nielweise", "yusuf"])
@pytest.mark.parametrize("measure", ["RR", "OR"])
@pytest.mark.parametrize("correction", ["revman", "none"])
def test_mantel_haenszel_matches_metafor(ref, datasets, name, measure, correction):
    d = datasets[name]
    res = F.rma_mh(
        d.events_trt,
        d.n_trt,
        d.events_ctl,
        d.n_ctl,
        measure=measure,
        mh_correction=correction,
        studies=d.study,
    )
    rid = f"{name}/{measure}/MH/{correction}"
    compare(res.to_dict(), ref[rid], rid)


def test_mantel_haenszel_risk_difference(ref, datasets):
    d = datasets["nielweise"]
    res = F.meta_analysis(d, measure="RD", method="MH")
    compare(res.to_dict(), ref["nielweise/RD/MH/none"], "RD MH")
    assert res.k == len(d)  # the double-zero study is kept for RD


def test_revman_correction_changes_mh_only_with_zero_cells(datasets):
    bcg = datasets["bcg"]  # no zero cells: both rules coincide
    a = F.meta_analysis(bcg, measure="OR", method="MH", mh_correction="revman")
    b = F.meta_analysis(bcg, measure="OR", method="MH", mh_correction="none")
    assert a.estimate == pytest.approx(b.estimate, rel=1e-14)
    n = datasets["nielweise"]
    a = F.meta_analysis(n, measure="OR", method="MH", mh_correction="revman")
    b = F.meta_analysis(n, measure="OR", method="MH", mh_correction="none")
    assert abs(a.estimate - b.estimate) > 1e-3


@pytest.mark.parametrize("name", ["bcg", "nielweise", "yusuf"])
def test_peto_matches_metafor(ref, datasets, name):
    d = datasets[name]
    res = F.rma_peto(d.events_trt, d.n_trt, d.events_ctl, d.n_ctl, studies=d.study)
    compare(res.to_dict(), ref[f"{name}/OR/PETO"], name)
    via = F.meta_analysis(d, measure="OR", method="PETO")
    assert via.estimate == res.estimate


@pytest.mark.parametrize(
    "rid", ["bcg/RR", "bcg/OR", "nielweise/RR", "nielweise/OR", "yusuf/OR", "hackshaw/generic"]
)
def test_egger_matches_regtest(ref, datasets, rid):
    name, measure = rid.split("/")
    d = datasets[name]
    if name == "hackshaw":
        yi, vi = d.yi.to_numpy(), d.sei.to_numpy() ** 2
    else:
        es = ref[f"{rid}/escalc"]
        yi = np.array([np.nan if x is None else x for x in es["yi"]])
        vi = np.array([np.nan if x is None else x for x in es["vi"]])
    eg = F.egger_test(yi, vi=vi)
    exp = ref[f"{rid}/egger"]
    for key in ("tval", "pval", "bias", "limit_estimate", "limit_ci_low", "limit_ci_high"):
        assert_close(getattr(eg, key), exp[key], f"{rid} egger {key}")
    assert eg.df == exp["df"]


@pytest.mark.parametrize("name", ["bcg", "yusuf"])
@pytest.mark.parametrize("method", ["FE", "DL", "REML"])
def test_leave_one_out_matches_metafor(ref, datasets, name, method):
    d = datasets[name]
    if name == "yusuf":  # metafor leave1out omits studies without yi: drop double-zero rows too
        d = d[~((d.events_trt == 0) & (d.events_ctl == 0))].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotEstimableWarning)
        l1 = F.leave_one_out(d, measure="RR", method=method)
    exp = ref[f"{name}/RR/leave1out/{method}"]
    assert l1["study"].tolist() == d["study"].astype(str).tolist()
    i2 = l1["I2"] if method == "FE" else l1["I2_tau"]  # metafor reports tau-based I2 for RE
    for key, col in (
        ("estimate", l1["estimate"]),
        ("se", l1["se"]),
        ("pval", l1["pval"]),
        ("ci_low", l1["ci_low"]),
        ("ci_high", l1["ci_high"]),
        ("Q", l1["Q"]),
        ("Q_pval", l1["Q_pval"]),
        ("I2", i2),
    ):
        assert_close(col.to_numpy(), exp[key], f"{name} {method} leave1out {key}")
    if method != "FE":
        assert_close(l1["tau2"].to_numpy(), exp["tau2"], "leave1out tau2")


def test_leave_one_out_mantel_haenszel(ref, datasets):
    d = datasets["bcg"]
    l1 = F.leave_one_out(d, measure="OR", method="MH")
    exp = ref["bcg/OR/leave1out/MH"]
    for key in ("estimate", "se", "Q"):
        assert_close(l1[key].to_numpy(), exp[key], f"MH leave1out {key}")


@pytest.mark.filterwarnings("ignore::bayesmtor.errors.NotEstimableWarning")
@pytest.mark.parametrize("method", ["FE", "DL", "REML"])
def test_subgroups_match_metafor(ref, datasets, method):
    exp = ref[f"bcg/RR/subgroup/{method}"]
    sg = F.subgroup_analysis(datasets["bcg"], by="alloc", measure="RR", method=method)
    assert list(sg.groups) == exp["groups"]
    for g, r in zip(sg.groups, sg.results, strict=True):
        e = exp["per_group"][g]
        assert r.k == e["k"]
        for key in ("estimate", "se", "Q"):
            assert_close(getattr(r, key), e[key], f"{g} {key}")
        if method != "FE":
            assert_close(r.tau2, e["tau2"], f"{g} tau2")
    assert_close(sg.Q_between, exp["Q_between"], "Q_between")
    assert_close(sg.Q_between_pval, exp["Q_between_pval"], "Q_between p")
    assert sg.Q_between_df == exp["Q_between_df"]
    if method == "FE":  # second route: moderator test of the FE meta-regression
        assert_close(sg.Q_between, exp["QM_moderator"], "QM")
    assert "alloc" in sg.summary().columns and "test for subgroup differences" in repr(sg)


@pytest.mark.parametrize("method", ["DL", "REML"])
def test_pool_groups_matches_separate_metafor_fits(ref, datasets, method):
    d = datasets["hackshaw"]
    table = F.pool_groups(d, by="design", measure="generic", method=method)
    for _, row in table.iterrows():
        rid = f"hackshaw/generic/design={row['design']}/{method}"
        compare(row.to_dict(), ref[rid], rid)


def test_vectorised_rows_equal_single_fits():
    rng = np.random.default_rng(20141001)
    rows = []
    for g in range(40):
        k = int(rng.integers(1, 9))
        vi = rng.uniform(0.01, 0.5, k)
        yi = rng.normal(0.2, np.sqrt(vi + rng.choice([0.0, 0.1])))
        rows += [
            {"grp": f"g{g:02d}", "study": f"s{i}", "yi": y, "sei": np.sqrt(v)}
            for i, (y, v) in enumerate(zip(yi, vi, strict=True))
        ]
    frame = pd.DataFrame(rows)
    before = frame.copy()
    for method in ("REML", "PM", "ML", "DL"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotEstimableWarning)
            table = F.pool_groups(frame, by="grp", measure="HR", method=method, test="knha")
            for _, row in table.iterrows():
                sub = frame[frame.grp == row["grp"]]
                one = F.rma(sub.yi, sei=sub.sei, method=method, test="knha")
                for key in ("estimate", "se", "tau2", "tau2_ci_high", "Q", "pi_low"):
                    a, b = row[key], getattr(one, key)
                    assert (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, rel=1e-12)
    pd.testing.assert_frame_equal(frame, before)  # the caller's frame is untouched


@pytest.mark.filterwarnings("ignore::bayesmtor.errors.NotEstimableWarning")
def test_likelihood_estimators_find_global_maximum():
    # independent check: brute-force maximisation of the (restricted) likelihood on a fine grid
    rng = np.random.default_rng(7)
    for _ in range(20):
        k = int(rng.integers(2, 12))
        vi = rng.uniform(0.005, 1.0, k)
        yi = rng.normal(0, np.sqrt(vi + rng.exponential(0.2)))
        for method, reml in (("REML", True), ("ML", False)):
            tau2 = F.rma(yi, vi=vi, method=method).tau2
            grid = np.linspace(0, 5 * max(np.var(yi, ddof=1), 1e-6), 20001)
            w = 1.0 / (vi[None, :] + grid[:, None])
            mu = (w * yi).sum(1) / w.sum(1)
            ll = -0.5 * (np.log(vi + grid[:, None]).sum(1) + (w * (yi - mu[:, None]) ** 2).sum(1))
            if reml:
                ll -= 0.5 * np.log(w.sum(1))
            w1 = 1.0 / (vi + tau2)
            m1 = (w1 * yi).sum() / w1.sum()
            ll1 = -0.5 * (np.log(vi + tau2).sum() + (w1 * (yi - m1) ** 2).sum())
            if reml:
                ll1 -= 0.5 * np.log(w1.sum())
            assert ll1 >= ll.max() - 1e-9


def test_estimators_always_answer_on_awkward_data():
    rng = np.random.default_rng(3)
    m, k = 300, 6
    vi = 10.0 ** rng.uniform(-6, 3, (m, k))  # variances spanning nine orders of magnitude
    yi = rng.standard_cauchy((m, k)) * 5
    frame = pd.DataFrame(
        {
            "grp": np.repeat(np.arange(m), k),
            "yi": yi.ravel(),
            "sei": np.sqrt(vi.ravel()),
            "study": np.tile(np.arange(k), m),
        }
    )
    for method in F.RE_METHODS:
        t = F.pool_groups(frame, by="grp", measure="generic", method=method)
        assert np.all(np.isfinite(t["tau2"])) and np.all(t["tau2"] >= 0)
        assert np.all(t["tau2_ci_low"] <= t["tau2_ci_high"])
        assert np.all(np.isfinite(t["estimate"]))


def test_k1_and_k2_are_not_estimable_but_do_not_crash():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = F.rma([0.3], sei=[0.2], method="REML")
    messages = [str(w.message) for w in caught if w.category is NotEstimableWarning]
    assert any("k = 1" in m for m in messages) and any("k >= 3" in m for m in messages)
    assert r.estimate == pytest.approx(0.3) and r.se == pytest.approx(0.2)
    assert np.isnan(r.tau2) and np.isnan(r.pi_low) and np.isnan(r.I2)
    d = r.to_dict()
    assert d["tau2"] is None and d["pi_low"] is None and d["Q_pval"] is None
    with pytest.warns(NotEstimableWarning, match="k >= 3"):
        r2 = F.rma([0.3, 0.1], sei=[0.2, 0.3], method="DL")
    assert np.isfinite(r2.tau2) and np.isnan(r2.pi_high)


def test_prediction_interval_uses_t_on_k_minus_2(ref):
    # the PI in the reference was computed in R as b +/- qt(.975, k-2) sqrt(tau2 + se^2)
    r = ref["bcg/RR/REML/z"]
    assert r["pi_low"] < r["ci_low"]


def test_errors_are_clear():
    with pytest.raises(InputError, match="unknown method 'XYZ'"):
        F.rma([0.1, 0.2], sei=[0.1, 0.1], method="XYZ")
    with pytest.raises(InputError, match="exactly one of"):
        F.rma([0.1, 0.2])
    with pytest.raises(EstimationError):
        F.rma_mh([0, 0], [10, 10], [0, 0], [10, 12])  # only double-zero tables
    with pytest.raises(InputError, match="more events than participants"):
        F.rma_mh([11], [10], [1], [10])
    frame = pd.DataFrame({"study": ["a", "b"], "yi": [0.1, 0.2], "sei": [0.1, 0.2]})
    with pytest.raises(InputError, match="needs 2x2 counts"):
        F.meta_analysis(frame, measure="HR", method="MH")
    with pytest.raises(InputError, match="HKSJ"):
        F.meta_analysis(frame, measure="HR", method="FE", test="knha")
    with pytest.raises(BayesMTORError, match="grouping column"):
        F.pool_groups(frame, by="nope", measure="HR", method="DL")


def test_result_object(datasets):
    res = F.meta_analysis(datasets["bcg"], measure="RR", method="REML", ci_prob=0.9)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.estimate = 0.0  # type: ignore[misc]
    s = res.summary()
    assert list(s.index) == ["log RR", "RR"]
    assert "ci_low 90%" in s.columns
    assert s.loc["RR", "estimate"] == pytest.approx(np.exp(res.estimate))
    assert "method=REML" in repr(res) and "tau2" in repr(res)
    d = res.to_dict()
    for key in (
        "k",
        "estimate",
        "se",
        "ci_low",
        "ci_high",
        "pval",
        "tau2",
        "tau2_ci_low",
        "tau2_ci_high",
        "I2",
        "H2",
        "Q",
        "Q_df",
        "Q_pval",
        "pi_low",
        "pi_high",
    ):
        assert key in d
    assert json.dumps(d)
    assert res.zval == res.stat and np.isnan(res.tval)
    assert res.heterogeneity().shape == (1, 19)


def test_meta_analysis_accepts_effect_sizes_and_meta_input(ref, datasets):
    from bayesmtor.effects import escalc
    from bayesmtor.inputs import read_meta_data

    meta = read_meta_data(datasets["bcg"].drop(columns=["ablat"]), name="bcg")
    es = escalc(meta, "RR")
    for data in (meta, es):
        r = F.meta_analysis(data, measure="RR", method="REML")
        compare(r.to_dict(), ref["bcg/RR/REML/z"], type(data).__name__)


def test_effect_sizes_with_mantel_haenszel_use_raw_counts(ref, datasets):
    from bayesmtor.effects import escalc

    es = escalc(datasets["nielweise"], "OR")
    for corr in ("revman", "none"):
        r = F.meta_analysis(es, method="MH", mh_correction=corr)
        compare(r.to_dict(), ref[f"nielweise/OR/MH/{corr}"], corr)
    assert len(r.excluded) == 1 and "double-zero" in r.excluded[0][1]
    with pytest.raises(InputError, match="differs"):
        F.meta_analysis(es, measure="RR", method="REML")


def test_reml_where_metafor_default_fisher_scoring_fails(ref, reference_dir):
    # 24 simulated data sets on which metafor's default rma(method="REML") stops with
    # "Fisher scoring algorithm did not converge"; our bracketed search still answers.
    hard = pd.read_csv(reference_dir / "rma_datasets" / "reml_hard.csv")
    exp = ref["reml_hard/generic/REML"]
    assert all(exp["default_fails"])
    table = F.pool_groups(hard, by="meta", measure="HR", method="REML")
    table = table.assign(meta_id=table["meta"].astype(int)).sort_values("meta_id")
    assert table["meta_id"].tolist() == exp["meta"]
    assert_close(table["tau2"].to_numpy(), exp["tau2"], "tau2 vs metafor with stepadj=0.5")
    # optimize() in R was run with tol=1e-12 on tau2 (absolute)
    np.testing.assert_allclose(table["tau2"], exp["tau2_optimize"], rtol=0, atol=1e-8)


# --------------------------------------------------------------------------------------------
# one effect-size route: EffectSizes objects into rma / rma_mh / rma_peto / leave_one_out
# --------------------------------------------------------------------------------------------


def test_rma_takes_an_effect_sizes_object_as_metafor_takes_escalc(ref, datasets):
    from bayesmtor.effects import escalc

    es = escalc(datasets["nielweise"], "RR")
    res = F.rma(es, method="REML")
    compare(res.to_dict(), ref["nielweise/RR/REML/z"], "rma(EffectSizes)")
    assert res.measure == "RR" and res.k == es.k
    # the exclusion reason is escalc's, the same one the Bayesian engines are given
    assert [r for _, r in res.excluded] == [r for _, r in es.dropped]
    with pytest.raises(InputError, match="alone"):
        F.rma(es, vi=es.table["vi"])


@pytest.mark.parametrize("measure", ["RR", "OR"])
def test_rma_mh_and_rma_peto_take_effect_sizes_like_counts(ref, datasets, measure):
    from bayesmtor.effects import escalc

    d = datasets["nielweise"]
    es = escalc(d, measure)
    res = F.rma_mh(es, mh_correction="none")
    compare(res.to_dict(), ref[f"nielweise/{measure}/MH/none"], f"rma_mh(EffectSizes {measure})")
    assert [r for _, r in res.excluded] == [r for _, r in es.dropped]
    counts = F.rma_mh(
        d.events_trt, d.n_trt, d.events_ctl, d.n_ctl, measure=measure, studies=d.study
    )
    assert F.rma_mh(es).to_dict() == counts.to_dict()
    if measure == "OR":
        peto = F.rma_peto(d.events_trt, d.n_trt, d.events_ctl, d.n_ctl, studies=d.study)
        assert F.rma_peto(es).to_dict() == peto.to_dict()
        compare(peto.to_dict(), ref["nielweise/OR/PETO"], "rma_peto")


def test_effect_sizes_keep_the_raw_counts(datasets):
    from bayesmtor.effects import RAW_COUNT_COLUMNS, escalc

    d = datasets["yusuf"]
    es = escalc(d, "OR")
    assert es.has_counts
    for col, got in zip(RAW_COUNT_COLUMNS, es.raw_counts(), strict=True):
        np.testing.assert_array_equal(got, d[col].to_numpy(float))  # also for dropped rows
    assert es.table["cc_add"].isna().any()  # double-zero rows: no correction to undo
    log_se = escalc(pd.DataFrame({"study": ["a", "b"], "yi": [0.1, 0.2], "sei": [0.1, 0.2]}))
    assert not log_se.has_counts
    with pytest.raises(InputError, match="2x2 counts"):
        log_se.raw_counts()
    with pytest.raises(InputError, match="Mantel-Haenszel needs RR, OR or RD"):
        F.rma_mh(log_se)
    with pytest.raises(InputError, match="2x2 counts"):
        F.rma_peto(log_se)


def test_leave_one_out_takes_effect_sizes_like_meta_analysis(datasets):
    from bayesmtor.effects import escalc

    d = datasets["bcg"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotEstimableWarning)
        from_frame = F.leave_one_out(d, measure="RR", method="DL")
        from_es = F.leave_one_out(escalc(d, "RR"), method="DL")
    pd.testing.assert_frame_equal(from_frame, from_es)
    first = F.meta_analysis(d.iloc[1:].reset_index(drop=True), measure="RR", method="DL")
    assert from_es["estimate"].iloc[0] == pytest.approx(first.estimate, rel=1e-12)


def test_one_name_per_option_and_one_return_type():
    import inspect

    for func in (F.rma, F.meta_analysis, F.pool_groups, F.subgroup_analysis, F.leave_one_out):
        params = inspect.signature(func).parameters
        assert "hksj" not in params and "as_results" not in params, func.__name__
        assert "test" in params, func.__name__
    frame = pd.DataFrame({"study": ["a", "b", "c"], "yi": [0.1, 0.3, 0.2], "sei": [0.1] * 3})
    assert isinstance(F.pool_groups(frame, by=None, method="FE"), pd.DataFrame)


def test_pool_and_pool_bayes_give_a_double_zero_study_the_same_reason(tmp_path, capsys):
    from bayesmtor.cli import main

    path = tmp_path / "trials.csv"
    path.write_text(
        "study,events_trt,n_trt,events_ctl,n_ctl\n"
        "A,3,50,8,50\nB,0,40,0,42\nC,5,60,9,61\nD,2,30,6,29\n",
        encoding="utf-8",
    )
    assert main(["pool", str(path), "--measure", "RR", "--json"]) == 0
    frequentist_run = json.loads(capsys.readouterr().out)
    (excluded,) = frequentist_run["excluded"]
    assert excluded["study"] == "B"
    assert main(["pool", str(path), "--measure", "RR", "--bayes", "--json"]) == 0
    err = capsys.readouterr().err
    bayes_reasons = [
        line.split(" excluded: ", 1)[1] for line in err.splitlines() if " excluded: " in line
    ]
    assert bayes_reasons == [excluded["reason"]]
    assert "double-zero" in excluded["reason"] and "no events in either arm" in excluded["reason"]
