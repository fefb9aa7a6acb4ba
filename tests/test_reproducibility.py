"""Reproducibility: same seed, same numbers; interrupted runs leave no corrupted output.

* The exact engine and the frequentist methods are deterministic: two calls give
  bit-identical results.
* MCMC with the same seed gives bit-identical draws (one small fit, run twice).
* An output folder being written by a process that is interrupted (SIGINT) or killed
  (SIGKILL) is either absent or the complete previous one, never half-written, and a rerun
  succeeds; through ``bayesmtor run`` every output then records the package version, the plan
  and the priors, and a killed run leaves no MCMC worker process behind.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from processes import running, wait_for_children

from bayesmtor import frequentist
from bayesmtor.bayes.exact import exact_batch, exact_posterior
from bayesmtor.reporting.outputs import MARKER_NAME, atomic_output_dir, partial_name_pattern

# Five log hazard ratios and SEs of the shape found in the mTOR trials (illustrative values).
YI = np.array([-0.45, -0.10, -0.32, 0.05, -0.61])
SEI = np.array([0.21, 0.30, 0.18, 0.40, 0.25])
SEED = 20141001
READY_TIMEOUT = 60.0  # seconds to wait for the child to reach the middle of its output


def test_exact_engine_is_deterministic() -> None:
    a = exact_posterior(YI, SEI)
    b = exact_posterior(YI, SEI)
    pd.testing.assert_frame_equal(a.summary(), b.summary(), check_exact=True)
    grid = np.linspace(0.0, 2.0, 41)
    assert np.array_equal(a.tau_cdf(grid), b.tau_cdf(grid))
    ys = np.vstack([YI, YI[::-1]])
    ss = np.vstack([SEI, SEI[::-1]])
    pd.testing.assert_frame_equal(exact_batch(ys, ss), exact_batch(ys, ss), check_exact=True)
    # draws from the exact posterior follow their seed
    pd.testing.assert_frame_equal(a.draws(500, SEED), b.draws(500, SEED), check_exact=True)


def test_frequentist_is_deterministic() -> None:
    for method in ("FE",) + frequentist.RE_METHODS:
        r1 = frequentist.rma(YI, SEI, method=method)
        r2 = frequentist.rma(YI, SEI, method=method)
        assert r1.to_dict() == r2.to_dict()


@pytest.mark.slow
@pytest.mark.mcmc
def test_mcmc_same_seed_bit_identical() -> None:
    from bayesmtor.bayes.pymc_models import fit_normal_normal

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 2 x 200 draws may not pass the ESS gate
            return fit_normal_normal(
                YI,
                SEI,
                measure="HR",
                chains=2,
                draws=200,
                tune=200,
                random_seed=SEED,
                max_retries=0,
            )

    r1, r2 = fit(), fit()
    for group in ("posterior", "posterior_predictive"):
        d1, d2 = r1.idata[group], r2.idata[group]
        assert set(d1.data_vars) == set(d2.data_vars)
        for name in d1.data_vars:
            assert np.array_equal(d1[name].values, d2[name].values), f"{group}.{name}"
    pd.testing.assert_frame_equal(r1.summary(), r2.summary(), check_exact=True)


# --------------------------------------------------------------------------------------------
# interrupted output
# --------------------------------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from bayesmtor.reporting.outputs import atomic_output_dir

    out = Path(sys.argv[1])
    with atomic_output_dir(out, force=True) as work:
        (work / "table.csv").write_text("study,yi\\nA,0.1\\n")
        (work / "half.csv").write_text("study,yi\\n")
        print("READY", flush=True)
        time.sleep(60)
        (work / "report.html").write_text("<html></html>")
    """
)


def _start_child(out: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT)
    line = proc.stdout.readline() if ready else ""
    if line.strip() != "READY":
        proc.kill()
        pytest.fail(f"child did not start writing: {proc.communicate()[1]}")
    return proc


def _previous_output(out: Path) -> None:
    """A complete earlier output, as bayesmtor writes it (marker included)."""
    with atomic_output_dir(out) as work:
        (work / "old.csv").write_text("complete previous output\n")


def _leftovers(out: Path) -> list[str]:
    pattern = partial_name_pattern(out)
    return [p.name for p in out.parent.iterdir() if pattern.match(p.name)]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
@pytest.mark.parametrize("previous", [False, True], ids=["fresh", "replace"])
def test_interrupted_output_is_never_half_written(tmp_path: Path, sig: int, previous: bool) -> None:
    out = tmp_path / "results"
    if previous:
        _previous_output(out)
    proc = _start_child(out)
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=READY_TIMEOUT)
    assert proc.returncode != 0
    if sig == signal.SIGINT:
        # KeyboardInterrupt unwinds through the context manager, which removes its work folder
        assert _leftovers(out) == []
        assert "KeyboardInterrupt" in err
    if previous:
        assert sorted(p.name for p in out.iterdir()) == [MARKER_NAME, "old.csv"]
        assert (out / "old.csv").read_text() == "complete previous output\n"
    else:
        assert not out.exists()
    # a rerun succeeds and removes what a killed run left behind
    with atomic_output_dir(out, force=True) as work:
        (work / "table.csv").write_text("study,yi\nA,0.1\n")
    assert sorted(p.name for p in out.iterdir()) == [MARKER_NAME, "table.csv"]
    assert _leftovers(out) == []


# --------------------------------------------------------------------------------------------
# the runner: provenance in every output, interrupted runs
# --------------------------------------------------------------------------------------------

