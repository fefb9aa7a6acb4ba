"""``result.plot_forest()`` / ``result.plot_funnel()`` on a user's data: the Axes returned, the
RevMan columns (counts, weights, estimates), footnotes and favours labels, the weights against
R metafor's ``weights()``, and SVG files that keep their text as text."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes

import bayesmtor as bm
from bayesmtor.errors import InputError
from bayesmtor.reporting.figures import figure_bytes
from bayesmtor.reporting.result_plots import heterogeneity_line, overall_effect_line, p_text

REFERENCE = Path(__file__).parent / "reference"
DATASETS = REFERENCE / "datasets"
#: weights are sums and ratios of a few products: agreement to rounding error.
WEIGHT_RTOL = 1e-9


def _es(name: str = "bcg", measure: str = "RR") -> bm.EffectSizes:
    frame = pd.read_csv(DATASETS / f"{name}.csv")
    return bm.escalc(bm.read_meta_data(frame), measure=measure)


def _texts(ax: Axes) -> list[str]:
    return [t.get_text().replace(r"\$", "$") for t in ax.texts]


def _fit(key: str) -> bm.PoolResult:
    ds, measure, method, *rest = key.split("_")
    es = _es(ds, measure)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "MH":
            return bm.rma_mh(es, mh_correction=rest[0])
        if method == "PETO":
            return bm.rma_peto(es)
        return bm.rma(es, method=method)


_REF = json.loads((REFERENCE / "weights_reference.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("key", [k for k in _REF if not k.startswith("_")])
def test_weights_match_metafor(key: str) -> None:
    """Each study's weight in percent is metafor's ``weights(fit)``. metafor keeps a
    double-zero table in rma.mh()/rma.peto() with weight 0; bayesmtor leaves it out (weight
    NaN, listed as not estimable), so those entries are compared as 0."""
    ref = _REF[key]
    res = _fit(key)
    assert res.data is not None
    frame = res.data.frame()
    got = frame["weight"].to_numpy(float)
    expected = np.array([np.nan if w is None else w for w in ref["weights"]], dtype=float)
    if expected.size < got.size:  # metafor's weights() omits the studies rma() dropped
        assert np.isnan(got).sum() == got.size - expected.size
        got = got[np.isfinite(got)]
    got = np.where(np.isnan(got) & (expected == 0), 0.0, got)
    np.testing.assert_allclose(got, expected, rtol=WEIGHT_RTOL, atol=1e-12)
    assert math.isclose(np.nansum(got), 100.0, rel_tol=1e-12)


def test_frequentist_forest_on_bcg() -> None:
    res = bm.rma(_es(), method="REML")
    ax = res.plot_forest(title="BCG vaccine", treatment="vaccine", control="no vaccine")
    assert isinstance(ax, Axes)
    texts = _texts(ax)
    for study in pd.read_csv(DATASETS / "bcg.csv")["study"]:
        assert study in texts
    # counts per arm, weight, estimate [interval] on the ratio scale
    assert "123" in texts and "13598" in texts and "5.1%" in texts
    assert "0.41 [0.13, 1.26]" in texts  # Aronson 1948: RR 4/123 vs 11/139
    assert "100.0%" in texts and "Vaccine" in texts and "No vaccine" in texts
    assert heterogeneity_line(res) in texts and overall_effect_line(res) in texts
    assert "Favours vaccine" in texts and "Favours no vaccine" in texts
    assert ax.get_title(loc="left") == "BCG vaccine"
    pooled = next(t for t in texts if t.startswith("Total (95% CI)"))
    assert "REML" in pooled
    assert any(t.startswith("Prediction interval") for t in texts)
    assert not any(t.startswith("–") or t.startswith("[") for t in texts)


def test_heterogeneity_and_overall_effect_lines() -> None:
    res = bm.rma(_es(), method="REML")
    line = heterogeneity_line(res)
    assert line.startswith("Heterogeneity: Tau² = ")
    assert f"Chi² = {res.Q:.2f}, df = 12 (P < 0.00001)" in line
    assert line.endswith(f"I² = {res.I2:.0f}%")
    assert (
        overall_effect_line(res)
        == f"Test for overall effect: Z = {abs(res.zval):.2f} ({p_text(res.pval)})"
    )
    mh = bm.rma_mh(_es())
    assert "Tau²" not in heterogeneity_line(mh)  # fixed effect: no tau
    assert p_text(0.28) == "P = 0.28" and p_text(0.004) == "P = 0.004"
    assert p_text(3e-4) == "P = 0.0003" and p_text(1e-7) == "P < 0.00001"
    knha = bm.rma(_es(), method="REML", test="knha")
    assert overall_effect_line(knha).startswith("Test for overall effect: t = ")
    assert ", df = 12 (" in overall_effect_line(knha)


def test_favours_side_follows_benefit() -> None:
    res = bm.rma(_es(), method="DL")
    ax = res.plot_forest(treatment="A", control="B", benefit="higher")
    left = next(t for t in ax.texts if t.get_text() == "Favours B")
    right = next(t for t in ax.texts if t.get_text() == "Favours A")
    assert left.get_ha() == "right" and right.get_ha() == "left"  # B left of the null line
    with pytest.raises(InputError, match="benefit"):
        res.plot_forest(benefit="up")


def test_single_study_is_drawn_as_a_study() -> None:
    es = bm.escalc(bm.read_meta_data(pd.read_csv(DATASETS / "bcg.csv").iloc[:1]), measure="RR")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bm.rma(es, method="REML")
        post = bm.bayesmeta(es)
    for ax in (res.plot_forest(), post.plot_forest()):
        texts = _texts(ax)
        assert "Aronson 1948" in texts
        assert not any(t.startswith(("Total (", "Pooled", "Prediction")) for t in texts)
        assert any(t.startswith("One study") for t in texts)
        assert not any(type(p).__name__ == "Polygon" for p in ax.patches)  # no diamond


def test_bayesian_forest_and_funnel() -> None:
    post = bm.bayesmeta(_es())
    ax = post.plot_forest(title="BCG, Bayesian")
    texts = _texts(ax)
    assert any(t.startswith("Pooled, Bayesian") for t in texts)
    assert any(t.startswith("Total (95% CI), random effects, REML") for t in texts)
    assert any(t.startswith("Bayesian (τ ~ ") and "P(RR < 1)" in t for t in texts)
    assert "% (REML)" in texts  # the weights are the frequentist model's, and say so
    assert any(t.startswith("Prediction, new study") for t in texts)
    ax = post.plot_funnel()
    assert isinstance(ax, Axes) and ax.get_xscale() == "log"
    ax = bm.rma(_es(), method="REML").plot_funnel(title="BCG funnel")
    assert ax.get_title() == "BCG funnel"


def test_given_axes_is_used_and_returned() -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 6))
    ax0 = fig.add_axes((0.55, 0.2, 0.25, 0.6))
    assert bm.rma_mh(_es()).plot_forest(ax=ax0) is ax0
    fig2 = Figure()
    ax1 = fig2.add_subplot()
    assert bm.rma_peto(_es(measure="OR")).plot_funnel(ax=ax1) is ax1


def test_svg_keeps_study_labels_as_text() -> None:
    ax = bm.rma(_es(), method="REML").plot_forest()
    data = figure_bytes(ax.figure)
    svg = data["svg"].decode("utf-8")
    assert "<text" in svg
    assert "Ferguson &amp; Simes 1949" in svg  # a study label, kept as text (escaped XML)
    assert data["png"][:8] == b"\x89PNG\r\n\x1a\n"


def test_result_without_study_data_refuses() -> None:
    from bayesmtor.frequentist import pool_groups

    table = pool_groups(
        pd.read_csv(DATASETS / "bcg.csv").assign(g=lambda f: ["a"] * 6 + ["b"] * 7),
        by=["g"],
        measure="RR",
    )
    assert len(table) == 2
    res = bm.rma([0.1, 0.2, 0.3], sei=[0.1, 0.2, 0.1])
    assert res.data is not None and res.data.labels == ("1", "2", "3")
    import dataclasses

    with pytest.raises(InputError, match="no study data"):
        dataclasses.replace(res, data=None).plot_forest()


# --------------------------------------------------------------------------------------------
# bayesmtor pool --plot
# --------------------------------------------------------------------------------------------
def _pool(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from bayesmtor.cli import main

    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("suffix", [".png", ".SVG"])
def test_pool_plot_writes_the_forest_plot(tmp_path: Path, capsys, suffix: str) -> None:
    target = tmp_path / f"bcg{suffix}"
    target.write_bytes(b"old")  # an explicit output path is replaced (atomically)
    code, out, err = _pool(
        [
            "pool",
            str(DATASETS / "bcg.csv"),
            "--measure",
            "RR",
            "--method",
            "MH",
            "--json",
            "--plot",
            str(target),
        ],
        capsys,
    )
    assert code == 0
    assert json.loads(out)["method"] == "MH"  # stdout holds the result only
    assert f"forest plot written to {target}" in err
    data = target.read_bytes()
    if suffix == ".png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        from matplotlib.image import imread

        height, width = imread(target).shape[:2]
        assert width > 800 and height > 300
    else:
        text = data.decode("utf-8")
        assert text.lstrip().startswith("<?xml") and "</svg>" in text
        assert "Aronson 1948" in text and "<text" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temporary left


def test_pool_bayes_plot(tmp_path: Path, capsys) -> None:
    target = tmp_path / "bayes.svg"
    code, _, _ = _pool(
        ["pool", str(DATASETS / "bcg.csv"), "--measure", "OR", "--bayes", "--plot", str(target)],
        capsys,
    )
    assert code == 0
    text = target.read_text(encoding="utf-8")
    assert "Pooled, Bayesian" in text and "Favours treatment" in text


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--plot", "out.pdf"], "unknown suffix '.pdf'"),
        (["--plot", "out"], "unknown suffix '(none)'"),
        (["--plot", "x.png", "--by", "study"], "with --by"),
        (["--plot", "x.png", "--mods", "n_trt"], "not a meta-regression"),
    ],
)
def test_pool_plot_refusals(tmp_path: Path, capsys, monkeypatch, extra, match: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _pool(["pool", str(DATASETS / "bcg.csv"), "--measure", "RR", *extra], capsys)
    assert code == 2 and out == ""
    assert match in err
    assert list(tmp_path.iterdir()) == []  # refused before anything is computed or written


def _extents(ax: Axes) -> list[tuple[str, object]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(ax.figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    return [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts if t.get_text()]


def _assert_no_overlaps(ax: Axes) -> None:
    """No two texts of the table overlap, and none (but "Favours ...") runs into the plot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    boxes = _extents(ax)
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1 :]:
            assert not box_a.overlaps(box_b), f"{a!r} overlaps {b!r}"
    canvas = FigureCanvasAgg(ax.figure)
    canvas.draw()
    plot_box = ax.get_window_extent(canvas.get_renderer())
    for text, box in boxes:
        if not text.startswith("Favours"):
            assert not (
                box.x0 < plot_box.x1 - 1 and box.x1 > plot_box.x0 + 1 and box.y0 > plot_box.y0 + 1
            ), text


