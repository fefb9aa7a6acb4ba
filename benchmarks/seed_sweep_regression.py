"""Seed sweep of tests/test_regression_mcmc.py: how often would a correct sampler fail it?

Reruns the test's fit (PyMC meta-regression of Crins 2014, log OR ~ IL2RA, 2 chains x 2000
draws) for seeds 0..N-1 and compares it with the exact posterior as the test does. Prints per
quantity the mean and SD of z = (MCMC - exact) / MCSE and the largest |z|; the family max |z|
of every seed against the test's bound Z_MAX; the relative low-side spread of the MCSE
(1 - q15.87 / median of 1/sqrt(ESS)) that the bound assumes (MCSE_REL_SD); and the seeds that
fail the bound or the convergence gate.

Run: ``nice -n 10 python benchmarks/seed_sweep_regression.py [N]`` (default N = 20; about 8 s
per seed on one core).
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

import test_regression_mcmc as t  # noqa: E402


def main(n: int) -> None:
    logging.getLogger("pymc").setLevel(logging.ERROR)
    logging.getLogger("pytensor").setLevel(logging.ERROR)
    rows, gates, inv_ess = [], [], []
    for seed in range(n):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit, ex = t.fit_pair(TESTS / "reference", seed=seed)
        found = t.comparisons(fit, ex)
        rows.append({k: v[2] for k, v in found.items()})
        gates.append(bool(fit.gate["clean"]) and fit.gate["attempt"] == 0)
        beta = fit.idata.posterior["beta"]
        inv_ess.append([1 / np.sqrt(t._ess(beta.isel(term=j).values)) for j in range(ex.design.p)])
        print(
            f"seed {seed}: family max |z| {max(abs(z) for z in rows[-1].values()):.2f}", flush=True
        )
    names = list(rows[0])
    z = np.array([[r[k] for k in names] for r in rows])
    print(f"\n{'quantity':28s} {'mean z':>7s} {'sd z':>6s} {'max|z|':>7s}")
    for j, name in enumerate(names):
        print(
            f"{name:28s} {z[:, j].mean():7.2f} {z[:, j].std(ddof=1):6.2f} {np.abs(z[:, j]).max():7.2f}"
        )
    fam = np.abs(z).max(axis=1)
    ie = np.array(inv_ess)[np.array(gates)]
    low = 1 - np.quantile(ie, 0.1587, axis=0) / np.median(ie, axis=0) if ie.size else [np.nan]
    print(
        f"\nseeds {n}; all z: sd {z.std(ddof=1):.2f}; worst family max |z| {fam.max():.2f} "
        f"vs Z_MAX {t.Z_MAX:.2f}; failing seeds: {int((fam >= t.Z_MAX).sum())}; "
        f"gate not clean at first attempt: {int((~np.array(gates)).sum())}"
    )
    print(
        f"MCSE low-side relative spread (coefficient means): {np.max(low):.3f} "
        f"(test assumes MCSE_REL_SD = {t.MCSE_REL_SD})"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
