"""Output folders that are written all-or-nothing and never lose a user's files.

A run either leaves a complete output folder or none at all, and it replaces only a folder that
bayesmtor itself wrote.

* :func:`atomic_output_dir` (the :class:`OutputFolder` context manager) builds everything in a
  hidden sibling folder ``.{name}.partial-{host}-{pid}-{token}`` on the same filesystem and,
  only when the ``with`` block finishes without an exception, moves it into place. On any
  exception, *including* ``KeyboardInterrupt`` (Ctrl-C, and SIGTERM in the command line), the
  partial folder is removed, the previous output is left untouched and the exception
  propagates.
* :func:`bayesmtor.reporting.atomic.atomic_write_bytes` does the same for one file
  (temporary file in the same folder, then :func:`os.replace`).
* :func:`recover_output` repairs what a run killed so hard that it could not clean up
  (``SIGKILL``, power loss) left behind. It runs automatically when a new output folder is
  opened; :func:`clean_stale_partials` is the same, returning the folders it removed.

Which folders may be replaced
-----------------------------
Every committed output folder holds a marker file, ``.bayesmtor-output``: JSON with
``"package": "bayesmtor"``, ``"format": 1``, the version that wrote it, and the size and
SHA-256 of every file it holds. ``force=True`` (``--force``) replaces an existing folder only if

* it holds such a marker, or it is an output of bayesmtor 0.1 (no marker, but a ``run.json``
  with ``bayesmtor_version`` and the list ``files`` of everything it wrote), and
* it holds no file beyond those the marker (or the 0.1 ``run.json``) lists, apart from the
  ``.DS_Store``, ``Thumbs.db`` and ``desktop.ini`` files that file browsers create, no listed
  file was changed since (size and SHA-256; 0.1 outputs record no checksums), it holds no
  symbolic link and no mount point, and everything in it can be deleted.

An empty folder is filled without ``force``. Anything else is refused with
:class:`~bayesmtor.errors.OutputError` before anything is written, and so are, whatever they
hold: an empty name (``--out ""``), the root folder, the home folder, the current folder, any
folder that contains the current folder, the home folder, or one of the ``protect`` paths
(the command line protects the plan file being run).

A symbolic link as the output path is followed: the folder it points to is the output folder,
the same rules apply to that folder, and the new output is moved into place *there*, so the link
is kept and points to the new output. The link itself is never replaced by a folder or removed.
A link that points nowhere is refused.

Crash safety
------------
Replacing a folder takes these steps: write the marker into the partial folder (the partial
folder is complete from then on), rename the old folder to a hidden ``.{name}.trash-…`` sibling,
rename the partial folder into place, rename the trash folder to ``.{name}.junk-…`` and delete
it. Filling a missing or empty folder is a single rename. After a kill at any instant, the next
run (:func:`recover_output`) restores the state before or after the swap, never neither:

1. ``junk`` folders of dead runs are deleted (they are garbage by name);
2. if the target is missing (or an empty folder), a ``trash`` folder of a dead run is renamed
   back (the previous output is restored); if there is none, a *complete* ``partial`` folder
   (marker present and every file it lists intact) is renamed into place;
3. remaining ``trash`` folders of dead runs are deleted only once the target is again a
   bayesmtor output; otherwise they are kept and reported;
4. remaining ``partial`` folders of dead runs are deleted.

Folders are renamed to ``junk`` before they are deleted, so that a half-deleted folder can never
be mistaken for a complete one. Folders of the current process and of other live runs are never
touched: a work folder is a dead run's when it was made on this host by a process that is no
longer running (its pid is part of its name). Ctrl-C and SIGTERM are held back during the swap
itself and take effect right after it. If the old folder cannot be deleted after the swap, the
new output stays in place and :class:`~bayesmtor.errors.OutputError` names what is left.

Write errors (disk full, quota exceeded, read-only filesystem, permission denied) become one
:class:`~bayesmtor.errors.OutputError` naming the file; the partial folder is removed and the
previous output is unchanged. Files written by the single-file helpers are fsync-ed; the folder
swap protects against interrupted processes, not against a power loss before the operating
system has written its caches.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import stat
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from bayesmtor import __version__
from bayesmtor.errors import OutputError
from bayesmtor.reporting.atomic import (
    WRITE_ERRNOS,
    atomic_write_text,
    failure,
    fsync_dir,
    signals_held,
)

__all__ = [
    "MARKER_FORMAT",
    "MARKER_NAME",
    "OutputFolder",
    "Recovery",
    "atomic_output_dir",
    "clean_stale_partials",
    "is_bayesmtor_output",
    "partial_name_pattern",
    "recover_output",
]

#: Name of the marker file every committed output folder holds.
MARKER_NAME = ".bayesmtor-output"

#: Version of the marker's JSON layout; a marker with a larger number is not replaced.
MARKER_FORMAT = 1

_PACKAGE = "bayesmtor"

#: Files that file browsers drop into folders they show; they do not count as a user's files.
_CLUTTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})

#: At most this many paths are named in one message.
_MAX_NAMED = 3

_KINDS = ("partial", "trash", "junk")


def _host_tag() -> str:
    """Six hex characters identifying this machine (pids are only meaningful per host)."""
    return hashlib.sha1(socket.gethostname().encode("utf-8")).hexdigest()[:6]


def _sibling_name(target: Path, kind: str) -> str:
    return f".{target.name}.{kind}-{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}"


def partial_name_pattern(target: Path) -> re.Pattern[str]:
    """Regular expression matching the hidden work folders of ``target``.

    Groups: ``kind`` (``partial``, ``trash`` or ``junk``), ``host``, ``pid`` and ``token``.
    """
    return re.compile(
        rf"^\.{re.escape(Path(target).name)}\."
        r"(?P<kind>partial|trash|junk)-(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-(?P<token>[0-9a-f]{8})$"
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
    except OSError:  # PermissionError: exists, owned by someone else
        return True
    return True


# --------------------------------------------------------------------------------------------
# paths
# --------------------------------------------------------------------------------------------


def _requested(target: str | os.PathLike[str]) -> Path:
    """The output path as given, made absolute (not resolved); refuses an empty name."""
    if isinstance(target, str) and not target.strip():
        raise OutputError(
            "the output folder name is empty; give the name of a new folder, "
            "e.g. --out bayesmtor-output"
        )
    return Path(target).absolute()


def _real(path: Path) -> Path:
    """``path`` with every symbolic link resolved (it need not exist)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symbolic link loop
        raise OutputError(f"output path '{path}' cannot be resolved: {exc}") from exc


