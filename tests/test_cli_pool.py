"""`bayesmtor pool` (frequentist) against the R metafor references of test_frequentist.py."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayesmtor.cli import build_parser, main

#: Same reasoning as in test_frequentist.py: metafor was run with threshold=1e-12.
REL_TOL = 1e-6
ABS_TOL = 1e-10
JSON_KEYS = (
    "k",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "pval",
    "tau2",
    "tau2_ci_low",
    "tau2_ci_high",
    "I2",
    "H2",
    "Q",
    "Q_df",
    "Q_pval",
    "pi_low",
    "pi_high",
)


@pytest.fixture(scope="module")
def ref(reference_dir):
    with open(reference_dir / "rma_reference.json") as fh:
        return {r["id"]: r["values"] for r in json.load(fh)["references"]}


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def check(obj, expected):
    for key in JSON_KEYS:
        assert key in obj
        if key in expected:
            e = expected[key]
            if e is None:
                assert obj[key] is None, key
            else:
                np.testing.assert_allclose(obj[key], e, rtol=REL_TOL, atol=ABS_TOL, err_msg=key)


@pytest.mark.parametrize(
    ("name", "measure", "method", "extra", "rid"),
    [
        ("bcg", "RR", "REML", [], "bcg/RR/REML/z"),
        ("bcg", "rr", "dl", ["--hksj"], "bcg/RR/DL/knha"),
        ("nielweise", "OR", "MH", [], "nielweise/OR/MH/revman"),
        ("nielweise", "OR", "MH", ["--mh-correction", "none"], "nielweise/OR/MH/none"),
        ("yusuf", "OR", "PETO", [], "yusuf/OR/PETO"),
        ("hackshaw", "generic", "PM", [], "hackshaw/generic/PM/z"),
    ],
)
def test_pool_json_matches_metafor(reference_dir, ref, capsys, name, measure, method, extra, rid):
    path = reference_dir / "rma_datasets" / f"{name}.csv"
    code, out, _ = run(
        ["pool", str(path), "--measure", measure, "--method", method, "--json", *extra], capsys
    )
    assert code == 0
    obj = json.loads(out)
    check(obj, ref[rid])
    if method in ("MH", "PETO", "FE"):
        assert obj["tau2"] is None and obj["pi_low"] is None


def test_pool_by_gives_one_object_per_group(reference_dir, ref, capsys):
    path = reference_dir / "rma_datasets" / "hackshaw.csv"
    code, out, _ = run(
        ["pool", str(path), "--measure", "OR", "--method", "REML", "--by", "design", "--json"],
        capsys,
    )
    assert code == 0
    objs = json.loads(out)
    assert isinstance(objs, list) and {o["design"] for o in objs} == {"case-control", "cohort"}
    for o in objs:
        check(o, ref[f"hackshaw/generic/design={o['design']}/REML"])


def test_pool_by_two_columns_and_table(tmp_path, reference_dir, capsys):
    d = pd.read_csv(reference_dir / "rma_datasets" / "bcg.csv")
    d["era"] = np.where(d["study"].str.extract(r"(\d{4})")[0].astype(int) < 1960, "early", "late")
    path = tmp_path / "bcg_groups.csv"
    d.to_csv(path, index=False)
    code, out, err = run(
        ["pool", str(path), "--measure", "RR", "--method", "DL", "--by", "alloc,era", "--json"],
        capsys,
    )
    assert code == 0
    objs = json.loads(out)
    assert all({"alloc", "era"} <= set(o) for o in objs)
    assert sum(o["k"] for o in objs) == len(d)
    code, out, _ = run(
        ["pool", str(path), "--measure", "RR", "--method", "DL", "--by", "alloc"], capsys
    )
    assert code == 0 and "alloc" in out and "RR" in out


def test_pool_text_output(reference_dir, capsys):
    path = reference_dir / "rma_datasets" / "bcg.csv"
    code, out, _ = run(["pool", str(path), "--measure", "RR", "--method", "REML"], capsys)
    assert code == 0
    assert "random-effects" in out and "tau2" in out and "prediction interval" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["pool", "no_such_file.csv", "--measure", "RR"], "no_such_file.csv"),
        (["pool", "{bad}", "--measure", "XX"], "invalid choice"),
        (["pool", "{bad}", "--measure", "HR", "--method", "MH"], "2x2 counts"),
        (["pool", "{bad}", "--measure", "RR", "--by", "nope"], "nope"),
    ],
)
def test_bad_input_exits_2_with_one_message(tmp_path, capsys, argv, needle):
    bad = tmp_path / "loghr.csv"
    bad.write_text("study,yi,sei\nA,0.1,0.2\nB,-0.2,0.3\n")
    argv = [str(bad) if a == "{bad}" else a for a in argv]
    code, out, err = run(argv, capsys)
    assert code == 2
    assert needle in err and "Traceback" not in err and out == ""


def test_help_version_and_parser(capsys):
    code, out, _ = run(["pool", "--help"], capsys)
    assert code == 0 and "examples:" in out and "--hksj" in out
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.startswith("bayesmtor ")
    parser = build_parser()
    args = parser.parse_args(["pool", "x.csv", "--measure", "hr", "--method", "reml"])
    assert (args.measure, args.method) == ("HR", "REML") and callable(args.handler)


def test_frequentist_path_does_not_import_pymc(reference_dir):
    path = reference_dir / "rma_datasets" / "nielweise.csv"
    code = (
        "import sys, json\n"
        "from bayesmtor.cli import main\n"
        f"rc = main(['pool', {str(path)!r}, '--measure', 'RR', '--method', 'REML', '--json'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pymc', 'pytensor', 'arviz'))\n"
        "sys.stderr.write(json.dumps({'rc': rc, 'heavy': heavy}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    info = json.loads(proc.stderr.strip().splitlines()[-1])
    assert info == {"rc": 0, "heavy": []}
    assert json.loads(proc.stdout)["k"] == 17


def test_python_dash_m(reference_dir):
    path = reference_dir / "rma_datasets" / "bcg.csv"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bayesmtor",
            "pool",
            str(path),
            "--measure",
            "RR",
            "--method",
            "FE",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["method"] == "FE"


def test_bayes_exact_path_does_not_import_pymc(reference_dir):
    """The exact engine is NumPy/SciPy only: `pool --bayes` answers without PyMC or ArviZ."""
    path = reference_dir / "rma_datasets" / "bcg.csv"
    code = (
        "import sys, json\n"
        "from bayesmtor.cli import main\n"
        f"rc = main(['pool', {str(path)!r}, '--measure', 'RR', '--bayes', '--json'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pymc', 'pytensor', 'arviz'))\n"
        "sys.stderr.write(json.dumps({'rc': rc, 'heavy': heavy}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    info = json.loads(proc.stderr.strip().splitlines()[-1])
    assert info == {"rc": 0, "heavy": []}
    assert json.loads(proc.stdout)["engine"] == "exact"


@pytest.mark.parametrize("bayes", [False, True], ids=["frequentist", "exact"])
def test_pool_by_streams_the_json_text_of_one_list(tmp_path, capsys, bayes):
    """Records are written one by one, and the text is that of json.dumps(list, indent=2)."""
    rng = np.random.default_rng(5)
    n = 300
    frame = pd.DataFrame(
        {
            "study": [f"s{i}" for i in range(3 * n)],
            "yi": rng.normal(-0.2, 0.3, 3 * n),
            "sei": rng.uniform(0.1, 0.4, 3 * n),
            "g": np.repeat([f"g{i}" for i in range(n)], 3),
        }
    )
    path = tmp_path / "many.csv"
    frame.to_csv(path, index=False)
    argv = ["pool", str(path), "--measure", "generic", "--by", "g", "--json"]
    code, out, _ = run(argv + (["--bayes"] if bayes else []), capsys)
    assert code == 0
    records = json.loads(out)
    assert out == json.dumps(records, indent=2) + "\n"
    assert [r["g"] for r in records] == [f"g{i}" for i in range(n)]
    assert all(r["engine"] == ("exact" if bayes else "frequentist") for r in records)
    assert all(0 <= r["I2"] <= 100 for r in records if r["I2"] is not None)


def test_json_writer_matches_json_dumps(capsys):
    from bayesmtor._pool_command import _print_json

    for records in ([], [{"a": 1}], [{"a": [1, {"b": None}], "c": "x\ny"}, {"d": 2.5}]):
        _print_json(iter(records))
        assert capsys.readouterr().out == json.dumps(records, indent=2) + "\n"
    _print_json({"a": 1})
    assert capsys.readouterr().out == json.dumps({"a": 1}, indent=2) + "\n"


_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.sampled_from(list('ab{}[],:" \\\n\t\u00e9\U0001f600')), max_size=8),
)
_VALUE = st.one_of(
    _SCALAR,
    st.lists(_SCALAR, max_size=3),
    st.dictionaries(st.sampled_from(["study", "reason"]), _SCALAR, max_size=2),
)


@settings(max_examples=100, deadline=None)
@given(
    records=st.lists(
        st.dictionaries(
            st.text(alphabet=st.sampled_from(list('ab}{,"\n')), max_size=4), _VALUE, max_size=5
        ),
        max_size=12,
    ),  # fmt: skip
    repeat=st.integers(1, 130),
)
def test_json_writer_is_json_dumps_for_any_records(records, repeat):
    """Text that looks like a record boundary (``},`` and a line break), nested values, empty
    records and more records than one chunk of the C encoder all give json.dumps' text."""
    import contextlib
    import io

    from bayesmtor._pool_command import _print_json

    many = records * repeat
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        _print_json(iter(many))
    assert buffer.getvalue() == json.dumps(many, indent=2) + "\n"
    for record in records[:3]:
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            _print_json(record)
        assert buffer.getvalue() == json.dumps(record, indent=2) + "\n"


