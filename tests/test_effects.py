"""Tests of bayesmtor.effects against R metafor::escalc().

Reference values: tests/reference/escalc_reference.json, written once by
tests/reference/escalc_reference.R (R metafor 3.8-1; the exact R call of each case is stored
with it). The datasets are public examples from R package metadat, copied to
tests/reference/datasets/ (citations in the README there and in the JSON).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayesmtor import config
from bayesmtor.effects import (
    REASON_NO_CI,
    EffectSizes,
    continuity_correction,
    escalc,
    log_or,
    log_ratio_from_ci,
    log_rr,
    risk_difference,
)
from bayesmtor.errors import InputError
from bayesmtor.inputs import read_meta_data

# Same closed-form formulas as escalc; the JSON stores 15 significant digits.
TOL_METAFOR = 1e-10
# 1.959964 is norm.ppf(0.975) rounded to 7 significant digits (relative error < 2e-7).
TOL_Z_ROUNDED = 1e-6

REFERENCE = Path(__file__).resolve().parent / "reference"
_REF = json.loads((REFERENCE / "escalc_reference.json").read_text(encoding="utf-8"))
_LOW_LEVEL = {"RR": log_rr, "OR": log_or, "RD": risk_difference}


def _as_float(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _dataset(name: str):
    return read_meta_data(REFERENCE / _REF["datasets"][name]["csv"])


def _case_id(case: dict) -> str:
    return f"{case['dataset']}-{case['measure']}-add{case['add']:g}-{case['to']}-drop00{case['drop00']}"


@pytest.mark.parametrize("case", _REF["cases"], ids=_case_id)
def test_escalc_matches_metafor(case: dict) -> None:
    es = escalc(
        _dataset(case["dataset"]),
        case["measure"],
        add=case["add"],
        to=case["to"],
        drop00=case["drop00"],
    )
    assert es.table["study"].tolist() == case["study"]
    yi_ref = _as_float(case["yi"])
    vi_ref = _as_float(case["vi"])
    yi = es.table["yi"].to_numpy(dtype=float)
    vi = es.table["vi"].to_numpy(dtype=float)
    np.testing.assert_array_equal(np.isnan(yi), np.isnan(yi_ref))
    np.testing.assert_allclose(yi, yi_ref, rtol=0, atol=TOL_METAFOR, equal_nan=True)
    np.testing.assert_allclose(vi, vi_ref, rtol=0, atol=TOL_METAFOR, equal_nan=True)
    # Rows that escalc returns as NA are exactly the rows we exclude, with a stated reason.
    assert (~es.table["included"]).tolist() == np.isnan(yi_ref).tolist()
    assert {s for s, _ in es.dropped} == {
        s for s, y in zip(case["study"], case["yi"], strict=True) if y is None
    }


def test_defaults_are_revman_rule() -> None:
    """Default = config: add 1/2 to studies with a zero cell, drop double zeros for ratios."""
    assert (config.defaults["cc_add"], config.defaults["cc_to"], config.defaults["drop00"]) == (
        0.5,
        "only0",
        True,
    )
    data = _dataset("yusuf1985")
    for measure, drop00 in (("RR", True), ("OR", True), ("RD", False)):
        ref = next(
            c
            for c in _REF["cases"]
            if c["dataset"] == "yusuf1985"
            and c["measure"] == measure
            and (c["add"], c["to"], c["drop00"]) == (0.5, "only0", drop00)
        )
        es = escalc(data, measure)
        assert es.drop00 is drop00
        np.testing.assert_allclose(
            es.table["yi"], _as_float(ref["yi"]), rtol=0, atol=TOL_METAFOR, equal_nan=True
        )


def test_double_zero_reason_and_corrected_cells() -> None:
    es = escalc(_dataset("nielweise2007"), "OR")
    row = es.table.set_index("study").loc["Yucel 2004"]
    assert not row["included"]
    assert "double-zero" in row["exclusion_reason"]
    assert ("Yucel 2004", row["exclusion_reason"]) in es.dropped
    bach = es.table.set_index("study").loc["Bach 1996"]  # 0/116 vs 3/117: corrected
    assert (bach["ai"], bach["bi"], bach["ci"], bach["di"]) == (0.5, 116.5, 3.5, 114.5)
    assert (bach["n1i"], bach["n2i"], bach["cc_add"]) == (117.0, 118.0, 0.5)
    heard = es.table.set_index("study").loc["Heard 1998"]  # no zero cell: untouched
    assert (heard["ai"], heard["n1i"], heard["cc_add"]) == (5.0, 151.0, 0.0)
    assert es.k == 17 and len(es.included()) == 17
    assert "dropped=['Yucel 2004']" in repr(es)


@pytest.mark.parametrize("measure", ["RR", "OR", "RD"])
def test_low_level_functions_broadcast_over_meta_analyses(measure: str) -> None:
    """(m, k) arrays: each row is one meta-analysis; only0 acts per element, if0all per row."""
    frame = _dataset("nielweise2007").frame
    arrays = [frame[c].to_numpy() for c in ("events_trt", "n_trt", "events_ctl", "n_ctl")]
    bcg = _dataset("bcg").frame.iloc[:13]
    arrays_bcg = [bcg[c].to_numpy() for c in ("events_trt", "n_trt", "events_ctl", "n_ctl")]
    k = 13
    stacked = [np.stack([a[:k], b]) for a, b in zip(arrays, arrays_bcg, strict=True)]
    func = _LOW_LEVEL[measure]
    for to in ("only0", "if0all", "all"):
        two_d = func(*stacked, add=0.5, to=to, drop00=True)
        assert two_d.yi.shape == (2, k)
        for row in range(2):
            one_d = func(*(s[row] for s in stacked), add=0.5, to=to, drop00=True)
            np.testing.assert_array_equal(two_d.yi[row], one_d.yi)
            np.testing.assert_array_equal(two_d.vi[row], one_d.vi)
    # bcg has no zero cell, so if0all leaves its row uncorrected while correcting row 0.
    cells = continuity_correction(*stacked, add=0.5, to="if0all", drop00=True)
    assert np.all(cells.added[1] == 0.0) and np.all(cells.added[0] == 0.5)
    # Scalars broadcast against arrays.
    res = func(np.array([0, 3]), 20, np.array([2, 0]), 20)
    assert res.yi.shape == (2,)


def test_to_none_marks_zero_cells_not_estimable() -> None:
    es = escalc(_dataset("nielweise2007"), "RR", to="none", drop00=False)
    row = es.table.set_index("study").loc["Bach 1996"]
    assert not row["included"] and math.isnan(row["yi"])
    assert "not estimable" in row["exclusion_reason"]
    # RD of a double-zero study without correction is 0 with variance 0: not weightable.
    rd = escalc(_dataset("nielweise2007"), "RD", to="none", drop00=False)
    yucel = rd.table.set_index("study").loc["Yucel 2004"]
    assert yucel["vi"] == 0.0 and not yucel["included"]
    assert rd.table.set_index("study").loc["Bach 1996", "included"]


def test_z_is_1_959964() -> None:
    assert stats.norm.ppf(0.975) == pytest.approx(1.959964, abs=TOL_Z_ROUNDED)
    assert stats.norm.ppf(0.975) == pytest.approx(_REF["ratio_ci"]["qnorm_0975"], abs=1e-13)


def test_se_from_ci_hortobagyi_2011() -> None:
    """PFS HR 0.44 (95% CI 0.36-0.53), Hortobagyi et al. 2011 / BOLERO-2, Table 1 of the
    2014 mTOR meta-analysis (seeds/mtor_meta_analysis_2014.txt)."""
    res = log_ratio_from_ci(0.44, 0.36, 0.53)
    expected_se = (math.log(0.53) - math.log(0.36)) / (2 * 1.959964)
    assert float(res.yi) == pytest.approx(math.log(0.44), abs=1e-15)
    assert math.sqrt(float(res.vi)) == pytest.approx(expected_se, rel=TOL_Z_ROUNDED)


def test_ratio_ci_route_matches_r() -> None:
    ref = _REF["ratio_ci"]
    df = pd.DataFrame({k: ref[k] for k in ("study", "estimate", "ci_low", "ci_high")})
    before = df.copy(deep=True)
    es = escalc(df, "HR")
    pd.testing.assert_frame_equal(df, before)
    assert es.measure == "HR" and es.scale == "log"
    np.testing.assert_allclose(es.table["yi"], ref["yi"], rtol=0, atol=TOL_METAFOR)
    np.testing.assert_allclose(es.table["vi"], ref["vi"], rtol=0, atol=TOL_METAFOR)
    ratio = es.to_ratio()
    # exp(yi +- 1.96 sei) gives back the published bounds up to their 2-decimal rounding.
    np.testing.assert_allclose(ratio["HR lower 95%"], ref["ci_low"], atol=0.006)
    np.testing.assert_allclose(ratio["HR upper 95%"], ref["ci_high"], atol=0.006)


def test_ratio_without_ci_is_kept_but_excluded() -> None:
    """Novartis / BOLERO-2 reports PFS HR 0.45 without a CI (Table 1 of the 2014 seed)."""
    df = pd.DataFrame(
        {
            "study": ["Hortobagyi 2011", "Novartis BOLERO-2"],
            "estimate": [0.44, 0.45],
            "ci_low": [0.36, np.nan],
            "ci_high": [0.53, np.nan],
            "outcome": ["pfs", "pfs"],
        }
    )
    es = escalc(df, "HR")
    row = es.table.set_index("study").loc["Novartis BOLERO-2"]
    assert not row["included"] and row["exclusion_reason"] == REASON_NO_CI
    assert row["yi"] == pytest.approx(math.log(0.45))
    assert es.dropped == (("Novartis BOLERO-2", REASON_NO_CI),)
    assert es.table["outcome"].tolist() == ["pfs", "pfs"]
    assert es.included()["study"].tolist() == ["Hortobagyi 2011"]


def test_log_se_shape_and_summary() -> None:
    df = pd.DataFrame({"study": ["a", "b"], "yi": [-0.8, 0.1], "sei": [0.1, 0.2]})
    es = escalc(df)
    assert isinstance(es, EffectSizes) and es.measure == "generic"
    np.testing.assert_allclose(es.table["vi"], [0.01, 0.04], rtol=1e-15)
    summary = es.summary(ci_prob=0.9)
    assert list(summary.columns) == [
        "study",
        "estimate",
        "estimate lower 90%",
        "estimate upper 90%",
        "yi",
        "sei",
        "included",
        "exclusion_reason",
    ]


def test_rd_is_not_a_ratio() -> None:
    es = escalc(_dataset("bcg"), "RD")
    assert es.scale == "identity"
    with pytest.raises(InputError, match="not a ratio"):
        es.to_ratio()


@pytest.mark.parametrize(
    ("frame", "measure", "match"),
    [
        (pd.DataFrame({"study": ["a"], "yi": [0.1], "sei": [0.1]}), "RD", "cannot be computed"),
        (
            pd.DataFrame(
                {"study": ["a"], "events_trt": [1], "n_trt": [9], "events_ctl": [2], "n_ctl": [9]}
            ),
            "HR",
            "cannot be computed",
        ),
    ],
)
def test_measure_must_fit_shape(frame: pd.DataFrame, measure: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        escalc(frame, measure)


def test_bad_zero_cell_option() -> None:
    with pytest.raises(InputError, match="zero-cell option"):
        escalc(_dataset("bcg"), "RR", to="sometimes")
