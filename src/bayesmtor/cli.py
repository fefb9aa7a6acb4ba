"""Command line interface: ``bayesmtor <command> ...``.

Each subcommand has one ``_cmd_<name>(args) -> int`` handler registered in
:func:`build_parser`; handlers import what they need lazily, so that the frequentist
``pool`` path never imports PyMC/PyTensor/ArviZ and answers quickly. Errors a user can cause
(:class:`bayesmtor.errors.BayesMTORError`) become one message on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from bayesmtor import __version__
from bayesmtor.errors import BayesMTORError

PROG = "bayesmtor"

MEASURE_CHOICES = ("RR", "OR", "RD", "HR", "generic")
METHOD_CHOICES = ("FE", "MH", "PETO", "DL", "REML", "PM", "ML", "SJ", "HE")

POOL_EPILOG = """\
input shapes (a 'study' column plus one of):
  counts:   events_trt, n_trt, events_ctl, n_ctl   (--measure RR, OR or RD)
  ratio_ci: estimate, ci_low, ci_high              (--measure HR, RR, OR or generic)
  log_se:   yi, sei                                (--measure HR, RR, OR or generic)

examples:
  bayesmtor pool trials.csv --measure RR --method MH
  bayesmtor pool trials.csv --measure OR --method REML --hksj --json
  bayesmtor pool ae.csv --measure RR --method DL --by outcome,drug_class --json

JSON output: one object (a list of objects with --by, each with its group keys) with keys
k, estimate, se, ci_low, ci_high, pval, tau2, tau2_ci_low, tau2_ci_high, I2, H2, Q, Q_df,
Q_pval, pi_low, pi_high, ... (null where undefined; log scale for ratio measures).
"""

MAIN_EPILOG = """\
examples:
  bayesmtor pool trials.csv --measure RR --method MH
  bayesmtor pool trials.csv --measure HR --method REML --hksj --json
  bayesmtor pool --help
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Bayesian meta-analysis of mTOR-inhibitor trials, with a frequentist "
        "cross-check matching R metafor.",
        epilog=MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    pool = sub.add_parser(
        "pool",
        help="pool one data file (frequentist: FE, MH, Peto, DL, REML, ...)",
        description="Pool the studies of a CSV file on the log scale (ratio measures) and "
        "report the pooled effect, its interval, heterogeneity and tau^2.",
        epilog=POOL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pool.add_argument("file", metavar="FILE.csv", help="input data (CSV)")
    pool.add_argument(
        "--measure",
        required=True,
        type=_choice(MEASURE_CHOICES),
        metavar="{" + ",".join(MEASURE_CHOICES) + "}",
        help="effect measure",
    )
    pool.add_argument(
        "--method",
        default="REML",
        type=_choice(METHOD_CHOICES),
        metavar="{" + ",".join(METHOD_CHOICES) + "}",
        help="fixed effect (FE, MH, PETO) or tau^2 estimator (default: REML)",
    )
    pool.add_argument(
        "--hksj",
        action="store_true",
        help="Hartung-Knapp-Sidik-Jonkman interval (t on k-1 df; random effects only)",
    )
    pool.add_argument(
        "--by",
        metavar="COL[,COL...]",
        default=None,
        help="pool each group of these columns separately (one vectorised fit)",
    )
    pool.add_argument(
        "--ci-prob",
        type=float,
        default=None,
        metavar="P",
        help="interval probability (default: bayesmtor.config, 0.95)",
    )
    pool.add_argument(
        "--mh-correction",
        choices=("revman", "none"),
        default="revman",
        help="zero cells inside the MH estimate: add 1/2 as RevMan 5 (default) or use raw "
        "counts as metafor's rma.mh default",
    )
    pool.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pool.set_defaults(handler=_cmd_pool)
    return parser


def _choice(choices: Sequence[str]):
    """Case-insensitive choice, returned in its canonical spelling."""

    def convert(value: str) -> str:
        for c in choices:
            if value.lower() == c.lower():
                return c
        raise argparse.ArgumentTypeError(
            f"invalid choice '{value}' (choose from {', '.join(choices)})"
        )

    return convert


def _clean(value: Any) -> Any:
    """JSON-safe scalar: NaN/inf -> None, numpy scalars -> Python."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cmd_pool(args: argparse.Namespace) -> int:
    """Handler of ``bayesmtor pool`` (frequentist)."""
    import pandas as pd

    from bayesmtor import frequentist
    from bayesmtor.inputs import read_meta_data

    by = [b.strip() for b in args.by.split(",") if b.strip()] if args.by else None
    meta = read_meta_data(args.file, by=by)
    by_cols = list(meta.by) if by else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if by_cols:
            table = frequentist.pool_groups(
                meta.frame,
                by=by_cols,
                measure=args.measure,
                method=args.method,
                hksj=args.hksj,
                ci_prob=args.ci_prob,
                mh_correction=args.mh_correction,
            )
        else:
            result = frequentist.meta_analysis(
                meta,
                measure=args.measure,
                method=args.method,
                hksj=args.hksj,
                ci_prob=args.ci_prob,
                mh_correction=args.mh_correction,
            )
    seen = set()
    for w in caught:
        msg = str(w.message)
        if msg not in seen:
            seen.add(msg)
            print(f"{PROG}: warning: {msg}", file=sys.stderr)

    if by_cols:
        records = [
            {key: _clean(val) for key, val in row.items()}
            for row in table.to_dict(orient="records")
        ]
        if args.json:
            print(json.dumps(records, indent=2))
        else:
            print(_group_table(table, by_cols, args.measure).to_string(index=False))
        return 0
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(repr(result))
        print()
        with pd.option_context("display.width", 120, "display.max_columns", 20):
            print(result.summary().to_string(float_format=lambda x: f"{x:.4f}"))
    return 0


def _group_table(table: Any, by_cols: list[str], measure: str) -> Any:
    """Readable per-group table (ratio scale for ratio measures)."""
    import numpy as np

    from bayesmtor.frequentist import RATIO_MEASURES

    out = table[by_cols + ["k"]].copy()
    ratio = measure in RATIO_MEASURES
    label = measure if ratio else "estimate"
    f = np.exp if ratio else (lambda x: x)
    out[label] = f(table["estimate"])
    out["ci_low"] = f(table["ci_low"])
    out["ci_high"] = f(table["ci_high"])
    out["pval"] = table["pval"]
    out["I2"] = table["I2"]
    out["tau2"] = table["tau2"]
    out["Q_pval"] = table["Q_pval"]
    return out.round(4)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bayesmtor`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (status 2)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(handler(args))
    except BayesMTORError as exc:
        message = " ".join(str(exc).split())  # one line
        source = getattr(args, "file", None)
        if source:
            name = str(source).replace("\\", "/").rsplit("/", 1)[-1]
            if name not in message:
                message = f"{name}: {message}"
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
