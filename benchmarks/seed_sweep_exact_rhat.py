"""Seed sweep of the R-hat bound on exact draws stored as chains.

``tests/test_arviz_conventions.py`` checks that ``az.summary`` of the exact engine's
InferenceData (config ``exact_chains`` chains x ``exact_draws`` independent draws) gives R-hat
below ``RHAT_BOUND`` for every parameter. The draws are independent, so R-hat exceeds 1 only
by Monte Carlo noise. This script reruns that summary for seeds 0..N-1 (the test uses seed 0)
and prints the largest R-hat over all parameters and seeds, and how many seeds would fail.

Run: ``nice -n 10 python benchmarks/seed_sweep_exact_rhat.py [N]`` (default N = 200).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import arviz as az  # noqa: E402
from test_arviz_conventions import RHAT_BOUND  # noqa: E402

import bayesmtor as bm  # noqa: E402


def main(n: int = 200) -> None:
    ds = bm.datasets.comparative_dataset("orr", "everolimus_neoadjuvant", unit="trial")
    post = bm.bayesmeta(bm.escalc(ds.data, measure="RR")).posterior
    t0 = time.perf_counter()
    worst = []
    for seed in range(n):
        rhat = az.summary(post.to_inference_data(seed=seed), round_to="none")["r_hat"].to_numpy(
            float
        )
        worst.append(rhat.max())
    worst = np.asarray(worst)
    print(f"{n} seeds, {rhat.size} parameters each ({time.perf_counter() - t0:.1f} s)")
    print(f"largest R-hat over seeds and parameters: {worst.max():.5f} (bound {RHAT_BOUND})")
    print(f"median over seeds of the largest R-hat:  {np.median(worst):.4f}")
    print(f"seeds that would fail: {(worst >= RHAT_BOUND).sum()}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
