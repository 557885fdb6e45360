"""Scene-level parallelism: ``process_map`` runs one function over many items in worker
processes (the platform's default start method, so plain scripts need no ``__main__`` guard on
Linux), each with its share of the CPU threads, yielding results as they finish.

Workers die with their parent: on Linux each asks the kernel for SIGKILL when the parent goes
(``prctl(PR_SET_PDEATHSIG)``), so a killed ``pcweak label --workers N`` leaves no process
behind."""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterator, Sequence

from .errors import PcweakError


PR_SET_PDEATHSIG = 1


class WorkerDied(PcweakError, RuntimeError):
    """A worker process ended without returning (killed by a signal: on Linux most often the
    kernel's out-of-memory killer). ``unfinished``: the indices of the items left without a
    result, ascending; those that finished were yielded before this was raised."""

    def __init__(self, unfinished: list[int], total: int) -> None:
        self.unfinished = unfinished
        super().__init__(f"a worker process was killed before it returned; {len(unfinished)} of {total} items "
                         "have no result")


def available_memory_gb() -> float | None:
    """The memory the kernel can give new work now (``MemAvailable`` of /proc/meminfo), in GiB;
    None where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        return None
    return None


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
    here, after the items already finished were yielded; a worker killed from outside raises
    ``WorkerDied`` naming the items left without a result."""
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
        finished: set[int] = set()
        try:
            for f in as_completed(futures):
                try:
                    result = f.result()
                except BrokenProcessPool:
                    raise WorkerDied(sorted(set(futures.values()) - finished), len(items)) from None
                finished.add(futures[f])
                yield futures[f], result
        except BaseException:
            for f in futures:
                f.cancel()
            raise
