"""The HTML report is one self-contained file holding every promised section, figure and table."""

from __future__ import annotations

import base64
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from bayesmtor.errors import InputError
from bayesmtor.reporting.figures import save_figure
from bayesmtor.reporting.html import (
    ReportSection,
    format_number,
    inspect_html_report,
    render_html_report,
    write_html_report,
)

EVIL = '<script>alert("x")</script> & "quotes"'


@pytest.fixture(scope="module")
def figure_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    fig = Figure(figsize=(3, 2))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1])
    png, svg = save_figure(fig, tmp_path_factory.mktemp("figs") / "line")
    return png, svg


def _sections(png: Path, svg: Path) -> list[ReportSection]:
    table = pd.DataFrame({"study": ["A", EVIL], "estimate": [0.5123456, np.nan], "n": [10, 20]})
    return [
        ReportSection(
            id="pfs",
            title="Progression-free survival",
            text="First paragraph.\n\n- bullet one\n- bullet two",
            tables=(("Pooled hazard ratios", table),),
            figures=(("Forest plot (PNG)", png), ("Forest plot (SVG)", svg)),
        ),
        ReportSection(
            id="ae_any-stomatitis",
            title=f"Stomatitis {EVIL}",
            text=f"Text with {EVIL}",
            tables=((f"Caption {EVIL}", table.set_index("study")),),
            figures=((f"Figure {EVIL}", png),),
        ),
        ReportSection(id="notes", title="Notes"),
    ]


def test_report_contains_everything_and_is_self_contained(
    tmp_path: Path, figure_files: tuple[Path, Path]
) -> None:
    png, svg = figure_files
    meta = {
        "bayesmtor version": "0.1.0",
        "plan": "main",
        "priors": "tau ~ half-normal(0.5)",
        "data provenance": EVIL,
    }
    path = write_html_report(
        tmp_path / "out" / "report.html",
        title=f"Report {EVIL}",
        meta=meta,
        sections=_sections(png, svg),
    )
    info = inspect_html_report(path)
    assert info["title"] == f"Report {EVIL}"
    assert info["meta"] == meta
    assert info["section_ids"] == ["pfs", "ae_any-stomatitis", "notes"]
    assert info["toc_ids"] == info["section_ids"]
    assert info["figure_ids"] == ["pfs-figure-1", "pfs-figure-2", "ae_any-stomatitis-figure-1"]
    assert info["figure_captions"] == ["Forest plot (PNG)", "Forest plot (SVG)", f"Figure {EVIL}"]
    assert info["table_ids"] == ["pfs-table-1", "ae_any-stomatitis-table-1"]
    assert info["table_captions"] == ["Pooled hazard ratios", f"Caption {EVIL}"]
    assert info["n_images"] == 3
    assert info["all_images_embedded"]
    assert all(f["embedded"] for f in info["figures"])
    assert info["external_resources"] == []


def test_user_text_is_escaped(tmp_path: Path, figure_files: tuple[Path, Path]) -> None:
    png, svg = figure_files
    html_text = render_html_report(title=EVIL, meta={EVIL: EVIL}, sections=_sections(png, svg))
    assert "<script" not in html_text
    assert "&lt;script&gt;" in html_text
    assert "<ul><li>bullet one</li><li>bullet two</li></ul>" in html_text
    assert "0.5123" in html_text  # float formatting: 4 significant digits
    assert "<style>" in html_text and "http://" not in html_text and "https://" not in html_text


def test_embedded_images_round_trip(tmp_path: Path, figure_files: tuple[Path, Path]) -> None:
    png, svg = figure_files
    text = render_html_report(title="t", meta={}, sections=_sections(png, svg)[:1])
    png_b64 = base64.b64encode(png.read_bytes()).decode()
    svg_b64 = base64.b64encode(svg.read_bytes()).decode()
    assert f"data:image/png;base64,{png_b64}" in text
    assert f"data:image/svg+xml;base64,{svg_b64}" in text


def test_inspect_flags_external_resources(tmp_path: Path) -> None:
    path = tmp_path / "r.html"
    path.write_text(
        '<html><body><figure id="f"><img src="fig.png"><figcaption>c</figcaption></figure>'
        '<script src="https://cdn.example/x.js"></script></body></html>',
        encoding="utf-8",
    )
    info = inspect_html_report(path)
    assert not info["all_images_embedded"]
    assert info["figures"] == [{"id": "f", "caption": "c", "embedded": False}]
    assert "fig.png" in info["external_resources"]
    assert any("cdn.example" in r for r in info["external_resources"])


@pytest.mark.parametrize(
    ("sections", "match"),
    [
        ([ReportSection(id="a", title="A"), ReportSection(id="a", title="B")], "used twice"),
        ([ReportSection(id="1 bad", title="A")], "not a valid anchor"),
        ([ReportSection(id="a", title="A", tables=(("t", [1, 2]),))], "DataFrame"),  # type: ignore[arg-type]
        ([ReportSection(id="a", title="A", figures=(("f", Path("nope.png")),))], "cannot read"),
        ([ReportSection(id="a", title="A", figures=(("f", Path("f.pdf")),))], "only .png"),
    ],
)
def test_bad_sections_raise(sections: list[ReportSection], match: str) -> None:
    with pytest.raises(InputError, match=match):
        render_html_report(title="t", meta={}, sections=sections)


def test_failed_write_leaves_previous_report(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text("previous", encoding="utf-8")
    bad = [ReportSection(id="a", title="A", figures=(("f", tmp_path / "missing.png"),))]
    with pytest.raises(InputError):
        write_html_report(path, title="t", meta={}, sections=bad)
    assert path.read_text(encoding="utf-8") == "previous"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0123456, "0.01235"),
        (12345.6, "12346"),
        (0.95, "0.95"),
        (1.0, "1"),
        (-2.5e-7, "-2.50e-07"),
        (float("nan"), ""),
        (0.0, "0"),
    ],
)
def test_format_number(value: float, expected: str) -> None:
    assert format_number(value) == expected


def test_section_summary_and_repr(figure_files: tuple[Path, Path]) -> None:
    png, svg = figure_files
    sec = _sections(png, svg)[0]
    summary = sec.summary()
    assert list(summary.columns) == ["kind", "element_id", "caption"]
    assert summary["element_id"].tolist() == ["pfs-table-1", "pfs-figure-1", "pfs-figure-2"]
    assert "1 table(s), 2 figure(s)" in repr(sec)
