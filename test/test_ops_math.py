"""Elementwise maths, operators and activations against PyTorch, through the one helper `check`.

Each op is run as a Tensor method and as a module-level function (sg.sin(x), sg.nn.functional.elu
(x)), on inputs inside its domain (acosh above 1, atanh inside (-1, 1), log1p above -1 ...), on
extreme inputs where PyTorch is finite, and at the points where a piecewise op changes branch
(-3, 0, 3, 6, +-lambd, the thresholds), where its gradient must be PyTorch's. Tolerances are the
helper's (float64: rtol 1e-9, atol 1e-11; float32: rtol 2e-4, atol 2e-5) unless a test says
otherwise. Second derivatives go through check_second (test_ops.py).
"""

import math

import numpy as np
import pytest
from helpers import assert_close, assert_same, check, torch
from test_ops import BROADCAST_SHAPES, DTYPES, away_from_zero, check_second, lib

import simplegrad as sg

F = torch.nn.functional

pytestmark = pytest.mark.usefixtures("device")


def fn_lib(t):
    """nn.functional of the library that matches tensor t."""
    return F if isinstance(t, torch.Tensor) else sg.nn.functional


# ================================================================================================
# Unary elementwise maths
# ================================================================================================

# name: (low, high) of the inputs, inside the op's domain and away from its poles
UNARY_DOMAINS = {
    "sin": (-4.0, 4.0), "cos": (-4.0, 4.0), "tan": (-1.3, 1.3),
    "asin": (-0.95, 0.95), "acos": (-0.95, 0.95), "atan": (-4.0, 4.0),
    "sinh": (-3.0, 3.0), "cosh": (-3.0, 3.0), "tanh": (-3.0, 3.0),
    "asinh": (-4.0, 4.0), "acosh": (1.05, 4.0), "atanh": (-0.95, 0.95),
    "log2": (0.05, 4.0), "log10": (0.05, 4.0), "log1p": (-0.95, 4.0),
    "exp2": (-4.0, 4.0), "expm1": (-4.0, 4.0), "rsqrt": (0.05, 4.0),
    "square": (-3.0, 3.0), "sinc": (-3.0, 3.0), "deg2rad": (-360.0, 360.0),
    "rad2deg": (-4.0, 4.0), "erf": (-3.0, 3.0), "erfc": (-3.0, 3.0), "sigmoid": (-5.0, 5.0),
}


def _unary_method(name):
    return lambda x: getattr(x, name)()


def _unary_function(name):
    return lambda x: getattr(lib(x), name)(x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(UNARY_DOMAINS))
