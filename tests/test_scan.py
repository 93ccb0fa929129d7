"""nx.scan / fold / map against jax.lax.scan / jax.lax.map on the positional equivalent."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import namedax as nx
from helpers import assert_named_close, to_numpy

L, E, F = nx.Axis("l", 3), nx.Axis("e", 2), nx.Axis("f", 4)
AXES = {"l": L, "e": E, "f": F}


def _x(order, seed=0):
    axes = tuple(AXES[n] for n in order)
    rng = np.random.default_rng(seed)
    return nx.named(jnp.asarray(rng.normal(size=[a.size for a in axes]), jnp.float32), axes)


def _step(h, w):
    return h * w + 1.0, h["e", 0]


def _step_pos(h, w):
    return h * w + 1.0, h[0]


def test_scan_matches_lax_scan():
    w, h0 = _x("le"), _x("e", seed=1)
    h, ys = nx.scan(_step, L)(h0, w)
    rh, rys = jax.lax.scan(_step_pos, h0.array, w.array)
    assert h.axes == (E,) and ys.axes == (L,)
    np.testing.assert_allclose(np.asarray(h.array), np.asarray(rh), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ys.array), np.asarray(rys), rtol=1e-6)


def test_scan_axis_not_leading_and_broadcast_named():
    w, b, h0 = _x("el"), _x("e", seed=2), _x("e", seed=1)  # w has l second; b lacks l: passed whole
    seen = []

    def step(h, w, b):
        seen.append((w.axes, b.axes))
        return h * w + b, h

    h, ys = nx.scan(step, "l")(h0, w, b)
    assert seen[0] == ((E,), (E,))
    rh, rys = jax.lax.scan(lambda h, w: (h * w + b.array, h), h0.array, w.array.T)
    np.testing.assert_allclose(np.asarray(h.array), np.asarray(rh), rtol=1e-6)
    assert ys.axes == (L, E)
    np.testing.assert_allclose(np.asarray(ys.array), np.asarray(rys), rtol=1e-6)


def test_scan_plain_arrays_and_scalars():
    h0 = _x("e", seed=1)
    plain = jnp.arange(3.0)  # sliced along its leading dimension
    scalar = jnp.asarray(2.0)  # passed whole

    def step(h, p, s, k):
        return h * s + p + k, p * s

    h, ys = nx.scan(step, L)(h0, plain, scalar, k=0.5)
    rh, rys = jax.lax.scan(lambda h, p: (h * 2.0 + p + 0.5, p * 2.0), h0.array, plain)
    np.testing.assert_allclose(np.asarray(h.array), np.asarray(rh), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ys), np.asarray(rys), rtol=1e-6)


def test_scan_is_scanned_false_keeps_plain_whole():
    table = jnp.arange(4.0)
    x = _x("l")
    carry, _ = nx.scan(lambda c, v, t: (c + v.array * t.sum(), None), L, is_scanned=False)(0.0, x, table)
    np.testing.assert_allclose(float(carry), float(np.asarray(x.array).sum() * 6.0), rtol=1e-5)
    pick = lambda leaf: leaf.shape == (3,)  # noqa: E731
    carry, _ = nx.scan(lambda c, p, t: (c + p * t.sum(), None), L, is_scanned=pick)(0.0, jnp.arange(3.0), table)
    np.testing.assert_allclose(float(carry), 3.0 * 6.0)


def test_scan_kwargs_reverse_unroll():
    w, h0 = _x("le"), _x("e", seed=1)

    def step(h, *, w):
        return _step(h, w)

    for reverse in (False, True):
        h, ys = nx.scan(step, L, reverse=reverse, unroll=2)(h0, w=w)
        rh, rys = jax.lax.scan(_step_pos, h0.array, w.array, reverse=reverse)
        np.testing.assert_allclose(np.asarray(h.array), np.asarray(rh), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(ys.array), np.asarray(rys), rtol=1e-6)


def test_scan_outputs_nonarray_passthrough_and_named_first():
    w = _x("fl")
    _, (ys, tag) = nx.scan(lambda c, w: (c, (w * 2.0, "tag")), L)(0.0, w)
    assert tag == "tag"
    assert_named_close(ys, 2.0 * to_numpy(w, "lf"), "lf")
    assert ys.axes == (L, F)


def test_scan_new_axis_with_size():
    c, ys = nx.scan(lambda c: (c + 1.0, c), nx.Axis("t", 4))(jnp.asarray(0.0))
    np.testing.assert_allclose(float(c), 4.0)
    np.testing.assert_allclose(np.asarray(ys), np.arange(4.0))


@pytest.mark.parametrize("remat", [True, jax.checkpoint_policies.nothing_saveable])
def test_scan_remat_same_values_and_grads(remat):
    w, h0 = _x("le"), _x("e", seed=1)

    def loss(w, remat):
        h, ys = nx.scan(_step, L, remat=remat)(h0, w)
        return (h.array**2).sum() + ys.array.sum()

    np.testing.assert_allclose(float(loss(w, remat)), float(loss(w, False)), rtol=1e-6)
    g = jax.grad(loss)(w, remat)
    g_ref = jax.grad(lambda a: loss(nx.named(a, (L, E)), False))(w.array)
    np.testing.assert_allclose(np.asarray(g.array), np.asarray(g_ref), rtol=1e-5)
    jaxpr = str(jax.make_jaxpr(lambda w: loss(w, remat))(w))
    assert "checkpoint" in jaxpr or "remat" in jaxpr


def test_scan_jaxpr_matches_lax_scan():
    w, h0 = _x("el"), _x("e", seed=1)
    got = jax.make_jaxpr(nx.scan(_step, L))(h0, w)
    ref = jax.make_jaxpr(lambda h, w: jax.lax.scan(_step_pos, h, jnp.moveaxis(w, 1, 0)))(h0.array, w.array)
    assert str(got) == str(ref)


@settings(max_examples=20)
@given(st.permutations("lef"))
def test_property_scan_any_axis_position(order):
    x = _x("".join(order))
    total, ys = nx.scan(lambda c, v: (c + v, v * 2.0), L)(nx.zeros((E, F)), x)
    xn = to_numpy(x, "lef")
    assert_named_close(total, xn.sum(0), "ef")
    assert ys.axes[0] == L
    assert_named_close(ys, 2.0 * xn, "lef")


def test_fold():
    w, h0 = _x("le"), _x("e", seed=1)
    h = nx.fold(lambda h, w: _step(h, w)[0], L)(h0, w)
    rh, _ = jax.lax.scan(_step_pos, h0.array, w.array)
    np.testing.assert_allclose(np.asarray(h.array), np.asarray(rh), rtol=1e-6)
    h = nx.fold(lambda h, w: h * w, L, reverse=True, remat=True)(h0, w)
    np.testing.assert_allclose(np.asarray(h.array), np.asarray(h0.array * np.prod(np.asarray(w.array), 0)), rtol=1e-5)


@pytest.mark.parametrize("batch_size", [None, 1, 2, 3])
def test_map_matches_lax_map(batch_size):
    x, b = _x("fl"), _x("f", seed=3)
    y = nx.map(lambda v, b: v * b + 1.0, L, batch_size=batch_size)(x, b)
    ref = jax.lax.map(lambda v: v * b.array + 1.0, x.array.T, batch_size=batch_size)
    assert y.axes == (L, F)
    np.testing.assert_allclose(np.asarray(y.array), np.asarray(ref), rtol=1e-6)


def test_map_same_as_vmap():
    x = _x("elf")
    f = lambda v: v * v["e", 0]  # noqa: E731
    a, b = nx.map(f, "l", batch_size=2)(x), nx.vmap(f, "l")(x)
    assert a.axes == b.axes
    np.testing.assert_allclose(np.asarray(a.array), np.asarray(b.array), rtol=1e-6)


def test_map_plain_and_passthrough_and_no_inputs():
    out, tag = nx.map(lambda p: (p * 2.0, "t"), "l")(jnp.arange(3.0))
    assert tag == "t"
    np.testing.assert_allclose(np.asarray(out), np.arange(3.0) * 2.0)
    y = nx.map(lambda: nx.ones(E), L, batch_size=2)()
    assert y.axes == (L, E)
    np.testing.assert_allclose(np.asarray(y.array), np.ones((3, 2)))


def test_map_jaxpr_matches_lax_map():
    x = _x("lf")
    got = jax.make_jaxpr(nx.map(lambda v: v * 2.0, L, batch_size=2))(x)
    ref = jax.make_jaxpr(lambda a: jax.lax.map(lambda v: v * 2.0, a, batch_size=2))(x.array)
    assert str(got) == str(ref)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_error_plain_leading_size_names_path():
    with pytest.raises(ValueError, match=r"axis 'l' has size 3 from argument 'w'.*argument \"extra\['p'\]\" "
                       r"\(shape \(4, 2\)\) has leading dimension size 4"):
        nx.scan(lambda c, w, extra: (c, None), "l")(0.0, _x("le"), {"p": jnp.ones((4, 2))})
    with pytest.raises(ValueError, match=r"from the given Axis\('l', 3\), but argument 'p'"):
        nx.map(lambda p: p, L)(jnp.ones(5))


def test_error_named_size_disagrees():
    with pytest.raises(ValueError, match=r"axis 'l' has size 5 from the given Axis\('l', 5\), but argument 'w' "
                       r"\(axes \(Axis\('l', 3\), Axis\('e', 2\)\)\) has size 3"):
        nx.scan(lambda c, w: (c, None), nx.Axis("l", 5))(0.0, _x("le"))


def test_error_unknown_size():
    with pytest.raises(ValueError, match=r"no argument has axis 'zz'.*Axis\('zz', size\)"):
        nx.scan(lambda c: (c, None), "zz")(0.0)
    with pytest.raises(ValueError, match="no argument has axis 'zz'"):
        nx.map(lambda: 1.0, "zz")()


def test_error_is_scanned_selects_scalar():
    with pytest.raises(ValueError, match="selected by `is_scanned` but has no leading dimension"):
        nx.scan(lambda c, s: (c, None), L, is_scanned=True)(0.0, _x("l"), 3.0)


def test_error_carry_changes_axes():
    with pytest.raises(ValueError, match=r"carry must keep its structure and axes.*Axis\('e', 2\).*Axis\('f', 4\)"):
        nx.scan(lambda c, w: (nx.ones(F), None), L)(nx.ones(E), _x("le"))


def test_error_plain_carry_changes_shape_or_dtype():
    # jax.lax.scan refuses these with its own TypeError; namedax names the operation, the carry's
    # path and the shape/dtype in and out
    w = _x("le")
    with pytest.raises(TypeError, match="carry input and carry output must have equal types"):
        jax.lax.scan(lambda c, v: (c.astype(jnp.int32), None), jnp.zeros(2), w.array)
    with pytest.raises(ValueError, match=r"^scan over 'l': the carry must keep its shapes and dtypes; carry went "
                       r"in as float32\[2\] and came out as int32\[2\]"):
        nx.scan(lambda c, v: (c.astype(jnp.int32), None), L)(jnp.zeros(2), w)
    with pytest.raises(ValueError, match=r"^fold over 'l': .*carry\['h'\]\[1\] went in as float32\[2\] and "
                       r"came out as float32\[3\]"):
        nx.fold(lambda c, v: {"h": (c["h"][0], jnp.zeros(3))}, L)({"h": (0.0, jnp.zeros(2))}, w)
    # a NamedArray carry is checked the same way (its axes by the structure, its dtype here)
    with pytest.raises(ValueError, match=r"^fold over 'l': .*carry \(axes \(Axis\('e', 2\),\)\) went in as "
                       r"int32\[2\] and came out as float32\[2\]"):
        nx.fold(lambda c, v: c + v, L)(nx.zeros(E, dtype=jnp.int32), w)
    # as in jax.lax.scan, a weakly typed carry (a Python scalar) may be promoted
    ref = jax.lax.scan(lambda c, v: (c + v.sum(), None), 0, w.array)[0]
    np.testing.assert_allclose(nx.fold(lambda c, v: c + v.array.sum(), L)(0, w), ref)


def test_error_output_has_axis():
    with pytest.raises(ValueError, match="include the looped axis 'l'"):
        nx.scan(lambda c, w: (c, nx.ones(L)), L)(0.0, _x("le"))
    with pytest.raises(ValueError, match="include the looped axis 'l'"):
        nx.map(lambda w: nx.ones(L), L)(_x("le"))


def test_error_bad_arguments():
    with pytest.raises(TypeError, match="`remat` must be False, True or a jax.checkpoint policy"):
        nx.scan(_step, L, remat="x")
    with pytest.raises(ValueError, match="`batch_size` must be a positive int"):
        nx.map(lambda v: v, L, batch_size=0)
    with pytest.raises(TypeError, match="`axis` must be one Axis or axis name"):
        nx.map(lambda v: v, (L, E))
    with pytest.raises(TypeError, match="must return a pair"):
        nx.scan(lambda c, w: c, L)(0.0, _x("le"))
    with pytest.raises(TypeError, match="`fn` must be callable"):
        nx.scan(3, L)


def test_errors_name_the_function_called_and_its_parameters():
    # DESIGN "Errors": the message names the operation the user called (fold is a scan underneath,
    # map has `is_mapped`, not `is_scanned`) and fold's errors name f's parameters
    with pytest.raises(ValueError, match=r"^fold: axis 'l' has size 3 from argument 'w'.*argument 'p' \(shape"):
        nx.fold(lambda c, w, p: c, "l")(0.0, _x("le"), jnp.ones(4))
    with pytest.raises(ValueError, match=r"^fold over 'l': the carry must keep its structure"):
        nx.fold(lambda c, w: nx.ones(F), L)(nx.ones(E), _x("le"))
    with pytest.raises(ValueError, match=r"^fold: no argument has axis 'zz'"):
        nx.fold(lambda c: c, "zz")(0.0)
    with pytest.raises(TypeError, match=r"^fold: `fn` must be callable"):
        nx.fold(3, L)
    with pytest.raises(ValueError, match=r"^map: argument 's' \(float\) is selected by `is_mapped`"):
        nx.map(lambda w, s: w, L, is_mapped=True)(_x("le"), 3.0)
    with pytest.raises(ValueError, match=r"^map: .*leading dimension size 4; pass is_mapped=\.\.\. to leave it whole"):
        nx.map(lambda w, p: w, L)(_x("le"), jnp.ones(4))


# ---------------------------------------------------------------------------------------------
# Issue 14: eager calls reuse their trace; one name per option (old names kept); state= on the loops
# ---------------------------------------------------------------------------------------------


def test_eager_calls_reuse_the_trace():
    traces = []

    def step(h, w):
        traces.append(1)
        return h * w, h["e", 0]

    def fstep(h, w):
        traces.append(1)
        return h * w

    def mstep(w):
        traces.append(1)
        return w * 2.0

    for make, call in [
        (lambda: nx.scan(step, "l"), lambda g, x: g(nx.ones(E), x)),
        (lambda: nx.fold(fstep, "l"), lambda g, x: g(nx.ones(E), x)),
        (lambda: nx.map(mstep, "l"), lambda g, x: g(x)),
    ]:
        traces.clear()
        g = make()
        for seed in range(3):  # new values, same structure: one trace
            call(g, _x("le", seed))
        call(make(), _x("le", 3))  # the same function through a new wrapper: still cached
        assert len(traces) == 1, len(traces)
        call(g, nx.named(jnp.ones((5, 2)), ("l", "e")))  # another shape: traced again
        assert len(traces) == 2, len(traces)
    # the cached result is the right one (a Python loop as reference)
    w = _x("le", 5)
    got = nx.fold(lambda h, w: h * w + 1.0, L)(nx.ones(E), w)
    ref = np.ones(2, np.float32)
    for i in range(3):
        ref = ref * np.asarray(w.array[i]) + 1.0
    np.testing.assert_allclose(np.asarray(got.array), ref, rtol=1e-6)


def test_old_option_names_are_aliases():
    w, h0 = _x("le"), _x("e", seed=1)
    ref_h, ref_ys = nx.scan(_step, L)(h0, w)
    for kw in [dict(f=_step), dict(fn=_step)]:
        h, ys = nx.scan(axis=L, **kw)(h0, w)
        np.testing.assert_allclose(np.asarray(h.array), np.asarray(ref_h.array))
    pol = jax.checkpoint_policies.nothing_saveable
    opts_list = [dict(remat=True), dict(gradient_checkpointing=True), dict(remat=pol), dict(gradient_checkpointing=pol)]
    for opts in opts_list:
        g = jax.grad(lambda w: nx.scan(_step, L, **opts)(h0, w)[0].sum().array)(w)
        rg = jax.grad(lambda a: jax.lax.scan(_step_pos, h0.array, a)[0].sum())(w.array)
        np.testing.assert_allclose(np.asarray(g.array), np.asarray(rg), rtol=1e-5)
    plain = jnp.arange(6.0).reshape(3, 2)
    for opts in [dict(is_scanned=False), dict(default=None)]:  # the plain array goes whole to each step
        _, ys = nx.scan(lambda c, p: (c, p.sum()), L, **opts)(0.0, plain)
        np.testing.assert_allclose(np.asarray(ys), [15.0, 15.0, 15.0])
    # default speaks vmap's spec language: slice a plain array along its second dimension
    _, ys = nx.scan(lambda c, p: (c, p.sum()), L, default=1)(0.0, plain.T)
    np.testing.assert_allclose(np.asarray(ys), np.asarray(plain.sum(axis=1)))
    for opts in [dict(is_mapped=lambda x: False), dict(default=None)]:
        y = nx.map(lambda v, p: v * p.sum(), L, **opts)(_x("l"), plain)
        np.testing.assert_allclose(np.asarray(y.array), np.asarray(_x("l").array) * 15.0, rtol=1e-6)
    assert nx.fold(f=lambda c, v: c + v, axis=L)(0.0, jnp.arange(3.0)) == 3.0
    with pytest.raises(TypeError, match="`default` and `is_scanned` are the same option"):
        nx.scan(_step, L, default=None, is_scanned=False)
    with pytest.raises(TypeError, match="`gradient_checkpointing` and `remat` are the same option"):
        nx.scan(_step, L, remat=True, gradient_checkpointing=True)
    with pytest.raises(TypeError, match="`gradient_checkpointing` must be False, True"):
        nx.fold(_step, L, gradient_checkpointing="yes")


def test_scan_and_fold_thread_a_state_like_a_python_loop():
    w, h0 = _x("le"), _x("e", seed=1)

    def step(h, w, st):
        new = {"n": st["n"] + 1, "total": st["total"] + w}
        return (h * w + 1.0, h["e", 0]), new

    st0 = {"n": jnp.array(0), "total": nx.zeros(E)}
    (h, ys), st = nx.scan(step, L, state="st")(h0, w, st0)
    rh, rst, rys = np.asarray(h0.array), {"n": 0, "total": np.zeros(2, np.float32)}, []
    for i in range(3):
        wi = np.asarray(w.array[i])
        rys.append(rh[0])
        rh = rh * wi + 1.0
        rst = {"n": rst["n"] + 1, "total": rst["total"] + wi}
    np.testing.assert_allclose(np.asarray(h.array), rh, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ys.array), rys, rtol=1e-6)
    assert int(st["n"]) == 3 and st["total"].axes == (E,)
    np.testing.assert_allclose(np.asarray(st["total"].array), rst["total"], rtol=1e-6)
    # fold, the state by position (the carry is parameter 0) and as an eqx.nn.State found by type
    h2, st2 = nx.fold(lambda h, w, st: (h * w + 1.0, step(h, w, st)[1]), L, state=2)(h0, w, st0)
    np.testing.assert_allclose(np.asarray(h2.array), rh, rtol=1e-6)
    assert int(st2["n"]) == 3
    with pytest.raises(ValueError, match="`state=0` names the carry"):
        nx.fold(lambda h, w: h, L, state=0)(h0, w)
    with pytest.raises(ValueError, match=r"^fold over 'l': the state 'st' must keep its structure and axes"):
        nx.fold(lambda h, w, st: (h, {"n": st["n"], "total": nx.zeros(F)}), L, state="st")(h0, w, st0)
