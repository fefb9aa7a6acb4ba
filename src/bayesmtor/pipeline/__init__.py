"""Running an analysis plan: plan expansion, fitting stages and the MCMC worker.

:func:`bayesmtor.pipeline.run.run_plan` turns a plan into frozen results and writes nothing;
:mod:`bayesmtor.reporting` turns those results into files.
"""
