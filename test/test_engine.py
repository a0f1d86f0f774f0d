"""The engine: deep and shared graphs, accumulation, freeing, laziness, hooks, grad modes,
grad(), higher-order gradients and the engine's error messages. Runs on every device."""

import collections
import functools
import gc
import sys
import time
import weakref

import numpy as np
import pytest
from helpers import assert_close, torch

import simplegrad as sg
from devices.reference import ReferenceDevice

pytestmark = pytest.mark.usefixtures("device")

# Every public method a device may be asked for: primitives, plumbing and derived kernels.
DEVICE_METHODS = sorted(name for name, value in vars(sg.Device).items()
                        if callable(value) and not name.startswith("_"))


def leaf(array, requires_grad=True):
    return sg.Tensor(np.asarray(array, dtype=np.float64), requires_grad=requires_grad)


def torch_leaf(array, requires_grad=True):
    return torch.tensor(np.asarray(array, dtype=np.float64), requires_grad=requires_grad)


# ---- a device that counts its calls ------------------------------------------------------------

def _counting_class(base):
    """A subclass of `base` whose every Device method counts its calls in `cls.calls`."""
    calls = collections.Counter()

    def counted(name):
        def method(self, *args, **kwargs):
            calls[name] += 1
            return getattr(super(cls, self), name)(*args, **kwargs)
        method.__name__ = name
        return method

    namespace = {name: counted(name) for name in DEVICE_METHODS}
    namespace["calls"] = calls  # a class attribute, so that Device.__eq__ is not affected
    cls = type("Counting" + base.__name__, (base,), namespace)
    return cls


@pytest.fixture
def counting(device):
    """The current device's class, counting calls, as the default device for one test."""
    previous = sg.Tensor.device
    dev = _counting_class(type(device))()
    sg.Tensor.device = dev
    try:
        yield dev
    finally:
        sg.Tensor.device = previous


def calls_during(dev, fn):
    """The device calls made while fn() runs."""
    dev.calls.clear()
    fn()
    counts = collections.Counter(dev.calls)
    dev.calls.clear()
    return counts


def test_counting_device_counts(counting):
    # the instrument itself: primitives, plumbing and derived kernels are all counted
    assert {"exp", "as_strided", "array", "matmul", "scatter_add", "erf"} <= set(DEVICE_METHODS)
    x = leaf(np.ones(3))
    counts = calls_during(counting, lambda: (x * 2).exp().sum())
    assert counts["mul"] == 1 and counts["exp"] == 1 and counts["sum"] == 1


# ---- deep and shared graphs --------------------------------------------------------------------

def test_diamond_graph_backpropagates_in_linear_time():
    # x -> (c1 x, c2 x) -> their sum, 60 times: 2**60 paths from the output to the input,
    # so only an engine that visits each tensor once finishes; d out/d x = (c1 + c2)**60
    c1, c2, depth = 0.5, 0.6, 60
    x0 = leaf(1.5)
    x = x0
    start = time.perf_counter()
    for _ in range(depth):
        x = x * c1 + x * c2
    x.backward()
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"diamond graph of depth {depth} took {elapsed:.2f} s"
    assert x0.grad.item() == pytest.approx((c1 + c2) ** depth, rel=1e-12)
    assert x.item() == pytest.approx(1.5 * (c1 + c2) ** depth, rel=1e-12)


def test_long_chain_has_no_recursion_limit():
    # 100,000 ops, far beyond Python's recursion limit: d y/d y0 = c ** n
    c, n = 1.0000001, 100_000
    assert sys.getrecursionlimit() < n
    y0 = leaf(2.0)
    y = y0
    for _ in range(n):
        y = y * c
    y.backward()
    # each of the n roundings is at most one ulp, 1.1e-16 relative: 1e-10 bounds the drift
    assert y0.grad.item() == pytest.approx(c ** n, rel=1e-10)
    assert y.item() == pytest.approx(2.0 * c ** n, rel=1e-10)


def test_long_chain_of_additions():
    # the same depth with an add chain (a two-input op whose second input needs no gradient)
    n = 100_000
    y0 = leaf([1.0, 2.0])
    y = y0
    for _ in range(n):
        y = y + 0.0
    (y * y).sum().backward()
    np.testing.assert_array_equal(np.asarray(y0.grad), [2.0, 4.0])


