"""Work shared with forked processes: when forking is safe, and text made on two cores.

A forked process starts with the parent's memory (the data, NumPy and the package already
imported), so handing it part of a job costs a few milliseconds. Forking is used only where
``os.fork`` exists and only from a process without other threads (forking a threaded process
can deadlock); wherever it is not possible, or a forked process fails, the work is done in
the calling process, with the same result.
"""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["can_fork", "cores", "share", "write_blocks"]

T = TypeVar("T")


def can_fork() -> bool:
    """Whether this process may fork workers (``os.fork`` exists, no other thread runs)."""
    return hasattr(os, "fork") and threading.active_count() == 1


def cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def share(work: Callable[[int], T], n_tasks: int, n_proc: int) -> list[T]:
    """``[work(0), ..., work(n_tasks - 1)]``, task ``i`` computed by process ``i % n_proc``:
    this process takes the tasks of 0 and ``n_proc - 1`` forked ones the others, their
    results pickled back through pipes once they are done. An exception in a forked process
    is raised here; a forked process that ends without sending its results (killed, out of
    memory) raises :class:`ChildProcessError`. The caller checks :func:`can_fork`."""
    n_proc = min(n_proc, n_tasks)  # no process without a task
    if n_proc <= 1:
        return [work(i) for i in range(n_tasks)]
    children: list[tuple[int, int]] = []
    done = False
    try:
        for rank in range(1, n_proc):
            pid, read_fd, write_fd = _fork_with_pipe()
            if pid == 0:  # a forked process: its tasks, then its results into the pipe, then out
                status = 1
                try:
                    os.close(read_fd)
                    for _, fd in children:
                        os.close(fd)
                    try:
                        message = (True, [work(i) for i in range(rank, n_tasks, n_proc)])
                    except Exception as exc:  # noqa: BLE001 - handed to the caller, raised there
                        message = (False, exc)
                    _send(write_fd, pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
                    status = 0
                finally:
                    os._exit(status)
            os.close(write_fd)
            children.append((pid, read_fd))
        out: list[T] = [None] * n_tasks  # type: ignore[list-item]
        for i in range(0, n_tasks, n_proc):
            out[i] = work(i)
        for rank, (_, fd) in enumerate(children, start=1):
            data = _receive(fd)
            if data is None:
                raise ChildProcessError("a forked process ended before sending its results")
            ok, payload = pickle.loads(data)
            if not ok:
                raise payload
            for i, result in zip(range(rank, n_tasks, n_proc), payload, strict=True):
                out[i] = result
        done = True
    finally:
        for pid, fd in children:
            os.close(fd)
            _reap(pid, kill=not done)
    return out


def write_blocks(n_blocks: int, make: Callable[[int], str], write: Callable[[str], None]) -> None:
    """``write(make(0)); write(make(1)); ...`` for ``n_blocks`` blocks of text, in order.

    With two or more cores and more than one block, a forked process makes the odd blocks
    while this one makes the even ones and writes them all in order; the text is the same
    either way, and memory holds about two blocks. A forked process that cannot start or
    that ends early leaves its blocks to this process.
    """
    pid = None
    if n_blocks >= 2 and cores() >= 2 and can_fork():
        try:
            pid, read_fd, write_fd = _fork_with_pipe()
        except OSError:  # no process to be had: all blocks here
            pid = None
    if pid is None:
        for i in range(n_blocks):
            write(make(i))
        return
    if pid == 0:  # the forked process: the odd blocks into the pipe, then out
        status = 1
        try:
            os.close(read_fd)
            for i in range(1, n_blocks, 2):
                _send(write_fd, make(i).encode("utf-8"))
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    alive, finished = True, False
    try:
        for i in range(n_blocks):
            data = None
            if i % 2 and alive:
                data = _receive(read_fd)
                alive = data is not None
            write(make(i) if data is None else data.decode("utf-8"))
        finished = True
    finally:
        os.close(read_fd)
        _reap(pid, kill=not (finished and alive))  # done: it has exited, or is about to


def _fork_with_pipe() -> tuple[int, int, int]:
    """``os.fork()`` with a pipe from the forked process to this one: (pid, read end, write
    end); the pipe is closed again if the fork fails (OSError)."""
    read_fd, write_fd = os.pipe()
    try:
        return os.fork(), read_fd, write_fd
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        raise


def _send(fd: int, data: bytes) -> None:
    """``data`` into the pipe, prefixed by its length."""
    view = memoryview(len(data).to_bytes(8, "little") + data)
    while view:
        view = view[os.write(fd, view) :]


def _receive(fd: int) -> bytes | None:
    """One message of :func:`_send`; None at the pipe's end (the sender ended early)."""
    head = _read_exactly(fd, 8)
    return None if head is None else _read_exactly(fd, int.from_bytes(head, "little"))


def _read_exactly(fd: int, n: int) -> bytes | None:
    parts, left = [], n
    while left:
        part = os.read(fd, min(left, 1 << 20))
        if not part:
            return None
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _reap(pid: int, kill: bool = False) -> None:
    import signal

    if kill:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.waitpid(pid, 0)
