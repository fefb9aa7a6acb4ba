"""Bayesian random-effects models fitted by MCMC (PyMC / NUTS), with a convergence gate.

Three models, all on the log scale of a ratio measure (OR, RR or HR), with ``tau`` the
between-trial standard deviation of the log ratios:

* :func:`fit_normal_normal` -- the normal--normal random-effects model with the trial effects
  integrated out, ``y_i ~ N(mu, s_i^2 + tau^2)``. Only ``(mu, tau)`` are sampled, so there is no
  funnel. The shrunken trial effects ``theta_i`` and the effect in a new trial ``theta_new`` are
  then drawn, for every posterior draw, from their exact conditional normals given ``(mu, tau)``.
* :func:`fit_binomial_normal` -- the exact binomial likelihood for 2x2 counts (no continuity
  correction; zero cells and double-zero trials need no special treatment), with non-centred
  trial effects.
* :func:`fit_multilevel` -- trials within drug classes within one mTOR-inhibitor mean. The caller
  supplies ONE row per trial (a trial's full-population report or one complete partition pooled
  beforehand), so a trial whose patients appear in several reports still counts once.

Every fit returns a frozen :class:`BayesResult` whose ``idata`` holds the ``posterior``,
``prior``, ``prior_predictive``, ``posterior_predictive``, ``observed_data`` and
``sample_stats`` groups with named dimensions (``trial``, ``drug_class``).

The convergence gate: a fit is *clean* when it has zero divergent transitions, the largest
R-hat is at most ``config.defaults["rhat_max"]`` and the smallest bulk and tail effective
sample sizes are at least ``config.defaults["ess_min"]`` (Vehtari et al. 2021, Bayesian
Analysis 16:667). A fit that is not clean is rerun with a higher ``target_accept`` (0.95, then
0.99), a longer warm-up and, when the ESS was short, more draws. If it is still not clean a
:class:`~bayesmtor.errors.ConvergenceWarning` is issued and the result carries
``converged=False`` and the reason; it is never reported as clean.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from bayesmtor import config
from bayesmtor._arviz import load as _load_arviz
from bayesmtor.bayes.exact import conditional_normal
from bayesmtor.bayes.nuts import Density, multilevel_density, normal_normal_density, sample_nuts
from bayesmtor.bayes.priors import MuPrior, TauPrior
from bayesmtor.bayes.results import BayesResult
from bayesmtor.bayes.sampling import (
    NormalNormalModel,
    choose_sampler,
    nuts_idata,
    pymc_sample,
    sample_with_retries,
)
from bayesmtor.errors import ConvergenceWarning, EstimationError, InputError, PriorError
from bayesmtor.logs import third_party_quiet
from bayesmtor.validation import check_safe_range
from bayesmtor.vocabulary import RATIO_MEASURES

if TYPE_CHECKING:
    import pymc as pm

az = _load_arviz()

__all__ = [
    "BayesResult",
    "fit_binomial_normal",
    "fit_multilevel",
    "fit_normal_normal",
    "typical_within_variance",
]

# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def fit_normal_normal(
    yi: Sequence[float] | np.ndarray,
    sei: Sequence[float] | np.ndarray,
    *,
    labels: Sequence[str] | None = None,
    measure: str | None = None,
    tau_prior: TauPrior | str | None = None,
    mu_prior: MuPrior | str | None = None,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    target_accept: float | None = None,
    random_seed: int | None = None,
    max_retries: int | None = None,
    progressbar: bool = False,
    sample_kwargs: dict[str, Any] | None = None,
    sampler: str | None = None,
) -> BayesResult:
    """Normal--normal random-effects model with the trial effects integrated out.

    ``y_i ~ N(mu, s_i^2 + tau^2)``, ``mu ~ mu_prior``, ``tau ~ tau_prior``. For each posterior
    draw of ``(mu, tau)``, ``theta_i`` is drawn from its exact conditional
    ``N((y_i tau^2 + mu s_i^2) / (s_i^2 + tau^2), s_i^2 tau^2 / (s_i^2 + tau^2))`` (which tends
    to the point mass at ``mu`` as ``tau -> 0``) and ``theta_new`` from ``N(mu, tau^2)``.

    Parameters
    ----------
    yi, sei : array-like
        Log ratios and their standard errors, one per trial.
    labels : sequence of str, optional
        Trial labels (unique); default ``"trial_1"``, ...
    measure : {"OR", "RR", "HR"}, optional
        The ratio measure, for labelling only.
    tau_prior, mu_prior : TauPrior, MuPrior or str, optional
        Priors (objects or text such as ``"half-normal:0.5"``); defaults from
        :func:`bayesmtor.bayes.priors.default_tau_prior` / :func:`~bayesmtor.bayes.priors.default_mu_prior`.
    draws, tune, chains, target_accept, random_seed : optional
        NUTS settings; defaults from :mod:`bayesmtor.config`.
    max_retries : int, optional
        How many times to rerun a fit that fails the convergence gate (default: config
        ``mcmc_max_retries``, 2).
    progressbar : bool
        Show PyMC's progress bar.
    sample_kwargs : dict, optional
        Further keyword arguments for :func:`pymc.sample` (e.g. ``{"init": "adapt_diag"}``);
        they may not repeat the explicit settings above. Given, PyMC samples the model.
    sampler : {"numpy", "pymc"}, optional
        The NUTS implementation (default: config ``mcmc_sampler``): ``"numpy"``, the sampler
        of :mod:`bayesmtor.bayes.nuts` (no compilation, no PyMC import), or PyMC's. Both are
        held to the same convergence gate. Predictive quantities come from the posterior
        draws either way.

    Returns
    -------
    BayesResult
    """
    y, s, labs = _check_yi_sei(yi, sei, labels)
    measure = _check_measure(measure, allowed=(*RATIO_MEASURES, None))
    tau_prior, mu_prior = _resolve_priors(tau_prior, mu_prior)
    s2_typ = typical_within_variance(s**2)

    _refuse_improper_tau(tau_prior)
    if choose_sampler(sampler, (tau_prior, mu_prior), sample_kwargs) == "numpy":
        model: Any = _NumpyModel(
            normal_normal_density(y, s, tau_prior, mu_prior), {"trial": list(labs)}, y, s,
            {"mu": mu_prior, "tau": tau_prior},
        )  # fmt: skip
    else:
        model = NormalNormalModel(tau_prior, mu_prior, yi=y, sei=s, labels=labs).model

    def generate(ds: xr.Dataset, rng: np.random.Generator, posterior: bool) -> dict[str, Any]:
        mu_d, tau_d = _draws(ds["mu"]), _draws(ds["tau"])
        t2 = tau_d[..., None] ** 2
        if posterior:
            mean, var = conditional_normal(y, s**2, mu_d[..., None], t2)
        else:
            mean = np.broadcast_to(mu_d[..., None], (*mu_d.shape, len(y)))
            var = np.broadcast_to(t2, mean.shape)
        theta = mean + np.sqrt(var) * rng.standard_normal(mean.shape)
        theta_new = mu_d + tau_d * rng.standard_normal(mu_d.shape)
        return {
            "theta": (("chain", "draw", "trial"), theta),
            "theta_new": (("chain", "draw"), theta_new),
            "I2": (("chain", "draw"), tau_d**2 / (tau_d**2 + s2_typ)),
        }

    return _fit(
        model,
        name="normal_normal",
        measure=measure,
        labels=labs,
        priors=_priors(mu_prior, tau_prior),
        flat_mu=_is_flat(mu_prior),
        generate=generate,
        s2_typical=s2_typ,
        nuts=_Nuts(
            draws, tune, chains, target_accept, random_seed, max_retries, progressbar, sample_kwargs
        ),
    )


def _refuse_improper_tau(tau_prior: TauPrior | str | None) -> None:
    """The improper tau priors have no prior draws to store: exact engine only."""
    tp = TauPrior.coerce(tau_prior)
    if not tp.is_proper:
        raise PriorError(
            f"the improper tau prior {tp.to_string()!r} is available on the exact engine only "
            "(--engine exact, bayesmtor.bayesmeta(engine='exact')); the MCMC fits store prior "
            "draws, which an improper prior does not have"
        )


def fit_binomial_normal(
    events_trt: Sequence[int] | np.ndarray,
    n_trt: Sequence[int] | np.ndarray,
    events_ctl: Sequence[int] | np.ndarray,
    n_ctl: Sequence[int] | np.ndarray,
    *,
    measure: str = "OR",
    labels: Sequence[str] | None = None,
    tau_prior: TauPrior | str | None = None,
    mu_prior: MuPrior | str | None = None,
    baseline_sd: float | None = None,
    parametrization: str = "noncentred",
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    target_accept: float | None = None,
    random_seed: int | None = None,
    max_retries: int | None = None,
    progressbar: bool = False,
    sample_kwargs: dict[str, Any] | None = None,
) -> BayesResult:
    """Binomial--normal random-effects model (exact likelihood, no continuity correction).

    ``theta_i = mu + tau z_i`` with ``z_i ~ N(0, 1)`` (non-centred), and

    * ``measure="OR"``: ``logit p_ctl,i = alpha_i``, ``logit p_trt,i = alpha_i + theta_i``,
      ``alpha_i ~ N(0, baseline_sd^2)``;
    * ``measure="RR"``: ``log p_ctl,i = alpha_i``, ``log p_trt,i = alpha_i + theta_i``. Both
      probabilities must stay at most 1, i.e. ``alpha_i <= -max(0, theta_i)``. This is built
      in: ``alpha_i = log(p_max,i) - max(0, theta_i)`` where ``p_max,i`` is the larger of the two
      arm probabilities and ``logit p_max,i ~ N(0, baseline_sd^2)``. The baseline prior is thus
      placed on the arm with the higher event rate, and every parameter value is admissible
      (no rejected proposals at the boundary). ``max(0, theta_i)`` leaves a kink in the log
      density at ``theta_i = 0``; NUTS may then report an occasional divergent transition at
      the default ``target_accept``, which the convergence gate catches and retries at 0.95 /
      0.99 (``target_accept=0.99`` from the start avoids the retry).

    Zero cells and double-zero trials enter the exact likelihood as they are. ``I2`` uses the
    typical within-trial variance of the log ratios computed from the counts with 0.5 added to
    every cell of trials that have a zero cell, double-zero trials left out (that descriptive
    quantity only; the likelihood is exact).

    Parameters
    ----------
    events_trt, n_trt, events_ctl, n_ctl : array-like of int
        Counts per trial: whole numbers from 0 to 2^53 (as for files read by
        :func:`bayesmtor.inputs.read_meta_data`), so that the log ratios they imply stay in the
        safe range of :mod:`bayesmtor.validation`.
    measure : {"OR", "RR"}
        Effect measure.
    baseline_sd : float, optional
        SD of the baseline logit prior; default: config ``baseline_sd`` (2.5).
    parametrization : {"noncentred", "centred"}
        ``"noncentred"`` (default) samples ``z_i`` with ``theta_i = mu + tau z_i``: best when
        trials are small or ``tau`` is near 0. ``"centred"`` samples ``theta_i ~ N(mu, tau^2)``
        directly: much faster when every trial is large (hundreds of events), where the
        non-centred form makes NUTS take very long trajectories. Same model, same posterior.
    labels, tau_prior, mu_prior, draws, tune, chains, target_accept, random_seed, max_retries,
    progressbar, sample_kwargs
        As in :func:`fit_normal_normal`.

    Returns
    -------
    BayesResult
    """
    measure = _check_measure(measure, allowed=("OR", "RR"))
    et, nt, ec, nc, labs = _check_counts(events_trt, n_trt, events_ctl, n_ctl, labels)
    tau_prior, mu_prior = _resolve_priors(tau_prior, mu_prior)
    bsd = float(config.get("baseline_sd", baseline_sd))
    model = _binomial_model(
        (et, nt, ec, nc), labs, measure, bsd, parametrization, tau_prior, mu_prior
    )
    s2_typ = typical_within_variance(_count_variances(et, nt, ec, nc, measure))
    return _fit(
        model,
        name="binomial_normal",
        measure=measure,
        labels=labs,
        priors=_priors(
            mu_prior,
            tau_prior,
            parametrization=parametrization,
            baseline=(
                f"logit p_ctl ~ Normal(0, {bsd:g})"
                if measure == "OR"
                else f"logit max(p_ctl, p_trt) ~ Normal(0, {bsd:g})"
            ),
        ),
        flat_mu=_is_flat(mu_prior),
        generate=_binomial_generate(s2_typ),
        s2_typical=s2_typ,
        nuts=_Nuts(
            draws, tune, chains, target_accept, random_seed, max_retries, progressbar, sample_kwargs
        ),
    )


def fit_multilevel(
    yi: Sequence[float] | np.ndarray,
    sei: Sequence[float] | np.ndarray,
    drug_class: Sequence[str],
    *,
    labels: Sequence[str] | None = None,
    measure: str | None = None,
    tau_prior: TauPrior | str | None = None,
    class_sd_prior: TauPrior | str | None = None,
    mu_prior: MuPrior | str | None = None,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    target_accept: float | None = None,
    random_seed: int | None = None,
    max_retries: int | None = None,
    progressbar: bool = False,
    sample_kwargs: dict[str, Any] | None = None,
    sampler: str | None = None,
) -> BayesResult:
    """Trials within drug classes around one mTOR-inhibitor mean.

    ``y_j ~ N(theta_j, s_j^2)``, ``theta_j ~ N(mu_class[c(j)], tau^2)``,
    ``mu_class[c] ~ N(mu, sigma_class^2)``, ``mu ~ mu_prior``, ``tau ~ tau_prior``,
    ``sigma_class ~ class_sd_prior`` (default: the default tau prior, half-normal(0.5)).

    Each trial must appear exactly once (``labels`` unique): give its full-population report,
    or pool one complete partition of its patients into a single row beforehand. Two reports
    on the same patients are not independent replicates and must not both be supplied.

    Both ``theta`` and ``mu_class`` are integrated out for sampling (``y`` is multivariate
    normal with covariance ``diag(s^2 + tau^2) + sigma_class^2 * [same class]``), so only
    ``(mu, tau, sigma_class)`` are sampled. Per draw, ``mu_class`` and then ``theta`` are drawn
    from their exact conditional normals. ``theta_new`` is a trial of a new drug class,
    ``N(mu, tau^2 + sigma_class^2)``; ``theta_new_class`` a new trial of each known class;
    ``I2`` is ``(tau^2 + sigma_class^2) / (tau^2 + sigma_class^2 + s^2_typical)``.

    Parameters
    ----------
    yi, sei : array-like
        Trial-level log ratios and standard errors (one row per trial).
    drug_class : sequence of str
        Drug class of each trial (e.g. ``"everolimus"``, ``"temsirolimus"``).
    class_sd_prior : TauPrior, optional
        Prior on ``sigma_class``, the SD of the class means around ``mu``.
    labels, measure, tau_prior, mu_prior, draws, tune, chains, target_accept, random_seed,
    max_retries, progressbar, sample_kwargs, sampler
        As in :func:`fit_normal_normal`.

    Returns
    -------
    BayesResult
        Its summary has one ``mu_class[<class>]`` row per drug class (pooled class effects).
    """
    y, s, labs = _check_yi_sei(yi, sei, labels)
    measure = _check_measure(measure, allowed=(*RATIO_MEASURES, None))
    tau_prior, mu_prior = _resolve_priors(tau_prior, mu_prior)
    class_sd_prior = TauPrior.coerce(class_sd_prior)
    classes, idx = _drug_classes(drug_class, labs)
    onehot = (idx[:, None] == np.arange(len(classes))[None, :]).astype(float)
    s2_typ = typical_within_variance(s**2)

    priors = (mu_prior, tau_prior, class_sd_prior)
    if choose_sampler(sampler, priors, sample_kwargs) == "numpy":
        model: Any = _NumpyModel(
            multilevel_density(y, s, onehot, priors),
            {"trial": list(labs), "drug_class": list(classes)}, y, s,
            {"mu": mu_prior, "tau": tau_prior, "sigma_class": class_sd_prior},
        )  # fmt: skip
    else:
        model = _multilevel_model(y, s, labs, classes, onehot, priors)
    generate = _multilevel_generate(y, s, idx, onehot, classes, s2_typ)

    return _fit(
        model,
        name="multilevel",
        measure=measure,
        labels=labs,
        priors=_priors(mu_prior, tau_prior, sigma_class=_describe(class_sd_prior)),
        flat_mu=_is_flat(mu_prior),
        generate=generate,
        s2_typical=s2_typ,
        drug_classes=classes,
        manual_y=(y, s),
        nuts=_Nuts(
            draws, tune, chains, target_accept, random_seed, max_retries, progressbar, sample_kwargs
        ),
    )


def _binomial_model(
    counts: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    labs: tuple[str, ...],
    measure: str,
    bsd: float,
    parametrization: str,
    tau_prior: TauPrior,
    mu_prior: MuPrior,
) -> pm.Model:
    """The binomial--normal model of :func:`fit_binomial_normal` (counts: events and sizes of
    the treatment and control arms)."""
    import pymc as pm
    import pytensor.tensor as pt

    if parametrization not in ("noncentred", "centred"):
        raise InputError(
            f"parametrization {parametrization!r} is not known; use 'noncentred' or 'centred'",
            column="parametrization",
        )
    if not np.isfinite(bsd) or bsd <= 0:
        raise PriorError(f"baseline_sd must be a positive number, got {bsd!r}")

    et, nt, ec, nc = counts
    with pm.Model(coords={"trial": list(labs)}) as model:
        mu = mu_prior.to_pymc("mu")
        tau = tau_prior.to_pymc("tau")
        if parametrization == "noncentred":
            z = pm.Normal("z", 0.0, 1.0, dims="trial")
            theta = pm.Deterministic("theta", mu + tau * z, dims="trial")
        else:
            theta = pm.Normal("theta", mu, tau, dims="trial")
        if measure == "OR":
            alpha = pm.Normal("alpha", 0.0, bsd, dims="trial")
            pm.Binomial("events_ctl", n=nc, logit_p=alpha, observed=ec, dims="trial")
            pm.Binomial("events_trt", n=nt, logit_p=alpha + theta, observed=et, dims="trial")
        else:
            eta = pm.Normal("eta", 0.0, bsd, dims="trial")  # logit of the larger probability
            log_pmax = -pt.softplus(-eta)
            alpha = pm.Deterministic("alpha", log_pmax - pt.maximum(theta, 0.0), dims="trial")
            pm.Binomial("events_ctl", n=nc, p=pt.exp(alpha), observed=ec, dims="trial")
            pm.Binomial("events_trt", n=nt, p=pt.exp(alpha + theta), observed=et, dims="trial")
    return model


def _binomial_generate(s2_typ: float) -> Any:
    """Draws of ``theta_new`` and ``I2`` given each draw of ``(mu, tau)`` (binomial--normal)."""

    def generate(ds: xr.Dataset, rng: np.random.Generator, posterior: bool) -> dict[str, Any]:
        mu_d, tau_d = _draws(ds["mu"]), _draws(ds["tau"])
        return {
            "theta_new": (("chain", "draw"), mu_d + tau_d * rng.standard_normal(mu_d.shape)),
            "I2": (("chain", "draw"), tau_d**2 / (tau_d**2 + s2_typ)),
        }

    return generate


def _multilevel_model(
    y: np.ndarray,
    s: np.ndarray,
    labs: tuple[str, ...],
    classes: tuple[str, ...],
    onehot: np.ndarray,
    priors: tuple[MuPrior, TauPrior, TauPrior],
) -> pm.Model:
    """The multilevel model of :func:`fit_multilevel`, ``theta`` and ``mu_class`` integrated out
    (``priors``: mu, tau, sigma_class)."""
    import pymc as pm
    import pytensor.tensor as pt

    mu_prior, tau_prior, class_sd_prior = priors
    with pm.Model(coords={"trial": list(labs), "drug_class": list(classes)}) as model:
        mu = mu_prior.to_pymc("mu")
        tau = tau_prior.to_pymc("tau")
        sigma = class_sd_prior.to_pymc("sigma_class")
        # Marginal log-likelihood of y with theta and mu_class integrated out. Within class c
        # the covariance is D_c + sigma^2 11' (D_c = diag(s^2 + tau^2)); by the matrix
        # determinant lemma and Sherman-Morrison its log density is
        # -1/2 [sum log d + log(1 + sigma^2 W) + sum w r^2 - sigma^2 (sum w r)^2 / (1 + sigma^2 W)]
        # with w = 1/d, r = y - mu, W = sum w: elementwise, no Cholesky factorisation.
        d = _data_vector(s**2, "s2") + tau**2
        w = 1.0 / d
        r = _data_vector(y, "y_obs") - mu
        w_c = pt.dot(w, onehot)
        wr_c = pt.dot(w * r, onehot)
        g2 = sigma**2
        loglik = -0.5 * (
            len(y) * np.log(2.0 * np.pi)
            + pt.sum(pt.log(d))
            + pt.sum(pt.log1p(g2 * w_c))
            + pt.sum(w * r**2)
            - pt.sum(g2 * wr_c**2 / (1.0 + g2 * w_c))
        )
        pm.Potential("loglik_y", loglik)
    return model


def _multilevel_generate(
    y: np.ndarray,
    s: np.ndarray,
    idx: np.ndarray,
    onehot: np.ndarray,
    classes: tuple[str, ...],
    s2_typ: float,
) -> Any:
    """Draws of ``mu_class``, ``theta``, ``theta_new``, ``theta_new_class`` and ``I2`` given
    each draw of ``(mu, tau, sigma_class)``, from their exact conditional normals."""

    def generate(ds: xr.Dataset, rng: np.random.Generator, posterior: bool) -> dict[str, Any]:
        mu_d, tau_d, sig_d = _draws(ds["mu"]), _draws(ds["tau"]), _draws(ds["sigma_class"])
        t2, g2 = tau_d[..., None] ** 2, sig_d[..., None] ** 2
        shape_c = (*mu_d.shape, len(classes))
        if posterior:
            w = 1.0 / (s**2 + t2)  # (chain, draw, trial)
            wsum = w @ onehot
            ysum = (w * y) @ onehot
            m_c = (mu_d[..., None] + g2 * ysum) / (1.0 + g2 * wsum)
            v_c = g2 / (1.0 + g2 * wsum)
        else:
            m_c = np.broadcast_to(mu_d[..., None], shape_c)
            v_c = np.broadcast_to(g2, shape_c)
        mu_class = m_c + np.sqrt(v_c) * rng.standard_normal(shape_c)
        mean_prior = mu_class[..., idx]
        if posterior:
            mean, var = conditional_normal(y, s**2, mean_prior, t2)
        else:
            mean, var = mean_prior, np.broadcast_to(t2, mean_prior.shape)
        theta = mean + np.sqrt(var) * rng.standard_normal(mean.shape)
        between = tau_d**2 + sig_d**2
        return {
            "mu_class": (("chain", "draw", "drug_class"), mu_class),
            "theta": (("chain", "draw", "trial"), theta),
            "theta_new": (
                ("chain", "draw"),
                mu_d + np.sqrt(between) * rng.standard_normal(mu_d.shape),
            ),
            "theta_new_class": (
                ("chain", "draw", "drug_class"),
                mu_class + tau_d[..., None] * rng.standard_normal(shape_c),
            ),
            "I2": (("chain", "draw"), between / (between + s2_typ)),
        }

    return generate


def _drug_classes(
    drug_class: Sequence[str], labs: tuple[str, ...]
) -> tuple[tuple[str, ...], np.ndarray]:
    """The distinct drug classes (order of first appearance) and each trial's class index."""
    classes_raw = list(drug_class)
    if len(classes_raw) != len(labs):
        raise InputError(
            f"drug_class has {len(classes_raw)} entries but there are {len(labs)} trials; give "
            "one drug class per trial",
            column="drug_class",
        )
    for i, c in enumerate(classes_raw):
        if not isinstance(c, str) or not c.strip():
            raise InputError(
                f"drug class {c!r} is not a non-empty string",
                row=i + 1,
                study=labs[i],
                column="drug_class",
            )
    classes = tuple(dict.fromkeys(classes_raw))  # order of first appearance
    return classes, np.array([classes.index(c) for c in classes_raw])