def test_reuse_sums_the_gradients():
    x = leaf([0.5, -1.5, 2.0])
    (x * x + x).sum().backward()
    np.testing.assert_allclose(np.asarray(x.grad), 2 * np.array([0.5, -1.5, 2.0]) + 1,
                               rtol=0, atol=1e-15)


def test_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, 2.0, 3.0])
    (x * x).sum().backward()
    first = np.array(x.grad, copy=True)
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(np.asarray(x.grad), first + 3.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(first, [2.0, 4.0, 6.0], rtol=0, atol=1e-15)


def test_grad_is_a_tensor_of_its_own():
    # two leaves fed the same gradient object must not share one .grad object
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()
    assert isinstance(a.grad, sg.Tensor) and a.grad is not b.grad
    assert not a.grad.requires_grad and a.grad.grad_fn is None


# ---- freeing the graph -------------------------------------------------------------------------

def test_intermediates_are_freed_after_backward():
    w = leaf(np.arange(4.0))

    def forward():
        hidden = (w * 2.0).tanh()
        return (hidden * hidden).sum(), weakref.ref(hidden), weakref.ref(hidden.data)

    # gc stays off: the engine must drop its references itself, so that plain reference
    # counting frees the intermediates the moment backward() ends
    gc.collect()
    gc.disable()
    try:
        loss, hidden, hidden_data = forward()
        assert hidden() is not None and hidden_data() is not None  # the graph holds it
        loss.backward()
        assert hidden() is None, "an intermediate tensor outlived backward()"
        assert hidden_data() is None, "an intermediate array outlived backward()"
    finally:
        gc.enable()


def test_retain_graph_keeps_intermediates():
    w = leaf(np.arange(4.0))
    hidden = (w * 2.0).tanh()
    loss = (hidden * hidden).sum()
    ref = weakref.ref(hidden)
    del hidden
    loss.backward(retain_graph=True)
    assert ref() is not None


def test_second_backward_through_a_freed_graph_raises():
    w = leaf([1.0, 2.0])
    loss = (w * w).sum()
    loss.backward()
    before = np.array(w.grad, copy=True)
    with pytest.raises(RuntimeError, match=r"(?s)'sum'.*freed.*retain_graph"):
        loss.backward()
    np.testing.assert_array_equal(np.asarray(w.grad), before)  # nothing half-accumulated


def test_freed_shared_subgraph_raises_before_any_accumulation():
    # loss2 reaches the freed part of the graph only below its own intact node
    w = leaf([1.0, 2.0])
    h = w.exp()
    loss1, loss2 = (h * 2.0).sum(), (h * 3.0).sum()
    loss1.backward()
    before = np.array(w.grad, copy=True)
    with pytest.raises(RuntimeError, match=r"(?s)'exp'.*freed.*retain_graph"):
        loss2.backward()
    np.testing.assert_array_equal(np.asarray(w.grad), before)


def test_retain_graph_allows_two_backward_calls():
    x = leaf([1.0, -2.0])
    loss = (x * x * x).sum()
    loss.backward(retain_graph=True)
    once = np.array(x.grad, copy=True)
    loss.backward()
    np.testing.assert_allclose(once, 3 * np.array([1.0, 4.0]), rtol=0, atol=1e-15)
    np.testing.assert_allclose(np.asarray(x.grad), 2 * once, rtol=0, atol=1e-15)


# ---- laziness, counted on the device -----------------------------------------------------------

def test_branch_without_gradient_costs_no_device_call(counting):
    rng = np.random.default_rng(0)
    w = leaf(rng.standard_normal(5))
    x, c = leaf(rng.standard_normal(5), False), leaf(rng.standard_normal(5), False)

    def backward_calls(with_constant_branch):
        w.grad = None
        loss = (w * x).sum()
        if with_constant_branch:
            loss = loss + (c.exp() * 3).sum()
        return calls_during(counting, loss.backward)

    plain, branched = backward_calls(False), backward_calls(True)
    assert sum(plain.values()) > 0
    assert branched == plain
    assert branched["exp"] == 0
    np.testing.assert_allclose(np.asarray(w.grad), np.asarray(x), rtol=0, atol=0)


def test_rule_computes_only_the_needed_input_gradients(counting):
    rng = np.random.default_rng(1)
    g = sg.Tensor(rng.standard_normal(4))
    w = leaf(rng.standard_normal(4))
    for x_requires_grad, expected in [(False, 1), (True, 2)]:
        x = leaf(rng.standard_normal(4), x_requires_grad)
        w.grad = None
        y = w * x
        counts = calls_during(counting, functools.partial(y.backward, g))
        assert counts["mul"] == expected, counts
        assert (x.grad is not None) == x_requires_grad
        np.testing.assert_allclose(w.grad.numpy(), g.numpy() * x.numpy(), rtol=0, atol=1e-15)


def test_grad_walks_only_paths_to_the_requested_inputs(counting):
    rng = np.random.default_rng(2)
    w1, w2 = leaf(rng.standard_normal((3, 3))), leaf(rng.standard_normal((3, 3)))
    x = leaf(rng.standard_normal((3, 3)), False)

    def grad_calls(inputs):
        loss = (x @ w1).sum() + (x @ w2).tanh().sum()
        return calls_during(counting, lambda: sg.grad(loss, inputs))

    one, both = grad_calls([w1]), grad_calls([w1, w2])
    assert sum(one.values()) < sum(both.values()), (one, both)
    # tanh's gradient 1 - tanh**2 multiplies; a w1-only pass never goes near tanh or w2's matmul
    assert one["matmul"] + one["einsum"] < both["matmul"] + both["einsum"]


# ---- hooks, retain_grad, detach and leaves -----------------------------------------------------

def test_retain_grad_on_a_non_leaf():
    data = np.array([0.3, -0.7, 1.1])
    x, tx = leaf(data), torch_leaf(data)
    h, th = x.tanh(), tx.tanh()
    h.retain_grad()
    th.retain_grad()
    assert h.retains_grad and not h.is_leaf
    (h * h).sum().backward()
    (th * th).sum().backward()
    assert_close(h.grad, th.grad, what="retained gradient")
    assert_close(x.grad, tx.grad, what="leaf gradient")
    other = x.exp()
    (other * 2).sum().backward()
    assert other.grad is None  # no retain_grad(): a non-leaf gets no .grad


def test_register_hook_sees_and_replaces_the_gradient():
    x = leaf([1.0, 2.0, 3.0])
    h = x * 2.0
    seen = []

    def double(g):
        seen.append(np.array(g, copy=True))
        return g * 2

    handle = h.register_hook(double)
    (h * h).sum().backward()
    np.testing.assert_allclose(seen[0], 2 * np.asarray(h.detach()), rtol=0, atol=1e-15)
    # dL/dh = 2h = 4x, doubled by the hook, times dh/dx = 2
    np.testing.assert_allclose(np.asarray(x.grad), 16 * np.arange(1.0, 4.0), rtol=0, atol=1e-12)
    handle.remove()
    x.grad = None
    h = x * 2.0
    h.register_hook(lambda g: seen.append("observer"))  # returning None keeps the gradient
    (h * h).sum().backward()
    np.testing.assert_allclose(np.asarray(x.grad), 8 * np.arange(1.0, 4.0), rtol=0, atol=1e-12)
    assert seen[-1] == "observer"


def test_hook_on_a_leaf_and_handle_remove():
    x = leaf([1.0, 2.0])
    calls = []
    handle = x.register_hook(lambda g: calls.append(1) or g * 10)
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(np.asarray(x.grad), [30.0, 30.0], rtol=0, atol=0)
    handle.remove()
    x.grad = None
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(np.asarray(x.grad), [3.0, 3.0], rtol=0, atol=0)
    assert calls == [1]


def test_hook_matches_torch():
    data = np.array([0.5, -1.0, 2.0])
    x, tx = leaf(data), torch_leaf(data)
    for t in (x, tx):
        h = t.exp()
        h.register_hook(lambda g: g * g)
        (h * h).sum().backward()
    assert_close(x.grad, tx.grad, what="gradient through a replacing hook")


def test_post_accumulate_grad_hook_sees_the_accumulated_gradient():
    w = leaf([1.0, 2.0])
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda t: seen.append(np.array(t.grad)))
    (w * w).sum().backward()
    (w * 3.0).sum().backward()
    np.testing.assert_array_equal(seen[0], [2.0, 4.0])
    np.testing.assert_array_equal(seen[1], [5.0, 7.0])  # after accumulation, not before
    handle.remove()
    (w * w).sum().backward()
    assert len(seen) == 2
    with pytest.raises(RuntimeError, match="leaf"):
        (w * 2.0).register_post_accumulate_grad_hook(print)


