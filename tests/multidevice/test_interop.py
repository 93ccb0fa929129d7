"""Interop on 4 forced CPU devices: treescope shows the sharding by name; loading a checkpoint into a
sharded model puts every array on the model's sharding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding

import namedax as nx

RULES = {"batch": "data", "embed": "model"}


def mesh():
    return jax.make_mesh((2, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)


def test_sharding_by_name_in_the_rendering(devices):
    treescope = pytest.importorskip("treescope")
    x = nx.named(jnp.zeros((8, 4)), ("batch", "embed"))
    with nx.sharding.axis_rules(RULES):
        y = nx.sharding.shard(x, mesh=mesh())
    text = treescope.render_to_text(y)
    assert "sharded{'batch': 'data', 'embed': 'model'}" in text
    assert "sharded" not in treescope.render_to_text(x)  # one device: nothing split
    adapter = treescope.type_registries.lookup_ndarray_adapter(y)
    info = adapter.get_sharding_info_for_array_data(y)
    assert info.shard_shape == (4, 2) and len(info.device_index_to_shard_slices) == 4


def test_load_into_a_sharded_model_keeps_its_sharding(devices, tmp_path):
    pytest.importorskip("safetensors")
    lin = nx.nn.Linear.init(nx.Axis("embed", 4), nx.Axis("batch", 8), key=jax.random.key(0))
    path = tmp_path / "lin.safetensors"
    nx.nn.save(path, lin)
    with nx.sharding.axis_rules(RULES):
        like = nx.sharding.shard(
            nx.nn.Linear.init(nx.Axis("embed", 4), nx.Axis("batch", 8), key=jax.random.key(1)), mesh=mesh()
        )
    back = nx.nn.load(path, like=like)
    assert isinstance(back.weight.array.sharding, NamedSharding)
    assert back.weight.array.sharding == like.weight.array.sharding
    assert nx.sharding.describe(back.weight) == {"batch": "data", "embed": "model"}
    np.testing.assert_array_equal(np.asarray(back.weight.array), np.asarray(lin.weight.array))


def test_load_into_a_sharded_stack_restacks_onto_its_sharding(devices, tmp_path):
    pytest.importorskip("safetensors")
    Layers, Embed = nx.Axis("layers", 4), nx.Axis("embed", 4)

    def build(seed):
        keys = jax.random.split(jax.random.key(seed), 4)
        return nx.nn.Stacked.init(Layers, nx.nn.Linear)(Embed, nx.Axis("batch", 8), key=keys)

    stack = build(0)
    path = tmp_path / "stack.safetensors"
    nx.nn.save(path, stack)
    with nx.sharding.axis_rules({"layers": "data", "embed": "model"}):
        like = nx.sharding.shard(build(1), mesh=mesh())
    back = nx.nn.load(path, like=like)
    assert back.stacked.weight.array.sharding == like.stacked.weight.array.sharding
    assert nx.sharding.describe(back.stacked.weight) == {"layers": "data", "batch": None, "embed": "model"}
    np.testing.assert_array_equal(np.asarray(back.stacked.weight.array), np.asarray(stack.stacked.weight.array))
