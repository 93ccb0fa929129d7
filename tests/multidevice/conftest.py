"""Tests that need several devices: run by tests/test_multidevice.py, one subprocess per file, with
``--xla_force_host_platform_device_count=4`` set before jax is imported.

Run one file by hand with::

    XLA_FLAGS=--xla_force_host_platform_device_count=4 pytest tests/multidevice/test_pmap.py

In a run without forced devices (the plain ``pytest``) this folder is not collected: see
``collect_ignore`` in tests/conftest.py.
"""

import pathlib
import sys

import jax
import pytest

N_DEVICES = 4


@pytest.fixture(scope="session")
def devices():
    assert jax.device_count() == N_DEVICES, "run with XLA_FLAGS=--xla_force_host_platform_device_count=4"
    return jax.devices()


# tests/helpers.py sits one folder up
sys.path.insert(0, str(pathlib.Path(__file__).parent.parent))
