"""Wall time of ``bayesmtor run`` (the primary plan by default) from a cold start.

Runs the command in a fresh Python process (imports included, as a user would see it), into a
temporary folder, and prints the wall time, the stage timings recorded in ``run.json`` and the
status counts. Not a test: it prints figures.

    python benchmarks/bench_run.py                 # primary plan, one run
    python benchmarks/bench_run.py --repeat 3      # best of 3
    python benchmarks/bench_run.py seed_replication
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The target for the primary plan on 2 cores.
TARGET_SECONDS = 60.0


def run_once(plan: str) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "bayesmtor", "run", plan, "--out", str(out), "--quiet"],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"bayesmtor run failed ({proc.returncode}):\n{proc.stderr}")
        info = json.loads((out / "run.json").read_text())
        info["n_files"] = sum(1 for p in out.rglob("*") if p.is_file())
    return wall, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan", nargs="?", default="primary")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()}")
    walls = []
    info: dict = {}
    for i in range(args.repeat):
        wall, info = run_once(args.plan)
        walls.append(wall)
        print(f"run {i + 1}: {wall:.1f} s wall ({info['n_files']} files, {info['statuses']})")
    best = min(walls)
    print(f"plan {args.plan}: best {best:.1f} s wall over {len(walls)} run(s)")
    print("stages (last run, s):")
    for k, v in info["timings_seconds"].items():
        print(f"  {k:24s} {v:8.2f}")
    if args.plan == "primary":
        verdict = "within" if best <= TARGET_SECONDS else "ABOVE"
        print(f"target {TARGET_SECONDS:.0f} s: {verdict}")


if __name__ == "__main__":
    main()
