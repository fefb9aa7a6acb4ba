"""Summary of findings: one row per outcome x comparison, the headline of a run.

:func:`summary_of_findings` builds the rows from the frozen results of a run, in one place:
the trials and patients, the Bayesian posterior median and interval on the ratio scale, the
probability of benefit (efficacy outcomes) or of harm (adverse events) with the direction
taken from :mod:`bayesmtor.outcomes`, the frequentist estimate and interval, tau, I2 and the
flags of :data:`FLAG_RULES`. It is written as ``tables/summary_of_findings.csv`` (numbers,
ratio scale) and shown first in the report through :data:`COLUMNS` (formatted text).

A new column is one more key in :func:`_finding` and, to show it in the report, one more
:class:`Column` in :data:`COLUMNS`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesmtor import config
from bayesmtor.outcomes import comparison_label, outcome_info
from bayesmtor.pipeline.results import AnalysisResult
from bayesmtor.plans import Plan
from bayesmtor.vocabulary import RATIO_MEASURES

__all__ = [
    "COLUMNS",
    "FLAG_RULES",
    "Column",
    "findings_table_html",
    "flag_rules",
    "format_probability",
    "format_ratio_interval",
    "summary_of_findings",
]

#: Every flag of the summary of findings and the rule that raises it.
FLAG_RULES: dict[str, str] = {
    "single trial": "k = 1: nothing is pooled; the estimates are that trial's, and tau and the "
    "prediction interval come from the prior alone (no prediction interval is shown).",
    "prior-dominated tau": "k >= 2 and the posterior interval of tau is at least "
    "{flag_prior_dominated_tau:.0%} as wide as the prior's interval of the same probability: "
    "the trials say little about between-trial variation, so tau mostly restates the prior.",
    "substantial heterogeneity": "frequentist I2 >= {flag_i2_substantial:g}% (Cochrane "
    "Handbook 10.10.2: 'may represent substantial heterogeneity').",
    "direction unknown": "the outcome is not listed in data/outcomes.csv, so whether a ratio "
    "below 1 is a benefit or a harm is not known; the probability is stated as P(ratio < 1).",
    "no frequentist estimate": "the frequentist fit is missing or not estimable.",
    "status": "the analysis did not finish with status 'ok' (e.g. 'not converged', "
    "'check disagrees'); the flag is the status itself. See Diagnostics.",
}


def flag_rules() -> dict[str, str]:
    """:data:`FLAG_RULES` with the current thresholds of :mod:`bayesmtor.config` filled in."""
    values = {k: config.get(k) for k in ("flag_prior_dominated_tau", "flag_i2_substantial")}
    return {name: rule.format(**values) for name, rule in FLAG_RULES.items()}


# --------------------------------------------------------------------------------------------
# the rows (numbers)
# --------------------------------------------------------------------------------------------


def summary_of_findings(fits: Sequence[AnalysisResult], plan: Plan) -> pd.DataFrame:
    """One row per fitted analysis: efficacy outcomes first, then adverse events (plan order
    within each), then outcomes of unknown direction.

    Columns: ``analysis, outcome, comparison, outcome_label, comparison_label, measure, role,
    favourable, k, patients, engine, bayes_median, bayes_low, bayes_high, p_below_null,
    probability, probability_of, probability_side, freq_method, freq_estimate, freq_low,
    freq_high, freq_pval, tau_median, tau_low, tau_high, freq_tau, I2, pred_low, pred_high,
    bf_tau0, bf_mu0, bf_inclusion_effect, bma_median, bma_low, bma_high, ci_prob, status,
    flags``. Effects and intervals are on the ratio scale for ratio measures
    (risk differences as they are); ``probability`` is the posterior probability of benefit
    (``probability_of = "benefit"``) or harm (``"harm"``), ``probability_side`` the event it
    is the probability of (``"HR < 1"``); ``pred_low/high`` are NaN for a single trial (the
    interval would come from the prior alone); ``bf_*`` are the exact posterior's Bayes
    factors and ``bma_*`` its model-averaged median and interval (ratio scale; NaN with an
    improper prior); ``flags`` joined by ``"; "``.
    """
    rows = [_finding(f, plan) for f in fits if f.fitted]
    order = {"efficacy": 0, "safety": 1}
    rows.sort(key=lambda r: order.get(r["role"], 2))  # stable: plan order within a role
    return pd.DataFrame(rows, columns=_COLUMN_NAMES)


_COLUMN_NAMES = [
    "analysis", "outcome", "comparison", "outcome_label", "comparison_label", "measure",
    "role", "favourable", "k", "patients", "engine", "bayes_median", "bayes_low",
    "bayes_high", "p_below_null", "probability", "probability_of", "probability_side",
    "freq_method", "freq_estimate", "freq_low", "freq_high", "freq_pval", "tau_median",
    "tau_low", "tau_high", "freq_tau", "I2", "pred_low", "pred_high", "bf_tau0", "bf_mu0",
    "bf_inclusion_effect", "bma_median", "bma_low", "bma_high", "ci_prob", "status", "flags",
]  # fmt: skip


def _finding(f: AnalysisResult, plan: Plan) -> dict[str, Any]:
    info = outcome_info(f.task.outcome)
    ratio = f.measure in RATIO_MEASURES
    back = np.exp if ratio else (lambda x: x)
    b = f.bayes_row
    fr = f.freq
    freq_ok = fr is not None and math.isfinite(float(fr.estimate))
    single = int(f.k) == 1
    p_below = float(b["p_mu_below_0"])
    prob, prob_of, side = _probability(info, p_below, f.measure)
    row = {
        "analysis": f.id,
        "outcome": f.task.outcome,
        "comparison": f.task.comparison,
        "outcome_label": info.label,
        "comparison_label": comparison_label(f.task.comparison),
        "measure": f.measure,
        "role": info.role or "",
        "favourable": info.favourable or "",
        "k": int(f.k),
        "patients": _patients(f),
        "engine": f.engine,
        "bayes_median": float(back(b["mu_median"])),
        "bayes_low": float(back(b["mu_low"])),
        "bayes_high": float(back(b["mu_high"])),
        "p_below_null": p_below,
        "probability": prob,
        "probability_of": prob_of,
        "probability_side": side,
        "freq_method": fr.method if fr is not None else "",
        "freq_estimate": float(back(fr.estimate)) if freq_ok else math.nan,
        "freq_low": float(back(fr.ci_low)) if freq_ok else math.nan,
        "freq_high": float(back(fr.ci_high)) if freq_ok else math.nan,
        "freq_pval": float(fr.pval) if freq_ok else math.nan,
        "tau_median": float(b["tau_median"]),
        "tau_low": float(b["tau_low"]),
        "tau_high": float(b["tau_high"]),
        "freq_tau": float(fr.tau) if freq_ok and not single else math.nan,
        "I2": float(fr.I2) if freq_ok and not single else math.nan,
        "pred_low": math.nan if single else float(back(b["pred_low"])),
        "pred_high": math.nan if single else float(back(b["pred_high"])),
        **_evidence(f.evidence, back),
        "ci_prob": plan.ci_prob,
        "status": f.status,
    }
    row["flags"] = "; ".join(_flags(row, info.known, freq_ok, plan))
    return row


def _evidence(ev: Mapping[str, Any], back: Callable[[Any], Any]) -> dict[str, float]:
    """Bayes factors and the model-averaged summary of mu (ratio scale) of an analysis."""

    def get(key: str) -> float:
        return float(ev.get(key, math.nan))

    return {
        "bf_tau0": get("bf_tau0"),
        "bf_mu0": get("bf_mu0"),
        "bf_inclusion_effect": get("bf_inclusion_effect"),
        "bma_median": float(back(get("bma_mu_median"))),
        "bma_low": float(back(get("bma_mu_low"))),
        "bma_high": float(back(get("bma_mu_high"))),
    }


def _probability(info: Any, p_below: float, measure: str) -> tuple[float, str, str]:
    """(probability, "benefit" | "harm" | "", the event it is the probability of)."""
    null = "0" if measure not in RATIO_MEASURES else "1"
    below, above = f"{measure} < {null}", f"{measure} > {null}"
    if not info.known:
        return p_below, "", below
    good_below = info.favourable == "lower"
    p_good = p_below if good_below else 1.0 - p_below
    if info.role == "efficacy":
        return p_good, "benefit", below if good_below else above
    return 1.0 - p_good, "harm", above if good_below else below


def _flags(row: Mapping[str, Any], known: bool, freq_ok: bool, plan: Plan) -> list[str]:
    flags = []
    if row["k"] == 1:
        flags.append("single trial")
    if row["k"] > 1 and _prior_dominated(row, plan):  # one trial: tau is the prior anyway
        flags.append("prior-dominated tau")
    if math.isfinite(row["I2"]) and row["I2"] >= float(config.get("flag_i2_substantial")):
        flags.append("substantial heterogeneity")
    if not known:
        flags.append("direction unknown")
    if not freq_ok:
        flags.append("no frequentist estimate")
    if row["status"] != "ok":
        flags.append(str(row["status"]))
    return flags


def _prior_dominated(row: Mapping[str, Any], plan: Plan) -> bool:
    """Posterior interval of tau at least config ``flag_prior_dominated_tau`` times the width
    of the prior's central interval of the same probability."""
    lo, hi = (1 - plan.ci_prob) / 2, (1 + plan.ci_prob) / 2
    prior = plan.priors.tau
    if not prior.is_proper:  # no prior interval to compare with
        return False
    width = float(prior.ppf(hi)) - float(prior.ppf(lo))
    post = row["tau_high"] - row["tau_low"]
    if not (math.isfinite(width) and width > 0 and math.isfinite(post)):
        return False
    return post >= float(config.get("flag_prior_dominated_tau")) * width


