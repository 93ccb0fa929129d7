"""Shape ops against their positional numpy equivalents."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import namedax as nx
from helpers import assert_named_close, to_numpy
from namedax import Axis

A, B, C, D = Axis("a", 2), Axis("b", 3), Axis("c", 4), Axis("d", 3)


def arr(*shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


def rand(axes, seed=0, dtype=np.float32):
    return nx.named(arr(*(a.size for a in axes), dtype=dtype, seed=seed), axes)


# ---- flatten / unflatten -----------------------------------------------------------------------


def test_flatten_axes_groups_at_the_first_old_axis():
    x = rand((A, B, C))
    y = nx.flatten_axes(x, ("c", "a"), "ca")
    assert y.axes == (Axis("ca", 8), B)  # c then a, where a was
    np.testing.assert_array_equal(y.array, np.transpose(np.asarray(x.array), (2, 0, 1)).reshape(8, 3))
    y = nx.flatten_axes(x, (B, C), Axis("bc", 12))
    assert y.axes == (A, Axis("bc", 12))
    np.testing.assert_array_equal(y.array, np.asarray(x.array).reshape(2, 12))
    y = x.flatten_axes(("a", "c"), "ac")  # non-adjacent: b moves after the merged axis
    assert y.axes == (Axis("ac", 8), B)
    np.testing.assert_array_equal(y.array, np.transpose(np.asarray(x.array), (0, 2, 1)).reshape(8, 3))
    assert nx.flatten_axes(x, "b", "bb").axes == (A, Axis("bb", 3), C)
    y = nx.flatten_axes(x, (), "one")  # as haliax: a size-1 axis in front
    assert y.axes == (Axis("one", 1), A, B, C)
    np.testing.assert_array_equal(y.array, np.asarray(x.array)[None])


def test_unflatten_axis_in_place():
    x = rand((A, Axis("t", 12), B))
    y = nx.unflatten_axis(x, "t", {"p": 3, "q": 4})
    assert y.axes == (A, Axis("p", 3), Axis("q", 4), B)
    np.testing.assert_array_equal(y.array, np.asarray(x.array).reshape(2, 3, 4, 3))
    assert x.unflatten_axis("t", (Axis("t", 6), Axis("r", 2))).shape == {"a": 2, "t": 6, "r": 2, "b": 3}
    assert nx.unflatten_axis(x, "t", Axis("u", 12)).axes == (A, Axis("u", 12), B)
    one = rand((A, Axis("s", 1)))
    assert nx.unflatten_axis(one, "s", ()).axes == (A,)  # as haliax: squeeze


def test_flatten_unflatten_errors():
    x = rand((A, B, C))
    with pytest.raises(nx.AxisNotFoundError, match=r"flatten_axes: no axis 'z' in"):
        nx.flatten_axes(x, ("a", "z"), "m")
    with pytest.raises(
        ValueError,
        match=r"\(Axis\('a', 2\), Axis\('b', 3\)\) have 6 elements in all, but "
        r"Axis\('m', 5\) was given",
    ):
        nx.flatten_axes(x, ("a", "b"), Axis("m", 5))  # fmt: skip
    with pytest.raises(ValueError, match="listed twice"):
        nx.flatten_axes(x, ("a", "a"), "m")
    with pytest.raises(ValueError, match=r"flatten_axes: duplicate axis names \['c'\]"):
        nx.flatten_axes(x, ("a", "b"), "c")
    with pytest.raises(ValueError, match=r"cannot split Axis\('c', 4\) into .*: their sizes multiply to 6, not 4"):
        nx.unflatten_axis(x, "c", {"p": 2, "q": 3})
    with pytest.raises(ValueError, match="multiply to 1, not 4"):
        nx.unflatten_axis(x, "c", ())
    with pytest.raises(ValueError, match=r"unflatten_axis: duplicate axis names \['a'\]"):
        nx.unflatten_axis(x, "c", {"a": 2, "q": 2})
    with pytest.raises(nx.AxisNotFoundError, match="unflatten_axis: no axis 'z'"):
        nx.unflatten_axis(x, "z", {"p": 1})
    with pytest.raises(TypeError, match="a size is needed"):
        nx.unflatten_axis(x, "c", ("p", "q"))
    with pytest.raises(TypeError, match="expected a NamedArray"):
        nx.flatten_axes(np.ones((2, 3)), ("a",), "m")


SIZES = {"p": 2, "q": 3, "r": 1, "s": 2}


@settings(max_examples=100)
@given(st.permutations(list(SIZES)), st.data())
def test_flatten_unflatten_round_trips(order, data):
    names = order[: data.draw(st.integers(1, 4))]
    x = rand(tuple(Axis(n, SIZES[n]) for n in names), seed=len(names))
    old = data.draw(st.permutations(names).map(lambda p: p[: data.draw(st.integers(1, len(names)))]))
    old_axes = tuple(Axis(n, SIZES[n]) for n in old)
    y = nx.flatten_axes(x, old, "merged")
    first = min(names.index(n) for n in old)
    grouped = names[:first] + list(old) + [n for n in names[first:] if n not in old]
    back = nx.unflatten_axis(y, "merged", old_axes)
    assert [a.name for a in back.axes] == grouped  # grouped where the first old axis was
    np.testing.assert_array_equal(to_numpy(back, names), to_numpy(x))
    # row-major over the given order, as a positional transpose + reshape
    np.testing.assert_array_equal(to_numpy(y), to_numpy(x, grouped).reshape([a.size for a in y.axes]))
    # and the other way: unflatten then flatten is the identity
    z = nx.flatten_axes(nx.unflatten_axis(y, "merged", old_axes), old, Axis("merged", y.axis_size("merged")))
    assert z.axes == y.axes
    np.testing.assert_array_equal(z.array, y.array)


# ---- stack / concatenate / creation -------------------------------------------------------------


def test_stack_and_concatenate_align_by_name():
    x, y = rand((A, B, C)), rand((C, A, B), seed=1)
    xa, ya = to_numpy(x, ("a", "b", "c")), to_numpy(y, ("a", "b", "c"))
    assert_named_close(nx.stack("s", [x, y]), np.stack([xa, ya]), ("s", "a", "b", "c"))
    assert_named_close(nx.concatenate("b", [x, y]), np.concatenate([xa, ya], axis=1), ("a", "b", "c"))


def test_creation_errors_name_the_operation():
    x = rand((A, B))
    for op in (nx.stack, nx.concatenate):
        with pytest.raises(TypeError, match=rf"{op.__name__}: array 1 is a ndarray, not a NamedArray"):
            op("a", [x, np.zeros((2, 3))])
    for op in (nx.zeros_like, nx.ones_like):
        with pytest.raises(TypeError, match=f"{op.__name__}: expected a NamedArray"):
            op(np.zeros(3))
    with pytest.raises(TypeError, match="full_like: expected a NamedArray"):
        nx.full_like(np.zeros(3), 1.0)
    for op in (nx.arange, lambda ax: nx.linspace(ax, start=0, stop=1)):
        with pytest.raises(ValueError, match="expected one axis"):
            op({"a": 2, "b": 3})


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.float16, jnp.float32])
def test_arange_keeps_the_dtype_asked_for(dtype):
    T = Axis("t", 6)
    for start, step in ((0, 1), (2, 3), (0.5, 1), (1, 0.5), (-1.5, -2)):
        r = nx.arange(T, start=start, step=step, dtype=dtype)
        assert r.axes == (T,) and r.dtype == dtype
        # the documented values, start + step * i, in the dtype asked for
        np.testing.assert_array_equal(np.asarray(r.array), (start + step * np.arange(6)).astype(dtype))


# ---- split / unbind ----------------------------------------------------------------------------


def test_split_and_unbind():
    x = rand((A, Axis("t", 5), B))
    parts = nx.split(x, "t", [Axis("head", 2), Axis("tail", 3)])
    refs = np.split(np.asarray(x.array), [2], axis=1)
    assert [p.axes for p in parts] == [(A, Axis("head", 2), B), (A, Axis("tail", 3), B)]
    for p, r in zip(parts, refs, strict=True):
        np.testing.assert_array_equal(p.array, r)
    parts = x.split("t", [1, 1, 3])  # ints keep the name
    assert [p.axis_size("t") for p in parts] == [1, 1, 3]
    np.testing.assert_array_equal(parts[2].array, np.asarray(x.array)[:, 2:])
    rows = nx.unbind(x, "b")
    assert len(rows) == 3 and all(r.axes == (A, Axis("t", 5)) for r in rows)
    for k, r in enumerate(x.unbind(B)):
        np.testing.assert_array_equal(r.array, np.asarray(x.array)[:, :, k])
    with pytest.raises(ValueError, match=r"split: cannot cut axis 't' of size 5 into pieces of sizes \[2, 2\]: "
                       r"they sum to 4, not 5"):
        nx.split(x, "t", [2, 2])
    with pytest.raises(ValueError, match=r"split: cannot cut axis 't' of size 5 into pieces of sizes \[2, 4\]: "
                       r"they sum to 6, not 5"):
        nx.split(x, "t", [Axis("head", 2), 4])
    # a negative size is refused by split itself (numpy's split has no sizes, only cut points; a
    # size-0 piece is fine, as an empty piece is in np.split)
    with pytest.raises(ValueError, match=r"split: cannot cut axis 't' of size 5 into pieces of sizes \[6, -1\]: "
                       r"a piece size must be >= 0"):
        nx.split(x, "t", [6, -1])
    with pytest.raises(ValueError, match=r"split: .* sizes \[\]: give at least one piece"):
        nx.split(x, "t", [])
    empty, full = nx.split(x, "t", [0, 5])
    ref_empty, ref_full = np.split(np.asarray(x.array), [0], axis=1)
    assert empty.axes == (A, Axis("t", 0), B) and empty.array.shape == ref_empty.shape
    np.testing.assert_array_equal(full.array, ref_full)
    with pytest.raises(ValueError, match=r"split: duplicate axis names \['a'\]"):
        nx.split(x, "t", [Axis("a", 5)])
    with pytest.raises(TypeError, match="a piece size must be an int"):
        nx.split(x, "t", [2.5, 2.5])
    with pytest.raises(nx.AxisNotFoundError, match="split: no axis 'z'"):
        nx.split(x, "z", [1])
    with pytest.raises(nx.AxisNotFoundError, match="unbind: no axis 'z'"):
        nx.unbind(x, "z")


# ---- roll / take / pad -------------------------------------------------------------------------


def test_roll():
    x = rand((A, B, C))
    np.testing.assert_array_equal(nx.roll(x, 1, "b").array, np.roll(np.asarray(x.array), 1, axis=1))
    r = x.roll((-1, 2), ("c", A))
    assert r.axes == x.axes
    np.testing.assert_array_equal(r.array, np.roll(np.asarray(x.array), (-1, 2), axis=(2, 0)))
    np.testing.assert_array_equal(nx.roll(x, 1, ("a", "c")).array, np.roll(np.asarray(x.array), 1, axis=(0, 2)))
    dyn = jax.jit(lambda x, s: nx.roll(x, s, "c"))(x, 3)  # traced shift
    np.testing.assert_array_equal(dyn.array, np.roll(np.asarray(x.array), 3, axis=2))
    eager_dyn = nx.roll(x, jnp.array(-2), "c")
    np.testing.assert_array_equal(eager_dyn.array, np.roll(np.asarray(x.array), -2, axis=2))
    with pytest.raises(ValueError, match=r"2 shifts for 1 axes"):
        nx.roll(x, (1, 2), "a")
    with pytest.raises(ValueError, match="listed twice"):
        nx.roll(x, 1, ("a", "a"))
    with pytest.raises(TypeError, match="shift must be an int"):
        nx.roll(x, 1.5, "a")
    with pytest.raises(nx.AxisNotFoundError, match="roll: no axis 'z'"):
        nx.roll(x, 1, "z")


def test_take_int_and_plain_arrays():
    x = rand((A, B, C))
    r = nx.take(x, "b", 2)
    assert r.axes == (A, C)
    np.testing.assert_array_equal(r.array, np.asarray(x.array)[:, 2])
    np.testing.assert_array_equal(nx.take(x, "b", -1).array, np.asarray(x.array)[:, -1])
    np.testing.assert_array_equal(nx.take(x, "c", jnp.array(3)).array, np.asarray(x.array)[:, :, 3])
    r = x.take("c", np.array([3, 0, 0, 1, 2]))
    assert r.axes == (A, B, Axis("c", 5))
    np.testing.assert_array_equal(r.array, np.take(np.asarray(x.array), [3, 0, 0, 1, 2], axis=2))
    assert nx.take(x, "c", [1, 2]).axes == (A, B, Axis("c", 2))


def test_take_named_index_replaces_the_axis():
    x = rand((A, B, C))
    idx = nx.named(np.array([[0, 3, 1], [2, 2, 0]]), ("i", "j"))
    r = nx.take(x, "c", idx)
    assert r.axes == (A, B, Axis("i", 2), Axis("j", 3))
    np.testing.assert_array_equal(r.array, np.take(np.asarray(x.array), np.asarray(idx.array), axis=2))
    idx_b = nx.named(np.array([[0, 2, 1], [2, 2, 0]]), ("i", "j"))
    r = nx.take(x, "b", idx_b)  # in place of b
    assert [a.name for a in r.axes] == ["a", "i", "j", "c"]
    np.testing.assert_array_equal(r.array, np.take(np.asarray(x.array), np.asarray(idx_b.array), axis=1))
    same = nx.take(x, "c", nx.named(np.array([1, 1]), "c"))  # an index axis named like the taken one
    assert same.axes == (A, B, Axis("c", 2))


def test_take_batched_over_shared_axes():
    logits = rand((A, B, C))  # a: batch, b: position, c: vocab
    labels = nx.named(np.array([[3, 0, 1], [2, 2, 0]]), ("a", "b"))
    r = nx.take(logits, "c", labels)
    assert r.axes == (A, B)
    expected = np.take_along_axis(np.asarray(logits.array), np.asarray(labels.array)[..., None], axis=2)[..., 0]
    np.testing.assert_array_equal(r.array, expected)
    # shared axes in another order, plus a new index axis
    idx = nx.named(np.arange(2 * 3 * 5).reshape(3, 5, 2) % 4, ("b", "k", "a"))
    r = nx.take(logits, "c", idx)
    assert r.axes == (A, B, Axis("k", 5))
    xa, ia = np.asarray(logits.array), to_numpy(idx, ("a", "b", "k"))
    expected = np.array([[[xa[p, q, ia[p, q, s]] for s in range(5)] for q in range(3)] for p in range(2)])
    np.testing.assert_array_equal(r.array, expected)
    # the same under jit (the traced path)
    rj = jax.jit(lambda x, i: nx.take(x, "c", i))(logits, idx)
    np.testing.assert_array_equal(rj.array, expected)


def test_positional_axes_are_refused_naming_the_operation():
    x = rand((A, B, C))
    calls = {
        "take": lambda: nx.take(x, 0, 1),
        "roll": lambda: nx.roll(x, 1, 0),
        "flatten_axes": lambda: nx.flatten_axes(x, (0, 1), "m"),
        "unflatten_axis": lambda: nx.unflatten_axis(x, 0, {"p": 2}),
        "tril": lambda: nx.tril(x, "a", 1),
        "split": lambda: nx.split(x, 0, [1, 1]),
        "stack": lambda: nx.stack(0, [x, x]),
        "concatenate": lambda: nx.concatenate(0, [x, x]),
    }
    for op, call in calls.items():
        with pytest.raises(TypeError, match=rf"^{op}: an axis selector .* got int: \d \(namedax selects axes by name"):
            call()


def test_take_errors():
    x = rand((A, B, C))
    with pytest.raises(IndexError, match="take: index 3 is out of range for axis 'b' of size 3"):
        nx.take(x, "b", 3)
    with pytest.raises(TypeError, match="must be an int or an integer array"):
        nx.take(x, "b", np.array([0.5]))
    with pytest.raises(TypeError, match="must be an int or an integer array"):
        nx.take(x, "b", np.array([True]))
    with pytest.raises(TypeError, match=r"0-D or 1-D, got shape \(2, 2\)"):
        nx.take(x, "b", np.zeros((2, 2), int))
    with pytest.raises(TypeError, match="NamedArray index must be of integer dtype"):
        nx.take(x, "b", nx.named(np.zeros(2), "i"))
    with pytest.raises(ValueError, match=r"index axis Axis\('a', 5\) is batched against Axis\('a', 2\)"):
        nx.take(x, "b", nx.named(np.zeros(5, int), "a"))
    with pytest.raises(nx.AxisNotFoundError, match="take: no axis 'z'"):
        nx.take(x, "z", 0)


def test_take_out_of_range_int_with_a_mode_as_jnp():
    # mode="clip" / "fill" define what an out-of-range index gives: no IndexError then
    x = rand((A, B, C))
    xa = to_numpy(x, ("a", "b", "c"))
    for index in (3, np.int64(7), -9):
        r = nx.take(x, "b", index, mode="clip")
        assert_named_close(r, jnp.take(xa, index, axis=1, mode="clip"), ("a", "c"))
        r = nx.take(x, "b", index, mode="fill", fill_value=-1.0)
        assert_named_close(r, jnp.take(xa, index, axis=1, mode="fill", fill_value=-1.0), ("a", "c"))


def test_take_fill_value_may_be_a_concrete_scalar_array():
    # jnp.take makes fill_value static: a jax array there is unhashable to it. namedax reads a
    # concrete 0-d array as its Python value, and refuses a traced or non-scalar one by name
    x = rand((A, B, C))
    xa = to_numpy(x, ("a", "b", "c"))
    index = np.array([0, 5, -7])
    for fill in (jnp.array(-1.0), np.float32(-1.0), np.array(-1.0)):
        r = nx.take(x, "b", index, mode="fill", fill_value=fill)
        assert_named_close(r, jnp.take(xa, index, axis=1, mode="fill", fill_value=-1.0), ("a", "b", "c"))
        r = nx.take(x, "b", 4, mode="fill", fill_value=fill)
        assert_named_close(r, jnp.take(xa, 4, axis=1, mode="fill", fill_value=-1.0), ("a", "c"))
    with pytest.raises(ValueError, match="Non-hashable static arguments"):  # the raw jnp behaviour
        jnp.take(xa, index, axis=1, mode="fill", fill_value=jnp.array(-1.0))
    with pytest.raises(TypeError, match=r"take: `fill_value` must be a scalar, got an array of shape \(2,\)"):
        nx.take(x, "b", index, mode="fill", fill_value=jnp.array([-1.0, 2.0]))
    with pytest.raises(TypeError, match="take: `fill_value` must be a concrete scalar, got a traced value"):
        jax.jit(lambda f: nx.take(x, "b", index, mode="fill", fill_value=f))(jnp.array(-1.0))


def test_pad():
    x = rand((A, B))
    r = nx.pad(x, {"b": (1, 2)}, constant_values=7.0)
    assert r.axes == (A, Axis("b", 6))
    np.testing.assert_array_equal(r.array, np.pad(np.asarray(x.array), ((0, 0), (1, 2)), constant_values=7.0))
    r = x.pad({B: 1, "a": (0, 1)}, mode="reflect")
    assert r.shape == {"a": 3, "b": 5}
    np.testing.assert_array_equal(r.array, np.pad(np.asarray(x.array), ((0, 1), (1, 1)), mode="reflect"))
    r = nx.pad(x, {"a": 2}, mode="linear_ramp", end_values=1.0)
    np.testing.assert_allclose(r.array, np.pad(np.asarray(x.array), ((2, 2), (0, 0)), mode="linear_ramp",
                                               end_values=1.0), rtol=1e-6)  # fmt: skip
    rj = jax.jit(lambda x, c: nx.pad(x, {"a": 1}, constant_values=c))(x, 3.0)
    np.testing.assert_array_equal(rj.array, np.pad(np.asarray(x.array), ((1, 1), (0, 0)), constant_values=3.0))
    with pytest.raises(TypeError, match=r"pad_width must be a \{axis: \(before, after\)\} mapping"):
        nx.pad(x, ((1, 1), (0, 0)))
    with pytest.raises(ValueError, match=r"negative pad width \(-1, 0\) for Axis\('a', 2\)"):
        nx.pad(x, {"a": (-1, 0)})
    with pytest.raises(ValueError, match="unknown mode 'mirror'"):
        nx.pad(x, {"a": 1}, mode="mirror")
    with pytest.raises(ValueError, match="constant_values is for mode='constant'"):
        nx.pad(x, {"a": 1}, mode="edge", constant_values=1)
    with pytest.raises(TypeError, match=r"an int or a \(before, after\) pair, got \(1, 2, 3\)"):
        nx.pad(x, {"a": (1, 2, 3)})
    with pytest.raises(nx.AxisNotFoundError, match="pad: no axis 'z'"):
        nx.pad(x, {"z": 1})


# ---- tril / triu / top_k -----------------------------------------------------------------------


@pytest.mark.parametrize("k", [-1, 0, 2])
def test_tril_triu_keep_axis_order(k):
    x = rand((Axis("j", 4), A, Axis("i", 3)))
    for fn, np_fn in ((nx.tril, np.tril), (nx.triu, np.triu)):
        r = fn(x, "i", "j", k=k)
        assert r.axes == x.axes
        assert_named_close(r, np_fn(to_numpy(x, ("a", "i", "j")), k=k), ("a", "i", "j"))
    r = nx.tril(x, "j", "i", k=k)  # j: rows, i: columns
    assert_named_close(r, np.tril(to_numpy(x, ("a", "j", "i")), k=k), ("a", "j", "i"))


def test_tri_errors():
    x = rand((A, B))
    with pytest.raises(ValueError, match=r"tril: axis1 and axis2 are both Axis\('a', 2\)"):
        nx.tril(x, "a", "a")
    with pytest.raises(nx.AxisNotFoundError, match="triu: no axis 'z'"):
        nx.triu(x, "a", "z")
    with pytest.raises(TypeError, match="k must be an int"):
        nx.tril(x, "a", "b", k=0.5)


def test_top_k():
    x = rand((A, C, B))
    values, indices = nx.top_k(x, "c", 2)
    assert values.axes == indices.axes == (A, Axis("c", 2), B)
    order = np.argsort(-np.asarray(x.array), axis=1, kind="stable")[:, :2]
    np.testing.assert_array_equal(indices.array, order)
    np.testing.assert_array_equal(values.array, np.take_along_axis(np.asarray(x.array), order, axis=1))
    assert indices.dtype == jnp.int32
    v2, _ = nx.top_k(x, "c", 3, new_axis=Axis("best", 3))
    assert v2.axes == (A, Axis("best", 3), B)
    assert nx.top_k(x, C, 1, new_axis="top")[0].axes == (A, Axis("top", 1), B)
    with pytest.raises(ValueError, match=r"k=5 is out of range for Axis\('c', 4\)"):
        nx.top_k(x, "c", 5)
    with pytest.raises(ValueError, match=r"new_axis Axis\('best', 3\) must have size k=2"):
        nx.top_k(x, "c", 2, new_axis=Axis("best", 3))
    with pytest.raises(ValueError, match=r"top_k: duplicate axis names \['a'\]"):
        nx.top_k(x, "c", 2, new_axis="a")


def test_shape_ops_traced_match_eager():
    x = rand((A, B, C))

    def f(x):
        y = nx.flatten_axes(x, ("a", "c"), "ac")
        y = nx.unflatten_axis(y, "ac", (A, C))
        parts = nx.split(y, "c", [1, 3])
        v, _ = nx.top_k(parts[1], "c", 2)
        return nx.tril(nx.pad(v, {"c": (0, 1)}), "b", "c") + nx.unbind(x, "c")[0]

    eager, traced = f(x), jax.jit(f)(x)
    assert eager.axes == traced.axes
    np.testing.assert_allclose(eager.array, traced.array, rtol=1e-6)
    jaxpr = jax.make_jaxpr(lambda a: nx.flatten_axes(nx.named(a, ("a", "b", "c")), ("b", "c"), "m").array)(x.array)
    assert [e.primitive.name for e in jaxpr.eqns] == ["reshape"]  # adjacent: no transpose


def test_traced_indices_shifts_and_list_arguments():
    x = rand((A, B, C))
    xa = np.asarray(x.array)
    r = jax.jit(lambda x, i: nx.take(x, "c", i))(x, jnp.array([3, 1]))  # a traced plain index
    assert r.axes == (A, B, Axis("c", 2))
    np.testing.assert_array_equal(r.array, xa[:, :, [3, 1]])
    np.testing.assert_array_equal(nx.take(x, "a", np.int64(1)).array, xa[1])
    with pytest.raises(IndexError, match="index -3 is out of range"):
        nx.take(x, "a", np.int64(-3))
    r = jax.jit(lambda x, s, t: nx.roll(x, (s, t), ["a", "c"]))(x, 1, -1)  # traced shifts, a list of axes
    np.testing.assert_array_equal(r.array, np.roll(xa, (1, -1), axis=(0, 2)))
    np.testing.assert_array_equal(nx.roll(x, [1, 2], ["b", "c"]).array, np.roll(xa, (1, 2), axis=(1, 2)))
    for _ in range(2):  # lists are keyed as tuples: the second call is a cache hit
        y = nx.flatten_axes(x, ["c", "b"], "cb")
        assert y.axes == (A, Axis("cb", 12))
        np.testing.assert_array_equal(y.array, np.transpose(xa, (0, 2, 1)).reshape(2, 12))


@pytest.mark.parametrize(
    "call",
    [
        lambda a: nx.flatten_axes(a, ("a",), "m"),
        lambda a: nx.unflatten_axis(a, "a", {"p": 2}),
        lambda a: nx.split(a, "a", [1, 1]),
        lambda a: nx.unbind(a, "a"),
        lambda a: nx.roll(a, 1, "a"),
        lambda a: nx.take(a, "a", 0),
        lambda a: nx.pad(a, {"a": 1}),
        lambda a: nx.tril(a, "a", "b"),
        lambda a: nx.top_k(a, "a", 1),
    ],
)
def test_plain_arrays_are_refused(call):
    with pytest.raises(TypeError, match="expected a NamedArray, got ndarray"):
        call(np.zeros((2, 3)))
