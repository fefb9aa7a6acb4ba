"""Meta-regression: the design (R's model.matrix), the frequentist fit against R metafor and the
exact Bayesian posterior against R bayesmeta's bmr().

Reference values: tests/reference/regression_reference.json, written by
tests/reference/regression_reference.R (every R call stored next to its numbers) from dat.bcg
(Colditz et al. 1994, metafor) and CrinsEtAl2014 (Crins et al. 2014, bayesmeta), exported as
tests/reference/regression_datasets/*.csv. bmr's coefficient summaries carry the error of its
discrete (DIRECT) approximation of the tau mixture; the reference integrates the mixture
exactly in R from bmr's own tau posterior and conditional moments.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bayesmtor.bayes.regression import exact_regression
from bayesmtor.design import explicit_design, model_matrix
from bayesmtor.errors import InputError
from bayesmtor.frequentist.regression import fit_regression

#: metafor iterates to threshold = tol = 1e-13; the two sides then agree far below this.
REL_TOL = 1e-6
#: Absolute floor for values at a boundary (metafor's ML tau2 of 8.5e-14 where ours is 0).
ABS_TOL = 1e-10
#: Exact coefficient summaries vs the R integration, in posterior SDs (spec: 2e-3 SD).
SD_TOL = 2e-3
#: tau quantiles, relative (both sides integrate to ~1e-10).
TAU_REL = 1e-5
#: bmr's own summaries (DIRECT approximation; its documented error is a few 1e-3 SD).
DIRECT_SD_TOL = 3e-3


@pytest.fixture(scope="module")
def ref(reference_dir):
    with open(reference_dir / "regression_reference.json") as fh:
        data = json.load(fh)
    assert data["metafor_version"].startswith("3.8")
    assert data["bayesmeta_version"] == "3.4"
    return data


@pytest.fixture(scope="module")
def bcg(reference_dir):
    return pd.read_csv(reference_dir / "regression_datasets" / "bcg.csv")


@pytest.fixture(scope="module")
def crins(reference_dir):
    return pd.read_csv(reference_dir / "regression_datasets" / "crins.csv")


def _formula(mods: str) -> tuple[list[str], bool]:
    """``'~ 0 + alloc'`` -> (['alloc'], False)."""
    rhs = mods.replace("~", "").strip()
    intercept = not rhs.startswith("0 +")
    return [m.strip() for m in rhs.replace("0 +", "").split("+")], intercept


# ---------------------------------------------------------------------------------------------
# design
# ---------------------------------------------------------------------------------------------
def test_design_follows_model_matrix(bcg):
    d = model_matrix(bcg, ["ablat", "alloc"])
    assert d.terms == ("intrcpt", "ablat", "allocrandom", "allocsystematic")
    np.testing.assert_array_equal(d.matrix[:, 0], 1.0)
    np.testing.assert_array_equal(d.matrix[:, 1], bcg["ablat"])
    np.testing.assert_array_equal(d.matrix[:, 2], (bcg["alloc"] == "random").astype(float))
    d0 = model_matrix(bcg, "alloc,ablat", intercept=False)
    assert d0.terms == ("allocalternate", "allocrandom", "allocsystematic", "ablat")
    assert d0.tested == (0, 1, 2, 3)
    # a numeric column given as text (a file's cells) enters as is
    text = bcg.assign(ablat=bcg["ablat"].astype(str))
    np.testing.assert_array_equal(model_matrix(text, ["ablat"]).matrix, d.matrix[:, :2])


def test_design_terms_in_mods_order_and_levels_sorted_as_text(bcg):
    tab = bcg.assign(grade=["b", "a", "B"] * 4 + ["a"])
    d = model_matrix(tab, ["grade", "ablat"])
    assert d.terms == ("intrcpt", "gradea", "gradeb", "ablat")  # "B" < "a" < "b"
    assert d.moderators[0].levels == ("B", "a", "b")


def test_design_refuses_empty_cell_with_line_and_column(bcg):
    tab = bcg.astype({"alloc": object})
    tab.loc[4, "alloc"] = ""
    lines = np.arange(2, 2 + len(tab))
    with pytest.raises(InputError) as err:
        model_matrix(tab, ["alloc"], source="bcg.csv", lines=lines, studies=tab["study"])
    e = err.value
    assert (e.source, e.line, e.column) == ("bcg.csv", 6, "alloc")
    assert "empty moderator cell" in str(e) and e.study == tab["study"][4]
    tab2 = bcg.copy()
    tab2.loc[0, "ablat"] = np.nan
    with pytest.raises(InputError, match="row 1.*column 'ablat'.*empty moderator"):
        model_matrix(tab2, ["ablat"])


def test_design_refuses_collinear_terms_naming_them(bcg):
    tab = bcg.assign(half=bcg["ablat"] / 2.0)
    with pytest.raises(InputError, match="rank-deficient: terms 'ablat', 'half' are collinear"):
        model_matrix(tab, ["ablat", "half"])
    with pytest.raises(InputError, match="single level"):
        model_matrix(bcg.assign(c="x"), ["c"])
    with pytest.raises(InputError, match="no moderator column 'latitude'"):
        model_matrix(bcg, ["latitude"])


def test_design_refuses_k_not_above_p(bcg):
    small = bcg.iloc[:3]
    with pytest.raises(InputError, match=r"3 studies cannot estimate 3 coefficients.*k > p"):
        model_matrix(small, ["ablat", "year"])
    with pytest.raises(InputError, match="named twice"):
        model_matrix(bcg, ["ablat", "ablat"])


def test_explicit_design(bcg):
    x = np.column_stack([np.ones(13), bcg["ablat"]])
    d = explicit_design(pd.DataFrame(x, columns=["intrcpt", "ablat"]))
    assert d.intercept and d.terms == ("intrcpt", "ablat")
    with pytest.raises(InputError, match="not a finite number"):
        explicit_design(np.where(x == x[3, 1], np.nan, x))


# ---------------------------------------------------------------------------------------------
# frequentist: metafor rma(yi, vi, mods = ...)
# ---------------------------------------------------------------------------------------------
def _close(actual, expected, what):
    if expected is None:
        assert actual is None, f"{what}: expected null, got {actual}"
        return
    np.testing.assert_allclose(actual, expected, rtol=REL_TOL, atol=ABS_TOL, err_msg=what)


def test_frequentist_against_metafor(ref, bcg):
    fits = ref["frequentist"]
    assert len(fits) == 80
    for f in fits:
        mods, intercept = _formula(f["mods"])
        design = model_matrix(bcg, mods, intercept=intercept)
        m = f["measure"]
        res = fit_regression(
            bcg[f"yi_{m}"], bcg[f"vi_{m}"], design, method=f["method"], test=f["test"]
        ).to_dict()
        call = f["call"]
        assert [c["term"] for c in res["coefficients"]] == [c["term"] for c in f["coefficients"]]
        for got, want in zip(res["coefficients"], f["coefficients"], strict=True):
            for key in ("estimate", "se", "ci_low", "ci_high", "stat", "pval"):
                _close(got[key], want[key], f"{call} {want['term']} {key}")
        for key in ("QM", "QM_df", "QM_df2", "QM_pval", "QE", "QE_df", "QE_pval", "R2", "k"):
            _close(res[key], f[key], f"{call} {key}")
        _close(res["tau2"], f["tau2"], f"{call} tau2")


def test_frequentist_result_shape(bcg):
    d = model_matrix(bcg, ["ablat"])
    res = fit_regression(bcg["yi_RR"], bcg["vi_RR"], d, method="REML", measure="RR")
    out = res.to_dict()
    assert out["QM_df2"] is None and out["R2"] is not None and "almost no power" in out["warning"]
    assert list(res.summary().columns) == ["estimate", "se", "ci_low", "ci_high", "stat", "pval"]
    pred = res.predict(d.matrix)
    np.testing.assert_allclose(pred["pred"], d.matrix @ res.beta)
    assert "QM(1)" in str(res) and "Caution" in str(res)
    no_int = fit_regression(
        bcg["yi_RR"], bcg["vi_RR"], model_matrix(bcg, ["alloc"], intercept=False)
    )
    assert no_int.to_dict()["R2"] is None and no_int.QM_df == 3
    with pytest.raises(InputError, match="methods FE, DL, ML, REML"):
        fit_regression(bcg["yi_RR"], bcg["vi_RR"], d, method="PM")


# ---------------------------------------------------------------------------------------------
# exact Bayesian: bayesmeta bmr()
# ---------------------------------------------------------------------------------------------
BMR_SPECS = {
    "crins ~ 0 + IL2RA": ("crins", ["IL2RA"], False, "half-normal:0.5", None),
    "crins ~ IL2RA": ("crins", ["IL2RA"], True, "half-normal:0.5", None),
    "crins ~ IL2RA, beta ~ N(0, 2^2)": ("crins", ["IL2RA"], True, "half-normal:0.5", "normal:0,2"),
    "bcg logRR ~ ablat": ("bcg", ["ablat"], True, "half-normal:1", None),
    "bcg logRR ~ ablat, beta ~ N((0, 0), (1, 0.1)^2)": (
        "bcg", ["ablat"], True, "half-normal:1", ["normal:0,1", "normal:0,0.1"]
    ),
    "bcg logRR ~ ablat + alloc": ("bcg", ["ablat", "alloc"], True, "half-normal:1", None),
}  # fmt: skip


def _bmr_fit(name, bcg, crins):
    data, mods, intercept, tau_prior, beta_prior = BMR_SPECS[name]
    tab = crins if data == "crins" else bcg
    y, s = (tab["yi"], tab["sei"]) if data == "crins" else (tab["yi_RR"], np.sqrt(tab["vi_RR"]))
    design = model_matrix(tab, mods, intercept=intercept)
    return exact_regression(y, s, design, tau_prior=tau_prior, beta_prior=beta_prior)


def test_exact_against_bmr(ref, bcg, crins):
    assert {b["name"] for b in ref["bayes"]} == set(BMR_SPECS)
    for b in ref["bayes"]:
        post = _bmr_fit(b["name"], bcg, crins)
        coefs = post.coefficients.to_dict("records")
        for got, want in zip(coefs, b["coefficients"], strict=True):
            assert got["term"].endswith(want["term"])
            for key in ("mean", "sd", "median", "low", "high"):
                err = abs(got[key] - want[key]) / want["sd"]
                assert err < SD_TOL, f"{b['name']} {want['term']} {key}: {err:.2g} SD"
                # bmr's own (approximate) summary agrees within its documented error
                bkey = {"low": "95% lower", "high": "95% upper"}.get(key, key)
                direct = abs(got[key] - want["bmr_summary"][bkey]) / want["sd"]
                assert direct < DIRECT_SD_TOL, f"{b['name']} {want['term']} {key} vs bmr"
        for key in ("tau_low", "tau_median", "tau_high"):
            np.testing.assert_allclose(getattr(post, key), b[key], rtol=TAU_REL, err_msg=key)
        if b["bayesfactor"] is None:
            assert post.bf_tau0 is None and np.isnan(post.bf0()).all()
        else:
            want_bf = list(b["bayesfactor"].values())
            np.testing.assert_allclose(post.bf_tau0, want_bf[0], rtol=1e-6)
            np.testing.assert_allclose(post.bf0(), want_bf[1:], rtol=1e-6)
            # and the Savage-Dickey ratios integrated independently in R
            dens = np.array([c["posterior_density_at_0"] for c in b["coefficients"]])
            sds = np.array([pr.sd for pr in post.beta_prior])
            means = np.array([pr.mean for pr in post.beta_prior])
            prior0 = np.exp(-0.5 * (means / sds) ** 2) / (np.sqrt(2 * np.pi) * sds)
            np.testing.assert_allclose(post.bf0() * prior0, dens, rtol=1e-6)
        assert post.error_estimate < post.tol


def test_exact_crins_published_values(bcg, crins):
    """bmr help page (bayesmeta 3.4): basiliximab -1.2833 [-2.0408, -0.5252], daclizumab
    -2.3072 [-3.4590, -1.1554] (medians with bmr's default shortest intervals, from its DIRECT
    approximation). Our exact medians agree within bmr's approximation error."""
    post = _bmr_fit("crins ~ 0 + IL2RA", bcg, crins)
    c = post.coefficients.set_index("term")
    assert list(c.index) == ["IL2RAbasiliximab", "IL2RAdaclizumab"]
    for term, med in (("IL2RAbasiliximab", -1.2833), ("IL2RAdaclizumab", -2.3072)):
        assert abs(c.loc[term, "median"] - med) < DIRECT_SD_TOL * c.loc[term, "sd"]


