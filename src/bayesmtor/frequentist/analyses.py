"""Whole tables: ``meta_analysis``, ``pool_groups``, ``subgroup_analysis``, ``leave_one_out``.

Every entry point takes an ``EffectSizes`` of :mod:`bayesmtor.effects`, a ``MetaInput`` or a
DataFrame in one of the input shapes of :mod:`bayesmtor.inputs`; the study estimates, their
variances and the raw counts all come from :func:`bayesmtor.effects.escalc`, the one
effect-size route shared with the Bayesian engines. Every group of a table is pooled in one
vectorised call.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from bayesmtor._frames import all_text
from bayesmtor.effects import EffectSizes
from bayesmtor.errors import EstimationError, InputError, NotEstimableWarning
from bayesmtor.frequentist._core import _core_iv, _core_mh, _core_peto
from bayesmtor.frequentist.api import (
    _check_method,
    _check_test,
    _ci_prob,
    _counts,
    _effect_sizes,
    _mh_tables,
    _pad,
    _pi_dist,
    _result_from_row,
    _warn_undefined,
    rma,
    rma_mh,
    rma_peto,
)
from bayesmtor.frequentist.results import JSON_KEYS, PoolResult, SubgroupResult
from bayesmtor.frequentist.revman import subgroup_differences
from bayesmtor.inputs import MetaInput, group_codes
from bayesmtor.schema import HETEROGENEITY_COLUMNS
from bayesmtor.vocabulary import CONTINUOUS_MEASURES, COUNT_METHODS, FE_METHODS


def _check_options(method: str, test: str) -> tuple[str, str]:
    method = _check_method(method)
    test = _check_test(test)
    if test != "z" and method in FE_METHODS:
        raise InputError(
            f"test '{test}' (HKSJ) applies to random-effects methods, not '{method}'",
            column="test",
        )
    return method, test


def meta_analysis(
    data: Any,
    *,
    measure: str | None = None,
    method: str = "REML",
    test: str = "z",
    ci_prob: float | None = None,
    mh_correction: str = "revman",
    pi: str | None = None,
) -> PoolResult:
    """Pool one data set given as an ``EffectSizes``, a ``MetaInput`` or a DataFrame.

    Parameters
    ----------
    data : EffectSizes, MetaInput or pandas.DataFrame
        An ``EffectSizes`` (:func:`bayesmtor.effects.escalc`), a ``MetaInput`` or a DataFrame
        in one of the input shapes (counts / ratio_ci / log_se, plus a ``study`` column); the
        last two go through ``escalc`` first. ``"MH"`` and ``"PETO"`` need counts.
    measure : str, optional
        ``"RR"``, ``"OR"``, ``"RD"``, ``"HR"`` or ``"generic"``. Default: the measure of an
        ``EffectSizes``; ``"RR"`` for counts, ``"generic"`` otherwise.
    method : str
        One of :data:`METHODS`.
    test : {"z", "t", "knha"}
        ``"knha"``: Hartung-Knapp-Sidik-Jonkman interval (random-effects methods only).
    ci_prob : float, optional
        Interval probability (default from :mod:`bayesmtor.config`).
    mh_correction : {"revman", "none"}
        Zero-cell rule inside the MH estimate, see :func:`rma_mh`.
    pi : {"t", "z"}, optional
        Prediction interval of random-effects fits, see :func:`rma` (default from
        :mod:`bayesmtor.config`).

    Returns
    -------
    PoolResult
    """
    method, test = _check_options(method, test)
    es = _effect_sizes(data, measure)
    if method in COUNT_METHODS and not es.has_counts:
        raise _needs_counts(method, es)
    if method == "PETO" and es.measure != "OR":
        raise InputError("Peto's method pools odds ratios: use --measure OR", column="measure")
    try:
        if method == "MH":
            return rma_mh(es, ci_prob=ci_prob, mh_correction=mh_correction)
        if method == "PETO":
            return rma_peto(es, ci_prob=ci_prob)
    except EstimationError:
        if not es.dropped:
            raise
        raise _nothing_to_pool(es) from None
    if es.k == 0:
        raise _nothing_to_pool(es)
    return rma(es, method=method, test=test, ci_prob=ci_prob, pi=pi)


def _needs_counts(method: str, es: EffectSizes) -> InputError:
    """The error for Mantel-Haenszel or Peto on data that are not 2x2 counts."""
    why = (
        f"; {es.measure} of a continuous outcome is pooled by inverse variance: use --method FE "
        "or a random-effects method (REML, DL, ...)"
        if es.measure in CONTINUOUS_MEASURES
        else ""
    )
    return InputError(
        f"method '{method}' needs 2x2 counts of a binary outcome (events_trt, n_trt, events_ctl, "
        f"n_ctl){why}",
        column="method",
    )


def _nothing_to_pool(es: EffectSizes) -> EstimationError:
    why = "; ".join(f"'{st}': {r}" for st, r in es.dropped[:3])
    more = f" (and {len(es.dropped) - 3} more)" if len(es.dropped) > 3 else ""
    return EstimationError(
        f"{es.source}: no study can be pooled (k = 0): {why}{more}. At least one study with "
        "an estimable effect is needed."
    )


@dataclass(frozen=True)
class _Fits:
    """Vectorised fits of every group: core output, then who was pooled or excluded, why."""

    out: dict[str, np.ndarray]
    codes: np.ndarray
    group_keys: list[tuple[Any, ...]]
    labels: np.ndarray
    use: np.ndarray
    reason: np.ndarray
    measure: str
    method: str
    test: str
    ci_prob: float
    pi: str = "t"

    def results(self) -> list[PoolResult]:
        """One :class:`PoolResult` per group, in group order."""
        results = []
        for g in range(len(self.group_keys)):
            in_g = self.codes == g
            excluded = [(self.labels[i], self.reason[i]) for i in np.flatnonzero(in_g & ~self.use)]
            results.append(
                _result_from_row(
                    self.out,
                    g,
                    measure=self.measure,
                    method=self.method,
                    test=self.test,
                    ci_prob=self.ci_prob,
                    studies=self.labels[in_g & self.use].tolist(),
                    excluded=excluded,
                    pi_dist=self.pi,
                )
            )
        return results


def _text(column: Any) -> np.ndarray:
    """``column`` as an object array of ``str``."""
    cells = np.asarray(column, dtype=object)
    if all_text(cells.tolist()):
        return cells
    out = np.empty(cells.size, dtype=object)
    out[:] = [str(c) for c in cells.tolist()]
    return out


def _fit_groups(
    es, codes, group_keys, rows, *, method, test, ci_prob, mh_correction, pi=None
) -> _Fits:
    """Pool the rows ``rows`` of ``es`` (indices, repeats allowed) per group ``codes``."""
    p = _ci_prob(ci_prob)
    pi = _pi_dist(pi)
    table = es.columns
    labels = _text(table["study"])[rows]
    reason = np.where(np.asarray(table["included"], bool), "", table["exclusion_reason"])[rows]
    n_groups = len(group_keys)
    if method in COUNT_METHODS:
        if not es.has_counts:
            raise _needs_counts(method, es)
        if method == "PETO" and es.measure != "OR":
            raise InputError("Peto's method pools odds ratios: use --measure OR", column="measure")
        a, b, c, d = (x[rows] for x in _counts(*es.raw_counts()))
        est, use, excl_list = _mh_tables(
            a, b, c, d, list(labels), es.measure, mh_correction if method == "MH" else "revman"
        )
        why = dict(excl_list)
        # escalc's reason where it excluded the study, else the MH/Peto rule's
        reason = np.array(
            [
                r if r else ("" if ok else why.get(lab, "excluded"))
                for r, ok, lab in zip(reason, use, labels, strict=True)
            ],
            dtype=object,
        )
        reason[use] = ""
        arrays = [_pad(x[est], codes[est], n_groups)[0] for x in (a, b, c, d)]
        qpad, mask = _pad(use[est].astype(float), codes[est], n_groups)
        if method == "MH":
            out = _core_mh(*arrays, mask, es.measure, mh_correction, p, qmask=qpad > 0)
        else:
            out = _core_peto(*arrays, mask, p)
    else:
        use = reason == ""
        y = np.asarray(table["yi"], float)[rows]
        v = np.asarray(table["vi"], float)[rows]
        ypad, mask = _pad(y[use], codes[use], n_groups)
        vpad, _ = _pad(v[use], codes[use], n_groups)
        out = _core_iv(ypad, vpad, mask, method, test, p, pi)
    _warn_undefined(out, method, pi=pi)
    return _Fits(out, codes, group_keys, labels, use, reason, es.measure, method, test, p, pi)


def _fit_subsets(es, rows, codes, n_fits, **fit: Any) -> _Fits:
    """``n_fits`` fits of subsets of ``es`` (the rows ``rows``, fit ``codes``), one vectorised
    call; a subset of one study is not a reason to warn (tau^2 is then reported missing).

    ``fit``: ``method``, ``test``, ``ci_prob``, ``mh_correction`` and ``pi`` of
    :func:`_fit_groups`.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotEstimableWarning)
        return _fit_groups(es, codes, [(j,) for j in range(n_fits)], rows, **fit)


