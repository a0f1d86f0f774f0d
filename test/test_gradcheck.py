"""gradcheck and gradgradcheck: they pass on correct rules (on every device), find a wrong rule
and name its worst element, and insist on float64. The suite checks most rules against PyTorch
(helpers.check); gradcheck backs up those PyTorch cannot mirror (unbind's hub, overlapping
windows), tested here too."""

import re

import numpy as np
import pytest

import simplegrad as sg
from simplegrad import nn

pytestmark = pytest.mark.usefixtures("device")


def leaf(shape, seed=0, low=-1.0, high=1.0):
    rng = np.random.default_rng(seed)
    return sg.Tensor(rng.uniform(low, high, size=shape), requires_grad=True)


def distinct(shape, seed=0):
    """Values at least 0.1 apart (so max and max-pool have no near-ties within eps)."""
    rng = np.random.default_rng(seed)
    values = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 1.0
    return sg.Tensor(values.astype(np.float64), requires_grad=True)


# ---- correct rules pass ------------------------------------------------------------------------

def lstm_cell_case():
    sg.manual_seed(0)
    cell = nn.LSTMCell(2, 3).double()
    x, h, c = leaf((2, 2), 1), leaf((2, 3), 2), leaf((2, 3), 3)
    return (lambda x, h, c, *params: cell(x, (h, c))), (x, h, c, *cell.parameters())


CASES = {
    "matmul": lambda: (lambda a, b: a @ b, (leaf((2, 3), 1), leaf((3, 2), 2))),
    "tanh": lambda: (lambda a: a.tanh(), (leaf((2, 3)),)),
    "softmax": lambda: (lambda a: a.softmax(dim=1), (leaf((2, 4)),)),
    "conv2d": lambda: (lambda x, w, b: nn.functional.conv2d(x, w, b, padding=1),
                       (leaf((1, 2, 3, 3), 1), leaf((2, 2, 2, 2), 2), leaf((2,), 3))),
    "max_pool2d": lambda: (lambda x: nn.functional.max_pool2d(x, 2), (distinct((1, 1, 4, 4)),)),
    "lstm_cell": lstm_cell_case,
    "where": lambda: (lambda a, b: sg.where(sg.Tensor(np.array([[True, False, True]])), a, b),
                      (leaf((2, 3), 1), leaf((1, 3), 2))),
    "indexing": lambda: (lambda a: a[np.array([0, 2, 0]), 1:] * 2,
                         (leaf((3, 3)),)),
    "two_outputs": lambda: (lambda a, b: (a * b, (a - b).exp().sum()),
                            (leaf((2, 2), 1), leaf((2, 2), 2))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradcheck_passes(case):
    fn, inputs = CASES[case]()
    before = [x.numpy().copy() for x in inputs]
    assert sg.gradcheck(fn, inputs)
    for x, b in zip(inputs, before):  # the inputs are put back, and .grad is left alone
        np.testing.assert_array_equal(x.numpy(), b)
        assert x.grad is None


def test_gradcheck_backs_up_rules_torch_cannot_mirror():
    # unbind's slices hang from one hidden hub tensor whose rule stacks their gradients
    x = leaf((2, 3))
    assert sg.gradcheck(lambda x: sum((p * (i + 1)).tanh() for i, p in enumerate(x.unbind(1))),
                        x)
    # overlapping windows: each element is read by several windows, and its gradients add up
    y = leaf((1, 6), 1)
    assert sg.gradcheck(lambda y: y.windows(3, stride=1) ** 2, y)
    assert sg.gradcheck(lambda y: y.as_strided((2, 3), (2, 1)).exp(), y)  # element 2 twice


def test_gradcheck_skips_inputs_without_grad_and_non_tensors():
    x, c = leaf((2,)), sg.Tensor(np.array([2.0, 3.0]))
    assert sg.gradcheck(lambda x, c, k: (x * c) ** k, (x, c, 2))


# ---- wrong rules are caught --------------------------------------------------------------------

def square_with_wrong_rule(x, error_at=(1, 2)):
    """x ** 2, whose backward is right except at one element, where it adds 0.5."""
    d = x._device
    mistake = np.zeros(x.shape)
    mistake[error_at] = 0.5

    def backward(g, out, need):
        return (g * (2 * x + sg.Tensor(mistake)),)
    return sg._record("square", d.mul(x.data, x.data), (x,), backward)


def test_gradcheck_reports_the_worst_element():
    x = leaf((2, 3), 4)
    with pytest.raises(RuntimeError) as info:
        sg.gradcheck(lambda x: square_with_wrong_rule(x), x)
    message = str(info.value)
    assert "output 0 with respect to input 0" in message
    assert "output index (1, 2) and input index (1, 2)" in message
    true = 2 * x.numpy()[1, 2]
    analytic = float(re.search(r"analytic gradient is (\S+)", message).group(1))
    numerical = float(re.search(r"numerical one is (\S+)", message).group(1))
    assert analytic == pytest.approx(true + 0.5, abs=1e-9)
    assert numerical == pytest.approx(true, abs=1e-6)
    assert "atol + rtol * |numerical| = 1e-05 + 0.001" in message
    assert sg.gradcheck(lambda x: square_with_wrong_rule(x), x, raise_exception=False) is False


def test_gradcheck_catches_a_monkeypatched_rule(monkeypatch):
    def wrong_tanh(x):  # the derivative of tanh taken as 1 - tanh (not 1 - tanh^2)
        def backward(g, out, need):
            return (g * (1 - out),)
        return sg._record("tanh", x._device.tanh(x.data), (x,), backward)

    x = leaf((3,))
    assert sg.gradcheck(lambda x: x.tanh(), x)
    monkeypatch.setattr(sg.Tensor, "tanh", wrong_tanh)
    with pytest.raises(RuntimeError, match="Jacobian mismatch for output 0 with respect to input"):
        sg.gradcheck(lambda x: x.tanh(), x)


def test_gradcheck_errors():
    x32 = sg.Tensor(np.ones((2,), np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="input 0 has dtype float32.*float64"):
        sg.gradcheck(lambda x: x * 2, x32)
    with pytest.raises(ValueError, match="no input requires grad"):
        sg.gradcheck(lambda x: x * 2, sg.Tensor(np.ones(2)))
    x = leaf((2,))
    with pytest.raises(TypeError, match="output 0 has dtype float32"):
        sg.gradcheck(lambda x: x.float() * 2, x)


# ---- second derivatives --------------------------------------------------------------------------

def test_gradgradcheck_passes_on_compositions():
    a, b = leaf((2, 3), 1), leaf((3, 2), 2)
    assert sg.gradgradcheck(lambda a, b: (a @ b).tanh().sigmoid(), (a, b))
    assert sg.gradgradcheck(lambda a: (a.tanh() * a.sigmoid()).sum(), a)
    given = sg.Tensor(np.arange(4.0).reshape(2, 2))
    assert sg.gradgradcheck(lambda a, b: (a @ b.tanh()) ** 2, (a, b), grad_outputs=given)


def test_gradgradcheck_catches_a_wrong_second_derivative():
    def square(x):  # first derivative right, but computed from raw arrays: no second one
        d = x._device

        def backward(g, out, need):
            return (g * sg.Tensor(2 * x.numpy()),)
        return sg._record("square", d.mul(x.data, x.data), (x,), backward)

    x = leaf((3,))
    assert sg.gradcheck(square, x)
    with pytest.raises(RuntimeError, match="mismatch for output 0 with respect to input 0"):
        sg.gradgradcheck(square, x)
    assert sg.gradgradcheck(square, x, raise_exception=False) is False
