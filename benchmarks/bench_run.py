"""Wall time of ``bayesmtor run`` (the primary plan by default) from a cold compile cache.

Runs the command in fresh Python processes (imports included, as a user would see it), each
into a temporary folder and with an empty PyTensor compile directory and numba cache of its own
(PYTENSOR_FLAGS / NUMBA_CACHE_DIR; the user's caches are not touched), and prints the median
wall and CPU time, the stage timings recorded in ``run.json`` (fits, MCMC, figures, netCDF
writing, report) and the status counts. ``--base-src DIR`` times another source tree of the
package (``git archive COMMIT | tar -x -C DIR``) side by side, interleaved. Not a test: it
prints figures.

    python benchmarks/bench_run.py                  # primary plan, one cold run
    python benchmarks/bench_run.py --repeat 3       # median of 3
    python benchmarks/bench_run.py --base-src /tmp/base --repeat 2
    python benchmarks/bench_run.py seed_replication
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import PY, cold_env, machine_line, run  # noqa: E402

#: The target for the primary plan on 2 cores, cold compile cache.
TARGET_SECONDS = 15.0


def run_once(plan: str, src: str | None, tmp: Path, tag: str) -> tuple[float, float, dict]:
    out = tmp / f"out-{tag}"
    env = cold_env(tmp / f"cache-{tag}")
    if src:
        env["PYTHONPATH"] = str(Path(src) / "src")
    wall, cpu, _ = run([PY, "-m", "bayesmtor", "run", plan, "--out", str(out), "--quiet"], env)
    info = json.loads((out / "run.json").read_text())
    info["n_files"] = sum(1 for p in out.rglob("*") if p.is_file())
    return wall, cpu, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan", nargs="?", default="primary")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--base-src", default=None, help="also time this source tree")
    args = parser.parse_args()
    print(machine_line())
    trees = {"this tree": None} | ({"base": args.base_src} if args.base_src else {})
    results: dict[str, list[tuple[float, float, dict]]] = {k: [] for k in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for name, src in trees.items():
                results[name].append(run_once(args.plan, src, Path(tmp), f"{name[:4]}-{i}"))
                wall, cpu, info = results[name][-1]
                print(f"{name:>9} run {i + 1}: {wall:6.1f} s wall {cpu:6.1f} s CPU "
                      f"({info['n_files']} files, {info['statuses']})", flush=True)  # fmt: skip
    for name, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(f"\n{name}: plan {args.plan}, median {wall:.1f} s wall, {cpu:.1f} s CPU "
              f"(cold compile cache) over {len(runs)} run(s)")  # fmt: skip
        print("  stages of the last run (s, wall):")
        for k, v in runs[-1][2]["timings_seconds"].items():
            print(f"    {k:24s} {v:8.2f}")
        if args.plan == "primary":
            verdict = "within" if wall <= TARGET_SECONDS else "ABOVE"
            print(f"  target {TARGET_SECONDS:.0f} s on {os.cpu_count()} cores: {verdict}")


if __name__ == "__main__":
    main()
