"""Run an analysis plan end to end and write one output folder.

:func:`run_plan` turns a :class:`~bayesmtor.plans.Plan` into fits and files:

1. **Expand** every ``[[analysis]]`` against the bundled data
   (:func:`bayesmtor.datasets.available_analyses`): ``"ae_any:*"`` becomes one analysis per
   adverse event, ``comparison = "*"`` one per comparison holding the outcome. An analysis
   whose data hold no usable trial (k = 0) is skipped with its reason; a wildcard that matches
   nothing is logged too.
2. **Data and effect sizes**: :func:`bayesmtor.datasets.comparative_dataset` with the plan's
   unit of analysis and BOLERO-2 rule, then :func:`bayesmtor.effects.escalc` (log RR/OR/HR or
   RD; RevMan 5 zero-cell rule).
3. **Frequentist** pooling with the plan's method (:func:`bayesmtor.frequentist.meta_analysis`).
   ``MH`` and ``PETO`` need 2x2 counts, so hazard ratios are then pooled by fixed-effect inverse
   variance, as RevMan 5 does for generic inverse-variance data.
4. **Bayesian** posterior: exact quadrature (:func:`bayesmtor.bayes.exact.exact_posterior`) for the
   normal-normal model unless the analysis says ``bayes = "mcmc"``; PyMC for the
   binomial-normal and multilevel models (:mod:`bayesmtor.bayes.pymc_models`).
5. **MCMC check** (``check_with_mcmc``): the same normal-normal model sampled by NUTS and
   compared with the exact posterior; differences are reported in Monte Carlo standard errors
   (MCSE). The check fits share one compiled PyMC model (data held in ``pm.Data`` containers
   and one NUTS step reused), so the compilation is paid once per run.
6. **Prior sensitivity** (``[sensitivity]``): every normal-normal analysis refitted exactly
   under each tau prior (vectorised over analyses, :func:`bayesmtor.bayes.exact.exact_batch`).
7. **Outputs**, written into one folder atomically (:func:`bayesmtor.reporting.outputs.atomic_output_dir`):

   ``tables/``  ``pooled_bayes.csv``, ``pooled_frequentist.csv``, ``side_by_side.csv``,
   ``excluded_studies.csv``, ``analyses.csv`` (status of every expanded analysis),
   ``forest_<id>.csv`` (the rows of each forest plot: observed and shrunken trial effects,
   pooled and predictive rows), ``single_arm_cohort.csv``, ``mcmc_check.csv`` and ``mcmc_diagnostics.csv`` (when MCMC ran), ``prior_sensitivity.csv``
   (with ``[sensitivity]``), ``multilevel_<id>.csv``, and ``replication.csv`` /
   ``unit_comparison.csv`` when :mod:`bayesmtor.replication` is available.
   ``idata/<id>.nc``  one ArviZ InferenceData per analysis: the MCMC fit, or, for the exact
   engine, independent draws from the exact posterior (attribute ``engine = "exact"``);
   ``idata/<id>.mcmc_check.nc`` for each check fit.
   ``figures/``  forest plot of every analysis (observed, shrunken, pooled Bayesian, pooled
   frequentist and predictive rows), tau prior vs posterior of every analysis, a funnel plot for
   analyses with at least 3 trials (fewer cannot show asymmetry), prior-sensitivity plots;
   PNG and SVG.
   ``report.html`` (self-contained), ``plan.toml`` (the plan as run) and ``run.json``
   (version, plan, priors, seeds, timings and the status of every analysis).

Analysis ids look like ``pfs.everolimus_endocrine.HR`` or
``ae_any-stomatitis.everolimus_endocrine.RR``; non-default likelihoods add a suffix
(``orr.all.RR.multilevel``).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmtor import __version__, config
from bayesmtor.bayes.exact import conditional_normal
from bayesmtor.errors import BayesMTORError, EstimationError, InputError
from bayesmtor.plans import AnalysisSpec, Plan, load_plan
from bayesmtor.reporting.outputs import MARKER_NAME, atomic_output_dir, writing

__all__ = [
    "AGREEMENT_MCSE",
    "AnalysisRecord",
    "RunResult",
    "analysis_id",
    "expand_plan",
    "run_plan",
]

#: A check statistic counts as agreeing when |MCMC - exact| <= this many MCSEs. Four MCSEs:
#: with ~10 compared quantities per check, a correct sampler exceeds 4 with probability < 0.1%,
#: while MCSE estimates of tail quantiles are themselves uncertain by ~10-20%.
AGREEMENT_MCSE = 4.0

#: Draws from the exact posterior stored in the exact-engine InferenceData (independent draws,
#: one chain). 4000 gives Monte Carlo error of interval end points well below the printed digits.
EXACT_DRAWS = 4000

#: netCDF backend for the ``.nc`` files: ``netCDF4`` (ArviZ's default, h5netcdf, needs h5py).
#: Read them back with ``arviz.from_netcdf(path, engine="netcdf4")``.
NETCDF_ENGINE = "netcdf4"

#: Smallest number of trials for which the tau prior-vs-posterior plot is drawn: with one trial
#: the data say nothing about tau (the posterior is the prior), so the plot would be empty talk.
TAU_FIGURE_MIN_K = 2

#: Smallest number of trials for which a funnel plot is drawn.
FUNNEL_MIN_K = 3

#: Retries of an MCMC fit that fails the convergence gate (longer warm-up, higher target
#: acceptance; see :mod:`bayesmtor.bayes.pymc_models`). One retry bounds the run time; a fit that is
#: still not clean is reported with status "not converged", never as clean.
MCMC_MAX_RETRIES = 2

#: Run MCMC in a child process so that it overlaps with the figures (set False to debug).
MCMC_IN_SUBPROCESS = True

_RATIO = ("RR", "OR", "HR")
_ALL = "all"


# --------------------------------------------------------------------------------------------
# result objects
# --------------------------------------------------------------------------------------------


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
        """Plain dict (JSON-ready)."""
        return {
            "id": self.id,
            "outcome": self.outcome,
            "comparison": self.comparison,
            "measure": self.measure,
            "likelihood": self.likelihood,
            "engine": self.engine,
            "check_with_mcmc": self.check_with_mcmc,
            "k": self.k,
            "status": self.status,
            "reason": self.reason,
            "seconds": round(self.seconds, 4),
        }


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_plan` wrote.

    Attributes
    ----------
    out : Path
        The output folder.
    plan : Plan
        The plan as run.
    analyses : tuple of AnalysisRecord
        One record per expanded analysis, skipped ones included.
    files : tuple of str
        Every file written, relative to ``out``.
    seconds : float
        Total wall time.
    """

    out: Path
    plan: Plan
    analyses: tuple[AnalysisRecord, ...]
    files: tuple[str, ...]
    seconds: float

    @property
    def n_ok(self) -> int:
        """Number of analyses that finished with status ``"ok"``."""
        return sum(a.status == "ok" for a in self.analyses)

    def summary(self) -> pd.DataFrame:
        """One row per analysis: ``id, outcome, comparison, measure, likelihood, engine,
        check_with_mcmc, k, status, reason, seconds``."""
        cols = list(AnalysisRecord.__dataclass_fields__)
        return pd.DataFrame([a.to_dict() for a in self.analyses], columns=cols)

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for a in self.analyses:
            counts[a.status] = counts.get(a.status, 0) + 1
        status = ", ".join(f"{v} {k}" for k, v in counts.items())
        return (
            f"RunResult(plan={self.plan.name!r}, out='{self.out}', analyses={len(self.analyses)} "
            f"({status}), files={len(self.files)}, seconds={self.seconds:.1f})"
        )


# --------------------------------------------------------------------------------------------
# expansion of the plan against the data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Task:
    spec: AnalysisSpec
    outcome: str
    comparison: str  # a comparison id, or "all" for the multilevel model
    comparisons: tuple[str, ...]  # the comparisons pooled (several for the multilevel model)
    skip_reason: str | None = None

    @property
    def id(self) -> str:
        return analysis_id(self.outcome, self.comparison, self.spec.measure, self.spec.likelihood)


def analysis_id(outcome: str, comparison: str, measure: str, likelihood: str) -> str:
    """File-safe id of one analysis, e.g. ``ae_any-rash.everolimus_endocrine.RR``."""
    base = f"{outcome.replace(':', '-')}.{comparison}.{measure}"
    return base if likelihood == "normal-normal" else f"{base}.{likelihood.replace('-', '_')}"


def _outcome_matches(pattern: str, outcome: str) -> bool:
    if pattern.endswith(":*"):
        return outcome.startswith(pattern[:-1])
    return pattern == outcome


