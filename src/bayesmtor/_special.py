"""Special functions of the ``pool`` path in NumPy alone (no SciPy import).

``bayesmtor pool`` (frequentist and exact Bayesian) needs the normal, Student t and chi-squared
distribution functions and their inverses; importing ``scipy.special`` costs more than the
whole pool of a small data set, so this module implements them with NumPy and :mod:`math`.
The names and argument orders are those of ``scipy.special``, and so are the conventions at
the edges (``df <= 0`` or ``nan`` -> ``nan``; probabilities outside ``[0, 1]`` -> ``nan``):

========================  ==========================================================
``ndtr(x)``               standard normal CDF
``ndtr_sum(x)``           the same, for sums of many CDFs (absolute accuracy, faster)
``ndtri(p)``              its inverse
``erf(x)``, ``erfc(x)``   error function and its complement
``stdtr(df, t)``          Student t CDF (real ``df > 0``; ``df = inf`` is the normal)
``stdtrit(df, p)``        its inverse in ``t``
``chdtrc(df, x)``         chi-squared survival function (upper tail)
``chdtri(df, p)``         its inverse: ``x`` with ``chdtrc(df, x) = p``
========================  ==========================================================

Algorithms
----------
* ``erf``/``erfc``/``ndtr``: W. J. Cody's rational Chebyshev approximations (Math. Comp. 23,
  1969; the CALERF routine), three intervals. ``ndtr`` splits ``exp(-x^2/2)`` as Cody does
  (``x = x_hi + x_lo`` with ``x_hi`` a multiple of 1/16, so ``x_hi^2`` is exact), which keeps
  the relative error at a few ulps down to the subnormal range: ``ndtr(-38) = 2.885e-316``,
  where SciPy's ``ndtr`` returns 0 (it underflows below ``x = -37.7``) and loses about
  ``x^2 eps / 2`` relative before that (``2e-13`` at ``x = -37``).
* ``ndtr_sum``: the Taylor polynomial of degree 6 of ``ndtr`` around the nearest multiple of
  1/64 (coefficients tabulated at import from ``ndtr`` and the Hermite polynomials), on
  [-8.5, 8.5]; Cody's tail below. No branches and no exponential, so about twice as fast on
  large arrays; it serves the normal mixtures of the exact engine, whose CDFs are sums.
* ``ndtri``: Wichura's AS 241 (PPND16, Appl. Statist. 37, 1988), the algorithm of R's
  ``qnorm``; about 1e-16 relative.
* ``stdtr``: the regularized incomplete beta function ``I_x(a, b)`` by its continued fraction
  (modified Lentz; Numerical Recipes 3rd ed. section 6.4), on whichever of ``I_x(a, b)`` and
  ``I_{1-x}(b, a)`` converges, with ``x`` and ``1 - x`` and their logarithms formed from
  ``t^2 / df`` without cancellation, and ``log B(a, b)`` from Stirling's series with its
  differences taken analytically (no cancellation of large ``lgamma`` values).
* ``chdtrc``: the regularized incomplete gamma functions ``P(a, x)`` (series) and ``Q(a, x)``
  (continued fraction), with the prefactor ``x^a e^-x / Gamma(a)`` written as
  ``exp(-a (r - log1p(r)) + ...)``, ``r = (x - a) / a`` (Stirling), so large degrees of freedom
  do not lose digits to ``a log x - x - lgamma(a)``.
* ``stdtrit``, ``chdtri``: Newton's method on the logarithm of the smaller tail (or of the
  central half-mass of t near its median) against the logarithm of the quantile, safeguarded
  by a bracket and bisection, started from the Cornish-Fisher / Wilson-Hilferty
  approximations.

The iterative functions run over the whole array at once, dropping converged elements; the
number of continued-fraction terms grows like ``sqrt(df)`` near the centre, so ``df`` up to
about 10^6 is quick and larger finite ``df`` is correct but slower.

Accuracy
--------
Measured by ``tests/test_special.py`` (fixed grids, tails down to 1e-300, a random sweep with
a fixed seed) against ``scipy.special`` and against mpmath at 50 digits
(``tests/reference/special_reference.json``), relative errors:

* ``ndtr``: <= 7e-16 against mpmath on [-38.4, 8]; ``erf``, ``erfc``, ``ndtri``: <= 1e-15
  against SciPy (where SciPy is accurate); ``ndtri`` is bit-identical with R's ``qnorm``.
* ``ndtr_sum``: absolute error <= 2.3e-16 against SciPy everywhere; relative <= 1e-12 on
  [-8.5, 0], and below -8.5 the value of ``ndtr``.
* ``stdtr``: <= 7e-14 against mpmath for df <= 1000 (6e-15 for df = 1, the Cauchy closed
  form); 6e-13 at df = 10^4 near |t| = 1.8, where the continued fraction converges slowest.
* ``chdtrc``: <= 1e-13 against mpmath for df <= 10^4 (SciPy is 7e-12 off at df = 10^4).
* ``stdtrit``, ``chdtri``: <= 1e-13 against mpmath and SciPy for df <= 10^4 (SciPy's
  ``stdtrit`` is wrong in far tails of small df and near p = 1/2, where ours agree with
  mpmath and with the closed forms of df = 1 and 2).

Differences from SciPy by design: ``ndtr`` does not underflow to 0 before the subnormal range
(``ndtr(-38) = 2.9e-316``); ``stdtrit(df, 0) = -inf`` (SciPy: ``+inf``); a t quantile beyond
the largest double is ``-inf``/``inf``.

Speed
-----
``benchmarks/bench_special.py`` prints the CPU time beside SciPy's: on 10^6 elements ``ndtr``
takes about twice SciPy's time, ``erf``/``erfc``/``ndtri`` 3-4 times, the incomplete beta and
gamma functions 5-6 times and the quantiles (Newton on continued fractions) 8-20 times. The
pool path calls the t and chi-squared functions once per analysis, and the exact engine's
normal mixtures call ``ndtr_and_pdf`` (the CDF and the density from one pass).
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = [
    "chdtrc",
    "chdtri",
    "erf",
    "erfc",
    "ndtr",
    "ndtr_and_pdf",
    "ndtr_sum",
    "ndtr_sum_and_pdf",
    "ndtri",
    "stdtr",
    "stdtrit",
]

_EPS = np.finfo(float).eps
_TINY = 1e-300  # Lentz's guard against a zero denominator
_SQRT1_2 = 0.7071067811865475244
_SQRPI = 0.56418958354775628695  # 1 / sqrt(pi)
_LN_SQRT_2PI = 0.91893853320467274178
_LN_SQRT_PI = 0.57236494292470008707
_INV_SQRT_2PI = 0.39894228040143267794
_CHUNK = 65536  # elements per block of the elementwise kernels (keeps temporaries in cache)
_MAX_TERMS = 100_000  # continued-fraction / series terms before giving up (nan)
_LOG_MAX = math.log(np.finfo(float).max)
_MAX_LOG_STEP = 8.0  # largest Newton step of the quantiles, in log t or log x

# --- Cody (1969), CALERF: erf on [0, 0.46875], erfc on [0.46875, 4] and [4, inf) -------------
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)  # fmt: skip
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
      2.84423683343917062e03)  # fmt: skip
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)  # fmt: skip
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)  # fmt: skip
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)  # fmt: skip
_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)  # fmt: skip
_XBIG = 26.543  # erfc(x) underflows beyond
_XSMALL = 1.11e-16

# --- Wichura (1988), AS 241 PPND16 ------------------------------------------------------------
_PA = (3.3871328727963666080e0, 1.3314166789178437745e2, 1.9715909503065514427e3,
       1.3731693765509461125e4, 4.5921953931549871457e4, 6.7265770927008700853e4,
       3.3430575583588128105e4, 2.5090809287301226727e3)  # fmt: skip
_PB = (1.0, 4.2313330701600911252e1, 6.8718700749205790830e2, 5.3941960214247511077e3,
       2.1213794301586595867e4, 3.9307895800092710610e4, 2.8729085735721942674e4,
       5.2264952788528545610e3)  # fmt: skip
_PC = (1.42343711074968357734e0, 4.63033784615654529590e0, 5.76949722146069140550e0,
       3.64784832476320460504e0, 1.27045825245236838258e0, 2.41780725177450611770e-1,
       2.27238449892691845833e-2, 7.74545014278341407640e-4)  # fmt: skip
_PD = (1.0, 2.05319162663775882187e0, 1.67638483018380384940e0, 6.89767334985100004550e-1,
       1.48103976427480074590e-1, 1.51986665636164571966e-2, 5.47593808499534494600e-4,
       1.05075007164441684324e-9)  # fmt: skip
_PE = (6.65790464350110377720e0, 5.46378491116411436990e0, 1.78482653991729133580e0,
       2.96560571828504891230e-1, 2.65321895265761230930e-2, 1.24266094738807843860e-3,
       2.71155556874348757815e-5, 2.01033439929228813265e-7)  # fmt: skip
_PF = (1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1, 1.48753612908506148525e-2,
       7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7,
       2.04426310338993978564e-15)  # fmt: skip

# Stirling's series: lgamma(a) = (a - 1/2) log a - a + log sqrt(2 pi) + sum_k c_k / a^(2k-1)
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156,
             -3617 / 122400)  # fmt: skip
_STIRLING_MIN = 10.0  # the series above is accurate to < 1e-16 from here on


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _poly(x: np.ndarray, coefs: tuple[float, ...]) -> np.ndarray:
    """sum_i coefs[i] x^i by Horner's rule."""
    out = np.full_like(x, coefs[-1])
    for c in coefs[-2::-1]:
        out *= x
        out += c
    return out