def test_exact_predict_is_the_mixture_of_the_line(bcg, crins):
    post = _bmr_fit("bcg logRR ~ ablat", bcg, crins)
    pred = post.predict([[1.0, 0.0], [0.0, 1.0]])
    coefs = post.coefficients
    np.testing.assert_allclose(pred["mean"], coefs["mean"], rtol=1e-12)
    np.testing.assert_allclose(pred["high"], coefs["high"], rtol=1e-9)
    assert "tau" in post.summary().index and "Caution" in str(post)
    with pytest.raises(InputError, match="a mix is not supported"):
        exact_regression(bcg["yi_RR"], np.sqrt(bcg["vi_RR"]), post.design,
                         beta_prior=["normal:0,1", "flat"])  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Python API and command line
# ---------------------------------------------------------------------------------------------
def _counts_file(tmp_path, crins, blank_row=None):
    tab = crins[["study", "events_trt", "n_trt", "events_ctl", "n_ctl", "IL2RA"]].copy()
    if blank_row is not None:
        tab.loc[blank_row, "IL2RA"] = ""
    path = tmp_path / "crins.csv"
    tab.to_csv(path, index=False)
    return path


def test_api_rma_and_bayesmeta_with_mods(ref, bcg, crins):
    import bayesmtor as bm

    tab = bcg[["study", "events_trt", "n_trt", "events_ctl", "n_ctl", "ablat", "alloc"]]
    es = bm.escalc(tab, measure="RR")
    res = bm.rma(es, mods=["ablat", "alloc"], method="REML", test="knha")
    want = next(
        f for f in ref["frequentist"]
        if (f["measure"], f["mods"], f["method"], f["test"]) == ("RR", "~ ablat + alloc", "REML", "knha")
    )  # fmt: skip
    np.testing.assert_allclose(res.QM, want["QM"], rtol=REL_TOL)
    np.testing.assert_allclose(
        res.beta, [c["estimate"] for c in want["coefficients"]], rtol=REL_TOL
    )
    # an explicit design matrix, with arrays, gives the same fit
    arr = bm.rma(bcg["yi_RR"], vi=bcg["vi_RR"], mods=res.design.frame(), test="knha")
    np.testing.assert_allclose(arr.beta, res.beta, rtol=1e-12)
    with pytest.raises(InputError, match="moderator names need a study table"):
        bm.rma(bcg["yi_RR"], vi=bcg["vi_RR"], mods=["ablat"])
    post = bm.bayesmeta(es, mods="ablat", tau_prior="half-normal:1")
    want_b = next(b for b in ref["bayes"] if b["name"] == "bcg logRR ~ ablat")
    got = post.coefficients["median"].to_numpy()
    want_med = [c["median"] for c in want_b["coefficients"]]
    assert np.all(np.abs(got - want_med) < SD_TOL * post.coefficients["sd"].to_numpy())
    with pytest.raises(InputError, match="beta_prior"):
        bm.bayesmeta(es, mods="ablat", mu_prior="normal:0,1")


