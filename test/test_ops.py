"""Every op against PyTorch: forward values and gradients, through the one helper `check`.

Most tests are one line: `check(fn, shapes)` runs fn on simplegrad tensors and on torch
tensors made from the same random arrays, then compares the outputs and, for a random
upstream gradient, the gradient of every input. Where the two libraries spell an op
differently, `lib(x)` picks the module (torch or simplegrad) that matches the tensor x, or
a separate torch_fn is given. Tolerances are the helper's (float64: rtol 1e-9, atol 1e-11;
float32: rtol 2e-4, atol 2e-5) unless a test says otherwise.
"""

import numpy as np
import pytest
from helpers import (
    EPS,
    FLOATS,
    LARGE_SCALES,
    ULP_TOLERANCES,
    assert_close,
    check,
    in_float64,
    large_logits,
    torch,
)

import simplegrad as sg

F = torch.nn.functional

pytestmark = pytest.mark.usefixtures("device")

DTYPES = [np.float64, np.float32]


def lib(t):
    """The module that matches tensor t: torch for torch tensors, simplegrad otherwise."""
    return torch if isinstance(t, torch.Tensor) else sg


def away_from_zero(shape, seed=1, low=0.5, high=2.0):
    """Random values with |v| in [low, high] and random signs (safe divisors)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, size=shape) * rng.choice([-1.0, 1.0], size=shape)


# ================================================================================================
# Elementwise
# ================================================================================================

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", [
    lambda x, y: x + y,
    lambda x, y: x - y,
    lambda x, y: x * y,
    lambda x, y: x.add(y),
    lambda x, y: x.sub(y),
    lambda x, y: x.mul(y),
], ids=["add", "sub", "mul", "add_method", "sub_method", "mul_method"])
def test_binary(fn, dtype):
    check(fn, [(3, 4), (3, 4)], dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_div(dtype):
    inputs = [away_from_zero((3, 4), seed=1), away_from_zero((3, 4), seed=2)]
    check(lambda x, y: x / y, None, inputs=inputs, dtype=dtype)
    check(lambda x, y: x.div(y), None, inputs=inputs, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pow_tensor_tensor(dtype):
    check(lambda x, y: x ** y, [(3, 4), (3, 4)], low=0.5, high=2.0, dtype=dtype)
    check(lambda x, y: x.pow(y), [(3, 4), (3, 4)], low=0.5, high=2.0, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", [
    lambda x: x + 2.0, lambda x: 2.0 + x, lambda x: x + 3, lambda x: 3 + x,
    lambda x: x - 2.0, lambda x: 2.0 - x, lambda x: x - 3, lambda x: 3 - x,
    lambda x: x * 2.5, lambda x: 2.5 * x, lambda x: x * -3, lambda x: -3 * x,
    lambda x: x / 4.0, lambda x: x / 3, lambda x: x ** 2, lambda x: x ** 3, lambda x: x ** 1,
    lambda x: x ** 0, lambda x: x ** -2, lambda x: 2 ** x, lambda x: 0.5 ** x,
    lambda x: x.mul(-1.0), lambda x: x.add(1.5), lambda x: x.sub(0.5), lambda x: x.pow(2),
    lambda x: -x, lambda x: x.neg(), lambda x: +x,
])
def test_scalar_arithmetic(fn, dtype):
    # x ** 0 has gradient 0 everywhere; x ** -2 stays away from 0 in away_from_zero.
    # A Python scalar never promotes the tensor's dtype (DESIGN: dtypes).
    out = check(fn, None, inputs=[away_from_zero((3, 4))], dtype=dtype)
    assert out.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", [
    lambda x: 4.0 / x, lambda x: 2 / x, lambda x: x.reciprocal(), lambda x: x ** -1,
])
def test_scalar_divided_by_tensor(fn, dtype):
    assert check(fn, None, inputs=[away_from_zero((3, 4))], dtype=dtype).dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", [
    lambda x: x ** 0.5, lambda x: x ** 1.5, lambda x: x ** -0.5, lambda x: x ** 2.7,
    lambda x: x.sqrt(), lambda x: x.rsqrt(), lambda x: x.log(), lambda x: 2.0 ** x.log(),
])
def test_positive_inputs(fn, dtype):
    check(fn, [(3, 4)], low=0.1, high=3.0, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", [
    lambda x: x.exp(), lambda x: x.abs(), lambda x: x.square(), lambda x: x.relu(),
    lambda x: x.sigmoid(), lambda x: x.tanh(), lambda x: x.neg().exp(),
])
def test_unary(fn, dtype):
    check(fn, [(3, 4)], dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn, torch_fn", [
    (lambda x: x.leaky_relu(), F.leaky_relu),
    (lambda x: x.leaky_relu(0.1), lambda x: F.leaky_relu(x, 0.1)),
    (lambda x: x.gelu(), F.gelu),
    (lambda x: x.gelu(approximate="none"), lambda x: F.gelu(x, approximate="none")),
    (lambda x: x.gelu(approximate="tanh"), lambda x: F.gelu(x, approximate="tanh")),
    (lambda x: x.softplus(), F.softplus),
    (lambda x: x.softplus(beta=2.0, threshold=5.0),
     lambda x: F.softplus(x, beta=2.0, threshold=5.0)),
    (lambda x: x.softplus(beta=0.5, threshold=0.5),
     lambda x: F.softplus(x, beta=0.5, threshold=0.5)),
    (lambda x: x.erf(), torch.erf),
], ids=["leaky_relu", "leaky_relu_0.1", "gelu", "gelu_none", "gelu_tanh", "softplus",
        "softplus_beta2_th5", "softplus_beta05_th05", "erf"])
def test_activations(fn, torch_fn, dtype):
    check(fn, [(4, 5)], torch_fn, dtype=dtype, low=-4.0, high=4.0)


def test_abs_relu_at_zero():
    # gradients at the kinks: abs'(0) = 0, relu'(0) = 0, leaky_relu'(0) = slope (as PyTorch)
    x = [np.array([-1.0, 0.0, 0.0, 2.0])]
    check(lambda x: x.abs(), None, inputs=x)
    check(lambda x: x.relu(), None, inputs=x)
    check(lambda x: x.leaky_relu(0.2), None, lambda x: F.leaky_relu(x, 0.2), inputs=x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", [
    lambda x: x.clamp(-0.5, 0.5), lambda x: x.clamp(min=-0.5), lambda x: x.clamp(max=0.5),
    lambda x: x.clip(-1.0, 0.25), lambda x: x.clamp(-1, 1),
])
def test_clamp_scalar_bounds(fn, dtype):
    # the bounds themselves are in the input: the gradient passes there (as torch.clamp)
    x = np.array([[-2.0, -0.5, -0.25, 0.0], [0.25, 0.5, 1.0, 1.5], [-1.0, 0.3, -0.7, 2.0]])
    check(fn, None, inputs=[x], dtype=dtype)


def _ordered_bounds():
    """x with lower bounds below 0 and upper bounds above 0, all (3, 4)."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-2, 2, (3, 4))
    lo = rng.uniform(-1.5, 0, (3, 4))
    hi = rng.uniform(0, 1.5, (3, 4))
    return [x, lo, hi]


