"""Wall time of ``bayesmtor run`` (the primary plan by default), cold and warm compile cache.

Runs the command in fresh Python processes (imports included, as a user would see it), each
into a temporary folder. A *cold* run gets an empty PyTensor compile directory and numba cache
of its own (PYTENSOR_FLAGS / NUMBA_CACHE_DIR; the user's caches are not touched); the *warm*
run that follows it reuses that run's caches. Prints the median wall and CPU time (user +
system of the run and of its worker processes) of both, beside the 15 s target, the stage
timings recorded in ``run.json`` (wall seconds of each phase: fits, MCMC, figures, netCDF
writing, report; phases that overlap are timed each on its own) and the status counts.
``--base-src DIR`` times another source tree of the package (``git archive COMMIT | tar -x -C
DIR``) side by side, interleaved. Not a test: it prints figures.

    python benchmarks/bench_run.py                  # primary plan, one cold and one warm run
    python benchmarks/bench_run.py --repeat 3       # medians of 3
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
from _timing import PY, cold_env, compile_sources, machine_line, run  # noqa: E402

#: The target for the primary plan on 2 cores, cold compile cache.
TARGET_SECONDS = 15.0


def run_once(
    plan: str, src: str | None, tmp: Path, tag: str, cache: str
) -> tuple[float, float, dict]:
    """One run into a fresh folder; ``cache`` names its compile cache (a new name: cold)."""
    out = tmp / f"out-{tag}"
    env = cold_env(tmp / f"cache-{cache}")
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
    parser.add_argument("--cold-only", action="store_true", help="no warm runs")
    args = parser.parse_args()
    print(machine_line())
    print(compile_sources(args.base_src))
    trees = {"this tree": None} | ({"base": args.base_src} if args.base_src else {})
    kinds = ("cold",) if args.cold_only else ("cold", "warm")
    results: dict[tuple[str, str], list[tuple[float, float, dict]]] = {
        (t, k): [] for t in trees for k in kinds
    }
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for name, src in trees.items():
                for kind in kinds:  # the warm run reuses the caches of the cold one
                    tag = f"{name[:4]}-{i}-{kind}"
                    res = run_once(args.plan, src, Path(tmp), tag, f"{name[:4]}-{i}")
                    results[(name, kind)].append(res)
                    wall, cpu, info = res
                    print(f"{name:>9} {kind} run {i + 1}: {wall:6.1f} s wall {cpu:6.1f} s CPU "
                          f"({info['n_files']} files, {info['statuses']})", flush=True)  # fmt: skip
    print(f"\nplan {args.plan}, medians over {args.repeat} run(s) of each:")
    print(f"  {'':24s}" + "".join(f"{t + ' ' + k:>18s}" for t, k in results))
    for label, pick in (("wall (s)", 0), ("CPU (s)", 1)):
        row = [statistics.median(r[pick] for r in runs) for runs in results.values()]
        print(f"  {label:24s}" + "".join(f"{v:18.1f}" for v in row))
    if args.plan == "primary":
        row = []
        for runs in results.values():
            wall = statistics.median(r[0] for r in runs)
            row.append("within" if wall <= TARGET_SECONDS else "ABOVE")
        label = f"target {TARGET_SECONDS:.0f} s ({os.cpu_count()} cores)"
        print(f"  {label:24s}" + "".join(f"{v:>18s}" for v in row))
    print("  stages of the last run (s, wall; overlapping phases each timed on its own):")
    stages = list(
        dict.fromkeys(k for runs in results.values() for k in runs[-1][2]["timings_seconds"])
    )
    for stage in stages:
        vals = [runs[-1][2]["timings_seconds"].get(stage) for runs in results.values()]
        print(
            f"    {stage:22s}"
            + "".join(f"{v:18.2f}" if v is not None else f"{'-':>18s}" for v in vals)
        )


if __name__ == "__main__":
    main()
