"""Conv and ConvTranspose against jax.lax on the positional (NC + spatial) arrays, axes in several orders."""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import namedax as nx
from helpers import assert_named_close as _assert_named_close

SPATIAL = ("h", "w", "d")


def assert_named_close(y, ref, order, rtol=1e-5, atol=1e-6):
    assert tuple(a.size for a in y.axes) == y.array.shape, (y.axes, y.array.shape)  # axes tell the truth
    _assert_named_close(y, ref, order, rtol, atol)


C, D = nx.Axis("c", 4), nx.Axis("f", 8)


def _input(n_spatial, sizes=(7, 6, 5), batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, 4) + tuple(sizes[:n_spatial])).astype(np.float32)  # N, C, spatial


def _spec(n):
    sp = "HWD"[:n]
    return ("NC" + sp, "OI" + sp, "NC" + sp)


def _named(x, order):
    """The positional (batch, c, spatial...) array as a NamedArray with axes in ``order``."""
    names = ("batch", "c") + SPATIAL[: x.ndim - 2]
    return nx.named(jnp.asarray(x.transpose([names.index(n) for n in order])), order)


def _ref_conv(conv, x, padding):
    n = x.ndim - 2
    y = jax.lax.conv_general_dilated(
        x, conv.weight.array, conv.stride, padding, rhs_dilation=conv.dilation,
        dimension_numbers=_spec(n), feature_group_count=conv.groups,
    )  # fmt: skip
    if conv.bias is not None:
        y = y + np.asarray(conv.bias.array).reshape((1, -1) + (1,) * n)
    return y


CASES = [
    # n_spatial, kernel, stride, padding, dilation, groups
    (1, 3, 1, "SAME", 1, 1),
    (1, 4, 2, "VALID", 1, 2),
    (1, 3, 1, ((2, 1),), 2, 1),
    (2, 3, (2, 1), "SAME", 1, 1),
    (2, (3, 2), 1, "VALID", (1, 2), 2),
    (2, 3, 2, 1, 1, 1),
    (2, 2, 1, [(0, 1), 2], 1, 4),
    (3, 2, (1, 2, 1), "SAME", 1, 2),
]


@pytest.mark.parametrize("n,kernel,stride,padding,dilation,groups", CASES)
def test_conv_matches_lax(n, kernel, stride, padding, dilation, groups):
    spatial = SPATIAL[:n]
    conv = nx.nn.Conv.init(
        spatial, C, D, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups, key=jax.random.key(1)
    )
    assert conv.weight.axes[:2] == (D, C.resize(4 // groups))
    x = _input(n)
    ref = _ref_conv(conv, x, conv.padding)
    names = ("batch", "c") + spatial
    for order in [names, names[::-1], (spatial[-1], "c", "batch") + spatial[:-1]]:
        y = conv(_named(x, order))
        assert [a.name for a in y.axes] == ["f" if a == "c" else a for a in order]
        assert_named_close(y, ref, ("batch", "f") + spatial, rtol=1e-4, atol=1e-5)


def test_conv_padding_kinds_agree_with_lax_strings_and_pairs():
    x = _input(2)
    for padding in ["SAME", "VALID", 1, ((1, 2), (0, 1))]:
        conv = nx.nn.Conv.init(("h", "w"), C, D, 3, padding=padding, key=jax.random.key(2), use_bias=False)
        lax_padding = ((1, 1), (1, 1)) if padding == 1 else padding
        ref = jax.lax.conv_general_dilated(x, conv.weight.array, (1, 1), lax_padding, dimension_numbers=_spec(2))
        assert_named_close(conv(_named(x, ("h", "c", "w", "batch"))), ref, ("batch", "f", "h", "w"), 1e-4, 1e-5)


def test_conv_batch_axes_several_or_none():
    conv = nx.nn.Conv.init("h", C, D, 3, stride=2, key=jax.random.key(3))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 4, 9)).astype(np.float32)  # a, b, c, h
    ref = _ref_conv(conv, x.reshape(6, 4, 9), conv.padding).reshape(2, 3, 8, 5)
    y = conv(nx.named(jnp.asarray(x.transpose(1, 3, 0, 2)), ("b", "h", "a", "c")))
    assert [a.name for a in y.axes] == ["b", "h", "a", "f"]
    assert_named_close(y, ref, ("a", "b", "f", "h"), 1e-4, 1e-5)
    single = conv(nx.named(jnp.asarray(x[0, 0]), ("c", "h")))
    assert_named_close(single, ref[0, 0], ("f", "h"), 1e-4, 1e-5)


