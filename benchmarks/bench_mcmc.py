"""One MCMC fit through the package against a plain `pm.sample()` of the same model, cold cache.

Data: the 13 BCG vaccine trials (Colditz et al. 1994, JAMA 271:698, Table 1; R's
metadat::dat.bcg), log relative risks with the standard large-sample variances. Model: the
marginal normal-normal model ``y_i ~ N(mu, s_i^2 + tau^2)``, tau ~ half-normal(0.5),
mu ~ normal(0, 4) (the package defaults). Settings: the package defaults (4 chains x 2000
draws, 1000 tuning steps, target_accept 0.9), PyMC with cores = 2.

Each command is a whole, fresh process with an empty PyTensor compile directory and numba
cache of its own (a cold compile cache; set through PYTENSOR_FLAGS / NUMBA_CACHE_DIR, the
user's caches are not touched), run interleaved and repeated; medians of wall and CPU time:

* reference: a script that builds the model with PyMC and calls ``pm.sample()`` (nothing else);
* ``bayesmtor pool bcg.csv --measure RR --bayes --engine mcmc --sampler numpy --json`` (the
  default sampler: the NumPy NUTS; start-up, the convergence gate, theta/theta_new/I2 and the
  predictive groups, and the JSON output included);
* the same with ``--sampler pymc``.

Target: the package fit at least 3x faster than the plain ``pm.sample()``, zero divergences and
the gate passed (printed from the JSON of each run).

    python benchmarks/bench_mcmc.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import PY, Timings, cold_env, compile_sources, machine_line, run  # noqa: E402

# tpos, tneg, cpos, cneg (Colditz et al. 1994, Table 1)
BCG = np.array(
    [
        [4, 119, 11, 128],
        [6, 300, 29, 274],
        [3, 228, 11, 209],
        [62, 13536, 248, 12619],
        [33, 5036, 47, 5761],
        [180, 1361, 372, 1079],
        [8, 2537, 10, 619],
        [505, 87886, 499, 87892],
        [29, 7470, 45, 7232],
        [17, 1699, 65, 1600],
        [186, 50448, 141, 27197],
        [5, 2493, 3, 2338],
        [27, 16886, 29, 17825],
    ],
    dtype=float,
)

PLAIN_PYMC = """
import sys
import numpy as np
import pandas as pd
import pymc as pm
d = pd.read_csv(sys.argv[1])
y, s = d["yi"].to_numpy(), d["sei"].to_numpy()
with pm.Model():
    mu = pm.Normal("mu", 0.0, 4.0)
    tau = pm.HalfNormal("tau", 0.5)
    pm.Normal("y", mu=mu, sigma=pm.math.sqrt(s**2 + tau**2), observed=y)
    idata = pm.sample(draws=2000, tune=1000, chains=4, cores=2, target_accept=0.9,
                      random_seed=1, progressbar=False)
print(int(idata.sample_stats["diverging"].sum()))
"""


def bcg_csv(path: Path) -> None:
    a, b, c, d = BCG.T
    yi = np.log(a / (a + b)) - np.log(c / (c + d))
    sei = np.sqrt(1 / a - 1 / (a + b) + 1 / c - 1 / (c + d))
    lines = [
        "study,yi,sei",
        *(
            f"trial{i + 1},{float(y)!r},{float(s)!r}"
            for i, (y, s) in enumerate(zip(yi, sei, strict=True))
        ),
    ]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(machine_line())
    print(compile_sources())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "bcg.csv"
        bcg_csv(data)
        script = root / "plain.py"
        script.write_text(PLAIN_PYMC)
        pool = [PY, "-m", "bayesmtor", "pool", str(data), "--measure", "RR", "--bayes",
                "--engine", "mcmc", "--seed", "1", "--json"]  # fmt: skip
        commands = {
            "plain pm.sample() (reference)": [PY, str(script), str(data)],
            "bayesmtor pool, --sampler numpy": [*pool, "--sampler", "numpy"],
            "bayesmtor pool, --sampler pymc": [*pool, "--sampler", "pymc"],
        }
        times = {label: Timings(label) for label in commands}
        gates: dict[str, list[str]] = {label: [] for label in commands}
        for r in range(args.repeats):
            for label, cmd in commands.items():
                wall, cpu, out = run(
                    cmd, cold_env(root / f"cache-{r}-{len(gates[label])}-{label[-5:]}")
                )
                times[label].wall.append(wall)
                times[label].cpu.append(cpu)
                if label.startswith("bayesmtor"):
                    rec = json.loads(out)
                    gates[label].append(
                        f"div {rec['divergences']} rhat {rec['rhat_max']:.4f} ess {rec['ess_bulk_min']:.0f} "
                        f"converged {rec['converged']} runs {len(rec['attempt_seeds'])}"
                    )
                else:
                    gates[label].append(f"div {out.strip()}")
        print("one MCMC fit, whole process, cold compile cache (4 chains x 2000 draws):")
        for label, t in times.items():
            print(f"  {t.line(34)}\n      gate per run: {'; '.join(gates[label])}")
        ref = times["plain pm.sample() (reference)"]
        for label in list(commands)[1:]:
            t = times[label]
            print(
                f"  speed-up of '{label}' over the reference: {ref.wall_median / t.wall_median:.1f}x wall, "
                f"{ref.cpu_median / t.cpu_median:.1f}x CPU  [target >= 3x]"
            )


if __name__ == "__main__":
    main()