def test_leaf_gradients_have_memory_of_their_own():
    # add passes one gradient array to both inputs, and a sum's gradient is a broadcast view:
    # each .grad must still be a separate, writable array, as optimizers write into it
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()
    ga, gb = np.asarray(a.grad.data), np.asarray(b.grad.data)
    assert not np.shares_memory(ga, gb)
    if isinstance(a.grad.data, np.ndarray):
        assert a.grad.data.flags.writeable and b.grad.data.flags.writeable
    np.testing.assert_array_equal(ga, [1.0, 1.0])


def test_detach_and_is_leaf():
    x = leaf([1.0, 2.0])
    y = x * 3.0
    d = y.detach()
    assert x.is_leaf and not y.is_leaf and d.is_leaf
    assert y.requires_grad and not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(np.asarray(d.data), np.asarray(y.data)) or d.data is y.data
    (y * d).sum().backward()  # d is a constant: dL/dx = 3 d
    np.testing.assert_allclose(np.asarray(x.grad), [9.0, 18.0], rtol=0, atol=1e-15)
    assert sg.Tensor(np.ones(2)).is_leaf


def test_requires_grad_():
    x = sg.Tensor(np.ones(3))
    assert not x.requires_grad and x.grad_fn is None
    assert x.requires_grad_() is x and x.requires_grad
    (x * 2.0).sum().backward()
    np.testing.assert_array_equal(np.asarray(x.grad), [2.0, 2.0, 2.0])
    x.requires_grad_(False)
    assert not x.requires_grad and not (x * 2).requires_grad
    x.requires_grad = True
    assert x.requires_grad
    y = x * 2
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad_(False)
    assert y.requires_grad