def typical_within_variance(vi: Sequence[float] | np.ndarray) -> float:
    """Higgins--Thompson "typical" within-trial variance.

    ``s^2 = (k - 1) sum(w) / ((sum w)^2 - sum(w^2))`` with ``w = 1 / v_i`` (Higgins & Thompson
    2002, Stat Med 21:1539, eq. 9). For a single trial it is that trial's variance.
    """
    v = np.asarray(vi, dtype=float)
    if v.size == 0:
        raise EstimationError("no trials: the typical within-trial variance is undefined")
    if v.size == 1:
        return float(v[0])
    w = 1.0 / v
    return float((v.size - 1) * w.sum() / (w.sum() ** 2 - np.sum(w**2)))


# --------------------------------------------------------------------------------------------
# Sampling and the convergence gate
# --------------------------------------------------------------------------------------------

_EXPLICIT = ("draws", "tune", "chains", "cores", "target_accept", "random_seed", "progressbar")


@dataclass(frozen=True)
class _Nuts:
    """The NUTS options of a fit function as given (``None``: the config default)."""

    draws: int | None
    tune: int | None
    chains: int | None
    target_accept: float | None
    random_seed: int | None
    max_retries: int | None
    progressbar: bool
    sample_kwargs: dict[str, Any] | None


@dataclass(frozen=True)
class _NumpyModel:
    """A model for the NumPy NUTS: its density, coordinates, data and the priors of the sampled
    parameters (by name, for the prior draws)."""

    density: Density
    coords: dict[str, list[Any]]
    y: np.ndarray
    s: np.ndarray
    priors: dict[str, TauPrior | MuPrior]


