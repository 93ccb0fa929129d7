import operator

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import namedax as nx
from helpers import assert_named_close, to_numpy
from namedax import Axis, NamedArray

A, B, C = Axis("a", 2), Axis("b", 3), Axis("c", 4)


def arr(*shape, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape).astype(dtype)


# ---- construction ----------------------------------------------------------------------------


def test_named_reads_sizes_and_checks_them():
    x = nx.named(arr(2, 3), ("a", "b"))
    assert x.axes == (A, B)
    assert x.shape == {"a": 2, "b": 3}
    assert (x.ndim, x.size, x.dtype) == (2, 6, jnp.float32)
    assert isinstance(x.array, jax.Array)
    assert nx.named(np.arange(3), "t").axes == (Axis("t", 3),)
    assert nx.named([[1, 2]], {"a": 1, "b": 2}).shape == {"a": 1, "b": 2}
    with pytest.raises(ValueError, match=r"2 axes .* shape \(3,\)"):
        nx.named(np.zeros(3), ("a", "b"))
    with pytest.raises(ValueError, match=r"Axis\('a', 3\) given for a dimension of size 2"):
        nx.named(np.zeros((2, 3)), (Axis("a", 3), "b"))
    with pytest.raises(ValueError, match="duplicate axis names"):
        nx.named(np.zeros((2, 2)), ("a", "a"))


def test_constructor_validates_but_unflatten_does_not():
    x = NamedArray(jnp.zeros((2, 3)), (A, B))
    assert x.axes == (A, B)
    with pytest.raises(ValueError, match="do not fit an array of shape"):
        NamedArray(jnp.zeros((3, 2)), (A, B))
    with pytest.raises(ValueError, match="duplicate"):
        NamedArray(jnp.zeros((2, 2)), (A, A))
    treedef = jax.tree.structure(x)
    for leaf in (None, object(), jax.ShapeDtypeStruct((5,), jnp.float32), jnp.zeros(7)):
        y = jax.tree.unflatten(treedef, [leaf])
        assert y.array is leaf and y.axes == (A, B)


def test_namedarray_is_immutable():
    x = nx.zeros((A,))
    with pytest.raises(AttributeError, match="immutable"):
        x.array = jnp.ones(2)  # type: ignore[misc]


def test_pickle_and_copy():
    import copy
    import pickle

    a = arr(2, 3)
    x = nx.named(a, ("a", "b"))
    for y in (copy.copy(x), copy.deepcopy(x), pickle.loads(pickle.dumps(x))):
        assert type(y) is NamedArray and y.axes == (A, B)
        np.testing.assert_array_equal(np.asarray(y.array), a)


def test_pytree_structure_and_paths():
    x = nx.zeros((A, B))
    leaves, treedef = jax.tree.flatten({"w": x, "n": 3})
    assert len(leaves) == 2 and leaves[0] is x.array or leaves[1] is x.array
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path({"w": x})[0]]
    assert paths == ["['w'].array"]
    doubled = jax.tree.map(lambda v: v * 2, {"w": nx.ones((A, B))})
    assert doubled["w"].axes == (A, B)
    np.testing.assert_array_equal(doubled["w"].array, 2 * np.ones((2, 3)))
    assert jax.tree.structure(nx.zeros((A, B))) != jax.tree.structure(nx.zeros((B, A)))


def test_properties_and_axis_queries():
    x = nx.zeros((A, B))
    assert x.axis_size("b") == 3 and x.axis_size(B) == 3
    assert x.has_axis("a") and x.has_axis((A, "b")) and not x.has_axis("c")
    assert not x.has_axis(Axis("a", 5))
    assert x.resolve_axis("b") == B and x.resolve_axis(("b", "a")) == (B, A)
    with pytest.raises(KeyError, match=r"no axis 'c' in \(Axis\('a', 2\), Axis\('b', 3\)\)"):
        x.axis_size("c")
    with pytest.raises(ValueError, match="axis 'a' has size 2, but Axis\\('a', 5\\) was given"):
        x.resolve_axis(Axis("a", 5))
    assert nx.full((), 3.5).item() == 3.5
    assert x.astype(jnp.int32).dtype == jnp.int32
    with pytest.raises(TypeError, match="cannot be iterated"):
        list(x)
    with pytest.raises(TypeError, match="len\\(\\) of a NamedArray is ambiguous"):
        len(x)
    assert float(nx.full((), 2.0)) == 2.0 and int(nx.full((), 3)) == 3


