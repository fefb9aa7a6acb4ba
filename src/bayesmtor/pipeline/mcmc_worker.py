"""MCMC for a plan run: the jobs, one worker process that samples them, and the check model.

The jobs are pure data (:class:`MCMCJob`), so they can be sent to a child process; the worker
(:class:`MCMCRunner`) samples them there while the main process computes the exact stages, and
hands back ``(kind, job id, payload)`` messages. The check fits share one model: with the
NumPy sampler (config ``mcmc_sampler``, the default) nothing is compiled; with PyMC's, one
compiled model (data held in ``pm.Data`` containers and one NUTS step reused), so the
compilation is paid once per run. The worker is terminated, and killed if need be, when the run ends or is
interrupted: it never outlives the run.
"""

from __future__ import annotations

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
    """Runs the MCMC jobs in a child process (or inline) and hands back the results."""

    def __init__(self, plan: Plan, jobs: list[MCMCJob], in_subprocess: bool) -> None:
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
            args=(child, self.plan, self.jobs),
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


def _mcmc_worker(conn: Any, plan: Plan, jobs: list[MCMCJob]) -> None:
    """Entry point of the MCMC child process; ``plan`` arrives with its prior objects."""
    import traceback

    try:
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
    import logging  # configuring PyMC's loggers does not import PyMC

    for name in ("pymc", "pymc.sampling", "pytensor"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _run_jobs(
    plan: Plan, jobs: list[MCMCJob], send: Callable[[tuple[str, str, Any]], None]
) -> None:
    """Run every job; ``send`` receives ``("progress", id, text)``, ``("result", id, payload)``
    and ``("error", id, message)`` messages."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*BLAS.*")
        _quiet_pymc()
        priors = plan_priors(plan)
        m = plan.mcmc
        checks = [j for j in jobs if j.kind == "check"]
        sampler = None
        if checks:
            from bayesmtor.bayes import sampling

            t0 = time.perf_counter()
            if sampling.choose_sampler(None, (priors.tau, priors.mu)) == "numpy":
                sampler = sampling.NumpyNormalNormal(priors.tau, priors.mu)
                note = "NumPy NUTS, nothing to compile"
            else:
                sampler = sampling.NormalNormalModel(priors.tau, priors.mu)
                sampler.step(float(m.target_accept))
                note = "PyMC model compiled once"
            send(
                (
                    "progress",
                    "",
                    f"MCMC: normal-normal check model ready ({note}; "
                    f"{time.perf_counter() - t0:.2f} s, imports included)",
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
