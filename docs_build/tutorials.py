"""Tutorials rendered with their outputs: an mkdocs hook that runs the code of every page under
``docs/tutorials/`` at build time and writes, under each block, what it printed and drew.

The convention is the one ``tests/test_docs.py`` checks (and imports from here): every fenced
block whose info string is exactly ``python`` runs; the blocks of one page run in order in one
fresh namespace, in a temporary folder holding a copy of ``docs/examples/*.csv``, with figures
rendered off-screen. Under each block the hook inserts

* ``<pre class="output">``: what the block printed on stdout (nothing if it printed nothing);
* ``<img class="output-figure">``: every matplotlib figure the block made (a ``Figure`` or
  ``Axes`` left in the namespace, or a pyplot figure), as an embedded PNG.

Because the outputs are made by the build itself they are always those of the current code.
A block that raises stops the build with the page, the block number and its first line.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
#: Where files that are not redistributed here are found: ``../shared`` beside the checkout.
SHARED = ROOT.parent / "shared"

#: Files a page reads beyond docs/examples, relative to :data:`SHARED`. Where one is absent
#: the page is shown without outputs (the build says so) and its test is skipped.
PAGE_FILES: dict[str, tuple[str, ...]] = {"revman.md": ("fixtures/revman/Fleiss1993.rm5",)}

_FENCE_OPEN = re.compile(r"^```python\s*$")
_FENCE_CLOSE = re.compile(r"^```\s*$")

#: Resolution of the embedded figures (PNG), dots per inch.
FIGURE_DPI = 110


@dataclass(frozen=True)
class CodeBlock:
    """One executable block of a page: its 1-based number, first code line, source, and the
    index of its closing fence among the page's lines."""

    number: int
    line: int
    source: str
    end: int


def python_blocks_of(text: str, name: str = "page") -> list[CodeBlock]:
    """The ```python blocks of a Markdown text, in order."""
    blocks: list[CodeBlock] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if _FENCE_OPEN.match(lines[i]):
            start = i + 1
            j = start
            while j < len(lines) and not _FENCE_CLOSE.match(lines[j]):
                j += 1
            if j == len(lines):
                raise AssertionError(f"{name}: ```python block at line {i + 1} is not closed")
            source = "\n".join(lines[start:j]) + "\n"
            blocks.append(CodeBlock(len(blocks) + 1, start + 1, source, j))
            i = j
        i += 1
    return blocks


class BlockError(RuntimeError):
    """A tutorial block raised: names the page, the block and its Markdown line."""


def missing_files(page: str) -> list[Path]:
    """The files of :data:`PAGE_FILES` a page needs that are not there."""
    return [SHARED / rel for rel in PAGE_FILES.get(page, ()) if not (SHARED / rel).is_file()]


def copy_inputs(page: str, folder: Path) -> None:
    """Copy the example CSV files and the page's own files of :data:`PAGE_FILES` to ``folder``."""
    for csv in EXAMPLES.glob("*.csv"):
        shutil.copy(csv, folder / csv.name)
    for rel in PAGE_FILES.get(page, ()):
        shutil.copy(SHARED / rel, folder / Path(rel).name)


@contextlib.contextmanager
def tutorial_folder(page: str) -> Any:
    """A scratch working directory holding the page's input files (the old one restored after)."""
    old_cwd, old_backend = os.getcwd(), os.environ.get("MPLBACKEND")
    with tempfile.TemporaryDirectory(prefix="bayesmtor-docs-") as tmp:
        copy_inputs(page, Path(tmp))
        os.chdir(tmp)
        os.environ["MPLBACKEND"] = "Agg"
        try:
            yield Path(tmp)
        finally:
            os.chdir(old_cwd)
            if old_backend is None:
                os.environ.pop("MPLBACKEND", None)
            else:
                os.environ["MPLBACKEND"] = old_backend


def _new_figures(namespace: dict[str, Any], seen: set[int]) -> list[Any]:
    """Figures made since the last call: Figures and Axes in the namespace, pyplot figures."""
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    found = []
    candidates = [v for v in namespace.values() if isinstance(v, (Axes, Figure))]
    candidates += [plt.figure(n) for n in plt.get_fignums()]
    for value in candidates:
        fig = value.figure if isinstance(value, Axes) else value
        if id(fig) not in seen:
            seen.add(id(fig))
            found.append(fig)
    return found


def _figure_html(fig: Any, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches="tight", facecolor="white")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<p><img class="output-figure" alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></p>'


def run_blocks(text: str, name: str) -> list[tuple[CodeBlock, str, list[str]]]:
    """Run the python blocks of a page: ``[(block, printed text, figure HTML)]``.

    Raises
    ------
    BlockError
        A block raised; the message names the page, the block and its Markdown line.
    """
    import matplotlib.pyplot as plt

    blocks = python_blocks_of(text, name)
    namespace: dict[str, Any] = {"__name__": f"docs_{Path(name).stem.replace('-', '_')}"}
    seen: set[int] = set()
    results = []
    try:
        for block in blocks:
            code = compile(block.source, f"{name}:block{block.number}", "exec")
            out = io.StringIO()
            try:
                with contextlib.redirect_stdout(out), warnings.catch_warnings(record=True) as said:
                    warnings.simplefilter("always")
                    exec(code, namespace)
            except Exception as exc:
                raise BlockError(
                    f"{name}: block {block.number} (Markdown line {block.line}) raised "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            figures = [
                _figure_html(fig, f"Figure made by block {block.number} of {name}")
                for fig in _new_figures(namespace, seen)
            ]
            # warnings are part of what a reader sees, as a console or notebook shows them
            shown = dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in said)
            printed = out.getvalue() + "".join(f"{line}\n" for line in shown)
            results.append((block, printed, figures))
    finally:
        plt.close("all")
    return results


def render(text: str, name: str) -> str:
    """The page with the output and figures of each python block inserted under it (the page
    as it is when a file it reads is absent)."""
    page = Path(name).name
    absent = missing_files(page)
    if absent:
        import logging

        logging.getLogger("mkdocs").info(
            "%s is shown without outputs: it reads %s, not found", name, ", ".join(map(str, absent))
        )
        return text
    with tutorial_folder(page):
        results = run_blocks(text, name)
    lines = text.splitlines()
    inserts: dict[int, list[str]] = {}
    for block, printed, figures in results:
        parts = []
        if printed.strip():
            body = html.escape(printed.rstrip("\n"))
            parts.append(f'<pre class="output"><code>{body}</code></pre>')
        parts += figures
        if parts:
            inserts[block.end] = ["", *parts, ""]
    out: list[str] = []
    for i, line in enumerate(lines):
        out.append(line)
        out += inserts.get(i, [])
    return "\n".join(out) + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """mkdocs hook: tutorials get their outputs; other pages are left as they are."""
    if not page.file.src_uri.startswith("tutorials/"):
        return markdown
    return render(markdown, page.file.src_uri)
