"""Shared fixtures. Real-data tests read ../shared/data and skip with a reason when it is absent."""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason it is missing."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real sample data not present at {p} (a fresh clone has no ../shared/data)")
    return p


@functools.lru_cache(maxsize=None)
def _room(seed: int, n_frames: int):
    from pcweak.data.synthetic_indoor import synthetic_room
    return synthetic_room(seed, n_frames=n_frames)


@functools.lru_cache(maxsize=None)
def _lidar(seed: int):
    from pcweak.data.synthetic_lidar import synthetic_lidar
    return synthetic_lidar(seed)


@pytest.fixture
def room():
    """A synthetic room with 4 frames (cached: treat as read-only)."""
    return _room(3, 4)


@pytest.fixture
def lidar():
    """A synthetic LiDAR frame (cached: treat as read-only)."""
    return _lidar(5)


@pytest.fixture(scope="session")
def lidar_cache(tmp_path_factory):
    """A LiDAR data module cache folder shared by the session: the synthetic frames
    (``synthetic_lidar_<seed>.npz``) are made once, on first use, and only read after."""
    return tmp_path_factory.mktemp("lidar_cache")


class Budgeted(Exception):
    """Raised where ``pcweak label`` would start labelling, by ``label_budgets``."""


@pytest.fixture
def label_budgets(monkeypatch):
    """The memory each ``label_jobs.run_label_job`` asks ``parallel.memory_held`` for (bytes),
    in a list; the job then stops with ``Budgeted`` instead of labelling (the budget is what is
    tested, not the labels)."""
    import contextlib

    from pcweak import parallel
    from pcweak.pseudo import registry
    held: list[float] = []

    @contextlib.contextmanager
    def recorded(need):
        held.append(need)
        yield

    def stop(*args, **kwargs):
        raise Budgeted

    monkeypatch.setattr(parallel, "memory_held", recorded)
    monkeypatch.setattr(registry, "label", stop)
    return held


@pytest.fixture
def two_torch_threads():
    """At least two torch threads for the test (the races it checks need them); the process's
    count is back after it."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(max(2, before))
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _torch_threads_left_as_found():
    """A test that leaves torch on more threads than it found would slow every test after it in
    its worker: ``make test`` runs one thread per worker, and two workers of two threads each on
    two cores spend the extra time spinning (the one-room overfit took 220 s instead of 45)."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    yield
    if before is not None and torch.get_num_threads() != before:
        after = torch.get_num_threads()
        torch.set_num_threads(before)
        pytest.fail(f"the test left torch on {after} threads; it found {before}")


class _CurrentStderr:
    """A stream that writes to whatever ``sys.stderr`` is at the time of the write."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@pytest.fixture(autouse=True)
def _lightning_logs_reach_the_running_test():
    """Lightning, when first imported, gives its loggers a handler bound to the ``sys.stderr`` of
    that moment: inside a test using ``capsys``, a capture closed when that test ends. A later
    test's Lightning record ("GPU available: ...") then printed "--- Logging error ---" and a
    traceback into that test's stderr (the hostile-input table, run in one process). The handlers
    are pointed at the running test's stderr instead."""
    yield
    import logging
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric"):
        for h in logging.getLogger(name).handlers:
            if type(h) is logging.StreamHandler and not isinstance(h.stream, _CurrentStderr):
                with h.lock:  # not setStream: it flushes the old stream, closed by now
                    h.stream = _CurrentStderr()