def _patients(f: AnalysisResult) -> float:
    """Patients randomised in the pooled trials: the arm sizes of the data, else those of
    ``data/studies.csv`` by report; NaN when some trial's size is not printed."""
    inc = f.es_table
    if inc is None or not len(inc):
        return math.nan
    if {"n_trt", "n_ctl"} <= set(inc.columns):
        n = pd.to_numeric(inc["n_trt"], errors="coerce") + pd.to_numeric(
            inc["n_ctl"], errors="coerce"
        )
        if n.notna().all():
            return float(n.sum())
    if "report_id" not in inc.columns:
        return math.nan
    from bayesmtor.data import load_studies

    studies = load_studies().set_index("report_id")
    total = 0.0
    for rid in inc["report_id"].astype(str):
        if rid not in studies.index:
            return math.nan
        n_trt, n_ctl = studies.loc[rid, "n_trt"], studies.loc[rid, "n_ctl"]
        if pd.isna(n_trt) or pd.isna(n_ctl):
            return math.nan
        total += float(n_trt) + float(n_ctl)
    return total


# --------------------------------------------------------------------------------------------
# the report's table (text)
# --------------------------------------------------------------------------------------------


def format_ratio_interval(est: float, lo: float, hi: float) -> str:
    """``"0.47 [0.26, 0.88]"``; ``"[0.26, 0.88]"`` without an estimate; ``""`` when the
    interval is not finite. Two decimals; two significant digits below 0.01, three above
    1000, and an exponent outside [0.001, 1e5)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return ""
    interval = f"[{_num(lo)}, {_num(hi)}]"
    return f"{_num(est)} {interval}" if math.isfinite(est) else interval


def _num(x: float) -> str:
    if x != 0 and abs(x) < 0.01:
        return f"{x:.2g}" if abs(x) >= 0.001 else f"{x:.1e}"
    if abs(x) >= 1000:
        return f"{x:.3g}" if abs(x) < 1e5 else f"{x:.1e}"
    return f"{x:.2f}"


def format_probability(p: float) -> str:
    """A probability in percent: ``"98%"``, ``"99.6%"``, ``">99.9%"``, ``"<0.1%"``."""
    if not math.isfinite(p):
        return ""
    if p > 0.999:
        return ">99.9%"
    if p < 0.001:
        return "<0.1%"
    if 0.01 <= p <= 0.99:
        return f"{100 * p:.0f}%"
    return f"{100 * p:.1f}%"


@dataclass(frozen=True)
class Column:
    """One column of the report's summary table: its header and how a row becomes a cell.

    Attributes
    ----------
    header : str
        Header text (``{pct}`` is replaced by the interval probability, e.g. ``95%``).
    cell : callable
        ``row (Mapping) -> str``: the cell's plain text.
    css : str
        Class of the cells (``num`` for right-aligned numbers, ``text`` for text).
    """

    header: str
    cell: Callable[[Mapping[str, Any]], str]
    css: str = "num"


def _trials(r: Mapping[str, Any]) -> str:
    n = r["patients"]
    return f"{r['k']} / {int(n)}" if math.isfinite(n) else f"{r['k']} / n.r."


def _bayes(r: Mapping[str, Any]) -> str:
    return format_ratio_interval(r["bayes_median"], r["bayes_low"], r["bayes_high"])


def _chance(r: Mapping[str, Any]) -> str:
    p = format_probability(r["probability"])
    if not r["probability_of"]:
        return f"{p} that {r['probability_side']} (direction unknown)"
    return f"{p} {r['probability_of']} ({r['probability_side']})"


def _freq(r: Mapping[str, Any]) -> str:
    text = format_ratio_interval(r["freq_estimate"], r["freq_low"], r["freq_high"])
    if not text:
        return "not estimable"
    return f"{text} (trial's own)" if r["k"] == 1 else text


def _tau(r: Mapping[str, Any]) -> str:
    return format_ratio_interval(r["tau_median"], r["tau_low"], r["tau_high"])


def _i2(r: Mapping[str, Any]) -> str:
    return f"{r['I2']:.0f}%" if math.isfinite(r["I2"]) else "–"


def _averaged(r: Mapping[str, Any]) -> str:
    """Model-averaged median [interval]; then BF(mu = 0), BF(tau = 0) (one cell, which may
    wrap, so that the table keeps to its box)."""
    if not (math.isfinite(r["bf_tau0"]) and math.isfinite(r["bf_mu0"])):
        return "– (improper prior)"
    text = format_ratio_interval(r["bma_median"], r["bma_low"], r["bma_high"])
    return f"{text}; BF {_bf(r['bf_mu0'])}, {_bf(r['bf_tau0'])}"


def _bf(x: float) -> str:
    return f"{x:.2g}" if x < 0.01 or x >= 100 else f"{x:.2f}"


def _prediction(r: Mapping[str, Any]) -> str:
    if r["k"] == 1:
        return "– (prior only)"
    return format_ratio_interval(math.nan, r["pred_low"], r["pred_high"])


#: The columns of the report's summary table, in order (the outcome and comparison come
#: first, rendered with a link to the analysis' section).
COLUMNS: tuple[Column, ...] = (
    Column("Trials / patients", _trials),
    Column("Bayesian median [{pct} CrI]", _bayes),
    Column("Posterior probability", _chance, "text"),
    Column("Frequentist {method} [{pct} CI]", _freq),
    Column("tau median [{pct} CrI]", _tau),
    Column("I2", _i2),
    Column("Prediction, new trial [{pct}]", _prediction),
    Column("Model-averaged [{pct}]; BF(mu = 0), BF(tau = 0)", _averaged, "text"),
    Column("Flags", lambda r: r["flags"], "text flags"),
)


def _cell_html(column: Column, row: Mapping[str, Any]) -> str:
    """A cell's escaped text; flags each kept on one line."""
    text = column.cell(row)
    if "flags" not in column.css.split():
        return html.escape(text)
    return "; ".join(
        f'<span class="flag">{html.escape(flag)}</span>' for flag in text.split("; ") if flag
    )