def _protection_problem(real: Path, protect: Sequence[Path]) -> str | None:
    """Why ``real`` must never be an output folder, or ``None``."""
    if real.parent == real:
        return "is the root folder"
    with contextlib.suppress(OSError):
        cwd = Path.cwd().resolve()
        if real == cwd:
            return "is the current folder"
        if cwd.is_relative_to(real):
            return f"contains the current folder '{cwd}'"
    with contextlib.suppress(RuntimeError, KeyError, OSError):  # no home folder known
        home = Path.home().resolve()
        if real == home:
            return "is the home folder"
        if home.is_relative_to(real):
            return f"contains the home folder '{home}'"
    for item in protect:
        with contextlib.suppress(OSError, RuntimeError):
            path = Path(item).absolute().resolve()
            if path.is_relative_to(real):
                return f"contains '{item}', which this run reads"
    return None


def _listing(paths: Sequence[str]) -> str:
    named = ", ".join(f"'{p}'" for p in paths[:_MAX_NAMED])
    more = len(paths) - _MAX_NAMED
    return named + (f" and {more} more" if more > 0 else "")


# --------------------------------------------------------------------------------------------
# the marker: what bayesmtor wrote
# --------------------------------------------------------------------------------------------


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def _entries(folder: Path) -> Iterator[tuple[str, Path, os.stat_result]]:
    """``(relative POSIX path, path, lstat)`` of everything below ``folder``; links not followed."""

    def fail(exc: OSError) -> None:
        raise exc

    for root, dirs, files in os.walk(folder, onerror=fail, followlinks=False):
        base = Path(root)
        for name in sorted(dirs) + sorted(files):
            path = base / name
            yield path.relative_to(folder).as_posix(), path, path.lstat()


