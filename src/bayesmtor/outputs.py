"""Atomic output folders and files.

A run either leaves a complete output folder or none at all: nothing half-written.

* :func:`atomic_output_dir` (the :class:`OutputFolder` context manager) builds everything in a
  hidden sibling folder ``.{name}.partial-{host}-{pid}-{token}`` on the same filesystem and,
  only when the ``with`` block finishes without an exception, renames it into place. On any
  exception, *including* ``KeyboardInterrupt``, the partial folder is removed, the previous
  target is left untouched and the exception propagates.
* :func:`atomic_write_bytes` / :func:`atomic_write_text` do the same for one file (temporary
  file in the same folder, then :func:`os.replace`).
* :func:`clean_stale_partials` removes leftovers of runs that were killed so hard that they
  could not clean up (``SIGKILL``, power loss). It is called automatically when a new output
  folder is opened.

Guarantees and limits
---------------------
The swap uses :func:`os.rename`, which is atomic on POSIX filesystems. Replacing an existing,
non-empty folder (``force=True``) takes two renames (old folder to a hidden ``.trash-``
sibling, new folder into place) followed by deleting the old folder, so a reader may see the
target *absent* for an instant but never half-written. Files are flushed and fsync-ed by the
single-file helpers; the folder swap protects against interrupted processes, not against a
power loss before the operating system has written its caches.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import socket
import time
from pathlib import Path
from types import TracebackType

from bayesmtor.errors import OutputError

__all__ = [
    "OutputFolder",
    "atomic_output_dir",
    "atomic_write_bytes",
    "atomic_write_text",
    "clean_stale_partials",
    "partial_name_pattern",
]

_KINDS = ("partial", "trash")


def _host_tag() -> str:
    """Six hex characters identifying this machine (pids are only meaningful per host)."""
    return hashlib.sha1(socket.gethostname().encode("utf-8")).hexdigest()[:6]


def _sibling_name(target: Path, kind: str) -> str:
    return f".{target.name}.{kind}-{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}"


def partial_name_pattern(target: Path) -> re.Pattern[str]:
    """Regular expression matching the hidden work folders of ``target``.

    Groups: ``kind`` (``partial`` or ``trash``), ``host``, ``pid`` and ``token``.
    """
    return re.compile(
        rf"^\.{re.escape(Path(target).name)}\."
        r"(?P<kind>partial|trash)-(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-(?P<token>[0-9a-f]{8})$"
    )


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (conservatively ``True`` off POSIX)."""
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True
    return True


