"""Peak memory and wall time of the exact engine and of `bayesmtor pool` on large inputs.

Each case runs as a separate, fresh process; its peak resident set size is the kernel's
``ru_maxrss`` of that child (``os.wait4``, the per-child form of
``resource.getrusage(RUSAGE_CHILDREN)``), so the figures include the interpreter, the imports,
reading the CSV and writing the output. The files are generated in a temporary folder with a
fixed seed (log hazard ratios ``yi`` with standard errors ``sei`` in 0.1-0.8).

Cases:

* ``api 20k`` / ``api 100k``: ``exact_posterior`` of one meta-analysis of 20,000 / 100,000
  studies, then ``summary()`` and ``theta_summary()`` (the shrunken study effects);
* ``pool --bayes 20k`` / ``100k``: the same single meta-analysis from a CSV file;
* ``pool --bayes --by 2M``: 2,000,000 rows, 200,000 meta-analyses of 10 studies;
* ``pool --bayes --by mixed``: one group of 100,000 studies beside 100,000 groups of 1 study;
* ``pool --by 2M`` (frequentist REML) on the 2,000,000-row file;
* ``read+escalc 2M``: only reading and validating the 2,000,000-row file and computing the
  effect sizes -- the floor under both ``pool`` cases.

The target is 1.5 GB per case. The last column gives the figures of the engine before it
evaluated its sums in chunks (commit 62baba0), measured with this script on the same files
under the same 8 GB limit: one 20,000-study meta-analysis peaked at 3.1 GB here (5.2 GB was
seen on other data), 100,000 studies exhausted the limit (24 GB without it) and the mixed
file asked for a 75 GB padded array. Each child runs under an address-space limit
(``--limit-gb``, default 8) so that a regression fails with a MemoryError instead of
exhausting the machine.

Run: ``python benchmarks/bench_memory.py [--cases NAME ...] [--limit-gb 8]``
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

TARGET_MB = 1536.0  # 1.5 GB
SEED = 20141001

# Peak RSS and wall time of each case with the engine before chunking (commit 62baba0).
REFERENCE: dict[str, str] = {
    "api 20k": "3128 MB, 16.3 s",
    "api 100k": "MemoryError at 8 GB",
    "pool --bayes 20k": "785 MB, 1.8 s",
    "pool --bayes 100k": "MemoryError at 8 GB",
    "read+escalc 2M": "1090 MB, 6.9 s",
    "pool --bayes --by 2M": "2139 MB, 80.2 s",
    "pool --bayes --by mixed": "MemoryError (75 GB array)",
    "pool --by 2M (REML)": "1090 MB, 24.1 s",
}

API_CHILD = """
import sys
import numpy as np
from bayesmtor.bayes.exact import exact_posterior
k = int(sys.argv[1])
rng = np.random.default_rng({seed})
sei = rng.uniform(0.1, 0.8, k)
yi = rng.normal(-0.3, np.sqrt(0.2**2 + sei**2))
post = exact_posterior(yi, sei)
print(post.summary().to_string())
th = post.theta_summary()
print(len(th), post.n_nodes)
"""

READ_CHILD = """
import sys
from bayesmtor.effects import escalc
from bayesmtor.inputs import read_meta_data
meta = read_meta_data(sys.argv[1], by=["g"])
es = escalc(meta, "HR")
print(len(es.table))
"""


def _single(k: int, rng: np.random.Generator) -> pd.DataFrame:
    sei = rng.uniform(0.1, 0.8, k)
    yi = rng.normal(-0.3, np.sqrt(0.2**2 + sei**2))
    return pd.DataFrame({"study": [f"s{i}" for i in range(k)], "yi": yi, "sei": sei})


def _grouped(sizes: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    g = np.repeat(np.arange(sizes.size), sizes)
    start = np.cumsum(sizes) - sizes
    within = np.arange(g.size) - start[g]
    mu = rng.normal(-0.3, 0.3, sizes.size)[g]
    tau = np.abs(rng.normal(0.0, 0.3, sizes.size))[g]
    sei = rng.uniform(0.1, 0.8, g.size)
    yi = rng.normal(mu, np.sqrt(tau**2 + sei**2))
    study = np.char.add("s", within.astype(str))
    return pd.DataFrame({"g": g, "study": study, "yi": yi, "sei": sei})


def write_files(folder: Path) -> dict[str, Path]:
    """Generate the input files (fixed seed) and return their paths by name."""
    frames: dict[str, Callable[[np.random.Generator], pd.DataFrame]] = {
        "20k": lambda rng: _single(20_000, rng),  # the data of the api cases
        "100k": lambda rng: _single(100_000, rng),
        "2M": lambda rng: _grouped(np.full(200_000, 10), rng),
        "mixed": lambda rng: _grouped(np.concatenate([[100_000], np.ones(100_000, int)]), rng),
    }
    paths = {}
    for name, make in frames.items():
        paths[name] = folder / f"{name}.csv"
        make(np.random.default_rng(SEED)).to_csv(paths[name], index=False, float_format="%.10g")
    return paths


def cases(paths: dict[str, Path]) -> dict[str, list[str]]:
    py = sys.executable
    api = [py, "-c", API_CHILD.format(seed=SEED)]

    def pool(name: str, *options: str) -> list[str]:
        return [py, "-m", "bayesmtor", "pool", str(paths[name]), "--measure", "HR", *options]

    return {
        "api 20k": [*api, "20000"],
        "api 100k": [*api, "100000"],
        "pool --bayes 20k": pool("20k", "--bayes"),
        "pool --bayes 100k": pool("100k", "--bayes"),
        "read+escalc 2M": [py, "-c", READ_CHILD, str(paths["2M"])],
        "pool --bayes --by 2M": pool("2M", "--bayes", "--by", "g"),
        "pool --bayes --by mixed": pool("mixed", "--bayes", "--by", "g"),
        "pool --by 2M (REML)": pool("2M", "--by", "g"),
    }


def run_case(cmd: list[str], limit_bytes: int, out: Path) -> tuple[float, float, int, str]:
    """Run one command in a fresh process: (peak RSS in MB, wall seconds, exit status, stderr)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with open(out, "w") as sink, open(out.with_suffix(".err"), "w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=sink, stderr=err, preexec_fn=limit, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own resource usage
        wall = time.perf_counter() - t0
    tail = out.with_suffix(".err").read_text().strip().splitlines()[-1:] or [""]
    return usage.ru_maxrss / 1024.0, wall, os.waitstatus_to_exitcode(status), tail[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", help="case names to run (default: all)")
    parser.add_argument("--limit-gb", type=float, default=8.0, help="address-space limit")
    args = parser.parse_args()
    limit = int(args.limit_gb * 2**30)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        paths = write_files(folder)
        print(f"generated the input files in {time.perf_counter() - t0:.1f} s")
        todo = cases(paths)
        names = args.cases or list(todo)
        unknown = sorted(set(names) - set(todo))
        if unknown:
            raise SystemExit(f"unknown case(s) {unknown}; choose from {list(todo)}")
        header = f"{'case':<26}{'peak RSS':>12}{'wall':>10}{'target':>10}  {'ok':<4}"
        print(header + "before chunking")
        for name in names:
            rss, wall, code, tail = run_case(todo[name], limit, folder / "out.txt")
            ok = "yes" if code == 0 and rss <= TARGET_MB else "NO"
            note = "" if code == 0 else f"  [exit {code}: {tail[:80]}]"
            print(
                f"{name:<26}{rss:>9.0f} MB{wall:>8.1f} s{TARGET_MB / 1024:>7.1f} GB  {ok:<4}"
                f"{REFERENCE[name]}{note}",
                flush=True,
            )


if __name__ == "__main__":
    main()
