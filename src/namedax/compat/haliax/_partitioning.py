"""haliax's sharding names (``shard``, ``auto_sharded``, ``axis_mapping``) on `namedax.sharding`.

haliax's "axis mapping" is namedax's axis rules: ``{axis name: mesh axis}``.

    >>> import jax, jax.numpy as jnp
    >>> import namedax.compat.haliax as hax
    >>> mesh = jax.make_mesh((1,), ("data",))
    >>> x = hax.named(jnp.zeros((8, 4)), ("batch", "embed"))
    >>> with hax.axis_mapping({"batch": "data"}):
    ...     hax.auto_sharded(x, mesh).array.sharding.spec
    P('data', None)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from ...sharding import _api, _rules


def shard(x: Any, mapping: Mapping[str, Any] | None = None, mesh: Any = None) -> Any:
    """haliax's ``shard(x, mapping=None, mesh=None)``: `namedax.sharding.shard` with ``mapping`` as the rules."""
    return _api.shard(x, mapping, mesh)


def shard_with_axis_mapping(x: Any, mapping: Mapping[str, Any], mesh: Any = None) -> Any:
    """haliax's older name of `shard`."""
    return _api.shard(x, mapping, mesh)


def auto_sharded(x: Any, mesh: Any = None) -> Any:
    """haliax's ``auto_sharded(x, mesh=None)``: `namedax.sharding.shard` with the active axis rules."""
    return _api.shard(x, None, mesh)


@contextlib.contextmanager
def axis_mapping(mapping: Mapping[str, Any], *, merge: bool = False, **kwargs: Any) -> Iterator[None]:
    """haliax's ``axis_mapping`` context: `namedax.sharding.axis_rules` (``merge=True`` adds to the active rules)."""
    rules = {**dict(_rules.current_axis_rules()), **dict(mapping)} if merge else dict(mapping)
    with _rules.axis_rules({**rules, **kwargs}):
        yield