# One analysis on the bundled data, exact engine only: the cheapest complete run.
SMALL_PLAN = """\
[plan]
schema_version = 1
name = "reliability_small"
description = "One exact-engine analysis, used to test interrupted runs and provenance."
unit = "trial"
bolero2 = "latest_full_report"
ci_prob = 0.95

[priors]
tau = "half-normal:0.5"
mu = "normal:0,4"

[engine]
bayes = "exact"
check_with_mcmc = false

[frequentist]
method = "REML"
hksj = false

[[analysis]]
outcome = "pfs"
comparison = "everolimus_endocrine"
measure = "HR"
likelihood = "normal-normal"
"""


def _run_argv(plan: Path, out: Path) -> list[str]:
    """``bayesmtor run PLAN --out OUT --force`` on the real entry point."""
    return [sys.executable, "-m", "bayesmtor", "run", str(plan), "--out", str(out), "--force"]


def _wait_for_partial(out: Path, proc: subprocess.Popen[str]) -> bool:
    """Wait until the run has written a first file into its work folder; False if it finished."""
    pattern = partial_name_pattern(out)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        for p in out.parent.iterdir():
            if pattern.match(p.name) and any(q.is_file() for q in p.rglob("*")):
                return True
        time.sleep(0.02)
    proc.kill()
    pytest.fail("the run did not start writing its output")


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _assert_complete(out: Path) -> dict:
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    for name in ("plan.toml", "report.html", "tables/pooled_bayes.csv"):
        assert (out / name).is_file(), name
    return run


@pytest.mark.slow
def test_runner_interrupted_then_rerun_with_provenance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import arviz as az

    from bayesmtor import __version__, cli
    from bayesmtor.plans import load_plan

    plan_path = tmp_path / "small.toml"
    plan_path.write_text(SMALL_PLAN, encoding="utf-8")
    out = tmp_path / "results"
    _previous_output(out)
    for sig in (signal.SIGINT, signal.SIGKILL):
        before = _snapshot(out)
        proc = subprocess.Popen(
            _run_argv(plan_path, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        started = _wait_for_partial(out, proc)
        if started:
            os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=READY_TIMEOUT)
        if started:
            # never half-written: the previous output is untouched, byte for byte
            assert _snapshot(out) == before
            if sig == signal.SIGINT:
                assert proc.returncode == 130, err
                assert "Traceback" not in err and "interrupted" in err
                assert _leftovers(out) == [], "an interrupted run must remove its work folder"
            else:
                assert proc.returncode == -signal.SIGKILL
        else:  # the run finished before it could be interrupted: it must be complete
            assert proc.returncode == 0, err
            _assert_complete(out)

    # a rerun succeeds, cleans what the killed run left, and records its provenance
    code = cli.main(["run", str(plan_path), "--out", str(out), "--force", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert _leftovers(out) == []
    assert not (out / "old.csv").exists()
    run = _assert_complete(out)
    assert run["bayesmtor_version"] == __version__
    assert run["plan"] == "reliability_small"
    assert run["priors"]["tau"] == "half-normal:0.5" and run["priors"]["mu"] == "normal:0,4"
    assert load_plan(out / "plan.toml") == load_plan(plan_path)
    report = (out / "report.html").read_text(encoding="utf-8")
    assert __version__ in report and "reliability_small" in report
    assert "half-normal" in report
    nc_files = sorted((out / "idata").glob("*.nc"))
    assert nc_files
    for path in nc_files:
        idata = az.InferenceData.from_netcdf(str(path), engine="netcdf4")
        attrs = {**getattr(idata, "attrs", {}), **idata.posterior.attrs}
        assert attrs["bayesmtor_version"] == __version__, path.name
        assert attrs["tau_prior"] == "half-normal:0.5" and attrs["mu_prior"] == "normal:0,4"


@pytest.mark.slow
@pytest.mark.mcmc
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_killed_run_leaves_no_mcmc_worker(tmp_path: Path) -> None:
    """SIGKILL to ``bayesmtor run`` must not leave its MCMC worker process running forever."""
    plan_path = tmp_path / "mcmc.toml"
    plan_text = SMALL_PLAN.replace("check_with_mcmc = false", "check_with_mcmc = true")
    plan_text += "\n[mcmc]\nchains = 2\ndraws = 200\ntune = 200\ntarget_accept = 0.9\nseed = 1\n"
    plan_path.write_text(plan_text, encoding="utf-8")
    out = tmp_path / "results"
    proc = subprocess.Popen(
        _run_argv(plan_path, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    workers: list[int] = []
    try:
        workers = wait_for_children(proc, READY_TIMEOUT, named="bayesmtor-mcmc")
        assert workers, "the run did not start its MCMC worker"
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=READY_TIMEOUT)  # returns once no process holds its pipes
        deadline = time.monotonic() + READY_TIMEOUT
        while any(running(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(running(w) for w in workers), "orphaned MCMC worker still running"
        assert not out.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
        for w in workers:
            if running(w):
                os.kill(w, signal.SIGKILL)


_FIGURE_POOL_SCRIPT = """
import multiprocessing as mp, os, sys, time
from bayesmtor.reporting.run_figures import _quiet_worker
pool = mp.get_context("fork").Pool(2, initializer=_quiet_worker, initargs=(os.getpid(),))
pool.map(abs, range(4))
print(" ".join(str(p.pid) for p in pool._pool), flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_figure_processes_die_with_a_killed_run() -> None:
    """SIGKILL of the run ends its idle drawing processes and frees its stdout and stderr.

    Without this, each idle pool process waits for work forever (every one of them holds the
    write end of the task queue) and keeps the run's output pipes open, so anything reading
    the run's output -- a shell pipeline, a CI log, ``communicate()`` -- hangs.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", _FIGURE_POOL_SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    workers = [int(p) for p in proc.stdout.readline().split()]
    assert len(workers) == 2 and all(running(p) for p in workers)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=20)  # hangs here if a worker keeps the pipes open
    assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while any(running(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(running(p) for p in workers), "drawing processes outlived the run"
