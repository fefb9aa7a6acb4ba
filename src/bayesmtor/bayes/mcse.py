"""Posterior summaries of MCMC draws with the Monte Carlo standard error of every number.

Works on plain arrays of draws shaped ``(chain, draw)``, whatever sampler produced them: the
summaries of a fit and their MCSEs depend on the draws only. Means and probabilities (the mean
of an indicator) carry ArviZ's mean MCSE (``az.mcse(method="mean")``), standard deviations its
``method="sd"`` MCSE, and quantiles and interval end points its quantile MCSE
(``az.mcse(method="quantile", prob=p)``; Vehtari et al. 2021, Bayesian Analysis 16(2):667-718).
A shortest interval's end points are empirical quantiles too (at the probabilities of the
window of sorted draws that is narrowest), and carry the quantile MCSE at those probabilities.
A function of a summary (``tau2`` = tau_median^2) carries the delta-method MCSE.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from bayesmtor import config
from bayesmtor.vocabulary import check_prob

__all__ = [
    "MCSE_SUFFIX",
    "draw_summary",
    "mcse_key",
    "posterior_draws",
    "schema_values",
    "shortest_window",
]

#: Suffix of the key of a number's Monte Carlo standard error (``mu_median_mcse``).
MCSE_SUFFIX = "_mcse"


def mcse_key(key: str) -> str:
    """The key of the MCSE of ``key``."""
    return key + MCSE_SUFFIX


def _chains(x: Any) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    return a.reshape(1, -1) if a.ndim == 1 else a.reshape(a.shape[0], -1)


def _mcse(x: np.ndarray, method: str, prob: float | None = None) -> float:
    from bayesmtor._arviz import load as _load_arviz

    az = _load_arviz()

    kwargs = {"prob": prob} if prob is not None else {}
    value = az.mcse(az.convert_to_dataset({"x": x}), method=method, **kwargs)["x"].values
    return float(value)


def shortest_window(x: np.ndarray, ci_prob: float) -> tuple[float, float]:
    """Probabilities ``(p_low, p_high)`` of the narrowest window of sorted draws holding
    ``ci_prob`` of them (the empirical shortest interval, ArviZ's ``hdi`` for one mode)."""
    s = np.sort(np.asarray(x, dtype=float).ravel())
    n = s.size
    inside = int(math.ceil(ci_prob * n))
    widths = s[inside - 1 :] - s[: n - inside + 1]
    i = int(np.argmin(widths))
    # the probabilities whose (linear-interpolated) quantiles are these draws
    return i / (n - 1), (i + inside - 1) / (n - 1)


def draw_summary(
    draws: Mapping[str, Any], ci_prob: float | None = None, interval: str | None = None
) -> dict[str, float]:
    """Summaries of ``mu``, ``tau`` and ``theta_new`` draws, each with its MCSE.

    Parameters
    ----------
    draws : mapping
        ``"mu"``, ``"tau"`` and ``"theta_new"`` (and optionally ``"I2"``, a share in [0, 1]),
        each ``(chain, draw)`` (a 1-D array is one chain).
    ci_prob : float, optional
        Interval probability (default config ``"ci_prob"``).
    interval : str, optional
        ``"central"`` or ``"shortest"`` (default config ``"ci_kind"``).

    Returns
    -------
    dict
        ``mu_mean, mu_sd, mu_median, mu_low, mu_high, tau_median, tau_low, tau_high,
        pred_low, pred_high, p_mu_below_0`` (and ``I2_median``, in percent), each followed by
        its ``<key>_mcse``.
    """
    ci = check_prob(config.get("ci_prob", ci_prob), "ci_prob")
    kind = config.get("ci_kind", interval)
    lo, hi = (1.0 - ci) / 2.0, (1.0 + ci) / 2.0
    out: dict[str, float] = {}

    def put(key: str, value: float, err: float) -> None:
        out[key] = float(value)
        out[mcse_key(key)] = float(err)

    def quantile(key: str, x: np.ndarray, p: float, scale: float = 1.0) -> None:
        edge = 0.5 / x.size  # the MCSE of an extreme draw: at the nearest inner probability
        err = _mcse(x, "quantile", min(max(p, edge), 1.0 - edge))
        put(key, scale * float(np.quantile(x, p)), scale * err)

    mu, tau, new = (_chains(draws[name]) for name in ("mu", "tau", "theta_new"))
    put("mu_mean", mu.mean(), _mcse(mu, "mean"))
    sd = mu.std(ddof=1)  # delta method on the mean of squared deviations (ArviZ's "sd" rule)
    put("mu_sd", sd, _mcse((mu - mu.mean()) ** 2, "mean") / (2.0 * sd) if sd > 0 else 0.0)
    quantile("mu_median", mu, 0.5)
    quantile("tau_median", tau, 0.5)
    for name, x in (("mu", mu), ("tau", tau), ("pred", new)):
        p_lo, p_hi = (lo, hi) if kind != "shortest" else shortest_window(x, ci)
        quantile(f"{name}_low", x, p_lo)
        quantile(f"{name}_high", x, p_hi)
    below = (mu < 0).astype(float)
    put("p_mu_below_0", below.mean(), _mcse(below, "mean") if below.std() > 0 else 0.0)
    if "I2" in draws:
        quantile("I2_median", _chains(draws["I2"]), 0.5, scale=100.0)
    return {k: out[k] for k in _ORDER if k in out} | {
        k: v for k, v in out.items() if k not in _ORDER
    }


_BASE = (
    "mu_mean", "mu_sd", "mu_median", "mu_low", "mu_high", "tau_median", "tau_low", "tau_high",
    "pred_low", "pred_high", "p_mu_below_0", "I2_median",
)  # fmt: skip
_ORDER = tuple(k for b in _BASE for k in (b, mcse_key(b)))


# The schema's names (bayesmtor.schema.POOLED_COLUMNS) of the summaries of draw_summary.
_SCHEMA_NAMES = {
    "estimate": "mu_median", "se": "mu_sd", "ci_low": "mu_low", "ci_high": "mu_high",
    "p_mu_below_0": "p_mu_below_0", "tau": "tau_median", "tau_low": "tau_low",
    "tau_high": "tau_high", "I2": "I2_median", "pred_low": "pred_low", "pred_high": "pred_high",
}  # fmt: skip


def schema_values(summary: Mapping[str, float]) -> dict[str, float]:
    """The pooled-schema values of a :func:`draw_summary` and their MCSEs (``tau2`` = the
    squared tau median, with the delta-method MCSE ``2 tau mcse(tau)``)."""
    out: dict[str, float] = {}
    for name, src in _SCHEMA_NAMES.items():
        if src in summary:
            out[name] = summary[src]
            out[mcse_key(name)] = summary[mcse_key(src)]
    tau = summary["tau_median"]
    out["tau2"] = tau * tau
    out[mcse_key("tau2")] = 2.0 * abs(tau) * summary[mcse_key("tau_median")]
    return out


def posterior_draws(idata: Any) -> dict[str, np.ndarray]:
    """The ``(chain, draw)`` arrays of ``mu``, ``tau``, ``theta_new`` (and ``I2``) of an
    InferenceData's posterior group."""
    post = idata.posterior
    names = [n for n in ("mu", "tau", "theta_new", "I2") if n in post]
    return {n: np.asarray(post[n].values, dtype=float) for n in names}
