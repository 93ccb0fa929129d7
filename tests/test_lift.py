"""nx.lift against jax.numpy on the positional layout (Python loops where the mapping is the point)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from helpers import assert_named_close
from namedax import Axis
from namedax.core import _kernels

B, T, C = Axis("batch", 3), Axis("time", 8), Axis("chan", 2)


def arr(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_fft_along_a_core_axis_wherever_it_sits():
    a = arr(8, 3)  # time first: lift moves it last for fn
    x = nx.named(a, (T, B))
    y = nx.lift(jnp.fft.fft, "time")(x)
    assert y.axes == (B, T)
    np.testing.assert_allclose(np.asarray(y.array), np.fft.fft(a.T, axis=-1), rtol=1e-4, atol=1e-4)


def test_core_axis_reduced_gives_no_trailing_axis():
    a = arr(3, 2, 8)
    x = nx.named(a, (B, C, T))
    y = nx.lift(jnp.linalg.norm, "time")(x)
    assert_named_close(y, np.linalg.norm(a, axis=-1), ("batch", "chan"))


def test_convolve_core_axis_of_two_sizes_needs_out_axes():
    a, k = arr(3, 8), arr(3, seed=1)
    x, kern = nx.named(a, (B, T)), nx.named(k, "t")
    x = x.rename({"time": "t"})
    with pytest.raises(ValueError, match=r"lift\(convolve\).*\(3, 10\).*out_axes"):
        nx.lift(jnp.convolve, "t")(x, kern)
    y = nx.lift(jnp.convolve, "t", out_axes="t")(x, kern)
    assert_named_close(y, np.stack([np.convolve(r, k) for r in a]), ("batch", "t"))
    same = nx.lift(jnp.convolve, "t", out_axes="t")(x, kern, mode="same")  # a keyword passes through
    assert_named_close(same, np.stack([np.convolve(r, k, mode="same") for r in a]), ("batch", "t"))


def test_mapped_axes_broadcast_by_name_and_plain_arguments_pass_through():
    a, w, c = arr(3, 8), arr(2, 8, seed=1), arr(8, seed=2)
    x, wx = nx.named(a, (B, T)), nx.named(w, (C, T))

    def f(u, v, plain, scale):  # u, v: (time,) vectors; plain: unmapped; scale: static
        return jnp.dot(u, v * plain) * scale

    y = nx.lift(f, "time")(x, wx, jnp.asarray(c), 2.0)
    ref = np.array([[np.dot(a[i], w[j] * c) * 2.0 for j in range(2)] for i in range(3)])
    assert_named_close(y, ref, ("batch", "chan"), rtol=1e-4)
    assert y.axes == (B, C)  # mapped axes in order of first appearance


def test_elementwise_when_axis_is_none_and_several_core_axes_in_order():
    a, b = arr(3, 2), arr(2, seed=1)
    y = nx.lift(lambda u, v: jnp.where(u > v, u, -v))(nx.named(a, (B, C)), nx.named(b, (C,)))
    assert_named_close(y, np.where(a > b, a, -b), ("batch", "chan"))
    m = arr(2, 3, 8)
    x = nx.named(m, (C, B, T))
    # fn sees (time, chan) matrices, in the order given, per batch element
    z = nx.lift(lambda q: q @ q.T, ("time", "chan"), out_axes=("t1", "t2"))(x)
    ref = np.stack([m[:, i, :].T @ m[:, i, :] for i in range(3)])
    assert_named_close(z, ref, ("batch", "t1", "t2"), rtol=1e-4, atol=1e-4)
    # the same sizes back: the core names
    assert nx.lift(lambda q: q * 2, ("time", "chan"))(x).axes == (B, T, C)


def test_static_arguments_are_typed_and_numpy_arrays_are_dynamic():
    x = nx.named(arr(3, 8), (B, T))
    f = nx.lift(lambda v, s: v * s, "time")
    assert f(x, 2).dtype == jnp.float32 and f(x, True).dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(f(x, 1.5).array), np.asarray(x.array) * 1.5)
    h = nx.lift(lambda v, s: v * 0 + isinstance(s, float), "time")  # 1 == 1.0: still two plans
    assert float(nx.sum(h(x, 1))) == 0.0 and float(nx.sum(h(x, 1.0))) == 24.0
    g = nx.lift(lambda v, n: v + n, "time")
    np.testing.assert_allclose(np.asarray(g(x, np.arange(8.0)).array), np.asarray(x.array) + np.arange(8.0), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(g(x, np.ones(8)).array), np.asarray(x.array) + 1, rtol=1e-6)


def test_pytree_results_and_keyword_named_arguments():
    a, b = arr(3, 8), arr(8, seed=1)

    def f(u, *, v):
        return {"sum": jnp.sum(u * v), "prod": u * v}

    out = nx.lift(f, "time")(nx.named(a, (B, T)), v=nx.named(b, (T,)))
    assert_named_close(out["sum"], (a * b).sum(-1), ("batch",), rtol=1e-4)
    assert_named_close(out["prod"], a * b, ("batch", "time"))


def test_under_jit_and_grad_matches_positional():
    a = arr(3, 8)
    x = nx.named(a, (B, T))
    f = nx.lift(lambda v: jnp.sum(jnp.sin(v) ** 2), "time")
    g = jax.grad(lambda x: nx.sum(f(x)).array)(x)
    np.testing.assert_allclose(np.asarray(g.array), np.asarray(jax.grad(lambda v: jnp.sum(jnp.sin(v) ** 2))(a)),
                               rtol=1e-5)  # fmt: skip
    j = jax.jit(lambda x: f(x))(x)
    assert_named_close(j, (np.sin(a) ** 2).sum(-1), ("batch",), rtol=1e-5)


def test_plans_are_cached_per_signature():
    x = nx.named(arr(3, 8), (B, T))
    f = nx.lift(jnp.fft.rfft, "time", out_axes="freq")
    f(x)
    n = _kernels.cache_len()
    for _ in range(3):
        y = f(x)
    assert _kernels.cache_len() == n and y.axes == (B, Axis("freq", 5))


def test_errors_name_the_operation_and_axes():
    x = nx.named(arr(3, 8), (B, T))
    with pytest.raises(KeyError, match=r"lift\(fft\): no argument has the core axis 'freq'"):
        nx.lift(jnp.fft.fft, "freq")(x)
    with pytest.raises(ValueError, match=r"mapped axis 'batch' has different sizes.*args\[0\].*args\[1\]"):
        nx.lift(jnp.add)(x, nx.zeros({"batch": 4}))
    with pytest.raises(ValueError, match=r"repeat a name"):
        nx.lift(jnp.fft.fft, "time", out_axes="batch")(x)
    with pytest.raises(ValueError, match=r"do not fit out_axes"):
        nx.lift(jnp.fft.fft, "time", out_axes=("f", "g"))(x)
    with pytest.raises(ValueError, match="listed twice"):
        nx.lift(jnp.fft.fft, ("time", "time"))
    with pytest.raises(TypeError, match="lift"):
        nx.lift(jnp.fft.fft, 0)  # type: ignore[arg-type]