def expand_plan(plan: Plan, available: pd.DataFrame | None = None) -> list[_Task]:
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
    tasks: list[_Task] = []
    for spec in plan.analyses:
        if spec.likelihood == "multilevel":
            outcomes = sorted({o for o, _ in pairs if _outcome_matches(spec.outcome, o)})
            if not outcomes:
                tasks.append(
                    _Task(spec, spec.outcome, _ALL, (), "no comparison holds this outcome (k = 0)")
                )
            for outcome in outcomes:
                comps = tuple(c for o, c in pairs if o == outcome)
                reason = None
                if len(comps) < 2:
                    reason = (
                        f"the multilevel model needs at least two comparisons holding '{outcome}'"
                        f", found {len(comps)} ({', '.join(comps) or 'none'})"
                    )
                tasks.append(_Task(spec, outcome, _ALL, comps, reason))
            continue
        if spec.is_wildcard:
            matched = [
                (o, c)
                for o, c in pairs
                if _outcome_matches(spec.outcome, o) and spec.comparison in ("*", c)
            ]
            if not matched:
                tasks.append(
                    _Task(
                        spec,
                        spec.outcome,
                        spec.comparison.replace("*", _ALL),
                        (),
                        "wildcard matches no outcome x comparison with data (no fit)",
                    )
                )
            for o, c in matched:
                tasks.append(_Task(spec, o, c, (c,)))
            continue
        reason = None
        if (spec.outcome, spec.comparison) not in pairs:
            reason = (
                f"no usable trial for '{spec.outcome}' in '{spec.comparison}' with unit "
                f"'{plan.unit}' (k = 0)"
            )
        tasks.append(_Task(spec, spec.outcome, spec.comparison, (spec.comparison,), reason))
    return tasks


# --------------------------------------------------------------------------------------------
# per-analysis working state
# --------------------------------------------------------------------------------------------


@dataclass
class _Fit:
    task: _Task
    index: int
    engine: str
    k: int = 0
    status: str = "ok"
    reason: str | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    dataset_rows: pd.DataFrame | None = None  # study rows of the data (all, incl. escalc drops)
    excluded: pd.DataFrame | None = None
    es_table: pd.DataFrame | None = None  # escalc table of the included rows (+ class column)
    freq: Any = None  # PoolResult
    freq_method: str = ""
    exact: Any = None  # ExactPosterior
    bayes: Any = None  # BayesResult (MCMC)
    bayes_row: dict[str, Any] = field(default_factory=dict)
    shrunken: pd.DataFrame | None = None
    check_idata: Any = None
    check_table: pd.DataFrame | None = None
    check_diag: dict[str, Any] | None = None
    idata: Any = None
    bayes_diag: dict[str, Any] | None = None
    forest_rows: pd.DataFrame | None = None
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.task.id

    @property
    def spec(self) -> AnalysisSpec:
        return self.task.spec

    @property
    def measure(self) -> str:
        return self.task.spec.measure

    @property
    def label(self) -> str:
        return f"{self.task.outcome} {self.task.comparison} {self.measure}"

    def record(self) -> AnalysisRecord:
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


class _Progress:
    def __init__(self, callback: Callable[[str], None] | None, total: int) -> None:
        self.callback = callback
        self.total = total

    def step(self, index: int, label: str, what: str, func: Callable[[], Any]) -> Any:
        """Run ``func`` and report ``[i/n] label: what ... done (t s)``."""
        t0 = time.perf_counter()
        try:
            out = func()
        except BaseException:
            self.say(f"[{index}/{self.total}] {label}: {what} ... failed")
            raise
        self.say(
            f"[{index}/{self.total}] {label}: {what} ... done ({time.perf_counter() - t0:.2f} s)"
        )
        return out

    def say(self, text: str) -> None:
        if self.callback is not None:
            self.callback(text)


# --------------------------------------------------------------------------------------------
# the runner
# --------------------------------------------------------------------------------------------


