"""Inputs at the extremes of float64: refused outside the safe range, correct inside it.

The catalogue ``tests/data/extreme/*.csv`` is described in ``tests/data/extreme/README.md``.
Every file goes through ``bayesmtor pool`` in-process (``cli.main``), frequentist and ``--bayes``
(exact engine); the expected outcome is either a refusal (exit status 2, one line naming the
line of the file, the column, the value and the limit) or numbers derived by hand in
:data:`CATALOGUE` (frequentist) or by an independent one-dimensional integration
(:func:`flat_prior_medians`, Bayesian with a flat prior on mu). The Python API refuses the same
values with the same message, and a subprocess run proves that the real entry point prints no
traceback. The MCMC engine is checked for a clean stderr and for the seed it reports.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, special, stats

from bayesmtor import cli, config, effects, frequentist
from bayesmtor.bayes import exact
from bayesmtor.errors import DegenerateIntervalWarning, InputError
from bayesmtor.validation import check_safe_range, safe_range

EXTREME_DIR = Path(__file__).resolve().parent / "data" / "extreme"

#: z of a 95% CI, independently of the package (published CIs are 95%).
Z95 = stats.norm.ppf(0.975)
#: Median of the default tau prior, half-normal(0.5): the posterior median of tau when one
#: study (or studies with equal huge variances) carries no information on tau.
HN_MEDIAN = 0.5 * stats.norm.ppf(0.75)
#: Numbers exact up to the rounding of the data (a few ulp).
ULP = 1e-12
#: Exact engine: its quadrature tolerance is 1e-6 on CDFs (config "exact_tol"); medians are
#: then within ~1e-6 times the posterior scale. 1e-5 relative (or absolute near 0) is safe.
EXACT_TOL = 1e-5


@dataclass(frozen=True)
class Refused:
    """Refusal: exit 2, a message naming ``line`` and ``column`` and holding ``fragments``."""

    measure: str
    line: int
    column: str
    fragments: tuple[str, ...]


@dataclass(frozen=True)
class Pooled:
    """Accepted: frequentist numbers (keys of ``--json``) and the Bayesian flat-prior medians."""

    measure: str
    method: str
    expected: dict[str, float]
    hksj: bool = False
    abs_tol: dict[str, float] = field(default_factory=dict)
    warning: str | None = None  # fragment of a 'bayesmtor: warning:' line


def _ln(x: float) -> float:
    return math.log(x)


CATALOGUE: dict[str, Refused | Pooled] = {
    # --- outside the safe range: refused by both sides --------------------------------------
    "se_1e-150.csv": Refused("generic", 2, "sei", ("sei = 1e-150", "safe minimum 1e-50")),
    "yi_1e308.csv": Refused("generic", 2, "yi", ("yi = 1e+308", "|yi| <= 1e+50")),
    "se_1e200.csv": Refused("generic", 4, "sei", ("sei = 1e+200", "safe maximum 1e+50")),
    "yi_above_limit.csv": Refused("generic", 3, "yi", ("yi = -1.1e+50", "|yi| <= 1e+50")),
    "se_below_limit.csv": Refused("generic", 3, "sei", ("sei = 9.9e-51", "safe minimum 1e-50")),
    "ci_zero_width.csv": Refused(
        "HR", 2, "ci_low", ("(ln ci_high - ln ci_low) / 3.919928 = 0", "not positive", "1e-50")
    ),
    # --- inside the range: correct numbers ---------------------------------------------------
    # HR 1e-300 with CI [5e-301, 2e-300]: yi = -300 ln 10, sei = ln 4 / (2 z).
    "hr_1e-300.csv": Pooled(
        "HR", "FE", {"k": 1, "estimate": -300 * _ln(10.0), "se": _ln(4.0) / (2 * Z95)}
    ),
    # CI [1, 1.0000000000001]: sei = ln(1.0000000000001) / (2 z) = 2.5e-14, accepted.
    "ci_width_1e-13.csv": Pooled(
        "HR", "FE", {"k": 1, "estimate": 0.0, "se": _ln(1.0000000000001) / (2 * Z95)}
    ),
    # corners of the range, derived in tests/test_frequentist_scale.py
    "range_edges.csv": Pooled(
        "generic",
        "DL",
        {"k": 2, "estimate": 0.0, "se": 1e50, "tau2": 1e100, "Q": 2.0, "I2": 50.0, "H2": 2.0},
    ),
    # weights 1e100, 1, 1e-100 (tests/test_frequentist_scale.py): FE mu ~ 1e-100, Q ~ 1
    "se_from_min_to_max.csv": Pooled(
        "generic",
        "DL",
        {"k": 3, "estimate": 1e-100, "se": 1e-50, "Q": 1.0, "I2": 0.0, "tau2": 0.0, "H2_tau": 1.0},
        abs_tol={"estimate": 1e-15, "tau2": 1e-15, "I2": 1e-12},
    ),
    # three studies at yi = 1e50, sei = 1: mu = 1e50, SE 1/sqrt(3), Q = 0, tau2 = 0
    "yi_at_limit.csv": Pooled(
        "generic",
        "REML",
        {"k": 3, "estimate": 1e50, "se": 1 / math.sqrt(3), "Q": 0.0, "tau2": 0.0, "I2": 0.0},
    ),
    # identical studies with HKSJ: scale factor 0 (metafor's rule), zero-width CI, p = 0
    "identical_studies.csv": Pooled(
        "generic",
        "REML",
        {"k": 3, "estimate": 0.1, "se": 0.0, "ci_low": 0.1, "ci_high": 0.1, "pval": 0.0, "Q": 0.0},
        hksj=True,
        warning="HKSJ scale factor is 0",
    ),
    # equal SEs 0.2: mu = mean = 0.175, Q = sum (y - 0.175)^2 / 0.04 = 0.2675 / 0.04; with equal
    # variances DL = sample variance - v = 0.2675 / 3 - 0.04; SE = sqrt((0.04 + tau2) / 4)
    "equal_se.csv": Pooled(
        "generic",
        "DL",
        {
            "k": 4,
            "estimate": 0.175,
            "Q": 0.2675 / 0.04,
            "I2": 100 * (0.2675 / 0.04 - 3) / (0.2675 / 0.04),
            "tau2": 0.2675 / 3 - 0.04,
            "se": math.sqrt((0.04 + 0.2675 / 3 - 0.04) / 4),
        },
    ),
    # 2^53 participants per arm (the largest count accepted): RR = (1/N) / ((N-1)/N), so
    # yi = -ln(N - 1); vi = 1 - 1/N + 1/(N-1) - 1/N ~ 1: inside the range
    "counts_2e53.csv": Pooled("RR", "FE", {"k": 1, "estimate": -_ln(2.0**53 - 1), "se": 1.0}),
}
REFUSED = sorted(n for n, c in CATALOGUE.items() if isinstance(c, Refused))
POOLED = sorted(n for n, c in CATALOGUE.items() if isinstance(c, Pooled))


def flat_prior_medians(y, s, scale: float = 0.5) -> tuple[float, float]:
    """Posterior medians of mu and tau for ``y_i ~ N(mu, s_i^2 + tau^2)``, flat mu prior,
    ``tau ~ half-normal(scale)``, by one-dimensional quadrature (scipy), independent of the
    package. With mu integrated out, ``p(tau | y)`` is proportional to
    ``prior(tau) prod(w)^(1/2) (sum w)^(-1/2) exp(-Q(tau) / 2)`` with ``w = 1 / (s^2 + tau^2)``
    and ``Q`` the weighted residual sum of squares around ``mu_hat(tau)``; given tau, mu is
    ``N(mu_hat, 1 / sum w)``. Estimates are centred at their midrange first (exactly).
    """
    y = np.asarray(y, float)
    v = np.asarray(s, float) ** 2
    c = 0.5 * y.min() + 0.5 * y.max()
    yc = y - c

    def parts(t):
        w = 1.0 / (v + t * t)
        sw = w.sum()
        m = (w * yc).sum() / sw
        logp = stats.halfnorm.logpdf(t, scale=scale) + 0.5 * (np.log(w).sum() - np.log(sw))
        return logp - 0.5 * (w * (yc - m) ** 2).sum(), m, sw

    ref = parts(scale)[0]

    def dens(t):
        return math.exp(parts(t)[0] - ref)

    opts = {"epsabs": 0, "epsrel": 1e-11, "limit": 400}
    total = integrate.quad(dens, 0, np.inf, **opts)[0]
    tau_med = optimize.brentq(
        lambda x: integrate.quad(dens, 0, x, **opts)[0] / total - 0.5, 1e-12, 20, xtol=1e-13
    )

    def mu_cdf(x):
        def f(t):
            _, m, sw = parts(t)
            return dens(t) * special.ndtr((x - m) * math.sqrt(sw))

        return integrate.quad(f, 0, np.inf, **opts)[0] / total

    spread = 10 * math.sqrt(1 / parts(1.0)[2] + 1)
    mu_med = optimize.brentq(
        lambda x: mu_cdf(x) - 0.5, yc.min() - spread, yc.max() + spread, xtol=1e-14
    )
    return c + mu_med, tau_med


def _run(capsys, argv) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _argv(name: str, case: Refused | Pooled, *, bayes: bool) -> list[str]:
    argv = ["pool", str(EXTREME_DIR / name), "--measure", case.measure, "--json"]
    if bayes:
        return [*argv, "--bayes", "--mu-prior", "flat"]
    argv += ["--method", case.method] if isinstance(case, Pooled) else []
    return [*argv, "--hksj"] if isinstance(case, Pooled) and case.hksj else argv


def _yi_sei(name: str) -> tuple[np.ndarray, np.ndarray]:
    """yi and sei of a catalogue file, computed here from its columns (not by the package)."""
    frame = pd.read_csv(EXTREME_DIR / name, dtype={"study": str})
    if "yi" in frame:
        return frame["yi"].to_numpy(float), frame["sei"].to_numpy(float)
    if "estimate" in frame:
        lo, hi = frame["ci_low"].to_numpy(float), frame["ci_high"].to_numpy(float)
        return np.log(frame["estimate"].to_numpy(float)), (np.log(hi) - np.log(lo)) / (2 * Z95)
    a, n1 = frame["events_trt"].to_numpy(float), frame["n_trt"].to_numpy(float)
    c, n2 = frame["events_ctl"].to_numpy(float), frame["n_ctl"].to_numpy(float)
    return np.log(a / n1) - np.log(c / n2), np.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n2)


def test_catalogue_is_documented_and_large_enough():
    readme = (EXTREME_DIR / "README.md").read_text(encoding="utf-8")
    files = sorted(p.name for p in EXTREME_DIR.glob("*.csv"))
    assert files == sorted(CATALOGUE)
    assert len(files) >= 8
    for name in files:
        assert f"`{name}`" in readme, name


def test_safe_range_is_registered_with_the_agreed_limits():
    assert safe_range() == (1e50, 1e-50, 1e50)
    assert (config.defaults["yi_abs_max"], config.defaults["sei_min"]) == (1e50, 1e-50)
    assert config.defaults["sei_max"] == 1e50


# --------------------------------------------------------------------------------------------
# refusals
# --------------------------------------------------------------------------------------------


def _assert_refusal(code: int, out: str, err: str, name: str, case: Refused) -> None:
    """Exit 2, nothing on stdout, exactly one line on stderr naming what is expected."""
    assert (code, out) == (2, ""), err
    (message,) = [line for line in err.splitlines() if line.strip()]
    assert message.startswith(f"bayesmtor: error: {name}"), message
    patterns = [rf"\bline {case.line}\b", re.escape(f"column '{case.column}'")]
    for pattern in patterns + [re.escape(f) for f in case.fragments]:
        assert re.search(pattern, message), (pattern, message)


@pytest.mark.parametrize("name", REFUSED)
@pytest.mark.parametrize("bayes", [False, True], ids=["frequentist", "bayes"])
def test_cli_refuses_outside_the_safe_range(name, bayes, capsys):
    case = CATALOGUE[name]
    assert isinstance(case, Refused)
    code, out, err = _run(capsys, _argv(name, case, bayes=bayes))
    _assert_refusal(code, out, err, name, case)


@pytest.mark.parametrize("name", REFUSED)
def test_cli_refuses_with_by_groups(name, tmp_path, capsys):
    """The vectorised path (--by) names the same line and column."""
    case = CATALOGUE[name]
    text = (EXTREME_DIR / name).read_text(encoding="utf-8").splitlines()
    rows = [text[0] + ",group"] + [line + ",g" for line in text[1:]]
    path = tmp_path / name
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    argv = ["pool", str(path), "--measure", case.measure, "--by", "group", "--json"]
    for extra in ([], ["--bayes"]):
        code, out, err = _run(capsys, argv + extra)
        _assert_refusal(code, out, err, name, case)


def _api_calls(y: np.ndarray, s: np.ndarray):
    frame = pd.DataFrame({"study": [f"s{i}" for i in range(y.size)], "yi": y, "sei": s})
    with np.errstate(over="ignore", under="ignore"):
        vi = s**2  # 1e200 squared is inf: the variance route must refuse that too
    return {
        "rma(sei)": lambda: frequentist.rma(y, sei=s, method="REML"),
        "rma(vi)": lambda: frequentist.rma(y, vi=vi, method="DL"),
        "meta_analysis": lambda: frequentist.meta_analysis(frame, method="PM"),
        "pool_groups": lambda: frequentist.pool_groups(frame, by=None, measure="generic"),
        "escalc": lambda: effects.escalc(frame),
        "exact_posterior": lambda: exact.exact_posterior(y, s),
        "exact_batch": lambda: exact.exact_batch(np.vstack([y, y]), np.vstack([s, s])),
    }


@pytest.mark.parametrize(
    ("y", "s", "pos", "column", "fragment"),
    [
        ([0.1, 0.3, -0.2], [1e-150, 0.2, 0.3], 0, "sei", "sei = 1e-150"),
        ([0.1, 1e308, -0.2], [0.1, 0.2, 0.3], 1, "yi", "yi = 1e+308"),
        ([0.1, 0.3, -0.2], [0.1, 0.2, 1e200], 2, "sei", "sei = 1e+200"),
        ([0.1, -np.inf, -0.2], [0.1, 0.2, 0.3], 1, "yi", None),  # some refuse it as not finite
    ],
)
def test_api_refuses_outside_the_safe_range(y, s, pos, column, fragment):
    """Every entry point refuses the value, naming the 1-based position and the column."""
    y, s = np.asarray(y, float), np.asarray(s, float)
    for what, call in _api_calls(y, s).items():
        if what == "escalc" and not np.isfinite(y).all():
            continue  # a DataFrame with inf is refused earlier, by read_meta_data (not finite)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # refused before any arithmetic
            with pytest.raises(InputError) as info:
                call()
        exc = info.value
        message = str(exc)
        if column == "sei" and what == "rma(vi)":
            assert exc.column == "vi" and "sqrt(vi) =" in message, (what, message)
        elif what == "exact_batch":
            assert exc.column == column and f"(meta-analysis 1, study {pos + 1} of it" in message
        else:
            assert exc.column == column, (what, message)
            assert fragment is None or fragment in message, (what, message)
        if what != "exact_batch":
            assert exc.row == pos + 1, (what, exc.row)


@pytest.mark.mcmc
def test_mcmc_models_refuse_before_sampling():
    from bayesmtor.bayes import pymc_models

    for call in (
        lambda: pymc_models.fit_normal_normal([0.1, 0.2], [0.1, 1e200]),
        lambda: pymc_models.fit_multilevel([0.1, 1e308], [0.1, 0.2], ["a", "b"]),
    ):
        with pytest.raises(InputError, match="safe"):
            call()
    # counts: capped at 2^53 as for files, so their log ratios stay in the range (1e299 events
    # of 1e300 would give sei ~ 3e-150)
    with pytest.raises(InputError, match="above 2\\^53") as info:
        pymc_models.fit_binomial_normal([5, 1e299], [50, 1e300], [5, 5], [50, 50])
    assert (info.value.row, info.value.column) == (2, "events_trt")


def test_check_safe_range_names_lines_and_skips_missing():
    with pytest.raises(InputError) as info:
        check_safe_range([0.0, 0.0], [1.0, 1e51], lines=[7, 9], studies=["a", "b"], source="f")
    assert (info.value.line, info.value.row, info.value.study) == (9, 2, "b")
    assert str(info.value).startswith("f, line 9, study 'b', column 'sei': sei = 1e+51")
    check_safe_range([np.nan, 1e50, -1e50], [1.0, np.nan, 1e-50])  # missing values pass
    check_safe_range([1e60], [0.0], mask=[False])  # masked (padding) cells pass


# --------------------------------------------------------------------------------------------
# inside the range: correct numbers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", POOLED)
def test_cli_frequentist_numbers_inside_the_range(name, capsys):
    case = CATALOGUE[name]
    assert isinstance(case, Pooled)
    code, out, err = _run(capsys, _argv(name, case, bayes=False))
    assert code == 0, err
    got = json.loads(out)
    for key, want in case.expected.items():
        tol = case.abs_tol.get(key, 0.0)
        assert got[key] == pytest.approx(want, rel=ULP, abs=tol), (key, got[key], want)
    for key, val in got.items():
        if isinstance(val, float):
            assert math.isfinite(val) and (val != 0.0 or math.copysign(1.0, val) == 1.0), key
    warning_lines = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith("bayesmtor: warning: ") for line in warning_lines), err
    if case.warning:
        assert any(case.warning in line for line in warning_lines), err
    assert "not estimable (no events" not in err


@pytest.mark.parametrize("name", POOLED)
def test_cli_bayes_exact_medians_inside_the_range(name, capsys):
    """Exact engine, flat mu prior: medians against :func:`flat_prior_medians`."""
    case = CATALOGUE[name]
    y, s = _yi_sei(name)
    mu_med, tau_med = flat_prior_medians(y, s)
    code, out, err = _run(capsys, _argv(name, case, bayes=True))
    assert code == 0, err
    assert "Traceback" not in err
    got = json.loads(out)
    assert got["k"] == y.size
    scale = float(np.sqrt(np.min(s) ** 2 + tau_med**2))  # posterior scale of mu, roughly
    assert got["mu_median"] == pytest.approx(mu_med, rel=EXACT_TOL, abs=EXACT_TOL * scale)
    assert got["tau_median"] == pytest.approx(tau_med, rel=EXACT_TOL, abs=1e-9)


def test_independent_medians_for_one_study_are_the_prior_median():
    """Sanity check of the reference: one study says nothing about tau (flat mu prior)."""
    mu, tau = flat_prior_medians([-0.7], [0.3])
    assert mu == pytest.approx(-0.7, abs=1e-9)
    assert tau == pytest.approx(HN_MEDIAN, rel=1e-9)


def test_api_emits_no_runtime_warning_inside_the_range():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        for name in POOLED:
            y, s = _yi_sei(name)
            for method in ("FE", "DL", "REML", "PM", "ML", "SJ", "HE"):
                for test in ("z", "knha") if method != "FE" else ("z",):
                    res = frequentist.rma(y, s, method=method, test=test)
                    assert math.isfinite(res.estimate), (name, method)
            effects.escalc(pd.read_csv(EXTREME_DIR / name, dtype={"study": str}))


def test_hksj_zero_width_is_reported_as_metafor_does(capsys):
    """Identical studies: metafor's rma.uni sets the HKSJ factor to 0 when RSS <= eps."""
    with pytest.warns(DegenerateIntervalWarning, match="zero width") as record:
        res = frequentist.rma([0.1, 0.1, 0.1], [0.2, 0.2, 0.2], method="REML", test="knha")
    assert len(record) == 1
    assert (res.se, res.ci_low, res.ci_high, res.pval) == (0.0, 0.1, 0.1, 0.0)
    # without HKSJ the z interval is the usual one: SE 0.2 / sqrt(3)
    z = frequentist.rma([0.1, 0.1, 0.1], [0.2, 0.2, 0.2], method="REML")
    assert z.se == pytest.approx(0.2 / math.sqrt(3), rel=ULP)


