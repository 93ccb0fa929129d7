"""The plan and kernel cache (core/_kernels.py): bounded, clearable, results unchanged."""

import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from namedax.core import _kernels


@pytest.fixture
def small_cache():
    _kernels.set_cache_size(16)
    yield
    _kernels.set_cache_size(_kernels.DEFAULT_CACHE_SIZE)


def test_many_sizes_keep_the_cache_at_its_bound(small_cache):
    for n in range(1, 41):  # 40 signatures of each kind: well past the bound of 16
        a = jnp.arange(float(n))
        x = nx.named(a, "t")
        np.testing.assert_allclose(nx.sum(x, "t").array, jnp.sum(a))
        np.testing.assert_allclose((x * 2 + x).array, a * 2 + a)
        assert _kernels.cache_len() <= 16


def test_clear_caches_empties_the_cache_and_results_stay_equal():
    a = jnp.arange(6.0).reshape(2, 3)
    x = nx.named(a, ("b", "e"))
    before = nx.sum(x, "e").array
    assert _kernels.cache_len() > 0
    nx.clear_caches()
    assert _kernels.cache_len() == 0
    np.testing.assert_array_equal(nx.sum(x, "e").array, before)
    np.testing.assert_array_equal(nx.sum(x, "e").array, jnp.sum(a, axis=1))


def test_a_recently_used_entry_survives_many_new_signatures(small_cache):
    x = nx.named(jnp.ones(3), "t")
    nx.sum(x, "t")
    key = next(k for k in _kernels._CACHE if type(k) is tuple and k[1] == x.axes)
    plan = _kernels._CACHE[key]
    for n in range(4, 60):
        nx.sum(nx.named(jnp.ones(n), "t"), "t")
        nx.sum(x, "t")  # used again: kept, never built again
        assert _kernels._CACHE.get(key, _kernels._OLD.get(key)) is plan
    assert _kernels.cache_len() <= 16


def test_set_cache_size_rejects_bad_sizes():
    with pytest.raises(ValueError, match="positive int"):
        _kernels.set_cache_size(0)
