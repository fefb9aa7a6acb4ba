"""The exact engine against R bayesmeta in a loop: the same posteriors, whole processes.

Writes one CSV of meta-analyses (log_se shape, k = 2-10 studies per group, fixed seed) and
times, as whole processes:

* ``bayesmtor pool FILE --measure generic --bayes --by group --json`` (the default priors:
  tau ~ half-normal(0.5), mu ~ normal(0, 4));
* where ``Rscript`` with bayesmeta is installed, ``bayesmeta()`` with the same priors
  (``tau.prior = function(t) dhalfnormal(t, scale = 0.5)``, ``mu.prior.mean = 0``,
  ``mu.prior.sd = 4``) in a loop over the same groups, as one ``Rscript`` process.

It prints both times, their ratio, and the largest differences of the posterior medians
between the two: of tau relative to its value (bayesmeta's numerical integration limits it),
of mu in posterior SDs (the divergence bounds of bayesmeta's mixture approximation of mu's
posterior, Roever & Friede 2017, ``delta = 0.01`` and ``epsilon = 1e-4`` by default, limit
it). bayesmeta takes about 1.5 s per
meta-analysis, so the default is 100 groups (about 2.5 minutes).

    python benchmarks/bench_bayesmeta.py [--groups 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
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
from bench_pool_cli import simulate  # noqa: E402

R_LOOP = """
suppressPackageStartupMessages(library(bayesmeta))
d <- read.csv(commandArgs(trailingOnly = TRUE)[1])
groups <- split(d, d$group)
out <- t(vapply(groups, function(g) {
  fit <- bayesmeta(y = g$yi, sigma = g$sei, mu.prior.mean = 0, mu.prior.sd = 4,
                   tau.prior = function(t) dhalfnormal(t, scale = 0.5))
  c(fit$summary["median", "tau"], fit$summary["median", "mu"], fit$summary["sd", "mu"])
}, numeric(3)))
write.csv(data.frame(group = names(groups), tau_median = out[, 1], mu_median = out[, 2],
                     mu_sd = out[, 3]), stdout(), row.names = FALSE)
"""


def _bayesmeta_installed(rscript: str | None) -> bool:
    if not rscript:
        return False
    probe = subprocess.run([rscript, "-e", "library(bayesmeta)"], capture_output=True)
    return probe.returncode == 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3, help="runs of bayesmtor (R runs once)")
    args = ap.parse_args()
    print(machine_line())
    print(compile_sources(None))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "groups.csv"
        frame = simulate(args.groups, k_range=(2, 10))
        frame.to_csv(path, index=False)
        print(f"{args.groups} meta-analyses, {len(frame)} studies in one CSV\n")
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        cmd = [PY, "-m", "bayesmtor", "pool", str(path), "--measure", "generic", "--bayes"]
        ours = Timings("bayesmtor pool --bayes --by (exact)")
        out = ""
        for _ in range(args.repeats):
            wall, cpu, out = run([*cmd, "--by", "group", "--json"], env)
            ours.wall.append(wall)
            ours.cpu.append(cpu)
        records = pd.DataFrame(json.loads(out))
        print("  " + ours.line(38))
        rscript = shutil.which("Rscript")
        if not _bayesmeta_installed(rscript):
            print("\nR bayesmeta not installed: the comparison is skipped")
            return
        script = Path(tmp) / "loop.R"
        script.write_text(R_LOOP)
        theirs = Timings("R bayesmeta() loop (Rscript)")
        wall, cpu, text = run([rscript, str(script), str(path)], env)
        theirs.wall.append(wall)
        theirs.cpu.append(cpu)
        print("  " + theirs.line(38))
        ref = pd.read_csv(io.StringIO(text))
        both = records.assign(group=records["group"].astype(int)).merge(ref, on="group")
        assert len(both) == args.groups
        tau_rel = float(np.max(np.abs(both["tau_median_x"] / both["tau_median_y"] - 1.0)))
        mu_sds = float(np.max(np.abs(both["mu_median_x"] - both["mu_median_y"]) / both["mu_sd"]))
        print(
            f"\n  bayesmeta / bayesmtor: {theirs.wall_median / ours.wall_median:.0f}x wall, "
            f"{theirs.cpu_median / ours.cpu_median:.0f}x CPU; per meta-analysis "
            f"{theirs.wall_median / args.groups * 1e3:.0f} ms vs "
            f"{ours.wall_median / args.groups * 1e3:.2f} ms (start-up included)"
        )
        print(
            f"  posterior medians: tau within {tau_rel:.1e} (relative), mu within {mu_sds:.1e} "
            "posterior SDs\n  (bayesmeta integrates tau's posterior numerically; its mu "
            "posterior is its DIRECT mixture approximation, delta = 0.01, epsilon = 1e-4)"
        )


if __name__ == "__main__":
    main()
