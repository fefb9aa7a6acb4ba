"""Seed sweep of the statistical tests on independent draws: SBC, prior draws, exact draws.

Reruns, for seeds 0..N-1, the computations of

* ``tests/test_exact_sbc.py`` - five p-values (KS and chi-square for the PITs of mu and tau,
  binomial test of the 95% coverage of mu); the test fails when one is below 0.001 / 5. The
  same replicates are also scored against deliberately wrong posteriors (mu shifted by a
  fraction of its posterior SD, tau's posterior stretched or shrunk by 10%) to show the power;
* ``tests/test_priors.py::test_tau_prior_mean_and_draws`` - KS p-value of 4000 draws of each
  of the six tau priors; the test fails when one is below 0.001 / 6;
* ``tests/test_exact.py::test_draws_agree_with_exact_moments`` - z-scores of the means of
  5000 exact posterior draws; the test fails when one exceeds 4,

and prints, per check, the smallest p-value (or largest |z|) over the seeds, the number of
seeds that would fail the test, and, for the old fixed thresholds, how many would have failed.

Run: ``nice -n 10 python benchmarks/seed_sweep_sbc.py [N]`` (default N = 200).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import test_exact as tex  # noqa: E402
import test_exact_sbc as sbc  # noqa: E402
import test_priors as tpr  # noqa: E402
from familywise import bonferroni_alpha  # noqa: E402

from bayesmtor.bayes.exact import exact_posterior  # noqa: E402

OLD_ALPHA = 0.01  # the per-check level these tests used before the family-wise bound
EXACT_DRAWS_Z = 4.0  # test_draws_agree_with_exact_moments


def sbc_variants(seed: int) -> dict[str, dict[str, float]]:
    """p-values of the SBC checks for the exact posterior and for perturbed ones."""
    mu, tau, post = sbc.simulate(seed)
    sd = post.mu_sd()
    pit_mu, pit_tau, cover = post.mu_cdf(mu), post.tau_cdf(tau), sbc.mu_coverage(mu, post)
    out = {"exact posterior": sbc.calibration_pvalues(pit_mu, pit_tau, cover)}
    for shift in (0.05, 0.1, 0.15):
        # a posterior of mu shifted right by `shift` SDs: its CDF at mu is F(mu - shift * sd)
        out[f"mu shifted +{shift} SD"] = sbc.calibration_pvalues(
            post.mu_cdf(mu - shift * sd), pit_tau, sbc.mu_coverage(mu - shift * sd, post)
        )
    for scale in (0.9, 1.1):
        # a posterior of tau stretched by `scale`: its CDF at tau is F(tau / scale)
        out[f"tau posterior x{scale}"] = sbc.calibration_pvalues(
            pit_mu, post.tau_cdf(tau / scale), cover
        )
    return out


def sweep_sbc(seeds) -> None:
    rows = [
        {"seed": seed, "variant": variant, "check": check, "p": p}
        for seed in seeds
        for variant, pvals in sbc_variants(seed).items()
        for check, p in pvals.items()
    ]
    df = pd.DataFrame(rows)
    alpha = bonferroni_alpha(sbc.N_CHECKS)
    exact = df[df["variant"] == "exact posterior"]
    print(f"\n== SBC ({sbc.N_REP} replicates): each p-value must exceed {alpha:.1e} ==")
    per = exact.groupby("check", sort=False)["p"]
    table = pd.DataFrame(
        {
            "mean p": per.mean(),
            "min p": per.min(),
            f"p <= {alpha:.0e}": per.apply(lambda p: int((p <= alpha).sum())),
            f"p <= {OLD_ALPHA}": per.apply(lambda p: int((p <= OLD_ALPHA).sum())),
        }
    )
    print(table.to_string(float_format=lambda x: f"{x:.3g}"))
    fam = df.groupby(["variant", "seed"], sort=False)["p"].min().unstack("seed")
    n = fam.shape[1]
    print(f"\nseeds failing (any of the {sbc.N_CHECKS} p-values too small), out of {n}:")
    for variant, pmin in fam.iterrows():
        print(
            f"  {variant:<22} {int((pmin <= alpha).sum()):>4} at {alpha:.0e} (new)  "
            f"{int((pmin <= OLD_ALPHA).sum()):>4} at {OLD_ALPHA} (old); smallest family p "
            f"{pmin.min():.2e}, median {pmin.median():.2e}"
        )


def sweep_priors(seeds) -> None:
    alpha = bonferroni_alpha(len(tpr.ALL_TAU))
    pvals = pd.DataFrame(
        {
            f"{i} {p.family}": [
                stats.kstest(p.rvs(4000, rng=np.random.default_rng(s)), p.cdf).pvalue for s in seeds
            ]
            for i, p in enumerate(tpr.ALL_TAU)
        }
    )
    fam = pvals.min(axis=1)
    print(f"\n== tau prior draws, KS test: each p-value must exceed {alpha:.2e} ==")
    # rvs draws by inversion, so every prior sees the same uniforms and the same KS statistic
    same = bool((pvals.max(axis=1) - pvals.min(axis=1) < 1e-9).all())
    print(f"p-values equal across the priors in every seed: {same}")
    print(
        pd.DataFrame({"mean p": pvals.mean(), "min p": pvals.min()}).to_string(
            float_format=lambda x: f"{x:.3g}"
        )
    )
    print(
        f"seeds failing: {int((fam <= alpha).sum())}/{len(fam)} (new); "
        f"{int((fam <= OLD_ALPHA).sum())}/{len(fam)} at the old {OLD_ALPHA}; "
        f"smallest family p {fam.min():.2e}"
    )


def sweep_exact_draws(seeds) -> None:
    p = exact_posterior(tex.SYN_Y, tex.SYN_SE, tau_prior=tex.SYN_TAU, mu_prior=tex.SYN_MU)
    ref = {"mu": (p.mu_mean(), p.mu_sd()), "tau": (p.tau_mean(), p.tau_sd())}
    ref["theta_new"] = (p.mu_mean(), p.theta_new_sd())
    rows = []
    for s in seeds:
        d = p.draws(5000, rng=np.random.default_rng(s))
        rows.append({v: (d[v].mean() - m) / (sd / np.sqrt(len(d))) for v, (m, sd) in ref.items()})
    z = pd.DataFrame(rows)
    fam = z.abs().max(axis=1)
    print(
        f"\n== exact posterior draws (5000), z of the means: |z| must stay below {EXACT_DRAWS_Z} =="
    )
    print(
        pd.DataFrame({"z mean": z.mean(), "z sd": z.std(ddof=1), "max |z|": z.abs().max()}).round(3)
    )
    print(
        f"seeds failing: {int((fam >= EXACT_DRAWS_Z).sum())}/{len(fam)}; worst family max |z| {fam.max():.3f}"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    seeds = range(n)
    print(f"seeds 0..{n - 1}")
    for sweep in (sweep_sbc, sweep_priors, sweep_exact_draws):
        t0 = time.perf_counter()
        sweep(seeds)
        print(f"time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
