"""pmap with state over 2 of the 4 forced CPU devices, against jax.vmap (run by tests/test_multidevice.py)."""

import warnings

import equinox as eqx
import jax
import numpy as np
from jax.sharding import PartitionSpec as P

import namedax as nx

Dev, E = nx.Axis("devices", 2), nx.Axis("embed", 4)
DA = np.arange(8.0, dtype=np.float32).reshape(2, 4)
deltas = nx.named(DA, (Dev, E))


def update(delta, weights):
    weights = weights + delta
    return weights, weights


def pmap2(*args, **kwargs):  # the checks were written for two devices
    return nx.pmap(*args, devices=jax.devices()[:2], **kwargs)


def test_weights_undeclared_raises(devices):
    try:
        pmap2(update, Dev, state="weights")(deltas, nx.ones(E))
    except ValueError as e:
        assert "state entry 'weights' came in without axis 'devices'" in str(e), e
    else:
        raise AssertionError("no error")


def test_weights_batch_policy(devices):
    out, new = pmap2(update, Dev, state=1, unexpected_state="batch")(deltas, nx.ones(E))
    ref_out, ref_new = jax.vmap(update, in_axes=(0, None))(DA, np.ones(4, np.float32))
    assert new.axes == (Dev, E), new.axes
    np.testing.assert_allclose(new.array, ref_new)
    np.testing.assert_allclose(out.array, ref_out)
    assert {s.device.id for s in new.array.addressable_shards} == {0, 1}


def test_weights_declared_per_device_keep_layout(devices):
    wd = nx.named(np.ones((4, 2), np.float32), (E, Dev))
    out, new = pmap2(update, Dev, state="weights")(deltas, wd)
    ref_out, ref_new = jax.vmap(update, in_axes=(0, 1), out_axes=(0, 1))(DA, np.ones((4, 2), np.float32))
    assert new.axes == (E, Dev), new.axes
    np.testing.assert_allclose(new.array, ref_new)
    np.testing.assert_allclose(out.array, ref_out)


def test_weights_same_on_every_device_replicated(devices):
    def upd(delta, weights):
        weights = weights + nx.pmean(delta, Dev)
        return nx.sum(weights, axis=E), weights

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, new = pmap2(upd, Dev, state=1, unexpected_state="warn")(deltas, nx.ones(E))
    assert new.axes == (E,), new.axes
    np.testing.assert_allclose(new.array, 1 + DA.mean(0))
    assert new.array.sharding.spec == P(), new.array.sharding
    np.testing.assert_allclose(out.array, np.full(2, (1 + DA.mean(0)).sum()))


def test_per_element_state_over_blocks(devices):
    B8 = nx.Axis("batch", 8)
    x = nx.named(np.arange(8.0, dtype=np.float32), B8)
    out, new = pmap2(lambda v, s: (v, {"c": s["c"] + v, "n": s["n"] + nx.psum(v, B8)}), B8, state=1)(
        x, {"c": nx.named(np.ones(8, np.float32), B8), "n": nx.named(np.float32(0.0), ())}
    )
    np.testing.assert_allclose(new["c"].array, np.arange(8.0) + 1)
    assert new["n"].axes == () and float(new["n"].array) == 28.0


def test_batchnorm_statistics_over_every_device(devices):
    # nx.nn.BatchNorm averages a mapped axis with nx.pmean, which sees every device: per-device
    # blocks give the whole batch's statistics (eqx.nn.BatchNorm's jax.lax.pmean would not)
    B8, F = nx.Axis("batch", 8), nx.Axis("f", 3)
    x = nx.random.normal(jax.random.key(0), (B8, F)) * 2 + 1
    bn, state = eqx.nn.make_with_state(nx.nn.BatchNorm.init)(F, axis_name="batch", momentum=0.5)

    def clone(s):
        return jax.tree.map(lambda a: a, s)

    y, new = pmap2(bn, B8)(x, clone(state))
    xs = np.asarray(x.array)
    mu, var = xs.mean(0), xs.var(0)
    np.testing.assert_allclose(y.array, (xs - mu) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)
    m, v = new.get(bn.index)
    assert m.axes == (F,) and v.axes == (F,)
    np.testing.assert_allclose(m.array, 0.5 * mu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v.array, 0.5 + 0.5 * var, rtol=1e-5)
