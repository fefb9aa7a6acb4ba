"""Edge cases with defined behaviour: tiny and huge k, zeros, boundaries, extreme values.

Expected values are computed in the test from closed-form formulas (inverse-variance weighted
means, the 2x2 log risk ratio with 1/2 added), never taken from bayesmtor's own output.

Defined behaviour (frequentist ``rma``/``meta_analysis``; exact engine ``exact_posterior``):

* k = 1: fixed effect returns the study itself; random effects returns the study with tau^2,
  I^2 and the prediction interval missing (NaN) and a ``NotEstimableWarning``. The exact engine
  runs from the priors: with a flat mu prior the tau posterior *equals* the tau prior (the one
  study's likelihood, integrated over mu, does not depend on tau); with the default proper
  normal(0, 4) mu prior it is close to it.
* k = 2: every estimator runs; the prediction interval needs k >= 3 (NaN + warning).
* every study double-zero: nothing to pool for a ratio, ``EstimationError`` naming the reason.
* zero events in one arm of every study: 1/2 is added to the cells of those tables (RevMan 5).
* Q <= df: tau^2 = 0 on the boundary for DL/REML/ML/PM/HE, and the random-effects estimate
  equals the fixed-effect one.
* a study with SE = 1e6 leaves FE, ML and REML results unchanged (to ~1e-8) and the exact
  posterior too. DL, PM, SJ and HE are moment estimators whose equations contain k (via
  Q - (k - 1) or the k-1 divisor), so an uninformative extra study does change their tau^2:
  that is a property of those estimators, not a bug.
* 1,000 studies run in well under a second per method; |log RR| > 10 stays finite;
  identical studies give Q = 0, I^2 = 0, tau^2 = 0 (and, as in metafor, a zero-width
  untruncated HKSJ interval).
* ``bayesmtor pool --by``: a group left without a usable study is reported with k = 0 and
  nulls (plus a warning) while the other groups are pooled; without ``--by`` the same data are
  an ``EstimationError`` (exit status 2).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayesmtor import cli, frequentist
from bayesmtor.bayes.exact import exact_posterior
from bayesmtor.bayes.priors import MuPrior, TauPrior
from bayesmtor.errors import (
    DegenerateIntervalWarning,
    EstimationError,
    InputError,
    NotEstimableWarning,
)
from bayesmtor.inputs import read_meta_data

RE_METHODS = frequentist.RE_METHODS
IV_METHODS = ("FE",) + RE_METHODS
EXACT_TOL = 1e-6  # quadrature tolerance asked of the exact engine in these tests
CDF_TOL = 1e-5  # posterior CDFs agree to this (a few times the quadrature tolerance)
HUGE_SE_TOL = 1e-8  # an SE of 1e6 has weight 1e-12 relative to SEs of order 1
FLOAT_TOL = 1e-10  # closed-form identities, up to floating-point round-off


def _quiet(func, *args, **kwargs):
    """Call ``func`` and return (result, list of warning categories)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = func(*args, **kwargs)
    return out, [w.category for w in caught]


