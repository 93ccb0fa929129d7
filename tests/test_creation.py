"""Creation functions with values that need a reference: linspace and logspace against numpy."""

import jax
import numpy as np
import pytest

import namedax as nx

T = nx.Axis("t", 7)


@pytest.mark.parametrize("endpoint", [True, False])
@pytest.mark.parametrize(("start", "stop"), [(0.0, 1.0), (-2.5, 4.0), (3.0, -3.0)])
def test_linspace_matches_numpy(start, stop, endpoint):
    x = nx.linspace(T, start=start, stop=stop, endpoint=endpoint)
    assert x.axes == (T,) and x.dtype == np.float32
    np.testing.assert_allclose(x.array, np.linspace(start, stop, T.size, endpoint=endpoint), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("endpoint", [True, False])
@pytest.mark.parametrize(("start", "stop", "base"), [(0.0, 3.0, 10.0), (-1.0, 2.0, 2.0), (1.0, 0.0, np.e)])
def test_logspace_matches_numpy(start, stop, base, endpoint):
    x = nx.logspace(T, start=start, stop=stop, endpoint=endpoint, base=base)
    assert x.axes == (T,)
    ref = np.logspace(start, stop, T.size, endpoint=endpoint, base=base)
    np.testing.assert_allclose(x.array, ref, rtol=1e-5)


def test_linspace_and_logspace_dtype_and_one_point():
    one = nx.Axis("t", 1)
    np.testing.assert_array_equal(nx.linspace(one, start=2.0, stop=5.0).array, np.linspace(2.0, 5.0, 1))
    np.testing.assert_array_equal(nx.logspace(one, start=2.0, stop=5.0).array, np.logspace(2.0, 5.0, 1))
    with jax.enable_x64(True):
        x = nx.linspace(T, start=0.0, stop=1.0, dtype=np.float64)
        assert x.dtype == np.float64
        np.testing.assert_allclose(x.array, np.linspace(0.0, 1.0, T.size), rtol=1e-15)
