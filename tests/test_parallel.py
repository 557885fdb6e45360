import math
import os
import signal
import time

import pytest

from pcweak.parallel import WorkerDied, available_memory_gb, memory_held, process_map


def test_process_map_pairs_every_result_with_its_item():
    items = [1.0, 4.0, 9.0, 16.0, 25.0]
    for workers in (1, 2):
        got = dict(process_map(math.sqrt, items, workers))
        assert got == {i: math.sqrt(x) for i, x in enumerate(items)}


def test_process_map_raises_a_workers_error_and_refuses_zero_workers():
    with pytest.raises(ValueError, match="math domain"):
        list(process_map(math.sqrt, [4.0, -1.0, 9.0], 2))
    with pytest.raises(ValueError, match="workers"):
        list(process_map(math.sqrt, [1.0], 0))


def _killed_on_two(x: float) -> float:
    if x == 2.0:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.5)
    return x


def test_a_worker_killed_from_outside_names_the_items_left():
    got = {}
    with pytest.raises(WorkerDied) as e:
        for i, r in process_map(_killed_on_two, [1.0, 2.0, 3.0, 4.0], 2):
            got[i] = r
    assert 1 in e.value.unfinished and not set(got) & set(e.value.unfinished)
    assert sorted(set(got) | set(e.value.unfinished)) == [0, 1, 2, 3]
    assert "killed" in str(e.value) and isinstance(e.value, RuntimeError)
    free = available_memory_gb()
    assert free is None or free > 0


def _hold(need: float) -> tuple[float, float]:
    with memory_held(need):
        start = time.monotonic()
        time.sleep(1.0)
        return start, time.monotonic()


def _overlap(spans: dict[int, tuple[float, float]]) -> bool:
    (a0, a1), (b0, b1) = spans[0], spans[1]
    return a0 < b1 and b0 < a1


def test_workers_wait_for_their_share_of_the_memory_budget():
    assert not _overlap(dict(process_map(_hold, [6.0, 6.0], 2, memory=10.0)))  # both would not fit: one after the other
    assert _overlap(dict(process_map(_hold, [4.0, 4.0], 2, memory=10.0)))  # both fit: side by side
    assert not _overlap(dict(process_map(_hold, [20.0, 20.0], 2, memory=10.0)))  # too large: each runs, alone
    assert _overlap(dict(process_map(_hold, [6.0, 6.0], 2)))  # no budget
    with memory_held(1e30):  # in this process: nothing to wait for
        pass
