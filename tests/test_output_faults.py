"""Fault injection: kills at every step of the swap, full disks, refused permissions, SIGTERM.

Tests run as root, for whom ``chmod`` stops nothing, so refused permissions, full disks and
exceeded quotas are injected: the function that would fail raises the ``OSError`` the
operating system gives (``errno`` and message as ``strerror(3)`` prints them on Linux).

A kill is simulated in a forked child that leaves through ``os._exit`` right before its N-th
call that changes the filesystem (``rename``, ``replace``, ``unlink``, ``rmdir``), for every N
up to the number of such calls a complete swap makes. The parent then does what the next run
does first (:func:`bayesmtor.reporting.outputs.recover_output`) and checks that exactly the old or the new
output is in place, complete, and that nothing is left beside it.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from processes import running, wait_for_children
from test_runner import TINY_PLAN

from bayesmtor import cli
from bayesmtor.errors import OutputError
from bayesmtor.pipeline.run import run_plan
from bayesmtor.plans import parse_plan
from bayesmtor.reporting.outputs import (
    MARKER_NAME,
    OutputFolder,
    _host_tag,
    atomic_output_dir,
    partial_name_pattern,
    recover_output,
)
from bayesmtor.reporting.write import write_run

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")

# The same analysis checked by a short MCMC fit: the run starts its MCMC worker process.
MCMC_PLAN = (
    TINY_PLAN.replace('"tiny_test"', '"sigterm_test"')
    + """
[engine]
bayes = "exact"
check_with_mcmc = true

[mcmc]
chains = 2
draws = 200
tune = 200
target_accept = 0.9
seed = 1
"""
)

# Exit status of a forked child that was "killed" at the call it was told to die at.
KILLED = 77
# Exit status of a forked child whose swap finished before the call it was told to die at.
FINISHED = 78

#: Filesystem calls that change what is on disk, as the swap and the recovery make them.
MUTATING = ("rename", "replace", "unlink", "rmdir")

#: Seconds to wait for ``bayesmtor run`` to reach its MCMC worker or to end after SIGTERM.
SUBPROCESS_TIMEOUT_S = 60.0


def _siblings(target: Path) -> list[str]:
    pattern = partial_name_pattern(target)
    return sorted(p.name for p in target.parent.iterdir() if pattern.match(p.name))


def _files(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): p.read_text()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MARKER_NAME
    }


OLD = {"old.txt": "old run", "tables/a.csv": "x\n1\n"}
NEW = {"new.txt": "new run", "tables/b.csv": "y\n2\n"}


def _write(work: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)


def _make_old(target: Path) -> None:
    with atomic_output_dir(target) as work:
        _write(work, OLD)


def _count_calls(monkeypatch: pytest.MonkeyPatch, on_call: Callable[[str, tuple], None]) -> None:
    for name in MUTATING:
        real = getattr(os, name)

        def wrapper(*args, _real=real, _name=name, **kwargs):
            on_call(_name, args)
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, wrapper)


def _fail(
    monkeypatch: pytest.MonkeyPatch, name: str, when: Callable[..., bool], error: OSError
) -> None:
    """``os.<name>`` raises ``error`` for the calls whose positional arguments match ``when``."""
    real = getattr(os, name)

    def wrapper(*args, **kwargs):
        if when(*args):
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(os, name, wrapper)


def _swap_calls(target: Path, setup: Callable[[Path], None]) -> list[tuple[str, tuple]]:
    """The mutating calls of one complete commit, recorded in a throw-away copy."""
    probe = target.parent / "probe" / target.name
    probe.parent.mkdir()
    setup(probe)
    calls: list[tuple[str, tuple]] = []
    with pytest.MonkeyPatch.context() as mp:
        with OutputFolder(probe, force=True) as work:
            _write(work, NEW)
            _count_calls(mp, lambda name, args: calls.append((name, args)))
    return calls


def _commit_killed_at(target: Path, kill_at: int) -> int:
    """Fork; the child writes NEW and dies right before its ``kill_at``-th mutating call."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns to pytest
        status = 1
        try:
            seen = [0]

            def maybe_die(_name: str, _args: tuple) -> None:
                if seen[0] == kill_at:
                    os._exit(KILLED)
                seen[0] += 1

            with pytest.MonkeyPatch.context() as mp:
                with OutputFolder(target, force=True) as work:
                    _write(work, NEW)
                    _count_calls(mp, maybe_die)
            status = FINISHED
        finally:
            os._exit(status)
    _, wait_status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wait_status)


