"""Frequentist meta-analysis on the log scale, matching R metafor.

Every estimator is written once, for ``m`` meta-analyses at a time: study values sit in padded
``(m, kmax)`` arrays with a boolean mask, and all sums run along the study axis. A single
meta-analysis is the case ``m = 1``; pooling per group (``pool_groups``), leave-one-out and
subgroup analyses reuse the same core with one row per fit.

Methods
-------
Fixed effect
    ``"FE"`` inverse variance; ``"MH"`` Mantel-Haenszel for RR (Greenland-Robins variance), OR
    (Robins-Breslow-Greenland variance) and RD; ``"PETO"`` Peto's one-step odds ratio.
Random effects
    ``"DL"``, ``"REML"``, ``"PM"``, ``"ML"``, ``"SJ"``, ``"HE"``, ``"HS"`` (Hunter-Schmidt) and
    ``"EB"`` (empirical Bayes, = PM without moderators) estimators of tau^2, with the Q-profile
    confidence interval for tau^2 (Viechtbauer 2007), never capped above, mapped to tau, I2 and
    H2 as metafor ``confint()``; ``tau2_se`` for ML and REML; and, on request, the
    Hartung-Knapp-Sidik-Jonkman (HKSJ) interval for the pooled effect (untruncated, t on k-1 df).

Zero cells in Mantel-Haenszel
    RevMan 5 adds 1/2 to every cell of a study with a zero cell, also inside the MH estimate, and
    drops studies without events (or without non-events) in both arms. This is the default
    (``mh_correction="revman"``); in metafor it is
    ``rma.mh(..., add=c(1/2, 1/2), to=c("only0", "only0"), drop00=c(TRUE, TRUE))``.
    ``mh_correction="none"`` gives metafor's default ``rma.mh()``, whose MH estimate uses the
    uncorrected counts of every table, including those with events in every participant of both
    arms (``add=1/2, to="only0"``, ``drop00=TRUE`` then only affect the study-level yi/vi used
    for Cochran's Q and ``k``). For RD the MH estimate never needs a correction and uses raw counts either way,
    and double-zero tables are kept (a risk difference of 0 is informative). metafor's
    ``correct`` argument only concerns the continuity correction of the Cochran-Mantel-Haenszel
    test statistic, not the MH estimate.

Heterogeneity
    Q is taken around the fixed-effect estimate (around the MH estimate for MH; Peto's Q for
    Peto), ``I2 = max(0, (Q - df) / Q) * 100`` and ``H2 = Q / df`` as in RevMan. For random-effects
    fits metafor reports ``I2 = 100 tau^2 / (tau^2 + s^2)`` and ``H2 = (tau^2 + s^2) / s^2`` with
    ``s^2`` the typical within-study variance (Higgins & Thompson 2002); these are ``I2_tau`` and
    ``H2_tau``.

Prediction interval
    ``pi="t"`` (the default, ``config.defaults["pi_dist"]``): ``mu +/- t(k-2) sqrt(tau^2 + SE^2)``
    (Higgins, Thompson & Spiegelhalter 2009; Cochrane Handbook) for k >= 3; ``pi="z"``: the
    normal quantile, exactly metafor's ``predict()``, for k >= 2.

References
----------
DerSimonian & Laird (1986) Control Clin Trials 7:177. Paule & Mandel (1982) J Res NBS 87:377.
Sidik & Jonkman (2005) Stat Med 24:3147. Hedges & Olkin (1985). Viechtbauer (2005) J Educ Behav
Stat 30:261; (2007) Stat Med 26:37. Greenland & Robins (1985) Biometrics 41:55. Robins, Breslow &
Greenland (1986) Biometrics 42:311. Yusuf et al. (1985) Prog Cardiovasc Dis 27:335. Hartung &
Knapp (2001) Stat Med 20:3875. Egger et al. (1997) BMJ 315:629. Deeks & Higgins (2010)
Statistical algorithms in Review Manager 5.
"""

from bayesmtor.frequentist.analyses import (
    leave_one_out,
    meta_analysis,
    pool_groups,
    subgroup_analysis,
)
from bayesmtor.frequentist.api import egger_test, rma, rma_mh, rma_peto
from bayesmtor.frequentist.results import (
    JSON_KEYS,
    EggerResult,
    PoolResult,
    RankTestResult,
    SubgroupResult,
)
from bayesmtor.frequentist.sensitivity import confint, cumulative, ranktest, regtest

#: metafor's names of the same functions (``leave1out(res)``, ``cumul(res, order=)``).
leave1out = leave_one_out
cumul = cumulative

from bayesmtor.vocabulary import (  # noqa: E402 - after the aliases, kept with the other names
    FE_METHODS,
    MEASURES,
    METHODS,
    RATIO_MEASURES,
    RE_METHODS,
    TESTS,
)

__all__ = [
    "FE_METHODS",
    "RE_METHODS",
    "METHODS",
    "MEASURES",
    "RATIO_MEASURES",
    "TESTS",
    "JSON_KEYS",
    "PoolResult",
    "SubgroupResult",
    "EggerResult",
    "RankTestResult",
    "rma",
    "rma_mh",
    "rma_peto",
    "meta_analysis",
    "pool_groups",
    "subgroup_analysis",
    "leave_one_out",
    "cumulative",
    "leave1out",
    "cumul",
    "egger_test",
    "regtest",
    "ranktest",
    "confint",
]
