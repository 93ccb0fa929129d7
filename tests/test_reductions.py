"""Reductions and scans: every function against numpy / jax.numpy on the positional equivalent."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import namedax as nx
from helpers import to_numpy

# Sizes are fixed per name so that random axis orders reuse a small set of compiled signatures.
SIZES = {"a": 2, "b": 3, "c": 4}
NAMES = tuple(SIZES)


def _np_logsumexp(a, axis=None, where=None):
    return np.log(np.sum(np.exp(a), axis=axis, where=True if where is None else where))


def _np_cum(ufunc):
    def f(a, axis, reverse=False):
        if reverse:
            return np.flip(ufunc.accumulate(np.flip(a, axis), axis=axis), axis)
        return ufunc.accumulate(a, axis=axis)

    return f


def _np_sort(a, axis, descending=False, stable=True):
    out = np.sort(a, axis=axis, kind="stable")
    return np.flip(out, axis) if descending else out


def _np_argsort(a, axis, descending=False, stable=True):
    # Test data has no ties, so the descending order is the ascending one reversed.
    out = np.argsort(a, axis=axis, kind="stable")
    return np.flip(out, axis) if descending else out


# name -> (jax reference, numpy reference or None (use jax), family, data kind).
# family: "dtype" | "extremum" | "moment" | "masked" (where, no options) | "arg" | "cum" | "cumext" | "sort"
TABLE = {
    "sum": (jnp.sum, np.sum, "dtype", "real"),
    "mean": (jnp.mean, np.mean, "dtype", "real"),
    "prod": (jnp.prod, np.prod, "dtype", "real"),
    "nansum": (jnp.nansum, np.nansum, "dtype", "nan"),
    "nanmean": (jnp.nanmean, np.nanmean, "dtype", "nan"),
    "nanprod": (jnp.nanprod, np.nanprod, "dtype", "nan"),
    "max": (jnp.max, np.max, "extremum", "real"),
    "min": (jnp.min, np.min, "extremum", "real"),
    "nanmax": (jnp.nanmax, np.nanmax, "extremum", "nan"),
    "nanmin": (jnp.nanmin, np.nanmin, "extremum", "nan"),
    "std": (jnp.std, np.std, "moment", "real"),
    "var": (jnp.var, np.var, "moment", "real"),
    "nanstd": (jnp.nanstd, np.nanstd, "moment", "nan"),
    "nanvar": (jnp.nanvar, np.nanvar, "moment", "nan"),
    "any": (jnp.any, np.any, "masked", "bool"),
    "all": (jnp.all, np.all, "masked", "bool"),
    "logsumexp": (jax.nn.logsumexp, _np_logsumexp, "masked", "real"),
    "argmax": (jnp.argmax, np.argmax, "arg", "real"),
    "argmin": (jnp.argmin, np.argmin, "arg", "real"),
    "nanargmax": (jnp.nanargmax, None, "arg", "nan"),  # numpy raises on all-NaN slices, jax gives -1
    "nanargmin": (jnp.nanargmin, None, "arg", "nan"),
    "cumsum": (jnp.cumsum, np.cumsum, "cum", "real"),
    "cumprod": (jnp.cumprod, np.cumprod, "cum", "real"),
    "cummax": (jax.lax.cummax, _np_cum(np.maximum), "cumext", "real"),
    "cummin": (jax.lax.cummin, _np_cum(np.minimum), "cumext", "real"),
    "sort": (jnp.sort, _np_sort, "sort", "real"),
    "argsort": (jnp.argsort, _np_argsort, "sort", "real"),
}
WHERE_FAMILIES = ("dtype", "extremum", "moment", "masked")
INITIAL = {"max": -5.0, "nanmax": -5.0, "min": 5.0, "nanmin": 5.0}


def make(kind, shape, rng):
    x = rng.normal(size=shape).astype(np.float32)
    if kind == "nan":
        return np.where(rng.random(shape) < 0.25, np.nan, x).astype(np.float32)
    if kind == "bool":
        return x > 0
    return x


def reference(name, arr, positions, where=None, **kw):
    """``name`` applied to the positional array: numpy values (jax's where numpy differs), jax's dtype."""
    jfn, npfn, _, _ = TABLE[name]
    if where is not None:
        kw["where"] = where
    kw["axis"] = positions
    dtype = jax.eval_shape(lambda a: jfn(a, **kw), arr).dtype
    if npfn is None:
        return np.asarray(jfn(jnp.asarray(arr), **kw))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy warns on empty / all-NaN slices
        return np.asarray(npfn(arr, **kw)).astype(dtype)


def check(result, ref, order):
    """``result`` has exactly the axes ``order`` (in that order), ``ref``'s dtype and its values."""
    ref = np.asarray(ref)
    assert isinstance(result, nx.NamedArray), type(result)
    assert tuple(a.name for a in result.axes) == tuple(order), (result.axes, order)
    assert result.dtype == ref.dtype, (result.dtype, ref.dtype)
    got = to_numpy(result)
    if np.issubdtype(ref.dtype, np.inexact):
        np.testing.assert_allclose(got, ref, rtol=2e-5, atol=2e-6)
    else:
        np.testing.assert_array_equal(got, ref)


def lay_out(arr, names, order):
    """A positional array over ``names`` transposed and reshaped (size 1 where missing) to ``order``."""
    present = [n for n in order if n in names]
    arr = np.transpose(arr, [list(names).index(n) for n in present])
    return arr.reshape([SIZES[n] if n in names else 1 for n in order])


def named(arr, names):
    return nx.named(jnp.asarray(arr), tuple(names))


def options(name, where):
    family = TABLE[name][2]
    if family == "extremum" and where is not None:
        return {"initial": INITIAL[name]}
    return {}


def test_table_covers_the_module():
    for name in TABLE:
        assert callable(getattr(nx, name)), name
        assert getattr(nx, name).__doc__, name


# ---------------------------------------------------------------------------------------------
# Every function against its reference
# ---------------------------------------------------------------------------------------------

X_NAMES = ("b", "a", "c")  # a layout unlike the alphabetical order


@pytest.mark.parametrize("name", [n for n, v in TABLE.items() if v[2] not in ("arg", "cum", "cumext", "sort")])
def test_reduction_matches_reference(name, rng):
    arr = make(TABLE[name][3], (3, 2, 4), rng)
    x = named(arr, X_NAMES)
    for sel, positions in [
        ("a", (1,)),
        (("c", "b"), (2, 0)),
        ([nx.Axis("b", 3)], (0,)),
        ({"a": 2, "c": 4}, (1, 2)),
        ((), ()),
    ]:
        kept = tuple(n for i, n in enumerate(X_NAMES) if i not in positions)
        check(getattr(nx, name)(x, sel), reference(name, arr, positions), kept)
    whole = getattr(nx, name)(x)
    check(whole, reference(name, arr, None), ())
    assert float(whole) == pytest.approx(float(reference(name, arr, None)), nan_ok=True, rel=1e-5)


@pytest.mark.parametrize("name", [n for n, v in TABLE.items() if v[2] in WHERE_FAMILIES])
def test_where_mask_broadcast_by_name(name, rng):
    arr = make(TABLE[name][3], (3, 2, 4), rng)
    mask = rng.random((4, 3)) < 0.7
    mask[0, :] = True  # every slice over "a" keeps elements
    x, m = named(arr, X_NAMES), named(mask, ("c", "b"))
    laid = lay_out(mask, ("c", "b"), X_NAMES)
    kw = options(name, m)
    check(getattr(nx, name)(x, "a", where=m, **kw), reference(name, arr, (1,), where=laid, **kw), ("b", "c"))
    check(getattr(nx, name)(x, where=m, **kw), reference(name, arr, None, where=laid, **kw), ())


def test_options(rng):
    arr = make("real", (3, 2, 4), rng)
    ints = rng.integers(-5, 6, size=(3, 2, 4)).astype(np.int32)
    x, xi = named(arr, X_NAMES), named(ints, X_NAMES)
    check(nx.sum(xi, "a", dtype=jnp.float32), np.sum(ints, axis=1, dtype=np.float32), ("b", "c"))
    check(nx.sum(xi, "a"), jnp.sum(ints, axis=1), ("b", "c"))
    check(nx.mean(xi, ("a", "c")), jnp.mean(ints, axis=(1, 2)), ("b",))
    check(nx.prod(xi, "a", dtype=jnp.int8), jnp.prod(ints, axis=1, dtype=jnp.int8), ("b", "c"))
    check(nx.std(x, "c", ddof=1), reference("std", arr, (2,), ddof=1), ("b", "a"))
    check(nx.var(x, ("c", "b"), ddof=2), reference("var", arr, (2, 0), ddof=2), ("a",))
    mask = np.ones((3, 4), bool)
    mask[0, 1] = False
    laid = lay_out(mask, ("b", "c"), X_NAMES)
    got = nx.nanvar(x, "c", ddof=1, where=named(mask, ("b", "c")))
    check(got, reference("nanvar", arr, (2,), where=laid, ddof=1), ("b", "a"))
    check(nx.max(x, "a", initial=10.0), np.max(arr, axis=1, initial=10.0), ("b", "c"))
    check(nx.min(x, initial=-10.0), np.min(arr, initial=-10.0), ())


@pytest.mark.parametrize("name", ["argmax", "argmin", "nanargmax", "nanargmin"])
def test_arg_reductions(name, rng):
    arr = make(TABLE[name][3], (3, 2, 4), rng)
    x = named(arr, X_NAMES)
    for sel, pos in [("a", 1), (nx.Axis("c", 4), 2), (("b",), 0)]:
        kept = tuple(n for i, n in enumerate(X_NAMES) if i != pos)
        check(getattr(nx, name)(x, sel), reference(name, arr, pos), kept)
    # axis=None: the index into x flattened in the order of x.axes.
    check(getattr(nx, name)(x), reference(name, arr, None), ())
    with pytest.raises(ValueError, match=rf"{name} works along one axis, got 2"):
        getattr(nx, name)(x, ("a", "b"))


@pytest.mark.parametrize(
    "name, kw",
    [("cumsum", {}), ("cumsum", {"dtype": jnp.float16}), ("cumprod", {}), ("cummax", {}),
     ("cummax", {"reverse": True}), ("cummin", {}), ("cummin", {"reverse": True}), ("sort", {}),
     ("sort", {"descending": True}), ("argsort", {}), ("argsort", {"descending": True})],
)  # fmt: skip
def test_along_one_axis(name, kw, rng):
    arr = make("real", (3, 2, 4), rng)
    x = named(arr, X_NAMES)
    for sel, pos in [("a", 1), ("c", 2), (nx.Axis("b", 3), 0)]:
        check(getattr(nx, name)(x, sel, **kw), reference(name, arr, pos, **kw), X_NAMES)
    with pytest.raises(ValueError, match=rf"{name} works along one axis, got 2"):
        getattr(nx, name)(x, ("a", "c"))
    with pytest.raises(TypeError, match=rf"{name}: `axis` must name one axis of"):
        getattr(nx, name)(x, None)


def test_methods(rng):
    arr = make("real", (3, 2, 4), rng)
    x = named(arr, X_NAMES)
    for name in ["sum", "mean", "prod", "max", "min", "std", "var", "argmax", "argmin"]:
        check(getattr(x, name)("c"), reference(name, arr, (2,) if TABLE[name][2] != "arg" else 2), ("b", "a"))
    for name in ["cumsum", "cumprod", "sort", "argsort"]:
        check(getattr(x, name)("a"), reference(name, arr, 1), X_NAMES)
    b = named(arr > 0, X_NAMES)
    check(b.any(("a", "b")), np.any(arr > 0, axis=(1, 0)), ("c",))
    check(b.all(), np.all(arr > 0), ())
    check(x.std("b", ddof=1), reference("std", arr, (0,), ddof=1), ("a", "c"))


def test_scalar_results_are_0d():
    x = nx.named(jnp.arange(6.0).reshape(2, 3), ("a", "b"))
    s = nx.sum(x)
    assert isinstance(s, nx.NamedArray) and s.axes == () and s.array.shape == ()
    assert float(s) == 15.0
    assert int(nx.argmax(x)) == 5
    assert nx.sum(3.0).axes == ()  # a scalar operand is 0-d


# ---------------------------------------------------------------------------------------------
# Property tests
# ---------------------------------------------------------------------------------------------


@st.composite
def reduction_case(draw):
    name = draw(st.sampled_from(sorted(TABLE)))
    family = TABLE[name][2]
    min_size = 1 if family in ("cum", "cumext", "sort") else 0
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=min_size, max_size=3))
    as_axis = draw(st.booleans())

    def sel(n):
        return nx.Axis(n, SIZES[n]) if as_axis else n

    if family in ("arg", "cum", "cumext", "sort"):
        choices = [sel(n) for n in names]
        axis = draw(st.sampled_from(choices if family != "arg" else [None, *choices]))
    elif draw(st.integers(0, 4)) == 0:
        axis = None
    else:
        picked = draw(st.lists(st.sampled_from(names), unique=True)) if names else []
        axis = [sel(n) for n in picked]
        axis = tuple(axis) if draw(st.booleans()) else axis  # lists take the unhashable path
        if len(axis) == 1 and draw(st.booleans()):
            axis = axis[0]
    where = None
    if family in WHERE_FAMILIES and draw(st.booleans()):
        where = draw(st.permutations(names).flatmap(lambda p: st.integers(0, len(p)).map(lambda k: p[:k])))
    kw = {}
    if family == "moment" and where is None:
        kw["ddof"] = draw(st.sampled_from([0, 1]))
    if family == "cumext":
        kw["reverse"] = draw(st.booleans())
    if family == "sort":
        kw["descending"] = draw(st.booleans())
    return name, names, axis, where, kw, draw(st.integers(0, 2**16))


