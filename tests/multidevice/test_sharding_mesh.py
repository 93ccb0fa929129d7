"""Sharding by name on a (data=2, model=2) mesh of 4 forced CPU devices: placement checked on the
arrays' own shardings, results against the same computation without any mesh."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import namedax as nx
from helpers import tree_allclose

Batch, Embed, Mlp = nx.Axis("batch", 8), nx.Axis("embed", 4), nx.Axis("mlp", 6)
DP = {"batch": "data"}
FSDP_STORE = [("batch", "data"), ("embed", "data")]  # params split along embed; a batch keeps data
TP = {"batch": "data", "mlp": "model"}


def mesh_of(mode):
    types = (AxisType.Explicit,) * 2 if mode == "explicit" else (AxisType.Auto,) * 2
    return jax.make_mesh((2, 2), ("data", "model"), axis_types=types)


class Mlp2(eqx.Module):
    up: nx.nn.Linear
    down: nx.nn.Linear

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.up = nx.nn.Linear.init(Embed, Mlp, key=k1)
        self.down = nx.nn.Linear.init(Mlp, Embed, key=k2)

    def __call__(self, x):
        return self.down(nx.nn.relu(self.up(x)))


def loss_fn(model, x, y):
    return nx.mean((model(x) - y) ** 2).array


def data():
    kx, ky = jax.random.split(jax.random.key(1))
    return nx.random.normal(kx, (Batch, Embed)), nx.random.normal(ky, (Batch, Embed))


def reference_steps(n=3):
    model, (x, y) = Mlp2(jax.random.key(0)), data()
    opt = optax.sgd(0.1)
    state = opt.init(eqx.filter(model, eqx.is_array))
    losses = []
    for _ in range(n):
        loss, g = eqx.filter_value_and_grad(loss_fn)(model, x, y)
        upd, state = opt.update(g, state)
        model = eqx.apply_updates(model, upd)
        losses.append(float(loss))
    return model, losses


def sharded_steps(mesh, store_rules, compute_rules, n=3):
    """A complete training step: parameters stored under ``store_rules``, gathered to
    ``compute_rules`` for the forward pass, gradients and updates kept in storage layout."""
    opt = optax.sgd(0.1)
    with jax.set_mesh(mesh):
        model = nx.sharding.shard(Mlp2(jax.random.key(0)), store_rules)
        x, y = nx.sharding.shard(data(), store_rules)
        state = opt.init(eqx.filter(model, eqx.is_array))

        @eqx.filter_jit
        def step(model, state, x, y):
            def loss(m):
                return loss_fn(nx.sharding.shard(m, compute_rules), x, y)

            value, g = eqx.filter_value_and_grad(loss)(model)
            g = nx.sharding.shard(g, store_rules)
            upd, state = opt.update(g, state)
            return eqx.apply_updates(model, upd), state, value

        losses = []
        for _ in range(n):
            model, state, value = step(model, state, x, y)
            losses.append(float(value))
    return model, losses, (x, y)


@pytest.mark.parametrize("mode", ["auto", "explicit"])
def test_shard_places_data_by_name(devices, mode):
    mesh = mesh_of(mode)
    x = nx.random.normal(jax.random.key(0), (Embed, Batch))
    y = nx.sharding.shard(x, TP, mesh=mesh)
    assert y.array.sharding == NamedSharding(mesh, P(None, "data"))
    assert nx.sharding.describe(y) == {"embed": None, "batch": "data"}
    np.testing.assert_array_equal(np.asarray(y.array), np.asarray(x.array))
    assert {s.data.shape for s in y.array.addressable_shards} == {(4, 4)}


def test_two_names_on_one_mesh_axis_first_rule_wins(devices):
    mesh = mesh_of("explicit")
    w = nx.named(jnp.arange(32.0).reshape(4, 8), (Embed, Batch))
    y = nx.sharding.shard(w, FSDP_STORE, mesh=mesh)  # batch's rule comes first: embed stays whole
    assert y.array.sharding.spec == P(None, "data")
    p = nx.sharding.plan({"w": w}, FSDP_STORE, mesh=mesh)
    assert p.rows[0].note == "embed replicated: 'data' taken by 'batch'"
    y2 = nx.sharding.shard(w, list(reversed(FSDP_STORE)), mesh=mesh)
    assert y2.array.sharding.spec == P("data", None)


def test_tuple_rule_splits_over_both_mesh_axes(devices):
    x = nx.named(jnp.arange(8.0), (Batch,))
    y = nx.sharding.shard(x, {"batch": ("data", "model")}, mesh=mesh_of("auto"))
    assert y.array.sharding.spec == P(("data", "model"))
    assert [s.data.shape for s in y.array.addressable_shards] == [(2,)] * 4
    assert nx.sharding.describe(y) == {"batch": ("data", "model")}


@pytest.mark.parametrize("mode", ["auto", "explicit"])
@pytest.mark.parametrize(
    "layout",
    [("data parallel", DP, DP), ("fsdp", FSDP_STORE, DP), ("tensor parallel", TP, TP)],
    ids=lambda v: v[0] if isinstance(v, tuple) else v,
)
def test_training_step_equals_unsharded(devices, mode, layout):
    name, store, compute = layout
    ref_model, ref_losses = reference_steps()
    model, losses, (x, _) = sharded_steps(mesh_of(mode), store, compute)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    tree_allclose(eqx.filter(model, eqx.is_array), eqx.filter(ref_model, eqx.is_array), rtol=1e-5, atol=1e-6)
    assert x.array.sharding.spec == P("data", None)
    w = model.up.weight  # axes (mlp, embed)
    expected = {"data parallel": P(None, None), "fsdp": P(None, "data"), "tensor parallel": P("model", None)}[name]
    assert w.array.sharding.spec == expected, (name, w.axes, w.array.sharding)


def test_describe_reads_traced_values_in_explicit_mode(devices):
    mesh = mesh_of("explicit")
    seen = {}
    with jax.set_mesh(mesh):
        x = nx.sharding.shard(nx.zeros((Batch, Mlp)), TP)

        @jax.jit
        def f(x):
            seen["in"] = nx.sharding.describe(x)
            y = nx.sharding.shard(x, DP)  # reshard: mlp gathered
            seen["out"] = nx.sharding.describe(y)
            return y

        out = f(x)
    assert seen == {"in": {"batch": "data", "mlp": "model"}, "out": {"batch": "data", "mlp": None}}
    assert out.array.sharding.spec == P("data", None)


def test_parameters_born_sharded(devices):
    """init under jit with shard applied: no device ever holds the whole weight (Auto axes: XLA
    partitions the random draw itself; on Explicit axes jax.random would need `out_sharding`)."""
    mesh = mesh_of("auto")
    Big, Out = nx.Axis("embed", 1024), nx.Axis("mlp", 512)
    rules = {"embed": "data", "mlp": "model"}

    def init(key):
        return nx.sharding.shard(nx.nn.Linear.init(Big, Out, key=key, use_bias=False), rules)

    with jax.set_mesh(mesh):
        compiled = jax.jit(init).lower(jax.random.key(0)).compile()
        layer = compiled(jax.random.key(0))
    weight_bytes = 1024 * 512 * 4
    assert layer.weight.array.sharding.spec in (P("model", "data"), P("data", "model"))
    assert {s.data.nbytes for s in layer.weight.array.addressable_shards} == {weight_bytes // 4}
    mem = compiled.memory_analysis()
    assert mem.output_size_in_bytes == weight_bytes // 4
    assert mem.temp_size_in_bytes < weight_bytes  # measured: 1.5 MB of scratch for a 2 MB weight
    ref = nx.nn.Linear.init(Big, Out, key=jax.random.key(0), use_bias=False)
    np.testing.assert_array_equal(np.asarray(layer.weight.array), np.asarray(ref.weight.array))


def test_shard_errors_name_the_axis_and_mesh(devices):
    mesh = mesh_of("auto")
    x = nx.zeros({"batch": 8, "embed": 3})
    with pytest.raises(ValueError, match=r"shard: axis 'embed' of size 3 cannot be split over mesh axes \('model',\)"):
        nx.sharding.shard(x, {"embed": "model"}, mesh=mesh)
    with pytest.raises(ValueError, match=r"mesh axis 'modle', which the mesh does not have"):
        nx.sharding.shard(x, {"batch": "modle"}, mesh=mesh)
    with pytest.raises(ValueError, match=r"plan: axis 'embed' of size 3 \(at \['x'\]\)"):
        nx.sharding.plan({"x": x}, {"embed": "model"}, mesh=mesh)
    with pytest.raises(ValueError, match="no device mesh"):
        nx.sharding.shard(x, {"batch": "data"})


def test_pspec_checks_sizes_against_the_context_mesh(devices):
    with jax.set_mesh(mesh_of("explicit")):
        with pytest.raises(ValueError, match="'batch' of size 3"):
            nx.sharding.pspec(nx.zeros({"batch": 3}), {"batch": "data"})
        assert nx.sharding.pspec(nx.zeros({"batch": 4}), {"batch": "data"}) == P("data")


@pytest.mark.parametrize("layout", ["data parallel", "fsdp", "tensor parallel"])
def test_step_has_the_collectives_of_the_hand_written_step(devices, layout):
    """benchmarks/bench_sharding.py's step placed by rules vs the positional step placed by hand: same
    results, exactly the same collectives in the compiled HLO, same parameter bytes per device."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import bench_sharding as b

    mesh, named_step, n_args, raw_step, r_args = b.setup(layout)
    assert b.check_same(mesh, named_step, n_args, raw_step, r_args)
    with jax.set_mesh(mesh):
        n_hlo = named_step.lower(*n_args).compile().as_text()
    counts = b.count_collectives(n_hlo)
    assert counts == b.count_collectives(raw_step.lower(*r_args).compile().as_text())
    assert sum(counts.values()) > 0
    assert b.per_device_bytes(jax.tree.leaves(n_args[0])) == b.per_device_bytes(r_args[0])


