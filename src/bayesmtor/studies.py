"""The study-level data a pooled result carries, so that it can draw its own forest and funnel
plots: labels, effects and standard errors, the raw 2x2 counts and the fit's study weights.

A :class:`StudyData` lists every study of the input in input order, the excluded ones too
(with the reason), as RevMan lists a study that is "not estimable". It is filled by the
frequentist functions (:func:`bayesmtor.frequentist.rma`, :func:`~bayesmtor.frequentist.rma_mh`,
:func:`~bayesmtor.frequentist.rma_peto`) and by :func:`bayesmtor.api.bayesmeta`; nothing here
fits or draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["StudyData"]

_COUNT_COLUMNS = ("events_trt", "n_trt", "events_ctl", "n_ctl")


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=float).reshape(-1))


@dataclass(frozen=True)
class StudyData:
    """Every study of one meta-analysis, in input order.

    Attributes
    ----------
    labels : tuple of str
        Study labels.
    yi, sei : tuple of float
        Effect on the analysis scale (log scale for ratios) and its standard error; ``nan``
        where the study has no estimable effect.
    included : tuple of bool
        Whether the study was pooled.
    reasons : tuple of str
        Why a study was left out (``""`` for pooled studies).
    counts : tuple of (float, float, float, float), optional
        Raw ``(events_trt, n_trt, events_ctl, n_ctl)`` of each study, for count data.
    weights : tuple of float, optional
        Each study's share of the total weight of the fit, in percent (``nan`` for studies
        left out); set by the frequentist fits, ``None`` until then.
    weights_of : str
        Which weights those are, e.g. ``"REML (inverse variance, random effects)"`` or
        ``"MH"``.
    """

    labels: tuple[str, ...]
    yi: tuple[float, ...]
    sei: tuple[float, ...]
    included: tuple[bool, ...]
    reasons: tuple[str, ...]
    counts: tuple[tuple[float, float, float, float], ...] | None = None
    weights: tuple[float, ...] | None = None
    weights_of: str = ""

    @property
    def k(self) -> int:
        """Number of pooled studies."""
        return sum(self.included)

    @property
    def has_counts(self) -> bool:
        """Whether the raw 2x2 counts are known."""
        return self.counts is not None

    @classmethod
    def from_effect_sizes(cls, es: Any) -> StudyData:
        """The studies of an :class:`~bayesmtor.effects.EffectSizes` (every row, in order)."""
        table = es.columns
        counts = None
        if set(_COUNT_COLUMNS) <= set(table):
            raw = np.column_stack([np.asarray(table[c], dtype=float) for c in _COUNT_COLUMNS])
            counts = tuple(tuple(float(x) for x in row) for row in raw)
        included = tuple(bool(v) for v in np.asarray(table["included"], bool))
        reasons = dict(es.dropped)
        labels = tuple(str(s) for s in table["study"].tolist())
        return cls(
            labels=labels,
            yi=_floats(np.asarray(table["yi"], float)),
            sei=_floats(np.asarray(table["sei"], float)),
            included=included,
            reasons=tuple(
                "" if inc else str(reasons.get(lab, "excluded"))
                for lab, inc in zip(labels, included, strict=True)
            ),
            counts=counts,
        )

    @classmethod
    def from_arrays(
        cls,
        yi: Any,
        sei: Any,
        labels: Sequence[str] | None = None,
        included: Sequence[bool] | None = None,
        reasons: Sequence[str] | None = None,
    ) -> StudyData:
        """Studies from arrays of effects and standard errors (labels ``1, 2, ...`` if none)."""
        y, s = _floats(yi), _floats(sei)
        names = tuple(str(v) for v in labels) if labels is not None else ()
        if len(names) != len(y):
            names = tuple(str(i + 1) for i in range(len(y)))
        inc = (
            tuple(bool(v) for v in included)
            if included is not None
            else tuple(math.isfinite(a) and math.isfinite(b) for a, b in zip(y, s, strict=True))
        )
        why = tuple(reasons) if reasons is not None else tuple("" if v else "missing" for v in inc)
        return cls(labels=names, yi=y, sei=s, included=inc, reasons=why)

    def with_weights(self, weights: Any, of: str) -> StudyData:
        """A copy with the weights of the pooled studies (raw, any scale; normalised here to
        percent and placed at the included studies)."""
        w = np.asarray(weights, dtype=float).reshape(-1)
        inc = np.asarray(self.included, dtype=bool)
        if w.size != int(inc.sum()):
            raise ValueError(f"{w.size} weights for {int(inc.sum())} pooled studies")
        full = np.full(inc.size, np.nan)
        total = float(np.sum(w))
        if w.size and math.isfinite(total) and total > 0:
            full[inc] = 100.0 * w / total
        return replace(self, weights=_floats(full), weights_of=of)

    def frame(self) -> pd.DataFrame:
        """One row per study: ``study, yi, sei, included, reason`` and, when known, the raw
        counts and ``weight`` (percent)."""
        import pandas as pd

        out = pd.DataFrame(
            {
                "study": list(self.labels),
                "yi": list(self.yi),
                "sei": list(self.sei),
                "included": list(self.included),
                "reason": list(self.reasons),
            }
        )
        if self.counts is not None:
            arr = np.asarray(self.counts, dtype=float).reshape(-1, 4)
            for j, col in enumerate(_COUNT_COLUMNS):
                out[col] = arr[:, j]
        if self.weights is not None:
            out["weight"] = list(self.weights)
        return out
