"""One pooled-result schema for the frequentist fit, the exact posterior and the MCMC posterior.

Every pooled result, whichever engine produced it, is described by the same ordered columns
(:data:`POOLED_COLUMNS`), so that tables, the command line and :func:`compare` line them up
without translating names:

``engine``
    ``"frequentist"``, ``"exact"`` or ``"mcmc"``.
``method``
    The frequentist estimator (``"REML"``, ``"DL"``, ``"MH"``, ...) or the Bayesian model
    (``"normal_normal"``, ``"binomial_normal"``, ``"multilevel"``).
``measure``, ``ci_prob``, ``k``
    The effect measure (``None`` when not stated), the probability of every interval of the row
    (confidence, credible and prediction intervals alike) and the number of studies pooled.
``estimate``, ``se``, ``ci_low``, ``ci_high``
    The pooled effect on the analysis (log for ratios) scale: the frequentist estimate, its
    standard error and confidence interval, or the posterior median of mu, its posterior
    standard deviation and central credible interval.
``pval``, ``p_mu_below_0``
    The frequentist p-value of mu = 0; the posterior probability that mu < 0 (NaN on the other
    side).
``tau2``, ``tau``, ``tau_low``, ``tau_high``
    Between-study heterogeneity: the frequentist estimate of tau^2, its square root and the
    square roots of the Q-profile interval for tau^2; or the posterior median of tau^2 (the
    square of the median of tau), the posterior median of tau and its credible interval.
``tau2_se``, ``tau_ci_low``, ``tau_ci_high``, ``I2_ci_low``, ``I2_ci_high``, ``H2_ci_low``, ``H2_ci_high``
    Frequentist random-effects fits only (``None`` for fixed-effect fits and posteriors): the
    standard error of tau^2 for ML and REML (metafor ``se.tau2``; ``None`` for the other
    estimators) and the Q-profile interval of tau^2 mapped to tau, ``I2 = 100 tau^2 / (tau^2
    + s^2)`` and ``H2 = 1 + tau^2 / s^2`` (metafor ``confint()``), never capped above.
``I2``
    In percent on both sides: ``100 tau^2 / (tau^2 + s^2)`` with the typical within-study
    variance s^2 for random-effects fits (metafor's ``I2``; its posterior median for the
    Bayesian engines), ``100 max(0, (Q - df) / Q)`` for fixed-effect fits.
``pred_low``, ``pred_high``
    The prediction interval for the effect in a new study (``theta_new`` on the Bayesian side).
``tau_prior``, ``mu_prior``
    The priors (``None`` for a frequentist fit).
``excluded``
    The studies left out before pooling, as a tuple of ``(study, reason)`` pairs.
``converged``, ``quad_error``, ``rhat_max``, ``ess_bulk_min``, ``divergences``
    Diagnostics: whether the fit is usable, the exact engine's quadrature error estimate and the
    MCMC convergence figures (NaN where they do not apply).

:func:`pooled_row` builds the row of any result, :func:`pooled_frame` a table of many, and
:func:`exact_table_frame` converts the vectorised exact engine's table (one row per group)
into the same columns. :func:`json_record` makes a row JSON-ready.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from json.encoder import encode_basestring_ascii as _encode_string

from bayesmtor import config
from bayesmtor._frames import all_text
from bayesmtor.errors import InputError
from bayesmtor.vocabulary import check_prob, is_ratio

__all__ = [
    "DIAGNOSTIC_COLUMNS",
    "ESTIMATE_COLUMNS",
    "HETEROGENEITY_COLUMNS",
    "POOLED_COLUMNS",
    "SECTION_KEYS",
    "compare",
    "exact_table_frame",
    "exact_table_columns",
    "frequentist_table_columns",
    "column_records",
    "ColumnRecords",
    "frequentist_table_frame",
    "json_record",
    "pooled_frame",
    "pooled_row",
]

#: The heterogeneity columns of frequentist random-effects fits (``None`` elsewhere).
HETEROGENEITY_COLUMNS: tuple[str, ...] = (
    "tau2_se",
    "tau_ci_low",
    "tau_ci_high",
    "I2_ci_low",
    "I2_ci_high",
    "H2_ci_low",
    "H2_ci_high",
)

#: Columns that describe the pooled estimate, in order.
ESTIMATE_COLUMNS: tuple[str, ...] = (
    "engine",
    "method",
    "measure",
    "ci_prob",
    "k",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "pval",
    "p_mu_below_0",
    "tau2",
    "tau",
    "tau_low",
    "tau_high",
    "I2",
    *HETEROGENEITY_COLUMNS,
    "pred_low",
    "pred_high",
    "tau_prior",
    "mu_prior",
    "excluded",
)

#: Keys of the sections that ``bayesmtor pool`` adds on request, each object's keys in order:
#: ``subgroups`` (one per level, sorted as text) with the test for subgroup differences at the
#: top level, ``leave_one_out`` (file order), ``cumulative`` (sorted, ties in file order),
#: ``egger`` and ``begg``.
SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "subgroups": ("level", "k", "estimate", "ci_low", "ci_high", "tau2", "Q", "I2"),
    "subgroup_test": ("Q_between", "Q_between_df", "Q_between_pval"),
    "leave_one_out": ("omitted", "estimate", "se", "ci_low", "ci_high", "tau2", "I2", "Q"),
    "cumulative": ("added", "k", "estimate", "ci_low", "ci_high", "tau2"),
    "egger": ("intercept", "se", "stat", "df", "pval"),
    "begg": ("tau", "pval"),
}

#: Columns that say how far the fit can be trusted, in order.
DIAGNOSTIC_COLUMNS: tuple[str, ...] = (
    "converged",
    "quad_error",
    "rhat_max",
    "ess_bulk_min",
    "divergences",
)

#: Every column of a pooled row: :data:`ESTIMATE_COLUMNS` then :data:`DIAGNOSTIC_COLUMNS`.
POOLED_COLUMNS: tuple[str, ...] = ESTIMATE_COLUMNS + DIAGNOSTIC_COLUMNS

_NAN = float("nan")
_SHARED_FREQUENTIST = (
    "method", "measure", "ci_prob", "k", "estimate", "se", "ci_low", "ci_high", "pval", "tau2",
    "tau",
)  # fmt: skip


def pooled_row(
    result: Any,
    *,
    ci_prob: float | None = None,
    measure: str | None = None,
    excluded: Sequence[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """The schema row of one pooled result.

    Parameters
    ----------
    result : PoolResult, ExactPosterior, BayesResult or BayesMetaResult
        A frequentist fit, an exact posterior, an MCMC posterior, or the result of
        :func:`bayesmtor.bayesmeta` (which holds one of the two posteriors).
    ci_prob : float, optional
        Probability of the Bayesian intervals; default ``config.defaults["ci_prob"]``. A
        frequentist fit keeps the probability it was computed with, so passing a different one
        is an error.
    measure : str, optional
        The effect measure, for a posterior that does not record it (the exact engine).
    excluded : sequence of (study, reason), optional
        Studies left out before pooling, for a posterior that does not record them.

    Returns
    -------
    dict
        Keys :data:`POOLED_COLUMNS` in order.
    """
    inner = getattr(result, "posterior", None)
    if inner is not None and not isinstance(result, type):
        measure = measure if measure is not None else getattr(result, "measure", None)
        if excluded is None:
            excluded = getattr(result, "excluded", None)
        result = inner
    if hasattr(result, "tau2_ci_low"):
        row = _frequentist(result, ci_prob)
    elif getattr(result, "engine", None) == "mcmc" and hasattr(result, "idata"):
        row = _mcmc(result, _ci(ci_prob))
    elif hasattr(result, "p_mu_below") and hasattr(result, "error_estimate"):
        row = _exact(result, _ci(ci_prob))
    else:
        raise InputError(
            f"cannot describe a {type(result).__name__} as a pooled result; expected a "
            "frequentist fit (PoolResult), an exact posterior (ExactPosterior), an MCMC "
            "posterior (BayesResult) or a bayesmeta result",
            column="result",
        )
    if measure is not None:
        row["measure"] = measure
    if excluded is not None:
        row["excluded"] = tuple((str(s), str(r)) for s, r in excluded)
    return {name: row[name] for name in POOLED_COLUMNS}


def pooled_frame(
    results: Mapping[Any, Any] | Sequence[Any],
    *,
    by: Sequence[str] = (),
    ci_prob: float | None = None,
) -> pd.DataFrame:
    """A table of pooled results, one row each, in the columns of the schema.

    Parameters
    ----------
    results : mapping or sequence
        Results as accepted by :func:`pooled_row`; a mapping's keys label the rows (a tuple
        key gives one value per name in ``by``, a scalar key one value).
    by : sequence of str, optional
        Names of the key columns placed before :data:`POOLED_COLUMNS` (mapping input only).
    ci_prob : float, optional
        Probability of the Bayesian intervals; see :func:`pooled_row`.

    Returns
    -------
    pandas.DataFrame
        The columns ``by`` then :data:`POOLED_COLUMNS`.
    """
    import pandas as pd

    names = list(by)
    rows = []
    if isinstance(results, Mapping):
        for key, res in results.items():
            values = key if isinstance(key, tuple) else (key,)
            if len(values) != len(names):
                raise InputError(
                    f"result key {key!r} has {len(values)} value(s) but 'by' names "
                    f"{len(names)} column(s): {names}",
                    column="by",
                )
            rows.append(
                {**dict(zip(names, values, strict=True)), **pooled_row(res, ci_prob=ci_prob)}
            )
    else:
        if names:
            raise InputError("'by' names key columns and needs a mapping of results", column="by")
        rows = [pooled_row(res, ci_prob=ci_prob) for res in results]
    return pd.DataFrame(rows, columns=[*names, *POOLED_COLUMNS])


def exact_table_frame(
    table: pd.DataFrame,
    *,
    measure: str | None,
    ci_prob: float,
    tau_prior: Any,
    mu_prior: Any,
    s2_typical: Any = None,
    excluded: Sequence[tuple[str, str]] = (),
) -> pd.DataFrame:
    """The vectorised exact engine's table in the columns of the schema.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`bayesmtor.bayes.exact.exact_batch` or ``exact_batch_groups`` (columns ``k,
        mu_mean, mu_median, mu_low, mu_high, tau_median, tau_low, tau_high, pred_low,
        pred_high, p_mu_below_0, quad_error``; ``mu_sd`` and ``I2`` when the engine gives them).
    measure : str or None
        The effect measure.
    ci_prob : float
        The interval probability the table was computed with.
    tau_prior, mu_prior : TauPrior, MuPrior or str
        The priors the table was computed with.
    s2_typical : array_like, optional
        The typical within-study variance of each row, for ``I2`` when the table has no ``I2``
        column (NaN otherwise).
    excluded : sequence of (study, reason), optional
        Studies left out before pooling (the same tuple on every row).

    Returns
    -------
    pandas.DataFrame
        :data:`POOLED_COLUMNS`, one row per row of ``table``.
    """
    import pandas as pd

    cols = exact_table_columns(
        table, len(table), measure=measure, ci_prob=ci_prob, tau_prior=tau_prior,
        mu_prior=mu_prior, s2_typical=s2_typical, excluded=excluded,
    )  # fmt: skip
    return pd.DataFrame(cols, index=table.index, columns=list(POOLED_COLUMNS))


def exact_table_columns(
    table: Mapping[str, Any],
    n: int,
    *,
    measure: str | None,
    ci_prob: float,
    tau_prior: Any,
    mu_prior: Any,
    s2_typical: Any = None,
    excluded: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """:func:`exact_table_frame` as columns: ``table`` maps the engine's column names to
    arrays of ``n`` values; the values are arrays, or scalars where a column is constant."""
    tau = np.asarray(table["tau_median"], dtype=float)
    if "I2" in table:
        i2 = np.asarray(table["I2"], dtype=float)
    elif s2_typical is not None:
        s2 = np.broadcast_to(np.asarray(s2_typical, dtype=float), (n,))
        with np.errstate(divide="ignore", invalid="ignore"):
            i2 = 100.0 * tau**2 / (tau**2 + s2)
    else:
        i2 = np.full(n, np.nan)
    nan = np.full(n, np.nan)
    cols: dict[str, Any] = {
        "engine": "exact",
        "method": "normal_normal",
        "measure": measure,
        "ci_prob": float(ci_prob),
        "k": np.asarray(table["k"], dtype=int),
        "estimate": np.asarray(table["mu_median"], dtype=float),
        "se": np.asarray(table["mu_sd"], dtype=float) if "mu_sd" in table else nan,
        "ci_low": np.asarray(table["mu_low"], dtype=float),
        "ci_high": np.asarray(table["mu_high"], dtype=float),
        "pval": nan,
        "p_mu_below_0": np.asarray(table["p_mu_below_0"], dtype=float),
        "tau2": tau**2,
        "tau": tau,
        "tau_low": np.asarray(table["tau_low"], dtype=float),
        "tau_high": np.asarray(table["tau_high"], dtype=float),
        "I2": i2,
        **dict.fromkeys(HETEROGENEITY_COLUMNS, nan),
        "pred_low": np.asarray(table["pred_low"], dtype=float),
        "pred_high": np.asarray(table["pred_high"], dtype=float),
        "tau_prior": _prior_text(tau_prior),
        "mu_prior": _prior_text(mu_prior),
        "excluded": [tuple(excluded)] * n,
        "converged": np.asarray(table["k"], dtype=int) > 0,
        "quad_error": np.asarray(table["quad_error"], dtype=float),
        "rhat_max": nan,
        "ess_bulk_min": nan,
        "divergences": nan,
    }
    return {name: cols[name] for name in POOLED_COLUMNS}


def frequentist_table_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The vectorised frequentist table in the columns of the schema.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`bayesmtor.frequentist.pool_groups` (one row per group, the columns of
        :meth:`PoolResult.to_dict`).

    Returns
    -------
    pandas.DataFrame
        :data:`POOLED_COLUMNS`, one row per row of ``table``; ``excluded`` is empty, as the
        table does not record which studies each group left out.
    """
    import pandas as pd

    cols = frequentist_table_columns(table, len(table))
    return pd.DataFrame(cols, index=table.index, columns=list(POOLED_COLUMNS))


