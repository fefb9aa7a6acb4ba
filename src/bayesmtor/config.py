"""One registry of defaults and constants, each with its validator and the reason for its value.

Functions take ``None`` for these options and look the value up here (:func:`get`), so a user
can change a default once and every table follows::

    from bayesmtor import config
    config.set("ci_prob", 0.9)              # or config.defaults["ci_prob"] = 0.9
    config.describe()                       # key, default, current value, reason
    config.reset()                          # back to the registered defaults

Every value set goes through the key's validator, so a wrong value is refused with an
:class:`~bayesmtor.errors.InputError` naming the key when it is set, not deep inside a fit.
"""

from __future__ import annotations

import importlib
import math
import numbers
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from bayesmtor import vocabulary
from bayesmtor.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["REGISTRY", "Setting", "defaults", "describe", "get", "reset", "set"]


@dataclass(frozen=True)
class Setting:
    """One registered option: its default, the check of any value set, and why the default.

    Attributes
    ----------
    default : object
        The value used when the caller passes ``None``.
    validator : callable
        ``validator(key, value)`` returns the value to store or raises ``InputError``.
    reason : str
        Why the default is what it is (shown by :func:`describe`).
    """

    default: Any
    validator: Callable[[str, Any], Any]
    reason: str


# --------------------------------------------------------------------------------------------
# Validators: each takes (key, value) and returns the value to store
# --------------------------------------------------------------------------------------------


def _refuse(key: str, what: str, value: Any) -> InputError:
    return InputError(f"config '{key}' must be {what}, got {value!r}")


def _real(key: str, value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise _refuse(key, what, value)
    return value  # type: ignore[return-value]


def _prob(key: str, value: Any) -> float:
    if not 0 < _real(key, value, "a number strictly between 0 and 1") < 1:
        raise _refuse(key, "a number strictly between 0 and 1", value)
    return value


def _positive(key: str, value: Any) -> float:
    if not _real(key, value, "a positive finite number") > 0:
        raise _refuse(key, "a positive finite number", value)
    return value


def _nonnegative(key: str, value: Any) -> float:
    if not _real(key, value, "a finite number >= 0") >= 0:
        raise _refuse(key, "a finite number >= 0", value)
    return value


def _at_least_one(key: str, value: Any) -> float:
    if not _real(key, value, "a finite number >= 1") >= 1:
        raise _refuse(key, "a finite number >= 1", value)
    return value


def _integer(key: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        what = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise _refuse(key, what, value)
    return int(value)


def _positive_int(key: str, value: Any) -> int:
    return _integer(key, value, 1)


def _nonnegative_int(key: str, value: Any) -> int:
    return _integer(key, value, 0)


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _refuse(key, "True or False", value)
    return value


def _choice(options: tuple[str, ...]) -> Callable[[str, Any], str]:
    def check(key: str, value: Any) -> str:
        if value not in options:
            raise _refuse(key, "one of " + ", ".join(repr(o) for o in options), value)
        return value

    return check


def _schedule(key: str, value: Any) -> tuple[float, ...]:
    what = "an increasing tuple of probabilities in (0, 1)"
    if not isinstance(value, (tuple, list)) or not value:
        raise _refuse(key, what, value)
    steps = tuple(_prob(key, v) for v in value)
    if any(b <= a for a, b in zip(steps[:-1], steps[1:], strict=True)):
        raise _refuse(key, what, value)
    return steps


def _model_probs(key: str, value: Any) -> Any:
    what = "four non-negative prior model probabilities summing to 1 (FE-null, FE-effect, RE-null, RE-effect)"
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list, dict)):
        raise _refuse(key, what, value)
    nums = list(value.values()) if isinstance(value, dict) else list(value)
    if len(nums) != 4 or any(_real(key, v, what) < 0 for v in nums):
        raise _refuse(key, what, value)
    if not math.isclose(sum(nums), 1.0, rel_tol=0, abs_tol=1e-9):
        raise _refuse(key, what, value)
    return value


def _priors_module() -> Any:
    """The module holding TauPrior and MuPrior (imported on first use)."""
    return importlib.import_module("bayesmtor.bayes.priors")


def _prior(kind: str) -> Callable[[str, Any], Any]:
    cls_name = "TauPrior" if kind == "tau" else "MuPrior"
    example = "'half-normal:0.5'" if kind == "tau" else "'normal:0,4'"
    what = f"a {cls_name}, a prior string such as {example}, or a (family, params) pair"

    def check(key: str, value: Any) -> Any:
        cls = getattr(_priors_module(), cls_name)
        try:
            if isinstance(value, str):
                cls.from_string(value)
            elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
                family, params = value
                if params is not None and not isinstance(params, Mapping):
                    raise _refuse(key, what, value)
                cls.from_spec(family, params)
            elif not isinstance(value, cls):
                raise _refuse(key, what, value)
        except InputError:
            raise
        except (ValueError, TypeError) as err:
            raise InputError(f"config '{key}': {err}") from err
        return value

    return check


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------

_SETTINGS: dict[str, Setting] = {
    # Intervals -------------------------------------------------------------------------------
    "ci_prob": Setting(
        0.95,
        _prob,
        "Interval probability of confidence, credible and prediction intervals alike: the 2014 "
        "paper, RevMan 5 and metafor all report 95% intervals, so both sides match by default.",
    ),
    "ci_kind": Setting(
        "central",
        _choice(vocabulary.INTERVAL_KINDS),
        "Central (equal-tailed) credible intervals by default, not the shortest ones (R "
        "bayesmeta's default): they are invariant to the log/ratio back-transformation, so the "
        "ratio-scale interval is exp() of the log-scale one, and they are what the frequentist "
        "side and the 2014 paper report. 'shortest' gives the narrowest intervals of mu, tau and "
        "theta_new holding ci_prob ([0, q] for tau when that is narrowest).",
    ),
    "pi_dist": Setting(
        "t",
        _choice(vocabulary.PI_DISTS),
        "Prediction intervals use t on k-2 df (Higgins, Thompson & Spiegelhalter 2009), as the "
        "Cochrane Handbook and RevMan Web do: with few trials the normal quantile ignores the "
        "uncertainty in tau^2 and gives intervals that are too short. 'z' gives metafor's "
        "predict() (estimate +/- z sqrt(se^2 + tau^2)), also defined for k = 2.",
    ),
    "input_ci_prob": Setting(
        0.95,
        _prob,
        "Coverage of published confidence intervals read from ratio_ci data (the trials report "
        "95% CIs). Kept apart from ci_prob: changing the interval reported must not change how a "
        "published 95% CI is turned into a standard error.",
    ),
    "published_ci_prob": Setting(
        0.95,
        _prob,
        "Coverage of the pooled intervals printed in the 2014 paper (RevMan 5's 95% CIs); the "
        "replication compares intervals only at this level.",
    ),
    "het_alpha": Setting(
        0.10,
        _prob,
        "Significance level of the chi-squared heterogeneity test used by the 2014 paper "
        "(p < 0.10, the Cochrane Handbook's threshold for a test of low power).",
    ),
    # Priors ----------------------------------------------------------------------------------
    "tau_prior": Setting(
        ("half-normal", {"scale": 0.5}),
        _prior("tau"),
        "Half-normal(0.5) on tau (between-trial SD of log ratios): 95% of its mass lies below "
        "tau = 0.98, i.e. trial-specific ratios within a factor of ~2.7 of the pooled ratio, "
        "which covers the heterogeneity seen in oncology and is weakly informative when trials "
        "are few (Friede et al. 2017; Roever et al. 2021, Res Synth Methods).",
    ),
    "mu_prior": Setting(
        ("normal", {"mean": 0.0, "sd": 4.0}),
        _prior("mu"),
        "Normal(0, 4) on mu (pooled log ratio): practically flat on plausible ratios (95% of its "
        "mass within ratios 1/2500 to 2500) but proper, so k = 1 still works.",
    ),
    "baseline_sd": Setting(
        2.5,
        _positive,
        "SD of the normal prior on the control-arm logit in the binomial-normal model: the scale "
        "rstanarm uses for a logistic intercept; 95% of its mass lies on event probabilities "
        "between 0.7% and 99.3%, weakly informative for event rates of a few percent to ~90%.",
    ),
    # Zero-cell rule --------------------------------------------------------------------------
    "cc_add": Setting(
        0.5,
        _nonnegative,
        "Zero-cell correction of RevMan 5 and metafor's escalc(add=1/2, to='only0', drop00=TRUE).",
    ),
    "cc_to": Setting(
        "only0",
        _choice(vocabulary.ZERO_CELL_TO),
        "The correction goes to studies with a zero cell only (RevMan 5, metafor's default).",
    ),
    "smd_convention": Setting(
        "metafor",
        _choice(vocabulary.SMD_CONVENTIONS),
        "Hedges' g of metafor's escalc(measure='SMD'): the exact small-sample correction and "
        "its default variance (vtype='LS'), so that SMD fits can be checked against metafor; "
        "'revman' gives RevMan 5's approximate correction and variance (Deeks & Higgins 2010).",
    ),
    "drop00": Setting(
        True,
        _bool,
        "Studies with no events in either arm carry no information on a ratio and are dropped "
        "(RevMan 5, metafor's drop00=TRUE).",
    ),
    # Safe range of log-scale inputs ----------------------------------------------------------
    "yi_abs_max": Setting(
        1e50,
        _positive,
        "Largest |yi| accepted (bayesmtor.validation): inside the safe range every intermediate of "
        "the estimators stays finite in float64 (weights 1/v up to 1e100, squared residuals up "
        "to 4e200, sums over 1e7 studies). Real log ratios lie within +-40 (a ratio of 1e17).",
    ),
    "sei_min": Setting(
        1e-50,
        _positive,
        "Smallest standard error accepted, for the same float64 bound; real standard errors of "
        "log ratios lie above 1e-8 (a trial of 1e16 patients).",
    ),
    "sei_max": Setting(
        1e50,
        _positive,
        "Largest standard error accepted, for the same float64 bound as yi_abs_max.",
    ),
    # Exact engine ----------------------------------------------------------------------------
    "exact_tol": Setting(
        1e-6,
        _positive,
        "Quadrature tolerance of the exact engine (bound on the absolute error of posterior "
        "CDFs): far below the printed digits of any interval.",
    ),
    "bma_prior_probs": Setting(
        (0.25, 0.25, 0.25, 0.25),
        _model_probs,
        "Prior probabilities of the models FE-null, FE-effect, RE-null and RE-effect in model "
        "averaging: equal, so that both inclusion Bayes factors start from prior odds 1 (the "
        "default of metaBMA and RoBMA).",
    ),
    "exact_chunk_cells": Setting(
        2_000_000,
        _positive_int,
        "Working-memory bound of the exact engine: cells (analyses x nodes x studies) per NumPy "
        "call, each call holding about five float64 temporaries of this size (~80 MB at 2e6). "
        "2e6 is as fast as any value (10,000 analyses of 1-10 studies: 1.8 s at 2e6 and 4e6, "
        "1.9 s at 1e6, 2.0 s at 8e6, 2.3 s at 5e5). Results do not depend on it.",
    ),
    "exact_processes": Setting(
        0,
        _nonnegative_int,
        "Processes that share a large batch of the exact engine (pool --bayes --by): 0 uses "
        "every core this process may run on (at most 8), 1 keeps it in one process. The "
        "analyses are independent, so the results are the same, bit for bit, whatever the "
        "number; forked workers are used only on systems with fork and from a process "
        "without other threads.",
    ),
    "exact_parallel_min": Setting(
        2000,
        _positive_int,
        "Smallest batch (analyses) that the exact engine splits across processes: forking "
        "and collecting costs about 20 ms, the engine about 0.06 ms per analysis of ten "
        "studies, so smaller batches finish sooner in one process.",
    ),
    "exact_draws": Setting(
        1000,
        _positive_int,
        "Independent draws per chain from the exact posterior stored in its InferenceData "
        "(exact_chains x exact_draws in all, 4000 by default): the Monte Carlo error of interval "
        "end points stays well below the printed digits.",
    ),
    "exact_chains": Setting(
        4,
        _positive_int,
        "The exact draws are stored as this many chains of independent draws (not MCMC), so "
        "that ArviZ's az.summary and az.rhat see the shape they expect: with one chain they "
        "warn and R-hat is NaN; with independent chains R-hat is 1 up to Monte Carlo noise.",
    ),
    # MCMC ------------------------------------------------------------------------------------
    "chains": Setting(
        4,
        _positive_int,
        "4 chains: enough for a between-chain R-hat, one per core on common machines.",
    ),
    "draws": Setting(
        2000,
        _positive_int,
        "4 chains x 2000 draws gives bulk ESS well above 400 for these 2-parameter models.",
    ),
    "tune": Setting(
        1000,
        _nonnegative_int,
        "1000 warm-up steps: PyMC's default, ample for these low-dimensional models.",
    ),
    "target_accept": Setting(
        0.9,
        _prob,
        "Above PyMC's 0.8: hierarchical models with few trials have a funnel in tau, and a "
        "smaller step size avoids most divergences at little cost.",
    ),
    "mcmc_sampler": Setting(
        "numpy",
        _choice(("numpy", "pymc")),
        "The NUTS of bayesmtor.bayes.nuts (NumPy, closed-form gradients of the integrated "
        "normal-normal and multilevel models) needs no graph compilation and no PyMC import: "
        "a whole fit through the CLI measured 4.3x faster than a plain pm.sample() of the same "
        "model from a cold compile cache (benchmarks/bench_mcmc.py), same convergence gate, "
        "and both samplers agree with the exact engine (tests/test_mcmc_vs_exact.py). 'pymc' keeps PyMC's sampler; the binomial-normal "
        "model, sample_kwargs and priors without a closed form here always use it.",
    ),
    "target_accept_schedule": Setting(
        (0.95, 0.99),
        _schedule,
        "Target acceptance of the retries of a fit that failed the convergence gate: each retry "
        "takes the next step above the current value, shrinking the step size.",
    ),
    "mcmc_max_retries": Setting(
        2,
        _nonnegative_int,
        "Retries of an MCMC fit that fails the convergence gate (longer warm-up, higher target "
        "acceptance). Bounds the run time; a fit still not clean is reported as not converged.",
    ),
    "mcmc_in_subprocess": Setting(
        True,
        _bool,
        "Run a plan's MCMC in a child process so that it overlaps with the figures (set False "
        "to debug in one process).",
    ),
    "mcmc_processes": Setting(
        2,
        _positive_int,
        "Worker processes that sample a plan's MCMC fits side by side (each fit in one worker, "
        "with its own seed, so the draws do not depend on this number): two, the cores of a "
        "small machine; the main process computes the exact stages meanwhile.",
    ),
    "prior_draws": Setting(
        500,
        _positive_int,
        "Draws of the prior and prior-predictive distributions stored with each MCMC fit: "
        "enough for prior density plots, cheap to sample.",
    ),
    "rhat_max": Setting(
        1.01,
        _at_least_one,
        "Convergence gate (Vehtari et al. 2021): largest R-hat of a clean fit.",
    ),
    "ess_min": Setting(
        400,
        _positive,
        "Convergence gate (Vehtari et al. 2021): smallest bulk and tail ESS of a clean fit.",
    ),
    "random_seed": Setting(
        20141001,
        _nonnegative_int,
        "Fixed seed (the 2014 paper's month) so that every run reproduces the same draws.",
    ),
    "agreement_mcse": Setting(
        4.0,
        _positive,
        "MCMC and exact posteriors agree on a statistic when they differ by at most this many "
        "MCSEs: with ~10 statistics per check a correct sampler exceeds 4 with probability "
        "< 0.1%, while MCSEs of tail quantiles are themselves uncertain by ~10-20%.",
    ),
    # Outputs ---------------------------------------------------------------------------------
    "netcdf_engine": Setting(
        "netcdf4",
        _choice(("netcdf4", "h5netcdf", "scipy")),
        "netCDF backend that writes the .nc files (netCDF-4/HDF5 format). ArviZ's own default "
        "reader is h5netcdf (arviz 0.17-0.22: from_netcdf(engine='h5netcdf')); h5netcdf and "
        "h5py are dependencies of bayesmtor, so arviz.from_netcdf(path) reads the files "
        "without an engine argument.",
    ),
    "tau_figure_min_k": Setting(
        2,
        _positive_int,
        "Fewest trials for a tau prior-vs-posterior figure: with one trial the data say nothing "
        "about tau (the posterior is the prior).",
    ),
    "flag_prior_dominated_tau": Setting(
        0.8,
        _prob,
        "Summary-of-findings flag 'prior-dominated tau': the posterior interval of tau is at "
        "least this fraction of the width of the prior's central interval of the same "
        "probability, i.e. the trials narrowed the prior's range of tau by less than 20%, so "
        "tau (and the prediction interval) mostly restates the prior.",
    ),
    "flag_i2_substantial": Setting(
        50.0,
        _positive,
        "Summary-of-findings flag 'substantial heterogeneity': frequentist I2 (percent) at or "
        "above this value; the Cochrane Handbook (section 10.10.2) reads 50-90% as 'may "
        "represent substantial heterogeneity'.",
    ),
    "funnel_min_k": Setting(
        3,
        _positive_int,
        "Fewest trials for a funnel plot: fewer points show no asymmetry.",
    ),
    "bias_min_k": Setting(
        10,
        _positive_int,
        "Egger's and Begg's tests warn below this many studies: with fewer the tests have too "
        "little power to tell chance from small-study effects (Sterne et al. 2011, BMJ "
        "343:d4002; Cochrane Handbook 13.3.5.4).",
    ),
    "kendall_exact_max_k": Setting(
        300,
        _positive_int,
        "Begg's rank test uses Kendall's exact null distribution (as metafor's ranktest) up to "
        "this many studies without ties; it costs O(k^3) (about 0.3 s at k = 300), and above it "
        "the normal approximation differs from the exact p-value by far less than sampling "
        "error.",
    ),
    "forest_benefit": Setting(
        "lower",
        _choice(vocabulary.BENEFIT_DIRECTIONS),
        "Side of the null that favours the treatment in a forest plot when the outcome does not "
        "say: 'lower', RevMan 5's default layout ('Favours experimental' left of 1), right for "
        "hazards of progression or death and risks of adverse events; use 'higher' for response.",
    ),
    "forest_method": Setting(
        "REML",
        _choice(vocabulary.RE_METHODS),
        "Frequentist model drawn beside a Bayesian forest plot (its pooled row and its weights): "
        "REML, metafor's default random-effects estimator, the model closest to the Bayesian one.",
    ),
    "funnel_contours": Setting(
        (0.90, 0.95, 0.99),
        _schedule,
        "Significance contours of the funnel plot (two-sided p = 0.10, 0.05, 0.01 around the "
        "null), the levels of metafor's contour-enhanced funnel (Peters et al. 2008).",
    ),
    "figure_processes": Setting(
        2,
        _positive_int,
        "Processes that draw a run's figures side by side (forked, POSIX; each returns PNG and "
        "SVG bytes and the parent writes them): two, the cores of a small machine.",
    ),
    # RevMan re-analysis ----------------------------------------------------------------------
    "revman_rtol": Setting(
        1e-6,
        _positive,
        "Relative tolerance of agreement with the results a RevMan file stores (effects, "
        "intervals, Q, I2, tau2, z, on the scale RevMan stores them): RevMan 5 writes 16 "
        "significant digits, so a correct recomputation agrees far inside it.",
    ),
    "revman_p_atol": Setting(
        1e-6,
        _positive,
        "Absolute tolerance of agreement with RevMan's stored p-values, which RevMan rounds "
        "(about 1e-7 absolute in .rm5 files, six decimals in data packages).",
    ),
    "revman_package_atol": Setting(
        5e-7,
        _positive,
        "Absolute tolerance added for RevMan Web data packages, which print results with six "
        "decimals: half a unit of the last printed digit.",
    ),
}

