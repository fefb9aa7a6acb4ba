"""Bayes factors, model averaging and the improper reference priors of the exact engine.

References: R bayesmeta 3.4 (tests/reference/bayes_factor_reference.R and .json). bayesmeta's
tau posterior and marginal likelihoods come from adaptive numerical integration (exact to
~1e-10), so tau quantities, Bayes factors and model probabilities are compared at 1e-5
relative. Its mu and predictive summaries carry the error of its DIRECT approximation, so the R
script computes those references exactly from bayesmeta's tau posterior and conditional
moments; they are compared at 2e-3 posterior SD.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bayesmtor.bayes.exact import exact_batch, exact_batch_groups, exact_posterior
from bayesmtor.bayes.model_averaging import BMA_MODELS, check_model_priors, model_average
from bayesmtor.bayes.priors import MuPrior, TauPrior, check_proper_posterior
from bayesmtor.errors import InputError, PriorError

REF = json.loads((Path(__file__).parent / "reference" / "bayes_factor_reference.json").read_text())[
    "cases"
]
# bayesmeta integrates the tau posterior and the marginal likelihoods adaptively to ~1e-10
# relative; 1e-5 leaves room for its integrate() tolerances on heavy-tailed priors.
REL = 1e-5
# mu / theta_new references are exact (fine Gauss-Legendre rule in R); 2e-3 posterior SD.
SD_TOL = 2e-3
TIGHT = 1e-10


def _post(case: dict):
    return exact_posterior(
        case["y"], case["sei"], tau_prior=case["tau_prior"], mu_prior=case["mu_prior"], tol=TIGHT
    )


@pytest.fixture(scope="module", params=sorted(REF), ids=str)
def case(request) -> tuple[dict, object]:
    c = REF[request.param]
    return c, _post(c)


def test_tau_quantities_match_bayesmeta(case) -> None:
    c, p = case
    med, lo, hi = p.tau_quantile([0.5, 0.025, 0.975])
    for ours, ref in ((med, c["tau_median"]), (lo, c["tau_low"]), (hi, c["tau_high"])):
        assert ours == pytest.approx(ref, rel=REL)
    assert p.tau_mean() == pytest.approx(c["tau_mean"], rel=REL)
    assert p.tau_sd() == pytest.approx(c["tau_sd"], rel=REL)


def test_mu_and_prediction_match_exact_references(case) -> None:
    c, p = case
    mu = np.asarray(p.mu_quantile([0.5, 0.025, 0.975]))
    np.testing.assert_allclose(
        mu, [c["mu_median"], c["mu_low"], c["mu_high"]], rtol=0, atol=SD_TOL * c["mu_sd"]
    )
    new = np.asarray(p.theta_new_quantile([0.5, 0.025, 0.975]))
    np.testing.assert_allclose(
        new, [c["pred_median"], c["pred_low"], c["pred_high"]], rtol=0,
        atol=SD_TOL * c["pred_sd"],
    )  # fmt: skip


def test_bayes_factors_match_bayesmeta(case) -> None:
    c, p = case
    bf = p.bayes_factors()
    if c["bf_tau0"] is None:  # an improper prior: no marginal likelihood in bayesmeta either
        assert all(v is None for v in bf.values())
        assert p.log_marginal_likelihood is None
        return
    assert bf["bf_tau0"] == pytest.approx(c["bf_tau0"], rel=REL)
    assert bf["bf_mu0"] == pytest.approx(c["bf_mu0"], rel=REL)
    assert bf["log_marginal_likelihood"] == pytest.approx(c["log_marginal_likelihood"], rel=REL)


def test_crins_published_bayes_factors() -> None:
    """The figures bayesmeta prints for Crins et al. (2014), mu ~ N(0, 4^2), tau ~ HN(0.5)."""
    bf = _post(REF["crins6_hn"]).bayes_factors()
    assert bf["bf_tau0"] == pytest.approx(0.8831916, abs=5e-8)
    assert bf["bf_mu0"] == pytest.approx(0.0037708, abs=5e-8)


@pytest.mark.parametrize("key", ["bma", "bma_unequal"])
def test_model_averaging_matches_bayesmeta(key) -> None:
    for name, c in REF.items():
        if key not in c:
            continue
        ref = c[key]
        res = model_average(_post(c), prior_probs=ref["prior_prob"])
        assert list(res.models["name"]) == list(BMA_MODELS)
        np.testing.assert_allclose(
            res.models["prior_prob"], [ref["prior_prob"][m] for m in BMA_MODELS], rtol=1e-15
        )
        np.testing.assert_allclose(
            res.models["posterior_prob"], [ref["posterior_prob"][m] for m in BMA_MODELS],
            rtol=REL, err_msg=name,
        )  # fmt: skip
        np.testing.assert_allclose(
            res.models["log_marginal_likelihood"],
            [ref["log_marginal_likelihood"][m] for m in BMA_MODELS], rtol=REL, err_msg=name,
        )  # fmt: skip
        assert res.bf_inclusion_effect == pytest.approx(ref["bf_inclusion_effect"], rel=REL)
        assert res.bf_inclusion_heterogeneity == pytest.approx(
            ref["bf_inclusion_heterogeneity"], rel=REL
        )
        for q in ("mu_median", "mu_low", "mu_high"):
            if ref[q] == 0:  # the point mass of the null models: exactly 0
                assert getattr(res, q) == 0.0, (name, q)
            else:
                assert abs(getattr(res, q) - ref[q]) <= SD_TOL * c["mu_sd"], (name, q)


def test_model_averaged_quantile_is_the_infimum_at_the_point_mass() -> None:
    """q_p = inf{x : F(x) >= p}: exactly 0 for p in (F(0-), F(0)], continuous elsewhere."""
    c = REF["schools_hc"]
    p = _post(c)
    res = model_average(p)
    probs = res.models.set_index("name")["posterior_prob"]
    p0 = probs["FE-null"] + probs["RE-null"]
    assert res.mu_low == 0.0 and res.mu_median == 0.0 and res.mu_high > 0
    assert p0 > 0.5  # the median falls in the point mass


def test_bma_refuses_improper_priors() -> None:
    c = REF["crins6_uniform_flat"]
    with pytest.raises(PriorError, match="prior must be proper"):
        model_average(_post(c))


def test_model_prior_probabilities_are_checked() -> None:
    assert check_model_priors(None).tolist() == [0.25] * 4
    named = dict(zip(BMA_MODELS, [0.1, 0.2, 0.3, 0.4], strict=True))
    assert check_model_priors(named).tolist() == [0.1, 0.2, 0.3, 0.4]
    for bad in ([0.5, 0.5, 0.5, -0.5], [0.3, 0.3, 0.3], [0.2, 0.2, 0.2, 0.2], [0, 0, 0.5, 0.5]):
        with pytest.raises(InputError):
            check_model_priors(bad)


def test_batch_bayes_factors_equal_single_fits() -> None:
    cases = [REF["crins6_hn"], REF["crins2_hn"], REF["bcg_hn"]]
    y = np.concatenate([c["y"] for c in cases])
    s = np.concatenate([c["sei"] for c in cases])
    group = np.repeat(np.arange(3), [len(c["y"]) for c in cases])
    table = exact_batch_groups(
        y, s, group, tau_prior="half-normal:0.5", mu_prior="normal:0,4", tol=TIGHT
    )
    for i, c in enumerate(cases):
        assert table.loc[i, "bf_tau0"] == pytest.approx(c["bf_tau0"], rel=REL)
        assert table.loc[i, "bf_mu0"] == pytest.approx(c["bf_mu0"], rel=REL)
        assert table.loc[i, "log_marginal_likelihood"] == pytest.approx(
            c["log_marginal_likelihood"], rel=REL
        )
    flat = exact_batch([c["y"] for c in cases[:1]], [c["sei"] for c in cases[:1]], mu_prior="flat")
    assert flat[["log_marginal_likelihood", "bf_tau0", "bf_mu0"]].isna().all(axis=None)


# --- propriety of the posterior under the improper priors -------------------------------------

# (tau prior, mu prior, smallest k with a proper posterior), from check_proper_posterior's
# derivation: p(tau) L(tau) ~ tau^-(a + k - [flat mu]) as tau -> inf must be integrable.
BOUNDARY = [
    ("uniform", "flat", 3),
    ("uniform", "normal:0,4", 2),
    ("jeffreys", "flat", 2),
    ("jeffreys", "normal:0,4", 1),
]
_Y = [0.3, -0.2, 0.5, 0.1]
_S = [0.2, 0.3, 0.25, 0.4]


@pytest.mark.parametrize(("tau", "mu", "need"), BOUNDARY)
def test_improper_posterior_is_refused_below_the_boundary(tau, mu, need) -> None:
    if need > 1:
        with pytest.raises(PriorError, match=f"need at least {need} studies"):
            exact_posterior(_Y[: need - 1], _S[: need - 1], tau_prior=tau, mu_prior=mu)
        with pytest.raises(PriorError, match="improper"):
            exact_batch_groups(
                _Y[:need], _S[:need], np.r_[np.zeros(need - 1, int), 1], tau_prior=tau,
                mu_prior=mu,
            )  # fmt: skip
    post = exact_posterior(_Y[:need], _S[:need], tau_prior=tau, mu_prior=mu)
    assert np.isfinite(post.tau_quantile(0.5)) and np.isfinite(post.mu_quantile(0.5))


@pytest.mark.parametrize(("tau", "mu", "need"), BOUNDARY)
def test_boundary_tail_of_the_unnormalised_posterior(tau, mu, need) -> None:
    """The derivation's tail rate, checked on the integrand itself: at k = need - 1 the
    kernel p(tau) L(tau) decays like 1/tau (log-divergent integral), at k = need like
    1/tau^2 (convergent). Evaluated with the engine's own conditional likelihood."""
    from bayesmtor.bayes.quadrature import _conditional

    tp, mp = TauPrior.from_string(tau), MuPrior.from_string(mu)
    big = np.array([1e4, 1e6])
    for k, power in ((need - 1, 1.0), (need, 2.0)):
        if k < 1:
            continue
        y = np.array(_Y[:k])[None, :]
        v = (np.array(_S[:k]) ** 2)[None, :]
        mask = np.ones_like(y, dtype=bool)
        ll, _, _ = _conditional(y, v, mask, big, mp, np.zeros(1))
        logk = ll[0] + tp.log_density(big, np.sqrt(v[0]))
        # tau^power * kernel is the same at 1e4 and 1e6 (to O(1/tau^2))
        assert (logk[1] + power * math.log(big[1])) == pytest.approx(
            logk[0] + power * math.log(big[0]), abs=1e-6
        )


