"""Frequentist numerics across the safe range: scale equivariance and no overflow.

Every inverse-variance estimator is equivariant: multiplying the estimates and their standard
errors by ``c`` multiplies the pooled effect, its SE, CI and prediction interval by ``c`` and
tau^2 (with its CI) by ``c^2``, and leaves Q, I2, H2, the test statistic and the p-values
unchanged. The expected values are R metafor 3.8's answers for dat.bcg
(tests/reference/rma_reference.json) scaled by hand, so the test checks both agreement with
metafor at every scale and equality across scales. Hand-derived answers at the edges of the
safe range follow.
"""

from __future__ import annotations

import json
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from bayesmtor import frequentist as F
from bayesmtor.errors import DegenerateIntervalWarning, NotEstimableWarning

#: Scales tried: within the safe range (|yi| <= 1e50, 1e-50 <= sei <= 1e50) for dat.bcg, whose
#: log RRs lie in [-1.6, 0.45] and whose SEs lie in [0.063, 0.73].
SCALES = (1e-45, 1e-20, 1.0, 1e20, 1e45)
#: Same tolerances as tests/test_frequentist.py: metafor iterated to 1e-12, so both sides agree
#: far below this; the floor covers values at 0 (tau2_ci_low at the boundary).
METAFOR_REL = 1e-6
#: Equality across scales: standardisation makes the scaled problems identical up to the
#: rounding of c*y and c*s (a few ulp), so results agree to ~1e-13; 1e-9 leaves room.
SCALE_REL = 1e-9
#: Results that are exact up to rounding of the data (a few ulp).
ULP_REL = 1e-12

METHODS = ("FE", "DL", "REML", "PM", "ML", "SJ", "HE")
LOCATION = ("estimate", "ci_low", "ci_high", "pi_low", "pi_high")
SPREAD = ("se", "tau")
VARIANCE = ("tau2", "tau2_ci_low", "tau2_ci_high")
INVARIANT = ("stat", "pval", "Q", "Q_df", "Q_pval", "I2", "H2", "I2_tau", "H2_tau")


@pytest.fixture(scope="module")
def ref(reference_dir):
    with open(reference_dir / "rma_reference.json") as fh:
        data = json.load(fh)
    return {r["id"]: r["values"] for r in data["references"]}


