"""Shared test configuration.

* ``BAYESMTOR_STRICT_SKIPS=1`` (set by ``.ci/run``) turns every skipped test into a failure,
  so that a missing optional dependency or missing source documents can never hide a check in
  CI: skips in the test body fail, skips at setup (fixtures, ``skipif``) are errors, and a
  module skipped at import is a collection error.
* Matplotlib always renders off-screen.
* Ctrl-C works in the processes the tests start, even when pytest itself was started with
  SIGINT ignored (a background job of a non-interactive shell, ``nohup``): an ignored SIGINT is
  inherited through ``exec``, and a Python started that way never raises KeyboardInterrupt, so
  the tests of interrupted runs would see a run that cannot be interrupted.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest

if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"


def _strict_skip(report) -> None:
    """Turn a skipped report into a failure (xfail excepted) under BAYESMTOR_STRICT_SKIPS=1."""
    if os.environ.get("BAYESMTOR_STRICT_SKIPS") != "1" or not report.skipped:
        return
    if hasattr(report, "wasxfail"):
        return
    reason = report.longrepr
    if isinstance(reason, tuple) and len(reason) == 3:  # (path, line, "Skipped: why")
        reason = f"{reason[0]}:{reason[1]}: {reason[2]}"
    report.outcome = "failed"
    report.longrepr = f"skipped test is an error under BAYESMTOR_STRICT_SKIPS=1: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # called once per phase: skips raised at setup (fixtures, skipif marks) fail as errors,
    # skips raised in the test body as failures
    outcome = yield
    _strict_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    # a module skipped at import (pytest.importorskip / pytest.skip(allow_module_level=True))
    # becomes a collection error, which stops the run
    outcome = yield
    _strict_skip(outcome.get_result())


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def primary(tmp_path_factory):
    """``bayesmtor run`` of the primary plan, once per session: ``(out folder, analyses.csv)``."""
    import pandas as pd

    from bayesmtor.cli import main

    out = tmp_path_factory.mktemp("cli_run") / "primary-output"
    code = main(["run", "--out", str(out), "--quiet"])
    assert code == 0
    analyses = pd.read_csv(out / "tables" / "analyses.csv")
    return out, analyses