def run_plan(
    plan: Plan | str | Path,
    out: Path,
    *,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Run every analysis of a plan and write one output folder.

    Parameters
    ----------
    plan : Plan, str or Path
        A loaded plan, the name of a bundled plan (``"primary"``) or the path of a TOML file.
    out : Path
        Output folder. It is built in a hidden sibling folder and moved into place only when
        everything has been written, so an error or an interruption leaves no partial output.
    force : bool, default False
        Replace ``out`` if it exists and is not empty, which bayesmtor does only for an
        unchanged output folder of its own (see :mod:`bayesmtor.reporting.outputs`); otherwise
        :class:`~bayesmtor.errors.OutputError`.
    progress : callable, optional
        Called with one line of text per step (e.g. ``print`` to stderr); silent if omitted.

    Returns
    -------
    RunResult

    Raises
    ------
    bayesmtor.errors.PlanError
        The plan cannot be loaded.
    bayesmtor.errors.OutputError
        ``out`` exists (without ``force``), is not a bayesmtor output (with ``force``), is
        protected (the current or home folder, a folder holding the plan file, ...) or cannot
        be written (full disk, read-only, permission denied: one message naming the file).
    """
    t_start = time.perf_counter()
    started = _dt.datetime.now(_dt.UTC)
    if not isinstance(plan, Plan):
        plan = load_plan(plan)
    say = _Progress(progress, 0)
    timings: dict[str, float] = {}

    protect = (Path(plan.source),) if plan.source is not None else ()
    folder = atomic_output_dir(out, force=force, protect=protect)
    with folder as work:
        for line in folder.recovery.messages(folder.target):
            say.say(line)
        for sub in ("tables", "figures", "idata"):
            (work / sub).mkdir()
        say.say(f"bayesmtor {__version__}: plan '{plan.name}' ({len(plan.analyses)} analyses)")

        t0 = time.perf_counter()
        from bayesmtor.datasets import available_analyses

        available = available_analyses(plan.unit, plan.bolero2)
        tasks = expand_plan(plan, available)
        timings["expand"] = time.perf_counter() - t0
        say.total = len(tasks)
        say.say(
            f"expanded to {len(tasks)} analyses "
            f"({sum(t.skip_reason is None for t in tasks)} with data)"
        )

        priors = _priors(plan)
        fits: list[_Fit] = []
        t0 = time.perf_counter()
        for i, task in enumerate(tasks, start=1):
            fit = _Fit(task=task, index=i, engine=task.spec.bayes)
            fits.append(fit)
            if task.skip_reason is not None:
                fit.status, fit.reason = "skipped", task.skip_reason
                say.say(f"[{i}/{len(tasks)}] {fit.label}: skipped ({task.skip_reason})")
                continue
            tf = time.perf_counter()
            what = "data, frequentist " + _freq_method(plan, fit.measure)
            if fit.engine == "exact":
                what += ", exact posterior"
            try:
                _prepare(fit, plan, priors)
            except (EstimationError, InputError) as exc:
                fit.status, fit.reason = "failed", str(exc)
            fit.seconds += time.perf_counter() - tf
            head = f"[{i}/{len(tasks)}] {fit.label}: {what} ..."
            if fit.status == "ok":
                say.say(f"{head} done ({fit.seconds:.2f} s)")
            else:
                say.say(f"{head} {fit.status} ({fit.reason})")
        timings["data_frequentist_exact"] = time.perf_counter() - t0

        # ---- MCMC in a child process, overlapping with the work below ----------------------
        seeds: dict[str, int] = {}
        jobs = _mcmc_jobs(plan, fits, seeds)
        mcmc = _MCMCRunner(plan, jobs, in_subprocess=MCMC_IN_SUBPROCESS)
        pending = {j.id for j in jobs}
        figures: dict[str, list[tuple[str, Path]]] = {}
        t_mcmc = time.perf_counter()
        if jobs:
            say.say(
                f"MCMC: {len(jobs)} fit(s) started "
                + ("in a worker process" if not mcmc.inline else "in this process")
            )
        mcmc.start()
        try:
            # exact-engine InferenceData
            t0 = time.perf_counter()
            for f in fits:
                if f.status == "ok" and f.exact is not None:
                    seed = _exact_seed(plan, f.index)
                    seeds[f"{f.id}:exact_draws"] = seed
                    f.idata = _exact_idata(f, plan, priors, seed)
            timings["exact_idata"] = time.perf_counter() - t0

            # prior sensitivity
            t0 = time.perf_counter()
            sensitivity = None
            if plan.sensitivity is not None:
                sensitivity = say.step(
                    len(tasks),
                    "prior sensitivity",
                    f"{len(plan.sensitivity.tau_priors)} tau priors (exact, vectorised)",
                    lambda: _sensitivity(plan, priors, fits),
                )
            timings["sensitivity"] = time.perf_counter() - t0

            # figures of the analyses that do not wait for MCMC
            t0 = time.perf_counter()
            n_fig = 0
            for f in fits:
                if f.bayes_row and f.id not in pending:
                    figures[f.id] = _fit_figures(work, plan, priors, f)
                elif f.bayes_row and f.engine == "exact":  # checked: tau plot waits for draws
                    figures[f.id] = _fit_figures(work, plan, priors, f, ("forest", "funnel"))
                n_fig += len(figures.get(f.id, ()))
            if sensitivity is not None:
                figures["sensitivity"] = _sensitivity_figures(work, sensitivity)
                n_fig += len(figures["sensitivity"])
            timings["figures"] = time.perf_counter() - t0
            say.say(f"figures: {n_fig} written as PNG and SVG ({timings['figures']:.1f} s)")

            # replication of the 2014 paper
            t0 = time.perf_counter()
            replication = _replication(say, plan)
            timings["replication"] = time.perf_counter() - t0

            # MCMC results
            t0 = time.perf_counter()
            by_id = {f.id: f for f in fits}
            for kind, fid, payload in mcmc.results():
                f = by_id.get(fid)
                if kind == "progress":
                    prefix = f"[{f.index}/{len(tasks)}] {f.label}: " if f is not None else ""
                    say.say(prefix + str(payload))
                elif kind == "error" and f is not None:
                    if f.engine == "exact":  # the exact result stands; the check is missing
                        f.notes.append(f"MCMC check could not run: {payload}")
                    else:
                        f.status, f.reason, f.bayes_row = "failed", f"MCMC: {payload}", {}
                elif kind == "result" and f is not None:
                    result, notes, secs = payload
                    f.seconds += secs
                    f.notes.extend(f"MCMC: {n}" for n in notes)
                    if f.engine == "exact":
                        _apply_check(f, result[0], result[1], plan)
                    else:
                        _apply_fit(f, result, plan)
            timings["mcmc_wait"] = time.perf_counter() - t0
        finally:
            mcmc.close()
        timings["mcmc_total"] = time.perf_counter() - t_mcmc

        # figures of the MCMC analyses (and of the checked ones, with the MCMC draws)
        t0 = time.perf_counter()
        for f in fits:
            if f.bayes_row and f.id in pending:
                if f.engine == "exact" and f.id in figures:
                    done = figures[f.id]
                    figures[f.id] = (
                        done[:1] + _fit_figures(work, plan, priors, f, ("tau",)) + done[1:]
                    )
                else:
                    figures[f.id] = _fit_figures(work, plan, priors, f)
        timings["figures_mcmc"] = time.perf_counter() - t0

        # ---- files ------------------------------------------------------------------------------
        t0 = time.perf_counter()
        tables = _write_tables(work, plan, fits, sensitivity, replication)
        timings["tables"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for f in fits:
            # Every InferenceData file carries the same provenance as run.json, whatever code
            # path produced it (exact draws, MCMC fit or MCMC check).
            provenance = {
                "bayesmtor_version": __version__,
                "plan": plan.name,
                "analysis_id": f.id,
                "tau_prior": plan.priors.tau,
                "mu_prior": plan.priors.mu,
            }
            for idata in (f.idata, f.check_idata):
                if idata is not None:
                    idata.posterior.attrs.update(provenance)
            if f.idata is not None:
                path = work / "idata" / f"{f.id}.nc"
                with writing(path):
                    f.idata.to_netcdf(str(path), engine=NETCDF_ENGINE)
                f.files["idata"] = path
            if f.check_idata is not None:
                path = work / "idata" / f"{f.id}.mcmc_check.nc"
                with writing(path):
                    f.check_idata.to_netcdf(str(path), engine=NETCDF_ENGINE)
                f.files["check_idata"] = path
        timings["idata"] = time.perf_counter() - t0

        plan_toml = plan.to_toml()
        with writing(work / "plan.toml") as path:
            path.write_text(plan_toml, encoding="utf-8")

        t0 = time.perf_counter()
        _write_report(work, plan, priors, fits, tables, figures, replication, started)
        timings["report"] = time.perf_counter() - t0

        finished = _dt.datetime.now(_dt.UTC)
        timings["total"] = time.perf_counter() - t_start
        records = tuple(f.record() for f in fits)
        run_json = {
            "bayesmtor_version": __version__,
            "plan": plan.name,
            "plan_source": str(plan.source) if plan.source is not None else None,
            "plan_description": plan.description,
            "unit": plan.unit,
            "bolero2": plan.bolero2,
            "ci_prob": plan.ci_prob,
            "priors": {
                "tau": plan.priors.tau,
                "mu": plan.priors.mu,
                "tau_class": plan.priors.tau_class,
                "sensitivity_tau": (
                    list(plan.sensitivity.tau_priors) if plan.sensitivity is not None else []
                ),
            },
            "frequentist": {"method": plan.frequentist.method, "hksj": plan.frequentist.hksj},
            "mcmc": plan.mcmc.to_dict(),
            "seeds": {"mcmc": plan.mcmc.seed, **seeds},
            "started": started.isoformat(timespec="seconds"),
            "finished": finished.isoformat(timespec="seconds"),
            "timings_seconds": {k: round(v, 3) for k, v in timings.items()},
            "environment": _environment(),
            "analyses": [r.to_dict() for r in records],
            "statuses": _count_statuses(records),
        }
        files = sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_file()) + [
            "run.json",
            MARKER_NAME,  # written when the folder is committed
        ]
        run_json["files"] = sorted(files)
        with writing(work / "run.json") as path:
            path.write_text(json.dumps(_jsonable(run_json), indent=2) + "\n", encoding="utf-8")
    total = time.perf_counter() - t_start
    say.say(f"wrote {Path(out)} ({len(files)} files) in {total:.1f} s")
    return RunResult(
        out=Path(out), plan=plan, analyses=records, files=tuple(sorted(files)), seconds=total
    )


# --------------------------------------------------------------------------------------------
# helpers: priors, data, frequentist, exact
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Priors:
    tau: Any
    mu: Any
    tau_class: Any


def _priors(plan: Plan) -> _Priors:
    from bayesmtor.bayes.priors import MuPrior, TauPrior

    return _Priors(
        tau=TauPrior.from_string(plan.priors.tau),
        mu=MuPrior.from_string(plan.priors.mu),
        tau_class=TauPrior.from_string(plan.priors.tau_class),
    )


def _freq_method(plan: Plan, measure: str) -> str:
    method = plan.frequentist.method
    if measure == "HR" and method in ("MH", "PETO"):
        return "FE"  # generic inverse variance, as RevMan 5
    return method


def _exact_seed(plan: Plan, index: int) -> int:
    return int(plan.mcmc.seed) + 100_000 + index


def _prepare(fit: _Fit, plan: Plan, priors: _Priors) -> None:
    """Dataset, effect sizes, frequentist result and (exact engine) the exact posterior."""
    from bayesmtor import frequentist
    from bayesmtor.datasets import comparative_dataset
    from bayesmtor.effects import escalc

    task = fit.task
    frames, excluded, es_tables = [], [], []
    for comp in task.comparisons:
        ds = comparative_dataset(task.outcome, comp, plan.unit, plan.bolero2)
        excl = ds.excluded.copy()
        excl.insert(0, "comparison", comp)
        excluded.append(excl)
        if ds.k == 0:
            continue
        es = escalc(ds.data, fit.measure)
        table = es.table.copy()
        table["comparison"] = comp
        frames.append(ds.data.assign(comparison=comp))
        for study, reason in es.dropped:
            excluded.append(
                pd.DataFrame(
                    {
                        "comparison": [comp],
                        "study": [study],
                        "report_id": [pd.NA],
                        "reason": [reason],
                    }
                )
            )
        es_tables.append(table)
    fit.excluded = pd.concat(excluded, ignore_index=True) if excluded else None
    if not es_tables:
        fit.status, fit.reason = "skipped", f"no usable trial for '{task.outcome}' (k = 0)"
        return
    all_rows = pd.concat(es_tables, ignore_index=True)
    fit.dataset_rows = all_rows
    inc = all_rows.loc[all_rows["included"].astype(bool)].reset_index(drop=True)
    if task.spec.likelihood == "multilevel" and inc["study"].duplicated().any():
        inc["study"] = inc["study"] + " [" + inc["comparison"] + "]"
    fit.es_table = inc
    fit.k = len(inc)
    if fit.k == 0:
        fit.status = "skipped"
        fit.reason = "no trial left after computing effect sizes (k = 0): " + "; ".join(
            f"{s}: {r}"
            for s, r in zip(all_rows["study"], all_rows["exclusion_reason"], strict=True)
        )
        return

    # frequentist
    method = _freq_method(plan, fit.measure)
    fit.freq_method = method
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if method in ("MH", "PETO"):
                frame = pd.DataFrame(
                    {
                        "study": all_rows["study"].astype(str),
                        "events_trt": all_rows["ai"] - all_rows["cc_add"],
                        "n_trt": all_rows["n1i"] - 2 * all_rows["cc_add"],
                        "events_ctl": all_rows["ci"] - all_rows["cc_add"],
                        "n_ctl": all_rows["n2i"] - 2 * all_rows["cc_add"],
                    }
                )
                fit.freq = frequentist.pool_groups(
                    frame,
                    by=None,
                    measure=fit.measure,
                    method=method,
                    ci_prob=plan.ci_prob,
                    as_results=True,
                )[0]
            else:
                hksj = plan.frequentist.hksj and method not in ("FE",) and fit.k >= 2
                fit.freq = frequentist.rma(
                    inc["yi"].to_numpy(float),
                    vi=inc["vi"].to_numpy(float),
                    method=method,
                    test="knha" if hksj else "z",
                    ci_prob=plan.ci_prob,
                    measure=fit.measure,
                    studies=inc["study"].astype(str).tolist(),
                )
        except BayesMTORError as exc:
            fit.notes.append(f"frequentist {method} not estimable: {exc}")
    for w in caught:
        fit.notes.append(f"frequentist {method}: {w.message}")

    if fit.engine == "exact" and task.spec.likelihood == "normal-normal":
        from bayesmtor.bayes.exact import exact_posterior

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            post = exact_posterior(
                inc["yi"].to_numpy(float),
                inc["sei"].to_numpy(float),
                tau_prior=priors.tau,
                mu_prior=priors.mu,
                labels=inc["study"].astype(str).tolist(),
            )
        for w in caught:
            fit.notes.append(f"exact posterior: {w.message}")
        fit.exact = post
        fit.bayes_row = _exact_row(post, plan.ci_prob)
        th = post.theta_summary(plan.ci_prob)
        fit.shrunken = th[["study", "mean", "median", "q_low", "q_high"]].copy()


def _exact_row(post: Any, ci_prob: float) -> dict[str, Any]:
    lo, hi = (1 - ci_prob) / 2, (1 + ci_prob) / 2
    mu_q = np.asarray(post.mu_quantile([0.5, lo, hi]), dtype=float)
    tau_q = np.asarray(post.tau_quantile([0.5, lo, hi]), dtype=float)
    pred = np.asarray(post.theta_new_quantile([lo, hi]), dtype=float)
    return {
        "mu_mean": post.mu_mean(),
        "mu_sd": post.mu_sd(),
        "mu_median": mu_q[0],
        "mu_low": mu_q[1],
        "mu_high": mu_q[2],
        "tau_median": tau_q[0],
        "tau_low": tau_q[1],
        "tau_high": tau_q[2],
        "pred_low": pred[0],
        "pred_high": pred[1],
        "p_mu_below_0": post.p_mu_below(0.0),
        "quad_error": post.error_estimate,
    }


def _exact_idata(fit: _Fit, plan: Plan, priors: _Priors, seed: int) -> Any:
    """InferenceData of independent draws from the exact posterior (engine="exact")."""
    import arviz as az

    post = fit.exact
    rng = np.random.default_rng(seed)
    d = post.draws(EXACT_DRAWS, rng)
    tau, mu = d["tau"].to_numpy(), d["mu"].to_numpy()
    y, s = post.yi, post.sei
    mean, var = conditional_normal(y[None, :], s[None, :] ** 2, mu[:, None], tau[:, None] ** 2)
    theta = mean + np.sqrt(var) * rng.standard_normal(mean.shape)
    labels = list(post.labels)
    idata = az.from_dict(
        posterior={
            "mu": mu[None, :],
            "tau": tau[None, :],
            "theta_new": d["theta_new"].to_numpy()[None, :],
            "theta": theta[None, :, :],
        },
        observed_data={"y": y},
        constant_data={"sei": s},
        coords={"trial": labels},
        dims={"theta": ["trial"], "y": ["trial"], "sei": ["trial"]},
    )
    idata.posterior.attrs.update(
        {
            "engine": "exact",
            "note": (
                f"{EXACT_DRAWS} independent draws from the exact (quadrature) posterior of the "
                "normal-normal model; one chain, no MCMC"
            ),
            "analysis_id": fit.id,
            "measure": fit.measure,
            "tau_prior": plan.priors.tau,
            "mu_prior": plan.priors.mu,
            "seed": int(seed),
            "quadrature_error_estimate": float(post.error_estimate),
            "bayesmtor_version": __version__,
        }
    )
    return idata


# --------------------------------------------------------------------------------------------
# MCMC: one worker process, so that sampling overlaps with the figures of the main process
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _MCMCJob:
    """One MCMC fit for the worker: pure data, so it can be sent to another process."""

    id: str
    kind: str  # "check", "normal-normal", "binomial-normal", "multilevel"
    label: str
    index: int
    measure: str
    labels: tuple[str, ...]
    seed: int
    arrays: Mapping[str, Any]


def _mcmc_jobs(plan: Plan, fits: list[_Fit], seeds: dict[str, int]) -> list[_MCMCJob]:
    jobs: list[_MCMCJob] = []
    checks = [
        f for f in fits if f.status == "ok" and f.engine == "exact" and f.spec.check_with_mcmc
    ]
    for j, f in enumerate(checks):
        seed = int(plan.mcmc.seed) + j
        seeds[f"{f.id}:mcmc_check"] = seed
        jobs.append(
            _MCMCJob(
                f.id,
                "check",
                f.label,
                f.index,
                f.measure,
                tuple(f.es_table["study"].astype(str)),
                seed,
                {"yi": f.es_table["yi"].to_numpy(float), "sei": f.es_table["sei"].to_numpy(float)},
            )
        )
    mcmc = [f for f in fits if f.status == "ok" and f.engine == "mcmc"]
    for j, f in enumerate(mcmc):
        seed = int(plan.mcmc.seed) + 1000 + j
        seeds[f"{f.id}:mcmc"] = seed
        inc = f.es_table
        arrays: dict[str, Any] = {
            "yi": inc["yi"].to_numpy(float),
            "sei": inc["sei"].to_numpy(float),
            "group": inc["comparison"].astype(str).to_numpy(),
        }
        if f.spec.likelihood == "binomial-normal":
            add = inc["cc_add"].to_numpy(float)
            arrays.update(
                events_trt=np.rint(inc["ai"].to_numpy(float) - add).astype(int),
                n_trt=np.rint(inc["n1i"].to_numpy(float) - 2 * add).astype(int),
                events_ctl=np.rint(inc["ci"].to_numpy(float) - add).astype(int),
                n_ctl=np.rint(inc["n2i"].to_numpy(float) - 2 * add).astype(int),
            )
        jobs.append(
            _MCMCJob(
                f.id,
                f.spec.likelihood,
                f.label,
                f.index,
                f.measure,
                tuple(inc["study"].astype(str)),
                seed,
                arrays,
            )
        )
    return jobs


class _MCMCRunner:
    """Runs the MCMC jobs in a child process (or inline) and hands back the results."""

    def __init__(self, plan: Plan, jobs: list[_MCMCJob], in_subprocess: bool) -> None:
        self.plan = plan
        self.jobs = jobs
        self.proc: Any = None
        self.conn: Any = None
        self.reader: Any = None
        self.inline = not in_subprocess or not jobs
        self.started = time.perf_counter()

    def start(self) -> None:
        if self.inline or not self.jobs:
            return
        import multiprocessing as mp

        methods = mp.get_all_start_methods()
        ctx = mp.get_context("fork" if "fork" in methods else "spawn")
        parent, child = ctx.Pipe(duplex=False)
        mp.util.register_after_fork(parent, type(parent).close)  # child must not hold our end
        self.proc = ctx.Process(
            target=_mcmc_worker,
            args=(child, self.plan.to_toml(), self.jobs),
            name="bayesmtor-mcmc",
        )
        self.proc.start()
        child.close()
        self.conn = parent
        # Drain the pipe continuously: a result larger than the pipe buffer would otherwise
        # block the worker until this process gets round to reading it.
        import queue
        import threading

        self.inbox: queue.Queue[Any] = queue.Queue()
        self.reader = threading.Thread(target=self._read, name="bayesmtor-mcmc-reader", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        try:
            while True:
                msg = self.conn.recv()
                self.inbox.put(msg)
                if msg[0] in ("done", "fatal"):
                    return
        except (EOFError, OSError):
            self.inbox.put(("eof", "", None))

    def results(self) -> Any:
        """Yield ``(kind, job id, payload)`` messages until every job has reported."""
        if not self.jobs:
            return
        if self.inline:
            messages: list[tuple[str, str, Any]] = []
            _run_jobs(self.plan, self.jobs, lambda msg: messages.append(msg))
            yield from messages
            return
        try:
            while True:
                msg = self.inbox.get()
                if msg[0] == "eof":
                    self.proc.join(timeout=5)
                    raise EstimationError(
                        "the MCMC worker process ended without reporting its results "
                        f"(exit code {self.proc.exitcode})"
                    )
                if msg[0] == "done":
                    break
                if msg[0] == "fatal":
                    raise EstimationError(f"the MCMC worker process failed:\n{msg[2]}")
                yield msg
        finally:
            self.close()

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.is_alive():
                self.proc.terminate()
            self.proc.join(timeout=10)
            if self.proc.is_alive():  # stuck in compiled code: never leave an orphan
                self.proc.kill()
                self.proc.join(timeout=10)
            self.proc = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.reader is not None:
            self.reader.join(timeout=5)
            self.reader = None


def _mcmc_worker(conn: Any, plan_toml: str, jobs: list[_MCMCJob]) -> None:
    """Entry point of the MCMC child process."""
    import traceback

    try:
        from bayesmtor.plans import parse_plan

        plan = parse_plan(plan_toml, source="<plan as run>")
        _run_jobs(plan, jobs, conn.send)
        conn.send(("done", "", None))
    except KeyboardInterrupt:  # pragma: no cover - the parent reports the interruption
        pass
    except BaseException:  # pragma: no cover - reported by the parent
        try:
            conn.send(("fatal", "", traceback.format_exc()))
        except OSError:
            pass
    finally:
        conn.close()


def _quiet_pymc() -> None:
    import logging

    for name in ("pymc", "pymc.sampling", "pytensor"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _run_jobs(
    plan: Plan, jobs: list[_MCMCJob], send: Callable[[tuple[str, str, Any]], None]
) -> None:
    """Run every job; ``send`` receives ``("progress", id, text)``, ``("result", id, payload)``
    and ``("error", id, message)`` messages."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*BLAS.*")
        _quiet_pymc()
        priors = _priors(plan)
        m = plan.mcmc
        checks = [j for j in jobs if j.kind == "check"]
        sampler = None
        if checks:
            t0 = time.perf_counter()
            sampler = _CheckSampler(priors, m.target_accept)
            send(
                (
                    "progress",
                    "",
                    f"MCMC: normal-normal check model compiled once "
                    f"({time.perf_counter() - t0:.2f} s, PyMC import included)",
                )
            )
        for job in jobs:
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    if job.kind == "check":
                        payload: Any = _sample_check(job, sampler, plan)
                        what = f"MCMC check ({m.chains} chains x {m.draws} draws)"
                    else:
                        payload = _sample_fit(job, plan, priors)
                        what = f"MCMC {job.kind} ({m.chains} chains x {m.draws} draws)"
                notes = sorted({str(w.message) for w in caught if "BLAS" not in str(w.message)})
                send(("result", job.id, (payload, notes, time.perf_counter() - t0)))
                send(("progress", job.id, f"{what} ... done ({time.perf_counter() - t0:.2f} s)"))
            except BayesMTORError as exc:
                send(("error", job.id, str(exc)))


