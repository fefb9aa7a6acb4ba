"""Seed sweep of the MCMC statistical tests: how often would a correct sampler fail them?

Reruns, for seeds 0..N-1, the computations of

* ``tests/test_mcmc_vs_exact.py`` (family ``vs_exact``: 2 samplers x 3 datasets x 11
  quantities at the package defaults; ``--samplers`` restricts the samplers);
* ``tests/test_pymc_models.py::test_normal_normal_agrees_with_exact_engine`` (family ``bcg``:
  8 quantities, 2 chains x 1000 draws), and on the same fit
  ``test_shrunken_effects_lie_between_estimate_and_mean`` (slack of each shrunken mean inside
  its band);
* ``tests/test_summaries.py`` (family ``summaries``: MCMC vs exact median of mu, tolerance 0.05);
* ``tests/test_pymc_models.py::test_binomial_normal_rr_close_to_normal_normal`` (family
  ``binomial``: difference of the two models' medians, tolerance 0.15),

and prints, for the z-score families (z = (MCMC - exact) / MCSE, see ``tests/familywise.py``),
per dataset and quantity: the mean and SD of z, the largest |z|, the mean MCSE in posterior SDs,
the relative SD of the MCSE and its low-side spread (through 1 / sqrt(ESS), fits that passed
the gate at the first attempt; see ``LOW_SIDE``) and the bias the test detects with 95%
probability, in posterior SDs; then the worst family max |z| against the test's threshold and
the number of seeds that would fail it, or would fail the convergence gate the tests also
require. For the tolerance families it prints
the mean, SD and largest |difference| and the normal-tail probability of reaching the tolerance.

Run: ``nice -n 10 python benchmarks/seed_sweep_mcmc.py [N [families]] [--csv FILE]`` with
``families`` a comma list of ``vs_exact,bcg,summaries,binomial`` (default: all, N = 20);
``--from-csv FILE`` reports the z-scores saved by an earlier ``--csv`` run without refitting.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

import arviz as az  # noqa: E402
import test_mcmc_vs_exact as vs  # noqa: E402
import test_pymc_models as tpm  # noqa: E402
import test_summaries as tsu  # noqa: E402
from familywise import mcmc_vs_exact  # noqa: E402

from bayesmtor.bayes import pymc_models as pmm  # noqa: E402
from bayesmtor.bayes.exact import exact_posterior  # noqa: E402
from bayesmtor.errors import ConvergenceWarning  # noqa: E402

FAMILIES = ("vs_exact", "bcg", "summaries", "binomial")
SAMPLERS = list(vs.SAMPLERS)  # of the vs_exact family (--samplers)
SUMMARY_TOL = 0.05  # test_summaries: |MCMC - exact| median of mu
SHRINK_TOL = 0.02  # test_shrunken_effects_lie_between_estimate_and_mean
#: The MCSE is too small (z inflated) when the ESS is overestimated: the "low-side" spread
#: 1 - q / median of 1/sqrt(ESS), with q its 15.87% quantile, is the one-SD relative
#: underestimate of the MCSE, compared with the MCSE_REL_SD the test assumes.
LOW_SIDE = stats.norm.cdf(-1.0)
POWER_Z = stats.norm.isf(0.05)  # a bias of (threshold + 1.645) MCSEs is caught 95% of the time
#: The test's threshold and the MCSE relative SD it assumes, per z-score family.
Z_FAMILIES = {
    "vs_exact": (vs.Z_MAX, vs.MCSE_REL_SD),
    "bcg": (tpm.N_MCSE, tpm.BCG_MCSE_REL_SD),
}


def _gate(fit: pmm.BayesResult) -> dict:
    return {
        "divergences": int(fit.diagnostics["divergences"]),
        "converged": bool(fit.converged),
        "attempts": len(fit.diagnostics["attempts"]),
    }


def _sd_scale(ex, what: str) -> float:
    """Converts the MCSE of ``what`` into posterior SDs: 1 for a mean (its MCSE is already
    ``sd / sqrt(ESS)``), the exact density at the quantile times the SD for a quantile (whose
    MCSE is on the probability scale)."""
    var, stat = what.split()
    if stat == "mean":
        return 1.0
    sd = {"mu": ex.mu_sd, "tau": ex.tau_sd, "theta_new": ex.theta_new_sd}[var]()
    cdf = {"mu": ex.mu_cdf, "tau": ex.tau_cdf, "theta_new": ex.theta_new_cdf}[var]
    quantile = {"mu": ex.mu_quantile, "tau": ex.tau_quantile, "theta_new": ex.theta_new_quantile}
    x = float(quantile[var](float(stat[1:])))
    lo, hi = max(x - 0.01 * sd, 0.0) if var == "tau" else x - 0.01 * sd, x + 0.01 * sd
    return (float(cdf(hi)) - float(cdf(lo))) / (hi - lo) * sd


def _rows(family: str, dataset: str, seed: int, fit, ex, quantities) -> list[dict]:
    rows = []
    for what, c in mcmc_vs_exact(fit.idata.posterior, ex, quantities).items():
        stat = what.split()[1]
        sd_units = 1.0 if stat == "mean" else math.sqrt(float(stat[1:]) * (1 - float(stat[1:])))
        rows.append(
            {"family": family, "dataset": dataset, "seed": seed, "quantity": what,
             "mcmc": c.mcmc, "exact": c.exact, "z": c.z, "ess": c.ess,
             "mcse_sd": sd_units / math.sqrt(c.ess) / _sd_scale(ex, what)}
            | _gate(fit)
        )  # fmt: skip
    return rows


def sweep_vs_exact(seeds) -> pd.DataFrame:
    rows = []
    for sampler in SAMPLERS:
        for name in sorted(vs.DATASETS):
            for seed in seeds:
                fit, ex = vs.fit_dataset(name, TESTS / "reference", seed, sampler=sampler)
                rows += _rows("vs_exact", f"{name} ({sampler})", seed, fit, ex, vs.QUANTITIES)
    return pd.DataFrame(rows)


def sweep_bcg(seeds) -> tuple[pd.DataFrame, pd.DataFrame]:
    yi, sei = tpm.bcg_log_rr()
    ex = exact_posterior(yi, sei)
    rows, shrink = [], []
    for seed in seeds:
        fit = pmm.fit_normal_normal(
            yi, sei, labels=tpm.BCG_LABELS, measure="RR", draws=1000, chains=2, random_seed=seed
        )
        rows += _rows("bcg", "bcg", seed, fit, ex, tpm.BCG_QUANTITIES)
        post = fit.idata.posterior
        theta = post["theta"].mean(("chain", "draw")).values
        mcse = az.mcse(post[["theta"]], method="mean")["theta"].values
        mu = float(post["mu"].mean())
        lo, hi = np.minimum(yi, mu) - SHRINK_TOL, np.maximum(yi, mu) + SHRINK_TOL
        slack = np.minimum(theta - lo, hi - theta)
        i = int(np.argmin(slack / mcse))
        shrink.append({"seed": seed, "trial": tpm.BCG_LABELS[i], "slack": slack[i],
                       "slack_mcse": slack[i] / mcse[i], "fails": bool((slack < 0).any())})  # fmt: skip
    return pd.DataFrame(rows), pd.DataFrame(shrink)


def sweep_summaries(seeds) -> pd.DataFrame:
    yi, sei = tsu._log_rr()
    median = float(exact_posterior(yi, sei).mu_quantile(0.5))
    rows = []
    for seed in seeds:
        fit = pmm.fit_normal_normal(yi, sei, measure="RR", draws=1000, chains=2, random_seed=seed)
        rows.append({"seed": seed, "diff": float(fit.idata.posterior["mu"].median()) - median})
        rows[-1] |= _gate(fit)
    return pd.DataFrame(rows)


def sweep_binomial(seeds) -> pd.DataFrame:
    small = [0, 1, 2, 5, 9, 11]  # as in test_binomial_normal_rr_close_to_normal_normal
    a, b, c, d = tpm.BCG_COUNTS[small].T
    yi, sei = tpm.bcg_log_rr()
    rows = []
    for seed in seeds:
        binom = pmm.fit_binomial_normal(
            a, a + b, c, c + d, measure="RR", draws=1000, chains=2, target_accept=0.99,
            random_seed=seed,
        )  # fmt: skip
        nn = pmm.fit_normal_normal(yi[small], sei[small], draws=1000, chains=2, random_seed=seed)
        diff = float(binom.idata.posterior["mu"].median() - nn.idata.posterior["mu"].median())
        rows.append({"seed": seed, "diff": diff} | _gate(binom))
    return pd.DataFrame(rows)


def _gate_failures(rows: pd.DataFrame) -> int:
    return int(((rows["divergences"] > 0) | ~rows["converged"].astype(bool)).sum())


def report_z(rows: pd.DataFrame, z_max: float, mcse_rel_sd: float, title: str) -> None:
    print(f"\n== {title}: z = (MCMC - exact) / MCSE, threshold |z| < {z_max:.3f} ==")
    by = rows.groupby(["dataset", "quantity"], sort=False)
    first = rows[rows["attempts"] == 1].assign(inv=lambda r: 1 / np.sqrt(r["ess"]))
    inv = first.groupby(["dataset", "quantity"], sort=False)["inv"]
    table = pd.DataFrame(
        {
            "z mean": by["z"].mean(),
            "z sd": by["z"].std(ddof=1),
            "max |z|": by["z"].apply(lambda z: z.abs().max()),
            "MCSE/SD": by["mcse_sd"].mean(),
            "MCSE rel sd": inv.std(ddof=1) / inv.mean(),
            "MCSE low-side": inv.apply(lambda x: 1 - x.quantile(LOW_SIDE) / x.median()),
            "detects (SD)": (z_max + POWER_Z) * by["mcse_sd"].mean(),
        }
    )
    with pd.option_context("display.width", 120, "display.max_rows", 200):
        print(table.round(3).to_string())
    z = rows["z"].to_numpy()
    print(
        f"all {z.size} z: mean {z.mean():+.3f}, sd {z.std(ddof=1):.3f}, |z| > 3: "
        f"{int((np.abs(z) > 3).sum())} (expected {z.size * 0.0027:.1f} if N(0,1)); largest MCSE "
        f"rel sd {table['MCSE rel sd'].max():.3f}, largest low-side spread "
        f"{table['MCSE low-side'].max():.3f} (the test assumes {mcse_rel_sd})"
    )
    fam = rows.assign(abs_z=rows["z"].abs()).groupby("seed")["abs_z"].max()
    fits = rows.drop_duplicates(["dataset", "seed"])
    gate_seeds = fits.loc[(fits["divergences"] > 0) | ~fits["converged"].astype(bool), "seed"]
    print(
        f"family max |z| per seed: median {fam.median():.3f}, worst {fam.max():.3f} (seed "
        f"{int(fam.idxmax())}) vs threshold {z_max:.3f}; seeds failing |z|: "
        f"{int((fam >= z_max).sum())}/{fam.size}; seeds failing the gate: "
        f"{gate_seeds.nunique()}/{fam.size}; fits retried by the gate: "
        f"{int((fits['attempts'] > 1).sum())}/{len(fits)}"
    )


def report_diff(rows: pd.DataFrame, tol: float, title: str) -> None:
    d = rows["diff"]
    mean, sd = d.mean(), d.std(ddof=1)
    tail = stats.norm.sf((tol - mean) / sd) + stats.norm.cdf((-tol - mean) / sd)
    print(
        f"\n== {title}: |difference| < {tol} ==\n"
        f"difference mean {mean:+.4f}, sd {sd:.4f}, max |difference| {d.abs().max():.4f}; "
        f"tolerance at {(tol - abs(mean)) / sd:.1f} SD (normal tail {tail:.1e}); seeds failing: "
        f"{int((d.abs() >= tol).sum())}/{len(d)}; fits failing the gate: {_gate_failures(rows)}"
        f"; retried: {int((rows['attempts'] > 1).sum())}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=20)
    ap.add_argument("families", nargs="?", default=",".join(FAMILIES))
    ap.add_argument("--csv", type=Path, default=None, help="write the raw z-scores here")
    ap.add_argument(
        "--samplers", default=",".join(vs.SAMPLERS), help="samplers of the vs_exact family"
    )
    ap.add_argument(
        "--from-csv", type=Path, default=None, help="report the z-scores of an earlier --csv run"
    )
    args = ap.parse_args()
    if args.from_csv:
        old = pd.read_csv(args.from_csv)
        for family, rows in old.groupby("family", sort=False):
            print(f"{args.from_csv}: seeds 0..{rows['seed'].max()}")
            z_max, rel_sd = Z_FAMILIES[family]
            report_z(
                rows,
                z_max,
                rel_sd,
                f"{family} (m = {rows['quantity'].nunique() * rows['dataset'].nunique()})",
            )
        return
    seeds = range(args.n)
    families = args.families.split(",")
    SAMPLERS[:] = args.samplers.split(",")
    warnings.simplefilter("ignore", ConvergenceWarning)  # counted, not printed
    warnings.simplefilter("ignore", UserWarning)
    logging.getLogger("pymc").setLevel(logging.ERROR)
    print(f"seeds 0..{args.n - 1}")
    raw = []
    for family in families:
        t0 = time.perf_counter()
        if family == "vs_exact":
            rows = sweep_vs_exact(seeds)
            raw.append(rows)
            report_z(rows, *Z_FAMILIES["vs_exact"], f"vs_exact (m = {vs.M_FAMILY})")
        elif family == "bcg":
            rows, shrink = sweep_bcg(seeds)
            raw.append(rows)
            report_z(rows, *Z_FAMILIES["bcg"], f"bcg (m = {len(tpm.BCG_QUANTITIES)})")
            worst = shrink.loc[shrink["slack_mcse"].idxmin()]
            print(
                f"shrunken means: smallest slack inside the +-{SHRINK_TOL} band "
                f"{worst['slack']:.4f} = {worst['slack_mcse']:.1f} MCSE ({worst['trial']}, "
                f"seed {int(worst['seed'])}); seeds failing: {int(shrink['fails'].sum())}/"
                f"{len(shrink)}"
            )
        elif family == "summaries":
            report_diff(sweep_summaries(seeds), SUMMARY_TOL, "test_summaries, median of mu")
        elif family == "binomial":
            report_diff(
                sweep_binomial(seeds), tpm.BINOMIAL_VS_NN_LOGRR, "binomial vs normal-normal median"
            )
        else:
            raise SystemExit(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
        print(f"time {time.perf_counter() - t0:.0f} s", flush=True)
    if args.csv and raw:
        pd.concat(raw).to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
