"""Command-line hygiene: a closed pipe ends quietly, a live progress display on a terminal
only, ``-v`` logging, and no third-party chatter on stdout or stderr by default."""

from __future__ import annotations

import io
import logging
import os
import pty
import select
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from test_runner import TINY_PLAN  # one exact analysis with one trial

from bayesmtor import logs
from bayesmtor.cli import EXIT_CLOSED_PIPE
from bayesmtor.progress import LineProgress, LiveProgress, ProgressEvent, emit, make_progress

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bayesmtor", *args]


@pytest.mark.parametrize(
    "args",
    [
        ("replicate",),
        ("plans",),
        ("pool", str(EXAMPLES / "neoadjuvant_orr_counts.csv"), "--measure", "RR", "--json"),
    ],
    ids=["replicate", "plans", "pool"],
)
def test_closed_pipe_ends_quietly(args):
    """The reader goes away before anything is written: no traceback, exit status 141."""
    proc = subprocess.Popen(_cli(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader of stdout is gone (as 'head -1' after its line)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == EXIT_CLOSED_PIPE
    assert err == ""


def test_head_one_of_replicate_prints_one_line(tmp_path):
    done = subprocess.run(
        " ".join(_cli("replicate")) + " | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
        executable="/bin/bash",
    )
    assert done.stdout.startswith("Replication of the 2014 meta-analysis")
    assert done.stdout.count("\n") == 1
    assert "Traceback" not in done.stderr and done.stderr == ""


# -- progress --------------------------------------------------------------------------------


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_kind_follows_quiet_and_the_terminal(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    assert make_progress(quiet=True, stream=_TTY()) is None
    assert isinstance(make_progress(quiet=False, stream=io.StringIO()), LineProgress)
    live = make_progress(quiet=False, stream=_TTY())
    try:
        assert isinstance(live, LiveProgress)
    finally:
        live.close()
    monkeypatch.setenv("TERM", "dumb")
    assert isinstance(make_progress(quiet=False, stream=_TTY()), LineProgress)


def test_run_plan_reports_every_analysis_and_phase(monkeypatch):
    from bayesmtor.pipeline.run import run_plan
    from bayesmtor.plans import parse_plan

    class Sink:
        def __init__(self):
            self.lines, self.events = [], []

        def __call__(self, line):
            self.lines.append(line)

        def event(self, event):
            self.events.append(event)

    sink = Sink()
    run_plan(parse_plan(TINY_PLAN, source="tiny.toml"), progress=sink)
    phases = [e.phase for e in sink.events]
    assert phases[0] == "fitting" and "replication" in phases
    assert sink.events[0] == ProgressEvent("fitting", "cbr temsirolimus_endocrine RR", 0, 1)
    assert ProgressEvent("fitting", "", 1, 1) in sink.events
    assert sink.lines  # the lines still arrive
    # a plain callable gets lines only; emit() ignores it
    emit(print, "fitting", "x", 0, 1)


def _read_all(fd: int, proc: subprocess.Popen, timeout: float = 300) -> bytes:
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            break
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=timeout)
    return b"".join(chunks)


def _run_on_a_terminal(tmp_path: Path, *extra: str) -> tuple[int, str, bytes]:
    plan = tmp_path / "tiny.toml"
    plan.write_text(TINY_PLAN, encoding="utf-8")
    out = tmp_path / f"out{len(extra)}"
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120"}
    proc = subprocess.Popen(
        _cli("run", str(plan), "--out", str(out), *extra),
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    try:
        err = _read_all(master, proc)
    finally:
        os.close(master)
    stdout = proc.stdout.read().decode()
    proc.stdout.close()
    return proc.returncode, stdout, err


@pytest.mark.slow
def test_live_display_on_a_terminal_and_none_with_quiet(tmp_path):
    code, stdout, err = _run_on_a_terminal(tmp_path)
    assert code == 0, err
    text = err.decode(errors="replace")
    assert "\x1b[" in text  # a redrawn display, not only lines
    assert "fitting" in text and "writing" in text
    assert "0:00:" in text  # time elapsed
    assert "report:" in stdout and "\x1b[" not in stdout
    code, stdout, err = _run_on_a_terminal(tmp_path, "--quiet")
    assert code == 0
    assert err == b""


# -- logging and chatter ----------------------------------------------------------------------


def test_third_party_records_are_silent_by_default_and_shown_with_verbose(capsys):
    logs.configure_cli_logging(0)
    with logs.third_party_quiet():
        logging.getLogger("pymc").info("Initializing NUTS using jitter+adapt_diag...")
        logging.getLogger("pytensor").warning("could not link to a BLAS installation")
    assert capsys.readouterr().err == ""
    try:
        logs.configure_cli_logging(1)
        with logs.third_party_quiet():
            logging.getLogger("pymc").info("Initializing NUTS using jitter+adapt_diag...")
        err = capsys.readouterr().err
        assert "bayesmtor: INFO: pymc: Initializing NUTS" in err
    finally:
        logs.configure_cli_logging(0)
    # the libraries' own handlers and levels are back
    assert logging.getLogger("pymc").propagate is not None


def test_package_warnings_pass_through_and_library_warnings_are_logged(caplog):
    fake = "/site-packages/pytensor/link/c/cmodule.py"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with caplog.at_level(logging.WARNING, logger="bayesmtor"):
            with logs.third_party_quiet():
                warnings.warn_explicit("could not link to BLAS", UserWarning, fake, 1)
                warnings.warn("a bayesmtor warning", UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["a bayesmtor warning"]
    assert any("could not link to BLAS" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
@pytest.mark.mcmc
def test_api_mcmc_fit_writes_nothing(capfd, monkeypatch):
    """bm.bayesmeta(engine="mcmc"): no PyMC/PyTensor/ArviZ line on stdout or stderr (the
    sampler's worker processes included, hence file-descriptor capture)."""
    import bayesmtor as bm
    from bayesmtor import config

    for key, value in (("draws", 300), ("tune", 300), ("chains", 2), ("mcmc_max_retries", 0)):
        monkeypatch.setitem(config.defaults, key, value)  # a short fit: output, not accuracy
    ds = bm.datasets.comparative_dataset("pfs", "everolimus_endocrine", unit="trial")
    es = bm.escalc(ds.data, measure="HR")
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        post = bm.bayesmeta(es, engine="mcmc", random_seed=3)
    out, err = capfd.readouterr()
    assert out == "" and err == "", (out, err)
    assert post.engine == "mcmc"
    # only the package's own warnings (e.g. the convergence gate) may be issued
    assert all(type(w.message).__module__.startswith("bayesmtor") for w in seen), [
        (type(w.message), str(w.message)) for w in seen
    ]
