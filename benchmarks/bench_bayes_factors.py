"""Benchmark of the exact engine's Bayes factors and model averaging on many analyses.

Prints, for 10,000 simulated meta-analyses (k = 1..10, the simulation of bench_exact.py):
the time of ``exact_batch_groups`` (every summary plus ``log_marginal_likelihood``, ``bf_tau0``,
``bf_mu0``), the same with ``bma=True`` (four-model averaging), the Bayes factors alone on an
already computed batch posterior, and ``bayesmtor pool --bayes --by group --bma --json`` on a
CSV of the same analyses (reading and writing included). Target: within a few seconds.

Run: ``python benchmarks/bench_bayes_factors.py [--m 10000]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bench_exact import simulate

from bayesmtor.bayes.exact import exact_batch_groups, exact_batch_posterior
from bayesmtor.cli import main as cli_main


def _timed(fn):
    """``fn()``, its wall-clock time and the CPU time of this process (the machine may be
    shared: the CPU time is the figure to compare)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - t0, time.process_time() - c0)


def _fmt(t: tuple[float, float]) -> str:
    return f"{t[0]:7.2f} s wall, {t[1]:7.2f} s CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=10_000)
    args = parser.parse_args()
    y, se, mask = simulate(args.m, 10, seed=1)
    group = np.nonzero(mask)[0]
    yl, sl = y[mask], se[mask]
    exact_batch_groups(yl[:200], sl[:200], group[:200])  # warm-up

    table, t_plain = _timed(lambda: exact_batch_groups(yl, sl, group))
    _, t_bma = _timed(lambda: exact_batch_groups(yl, sl, group, bma=True))
    post = exact_batch_posterior(y, se, mask)
    bf, t_bf = _timed(post.bayes_factors)
    print(f"{args.m} meta-analyses, {mask.sum()} studies (k = 1..10):")
    print(f"  exact_batch_groups, summaries + Bayes factors : {_fmt(t_plain)}")
    print(f"  the same with bma=True (four models)          : {_fmt(t_bma)}")
    print(f"  BatchPosterior.bayes_factors() alone          : {_fmt(t_bf)}")
    print(
        f"  finite bf_tau0 / bf_mu0: {np.isfinite(table['bf_tau0']).mean():.3f} / "
        f"{np.isfinite(bf['bf_mu0']).mean():.3f}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "many.csv"
        pd.DataFrame({"study": np.arange(group.size), "group": group, "yi": yl, "sei": sl}).to_csv(
            path, index=False
        )
        argv = ["pool", str(path), "--measure", "generic", "--bayes", "--by", "group", "--bma",
                "--json"]  # fmt: skip
        with contextlib.redirect_stdout(io.StringIO()):
            code, t_cli = _timed(lambda: cli_main(argv))
    print(f"  bayesmtor pool --bayes --by group --bma --json: {_fmt(t_cli)} (exit {code})")


if __name__ == "__main__":
    main()