def _fit(
    model: pm.Model | _NumpyModel,
    *,
    name: str,
    flat_mu: bool,
    generate: Any,
    manual_y: tuple[np.ndarray, np.ndarray] | None = None,
    nuts: _Nuts,
    **fields: Any,
) -> BayesResult:
    """Sample ``model`` through the convergence gate and add the generated, prior and
    predictive groups. ``fields`` are the fields of the :class:`BayesResult` that describe the
    fit (``measure``, ``labels``, ``priors``, ``s2_typical`` and ``drug_classes``)."""
    draws = _check_positive_int("draws", config.get("draws", nuts.draws))
    tune = _check_positive_int("tune", config.get("tune", nuts.tune), allow_zero=True)
    chains = _check_positive_int("chains", config.get("chains", nuts.chains))
    target_accept = float(config.get("target_accept", nuts.target_accept))
    if not 0.0 < target_accept < 1.0:
        raise EstimationError(f"target_accept must lie in (0, 1), got {target_accept}")
    seed = int(config.get("random_seed", nuts.random_seed))
    max_retries = config.get("mcmc_max_retries", nuts.max_retries)
    if max_retries < 0:
        raise EstimationError(f"max_retries must be >= 0, got {max_retries}")
    progressbar = nuts.progressbar
    extra = dict(nuts.sample_kwargs or {})
    clash = sorted(set(extra) & set(_EXPLICIT))
    if clash:
        raise EstimationError(
            f"sample_kwargs repeats {clash}; pass these as the explicit keyword arguments of the "
            "fit function instead"
        )

    def sample(**settings: Any) -> az.InferenceData:
        if isinstance(model, _NumpyModel):
            run = sample_nuts(model.density, **settings)
            return nuts_idata(run, coords=model.coords, observed={"y": model.y})
        return pymc_sample(
            model, cores=min(chains, 2), progressbar=progressbar, sample_kwargs=extra, **settings
        )

    # PyMC's log lines and PyTensor's warnings go to the bayesmtor logger (bayesmtor.logs)
    with third_party_quiet():
        run = sample_with_retries(
            sample, draws=draws, tune=tune, chains=chains, target_accept=target_accept,
            seed=seed, max_retries=max_retries,
        )  # fmt: skip
        idata, diag, attempts = run.idata, dict(run.gate), list(run.attempts)
        final_seed = run.attempt_seeds[-1]
        model_coords = {k: list(v) for k, v in model.coords.items() if v is not None}
        rng_post = np.random.default_rng([final_seed, 1])
        _add_generated(idata, "posterior", generate(idata.posterior, rng_post, True), model_coords)

        prior_note = _add_prior_groups(model, idata, generate, model_coords, final_seed, flat_mu)
        if isinstance(model, _NumpyModel) and manual_y is None:
            _add_marginal_y_groups(idata, model, final_seed)
        elif manual_y is None:
            import pymc as pm

            with model:
                pm.sample_posterior_predictive(
                    idata, random_seed=final_seed, progressbar=False, extend_inferencedata=True
                )
        else:
            _add_manual_y_groups(idata, manual_y, list(model_coords["trial"]), final_seed)

    converged = bool(diag["clean"])
    reason = None if converged else diag["reason"]
    diagnostics = {k: v for k, v in diag.items() if k not in ("clean", "reason")}
    # the seed the caller gave (or the registered default), not that of the last retry
    diagnostics["random_seed"] = seed
    diagnostics["attempt_seeds"] = run.attempt_seeds
    diagnostics["attempts"] = attempts
    diagnostics["prior_groups"] = prior_note
    if not converged:
        warnings.warn(
            f"{name} model did not pass the convergence gate after {len(attempts)} run(s): "
            f"{reason}. The result is flagged converged=False; do not report it as clean.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return BayesResult(
        model=name,
        idata=idata,
        diagnostics=diagnostics,
        converged=converged,
        reason=reason,
        **fields,
    )


