"""Result objects of :mod:`bayesmtor.frequentist` and their text formatting."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from bayesmtor.schema import HETEROGENEITY_COLUMNS, SECTION_KEYS
from bayesmtor.vocabulary import FE_METHODS, RATIO_MEASURES, RE_METHODS

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from bayesmtor.studies import StudyData

#: Keys of :meth:`PoolResult.to_dict` (and of ``bayesmtor pool --json``), in order.
JSON_KEYS: tuple[str, ...] = (
    "measure",
    "method",
    "test",
    "ci_prob",
    "k",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "stat",
    "stat_df",
    "pval",
    "tau2",
    "tau2_ci_low",
    "tau2_ci_high",
    "tau",
    "I2",
    "H2",
    "I2_tau",
    "H2_tau",
    "Q",
    "Q_df",
    "Q_pval",
    "pi_low",
    "pi_high",
    "pi_dist",
)


def _none_if_nan(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


@dataclass(frozen=True)
class PoolResult:
    """One pooled meta-analysis. Effect fields are on the analysis (log for ratios) scale.

    ``stat`` is the z value (``test="z"``) or the t value (``"t"``/``"knha"``, with ``stat_df``
    degrees of freedom); ``zval``/``tval`` give the same number under its own name. Undefined
    quantities are ``nan`` (``None`` in :meth:`to_dict`).

    ``data`` holds the studies behind the fit (labels, effects, raw counts and this fit's
    weights, :class:`~bayesmtor.studies.StudyData`) for :meth:`plot_forest` and
    :meth:`plot_funnel`; it is ``None`` for the per-group fits of a table.
    """

    measure: str
    method: str
    test: str
    ci_prob: float
    k: int
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    stat: float
    stat_df: float
    pval: float
    tau2: float
    tau2_ci_low: float
    tau2_ci_high: float
    tau: float
    I2: float
    H2: float
    I2_tau: float
    H2_tau: float
    Q: float
    Q_df: float
    Q_pval: float
    pi_low: float
    pi_high: float
    pi_dist: str | None = None
    tau2_se: float = float("nan")
    tau_ci_low: float = float("nan")
    tau_ci_high: float = float("nan")
    I2_ci_low: float = float("nan")
    I2_ci_high: float = float("nan")
    H2_ci_low: float = float("nan")
    H2_ci_high: float = float("nan")
    studies: tuple[str, ...] = ()
    excluded: tuple[tuple[str, str], ...] = ()
    data: StudyData | None = field(default=None, compare=False, repr=False)

    @property
    def zval(self) -> float:
        """z statistic (nan for t-based tests)."""
        return self.stat if self.test == "z" else float("nan")

    @property
    def tval(self) -> float:
        """t statistic (nan for the z test)."""
        return self.stat if self.test != "z" else float("nan")

    @property
    def is_ratio(self) -> bool:
        """Whether the measure is a ratio pooled on the log scale."""
        return self.measure in RATIO_MEASURES

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (keys :data:`JSON_KEYS`, then the heterogeneity columns of
        :data:`bayesmtor.schema.HETEROGENEITY_COLUMNS`; ``None`` where undefined, log scale)."""
        out: dict[str, Any] = {}
        for key in JSON_KEYS + HETEROGENEITY_COLUMNS:
            val = getattr(self, key)
            if isinstance(val, (np.floating, float)):
                val = _none_if_nan(float(val))
            elif isinstance(val, np.integer):
                val = int(val)
            out[key] = val
        out["excluded"] = [{"study": s, "reason": r} for s, r in self.excluded]
        return out

    def summary(self) -> pd.DataFrame:
        """Pooled effect on the log (analysis) scale and, for ratios, the ratio scale."""
        import pandas as pd

        cols, rows = self.summary_rows()
        df = pd.DataFrame.from_dict(rows, orient="index", columns=cols)
        df.index.name = "scale"
        return df

    def summary_rows(self) -> tuple[list[str], dict[str, list[float]]]:
        """The table of :meth:`summary` without pandas: its columns, and its rows by scale."""
        level = f"{100 * self.ci_prob:g}%"
        cols = [
            "estimate",
            "se",
            f"ci_low {level}",
            f"ci_high {level}",
            f"pi_low {level}",
            f"pi_high {level}",
            "stat",
            "pval",
        ]
        base = [self.estimate, self.se, self.ci_low, self.ci_high, self.pi_low, self.pi_high]
        rows = {f"{_log_label(self.measure)}": base + [self.stat, self.pval]}
        if self.is_ratio:
            e = [math.exp(x) if math.isfinite(x) else float("nan") for x in base]
            e[1] = float("nan")
            rows[self.measure] = e + [float("nan"), float("nan")]
        return cols, rows

    def heterogeneity(self) -> pd.DataFrame:
        """One-row DataFrame with Q, its df and p-value, I2, H2, tau2 (with CI, SE) and tau."""
        import pandas as pd

        keys = ["k", "Q", "Q_df", "Q_pval", "I2", "H2", "I2_tau", "H2_tau"]
        keys += ["tau2", "tau2_ci_low", "tau2_ci_high", "tau", *HETEROGENEITY_COLUMNS]
        return pd.DataFrame([{key: getattr(self, key) for key in keys}])

    def confint(self) -> pd.DataFrame:
        """Heterogeneity estimates and their Q-profile intervals, as metafor ``confint(res)``.

        Returns
        -------
        pandas.DataFrame
            Index ``tau2, tau, I2, H2``; columns ``estimate, ci_low, ci_high``. ``I2`` (percent)
            and ``H2`` are the tau-based ``I2_tau``/``H2_tau``; all NaN for fixed-effect fits.
        """
        import pandas as pd

        rows = {
            "tau2": (self.tau2, self.tau2_ci_low, self.tau2_ci_high),
            "tau": (self.tau, self.tau_ci_low, self.tau_ci_high),
            "I2": (self.I2_tau, self.I2_ci_low, self.I2_ci_high),
            "H2": (self.H2_tau, self.H2_ci_low, self.H2_ci_high),
        }
        out = pd.DataFrame.from_dict(
            rows, orient="index", columns=["estimate", "ci_low", "ci_high"]
        )
        out.index.name = "quantity"
        return out

    def plot_forest(
        self,
        ax: Axes | None = None,
        *,
        title: str | None = None,
        treatment: str = "treatment",
        control: str = "control",
        benefit: str | None = None,
    ) -> Axes:
        """Forest plot of the studies and this pooled result, RevMan style.

        Columns: study, events/total per arm (count data), weight (this fit's weights, in
        percent), the estimate with its interval; the pooled diamond with the heterogeneity
        line (Tau², Chi², df, P, I²) and the test for the overall effect (Z or t, P); the
        prediction interval (random effects, k >= 3); "Favours ..." under the axis. A single
        study is drawn as a study, without a pooled row. Draws with matplotlib (imported
        here), see :func:`bayesmtor.reporting.result_plots.result_forest`.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on; a new figure sized to the number of studies if omitted.
        title : str, optional
            Title of the plot.
        treatment, control : str
            Names of the arms, for the column headers and the "Favours ..." labels.
        benefit : {"lower", "higher"}, optional
            Whether values below the null (``"lower"``: an HR of progression or an RR of an
            adverse event) or above it (``"higher"``: an RR of response) favour the
            treatment; default ``config.defaults["forest_benefit"]``.

        Returns
        -------
        matplotlib.axes.Axes
        """
        from bayesmtor.reporting.result_plots import result_forest

        return result_forest(
            self, ax=ax, title=title, treatment=treatment, control=control, benefit=benefit
        )

    def plot_funnel(self, ax: Axes | None = None, *, title: str | None = None) -> Axes:
        """Contour-enhanced funnel plot of the pooled studies around this estimate (see
        :func:`bayesmtor.reporting.figures.funnel_plot`).

        Returns
        -------
        matplotlib.axes.Axes
        """
        from bayesmtor.reporting.result_plots import result_funnel

        return result_funnel(self, ax=ax, title=title)

    def __repr__(self) -> str:
        return _format_result(self)

    __str__ = __repr__


