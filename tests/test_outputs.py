"""Output folders: all-or-nothing, and never a user's files lost.

Fault injection (kills at every step of the swap, full disks, SIGTERM) is in
``test_output_faults.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bayesmtor import __version__
from bayesmtor.errors import OutputError
from bayesmtor.reporting.atomic import atomic_write_bytes, atomic_write_text
from bayesmtor.reporting.outputs import (
    MARKER_NAME,
    OutputFolder,
    atomic_output_dir,
    clean_stale_partials,
    is_bayesmtor_output,
    partial_name_pattern,
)

# How long the parent waits for the child to reach its "ready" point before giving up.
CHILD_TIMEOUT_S = 30

# SHA-256 of the three bytes b"abc" (FIPS 180-2, appendix B.1).
SHA256_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def _siblings(target: Path) -> list[str]:
    pattern = partial_name_pattern(target)
    return sorted(p.name for p in target.parent.iterdir() if pattern.match(p.name))


def _make_old(target: Path) -> None:
    """A previous output written by bayesmtor: one file and the marker."""
    with atomic_output_dir(target) as work:
        (work / "old.txt").write_text("old run")


def _assert_old_intact(target: Path) -> None:
    assert sorted(p.name for p in target.iterdir()) == [MARKER_NAME, "old.txt"]
    assert (target / "old.txt").read_text() == "old run"


def _user_folder(target: Path) -> None:
    """A folder of the user's own files, which no option may delete."""
    target.mkdir()
    (target / "thesis.tex").write_text("three years of work")


def _assert_user_folder_intact(target: Path) -> None:
    assert sorted(p.name for p in target.iterdir()) == ["thesis.tex"]
    assert (target / "thesis.tex").read_text() == "three years of work"


def _replace(target: Path, **kwargs) -> None:
    with atomic_output_dir(target, force=True, **kwargs) as work:
        (work / "new.txt").write_text("new run")


# --------------------------------------------------------------------------------------------
# writing a folder
# --------------------------------------------------------------------------------------------