def test_clamp_tensor_bounds():
    check(lambda x, lo, hi: x.clamp(lo, hi), None, inputs=_ordered_bounds())
    check(lambda x, lo: x.clamp(min=lo), [(3, 4), (4,)])
    check(lambda x, hi: x.clamp(max=hi), [(3, 4), (3, 1)])


def test_clamp_tensor_bounds_ties():
    # x equal to a bound: torch.clamp gives the gradient to x, not to the bound
    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    lo = np.array([-0.5, -0.5, -0.5, -0.5, -0.5, -0.5])
    hi = np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    check(lambda x, lo, hi: x.clamp(lo, hi), None, inputs=[x, lo, hi])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum(name, dtype):
    fn = {"maximum": lambda x, y: lib(x).maximum(x, y),
          "minimum": lambda x, y: lib(x).minimum(x, y)}[name]
    check(fn, [(3, 4), (3, 4)], dtype=dtype)
    check(fn, [(3, 4), (4,)], dtype=dtype)
    # exact ties: torch splits the gradient 0.5 / 0.5
    x = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]])
    y = np.array([[1.0, 0.0, 3.0], [0.0, 4.0, 5.0]])
    check(fn, None, inputs=[x, y], dtype=dtype)


def test_maximum_methods_and_scalars():
    x, y = np.array([[1.0, 2.0, -3.0]]), np.array([[1.0, 0.5, 3.0]])
    check(lambda x, y: x.maximum(y), None, inputs=[x, y])
    check(lambda x, y: x.minimum(y), None, inputs=[x, y])
    check(lambda x, y: x.max(y), None, inputs=[x, y])
    check(lambda x, y: x.min(y), None, inputs=[x, y])
    # a tie with a broadcast 0-d tensor: its gradient sums the half it gets from the tie
    check(lambda x, z: lib(x).maximum(x, z), None, inputs=[np.array([-1.0, 0.0, 2.0]), 0.0])
    check(lambda x, z: lib(x).minimum(x, z), None, inputs=[np.array([-1.0, 0.0, 2.0]), 0.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_where(dtype):
    check(lambda c, x, y: lib(x).where(c > 0, x, y), [(3, 4), (3, 4), (3, 4)], dtype=dtype)
    check(lambda c, x, y: lib(x).where(c > 0, x, y), [(3, 1), (3, 4), (4,)], dtype=dtype)
    check(lambda x: lib(x).where(x > 0, x, 0.0), [(3, 4)], dtype=dtype)
    check(lambda x: lib(x).where(x > 0, 1.0, x * x), [(3, 4)], dtype=dtype)


def test_where_bool_array_condition():
    cond = np.array([[True, False, True], [False, False, True]])
    check(lambda x, y: sg.where(cond, x, y), [(2, 3), (2, 3)],
          lambda x, y: torch.where(torch.from_numpy(cond), x, y))


# ================================================================================================
# Extreme inputs: finite wherever PyTorch is finite, and equal to PyTorch
# ================================================================================================

EXTREME = np.array([-1000.0, -50.0, -20.0, -1.0, -1e-8, 0.0, 1e-8, 1.0, 20.0, 50.0, 1000.0])

EXTREME_FNS = {
    "tanh": (lambda x: x.tanh(), None),
    "sigmoid": (lambda x: x.sigmoid(), None),
    "gelu": (lambda x: x.gelu(), F.gelu),
    "gelu_tanh": (lambda x: x.gelu(approximate="tanh"), lambda x: F.gelu(x, approximate="tanh")),
    "softplus": (lambda x: x.softplus(), F.softplus),
    "softplus_beta": (lambda x: x.softplus(beta=2.0, threshold=5.0),
                      lambda x: F.softplus(x, beta=2.0, threshold=5.0)),
    "relu": (lambda x: x.relu(), None),
    "leaky_relu": (lambda x: x.leaky_relu(0.1), lambda x: F.leaky_relu(x, 0.1)),
    "logsumexp": (lambda x: x.logsumexp(-1), None),
    "logsumexp_2d": (lambda x: x.reshape(1, -1).expand(3, -1).logsumexp(1), None),
    "softmax": (lambda x: x.softmax(-1), None),
    "log_softmax": (lambda x: x.log_softmax(-1), None),
    "exp": (lambda x: x.exp(), None),
}


@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(EXTREME_FNS))
def test_extreme_inputs(name, dtype):
    fn, torch_fn = EXTREME_FNS[name]
    # values and gradients equal to torch's (assert_close treats equal infinities as equal)
    check(fn, None, torch_fn, inputs=[EXTREME], dtype=dtype)
    # and finite wherever torch's are
    x = sg.Tensor(EXTREME.astype(dtype), requires_grad=True)
    t = torch.tensor(EXTREME.astype(dtype), requires_grad=True)
    out, ref = fn(x), (torch_fn or fn)(t)
    out.sum().backward()
    ref.sum().backward()
    ref_value, ref_grad = ref.detach().numpy(), t.grad.numpy()
    np.testing.assert_array_equal(np.isfinite(out.numpy()), np.isfinite(ref_value))
    np.testing.assert_array_equal(np.isfinite(x.grad.numpy()), np.isfinite(ref_grad))
    if name != "exp":
        assert np.isfinite(ref_value).all() and np.isfinite(ref_grad).all()


@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")
def test_exp_overflows_like_torch():
    x = sg.Tensor(np.array([1000.0, -1000.0]))
    np.testing.assert_array_equal(x.exp().numpy(), [np.inf, 0.0])


# Large inputs in every float dtype: values and gradients as precise as torch's (float16 is
# computed in float32 and rounded once, as torch does); tolerances in helpers.ULP_TOLERANCES

LARGE_FNS = {
    "log_softmax": (lambda x: x.log_softmax(-1), None),
    "log_softmax_dim0": (lambda x: x.log_softmax(0), None),
    "softmax": (lambda x: x.softmax(-1), None),
    "softmin": (lambda x: sg.nn.functional.softmin(x, 0), lambda x: F.softmin(x, 0)),
    "logsumexp": (lambda x: x.logsumexp(-1), None),
    "gelu": (lambda x: x.gelu(), F.gelu),
    "gelu_tanh": (lambda x: x.gelu(approximate="tanh"), lambda x: F.gelu(x, approximate="tanh")),
}


# float16 at 6e4: log-probabilities below -65504 are -inf, as in torch
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda dtype: np.dtype(dtype).name)
@pytest.mark.parametrize("name", sorted(LARGE_FNS))
def test_large_inputs_every_dtype(name, dtype):
    fn, torch_fn = LARGE_FNS[name]
    torch_fn = torch_fn or fn
    tol = ULP_TOLERANCES[dtype]
    # float16 also at 6e4, near its largest finite value (x - max is -inf there, in both)
    for scale in LARGE_SCALES[dtype] + ([6e4] if dtype == np.float16 else []):
        x = large_logits(scale)
        # against torch in the same dtype; nan or inf where torch is finite fails
        if name != "logsumexp":
            check(fn, None, torch_fn, inputs=[x], dtype=dtype, rtol=tol, atol=tol)
        else:
            # torch's gradient, g exp(x - out) with out rounded to the dtype, is off by up to
            # |out| eps / 2 relative (in float16 by a factor up to e^0.25 at |out| = 1000):
            # its values are compared here, its gradients with that allowance, and in float16
            # only the float64 computation below is a reference for them
            check(fn, None, torch_fn, inputs=[x], dtype=dtype, rtol=tol, atol=tol, grad=False)
            if dtype != np.float16:
                allowance = scale * EPS[dtype]
                check(fn, None, torch_fn, inputs=[x], dtype=dtype, rtol=allowance,
                      atol=allowance)
        # and against the float64 computation, rounded to the dtype
        if dtype != np.float64:
            check(fn, None, in_float64(torch_fn), inputs=[x], dtype=dtype, rtol=tol, atol=tol)