def _by_columns(by: str | list[str] | None, columns: Any) -> list[str]:
    by_cols = [] if by is None else ([by] if isinstance(by, str) else list(by))
    missing = [c for c in by_cols if c not in columns]
    if missing:
        raise InputError(
            f"grouping column(s) {', '.join(missing)} not found; columns are "
            + ", ".join(map(str, columns)),
            column=missing[0],
        )
    return by_cols


def _pool(
    data, by, measure, method, test, ci_prob, mh_correction, pi=None
) -> tuple[_Fits, list[str]]:
    method, test = _check_options(method, test)
    if isinstance(data, (EffectSizes, MetaInput)):
        names, n_rows = list(data.columns), len(data.columns["study"])
    else:
        import pandas as pd

        if not isinstance(data, pd.DataFrame):
            raise InputError(
                "'data' must be an EffectSizes, a MetaInput or a pandas DataFrame, not "
                f"{type(data).__name__}"
            )
        names, n_rows = list(data.columns), len(data)
    by_cols = _by_columns(by, names)
    if n_rows == 0:
        raise EstimationError("no studies to pool (k = 0)")
    es = _effect_sizes(data, measure, by_cols)
    if by_cols:
        codes, group_keys = group_codes(es.columns, by_cols)  # first appearance, keys as given
    else:
        codes, group_keys = np.zeros(len(es.columns["study"]), dtype=np.int64), [()]
    fits = _fit_groups(
        es,
        codes,
        group_keys,
        np.arange(len(es.columns["study"])),
        method=method,
        test=test,
        ci_prob=ci_prob,
        mh_correction=mh_correction,
        pi=pi,
    )
    return fits, by_cols


