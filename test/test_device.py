"""Conformance of every device in conftest.DEVICES: the twelve primitives, the plumbing and
every derived kernel, each compared with a NumPy expression. Derived kernels are checked both
as each device computes them (NumpyDevice's native overrides) and through the default,
primitive-only implementations on simplegrad.Device."""

import functools
import math

import numpy as np
import pytest
from conftest import DEVICES as ALL_DEVICES
from conftest import cupy_unavailable
from helpers import torch

import simplegrad as sg
from devices.reference import ReferenceDevice

# the CuPy device where it can run (a GPU and CuPy); the others everywhere
DEVICES = {name: cls for name, cls in ALL_DEVICES.items()
           if name != "cupy" or cupy_unavailable() is None}

PRIMITIVES = ("exp", "log", "sum", "max", "argmax", "equal", "greater_equal", "add", "mul",
              "pow", "einsum", "as_strided")
PLUMBING = ("array", "to_host", "full", "arange", "reshape", "copy", "astype", "assign")
DERIVED = tuple(sorted(name for name, value in vars(sg.Device).items()
                       if callable(value) and not name.startswith("_")
                       and name not in PRIMITIVES + PLUMBING))

NUMPY_NAME = {"mul": "multiply", "pow": "power", "neg": "negative"}


def numpy_fn(name):
    return getattr(np, NUMPY_NAME.get(name, name))


# (rtol, atol) for results that NumPy computes with the same formula up to rounding
TOL = {np.float64: (1e-13, 1e-15), np.float32: (1e-5, 1e-6)}

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # log(0), 0 ** -1, nan


def rng(seed=0):
    return np.random.default_rng(seed)


def on(dev, value):
    """Host arrays (also inside tuples) as device arrays; other values unchanged."""
    if isinstance(value, np.ndarray):
        return dev.array(value)
    if isinstance(value, tuple):
        return tuple(on(dev, v) for v in value)
    if isinstance(value, list):
        return [on(dev, v) for v in value]
    return value


def compare(dev, actual, expected, rtol=None, atol=None, exact_dtype=True):
    actual = np.asarray(dev.to_host(actual))
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    if exact_dtype:
        assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
    if expected.dtype.kind in "biu":
        np.testing.assert_array_equal(actual, expected)
        return
    default_rtol, default_atol = TOL.get(expected.dtype.type, TOL[np.float32])
    np.testing.assert_allclose(actual, expected, equal_nan=True,
                               rtol=default_rtol if rtol is None else rtol,
                               atol=default_atol if atol is None else atol)


@pytest.fixture(params=sorted(DEVICES))
def dev(request):
    return DEVICES[request.param]()


# ---- the twelve primitives ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exp_log(dev, dtype):
    x = rng().uniform(-5, 5, (3, 4)).astype(dtype)
    compare(dev, dev.exp(on(dev, x)), np.exp(x))
    p = np.concatenate([np.abs(x).ravel(), [0.0, np.inf, 1e-30]]).astype(dtype)
    compare(dev, dev.log(on(dev, p)), np.log(p))
    special = np.array([-np.inf, np.inf, np.nan], dtype=dtype)
    compare(dev, dev.exp(on(dev, special)), np.exp(special))


REDUCTION_AXES = [None, (0,), (1,), (2,), (0, 2), (1, 2), (0, 1, 2), ()]


