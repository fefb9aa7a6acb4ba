"""The registry of defaults: every key has a validator and a reason, and bad values are refused."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from bayesmtor import config
from bayesmtor.errors import InputError

#: Keys other modules read through ``config.get``; each must stay registered.
USED_KEYS = (
    "ci_prob", "ci_kind", "tau_prior", "mu_prior", "cc_add", "cc_to", "drop00", "exact_tol",
    "exact_chunk_cells", "chains", "draws", "tune", "target_accept", "rhat_max", "ess_min",
    "random_seed", "yi_abs_max", "sei_min", "sei_max",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _restore_registry():
    yield
    config.reset()


def test_every_key_has_a_setting_with_a_reason() -> None:
    assert set(USED_KEYS) <= set(config.REGISTRY)
    for key, setting in config.REGISTRY.items():
        assert isinstance(setting, config.Setting), key
        assert len(setting.reason.split()) >= 5, f"{key}: reason too short: {setting.reason!r}"
        assert callable(setting.validator), key


@pytest.mark.parametrize("key", sorted(config.REGISTRY))
def test_every_default_passes_its_own_validator(key) -> None:
    setting = config.REGISTRY[key]
    assert setting.validator(key, setting.default) == setting.default


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        config.REGISTRY["ci_prob"] = config.Setting(0.9, lambda k, v: v, "x")  # type: ignore[index]
    with pytest.raises(AttributeError):
        config.REGISTRY["ci_prob"].default = 0.9  # type: ignore[misc]


def test_get_returns_explicit_value_else_current() -> None:
    assert config.get("ci_prob") == 0.95
    assert config.get("ci_prob", 0.8) == 0.8
    config.set("ci_prob", 0.9)
    assert config.get("ci_prob") == 0.9
    assert config.defaults["ci_prob"] == 0.9


def test_item_assignment_is_validated_like_set() -> None:
    config.defaults["ci_prob"] = 0.9
    assert config.get("ci_prob") == 0.9
    with pytest.raises(InputError, match=r"config 'ci_prob' must be a number strictly between"):
        config.defaults["ci_prob"] = 1.5
    assert config.get("ci_prob") == 0.9  # a refused value leaves the current one in place
    config.defaults.update(chains=2, draws=300)
    assert (config.get("chains"), config.get("draws")) == (2, 300)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("ci_prob", 0.0, "strictly between 0 and 1"),
        ("ci_prob", 1.0, "strictly between 0 and 1"),
        ("ci_prob", "0.95", "strictly between 0 and 1"),
        ("ci_prob", math.nan, "strictly between 0 and 1"),
        ("ci_prob", True, "strictly between 0 and 1"),
        ("ci_kind", "hdi", "one of 'central', 'shortest', got 'hdi'"),
        ("cc_add", -0.5, ">= 0"),
        ("cc_to", "some", "one of 'only0'"),
        ("drop00", 1, "True or False"),
        ("exact_chunk_cells", 0, "positive integer"),
        ("exact_chunk_cells", 2.5, "positive integer"),
        ("exact_chunk_cells", True, "positive integer"),
        ("draws", -10, "positive integer"),
        ("tune", -1, "integer >= 0"),
        ("rhat_max", 0.99, ">= 1"),
        ("ess_min", 0, "positive finite number"),
        ("sei_min", math.inf, "positive finite number"),
        ("target_accept_schedule", (0.99, 0.95), "increasing tuple"),
        ("netcdf_engine", "zarr", "one of 'netcdf4'"),
        ("tau_prior", ("half-normal", {"scale": -1.0}), "tau_prior"),
        ("tau_prior", ("log-normal", {"mean": 0.0, "sd": 1.0}), "meanlog"),
        ("tau_prior", 0.5, "TauPrior, a prior string"),
        ("tau_prior", "half-normal:x", "tau_prior"),
        ("mu_prior", ("normal", {"mean": 0.0}), "mu_prior"),
    ],
)
def test_validator_refuses_bad_values_with_a_clear_message(key, value, match) -> None:
    before = config.get(key)
    with pytest.raises(InputError, match=match) as info:
        config.set(key, value)
    assert f"'{key}'" in str(info.value)
    assert config.get(key) == before


def test_valid_priors_are_accepted_in_every_form() -> None:
    from bayesmtor.bayes.priors import TauPrior

    config.set("tau_prior", ("log-normal", {"meanlog": -1.0, "sdlog": 1.0}))
    assert config.get("tau_prior") == ("log-normal", {"meanlog": -1.0, "sdlog": 1.0})
    config.set("tau_prior", "half-cauchy:0.3")
    assert config.get("tau_prior") == "half-cauchy:0.3"
    prior = TauPrior.from_string("half-normal:1")
    config.set("tau_prior", prior)
    assert config.get("tau_prior") is prior
    config.set("mu_prior", "flat")
    assert config.get("mu_prior") == "flat"


def test_unknown_key_is_refused_with_the_known_keys() -> None:
    with pytest.raises(InputError, match=r"unknown config key 'ci_porb'; known keys: ci_prob"):
        config.set("ci_porb", 0.9)
    with pytest.raises(KeyError, match="no default registered for 'ci_porb'"):
        config.get("ci_porb")
    with pytest.raises(InputError, match="unknown config key"):
        config.reset("ci_porb")


def test_reset_one_key_or_all() -> None:
    config.set("ci_prob", 0.9)
    config.set("draws", 100)
    config.reset("draws")
    assert (config.get("ci_prob"), config.get("draws")) == (0.9, 2000)
    config.reset()
    assert config.get("ci_prob") == 0.95
    del config.defaults["ci_prob"]  # deleting restores the default, the key stays
    assert "ci_prob" in config.defaults


def test_monkeypatch_setitem_is_undone(monkeypatch) -> None:
    with monkeypatch.context() as m:
        m.setitem(config.defaults, "draws", 123)
        assert config.get("draws") == 123
    assert config.get("draws") == 2000


def test_describe_lists_every_key_with_default_current_and_reason() -> None:
    config.set("ci_prob", 0.9)
    table = config.describe()
    assert list(table.columns) == ["key", "default", "current", "reason"]
    assert list(table["key"]) == list(config.REGISTRY)
    row = table.set_index("key").loc["ci_prob"]
    assert (row["default"], row["current"]) == (0.95, 0.9)
    assert row["reason"] == config.REGISTRY["ci_prob"].reason


def test_importing_the_registry_loads_no_heavy_library() -> None:
    code = (
        "import sys, bayesmtor.config, bayesmtor.vocabulary; "
        "print(sorted(m for m in ('pandas', 'scipy', 'pymc', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_registered_key_is_read_by_the_package() -> None:
    src = Path(__file__).resolve().parents[1] / "src" / "bayesmtor"
    text = "\n".join(
        p.read_text(encoding="utf-8") for p in src.rglob("*.py") if p.name != "config.py"
    )
    unread = [k for k in config.REGISTRY if f'"{k}"' not in text and f"'{k}'" not in text]
    assert not unread, f"registered but never read: {unread}"