# ================================================================================================
# Broadcasting of binary ops: the engine un-broadcasts the gradients
# ================================================================================================

BROADCAST_SHAPES = [
    [(3, 4), (4,)], [(4,), (3, 4)], [(3, 1), (1, 4)], [(2, 3, 4), (3, 1)], [(1,), (2, 3)],
    [(), (3,)], [(3,), ()], [(5, 1, 3), (4, 1)], [(2, 1, 1), (1, 3, 1)], [(), ()],
]


@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=str)
@pytest.mark.parametrize("fn", [
    lambda x, y: x + y, lambda x, y: x - y, lambda x, y: x * y,
    lambda x, y: lib(x).maximum(x, y), lambda x, y: lib(x).minimum(x, y),
], ids=["add", "sub", "mul", "maximum", "minimum"])
def test_broadcasting(fn, shapes):
    check(fn, shapes)


@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=str)
def test_broadcasting_div_pow(shapes):
    inputs = [away_from_zero(s, seed=i) for i, s in enumerate(shapes)]
    check(lambda x, y: x / y, None, inputs=inputs)
    check(lambda x, y: x ** y, shapes, low=0.5, high=2.0)


# ================================================================================================
# Reductions
# ================================================================================================

REDUCE_DIMS = [
    (None, False), (None, True), (0, False), (1, True), (-1, False), (-2, True),
    ((0, 2), False), ((-1, 0), True), ((0, 1, 2), False),
]


def _torch_dim(dim):
    return (0, 1, 2) if dim is None else dim


def _same(fn):
    """A reduction spelled the same in both libraries."""
    return fn, fn


# name: (simplegrad fn, torch fn), each called as fn(x, dim, keepdim)
REDUCTIONS = {
    "sum": _same(lambda x, d, k: x.sum(dim=d, keepdim=k)),
    "mean": _same(lambda x, d, k: x.mean(dim=d, keepdim=k)),
    "var": _same(lambda x, d, k: x.var(dim=d, keepdim=k)),
    "var_correction0": _same(lambda x, d, k: x.var(dim=d, keepdim=k, correction=0)),
    "std": _same(lambda x, d, k: x.std(dim=d, keepdim=k)),
    "std_correction0": _same(lambda x, d, k: x.std(dim=d, keepdim=k, correction=0)),
    "amax": _same(lambda x, d, k: x.amax(dim=d, keepdim=k)),
    "amin": _same(lambda x, d, k: x.amin(dim=d, keepdim=k)),
    # torch's logsumexp takes no dim=None: all dims are named instead
    "logsumexp": (lambda x, d, k: x.logsumexp(dim=d, keepdim=k),
                  lambda x, d, k: x.logsumexp(dim=_torch_dim(d), keepdim=k)),
}


@pytest.mark.parametrize("dim, keepdim", REDUCE_DIMS, ids=str)
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction(name, dim, keepdim):
    fn, torch_fn = REDUCTIONS[name]
    check(lambda x: fn(x, dim, keepdim), [(2, 3, 4)], lambda x: torch_fn(x, dim, keepdim))


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction_float32(name):
    fn, torch_fn = REDUCTIONS[name]
    check(lambda x: fn(x, 1, False), [(3, 4, 5)], lambda x: torch_fn(x, 1, False),
          dtype=np.float32)


@pytest.mark.parametrize("name", ["sum", "mean", "var", "std", "amax", "amin", "logsumexp"])
def test_reduction_numpy_spelling(name):
    # axis= / keepdims= on simplegrad, dim= / keepdim= on torch
    sg_fns = {
        "sum": lambda x: x.sum(axis=1, keepdims=True),
        "mean": lambda x: x.mean(axis=(0, 2), keepdims=False),
        "var": lambda x: x.var(axis=-1, keepdims=True),
        "std": lambda x: x.std(axis=0),
        "amax": lambda x: x.amax(axis=(1, 2), keepdims=True),
        "amin": lambda x: x.amin(axis=-2),
        "logsumexp": lambda x: x.logsumexp(axis=1, keepdims=True),
    }
    torch_fns = {
        "sum": lambda x: x.sum(dim=1, keepdim=True),
        "mean": lambda x: x.mean(dim=(0, 2), keepdim=False),
        "var": lambda x: x.var(dim=-1, keepdim=True),
        "std": lambda x: x.std(dim=0),
        "amax": lambda x: x.amax(dim=(1, 2), keepdim=True),
        "amin": lambda x: x.amin(dim=-2),
        "logsumexp": lambda x: x.logsumexp(dim=1, keepdim=True),
    }
    check(sg_fns[name], [(2, 3, 4)], torch_fns[name])


def test_reduction_positional_and_default():
    check(lambda x: x.sum(), [(2, 3)])
    check(lambda x: x.sum(1), [(2, 3)])
    check(lambda x: x.mean(), [(2, 3)])
    check(lambda x: x.mean(0), [(2, 3)])
    check(lambda x: x.var(), [(2, 3)])
    check(lambda x: x.std(), [(2, 3)])
    check(lambda x: x.var(1), [(2, 3)])
    check(lambda x: x.sum(), [()])
    check(lambda x: x.mean(), [(5,)])


def _tied(shape, seed=0):
    """Small integers as floats: many exact ties in every reduction."""
    return np.random.default_rng(seed).integers(0, 3, size=shape).astype(np.float64)


@pytest.mark.parametrize("dim, keepdim", REDUCE_DIMS, ids=str)
@pytest.mark.parametrize("name", ["amax", "amin"])
def test_amax_amin_ties(name, dim, keepdim):
    # torch.amax / amin split the gradient evenly among the tied extremes
    fn, torch_fn = REDUCTIONS[name]
    check(lambda x: fn(x, dim, keepdim), None, lambda x: torch_fn(x, dim, keepdim),
          inputs=[_tied((2, 3, 4))])


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_min_all_ties(dtype):
    # x.max() / x.min() over everything split the gradient evenly, like torch.max()
    x = np.array([[1.0, 3.0, 3.0], [0.0, 3.0, 0.0]])
    check(lambda x: x.max(), None, inputs=[x], dtype=dtype)
    check(lambda x: x.min(), None, inputs=[x], dtype=dtype)
    check(lambda x: x.max(), [(3, 4)], dtype=dtype)
    check(lambda x: x.min(), [(3, 4)], dtype=dtype)


@pytest.mark.parametrize("dim, keepdim", [(0, False), (1, True), (-1, False), (2, True)])
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_dim(name, dim, keepdim):
    def fn(x):
        return x.max(dim, keepdim=keepdim) if name == "max" else x.min(dim, keepdim=keepdim)

    check(lambda x: fn(x).values, [(2, 3, 4)])
    check(lambda x: fn(x)[0], [(2, 3, 4)])
    check(lambda x: fn(x).values, [(2, 3, 4)], dtype=np.float32)
    a = np.random.default_rng(0).uniform(-2, 2, (2, 3, 4))
    out, ref = fn(sg.Tensor(a)), fn(torch.tensor(a))
    assert_close(out.values, ref.values)
    np.testing.assert_array_equal(out.indices.numpy(), ref.indices.numpy())
    np.testing.assert_array_equal(out[1].numpy(), ref[1].numpy())
    assert out.indices.dtype == np.int64


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_dim_ties(name):
    # ties: the gradient goes to one index only, the one returned (torch's first occurrence)
    a = _tied((3, 5))

    def fn(x):
        return x.max(1) if name == "max" else x.min(1)

    check(lambda x: fn(x).values, None, inputs=[a])
    np.testing.assert_array_equal(fn(sg.Tensor(a)).indices.numpy(),
                                  fn(torch.tensor(a)).indices.numpy())
    x = sg.Tensor(a, requires_grad=True)
    fn(x).values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy().sum(1), np.ones(3))
    assert ((x.grad.numpy() == 0) | (x.grad.numpy() == 1)).all()


@pytest.mark.parametrize("dim, keepdim", [(None, False), (None, True), (0, False), (1, True),
                                          (-1, False)])
@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin(name, dim, keepdim):
    def fn(x):
        if name == "argmax":
            return x.argmax(dim=dim, keepdim=keepdim)
        return x.argmin(dim=dim, keepdim=keepdim)

    out = check(fn, [(3, 4)], grad=False)
    assert out.dtype == np.int64
    check(fn, [(2, 3, 4)], grad=False)
    # ties: the first occurrence, as torch on the CPU and NumPy
    check(fn, None, inputs=[_tied((3, 4))], grad=False)


def test_argmax_numpy_spelling():
    check(lambda x: x.argmax(axis=1, keepdims=True), [(3, 4)],
          lambda x: x.argmax(dim=1, keepdim=True), grad=False)
    check(lambda x: x.argmin(1), [(3, 4)], grad=False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1, -3])
def test_softmax_log_softmax(dim, dtype):
    check(lambda x: x.softmax(dim), [(2, 3, 4)], dtype=dtype)
    check(lambda x: x.softmax(dim=dim), [(2, 3, 4)], dtype=dtype)
    check(lambda x: x.log_softmax(dim), [(2, 3, 4)], dtype=dtype)
    check(lambda x: x.log_softmax(dim=dim), [(2, 3, 4)], dtype=dtype)
    check(lambda x: x.logsoftmax(dim), [(2, 3, 4)], lambda x: x.log_softmax(dim), dtype=dtype)


def test_softmax_default_dim_is_last():
    check(lambda x: x.softmax(), [(3, 4)], lambda x: x.softmax(-1))
    check(lambda x: x.log_softmax(), [(3, 4)], lambda x: x.log_softmax(-1))
    check(lambda x: x.logsoftmax(), [(3, 4)], lambda x: x.log_softmax(-1))
    check(lambda x: x.softmax(axis=0), [(3, 4)], lambda x: x.softmax(0))


# ================================================================================================
# Movement
# ================================================================================================

@pytest.mark.parametrize("fn", [
    lambda x: x.reshape(6, 4), lambda x: x.reshape((4, -1)), lambda x: x.reshape(-1),
    lambda x: x.reshape(2, -1, 2), lambda x: x.view(3, 8), lambda x: x.view(-1, 12),
    lambda x: x.reshape(2, 3, 4),
    lambda x: x.flatten(), lambda x: x.flatten(1), lambda x: x.flatten(0, 1),
    lambda x: x.flatten(start_dim=1, end_dim=2), lambda x: x.flatten(-2, -1),
    lambda x: x.transpose(0, 1), lambda x: x.transpose(0, 2), lambda x: x.transpose(-1, -2),
    lambda x: x.permute(2, 0, 1), lambda x: x.permute((1, 2, 0)), lambda x: x.permute(-1, 0, 1),
    lambda x: x.mT, lambda x: x.unsqueeze(0), lambda x: x.unsqueeze(-1),
    lambda x: x.unsqueeze(-3), lambda x: x.unsqueeze(2),
    lambda x: x.expand(5, 2, 3, 4), lambda x: x[:, :1].expand(2, 3, 4),
    lambda x: x[:, :1].expand(-1, 3, -1), lambda x: x[:, :1].broadcast_to((2, 2, 3, 4)),
    lambda x: x[:1, :, :1].expand_as(x),
])
def test_movement(fn):
    check(fn, [(2, 3, 4)])


