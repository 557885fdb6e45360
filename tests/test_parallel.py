import math

import pytest

from pcweak.parallel import process_map


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