def test_check_proper_posterior_directly() -> None:
    check_proper_posterior(TauPrior.half_normal(0.5), MuPrior.flat(), 1)
    with pytest.raises(PriorError, match="flat for k = 2 studies"):
        check_proper_posterior(TauPrior.improper_uniform(), MuPrior.flat(), 2)


def test_improper_priors_have_no_normalised_distribution() -> None:
    for prior in (TauPrior.improper_uniform(), TauPrior.jeffreys()):
        assert not prior.is_proper
        for name, args in (("ppf", (0.5,)), ("cdf", (1.0,)), ("mean", ())):
            with pytest.raises(PriorError, match="improper"):
                getattr(prior, name)(*args)
    with pytest.raises(PriorError, match="log_density"):
        TauPrior.jeffreys().logpdf(1.0)
    # bayesmeta's Jeffreys density, sqrt(sum (tau / (s^2 + tau^2))^2), at one point
    s = np.array([0.3, 0.4])
    ref = math.log(math.sqrt(((0.5 / (s**2 + 0.25)) ** 2).sum()))
    assert TauPrior.jeffreys().log_density(0.5, s) == pytest.approx(ref, rel=1e-14)


# --- shortest intervals --------------------------------------------------------------------

# bayesmeta's post.interval(method="shortest") minimises the width with optimize()'s default
# tolerance (~1.2e-4 in the end point), so its tau intervals are matched within 5e-5 posterior
# SD; the R script's tight version of the same algorithm (optimize(tol=1e-12)) at REL.
BAYESMETA_OPTIMIZE_SD = 5e-5


