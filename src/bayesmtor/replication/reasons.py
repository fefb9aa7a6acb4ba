"""Why a published result cannot be reproduced, or why ours differs from it, in words."""

from __future__ import annotations

import math

import pandas as pd
from scipy import stats

from bayesmtor import config
from bayesmtor.datasets import BOLERO2, Dataset, comparative_dataset
from bayesmtor.replication.pooling import _count_frame, _mh, _Pool
from bayesmtor.replication.results import _fmt_num
from bayesmtor.vocabulary import z_quantile

# Number of trials a pooled result rests on, where the paper states it and the seed prints
# fewer: "two other studies that enrolled 2104 women examined ... temsirolimus" (Abstract).
_STATED_STUDIES: dict[str, int] = {"temsirolimus_endocrine": 2}

_TABLE7_REASON = (
    "Table 7 pools grade 3-4 adverse events of everolimus plus exemestane, but Tables 1-4 print "
    "no grade 3-4 events for any everolimus-endocrine report (Table 2 gives any-grade events; "
    "the grade 3-4 rows of Tables 3-4 belong to neoadjuvant everolimus and temsirolimus), so "
    "not one study row of this pool is printed"
)
_FIXED_REASONS: dict[str, str] = {
    "fig2_legend_rr_p075": (
        "referent unclear: the Figure 2 legend's 'RR (p = 0.75)' matches no everolimus-endocrine "
        "analysis (printed heterogeneity p: PFS 0.71, CBR 0.8, ORR 0.009, ORR without [21] "
        "0.699); 0.75 equals the printed p of the temsirolimus CBR pool (Figure 3C), whose "
        "inputs are not printed (Wolff 2013 CBR)"
    ),
    "table6_hyperglycemia": (
        "Table 2 prints no hyperglycemia rate for any report or arm, so no 2x2 table exists"
    ),
    "table6_anorexia": (
        "Table 2 prints 'Decreased appetite' only for control arms (Noguchi 2013 Asian 8% and "
        "non-Asian 14%, Bachelot 2012 30%) and never for an everolimus arm, so no 2x2 table "
        "exists"
    ),
}


def _other_rows(ds: Dataset) -> str:
    """Reports of the comparison group that print the outcome for no arm / one arm only."""
    ex = ds.excluded
    ex = ex[~ex["reason"].str.contains("no comparison group|single-arm cohort", regex=True)]
    return "; ".join(f"{r.study} ({r.reason})" for r in ex.itertuples(index=False))


def _not_reproducible_reason(pub: pd.Series, ds: Dataset | None, ci_prob: float) -> str | None:
    rid = str(pub["result_id"])
    if rid in _FIXED_REASONS:
        return _FIXED_REASONS[rid]
    outcome, comparison = str(pub["outcome"]), str(pub["comparison"])
    if outcome.startswith("ae_grade34:"):
        return _TABLE7_REASON
    if comparison in _STATED_STUDIES:
        stated = _STATED_STUDIES[comparison]
        parts = []
        for out in ("orr", "cbr") if outcome in ("", "nan") else (outcome,):
            d = comparative_dataset(out, comparison, unit="report")
            if d.k >= stated:
                continue
            txt = f"{out.upper()}: printed for {', '.join(d.data['study'])} only"
            if d.k >= 1:
                p = _mh(_count_frame(d, "round_half_up"), "revman", ci_prob)
                txt += (
                    f" (alone: RR {_fmt_num(p.estimate)} [{_fmt_num(p.ci_low)}, "
                    f"{_fmt_num(p.ci_high)}])"
                )
            missing = _other_rows(d)
            if missing:
                txt += f"; missing: {missing}"
            parts.append(txt)
        if parts:
            return (
                f"the paper pools {stated} temsirolimus trials (Abstract: 'two other studies "
                "that enrolled 2104 women'), but the seed prints the inputs of fewer: "
                + " | ".join(parts)
            )
    if outcome in ("", "nan") or comparison in ("", "nan"):
        return "the printed statement names no single outcome and comparison"
    if ds is not None and ds.k == 0:
        return "no report prints this outcome for both arms: " + _other_rows(ds)
    return None