def frequentist_table_columns(table: Mapping[str, Any], n: int) -> dict[str, Any]:
    """:func:`frequentist_table_frame` as columns: ``table`` is a mapping of the columns of
    :func:`bayesmtor.frequentist.pool_groups` (arrays, or scalars for a constant column) with
    ``n`` rows; the values are arrays, or scalars where a column is constant."""
    nan = np.full(n, np.nan)
    i2_tau = np.asarray(table["I2_tau"], dtype=float)
    with np.errstate(invalid="ignore"):
        tau_low = np.sqrt(np.asarray(table["tau2_ci_low"], dtype=float))
        tau_high = np.sqrt(np.asarray(table["tau2_ci_high"], dtype=float))
    cols: dict[str, Any] = {name: table[name] for name in _SHARED_FREQUENTIST}
    cols.update(
        engine="frequentist",
        p_mu_below_0=nan,
        tau_low=tau_low,
        tau_high=tau_high,
        I2=np.where(np.isfinite(i2_tau), i2_tau, np.asarray(table["I2"], dtype=float)),
        **{name: table[name] if name in table else nan for name in HETEROGENEITY_COLUMNS},
        pred_low=table["pi_low"],
        pred_high=table["pi_high"],
        tau_prior=None,
        mu_prior=None,
        excluded=[()] * n,
        converged=True,
        quad_error=nan,
        rhat_max=nan,
        ess_bulk_min=nan,
        divergences=nan,
    )
    return {name: cols[name] for name in POOLED_COLUMNS}


