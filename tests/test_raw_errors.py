"""Bad input to the core gives clear errors naming the operation, the axes and their sizes (issue 18)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx

# ---- concrete 0-d integer arrays index like ints ----


@pytest.mark.parametrize("make", [np.array, jnp.array, np.int64], ids=["numpy", "jax", "npint"])
def test_concrete_0d_index_out_of_range_raises(make):
    x = nx.named(jnp.arange(6.0).reshape(2, 3), ("batch", "embed"))
    with pytest.raises(IndexError, match=r"indexing: index 5 .*'embed' of size 3"):
        x["embed", make(5)]
    with pytest.raises(IndexError, match=r"indexing: index -4 .*'embed' of size 3"):
        x["embed", make(-4)]
    with pytest.raises(IndexError, match=r"\.at\[\]: index 2 .*'batch' of size 2"):
        x.at["batch", make(2)].set(1.0)


@pytest.mark.parametrize("make", [np.array, jnp.array], ids=["numpy", "jax"])
@pytest.mark.parametrize("i", [0, 2, -1, -3])
def test_concrete_0d_index_in_range_like_numpy(make, i):
    a = np.arange(6.0).reshape(2, 3)
    x = nx.named(jnp.asarray(a), ("batch", "embed"))
    np.testing.assert_array_equal(x["embed", make(i)].array, a[:, i])
    np.testing.assert_array_equal(x.at["embed", make(i)].set(-1.0).array, np.where(np.arange(3) == i % 3, -1.0, a))


def test_traced_index_clamps_and_drops_as_jax():
    a = np.arange(6.0).reshape(2, 3)
    x = nx.named(jnp.asarray(a), ("batch", "embed"))
    got = jax.jit(lambda x, i: x["embed", i])(x, 7)
    np.testing.assert_array_equal(got.array, a[:, 2])  # clamped
    got = jax.jit(lambda x, i: x.at["embed", i].set(-1.0))(x, 7)
    np.testing.assert_array_equal(got.array, a)  # dropped


# ---- the constructor checks its data; rebuilding from the PyTree does not ----


@pytest.mark.parametrize("data", [[0.0, 1.0], None, "ab", 3.0], ids=["list", "None", "str", "float"])
def test_constructor_refuses_non_arrays(data):
    with pytest.raises(TypeError, match=r"NamedArray: expected an array .*nx\.named"):
        nx.NamedArray(data, {"a": 2})


def test_constructor_refuses_wrong_shape():
    with pytest.raises(ValueError, match=r"NamedArray: axes .*'a', 3.* shape \(2,\)"):
        nx.NamedArray(np.zeros(2), {"a": 3})


@pytest.mark.parametrize("data", [np.array([object(), 1]), np.array(["a", "b"]), "ab"], ids=["obj", "str", "pystr"])
def test_named_refuses_object_and_string_data(data):
    with pytest.raises(TypeError, match=r"named: .*(dtype|numeric)"):
        nx.named(data, "a")
    with pytest.raises(TypeError, match="NamedArray"):
        nx.NamedArray(np.asarray(data), {"a": np.asarray(data).shape[0]} if np.ndim(data) else {})


@pytest.mark.parametrize("leaf", [None, object(), jax.ShapeDtypeStruct((2,), jnp.float32)], ids=["None", "obj", "sds"])
def test_pytree_rebuild_and_copy_never_validate(leaf):
    import copy
    import pickle

    x = nx.named(jnp.zeros(2), "a")
    y = jax.tree_util.tree_map(lambda _: leaf, x, is_leaf=lambda v: v is None)
    assert y.array is leaf and y.axes == x.axes
    if leaf is None:
        z = copy.copy(y)
        assert z.array is None and z.axes == x.axes
        assert pickle.loads(pickle.dumps(y)).axes == x.axes


def test_tracers_pass_the_constructor():
    f = jax.jit(lambda a: nx.NamedArray(a * 2, {"a": 2}).array)
    np.testing.assert_array_equal(f(jnp.ones(2)), np.full(2, 2.0))


# ---- Axis refuses bools as sizes ----


@pytest.mark.parametrize("size", [True, False, np.bool_(True)])
def test_axis_refuses_bool_size(size):
    with pytest.raises(TypeError, match=r"Axis 'a': size must be an int.*bool"):
        nx.Axis("a", size)


# ---- numpy sees the data of a NamedArray ----


def test_np_asarray_gives_the_data():
    a = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    x = nx.named(jnp.asarray(a), ("batch", "embed"))
    got = np.asarray(x)
    assert got.dtype == np.float32 and got.shape == (2, 3)
    np.testing.assert_array_equal(got, a)
    np.testing.assert_array_equal(np.asarray(x, dtype=np.float64), a.astype(np.float64))
    c = np.array(x, copy=True)
    c[0, 0] = 99.0
    assert float(x.array[0, 0]) == 0.0


# ---- reductions with no identity over a zero-size axis; plain int shapes ----


@pytest.mark.parametrize("op", ["max", "min", "nanmax", "nanmin"])
def test_extremum_over_zero_size_axis(op):
    x = nx.zeros({"batch": 2, "empty": 0})
    with pytest.raises(ValueError, match=rf"{op}: cannot reduce over the zero-size axes .*'empty', 0.*initial="):
        getattr(nx, op)(x, "empty")
    with pytest.raises(ValueError, match=rf"{op}: cannot reduce over the zero-size axes"):
        getattr(nx, op)(x)
    # over the other axis, or with initial=, as jax.numpy
    assert getattr(nx, op)(x, "batch").shape == {"empty": 0}
    got = getattr(nx, op)(x, "empty", initial=-1.0)
    np.testing.assert_array_equal(got.array, getattr(jnp, op)(jnp.zeros((2, 0)), axis=1, initial=-1.0))


@pytest.mark.parametrize("op", ["argmax", "argmin", "nanargmax", "nanargmin"])
def test_arg_over_zero_size_axis(op):
    x = nx.zeros({"batch": 2, "empty": 0})
    with pytest.raises(ValueError, match=rf"{op}: cannot reduce over the zero-size axes .*'empty', 0"):
        getattr(x, op)("empty") if hasattr(x, op) else getattr(nx, op)(x, "empty")


@pytest.mark.parametrize("op", ["zeros", "ones"])
@pytest.mark.parametrize("shape", [3, 3.0])
def test_creation_with_plain_shape(op, shape):
    with pytest.raises(TypeError, match=rf"{op}: axes must be given with names: an Axis.*got 3"):
        getattr(nx, op)(shape)
    with pytest.raises(TypeError, match=r"full: axes must be given with names"):
        nx.full(shape, 1.0)


# ---- Parameter: string bounds, None values ----


@pytest.mark.parametrize("kw", [dict(low="0"), dict(high="1.5"), dict(low=b"0")], ids=["low", "high", "bytes"])
def test_parameter_refuses_string_bounds(kw):
    from namedax.spaces import Parameter

    which = next(iter(kw))
    with pytest.raises(TypeError, match=rf"Parameter 'a': `{which}` must be a real number or None"):
        Parameter("a", 1.0, **kw)


def test_parameter_refuses_none_value():
    from namedax.spaces import Parameter

    with pytest.raises(TypeError, match=r"Parameter 'a': `value` is required"):
        Parameter("a", None)


# ---- axis names with a space or "=": only the Axis-object form of a typing spec (docs/typing.md) ----


def test_typing_spec_for_names_with_space_or_equals():
    from namedax.typing import f32

    for name in ("my axis", "a=b"):
        x = nx.named(jnp.zeros(3), (nx.Axis(name, 3),))
        assert isinstance(x, f32[nx.Axis(name, 3)])
    assert not isinstance(nx.named(jnp.zeros(3), (nx.Axis("my axis", 3),)), f32["my axis"])  # two axes
    with pytest.raises(ValueError, match=r"the size in 'a=b' must be a non-negative int"):
        f32["a=b"]


@pytest.mark.parametrize("value, low, high, shown", [(5.0, 0.0, 1.0, "5.0"), (-1, 0.0, None, "-1"),
                                                     ([0.5, 2.0], 0.0, 1.0, r"float32\[2\] from 0.5 to 2.0")])
def test_fixed_parameter_outside_its_bounds_is_refused(value, low, high, shown):
    from namedax.spaces import Parameter

    with pytest.raises(ValueError, match=rf"Parameter .a.: the value {shown} lies outside its bounds \[{low}, {high}"):
        Parameter("a", value, low=low, high=high)
    # free: a placeholder the spaces replace, not checked; fixed within bounds, unbounded, or traced: fine
    Parameter("a", value, low=low, high=high, free=True)
    Parameter("a", 0.5, low=0.0, high=1.0)
    Parameter("a", value)
    jax.jit(lambda v: Parameter("a", v, low=0.0, high=1.0).value)(jnp.float32(5.0))


# ---- vmap / pmap options ----


@pytest.mark.parametrize("transform", [nx.vmap, nx.pmap])
def test_more_arg_specs_than_positional_arguments(transform):
    A = nx.Axis("a", 1)
    with pytest.raises(ValueError, match=rf"{transform.__name__}: `args` has 2 specs, but '.*<lambda>' takes 1 "
                       r"positional argument \['u'\]; give one spec per positional argument"):
        transform(lambda u: u, A, args=(0, None))
    x = nx.named(jnp.arange(1.0), ("a",))

    def star(u, *rest):
        return u + sum(rest)

    f = transform(star, A, args=(None, None, None))  # *args: any count
    np.testing.assert_allclose(np.asarray(f(x, 1.0, 2.0).array), np.arange(1.0) + 3.0)


@pytest.mark.parametrize("devices, err, msg", [
    (lambda d: [d, d], ValueError, r"`devices` lists .* more than once"),
    (lambda d: [0], TypeError, r"`devices` must hold jax devices .*not their indices\), got 0 \(int\)"),
    (lambda d: 0, TypeError, r"`devices` must be a sequence of jax devices.*got int"),
    (lambda d: "cpu", TypeError, r"`devices` must be a sequence of jax devices.*got str"),
    (lambda d: [], ValueError, r"`devices` is empty"),
])
def test_pmap_devices_checked(devices, err, msg):
    with pytest.raises(err, match=rf"pmap: {msg}"):
        nx.pmap(lambda u: u, nx.Axis("a", 2), devices=devices(jax.devices()[0]))
    f = nx.pmap(lambda u: u * 2, nx.Axis("a", 2), devices=np.array(jax.devices()[:1]))
    out = f(nx.named(jnp.arange(2.0), ("a",)))
    np.testing.assert_allclose(np.asarray(out.array), [0.0, 2.0])
