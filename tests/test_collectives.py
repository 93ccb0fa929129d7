"""Named collectives against numpy reductions over the mapped axis."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from helpers import assert_named_close, to_numpy
from namedax.transforms import _collectives

A, B, E = nx.Axis("a", 2), nx.Axis("b", 3), nx.Axis("e", 4)


def _x():
    rng = np.random.default_rng(0)
    return nx.named(jnp.asarray(rng.normal(size=(3, 2, 4)), jnp.float32), (B, A, E))


@pytest.mark.parametrize(
    "op, ref",
    [(nx.psum, np.sum), (nx.pmean, np.mean), (nx.pmax, np.max), (nx.pmin, np.min)],
)
def test_reductions_over_one_axis(op, ref):
    x = _x()
    xn = to_numpy(x, "bae")
    y = nx.vmap(lambda v: op(v, B), B)(x)
    assert y.axes == (B, A, E)
    assert_named_close(y, np.broadcast_to(ref(xn, axis=0, keepdims=True), xn.shape), "bae")
    # by name as well as by Axis
    assert_named_close(nx.vmap(lambda v: op(v, "b"), B)(x), np.broadcast_to(ref(xn, axis=0), xn.shape), "bae")


@pytest.mark.parametrize("op, ref", [(nx.psum, np.sum), (nx.pmean, np.mean), (nx.pmax, np.max)])
def test_reductions_over_several_axes(op, ref):
    x = _x()
    xn = to_numpy(x, "abe")
    y = nx.vmap(lambda v: op(v, (A, "b")), (A, B))(x)
    assert y.axes == (A, B, E)
    assert_named_close(y, np.broadcast_to(ref(xn, axis=(0, 1), keepdims=True), xn.shape), "abe")


def test_pytrees_and_plain_arrays():
    x = _x()
    xn = to_numpy(x, "bae")
    p = jnp.arange(3.0)

    def f(v, p):
        return nx.psum({"named": v, "plain": p, "pair": (v, p * 2)}, B)

    out = nx.vmap(f, B)(x, p)
    assert_named_close(out["named"], np.broadcast_to(xn.sum(0), xn.shape), "bae")
    np.testing.assert_allclose(np.asarray(out["plain"]), np.full(3, 3.0))
    np.testing.assert_allclose(np.asarray(out["pair"][1]), np.full(3, 6.0))


def test_axis_index():
    idx = nx.vmap(lambda: nx.axis_index(B), B)()
    np.testing.assert_array_equal(np.asarray(idx), np.arange(3))
    inside = []
    nx.vmap(lambda: inside.append(nx.axis_index("b")) or 0, B)()
    assert inside[0].shape == () and jnp.issubdtype(inside[0].dtype, jnp.integer)
    # several axes: the row-major flat index
    flat = nx.vmap(lambda: nx.axis_index((A, B)), (A, B))()
    np.testing.assert_array_equal(np.asarray(flat), np.arange(6).reshape(2, 3))


def test_all_gather():
    x = _x()
    xn = to_numpy(x, "bae")

    def f(v):  # v: (a, e); gathered: (b, a, e) -- every element sees the whole axis
        g = nx.all_gather(v, B)
        assert g.axes == (B, A, E)
        return g.rename({"b": "all_b"})

    y = nx.vmap(f, B)(x)
    assert y.axes == (B, nx.Axis("all_b", 3), A, E)
    np.testing.assert_allclose(np.asarray(y.array), np.broadcast_to(xn, (3,) + xn.shape))
    plain = nx.vmap(lambda v: nx.all_gather(v.array, B), B)(x)
    assert plain.shape == (3, 3, 2, 4)


def test_all_gather_several_axes():
    x = _x()
    xn = to_numpy(x, "abe")
    y = nx.vmap(lambda v: nx.all_gather(v, (A, B)).rename({"a": "ga", "b": "gb"}), (A, B))(x)
    assert [a.name for a in y.axes] == ["a", "b", "ga", "gb", "e"]
    np.testing.assert_allclose(np.asarray(y.array), np.broadcast_to(xn, (2, 3) + xn.shape))


def test_alias_hook_covers_several_jax_axes():
    """The pmap hook: one named axis made of an outer (devices) and an inner (block) JAX axis."""
    data = np.arange(12.0).reshape(2, 6)  # 2 "devices" x block of 6 = the whole axis "n" of 12

    def per_device(block):
        def inner(v):
            return (
                nx.psum(v, "n"),
                nx.pmean(v, nx.Axis("n", 12)),
                nx.axis_index("n"),
                nx.all_gather(v, "n").rename({"n": "g"}),
            )

        return nx.vmap(inner, "n")(nx.named(block, "n"))

    with _collectives.axis_alias("n", ("dev", "n")):
        assert _collectives.jax_axis_names("n") == ("dev", "n")
        s, m, idx, g = jax.vmap(per_device, axis_name="dev")(jnp.asarray(data))
    assert _collectives.jax_axis_names("n") == ("n",)
    np.testing.assert_allclose(np.asarray(s.array), np.full((2, 6), data.sum()))
    np.testing.assert_allclose(np.asarray(m.array), np.full((2, 6), data.mean()))
    np.testing.assert_array_equal(np.asarray(idx), np.arange(12).reshape(2, 6))
    np.testing.assert_allclose(np.asarray(g.array), np.broadcast_to(data.reshape(12), (2, 6, 12)))


def test_alias_nesting_restores():
    with _collectives.axis_alias("n", ("x", "n")):
        with _collectives.axis_alias("n", ("y", "n")):
            assert _collectives.jax_axis_names("n") == ("y", "n")
        assert _collectives.jax_axis_names("n") == ("x", "n")
    assert _collectives.jax_axis_names("n") == ("n",)


def test_error_axis_not_mapped():
    x = _x()
    with pytest.raises(ValueError, match=r"psum: axis 'b' is not mapped here.*nx.vmap\(f, 'b'\)"):
        nx.psum(x, B)
    with pytest.raises(ValueError, match=r"axis_index: axis 'e' is not mapped here"):
        nx.vmap(lambda v: nx.axis_index(E), B)(x)
    with pytest.raises(ValueError, match="all_gather: axis 'q' is not mapped"):
        nx.vmap(lambda v: nx.all_gather(v, "q"), B)(x)


def test_error_size_mismatch():
    with pytest.raises(ValueError, match=r"pmean: axis 'b' is mapped with size 3, but Axis\('b', 5\) was given"):
        nx.vmap(lambda v: nx.pmean(v, nx.Axis("b", 5)), B)(_x())


def test_error_all_gather_name_clash():
    x = nx.zeros({"b": 3, "c": 2}).rename({"c": "b2"})

    def f(v):  # v has axis b2; gathering over b would be fine, but give v an axis named b first
        return nx.all_gather(v.rename({"b2": "b"}), "b")

    with pytest.raises(ValueError, match=r"all_gather: the NamedArray already has axes \['b'\]"):
        nx.vmap(f, "b")(x)


def test_error_no_axis():
    with pytest.raises(ValueError, match="no axis given"):
        nx.vmap(lambda v: nx.psum(v, ()), B)(_x())
