"""State through vmap, pmap and map (issue 9), against positional jax.vmap / numpy references.

Multi-device checks (pmap over 2 forced CPU devices) run in one subprocess, as in test_pmap.
"""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from helpers import assert_named_close, tree_allclose

B, E = nx.Axis("batch", 3), nx.Axis("embed", 2)
A, C = nx.Axis("a", 2), nx.Axis("c", 3)


def scalar(v):
    return nx.named(jnp.asarray(v, jnp.float32), ())


# ---------------------------------------------------------------------------------------------
# The reference example: a counter over 3 elements
# ---------------------------------------------------------------------------------------------


def accumulate(x, state):
    c = state["counter"] + x
    return c, {"counter": c}


XS = np.array([1.0, 2.0, 3.0], np.float32)


def test_accumulate_declared_per_element():
    """brainstate's state_in_axes/state_out_axes: here the counter holds the axis, so it is mapped."""
    counter = nx.named(jnp.zeros(3), B)
    out, st = nx.vmap(accumulate, B, state="state")(nx.named(XS, B), {"counter": counter})
    ref_out, ref_st = jax.vmap(accumulate, in_axes=(0, {"counter": 0}))(XS, {"counter": np.zeros(3, np.float32)})
    assert_named_close(out, ref_out, ("batch",))
    assert_named_close(st["counter"], ref_st["counter"], ("batch",))
    np.testing.assert_array_equal(np.asarray(st["counter"].array), [1.0, 2.0, 3.0])


def test_accumulate_undeclared_default_raises_naming_path_and_axis():
    with pytest.raises(ValueError, match=r"state entry \"state\['counter'\]\" came in without axis 'batch'"):
        nx.vmap(accumulate, B, state="state")(nx.named(XS, B), {"counter": scalar(0.0)})


def test_accumulate_undeclared_batch_and_warn():
    ref_out, ref_st = jax.vmap(accumulate, in_axes=(0, None))(XS, {"counter": np.float32(0.0)})
    out, st = nx.vmap(accumulate, B, state=1, unexpected_state="batch")(nx.named(XS, B), {"counter": scalar(0.0)})
    assert_named_close(st["counter"], ref_st["counter"], ("batch",))
    assert_named_close(out, ref_out, ("batch",))
    with pytest.warns(UserWarning, match=r"state\['counter'\].*without axis 'batch'.*returned with 'batch' in front"):
        _, st2 = nx.vmap(accumulate, B, state=1, unexpected_state="warn")(nx.named(XS, B), {"counter": scalar(0.0)})
    assert_named_close(st2["counter"], ref_st["counter"], ("batch",))


