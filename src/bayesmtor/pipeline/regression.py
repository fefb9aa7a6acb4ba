"""The meta-regressions of a plan (``[[analysis]]`` tables with ``mods``): data and fits.

Each one pools an outcome across every comparison matching its ``comparison`` (an id, ``"*"``
or a pattern such as ``"everolimus_*"``), with the plan's unit of analysis and BOLERO-2 rule,
adds the moderator columns of the study table (``data/studies.csv``: e.g. ``setting``,
``partner_therapy``, ``jadad_total``) by report, and fits the frequentist meta-regression
(the plan's method if it is FE, DL, ML or REML, else REML; Knapp-Hartung with ``hksj``) and
the exact Bayesian one (the plan's tau prior, flat coefficients as bayesmeta's ``bmr()``).
Nothing is written here.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from bayesmtor.errors import EstimationError, InputError
from bayesmtor.plans import AnalysisSpec, Plan

__all__ = ["RegressionAnalysis", "fit_regressions", "regression_id"]


@dataclass(frozen=True, eq=False)
class RegressionAnalysis:
    """One meta-regression of a plan run.

    Attributes
    ----------
    spec : AnalysisSpec
        The ``[[analysis]]`` entry (with ``mods``).
    id : str
        File-safe id, e.g. ``orr.everolimus_all.RR.metareg-setting``.
    comparisons : tuple of str
        The comparisons pooled.
    status, reason : str, str or None
        ``"ok"``, ``"skipped"`` (no data) or ``"failed"`` (e.g. a rank-deficient design), why.
    table : pandas.DataFrame or None
        The studies analysed: ``study, comparison, report_id, yi, vi, sei`` and the moderators.
    freq, exact :
        The :class:`~bayesmtor.frequentist.regression.RegressionResult` and the
        :class:`~bayesmtor.bayes.regression.ExactRegressionPosterior`.
    seconds : float
        Fitting time.
    """

    spec: AnalysisSpec
    id: str
    comparisons: tuple[str, ...]
    status: str = "ok"
    reason: str | None = None
    table: pd.DataFrame | None = None
    freq: Any = None
    exact: Any = None
    seconds: float = 0.0

    @property
    def fitted(self) -> bool:
        return self.status == "ok"

    @property
    def k(self) -> int:
        return 0 if self.table is None else len(self.table)


def regression_id(spec: AnalysisSpec) -> str:
    """``outcome.comparison.measure.metareg-mod1-mod2`` (``*`` in the comparison as ``all``)."""
    comp = spec.comparison.replace("*", "all")
    return f"{spec.outcome}.{comp}.{spec.measure}.metareg-{'-'.join(spec.mods)}"


def _method(plan: Plan) -> str:
    from bayesmtor.vocabulary import REGRESSION_METHODS

    method = plan.frequentist.method
    return method if method in REGRESSION_METHODS else "REML"


def _study_table(plan: Plan, spec: AnalysisSpec, comps: tuple[str, ...]) -> tuple[Any, Any]:
    """The effect sizes of every comparison with the moderators; and the pooled table."""
    from bayesmtor.data import load_studies
    from bayesmtor.datasets import comparative_dataset
    from bayesmtor.effects import escalc

    frames = []
    for comp in comps:
        ds = comparative_dataset(spec.outcome, comp, plan.unit, plan.bolero2)
        frames.append(ds.data)
    data = pd.concat(frames, ignore_index=True)
    studies = load_studies()
    extra = [m for m in spec.mods if m not in data.columns]
    unknown = [m for m in extra if m not in studies.columns]
    if unknown:
        raise InputError(
            f"moderator {unknown[0]!r} is not a column of the study table (data/studies.csv); "
            f"available: {', '.join(c for c in studies.columns if not c.startswith('source'))}",
            column="mods",
        )
    mods = studies.set_index("report_id")[extra]
    data = data.join(mods, on="report_id")
    for m in extra:  # empty cells stay empty: the design refuses them with the study named
        data[m] = data[m].astype(object).where(data[m].notna(), None)
    return escalc(data, spec.measure), data


def _fit_one(plan: Plan, spec: AnalysisSpec, available: pd.DataFrame) -> RegressionAnalysis:
    from bayesmtor.bayes.regression import bayes_regression
    from bayesmtor.frequentist.regression import rma_regression

    rid = regression_id(spec)
    have = available.loc[available["outcome"] == spec.outcome, "comparison"].tolist()
    comps = tuple(c for c in have if fnmatch.fnmatchcase(c, spec.comparison))
    if not comps:
        return RegressionAnalysis(
            spec, rid, (), "skipped", f"no comparison matching {spec.comparison!r} holds "
            f"'{spec.outcome}' with unit '{plan.unit}'",
        )  # fmt: skip
    t0 = time.perf_counter()
    try:
        es, _ = _study_table(plan, spec, comps)
        freq = rma_regression(
            es, list(spec.mods), method=_method(plan),
            test="knha" if plan.frequentist.hksj else "z", ci_prob=plan.ci_prob,
        )  # fmt: skip
        exact = bayes_regression(
            es, list(spec.mods), tau_prior=plan.priors.tau, ci_prob=plan.ci_prob
        )
    except (EstimationError, InputError) as exc:
        return RegressionAnalysis(spec, rid, comps, "failed", str(exc))
    inc = es.table.loc[es.table["included"]]
    cols = ["study", "comparison", "report_id", "yi", "vi", "sei"]
    cols += [m for m in exact.design.mods if m not in cols]
    return RegressionAnalysis(
        spec, rid, comps, "ok", None, inc[cols].reset_index(drop=True), freq, exact,
        time.perf_counter() - t0,
    )  # fmt: skip


def fit_regressions(
    plan: Plan, say: Callable[[str], None] | None = None
) -> tuple[RegressionAnalysis, ...]:
    """Fit every meta-regression of ``plan`` (frequentist and exact), in plan order."""
    specs = [a for a in plan.analyses if a.mods]
    if not specs:
        return ()
    from bayesmtor.datasets import available_analyses

    available = available_analyses(plan.unit, plan.bolero2)
    out = []
    for spec in specs:
        r = _fit_one(plan, spec, available)
        if say is not None:
            what = f"meta-regression on {', '.join(spec.mods)} (k = {r.k})"
            tail = f"done ({r.seconds:.2f} s)" if r.fitted else f"{r.status} ({r.reason})"
            say(f"{r.id}: {what} ... {tail}")
        out.append(r)
    return tuple(out)
