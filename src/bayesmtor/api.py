"""``bayesmeta``: the Bayesian random-effects meta-analysis behind one result type.

:func:`bayesmeta` fits the normal-normal model ``y_i ~ N(theta_i, s_i^2)``,
``theta_i ~ N(mu, tau^2)`` by exact quadrature (``engine="exact"``, the default; as R bayesmeta)
or by MCMC (``engine="mcmc"``, PyMC/NUTS), and returns a :class:`BayesMetaResult` either way:
``.summary()`` has the same rows and columns for both engines, ``.idata`` is an ArviZ
InferenceData, and :func:`bayesmtor.schema.pooled_row` describes it in the columns shared with
the frequentist fit. PyMC is imported only for ``engine="mcmc"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from bayesmtor.errors import InputError
from bayesmtor.studies import StudyData
from bayesmtor.vocabulary import ENGINES, is_ratio

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["BayesMetaResult", "bayesmeta"]

_SUMMARY_ROWS = ("mu", "tau", "I2", "theta_new")
_SUMMARY_COLUMNS = ("mean", "sd", "median", "q_low", "q_high")


@dataclass(frozen=True)
class BayesMetaResult:
    """Posterior of one Bayesian random-effects meta-analysis, whichever engine computed it.

    Attributes
    ----------
    engine : str
        ``"exact"`` (quadrature) or ``"mcmc"`` (PyMC).
    measure : str or None
        The effect measure (log scale for ratios), ``None`` when not stated.
    posterior : ExactPosterior or BayesResult
        The engine's own result, with everything it offers (densities, quantiles, draws;
        MCMC diagnostics).
    excluded : tuple of (str, str)
        Studies left out before pooling, with the reason.
    data : StudyData, optional
        The studies (labels, effects, raw counts, reasons), for :meth:`plot_forest` and
        :meth:`plot_funnel`.
    """

    engine: str
    measure: str | None
    posterior: Any
    excluded: tuple[tuple[str, str], ...] = ()
    data: StudyData | None = field(default=None, compare=False, repr=False)

    @property
    def k(self) -> int:
        """Number of studies pooled."""
        post = self.posterior
        return int(post.k) if self.engine == "exact" else len(post.labels)

    @property
    def idata(self) -> Any:
        """ArviZ InferenceData: the MCMC draws, or independent draws from the exact posterior
        (:meth:`ExactPosterior.to_inference_data <bayesmtor.bayes.exact.ExactPosterior.to_inference_data>`:
        config ``exact_chains`` chains of ``exact_draws`` independent draws, seed 0,
        ``posterior.attrs["engine"] == "exact"``)."""
        return self.posterior.idata

    def bayes_factors(self) -> dict[str, float | None]:
        """``log_marginal_likelihood``, ``bf_tau0`` and ``bf_mu0`` of the exact posterior
        (R bayesmeta's ``bayesfactor["actual", ]``); ``None`` unless both priors are proper
        or with the MCMC engine, whose draws give no marginal likelihood."""
        if self.engine != "exact":
            return {"log_marginal_likelihood": None, "bf_tau0": None, "bf_mu0": None}
        return self.posterior.bayes_factors()

    def model_average(self, *, prior_probs: Any = None, ci_prob: float | None = None) -> Any:
        """Model averaging over FE-null, FE-effect, RE-null and RE-effect (exact engine, proper
        priors): :func:`bayesmtor.bayes.model_averaging.model_average`."""
        from bayesmtor.bayes.model_averaging import model_average
        from bayesmtor.errors import InputError

        if self.engine != "exact":
            raise InputError("model averaging needs the exact engine (engine='exact')")
        return model_average(self.posterior, prior_probs=prior_probs, ci_prob=ci_prob)

    def summary(self, *, ci_prob: float | None = None, interval: str | None = None) -> pd.DataFrame:
        """Posterior summary, the same for both engines.

        Parameters
        ----------
        ci_prob : float, optional
            Probability of the intervals; default ``config.defaults["ci_prob"]``.
        interval : {"central", "shortest"}, optional
            Interval kind (default ``config.defaults["ci_kind"]``); exact engine only for
            ``"shortest"``.

        Returns
        -------
        pandas.DataFrame
            Rows ``mu, tau, I2, theta_new`` (``I2`` in percent; ``theta_new`` is the effect in a
            new study, its interval the prediction interval), columns ``mean, sd, median,
            q_low, q_high``; ``attrs["ci_prob"]`` holds the interval probability.
        """
        if self.engine == "exact":
            s = self.posterior.summary(ci_prob=ci_prob, interval=interval)
        else:
            from bayesmtor import config
            from bayesmtor.errors import InputError

            if config.get("ci_kind", interval) != "central":
                raise InputError(
                    "shortest intervals of an MCMC fit: use bayesmtor.bayes.mcse.draw_summary "
                    "(with their Monte Carlo errors) or the exact engine",
                    column="interval",
                )
            s = self.posterior.summary(ci_prob=ci_prob)
        out = s.loc[list(_SUMMARY_ROWS), list(_SUMMARY_COLUMNS)].astype(float).copy()
        out.loc["I2"] *= 100.0
        out.index.name = "parameter"
        out.attrs["ci_prob"] = s.attrs.get("ci_prob", ci_prob)
        return out

    def plot_forest(
        self,
        ax: Axes | None = None,
        *,
        title: str | None = None,
        treatment: str = "treatment",
        control: str = "control",
        benefit: str | None = None,
        frequentist: Any = True,
        shrunken: bool = True,
    ) -> Axes:
        """Forest plot of the studies, their shrunken estimates and the pooled posterior.

        Rows: every study (events/total per arm for count data, weight, estimate with its
        interval) with its posterior (shrunken) estimate below it, the pooled posterior
        median and credible interval (diamond), the frequentist pooled row beside it, the
        posterior predictive interval for a new study (k >= 2); below them the Bayesian line
        (tau and the posterior probability that the effect lies on the side of benefit) and
        the frequentist heterogeneity line and overall-effect test. A single study is drawn
        as a study, without pooled rows. See :func:`bayesmtor.reporting.result_plots.result_forest`.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
        title : str, optional
        treatment, control : str
            Names of the arms (column headers, "Favours ..." labels).
        benefit : {"lower", "higher"}, optional
            Which side of the null favours the treatment; default
            ``config.defaults["forest_benefit"]``.
        frequentist : bool or PoolResult
            ``True`` (default): fit the frequentist model of ``config.defaults["forest_method"]``
            (inverse variance) to the same studies, for the weight column and its pooled
            row; a :class:`~bayesmtor.frequentist.PoolResult` to show that fit instead;
            ``False`` for none (no weight column).
        shrunken : bool
            Draw the posterior estimate of each study.

        Returns
        -------
        matplotlib.axes.Axes
        """
        from bayesmtor.reporting.result_plots import result_forest

        return result_forest(
            self,
            ax=ax,
            title=title,
            treatment=treatment,
            control=control,
            benefit=benefit,
            frequentist=frequentist,
            shrunken=shrunken,
        )

    def plot_funnel(self, ax: Axes | None = None, *, title: str | None = None) -> Axes:
        """Contour-enhanced funnel plot of the studies around the posterior median of mu.

        Returns
        -------
        matplotlib.axes.Axes
        """
        from bayesmtor.reporting.result_plots import result_funnel

        return result_funnel(self, ax=ax, title=title)

    def __repr__(self) -> str:
        s = self.summary()
        mu, tau = s.loc["mu"], s.loc["tau"]
        level = f"{100 * s.attrs['ci_prob']:g}%" if s.attrs.get("ci_prob") else "central"
        return (
            f"BayesMetaResult(engine={self.engine!r}, measure={self.measure!r}, k={self.k}, "
            f"mu median {mu['median']:.4g} [{level}: {mu['q_low']:.4g}, {mu['q_high']:.4g}], "
            f"tau median {tau['median']:.4g}, excluded={len(self.excluded)})"
        )


def bayesmeta(
    yi: Any,
    sei: Any = None,
    *,
    engine: str = "exact",
    tau_prior: Any = None,
    mu_prior: Any = None,
    labels: Any = None,
    measure: str | None = None,
    random_seed: int | None = None,
    sample_kwargs: dict[str, Any] | None = None,
    mods: Any = None,
    intercept: bool = True,
    beta_prior: Any = None,
) -> BayesMetaResult | Any:
    """Bayesian random-effects meta-analysis, as R bayesmeta; with ``mods``, as its ``bmr()``.

    Parameters
    ----------
    yi : array-like or EffectSizes
        Study estimates (log scale for ratios), or the result of :func:`bayesmtor.escalc`,
        whose included studies, labels, measure and exclusions are used (``sei``, ``labels``
        and ``measure`` must then not be given).
    sei : array-like, optional
        Standard errors of ``yi`` (required with arrays).
    engine : {"exact", "mcmc"}
        Quadrature (deterministic, fast) or PyMC/NUTS.
    tau_prior : TauPrior or str, optional
        Prior of the between-study standard deviation; default from :mod:`bayesmtor.config`.
    mu_prior : MuPrior or str, optional
        Prior of the mean effect; default from :mod:`bayesmtor.config`.
    labels : sequence of str, optional
        Study labels.
    measure : str, optional
        The effect measure, for the summaries (``"RR"``, ``"OR"``, ``"HR"``, ...).
    random_seed : int, optional
        Seed of the MCMC engine (default from the config registry); not used by the exact one.
    sample_kwargs : dict, optional
        Further options of :func:`bayesmtor.bayes.pymc_models.fit_normal_normal` (``draws``,
        ``tune``, ``chains``, ``target_accept``, ...), MCMC engine only.
    mods : list of str, str, DataFrame or array, optional
        Moderators of a meta-regression (as :func:`bayesmtor.rma`'s ``mods``): column names
        of the study table of an ``EffectSizes``, or an explicit design matrix (one row per
        included study). Returns an
        :class:`~bayesmtor.bayes.regression.ExactRegressionPosterior` (exact engine) or a
        :class:`~bayesmtor.bayes.pymc_regression.McmcRegressionResult` (MCMC); ``mu_prior``
        does not apply.
    intercept : bool
        With ``mods`` given as column names: include the intercept ``intrcpt`` (default).
    beta_prior : MuPrior, str or sequence, optional
        With ``mods``: the prior of the coefficients, flat (default) or ``"normal:M,S"`` for
        every coefficient, or one normal prior per coefficient.

    Returns
    -------
    BayesMetaResult, or a meta-regression result with ``mods``
    """
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; use 'exact' or 'mcmc'", column="engine")
    if mods is not None:
        return _regression(
            yi, sei, labels, measure, mods, intercept, engine, tau_prior, mu_prior, beta_prior,
            random_seed, sample_kwargs,
        )  # fmt: skip
    if beta_prior is not None:
        raise InputError("'beta_prior' is the coefficient prior of a meta-regression: give "
                         "'mods' too", column="beta_prior")  # fmt: skip
    y, s, labels, measure, excluded = _data(yi, sei, labels, measure)
    from bayesmtor.bayes.priors import default_prior_problem

    problem = default_prior_problem(measure, tau_prior, mu_prior)
    if problem:
        raise InputError(problem, column="tau_prior" if tau_prior is None else "mu_prior")
    studies = (
        StudyData.from_effect_sizes(yi)
        if hasattr(yi, "table") and hasattr(yi, "dropped")
        else StudyData.from_arrays(y, s, labels)
    )
    if engine == "exact":
        if sample_kwargs:
            raise InputError(
                "sample_kwargs are options of the MCMC engine; use engine='mcmc'",
                column="sample_kwargs",
            )
        from bayesmtor.bayes.exact import exact_posterior

        post = exact_posterior(y, s, tau_prior=tau_prior, mu_prior=mu_prior, labels=labels)
    else:
        from bayesmtor.bayes.pymc_models import fit_normal_normal

        post = fit_normal_normal(
            y,
            s,
            labels=labels,
            measure=measure if is_ratio(measure) else None,
            tau_prior=tau_prior,
            mu_prior=mu_prior,
            random_seed=random_seed,
            **dict(sample_kwargs or {}),
        )
    return BayesMetaResult(
        engine=engine, measure=measure, posterior=post, excluded=excluded, data=studies
    )


def _regression(
    yi, sei, labels, measure, mods, intercept, engine, tau_prior, mu_prior, beta_prior,
    random_seed, sample_kwargs,
) -> Any:  # fmt: skip
    """``bayesmeta(..., mods=...)``: exact or MCMC meta-regression."""
    import numpy as np

    from bayesmtor.design import explicit_design, regression_data

    if mu_prior is not None:
        raise InputError("with 'mods' the coefficients take 'beta_prior', not 'mu_prior'",
                         column="mu_prior")  # fmt: skip
    if hasattr(yi, "table") and hasattr(yi, "dropped"):
        y, s, labels, measure, _ = _data(yi, sei, labels, measure)
        rd = regression_data(yi, mods, intercept=intercept)
        design, studies, excluded = rd.design, rd.studies, rd.excluded
    else:
        if isinstance(mods, str) or all(isinstance(m, str) for m in mods):
            raise InputError("moderator names need a study table: give an EffectSizes "
                             "(bm.escalc) as data, or an explicit design matrix",
                             column="mods")  # fmt: skip
        if sei is None:
            raise InputError("'sei' is needed with an array of estimates", column="sei")
        y, s = np.asarray(yi, dtype=float), np.asarray(sei, dtype=float)
        design, studies, excluded = explicit_design(mods), tuple(labels or ()), ()
    from bayesmtor.bayes.regression import check_tau_prior_scale

    check_tau_prior_scale(measure, tau_prior)
    common = {"tau_prior": tau_prior, "beta_prior": beta_prior, "measure": measure or "generic"}
    if engine == "exact":
        if sample_kwargs:
            raise InputError("sample_kwargs are options of the MCMC engine; use engine='mcmc'",
                             column="sample_kwargs")  # fmt: skip
        from bayesmtor.bayes.regression import exact_regression

        return exact_regression(y, s, design, studies=studies, excluded=excluded, **common)
    from bayesmtor.bayes.pymc_regression import mcmc_regression

    return mcmc_regression(
        y, s, design, random_seed=random_seed, **common, **dict(sample_kwargs or {})
    )


def _data(yi: Any, sei: Any, labels: Any, measure: str | None) -> tuple[Any, ...]:
    """yi, sei, labels, measure and exclusions from arrays or an EffectSizes."""
    table = getattr(yi, "table", None)
    if table is None or not hasattr(yi, "dropped"):
        if sei is None:
            raise InputError("'sei' is needed with an array of estimates", column="sei")
        return yi, sei, labels, measure, ()
    given = [
        n for n, v in (("sei", sei), ("labels", labels), ("measure", measure)) if v is not None
    ]
    if given:
        raise InputError(
            f"{', '.join(given)} come(s) from the effect sizes; drop the argument(s)",
            column=given[0],
        )
    inc = table["included"].to_numpy(bool)
    return (
        table["yi"].to_numpy(float)[inc],
        table["sei"].to_numpy(float)[inc],
        table["study"].astype(str).to_numpy()[inc].tolist(),
        yi.measure,
        tuple((str(st), str(r)) for st, r in yi.dropped),
    )
