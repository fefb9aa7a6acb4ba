"""`bayesmtor run` (primary plan, MCMC included) end to end, and the other user commands.

The primary run happens ONCE per session (the ``primary`` fixture of ``conftest.py``, about
half a minute on 2 cores); every check of its output reads the same folder.
"""

from __future__ import annotations

import json
import types

import numpy as np
import pandas as pd
import pytest

from bayesmtor import __version__
from bayesmtor.cli import BAYES_KEYS, main
from bayesmtor.datasets import comparative_dataset
from bayesmtor.reporting.html import inspect_html_report


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def _fitted(analyses: pd.DataFrame) -> pd.DataFrame:
    return analyses.loc[~analyses["status"].isin(["skipped", "failed"])]


@pytest.mark.slow
def test_primary_run_statuses(primary):
    out, analyses = primary
    assert not (analyses["status"] == "failed").any()
    # the two grade 3-4 events whose only trial has no event in either arm are skipped
    skipped = analyses.loc[analyses["status"] == "skipped"]
    assert skipped["reason"].str.contains("k = 0").all()
    # MCMC checks of the three main efficacy analyses agree with the exact posterior
    check = pd.read_csv(out / "tables" / "mcmc_check.csv")
    assert set(check["analysis"]) == {
        "pfs.everolimus_endocrine.HR",
        "cbr.everolimus_endocrine.RR",
        "orr.everolimus_endocrine.RR",
    }
    assert check["agree"].all()
    assert not (analyses["status"] == "check disagrees").any()
    diag = pd.read_csv(out / "tables" / "mcmc_diagnostics.csv")
    assert {"divergences", "rhat_max", "ess_bulk_min", "converged"} <= set(diag.columns)
    assert "orr.all.RR.multilevel" in set(diag["analysis"])


@pytest.mark.slow
def test_report_shows_every_figure_and_table(primary):
    out, analyses = primary
    rep = inspect_html_report(out / "report.html")
    assert rep["all_images_embedded"] and rep["external_resources"] == []
    assert rep["toc_ids"] == rep["section_ids"]
    for sec in ("methods", "side-by-side", "replication", "excluded", "diagnostics"):
        assert sec in rep["section_ids"]
    fitted = _fitted(analyses)
    for aid in fitted["id"]:
        assert f"a-{aid}" in rep["section_ids"], aid
        assert any(c.startswith(f"Forest plot {aid}:") for c in rep["figure_captions"]), aid
    # the two meta-regressions of the plan: one section, a bubble plot each, the warning
    assert "meta-regression" in rep["section_ids"]
    bubbles = [c for c in rep["figure_captions"] if c.startswith("Bubble plot ")]
    assert len(bubbles) == 2 and all("almost no power" in c.lower() for c in bubbles)
    assert (out / "tables" / "meta_regression.csv").is_file()
    # every PNG written is embedded once (the SVGs are their vector twins)
    pngs = sorted((out / "figures").glob("*.png"))
    assert rep["n_images"] == len(pngs) == len(rep["figure_ids"])
    assert all(f["embedded"] for f in rep["figures"])
    for stem in (p.stem for p in pngs):
        assert (out / "figures" / f"{stem}.svg").is_file()
    captions = rep["table_captions"]
    for needle in (
        "Bayesian and frequentist pooled effects",
        "Excluded studies per analysis",
        "West-Iran rapamycin cohort",
        "Replication of the 2014 paper",
        "MCMC diagnostics",
        "MCMC check against the exact posterior",
    ):
        assert any(needle in c for c in captions), needle
    assert rep["meta"]["bayesmtor version"] == __version__
    assert "half-normal:0.5" in rep["meta"]["priors"]


@pytest.mark.slow
def test_forest_plot_of_each_analysis_lists_every_trial(primary):
    out, analyses = primary
    captions = inspect_html_report(out / "report.html")["figure_captions"]
    for row in _fitted(analyses).itertuples(index=False):
        if row.likelihood == "multilevel":
            comps = ["everolimus_endocrine", "everolimus_neoadjuvant", "temsirolimus_endocrine"]
        else:
            comps = [row.comparison]
        trials = set()
        for comp in comps:
            trials |= set(comparative_dataset(row.outcome, comp, "trial").data["study"])
        rows = pd.read_csv(out / "tables" / f"forest_{row.id}.csv")
        labels = set(rows.loc[rows["trial"], "label"])
        assert trials <= labels, row.id
        caption = next(c for c in captions if c.startswith(f"Forest plot {row.id}:"))
        assert all(t in caption for t in trials), row.id


