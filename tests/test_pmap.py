"""nx.pmap against jax.vmap / numpy on the positional equivalent.

Multi-device checks run in one subprocess with 4 forced CPU devices (the device count is fixed when
jax is imported); each check is a snippet that asserts against its own positional reference, and
reports PASS or its traceback, so each still shows up as its own test here.
"""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from helpers import assert_named_close, run_with_devices

# ---------------------------------------------------------------------------------------------
# Four devices, in a subprocess
# ---------------------------------------------------------------------------------------------

SETUP = """
import jax, jax.numpy as jnp, numpy as np, equinox as eqx
import namedax as nx
from jax.sharding import PartitionSpec as P
assert len(jax.devices()) == 4, jax.devices()
B, E = nx.Axis("batch", 8), nx.Axis("embed", 3)
xa = jnp.arange(24.0).reshape(3, 8) ** 1.5          # positional layout (embed, batch)
x = nx.named(xa, (E, B))
def shards(arr):                                     # (device id, rows of the global array it holds)
    return sorted((s.device.id, s.index[0].start, s.index[0].stop) for s in arr.addressable_shards)
"""

CHECKS = {
    "matches_jax_vmap": """
        w = nx.named(jnp.array([1.0, -2.0, 0.5]), E)
        y = nx.pmap(lambda v, w: nx.sum(v * w, axis=E) + v, B)(x, w)
        ref = jax.vmap(lambda v, w: jnp.sum(v * w) + v, in_axes=(1, None))(xa, w.array)
        assert y.axes == (B, E), y.axes
        np.testing.assert_allclose(y.array, ref, rtol=1e-6)
    """,
    "blocks_of_two_sharded_over_four_devices": """
        y = nx.pmap(lambda v: v * 2, B)(x)
        assert y.array.sharding.spec == P("batch:devices"), y.array.sharding
        assert shards(y.array) == [(0, 0, 2), (1, 2, 4), (2, 4, 6), (3, 6, 8)], shards(y.array)
        for s in y.array.addressable_shards:
            np.testing.assert_array_equal(s.data, 2 * xa.T[s.index])
    """,
    "size_not_a_multiple": """
        try:
            nx.pmap(lambda v: v, "batch")(nx.zeros({"batch": 6}))
        except ValueError as e:
            assert "size 6" in str(e) and "4 devices" in str(e), e
        else:
            raise AssertionError("no error")
    """,
    "pmean_centres_the_whole_axis": """
        y = nx.pmap(lambda v: v - nx.pmean(v, B), B)(x)
        np.testing.assert_allclose(y.array, (xa - np.asarray(xa).mean(axis=1, keepdims=True)).T, rtol=1e-5, atol=1e-4)
    """,
    "psum_pmax_pmin_all_gather_across_devices": """
        s, mx, mn, g = nx.pmap(lambda v: (nx.psum(v, B), nx.pmax(v, "batch"), nx.pmin(v, B),
                                          nx.all_gather(v, B).rename({"batch": "all"})), B)(x)
        ref = np.asarray(xa)
        np.testing.assert_allclose(s.array, np.broadcast_to(ref.sum(1), (8, 3)), rtol=1e-5)
        np.testing.assert_array_equal(mx.array, np.broadcast_to(ref.max(1), (8, 3)))
        np.testing.assert_array_equal(mn.array, np.broadcast_to(ref.min(1), (8, 3)))
        assert g.axes == (B, nx.Axis("all", 8), E), g.axes
        np.testing.assert_array_equal(g.array, np.broadcast_to(ref.T, (8, 8, 3)))
    """,
    "axis_index_counts_over_devices": """
        i = nx.pmap(lambda v: nx.axis_index(B) + 0 * v["embed", 0].astype(jnp.int32), B)(x)
        np.testing.assert_array_equal(i.array, np.arange(8))
    """,
    "raw_lax_collective_sees_only_the_block": """
        y = nx.pmap(lambda v: jax.lax.pmean(v.array, "batch"), B)(x)
        block_means = np.asarray(xa).T.reshape(4, 2, 3).mean(axis=1)
        np.testing.assert_allclose(y, np.repeat(block_means, 2, axis=0), rtol=1e-5)
    """,
    "plain_arrays_with_default_specs": """
        a, m = jnp.arange(8.0), jnp.arange(24.0).reshape(8, 3)
        y = nx.pmap(lambda a, m, c, s: a * m + c * s, B)(a, m, jnp.ones((8, 3)), 2.0)
        ref = jax.vmap(lambda a, m, c, s: a * m + c * s, in_axes=(0, 0, 0, None))(a, m, jnp.ones((8, 3)), 2.0)
        np.testing.assert_array_equal(y, ref)
        z = nx.pmap(lambda a, c: a * c, B, args=(0, None))(a, jnp.arange(3.0))
        np.testing.assert_array_equal(z, a[:, None] * jnp.arange(3.0))
    """,
    "decorator_form_and_mapping_axis": """
        @nx.pmap(axis={"batch": 8})
        def draw():
            return nx.full(E, 1.0) * nx.axis_index("batch")
        y = draw()
        assert y.axes == (B, E)
        np.testing.assert_array_equal(y.array, np.broadcast_to(np.arange(8.0)[:, None], (8, 3)))
        assert len(y.array.sharding.device_set) == 4
    """,
    "devices_subset": """
        y = nx.pmap(lambda v: v - nx.pmean(v, B), B, devices=jax.devices()[:2])(x)
        assert shards(y.array) == [(0, 0, 4), (1, 4, 8)], shards(y.array)
        np.testing.assert_allclose(y.array, (xa - np.asarray(xa).mean(axis=1, keepdims=True)).T, rtol=1e-5, atol=1e-4)
        # an input already sharded over all four devices is moved onto the two
        z = nx.pmap(lambda v: v + 1, B, devices=jax.devices()[2:])(nx.pmap(lambda v: v * 2, B)(x))
        assert shards(z.array) == [(2, 0, 4), (3, 4, 8)], shards(z.array)
        np.testing.assert_array_equal(z.array, 2 * xa.T + 1)
    """,
    "vmapped_fori_loop_with_constant_carry": """
        def f(v):
            return jax.lax.fori_loop(0, 3, lambda i, c: c * 0.5 + v.array, jnp.zeros(3))
        y = nx.pmap(f, B)(x)
        ref = jax.vmap(lambda v: jax.lax.fori_loop(0, 3, lambda i, c: c * 0.5 + v, jnp.zeros(3)), in_axes=1)(xa)
        np.testing.assert_allclose(y, ref, rtol=1e-6)
    """,
    "under_jit_kwargs_static_outputs_and_modules": """
        class Scale(eqx.Module):
            w: jax.Array
            def __call__(self, v, *, shift):
                return v * nx.named(self.w, E) + shift, "static", 3
        m = Scale(jnp.array([1.0, 2.0, 3.0]))
        shift = jnp.arange(8.0)
        f = jax.jit(lambda x, shift: nx.pmap(m, B, kwargs={"shift": 0})(x, shift=shift)[0])
        y = f(x, shift)
        np.testing.assert_allclose(y.array, xa.T * m.w + shift[:, None], rtol=1e-6)
        assert len(y.array.sharding.device_set) == 4
        assert nx.pmap(m, B)(x, shift=1.0)[1:] == ("static", 3)
    """,
    "per_element_keys": """
        keys = nx.random.split(jax.random.key(0), B)
        y = nx.pmap(lambda k: nx.random.normal(k, E), B)(keys)
        ref = jax.vmap(lambda k: jax.random.normal(k, (3,)))(jax.random.split(jax.random.key(0), 8))
        np.testing.assert_array_equal(y.array, ref)
    """,
}



@pytest.fixture(scope="module")
def four_devices():
    return run_with_devices(SETUP, CHECKS)


@pytest.mark.parametrize("name", list(CHECKS))
def test_four_devices(four_devices, name):
    assert four_devices.get(name) == "PASS", four_devices.get(name, "did not run")


def test_runner_reports_failures():
    checks = {"ok": "x = 1", "bad": "assert 1 == 2, 'boom'"}
    out = run_with_devices("import jax\nassert len(jax.devices()) == 2", checks, n=2)
    assert out["ok"] == "PASS"
    assert "boom" in out["bad"]


# ---------------------------------------------------------------------------------------------
# In this process (one device unless the harness forces more: sizes below divide 1, 2, 4 and 8)
# ---------------------------------------------------------------------------------------------

B, E = nx.Axis("batch", 8), nx.Axis("embed", 3)
XA = jnp.arange(24.0).reshape(3, 8) - 4.0
X = nx.named(XA, (E, B))


def test_single_device_matches_vmap():
    y = nx.pmap(lambda v: v * nx.axis_index(B) - nx.pmean(v, B), B)(X)
    ref = jax.vmap(lambda v: v * jax.lax.axis_index("b") - jax.lax.pmean(v, "b"), in_axes=1, axis_name="b")(XA)
    assert_named_close(y, ref, ("batch", "embed"))
    one = nx.pmap(lambda v: v * 2, B, devices=jax.devices()[:1])(X)
    assert one.array.sharding.device_set == {jax.devices()[0]}
    assert_named_close(one, 2 * XA.T, ("batch", "embed"))


