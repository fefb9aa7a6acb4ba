"""Reading RevMan 5 files (``.rm5``) and RevMan Web data packages (``.zip``).

Both formats are read into one :class:`RevManReview`: a tidy table of study rows
(:attr:`RevManReview.studies`) and a table of analyses (:attr:`RevManReview.analyses`), one row
per outcome and one per subgroup. The data entered in RevMan (counts, means and SDs, estimates
and SEs) sit in plain columns; RevMan's own computed results are kept apart in columns prefixed
``revman_``, so a re-analysis can be checked against them without ever reading them.

RevMan 5 (``.rm5``)
-------------------
XML with root ``COCHRANE_REVIEW``; studies in ``STUDIES_AND_REFERENCES/STUDIES/
INCLUDED_STUDIES/STUDY`` (``ID``, ``NAME``, ``YEAR``), data in ``ANALYSES_AND_DATA/COMPARISON``
-> ``DICH_OUTCOME`` | ``CONT_OUTCOME`` | ``IV_OUTCOME`` | ``IPD_OUTCOME`` -> optional
``*_SUBGROUP`` -> ``*_DATA``. Ratios (``EFFECT_SIZE``, ``CI_START``, ``CI_END``) are stored on
the ratio scale and are converted to natural logs here; ``LOG_*`` attributes (log10) are not
used. A ``<FOOTNOTE>`` child of a data row is kept as text in column ``footnote``.

Encodings. The bytes are decoded before parsing, by these rules:

* a byte-order mark decides (UTF-8, UTF-16);
* else the encoding declared in ``<?xml ... encoding="..."?>``; a declared ISO-8859-1 (latin-1)
  is read as Windows-1252, its superset for printable characters, because RevMan 5 writes
  Windows-1252 bytes (curly quotes, dashes) into files it declares ISO-8859-1 (the WHATWG
  encoding standard treats the label the same way). The five bytes Windows-1252 leaves
  undefined keep their ISO-8859-1 meaning;
* else UTF-8, as the XML specification says.

A byte sequence invalid in the encoding so chosen is refused with its line and column: bayesmtor
does not guess another encoding.

Unescaped characters. RevMan 5 writes some text without escaping it, which a strict XML parser
rejects. Two repairs are made, both of characters that cannot begin any XML markup, so that the
repair cannot change the meaning of a well-formed document: a ``&`` that does not begin a
character or entity reference (``&name;``, ``&#123;``, ``&#x1F;``) is read as ``&amp;``, and a
``<`` followed by a character that cannot start a tag (a space, digit, ``=``, ``<`` ...) is read
as ``&lt;``. Each repair is listed in :attr:`RevManReview.notes` with its line and column. Any
other malformation (a ``<`` followed by a letter inside text, a missing end tag, a truncated
file) is refused with :class:`~bayesmtor.errors.InputError` naming the line and column of the
original file. A document written on one line is read like any other (its positions are line 1,
column N).

RevMan Web data package (``.zip``, format v1)
---------------------------------------------
A zip holding ``<ID>-analysis-data/<ID>-overall-estimates-and-settings.csv``,
``<ID>-data-rows.csv`` and ``<ID>-subgroup-estimates.csv`` (UTF-8 with BOM), either at any
depth of the archive or inside a zip nested in it (the Cochrane Library download). When "Log-scale
data" is true, "GIV Mean"/"GIV SE" are on the log scale and "Mean", "CI start", "CI end" are
ratios. RevMan Web writes zeros where it computed nothing (e.g. an SMD analysis it did not
pool): a stored interval of zero width (``CI start == CI end``) is read as "not computed".
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
import xml.etree.ElementTree as ET
import xml.parsers.expat as expat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bayesmtor.errors import InputError
from bayesmtor.vocabulary import COUNT_MEASURES, is_ratio

__all__ = [
    "ANALYSIS_COLUMNS",
    "STORED_KEYS",
    "STUDY_COLUMNS",
    "RevManReview",
    "read_revman",
    "read_revman_review",
]

#: Columns of :attr:`RevManReview.studies`, in order (the ``revman_`` ones are RevMan's results).
STUDY_COLUMNS = (
    "comparison_no", "comparison", "outcome_no", "outcome", "subgroup_no", "subgroup",
    "data_type", "measure", "study_id", "study", "year",
    "events_trt", "n_trt", "events_ctl", "n_ctl",
    "mean_trt", "sd_trt", "mean_ctl", "sd_ctl", "yi", "sei", "o_e", "variance",
    "footnote", "line",
    "revman_estimate", "revman_ci_low", "revman_ci_high", "revman_se", "revman_weight",
)  # fmt: skip

#: RevMan's stored results of an analysis (scale: natural log for ratio measures).
STORED_KEYS = (
    "k", "estimate", "ci_low", "ci_high", "Q", "Q_df", "Q_pval", "I2", "tau2", "z", "pval",
    "Q_between", "Q_between_df", "Q_between_pval", "I2_between",
)  # fmt: skip

#: Columns of :attr:`RevManReview.analyses`, in order.
ANALYSIS_COLUMNS = (
    "comparison_no", "outcome_no", "subgroup_no", "comparison", "outcome", "subgroup",
    "data_type", "measure", "measure_label", "log_scale", "method", "model", "ci_level",
    "has_subgroups", "swap_events", "line", *(f"revman_{k}" for k in STORED_KEYS),
)  # fmt: skip

_OUTCOMES = {
    "DICH_OUTCOME": "dichotomous",
    "CONT_OUTCOME": "continuous",
    "IV_OUTCOME": "generic",
    "IPD_OUTCOME": "o_e",
}
#: RevMan's names of effect measures -> the package's (generic inverse variance and RevMan Web).
_MEASURE_NAMES = {
    "odds ratio": "OR",
    "peto odds ratio": "OR",
    "risk ratio": "RR",
    "relative risk": "RR",
    "risk difference": "RD",
    "hazard ratio": "HR",
    "mean difference": "MD",
    "std. mean difference": "SMD",
    "standardized mean difference": "SMD",
    "standardised mean difference": "SMD",
    "or": "OR",
    "rr": "RR",
    "rd": "RD",
    "hr": "HR",
    "md": "MD",
    "smd": "SMD",
    "peto_or": "OR",
}


@dataclass(frozen=True, eq=False)
class RevManReview:
    """The analyses of one RevMan review: study rows, analyses, and what reading repaired.

    Attributes
    ----------
    studies : pandas.DataFrame
        One row per study in each outcome (:data:`STUDY_COLUMNS`): where it sits
        (comparison, outcome, subgroup, with their numbers and names), the study label and
        year, the data entered (``events_*``/``n_*`` for dichotomous, ``mean_*``/``sd_*``/
        ``n_*`` for continuous, ``yi``/``sei`` for generic inverse variance, log scale for
        ratios), a footnote, the line of the file (``.rm5``; ``None`` for packages) and
        RevMan's per-study results (``revman_*``, natural log for ratios; ``revman_weight`` in
        percent).
    analyses : pandas.DataFrame
        One row per analysis (:data:`ANALYSIS_COLUMNS`): each outcome overall
        (``subgroup_no`` missing) and each of its subgroups, with the data type, measure,
        method (``MH``, ``IV``, ``PETO``), model (``fixed``/``random``), the confidence level
        RevMan used, whether RevMan analyses non-events instead of events (``swap_events``,
        RevMan's "swap events and non-events"), and RevMan's stored results as ``revman_<key>`` for the keys of
        :data:`STORED_KEYS` (missing where RevMan stored nothing).
    source : str
        The file name.
    title : str
        The review's title (empty if none).
    format : str
        ``"rm5"`` or ``"data package"``.
    notes : tuple of str
        The repairs made while reading (unescaped characters), each with its line and column.
    """

    studies: pd.DataFrame
    analyses: pd.DataFrame
    source: str
    title: str = ""
    format: str = "rm5"
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __repr__(self) -> str:
        return (
            f"RevManReview(source={self.source!r}, format={self.format!r}, "
            f"{len(self.analyses)} analyses, {len(self.studies)} study rows)"
        )


def read_revman(path: str | Path) -> pd.DataFrame:
    """Read a RevMan 5 file or a RevMan Web data package into a tidy table of study rows.

    Parameters
    ----------
    path : str or Path
        A ``.rm5`` file or a data-package ``.zip``.

    Returns
    -------
    pandas.DataFrame
        :attr:`RevManReview.studies`: one row per study and outcome, the data entered in plain
        columns and RevMan's computed per-study results in ``revman_*`` columns. The analyses
        and RevMan's pooled results are in :func:`read_revman_review`.

    Raises
    ------
    bayesmtor.errors.InputError
        For a file that is not a RevMan file, is truncated or malformed (naming the line and
        column, or the element), or holds an unreadable number (naming the element or CSV line
        and the attribute or column).
    """
    return read_revman_review(path).studies


def read_revman_review(path: str | Path) -> RevManReview:
    """Read a RevMan 5 file or a RevMan Web data package: study rows and analyses.

    Parameters
    ----------
    path : str or Path
        A ``.rm5`` file or a data-package ``.zip`` (told apart by their content, not their name).

    Returns
    -------
    RevManReview

    Raises
    ------
    bayesmtor.errors.InputError
        As :func:`read_revman`.
    """
    p = Path(path)
    name = p.name
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", source=str(path)) from exc
    if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
        return _read_package(data, name)
    return _read_rm5(data, name)


# --------------------------------------------------------------------------------------------
# bytes -> text
# --------------------------------------------------------------------------------------------

_DECL = re.compile(rb"^<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']")
_LATIN1 = {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "iso_8859-1", "cp819"}


def _cp1252_with_c1(data: bytes) -> str:
    """Windows-1252, its five undefined bytes read as the ISO-8859-1 C1 characters."""
    return data.decode("cp1252", errors="latin1fallback")


def _latin1_fallback(exc: UnicodeError) -> tuple[str, int]:
    assert isinstance(exc, UnicodeDecodeError)
    return exc.object[exc.start : exc.end].decode("latin-1"), exc.end


codecs.register_error("latin1fallback", _latin1_fallback)


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column of byte ``offset``."""
    before = data[:offset]
    line = before.count(b"\n") + 1
    return line, offset - (before.rfind(b"\n") + 1) + 1


def _decode(data: bytes, source: str) -> tuple[str, str]:
    """The document as text and the encoding used (see the module notes)."""
    if data.startswith(codecs.BOM_UTF8):
        data, enc = data[len(codecs.BOM_UTF8) :], "utf-8"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    else:
        m = _DECL.match(data.lstrip()[:300])
        enc = m.group(1).decode("ascii").lower() if m else "utf-8"
    if enc in _LATIN1 or enc in ("windows-1252", "cp1252"):
        return _cp1252_with_c1(data), "windows-1252"
    try:
        codecs.lookup(enc)
    except LookupError:
        raise InputError(
            f"unknown encoding {enc!r} declared in the XML declaration", source=source, line=1
        ) from None
    try:
        return data.decode(enc), enc
    except UnicodeDecodeError as exc:
        line, col = _position(data, exc.start)
        declared = "declared" if enc != "utf-8" or _DECL.match(data.lstrip()[:300]) else "assumed"
        raise InputError(
            f"column {col}: byte 0x{data[exc.start]:02X} is not valid {enc.upper()} (the encoding "
            f"{declared} for this file); declare the file's real encoding in its first line, e.g. "
            '<?xml version="1.0" encoding="windows-1252"?>',
            source=source,
            line=line,
        ) from None


# --------------------------------------------------------------------------------------------
# repairs of unescaped characters
# --------------------------------------------------------------------------------------------

_BARE_AMP = re.compile(r"&(?!(?:[A-Za-z_:][\w.:-]*|#[0-9]+|#x[0-9A-Fa-f]+);)")
_BARE_LT = re.compile(r"<(?![A-Za-z_:/!?])")


def _repair(text: str) -> tuple[str, list[tuple[int, int]], list[tuple[int, str]]]:
    """Escape bare ``&`` and ``<``; return the text, the insertions and what was repaired.

    Insertions are ``(offset in the original text, characters added)``.
    """
    found = sorted(
        [(m.start(), "&", "&amp;") for m in _BARE_AMP.finditer(text)]
        + [(m.start(), "<", "&lt;") for m in _BARE_LT.finditer(text)]
    )
    if not found:
        return text, [], []
    parts, inserted, repairs, last = [], [], [], 0
    for pos, char, repl in found:
        parts.append(text[last:pos])
        parts.append(repl)
        inserted.append((pos, len(repl) - 1))
        repairs.append((pos, char))
        last = pos + 1
    parts.append(text[last:])
    return "".join(parts), inserted, repairs


def _line_col(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _original_offset(offset: int, inserted: list[tuple[int, int]]) -> int:
    """Offset in the original text of ``offset`` in the repaired text."""
    shift = 0
    for pos, added in inserted:
        if pos + shift >= offset:
            break
        shift += added
        if pos + shift >= offset:  # inside an inserted entity: its original character
            return pos
    return offset - shift


# --------------------------------------------------------------------------------------------
# .rm5
# --------------------------------------------------------------------------------------------


def _parse_xml(data: bytes, source: str) -> tuple[ET.Element, dict[int, int], list[str]]:
    """The element tree, the line of every element and the repairs made (see module notes)."""
    text, _enc = _decode(data, source)
    # the text is decoded already: blank out the declaration, keeping every position
    text = re.sub(r"^\s*<\?xml[^>]*\?>", lambda m: " " * len(m.group(0)), text, count=1)
    repaired, inserted, repairs = _repair(text)
    raw = repaired.encode("utf-8")
    builder = ET.TreeBuilder()
    lines: dict[int, int] = {}
    parser = expat.ParserCreate("utf-8")
    parser.buffer_text = True

    def start(tag: str, attrs: dict[str, str]) -> None:
        lines[id(builder.start(tag, attrs))] = parser.CurrentLineNumber

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(raw, True)
        root = builder.close()
    except expat.ExpatError as exc:
        # expat counts lines from 1 and columns from 0, in characters of the repaired text
        line, col = exc.lineno, exc.offset
        start_of_line = 0
        for _ in range(line - 1):
            start_of_line = repaired.index("\n", start_of_line) + 1
        char_off = start_of_line + col
        orig = _original_offset(char_off, inserted)
        oline, ocol = _line_col(text, orig)
        reason = expat.errors.messages[exc.code]
        hint = ""
        if orig >= len(text.rstrip()) or reason in ("no element found", "unclosed token"):
            hint = " (the file ends before the XML is complete: is it truncated?)"
        raise InputError(
            f"column {ocol}: not a well-formed RevMan 5 XML file: {reason}{hint}",
            source=source,
            line=oline,
        ) from None
    notes = []
    for pos, char in repairs:
        ln, col = _line_col(text, pos)
        what = "'&' that begins no entity" if char == "&" else "'<' that begins no tag"
        notes.append(f"line {ln}, column {col}: unescaped {what} read as the character itself")
    return root, lines, notes


def _read_rm5(data: bytes, source: str) -> RevManReview:
    root, lines, notes = _parse_xml(data, source)
    if root.tag != "COCHRANE_REVIEW":
        raise InputError(
            f"the root element is <{root.tag}>, not <COCHRANE_REVIEW>: not a RevMan 5 file",
            source=source,
            line=lines.get(id(root)),
        )
    ctx = _Rm5(source, lines)
    names = {}
    for st in root.iterfind("STUDIES_AND_REFERENCES/STUDIES/INCLUDED_STUDIES/STUDY"):
        names[st.get("ID", "")] = (st.get("NAME") or st.get("ID", ""), _year(st.get("YEAR")))
    ctx.names = names
    title_el = root.find("COVER_SHEET/TITLE")
    title = "".join(title_el.itertext()).strip() if title_el is not None else ""
    data_el = root.find("ANALYSES_AND_DATA")
    if data_el is None:
        raise InputError(
            "no <ANALYSES_AND_DATA> element: the review holds no analyses", source=source
        )
    for comp in data_el.iterfind("COMPARISON"):
        c_no = ctx.integer(comp, "NO")
        c_name = _child_text(comp, "NAME")
        for outcome in comp:
            if outcome.tag in _OUTCOMES:
                ctx.outcome(outcome, c_no, c_name)
    studies = pd.DataFrame(ctx.rows, columns=list(STUDY_COLUMNS))
    analyses = pd.DataFrame(ctx.analyses, columns=list(ANALYSIS_COLUMNS))
    return RevManReview(
        studies=_typed(studies), analyses=analyses, source=source, title=title,
        format="rm5", notes=tuple(notes),
    )  # fmt: skip


def _child_text(elem: ET.Element, tag: str) -> str:
    child = elem.find(tag)
    return " ".join("".join(child.itertext()).split()) if child is not None else ""


def _year(value: str | None) -> int | None:
    if value is None:
        return None
    m = re.match(r"\s*(\d{4})", value)
    return int(m.group(1)) if m else None


class _Rm5:
    """Collects the study rows and analyses of a parsed ``.rm5`` document."""

    def __init__(self, source: str, lines: dict[int, int]) -> None:
        self.source = source
        self.lines = lines
        self.names: dict[str, tuple[str, int | None]] = {}
        self.rows: list[dict[str, Any]] = []
        self.analyses: list[dict[str, Any]] = []

    def error(self, elem: ET.Element, message: str, attr: str | None = None) -> InputError:
        where = f"<{elem.tag}>" + (f" attribute {attr}" if attr else "")
        return InputError(f"{where}: {message}", source=self.source, line=self.lines.get(id(elem)))

    def number(self, elem: ET.Element, attr: str) -> float | None:
        """A numeric attribute; empty or absent is missing, anything else must be a number."""
        raw = elem.get(attr)
        if raw is None or not raw.strip():
            return None
        try:
            value = float(raw)
        except ValueError:
            raise self.error(elem, f"{raw!r} is not a number", attr) from None
        if not math.isfinite(value):
            raise self.error(elem, f"{raw!r} is not a finite number", attr)
        return value

    def integer(self, elem: ET.Element, attr: str) -> int:
        value = self.number(elem, attr)
        if value is None or value != int(value):
            raise self.error(elem, "a whole number is required", attr)
        return int(value)

    def outcome(self, el: ET.Element, c_no: int, c_name: str) -> None:
        data_type = _OUTCOMES[el.tag]
        o_no = self.integer(el, "NO")
        name = _child_text(el, "NAME")
        label, measure, log_scale = self._measure(el, data_type)
        method = (el.get("METHOD") or "IV").upper()
        if method not in ("MH", "IV", "PETO"):
            raise self.error(el, f"unknown method {method!r} (RevMan 5 has MH, IV, PETO)", "METHOD")
        model = "random" if (el.get("RANDOM") or "NO").upper() == "YES" else "fixed"
        ci_level = self.number(el, "CI_TOTAL") or 95.0
        prefix = el.tag.split("_", 1)[0]
        subgroups = [s for s in el if s.tag == f"{prefix}_SUBGROUP"]
        base = {
            "comparison_no": c_no, "outcome_no": o_no, "comparison": c_name, "outcome": name,
            "data_type": data_type, "measure": measure, "measure_label": label,
            "log_scale": log_scale, "method": "PETO" if label == "PETO_OR" else method,
            "model": model, "ci_level": ci_level,
            "swap_events": (el.get("SWAP_EVENTS") or "NO").upper() == "YES",
        }  # fmt: skip
        ratio = log_scale
        self.analyses.append(
            {**base, "subgroup_no": None, "subgroup": None, "has_subgroups": bool(subgroups),
             "line": self.lines.get(id(el)), **self._stored(el, ratio, model, overall=True)}
        )  # fmt: skip
        groups = [(None, None, el)] if not subgroups else []
        for sg in subgroups:
            s_no = self.integer(sg, "NO")
            s_name = _child_text(sg, "NAME")
            groups.append((s_no, s_name, sg))
            self.analyses.append(
                {**base, "subgroup_no": s_no, "subgroup": s_name, "has_subgroups": False,
                 "line": self.lines.get(id(sg)), **self._stored(sg, ratio, model, overall=False)}
            )  # fmt: skip
        for s_no, s_name, holder in groups:
            for row in holder:
                if row.tag == f"{prefix}_DATA":
                    self.rows.append(self._row(row, base, s_no, s_name, data_type, ratio))

    def _measure(self, el: ET.Element, data_type: str) -> tuple[str, str, bool]:
        """RevMan's label, the package's measure and whether it is pooled on the log scale."""
        attr = el.get("EFFECT_MEASURE")
        if attr is None:
            attr = _child_text(el, "EFFECT_MEASURE")
        label = (attr or "").strip()
        measure = _MEASURE_NAMES.get(label.lower())
        if data_type == "generic":
            log = (el.get("LOG_DATA") or "YES").upper() == "YES"
            return label, measure or "generic", log
        if data_type == "o_e":  # O-E and variance: Peto's log odds ratio or a log hazard ratio
            return label or "Peto Odds Ratio", measure if measure in ("OR", "HR") else "OR", True
        if measure is None or (data_type == "dichotomous") != (measure in COUNT_MEASURES):
            raise self.error(el, f"unknown effect measure {label!r} for {data_type} data",
                             "EFFECT_MEASURE")  # fmt: skip
        return label.upper(), measure, is_ratio(measure)

    def _stored(self, el: ET.Element, ratio: bool, model: str, *, overall: bool) -> dict[str, Any]:
        g = self.number
        est, lo, hi = g(el, "EFFECT_SIZE"), g(el, "CI_START"), g(el, "CI_END")
        if ratio:
            est, lo, hi = (_ln(x) for x in (est, lo, hi))
        out = {
            "k": g(el, "STUDIES"), "estimate": est, "ci_low": lo, "ci_high": hi,
            "Q": g(el, "CHI2"), "Q_df": g(el, "DF"), "Q_pval": g(el, "P_CHI2"), "I2": g(el, "I2"),
            "tau2": g(el, "TAU2"), "z": g(el, "Z"), "pval": g(el, "P_Z"),
            "Q_between": None, "Q_between_df": None, "Q_between_pval": None, "I2_between": None,
        }  # fmt: skip
        if model == "fixed":
            out["tau2"] = None  # RevMan writes TAU2="0.0" for fixed-effect analyses: no estimate
        if overall and (el.get("SUBGROUPS") or "NO").upper() == "YES":
            out["Q_between"] = g(el, "Q")
            out["Q_between_pval"] = g(el, "P_Q")
            out["I2_between"] = g(el, "I2_Q")
        return {f"revman_{k}": v for k, v in out.items()}

    def _row(self, row, base, s_no, s_name, data_type, ratio) -> dict[str, Any]:
        g = self.number
        sid = row.get("STUDY_ID", "")
        if not sid:
            raise self.error(row, "no STUDY_ID", "STUDY_ID")
        study, year = self.names.get(sid, (_decode_id(sid), None))
        out: dict[str, Any] = {
            **{k: base[k] for k in ("comparison_no", "comparison", "outcome_no", "outcome",
                                    "data_type", "measure")},
            "subgroup_no": s_no, "subgroup": s_name, "study_id": sid, "study": study,
            "year": year, "line": self.lines.get(id(row)),
            "footnote": _child_text(row, "FOOTNOTE") or None,
        }  # fmt: skip
        if data_type == "dichotomous":
            for col, attr in (("events_trt", "EVENTS_1"), ("n_trt", "TOTAL_1"),
                              ("events_ctl", "EVENTS_2"), ("n_ctl", "TOTAL_2")):  # fmt: skip
                out[col] = g(row, attr)
        elif data_type == "continuous":
            for col, attr in (("mean_trt", "MEAN_1"), ("sd_trt", "SD_1"), ("n_trt", "TOTAL_1"),
                              ("mean_ctl", "MEAN_2"), ("sd_ctl", "SD_2"), ("n_ctl", "TOTAL_2")):  # fmt: skip
                out[col] = g(row, attr)
        elif data_type == "generic":
            # the estimate entered (log scale for ratios) and its SE; older files hold it only
            # in EFFECT_SIZE (ratio scale for ratios)
            yi = g(row, "ESTIMATE")
            if yi is None:
                yi = g(row, "EFFECT_SIZE")
                yi = _ln(yi) if ratio else yi
            out["yi"], out["sei"] = yi, g(row, "SE")
            out["n_trt"], out["n_ctl"] = g(row, "TOTAL_1"), g(row, "TOTAL_2")
        else:
            out["o_e"], out["variance"] = g(row, "O_E"), g(row, "VAR")
        est, lo, hi = g(row, "EFFECT_SIZE"), g(row, "CI_START"), g(row, "CI_END")
        if ratio:
            est, lo, hi = (_ln(x) for x in (est, lo, hi))
        out.update(revman_estimate=est, revman_ci_low=lo, revman_ci_high=hi,
                   revman_se=g(row, "SE") if data_type != "generic" else None,
                   revman_weight=g(row, "WEIGHT"))  # fmt: skip
        return out


def _decode_id(sid: str) -> str:
    """``STD-MRC_x002d_1`` -> ``STD-MRC-1`` (RevMan escapes characters as ``_xHHHH_``)."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), sid)


def _ln(x: float | None) -> float | None:
    if x is None:
        return None
    return math.log(x) if x > 0 else None


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as float (missing as NaN), labels as objects."""
    for col in frame.columns:
        if col in ("comparison", "outcome", "subgroup", "data_type", "measure", "study_id",
                   "study", "footnote"):  # fmt: skip
            continue
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    return frame


# --------------------------------------------------------------------------------------------
# RevMan Web data package
# --------------------------------------------------------------------------------------------

_PKG_FILES = ("overall-estimates-and-settings", "data-rows", "subgroup-estimates")


def _package_members(data: bytes, source: str, depth: int = 0) -> dict[str, bytes]:
    """The three analysis-data CSVs, found at any depth or in a nested zip."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"not a readable zip archive ({exc}): truncated?", source=source) from None
    found: dict[str, bytes] = {}
    try:
        for kind in _PKG_FILES:
            hits = [n for n in names if n.endswith(f"-{kind}.csv") and "analysis-data" in n]
            if len(hits) > 1:
                raise InputError(
                    f"the archive holds {len(hits)} '*-{kind}.csv' files ({', '.join(hits)}); "
                    "bayesmtor reads a package of one review",
                    source=source,
                )
            if hits:
                found[kind] = zf.read(hits[0])
        if found:
            return found
        if depth < 2:
            for n in names:
                if n.lower().endswith(".zip"):
                    inner = _package_members(zf.read(n), f"{source}!{n}", depth + 1)
                    if inner:
                        return inner
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InputError(f"a member of the archive cannot be read ({exc}): truncated?",
                         source=source) from None  # fmt: skip
    return found


def _read_package(data: bytes, source: str) -> RevManReview:
    members = _package_members(data, source)
    missing = [k for k in _PKG_FILES[:2] if k not in members]
    if missing:
        raise InputError(
            "not a RevMan Web data package: no "
            + " and no ".join(f"'<ID>-analysis-data/<ID>-{k}.csv'" for k in missing)
            + " in the archive",
            source=source,
        )
    overall = _csv_rows(
        members["overall-estimates-and-settings"], source, "overall-estimates-and-settings"
    )
    rows = _csv_rows(members["data-rows"], source, "data-rows")
    subs = _csv_rows(members.get("subgroup-estimates", b""), source, "subgroup-estimates")
    pkg = _Package(source)
    for line, rec in overall:
        pkg.outcome(line, rec, subs, rows)
    studies = pd.DataFrame(pkg.rows, columns=list(STUDY_COLUMNS))
    analyses = pd.DataFrame(pkg.analyses, columns=list(ANALYSIS_COLUMNS))
    return RevManReview(studies=_typed(studies), analyses=analyses, source=source,
                        format="data package")  # fmt: skip


def _csv_rows(data: bytes, source: str, kind: str) -> list[tuple[int, dict[str, str]]]:
    if not data:
        return []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _position(data, exc.start)
        raise InputError(
            f"{kind}.csv, column {col}: not valid UTF-8", source=source, line=line
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return []
    out = []
    try:
        for rec in reader:
            if not any(cell.strip() for cell in rec):
                continue
            if len(rec) != len(header):
                raise InputError(
                    f"{kind}.csv: {len(rec)} fields where the header has {len(header)} "
                    "(truncated or malformed row)",
                    source=source,
                    line=reader.line_num,
                )
            out.append((reader.line_num, dict(zip(header, rec, strict=True))))
    except csv.Error as exc:
        raise InputError(f"{kind}.csv: {exc}", source=source, line=reader.line_num) from None
    return out


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "yes", "1")


class _Package:
    """Collects study rows and analyses of a data package."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.rows: list[dict[str, Any]] = []
        self.analyses: list[dict[str, Any]] = []

    def num(self, rec: dict[str, str], col: str, kind: str, line: int) -> float | None:
        raw = rec.get(col)
        if raw is None or not raw.strip() or raw.strip() in ("#N/A", "NA"):
            return None
        try:
            value = float(raw.strip().rstrip("%"))
        except ValueError:
            raise InputError(f"{kind}.csv: {raw!r} is not a number", source=self.source,
                             line=line, column=col) from None  # fmt: skip
        return value

    def outcome(self, line: int, rec: dict[str, str], subs: list, rows: list) -> None:
        kind = "overall-estimates-and-settings"
        c_no = int(self.num(rec, "Analysis group", kind, line) or 0)
        o_no = int(self.num(rec, "Analysis number", kind, line) or 0)
        dtype_raw = rec.get("Data type", "").strip().lower()
        if dtype_raw.startswith("dich"):
            data_type = "dichotomous"
        elif dtype_raw.startswith("cont"):
            data_type = "continuous"
        elif "o-e" in dtype_raw:
            data_type = "o_e"
        elif "generic" in dtype_raw or "inverse" in dtype_raw:
            data_type = "generic"
        else:
            raise InputError(f"{kind}.csv: unknown data type {rec.get('Data type')!r}",
                             source=self.source, line=line, column="Data type")  # fmt: skip
        label = rec.get("Effect measure", "").strip()
        measure = _MEASURE_NAMES.get(label.lower(), "generic" if data_type == "generic" else None)
        if measure is None:
            raise InputError(f"{kind}.csv: unknown effect measure {label!r}", source=self.source,
                             line=line, column="Effect measure")  # fmt: skip
        log_scale = _truthy(rec.get("Log-scale data")) or is_ratio(measure)
        method = rec.get("Statistical method", "IV").strip().upper()
        if label.lower().startswith("peto"):
            method = "PETO"
        if method not in ("MH", "IV", "PETO"):
            raise InputError(f"{kind}.csv: unknown statistical method {method!r}",
                             source=self.source, line=line, column="Statistical method")  # fmt: skip
        model = "random" if "random" in rec.get("Analysis model", "").lower() else "fixed"
        ci = self.num({"c": rec.get("Estimate CI", "95")}, "c", kind, line) or 95.0
        comparison = rec.get("Analysis group name", "").strip()
        name = rec.get("Analysis name", "").strip()
        mine = [(ln, r) for ln, r in subs
                if r.get("Analysis group") == rec.get("Analysis group")
                and r.get("Analysis number") == rec.get("Analysis number")]  # fmt: skip
        base = {
            "comparison_no": c_no, "outcome_no": o_no, "comparison": comparison, "outcome": name,
            "data_type": data_type, "measure": measure, "measure_label": label,
            "log_scale": log_scale, "method": method, "model": model, "ci_level": ci,
            "swap_events": _truthy(rec.get("Swap event and non-event")),
        }  # fmt: skip
        stored = self._stored(rec, kind, line, log_scale, model, overall=True)
        self.analyses.append({**base, "subgroup_no": None, "subgroup": None,
                              "has_subgroups": bool(mine), "line": line, **stored})  # fmt: skip
        numbers: dict[str, int] = {}
        for ln, r in mine:
            s_name = r.get("Subgroup", "").strip()
            s_no = int(self.num(r, "Subgroup number", "subgroup-estimates", ln) or len(numbers) + 1)
            numbers[s_name] = s_no
            st = self._stored(r, "subgroup-estimates", ln, log_scale, model, overall=False)
            self.analyses.append({**base, "subgroup_no": s_no, "subgroup": s_name,
                                  "has_subgroups": False, "line": ln, **st})  # fmt: skip
        for ln, r in rows:
            if r.get("Analysis group") != rec.get("Analysis group") or r.get(
                "Analysis number"
            ) != rec.get("Analysis number"):
                continue
            self.rows.append(self._row(ln, r, base, numbers, data_type, log_scale))

    def _stored(self, rec, kind, line, log_scale, model, *, overall) -> dict[str, Any]:
        g = lambda col: self.num(rec, col, kind, line)  # noqa: E731
        est, lo, hi = g("Mean"), g("CI start"), g("CI end")
        computed = not (lo is not None and hi is not None and lo == hi)
        if log_scale:
            est, lo, hi = (_ln(x) for x in (est, lo, hi))
        out = dict.fromkeys(STORED_KEYS)
        if computed:
            out.update(
                estimate=est, ci_low=lo, ci_high=hi, Q=g("Heterogeneity Chi²"),
                Q_df=g("Heterogeneity df"), Q_pval=g("Heterogeneity P"),
                I2=g("Heterogeneity I²"), z=g("Effect Z"), pval=g("Effect P"),
                tau2=g("Heterogeneity Tau²") if model == "random" else None,
            )  # fmt: skip
            if overall:
                out.update(Q_between=g("Subgroup Chi²"), Q_between_df=g("Subgroup df"),
                           Q_between_pval=g("Subgroup P"), I2_between=g("Subgroup I²"))  # fmt: skip
        return {f"revman_{k}": v for k, v in out.items()}

    def _row(self, ln, r, base, numbers, data_type, log_scale) -> dict[str, Any]:
        kind = "data-rows"
        g = lambda col: self.num(r, col, kind, ln)  # noqa: E731
        s_name = r.get("Subgroup", "").strip() or None
        s_no = None
        if s_name is not None:
            s_no = numbers.setdefault(s_name, len(numbers) + 1)
        year = _year(r.get("Study year"))
        out: dict[str, Any] = {
            **{k: base[k] for k in ("comparison_no", "comparison", "outcome_no", "outcome",
                                    "data_type", "measure")},
            "subgroup_no": s_no, "subgroup": s_name, "study_id": r.get("Study", "").strip(),
            "study": r.get("Study", "").strip(), "year": year, "line": ln,
            "footnote": r.get("Footnotes", "").strip() or None,
        }  # fmt: skip
        if data_type == "dichotomous":
            out.update(events_trt=g("Experimental cases"), n_trt=g("Experimental N"),
                       events_ctl=g("Control cases"), n_ctl=g("Control N"))  # fmt: skip
        elif data_type == "continuous":
            out.update(mean_trt=g("Experimental mean"), sd_trt=g("Experimental SD"),
                       n_trt=g("Experimental N"), mean_ctl=g("Control mean"),
                       sd_ctl=g("Control SD"), n_ctl=g("Control N"))  # fmt: skip
        elif data_type == "generic":
            out.update(yi=g("GIV Mean"), sei=g("GIV SE"), n_trt=g("Experimental N"),
                       n_ctl=g("Control N"))  # fmt: skip
        else:
            out.update(o_e=g("O-E"), variance=g("Variance"))
        est, lo, hi = g("Mean"), g("CI start"), g("CI end")
        if lo is not None and hi is not None and lo == hi:
            est = lo = hi = None
        if log_scale:
            est, lo, hi = (_ln(x) for x in (est, lo, hi))
        weight = g("Weight")
        out.update(revman_estimate=est, revman_ci_low=lo, revman_ci_high=hi, revman_se=None,
                   revman_weight=weight if est is not None else None)  # fmt: skip
        return out
