"""Scene-level parallelism: ``process_map`` runs one function over many items in worker
processes (the platform's default start method, so plain scripts need no ``__main__`` guard on
Linux), each with its share of the CPU threads, yielding results as they finish.

Workers die with their parent: on Linux each asks the kernel for SIGKILL when the parent goes
(``prctl(PR_SET_PDEATHSIG)``), so a killed ``pcweak label --workers N`` leaves no process
behind."""
from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
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

    def for_scenes(self, names: Sequence[str], holds: str, then: str) -> PcweakError:
        """The one error a folder job whose items are the scenes ``names`` ends in: the scenes
        left named, the memory available now and what a scene holds (``holds``, appended to it,
        may be empty), then ``then`` (what was kept, and how to make the rest)."""
        left = [names[i] for i in self.unfinished]
        free = available_memory_gb()
        return PcweakError(f"a worker process was killed before it finished {len(left)} of the {len(names)} scenes "
                           f"({', '.join(left[:5])}{', ...' if len(left) > 5 else ''}); most often the kernel kills it "
                           f"when memory runs out ({'unknown' if free is None else f'{free:.1f} GiB'} available now"
                           f"{holds}): {then}")


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


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim`` (found once), or None without glibc."""
    import ctypes
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def return_freed_memory() -> bool:
    """Hands the heap's free pages back to the kernel (glibc's ``malloc_trim``). Memory a
    finished thread freed stays in that thread's malloc arena, counted as resident and not
    reused by the others, until this runs; a long job calls it between stages so that the next
    stage's peak does not sit on top of it. True where it ran; False without glibc."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux; elsewhere a no-op), and
    exit at once when ``parent``, the process that asked for it, is already gone. The parent the
    kernel watches is the one that forked this process: ``parent`` itself under the "fork" and
    "spawn" start methods, the forkserver (Python 3.14's default on Linux) under "forkserver",
    which ends when ``parent`` does; so ``parent`` is looked for by its id, not compared with
    ``os.getppid()``."""
    import ctypes
    import signal
    import sys
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        os._exit(1)
    except PermissionError:  # it exists (under another user: not pcweak's parent, but alive)
        pass


_budget: tuple[Any, Any, float] | None = None  # in a worker of process_map(memory=...): (condition, bytes held, bytes in all)


def _init_worker(threads: int, parent: int, budget: tuple[Any, Any, float] | None = None) -> None:
    global _budget
    import signal
    die_with_parent(parent)
    # Ctrl-C reaches the whole process group: the parent decides (it stops the workers), so a
    # worker neither prints its own traceback nor goes on to its next queued item
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler: SIGTERM ends a worker
    _budget = budget
    import torch
    torch.set_num_threads(threads)


def memory_within_reach_gb() -> float | None:
    """The most memory one item can count on, in GiB: in a worker of ``process_map(...,
    memory=M)`` the workers' budget (an item larger runs alone), elsewhere what the kernel has
    available now; None where unknown."""
    if _budget is not None:
        return _budget[2] / 2**30
    return available_memory_gb()


@contextlib.contextmanager
def memory_held(nbytes: float) -> Iterator[None]:
    """Hold ``nbytes`` of the memory budget of ``process_map(..., memory=M)`` while inside:
    wait while the other workers hold so much that ``nbytes`` would not fit, never while they
    hold none (so one item larger than the budget still runs, alone). Outside such a worker,
    nothing to wait for."""
    if _budget is None:
        yield
        return
    cond, held, total = _budget
    with cond:
        while held.value > 0 and held.value + nbytes > total:
            cond.wait()
        held.value += nbytes
    try:
        yield
    finally:
        with cond:
            held.value -= nbytes
            cond.notify_all()


def process_map(fn: Callable[[Any], Any], items: Sequence[Any], workers: int = 2,
                threads: int | None = None, memory: float | None = None, ordered: bool = False,
                ahead: int | None = None) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, fn(items[index]))`` in completion order, or with ``ordered`` in the order
    of the items; a result yielded is not held here any more (a folder's scenes handed on one by
    one are not all kept to the end).

    ``fn`` must be a module-level function and items picklable. ``workers == 1`` (or a single
    item) runs in this process, in order. ``threads``: torch threads per worker (default: the
    CPUs this process may use, divided among the workers). ``ahead``: items started and not yet
    yielded, at most (default twice the workers), so that the results waiting here (for the
    caller, or with ``ordered`` for a slow item before them) are bounded, whatever the number
    of items. An exception in ``fn`` is raised here, after the items already finished (with
    ``ordered``: those before it) were yielded; a worker killed from outside raises
    ``WorkerDied`` naming the items not yielded. ``memory``: bytes the workers may hold at once,
    shared out by ``memory_held`` (which ``fn`` calls once it knows its need).
    KeyboardInterrupt (Ctrl-C; the workers ignore it) ends the workers at once and is raised
    here: an output a worker was writing is not in place (``npzio.atomic_write_bytes`` renames
    whole files into place; its hidden temporary is removed by the next ``pcweak label``)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers == 1 or len(items) < 2:
        for i, it in enumerate(items):
            yield i, fn(it)
        return
    workers = min(workers, len(items))
    ahead = max(workers, ahead or 2 * workers)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = threads or max(1, cpus // workers)
    budget = None
    if memory is not None:
        cond = multiprocessing.Condition()
        budget = (cond, multiprocessing.Value("d", 0.0, lock=False), float(memory))
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                             initargs=(threads, os.getpid(), budget)) as ex:
        running: dict[Future, int] = {}
        waiting: dict[int, Future] = {}  # finished, not yet yielded
        submitted = want = 0  # want: with ordered, the next index to yield
        yielded: set[int] = set()
        try:
            while submitted < len(items) or running or waiting:
                while submitted < len(items) and len(running) + len(waiting) < ahead:
                    running[ex.submit(fn, items[submitted])] = submitted
                    submitted += 1
                for f in wait(running, return_when=FIRST_COMPLETED).done if running else ():
                    i = running.pop(f)
                    if isinstance(f.exception(), BrokenProcessPool):
                        raise WorkerDied(sorted(set(range(len(items))) - yielded), len(items))
                    waiting[i] = f
                f = None  # the loop's last future holds its result, which must not outlive its yield
                ready = [want] if ordered and want in waiting else [] if ordered else sorted(waiting)
                ready.sort(key=lambda i: waiting[i].exception() is not None)  # results first, then the error
                while ready:
                    i = ready.pop(0)
                    result = waiting.pop(i).result()  # its result is the caller's once yielded, not held here
                    yielded.add(i)
                    yield i, result
                    del result  # nor be held while the next items are awaited
                    if ordered:
                        want += 1
                        ready = [want] if want in waiting else []
        except BaseException as e:
            for f in running:
                f.cancel()
            if isinstance(e, KeyboardInterrupt):  # stop now: the items running would finish unseen
                _terminate_workers(ex)
            raise


def _terminate_workers(ex: ProcessPoolExecutor) -> None:
    """Ends ``ex``'s worker processes at once (SIGTERM), so leaving its ``with`` block does not
    wait for the items they run; Python 3.14 has this as a method, older ones keep the
    processes in ``_processes``."""
    if hasattr(ex, "terminate_workers"):
        ex.terminate_workers()
        return
    for proc in list((getattr(ex, "_processes", None) or {}).values()):
        if proc.is_alive():
            proc.terminate()