def test_transpose_2d():
    check(lambda x: x.T, [(3, 4)])
    check(lambda x: x.mT, [(3, 4)])
    check(lambda x: x.transpose(0, 1), [(3, 4)], dtype=np.float32)


@pytest.mark.parametrize("fn", [
    lambda x: x.squeeze(), lambda x: x.squeeze(0), lambda x: x.squeeze(2),
    lambda x: x.squeeze(-1), lambda x: x.squeeze(1), lambda x: x.squeeze((0, 2)),
    lambda x: x.squeeze(dim=-2),
])
def test_squeeze(fn):
    check(fn, [(1, 3, 1, 4)])


@pytest.mark.parametrize("pad", [
    (1, 2), (1, 2, 0, 1), (0, 0, 2, 0), (1, 1, 1, 1, 1, 1), (-1, 1), (-1, 1, 2, -1),
    (0, -2, -1, 0), (2, 0, 0, 0),
], ids=str)
@pytest.mark.parametrize("value", [0.0, 0.5])
def test_pad(pad, value):
    check(lambda x: x.pad(pad, value=value), [(2, 3, 4)],
          lambda x: F.pad(x, pad, value=value))


def test_pad_float32_and_default_value():
    check(lambda x: x.pad((1, 2, 0, 1), value=0.5), [(3, 4)],
          lambda x: F.pad(x, (1, 2, 0, 1), value=0.5), dtype=np.float32)
    check(lambda x: x.pad((1, 1)), [(3, 4)], lambda x: F.pad(x, (1, 1)))


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_cat(dim):
    shapes = [[2, 3, 4] for _ in range(3)]
    for i, s in enumerate(shapes):
        s[dim] += i  # different sizes along the joined dim
    check(lambda x, y, z: lib(x).cat([x, y, z], dim=dim), [tuple(s) for s in shapes])


def test_cat_two_and_one():
    check(lambda x, y: lib(x).cat([x, y]), [(2, 3), (4, 3)])
    check(lambda x, y: lib(x).cat((x, y), 1), [(2, 3), (2, 1)])
    check(lambda x: lib(x).cat([x]), [(2, 3)])
    check(lambda x, y: sg.concatenate([x, y], axis=1), [(2, 3), (2, 1)],
          lambda x, y: torch.cat([x, y], dim=1))
    check(lambda x, y: lib(x).cat([x, y], -1), [(2, 3), (2, 2)], dtype=np.float32)


@pytest.mark.parametrize("dim", [0, 1, 2, 3, -1, -2, -4])
def test_stack(dim):
    check(lambda x, y, z: lib(x).stack([x, y, z], dim=dim), [(2, 3, 4)] * 3)


def test_stack_two():
    check(lambda x, y: lib(x).stack([x, y]), [(3,), (3,)])
    check(lambda x, y: lib(x).stack((x, y), 1), [(3, 2), (3, 2)], dtype=np.float32)


def _pieces(pieces):
    """Join pieces into one output, each scaled differently, so every piece is compared."""
    return lib(pieces[0]).cat([p.flatten() * (i + 1) for i, p in enumerate(pieces)])


@pytest.mark.parametrize("fn", [
    lambda x: x.split(2), lambda x: x.split(2, dim=1), lambda x: x.split(3, dim=-1),
    lambda x: x.split([1, 4], dim=1), lambda x: x.split([2, 0, 1, 1], dim=2),
    lambda x: x.split(1, 0), lambda x: x.split(5, dim=1),
    lambda x: x.chunk(2), lambda x: x.chunk(3, dim=1), lambda x: x.chunk(2, dim=-1),
    lambda x: x.chunk(5, dim=1),
])
def test_split_chunk(fn):
    shape = (3, 5, 4)
    check(lambda x: _pieces(fn(x)), [shape])
    a = np.random.default_rng(0).uniform(size=shape)
    out, ref = fn(sg.Tensor(a)), fn(torch.tensor(a))
    assert len(out) == len(ref)
    for p, r in zip(out, ref):
        assert_close(p, r)


# ---- indexing -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", [
    lambda x: x[1], lambda x: x[-1], lambda x: x[1, 2], lambda x: x[-1, -2, -3],
    lambda x: x[1:], lambda x: x[:, 1:3], lambda x: x[::2, 1:-1], lambda x: x[:, ::2, 1::2],
    lambda x: x[..., 1], lambda x: x[1, ...], lambda x: x[..., 1:3, ::3],
    lambda x: x[None], lambda x: x[:, None, 1], lambda x: x[None, ..., None],
    lambda x: x[0, None, :, None], lambda x: x[-2:, -3:-1], lambda x: x[1:1],
    lambda x: x[[0, 2]], lambda x: x[[0, 0, 1]], lambda x: x[[-1, 0]],
    lambda x: x[np.array([2, 0, 2])], lambda x: x[np.array([[0, 1], [1, 1]])],
    lambda x: x[lib(x).tensor([1, 1, 0])], lambda x: x[:, [0, 2]], lambda x: x[:, [3, 3, 0]],
    lambda x: x[[1, 0], :, None], lambda x: x[[0, 1], [2, 0]], lambda x: x[[0, 0], [1, 1]],
    lambda x: x[[0, 2], 1:, [3, 0]], lambda x: x[1, [0, 0, 2]], lambda x: x[..., [1, 1]],
    lambda x: x[[2, 0], [1, 2], [3, 3]], lambda x: x[lib(x).tensor([0, 2]), :, 1],
    lambda x: x[x > 0], lambda x: x[x[:, 0, 0] > 0], lambda x: x[:, x[0, :, 0] > 0],
])
def test_getitem(fn):
    check(fn, [(3, 4, 5)])


