"""The result of :func:`~bayesmtor.replication.replicate`: its columns, its text table and
the exit status of ``bayesmtor replicate``.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

import pandas as pd

from bayesmtor.data import load_published_results
from bayesmtor.errors import BayesMTORError, InputError

#: The three possible values of the ``status`` column.
STATUSES: tuple[str, ...] = ("matches", "differs", "not_reproducible")

#: Columns of :attr:`ReplicationResult.table`, in order (stable: the CLI writes them to CSV).
TABLE_COLUMNS: tuple[str, ...] = (
    "result_id",
    "source_location",
    "outcome",
    "comparison",
    "measure",
    "model",
    "published_estimate",
    "published_ci_low",
    "published_ci_high",
    "published_het_p",
    "published_I2",
    "published_Z",
    "ours_estimate",
    "ours_ci_low",
    "ours_ci_high",
    "ours_het_p",
    "ours_I2",
    "ours_Z",
    "k_reports",
    "reports_used",
    "status",
    "reason",
)

#: Columns of :attr:`ReplicationResult.interpretations`, in order.
INTERPRETATION_COLUMNS: tuple[str, ...] = (
    "result_id",
    "interpretation",
    "primary",
    "rows",
    "zero_cell",
    "rounding",
    "k_reports",
    "reports_used",
    "dropped",
    "estimate",
    "ci_low",
    "ci_high",
    "het_p",
    "I2",
    "Z",
    "max_deviation_units",
    "outside",
)


#: Printed number -> (published column, our column). ``Z`` is compared as |Z| (RevMan prints
#: the magnitude).
COMPARED_FIELDS: dict[str, tuple[str, str]] = {
    "estimate": ("estimate", "ours_estimate"),
    "ci_low": ("ci_low", "ours_ci_low"),
    "ci_high": ("ci_high", "ours_ci_high"),
    "het_p": ("het_p", "ours_het_p"),
    "I2": ("i2", "ours_I2"),
    "Z": ("z", "ours_Z"),
}


@dataclass(frozen=True, eq=False)
class ReplicationResult:
    """Published pooled results of the 2014 paper beside ours.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per published result (``data/published_results.csv``), columns
        :data:`TABLE_COLUMNS`. ``published_*`` and ``ours_*`` are on the ratio scale (het_p
        and I2 as printed: p-value and percent; Z as |Z|). ``ours_*`` come from the primary
        interpretation (the paper's method on all printed report rows) and are empty for
        ``not_reproducible`` rows. ``reports_used`` joins the study labels with ``"; "``.
    interpretations : pandas.DataFrame
        Every reading computed (columns :data:`INTERPRETATION_COLUMNS`), the primary one
        flagged; ``max_deviation_units`` is the largest ``|ours - printed|`` in units of the last
        printed digit and ``outside`` lists the numbers further than one unit.
    ci_prob : float
        Interval probability of ``ours_ci_*``. Printed intervals are 95%; at another level the
        interval bounds are not compared.
    """

    table: pd.DataFrame
    interpretations: pd.DataFrame
    ci_prob: float

    def status_counts(self) -> dict[str, int]:
        """Number of results per status (all three statuses, zeros included)."""
        counts = self.table["status"].value_counts()
        return {s: int(counts.get(s, 0)) for s in STATUSES}

    def summary(self) -> pd.DataFrame:
        """Compact table: ``result_id, source_location, published, ours, het_p_published,
        het_p_ours, k_reports, status, reason`` (estimates formatted as ``"1.92 [1.69, 2.17]"``)."""
        t = self.table
        return pd.DataFrame(
            {
                "result_id": t["result_id"],
                "source_location": t["source_location"],
                "published": [_fmt_ratio(*r, printed=True) for r in _triples(t, "published")],
                "ours": [_fmt_ratio(*r) for r in _triples(t, "ours")],
                "het_p_published": t["published_het_p"],
                "het_p_ours": t["ours_het_p"],
                "k_reports": t["k_reports"],
                "status": t["status"],
                "reason": t["reason"],
            }
        )

    def to_frame(self) -> pd.DataFrame:
        """A copy of :attr:`table` (what ``bayesmtor replicate`` writes to CSV)."""
        return self.table.copy()

    def __repr__(self) -> str:
        c = self.status_counts()
        lines = [
            f"ReplicationResult: {len(self.table)} published results of the 2014 paper "
            f"({c['matches']} matches, {c['differs']} differs, "
            f"{c['not_reproducible']} not_reproducible), ours at {100 * self.ci_prob:g}%"
        ]
        for r in self.summary().itertuples(index=False):
            lines.append(f"  {r.result_id:30s} {r.status:17s} {r.published:24s} ours {r.ours}")
        return "\n".join(lines)

    __str__ = __repr__


def _triples(t: pd.DataFrame, prefix: str) -> list[tuple[float, float, float]]:
    cols = [f"{prefix}_estimate", f"{prefix}_ci_low", f"{prefix}_ci_high"]
    return list(t[cols].astype(float).itertuples(index=False, name=None))


def _fmt_ratio(est: float, lo: float, hi: float, printed: bool = False) -> str:
    """``"est [lo, hi]"``: printed values as stored, ours with 3 decimals (2 from 10 up)."""

    def one(x: float) -> str:
        if printed:
            return f"{x:g}"
        return f"{x:.2f}" if abs(x) >= 10 else f"{x:.3f}"

    if not math.isfinite(est):
        return "-"
    if math.isfinite(lo) and math.isfinite(hi):
        return f"{one(est)} [{one(lo)}, {one(hi)}]"
    return one(est)


def _fmt_num(x: float) -> str:
    if not math.isfinite(x):
        return "NA"
    if x != 0 and abs(x) < 0.01:
        return f"{x:.4f}"
    return f"{x:.3f}"


def format_replication(result: ReplicationResult, width: int = 100) -> str:
    """Plain-text table of a :class:`ReplicationResult` for the command line.

    Parameters
    ----------
    result : ReplicationResult
    width : int
        Line width for the wrapped reasons.

    Returns
    -------
    str
        A header with the status counts, one line per published result (id, where printed,
        published and our estimate [CI], heterogeneity p both ways, k, status), then the reason
        of every result that is not ``"matches"``.
    """
    if not isinstance(result, ReplicationResult):
        raise InputError(
            f"'result' must be a ReplicationResult (from replicate()), not {type(result).__name__}"
        )
    s = result.summary()
    c = result.status_counts()
    lines = [
        "Replication of the 2014 meta-analysis (Int J Clin Exp Med 2014;7(10):3333-3343)",
        "method: RevMan 5 fixed-effect Mantel-Haenszel RR / inverse-variance HR on report-level "
        f"rows; ours at {100 * result.ci_prob:g}%",
        f"{c['matches']} matches, {c['differs']} differs, {c['not_reproducible']} "
        "not_reproducible (within one unit of the last printed digit = matches)",
        "",
    ]

    def p_txt(x: float) -> str:
        return "-" if not math.isfinite(x) else _fmt_num(x)

    header = (
        f"{'result':28s} {'where':16s} {'published':24s} {'ours':24s} "
        f"{'het p pub/ours':17s} {'k':>2s}  status"
    )
    lines += [header, "-" * len(header)]
    for r in s.itertuples(index=False):
        het = f"{p_txt(float(r.het_p_published))}/{p_txt(float(r.het_p_ours))}"
        k = str(r.k_reports) if r.k_reports else "-"
        lines.append(
            f"{r.result_id[:28]:28s} {r.source_location[:16]:16s} {r.published:24s} "
            f"{r.ours:24s} {het:17s} {k:>2s}  {r.status}"
        )
    notes = [r for r in s.itertuples(index=False) if r.status != "matches"]
    if notes:
        lines += ["", "reasons:"]
        for r in notes:
            lines += textwrap.wrap(
                f"{r.result_id} [{r.status}]: {r.reason}",
                width=width,
                initial_indent="  ",
                subsequent_indent="      ",
            )
    return "\n".join(lines)


def replication_exit_status(result: ReplicationResult) -> int:
    """Exit status of ``bayesmtor replicate``: 0 unless the result is malformed.

    ``"differs"`` and ``"not_reproducible"`` are findings about the paper, not failures, so they
    give 0. 1 means an internal error: not a :class:`ReplicationResult`, a status outside
    :data:`STATUSES`, a missing column, or a published result missing or repeated.
    """
    try:
        if not isinstance(result, ReplicationResult):
            return 1
        t = result.table
        if list(t.columns) != list(TABLE_COLUMNS):
            return 1
        if not t["status"].isin(STATUSES).all() or t["result_id"].duplicated().any():
            return 1
        expected = set(load_published_results()["result_id"].astype(str))
        return 0 if set(t["result_id"].astype(str)) == expected else 1
    except (BayesMTORError, KeyError, ValueError):  # pragma: no cover - defensive
        return 1
