"""Writing a run: tables, figures, the HTML report and the atomic output folder.

Nothing here fits a model; every function takes results that :mod:`bayesmtor.pipeline` computed.
"""