#: The registered settings, read-only: ``REGISTRY[key].default``, ``.validator``, ``.reason``.
REGISTRY: Mapping[str, Setting] = MappingProxyType(_SETTINGS)


class _Defaults(MutableMapping[str, Any]):
    """The current values: a mapping whose every assignment goes through the key's validator.

    Keys are fixed by :data:`REGISTRY`; deleting a key restores its default.
    """

    def __init__(self) -> None:
        self._values: dict[str, Any] = {k: s.default for k, s in _SETTINGS.items()}

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise KeyError(f"no default registered for '{key}'") from None

    def __setitem__(self, key: str, value: Any) -> None:
        setting = _SETTINGS.get(key)
        if setting is None:
            known = ", ".join(_SETTINGS)
            raise InputError(f"unknown config key '{key}'; known keys: {known}")
        self._values[key] = setting.validator(key, value)

    def __delitem__(self, key: str) -> None:
        self._values[key] = _SETTINGS[key].default

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"config.defaults({self._values!r})"


#: Current values of the registered settings (validated on assignment).
defaults: MutableMapping[str, Any] = _Defaults()


def get(key: str, value: Any = None) -> Any:
    """Return ``value`` if it is not ``None``, else the current value registered for ``key``.

    Parameters
    ----------
    key : str
        A key of :data:`REGISTRY`.
    value : object, optional
        The caller's explicit value; returned unchanged when given.

    Returns
    -------
    object
    """
    if value is not None:
        return value
    return defaults[key]


