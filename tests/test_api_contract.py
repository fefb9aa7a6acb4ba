"""Contracts of the public surface: the top-level API is the documented one, its functions take
options by keyword only and document every parameter, and the architecture page lists exactly
the modules that exist."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import bayesmtor as bm

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "bayesmtor"

#: The data arguments each function may take by position (metafor's order); everything else
#: is an option and must be keyword-only.
DATA_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "read_meta_data": ("source",),
    "escalc": ("data", "measure"),
    "model_matrix": ("table", "mods"),
    "rma": ("yi", "sei", "vi"),
    "rma_mh": ("ai", "n1i", "ci", "n2i"),
    "rma_peto": ("ai", "n1i", "ci", "n2i"),
    "confint": ("result",),
    "leave1out": ("data",),
    "cumul": ("data",),
    "regtest": ("yi", "sei", "vi"),
    "ranktest": ("yi", "sei", "vi"),
    "bayesmeta": ("yi", "sei"),
    "compare": ("bayes_result", "freq_result"),
    "load_plan": ("name_or_path",),
    "run_plan": ("plan",),
    "write_run": ("result", "out"),
    "read_revman": ("path",),
    "read_revman_review": ("path",),
    "revman_reanalysis": ("source",),
}


def _functions() -> list[str]:
    return [n for n in bm.__all__ if inspect.isfunction(getattr(bm, n))]


def _documented_api() -> list[str]:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    section = text.split("## Top-level API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `bm\.(\w+)`", section, flags=re.M)


def _docstring_parameters(obj) -> set[str]:
    doc = inspect.getdoc(obj) or ""
    lines = doc.splitlines()
    names: set[str] = set()
    for i, line in enumerate(lines[:-1]):
        if line.strip() == "Parameters" and set(lines[i + 1].strip()) == {"-"}:
            for entry in lines[i + 2 :]:
                if entry and not entry.startswith(" "):
                    if re.match(r"^-+$", entry.strip()) or entry.strip() in ("Returns", "Raises"):
                        break
                    head = entry.split(" : ", 1)[0]
                    names.update(n.strip().lstrip("*") for n in head.split(","))
    return names


def test_all_is_the_documented_api():
    assert sorted(_documented_api()) == sorted(n for n in bm.__all__ if n != "__version__")
    for name in bm.__all__:
        assert getattr(bm, name) is not None


@pytest.mark.parametrize("name", _functions())
def test_options_are_keyword_only(name):
    sig = inspect.signature(getattr(bm, name))
    kinds = {p.name: p.kind for p in sig.parameters.values()}
    assert inspect.Parameter.VAR_POSITIONAL not in kinds.values(), name
    assert inspect.Parameter.VAR_KEYWORD not in kinds.values(), name
    positional = [n for n, k in kinds.items() if k is not inspect.Parameter.KEYWORD_ONLY]
    assert set(positional) <= set(DATA_ARGUMENTS[name]), (name, positional)


@pytest.mark.parametrize("name", _functions())
def test_every_parameter_is_documented(name):
    func = getattr(bm, name)
    params = set(inspect.signature(func).parameters)
    assert params <= _docstring_parameters(func), (name, params - _docstring_parameters(func))


def _architecture_modules() -> set[str]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Modules", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\|[^|\n]*\| `([\w.]+)` \|", section, flags=re.M))


def _package_modules() -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts and parts != ["__main__"]:
            found.add(".".join(parts))
    return found


def test_architecture_lists_exactly_the_modules():
    listed, present = _architecture_modules(), _package_modules()
    assert not present - listed, f"modules missing from docs/architecture.md: {present - listed}"
    assert not listed - present, f"docs/architecture.md lists absent modules: {listed - present}"


def test_import_is_lazy_and_the_frequentist_path_never_loads_pymc():
    code = (
        "import sys, bayesmtor as bm\n"
        "before = sorted(m for m in sys.modules if m.startswith('bayesmtor.'))\n"
        "fit = bm.rma([0.1, -0.2, 0.3], [0.1, 0.2, 0.15])\n"
        "print(before, 'pymc' in sys.modules, 'pytensor' in sys.modules, fit.k)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["[]", "False", "False", "3"]


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = bm.nope
