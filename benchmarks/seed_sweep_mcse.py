"""Seed sweep of tests/test_mcse.py: how often the MCSE check fails a correct computation.

Reruns the test's computation (seed-to-seed SD of each summary over REPS replications of
autocorrelated chains, divided by the RMS of the reported MCSEs) for many seeds and prints
the distribution of the ratios and the share of seeds on which the test would fail.

    python benchmarks/seed_sweep_mcse.py [N_SEEDS] [FIRST_SEED]

Seeds FIRST_SEED .. FIRST_SEED + N_SEEDS - 1 (default 0): a long sweep can be split between
processes, and the per-seed lines of the parts read together.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from mcse_check import KEYS, spread_ratios  # noqa: E402
from test_mcse import BOUND, REPS  # noqa: E402


def main(n_seeds: int, first: int = 0) -> None:
    t0 = time.perf_counter()
    rows = []
    for seed in range(first, first + n_seeds):
        rows.append([spread_ratios(seed, REPS)[k] for k in KEYS])
        worst = np.abs(np.log(rows[-1])).max()
        print(f"seed {seed}: largest |log ratio| {worst:.3f}", flush=True)
    table = np.array(rows)
    fails = (np.abs(np.log(table)) > BOUND).any(axis=1)
    print(
        f"{n_seeds} seeds x {REPS} replications of 4 x 1000 AR(1) draws "
        f"({time.perf_counter() - t0:.0f} s); bound |log ratio| <= {BOUND:.3f}"
    )
    print(f"{'summary':<14} {'mean ratio':>10} {'min':>7} {'max':>7}")
    for j, k in enumerate(KEYS):
        col = table[:, j]
        print(f"{k:<14} {col.mean():>10.3f} {col.min():>7.3f} {col.max():>7.3f}")
    print(
        f"seeds on which the test fails: {int(fails.sum())} of {n_seeds} "
        f"(design: < 0.1%; largest |log ratio| {np.abs(np.log(table)).max():.3f}, "
        f"bound {BOUND:.3f} = ratio in [{math.exp(-BOUND):.3f}, {math.exp(BOUND):.3f}])"
    )


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 40, int(sys.argv[2]) if len(sys.argv) > 2 else 0
    )