def _log_label(measure: str) -> str:
    return f"log {measure}" if measure in RATIO_MEASURES else measure


def _fmt(x: float, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "NA"
    if abs(x) >= 1e6:  # e.g. an effect of 1e40 within the safe range: no 41-digit fields
        return f"{x:.{max(digits, 4)}g}"
    return f"{x:.{digits}f}"


def _format_result(r: PoolResult) -> str:
    kind = "fixed-effect" if r.method in FE_METHODS else "random-effects"
    level = f"{100 * r.ci_prob:g}%"
    lines = [f"PoolResult: {kind} meta-analysis, method={r.method}, measure={r.measure}, k={r.k}"]
    stat_name = "z" if r.test == "z" else f"t({_fmt(r.stat_df, 0)})"
    lines.append(
        f"  {_log_label(r.measure)}: {_fmt(r.estimate)} (SE {_fmt(r.se)}), {level} CI "
        f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}], {stat_name} = {_fmt(r.stat, 2)}, "
        f"p = {_fmt(r.pval, 4)}" + (" [HKSJ]" if r.test == "knha" else "")
    )
    if r.is_ratio and math.isfinite(r.estimate):
        lines.append(
            f"  {r.measure}: {_fmt(math.exp(r.estimate))} [{_fmt(math.exp(r.ci_low))}, "
            f"{_fmt(math.exp(r.ci_high))}]"
        )
    if math.isfinite(r.pi_low):
        ex = (
            f" ({r.measure} [{_fmt(math.exp(r.pi_low))}, {_fmt(math.exp(r.pi_high))}])"
            if r.is_ratio
            else ""
        )
        dist = {"t": " (t, k-2 df)", "z": " (z)"}.get(r.pi_dist or "", "")
        lines.append(
            f"  {level} prediction interval{dist}: [{_fmt(r.pi_low)}, {_fmt(r.pi_high)}]{ex}"
        )
    lines.append(
        f"  heterogeneity: Q = {_fmt(r.Q, 2)} on {_fmt(r.Q_df, 0)} df (p = {_fmt(r.Q_pval)}), "
        f"I2 = {_fmt(r.I2, 1)}%, H2 = {_fmt(r.H2, 2)}"
    )
    if r.method in RE_METHODS:
        se = f" (SE {_fmt(r.tau2_se)})" if math.isfinite(r.tau2_se) else ""
        lines.append(
            f"  tau2 = {_fmt(r.tau2)}{se} {level} CI [{_fmt(r.tau2_ci_low)}, "
            f"{_fmt(r.tau2_ci_high)}], tau = {_fmt(r.tau)} [{_fmt(r.tau_ci_low)}, "
            f"{_fmt(r.tau_ci_high)}]"
        )
        lines.append(
            f"  I2(tau) = {_fmt(r.I2_tau, 1)}% [{_fmt(r.I2_ci_low, 1)}, {_fmt(r.I2_ci_high, 1)}], "
            f"H2(tau) = {_fmt(r.H2_tau, 2)} [{_fmt(r.H2_ci_low, 2)}, {_fmt(r.H2_ci_high, 2)}]"
        )
    if r.excluded:
        lines.append("  excluded: " + "; ".join(f"{s} ({why})" for s, why in r.excluded))
    return "\n".join(lines)


