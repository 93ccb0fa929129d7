"""nx.vmap against nested jax.vmap / numpy on the positional equivalent."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import namedax as nx
from helpers import assert_named_close, to_numpy, tree_allclose

A, B, C = nx.Axis("a", 2), nx.Axis("b", 3), nx.Axis("c", 4)
AXES = {"a": A, "b": B, "c": C}


def _x(order, seed=0):
    """A NamedArray with the given axis names, values distinct."""
    axes = tuple(AXES[n] for n in order)
    rng = np.random.default_rng(seed)
    return nx.named(jnp.asarray(rng.normal(size=[a.size for a in axes]), jnp.float32), axes)


def _canon(x, order):
    """Numpy array of ``x`` with its axes in ``order`` (absent ones as size-1 dims), for numpy broadcasting."""
    names = [a.name for a in x.axes]
    arr = to_numpy(x, [n for n in order if n in names])
    return arr.reshape([AXES[n].size if n in names else 1 for n in order])


# ---------------------------------------------------------------------------------------------
# Mapping rules
# ---------------------------------------------------------------------------------------------


def test_single_axis_wherever_it_sits():
    x = _x("bca")
    seen = []

    def f(v):
        seen.append(v.axes)
        return v * 2.0 + 1.0

    y = nx.vmap(f, A)(x)
    assert seen == [(B, C)]
    assert y.axes == (A, B, C)
    ref = jax.vmap(lambda a: a * 2.0 + 1.0, in_axes=2)(x.array)
    np.testing.assert_allclose(np.asarray(y.array), np.asarray(ref), rtol=1e-6)


def test_axis_by_name_and_mapping():
    x = _x("ab")
    for axis in ("a", {"a": 2}, [A]):
        assert_named_close(nx.vmap(lambda v: v * 3.0, axis)(x), 3.0 * to_numpy(x, "ab"), "ab")


def test_several_axes_order_is_listed_order():
    x = _x("cab")
    f = lambda v: v * v  # noqa: E731
    y = nx.vmap(f, (B, A))(x)
    assert y.axes[:2] == (B, A)
    nested = nx.vmap(nx.vmap(f, A), B)(x)
    assert nested.axes == y.axes
    np.testing.assert_allclose(np.asarray(y.array), np.asarray(nested.array))
    # positional: outer b (dim 2), then a (dim 1 of the remaining (c, a))
    ref = jax.vmap(jax.vmap(lambda a: a * a, in_axes=1), in_axes=2)(x.array)
    np.testing.assert_allclose(np.asarray(y.array), np.asarray(ref), rtol=1e-6)


def test_mapped_and_broadcast_named_arguments():
    x, w = _x("ab"), _x("b", seed=1)
    y = nx.vmap(lambda v, w: v * w, A)(x, w)  # w lacks `a`: passed whole
    ref = jax.vmap(lambda v, w: v * w, in_axes=(0, None))(x.array, w.array)
    assert y.axes == (A, B)
    np.testing.assert_allclose(np.asarray(y.array), np.asarray(ref), rtol=1e-6)


def test_plain_arrays_follow_default_and_args():
    x = _x("ab")
    p = jnp.arange(2.0)  # mapped by default along dim 0
    q = jnp.arange(3.0)  # broadcast by a literal None
    y = nx.vmap(lambda v, p, q: v * p + q.sum(), A, args=(None, 0, None))(x, p, q)
    ref = jax.vmap(lambda v, p, q: v * p + q.sum(), in_axes=(0, 0, None))(x.array, p, q)
    np.testing.assert_allclose(np.asarray(y.array), np.asarray(ref), rtol=1e-6)


def test_literal_none_in_args_broadcasts_array():
    p = jnp.arange(2.0)
    out = nx.vmap(lambda p: p * 1.0, {"a": 2}, args=(None,))(p)
    np.testing.assert_allclose(np.asarray(out), np.tile(np.arange(2.0), (2, 1)))


def test_int_spec_other_dimension():
    p = jnp.arange(6.0).reshape(3, 2)
    out = nx.vmap(lambda p: p * 2, A, default=1)(p)
    np.testing.assert_allclose(np.asarray(out), np.asarray(jax.vmap(lambda p: p * 2, in_axes=1)(p)))


def test_negative_spec():
    p = jnp.arange(6.0).reshape(3, 2)
    out = nx.vmap(lambda p: p, A, args=(-1,))(p)
    np.testing.assert_allclose(np.asarray(out), np.asarray(p.T))


def test_callable_specs():
    x = _x("ab")
    ints, floats = jnp.arange(2), jnp.ones(3)

    def spec(leaf):  # map integer arrays, broadcast the rest
        return 0 if jnp.issubdtype(leaf.dtype, jnp.integer) else None

    y = nx.vmap(lambda v, i, f: v * i + f.sum(), A, default=spec)(x, ints, floats)
    ref = jax.vmap(lambda v, i, f: v * i + f.sum(), in_axes=(0, 0, None))(x.array, ints, floats)
    np.testing.assert_allclose(np.asarray(y.array), np.asarray(ref), rtol=1e-6)
    y2 = nx.vmap(lambda v, i, f: v * i + f.sum(), A, args=(None, spec, spec))(x, ints, floats)
    np.testing.assert_allclose(np.asarray(y2.array), np.asarray(ref), rtol=1e-6)


def test_pytree_prefix_specs():
    tree = {"m": jnp.arange(2.0), "s": jnp.arange(3.0)}
    out = nx.vmap(lambda t: t["m"] + t["s"], A, args=({"m": 0, "s": None},))(tree)
    ref = jax.vmap(lambda t: t["m"] + t["s"], in_axes=({"m": 0, "s": None},))(tree)
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref))
    nested = (jnp.arange(2.0), [jnp.arange(3.0), None])
    out = nx.vmap(lambda t: t[0] + t[1][0], A, args=((0, [None, None]),))(nested)
    np.testing.assert_allclose(np.asarray(out), np.arange(2.0)[:, None] + np.arange(3.0))


def test_callable_module_spec_is_a_pytree_prefix():
    # equinox's per-field specs: the model itself with ints / None for its fields. The model is
    # callable, but as a spec it is a PyTree prefix (as in eqx.filter_vmap), never called on a leaf
    class Affine(eqx.Module):
        w: jax.Array
        b: jax.Array

        def __call__(self, v):
            return self.w @ v + self.b

    m = Affine(jnp.arange(6.0).reshape(2, 3), jnp.arange(4.0).reshape(2, 2))  # b per element of `a`
    v = jnp.arange(3.0)
    ref = jax.vmap(lambda m, v: m(v), in_axes=(Affine(None, 0), None))(m, v)  # type: ignore[arg-type]
    out = nx.vmap(lambda m, v: m(v), A, args=(Affine(None, 0), None))(m, v)  # type: ignore[arg-type]
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref))
    with pytest.raises(TypeError, match=r"spec args\[0\] must be a PyTree of ints.*got leaf 'x'"):
        nx.vmap(lambda m: m, A, args=(Affine("x", 0),))  # type: ignore[arg-type]


def test_keyword_arguments_and_kwargs_specs():
    x = _x("ab")
    p, q = jnp.arange(2.0), jnp.arange(3.0)

    def f(v, p, *, q, scale=1.0):
        return (v * p * scale).array + q

    def g(v, p, q):
        return f(v, p, q=q, scale=2.0)

    ref = jax.vmap(lambda v, p, q: v * p * 2.0 + q, in_axes=(0, 0, None))(x.array, p, q)
    y = nx.vmap(f, A, kwargs={"q": None})(x, p=p, q=q, scale=2.0)
    np.testing.assert_allclose(np.asarray(y), np.asarray(ref), rtol=1e-6)
    # a kwargs spec applies to a parameter passed positionally, an args spec to one passed by keyword
    y = nx.vmap(g, A, kwargs={"q": None})(x, p, q)
    np.testing.assert_allclose(np.asarray(y), np.asarray(ref), rtol=1e-6)
    y = nx.vmap(g, A, args=(0, 0, None))(x, p, q=q)
    np.testing.assert_allclose(np.asarray(y), np.asarray(ref), rtol=1e-6)


def test_new_axis_with_size_and_mixed():
    x = _x("b")
    y = nx.vmap(lambda v: v * 2.0, (nx.Axis("s", 5), B))(x)  # `s` is new, `b` is present
    assert y.axes == (nx.Axis("s", 5), B)
    np.testing.assert_allclose(np.asarray(y.array), np.broadcast_to(2.0 * to_numpy(x), (5, 3)), rtol=1e-6)
    y = nx.vmap(lambda v: v + 1.0, {"s": 2})(x)
    assert y.axes == (nx.Axis("s", 2), B)


def test_new_axis_size_from_plain_array():
    keys = jax.random.split(jax.random.key(0), 3)
    y = nx.vmap(lambda k: nx.named(jax.random.normal(k, (2,)), "e"), "seed")(keys)
    assert y.axes == (nx.Axis("seed", 3), nx.Axis("e", 2))
    ref = jax.vmap(lambda k: jax.random.normal(k, (2,)))(keys)
    np.testing.assert_allclose(np.asarray(y.array), np.asarray(ref))


def test_fn_without_arguments():
    y = nx.vmap(lambda: nx.ones(C) * 2.0, nx.Axis("s", 3))()
    assert y.axes == (nx.Axis("s", 3), C)
    np.testing.assert_allclose(np.asarray(y.array), np.full((3, 4), 2.0))
    out = nx.vmap(lambda: (jnp.arange(2), "tag"), {"s": 3, "t": 2})()
    assert out[0].shape == (3, 2, 2) and out[1] == "tag"
    np.testing.assert_array_equal(np.asarray(out[0]), np.broadcast_to(np.arange(2), (3, 2, 2)))


def test_outputs_named_plain_and_static():
    class Holder(eqx.Module):
        arr: jax.Array
        tag: str = eqx.field(static=True)

    x = _x("ba")
    out = nx.vmap(lambda v: (v, jnp.float32(1.0) * v["b", 0].array, 7, "s", Holder(v.array, "t")), A)(x)
    named, plain, i, s, holder = out
    assert named.axes == (A, B)
    assert plain.shape == (2,)
    np.testing.assert_allclose(np.asarray(plain), to_numpy(x, "ba")[0])
    assert i == 7 and s == "s"
    assert holder.tag == "t" and holder.arr.shape == (2, 3)
    np.testing.assert_allclose(np.asarray(holder.arr), to_numpy(x, "ab"))


def test_unbatched_outputs_are_broadcast():
    x = _x("a")
    y = nx.vmap(lambda v: nx.ones(B), A)(x)
    assert y.axes == (A, B)
    np.testing.assert_allclose(np.asarray(y.array), np.ones((2, 3)))


def test_decorator_form():
    @nx.vmap(axis=A)
    def double(v):
        """Double it."""
        return v * 2.0

    x = _x("ca")
    assert_named_close(double(x), 2.0 * to_numpy(x, "ac"), "ac")
    assert double.__name__ == "double" and double.__doc__ == "Double it."
    assert double.__wrapped__.__name__ == "double"


def test_method_and_jit():
    class Model(eqx.Module):
        w: nx.NamedArray

        @nx.vmap(axis=A)
        def apply(self, v):
            return self.w * v

    w, x = _x("c", seed=2), _x("ac")
    model = Model(w)
    ref = to_numpy(w)[None, :] * to_numpy(x, "ac")
    assert_named_close(model.apply(x), ref, "ac")
    assert_named_close(eqx.filter_jit(model.apply)(x), ref, "ac")
    assert_named_close(jax.jit(nx.vmap(lambda v: v * 2.0, A))(x), 2.0 * to_numpy(x, "ac"), "ac")
    # the wrapper is a PyTree: it passes through filter_jit as an argument
    f = nx.vmap(lambda v: v + 1.0, A)
    assert_named_close(eqx.filter_jit(lambda g, v: g(v))(f, x), to_numpy(x, "ac") + 1.0, "ac")


def test_rebuilt_vmap_hits_jit_cache():
    traces = []

    def body(v):
        traces.append(1)
        return v * 2.0

    run = eqx.filter_jit(lambda g, v: g(v))
    x = _x("ab")
    for _ in range(3):
        run(nx.vmap(body, A), x)  # a fresh but equal wrapper each time
    assert len(traces) == 1


def test_equinox_if_array_spec():
    p = jnp.arange(6.0).reshape(3, 2)
    out = nx.vmap(lambda p, s: p * s, A, default=eqx.if_array(1))(p, 2.0)
    np.testing.assert_allclose(np.asarray(out), 2.0 * np.asarray(p).T)


def test_traced_once():
    calls = []

    def f(v):
        calls.append(1)
        return v * 2.0

    jax.make_jaxpr(nx.vmap(f, (A, B, C)))(_x("abc"))
    assert len(calls) == 1


# ---------------------------------------------------------------------------------------------
# Same jaxpr as hand-written jax.vmap
# ---------------------------------------------------------------------------------------------


def test_jaxpr_single_axis():
    x = _x("bca")
    f = lambda v: v * 2.0 + 1.0  # noqa: E731
    got = jax.make_jaxpr(jax.jit(nx.vmap(f, A)))(x)
    ref = jax.make_jaxpr(jax.jit(jax.vmap(f, in_axes=2)))(x.array)
    assert str(got) == str(ref)


def test_jaxpr_nested_with_broadcast_and_plain():
    x, w = _x("cab"), _x("c", seed=1)
    p = jnp.arange(6.0).reshape(3, 2)  # a plain spec applies at every level: p is mapped over b, then a

    def f(v, w, p):
        return v * w + p

    def g(v, w, p):  # the positional version: v (c,) w (c,) p ()
        return v * w + p

    got = jax.make_jaxpr(nx.vmap(f, (B, A), args=(0, None, 0)))(x, w, p)
    ref_fn = jax.vmap(jax.vmap(g, in_axes=(1, None, 0)), in_axes=(2, None, 0))
    ref = jax.make_jaxpr(ref_fn)(x.array, w.array, p)
    assert str(got) == str(ref)


def test_jaxpr_new_axis():
    x = _x("b")
    got = jax.make_jaxpr(nx.vmap(lambda v: v * 2.0, nx.Axis("s", 5)))(x)
    ref = jax.make_jaxpr(jax.vmap(lambda v: v * 2.0, in_axes=None, axis_size=5))(x.array)
    assert str(got) == str(ref)


# ---------------------------------------------------------------------------------------------
# Properties: random axis orders, random mixes of mapped and broadcast arguments
# ---------------------------------------------------------------------------------------------


@st.composite
def _case(draw):
    x_order = "".join(draw(st.permutations("abc")))
    k = draw(st.integers(1, 3))
    mapped = draw(st.permutations("abc"))[:k]
    w_names = draw(st.sampled_from(["", "a", "c", "ab", "bc", "ca", "cab"]))
    plain = draw(st.booleans())
    return x_order, tuple(mapped), w_names, plain


@settings(max_examples=40)
@given(_case())
def test_property_random_orders_and_mixes(case):
    x_order, mapped, w_names, plain = case
    x = _x(x_order)
    w = _x(w_names, seed=1) if w_names else nx.named(jnp.asarray(0.5), ())
    p_shape = tuple(AXES[n].size for n in mapped)  # a plain arg mapped at every level, by default
    p = jnp.arange(np.prod(p_shape), dtype=jnp.float32).reshape(p_shape)
    seen = []

    def f(v, w, p):
        seen.append((v.axes, w.axes, getattr(p, "shape", None)))
        return v * 2.0 + w * p

    args = (x, w, p) if plain else (x, w, 1.5)
    y = nx.vmap(f, tuple(AXES[n] for n in mapped))(*args)
    # the mapped axes come first, in the listed order, then the others as f left them
    assert tuple(a.name for a in y.axes[: len(mapped)]) == mapped
    # inside f: neither argument holds a mapped axis, a plain arg has lost one dimension per level
    v_axes, w_axes, p_seen = seen[0]
    assert not {a.name for a in v_axes + w_axes} & set(mapped)
    if plain:
        assert p_seen == ()
    order = "abc"
    if plain:  # p is laid out in the listed order of the mapped axes: move it to abc order
        perm = [mapped.index(n) for n in sorted(mapped, key=order.index)]
        p_full = np.transpose(np.asarray(p), perm).reshape([AXES[n].size if n in mapped else 1 for n in order])
    else:
        p_full = np.asarray(1.5)
    ref = 2.0 * _canon(x, order) + _canon(w, order) * p_full
    assert_named_close(y, np.broadcast_to(ref, [a.size for a in (A, B, C)]), order)


@settings(max_examples=12)
@given(st.permutations("abc"), st.permutations("abc"))
def test_property_nested_equals_multi(x_order, mapped):
    x = _x("".join(x_order))
    f = lambda v: v * 3.0 - 1.0  # noqa: E731
    a0, a1 = AXES[mapped[0]], AXES[mapped[1]]
    multi = nx.vmap(f, (a0, a1))(x)
    nested = nx.vmap(nx.vmap(f, a1), a0)(x)
    assert multi.axes == nested.axes
    np.testing.assert_allclose(np.asarray(multi.array), np.asarray(nested.array))


# ---------------------------------------------------------------------------------------------


def test_several_axes_callable_specs_act_per_level_as_nested_vmaps():
    # vmap(f, (A, B)) == vmap(vmap(f, B), A): the inner level's spec sees the leaf without the
    # dimension the outer level mapped. A plain array holding only `a` (per-seed values, plain split
    # keys) is mapped over `a` and broadcast over `b`, by the default spec and by a callable one.
    x = _x("ab")
    p = jnp.arange(2.0) * 10.0
    keys = jax.random.split(jax.random.key(0), 2)

    def pos(v, p, k):
        return v + p + jax.random.normal(k, ())

    ref = jax.vmap(jax.vmap(pos, in_axes=(0, None, None)))(to_numpy(x, "ab"), p, keys)
    f = lambda v, p, k: v + p + nx.random.normal(k, ())  # noqa: E731
    assert_named_close(nx.vmap(f, (A, B))(x, p, keys), ref, "ab")
    by_rank = lambda leaf: 0 if leaf.ndim >= 1 else None  # noqa: E731  (a user callable, keys included)
    assert_named_close(nx.vmap(f, (A, B), default=by_rank)(x, p, keys), ref, "ab")
    q = jnp.arange(6.0).reshape(2, 3)
    matrices = lambda leaf: 0 if leaf.ndim == 2 else None  # noqa: E731
    y = nx.vmap(lambda v, q: v + q.sum(), (A, B), default=matrices)(x, q)
    ref = jax.vmap(jax.vmap(lambda v, q: v + q.sum(), in_axes=(0, None)))(to_numpy(x, "ab"), q)
    assert_named_close(y, ref, "ab")
    nested = nx.vmap(nx.vmap(lambda v, q: v + q.sum(), B, default=matrices), A, default=matrices)
    assert_named_close(nested(x, q), ref, "ab")

# Collectives by name inside vmap
# ---------------------------------------------------------------------------------------------


def test_raw_jax_collective_by_axis_name():
    x = _x("ab")
    y = nx.vmap(lambda v: nx.NamedArray(jax.lax.psum(v.array, "a"), v.axes), A)(x)
    np.testing.assert_allclose(to_numpy(y, "ab"), np.broadcast_to(to_numpy(x, "ab").sum(0), (2, 3)), rtol=1e-6)


def test_nested_vmap_with_collectives_by_name():
    x = _x("abc")
    xn = to_numpy(x, "abc")

    def inner(v):  # v: (c,)
        s_a = nx.psum(v, A)
        m_ab = nx.pmean(v, (A, B))
        idx = nx.axis_index(B)
        return s_a, m_ab, v * 0 + idx

    s_a, m_ab, idx = nx.vmap(nx.vmap(inner, B), A)(x)
    assert s_a.axes == (A, B, C)
    np.testing.assert_allclose(to_numpy(s_a, "abc"), np.broadcast_to(xn.sum(0), xn.shape), rtol=1e-5)
    np.testing.assert_allclose(to_numpy(m_ab, "abc"), np.broadcast_to(xn.mean((0, 1)), xn.shape), rtol=1e-5)
    np.testing.assert_allclose(to_numpy(idx, "abc"), np.broadcast_to(np.arange(3)[None, :, None], xn.shape))


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_error_unknown_size():
    with pytest.raises(ValueError, match=r"no argument has axis 'seed'.*Axis\('seed', size\)"):
        nx.vmap(lambda: nx.ones(C), "seed")()
    with pytest.raises(ValueError, match="no argument has axis 'a'"):
        nx.vmap(lambda v: v, "a")(_x("bc"))


def test_error_given_size_disagrees():
    with pytest.raises(ValueError, match=r"axis 'a' has size 2 in argument 'v'.*size 5 in the given Axis\('a', 5\)"):
        nx.vmap(lambda v: v, nx.Axis("a", 5))(_x("ab"))


def test_error_inputs_disagree():
    other = nx.zeros({"a": 7})
    with pytest.raises(ValueError, match=r"axis 'a' has size 7 in argument 'w'.*but size 2 in argument 'v'"):
        nx.vmap(lambda v, w: v, "a")(_x("ab"), other)


def test_error_plain_array_wrong_size_names_path():
    with pytest.raises(ValueError, match=r"axis 'a' has size 5 in argument \"p\['w'\]\" \(shape \(5,\)\).*size 2"):
        nx.vmap(lambda v, p: v, A)(_x("ab"), {"w": jnp.ones(5)})
    with pytest.raises(ValueError, match=r"argument 'p' of shape \(5,\) has no dimension 3"):
        nx.vmap(lambda v, p: v, A, args=(None, 3))(_x("ab"), jnp.ones(5))
    with pytest.raises(ValueError, match=r"argument 'p\[1\]' of shape \(\) has no dimension 0"):
        nx.vmap(lambda v, p: v, A, args=(0, [None, 0]))(_x("ab"), [1.0, jnp.ones(())])


def test_default_broadcasts_zero_d_arrays():
    # a 0-d array has no dimension to map: the default spec passes it whole to every element
    x = _x("ab")
    out = nx.vmap(lambda v, s: v * s, A)(x, jnp.asarray(3.0))
    expected = 3.0 * np.asarray(nx.rearrange(x, ("a", "b")).array)
    np.testing.assert_allclose(np.asarray(nx.rearrange(out, ("a", "b")).array), expected)


def test_error_spec_maps_non_array():
    with pytest.raises(ValueError, match=r"argument 'p' is a str, not an array.*spec None"):
        nx.vmap(lambda v, p: v, A, args=(0, 0))(_x("ab"), "hello")


def test_error_bad_specs():
    with pytest.raises(TypeError, match=r"spec args\[0\] must be"):
        nx.vmap(lambda v: v, A, args=("x",))
    with pytest.raises(TypeError, match="must be an int, None or a callable"):
        nx.vmap(lambda v: v, A, default=True)
    with pytest.raises(TypeError, match="must return an int or None"):
        nx.vmap(lambda v, p: v, A, default=lambda leaf: "no")(_x("ab"), jnp.ones(2))
    with pytest.raises(ValueError, match=r"not a PyTree prefix"):
        nx.vmap(lambda v, p: v, A, args=(None, {"k": 0}))(_x("ab"), {"j": jnp.ones(2)})
    with pytest.raises(ValueError, match=r"`kwargs` has specs for \['q'\]"):
        nx.vmap(lambda v, p: v, A, kwargs={"q": None})
    with pytest.raises(TypeError, match="`args` must be a tuple"):
        nx.vmap(lambda v: v, A, args=0)


def test_error_bad_axis_and_fn():
    with pytest.raises(TypeError, match=r"`fn` must be callable.*@nx.vmap\(axis=...\)"):
        nx.vmap(A)
    with pytest.raises(ValueError, match=r"\['a'\] listed twice"):
        nx.vmap(lambda v: v, (A, "a"))
    with pytest.raises(ValueError, match="no axis given"):
        nx.vmap(lambda v: v, ())
    with pytest.raises(TypeError, match="`axis` is required"):
        nx.vmap(lambda v: v)
    with pytest.raises(TypeError, match="vmap: an axis selector is an Axis or a str, got int: 3 .*by name, not by pos"):
        nx.vmap(lambda v: v, 3)
    with pytest.raises(TypeError, match="vmap: expected an axis, an axis name, .* got float: 3.0"):
        nx.vmap(lambda v: v, 3.0)


def test_error_output_already_has_mapped_axis():
    with pytest.raises(ValueError, match=r"returned a NamedArray with axes \(Axis\('a', 2\),\).*rename"):
        nx.vmap(lambda v: nx.zeros(A), A)(_x("ab"))


def test_wrapper_tree_roundtrip():
    f = nx.vmap(lambda v: v * 2.0, A)
    leaves, treedef = jax.tree.flatten(f)
    g = jax.tree.unflatten(treedef, leaves)
    x = _x("ab")
    tree_allclose(f(x), g(x))
    assert len(leaves) == 1 and callable(leaves[0])  # the function is the only child


def test_eager_calls_reuse_the_trace():
    # issue 14: 3 eager calls of the same function, 1 trace; another shape traces again
    traces = []

    def f(v):
        traces.append(1)
        return v * 2.0

    x = nx.named(jnp.arange(6.0).reshape(2, 3), ("a", "e"))
    for k in range(3):
        y = nx.vmap(f, "a")(x + k)
        np.testing.assert_allclose(np.asarray(y.array), (np.arange(6.0).reshape(2, 3) + k) * 2.0)
    assert len(traces) == 1
    nx.vmap(f, "a")(nx.named(jnp.ones((4, 3)), ("a", "e")))
    assert len(traces) == 2


def test_namedax_frames_are_hidden_from_jax_tracebacks():
    # issue 14 item 8: namedax's package directory is excluded from JAX's filtered tracebacks
    import os
    import traceback

    from jax._src import traceback_util

    root = os.path.dirname(nx.__file__)
    assert any(os.path.abspath(p) == os.path.abspath(root) for p in traceback_util._exclude_paths)

    def boom(v):
        raise RuntimeError("user error")

    x = nx.named(jnp.ones((2, 3)), ("a", "e"))
    with pytest.raises(RuntimeError, match="user error") as info:
        jax.jit(nx.vmap(boom, "a"))(x)
    files = [f.filename for f in traceback.extract_tb(info.value.__traceback__)]
    assert any(f == __file__ for f in files)
    assert not [f for f in files if os.path.abspath(f).startswith(os.path.abspath(root) + os.sep)], files


def test_numpy_and_none_outputs_as_jax_vmap():
    # the levels hand every array leaf of the output (numpy ones too) to jax.vmap, which broadcasts
    # the unbatched ones; None and other non-arrays pass through
    x = _x("ab")

    def f(v):
        return np.ones(2), np.float32(3.0), None, (v * 2, jnp.int32(4))

    out = nx.vmap(lambda v: f(v.array), (A, B))(x)
    ref = jax.vmap(jax.vmap(f))(x.array)
    assert jax.tree.structure(out) == jax.tree.structure(ref)
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(ref), strict=True):
        assert isinstance(a, jax.Array) and a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
