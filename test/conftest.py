"""Test configuration: every test that uses the `device` fixture runs once per selected device.

    pytest                         # NumPy and the reference device (twelve primitives only)
    pytest --device numpy          # one device
    pytest --device cupy           # the GPU, through CuPy (skipped, with the reason, without)
    SIMPLEGRAD_TEST_DEVICES=reference pytest
"""

import functools
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import simplegrad  # noqa: E402
from devices.reference import ReferenceDevice  # noqa: E402

DEVICES = {
    "numpy": simplegrad.NumpyDevice,
    "reference": ReferenceDevice,
    "cupy": simplegrad.CupyDevice,
}
DEFAULT_DEVICES = ["numpy", "reference"]  # cupy only when asked for: CI has no GPU


@functools.lru_cache(maxsize=None)
def cupy_unavailable():
    """Why CupyDevice cannot run here (no CuPy, or no GPU), or None when it can."""
    try:
        simplegrad.CupyDevice()
    except ImportError:
        return "CuPy is not installed (pip install cupy-cuda12x, on a machine with a GPU)"
    except Exception as e:  # CuPy without a usable GPU or driver
        return f"CuPy cannot use a GPU here: {type(e).__name__}: {e}"
    return None


def pytest_addoption(parser):
    parser.addoption("--device", action="append", choices=sorted(DEVICES), default=None,
                     help="device to run the suite on (repeatable; default: all of them)")


def _selected(config):
    chosen = config.getoption("--device")
    if chosen:
        return chosen
    env = os.environ.get("SIMPLEGRAD_TEST_DEVICES")
    return env.split(",") if env else list(DEFAULT_DEVICES)


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", _selected(metafunc.config), indirect=True)


@pytest.fixture(autouse=True, scope="session")
def _torch_on_one_thread():
    """The suite's tensors are tiny: torch's worker threads only add waiting (ten times the
    run time on a busy 2-core machine), and one thread keeps its results deterministic."""
    try:
        import torch
    except ImportError:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def device(request):
    """Make request.param the default device for the duration of one test."""
    previous = simplegrad.Tensor.device
    if request.param == "cupy":
        reason = cupy_unavailable()
        if reason:
            pytest.skip(f"--device cupy: {reason}")
    dev = DEVICES[request.param]()
    simplegrad.Tensor.device = dev
    try:
        yield dev
    finally:
        simplegrad.Tensor.device = previous
