"""pmap over 4 forced CPU devices against jax.vmap on the positional layout (run by tests/test_multidevice.py)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

import namedax as nx

B, E = nx.Axis("batch", 8), nx.Axis("embed", 3)
xa = jnp.arange(24.0).reshape(3, 8) ** 1.5  # positional layout (embed, batch)
x = nx.named(xa, (E, B))


def shards(arr):  # (device id, rows of the global array it holds)
    return sorted((s.device.id, s.index[0].start, s.index[0].stop) for s in arr.addressable_shards)


def test_matches_jax_vmap(devices):
    w = nx.named(jnp.array([1.0, -2.0, 0.5]), E)
    y = nx.pmap(lambda v, w: nx.sum(v * w, axis=E) + v, B)(x, w)
    ref = jax.vmap(lambda v, w: jnp.sum(v * w) + v, in_axes=(1, None))(xa, w.array)
    assert y.axes == (B, E), y.axes
    np.testing.assert_allclose(y.array, ref, rtol=1e-6)


def test_blocks_of_two_sharded_over_four_devices(devices):
    y = nx.pmap(lambda v: v * 2, B)(x)
    assert y.array.sharding.spec == P("batch:devices"), y.array.sharding
    assert shards(y.array) == [(0, 0, 2), (1, 2, 4), (2, 4, 6), (3, 6, 8)], shards(y.array)
    for s in y.array.addressable_shards:
        np.testing.assert_array_equal(s.data, 2 * xa.T[s.index])


def test_size_not_a_multiple(devices):
    try:
        nx.pmap(lambda v: v, "batch")(nx.zeros({"batch": 6}))
    except ValueError as e:
        assert "size 6" in str(e) and "4 devices" in str(e), e
    else:
        raise AssertionError("no error")


def test_pmean_centres_the_whole_axis(devices):
    y = nx.pmap(lambda v: v - nx.pmean(v, B), B)(x)
    np.testing.assert_allclose(y.array, (xa - np.asarray(xa).mean(axis=1, keepdims=True)).T, rtol=1e-5, atol=1e-4)


def test_psum_pmax_pmin_all_gather_across_devices(devices):
    s, mx, mn, g = nx.pmap(
        lambda v: (nx.psum(v, B), nx.pmax(v, "batch"), nx.pmin(v, B), nx.all_gather(v, B).rename({"batch": "all"})), B
    )(x)
    ref = np.asarray(xa)
    np.testing.assert_allclose(s.array, np.broadcast_to(ref.sum(1), (8, 3)), rtol=1e-5)
    np.testing.assert_array_equal(mx.array, np.broadcast_to(ref.max(1), (8, 3)))
    np.testing.assert_array_equal(mn.array, np.broadcast_to(ref.min(1), (8, 3)))
    assert g.axes == (B, nx.Axis("all", 8), E), g.axes
    np.testing.assert_array_equal(g.array, np.broadcast_to(ref.T, (8, 8, 3)))


def test_axis_index_counts_over_devices(devices):
    i = nx.pmap(lambda v: nx.axis_index(B) + 0 * v["embed", 0].astype(jnp.int32), B)(x)
    np.testing.assert_array_equal(i.array, np.arange(8))


def test_raw_lax_collective_sees_only_the_block(devices):
    y = nx.pmap(lambda v: jax.lax.pmean(v.array, "batch"), B)(x)
    block_means = np.asarray(xa).T.reshape(4, 2, 3).mean(axis=1)
    np.testing.assert_allclose(y, np.repeat(block_means, 2, axis=0), rtol=1e-5)


def test_plain_arrays_with_default_specs(devices):
    a, m = jnp.arange(8.0), jnp.arange(24.0).reshape(8, 3)
    y = nx.pmap(lambda a, m, c, s: a * m + c * s, B)(a, m, jnp.ones((8, 3)), 2.0)
    ref = jax.vmap(lambda a, m, c, s: a * m + c * s, in_axes=(0, 0, 0, None))(a, m, jnp.ones((8, 3)), 2.0)
    np.testing.assert_array_equal(y, ref)
    z = nx.pmap(lambda a, c: a * c, B, args=(0, None))(a, jnp.arange(3.0))
    np.testing.assert_array_equal(z, a[:, None] * jnp.arange(3.0))


def test_decorator_form_and_mapping_axis(devices):
    @nx.pmap(axis={"batch": 8})
    def draw():
        return nx.full(E, 1.0) * nx.axis_index("batch")

    y = draw()
    assert y.axes == (B, E)
    np.testing.assert_array_equal(y.array, np.broadcast_to(np.arange(8.0)[:, None], (8, 3)))
    assert len(y.array.sharding.device_set) == 4


def test_devices_subset(devices):
    y = nx.pmap(lambda v: v - nx.pmean(v, B), B, devices=jax.devices()[:2])(x)
    assert shards(y.array) == [(0, 0, 4), (1, 4, 8)], shards(y.array)
    np.testing.assert_allclose(y.array, (xa - np.asarray(xa).mean(axis=1, keepdims=True)).T, rtol=1e-5, atol=1e-4)
    # an input already sharded over all four devices is moved onto the two
    z = nx.pmap(lambda v: v + 1, B, devices=jax.devices()[2:])(nx.pmap(lambda v: v * 2, B)(x))
    assert shards(z.array) == [(2, 0, 4), (3, 4, 8)], shards(z.array)
    np.testing.assert_array_equal(z.array, 2 * xa.T + 1)


def test_vmapped_fori_loop_with_constant_carry(devices):
    def f(v):
        return jax.lax.fori_loop(0, 3, lambda i, c: c * 0.5 + v.array, jnp.zeros(3))

    y = nx.pmap(f, B)(x)
    ref = jax.vmap(lambda v: jax.lax.fori_loop(0, 3, lambda i, c: c * 0.5 + v, jnp.zeros(3)), in_axes=1)(xa)
    np.testing.assert_allclose(y, ref, rtol=1e-6)


def test_under_jit_kwargs_static_outputs_and_modules(devices):
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


def test_per_element_keys(devices):
    keys = nx.random.split(jax.random.key(0), B)
    y = nx.pmap(lambda k: nx.random.normal(k, E), B)(keys)
    ref = jax.vmap(lambda k: jax.random.normal(k, (3,)))(jax.random.split(jax.random.key(0), 8))
    np.testing.assert_array_equal(y.array, ref)


# --- arrays closed over by the mapped function (issue: a pmap's output on its private mesh broke the next call)


def test_closing_over_another_pmaps_output():
    table = nx.pmap(lambda v: v * 2.0, B)(nx.arange(B).astype(float))  # sharded on pmap's own mesh
    ids = nx.named(jnp.arange(16).reshape(8, 2) % 8, ("row", "pick"))
    out = nx.pmap(lambda i: nx.sum(table["batch", i]), "row")(ids)
    ref = (2.0 * np.arange(8.0))[np.asarray(ids.array)].sum(-1)
    assert out.axes == (nx.Axis("row", 8),)
    np.testing.assert_allclose(out.array, ref)
    # passed explicitly under another name: moved onto the new mapping's layout
    np.testing.assert_allclose(nx.pmap(lambda a: a + 1, "row")(nx.rename(table, {"batch": "row"})).array,
                               2.0 * np.arange(8.0) + 1)  # fmt: skip


def test_closing_over_an_array_placed_by_rules():
    mesh = jax.make_mesh((2, 2), ("data", "model"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
    w = nx.sharding.shard(nx.named(jnp.arange(12.0).reshape(4, 3), ("k", "embed")), {"k": "data"}, mesh=mesh)
    y = nx.pmap(lambda v: nx.dot(w, v, axis=E), B)(x)
    np.testing.assert_allclose(y.array, (np.arange(12.0).reshape(4, 3) @ np.asarray(xa)).T, rtol=1e-6)


def test_jitted_training_steps_closing_over_parameters():
    """A loss that maps over a batch with nx.pmap while indexing the parameters it differentiates:
    every step works and equals the same training with jax.vmap."""
    V = nx.Axis("vocab", 5)
    ids = nx.named(jnp.arange(8) % 5, (B,))
    targets = nx.named(jnp.linspace(-1.0, 1.0, 8), (B,))

    def loss(emb):
        per = nx.pmap(lambda i, t: (emb["vocab", i] - t) ** 2, B)(ids, targets)
        return nx.mean(per).array

    def raw_loss(e):
        return jnp.mean(jax.vmap(lambda i, t: (e[i] - t) ** 2)(ids.array, targets.array))

    step = jax.jit(lambda e: e - 0.5 * jax.grad(loss)(e))
    raw_step = jax.jit(lambda e: e - 0.5 * jax.grad(raw_loss)(e))
    emb, ref = nx.named(jnp.arange(5.0), (V,)), jnp.arange(5.0)
    for _ in range(4):
        emb, ref = step(emb), raw_step(ref)
    np.testing.assert_allclose(emb.array, ref, rtol=1e-6)


# --- on the user's mesh: the axis rules put the mapped axis on mesh axes of the mesh set with jax.set_mesh


@pytest.mark.parametrize("mode", ["auto", "explicit"])
@pytest.mark.parametrize("rule", ["data", ("data", "model")])
def test_runs_on_the_mesh_the_rules_name(mode, rule):
    types = (jax.sharding.AxisType.Explicit if mode == "explicit" else jax.sharding.AxisType.Auto,) * 2
    mesh = jax.make_mesh((2, 2), ("data", "model"), axis_types=types)
    w = nx.named(jnp.array([1.0, -2.0, 0.5]), E)

    def f(v, w):
        return nx.sum(v * w, axis=E) - nx.pmean(v, B) * nx.axis_index(B)

    ref = jax.vmap(lambda v, w: jnp.sum(v * w) - jnp.mean(xa, axis=1) * 0, in_axes=(1, None))(xa, w.array)
    ref = ref - (np.asarray(xa).mean(1)[None, :] * np.arange(8)[:, None])
    with jax.set_mesh(mesh), nx.sharding.axis_rules({"batch": rule}):
        y = nx.pmap(f, B)(x, w)
        yj = jax.jit(nx.pmap(f, B))(x, w)
    for out in (y, yj):
        assert out.axes == (B, E)
        np.testing.assert_allclose(out.array, ref, rtol=1e-5, atol=1e-5)
        assert out.array.sharding.mesh.axis_names == ("data", "model")
        assert out.array.sharding.spec[0] == rule
    with jax.set_mesh(mesh), nx.sharding.axis_rules({"embed": "data"}):  # no rule for batch: every device
        out = nx.pmap(f, B)(x, w)
    assert out.array.sharding.spec[0] == ("data", "model")
    np.testing.assert_allclose(out.array, ref, rtol=1e-5, atol=1e-5)


def test_size_not_a_multiple_of_the_ruled_mesh_axes():
    mesh = jax.make_mesh((2, 2), ("data", "model"))
    with jax.set_mesh(mesh), nx.sharding.axis_rules({"batch": ("data", "model")}):
        msg = r"size 6, which is not a multiple of the 4 shards of mesh axes \('data', 'model'\)"
        with pytest.raises(ValueError, match=msg):
            nx.pmap(lambda v: v, "batch")(nx.zeros({"batch": 6}))