def test_getitem_numpy_bool_mask():
    a = np.random.default_rng(0).uniform(-2, 2, (3, 4))
    mask = a > 0
    check(lambda x: x[mask], None, lambda x: x[torch.from_numpy(mask)], inputs=[a])
    rows = np.array([True, False, True])
    check(lambda x: x[rows], None, lambda x: x[torch.from_numpy(rows)], inputs=[a])
    check(lambda x: x[rows, 1:], None, lambda x: x[torch.from_numpy(rows), 1:], inputs=[a])


def test_getitem_float32():
    check(lambda x: x[[0, 0, 2], 1:], [(3, 4)], dtype=np.float32)
    check(lambda x: x[::2, 1:], [(3, 4)], dtype=np.float32)


@pytest.mark.parametrize("key", [
    np.s_[::-1], np.s_[::-2], np.s_[:, ::-1], np.s_[2:0:-1, 1], np.s_[::-1, [0, 0, 3]],
    np.s_[-1::-3, None, ::-2],
], ids=str)
def test_getitem_negative_steps(key):
    # torch has no negative steps: compare with NumPy and the adjoint that indexing must have
    rng = np.random.default_rng(0)
    a = rng.uniform(-2, 2, (4, 5))
    x = sg.Tensor(a, requires_grad=True)
    out = x[key]
    assert_close(out, a[key])
    g = rng.standard_normal(out.shape)
    out.backward(sg.Tensor(g))
    expected = np.zeros_like(a)
    np.add.at(expected, key, g)
    assert_close(x.grad, expected)


# ================================================================================================
# Contraction
# ================================================================================================