def test_repr_shows_axes_and_values():
    r = repr(nx.named(jnp.arange(3), "t"))
    assert "{'t': 3}" in r and "int32" in r and "[0, 1, 2]" in r


# ---- operators -------------------------------------------------------------------------------

BINARY = [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow, operator.mod,
          operator.floordiv, operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge]  # fmt: skip
BITWISE = [operator.and_, operator.or_, operator.xor, operator.lshift, operator.rshift]


@pytest.mark.parametrize("op", BINARY)
def test_binary_operators_same_axes(op):
    a, b = arr(2, 3), arr(2, 3, seed=1) + 3.0
    out = op(nx.named(a, ("a", "b")), nx.named(b, ("a", "b")))
    assert_named_close(out, op(jnp.asarray(a), jnp.asarray(b)), ("a", "b"))


@pytest.mark.parametrize("op", BINARY)
def test_binary_operators_transposed_and_outer(op):
    a, b = np.abs(arr(2, 3)) + 1, np.abs(arr(3, 4, seed=1)) + 1
    x, y = nx.named(a, ("a", "b")), nx.named(b, ("b", "c"))
    out = op(x, y)
    assert out.axes == (A, B, C)  # first operand's axes, then the second's new ones
    ref = op(jnp.asarray(a)[:, :, None], jnp.asarray(b)[None, :, :])
    assert_named_close(out, ref, ("a", "b", "c"))
    out2 = op(y, x)
    assert out2.axes == (B, C, A)
    assert_named_close(out2, op(jnp.asarray(b)[None], jnp.asarray(a)[:, :, None]), ("a", "b", "c"))


@pytest.mark.parametrize("op", BITWISE)
def test_bitwise_operators(op):
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    b = np.array([1, 2, 3], dtype=np.int32)
    out = op(nx.named(a, ("a", "b")), nx.named(b, "b"))
    assert_named_close(out, op(a, b[None, :]), ("a", "b"))


@pytest.mark.parametrize("op", [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow])
def test_scalars_broadcast_on_either_side(op):
    a = np.abs(arr(2, 3)) + 1
    x = nx.named(a, ("a", "b"))
    for s in (2, 2.5, np.float32(1.5), jnp.asarray(3.0), np.int32(2)):
        assert_named_close(op(x, s), op(jnp.asarray(a), s), ("a", "b"))
        assert_named_close(op(s, x), op(s, jnp.asarray(a)), ("a", "b"))
    assert op(x, 2).dtype == op(jnp.asarray(a), 2).dtype


def test_pow_by_an_integer_is_exactly_jnp():
    # jnp.power specialises on a concrete integer exponent (lax.integer_pow); an eager namedax
    # `x ** 3` must give the same bits, not those of lax.pow with a traced exponent
    a = (arr(1000) * 10).astype(np.float32)
    x = nx.named(a, "t")
    for n in (2, 3, 7, -2, np.int32(5), True):
        for out in (x**n, nx.power(x, n)):
            assert out.dtype == (jnp.asarray(a) ** n).dtype
            np.testing.assert_array_equal(np.asarray(out.array), np.asarray(jnp.asarray(a) ** n))
    i = nx.named(np.arange(1, 4, dtype=np.int32), "t")
    with pytest.raises(TypeError, match="negative powers"):  # as jnp: not garbage from lax.pow
        i**-1
    np.testing.assert_array_equal(np.asarray((i**2).array), np.arange(1, 4) ** 2)


def test_unary_operators():
    a = arr(2, 3)
    x = nx.named(a, ("a", "b"))
    assert_named_close(-x, -a, ("a", "b"))
    assert_named_close(+x, a, ("a", "b"))
    assert_named_close(abs(x), np.abs(a), ("a", "b"))
    i = nx.named(np.arange(3, dtype=np.int32), "b")
    assert_named_close(~i, ~np.arange(3, dtype=np.int32), ("b",))


