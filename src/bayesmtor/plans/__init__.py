"""Declarative analysis plans: ``models/*.toml`` files, their schema and their validation.

A plan says *what* to estimate (outcomes x comparisons x effect measures x likelihoods), with
which priors, which Bayesian engine, which frequentist cross-check and which sensitivity sweep.
It does not run anything: the runner turns a :class:`Plan` into fits. Plans are stored as plain
TOML so that a reader can audit them, and every output records the exact plan it came from
(:meth:`Plan.to_toml`).

Schema (version 1)
------------------
Every table and key below is documented with its reasons in ``models/README.md``.

``[plan]``
    ``name`` (required, ``^[a-z0-9_]+$``), ``description`` (required, non-empty),
    ``unit`` (required: ``"trial"`` counts every randomized trial once; ``"report"`` counts every
    report/subgroup as the 2014 paper did), ``bolero2`` (only with ``unit = "trial"``; default
    ``"latest_full_report"``; or ``"partition:visceral_metastases"`` / ``"partition:region"``),
    ``ci_prob`` (interval probability for confidence, credible and prediction intervals alike;
    default ``bayesmtor.config``), ``schema_version`` (optional, only ``1``).
``[[analysis]]`` (one or more)
    ``outcome`` (``"orr"``, ``"cbr"``, ``"pfs"``, ``"ae_any:<event>"``, ``"ae_grade34:<event>"``,
    or the wildcards ``"ae_any:*"`` / ``"ae_grade34:*"``), ``comparison`` (a comparison id or
    ``"*"``), ``measure`` (``"RR"``, ``"OR"``, ``"RD"`` for count outcomes; ``"HR"`` for ``pfs``
    only), ``likelihood`` (``"normal-normal"`` default, ``"binomial-normal"`` for counts with OR or
    RR, ``"multilevel"`` with ``comparison = "*"``), and the optional per-analysis overrides
    ``bayes`` and ``check_with_mcmc`` of the ``[engine]`` values.
``[priors]`` (optional)
    ``tau``, ``mu``, ``tau_class`` as prior strings (grammar below); defaults from
    ``bayesmtor.config``. ``tau_class`` is the prior on the between-class SD of the multilevel
    model.
``[engine]`` (optional)
    ``bayes`` (``"exact"`` default or ``"mcmc"``), ``check_with_mcmc`` (default ``false``).
``[mcmc]`` (optional)
    ``draws``, ``tune``, ``chains``, ``target_accept``, ``seed``; defaults from ``bayesmtor.config``.
``[frequentist]`` (optional)
    ``method`` (``FE MH PETO DL REML PM ML SJ HE``, default ``"REML"``), ``hksj`` (default
    ``false``; random-effects methods only).
``[sensitivity]`` (optional)
    ``tau_priors``: a non-empty list of distinct tau prior strings.

Prior strings
    tau: ``half-normal:S``, ``half-cauchy:S``, ``half-student-t:S,NU`` (or ``half-t:S,NU``),
    ``uniform:A,B``, ``log-normal:M,S``, ``turner:OUTCOME_TYPE,COMPARISON_TYPE``; mu:
    ``normal:M,S`` or ``flat``. They are read by the one prior grammar of the package,
    :meth:`TauPrior.from_string <bayesmtor.bayes.priors.TauPrior.from_string>` /
    :meth:`MuPrior.from_string <bayesmtor.bayes.priors.MuPrior.from_string>` (NumPy/SciPy,
    never PyMC), once, when the plan is loaded; the plan holds the prior objects and writes them
    back with ``to_string()``.

Defaults are resolved at load time, so a loaded :class:`Plan` holds every value explicitly and
``Plan.to_toml()`` records exactly what was run. ``analysis[i]`` in messages counts the
``[[analysis]]`` tables from 1 in file order.

Examples
--------
>>> from bayesmtor.plans import load_plan, list_plans
>>> "primary" in list_plans()
True
>>> plan = load_plan("primary")
>>> plan.unit
'trial'
"""

from __future__ import annotations

from bayesmtor.plans.load import list_plans, load_plan, parse_plan
from bayesmtor.plans.schema import (
    AnalysisSpec,
    EngineSpec,
    FrequentistSpec,
    MCMCSpec,
    Plan,
    PriorSpec,
    SensitivitySpec,
)
from bayesmtor.plans.validate import SCHEMA_VERSION

__all__ = [
    "AnalysisSpec",
    "EngineSpec",
    "FrequentistSpec",
    "MCMCSpec",
    "Plan",
    "PriorSpec",
    "SensitivitySpec",
    "list_plans",
    "load_plan",
    "parse_plan",
    "SCHEMA_VERSION",
]