def _assert_provenance(attrs, analysis_id: str) -> None:
    """Every .nc file names the package version, the plan, the analysis and its priors."""
    assert attrs["bayesmtor_version"] == __version__
    assert attrs["plan"] == "primary"
    assert attrs["analysis_id"] == analysis_id
    assert attrs["tau_prior"] == "half-normal:0.5" and attrs["mu_prior"] == "normal:0,4"


@pytest.mark.slow
def test_every_analysis_has_an_nc_that_reloads(primary):
    az = pytest.importorskip("arviz")
    out, analyses = primary
    for row in _fitted(analyses).itertuples(index=False):
        idata = az.from_netcdf(out / "idata" / f"{row.id}.nc")  # ArviZ's default engine
        assert {"mu", "tau"} <= set(idata.posterior.data_vars)
        assert idata.posterior.attrs["engine"] == row.engine
        _assert_provenance(idata.posterior.attrs, row.id)
    check = az.from_netcdf(out / "idata" / "pfs.everolimus_endocrine.HR.mcmc_check.nc")
    assert check.posterior.attrs["engine"] == "mcmc"
    _assert_provenance(check.posterior.attrs, "pfs.everolimus_endocrine.HR")
    assert check.posterior.sizes["chain"] == 2
    assert "diverging" in check.sample_stats


