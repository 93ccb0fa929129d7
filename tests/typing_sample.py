"""Typical user code, for static type checkers: pyright must report 0 errors on this file.

    /tmp/pyright_tool/bin/pyright --pythonpath /tmp/venv/bin/python tests/typing_sample.py

It is not a test module (pytest collects ``test_*.py``), but tests/test_typing_surface.py runs
`main` so that the sample stays correct code. ``assert_type`` makes the checker prove that results
are `NamedArray` (and not an unknown type that would let anything through); at run time it does
nothing.
"""

# ruff: noqa: F722  (axis names in string annotations)

from __future__ import annotations

from typing import assert_type

import beartype
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import jaxtyped

import namedax as nx
from namedax import NamedArray
from namedax.typing import Float, f32

Batch, Embed, Hidden = nx.Axis("batch", 2), nx.Axis("embed", 3), nx.Axis("hidden", 4)


def arithmetic(x: NamedArray["batch embed"], bias: NamedArray[" embed"]) -> NamedArray["batch embed"]:
    y = x + 1.0
    assert_type(y, NamedArray)
    y = 2 * y - bias
    y = y / 3.0 + y // 2 + y % 2 - (-y) + abs(y) + (+y)
    y = y**2 + 2.0**y + 1 / y
    y = y * np.float32(0.5) + jnp.ones(()) + np.float32(1.0) + jnp.asarray(2.0) * y
    scaled = y * jnp.float32(0.5)  # Any: jnp.float32(...) is untyped, and an Any operand gives Any
    y = 1.5 - y
    y += bias  # augmented assignment falls back on __add__
    y *= 2
    assert_type(y, NamedArray)
    return y + scaled


def integer_ops(i: NamedArray) -> NamedArray:
    j = (i & 1) | (i ^ 2) | (3 & i) | (i << 1) | (1 >> i) | ~i
    assert_type(j, NamedArray)
    return j


def comparisons(x: f32["batch embed"]) -> NamedArray:
    mask = (x > 0.0) & (x <= 5.0) | (x == 1.0) | (x != 2.0) | (1.0 < x) | (x >= x)
    assert_type(mask, NamedArray)
    assert_type(x == x, NamedArray)
    kept = nx.where(mask, x, 0.0)
    return kept


def methods(x: Float["batch embed"]) -> list[NamedArray]:
    mask = x > 1.0
    out = [
        x.sum("embed"),
        x.sum(Embed, where=mask),
        x.mean(("batch", "embed")),
        x.max(),
        x.min("batch", initial=10.0),
        x.prod("embed", dtype=jnp.float32),
        x.std("batch", ddof=1),
        x.var("embed"),
        mask.any("embed"),
        mask.all(),
        x.argmax("embed"),
        x.argmin(),
        x.cumsum("embed"),
        x.cumprod(Embed),
        x.sort("embed", descending=True),
        x.argsort("batch"),
        x.flatten_axes(("batch", "embed"), "flat").unflatten_axis("flat", (Batch, Embed)),
        x.take("embed", jnp.array([0, 2])),
        x.roll(1, "embed"),
        x.pad({"embed": (1, 0)}),
        x.round(1),
        x.clip(0.0, 4.0),
        x.conj(),
        x.astype(jnp.int32),
        x.rename({"embed": "features"}),
        x.rearrange(("embed", ...)),
    ]
    parts = x.split("embed", [1, 2]) + x.unbind("batch")
    assert_type(parts, list[NamedArray])
    for o in out:
        assert_type(o, NamedArray)
    return out + parts


def indexing(x: NamedArray["batch embed"], ids: NamedArray) -> list[NamedArray]:
    out = [
        x["batch", 0],
        x[Batch, 1, "embed", 0:2],
        x[{"batch": 0, "embed": slice(0, 2)}],
        x["embed", ids],
        x.at["batch", 0].set(1.0),
        x.at["batch", 1].add(x["batch", 0]),
        x.at[{"embed": 2}].multiply(2.0),
        x.at["batch", 0].get(),
    ]
    for o in out:
        assert_type(o, NamedArray)
    return out


def contractions(x: f32["batch embed"], w: f32["embed hidden"]) -> NamedArray["batch hidden"]:
    h = nx.dot(x, w, axis="embed")
    assert_type(h, NamedArray)
    h2 = x.dot(w, axis=Embed)
    assert_type(h2, NamedArray)
    return h + h2 + nx.einsum("batch embed, embed hidden -> batch hidden", x, w)


def conversions(x: NamedArray) -> tuple[float, int, bool, dict[str, int]]:
    total = float(x.sum())
    n = int(x.argmax())
    positive = bool((x > 0).all())
    return total, n, positive, x.shape


@jaxtyped(typechecker=beartype.beartype)
def dense(w: f32["out in"], b: f32[" out"], x: f32["batch in"]) -> f32["batch out"]:
    return nx.dot(x, w, axis="in") + b


class Layer(eqx.Module):
    weight: f32["hidden embed"]
    bias: f32[" hidden"]

    def __call__(self, x: f32[" embed"]) -> f32[" hidden"]:
        return nx.nn.relu(nx.dot(self.weight, x, axis="embed") + self.bias)


def transforms(x: f32["batch embed"], layer: Layer) -> NamedArray:
    per_row = nx.vmap(layer, Batch)(x)

    @nx.vmap(axis=Batch)
    def normalise(v: f32[" embed"]) -> f32[" embed"]:
        return (v - v.mean()) / (v.std() + 1e-6)

    y: NamedArray = normalise(x)
    z = nx.nn.Linear.init(Embed, Hidden, key=jax.random.key(0))(y)
    assert_type(z, NamedArray)
    return per_row + z


def main() -> list:
    """Run every function of the sample once (tests/test_typing_surface.py calls this)."""
    x = nx.named(jnp.arange(6.0).reshape(2, 3), (Batch, Embed))
    bias = nx.named(jnp.array([0.5, -0.5, 1.0]), Embed)
    w = nx.ones((Embed, Hidden))
    layer = Layer(nx.ones((Hidden, Embed)), nx.zeros(Hidden))
    return [
        arithmetic(x, bias),
        integer_ops(nx.arange(Embed)),
        comparisons(x),
        methods(x),
        indexing(x, nx.named(jnp.array([2, 0]), "pick")),
        contractions(x, w),
        conversions(x),
        dense(nx.rename(w, {"embed": "in", "hidden": "out"}), nx.zeros({"out": 4}), x.rename({"embed": "in"})),
        transforms(x, layer),
    ]
