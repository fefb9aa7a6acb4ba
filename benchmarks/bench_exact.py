"""Benchmark of the exact quadrature engine.

Prints the time per meta-analysis for batches of simulated meta-analyses (k = 1..10 trials,
log-scale standard errors 0.1-0.8, default priors) and the total for 10,000 analyses, plus the
time of one single-analysis call. Targets: <= 1 ms per analysis, <= 10 s for 10,000.

Run: ``python benchmarks/bench_exact.py [--m 10000] [--kmax 10] [--tol 1e-6]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bayesmtor.bayes.exact import exact_batch, exact_posterior


def simulate(m: int, kmax: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = rng.integers(1, kmax + 1, size=m)
    mask = np.arange(kmax)[None, :] < k[:, None]
    se = rng.uniform(0.1, 0.8, size=(m, kmax))
    tau = np.abs(rng.normal(0.0, 0.5, size=m))
    mu = rng.normal(0.0, 1.0, size=m)
    y = mu[:, None] + rng.standard_normal((m, kmax)) * np.sqrt(se**2 + tau[:, None] ** 2)
    return y, se, mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=10_000)
    parser.add_argument("--kmax", type=int, default=10)
    parser.add_argument("--tol", type=float, default=None)
    args = parser.parse_args()

    y, se, mask = simulate(args.m, args.kmax, seed=1)
    exact_batch(y[:50], se[:50], mask[:50], tol=args.tol)  # warm-up

    for m in (100, 1_000, args.m):
        t0 = time.perf_counter()
        df = exact_batch(y[:m], se[:m], mask[:m], tol=args.tol)
        dt = time.perf_counter() - t0
        print(
            f"batch of {m:>6} meta-analyses: {dt:7.3f} s total, {1e3 * dt / m:6.3f} ms each; "
            f"max quadrature error estimate {df['quad_error'].max():.1e}"
        )

    t0 = time.perf_counter()
    reps = 50
    for i in range(reps):
        kk = int(mask[i].sum())
        exact_posterior(y[i, :kk], se[i, :kk], tol=args.tol).summary()
    dt = (time.perf_counter() - t0) / reps
    print(f"single exact_posterior(...).summary(): {1e3 * dt:.2f} ms per analysis")


if __name__ == "__main__":
    main()