def test_success_creates_folder_with_marker_and_leaves_no_work_folder(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "run"
    with atomic_output_dir(target) as work:
        assert work.parent == target.parent
        assert work.name.startswith(".run.partial-")
        assert not target.exists()  # nothing visible until the block ends
        (work / "a.csv").write_text("x\n1\n")
        (work / "figs").mkdir()
        (work / "figs" / "f.png").write_bytes(b"abc")
    assert (target / "a.csv").read_text() == "x\n1\n"
    assert (target / "figs" / "f.png").read_bytes() == b"abc"
    assert sorted(p.name for p in target.iterdir()) == [MARKER_NAME, "a.csv", "figs"]
    assert _siblings(target) == []


def test_marker_records_package_format_and_every_file(tmp_path: Path) -> None:
    target = tmp_path / "run"
    with atomic_output_dir(target) as work:
        (work / "sub").mkdir()
        (work / "sub" / "abc.bin").write_bytes(b"abc")
        (work / "empty.txt").write_bytes(b"")
    marker = json.loads((target / MARKER_NAME).read_text(encoding="utf-8"))
    assert marker["package"] == "bayesmtor" and marker["format"] == 1
    assert marker["bayesmtor_version"] == __version__
    # SHA-256 of the empty string (FIPS 180-4 test vector).
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert marker["files"] == {
        "empty.txt": {"size": 0, "sha256": empty},
        "sub/abc.bin": {"size": 3, "sha256": SHA256_ABC},
    }
    assert is_bayesmtor_output(target)
    assert not is_bayesmtor_output(tmp_path)


def test_existing_empty_folder_is_filled_without_force(tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.mkdir()
    with atomic_output_dir(target) as work:
        (work / "a.txt").write_text("new")
    assert (target / "a.txt").read_text() == "new"
    assert _siblings(target) == []


def test_refuses_previous_output_without_force(tmp_path: Path) -> None:
    target = tmp_path / "run"
    _make_old(target)
    with pytest.raises(OutputError, match="holds a previous bayesmtor output; pass --force"):
        with atomic_output_dir(target):
            pytest.fail("the block must not run")  # pragma: no cover
    _assert_old_intact(target)
    assert _siblings(target) == []


def test_refuses_a_users_folder_without_force_and_does_not_suggest_force(tmp_path: Path) -> None:
    target = tmp_path / "run"
    _user_folder(target)
    with pytest.raises(OutputError) as info:
        with atomic_output_dir(target):
            pass  # pragma: no cover
    assert "holds files bayesmtor did not write; choose a new folder" in str(info.value)
    assert "pass --force" not in str(info.value)
    _assert_user_folder_intact(target)


def test_refuses_a_file_as_target(tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.write_text("i am a file")
    with pytest.raises(OutputError, match="is a file"):
        with atomic_output_dir(target, force=True):
            pass  # pragma: no cover
    assert target.read_text() == "i am a file"


def test_force_replaces_a_previous_output(tmp_path: Path) -> None:
    target = tmp_path / "run"
    _make_old(target)
    folder = OutputFolder(target, force=True)
    with folder as work:
        (work / "new.txt").write_text("new run")
        _assert_old_intact(target)  # old output still visible while the new one is built
    assert folder.committed
    assert sorted(p.name for p in target.iterdir()) == [MARKER_NAME, "new.txt"]
    assert _siblings(target) == []  # trash folder removed


# --------------------------------------------------------------------------------------------
# --force replaces only what bayesmtor wrote
# --------------------------------------------------------------------------------------------


def test_force_refuses_a_folder_without_marker(tmp_path: Path) -> None:
    target = tmp_path / "run"
    _user_folder(target)
    with pytest.raises(OutputError) as info:
        _replace(target)
    message = str(info.value)
    assert "is not replaced although --force" in message
    assert f"holds no {MARKER_NAME} marker, so bayesmtor did not write it" in message
    _assert_user_folder_intact(target)
    assert _siblings(target) == []


def test_force_refuses_an_output_the_user_added_files_to(tmp_path: Path) -> None:
    target = tmp_path / "run"
    _make_old(target)
    (target / "notes").mkdir()
    (target / "notes" / "mine.md").write_text("my notes")
    with pytest.raises(OutputError, match=r"did not write \('notes/mine.md'\); move them"):
        _replace(target)
    assert (target / "notes" / "mine.md").read_text() == "my notes"
    assert (target / "old.txt").read_text() == "old run"


def test_force_refuses_an_output_whose_file_was_edited(tmp_path: Path) -> None:
    target = tmp_path / "run"
    _make_old(target)
    (target / "old.txt").write_text("old RUN")  # same size, other bytes: caught by SHA-256
    with pytest.raises(OutputError, match=r"changed after bayesmtor wrote them \('old.txt'\)"):
        _replace(target)
    assert (target / "old.txt").read_text() == "old RUN"


def test_force_refuses_an_output_holding_a_symbolic_link(tmp_path: Path) -> None:
    target = tmp_path / "run"
    _make_old(target)
    (target / "data").symlink_to(tmp_path)
    with pytest.raises(OutputError, match=r"symbolic links bayesmtor did not write \('data'\)"):
        _replace(target)
    assert (target / "data").is_symlink()


def test_force_ignores_file_browser_clutter_and_files_bayesmtor_removed(tmp_path: Path) -> None:
    target = tmp_path / "run"
    with atomic_output_dir(target) as work:
        (work / "a.txt").write_text("a")
        (work / "b.txt").write_text("b")
    (target / ".DS_Store").write_bytes(b"\x00")
    (target / "b.txt").unlink()  # deleting a file loses nothing
    _replace(target)
    assert sorted(p.name for p in target.iterdir()) == [MARKER_NAME, "new.txt"]


@pytest.mark.parametrize(
    ("marker", "fragment"),
    [
        ('{"package": "bayesmtor", "format": 2, "files": {}}', "written by a newer bayesmtor"),
        ('{"package": "bayesmtor", "format": 1}', "is damaged"),
        ("not json", "is not a bayesmtor marker"),
        ('{"package": "other", "format": 1, "files": {}}', "is not a bayesmtor marker"),
    ],
    ids=["newer", "no-files", "not-json", "other-package"],
)
def test_force_refuses_an_unreadable_marker(tmp_path: Path, marker: str, fragment: str) -> None:
    target = tmp_path / "run"
    target.mkdir()
    (target / MARKER_NAME).write_text(marker)
    (target / "x.txt").write_text("x")
    with pytest.raises(OutputError, match=fragment):
        _replace(target)
    assert (target / "x.txt").read_text() == "x"


def _legacy_output(target: Path, files: list[str]) -> None:
    """An output as bayesmtor 0.1 wrote it: no marker, run.json listing every file."""
    target.mkdir()
    (target / "tables").mkdir()
    (target / "tables" / "pooled_bayes.csv").write_text("analysis_id\n")
    (target / "run.json").write_text(
        json.dumps({"bayesmtor_version": "0.1.0", "plan": "primary", "files": files})
    )


def test_force_replaces_an_output_of_version_0_1(tmp_path: Path) -> None:
    target = tmp_path / "run"
    _legacy_output(target, ["run.json", "tables/pooled_bayes.csv"])
    assert is_bayesmtor_output(target)
    _replace(target)
    assert sorted(p.name for p in target.iterdir()) == [MARKER_NAME, "new.txt"]


def test_force_refuses_an_output_of_version_0_1_with_extra_files(tmp_path: Path) -> None:
    target = tmp_path / "run"
    _legacy_output(target, ["run.json"])  # pooled_bayes.csv is not in its list
    with pytest.raises(OutputError, match=r"did not write \('tables/pooled_bayes.csv'\)"):
        _replace(target)
    assert (target / "tables" / "pooled_bayes.csv").is_file()


def test_force_refuses_a_run_json_that_is_not_bayesmtors(tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.mkdir()
    (target / "run.json").write_text('{"files": ["run.json"]}')  # no bayesmtor_version
    with pytest.raises(OutputError, match="holds no .bayesmtor-output marker"):
        _replace(target)
    assert (target / "run.json").is_file()


def test_refusal_names_at_most_three_files(tmp_path: Path) -> None:
    target = tmp_path / "run"
    _make_old(target)
    for name in ("a", "b", "c", "d", "e"):
        (target / name).write_text(name)
    with pytest.raises(OutputError, match=r"\('a', 'b', 'c' and 2 more\)"):
        _replace(target)


# --------------------------------------------------------------------------------------------
# paths that are never an output folder
# --------------------------------------------------------------------------------------------


def test_empty_name_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("", "  "):
        with pytest.raises(OutputError, match="output folder name is empty"):
            _replace(name)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("where", "fragment"),
    [
        (".", "is the current folder"),
        ("..", "contains the current folder"),
        ("home", "is the home folder"),
        ("above-home", "contains the home folder"),
        ("/", "is the root folder"),
    ],
)
def test_protected_folders_are_refused_even_as_bayesmtor_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, fragment: str
) -> None:
    home = tmp_path / "top" / "home"
    cwd = tmp_path / "work"
    _make_old(home)
    _make_old(cwd)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    target = {"home": home, "above-home": home.parent}.get(where, where)
    with pytest.raises(OutputError, match=fragment) as info:
        _replace(target)
    assert "choose a new folder name" in str(info.value)
    _assert_old_intact(home)
    _assert_old_intact(cwd)


def test_empty_current_folder_is_refused_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError, match="is the current folder"):
        with atomic_output_dir("."):
            pass  # pragma: no cover
    assert tmp_path.is_dir() and list(tmp_path.iterdir()) == []


def test_folder_holding_a_protected_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "run"
    _make_old(target)
    plan = target / "old.txt"  # e.g. the plan file being run lives in the output folder
    with pytest.raises(OutputError, match=r"contains '.*old.txt', which this run reads"):
        _replace(target, protect=[plan])
    _assert_old_intact(target)


# --------------------------------------------------------------------------------------------
# symbolic links
# --------------------------------------------------------------------------------------------


def test_symlink_to_an_output_is_followed_and_kept(tmp_path: Path) -> None:
    real = tmp_path / "disk" / "results"
    real.parent.mkdir()
    _make_old(real)
    link = tmp_path / "results"
    link.symlink_to(real, target_is_directory=True)
    folder = OutputFolder(link, force=True)
    with folder as work:
        assert work.parent == real.parent  # built beside the real folder, same filesystem
        (work / "new.txt").write_text("new run")
    assert link.is_symlink() and link.resolve() == real
    assert folder.target == real
    assert sorted(p.name for p in link.iterdir()) == [MARKER_NAME, "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "results"]
    assert _siblings(real) == []


def test_symlink_to_a_users_folder_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "mine"
    _user_folder(real)
    link = tmp_path / "results"
    link.symlink_to(real, target_is_directory=True)
    with pytest.raises(OutputError, match=r"results' \(-> '.*mine'\) is not replaced"):
        _replace(link)
    assert link.is_symlink()
    _assert_user_folder_intact(real)


def test_symlink_to_the_home_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    link = tmp_path / "results"
    link.symlink_to(home, target_is_directory=True)
    with pytest.raises(OutputError, match="is the home folder"):
        _replace(link)
    assert list(home.iterdir()) == []


def test_broken_symlink_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "results"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputError, match="which does not exist; remove the link or create"):
        _replace(link)
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()


# --------------------------------------------------------------------------------------------
# interruptions
# --------------------------------------------------------------------------------------------


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
    from bayesmtor.reporting.outputs import atomic_output_dir
    target = Path(sys.argv[1])
    with atomic_output_dir(target, force=True) as work:
        (work / "half.txt").write_text("half written")
        print("READY", flush=True)
        time.sleep(60)
    """
)


@pytest.mark.parametrize("had_old", [True, False])
def test_sigkill_mid_write_then_rerun(tmp_path: Path, had_old: bool) -> None:
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
    assert sorted(p.name for p in target.iterdir()) == [MARKER_NAME, "done.txt"]
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


# --------------------------------------------------------------------------------------------
# single files
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------------------------


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from bayesmtor.cli import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("out", "fragment"),
    [
        ("", "the output folder name is empty"),
        (".", "is the current folder"),
        ("mine", "holds no .bayesmtor-output marker, so bayesmtor did not write it"),
    ],
    ids=["empty", "current-folder", "users-folder"],
)
def test_run_force_refuses_unsafe_out_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, out: str, fragment: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plan.toml").write_text(
        '[plan]\nname = "p"\ndescription = "d"\nunit = "trial"\n\n[[analysis]]\n'
        'outcome = "cbr"\ncomparison = "temsirolimus_endocrine"\nmeasure = "RR"\n'
    )
    _user_folder(tmp_path / "mine")
    code, stdout, err = _cli(["run", "plan.toml", "--out", out, "--force", "--quiet"], capsys)
    assert code == 2 and stdout == ""
    assert err.startswith("bayesmtor: error: ") and fragment in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "plan.toml"]
    _assert_user_folder_intact(tmp_path / "mine")


def test_replicate_out_overwrites_only_its_own_table(tmp_path: Path, capsys) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "replication.csv").write_text("my,own\n1,2\n")
    code, _, err = _cli(["replicate", "--json", "--out", str(mine)], capsys)
    assert code == 2 and "is not a replication table written by bayesmtor" in err
    assert (mine / "replication.csv").read_text() == "my,own\n1,2\n"

    ours = tmp_path / "ours"
    for _ in range(2):  # the second call replaces the table the first one wrote
        code, _, err = _cli(["replicate", "--json", "--out", str(ours)], capsys)
        assert code == 0, err
    assert (ours / "replication.csv").read_text().startswith("result_id,source_location,")
    assert sorted(p.name for p in ours.iterdir()) == ["replication.csv"]


def test_replicate_out_refuses_a_link_and_an_empty_name(tmp_path: Path, capsys) -> None:
    elsewhere = tmp_path / "elsewhere.csv"
    elsewhere.write_text("result_id,x\n")
    (tmp_path / "rep").mkdir()
    (tmp_path / "rep" / "replication.csv").symlink_to(elsewhere)
    code, _, err = _cli(["replicate", "--out", str(tmp_path / "rep")], capsys)
    assert code == 2 and "is a symbolic link" in err
    assert elsewhere.read_text() == "result_id,x\n"
    code, _, err = _cli(["replicate", "--out", ""], capsys)
    assert code == 2 and "--out is empty" in err
