"""Convolution and pooling against PyTorch: conv1d/2d/3d, conv_transpose1d/2d, max/avg pooling,
adaptive average pooling, their modules (loading torch state dicts) and BatchNorm2d, plus the
exactness of NumpyDevice's fast as_strided_scatter (the backward of every window view).

Every comparison runs in float64 with the helper's tolerances (rtol 1e-9, atol 1e-11), forward
and the gradient of every input. The grids are full on NumPy; on the reference device (twelve
primitives, slow) each grid is cut to a few representative cases by `grid` below, chosen so
that every option (stride, padding, dilation, groups, output_padding, ceil_mode) still occurs.
"""

import itertools

import numpy as np
import pytest
from helpers import assert_close, check, torch

import simplegrad as sg
from simplegrad import nn

F = nn.functional
TF = torch.nn.functional

pytestmark = [pytest.mark.usefixtures("device"),
              # torch's note that it pads a copy for 'same' with an even kernel
              pytest.mark.filterwarnings("ignore:Using padding='same'")]


def grid(device, cases, reduced_every=None):
    """All cases on NumPy; on the reference device every `reduced_every`-th case (the full grid
    would take much longer there): each step below was checked to keep every value of every
    option in the grid (3 to 12 cases per test instead of 64 to 216)."""
    cases = list(cases)
    if device.name == "numpy" or reduced_every is None:
        return cases
    return cases[::reduced_every]


def calls(fn, torch_fn, *args, **kwargs):
    """fn and torch_fn with the same trailing arguments, for `check`."""
    return (lambda *t: fn(*t, *args, **kwargs)), (lambda *t: torch_fn(*t, *args, **kwargs))


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ================================================================================================
# Convolutions
# ================================================================================================

# (in_channels, out_channels, groups): one channel, several, grouped and depthwise
CHANNELS = [(1, 1, 1), (3, 2, 1), (4, 6, 2), (2, 2, 2)]