class _CheckSampler:
    """The normal-normal model compiled once; data swapped through ``pm.Data`` per check."""

    def __init__(self, priors: _Priors, target_accept: float) -> None:
        import pymc as pm
        import pytensor.tensor as pt

        self.pm = pm
        with pm.Model() as model:
            y = pm.Data("y", np.zeros(2))
            s = pm.Data("sei", np.ones(2))
            mu = priors.mu.to_pymc("mu")
            tau = priors.tau.to_pymc("tau")
            pm.Normal("y_obs", mu=mu, sigma=pt.sqrt(s**2 + tau**2), observed=y, shape=y.shape)
        self.model = model
        self.target_accept = target_accept
        self._steps: dict[float, Any] = {}
        self._step(target_accept)

    def _step(self, target_accept: float) -> Any:
        """One NUTS step per target acceptance, compiled on first use and then reused."""
        if target_accept not in self._steps:
            with self.model:
                self._steps[target_accept] = self.pm.NUTS(target_accept=target_accept)
        return self._steps[target_accept]

    def sample(
        self,
        y: np.ndarray,
        s: np.ndarray,
        *,
        draws: int,
        tune: int,
        chains: int,
        seed: int,
        target_accept: float | None = None,
    ) -> Any:
        pm = self.pm
        step = self._step(self.target_accept if target_accept is None else target_accept)
        with self.model:
            pm.set_data({"y": y, "sei": s})
            return pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=1,
                step=step,
                random_seed=seed,
                progressbar=False,
                compute_convergence_checks=False,
            )


