"""Command line interface: ``bayesmtor <command> ...``.

Each subcommand has one ``_cmd_<name>(args) -> int`` handler registered in
:func:`build_parser`; handlers import what they need lazily, so that the frequentist
``pool`` path never imports PyMC/PyTensor/ArviZ and answers quickly. Errors a user can cause
(:class:`bayesmtor.errors.BayesMTORError`) become one message on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bayesmtor.errors import BayesMTORError
from bayesmtor.pipeline import POSTERIOR_COLUMNS
from bayesmtor.vocabulary import (
    ENGINES,
    INTERVAL_KINDS,
    MEASURES,
    METHODS,
    PI_DISTS,
    SMD_CONVENTIONS,
)

PROG = "bayesmtor"

MEASURE_CHOICES = MEASURES
METHOD_CHOICES = METHODS

POOL_EPILOG = """\
input shapes (a 'study' column plus one of):
  counts:   events_trt, n_trt, events_ctl, n_ctl   (--measure RR, OR or RD)
  ratio_ci: estimate, ci_low, ci_high              (--measure HR, RR, OR or generic)
  log_se:   yi, sei                                (--measure HR, RR, OR or generic)
  means:    mean_trt, sd_trt, n_trt, mean_ctl, sd_ctl, n_ctl   (--measure MD or SMD)
  metafor's names are read too: ai, bi, ci, di or ai, n1i, ci, n2i (counts) and
  m1i, sd1i, n1i, m2i, sd2i, n2i (means)

examples:
  bayesmtor pool trials.csv --measure RR --method MH
  bayesmtor pool trials.csv --measure OR --method REML --hksj --json
  bayesmtor pool ae.csv --measure RR --method DL --by outcome,drug_class --json
  bayesmtor pool bcg.csv --measure RR --subgroup alloc --cumulative year --bias --pi z --json
  bayesmtor pool means.csv --measure SMD --method REML --json    # Hedges' g as metafor

JSON output: one object (a list of objects with --by, each with its group keys) with keys
k, estimate, se, ci_low, ci_high, pval, tau2, tau2_ci_low, tau2_ci_high, tau2_se, tau_ci_low,
tau_ci_high, I2, H2, I2_ci_low, ..., Q, Q_df, Q_pval, pi_low, pi_high, pi_dist, ... (null where
undefined; log scale for ratio measures, the difference itself for RD, MD and SMD); --subgroup, --leave-one-out, --cumulative and --bias
add the sections subgroups (with Q_between), leave_one_out, cumulative, egger and begg.