def json_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row made JSON-ready: NaN and infinities become ``None``, numpy scalars Python ones,
    and ``excluded`` a list of ``{"study", "reason"}`` objects."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key == "excluded" and value is not None and not _is_missing(value):
            out[key] = [{"study": str(s), "reason": str(r)} for s, r in value]
        else:
            out[key] = _json_value(value)
    return out


class ColumnRecords:
    """The rows of ``columns`` (arrays of ``n`` values, or one value for every row) made
    JSON-ready as :func:`json_record` makes a row; iterate to get the records. They are
    converted a column and a chunk of rows at a time (NumPy numbers without a per-value
    check), so memory holds one chunk of Python values, not the whole table.

    ``nested`` holds the keys under which some value is a non-empty list, tuple or mapping
    (the JSON writer encodes records without them in one call).
    """

    chunk = 4096

    def __init__(self, columns: Mapping[str, Any], n: int) -> None:
        self.columns = dict(columns)
        self.n = n
        nested = []
        for key, column in self.columns.items():
            if isinstance(column, np.ndarray) and column.dtype.kind in "fiub":
                if column.shape != (n,):
                    raise ValueError(f"column {key!r} has shape {column.shape}, not ({n},)")
                continue
            cells = _cells(key, column, n)
            if cells is None:
                cells = [column]
            if any(isinstance(v, (list, tuple, dict)) and v for v in cells):
                nested.append(key)
        self.nested = frozenset(nested)
        #: columns given as one value for every row, and the JSON text of that value
        self.constant = frozenset(
            key for key, column in self.columns.items() if _cells(key, column, n) is None
        )
        self._constant_text = {
            key: _value_text(json_record({key: self.columns[key]})[key]) for key in self.constant
        }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        keys = list(self.columns)
        for start in range(0, self.n, self.chunk):
            stop = min(start + self.chunk, self.n)
            values = [_json_column(key, self.columns[key], start, stop) for key in keys]
            for row in zip(*values, strict=True):
                yield dict(zip(keys, row, strict=True))

    def json_texts(self, start: int, stop: int) -> list[list[str]]:
        """The JSON text of every value of rows ``start:stop``, column by column: what
        ``json.dumps`` writes for each value of :meth:`__iter__`'s records (numbers, ``null``,
        ``true``/``false``, ASCII-escaped strings), made a column at a time by the C encoder.
        Only for columns without nested values (:attr:`nested` empty)."""
        out = []
        for key, column in self.columns.items():
            if key in self.constant:  # one value for every row: one text
                out.append([self._constant_text[key]] * (stop - start))
                continue
            values = _json_column(key, column, start, stop)
            if isinstance(column, np.ndarray) and column.dtype.kind in "fiub":
                text = json.dumps(values)[1:-1]  # numbers hold no ", "
                out.append(text.split(", ") if values else [])
            elif all_text(values):
                out.append(list(map(_encode_string, values)))
            else:
                out.append([_value_text(v) for v in values])
        return out


