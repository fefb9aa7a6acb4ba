"""Expansion of a plan against the bundled data, and the ids of the analyses.

``"ae_any:*"`` becomes one analysis per adverse event, ``comparison = "*"`` one per comparison
holding the outcome; an analysis whose data hold no usable trial (k = 0) is kept with its skip
reason, and so is a wildcard that matches nothing.

Analysis ids look like ``pfs.everolimus_endocrine.HR`` or
``ae_any-stomatitis.everolimus_endocrine.RR``; non-default likelihoods add a suffix
(``orr.all.RR.multilevel``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bayesmtor.plans import AnalysisSpec, Plan

__all__ = ["ALL", "Task", "analysis_id", "expand_plan"]

#: The comparison of an analysis that pools several comparisons (the multilevel model).
ALL = "all"


@dataclass(frozen=True)
class Task:
    """One analysis to fit: a plan entry bound to one outcome and comparison.

    Attributes
    ----------
    spec : AnalysisSpec
        The ``[[analysis]]`` entry it came from.
    outcome : str
        The outcome (wildcards resolved).
    comparison : str
        A comparison id, or ``"all"`` for the multilevel model.
    comparisons : tuple of str
        The comparisons pooled (several for the multilevel model).
    skip_reason : str or None
        Why the analysis cannot be fitted, if it cannot.
    """

    spec: AnalysisSpec
    outcome: str
    comparison: str
    comparisons: tuple[str, ...]
    skip_reason: str | None = None

    @property
    def id(self) -> str:
        """Analysis id (see :func:`analysis_id`)."""
        return analysis_id(self.outcome, self.comparison, self.spec.measure, self.spec.likelihood)


def analysis_id(outcome: str, comparison: str, measure: str, likelihood: str) -> str:
    """File-safe id of one analysis, e.g. ``ae_any-rash.everolimus_endocrine.RR``."""
    base = f"{outcome.replace(':', '-')}.{comparison}.{measure}"
    return base if likelihood == "normal-normal" else f"{base}.{likelihood.replace('-', '_')}"


def _outcome_matches(pattern: str, outcome: str) -> bool:
    if pattern.endswith(":*"):
        return outcome.startswith(pattern[:-1])
    return pattern == outcome


def expand_plan(plan: Plan, available: pd.DataFrame | None = None) -> list[Task]:
    """Expand the plan's wildcards against the data (one task per fit, in plan order).

    Parameters
    ----------
    plan : Plan
    available : pandas.DataFrame, optional
        Output of :func:`bayesmtor.datasets.available_analyses` for the plan's unit and
        BOLERO-2 rule (computed if omitted).
    """
    if available is None:
        from bayesmtor.datasets import available_analyses

        available = available_analyses(plan.unit, plan.bolero2)
    pairs = list(zip(available["outcome"], available["comparison"], strict=True))
    tasks: list[Task] = []
    for spec in plan.analyses:
        if spec.mods:  # meta-regressions: bayesmtor.pipeline.regression
            continue
        if spec.likelihood == "multilevel":
            outcomes = sorted({o for o, _ in pairs if _outcome_matches(spec.outcome, o)})
            if not outcomes:
                tasks.append(
                    Task(spec, spec.outcome, ALL, (), "no comparison holds this outcome (k = 0)")
                )
            for outcome in outcomes:
                comps = tuple(c for o, c in pairs if o == outcome)
                reason = None
                if len(comps) < 2:
                    reason = (
                        f"the multilevel model needs at least two comparisons holding '{outcome}'"
                        f", found {len(comps)} ({', '.join(comps) or 'none'})"
                    )
                tasks.append(Task(spec, outcome, ALL, comps, reason))
            continue
        if spec.is_wildcard:
            matched = [
                (o, c)
                for o, c in pairs
                if _outcome_matches(spec.outcome, o) and spec.comparison in ("*", c)
            ]
            if not matched:
                tasks.append(
                    Task(
                        spec,
                        spec.outcome,
                        spec.comparison.replace("*", ALL),
                        (),
                        "wildcard matches no outcome x comparison with data (no fit)",
                    )
                )
            for o, c in matched:
                tasks.append(Task(spec, o, c, (c,)))
            continue
        reason = None
        if (spec.outcome, spec.comparison) not in pairs:
            reason = (
                f"no usable trial for '{spec.outcome}' in '{spec.comparison}' with unit "
                f"'{plan.unit}' (k = 0)"
            )
        tasks.append(Task(spec, spec.outcome, spec.comparison, (spec.comparison,), reason))
    return tasks