def _group_table(fits: _Fits, by_cols: list[str]) -> pd.DataFrame:
    """The grouping columns, then :data:`JSON_KEYS` (log scale), one row per group."""
    import pandas as pd

    table = pd.DataFrame(fits.group_keys, columns=by_cols) if by_cols else pd.DataFrame(index=[0])
    for key, values in group_columns(fits, by_cols).items():
        if key not in by_cols:
            table[key] = values
    return table.reset_index(drop=True)


def group_columns(fits: _Fits, by_cols: list[str]) -> dict[str, Any]:
    """The columns of :func:`pool_groups` as arrays (scalars where a column is constant)."""
    cols: dict[str, Any] = {
        col: [key[j] for key in fits.group_keys] for j, col in enumerate(by_cols)
    }
    cols.update(measure=fits.measure, method=fits.method, test=fits.test, ci_prob=fits.ci_prob)
    for key in JSON_KEYS[4:] + HETEROGENEITY_COLUMNS:
        if key == "pi_dist":
            cols[key] = fits.pi if fits.method not in FE_METHODS else None
        else:
            cols[key] = fits.out[key]
    return cols


def pool_group_columns(data: Any, **options: Any) -> tuple[dict[str, Any], int]:
    """:func:`pool_groups` as columns without pandas (``bayesmtor pool --by``): the columns
    and the number of groups; ``options`` are those of :func:`pool_groups`."""
    fits, by_cols = _pool(data, **options)
    return group_columns(fits, by_cols), len(fits.group_keys)


def pool_groups(
    data: Any,
    *,
    by: str | list[str] | None,
    measure: str | None = None,
    method: str = "REML",
    test: str = "z",
    ci_prob: float | None = None,
    mh_correction: str = "revman",
    pi: str | None = None,
) -> pd.DataFrame:
    """Pool every group of a table at once (one vectorised fit for all groups).

    Parameters
    ----------
    data : EffectSizes, MetaInput or pandas.DataFrame
        Studies with grouping columns: an ``EffectSizes``, a ``MetaInput`` (a file read by
        :func:`bayesmtor.inputs.read_meta_data`, whose errors then name the line of the file)
        or a DataFrame in one of the input shapes (counts / ratio_ci / log_se).
    by : str, list of str or None
        Grouping columns; ``None`` pools the whole table. Keys are compared as given (text
        read from a file stays text: ``1``, ``1.0`` and ``01`` are three groups) and groups
        are numbered in order of first appearance (:func:`bayesmtor.inputs.group_codes`, the
        rule of ``bayesmtor pool --bayes --by`` too).
    measure, method, test, ci_prob, mh_correction, pi
        As in :func:`meta_analysis`.

    Returns
    -------
    pandas.DataFrame
        The grouping columns, then :data:`JSON_KEYS` and the heterogeneity columns of
        :data:`bayesmtor.schema.HETEROGENEITY_COLUMNS` (log scale), one row per group.
    """
    fits, by_cols = _pool(data, by, measure, method, test, ci_prob, mh_correction, pi)
    return _group_table(fits, by_cols)