def _add_prior_groups(
    model: pm.Model | _NumpyModel,
    idata: az.InferenceData,
    generate: Any,
    coords: Mapping[str, Sequence[Any]],
    seed: int,
    flat_mu: bool,
) -> str:
    """Add the ``prior`` and ``prior_predictive`` groups (none under a flat mu prior); the note
    for the diagnostics says which."""
    if flat_mu:
        return "prior groups omitted: the prior on mu is flat (improper)"
    if isinstance(model, _NumpyModel):
        prior_idata = _numpy_prior(model, int(config.get("prior_draws")), seed)
    else:
        prior_idata = _pymc_prior(model, seed)
    rng_prior = np.random.default_rng([seed, 2])
    _add_generated(prior_idata, "prior", generate(prior_idata.prior, rng_prior, False), coords)
    idata.extend(prior_idata, join="left")
    return f"{config.get('prior_draws')} prior draws"


def _numpy_prior(model: _NumpyModel, n: int, seed: int) -> az.InferenceData:
    """Independent draws of the sampled parameters from their priors (one chain of ``n``), and
    for the normal-normal model the prior predictive ``y ~ N(mu, s^2 + tau^2)``."""
    rng = np.random.default_rng([seed, 5])
    draws: dict[str, np.ndarray] = {}
    for name, prior in model.priors.items():
        if isinstance(prior, MuPrior):
            draws[name] = rng.normal(prior.mean, prior.sd, size=(1, n))
        else:
            draws[name] = prior.rvs((1, n), rng)
    cd = {"chain": [0], "draw": np.arange(n)}
    groups = {"prior": xr.Dataset({k: (("chain", "draw"), v) for k, v in draws.items()}, coords=cd)}
    if "sigma_class" not in draws:  # the normal-normal model: y is a function of (mu, tau)
        groups["prior_predictive"] = _marginal_y(draws["mu"], draws["tau"], model, rng)
    return az.InferenceData(**groups)


