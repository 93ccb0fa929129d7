"""Pooling against a numpy loop over windows (flax's semantics), with axes in several orders."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import namedax as nx
from helpers import assert_named_close as _assert_named_close

NAMES = ("batch", "h", "w", "c")  # the positional layout of the reference


def assert_named_close(y, ref, order, rtol=1e-5, atol=1e-6):
    assert tuple(a.size for a in y.axes) == y.array.shape, (y.axes, y.array.shape)  # axes tell the truth
    _assert_named_close(y, ref, order, rtol, atol)


def _pads(n, k, s, padding):
    if padding == "VALID":
        return (0, 0)
    if padding == "SAME":
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        return (total // 2, total - total // 2)
    return padding


def _ref_pool(x, window, stride, padding, kind, count_include_pad=True):
    """A numpy loop: ``window``/``stride``/``padding`` are per positional axis (pads as pairs or strings)."""
    pads = [
        _pads(n, k, s, p if isinstance(p, str) else tuple(p)) for n, k, s, p in zip(x.shape, window, stride, padding)
    ]
    fill = {"max": -np.inf, "min": np.inf, "mean": 0.0}[kind]
    xp = np.pad(x, pads, constant_values=fill)
    real = np.pad(np.ones_like(x), pads)
    out_shape = [(n + lo + hi - k) // s + 1 for n, (lo, hi), k, s in zip(x.shape, pads, window, stride)]
    out = np.zeros(out_shape, np.float64)
    for idx in itertools.product(*map(range, out_shape)):
        sl = tuple(slice(i * s, i * s + k) for i, s, k in zip(idx, stride, window))
        win = xp[sl]
        if kind == "max":
            out[idx] = win.max()
        elif kind == "min":
            out[idx] = win.min()
        else:
            out[idx] = win.sum() / (win.size if count_include_pad else real[sl].sum())
    return out


def _x(seed=0, shape=(2, 7, 6, 3)):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _named(x, order):
    return nx.named(jnp.asarray(x.transpose([NAMES.index(n) for n in order])), order)


POOLS = {"max": nx.nn.max_pool, "min": nx.nn.min_pool, "mean": nx.nn.mean_pool}


@pytest.mark.parametrize("kind", ["max", "min", "mean"])
@pytest.mark.parametrize(
    "window,stride,padding",
    [
        ({"h": 2, "w": 2}, None, "VALID"),
        ({"h": 3, "w": 2}, 2, "SAME"),
        ({"w": 3, "h": 2}, {"h": 2}, "VALID"),
        ({"h": 3}, 2, {"h": (1, 2)}),
        ({"h": 2, "w": 3}, (1, 2), [1, (0, 2)]),
    ],
)
def test_pool_matches_numpy_loop(kind, window, stride, padding):
    x = _x()
    pos_window = [window.get(n, 1) for n in NAMES]
    names = list(window)
    if stride is None:
        strides = {}
    elif isinstance(stride, int):
        strides = dict.fromkeys(names, stride)
    elif isinstance(stride, dict):
        strides = stride
    else:
        strides = dict(zip(names, stride))
    pos_stride = [strides.get(n, 1) for n in NAMES]
    if isinstance(padding, str):
        pos_pad = [padding] * 4
    else:
        per = padding if isinstance(padding, dict) else dict(zip(names, padding))
        per = {k: (v, v) if isinstance(v, int) else v for k, v in per.items()}
        pos_pad = [per.get(n, (0, 0)) for n in NAMES]
    ref = _ref_pool(x, pos_window, pos_stride, pos_pad, kind)
    for order in [NAMES, ("c", "w", "batch", "h"), ("w", "h", "c", "batch")]:
        y = POOLS[kind](_named(x, order), window, stride=stride, padding=padding)
        assert [a.name for a in y.axes] == list(order)
        assert_named_close(y, ref, NAMES, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("padding", ["SAME", {"h": (2, 1), "w": 1}])
def test_mean_pool_without_padding_in_the_count(padding):
    x = _x(1)
    window, stride = {"h": 3, "w": 2}, 2
    if isinstance(padding, str):
        pos_pad = ["VALID", "SAME", "SAME", "VALID"]
    else:
        pos_pad = [(0, 0), (2, 1), (1, 1), (0, 0)]
    ref = _ref_pool(x, [1, 3, 2, 1], [1, 2, 2, 1], pos_pad, "mean", count_include_pad=False)
    y = nx.nn.mean_pool(_named(x, ("w", "c", "h", "batch")), window, stride=stride, padding=padding,
                        count_include_pad=False)  # fmt: skip
    assert_named_close(y, ref, NAMES, rtol=1e-5, atol=1e-6)


@settings(max_examples=25)
@given(
    st.permutations(NAMES),
    st.sampled_from(["max", "min", "mean"]),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 3),
    st.sampled_from(["SAME", "VALID"]),
)
def test_pool_property(order, kind, kh, kw, s, padding):
    x = _x(kh + 3 * kw)
    ref = _ref_pool(x, [1, kh, kw, 1], [1, s, s, 1], [padding] * 4, kind)
    y = POOLS[kind](_named(x, tuple(order)), {"h": kh, "w": kw}, stride=s, padding=padding)
    assert_named_close(y, ref, NAMES, rtol=1e-5, atol=1e-6)


def test_pool_integers_and_gradients():
    xi = nx.named(jnp.array([[3, -1, 7, 2]]), ("c", "t"))
    assert nx.nn.max_pool(xi, {"t": 2}, stride=2, padding="SAME").array.tolist() == [[3, 7]]
    assert nx.nn.min_pool(xi, {"t": 3}, padding=1).array.tolist() == [[-1, -1, -1, 2]]
    x = jnp.asarray(_x(2)[0, :, :, 0])

    def f(a):
        return nx.sum(nx.nn.max_pool(nx.named(a, ("h", "w")), {"h": 2, "w": 2}, stride=2), axis=None).array

    def ref(a):
        return jax.lax.reduce_window(a, -jnp.inf, jax.lax.max, (2, 2), (2, 2), "VALID").sum()

    np.testing.assert_allclose(jax.grad(f)(x), jax.grad(ref)(x))


def test_pool_errors():
    x = nx.ones({"batch": 2, "h": 4})
    with pytest.raises(nx.AxisNotFoundError, match="max_pool"):
        nx.nn.max_pool(x, {"w": 2})
    with pytest.raises(ValueError, match="window size"):
        nx.nn.max_pool(x, {"h": 0})
    with pytest.raises(ValueError, match="larger than axis"):
        nx.nn.mean_pool(x, {"h": 5})
    with pytest.raises(ValueError, match="stride"):
        nx.nn.min_pool(x, {"h": 2}, stride=0)
    with pytest.raises(ValueError, match="not in the window"):
        nx.nn.min_pool(x, {"h": 2}, stride={"batch": 2})
    with pytest.raises(ValueError, match="padding"):
        nx.nn.max_pool(x, {"h": 2}, padding="FULL")
    with pytest.raises(TypeError, match="window"):
        nx.nn.max_pool(x, 2)
    with pytest.raises(TypeError, match="NamedArray"):
        nx.nn.max_pool(jnp.ones((2, 4)), {"h": 2})