def test_shortest_intervals_match_references(case) -> None:
    c, p = case
    s = p.summary(interval="shortest")
    central = p.summary(interval="central")
    assert s.attrs["ci_kind"] == "shortest"
    # medians are unchanged
    np.testing.assert_array_equal(s["median"], central["median"])
    tau = np.array([s.loc["tau", "q_low"], s.loc["tau", "q_high"]])
    ref = np.array(c["shortest"]["tau"])
    if ref[0] == 0:
        assert tau[0] == 0.0  # [0, q] is the narrowest: exactly 0
    np.testing.assert_allclose(tau, ref, rtol=REL, atol=0)
    bm = np.array(c["bayesmeta_shortest"]["tau"])
    np.testing.assert_allclose(tau, bm, rtol=0, atol=BAYESMETA_OPTIMIZE_SD * c["tau_sd"])
    for row, key, sd in (("mu", "mu", c["mu_sd"]), ("theta_new", "pred", c["pred_sd"])):
        got = [s.loc[row, "q_low"], s.loc[row, "q_high"]]
        np.testing.assert_allclose(got, c["shortest"][key], rtol=0, atol=SD_TOL * sd)
        # narrower than (or as narrow as) the central interval, same probability
        assert got[1] - got[0] <= central.loc[row, "q_high"] - central.loc[row, "q_low"] + 1e-12