def test_operator_errors():
    x, y = nx.zeros((A, B)), nx.zeros({"b": 5})
    with pytest.raises(ValueError, match="axis 'b' has size 3 in one operand and 5 in another"):
        x + y
    with pytest.raises(TypeError, match=r"plain array of shape \(2, 3\).*nx.named"):
        x + jnp.zeros((2, 3))
    with pytest.raises(TypeError, match=r"plain array of shape \(3,\)"):
        np.zeros(3) * x
    with pytest.raises(TypeError, match="nx.dot"):
        x @ x
    with pytest.raises(TypeError):
        x + "text"


def test_dtype_promotion_matches_jnp():
    i = nx.named(np.arange(3, dtype=np.int32), "b")
    f = nx.named(np.ones(3, dtype=np.float16), "b")
    assert (i + f).dtype == (jnp.arange(3, dtype=jnp.int32) + jnp.ones(3, jnp.float16)).dtype
    assert (i / 2).dtype == (jnp.arange(3, dtype=jnp.int32) / 2).dtype


NAMES = ("a", "b", "c")
SIZES = {"a": 2, "b": 3, "c": 1}


@st.composite
def two_operands(draw):
    names1 = draw(st.permutations(NAMES).map(lambda p: p[: draw(st.integers(0, 3))]))
    names2 = draw(st.permutations(NAMES).map(lambda p: p[: draw(st.integers(0, 3))]))
    return tuple(names1), tuple(names2)


@given(two_operands(), st.sampled_from([operator.add, operator.mul, operator.sub, operator.gt]))
def test_property_broadcast_by_name_equals_numpy(names, op):
    n1, n2 = names
    rng = np.random.default_rng(len(n1) * 7 + len(n2))
    full = {n: rng.normal(size=[SIZES[m] for m in NAMES]).astype(np.float32) for n in ("x", "y")}
    # operands: the full reference arrays reduced (by taking index 0) over the axes they lack, transposed
    a = full["x"][tuple(slice(None) if m in n1 else 0 for m in NAMES)]
    b = full["y"][tuple(slice(None) if m in n2 else 0 for m in NAMES)]
    kept1 = [m for m in NAMES if m in n1]
    kept2 = [m for m in NAMES if m in n2]
    x = nx.named(np.transpose(a, [kept1.index(m) for m in n1]), n1)
    y = nx.named(np.transpose(b, [kept2.index(m) for m in n2]), n2)
    out = op(x, y)
    expect_order = tuple(n1) + tuple(m for m in n2 if m not in n1)
    assert tuple(ax.name for ax in out.axes) == expect_order
    # numpy reference on the positional equivalent, in NAMES order
    ea = a.reshape([SIZES[m] if m in n1 else 1 for m in NAMES])
    eb = b.reshape([SIZES[m] if m in n2 else 1 for m in NAMES])
    ref = op(ea, eb)
    present = [m for m in NAMES if m in expect_order]
    ref = ref.reshape([SIZES[m] for m in present]) if present else ref.reshape(())
    np.testing.assert_allclose(to_numpy(out, present) if present else np.asarray(out.array), ref, rtol=1e-6)


# ---- rename / rearrange / broadcast ------------------------------------------------------------


def test_rename():
    x = nx.named(arr(2, 3), ("a", "b"))
    y = x.rename({"a": "rows", B: Axis("cols", 3)})
    assert y.axes == (Axis("rows", 2), Axis("cols", 3))
    np.testing.assert_array_equal(y.array, x.array)
    with pytest.raises(ValueError, match="sizes differ"):
        x.rename({"a": Axis("rows", 5)})
    with pytest.raises(ValueError, match="duplicate"):
        x.rename({"a": "b"})
    with pytest.raises(KeyError, match="no axis 'z'"):
        x.rename({"z": "q"})


def test_rearrange():
    a = arr(2, 3, 4)
    x = nx.named(a, ("a", "b", "c"))
    assert_named_close(x.rearrange(("c", "a", "b")), np.transpose(a, (2, 0, 1)), ("c", "a", "b"))
    y = nx.rearrange(x, ("c", ...))
    assert y.axes == (C, A, B)
    np.testing.assert_array_equal(y.array, np.transpose(a, (2, 0, 1)))
    z = nx.rearrange(x, (..., "a"))
    np.testing.assert_array_equal(z.array, np.transpose(a, (1, 2, 0)))
    w = nx.rearrange(x, ("b", ..., "a"))
    assert w.axes == (B, C, A)
    assert nx.rearrange(x, ("a", "b", "c")) is x
    with pytest.raises(ValueError, match="leaves out axes"):
        nx.rearrange(x, ("a", "b"))
    with pytest.raises(ValueError, match="at most once"):
        nx.rearrange(x, (..., "a", ...))
    with pytest.raises(ValueError, match="listed twice"):
        nx.rearrange(x, ("a", "a", ...))
    with pytest.raises(KeyError, match="no axis 'q'"):
        nx.rearrange(x, ("q", ...))