@settings(max_examples=250)
@given(reduction_case())
def test_reduction_property(case):
    name, names, axis, where_names, kw, seed = case
    rng = np.random.default_rng(seed)
    family = TABLE[name][2]
    arr = make(TABLE[name][3], tuple(SIZES[n] for n in names), rng)
    x = named(arr, names)
    if axis is None:
        positions, kept = None, () if family not in ("cum", "cumext", "sort") else tuple(names)
    else:
        sels = [axis] if isinstance(axis, str | nx.Axis) else list(axis)
        idx = [names.index(nx.axis_name(s)) for s in sels]
        positions = idx[0] if family in ("arg", "cum", "cumext", "sort") else tuple(idx)
        removed = {nx.axis_name(s) for s in sels}
        kept = tuple(names) if family in ("cum", "cumext", "sort") else tuple(n for n in names if n not in removed)
    where = laid = None
    if where_names is not None:
        mask = rng.random(tuple(SIZES[n] for n in where_names)) < 0.7
        where, laid = named(mask, where_names), lay_out(mask, where_names, names)
        kw.update(options(name, where))
    got = getattr(nx, name)(x, axis, where=where, **kw) if where is not None else getattr(nx, name)(x, axis, **kw)
    check(got, reference(name, arr, positions, where=laid, **kw), kept)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_errors():
    x = nx.zeros({"a": 2, "b": 3})
    with pytest.raises(nx.AxisNotFoundError, match=r"sum: no axis 'z' in \(Axis\('a', 2\), Axis\('b', 3\)\)"):
        nx.sum(x, "z")
    with pytest.raises(KeyError, match=r"argmax: no axis 'z'"):
        nx.argmax(x, "z")
    with pytest.raises(ValueError, match=r"cumsum: no axis 'z'"):
        nx.cumsum(x, "z")
    with pytest.raises(ValueError, match=r"mean: axis 'a' has size 2, but Axis\('a', 5\) was given"):
        nx.mean(x, nx.Axis("a", 5))
    with pytest.raises(ValueError, match=r"sum: an axis is selected twice in \('a', 'a'\)"):
        nx.sum(x, ("a", "a"))
    for call in (lambda: nx.sum(x, 3), lambda: nx.sum(x, (0, 1)), lambda: x.sum([1])):
        with pytest.raises(TypeError, match=r"^sum: an axis selector .* got int: \d \(namedax selects axes by name"):
            call()
    with pytest.raises(TypeError, match=r"^argmax: an axis selector .* not by position"):
        nx.argmax(x, 0)
    with pytest.raises(TypeError, match=r"^cumsum: an axis selector .* not by position"):
        nx.cumsum(x, 1)
    with pytest.raises(TypeError, match=r"std: cannot combine a NamedArray with a plain array of shape \(2, 3\)"):
        nx.std(jnp.zeros((2, 3)), "a")