def _gate(idata: Any, names: Sequence[str]) -> dict[str, Any]:
    """The package's convergence gate (pymc_models.convergence_gate) on ``names``, with the
    verdict under the key used by the runner's tables (``converged``)."""
    from bayesmtor.bayes.pymc_models import convergence_gate

    diag = convergence_gate(idata, names)
    return {("converged" if key == "clean" else key): value for key, value in diag.items()}


def _sample_check(job: _MCMCJob, sampler: Any, plan: Plan) -> tuple[Any, dict[str, Any]]:
    """Sample the normal-normal model for a check, through the same convergence gate as every
    other fit: a run with divergences, R-hat above the limit or too small an ESS is repeated
    (up to :data:`MCMC_MAX_RETRIES` times) with a higher target acceptance (0.95, then 0.99),
    twice the tuning, and twice the draws when the ESS was short. A check that is still not
    clean is reported as such, never as clean."""
    import xarray as xr

    from bayesmtor.bayes.pymc_models import retry_settings

    m = plan.mcmc
    y, s = np.asarray(job.arrays["yi"], float), np.asarray(job.arrays["sei"], float)
    draws, tune, target_accept = m.draws, m.tune, float(m.target_accept)
    for attempt in range(MCMC_MAX_RETRIES + 1):
        seed = job.seed + 7919 * attempt
        idata = sampler.sample(
            y, s, draws=draws, tune=tune, chains=m.chains, seed=seed, target_accept=target_accept
        )
        diag = _gate(idata, ["mu", "tau"])
        diag.update(
            draws=draws,
            tune=tune,
            chains=m.chains,
            seed=seed,
            attempts=attempt + 1,
            target_accept=target_accept,
        )
        if diag["converged"]:
            break
        draws, tune, target_accept = retry_settings(diag, draws, tune, target_accept)
    # the gate's thresholds are config values, not results: keep them out of the check's row
    for key in ("rhat_threshold", "ess_min"):
        diag.pop(key, None)
    post = idata.posterior
    mu, tau = post["mu"].values, post["tau"].values
    rng = np.random.default_rng([job.seed, 1])
    mean, var = conditional_normal(y, s**2, mu[..., None], tau[..., None] ** 2)
    theta = mean + np.sqrt(var) * rng.standard_normal(mean.shape)
    idata.posterior = post.assign(
        theta_new=(("chain", "draw"), mu + tau * rng.standard_normal(mu.shape)),
        theta=xr.DataArray(
            theta, dims=("chain", "draw", "trial"), coords={"trial": list(job.labels)}
        ),
    )
    idata.posterior.attrs.update(
        {
            "engine": "mcmc",
            "role": "check of the exact posterior (same normal-normal model, NUTS)",
            "analysis_id": job.id,
            "measure": job.measure,
            "tau_prior": plan.priors.tau,
            "mu_prior": plan.priors.mu,
            "seed": int(diag["seed"]),
        }
    )
    return idata, diag


def _sample_fit(job: _MCMCJob, plan: Plan, priors: _Priors) -> Any:
    from bayesmtor.bayes import pymc_models

    m = plan.mcmc
    a = job.arrays
    settings: dict[str, Any] = dict(
        draws=m.draws,
        tune=m.tune,
        chains=m.chains,
        target_accept=m.target_accept,
        random_seed=job.seed,
        max_retries=MCMC_MAX_RETRIES,
    )
    measure = job.measure if job.measure in _RATIO else None
    if job.kind == "multilevel":
        return pymc_models.fit_multilevel(
            a["yi"], a["sei"], list(a["group"]), labels=list(job.labels), measure=measure,
            tau_prior=priors.tau, class_sd_prior=priors.tau_class, mu_prior=priors.mu,
            **settings,
        )  # fmt: skip
    if job.kind == "binomial-normal":
        return pymc_models.fit_binomial_normal(
            a["events_trt"], a["n_trt"], a["events_ctl"], a["n_ctl"], measure=job.measure,
            labels=list(job.labels), tau_prior=priors.tau, mu_prior=priors.mu, **settings,
        )  # fmt: skip
    return pymc_models.fit_normal_normal(
        a["yi"], a["sei"], labels=list(job.labels), measure=measure, tau_prior=priors.tau,
        mu_prior=priors.mu, **settings,
    )  # fmt: skip


def _apply_check(fit: _Fit, idata: Any, diag: dict[str, Any], plan: Plan) -> None:
    """Compare the check's draws with the exact posterior (differences in MCSE units)."""
    import arviz as az

    fit.check_idata = idata
    fit.check_diag = diag
    ci = plan.ci_prob
    lo, hi = (1 - ci) / 2, (1 + ci) / 2
    ex = fit.exact
    rows = []
    for name, exact_mean, qfun in (
        ("mu", ex.mu_mean(), ex.mu_quantile),
        ("tau", ex.tau_mean(), ex.tau_quantile),
        ("theta_new", ex.mu_mean(), ex.theta_new_quantile),
    ):
        x = np.asarray(idata.posterior[name].values, dtype=float)  # (chain, draw)
        flat = x.ravel()
        stats = [
            (
                "mean",
                float(exact_mean),
                float(flat.mean()),
                float(np.ravel(az.mcse(x, method="mean"))[0]),
            )
        ]
        for label, q in (("median", 0.5), (f"q{lo:g}", lo), (f"q{hi:g}", hi)):
            se = float(np.ravel(az.mcse(x, method="quantile", prob=q))[0])
            stats.append((label, float(qfun(q)), float(np.quantile(flat, q)), se))
        for stat, e, mc, se in stats:
            z = (mc - e) / se if se > 0 else float("nan")
            rows.append(
                {
                    "analysis": fit.id,
                    "parameter": name,
                    "statistic": stat,
                    "exact": e,
                    "mcmc": mc,
                    "mcse": se,
                    "difference": mc - e,
                    "difference_in_mcse": z,
                    "agree": bool(abs(z) <= AGREEMENT_MCSE) if math.isfinite(z) else False,
                }
            )
    fit.check_table = pd.DataFrame(rows)
    if not diag["rhat_max"] <= float(config.get("rhat_max")):
        fit.status = "not converged"
        fit.reason = (
            "MCMC check did not converge, so it cannot confirm the exact posterior: "
            f"{diag['reason']}"
        )
    elif not fit.check_table["agree"].all():
        bad = fit.check_table.loc[~fit.check_table["agree"]]
        fit.status = "check disagrees"
        fit.reason = "MCMC and exact posterior differ by more than {:g} MCSE: {}".format(
            AGREEMENT_MCSE,
            ", ".join(
                f"{p} {s} ({z:+.1f})"
                for p, s, z in zip(
                    bad["parameter"], bad["statistic"], bad["difference_in_mcse"], strict=True
                )
            ),
        )
    else:
        zmax = float(np.nanmax(np.abs(fit.check_table["difference_in_mcse"])))
        note = f"MCMC check agrees with the exact posterior (largest difference {zmax:.1f} MCSE)"
        if not diag["converged"]:
            note += (
                f"; the check run itself is flagged ({diag['reason']}), which does not affect "
                "the exact result"
            )
        fit.notes.append(note)