Bayesian pooling (--bayes): normal-normal random-effects model on the log scale, exact
posterior by quadrature (default) or NUTS (--engine mcmc; --sampler numpy, the default, or
pymc). Keys: engine, measure, ci_prob,
tau_prior, mu_prior, k, mu_mean, mu_median, mu_low, mu_high, tau_median, tau_low, tau_high,
pred_low, pred_high (interval for a new trial's effect), p_mu_below_0, log_marginal_likelihood,
bf_tau0, bf_mu0 (Bayes factors of tau = 0 and of mu = 0; null unless both priors are proper);
with --bma also bma (models FE-null, FE-effect, RE-null, RE-effect with prior and posterior
probabilities, inclusion Bayes factors, model-averaged mu quantiles); with --engine mcmc also
divergences, rhat_max, ess_bulk_min, converged, seed (the --seed given, else the default seed)
and attempt_seeds (the seed of each run, retries of a fit that failed the convergence gate
included), and the Monte Carlo standard error of every number (<key>_mcse).
  bayesmtor pool trials.csv --measure HR --bayes --json
  bayesmtor pool trials.csv --measure RR --bayes --tau-prior half-cauchy:0.5 --mu-prior flat
  bayesmtor pool ae.csv --measure RR --bayes --by outcome --json
  bayesmtor pool trials.csv --measure OR --bayes --engine mcmc --seed 1 --json
  bayesmtor pool trials.csv --measure OR --bayes --bma --interval shortest --json
"""

MAIN_EPILOG = """\
examples:
  bayesmtor run                              # primary plan on the bundled data
  bayesmtor run prior_sensitivity --out sens-output --force
  bayesmtor replicate                        # the 2014 paper's pooled results, recomputed
  bayesmtor plans                            # list the bundled analysis plans
  bayesmtor pool trials.csv --measure RR --method MH
  bayesmtor pool trials.csv --measure HR --bayes --json
  bayesmtor revman review.rm5 --out review-output   # a Cochrane review, re-analysed
  bayesmtor <command> --help
"""

RUN_EPILOG = """\
PLAN is the name of a bundled plan (see 'bayesmtor plans') or the path of a .toml file
(schema: models/README.md). Without PLAN the primary plan runs on the bundled data.

The output folder gets tables/*.csv, idata/*.nc (ArviZ InferenceData; read them with
arviz.from_netcdf(path)), figures/*.png and *.svg, report.html, plan.toml and run.json. It is written atomically: an error, Ctrl-C or SIGTERM leaves no partial folder.
--force replaces DIR only if it is an unchanged earlier bayesmtor output (marker file
.bayesmtor-output); a folder of other files, the current or home folder, and a folder holding
the plan are never replaced. A symbolic link DIR is followed and kept.

examples:
  bayesmtor run
  bayesmtor run primary --out results/primary --force
  bayesmtor run seed_replication --out replication-output
  bayesmtor run ./my_plan.toml --out my-output --quiet
"""

REPLICATE_EPILOG = """\
Recomputes every pooled result printed by the 2014 meta-analysis (Int J Clin Exp Med
2014;7(10):3333-3343) with its own unit (reports) and method (RevMan 5 fixed-effect
Mantel-Haenszel; PFS by inverse variance) and says whether each one matches.

examples:
  bayesmtor replicate
  bayesmtor replicate --json
  bayesmtor replicate --out replication   # also writes replication/replication.csv
"""

PLANS_EPILOG = """\
examples:
  bayesmtor plans
  bayesmtor run prior_sensitivity
"""

BAYES_KEYS = ("k", "mu_mean", *POSTERIOR_COLUMNS)
BF_KEYS = ("log_marginal_likelihood", "bf_tau0", "bf_mu0")
MCMC_KEYS = ("divergences", "rhat_max", "ess_bulk_min", "converged")


class _VersionAction(argparse.Action):
    """``--version``: the version is looked up only when asked for (a quick start-up)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        import bayesmtor

        sys.stdout.write(f"{PROG} {bayesmtor.__version__}\n")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Bayesian meta-analysis of mTOR-inhibitor trials, with a frequentist "
        "cross-check matching R metafor.",
        epilog=MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="show the version")
    _add_verbose(parser, default=0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_pool_parser(sub)
    _add_run_parser(sub)
    _add_replicate_parser(sub)
    _add_plans_parser(sub)
    _add_revman_parser(sub)
    return parser


def _add_verbose(parser: argparse.ArgumentParser, *, default: Any) -> None:
    """``-v/--verbose`` (counted): before or after the command name."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default,
        help="log to stderr (logger 'bayesmtor', PyMC's and PyTensor's messages included): "
        "-v info, -vv debug",
    )


def _subcommand(
    sub: Any, name: str, *, help: str, description: str, epilog: str, handler: Any
) -> argparse.ArgumentParser:
    """A sub-parser ``name`` whose epilog keeps its layout, running ``handler``."""
    parser = sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler)
    _add_verbose(parser, default=argparse.SUPPRESS)  # keeps a -v given before the command
    return parser


def _add_pool_parser(sub: Any) -> None:
    """``bayesmtor pool FILE.csv``: frequentist or Bayesian pooling of one data file."""
    pool = _subcommand(
        sub,
        "pool",
        help="pool one data file (frequentist: FE, MH, Peto, DL, REML, ...)",
        description="Pool the studies of a CSV file on the log scale (ratio measures) and "
        "report the pooled effect, its interval, heterogeneity and tau^2.",
        epilog=POOL_EPILOG,
        handler=_cmd_pool,
    )
    pool.add_argument("file", metavar="FILE.csv", help="input data (CSV)")
    _add_choice(pool, "--measure", MEASURE_CHOICES, required=True, help="effect measure")
    _add_choice(
        pool,
        "--method",
        METHOD_CHOICES,
        default="REML",
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
        help=(
            "pool each group of these columns separately (one vectorised fit); keys as written "
            "in the file, groups in order of first appearance"
        ),
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
    pool.add_argument(
        "--smd-convention",
        choices=SMD_CONVENTIONS,
        default=None,
        help="Hedges' g of --measure SMD: metafor's escalc (default; exact correction) or "
        "RevMan 5's (approximate correction, its variance)",
    )
    pool.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pool.add_argument(
        "--plot",
        metavar="FILE.png|FILE.svg",
        default=None,
        help="also write the forest plot to this file (format from the suffix; an existing "
        "file is replaced atomically); not with --by",
    )
    _add_frequentist_options(pool)
    _add_bayes_options(pool)
    reg = pool.add_argument_group("Meta-regression")
    reg.add_argument(
        "--mods",
        metavar="COL[,COL...]",
        default=None,
        help="meta-regression on these columns of the file (numbers as is, text as 0/1 "
        "columns of its levels; metafor's mods): methods FE, DL, ML, REML; --hksj for "
        "Knapp-Hartung; with --bayes as bayesmeta's bmr()",
    )
    reg.add_argument(
        "--no-intercept",
        action="store_true",
        help="no intercept: the first text moderator gets a coefficient for every level",
    )
    reg.add_argument(
        "--beta-prior",
        default=None,
        metavar="PRIOR",
        help="with --bayes --mods: prior of every coefficient, flat (default) or normal:M,S",
    )


def _add_frequentist_options(pool: argparse.ArgumentParser) -> None:
    """Prediction interval, subgroups, influence and small-study tests of ``pool``."""
    freq = pool.add_argument_group("frequentist analyses")
    freq.add_argument(
        "--pi",
        choices=PI_DISTS,
        default=None,
        help="prediction interval: t on k-2 df (default, Cochrane) or z (metafor predict())",
    )
    freq.add_argument(
        "--subgroup",
        metavar="COL",
        default=None,
        help="fit each level of COL separately and test for subgroup differences (Q_between)",
    )
    freq.add_argument(
        "--leave-one-out", action="store_true", help="refit without each study in turn"
    )
    freq.add_argument(
        "--cumulative", metavar="COL", default=None, help="cumulative meta-analysis ordered by COL"
    )
    freq.add_argument(
        "--bias", action="store_true", help="Egger's regression and Begg's rank correlation tests"
    )


def _add_bayes_options(pool: argparse.ArgumentParser) -> None:
    """The ``Bayesian pooling`` option group of ``pool``."""
    bayes = pool.add_argument_group("Bayesian pooling")
    bayes.add_argument(
        "--bayes",
        action="store_true",
        help="Bayesian random-effects pooling (normal-normal model) instead of frequentist",
    )
    bayes.add_argument(
        "--engine",
        choices=ENGINES,
        default=None,
        help="exact quadrature (default, fast) or NUTS MCMC (see --sampler)",
    )
    bayes.add_argument(
        "--tau-prior",
        default=None,
        metavar="PRIOR",
        help="prior on tau, e.g. half-normal:0.5 (default), half-cauchy:0.5, uniform:0,2, "
        "log-normal:M,S, turner:OUTCOME_TYPE,COMPARISON_TYPE, or the improper uniform and "
        "jeffreys (exact engine)",
    )
    bayes.add_argument(
        "--mu-prior",
        default=None,
        metavar="PRIOR",
        help="prior on the pooled log effect: normal:M,S (default normal:0,4) or flat",
    )
    bayes.add_argument(
        "--seed", type=int, default=None, metavar="N", help="random seed of the MCMC engine"
    )
    bayes.add_argument(
        "--interval",
        choices=INTERVAL_KINDS,
        default=None,
        help="central (default: bayesmtor.config ci_kind) or shortest credible intervals",
    )
    bayes.add_argument(
        "--bma",
        action="store_true",
        help="model averaging over FE-null, FE-effect, RE-null, RE-effect (exact engine, "
        "proper priors)",
    )
    bayes.add_argument(
        "--bma-prior-probs",
        default=None,
        metavar="P,P,P,P",
        help="prior probabilities of FE-null, FE-effect, RE-null, RE-effect (default 0.25 each)",
    )
    bayes.add_argument(
        "--sampler",
        choices=("numpy", "pymc"),
        default=None,
        help="NUTS of the MCMC engine: numpy (default, no compilation) or pymc",
    )


def _add_run_parser(sub: Any) -> None:
    """``bayesmtor run [PLAN]``: run an analysis plan into one output folder."""
    run = _subcommand(
        sub,
        "run",
        help="run an analysis plan and write tables, figures, .nc files and an HTML report",
        description="Run every analysis of a plan (data, effect sizes, frequentist and "
        "Bayesian pooling, MCMC checks, prior sensitivity) and write one output folder.",
        epilog=RUN_EPILOG,
        handler=_cmd_run,
    )
    run.add_argument(
        "plan",
        nargs="?",
        default="primary",
        metavar="PLAN",
        help="bundled plan name or path of a .toml plan (default: primary)",
    )
    run.add_argument(
        "--out",
        default="bayesmtor-output",
        metavar="DIR",
        help="output folder (default: bayesmtor-output)",
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="replace DIR if it is an earlier, unchanged bayesmtor output",
    )
    run.add_argument(
        "--quiet",
        action="store_true",
        help="no progress on stderr (a live display on a terminal, plain lines otherwise)",
    )


def _add_replicate_parser(sub: Any) -> None:
    """``bayesmtor replicate``: recompute the 2014 paper's pooled results."""
    rep = _subcommand(
        sub,
        "replicate",
        help="recompute the pooled results of the 2014 paper and compare",
        description="Recompute every pooled result of the 2014 meta-analysis and compare it "
        "with the printed one.",
        epilog=REPLICATE_EPILOG,
        handler=_cmd_replicate,
    )
    rep.add_argument("--out", default=None, metavar="DIR", help="also write DIR/replication.csv")
    rep.add_argument("--json", action="store_true", help="print JSON records instead of text")


def _add_plans_parser(sub: Any) -> None:
    """``bayesmtor plans``: list the bundled analysis plans."""
    _subcommand(
        sub,
        "plans",
        help="list the bundled analysis plans",
        description="List the analysis plans shipped in models/ (bayesmtor run PLAN).",
        epilog=PLANS_EPILOG,
        handler=_cmd_plans,
    )


REVMAN_EPILOG = """\
FILE is a RevMan 5 file (.rm5) or a RevMan Web data package (.zip). Every analysis (each
outcome overall and each subgroup) is recomputed from the data entered, with RevMan 5's
algorithms, set beside the numbers RevMan stored, and re-analysed by the exact Bayesian engine.
Exit status 0 when every stored number agrees, 1 when one differs, 2 for a bad file.

JSON (--json): a list with one object per analysis: comparison_no, outcome_no, subgroup_no,
comparison, outcome, subgroup, data_type, measure, method, model, k, estimate, ci_low, ci_high,
Q, Q_df, Q_pval, I2, tau2, z, pval, Q_between, Q_between_pval, mu_median, mu_low, mu_high,
tau_median, revman (RevMan's numbers, same keys), match, reason (natural log for ratios).

examples:
  bayesmtor revman review.rm5
  bayesmtor revman review.rm5 --json
  bayesmtor revman package.zip --out review-output --force
  bayesmtor revman review.rm5 --tau-prior half-normal:1 --mu-prior normal:0,10
"""


def _add_revman_parser(sub: Any) -> None:
    """``bayesmtor revman FILE``: RevMan's numbers, recomputed, and the Bayesian re-analysis."""
    rev = _subcommand(
        sub,
        "revman",
        help="re-analyse a RevMan 5 file or RevMan Web data package",
        description="Recompute every analysis of a Cochrane review with RevMan's algorithms, "
        "beside RevMan's stored numbers, and add the Bayesian re-analysis.",
        epilog=REVMAN_EPILOG,
        handler=_cmd_revman,
    )
    rev.add_argument("file", metavar="FILE", help="a .rm5 file or a data-package .zip")
    rev.add_argument("--out", default=None, metavar="DIR", help="also write CSV, JSON, HTML to DIR")
    rev.add_argument(
        "--force", action="store_true", help="replace DIR if it is an unchanged bayesmtor output"
    )
    rev.add_argument("--json", action="store_true", help="print JSON instead of a table")
    rev.add_argument(
        "--tau-prior",
        default=None,
        metavar="PRIOR",
        help="prior on tau, as in pool (default half-normal:0.5, scaled for log ratios)",
    )
    rev.add_argument(
        "--mu-prior",
        default=None,
        metavar="PRIOR",
        help="prior on mu, as in pool (default normal:0,4)",
    )
    rev.add_argument(
        "--ci-prob", type=float, default=None, metavar="P", help="credible interval probability"
    )


def _cmd_revman(args: argparse.Namespace) -> int:
    """``bayesmtor revman FILE``: read, recompute, print, and write ``--out``."""
    from bayesmtor.revman.recompute import revman_reanalysis
    from bayesmtor.revman.report import format_revman, write_revman

    if args.out is not None:  # refuse a bad folder before computing
        from bayesmtor.reporting.outputs import atomic_output_dir

        atomic_output_dir(args.out, force=args.force, protect=(Path(args.file),)).check()
    _priors_of(args)  # refuse a bad prior before reading; None keeps "not given" (MD analyses)
    result = revman_reanalysis(
        args.file, tau_prior=args.tau_prior, mu_prior=args.mu_prior, ci_prob=args.ci_prob
    )
    print(json.dumps(result.records(), indent=2) if args.json else format_revman(result))
    if args.out is not None:
        files = write_revman(result, args.out, force=args.force, protect=(Path(args.file),))
        print(f"wrote {Path(args.out)} ({len(files)} files)", file=sys.stderr)
    return 0 if result.all_match else 1


def _add_choice(
    parser: argparse.ArgumentParser, flag: str, choices: Sequence[str], **options: Any
) -> None:
    """Add an option taking one of ``choices`` (any case), listed as ``{A,B,...}`` in the help."""
    parser.add_argument(
        flag, type=_choice(choices), metavar="{" + ",".join(choices) + "}", **options
    )


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
    """Handler of ``bayesmtor pool`` (frequentist; Bayesian with ``--bayes``): see
    :mod:`bayesmtor._pool_command`."""
    from bayesmtor._pool_command import cmd_pool

    return cmd_pool(args)


class UsageError(BayesMTORError):
    """A combination of command-line options that does not make sense."""


def _priors_of(args: argparse.Namespace) -> tuple[Any, Any]:
    from bayesmtor.bayes.priors import MuPrior, TauPrior

    return TauPrior.coerce(args.tau_prior), MuPrior.coerce(args.mu_prior)


def _print_warnings(caught: list[warnings.WarningMessage], logged: Sequence[str] = ()) -> None:
    """Print each distinct warning (and library log message) once as ``bayesmtor: warning:``."""
    seen = set()
    for msg in [str(w.message) for w in caught] + list(logged):
        msg = " ".join(msg.split())  # one line
        if msg not in seen and "BLAS" not in msg:
            seen.add(msg)
            print(f"{PROG}: warning: {msg}", file=sys.stderr)


@contextlib.contextmanager
def _library_logs(records: list[str]) -> Iterator[None]:
    """Route the log records of PyMC and PyTensor into ``records`` instead of stderr.

    Their progress messages (INFO) are dropped; warnings and errors keep the first line of
    their message, prefixed with the logger's name, for :func:`_print_warnings`.
    """
    import logging

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                first = (record.getMessage().strip().splitlines() or [""])[0]
                records.append(f"{record.name}: {first}")

    handler = _Collect()
    saved = []
    for name in ("pymc", "pytensor"):
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.propagate))
        logger.handlers = [handler]
        logger.propagate = False
    try:
        yield
    finally:
        for logger, handlers, propagate in saved:
            logger.handlers = handlers
            logger.propagate = propagate


def _cmd_run(args: argparse.Namespace) -> int:
    """``bayesmtor run [PLAN]``: load the plan, fit it (``run_plan``), write it (``write_run``)."""
    import time

    from bayesmtor.pipeline.run import run_plan
    from bayesmtor.plans import load_plan
    from bayesmtor.progress import make_progress
    from bayesmtor.reporting.write import check_output, write_run

    t0 = time.perf_counter()
    plan = load_plan(args.plan)
    out = args.out  # a str, so that an empty --out is refused as such
    say = make_progress(quiet=args.quiet)  # live display on a terminal, else lines
    try:
        check_output(out, plan=plan, force=args.force, progress=say)  # refuse before fitting
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*BLAS.*")
            result = run_plan(plan, progress=say)
        files = write_run(result, out, force=args.force, progress=say)
    finally:
        if say is not None:
            say.close()
    status = ", ".join(f"{v} {k}" for k, v in result.status_counts().items())
    print(
        f"{Path(out)}: plan '{plan.name}', {len(result.analyses)} analyses ({status}), "
        f"{len(files)} files in {time.perf_counter() - t0:.1f} s"
    )
    print(f"report: {Path(out) / 'report.html'}")
    for a in result.analyses:
        if a.status not in ("ok",):
            print(f"  {a.id}: {a.status}" + (f" ({a.reason})" if a.reason else ""))
    return 0


def _cmd_replicate(args: argparse.Namespace) -> int:
    """``bayesmtor replicate``."""
    from bayesmtor import replication
    from bayesmtor.reporting.atomic import atomic_write_text

    path = _replication_path(args.out) if args.out is not None else None  # refuse early
    result = replication.replicate()
    if args.json:
        records = [
            {k: _clean(v) for k, v in row.items()} for row in result.table.to_dict(orient="records")
        ]
        print(json.dumps(records, indent=2))
    else:
        print(replication.format_replication(result))
    if path is not None:
        atomic_write_text(path, result.to_frame().to_csv(index=False, lineterminator="\n"))
        print(f"wrote {path}", file=sys.stderr)
    return replication.replication_exit_status(result)


def _replication_path(out: str) -> Path:
    """``OUT/replication.csv``, refused if that name holds anything but an earlier table.

    ``replicate --out`` deletes nothing; it writes one file, atomically, and overwrites only a
    regular file whose header is that of a replication table (first column ``result_id``).
    """
    from bayesmtor.errors import OutputError

    if not out.strip():
        raise OutputError("--out is empty; give the name of a folder, e.g. --out replication")
    path = Path(out) / "replication.csv"
    if path.is_symlink():
        raise OutputError(
            f"'{path}' is a symbolic link; bayesmtor writes a regular file there and does not "
            "replace links: remove the link or choose another --out"
        )
    if not path.exists():
        return path
    if not path.is_file():
        raise OutputError(f"'{path}' exists and is not a file; choose another --out")
    try:
        with open(path, "rb") as handle:
            header = handle.readline()
    except OSError as exc:
        raise OutputError(f"cannot read '{path}': {exc.strerror or exc}") from exc
    if not header.startswith(b"result_id,"):
        raise OutputError(
            f"'{path}' exists and is not a replication table written by bayesmtor; "
            "move it away or choose another --out"
        )
    return path


def _cmd_plans(args: argparse.Namespace) -> int:
    """``bayesmtor plans``: name, unit, number of analyses and description of each plan."""
    import textwrap

    from bayesmtor.plans import list_plans, load_plan

    for name in list_plans():
        plan = load_plan(name)
        engines = sorted({a.bayes for a in plan.analyses})
        print(
            f"{name}: unit={plan.unit}, {len(plan.analyses)} analyses, "
            f"engine={'+'.join(engines)}, frequentist={plan.frequentist.method}"
        )
        for line in textwrap.wrap(" ".join(plan.description.split()), width=92):
            print(f"    {line}")
    return 0


#: Exit status when the reader of standard output went away (``bayesmtor replicate | head -1``):
#: 128 + 13, as a shell reports a process ended by SIGPIPE (what ``yes | head -1`` gives).
EXIT_CLOSED_PIPE = 141


def _closed_pipe() -> int:
    """End quietly after a closed pipe: nothing more is written (the streams now point to
    the null device, so that Python's final flush raises nothing) and the status is 141."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (AttributeError, OSError, ValueError):  # not a real file (tests, notebooks)
            pass
    os.close(devnull)
    return EXIT_CLOSED_PIPE


#: Exit status after Ctrl-C (SIGINT): 128 + 2, as a shell reports it.
EXIT_INTERRUPTED = 130

#: Exit status after SIGTERM: 128 + 15, as a shell reports a process SIGTERM ended.
EXIT_TERMINATED = 143


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C (clean-up included)."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`_Terminated`; the old handler is restored.

    A second SIGTERM is ignored, so that it cannot cut the clean-up of the first short. A
    worker process forked meanwhile inherits the handler and unwinds the same way.
    """
    sigterm = getattr(signal, "SIGTERM", None)
    if sigterm is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum: int, _frame: Any) -> None:
        if not received:
            received.append(signum)
            raise _Terminated

    previous = signal.signal(sigterm, handler)
    try:
        yield
    finally:
        signal.signal(sigterm, previous if previous is not None else signal.SIG_DFL)


@contextlib.contextmanager
def _option_settings(args: argparse.Namespace) -> Iterator[None]:
    """Options that set a config default for one command (``--smd-convention``), restored after."""
    value = getattr(args, "smd_convention", None)
    if value is None:
        yield
        return
    from bayesmtor import config

    if getattr(args, "measure", None) != "SMD":
        raise UsageError("--smd-convention applies only with --measure SMD")
    previous = config.get("smd_convention")
    config.set("smd_convention", value)
    try:
        yield
    finally:
        config.set("smd_convention", previous)


def _one_blas_thread() -> None:
    """Ask OpenBLAS (NumPy's linear algebra) for one thread in a fresh command process,
    unless the environment says otherwise: the engines are elementwise NumPy, their
    parallel work runs in processes of their own (MCMC workers, exact-engine workers), and a
    BLAS thread pool would only cost start-up time (0.06 s of CPU at import) and compete
    with them for the cores. A process that imported NumPy already is left as it is."""
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bayesmtor`` command; returns the exit status."""
    _one_blas_thread()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (status 2)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    from bayesmtor.logs import configure_cli_logging

    configure_cli_logging(args.verbose)
    try:
        with _sigterm_raises(), _option_settings(args):
            status = int(handler(args))
            sys.stdout.flush()  # a closed pipe is noticed here, not at exit
            return status
    except BrokenPipeError:
        return _closed_pipe()
    except BayesMTORError as exc:
        message = " ".join(str(exc).split())  # one line
        source = getattr(args, "file", None)
        if source:
            name = str(source).replace("\\", "/").rsplit("/", 1)[-1]
            if name not in message:
                message = f"{name}: {message}"
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    except _Terminated:
        print(f"{PROG}: terminated by SIGTERM; no partial output was left", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; no partial output was left", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
