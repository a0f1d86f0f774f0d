"""Version counters: a tensor changed in place after an op saved it makes backward raise
PyTorch's error (naming the op, the tensor's shape and both versions) instead of giving a
silently wrong gradient; changes that no rule reads pass, as in PyTorch."""

import numpy as np
import pytest
from helpers import torch

import simplegrad as sg
from simplegrad import nn, optim

pytestmark = pytest.mark.usefixtures("device")

MODIFIED = (r"modified by an inplace operation.*'{op}' saved is at version {now}; "
            r"expected version {then}")


def leaf(values):
    return sg.Tensor(np.array(values, dtype=np.float64), requires_grad=True)


def test_init_after_the_forward_is_refused_as_torch():
    w = leaf([1.0, 2.0, 3.0])
    y = (w * w).sum()
    nn.init.zeros_(w)
    with pytest.raises(RuntimeError, match=MODIFIED.format(op="mul", now=1, then=0)) as info:
        y.backward()
    assert "float64 tensor of shape (3,)" in str(info.value)
    assert w.grad is None  # nothing was accumulated
    # torch refuses the same program
    tw = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    ty = (tw * tw).sum()
    with torch.no_grad():
        tw.zero_()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ty.backward()


def test_an_optimizer_step_between_forward_and_backward_is_refused():
    layer = nn.Linear(3, 2).double()
    opt = optim.SGD(layer.parameters(), lr=0.1)
    x = sg.Tensor(np.ones((4, 3)))
    layer(x).sum().backward()
    loss = layer(x).sum()  # saves a view of the weight (initialised, then made float64)
    version = layer.weight._version
    opt.step()
    assert layer.weight._version == version + 1
    with pytest.raises(RuntimeError, match=MODIFIED.format(op="matmul", now=version + 1,
                                                            then=version)):
        loss.backward()


def test_several_changes_count_and_each_step_bumps():
    w = leaf([1.0, 2.0])
    y = w.exp().sum()
    for _ in range(3):
        nn.init.ones_(w)
    assert w._version == 3
    with pytest.raises(RuntimeError, match=MODIFIED.format(op="exp", now=3, then=0)):
        y.backward()
    p = nn.Parameter(sg.Tensor(np.ones(2)))
    opt = optim.Adam([p], lr=0.1)
    for step in range(1, 4):
        (p * p).sum().backward()
        opt.step()
        assert p._version == step


def test_changes_no_rule_reads_are_allowed_as_in_torch():
    # add and sum read no input values: changing w after them is harmless (torch agrees)
    w = leaf([1.0, 2.0, 3.0])
    y = (w + 1).sum()
    nn.init.constant_(w, 5.0)
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 1.0, 1.0])
    tw = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    ty = (tw + 1).sum()
    with torch.no_grad():
        tw.fill_(5.0)
    ty.backward()
    np.testing.assert_array_equal(tw.grad.numpy(), [1.0, 1.0, 1.0])


def test_changes_before_the_forward_and_after_backward_are_fine():
    w = leaf([1.0, 2.0])
    nn.init.ones_(w)           # before: the op saves version 1
    y = (w * 3 * w).sum()
    y.backward()
    nn.init.zeros_(w)           # after: nothing left to check
    np.testing.assert_array_equal(w.grad.numpy(), [6.0, 6.0])


def test_detach_shares_the_counter():
    w = leaf([1.0, 2.0])
    y = (w * w).sum()
    d = w.detach()
    nn.init.zeros_(d)            # through the detached alias
    assert w._version == d._version == 1
    with pytest.raises(RuntimeError, match="expected version 0"):
        y.backward()


def test_retained_graph_then_a_change_is_refused():
    w = leaf([1.0, 2.0])
    y = (w * w).sum()
    y.backward(retain_graph=True)
    nn.init.ones_(w)
    with pytest.raises(RuntimeError, match="expected version 0"):
        y.backward()


def test_buffers_and_zero_grad_are_counted():
    bn = nn.BatchNorm1d(3).double()
    x = sg.Tensor(np.random.default_rng(0).standard_normal((5, 3)))
    before = bn.running_mean._version
    bn(x)
    assert bn.running_mean._version == before + 1
    layer = nn.Linear(2, 2)
    layer(sg.Tensor(np.ones((1, 2), np.float32))).sum().backward()
    layer.zero_grad(set_to_none=False)
    assert layer.weight.grad._version == 1


def test_assigning_data_counts_including_the_augmented_form():
    w = leaf([1.0, 2.0, 3.0])
    y = (w * w).sum()
    w.data -= 0.5 * np.ones(3)  # Python assigns the result back to w.data: counted
    assert w._version == 1
    with pytest.raises(RuntimeError, match=MODIFIED.format(op="mul", now=1, then=0)):
        y.backward()
    w.data = np.zeros(3)
    assert w._version == 2
    with pytest.raises(TypeError, match=r"Tensor\.data: needs an array"):
        w.data = [1.0, 2.0, 3.0]
    assert w._version == 2


def test_load_state_dict_counts():
    layer = nn.Linear(2, 2).double()
    x = sg.Tensor(np.ones((1, 2)))
    loss = layer(x).sum()
    layer.load_state_dict(nn.Linear(2, 2).double().state_dict())
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
