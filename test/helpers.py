"""The one helper that compares simplegrad with PyTorch, forward and backward.

Rules that PyTorch cannot mirror (unbind's hub, overlapping windows, custom ops) are checked
against finite differences instead, with simplegrad.gradcheck (test/test_gradcheck.py)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the reference implementation, PyTorch, is needed")

import simplegrad as sg  # noqa: E402

# (rtol, atol) per dtype: float64 is compared tightly, float32 loosely.
TOLERANCES = {np.float64: (1e-9, 1e-11), np.float32: (2e-4, 2e-5)}
# On the GPU, float32 reductions and cuBLAS products sum in another order than the CPU
# reference (torch on the CPU): twice the CPU's float32 tolerances there.
GPU_TOLERANCES = {np.float64: (1e-9, 1e-11), np.float32: (4e-4, 4e-5)}


def assert_close(actual, expected, dtype=np.float64, rtol=None, atol=None, what="value"):
    """Compare a simplegrad tensor (or array) with a torch tensor (or array)."""
    table = GPU_TOLERANCES if sg.Tensor.device.name == "cupy" else TOLERANCES
    default_rtol, default_atol = table[np.dtype(dtype).type]
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    expected = expected.detach().numpy() if isinstance(expected, torch.Tensor) else expected
    actual = np.asarray(actual.detach() if isinstance(actual, sg.Tensor) else actual)
    assert actual.shape == tuple(np.shape(expected)), \
        f"{what}: shape {actual.shape} != torch's {tuple(np.shape(expected))}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def assert_same(out, ref, what="value"):
    """A simplegrad result equal to torch's exactly: shape, dtype and every element (integer
    results, indices, selections)."""
    ref = ref.detach().numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref)
    out = np.asarray(out.detach() if isinstance(out, sg.Tensor) else out)
    assert out.shape == ref.shape, f"{what}: shape {out.shape}, torch's {ref.shape}"
    assert out.dtype == ref.dtype, f"{what}: dtype {out.dtype}, torch's {ref.dtype}"
    np.testing.assert_array_equal(out, ref, err_msg=what)


def check(fn, shapes, torch_fn=None, dtype=np.float64, low=-2.0, high=2.0, inputs=None,
          rtol=None, atol=None, seed=0, grad=True):
    """Run fn on simplegrad tensors and torch_fn (default: fn) on torch tensors made from the
    same random arrays; compare outputs and, with a random upstream gradient, every input's
    gradient. `inputs` gives the arrays directly instead of `shapes`."""
    rng = np.random.default_rng(seed)
    if inputs is None:
        inputs = [rng.uniform(low, high, size=shape) for shape in shapes]
    inputs = [np.asarray(a, dtype=dtype) for a in inputs]
    sg_in = [sg.Tensor(a.copy(), requires_grad=grad) for a in inputs]
    t_in = [torch.tensor(a.copy(), requires_grad=grad) for a in inputs]
    out = fn(*sg_in)
    ref = (torch_fn or fn)(*t_in)
    assert_close(out, ref, dtype, rtol, atol, what="forward")
    if not grad:
        return out
    upstream = rng.standard_normal(tuple(ref.shape)).astype(dtype)
    out.backward(sg.Tensor(upstream))
    ref.backward(torch.tensor(upstream))
    for i, (a, b) in enumerate(zip(sg_in, t_in)):
        if b.grad is None:
            assert a.grad is None or not np.any(np.asarray(a.grad)), f"input {i}: torch has none"
            continue
        assert a.grad is not None, f"input {i}: no gradient, torch has one"
        assert_close(a.grad, b.grad, dtype, rtol, atol, what=f"gradient of input {i}")
    return out


def assert_param_grads_close(module, torch_module, dtype=np.float64):
    """The two modules have the same parameter names, in torch's order, and every simplegrad
    parameter has a gradient equal to torch's."""
    names = [name for name, _ in module.named_parameters()]
    assert names == [name for name, _ in torch_module.named_parameters()]
    for (name, p), (_, tp) in zip(module.named_parameters(), torch_module.named_parameters()):
        assert p.grad is not None, f"{name}: no gradient"
        assert_close(p.grad, tp.grad, dtype, what=f"gradient of {name}")


def compare_outputs_and_backward(outs, refs, seed=0):
    """Compare each output with torch's (None in both is allowed), then backpropagate one
    random upstream gradient per output through both libraries."""
    assert len(outs) == len(refs), f"{len(outs)} outputs, torch has {len(refs)}"
    rng = np.random.default_rng(seed)
    s_loss = t_loss = 0
    for i, (out, ref) in enumerate(zip(outs, refs)):
        assert (out is None) == (ref is None), f"output {i}: None in one library only"
        if ref is None:
            continue
        assert_close(out, ref, what=f"output {i}")
        upstream = rng.standard_normal(tuple(ref.shape))
        s_loss = s_loss + (out * sg.Tensor(upstream)).sum()
        t_loss = t_loss + (ref * torch.tensor(upstream)).sum()
    s_loss.backward()
    t_loss.backward()