def test_broadcast_to_and_axis():
    b = arr(3)
    x = nx.named(b, "b")
    y = nx.broadcast_to(x, (A, B, C))
    assert y.axes == (A, B, C)
    np.testing.assert_array_equal(y.array, np.broadcast_to(b[None, :, None], (2, 3, 4)))
    x2 = nx.named(arr(3, 2), ("b", "a"))
    y2 = x2.broadcast_to((C, "a", B))
    np.testing.assert_array_equal(y2.array, np.broadcast_to(np.asarray(x2.array).T[None], (4, 2, 3)))
    assert nx.broadcast_to(2.0, {"a": 2}).shape == {"a": 2}
    with pytest.raises(ValueError, match="not in the target axes"):
        nx.broadcast_to(x2, (B, C))
    with pytest.raises(ValueError, match="axis 'b' has size 3, target wants 5"):
        nx.broadcast_to(x, {"b": 5})
    z = x.broadcast_axis(A)
    assert z.axes == (A, B)
    np.testing.assert_array_equal(z.array, np.broadcast_to(b, (2, 3)))
    assert nx.broadcast_axis(x, (A, B)).axes == (A, B)  # b already there: left in place
    with pytest.raises(ValueError, match="conflicts"):
        nx.broadcast_axis(x, Axis("b", 4))


# ---- indexing ----------------------------------------------------------------------------------


def test_index_by_name_forms():
    a = arr(2, 3, 4)
    x = nx.named(a, ("a", "b", "c"))
    assert_named_close(x["a", 1], a[1], ("b", "c"))
    assert_named_close(x["b", 2], a[:, 2], ("a", "c"))
    assert_named_close(x["b", 1:3, "c", 0], a[:, 1:3, 0], ("a", "b"))
    assert x["b", 1:3, "c", 0].axes == (A, Axis("b", 2))
    assert_named_close(x[{"c": -1, "a": 0}], a[0, :, -1], ("b",))
    assert_named_close(x[{C: slice(None, None, 2)}], a[:, :, ::2], ("a", "b", "c"))
    assert_named_close(x["a", np.int64(1)], a[1], ("b", "c"))
    assert_named_close(x["a", jnp.asarray(1)], a[1], ("b", "c"))
    assert_named_close(x["c", np.array([3, 0])], a[:, :, [3, 0]], ("a", "b", "c"))
    assert x["c", np.array([3, 0])].axes == (A, B, Axis("c", 2))


def test_index_gather_by_named_array():
    a = arr(2, 3, 4)
    x = nx.named(a, ("a", "b", "c"))
    idx = nx.named(np.array([2, 0, 2, 1, 0]), "k")
    out = x["b", idx]
    assert out.axes == (A, Axis("k", 5), C)  # index axes take the place of the indexed axis
    np.testing.assert_array_equal(out.array, a[:, [2, 0, 2, 1, 0], :])
    # two index arrays broadcast together by name
    i1 = nx.named(np.array([0, 1, 1]), "k")
    i2 = nx.named(np.array([[0, 3], [1, 2], [2, 2]]), ("k", "m"))
    out2 = x["a", i1, "c", i2]
    ref = a[np.array([0, 1, 1])[:, None], :, np.array([[0, 3], [1, 2], [2, 2]])]
    assert {ax.name for ax in out2.axes} == {"k", "m", "b"}
    np.testing.assert_array_equal(to_numpy(out2, ("k", "m", "b")), ref)
    # index array axes in another order than the union
    i3 = nx.named(np.array([[0, 1, 2], [2, 1, 0]]), ("m", "k"))
    out3 = x["b", i3, "c", nx.named(np.array([1, 3, 0]), "k")]
    ref3 = a[:, np.array([[0, 1, 2], [2, 1, 0]]).T, np.array([1, 3, 0])[:, None]]
    np.testing.assert_array_equal(to_numpy(out3, ("a", "k", "m")), ref3)