def test_same_write_for_every_element_stays_unbatched():
    def step(x, state):
        return x, {"n": state["n"] + 1.0, "mean": state["mean"] + nx.pmean(x, B), "keep": state["keep"]}

    x = nx.named(jnp.array([[1.0, 2.0, 6.0], [0.0, 3.0, 3.0]]), (E, B))
    st = {"n": scalar(0.0), "mean": nx.zeros(E), "keep": "label"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "warn" must stay silent: nothing unexpected
        _, new = nx.vmap(step, B, state=1, unexpected_state="warn")(x, st)
    assert new["n"].axes == () and float(new["n"].array) == 1.0
    assert_named_close(new["mean"], np.asarray(x.array).mean(axis=1), ("embed",))
    assert new["keep"] == "label"
    _, jitted = eqx.filter_jit(lambda x, n, m: nx.vmap(step, B, state=1)(x, {"n": n, "mean": m, "keep": "label"}))(
        x, st["n"], st["mean"]
    )
    assert jitted["mean"].axes == (E,)


def test_state_by_keyword_new_axis_and_method():
    S = nx.Axis("seed", 3)

    def f(state):
        i = nx.axis_index(S)
        return i, {"c": state["c"] + i, "d": state["d"] + 1}

    st = {"c": nx.named(jnp.int32(0), ()), "d": nx.named(jnp.int32(0), ())}
    with pytest.raises(ValueError, match=r"\"state\['c'\]\" came in without axis 'seed'"):
        nx.vmap(f, S, state="state")(state=st)
    out, new = nx.vmap(f, S, state="state", unexpected_state="batch")(state=st)
    np.testing.assert_array_equal(out, np.arange(3))
    assert new["c"].axes == (S,) and new["d"].axes == ()
    np.testing.assert_array_equal(new["c"].array, np.arange(3))
    assert int(new["d"].array) == 1

    class Model(eqx.Module):
        w: nx.NamedArray

        @nx.vmap(axis="batch", state="s")
        def __call__(self, x, s):
            return x * self.w, {"n": s["n"] + nx.psum(x, "batch")}

    xa = np.arange(6.0, dtype=np.float32).reshape(3, 2)
    y, new = Model(nx.named(np.array([1.0, -1.0], np.float32), E))(nx.named(xa, (B, E)), {"n": nx.zeros(E)})
    assert_named_close(y, xa * np.array([1.0, -1.0]), ("batch", "embed"))
    assert_named_close(new["n"], xa.sum(0), ("embed",))


# ---------------------------------------------------------------------------------------------
# Layout: mapped entries come back where they were; several axes; plain arrays
# ---------------------------------------------------------------------------------------------


def test_mapped_entry_gets_axis_back_where_it_was():
    xa = np.arange(6.0, dtype=np.float32).reshape(2, 3)  # (embed, batch)
    x = nx.named(xa, (E, B))

    def f(v, s):
        return v * 2, {"v": s["v"] * 3 + v, "p": s["p"] + 1.0}

    pa = np.arange(12.0, dtype=np.float32).reshape(4, 3)  # plain array, batch along dim 1
    out, new = nx.vmap(f, B, state=1, args=(None, {"v": None, "p": 1}))(x, {"v": x, "p": pa})
    ref_out, ref_new = jax.vmap(f, in_axes=(1, {"v": 1, "p": 1}), out_axes=(0, {"v": 1, "p": 1}))(
        xa, {"v": xa, "p": pa}
    )
    assert out.axes == (B, E)
    assert new["v"].axes == (E, B)
    np.testing.assert_allclose(new["v"].array, ref_new["v"])
    np.testing.assert_allclose(new["p"], ref_new["p"])
    np.testing.assert_allclose(out.array, ref_out)


def test_plain_arrays_in_state_are_broadcast_by_default():
    def f(v, s):
        return v, {"p": s["p"] + 1.0}

    p = np.zeros(3, np.float32)  # would be mapped by the default spec if it were an ordinary argument
    _, new = nx.vmap(f, B, state=1)(nx.named(XS, B), {"p": p})
    assert np.shape(new["p"]) == (3,)
    np.testing.assert_array_equal(new["p"], p + 1.0)


def test_several_axes_per_level():
    xa = np.arange(6.0, dtype=np.float32).reshape(3, 2)  # (c, a)
    x = nx.named(xa, (C, A))
    st = {
        "pa": nx.named(jnp.zeros((5, 2)), ("e", A)),  # has a, not c
        "tot": scalar(0.0),
        "row": nx.zeros(A),
    }

    def g(v, s):
        return v, {"pa": s["pa"] + nx.psum(v, C), "tot": s["tot"] + nx.psum(nx.psum(v, C), A), "row": s["row"] + v}

    with pytest.raises(ValueError, match=r"s\['row'\].*without axis 'c'"):
        nx.vmap(g, (A, C), state="s")(x, st)
    _, new = nx.vmap(g, (A, C), state="s", unexpected_state="batch")(x, st)
    assert new["pa"].axes == (nx.Axis("e", 5), A)
    np.testing.assert_allclose(new["pa"].array, np.broadcast_to(xa.sum(0), (5, 2)))
    assert new["tot"].axes == () and float(new["tot"].array) == xa.sum()
    assert new["row"].axes == (C, A)  # newly batched c in front, then a where it was
    np.testing.assert_allclose(new["row"].array, xa)


# ---------------------------------------------------------------------------------------------
# equinox state: eqx.nn.State detected, eqx.nn.StateIndex entries named in errors
# ---------------------------------------------------------------------------------------------


def test_equinox_batchnorm_state_detected_and_matches_jax_vmap():
    bn, state = eqx.nn.make_with_state(eqx.nn.BatchNorm)(3, axis_name="batch", mode="batch")
    xa = jax.random.normal(jax.random.key(0), (4, 3))
    Bt = nx.Axis("batch", 4)
    ref = jax.vmap(bn, axis_name="batch", in_axes=(0, None), out_axes=(0, None))
    y, new = nx.vmap(bn, Bt, args=(0,))(xa, state)  # the State argument is found without state=
    ry, rnew = ref(xa, state)
    np.testing.assert_allclose(y, ry, rtol=1e-5, atol=1e-6)
    tree_allclose(new, rnew)

    def loss(xa, f):
        y, s = f(xa, state)
        return jnp.sum(y**3) + sum(jnp.sum(leaf) for leaf in jax.tree.leaves(s))

    g = jax.jit(jax.grad(lambda a: loss(a, nx.vmap(bn, Bt, args=(0,)))))(xa)
    np.testing.assert_allclose(g, jax.grad(lambda a: loss(a, ref))(xa), rtol=1e-4, atol=1e-5)


class Counter(eqx.Module):
    index: eqx.nn.StateIndex

    def __init__(self):
        self.index = eqx.nn.StateIndex(jnp.zeros(()))

    def __call__(self, x, state):
        n = state.get(self.index) + x
        return n, state.set(self.index, n)


def test_equinox_state_error_names_the_index_and_batch_policy():
    model, state = eqx.nn.make_with_state(Counter)()
    with pytest.raises(ValueError, match=r"state entry \"state\['Counter.index'\]\" came in without axis 'batch'"):
        nx.vmap(model, B, args=(0,))(XS, state)
    out, new = nx.vmap(model, B, args=(0,), unexpected_state="batch")(XS, state)
    np.testing.assert_array_equal(out, XS)
    np.testing.assert_array_equal(new.get(model.index), XS)


# ---------------------------------------------------------------------------------------------
# Random keys: per-element keys are per-element state
# ---------------------------------------------------------------------------------------------


def test_per_element_keys_give_independent_streams():
    def draw(state):
        k, sub = jax.random.split(state["key"].array)
        return nx.random.normal(sub, E), {"key": nx.named(k, ())}

    keys = nx.random.split(jax.random.key(0), B)
    y, new = nx.vmap(draw, B, state=0)({"key": keys})
    raw = jax.random.split(jax.random.key(0), 3)
    ref_k, ref_sub = jax.vmap(jax.random.split, out_axes=1)(raw)
    ref = jax.vmap(lambda k: jax.random.normal(k, (2,)))(ref_sub)
    assert_named_close(y, ref, ("batch", "embed"))
    assert new["key"].axes == (B,)
    np.testing.assert_array_equal(jax.random.key_data(new["key"].array), jax.random.key_data(ref_k))
    # one shared key: the same numbers for every element, and the key stays shared
    y1, new1 = nx.vmap(draw, B, state=0)({"key": nx.named(jax.random.key(0), ())})
    assert new1["key"].axes == ()
    np.testing.assert_array_equal(np.asarray(y1.array), np.broadcast_to(np.asarray(y1.array[0]), (3, 2)))


# ---------------------------------------------------------------------------------------------
# map
# ---------------------------------------------------------------------------------------------

N = nx.Axis("n", 5)
MA = np.arange(10.0, dtype=np.float32).reshape(2, 5)  # (embed, n)


def map_step(v, s):
    return v * 2, {"per": s["per"] + v, "same": s["same"] + 1.0, "tag": s["tag"]}


@pytest.mark.parametrize("batch_size", [None, 2, 5])
def test_map_with_state(batch_size):
    x = nx.named(MA, (E, N))
    st = {"per": nx.named(np.ones((2, 5), np.float32), (E, N)), "same": nx.zeros({"z": 3}), "tag": 7}
    out, new = nx.map(map_step, N, batch_size=batch_size, state=1)(x, st)
    assert_named_close(out, 2 * MA.T, ("n", "embed"))
    assert new["per"].axes == (E, N)
    np.testing.assert_allclose(new["per"].array, MA + 1)
    assert new["same"].axes == (nx.Axis("z", 3),)  # one copy, carried through the loop
    np.testing.assert_array_equal(new["same"].array, np.ones(3))
    assert new["tag"] == 7


def test_map_policies():
    def f(v, s):
        return v, {"a": s["a"] + v}

    x = nx.named(MA, (E, N))
    with pytest.raises(ValueError, match=r"map: state entry \"s\['a'\]\" came in without axis 'n'"):
        nx.map(f, N, state="s")(x, {"a": nx.zeros(E)})
    with pytest.warns(UserWarning, match="without axis 'n'"):
        _, new = nx.map(f, N, state="s", unexpected_state="warn", batch_size=2)(x, {"a": nx.zeros(E)})
    assert_named_close(new["a"], MA.T, ("n", "embed"))
    assert new["a"].axes == (N, E)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_errors():
    x = nx.named(XS, B)
    st = {"counter": nx.zeros(B)}
    with pytest.raises(ValueError, match=r"`state='nope'` names an argument that was not passed"):
        nx.vmap(accumulate, B, state="nope")(x, st)
    with pytest.raises(ValueError, match=r"`state=3` names positional argument 3, but only 2 were given"):
        nx.vmap(accumulate, B, state=3)(x, st)
    with pytest.raises(TypeError, match=r"must return a pair \(out, new_state\), got NamedArray"):
        nx.vmap(lambda x, state: x, B, state=1)(x, st)
    with pytest.raises(ValueError, match="returned state must have the structure of the state argument 'state'"):
        nx.vmap(lambda x, state: (x, {"other": x}), B, state=1)(x, st)
    with pytest.raises(TypeError, match="`state` must name the state argument"):
        nx.vmap(accumulate, B, state=1.5)
    with pytest.raises(ValueError, match="`unexpected_state` must be one of"):
        nx.vmap(accumulate, B, state=1, unexpected_state="ignore")
    with pytest.raises(ValueError, match="`unexpected_state` must be one of"):
        nx.pmap(accumulate, B, state=1, unexpected_state="silent")
    with pytest.raises(TypeError, match="`state` must name the state argument"):
        nx.map(accumulate, B, state=-1)
    _, s1 = eqx.nn.make_with_state(Counter)()
    _, s2 = eqx.nn.make_with_state(Counter)()
    with pytest.raises(ValueError, match=r"several arguments are eqx.nn.State \(args\[0\], args\[1\]\)"):
        nx.vmap(lambda a, b: (a, b), {"batch": 2})(s1, s2)


def test_state_false_treats_state_as_ordinary_argument():
    _, s = eqx.nn.make_with_state(Counter)()
    out = nx.vmap(lambda x, s: x * 2, B, state=False)(nx.named(XS, B), s)
    assert_named_close(out, 2 * XS, ("batch",))


# The multi-device checks are in tests/multidevice/test_state.py.