def set(key: str, value: Any) -> None:  # noqa: A001 - the registry's verb, as in config.set
    """Set the current value of ``key`` after checking it with the key's validator.

    Parameters
    ----------
    key : str
        A key of :data:`REGISTRY`.
    value : object
        The new value.

    Raises
    ------
    InputError
        If the key is unknown or the value is refused by its validator.
    """
    defaults[key] = value


def reset(key: str | None = None) -> None:
    """Restore the registered default of ``key``, or of every key when ``key`` is None."""
    if key is not None and key not in _SETTINGS:
        raise InputError(f"unknown config key '{key}'; known keys: {', '.join(_SETTINGS)}")
    for k in _SETTINGS if key is None else (key,):
        del defaults[k]


def describe() -> pd.DataFrame:
    """The registry as a table.

    Returns
    -------
    pandas.DataFrame
        Columns ``key``, ``default``, ``current`` and ``reason``, one row per setting.
    """
    import pandas as pd  # lazy: importing the registry must stay cheap

    rows = [
        {"key": k, "default": s.default, "current": defaults[k], "reason": s.reason}
        for k, s in _SETTINGS.items()
    ]
    return pd.DataFrame(rows, columns=["key", "default", "current", "reason"])


def _validate_defaults() -> None:
    """Check every default with its own validator (priors are checked on first use)."""
    for key, setting in _SETTINGS.items():
        if key not in ("tau_prior", "mu_prior"):
            setting.validator(key, setting.default)


_validate_defaults()