def test_where_errors():
    x = nx.zeros({"a": 2, "b": 3})
    with pytest.raises(ValueError, match=r"sum: the `where` mask has axis 'z', which the array \(axes .*\) lacks"):
        nx.sum(x, "a", where=nx.ones({"z": 2}, dtype=bool))
    with pytest.raises(ValueError, match=r"mean: axis 'b' has size 3 in the array and 4 in the `where` mask"):
        nx.mean(x, where=nx.ones({"b": 4}, dtype=bool))
    with pytest.raises(TypeError, match=r"sum: `where` must be a boolean NamedArray, got dtype float32"):
        nx.sum(x, where=nx.ones({"b": 3}))
    with pytest.raises(TypeError, match=r"any \(where\): cannot combine a NamedArray with a plain array"):
        nx.any(x > 0, where=jnp.ones(3, bool))
    with pytest.raises(ValueError, match=r"max: a `where` mask needs `initial=`"):
        nx.max(x, "a", where=nx.ones({"a": 2}, dtype=bool))
    with pytest.raises(TypeError, match=r"max: options must be static, hashable Python values"):
        nx.max(x, "a", initial=jnp.array(0.0))


# ---------------------------------------------------------------------------------------------
# Transformations
# ---------------------------------------------------------------------------------------------


def _jaxpr(f, *args):
    return str(jax.make_jaxpr(f)(*args))


