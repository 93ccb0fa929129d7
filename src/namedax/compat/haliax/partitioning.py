"""``haliax.partitioning``: sharding by axis name (re-exports of the `namedax.sharding` adapters)."""

from ._partitioning import (
    auto_sharded as auto_sharded,
    axis_mapping as axis_mapping,
    shard as shard,
    shard_with_axis_mapping as shard_with_axis_mapping,
)
