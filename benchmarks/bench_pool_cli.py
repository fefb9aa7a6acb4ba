"""`bayesmtor pool` end to end, whole processes: 10,000 meta-analyses, start-up, R metafor.

Writes one CSV (log_se shape, k = 6-12 studies per group, fixed seed) and times the real
command line in fresh processes (start-up, CSV parsing and JSON output included), interleaved
and repeated, printing medians of wall and CPU time:

* `pool FILE --measure generic --method REML --by group --json` (frequentist) and
  `pool FILE --measure generic --bayes --by group --json` (exact engine), and their ratio
  (target: exact <= 1.5 x REML);
* one `pool` call on a 4-study file (target: < 0.3 s), beside the floor of the interpreter and
  of `import numpy, pandas, scipy.special`;
* where `Rscript` with metafor is installed, R metafor's `rma(yi, sei=sei, method="REML")` in a
  loop over the same 10,000 meta-analyses, with metafor's default control settings, as a whole
  `Rscript` process (target: bayesmtor at least 50x faster).

``--base-src DIR`` also times another source tree of the package (e.g. an export of an earlier
commit: ``git archive COMMIT | tar -x -C DIR``) through ``PYTHONPATH=DIR/src``, side by side.

    python benchmarks/bench_pool_cli.py [--groups 10000] [--repeats 3] [--base-src DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import PY, Timings, compile_sources, machine_line, run  # noqa: E402

R_LOOP = """
suppressPackageStartupMessages(library(metafor))
d <- read.csv(commandArgs(trailingOnly = TRUE)[1])
out <- lapply(split(d[, c("yi", "sei")], d$group), function(g) {
  fit <- try(rma(g$yi, sei = g$sei, method = "REML"), silent = TRUE)
  if (inherits(fit, "try-error")) NA else fit$tau2
})
cat(length(out), "\\n")
"""


def simulate(
    n_groups: int, seed: int = 20141001, k_range: tuple[int, int] = (6, 12)
) -> pd.DataFrame:
    """``n_groups`` meta-analyses of ``k_range`` studies each (log_se shape, fixed seed)."""
    rng = np.random.default_rng(seed)
    k = rng.integers(k_range[0], k_range[1] + 1, size=n_groups)
    group = np.repeat(np.arange(n_groups), k)
    mu = rng.normal(-0.3, 0.3, n_groups)[group]
    tau = np.abs(rng.normal(0, 0.3, n_groups))[group]
    sei = rng.uniform(0.1, 0.6, group.size)
    yi = rng.normal(mu, np.sqrt(tau**2 + sei**2))
    study = [f"s{i}" for i in range(group.size)]
    return pd.DataFrame({"group": group, "study": study, "yi": yi, "sei": sei})


def _env(src: str | None) -> dict[str, str]:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    if src:
        env["PYTHONPATH"] = str(Path(src) / "src")
    return env


def _time(label: str, cmd: list[str], env: dict[str, str], repeats: int, check=None) -> Timings:
    t = Timings(label)
    for _ in range(repeats):
        wall, cpu, out = run(cmd, env)
        if check is not None:
            check(out)
        t.wall.append(wall)
        t.cpu.append(cpu)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--base-src", default=None, help="also time this source tree, side by side")
    args = ap.parse_args()
    trees = {"": None} | ({" [base]": args.base_src} if args.base_src else {})
    print(machine_line())
    print(compile_sources(args.base_src))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "many.csv"
        frame = simulate(args.groups)
        frame.to_csv(path, index=False)
        small = Path(tmp) / "small.csv"
        frame[frame["group"] == 0].to_csv(small, index=False)
        print(f"{args.groups} meta-analyses, {len(frame)} studies in one CSV\n")

        def n_out(out: str) -> None:
            assert len(json.loads(out)) == args.groups

        base = ["-m", "bayesmtor", "pool", str(path), "--measure", "generic", "--by", "group"]
        rows: dict[str, Timings] = {}
        for _ in range(args.repeats):  # interleaved: REML, exact, REML [base], exact [base], ...
            for tag, src in trees.items():
                for label, extra in (("REML", ["--method", "REML"]), ("exact", ["--bayes"])):
                    t = _time(f"{label}{tag}", [PY, *base, *extra, "--json"], _env(src), 1, n_out)
                    rows.setdefault(t.label, Timings(t.label))
                    rows[t.label].wall += t.wall
                    rows[t.label].cpu += t.cpu
        print(f"pool --by group --json, {args.groups} meta-analyses (whole processes):")
        for t in rows.values():
            print("  " + t.line())
        for tag in trees:
            r, e = rows[f"REML{tag}"], rows[f"exact{tag}"]
            print(
                f"  exact / REML{tag}: {e.wall_median / r.wall_median:.2f} wall, "
                f"{e.cpu_median / r.cpu_median:.2f} CPU  [target <= 1.5]"
            )

        print("\nstart-up: one pool call on a 4-study file (whole processes):")
        one = [PY, "-m", "bayesmtor", "pool", str(small), "--measure", "generic"]
        reps = max(5, 3 * args.repeats)
        starts = [_time("python -c pass", [PY, "-c", "pass"], _env(None), reps)]
        for imports in ("numpy", "numpy, pandas, scipy.special"):
            starts.append(
                _time(f"import {imports}", [PY, "-c", f"import {imports}"], _env(None), reps)
            )
        calls = {}
        for tag, src in trees.items():
            for label, extra in (("pool --method REML", ["--method", "REML"]),
                                 ("pool --bayes", ["--bayes"])):  # fmt: skip
                calls[f"{label}{tag}"] = _time(f"{label}{tag}", [*one, *extra], _env(src), reps)
        for t in [*starts, *calls.values()]:
            print("  " + t.line())
        print(
            f"  target: pool call < 0.3 s (median {calls['pool --method REML'].wall_median:.3f} s"
            f", --bayes {calls['pool --bayes'].wall_median:.3f} s)"
        )

        rscript = shutil.which("Rscript")
        ok = (
            rscript
            and subprocess.run([rscript, "-e", "library(metafor)"], capture_output=True).returncode
            == 0
        )
        if not ok:
            print("\nR metafor not installed: the metafor comparison is skipped")
            return
        script = Path(tmp) / "loop.R"
        script.write_text(R_LOOP)
        r = _time(
            "R metafor rma() loop (Rscript)", [rscript, str(script), str(path)], _env(None), 1
        )
        ours = rows["REML"]
        print(f"\n10,000 REML fits, whole processes:\n  {r.line()}\n  {ours.line()}")
        print(
            f"  metafor / bayesmtor: {r.wall_median / ours.wall_median:.0f}x wall, "
            f"{r.cpu_median / ours.cpu_median:.0f}x CPU  [target >= 50x]"
        )


if __name__ == "__main__":
    main()