def _remove_tree(path: Path) -> None:
    """Delete a file or folder, ignoring errors (best effort cleanup)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def clean_stale_partials(target: Path, *, max_age_seconds: float | None = None) -> list[Path]:
    """Remove hidden work folders left next to ``target`` by runs that died.

    A sibling ``.{name}.partial-…`` or ``.{name}.trash-…`` folder is *stale* when

    * it was made on this host by a process that is no longer running (the pid is part of the
      name; a killed child must have been reaped, as a zombie still counts as running), or
    * ``max_age_seconds`` is given and the folder was last modified longer ago than that
      (for folders made on another host sharing the filesystem, or on platforms where process
      liveness cannot be checked).

    Folders of the current process and of other live runs are never touched, so two runs
    writing next to each other do not disturb one another.

    Parameters
    ----------
    target : Path
        The output folder whose siblings are examined. It need not exist.
    max_age_seconds : float, optional
        Also remove work folders older than this many seconds, whoever made them.

    Returns
    -------
    list of Path
        The folders removed.
    """
    target = Path(target).absolute()
    parent = target.parent
    if not parent.is_dir():
        return []
    pattern = partial_name_pattern(target)
    me, host, now = os.getpid(), _host_tag(), time.time()
    removed: list[Path] = []
    for entry in parent.iterdir():
        match = pattern.match(entry.name)
        if match is None:
            continue
        pid = int(match["pid"])
        stale = False
        if match["host"] == host and pid != me and not _pid_alive(pid):
            stale = True
        if max_age_seconds is not None and pid != me:
            with contextlib.suppress(OSError):
                stale = stale or (now - entry.stat().st_mtime) > max_age_seconds
        if stale:
            _remove_tree(entry)
            removed.append(entry)
    return removed


def _make_sibling_dir(target: Path, kind: str) -> Path:
    """Create a fresh hidden sibling folder (mode from the umask, like a normal mkdir)."""
    for _ in range(100):
        candidate = target.parent / _sibling_name(target, kind)
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise OutputError(f"cannot create a temporary folder next to '{target}'")  # pragma: no cover


class OutputFolder:
    """Context manager that builds an output folder out of sight and swaps it in on success.

    ``with OutputFolder(target, force=...) as work:`` yields the temporary folder ``work``;
    write every file below it. See the module docstring for the guarantees.

    Parameters
    ----------
    target : Path
        Final output folder.
    force : bool, default False
        Replace ``target`` if it exists and is not empty. Without it, a non-empty ``target``
        raises :class:`~bayesmtor.errors.OutputError` before anything is written.

    Attributes
    ----------
    target : Path
        Absolute path of the final folder.
    work : Path or None
        The temporary folder while the block runs, ``None`` before and after.
    committed : bool
        ``True`` once the new folder is in place.
    """

    def __init__(self, target: Path, *, force: bool = False) -> None:
        self.target = Path(target).absolute()
        self.force = bool(force)
        self.work: Path | None = None
        self.committed = False

    def __repr__(self) -> str:
        state = "committed" if self.committed else ("open" if self.work else "idle")
        return f"OutputFolder(target='{self.target}', force={self.force}, state={state})"

    # -- checks ---------------------------------------------------------------------------
    def _check_target(self) -> None:
        target = self.target
        if target.is_symlink() and not target.exists():
            raise OutputError(f"output path '{target}' is a broken symbolic link; remove it")
        if target.exists() and not target.is_dir():
            raise OutputError(
                f"output path '{target}' exists and is a file, not a folder; "
                "choose a folder name for the output"
            )
        if target.is_dir() and not self.force and any(target.iterdir()):
            raise OutputError(
                f"output folder '{target}' already exists and is not empty; choose a new "
                "folder or pass --force (force=True) to replace it"
            )

    # -- protocol -------------------------------------------------------------------------
    def __enter__(self) -> Path:
        if self.work is not None:
            raise OutputError(f"output folder '{self.target}' is already being written")
        self._check_target()
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot create the parent folder of '{self.target}': {exc.strerror or exc}"
            ) from exc
        clean_stale_partials(self.target)
        try:
            self.work = _make_sibling_dir(self.target, "partial")
        except OSError as exc:
            raise OutputError(
                f"cannot write in '{self.target.parent}': {exc.strerror or exc}; "
                "check the folder exists and is writable"
            ) from exc
        return self.work

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        work, self.work = self.work, None
        if work is None:  # pragma: no cover - __enter__ failed
            return False
        if exc_type is not None:
            _remove_tree(work)
            return False  # re-raise, KeyboardInterrupt included
        try:
            self._commit(work)
        except BaseException:
            _remove_tree(work)
            raise
        self.committed = True
        return False

    def _commit(self, work: Path) -> None:
        target = self.target
        # Re-check: another process may have filled the target while we were working.
        self._check_target()
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()  # empty folder: plain rename below
        if not target.exists():
            try:
                os.rename(work, target)
            except OSError as exc:
                raise OutputError(f"cannot move the new output into '{target}': {exc}") from exc
            return
        trash = target.parent / _sibling_name(target, "trash")
        try:
            os.rename(target, trash)
        except OSError as exc:
            raise OutputError(
                f"cannot replace '{target}' (is a file in it open elsewhere?): {exc}"
            ) from exc
        try:
            os.rename(work, target)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.rename(trash, target)  # put the old output back
            if isinstance(exc, OSError):
                raise OutputError(f"cannot move the new output into '{target}': {exc}") from exc
            raise
        _remove_tree(trash)


def atomic_output_dir(target: Path, *, force: bool = False) -> OutputFolder:
    """Open ``target`` for atomic writing; use as ``with atomic_output_dir(out) as work:``.

    Parameters
    ----------
    target : Path
        Final output folder.
    force : bool, default False
        Replace an existing non-empty ``target``.

    Returns
    -------
    OutputFolder
        Context manager whose ``__enter__`` returns the temporary folder to write into.

    Raises
    ------
    bayesmtor.errors.OutputError
        If ``target`` exists and is not empty and ``force`` is false, is a file, or cannot be
        written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "run1"
    >>> with atomic_output_dir(out) as work:
    ...     _ = (work / "table.csv").write_text("a,b\\n1,2\\n")
    >>> sorted(p.name for p in out.iterdir())
    ['table.csv']
    """
    return OutputFolder(target, force=force)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then replace).

    The parent folder is created if needed. Readers see either the old file or the new one.

    Returns
    -------
    Path
        ``path``.
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
        raise OutputError(f"cannot write '{path}': {exc.strerror or exc}") from exc
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
            raise OutputError(f"cannot write '{path}': {exc.strerror or exc}") from exc
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
