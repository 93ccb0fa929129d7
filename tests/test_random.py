"""namedax.random against jax.random on the positional equivalent, with the same key."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import namedax as nx
from helpers import assert_named_close

B, E, H = nx.Axis("batch", 3), nx.Axis("embed", 4), nx.Axis("head", 2)
KEYS = {"typed": jax.random.key(7), "legacy": jax.random.PRNGKey(7)}


@pytest.fixture(params=["typed", "legacy"])
def anykey(request):
    return KEYS[request.param]


def test_normal_matches_jax(anykey):
    x = nx.random.normal(anykey, (B, E))
    assert x.axes == (B, E)
    np.testing.assert_array_equal(x.array, jax.random.normal(anykey, (3, 4)))


@pytest.mark.parametrize("shape", [(B, E), {"batch": 3, "embed": 4}, [B, E]])
def test_shape_forms(key, shape):
    x = nx.random.normal(key, shape)
    assert x.axes == (B, E)
    np.testing.assert_array_equal(x.array, jax.random.normal(key, (3, 4)))


def test_single_axis_and_scalar(key):
    assert nx.random.uniform(key, E).axes == (E,)
    np.testing.assert_array_equal(nx.random.uniform(key, E).array, jax.random.uniform(key, (4,)))
    s = nx.random.normal(key, ())
    assert s.axes == ()
    np.testing.assert_array_equal(s.array, jax.random.normal(key, ()))


def test_dtype(key):
    x = nx.random.normal(key, (B,), jnp.bfloat16)
    assert x.dtype == jnp.bfloat16
    np.testing.assert_array_equal(x.array, jax.random.normal(key, (3,), jnp.bfloat16))


@pytest.mark.parametrize(
    "name, args, ref",
    [
        ("uniform", (None, -2.0, 5.0), lambda k, s: jax.random.uniform(k, s, None, -2.0, 5.0)),
        ("randint", (-3, 9), lambda k, s: jax.random.randint(k, s, -3, 9)),
        ("truncated_normal", (-0.5, 1.5), lambda k, s: jax.random.truncated_normal(k, -0.5, 1.5, s)),
        ("bernoulli", (0.3,), lambda k, s: jax.random.bernoulli(k, 0.3, s)),
        ("exponential", (), lambda k, s: jax.random.exponential(k, s)),
        ("gumbel", (), lambda k, s: jax.random.gumbel(k, s)),
        ("laplace", (), lambda k, s: jax.random.laplace(k, s)),
        ("cauchy", (), lambda k, s: jax.random.cauchy(k, s)),
        ("logistic", (), lambda k, s: jax.random.logistic(k, s)),
        ("rademacher", (), lambda k, s: jax.random.rademacher(k, s)),
        ("pareto", (2.0,), lambda k, s: jax.random.pareto(k, 2.0, s)),
        ("weibull_min", (1.0, 2.0), lambda k, s: jax.random.weibull_min(k, 1.0, 2.0, s)),
    ],
)
def test_samplers_match_jax(key, name, args, ref):
    x = getattr(nx.random, name)(key, (B, E), *args)
    assert x.axes == (B, E)
    want = ref(key, (3, 4))
    assert x.dtype == want.dtype
    np.testing.assert_array_equal(x.array, want)


@pytest.mark.parametrize(
    "name, args, ref",
    [
        ("poisson", (3.0,), lambda k, s: jax.random.poisson(k, 3.0, s)),
        ("gamma", (2.0,), lambda k, s: jax.random.gamma(k, 2.0, s)),
        ("beta", (2.0, 3.0), lambda k, s: jax.random.beta(k, 2.0, 3.0, s)),
        ("t", (4.0,), lambda k, s: jax.random.t(k, 4.0, s)),
        ("loggamma", (2.0,), lambda k, s: jax.random.loggamma(k, 2.0, s)),
    ],
)
def test_costly_samplers_trace_to_jax(key, name, args, ref):
    # these compile slowly (seconds each): compare the traced computation instead of the values
    got = jax.make_jaxpr(lambda k: getattr(nx.random, name)(k, (B, E), *args).array)(key)
    assert str(got) == str(jax.make_jaxpr(lambda k: ref(k, (3, 4)))(key))


def test_legacy_key_samplers_match_jax():
    k = KEYS["legacy"]
    u = nx.random.uniform(k, (B, E), None, -1.0, 2.0)
    np.testing.assert_array_equal(u.array, jax.random.uniform(k, (3, 4), None, -1.0, 2.0))
    np.testing.assert_array_equal(nx.random.pareto(k, (B, E), 2.0).array, jax.random.pareto(k, 2.0, (3, 4)))


def test_table_samplers_take_keywords_and_positional_dtype(key):
    a = nx.random.weibull_min(key, B, scale=1.0, concentration=2.0)
    np.testing.assert_array_equal(a.array, jax.random.weibull_min(key, 1.0, 2.0, (3,)))
    g = nx.random.pareto(key, B, 2.0, jnp.float16)
    assert g.dtype == jnp.float16
    np.testing.assert_array_equal(g.array, jax.random.pareto(key, 2.0, (3,), jnp.float16))
    with pytest.raises(TypeError, match=r"beta: missing the parameter `b`"):
        nx.random.beta(key, B, 2.0)
    with pytest.raises(TypeError, match=r"gamma: takes the parameters \('a',\)"):
        nx.random.gamma(key, B, 2.0, alpha=1.0)


def test_uniform_named_bounds_broadcast_by_name(key):
    lo = nx.named(jnp.arange(12.0).reshape(4, 3), (E, B))  # the other order
    hi = nx.named(jnp.array([20.0, 30.0, 40.0]), B)
    x = nx.random.uniform(key, (B, E), minval=lo, maxval=hi)
    ref_lo, ref_hi = jnp.arange(12.0).reshape(4, 3).T, jnp.array([20.0, 30.0, 40.0])[:, None]
    ref = jax.random.uniform(key, (3, 4), minval=ref_lo, maxval=ref_hi)
    assert_named_close(x, ref, ("batch", "embed"))


def test_bernoulli_named_p_in_another_order(key):
    p = nx.named(jnp.array([[0.1, 0.9, 0.5], [0.2, 0.7, 0.4]]), (H, B))
    x = nx.random.bernoulli(key, (B, E, H), p)
    ref_p = jnp.transpose(p.array)[:, None, :]  # (B, 1, H)
    ref = jax.random.bernoulli(key, jnp.broadcast_to(ref_p, (3, 4, 2)), (3, 4, 2))
    assert x.axes == (B, E, H)
    np.testing.assert_array_equal(x.array, ref)


def test_randint_and_truncated_normal_named_bounds(key):
    hi = nx.named(jnp.array([2, 5, 100]), B)
    x = nx.random.randint(key, (E, B), 0, hi)
    np.testing.assert_array_equal(x.array, jax.random.randint(key, (4, 3), 0, jnp.array([2, 5, 100])[None, :]))
    lo = nx.named(jnp.array([-1.0, 0.0, 1.0, 2.0]), E)
    y = nx.random.truncated_normal(key, (B, E), lo, lo + 0.5)
    ref = jax.random.truncated_normal(key, lo.array[None, :], lo.array[None, :] + 0.5, (3, 4))
    np.testing.assert_array_equal(y.array, ref)


@settings(max_examples=20)
@given(st.permutations(["a", "b", "c"]), st.permutations(["a", "b", "c"]), st.integers(0, 3))
def test_uniform_bounds_any_order_property(shape_order, order, n_param_axes):
    # fixed sizes keep the number of compiled shapes small; orders and subsets vary
    sizes = {"a": 2, "b": 3, "c": 1}
    axes = tuple(nx.Axis(n, sizes[n]) for n in shape_order)
    param_names = order[:n_param_axes]
    param_axes = tuple(a for n in param_names for a in axes if a.name == n)
    lo_arr = jnp.arange(float(np.prod([a.size for a in param_axes], dtype=int))).reshape([a.size for a in param_axes])
    lo = nx.named(lo_arr, param_axes)
    key = jax.random.key(3)
    x = nx.random.uniform(key, axes, minval=lo, maxval=lo + 1.0)
    # positional reference with numpy: the bounds' dimensions put in the result's order, then broadcast
    perm = sorted(range(len(param_names)), key=lambda i: shape_order.index(param_names[i]))
    unit = [sizes[n] if n in param_names else 1 for n in shape_order]
    lo_ref = np.broadcast_to(np.asarray(lo_arr).transpose(perm).reshape(unit), [sizes[n] for n in shape_order])
    ref = jax.random.uniform(key, tuple(a.size for a in axes), minval=lo_ref, maxval=lo_ref + 1.0)
    assert x.axes == axes
    np.testing.assert_array_equal(x.array, ref)


# ---- split ----


def test_split_typed_equals_jax(key):
    keys = nx.random.split(key, B)
    assert keys.axes == (B,)
    np.testing.assert_array_equal(jax.random.key_data(keys.array), jax.random.key_data(jax.random.split(key, 3)))


def test_split_legacy_wraps_to_typed():
    k = KEYS["legacy"]
    keys = nx.random.split(k, B)
    assert jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(jax.random.key_data(keys.array), jax.random.split(k, 3))
    # drawing with a split key is jax's draw with the legacy split key
    np.testing.assert_array_equal(
        nx.random.normal(keys["batch", 1], E).array, jax.random.normal(jax.random.split(k, 3)[1], (4,))
    )


def test_split_several_axes_and_mapping(key):
    keys = nx.random.split(key, {"batch": 3, "head": 2})
    assert keys.axes == (B, H)
    np.testing.assert_array_equal(jax.random.key_data(keys.array), jax.random.key_data(jax.random.split(key, (3, 2))))


def test_split_of_a_named_scalar_key(key):
    k0 = nx.random.split(key, B)["batch", 0]  # a NamedArray without axes, as inside vmap
    assert k0.axes == ()
    np.testing.assert_array_equal(
        jax.random.key_data(nx.random.split(k0, H).array),
        jax.random.key_data(jax.random.split(jax.random.split(key, 3)[0], 2)),
    )


def test_per_element_keys_inside_vmap(key):
    keys = nx.random.split(key, B)
    x = nx.vmap(lambda k: nx.random.normal(k, E), B)(keys)
    ref = jax.vmap(lambda k: jax.random.normal(k, (4,)))(jax.random.split(key, 3))
    assert_named_close(x, ref, ("batch", "embed"))
    assert not np.allclose(ref[0], ref[1])


def test_unsplit_keys_through_vmap_follow_the_default_spec():
    # as documented in namedax.random: a typed key (0-d) is broadcast, like jax.vmap(in_axes=None);
    # a legacy PRNGKey (uint32, shape (2,)) is mapped along its key data, like jax.vmap(in_axes=0)
    x = nx.named(jnp.arange(3.0), B)
    draw = nx.vmap(lambda v, k: nx.random.normal(k, E) + v, B)
    typed, legacy = KEYS["typed"], KEYS["legacy"]
    ref = jax.vmap(lambda v, k: jax.random.normal(k, (4,)) + v, in_axes=(0, None))(jnp.arange(3.0), typed)
    assert_named_close(draw(x, typed), ref, ("batch", "embed"))
    same = nx.vmap(lambda v, k: nx.random.normal(k, E), B)(x, typed).array  # every element draws the same
    np.testing.assert_array_equal(same, np.broadcast_to(jax.random.normal(typed, (4,)), (3, 4)))
    # the legacy key is mapped: its size 2 is not the axis's 3 (raw jax.vmap refuses it too)
    with pytest.raises(ValueError, match=r"axis 'batch' has size 2 in argument 'k' \(shape \(2,\)\)"):
        draw(x, legacy)
    with pytest.raises(ValueError, match="inconsistent sizes"):
        jax.vmap(lambda v, k: jax.random.normal(k, (4,)) + v)(jnp.arange(3.0), legacy)
    # over an axis of size 2 each element gets one uint32 word, as in raw jax.vmap, which is no key
    assert jax.vmap(lambda k: k.shape)(legacy) == ()
    with pytest.raises(TypeError, match="normal: `key` is a single uint32 word, not a key"):
        nx.vmap(lambda k: nx.random.normal(k, E), {"batch": 2})(legacy)
    # with the spec None the legacy key is broadcast and draws as the typed-key reference would
    ref = jax.vmap(lambda v, k: jax.random.normal(k, (4,)) + v, in_axes=(0, None))(jnp.arange(3.0), legacy)
    out = nx.vmap(lambda v, k: nx.random.normal(k, E) + v, B, args=(0, None))(x, legacy)
    assert_named_close(out, ref, ("batch", "embed"))


def test_under_jit(key):
    f = jax.jit(lambda k: nx.random.uniform(k, (B, E), minval=nx.named(jnp.arange(3.0), B)))
    x = f(key)
    ref = jax.random.uniform(key, (3, 4), minval=jnp.arange(3.0)[:, None])
    np.testing.assert_allclose(x.array, ref)


# ---- categorical, permutation, choice ----


def test_categorical_default_shape(key):
    logits = nx.random.normal(jax.random.key(1), (B, E))
    x = nx.random.categorical(key, logits, E)
    assert x.axes == (B,)
    np.testing.assert_array_equal(x.array, jax.random.categorical(key, logits.array, axis=-1))


def test_categorical_category_axis_first_and_extra_axes(key):
    logits = nx.random.normal(jax.random.key(1), (E, B))  # categories first
    x = nx.random.categorical(key, logits, "embed", shape=H)
    assert x.axes == (H, B)
    ref = jax.random.categorical(key, jnp.broadcast_to(logits.array.T, (2, 3, 4)), axis=-1)
    np.testing.assert_array_equal(x.array, ref)
    # a full shape in another order than the logits' (haliax's usage)
    y = nx.random.categorical(key, logits, E, shape=(H, B))
    np.testing.assert_array_equal(y.array, ref)


def test_categorical_errors(key):
    logits = nx.zeros((B, E))
    with pytest.raises(nx.AxisNotFoundError, match=r"categorical: no axis 'head'"):
        nx.random.categorical(key, logits, "head")
    with pytest.raises(ValueError, match=r"categorical: the category axis Axis\('embed', 4\) cannot be in `shape`"):
        nx.random.categorical(key, logits, E, shape=(E, H))
    with pytest.raises(ValueError, match=r"categorical: axis 'batch' has size"):
        nx.random.categorical(key, logits, E, shape={"batch": 5})
    with pytest.raises(TypeError, match=r"categorical: `logits` must be a NamedArray"):
        nx.random.categorical(key, jnp.zeros((3, 4)), E)


def test_permutation(key):
    p = nx.random.permutation(key, B)
    assert p.axes == (B,)
    np.testing.assert_array_equal(p.array, jax.random.permutation(key, 3))
    x = nx.named(jnp.arange(12).reshape(3, 4), (B, E))
    y = nx.random.permutation(key, x, "embed")
    assert y.axes == (B, E)
    np.testing.assert_array_equal(y.array, jax.random.permutation(key, x.array, axis=1))
    z = nx.random.permutation(key, x, E, independent=True)
    np.testing.assert_array_equal(z.array, jax.random.permutation(key, x.array, axis=1, independent=True))
    v = nx.named(jnp.arange(4), E)
    np.testing.assert_array_equal(nx.random.permutation(key, v).array, jax.random.permutation(key, jnp.arange(4)))


def test_permutation_errors(key):
    x = nx.zeros((B, E))
    with pytest.raises(ValueError, match=r"permutation: `axis` is needed for an array with axes"):
        nx.random.permutation(key, x)
    with pytest.raises(nx.AxisNotFoundError, match=r"permutation: no axis 'head' in"):
        nx.random.permutation(key, x, "head")
    with pytest.raises(TypeError, match=r"permutation: `x` must be an Axis or a NamedArray"):
        nx.random.permutation(key, jnp.arange(3))
    with pytest.raises(ValueError, match=r"permutation: `axis` 'head' given with the Axis"):
        nx.random.permutation(key, B, "head")


def test_choice(key):
    D = nx.Axis("draw", 5)
    i = nx.random.choice(key, D, E)
    assert i.axes == (D,)
    np.testing.assert_array_equal(i.array, jax.random.choice(key, 4, (5,)))
    a = nx.named(jnp.arange(12.0).reshape(3, 4), (B, E))
    p = nx.named(jnp.array([0.5, 0.0, 0.2, 0.3]), E)
    c = nx.random.choice(key, D, a, "embed", p=p)
    assert c.axes == (D, B)
    np.testing.assert_array_equal(c.array, jax.random.choice(key, a.array, (5,), p=p.array, axis=1))
    w = nx.random.choice(key, {"draw": 2}, a, B, replace=False)
    assert w.axes == (nx.Axis("draw", 2), E)
    np.testing.assert_array_equal(w.array, jax.random.choice(key, a.array, (2,), replace=False, axis=0))


def test_choice_errors(key):
    a = nx.zeros((B, E))
    with pytest.raises(ValueError, match=r"choice: `p` must be a NamedArray over exactly Axis\('embed', 4\)"):
        nx.random.choice(key, H, a, E, p=nx.ones((B,)))
    with pytest.raises(ValueError, match=r"choice: `p` has Axis\('embed', 3\), but `a` has Axis\('embed', 4\)"):
        nx.random.choice(key, H, a, E, p=nx.ones({"embed": 3}))
    with pytest.raises(ValueError, match=r"choice: 5 draws .* without replacement from Axis\('batch', 3\)"):
        nx.random.choice(key, {"draw": 5}, a, B, replace=False)
    with pytest.raises(ValueError, match=r"choice \(`shape` and the other axes of `a`\): duplicate axis names"):
        nx.random.choice(key, E, a, B)
    with pytest.raises(ValueError, match=r"choice: `axis` is needed"):
        nx.random.choice(key, H, a)
    with pytest.raises(TypeError, match=r"choice: `a` must be an Axis or a NamedArray"):
        nx.random.choice(key, H, 4)


# ---- errors shared by every sampler ----


def test_shape_errors(key):
    with pytest.raises(TypeError, match=r"normal: a size is needed for axis 'batch'"):
        nx.random.normal(key, ("batch", E))
    with pytest.raises(TypeError, match=r"normal: a size is needed for axis 'batch'"):
        nx.random.normal(key, "batch")
    with pytest.raises(TypeError, match=r"uniform: `shape` must be an Axis, a sequence of Axis or a \{name: size\}"):
        nx.random.uniform(key, 3)
    with pytest.raises(ValueError, match=r"normal: duplicate axis names \['batch'\]"):
        nx.random.normal(key, (B, B))
    with pytest.raises(TypeError, match=r"split: a size is needed for axis 'batch'"):
        nx.random.split(key, "batch")


def test_parameter_errors(key):
    with pytest.raises(ValueError, match=r"uniform: `minval` has axis Axis\('head', 2\), which is not in the shape"):
        nx.random.uniform(key, (B, E), minval=nx.zeros((H,)))
    with pytest.raises(ValueError, match=r"bernoulli: `p` has Axis\('batch', 5\), but the shape has size 3 for it"):
        nx.random.bernoulli(key, (B, E), nx.zeros({"batch": 5}))
    with pytest.raises(TypeError, match=r"randint \(`maxval`\): cannot combine a NamedArray with a plain array"):
        nx.random.randint(key, (B,), 0, jnp.array([1, 2, 3]))
    with pytest.raises(ValueError, match=r"gamma: `a` has axis Axis\('head', 2\)"):
        nx.random.gamma(key, B, nx.ones((H,)))


def test_key_errors(key):
    with pytest.raises(ValueError, match=r"normal: `key` is a NamedArray of keys over \(Axis\('batch', 3\),\); draw"):
        nx.random.normal(nx.random.split(key, B), E)
    with pytest.raises(ValueError, match=r"normal: `key` must be a single key, got a key array of shape \(3,\)"):
        nx.random.normal(jax.random.split(key, 3), E)
    with pytest.raises(TypeError, match=r"uniform: `key` must be a jax.random.key or jax.random.PRNGKey, got int"):
        nx.random.uniform(0, E)
    with pytest.raises(TypeError, match=r"split: `key` must be a jax.random.key"):
        nx.random.split(jnp.zeros((2,)), B)
