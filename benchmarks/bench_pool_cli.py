"""Time `bayesmtor pool --by` end to end on 10,000 simulated meta-analyses.

Writes one CSV (log_se shape, k = 6-12 studies per group, fixed seed) and runs the real command
line in a subprocess, process start-up and CSV parsing included:

* `bayesmtor pool FILE --measure generic --method REML --by group --json` (frequentist), and
* `bayesmtor pool FILE --measure generic --bayes --by group --json` (exact engine).

Targets: 10,000 exact posteriors in <= 10 s through one `--by` call. Usage:

    python benchmarks/bench_pool_cli.py [N_GROUPS]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def simulate(n_groups: int, seed: int = 20141001) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    k = rng.integers(6, 13, size=n_groups)
    group = np.repeat(np.arange(n_groups), k)
    mu = rng.normal(-0.3, 0.3, n_groups)[group]
    tau = np.abs(rng.normal(0, 0.3, n_groups))[group]
    sei = rng.uniform(0.1, 0.6, group.size)
    yi = rng.normal(mu, np.sqrt(tau**2 + sei**2))
    study = [f"s{i}" for i in range(group.size)]
    return pd.DataFrame({"group": group, "study": study, "yi": yi, "sei": sei})


def time_command(args: list[str]) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(args)}\n{proc.stderr}")
    return elapsed, len(json.loads(proc.stdout))


def main() -> None:
    n_groups = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "many.csv"
        frame = simulate(n_groups)
        frame.to_csv(path, index=False)
        print(f"{n_groups} meta-analyses, {len(frame)} studies in one CSV")
        base = [sys.executable, "-m", "bayesmtor", "pool", str(path), "--measure", "generic"]
        for label, extra in (
            ("frequentist REML", ["--method", "REML"]),
            ("Bayesian exact", ["--bayes"]),
        ):
            elapsed, n_out = time_command(base + extra + ["--by", "group", "--json"])
            assert n_out == n_groups, (n_out, n_groups)
            print(
                f"{label:>17}: {elapsed:6.2f} s for {n_groups} in one --by call "
                f"({1000 * elapsed / n_groups:.3f} ms per meta-analysis, start-up included)"
            )


if __name__ == "__main__":
    main()