def findings_table_html(
    frame: pd.DataFrame, *, plan: Plan, table_id: str, anchors: Mapping[str, str]
) -> str:
    """The summary of findings as an HTML table (every text escaped).

    Parameters
    ----------
    frame : pandas.DataFrame
        :func:`summary_of_findings`.
    plan : Plan
        The plan (interval probability, frequentist method).
    table_id : str
        ``id`` of the ``<table>``.
    anchors : Mapping[str, str]
        Analysis id -> section id to link the outcome to.
    """
    esc = html.escape
    pct = f"{100 * plan.ci_prob:g}%"
    method = plan.frequentist.method + (" + HKSJ" if plan.frequentist.hksj else "")
    heads = [("Outcome", "text"), ("Comparison", "text")] + [
        (c.header.format(pct=pct, method=method), c.css) for c in COLUMNS
    ]
    parts = [
        f'<div class="table-wrap"><table class="data findings" id="{esc(table_id)}">',
        f"<caption>Summary of findings: pooled effects on the ratio scale, {pct} intervals"
        "</caption>",
        "<thead><tr>"
        + "".join(f'<th scope="col" class="{css}">{esc(h)}</th>' for h, css in heads)
        + "</tr></thead>",
    ]
    groups = (("efficacy", "Efficacy"), ("safety", "Adverse events"), ("", "Other outcomes"))
    for role, title in groups:
        sub = frame.loc[frame["role"] == role] if len(frame) else frame
        if not len(sub):
            continue
        parts.append(f'<tbody><tr class="group"><th colspan="{len(heads)}">{esc(title)}</th></tr>')
        for r in sub.to_dict(orient="records"):
            name = f"{r['outcome_label']} ({r['measure']})"
            target = anchors.get(r["analysis"])
            link = f'<a href="#{esc(target)}">{esc(name)}</a>' if target else esc(name)
            cells = [
                f'<th scope="row" class="text">{link}</th>',
                f'<td class="text">{esc(comparison_label(r["comparison"], short=True))}</td>',
            ]
            cells += [f'<td class="{c.css}">{_cell_html(c, r)}</td>' for c in COLUMNS]
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</tbody>")
    parts.append("</table></div>")
    return "\n".join(parts)