# ---- grad modes --------------------------------------------------------------------------------

def _recorded(x):
    y = x * 2.0
    return y.requires_grad and y.grad_fn is not None


def test_no_grad_context_manager():
    x = leaf([1.0])
    with sg.no_grad():
        assert not sg.is_grad_enabled()
        y = x * 2.0
        assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    assert sg.is_grad_enabled() and _recorded(x)


def test_no_grad_and_enable_grad_nested():
    x = leaf([1.0])
    with sg.no_grad():
        with sg.enable_grad():
            assert sg.is_grad_enabled() and _recorded(x)
            with sg.no_grad():
                assert not _recorded(x)
            assert _recorded(x)
        assert not sg.is_grad_enabled() and not _recorded(x)
    assert sg.is_grad_enabled()


def test_grad_modes_restore_on_exceptions():
    with pytest.raises(ValueError), sg.no_grad():
        raise ValueError
    assert sg.is_grad_enabled()


def test_grad_modes_as_decorators():
    x = leaf([1.0])

    @sg.no_grad()
    def off(t):
        return _recorded(t), sg.is_grad_enabled()

    @sg.enable_grad()
    def on(t):
        return _recorded(t)

    @sg.set_grad_enabled(False)
    def off_too(t):
        return _recorded(t)

    assert sg.is_grad_enabled(), "decorating must not change the mode outside the function"
    assert off(x) == (False, False)
    assert sg.is_grad_enabled()
    assert off_too(x) is False and sg.is_grad_enabled()
    with sg.no_grad():
        assert on(x) is True
        assert not sg.is_grad_enabled()
    assert off.__name__ == "off"