def _marginal_y(mu: np.ndarray, tau: np.ndarray, model: _NumpyModel, rng: Any) -> xr.Dataset:
    """Replicates ``y_i ~ N(mu, s_i^2 + tau^2)`` for every draw (the PyMC model's ``y``)."""
    sd = np.sqrt(model.s**2 + tau[..., None] ** 2)
    y = mu[..., None] + sd * rng.standard_normal(sd.shape)
    return xr.Dataset(
        {"y": (("chain", "draw", "trial"), y)},
        coords={"chain": np.arange(y.shape[0]), "draw": np.arange(y.shape[1]),
                "trial": model.coords["trial"]},
    )  # fmt: skip


def _add_marginal_y_groups(idata: az.InferenceData, model: _NumpyModel, seed: int) -> None:
    """The posterior predictive ``y`` from the posterior draws, in NumPy (no second pass)."""
    post = idata.posterior
    rng = np.random.default_rng([seed, 3])
    idata.add_groups(
        {"posterior_predictive": _marginal_y(_draws(post["mu"]), _draws(post["tau"]), model, rng)}
    )


def _pymc_prior(model: pm.Model, seed: int) -> az.InferenceData:
    import pymc as pm

    with model, warnings.catch_warnings():
        # the multilevel likelihood is a Potential: ignoring it is what a prior draw is
        warnings.filterwarnings("ignore", message="The effect of Potentials")
        return pm.sample_prior_predictive(draws=config.get("prior_draws"), random_seed=seed)