EINSUMS = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij->ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("ii,i->i", [(3, 3), (3,)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("ij,ij->", [(3, 4), (3, 4)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,i->", [(5,), (5,)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("...ij,...jk->...ik", [(3, 4), (2, 4, 5)]),
    ("i...->...", [(3, 2, 4)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("ba,ac", [(3, 4), (4, 5)]),
    ("ijk->kji", [(2, 3, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("ij,jk,kl->li", [(2, 3), (3, 4), (4, 5)]),
    ("ij->i", [(3, 4)]),
    ("ij->j", [(3, 4)]),
    ("ij,k->ik", [(3, 4), (5,)]),
    ("ijk,k->j", [(2, 3, 4), (4,)]),
    ("iij->j", [(3, 3, 4)]),
    ("iij->ij", [(3, 3, 4)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("i,i,i->i", [(4,), (4,), (4,)]),
    ("ji,jk->ik", [(4, 3), (4, 5)]),
    (" ij , jk -> ik ", [(3, 4), (4, 5)]),
]


@pytest.mark.parametrize("subscripts, shapes", EINSUMS, ids=[e for e, _ in EINSUMS])
def test_einsum(subscripts, shapes):
    check(lambda *xs: lib(xs[0]).einsum(subscripts, *xs), shapes)


@pytest.mark.parametrize("subscripts, shapes", EINSUMS[:12], ids=[e for e, _ in EINSUMS[:12]])
def test_einsum_float32(subscripts, shapes):
    check(lambda *xs: lib(xs[0]).einsum(subscripts, *xs), shapes, dtype=np.float32)


def test_einsum_method_and_list_forms():
    check(lambda a, b: a.einsum("ij,jk->ik", b), [(3, 4), (4, 5)],
          lambda a, b: torch.einsum("ij,jk->ik", a, b))
    check(lambda a: a.einsum("ij->ji"), [(3, 4)], lambda a: torch.einsum("ij->ji", a))
    check(lambda a, b, c: a.einsum("ij,jk,kl->il", b, c), [(2, 3), (3, 4), (4, 5)],
          lambda a, b, c: torch.einsum("ij,jk,kl->il", a, b, c))
    check(lambda a, b: lib(a).einsum("ij,jk->ik", [a, b]), [(3, 4), (4, 5)])


MATMULS = [
    [(3, 4), (4, 5)], [(4,), (4, 5)], [(3, 4), (4,)], [(4,), (4,)], [(2, 3, 4), (4, 5)],
    [(3, 4), (2, 4, 5)], [(2, 3, 4), (2, 4, 5)], [(2, 1, 3, 4), (5, 4, 2)], [(4,), (2, 4, 3)],
    [(2, 3, 4), (4,)], [(1, 1), (1, 1)],
]


@pytest.mark.parametrize("shapes", MATMULS, ids=str)
def test_matmul(shapes):
    check(lambda x, y: x @ y, shapes)
    check(lambda x, y: x.matmul(y), shapes)
    check(lambda x, y: lib(x).matmul(x, y), shapes)


@pytest.mark.parametrize("shapes", MATMULS[:8], ids=str)
def test_matmul_float32(shapes):
    check(lambda x, y: x @ y, shapes, dtype=np.float32)


def test_dot():
    check(lambda x, y: x.dot(y), [(5,), (5,)])
    check(lambda x, y: x.dot(y), [(5,), (5,)], dtype=np.float32)


def test_matmul_with_numpy_operand():
    w = np.random.default_rng(5).standard_normal((4, 2))
    check(lambda x: x @ w, [(3, 4)], lambda x: x @ torch.from_numpy(w))
    check(lambda x: w.T @ x, [(4, 3)], lambda x: torch.from_numpy(w.T.copy()) @ x)


# ================================================================================================
# Views: as_strided and windows
# ================================================================================================

AS_STRIDED = [
    ((5,), (3, 3), (1, 1), 0),         # overlapping windows: gradients accumulate
    ((5,), (2, 2), (2, 1), 1),
    ((12,), (2, 2, 3), (6, 1, 2), 0),
    ((3, 4), (3, 4), (0, 1), 0),       # stride 0 reads one row three times
    ((3, 4), (2, 2), (4, 1), 5),
    ((4, 5), (3, 2), (5, 2), 1),
    ((4, 5), (2, 3, 3), (5, 1, 5), 0),
    ((2, 3), (6,), (1,), 0),
    ((6,), (0, 3), (1, 1), 0),
    ((6,), (), (), 4),
]


@pytest.mark.parametrize("shape, size, stride, offset", AS_STRIDED, ids=str)
def test_as_strided(shape, size, stride, offset):
    check(lambda x: x.as_strided(size, stride, offset), [shape])


def test_as_strided_float32_and_default_offset():
    check(lambda x: x.as_strided((3, 3), (1, 1)), [(5,)], dtype=np.float32)
    check(lambda x: x.as_strided((2, 3), (3, 1)), [(6,)])


def _torch_windows(x, kernel, stride, dilation):
    """Windows over the last len(kernel) dims through unfold (then every dilation-th element).

    unfold keeps each unfolded dim in place (now the positions) and appends the window."""
    k, n = len(kernel), x.ndim
    for i, (kk, st, dl) in enumerate(zip(kernel, stride, dilation)):
        x = x.unfold(n - k + i, dl * (kk - 1) + 1, st)
    window = (slice(None),) * n + tuple(slice(None, None, dl) for dl in dilation)
    return x[window]


WINDOWS = [
    ((2, 3, 7, 8), (3, 2), (1, 1), (1, 1)),
    ((2, 3, 7, 8), (3, 2), (2, 1), (1, 1)),
    ((2, 3, 7, 8), (3, 2), (2, 1), (1, 2)),
    ((1, 2, 6, 6), (2, 2), (2, 2), (1, 1)),
    ((3, 10), (3,), (2,), (1,)),
    ((3, 10), (3,), (1,), (3,)),
    ((10,), (4,), (3,), (2,)),
    ((2, 4, 5, 6), (2, 3, 3), (1, 2, 1), (2, 1, 1)),
]


@pytest.mark.parametrize("shape, kernel, stride, dilation", WINDOWS, ids=str)
def test_windows(shape, kernel, stride, dilation):
    check(lambda x: x.windows(kernel, stride, dilation), [shape],
          lambda x: _torch_windows(x, kernel, stride, dilation))


def test_windows_int_arguments():
    check(lambda x: x.windows(3, stride=2), [(2, 9)], lambda x: x.unfold(-1, 3, 2))
    check(lambda x: x.windows(3), [(2, 5)], lambda x: x.unfold(-1, 3, 1))
    check(lambda x: x.windows((2, 2), 2), [(1, 4, 6)],
          lambda x: x.unfold(1, 2, 2).unfold(2, 2, 2), dtype=np.float32)


# ================================================================================================
# The original simplegrad's chaining style
# ================================================================================================

def test_chaining_style():
    X = np.random.default_rng(7).standard_normal((6, 5))   # (features, samples)
    shapes = [(6, 8), (8,), (8, 3), (3,)]

    def net(w0, b0, w1, b1):
        data = X.astype(np.asarray(w0.detach()).dtype)
        if lib(w0) is torch:
            h = torch.einsum("ji,jk->ik", torch.from_numpy(data), w0).add(b0).relu()
            return torch.einsum("ij,jk->ik", h, w1).add(b1)
        h = sg.Tensor(data).einsum("ji,jk->ik", w0).add(b0).relu()
        return h.einsum("ij,jk->ik", w1).add(b1)

    check(net, shapes)
    check(lambda *p: net(*p).logsoftmax(), shapes, lambda *p: net(*p).log_softmax(-1))
    check(lambda *p: net(*p).softmax(), shapes, lambda *p: net(*p).softmax(-1))
    check(lambda *p: net(*p).logsoftmax().mul(-1.0).sum(axis=1).mean(), shapes,
          lambda *p: net(*p).log_softmax(-1).mul(-1.0).sum(dim=1).mean())
    check(lambda *p: net(*p).softmax().mul(-1.0).sum(axis=1).mean(), shapes,
          lambda *p: net(*p).softmax(-1).mul(-1.0).sum(dim=1).mean(), dtype=np.float32)


# ================================================================================================
# Second derivatives
# ================================================================================================

def check_second(fn, shapes, torch_fn=None, low=-2.0, high=2.0, seed=0, dtype=np.float64):
    """Gradients (with create_graph=True) and the gradients of their weighted sum, in both
    libraries: d/dx_i sum_j (w_j . dy/dx_j v), through grad() and through backward()."""
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(low, high, size=s).astype(dtype) for s in shapes]
    xs = [sg.Tensor(a.copy(), requires_grad=True) for a in arrays]
    ts = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    out, ref = fn(*xs), (torch_fn or fn)(*ts)
    assert_close(out, ref, dtype, what="forward")
    v = rng.standard_normal(ref.shape).astype(dtype)
    ws = [rng.standard_normal(s).astype(dtype) for s in shapes]
    g_sg = sg.grad(out, xs, sg.Tensor(v), create_graph=True)
    g_t = torch.autograd.grad(ref, ts, torch.tensor(v), create_graph=True)
    for i, (a, b) in enumerate(zip(g_sg, g_t)):
        assert_close(a, b, dtype, what=f"gradient {i}")
        assert a.requires_grad, f"gradient {i} has no graph with create_graph=True"
    s_sg = sum((g * sg.Tensor(w)).sum() for g, w in zip(g_sg, ws))
    s_t = sum((g * torch.tensor(w)).sum() for g, w in zip(g_t, ws))
    h_t = torch.autograd.grad(s_t, ts, allow_unused=True)
    h_sg = sg.grad(s_sg, xs, allow_unused=True)
    for i, (a, b) in enumerate(zip(h_sg, h_t)):
        if b is None:
            assert a is None or not np.any(a.numpy()), f"second derivative {i}: torch has none"
            continue
        assert a is not None, f"second derivative {i} missing"
        assert_close(a, b, dtype, what=f"second derivative {i}")

    # the same through backward(create_graph=True) and .grad
    xs = [sg.Tensor(a.copy(), requires_grad=True) for a in arrays]
    (fn(*xs) * sg.Tensor(v)).sum().backward(create_graph=True)
    s_sg = sum((x.grad * sg.Tensor(w)).sum() for x, w in zip(xs, ws))
    h_sg = sg.grad(s_sg, xs, allow_unused=True)
    for i, (a, b) in enumerate(zip(h_sg, h_t)):
        if b is not None:
            assert_close(a, b, dtype, what=f"second derivative {i} via backward")


@pytest.mark.parametrize("fn, shapes, low, torch_fn", [
    (lambda x: x.tanh(), [(3, 4)], -2.0, None),
    (lambda x: x.sigmoid(), [(3, 4)], -2.0, None),
    (lambda x: x.exp(), [(3, 4)], -2.0, None),
    (lambda x: x.log(), [(3, 4)], 0.2, None),
    (lambda x: x ** 3, [(3, 4)], -2.0, None),
    (lambda x: x ** 2.5, [(3, 4)], 0.2, None),
    (lambda x: 2 ** x, [(3, 4)], -2.0, None),
    (lambda x, y: x ** y, [(3, 4), (3, 4)], 0.2, None),
    (lambda x: x.sqrt(), [(3, 4)], 0.2, None),
    (lambda x: x.softmax(-1), [(3, 4)], -2.0, None),
    (lambda x: x.log_softmax(0), [(3, 4)], -2.0, None),
    (lambda x: x.logsumexp(1), [(3, 4)], -2.0, None),
    (lambda x, y: x @ y, [(3, 4), (4, 5)], -2.0, None),
    (lambda x, y: (x @ y).tanh(), [(2, 3, 4), (4, 5)], -2.0, None),
    (lambda x, y: x * y / (x * x + 1), [(3, 4), (4,)], -2.0, None),
    (lambda x, y: lib(x).einsum("ij,jk->ik", x, y).sigmoid(), [(3, 4), (4, 5)], -2.0, None),
    (lambda x, y: lib(x).einsum("ij,ij->i", x, y) ** 2, [(3, 4), (3, 4)], -2.0, None),
    (lambda x: lib(x).einsum("ii->i", x).exp(), [(3, 3)], -2.0, None),
    (lambda x: x.gelu(), [(3, 4)], -2.0, F.gelu),
    (lambda x: x.var(1), [(3, 4)], -2.0, None),
    (lambda x: x.amax(1) * x.sum(1), [(3, 4)], -2.0, None),
    (lambda x: x[[0, 0, 2], 1:] ** 2, [(3, 4)], -2.0, None),
    (lambda x: x.as_strided((3, 3), (1, 1)).tanh(), [(5,)], -2.0, None),
    (lambda x: x.pad((1, 1), value=0.5).exp(), [(3, 4)], -2.0,
     lambda x: F.pad(x, (1, 1), value=0.5).exp()),
    (lambda x, y: lib(x).cat([x, y], 1).tanh(), [(3, 4), (3, 2)], -2.0, None),
    (lambda x, y: lib(x).maximum(x, y) * x, [(3, 4), (3, 4)], -2.0, None),
], ids=["tanh", "sigmoid", "exp", "log", "cube", "pow2.5", "rpow", "pow_tensor", "sqrt",
        "softmax", "log_softmax", "logsumexp", "matmul", "matmul_tanh", "broadcast_div",
        "einsum", "einsum_rowdot", "einsum_diag", "gelu", "var", "amax_sum", "getitem",
        "as_strided", "pad", "cat", "maximum"])
def test_second_derivative(fn, shapes, low, torch_fn):
    check_second(fn, shapes, torch_fn, low=low)


def test_second_derivative_float32():
    check_second(lambda x, y: (x @ y).tanh(), [(3, 4), (4, 5)], dtype=np.float32)


def test_hessian_vector_product_mlp():
    rng = np.random.default_rng(11)
    data = rng.standard_normal((5, 3))
    target = rng.standard_normal((5, 2))
    params = [rng.standard_normal(s) * 0.5 for s in [(3, 4), (4,), (4, 2), (2,)]]
    vecs = [rng.standard_normal(p.shape) for p in params]

    def hvp(module, make):
        ps = [make(p.copy(), requires_grad=True) for p in params]
        x, y = make(data), make(target)
        w1, b1, w2, b2 = ps
        loss = ((((x @ w1 + b1).tanh() @ w2 + b2) - y) ** 2).mean()
        grad = torch.autograd.grad if module is torch else sg.grad
        gs = grad(loss, ps, create_graph=True)
        gv = sum((g * make(v)).sum() for g, v in zip(gs, vecs))
        return loss, gs, grad(gv, ps)

    loss, gs, hv = hvp(sg, sg.Tensor)
    t_loss, t_gs, t_hv = hvp(torch, torch.tensor)
    assert_close(loss, t_loss, what="loss")
    for i in range(len(params)):
        assert_close(gs[i], t_gs[i], what=f"gradient {i}")
        assert_close(hv[i], t_hv[i], what=f"Hessian-vector product {i}")


# ================================================================================================
# Error messages
# ================================================================================================

def test_error_add_shape_mismatch():
    x, y = sg.Tensor(np.zeros((3, 4))), sg.Tensor(np.zeros((5,)))
    with pytest.raises(ValueError, match=r"add.*\(3, 4\).*\(5,\)"):
        x + y
    with pytest.raises(ValueError, match=r"mul.*\(3, 4\).*\(5,\)"):
        x * y
    with pytest.raises(ValueError, match=r"sub.*\(3, 4\).*\(5,\)"):
        x - y


def test_error_matmul_shape_mismatch():
    x, y = sg.Tensor(np.zeros((3, 4))), sg.Tensor(np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"matmul.*\(3, 4\).*\(5, 2\)"):
        x @ y
    with pytest.raises(ValueError, match=r"matmul.*\(2, 3, 4\).*\(3, 4, 2\)"):
        sg.Tensor(np.zeros((2, 3, 4))) @ sg.Tensor(np.zeros((3, 4, 2)))


@pytest.mark.parametrize("subscripts, shapes, why", [
    ("ij,jk->ik", [(3, 4), (4,)], "names 2 dims but the operand has 1"),
    ("ijk->k", [(3, 4)], "names 3 dims"),
    ("ij->k", [(3, 4)], "'k' appears in no operand"),
    ("ij,jk->ik", [(3, 4), (5, 2)], "'j' has sizes 4 and 5"),
    ("ij,jk->ik", [(3, 4)], "2 operands but 1"),
    ("ij->ii", [(3, 4)], "repeated"),
    ("i1->i", [(3, 4)], "letters"),
], ids=["too_few_dims", "too_many_letters", "missing_output", "size_mismatch",
        "operand_count", "repeated_output", "not_letters"])
def test_error_einsum(subscripts, shapes, why):
    operands = [sg.Tensor(np.zeros(s)) for s in shapes]
    with pytest.raises(ValueError, match="einsum") as info:
        sg.einsum(subscripts, *operands)
    assert why in str(info.value)
    assert subscripts in str(info.value)


def test_error_reduction_dim_out_of_range():
    x = sg.Tensor(np.zeros((2, 3)))
    with pytest.raises(IndexError, match=r"sum.*dim 2.*\(2, 3\)"):
        x.sum(2)
    with pytest.raises(IndexError, match=r"sum.*dim -3.*\(2, 3\)"):
        x.sum(dim=-3)
    with pytest.raises(IndexError, match=r"mean.*\(2, 3\)"):
        x.mean(axis=(0, 5))
    with pytest.raises(IndexError, match=r"amax.*\(2, 3\)"):
        x.amax(dim=4)
