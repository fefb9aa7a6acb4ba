"""The documentation is executed: every tutorial runs, and the site builds with ``--strict``.

Convention for the Markdown pages under ``docs/tutorials/``:

* Every fenced block whose info string is exactly ``python`` (a line "```python" at the start
  of a line) is code that runs. The blocks of one page run in order in one fresh namespace, so
  they form one script; the working directory is a temporary folder holding a copy of
  ``docs/examples/*.csv`` (the tutorials read those files by bare name), and figures render
  off-screen (``MPLBACKEND=Agg``).
* Code shown but not run uses another info string: ``bash`` for shell commands, ``text`` for
  output, ``toml`` for plans.
* Pages state expected results in prose; the test checks that the code runs (and the few
  ``assert`` lines the pages contain), never numbers copied from an earlier run.

A failing block is reported with its page, its number (1-based) and its first line in the
Markdown file, followed by the traceback.

The site build runs ``python -m mkdocs build --strict``. It fails (it is never skipped) when
mkdocs or mkdocstrings is missing: the ``test`` extra installs them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS = REPO_ROOT / "docs"
TUTORIALS = DOCS / "tutorials"
EXAMPLES = DOCS / "examples"

#: Tutorial pages and the marks of their tests. A page that fits a PyMC model is slow.
PAGES: dict[str, tuple[pytest.MarkDecorator, ...]] = {
    "quickstart.md": (),
    "replicating-2014.md": (),
    "bayes-vs-frequentist.md": (pytest.mark.slow, pytest.mark.mcmc),
    "tau-prior.md": (),
    "own-csv.md": (),
    "revman.md": (),
    "meta-regression.md": (),
}

#: Files a page reads beyond docs/examples, found beside the repository in ``../shared`` (not
#: redistributed here); the page is skipped, with the place looked in, where they are absent.
PAGE_FILES: dict[str, tuple[str, ...]] = {"revman.md": ("fixtures/revman/Fleiss1993.rm5",)}

_FENCE_OPEN = re.compile(r"^```python\s*$")
_FENCE_CLOSE = re.compile(r"^```\s*$")


@dataclass(frozen=True)
class CodeBlock:
    """One executable block of a page: its 1-based number, first code line and source."""

    number: int
    line: int
    source: str


def python_blocks(path: Path) -> list[CodeBlock]:
    """The ```python blocks of a Markdown page, in order."""
    blocks: list[CodeBlock] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if _FENCE_OPEN.match(lines[i]):
            start = i + 1
            j = start
            while j < len(lines) and not _FENCE_CLOSE.match(lines[j]):
                j += 1
            if j == len(lines):
                raise AssertionError(f"{path.name}: ```python block at line {i + 1} is not closed")
            blocks.append(CodeBlock(len(blocks) + 1, start + 1, "\n".join(lines[start:j]) + "\n"))
            i = j
        i += 1
    return blocks


def run_page(path: Path) -> dict[str, object]:
    """Run the blocks of one page in order in a fresh namespace; fail naming the block."""
    blocks = python_blocks(path)
    assert blocks, f"{path.name} has no ```python block to run"
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem.replace('-', '_')}"}
    for block in blocks:
        code = compile(block.source, f"{path.name}:block{block.number}", "exec")
        try:
            exec(code, namespace)
        except Exception as exc:  # report which block failed, then fail the test
            tb = traceback.format_exc()
            pytest.fail(
                f"{path.relative_to(REPO_ROOT)}: block {block.number} (Markdown line "
                f"{block.line}) raised {type(exc).__name__}: {exc}\n\n{tb}",
                pytrace=False,
            )
    return namespace


@pytest.fixture
def tutorial_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch working directory holding a copy of the example CSV files."""
    for csv in EXAMPLES.glob("*.csv"):
        shutil.copy(csv, tmp_path / csv.name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path


@pytest.mark.parametrize(
    "page",
    [pytest.param(name, marks=marks, id=name.removesuffix(".md")) for name, marks in PAGES.items()],
)
def test_tutorial_runs(page: str, tutorial_dir: Path) -> None:
    import matplotlib.pyplot as plt

    for rel in PAGE_FILES.get(page, ()):
        found = REPO_ROOT.parent / "shared" / rel
        if not found.is_file():
            pytest.skip(f"{page} reads {found.name}, not found at {found}; clone with ../shared")
        shutil.copy(found, tutorial_dir / found.name)
    try:
        run_page(TUTORIALS / page)
    finally:
        plt.close("all")


def test_every_tutorial_is_tested() -> None:
    on_disk = sorted(p.name for p in TUTORIALS.glob("*.md"))
    assert on_disk == sorted(PAGES), "add new tutorial pages to PAGES in tests/test_docs.py"


def test_block_extraction(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# T\n\n```python\nx = 1\n```\n\n```bash\nbayesmtor pool x.csv\n```\n\n"
        "```text\nnot code\n```\n\n```python\ny = x + 1\n```\n",
        encoding="utf-8",
    )
    blocks = python_blocks(page)
    assert [b.source for b in blocks] == ["x = 1\n", "y = x + 1\n"]
    assert [b.line for b in blocks] == [4, 16]


def test_api_reference_covers_every_public_module() -> None:
    """docs/api.md has a ``::: bayesmtor.<module>`` block (or one of a subpackage's modules) for
    every public top-level module and subpackage."""
    package = REPO_ROOT / "src" / "bayesmtor"
    public = {p.stem for p in package.glob("*.py") if not p.stem.startswith("_")}
    public |= {p.parent.name for p in package.glob("*/__init__.py")}
    text = (DOCS / "api.md").read_text()
    documented = set(re.findall(r"^::: bayesmtor\.(\w+)(?:\.\w+)*\s*$", text, re.M))
    assert public - documented == set(), "modules missing from docs/api.md"
    assert documented - public == set(), "docs/api.md names modules that do not exist"


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    """The site builds offline with ``mkdocs build --strict`` and logs no warning."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(REPO_ROOT / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed (exit {proc.returncode}):\n{output}"
    assert "WARNING" not in output, output
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "api" / "index.html").is_file()


def test_architecture_lists_every_module() -> None:
    """docs/architecture.md names every module of the package (kept true as modules land)."""
    package = REPO_ROOT / "src" / "bayesmtor"
    modules = {p.stem for p in package.glob("*.py") if p.stem not in ("__init__", "__main__")}
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| [^|]+ \| `(\w+)` \|", text, re.M))
    assert modules - listed == set(), "modules missing from the table in docs/architecture.md"


def test_cli_page_options_exist() -> None:
    """Every ``--option`` and subcommand named in docs/cli.md is accepted by the parser."""
    from bayesmtor.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    helps = parser.format_help() + "".join(sub.format_help() for sub in subparsers.choices.values())
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text))
    assert {o for o in options if o not in helps} == set(), "options in docs/cli.md unknown"
    commands = set(re.findall(r"^## `bayesmtor (\w+)`", text, re.M))
    assert commands <= set(subparsers.choices), "subcommands in docs/cli.md unknown"
    assert set(subparsers.choices) <= commands, "subcommands missing from docs/cli.md"
