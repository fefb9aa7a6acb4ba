"""Helpers of the tests that look for processes a run left behind (Linux ``/proc``)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def name(pid: int) -> str:
    """The name of process ``pid`` (``/proc/<pid>/comm``; empty once it has ended)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def wait_for_children(
    proc: subprocess.Popen[str], timeout: float, named: str | None = None
) -> list[int]:
    """The child processes of ``proc`` once it has any (with ``named``: once one of them has
    that name, and only those); empty if it ends or time runs out."""
    found: list[int] = []
    deadline = time.monotonic() + timeout
    while not found and proc.poll() is None and time.monotonic() < deadline:
        found = children(proc.pid)
        if named is not None:
            found = [pid for pid in found if name(pid) == named]
        time.sleep(0.02)
    return found