def test_index_slices_with_numpy_and_concrete_array_bounds():
    a = arr(2, 3, 4)
    x = nx.named(a, ("a", "b", "c"))
    for sl in (slice(jnp.array(1), 3), slice(np.int64(3), None, np.int32(-2)), slice(None, jnp.array(-1))):
        assert_named_close(x["c", sl], jnp.asarray(a)[:, :, sl], ("a", "b", "c"))


def test_slice_errors_name_the_axis():
    x = nx.zeros((A, B))
    with pytest.raises(ValueError, match="indexing: the slice .* for axis 'b' has step 0"):
        x["b", ::0]
    with pytest.raises(TypeError, match="indexing: the slice .* for axis 'b' needs static int bounds"):
        jax.jit(lambda x, n: x["b", n:])(x, 1)
    with pytest.raises(TypeError, match=r"\.at\[\]: the slice .* for axis 'a' needs static int bounds"):
        x.at["a", 0.5:].set(1.0)


def test_positional_axes_are_refused_naming_the_operation():
    x = nx.zeros((A, B))
    calls = {
        "indexing": lambda: x[{0: 1}],
        "rearrange": lambda: nx.rearrange(x, (1, 0)),
        "rename": lambda: nx.rename(x, {0: "z"}),
        "broadcast_to": lambda: nx.broadcast_to(x, (0, "b")),
        "axis_size": lambda: x.axis_size(0),
        "has_axis": lambda: x.has_axis(0),
    }
    for op, call in calls.items():
        with pytest.raises(TypeError, match=rf"^{op}: an axis selector .* got int: \d \(namedax selects axes by name"):
            call()


def test_index_errors():
    x = nx.zeros((A, B))
    with pytest.raises(IndexError, match="index 3 is out of range for axis 'a' of size 2"):
        x["a", 3]
    with pytest.raises(KeyError, match="no axis 'z'"):
        x["z", 0]
    with pytest.raises(TypeError, match="index by name"):
        x[0]
    with pytest.raises(TypeError, match="index by name"):
        x[0, 1]
    with pytest.raises(ValueError, match="indexed twice"):
        x["a", 0, "a", 1]
    with pytest.raises(TypeError, match="integer dtype"):
        x["a", nx.zeros({"k": 2})]
    with pytest.raises(TypeError, match="must be 1-D"):
        x["a", np.zeros((2, 2), dtype=int)]
    with pytest.raises(TypeError, match="int, slice or integer array"):
        x["a", 1.5]
    with pytest.raises(ValueError, match="also axes of the indexed array"):
        x["a", nx.named(np.array([0, 1, 0]), "b")]


def test_at_updates():
    a = arr(2, 3)
    x = nx.named(a, ("a", "b"))
    v = nx.named(np.array([1.0, 2.0], np.float32), "a")
    np.testing.assert_array_equal(x.at["b", 1].set(v).array, jnp.asarray(a).at[:, 1].set(np.array([1.0, 2.0])))
    np.testing.assert_array_equal(x.at["a", 0].add(5.0).array, jnp.asarray(a).at[0].add(5.0))
    np.testing.assert_array_equal(x.at["a", 1].multiply(2).array, jnp.asarray(a).at[1].multiply(2))
    np.testing.assert_array_equal(x.at["b", 0].min(-10.0).array, jnp.asarray(a).at[:, 0].min(-10.0))
    np.testing.assert_array_equal(x.at["b", 0].max(10.0).array, jnp.asarray(a).at[:, 0].max(10.0))
    np.testing.assert_array_equal(x.at["a", 1].get().array, a[1])
    # a 2-D value given in the other axis order is aligned by name
    w = nx.named(np.arange(4, dtype=np.float32).reshape(2, 2), ("b", "a"))
    out = x.at["b", 0:2].set(w)
    np.testing.assert_array_equal(out.array, jnp.asarray(a).at[:, 0:2].set(np.arange(4.0).reshape(2, 2).T))
    # a value with axes outside the selection is refused, naming the update and both axes tuples
    with pytest.raises(ValueError, match=r"\.at\[\]\.set: axis Axis\('a', 2\) of the array is not in the target "
                       r"axes \(Axis\('b', 3\),\)") as info:
        x.at["a", 0].set(v)
    assert "broadcast_to" not in str(info.value)
    with pytest.raises(ValueError, match=r"\.at\[\]\.add: axis 'b' has size 2, target wants 3"):
        x.at["a", 0].add(nx.named(np.ones(2, np.float32), "b"))
    with pytest.raises(ValueError, match=r"\.at\[\]\.multiply"):
        x.at["b", 0].multiply(nx.named(np.ones((2, 3), np.float32), ("a", "b")))
    with pytest.raises(TypeError, match="plain array"):
        x.at["a", 0].set(jnp.zeros(3))


