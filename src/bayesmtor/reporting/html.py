"""A self-contained HTML report: one file, figures embedded, no external resources.

:func:`write_html_report` turns a title, a header of metadata (package version, plan, priors,
date, data provenance) and a sequence of :class:`ReportSection` into one HTML file that opens
offline in any browser: figures are embedded as base64 ``data:`` URIs (PNG and SVG alike, so an
SVG can neither run script nor clash with another figure's ids), tables come from
:meth:`pandas.DataFrame.to_html`, the stylesheet is inline and there is no JavaScript.
Every piece of text given by the caller is HTML-escaped.

:func:`inspect_html_report` reads such a file back with the standard-library HTML parser and
lists what it contains, so tests can check a report holds every section, figure and table it
promises and loads nothing from outside.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bayesmtor.errors import InputError
from bayesmtor.outcomes import comparison_label, outcome_info
from bayesmtor.reporting.atomic import atomic_write_text
from bayesmtor.reporting.findings import findings_table_html, flag_rules

if TYPE_CHECKING:
    from bayesmtor.pipeline.results import AnalysisResult, RunResult
    from bayesmtor.plans import Plan

__all__ = [
    "ReportSection",
    "analysis_title",
    "format_number",
    "inspect_html_report",
    "render_html_report",
    "run_report_meta",
    "run_report_sections",
    "write_html_report",
    "write_run_report",
]

_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]*$")
_MIME = {".png": "image/png", ".svg": "image/svg+xml"}

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       max-width: 1320px; margin: 1.2em auto; padding: 0 1.2em; line-height: 1.4; }
h1 { font-size: 1.6em; margin: 0 0 0.3em 0; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
details > summary { cursor: pointer; }
details > summary h2 { display: inline-block; border-bottom: none; margin: 0.6em 0 0.2em 0; }
section.collapsible { border-bottom: 1px solid #ddd; }
details.about, details.toc { margin: 0.3em 0; font-size: 0.92em; }
details.about dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.15em 1em;
                   background: #f7f7f7; padding: 0.8em 1em; border-radius: 4px; }
details.about dt { font-weight: 600; }
details.about dd { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; }
details.toc ol { columns: 2; }
p.lede { margin: 0.2em 0 0.6em 0; color: #333; }
dl.flags { font-size: 0.85em; display: grid; grid-template-columns: max-content 1fr;
           gap: 0.1em 1em; margin: 0.4em 0 1em 0; }
dl.flags dt { font-weight: 600; }
dl.flags dd { margin: 0; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; margin-top: 0.3em; }
.table-wrap { overflow-x: auto; margin: 1em 0; }
table.data { border-collapse: collapse; font-size: 0.82em; max-width: 100%; }
table.data caption { caption-side: top; text-align: left; font-weight: 600; padding: 0.3em 0; }
table.data th, table.data td { border-bottom: 1px solid #e3e3e3; padding: 0.25em 0.5em;
                               text-align: right; vertical-align: top;
                               overflow-wrap: anywhere; }
table.data th { background: #f3f3f3; }
table.data tbody th { text-align: left; }
table.data td.text, table.data th.text { text-align: left; }
table.findings { font-size: 0.9em; width: 100%; }
table.findings th, table.findings td { overflow-wrap: break-word; }
table.findings td.num { white-space: nowrap; }
table.findings tbody th { background: none; }
table.findings th.text { text-align: left; }
table.findings span.flag { white-space: nowrap; }
table.findings tr.group th { background: #e8eef5; text-align: left; font-size: 1.02em; }
footer { margin-top: 3em; font-size: 0.8em; color: #777; }
"""


@dataclass(frozen=True)
class ReportSection:
    """One section of the HTML report.

    Parameters
    ----------
    id : str
        Anchor id, unique within the report; a letter followed by letters, digits, ``_ . : -``.
    title : str
        Section heading (plain text).
    text : str, default ""
        Plain text. Blank lines separate paragraphs; lines starting with ``"- "`` form a bullet
        list. Everything is escaped: no HTML passes through.
    tables : tuple of (str, pandas.DataFrame)
        ``(caption, frame)`` pairs, rendered in order.
    figures : tuple of (str, Path)
        ``(caption, path)`` pairs; the path must be an existing ``.png`` or ``.svg`` file.
    collapsible : bool, default False
        Render the section as a ``<details>`` element, closed, its title as the summary line.
    html : str, default ""
        Markup built by bayesmtor's own renderers (which escape every text they insert, e.g.
        :func:`bayesmtor.reporting.findings.findings_table_html`), placed after the text and
        before the tables. Never pass text from elsewhere here.
    """

    id: str
    title: str
    text: str = ""
    tables: tuple[tuple[str, pd.DataFrame], ...] = field(default_factory=tuple)
    figures: tuple[tuple[str, Path], ...] = field(default_factory=tuple)
    collapsible: bool = False
    html: str = ""

    def __repr__(self) -> str:
        return (
            f"ReportSection(id={self.id!r}, title={self.title!r}, "
            f"{len(self.tables)} table(s), {len(self.figures)} figure(s))"
        )

    def summary(self) -> pd.DataFrame:
        """One row per table and figure: ``kind``, ``element_id``, ``caption``."""
        records = [
            {"kind": "table", "element_id": f"{self.id}-table-{i}", "caption": cap}
            for i, (cap, _) in enumerate(self.tables, start=1)
        ] + [
            {"kind": "figure", "element_id": f"{self.id}-figure-{i}", "caption": cap}
            for i, (cap, _) in enumerate(self.figures, start=1)
        ]
        return pd.DataFrame(records, columns=["kind", "element_id", "caption"])


# --------------------------------------------------------------------------------------------
# formatting helpers
# --------------------------------------------------------------------------------------------
def format_number(value: Any) -> str:
    """Format a float for a report table: 4 significant digits, no needless exponent.

    ``0.0123456 -> "0.01235"``, ``12345.6 -> "12346"``, ``1e-7 -> "1.00e-07"``, ``NaN -> ""``.
    """
    try:
        x = float(value)
    except (TypeError, ValueError):
        return html.escape(str(value))
    if math.isnan(x):
        return ""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    if -4 <= magnitude < 6:
        decimals = max(0, 3 - magnitude)
        out = f"{x:.{decimals}f}"
        if "." in out:
            out = out.rstrip("0").rstrip(".")
        return out
    return f"{x:.2e}"


def _text_to_html(text: str) -> str:
    """Plain text to escaped paragraphs and bullet lists."""
    blocks = re.split(r"\n\s*\n", str(text).strip()) if str(text).strip() else []
    parts: list[str] = []
    for block in blocks:
        lines = [ln.rstrip() for ln in block.splitlines() if ln.strip()]
        if lines and all(ln.lstrip().startswith("- ") for ln in lines):
            items = "".join(f"<li>{html.escape(ln.lstrip()[2:])}</li>" for ln in lines)
            parts.append(f"<ul>{items}</ul>")
        else:
            parts.append("<p>" + "<br>\n".join(html.escape(ln) for ln in lines) + "</p>")
    return "\n".join(parts)


def _table_to_html(frame: pd.DataFrame, caption: str, table_id: str, where: str) -> str:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(
            f"table {caption!r} is a {type(frame).__name__}, expected a pandas DataFrame",
            source=where,
        )
    show_index = not (
        isinstance(frame.index, pd.RangeIndex)
        and frame.index.start == 0
        and frame.index.step == 1
        and frame.index.name is None
    )
    body = frame.to_html(
        escape=True,
        index=show_index,
        float_format=format_number,
        na_rep="",
        border=0,
        classes="data",
        table_id=table_id,
        justify="right",
    )
    # Let long identifiers (ae_grade34-anorexia.everolimus_neoadjuvant.RR) wrap after their
    # underscores: only text between tags changes, never an attribute.
    body = re.sub(r">([^<]*)<", lambda m: ">" + m.group(1).replace("_", "_<wbr>") + "<", body)
    # to_html cannot write a caption: add it right after the opening tag.
    opening_end = body.index(">") + 1
    caption_html = f"\n  <caption>{html.escape(caption)}</caption>"
    return f'<div class="table-wrap">{body[:opening_end]}{caption_html}{body[opening_end:]}</div>'


def _figure_to_html(path: Path, caption: str, figure_id: str, where: str) -> str:
    path = Path(path)
    mime = _MIME.get(path.suffix.lower())
    if mime is None:
        raise InputError(
            f"figure {caption!r} is {path.name!r}; only .png and .svg files can be embedded",
            source=where,
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"figure {caption!r}: cannot read {str(path)!r} ({exc.strerror or exc})",
            source=where,
        ) from exc
    if not data:
        raise InputError(f"figure {caption!r}: file {str(path)!r} is empty", source=where)
    uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    cap = html.escape(caption)
    return (
        f'<figure id="{figure_id}">\n'
        f'  <img src="{uri}" alt="{cap}">\n'
        f"  <figcaption>{cap}</figcaption>\n"
        f"</figure>"
    )


def _validate_sections(sections: Sequence[ReportSection]) -> list[ReportSection]:
    out = list(sections)
    seen: set[str] = set()
    for i, sec in enumerate(out):
        if not isinstance(sec, ReportSection):
            raise InputError(
                f"sections[{i}] is a {type(sec).__name__}, expected a ReportSection",
                source="write_html_report",
            )
        if not isinstance(sec.id, str) or not _ID_RE.match(sec.id):
            raise InputError(
                f"section id {sec.id!r} is not a valid anchor; use a letter followed by "
                "letters, digits, '_', '.', ':' or '-'",
                source="write_html_report",
                row=i + 1,
            )
        if sec.id in seen:
            raise InputError(
                f"section id {sec.id!r} is used twice; ids must be unique",
                source="write_html_report",
                row=i + 1,
            )
        seen.add(sec.id)
    return out


# --------------------------------------------------------------------------------------------
# writer
# --------------------------------------------------------------------------------------------
def render_html_report(
    *, title: str, meta: Mapping[str, str], sections: Sequence[ReportSection]
) -> str:
    """The HTML text :func:`write_html_report` writes (see there)."""
    secs = _validate_sections(sections)
    esc = html.escape
    meta_rows = "\n".join(
        f"  <dt>{esc(str(k))}</dt><dd>{esc(str(v))}</dd>" for k, v in dict(meta).items()
    )
    toc = "\n".join(f'  <li><a href="#{s.id}">{esc(s.title)}</a></li>' for s in secs)
    body: list[str] = []
    for sec in secs:
        where = f"report section '{sec.id}'"
        heading = f"<h2>{esc(sec.title)}</h2>"
        if sec.collapsible:
            parts = [
                f'<section id="{sec.id}" class="collapsible">',
                f"<details>\n<summary>{heading}</summary>",
            ]
        else:
            parts = [f'<section id="{sec.id}">', heading]
        if sec.text:
            parts.append(_text_to_html(sec.text))
        if sec.html:
            parts.append(sec.html)
        for i, (caption, frame) in enumerate(sec.tables, start=1):
            parts.append(_table_to_html(frame, str(caption), f"{sec.id}-table-{i}", where))
        for i, (caption, fig_path) in enumerate(sec.figures, start=1):
            parts.append(_figure_to_html(fig_path, str(caption), f"{sec.id}-figure-{i}", where))
        if sec.collapsible:
            parts.append("</details>")
        parts.append("</section>")
        body.append("\n".join(parts))
    about = ", ".join(str(k) for k in list(dict(meta))[:4])
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<header>\n<h1>{esc(title)}</h1>\n"
        f'<details class="about">\n<summary>About this run ({esc(about)}, ...)</summary>\n'
        f'<dl class="meta">\n{meta_rows}\n</dl>\n</details>\n</header>\n'
        f'<nav id="toc">\n<details class="toc">\n<summary>Contents ({len(secs)} sections)'
        f"</summary>\n<ol>\n{toc}\n</ol>\n</details>\n</nav>\n"
        f"<main>\n{chr(10).join(body)}\n</main>\n"
        "<footer>Self-contained report written by bayesmtor; figures and tables are "
        "embedded.</footer>\n</body>\n</html>\n"
    )


def write_html_report(
    path: Path,
    *,
    title: str,
    meta: Mapping[str, str],
    sections: Sequence[ReportSection],
) -> Path:
    """Write one self-contained HTML report.

    Parameters
    ----------
    path : Path
        Output file (written atomically; the folder is created if needed).
    title : str
        Report title (``<title>`` and ``<h1>``).
    meta : Mapping[str, str]
        Header entries in order, e.g. package version, plan name, priors, date, data
        provenance. Keys and values are shown as plain text.
    sections : sequence of ReportSection
        Body sections; a table of contents links to each by its id.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    bayesmtor.errors.InputError
        For duplicate or malformed section ids, a table that is not a DataFrame, or a figure
        that is missing, empty or neither PNG nor SVG.
    """
    text = render_html_report(title=title, meta=meta, sections=sections)
    return atomic_write_text(Path(path), text)


# --------------------------------------------------------------------------------------------
# reader
# --------------------------------------------------------------------------------------------
class _ReportParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.section_ids: list[str] = []
        self.toc_targets: list[str] = []
        self.figures: list[dict[str, Any]] = []
        self.tables: list[dict[str, Any]] = []
        self.images: list[str] = []
        self.external: list[str] = []
        self.meta: dict[str, str] = {}
        self._stack: list[str] = []
        self._capture: str | None = None
        self._buffer: list[str] = []
        self._in_nav = False
        self._dt: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "section" and "id" in a:
            self.section_ids.append(a["id"])
        elif tag == "nav":
            self._in_nav = True
        elif tag == "a" and "href" in a:
            href = a["href"]
            if self._in_nav and href.startswith("#"):
                self.toc_targets.append(href[1:])
            elif not href.startswith("#"):
                self.external.append(href)
        elif tag == "figure":
            self.figures.append({"id": a.get("id", ""), "caption": "", "embedded": False})
        elif tag == "table":
            self.tables.append({"id": a.get("id", ""), "caption": ""})
        elif tag == "img":
            src = a.get("src", "")
            self.images.append(src)
            if self.figures:
                self.figures[-1]["embedded"] = src.startswith("data:image/")
        elif tag in ("script", "link", "iframe", "object", "embed", "source", "video", "audio"):
            ref = a.get("src") or a.get("href") or a.get("data") or ""
            self.external.append(f"<{tag}> {ref}".strip())
        if tag in ("figcaption", "caption", "title", "dt", "dd"):
            self._capture = tag
            self._buffer = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav":
            self._in_nav = False
        if self._capture == tag:
            text = "".join(self._buffer).strip()
            if tag == "figcaption" and self.figures:
                self.figures[-1]["caption"] = text
            elif tag == "caption" and self.tables:
                self.tables[-1]["caption"] = text
            elif tag == "title":
                self.title = text
            elif tag == "dt":
                self._dt = text
            elif tag == "dd" and self._dt is not None:
                self.meta[self._dt] = text
                self._dt = None
            self._capture = None

    def handle_data(self, data: str) -> None:
        if self._capture is not None:
            self._buffer.append(data)


def inspect_html_report(path: Path) -> dict[str, Any]:
    """List what an HTML report contains.

    Parameters
    ----------
    path : Path
        An HTML file written by :func:`write_html_report`.

    Returns
    -------
    dict
        ``title`` (str); ``meta`` (dict of header entries); ``section_ids`` and ``toc_ids``
        (lists, in document order); ``figures`` (list of dicts with ``id``, ``caption``,
        ``embedded``); ``figure_ids`` and ``figure_captions``; ``tables`` (list of dicts with
        ``id`` and ``caption``); ``table_ids`` and ``table_captions``; ``n_images``;
        ``all_images_embedded`` (every ``<img>`` is a ``data:image/…`` URI);
        ``external_resources`` (links, scripts or other references leaving the file; empty
        for a self-contained report). Captions are unescaped text.
    """
    parser = _ReportParser()
    parser.feed(Path(path).read_text(encoding="utf-8"))
    parser.close()
    external = [src for src in parser.images if not src.startswith("data:image/")] + parser.external
    return {
        "title": parser.title,
        "meta": dict(parser.meta),
        "section_ids": list(parser.section_ids),
        "toc_ids": list(parser.toc_targets),
        "figures": [dict(f) for f in parser.figures],
        "figure_ids": [f["id"] for f in parser.figures],
        "figure_captions": [f["caption"] for f in parser.figures],
        "tables": [dict(t) for t in parser.tables],
        "table_ids": [t["id"] for t in parser.tables],
        "table_captions": [t["caption"] for t in parser.tables],
        "n_images": len(parser.images),
        "all_images_embedded": all(s.startswith("data:image/") for s in parser.images),
        "external_resources": external,
    }


# --------------------------------------------------------------------------------------------
# the report of a plan run
# --------------------------------------------------------------------------------------------

Figures = Mapping[str, Sequence[tuple[str, Path]]]


def run_report_meta(result: RunResult) -> dict[str, str]:
    """Header entries of a run's report: version, plan, priors, intervals, date, data."""
    from bayesmtor import __version__

    plan = result.plan
    pct = f"{100 * plan.ci_prob:g}%"
    return {
        "bayesmtor version": __version__,
        "plan": f"{plan.name} ({plan.source or 'in-memory plan'}); stored as plan.toml",
        "description": plan.description,
        "unit of analysis": plan.unit + (f" (BOLERO-2: {plan.bolero2})" if plan.bolero2 else ""),
        "priors": f"tau ~ {plan.priors.tau}; mu ~ {plan.priors.mu}; "
        f"tau_class ~ {plan.priors.tau_class}",
        "intervals": f"{pct} (credible, confidence and prediction intervals alike)",
        "frequentist": plan.frequentist.method + (" + HKSJ" if plan.frequentist.hksj else ""),
        "date": result.started.isoformat(timespec="seconds"),
        "data": "bundled curated tables (data/README.md): 2014 meta-analysis, Int J Clin Exp "
        "Med 2014;7(10):3333-3343, Tables 1-7; West-Iran rapamycin cohort",
    }


def _methods_section(plan: Plan) -> ReportSection:
    from bayesmtor import config
    from bayesmtor.pipeline.stages import plan_priors
    from bayesmtor.vocabulary import RE_METHODS

    priors = plan_priors(plan)
    m = plan.mcmc
    methods = [
        f"Plan '{plan.name}': {plan.description}",
        "",
        "- Effect sizes: log ratios (RR, OR from 2x2 counts with the RevMan 5 zero-cell rule; "
        "HR from the printed 95% CI) or risk differences, as R metafor's escalc().",
        "- Bayesian model: normal-normal random effects, y_i ~ N(theta_i, s_i^2), theta_i ~ "
        "N(mu, tau^2). Its posterior is computed exactly by quadrature (engine 'exact').",
        f"- Priors: {priors.tau.describe()}. {priors.mu.describe()}.",
        f"- Frequentist cross-check: {plan.frequentist.method}"
        + (
            " (hazard ratios by fixed-effect inverse variance)"
            if plan.frequentist.method in ("MH", "PETO")
            else ""
        )
        + (
            "; prediction intervals with t on k-2 df (Cochrane Handbook), where metafor's "
            "predict() uses z"
            if plan.frequentist.method in RE_METHODS and config.get("pi_dist") == "t"
            else ""
        )
        + ".",
    ]
    if plan.uses_mcmc:
        methods.append(
            f"- MCMC (PyMC NUTS): {m.chains} chains x {m.draws} draws after {m.tune} tuning steps, "
            f"target_accept {m.target_accept:g}, seed {m.seed}. Convergence gate: no divergences, "
            f"R-hat <= {config.get('rhat_max')}, bulk and tail ESS >= {config.get('ess_min')}. "
            f"MCMC checks agree with the exact posterior when every compared statistic is within "
            f"{config.get('agreement_mcse'):g} Monte Carlo standard errors."
        )
    methods.append(
        f"- Every analysis has an InferenceData file in idata/: MCMC fits as sampled; exact "
        f"analyses as {config.get('exact_chains')} chains of {config.get('exact_draws')} "
        "independent draws from the exact posterior (engine='exact'; the chains are blocks of "
        "exact draws, not MCMC). Open them with arviz.from_netcdf(path)."
    )
    methods.append("")
    methods.append("Flags of the summary of findings:")
    methods.append("")
    methods.extend(f"- {name}: {rule}" for name, rule in flag_rules().items())
    return ReportSection(
        id="methods",
        title="Methods and provenance",
        text="\n".join(methods),
        tables=(("Analyses of the plan (before expansion)", plan.summary().reset_index()),),
        collapsible=True,
    )


def _findings_section(
    fitted: Sequence[AnalysisResult], plan: Plan, tables: Mapping[str, pd.DataFrame]
) -> ReportSection:
    """The summary of findings: the first section and the first table of the report."""
    pct = f"{100 * plan.ci_prob:g}%"
    frame = tables["summary_of_findings"]
    anchors = {f.id: f"a-{f.id}" for f in fitted}
    legend = "".join(
        f"<dt>{html.escape(name)}</dt><dd>{html.escape(rule)}</dd>"
        for name, rule in flag_rules().items()
        if name != "status"
    )
    markup = (
        findings_table_html(frame, plan=plan, table_id="summary-of-findings", anchors=anchors)
        + f'\n<dl class="flags">{legend}</dl>'
    )
    return ReportSection(
        id="findings",
        title="Summary of findings",
        text=(
            f"Each row pools the randomized trials of one outcome in one comparison (mTOR "
            f"inhibitor arm vs control). Bayesian: random-effects posterior median with its "
            f"{pct} credible interval (CrI) and the posterior probability that the treatment "
            "helps (efficacy) or harms (adverse events); frequentist: "
            f"{plan.frequentist.method} estimate with its {pct} confidence interval. tau is the "
            "between-trial SD on the log scale; n.r. = not reported. BF(mu = 0) and "
            "BF(tau = 0) are Bayes factors of no effect and of no heterogeneity (above 1: the "
            "data favour them); the model-averaged median and interval average over the "
            "fixed- and random-effects models with and without an effect (1/4 each a priori), "
            "and are exactly 1 where the no-effect models hold that much posterior mass (see "
            "Bayes factors and model averaging). Click an outcome for its forest plot and "
            "details."
        ),
        html=markup,
    )


def _side_by_side_section(plan: Plan, tables: Mapping[str, pd.DataFrame]) -> ReportSection:
    pct = f"{100 * plan.ci_prob:g}%"
    return ReportSection(
        id="side-by-side",
        title="Results: Bayesian and frequentist side by side",
        text=(
            f"Pooled effects on the ratio scale (risk differences as they are), posterior "
            f"median with the {pct} central credible interval beside the frequentist estimate "
            f"with its {pct} confidence interval. P(effect < null) is the posterior "
            "probability that the pooled ratio is below 1 (difference below 0), whatever the "
            "outcome; the summary of findings turns it into a probability of benefit or harm."
        ),
        tables=(
            (
                "Bayesian and frequentist pooled effects",
                tables["side_by_side"].drop(columns=["analysis", "likelihood"]),
            ),
        ),
        collapsible=True,
    )


def analysis_title(f: AnalysisResult) -> str:
    """Readable title of an analysis: outcome (measure): comparison[, model]."""
    title = (
        f"{outcome_info(f.task.outcome).label} ({f.measure}): {comparison_label(f.task.comparison)}"
    )
    return title if f.spec.likelihood == "normal-normal" else f"{title}, {f.spec.likelihood}"


def _evidence_section(tables: Mapping[str, pd.DataFrame]) -> ReportSection:
    t = tables["model_averaging"]
    show = t[
        ["analysis", "k", "bf_tau0", "bf_mu0", "posterior_prob_FE-null",
         "posterior_prob_FE-effect", "posterior_prob_RE-null", "posterior_prob_RE-effect",
         "bf_inclusion_effect", "bf_inclusion_heterogeneity",
         *(c for c in ("bma_mu_median_ratio", "bma_mu_low_ratio", "bma_mu_high_ratio") if c in t)]
    ]  # fmt: skip
    return ReportSection(
        id="bayes-factors",
        title="Bayes factors and model averaging",
        text=(
            "From each analysis's exact posterior: bf_tau0 = p(y | tau = 0) / p(y) (above 1 when "
            "the data favour no heterogeneity) and bf_mu0 = p(y | mu = 0) / p(y) (above 1 when "
            "they favour no effect), as R bayesmeta; the posterior probabilities of the four "
            "models FE-null (mu = 0, tau = 0), FE-effect (tau = 0), RE-null (mu = 0) and "
            "RE-effect from prior probabilities 1/4 each; the inclusion Bayes factors of an "
            "effect and of heterogeneity; and the model-averaged median and central interval "
            "of the pooled ratio, which are exactly 1 where the null models hold that much "
            "posterior mass. Missing where a prior is improper."
        ),
        tables=(("Bayes factors and model-averaged pooled effects", show),),
        collapsible=True,
    )


def _analysis_text(f: AnalysisResult) -> str:
    from bayesmtor import config

    text = [
        f"Analysis {f.id}: outcome {f.task.outcome}, comparison {f.task.comparison}, measure "
        f"{f.measure}, likelihood {f.spec.likelihood}, engine {f.engine}"
        + (" (checked by MCMC)" if f.check_table is not None else "")
        + f"; k = {f.k} trial(s): {'; '.join(f.es_table['study'].astype(str))}.",
        f"Status: {f.status}" + (f" ({f.reason})" if f.reason else "") + ".",
    ]
    if f.k == 1:
        text.append(
            "Single trial: nothing is pooled. The frequentist estimate is the trial's own, and "
            "the Bayesian prediction interval for a new trial would come from the tau prior "
            "alone, so it is not reported as a result."
        )
    if f.k < int(config.get("tau_figure_min_k")):
        text.append(
            "No tau plot: one trial carries no information on the between-trial SD, so its "
            "posterior is the prior."
        )
    if f.k < int(config.get("funnel_min_k")):
        text.append(f"No funnel plot: {f.k} trial(s) cannot show small-study asymmetry.")
    if f.notes:
        text.append("")
        text.extend(f"- {n}" for n in dict.fromkeys(f.notes))
    return "\n".join(text)


def _analysis_section(
    f: AnalysisResult, plan: Plan, tables: Mapping[str, pd.DataFrame], figures: Figures
) -> ReportSection:
    pct = f"{100 * plan.ci_prob:g}%"
    tabs: list[tuple[str, pd.DataFrame]] = []
    if f.exact is not None:
        tabs.append(
            (
                f"Exact posterior (log scale), {pct} central intervals",
                f.exact.summary(plan.ci_prob).reset_index(),
            )
        )
    elif f.bayes is not None:
        tabs.append(
            (
                f"MCMC posterior ({f.spec.likelihood}), {pct} central intervals",
                f.bayes.summary(plan.ci_prob).reset_index(),
            )
        )
        keys = [k for k in f.bayes_row if f"{k}_mcse" in f.bayes_row]
        tabs.append(
            (
                f"{f.id}: pooled MCMC numbers with their Monte Carlo standard errors",
                pd.DataFrame(
                    {
                        "quantity": keys,
                        "value": [f.bayes_row[k] for k in keys],
                        "mcse": [f.bayes_row[f"{k}_mcse"] for k in keys],
                    }
                ),
            )
        )
    if f.freq is not None:
        tabs.append(
            (
                f"Frequentist {f.freq.method} (log scale)"
                + (": the trial's own estimate (k = 1)" if f.k == 1 else ""),
                f.freq.summary().reset_index(),
            )
        )
    tabs.append(
        (
            "Forest plot rows (analysis scale)",
            tables[f"forest_{f.id}"][
                ["label", "kind", "estimate", "low", "high", "weight", "note"]
            ],
        )
    )
    if f.check_table is not None:
        tabs.append(
            (
                "MCMC check against the exact posterior (differences in MCSE units)",
                f.check_table.drop(columns=["analysis"]),
            )
        )
    return ReportSection(
        id=f"a-{f.id}",
        title=analysis_title(f),
        text=_analysis_text(f),
        tables=tuple(tabs),
        figures=tuple(figures.get(f.id, ())),
        collapsible=True,
    )


def _sensitivity_section(
    plan: Plan, tables: Mapping[str, pd.DataFrame], figures: Figures
) -> ReportSection:
    cols = ["analysis", "prior", "k", "mu_median", "mu_low", "mu_high", "tau_median",
            "tau_low", "tau_high", "p_mu_below_0"]  # fmt: skip
    return ReportSection(
        id="sensitivity",
        title="Prior sensitivity",
        text="Each normal-normal analysis refitted exactly under each prior on tau "
        f"(mu ~ {plan.priors.mu} unchanged). Log scale.",
        tables=(("Pooled effect under each tau prior", tables["prior_sensitivity"][cols]),),
        figures=tuple(figures.get("sensitivity", ())),
        collapsible=True,
    )


