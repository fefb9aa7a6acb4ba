"""Work shared with forked processes (:mod:`bayesmtor._forked`): the same results as one process,
failures of a forked process handled, and ``pool --json`` written on two cores unchanged.

Forking happens only from a process without other threads, so each check runs in a fresh
interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd

from bayesmtor import _forked


def _run(code: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_write_blocks_gives_the_text_of_one_process() -> None:
    info = _run(
        """
        import json, os
        from bayesmtor import _forked

        blocks = [f"<{i}>" * (5000 + 3001 * i) for i in range(9)]  # up to 0.2 MB: pipes fill
        parent, here = os.getpid(), []

        def make(i):
            here.append(i)  # in this process's memory only
            return blocks[i]

        out = []
        _forked.write_blocks(9, make, out.append)
        first = {"same": "".join(out) == "".join(blocks), "here": here}

        def dying(i):  # the forked process dies at its first block: all are made here
            if os.getpid() != parent:
                os._exit(3)
            return blocks[i]

        out = []
        _forked.write_blocks(9, dying, out.append)
        print(json.dumps({**first, "same_after_death": "".join(out) == "".join(blocks),
                          "parallel": _forked.cores() > 1 and _forked.can_fork()}))
        """
    )
    assert info["same"] and info["same_after_death"]
    if info["parallel"]:  # this process made the even blocks, the forked one the odd ones
        assert info["here"] == [0, 2, 4, 6, 8]
    else:
        assert info["here"] == list(range(9))


def test_share_returns_every_result_and_raises_the_errors_of_forked_processes() -> None:
    info = _run(
        """
        import json, os
        from bayesmtor import _forked

        out = _forked.share(lambda i: (i, os.getpid()), 7, 3)
        said = {}

        def bad(i):
            if i % 2:
                raise ValueError(f"task {i} failed")
            return i

        try:
            _forked.share(bad, 4, 2)
        except ValueError as exc:
            said["error"] = str(exc)
        parent = os.getpid()

        def dying(i):
            if os.getpid() != parent:
                os._exit(9)
            return i

        try:
            _forked.share(dying, 4, 2)
        except ChildProcessError:
            said["died"] = True
        print(json.dumps({"tasks": [o[0] for o in out], "pids": len({o[1] for o in out}),
                          "parent": [o[1] for o in out][::3] == [parent] * 3, **said}))
        """
    )
    assert info["tasks"] == list(range(7))
    assert info["pids"] == 3 and info["parent"]  # tasks 0, 3, 6 here; the others forked
    assert info["error"] == "task 1 failed"
    assert info["died"]


def test_serial_fallbacks() -> None:
    made = []
    _forked.write_blocks(1, lambda i: made.append(i) or "x", lambda text: None)
    assert made == [0]
    assert _forked.share(lambda i: i * i, 5, 1) == [0, 1, 4, 9, 16]
    assert _forked.share(lambda i: i, 1, 4) == [0]


def test_pool_json_written_on_two_cores_is_the_json_of_its_records(
    tmp_path, monkeypatch, capsys
) -> None:
    # 3,000 groups: the column writer's blocks alternate between two processes; the text must
    # be exactly json.dumps(records, indent=2), and that of one process.
    rng = np.random.default_rng(5)
    k = rng.integers(1, 6, 3000)
    group = np.repeat(np.arange(k.size), k)
    frame = pd.DataFrame(
        {"group": group, "study": [f"s{i}" for i in range(group.size)],
         "yi": rng.normal(0, 0.4, group.size), "sei": rng.uniform(0.1, 0.5, group.size)}
    )  # fmt: skip
    path = tmp_path / "many.csv"
    frame.to_csv(path, index=False)
    monkeypatch.setattr(_forked, "cores", lambda: 1)  # here: one process
    for extra in ([], ["--bayes"]):
        args = ["pool", str(path), "--measure", "generic", "--by", "group", "--json", *extra]
        proc = subprocess.run(
            [sys.executable, "-m", "bayesmtor", *args], capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr
        records = json.loads(proc.stdout)
        assert len(records) == 3000
        assert proc.stdout == json.dumps(records, indent=2) + "\n"
        from bayesmtor.cli import main

        assert main(args) == 0
        assert capsys.readouterr().out == proc.stdout, extra
