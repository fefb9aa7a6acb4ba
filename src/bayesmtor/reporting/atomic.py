"""Atomic writes of single files, and write errors as one line naming the file.

A file is written to a temporary name in its folder, flushed to disk and renamed over the
target, so a reader sees the old file or the new one, never half of it. A failed write (full
disk, exceeded quota, read-only filesystem, refused permission, a netCDF library's HDF error)
becomes one :class:`~bayesmtor.errors.OutputError`: ``cannot write 'path': reason``.
:mod:`bayesmtor.reporting.outputs` builds whole output folders on top of these.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bayesmtor.errors import OutputError

__all__ = [
    "WRITE_ERRNOS",
    "atomic_write_bytes",
    "atomic_write_text",
    "failure",
    "fsync_dir",
    "signals_held",
    "writing",
]

#: Write errors that carry no file name but are certainly about the output being written.
WRITE_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENOSPC", "EDQUOT", "EROFS", "EFBIG", "EIO")
    if hasattr(errno, name)
)


def fsync_dir(folder: Path) -> None:
    """Ask the operating system to write a folder's entries to disk (best effort, POSIX)."""
    if os.name != "posix":  # pragma: no cover
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold back SIGINT and SIGTERM for the duration of the block, then deliver them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
        if sig is None:  # pragma: no cover
            continue
        handler = signal.getsignal(sig)
        if handler in (signal.SIG_IGN, None):
            continue
        previous[sig] = handler
        signal.signal(sig, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(caught):
            signal.raise_signal(sig)


def failure(path: Path | str, exc: BaseException) -> str:
    """``cannot write 'path': reason``, with a hint when the disk is (nearly) full."""
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    message = f"cannot write '{path}': {reason}"
    if getattr(exc, "errno", None) in WRITE_ERRNOS:
        return message
    folder = Path(path).parent
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(folder).free
        if free < 1 << 20:
            message += f" (only {free} bytes free on that disk)"
    return message


@contextlib.contextmanager
def writing(path: Path) -> Iterator[Path]:
    """Turn a failed write of ``path`` into one :class:`~bayesmtor.errors.OutputError`.

    ``with writing(path): frame.to_csv(path)`` reports a full disk, an exceeded quota, a
    read-only filesystem or a refused permission as ``cannot write 'path': reason``. netCDF
    libraries report such failures as ``RuntimeError("NetCDF: HDF error")``; those are
    converted too.

    Parameters
    ----------
    path : Path
        The file the block writes.

    Yields
    ------
    Path
        ``path``.
    """
    try:
        yield path
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(failure(path, exc)) from exc
    except RuntimeError as exc:
        if not str(exc).startswith(("NetCDF:", "HDF", "Unable to")):
            raise
        raise OutputError(failure(path, exc)) from exc


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then replace).

    The parent folder is created if needed. Readers see either the old file or the new one.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    bayesmtor.errors.OutputError
        The file cannot be written (names the file and the reason).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder of '{path}': {exc.strerror or exc}") from exc
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise OutputError(failure(path, exc)) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(bytes(data))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(failure(path, exc)) from exc
        raise
    return path


def atomic_write_text(path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; newlines are written exactly as given.

    Returns
    -------
    Path
        ``path``.
    """
    return atomic_write_bytes(path, str(text).encode(encoding))