def _add_manual_y_groups(
    idata: az.InferenceData, manual_y: tuple[np.ndarray, np.ndarray], trial: list[Any], seed: int
) -> None:
    """The likelihood is a closed-form Potential: build y's groups from theta directly."""
    y_obs, s_obs = manual_y
    groups = {
        "observed_data": xr.Dataset(
            {"y": xr.DataArray(y_obs, dims=("trial",), coords={"trial": trial})}
        )
    }
    for grp, src, tag in (
        ("posterior_predictive", "posterior", 3),
        ("prior_predictive", "prior", 4),
    ):
        if src not in idata.groups():
            continue
        th = idata[src]["theta"]
        noise = np.random.default_rng([seed, tag]).standard_normal(th.shape)
        groups[grp] = xr.Dataset({"y": th + s_obs * noise})
    for grp in [g for g in groups if g in idata.groups()]:
        delattr(idata, grp)
        idata._groups = [g for g in idata._groups if g != grp]
    idata.add_groups(groups)


def _add_generated(
    idata: az.InferenceData,
    group: str,
    variables: dict[str, Any],
    coords: Mapping[str, Sequence[Any]],
) -> None:
    """Add variables drawn outside the sampler to ``idata[group]``, with named coordinates."""
    ds = idata[group]
    new = {}
    for key, (dims, values) in variables.items():
        da_coords = {d: ds.coords[d] for d in dims if d in ds.coords}
        da_coords.update({d: list(coords[d]) for d in dims if d not in da_coords and d in coords})
        new[key] = xr.DataArray(np.asarray(values), dims=dims, coords=da_coords)
    setattr(idata, group, ds.assign(new))


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _data_vector(values: np.ndarray, name: str) -> Any:
    """A data vector as a shared variable rather than a constant of the PyTensor graph.

    PyTensor 2.38 inlines a constant vector whose entries are all equal (equal standard
    errors, identical studies) into the fused elementwise graph and then fails to restore its
    shape for a multi-output node (rewrite ``local_inline_composite_constants``): the rewrite
    is abandoned -- the graph stays correct -- but a traceback is logged on stderr. A shared
    variable is never inlined, so the graph compiles cleanly; the model is unchanged.
    """
    import pytensor

    return pytensor.shared(np.asarray(values, dtype=float), name=name)