@dataclass(frozen=True)
class SubgroupResult:
    """Pooled result per subgroup and the test for subgroup differences.

    ``Q_between`` is Cochran's Q of the subgroup estimates around their inverse-variance
    weighted mean (weights 1/SE^2), on ``n_groups - 1`` df, as RevMan 5 reports it.
    """

    by: str
    groups: tuple[str, ...]
    results: tuple[PoolResult, ...]
    Q_between: float
    Q_between_df: float
    Q_between_pval: float

    def summary(self) -> pd.DataFrame:
        """One row per subgroup (log scale), keys of :meth:`PoolResult.to_dict`."""
        import pandas as pd

        rows = []
        for g, r in zip(self.groups, self.results, strict=True):
            d = r.to_dict()
            d.pop("excluded")
            rows.append({self.by: g, **d})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "by": self.by,
            "groups": [
                {self.by: g, **r.to_dict()} for g, r in zip(self.groups, self.results, strict=True)
            ],
            "Q_between": _none_if_nan(float(self.Q_between)),
            "Q_between_df": _none_if_nan(float(self.Q_between_df)),
            "Q_between_pval": _none_if_nan(float(self.Q_between_pval)),
        }

    def __repr__(self) -> str:
        lines = [f"SubgroupResult by '{self.by}': {len(self.groups)} groups"]
        for g, r in zip(self.groups, self.results, strict=True):
            lines.append(
                f"  {g}: k={r.k}, {_log_label(r.measure)} = {_fmt(r.estimate)} "
                f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}], I2 = {_fmt(r.I2, 1)}%"
            )
        lines.append(
            f"  test for subgroup differences: Q = {_fmt(self.Q_between, 2)} on "
            f"{_fmt(self.Q_between_df, 0)} df, p = {_fmt(self.Q_between_pval)}"
        )
        return "\n".join(lines)