def test_dot_out_sharding_by_name_on_explicit_axes(devices):
    """A contraction over an axis sharded in both operands: JAX cannot infer the output's sharding;
    nx.dot takes it by name, or from the active rules."""
    mesh = mesh_of("explicit")
    rules = {"batch": "data", "mlp": "model"}
    h = nx.random.normal(jax.random.key(0), (Batch, Mlp))
    w = nx.random.normal(jax.random.key(1), (Mlp, Embed))
    ref = np.asarray(h.array) @ np.asarray(w.array)
    with jax.set_mesh(mesh):
        hs, ws = nx.sharding.shard((h, w), rules)
        with pytest.raises(Exception, match="out_sharding"):  # what JAX says with neither
            jax.jit(lambda a, b: jnp.einsum("bm,me->be", a, b))(hs.array, ws.array)
        by_name = jax.jit(lambda a, b: nx.dot(a, b, axis="mlp", out_sharding={"batch": "data"}))(hs, ws)
        with nx.sharding.axis_rules(rules):
            from_rules = jax.jit(lambda a, b: nx.dot(a, b, axis="mlp"))(hs, ws)
        spec = jax.jit(lambda a, b: nx.dot(a, b, axis="mlp", out_sharding=P(None, "data")))(hs, ws)
        with nx.sharding.axis_rules(rules):
            eager = nx.dot(hs, ws, axis="mlp")
    for out in (by_name, from_rules, eager):
        assert out.axes == (Batch, Embed)
        assert out.array.sharding.spec == P("data", None)
        np.testing.assert_allclose(out.array, ref, rtol=1e-5, atol=1e-5)
    assert spec.array.sharding.spec == P(None, "data")
    with pytest.raises(KeyError, match="out_sharding names \\['vocab'\\]"):
        nx.dot(h, w, axis="mlp", out_sharding={"vocab": "data"})