def _draws(da: xr.DataArray) -> np.ndarray:
    return np.asarray(da.transpose("chain", "draw").values, dtype=float)


def _resolve_priors(
    tau_prior: TauPrior | str | None, mu_prior: MuPrior | str | None
) -> tuple[TauPrior, MuPrior]:
    return TauPrior.coerce(tau_prior), MuPrior.coerce(mu_prior)


def _priors(mu_prior: MuPrior, tau_prior: TauPrior, **more: str) -> dict[str, str]:
    """The ``priors`` of a result: ``mu``, ``tau``, then ``more``."""
    return {"mu": _describe(mu_prior), "tau": _describe(tau_prior), **more}


def _describe(prior: Any) -> str:
    describe = getattr(prior, "describe", None)
    return str(describe()) if callable(describe) else repr(prior)


def _is_flat(prior: MuPrior) -> bool:
    flat = getattr(prior, "is_flat", False)
    return bool(flat() if callable(flat) else flat)


def _labels(labels: Sequence[str] | None, k: int) -> tuple[str, ...]:
    if labels is None:
        return tuple(f"trial_{i + 1}" for i in range(k))
    labs = tuple(str(x) for x in labels)
    if len(labs) != k:
        raise InputError(
            f"{len(labs)} labels given for {k} trials; give one label per trial", column="labels"
        )
    seen: dict[str, int] = {}
    for i, lab in enumerate(labs):
        if lab in seen:
            raise InputError(
                f"trial label '{lab}' appears in rows {seen[lab] + 1} and {i + 1}; each trial must count "
                "once (pool a trial's reports or subgroups into one row first)",
                row=i + 1,
                study=lab,
                column="labels",
            )
        seen[lab] = i
    return labs


