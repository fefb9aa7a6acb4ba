"""Start-up structure: the frequentist path and the exact engine import no sampler or plotting stack.

Each check runs in a fresh interpreter and then lists ``sys.modules``: it is a test of what is
imported, not a timing (the start-up time itself is measured by benchmarks/bench_startup.py).
A heavy module imported at the top of cli.py, of the frequentist package or of the exact engine
makes these fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

#: Never imported by ``bayesmtor pool`` (frequentist or exact) nor by ``bm.rma``.
HEAVY = ("pymc", "pytensor", "arviz", "xarray", "matplotlib", "numba", "netCDF4", "h5py")
#: Parts of SciPy that the frequentist path does not need (it needs no SciPy at all: see below).
SCIPY_UNNEEDED = ("scipy.stats", "scipy.optimize", "scipy.integrate", "scipy.interpolate")
#: Not imported by ``bayesmtor pool`` (frequentist or exact): its tables are dicts of arrays.
POOL_UNNEEDED = ("pandas",)

DATA = "study,yi,sei\na,-0.3,0.2\nb,-0.1,0.25\nc,-0.5,0.3\nd,0.1,0.4\n"


def _imported(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; the modules it imported, of HEAVY, SCIPY_UNNEEDED
    and POOL_UNNEEDED."""
    probe = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import json, sys
        print(json.dumps([m for m in {HEAVY + SCIPY_UNNEEDED + POOL_UNNEEDED!r} if m in sys.modules]))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pool(tmp_path, *options: str) -> str:
    path = tmp_path / "trials.csv"
    path.write_text(DATA)
    args = ["pool", str(path), "--measure", "HR", *options]
    return f"""
        import contextlib, io
        from bayesmtor.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            code = main({args!r})
        assert code in (0, None), code
    """


def test_import_bayesmtor_and_rma_stay_light():
    code = """
        import bayesmtor as bm
        fit = bm.rma([0.1, 0.2, 0.35], sei=[0.1, 0.2, 0.3], method="REML")
        fit.summary()
    """
    assert _imported(code) == ["pandas"]  # summary() is a DataFrame


def test_bare_import_loads_nothing_numeric():
    code = """
        import sys
        import bayesmtor
        bad = [m for m in ("numpy", "pandas", "scipy", "importlib.metadata") if m in sys.modules]
        assert not bad, bad
    """
    assert _imported(code) == []


@pytest.mark.parametrize(
    "options",
    [("--method", "REML"), ("--method", "DL", "--json"), ("--by", "study", "--json"),
     ("--by", "study")],
)  # fmt: skip
def test_frequentist_pool_stays_light(tmp_path, options):
    assert _imported(_pool(tmp_path, *options)) == []


@pytest.mark.parametrize("options", [(), ("--json",), ("--by", "study", "--json")])
def test_exact_pool_stays_light(tmp_path, options):
    """The exact engine needs no SciPy (the priors' densities are closed forms)."""
    assert _imported(_pool(tmp_path, "--bayes", *options)) == []


@pytest.mark.parametrize(
    "module",
    [
        "bayesmtor.frequentist._core",
        "bayesmtor.frequentist.revman",
        "bayesmtor.bayes.quadrature",
        "bayesmtor.bayes.priors",
        "bayesmtor.vocabulary",
        "bayesmtor._special",
    ],
)
def test_pool_modules_import_no_scipy(module):
    """The special functions of the pool path are bayesmtor._special (NumPy only)."""
    code = f"""
        import importlib, sys
        importlib.import_module({module!r})
        from bayesmtor.vocabulary import z_quantile
        assert z_quantile(0.95) > 1.95
        bad = [m for m in sys.modules if m == "scipy" or m.startswith("scipy.")]
        assert not bad, bad
    """
    assert _imported(code) == []


@pytest.mark.parametrize(
    "options", [("--method", "REML"), ("--method", "DL", "--json"), ("--bayes",)]
)
def test_pool_imports_no_scipy(tmp_path, options):
    code = (
        _pool(tmp_path, *options)
        + """
        import sys
        bad = [m for m in sys.modules if m == "scipy" or m.startswith("scipy.")]
        assert not bad, bad
    """
    )
    assert _imported(code) == []
