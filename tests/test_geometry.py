"""Shared point geometry: ``column_bounds`` gives exactly numpy's axis-0 minima and maxima."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pcweak.geometry import aabb_box, column_bounds

DTYPES = st.sampled_from([np.float32, np.float64, np.int32, np.int64, np.uint8])


@settings(max_examples=80, deadline=None)
@given(data=st.data(), dtype=DTYPES, order=st.sampled_from("CF"))
def test_column_bounds_equal_numpys_axis_0_reductions(data, dtype, order):
    shape = data.draw(st.tuples(st.integers(1, 40), st.integers(1, 5)))
    a = np.asarray(data.draw(hnp.arrays(dtype, shape)), order=order)  # floats include NaN and inf
    lo, hi = column_bounds(a)
    assert lo.dtype == a.dtype and hi.dtype == a.dtype and lo.shape == hi.shape == (shape[1],)
    np.testing.assert_array_equal(lo, a.min(0))
    np.testing.assert_array_equal(hi, a.max(0))


def test_column_bounds_of_a_strided_view_and_bad_shapes():
    a = np.random.default_rng(0).normal(size=(1000, 6))
    view = a[::3, 1:4]  # neither C- nor F-contiguous
    lo, hi = column_bounds(view)
    np.testing.assert_array_equal(lo, view.min(0))
    np.testing.assert_array_equal(hi, view.max(0))
    np.testing.assert_array_equal(aabb_box(view)[3:6], view.max(0) - view.min(0))
    with pytest.raises(ValueError, match="zero-size"):  # as numpy's min(0) of no points
        column_bounds(np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"\(N, D\) array, got shape \(5,\)"):
        column_bounds(np.zeros(5))