def _manifest(work: Path) -> dict[str, Any]:
    files = {}
    for rel, path, st in _entries(work):
        if stat.S_ISREG(st.st_mode) and rel != MARKER_NAME:
            files[rel] = {"size": st.st_size, "sha256": _digest(path)}
    return {
        "package": _PACKAGE,
        "format": MARKER_FORMAT,
        "bayesmtor_version": __version__,
        "written": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "files": files,
    }


@dataclass(frozen=True)
class _Record:
    """What a folder says bayesmtor wrote into it."""

    source: str  # MARKER_NAME or "run.json" (an output of bayesmtor 0.1)
    files: Mapping[str, Mapping[str, Any] | None]  # path -> size and sha256 (None: unknown)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _marker_files(data: Any) -> dict[str, dict[str, Any]] | None:
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return None
    for value in files.values():
        ok = isinstance(value, dict) and isinstance(value.get("size"), int)
        if not ok or not isinstance(value.get("sha256"), str):
            return None
    return files


def _read_record(folder: Path) -> tuple[_Record | None, str]:
    """The record of what bayesmtor wrote into ``folder``, or ``None`` and why there is none."""
    marker = folder / MARKER_NAME
    if marker.is_symlink() or marker.exists():
        data = _read_json(marker) if marker.is_file() and not marker.is_symlink() else None
        if not isinstance(data, dict) or data.get("package") != _PACKAGE:
            return None, f"its {MARKER_NAME} file is not a bayesmtor marker"
        fmt = data.get("format")
        if isinstance(fmt, int) and fmt > MARKER_FORMAT:
            return None, (
                f"it was written by a newer bayesmtor (marker format {fmt}; this version "
                f"reads format {MARKER_FORMAT})"
            )
        files = _marker_files(data)
        if fmt != MARKER_FORMAT or files is None:
            return None, f"its {MARKER_NAME} file is damaged"
        return _Record(MARKER_NAME, files), ""
    run_json = folder / "run.json"
    data = _read_json(run_json) if run_json.is_file() and not run_json.is_symlink() else None
    if (
        isinstance(data, dict)
        and isinstance(data.get("bayesmtor_version"), str)
        and "plan" in data
        and isinstance(data.get("files"), list)
        and all(isinstance(f, str) for f in data["files"])
    ):
        return _Record("run.json", dict.fromkeys(data["files"])), ""
    return None, f"it holds no {MARKER_NAME} marker, so bayesmtor did not write it"


def is_bayesmtor_output(folder: Path) -> bool:
    """Whether ``folder`` says it is an output folder of bayesmtor (marker or 0.1 ``run.json``).

    This only reads the record; :class:`OutputFolder` also checks, before it replaces a folder,
    that nothing was added or changed since.

    Parameters
    ----------
    folder : Path
        The folder to look at.

    Returns
    -------
    bool
    """
    folder = Path(folder)
    return folder.is_dir() and _read_record(folder)[0] is not None


