"""Tables of Bayesian results per outcome x drug class, and the side-by-side comparison.

:func:`bayes_summary_table` turns MCMC results (:class:`~bayesmtor.pymc_models.BayesResult`)
and exact-quadrature results (:class:`~bayesmtor.exact.ExactPosterior`) into one row per
(outcome, drug class) with explicit column names, all effects on the log scale except the
``ratio_*`` columns. :func:`side_by_side` joins that table with the frequentist one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from bayesmtor import config
from bayesmtor.errors import InputError

__all__ = ["BAYES_COLUMNS", "bayes_summary_table", "side_by_side"]

#: Columns of :func:`bayes_summary_table`, after ``outcome`` and ``drug_class``.
BAYES_COLUMNS: tuple[str, ...] = (
    "model",
    "engine",
    "k",
    "mu_mean",
    "mu_median",
    "mu_low",
    "mu_high",
    "ratio_median",
    "ratio_low",
    "ratio_high",
    "tau_median",
    "tau_low",
    "tau_high",
    "I2_median",
    "pred_low",
    "pred_high",
    "p_ratio_below_1",
    "threshold",
    "p_ratio_below_threshold",
    "rhat_max",
    "ess_bulk_min",
    "divergences",
    "converged",
)

_KEYS = ("outcome", "drug_class")


def bayes_summary_table(
    results: Mapping[tuple[str, str], Any],
    ci_prob: float | None = None,
    threshold: float | None = None,
) -> pd.DataFrame:
    """One row per (outcome, drug class) summarising Bayesian fits.

    Parameters
    ----------
    results : Mapping[(outcome, drug_class), BayesResult | ExactPosterior]
        Fitted models keyed by outcome id (e.g. ``"pfs"``) and drug-class group id.
    ci_prob : float, optional
        Probability of the credible and prediction intervals (central, equal-tailed);
        default ``config.defaults["ci_prob"]``.
    threshold : float, optional
        Ratio threshold for ``p_ratio_below_threshold`` (NaN when not given).

    Returns
    -------
    pandas.DataFrame
        Columns ``outcome, drug_class`` then :data:`BAYES_COLUMNS`. ``mu_*`` and ``pred_*`` are
        on the log scale, ``ratio_*`` are ``exp(mu)``; ``pred_low/pred_high`` is the interval for
        the effect in a new trial (``theta_new``). MCMC diagnostics are NaN for the exact engine,
        whose ``converged`` is True by construction.
    """
    ci = float(config.get("ci_prob", ci_prob))
    if not 0.0 < ci < 1.0:
        raise InputError(f"ci_prob must lie strictly between 0 and 1, got {ci}", column="ci_prob")
    if threshold is not None and not (np.isfinite(threshold) and threshold > 0):
        raise InputError(
            f"threshold is a ratio and must be a positive number, got {threshold!r}",
            column="threshold",
        )
    if not isinstance(results, Mapping):
        raise InputError(
            f"results must be a mapping {{(outcome, drug_class): result}}, got "
            f"{type(results).__name__}"
        )
    rows = []
    for key, res in results.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise InputError(
                f"results key {key!r} is not an (outcome, drug_class) pair", column="outcome"
            )
        row: dict[str, Any] = {"outcome": key[0], "drug_class": key[1]}
        if getattr(res, "engine", None) == "mcmc" and hasattr(res, "idata"):
            row.update(_row_mcmc(res, ci, threshold))
        elif hasattr(res, "summary") and hasattr(res, "p_mu_below"):
            row.update(_row_exact(res, ci, threshold))
        else:
            raise InputError(
                f"result for {key!r} is a {type(res).__name__}; expected a BayesResult or an "
                "ExactPosterior",
                column="results",
            )
        rows.append(row)
    table = pd.DataFrame(rows, columns=[*_KEYS, *BAYES_COLUMNS])
    table.attrs.update({"ci_prob": ci, "threshold": threshold})
    return table


def side_by_side(bayes_table: pd.DataFrame, freq_table: pd.DataFrame) -> pd.DataFrame:
    """Join Bayesian and frequentist rows on (outcome, drug_class).

    Parameters
    ----------
    bayes_table : pandas.DataFrame
        Output of :func:`bayes_summary_table`.
    freq_table : pandas.DataFrame
        Frequentist table with ``outcome`` and ``drug_class`` as columns or index levels, and
        columns such as ``estimate, ci_low, ci_high, tau2, I2`` (log scale).

    Returns
    -------
    pandas.DataFrame
        ``outcome, drug_class``, then every Bayesian column prefixed ``bayes_`` and every
        frequentist column prefixed ``freq_``. Outer join: a pair present on one side only
        keeps NaN on the other. Neither input is modified.
    """
    b = _with_keys(bayes_table, "bayes_table")
    f = _with_keys(freq_table, "freq_table")
    b = b.rename(columns={c: f"bayes_{c}" for c in b.columns if c not in _KEYS})
    f = f.rename(columns={c: f"freq_{c}" for c in f.columns if c not in _KEYS})
    out = b.merge(f, on=list(_KEYS), how="outer", sort=False)
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------------


def _with_keys(table: pd.DataFrame, name: str) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"{name} must be a pandas DataFrame, got {type(table).__name__}")
    df = table.copy()
    index_names = [n for n in df.index.names if n is not None]
    if index_names and set(_KEYS) <= set(index_names) | set(df.columns):
        df = df.reset_index(level=[n for n in index_names if n in _KEYS or n not in df.columns])
    for k in _KEYS:
        if k not in df.columns:
            raise InputError(
                f"{name} has no '{k}' column or index level; both 'outcome' and 'drug_class' "
                "are needed to join the tables",
                column=k,
            )
    dup = df.duplicated(subset=list(_KEYS))
    if dup.any():
        first = df.loc[dup, list(_KEYS)].iloc[0].tolist()
        raise InputError(
            f"{name} has more than one row for (outcome, drug_class) = {tuple(first)}; one row "
            "per pair is needed",
            column="outcome",
        )
    return df


def _row_mcmc(res: Any, ci: float, threshold: float | None) -> dict[str, Any]:
    s = res.summary(ci_prob=ci, threshold=threshold)
    d = res.diagnostics
    return {
        "model": res.model,
        "engine": "mcmc",
        "k": len(res.labels),
        "mu_mean": s.loc["mu", "mean"],
        "mu_median": s.loc["mu", "median"],
        "mu_low": s.loc["mu", "q_low"],
        "mu_high": s.loc["mu", "q_high"],
        "ratio_median": s.loc["ratio", "median"],
        "ratio_low": s.loc["ratio", "q_low"],
        "ratio_high": s.loc["ratio", "q_high"],
        "tau_median": s.loc["tau", "median"],
        "tau_low": s.loc["tau", "q_low"],
        "tau_high": s.loc["tau", "q_high"],
        "I2_median": s.loc["I2", "median"],
        "pred_low": s.loc["theta_new", "q_low"],
        "pred_high": s.loc["theta_new", "q_high"],
        "p_ratio_below_1": s.loc["mu", "p_ratio_below_1"],
        "threshold": np.nan if threshold is None else float(threshold),
        "p_ratio_below_threshold": s.loc["mu", "p_ratio_below_threshold"],
        "rhat_max": d.get("rhat_max", np.nan),
        "ess_bulk_min": d.get("ess_bulk_min", np.nan),
        "divergences": d.get("divergences", np.nan),
        "converged": bool(res.converged),
    }


def _row_exact(res: Any, ci: float, threshold: float | None) -> dict[str, Any]:
    s = res.summary(ci_prob=ci)
    k = getattr(res, "k", None)
    if k is None:
        yi = getattr(res, "yi", None)
        k = len(yi) if yi is not None else np.nan
    return {
        "model": getattr(res, "model", "normal_normal"),
        "engine": "exact",
        "k": k,
        "mu_mean": s.loc["mu", "mean"],
        "mu_median": s.loc["mu", "median"],
        "mu_low": s.loc["mu", "q_low"],
        "mu_high": s.loc["mu", "q_high"],
        "ratio_median": float(np.exp(s.loc["mu", "median"])),
        "ratio_low": float(np.exp(s.loc["mu", "q_low"])),
        "ratio_high": float(np.exp(s.loc["mu", "q_high"])),
        "tau_median": s.loc["tau", "median"],
        "tau_low": s.loc["tau", "q_low"],
        "tau_high": s.loc["tau", "q_high"],
        "I2_median": s.loc["I2", "median"],
        "pred_low": s.loc["theta_new", "q_low"],
        "pred_high": s.loc["theta_new", "q_high"],
        "p_ratio_below_1": float(res.p_mu_below(0.0)),
        "threshold": np.nan if threshold is None else float(threshold),
        "p_ratio_below_threshold": (
            np.nan if threshold is None else float(res.p_mu_below(float(np.log(threshold))))
        ),
        "rhat_max": np.nan,
        "ess_bulk_min": np.nan,
        "divergences": np.nan,
        "converged": True,
    }
