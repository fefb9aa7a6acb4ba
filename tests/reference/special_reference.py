"""Reference values of the special functions, from mpmath at 50 significant digits.

Where ``scipy.special`` itself loses digits (the far normal tail, large degrees of freedom of the
chi-squared tail, the far tails of Student t quantiles) the tests of ``bayesmtor._special``
compare with these values instead. Run once (mpmath is not a test dependency):

    python tests/reference/special_reference.py   # writes special_reference.json beside it

Every value is the exact function of the double inputs as stored (inputs are written with
``repr``), rounded to the nearest double.
"""

from __future__ import annotations

import json
from pathlib import Path

import mpmath as mp

mp.mp.dps = 50


def ndtr(x):
    return mp.ncdf(mp.mpf(x))


def stdtr(df, t):
    df, t = mp.mpf(df), mp.mpf(t)
    s = mp.betainc(df / 2, mp.mpf(1) / 2, 0, df / (df + t * t), regularized=True) / 2
    return s if t < 0 else 1 - s


def chdtrc(df, x):
    return mp.gammainc(mp.mpf(df) / 2, mp.mpf(x) / 2, mp.inf, regularized=True)


def t_pdf(df, t):
    df = mp.mpf(df)
    c = mp.exp(mp.loggamma((df + 1) / 2) - mp.loggamma(df / 2)) / mp.sqrt(df * mp.pi)
    return c * (1 + t * t / df) ** (-(df + 1) / 2)


def stdtrit(df, p, start):
    """Newton's method on log F against log|t|, in 50 digits, for a lower-tail p."""
    p, u = mp.mpf(p), mp.log(-mp.mpf(start))
    for _ in range(200):
        t = -mp.exp(u)
        cdf = stdtr(df, t)
        step = (mp.log(cdf) - mp.log(p)) / (-t * t_pdf(df, t) / cdf)
        u += step
        if abs(step) < mp.mpf(10) ** -40:
            break
    return -mp.exp(u)


def chdtri(df, p, start):
    """Newton's method on the log of the smaller tail against log x, in 50 digits."""
    a, p, u = mp.mpf(df) / 2, mp.mpf(p), mp.log(mp.mpf(start))
    for _ in range(200):
        x = mp.exp(u)
        xpdf = mp.exp(a * mp.log(x / 2) - x / 2 - mp.loggamma(a))  # x times the density
        q = chdtrc(df, x)
        if p <= 0.5:
            step = (mp.log(q) - mp.log(p)) / (xpdf / q)
        else:
            step = -(mp.log(1 - q) - mp.log(1 - p)) / (xpdf / (1 - q))
        u += step
        if abs(step) < mp.mpf(10) ** -40:
            break
    return mp.exp(u)


def main() -> None:
    out: dict[str, list[list[float]]] = {}
    out["ndtr"] = [[x, float(ndtr(x))] for x in [-38.4 + 0.6 * i for i in range(33)]]
    out["stdtr"] = [
        [df, t, float(stdtr(df, t))]
        for df in (1.0, 3.0, 10.0, 100.0, 1000.0, 10000.0)
        for t in (-1e3, -100.0, -31.6, -10.0, -3.0, -1.78, -1.0, -0.1, 0.5, 2.5)
        if abs(t) <= 40 * df**0.5 + 1e3
    ]
    out["chdtrc"] = [
        [df, df * f, float(chdtrc(df, df * f))]
        for df in (1.0, 3.0, 30.0, 1000.0, 10000.0)
        for f in (1e-3, 0.1, 0.5, 0.9, 1.0, 1.1, 1.5, 2.0, 3.0, 10.0, 50.0)
        if chdtrc(df, df * f) > mp.mpf(10) ** -300
    ]
    # quantiles in far tails (starts from rough approximations, refined by Newton)
    t_cases = [(3.0, 1e-237, -6e78), (3.0, 1e-300, -1e100), (10.0, 1e-300, -1e29), (30.0, 1e-100, -1e3),
               (1.0, 1e-300, -3.18e299), (5.5, 1e-200, -1e36)]  # fmt: skip
    out["stdtrit"] = [[df, p, float(stdtrit(df, p, s))] for df, p, s in t_cases]
    c_cases = [(1.0, 1e-300, 1376.0), (3.0, 1e-100, 470.0), (1000.0, 1e-50, 1550.0),
               (10000.0, 1e-10, 10650.0), (10000.0, 0.5, 9999.0), (0.5, 0.999, 1.5e-6)]  # fmt: skip
    out["chdtri"] = [[df, p, float(chdtri(df, p, s))] for df, p, s in c_cases]
    path = Path(__file__).with_suffix(".json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}: " + ", ".join(f"{k} {len(v)}" for k, v in out.items()))


if __name__ == "__main__":
    main()