@pytest.mark.slow
def test_run_json_and_existing_folder(primary, capsys):
    out, _ = primary
    info = json.loads((out / "run.json").read_text())
    assert info["bayesmtor_version"] == __version__ and info["plan"] == "primary"
    assert info["priors"]["tau"] == "half-normal:0.5"
    assert info["seeds"]["mcmc"] == 20141001
    code, stdout, err = run(["run", "--out", str(out)], capsys)
    assert code == 2 and stdout == ""
    assert "--force" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_run_unknown_plan_exits_2(tmp_path, capsys):
    code, out, err = run(["run", "no_such_plan", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and out == ""
    assert "no_such_plan" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_pool_bayes_json_keys(reference_dir, capsys):
    path = reference_dir / "rma_datasets" / "bcg.csv"
    code, out, _ = run(["pool", str(path), "--measure", "RR", "--bayes", "--json"], capsys)
    assert code == 0
    obj = json.loads(out)
    assert set(BAYES_KEYS) <= set(obj)
    assert obj["engine"] == "exact" and obj["k"] == 13
    assert obj["mu_low"] < obj["mu_median"] < obj["mu_high"]
    assert obj["pred_low"] < obj["mu_low"] and obj["pred_high"] > obj["mu_high"]
    assert 0 <= obj["p_mu_below_0"] <= 1


def test_pool_bayes_by_groups_and_priors(reference_dir, capsys):
    path = reference_dir / "rma_datasets" / "hackshaw.csv"
    argv = ["pool", str(path), "--measure", "OR", "--bayes", "--by", "design", "--json",
            "--tau-prior", "half-cauchy:0.5", "--mu-prior", "flat"]  # fmt: skip
    code, out, _ = run(argv, capsys)
    assert code == 0
    objs = json.loads(out)
    assert {o["design"] for o in objs} == {"case-control", "cohort"}
    assert all(set(BAYES_KEYS) <= set(o) for o in objs)
    assert all("cauchy" in o["tau_prior"].lower() for o in objs)
    code, out, _ = run(argv[:-5], capsys)  # text table
    assert code == 0 and "design" in out and "OR median" in out


def test_pool_bayes_mcmc_keys_with_a_stub_sampler(reference_dir, capsys, monkeypatch):
    """Structure of the MCMC output, with the sampler replaced by a stub (no PyMC)."""
    calls = {}
    rng = np.random.default_rng(0)
    tau = np.abs(rng.normal(0.2, 0.1, size=(2, 500)))
    posterior = {
        "mu": rng.normal(-0.5, 0.1, size=(2, 500)), "tau": tau,
        "theta_new": rng.normal(-0.5, 0.3, size=(2, 500)), "I2": tau**2 / (tau**2 + 0.1),
    }  # fmt: skip

    def fake_fit(yi, sei, **kwargs):
        calls.update(kwargs, k=len(yi))
        summ = pd.DataFrame(
            {"mean": [-0.5, 0.2, -0.5, 0.3], "sd": 0.1, "median": [-0.5, 0.2, -0.5, 0.3],
             "q_low": [-0.7, 0.01, -1.0, 0.01], "q_high": [-0.3, 0.5, 0.0, 0.6]},
            index=pd.Index(["mu", "tau", "theta_new", "I2"], name="parameter"),
        )  # fmt: skip
        return types.SimpleNamespace(
            engine="mcmc", model="normal_normal", measure=kwargs["measure"],
            labels=kwargs["labels"], priors={"tau": "stub", "mu": "stub"},
            summary=lambda ci=None, ci_prob=None: summ,
            idata=types.SimpleNamespace(
                posterior={k: types.SimpleNamespace(values=v) for k, v in posterior.items()}
            ),
            diagnostics={"divergences": 0, "rhat_max": 1.001, "ess_bulk_min": 900.0,
                         "random_seed": kwargs["random_seed"]},
            converged=True,
        )  # fmt: skip

    monkeypatch.setitem(
        __import__("sys").modules,
        "bayesmtor.bayes.pymc_models",
        types.SimpleNamespace(fit_normal_normal=fake_fit),
    )
    path = reference_dir / "rma_datasets" / "bcg.csv"
    argv = ["pool", str(path), "--measure", "RR", "--bayes", "--engine", "mcmc", "--seed", "7",
            "--json"]  # fmt: skip
    code, out, _ = run(argv, capsys)
    assert code == 0
    obj = json.loads(out)
    assert set(BAYES_KEYS) | {"divergences", "rhat_max", "ess_bulk_min"} <= set(obj)
    assert obj["engine"] == "mcmc" and obj["divergences"] == 0 and obj["seed"] == 7
    # every number is computed from the draws, and each has its Monte Carlo standard error
    mu = posterior["mu"].ravel()
    assert obj["estimate"] == obj["mu_median"] == pytest.approx(np.median(mu), rel=1e-12)
    assert obj["mu_low"] == pytest.approx(np.quantile(mu, 0.025), rel=1e-12)
    assert calls["random_seed"] == 7 and calls["k"] == 13
    not_estimates = {
        "k", "ci_prob", "seed", "divergences", "rhat_max", "ess_bulk_min", "quad_error",
        "log_marginal_likelihood", "bf_tau0", "bf_mu0", "pval",
    }  # fmt: skip
    numbers = [
        key for key, value in obj.items()
        if isinstance(value, float) and not key.endswith("_mcse") and key not in not_estimates
    ]  # fmt: skip
    assert {"mu_median", "tau_high", "pred_low", "estimate", "tau2", "I2"} <= set(numbers)
    missing = [key for key in numbers if not isinstance(obj.get(f"{key}_mcse"), float)]
    assert not missing, f"MCMC numbers without an MCSE: {missing}"
    assert all(obj[f"{key}_mcse"] >= 0 for key in numbers)
    assert obj["bf_tau0"] is None and obj["log_marginal_likelihood"] is None


def test_pool_bayes_options_need_bayes(reference_dir, capsys):
    path = reference_dir / "rma_datasets" / "bcg.csv"
    code, out, err = run(["pool", str(path), "--measure", "RR", "--engine", "mcmc"], capsys)
    assert code == 2 and out == "" and "--bayes" in err and "Traceback" not in err
    code, out, err = run(
        ["pool", str(path), "--measure", "RR", "--bayes", "--tau-prior", "half-foo:1"], capsys
    )
    assert code == 2 and "half-foo" in err and "Traceback" not in err


def test_replicate_prints_and_writes(tmp_path, capsys):
    code, out, _ = run(["replicate"], capsys)
    assert code == 0 and "Replication of the 2014 meta-analysis" in out
    code, out, _ = run(["replicate", "--json", "--out", str(tmp_path / "rep")], capsys)
    assert code == 0
    records = json.loads(out)
    assert records and {"result_id", "status"} <= set(records[0])
    table = pd.read_csv(tmp_path / "rep" / "replication.csv")
    assert len(table) == len(records)


def test_plans_lists_the_bundled_plans(capsys):
    code, out, _ = run(["plans"], capsys)
    assert code == 0
    for name in ("primary", "prior_sensitivity", "seed_replication"):
        assert f"{name}: unit=" in out


@pytest.mark.parametrize("command", [[], ["run"], ["pool"], ["replicate"], ["plans"]])
def test_help_with_examples(command, capsys):
    code, out, _ = run([*command, "--help"], capsys)
    assert code == 0
    assert "examples:" in out and "bayesmtor" in out
