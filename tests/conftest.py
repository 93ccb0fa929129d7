import jax
import numpy as np
import pytest
from hypothesis import settings

# Property tests: a few hundred examples per family, no deadline (first calls compile).
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True)
settings.load_profile("ci")


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# tests/multidevice/ needs forced devices: tests/test_multidevice.py runs it in subprocesses.
collect_ignore = [] if jax.device_count() >= 4 else ["multidevice"]
