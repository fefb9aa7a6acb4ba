"""Run an analysis plan: every fit, no file.

:func:`run_plan` turns a :class:`~bayesmtor.plans.Plan` into frozen results
(:class:`~bayesmtor.pipeline.results.RunResult`); :func:`bayesmtor.reporting.write.write_run`
turns those into one output folder. The stages, in order:

1. **Expand** every ``[[analysis]]`` against the bundled data
   (:func:`bayesmtor.pipeline.expand.expand_plan`).
2. **Data, effect sizes, frequentist pooling and the exact posterior** of every analysis
   (:func:`bayesmtor.pipeline.stages.prepare`).
3. **MCMC** (binomial-normal and multilevel models, ``bayes = "mcmc"``, and the checks of
   ``check_with_mcmc``) in worker processes (:mod:`bayesmtor.pipeline.mcmc_worker`, config
   ``mcmc_processes``), started here and running while the main process fits the
   meta-regressions, draws the exact-engine InferenceData and refits the prior sensitivity;
   their results are joined before returning.
4. **Replication** of the 2014 paper, computed from the start of the run in a helper process
   (it needs none of the fits above) and joined after the MCMC workers have started.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from bayesmtor import __version__, config
from bayesmtor.errors import EstimationError, InputError
from bayesmtor.pipeline import stages
from bayesmtor.pipeline.expand import Task, analysis_id, expand_plan
from bayesmtor.pipeline.mcmc_worker import MCMCRunner, mcmc_jobs
from bayesmtor.pipeline.regression import fit_regressions
from bayesmtor.pipeline.results import AnalysisRecord, AnalysisResult, Replication, RunResult
from bayesmtor.plans import Plan, load_plan
from bayesmtor.progress import emit

__all__ = [
    "AnalysisRecord",
    "AnalysisResult",
    "RunResult",
    "analysis_id",
    "expand_plan",
    "run_plan",
]


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

    def event(self, phase: str, label: str, done: int, total: int) -> None:
        """A :class:`bayesmtor.progress.ProgressEvent`, if the callback takes events."""
        emit(self.callback, phase, label, done, total)


def run_plan(
    plan: Plan | str | Path,
    *,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Fit every analysis of a plan; write nothing.

    Parameters
    ----------
    plan : Plan, str or Path
        A loaded plan, the name of a bundled plan (``"primary"``) or the path of a TOML file.
    progress : callable, optional
        Called with one line of text per step (e.g. ``print`` to stderr); silent if omitted.
        If it also has an ``event`` method (:class:`bayesmtor.progress.ProgressSink`), that
        receives a :class:`~bayesmtor.progress.ProgressEvent` per analysis and phase.

    Returns
    -------
    RunResult
        Frozen results of every expanded analysis; write them with
        :func:`bayesmtor.reporting.write.write_run`.

    Raises
    ------
    bayesmtor.errors.PlanError
        The plan cannot be loaded.
    bayesmtor.errors.EstimationError
        The MCMC worker process failed as a whole.
    """
    t_start = time.perf_counter()
    started = _dt.datetime.now(_dt.UTC)
    if not isinstance(plan, Plan):
        plan = load_plan(plan)
    replication = _ReplicationHelper(plan)
    try:
        return _run(plan, progress, replication, t_start, started)
    finally:
        replication.close()


