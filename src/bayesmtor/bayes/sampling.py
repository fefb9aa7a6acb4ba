"""PyMC sampling: one normal--normal model builder, one convergence gate, one retry schedule.

* :class:`NormalNormalModel` -- ``y_i ~ N(mu, s_i^2 + tau^2)`` with the trial effects integrated
  out, built (and its NUTS step compiled) once for a pair of priors. The data -- log ratios,
  standard errors and trial labels -- are ``pm.Data``, so many analyses are sampled with one
  compiled model (:meth:`NormalNormalModel.set_data`). :func:`~bayesmtor.bayes.pymc_models.fit_normal_normal`
  and the MCMC check of a plan run both build their model here.
* :func:`convergence_gate` -- zero divergent transitions, max R-hat <= ``config rhat_max``,
  min bulk and tail ESS >= ``config ess_min`` (Vehtari et al. 2021, Bayesian Analysis 16:667).
* :func:`retry_settings` and :func:`sample_with_retries` -- the one retry loop: attempt ``a``
  (from 0) samples with seed ``seed + a``; a run that fails the gate is repeated with a higher
  target acceptance, twice the tuning and, when the ESS was short, twice the draws.

* :class:`NumpyNormalNormal` and :func:`nuts_idata` -- the same model sampled by the NumPy NUTS
  of :mod:`bayesmtor.bayes.nuts` (no graph compilation, no PyMC import), with the same
  ``set_data``/``sample`` interface; :func:`choose_sampler` picks between the two samplers
  (config ``mcmc_sampler``).

PyMC is imported only by the functions that build or sample a PyMC model; the priors, the exact
engine and the NumPy sampler never import it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from bayesmtor import config
from bayesmtor._arviz import load as _load_arviz
from bayesmtor.bayes.nuts import NutsRun, normal_normal_density, sample_nuts, supports
from bayesmtor.bayes.priors import MuPrior, TauPrior
from bayesmtor.errors import InputError

if TYPE_CHECKING:
    import pymc as pm

az = _load_arviz()

__all__ = [
    "NormalNormalModel",
    "NumpyNormalNormal",
    "choose_sampler",
    "nuts_idata",
    "SampleRun",
    "convergence_gate",
    "pymc_sample",
    "retry_settings",
    "sample_with_retries",
]

#: ``sampler(draws=, tune=, chains=, target_accept=, seed=)`` -> InferenceData
Sampler = Callable[..., az.InferenceData]


class NormalNormalModel:
    """The normal--normal random-effects model, compiled once; data swapped through ``pm.Data``.

    Parameters
    ----------
    tau_prior, mu_prior : TauPrior, MuPrior
        The priors; they are part of the compiled graph, so one instance serves one pair.
    yi, sei : array-like, optional
        Initial log ratios and standard errors (default: two placeholder trials).
    labels : sequence of str, optional
        Trial labels, the ``trial`` coordinate (default ``trial_1``, ...).

    Attributes
    ----------
    model : pymc.Model
        Free variables ``mu`` and ``tau``; observed ``y`` (dims ``trial``); data ``yi`` and
        ``sei``.
    """

    def __init__(
        self,
        tau_prior: TauPrior,
        mu_prior: MuPrior,
        *,
        yi: Sequence[float] | np.ndarray | None = None,
        sei: Sequence[float] | np.ndarray | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        self.tau_prior, self.mu_prior = tau_prior, mu_prior
        y = np.zeros(2) if yi is None else np.asarray(yi, dtype=float)
        s = np.ones(len(y)) if sei is None else np.asarray(sei, dtype=float)
        self._build(y, s, _trial_labels(labels, len(y)))

    def _build(self, y: np.ndarray, s: np.ndarray, labs: list[str]) -> None:
        import pymc as pm
        import pytensor.tensor as pt

        with pm.Model(coords={"trial": labs}) as model:
            y_data = pm.Data("yi", y, dims="trial")
            s_data = pm.Data("sei", s, dims="trial")
            mu = self.mu_prior.to_pymc("mu")
            tau = self.tau_prior.to_pymc("tau")
            pm.Normal("y", mu=mu, sigma=pt.sqrt(s_data**2 + tau**2), observed=y_data, dims="trial")
        self.model = model
        self._steps: dict[float, Any] = {}

    def set_data(
        self, yi: np.ndarray, sei: np.ndarray, labels: Sequence[str] | None = None
    ) -> None:
        """Swap in the data of another analysis (any number of trials); nothing recompiles."""
        import pymc as pm

        y = np.asarray(yi, dtype=float)
        labs = _trial_labels(labels, len(y))
        with self.model:
            pm.set_data({"yi": y, "sei": np.asarray(sei, dtype=float)}, coords={"trial": labs})

    def step(self, target_accept: float) -> Any:
        """The NUTS step for ``target_accept``, compiled on first use and then reused."""
        if target_accept not in self._steps:
            import pymc as pm

            with self.model:
                self._steps[target_accept] = pm.NUTS(target_accept=target_accept)
        return self._steps[target_accept]

    def sample(
        self,
        *,
        draws: int,
        tune: int,
        chains: int,
        target_accept: float,
        seed: int,
        compiled_step: bool = True,
        cores: int = 1,
        progressbar: bool = False,
        sample_kwargs: Mapping[str, Any] | None = None,
    ) -> az.InferenceData:
        """One NUTS run on the current data.

        ``compiled_step=True`` reuses the compiled step of :meth:`step` (fast for many
        analyses); ``False`` lets :func:`pymc.sample` initialise NUTS itself (jitter and
        diagonal adaptation), as every single fit does.
        """
        settings = {
            "draws": draws, "tune": tune, "chains": chains, "target_accept": target_accept,
            "seed": seed,
        }  # fmt: skip
        pymc_options = {"cores": cores, "progressbar": progressbar, "sample_kwargs": sample_kwargs}
        return self._sample(settings, compiled_step, pymc_options)

    def _sample(
        self, settings: dict[str, Any], compiled_step: bool, pymc_options: dict[str, Any]
    ) -> az.InferenceData:
        step = self.step(settings["target_accept"]) if compiled_step else None
        return pymc_sample(self.model, step=step, **settings, **pymc_options)


def pymc_sample(
    model: pm.Model,
    *,
    draws: int,
    tune: int,
    chains: int,
    target_accept: float,
    seed: int,
    cores: int,
    progressbar: bool = False,
    step: Any = None,
    sample_kwargs: Mapping[str, Any] | None = None,
) -> az.InferenceData:
    """:func:`pymc.sample` with the package's settings (no PyMC convergence checks: the gate
    of :func:`convergence_gate` decides). A given ``step`` carries its own target acceptance."""
    import pymc as pm

    extra: dict[str, Any] = dict(sample_kwargs or {})
    if step is None:
        extra["target_accept"] = target_accept
    else:
        extra["step"] = step
    with model:
        return pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            random_seed=seed,
            progressbar=progressbar,
            compute_convergence_checks=False,
            **extra,
        )


def _trial_labels(labels: Sequence[str] | None, k: int) -> list[str]:
    return [f"trial_{i}" for i in range(1, k + 1)] if labels is None else list(labels)


def choose_sampler(
    sampler: str | None,
    priors: Sequence[TauPrior | MuPrior],
    sample_kwargs: Mapping[str, Any] | None = None,
) -> str:
    """The sampler of a fit: ``sampler`` or config ``mcmc_sampler`` (``"numpy"`` or ``"pymc"``).

    The NumPy sampler needs closed-form log densities of the priors
    (:func:`bayesmtor.bayes.nuts.supports`) and takes no PyMC ``sample_kwargs``; where either
    fails the fit falls back to PyMC, unless ``"numpy"`` was asked for explicitly (then an
    :class:`~bayesmtor.errors.InputError` says why).
    """
    asked = sampler is not None
    name = str(config.get("mcmc_sampler", sampler)).lower()
    if name not in ("numpy", "pymc"):
        raise InputError(
            f"unknown MCMC sampler {sampler!r}; use 'numpy' or 'pymc'", column="sampler"
        )
    if name == "pymc":
        return name
    why = None
    if not supports(*priors):
        why = "a prior without a closed-form density in the NumPy sampler: " + ", ".join(
            str(p) for p in priors if not supports(p)
        )
    elif sample_kwargs:
        why = f"PyMC sample_kwargs {sorted(sample_kwargs)}"
    if why is None:
        return name
    if asked:
        raise InputError(
            f"the NumPy sampler cannot take {why}; use sampler='pymc'", column="sampler"
        )
    return "pymc"


def nuts_idata(
    run: NutsRun,
    *,
    coords: Mapping[str, Sequence[Any]] | None = None,
    observed: Mapping[str, np.ndarray] | None = None,
) -> az.InferenceData:
    """A run of the NumPy NUTS (:func:`~bayesmtor.bayes.nuts.sample_nuts`) as InferenceData:
    ``posterior`` and ``sample_stats``, and ``observed_data`` with dims ``trial`` when
    ``observed`` is given."""
    post, stats = run.posterior, run.sample_stats
    chains, draws = next(iter(post.values())).shape
    groups: dict[str, xr.Dataset] = {}
    cd = {"chain": np.arange(chains), "draw": np.arange(draws)}
    groups["posterior"] = xr.Dataset(
        {k: (("chain", "draw"), v) for k, v in post.items()}, coords=cd
    )
    groups["sample_stats"] = xr.Dataset(
        {k: (("chain", "draw"), v) for k, v in stats.items()}, coords=cd
    )
    if observed:
        trial = list((coords or {}).get("trial", range(len(next(iter(observed.values()))))))
        groups["observed_data"] = xr.Dataset(
            {k: (("trial",), np.asarray(v, float)) for k, v in observed.items()},
            coords={"trial": trial},
        )
    attrs = {
        "sampler": "NUTS (bayesmtor.bayes.nuts, NumPy)",
        "sampling_time": run.seconds,
        "tuning_steps": run.tune,
        "target_accept": run.target_accept,
    }
    for ds in groups.values():
        ds.attrs.update(attrs)
    return az.InferenceData(**groups)


class NumpyNormalNormal(NormalNormalModel):
    """The model of :class:`NormalNormalModel` sampled by the NumPy NUTS: same constructor and
    interface (``set_data``, ``sample``), nothing to compile."""

    def _build(self, y: np.ndarray, s: np.ndarray, labs: list[str]) -> None:
        self.priors = (self.tau_prior, self.mu_prior)
        self.set_data(y, s, labs)

    def set_data(
        self, yi: np.ndarray, sei: np.ndarray, labels: Sequence[str] | None = None
    ) -> None:
        """Use the data of another analysis."""
        self.y, self.s = np.asarray(yi, dtype=float), np.asarray(sei, dtype=float)
        self.labels = _trial_labels(labels, len(self.y))
        self.density = normal_normal_density(self.y, self.s, *self.priors)

    def step(self, target_accept: float) -> None:
        """Nothing to compile (the interface of :meth:`NormalNormalModel.step`)."""

    def _sample(
        self, settings: dict[str, Any], compiled_step: bool, pymc_options: dict[str, Any]
    ) -> az.InferenceData:
        """One NUTS run on the current data (the chains one after the other in this process;
        PyMC's options do not apply)."""
        run = sample_nuts(self.density, **settings)
        return nuts_idata(run, coords={"trial": self.labels}, observed={"y": self.y})


@dataclass(frozen=True)
class SampleRun:
    """The outcome of :func:`sample_with_retries`.

    Attributes
    ----------
    idata : arviz.InferenceData
        The last run.
    gate : dict
        :func:`convergence_gate` of the last run, with its ``attempt``, ``draws``, ``tune``,
        ``chains``, ``target_accept`` and ``random_seed``.
    attempts : tuple of dict
        The same record for every run, first to last.
    """

    idata: az.InferenceData
    gate: Mapping[str, Any]
    attempts: tuple[Mapping[str, Any], ...]

    @property
    def converged(self) -> bool:
        """Whether the last run passed the gate."""
        return bool(self.gate["clean"])

    @property
    def attempt_seeds(self) -> list[int]:
        """The seed of every run: ``seed, seed + 1, ...``."""
        return [int(a["random_seed"]) for a in self.attempts]


def sample_with_retries(
    sampler: Sampler,
    *,
    draws: int,
    tune: int,
    chains: int,
    target_accept: float,
    seed: int,
    max_retries: int,
    var_names: Sequence[str] | None = None,
) -> SampleRun:
    """Sample until the convergence gate passes, at most ``max_retries`` times more.

    Attempt ``a`` uses seed ``seed + a`` and the settings of :func:`retry_settings` after a
    failed run. ``var_names`` restricts the gate to those posterior variables.
    """
    attempts: list[dict[str, Any]] = []
    diag: dict[str, Any] = {}
    idata = None
    for attempt in range(max_retries + 1):
        if attempt > 0:
            draws, tune, target_accept = retry_settings(diag, draws, tune, target_accept)
        idata = sampler(
            draws=draws, tune=tune, chains=chains, target_accept=target_accept, seed=seed + attempt
        )
        diag = convergence_gate(idata, var_names)
        diag.update(
            {
                "attempt": attempt,
                "draws": draws,
                "tune": tune,
                "chains": chains,
                "target_accept": target_accept,
                "random_seed": seed + attempt,
            }
        )
        attempts.append(dict(diag))
        if diag["clean"]:
            break
    assert idata is not None
    return SampleRun(idata=idata, gate=diag, attempts=tuple(attempts))


def retry_settings(
    diag: Mapping[str, Any], draws: int, tune: int, target_accept: float
) -> tuple[int, int, float]:
    """Sampler settings for the next attempt after a run that failed the convergence gate.

    Target acceptance moves up the schedule (0.95, then 0.99), tuning doubles, and draws double
    when the bulk or tail ESS was short; ``diag`` is the output of :func:`convergence_gate`.
    """
    schedule = config.get("target_accept_schedule")
    target_accept = next((t for t in schedule if t > target_accept), target_accept)
    tune = 2 * tune if tune > 0 else 1000
    if diag["ess_bulk_min"] < diag["ess_min"] or diag["ess_tail_min"] < diag["ess_min"]:
        draws = 2 * draws
    return draws, tune, target_accept


def convergence_gate(
    idata: az.InferenceData, var_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Convergence diagnostics of the sampled variables, and the gate verdict.

    Clean means no divergent transition, at least 2 chains with max R-hat <= ``config
    rhat_max`` and min bulk and tail ESS >= ``config ess_min``. ``var_names`` restricts the
    check to those posterior variables (default: every variable in the posterior group).
    """
    rhat_max_allowed = float(config.get("rhat_max"))
    ess_min = float(config.get("ess_min"))
    post = idata.posterior if var_names is None else idata.posterior[list(var_names)]
    divergences = int(idata.sample_stats["diverging"].sum())
    n_chains = int(post.sizes["chain"])
    if n_chains >= 2:
        rhat = _nanmax(az.rhat(post))
    else:
        rhat = float("nan")
    ess_bulk = _nanmin(az.ess(post, method="bulk"))
    ess_tail = _nanmin(az.ess(post, method="tail"))
    reasons = []
    if divergences > 0:
        reasons.append(f"{divergences} divergent transition(s)")
    if n_chains < 2:
        reasons.append("R-hat needs at least 2 chains")
    elif not rhat <= rhat_max_allowed:
        reasons.append(f"max R-hat {rhat:.4f} > {rhat_max_allowed}")
    if not ess_bulk >= ess_min:
        reasons.append(f"min bulk ESS {ess_bulk:.0f} < {ess_min:.0f}")
    if not ess_tail >= ess_min:
        reasons.append(f"min tail ESS {ess_tail:.0f} < {ess_min:.0f}")
    return {
        "divergences": divergences,
        "rhat_max": rhat,
        "ess_bulk_min": ess_bulk,
        "ess_tail_min": ess_tail,
        "rhat_threshold": rhat_max_allowed,
        "ess_min": ess_min,
        "clean": not reasons,
        "reason": "; ".join(reasons) if reasons else None,
    }


def _nanmax(ds: xr.Dataset) -> float:
    vals = [np.asarray(v.values, dtype=float).ravel() for v in ds.data_vars.values()]
    x = np.concatenate(vals) if vals else np.array([np.nan])
    return float(np.nanmax(x)) if np.any(np.isfinite(x)) else float("nan")


def _nanmin(ds: xr.Dataset) -> float:
    vals = [np.asarray(v.values, dtype=float).ravel() for v in ds.data_vars.values()]
    x = np.concatenate(vals) if vals else np.array([np.nan])
    return float(np.nanmin(x)) if np.any(np.isfinite(x)) else float("nan")
