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
mkdocs or mkdocstrings is missing: the ``test`` extra installs them. The build runs the same
blocks by the same rule (``docs_build/tutorials.py``, whose block parser and runner this file
uses) and shows, under each block, what it printed and the figures it made; the test checks the
built tutorials hold those outputs, and that the API reference shows its cross-references as
links, with no Sphinx role left as literal text.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import traceback
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
    "bayes-factors.md": (),
    "own-csv.md": (),
    "revman.md": (),
    "meta-regression.md": (),
}

_HOOK_PATH = REPO_ROOT / "docs_build" / "tutorials.py"
_spec = importlib.util.spec_from_file_location("bayesmtor_docs_tutorials", _HOOK_PATH)
assert _spec is not None and _spec.loader is not None
hook = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = hook
_spec.loader.exec_module(hook)

#: Files a page reads beyond docs/examples (the hook's table, found in ``../shared``).
PAGE_FILES = hook.PAGE_FILES
CodeBlock = hook.CodeBlock


def python_blocks(path: Path) -> list[CodeBlock]:
    """The ```python blocks of a Markdown page, in order (the rule the site build runs)."""
    return hook.python_blocks_of(path.read_text(encoding="utf-8"), path.name)


def run_page(path: Path) -> None:
    """Run the blocks of one page in order in a fresh namespace; fail naming the block."""
    assert python_blocks(path), f"{path.name} has no ```python block to run"
    try:
        hook.run_blocks(path.read_text(encoding="utf-8"), str(path.relative_to(REPO_ROOT)))
    except hook.BlockError as exc:
        tb = "".join(traceback.format_exception(exc.__cause__))
        pytest.fail(f"{exc}\n\n{tb}", pytrace=False)


@pytest.fixture
def tutorial_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch working directory holding a copy of the example CSV files."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path


@pytest.mark.parametrize(
    "page",
    [pytest.param(name, marks=marks, id=name.removesuffix(".md")) for name, marks in PAGES.items()],
)
def test_tutorial_runs(page: str, tutorial_dir: Path) -> None:
    import matplotlib.pyplot as plt

    absent = hook.missing_files(page)
    if absent:
        pytest.skip(
            f"{page} reads {absent[0].name}, not found at {absent[0]}; clone with ../shared"
        )
    hook.copy_inputs(page, tutorial_dir)
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
    site = tmp_path / "site"
    assert (site / "index.html").is_file()
    _check_rendered_tutorials(site)
    _check_api_links(site)


#: Pages whose code draws at least one figure (shown under its block by the build).
FIGURE_PAGES = ("quickstart.md", "own-csv.md", "tau-prior.md", "bayes-vs-frequentist.md")


def _check_rendered_tutorials(site: Path) -> None:
    """Every tutorial shows what its code printed, the pages that plot show their figures,
    and the code is highlighted (Pygments spans)."""
    for page in PAGES:
        text = (site / "tutorials" / page.removesuffix(".md") / "index.html").read_text("utf-8")
        assert 'class="highlight"' in text and '<span class="kn">import</span>' in text, page
        if hook.missing_files(page):  # shown without outputs; its test_tutorial_runs skips
            continue
        outputs = text.count('<pre class="output">')
        assert outputs >= 1, f"{page}: no rendered output block"
        if page in FIGURE_PAGES:
            figures = re.findall(
                r'<img class="output-figure" alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]{100,})"',
                text,
            )
            assert figures, f"{page}: no rendered figure"
    quick = (site / "tutorials" / "quickstart" / "index.html").read_text("utf-8")
    assert "BayesMetaResult(engine=" in quick  # a printed result, rendered as text


#: Sphinx roles that must not survive as literal text in the API reference.
_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj):`")


def _check_api_links(site: Path) -> None:
    text = (site / "api" / "index.html").read_text("utf-8")
    raw = _ROLE.findall(text)
    assert not raw, f"{len(raw)} Sphinx roles shown as literal text in the API reference"
    links = text.count('class="autorefs autorefs-internal"')
    assert links >= 200, f"only {links} cross-reference links in the API reference"
    # one role of each kind, as a link to its object's anchor
    for target in ("bayesmtor.effects.escalc", "bayesmtor.errors.InputError", "bayesmtor.config"):
        assert f'href="#{target}"' in text, target


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