def _iv_mean(y: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    w = 1.0 / se**2
    return float((w * y).sum() / w.sum()), float(1.0 / math.sqrt(w.sum()))


# --------------------------------------------------------------------------------------------
# k = 1 and k = 2
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", IV_METHODS)
def test_k1_frequentist(method: str) -> None:
    res, cats = _quiet(frequentist.rma, [-0.3], [0.2], method=method)
    assert res.k == 1
    assert res.estimate == pytest.approx(-0.3, abs=FLOAT_TOL)
    assert res.se == pytest.approx(0.2, abs=FLOAT_TOL)
    assert math.isfinite(res.ci_low) and math.isfinite(res.ci_high)
    if method in RE_METHODS:
        assert math.isnan(res.tau2) and math.isnan(res.I2_tau)
        assert math.isnan(res.pi_low) and math.isnan(res.pi_high)
        assert NotEstimableWarning in cats
        assert res.to_dict()["tau2"] is None  # JSON null


def test_k1_exact_flat_mu_prior_gives_tau_prior() -> None:
    tau_prior = TauPrior.half_normal(0.5)
    post = exact_posterior(
        [-0.3], [0.2], tau_prior=tau_prior, mu_prior=MuPrior.flat(), tol=EXACT_TOL
    )
    grid = np.array([0.05, 0.2, 0.5, 1.0, 2.0])
    np.testing.assert_allclose(post.tau_cdf(grid), tau_prior.cdf(grid), atol=CDF_TOL)
    assert post.mu_quantile(0.5) == pytest.approx(-0.3, abs=CDF_TOL)


def test_k1_exact_default_priors_finite_and_close_to_prior() -> None:
    post = exact_posterior([-0.3], [0.2], tol=EXACT_TOL)
    tau_prior = TauPrior.coerce(None)
    q = np.array([0.25, 0.5, 0.75, 0.975])
    # y ~ N(0, 16 + s^2 + tau^2) marginally: its density changes by < 4% for tau in [0, 1.2],
    # so the tau quantiles move by at most a few percent from the prior's.
    np.testing.assert_allclose(post.tau_quantile(q), tau_prior.ppf(q), rtol=0.04)
    summary = post.summary()
    assert np.isfinite(summary.select_dtypes("number").to_numpy()).all()


@pytest.mark.parametrize("method", IV_METHODS)
def test_k2_runs_prediction_interval_missing(method: str) -> None:
    res, cats = _quiet(frequentist.rma, [-0.3, 0.1], [0.2, 0.3], method=method)
    assert math.isfinite(res.estimate) and math.isfinite(res.se)
    if method in RE_METHODS:
        assert res.tau2 >= 0
        assert math.isnan(res.pi_low)
        assert NotEstimableWarning in cats


def test_k2_exact() -> None:
    post = exact_posterior([-0.3, 0.1], [0.2, 0.3], tol=EXACT_TOL)
    assert post.error_estimate <= EXACT_TOL
    lo, hi = post.mu_quantile([0.025, 0.975])
    assert lo < -0.3 < 0.1 < hi


# --------------------------------------------------------------------------------------------
# zeros
# --------------------------------------------------------------------------------------------

_DOUBLE_ZERO = pd.DataFrame(
    {
        "study": ["A", "B", "C"],
        "events_trt": [0, 0, 0],
        "n_trt": [50, 60, 70],
        "events_ctl": [0, 0, 0],
        "n_ctl": [50, 61, 69],
    }
)


@pytest.mark.parametrize(
    ("measure", "method"),
    [("RR", "MH"), ("OR", "PETO"), ("OR", "DL"), ("RR", "FE"), ("RR", "REML")],
)
def test_all_double_zero_is_an_estimation_error(measure: str, method: str) -> None:
    with pytest.raises(EstimationError, match="no events"):
        frequentist.meta_analysis(_DOUBLE_ZERO, measure=measure, method=method)


def test_all_double_zero_risk_difference_is_near_zero() -> None:
    """A risk difference of 0 is information: RD keeps double-zero studies (RevMan 5)."""
    res, _ = _quiet(frequentist.meta_analysis, _DOUBLE_ZERO, measure="RD", method="FE")
    assert res.k == 3 and not res.excluded
    # 1/2 added to the cells of each table leaves RDs of order 1e-4 around 0
    assert res.estimate == pytest.approx(0.0, abs=1e-3)


def test_zero_events_in_control_arm_of_every_study() -> None:
    a = np.array([3, 5, 2])
    n1 = np.array([40, 55, 30])
    n2 = np.array([42, 50, 31])
    frame = pd.DataFrame(
        {"study": ["A", "B", "C"], "events_trt": a, "n_trt": n1, "events_ctl": 0, "n_ctl": n2}
    )
    # 1/2 added to every cell of a table with a zero: a+1/2 of n1+1 versus 1/2 of n2+1.
    yi = np.log((a + 0.5) / (n1 + 1)) - np.log(0.5 / (n2 + 1))
    vi = 1 / (a + 0.5) - 1 / (n1 + 1) + 1 / 0.5 - 1 / (n2 + 1)
    expected, expected_se = _iv_mean(yi, np.sqrt(vi))
    res = frequentist.meta_analysis(frame, measure="RR", method="FE")
    assert res.k == 3
    assert res.estimate == pytest.approx(expected, abs=FLOAT_TOL)
    assert res.se == pytest.approx(expected_se, abs=FLOAT_TOL)
    mh = frequentist.meta_analysis(frame, measure="RR", method="MH")
    assert math.isfinite(mh.estimate) and mh.estimate > 0


# --------------------------------------------------------------------------------------------
# boundary, identical and extreme studies
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ("DL", "REML", "ML", "PM", "HE"))
def test_tau2_on_the_boundary(method: str) -> None:
    y = np.array([0.0, 0.01, -0.01, 0.005])
    se = np.array([0.5, 0.4, 0.6, 0.5])  # Q is far below its df of 3
    res = frequentist.rma(y, se, method=method)
    fixed, fixed_se = _iv_mean(y, se)
    assert res.Q < res.Q_df
    assert res.tau2 == pytest.approx(0.0, abs=FLOAT_TOL)
    assert res.estimate == pytest.approx(fixed, abs=1e-8)
    assert res.se == pytest.approx(fixed_se, abs=1e-8)
    assert res.I2 == 0.0


