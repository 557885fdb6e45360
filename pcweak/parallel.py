"""Scene-level parallelism: ``process_map`` runs one function over many items in worker
processes (the platform's default start method, so plain scripts need no ``__main__`` guard on
Linux), each with its share of the CPU threads, yielding results as they finish.

Workers die with their parent: on Linux each asks the kernel for SIGKILL when the parent goes
(``prctl(PR_SET_PDEATHSIG)``), so a killed ``pcweak label --workers N`` leaves no process
behind."""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable, Iterator, Sequence


PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux; elsewhere a no-op), and
    exit at once when ``parent`` is already gone."""
    import ctypes
    import signal
    import sys
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os._exit(1)


def _init_worker(threads: int, parent: int) -> None:
    die_with_parent(parent)
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
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(threads, os.getpid())) as ex:
        futures = {ex.submit(fn, it): i for i, it in enumerate(items)}
        try:
            for f in as_completed(futures):
                yield futures[f], f.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise
