"""UniformSpace, against jax.random called by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from namedax.spaces import Parameter, UniformSpace


def _uniform_state():
    return {"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
            "b": Parameter("b", jnp.zeros(2), low=10.0, high=20.0, free=True),
            "c": Parameter("c", 1.0),
            "w": jnp.ones(2)}


def test_uniform_points_bounds_determinism_and_default_key():
    state = _uniform_state()
    space = UniformSpace(state, 500)
    assert space.N == 500 and space.axes == (nx.Axis("sample", 500),)
    pts = space.points()
    a, b = np.asarray(pts["a"].value), np.asarray(pts["b"].value)
    assert b.shape == (500, 2) and np.all(b[:, 0] == b[:, 1])  # one draw per Parameter, broadcast
    assert a.min() >= 0 and a.max() <= 1 and b.min() >= 10 and b.max() <= 20
    assert abs(a.mean() - 0.5) < 0.05 and abs(b.mean() - 15) < 0.5 and np.corrcoef(a, b[:, 0])[0, 1] < 0.2
    # the documented default key is jax.random.key(0); the same key gives the same space
    same = UniformSpace(state, 500, key=jax.random.key(0)).points()
    np.testing.assert_array_equal(np.asarray(same["a"].value), a)
    other = UniformSpace(state, 500, key=jax.random.key(1)).points()
    assert not np.array_equal(np.asarray(other["a"].value), a)
    raw = UniformSpace(state, 500, key=jax.random.PRNGKey(0)).points()
    np.testing.assert_array_equal(np.asarray(raw["a"].value), a)
    # the documented definition: one uniform per free Parameter from fold_in(fold_in(key, hi), lo)
    for i in (17, 499):
        k = jax.random.fold_in(jax.random.fold_in(jax.random.key(0), 0), i)
        u = np.asarray(jax.random.uniform(k, (2,)))
        np.testing.assert_allclose([a[i], b[i, 0]], [u[0], 10 + 10 * u[1]], rtol=1e-6)
    pt = space[17]
    assert pt["c"] is state["c"] and pt["w"] is state["w"] and isinstance(pt["a"], Parameter)
    assert repr(space) == "UniformSpace(N=500, axis 'sample', a in [0.0, 1.0], b in [10.0, 20.0], key=[0, 0])"


def test_uniform_any_chunking_gives_the_same_points():
    space = UniformSpace(_uniform_state(), 40, key=jax.random.key(3))
    whole = np.asarray(space.block(0, 40)["a"].value)
    for size in (1, 7):
        chunks = np.concatenate([np.asarray(space.block(s, size)["a"].value) for s in range(0, 40, size)])[:40]
        np.testing.assert_array_equal(chunks, whole)
    np.testing.assert_array_equal([space[i]["a"].value for i in range(40)], whole)
    np.testing.assert_array_equal(np.asarray(space.collect(n_vmap=8)["a"]).reshape(-1), whole)


def test_uniform_indices_past_2_32():
    space = UniformSpace(_uniform_state(), 2**40, key=jax.random.key(5))
    assert space.N == 2**40
    start = 2**32 - 2
    blk = space.block(start, 4)  # crosses the 32-bit word boundary
    for j in range(4):
        i = start + j
        k = jax.random.fold_in(jax.random.fold_in(jax.random.key(5), i >> 32), i & 0xFFFFFFFF)
        np.testing.assert_allclose(float(blk["a"].value[j]), float(jax.random.uniform(k, (2,))[0]), rtol=1e-6)
        assert blk["a"].value[j] == space[i]["a"].value
    assert float(space[2**32 + 1]["a"]) != float(space[1]["a"])
    named = UniformSpace(_uniform_state(), 3).named()
    assert named["a"].value.axes == (nx.Axis("sample", 3),)
    assert named["b"].value.axes == (nx.Axis("sample", 3), nx.Axis("dim_0", 2))
    np.testing.assert_array_equal(UniformSpace(_uniform_state(), 3).coords()["sample"], [0, 1, 2])


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        ((_uniform_state(), 0), {}, ValueError, "`n` must be >= 1, got 0"),
        ((_uniform_state(), 2.0), {}, TypeError, "`n` must be an int"),
        (({"a": Parameter("a", 0.0, low=0.0, free=True)}, 3), {}, ValueError, r"needs both bounds.*'a'.*high=None"),
        (({"a": Parameter("a", 0.0)}, 3), {}, ValueError, "no free Parameters"),
        ((_uniform_state(), 3), {"key": 0}, TypeError, "`key` must be a jax.random.key"),
        ((_uniform_state(), 3), {"key": jax.random.split(jax.random.key(0), 2)}, ValueError, "single key"),
    ],
)
def test_uniform_bad_inputs(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        UniformSpace(*args, **kwargs)



def test_uniform_default_key_is_documented_and_deterministic():
    # documented: no key means jax.random.key(0), so two spaces built without one are the same space
    state = _uniform_state()
    a, b = UniformSpace(state, 64), UniformSpace(state, 64)
    assert "None means ``jax.random.key(0)``" in UniformSpace.__doc__
    np.testing.assert_array_equal(np.asarray(a.points()["a"].value), np.asarray(b.points()["a"].value))
    assert a.fingerprint() == b.fingerprint() == UniformSpace(state, 64, key=jax.random.key(0)).fingerprint()
    k0 = jax.random.fold_in(jax.random.fold_in(jax.random.key(0), 0), 5)
    np.testing.assert_allclose(float(a[5]["a"]), float(jax.random.uniform(k0, (2,))[0]), rtol=1e-6)
    # keys are checked as namedax.random checks them: a NamedArray holding one key is that key
    wrapped = UniformSpace(state, 64, key=nx.named(jax.random.key(0), ()))
    assert wrapped.fingerprint() == a.fingerprint()
    with pytest.raises(TypeError, match="UniformSpace: `key` is raw key data of shape \\(4,\\)"):
        UniformSpace(state, 3, key=np.zeros(4, np.uint32))
