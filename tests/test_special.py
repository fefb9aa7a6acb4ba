"""The NumPy-only special functions of the pool path against scipy.special and mpmath.

SciPy is the independent reference on fixed grids and on a random sweep (fixed seed); where
SciPy itself loses digits (the normal tail below x = -30, where its ``ndtr`` loses about
``x^2 eps / 2`` and underflows below -37.7; the chi-squared tail of ``df = 10^4``; far tails of
its ``stdtrit``) the reference is mpmath at 50 digits (tests/reference/special_reference.py
wrote tests/reference/special_reference.json).

Tolerances. A CDF is compared with relative tolerance ``CDF_REL + CDF_KAPPA * eps * kappa``,
where ``kappa = |x F'(x) / F(x)|`` is the condition number of the value in its argument: the
relative change of the exact value when ``x`` moves by one part in ``1/eps``, which no double
evaluation (SciPy's included) avoids in the far tails; ``kappa`` is at most a few units except
in far tails and for large degrees of freedom. Quantiles are compared with ``QUANTILE_REL``.

Measured worst cases (this file's grids and sweep; also printed by benchmarks/bench_special.py):

* ndtr: up to 2.3e-13 from SciPy at x = -36, all of it SciPy's error (kappa ~ 1300 there);
  <= 7e-16 from mpmath on [-38.4, 8]. erf, erfc: 6e-14 from SciPy (erfc at 24.4, SciPy's
  tail); ndtri: 8.6e-16 from SciPy, and R's qnorm to the bit.
* stdtr: 3.4e-14 from SciPy on the grids (2.2e-13 at df = 1000, kappa ~ 500), <= 7e-14 from
  mpmath for df <= 1000, 6e-13 at df = 10^4 (t near -1.8, the slowest part of the continued
  fraction); 6e-15 from the closed form of df = 1.
* chdtrc: <= 1e-13 from mpmath for df <= 10^4; from SciPy up to 6e-13 at df ~ 10^3, SciPy's
  error there (mpmath: ours 1e-14).
* stdtrit: <= 1e-13 from SciPy and mpmath for df <= 10^4 (SciPy fails in far tails: it
  returns 6.0e78 for df = 3, p = 1.4e-237, whose CDF is 5.1e-237; mpmath agrees with ours);
  chdtri: 5e-14 from SciPy, <= 1e-13 from mpmath.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import special, stats

from bayesmtor import _special as ours

EPS = np.finfo(float).eps
#: Relative tolerance of a CDF at condition number ~1 (the target of the module).
CDF_REL = 1e-13
#: Multiple of eps * kappa added for ill-conditioned values (far tails, large df): each side
#: (SciPy's and ours) may be off by a few eps * kappa.
CDF_KAPPA = 8.0
#: A round trip F(F^-1(p)) adds the quantile's own error, a few eps, times kappa.
ROUND_TRIP_KAPPA = CDF_KAPPA + 8.0
#: Relative tolerance of quantiles.
QUANTILE_REL = 1e-12
#: ndtri (AS 241) against SciPy's (Cephes): both about 1e-16 relative.
NDTRI_REL = 2e-15
#: Against mpmath, where the reference is exact: the measured worst cases with a margin.
MPMATH_REL = {"ndtr": 2e-15, "stdtr": 1e-12, "chdtrc": 2e-13, "stdtrit": 1e-13, "chdtri": 1e-13}

REF = json.loads((Path(__file__).parent / "reference" / "special_reference.json").read_text())
DFS = (0.3, 1.0, 2.0, 3.0, 5.5, 10.0, 30.0, 100.0, 1000.0)


def _rel(a, b) -> np.ndarray:
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(a - b) / np.abs(b)


def _assert_close(got, ref, tol, what: str) -> None:
    got, ref = np.broadcast_arrays(np.asarray(got, float), np.asarray(ref, float))
    tol = np.broadcast_to(tol, ref.shape)
    same = (got == ref) | (np.isnan(got) & np.isnan(ref))
    rel = np.where(same, 0.0, _rel(got, ref))
    bad = ~(rel <= tol)
    assert not bad.any(), (
        f"{what}: {bad.sum()} of {bad.size} off; worst relative error {np.nanmax(rel):.2e} at "
        f"index {int(np.nanargmax(rel))} (got {got[bad][:3]}, expected {ref[bad][:3]})"
    )


# ---------------------------------------------------------------------------------------------
# normal
# ---------------------------------------------------------------------------------------------
def _z_kappa(x):
    return np.abs(x * stats.norm.pdf(x) / stats.norm.cdf(x))


def test_ndtr_matches_scipy():
    x = np.concatenate([np.linspace(-37.5, 9.0, 46501), np.linspace(-1.0, 1.0, 2001)])
    tol = CDF_REL + CDF_KAPPA * EPS * _z_kappa(x)
    _assert_close(ours.ndtr(x), special.ndtr(x), tol, "ndtr")


def test_ndtr_far_tail_matches_mpmath_down_to_subnormals():
    x, ref = np.array(REF["ndtr"]).T
    normal = ref > 1e-300
    _assert_close(ours.ndtr(x[normal]), ref[normal], MPMATH_REL["ndtr"], "ndtr tail")
    # subnormal results: a few units of the smallest subnormal
    assert np.all(np.abs(ours.ndtr(x[~normal]) - ref[~normal]) <= 4 * 5e-324 + 1e-8 * ref[~normal])
    assert ours.ndtr(-38.0) == pytest.approx(2.885428351e-316, rel=1e-8)  # SciPy: 0
    assert special.ndtr(-38.0) == 0.0


@pytest.mark.parametrize("name", ["erf", "erfc"])
def test_erf_and_erfc_match_scipy(name):
    x = np.concatenate([np.linspace(-6.0, 26.5, 30001), np.linspace(-0.5, 0.5, 1001)])
    ref = getattr(special, name)(x)
    ok = ref > 1e-300
    _assert_close(getattr(ours, name)(x)[ok], ref[ok], CDF_REL, name)


def test_ndtri_matches_scipy_and_inverts_ndtr():
    p = np.concatenate(
        [np.logspace(-320, -1, 4000), np.linspace(0.01, 0.99, 9801), 1 - np.logspace(-16, -1, 2000)]
    )
    _assert_close(ours.ndtri(p), special.ndtri(p), NDTRI_REL, "ndtri")
    z = np.linspace(-37.0, -0.01, 2001)  # the lower tail, where ndtr keeps every digit
    _assert_close(ours.ndtri(ours.ndtr(z)), z, 1e-12, "ndtri(ndtr(z))")


def test_ndtri_is_r_qnorm_to_the_bit():
    # R: sprintf("%a", qnorm(c(0.975, 0.025, 0.995))) (AS 241 in both; 0.025 and 1 - 0.975
    # are different doubles, hence the last digit)
    assert [float(ours.ndtri(p)).hex() for p in (0.975, 0.025, 0.995)] == [
        "0x1.f5c0331eeff82p+0",
        "-0x1.f5c0331eeff83p+0",
        "0x1.49b4c64d6915fp+1",
    ]


# ---------------------------------------------------------------------------------------------
# Student t
# ---------------------------------------------------------------------------------------------
def _t_kappa(df, t):
    return np.abs(t * stats.t.pdf(t, df) / stats.t.cdf(t, df))


@pytest.mark.parametrize("df", [d for d in DFS if d != 1.0])  # df = 1: the closed form below
def test_stdtr_matches_scipy(df):
    t = np.concatenate([-np.logspace(-4, 4, 500), np.logspace(-4, 2, 300), [0.0]])
    ref = special.stdtr(df, t)
    ok = ref > 1e-300
    tol = CDF_REL + CDF_KAPPA * EPS * _t_kappa(df, t[ok])
    _assert_close(ours.stdtr(df, t[ok]), ref[ok], tol, f"stdtr df={df}")


def test_stdtr_matches_mpmath():
    df, t, ref = np.array(REF["stdtr"]).T
    ok = ref > 1e-300
    tol = np.where(df[ok] <= 1000, CDF_REL, MPMATH_REL["stdtr"])
    _assert_close(ours.stdtr(df[ok], t[ok]), ref[ok], tol, "stdtr")


@pytest.mark.parametrize("df", DFS[1:])
def test_stdtrit_matches_scipy_and_inverts_stdtr(df):
    # not within 1e-6 of 1/2, where SciPy's t is wrong (2.8e-16 at p = 0.5 - 2^-54, df = 1,
    # where the exact value is pi 2^-54 = 1.74e-16, ours)
    p = np.concatenate([np.logspace(-100, -0.31, 300), np.linspace(0.05, 0.499, 90)])
    p = np.concatenate([p, 1 - p])
    got = ours.stdtrit(df, p)
    _assert_close(got, special.stdtrit(df, p), QUANTILE_REL, f"stdtrit df={df}")
    # and the round trip, down to 1e-300 where SciPy's stdtrit is unreliable
    pt = np.logspace(-300, -0.31, 200)
    tt = ours.stdtrit(df, pt)
    back = special.stdtr(df, tt)
    ok = back > 0  # SciPy's stdtr underflows for |t| > ~1e150 (df = 1)
    tol = 2 * CDF_REL + ROUND_TRIP_KAPPA * EPS * _t_kappa(df, tt[ok])
    _assert_close(back[ok], pt[ok], tol, f"stdtr(stdtrit) df={df}")


def test_stdtrit_far_tails_match_mpmath():
    df, p, ref = np.array(REF["stdtrit"]).T
    _assert_close(ours.stdtrit(df, p), ref, MPMATH_REL["stdtrit"], "stdtrit")


# ---------------------------------------------------------------------------------------------
# chi-squared
# ---------------------------------------------------------------------------------------------
def _chi_kappa(df, x):
    return np.abs(x * stats.chi2.pdf(x, df) / stats.chi2.sf(x, df))


def _chi_tol(df, x):
    """CDF tolerance plus SciPy's own rounding where its igamc forms ``a log x - x - lgamma(a)``
    (``|x - a| > 0.4 a``, a = df/2): eps times the size of those terms, up to 1e-12 for
    df ~ 10^3 (mpmath confirms ours there: 1e-14 where SciPy is 5e-13 off)."""
    a, h = 0.5 * np.asarray(df, float), 0.5 * np.asarray(x, float)
    with np.errstate(divide="ignore"):
        terms = a * np.abs(np.log(h)) + h + np.abs(special.gammaln(a))
    scipy_err = np.where(np.abs(h - a) > 0.4 * a, 2.0 * EPS * terms, 0.0)
    return CDF_REL + CDF_KAPPA * EPS * _chi_kappa(df, x) + scipy_err


@pytest.mark.parametrize("df", DFS)
def test_chdtrc_matches_scipy(df):
    x = np.logspace(-4, 3.5, 700) * df
    ref = special.chdtrc(df, x)
    ok = ref > 1e-300
    _assert_close(ours.chdtrc(df, x[ok]), ref[ok], _chi_tol(df, x[ok]), f"chdtrc df={df}")


def test_chdtrc_matches_mpmath_including_large_df():
    df, x, ref = np.array(REF["chdtrc"]).T
    _assert_close(ours.chdtrc(df, x), ref, MPMATH_REL["chdtrc"], "chdtrc")


@pytest.mark.parametrize("df", DFS)
def test_chdtri_matches_scipy_and_inverts_chdtrc(df):
    p = np.concatenate([np.logspace(-300, -0.31, 300), 1 - np.logspace(-15, -0.31, 100)])
    got = ours.chdtri(df, p)
    _assert_close(got, special.chdtri(df, p), QUANTILE_REL, f"chdtri df={df}")
    tol = _chi_tol(df, got) + ROUND_TRIP_KAPPA * EPS * _chi_kappa(df, got)
    _assert_close(special.chdtrc(df, got), p, tol, f"chdtrc(chdtri) df={df}")


def test_chdtri_matches_mpmath():
    df, p, ref = np.array(REF["chdtri"]).T
    _assert_close(ours.chdtri(df, p), ref, MPMATH_REL["chdtri"], "chdtri")


# ---------------------------------------------------------------------------------------------
# a random sweep, and arrays of degrees of freedom as the pool path passes them
# ---------------------------------------------------------------------------------------------
def test_random_sweep_against_scipy():
    rng = np.random.default_rng(20141001)
    n = 4000
    df = np.where(rng.uniform(size=n) < 0.5, rng.integers(1, 300, n), 10 ** rng.uniform(-0.5, 3, n))
    t = rng.standard_t(2, n) * rng.choice([0.1, 1.0, 10.0], n)
    x = df * rng.gamma(2.0, 0.5, n) * rng.choice([0.01, 1.0, 3.0], n)
    p = np.where(rng.uniform(size=n) < 0.5, rng.uniform(size=n), 10 ** rng.uniform(-100, 0, n))

    ref = special.stdtr(df, t)
    _assert_close(ours.stdtr(df, t), ref, CDF_REL + CDF_KAPPA * EPS * _t_kappa(df, t), "stdtr")
    ref = special.chdtrc(df, x)
    ok = ref > 1e-300
    _assert_close(ours.chdtrc(df[ok], x[ok]), ref[ok], _chi_tol(df[ok], x[ok]), "chdtrc")
    got, ref = ours.stdtrit(df, p), special.stdtrit(df, p)
    ok = np.abs(got) < 1e150  # beyond, SciPy's stdtrit returns ~4e153 whatever the answer
    _assert_close(got[ok], ref[ok], QUANTILE_REL, "stdtrit")
    _assert_close(ours.chdtri(df, p), special.chdtri(df, p), QUANTILE_REL, "chdtri")
    z = rng.normal(0, 8, n)
    _assert_close(ours.ndtr(z), special.ndtr(z), CDF_REL + CDF_KAPPA * EPS * _z_kappa(z), "ndtr")
    _assert_close(ours.ndtri(p), special.ndtri(p), NDTRI_REL, "ndtri")


def test_ndtr_sum_is_absolutely_accurate_and_exact_in_the_far_tail():
    # the table-driven CDF of normal mixtures: absolute error of an ulp of values near 1
    rng = np.random.default_rng(7)
    x = np.concatenate([np.linspace(-40.0, 40.0, 400_001), rng.normal(0.0, 4.0, 200_000)])
    got = ours.ndtr_sum(x)
    assert np.max(np.abs(got - special.ndtr(x))) <= 2.3e-16
    # relative: 1e-12 at worst, just above -8.5 (where the Taylor terms shrink slowest) ...
    mid = (x >= -8.5) & (x <= 0.0)
    _assert_close(got[mid], special.ndtr(x[mid]), 1e-12, "ndtr_sum relative")
    # ... and Cody's tail below it, the value of ndtr to the bit
    far = x < -8.5
    np.testing.assert_array_equal(got[far], ours.ndtr(x[far]))
    edges = np.array([math.nan, math.inf, -math.inf, 0.0, -0.0, 8.5, -8.5, 1e300, -1e300])
    np.testing.assert_array_equal(ours.ndtr_sum(edges), ours.ndtr(edges))
    cdf, pdf = ours.ndtr_sum_and_pdf(x[:600_000].reshape(-1, 8))
    np.testing.assert_array_equal(cdf.ravel(), got[:600_000])
    # the density exp(-x^2 / 2) directly: the rounding of x^2 / 2 costs x^2 eps / 2 relative
    dens_tol = 1e-15 + 0.5 * EPS * x[:600_000] ** 2
    _assert_close(pdf.ravel(), stats.norm.pdf(x[:600_000]), dens_tol, "ndtr_sum_and_pdf density")


def test_large_arrays_run_in_blocks_with_the_same_values():
    x = np.random.default_rng(1).normal(0, 6, 3 * ours._CHUNK + 17).reshape(-1, 1)
    whole = ours.ndtr(x)
    assert whole.shape == x.shape
    np.testing.assert_array_equal(whole[:100], ours.ndtr(x[:100]))
    _assert_close(whole, special.ndtr(x), CDF_REL + CDF_KAPPA * EPS * _z_kappa(x), "ndtr blocks")


# ---------------------------------------------------------------------------------------------
# edges and conventions
# ---------------------------------------------------------------------------------------------
NAN, INF = math.nan, math.inf
EDGES = {
    "ndtr": [(INF,), (-INF,), (NAN,), (0.0,), (-0.0,), (40.0,), (-40.0,)],
    "ndtri": [(0.0,), (1.0,), (0.5,), (-0.1,), (1.1,), (NAN,), (5e-324,)],
    "erf": [(INF,), (-INF,), (NAN,), (0.0,), (1e-300,), (30.0,)],
    "erfc": [(INF,), (-INF,), (NAN,), (0.0,), (30.0,), (-30.0,)],
    "stdtr": [(0.0, 1.0), (-1.0, 1.0), (NAN, 1.0), (3.0, NAN), (3.0, INF), (3.0, -INF),
              (3.0, 0.0), (INF, 1.0), (INF, -2.0), (2.5, 1e300)],
    "stdtrit": [(0.0, 0.7), (-1.0, 0.7), (NAN, 0.7), (3.0, NAN), (3.0, 1.0), (3.0, 0.5),
                (3.0, -0.1), (3.0, 1.1), (INF, 0.7), (INF, 0.975)],
    "chdtrc": [(-1.0, 2.0), (NAN, 2.0), (0.0, 2.0), (INF, 2.0), (3.0, 0.0), (3.0, -1.0),
               (3.0, INF), (3.0, NAN), (0.5, 1e-300)],
    "chdtri": [(0.0, 0.3), (-1.0, 0.3), (INF, 0.3), (NAN, 0.3), (3.0, 0.0), (3.0, 1.0),
               (3.0, -0.1), (3.0, 1.2), (3.0, NAN)],
}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "args"), [(name, args) for name, cases in EDGES.items() for args in cases]
)
def test_edges_follow_scipy(name, args):
    got, ref = getattr(ours, name)(*args), getattr(special, name)(*args)
    assert isinstance(got, np.floating)
    if np.isnan(ref):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(ref, rel=1e-13, abs=0.0)


def test_student_t_closed_forms():
    # df = 1 (Cauchy) and df = 2 have closed forms; SciPy's stdtr loses up to 3e-13 near t = 0
    t = np.concatenate([-np.logspace(-8, 8, 400), np.logspace(-8, 8, 400)])
    cauchy = np.where(t < 0, np.arctan2(1.0, -t) / np.pi, 0.5 + np.arctan(t) / np.pi)
    _assert_close(ours.stdtr(1.0, t), cauchy, CDF_REL, "stdtr df=1")
    r = np.sqrt(2.0 + t * t)
    two = np.where(t < 0, 1.0 / ((r + np.abs(t)) * r), 0.5 + 0.5 * t / r)  # no cancellation
    _assert_close(ours.stdtr(2.0, t), two, CDF_REL, "stdtr df=2")
    p = np.logspace(-300, -1e-3, 500)
    _assert_close(ours.stdtrit(1.0, p), -1.0 / np.tan(np.pi * p), 1e-13, "stdtrit df=1")


def test_documented_differences_from_scipy():
    # the t tail of small df below ~1e-300 of |t|: SciPy underflows to 0
    assert ours.stdtr(0.3, -1e300) == pytest.approx(3.49500723383858585e-91, rel=1e-13)
    assert special.stdtr(0.3, -1e300) == 0.0
    # p = 0 is t = -inf (SciPy's stdtrit returns +inf there); callers never pass it
    assert ours.stdtrit(3.0, 0.0) == -INF and special.stdtrit(3.0, 0.0) == INF
    # beyond the largest double the t quantile is infinite (SciPy returns 3.7e153)
    assert ours.stdtrit(0.3, 1e-300) == -INF
    assert abs(special.stdtrit(0.3, 1e-300)) < 1e300


def test_broadcasting_and_shapes():
    df = np.array([[1.0], [4.0], [30.0]])
    t = np.array([-2.0, 0.5, 3.0, 10.0])
    got = ours.stdtr(df, t)
    assert got.shape == (3, 4)
    _assert_close(got, special.stdtr(df, t), CDF_REL, "stdtr broadcast")
    _assert_close(ours.stdtrit(df, 0.975), special.stdtrit(df, 0.975), QUANTILE_REL, "stdtrit")
    _assert_close(ours.chdtri(df, [0.025, 0.975]), special.chdtri(df, [0.025, 0.975]),
                  QUANTILE_REL, "chdtri")  # fmt: skip
    assert ours.ndtr(np.zeros((2, 0))).shape == (2, 0)
    assert isinstance(ours.chdtrc(3, 4.5), np.floating)


def test_quantiles_of_repeated_values_are_those_of_each_value() -> None:
    """stdtrit and chdtri solve each distinct (df, p) once and broadcast: the same bits as
    solving every element on its own (an array of many analyses repeats a few df values)."""
    rng = np.random.default_rng(3)
    df = rng.integers(1, 12, 60).astype(float)
    for p in (0.975, rng.choice([0.025, 0.5, 0.975, 1e-9], 60)):
        for func in (ours.stdtrit, ours.chdtri):
            whole = func(df, p)
            one_by_one = np.array([func(d, q) for d, q in np.broadcast(df, p)])
            assert np.array_equal(whole, one_by_one)
