"""Frozen results of a plan run: one :class:`AnalysisResult` per expanded analysis, one
:class:`RunResult` for the run.

The stages of :mod:`bayesmtor.pipeline.stages` build an :class:`AnalysisResult` step by step,
each step returning a new object (:func:`dataclasses.replace`); nothing is shared or mutated
between stages. :mod:`bayesmtor.reporting` reads these objects and writes the files.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import pandas as pd

from bayesmtor.pipeline.expand import Task
from bayesmtor.plans import AnalysisSpec, Plan

__all__ = ["AnalysisRecord", "AnalysisResult", "Replication", "RunResult"]


@dataclass(frozen=True)
class AnalysisRecord:
    """Status of one expanded analysis of a run.

    Attributes
    ----------
    id : str
        Analysis id (file stem of its tables, figures and ``.nc``).
    outcome, comparison, measure, likelihood : str
        What was estimated (``comparison`` is ``"all"`` for the multilevel model).
    engine : str
        ``"exact"`` or ``"mcmc"``.
    check_with_mcmc : bool
        Whether an MCMC check was run.
    k : int
        Trials pooled.
    status : str
        ``"ok"``, ``"not converged"`` (MCMC gate failed), ``"check disagrees"``, ``"skipped"``
        or ``"failed"``.
    reason : str or None
        Why an analysis was skipped or failed, or what the warning was.
    seconds : float
        Wall time spent on the analysis.
    """

    id: str
    outcome: str
    comparison: str
    measure: str
    likelihood: str
    engine: str
    check_with_mcmc: bool
    k: int
    status: str
    reason: str | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready): the fields in order, ``seconds`` rounded to 4 places."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["seconds"] = round(self.seconds, 4)
        return out


@dataclass(frozen=True)
class AnalysisResult:
    """Everything one analysis of a plan produced (data, frequentist fit, posterior, check).

    Attributes
    ----------
    task : Task
        The expanded analysis.
    index : int
        Its position in the run (1-based).
    engine : str
        ``"exact"`` or ``"mcmc"``.
    k : int
        Trials pooled.
    status, reason : str, str or None
        As in :class:`AnalysisRecord`.
    notes : tuple of str
        Warnings and remarks collected on the way.
    seconds : float
        Wall time spent on the analysis.
    dataset_rows : pandas.DataFrame or None
        Effect-size table of every study row of the data (excluded rows included).
    excluded : pandas.DataFrame or None
        Reports and rows left out, with the reason.
    es_table : pandas.DataFrame or None
        Effect-size table of the included rows (with a ``comparison`` column).
    freq : PoolResult or None
        Frequentist result; ``freq_method`` is the method asked for.
    exact : ExactPosterior or None
        Exact posterior (exact engine).
    bayes : BayesResult or None
        MCMC result (MCMC engine).
    bayes_row : Mapping
        Pooled Bayesian summary (``mu_*``, ``tau_*``, ``pred_*``, ...); empty when not fitted.
    shrunken : pandas.DataFrame or None
        Posterior summaries of the trial effects.
    evidence : Mapping
        Bayes factors of the exact posterior (``log_marginal_likelihood, bf_tau0, bf_mu0``)
        and, with proper priors, its model averaging (the columns of
        :data:`bayesmtor.bayes.model_averaging.BMA_COLUMNS`); empty when not fitted.
    idata, check_idata : arviz.InferenceData or None
        The analysis' InferenceData and that of its MCMC check.
    check_table : pandas.DataFrame or None
        MCMC-vs-exact comparison (differences in MCSE units).
    check_diag, bayes_diag : Mapping or None
        Convergence diagnostics of the check and of the MCMC fit.
    """

    task: Task
    index: int
    engine: str
    k: int = 0
    status: str = "ok"
    reason: str | None = None
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    dataset_rows: pd.DataFrame | None = None
    excluded: pd.DataFrame | None = None
    es_table: pd.DataFrame | None = None
    freq: Any = None
    freq_method: str = ""
    exact: Any = None
    bayes: Any = None
    bayes_row: Mapping[str, Any] = field(default_factory=dict)
    shrunken: pd.DataFrame | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    idata: Any = None
    check_idata: Any = None
    check_table: pd.DataFrame | None = None
    check_diag: Mapping[str, Any] | None = None
    bayes_diag: Mapping[str, Any] | None = None

    @property
    def id(self) -> str:
        """Analysis id."""
        return self.task.id

    @property
    def spec(self) -> AnalysisSpec:
        """The ``[[analysis]]`` entry of the plan this analysis came from."""
        return self.task.spec

    @property
    def measure(self) -> str:
        """Effect measure (``"RR"``, ``"OR"``, ``"HR"``, ``"RD"``)."""
        return self.task.spec.measure

    @property
    def label(self) -> str:
        """``"outcome comparison measure"``, as printed in progress lines."""
        return f"{self.task.outcome} {self.task.comparison} {self.measure}"

    @property
    def fitted(self) -> bool:
        """Whether a pooled Bayesian result exists."""
        return bool(self.bayes_row)

    def record(self) -> AnalysisRecord:
        """The status record of this analysis."""
        return AnalysisRecord(
            id=self.id,
            outcome=self.task.outcome,
            comparison=self.task.comparison,
            measure=self.measure,
            likelihood=self.spec.likelihood,
            engine=self.engine,
            check_with_mcmc=self.spec.check_with_mcmc,
            k=int(self.k),
            status=self.status,
            reason=self.reason,
            seconds=float(self.seconds),
        )

    def summary(self) -> pd.DataFrame:
        """One row: the status record and the pooled Bayesian summary."""
        return pd.DataFrame([{**self.record().to_dict(), **dict(self.bayes_row)}])


@dataclass(frozen=True)
class Replication:
    """Replication of the 2014 paper, when :mod:`bayesmtor.replication` is available.

    Attributes
    ----------
    available : bool
        Whether the replication ran.
    text : str
        Its printed form, or why it did not run.
    table, units : pandas.DataFrame or None
        The replication table and the report-vs-trial unit comparison.
    """

    available: bool
    text: str
    table: pd.DataFrame | None = None
    units: pd.DataFrame | None = None


@dataclass(frozen=True)
class RunResult:
    """What :func:`bayesmtor.pipeline.run.run_plan` computed; nothing of it is on disk yet.

    Attributes
    ----------
    plan : Plan
        The plan as run.
    analyses : tuple of AnalysisResult
        One result per expanded analysis, skipped ones included.
    sensitivity : pandas.DataFrame or None
        Prior-sensitivity table (with ``[sensitivity]``).
    replication : Replication
        Replication of the 2014 paper.
    seeds : Mapping of str to int
        Every seed used, by ``"<analysis id>:<use>"``.
    timings : Mapping of str to float
        Wall time of each stage, in seconds.
    started, finished : datetime.datetime
        When the run started and finished (UTC).
    seconds : float
        Total wall time of the fitting.
    messages : tuple of str
        Progress lines, in order.
    regressions : tuple of RegressionAnalysis
        The meta-regressions of the plan (``[[analysis]]`` tables with ``mods``).
    """

    plan: Plan
    analyses: tuple[AnalysisResult, ...]
    sensitivity: pd.DataFrame | None
    replication: Replication
    seeds: Mapping[str, int]
    timings: Mapping[str, float]
    started: _dt.datetime
    finished: _dt.datetime
    seconds: float
    messages: tuple[str, ...] = ()
    regressions: tuple[Any, ...] = ()

    @property
    def records(self) -> tuple[AnalysisRecord, ...]:
        """The status record of every analysis."""
        return tuple(a.record() for a in self.analyses)

    @property
    def n_ok(self) -> int:
        """Number of analyses that finished with status ``"ok"``."""
        return sum(a.status == "ok" for a in self.analyses)

    def status_counts(self) -> dict[str, int]:
        """Number of analyses per status, in order of first appearance."""
        counts: dict[str, int] = {}
        for a in self.analyses:
            counts[a.status] = counts.get(a.status, 0) + 1
        return counts

    def summary(self) -> pd.DataFrame:
        """One row per analysis: ``id, outcome, comparison, measure, likelihood, engine,
        check_with_mcmc, k, status, reason, seconds``."""
        cols = list(AnalysisRecord.__dataclass_fields__)
        return pd.DataFrame([r.to_dict() for r in self.records], columns=cols)

    def __repr__(self) -> str:
        status = ", ".join(f"{v} {k}" for k, v in self.status_counts().items())
        return (
            f"RunResult(plan={self.plan.name!r}, analyses={len(self.analyses)} ({status}), "
            f"seconds={self.seconds:.1f})"
        )
