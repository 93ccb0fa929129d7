"""Per-point random keys (execution/_keys.py): ``key=`` gives point i ``jax.random.fold_in(key, i)``,
bitwise equal to a Python loop whatever n_vmap, block sizes or a checkpoint resume."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from namedax.execution import ParallelExecution, SequentialExecution, point_key
from namedax.execution import _engine as _e
from namedax.execution import _keys as _k
from namedax.spaces import GridSpace, Parameter, UniformSpace

KEY = jax.random.key(42)


def P(name, low, high):
    return Parameter(name, 0.0, low=low, high=high, free=True)


SPACE = GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", -1.0, 1.0)}, n={"a": 5, "b": 7})  # 35 points


def noisy(state, scale, *, key):
    # the draws are returned as drawn: arithmetic on them may round differently when fused by XLA
    k1, k2 = jax.random.split(key)
    return {"x": jax.random.normal(k1, (3,)), "bits": jax.random.bits(k2, (2,)), "y": jax.random.uniform(key),
            "ab": jnp.stack([state["a"], state["b"] * scale])}


def loop_reference(model, space, key, *args, fold=jax.random.fold_in):
    """The outputs of a Python loop calling the model on point i with fold_in(key, i), stacked."""
    outs = [model(space[i], *args, key=fold(key, i)) for i in range(space.N)]
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *outs)


def assert_bitwise(results, ref):
    got = results[:]
    assert jax.tree.structure(got) == jax.tree.structure(ref)
    for g, r in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
        np.testing.assert_array_equal(g, r)


def data(k):
    return np.asarray(jax.random.key_data(k))


def test_keys_bitwise_against_a_loop_for_any_n_vmap():
    ref = loop_reference(noisy, SPACE, KEY, 0.5)
    for n_vmap in (1, 3, 7, 35, None):  # 3 and 7 leave padding at the end
        assert_bitwise(ParallelExecution(noisy, SPACE, 0.5, key=KEY, n_vmap=n_vmap, progress=False).run(), ref)
    assert_bitwise(SequentialExecution(noisy, SPACE, 0.5, key=KEY, progress=False).run(), ref)


def test_keys_bitwise_with_small_calls(monkeypatch):
    monkeypatch.setattr(_e, "_CALL_SECONDS", 0.0)  # one chunk per call: the calls' first indices differ
    ref = loop_reference(noisy, SPACE, KEY, 0.5)
    assert_bitwise(ParallelExecution(noisy, SPACE, 0.5, key=KEY, n_vmap=2, progress=False).run(), ref)


def test_keys_of_a_uniform_space_and_a_legacy_key():
    space = UniformSpace({"a": P("a", 0.0, 1.0), "b": P("b", -1.0, 1.0)}, 11, jax.random.key(3))
    ref = loop_reference(noisy, space, KEY, 1.0)
    assert_bitwise(ParallelExecution(noisy, space, 1.0, key=KEY, n_vmap=4).run(), ref)
    legacy = jax.random.PRNGKey(7)

    def model(state, key):
        assert key.dtype == jnp.uint32 and key.shape == (2,)  # a legacy key stays legacy for the model
        return state["a"] + jax.random.uniform(key)

    ref = loop_reference(model, space, legacy)
    assert_bitwise(ParallelExecution(model, space, key=legacy, n_vmap=3).run(), ref)
    assert_bitwise(SequentialExecution(model, space, key=legacy, progress=False).run(), ref)
    # a legacy key draws the same numbers as the typed key of the same data
    typed = jax.random.wrap_key_data(legacy)
    out = ParallelExecution(lambda s, key: s["a"] + jax.random.uniform(key), space, key=typed, n_vmap=3).run()
    np.testing.assert_array_equal(out[:], ref)


def test_untraceable_model_gets_the_same_keys():
    def model(state, *, key):
        x = jax.random.uniform(key)
        if float(state["a"]) > 0.5:  # Python control flow: SequentialExecution runs it without jit
            return x + 1.0
        return x

    ref = np.array([float(jax.random.uniform(jax.random.fold_in(KEY, i))) + (float(SPACE[i]["a"].value) > 0.5)
                    for i in range(SPACE.N)], np.float32)
    np.testing.assert_array_equal(SequentialExecution(model, SPACE, key=KEY, progress=False).run()[:], ref)


def test_keys_survive_a_checkpoint_resume(tmp_path, monkeypatch):
    monkeypatch.setattr(_e, "_CALL_SECONDS", 0.0)  # one chunk per call: many blocks
    d = tmp_path / "ck"
    ref = loop_reference(noisy, SPACE, KEY, 0.5)
    assert_bitwise(ParallelExecution(noisy, SPACE, 0.5, key=KEY, n_vmap=4, checkpoint_dir=d).run(), ref)
    blocks = sorted(f for f in os.listdir(d) if f.startswith("block-"))
    for f in blocks[1:4] + blocks[-1:]:
        os.unlink(d / f)
    # resumed with another chunk size: the recomputed points draw the same numbers
    assert_bitwise(ParallelExecution(noisy, SPACE, 0.5, key=KEY, n_vmap=3, checkpoint_dir=d).run(), ref)
    # another key, or none, is another sweep
    with pytest.raises(ValueError, match="another random `key`"):
        ParallelExecution(noisy, SPACE, 0.5, key=jax.random.key(1), checkpoint_dir=d).run()

    def maybe_keyed(state, scale, key=None):
        return noisy(state, scale, key=KEY if key is None else key)

    ParallelExecution(maybe_keyed, SPACE, 0.5, key=KEY, checkpoint_dir=tmp_path / "ck2").run()
    with pytest.raises(ValueError, match="another random `key` \\(a different key then, no key now\\)"):
        ParallelExecution(maybe_keyed, SPACE, 0.5, checkpoint_dir=tmp_path / "ck2").run()


def test_point_key_definition_past_2_to_the_32():
    for i in (0, 1, 2**31, 2**32 - 1):
        np.testing.assert_array_equal(data(point_key(KEY, i)), data(jax.random.fold_in(KEY, i)))
    for i in (2**32, 2**32 + 5, 3 * 2**32 + 2**31, 2**63 - 1):
        ref = jax.random.fold_in(jax.random.fold_in(KEY, i >> 32), i & 0xFFFFFFFF)
        np.testing.assert_array_equal(data(point_key(KEY, i)), data(ref))
    with pytest.raises(ValueError, match=r"point_key: `index` must be in \[0, 2\*\*63\)"):
        point_key(KEY, -1)


def test_device_keys_carry_into_the_high_word_and_clamp():
    first, last = 2**32 - 3, 2**32 + 2
    got = jax.jit(lambda k, f: _k.keys_at(k, f, 1, 8, last, True))(KEY, _k.encode(first))
    want = [point_key(KEY, min(i, last)) for i in range(first + 1, first + 9)]  # past the last: the last
    np.testing.assert_array_equal(data(got), np.stack([data(k) for k in want]))


def test_keys_past_2_to_the_32_in_a_sweep():
    space = GridSpace({"a": P("a", 0.0, 1.0), "b": P("b", 0.0, 1.0)}, n=70_000)  # 4.9e9 points

    def model(state, key):
        return jax.random.bits(key, (2,))

    dyn, static = _e.split(model, (), {})
    layout, arr = _e.output_layout(static, space, dyn, KEY)
    sweep = _e.Sweep("test", static, space, dyn, arr, 4, 2, tuple(jax.devices()[:1]), KEY)
    got = {}
    sweep.run([(2**32 - 3, 2**32 + 3), (space.N - 5, space.N)],
              lambda start, count, host: got.update({start + j: host[0][j] for j in range(count)}))
    assert sorted(got) == list(range(2**32 - 3, 2**32 + 3)) + list(range(space.N - 5, space.N))
    for i, row in got.items():
        np.testing.assert_array_equal(row, np.asarray(jax.random.bits(point_key(KEY, i), (2,))))


def test_key_errors():
    def no_key(state):
        return state["a"]

    with pytest.raises(TypeError, match=r"ParallelExecution: `key` is given.*model .*no_key\(state\) takes no "
                                        r"keyword argument `key`"):
        ParallelExecution(no_key, SPACE, key=KEY)
    with pytest.raises(TypeError, match="SequentialExecution: `key` is given.*no keyword argument `key`"):
        SequentialExecution(no_key, SPACE, key=KEY)

    def positional_only(state, key, /):
        return state["a"]

    with pytest.raises(TypeError, match="no keyword argument `key`"):
        ParallelExecution(positional_only, SPACE, key=KEY)
    ParallelExecution(lambda s, **kw: s["a"], SPACE, key=KEY)  # **kwargs takes it
    with pytest.raises(TypeError, match=r"ParallelExecution: `key` must be a jax random key .*got float32\[\]"):
        ParallelExecution(noisy, SPACE, 1.0, key=jnp.float32(0))
    with pytest.raises(TypeError, match="`key` must be a jax random key.*got int"):
        ParallelExecution(noisy, SPACE, 1.0, key=0)
    with pytest.raises(ValueError, match=r"`key` must be a single key, got a key array of shape \(2,\)"):
        ParallelExecution(noisy, SPACE, 1.0, key=jax.random.split(KEY))
