"""MCMC for a plan run: the jobs, the worker processes that sample them, and the check model.

The jobs are pure data (:class:`MCMCJob`), so they can be sent to child processes; the workers
(:class:`MCMCRunner`, config ``mcmc_processes`` of them) sample them there while the main
process computes the exact stages, and hand back ``(kind, job id, payload)`` messages. The
check fits of a worker share one model: with the NumPy sampler (config ``mcmc_sampler``, the
default) nothing is compiled; with PyMC's, one compiled model (data held in ``pm.Data``
containers and one NUTS step reused), so the compilation is paid once per worker. The workers are terminated, and killed if need be, when
the run ends or is interrupted: none outlives the run.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayesmtor import config
from bayesmtor.bayes.exact import conditional_normal
from bayesmtor.effects import RAW_COUNT_COLUMNS
from bayesmtor.errors import BayesMTORError, EstimationError
from bayesmtor.pipeline.results import AnalysisResult
from bayesmtor.pipeline.stages import Priors, plan_priors
from bayesmtor.plans import Plan
from bayesmtor.vocabulary import RATIO_MEASURES

__all__ = ["MCMCJob", "MCMCRunner", "mcmc_jobs"]


@dataclass(frozen=True)
class MCMCJob:
    """One MCMC fit for the worker: pure data, so it can be sent to another process.

    Attributes
    ----------
    id, label : str
        Analysis id and its progress label.
    kind : str
        ``"check"``, ``"normal-normal"``, ``"binomial-normal"`` or ``"multilevel"``.
    index : int
        Position of the analysis in the run.
    measure : str
        Effect measure.
    labels : tuple of str
        Trial labels.
    seed : int
        Random seed of the first attempt.
    arrays : Mapping
        The data (``yi``, ``sei``, ``group`` and, binomial-normal, the 2x2 counts).
    """

    id: str
    kind: str
    label: str
    index: int
    measure: str
    labels: tuple[str, ...]
    seed: int
    arrays: Mapping[str, Any]


def mcmc_jobs(
    plan: Plan, results: Sequence[AnalysisResult]
) -> tuple[list[MCMCJob], dict[str, int]]:
    """The MCMC jobs of a run (checks first) and their seeds by ``"<id>:mcmc_check"`` /
    ``"<id>:mcmc"``."""
    jobs: list[MCMCJob] = []
    seeds: dict[str, int] = {}
    checks = [
        f for f in results if f.status == "ok" and f.engine == "exact" and f.spec.check_with_mcmc
    ]
    for j, f in enumerate(checks):
        seed = int(plan.mcmc.seed) + j
        seeds[f"{f.id}:mcmc_check"] = seed
        jobs.append(
            MCMCJob(
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
    mcmc = [f for f in results if f.status == "ok" and f.engine == "mcmc"]
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
            arrays.update({col: inc[col].to_numpy(int) for col in RAW_COUNT_COLUMNS})
        jobs.append(
            MCMCJob(
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
    return jobs, seeds


class MCMCRunner:
    """Runs the MCMC jobs in child processes (or inline) and hands back the results.

    ``processes`` workers (config ``mcmc_processes``, at most one per job) take the jobs one
    at a time from a shared counter, the fits without an exact counterpart first (the longest).
    Every job carries its own seed, so which worker samples it, and how many workers there
    are, changes no draw.
    """

    def __init__(
        self, plan: Plan, jobs: list[MCMCJob], in_subprocess: bool, processes: int = 1
    ) -> None:
        self.plan = plan
        self.jobs = jobs
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        self.readers: list[Any] = []
        self.inline = not in_subprocess or not jobs
        self.processes = max(1, min(int(processes), len(jobs)))
        self.started = time.perf_counter()

    def start(self) -> None:
        if self.inline or not self.jobs:
            return
        import multiprocessing as mp
        import queue
        import threading

        _preload(self.jobs)  # imported once here, inherited by the forked workers
        methods = mp.get_all_start_methods()
        ctx = mp.get_context("fork" if "fork" in methods else "spawn")
        order = sorted(range(len(self.jobs)), key=lambda i: self.jobs[i].kind == "check")
        counter = ctx.Value("i", 0)
        self.inbox: queue.Queue[Any] = queue.Queue()
        for n in range(self.processes):
            parent, child = ctx.Pipe(duplex=False)
            mp.util.register_after_fork(parent, type(parent).close)  # child must not hold it
            proc = ctx.Process(
                target=_mcmc_worker,
                args=(child, self.plan, self.jobs, order, counter, os.getpid()),
                name=f"bayesmtor-mcmc-{n + 1}",
            )
            proc.start()
            child.close()
            self.procs.append(proc)
            self.conns.append(parent)
            # Drain each pipe continuously: a result larger than the pipe buffer would
            # otherwise block its worker until this process gets round to reading it.
            reader = threading.Thread(
                target=self._read, args=(parent, proc), name="bayesmtor-mcmc-reader", daemon=True
            )
            reader.start()
            self.readers.append(reader)

    def _read(self, conn: Any, proc: Any) -> None:
        try:
            while True:
                msg = conn.recv()
                self.inbox.put(msg)
                if msg[0] in ("done", "fatal"):
                    return
        except (EOFError, OSError):
            self.inbox.put(("eof", "", proc))

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
            running = len(self.procs)
            while running:
                msg = self.inbox.get()
                if msg[0] == "eof":
                    proc = msg[2]
                    proc.join(timeout=5)
                    raise EstimationError(
                        "the MCMC worker process ended without reporting its results "
                        f"(exit code {proc.exitcode})"
                    )
                if msg[0] == "done":
                    running -= 1
                    continue
                if msg[0] == "fatal":
                    raise EstimationError(f"the MCMC worker process failed:\n{msg[2]}")
                yield msg
        finally:
            self.close()

    def close(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():  # stuck in compiled code: never leave an orphan
                proc.kill()
                proc.join(timeout=10)
        self.procs = []
        for conn in self.conns:
            conn.close()
        self.conns = []
        for reader in self.readers:
            reader.join(timeout=5)
        self.readers = []


def _preload(jobs: Sequence[MCMCJob]) -> None:
    """Import what the workers need before they are forked (ArviZ, xarray, the samplers), and
    let numba compile the ArviZ helper that the convergence gate calls, so that each worker
    starts sampling at once instead of repeating both."""
    import numpy as np

    from bayesmtor.bayes import sampling

    if any(j.kind != "check" for j in jobs):
        from bayesmtor.bayes import pymc_models  # noqa: F401

    sampling.az.rhat(np.zeros((2, 4)) + np.arange(4.0))


def _mcmc_worker(
    conn: Any, plan: Plan, jobs: list[MCMCJob], order: Sequence[int], counter: Any, parent: int
) -> None:
    """Entry point of an MCMC child process: sample the jobs ``order[counter]`` it takes from
    the shared counter until none is left; ``plan`` arrives with its prior objects."""
    import traceback

    from bayesmtor._processes import child_setup

    child_setup(parent, "bayesmtor-mcmc")

    def take() -> MCMCJob | None:
        with counter.get_lock():
            i = counter.value
            counter.value = i + 1
        return jobs[order[i]] if i < len(order) else None

    try:
        _run_jobs(plan, jobs, conn.send, take)
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
    import logging  # configuring PyMC's loggers does not import PyMC

    for name in ("pymc", "pymc.sampling", "pytensor"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _run_jobs(
    plan: Plan,
    jobs: list[MCMCJob],
    send: Callable[[tuple[str, str, Any]], None],
    take: Callable[[], MCMCJob | None] | None = None,
) -> None:
    """Run every job (or, with ``take``, the jobs it hands out until it returns none); ``send``
    receives ``("progress", id, text)``, ``("result", id, payload)`` and ``("error", id,
    message)`` messages."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*BLAS.*")
        _quiet_pymc()
        priors = plan_priors(plan)
        m = plan.mcmc
        sampler = None
        for job in iter(jobs) if take is None else iter(take, None):
            if job.kind == "check" and sampler is None:
                sampler = _check_sampler(plan, priors, send)
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


