"""detect_anomaly(): the first op with a nan or inf output (forward) or input gradient
(backward) raises AnomalyError naming it, the phase and, for backward, where the op was made.
Runs on every device."""

import numpy as np
import pytest

import simplegrad as sg

pytestmark = [pytest.mark.usefixtures("device"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]  # NumPy's own nan warnings


def leaf(values):
    return sg.Tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


def test_forward_log_of_negative():
    x = leaf([1.0, -1.0])
    with sg.detect_anomaly():
        y = x * 2  # finite: no error
        with pytest.raises(sg.AnomalyError, match="forward of 'log' produced nan"):
            y.log()


def test_forward_zero_over_zero_under_no_grad():
    x = sg.Tensor(np.zeros(3))
    with sg.detect_anomaly(), sg.no_grad():
        with pytest.raises(sg.AnomalyError, match=r"forward of 'div' produced nan.*\(3,\)"):
            x / x


def test_forward_inf():
    with sg.detect_anomaly():
        with pytest.raises(sg.AnomalyError, match="forward of 'exp' produced inf"):
            leaf([1000.0]).exp()


def test_backward_names_the_op_and_where_it_was_made():
    x = leaf([0.0, 4.0])
    with sg.detect_anomaly():
        y = x.sqrt()  # the line the error points at
        loss = (y * 3).sum()  # finite forward: sqrt(0) = 0
        with pytest.raises(sg.AnomalyError) as info:
            loss.backward()  # d/dx sqrt x = 1 / (2 sqrt x) is inf at 0
    message = str(info.value)
    assert "backward of 'sqrt' returned inf in the gradient of input 0" in message
    assert "test_anomaly.py" in message and "y = x.sqrt()  # the line" in message
    assert "simplegrad.py" not in message
    assert isinstance(info.value, RuntimeError)


def test_no_error_when_finite_and_gradients_unchanged():
    x = leaf([0.5, 1.0, 2.0])
    with sg.detect_anomaly():
        (x.log() * x.tanh()).sum().backward()
    with_anomaly = np.array(x.grad)
    x.grad = None
    (x.log() * x.tanh()).sum().backward()
    np.testing.assert_array_equal(with_anomaly, np.array(x.grad))


def test_outside_the_context_nothing_is_checked():
    x = leaf([-1.0])
    with sg.detect_anomaly():
        pass
    assert not sg._anomaly
    y = x.log()  # nan, silently, as in NumPy
    assert np.isnan(y.numpy()).all()


def test_mode_restored_after_an_exception():
    with pytest.raises(sg.AnomalyError):
        with sg.detect_anomaly():
            leaf([-1.0]).log()
    assert not sg._anomaly
    with sg.detect_anomaly():
        with sg.detect_anomaly():
            assert sg._anomaly
        assert sg._anomaly  # a nested block restores the outer mode
    assert not sg._anomaly


def test_as_a_decorator():
    @sg.detect_anomaly()
    def step(x):
        assert sg._anomaly
        return x.log()

    with pytest.raises(sg.AnomalyError, match="'log'"):
        step(leaf([-2.0]))
    assert not sg._anomaly
    step(leaf([2.0]))


def test_graph_made_before_the_mode_still_checked():
    x = leaf([0.0])
    loss = x.sqrt().sum()
    with sg.detect_anomaly():
        with pytest.raises(sg.AnomalyError, match="unknown: it was made while"):
            loss.backward()
