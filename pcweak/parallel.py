"""Scene-level parallelism: ``process_map`` runs one function over many items in worker
processes (the platform's default start method, so plain scripts need no ``__main__`` guard on
Linux), each with its share of the CPU threads, yielding results as they finish."""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable, Iterator, Sequence


def _init_worker(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)


def process_map(fn: Callable[[Any], Any], items: Sequence[Any], workers: int = 2,
                threads: int | None = None) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, fn(items[index]))`` in completion order.

    ``fn`` must be a module-level function and items picklable. ``workers == 1`` (or a single
    item) runs in this process, in order. ``threads``: torch threads per worker (default: the
    CPUs this process may use, divided among the workers). An exception in ``fn`` is raised
    here, after the items already finished were yielded."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers == 1 or len(items) < 2:
        for i, it in enumerate(items):
            yield i, fn(it)
        return
    workers = min(workers, len(items))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = threads or max(1, cpus // workers)
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(threads,)) as ex:
        futures = {ex.submit(fn, it): i for i, it in enumerate(items)}
        try:
            for f in as_completed(futures):
                yield futures[f], f.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise
