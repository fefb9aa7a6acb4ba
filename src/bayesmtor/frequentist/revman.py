"""RevMan 5's random-effects model and its test for subgroup differences.

RevMan 5 (Deeks & Higgins 2010, *Statistical algorithms in Review Manager 5*) estimates tau^2 by
DerSimonian and Laird's moment formula, but with Cochran's Q of the outcome's own fixed-effect
method: for a Mantel-Haenszel outcome, Q is taken about the **MH** pooled estimate (with the
study estimates and variances of the 1/2 zero-cell rule), not about the inverse-variance one.
The random-effects estimate is then the inverse-variance average with weights
``1 / (v_i + tau^2)``. For inverse-variance outcomes this is plain DerSimonian-Laird (metafor
``rma(method="DL")``); for MH outcomes tau^2 differs slightly from it.

The test for subgroup differences is Cochran's Q of the subgroup estimates about their
inverse-variance mean, weights ``1 / SE_j^2``, on ``J - 1`` degrees of freedom, with
``I2 = max(0, (Q - df) / Q) * 100``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from bayesmtor import _special as special
from bayesmtor import config
from bayesmtor.vocabulary import z_quantile

__all__ = ["RandomEffects", "SubgroupDifferences", "revman_random_effects", "subgroup_differences"]


class RandomEffects(NamedTuple):
    """RevMan's random-effects fit: ``tau2`` and the pooled estimate (analysis scale)."""

    tau2: float
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    z: float
    pval: float


class SubgroupDifferences(NamedTuple):
    """The test for subgroup differences: Q between subgroups, its df, p-value and I2 (%)."""

    Q: float
    df: float
    pval: float
    I2: float


def revman_random_effects(
    yi: Any, vi: Any, q: float, *, ci_prob: float | None = None
) -> RandomEffects:
    """DerSimonian-Laird with a given Cochran's Q, then inverse-variance random-effects pooling.

    Parameters
    ----------
    yi, vi : array-like
        Study estimates and variances (analysis scale; for counts, with the 1/2 zero-cell rule).
    q : float
        Cochran's Q of the outcome's fixed-effect method (about the MH estimate for MH
        outcomes, about the inverse-variance estimate for IV outcomes).
    ci_prob : float, optional
        Interval probability (default ``config["ci_prob"]``).

    Returns
    -------
    RandomEffects
        ``tau2 = max(0, (Q - (k - 1)) / (S1 - S2 / S1))`` with ``S1 = sum 1/v_i``,
        ``S2 = sum 1/v_i^2``; 0 when k = 1.
    """
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    w = 1.0 / v
    s1, s2 = w.sum(), (w**2).sum()
    k = y.size
    tau2 = max(0.0, (float(q) - (k - 1)) / (s1 - s2 / s1)) if k > 1 else 0.0
    ws = 1.0 / (v + tau2)
    est = float((ws * y).sum() / ws.sum())
    se = float(1.0 / np.sqrt(ws.sum()))
    z = est / se
    crit = z_quantile(float(config.get("ci_prob", ci_prob)))
    pval = float(2.0 * special.ndtr(-abs(z)))
    return RandomEffects(tau2, est, se, est - crit * se, est + crit * se, z, pval)


def subgroup_differences(estimates: Any, ses: Any) -> SubgroupDifferences:
    """RevMan's test for subgroup differences from the subgroup estimates and their SEs.

    Parameters
    ----------
    estimates, ses : array-like
        Pooled estimate and standard error of each subgroup (analysis scale); subgroups whose
        estimate or SE is missing are left out.

    Returns
    -------
    SubgroupDifferences
        All NaN when fewer than two subgroups have an estimate.
    """
    est = np.asarray(estimates, dtype=float)
    se = np.asarray(ses, dtype=float)
    ok = np.isfinite(est) & np.isfinite(se) & (se > 0)
    if ok.sum() < 2:
        nan = float("nan")
        return SubgroupDifferences(nan, nan, nan, nan)
    w = 1.0 / se[ok] ** 2
    mu = np.sum(w * est[ok]) / np.sum(w)
    q = float(np.sum(w * (est[ok] - mu) ** 2))
    df = float(ok.sum() - 1)
    i2 = max(0.0, (q - df) / q) * 100.0 if q > 0 else 0.0
    return SubgroupDifferences(q, df, float(special.chdtrc(df, q)), i2)