# --------------------------------------------------------------------------------------------
# the real entry point, and the MCMC engine
# --------------------------------------------------------------------------------------------


def test_real_entry_point_refuses_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "bayesmtor", "pool", str(EXTREME_DIR / "se_1e200.csv"),
         "--measure", "generic", "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "line 4" in proc.stderr and "1e+200" in proc.stderr


#: The CLI has no --draws option: a subprocess runs ``cli.main`` with smaller MCMC settings
#: registered in config (2 chains x 300 draws, gate at ESS 100), which keeps it to seconds.
_SMALL_MCMC = (
    "import sys; from bayesmtor import config, cli; "
    "config.defaults.update(chains=2, draws=300, tune=300, ess_min=100); "
    "sys.exit(cli.main(sys.argv[1:]))"
)


def _mcmc_subprocess(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = ["pool", str(path), "--measure", "generic", "--bayes", "--engine", "mcmc", "--json"]
    return subprocess.run(
        [sys.executable, "-c", _SMALL_MCMC, *argv, *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
@pytest.mark.mcmc
@pytest.mark.parametrize("name", ["identical_studies.csv", "equal_se.csv"])
def test_mcmc_cli_stderr_is_clean(name):
    """Equal SEs once made PyTensor log a rewrite traceback; stderr holds only our lines."""
    proc = _mcmc_subprocess(EXTREME_DIR / name, "--seed", "11")
    assert proc.returncode == 0, proc.stderr
    for banned in ("Traceback", "Rewrite", "BUG IN FGRAPH", "ERROR"):
        assert banned not in proc.stderr, proc.stderr
    others = [
        line
        for line in proc.stderr.splitlines()
        if line.strip() and not line.startswith("bayesmtor: warning: ")
    ]
    assert not [line for line in others if "Warning:" in line or "warning" in line.lower()]
    out = json.loads(proc.stdout)
    assert out["seed"] == 11 and out["attempt_seeds"][0] == 11
    assert out["attempt_seeds"] == list(range(11, 11 + len(out["attempt_seeds"])))
    # the fit is right: the posterior median of mu is the common estimate (identical studies)
    # or the mean 0.175 (equal SEs), by symmetry, within a few Monte Carlo errors
    centre = 0.1 if name == "identical_studies.csv" else 0.175
    assert out["mu_median"] == pytest.approx(centre, abs=0.05)


@pytest.mark.slow
@pytest.mark.mcmc
def test_mcmc_json_seed_is_the_default_without_seed():
    proc = _mcmc_subprocess(EXTREME_DIR / "equal_se.csv")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["seed"] == config.defaults["random_seed"]
    assert out["attempt_seeds"][0] == config.defaults["random_seed"]


@pytest.mark.slow
@pytest.mark.mcmc
def test_fit_reports_the_given_seed_and_the_seeds_of_retries(monkeypatch):
    """A gate that cannot pass (ESS >= 1e9) forces two retries: seeds 5, 6, 7 are used."""
    from bayesmtor.bayes import pymc_models
    from bayesmtor.errors import ConvergenceWarning

    monkeypatch.setitem(config.defaults, "ess_min", 1e9)
    with pytest.warns(ConvergenceWarning):
        res = pymc_models.fit_normal_normal(
            [0.1, 0.3, -0.2], [0.2, 0.2, 0.2], draws=50, tune=50, chains=2, random_seed=5
        )
    d = res.diagnostics
    assert d["random_seed"] == 5
    assert d["attempt_seeds"] == [5, 6, 7]
    assert [a["random_seed"] for a in d["attempts"]] == [5, 6, 7]