def _result(out: np.ndarray):
    """A NumPy scalar for 0-d results (as ``scipy.special``), else the array."""
    return out[()] if out.ndim == 0 else out


def _elementwise(kernel, x) -> np.ndarray:
    """``kernel`` on a float copy of ``x``, in blocks of ``_CHUNK`` elements."""
    xa = np.asarray(x, dtype=float)
    flat = xa.ravel()
    if flat.size <= _CHUNK:
        return _result(kernel(flat.copy()).reshape(xa.shape))
    out = np.empty_like(flat)
    for start in range(0, flat.size, _CHUNK):
        out[start : start + _CHUNK] = kernel(flat[start : start + _CHUNK].copy())
    return _result(out.reshape(xa.shape))


def _stirling_corr(a: np.ndarray) -> np.ndarray:
    """lgamma(a) - [(a - 1/2) log a - a + log sqrt(2 pi)] for a >= _STIRLING_MIN."""
    return _poly(1.0 / (a * a), _STIRLING) / a


def _lgamma(a: np.ndarray) -> np.ndarray:
    """log Gamma(a) for a > 0: Stirling's series from 10 on, :func:`math.lgamma` below."""
    a = np.asarray(a, dtype=float)
    big = a >= _STIRLING_MIN
    ab = np.where(big, a, _STIRLING_MIN)
    out = (ab - 0.5) * np.log(ab) - ab + _LN_SQRT_2PI + _stirling_corr(ab)
    if not big.all():
        # degrees of freedom take few distinct values: one math.lgamma call per value
        vals, inverse = np.unique(a[~big], return_inverse=True)
        out[~big] = np.array([math.lgamma(v) if v > 0 else math.nan for v in vals])[inverse]
    return out