def test_unary(name, dtype):
    low, high = UNARY_DOMAINS[name]
    out = check(_unary_method(name), [(3, 4)], low=low, high=high, dtype=dtype)
    assert out.dtype == dtype
    check(_unary_function(name), [(2, 3)], low=low, high=high, dtype=dtype, seed=1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reciprocal(dtype):
    inputs = [away_from_zero((3, 4), low=0.2, high=3.0)]
    check(lambda x: x.reciprocal(), None, inputs=inputs, dtype=dtype)
    check(lambda x: lib(x).reciprocal(x), None, inputs=inputs, dtype=dtype)


def test_unary_zero_dim_and_empty():
    check(lambda x: x.asinh(), [()])
    check(lambda x: x.log1p(), [(0, 3)], low=0.0)
    check(lambda x: lib(x).atan2(x, x + 1), [()])


# alias: (simplegrad / torch name of the alias, the op it spells)
ALIASES = [
    ("arcsin", "asin", (-0.9, 0.9)), ("arccos", "acos", (-0.9, 0.9)),
    ("arctan", "atan", (-3.0, 3.0)), ("arcsinh", "asinh", (-3.0, 3.0)),
    ("arccosh", "acosh", (1.1, 3.0)), ("arctanh", "atanh", (-0.9, 0.9)),
    ("absolute", "abs", (-3.0, 3.0)), ("negative", "neg", (-3.0, 3.0)),
    ("sgn", "sign", (-3.0, 3.0)), ("fix", "trunc", (-3.0, 3.0)),
]


def _torch_name(name):
    # torch's gradient of sgn is a ZeroTensor, which .numpy() refuses: sign has the same values
    # and gradient
    return "sign" if name == "sgn" else name


@pytest.mark.parametrize("alias, name, domain", ALIASES, ids=[a for a, _, _ in ALIASES])
def test_aliases(alias, name, domain):
    low, high = domain
    check(lambda x: getattr(x, alias)(), [(3, 4)], lambda t: getattr(t, _torch_name(alias))(),
          low=low, high=high)
    check(lambda x: getattr(lib(x), alias)(x), [(3, 4)],
          lambda t: getattr(torch, _torch_name(alias))(t), low=low, high=high)
    a = np.random.default_rng(0).uniform(low, high, (3, 4))
    np.testing.assert_array_equal(getattr(sg.Tensor(a), alias)().numpy(),
                                  getattr(sg.Tensor(a), name)().numpy())


def test_binary_aliases():
    check(lambda x, y: x.arctan2(y), [(3, 4), (3, 4)])
    check(lambda x, y: lib(x).arctan2(x, y), [(3, 4), (4,)])
    check(lambda x, y: lib(x).multiply(x, y), [(3, 4), (4,)])
    check(lambda x, y: lib(x).subtract(x, y), [(3, 4), (3, 1)])
    check(lambda x, y: x.true_divide(y), None, inputs=[away_from_zero((3, 4), seed=1),
                                                       away_from_zero((3, 4), seed=2)])


def test_integer_inputs_become_float32():
    # as PyTorch: the floating ops of an integer tensor give float32
    for name in ["sin", "exp2", "log1p", "sqrt", "atan", "erfc", "sinc", "deg2rad"]:
        ints = np.array([[0, 1, 2], [3, 4, 5]], dtype=np.int64)
        out = getattr(sg.Tensor(ints), name)()
        ref = getattr(torch.tensor(ints), name)()
        assert out.dtype == np.float32, name
        assert_close(out, ref, np.float32, what=name)


# ---- extreme inputs: finite where PyTorch is, and equal to it -----------------------------------

EXTREME_UNARY = {
    "sin": [-1e6, -20.0, -1e-300, 0.0, 1e-300, 1e6],
    "tan": [-1e6, -1.5, 0.0, 1.5, 1e6],
    "atan": [-1e300, -1e10, -1e-300, 0.0, 1e10, 1e300],
    "sinh": [-700.0, -50.0, -1e-300, 0.0, 1e-8, 50.0, 700.0],
    "cosh": [-700.0, -50.0, 0.0, 1e-8, 50.0, 700.0],
    "asinh": [-1e300, -1e10, -1e-8, 0.0, 1e-300, 1e10, 1e150],
    "acosh": [1.0 + 1e-12, 1.5, 1e10, 1e150],
    "atanh": [-1 + 1e-12, -0.999, -1e-300, 0.0, 0.5, 1 - 1e-12],
    "log2": [1e-300, 1e-20, 1.0, 1e20, 1e300],
    "log10": [1e-300, 1e-20, 1.0, 1e20, 1e300],
    "log1p": [-1 + 1e-12, -0.5, -1e-300, 0.0, 1e-20, 1e10, 1e300],
    "exp2": [-1000.0, -50.0, 0.0, 1e-20, 50.0, 1000.0],
    "expm1": [-700.0, -50.0, -1e-20, 0.0, 1e-300, 50.0, 700.0],
    "rsqrt": [1e-300, 1e-20, 1.0, 1e20, 1e300],
    "sinc": [-1e6, -2.0, -1.0, -1e-12, 0.0, 1e-300, 0.5, 1.0, 3.0, 1e6],
    "erf": [-30.0, -5.0, -1e-300, 0.0, 1e-8, 5.0, 30.0],
    "erfc": [-30.0, -5.0, 0.0, 1e-8, 5.0, 10.0, 26.0],
    "square": [-1e150, -1e-200, 0.0, 1e100],
    "sigmoid": [-1000.0, -50.0, 0.0, 50.0, 1000.0],
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", sorted(EXTREME_UNARY))
def test_unary_extreme_inputs_float64(name):
    # values and gradients equal to torch's (equal infinities count as equal) ...
    a = np.array(EXTREME_UNARY[name])
    check(_unary_method(name), None, inputs=[a])
    # ... and finite wherever torch's are
    x, t = sg.Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    getattr(x, name)().sum().backward()
    getattr(t, name)().sum().backward()
    np.testing.assert_array_equal(np.isfinite(x.grad.numpy()), np.isfinite(t.grad.numpy()))


EXTREME_UNARY_FLOAT32 = {
    "sinh": [-100.0, -20.0, -1e-30, 0.0, 1e-30, 20.0, 88.0, 100.0],
    "cosh": [-100.0, -20.0, 0.0, 1e-30, 20.0, 88.0, 100.0],
    "expm1": [-100.0, -20.0, -1e-30, 0.0, 1e-30, 20.0, 88.0, 100.0],
    "exp2": [-200.0, -20.0, 0.0, 1e-30, 20.0, 127.0, 200.0],
    "log1p": [-0.999, -0.5, -1e-30, 0.0, 1e-30, 20.0, 1e30],
    "atanh": [-0.999, -0.5, -1e-30, 0.0, 1e-30, 0.5, 0.999],
    "asinh": [-1e30, -20.0, -1e-30, 0.0, 1e-30, 20.0, 1e18],
    "sinc": [-1e6, -1.0, -1e-30, 0.0, 1e-30, 0.5, 1e6],
    "erfc": [-20.0, -5.0, 0.0, 1e-30, 5.0, 9.0],
    "sigmoid": [-100.0, -20.0, 0.0, 20.0, 100.0],
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", sorted(EXTREME_UNARY_FLOAT32))
def test_unary_extreme_inputs_float32(name):
    # float32 overflows sooner: torch's results are the reference, infinities included
    check(_unary_method(name), None, inputs=[np.array(EXTREME_UNARY_FLOAT32[name])],
          dtype=np.float32)


# ---- piecewise-constant ops: zero gradient, still in the graph -----------------------------------

STEP_INPUT = np.array([[-2.5, -1.5, -0.5, -0.0, 0.0, 0.5],
                       [1.5, 2.5, -1.7, 1.2, 3.0, -3.0],
                       [0.49999999999999994, 2.675, -0.25, 7.5, -7.5, 1e-8]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["floor", "ceil", "trunc", "round", "sign", "sgn", "fix"])
def test_step_ops(name, dtype):
    torch_method = _unary_method(_torch_name(name))
    out = check(_unary_method(name), None, torch_method, inputs=[STEP_INPUT], dtype=dtype)
    assert out.requires_grad, f"{name}: the result must stay in the graph (as torch)"
    assert out.dtype == dtype
    check(_unary_function(name), None, _unary_function(_torch_name(name)), inputs=[STEP_INPUT],
          dtype=dtype)
    check(_unary_method(name), [(3, 4)], torch_method, low=-4.0, high=4.0, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("decimals", [0, 1, 2, 3, -1, -2])
def test_round_decimals(decimals, dtype):
    a = np.concatenate([STEP_INPUT.reshape(-1), [1234.5678, -987.654, 0.125, 0.375, 25.0, 35.0,
                                                 150.0, -250.0, 0.005, 1.0049]])
    out = check(lambda x: x.round(decimals=decimals), None, inputs=[a], dtype=dtype)
    assert out.requires_grad
    check(lambda x: lib(x).round(x, decimals=decimals), [(3, 4)], low=-50, high=50,
          dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_frac(dtype):
    check(lambda x: x.frac(), None, inputs=[STEP_INPUT], dtype=dtype)
    check(lambda x: lib(x).frac(x), [(3, 4)], low=-5.0, high=5.0, dtype=dtype)


@pytest.mark.parametrize("name", ["floor", "ceil", "trunc", "round", "sign"])
def test_step_ops_on_integers(name):
    ints = np.array([[-3, -1, 0], [1, 2, 7]], dtype=np.int64)
    out, ref = getattr(sg.Tensor(ints), name)(), getattr(torch.tensor(ints), name)()
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out.numpy(), ref.numpy())


def test_sign_gradient_is_zero_not_missing():
    x = sg.Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    y = (x.sign() * x).sum()  # = |x|: the gradient comes from the x factor only
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [-1.0, 0.0, 1.0])


# ---- nan_to_num ----------------------------------------------------------------------------------

NAN_INF = np.array([[np.nan, np.inf, -np.inf, 1.5], [-2.0, 0.0, np.nan, 3.25]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", [{}, {"nan": 2.0}, {"posinf": 10.0}, {"neginf": -7.0},
                                    {"nan": -1.0, "posinf": 1e3, "neginf": -1e3}], ids=str)
def test_nan_to_num(kwargs, dtype):
    check(lambda x: x.nan_to_num(**kwargs), None, inputs=[NAN_INF], dtype=dtype)
    check(lambda x: lib(x).nan_to_num(x, **kwargs), None, inputs=[NAN_INF], dtype=dtype)


# ================================================================================================
# Binary elementwise maths
# ================================================================================================

def _positive(shape, seed):
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape)


def _any(shape, seed):
    return np.random.default_rng(seed).uniform(-2.0, 2.0, shape)


def _signed(shape, seed):
    return away_from_zero(shape, seed=seed, low=0.5, high=2.0)


# name: (draw x, draw y): inputs where both libraries are smooth and agree
BINARY = {
    "atan2": (_any, _signed),
    "hypot": (_signed, _any),
    "logaddexp": (_any, _any),
    "logaddexp2": (_any, _any),
    "fmax": (_any, _any),
    "fmin": (_any, _any),
    "remainder": (_any, _signed),
    "fmod": (_any, _signed),
    "copysign": (_any, _signed),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary(name, dtype):
    draw_x, draw_y = BINARY[name]
    inputs = [draw_x((3, 4), 1), draw_y((3, 4), 2)]
    out = check(lambda x, y: getattr(x, name)(y), None, inputs=inputs, dtype=dtype)
    assert out.dtype == dtype
    check(lambda x, y: getattr(lib(x), name)(x, y), None, inputs=inputs, dtype=dtype)


@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_broadcasting(name, shapes):
    draw_x, draw_y = BINARY[name]
    inputs = [draw_x(shapes[0], 3), draw_y(shapes[1], 4)]
    check(lambda x, y: getattr(lib(x), name)(x, y), None, inputs=inputs)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_with_scalar(name):
    # a Python number keeps the tensor's dtype; torch's atan2, hypot, ... take a 0-d tensor
    draw_x, _ = BINARY[name]
    for dtype in DTYPES:
        out = check(lambda x: getattr(x, name)(1.5), None,
                    lambda t: getattr(t, name)(torch.tensor(1.5, dtype=t.dtype)),
                    inputs=[draw_x((3, 4), 5)], dtype=dtype)
        assert out.dtype == dtype
        check(lambda x: getattr(sg, name)(x, -0.75), None,
              lambda t: getattr(torch, name)(t, torch.tensor(-0.75, dtype=t.dtype)),
              inputs=[draw_x((3, 4), 6)], dtype=dtype)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_binary_special_points():
    # exact ties, zeros and signs, where each op's rule picks a side
    x = np.array([1.0, -1.0, 0.0, 0.0, 2.0, -3.0, 5.5, -5.5, 3.0])
    y = np.array([1.0, -1.0, 1.0, -1.0, 2.0, 1.5, -2.0, 2.0, -0.5])
    for name in ["atan2", "fmax", "fmin", "copysign", "remainder", "fmod", "logaddexp",
                 "logaddexp2"]:
        check(lambda a, b, name=name: getattr(lib(a), name)(a, b), None, inputs=[x, y])
    check(lambda a, b: lib(a).hypot(a, b), None, inputs=[x + 0.5, y])


def test_fmax_fmin_nan():
    # a nan in one operand gives the other, and the gradient goes to the number
    x = np.array([np.nan, 1.0, np.nan, -2.0, 0.5])
    y = np.array([2.0, np.nan, np.nan, -3.0, 0.5])
    check(lambda a, b: lib(a).fmax(a, b), None, inputs=[x, y])
    check(lambda a, b: lib(a).fmin(a, b), None, inputs=[x, y])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_binary_extreme_inputs():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0, 1e300, -1e300])
    y = np.array([1000.0, -50.0, 1e-300, 49.0, -1000.0, 1e300, 1.0])
    check(lambda a, b: lib(a).logaddexp(a, b), None, inputs=[x, y])
    check(lambda a, b: lib(a).logaddexp2(a, b), None, inputs=[x[:5], y[:5]])
    # atan2 at (0, 1e-300), where x^2 + y^2 underflows: test_atan2_gradient_where_x2_y2_is_0
    check(lambda a, b: lib(a).atan2(a, b), None, inputs=[x[[0, 1, 3, 4, 5, 6]],
                                                         y[[0, 1, 3, 4, 5, 6]]])
    check(lambda a, b: lib(a).hypot(a, b), None, inputs=[x[[0, 1, 3, 4]], y[[0, 1, 3, 4]]])
    check(lambda a, b: lib(a).hypot(a, b), None, inputs=[np.array([1e200, 3e-200]),
                                                         np.array([1e200, 4e-200])])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_atan2_gradient_where_x2_y2_is_0():
    x = np.array([0.0, -0.0, 0.0, 0.0, 1.0])
    y = np.array([0.0, -0.0, -0.0, 1e-300, 1.0])
    check(lambda a, b: lib(a).atan2(a, b), None, inputs=[x, y])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_rsqrt_of_negative_zero():
    check(lambda x: x.rsqrt(), None, inputs=[np.array([-0.0, 0.0, 4.0])])


@pytest.mark.parametrize("dtype", DTYPES)
def test_lerp(dtype):
    rng = np.random.default_rng(0)
    start, end = rng.uniform(-2, 2, (3, 4)), rng.uniform(-2, 2, (3, 4))
    weight = np.array([[0.0, 0.25, 0.5, 1.0], [-0.5, 1.5, 0.49, 0.51], [0.1, 0.9, 2.0, -1.0]])
    check(lambda s, e, w: s.lerp(e, w), None, inputs=[start, end, weight], dtype=dtype)
    check(lambda s, e, w: lib(s).lerp(s, e, w), None, inputs=[start, end, weight], dtype=dtype)
    for w in [0.0, 0.3, 0.5, 0.7, 1.0, 1.5]:
        check(lambda s, e, w=w: s.lerp(e, w), None, inputs=[start, end], dtype=dtype)
    check(lambda s, e, w: s.lerp(e, w), [(3, 4), (4,), (3, 1)], low=0.0, high=1.0, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_clamp_tensor_bounds_broadcast_and_function(dtype):
    check(lambda x, lo, hi: x.clamp(lo, hi), [(3, 4), (4,), (3, 1)], dtype=dtype)
    check(lambda x, lo, hi: lib(x).clamp(x, lo, hi), [(3, 4), (4,), (3, 1)], dtype=dtype)
    check(lambda x, lo: lib(x).clamp(x, min=lo), [(2, 3, 4), (3, 1)], dtype=dtype)
    check(lambda x, hi: x.clip(max=hi), [(2, 3, 4), ()], dtype=dtype)


def test_clamp_integer_tensor_keeps_or_promotes_like_torch():
    ints = np.array([[-3, 0, 2, 7]], dtype=np.int64)
    assert_same(sg.Tensor(ints).clamp(0, 3), torch.tensor(ints).clamp(0, 3), "int bounds")
    assert_same(sg.Tensor(ints).clamp(min=1), torch.tensor(ints).clamp(min=1), "int min")


def test_clamp_integer_tensor_with_float_bounds_is_float32():
    ints = np.array([[-3, 0, 2, 7]], dtype=np.int64)
    assert_same(sg.Tensor(ints).clamp(0.5, 2.5), torch.tensor(ints).clamp(0.5, 2.5),
                "float bounds")


def test_clamp_tensor_bounds_crossed():
    # min > max: torch.clamp gives max everywhere
    x = np.array([-2.0, 0.0, 0.5, 3.0])
    lo, hi = np.full(4, 1.0), np.full(4, -1.0)
    check(lambda x, lo, hi: x.clamp(lo, hi), None, inputs=[x, lo, hi])


# ================================================================================================
# Operators: integers, bools and floats
# ================================================================================================

INTS_X = np.array([[7, -7, 0, 13], [-1, 5, 100, -64]], dtype=np.int64)
INTS_Y = np.array([[2, 3, -4, -5], [3, -2, 7, 8]], dtype=np.int64)
SHIFTS = np.array([[0, 1, 2, 3], [1, 4, 2, 5]], dtype=np.int64)
BOOL_X = np.array([[True, True, False, False]])
BOOL_Y = np.array([[True, False, True, False]])


INT_OPERATORS = {
    "mod": lambda x, y: x % y, "floordiv": lambda x, y: x // y, "xor": lambda x, y: x ^ y,
    "and": lambda x, y: x & y, "or": lambda x, y: x | y,
    "remainder": lambda x, y: lib(x).remainder(x, y), "fmod": lambda x, y: lib(x).fmod(x, y),
    "floor_divide": lambda x, y: x.floor_divide(y),
    "div_trunc": lambda x, y: x.div(y, rounding_mode="trunc"),
    "div_floor": lambda x, y: lib(x).div(x, y, rounding_mode="floor"),
    "bitwise_and": lambda x, y: lib(x).bitwise_and(x, y),
    "bitwise_or": lambda x, y: x.bitwise_or(y), "bitwise_xor": lambda x, y: x.bitwise_xor(y),
    "fmax": lambda x, y: lib(x).fmax(x, y), "fmin": lambda x, y: x.fmin(y),
}


@pytest.mark.parametrize("name", sorted(INT_OPERATORS))
def test_integer_operators(name):
    fn = INT_OPERATORS[name]
    out = fn(sg.Tensor(INTS_X), sg.Tensor(INTS_Y))
    assert_same(out, fn(torch.tensor(INTS_X), torch.tensor(INTS_Y)), name)
    # broadcasting, and a Python int on either side
    assert_same(fn(sg.Tensor(INTS_X), sg.Tensor(INTS_Y[0])),
                fn(torch.tensor(INTS_X), torch.tensor(INTS_Y[0])), name + " broadcast")
    three = torch.tensor(3) if name in ("fmax", "fmin") else 3  # torch's fmax takes no int
    assert_same(fn(sg.Tensor(INTS_X), 3), fn(torch.tensor(INTS_X), three), name + " with 3")


def test_shifts_and_invert():
    x, s = sg.Tensor(INTS_X), sg.Tensor(SHIFTS)
    tx, ts = torch.tensor(INTS_X), torch.tensor(SHIFTS)
    assert_same(x << s, tx << ts, "<<")
    assert_same(x >> s, tx >> ts, ">>")
    assert_same(x << 2, tx << 2, "<< 2")
    assert_same(x >> 1, tx >> 1, ">> 1")
    assert_same(~x, ~tx, "~")
    assert_same(x.bitwise_not(), tx.bitwise_not(), "bitwise_not")
    assert_same(sg.bitwise_left_shift(x, s), torch.bitwise_left_shift(tx, ts), "left_shift")
    assert_same(x.bitwise_right_shift(s), tx.bitwise_right_shift(ts), "right_shift")


@pytest.mark.parametrize("name, fn", [
    ("rmod", lambda x: 2 % x), ("rfloordiv", lambda x: 7 // x), ("rand", lambda x: 3 & x),
    ("ror", lambda x: 3 | x), ("rxor", lambda x: 5 ^ x), ("rlshift", lambda x: 1 << x),
    ("rrshift", lambda x: 1024 >> x), ("rmod_neg", lambda x: -7 % x),
    ("rfloordiv_neg", lambda x: -7 // x),
])
def test_reflected_integer_operators(name, fn):
    a = np.array([1, 2, 3, -3, 5, 9], dtype=np.int64)
    if "shift" in name:
        a = np.abs(a)
    assert_same(fn(sg.Tensor(a)), fn(torch.tensor(a)), name)


def test_bool_operators_are_logical():
    x, y = sg.Tensor(BOOL_X), sg.Tensor(BOOL_Y)
    tx, ty = torch.tensor(BOOL_X), torch.tensor(BOOL_Y)
    assert_same(x & y, tx & ty, "&")
    assert_same(x | y, tx | ty, "|")
    assert_same(x ^ y, tx ^ ty, "^")
    assert_same(~x, ~tx, "~")
    assert_same(x & True, tx & True, "& True")
    assert_same(False | x, False | tx, "False |")
    assert_same(x.logical_xor(y), tx.logical_xor(ty), "logical_xor")


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.int64])
def test_integer_operators_keep_dtype(dtype):
    a, b = np.array([9, 7, 200], dtype=dtype), np.array([4, 3, 3], dtype=dtype)
    if dtype == np.int32:
        a = a - 100
    for fn in [lambda x, y: x % y, lambda x, y: x // y, lambda x, y: x & y,
               lambda x, y: x | y, lambda x, y: x ^ y, lambda x, y: x >> y]:
        assert_same(fn(sg.Tensor(a), sg.Tensor(b)), fn(torch.tensor(a), torch.tensor(b)),
                    f"{dtype.__name__}")
    assert_same(~sg.Tensor(a), ~torch.tensor(a), f"~ {dtype.__name__}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_builtin_abs(dtype):
    # abs(t) is Tensor.__abs__; the gradient at 0 is 0, as torch's
    a = np.array([[-2.0, -0.5, 0.0, -0.0], [0.5, 3.0, -1e-30, 1e30]])
    out = check(lambda x: abs(x), None, inputs=[a], dtype=dtype)
    assert out.dtype == dtype
    check(lambda x: lib(x).abs(x), [(3, 4)], dtype=dtype)
    ints = np.array([-3, 0, 4], dtype=np.int64)
    assert_same(abs(sg.Tensor(ints)), abs(torch.tensor(ints)), "abs of int64")


@pytest.mark.parametrize("dtype", DTYPES)
def test_float_mod_and_floordiv(dtype):
    inputs = [np.random.default_rng(0).uniform(-5, 5, (3, 4)), away_from_zero((3, 4), seed=3)]
    # % has a gradient (1 and -floor(x / y)); // has none (torch: not implemented)
    check(lambda x, y: x % y, None, inputs=inputs, dtype=dtype)
    check(lambda x: x % 1.5, None, inputs=inputs[:1], dtype=dtype)
    # torch has no derivative for a number % tensor: a 0-d tensor stands for the number
    check(lambda x: 2.5 % x, None, lambda t: torch.tensor(2.5, dtype=t.dtype) % t,
          inputs=inputs[1:], dtype=dtype)
    check(lambda x, y: x // y, None, inputs=inputs, dtype=dtype, grad=False)
    check(lambda x: 7 // x, None, inputs=inputs[1:], dtype=dtype, grad=False)
    check(lambda x: x // 0.75, None, inputs=inputs[:1], dtype=dtype, grad=False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["trunc", "floor"])
def test_div_rounding_mode_float_values(mode, dtype):
    inputs = [np.random.default_rng(0).uniform(-5, 5, (3, 4)), away_from_zero((3, 4), seed=3)]
    check(lambda x, y: x.div(y, rounding_mode=mode), None, inputs=inputs, dtype=dtype,
          grad=False)
    check(lambda x, y: lib(x).div(x, y, rounding_mode=mode), None, inputs=inputs, dtype=dtype,
          grad=False)
    check(lambda x: x.div(-1.25, rounding_mode=mode), None, inputs=inputs[:1], dtype=dtype,
          grad=False)


def test_div_trunc_gradient_is_zero():
    # torch.div with a rounding mode has a zero gradient (derivatives.yaml: grad * 0)
    inputs = [np.random.default_rng(0).uniform(-5, 5, (3, 4)), away_from_zero((3, 4), seed=3)]
    check(lambda x, y: x.div(y, rounding_mode="trunc"), None, inputs=inputs)


def test_div_floor_gradient_is_zero():
    inputs = [np.random.default_rng(0).uniform(-5, 5, (3, 4)), away_from_zero((3, 4), seed=3)]
    check(lambda x, y: x.div(y, rounding_mode="floor"), None, inputs=inputs)


def test_float_division_by_zero_is_inf_and_nan():
    a = np.array([1.0, -1.0, 0.0, 5.0])
    b = np.array([0.0, 0.0, 0.0, 0.0])
    for fn in [lambda x, y: x // y, lambda x, y: x % y, lambda x, y: lib(x).fmod(x, y),
               lambda x, y: x.div(y, rounding_mode="trunc")]:
        with np.errstate(all="ignore"):
            out = fn(sg.Tensor(a), sg.Tensor(b)).numpy()
        np.testing.assert_array_equal(out, fn(torch.tensor(a), torch.tensor(b)).numpy())


@pytest.mark.parametrize("fn, op", [
    (lambda x, y: x // y, "floor_divide"), (lambda x, y: x % y, "remainder"),
    (lambda x, y: x.fmod(y), "fmod"), (lambda x, y: x.div(y, rounding_mode="trunc"), "div"),
    (lambda x, y: x.div(y, rounding_mode="floor"), "floor_divide"),
    (lambda x, y: x.remainder(y), "remainder"), (lambda x, y: x.floor_divide(y), "floor_divide"),
], ids=["floordiv", "mod", "fmod", "div_trunc", "div_floor", "remainder", "floor_divide"])
def test_integer_division_by_zero_raises(fn, op):
    x = sg.Tensor(np.array([[5, -7, 3]], dtype=np.int64))
    y = sg.Tensor(np.array([[2, 0, 1]], dtype=np.int64))
    with pytest.raises(ZeroDivisionError, match=op):
        fn(x, y)
    with pytest.raises(ZeroDivisionError, match=op):  # a Python 0 as the divisor
        fn(x, 0)


@pytest.mark.parametrize("fn, op", [
    (lambda y: 7 // y, "floor_divide"), (lambda y: 7 % y, "remainder"),
    (lambda y: sg.fmod(7, y), "fmod"), (lambda y: sg.remainder(7, y), "remainder"),
], ids=["rfloordiv", "rmod", "fmod_number", "remainder_number"])
def test_integer_division_by_zero_raises_reflected(fn, op):
    with pytest.raises(ZeroDivisionError, match=op):
        fn(sg.Tensor(np.array([2, 0, 1], dtype=np.int64)))


@pytest.mark.parametrize("fn, op", [
    (lambda x, y: x & y, "bitwise_and"), (lambda x, y: x | y, "bitwise_or"),
    (lambda x, y: x ^ y, "bitwise_xor"), (lambda x, y: 3 & x, "bitwise_and"),
    (lambda x, y: ~x, "invert"), (lambda x, y: x << 1, "left_shift"),
    (lambda x, y: 1 >> x, "right_shift"), (lambda x, y: y & x, "bitwise_and"),
], ids=["and", "or", "xor", "rand", "invert", "lshift", "rrshift", "bool_and_float"])
def test_bitwise_on_floats_raises(fn, op):
    x = sg.Tensor(np.zeros((2, 3)))
    y = sg.Tensor(np.zeros((2, 3), dtype=bool))
    with pytest.raises(TypeError, match=op) as info:
        fn(x, y)
    assert "(2, 3)" in str(info.value)


def test_div_rounding_mode_invalid():
    with pytest.raises(ValueError, match="div.*rounding_mode.*'round'"):
        sg.Tensor(np.ones(3)).div(2.0, rounding_mode="round")


def test_binary_shape_mismatch_names_op_and_shapes():
    x, y = sg.Tensor(np.ones((3, 4))), sg.Tensor(np.ones((5,)))
    for name in ["atan2", "hypot", "logaddexp", "fmax", "remainder", "copysign"]:
        with pytest.raises(ValueError, match=rf"{name}.*\(3, 4\).*\(5,\)"):
            getattr(sg, name)(x, y)
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5,\)"):
        x % y


# ================================================================================================
# Activations
# ================================================================================================

# the points where the activations change branch, and a few others
KINKS = np.array([-6.0, -3.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 3.0, 6.0, 7.0, -3.0 - 1e-9,
                  3.0 + 1e-9, 6.0 - 1e-9])

# name: (simplegrad fn, torch fn); None means the same call on nn.functional
ACTIVATIONS = {
    "elu": lambda x: fn_lib(x).elu(x),
    "elu_alpha": lambda x: fn_lib(x).elu(x, alpha=0.5),
    "celu": lambda x: fn_lib(x).celu(x),
    "celu_alpha": lambda x: fn_lib(x).celu(x, alpha=2.0),
    "selu": lambda x: fn_lib(x).selu(x),
    "relu6": lambda x: fn_lib(x).relu6(x),
    "hardtanh": lambda x: fn_lib(x).hardtanh(x),
    "hardtanh_bounds": lambda x: fn_lib(x).hardtanh(x, -0.5, 3.0),
    "hardsigmoid": lambda x: fn_lib(x).hardsigmoid(x),
    "hardswish": lambda x: fn_lib(x).hardswish(x),
    "silu": lambda x: fn_lib(x).silu(x),
    "mish": lambda x: fn_lib(x).mish(x),
    "softsign": lambda x: fn_lib(x).softsign(x),
    "logsigmoid": lambda x: fn_lib(x).logsigmoid(x),
    "tanhshrink": lambda x: fn_lib(x).tanhshrink(x),
    "softshrink": lambda x: fn_lib(x).softshrink(x),
    "softshrink_0.25": lambda x: fn_lib(x).softshrink(x, 0.25),
    "hardshrink": lambda x: fn_lib(x).hardshrink(x),
    "hardshrink_1": lambda x: fn_lib(x).hardshrink(x, lambd=1.0),
    "hardshrink_method": lambda x: x.hardshrink(0.25),
    "threshold": lambda x: fn_lib(x).threshold(x, 0.5, -2.0),
    "threshold_neg": lambda x: fn_lib(x).threshold(x, -3.0, 0.0),
    "rrelu_eval": lambda x: fn_lib(x).rrelu(x),
    "rrelu_eval_bounds": lambda x: fn_lib(x).rrelu(x, 0.1, 0.3, training=False),
    "leaky_relu": lambda x: fn_lib(x).leaky_relu(x, 0.2),
    "softplus": lambda x: fn_lib(x).softplus(x, beta=2.0, threshold=3.0),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation(name, dtype):
    fn = ACTIVATIONS[name]
    rtol = _activation_rtol(name, dtype)
    check(fn, [(3, 5)], low=-7.0, high=7.0, dtype=dtype, rtol=rtol)
    # the kinks: values and the gradients there equal torch's
    check(fn, None, inputs=[KINKS], dtype=dtype, rtol=rtol)


def _activation_rtol(name, dtype):
    # torch's float64 hardsigmoid backward multiplies by 1.0f / 6.0f, a float32 constant
    # (0.1666666716...): its gradient is 3e-8 off in relative terms; the helper's otherwise
    return 1e-7 if name.lower() == "hardsigmoid" and dtype == np.float64 else None


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_extreme_inputs(name, dtype):
    extreme = np.array([-1000.0, -80.0, -20.0, -1e-8, 0.0, 1e-8, 20.0, 80.0, 1000.0])
    check(ACTIVATIONS[name], None, inputs=[extreme], dtype=dtype,
          rtol=_activation_rtol(name, dtype))
    x = sg.Tensor(extreme.astype(dtype), requires_grad=True)
    out = ACTIVATIONS[name](x)
    out.sum().backward()
    assert np.isfinite(out.numpy()).all() and np.isfinite(x.grad.numpy()).all(), name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmin_glu(dim, dtype):
    check(lambda x: fn_lib(x).softmin(x, dim=dim), [(2, 4, 6)], dtype=dtype)
    check(lambda x: fn_lib(x).glu(x, dim), [(2, 4, 6)], dtype=dtype)


def test_softmin_glu_defaults():
    check(lambda x: fn_lib(x).glu(x), [(3, 4)])
    # softmin without dim: torch's legacy choice (dim 1 for 2-d, 0 for 1-d and 3-d), warned
    with pytest.warns(UserWarning):
        check(lambda x: fn_lib(x).softmin(x), [(3, 4)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", [[(2, 3, 4), (3,)], [(2, 3), (1,)], [(5,), (1,)],
                                    [(2, 3, 2, 2), (3,)], [(4, 2), ()]], ids=str)
def test_prelu(shapes, dtype):
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, shapes[0])
    x.reshape(-1)[:3] = [0.0, -1.0, 1.0]  # the kink too: weight there, as torch
    w = rng.uniform(0.05, 0.5, shapes[1])
    check(lambda x, w: fn_lib(x).prelu(x, w), None, inputs=[x, w], dtype=dtype)
    check(lambda x, w: x.prelu(w), None, inputs=[x, w], dtype=dtype)


def test_rrelu_training_slopes_lie_in_bounds():
    sg.manual_seed(0)
    lower, upper = 0.1, 0.3
    a = np.random.default_rng(0).uniform(-3, 3, (200,))
    a[:2] = [0.0, -0.0]
    x = sg.Tensor(a, requires_grad=True)
    out = sg.nn.functional.rrelu(x, lower, upper, training=True)
    values = out.numpy()
    neg, pos = a < 0, a > 0
    slopes = values[neg] / a[neg]
    assert ((slopes >= lower) & (slopes <= upper)).all()
    assert np.unique(slopes).size > 50, "a slope per element"
    np.testing.assert_array_equal(values[pos], a[pos])
    # the gradient of each negative element is its own slope, 1 for positive ones
    out.backward(sg.Tensor(np.ones(200)))
    np.testing.assert_allclose(x.grad.numpy()[neg], slopes, rtol=1e-12)
    np.testing.assert_array_equal(x.grad.numpy()[pos], 1.0)
    # the module draws in training mode and is exact in eval mode
    module = sg.nn.RReLU(lower, upper)
    trained = module(sg.Tensor(a)).numpy()[neg] / a[neg]
    assert ((trained >= lower) & (trained <= upper)).all() and np.ptp(trained) > 0.1
    module.eval()
    check(lambda t: (module if isinstance(t, sg.Tensor) else torch.nn.RReLU(lower, upper).eval())(
        t), None, inputs=[a])


def test_rrelu_training_is_seeded():
    a = np.linspace(-3, -0.1, 20)
    sg.manual_seed(7)
    first = sg.nn.functional.rrelu(sg.Tensor(a), training=True).numpy()
    sg.manual_seed(7)
    second = sg.nn.functional.rrelu(sg.Tensor(a), training=True).numpy()
    np.testing.assert_array_equal(first, second)


# module: constructor arguments, as both libraries take them
ACTIVATION_MODULES = [
    ("ELU", ()), ("ELU", (0.5,)), ("CELU", (2.0,)), ("SELU", ()), ("ReLU6", ()),
    ("Hardtanh", (-2.0, 2.0)), ("Hardsigmoid", ()), ("Hardswish", ()), ("SiLU", ()),
    ("Mish", ()), ("Softsign", ()), ("LogSigmoid", ()), ("GLU", ()), ("GLU", (0,)),
    ("Tanhshrink", ()), ("Softshrink", ()), ("Softshrink", (0.3,)), ("Hardshrink", (1.0,)),
    ("Threshold", (0.1, 20.0)), ("Softmin", (1,)), ("RReLU", ()), ("RReLU", (0.1, 0.3)),
    ("LeakyReLU", (0.2, True)), ("ReLU", (True,)),
]


@pytest.mark.parametrize("name, args", ACTIVATION_MODULES, ids=str)
def test_activation_modules(name, args):
    module, reference = getattr(sg.nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(module) == repr(reference)
    module.eval()
    reference.eval()
    if getattr(reference, "inplace", False):
        reference.inplace = False  # torch cannot write into a leaf that requires grad
    shape = (2, 4) if name != "GLU" or args == () else (4, 3)
    check(lambda x: (module if isinstance(x, sg.Tensor) else reference)(x), [shape], low=-4,
          high=4, rtol=_activation_rtol(name, np.float64))


def test_activation_module_keywords_and_prelu_module():
    assert repr(sg.nn.Threshold(threshold=0.5, value=1.0)) == repr(
        torch.nn.Threshold(threshold=0.5, value=1.0))
    assert repr(sg.nn.ELU(alpha=0.3, inplace=True)) == repr(torch.nn.ELU(alpha=0.3, inplace=True))
    for n in [1, 3]:
        module, reference = sg.nn.PReLU(n), torch.nn.PReLU(n).double()
        assert repr(module) == repr(reference)
        module = module.double()
        a = np.random.default_rng(n).uniform(-2, 2, (2, 3, 4))
        x, t = sg.Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        out, ref = module(x), reference(t)
        assert_close(out, ref)
        g = np.random.default_rng(5).standard_normal(a.shape)
        out.backward(sg.Tensor(g))
        ref.backward(torch.tensor(g))
        assert_close(x.grad, t.grad, what="input gradient")
        assert_close(module.weight.grad, reference.weight.grad, what="weight gradient")


def test_activation_errors_name_the_op_and_shape():
    x = sg.Tensor(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"glu.*\(3, 5\)"):
        sg.nn.functional.glu(x, -1)
    with pytest.raises(ValueError, match=r"prelu.*\(2,\).*\(3, 5\)"):
        sg.nn.functional.prelu(x, sg.Tensor(np.ones(2)))
    with pytest.raises(ValueError, match="hardtanh.*min_val"):
        sg.nn.functional.hardtanh(x, 1.0, -1.0)
    with pytest.raises(ValueError, match="softshrink.*lambd"):
        sg.nn.functional.softshrink(x, -0.5)
    with pytest.raises(TypeError, match="Threshold.*missing.*value"):
        sg.nn.Threshold(0.5)


# ================================================================================================
# Second derivatives: the smooth elementwise ops and activations
# ================================================================================================

SECOND = [
    ("sin", lambda x: x.sin(), -2.0, 2.0), ("cos", lambda x: x.cos(), -2.0, 2.0),
    ("tan", lambda x: x.tan(), -1.2, 1.2), ("asin", lambda x: x.asin(), -0.9, 0.9),
    ("acos", lambda x: x.acos(), -0.9, 0.9), ("atan", lambda x: x.atan(), -2.0, 2.0),
    ("sinh", lambda x: x.sinh(), -2.0, 2.0), ("cosh", lambda x: x.cosh(), -2.0, 2.0),
    ("asinh", lambda x: x.asinh(), -2.0, 2.0), ("acosh", lambda x: x.acosh(), 1.2, 3.0),
    ("atanh", lambda x: x.atanh(), -0.9, 0.9), ("log2", lambda x: x.log2(), 0.2, 3.0),
    ("log10", lambda x: x.log10(), 0.2, 3.0), ("log1p", lambda x: x.log1p(), -0.8, 3.0),
    ("exp2", lambda x: x.exp2(), -2.0, 2.0), ("expm1", lambda x: x.expm1(), -2.0, 2.0),
    ("rsqrt", lambda x: x.rsqrt(), 0.2, 3.0), ("reciprocal", lambda x: x.reciprocal(), 0.2, 3.0),
    ("square", lambda x: x.square(), -2.0, 2.0), ("sinc", lambda x: x.sinc(), 0.1, 2.0),
    ("erf", lambda x: x.erf(), -2.0, 2.0), ("erfc", lambda x: x.erfc(), -2.0, 2.0),
    ("deg2rad", lambda x: x.deg2rad().sin(), -90.0, 90.0),
    ("frac", lambda x: x.frac() * x, 0.1, 0.9),
    ("elu", lambda x: fn_lib(x).elu(x, 0.5), -2.0, 2.0),
    ("celu", lambda x: fn_lib(x).celu(x, 2.0), -2.0, 2.0),
    ("selu", lambda x: fn_lib(x).selu(x), -2.0, 2.0),
    ("silu", lambda x: fn_lib(x).silu(x), -3.0, 3.0),
    ("mish", lambda x: fn_lib(x).mish(x), -3.0, 3.0),
    ("softsign", lambda x: fn_lib(x).softsign(x), -3.0, 3.0),
    ("logsigmoid", lambda x: fn_lib(x).logsigmoid(x), -3.0, 3.0),
    ("tanhshrink", lambda x: fn_lib(x).tanhshrink(x), -3.0, 3.0),
    ("hardswish", lambda x: fn_lib(x).hardswish(x), -4.0, 4.0),
    ("softshrink", lambda x: fn_lib(x).softshrink(x) ** 2, -2.0, 2.0),
    ("softmin", lambda x: fn_lib(x).softmin(x, dim=1), -2.0, 2.0),
    ("glu", lambda x: fn_lib(x).glu(x, 1), -2.0, 2.0),
    ("nan_to_num", lambda x: x.nan_to_num().exp(), -2.0, 2.0),
]


@pytest.mark.parametrize("name, fn, low, high", SECOND, ids=[s[0] for s in SECOND])
def test_second_derivative_unary(name, fn, low, high):
    check_second(fn, [(3, 4)], low=low, high=high)


SECOND_BINARY = [
    ("atan2", lambda x, y: lib(x).atan2(x, y + 3), -2.0, 2.0),
    ("hypot", lambda x, y: lib(x).hypot(x, y), 0.3, 2.0),
    ("logaddexp", lambda x, y: lib(x).logaddexp(x, y), -2.0, 2.0),
    ("logaddexp2", lambda x, y: lib(x).logaddexp2(x, y), -2.0, 2.0),
    # y's own gradient is a constant zero (as torch's): the factor y gives it a graph
    ("copysign", lambda x, y: lib(x).copysign(x, y) * y, 0.3, 2.0),
    ("remainder", lambda x, y: (x % (y + 3)) * x, -2.0, 2.0),
    ("fmod", lambda x, y: lib(x).fmod(x, y + 3) * y, -2.0, 2.0),
    ("fmax", lambda x, y: lib(x).fmax(x, y) * x, -2.0, 2.0),
    ("fmin", lambda x, y: lib(x).fmin(x, y) * y, -2.0, 2.0),
    ("lerp", lambda x, y: x.lerp(y, (x * y).sigmoid()), -2.0, 2.0),
    ("prelu", lambda x, y: fn_lib(x).prelu(x * y, y[0]), -2.0, 2.0),
]


@pytest.mark.parametrize("name, fn, low, high", SECOND_BINARY, ids=[s[0] for s in SECOND_BINARY])
def test_second_derivative_binary(name, fn, low, high):
    check_second(fn, [(3, 4), (3, 4)], low=low, high=high)


def test_second_derivative_hardsigmoid():
    # torch has no double backward for hardsigmoid: d2/dx2 (x hardsigmoid(x)) is 1/3 inside
    # (-3, 3) and 0 outside, by hand
    a = np.array([-5.0, -3.5, -2.0, -0.5, 0.0, 1.0, 2.9, 3.5, 6.0])
    x = sg.Tensor(a, requires_grad=True)
    (g,) = sg.grad((sg.nn.functional.hardsigmoid(x) * x).sum(), [x], create_graph=True)
    np.testing.assert_allclose(g.numpy(), np.where(np.abs(a) < 3, a / 3 + 0.5, a >= 3),
                               rtol=1e-12)
    (h,) = sg.grad(g.sum(), [x])
    np.testing.assert_allclose(h.numpy(), np.where(np.abs(a) < 3, 1 / 3, 0.0), rtol=1e-12)


def test_second_derivative_float32():
    check_second(lambda x: fn_lib(x).mish(x).asinh(), [(3, 4)], dtype=np.float32)
    check_second(lambda x, y: lib(x).atan2(x, y + 3).exp2(), [(3, 4), (4,)], dtype=np.float32)


def test_constants_match_torch():
    # selu's constants and deg2rad's factor: exact enough to agree in float64
    x = np.array([-1.0, 1.0, 180.0])
    check(lambda t: fn_lib(t).selu(t), None, inputs=[x])
    check(lambda t: t.deg2rad(), None, inputs=[x])
    assert math.isclose(sg.Tensor(np.array(180.0)).deg2rad().item(), math.pi, rel_tol=1e-15)
