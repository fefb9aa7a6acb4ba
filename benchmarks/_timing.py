"""Timing of whole processes for the benchmarks: wall and CPU time of one child, repeated.

The machine may be shared, so every comparison runs its commands interleaved (A, B, A, B, ...)
and reports the median of each; the CPU time (user + system of the child, from ``os.wait4``)
is less sensitive to other load than the wall time and is printed beside it.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Timings:
    """Wall and CPU seconds of each run of one command."""

    label: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    def line(self, width: int = 34) -> str:
        return (
            f"{self.label:<{width}} median {self.wall_median:7.2f} s wall {self.cpu_median:7.2f} s "
            f"CPU  (runs: {', '.join(f'{w:.2f}' for w in self.wall)})"
        )


def run(
    cmd: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None
) -> tuple[float, float, str]:
    """Run ``cmd`` to completion: (wall s, child CPU s, stdout). Fails loudly on a non-zero exit."""
    import time

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), stdout=out, stderr=err, env=dict(env or os.environ), cwd=cwd
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        text, etext = out.read().decode(), err.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{etext[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, text


def cold_env(root: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment with an empty PyTensor compile directory and numba cache under ``root``
    (a fresh folder per run: a cold compile cache; the user's own caches are not touched)."""
    root.mkdir(parents=True, exist_ok=True)
    env = dict(base or os.environ)
    flags = env.get("PYTENSOR_FLAGS", "")
    env["PYTENSOR_FLAGS"] = ",".join(f for f in (flags, f"compiledir={root / 'pytensor'}") if f)
    env["NUMBA_CACHE_DIR"] = str(root / "numba")
    env["PYTHONWARNINGS"] = "ignore"
    return env


def compare(
    commands: Mapping[str, tuple[Sequence[str], bool]], repeats: int, tmp: Path
) -> dict[str, Timings]:
    """Run each command ``repeats`` times, interleaved; ``(cmd, cold)``: cold gives each run a
    fresh empty compile cache."""
    out = {label: Timings(label) for label in commands}
    for r in range(repeats):
        for label, (cmd, cold) in commands.items():
            env = (
                cold_env(tmp / f"cache-{r}-{len(out[label].wall)}-{abs(hash(label))}")
                if cold
                else None
            )
            wall, cpu, _ = run(cmd, env)
            out[label].wall.append(wall)
            out[label].cpu.append(cpu)
    return out


def machine_line() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"machine: {os.cpu_count()} CPUs, load average {load} (shared machine: compare medians side by side)"


PY = sys.executable


def compile_sources(*src_dirs: str | None) -> str:
    """Byte-compile the package's modules (and those of other trees' ``src``) once, as ``pip
    install`` does, so that no timed process compiles them: with PYTHONDONTWRITEBYTECODE set
    (as on some machines) nothing else would, and every run would pay the compilation."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("bayesmtor")
    dirs = [str(Path(spec.origin).parent)] if spec and spec.origin else []
    dirs += [str(Path(d) / "src") for d in src_dirs if d]
    for d in dirs:
        compileall.compile_dir(d, quiet=1)
    flag = os.environ.get("PYTHONDONTWRITEBYTECODE")
    note = " (PYTHONDONTWRITEBYTECODE is set here)" if flag else ""
    return f"byte-compiled {', '.join(dirs)} before timing, as pip install does{note}"