def _index(calls: list[tuple[str, tuple]], name: str, first: str, second: str) -> int:
    """Index of the ``name(first..., second...)`` call (matched on the base names)."""
    for i, (n, args) in enumerate(calls):
        if n == name and len(args) >= 2:
            a, b = Path(args[0]).name, Path(args[1]).name
            if a.startswith(first) and b.startswith(second):
                return i
    raise AssertionError(f"no {name}({first}, {second}) among {calls}")


@pytest.mark.parametrize("before", ["previous output", "missing", "empty folder"])
def test_kill_at_every_step_of_the_commit_then_recover(tmp_path: Path, before: str) -> None:
    """Whatever instant the kill hits, the next run finds exactly the old or the new output."""

    def setup(target: Path) -> None:
        if before == "previous output":
            _make_old(target)
        elif before == "empty folder":
            target.mkdir()

    calls = _swap_calls(tmp_path / "run", setup)
    marker_done = _index(calls, "replace", f".{MARKER_NAME}.tmp-", MARKER_NAME)
    new_in_place = _index(calls, "rename", ".run.partial-", "run")
    assert len(calls) >= (2 if before != "previous output" else 6)
    for kill_at in range(len(calls) + 1):
        case = tmp_path / f"k{kill_at}"
        case.mkdir()
        target = case / "run"
        setup(target)
        code = _commit_killed_at(target, kill_at)
        assert code == (KILLED if kill_at < len(calls) else FINISHED), kill_at
        recovery = recover_output(target)
        if kill_at > new_in_place:  # the new output was in place before the kill
            expected = NEW
        elif before == "previous output":
            expected = OLD  # restored from the trash folder if the kill hit mid-swap
        elif kill_at > marker_done:
            expected = NEW  # the partial folder was complete: promoted into place
        else:
            expected = None
        if expected is None:
            assert (before == "empty folder") == target.is_dir(), kill_at
            assert not target.exists() or list(target.iterdir()) == [], kill_at
        else:
            assert _files(target) == expected, (kill_at, calls[kill_at : kill_at + 1])
            assert (target / MARKER_NAME).is_file(), kill_at
        assert _siblings(target) == [], (kill_at, recovery)
        # After the recovery, a new replacing run works as usual.
        if expected is not None:
            with atomic_output_dir(target, force=True) as work:
                _write(work, {"third.txt": "third run"})
            assert _files(target) == {"third.txt": "third run"}


