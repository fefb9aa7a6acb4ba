"""Design matrices of a meta-regression, built as R's ``model.matrix`` (so metafor's names carry over).

* The intercept comes first and is named ``intrcpt`` (metafor's name).
* A moderator column whose every non-empty cell is a finite number enters as is (no centring);
  its term is the column name.
* Any other column is categorical: its levels (among the studies analysed) are sorted as text
  (by code point, so ``"B" < "a"``; R sorts by the locale's collation), the first is the
  reference, and each other level is a 0/1 column named column + level with no separator
  (``allocrandom``, ``allocsystematic``). Without an intercept the first categorical moderator
  gets a column for every level (R's ``~ 0 + alloc``).
* Terms follow the order of ``mods``.

Refused, with the file, line and column where a cell is at fault: an empty moderator cell, a
non-finite number, a moderator with a single level, a rank-deficient design (the message names
the terms that are collinear), and ``k <= p`` (at least one more study than coefficients).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayesmtor.errors import InputError

INTERCEPT = "intrcpt"
# Singular values below this fraction of the largest (after scaling every column to unit
# length) count as zero: the tolerance of R's qr() (1e-7) is far looser, so a design refused
# here is rank-deficient for metafor too.
_RANK_TOL = 1e-10


@dataclass(frozen=True)
class Moderator:
    """One moderator of a design: its column, kind and (categorical) levels."""

    column: str
    kind: str  # "numeric" or "categorical"
    levels: tuple[str, ...] = ()  # sorted; the first is the reference unless all are coded
    terms: tuple[str, ...] = ()  # the design columns it gives


@dataclass(frozen=True, eq=False)
class Design:
    """A meta-regression design: ``matrix`` (k x p) with named columns ``terms``.

    ``moderators`` describes how each moderator was coded; ``intercept`` whether the first
    column is ``intrcpt``. ``explicit`` marks a matrix given by the user as is.
    """

    matrix: np.ndarray
    terms: tuple[str, ...]
    intercept: bool
    moderators: tuple[Moderator, ...] = ()
    explicit: bool = False
    studies: tuple[str, ...] = field(default=())

    @property
    def k(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def p(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def mods(self) -> tuple[str, ...]:
        """The moderator columns, in order."""
        return tuple(m.column for m in self.moderators)

    @property
    def tested(self) -> tuple[int, ...]:
        """Positions of the coefficients of the omnibus test QM: all but the intercept."""
        return tuple(range(1 if self.intercept else 0, self.p))

    def frame(self) -> pd.DataFrame:
        """The design as a DataFrame (one row per study, one column per term)."""
        index = list(self.studies) if self.studies else None
        return pd.DataFrame(self.matrix, columns=list(self.terms), index=index)

    def row_for(self, values: dict[str, Any]) -> np.ndarray:
        """The design row of a new study with moderator ``values`` (column -> value)."""
        if self.explicit:
            raise InputError("an explicit design matrix has no moderator columns to code")
        out = [1.0] if self.intercept else []
        for mod in self.moderators:
            if mod.column not in values:
                raise InputError(f"no value for moderator '{mod.column}'", column=mod.column)
            val = values[mod.column]
            if mod.kind == "numeric":
                out.append(float(val))
                continue
            text = str(val)
            if text not in mod.levels:
                raise InputError(
                    f"level {text!r} is not among the levels {list(mod.levels)}",
                    column=mod.column,
                )
            coded = mod.levels if len(mod.terms) == len(mod.levels) else mod.levels[1:]
            out.extend(1.0 if text == lev else 0.0 for lev in coded)
        return np.asarray(out, dtype=float)


def _as_mods(mods: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(mods, str):
        mods = [m for m in mods.split(",")]
    names = tuple(str(m).strip() for m in mods)
    if not names or any(not n for n in names):
        raise InputError(
            "give one or more moderator column names (e.g. 'ablat' or 'ablat,alloc')",
            column="mods",
        )
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"moderator {dup[0]!r} is named twice", column="mods")
    return names


def _column_of(table: pd.DataFrame, name: str) -> str:
    """``name`` as a column of ``table``: as given, else as the file reader normalises names
    (lower case, spaces and hyphens as ``_``), so ``--mods IL2RA`` finds the column ``il2ra``."""
    if name in table.columns:
        return name
    from bayesmtor.inputs import _normalise_name

    norm = _normalise_name(name)
    return norm if norm in table.columns else name


def _where(lines: np.ndarray | None, pos: int) -> dict[str, int | None]:
    return {"row": pos + 1, "line": int(lines[pos]) if lines is not None else None}


def _is_empty(val: Any) -> bool:
    if val is None:
        return True
    if isinstance(val, str):
        return val.strip() == ""
    try:
        return bool(pd.isna(val))
    except (TypeError, ValueError):
        return False


def _as_number(val: Any) -> float | None:
    """The cell as a number, or None if it is not one (text, booleans)."""
    if isinstance(val, (bool, np.bool_)):
        return None
    if isinstance(val, (int, float, np.integer, np.floating)):
        return float(val)
    try:
        return float(str(val).strip())
    except ValueError:
        return None


def _code_column(
    name: str, cells: np.ndarray, *, full: bool, where: Any
) -> tuple[Moderator, np.ndarray]:
    """One moderator coded: a numeric column, or 0/1 columns of its levels."""
    numbers = [_as_number(c) for c in cells]
    if all(x is not None for x in numbers):
        values = np.asarray(numbers, dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            pos = int(bad[0])
            raise InputError(
                f"moderator value {cells[pos]!r} is not a finite number",
                column=name, **where(pos),
            )  # fmt: skip
        return Moderator(name, "numeric", (), (name,)), values[:, None]
    text = np.asarray([str(c).strip() if isinstance(c, str) else str(c) for c in cells], object)
    levels = tuple(sorted(set(text.tolist())))
    if len(levels) < 2:
        raise InputError(
            f"moderator '{name}' has a single level {levels[0]!r} among the studies analysed; "
            "a constant cannot explain differences between studies",
            column=name,
        )
    coded = levels if full else levels[1:]
    cols = np.column_stack([(text == lev).astype(float) for lev in coded])
    return Moderator(name, "categorical", levels, tuple(f"{name}{lev}" for lev in coded)), cols


def model_matrix(
    table: pd.DataFrame,
    mods: str | Sequence[str],
    *,
    intercept: bool = True,
    source: str | None = None,
    lines: Any = None,
    studies: Sequence[str] | None = None,
    rows: Any = None,
) -> Design:
    """The design of ``mods`` on ``table``, as R's ``model.matrix`` (see the module docstring).

    Parameters
    ----------
    table : pandas.DataFrame
        The study table holding the moderator columns (every row is checked).
    mods : str or sequence of str
        Moderator column names, in order (a string is split at commas).
    intercept : bool
        Include ``intrcpt`` first (default); without it the first categorical moderator is
        coded with a column for every level.
    source : str, optional
        Where the table came from (a file name), for error messages.
    lines : array of int, optional
        The file line of each row, for error messages.
    studies : sequence of str, optional
        The study label of each row, for error messages.
    rows : array of bool, optional
        The rows that enter the analysis (default all); levels are those of these rows.

    Raises
    ------
    InputError
        For an unknown column, an empty or non-finite cell, a single-level moderator, a
        rank-deficient design (naming the collinear terms) or ``k <= p``.
    """
    names = _as_mods(mods)
    line_arr = None if lines is None else np.asarray(lines)
    labels = [str(s) for s in studies] if studies is not None else None
    keep = np.ones(len(table), bool) if rows is None else np.asarray(rows, dtype=bool)

    def where(pos_in_kept: int) -> dict[str, Any]:
        pos = int(np.flatnonzero(keep)[pos_in_kept])
        out = {"source": source, **_where(line_arr, pos)}
        if labels is not None:
            out["study"] = labels[pos]
        return out

    names = tuple(_column_of(table, n) for n in names)
    for name in names:
        if name not in table.columns:
            known = [c for c in table.columns]
            raise InputError(
                f"no moderator column '{name}'; the study table has {known}",
                source=source, column=name,
            )  # fmt: skip
        cells = table[name].to_numpy(dtype=object)
        empty = [i for i, c in enumerate(cells) if _is_empty(c)]
        if empty:
            pos = empty[0]
            at = {"source": source, **_where(line_arr, pos)}
            if labels is not None:
                at["study"] = labels[pos]
            raise InputError(
                f"empty moderator cell; every study needs a value in '{name}' (a meta-regression "
                "does not guess a missing moderator: fill it in or leave the study out)",
                column=name, **at,
            )  # fmt: skip
    blocks: list[np.ndarray] = []
    moderators = []
    terms: list[str] = []
    if intercept:
        blocks.append(np.ones((int(keep.sum()), 1)))
        terms.append(INTERCEPT)
    full_done = intercept
    for name in names:
        cells = table[name].to_numpy(dtype=object)[keep]
        is_cat = any(_as_number(c) is None for c in cells)
        mod, cols = _code_column(name, cells, full=not full_done and is_cat, where=where)
        full_done = full_done or is_cat
        moderators.append(mod)
        blocks.append(cols)
        terms.extend(mod.terms)
    matrix = np.column_stack(blocks) if blocks else np.empty((int(keep.sum()), 0))
    kept_labels = tuple(np.asarray(labels, dtype=object)[keep]) if labels is not None else ()
    design = Design(matrix, tuple(terms), intercept, tuple(moderators), False, kept_labels)
    check_design(design, source=source)
    return design


def explicit_design(
    matrix: Any, terms: Sequence[str] | None = None, *, intercept: bool | None = None
) -> Design:
    """A design matrix given as is (ndarray or DataFrame; its columns are the terms).

    ``intercept``: whether the first column is an intercept (default: a first column of ones).
    """
    if isinstance(matrix, pd.DataFrame):
        terms = [str(c) for c in matrix.columns] if terms is None else list(terms)
        matrix = matrix.to_numpy()
    try:
        x = np.array(matrix, dtype=float, ndmin=2)
    except (TypeError, ValueError):
        raise InputError("the design matrix must be numeric", column="mods") from None
    if x.ndim != 2:
        raise InputError("the design matrix must be 2-D (studies x terms)", column="mods")
    if terms is None:
        terms = [f"x{j + 1}" for j in range(x.shape[1])]
    terms = tuple(str(t) for t in terms)
    if len(terms) != x.shape[1]:
        raise InputError(f"{len(terms)} term names for {x.shape[1]} columns", column="mods")
    if not np.all(np.isfinite(x)):
        i, j = np.argwhere(~np.isfinite(x))[0]
        raise InputError(
            f"design value {x[i, j]!r} is not a finite number", row=int(i) + 1, column=terms[j]
        )
    if intercept is None:
        intercept = bool(x.shape[1] > 0 and np.all(x[:, 0] == 1.0))
    design = Design(x, terms, bool(intercept), (), True)
    check_design(design)
    return design


def collinear_terms(matrix: np.ndarray, terms: Sequence[str]) -> list[str] | None:
    """The terms of a linear dependence among the columns of ``matrix``, or None if full rank."""
    norms = np.linalg.norm(matrix, axis=0)
    if np.any(norms == 0):
        return [terms[int(np.flatnonzero(norms == 0)[0])]]
    scaled = matrix / norms
    _, sv, vt = np.linalg.svd(scaled, full_matrices=True)
    if sv.size == matrix.shape[1] and sv[-1] > _RANK_TOL * sv[0]:
        return None
    null = vt[-1]
    big = np.abs(null) > 1e-8 * np.abs(null).max()
    return [terms[j] for j in np.flatnonzero(big)]


def check_design(design: Design, *, source: str | None = None) -> None:
    """Refuse ``k <= p`` and a rank-deficient design (naming the collinear terms)."""
    k, p = design.k, design.p
    if p == 0:
        raise InputError("the design has no column (no moderator and no intercept)", column="mods")
    if k <= p:
        raise InputError(
            f"{k} studies cannot estimate {p} coefficients ({', '.join(design.terms)}) and the "
            f"residual heterogeneity: a meta-regression needs more studies than coefficients "
            f"(k > p)",
            source=source, column="mods",
        )  # fmt: skip
    bad = collinear_terms(design.matrix, design.terms)
    if bad is not None:
        why = (
            f"term '{bad[0]}' is zero for every study analysed"
            if len(bad) == 1
            else "terms " + ", ".join(f"'{t}'" for t in bad) + " are collinear (one is a "
            "linear combination of the others among the studies analysed)"
        )
        raise InputError(
            f"the design is rank-deficient: {why}; drop or merge one of them",
            source=source, column="mods",
        )  # fmt: skip


def prediction_rows(design: Design, moderator: str, values: Any) -> np.ndarray:
    """Design rows with ``moderator`` at each of ``values`` (a number, or a level of a
    categorical moderator) and every other moderator at its mean (numbers) or first level."""
    typical: dict[str, Any] = {}
    for mod in design.moderators:
        if mod.kind == "numeric":
            typical[mod.column] = float(design.matrix[:, design.terms.index(mod.terms[0])].mean())
        else:
            typical[mod.column] = mod.levels[0]
    return np.vstack([design.row_for({**typical, moderator: val}) for val in values])


@dataclass(frozen=True, eq=False)
class RegressionData:
    """The studies of a meta-regression: estimates, variances, design, labels, exclusions."""

    yi: np.ndarray
    vi: np.ndarray
    design: Design
    studies: tuple[str, ...]
    excluded: tuple[tuple[str, str], ...]
    measure: str


def regression_data(
    es: Any, mods: Any, *, intercept: bool = True, lines: Any = None
) -> RegressionData:
    """The included studies of effect sizes ``es`` with the design of ``mods``.

    ``mods``: moderator column names of the study table (a list, or one string split at
    commas), coded by :func:`model_matrix`; or an explicit design (a :class:`Design`, a numeric
    DataFrame whose columns are the terms, or a 2-D array), one row per included study, used
    as is (``intercept`` is then ignored: include a column of ones yourself).
    ``lines``: the file line of every row of ``es.table`` (for messages).
    """
    table = es.table
    keep = table["included"].to_numpy(bool)
    studies = table["study"].astype(str).tolist()
    excluded = tuple((str(s), str(r)) for s, r in es.dropped)
    if isinstance(mods, (str, list, tuple)) and all(isinstance(m, str) for m in mods):
        design = model_matrix(
            table, mods, intercept=intercept, source=es.source, lines=lines, studies=studies,
            rows=keep,
        )  # fmt: skip
    else:
        design = mods if isinstance(mods, Design) else explicit_design(mods)
        if design.k != int(keep.sum()):
            raise InputError(
                f"the design has {design.k} rows but {int(keep.sum())} studies are analysed; "
                "give one row per included study",
                column="mods",
            )
    return RegressionData(
        yi=table["yi"].to_numpy(float)[keep],
        vi=table["vi"].to_numpy(float)[keep],
        design=design,
        studies=tuple(np.asarray(studies, dtype=object)[keep]),
        excluded=excluded,
        measure=es.measure,
    )


def regression_inputs(
    data: Any, mods: Any, *, measure: str | None = None, intercept: bool = True
) -> RegressionData:
    """:func:`regression_data` from an ``EffectSizes``, a ``MetaInput`` or a DataFrame.

    A ``MetaInput`` read from a file keeps the line of every row, so that an empty moderator
    cell is named by its line; other inputs are named by their 1-based row.
    """
    from bayesmtor.effects import EffectSizes
    from bayesmtor.frequentist.api import _effect_sizes
    from bayesmtor.inputs import MetaInput

    lines = data.lines if isinstance(data, MetaInput) else None
    es = data if isinstance(data, EffectSizes) and measure is None else _effect_sizes(data, measure)
    if not isinstance(es, EffectSizes):  # pragma: no cover - guarded by _effect_sizes
        raise InputError("'data' must be effect sizes")
    return regression_data(es, mods, intercept=intercept, lines=lines)