def _apply_fit(fit: _Fit, res: Any, plan: Plan) -> None:
    """Take over an MCMC result (binomial-normal, multilevel or MCMC normal-normal)."""
    fit.bayes = res
    summ = res.summary(plan.ci_prob)
    post = res.idata.posterior
    fit.bayes_row = {
        "mu_mean": summ.loc["mu", "mean"],
        "mu_sd": summ.loc["mu", "sd"],
        "mu_median": summ.loc["mu", "median"],
        "mu_low": summ.loc["mu", "q_low"],
        "mu_high": summ.loc["mu", "q_high"],
        "tau_median": summ.loc["tau", "median"],
        "tau_low": summ.loc["tau", "q_low"],
        "tau_high": summ.loc["tau", "q_high"],
        "pred_low": summ.loc["theta_new", "q_low"],
        "pred_high": summ.loc["theta_new", "q_high"],
        "p_mu_below_0": float(np.mean(post["mu"].values < 0)),
        "quad_error": np.nan,
    }
    lo, hi = (1 - plan.ci_prob) / 2, (1 + plan.ci_prob) / 2
    th = post["theta"]
    fit.shrunken = pd.DataFrame(
        {
            "study": [str(t) for t in th["trial"].values],
            "mean": th.mean(("chain", "draw")).values,
            "median": th.median(("chain", "draw")).values,
            "q_low": th.quantile(lo, ("chain", "draw")).values,
            "q_high": th.quantile(hi, ("chain", "draw")).values,
        }
    )
    d = res.diagnostics
    fit.idata = res.idata
    fit.idata.posterior.attrs.update({"engine": "mcmc", "analysis_id": fit.id, "model": res.model})
    fit.bayes_diag = {
        "divergences": d.get("divergences"),
        "rhat_max": d.get("rhat_max"),
        "ess_bulk_min": d.get("ess_bulk_min"),
        "ess_tail_min": d.get("ess_tail_min"),
        "converged": res.converged,
        "reason": res.reason,
        "attempts": len(d.get("attempts", ())),
        "draws": d.get("draws"),
        "tune": d.get("tune"),
        "chains": d.get("chains"),
        "seed": d.get("random_seed"),
    }
    if not res.converged:
        fit.status = "not converged"
        fit.reason = f"MCMC did not pass the convergence gate: {res.reason}"


# --------------------------------------------------------------------------------------------
# sensitivity and replication
# --------------------------------------------------------------------------------------------


def _sensitivity(plan: Plan, priors: _Priors, fits: list[_Fit]) -> pd.DataFrame | None:
    from bayesmtor.bayes.exact import exact_batch
    from bayesmtor.bayes.priors import TauPrior

    use = [
        f
        for f in fits
        if f.es_table is not None and f.k > 0 and f.spec.likelihood == "normal-normal"
    ]
    if not use or plan.sensitivity is None:
        return None
    kmax = max(f.k for f in use)
    y = np.zeros((len(use), kmax))
    s = np.ones((len(use), kmax))
    mask = np.zeros((len(use), kmax), dtype=bool)
    for i, f in enumerate(use):
        y[i, : f.k] = f.es_table["yi"].to_numpy(float)
        s[i, : f.k] = f.es_table["sei"].to_numpy(float)
        mask[i, : f.k] = True
    out = []
    for text in plan.sensitivity.tau_priors:
        prior = TauPrior.from_string(text)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tab = exact_batch(y, s, mask, tau_prior=prior, mu_prior=priors.mu, ci_prob=plan.ci_prob)
        tab.insert(0, "prior", text)
        tab.insert(0, "measure", [f.measure for f in use])
        tab.insert(0, "analysis", [f.id for f in use])
        tab["reference_prior"] = text == plan.priors.tau
        out.append(tab)
    table = pd.concat(out, ignore_index=True)
    _add_ratio_columns(table, ["mu_median", "mu_low", "mu_high", "pred_low", "pred_high"])
    return table


@dataclass(frozen=True)
class _Replication:
    available: bool
    text: str
    table: pd.DataFrame | None = None
    units: pd.DataFrame | None = None


def _replication(say: _Progress, plan: Plan) -> _Replication:
    try:
        from bayesmtor import replication as rep  # type: ignore[attr-defined]
    except ImportError:
        return _Replication(False, "The replication module is not part of this installation.")
    t0 = time.perf_counter()
    try:
        result = rep.replicate(ci_prob=plan.ci_prob)
        text = rep.format_replication(result)
        table = result.table
        units = rep.unit_comparison(ci_prob=plan.ci_prob, tau_prior=plan.priors.tau)
    except BayesMTORError as exc:
        return _Replication(False, f"The replication of the 2014 paper failed: {exc}")
    say.say(f"replication of the 2014 paper ... done ({time.perf_counter() - t0:.2f} s)")
    return _Replication(True, text, table, units)


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------


def _add_ratio_columns(table: pd.DataFrame, cols: Sequence[str]) -> None:
    if "measure" not in table.columns:
        return
    ratio = table["measure"].isin(_RATIO).to_numpy()
    for c in cols:
        if c in table.columns:
            vals = table[c].to_numpy(dtype=float)
            table[f"{c}_ratio"] = np.where(ratio, np.exp(vals), np.nan)


def _base(f: _Fit) -> dict[str, Any]:
    return {
        "analysis": f.id,
        "outcome": f.task.outcome,
        "comparison": f.task.comparison,
        "measure": f.measure,
        "likelihood": f.spec.likelihood,
    }


_BAYES_COLS = [
    "mu_mean",
    "mu_sd",
    "mu_median",
    "mu_low",
    "mu_high",
    "tau_median",
    "tau_low",
    "tau_high",
    "pred_low",
    "pred_high",
    "p_mu_below_0",
    "quad_error",
]
_FREQ_COLS = [
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "pval",
    "tau2",
    "tau",
    "I2",
    "Q",
    "Q_df",
    "Q_pval",
    "pi_low",
    "pi_high",
]


def _write_tables(
    work: Path,
    plan: Plan,
    fits: list[_Fit],
    sensitivity: pd.DataFrame | None,
    replication: _Replication,
) -> dict[str, pd.DataFrame]:
    tables: dict[str, pd.DataFrame] = {}
    done = [f for f in fits if f.bayes_row]

    bayes = pd.DataFrame(
        [
            {
                **_base(f),
                "engine": f.engine,
                "k": f.k,
                "studies": "; ".join(f.es_table["study"].astype(str)),
                **{c: f.bayes_row.get(c, np.nan) for c in _BAYES_COLS},
                "ci_prob": plan.ci_prob,
                "status": f.status,
            }
            for f in done
        ],
        columns=[*_base_cols(), "engine", "k", "studies", *_BAYES_COLS, "ci_prob", "status"],
    )
    _add_ratio_columns(bayes, ["mu_median", "mu_low", "mu_high", "pred_low", "pred_high"])
    tables["pooled_bayes"] = bayes

    with_freq = [f for f in fits if f.freq is not None]
    freq = pd.DataFrame(
        [
            {
                **_base(f),
                "method": f.freq.method,
                "test": f.freq.test,
                "k": f.freq.k,
                **{c: getattr(f.freq, c) for c in _FREQ_COLS},
                "ci_prob": f.freq.ci_prob,
            }
            for f in with_freq
        ],
        columns=[*_base_cols(), "method", "test", "k", *_FREQ_COLS, "ci_prob"],
    )
    _add_ratio_columns(freq, ["estimate", "ci_low", "ci_high", "pi_low", "pi_high"])
    tables["pooled_frequentist"] = freq

    tables["side_by_side"] = _side_by_side(done, plan)

    excl = []
    for f in fits:
        if f.excluded is not None and len(f.excluded):
            e = f.excluded.copy()
            e.insert(0, "analysis", f.id)
            excl.append(e)
    from bayesmtor.datasets import single_arm_cohort

    cohort = single_arm_cohort()
    excl.append(
        pd.DataFrame(
            {
                "analysis": ["(every analysis)"],
                "comparison": [""],
                "study": ["West-Iran rapamycin cohort"],
                "report_id": ["west_iran_cohort"],
                "reason": [cohort.reason],
            }
        )
    )
    excluded = pd.concat(excl, ignore_index=True)
    excluded = excluded.drop_duplicates().reset_index(drop=True)
    tables["excluded_studies"] = excluded
    tables["single_arm_cohort"] = cohort.summary()

    tables["analyses"] = pd.DataFrame([f.record().to_dict() for f in fits])

    checks = [f.check_table for f in fits if f.check_table is not None]
    if checks:
        tables["mcmc_check"] = pd.concat(checks, ignore_index=True)
    diag_rows = []
    for f in fits:
        if f.check_diag is not None:
            diag_rows.append({"analysis": f.id, "fit": "check (normal-normal)", **f.check_diag})
        bd = f.bayes_diag
        if bd is not None:
            diag_rows.append({"analysis": f.id, "fit": f.spec.likelihood, **bd})
    if diag_rows:
        tables["mcmc_diagnostics"] = pd.DataFrame(diag_rows)
    if sensitivity is not None:
        tables["prior_sensitivity"] = sensitivity
    if replication.table is not None:
        tables["replication"] = pd.DataFrame(replication.table)
    if replication.units is not None:
        tables["unit_comparison"] = pd.DataFrame(replication.units)

    for f in done:
        if f.forest_rows is None:
            f.forest_rows = _forest_rows(f, plan)
        tables[f"forest_{f.id}"] = f.forest_rows
        if f.bayes is not None and f.spec.likelihood == "multilevel":
            tables[f"multilevel_{f.id}"] = f.bayes.summary(plan.ci_prob).reset_index()

    for name, frame in tables.items():
        with writing(work / "tables" / f"{name}.csv") as path:
            frame.to_csv(path, index=False, lineterminator="\n")
    return tables


def _base_cols() -> list[str]:
    return ["analysis", "outcome", "comparison", "measure", "likelihood"]


def _fmt_interval(est: float, lo: float, hi: float, ratio: bool) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "not estimable"
    f = math.exp if ratio else (lambda x: x)
    e = f"{f(est):.2f}" if math.isfinite(est) else "–"
    return f"{e} [{f(lo):.2f}, {f(hi):.2f}]"


