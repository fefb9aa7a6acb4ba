"""Writing a RevMan re-analysis: text table, CSV tables, JSON and a self-contained HTML report.

:func:`write_revman` writes one output folder with the safety rules of ``bayesmtor run --out``
(:mod:`bayesmtor.reporting.outputs`: built beside the target and moved into place, ``force``
replaces only an unchanged bayesmtor output, the input file's folder is protected):

* ``analyses.csv`` -- one row per analysis (:attr:`RevManReanalysis.table`);
* ``analyses.json`` -- the records of ``bayesmtor revman --json``;
* ``studies.csv`` -- the study rows with the estimates used and the reasons for exclusion;
* ``report.html`` -- RevMan's numbers beside the recomputation and the posterior.

Nothing here computes a result: everything comes from :func:`revman_reanalysis`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from bayesmtor import __version__, config
from bayesmtor.revman.recompute import RevManReanalysis

__all__ = ["format_revman", "report_sections", "write_revman"]


def _label(row: dict[str, Any]) -> str:
    sub = row.get("subgroup_no")
    head = f"{int(row['comparison_no'])}.{int(row['outcome_no'])}"
    if sub is not None and not (isinstance(sub, float) and math.isnan(sub)):
        head += f".{int(sub)}"
    return head


def _shown(value: Any, ratio: bool) -> float:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return float("nan")
    return math.exp(value) if ratio else float(value)


def _interval(row: dict[str, Any], prefix: str, ratio: bool) -> str:
    est = _shown(row.get(f"{prefix}estimate"), ratio)
    lo = _shown(row.get(f"{prefix}ci_low"), ratio)
    hi = _shown(row.get(f"{prefix}ci_high"), ratio)
    if not math.isfinite(est):
        return "-"
    return f"{est:.4f} [{lo:.4f}, {hi:.4f}]"


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{float(value):.{digits}g}"


def _match_text(row: dict[str, Any]) -> str:
    m = row.get("match")
    if m is None or m is pd.NA:
        return "nothing stored"
    if bool(m):
        keys = (row.get("compared") or "").split(",")
        if len(keys) < 4:
            return f"yes (the only numbers stored: {', '.join(keys)})"
        return f"yes ({len(keys)} stored numbers)"
    return f"NO ({row.get('mismatch') or ''})"


def comparison_frame(result: RevManReanalysis) -> pd.DataFrame:
    """RevMan's numbers beside the recomputation, one readable row per analysis."""
    out = []
    for row in result.table.to_dict(orient="records"):
        ratio = bool(row["log_scale"])
        scale = row["measure"]
        out.append(
            {
                "analysis": _label(row),
                "outcome": row["outcome"] + (f" / {row['subgroup']}" if row["subgroup"] else ""),
                "measure": scale,
                "method": f"{row['method']}, {row['model']}",
                "k": row["k"],
                "RevMan estimate [CI]": _interval(row, "revman_", ratio),
                "bayesmtor estimate [CI]": _interval(row, "", ratio),
                "RevMan Q / I2 / tau2": " / ".join(
                    _num(row.get(f"revman_{k}")) for k in ("Q", "I2", "tau2")
                ),
                "bayesmtor Q / I2 / tau2": " / ".join(
                    _num(row.get(k)) for k in ("Q", "I2", "tau2")
                ),
                "Q_between (p)": (
                    f"{_num(row.get('Q_between'))} ({_num(row.get('Q_between_pval'))})"
                    if row.get("has_subgroups")
                    else ""
                ),
                "agrees with RevMan": _match_text(row),
                "not estimable because": row.get("reason") or "",
            }
        )
    return pd.DataFrame(out)


def bayes_frame(result: RevManReanalysis) -> pd.DataFrame:
    """The posterior of each analysis: median and credible interval of mu, median of tau."""
    out = []
    for row in result.table.to_dict(orient="records"):
        ratio = bool(row["log_scale"])
        med = _shown(row.get("mu_median"), ratio)
        out.append(
            {
                "analysis": _label(row),
                "measure": row["measure"],
                "k": row["k"],
                "mu median": med,
                "mu low": _shown(row.get("mu_low"), ratio),
                "mu high": _shown(row.get("mu_high"), ratio),
                "tau median": row.get("tau_median"),
            }
        )
    return pd.DataFrame(out)


def format_revman(result: RevManReanalysis) -> str:
    """The text table ``bayesmtor revman`` prints (ratio scale for ratio measures)."""
    pct = f"{100 * result.ci_prob:g}%"
    lines = [
        f"{result.review.source}: {len(result.table)} analyses "
        f"({result.review.format}{', ' + result.review.title if result.review.title else ''})",
        f"Bayesian: exact engine, tau ~ {result.tau_prior}, mu ~ {result.mu_prior}, {pct} "
        "credible intervals; ratios shown as ratios",
    ]
    for note in result.review.notes:
        lines.append(f"  read: {note}")
    for row in result.table.to_dict(orient="records"):
        ratio = bool(row["log_scale"])
        name = row["outcome"] + (f" / {row['subgroup']}" if row["subgroup"] else "")
        lines.append("")
        lines.append(
            f"{_label(row)} {name} [{row['data_type']}, {row['measure']}, {row['method']}, "
            f"{row['model']}, k={row['k']}]"
        )
        if row.get("reason"):
            lines.append(f"  not estimable: {row['reason']}")
            continue
        lines.append(f"  RevMan    {_interval(row, 'revman_', ratio)}")
        lines.append(
            f"  bayesmtor {_interval(row, '', ratio)}  Q={_num(row['Q'])} "
            f"I2={_num(row['I2'])}% tau2={_num(row['tau2'])} p={_num(row['pval'])}"
        )
        if row.get("has_subgroups"):
            lines.append(
                f"  subgroup differences: Q={_num(row['Q_between'])}, "
                f"p={_num(row['Q_between_pval'])}"
            )
        mu = [_shown(row.get(k), ratio) for k in ("mu_median", "mu_low", "mu_high")]
        if row.get("bayes_note"):
            lines.append(f"  no posterior: {row['bayes_note']}")
        else:
            lines.append(
                f"  posterior mu {mu[0]:.4f} [{mu[1]:.4f}, {mu[2]:.4f}], "
                f"tau {_num(row['tau_median'])}"
            )
        lines.append(f"  agrees with RevMan: {_match_text(row)}")
    return "\n".join(lines)


