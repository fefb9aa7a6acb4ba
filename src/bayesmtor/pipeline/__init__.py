"""Running an analysis plan: plan expansion, fitting stages and the MCMC worker.

:func:`bayesmtor.pipeline.run.run_plan` turns a plan into frozen results and writes nothing;
:mod:`bayesmtor.reporting` turns those results into files.
"""

#: The posterior summaries every Bayesian table reports, in order: the median and central interval
#: of mu and of tau, the predictive interval of a new trial's effect and P(mu < 0).
POSTERIOR_COLUMNS: tuple[str, ...] = (
    "mu_median",
    "mu_low",
    "mu_high",
    "tau_median",
    "tau_low",
    "tau_high",
    "pred_low",
    "pred_high",
    "p_mu_below_0",
)
