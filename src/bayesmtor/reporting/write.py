"""Write a run into one output folder: tables, InferenceData, figures, report, plan, run.json.

:func:`write_run` takes the frozen results of :func:`bayesmtor.pipeline.run.run_plan` and
writes, into one folder built atomically (:func:`bayesmtor.reporting.outputs.atomic_output_dir`:
a marker file, refusal of folders bayesmtor did not write, the plan file protected, a
crash-safe swap, write errors as one line):

``tables/``  the CSV tables of :mod:`bayesmtor.reporting.tables`.
``idata/<id>.nc``  one ArviZ InferenceData per analysis: the MCMC fit, or, for the exact
engine, independent draws from the exact posterior (attribute ``engine = "exact"``);
``idata/<id>.mcmc_check.nc`` for each check fit.
``figures/``  the figures of :mod:`bayesmtor.reporting.run_figures`, PNG and SVG.
``report.html`` (self-contained), ``plan.toml`` (the plan as run) and ``run.json``
(version, plan, priors, seeds, timings and the status of every analysis).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bayesmtor import __version__, config
from bayesmtor.pipeline.results import RunResult
from bayesmtor.progress import emit
from bayesmtor.reporting import html
from bayesmtor.reporting.atomic import signals_held, writing
from bayesmtor.reporting.outputs import MARKER_NAME, atomic_output_dir
from bayesmtor.reporting.run_figures import FigureDrawing
from bayesmtor.reporting.tables import build_tables

__all__ = ["check_output", "write_run"]


def _protected(result_or_plan: Any) -> tuple[Path, ...]:
    plan = getattr(result_or_plan, "plan", result_or_plan)
    return (Path(plan.source),) if plan.source is not None else ()


def check_output(
    out: str | Path,
    *,
    plan: Any,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Refuse ``out`` now, before a long run, if :func:`write_run` would refuse it later.

    What earlier, killed runs left beside ``out`` is repaired first, as :func:`write_run`
    would do (see :func:`bayesmtor.reporting.outputs.recover_output`).

    Parameters
    ----------
    out : str or Path
        The output folder.
    plan : Plan
        The plan to be run (its file may not be inside ``out``).
    force : bool, default False
        As in :func:`write_run`.
    progress : callable, optional
        Called with one line per repair made; silent if omitted.

    Raises
    ------
    bayesmtor.errors.OutputError
        ``out`` is protected, a file, or not empty (without ``force``), or not an unchanged
        bayesmtor output (with ``force``).
    """
    folder = atomic_output_dir(out, force=force, protect=_protected(plan))
    for line in folder.check().messages(folder.target):
        if progress is not None:
            progress(line)


