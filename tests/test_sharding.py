"""Sharding rules, pspec and plan without devices to spare (placement itself: tests/multidevice)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AbstractMesh
from jax.sharding import PartitionSpec as P

import namedax as nx

MESH = AbstractMesh((2, 4), ("data", "model"))


@pytest.fixture(autouse=True)
def no_global_rules():
    yield
    nx.sharding.set_axis_rules({})


def x_of(*names_sizes, dtype=jnp.float32):
    return nx.zeros(dict(names_sizes), dtype=dtype)


def test_rules_normalise_and_validate():
    nx.sharding.set_axis_rules([("batch", "data"), ("mlp", ["data", "model"]), ("embed", None)])
    assert nx.sharding.current_axis_rules() == (("batch", ("data",)), ("mlp", ("data", "model")), ("embed", None))
    with pytest.raises(TypeError, match="set_axis_rules: the rule for 'mlp' must give"):
        nx.sharding.set_axis_rules({"mlp": 3})
    with pytest.raises(TypeError, match="axis_rules: `rules` must be a dict"):
        with nx.sharding.axis_rules("batch"):
            pass
    with pytest.raises(TypeError, match="distinct"):
        nx.sharding.pspec(x_of(("a", 2)), {"a": ("data", "data")})


def test_context_replaces_and_restores_global_rules():
    x = x_of(("batch", 8), ("embed", 4))
    nx.sharding.set_axis_rules({"batch": "data"})
    assert nx.sharding.pspec(x) == P("data", None)
    with nx.sharding.axis_rules({"embed": "model"}):
        assert nx.sharding.pspec(x) == P(None, "model")
        with nx.sharding.axis_rules({}):
            assert nx.sharding.pspec(x) == P(None, None)
        assert nx.sharding.pspec(x) == P(None, "model")
    assert nx.sharding.pspec(x) == P("data", None)
    assert nx.sharding.pspec(x, {"embed": "data"}) == P(None, "data")  # an explicit argument wins


def reference_assign(names, rules):
    """The flax convention, written out: rules in order, each taking free mesh axes for a name
    not yet decided."""
    used, out, decided = set(), {}, set()
    for name, mesh in rules:
        if name in names and name not in decided:
            if mesh is None:
                decided.add(name)
            elif not used & set(mesh):
                out[name] = mesh
                used |= set(mesh)
                decided.add(name)
    return P(*[None if n not in out else out[n][0] if len(out[n]) == 1 else out[n] for n in names])


@pytest.mark.parametrize(
    "rules",
    [
        [("batch", ("data",)), ("embed", ("data",))],
        [("embed", ("data",)), ("batch", ("data",))],
        [("embed", ("data",)), ("embed", ("model",)), ("batch", ("data",))],
        [("batch", ("data", "model")), ("embed", ("model",)), ("mlp", ("data",))],
        [("embed", None), ("embed", ("model",)), ("mlp", ("model",))],
        [("mlp", ("model",)), ("batch", ("data",)), ("embed", ("model",))],
    ],
)
@pytest.mark.parametrize("order", [("batch", "embed", "mlp"), ("mlp", "embed", "batch"), ("embed", "batch")])
def test_pspec_follows_rule_order_never_naming_a_mesh_axis_twice(rules, order):
    x = x_of(*[(n, 8) for n in order])
    spec = nx.sharding.pspec(x, rules)
    assert spec == reference_assign(order, rules)
    flat = [m for e in spec if e is not None for m in ((e,) if isinstance(e, str) else e)]
    assert len(flat) == len(set(flat))


def test_pspec_of_a_pytree_and_plain_leaves():
    tree = {"w": x_of(("embed", 4), ("mlp", 8)), "n": 3, "a": jnp.zeros(3)}
    assert nx.sharding.pspec(tree, {"mlp": "model"}) == {"w": P(None, "model"), "n": P(), "a": P()}


def test_plan_bytes_against_hand_computed():
    params = {
        "up": x_of(("embed", 16), ("mlp", 64)),  # 4096 B: split 2 x 4
        "bias": x_of(("mlp", 64), dtype=jnp.bfloat16),  # 128 B: split 4
        "norm": x_of(("embed", 16)),  # 64 B: split 2
        "step": jnp.zeros(()),  # not named: not in the plan
    }
    p = nx.sharding.plan(params, [("embed", "data"), ("mlp", "model")], mesh=MESH)
    rows = {r.path: r for r in p.rows}
    assert set(rows) == {"['up']", "['bias']", "['norm']"}
    assert (rows["['up']"].bytes_total, rows["['up']"].bytes_per_device) == (16 * 64 * 4, 16 * 64 * 4 // 8)
    assert (rows["['bias']"].bytes_total, rows["['bias']"].bytes_per_device) == (64 * 2, 64 * 2 // 4)
    assert rows["['norm']"].bytes_per_device == 16 * 4 // 2
    assert p.bytes_per_device == 512 + 32 + 32
    assert p.bytes_total == 4096 + 128 + 64
    assert not any(r.replicated for r in p.rows)
    text = str(p)
    assert "total per device: 576 B (of 4.2 KiB)" in text and "['up']" in text and "(data, model)" in text


def test_plan_of_shapes_only_and_replicated_rows():
    shapes = jax.eval_shape(lambda: {"w": nx.zeros({"embed": 1024, "vocab": 50_000})})
    p = nx.sharding.plan(shapes, {"batch": "data"}, mesh=MESH)
    (row,) = p.rows
    assert row.replicated and row.bytes_per_device == row.bytes_total == 1024 * 50_000 * 4
    assert "replicated" in str(p)


def test_plan_errors():
    x = {"x": x_of(("embed", 6))}
    with pytest.raises(ValueError, match=r"plan: axis 'embed' of size 6 \(at \['x'\]\) cannot be split over mesh axes "
                                         r"\('model',\) \(sizes \{'model': 4\}, 4 shards\)"):  # fmt: skip
        nx.sharding.plan(x, {"embed": "model"}, mesh=MESH)
    with pytest.raises(ValueError, match="mesh axis 'tensor', which the mesh does not have"):
        nx.sharding.plan(x, {"embed": "tensor"}, mesh=MESH)
    with pytest.raises(ValueError, match="plan: no device mesh"):
        nx.sharding.plan(x, {"embed": "data"})


def test_describe_and_shard_on_one_device():
    mesh = jax.make_mesh((1,), ("data",))
    x = nx.named(jnp.arange(12.0).reshape(3, 4), ("batch", "embed"))
    assert nx.sharding.describe(x) == {"batch": None, "embed": None}
    y = nx.sharding.shard({"x": x, "k": 1}, {"embed": "data"}, mesh=mesh)
    assert y["k"] == 1 and y["x"].array.sharding.spec == P(None, "data")
    assert nx.sharding.describe(y) == {"x": {"batch": None, "embed": "data"}, "k": None}
    np.testing.assert_array_equal(np.asarray(y["x"].array), np.arange(12.0).reshape(3, 4))
    with jax.set_mesh(mesh), nx.sharding.axis_rules({"batch": "data"}):
        z = jax.jit(nx.sharding.shard)(x)
    assert z.array.sharding.spec == P("data", None)