def _dead_pid() -> int:
    """The pid of a process that has ended and been reaped."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def _leftover(target: Path, kind: str, pid: int) -> Path:
    """A hidden work folder named as a run with ``pid`` on this host would name it."""
    return target.parent / f".{target.name}.{kind}-{_host_tag()}-{pid}-{secrets.token_hex(4)}"


def test_target_missing_and_a_trash_folder_of_version_0_1_restores_the_old_output(
    tmp_path: Path,
) -> None:
    """The state a kill between the two renames left: 0.1 then deleted the trash as stale."""
    target = tmp_path / "run"
    _make_old(target)
    trash = _leftover(target, "trash", _dead_pid())
    os.rename(target, trash)
    folder = OutputFolder(target)
    with pytest.raises(OutputError, match="holds a previous bayesmtor output; pass --force"):
        folder.__enter__()
    assert folder.recovery.restored == trash and folder.recovery.restored_kind == "previous"
    assert folder.recovery.messages(target) == [
        f"restored the previous output, which an interrupted run had moved aside, into '{target}'"
    ]
    assert _files(target) == OLD
    assert _siblings(target) == []


def test_incomplete_partial_is_removed_and_complete_partial_promoted(tmp_path: Path) -> None:
    target = tmp_path / "run"
    _make_old(tmp_path / "done")
    complete = _leftover(target, "partial", _dead_pid())
    os.rename(tmp_path / "done", complete)
    _make_old(tmp_path / "half")
    (tmp_path / "half" / "old.txt").write_text("old")  # shorter than its marker says
    incomplete = _leftover(target, "partial", _dead_pid())
    os.rename(tmp_path / "half", incomplete)
    recovery = recover_output(target)
    assert recovery.restored == complete and recovery.restored_kind == "completed"
    assert recovery.removed == (incomplete,)
    assert _files(target) == OLD
    assert _siblings(target) == []


def test_trash_folder_is_kept_when_the_target_now_holds_a_users_files(tmp_path: Path) -> None:
    target = tmp_path / "run"
    _make_old(target)
    trash = _leftover(target, "trash", _dead_pid())
    os.rename(target, trash)
    target.mkdir()
    (target / "mine.txt").write_text("mine")
    recovery = recover_output(target)
    assert recovery.kept == (trash,) and recovery.removed == ()
    assert "move it back by hand" in recovery.messages(target)[0]
    assert _files(trash) == OLD and _files(target) == {"mine.txt": "mine"}


def test_a_live_runs_trash_folder_is_never_touched(tmp_path: Path) -> None:
    target = tmp_path / "run"
    _make_old(target)
    trash = _leftover(target, "trash", os.getppid())  # the process that started pytest
    os.rename(target, trash)
    recovery = recover_output(target)
    assert recovery.restored is None and recovery.removed == ()
    assert not target.exists() and _files(trash) == OLD


def test_signals_during_the_swap_wait_until_it_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "run"
    _make_old(target)

    class Stop(BaseException):
        pass

    def stop(_signum: int, _frame: object) -> None:
        raise Stop

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with pytest.raises(Stop):
            with atomic_output_dir(target, force=True) as work:
                _write(work, NEW)

                def signal_then_rename(name: str, args: tuple) -> None:
                    if name == "rename" and Path(args[0]) == target:  # old output aside
                        os.kill(os.getpid(), signal.SIGTERM)

                _count_calls(monkeypatch, signal_then_rename)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert _files(target) == NEW
    assert _siblings(target) == []


# --------------------------------------------------------------------------------------------
# write errors through the runner and the command line
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "tiny.toml"
    path.write_text(TINY_PLAN, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def real_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete output of the tiny plan (its run also loads the modules a run needs)."""
    out = tmp_path_factory.mktemp("real") / "run"
    write_run(run_plan(parse_plan(TINY_PLAN)), out)
    return out


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder``, marker included, with its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _copy(real_output: Path, tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    target = tmp_path / "run"
    shutil.copytree(real_output, target, symlinks=True)
    return target, _snapshot(target)


def _run_cli(plan: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["run", str(plan), "--out", str(out), "--force", "--quiet"])
    return code, capsys.readouterr().err


def _assert_one_line_error(err: str, fragment: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bayesmtor: error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in err


def test_full_disk_writing_a_table(
    tmp_path: Path, tiny_plan: Path, real_output: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import pandas as pd

    target, before = _copy(real_output, tmp_path)

    def full(self, path, *args, **kwargs):
        Path(path).write_text("half a tab")  # a write that ran out of space half-way
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    code, err = _run_cli(tiny_plan, target, capsys)
    assert code == 2
    _assert_one_line_error(err, f"cannot write '{target}/tables/")
    assert err.rstrip().endswith(".csv': No space left on device")
    assert _snapshot(target) == before and _siblings(target) == []


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "Disk quota exceeded"),
        (RuntimeError("NetCDF: HDF error"), "NetCDF: HDF error"),  # netCDF4 on a full disk
    ],
    ids=["EDQUOT", "netCDF4-HDF-error"],
)
def test_quota_or_netcdf_error_writing_an_idata_file(
    tmp_path: Path,
    real_output: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    reason: str,
) -> None:
    import arviz as az

    target, before = _copy(real_output, tmp_path)

    def fail(self, filename, *args, **kwargs):
        Path(filename).write_bytes(b"\x89HDF")
        raise error

    result = run_plan(parse_plan(TINY_PLAN))
    monkeypatch.setattr(az.InferenceData, "to_netcdf", fail)
    with pytest.raises(OutputError) as info:
        write_run(result, target, force=True)
    nc = target / "idata" / "cbr.temsirolimus_endocrine.RR.nc"
    assert str(info.value).startswith(f"cannot write '{nc}': {reason}")
    assert _snapshot(target) == before and _siblings(target) == []