def _replace_problem(folder: Path) -> tuple[str, str] | None:
    """Why ``folder`` (an existing, non-empty folder) must not be replaced, and what to do."""
    record, why = _read_record(folder)
    if record is None:
        return why, "choose a new folder, or empty or delete this one yourself"
    extra: list[str] = []
    changed: list[str] = []
    links: list[str] = []
    mounts: list[str] = []
    locked: list[str] = []
    try:
        device = folder.lstat().st_dev
        for path in (folder.parent, folder):
            if not os.access(path, os.W_OK | os.X_OK):
                locked.append(str(path))
        for rel, path, st in _entries(folder):
            if stat.S_ISLNK(st.st_mode):
                links.append(rel)
            elif st.st_dev != device:
                mounts.append(rel)
            elif stat.S_ISDIR(st.st_mode):
                if not os.access(path, os.W_OK | os.X_OK):
                    locked.append(rel)
            elif rel == MARKER_NAME or path.name in _CLUTTER:
                continue
            elif not stat.S_ISREG(st.st_mode) or rel not in record.files:
                extra.append(rel)
            else:
                expected = record.files[rel]
                if expected is not None and (
                    st.st_size != expected["size"] or _digest(path) != expected["sha256"]
                ):
                    changed.append(rel)
    except OSError as exc:
        why = f"it cannot be read completely ({exc.strerror or exc}: '{exc.filename}')"
        return why, "check its permissions, or choose a new folder"
    move = "move them elsewhere, or choose a new folder"
    if extra:
        return f"it holds files bayesmtor did not write ({_listing(extra)})", move
    if changed:
        return f"files in it were changed after bayesmtor wrote them ({_listing(changed)})", move
    if links:
        return f"it holds symbolic links bayesmtor did not write ({_listing(links)})", move
    if mounts:
        why = f"another filesystem is mounted inside it ({_listing(mounts)})"
        return why, "unmount it, or choose a new folder"
    if locked:
        why = f"it cannot be deleted: no write permission on {_listing(locked)}"
        return why, "fix the permissions, or choose a new folder"
    return None


# --------------------------------------------------------------------------------------------
# deleting, signals, write errors
# --------------------------------------------------------------------------------------------


def _delete_tree(path: Path) -> list[str]:
    """Delete a file or folder; return what could not be deleted (``'relative path' (reason)``).

    A folder that is left only because something inside it could not be deleted is not
    listed on its own.
    """
    errors: list[str] = []

    def collect(_func: Any, name: str, exc: Any) -> None:
        exc = exc[1] if isinstance(exc, tuple) else exc
        if getattr(exc, "errno", None) == errno.ENOTEMPTY and errors:
            return
        rel = os.path.relpath(name, path) if name != str(path) else path.name
        errors.append(f"'{rel}' ({getattr(exc, 'strerror', None) or exc})")

    if path.is_dir() and not path.is_symlink():
        if sys.version_info >= (3, 12):  # pragma: no cover - depends on the interpreter
            shutil.rmtree(path, onexc=collect)
        else:
            shutil.rmtree(path, onerror=collect)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            errors.append(f"'{path.name}' ({exc.strerror or exc})")
    return errors


def _discard(path: Path, target: Path) -> tuple[Path, list[str]]:
    """Rename ``path`` to a ``junk`` sibling of ``target``, then delete it.

    Returns the junk path and what could not be deleted.
    """
    junk = target.parent / _sibling_name(target, "junk")
    try:
        os.rename(path, junk)
    except OSError:
        junk = path  # delete in place
    return junk, _delete_tree(junk)


# --------------------------------------------------------------------------------------------
# recovery after a kill
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recovery:
    """What :func:`recover_output` did next to one output folder.

    Attributes
    ----------
    restored : Path or None
        The hidden folder moved into place as the output folder.
    restored_kind : str or None
        ``"previous"`` (the old output a killed replacement had moved aside) or ``"completed"``
        (a new output that was complete when its run was killed).
    removed : tuple of Path
        Hidden folders of dead runs that were deleted.
    kept : tuple of Path
        Hidden folders holding a previous output that were left alone because the output path
        is now taken by something else; move them back by hand.
    """

    restored: Path | None = None
    restored_kind: str | None = None
    removed: tuple[Path, ...] = ()
    kept: tuple[Path, ...] = ()

    def messages(self, target: Path) -> list[str]:
        """One line for each thing worth telling the user."""
        lines = []
        if self.restored is not None:
            what = (
                "the previous output, which an interrupted run had moved aside"
                if self.restored_kind == "previous"
                else "the complete output of an interrupted run"
            )
            lines.append(f"restored {what}, into '{target}'")
        lines += [
            f"kept '{p}': it holds a previous output, and '{target}' now holds other files; "
            "move it back by hand if you need it"
            for p in self.kept
        ]
        return lines


def _complete(folder: Path) -> bool:
    """Whether a partial folder was finished: its marker lists files that are all intact."""
    record, _ = _read_record(folder)
    if record is None or record.source != MARKER_NAME:
        return False
    try:
        for rel, expected in record.files.items():
            path = folder / rel
            if path.is_symlink() or not path.is_file() or expected is None:
                return False
            if path.stat().st_size != expected["size"] or _digest(path) != expected["sha256"]:
                return False
    except OSError:
        return False
    return True


