"""Timing of bayesmtor.frequentist: one meta-analysis per call, and many in one vectorised call.

Usage::

    python benchmarks/bench_frequentist.py [--n-meta 10000] [--data /tmp/bayesmtor_bench.csv]

Simulates ``--n-meta`` meta-analyses of log hazard ratios (k uniform on 6..12, within-study
variances uniform on [0.01, 0.5], tau^2 drawn from {0, 0.05, 0.2}; fixed seed), writes them to
``--data`` (columns meta, study, yi, sei) so that ``benchmarks/bench_metafor.R`` can time R
metafor on the very same data, then prints:

* the time of a single ``rma()`` call (median over repeats), REML and DL (estimate, SE, CI,
  Q, I2, tau^2 and its Q-profile CI, prediction interval);
* the time of one ``pool_groups(frame, by="meta")`` call over all meta-analyses (the code path of
  ``bayesmtor pool --by``), REML and DL, and the time per meta-analysis it implies.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import pandas as pd

from bayesmtor import frequentist as F
from bayesmtor.errors import NotEstimableWarning


def simulate(n_meta: int, seed: int = 20141001) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    k = rng.integers(6, 13, n_meta)
    meta = np.repeat(np.arange(n_meta), k)
    n = int(k.sum())
    tau2 = rng.choice([0.0, 0.05, 0.2], n_meta)[meta]
    vi = rng.uniform(0.01, 0.5, n)
    yi = rng.normal(-0.2, np.sqrt(vi + tau2))
    study = np.arange(n) - np.repeat(np.cumsum(k) - k, k) + 1
    return pd.DataFrame({"meta": meta + 1, "study": study, "yi": yi, "sei": np.sqrt(vi)})


def time_single(frame: pd.DataFrame, method: str, repeats: int) -> float:
    sub = frame[frame["meta"] == 1]
    yi, sei = sub["yi"].to_numpy(), sub["sei"].to_numpy()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        F.rma(yi, sei=sei, method=method)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_vectorised(frame: pd.DataFrame, method: str, repeats: int) -> tuple[float, float]:
    """Best wall-clock and CPU time of one pool_groups() call over all meta-analyses."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        F.pool_groups(frame, by="meta", measure="HR", method=method)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-meta", type=int, default=10_000)
    parser.add_argument("--data", default="/tmp/bayesmtor_bench.csv")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore", NotEstimableWarning)
    frame = simulate(args.n_meta)
    frame.to_csv(args.data, index=False)
    n_studies = len(frame)
    print(f"data: {args.n_meta} meta-analyses, {n_studies} studies (k 6-12) -> {args.data}")
    for method in ("REML", "DL"):
        F.rma([0.1, 0.2, 0.3], sei=[0.1, 0.2, 0.3], method=method)  # warm-up
        single = time_single(frame, method, repeats=200)
        total, cpu = time_vectorised(frame, method, repeats=args.repeats)
        print(
            f"{method:>4}: single rma() call {1e3 * single:7.3f} ms | "
            f"{args.n_meta} meta-analyses in one pool_groups() call {total:6.3f} s wall "
            f"({cpu:6.3f} s CPU) = {1e6 * total / args.n_meta:6.1f} us per meta-analysis"
        )


if __name__ == "__main__":
    main()
