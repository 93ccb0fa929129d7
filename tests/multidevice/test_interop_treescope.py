"""treescope shows the sharding of a NamedArray by name on 4 forced CPU devices."""

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import AxisType

import namedax as nx

treescope = pytest.importorskip("treescope")


def test_sharding_by_name_in_the_rendering(devices):
    mesh = jax.make_mesh((2, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    x = nx.named(jnp.zeros((8, 4)), ("batch", "embed"))
    with nx.sharding.axis_rules({"batch": "data", "embed": "model"}):
        y = nx.sharding.shard(x, mesh=mesh)
    text = treescope.render_to_text(y)
    assert "sharded{'batch': 'data', 'embed': 'model'}" in text
    assert "sharded" not in treescope.render_to_text(x)  # one device: nothing split
    adapter = treescope.type_registries.lookup_ndarray_adapter(y)
    info = adapter.get_sharding_info_for_array_data(y)
    assert info.shard_shape == (4, 2) and len(info.device_index_to_shard_slices) == 4