@pytest.mark.parametrize("name", ["sum", "max"])
@pytest.mark.parametrize("axis", REDUCTION_AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_max(dev, name, axis, keepdims):
    for x in (rng().standard_normal((2, 3, 4)), rng(1).integers(-9, 9, (2, 3, 4)),
              rng(2).standard_normal((2, 3, 4)).astype(np.float32)):
        actual = getattr(dev, name)(on(dev, x), axis, keepdims)
        compare(dev, actual, getattr(np, name)(x, axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("axis", [None, 0, 1, 2])
@pytest.mark.parametrize("keepdims", [False, True])
def test_argmax_finds_the_first_maximum(dev, axis, keepdims):
    x = rng().integers(0, 3, (3, 4, 5)).astype(np.float64)  # many ties
    actual = np.asarray(dev.to_host(dev.argmax(on(dev, x), axis, keepdims)))
    expected = np.argmax(x, axis=axis, keepdims=keepdims)
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


BINARY_SHAPES = [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((), (2, 3)), ((5,), ())]


@pytest.mark.parametrize("name", ["add", "mul", "equal", "greater_equal"])
@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
def test_binary_broadcasting(dev, name, shapes):
    a = rng().integers(-2, 3, shapes[0]).astype(np.float64)  # small ints: ties for comparisons
    b = rng(1).integers(-2, 3, shapes[1]).astype(np.float64)
    compare(dev, getattr(dev, name)(on(dev, a), on(dev, b)), numpy_fn(name)(a, b))


@pytest.mark.parametrize("name", ["add", "mul", "pow", "equal", "greater_equal"])
def test_binary_with_python_scalars(dev, name):
    # a Python scalar takes the array's dtype (NumPy 2): float32 stays float32
    x = rng().uniform(0.5, 2, (2, 3)).astype(np.float32)
    for a, b in ((x, 2.5), (2.5, x), (x, 2), (3, x)):
        compare(dev, getattr(dev, name)(on(dev, a), on(dev, b)), numpy_fn(name)(a, b))


def test_binary_special_values(dev):
    a = np.array([np.nan, np.nan, 1.0, np.inf, -np.inf, 0.0, -0.0])
    b = np.array([np.nan, 1.0, np.nan, np.inf, np.inf, -0.0, 0.0])
    for name in ("add", "mul", "equal", "greater_equal"):
        compare(dev, getattr(dev, name)(on(dev, a), on(dev, b)), numpy_fn(name)(a, b))


def test_pow(dev):
    x = rng().uniform(0.1, 3, (3, 4))
    y = rng(1).uniform(-2, 2, (3, 4))
    compare(dev, dev.pow(on(dev, x), on(dev, y)), np.power(x, y))
    # negative bases with integral exponents, and the exact identities where() relies on
    neg = np.array([-2.0, -0.5, -3.0, 0.0])
    compare(dev, dev.pow(on(dev, neg), on(dev, np.array([2.0, 3.0, -1.0, 0.0]))),
            np.power(neg, [2.0, 3.0, -1.0, 0.0]))
    special = np.array([np.inf, -np.inf, np.nan, 0.0, -7.5])
    compare(dev, dev.pow(on(dev, special), 1.0), special, rtol=0, atol=0)
    compare(dev, dev.pow(on(dev, special), 0.0), np.ones(5), rtol=0, atol=0)
    compare(dev, dev.pow(on(dev, x.astype(np.float32)), -1.0), np.power(x.astype(np.float32), -1.0))


EINSUMS = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ij->ji", [(3, 4)]),
    ("ijk->kij", [(2, 3, 4)]),
    ("ij->", [(3, 4)]),
    ("ij->j", [(3, 4)]),
    ("i,i->", [(5,), (5,)]),
    ("ij,j->i", [(3, 4), (4,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("abc,cd->abd", [(2, 3, 4), (4, 5)]),
    ("ij,kj->k", [(3, 4), (5, 4)]),          # i is summed out of one operand only
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("ij,jk,kl->il", [(3, 4), (4, 5), (5, 2)]),
    ("nchw,kc->nkhw", [(2, 3, 4, 4), (5, 3)]),
]


@pytest.mark.parametrize("subscripts, shapes", EINSUMS, ids=[e[0] for e in EINSUMS])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_einsum_explicit_form(dev, subscripts, shapes, dtype):
    r = rng()
    operands = [r.standard_normal(s).astype(dtype) for s in shapes]
    actual = dev.einsum(subscripts, *on(dev, operands))
    # float32 sums of up to 20 products: NumPy and a matmul may round differently
    atol = 1e-5 if dtype == np.float32 else 1e-13
    compare(dev, actual, np.einsum(subscripts, *operands), atol=atol)


def _strided_reference(x, shape, strides, offset):
    flat = np.ascontiguousarray(x).ravel()
    index = offset + sum(i * s for i, s in zip(np.indices(shape), strides))
    return flat[index]


@pytest.mark.parametrize("shape, strides, offset", [
    ((3, 4), (4, 1), 0),             # the identity on a (3, 4) array
    ((2, 3), (1, 4), 1),             # a transposed window with an offset
    ((2, 3, 2, 2), (4, 1, 4, 1), 0), # overlapping 2x2 sliding windows
    ((10, 3), (1, 1), 0),            # overlapping 1-d windows
    ((2, 5), (0, 2), 1),             # a zero stride repeats
    ((0, 3), (4, 1), 0),             # empty
    ((), (), 7),                     # one element
])
def test_as_strided(dev, shape, strides, offset):
    base = np.arange(12.0).reshape(3, 4)
    for x in (base, base.T, base[:, ::-1]):  # also on non-contiguous inputs: row-major layout
        actual = dev.as_strided(on(dev, x), shape, strides, offset)
        compare(dev, actual, _strided_reference(x, shape, strides, offset), rtol=0, atol=0)


# ---- plumbing ----------------------------------------------------------------------------------

def test_array_and_to_host(dev):
    for data in (np.arange(6.0).reshape(2, 3), np.arange(4, dtype=np.int32),
                 np.array([True, False]), np.float32(2.5), np.zeros((0, 3))):
        host = dev.to_host(dev.array(data))
        assert isinstance(host, np.ndarray)
        compare(dev, dev.array(data), np.asarray(data))
    compare(dev, dev.array([[1, 2], [3, 4]]), np.array([[1, 2], [3, 4]]))
    compare(dev, dev.array([1.5, 2.0], np.float32), np.array([1.5, 2.0], np.float32))
    compare(dev, dev.array(np.arange(3), np.float64), np.arange(3.0))


def test_array_from_dlpack(dev):
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    compare(dev, dev.array(t), t.numpy())


def test_full_arange_reshape_copy_astype(dev):
    compare(dev, dev.full((2, 3), 1.5, np.float32), np.full((2, 3), 1.5, np.float32))
    compare(dev, dev.full((), 7, np.int64), np.array(7))
    compare(dev, dev.arange(5, np.int64), np.arange(5))
    compare(dev, dev.arange(4, np.float32), np.arange(4, dtype=np.float32))
    x = np.arange(24.0).reshape(2, 3, 4)
    for src in (x, x.transpose(2, 0, 1)):  # row-major order of the logical array
        compare(dev, dev.reshape(on(dev, src), (4, 6)), src.reshape(4, 6), rtol=0, atol=0)
        compare(dev, dev.reshape(on(dev, src), (-1,)), src.reshape(-1), rtol=0, atol=0)
        copied = dev.copy(on(dev, src))
        compare(dev, copied, src, rtol=0, atol=0)
        host = np.asarray(dev.to_host(copied))
        assert host.flags.c_contiguous
    original = np.arange(4.0)
    device_original = dev.array(original)
    copied = dev.copy(device_original)
    original[0] = 99.0  # the copy has memory of its own
    assert np.asarray(dev.to_host(copied))[0] == 0.0
    y = np.array([-1.7, -0.2, 0.0, 0.5, 2.9])
    for dtype in (np.float32, np.int64, np.int32, np.bool_, np.float64):
        compare(dev, dev.astype(on(dev, y), dtype), y.astype(dtype), rtol=0, atol=0)


def test_assign_writes_in_place(dev):
    dst = dev.array(np.zeros((2, 3)))
    alias = dst  # every holder of the array sees the write
    dev.assign(dst, dev.array(np.arange(6.0).reshape(2, 3)))
    compare(dev, alias, np.arange(6.0).reshape(2, 3), rtol=0, atol=0)
    dev.assign(dst, 1.5)  # a scalar broadcasts
    compare(dev, alias, np.full((2, 3), 1.5), rtol=0, atol=0)
    dev.assign(dst, dev.array(np.array([1.0, 2.0, 3.0])))  # so does a smaller array
    compare(dev, alias, np.tile([1.0, 2.0, 3.0], (2, 1)), rtol=0, atol=0)


# ---- derived kernels ---------------------------------------------------------------------------

class Kernel:
    """One implementation of a derived kernel on one device; called with host arrays, it
    returns the result on the host."""

    def __init__(self, dev, fn):
        self.dev, self.fn = dev, fn

    def __call__(self, *args):
        return np.asarray(self.dev.to_host(self.fn(*on(self.dev, args))))


def implementations(name):
    """(id, Kernel) pairs computing kernel `name`: the default on simplegrad.Device over each
    device's primitives, and each device's own method where it overrides the default."""
    out = []
    for key, cls in sorted(DEVICES.items()):
        dev = cls()
        out.append((f"default-on-{key}", Kernel(dev, functools.partial(getattr(sg.Device, name),
                                                                       dev))))
        if getattr(cls, name) is not getattr(sg.Device, name):
            out.append((f"{key}-native", Kernel(dev, getattr(dev, name))))
    return out


def kernel_params(*names):
    return [pytest.param(name, fn, id=f"{name}-{impl}")
            for name in names for impl, fn in implementations(name)]


def check(fn, args, expected, rtol=None, atol=None):
    actual = fn(*args)
    compare(ReferenceDevice(), actual, expected, rtol, atol)


X64 = rng(10).standard_normal((3, 4)) * 3
X32 = X64.astype(np.float32)
SPECIAL = np.array([np.inf, -np.inf, 0.0, -0.0, 1e-300, -1e300, 2.0, -2.0])


@pytest.mark.parametrize("name, fn", kernel_params("add_"))
def test_add_in_place(name, fn):
    for x, y in ((X64, rng(22).standard_normal((3, 4))), (X32, np.float32(2.5)),
                 (X64, rng(23).standard_normal((4,)))):  # y broadcast along x
        check(fn, (x.copy(), y), x + y, rtol=1e-15, atol=0)


def test_add_in_place_writes_into_x():
    for cls in DEVICES.values():
        dev = cls()
        x, y = dev.array(np.arange(6.0).reshape(2, 3)), dev.array(np.ones(3))
        assert dev.add_(x, y) is x
        np.testing.assert_array_equal(dev.to_host(x), np.arange(6.0).reshape(2, 3) + 1)


@pytest.mark.parametrize("name, fn", kernel_params("neg", "sign", "abs"))
def test_elementwise_unary(name, fn):
    for x in (X64, X32, SPECIAL, np.arange(-3, 4)):
        check(fn, (x,), numpy_fn(name)(x), rtol=0, atol=0)


@pytest.mark.parametrize("name, fn", kernel_params("subtract", "divide"))
def test_subtract_divide(name, fn):
    ref = getattr(np, name)
    y = rng(11).uniform(0.5, 2, (4,))
    for a, b in ((X64, y), (X32, y.astype(np.float32)), (X64, 2.5), (2.5, X64), (X32, 3),
                 (1, X32), (X64[:, :1], y[None, :])):
        check(fn, (a, b), ref(a, b))
    check(fn, (SPECIAL, SPECIAL[::-1].copy()), ref(SPECIAL, SPECIAL[::-1]))


@pytest.mark.parametrize("name, fn", kernel_params("greater", "less", "less_equal", "not_equal"))
def test_comparisons(name, fn):
    a = np.array([1.0, 2.0, 3.0, np.nan, np.nan, np.inf, -np.inf, 0.0])
    b = np.array([2.0, 2.0, 2.0, 1.0, np.nan, np.inf, np.inf, -0.0])
    ref = getattr(np, name)
    for x, y in ((a, b), (b, a), (a, 2.0), (2.0, a), (a[:, None], b[None, :]),
                 (np.arange(5), 2), (X32, X32[:, 1:2])):
        check(fn, (x, y), ref(x, y))


@pytest.mark.parametrize("name, fn", kernel_params("logical_not"))
def test_logical_not(name, fn):
    b = np.array([[True, False], [False, False]])
    check(fn, (b,), np.logical_not(b))


@pytest.mark.parametrize("name, fn", kernel_params("where"))
def test_where_is_an_exact_select(name, fn):
    cond = rng(12).random((3, 4)) > 0.5
    y = rng(13).standard_normal((4,))
    check(fn, (cond, X64, y), np.where(cond, X64, y), rtol=0, atol=0)
    check(fn, (cond, X32, y.astype(np.float32)), np.where(cond, X32, y.astype(np.float32)),
          rtol=0, atol=0)
    # inf and nan in the branch not taken must not leak; taken, they pass through exactly
    bad = np.array([np.inf, -np.inf, np.nan, 1e308, -0.0, 5.0])
    good = np.array([1.0, -2.0, 3.0, 4.0, 7.0, -0.0])
    pick = np.array([False, False, False, False, True, True])
    check(fn, (pick, bad, good), np.where(pick, bad, good), rtol=0, atol=0)
    check(fn, (~pick, good, bad), np.where(~pick, good, bad), rtol=0, atol=0)
    check(fn, (pick, good, bad), np.where(pick, good, bad), rtol=0, atol=0)
    check(fn, (cond, X64, 0.0), np.where(cond, X64, 0.0), rtol=0, atol=0)
    actual = fn(pick, bad, good)
    assert np.array_equal(np.signbit(actual), np.signbit(np.where(pick, bad, good)))


@pytest.mark.parametrize("name, fn", kernel_params("maximum", "minimum"))
def test_maximum_minimum(name, fn):
    ref = getattr(np, name)
    ties = np.array([1.0, 2.0, 3.0, np.inf, -np.inf])
    other = np.array([1.0, 3.0, 2.0, 0.0, 0.0])
    for a, b in ((X64, X64[2:3]), (X32, 0.5), (0.5, X32), (ties, other), (other, ties),
                 (np.arange(6), 2)):
        check(fn, (a, b), ref(a, b), rtol=0, atol=0)


@pytest.mark.parametrize("name, fn", kernel_params("sqrt"))
def test_sqrt(name, fn):
    # within an ulp of np.sqrt; -0.0 stays -0.0, a negative number gives nan
    x = np.concatenate([[0.0, -0.0, np.inf, -1.0, np.nan, 5e-324, 1e308], np.abs(GRID) * 1e3])
    out = fn(x)
    np.testing.assert_allclose(out, np.sqrt(x), rtol=2.3e-16, atol=0, equal_nan=True)
    assert np.signbit(out[:2]).tolist() == [False, True]
    check(fn, (x.astype(np.float32),), np.sqrt(x.astype(np.float32)), rtol=1.2e-7, atol=0)


@pytest.mark.parametrize("name, fn", kernel_params("fmax", "fmin"))
def test_fmax_fmin(name, fn):
    # maximum and minimum, but a nan loses to a number (both nan: nan)
    ref = getattr(np, name)
    a = np.array([1.0, np.nan, 3.0, np.nan, -np.inf, 2.0])
    b = np.array([np.nan, 2.0, 1.0, np.nan, 0.0, 2.0])
    for x, y in ((a, b), (b, a), (X64, X64[1:2]), (X32, np.float32(0.5)), (np.arange(6), 2)):
        check(fn, (x, y), ref(x, y), rtol=0, atol=0)


@pytest.mark.parametrize("name, fn", kernel_params("logaddexp", "logaddexp2"))
def test_logaddexp(name, fn):
    ref = getattr(np, name)
    x = np.concatenate([GRID * 30, [np.inf, -np.inf, -np.inf, np.inf, np.nan, 1e300, 0.0]])
    y = np.concatenate([GRID[::-1] * 30, [np.inf, -np.inf, 3.0, -np.inf, 1.0, 1e300, 0.0]])
    check(fn, (x, y), ref(x, y), rtol=1e-15, atol=1e-300)
    check(fn, (x.astype(np.float32), y.astype(np.float32)),
          ref(x.astype(np.float32), y.astype(np.float32)), rtol=2e-7, atol=1e-30)


UNSIGNED_AND_BOOL = [np.array([0, 1, 200, 255], np.uint8), np.array([0, 7, 2 ** 63, 2 ** 64 - 1],
                                                                     np.uint64),
                     np.array([True, False, True, True])]


@pytest.mark.parametrize("name, fn", kernel_params("where"))
def test_where_on_unsigned_and_bool(name, fn):
    cond = np.array([True, False, False, True])
    for x in UNSIGNED_AND_BOOL:
        check(fn, (cond, x, x[::-1].copy()), np.where(cond, x, x[::-1]), rtol=0, atol=0)


@pytest.mark.parametrize("name, fn", kernel_params("neg", "min", "argmin"))
def test_neg_min_on_unsigned_and_integer_extremes(name, fn):
    # -x wraps modulo 2^n as NumPy's; min and argmin reverse the order without overflowing
    for x in UNSIGNED_AND_BOOL[:2] + [np.array([5, np.iinfo(np.int64).min, 3, -1])]:
        check(fn, (x,), numpy_fn(name)(x), rtol=0, atol=0)


@pytest.mark.parametrize("name, fn", kernel_params("clip"))
def test_clip(name, fn):
    for lo, hi in ((-1.0, 1.5), (None, 0.5), (-0.5, None), (2, 2)):
        for x in (X64, X32, SPECIAL):
            check(fn, (x, lo, hi), np.clip(x, lo, hi), rtol=0, atol=0)


GRID = np.linspace(-8, 8, 4001)


@pytest.mark.parametrize("name, fn", kernel_params("tanh"))
def test_tanh(name, fn):
    # the default computes 1 - e^{-2|x|}, which is exact to 2.2e-16 absolutely but not
    # relatively near 0: the absolute tolerance is what it guarantees
    x = np.concatenate([GRID, SPECIAL, [50.0, -50.0, 1e-8, -3e-5]])
    check(fn, (x,), np.tanh(x), rtol=1e-14, atol=5e-16)
    check(fn, (X32,), np.tanh(X32), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name, fn", kernel_params("sigmoid"))
def test_sigmoid(name, fn):
    x = np.concatenate([GRID * 4, [np.inf, -np.inf, 800.0, -800.0, 0.0]])
    expected = torch.sigmoid(torch.tensor(x)).numpy()
    check(fn, (x,), expected, rtol=1e-14, atol=1e-300)
    check(fn, (X32,), torch.sigmoid(torch.tensor(X32)).numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name, fn", kernel_params("erf"))
def test_erf(name, fn):
    expected = np.array([math.erf(v) for v in GRID])
    actual = fn(GRID)
    assert actual.dtype == np.float64
    assert np.max(np.abs(actual - expected)) < 1e-14
    tails = np.array([np.inf, -np.inf, 30.0, -30.0, 0.0, 1e-300])
    check(fn, (tails,), [math.erf(v) for v in tails], rtol=1e-15, atol=0)
    check(fn, (X32,), np.array([math.erf(v) for v in X32.ravel()], np.float32).reshape(3, 4),
          rtol=1e-6, atol=1e-7)
    # float32 over its whole range: NumpyDevice's rational function is within 7 float32 ulps
    # (4.5e-7 relative) everywhere; tiny values, where erf(x) ~ 2x / sqrt(pi), included
    x32 = np.concatenate([np.linspace(-6, 6, 20001), np.geomspace(1e-30, 1e-2, 200),
                          -np.geomspace(1e-30, 1e-2, 200)]).astype(np.float32)
    got = fn(x32)
    assert got.dtype == np.float32
    exact = np.array([math.erf(v) for v in x32.astype(np.float64)])
    assert np.max(np.abs(got - exact) / np.abs(exact)) < 5e-7
    check(fn, (np.array([np.nan, np.inf, -np.inf, -0.0], np.float32),),
          np.array([np.nan, 1.0, -1.0, -0.0], np.float32), rtol=0, atol=0)


@pytest.mark.parametrize("name, fn", kernel_params("min", "argmin"))
def test_min_argmin(name, fn):
    x = rng(14).integers(0, 3, (3, 4, 5)).astype(np.float64)  # ties: argmin takes the first
    ref = getattr(np, name)
    axes = [None, 0, 2] if name == "argmin" else [None, (0,), (1, 2), (0, 2)]
    for axis in axes:
        for keepdims in (False, True):
            expected = ref(x, axis=axis, keepdims=keepdims)
            actual = fn(x, axis, keepdims)
            assert actual.shape == expected.shape
            np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("name, fn", kernel_params("matmul"))
def test_matmul(name, fn):
    r = rng(15)
    for sa, sb in (((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2)),
                   ((1, 3, 4), (6, 4, 2))):
        a, b = r.standard_normal(sa), r.standard_normal(sb)
        check(fn, (a, b), np.matmul(a, b))
        check(fn, (a.astype(np.float32), b.astype(np.float32)),
              np.matmul(a.astype(np.float32), b.astype(np.float32)), atol=1e-5)


@pytest.mark.parametrize("name, fn", kernel_params("transpose"))
def test_transpose(name, fn):
    x = np.arange(24.0).reshape(2, 3, 4)
    for axes in ((0, 1, 2), (2, 0, 1), (1, 0, 2), (2, 1, 0)):
        check(fn, (x, axes), np.transpose(x, axes), rtol=0, atol=0)
        check(fn, (x[:, ::-1], axes), np.transpose(x[:, ::-1], axes), rtol=0, atol=0)


@pytest.mark.parametrize("name, fn", kernel_params("broadcast_to"))
def test_broadcast_to(name, fn):
    x = np.arange(3.0).reshape(3, 1)
    for shape in ((3, 1), (3, 4), (2, 3, 4), (1, 3, 1)):
        check(fn, (x, shape), np.broadcast_to(x, shape), rtol=0, atol=0)
    check(fn, (np.array(2.5), (2, 2)), np.full((2, 2), 2.5), rtol=0, atol=0)


@pytest.mark.parametrize("name, fn", kernel_params("take"))
def test_take(name, fn):
    x = rng(16).standard_normal((3, 4))
    for index in (np.array([0, 11, 5, 5]), np.array([[1, 2, 3], [0, 0, 7]]), np.array(4),
                  np.zeros(0, np.int64)):
        check(fn, (x, index), np.take(x, index), rtol=0, atol=0)


@pytest.mark.parametrize("name, fn", kernel_params("scatter_add"))
def test_scatter_add_accumulates_repeats(name, fn):
    index = np.array([[0, 3, 3], [5, 0, 3]])
    values = np.array([[1.0, 2.0, 4.0], [8.0, 16.0, 32.0]])
    expected = np.zeros(7)
    np.add.at(expected, index.ravel(), values.ravel())
    assert expected[3] == 38.0
    check(fn, (index, values, 7), expected, rtol=0, atol=0)
    check(fn, (index, values.astype(np.float32), 6), expected[:6].astype(np.float32),
          rtol=0, atol=0)


GETITEM_KEYS = [
    (slice(1, 3), 2),
    (None, Ellipsis, 0),
    (slice(None, None, -1), slice(0, 4, 2)),
    (np.array([0, 2, 0]),),
    (np.array([0, 2, 0]), slice(1, 3)),
    (np.array([[1], [2]]), np.array([0, 3, 3])),
    (np.array([True, False, True]),),
    (-1, -1),
    (Ellipsis,),
]


@pytest.mark.parametrize("name, fn", kernel_params("getitem"))
@pytest.mark.parametrize("key", GETITEM_KEYS, ids=str)
def test_getitem(name, fn, key):
    x = np.arange(12.0).reshape(3, 4)
    check(fn, (x, key), x[key], rtol=0, atol=0)


@pytest.mark.parametrize("name, fn", kernel_params("getitem_scatter"))
@pytest.mark.parametrize("key", GETITEM_KEYS, ids=str)
def test_getitem_scatter_is_the_adjoint(name, fn, key):
    shape = (3, 4)
    g = rng(17).standard_normal(np.empty(shape)[key].shape)
    expected = np.zeros(shape)
    np.add.at(expected, key, g)  # repeated advanced indices accumulate
    check(fn, (g, shape, key), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("name, fn", kernel_params("as_strided_scatter"))
def test_as_strided_scatter_accumulates_overlaps(name, fn):
    base_shape = (3, 4)
    for shape, strides, offset in (((2, 3, 2, 2), (4, 1, 4, 1), 0), ((10, 3), (1, 1), 0),
                                   ((2, 3), (1, 4), 1), ((2, 5), (0, 2), 1), ((3, 4), (4, 1), 0)):
        g = rng(18).standard_normal(shape)
        positions = _strided_reference(np.arange(12).reshape(base_shape), shape, strides, offset)
        expected = np.zeros(12)
        np.add.at(expected, positions.ravel(), g.ravel())
        check(fn, (g, shape, strides, offset, base_shape), expected.reshape(base_shape),
              rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("name, fn", kernel_params("pad"))
def test_pad(name, fn):
    x = rng(19).standard_normal((2, 3))
    for widths in (((0, 0), (0, 0)), ((1, 2), (0, 3)), ((0, 1), (2, 0))):
        for value in (0, 2.5, -1):
            check(fn, (x, widths, value), np.pad(x, widths, constant_values=value),
                  rtol=0, atol=1e-15)
    x32 = x.astype(np.float32)
    check(fn, (x32, ((1, 1), (1, 1)), 2.5), np.pad(x32, 1, constant_values=2.5), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name, fn", kernel_params("concatenate"))
def test_concatenate(name, fn):
    r = rng(20)
    a, b, c = r.standard_normal((2, 3)), r.standard_normal((2, 1)), r.standard_normal((2, 4))
    check(fn, ([a, b, c], 1), np.concatenate([a, b, c], 1), rtol=0, atol=0)
    d = r.standard_normal((1, 3))
    check(fn, ([a, d, a], 0), np.concatenate([a, d, a], 0), rtol=0, atol=0)
    check(fn, ([a], 0), a, rtol=0, atol=0)


def _size(shape):
    return int(np.prod(shape))


def _pool_argmax_expected(x, k):
    """torch's max_pool choice over the k leading axes, one window at a time: the running
    maximum is replaced by a larger value or by a nan, so the first maximum wins, or the last
    nan."""
    flat = x.reshape((-1,) + x.shape[k:]).reshape(_size(x.shape[:k]), -1)
    out = np.empty(flat.shape[1], np.int64)
    for j in range(flat.shape[1]):
        best = 0
        for i in range(1, flat.shape[0]):
            v, b = flat[i, j], flat[best, j]
            if np.isnan(v) or (not np.isnan(b) and v > b):
                best = i
        out[j] = best
    return out.reshape(x.shape[k:])


@pytest.mark.parametrize("name, fn", kernel_params("pool_argmax"))
def test_pool_argmax(name, fn):
    r = rng(21)
    ties = r.integers(0, 3, (4, 2, 5)).astype(np.float64)  # many equal maxima
    special = r.standard_normal((5, 3, 4))
    special[1, 0, :2] = special[3, 0, 1:3] = np.nan
    special[0, 1], special[2, 1, 0], special[4, 2, 3] = -np.inf, np.inf, np.inf
    special[:, 2, 0] = -np.inf  # a window of -inf only
    for x, k in ((ties, 1), (special, 1), (special.astype(np.float32), 1),
                 (r.standard_normal((1, 3)), 1), (r.standard_normal((3, 2, 4, 3)), 2),
                 (special.reshape(5, 3, 2, 2).transpose(2, 0, 1, 3), 2)):  # strided
        check(fn, (x, k), _pool_argmax_expected(x, k), rtol=0, atol=0)


# derived kernels whose tests are in test_device_math.py, test_device_bits.py and
# test_device_scans.py (accuracy on dense grids, exact integers, sorts, scans, linear algebra)
TESTED_ELSEWHERE = {
    "rint", "floor", "ceil", "trunc", "sin", "cos", "tan", "arcsin", "arccos", "arctan",
    "arctan2", "sinh", "cosh", "arcsinh", "arccosh", "arctanh", "log2", "log10", "log1p",
    "exp2", "expm1", "erfc", "hypot", "copysign", "fmod", "remainder", "floor_divide",
    "int_divmod", "bitwise_and", "bitwise_or", "bitwise_xor", "invert", "left_shift",
    "right_shift", "prod", "cumsum", "cumprod", "logcumsumexp", "cummax", "cummin", "argsort",
    "searchsorted", "solve", "inv", "slogdet", "det", "cholesky", "qr", "svd", "eigh",
    "scatter_max", "scatter_min", "scatter_prod", "scatter_set",
}


def test_every_derived_kernel_is_tested():
    tested = {"add_", "neg", "sign", "abs", "subtract", "divide", "greater", "less", "less_equal",
              "not_equal", "logical_not", "where", "maximum", "minimum", "clip", "sqrt", "fmax",
              "fmin",
              "logaddexp", "logaddexp2", "tanh", "sigmoid", "erf", "min", "argmin",
              "pool_argmax", "matmul", "transpose", "broadcast_to", "take", "scatter_add",
              "getitem", "getitem_scatter", "as_strided_scatter", "pad", "concatenate"}
    assert set(DERIVED) == tested | TESTED_ELSEWHERE, \
        f"untested derived kernels: {set(DERIVED) - tested - TESTED_ELSEWHERE}"


# ---- the contract ------------------------------------------------------------------------------

def _public_functions(cls):
    return {name for name, value in vars(cls).items()
            if not name.startswith("_") and callable(value)}


def test_reference_device_has_exactly_the_primitives_and_the_plumbing():
    # the test that keeps the "twelve primitives" claim true
    assert len(PRIMITIVES) == 12 and len(PLUMBING) == 8
    assert _public_functions(ReferenceDevice) == set(PRIMITIVES + PLUMBING)


def test_device_declares_the_primitives_and_the_plumbing():
    assert set(PRIMITIVES + PLUMBING) <= _public_functions(sg.Device)
    for name in PRIMITIVES + PLUMBING:
        assert getattr(sg.Device, name).__doc__, f"Device.{name} has no docstring"


STUB_ARGS = {
    "exp": (np.ones(2),), "log": (np.ones(2),), "sum": (np.ones(2),), "max": (np.ones(2),),
    "argmax": (np.ones(2),), "equal": (np.ones(2), 1.0), "greater_equal": (np.ones(2), 1.0),
    "add": (np.ones(2), 1.0), "mul": (np.ones(2), 1.0), "pow": (np.ones(2), 1.0),
    "einsum": ("i->", np.ones(2)), "as_strided": (np.ones(2), (2,), (1,)),
    "array": ([1.0],), "to_host": (np.ones(2),), "full": ((2,), 0.0, np.float64),
    "arange": (3, np.int64), "reshape": (np.ones(2), (2, 1)), "copy": (np.ones(2),),
    "astype": (np.ones(2), np.float32), "assign": (np.ones(2), 0.0),
}


@pytest.mark.parametrize("missing", PRIMITIVES + PLUMBING)
def test_a_missing_primitive_is_named(missing):
    methods = {k: v for k, v in vars(ReferenceDevice).items() if k != missing}
    cls = type("IncompleteDevice", (sg.Device,), methods)
    with pytest.raises(NotImplementedError, match=rf"IncompleteDevice.*'{missing}'"):
        getattr(cls(), missing)(*STUB_ARGS[missing])


def test_a_missing_primitive_is_named_when_an_op_needs_it():
    cls = type("NoLogDevice", (sg.Device,),
               {k: v for k, v in vars(ReferenceDevice).items() if k != "log"})
    t = sg.Tensor(np.ones(3), device=cls())
    assert np.asarray(t.exp()).shape == (3,)  # what it has works
    with pytest.raises(NotImplementedError, match=r"NoLogDevice.*'log'"):
        t.log()


def test_devices_compare_by_type_and_state():
    assert sg.NumpyDevice() == sg.NumpyDevice()
    assert ReferenceDevice() == ReferenceDevice()
    assert sg.NumpyDevice() != ReferenceDevice()
    assert hash(sg.NumpyDevice()) == hash(sg.NumpyDevice())
    assert "ReferenceDevice" in repr(ReferenceDevice())
