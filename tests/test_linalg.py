"""dot and einsum against np.einsum / jnp on the positional equivalent."""

import string

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import namedax as nx
from helpers import assert_named_close, to_numpy
from namedax import Axis
from namedax.core import _kernels
from namedax.ops import _linalg

Bt, I, E, H, O = Axis("batch", 2), Axis("i", 3), Axis("embed", 4), Axis("hid", 5), Axis("out", 3)  # noqa: E741


def arr(*shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


def rand(axes, seed=0, dtype=np.float32):
    return nx.named(arr(*(a.size for a in axes), dtype=dtype, seed=seed), axes)


def ref(spec, *xs, orders):
    """np.einsum on the arrays laid out in ``orders`` (names)."""
    return np.einsum(spec, *[to_numpy(x, o) for x, o in zip(xs, orders, strict=True)])


# ---- dot ---------------------------------------------------------------------------------------


def test_dot_matmul_and_operand_orders():
    x, w = rand((Bt, E)), rand((E, O), seed=1)
    r = nx.dot(x, w, axis=E)
    assert r.axes == (Bt, O)
    np.testing.assert_allclose(r.array, np.asarray(x.array) @ np.asarray(w.array), rtol=1e-5)
    w_t = nx.rearrange(w, ("out", "embed"))  # the same values, other layout
    r2 = nx.dot(x, w_t, axis="embed")
    assert r2.axes == (Bt, O)
    np.testing.assert_allclose(r2.array, r.array, rtol=1e-5)
    r3 = nx.dot(w_t, x, axis="embed")  # union order of first appearance
    assert r3.axes == (O, Bt)
    np.testing.assert_allclose(r3.array, np.asarray(r.array).T, rtol=1e-5)


def test_dot_batched_and_single_holder_contractions():
    x, y = rand((Bt, I, E)), rand((E, Bt, O), seed=1)
    r = nx.dot(x, y, axis=E)  # batch is shared and kept: batched
    assert r.axes == (Bt, I, O)
    assert_named_close(r, ref("bie,ebo->bio", x, y, orders=[("batch", "i", "embed"), ("embed", "batch", "out")]),
                       ("batch", "i", "out"))  # fmt: skip
    # i is held by x alone and contracted: summed first; batch is contracted too
    r = nx.dot(x, y, axis=(E, "i", "batch"))
    assert r.axes == (O,)
    assert_named_close(
        r, ref("bie,ebo->o", x, y, orders=[("batch", "i", "embed"), ("embed", "batch", "out")]), ("out",)
    )
    # an output order that needs a transpose after dot_general: i before the batch dims
    z = rand((I, Bt, E), seed=2)
    r = nx.dot(z, y, axis=E)
    assert r.axes == (I, Bt, O)
    assert_named_close(r, ref("ibe,ebo->ibo", z, y, orders=[("i", "batch", "embed"), ("embed", "batch", "out")]),
                       ("i", "batch", "out"))  # fmt: skip


def test_dot_axis_none_and_empty():
    x, y = rand((Bt, E)), rand((E, O), seed=1)
    s = nx.dot(x, y, axis=None)
    assert s.axes == ()
    np.testing.assert_allclose(s.array, ref("be,eo->", x, y, orders=[("batch", "embed"), ("embed", "out")]), rtol=1e-5)
    outer = nx.dot(x, y, axis=())
    assert outer.axes == (Bt, E, O)
    assert_named_close(outer, ref("be,eo->beo", x, y, orders=[("batch", "embed"), ("embed", "out")]),
                       ("batch", "embed", "out"))  # fmt: skip
    disjoint = nx.dot(rand((Bt,)), rand((O,), seed=1), axis=())
    assert disjoint.axes == (Bt, O)
    assert nx.dot(x, axis=None).axes == () and nx.dot(x, y, axis=[]).axes == (Bt, E, O)


def test_dot_one_operand_is_a_sum():
    x = rand((Bt, E, O))
    r = nx.dot(x, axis=("embed",))
    assert r.axes == (Bt, O)
    np.testing.assert_allclose(r.array, np.asarray(x.array).sum(1), rtol=1e-5)


@pytest.mark.parametrize("axis", [(E, H), ("embed",), None, ()])
def test_dot_three_operands(axis):
    x, w1, w2 = rand((Bt, E)), rand((H, E, Bt), seed=1), rand((H, O), seed=2)
    r = nx.dot(x, w1, w2, axis=axis)
    union = ("batch", "embed", "hid", "out")
    contracted = () if axis == () else union if axis is None else tuple(nx.axis_name(a) for a in axis)
    keep = tuple(n for n in union if n not in contracted)
    assert tuple(a.name for a in r.axes) == keep
    letters = {"batch": "b", "embed": "e", "hid": "h", "out": "o"}
    spec = "be,heb,ho->" + "".join(letters[n] for n in keep)
    assert_named_close(r, ref(spec, x, w1, w2, orders=[("batch", "embed"), ("hid", "embed", "batch"), ("hid", "out")]),
                       keep, rtol=1e-4)  # fmt: skip


def test_dot_options_dtypes_method_and_out_axes():
    xi, wi = rand((Bt, E), dtype=np.int8), rand((E, O), seed=1, dtype=np.int8)
    r = nx.dot(xi, wi, axis=E, preferred_element_type=jnp.int32)
    assert r.dtype == jnp.int32
    np.testing.assert_array_equal(r.array, np.asarray(xi.array, np.int32) @ np.asarray(wi.array, np.int32))
    x, w = rand((Bt, E)), rand((E, O), seed=1)
    assert nx.dot(xi, w, axis=E).dtype == jnp.dot(xi.array, w.array).dtype  # promotion as jnp.dot
    hi = nx.dot(x, w, axis=E, precision=jax.lax.Precision.HIGHEST)
    np.testing.assert_allclose(hi.array, np.asarray(x.array) @ np.asarray(w.array), rtol=1e-6)
    m = x.dot(w, axis="embed")
    np.testing.assert_allclose(m.array, hi.array, rtol=1e-5)
    t = nx.dot(x, w, axis=E, out_axes=("out", ...))
    assert t.axes == (O, Bt)
    np.testing.assert_allclose(t.array, np.asarray(hi.array).T, rtol=1e-5)
    assert nx.dot(x, w, axis=(), out_axes=[..., "batch"]).axes == (E, O, Bt)


def test_dot_jaxpr_is_the_positional_one():
    a, b = arr(2, 4), arr(4, 3, seed=1)
    named = jax.make_jaxpr(lambda a, b: nx.dot(nx.named(a, ("batch", "embed")), nx.named(b, ("embed", "out")),
                                               axis="embed").array)(a, b)  # fmt: skip
    assert str(named) == str(jax.make_jaxpr(jnp.dot)(a, b))
    assert [e.primitive.name for e in named.eqns] == ["dot_general"]
    # batched: the same dot_general as the hand-written one, no transpose
    a3, b3 = arr(2, 3, 4), arr(4, 2, 5, seed=1)
    named = jax.make_jaxpr(lambda a, b: nx.dot(nx.named(a, ("b", "i", "e")), nx.named(b, ("e", "b", "o")),
                                               axis="e").array)(a3, b3)  # fmt: skip
    hand = jax.make_jaxpr(lambda a, b: jax.lax.dot_general(a, b, (((2,), (0,)), ((0,), (1,))),
                                                           preferred_element_type=jnp.float32))(a3, b3)  # fmt: skip
    assert str(named) == str(hand)


def test_dot_eager_uses_cached_kernels_without_einsum(monkeypatch):
    x, w = rand((Axis("p", 2), Axis("q", 3))), rand((Axis("q", 3), Axis("r", 2)), seed=1)

    def no_einsum(*args, **kwargs):
        raise AssertionError("jnp.einsum called")

    monkeypatch.setattr(jnp, "einsum", no_einsum)
    r = nx.dot(x, w, axis="q")  # two operands: dot_general, even on the first call
    np.testing.assert_allclose(r.array, np.asarray(x.array) @ np.asarray(w.array), rtol=1e-5)
    monkeypatch.undo()
    n_cached = _kernels.cache_len()
    v = rand((Axis("r", 2), Axis("s", 4)), seed=2)
    nx.dot(x, w, v, axis=("q", "r"))
    jitted = _kernels.cached((("q", "r"), None, None, None, x.axes, w.axes, v.axes), None)[0]  # (jitted, plain, out)

    def no_path(*args, **kwargs):
        raise AssertionError("einsum path search on a cached call")

    monkeypatch.setattr(_linalg.opt_einsum, "contract_path", no_path)
    for _ in range(3):
        nx.dot(x, w, v, axis=("q", "r"))
        nx.dot(x, w, axis="q")
    assert _kernels.cache_len() == n_cached + 2  # the plan and its kernel
    assert jitted._cache_size() == 1  # one compile, reused


def test_dot_under_jit_and_grad():
    x, w = rand((Bt, E)), rand((E, O), seed=1)

    @jax.jit
    def f(x, w):
        return nx.dot(x, w, axis=E)

    r = f(x, w)
    assert r.axes == (Bt, O)
    np.testing.assert_allclose(r.array, np.asarray(x.array) @ np.asarray(w.array), rtol=1e-5)
    g = jax.grad(lambda w: nx.dot(x, w, axis=None).array)(w)
    g_ref = jax.grad(lambda w: jnp.sum(x.array @ w))(w.array)
    assert g.axes == w.axes
    np.testing.assert_allclose(g.array, g_ref, rtol=1e-5)
    g3 = jax.jit(jax.grad(lambda x: nx.dot(x, w, rand((O,), seed=2), axis=None).array))(x)
    g3_ref = jax.grad(lambda a: jnp.einsum("be,eo,o->", a, w.array, rand((O,), seed=2).array))(x.array)
    np.testing.assert_allclose(g3.array, g3_ref, rtol=1e-5)


def test_dot_errors():
    x, w = rand((Bt, E)), rand((E, O))
    for axis in (1, (1,)):  # a jnp habit: refused, with the operation named
        with pytest.raises(TypeError, match=r"^dot: an axis selector .* got int: 1 \(namedax selects axes by name"):
            nx.dot(x, w, axis=axis)
    with pytest.raises(ValueError, match=r"dot: axis 'embed' has size 4 in one operand and 5 in another"):
        nx.dot(x, rand((Axis("embed", 5),)), axis="embed")
    with pytest.raises(
        nx.AxisNotFoundError,
        match=r"cannot contract 'hid': no operand has it; the operands have "
        r"\(Axis\('batch', 2\), Axis\('embed', 4\), Axis\('out', 3\)\)",
    ):
        nx.dot(x, w, axis="hid")  # fmt: skip
    with pytest.raises(TypeError, match="pass the axes to contract as `axis=`"):
        nx.dot(x, w)
    with pytest.raises(TypeError, match="axes go in the `axis=` keyword"):
        nx.dot("embed", x, w)
    with pytest.raises(TypeError, match="operand 1 must be a NamedArray, got ndarray"):
        nx.dot(x, np.ones((2, 4)), axis="embed")
    with pytest.raises(ValueError, match="dot: no arrays given"):
        nx.dot(axis="embed")
    with pytest.raises(ValueError, match="listed twice"):
        nx.dot(x, w, axis=("embed", E))
    with pytest.raises(ValueError, match=r"Axis\('embed', 7\) given, but the operands have Axis\('embed', 4\)"):
        nx.dot(x, w, axis=Axis("embed", 7))
    with pytest.raises(ValueError, match=r"leaves out output axes \['batch'\]"):
        nx.dot(x, w, axis=E, out_axes=("out",))
    with pytest.raises(nx.AxisNotFoundError, match="out_axes names 'embed', which is not an output axis"):
        nx.dot(x, w, axis=E, out_axes=("embed", ...))


POOL = {"a": 2, "b": 3, "c": 1, "d": 2, "e": 3}


@st.composite
def dot_case(draw):
    names = list(POOL)
    n_ops = draw(st.integers(1, 3))
    ops = [draw(st.permutations(names).map(lambda p: p[: draw(st.integers(0, 3))])) for _ in range(n_ops)]
    union = list(dict.fromkeys(n for op in ops for n in op))
    kind = draw(st.sampled_from(["subset", "subset", "none", "empty"]))
    if kind == "none":
        axis = None
    elif kind == "empty":
        axis = ()
    else:
        axis = tuple(draw(st.permutations(union).map(lambda p: p[: draw(st.integers(0, len(union)))])))
    return ops, axis, draw(st.integers(0, 1000))


@settings(max_examples=200)
@given(dot_case())
def test_dot_matches_np_einsum(case):
    ops, axis, seed = case
    arrays = [rand(tuple(Axis(n, POOL[n]) for n in op), seed=seed + k) for k, op in enumerate(ops)]
    union = list(dict.fromkeys(n for op in ops for n in op))
    contracted = union if axis is None else list(axis)
    keep = tuple(n for n in union if n not in contracted)
    r = nx.dot(*arrays, axis=axis)
    assert r.axes == tuple(Axis(n, POOL[n]) for n in keep)
    letter = {n: string.ascii_lowercase[i] for i, n in enumerate(POOL)}
    spec = ",".join("".join(letter[n] for n in op) for op in ops) + "->" + "".join(letter[n] for n in keep)
    expected = np.einsum(spec, *[np.asarray(a.array, np.float64) for a in arrays])
    np.testing.assert_allclose(np.asarray(r.array), expected, rtol=1e-4, atol=1e-5)


# ---- einsum ------------------------------------------------------------------------------------


def test_einsum_positional():
    a, b = rand((Axis("h", 2), Axis("w", 3), Axis("d", 4))), rand((Axis("d", 4), Axis("w", 3), Axis("h", 2)), seed=1)
    r = nx.einsum("i j k, k j i -> j k", a, b)  # labels need not be the axis names
    assert tuple(x.name for x in r.axes) == ("w", "d")
    np.testing.assert_allclose(r.array, np.einsum("ijk,kji->jk", a.array, b.array), rtol=1e-5)
    r = nx.einsum("h w d,d w h->", a, b)
    assert r.axes == ()
    np.testing.assert_allclose(r.array, np.einsum("ijk,kji->", a.array, b.array), rtol=1e-5)
    x, w = rand((Bt, E)), rand((E, O), seed=1)
    r = nx.einsum("b e, e o -> o b", x, w)
    assert r.axes == (O, Bt)
    np.testing.assert_allclose(r.array, (np.asarray(x.array) @ np.asarray(w.array)).T, rtol=1e-5)
    v = rand((O, H), seed=2)  # three operands
    r = nx.einsum("b e, e o, o h -> h b", x, w, v)
    np.testing.assert_allclose(r.array, np.einsum("be,eo,oh->hb", x.array, w.array, v.array), rtol=1e-4)


def test_einsum_positional_ellipsis():
    x, w = rand((Bt, I, E)), rand((E, O), seed=1)
    r = nx.einsum("... embed, embed out -> ... out", x, w)
    assert r.axes == (Bt, I, O)
    np.testing.assert_allclose(r.array, np.einsum("bie,eo->bio", x.array, w.array), rtol=1e-5)
    r = nx.einsum("... e, e o -> o ...", x, w)
    assert r.axes == (O, Bt, I)
    # the ellipsis axes are matched by name across operands, not by position
    y = rand((I, Bt, E), seed=2)
    r = nx.einsum("... e, ... e -> ...", x, y)
    assert r.axes == (Bt, I)
    assert_named_close(r, ref("bie,bie->bi", x, y, orders=[("batch", "i", "embed")] * 2), ("batch", "i"))
    r = nx.einsum("b ..., e o -> b o", x, w)  # ellipsis axes not on the right: summed
    np.testing.assert_allclose(r.array, np.einsum("bie,eo->bo", x.array, w.array), rtol=1e-5)


def test_einsum_by_name_and_output_only():
    a, b = rand((Axis("h", 2), Axis("w", 3), Axis("d", 4))), rand((Axis("d", 4), Axis("w", 3), Axis("h", 2)), seed=1)
    r = nx.einsum("{h w d} -> h w", a, b)
    assert tuple(x.name for x in r.axes) == ("h", "w")
    np.testing.assert_allclose(r.array, np.einsum("ijk,kji->ij", a.array, b.array), rtol=1e-5)
    r = nx.einsum("{d} -> ", a, b)  # contract d, keep the rest in input order
    assert tuple(x.name for x in r.axes) == ("h", "w")
    np.testing.assert_allclose(r.array, np.einsum("ijk,kji->ij", a.array, b.array), rtol=1e-5)
    r = nx.einsum("{d} -> h", a, b)  # named on the right: put last
    assert tuple(x.name for x in r.axes) == ("w", "h")
    r = nx.einsum("{d} -> h ...", a, b)
    assert tuple(x.name for x in r.axes) == ("h", "w")
    r = nx.einsum("{...} -> w", a, b)  # keep exactly w
    np.testing.assert_allclose(r.array, np.einsum("ijk,kji->j", a.array, b.array), rtol=1e-5)
    r = nx.einsum("-> w h", a, b)
    assert tuple(x.name for x in r.axes) == ("w", "h")
    np.testing.assert_allclose(r.array, np.einsum("ijk,kji->ji", a.array, b.array), rtol=1e-5)
    r = nx.einsum("-> d ...", a, b)  # nothing contracted
    assert tuple(x.name for x in r.axes) == ("d", "h", "w")
    q = nx.rename(rand((Bt, E)), {"batch": "my batch"})
    r = nx.einsum("{embed} -> 'my batch'", q, rand((E,), seed=3))
    assert r.axes == (Axis("my batch", 2),)


def test_einsum_aliases():
    x, w = rand((Bt, E)), rand((E, O), seed=1)
    r = nx.einsum("{x} -> ", x, w, x=E)
    np.testing.assert_allclose(r.array, np.asarray(x.array) @ np.asarray(w.array), rtol=1e-5)
    r = nx.einsum("-> y", x, w, y="out")
    assert r.axes == (O,)
    r = nx.einsum("p q, q r -> p r", x, w, q=E)  # in the positional form, an alias checks the axis
    assert r.axes == (Bt, O)
    with pytest.raises(ValueError, match=r"'q' is an alias of 'out', but labels Axis\('embed', 4\)"):
        nx.einsum("p q, q r -> p r", x, w, q="out")
    with pytest.raises(ValueError, match=r"alias x=Axis\('embed', 9\) but the arrays have Axis\('embed', 4\)"):
        nx.einsum("{x} -> ", x, w, x=Axis("embed", 9))
    with pytest.raises(ValueError, match=r"aliases \['z'\] are not used"):
        nx.einsum("{embed} -> ", x, w, z=E)
    with pytest.raises(TypeError, match="must be an Axis or an axis name"):
        nx.einsum("{x} -> ", x, w, x=3)


def test_einsum_jaxpr_and_jit():
    a, b = arr(2, 4), arr(4, 3, seed=1)
    named = jax.make_jaxpr(lambda a, b: nx.einsum("b e, e o -> b o", nx.named(a, ("batch", "embed")),
                                                  nx.named(b, ("embed", "out"))).array)(a, b)  # fmt: skip
    assert str(named) == str(jax.make_jaxpr(jnp.dot)(a, b))
    x, w = rand((Bt, E)), rand((E, O), seed=1)
    r = jax.jit(lambda x, w: nx.einsum("{embed} -> out batch", x, w))(x, w)
    assert r.axes == (O, Bt)
    np.testing.assert_allclose(r.array, (np.asarray(x.array) @ np.asarray(w.array)).T, rtol=1e-5)


@pytest.mark.parametrize(
    ("eq", "err", "match"),
    [
        ("b e, e o", ValueError, "needs `->`"),
        ("(b e), e o -> b", ValueError, "parenthesised"),
        ("b e -> b", ValueError, "1 terms for 2 arrays"),
        ("b e x, e o -> b", ValueError, "term 0 .* labels 3 axes, array 0 has"),
        ("b e, b o -> b", ValueError, r"'b' labels both Axis\('batch', 2\) and Axis\('embed', 4\)"),
        ("b e, f o -> b", ValueError, "axis 'embed' is labelled both 'e' and 'f'"),
        ("b e, e o -> z", ValueError, "'z' on the right-hand side labels no axis"),
        ("b e, e o -> b b", ValueError, "appears twice on the right-hand side"),
        ("... b ..., e o -> b", ValueError, "may appear once per term"),
        ("{embed}, {out} -> ", ValueError, "stands for all the arrays"),
        ("{embed -> ", ValueError, "not closed"),
        ("{embed} out -> ", ValueError, "nothing may follow"),
        ("{zzz} -> ", nx.AxisNotFoundError, r"'zzz' \(left-hand side .*\) is in no array; the arrays have"),
        ("-> zzz", nx.AxisNotFoundError, r"'zzz' \(right-hand side"),
        ("{embed embed} -> ", ValueError, "named twice on the left-hand side"),
        ("b e, e o -> b; o", ValueError, "unexpected ';' on the right-hand side"),
        ("b e, e o -> {b}", ValueError, "unexpected '{' on the right-hand side"),
        ("b e, e $ -> b", ValueError, r"unexpected character '\$'"),
    ],
)
def test_einsum_errors(eq, err, match):
    x, w = rand((Bt, E)), rand((E, O), seed=1)
    with pytest.raises(err, match=match):
        nx.einsum(eq, x, w)


def test_einsum_operand_errors():
    x = rand((Bt, E))
    with pytest.raises(TypeError, match="operand 1 must be a NamedArray"):
        nx.einsum("b e, e -> b", x, np.ones(4))
    with pytest.raises(ValueError, match="axis 'embed' has size 4 in one operand and 2 in another"):
        nx.einsum("{embed} -> ", x, rand((Axis("embed", 2),)))
    with pytest.raises(TypeError, match="equation must be a str"):
        nx.einsum(3, x)


def test_dot_mapping_axis_and_repeated_calls():
    x, w = rand((Bt, E)), rand((E, O), seed=1)
    expected = np.asarray(x.array) @ np.asarray(w.array)
    for _ in range(2):  # {name: size} is unhashable: planned on every call, same result
        np.testing.assert_allclose(nx.dot(x, w, axis={"embed": 4}).array, expected, rtol=1e-5)
        np.testing.assert_allclose(nx.dot(x, w, axis=["embed"]).array, expected, rtol=1e-5)
    with pytest.raises(ValueError, match=r"Axis\('embed', 5\) given"):
        nx.dot(x, w, axis={"embed": 5})


def test_dot_mutated_axis_list_is_not_served_a_stale_plan():
    x, w = rand((Bt, E)), rand((E, O), seed=1)
    axes = ["embed"]
    assert nx.dot(x, w, axis=axes).axes == (Bt, O)
    axes.append("out")
    assert nx.dot(x, w, axis=axes).axes == (Bt,)
