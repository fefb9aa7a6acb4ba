"""A griffe extension for the API reference: the Sphinx roles of the docstrings as links.

The docstrings cross-reference with Sphinx roles (``:func:`meta_analysis```,
``:class:`~bayesmtor.errors.InputError```, ``:meth:`PoolResult.to_dict```, ...), which
mkdocstrings would show as literal text. Once the package is loaded, every role is rewritten
into an mkdocs-autorefs reference, ``<autoref identifier="full.path" optional>``: the name is
resolved as Python would from where the docstring sits (the object, its class, its module),
a ``~`` shows the last component only (as in Sphinx), and ``text <target>`` keeps its text. A
reference to an object the site documents becomes a link; one to an object outside it (the
standard library, pandas, PyMC) stays as code, without a warning.

Used from ``mkdocs.yml`` (``extensions`` of the python handler); nothing in the package needs it.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

#: The Sphinx roles rewritten.
ROLES = ("func", "class", "meth", "mod", "data", "attr", "exc", "obj", "const")
ROLE = re.compile(r":(?:py:)?(" + "|".join(ROLES) + r"):`([^`]+)`")


def _lookup(collection: Any, path: str) -> bool:
    try:
        collection.get_member(path)
    except (KeyError, ValueError, AttributeError, griffe.AliasResolutionError):
        return False
    return True


def resolve(obj: Any, target: str, collection: Any) -> str | None:
    """The full path of ``target`` seen from ``obj`` (``None`` if it is not in the package)."""
    if _lookup(collection, target):
        return target
    head, _, rest = target.partition(".")
    scope = obj
    while scope is not None:
        candidates = [scope]
        for candidate in candidates:
            try:
                full = candidate.resolve(head)
            except (griffe.NameResolutionError, AttributeError, KeyError):
                full = None
            if full:
                path = f"{full}.{rest}" if rest else full
                if _lookup(collection, path):
                    return path
            if head in getattr(candidate, "members", {}):
                path = f"{candidate.path}.{target}"
                if _lookup(collection, path):
                    return path
        scope = scope.parent
    return None


def rewrite(text: str, obj: Any, collection: Any) -> str:
    """``text`` with every Sphinx role replaced by an autorefs reference (or code)."""

    def one(match: re.Match[str]) -> str:
        body = match.group(2).strip()
        shown, target = body, body
        explicit = re.fullmatch(r"(.+?)\s*<([^<>]+)>", body)
        if explicit:
            shown, target = explicit.group(1), explicit.group(2)
        short = target.startswith("~")
        target = target.lstrip("~.")
        if not explicit:
            shown = target.rsplit(".", 1)[-1] if short else target
        title = f"<code>{html.escape(shown)}</code>"
        full = resolve(obj, target, collection)
        if full is None:
            return title
        return f'<autoref identifier="{html.escape(full)}" optional>{title}</autoref>'

    return ROLE.sub(one, text)


def _walk(obj: Any) -> Any:
    yield obj
    for member in obj.members.values():
        if member.is_alias:
            continue
        yield from _walk(member)


class SphinxRoles(griffe.Extension):
    """Rewrite the Sphinx roles of every docstring of the loaded package."""

    def on_package(self, *, pkg: Any, loader: Any, **kwargs: Any) -> None:
        collection = loader.modules_collection
        for obj in _walk(pkg):
            doc = obj.docstring
            if doc is not None and ":" in doc.value:
                doc.value = rewrite(doc.value, obj, collection)
