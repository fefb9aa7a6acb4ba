"""The NumPy-only special functions of the pool path beside scipy.special: time and accuracy.

For each function, on arrays of 10^5 and 10^6 elements (fixed seed), prints the CPU time of
``bayesmtor._special`` and of ``scipy.special`` (best of ``--repeats``), their ratio, and the
largest relative difference between the two. CPU time (``time.process_time``) is less
sensitive than wall time to other load on a shared machine; the runs are interleaved.

    python benchmarks/bench_special.py [--sizes 100000 1000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import special

from bayesmtor import _special as ours


def _inputs(n: int, rng: np.random.Generator) -> dict[str, tuple]:
    z = rng.normal(0.0, 5.0, n)
    p = np.where(rng.uniform(size=n) < 0.5, rng.uniform(size=n), 10 ** rng.uniform(-100, 0, n))
    df_int = rng.integers(1, 100, n).astype(float)  # the pool path: k - 1 degrees of freedom
    t = rng.standard_t(3, n) * 2.0
    x = df_int * rng.gamma(2.0, 0.5, n)
    return {
        "ndtr": (z,),
        "erf": (z / 4,),
        "erfc": (np.abs(z),),
        "ndtri": (p,),
        "stdtr": (df_int, t),
        "stdtrit": (df_int, p),
        "chdtrc": (df_int, x),
        "chdtri": (df_int, p),
    }


def _cpu(fn, args, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.process_time()
        fn(*args)
        best = min(best, time.process_time() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(20141001)
    print(f"{'function':<8} {'n':>9}  {'ours ms':>9} {'scipy ms':>9} {'ratio':>6}  max rel diff")
    for n in args.sizes:
        for name, inp in _inputs(n, rng).items():
            mine, ref = getattr(ours, name), getattr(special, name)
            reps = args.repeats if name in ("ndtr", "erf", "erfc", "ndtri") else 1
            t_ours = t_ref = np.inf
            for _ in range(2):  # interleaved
                t_ours = min(t_ours, _cpu(mine, inp, reps))
                t_ref = min(t_ref, _cpu(ref, inp, reps))
            a, b = mine(*inp), ref(*inp)
            ok = np.isfinite(b) & (np.abs(b) > 1e-300) & np.isfinite(a)
            if name == "stdtrit":
                ok &= np.abs(b) < 1e150  # SciPy's far-tail values are not reliable
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.abs(a[ok] - b[ok]) / np.abs(b[ok])
            print(
                f"{name:<8} {n:>9}  {1e3 * t_ours:9.1f} {1e3 * t_ref:9.1f} "
                f"{t_ours / t_ref:6.2f}  {rel.max():.1e}"
            )


if __name__ == "__main__":
    main()
