"""optimize on four devices: the same optima and losses whatever the chunking and the device count."""

import jax
import numpy as np
import pytest

optax = pytest.importorskip("optax")

from namedax.execution import optimize  # noqa: E402
from namedax.spaces import GridSpace, Parameter, UniformSpace  # noqa: E402


def loss(s, b):
    return (1.0 - s["x"]) ** 2 + b * (s["y"] - s["x"] ** 2) ** 2


def test_devices_and_chunking_do_not_change_the_optima(devices):
    state = {"x": Parameter("x", 0.0, low=-2.0, high=2.0, free=True),
             "y": Parameter("y", 0.0, low=-1.0, high=3.0, free=True)}
    for space in (UniformSpace(state, 13, key=jax.random.key(4)), GridSpace(state, n={"x": 3, "y": 5})):
        ref = optimize(loss, space, 5.0, optimizer=optax.adam(0.05), steps=200, n_vmap=1, n_pmap=1)
        for nv, npm in [(None, 4), (2, 4), (3, 2), (None, None)]:
            other = optimize(loss, space, 5.0, optimizer=optax.adam(0.05), steps=200, n_vmap=nv, n_pmap=npm)
            np.testing.assert_allclose(other.loss, ref.loss, rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(other.points()["x"].value, ref.points()["x"].value, rtol=1e-5, atol=1e-6)
        assert np.all((ref.points()["y"].value >= -1.0) & (ref.points()["y"].value <= 3.0))