@pytest.mark.parametrize("padding", [0, 1, (2, 1), "valid", "same"])
def test_conv2d_grid(device, padding):
    cases = itertools.product([(1, 5, 6), (2, 7, 7)], [(3, 3), (2, 3)], [1, 2, 3], [1, 2],
                              CHANNELS)
    for (n, h, w), kernel, stride, dilation, (cin, cout, groups) in grid(device, cases, 17):
        if padding == "same" and stride != 1:
            continue
        if any(dilation * (k - 1) + 1 > m for k, m in zip(kernel, (h, w))):
            continue
        fn, torch_fn = calls(F.conv2d, TF.conv2d, stride=stride, padding=padding,
                             dilation=dilation, groups=groups)
        check(fn, [(n, cin, h, w), (cout, cin // groups) + kernel, (cout,)], torch_fn)


def test_conv2d_asymmetric_stride_dilation_and_no_bias(device):
    check(lambda x, w: F.conv2d(x, w, stride=(1, 2), padding=(0, 2), dilation=(2, 1)),
          [(2, 3, 8, 7), (4, 3, 3, 2)],
          lambda x, w: TF.conv2d(x, w, stride=(1, 2), padding=(0, 2), dilation=(2, 1)))


def test_conv2d_unbatched(device):
    check(lambda x, w, b: F.conv2d(x, w, b, padding=1), [(3, 5, 5), (2, 3, 3, 3), (2,)],
          lambda x, w, b: TF.conv2d(x, w, b, padding=1))


@pytest.mark.parametrize("padding", [0, 2, "same"])
def test_conv1d_grid(device, padding):
    cases = itertools.product([(1, 7), (2, 8)], [1, 3], [1, 2, 3], [1, 2], CHANNELS)
    for (n, length), k, stride, dilation, (cin, cout, groups) in grid(device, cases, 11):
        if padding == "same" and stride != 1:
            continue
        fn, torch_fn = calls(F.conv1d, TF.conv1d, stride, padding, dilation, groups)
        check(fn, [(n, cin, length), (cout, cin // groups, k), (cout,)], torch_fn)


@pytest.mark.parametrize("stride, padding, dilation, groups",
                         [(1, 0, 1, 1), (2, 1, 1, 2), (1, "same", 2, 1),
                          ((1, 2, 1), (1, 0, 2), 1, 1)])
def test_conv3d(device, stride, padding, dilation, groups):
    check(lambda x, w, b: F.conv3d(x, w, b, stride, padding, dilation, groups),
          [(2, 2, 5, 6, 5), (4, 2 // groups, 2, 3, 2), (4,)],
          lambda x, w, b: TF.conv3d(x, w, b, stride, padding, dilation, groups))


def test_conv2d_padding_same_even_kernel_pads_more_after(device):
    # a total padding of 3 goes 1 before and 2 after, as torch
    check(lambda x, w: F.conv2d(x, w, padding="same", dilation=(1, 3)),
          [(1, 2, 6, 7), (3, 2, 4, 2)],
          lambda x, w: TF.conv2d(x, w, padding="same", dilation=(1, 3)))


def test_conv2d_second_order(device):
    # the backward of the window view is itself differentiable (create_graph)
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((2, 2, 3, 3))
    sx, sw = sg.Tensor(x, requires_grad=True), sg.Tensor(w, requires_grad=True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    (gs,) = sg.grad((F.conv2d(sx, sw, stride=2, padding=1) ** 2).sum(), [sx], create_graph=True)
    (gt,) = torch.autograd.grad((TF.conv2d(tx, tw, stride=2, padding=1) ** 2).sum(), [tx],
                                create_graph=True)
    (gs ** 2).sum().backward()
    (gt ** 2).sum().backward()
    assert_close(gs, gt, what="first gradient")
    assert_close(sw.grad, tw.grad, what="gradient of the gradient")


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_conv_transpose2d_grid(device, stride):
    cases = itertools.product([(1, 4, 5), (2, 3, 3)], [(3, 3), (2, 3)], [0, 1, 2],
                              range(stride), [1, 2], [(1, 1, 1), (3, 2, 1), (4, 6, 2)])
    for (n, h, w), kernel, padding, extra, dilation, (cin, cout, groups) in grid(device, cases,
                                                                                 23):
        if extra >= dilation and extra >= stride:
            continue
        full = [(m - 1) * stride + dilation * (k - 1) + 1 + extra for m, k in zip((h, w), kernel)]
        if min(full) - 2 * padding <= 0:
            continue
        fn, torch_fn = calls(F.conv_transpose2d, TF.conv_transpose2d, stride, padding, extra,
                             groups, dilation)
        check(fn, [(n, cin, h, w), (cin, cout // groups) + kernel, (cout,)], torch_fn)


def test_conv_transpose2d_asymmetric_and_conv_transpose1d(device):
    check(lambda x, w: F.conv_transpose2d(x, w, stride=(2, 3), padding=(1, 0),
                                          output_padding=(1, 2)),
          [(2, 2, 3, 4), (2, 3, 3, 2)],
          lambda x, w: TF.conv_transpose2d(x, w, stride=(2, 3), padding=(1, 0),
                                           output_padding=(1, 2)))
    check(lambda x, w, b: F.conv_transpose1d(x, w, b, 2, 1, 1, 2, 2),
          [(2, 4, 5), (4, 3, 3), (6,)],
          lambda x, w, b: TF.conv_transpose1d(x, w, b, 2, 1, 1, 2, 2))


# ================================================================================================
# Pooling
# ================================================================================================

@pytest.mark.parametrize("kernel", [2, 3, (2, 3)])
def test_max_pool2d_grid_with_indices(device, kernel):
    cases = itertools.product([(1, 1, 5, 6), (2, 3, 7, 7)], [None, 1, 2, 3], [0, 1], [1, 2],
                              [False, True])
    for shape, stride, padding, dilation, ceil_mode in grid(device, cases, 7):
        k = (kernel, kernel) if isinstance(kernel, int) else kernel
        if any(dilation * (kk - 1) + 1 > m + 2 * padding for kk, m in zip(k, shape[2:])):
            continue
        if any(2 * padding > kk for kk in k):
            continue
        args = (kernel, stride, padding, dilation, ceil_mode)
        # distinct values: no ties, so the index of each maximum is unique
        values = np.random.default_rng(0).permutation(np.prod(shape)).reshape(shape) / 7.0
        fn, torch_fn = calls(F.max_pool2d, TF.max_pool2d, *args)
        check(fn, None, torch_fn, inputs=[values])
        _, indices = F.max_pool2d(sg.Tensor(values), *args, return_indices=True)
        _, ref = TF.max_pool2d(torch.tensor(values), *args, return_indices=True)
        assert indices.dtype == np.int64
        np.testing.assert_array_equal(np.asarray(indices), ref.numpy())


def test_max_pool2d_ties_send_the_gradient_to_one_index_as_torch(device):
    # values from {0, 1, 2}: most windows hold their maximum more than once; overlapping
    # windows (stride 1) and padding (-inf, never chosen) included
    values = np.random.default_rng(3).integers(0, 3, (2, 2, 6, 7)).astype(np.float64)
    for stride, padding in [(1, 0), (2, 1), (1, 1)]:
        fn, torch_fn = calls(F.max_pool2d, TF.max_pool2d, 3, stride, padding)
        out = check(fn, None, torch_fn, inputs=[values])
        _, indices = F.max_pool2d(sg.Tensor(values), 3, stride, padding, return_indices=True)
        _, ref = TF.max_pool2d(torch.tensor(values), 3, stride, padding, return_indices=True)
        np.testing.assert_array_equal(np.asarray(indices), ref.numpy())
        assert out.shape == tuple(ref.shape)
    constant = np.ones((1, 1, 4, 4))
    check(lambda x: F.max_pool2d(x, 2), None, lambda x: TF.max_pool2d(x, 2), inputs=[constant])


def test_max_pool2d_keeps_infinities_and_unbatched(device):
    values = randn(2, 5, 5)
    values[0, 0, 0], values[1, 2, 2] = -np.inf, np.inf
    check(lambda x: F.max_pool2d(x, 3, 2, 1), None, lambda x: TF.max_pool2d(x, 3, 2, 1),
          inputs=[values])


def test_max_pool2d_propagates_nan_as_torch(device):
    # torch's max_pool2d picks a nan over any number, and sends it the gradient
    values = randn(1, 2, 4, 6)
    values[0, 0, 1, 1] = values[0, 1, 2, 3] = values[0, 1, 3, 2] = np.nan
    fn, torch_fn = calls(F.max_pool2d, TF.max_pool2d, 2)
    out = check(fn, None, torch_fn, inputs=[values])
    assert np.isnan(out.numpy()).sum() == 2
    _, indices = F.max_pool2d(sg.Tensor(values), 2, return_indices=True)
    _, ref = TF.max_pool2d(torch.tensor(values), 2, return_indices=True)
    np.testing.assert_array_equal(np.asarray(indices), ref.numpy())


def test_max_pool2d_window_of_minus_infinities_as_torch(device):
    # a window whose input elements are all -inf ties with the -inf the padding reads: torch
    # returns -inf and sends the gradient (and the index) to the window's first input element
    values = randn(1, 2, 5, 6)
    values[0, 0, :2, :2] = values[0, 1, 3:, 4:] = -np.inf
    for args in ((3, 2, 1), (2, 2, 1, 1, True), (3, 1, 1, 2)):
        fn, torch_fn = calls(F.max_pool2d, TF.max_pool2d, *args)
        check(fn, None, torch_fn, inputs=[values])
        _, indices = F.max_pool2d(sg.Tensor(values), *args, return_indices=True)
        _, ref = TF.max_pool2d(torch.tensor(values), *args, return_indices=True)
        np.testing.assert_array_equal(np.asarray(indices), ref.numpy(), err_msg=str(args))


@pytest.mark.parametrize("stride, padding, dilation, ceil_mode",
                         [(None, 0, 1, False), (1, 1, 2, False), (2, 1, 1, True), (3, 0, 1, True)])
def test_max_pool1d(device, stride, padding, dilation, ceil_mode):
    values = np.random.default_rng(0).permutation(2 * 3 * 8).reshape(2, 3, 8) / 5.0
    check(lambda x: F.max_pool1d(x, 3, stride, padding, dilation, ceil_mode), None,
          lambda x: TF.max_pool1d(x, 3, stride, padding, dilation, ceil_mode), inputs=[values])
    _, indices = F.max_pool1d(sg.Tensor(values), 3, stride, padding, dilation, ceil_mode, True)
    _, ref = TF.max_pool1d(torch.tensor(values), 3, stride, padding, dilation, ceil_mode, True)
    np.testing.assert_array_equal(np.asarray(indices), ref.numpy())


@pytest.mark.parametrize("kernel", [2, 3, (3, 2)])
def test_avg_pool2d_grid(device, kernel):
    cases = itertools.product([(1, 1, 5, 6), (2, 3, 7, 7)], [None, 1, 2, 3], [0, 1],
                              [False, True], [True, False])
    for shape, stride, padding, ceil_mode, include in grid(device, cases, 7):
        k = (kernel, kernel) if isinstance(kernel, int) else kernel
        if any(2 * padding > kk for kk in k):
            continue
        fn, torch_fn = calls(F.avg_pool2d, TF.avg_pool2d, kernel, stride, padding, ceil_mode,
                             include)
        check(fn, [shape], torch_fn)


def test_avg_pool_divisor_override_and_1d(device):
    check(lambda x: F.avg_pool2d(x, 3, 2, 1, divisor_override=5), [(2, 2, 6, 5)],
          lambda x: TF.avg_pool2d(x, 3, 2, 1, divisor_override=5))
    check(lambda x: F.avg_pool1d(x, 3, 2, 1, True, False), [(2, 2, 8)],
          lambda x: TF.avg_pool1d(x, 3, 2, 1, True, False))


@pytest.mark.parametrize("input_size, output_size",
                         [((7, 9), (3, 4)), ((6, 8), (3, 4)), ((5, 5), 1), ((7, 9), (7, 9)),
                          ((4, 5), (6, 7)), ((7, 9), (None, 5)), ((5, 6), 2)])
def test_adaptive_avg_pool2d(device, input_size, output_size):
    check(lambda x: F.adaptive_avg_pool2d(x, output_size), [(2, 3) + input_size],
          lambda x: TF.adaptive_avg_pool2d(x, output_size))


# ================================================================================================
# Modules
# ================================================================================================

def compare_layer(layer, torch_layer, x, train=True):
    """Load torch_layer's state dict into layer (both float64) and compare the output and the
    gradients of the input and of every parameter, matched by name."""
    torch_layer.double().train(train)
    layer.double().train(train)
    layer.load_state_dict(torch_layer.state_dict())
    sx, tx = sg.Tensor(x.copy(), requires_grad=True), torch.tensor(x.copy(), requires_grad=True)
    out, ref = layer(sx), torch_layer(tx)
    assert_close(out, ref, what="forward")
    upstream = np.random.default_rng(1).standard_normal(tuple(ref.shape))
    out.backward(sg.Tensor(upstream))
    ref.backward(torch.tensor(upstream))
    assert_close(sx.grad, tx.grad, what="gradient of the input")
    pairs = list(zip(layer.named_parameters(), torch_layer.named_parameters()))
    assert [a for (a, _), _ in pairs] == [b for _, (b, _) in pairs]
    for (name, p), (_, tp) in pairs:
        assert_close(p.grad, tp.grad, what=f"gradient of {name}")
    assert repr(layer) == repr(torch_layer)


@pytest.mark.parametrize("make, shape", [
    (lambda lib: lib.Conv1d(3, 4, 3, stride=2, padding=1), (2, 3, 9)),
    (lambda lib: lib.Conv2d(1, 6, 5, padding=2), (2, 1, 8, 8)),
    (lambda lib: lib.Conv2d(4, 6, (3, 2), stride=(2, 1), dilation=2, groups=2, bias=False),
     (1, 4, 9, 7)),
    (lambda lib: lib.Conv2d(2, 3, 3, padding="same"), (2, 2, 5, 6)),
    (lambda lib: lib.Conv3d(2, 2, 2, stride=1, padding=1), (1, 2, 3, 4, 3)),
    (lambda lib: lib.ConvTranspose2d(4, 2, 4, stride=2, padding=1), (2, 4, 3, 3)),
    (lambda lib: lib.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2,
                                     dilation=1), (1, 4, 4, 5)),
    (lambda lib: lib.MaxPool2d(2), (2, 3, 6, 7)),
    (lambda lib: lib.MaxPool2d(3, 2, 1), (2, 3, 7, 6)),
    (lambda lib: lib.AvgPool2d(2), (2, 3, 6, 7)),
    (lambda lib: lib.AvgPool2d(3, 1, 1, count_include_pad=False), (1, 2, 5, 5)),
    (lambda lib: lib.AdaptiveAvgPool2d((2, 3)), (2, 2, 5, 7)),
])
def test_modules_against_torch(device, make, shape):
    torch.manual_seed(0)
    compare_layer(make(nn), make(torch.nn), randn(*shape))


def test_batchnorm2d_train_eval_and_running_stats(device):
    layer, torch_layer = nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        torch_layer.weight.uniform_(0.5, 1.5)
        torch_layer.bias.uniform_(-1, 1)
    for seed in range(2):
        compare_layer(layer, torch_layer, randn(4, 3, 5, 6, seed=seed) * 2 + 1)
    for name, buffer in torch_layer.state_dict().items():
        assert_close(layer.state_dict()[name], buffer, what=name)
    compare_layer(layer, torch_layer, randn(2, 3, 4, 4, seed=5), train=False)
    assert list(layer.state_dict()) == list(torch_layer.state_dict())
    with pytest.raises(ValueError, match="BatchNorm2d: expected a 4-D input"):
        layer(sg.Tensor(randn(2, 3, 4)))


def test_conv_default_init_as_torch(device):
    sg.manual_seed(0)
    for layer, torch_layer in [(nn.Conv2d(6, 16, 5), torch.nn.Conv2d(6, 16, 5)),
                               (nn.Conv1d(4, 6, 3, groups=2), torch.nn.Conv1d(4, 6, 3, groups=2)),
                               (nn.ConvTranspose2d(4, 6, 3, groups=2),
                                torch.nn.ConvTranspose2d(4, 6, 3, groups=2))]:
        assert [(k, tuple(v.shape)) for k, v in layer.state_dict().items()] == \
            [(k, tuple(v.shape)) for k, v in torch_layer.state_dict().items()]
        assert layer.weight.dtype == np.float32 and layer.weight.requires_grad
        # kaiming_uniform_(a=sqrt(5)) and the bias both give U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        fan_in = layer.weight.shape[1] * int(np.prod(layer.weight.shape[2:]))
        bound = 1 / np.sqrt(fan_in)
        weight, bias = layer.weight.numpy(), layer.bias.numpy()
        assert np.abs(weight).max() <= bound and np.abs(bias).max() <= bound
        assert np.abs(weight).max() > 0.8 * bound  # 72 or more draws: spread over the range
        assert np.all(bias != 0)


def test_lenet_matches_torch(device):
    def lenet(lib):
        return lib.Sequential(lib.Conv2d(1, 6, 5, padding=2), lib.ReLU(), lib.MaxPool2d(2),
                              lib.Conv2d(6, 16, 5), lib.ReLU(), lib.MaxPool2d(2), lib.Flatten(),
                              lib.Linear(400, 120), lib.ReLU(), lib.Linear(120, 84), lib.ReLU(),
                              lib.Linear(84, 10))
    torch.manual_seed(0)
    torch_model = lenet(torch.nn).double()
    model = lenet(nn).double()
    model.load_state_dict(torch_model.state_dict())
    x = randn(2, 1, 28, 28)
    labels = np.array([3, 7])
    loss = F.cross_entropy(model(sg.Tensor(x)), sg.Tensor(labels))
    ref = TF.cross_entropy(torch_model(torch.tensor(x)), torch.tensor(labels))
    loss.backward()
    ref.backward()
    assert_close(loss, ref, what="loss")
    for (name, p), (_, tp) in zip(model.named_parameters(), torch_model.named_parameters()):
        assert_close(p.grad, tp.grad, what=f"gradient of {name}")


# ================================================================================================
# Errors
# ================================================================================================

def test_errors_name_the_op_and_shapes(device):
    x = sg.Tensor(randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match=r"conv2d: groups=3 must divide the input channels "
                                         r"\(4, input shape \(2, 4, 5, 5\)\)"):
        F.conv2d(x, sg.Tensor(randn(3, 1, 3, 3)), groups=3)
    with pytest.raises(ValueError, match=r"conv2d: an input of shape \(2, 4, 5, 5\) has 4 "
                                         r"channels, but a weight of shape \(6, 3, 3, 3\)"):
        F.conv2d(x, sg.Tensor(randn(6, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d: kernel \(7, 7\) with dilation \(1, 1\) is "
                                         r"larger than the padded input \(5, 5\)"):
        F.conv2d(x, sg.Tensor(randn(2, 4, 7, 7)))
    with pytest.raises(ValueError, match=r"conv2d: expected a 3-D \(unbatched\) or 4-D "
                                         r"\(batched\) input, got shape \(4, 5\)"):
        F.conv2d(sg.Tensor(randn(4, 5)), sg.Tensor(randn(2, 4, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d: weight must be 4-D"):
        F.conv2d(x, sg.Tensor(randn(2, 4, 3)))
    with pytest.raises(ValueError, match="conv2d: padding='same' is not supported for strided"):
        F.conv2d(x, sg.Tensor(randn(2, 4, 3, 3)), stride=2, padding="same")
    with pytest.raises(ValueError, match="conv1d: padding must be 'valid', 'same'"):
        F.conv1d(sg.Tensor(randn(1, 2, 5)), sg.Tensor(randn(1, 2, 3)), padding="full")
    with pytest.raises(ValueError, match=r"conv_transpose2d: output_padding \(2, 2\) must be "
                                         r"smaller than stride \(2, 2\)"):
        F.conv_transpose2d(x, sg.Tensor(randn(4, 2, 3, 3)), stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"conv_transpose2d: an input of shape \(2, 4, 5, 5\) "
                                         r"and a weight of shape \(3, 2, 3, 3\)"):
        F.conv_transpose2d(x, sg.Tensor(randn(3, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"max_pool2d: padding \(2, 2\) should be at most half "
                                         r"of kernel_size \(3, 3\)"):
        F.max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match=r"avg_pool2d: kernel_size \(6, 6\) .* does not fit an "
                                         r"input of shape \(2, 4, 5, 5\)"):
        F.avg_pool2d(x, 6)
    with pytest.raises(ValueError, match="Conv2d: groups=4 must divide in_channels"):
        nn.Conv2d(6, 8, 3, groups=4)


# ================================================================================================
# The backward of window views on NumpyDevice: a loop over kernel offsets, checked exact
# ================================================================================================

def scatter_by_add_at(g, shape, strides, offset, base_shape):
    """The obvious, slow adjoint of as_strided: np.add.at over every position of the view."""
    index = np.lib.stride_tricks.as_strided(np.arange(int(np.prod(base_shape)))[offset:], shape,
                                            tuple(s * 8 for s in strides))
    out = np.zeros(int(np.prod(base_shape)))
    np.add.at(out, index.reshape(-1), np.broadcast_to(g, shape).reshape(-1))
    return out.reshape(base_shape)


def window_view(base_shape, kernel, stride, dilation):
    """shape and strides of Tensor.windows over the last two dims of a row-major base."""
    strides = sg._contiguous_strides(base_shape)
    positions = tuple((n - d * (k - 1) - 1) // s + 1
                      for n, k, s, d in zip(base_shape[2:], kernel, stride, dilation))
    return (base_shape[:2] + positions + kernel,
            strides[:2] + tuple(a * s for a, s in zip(strides[2:], stride))
            + tuple(a * d for a, d in zip(strides[2:], dilation)))


@pytest.mark.parametrize("kernel, stride, dilation, loops", [
    ((3, 3), (1, 1), (1, 1), 2),   # overlapping windows: one loop per kernel offset
    ((2, 2), (2, 2), (1, 1), 2),   # windows that tile the input: one += per kernel offset
    ((2, 3), (3, 4), (1, 1), 3),   # stride > kernel: gaps never read (+ one short dim)
    ((3, 2), (1, 2), (2, 3), 2),   # dilation, overlapping along one dim
    ((5, 5), (1, 1), (1, 1), 2),   # LeNet's
])
def test_numpy_as_strided_scatter_fast_path_is_exact(kernel, stride, dilation, loops):
    base = (2, 3, 9, 10)
    shape, strides = window_view(base, kernel, stride, dilation)
    assert sg._scatter_loops(shape, strides) == loops
    g = np.random.default_rng(0).standard_normal(shape)
    got = sg.NumpyDevice().as_strided_scatter(g, shape, strides, 0, base)
    np.testing.assert_allclose(got, scatter_by_add_at(g, shape, strides, 0, base),
                               rtol=1e-13, atol=1e-13)
    # integer values make every sum exact, whatever the order of the additions
    gi = np.random.default_rng(1).integers(-50, 50, shape).astype(np.float64)
    np.testing.assert_array_equal(sg.NumpyDevice().as_strided_scatter(gi, shape, strides, 0,
                                                                      base),
                                  scatter_by_add_at(gi, shape, strides, 0, base))


def test_numpy_as_strided_scatter_falls_back_to_bincount():
    # overlapping along both dims, and more than 256 trailing offsets: no cheap split
    shape, strides, base = (20, 300), (1, 1), (321,)
    assert sg._scatter_loops(shape, strides) is None
    g = np.random.default_rng(0).integers(-9, 9, shape).astype(np.float64)
    np.testing.assert_array_equal(sg.NumpyDevice().as_strided_scatter(g, shape, strides, 2, base),
                                  scatter_by_add_at(g, shape, strides, 2, base))


def test_numpy_as_strided_scatter_takes_a_broadcast_gradient():
    # the gradient of a sum over windows arrives broadcast (stride 0)
    shape, strides = window_view((1, 2, 6, 6), (3, 3), (1, 1), (1, 1))
    g = np.broadcast_to(np.float64(1.5), shape)
    np.testing.assert_array_equal(
        sg.NumpyDevice().as_strided_scatter(g, shape, strides, 0, (1, 2, 6, 6)),
        scatter_by_add_at(g, shape, strides, 0, (1, 2, 6, 6)))
