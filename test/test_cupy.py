"""The CuPy device: moving tensors between devices, the errors, and the GPU itself.

The first part runs everywhere: moves between the NumPy and the reference devices go through
the same code as moves to and from the GPU (Tensor.to, .cpu(), the mixed-device error), and
CupyDevice must fail clearly without CuPy. The second part needs CuPy and an NVIDIA GPU and
skips, with the reason, without them; the whole suite runs on the GPU with --device cupy.
"""

import builtins
import sys

import numpy as np
import pytest
from conftest import cupy_unavailable
from helpers import assert_close, torch

import simplegrad as sg
from devices.reference import ReferenceDevice
from simplegrad import CupyDevice, NumpyDevice, Tensor

# ---- everywhere ----------------------------------------------------------------------------------

def test_to_moves_data_and_gradient_back():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x.to(ReferenceDevice())
    assert y.device == ReferenceDevice() and x.device == NumpyDevice()
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    (y * y).sum().backward()
    assert x.grad.device == NumpyDevice()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * x.numpy())


def test_to_same_device_and_dtype():
    x = Tensor(np.ones(3, np.float32))
    assert x.to(NumpyDevice()) is x and x.to("cpu") is x and x.cpu() is x
    z = x.to(ReferenceDevice(), np.float64)
    assert z.device == ReferenceDevice() and z.dtype == np.float64
    assert x.to(dtype=np.float64).dtype == np.float64
    back = z.cpu()
    assert back.device == NumpyDevice() and back.dtype == np.float64


def test_mixing_devices_says_how_to_move():
    x = Tensor(np.ones(3))
    y = Tensor(np.ones(3)).to(ReferenceDevice())
    with pytest.raises(RuntimeError, match=r"add: the operands are on two devices.*\.to\(device\)"):
        x + y


def test_to_rejects_unknown_device_names():
    with pytest.raises(TypeError, match="to: a device is a simplegrad Device, 'cpu' or 'cuda"):
        Tensor(np.ones(2)).to("tpu")


def test_cupy_device_without_cupy_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_cupy(name, *args, **kwargs):
        if name == "cupy" or name.startswith("cupy.") or name.startswith("cupyx"):
            raise ImportError(f"No module named '{name}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cupy)
    for module in [m for m in sys.modules if m == "cupy" or m.startswith(("cupy.", "cupyx"))]:
        monkeypatch.delitem(sys.modules, module)
    with pytest.raises(ImportError, match="CupyDevice needs CuPy and an NVIDIA GPU: pip install"):
        CupyDevice()
    with pytest.raises(ImportError, match="CupyDevice needs CuPy"):
        Tensor(np.ones(2)).to("cuda")


def test_importing_simplegrad_does_not_import_cupy():
    import subprocess
    code = "import sys, simplegrad; print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=sg.__file__.rsplit("/", 1)[0])
    assert out.stdout.strip() == "False"


# ---- on the GPU ----------------------------------------------------------------------------------

needs_gpu = pytest.mark.skipif(cupy_unavailable() is not None,
                               reason=f"CupyDevice: {cupy_unavailable()}")


@pytest.fixture
def gpu():
    previous = Tensor.device
    Tensor.device = CupyDevice()
    try:
        yield Tensor.device
    finally:
        Tensor.device = previous


def test_cupy_device_is_usable_here():
    """One visible skip on machines without a GPU (the CI), so the CPU run says so."""
    reason = cupy_unavailable()
    if reason:
        pytest.skip(f"CupyDevice: {reason}")
    import cupy
    assert isinstance(Tensor(np.ones(2), device=CupyDevice()).data, cupy.ndarray)


@needs_gpu
def test_numpy_data_lands_on_the_gpu(gpu):
    import cupy
    t = Tensor(np.arange(4.0))
    assert isinstance(t.data, cupy.ndarray) and t.device == gpu
    np.testing.assert_array_equal(t.cpu().numpy(), np.arange(4.0))
    assert isinstance(t.numpy(), np.ndarray)


@needs_gpu
def test_to_cuda_and_back_with_gradients():
    x = Tensor(np.linspace(-1, 1, 6), requires_grad=True)
    y = x.to("cuda:0")
    assert y.device == CupyDevice(0)
    (y.tanh() * 3).sum().backward()
    assert x.grad.device == NumpyDevice()
    np.testing.assert_allclose(x.grad.numpy(), 3 / np.cosh(x.numpy()) ** 2, rtol=1e-12)


@needs_gpu
def test_dlpack_with_cupy_and_torch_cuda_shares_memory(gpu):
    import cupy
    if not torch.cuda.is_available():
        pytest.skip("this torch has no CUDA")
    c = cupy.arange(5, dtype=cupy.float32)
    t = Tensor(c)
    assert t.data.data.ptr == c.data.ptr                # CuPy array in: no copy
    tt = torch.from_dlpack(t)
    assert tt.is_cuda and tt.data_ptr() == c.data.ptr  # out to torch: no copy
    back = Tensor(torch.arange(3.0, device="cuda"))
    assert isinstance(back.data, cupy.ndarray)


@needs_gpu
def test_torch_optimizer_bridge_on_the_gpu(gpu):
    if not torch.cuda.is_available():
        pytest.skip("this torch has no CUDA")
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((4, 3))
    x = rng.standard_normal((8, 4))
    w = Tensor(w0.copy(), requires_grad=True)
    params = sg.optim.torch_params([w])
    assert params[0].is_cuda and params[0].data_ptr() == w.data.data.ptr
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    tw = torch.tensor(w0.copy(), requires_grad=True)
    topt = torch.optim.SGD([tw], lr=0.1, momentum=0.9)
    for _ in range(5):
        opt.zero_grad()
        (Tensor(x) @ w).tanh().sum().backward()
        opt.step()
        topt.zero_grad()
        (torch.tensor(x) @ tw).tanh().sum().backward()
        topt.step()
    assert_close(w, tw, np.float64)


@needs_gpu
def test_pool_argmax_on_the_gpu_agrees_with_numpy(gpu):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 3, (4, 2, 3, 5)).astype(np.float64)
    x[1, 0, 0, :2] = x[3, 0, 0, 1:3] = np.nan
    ours = gpu.to_host(gpu.pool_argmax(gpu.array(x), 1))
    np.testing.assert_array_equal(ours, NumpyDevice().pool_argmax(x, 1))