@pytest.mark.parametrize("method", ("FE", "DL", "REML", "ML", "PM", "HE"))
def test_identical_studies(method: str) -> None:
    k, y, s = 6, -0.4, 0.25
    res = frequentist.rma(np.full(k, y), np.full(k, s), method=method)
    assert res.Q == pytest.approx(0.0, abs=FLOAT_TOL)
    assert res.I2 == 0.0
    assert res.estimate == pytest.approx(y, abs=FLOAT_TOL)
    assert res.se == pytest.approx(s / math.sqrt(k), abs=FLOAT_TOL)
    if method != "FE":
        assert res.tau2 == pytest.approx(0.0, abs=FLOAT_TOL)


def test_identical_studies_hksj_interval_collapses_as_in_metafor() -> None:
    """Untruncated HKSJ scales the SE by sqrt(Q_gen / (k - 1)) = 0: the interval collapses.

    R metafor 3.8 gives the same (run once by hand):
    ``rma(yi=c(.2,.2,.2,.2), sei=c(.3,.3,.3,.3), test="knha")`` -> b 0.2, se 0, CI [0.2, 0.2],
    pval 0; with yi = 0 everywhere, pval NaN.
    """
    with pytest.warns(DegenerateIntervalWarning, match="zero width"):
        res = frequentist.rma(np.full(4, 0.2), np.full(4, 0.3), method="REML", test="knha")
    assert (res.estimate, res.se, res.ci_low, res.ci_high) == pytest.approx((0.2, 0, 0.2, 0.2))
    assert res.pval == 0.0
    with pytest.warns(DegenerateIntervalWarning, match="zero width"):
        res0 = frequentist.rma(np.zeros(4), np.full(4, 0.3), method="REML", test="knha")
    assert res0.se == 0.0 and math.isnan(res0.pval)


_Y = np.array([-0.45, -0.10, -0.32, 0.05, -0.61])
_SE = np.array([0.21, 0.30, 0.18, 0.40, 0.25])


@pytest.mark.parametrize("method", ("FE", "ML", "REML"))
def test_enormous_se_changes_nothing(method: str) -> None:
    base = frequentist.rma(_Y, _SE, method=method)
    more = frequentist.rma(np.append(_Y, 3.0), np.append(_SE, 1e6), method=method)
    assert more.k == base.k + 1
    for key in ("estimate", "se", "ci_low", "ci_high", "Q"):
        assert getattr(more, key) == pytest.approx(getattr(base, key), abs=HUGE_SE_TOL), key
    if method != "FE":
        assert more.tau2 == pytest.approx(base.tau2, abs=HUGE_SE_TOL)


def test_enormous_se_changes_nothing_exact() -> None:
    base = exact_posterior(_Y, _SE, tol=EXACT_TOL)
    more = exact_posterior(np.append(_Y, 3.0), np.append(_SE, 1e6), tol=EXACT_TOL)
    q = np.array([0.025, 0.5, 0.975])
    np.testing.assert_allclose(more.mu_quantile(q), base.mu_quantile(q), atol=CDF_TOL)
    np.testing.assert_allclose(more.tau_quantile(q), base.tau_quantile(q), atol=CDF_TOL)


def test_thousand_studies_are_fast() -> None:
    rng = np.random.default_rng(20141001)
    k = 1000
    se = rng.uniform(0.1, 0.5, k)
    y = rng.normal(-0.2, 0.2, k) + se * rng.standard_normal(k)  # true tau = 0.2
    start = time.perf_counter()
    for method in IV_METHODS:
        res = frequentist.rma(y, se, method=method)
        assert res.k == k and math.isfinite(res.estimate)
        assert method == "FE" or math.isfinite(res.tau2)
    post = exact_posterior(y, se, tol=EXACT_TOL)
    assert post.error_estimate <= EXACT_TOL
    # with 1,000 studies tau is well identified: the posterior median is near the true 0.2
    assert 0.1 < post.tau_quantile(0.5) < 0.3
    assert time.perf_counter() - start < 10.0  # generous bound for slow CI machines


def test_extreme_effects_stay_finite() -> None:
    y = np.array([12.0, 11.5, 12.3, 10.8])
    se = np.array([0.3, 0.5, 0.4, 0.6])
    fixed, _ = _iv_mean(y, se)
    for method in IV_METHODS:
        res = frequentist.rma(y, se, method=method)
        assert math.isfinite(res.estimate) and math.isfinite(res.se)
        assert 10.0 < res.estimate < 13.0
    assert frequentist.rma(y, se, method="FE").estimate == pytest.approx(fixed, abs=FLOAT_TOL)
    post = exact_posterior(y, se, mu_prior=MuPrior.flat(), tol=EXACT_TOL)
    assert 10.0 < post.mu_quantile(0.5) < 13.0
    assert np.isfinite(post.summary().select_dtypes("number").to_numpy()).all()