def test_jaxpr_equals_positional_same_order():
    a = jnp.ones((2, 3))
    assert _jaxpr(lambda a: nx.sum(nx.named(a, ("x", "y")), "y").array, a) == _jaxpr(lambda a: jnp.sum(a, axis=1), a)
    assert _jaxpr(lambda a: nx.std(nx.named(a, ("x", "y")), ("y", "x"), ddof=1).array, a) == _jaxpr(
        lambda a: jnp.std(a, axis=(1, 0), ddof=1), a
    )
    assert _jaxpr(lambda a: nx.argmax(nx.named(a, ("x", "y")), "x").array, a) == _jaxpr(
        lambda a: jnp.argmax(a, axis=0), a
    )
    assert _jaxpr(lambda a: nx.cumsum(nx.named(a, ("x", "y")), "y").array, a) == _jaxpr(
        lambda a: jnp.cumsum(a, axis=1), a
    )
    m = jnp.ones((2, 3), bool)
    assert _jaxpr(lambda a, m: nx.mean(nx.named(a, ("x", "y")), "x", where=nx.named(m, ("x", "y"))).array, a, m) == (
        _jaxpr(lambda a, m: jnp.mean(a, axis=0, where=m), a, m)
    )


def test_jaxpr_equals_positional_transposed():
    a, m = jnp.ones((2, 3)), jnp.ones((3, 2), bool)

    def named_fn(a, m):
        return nx.sum(nx.named(a, ("x", "y")), "y", where=nx.named(m, ("y", "x"))).array

    def positional(a, m):
        return jnp.sum(a, axis=1, where=jnp.transpose(m))

    assert _jaxpr(named_fn, a, m) == _jaxpr(positional, a, m)

    def named_reduce_binary(a, b):
        return nx.sum(nx.multiply(nx.named(a, ("x", "y")), nx.named(b, ("y", "x"))), "x").array

    def positional_reduce_binary(a, b):
        return jnp.sum(jnp.multiply(a, jnp.transpose(b)), axis=0)

    b = jnp.ones((3, 2))
    assert _jaxpr(named_reduce_binary, a, b) == _jaxpr(positional_reduce_binary, a, b)