@dataclass(frozen=True)
class EggerResult:
    """Egger's regression test, as metafor ``regtest(model="lm", predictor="sei")``.

    Weighted least squares of yi on sei with weights 1/vi and a free residual variance; the
    slope (``bias``) is Egger's intercept of the standardised regression, tested with t on k-2
    df. ``limit_estimate`` is the intercept (the effect as SE -> 0).
    """

    k: int
    bias: float
    bias_se: float
    tval: float
    df: int
    pval: float
    limit_estimate: float
    limit_ci_low: float
    limit_ci_high: float
    ci_prob: float

    def summary(self) -> pd.DataFrame:
        """One-row DataFrame of the fields."""
        import pandas as pd

        return pd.DataFrame([{f.name: getattr(self, f.name) for f in fields(self)}])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, keys ``intercept, se, stat, df, pval`` (``bayesmtor pool --bias``).

        ``intercept`` is Egger's bias coefficient (the intercept of ``yi/sei ~ 1/sei``, the
        coefficient of ``sei`` here); ``stat`` its t value on ``df = k - 2``.
        """
        values = (self.bias, self.bias_se, self.tval, self.df, self.pval)
        return {
            key: _none_if_nan(float(v)) if key != "df" else int(v)
            for key, v in zip(SECTION_KEYS["egger"], values, strict=True)
        }

    def __repr__(self) -> str:
        return (
            f"EggerResult: k={self.k}, bias = {_fmt(self.bias)} (SE {_fmt(self.bias_se)}), "
            f"t({self.df}) = {_fmt(self.tval, 3)}, p = {_fmt(self.pval)}; limit estimate "
            f"{_fmt(self.limit_estimate)} [{_fmt(self.limit_ci_low)}, {_fmt(self.limit_ci_high)}]"
        )


@dataclass(frozen=True)
class RankTestResult:
    """Begg and Mazumdar's rank correlation test, as metafor ``ranktest()``.

    Kendall's tau-b between the standardised deviates ``(yi - mu_FE) / sqrt(vi - 1/sum w)``
    and the variances ``vi``; the p-value is two-sided, from Kendall's exact null distribution
    when there are no ties (``exact=True``) and from the normal approximation with the
    tie-corrected variance otherwise (as R's ``cor.test(method="kendall")``).
    """

    k: int
    tau: float
    pval: float
    exact: bool

    def summary(self) -> pd.DataFrame:
        """One-row DataFrame of the fields."""
        import pandas as pd

        return pd.DataFrame([{f.name: getattr(self, f.name) for f in fields(self)}])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, keys ``tau, pval`` (``bayesmtor pool --bias``)."""
        return {key: _none_if_nan(float(getattr(self, key))) for key in SECTION_KEYS["begg"]}

    def __repr__(self) -> str:
        how = "exact" if self.exact else "normal approximation (ties)"
        return (
            f"RankTestResult: k={self.k}, Kendall's tau = {_fmt(self.tau)}, "
            f"p = {_fmt(self.pval)} ({how})"
        )