@pytest.mark.parametrize("k", [1, 2, 7, 30])
def test_forest_texts_never_overlap(k: int) -> None:
    """Synthetic counts (not data) with long study names: no two texts of the table overlap,
    and nothing overlaps the interval plot."""
    rng = np.random.default_rng(k)
    n = rng.integers(20, 2000, size=(k, 2))
    frame = pd.DataFrame(
        {
            "study": [f"Study {i + 1}: a long trial name ({2000 + i}) et al." for i in range(k)],
            "events_trt": rng.integers(1, 19, k),
            "n_trt": n[:, 0],
            "events_ctl": rng.integers(1, 19, k),
            "n_ctl": n[:, 1],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bm.rma(bm.escalc(bm.read_meta_data(frame), measure="OR"), method="REML")
    ax = res.plot_forest(title="Synthetic", treatment="new drug", control="placebo")
    _assert_no_overlaps(ax)


def test_funnel_contours_and_legend_outside() -> None:
    res = bm.rma(_es(), method="REML")
    ax = res.plot_funnel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "0.05 < p < 0.1" in legend and "0.01 < p < 0.05" in legend and "p < 0.01" in legend
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(ax.figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    legend_box = ax.get_legend().get_window_extent(renderer)
    assert legend_box.x0 >= ax.get_window_extent(renderer).x1  # beside the axes: covers no point


@pytest.mark.slow
@pytest.mark.mcmc
def test_pool_mcmc_plot_uses_the_fit(tmp_path: Path, capsys) -> None:
    """``--engine mcmc --plot``: the forest plot of the MCMC fit itself (no second fit)."""
    target = tmp_path / "mcmc.svg"
    small = tmp_path / "bcg4.csv"
    pd.read_csv(DATASETS / "bcg.csv").iloc[:4].to_csv(small, index=False)
    code, _, _ = _pool(
        [
            "pool",
            str(small),
            "--measure",
            "RR",
            "--bayes",
            "--engine",
            "mcmc",
            "--seed",
            "3",
            "--plot",
            str(target),
        ],
        capsys,
    )
    assert code == 0
    text = target.read_text(encoding="utf-8")
    assert (
        "Pooled, Bayesian" in text and "Bayesian (τ ~ " in text and "Hart &amp; Sutherland" in text
    )


BREADTH_BCG = REFERENCE / "breadth_datasets" / "bcg.csv"  # with the allocation column
_BREADTH = json.loads((REFERENCE / "breadth_reference.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("method", ["REML", "DL"])
def test_subgroup_forest_matches_metafor(method: str) -> None:
    """Under each subgroup's heading (sorted as text) its studies, a subtotal and its lines;
    then the overall fit and the test for subgroup differences. Subtotals and the test equal
    R metafor's per-subgroup rma() fits and Q_between (tests/reference/breadth_reference.json),
    as printed to two decimals; no two texts overlap, none runs into the interval plot."""
    from bayesmtor.reporting.result_plots import subgroup_forest

    ref = _BREADTH["references"][f"bcg/RR/{method}/subgroup_alloc"]["values"]
    es = bm.escalc(bm.read_meta_data(BREADTH_BCG), measure="RR")
    ax = subgroup_forest(es, "alloc", method=method, title="BCG")
    texts = _texts(ax)
    headings = [t for t in texts if t.startswith("alloc: ")]
    assert headings == [f"alloc: {s['level']}" for s in ref["subgroups"]]
    assert headings == sorted(headings)
    ys = {t.get_text(): t.get_position()[1] for t in ax.texts}
    assert [ys[h] for h in headings] == sorted(ys[h] for h in headings)  # top to bottom
    subtotals = [t for t in ax.texts if t.get_text() == "Subtotal (95% CI)"]
    assert len(subtotals) == len(ref["subgroups"])
    for s in ref["subgroups"]:
        shown = f"{math.exp(s['estimate']):.2f} [{math.exp(s['ci_low']):.2f}, "
        shown += f"{math.exp(s['ci_high']):.2f}]"
        assert shown in texts, shown
    q, df, p = ref["Q_between"], ref["Q_between_df"], ref["Q_between_pval"]
    line = next(t for t in texts if t.startswith("Test for subgroup differences"))
    assert f"Chi² = {q:.2f}, df = {df:.0f} (P = {p:.2f})" in line
    assert any(t.startswith("Total (95% CI)") for t in texts)
    _assert_no_overlaps(ax)


def test_pool_subgroup_plot(tmp_path: Path, capsys) -> None:
    """pool --subgroup COL --plot draws the subgroup forest plot; the JSON is unchanged."""
    target = tmp_path / "sub.svg"
    argv = ["pool", str(BREADTH_BCG), "--measure", "RR", "--subgroup", "alloc", "--json"]
    code, plain, _ = _pool(argv, capsys)
    code2, out, err = _pool([*argv, "--plot", str(target)], capsys)
    assert code == code2 == 0 and out == plain
    assert f"subgroup forest plot written to {target}" in err
    text = target.read_text(encoding="utf-8")
    assert "Test for subgroup differences" in text and "alloc: random" in text
    assert text.count("Subtotal (95% CI)") == 3