def test_traced_once_and_cached():
    calls = []

    def f(v):
        calls.append(1)
        return v + 1

    g = nx.pmap(f, B)
    g(X)
    y = g(X + 1.0)
    assert len(calls) == 1
    assert_named_close(y, XA.T + 2.0, ("batch", "embed"))


def test_outputs_plain_and_static():
    a, s, none = nx.pmap(lambda a: (a * 2, "tag", None), B)(jnp.arange(8.0))
    np.testing.assert_array_equal(a, 2 * jnp.arange(8.0))
    assert (s, none) == ("tag", None)


def test_errors():
    with pytest.raises(ValueError, match=r"pmap: splits exactly one axis over the devices, got \['batch', 'embed'\]"):
        nx.pmap(lambda v: v, (B, E))
    with pytest.raises(TypeError, match=r"pmap: `fn` must be callable"):
        nx.pmap(3, B)
    with pytest.raises(TypeError, match=r"pmap: `axis` is required"):
        nx.pmap(lambda v: v)
    with pytest.raises(TypeError, match=r"pmap: `axis` is required, e.g. @nx.pmap"):
        nx.pmap()
    with pytest.raises(ValueError, match=r"pmap: `devices` is empty"):
        nx.pmap(lambda v: v, B, devices=[])
    with pytest.raises(TypeError, match=r"pmap: spec args\[0\] must be"):
        nx.pmap(lambda v: v, B, args=("x",))
    with pytest.raises(ValueError, match=r"pmap: `kwargs` has specs for \['nope'\]"):
        nx.pmap(lambda v: v, B, kwargs={"nope": 0})


def test_call_errors():
    f = nx.pmap(lambda v, w: v, "batch")
    msg = r"pmap: axis 'batch' has size 4 in argument 'w' \(shape \(4,\)\), but size 8 in argument 'v'"
    with pytest.raises(ValueError, match=msg):
        f(X, jnp.zeros(4))
    msg = r"pmap: axis 'batch' has size 8 in argument 'v' .*, but size 4 in the given Axis\('batch', 4\)"
    with pytest.raises(ValueError, match=msg):
        nx.pmap(lambda v: v, nx.Axis("batch", 4))(X)
    with pytest.raises(ValueError, match=r"pmap: no argument has axis 'batch', so its size is unknown"):
        nx.pmap(lambda: 1.0, "batch")()
    with pytest.raises(ValueError, match=r"pmap: argument 's' is a str, not an array, but its spec \(args\[0\]\)"):
        nx.pmap(lambda s: s, B, args=(0,))("hello")
    with pytest.raises(ValueError, match=r"pmap: argument 'a' of shape \(8,\) has no dimension 1 to map over"):
        nx.pmap(lambda a: a, B, args=(1,))(jnp.zeros(8))