def _log1pmx(r: np.ndarray) -> np.ndarray:
    """log(1 + r) - r without cancellation for small ``r`` (r > -1)."""
    small = np.abs(r) < 0.25
    rs = np.where(small, r, 0.0)
    u = rs / (2.0 + rs)  # log(1 + r) = 2 atanh(u); r - 2u = u r
    u2 = u * u
    series = _poly(u2, tuple(1.0 / (2 * k + 3) for k in range(12)))  # 1/3 + u2/5 + ...
    with np.errstate(invalid="ignore", divide="ignore"):
        direct = np.log1p(r) - r
    return np.where(small, 2.0 * u * u2 * series - u * rs, direct)


def _lgamma_ratio_half(a: np.ndarray) -> np.ndarray:
    """log Gamma(a + 1/2) - log Gamma(a) for a > 0, without cancellation for large ``a``."""
    big = a >= _STIRLING_MIN
    ab = np.where(big, a, _STIRLING_MIN)
    asym = (
        ab * np.log1p(0.5 / ab) - 0.5 + 0.5 * np.log(ab)
        + _stirling_corr(ab + 0.5) - _stirling_corr(ab)
    )  # fmt: skip
    if not np.any(~big):
        return asym
    asml = np.where(big, 1.0, a)
    return np.where(big, asym, _lgamma(asml + 0.5) - _lgamma(asml))


def _lbeta_half(a: np.ndarray) -> np.ndarray:
    """log B(a, 1/2)."""
    return _LN_SQRT_PI - _lgamma_ratio_half(a)


# ---------------------------------------------------------------------------------------------
# normal distribution
# ---------------------------------------------------------------------------------------------
def _cody_ratio(z: np.ndarray, num: tuple, den: tuple) -> np.ndarray:
    """CALERF's rational function: ``num`` has one coefficient more than ``den``, the leading
    one last; Horner's rule in CALERF's order (``den`` monic)."""
    n = len(den) - 1
    xnum = num[n + 1] * z
    xden = z.copy()
    for i in range(n):
        xnum += num[i]
        xnum *= z
        xden += den[i]
        xden *= z
    return (xnum + num[n]) / (xden + den[n])


def _cody_mid(y: np.ndarray) -> np.ndarray:
    """exp(y^2) erfc(y) on [0.46875, 4] (Cody's second interval)."""
    return _cody_ratio(y, _C, _D)


def _cody_tail(y: np.ndarray) -> np.ndarray:
    """exp(y^2) erfc(y) on [4, inf) (Cody's third interval)."""
    ysq = 1.0 / (y * y)
    return (_SQRPI - ysq * _cody_ratio(ysq, _P, _Q)) / y


def _cody_small(x: np.ndarray) -> np.ndarray:
    """erf(x) on |x| <= 0.46875 (Cody's first interval)."""
    ysq = x * x
    ysq[np.abs(x) <= _XSMALL] = 0.0
    return x * _cody_ratio(ysq, _A, _B)


