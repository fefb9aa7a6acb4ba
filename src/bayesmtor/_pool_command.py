"""``bayesmtor pool``: one file pooled, frequentist or Bayesian, printed as text or JSON.

The command line's parser (:mod:`bayesmtor.cli`) calls :func:`cmd_pool`; everything here
parses nothing and fits nothing itself -- it checks the combination of options, reads the
file once, calls the engines and prints. The path imports neither pandas nor the sampling
and plotting stacks unless an option needs them (``tests/test_imports.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Iterable
from typing import Any

from bayesmtor.cli import (
    BAYES_KEYS,
    BF_KEYS,
    PROG,
    UsageError,
    _library_logs,
    _print_warnings,
    _priors_of,
)


def cmd_pool(args: argparse.Namespace) -> int:
    """Handler of ``bayesmtor pool`` (frequentist; Bayesian with ``--bayes``).

    Python's cycle collector is paused while the vectorised engines run: reading a file and
    writing its JSON make hundreds of thousands of lists, tuples and dicts but no reference
    cycles, and each collection would traverse them all again (about 8% of a 10,000-group
    pool). The MCMC engine, whose model graphs hold cycles, keeps it running.
    """
    import gc

    if args.engine == "mcmc" or not gc.isenabled():
        return _cmd_pool(args)
    gc.disable()
    try:
        return _cmd_pool(args)
    finally:
        gc.enable()


def _cmd_pool(args: argparse.Namespace) -> int:
    _check_plot_option(args)
    if args.mods is not None:
        return _cmd_pool_mods(args)
    if args.no_intercept or args.beta_prior is not None:
        raise UsageError("--no-intercept and --beta-prior apply only with --mods")
    sections = {
        "subgroup": args.subgroup,
        "leave1out": args.leave_one_out or None,
        "cumulative_by": args.cumulative,
        "bias": args.bias or None,
    }
    extra = [f"--{k.replace('_', '-')}" for k in _SECTION_FLAGS if getattr(args, k)]
    if extra and (args.bayes or args.by):
        raise UsageError(f"{', '.join(extra)} cannot be combined with --bayes or --by")
    if args.pi and args.bayes:
        raise UsageError("--pi applies to frequentist fits; the Bayesian interval is theta_new's")
    if args.bayes:
        return _cmd_pool_bayes(args)
    used = [
        flag
        for flag, value in (
            ("--engine", args.engine),
            ("--tau-prior", args.tau_prior),
            ("--mu-prior", args.mu_prior),
            ("--seed", args.seed),
            ("--interval", args.interval),
            ("--bma", args.bma or None),
            ("--bma-prior-probs", args.bma_prior_probs),
            ("--sampler", args.sampler),
        )
        if value is not None
    ]
    if used:
        verb = "applies" if len(used) == 1 else "apply"
        raise UsageError(f"{', '.join(used)} {verb} only with --bayes; add --bayes")

    from bayesmtor import frequentist
    from bayesmtor.frequentist.analyses import pool_group_columns
    from bayesmtor.inputs import read_meta_data

    by = [b.strip() for b in args.by.split(",") if b.strip()] if args.by else None
    meta = read_meta_data(args.file, by=by)
    by_cols = list(meta.by) if by else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if by_cols:
            table, n_groups = pool_group_columns(
                meta,
                by=by_cols,
                measure=args.measure,
                method=args.method,
                test="knha" if args.hksj else "z",
                ci_prob=args.ci_prob,
                mh_correction=args.mh_correction,
                pi=args.pi,
            )
        else:
            fit = {
                "measure": args.measure,
                "method": args.method,
                "test": "knha" if args.hksj else "z",
                "ci_prob": args.ci_prob,
                "mh_correction": args.mh_correction,
                "pi": args.pi,
            }
            result = frequentist.meta_analysis(meta, **fit)
            from bayesmtor.frequentist import sensitivity

            wanted = {k: v for k, v in sections.items() if v is not None}
            extras = sensitivity.pool_sections(meta, **fit, **wanted) if wanted else {}
    seen = set()
    for w in caught:
        msg = str(w.message)
        if msg not in seen:
            seen.add(msg)
            print(f"{PROG}: warning: {msg}", file=sys.stderr)

    from bayesmtor import schema

    if by_cols:
        if args.json:
            rows = schema.frequentist_table_columns(table, n_groups)
            keys = [key for key in _new_keys(table, rows) if key != "excluded"]
            merged = {**table, **{key: rows[key] for key in keys}, **_smd_key(args)}
            _print_json(schema.column_records(merged, n_groups))
        else:
            print(_group_table(table, n_groups, by_cols, args.measure))
        return 0
    if args.plot and args.subgroup:
        _write_subgroup_plot(args, meta, fit)
    elif args.plot:
        _write_plot(args, result)
    if args.json:
        record = result.to_dict()
        row = schema.json_record(schema.pooled_row(result))
        record.update({key: row[key] for key in _new_keys(record, row)})
        _print_json({**record, **_smd_key(args), **extras})
    else:
        from bayesmtor._text import format_table

        print(repr(result))
        print()
        header, rows = result.summary_rows()
        print(format_table(["scale", *header], [[k, *v] for k, v in rows.items()], left=1))
        if extras:
            print()
            print(sensitivity.format_sections(extras, args.measure))
    return 0


_SECTION_FLAGS = ("subgroup", "leave_one_out", "cumulative", "bias")


def _smd_key(args: argparse.Namespace) -> dict[str, str]:
    """``smd_convention`` of an SMD (the Hedges' g of metafor or of RevMan), for the JSON."""
    if args.measure != "SMD":
        return {}
    from bayesmtor import config

    return {"smd_convention": config.get("smd_convention")}


def _cmd_pool_mods(args: argparse.Namespace) -> int:
    """``bayesmtor pool --mods``: meta-regression (frequentist; exact or MCMC with --bayes)."""
    from bayesmtor.inputs import read_meta_data

    wrong = [f for f, v in (("--by", args.by), ("--mu-prior", args.mu_prior)) if v is not None]
    wrong += [f"--{k.replace('_', '-')}" for k in (*_SECTION_FLAGS, "pi") if getattr(args, k)]
    if args.bayes and (args.method != "REML" or args.hksj):
        wrong.append("--method/--hksj (frequentist)")
    if not args.bayes:
        wrong += [f for f, v in (("--beta-prior", args.beta_prior), ("--engine", args.engine),
                                 ("--tau-prior", args.tau_prior)) if v is not None]  # fmt: skip
    if wrong:
        raise UsageError(f"{', '.join(wrong)} cannot be used with --mods here")
    if args.bayes:
        from bayesmtor.bayes.priors import default_prior_problem

        problem = default_prior_problem(args.measure, args.tau_prior, "flat", ("--tau-prior", ""))
        if problem:
            raise UsageError(problem)
    meta = read_meta_data(args.file)
    opts = {"intercept": not args.no_intercept, "ci_prob": args.ci_prob, "measure": args.measure}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if args.bayes:
            from bayesmtor.bayes.regression import bayes_regression

            result = bayes_regression(
                meta, args.mods, engine=args.engine or "exact", tau_prior=args.tau_prior,
                beta_prior=args.beta_prior, random_seed=args.seed, **opts,
            )  # fmt: skip
        else:
            from bayesmtor.frequentist.regression import rma_regression

            test = "knha" if args.hksj else "z"
            result = rma_regression(meta, args.mods, method=args.method, test=test, **opts)
    _print_warnings(caught)
    if args.json:
        _print_json(result.to_dict())
    else:
        print(result)
    return 0


def _check_plot_option(args: argparse.Namespace) -> None:
    """``--plot``: a .png or .svg file, and one meta-analysis (refused with ``--by``)."""
    if args.plot is None:
        return
    from bayesmtor.reporting.result_plots import check_plot_path

    check_plot_path(args.plot)
    if getattr(args, "mods", None) is not None:
        raise UsageError("--plot draws a forest plot, not a meta-regression; drop --mods")
    if args.by:
        raise UsageError(
            "--plot draws the forest plot of one meta-analysis; with --by, pool each group "
            "from its own file, or draw each group with result.plot_forest() in Python"
        )


def _write_plot(args: argparse.Namespace, result: Any) -> None:
    """Write the forest plot of ``result`` to ``--plot`` (the path on stderr)."""
    from pathlib import Path

    from bayesmtor.reporting.result_plots import write_forest

    title = f"{Path(args.file).name}: {args.measure}"
    path = write_forest(args.plot, result, title=title)
    print(f"{PROG}: forest plot written to {path}", file=sys.stderr)


def _write_subgroup_plot(args: argparse.Namespace, meta: Any, fit: dict[str, Any]) -> None:
    """``--plot`` with ``--subgroup``: the subgroup forest plot (subtotals, the test for
    subgroup differences) to ``--plot`` (the path on stderr)."""
    from pathlib import Path

    from bayesmtor.reporting.result_plots import write_subgroup_forest

    title = f"{Path(args.file).name}: {args.measure} by {args.subgroup}"
    path = write_subgroup_forest(args.plot, meta, args.subgroup, title=title, **fit)
    print(f"{PROG}: subgroup forest plot written to {path}", file=sys.stderr)


def _new_keys(have: Any, schema_keys: Any) -> list[str]:
    """The schema keys a record does not have yet (documented keys keep their meaning)."""
    return [key for key in schema_keys if key not in set(have)]


def _print_json(records: dict[str, Any] | Iterable[dict[str, Any]]) -> None:
    """Print a record, or a list of records, as ``json.dumps(.., indent=2)`` would.

    A list is written a chunk of records at a time (never held as one text), so thousands of
    groups cost no more memory than a chunk; the text is that of
    ``json.dumps(list(records), indent=2)``.
    """
    if isinstance(records, dict):
        print(_json_text([records], ""))
        return
    out = sys.stdout
    nested = getattr(records, "nested", None)  # schema.ColumnRecords knows its nested keys
    if nested == frozenset():  # columns of scalars: assembled from each column's texts
        _print_columns_json(records, out)
        return
    opened = False
    chunk: list[dict[str, Any]] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == _JSON_CHUNK:
            out.write(",\n  " if opened else "[\n  ")
            out.write(_json_text(chunk, "  ", nested))
            opened, chunk = True, []
    if chunk:
        out.write(",\n  " if opened else "[\n  ")
        out.write(_json_text(chunk, "  ", nested))
        opened = True
    out.write("\n]\n" if opened else "[]\n")


_JSON_CHUNK = 512  # records per call of the C encoder


def _print_columns_json(records: Any, out: Any) -> None:
    """A :class:`~bayesmtor.schema.ColumnRecords` of scalars as ``json.dumps(list, indent=2)``
    writes it: each column's values encoded at once, each record joined from its key
    prefixes and value texts, a block of rows at a time, on two cores where possible."""
    import operator

    keys = list(records.columns)
    prefixes = ["\n    " + json.dumps(key) + ": " for key in keys]
    if records.n == 0 or not keys:  # no rows (columns without keys give no records either)
        out.write("[]\n")
        return
    from bayesmtor._forked import write_blocks

    step = min(records.chunk, _JSON_BLOCK)

    def block(i: int) -> str:
        start = i * step
        texts = records.json_texts(start, min(start + step, records.n))
        lines = [
            "{" + ",".join(map(operator.add, prefixes, row)) + "\n  }"
            for row in zip(*texts, strict=True)
        ]
        return ("[\n  " if i == 0 else ",\n  ") + ",\n  ".join(lines)

    write_blocks(-(-records.n // step), block, out.write)
    out.write("\n]\n")


#: Records per block of the JSON text of columns: blocks alternate between this process and
#: a forked one (:func:`bayesmtor._forked.write_blocks`), so memory holds about two blocks.
_JSON_BLOCK = 512


def _json_text(
    records: list[dict[str, Any]], indent: str, nested: frozenset[str] | None = None
) -> str:
    """The records as ``json.dumps(record, indent=2)`` reads at the nesting level ``indent``,
    joined by ``,`` and a line break.

    Records of scalars (and empty lists) are encoded by the C encoder in one call, with the
    line breaks of ``indent=2`` as its separators -- the text is the same, since no encoded
    string holds a raw line break, so ``},`` + line break + the separator's indent + ``{``
    only occurs between records. Records holding a non-empty list or object go through
    ``json.dumps(indent=2)`` itself. ``nested``: the only keys that may hold one (None: any).
    """
    if nested is None:
        flat = all(
            _FLAT_TYPES.issuperset(map(type, r.values()))
            or not any(type(v) in (dict, list) and v for v in r.values())
            for r in records
        )
    else:
        flat = not any(r[key] for r in records for key in nested)
    if not flat or not all(records):
        return (",\n" + indent).join(
            json.dumps(record, indent=2).replace("\n", "\n" + indent) for record in records
        )
    inner = indent + "  "
    body = json.dumps(records, separators=(",\n" + inner, ": "))[1:-1]
    body = body.replace("},\n" + inner + "{", "\n" + indent + "},\n" + indent + "{\n" + inner)
    return "{\n" + inner + body[1:-1] + "\n" + indent + "}"


_FLAT_TYPES = frozenset({str, int, float, bool, type(None)})


def _group_table(table: dict[str, Any], n: int, by_cols: list[str], measure: str) -> str:
    """Readable per-group table (ratio scale for ratio measures), one line per group."""
    import numpy as np

    from bayesmtor._text import format_table
    from bayesmtor.frequentist import RATIO_MEASURES

    ratio = measure in RATIO_MEASURES
    f = np.exp if ratio else (lambda x: x)
    columns: dict[str, Any] = {col: table[col] for col in by_cols}
    columns["k"] = np.broadcast_to(table["k"], (n,))
    columns[measure if ratio else "estimate"] = f(np.asarray(table["estimate"], float))
    columns["ci_low"] = f(np.asarray(table["ci_low"], float))
    columns["ci_high"] = f(np.asarray(table["ci_high"], float))
    for col in ("pval", "I2", "tau2", "Q_pval"):
        columns[col] = np.asarray(table[col], float)
    rows = list(zip(*(list(v) for v in columns.values()), strict=True))
    return format_table(list(columns), rows, left=len(by_cols))


def _cmd_pool_bayes(args: argparse.Namespace) -> int:
    """``bayesmtor pool --bayes``: normal-normal model, exact (vectorised) or MCMC."""
    import numpy as np

    from bayesmtor.bayes.priors import MuPrior, TauPrior, default_prior_problem
    from bayesmtor.effects import escalc
    from bayesmtor.inputs import group_codes, read_meta_data

    if args.method != "REML" or args.hksj or args.mh_correction != "revman":
        raise UsageError(
            "--method, --hksj and --mh-correction are frequentist options; drop them with --bayes"
        )
    engine = args.engine or "exact"
    if (args.bma or args.bma_prior_probs) and engine != "exact":
        raise UsageError("--bma needs the exact engine (drop --engine mcmc)")
    if args.bma_prior_probs and not args.bma:
        raise UsageError("--bma-prior-probs is an option of --bma; add --bma")
    tau_prior = TauPrior.coerce(args.tau_prior)
    mu_prior = MuPrior.coerce(args.mu_prior)
    by = [b.strip() for b in args.by.split(",") if b.strip()] if args.by else None
    meta = read_meta_data(args.file, by=by)
    by_cols = list(meta.by) if by else []
    measure = args.measure
    shape_measure = measure
    if meta.shape != "counts" and measure == "RD":
        raise UsageError("--measure RD needs 2x2 counts (events_trt, n_trt, events_ctl, n_ctl)")
    es = escalc(meta, shape_measure)
    problem = default_prior_problem(
        measure, args.tau_prior, args.mu_prior, ("--tau-prior", "--mu-prior")
    )
    if problem:
        raise UsageError(problem)
    table = es.columns
    if by_cols:
        # One code per row, groups numbered in order of first appearance, keys exactly as read
        # (the rule of frequentist.pool_groups too).
        codes_arr, groups = group_codes(table, by_cols)
    else:
        groups, codes_arr = [()], np.zeros(len(table["study"]), dtype=np.intp)
    included = np.asarray(table["included"], dtype=bool)
    dropped = [(s, r) for s, r in es.dropped]
    for s, r in dropped:
        print(f"{PROG}: warning: {s} excluded: {r}", file=sys.stderr)
    from bayesmtor import config

    ci = float(config.get("ci_prob", args.ci_prob))
    base = {
        "engine": engine,
        "measure": measure,
        **_smd_key(args),
        "ci_prob": ci,
        "ci_kind": config.get("ci_kind", args.interval),
        "tau_prior": tau_prior.label or repr(tau_prior),
        "mu_prior": mu_prior.label or repr(mu_prior),
    }
    excluded = _excluded_by_group(table, codes_arr, included, dropped, len(groups))
    fit = _pool_exact if engine == "exact" else _pool_mcmc
    head, rows = fit(table, codes_arr, included, groups, by_cols, args, excluded)
    frame = {col: [key[j] for key in groups] for j, col in enumerate(by_cols)}
    frame.update(base)
    frame.update(head)
    frame.update({key: rows[key] for key in _new_keys(frame, rows)})
    if args.plot:
        _write_plot(args, _bayes_result(args, es, engine, tau_prior, mu_prior))
    from bayesmtor import schema

    if args.json:
        records = schema.column_records(frame, len(groups))
        _print_json(records if by_cols else next(iter(records)))
        return 0
    _print_bayes_table(frame, len(groups), by_cols, engine, base, ci, measure)
    return 0


def _bayes_result(args: argparse.Namespace, es: Any, engine: str, tau_prior, mu_prior) -> Any:
    """The one Bayesian fit of ``pool --bayes`` as a ``BayesMetaResult``, for ``--plot``
    (the MCMC fit already made; the exact posterior recomputed, in milliseconds)."""
    from bayesmtor.api import BayesMetaResult
    from bayesmtor.studies import StudyData

    if engine == "mcmc":
        post = args.mcmc_fit
    else:
        import numpy as np

        from bayesmtor.bayes.exact import exact_posterior

        cols = es.columns
        inc = np.asarray(cols["included"], dtype=bool)
        post = exact_posterior(
            np.asarray(cols["yi"], dtype=float)[inc],
            np.asarray(cols["sei"], dtype=float)[inc],
            tau_prior=tau_prior,
            mu_prior=mu_prior,
            labels=[str(s) for s in np.asarray(cols["study"])[inc].tolist()],
        )
    return BayesMetaResult(
        engine=engine,
        measure=args.measure,
        posterior=post,
        excluded=tuple(es.dropped),
        data=StudyData.from_effect_sizes(es),
    )


def _excluded_by_group(table: Any, codes: Any, included: Any, dropped: Any, m: int) -> list:
    """The (study, reason) pairs each group left out, in file order."""
    out: list[list[tuple[str, str]]] = [[] for _ in range(m)]
    reasons = dict(dropped)
    study = table["study"]
    for i in (~included).nonzero()[0].tolist():
        label = str(study[i])
        out[int(codes[i])].append((label, reasons.get(label, "excluded")))
    return [tuple(e) for e in out]


def _typical_variance(sei: Any, codes: Any, m: int) -> Any:
    """Higgins-Thompson typical within-study variance per group (long format), for I2."""
    import numpy as np

    w = 1.0 / np.asarray(sei, dtype=float) ** 2
    top = np.zeros(m)
    np.maximum.at(top, codes, w)
    u = w / np.where(top > 0, top, 1.0)[codes]
    k = np.bincount(codes, minlength=m)
    su = np.bincount(codes, weights=u, minlength=m)
    cross = su**2 - np.bincount(codes, weights=u**2, minlength=m)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(k > 1, (k - 1) * su / cross, 1.0 / su) / top


def _pool_exact(table, codes, included, groups, by_cols, args, excluded) -> tuple[Any, Any]:
    """The exact engine on every group at once: the documented columns and the schema's."""
    import numpy as np

    from bayesmtor import schema
    from bayesmtor.bayes.exact import exact_batch_group_columns

    m = len(groups)
    # The included studies in long format (file order within each group): the engine
    # buckets the groups by size, so one large group never pads all the others.
    inc_codes = np.asarray(codes)[included]
    sizes = np.bincount(inc_codes, minlength=m)
    if sizes.max(initial=0) == 0:
        raise UsageError("no study left to pool after computing effect sizes (k = 0)")
    sei = np.asarray(table["sei"], dtype=float)[included]
    ci = _ci_of(args)
    tau_prior, mu_prior = _priors_of(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = exact_batch_group_columns(
            np.asarray(table["yi"], dtype=float)[included],
            sei,
            inc_codes,
            n_groups=m,
            tau_prior=tau_prior,
            mu_prior=mu_prior,
            ci_prob=ci,
            interval=args.interval,
            bma=args.bma,
            bma_prior_probs=_bma_probs(args),
        )
    _print_warnings(caught)
    head = {key: out[key] for key in (*BAYES_KEYS, "quad_error", *BF_KEYS)}
    if args.bma:
        from bayesmtor.bayes.model_averaging import bma_object

        names = list(out)
        head["bma"] = [
            bma_object(dict(zip(names, row, strict=True)), _bma_probs(args))
            for row in zip(*(out[name].tolist() for name in names), strict=True)
        ]
    head["k"] = sizes.astype(int)
    rows = schema.exact_table_columns(
        out,
        m,
        measure=args.measure,
        ci_prob=ci,
        tau_prior=tau_prior,
        mu_prior=mu_prior,
        s2_typical=_typical_variance(sei, inc_codes, m),
    )
    rows["excluded"] = excluded
    return head, rows


def _pool_mcmc(table, codes, included, groups, by_cols, args, excluded) -> tuple[Any, Any]:
    """One PyMC fit per group: the documented columns and the schema's."""
    import numpy as np

    from bayesmtor import schema
    from bayesmtor.bayes.mcse import draw_summary, posterior_draws, schema_values
    from bayesmtor.bayes.pymc_models import fit_normal_normal
    from bayesmtor.vocabulary import is_ratio

    tau_prior, mu_prior = _priors_of(args)
    ci, measure = _ci_of(args), args.measure
    heads, rows = [], []
    for g, key in enumerate(groups):
        sel = (codes == g) & included
        if not sel.any():
            raise UsageError(
                f"group {dict(zip(by_cols, key, strict=True))} has no study left to pool (k = 0)"
            )
        logged: list[str] = []
        with warnings.catch_warnings(record=True) as caught, _library_logs(logged):
            warnings.simplefilter("always")
            res = fit_normal_normal(
                np.asarray(table["yi"], dtype=float)[sel],
                np.asarray(table["sei"], dtype=float)[sel],
                labels=[str(s) for s in np.asarray(table["study"])[sel].tolist()],
                measure=measure if is_ratio(measure) else None,
                tau_prior=tau_prior,
                mu_prior=mu_prior,
                random_seed=args.seed,
                sampler=args.sampler,
            )
        _print_warnings(caught, logged)
        args.mcmc_fit = res  # the fit of --plot (one group: --plot refuses --by)
        d = res.diagnostics
        # every number with its Monte Carlo standard error, from the draws alone
        drawn = draw_summary(posterior_draws(res.idata), ci, args.interval)
        heads.append(
            {
                "k": int(sel.sum()),
                **{k: v for k, v in drawn.items() if not k.startswith(("mu_sd", "I2"))},
                **dict.fromkeys(BF_KEYS),  # no marginal likelihood from MCMC draws
                "divergences": d.get("divergences"),
                "rhat_max": d.get("rhat_max"),
                "ess_bulk_min": d.get("ess_bulk_min"),
                "converged": res.converged,
                "seed": d.get("random_seed"),  # the seed given (or the default), not a retry's
                "attempt_seeds": d.get("attempt_seeds"),
            }
        )
        row = schema.pooled_row(res, ci_prob=ci, measure=measure, excluded=excluded[g])
        rows.append({**row, **schema_values(drawn)})
    return _as_columns(heads), _as_columns(rows)


def _as_columns(records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Records with the same keys as columns (one list of values per key)."""
    return {key: [r[key] for r in records] for key in records[0]} if records else {}


def _bma_probs(args: argparse.Namespace) -> Any:
    """The four prior model probabilities of --bma-prior-probs (None: the config default)."""
    if not args.bma_prior_probs:
        return None
    try:
        return [float(p) for p in args.bma_prior_probs.split(",")]
    except ValueError:
        raise UsageError(
            f"--bma-prior-probs takes four numbers separated by commas (FE-null, FE-effect, "
            f"RE-null, RE-effect), got {args.bma_prior_probs!r}"
        ) from None


def _ci_of(args: argparse.Namespace) -> float:
    from bayesmtor import config

    return float(config.get("ci_prob", args.ci_prob))


def _print_bayes_table(frame, n, by_cols, engine, base, ci, measure) -> None:
    """The readable table of ``pool --bayes`` (and the ratio scale for ratio measures);
    ``frame`` maps column names to ``n`` values each (or one value for all)."""
    import numpy as np

    from bayesmtor._text import column_table
    from bayesmtor.vocabulary import is_ratio

    ratio = is_ratio(measure) or measure == "generic"
    keys = [*by_cols, *BAYES_KEYS]
    if engine == "mcmc":
        keys = [*by_cols, *(k for b in BAYES_KEYS for k in (b, f"{b}_mcse") if k in frame)]
        keys += ["divergences", "rhat_max", "ess_bulk_min"]
    scale = "log" if ratio else "difference"
    left = len(by_cols)
    print(
        f"Bayesian random-effects pooling ({engine}), tau ~ {base['tau_prior']}, "
        f"mu ~ {base['mu_prior']}; {100 * ci:g}% {base['ci_kind']} intervals, {scale} scale"
    )
    print(column_table({key: frame[key] for key in keys}, n, left=left))
    bf = np.asarray([frame[key] for key in BF_KEYS], dtype=float)
    if np.isfinite(bf).any():
        print()
        print("Bayes factors (bf_tau0 = p(y | tau = 0) / p(y), bf_mu0 = p(y | mu = 0) / p(y)):")
        cols = {key: frame[key] for key in (*by_cols, *BF_KEYS)}
        print(column_table(cols, n, left=left, float_format="{:.6g}"))
    if "bma" in frame:
        from bayesmtor._frames import frame_of
        from bayesmtor.bayes.model_averaging import bma_text

        print()
        print(bma_text(frame_of({key: frame[key] for key in (*by_cols, "bma")}), by_cols))
    if ratio:
        label = measure if measure != "generic" else "ratio"
        show = {key: frame[key] for key in (*by_cols, "k")}
        for name, col in (
            (f"{label} median", "mu_median"),
            ("low", "mu_low"),
            ("high", "mu_high"),
            ("pred low", "pred_low"),
            ("pred high", "pred_high"),
        ):
            show[name] = np.exp(np.asarray(frame[col], dtype=float))
        print()
        print(f"ratio scale ({label}):")
        print(column_table(show, n, left=left))