def test_pool_leaves_the_cycle_collector_as_it_found_it(tmp_path, capsys):
    """The collector paused during a pool is running again afterwards, after an error too,
    and stays off for a caller who had turned it off."""
    import gc

    path = tmp_path / "t.csv"
    path.write_text("study,yi,sei\na,0.1,0.2\nb,0.3,0.25\nc,-0.1,0.3\n")
    assert main(["pool", str(path), "--measure", "generic", "--json"]) == 0
    assert gc.isenabled()
    assert main(["pool", str(tmp_path / "missing.csv"), "--measure", "generic"]) == 2
    assert gc.isenabled()
    gc.disable()
    try:
        assert main(["pool", str(path), "--measure", "generic", "--bayes"]) == 0
        assert not gc.isenabled()
    finally:
        gc.enable()
    capsys.readouterr()


_COLUMN = st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=7, max_size=7).map(np.array),
    st.lists(st.integers(-(2**62), 2**62), min_size=7, max_size=7).map(np.array),
    st.lists(st.booleans(), min_size=7, max_size=7).map(np.array),
    st.lists(
        st.one_of(
            st.none(),
            st.text(alphabet=st.sampled_from(list('a, "\\\n\u00e9\U0001f600:{}')), max_size=6),
            st.floats(),
            st.integers(),
            st.booleans(),
        ),
        min_size=7,
        max_size=7,
    ),  # fmt: skip
    st.one_of(st.none(), st.text(max_size=4), st.floats(), st.integers(), st.booleans()),
)


@settings(max_examples=150, deadline=None)
@given(
    columns=st.dictionaries(st.text(alphabet=st.sampled_from(list('ab"\n\u00e9')), max_size=3),
                            _COLUMN, max_size=6),
    chunk=st.sampled_from([2, 3, 4096]),
)  # fmt: skip
def test_columns_json_is_json_dumps_of_the_records(columns, chunk):
    """Columns of scalars (floats with NaN and infinities, big integers, booleans, text with
    quotes, line breaks and non-ASCII, mixed objects, constants) are written from each
    column's own texts as json.dumps(list(records), indent=2) writes the records."""
    import contextlib
    import io

    from bayesmtor import schema
    from bayesmtor._pool_command import _print_json

    records = schema.column_records(columns, 7)
    records.chunk = chunk
    assert records.nested == frozenset()
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        _print_json(records)
    assert buffer.getvalue() == json.dumps(list(records), indent=2) + "\n"
