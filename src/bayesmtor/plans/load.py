"""Loading analysis plans: bundled names (``models/*.toml``), paths and TOML text."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from bayesmtor._resources import models_path
from bayesmtor.errors import PlanError
from bayesmtor.plans.schema import Plan
from bayesmtor.plans.validate import _did_you_mean, _Validator

# --------------------------------------------------------------------------------------------
# Public loading functions
# --------------------------------------------------------------------------------------------


def list_plans() -> list[str]:
    """Names of the bundled plans (``models/*.toml``), sorted."""
    return sorted(p.stem for p in models_path().glob("*.toml") if p.is_file())


def load_plan(name_or_path: str | Path) -> Plan:
    """Load and validate an analysis plan.

    Parameters
    ----------
    name_or_path : str or Path
        A bare plan name such as ``"primary"`` (no path separator, no ``.toml`` suffix) loads the
        bundled ``models/<name>.toml``; anything else is a path to a TOML file.

    Returns
    -------
    Plan

    Raises
    ------
    PlanError
        If the plan cannot be found, is not valid TOML, or breaks the schema. The message names
        the file, the key (e.g. ``analysis[2].measure``), what is wrong and what would be right.
    """
    if isinstance(name_or_path, str) and _is_bare_name(name_or_path):
        name = name_or_path
        available = list_plans()
        if name not in available:
            hint = _did_you_mean(name, available)
            raise PlanError(
                f"no bundled analysis plan named '{name}' (looked for {models_path(name + '.toml')})"
                f"{hint}; available plans: {', '.join(available) or 'none'}. "
                "To load your own file pass its path, e.g. './my_plan.toml'."
            )
        path = models_path(name + ".toml")
    else:
        path = Path(name_or_path)
    if not path.is_file():
        hint = ""
        if path.suffix == ".toml" and path.stem in list_plans():
            hint = f"; to load the bundled plan write its bare name, load_plan('{path.stem}')"
        raise PlanError(f"{path}: analysis plan file not found{hint}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"{path}: cannot read the analysis plan ({exc})") from None
    return parse_plan(text, source=path)


def parse_plan(text: str, source: str | Path = "<string>") -> Plan:
    """Validate TOML ``text`` as a plan; ``source`` is the name used in error messages."""
    origin = str(source)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        where = f", line {m.group(1)}, column {m.group(2)}" if m else ""
        detail = msg[: m.start()].strip() if m else msg
        raise PlanError(
            f"{origin}{where}: TOML syntax error: {detail}. Check quoting, brackets and "
            "'key = value' pairs on that line (https://toml.io)."
        ) from None
    norm = _Validator(origin, text=text).validate(raw)
    return Plan.from_dict(norm, source=Path(source) if isinstance(source, Path) else None)


def _is_bare_name(value: str) -> bool:
    return "/" not in value and "\\" not in value and not value.endswith(".toml") and value != ""