def test_ctrl_c_inside_the_netcdf_writer_waits_until_the_file_is_closed(
    tmp_path: Path, real_output: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGINT that arrives while a .nc file is being written is delivered after it is closed.

    Raised inside xarray's netCDF writer, the KeyboardInterrupt leaves the library's file lock
    taken and closing the file then waits for it forever (seen as a hung ``bayesmtor run``).
    """
    import arviz as az

    target, before = _copy(real_output, tmp_path)
    original = az.InferenceData.to_netcdf
    written: list[str] = []

    def interrupted(self, filename, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # the interrupt lands in the middle of the write
        out = original(self, filename, *args, **kwargs)
        written.append(Path(filename).name)  # reached only if the signal was held back
        return out

    result = run_plan(parse_plan(TINY_PLAN))
    monkeypatch.setattr(az.InferenceData, "to_netcdf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_run(result, target, force=True)
    assert len(written) == 1  # the first file was finished, then the run stopped
    assert _snapshot(target) == before and _siblings(target) == []


def test_rerun_after_a_kill_mid_swap_restores_then_replaces(
    tmp_path: Path, tiny_plan: Path, real_output: Path, capsys
) -> None:
    """The reported failure: a kill between the two renames, then ``run --force`` again."""
    target, before = _copy(real_output, tmp_path)
    trash = _leftover(target, "trash", _dead_pid())
    os.rename(target, trash)
    code = cli.main(["run", str(tiny_plan), "--out", str(target), "--force"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.splitlines()[0] == (
        f"restored the previous output, which an interrupted run had moved aside, into '{target}'"
    )
    assert _siblings(target) == []
    after = _snapshot(target)
    assert sorted(after) == sorted(before)  # the same files, newly written
    assert after["run.json"] != before["run.json"]  # new timings and time stamps


def test_read_only_filesystem_writing_a_figure(
    tmp_path: Path, tiny_plan: Path, real_output: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    target = tmp_path / "run"
    real_fsync = os.fsync

    def read_only(fd: int) -> None:
        real_fsync(fd)
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "fsync", read_only)
    code, err = _run_cli(tiny_plan, target, capsys)
    assert code == 2
    _assert_one_line_error(err, f"cannot write '{target}/figures/forest_")
    assert err.rstrip().endswith(".png': Read-only file system")
    assert list(tmp_path.iterdir()) == []


def test_permission_denied_in_the_parent_folder(
    tmp_path: Path, tiny_plan: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    parent = tmp_path / "locked"
    parent.mkdir()
    real_mkdir = Path.mkdir

    def refuse(self: Path, *args, **kwargs) -> None:
        if self.parent == parent:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refuse)
    code, err = _run_cli(tiny_plan, parent / "run", capsys)
    assert code == 2
    _assert_one_line_error(
        err, f"cannot write in '{parent}': Permission denied; check that the folder exists"
    )
    assert list(parent.iterdir()) == []


def test_read_only_filesystem_at_the_final_rename_keeps_the_old_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "run"
    _make_old(target)
    _fail(
        monkeypatch,
        "rename",
        lambda src, dst: Path(src).name.startswith(".run.partial-") and Path(dst) == target,
        OSError(errno.EROFS, "Read-only file system"),
    )
    with pytest.raises(OutputError, match="cannot move the new output into .*Read-only file"):
        with atomic_output_dir(target, force=True) as work:
            _write(work, NEW)
    assert _files(target) == OLD and _siblings(target) == []


def test_old_output_that_cannot_be_deleted_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "run"
    _make_old(target)
    _fail(  # as after `chattr +i old.txt`
        monkeypatch,
        "unlink",
        lambda path: Path(path).name == "old.txt",
        PermissionError(errno.EPERM, "Operation not permitted"),
    )
    with pytest.raises(OutputError) as info:
        with atomic_output_dir(target, force=True) as work:
            _write(work, NEW)
    (junk,) = _siblings(target)
    assert junk.startswith(".run.junk-")
    assert str(info.value) == (
        f"the new output is in '{target}', but the previous one could not be deleted "
        f"completely: 'old.txt' (Operation not permitted); delete '{tmp_path / junk}' by hand"
    )
    assert _files(target) == NEW


# --------------------------------------------------------------------------------------------
# SIGTERM to a real `bayesmtor run`
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_sigterm_to_bayesmtor_run(tmp_path: Path) -> None:
    """Exit 143, one line, no partial folder, previous output intact, no MCMC worker left."""
    plan = tmp_path / "mcmc.toml"
    plan.write_text(MCMC_PLAN, encoding="utf-8")
    target = tmp_path / "run"
    _make_old(target)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bayesmtor", "run", str(plan), "--out", str(target), "--force"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    workers: list[int] = []
    try:
        workers = wait_for_children(proc, SUBPROCESS_TIMEOUT_S, named="bayesmtor-mcmc")
        assert workers, "the run did not start its MCMC worker"
        # fitting writes nothing: the output folder is opened only once every fit is done
        assert not [n for n in _siblings(target) if ".partial-" in n], (
            "partial folder while fitting"
        )
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    finally:
        if proc.poll() is None:  # pragma: no cover - only if the test failed above
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, err
    assert err.rstrip().splitlines()[-1] == (
        "bayesmtor: terminated by SIGTERM; no partial output was left"
    )
    assert "Traceback" not in err and out == ""
    assert _siblings(target) == []
    assert _files(target) == OLD
    assert not any(running(w) for w in workers), "orphaned MCMC worker still running"
