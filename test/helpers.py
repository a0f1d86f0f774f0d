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
    if rtol is None or atol is None:  # float16 has no defaults: its tests give both
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


# ---- large inputs in every float dtype -----------------------------------------------------------

FLOATS = [np.float16, np.float32, np.float64]
EPS = {dtype: float(np.finfo(dtype).eps) for dtype in FLOATS}  # 2^-10, 2^-23, 2^-52
# rtol (and atol) for results that both libraries round once from a more precise computation.
# float16: each computes in float32 and rounds once (torch's CPU kernels for half do), so each
# is within half an ulp of the exact value and the two within one ulp, at most eps relative:
# 2 eps = 2^-9 = 1.95e-3. float32 and float64: the exp, log, erf and tanh of NumPy and of torch
# are each within about 1.5 ulps of the exact values (measured with mpmath on these inputs):
# 4 eps = 4.8e-7 and 8.9e-16.
ULP_TOLERANCES = {np.float16: 2 * EPS[np.float16], np.float32: 4 * EPS[np.float32],
                  np.float64: 4 * EPS[np.float64]}
# |x| up to 1e5; in float16 (largest finite value 65504) up to 3e4, so that x - max is finite
LARGE_SCALES = {np.float16: [1e3, 3e4], np.float32: [1e3, 1e5], np.float64: [1e3, 1e5]}


def large_logits(scale, seed=0):
    """A (5, 7) array of logits: rows near +scale and near -scale, +-scale mixed with small
    ones, spread over [-scale, scale], and with a three-way tie at the maximum."""
    rng = np.random.default_rng(seed)
    return np.stack([scale + rng.uniform(-3, 3, 7), -scale + rng.uniform(-3, 3, 7),
                     [scale, -scale, 0.0, 1.0, scale - 0.5, 1.0 - scale, 2.0],
                     rng.uniform(-scale, scale, 7),
                     [scale, scale, scale - 1.0, -scale, 0.0, scale, 3.0]])


def in_float64(torch_fn):
    """torch_fn computed in float64 on the same inputs, its result (and so each gradient)
    rounded once to their dtype: the best a computation in that dtype can do."""
    return lambda *xs: torch_fn(*(x.double() for x in xs)).to(xs[0].dtype)
