"""RevMan 5 files and RevMan Web data packages: reading, RevMan's algorithms, re-analysis.

* :mod:`bayesmtor.revman.reader` reads ``.rm5`` and data-package ``.zip`` files into study rows
  and analyses, RevMan's stored results kept apart (``revman_*`` columns);
* :mod:`bayesmtor.revman.recompute` recomputes every analysis with RevMan's own algorithms
  (without reading its stored results), sets them beside RevMan's numbers, and adds the exact
  Bayesian re-analysis;
* :mod:`bayesmtor.revman.report` writes the table, JSON and HTML report of a re-analysis.
"""

from bayesmtor.revman.reader import RevManReview, read_revman, read_revman_review
from bayesmtor.revman.recompute import RevManReanalysis, revman_reanalysis

__all__ = [
    "RevManReanalysis",
    "RevManReview",
    "read_revman",
    "read_revman_review",
    "revman_reanalysis",
]