def write_run(
    result: RunResult,
    out: str | Path,
    *,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write the results of a run into the output folder ``out``.

    Parameters
    ----------
    result : RunResult
        What :func:`bayesmtor.pipeline.run.run_plan` returned.
    out : str or Path
        Output folder. It is built in a hidden sibling folder and moved into place only when
        everything has been written, so an error or an interruption leaves no partial output.
    force : bool, default False
        Replace ``out`` if it exists and is not empty, which bayesmtor does only for an
        unchanged output folder of its own (see :mod:`bayesmtor.reporting.outputs`); otherwise
        :class:`~bayesmtor.errors.OutputError`.
    progress : callable, optional
        Called with one line of text per step; silent if omitted. If it also has an ``event``
        method, that receives :class:`bayesmtor.progress.ProgressEvent` objects (phase
        ``"writing"``).

    Returns
    -------
    list of Path
        Every file of the output folder (inside ``out``), sorted.

    Raises
    ------
    bayesmtor.errors.OutputError
        ``out`` exists (without ``force``), is not a bayesmtor output (with ``force``), is
        protected (the current or home folder, a folder holding the plan file, ...) or cannot
        be written (full disk, read-only, permission denied: one message naming the file).
    """
    say = progress or (lambda _line: None)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    folder = atomic_output_dir(out, force=force, protect=_protected(result))
    with folder as work:
        for line in folder.recovery.messages(folder.target):
            say(line)
        for sub in ("tables", "figures", "idata"):
            (work / sub).mkdir()
        t0 = time.perf_counter()
        emit(progress, "writing", "tables", 0, 4)
        tables = build_tables(result)
        timings["tables"] = time.perf_counter() - t0

        t_fig = time.perf_counter()
        with FigureDrawing(result, tables) as drawing:  # drawn meanwhile in other processes
            t0 = time.perf_counter()
            for name, frame in tables.items():
                with writing(work / "tables" / f"{name}.csv") as path:
                    frame.to_csv(path, index=False, lineterminator="\n")
            timings["tables"] += time.perf_counter() - t0

            t0 = time.perf_counter()
            emit(progress, "writing", "InferenceData files", 1, 4)
            _write_idata(work / "idata", result)
            timings["idata"] = time.perf_counter() - t0

            with writing(work / "plan.toml") as path:
                path.write_text(result.plan.to_toml(), encoding="utf-8")

            t0 = time.perf_counter()
            emit(progress, "writing", "figures", 2, 4)
            figures = drawing.write(work / "figures")
            timings["figures_wait"] = time.perf_counter() - t0
        timings["figures"] = time.perf_counter() - t_fig
        n_fig = sum(len(v) for v in figures.values())
        say(f"figures: {n_fig} written as PNG and SVG ({timings['figures']:.1f} s)")

        t0 = time.perf_counter()
        emit(progress, "writing", "report", 3, 4)
        html.write_run_report(work / "report.html", result, tables, figures)
        timings["report"] = time.perf_counter() - t0

        timings["writing"] = time.perf_counter() - t_start
        files = sorted(
            [str(p.relative_to(work)) for p in work.rglob("*") if p.is_file()]
            + ["run.json", MARKER_NAME]  # the marker is written when the folder is committed
        )
        with writing(work / "run.json") as path:
            text = json.dumps(_jsonable(_run_json(result, timings, files)), indent=2)
            path.write_text(text + "\n", encoding="utf-8")
    emit(progress, "writing", "", 4, 4)
    say(f"wrote {Path(out)} ({len(files)} files) in {time.perf_counter() - t_start:.1f} s")
    return [folder.requested / f for f in files]


def _write_idata(folder: Path, result: RunResult) -> None:
    """``<id>.nc`` and ``<id>.mcmc_check.nc`` of every analysis that has them.

    Each file is written with Ctrl-C and SIGTERM held back until it is closed: an interrupt
    raised inside the netCDF/HDF5 writer can leave the library's file lock taken, and closing
    the half-written file during the clean-up then waits for that lock forever. Held, the
    signal arrives a fraction of a second later, between two files, and the run stops cleanly.
    """
    for f in result.analyses:
        for idata, name in ((f.idata, f"{f.id}.nc"), (f.check_idata, f"{f.id}.mcmc_check.nc")):
            if idata is not None:
                with signals_held(), writing(folder / name) as path:
                    idata.to_netcdf(str(path), engine=config.get("netcdf_engine"))


def _run_json(result: RunResult, timings: dict[str, float], files: list[str]) -> dict[str, Any]:
    """Provenance of the run: version, plan, priors, seeds, timings, statuses and files."""
    plan = result.plan
    records = result.records
    all_timings = {**result.timings, **timings, "total": result.seconds + timings["writing"]}
    return {
        "bayesmtor_version": __version__,
        "plan": plan.name,
        "plan_source": str(plan.source) if plan.source is not None else None,
        "plan_description": plan.description,
        "unit": plan.unit,
        "bolero2": plan.bolero2,
        "ci_prob": plan.ci_prob,
        "priors": {
            "tau": plan.priors.tau.to_string(),
            "mu": plan.priors.mu.to_string(),
            "tau_class": plan.priors.tau_class.to_string(),
            "sensitivity_tau": (
                [p.to_string() for p in plan.sensitivity.tau_priors]
                if plan.sensitivity is not None
                else []
            ),
        },
        "frequentist": {"method": plan.frequentist.method, "hksj": plan.frequentist.hksj},
        "mcmc": plan.mcmc.to_dict(),
        "seeds": dict(result.seeds),
        "started": result.started.isoformat(timespec="seconds"),
        "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "timings_seconds": {k: round(v, 3) for k, v in all_timings.items()},
        "environment": _environment(),
        "analyses": [r.to_dict() for r in records],
        "statuses": result.status_counts(),
        "files": files,
    }


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