def _check_sampler(plan: Plan, priors: Priors, send: Callable[[tuple[str, str, Any]], None]) -> Any:
    """The normal-normal model that every check of this process reuses (its data swapped in)."""
    from bayesmtor.bayes import sampling

    t0 = time.perf_counter()
    if sampling.choose_sampler(None, (priors.tau, priors.mu)) == "numpy":
        return sampling.NumpyNormalNormal(priors.tau, priors.mu)  # nothing to compile
    sampler = sampling.NormalNormalModel(priors.tau, priors.mu)
    sampler.step(float(plan.mcmc.target_accept))
    send(
        (
            "progress",
            "",
            "MCMC: normal-normal check model ready (PyMC model compiled once; "
            f"{time.perf_counter() - t0:.2f} s, imports included)",
        )
    )
    return sampler


def _sample_check(job: MCMCJob, sampler: Any, plan: Plan) -> tuple[Any, dict[str, Any]]:
    """Sample the normal-normal model of :mod:`bayesmtor.bayes.sampling` (compiled once, this
    check's data swapped in) through the one retry loop of every fit,
    :func:`~bayesmtor.bayes.sampling.sample_with_retries`: attempt ``a`` uses seed
    ``job.seed + a``; a run with divergences, R-hat above the limit or too small an ESS is
    repeated (up to config ``mcmc_max_retries`` times) with a higher target acceptance, twice
    the tuning, and twice the draws when the ESS was short. A check that is still not clean is
    reported as such, never as clean."""
    import xarray as xr

    from bayesmtor.bayes.sampling import sample_with_retries

    m = plan.mcmc
    y, s = np.asarray(job.arrays["yi"], float), np.asarray(job.arrays["sei"], float)
    sampler.set_data(y, s, job.labels)
    run = sample_with_retries(
        sampler.sample, draws=m.draws, tune=m.tune, chains=m.chains,
        target_accept=float(m.target_accept), seed=job.seed,
        max_retries=config.get("mcmc_max_retries"), var_names=["mu", "tau"],
    )  # fmt: skip
    idata, gate = run.idata, run.gate
    # the row of the diagnostics table (the gate's thresholds are config values, not results)
    diag = {
        **{k: gate[k] for k in ("divergences", "rhat_max", "ess_bulk_min", "ess_tail_min")},
        "converged": run.converged,
        "reason": gate["reason"],
        **{k: gate[k] for k in ("draws", "tune", "chains")},
        "seed": gate["random_seed"],
        "attempts": len(run.attempts),
        "target_accept": gate["target_accept"],
    }
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
            "sampler": str(idata.posterior.attrs.get("sampler", "PyMC NUTS")),
            "analysis_id": job.id,
            "measure": job.measure,
            "tau_prior": plan.priors.tau.to_string(),
            "mu_prior": plan.priors.mu.to_string(),
            "seed": int(diag["seed"]),
        }
    )
    return idata, diag


def _sample_fit(job: MCMCJob, plan: Plan, priors: Priors) -> Any:
    from bayesmtor.bayes import pymc_models

    m = plan.mcmc
    a = job.arrays
    settings: dict[str, Any] = dict(
        draws=m.draws,
        tune=m.tune,
        chains=m.chains,
        target_accept=m.target_accept,
        random_seed=job.seed,
        max_retries=config.get("mcmc_max_retries"),
    )
    measure = job.measure if job.measure in RATIO_MEASURES else None
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