def _side_by_side(done: list[_Fit], plan: Plan) -> pd.DataFrame:
    pct = f"{100 * plan.ci_prob:g}%"
    rows = []
    for f in done:
        ratio = f.measure in _RATIO
        b = f.bayes_row
        fr = f.freq
        rows.append(
            {
                **_base(f),
                "k": f.k,
                "engine": f.engine,
                f"Bayes median [{pct} CrI]": _fmt_interval(
                    b["mu_median"], b["mu_low"], b["mu_high"], ratio
                ),
                f"Bayes prediction [{pct}]": _fmt_interval(
                    float("nan"), b["pred_low"], b["pred_high"], ratio
                ),
                "Bayes tau median [interval]": _fmt_interval(
                    b["tau_median"], b["tau_low"], b["tau_high"], False
                ),
                "P(effect < null)": round(float(b["p_mu_below_0"]), 4),
                "frequentist method": fr.method if fr is not None else "",
                f"frequentist estimate [{pct} CI]": (
                    _fmt_interval(fr.estimate, fr.ci_low, fr.ci_high, ratio)
                    if fr is not None
                    else "not estimable"
                ),
                "frequentist tau": (
                    f"{fr.tau:.2f}" if fr is not None and math.isfinite(fr.tau) else ""
                ),
                "I2 (%)": f"{fr.I2:.1f}" if fr is not None and math.isfinite(fr.I2) else "",
                "status": f.status,
            }
        )
    return pd.DataFrame(rows)


def _forest_rows(f: _Fit, plan: Plan) -> pd.DataFrame:
    """Rows of the forest plot (analysis scale): every trial of the data, then pooled rows."""
    pct = f"{100 * plan.ci_prob:g}%"
    z = _z(plan.ci_prob)
    rows: list[dict[str, Any]] = []
    all_rows = f.dataset_rows
    multi = f.spec.likelihood == "multilevel"
    inc = f.es_table
    # frequentist weights (random-effects weights when tau is estimated)
    weights: dict[str, float] = {}
    if f.freq is not None:
        t2 = f.freq.tau2 if math.isfinite(f.freq.tau2) else 0.0
        w = 1.0 / (inc["vi"].to_numpy(float) + t2)
        w = 100 * w / w.sum()
        weights = dict(zip(inc["study"].astype(str), w, strict=True))
    shr = (
        {} if f.shrunken is None else {str(r.study): r for r in f.shrunken.itertuples(index=False)}
    )
    inc_labels = inc["study"].astype(str).tolist()
    k = 0
    for r in all_rows.itertuples(index=False):
        label = str(r.study)
        if multi and inc_labels.count(label) == 0 and f"{label} [{r.comparison}]" in inc_labels:
            label = f"{label} [{r.comparison}]"
        included = bool(r.included)
        yi, se = float(r.yi), float(r.sei)
        est_ok = included and math.isfinite(yi) and math.isfinite(se)
        rows.append(
            {
                "label": label,
                "kind": "observed",
                "estimate": yi if est_ok else np.nan,
                "low": yi - z * se if est_ok else np.nan,
                "high": yi + z * se if est_ok else np.nan,
                "weight": weights.get(label, np.nan),
                "trial": True,
                "included": included,
                "comparison": r.comparison,
                "note": "" if included else str(r.exclusion_reason),
            }
        )
        k += 1
        s = shr.get(label)
        if s is not None:
            rows.append(
                {
                    "label": label,
                    "kind": "shrunken",
                    "estimate": s.median,
                    "low": s.q_low,
                    "high": s.q_high,
                    "weight": np.nan,
                    "trial": True,
                    "included": True,
                    "comparison": r.comparison,
                    "note": "posterior median of the trial's effect",
                }
            )
    b = f.bayes_row
    if multi and f.bayes is not None:
        summ = f.bayes.summary(plan.ci_prob)
        for c in f.bayes.drug_classes:
            row = summ.loc[f"mu_class[{c}]"]
            rows.append(
                _pooled_row(
                    f"Class mean, {c} (Bayes, {pct} CrI)",
                    "pooled_bayes",
                    row["median"],
                    row["q_low"],
                    row["q_high"],
                    "multilevel",
                )
            )
    engine = "exact" if f.engine == "exact" else "MCMC"
    rows.append(
        _pooled_row(
            f"Pooled, Bayesian {engine} ({pct} CrI)",
            "pooled_bayes",
            b["mu_median"],
            b["mu_low"],
            b["mu_high"],
            "",
        )
    )
    if f.freq is not None:
        fr = f.freq
        rows.append(
            _pooled_row(
                f"Pooled, frequentist {fr.method} ({pct} CI)",
                "pooled_freq",
                fr.estimate,
                fr.ci_low,
                fr.ci_high,
                "",
            )
        )
    rows.append(
        _pooled_row(
            f"Prediction, new trial (Bayes, {pct})",
            "predictive",
            np.nan,
            b["pred_low"],
            b["pred_high"],
            "",
        )
    )
    return pd.DataFrame(rows)


def _pooled_row(label: str, kind: str, est: float, lo: float, hi: float, note: str) -> dict:
    return {
        "label": label,
        "kind": kind,
        "estimate": float(est),
        "low": float(lo),
        "high": float(hi),
        "weight": np.nan,
        "trial": False,
        "included": True,
        "comparison": "",
        "note": note,
    }


def _z(ci_prob: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(0.5 + ci_prob / 2))


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------


def _fit_figures(
    work: Path,
    plan: Plan,
    priors: _Priors,
    f: _Fit,
    parts: tuple[str, ...] = ("forest", "tau", "funnel"),
) -> list[tuple[str, Path]]:
    """Forest plot, tau prior vs posterior (k >= 2) and funnel plot (k >= 3) of one analysis
    (those of ``parts``); returns ``[(caption, png path)]``."""
    from bayesmtor.reporting import figures as plots

    figdir = work / "figures"
    if f.forest_rows is None:
        f.forest_rows = _forest_rows(f, plan)
    rows = f.forest_rows
    figs: list[tuple[str, Path]] = []
    trials = list(dict.fromkeys(r for r, t in zip(rows["label"], rows["trial"], strict=True) if t))
    if "forest" in parts:
        ax = plots.forest_plot(
            rows[["label", "kind", "estimate", "low", "high", "weight"]],
            measure=f.measure,
            title=f"{f.task.outcome} | {f.task.comparison} | {f.measure}",
            ci_prob=plan.ci_prob,
        )
        paths = plots.save_figure(ax.figure, figdir / f"forest_{f.id}")
        figs.append(
            (
                f"Forest plot {f.id}: {f.task.outcome}, {f.task.comparison}, {f.measure}; "
                f"trials: {'; '.join(trials)}",
                paths[0],
            )
        )
    if "tau" in parts and f.k >= TAU_FIGURE_MIN_K:
        ax = _tau_figure(f, priors, plots)
        if ax is not None:
            paths = plots.save_figure(ax.figure, figdir / f"tau_{f.id}")
            figs.append(
                (f"Heterogeneity tau {f.id}: prior ({plan.priors.tau}) and posterior", paths[0])
            )
    if "funnel" in parts and f.k >= FUNNEL_MIN_K and f.es_table is not None:
        centre = f.freq.estimate if f.freq is not None else f.bayes_row["mu_median"]
        ax = plots.funnel_plot(
            f.es_table["yi"].to_numpy(float),
            f.es_table["sei"].to_numpy(float),
            estimate=float(centre),
            measure=f.measure,
            labels=f.es_table["study"].astype(str).tolist(),
            ci_prob=plan.ci_prob,
        )
        paths = plots.save_figure(ax.figure, figdir / f"funnel_{f.id}")
        figs.append((f"Funnel plot {f.id} ({f.k} trials)", paths[0]))
    return figs


def _sensitivity_figures(work: Path, sensitivity: pd.DataFrame) -> list[tuple[str, Path]]:
    """One prior-sensitivity plot per measure (at most 6 analyses per plot)."""
    from bayesmtor.reporting import figures as plots

    figs = []
    for measure, grp in sensitivity.groupby("measure", sort=False):
        ids = list(dict.fromkeys(grp["analysis"]))
        for start in range(0, len(ids), 6):
            chunk = ids[start : start + 6]
            sub = grp.loc[grp["analysis"].isin(chunk)]
            ax = plots.prior_sensitivity_plot(
                sub[["prior", "mu_median", "mu_low", "mu_high", "tau_median", "analysis"]],
                measure=str(measure),
            )
            stem = f"prior_sensitivity_{measure}" + (f"_{start // 6 + 1}" if len(ids) > 6 else "")
            paths = plots.save_figure(ax.figure, work / "figures" / stem)
            figs.append((f"Prior sensitivity ({measure}): {', '.join(chunk)}", paths[0]))
    return figs


