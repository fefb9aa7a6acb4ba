"""The exact engine's large batches on several cores: rows split across forked processes.

Every analysis of a batch is computed on its own (the sums of the engine run along the
studies or nodes of one analysis, never across analyses, and each bucket keeps its padded
width), so splitting a bucket's rows between processes gives the same numbers, bit for bit,
as one process; ``tests/test_exact_chunks.py`` checks it. Workers are forked from the caller
(numpy and the engine already imported, the data inherited rather than sent), which costs a
few milliseconds; they are used only for batches of at least ``exact_parallel_min``
analyses, only where ``fork`` exists, and only from a process without other threads (forking
a threaded process can deadlock).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bayesmtor import config
from bayesmtor._forked import can_fork, cores, share

#: The buckets of the batch being computed, inherited by the forked workers.
_JOBS: list[tuple[Any, ...]] = []


def processes(n_analyses: int) -> int:
    """How many processes share a batch of ``n_analyses`` analyses (1: the caller alone)."""
    want = int(config.get("exact_processes"))
    if n_analyses < int(config.get("exact_parallel_min")) or want == 1 or not can_fork():
        return 1
    return max(1, min(want or 8, cores(), n_analyses))


def run_buckets(
    fill: Callable[..., None],
    names: Sequence[str],
    out: dict[str, np.ndarray],
    jobs: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    failed: list[np.ndarray],
    n_proc: int,
) -> None:
    """``fill(part_out, local_rows, y, v, mask, failed)`` for every bucket ``(rows, y, v,
    mask)`` of ``jobs``, writing ``out[name][rows]``; with ``n_proc > 1`` each bucket's rows are
    split into ``n_proc`` parts computed in forked processes, and their warnings re-issued."""
    if n_proc <= 1:
        for rows, y, v, mask in jobs:
            _fill_rows(fill, names, out, rows, y, v, mask, failed)
        return
    parts = []  # n_proc slices of each bucket, dealt out to the processes in turn
    for rows, y, v, mask in jobs:
        for sel in np.array_split(np.arange(rows.size), n_proc):
            if sel.size:
                parts.append((rows[sel], y[sel], v[sel], mask[sel]))
    from bayesmtor.errors import EstimationError

    _JOBS[:] = [(fill, names, *part) for part in parts]
    try:  # this process computes its slices while the forked ones compute theirs
        results = share(_work, len(parts), n_proc)
    except ChildProcessError:
        raise EstimationError(
            "a worker process of the exact engine ended abruptly (killed, or out of memory); "
            "set config exact_processes = 1 to compute the batch in one process"
        ) from None
    finally:
        _JOBS.clear()
    for (rows, *_), (values, part_failed, caught) in zip(parts, results, strict=True):
        for name, col in values.items():
            out[name][rows] = col
        failed.extend(part_failed)
        for message in caught:
            warnings.warn(message, stacklevel=3)


def _fill_rows(fill, names, out, rows, y, v, mask, failed) -> None:
    part = {name: np.full(rows.size, np.nan) for name in names}
    fill(part, np.arange(rows.size), y, v, mask, failed)
    for name, col in part.items():
        out[name][rows] = col


def _work(index: int) -> tuple[dict[str, np.ndarray], list[np.ndarray], list[Warning]]:
    """One part, in a worker: its columns, its unconverged error estimates, its warnings."""
    fill, names, rows, y, v, mask = _JOBS[index]
    failed: list[np.ndarray] = []
    part = {name: np.full(rows.size, np.nan) for name in names}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fill(part, np.arange(rows.size), y, v, mask, failed)
    return part, failed, [w.message for w in caught]
