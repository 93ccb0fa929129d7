"""Sharding by name: say once which named axis lives on which mesh axis, and JAX places the arrays.

    >>> import jax, jax.numpy as jnp
    >>> import namedax as nx
    >>> x = nx.named(jnp.zeros((8, 4)), ("batch", "embed"))
    >>> with nx.sharding.axis_rules({"batch": "data"}):
    ...     nx.sharding.pspec(x)
    P('data', None)
"""

from ._rules import (
    axis_rules as axis_rules,
    current_axis_rules as current_axis_rules,
    set_axis_rules as set_axis_rules,
)
from ._api import describe as describe, pspec as pspec, shard as shard
from ._plan import Plan as Plan, PlanRow as PlanRow, plan as plan
