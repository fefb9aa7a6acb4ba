"""Plain-text tables for the terminal, without pandas (``bayesmtor pool`` prints these)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def cell_text(value: Any, decimals: int = 4, float_format: str | None = None) -> str:
    """A cell as printed: floats with ``decimals`` decimals, or in ``float_format`` (such as
    ``"{:.6g}"``), ``NaN`` when missing or infinite; ``-`` for None; anything else as ``str``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float):
        if not math.isfinite(value):
            return "NaN"
        return float_format.format(value) if float_format else f"{value:.{decimals}f}"
    return str(value)


def format_table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    decimals: int = 4,
    left: int = 0,
    float_format: str | None = None,
) -> str:
    """Columns separated by two spaces: the first ``left`` columns (labels) aligned left, the
    others (numbers) right; one header line, then one line per row (cells by
    :func:`cell_text`)."""
    cells = [[cell_text(v, decimals, float_format) for v in row] for row in rows]
    widths = [
        max([len(str(name)), *(len(row[j]) for row in cells)]) for j, name in enumerate(header)
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.ljust(w) if j < left else v.rjust(w)
            for j, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line([str(h) for h in header]), *(line(row) for row in cells)])


def column_table(
    columns: dict[str, Any],
    n: int,
    *,
    decimals: int = 4,
    left: int = 0,
    float_format: str | None = None,
) -> str:
    """:func:`format_table` of ``columns`` (arrays of ``n`` values, or one value for every
    row), in their order."""
    values = [
        list(col.tolist() if hasattr(col, "tolist") else col)
        if isinstance(col, (list, tuple)) or getattr(col, "ndim", 0) == 1
        else [col] * n
        for col in columns.values()
    ]
    rows = list(zip(*values, strict=True)) if values else []
    return format_table(
        list(columns), rows, decimals=decimals, left=left, float_format=float_format
    )