def _power(key: str) -> int:
    if key in LOCATION or key in SPREAD:
        return 1
    if key in VARIANCE:
        return 2
    return 0


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotEstimableWarning)
        return fn(*args, **kwargs)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize(
    ("method", "test"), [(m, "z") for m in METHODS] + [(m, "knha") for m in METHODS[1:]]
)
def test_scaled_bcg_matches_scaled_metafor(ref, scale, method, test):
    es = ref["bcg/RR/escalc"]
    y = np.array(es["yi"])
    se = np.sqrt(np.array(es["vi"]))
    expected = ref[f"bcg/RR/{method}/{test}"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning (overflow, invalid) at any scale
        res = F.rma(scale * y, sei=scale * se, method=method, test=test, measure="RR")
        base = F.rma(y, sei=se, method=method, test=test, measure="RR")
    got, one = res.to_dict(), base.to_dict()
    checked = 0
    for key, val in expected.items():
        if key in ("k", "k_tables") or val is None:
            continue
        factor = scale ** _power(key)
        want = val * factor
        assert got[key] == pytest.approx(want, rel=METAFOR_REL, abs=1e-10 * factor), key
        assert got[key] == pytest.approx(one[key] * factor, rel=SCALE_REL, abs=1e-300), key
        assert got[key] != 0.0 or math.copysign(1.0, got[key]) == 1.0, key  # never -0.0
        checked += 1
    assert checked >= (8 if method == "FE" else 18)


def test_edges_of_the_range_by_hand():
    """yi = -1e50, 1e50 with sei = 1e50 (the safe range's corners), k = 2.

    By hand, with v = 1e100 for both studies and mean 0: Q = 2 (1e50)^2 / v = 2 on 1 df, so
    I2 = 50% and H2 = 2. DL: C = sum w - sum w^2 / sum w = w = 1e-100, tau2 = (Q - 1) / C =
    1e100. HE: sample variance 2e100 minus v = 1e100. PM solves 2e100 / (v + t) = 1: t = 1e100.
    SJ: t0 = 2e100 / 2, Q(t0) = 1, tau2 = t0 = 1e100. REML (equal v): sample variance - v =
    1e100; ML: (k-1)/k sample variance - v = 0. Q-profile: lower 0 (Q = 2 < chi2(0.975, 1));
    upper solves 2e100 / (v + t) = chi2(0.025, 1).
    """
    upper = 2e100 / stats.chi2.ppf(0.025, 1) - 1e100
    for method, tau2 in (("DL", 1e100), ("HE", 1e100), ("PM", 1e100), ("SJ", 1e100),
                         ("REML", 1e100), ("ML", 0.0)):  # fmt: skip
        res = _quiet(F.rma, [-1e50, 1e50], [1e50, 1e50], method=method)
        assert res.estimate == 0.0 and math.copysign(1.0, res.estimate) == 1.0
        assert (res.Q, res.I2, res.H2) == pytest.approx((2.0, 50.0, 2.0), rel=ULP_REL)
        assert res.tau2 == pytest.approx(tau2, rel=ULP_REL, abs=1e-300), method
        assert res.se == pytest.approx(math.sqrt((1e100 + tau2) / 2), rel=ULP_REL), method
        assert res.tau2_ci_low == 0.0
        assert res.tau2_ci_high == pytest.approx(upper, rel=1e-9), method


def test_weights_from_1e100_to_1e_minus_100_by_hand():
    """sei = 1e-50, 1, 1e50 with yi = 0, 1, 2: weights 1e100, 1, 1e-100.

    FE: mu = (1 + 2e-100) / (1e100 + 1 + 1e-100) ~ 1e-100 and SE ~ 1e-50; Q ~ 1 on 2 df, so
    I2 = 0 and DL tau2 = 0. Typical variance s^2 = (k-1) sum w / ((sum w)^2 - sum w^2) with
    (sum w)^2 - sum w^2 = 2 (w1 w2 + w1 w3 + w2 w3) ~ 2e100, so s^2 = 1 and H2_tau = 1; the
    difference of squares computed as such cancels to 0 (s^2 = inf, H2_tau = nan).
    """
    res = F.rma([0.0, 1.0, 2.0], [1e-50, 1.0, 1e50], method="DL")
    assert res.estimate == pytest.approx(1e-100, abs=1e-15)  # exact to the data's rounding
    assert res.se == pytest.approx(1e-50, rel=ULP_REL)
    assert (res.Q, res.I2, res.tau2) == pytest.approx((1.0, 0.0, 0.0), rel=ULP_REL, abs=1e-15)
    assert (res.I2_tau, res.H2_tau) == pytest.approx((0.0, 1.0), rel=ULP_REL)


def test_no_signed_zero_in_any_output():
    """Symmetric data give an estimate of exactly 0 and DL/HE give tau2 = 0: never -0.0."""
    for method in METHODS:
        res = _quiet(F.rma, [-0.1, 0.1, -0.05, 0.05], [0.3, 0.3, 0.3, 0.3], method=method)
        assert res.estimate == 0.0
        for key, val in res.to_dict().items():
            if isinstance(val, float):
                assert math.copysign(1.0, val) == 1.0 or val < 0, (method, key)


def test_worst_case_mixture_stays_finite():
    """2000 studies with yi in {-1e50, 0, 1e50} and sei in {1e-50, 1, 1e50}, all combinations.

    Squared standardised residuals reach 4e200 and weights 1e100: every output is finite (or
    missing where undefined) and no RuntimeWarning is raised. Q is bounded by hand: each term
    (y - mu)^2 / s^2 <= (2e50)^2 / (1e-50)^2 = 4e200, so Q <= 2000 * 4e200.
    """
    rng = np.random.default_rng(20141001)
    y = rng.choice([-1e50, 0.0, 1e50], 2000)
    s = rng.choice([1e-50, 1.0, 1e50], 2000)
    # exact rational arithmetic for FE and DL (independent of floating point)
    w = [1 / Fraction(x) ** 2 for x in s]
    yq = [Fraction(x) for x in y]
    sw = sum(w)
    mu = sum(a * b for a, b in zip(w, yq, strict=True)) / sw
    q = sum(a * (b - mu) ** 2 for a, b in zip(w, yq, strict=True))
    tau2_dl = max(Fraction(0), (q - 1999) / (sw - sum(a * a for a in w) / sw))
    fe = F.rma(y, s, method="FE")
    dl = F.rma(y, s, method="DL")
    assert (fe.estimate, fe.Q, fe.se) == pytest.approx(
        (float(mu), float(q), 1 / math.sqrt(float(sw))), rel=ULP_REL
    )
    assert dl.tau2 == pytest.approx(float(tau2_dl), rel=ULP_REL)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for method in METHODS:
            for test in ("z", "knha") if method != "FE" else ("z",):
                res = F.rma(y, s, method=method, test=test)
                values = {k: v for k, v in res.to_dict().items() if isinstance(v, float)}
                assert all(math.isfinite(v) for v in values.values()), (method, test, values)
                assert 0.0 < res.Q <= 2000 * 4e200
                assert abs(res.estimate) <= 1e50
                if method != "FE":
                    assert 0.0 <= res.tau2 <= 1e100


def test_hksj_on_identical_studies_warns_and_matches_metafor():
    """metafor sets the HKSJ scale factor to 0 when RSS <= .Machine$double.eps (all yi equal):
    estimate 0.2, se 0, CI [0.2, 0.2], p = 0 (rma.uni source; the test in test_edge_cases.py
    has the values of one R run). bayesmtor reports the same and says why."""
    for scale in (1e-45, 1.0, 1e45):
        with pytest.warns(DegenerateIntervalWarning, match="HKSJ scale factor is 0"):
            res = F.rma(np.full(4, 0.2 * scale), np.full(4, 0.3 * scale), test="knha")
        assert (res.estimate, res.se) == (pytest.approx(0.2 * scale, rel=ULP_REL), 0.0)
        assert res.ci_low == res.ci_high == res.estimate and res.pval == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateIntervalWarning)  # spread: no warning
        F.rma([0.2, 0.2, 0.2, 0.21], np.full(4, 0.3), test="knha")


def test_pool_groups_is_scale_equivariant_per_group(ref):
    """The vectorised path (pool_groups) standardises each group with its own scale."""
    import pandas as pd

    es = ref["bcg/RR/escalc"]
    y = np.array(es["yi"])
    se = np.sqrt(np.array(es["vi"]))
    frame = pd.DataFrame(
        {
            "study": [f"s{i}" for i in range(2 * y.size)],
            "yi": np.concatenate([1e-40 * y, 1e40 * y]),
            "sei": np.concatenate([1e-40 * se, 1e40 * se]),
            "group": ["a"] * y.size + ["b"] * y.size,
        }
    )
    table = F.pool_groups(frame, by="group", measure="RR", method="REML")
    want = ref["bcg/RR/REML/z"]
    for row, c in zip(table.itertuples(), (1e-40, 1e40), strict=True):
        assert row.estimate == pytest.approx(c * want["estimate"], rel=METAFOR_REL)
        assert row.tau2 == pytest.approx(c * c * want["tau2"], rel=METAFOR_REL)
        assert row.I2_tau == pytest.approx(want["I2_tau"], rel=METAFOR_REL)