def _vacant(target: Path) -> bool:
    """Whether ``target`` is missing or an empty folder (so that a rename may fill it)."""
    if target.is_symlink():
        return False
    if not target.exists():
        return True
    try:
        return target.is_dir() and not any(target.iterdir())
    except OSError:
        return False


def _newest_first(paths: list[Path]) -> list[Path]:
    def changed(path: Path) -> int:
        try:
            return path.lstat().st_ctime_ns
        except OSError:
            return 0

    return sorted(paths, key=changed, reverse=True)


def recover_output(target: Path, *, max_age_seconds: float | None = None) -> Recovery:
    """Repair what killed runs left next to ``target``; see *Crash safety* in the module notes.

    A hidden ``.{name}.partial-…``, ``.trash-…`` or ``.junk-…`` sibling belongs to a *dead*
    run when

    * it was made on this host by a process that is no longer running (a killed child must
      have been reaped, as a zombie still counts as running), or
    * ``max_age_seconds`` is given and it was last modified longer ago than that (for folders
      made on another host sharing the filesystem, or on platforms where process liveness
      cannot be checked).

    Folders of the current process and of other live runs are never touched.

    Parameters
    ----------
    target : Path
        The output folder. It need not exist; a symbolic link is followed.
    max_age_seconds : float, optional
        Also treat work folders older than this many seconds as dead, whoever made them.

    Returns
    -------
    Recovery
    """
    target = _real(Path(target).absolute())
    parent = target.parent
    if not parent.is_dir():
        return Recovery()
    pattern = partial_name_pattern(target)
    me, host, now = os.getpid(), _host_tag(), time.time()
    dead: dict[str, list[Path]] = {kind: [] for kind in _KINDS}
    for entry in parent.iterdir():
        match = pattern.match(entry.name)
        if match is None or int(match["pid"]) == me:
            continue
        stale = match["host"] == host and not _pid_alive(int(match["pid"]))
        if not stale and max_age_seconds is not None:
            with contextlib.suppress(OSError):
                stale = (now - entry.lstat().st_mtime) > max_age_seconds
        if stale:
            dead[match["kind"]].append(entry)

    removed: list[Path] = []
    kept: list[Path] = []
    restored: Path | None = None
    kind: str | None = None
    with signals_held():
        for junk in dead["junk"]:
            _delete_tree(junk)
            removed.append(junk)
        trash, partials = _newest_first(dead["trash"]), _newest_first(dead["partial"])
        if _vacant(target):
            candidates = [("previous", t) for t in trash]
            candidates += [("completed", p) for p in partials if _complete(p)]
            for what, folder in candidates:
                try:
                    if target.is_dir() and os.name != "posix":  # pragma: no cover - Windows
                        target.rmdir()
                    os.rename(folder, target)  # POSIX: replaces an empty folder atomically
                except OSError:
                    continue
                restored, kind = folder, what
                (trash if what == "previous" else partials).remove(folder)
                fsync_dir(parent)
                break
        replaceable = target.is_dir() and _read_record(target)[0] is not None
        for folder in trash:
            if replaceable:
                _discard(folder, target)
                removed.append(folder)
            else:
                kept.append(folder)
        for folder in partials:
            _discard(folder, target)
            removed.append(folder)
    return Recovery(restored, kind, tuple(removed), tuple(kept))


def clean_stale_partials(target: Path, *, max_age_seconds: float | None = None) -> list[Path]:
    """Run :func:`recover_output` and return the hidden folders it deleted.

    Parameters
    ----------
    target : Path
        The output folder whose siblings are examined. It need not exist.
    max_age_seconds : float, optional
        Also treat work folders older than this many seconds as dead, whoever made them.

    Returns
    -------
    list of Path
        The folders removed.
    """
    return list(recover_output(target, max_age_seconds=max_age_seconds).removed)


