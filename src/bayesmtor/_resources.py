"""Locate the bundled ``data/`` and ``models/`` folders.

In a built wheel they are shipped inside the package as ``bayesmtor/_bundled/{data,models}``
(hatchling ``force-include``); in a source checkout (editable install or ``PYTHONPATH=src``)
they are the top-level folders of the repository. Library code reaches them only through
:func:`data_path` and :func:`models_path`.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _locate(name: str) -> Path:
    bundled = _PKG / "_bundled" / name
    if bundled.is_dir():
        return bundled
    checkout = _PKG.parent.parent / name  # src/bayesmtor -> repository root
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"bayesmtor cannot find its bundled '{name}/' folder: looked in {bundled} and {checkout}. "
        "Reinstall the package with 'pip install .' from a complete source tree."
    )


def data_path(filename: str | None = None) -> Path:
    """Path of the bundled ``data/`` folder, or of one file inside it."""
    root = _locate("data")
    return root if filename is None else root / filename


def models_path(filename: str | None = None) -> Path:
    """Path of the bundled ``models/`` folder (analysis plans), or of one file inside it."""
    root = _locate("models")
    return root if filename is None else root / filename
