"""Bayesian model averaging over fixed vs random effects and null vs effect (exact, no MCMC).

The four models of the normal-normal meta-analysis (the ensemble of metaBMA and RoBMA without
a bias component; Gronau et al. 2021, Adv Methods Pract Psychol Sci 4(1); Bartoš et al. 2021):

``FE-null``     mu = 0, tau = 0      p(y) = prod_i N(y_i; 0, s_i^2)
``FE-effect``   tau = 0              p(y) = int N(mu; m0, s0^2) prod_i N(y_i; mu, s_i^2) dmu
``RE-null``     mu = 0               p(y) = int p(tau) prod_i N(y_i; 0, s_i^2 + tau^2) dtau
``RE-effect``   the full model       p(y) = int int ... p(mu) p(tau) dmu dtau

with the priors of the full model (which must both be proper: an improper prior leaves the
marginal likelihoods undefined). Posterior model probabilities are ``prior_prob x p(y | M)``
normalised; the inclusion Bayes factors are the posterior odds of the effect models over the
null models (of RE over FE) divided by their prior odds. The model-averaged posterior of mu,

    P(RE-effect | y) p(mu | y, RE) + P(FE-effect | y) N(m_FE, s_FE^2)
        + [P(FE-null | y) + P(RE-null | y)] delta_0,

has a point mass at 0, so its quantiles ``q_p = inf{x : F(x) >= p}`` are exactly 0 for every
``p`` in ``(F(0-), F(0)]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesmtor import config
from bayesmtor.bayes.quadrature import _mix_cdf, _mix_quantile
from bayesmtor.errors import InputError, PriorError
from bayesmtor.vocabulary import check_prob

__all__ = [
    "BMA_COLUMNS",
    "BMA_MODELS",
    "BMAResult",
    "bma_batch",
    "bma_columns",
    "bma_object",
    "bma_text",
    "check_model_priors",
    "model_average",
    "require_proper",
]

#: The four models, in order.
BMA_MODELS: tuple[str, ...] = ("FE-null", "FE-effect", "RE-null", "RE-effect")
#: Columns of a table of model-averaged summaries (one row per analysis), in order.
BMA_COLUMNS: tuple[str, ...] = (
    *(f"posterior_prob_{m}" for m in BMA_MODELS),
    *(f"log_marginal_likelihood_{m}" for m in BMA_MODELS),
    "bf_inclusion_effect",
    "bf_inclusion_heterogeneity",
    "bma_mu_median",
    "bma_mu_low",
    "bma_mu_high",
)
_EFFECT = np.array([False, True, False, True])
_RANDOM = np.array([False, False, True, True])


def check_model_priors(prior_probs: Any = None) -> np.ndarray:
    """The prior model probabilities as an array in :data:`BMA_MODELS` order.

    ``None`` gives config ``"bma_prior_probs"``; a mapping names the models (all four), a
    sequence gives four numbers in order. They must be non-negative and sum to 1, and each
    pair compared by an inclusion Bayes factor must have positive prior mass on both sides.
    """
    value = config.get("bma_prior_probs", prior_probs)
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(BMA_MODELS))
        missing = [m for m in BMA_MODELS if m not in value]
        if unknown or missing:
            raise InputError(
                f"prior model probabilities must name the models {list(BMA_MODELS)}; "
                f"missing {missing}, unknown {unknown}",
                column="bma_prior_probs",
            )
        value = [value[m] for m in BMA_MODELS]
    try:
        p = np.array(value, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(
            f"prior model probabilities must be four numbers, got {value!r}",
            column="bma_prior_probs",
        ) from None
    if p.size != 4 or not np.isfinite(p).all() or (p < 0).any():
        raise InputError(
            f"prior model probabilities must be four non-negative numbers (for "
            f"{', '.join(BMA_MODELS)}), got {value!r}",
            column="bma_prior_probs",
        )
    if not math.isclose(float(p.sum()), 1.0, rel_tol=0, abs_tol=1e-9):
        raise InputError(
            f"prior model probabilities must sum to 1, got {value!r} (sum {p.sum():g})",
            column="bma_prior_probs",
        )
    for mask, what in ((_EFFECT, "effect"), (_RANDOM, "random-effects")):
        if p[mask].sum() <= 0 or p[~mask].sum() <= 0:
            raise InputError(
                f"prior model probabilities {value!r} give no prior mass to the {what} models "
                "or to their alternatives; an inclusion Bayes factor needs both",
                column="bma_prior_probs",
            )
    return p


@dataclass(frozen=True)
class BMAResult:
    """Model-averaged summary of one meta-analysis (see the module docstring).

    Attributes
    ----------
    models : pandas.DataFrame
        One row per model (:data:`BMA_MODELS`): ``name, prior_prob, posterior_prob,
        log_marginal_likelihood``.
    bf_inclusion_effect, bf_inclusion_heterogeneity : float
        Inclusion Bayes factors of the effect (mu free) and of heterogeneity (tau free).
    mu_median, mu_low, mu_high : float
        Quantiles of the model-averaged posterior of mu (central ``ci_prob`` interval).
    ci_prob : float
        Probability of the interval.
    """

    models: pd.DataFrame
    bf_inclusion_effect: float
    bf_inclusion_heterogeneity: float
    mu_median: float
    mu_low: float
    mu_high: float
    ci_prob: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``models`` as a list of objects, then the summaries."""
        return {
            "models": [
                {
                    "name": str(r.name),
                    "prior_prob": float(r.prior_prob),
                    "posterior_prob": float(r.posterior_prob),
                    "log_marginal_likelihood": float(r.log_marginal_likelihood),
                }
                for r in self.models.itertuples()
            ],
            "bf_inclusion_effect": self.bf_inclusion_effect,
            "bf_inclusion_heterogeneity": self.bf_inclusion_heterogeneity,
            "mu_median": self.mu_median,
            "mu_low": self.mu_low,
            "mu_high": self.mu_high,
            "ci_prob": self.ci_prob,
        }


def require_proper(tau_prior: Any, mu_prior: Any) -> None:
    """Refuse improper priors, under which the marginal likelihoods are not defined."""
    if not (tau_prior.is_proper and not mu_prior.is_flat):
        raise PriorError(
            f"model averaging needs proper priors on mu and tau, got tau ~ "
            f"{tau_prior.to_string()} and mu ~ {mu_prior.to_string()}: the marginal "
            "likelihoods are not defined under an improper prior; the prior must be proper "
            "(e.g. --tau-prior half-normal:0.5 --mu-prior normal:0,4)"
        )


def bma_batch(post: Any, prior_probs: Any = None, ci_prob: float | None = None) -> dict:
    """Model averaging of every analysis of a :class:`~bayesmtor.bayes.exact.BatchPosterior`.

    Returns
    -------
    dict
        ``log_marginal_likelihood`` and ``posterior_prob`` (m, 4) in :data:`BMA_MODELS`
        order, ``prior_prob`` (4,), ``bf_inclusion_effect``, ``bf_inclusion_heterogeneity``,
        ``mu_median``, ``mu_low``, ``mu_high`` (m,) and ``ci_prob``.
    """
    require_proper(post.tau_prior, post.mu_prior)
    prior = check_model_priors(prior_probs)
    ci = check_prob(config.get("ci_prob", ci_prob), "ci_prob")
    logml = np.column_stack(
        [
            post.log_likelihood_null(),
            post.log_likelihood_tau0(),
            post.log_likelihood_mu0(),
            post.log_marginal_likelihood(),
        ]
    )
    with np.errstate(divide="ignore"):
        logw = np.log(prior)[None, :] + logml
    top = np.max(np.where(np.isfinite(logw), logw, -np.inf), axis=1, keepdims=True)
    w = np.exp(logw - np.where(np.isfinite(top), top, 0.0))
    probs = w / w.sum(axis=1, keepdims=True)

    def odds(mask: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            post_odds = probs[:, mask].sum(axis=1) / probs[:, ~mask].sum(axis=1)
        return post_odds / (prior[mask].sum() / prior[~mask].sum())

    lo, hi = (1.0 - ci) / 2.0, (1.0 + ci) / 2.0
    q = _averaged_quantiles(post, probs, np.array([0.5, lo, hi]))
    return {
        "prior_prob": prior,
        "log_marginal_likelihood": logml,
        "posterior_prob": probs,
        "bf_inclusion_effect": odds(_EFFECT),
        "bf_inclusion_heterogeneity": odds(_RANDOM),
        "mu_median": q[:, 0],
        "mu_low": q[:, 1],
        "mu_high": q[:, 2],
        "ci_prob": ci,
    }


def _averaged_quantiles(post: Any, probs: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Quantiles ``inf{x : F(x) >= p}`` of the model-averaged posterior of mu, (m, len(p)).

    The continuous part (RE-effect mixture and the FE-effect normal, total mass ``1 - P0``)
    is one normal mixture; the null models put mass ``P0`` at 0. With ``C = F(0-)`` (the
    continuous mass below 0): ``p <= C`` is the continuous quantile at ``p / (1 - P0)``,
    ``C < p <= C + P0`` gives exactly 0, and ``p > C + P0`` the continuous quantile at
    ``(p - P0) / (1 - P0)``.
    """
    m = post.k.size
    out = np.full((m, p.size), np.nan)
    fe_mean, fe_sd = post.fixed_effect_posterior()
    for g in post._groups:
        pw, mean, sd = g.mu_mix()
        r = g.rows
        p_re, p_fe = probs[r, 3], probs[r, 1]
        p0 = probs[r, 0] + probs[r, 2]
        cont = 1.0 - p0
        with np.errstate(invalid="ignore", divide="ignore"):
            wts = np.column_stack([pw * (p_re / cont)[:, None], p_fe / cont])
        means = np.column_stack([mean, fe_mean[r] - g.ref])
        sds = np.column_stack([sd, fe_sd[r]])
        wts = np.where(np.isfinite(wts), wts, 0.0)
        empty = ~(cont > 0)  # all mass at 0: a placeholder mixture (the answer is 0)
        wts[empty] = 0.0
        wts[empty, -1] = 1.0
        below = cont * _mix_cdf(-g.ref[:, None], wts, means, sds)[:, 0]  # C = F(0-)
        pp = np.broadcast_to(p, (r.size, p.size))
        low_side = pp <= below[:, None]
        zero = ~low_side & (pp <= (below + p0)[:, None])
        with np.errstate(invalid="ignore", divide="ignore"):
            target = np.where(low_side, pp, pp - p0[:, None]) / cont[:, None]
        # entries at the point mass take a placeholder target (cheap to solve, overwritten)
        target = np.where(zero | empty[:, None] | ~np.isfinite(target), 0.5, target)
        target = np.clip(target, 0.0, 1.0)
        q = g.ref[:, None] + _mix_quantile(target, wts, means, sds)
        q = np.where(zero | (cont[:, None] <= 0), 0.0, q)
        out[r] = q
    out[post.k == 0] = np.nan
    return out


def model_average(
    post: Any, *, prior_probs: Mapping[str, float] | Sequence[float] | None = None,
    ci_prob: float | None = None,
) -> BMAResult:  # fmt: skip
    """Model averaging of one exact posterior (:class:`~bayesmtor.bayes.exact.ExactPosterior`).

    Parameters
    ----------
    post : ExactPosterior
        The exact posterior of the full (RE-effect) model; both priors must be proper.
    prior_probs : mapping or sequence, optional
        Prior model probabilities (:data:`BMA_MODELS` names or order); default config
        ``"bma_prior_probs"`` (1/4 each).
    ci_prob : float, optional
        Interval probability (default config ``"ci_prob"``).

    Raises
    ------
    PriorError
        With an improper prior (the marginal likelihoods are then not defined).
    """
    batch = getattr(post, "_batch", post)
    res = bma_batch(batch, prior_probs, ci_prob)
    models = pd.DataFrame(
        {
            "name": list(BMA_MODELS),
            "prior_prob": res["prior_prob"],
            "posterior_prob": res["posterior_prob"][0],
            "log_marginal_likelihood": res["log_marginal_likelihood"][0],
        }
    )
    return BMAResult(
        models=models,
        bf_inclusion_effect=float(res["bf_inclusion_effect"][0]),
        bf_inclusion_heterogeneity=float(res["bf_inclusion_heterogeneity"][0]),
        mu_median=float(res["mu_median"][0]),
        mu_low=float(res["mu_low"][0]),
        mu_high=float(res["mu_high"][0]),
        ci_prob=float(res["ci_prob"]),
    )


def bma_columns(res: dict) -> dict[str, np.ndarray]:
    """The :data:`BMA_COLUMNS` of a :func:`bma_batch` result, one value per analysis."""
    out = {f"posterior_prob_{m}": res["posterior_prob"][:, j] for j, m in enumerate(BMA_MODELS)}
    out.update(
        {
            f"log_marginal_likelihood_{m}": res["log_marginal_likelihood"][:, j]
            for j, m in enumerate(BMA_MODELS)
        }
    )
    for key in ("bf_inclusion_effect", "bf_inclusion_heterogeneity"):
        out[key] = res[key]
    for key in ("mu_median", "mu_low", "mu_high"):
        out[f"bma_{key}"] = res[key]
    return out


def bma_object(row: Mapping[str, Any], prior_probs: Any = None) -> dict[str, Any] | None:
    """The ``bma`` object of one table row (JSON-ready: missing numbers are ``None``)."""

    def num(x: Any) -> float | None:
        v = float(x)
        return v if math.isfinite(v) else None

    if not np.isfinite(float(row["posterior_prob_RE-effect"])):
        return None
    prior = check_model_priors(prior_probs)
    return {
        "models": [
            {
                "name": m,
                "prior_prob": float(prior[j]),
                "posterior_prob": num(row[f"posterior_prob_{m}"]),
                "log_marginal_likelihood": num(row[f"log_marginal_likelihood_{m}"]),
            }
            for j, m in enumerate(BMA_MODELS)
        ],
        "bf_inclusion_effect": num(row["bf_inclusion_effect"]),
        "bf_inclusion_heterogeneity": num(row["bf_inclusion_heterogeneity"]),
        "mu_median": num(row["bma_mu_median"]),
        "mu_low": num(row["bma_mu_low"]),
        "mu_high": num(row["bma_mu_high"]),
    }


def bma_text(frame: pd.DataFrame, by: Sequence[str] = ()) -> str:
    """A readable table of the ``bma`` objects of ``frame`` (one row per analysis)."""
    rows = []
    for _, r in frame.iterrows():
        b = r["bma"]
        if b is None:
            continue
        row = {c: r[c] for c in by}
        row.update({f"P({m['name']})": m["posterior_prob"] for m in b["models"]})
        row.update(
            {
                "BF_incl effect": b["bf_inclusion_effect"],
                "BF_incl heterogeneity": b["bf_inclusion_heterogeneity"],
                "mu median": b["mu_median"],
                "mu low": b["mu_low"],
                "mu high": b["mu_high"],
            }
        )
        rows.append(row)
    prior = ", ".join(
        f"{m['name']} {m['prior_prob']:g}" for m in frame["bma"].dropna().iloc[0]["models"]
    )
    head = f"Model averaging (prior probabilities {prior}); model-averaged mu quantiles:"
    return head + "\n" + pd.DataFrame(rows).to_string(index=False, float_format="%.4g")