# --------------------------------------------------------------------------------------------
# the output folder
# --------------------------------------------------------------------------------------------


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
    write every file below it. See the module notes for which folders may be replaced and for
    the guarantees.

    Parameters
    ----------
    target : str or Path
        Final output folder. A symbolic link is followed (the link is kept).
    force : bool, default False
        Replace ``target`` if it exists, is not empty, and is an unchanged output of bayesmtor.
        Without it, a non-empty ``target`` raises :class:`~bayesmtor.errors.OutputError`
        before anything is written.
    protect : sequence of Path, default ()
        Paths the output folder must not contain (e.g. the plan file being run).

    Attributes
    ----------
    target : Path
        Absolute path of the final folder, symbolic links resolved.
    requested : Path
        The path as given, made absolute.
    work : Path or None
        The temporary folder while the block runs, ``None`` before and after.
    committed : bool
        ``True`` once the new folder is in place.
    recovery : Recovery
        What the repair of earlier, killed runs did when the folder was opened.
    """

    def __init__(
        self,
        target: str | os.PathLike[str],
        *,
        force: bool = False,
        protect: Sequence[Path] = (),
    ) -> None:
        self.requested = _requested(target)
        self.target = _real(self.requested)
        self.force = bool(force)
        self.protect = tuple(Path(p) for p in protect)
        self.work: Path | None = None
        self.committed = False
        self.recovery = Recovery()

    def __repr__(self) -> str:
        state = "committed" if self.committed else ("open" if self.work else "idle")
        return f"OutputFolder(target='{self.target}', force={self.force}, state={state})"

    @property
    def _shown(self) -> str:
        """The folder as named in messages: ``'path'``, or ``'link' (-> 'real path')``."""
        if self.requested != self.target:
            return f"'{self.requested}' (-> '{self.target}')"
        return f"'{self.target}'"

    # -- checks ---------------------------------------------------------------------------
    def _check_path(self) -> None:
        problem = _protection_problem(self.target, self.protect)
        if problem is not None:
            raise OutputError(
                f"output folder {self._shown} {problem}; bayesmtor writes a run into a folder "
                "of its own and will not replace this one: choose a new folder name, e.g. "
                "--out results"
            )

    def _check_target(self) -> None:
        target = self.target
        if self.requested.is_symlink() and not target.exists():
            raise OutputError(
                f"output path '{self.requested}' is a symbolic link to '{target}', which does "
                "not exist; remove the link or create the folder it points to"
            )
        if target.exists() and not target.is_dir():
            raise OutputError(
                f"output path {self._shown} exists and is a file, not a folder; "
                "choose a folder name for the output"
            )
        if not target.is_dir() or not any(target.iterdir()):
            return
        if not self.force:
            if _read_record(target)[0] is not None:
                raise OutputError(
                    f"output folder {self._shown} holds a previous bayesmtor output; pass "
                    "--force (force=True) to replace it, or choose a new folder"
                )
            raise OutputError(
                f"output folder {self._shown} already exists and holds files bayesmtor did "
                "not write; choose a new folder (--force replaces only a folder bayesmtor wrote)"
            )
        problem = _replace_problem(target)
        if problem is not None:
            why, remedy = problem
            raise OutputError(
                f"output folder {self._shown} is not replaced although --force (force=True) "
                f"was given: {why}; {remedy}"
            )

    def check(self) -> Recovery:
        """Repair what earlier, killed runs left (as opening the folder does) and raise the
        :class:`~bayesmtor.errors.OutputError` that opening it would raise for a protected,
        file or occupied target, without writing the new output; lets a long run be refused
        before it starts. Returns what the repair did."""
        self._check_path()
        self.recovery = recover_output(self.target)
        self._check_target()
        return self.recovery

    # -- protocol -------------------------------------------------------------------------
    def __enter__(self) -> Path:
        if self.work is not None:
            raise OutputError(f"output folder '{self.target}' is already being written")
        self._check_path()
        self.recovery = recover_output(self.target)
        self._check_target()
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.work = _make_sibling_dir(self.target, "partial")
        except OSError as exc:
            raise OutputError(
                f"cannot write in '{self.target.parent}': {exc.strerror or exc}; "
                "check that the folder exists and is writable"
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
        if exc is not None:
            _discard(work, self.target)
            converted = self._as_output_error(exc, work)
            if converted is not None:
                raise converted from exc
            return False  # re-raise, KeyboardInterrupt included
        try:
            self._commit(work)
        except BaseException as failure:
            if not self.committed:
                _discard(work, self.target)
            converted = self._as_output_error(failure, work)
            if converted is not None:
                raise converted from failure
            raise
        return False

    def _as_output_error(self, exc: BaseException, work: Path) -> OutputError | None:
        """A write error raised while the work folder was filled, as one-line OutputError."""
        if not isinstance(exc, OSError):
            return None
        inside = str(work)
        if isinstance(exc, OutputError):
            text = str(exc)
            return OutputError(text.replace(inside, str(self.target))) if inside in text else None
        name = exc.filename
        if name is not None and str(name).startswith(inside):
            return OutputError(failure(str(name).replace(inside, str(self.target), 1), exc))
        if name is None and exc.errno in WRITE_ERRNOS:
            return OutputError(failure(self.target, exc))
        return None

    def _commit(self, work: Path) -> None:
        target = self.target
        atomic_write_text(work / MARKER_NAME, json.dumps(_manifest(work), indent=1) + "\n")
        with signals_held():
            # Re-check: another process or the user may have changed the target meanwhile.
            self._check_path()
            self._check_target()
            if target.is_dir() and any(target.iterdir()):
                self._replace(work)
            else:
                self._move_into_place(work)

    def _move_into_place(self, work: Path) -> None:
        """A missing target, or an empty folder, is replaced in one rename (POSIX)."""
        target = self.target
        try:
            if target.is_dir() and os.name != "posix":  # pragma: no cover - Windows
                target.rmdir()
            os.rename(work, target)
        except OSError as exc:
            raise OutputError(
                f"cannot move the new output into '{target}': {exc.strerror or exc}"
            ) from exc
        self.committed = True
        fsync_dir(target.parent)

    def _replace(self, work: Path) -> None:
        """Old output aside to ``trash``, new output into place, then delete the old one."""
        target = self.target
        trash = target.parent / _sibling_name(target, "trash")
        try:
            os.rename(target, trash)
        except OSError as exc:
            raise OutputError(
                f"cannot replace '{target}' (is a file in it open elsewhere?): "
                f"{exc.strerror or exc}"
            ) from exc
        try:
            os.rename(work, target)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.rename(trash, target)  # put the old output back
            if isinstance(exc, OSError):
                raise OutputError(
                    f"cannot move the new output into '{target}': {exc.strerror or exc}"
                ) from exc
            raise
        self.committed = True
        fsync_dir(target.parent)
        junk, errors = _discard(trash, target)
        if errors:
            raise OutputError(
                f"the new output is in '{target}', but the previous one could not be deleted "
                f"completely: {', '.join(errors[:_MAX_NAMED])}; delete '{junk}' by hand"
            )


def atomic_output_dir(
    target: str | os.PathLike[str], *, force: bool = False, protect: Sequence[Path] = ()
) -> OutputFolder:
    """Open ``target`` for atomic writing; use as ``with atomic_output_dir(out) as work:``.

    Parameters
    ----------
    target : str or Path
        Final output folder.
    force : bool, default False
        Replace an existing non-empty ``target`` that is an unchanged output of bayesmtor.
    protect : sequence of Path, default ()
        Paths the output folder must not contain (e.g. the plan file being run).

    Returns
    -------
    OutputFolder
        Context manager whose ``__enter__`` returns the temporary folder to write into.

    Raises
    ------
    bayesmtor.errors.OutputError
        If ``target`` is empty, protected, a file, not empty (without ``force``), not a
        bayesmtor output (with ``force``), or cannot be written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "run1"
    >>> with atomic_output_dir(out) as work:
    ...     _ = (work / "table.csv").write_text("a,b\\n1,2\\n")
    >>> sorted(p.name for p in out.iterdir())
    ['.bayesmtor-output', 'table.csv']
    """
    return OutputFolder(target, force=force, protect=protect)
