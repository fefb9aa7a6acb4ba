"""Benchmark: one MCMC fit of the marginal normal-normal model, compilation included.

Data: the 13 BCG vaccine trials (Colditz et al. 1994, JAMA 271:698, Table 1; R's
metadat::dat.bcg), log relative risks with the standard large-sample variances.
Settings: the package defaults (bayesmtor.config), cores = min(chains, 2).
Target: the whole fit (model build, compilation, sampling, prior and posterior predictive)
in at most 10 s. Prints wall-clock times and the bulk/tail ESS per second of tau.

Run: ``python benchmarks/bench_mcmc.py [draws [chains]]`` (defaults from bayesmtor.config).
"""

from __future__ import annotations

import sys
import time

import arviz as az
import numpy as np

from bayesmtor import config
from bayesmtor.bayes.pymc_models import fit_normal_normal

# tpos, tneg, cpos, cneg (Colditz et al. 1994, Table 1)
BCG = np.array(
    [
        [4, 119, 11, 128],
        [6, 300, 29, 274],
        [3, 228, 11, 209],
        [62, 13536, 248, 12619],
        [33, 5036, 47, 5761],
        [180, 1361, 372, 1079],
        [8, 2537, 10, 619],
        [505, 87886, 499, 87892],
        [29, 7470, 45, 7232],
        [17, 1699, 65, 1600],
        [186, 50448, 141, 27197],
        [5, 2493, 3, 2338],
        [27, 16886, 29, 17825],
    ],
    dtype=float,
)
TARGET_SECONDS = 10.0


def main() -> None:
    a, b, c, d = BCG.T
    yi = np.log(a / (a + b)) - np.log(c / (c + d))
    sei = np.sqrt(1 / a - 1 / (a + b) + 1 / c - 1 / (c + d))

    draws = int(sys.argv[1]) if len(sys.argv) > 1 else None
    chains = int(sys.argv[2]) if len(sys.argv) > 2 else None
    start = time.perf_counter()
    res = fit_normal_normal(yi, sei, measure="RR", draws=draws, chains=chains)
    total = time.perf_counter() - start

    stats = res.idata.sample_stats
    sampling = float(stats.attrs.get("sampling_time", np.nan))
    ess_bulk = float(az.ess(res.idata, var_names=["tau"], method="bulk")["tau"])
    ess_tail = float(az.ess(res.idata, var_names=["tau"], method="tail")["tau"])
    d = res.diagnostics
    print(
        f"settings: chains={d['chains']} draws={d['draws']} tune={d['tune']} "
        f"target_accept={d['target_accept']} cores={min(d['chains'], 2)} "
        f"runs={len(d['attempts'])} (defaults: chains={config.get('chains')}, "
        f"draws={config.get('draws')})"
    )
    print(f"total fit time (incl. compilation): {total:.2f} s  [target <= {TARGET_SECONDS:.0f} s]")
    print(f"NUTS sampling time (final run):     {sampling:.2f} s")
    print(f"tau bulk ESS {ess_bulk:.0f}, tail ESS {ess_tail:.0f}")
    print(
        f"tau bulk ESS/s: {ess_bulk / total:.0f} per total second, {ess_bulk / sampling:.0f} per sampling second"
    )
    print(
        f"divergences={d['divergences']} rhat_max={d['rhat_max']:.4f} "
        f"ess_bulk_min={d['ess_bulk_min']:.0f} ess_tail_min={d['ess_tail_min']:.0f} "
        f"converged={res.converged}"
    )


if __name__ == "__main__":
    main()