def _value_text(value: Any) -> str:
    """``json.dumps(value)`` of a JSON-ready scalar, strings by the C escaper."""
    if type(value) is str:
        return _encode_string(value)
    if type(value) in (list, tuple, dict) and not value:  # the usual "excluded": none
        return "{}" if type(value) is dict else "[]"
    return json.dumps(value)


def column_records(columns: Mapping[str, Any], n: int) -> ColumnRecords:
    """The rows of ``columns`` as JSON-ready records: see :class:`ColumnRecords`."""
    return ColumnRecords(columns, n)


def _cells(key: str, column: Any, n: int) -> list[Any] | None:
    """The values of a column given as a sequence (None for one value for all rows)."""
    if isinstance(column, (np.ndarray, list, tuple)) or hasattr(column, "to_numpy"):
        cells = column.tolist() if hasattr(column, "tolist") else list(column)
        if len(cells) != n:
            raise ValueError(f"column {key!r} has {len(cells)} values, not {n}")
        return cells
    return None


def _json_column(key: str, column: Any, start: int, stop: int) -> list[Any]:
    """Rows ``start:stop`` of one column as JSON-ready values (the rules of
    :func:`json_record`)."""
    if isinstance(column, np.ndarray) and column.dtype.kind in "fiub":
        part = column[start:stop]
        if part.dtype.kind != "f":
            return part.tolist()
        cells = part.astype(object)
        cells[~np.isfinite(part)] = None
        return cells.tolist()
    if isinstance(column, (np.ndarray, list, tuple)) or hasattr(column, "to_numpy"):
        part = column[start:stop]
        part = part.tolist() if hasattr(part, "tolist") else list(part)
        return [json_record({key: cell})[key] for cell in part]
    return [json_record({key: column})[key]] * (stop - start)


def compare(bayes_result: Any, freq_result: Any, *, ci_prob: float | None = None) -> pd.DataFrame:
    """The Bayesian and the frequentist pooled result side by side.

    Parameters
    ----------
    bayes_result : BayesMetaResult, ExactPosterior or BayesResult
        The posterior (from :func:`bayesmtor.bayesmeta`, exact or MCMC engine).
    freq_result : PoolResult
        The frequentist fit (from :func:`bayesmtor.rma`, ``rma_mh`` or ``rma_peto``).
    ci_prob : float, optional
        Probability of the Bayesian intervals; default the frequentist fit's, so that both
        columns describe intervals of the same probability.

    Returns
    -------
    pandas.DataFrame
        One row per column of the schema (index ``quantity``), with columns ``bayesian`` and
        ``frequentist``; for a ratio measure the rows ``ratio``, ``ratio_low`` and
        ``ratio_high`` (``exp`` of the estimate and its interval) follow ``ci_high``.
    """
    import pandas as pd

    freq = pooled_row(freq_result)
    if freq["engine"] != "frequentist":
        raise InputError(
            f"freq_result must be a frequentist fit, got a {freq['engine']} posterior",
            column="freq_result",
        )
    ci = freq["ci_prob"] if ci_prob is None else ci_prob
    bayes = pooled_row(bayes_result, ci_prob=ci, measure=freq["measure"])
    if bayes["engine"] == "frequentist":
        raise InputError(
            "bayes_result must be a posterior (exact or MCMC), got a frequentist fit",
            column="bayes_result",
        )
    rows = {}
    for name in POOLED_COLUMNS:
        rows[name] = (bayes[name], freq[name])
        if name == "ci_high" and is_ratio(freq["measure"]):
            for label, src in (
                ("ratio", "estimate"),
                ("ratio_low", "ci_low"),
                ("ratio_high", name),
            ):
                rows[label] = (math.exp(bayes[src]), math.exp(freq[src]))
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["bayesian", "frequentist"])
    out.index.name = "quantity"
    return out