def test_extreme_counts_log_rr_above_10() -> None:
    # 900,000 of 1,000,000 events versus 2 of 1,000,000: log RR = log(450,000) ~ 13.0
    frame = pd.DataFrame(
        {
            "study": ["A", "B"],
            "events_trt": [900_000, 800_000],
            "n_trt": [1_000_000] * 2,
            "events_ctl": [2, 3],
            "n_ctl": [1_000_000] * 2,
        }
    )
    for method in ("MH", "FE", "REML"):
        res, _ = _quiet(frequentist.meta_analysis, frame, measure="RR", method=method)
        assert res.estimate > 10 and math.isfinite(res.se)


# --------------------------------------------------------------------------------------------
# file conventions accepted on purpose (documented in tests/data/bad/README.md)
# --------------------------------------------------------------------------------------------

_CSV = (
    "study,events_trt,n_trt,events_ctl,n_ctl\n"
    "Alpha 2010,12,120,8,118\nBeta 2011,9,95,7,97\nGamma 2012,20,210,15,205\n"
)


def _pool_json(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code = cli.main(["pool", str(path), "--measure", "RR", "--method", "MH", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    return out


def test_bom_crlf_blank_lines_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A UTF-8 BOM (Excel's 'CSV UTF-8'), CRLF line ends and blank lines give the same result."""
    plain = tmp_path / "plain.csv"
    plain.write_bytes(_CSV.encode("utf-8"))
    variant = tmp_path / "variant.csv"
    text = _CSV.replace("Beta", "\n   \nBeta") + ",,,,\n"  # blank lines; Excel's empty row
    variant.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    assert _pool_json(variant, capsys) == _pool_json(plain, capsys)
    meta = read_meta_data(variant)
    assert list(meta.frame.columns)[0] == "study"
    assert meta.lines is not None and meta.lines.tolist() == [2, 5, 6]


def test_hash_lines_are_not_comments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """There is no comment syntax: a '#' line above the header is the header, and is refused."""
    path = tmp_path / "commented.csv"
    path.write_text("# exported from a spreadsheet\n" + _CSV, encoding="utf-8")
    code = cli.main(["pool", str(path), "--measure", "RR", "--method", "MH", "--json"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("bayesmtor: error: commented.csv, line 2: 5 fields where the header")
    assert "no comment syntax" in err


def test_long_study_label_kept(tmp_path: Path) -> None:
    label = "Trial " + "x" * 5000
    path = tmp_path / "long.csv"
    path.write_text(_CSV.replace("Alpha 2010", label), encoding="utf-8")
    meta = read_meta_data(path)
    assert meta.frame["study"].iloc[0] == label
    res = frequentist.meta_analysis(meta, measure="RR", method="MH")
    assert label in res.studies


def test_error_on_row_of_long_file(tmp_path: Path) -> None:
    """Row numbers stay right deep into a file (row 1000 is line 1001)."""
    rows = [f"S{i},{i % 7},{50 + i % 5},{i % 3},{60}" for i in range(1, 1001)]
    rows[999] = "S1000,5,50,70,60"  # events above the total on data row 1000
    path = tmp_path / "long.csv"
    path.write_text(
        "study,events_trt,n_trt,events_ctl,n_ctl\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    with pytest.raises(InputError) as info:
        read_meta_data(path)
    assert info.value.row == 1000 and info.value.column == "events_ctl"
    assert "line 1001" in str(info.value)


def test_cli_k1_reports_missing_tau2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "one.csv"
    path.write_text("study,yi,sei\nOnly 2012,-0.2,0.1\n", encoding="utf-8")
    code = cli.main(["pool", str(path), "--measure", "HR", "--method", "REML", "--json"])
    captured = capsys.readouterr()
    assert code == 0
    result = json.loads(captured.out)
    assert result["k"] == 1
    assert result["estimate"] == pytest.approx(-0.2, abs=FLOAT_TOL)
    assert result["tau2"] is None and result["pi_low"] is None
    assert "not estimable" in captured.err and "Traceback" not in captured.err


def test_cli_by_group_without_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With --by, a group left with no study is reported (k = 0, nulls), the others pooled."""
    path = tmp_path / "groups.csv"
    path.write_text(
        "study,events_trt,n_trt,events_ctl,n_ctl,outcome\n"
        "A,1,10,2,10,x\nB,0,10,0,10,y\nC,3,10,2,10,x\n",
        encoding="utf-8",
    )
    code = cli.main(
        ["pool", str(path), "--measure", "RR", "--method", "MH", "--by", "outcome", "--json"]
    )
    captured = capsys.readouterr()
    assert code == 0
    rows = {row["outcome"]: row for row in json.loads(captured.out)}
    assert rows["x"]["k"] == 2 and rows["x"]["estimate"] is not None
    assert rows["y"]["k"] == 0 and rows["y"]["estimate"] is None
    assert "not estimable" in captured.err