def _tau_figure(f: _Fit, priors: _Priors, plots: Any) -> Any:
    draws = None
    if f.exact is not None:
        post = f.exact
        top = max(float(priors.tau.ppf(0.99)), float(post.tau_quantile(0.995)))
        grid = np.linspace(0.0, top, 300)
        post_pdf = np.asarray(post.tau_pdf(grid), dtype=float)
        if f.check_idata is not None:
            draws = f.check_idata.posterior["tau"].values.ravel()
    elif f.bayes is not None:
        from scipy import stats

        draws = f.bayes.idata.posterior["tau"].values.ravel()
        top = max(float(priors.tau.ppf(0.99)), float(np.quantile(draws, 0.995)))
        grid = np.linspace(0.0, top, 300)
        # reflected kernel density estimate (tau >= 0)
        kde = stats.gaussian_kde(np.concatenate([draws, -draws]))
        post_pdf = 2.0 * kde(grid)
    else:
        return None
    prior_pdf = np.asarray(priors.tau.pdf(grid), dtype=float)
    prior_pdf = np.where(np.isfinite(prior_pdf), prior_pdf, 0.0)
    post_pdf = np.where(np.isfinite(post_pdf), post_pdf, 0.0)
    ax = plots.tau_prior_posterior_plot(
        grid,
        prior_pdf,
        post_pdf,
        prior_label=str(priors.tau.label or priors.tau.family),
        posterior_draws=draws,
    )
    ax.set_title(f"τ: {f.task.outcome} | {f.task.comparison} | {f.measure}")
    return ax


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


def _write_report(
    work: Path,
    plan: Plan,
    priors: _Priors,
    fits: list[_Fit],
    tables: Mapping[str, pd.DataFrame],
    figures: Mapping[str, list[tuple[str, Path]]],
    replication: _Replication,
    started: _dt.datetime,
) -> None:
    from bayesmtor.reporting.html import ReportSection, write_html_report

    pct = f"{100 * plan.ci_prob:g}%"
    meta = {
        "bayesmtor version": __version__,
        "plan": f"{plan.name} ({plan.source or 'in-memory plan'}); stored as plan.toml",
        "description": plan.description,
        "unit of analysis": plan.unit + (f" (BOLERO-2: {plan.bolero2})" if plan.bolero2 else ""),
        "priors": f"tau ~ {plan.priors.tau}; mu ~ {plan.priors.mu}; "
        f"tau_class ~ {plan.priors.tau_class}",
        "intervals": f"{pct} (credible, confidence and prediction intervals alike)",
        "frequentist": plan.frequentist.method + (" + HKSJ" if plan.frequentist.hksj else ""),
        "date": started.isoformat(timespec="seconds"),
        "data": "bundled curated tables (data/README.md): 2014 meta-analysis, Int J Clin Exp "
        "Med 2014;7(10):3333-3343, Tables 1-7; West-Iran rapamycin cohort",
    }
    sections: list[ReportSection] = []
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
        + ".",
    ]
    if plan.uses_mcmc:
        methods.append(
            f"- MCMC (PyMC NUTS): {m.chains} chains x {m.draws} draws after {m.tune} tuning steps, "
            f"target_accept {m.target_accept:g}, seed {m.seed}. Convergence gate: no divergences, "
            f"R-hat <= {config.get('rhat_max')}, bulk and tail ESS >= {config.get('ess_min')}. "
            f"MCMC checks agree with the exact posterior when every compared statistic is within "
            f"{AGREEMENT_MCSE:g} Monte Carlo standard errors."
        )
    methods.append(
        f"- Every analysis has an InferenceData file in idata/: MCMC fits as sampled; exact "
        f"analyses as {EXACT_DRAWS} independent draws from the exact posterior (engine='exact')."
    )
    sections.append(
        ReportSection(
            id="methods",
            title="Methods and provenance",
            text="\n".join(methods),
            tables=(("Analyses of the plan (before expansion)", plan.summary().reset_index()),),
        )
    )
    sections.append(
        ReportSection(
            id="side-by-side",
            title="Results: Bayesian and frequentist side by side",
            text=(
                f"Pooled effects on the ratio scale (risk differences as they are), posterior "
                f"median with the {pct} central credible interval beside the frequentist estimate "
                f"with its {pct} confidence interval. P(effect < null) is the posterior "
                "probability that the pooled ratio is below 1 (difference below 0)."
            ),
            tables=(("Bayesian and frequentist pooled effects", tables["side_by_side"]),),
        )
    )
    for f in fits:
        if not f.bayes_row:
            continue
        text = [
            f"{f.task.outcome} in {f.task.comparison}, measure {f.measure}, likelihood "
            f"{f.spec.likelihood}, engine {f.engine}"
            + (" (checked by MCMC)" if f.check_table is not None else "")
            + f"; k = {f.k} trial(s): {'; '.join(f.es_table['study'].astype(str))}.",
            f"Status: {f.status}" + (f" ({f.reason})" if f.reason else "") + ".",
        ]
        if f.k < TAU_FIGURE_MIN_K:
            text.append(
                "No tau plot: one trial carries no information on the between-trial SD, so its "
                "posterior is the prior."
            )
        if f.k < FUNNEL_MIN_K:
            text.append(f"No funnel plot: {f.k} trial(s) cannot show small-study asymmetry.")
        if f.notes:
            text.append("")
            text.extend(f"- {n}" for n in dict.fromkeys(f.notes))
        tabs: list[tuple[str, pd.DataFrame]] = []
        if f.exact is not None:
            tabs.append(
                (
                    f"{f.id}: exact posterior (log scale), {pct} central intervals",
                    f.exact.summary(plan.ci_prob).reset_index(),
                )
            )
        elif f.bayes is not None:
            tabs.append(
                (
                    f"{f.id}: MCMC posterior ({f.spec.likelihood}), {pct} central intervals",
                    f.bayes.summary(plan.ci_prob).reset_index(),
                )
            )
        if f.freq is not None:
            tabs.append(
                (f"{f.id}: frequentist {f.freq.method} (log scale)", f.freq.summary().reset_index())
            )
        tabs.append(
            (
                f"{f.id}: forest plot rows (analysis scale)",
                tables[f"forest_{f.id}"][
                    ["label", "kind", "estimate", "low", "high", "weight", "note"]
                ],
            )
        )
        if f.check_table is not None:
            tabs.append(
                (
                    f"{f.id}: MCMC check against the exact posterior (differences in MCSE units)",
                    f.check_table.drop(columns=["analysis"]),
                )
            )
        sections.append(
            ReportSection(
                id=f"a-{f.id}",
                title=f"{f.task.outcome} | {f.task.comparison} | {f.measure}"
                + ("" if f.spec.likelihood == "normal-normal" else f" | {f.spec.likelihood}"),
                text="\n".join(text),
                tables=tuple(tabs),
                figures=tuple(figures.get(f.id, ())),
            )
        )
    if "prior_sensitivity" in tables:
        sens = tables["prior_sensitivity"]
        cols = [
            "analysis",
            "prior",
            "k",
            "mu_median",
            "mu_low",
            "mu_high",
            "tau_median",
            "tau_low",
            "tau_high",
            "p_mu_below_0",
        ]
        sections.append(
            ReportSection(
                id="sensitivity",
                title="Prior sensitivity",
                text="Each normal-normal analysis refitted exactly under each prior on tau "
                f"(mu ~ {plan.priors.mu} unchanged). Log scale.",
                tables=(("Pooled effect under each tau prior", sens[cols]),),
                figures=tuple(figures.get("sensitivity", ())),
            )
        )
    rep_tables: list[tuple[str, pd.DataFrame]] = []
    if "replication" in tables:
        rep_tables.append(("Replication of the 2014 paper", tables["replication"]))
    if "unit_comparison" in tables:
        rep_tables.append(("Unit of analysis: report vs trial", tables["unit_comparison"]))
    sections.append(
        ReportSection(
            id="replication",
            title="Replication of the 2014 meta-analysis",
            text=replication.text,
            tables=tuple(rep_tables),
        )
    )
    cohort_reason = tables["excluded_studies"]["reason"].iloc[-1]
    sections.append(
        ReportSection(
            id="excluded",
            title="Excluded studies and reports",
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
        )
    )
    diag_tabs: list[tuple[str, pd.DataFrame]] = [
        ("Status of every analysis", tables["analyses"]),
    ]
    quad = tables["pooled_bayes"][["analysis", "engine", "quad_error"]]
    diag_tabs.append(
        ("Quadrature error estimates of the exact engine", quad.loc[quad["engine"] == "exact"])
    )
    if "mcmc_diagnostics" in tables:
        diag_tabs.append(("MCMC diagnostics", tables["mcmc_diagnostics"]))
    if "mcmc_check" in tables:
        diag_tabs.append(("MCMC check against the exact posterior", tables["mcmc_check"]))
    skipped = [f for f in fits if f.status in ("skipped", "failed")]
    sections.append(
        ReportSection(
            id="diagnostics",
            title="Diagnostics",
            text=(
                f"{len(fits)} analyses after expansion; {len(skipped)} skipped or failed"
                + (
                    ":\n\n" + "\n".join(f"- {f.id}: {f.reason}" for f in skipped)
                    if skipped
                    else "."
                )
            ),
            tables=tuple(diag_tabs),
        )
    )
    write_html_report(
        work / "report.html",
        title=f"bayesmtor report: {plan.name}",
        meta=meta,
        sections=sections,
    )


# --------------------------------------------------------------------------------------------
# misc
# --------------------------------------------------------------------------------------------


def _count_statuses(records: Sequence[AnalysisRecord]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        out[r.status] = out.get(r.status, 0) + 1
    return out


def _environment() -> dict[str, str]:
    import importlib.metadata as md

    env = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("numpy", "scipy", "pandas", "arviz", "pymc", "matplotlib"):
        try:
            env[pkg] = md.version(pkg)
        except md.PackageNotFoundError:  # pragma: no cover
            env[pkg] = "not installed"
    return env


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj
