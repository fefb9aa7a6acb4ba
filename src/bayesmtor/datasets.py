"""Analysis-ready meta-analysis inputs built from the curated tables.

The 2014 paper pooled every report and every subgroup as its own study, so BOLERO-2 (one trial,
724 women) entered its analyses up to five times. This module offers both views:

``unit="report"``
    the paper's unit: every report x partition level with a usable measure is a row.
``unit="trial"``
    each trial once. BOLERO-2 is represented by one row chosen by the ``bolero2`` rule:

    ``"latest_full_report"`` (default)
        the most recent full-population report (Hortobagyi 2011, Baselga 2012, Novartis 2012)
        that prints the outcome with a usable measure (both arms for counts, a CI for hazard
        ratios). Baselga 2012 and Novartis 2012 carry the same year and the source prints no
        month; Novartis 2012 is taken as the later one (the order of Tables 1, 2 and 5). So
        PFS -> Baselga 2012 (Novartis 2012 prints no CI), ORR -> Novartis 2012,
        CBR -> Hortobagyi 2011.
    ``"report:<report_id>"``
        one named full-population report (for sensitivity analyses).
    ``"partition:visceral_metastases"`` / ``"partition:region"``
        combine the complete partition (Campone 2013 / Noguchi 2013): counts are summed over
        the levels; hazard ratios are combined by inverse-variance weighting of the subgroup
        log-HRs (standard errors from the printed 95% CIs), which approximates - but is not -
        the full-population HR. The levels must cover the full population (485 / 239) and
        all print the outcome, otherwise :class:`~bayesmtor.errors.InputError` is raised.

    Two partitions of the same patients are never combined, and no report is mixed with
    another report of the same trial.

Outcome ids: ``"orr"``, ``"cbr"`` (counts, measure RR), ``"pfs"`` (hazard ratio, measure HR),
``"ae_any:<event>"`` and ``"ae_grade34:<event>"`` (counts, RR). Comparison ids:
``"everolimus_endocrine"``, ``"everolimus_neoadjuvant"``, ``"temsirolimus_endocrine"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import pandas as pd

from bayesmtor._resources import data_path
from bayesmtor.data import SCHEMAS as _TABLES
from bayesmtor.data import (
    load_adverse_events,
    load_cohort,
    load_efficacy_arms,
    load_hazard_ratios,
    load_studies,
)
from bayesmtor.errors import InputError
from bayesmtor.vocabulary import BOLERO2_CHOICES, COMPARISONS, UNITS, z_quantile

__all__ = [
    "BOLERO2",
    "BOLERO2_RECENCY",
    "COMPARISONS",
    "Dataset",
    "SingleArmCohort",
    "available_analyses",
    "comparative_dataset",
    "single_arm_cohort",
]

#: trial_id of the trial reported five times.
BOLERO2 = "BOLERO-2"

#: BOLERO-2 reports from oldest to newest. Baselga 2012 and Novartis 2012 share the printed
#: year (no month is printed); Novartis 2012 is placed last, following Tables 1, 2 and 5.
BOLERO2_RECENCY: tuple[str, ...] = (
    "hortobagyi2011",
    "baselga2012",
    "novartis2012",
    "campone2013",
    "noguchi2013",
)

_COUNT_COLS = ["events_trt", "n_trt", "events_ctl", "n_ctl"]
_RATIO_COLS = ["estimate", "ci_low", "ci_high"]
_ID_COLS = ["study", "trial_id", "report_id", "partition", "level", "drug_class", "comparison"]
_LEVEL_TEXT = {
    ("visceral_metastases", "yes"): "visceral metastases",
    ("visceral_metastases", "no"): "no visceral metastases",
    ("region", "asian"): "Asian",
    ("region", "non_asian"): "non-Asian",
}
_LEVEL_ORDER = {"all": 0, "combined": 0, "yes": 1, "no": 2, "asian": 1, "non_asian": 2}
_PARTITION_TEXT = {
    "visceral_metastases": "visceral metastases yes + no combined",
    "region": "Asian + non-Asian combined",
}


@dataclass(frozen=True)
class Dataset:
    """Meta-analysis input for one outcome x comparison group.

    Attributes
    ----------
    data : pandas.DataFrame
        One row per study with columns ``study`` (label such as ``"Bachelot 2012"`` or
        ``"BOLERO-2 (Baselga 2012)"``), ``trial_id``, ``report_id``, ``partition``, ``level``,
        ``drug_class``, ``comparison``, then either ``events_trt, n_trt, events_ctl, n_ctl``
        (``measure == "RR"``) or ``estimate, ci_low, ci_high, ci_level`` (``measure == "HR"``),
        and ``notes``.
    excluded : pandas.DataFrame
        Rows and reports left out, with columns ``study``, ``report_id``, ``reason``.
    outcome, comparison, unit : str
        What was asked for.
    measure : str
        ``"RR"`` for count outcomes, ``"HR"`` for ``"pfs"``.
    bolero2 : str or None
        The BOLERO-2 rule applied (``None`` for ``unit="report"``).
    """

    data: pd.DataFrame
    excluded: pd.DataFrame
    outcome: str
    comparison: str
    unit: str
    measure: str
    bolero2: str | None

    @property
    def k(self) -> int:
        """Number of studies (rows of :attr:`data`)."""
        return len(self.data)

    @property
    def input_shape(self) -> str:
        """``"counts"`` or ``"ratio_ci"``: the user-input shape of :attr:`data`."""
        return "counts" if self.measure == "RR" else "ratio_ci"

    def summary(self) -> pd.DataFrame:
        """A copy of :attr:`data` (the study rows with their numbers)."""
        return self.data.copy()

    def describe(self) -> str:
        """Plain-text description: what is pooled, the unit rule, the rows and the exclusions."""
        rule = "" if self.bolero2 is None else f", BOLERO-2 rule '{self.bolero2}'"
        lines = [
            f"{self.outcome} / {self.comparison}: {self.k} {self.unit}-level row(s), "
            f"measure {self.measure} ({self.input_shape}){rule}"
        ]
        for row in self.data.itertuples(index=False):
            if self.measure == "RR":
                nums = f"{row.events_trt}/{row.n_trt} vs {row.events_ctl}/{row.n_ctl}"
            else:
                nums = f"HR {row.estimate:.3g} [{row.ci_low:.3g}, {row.ci_high:.3g}]"
            lines.append(f"  {row.study}: {nums}")
        if len(self.excluded):
            lines.append("excluded:")
            for row in self.excluded.itertuples(index=False):
                lines.append(f"  {row.study}: {row.reason}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"Dataset(outcome={self.outcome!r}, comparison={self.comparison!r}, "
            f"unit={self.unit!r}, measure={self.measure!r}, k={self.k}, "
            f"excluded={len(self.excluded)})"
        )


@dataclass(frozen=True)
class SingleArmCohort:
    """The rapamycin cohort with the reason it never enters a comparative analysis.

    Attributes
    ----------
    groups, comparisons, characteristics : pandas.DataFrame
        As in :class:`bayesmtor.data.Cohort`.
    reason : str
        Why it is excluded from every comparative dataset.
    """

    groups: pd.DataFrame
    comparisons: pd.DataFrame
    characteristics: pd.DataFrame
    reason: str

    def summary(self) -> pd.DataFrame:
        """Receptor groups with 5-year overall survival (group_id, label, n, os_5yr_percent)."""
        return self.groups[["group_id", "label", "n", "os_5yr_percent"]].copy()

    def describe(self) -> str:
        """Plain-text description of the cohort and its exclusion reason."""
        lines = [f"West-Iran rapamycin cohort: {self.reason}"]
        for g in self.groups.itertuples(index=False):
            lines.append(
                f"  group {g.group_id} ({g.label}): 5-year OS {g.os_5yr_percent:g}%, n not printed"
            )
        for c in self.comparisons.itertuples(index=False):
            lines.append(f"  group {c.group_a} vs {c.group_b}: {c.p_value_printed}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# helpers


def _labels(studies: pd.DataFrame) -> dict[str, str]:
    """Short 'Author Year' label per report id."""
    out = {}
    for rep, design, author, year in zip(
        studies["report_id"],
        studies["design"],
        studies["first_author"],
        studies["year"],
        strict=True,
    ):
        if design == "single-arm cohort":
            out[str(rep)] = "West-Iran rapamycin cohort"
            continue
        name = str(author).split()[0] if str(author) else str(rep)
        out[str(rep)] = name if pd.isna(year) else f"{name} {int(year)}"
    return out


def _study_label(labels: dict[str, str], trial: str, report: str, part: str, level: str) -> str:
    base = labels.get(report, report)
    if part != "none":
        if level == "combined":
            base = f"{base}, {_PARTITION_TEXT.get(part, part)}"
        else:
            base = f"{base}, {_LEVEL_TEXT.get((part, level), f'{part}={level}')}"
    return f"{BOLERO2} ({base})" if trial == BOLERO2 else base


def _parse_outcome(outcome: str) -> tuple[str, str | None]:
    """Return (kind, event) with kind in {'efficacy', 'pfs', 'ae_any', 'ae_grade34'}."""
    if not isinstance(outcome, str):
        raise InputError(
            f"outcome must be a string, got {type(outcome).__name__}", column="outcome"
        )
    if outcome in ("orr", "cbr"):
        return "efficacy", None
    if outcome == "pfs":
        return "pfs", None
    kind, sep, event = outcome.partition(":")
    if sep and kind in ("ae_any", "ae_grade34") and event:
        return kind, event
    raise InputError(
        f"unknown outcome '{outcome}'; expected 'orr', 'cbr', 'pfs', 'ae_any:<event>' or "
        "'ae_grade34:<event>' (see available_analyses())",
        column="outcome",
    )


def _arm_rows(kind: str, outcome: str, event: str | None, comparison: str) -> pd.DataFrame:
    """Long per-arm rows of the requested outcome with a 'status' explaining unusable rows."""
    if kind == "efficacy":
        arms = load_efficacy_arms()
        arms = arms[(arms["outcome"] == outcome) & (arms["comparison"] == comparison)]
    else:
        arms = load_adverse_events()
        grades = ["any"] if kind == "ae_any" else ["3-4", "3-5"]
        arms = arms[
            (arms["event"] == event)
            & (arms["grade"].isin(grades))
            & (arms["comparison"] == comparison)
        ]
    return arms.copy()


def _count_rows(arms: pd.DataFrame) -> tuple[list[dict], list[dict]]:
    """Pair trt/ctl arms per report x partition level; return (usable, unusable-with-reason)."""
    usable, unusable = [], []
    keys = ["report_id", "trial_id", "partition", "level", "comparison"]
    groups: dict[tuple, dict[str, dict]] = {}
    for rec in arms.to_dict("records"):
        groups.setdefault(tuple(rec[k] for k in keys), {}).setdefault(rec["arm"], rec)
    for key, by_arm in groups.items():
        rec = dict(zip(keys, key, strict=True))
        problems = []
        for arm, name in (("trt", "mTOR-inhibitor"), ("ctl", "control")):
            row = by_arm.get(arm)
            if row is None:
                problems.append(f"{name} arm not printed")
            elif pd.isna(row["events"]):
                problems.append(
                    f"{name} arm printed as '{row['value_printed']}': no count can be derived"
                )
            elif row.get("grade") == "3-5":
                problems.append("grade 3-5 printed (not grade 3-4)")
        if problems:
            rec["reason"] = "; ".join(dict.fromkeys(problems))
            unusable.append(rec)
            continue
        t, c = by_arm["trt"], by_arm["ctl"]
        rec.update(
            events_trt=int(t["events"]),
            n_trt=int(t["n"]),
            events_ctl=int(c["events"]),
            n_ctl=int(c["n"]),
            notes="events derived as round_half_up(percent/100*n) from the printed "
            f"percentages {t['value_printed']} vs {c['value_printed']}",
        )
        usable.append(rec)
    return usable, unusable


def _hr_rows(comparison: str) -> tuple[list[dict], list[dict]]:
    hr = load_hazard_ratios()
    hr = hr[(hr["outcome"] == "pfs") & (hr["comparison"] == comparison)]
    usable, unusable = [], []
    for r in hr.itertuples(index=False):
        rec = dict(
            report_id=r.report_id,
            trial_id=r.trial_id,
            partition=r.partition,
            level=r.level,
            comparison=r.comparison,
        )
        if pd.isna(r.ci_low) or pd.isna(r.ci_high):
            rec["reason"] = f"HR {r.hr:g} printed without CI: excluded from pooling"
            unusable.append(rec)
            continue
        rec.update(
            estimate=float(r.hr),
            ci_low=float(r.ci_low),
            ci_high=float(r.ci_high),
            ci_level=float(r.ci_level),
            notes="hazard ratio and CI as printed",
        )
        usable.append(rec)
    return usable, unusable


def _full_population_n(studies: pd.DataFrame) -> tuple[int, int]:
    """Printed BOLERO-2 arm sizes of the full-population reports (must agree)."""
    full = studies[(studies["trial_id"] == BOLERO2) & studies["n_trt"].notna()]
    pairs = {(int(a), int(b)) for a, b in zip(full["n_trt"], full["n_ctl"], strict=True)}
    if len(pairs) != 1:
        raise InputError(
            f"full-population BOLERO-2 reports disagree on the arm sizes: {sorted(pairs)}",
            source="studies.csv",
            column="n_trt",
        )
    return pairs.pop()


def _arm_sizes(report: str, partition: str) -> dict[str, tuple[int, int]]:
    """level -> (n_trt, n_ctl) for one report partition, from efficacy_arms.csv."""
    arms = load_efficacy_arms()
    arms = arms[(arms["report_id"] == report) & (arms["partition"] == partition)]
    out: dict[str, tuple[int, int]] = {}
    for level, grp in arms.groupby("level"):
        n = {a: int(g["n"].iloc[0]) for a, g in grp.groupby("arm")}
        out[str(level)] = (n["trt"], n["ctl"])
    return out


def _combine_partition(
    rows: list[dict], partition: str, measure: str, studies: pd.DataFrame, outcome: str
) -> dict:
    """Combine the complete partition of BOLERO-2 into one full-population row."""
    part_rows = [r for r in rows if r["partition"] == partition]
    reports = studies.loc[studies["trial_id"] == BOLERO2, "report_id"].tolist()
    owner = None
    for rep in reports:
        if _arm_sizes(rep, partition):
            owner = rep
            break
    if owner is None:
        raise InputError(
            f"no BOLERO-2 report has the partition '{partition}'; expected "
            "'visceral_metastases' (Campone 2013) or 'region' (Noguchi 2013)",
            source="efficacy_arms.csv",
            column="partition",
        )
    sizes = _arm_sizes(owner, partition)
    full = _full_population_n(studies)
    total = (sum(s[0] for s in sizes.values()), sum(s[1] for s in sizes.values()))
    if total != full:
        raise InputError(
            f"partition '{partition}' of {owner} covers {total[0]}/{total[1]} patients, not the "
            f"full BOLERO-2 population {full[0]}/{full[1]}",
            source="efficacy_arms.csv",
            study=owner,
            column="n",
        )
    have = {r["level"] for r in part_rows if r["report_id"] == owner}
    lacking = sorted(set(sizes) - have)
    if lacking:
        raise InputError(
            f"partition '{partition}' of {owner} lacks a usable '{outcome}' at level(s) "
            f"{lacking}; a partition can stand for BOLERO-2 only when every level prints the "
            "outcome (in both arms, or with a CI)",
            study=owner,
            column="level",
        )
    use = [r for r in part_rows if r["report_id"] == owner]
    rec = dict(
        report_id=owner,
        trial_id=BOLERO2,
        partition=partition,
        level="combined",
        comparison=use[0]["comparison"],
    )
    if measure == "RR":
        for col in _COUNT_COLS:
            rec[col] = int(sum(r[col] for r in use))
        rec["notes"] = (
            f"sum of events and n over the levels of '{partition}' "
            f"({', '.join(sorted(r['level'] for r in use))})"
        )
    else:
        level = float(use[0]["ci_level"])
        z = z_quantile(level)
        y = np.array([math.log(r["estimate"]) for r in use])
        se = np.array([(math.log(r["ci_high"]) - math.log(r["ci_low"])) / (2 * z) for r in use])
        w = 1.0 / se**2
        est = float(np.sum(w * y) / np.sum(w))
        se_p = float(math.sqrt(1.0 / np.sum(w)))
        rec.update(
            estimate=math.exp(est),
            ci_low=math.exp(est - z * se_p),
            ci_high=math.exp(est + z * se_p),
            ci_level=level,
            notes=(
                f"inverse-variance combination of the subgroup log-HRs of '{partition}' "
                "(SE from the printed CIs); approximates the full-population HR"
            ),
        )
    return rec


def _check_args(comparison: str, unit: str, bolero2: str | None) -> str | None:
    if comparison not in COMPARISONS:
        raise InputError(
            f"unknown comparison '{comparison}'; expected one of {list(COMPARISONS)}",
            column="comparison",
        )
    if unit not in UNITS:
        raise InputError(f"unknown unit '{unit}'; expected 'trial' or 'report'", column="unit")
    if unit == "report":
        if bolero2 is not None:
            raise InputError(
                "bolero2 applies only to unit='trial'; with unit='report' every BOLERO-2 report "
                "and subgroup is its own row (leave bolero2=None)",
                column="bolero2",
            )
        return None
    rule = "latest_full_report" if bolero2 is None else bolero2
    ok = rule in BOLERO2_CHOICES or (rule.startswith("report:") and len(rule) > len("report:"))
    if not ok:
        raise InputError(
            f"unknown bolero2 rule '{bolero2}'; expected 'latest_full_report', "
            "'partition:visceral_metastases', 'partition:region' or 'report:<report_id>'",
            column="bolero2",
        )
    return rule


def _outcome_rows(
    kind: str, outcome: str, event: str | None, comparison: str
) -> tuple[str, list[dict], list[dict]]:
    """Selection: the measure, the usable rows and the unusable ones (each with its reason)."""
    if kind == "pfs":
        return "HR", *_hr_rows(comparison)
    return "RR", *_count_rows(_arm_rows(kind, outcome, event, comparison))


def _row_label(labels: dict[str, str], rec: dict) -> str:
    """The study label of one row (trial, report, partition and level)."""
    return _study_label(labels, rec["trial_id"], rec["report_id"], rec["partition"], rec["level"])


def _exclusion(labels: dict[str, str], rec: dict, reason: str) -> dict:
    """One row of ``Dataset.excluded`` for the study row ``rec``."""
    return dict(
        study=_row_label(labels, rec),
        report_id=rec["report_id"],
        reason=reason,
    )


def _bolero2_by_report(
    bolero: list[dict], rule: str, outcome: str, labels: dict[str, str]
) -> tuple[dict | None, list[dict]]:
    """BOLERO-2 once by one full-population report: the latest, or the one ``rule`` names."""
    full = [r for r in bolero if r["partition"] == "none"]
    chosen: dict | None = None
    if rule.startswith("report:"):
        want = rule.split(":", 1)[1]
        pick = [r for r in full if r["report_id"] == want]
        if not pick:
            raise InputError(
                f"bolero2 rule '{rule}': {want} is not a full-population BOLERO-2 report "
                f"with a usable '{outcome}'; usable: {[r['report_id'] for r in full]}",
                column="bolero2",
            )
        chosen = pick[0]
    elif full:
        chosen = max(full, key=lambda r: BOLERO2_RECENCY.index(r["report_id"]))
    if chosen is None:
        return None, [
            _exclusion(
                labels,
                r,
                "subgroup of BOLERO-2; no full-population BOLERO-2 report prints "
                f"a usable '{outcome}' (try bolero2='partition:...')",
            )
            for r in bolero
        ]
    why = f"BOLERO-2 counted once (rule '{rule}')"
    why += f": {_study_label(labels, BOLERO2, chosen['report_id'], 'none', 'all')} used"
    excluded = []
    for r in bolero:
        if r is chosen:
            continue
        kind_txt = (
            "second report of BOLERO-2" if r["partition"] == "none" else "subgroup of BOLERO-2"
        )
        excluded.append(_exclusion(labels, r, f"{kind_txt}; {why}"))
    return chosen, excluded


def _bolero2_once(
    bolero: list[dict],
    rule: str,
    outcome: str,
    comparison: str,
    measure: str,
    studies: pd.DataFrame,
    labels: dict[str, str],
) -> tuple[dict | None, list[dict]]:
    """Unit-of-analysis rule: the one BOLERO-2 row under ``rule`` and the rows it leaves out."""
    if rule == "latest_full_report" or rule.startswith("report:"):
        return _bolero2_by_report(bolero, rule, outcome, labels)
    if not (studies["trial_id"].eq(BOLERO2) & studies["comparison"].eq(comparison)).any():
        return None, []
    partition = rule.split(":", 1)[1]
    chosen = _combine_partition(bolero, partition, measure, studies, outcome)
    excluded = []
    for r in bolero:
        if r["partition"] == partition:
            continue
        kind_txt = (
            "second report of BOLERO-2"
            if r["partition"] == "none"
            else "subgroup of BOLERO-2 from another partition"
        )
        excluded.append(
            _exclusion(labels, r, f"{kind_txt}; BOLERO-2 counted once via rule '{rule}'")
        )
    return chosen, excluded


def _silent_reports(
    studies: pd.DataFrame,
    labels: dict[str, str],
    comparison: str,
    outcome: str,
    present: set[str],
) -> list[dict]:
    """Reports of this comparison that contribute nothing, and reports without a comparison."""
    excluded = []
    for s in studies.to_dict("records"):
        label = _study_label(labels, s["trial_id"], s["report_id"], "none", "all")
        if s["comparison"] == comparison and s["report_id"] not in present:
            excluded.append(
                dict(
                    study=label,
                    report_id=s["report_id"],
                    reason=f"'{outcome}' not printed for this report",
                )
            )
        elif s["comparison"] == "":
            reason = (
                "single-arm cohort: no comparator"
                if s["design"] == "single-arm cohort"
                else "no outcome data printed and no comparison group (Table 5 only)"
            )
            excluded.append(dict(study=label, report_id=s["report_id"], reason=reason))
    return excluded


def _assemble(
    rows: list[dict], measure: str, studies: pd.DataFrame, labels: dict[str, str]
) -> pd.DataFrame:
    """Assembly: ``Dataset.data``, ordered as the studies table, subgroups after their report."""
    order = {r: i for i, r in enumerate(studies["report_id"])}
    rows = sorted(
        rows,
        key=lambda r: (order.get(r["report_id"], len(order)), _LEVEL_ORDER.get(r["level"], 9)),
    )
    value_cols = _COUNT_COLS if measure == "RR" else [*_RATIO_COLS, "ci_level"]
    drug = dict(zip(studies["report_id"], studies["drug_class"], strict=True))
    records = []
    for r in rows:
        records.append(
            dict(
                study=_row_label(labels, r),
                trial_id=r["trial_id"],
                report_id=r["report_id"],
                partition=r["partition"],
                level=r["level"],
                drug_class=drug[r["report_id"]],
                comparison=r["comparison"],
                **{c: r[c] for c in value_cols},
                notes=r["notes"],
            )
        )
    dtypes = {c: "string" for c in [*_ID_COLS, "notes"]}
    dtypes.update({c: ("Int64" if measure == "RR" else "float64") for c in value_cols})
    return pd.DataFrame(records, columns=[*_ID_COLS, *value_cols, "notes"]).astype(dtypes)


# --------------------------------------------------------------------------------------------
# public API


def comparative_dataset(
    outcome: str,
    comparison: str,
    unit: str = "trial",
    bolero2: str | None = None,
) -> Dataset:
    """Meta-analysis input for one outcome in one comparison group.

    Parameters
    ----------
    outcome : str
        ``"orr"``, ``"cbr"``, ``"pfs"``, ``"ae_any:<event>"`` or ``"ae_grade34:<event>"``.
    comparison : str
        One of :data:`COMPARISONS`.
    unit : {"trial", "report"}
        ``"report"`` reproduces the paper's unit (every report and subgroup is a study);
        ``"trial"`` counts every trial once (BOLERO-2 by the ``bolero2`` rule).
    bolero2 : str, optional
        Only with ``unit="trial"``: ``"latest_full_report"`` (default),
        ``"report:<report_id>"``, ``"partition:visceral_metastases"`` or
        ``"partition:region"`` (see the module docstring).

    Returns
    -------
    Dataset
        ``data`` in the counts shape (``measure="RR"``) or ratio_ci shape (``measure="HR"``),
        ``excluded`` with one reason per row or report left out. ``data`` may be empty when
        nothing usable is printed; check ``Dataset.k``.

    Raises
    ------
    InputError
        Unknown outcome, comparison, unit or rule; a partition rule whose partition does not
        cover the full population or lacks the outcome; a named report that is not a usable
        full-population BOLERO-2 report.

    Examples
    --------
    >>> ds = comparative_dataset("cbr", "everolimus_endocrine", unit="trial")
    >>> ds.data["study"].tolist()
    ['BOLERO-2 (Hortobagyi 2011)', 'Bachelot 2012']
    """
    # A plan run asks for the same dataset up to four times (listing what is available,
    # fitting, meta-regression, replication): built once per version of the curated tables,
    # handed out as fresh frames.
    ds = _comparative_dataset(outcome, comparison, unit, bolero2, _tables_stamp())
    return replace(ds, data=ds.data.copy(deep=True), excluded=ds.excluded.copy(deep=True))


def _tables_stamp() -> tuple[int, ...]:
    """Modification times of the curated tables (a new version builds its datasets anew)."""
    out = []
    for name in sorted(_TABLES):
        try:
            out.append(data_path(name).stat().st_mtime_ns)
        except OSError:
            out.append(-1)
    return tuple(out)


@lru_cache(maxsize=512)
def _comparative_dataset(
    outcome: str, comparison: str, unit: str, bolero2: str | None, stamp: tuple[int, ...]
) -> Dataset:
    rule = _check_args(comparison, unit, bolero2)
    kind, event = _parse_outcome(outcome)
    studies = load_studies()
    labels = _labels(studies)
    measure, rows, unusable = _outcome_rows(kind, outcome, event, comparison)
    excluded = [_exclusion(labels, rec, rec["reason"]) for rec in unusable]
    if unit == "trial":
        bolero = [r for r in rows if r["trial_id"] == BOLERO2]
        rows = [r for r in rows if r["trial_id"] != BOLERO2]
        chosen, left_out = _bolero2_once(
            bolero, rule, outcome, comparison, measure, studies, labels
        )
        excluded += left_out
        if chosen is not None:
            rows.append(chosen)
    present = {r["report_id"] for r in rows} | {e["report_id"] for e in excluded}
    if unit == "trial" and rule.startswith("partition:"):
        present |= {r["report_id"] for r in bolero}
    excluded += _silent_reports(studies, labels, comparison, outcome, present)
    excl = pd.DataFrame(excluded, columns=["study", "report_id", "reason"]).astype("string")
    return Dataset(
        data=_assemble(rows, measure, studies, labels),
        excluded=excl.reset_index(drop=True),
        outcome=outcome,
        comparison=comparison,
        unit=unit,
        measure=measure,
        bolero2=rule,
    )


def _all_outcomes() -> list[str]:
    ae = load_adverse_events()
    out = ["orr", "cbr", "pfs"]
    out += [f"ae_any:{e}" for e in sorted(set(ae.loc[ae["grade"] == "any", "event"]))]
    out += [f"ae_grade34:{e}" for e in sorted(set(ae.loc[ae["grade"] != "any", "event"]))]
    return out


def available_analyses(unit: str = "trial", bolero2: str | None = None) -> pd.DataFrame:
    """Every outcome x comparison with at least one usable study.

    Parameters
    ----------
    unit : {"trial", "report"}
        As in :func:`comparative_dataset`.
    bolero2 : str, optional
        BOLERO-2 rule for ``unit="trial"``. A partition rule that cannot serve an outcome
        (partition lacking it) is reported as ``k = 0`` for the analyses that need BOLERO-2 and
        otherwise skipped; such analyses are omitted.

    Returns
    -------
    pandas.DataFrame
        Columns ``outcome``, ``comparison``, ``measure``, ``unit``, ``k``, ``studies``
        (labels joined by ``"; "``), ``n_excluded``; only rows with ``k >= 1``.
    """
    _check_args(COMPARISONS[0], unit, bolero2)
    rows = []
    for outcome in _all_outcomes():
        for comparison in COMPARISONS:
            try:
                ds = comparative_dataset(outcome, comparison, unit=unit, bolero2=bolero2)
            except InputError:
                continue
            if ds.k == 0:
                continue
            rows.append(
                dict(
                    outcome=outcome,
                    comparison=comparison,
                    measure=ds.measure,
                    unit=unit,
                    k=ds.k,
                    studies="; ".join(ds.data["study"]),
                    n_excluded=len(ds.excluded),
                )
            )
    out = pd.DataFrame(
        rows, columns=["outcome", "comparison", "measure", "unit", "k", "studies", "n_excluded"]
    )
    out["k"] = out["k"].astype("int64")
    out["n_excluded"] = out["n_excluded"].astype("int64")
    return out


def single_arm_cohort() -> SingleArmCohort:
    """The West-Iran rapamycin cohort and the reason it is never pooled.

    Returns
    -------
    SingleArmCohort
        Groups, pairwise comparisons and characteristics, with ``reason``.
    """
    c = load_cohort()
    return SingleArmCohort(
        groups=c.groups,
        comparisons=c.comparisons,
        characteristics=c.characteristics,
        reason=(
            "single-arm cohort: no comparator (every patient received rapamycin; the "
            "printed comparisons are between receptor groups, not treatments), so it "
            "enters no comparative dataset; group sizes are not printed"
        ),
    )