# --------------------------------------------------------------------------------------------


def _ci(ci_prob: float | None) -> float:
    return check_prob(config.get("ci_prob", ci_prob), "ci_prob")


def _prior_text(prior: Any) -> str | None:
    if prior is None or isinstance(prior, str):
        return prior
    return getattr(prior, "label", None) or repr(prior)


def _sqrt(x: float) -> float:
    return math.sqrt(x) if math.isfinite(x) and x >= 0 else _NAN


def _frequentist(res: Any, ci_prob: float | None) -> dict[str, Any]:
    if ci_prob is not None and not math.isclose(float(ci_prob), res.ci_prob):
        raise InputError(
            f"the frequentist fit was computed with ci_prob={res.ci_prob}; refit it to get "
            f"intervals of probability {ci_prob}",
            column="ci_prob",
        )
    i2_tau = float(res.I2_tau)
    return {
        "engine": "frequentist",
        "method": res.method,
        "measure": res.measure,
        "ci_prob": float(res.ci_prob),
        "k": int(res.k),
        "estimate": float(res.estimate),
        "se": float(res.se),
        "ci_low": float(res.ci_low),
        "ci_high": float(res.ci_high),
        "pval": float(res.pval),
        "p_mu_below_0": _NAN,
        "tau2": float(res.tau2),
        "tau": float(res.tau),
        "tau_low": _sqrt(float(res.tau2_ci_low)),
        "tau_high": _sqrt(float(res.tau2_ci_high)),
        "I2": i2_tau if math.isfinite(i2_tau) else float(res.I2),
        **{name: float(getattr(res, name, _NAN)) for name in HETEROGENEITY_COLUMNS},
        "pred_low": float(res.pi_low),
        "pred_high": float(res.pi_high),
        "tau_prior": None,
        "mu_prior": None,
        "excluded": tuple((str(s), str(r)) for s, r in res.excluded),
        "converged": True,
        "quad_error": _NAN,
        "rhat_max": _NAN,
        "ess_bulk_min": _NAN,
        "divergences": _NAN,
    }


