"""Figures render from small synthetic frames, label what they promise and save to PNG + SVG."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

from bayesmtor.errors import InputError
from bayesmtor.reporting import figures as plots
from bayesmtor.reporting.forest import forest_plot

# Synthetic values (not data): log hazard ratios of three made-up trials.
TRIALS = ["Trial A (2010)", "Trial B $5$ & <c>", "Trial C"]


def _forest_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label": TRIALS + TRIALS + ["Bayesian RE", "REML", "Prediction"],
            "kind": ["observed"] * 3
            + ["shrunken"] * 3
            + ["pooled_bayes", "pooled_freq", "predictive"],
            "estimate": np.log([0.5, 0.7, 1.1, 0.55, 0.72, 0.95, 0.7, 0.68, np.nan]),
            "low": np.log([0.35, 0.45, 0.8, 0.4, 0.5, 0.75, 0.5, 0.5, 0.3]),
            "high": np.log([0.7, 1.1, 1.5, 0.75, 1.0, 1.2, 0.95, 0.93, 1.6]),
            "weight": [40.0, 25.0, 35.0] + [np.nan] * 6,
        }
    )


def _ytick_texts(ax: Axes) -> list[str]:
    """The study column of a forest plot, top to bottom (or the y tick labels of other plots).

    "$" is escaped for matplotlib so that labels are never read as mathtext."""
    column = sorted((t.get_position()[1], t.get_text()) for t in ax.texts if t.get_gid() == "study")
    if column:
        return [text.replace(r"\$", "$") for _, text in column]
    return [t.get_text().replace(r"\$", "$") for t in ax.get_yticklabels()]


def _all_texts(ax: Axes) -> str:
    return "\n".join(t.get_text() for t in ax.texts)


def test_forest_plot_ratio_measure() -> None:
    rows = _forest_rows()
    before = rows.copy()
    ax = forest_plot(rows, measure="HR", title="PFS")
    pd.testing.assert_frame_equal(rows, before)  # caller's frame untouched
    assert isinstance(ax, Axes)
    assert isinstance(ax.figure, Figure)
    assert ax.get_xscale() == "log"
    assert set(rows["label"]) <= set(_ytick_texts(ax))  # every input label on the y axis
    assert len(_ytick_texts(ax)) == 6  # observed + shrunken share a line
    assert ax.get_title(loc="left") == "PFS"
    assert "Hazard ratio" in ax.get_xlabel()
    # Ticks are labelled with ratio values, and 1 (no effect) is among them.
    assert "1" in [t.get_text() for t in ax.get_xticklabels()]
    assert any(np.allclose(line.get_xdata(), [1.0, 1.0]) for line in ax.get_lines())
    texts = _all_texts(ax)
    assert "0.50 [0.35, 0.70]" in texts  # observed trial A on the ratio scale
    assert "0.70 [0.50, 0.95]" in texts  # Bayesian pooled row
    assert "HR [95% interval]" in texts
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [
        "Observed (study)",
        "Bayesian shrunken (study)",
        "Pooled, Bayesian",
        "Pooled, frequentist",
        "Predictive interval",
    ]


def test_forest_plot_risk_difference_linear_axis_and_given_ax() -> None:
    fig = Figure()
    ax0 = fig.add_subplot()
    rows = pd.DataFrame(
        {
            "label": ["T1", "T2", "Pooled"],
            "kind": ["observed", "observed", "pooled_freq"],
            "estimate": [0.05, -0.02, 0.01],
            "low": [-0.01, -0.08, -0.03],
            "high": [0.11, 0.04, 0.05],
        }
    )
    ax = forest_plot(rows, measure="rd", ax=ax0, ci_prob=0.9)
    assert ax is ax0
    assert ax.get_xscale() == "linear"
    assert _ytick_texts(ax) == ["T1", "T2", "Pooled"]
    assert "RD [90% interval]" in _all_texts(ax)
    assert any(np.allclose(line.get_xdata(), [0.0, 0.0]) for line in ax.get_lines())


def test_forest_plot_not_estimable_row() -> None:
    rows = pd.DataFrame(
        {
            "label": ["T1", "Prediction"],
            "kind": ["observed", "predictive"],
            "estimate": [0.1, np.nan],
            "low": [-0.2, np.nan],
            "high": [0.4, np.nan],
        }
    )
    ax = forest_plot(rows, measure="OR")
    assert "Not estimable" in _all_texts(ax)  # as RevMan prints it
    assert _ytick_texts(ax) == ["T1", "Prediction"]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda f: f.assign(kind=["observed", "oops"] + list(f["kind"][2:])), "unknown kind"),
        (lambda f: f.drop(columns="high"), "missing column"),
        (lambda f: f.assign(estimate=["x"] + list(f["estimate"][1:])), "not a number"),
        (lambda f: f.assign(low=f["high"] + 1), "above high"),
        (lambda f: pd.concat([f, f.iloc[[0]]]), "duplicate row"),
    ],
)
def test_forest_plot_input_errors(change, match: str) -> None:
    with pytest.raises(InputError, match=match):
        forest_plot(change(_forest_rows()), measure="OR")


def test_unknown_measure() -> None:
    with pytest.raises(InputError, match="unknown measure"):
        forest_plot(_forest_rows(), measure="NNT")


def test_funnel_plot() -> None:
    rng = np.random.default_rng(7)
    sei = rng.uniform(0.1, 0.5, 8)
    yi = rng.normal(-0.3, sei)
    labels = [f"T{i}" for i in range(8)]
    ax = plots.funnel_plot(yi, sei, estimate=-0.3, measure="OR", labels=labels)
    assert ax.get_xscale() == "log"
    lo, hi = ax.get_ylim()
    assert lo > hi == 0.0  # SE axis inverted, 0 at the top
    assert "Standard error" in ax.get_ylabel()
    assert [t.get_text() for t in ax.texts] == labels
    assert "Pseudo 95% limits" in [t.get_text() for t in ax.get_legend().get_texts()]
    # The dashed limits pass through exp(estimate +- 1.96 SE).
    z = stats.norm.ppf(0.975)
    limit = next(line for line in ax.get_lines() if line.get_linestyle() == "--")
    x, y = np.asarray(limit.get_xdata()), np.asarray(limit.get_ydata())
    np.testing.assert_allclose(np.log(x), -0.3 - z * y, rtol=1e-12)
    with pytest.raises(InputError, match="sei"):
        plots.funnel_plot([0.1, 0.2], [0.1, -1.0], estimate=0.0, measure="OR")


def test_tau_prior_posterior_plot() -> None:
    grid = np.linspace(0, 2, 101)
    prior = stats.halfnorm(scale=0.5).pdf(grid)
    post = stats.gamma(3, scale=0.1).pdf(grid)
    draws = stats.gamma(3, scale=0.1).rvs(2000, random_state=np.random.default_rng(3))
    ax = plots.tau_prior_posterior_plot(
        grid, prior, post, prior_label="half-normal(0.5)", posterior_draws=draws
    )
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Prior: half-normal(0.5)" in legend and "Posterior" in legend
    assert "Posterior (MCMC draws)" in legend
    assert "τ" in ax.get_xlabel() and ax.get_ylabel() == "Density"
    # Histogram heights are densities of all draws: area over the grid is <= 1 and close to 1.
    area = sum(p.get_height() * p.get_width() for p in ax.patches)
    assert 0.99 < area <= 1.0 + 1e-9
    with pytest.raises(InputError, match="increasing"):
        plots.tau_prior_posterior_plot(grid[::-1], prior, post)


def _sensitivity_table(with_analysis: bool) -> pd.DataFrame:
    priors = ["half-normal(0.5)", "half-normal(1)", "half-Cauchy(0.5)"]
    table = pd.DataFrame(
        {
            "prior": priors * 2,
            "mu_median": np.log([0.6, 0.59, 0.58, 0.55, 0.54, 0.53]),
            "mu_low": np.log([0.4, 0.35, 0.3, 0.3, 0.28, 0.2]),
            "mu_high": np.log([0.9, 1.0, 1.1, 1.0, 1.05, 1.4]),
            "tau_median": [0.3, 0.4, 0.45, 0.35, 0.45, 0.5],
            "analysis": ["all reports"] * 3 + ["one per trial"] * 3,
        }
    )
    return table if with_analysis else table.iloc[:3].drop(columns="analysis")


@pytest.mark.parametrize("with_analysis", [False, True])
def test_prior_sensitivity_plot(with_analysis: bool) -> None:
    table = _sensitivity_table(with_analysis)
    ax = plots.prior_sensitivity_plot(table, measure="OR")
    assert ax.get_xscale() == "log"
    assert _ytick_texts(ax) == ["half-normal(0.5)", "half-normal(1)", "half-Cauchy(0.5)"]
    texts = _all_texts(ax)
    assert "0.60 [0.40, 0.90]   τ 0.30" in texts
    if with_analysis:
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == ["all reports", "one per trial"]
    else:
        assert ax.get_legend() is None


def test_prior_sensitivity_duplicate_prior() -> None:
    table = _sensitivity_table(False)
    with pytest.raises(InputError, match="appears twice"):
        plots.prior_sensitivity_plot(pd.concat([table, table]), measure="OR")


def test_ratio_ticks_are_readable() -> None:
    ticks = plots._ratio_ticks(0.18, 2.2)
    assert 1.0 in ticks and 0.5 in ticks and 2.0 in ticks
    assert 4 <= len(ticks) <= 10
    wide = plots._ratio_ticks(1e-3, 1e3)
    assert all(math.isclose(math.log10(t), round(math.log10(t))) for t in wide)


def test_save_figure_png_and_svg(tmp_path: Path) -> None:
    ax = forest_plot(_forest_rows(), measure="HR")
    stem = tmp_path / "figs" / "forest_pfs.everolimus"
    paths = plots.save_figure(ax.figure, stem)
    assert [p.name for p in paths] == ["forest_pfs.everolimus.png", "forest_pfs.everolimus.svg"]
    png, svg = paths
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 5_000
    assert b"<svg" in svg.read_bytes()[:2_000]
    first_svg = svg.read_bytes()
    # The same figure drawn again from scratch gives the same SVG (no date, fixed id salt).
    plots.save_figure(forest_plot(_forest_rows(), measure="HR").figure, stem)
    assert svg.read_bytes() == first_svg
    assert sorted(p.name for p in stem.parent.iterdir()) == [p.name for p in paths]


def test_generic_measure_is_a_ratio_on_log_scale() -> None:
    rows = pd.DataFrame(
        {"label": ["T1"], "kind": ["observed"], "estimate": [0.1], "low": [-0.1], "high": [0.3]}
    )
    ax = forest_plot(rows, measure="generic")
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "Ratio (log scale)"
