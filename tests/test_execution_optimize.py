"""nx.execution.optimize: multi-start optimisation against hand-written jax.vmap over optax loops.

The references below are written from the documented reparametrisation (sigmoid for [low, high],
softplus for one bound, identity for none) in plain jax and numpy, never from namedax's output.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

optax = pytest.importorskip("optax")

import namedax as nx  # noqa: E402
from namedax.execution import ModelError, OptimizeResults, ParallelExecution, optimize  # noqa: E402
from namedax.spaces import DataSpace, GridSpace, Parameter, UniformSpace  # noqa: E402


def rosenbrock(x, y, a=1.0, b=100.0):
    return (a - x) ** 2 + b * (y - x**2) ** 2


def hand_loop(f, opt, steps):
    """The hand-written reference: one optax loop over a tuple of unconstrained values."""

    def run(u0):
        def step(_, c):
            u, s = c
            upd, s = opt.update(jax.grad(f)(u), s, u)
            return optax.apply_updates(u, upd), s

        u, _ = jax.lax.fori_loop(0, steps, step, (u0, opt.init(u0)))
        return u, f(u)

    return jax.jit(jax.vmap(run))


def logit(f):
    return jnp.log(f) - jnp.log1p(-f)


# ---------------------------------------------------------------------------------------------
# Equal to the hand-written loop
# ---------------------------------------------------------------------------------------------


def test_unbounded_rosenbrock_equals_hand_written_vmap():
    starts = np.array([[-1.5, 2.0], [0.0, 0.0], [2.0, -1.0], [-0.5, 0.5], [1.2, 1.2], [0.3, -0.8]], np.float32)
    state = {"x": Parameter("x", starts[:, 0], free=True), "y": Parameter("y", starts[:, 1], free=True),
             "b": Parameter("b", 10.0)}
    opt, steps = optax.adam(0.05), 2000
    res = optimize(lambda s: rosenbrock(s["x"], s["y"], b=s["b"]), DataSpace(state), optimizer=opt, steps=steps)
    (x, y), loss = hand_loop(lambda u: rosenbrock(u[0], u[1], b=10.0), opt, steps)(
        (jnp.asarray(starts[:, 0]), jnp.asarray(starts[:, 1])))
    pts = res.points()
    np.testing.assert_allclose(pts["x"].value, x, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(pts["y"].value, y, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(res.loss, loss, rtol=1e-5, atol=1e-7)
    # the known minimum (1, 1) is reached from every start
    np.testing.assert_allclose(pts["x"].value, 1.0, atol=2e-2)
    np.testing.assert_allclose(pts["y"].value, 1.0, atol=4e-2)
    assert np.all(res.loss < 1e-3)


def test_bounded_grid_equals_hand_written_sigmoid_loop():
    """Two wells at x = -1 and x = 2 inside [-3, 3]; a hand loop over u = logit((x - low) / span)."""
    lo, hi, n, steps = -3.0, 3.0, 9, 300
    opt = optax.adam(0.1)
    state = {"x": Parameter("x", 0.0, low=lo, high=hi, free=True), "w": Parameter("w", 1.0)}

    def well(x, w=1.0):
        return w * (x + 1) ** 2 * (x - 2) ** 2

    res = optimize(lambda s: well(s["x"], s["w"]), GridSpace(state, n=n), optimizer=opt, steps=steps)
    x0 = np.linspace(lo, hi, n, dtype=np.float32)
    frac = jnp.clip((x0 - lo) / (hi - lo), 1e-6, 1 - 1e-6)  # starts on a bound begin 1e-6 inside

    def to_x(u):
        return jnp.clip(lo + (hi - lo) * jax.nn.sigmoid(u), lo, hi)

    (u,), loss = hand_loop(lambda u: well(to_x(u[0])), opt, steps)((logit(frac),))
    xs = res.points()["x"].value
    np.testing.assert_allclose(xs, to_x(u), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(res.loss, loss, rtol=1e-4, atol=1e-6)
    # every start ends in the well of its side (x = 0.5 is the ridge between them)
    np.testing.assert_allclose(xs, np.where(x0 < 0.5, -1.0, 2.0), atol=1e-3)
    assert np.all((xs >= lo) & (xs <= hi))


def test_half_bounds_use_softplus_and_stay_in_bounds():
    """low only: x = low + softplus(u); high only: x = high - softplus(u). The unconstrained minima
    (x = -5, y = 7) lie outside, so the optima press against the bounds without crossing them."""
    state = {"x": Parameter("x", jnp.array([0.5, 2.0, 4.0]), low=0.25, free=True),
             "y": Parameter("y", jnp.array([-1.0, 0.0, 1.5]), high=2.0, free=True)}
    opt, steps = optax.adam(0.05), 400

    def f(x, y):
        return (x + 5) ** 2 + (y - 7) ** 2

    res = optimize(lambda s: f(s["x"], s["y"]), DataSpace(state), optimizer=opt, steps=steps)
    sp_inv = lambda v: v + jnp.log(-jnp.expm1(-v))  # noqa: E731
    u0 = (sp_inv(jnp.array([0.5, 2.0, 4.0]) - 0.25), sp_inv(2.0 - jnp.array([-1.0, 0.0, 1.5])))
    (ux, uy), loss = hand_loop(lambda u: f(0.25 + jax.nn.softplus(u[0]), 2.0 - jax.nn.softplus(u[1])), opt,
                               steps)(u0)
    pts = res.points()
    np.testing.assert_allclose(pts["x"].value, 0.25 + jax.nn.softplus(ux), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pts["y"].value, 2.0 - jax.nn.softplus(uy), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.loss, loss, rtol=1e-5)
    assert np.all(pts["x"].value >= 0.25) and np.all(pts["y"].value <= 2.0)
    np.testing.assert_allclose(pts["x"].value, 0.25, atol=0.05)
    np.testing.assert_allclose(pts["y"].value, 2.0, atol=0.05)


def test_bounds_hold_for_a_minimum_outside_with_plain_sgd():
    """A large SGD step would jump far past the bounds without the reparametrisation."""
    state = {"a": Parameter("a", 0.0, low=0.0, high=1.0, free=True),
             "b": Parameter("b", 0.0, low=-2.0, high=-1.0, free=True)}
    space = UniformSpace(state, 16, key=jax.random.key(1))
    res = optimize(lambda s: 50.0 * (s["a"] - 3.0) ** 2 + 50.0 * s["b"] ** 2, space,
                   optimizer=optax.sgd(1.0), steps=50)
    pts = res.points()
    assert np.all((pts["a"].value >= 0.0) & (pts["a"].value <= 1.0))
    assert np.all((pts["b"].value >= -2.0) & (pts["b"].value <= -1.0))
    assert np.all(np.isfinite(res.loss))


def test_steps_zero_returns_the_starts_and_their_loss():
    """The round trip x -> u -> x of the reparametrisation is the identity (to float rounding) inside
    the bounds; a start on a bound comes back 1e-6 of the range inside it."""
    rng = np.random.default_rng(0)
    state = {"x": Parameter("x", rng.uniform(-1.0, 3.0, 20).astype(np.float32), low=-1.0, high=3.0, free=True),
             "y": Parameter("y", 0.5 + rng.exponential(2.0, 20).astype(np.float32), low=0.5, free=True)}
    space = DataSpace(state)
    f = lambda s: (s["x"] - 1.0) ** 2 + s["y"]  # noqa: E731
    res = optimize(f, space, optimizer=optax.adam(0.1), steps=0)
    start = space.points()
    np.testing.assert_allclose(res.points()["x"].value, start["x"].value, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(res.points()["y"].value, start["y"].value, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(res.loss, (start["x"].value - 1.0) ** 2 + start["y"].value, rtol=1e-4)
    on_bounds = GridSpace({"x": Parameter("x", 0.0, low=-1.0, high=3.0, free=True)}, n=3)
    grid = optimize(lambda s: s["x"] ** 2, on_bounds, optimizer=optax.sgd(0.1), steps=0)
    np.testing.assert_allclose(grid.points()["x"].value, [-1.0 + 4e-6, 1.0, 3.0 - 4e-6], rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# What stays fixed
# ---------------------------------------------------------------------------------------------


def test_fixed_leaves_are_left_alone():
    T = nx.Axis("t", 4)
    target = nx.named(jnp.array([0.5, 1.0, 1.5, 2.0]), (T,))
    data = jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # per-start data (a free plain array)
    state = {"k": Parameter("k", jnp.array([0.1, 1.0, 3.0]), low=0.0, high=5.0, free=True),
             "scale": Parameter("scale", 2.0),  # fixed Parameter: no gradient step may move it
             "target": target, "data": data, "name": "decay"}

    def loss(s):
        pred = s["k"] * nx.arange(T).astype(jnp.float32) * s["scale"] / 4
        return nx.sum((pred - s["target"]) ** 2).array + 0.0 * s["data"].sum()

    res = optimize(loss, DataSpace(state), optimizer=optax.adam(0.05), steps=400)
    for i in range(3):
        s = res[i]
        assert float(s["scale"]) == 2.0 and s["scale"].free is False
        assert s["target"] is target or np.array_equal(s["target"].array, target.array)
        np.testing.assert_array_equal(s["data"], data[i])
        assert s["name"] == "decay"
        assert (s["k"].low, s["k"].high, s["k"].free) == (0.0, 5.0, True)
    # the least-squares optimum: pred = k * t / 2 against target = (t + 1) / 2
    t = np.arange(4.0)
    k_star = np.sum(t * (t + 1)) / np.sum(t**2)
    np.testing.assert_allclose(res.points()["k"].value, k_star, rtol=1e-3)


def test_every_free_parameter_is_optimised_not_only_the_swept_ones():
    """A DataSpace with a free Parameter and per-point plain data: the data are not optimised."""
    xs = jnp.array([0.0, 1.0, 2.0, 3.0])
    state = {"m": Parameter("m", jnp.zeros(4), free=True), "obs": xs}
    res = optimize(lambda s: (s["m"] - s["obs"]) ** 2, DataSpace(state), optimizer=optax.adam(0.1), steps=300)
    np.testing.assert_allclose(res.points()["m"].value, xs, atol=1e-3)
    np.testing.assert_array_equal(res.points()["obs"], xs)


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


def test_results_sort_by_loss_nan_last():
    state = {"x": Parameter("x", jnp.array([3.0, -2.0, jnp.nan, 0.5, -4.0]), free=True)}
    res = optimize(lambda s: s["x"] ** 2, DataSpace(state), optimizer=optax.sgd(0.0), steps=2)
    assert isinstance(res, OptimizeResults) and len(res) == 5
    np.testing.assert_array_equal(res.argsort(), [3, 1, 0, 4, 2])  # numpy's order of the losses
    assert float(res.best()["x"]) == 0.5
    np.testing.assert_array_equal(res.best(3)["x"].value, [0.5, -2.0, 3.0])
    np.testing.assert_array_equal(res.loss, np.array([9.0, 4.0, np.nan, 0.25, 16.0], np.float32))
    assert float(res[-1]["x"]) == -4.0 and [float(s["x"]) for s in res][:2] == [3.0, -2.0]
    assert not res.loss.flags.writeable
    with pytest.raises(IndexError, match="out of range"):
        res[5]
    with pytest.raises(ValueError, match=r"`k` must be in \[1, 5\]"):
        res.best(0)
    with pytest.raises(TypeError, match="`k` must be an int"):
        res.best(1.5)
    assert "5 starts of DataSpace(data: 5); best loss 0.25" in repr(res)


def test_results_named_grid_and_to_space():
    state = {"a": Parameter("a", 0.0, low=0.0, high=2.0, free=True),
             "b": Parameter("b", 0.0, low=-1.0, high=1.0, free=True), "c": 0.5}
    space = GridSpace(state, n={"a": 3, "b": 2})
    res = optimize(lambda s: (s["a"] - s["b"]) ** 2 * s["c"], space, optimizer=optax.adam(0.05), steps=5)
    out = res.named()
    assert out["loss"].axes == (nx.Axis("a", 3), nx.Axis("b", 2))
    assert set(out["values"]) == {"a", "b"}
    np.testing.assert_array_equal(out["values"]["b"].array.reshape(-1), res.points()["b"].value)
    np.testing.assert_array_equal(out["loss"].array.reshape(-1), res.loss)
    optima = res.to_space()
    assert optima.N == 6 and optima.axes == (nx.Axis("data", 6),)
    again = ParallelExecution(lambda s: (s["a"] - s["b"]) ** 2 * s["c"], optima).run()
    np.testing.assert_allclose(again[:], res.loss, rtol=1e-6)


def test_chunking_and_lbfgs():
    """Results do not depend on n_vmap; an optimizer taking extra arguments (L-BFGS) works."""
    state = {"x": Parameter("x", 0.0, low=-2.0, high=2.0, free=True),
             "y": Parameter("y", 0.0, low=-1.0, high=3.0, free=True)}
    space = UniformSpace(state, 11, key=jax.random.key(2))
    f = lambda s: rosenbrock(s["x"], s["y"], b=5.0)  # noqa: E731
    ref = optimize(f, space, optimizer=optax.adam(0.05), steps=50)
    for nv in (1, 4):
        other = optimize(f, space, optimizer=optax.adam(0.05), steps=50, n_vmap=nv)
        np.testing.assert_allclose(other.loss, ref.loss, rtol=1e-5, atol=1e-7)
    lb = optimize(f, space, optimizer=optax.lbfgs(), steps=60)
    np.testing.assert_allclose(lb.points()["x"].value, 1.0, atol=1e-2)
    assert np.all(lb.loss < 1e-4)


def test_args_and_kwargs_reach_the_loss():
    state = {"x": Parameter("x", jnp.array([-1.0, 4.0]), free=True)}
    res = optimize(lambda s, c, *, w: w * (s["x"] - c) ** 2, DataSpace(state), jnp.float32(1.5),
                   optimizer=optax.adam(0.1), steps=300, w=2.0)
    np.testing.assert_allclose(res.points()["x"].value, 1.5, atol=1e-3)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def _space():
    return GridSpace({"x": Parameter("x", 0.0, low=0.0, high=1.0, free=True)}, n=3)


def test_errors_name_the_operation():
    sp, opt = _space(), optax.adam(0.1)
    with pytest.raises(TypeError, match="optimize: `optimizer` must be an optax.GradientTransformation"):
        optimize(lambda s: s["x"] ** 2, sp, optimizer=lambda g: g, steps=3)
    with pytest.raises(ValueError, match=r"optimize: `loss` must return a real scalar .* shape \(2,\)"):
        optimize(lambda s: jnp.stack([s["x"], s["x"]]), sp, optimizer=opt, steps=3)
    with pytest.raises(ValueError, match="optimize: `loss` must return a real scalar"):
        optimize(lambda s: s["x"] > 0, sp, optimizer=opt, steps=3)
    with pytest.raises(ValueError, match="optimize: the space's state has no free Parameter"):
        optimize(lambda s: s["d"].sum(), DataSpace({"d": jnp.ones((3, 2))}), optimizer=opt, steps=3)
    with pytest.raises(TypeError, match="optimize: free Parameter 'n' .* int32"):
        optimize(lambda s: s["n"] * 1.0, DataSpace({"n": Parameter("n", jnp.arange(3), free=True)}),
                 optimizer=opt, steps=3)
    with pytest.raises(ValueError, match="optimize: `steps` must be >= 0, got -1"):
        optimize(lambda s: s["x"] ** 2, sp, optimizer=opt, steps=-1)
    with pytest.raises(TypeError, match="optimize: `steps` must be an int"):
        optimize(lambda s: s["x"] ** 2, sp, optimizer=opt, steps=2.5)
    with pytest.raises(TypeError, match="optimize: `loss` must be callable"):
        optimize(3.0, sp, optimizer=opt, steps=3)
    with pytest.raises(TypeError, match="optimize: `space` must be a space"):
        optimize(lambda s: s["x"] ** 2, {"x": 1.0}, optimizer=opt, steps=3)
    with pytest.raises(ValueError, match="optimize: `n_vmap`"):
        optimize(lambda s: s["x"] ** 2, sp, optimizer=opt, steps=3, n_vmap=0)


def test_a_loss_that_raises_is_named():
    def bad(s):
        raise RuntimeError("boom")

    with pytest.raises(ModelError, match="optimize: the loss raised on point 0 .*boom") as info:
        optimize(bad, _space(), optimizer=optax.adam(0.1), steps=3)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_missing_optax_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "optax", None)  # import optax now raises ImportError
    with pytest.raises(ModuleNotFoundError, match=r"optimize needs optax.*namedax\[optimize\]"):
        optimize(lambda s: s["x"] ** 2, _space(), optimizer=None, steps=3)


def test_checkpoint_resumes_and_refuses_other_settings(tmp_path):
    space = GridSpace({"x": Parameter("x", 0.0, low=-2.0, high=2.0, free=True)}, n=7)
    f = lambda s: (s["x"] - 0.3) ** 2  # noqa: E731
    first = optimize(f, space, optimizer=optax.adam(0.05), steps=100, checkpoint_dir=tmp_path)
    again = optimize(f, space, optimizer=optax.adam(0.05), steps=100, checkpoint_dir=tmp_path)
    np.testing.assert_array_equal(again.loss, first.loss)
    np.testing.assert_array_equal(again.points()["x"].value, first.points()["x"].value)
    with pytest.raises(ValueError, match="optimize: .* the same loss with other settings .*`steps` differs"):
        optimize(f, space, optimizer=optax.adam(0.05), steps=101, checkpoint_dir=tmp_path)


def test_vector_parameter_bounded_elementwise():
    target = np.array([0.2, -0.4, 1.7], np.float32)  # 1.7 lies past the upper bound
    starts = np.zeros((5, 3), np.float32) + np.linspace(-0.9, 0.9, 5, dtype=np.float32)[:, None]
    state = {"v": Parameter("v", starts, low=-1.0, high=1.0, free=True)}
    res = optimize(lambda s: jnp.sum((s["v"] - target) ** 2), DataSpace(state), optimizer=optax.adam(0.05),
                   steps=400)
    v = res.points()["v"].value
    assert v.shape == (5, 3) and np.all((v >= -1.0) & (v <= 1.0))
    np.testing.assert_allclose(v[:, :2], np.broadcast_to(target[:2], (5, 2)), atol=1e-3)
    assert np.all(v[:, 2] > 0.95)
    assert res.named()["values"]["v"].axes == (nx.Axis("data", 5), nx.Axis("dim_0", 3))
    with pytest.raises(TypeError, match="optimize: `progress` must be a bool"):
        optimize(lambda s: jnp.sum(s["v"]), DataSpace(state), optimizer=optax.adam(0.05), steps=1, progress=1)