def _bayes(s: pd.DataFrame, ci: float, k: int) -> dict[str, Any]:
    tau = float(s.loc["tau", "median"])
    return {
        "ci_prob": ci,
        "k": int(k),
        "estimate": float(s.loc["mu", "median"]),
        "se": float(s.loc["mu", "sd"]),
        "ci_low": float(s.loc["mu", "q_low"]),
        "ci_high": float(s.loc["mu", "q_high"]),
        "pval": _NAN,
        "tau2": tau**2,
        "tau": tau,
        "tau_low": float(s.loc["tau", "q_low"]),
        "tau_high": float(s.loc["tau", "q_high"]),
        "I2": 100.0 * float(s.loc["I2", "median"]),
        **dict.fromkeys(HETEROGENEITY_COLUMNS, _NAN),
        "pred_low": float(s.loc["theta_new", "q_low"]),
        "pred_high": float(s.loc["theta_new", "q_high"]),
        "excluded": (),
    }


def _exact(post: Any, ci: float) -> dict[str, Any]:
    return {
        **_bayes(post.summary(ci_prob=ci), ci, post.k),
        "engine": "exact",
        "method": getattr(post, "model", "normal_normal"),
        "measure": getattr(post, "measure", None),
        "p_mu_below_0": float(post.p_mu_below(0.0)),
        "tau_prior": _prior_text(post.tau_prior),
        "mu_prior": _prior_text(post.mu_prior),
        "converged": True,
        "quad_error": float(post.error_estimate),
        "rhat_max": _NAN,
        "ess_bulk_min": _NAN,
        "divergences": _NAN,
    }


def _mcmc(res: Any, ci: float) -> dict[str, Any]:
    d = res.diagnostics
    mu = np.asarray(res.idata.posterior["mu"].values, dtype=float)
    return {
        **_bayes(res.summary(ci_prob=ci), ci, len(res.labels)),
        "engine": "mcmc",
        "method": res.model,
        "measure": res.measure,
        "p_mu_below_0": float(np.mean(mu < 0)),
        "tau_prior": res.priors.get("tau"),
        "mu_prior": res.priors.get("mu"),
        "converged": bool(res.converged),
        "quad_error": _NAN,
        "rhat_max": _float(d.get("rhat_max")),
        "ess_bulk_min": _float(d.get("ess_bulk_min")),
        "divergences": _float(d.get("divergences")),
    }


def _float(x: Any) -> float:
    return _NAN if x is None else float(x)


def _is_missing(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