def test_set_grad_enabled():
    x = leaf([1.0])
    try:
        sg.set_grad_enabled(False)
        assert not sg.is_grad_enabled() and not _recorded(x)
        sg.set_grad_enabled(True)
        assert _recorded(x)
        with sg.set_grad_enabled(False):
            assert not _recorded(x)
            with sg.set_grad_enabled(True):
                assert _recorded(x)
            assert not _recorded(x)
        assert sg.is_grad_enabled()
    finally:
        sg.set_grad_enabled(True)


# ---- grad() ------------------------------------------------------------------------------------

def test_grad_matches_torch_and_leaves_dot_grad_alone():
    rng = np.random.default_rng(3)
    a, b, up = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal((3, 2))
    x, w = leaf(a), leaf(b)
    tx, tw = torch_leaf(a), torch_leaf(b)
    out, tout = (x @ w).tanh(), (tx @ tw).tanh()
    gx, gw = sg.grad(out, [x, w], grad_outputs=sg.Tensor(up))
    tgx, tgw = torch.autograd.grad(tout, [tx, tw], grad_outputs=torch.tensor(up))
    assert_close(gx, tgx, what="grad x")
    assert_close(gw, tgw, what="grad w")
    assert x.grad is None and w.grad is None
    assert isinstance(gx, sg.Tensor) and not gx.requires_grad


def test_grad_keeps_existing_dot_grad_and_frees_the_graph():
    x = leaf([1.0, 2.0])
    (x * 5.0).sum().backward()
    y = (x * x).sum()
    (g,) = sg.grad(y, x)  # a single tensor as inputs: a one-tuple back
    np.testing.assert_array_equal(np.asarray(g), [2.0, 4.0])
    np.testing.assert_array_equal(np.asarray(x.grad), [5.0, 5.0])
    with pytest.raises(RuntimeError, match="freed"):
        sg.grad(y, x)


def test_grad_with_several_outputs_and_retain_graph():
    data = np.array([0.2, -0.4, 0.9])
    x, tx = leaf(data), torch_leaf(data)
    outs = [x.exp().sum(), (x * x).sum()]
    touts = [tx.exp().sum(), (tx * tx).sum()]
    (g,) = sg.grad(outs, [x], retain_graph=True)
    (tg,) = torch.autograd.grad(touts, [tx])
    assert_close(g, tg, what="sum over outputs")
    (again,) = sg.grad(outs, [x])  # the graph was retained
    assert_close(again, tg, what="second call")


