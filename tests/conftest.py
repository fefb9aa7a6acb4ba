"""Shared test configuration.

* ``BAYESMTOR_STRICT_SKIPS=1`` (set by ``.ci/run``) turns every skipped test into a failure,
  so that a missing optional dependency can never hide a check in CI.
* Matplotlib always renders off-screen.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("BAYESMTOR_STRICT_SKIPS") == "1" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped test is an error under BAYESMTOR_STRICT_SKIPS=1: {report.longrepr}"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE_DIR