def test_cli_pool_mods_frequentist_and_exact(tmp_path, capsys, ref, crins):
    from bayesmtor.cli import main

    path = _counts_file(tmp_path, crins)
    assert main(["pool", str(path), "--measure", "OR", "--mods", "IL2RA", "--no-intercept",
                 "--bayes", "--tau-prior", "half-normal:0.5", "--json"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    want = next(b for b in ref["bayes"] if b["name"] == "crins ~ 0 + IL2RA")
    assert [c["term"] for c in out["coefficients"]] == ["il2rabasiliximab", "il2radaclizumab"]
    for got, exp in zip(out["coefficients"], want["coefficients"], strict=True):
        for key in ("mean", "median", "low", "high"):
            assert abs(got[key] - exp[key]) < SD_TOL * exp["sd"]
    np.testing.assert_allclose(out["tau_median"], want["tau_median"], rtol=TAU_REL)
    assert out["bf_tau0"] is None and "almost no power" in out["warning"]
    assert main(["pool", str(path), "--measure", "OR", "--mods", "IL2RA", "--method", "DL",
                 "--hksj", "--json"]) == 0  # fmt: skip
    freq = json.loads(capsys.readouterr().out)
    assert freq["test"] == "knha" and freq["QM_df2"] == 4 and freq["R2"] is not None
    assert main(["pool", str(path), "--measure", "OR", "--mods", "IL2RA"]) == 0
    assert "Caution" in capsys.readouterr().out


def test_cli_pool_mods_refuses_empty_cell_and_bad_options(tmp_path, capsys, crins):
    from bayesmtor.cli import main

    path = _counts_file(tmp_path, crins, blank_row=2)
    assert main(["pool", str(path), "--measure", "OR", "--mods", "IL2RA"]) == 2
    err = capsys.readouterr().err
    assert "crins.csv, line 4" in err and "column 'il2ra'" in err and "empty moderator" in err
    good = _counts_file(tmp_path, crins)
    for extra in (["--method", "PM"], ["--beta-prior", "normal:0,1"], ["--by", "il2ra"]):
        assert main(["pool", str(good), "--measure", "OR", "--mods", "IL2RA", *extra]) == 2
        assert "error" in capsys.readouterr().err
    assert main(["pool", str(good), "--measure", "OR", "--no-intercept"]) == 2
    assert "only with --mods" in capsys.readouterr().err


@pytest.mark.parametrize("options", [("--json",), ("--bayes", "--json")])
def test_pool_mods_imports_no_sampler_or_plotting(tmp_path, options):
    """``pool --mods`` (frequentist and exact) stays on the light path of tests/test_imports.py."""
    from test_imports import HEAVY, _imported

    path = tmp_path / "trials.csv"
    path.write_text("study,yi,sei,x\na,-0.3,0.2,1\nb,-0.1,0.25,2\nc,-0.5,0.3,3\nd,0.1,0.4,5\n")
    args = ["pool", str(path), "--measure", "HR", "--mods", "x", *options]
    code = f"""
import contextlib, io
from bayesmtor.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    assert main({args!r}) == 0
"""
    imported = [m for m in _imported(code) if m != "pandas"]  # the design is a DataFrame
    assert not set(imported) & set(HEAVY), imported
    if "--bayes" not in options:
        assert imported == [], imported
