"""The vocabulary: name sets and the shared numerics (normal quantile, probability check)."""

from __future__ import annotations

import math
import re
import typing
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from bayesmtor import vocabulary as voc
from bayesmtor.errors import InputError

#: z_quantile against scipy's norm.ppf: both are correctly rounded to within a couple of ulps
#: (|z| < 6 for the probabilities tested, so 2e-15 absolute is ~4 ulps).
Z_TOL = 2e-15


@pytest.mark.parametrize(
    ("alias", "values"),
    [
        (voc.Measure, voc.MEASURES),
        (voc.Shape, voc.SHAPES),
        (voc.Method, voc.METHODS),
        (voc.Test, voc.TESTS),
        (voc.Engine, voc.ENGINES),
        (voc.IntervalKind, voc.INTERVAL_KINDS),
        (voc.Comparison, voc.COMPARISONS),
        (voc.Unit, voc.UNITS),
    ],
)
def test_literal_alias_and_tuple_name_the_same_values(alias, values) -> None:
    assert typing.get_args(alias) == values
    assert len(set(values)) == len(values)


def test_name_sets_nest_as_documented() -> None:
    assert set(voc.RATIO_MEASURES) < set(voc.MEASURES)
    assert set(voc.COUNT_MEASURES) < set(voc.MEASURES)
    assert voc.METHODS == voc.FE_METHODS + voc.RE_METHODS
    assert set(voc.COUNT_METHODS) < set(voc.FE_METHODS)
    assert voc.TAU2_ESTIMATORS == voc.RE_METHODS
    assert set(voc.SHAPE_MEASURES) == set(voc.SHAPES)
    for shape, allowed in voc.SHAPE_MEASURES.items():
        assert set(allowed) <= set(voc.MEASURES), shape
    assert voc.SHAPE_MEASURES["counts"] == voc.COUNT_MEASURES
    with pytest.raises(TypeError):
        voc.SHAPE_MEASURES["counts"] = ("HR",)  # type: ignore[index]


def test_is_ratio() -> None:
    assert [m for m in voc.MEASURES if voc.is_ratio(m)] == ["RR", "OR", "HR"]
    assert not voc.is_ratio(None)


def test_z_quantile_of_95_percent() -> None:
    # R: sprintf("%.17g", qnorm(0.975)) prints 1.9599639845400536: the same double, to the bit
    # (AS 241 both). "%.16g" prints 1.959963984540054, which as a literal is another double, two
    # ulps higher: scipy.special.ndtri's value.
    assert voc.z_quantile(0.95) == 1.9599639845400536
    assert voc.z_quantile(0.95).hex() == "0x1.f5c0331eeff82p+0"


@pytest.mark.parametrize("p", [1e-9, 0.01, 0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 1 - 1e-9])
def test_z_quantile_matches_scipy(p) -> None:
    assert abs(voc.z_quantile(p) - stats.norm.ppf(0.5 + p / 2)) <= Z_TOL


def test_z_quantile_matches_scipy_on_a_fine_grid() -> None:
    ps = np.linspace(0.001, 0.999, 999)
    ours = np.array([voc.z_quantile(float(p)) for p in ps])
    assert np.max(np.abs(ours - stats.norm.ppf(0.5 + ps / 2))) <= Z_TOL
    assert np.all(np.diff(ours) > 0)


@pytest.mark.parametrize("bad", [0, 1, 0.0, 1.0, -0.1, 1.5, math.nan, math.inf, "0.95", None, True])
def test_check_prob_refuses_with_one_wording(bad) -> None:
    with pytest.raises(InputError, match=r"'level' must be a number strictly between 0 and 1") as e:
        voc.check_prob(bad, "level")
    assert e.value.column == "level"
    with pytest.raises(InputError, match=r"'ci_prob' must be a number strictly between 0 and 1"):
        voc.z_quantile(bad)


def test_check_prob_returns_a_float() -> None:
    out = voc.check_prob(np.float32(0.5), "ci_prob")
    assert type(out) is float and out == 0.5


# ---------------------------------------------------------------------------------------------
# nobody re-derives what the vocabulary names
# ---------------------------------------------------------------------------------------------

SRC = Path(__file__).resolve().parents[1] / "src" / "bayesmtor"
_MEASURE = r'"(?:RR|OR|RD|HR|generic)"'
_METHOD = r'"(?:FE|MH|PETO|DL|REML|PM|ML|SJ|HE)"'
#: A tuple or list literal of three or more measures (or methods): a copy of a name set.
NAME_SET_LITERAL = re.compile(
    rf"[(\[]\s*(?:{_MEASURE}\s*,\s*){{2,}}{_MEASURE}|[(\[]\s*(?:{_METHOD}\s*,\s*){{2,}}{_METHOD}"
)
QUANTILE_TEXT = ("1.959963984540054", "1.9599639845400536", "norm.ppf(", "NormalDist")


def test_name_set_pattern_finds_copies_only() -> None:
    assert NAME_SET_LITERAL.search('MEASURES = ("RR", "OR", "RD", "HR", "generic")')
    assert NAME_SET_LITERAL.search('if m in ["DL", "REML", "PM"]:')
    assert not NAME_SET_LITERAL.search('if method in ("MH", "PETO"):')
    assert not NAME_SET_LITERAL.search('{"RR": log_rr, "OR": log_or, "RD": risk_difference}')


def _sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.name != "vocabulary.py")


def test_the_normal_quantile_is_derived_only_in_the_vocabulary() -> None:
    found = [
        f"{p.relative_to(SRC)}:{n}: {line.strip()}"
        for p in _sources()
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if any(text in line for text in QUANTILE_TEXT)
    ]
    assert not found, "use bayesmtor.vocabulary.z_quantile instead:\n" + "\n".join(found)


def test_measure_and_method_lists_are_spelled_only_in_the_vocabulary() -> None:
    found = [
        f"{p.relative_to(SRC)}:{n}: {line.strip()}"
        for p in _sources()
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if NAME_SET_LITERAL.search(line)
    ]
    assert not found, "use the tuples of bayesmtor.vocabulary instead:\n" + "\n".join(found)
