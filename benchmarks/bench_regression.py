"""Meta-regression timings: frequentist (FE, DL, ML, REML) and exact Bayesian fits.

Prints the wall time of one fit on dat.bcg (k = 13, ~ ablat + alloc: p = 4; the data of
tests/reference/regression_datasets) and on simulated data with k = 100 and 1,000 studies
(seed 20141001, two moderators), median of several repeats. For reference, measured once on
the same (shared, loaded) 2-core machine: R metafor 3.8-1 rma(yi, vi, mods = ~ ablat + alloc,
method = "REML", control = <tight>) on dat.bcg 56 ms per fit, bayesmeta 3.4 bmr() with
tau ~ half-normal(0.5) 12.7 s per fit; figures depend on the machine's load.

Run: ``python benchmarks/bench_regression.py``
"""

from __future__ import annotations

import functools
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bayesmtor.bayes.regression import exact_regression
from bayesmtor.design import model_matrix
from bayesmtor.frequentist.regression import fit_regression

DATA = Path(__file__).resolve().parent.parent / "tests" / "reference" / "regression_datasets"


def _time(fn, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _simulated(k: int) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(20141001)
    table = pd.DataFrame({"x": rng.normal(size=k), "g": rng.choice(["a", "b", "c"], size=k)})
    sei = rng.uniform(0.1, 0.5, size=k)
    yi = 0.2 - 0.3 * table["x"] + rng.normal(0.0, np.sqrt(sei**2 + 0.04))
    return yi.to_numpy(), sei, table


def main() -> None:
    bcg = pd.read_csv(DATA / "bcg.csv")
    cases = [("dat.bcg ~ ablat + alloc", bcg["yi_RR"].to_numpy(), np.sqrt(bcg["vi_RR"]),
              model_matrix(bcg, ["ablat", "alloc"]))]  # fmt: skip
    for k in (100, 1000):
        yi, sei, table = _simulated(k)
        cases.append((f"simulated k = {k} ~ x + g", yi, sei, model_matrix(table, ["x", "g"])))
    print(f"{'data':30s} {'FE':>8s} {'DL':>8s} {'ML':>8s} {'REML':>8s} {'exact':>8s}  (ms)")
    for name, yi, sei, design in cases:
        row = [
            _time(functools.partial(fit_regression, yi, sei**2, design, method=m))
            for m in ("FE", "DL", "ML", "REML")
        ]
        exact = functools.partial(exact_regression, yi, sei, design, tau_prior="half-normal:0.5")
        row.append(_time(exact))
        print(f"{name:30s} " + " ".join(f"{t:8.1f}" for t in row))


if __name__ == "__main__":
    main()