def subgroup_analysis(
    data: Any,
    *,
    by: str,
    measure: str | None = None,
    method: str = "REML",
    test: str = "z",
    ci_prob: float | None = None,
    mh_correction: str = "revman",
    pi: str | None = None,
) -> SubgroupResult:
    """Pooled result per subgroup and RevMan's test for subgroup differences.

    Each subgroup is pooled separately (its own tau^2 for random-effects methods). The test
    is Cochran's Q of the subgroup estimates with weights 1/SE^2 on G-1 df; for ``"FE"`` it
    equals the moderator test of a fixed-effects meta-regression on the subgroup factor.
    Subgroups are listed sorted by their label as text, like the levels of an R factor.

    Parameters
    ----------
    data : EffectSizes, MetaInput or pandas.DataFrame
        As in :func:`pool_groups`.
    by : str
        The one subgroup column.
    measure, method, test, ci_prob, mh_correction, pi
        As in :func:`meta_analysis`.

    Returns
    -------
    SubgroupResult
    """
    if not isinstance(by, str):
        raise InputError("'by' must be one column name for a subgroup analysis", column="by")
    fits, _ = _pool(data, by, measure, method, test, ci_prob, mh_correction, pi)
    results = fits.results()
    # groups are numbered by first appearance; subgroups are listed sorted, as R's levels
    labels = [str(key[0]) for key in fits.group_keys]
    order = sorted(range(len(labels)), key=labels.__getitem__)
    results = [results[g] for g in order]
    est = np.array([r.estimate for r in results])
    se = np.array([r.se for r in results])
    ok = np.isfinite(est) & np.isfinite(se) & (se > 0)
    if ok.sum() < 2:
        warnings.warn(
            "the test for subgroup differences needs two estimable subgroups",
            NotEstimableWarning,
            stacklevel=2,
        )
        qb, dfb, pb = float("nan"), float("nan"), float("nan")
    else:
        qb, dfb, pb, _ = subgroup_differences(est, se)
    return SubgroupResult(
        by=by,
        groups=tuple(labels[g] for g in order),
        results=tuple(results),
        Q_between=qb,
        Q_between_df=dfb,
        Q_between_pval=pb,
    )


def leave_one_out(
    data: Any,
    *,
    measure: str | None = None,
    method: str = "REML",
    test: str = "z",
    ci_prob: float | None = None,
    mh_correction: str = "revman",
    pi: str | None = None,
) -> pd.DataFrame:
    """Refit without each study in turn (all k fits in one vectorised call).

    Parameters
    ----------
    data : EffectSizes, MetaInput or pandas.DataFrame
        One meta-analysis, as in :func:`meta_analysis`.
    measure, method, test, ci_prob, mh_correction, pi
        As in :func:`meta_analysis`.

    Returns
    -------
    pandas.DataFrame
        One row per omitted study: ``study`` then :data:`JSON_KEYS` (log scale). Note that
        metafor's ``leave1out`` reports ``I2_tau``/``H2_tau`` for random-effects models.
    """
    import pandas as pd

    method, test = _check_options(method, test)
    frame = getattr(data, "frame", getattr(data, "table", data))
    if isinstance(frame, pd.DataFrame) and len(frame) < 2:
        raise EstimationError("leave-one-out needs at least two studies")
    es = _effect_sizes(data, measure)
    n = len(es.table)
    rows = np.concatenate([np.delete(np.arange(n), i) for i in range(n)])
    codes = np.repeat(np.arange(n), n - 1)
    fit = {"method": method, "test": test, "ci_prob": ci_prob, "mh_correction": mh_correction}
    fits = _fit_subsets(es, rows, codes, n, **fit, pi=pi)
    res = _group_table(fits, ["__omitted__"])
    res.insert(0, "study", es.table["study"].astype(str).to_numpy())
    return res.drop(columns=["__omitted__"])
