"""Continuous outcomes: the means shape, MD and SMD through escalc, pool and the Bayesian pool.

Reference values: tests/reference/continuous_reference.json, written once by
tests/reference/continuous_reference.R with R metafor (escalc and rma with tight convergence)
from dat.normand1999, whose files (package names and metafor's names) are in
tests/reference/continuous_datasets/ and are the files read here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesmtor as bm
from bayesmtor import cli, config, effects
from bayesmtor.errors import InputError

REF_DIR = Path(__file__).parent / "reference"
MEANS = REF_DIR / "continuous_datasets" / "normand1999_means.csv"
METAFOR = REF_DIR / "continuous_datasets" / "normand1999_metafor.csv"
COUNTS = REF_DIR / "breadth_datasets" / "bcg.csv"
REVMAN = Path(__file__).parent / "data" / "revman" / "synthetic.rm5"
ESCALC_RTOL = 1e-12  # closed forms on both sides; JSON holds 15 significant digits
REL_TOL = 1e-6  # metafor run with threshold = tol = 1e-13; reached: 8.7e-13 (see test)
ABS_TOL = 1e-10  # values that are 0 on both sides (tau2 of FE, I2 when Q < df)
KEYS = ("estimate", "se", "ci_low", "ci_high", "stat", "pval", "tau2", "Q", "Q_pval", "I2", "H2")
# worst relative deviation from metafor over every fit and key (measured: see the test)
MEANS_HEADER = "study,mean_trt,sd_trt,n_trt,mean_ctl,sd_ctl,n_ctl\n"


@pytest.fixture(scope="module")
def ref() -> dict:
    return json.loads((REF_DIR / "continuous_reference.json").read_text(encoding="utf-8"))


def _pool(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = cli.main(["pool", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("measure", ["MD", "SMD"])
def test_escalc_equals_metafor(ref, measure) -> None:
    es = bm.escalc(bm.read_meta_data(MEANS), measure)
    assert es.scale == "identity" and es.measure == measure
    np.testing.assert_allclose(es.table["yi"], ref[measure]["escalc"]["yi"], rtol=ESCALC_RTOL)
    np.testing.assert_allclose(es.table["vi"], ref[measure]["escalc"]["vi"], rtol=ESCALC_RTOL)


def test_metafor_names_read_as_the_package_names() -> None:
    ours, theirs = bm.read_meta_data(MEANS), bm.read_meta_data(METAFOR)
    assert ours.shape == theirs.shape == "means"
    pd.testing.assert_frame_equal(ours.frame, theirs.frame)
    assert ours.frame["n_trt"].dtype == np.int64
    for measure in ("MD", "SMD"):
        pd.testing.assert_frame_equal(
            bm.escalc(ours, measure).table, bm.escalc(theirs, measure).table
        )
    frame = pd.read_csv(METAFOR)  # a DataFrame with metafor's names goes the same way
    pd.testing.assert_frame_equal(bm.read_meta_data(frame).frame, ours.frame)


def _methods(ref) -> list[tuple[str, str]]:
    return [(m, key) for m in ("MD", "SMD") for key in ref[m]["rma"]]


def test_pool_every_method_equals_metafor_rma(ref, capsys) -> None:
    worst = 0.0
    for measure, key in _methods(ref):
        method, _, test = key.partition("_")
        for path in (MEANS, METAFOR):
            argv = [str(path), "--measure", measure, "--method", method, "--json"]
            code, out, err = _pool(capsys, argv + (["--hksj"] if test else []))
            assert code == 0, err
            got = json.loads(out)
            want = ref[measure]["rma"][key]
            assert got["measure"] == measure and got["k"] == 9
            for k in KEYS:
                theirs = float(want[k])
                # metafor's I2, H2 are tau-based (Q-based for FE, where they coincide with DL)
                name = f"{k}_tau" if k in ("I2", "H2") and method != "FE" else k
                ours = float(got[name] if k != "tau2" or method != "FE" else 0.0)
                assert ours == pytest.approx(theirs, rel=REL_TOL, abs=ABS_TOL), (key, k)
                if theirs != 0:
                    worst = max(worst, abs(ours - theirs) / abs(theirs))
    print(f"worst relative deviation from metafor rma: {worst:.2e}")
    assert worst < 1e-8  # measured: 8.7e-13 over all 34 fits (REML, ML, EB, PM, SJ iterate)


def test_pool_reports_differences_not_ratios(capsys) -> None:
    code, out, _ = _pool(capsys, [str(MEANS), "--measure", "MD", "--method", "DL"])
    assert code == 0
    assert "  MD: -13.9817" in out and "log MD" not in out and "ratio" not in out
    code, out, _ = _pool(capsys, [str(MEANS), "--measure", "SMD", "--by", "study"])
    assert code == 0 and "estimate" in out


def test_smd_convention_revman(capsys) -> None:
    code, out, err = _pool(
        capsys, [str(MEANS), "--measure", "SMD", "--method", "FE", "--smd-convention", "revman",
                 "--json"]
    )  # fmt: skip
    assert code == 0, err
    frame = bm.read_meta_data(MEANS).frame
    args = [frame[c].to_numpy(float) for c in effects.MEANS_COLUMNS]
    yi, vi = effects.standardized_mean_difference(*args, convention="revman")
    fe = bm.rma(yi, vi=vi, method="FE", measure="SMD")
    assert json.loads(out)["estimate"] == pytest.approx(fe.estimate, rel=1e-13)
    assert config.get("smd_convention") == "metafor"  # the option does not leak
    assert bm.escalc(bm.read_meta_data(MEANS), "SMD", smd_convention="revman").table[
        "yi"
    ].to_numpy() == pytest.approx(yi, rel=1e-15)
    code, _, err = _pool(capsys, [str(MEANS), "--measure", "MD", "--smd-convention", "revman"])
    assert code == 2 and "only with --measure SMD" in err


@pytest.mark.parametrize("method", ["MH", "PETO"])
def test_count_methods_are_refused_for_means(capsys, method) -> None:
    code, _, err = _pool(capsys, [str(MEANS), "--measure", "MD", "--method", method])
    assert code == 2
    assert "needs 2x2 counts of a binary outcome" in err and "inverse variance" in err


def test_measures_and_shapes_must_agree(capsys) -> None:
    code, _, err = _pool(capsys, [str(MEANS), "--measure", "RR"])
    assert code == 2 and "cannot be computed from means data" in err and "'MD', 'SMD'" in err
    code, _, err = _pool(capsys, [str(COUNTS), "--measure", "MD"])
    assert code == 2 and "need the means shape" in err
    with pytest.raises(InputError, match="need the means shape"):
        bm.escalc(bm.read_meta_data(COUNTS), "SMD")


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [
        ("A,1.5,0,10,1,1,10", "sd_trt", "standard deviation 0 is not positive"),
        ("A,1.5,-2,10,1,1,10", "sd_trt", "not positive"),
        ("A,1.5,1,10,1,1,1", "n_ctl", "below 2"),
        ("A,1.5,1,10.5,1,1,10", "n_trt", "not a whole number"),
        ("A,,1,10,1,1,10", "mean_trt", "a finite number is required"),
        ("A,inf,1,10,1,1,10", "mean_trt", "a finite number is required"),
        ("A,1.5,1,10,1,1,ten", "n_ctl", "non-numeric text 'ten'"),
    ],
)
def test_means_are_validated_strictly(tmp_path, row, column, message) -> None:
    path = tmp_path / "means.csv"
    path.write_text(MEANS_HEADER + "Z,1,1,10,1,1,10\n" + row + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=message) as info:
        bm.read_meta_data(path)
    assert info.value.line == 3 and info.value.column == column
    assert str(info.value).startswith("means.csv, line 3, study 'A', column")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "study,m1i,sd1i,n1i,m2i,sd2i,n2i\nA,1,1,10,1,0,10\n",
            "column 'sd2i': standard deviation 0",
        ),
        ("study,m1i,sd1i,n1i,m2i,n2i\nA,1,1,10,1,10\n", "missing: sd2i"),
        ("study,m1i,sd1i,n1i,m2i,sd2i,n2i,ai\nA,1,1,10,1,1,10,3\n", "also cells ai"),
        ("study,m1i,sd1i,n1i,m2i,sd2i,n2i,n_trt\nA,1,1,10,1,1,10,10\n", "give the means once"),
        (MEANS_HEADER.strip() + ",events_trt\nA,1,1,10,1,1,10,2\n", "more than one input shape"),
    ],
)
def test_metafor_names_are_checked_under_their_own_names(tmp_path, text, message) -> None:
    path = tmp_path / "m.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        bm.read_meta_data(path)


def test_md_bayes_refuses_the_default_priors(capsys) -> None:
    code, _, err = _pool(capsys, [str(MEANS), "--measure", "MD", "--bayes"])
    assert code == 2 and "units of its outcome" in err and "--tau-prior and --mu-prior" in err
    code, _, err = _pool(
        capsys, [str(MEANS), "--measure", "MD", "--bayes", "--tau-prior", "half-normal:20"]
    )
    assert code == 2 and "give --mu-prior" in err
    es = bm.escalc(bm.read_meta_data(MEANS), "MD")
    with pytest.raises(InputError, match="units of its outcome"):
        bm.bayesmeta(es)
    fit = bm.bayesmeta(es, tau_prior="half-normal:20", mu_prior="normal:0,100")
    code, out, err = _pool(
        capsys, [str(MEANS), "--measure", "MD", "--bayes", "--tau-prior", "half-normal:20",
                 "--mu-prior", "normal:0,100", "--json"]
    )  # fmt: skip
    assert code == 0, err
    rec = json.loads(out)
    assert rec["measure"] == "MD"
    assert rec["mu_median"] == pytest.approx(fit.summary().loc["mu", "median"], rel=1e-12)


def test_smd_bayes_uses_the_defaults(capsys) -> None:
    code, out, err = _pool(capsys, [str(MEANS), "--measure", "SMD", "--bayes"])
    assert code == 0, err
    assert "difference scale" in out and "ratio scale" not in out


def test_revman_md_analyses_follow_the_same_rule() -> None:
    from bayesmtor.revman.recompute import revman_reanalysis

    table = revman_reanalysis(REVMAN).table
    md = table["measure"] == "MD"
    assert md.any() and table.loc[md, "mu_median"].isna().all()
    assert table.loc[md, "bayes_note"].str.contains("units of its outcome").all()
    smd = table["measure"] == "SMD"
    assert table.loc[smd, "mu_median"].notna().all() and table.loc[smd, "bayes_note"].isna().all()
    given = revman_reanalysis(REVMAN, tau_prior="half-normal:5", mu_prior="normal:0,50").table
    assert given.loc[md, "mu_median"].notna().all() and given["bayes_note"].isna().all()


def test_smd_json_records_its_convention(capsys) -> None:
    """An SMD's JSON names the Hedges' g it is (metafor's or RevMan's), frequentist, --by and
    Bayesian alike; other measures have no such key."""
    for extra, want in (([], "metafor"), (["--smd-convention", "revman"], "revman")):
        for mode in ([], ["--bayes"], ["--by", "study"]):
            code, out, err = _pool(
                capsys, [str(MEANS), "--measure", "SMD", "--json", *extra, *mode]
            )
            assert code == 0, err
            records = json.loads(out)
            for rec in records if isinstance(records, list) else [records]:
                assert rec["smd_convention"] == want
    code, out, _ = _pool(capsys, [str(MEANS), "--measure", "MD", "--json"])
    assert "smd_convention" not in json.loads(out)


def test_md_meta_regression_refuses_the_default_tau_prior(tmp_path, capsys) -> None:
    """--mods --bayes on a mean difference needs --tau-prior on the outcome's scale (the
    coefficients' flat default has no scale); the API refuses it too."""
    frame = pd.read_csv(MEANS)
    frame["year"] = np.arange(len(frame), dtype=float)
    path = tmp_path / "means_year.csv"
    frame.to_csv(path, index=False)
    code, _, err = _pool(capsys, [str(path), "--measure", "MD", "--mods", "year", "--bayes"])
    assert code == 2 and "units of its outcome" in err and "give --tau-prior" in err
    with pytest.raises(InputError, match="units of its outcome"):
        bm.bayesmeta(bm.escalc(bm.read_meta_data(path), "MD"), mods="year")
    code, out, err = _pool(
        capsys,
        [str(path), "--measure", "MD", "--mods", "year", "--bayes", "--tau-prior", "half-normal:20",
         "--json"],
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["measure"] == "MD"
