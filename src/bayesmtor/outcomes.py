"""What an outcome means: readable labels and the direction of benefit or harm.

Two small bundled tables, read once through the package's strict CSV reader:

``data/outcomes.csv``
    one row per outcome code (``pfs``, ``orr``, ...) or adverse-event kind (``ae_any``,
    ``ae_grade34``; the event is the part after ``:``, e.g. ``ae_any:diarrhea``): ``label``
    (``{event}`` stands for the event's name), ``abbreviation``, ``role`` (``efficacy`` or
    ``safety``), ``favourable`` (``lower`` or ``higher``: which side of the null, ratio 1 or
    difference 0, is good for the patient) and ``reason``.
``data/comparisons.csv``
    one row per comparison code: ``label`` and ``short_label``.

The direction is data, never guessed from a name: an outcome missing from the table has
``favourable = None``, and the report then states the probability of the effect being below
the null without calling it a benefit or a harm, and flags the outcome.

Examples
--------
>>> info = outcome_info("pfs")
>>> info.label, info.role, info.favourable
('Progression-free survival', 'efficacy', 'lower')
>>> outcome_info("ae_grade34:diarrhea").label
'Grade 3-4 diarrhea'
>>> outcome_info("qol").favourable is None
True
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from bayesmtor._resources import data_path
from bayesmtor._strictcsv import read_csv_file
from bayesmtor.errors import InputError

__all__ = ["OutcomeInfo", "comparison_label", "outcome_info"]

_ROLES = ("efficacy", "safety")
_SIDES = ("lower", "higher")


@dataclass(frozen=True)
class OutcomeInfo:
    """Metadata of one outcome code.

    Attributes
    ----------
    code : str
        The outcome as the plans and tables name it (``"pfs"``, ``"ae_any:diarrhea"``).
    label : str
        Readable name (``"Progression-free survival"``, ``"Any-grade diarrhea"``).
    abbreviation : str
        Short name (``"PFS"``); the code when unknown.
    role : str or None
        ``"efficacy"`` (the report states a probability of benefit) or ``"safety"`` (a
        probability of harm); ``None`` when the outcome is not in ``data/outcomes.csv``.
    favourable : str or None
        ``"lower"`` when an effect below the null (ratio < 1) is good for the patient,
        ``"higher"`` when above; ``None`` when unknown.
    reason : str
        Why (from ``data/outcomes.csv``), or why the direction is unknown.
    """

    code: str
    label: str
    abbreviation: str
    role: str | None
    favourable: str | None
    reason: str

    @property
    def known(self) -> bool:
        """Whether the direction of benefit or harm is known."""
        return self.favourable is not None


@lru_cache(maxsize=1)
def _outcome_table() -> dict[str, dict[str, str]]:
    table = read_csv_file(data_path("outcomes.csv"), source="outcomes.csv")
    rows: dict[str, dict[str, str]] = {}
    for i, rec in enumerate(table.frame.to_dict(orient="records")):
        line = int(table.lines[i])
        for col, allowed in (("role", _ROLES), ("favourable", _SIDES)):
            if rec[col] not in allowed:
                raise InputError(
                    f"{col} must be one of {list(allowed)}, got {rec[col]!r}",
                    source="outcomes.csv",
                    line=line,
                    column=col,
                )
        rows[rec["outcome"]] = rec
    return rows


@lru_cache(maxsize=1)
def _comparison_table() -> dict[str, dict[str, str]]:
    table = read_csv_file(data_path("comparisons.csv"), source="comparisons.csv")
    return {rec["comparison"]: rec for rec in table.frame.to_dict(orient="records")}


def outcome_info(code: str) -> OutcomeInfo:
    """Label, role and direction of an outcome code (see the module notes).

    Parameters
    ----------
    code : str
        An outcome code; ``kind:event`` for adverse events.

    Returns
    -------
    OutcomeInfo
        With ``role = favourable = None`` for an outcome not in ``data/outcomes.csv``.
    """
    code = str(code)
    kind, _, event = code.partition(":")
    rec = _outcome_table().get(kind)
    if rec is None or ("{event}" in rec["label"]) != bool(event):
        return OutcomeInfo(
            code=code,
            label=code,
            abbreviation=code,
            role=None,
            favourable=None,
            reason=f"outcome '{code}' is not listed in data/outcomes.csv, so whether a ratio "
            "below 1 is a benefit or a harm is not known",
        )
    name = event.replace("_", " ")
    return OutcomeInfo(
        code=code,
        label=rec["label"].replace("{event}", name),
        abbreviation=rec["abbreviation"],
        role=rec["role"],
        favourable=rec["favourable"],
        reason=rec["reason"],
    )


def comparison_label(code: str, *, short: bool = False) -> str:
    """Readable name of a comparison code (the code itself when it is not listed)."""
    rec = _comparison_table().get(str(code))
    if rec is None:
        return str(code)
    return rec["short_label"] if short else rec["label"]