def test_grad_allow_unused():
    x, unused = leaf([1.0, 2.0]), leaf([3.0])
    y = (x * x).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        sg.grad(y, [x, unused], retain_graph=True)
    gx, gu = sg.grad(y, [x, unused], allow_unused=True)
    assert gu is None
    np.testing.assert_array_equal(np.asarray(gx), [2.0, 4.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        sg.grad((x * 2).sum(), [sg.Tensor(np.ones(2))])


# ---- higher order ------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
@pytest.mark.parametrize("fn", [lambda t: t ** 3, lambda t: t.tanh(), lambda t: (t * t).exp()],
                         ids=["cube", "tanh", "exp_square"])
def test_second_derivative_through_backward(fn):
    data = np.array([-1.3, -0.2, 0.4, 1.7])
    x, tx = leaf(data), torch_leaf(data)
    for t in (x, tx):
        fn(t).sum().backward(create_graph=True)
    assert_close(x.grad, tx.grad, what="first derivative")
    assert x.grad.requires_grad
    g, tg = x.grad, tx.grad
    x.grad, tx.grad = None, None
    (g * g).sum().backward()
    (tg * tg).sum().backward()
    assert_close(x.grad, tx.grad, what="derivative of the squared first derivative")


def test_third_derivative_through_grad():
    data = np.array([-1.0, 0.5, 2.0])
    x = leaf(data)
    y = (x ** 3).sum()
    (g1,) = sg.grad(y, x, create_graph=True)
    (g2,) = sg.grad(g1.sum(), x, create_graph=True)
    (g3,) = sg.grad(g2.sum(), x)
    np.testing.assert_allclose(g1.numpy(), 3 * data ** 2, rtol=1e-14, atol=0)
    np.testing.assert_allclose(g2.numpy(), 6 * data, rtol=1e-14, atol=0)
    np.testing.assert_allclose(np.asarray(g3), [6.0, 6.0, 6.0], rtol=1e-14, atol=0)


def test_without_create_graph_gradients_have_no_graph():
    x = leaf([1.0, 2.0])
    (x ** 3).sum().backward()
    assert not x.grad.requires_grad and x.grad.grad_fn is None


# ---- errors ------------------------------------------------------------------------------------

def test_backward_on_a_non_scalar_needs_a_gradient():
    x = leaf(np.ones((2, 3)))
    (x * 2).sum().backward()
    before = np.array(x.grad, copy=True)
    with pytest.raises(RuntimeError, match=r"\(2, 3\)"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match=r"(?s)\(3, 2\).*\(2, 3\)"):
        (x * 2).backward(sg.Tensor(np.ones((3, 2))))
    np.testing.assert_array_equal(np.asarray(x.grad), before)
    (x * 2).backward(sg.Tensor(np.ones((2, 3))))  # with a gradient it works
    np.testing.assert_array_equal(np.asarray(x.grad), 2 * before)


def test_backward_without_a_graph():
    with pytest.raises(RuntimeError, match="does not require grad"):
        sg.Tensor(np.ones(())).backward()


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_integer_tensors_cannot_require_grad(dtype):
    with pytest.raises(RuntimeError, match=np.dtype(dtype).name):
        sg.Tensor(np.zeros(3, dtype=dtype), requires_grad=True)
    t = sg.Tensor(np.zeros(3, dtype=dtype))
    with pytest.raises(RuntimeError, match=np.dtype(dtype).name):
        t.requires_grad_()
    assert not t.requires_grad


def test_mixing_two_devices():
    a_dev, b_dev = sg.NumpyDevice(), ReferenceDevice()
    assert a_dev != b_dev
    a = sg.Tensor(np.ones((2, 2)), requires_grad=True, device=a_dev)
    b = sg.Tensor(np.ones((2, 2)), device=b_dev)
    ops = {"add": lambda: a + b, "mul": lambda: a * b, "matmul": lambda: a @ b,
           "cat": lambda: sg.cat([a, b]), "einsum": lambda: sg.einsum("ij,jk->ik", a, b),
           "where": lambda: sg.where(b > 0, a, a)}
    for op, fn in ops.items():
        with pytest.raises(RuntimeError, match=op) as info:
            fn()
        message = str(info.value)
        assert "NumpyDevice" in message and "ReferenceDevice" in message, message
        assert "move" in message, message


def test_shape_mismatch_names_the_op_and_the_shapes():
    a, b = leaf(np.ones((2, 3))), leaf(np.ones((4,)))
    with pytest.raises(ValueError, match=r"add.*\(2, 3\).*\(4,\)"):
        a + b
    with pytest.raises(ValueError, match=r"mul.*\(2, 3\).*\(4,\)"):
        a * b
    with pytest.raises(ValueError, match=r"matmul.*\(2, 3\).*\(2, 3\)"):
        a @ a
    with pytest.raises(ValueError, match=r"einsum.*ij,jk"):
        sg.einsum("ij,jk->ik", a, a)
    with pytest.raises(RuntimeError, match=r"reshape.*\(2, 3\)"):
        a.reshape(4, 2)


def test_in_sweep_accumulation_matches_torch_and_leaves_given_arrays_alone(device):
    """A tensor feeding five ops gets five contributions; from the third on the engine adds
    them in place into the sum it made itself (Device.add_). The result matches torch, and
    neither the upstream gradient the caller passed nor a rule's pass-through is written."""
    rng = np.random.default_rng(5)
    xa, ga = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))

    def f(x, lib):
        y = x * 1.0
        return (y + y + y + y.tanh() + (y * y)) / 3

    x = sg.Tensor(xa.copy(), requires_grad=True)
    g = sg.Tensor(ga.copy())
    f(x, sg).backward(g)
    tx = torch.tensor(xa.copy(), requires_grad=True)
    f(tx, torch).backward(torch.tensor(ga.copy()))
    np.testing.assert_allclose(np.asarray(x.grad), tx.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(np.asarray(g), ga)  # the caller's gradient is untouched
