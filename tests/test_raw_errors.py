"""Bad input to the core gives clear errors naming the operation, the axes and their sizes (issue 18)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx

# ---- concrete 0-d integer arrays index like ints ----


@pytest.mark.parametrize("make", [np.array, jnp.array, np.int64], ids=["numpy", "jax", "npint"])
def test_concrete_0d_index_out_of_range_raises(make):
    x = nx.named(jnp.arange(6.0).reshape(2, 3), ("batch", "embed"))
    with pytest.raises(IndexError, match=r"indexing: index 5 .*'embed' of size 3"):
        x["embed", make(5)]
    with pytest.raises(IndexError, match=r"indexing: index -4 .*'embed' of size 3"):
        x["embed", make(-4)]
    with pytest.raises(IndexError, match=r"\.at\[\]: index 2 .*'batch' of size 2"):
        x.at["batch", make(2)].set(1.0)


@pytest.mark.parametrize("make", [np.array, jnp.array], ids=["numpy", "jax"])
@pytest.mark.parametrize("i", [0, 2, -1, -3])
def test_concrete_0d_index_in_range_like_numpy(make, i):
    a = np.arange(6.0).reshape(2, 3)
    x = nx.named(jnp.asarray(a), ("batch", "embed"))
    np.testing.assert_array_equal(x["embed", make(i)].array, a[:, i])
    np.testing.assert_array_equal(x.at["embed", make(i)].set(-1.0).array, np.where(np.arange(3) == i % 3, -1.0, a))


def test_traced_index_clamps_and_drops_as_jax():
    a = np.arange(6.0).reshape(2, 3)
    x = nx.named(jnp.asarray(a), ("batch", "embed"))
    got = jax.jit(lambda x, i: x["embed", i])(x, 7)
    np.testing.assert_array_equal(got.array, a[:, 2])  # clamped
    got = jax.jit(lambda x, i: x.at["embed", i].set(-1.0))(x, 7)
    np.testing.assert_array_equal(got.array, a)  # dropped