def _as_float(x: Any, column: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"values must be numbers, got {x!r}", column=column) from None
    if arr.ndim != 1:
        raise InputError(f"expected a 1-d sequence, got shape {arr.shape}", column=column)
    return arr


def _check_yi_sei(
    yi: Any, sei: Any, labels: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    y = _as_float(yi, "yi")
    s = _as_float(sei, "sei")
    if y.size == 0:
        raise EstimationError("no trials to pool (yi is empty)")
    if y.size != s.size:
        raise InputError(f"yi has {y.size} values but sei has {s.size}; they must match")
    labs = _labels(labels, y.size)
    for i in range(y.size):
        if not np.isfinite(y[i]):
            raise InputError(
                f"log ratio is {y[i]}; it must be a finite number",
                row=i + 1,
                study=labs[i],
                column="yi",
            )
        if not (np.isfinite(s[i]) and s[i] > 0):
            raise InputError(
                f"standard error is {s[i]}; it must be a positive finite number",
                row=i + 1,
                study=labs[i],
                column="sei",
            )
    check_safe_range(y, s, studies=labs)  # the range shared with the exact and frequentist sides
    return y, s, labs


def _check_counts(
    et: Any, nt: Any, ec: Any, nc: Any, labels: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    cols = {"events_trt": et, "n_trt": nt, "events_ctl": ec, "n_ctl": nc}
    arrs = {k: _as_float(v, k) for k, v in cols.items()}
    sizes = {a.size for a in arrs.values()}
    if len(sizes) != 1:
        raise InputError(
            "events_trt, n_trt, events_ctl and n_ctl must have the same length, got "
            + ", ".join(f"{k}={v.size}" for k, v in arrs.items())
        )
    k = sizes.pop()
    if k == 0:
        raise EstimationError("no trials to pool (the count arrays are empty)")
    labs = _labels(labels, k)
    for name, a in arrs.items():
        for i in range(k):
            if not (np.isfinite(a[i]) and a[i] >= 0 and a[i] == np.round(a[i])):
                raise InputError(
                    f"value {a[i]} is not a non-negative whole number",
                    row=i + 1,
                    study=labs[i],
                    column=name,
                )
            if a[i] > 2.0**53:  # as bayesmtor.inputs: keeps the log ratios in the safe range
                raise InputError(
                    f"count {a[i]:g} is too large to be a number of participants (above 2^53)",
                    row=i + 1,
                    study=labs[i],
                    column=name,
                )
    for ev, n in (("events_trt", "n_trt"), ("events_ctl", "n_ctl")):
        for i in range(k):
            if arrs[n][i] < 1:
                raise InputError("arm size must be at least 1", row=i + 1, study=labs[i], column=n)
            if arrs[ev][i] > arrs[n][i]:
                raise InputError(
                    f"{int(arrs[ev][i])} events exceed the arm size {int(arrs[n][i])} "
                    f"({n}); events must be at most the number of patients",
                    row=i + 1,
                    study=labs[i],
                    column=ev,
                )
    out = [arrs[c].astype(np.int64) for c in cols]
    return out[0], out[1], out[2], out[3], labs


def _count_variances(
    et: np.ndarray, nt: np.ndarray, ec: np.ndarray, nc: np.ndarray, measure: str
) -> np.ndarray:
    """Large-sample variances of the log OR / log RR (descriptive use: I2 only)."""
    a, b, c, d = (x.astype(float) for x in (et, nt - et, ec, nc - ec))
    double_zero = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    add = np.where(zero, 0.5, 0.0)
    a, b, c, d = a + add, b + add, c + add, d + add
    if measure == "OR":
        v = 1 / a + 1 / b + 1 / c + 1 / d
    else:
        v = 1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)
    v = v[~double_zero]
    if v.size == 0:
        raise EstimationError(
            "every trial has zero events (or zero non-events) in both arms; the effect is not "
            "estimable"
        )
    return v


def _check_measure(measure: str | None, *, allowed: tuple[str | None, ...]) -> str | None:
    if measure is None and None in allowed:
        return None
    m = str(measure).upper() if measure is not None else None
    if m not in allowed:
        raise InputError(
            f"measure {measure!r} is not supported here; use one of "
            f"{[a for a in allowed if a is not None]}",
            column="measure",
        )
    return m


def _check_positive_int(name: str, value: Any, allow_zero: bool = False) -> int:
    ok = isinstance(value, (int, np.integer)) and (value >= 0 if allow_zero else value >= 1)
    if not ok:
        what = "a non-negative" if allow_zero else "a positive"
        raise EstimationError(f"{name} must be {what} whole number, got {value!r}")
    return int(value)