def _run(
    plan: Plan,
    progress: Callable[[str], None] | None,
    helper: _ReplicationHelper,
    t_start: float,
    started: _dt.datetime,
) -> RunResult:
    say = _Progress(progress, 0)
    timings: dict[str, float] = {}
    say.say(f"bayesmtor {__version__}: plan '{plan.name}' ({len(plan.analyses)} analyses)")

    t0 = time.perf_counter()
    from bayesmtor.datasets import available_analyses

    tasks = expand_plan(plan, available_analyses(plan.unit, plan.bolero2))
    timings["expand"] = time.perf_counter() - t0
    say.total = len(tasks)
    say.say(
        f"expanded to {len(tasks)} analyses ({sum(t.skip_reason is None for t in tasks)} with data)"
    )

    priors = stages.plan_priors(plan)
    t0 = time.perf_counter()
    results = []
    for i, task in enumerate(tasks, start=1):
        label = f"{task.outcome} {task.comparison} {task.spec.measure}"
        say.event("fitting", label, i - 1, len(tasks))
        results.append(_prepare(i, task, plan, priors, say))
    say.event("fitting", "", len(tasks), len(tasks))
    timings["data_frequentist_exact"] = time.perf_counter() - t0

    # MCMC in worker processes, overlapping with the meta-regressions and exact stages below
    jobs, seeds = mcmc_jobs(plan, results)
    mcmc = MCMCRunner(
        plan,
        jobs,
        in_subprocess=config.get("mcmc_in_subprocess"),
        processes=config.get("mcmc_processes"),
    )
    t_mcmc = time.perf_counter()
    if jobs:
        n = mcmc.processes
        where = "in this process" if mcmc.inline else f"in {n} worker process{'es' * (n > 1)}"
        say.say(f"MCMC: {len(jobs)} fit(s) started {where}")
        say.event("MCMC", f"{jobs[0].label} ({jobs[0].kind})", 0, len(jobs))
    mcmc.start()
    timings["mcmc_start"] = time.perf_counter() - t_mcmc
    try:
        t0 = time.perf_counter()
        regressions = fit_regressions(plan, say.say)
        timings["meta_regression"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        results, exact_seeds = _exact_draws(results, plan)
        seeds.update(exact_seeds)
        timings["exact_idata"] = time.perf_counter() - t0

        sensitivity, replication = _sensitivity_and_replication(
            plan, priors, results, say, timings, helper
        )

        t0 = time.perf_counter()
        results = _join_mcmc(mcmc, results, plan, say)
        timings["mcmc_wait"] = time.perf_counter() - t0
    finally:
        mcmc.close()
    timings["mcmc_total"] = time.perf_counter() - t_mcmc

    results = [stages.with_provenance(r, plan) for r in results]
    timings["fitting"] = time.perf_counter() - t_start
    return RunResult(
        plan=plan,
        analyses=tuple(results),
        sensitivity=sensitivity,
        replication=replication,
        seeds={"mcmc": plan.mcmc.seed, **seeds},
        timings=timings,
        started=started,
        finished=_dt.datetime.now(_dt.UTC),
        seconds=time.perf_counter() - t_start,
        regressions=regressions,
    )


def _prepare(
    index: int, task: Task, plan: Plan, priors: stages.Priors, say: _Progress
) -> AnalysisResult:
    """Data, frequentist and exact stages of one analysis; failures become its status."""
    result = AnalysisResult(task=task, index=index, engine=task.spec.bayes)
    head = f"[{index}/{say.total}] {result.label}:"
    if task.skip_reason is not None:
        say.say(f"{head} skipped ({task.skip_reason})")
        return replace(result, status="skipped", reason=task.skip_reason)
    t0 = time.perf_counter()
    what = "data, frequentist " + stages.freq_method(plan, result.measure)
    if result.engine == "exact":
        what += ", exact posterior"
    try:
        result = stages.prepare(result, plan, priors)
    except (EstimationError, InputError) as exc:
        result = replace(result, status="failed", reason=str(exc))
    result = replace(result, seconds=result.seconds + time.perf_counter() - t0)
    if result.status == "ok":
        say.say(f"{head} {what} ... done ({result.seconds:.2f} s)")
    else:
        say.say(f"{head} {what} ... {result.status} ({result.reason})")
    return result


def _sensitivity_and_replication(
    plan: Plan,
    priors: stages.Priors,
    results: Sequence[AnalysisResult],
    say: _Progress,
    timings: dict[str, float],
    helper: _ReplicationHelper,
) -> tuple[pd.DataFrame | None, Replication]:
    """The prior-sensitivity refits and the replication of the 2014 paper (timed: the wait
    for the helper process that computes it)."""
    t0 = time.perf_counter()
    sensitivity = None
    if plan.sensitivity is not None:
        say.event("sensitivity", "exact refits under each tau prior", 0, 1)
        sensitivity = say.step(
            say.total,
            "prior sensitivity",
            f"{len(plan.sensitivity.tau_priors)} tau priors (exact, vectorised)",
            lambda: stages.sensitivity(plan, priors, results),
        )
        say.event("sensitivity", "", 1, 1)
    timings["sensitivity"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    say.event("replication", "the 2014 paper's pooled results", 0, 1)
    replication = helper.result()
    say.event("replication", "", 1, 1)
    if replication.available:
        say.say(f"replication of the 2014 paper ... done ({time.perf_counter() - t0:.2f} s)")
    timings["replication"] = time.perf_counter() - t0
    return sensitivity, replication


class _ReplicationHelper:
    """The replication of the 2014 paper (:func:`bayesmtor.pipeline.stages.replication`),
    computed in a forked helper process from the start of the run: it needs nothing of the
    plan's fits, and the main process leaves the second core idle while it expands the plan,
    fits the analyses one after the other and imports ArviZ for the MCMC workers. Without
    fork, or should the helper fail, it is computed here, in this process, when asked for (so
    an error is raised as it would be without the helper). The helper is ended with the run.
    """

    def __init__(self, plan: Plan) -> None:
        import multiprocessing as mp

        self.plan = plan
        self.proc: Any = None
        self.conn: Any = None
        if "fork" not in mp.get_all_start_methods():
            return
        ctx = mp.get_context("fork")
        parent, child = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(
            target=_replication_helper,
            args=(child, plan, os.getpid()),
            name="bayesmtor-replication",
        )
        self.proc.start()
        child.close()
        self.conn = parent

    def result(self) -> Replication:
        """The replication: the helper's, or computed here."""
        out = None
        if self.conn is not None:
            try:
                kind, payload = self.conn.recv()
                out = payload if kind == "result" else None
            except (EOFError, OSError):
                out = None
            self.close()
        return out if out is not None else stages.replication(self.plan)

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.is_alive():
                self.proc.terminate()
            self.proc.join(timeout=10)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join(timeout=10)
            self.proc = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _replication_helper(conn: Any, plan: Plan, parent: int) -> None:
    """Entry point of the replication helper: ``("result", Replication)`` or ``("error",
    traceback)`` down ``conn``. Ctrl-C is the parent's to handle: it ends this process."""
    import signal
    import traceback

    from bayesmtor._processes import child_setup

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    child_setup(parent, "bayesmtor-repl")
    try:
        message: tuple[str, Any] = ("result", stages.replication(plan))
    except BaseException:  # computed again by the parent, which raises it there
        message = ("error", traceback.format_exc())
    try:
        conn.send(message)
    except OSError:  # pragma: no cover - the parent is gone
        pass
    finally:
        conn.close()


def _exact_draws(
    results: Sequence[AnalysisResult], plan: Plan
) -> tuple[list[AnalysisResult], dict[str, int]]:
    """The exact-engine InferenceData of every exact analysis, and the seeds of its draws."""
    seeds: dict[str, int] = {}
    out = []
    for r in results:
        if r.status == "ok" and r.exact is not None:
            seed = stages.exact_seed(plan, r.index)
            seeds[f"{r.id}:exact_draws"] = seed
            r = replace(r, idata=stages.exact_idata(r, plan, seed))
        out.append(r)
    return out, seeds


def _join_mcmc(
    mcmc: MCMCRunner, results: Sequence[AnalysisResult], plan: Plan, say: _Progress
) -> list[AnalysisResult]:
    """Wait for the MCMC worker and fold its messages into the results."""
    by_id = {r.id: r for r in results}
    jobs, finished = list(mcmc.jobs), set()
    for kind, rid, payload in mcmc.results():
        if kind in ("result", "error"):
            finished.add(rid)
            following = [j for j in jobs if j.id not in finished]
            now = f"{following[0].label} ({following[0].kind})" if following else ""
            say.event("MCMC", now, len(finished), len(jobs))
        r = by_id.get(rid)
        if kind == "progress":
            prefix = f"[{r.index}/{say.total}] {r.label}: " if r is not None else ""
            say.say(prefix + str(payload))
        elif kind == "error" and r is not None:
            if r.engine == "exact":  # the exact result stands; the check is missing
                by_id[rid] = replace(r, notes=(*r.notes, f"MCMC check could not run: {payload}"))
            else:
                by_id[rid] = replace(r, status="failed", reason=f"MCMC: {payload}", bayes_row={})
        elif kind == "result" and r is not None:
            result, notes, secs = payload
            r = replace(
                r, seconds=r.seconds + secs, notes=(*r.notes, *(f"MCMC: {n}" for n in notes))
            )
            if r.engine == "exact":
                by_id[rid] = stages.apply_check(r, result[0], result[1], plan)
            else:
                by_id[rid] = stages.apply_fit(r, result, plan)
    return [by_id[r.id] for r in results]