def report_sections(result: RevManReanalysis) -> list[Any]:
    """The sections of the HTML report."""
    from bayesmtor.reporting.html import ReportSection

    review = result.review
    table = result.table
    n_match = int((table["match"] == True).sum())  # noqa: E712
    n_diff = int((table["match"] == False).sum())  # noqa: E712
    n_none = int(table["match"].isna().sum())
    text = (
        f"{len(table)} analyses read from {review.source} ({review.format}). Each was "
        "recomputed from the data entered with RevMan 5's algorithms (Mantel-Haenszel, "
        "inverse-variance and Peto fixed effect; DerSimonian-Laird random effects with Q "
        "about the outcome's own fixed-effect estimate; Hedges' adjusted g; 1/2 added to "
        "every cell of a study with a zero cell), without reading RevMan's stored results, "
        "then compared with them.\n\n"
        f"- {n_match} analyses agree with every number RevMan stored (relative tolerance "
        f"{config.get('revman_rtol'):g}, p-values within {config.get('revman_p_atol'):g})\n"
        f"- {n_diff} differ\n- {n_none} have no stored result to compare\n\n"
        "Ratios are shown as ratios; the JSON and CSV files hold natural logs."
    )
    if review.notes:
        text += "\n\nRepairs made while reading the file:\n\n" + "\n".join(
            f"- {n}" for n in review.notes
        )
    pct = f"{100 * result.ci_prob:g}%"
    bayes_text = (
        "Normal-normal random-effects model computed by the exact (quadrature) engine on the "
        f"study estimates above, with tau ~ {result.tau_prior} and mu ~ {result.mu_prior}; "
        f"{pct} central credible intervals. The default priors are scaled for log ratios and "
        "SMDs; a mean difference is in the units of its outcome scale, so an MD analysis has a "
        "posterior only when both priors are set on that scale (--tau-prior, --mu-prior)."
    )
    studies = result.studies[
        ["comparison_no", "outcome_no", "subgroup_no", "study", "year", "yi_used", "vi_used",
         "excluded_reason"]
    ].rename(columns={"yi_used": "yi", "vi_used": "vi"})  # fmt: skip
    return [
        ReportSection(id="overview", title="Overview", text=text),
        ReportSection(
            id="revman",
            title="RevMan beside bayesmtor",
            tables=(("RevMan's stored results and the recomputation", comparison_frame(result)),),
        ),
        ReportSection(
            id="bayes",
            title="Bayesian re-analysis",
            text=bayes_text,
            tables=(("Posterior of the pooled effect mu and of tau", bayes_frame(result)),),
        ),
        ReportSection(
            id="studies",
            title="Study estimates",
            text="Study estimates as pooled (natural log for ratio measures), with the reason "
            "a study was not estimable.",
            tables=(("Studies", studies),),
        ),
    ]


def write_revman(
    result: RevManReanalysis,
    out: str | Path,
    *,
    force: bool = False,
    protect: tuple[Path, ...] = (),
) -> list[Path]:
    """Write a re-analysis into the output folder ``out`` (all-or-nothing).

    Parameters
    ----------
    result : RevManReanalysis
        What :func:`bayesmtor.revman.recompute.revman_reanalysis` returned.
    out : str or Path
        Output folder, with the rules of ``bayesmtor run --out``.
    force : bool, default False
        Replace ``out`` if it is an unchanged bayesmtor output.
    protect : tuple of Path
        Paths the folder must not contain (the input file).

    Returns
    -------
    list of Path
        The files written, sorted.
    """
    from bayesmtor.reporting.atomic import writing
    from bayesmtor.reporting.html import write_html_report
    from bayesmtor.reporting.outputs import MARKER_NAME, atomic_output_dir

    folder = atomic_output_dir(out, force=force, protect=protect)
    with folder as work:
        with writing(work / "analyses.csv") as path:
            result.table.to_csv(path, index=False, lineterminator="\n")
        with writing(work / "studies.csv") as path:
            result.studies.to_csv(path, index=False, lineterminator="\n")
        with writing(work / "analyses.json") as path:
            path.write_text(json.dumps(result.records(), indent=2) + "\n", encoding="utf-8")
        meta = {
            "bayesmtor": __version__,
            "file": result.review.source,
            "format": result.review.format,
            "review": result.review.title or "-",
            "tau prior": str(result.tau_prior),
            "mu prior": str(result.mu_prior),
        }
        write_html_report(
            work / "report.html",
            title=f"Re-analysis of {result.review.source}",
            meta=meta,
            sections=report_sections(result),
        )
        files = sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_file())
    return [folder.requested / f for f in [*files, MARKER_NAME]]