def _replication_section(text: str, tables: Mapping[str, pd.DataFrame]) -> ReportSection:
    rep_tables: list[tuple[str, pd.DataFrame]] = []
    if "replication" in tables:
        rep_tables.append(("Replication of the 2014 paper", tables["replication"]))
    if "unit_comparison" in tables:
        rep_tables.append(("Unit of analysis: report vs trial", tables["unit_comparison"]))
    return ReportSection(
        id="replication",
        title="Replication of the 2014 meta-analysis",
        text=text,
        tables=tuple(rep_tables),
        collapsible=True,
    )


def _excluded_section(tables: Mapping[str, pd.DataFrame]) -> ReportSection:
    excluded = tables["excluded_studies"]
    cohort_reason = excluded["reason"].iloc[-1]
    return ReportSection(
        id="excluded",
        title=f"Excluded studies and reports ({len(excluded)} rows)",
        text=(
            "Reports and subgroups left out of each analysis, with the reason. The "
            f"West-Iran rapamycin cohort never enters a comparative analysis: {cohort_reason}."
        ),
        tables=(
            ("Excluded studies per analysis", tables["excluded_studies"]),
            (
                "West-Iran rapamycin cohort (single arm): 5-year overall survival by group",
                tables["single_arm_cohort"],
            ),
        ),
        collapsible=True,
    )


def _diagnostics_section(
    fits: Sequence[AnalysisResult], tables: Mapping[str, pd.DataFrame]
) -> ReportSection:
    diag_tabs: list[tuple[str, pd.DataFrame]] = [("Status of every analysis", tables["analyses"])]
    quad = tables["pooled_bayes"][["analysis", "engine", "quad_error"]]
    diag_tabs.append(
        ("Quadrature error estimates of the exact engine", quad.loc[quad["engine"] == "exact"])
    )
    if "mcmc_diagnostics" in tables:
        diag_tabs.append(("MCMC diagnostics", tables["mcmc_diagnostics"]))
    if "mcmc_check" in tables:
        diag_tabs.append(("MCMC check against the exact posterior", tables["mcmc_check"]))
    skipped = [f for f in fits if f.status in ("skipped", "failed")]
    listing = ":\n\n" + "\n".join(f"- {f.id}: {f.reason}" for f in skipped) if skipped else "."
    return ReportSection(
        id="diagnostics",
        title="Diagnostics",
        text=f"{len(fits)} analyses after expansion; {len(skipped)} skipped or failed{listing}",
        tables=tuple(diag_tabs),
        collapsible=True,
    )


def run_report_sections(
    result: RunResult, tables: Mapping[str, pd.DataFrame], figures: Figures
) -> list[ReportSection]:
    """The sections of a run's report: the summary of findings (open), then, collapsed,
    methods, results side by side, one per fitted analysis, prior sensitivity, replication,
    exclusions and diagnostics."""
    plan = result.plan
    fitted = [f for f in result.analyses if f.fitted]
    sections = [
        _findings_section(fitted, plan, tables),
        _methods_section(plan),
        _side_by_side_section(plan, tables),
    ]
    if "model_averaging" in tables and len(tables["model_averaging"]):
        sections.append(_evidence_section(tables))
    sections += [_analysis_section(f, plan, tables, figures) for f in fitted]
    from bayesmtor.reporting.regression import regression_sections

    sections += regression_sections(result, tables, figures)
    if "prior_sensitivity" in tables:
        sections.append(_sensitivity_section(plan, tables, figures))
    sections.append(_replication_section(result.replication.text, tables))
    sections.append(_excluded_section(tables))
    sections.append(_diagnostics_section(result.analyses, tables))
    return sections


def write_run_report(
    path: Path, result: RunResult, tables: Mapping[str, pd.DataFrame], figures: Figures
) -> Path:
    """Write the HTML report of a run (its tables and the PNG figures by analysis id)."""
    return write_html_report(
        path,
        title=f"bayesmtor report: {result.plan.name}",
        meta=run_report_meta(result),
        sections=run_report_sections(result, tables, figures),
    )