def test_jit_grad_vmap(rng):
    arr = rng.normal(size=(2, 3)).astype(np.float32)
    x = named(arr, ("a", "b"))

    out = jax.jit(lambda x: nx.std(x, "b"))(x)
    check(out, np.std(arr, axis=1), ("a",))

    g = jax.grad(lambda x: nx.sum(nx.exp(x)).array)(x)
    check(g, np.exp(arr), ("a", "b"))

    mask = rng.random((3,)) < 0.5
    mask[0] = True
    gm = jax.grad(lambda x: nx.sum(nx.mean(x, "b", where=named(mask, ("b",)))).array)(x)
    check(gm, np.broadcast_to(mask / mask.sum(), (2, 3)).astype(np.float32), ("a", "b"))

    batched = rng.normal(size=(4, 2, 3)).astype(np.float32)
    vm = jax.vmap(lambda a: nx.logsumexp(nx.named(a, ("a", "b")), "a").array)(jnp.asarray(batched))
    np.testing.assert_allclose(np.asarray(vm), np.log(np.exp(batched).sum(1)), rtol=1e-5)
    vm2 = jax.vmap(lambda a: nx.sort(nx.named(a, ("a", "b")), "b").array)(jnp.asarray(batched))
    np.testing.assert_array_equal(np.asarray(vm2), np.sort(batched, axis=2))
