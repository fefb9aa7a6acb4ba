"""Reproduce the 2014 paper's pooled results, and show what changes when each trial counts once.

The 2014 meta-analysis (Int J Clin Exp Med 2014;7(10):3333-3343) pooled with RevMan 5:
fixed-effect Mantel-Haenszel risk ratios on report-level rows (every report and every subgroup
of a report is a study, so BOLERO-2 enters up to seven times), the chi-squared heterogeneity test
and I2, and PFS hazard ratios by generic inverse variance of the log HR with the standard error
taken from the printed 95% CI. :func:`replicate` redoes every pooled result the paper prints
(``data/published_results.csv``: Figures 2A-2D, 3A-3C, Tables 6-7, Abstract and text) with that
method on the curated inputs and classifies each one:

``"matches"``
    every printed number (estimate, CI bounds, heterogeneity p, I2, Z) is reproduced within one
    unit of its last printed digit (``|ours - printed| <= 10**-decimals``);
``"differs"``
    computed, but at least one printed number is further away; ``reason`` names the numbers and
    the cause;
``"not_reproducible"``
    the seed does not print the inputs (``reason`` says which).

The primary computation of each result is the paper's stated method on all report-level rows
the seed prints, with counts ``round_half_up(percent / 100 * n)`` and RevMan's zero-cell rule
(1/2 added to every cell of a table with a zero cell, also inside the MH estimate). A small,
fixed set of alternative readings is computed as well and kept in
:attr:`ReplicationResult.interpretations` - never tuned to a target:

* ``rounding``: ``"round_half_up"`` (the curated integer counts) or ``"unrounded"`` (the
  printed proportion times n, kept fractional: shows how much the rounding of counts matters);
* ``zero_cell`` (only where a table has a zero cell): ``"revman"``, ``"none"`` (MH estimate
  from raw counts, metafor's ``rma.mh`` default) or ``"drop_zero_row"``;
* ``rows``: ``"all"``; ``"drop_outlier"`` (Figure 2C/2D: without the one row whose removal
  leaves the least heterogeneity - the paper's study "[21]", identified from the data);
  for PFS ``"one_row_per_report"`` (the "6 studies" of Figure 2: subgroups of one report
  combined by inverse variance).

:func:`unit_comparison` puts the paper's unit (reports) beside each trial counted once
(``unit="trial"`` with the default BOLERO-2 rule and the partition alternatives), with
fixed-effect, REML and exact Bayesian results. :func:`format_replication` renders a result for
the command line and :func:`replication_exit_status` gives its exit status.

Examples
--------
>>> res = replicate()
>>> res.table.set_index("result_id").loc["fig2b_cbr", "status"]
'matches'
"""

from __future__ import annotations

from bayesmtor.replication.recompute import replicate
from bayesmtor.replication.results import (
    COMPARED_FIELDS,
    INTERPRETATION_COLUMNS,
    STATUSES,
    TABLE_COLUMNS,
    ReplicationResult,
    format_replication,
    replication_exit_status,
)
from bayesmtor.replication.units import UNIT_ANALYSES as UNIT_ANALYSES
from bayesmtor.replication.units import UNIT_COMPARISON_COLUMNS, unit_comparison

__all__ = [
    "COMPARED_FIELDS",
    "INTERPRETATION_COLUMNS",
    "STATUSES",
    "TABLE_COLUMNS",
    "UNIT_COMPARISON_COLUMNS",
    "ReplicationResult",
    "format_replication",
    "replicate",
    "replication_exit_status",
    "unit_comparison",
]