# ---- transformations ---------------------------------------------------------------------------


def test_jit_grad_vmap_and_tree_utilities():
    a = arr(2, 3)
    x = nx.named(a, ("a", "b"))
    y = nx.named(arr(3, seed=2), "b")

    @jax.jit
    def f(x, y):
        return (x * y + 1.0)["a", 0]

    assert_named_close(f(x, y), (a * np.asarray(y.array) + 1.0)[0], ("b",))

    g = jax.grad(lambda x: (x * x)["a", 1].array.sum())(x)
    assert isinstance(g, NamedArray) and g.axes == x.axes
    ref = np.zeros_like(a)
    ref[1] = 2 * a[1]
    np.testing.assert_allclose(g.array, ref, rtol=1e-6)

    # plain jax.vmap over the leading dimension of the leaf: inside, axes are stale, so only use
    # the array; outside, rebuild by hand. namedax.vmap is the named way.
    out = jax.vmap(lambda v: v * 2.0)(x)
    assert out.axes == x.axes
    np.testing.assert_allclose(out.array, 2 * a)

    leaves = jax.tree.leaves({"x": x, "y": [y, 1.0]})
    assert len(leaves) == 3
    s = jax.tree.map(lambda leaf: leaf + 1, {"x": x})
    assert s["x"].axes == x.axes


def test_scalar_gives_the_0d_array_for_grad_and_value_and_grad():
    a, w = arr(2, 3), arr(3, seed=1)
    x, wn = nx.named(a, ("a", "b")), nx.named(w, "b")

    def loss(p):
        return nx.sum((x * p) ** 2)

    s = loss(wn).scalar()
    assert type(s) is type(jnp.asarray(1.0)) and s.shape == ()
    ref_loss = lambda p: jnp.sum((a * p) ** 2)  # noqa: E731
    np.testing.assert_allclose(s, ref_loss(w), rtol=1e-6)
    g = jax.grad(lambda p: loss(p).scalar())(wn)
    assert g.axes == wn.axes
    np.testing.assert_allclose(g.array, jax.grad(ref_loss)(w), rtol=1e-5)
    v, g2 = jax.jit(jax.value_and_grad(lambda p: loss(p).scalar()))(wn)
    np.testing.assert_allclose(v, ref_loss(w), rtol=1e-6)
    np.testing.assert_allclose(g2.array, jax.grad(ref_loss)(w), rtol=1e-5)
    with pytest.raises(ValueError, match=r"scalar: the array has axes \(Axis\('a', 2\), Axis\('b', 3\)\)"):
        x.scalar()
    # no __jax_array__ (jax 0.10 refuses it inside jax.numpy functions); jnp.asarray converts a 0-d one
    assert not hasattr(NamedArray, "__jax_array__")
    np.testing.assert_allclose(jnp.asarray(loss(wn)), ref_loss(w), rtol=1e-6)


def test_traced_ops_have_the_positional_jaxpr():
    a, b = jnp.ones((2, 3)), jnp.ones((3, 2))

    def named_fn(a, b):
        return (nx.named(a, ("a", "b")) + nx.named(b, ("b", "a"))).array

    def positional(a, b):
        return a + jax.lax.transpose(b, (1, 0))

    assert str(jax.make_jaxpr(named_fn)(a, b)) == str(jax.make_jaxpr(positional)(a, b))
    assert str(jax.make_jaxpr(lambda a: (nx.named(a, ("a", "b")) * 2).array)(a)) == str(
        jax.make_jaxpr(lambda a: a * 2)(a)
    )