def _erfc_abs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(erfc(|x|) where |x| > 0.46875, the mask |x| <= 0.46875 of Cody's first interval)."""
    y = np.abs(x)
    small = y <= 0.46875
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        yb = np.where(small, 1.0, np.minimum(y, _XBIG + 1.0))
        hi = np.trunc(16.0 * yb) / 16.0  # Cody's split of exp(-y^2): hi^2 is exact
        big = np.exp(-hi * hi) * np.exp(-(yb - hi) * (yb + hi))
        big *= np.where(yb <= 4.0, _cody_mid(np.minimum(yb, 4.0)), _cody_tail(np.maximum(yb, 4.0)))
    big[y >= _XBIG] = 0.0
    return big, small


def _erfc_kernel(x: np.ndarray) -> np.ndarray:
    big, small = _erfc_abs(x)
    out = np.where(x < 0, 2.0 - big, big)
    if small.any():
        out[small] = 1.0 - _cody_small(x[small])
    out[np.isnan(x)] = np.nan
    return out


def _erf_kernel(x: np.ndarray) -> np.ndarray:
    big, small = _erfc_abs(x)
    out = np.copysign(1.0 - big, x)
    if small.any():
        out[small] = _cody_small(x[small])
    out[np.isnan(x)] = np.nan
    return out


_NDTR_SMALL = 0.46875 / _SQRT1_2  # |x| up to which ndtr = (1 + erf(x / sqrt 2)) / 2
_NDTR_MID = 4.0 / _SQRT1_2  # Cody's second interval ends at |x| / sqrt 2 = 4
_NDTR_ZERO = 40.0  # ndtr(-40) < 5e-324
# exp(-k^2 / 512) = exp(-(k / 16)^2 / 2) for k = 0 .. 640: the exponential of the multiple of
# 1/16 below |x|, exact in its argument (Cody's split of exp(-x^2), applied to x / sqrt 2).
_EXP_HALF_SQ = np.exp(-(np.arange(16 * int(_NDTR_ZERO) + 1) ** 2) / 512.0)


def _half_erfc_scaled(h: np.ndarray, erfcx) -> tuple[np.ndarray, np.ndarray]:
    """(0.5 erfc(h / sqrt 2), exp(-h^2 / 2)) for 0 <= h <= _NDTR_ZERO.

    ``0.5 erfc(h / sqrt 2) = 0.5 exp(-h^2 / 2) erfcx(h / sqrt 2)``. The exponential is formed
    from ``h`` itself, split as ``h = h_hi + h_lo`` with ``h_hi`` a multiple of 1/16
    (``exp(-h_hi^2 / 2)`` from a table, ``exp(-h_lo (h + h_hi) / 2)`` small), so the rounding
    of ``h / sqrt 2`` is not amplified by ``h^2``; only the smooth ``erfcx`` sees ``h / sqrt 2``.
    """
    k = (16.0 * h).astype(np.intp)
    hi = k * 0.0625
    e = h - hi
    e *= h + hi
    e *= -0.5
    np.exp(e, out=e)
    e *= _EXP_HALF_SQ[k]
    out = erfcx(h * _SQRT1_2)
    out *= e
    out *= 0.5
    return out, e


def _ndtr_kernel(x: np.ndarray, density: bool = False):
    """ndtr(x); with ``density``, also the standard normal density (for Newton steps)."""
    h = np.abs(x)
    out = np.empty_like(x)
    pdf = np.empty_like(x) if density else None
    small = h <= _NDTR_SMALL
    mid = h <= _NDTR_MID
    i_small = np.flatnonzero(small)
    i_mid = np.flatnonzero(mid ^ small)
    i_tail = np.flatnonzero(~mid)  # and nan
    if i_mid.size:
        xm = x[i_mid]
        r, e = _half_erfc_scaled(np.abs(xm), _cody_mid)
        out[i_mid] = np.where(xm < 0, r, 1.0 - r)
        if density:
            pdf[i_mid] = e * _INV_SQRT_2PI
    if i_tail.size:
        xt = x[i_tail]
        ht = np.abs(xt)
        far = ~(ht < _NDTR_ZERO)  # and nan
        with np.errstate(under="ignore"):
            r, e = _half_erfc_scaled(np.where(far, _NDTR_ZERO, ht), _cody_tail)
        r[far] = np.where(np.isnan(xt[far]), np.nan, 0.0)
        out[i_tail] = np.where(xt < 0, r, 1.0 - r)
        if density:
            e[far] = r[far]  # 0 (or nan)
            pdf[i_tail] = e * _INV_SQRT_2PI
    if i_small.size:
        xs = x[i_small]
        out[i_small] = 0.5 + 0.5 * _cody_small(xs * _SQRT1_2)
        if density:
            pdf[i_small] = np.exp(-0.5 * xs * xs) * _INV_SQRT_2PI
    return (out, pdf) if density else out


def _elementwise_pair(kernel, x) -> tuple[np.ndarray, np.ndarray]:
    """``kernel`` returning two arrays (a CDF and a density), in blocks of ``_CHUNK``."""
    xa = np.asarray(x, dtype=float)
    flat = xa.ravel()
    cdf, pdf = np.empty_like(flat), np.empty_like(flat)
    for start in range(0, flat.size, _CHUNK):
        sl = slice(start, start + _CHUNK)
        cdf[sl], pdf[sl] = kernel(flat[sl])
    return cdf.reshape(xa.shape), pdf.reshape(xa.shape)


def ndtr_and_pdf(x) -> tuple[np.ndarray, np.ndarray]:
    """``(ndtr(x), exp(-x^2 / 2) / sqrt(2 pi))`` from one pass (the exponential is shared)."""
    return _elementwise_pair(functools.partial(_ndtr_kernel, density=True), x)


# Taylor tables of ndtr at x0 = j / 64, |x0| <= 8.5: ndtr(x0 + d) = sum_n c_n(x0) d^n with
# c_0 = ndtr(x0) and c_n = pdf(x0) (-1)^(n-1) He_{n-1}(x0) / n! (He: Hermite polynomials);
# for |d| <= 1/128 the terms beyond d^6 stay below 3e-18 absolute.
_TAYLOR_STEP = 64
_TAYLOR_MAX = 8.5
_TAYLOR_DEG = 6
_TAYLOR_OFFSET = int(_TAYLOR_MAX * _TAYLOR_STEP)


def _taylor_tables() -> list[np.ndarray]:
    """The coefficients of ``u^n``, ``u = 64 d`` (a power-of-2 scaling: the same roundings as
    in ``d``), for the table points ``x0 = j / 64``."""
    x0 = np.arange(-_TAYLOR_OFFSET, _TAYLOR_OFFSET + 1) / _TAYLOR_STEP
    pdf = _INV_SQRT_2PI * np.exp(-0.5 * x0 * x0)
    hermite = [np.ones_like(x0), x0]
    for n in range(2, _TAYLOR_DEG):
        hermite.append(x0 * hermite[-1] - (n - 1) * hermite[-2])
    tables = [_ndtr_kernel(x0.copy())]
    for n in range(1, _TAYLOR_DEG + 1):
        coef = pdf * ((-1) ** (n - 1) / math.factorial(n)) * hermite[n - 1]
        tables.append(coef / float(_TAYLOR_STEP) ** n)
    return tables


_TAYLOR = _taylor_tables()


def _ndtr_sum_kernel(x: np.ndarray) -> np.ndarray:
    """ndtr from the Taylor tables (Horner in u), Cody's tail below -8.5, 1 above 8.5.

    A NaN gives an index clipped into the table and u = NaN, so the result is NaN."""
    t = np.clip(x, -_TAYLOR_MAX, _TAYLOR_MAX)
    t *= _TAYLOR_STEP
    r = np.rint(t)
    u = t - r  # exact: 64 (x - x0)
    with np.errstate(invalid="ignore"):  # NaN
        j = r.astype(np.intp)
    np.clip(j, -_TAYLOR_OFFSET, _TAYLOR_OFFSET, out=j)
    j += _TAYLOR_OFFSET
    out = _TAYLOR[_TAYLOR_DEG][j]
    for n in range(_TAYLOR_DEG - 1, -1, -1):
        out *= u
        out += _TAYLOR[n][j]
    far = np.flatnonzero(x < -_TAYLOR_MAX)
    if far.size:
        out[far] = _ndtr_kernel(x[far])
    return out


def ndtr_sum(x) -> np.ndarray:
    """The standard normal CDF for weighted sums of many CDFs (normal mixtures): about twice
    as fast as :func:`ndtr`, with an absolute error of at most 2.3e-16 everywhere (the
    rounding of values near 1) but a relative error of up to 1e-12 just above x = -8.5, where
    ``ndtr`` keeps a few ulps (below -8.5 both are Cody's tail). A sum of such terms needs
    absolute accuracy; a tail probability on its own should use :func:`ndtr`.

    Table-driven: ``ndtr(x0 + d)`` by its Taylor polynomial of degree 6 around the nearest
    ``x0 = j / 64`` (tabulated from :func:`ndtr` and the Hermite polynomials when the module
    is imported)."""
    return _elementwise(_ndtr_sum_kernel, x)


def _ndtr_sum_and_pdf_kernel(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dens = x * x
    dens *= -0.5
    np.exp(dens, out=dens)
    dens *= _INV_SQRT_2PI
    return _ndtr_sum_kernel(x), dens


def ndtr_sum_and_pdf(x) -> tuple[np.ndarray, np.ndarray]:
    """``(ndtr_sum(x), exp(-x^2 / 2) / sqrt(2 pi))``, for Newton steps on normal mixtures."""
    return _elementwise_pair(_ndtr_sum_and_pdf_kernel, x)


def erf(x):
    """Error function (Cody 1969); same conventions as ``scipy.special.erf``."""
    return _elementwise(_erf_kernel, x)


def erfc(x):
    """Complementary error function (Cody 1969); as ``scipy.special.erfc``."""
    return _elementwise(_erfc_kernel, x)


def ndtr(x):
    """Standard normal CDF; as ``scipy.special.ndtr`` (more accurate below ``x = -20``)."""
    return _elementwise(_ndtr_kernel, x)


def _ndtri_kernel(p: np.ndarray) -> np.ndarray:
    q = p - 0.5
    central = np.abs(q) <= 0.425
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.sqrt(-np.log(np.minimum(p, 1.0 - p)))
        near = r <= 5.0
        rn = np.where(near, r, 5.0) - 1.6
        rf = np.where(near, 5.0, r) - 5.0
        tail = np.where(near, _poly(rn, _PC) / _poly(rn, _PD), _poly(rf, _PE) / _poly(rf, _PF))
        out = np.where(q < 0, -tail, tail)
    if central.any():
        qc = q[central]
        rc = 0.180625 - qc * qc
        out[central] = qc * _poly(rc, _PA) / _poly(rc, _PB)
    out[p == 0.0] = -np.inf
    out[p == 1.0] = np.inf
    out[~((p >= 0.0) & (p <= 1.0))] = np.nan
    return out


def ndtri(p):
    """Inverse of the standard normal CDF (AS 241); as ``scipy.special.ndtri``."""
    return _elementwise(_ndtri_kernel, p)


# ---------------------------------------------------------------------------------------------
# iterations over arrays
# ---------------------------------------------------------------------------------------------
def _converge(step, arrays: list[np.ndarray], limit: int = _MAX_TERMS) -> np.ndarray:
    """Iterate ``step`` over the elements not yet converged; the value each converged to.

    ``step(i, arrays)`` (i = 1, 2, ...) returns ``(arrays, done, value)``; converged elements
    are dropped from the arrays as they finish (nan where ``limit`` steps did not converge).
    """
    out = np.full(arrays[0].shape, np.nan)
    idx = np.arange(out.size)
    for i in range(1, limit):
        arrays, done, value = step(i, arrays)
        if done.any():
            out[idx[done]] = value[done]
            live = ~done
            idx = idx[live]
            if not idx.size:
                break
            arrays = [arr[live] for arr in arrays]
    return out


def _guard(v: np.ndarray) -> np.ndarray:
    """Lentz's guard: a zero (or tiny) denominator replaced by a tiny one."""
    v[np.abs(v) < _TINY] = _TINY
    return v


def _lentz(aa: np.ndarray, c: np.ndarray, d: np.ndarray):
    """One step of the modified Lentz method for ``1 + aa / (1 + ...)``: (c, d, c d)."""
    d = 1.0 / _guard(1.0 + aa * d)
    c = _guard(1.0 + aa / c)
    return c, d, c * d


def _gamma_series(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """sum_{n>=0} x^n / ((a + 1) ... (a + n)), so that P(a, x) = prefix(a, x) / a * sum."""

    def step(_, arrs):
        a, x, ap, term, total = arrs
        ap += 1.0
        term *= x / ap
        total += term
        return arrs, ~(term > total * _EPS), total  # (or nan)

    return _converge(step, [a, x, a.copy(), np.ones_like(a), np.ones_like(a)])


def _gamma_cf(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The continued fraction of Q(a, x) = prefix(a, x) * cf (x >= a + 1; modified Lentz)."""

    def step(i, arrs):
        a, b, c, d, h = arrs
        an = -i * (i - a)
        b += 2.0
        d = 1.0 / _guard(an * d + b)
        c = _guard(b + an / c)
        delta = d * c
        h *= delta
        return [a, b, c, d, h], ~(np.abs(delta - 1.0) > _EPS), h

    d = 1.0 / (x + 1.0 - a)
    return _converge(step, [a, x + 1.0 - a, np.full_like(a, 1.0 / _TINY), d, d.copy()])


def _log_gamma_prefix(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """log(x^a e^-x / Gamma(a)) for a > 0, x > 0.

    For ``a >= 10`` from Stirling's series, ``-a (r - log1p(r)) + log sqrt(a / 2 pi) - corr(a)``
    with ``r = (x - a) / a``, which has no cancellation of large terms.
    """
    big = a >= _STIRLING_MIN
    ab = np.where(big, a, _STIRLING_MIN)
    r = (x - ab) / ab
    stir = ab * _log1pmx(r) + 0.5 * np.log(ab / (2.0 * math.pi)) - _stirling_corr(ab)
    if big.all():
        return stir
    asml = np.where(big, 1.0, a)
    with np.errstate(divide="ignore"):
        direct = asml * np.log(x) - x - _lgamma(asml)
    return np.where(big, stir, direct)


def _log_gamma_tails(a: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log P(a, x), log Q(a, x)) for a > 0, x > 0, both finite-precision accurate.

    The tail that the series (x < a + 1) or continued fraction (x >= a + 1) gives is computed
    in logarithms (no underflow); the other one is ``log1p(-exp(...))`` of it.
    """
    lpre = _log_gamma_prefix(a, x)
    lo = x < a + 1.0
    lp = np.empty_like(a)
    lq = np.empty_like(a)
    with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
        if lo.any():
            s = _gamma_series(a[lo], x[lo])
            lp[lo] = lpre[lo] + np.log(s / a[lo])
            lq[lo] = np.log1p(-np.exp(lp[lo]))
        hi = ~lo
        if hi.any():
            f = _gamma_cf(a[hi], x[hi])
            lq[hi] = lpre[hi] + np.log(f)
            lp[hi] = np.log1p(-np.exp(lq[hi]))
    return lp, lq


def _beta_cf(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Continued fraction of I_x(a, b) = prefix * cf / a (converges for x < (a+1)/(a+b+2))."""

    def step(m, arrs):
        a, b, x, c, d, h = arrs
        m2 = 2.0 * m
        c, d, delta = _lentz(m * (b - m) * x / ((a - 1.0 + m2) * (a + m2)), c, d)
        h *= delta
        c, d, delta = _lentz(-(a + m) * (a + b + m) * x / ((a + m2) * (a + 1.0 + m2)), c, d)
        h *= delta
        return [a, b, x, c, d, h], ~(np.abs(delta - 1.0) > _EPS), h

    d = 1.0 / _guard(1.0 - (a + b) * x / (a + 1.0))
    return _converge(step, [a, b, x, np.ones_like(a), d, d.copy()])


# ---------------------------------------------------------------------------------------------
# Student t
# ---------------------------------------------------------------------------------------------
def _t_geometry(df: np.ndarray, t: np.ndarray):
    """x = df / (df + t^2), 1 - x, and their logarithms, from s = |t| / sqrt(df), overflow-free."""
    at, sd = np.abs(t), np.sqrt(df)
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        big = at > sd
        w = np.where(big, sd / at, at / sd)  # min(s, 1/s) for s = |t| / sqrt(df)
        w2 = w * w
        l1p = np.log1p(w2)
        lw = 2.0 * np.log(w)
        x = np.where(big, w2, 1.0) / (1.0 + w2)  # df / (df + t^2)
        y = np.where(big, 1.0, w2) / (1.0 + w2)  # t^2 / (df + t^2)
        lx = np.where(big, lw - l1p, -l1p)
        ly = np.where(big, -l1p, lw - l1p)
    return x, y, lx, ly


def _log_t_tails(df: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log S, log C) for |t| > 0: S = P(T > |t|) and C = 1/2 - S = P(0 < T < |t|).

    ``2 S = I_x(df/2, 1/2)`` with ``x = df / (df + t^2)``; the continued fraction is run on
    ``I_x(df/2, 1/2)`` where it converges (``x < (a+1)/(a+b+2)``, the tail) and on
    ``I_{1-x}(1/2, df/2) = 2 C`` otherwise; the other quantity is one minus it.
    """
    a = 0.5 * df
    x, y, lx, ly = _t_geometry(df, t)
    lbeta = _lbeta_half(a)
    direct = x < (a + 1.0) / (a + 2.5)
    ls = np.empty_like(a)
    lc = np.empty_like(a)
    with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
        if direct.any():
            ad, xd, yd = a[direct], x[direct], y[direct]
            f = _beta_cf(ad, np.full_like(ad, 0.5), xd)
            # The fraction was evaluated at the rounded x; near x = 1 (large df) its relative
            # sensitivity to x is ~ a / (1 - x), so correct it to first order to the x that
            # the accurate 1 - x stands for, using f' = a/(x y) - f (a/x - b/y) (from dI/dx).
            near1 = xd > 0.5
            if near1.any():
                xn, yn, fn, an = xd[near1], yd[near1], f[near1], ad[near1]
                delta = (1.0 - xn) - yn
                f[near1] = fn + delta * (an / (xn * yn) - fn * (an / xn - 0.5 / yn))
            lpre = ad * lx[direct] + 0.5 * ly[direct] - lbeta[direct]
            ls[direct] = lpre + np.log(f / ad) - math.log(2.0)
            lc[direct] = math.log(0.5) + np.log1p(-2.0 * np.exp(ls[direct]))
        swap = ~direct
        if swap.any():
            asw = a[swap]
            f = _beta_cf(np.full_like(asw, 0.5), asw, y[swap])
            lpre = 0.5 * ly[swap] + asw * lx[swap] - lbeta[swap]
            lc[swap] = lpre + np.log(2.0 * f) - math.log(2.0)
            ls[swap] = math.log(0.5) + np.log1p(-2.0 * np.exp(lc[swap]))
    return ls, lc


def _t_inputs(df, other) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    d, o = np.broadcast_arrays(np.asarray(df, dtype=float), np.asarray(other, dtype=float))
    return d.ravel().copy(), o.ravel().copy(), d.shape


def stdtr(df, t):
    """Student t CDF ``P(T_df <= t)``; as ``scipy.special.stdtr`` (``df = inf``: the normal)."""
    d, tt, shape = _t_inputs(df, t)
    out = np.full(d.shape, np.nan)
    inf_df = d == np.inf
    if inf_df.any():
        out[inf_df] = _ndtr_kernel(tt[inf_df])
    fin = (d > 0) & (d < np.inf) & ~np.isnan(tt)
    out[fin & (tt == 0)] = 0.5
    out[fin & (tt == np.inf)] = 1.0
    out[fin & (tt == -np.inf)] = 0.0
    work = fin & (tt != 0) & np.isfinite(tt)
    if work.any():
        ls, _ = _log_t_tails(d[work], tt[work])
        with np.errstate(under="ignore"):
            s = np.exp(ls)
        out[work] = np.where(tt[work] < 0, s, 1.0 - s)
    return _result(out.reshape(shape))


def _log_t_pdf(df: np.ndarray, t: np.ndarray) -> np.ndarray:
    """log density of Student t."""
    _, _, lx, _ = _t_geometry(df, t)
    return 0.5 * (df + 1.0) * lx - _lbeta_half(0.5 * df) - 0.5 * np.log(df)


def _t_start(df: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Starting point of the upper-tail quantile t > 0 with P(T > t) = q <= 1/2."""
    z = -_ndtri_kernel(q)
    cf = z + (z**3 + z) / (4.0 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96.0 * df**2)
    # far tail of small df: P(T > t) ~ exp(log pdf coefficient) t^-df / df
    lk = -_lbeta_half(0.5 * df) - 0.5 * np.log(df) + 0.5 * (df + 1.0) * np.log(df)
    with np.errstate(over="ignore"):
        far = np.exp((lk - np.log(df) - np.log(q)) / df)
    far = np.where(far > 4.0 * np.sqrt(df), far, 0.0)  # valid for t >> sqrt(df) only
    return np.maximum(np.maximum(cf, far), 1e-300)


def _newton_log(f_and_slope, v: np.ndarray, lo: np.ndarray, hi: np.ndarray, iters: int = 60):
    """Solve g(v) = 0 (g increasing in v, v a logarithm) by safeguarded Newton steps.

    ``f_and_slope(v, idx)`` gives ``(g, dg/dv)`` for the elements ``idx``; the bracket
    ``[lo, hi]`` (``-inf``/``inf`` allowed) is narrowed by every evaluation and a step leaving it
    is replaced by bisection (or a step of ``_MAX_LOG_STEP`` when one side is still open). An
    element is done when its step is below 4 eps (v is a logarithm: relative in exp(v)), or
    when the step before was below 1e-8: Newton's error after it is then ~1e-16.
    """
    out = v.copy()
    idx = np.arange(v.size)
    prev = np.full_like(v, np.inf)
    for _ in range(iters):
        g, slope = f_and_slope(v, idx)
        lo = np.where(g < 0, v, lo)
        hi = np.where(g > 0, v, hi)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            step = np.clip(g / slope, -_MAX_LOG_STEP, _MAX_LOG_STEP)
        new = v - step
        bad = (new < lo) | (new > hi) | ~np.isfinite(new)
        if bad.any():
            with np.errstate(invalid="ignore"):
                mid = np.where(
                    np.isfinite(lo) & np.isfinite(hi),
                    0.5 * (lo + hi),
                    np.where(np.isfinite(lo), lo + _MAX_LOG_STEP, hi - _MAX_LOG_STEP),
                )
            new = np.where(bad, mid, new)
        size = np.abs(new - v)
        done = ~(size > 4.0 * _EPS) | (g == 0) | (~bad & (prev <= 1e-8))
        out[idx] = new
        v, prev = new, np.where(bad, np.inf, size)
        if done.any():
            live = ~done
            idx, v, lo, hi, prev = idx[live], v[live], lo[live], hi[live], prev[live]
            if not idx.size:
                break
    return out


def _once_per_value(quantile):
    """``quantile(df, p)`` computed once per distinct finite ``(df, p)`` pair and broadcast:
    a fit of many meta-analyses asks for the same few quantiles (one per number of studies)
    thousands of times. Each value is solved on its own, so the result is the same, bit for
    bit."""

    @functools.wraps(quantile)
    def wrapper(df, p):
        d, pp, shape = _t_inputs(df, p)
        if d.size <= 16 or not (np.isfinite(d).all() and np.isfinite(pp).all()):
            return quantile(df, p)
        if (pp == pp[0]).all():  # one probability (the usual case): 1-d unique, 10x faster
            dfs, inverse = np.unique(d, return_inverse=True)
            pairs = np.stack([dfs, np.full(dfs.size, pp[0])], axis=1)
        else:
            pairs, inverse = np.unique(np.stack([d, pp], axis=1), axis=0, return_inverse=True)
        if pairs.shape[0] == d.size:
            return quantile(df, p)
        out = np.asarray(quantile(pairs[:, 0], pairs[:, 1]))[inverse.reshape(-1)]
        return _result(out.reshape(shape))

    return wrapper


@_once_per_value
def stdtrit(df, p):
    """Inverse of the Student t CDF in ``t``; as ``scipy.special.stdtrit``.

    ``p = 0`` gives ``-inf`` and ``p = 1`` gives ``inf``; ``df = inf`` is the normal quantile.
    """
    d, pp, shape = _t_inputs(df, p)
    out = np.full(d.shape, np.nan)
    okp = (pp >= 0) & (pp <= 1)
    inf_df = (d == np.inf) & okp
    if inf_df.any():
        out[inf_df] = _ndtri_kernel(pp[inf_df])
    fin = (d > 0) & (d < np.inf) & okp
    out[fin & (pp == 0)] = -np.inf
    out[fin & (pp == 1)] = np.inf
    out[fin & (pp == 0.5)] = 0.0
    work = fin & (pp > 0) & (pp < 1) & (pp != 0.5)
    if work.any():
        dw, pw = d[work], pp[work]
        q = np.minimum(pw, 1.0 - pw)  # upper-tail probability, exact for p >= 1/2
        central = q > 0.25  # solve on C = 1/2 - S there: 1/2 - q is exact
        target = np.log(np.where(central, 0.5 - q, q))
        v0 = np.log(_t_start(dw, q))

        def g(v, idx):
            tv = np.exp(v)
            ls, lc = _log_t_tails(dw[idx], tv)
            lpdf = _log_t_pdf(dw[idx], tv)
            cen = central[idx]
            val = np.where(cen, lc, ls)
            # d log S / d log t = -t pdf / S, d log C / d log t = t pdf / C
            slope = np.exp(lpdf + v - val)
            return np.where(cen, val - target[idx], target[idx] - val), slope

        # beyond the largest double the quantile is infinite
        vmax = np.full_like(v0, _LOG_MAX)
        beyond = np.zeros(v0.shape, dtype=bool)
        huge = np.flatnonzero(v0 > _LOG_MAX - 50.0)  # only small df in far tails can overflow
        if huge.size:
            beyond[huge] = g(vmax[huge], huge)[0] < 0
        v = _newton_log(g, np.minimum(v0, _LOG_MAX), np.full_like(v0, -np.inf), vmax)
        tq = np.where(beyond, np.inf, np.exp(v))
        out[work] = np.where(pw < 0.5, -tq, tq)
    return _result(out.reshape(shape))


# ---------------------------------------------------------------------------------------------
# chi-squared
# ---------------------------------------------------------------------------------------------
def chdtrc(df, x):
    """Chi-squared survival function ``P(X_df > x) = Q(df/2, x/2)``; as ``scipy.special.chdtrc``."""
    d, xx, shape = _t_inputs(df, x)
    out = np.full(d.shape, np.nan)
    okd = (d >= 0) & (xx >= 0)
    out[okd & (xx == 0)] = 1.0
    out[okd & (d == 0) & (xx > 0)] = 0.0
    out[okd & (d == np.inf) & (xx > 0)] = 1.0
    out[okd & (d > 0) & (xx == np.inf)] = 0.0
    work = okd & (d > 0) & (d < np.inf) & (xx > 0) & (xx < np.inf)
    if work.any():
        _, lq = _log_gamma_tails(0.5 * d[work], 0.5 * xx[work])
        with np.errstate(under="ignore"):
            out[work] = np.exp(lq)
    return _result(out.reshape(shape))


@_once_per_value
def chdtri(df, p):
    """Inverse of :func:`chdtrc` in ``x``: ``chdtrc(df, chdtri(df, p)) = p``; as SciPy's.

    ``p = 0`` gives ``inf`` and ``p = 1`` gives 0.
    """
    d, pp, shape = _t_inputs(df, p)
    out = np.full(d.shape, np.nan)
    ok = (d > 0) & (d < np.inf) & (pp >= 0) & (pp <= 1)
    out[ok & (pp == 0)] = np.inf
    out[ok & (pp == 1)] = 0.0
    work = ok & (pp > 0) & (pp < 1)
    if work.any():
        a, pw = 0.5 * d[work], pp[work]
        upper = pw <= 0.5  # solve on log Q; else on log P = log(1 - p), exact for p >= 1/2
        target = np.log(np.where(upper, pw, 1.0 - pw))
        # Wilson-Hilferty start, or the lower-tail power law P ~ y^a / Gamma(a + 1)
        z = -_ndtri_kernel(pw)
        c = 1.0 / (9.0 * a)
        wh = a * np.maximum(1.0 - c + z * np.sqrt(c), 0.0) ** 3
        power = np.exp((np.log1p(-pw) + _lgamma(a + 1.0)) / a)
        y0 = np.where(wh > 0.0, wh, power)
        y0 = np.where(~upper & (power < wh), power, y0)
        y0 = np.maximum(y0, 1e-300)

        def g(v, idx):
            yv = np.exp(v)
            ai = a[idx]
            lp, lq = _log_gamma_tails(ai, yv)
            lpdf = _log_gamma_prefix(ai, yv)  # log(y pdf(y))
            up = upper[idx]
            val = np.where(up, lq, lp)
            slope = np.exp(lpdf - val)
            return np.where(up, target[idx] - val, val - target[idx]), slope

        v = _newton_log(g, np.log(y0), np.full_like(y0, -np.inf), np.full_like(y0, np.inf))
        out[work] = 2.0 * np.exp(v)
    return _result(out.reshape(shape))