def test_batch_shortest_intervals_equal_single_fits() -> None:
    cases = [REF["crins6_hn"], REF["bcg_hn"]]
    y = np.concatenate([c["y"] for c in cases])
    s = np.concatenate([c["sei"] for c in cases])
    group = np.repeat(np.arange(2), [len(c["y"]) for c in cases])
    table = exact_batch_groups(
        y, s, group, tau_prior="half-normal:0.5", mu_prior="normal:0,4", tol=TIGHT,
        interval="shortest",
    )  # fmt: skip
    for i, c in enumerate(cases):
        for col, key, j in (("tau_low", "tau", 0), ("tau_high", "tau", 1), ("mu_low", "mu", 0),
                            ("mu_high", "mu", 1), ("pred_low", "pred", 0),
                            ("pred_high", "pred", 1)):  # fmt: skip
            assert table.loc[i, col] == pytest.approx(c["shortest"][key][j], rel=REL, abs=1e-12)
    with pytest.raises(InputError, match="central, shortest"):
        exact_batch_groups(y, s, group, interval="hdi")


# --- command line ---------------------------------------------------------------------------


def _csv(tmp_path, case: dict) -> str:
    path = tmp_path / "data.csv"
    rows = "".join(
        f"{lab},{y!r},{s!r}\n"
        for lab, y, s in zip(case["labels"], case["y"], case["sei"], strict=True)
    )
    path.write_text("study,yi,sei\n" + rows, encoding="utf-8")
    return str(path)


def _pool(argv, capsys) -> tuple[int, str, str]:
    from bayesmtor.cli import main

    code = main(["pool", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_bayes_factors_bma_and_shortest(tmp_path, capsys) -> None:
    c = REF["crins6_hn"]
    path = _csv(tmp_path, c)
    code, out, _ = _pool(
        [path, "--measure", "OR", "--bayes", "--bma", "--interval", "shortest", "--json"], capsys
    )
    assert code == 0
    obj = json.loads(out)
    assert obj["bf_tau0"] == pytest.approx(c["bf_tau0"], rel=REL)
    assert obj["bf_mu0"] == pytest.approx(c["bf_mu0"], rel=REL)
    assert obj["log_marginal_likelihood"] == pytest.approx(c["log_marginal_likelihood"], rel=REL)
    assert obj["ci_kind"] == "shortest"
    assert [obj["tau_low"], obj["tau_high"]] == pytest.approx(c["shortest"]["tau"], rel=REL)
    assert obj["ci_low"] == obj["mu_low"]  # the schema's interval is the same one
    bma = obj["bma"]
    assert [m["name"] for m in bma["models"]] == ["FE-null", "FE-effect", "RE-null", "RE-effect"]
    assert [m["prior_prob"] for m in bma["models"]] == [0.25] * 4
    probs = [m["posterior_prob"] for m in bma["models"]]
    assert probs == pytest.approx([c["bma"]["posterior_prob"][m] for m in BMA_MODELS], rel=REL)
    assert bma["bf_inclusion_effect"] == pytest.approx(c["bma"]["bf_inclusion_effect"], rel=REL)
    code, out, _ = _pool(
        [path, "--measure", "OR", "--bayes", "--bma", "--bma-prior-probs", "0.1,0.2,0.3,0.4",
         "--json"], capsys,
    )  # fmt: skip
    probs = [m["posterior_prob"] for m in json.loads(out)["bma"]["models"]]
    ref = c["bma_unequal"]["posterior_prob"]
    assert probs == pytest.approx([ref[m] for m in BMA_MODELS], rel=REL)
    code, out, _ = _pool([path, "--measure", "OR", "--bayes", "--bma"], capsys)  # text table
    assert code == 0 and "Bayes factors" in out and "P(RE-effect)" in out


def test_cli_improper_priors(tmp_path, capsys) -> None:
    c = REF["crins6_uniform_flat"]
    path = _csv(tmp_path, c)
    base = [path, "--measure", "OR", "--bayes", "--tau-prior", "uniform", "--mu-prior", "flat"]
    code, out, _ = _pool([*base, "--json"], capsys)
    obj = json.loads(out)
    assert code == 0 and obj["tau_median"] == pytest.approx(c["tau_median"], rel=REL)
    assert obj["bf_tau0"] is None and obj["bf_mu0"] is None
    assert obj["log_marginal_likelihood"] is None
    code, out, err = _pool([*base, "--bma"], capsys)
    assert code == 2 and "prior must be proper" in err and "Traceback" not in err
    small = _csv(tmp_path, {k: c[k][:2] for k in ("labels", "y", "sei")})
    code, out, err = _pool([small, *base[1:]], capsys)
    assert code == 2 and "need at least 3 studies" in err
    code, out, err = _pool([path, "--measure", "OR", "--bma"], capsys)
    assert code == 2 and "--bayes" in err
