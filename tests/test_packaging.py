"""The built wheel carries data/ and models/, and a non-editable install finds them."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory, repo_root: Path) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(repo_root),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheels = list(out.glob("bayesmtor-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_contains_every_data_and_plan_file(wheel: Path, repo_root: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = [
        p for p in (repo_root / "data").iterdir() if p.is_file() and not p.name.startswith(".")
    ]
    expected += [
        p for p in (repo_root / "models").iterdir() if p.is_file() and not p.name.startswith(".")
    ]
    assert any(p.suffix == ".csv" for p in expected), "data/ holds no CSV files"
    assert any(p.suffix == ".toml" for p in expected), "models/ holds no plans"
    for path in expected:
        member = f"bayesmtor/_bundled/{path.parent.name}/{path.name}"
        assert member in names, f"{member} missing from {wheel.name}"


def test_non_editable_install_finds_bundled_data(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    code = (
        "import bayesmtor, bayesmtor._resources as r, bayesmtor.data as d;"
        "assert r.data_path().parent.name == '_bundled', r.data_path();"
        "assert r.models_path('primary.toml').is_file();"
        "s = d.load_studies(); print(len(s), bayesmtor.__file__)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    # Run from an unrelated folder so the source tree cannot shadow the installed copy.
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    n_rows, location = proc.stdout.split()
    assert int(n_rows) >= 13
    assert str(target) in location
