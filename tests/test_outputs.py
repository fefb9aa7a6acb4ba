"""Atomic output folders and files: all-or-nothing, even when the process is interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bayesmtor.errors import OutputError
from bayesmtor.outputs import (
    OutputFolder,
    atomic_output_dir,
    atomic_write_bytes,
    atomic_write_text,
    clean_stale_partials,
    partial_name_pattern,
)

# How long the parent waits for the child to reach its "ready" point before giving up.
CHILD_TIMEOUT_S = 30


def _siblings(target: Path) -> list[str]:
    pattern = partial_name_pattern(target)
    return sorted(p.name for p in target.parent.iterdir() if pattern.match(p.name))


def _make_old(target: Path) -> None:
    target.mkdir()
    (target / "old.txt").write_text("old run")


def _assert_old_intact(target: Path) -> None:
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert (target / "old.txt").read_text() == "old run"


def test_success_creates_folder_and_leaves_no_work_folder(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "run"
    with atomic_output_dir(target) as work:
        assert work.parent == target.parent
        assert work.name.startswith(".run.partial-")
        assert not target.exists()  # nothing visible until the block ends
        (work / "a.csv").write_text("x\n1\n")
        (work / "figs").mkdir()
        (work / "figs" / "f.png").write_bytes(b"png")
    assert (target / "a.csv").read_text() == "x\n1\n"
    assert (target / "figs" / "f.png").read_bytes() == b"png"
    assert _siblings(target) == []


def test_existing_empty_folder_is_filled_without_force(tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.mkdir()
    with atomic_output_dir(target) as work:
        (work / "a.txt").write_text("new")
    assert (target / "a.txt").read_text() == "new"


def test_refuses_non_empty_target_without_force(tmp_path: Path) -> None:
    target = tmp_path / "run"
    _make_old(target)
    with pytest.raises(OutputError, match="--force"):
        with atomic_output_dir(target):
            pytest.fail("the block must not run")  # pragma: no cover
    _assert_old_intact(target)
    assert _siblings(target) == []


def test_refuses_a_file_as_target(tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.write_text("i am a file")
    with pytest.raises(OutputError, match="is a file"):
        with atomic_output_dir(target, force=True):
            pass  # pragma: no cover


def test_force_replaces_old_content(tmp_path: Path) -> None:
    target = tmp_path / "run"
    _make_old(target)
    folder = OutputFolder(target, force=True)
    with folder as work:
        (work / "new.txt").write_text("new run")
        _assert_old_intact(target)  # old output still visible while the new one is built
    assert folder.committed
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert _siblings(target) == []  # trash folder removed


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_interruption_leaves_old_content_and_no_partial(
    tmp_path: Path, exc_type: type[BaseException]
) -> None:
    target = tmp_path / "run"
    _make_old(target)
    with pytest.raises(exc_type):
        with atomic_output_dir(target, force=True) as work:
            (work / "half.txt").write_text("half written")
            raise exc_type("stop mid-way")
    _assert_old_intact(target)
    assert _siblings(target) == []


@pytest.mark.parametrize("exc_type", [ValueError, KeyboardInterrupt])
def test_interruption_without_previous_target_leaves_nothing(
    tmp_path: Path, exc_type: type[BaseException]
) -> None:
    target = tmp_path / "run"
    with pytest.raises(exc_type):
        with atomic_output_dir(target) as work:
            (work / "half.txt").write_text("half")
            raise exc_type("stop")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from bayesmtor.outputs import atomic_output_dir
    target = Path(sys.argv[1])
    with atomic_output_dir(target, force=True) as work:
        (work / "half.txt").write_text("half written")
        print("READY", flush=True)
        time.sleep(60)
    """
)


@pytest.mark.parametrize("had_old", [True, False])
def test_sigkill_mid_write_then_rerun(tmp_path: Path, had_old: bool) -> None:
    if os.name != "posix":  # pragma: no cover
        pytest.skip("SIGKILL is POSIX only")
    target = tmp_path / "run"
    if had_old:
        _make_old(target)
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(target)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "READY"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=CHILD_TIMEOUT_S)  # reap: a zombie would still count as running
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    # The killed run could not clean up: its partial folder is left, the target is untouched.
    leftovers = _siblings(target)
    assert len(leftovers) == 1 and leftovers[0].startswith(".run.partial-")
    if had_old:
        _assert_old_intact(target)
    else:
        assert not target.exists()
    # A rerun removes the dead run's partial folder and succeeds.
    with atomic_output_dir(target, force=True) as work:
        (work / "done.txt").write_text("complete")
    assert sorted(p.name for p in target.iterdir()) == ["done.txt"]
    assert _siblings(target) == []


def test_clean_stale_partials_spares_live_runs(tmp_path: Path) -> None:
    target = tmp_path / "run"
    live_pid = os.getppid()  # the pytest parent process is alive
    pattern_host = partial_name_pattern(target)
    with atomic_output_dir(target) as work:  # a folder of our own, named with our host tag
        host = pattern_host.match(work.name)["host"]  # type: ignore[index]
        live = tmp_path / f".run.partial-{host}-{live_pid}-0123abcd"
        live.mkdir()
        # Our own folder and the live process's folder survive a cleanup.
        assert clean_stale_partials(target) == []
        assert work.exists() and live.exists()
        # With an age limit of zero, another process's folder goes, ours still stays.
        assert clean_stale_partials(target, max_age_seconds=-1.0) == [live]
        assert work.exists()
    # Unrelated hidden files are never touched.
    other = tmp_path / ".run.partial-notours"
    other.mkdir()
    assert clean_stale_partials(target) == []
    assert other.exists()


def test_atomic_write_text_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "t.txt"
    assert atomic_write_text(path, "a\r\nb\n") == path
    assert path.read_bytes() == b"a\r\nb\n"  # newlines written exactly as given
    atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in path.parent.iterdir()) == ["t.txt"]


def test_atomic_write_failure_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("old")

    class Boom(bytes):
        def __bytes__(self) -> bytes:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(path, Boom(b"new"))
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


def test_atomic_write_into_a_file_path_raises_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="blocker"):
        atomic_write_text(blocker / "t.txt", "y")


def test_repr() -> None:
    assert "force=True" in repr(OutputFolder(Path("out"), force=True))
