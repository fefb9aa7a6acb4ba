"""Every analysis of a RevMan review recomputed with RevMan's algorithms, beside RevMan's numbers.

:func:`revman_reanalysis` takes a file (or a :class:`~bayesmtor.revman.reader.RevManReview`) and
recomputes each analysis (each outcome overall, and each subgroup) from the data entered only:
the ``revman_*`` columns are never read for the computation, only for the comparison.

RevMan 5's algorithms (Deeks & Higgins 2010, *Statistical algorithms in Review Manager 5*):

* study estimates: log OR / log RR / RD from counts (of non-events where RevMan's "swap events
  and non-events" is set) with 1/2 added to every cell of a study with
  a zero cell; studies with no events (or only events) in both arms are not estimable for
  ratios; MD and SMD (Hedges' adjusted g, :func:`bayesmtor.effects.standardized_mean_difference`
  with ``convention="revman"``) from means, SDs and sizes; generic inverse variance as entered;
  O-E and variance (individual patient data) as ``(O - E) / V`` with variance ``1 / V``, so that
  their inverse-variance pooling is Peto's ``sum(O - E) / sum(V)`` with variance ``1 / sum(V)``;
* fixed effect: Mantel-Haenszel (:func:`~bayesmtor.frequentist.rma_mh`, the zero-cell rule also
  inside the MH estimate), Peto (:func:`~bayesmtor.frequentist.rma_peto`) or inverse variance;
  Peto has no random-effects version in RevMan, so a Peto outcome is always fixed-effect;
* heterogeneity: Cochran's Q of the fixed-effect method (about the MH estimate for MH), its
  chi-squared p-value and ``I2 = max(0, (Q - df) / Q)``;
* random effects: DerSimonian-Laird with that Q, then inverse-variance pooling
  (:func:`~bayesmtor.frequentist.revman.revman_random_effects`);
* subgroups: each subgroup pooled alone; the overall analysis pools all studies of the outcome;
  the test for subgroup differences is Q of the subgroup estimates
  (:func:`~bayesmtor.frequentist.revman.subgroup_differences`).

The Bayesian re-analysis is the normal-normal random-effects model of the exact engine
(:func:`bayesmtor.bayes.exact.exact_batch_groups`) on the same study estimates, with the
package's default priors unless others are given. The default priors are set for unit-free
effects (log ratios, SMDs); a mean difference is in the units of its outcome, so an MD analysis
gets no posterior (``bayes_note`` says why) unless both priors are given, as ``bayesmtor pool
--measure MD --bayes`` refuses the defaults
(:func:`bayesmtor.bayes.priors.default_prior_problem`).

Agreement with RevMan's stored numbers is judged on the scale RevMan stored them (ratios for
ratio measures): relative tolerance ``config["revman_rtol"]`` (1e-6) for effects and statistics,
absolute tolerance ``config["revman_p_atol"]`` for p-values (RevMan rounds them), plus, for a data
package, which prints six decimals, an absolute ``config["revman_package_atol"]``. RevMan stores
``|z|``; z is compared in absolute value.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmtor import config
from bayesmtor.errors import EstimationError, NotEstimableWarning
from bayesmtor.revman.reader import RevManReview, read_revman_review
from bayesmtor.vocabulary import MEASURES

__all__ = [
    "COMPARED_KEYS",
    "JSON_KEYS",
    "P_KEYS",
    "RevManReanalysis",
    "revman_reanalysis",
]

#: Keys of each JSON record of ``bayesmtor revman --json``, in order.
JSON_KEYS = (
    "comparison_no", "outcome_no", "subgroup_no", "comparison", "outcome", "subgroup",
    "data_type", "measure", "method", "model", "k", "estimate", "ci_low", "ci_high",
    "Q", "Q_df", "Q_pval", "I2", "tau2", "z", "pval", "Q_between", "Q_between_pval",
    "mu_median", "mu_low", "mu_high", "tau_median", "bayes_note", "revman", "match", "reason",
)  # fmt: skip
#: Keys of RevMan's stored numbers (the ``revman`` object of each record).
REVMAN_KEYS = (
    "k", "estimate", "ci_low", "ci_high", "Q", "Q_df", "Q_pval", "I2", "tau2", "z", "pval",
    "Q_between", "Q_between_pval",
)  # fmt: skip
#: Keys compared with RevMan's stored numbers (``k`` is not: RevMan counts non-estimable studies).
COMPARED_KEYS = REVMAN_KEYS[1:]
#: p-values, compared with an absolute tolerance.
P_KEYS = ("Q_pval", "pval", "Q_between_pval")
_RATIO_KEYS = ("estimate", "ci_low", "ci_high")
_OURS = ("k", "estimate", "se", "ci_low", "ci_high", "Q", "Q_df", "Q_pval", "I2", "tau2", "z",
         "pval", "Q_between", "Q_between_df", "Q_between_pval", "I2_between")  # fmt: skip
_BAYES = ("mu_median", "mu_low", "mu_high", "tau_median")


@dataclass(frozen=True, eq=False)
class RevManReanalysis:
    """RevMan's numbers, bayesmtor's recomputation and the Bayesian re-analysis of a review.

    Attributes
    ----------
    review : RevManReview
        What was read.
    table : pandas.DataFrame
        One row per analysis, in file order: identification (``comparison_no`` ...
        ``model``), the recomputation (``k``, ``estimate``, ``se``, ``ci_low``, ``ci_high``,
        ``Q``, ``Q_df``, ``Q_pval``, ``I2``, ``tau2``, ``z``, ``pval``, ``Q_between``,
        ``Q_between_df``, ``Q_between_pval``, ``I2_between``; natural log for ratio measures),
        the posterior (``mu_median``, ``mu_low``, ``mu_high``, ``tau_median``; ``bayes_note``
        says why an analysis has none, e.g. an MD with the default priors), RevMan's stored
        numbers (``revman_*``), ``match`` (True, False, or missing when RevMan stored nothing),
        ``mismatch`` (the keys that differ), ``compared`` (the keys RevMan stored and that were
        compared) and ``reason`` (why an analysis is not estimable).
    studies : pandas.DataFrame
        The study rows of the review with the study estimates used (``yi``, ``vi``: RevMan's
        zero-cell rule, Hedges' adjusted g) and ``excluded_reason`` for studies not estimable.
    ci_prob : float
        Probability of the Bayesian credible intervals.
    tau_prior, mu_prior : object
        The priors used.
    """

    review: RevManReview
    table: pd.DataFrame
    studies: pd.DataFrame
    ci_prob: float
    tau_prior: Any
    mu_prior: Any

    @property
    def all_match(self) -> bool:
        """True when no analysis differs from a number RevMan stored."""
        return not bool((self.table["match"] == False).any())  # noqa: E712

    def records(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per analysis (:data:`JSON_KEYS`; ``None`` where undefined)."""
        out = []
        for row in self.table.to_dict(orient="records"):
            rec = {k: _clean(row.get(k)) for k in JSON_KEYS if k not in ("revman", "match")}
            rec["revman"] = {k: _clean(row.get(f"revman_{k}")) for k in REVMAN_KEYS}
            rec["match"] = _clean(row.get("match"))
            out.append({k: rec[k] for k in JSON_KEYS})
        return out

    def __repr__(self) -> str:
        n_match = int((self.table["match"] == True).sum())  # noqa: E712
        n_diff = int((self.table["match"] == False).sum())  # noqa: E712
        return (
            f"RevManReanalysis(source={self.review.source!r}, {len(self.table)} analyses: "
            f"{n_match} match RevMan, {n_diff} differ)"
        )


def _clean(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if value is pd.NA:
        return None
    return value


# --------------------------------------------------------------------------------------------
# study estimates
# --------------------------------------------------------------------------------------------


def _study_effects(rows: pd.DataFrame, data_type: str, measure: str, method: str, swap: bool):
    """``yi``, ``vi`` and the reason each study is not estimable ("" if it is).

    With ``swap`` (RevMan's "swap events and non-events") the non-events are analysed.
    """
    from bayesmtor import effects

    n = len(rows)
    reasons = np.full(n, "", dtype=object)
    col = lambda name: rows[name].to_numpy(dtype=float)  # noqa: E731
    with np.errstate(invalid="ignore", divide="ignore"):
        if data_type == "dichotomous":
            a, n1, c, n2 = col("events_trt"), col("n_trt"), col("events_ctl"), col("n_ctl")
            if swap:
                a, c = n1 - a, n2 - c
            missing = ~(np.isfinite(a) & np.isfinite(n1) & np.isfinite(c) & np.isfinite(n2))
            bad = ~missing & ((a < 0) | (c < 0) | (a > n1) | (c > n2) | (n1 <= 0) | (n2 <= 0))
            reasons[missing] = "counts missing"
            reasons[bad] = "counts impossible (events > total or total 0)"
            ok = ~missing & ~bad
            a, n1, c, n2 = (np.where(ok, x, 1.0) for x in (a, n1, c, n2))
            n1, n2 = np.where(ok, n1, 2.0), np.where(ok, n2, 2.0)
            if method == "PETO":
                yi, vi = _peto_study(a, n1, c, n2)
                dz = ((a == 0) & (c == 0)) | ((a == n1) & (c == n2))
            else:
                func = {"OR": effects.log_or, "RR": effects.log_rr}.get(measure)
                if func is None:
                    yi, vi = effects.risk_difference(a, n1, c, n2, add=0.5, to="only0")
                    dz = np.zeros(n, dtype=bool)
                else:
                    yi, vi = func(a, n1, c, n2, add=0.5, to="only0", drop00=True)
                    dz = ((a == 0) & (c == 0)) | ((a == n1) & (c == n2))
            for i in np.flatnonzero(ok & dz):
                reasons[i] = effects.double_zero_reason(a[i], c[i], measure)
        elif data_type == "continuous":
            args = [col(x) for x in ("mean_trt", "sd_trt", "n_trt", "mean_ctl", "sd_ctl", "n_ctl")]
            missing = ~np.all([np.isfinite(x) for x in args], axis=0)
            reasons[missing] = "means, SDs or sizes missing"
            if measure == "SMD":
                yi, vi = effects.standardized_mean_difference(*args, convention="revman")
            else:
                yi, vi = effects.mean_difference(*args)
        elif data_type == "generic":
            yi, se = col("yi"), col("sei")
            vi = se**2
            reasons[~(np.isfinite(yi) & np.isfinite(se))] = "estimate or SE missing"
        else:  # O-E and variance: yi = (O - E) / V, vi = 1 / V (Peto's one-step estimate)
            o_e, var = col("o_e"), col("variance")
            yi, vi = o_e / var, 1.0 / var
            reasons[~(np.isfinite(o_e) & np.isfinite(var))] = "O-E or variance missing"
    bad = (reasons == "") & ~(np.isfinite(yi) & np.isfinite(vi) & (vi > 0))
    reasons[bad] = "not estimable (zero or undefined variance, e.g. SD 0 or n < 2)"
    ok = reasons == ""
    return np.where(ok, yi, np.nan), np.where(ok, vi, np.nan), reasons


def _peto_study(a, n1, c, n2):
    """Peto's per-study log OR (O - E) / V and variance 1 / V."""
    big_n = n1 + n2
    e = (a + c) * n1 / big_n
    v = (a + c) * (big_n - a - c) * n1 * n2 / (big_n**2 * (big_n - 1.0))
    return (a - e) / v, 1.0 / v


# --------------------------------------------------------------------------------------------
# one analysis
# --------------------------------------------------------------------------------------------


def _pooled(rows, yi, vi, keep, spec, ci_prob) -> dict[str, Any]:
    """The recomputation of one analysis from its estimable studies."""
    from bayesmtor.frequentist import rma, rma_mh, rma_peto
    from bayesmtor.frequentist.revman import revman_random_effects

    sel = rows.loc[keep]
    method, measure = spec["method"], spec["measure"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotEstimableWarning)
        if spec["data_type"] == "dichotomous" and method in ("MH", "PETO"):
            counts = [
                sel[c].to_numpy(float) for c in ("events_trt", "n_trt", "events_ctl", "n_ctl")
            ]
            if spec["swap_events"]:  # the non-events are analysed
                counts[0], counts[2] = counts[1] - counts[0], counts[3] - counts[2]
            if method == "MH":
                fe = rma_mh(*counts, measure=measure, ci_prob=ci_prob, mh_correction="revman")
            else:
                fe = rma_peto(*counts, ci_prob=ci_prob)
        else:
            fe = rma(yi[keep], vi=vi[keep], method="FE", ci_prob=ci_prob,
                     measure=measure if measure in MEASURES else "generic")  # fmt: skip
    out = {
        "k": int(keep.sum()), "estimate": fe.estimate, "se": fe.se, "ci_low": fe.ci_low,
        "ci_high": fe.ci_high, "Q": fe.Q, "Q_df": fe.Q_df, "Q_pval": fe.Q_pval, "I2": fe.I2,
        "tau2": float("nan"), "z": fe.stat, "pval": fe.pval,
    }  # fmt: skip
    if spec["model"] == "random" and method != "PETO":
        q = fe.Q if math.isfinite(fe.Q) else 0.0
        re = revman_random_effects(yi[keep], vi[keep], q, ci_prob=ci_prob)
        out.update(estimate=re.estimate, se=re.se, ci_low=re.ci_low, ci_high=re.ci_high,
                   tau2=re.tau2, z=re.z, pval=re.pval)  # fmt: skip
    if out["k"] == 1:  # no heterogeneity with one study (RevMan: "Not applicable")
        out.update(Q=float("nan"), Q_df=float("nan"), Q_pval=float("nan"), I2=float("nan"))
    return out


def _ci_prob_of(spec: dict[str, Any]) -> float:
    level = spec.get("ci_level")
    return float(level) / 100.0 if level and math.isfinite(level) else 0.95


# --------------------------------------------------------------------------------------------
# comparison with RevMan's stored numbers
# --------------------------------------------------------------------------------------------


def _agree(key: str, ours: float, stored: float, ratio: bool, package: bool) -> bool:
    if not math.isfinite(ours):
        return False
    rtol = float(config.get("revman_rtol"))
    if key in P_KEYS:
        return abs(ours - stored) <= float(config.get("revman_p_atol"))
    if key == "z":
        ours, stored = abs(ours), abs(stored)
    if ratio and key in _RATIO_KEYS:
        ours, stored = math.exp(ours), math.exp(stored)
    atol = float(config.get("revman_package_atol")) if package else 1e-12
    return abs(ours - stored) <= rtol * abs(stored) + atol


def _stored_keys(row: dict[str, Any]) -> dict[str, float]:
    """RevMan's stored numbers of one analysis that are compared (tau2 only if random)."""
    stored = {k: row.get(f"revman_{k}") for k in COMPARED_KEYS}
    stored = {k: float(v) for k, v in stored.items() if v is not None and math.isfinite(float(v))}
    if row.get("model") == "fixed":
        stored.pop("tau2", None)
    return stored


def _compare(row: dict[str, Any], ratio: bool, package: bool) -> tuple[Any, str]:
    stored = _stored_keys(row)
    if isinstance(row.get("reason"), str):
        return (None if not stored else False), ",".join(sorted(stored))
    if not stored:
        return None, ""
    bad = [
        k
        for k, v in stored.items()
        if not _agree(k, float(row.get(k, math.nan)), v, ratio, package)
    ]
    return (not bad), ",".join(bad)


# --------------------------------------------------------------------------------------------
# the whole review
# --------------------------------------------------------------------------------------------


def revman_reanalysis(
    source: str | Path | RevManReview,
    *,
    tau_prior: Any = None,
    mu_prior: Any = None,
    ci_prob: float | None = None,
) -> RevManReanalysis:
    """Recompute every analysis of a RevMan review with RevMan's algorithms, and re-analyse it.

    Parameters
    ----------
    source : str, Path or RevManReview
        A ``.rm5`` file, a data-package ``.zip``, or what :func:`read_revman_review` returned.
    tau_prior, mu_prior : TauPrior, MuPrior or str, optional
        Priors of the Bayesian re-analysis (default ``config["tau_prior"]``,
        ``config["mu_prior"]``); strings in the prior grammar (``"half-normal:0.5"``).
    ci_prob : float, optional
        Probability of the credible intervals (default ``config["ci_prob"]``). The frequentist
        intervals use the level RevMan used for each outcome (``CI_TOTAL``, 95%).

    Returns
    -------
    RevManReanalysis
    """
    from bayesmtor.bayes.priors import MuPrior, TauPrior, default_prior_problem
    from bayesmtor.frequentist.revman import subgroup_differences

    md_problem = default_prior_problem(
        "MD", tau_prior, mu_prior, ("a tau prior (--tau-prior)", "a mu prior (--mu-prior)")
    )

    review = source if isinstance(source, RevManReview) else read_revman_review(source)
    tp, mp = TauPrior.coerce(tau_prior), MuPrior.coerce(mu_prior)
    bayes_ci = float(config.get("ci_prob", ci_prob))
    studies = review.studies.copy()
    studies["yi_used"] = np.nan
    studies["vi_used"] = np.nan
    studies["excluded_reason"] = None
    package = review.format != "rm5"
    rows_out: list[dict[str, Any]] = []
    bayes_inputs: list[tuple[int, np.ndarray, np.ndarray]] = []
    key_cols = ["comparison_no", "outcome_no"]
    for _, spec in review.analyses.iterrows():
        spec = spec.to_dict()
        in_outcome = (studies["comparison_no"] == spec["comparison_no"]) & (
            studies["outcome_no"] == spec["outcome_no"]
        )
        if spec["subgroup_no"] is not None and not pd.isna(spec["subgroup_no"]):
            in_outcome &= studies["subgroup_no"] == spec["subgroup_no"]
        idx = studies.index[in_outcome]
        rows = studies.loc[idx]
        yi, vi, reasons = _study_effects(
            rows, spec["data_type"], spec["measure"], spec["method"], bool(spec["swap_events"])
        )
        studies.loc[idx, "yi_used"] = yi
        studies.loc[idx, "vi_used"] = vi
        studies.loc[idx, "excluded_reason"] = [r or None for r in reasons]
        keep = reasons == ""
        row = {k: spec[k] for k in review.analyses.columns if not k.startswith("revman_")}
        row.update({k: spec[k] for k in review.analyses.columns if k.startswith("revman_")})
        if spec["method"] == "PETO":
            row["model"] = "fixed"
        row.update(dict.fromkeys(_OURS, float("nan")))
        row["k"] = int(keep.sum())
        row["reason"] = None
        row["bayes_note"] = None
        if not len(rows):
            row["reason"] = "no study in this analysis"
        elif not keep.any():
            row["reason"] = "no estimable study: " + "; ".join(sorted(set(reasons[reasons != ""])))
        else:
            try:
                row.update(
                    _pooled(rows.reset_index(drop=True), yi, vi, keep, row, _ci_prob_of(spec))
                )
            except EstimationError as exc:
                row["reason"] = str(exc)
            else:
                if spec["measure"] == "MD" and md_problem:
                    row["bayes_note"] = md_problem
                else:
                    bayes_inputs.append((len(rows_out), yi[keep], np.sqrt(vi[keep])))
        rows_out.append(row)
    table = pd.DataFrame(rows_out)
    for col in (
        "subgroup",
        "reason",
        "comparison",
        "outcome",
        "bayes_note",
    ):  # missing text is None, not NaN
        table[col] = table[col].astype(object).where(table[col].notna(), None)
    # the test for subgroup differences, on each overall row whose outcome has subgroups
    for i, row in table.iterrows():
        if row["subgroup_no"] is not None and not pd.isna(row["subgroup_no"]):
            continue
        if not row["has_subgroups"]:
            continue
        same = (table[key_cols] == row[key_cols]).all(axis=1) & table["subgroup_no"].notna()
        test = subgroup_differences(table.loc[same, "estimate"], table.loc[same, "se"])
        table.loc[i, ["Q_between", "Q_between_df", "Q_between_pval", "I2_between"]] = list(test)
    _add_bayes(table, bayes_inputs, tp, mp, bayes_ci)
    matches, mismatches, compared = [], [], []
    for row in table.to_dict(orient="records"):
        m, bad = _compare(row, bool(row["log_scale"]), package)
        matches.append(m)
        mismatches.append(bad or None)
        compared.append(",".join(_stored_keys(row)) or None)
    table["match"] = pd.array(matches, dtype="boolean")
    table["mismatch"] = mismatches
    table["compared"] = compared
    return RevManReanalysis(
        review=review, table=table, studies=studies, ci_prob=bayes_ci, tau_prior=tp, mu_prior=mp
    )


def _add_bayes(table, inputs, tau_prior, mu_prior, ci_prob) -> None:
    """The exact engine on every estimable analysis at once (one batch)."""
    for col in _BAYES:
        table[col] = np.nan
    if not inputs:
        return
    from bayesmtor.bayes.exact import exact_batch_groups

    yi = np.concatenate([y for _, y, _ in inputs])
    sei = np.concatenate([s for _, _, s in inputs])
    codes = np.concatenate([np.full(y.size, g) for g, (_, y, _) in enumerate(inputs)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotEstimableWarning)
        out = exact_batch_groups(
            yi, sei, codes, n_groups=len(inputs), tau_prior=tau_prior, mu_prior=mu_prior,
            ci_prob=ci_prob,
        )  # fmt: skip
    rows = [i for i, _, _ in inputs]
    for col in _BAYES:
        table.loc[rows, col] = out[col].to_numpy(float)