def _cause(pub: pd.Series, ds: Dataset, primary: _Pool, interps: pd.DataFrame) -> str:
    """One or two sentences on why a computed result differs (written per result type)."""
    rid = str(pub["result_id"])
    alts = interps[~interps["primary"]]
    if ds.measure == "HR":
        p_plus = float(stats.chi2.sf(primary.Q, primary.Q_df + 1))
        n_bolero = int((ds.data["trial_id"] == BOLERO2).sum())
        z95 = z_quantile(config.get("published_ci_prob"))
        se_pub = (math.log(float(pub["ci_high"])) - math.log(float(pub["ci_low"]))) / (2 * z95)
        return (
            f"estimate and CI are within one unit, but Q = {primary.Q:.2f} on "
            f"{primary.Q_df:g} df from the {primary.k} report rows that print a CI gives "
            f"p = {primary.het_p:.3f}; on {primary.Q_df + 1:g} df it gives p = {p_plus:.3f}, "
            "and the printed interval is narrower than ours (SE of the pooled log HR "
            f"{se_pub:.3f} vs {primary.se:.3f}): both point to more information than these rows "
            "carry, consistent with "
            "Novartis 2012 (HR 0.45, printed without a CI) having entered with a CI the seed "
            "does not print. Either way the interval rests on counting BOLERO-2 "
            f"{n_bolero} times (k = {primary.k} report rows, one trial); see unit_comparison()"
        )
    if rid == "fig2c_orr":
        drop = alts[alts["rows"] == "drop_outlier"].copy()
        pub_est = [float(pub[c]) for c in ("estimate", "ci_low", "ci_high")]
        drop["_d"] = [
            max(abs(math.log(x) - math.log(y)) for x, y in zip(r, pub_est, strict=True))
            for r in drop[["estimate", "ci_low", "ci_high"]].itertuples(index=False, name=None)
        ]
        alt = drop.sort_values("_d").iloc[0]
        rev = drop[(drop["zero_cell"] == "revman") & (drop["rounding"] == "round_half_up")].iloc[0]
        dropped = str(alt["dropped"])
        return (
            f"the printed heterogeneity p = 0.009 is reproduced on all {primary.k} report rows "
            f"(p = {primary.het_p:.4f}), but the printed RR 9.18 [5.21, 16.15] is not: it lies "
            f"close to the pool without study [21] = {dropped} (RevMan zero-cell rule: "
            f"{_fmt_num(rev['estimate'])} [{_fmt_num(rev['ci_low'])}, {_fmt_num(rev['ci_high'])}]"
            f"; closest reading {alt['interpretation']}: {_fmt_num(alt['estimate'])} "
            f"[{_fmt_num(alt['ci_low'])}, {_fmt_num(alt['ci_high'])}]), so Figure 2C appears to "
            "print the estimate of the five BOLERO-2 rows with the heterogeneity of all six; no "
            "reading reproduces 9.18 [5.21, 16.15] within one unit (the paper's event counts are "
            "not printed)"
        )
    if rid == "fig2d_orr_without_ref21":
        dropped = str(interps.iloc[0]["dropped"])
        rng = interps["het_p"].astype(float)
        full = _count_frame(ds, "round_half_up")
        pub_ci = config.get("published_ci_prob")
        loo = [_mh(full.drop(full.index[i]), "revman", pub_ci).het_p for i in range(len(full))]
        het_alpha = config.get("het_alpha")
        n_ok = sum(p >= het_alpha for p in loo)
        which = "the only row" if n_ok == 1 else f"one of {n_ok} rows"
        return (
            f"study [21] identified from the data as {dropped}: {which} whose removal makes the "
            f"heterogeneity non-significant (p >= {het_alpha:g}, the paper's threshold); across "
            f"the zero-cell and rounding readings p ranges {rng.min():.3f}-{rng.max():.3f}, "
            "none within 0.001 of 0.699; the paper's p came from STATA with event counts that "
            "are not printed (ours are derived from printed percentages)"
        )
    missing = _other_rows(ds)
    txt = (
        "counts derived from Table 2 percentages x Table 1 arm sizes for the "
        f"{primary.k} report rows that print the event in both arms"
    )
    if missing:
        txt += f"; not printed for both arms: {missing}"
    return txt + (
        "; the paper's own counts are not printed and evidently differ from these (Table 2 lists "
        "only the most common toxic effects per arm, and its percentages may rest on other "
        "denominators, e.g. safety populations, than the Table 1 arm sizes)"
    )