@settings(max_examples=20)
@given(
    st.permutations(("batch", "c", "h", "w")),
    st.integers(1, 3),
    st.integers(1, 2),
    st.integers(1, 2),
    st.sampled_from(["SAME", "VALID", ((1, 0), (2, 2))]),
    st.sampled_from([1, 2, 4]),
)
def test_conv_property(order, kernel, stride, dilation, padding, groups):
    conv = nx.nn.Conv.init(
        ("h", "w"), C, D, kernel, stride=stride, dilation=dilation, padding=padding, groups=groups,
        key=jax.random.key(4),
    )  # fmt: skip
    x = _input(2, seed=kernel)
    assert_named_close(conv(_named(x, tuple(order))), _ref_conv(conv, x, conv.padding), ("batch", "f", "h", "w"),
                       1e-4, 1e-5)  # fmt: skip


TCASES = [
    (1, 3, 2, "SAME", 1),
    (1, 4, 3, "VALID", 2),
    (2, 3, (2, 1), "SAME", 1),
    (2, (2, 3), 2, ((1, 2), (0, 1)), 1),
    (3, 2, 2, "VALID", 1),
]


@pytest.mark.parametrize("n,kernel,stride,padding,dilation", TCASES)
def test_conv_transpose_matches_lax(n, kernel, stride, padding, dilation):
    spatial = SPATIAL[:n]
    conv = nx.nn.ConvTranspose.init(
        spatial, C, D, kernel, stride=stride, padding=padding, dilation=dilation, key=jax.random.key(5)
    )
    x = _input(n, sizes=(5, 4, 3))
    ref = jax.lax.conv_transpose(
        x, conv.weight.array, conv.stride, padding, rhs_dilation=conv.dilation, dimension_numbers=_spec(n)
    )
    ref = ref + np.asarray(conv.bias.array).reshape((1, -1) + (1,) * n)
    names = ("batch", "c") + spatial
    for order in [names, names[::-1]]:
        assert_named_close(conv(_named(x, order)), ref, ("batch", "f") + spatial, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("padding", ["SAME", "VALID", ((2, 1),)])
def test_conv_transpose_groups_is_per_group_conv_transpose(padding):
    conv = nx.nn.ConvTranspose.init("h", C, D, 3, stride=2, padding=padding, groups=2, key=jax.random.key(6))
    x = _input(1)
    w = np.asarray(conv.weight.array)  # (8, 2, 3)
    parts = [
        jax.lax.conv_transpose(x[:, 2 * g : 2 * g + 2], w[4 * g : 4 * g + 4], (2,), padding, dimension_numbers=_spec(1))
        for g in range(2)
    ]
    ref = np.concatenate(parts, axis=1) + np.asarray(conv.bias.array)[None, :, None]
    assert_named_close(conv(_named(x, ("h", "batch", "c"))), ref, ("batch", "f", "h"), 1e-4, 1e-5)


def test_conv_errors():
    conv = nx.nn.Conv.init(("h", "w"), C, D, 3, key=jax.random.key(0))
    with pytest.raises(nx.AxisNotFoundError, match="Conv.*'w'"):
        conv(nx.ones({"c": 4, "h": 5}))
    with pytest.raises(ValueError, match="Conv.*size 4"):
        conv(nx.ones({"c": 3, "h": 5, "w": 5}))
    with pytest.raises(ValueError, match="already has the output axis"):
        conv(nx.ones({"c": 4, "h": 5, "w": 5, "f": 2}))
    with pytest.raises(ValueError, match="groups"):
        nx.nn.Conv.init("h", C, D, 3, groups=3, key=jax.random.key(0))
    with pytest.raises(ValueError, match="kernel_size"):
        nx.nn.Conv.init(("h", "w"), C, D, (3, 3, 3), key=jax.random.key(0))
    with pytest.raises(ValueError, match="padding"):
        nx.nn.Conv.init("h", C, D, 3, padding="FULL", key=jax.random.key(0))
    with pytest.raises(ValueError, match="different names"):
        nx.nn.Conv.init("h", C, C, 3, key=jax.random.key(0))
    with pytest.raises(TypeError, match="Axis"):
        nx.nn.Conv.init("h", "c", D, 3, key=jax.random.key(0))


def test_conv_dtype_and_jit():
    conv = nx.nn.Conv.init("h", C, D, 3, key=jax.random.key(0), dtype=jnp.bfloat16)
    assert conv.weight.dtype == jnp.bfloat16 and conv.bias.dtype == jnp.bfloat16
    x = nx.ones({"batch": 2, "h": 8, "c": 4}, dtype=jnp.bfloat16)
    assert jax.jit(lambda m, v: m(v))(conv, x).shape == {"batch": 2, "h": 8, "f": 8}


class CNN(eqx.Module):
    conv1: nx.nn.Conv
    conv2: nx.nn.Conv
    head: nx.nn.Linear

    def __init__(self, key):
        k1, k2, k3 = jax.random.split(key, 3)
        Hid = nx.Axis("hidden", 8)
        self.conv1 = nx.nn.Conv.init(("h", "w"), nx.Axis("c", 1), nx.Axis("hidden", 8), 3, key=k1)
        self.conv2 = nx.nn.Conv.init(("h", "w"), Hid, nx.Axis("c", 8), 3, stride=2, key=k2)
        self.head = nx.nn.Linear.init((nx.Axis("c", 8), nx.Axis("h", 2), nx.Axis("w", 2)), nx.Axis("label", 2), key=k3)

    def __call__(self, x):
        x = nx.nn.max_pool(nx.nn.relu(self.conv1(x)), {"h": 2, "w": 2}, stride=2)  # 8x8 -> 4x4
        x = nx.nn.relu(self.conv2(x))  # 4x4 -> 2x2
        return self.head(x)


def test_small_cnn_trains():
    # synthetic task: is the bright square in the top or the bottom half of the image?
    rng = np.random.default_rng(0)
    n = 64
    images = rng.normal(size=(n, 8, 8)).astype(np.float32) * 0.3
    labels = rng.integers(0, 2, size=n)
    for i, lab in enumerate(labels):
        r, c = 4 * lab + rng.integers(0, 3), rng.integers(0, 6)
        images[i, r : r + 2, c : c + 2] += 2.0
    x = nx.named(jnp.asarray(images[..., None]), ("batch", "h", "w", "c"))
    y = nx.named(jnp.asarray(labels), "batch")
    model = CNN(jax.random.key(0))
    opt = optax.adam(1e-2)
    state = opt.init(eqx.filter(model, eqx.is_array))

    @jax.jit
    def step(model, state):
        loss, grads = jax.value_and_grad(lambda m: nx.nn.cross_entropy(m(x), y, "label").array)(model)
        updates, state = opt.update(grads, state, model)
        return optax.apply_updates(model, updates), state, loss

    losses = []
    for _ in range(30):
        model, state, loss = step(model, state)
        losses.append(float(loss))
    assert losses[-1] < 0.3 * losses[0], losses
    accuracy = float(nx.mean(nx.argmax(model(x), "label") == y, axis=None).array)
    assert accuracy > 0.9


def test_conv_orders_cover_all_permutations_1d():
    conv = nx.nn.Conv.init("h", C, D, 2, stride=2, padding="VALID", key=jax.random.key(7))
    x = _input(1)
    ref = _ref_conv(conv, x, "VALID")
    for order in itertools.permutations(("batch", "c", "h")):
        assert_named_close(conv(_named(x, order)), ref, ("batch", "f", "h"), 1e-4, 1e-5)


@pytest.mark.parametrize("k,s,p,o,d", [(3, 2, 1, 1, 1), (4, 3, 0, 2, 1), (3, 1, 2, 0, 2)])
def test_conv_transpose_pytorch_padding_conversion_matches_equinox(k, s, p, o, d):
    # the documented conversion from PyTorch / equinox / haliax ``padding=p, output_padding=o``
    ref = eqx.nn.ConvTranspose(
        1, 4, 8, k, stride=s, padding=p, output_padding=o, dilation=d, use_bias=False, key=jax.random.key(0)
    )
    pair = (d * (k - 1) - p, d * (k - 1) - p + o)
    conv = nx.nn.ConvTranspose.init(
        "h", C, D, k, stride=s, padding=(pair,), dilation=d, use_bias=False, key=jax.random.key(1)
    )
    conv = eqx.tree_at(lambda m: m.weight, conv, nx.named(ref.weight, ("f", "c", "h")))
    x = _input(1)[0]
    assert_named_close(conv(nx.named(jnp.asarray(x), ("c", "h"))), ref(jnp.asarray(x)), ("f", "h"), 1e-4, 1e-5)
