"""Columns (a dict of NumPy arrays) as a pandas DataFrame, built only when one is asked for.

The reader, the effect sizes and the vectorised fits keep their tables as dicts of arrays so
that ``bayesmtor pool`` never imports pandas; :func:`frame_of` gives the DataFrame of the
public attributes (``MetaInput.frame``, ``EffectSizes.table``, ``CsvTable.frame``).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


def all_text(values: Any) -> bool:
    """Whether every item of ``values`` (an iterable) is a ``str``, as
    ``all(type(v) is str for v in values)`` but in C (a set of the item types)."""
    return set(map(type, values)) <= {str}


def frame_of(columns: Mapping[str, Any]) -> pd.DataFrame:
    """A DataFrame of ``columns`` in their order, with a ``RangeIndex``; object arrays (text)
    stay ``object`` columns rather than becoming pandas' string dtype. The frame holds copies:
    changing it leaves ``columns`` as they are."""
    import pandas as pd

    data = {
        name: pd.Series(values, dtype=object, copy=True)
        if isinstance(values, np.ndarray) and values.dtype.kind == "O"
        else np.array(values, copy=True)
        for name, values in columns.items()
    }
    return pd.DataFrame(data, columns=list(columns), copy=False)


def is_frame(value: object) -> bool:
    """Whether ``value`` is a pandas DataFrame, without importing pandas (a DataFrame can only
    exist once pandas is imported)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, pd.DataFrame)
