"""nx.pmap against jax.vmap / numpy on the positional equivalent.

Multi-device checks run in one subprocess with 4 forced CPU devices (the device count is fixed when
jax is imported); each check is a snippet that asserts against its own positional reference, and
reports PASS or its traceback, so each still shows up as its own test here.
"""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

import namedax as nx
from helpers import assert_named_close

# The multi-device checks are in tests/multidevice/test_pmap.py.


# ---------------------------------------------------------------------------------------------
# In this process (one device unless the harness forces more: sizes below divide 1, 2, 4 and 8)
# ---------------------------------------------------------------------------------------------

B, E = nx.Axis("batch", 8), nx.Axis("embed", 3)
XA = jnp.arange(24.0).reshape(3, 8) - 4.0
X = nx.named(XA, (E, B))


def test_single_device_matches_vmap():
    y = nx.pmap(lambda v: v * nx.axis_index(B) - nx.pmean(v, B), B)(X)
    ref = jax.vmap(lambda v: v * jax.lax.axis_index("b") - jax.lax.pmean(v, "b"), in_axes=1, axis_name="b")(XA)
    assert_named_close(y, ref, ("batch", "embed"))
    one = nx.pmap(lambda v: v * 2, B, devices=jax.devices()[:1])(X)
    assert one.array.sharding.device_set == {jax.devices()[0]}
    assert_named_close(one, 2 * XA.T, ("batch", "embed"))


def test_traced_once_and_cached():
    calls = []

    def f(v):
        calls.append(1)
        return v + 1

    g = nx.pmap(f, B)
    g(X)
    y = g(X + 1.0)
    assert len(calls) == 1
    assert_named_close(y, XA.T + 2.0, ("batch", "embed"))


def test_outputs_plain_and_static():
    a, s, none = nx.pmap(lambda a: (a * 2, "tag", None), B)(jnp.arange(8.0))
    np.testing.assert_array_equal(a, 2 * jnp.arange(8.0))
    assert (s, none) == ("tag", None)


def test_errors():
    with pytest.raises(ValueError, match=r"pmap: splits exactly one axis over the devices, got \['batch', 'embed'\]"):
        nx.pmap(lambda v: v, (B, E))
    with pytest.raises(TypeError, match=r"pmap: `fn` must be callable"):
        nx.pmap(3, B)
    with pytest.raises(TypeError, match=r"pmap: `axis` is required"):
        nx.pmap(lambda v: v)
    with pytest.raises(TypeError, match=r"pmap: `axis` is required, e.g. @nx.pmap"):
        nx.pmap()
    with pytest.raises(ValueError, match=r"pmap: `devices` is empty"):
        nx.pmap(lambda v: v, B, devices=[])
    with pytest.raises(TypeError, match=r"pmap: spec args\[0\] must be"):
        nx.pmap(lambda v: v, B, args=("x",))
    with pytest.raises(ValueError, match=r"pmap: `kwargs` has specs for \['nope'\]"):
        nx.pmap(lambda v: v, B, kwargs={"nope": 0})


def test_call_errors():
    f = nx.pmap(lambda v, w: v, "batch")
    msg = r"pmap: axis 'batch' has size 4 in argument 'w' \(shape \(4,\)\), but size 8 in argument 'v'"
    with pytest.raises(ValueError, match=msg):
        f(X, jnp.zeros(4))
    msg = r"pmap: axis 'batch' has size 8 in argument 'v' .*, but size 4 in the given Axis\('batch', 4\)"
    with pytest.raises(ValueError, match=msg):
        nx.pmap(lambda v: v, nx.Axis("batch", 4))(X)
    with pytest.raises(ValueError, match=r"pmap: no argument has axis 'batch', so its size is unknown"):
        nx.pmap(lambda: 1.0, "batch")()
    with pytest.raises(ValueError, match=r"pmap: argument 's' is a str, not an array, but its spec \(args\[0\]\)"):
        nx.pmap(lambda s: s, B, args=(0,))("hello")
    with pytest.raises(ValueError, match=r"pmap: argument 'a' of shape \(8,\) has no dimension 1 to map over"):
        nx.pmap(lambda a: a, B, args=(1,))(jnp.zeros(8))
