"""Integer division, bitwise logic and shifts on every device, compared exactly (values and
dtype) with NumPy: the reference device runs the defaults of simplegrad.Device, written with
the twelve primitives (which must not warn), NumpyDevice NumPy's own calls. Inputs: every pair of
8-bit values; for wider types the edge values (0, +-1, min, max, powers of two and their
neighbours) against each other, plus random pairs, full-range and log-uniform in magnitude
(quotients of every size). Out-of-range shifts are also compared with torch, whose behaviour
simplegrad follows.
"""

import warnings

import numpy as np
import pytest
from conftest import DEVICES as ALL_DEVICES
from conftest import cupy_unavailable

DEVICES = {name: cls for name, cls in ALL_DEVICES.items()
           if name != "cupy" or cupy_unavailable() is None}


@pytest.fixture(params=sorted(DEVICES))
def dev(request):
    return DEVICES[request.param]()


SIGNED = [np.int8, np.int16, np.int32, np.int64]
UNSIGNED = [np.uint8, np.uint16, np.uint32, np.uint64]
INTS = SIGNED + UNSIGNED


def call(dev, name, *args):
    """dev.name(*args); the defaults must not warn, NumPy's may (y == 0, min // -1)."""
    with warnings.catch_warnings():
        if dev.name == "reference":
            warnings.simplefilter("error")
            return getattr(dev, name)(*args)
        with np.errstate(all="ignore"):
            return getattr(dev, name)(*args)


def expected(fn, *args):
    with np.errstate(all="ignore"):
        return fn(*args)


def check(got, want):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want), strict=True)


def edge_values(dtype):
    """0, 1, min, max, powers of two and their neighbours, and their negatives."""
    info = np.iinfo(dtype)
    vals = {0, 1, 3, 5, 7, 10, info.max, info.max - 1, info.max // 2, info.max // 3}
    for k in range(info.bits):
        vals |= {2 ** k - 1, 2 ** k, 2 ** k + 1}
    if info.min < 0:
        vals |= {-v for v in vals} | {info.min, info.min + 1, info.min + 2}
    return np.array(sorted(v for v in vals if info.min <= v <= info.max), dtype)


def random_values(dtype, n, rng):
    """n values, half uniform over the full range, half of uniformly random bit length."""
    info = np.iinfo(dtype)
    full = rng.integers(info.min, info.max, n // 2, dtype=dtype, endpoint=True)
    length = rng.integers(0, info.bits, n - n // 2)
    small = np.array([int(rng.integers(0, 2 ** int(b), dtype=np.uint64, endpoint=True))
                      for b in length], dtype=object)
    if info.min < 0:
        small = np.where(rng.random(small.size) < 0.5, -small, small)
        small = np.maximum(small, info.min)
    small = np.minimum(small, info.max).astype(dtype)
    return np.concatenate([full, small])


def grid(dtype, rng, n_random=150, exclude_zero_y=True):
    """x down a column and y along a row (so the kernels broadcast): every pair of values of
    an 8-bit type, else the edge values and random ones against each other."""
    if np.iinfo(dtype).bits == 8:
        values = np.arange(np.iinfo(dtype).min, np.iinfo(dtype).max + 1).astype(dtype)
        x = y = values
    else:
        x = np.concatenate([edge_values(dtype), random_values(dtype, n_random, rng)])
        y = np.concatenate([edge_values(dtype), random_values(dtype, n_random, rng)])
    if exclude_zero_y:
        y = y[y != 0]
    return x[:, None], y[None, :]


def random_pairs(dtype, n, rng):
    x = random_values(dtype, n, rng)
    y = rng.permutation(random_values(dtype, n, rng))
    return x, np.where(y == 0, np.ones_like(y), y)


# ---- integer division ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", INTS, ids=lambda d: np.dtype(d).name)
def test_floor_divide_and_remainder(dev, dtype):
    rng = np.random.default_rng(1)
    for x, y in (grid(dtype, rng), random_pairs(dtype, 20000, rng)):
        q, r = call(dev, "int_divmod", x, y)
        check(q, expected(np.floor_divide, x, y))
        check(r, expected(np.remainder, x, y))
        check(call(dev, "floor_divide", x, y), q)
        check(call(dev, "remainder", x, y), r)


@pytest.mark.parametrize("dtype", SIGNED, ids=lambda d: np.dtype(d).name)
def test_min_floor_divide_minus_one_wraps(dev, dtype):
    x = np.array([np.iinfo(dtype).min], dtype)
    y = np.array([-1], dtype)
    check(call(dev, "floor_divide", x, y), x)  # NumPy's min (and an overflow warning)
    check(call(dev, "remainder", x, y), np.zeros(1, dtype))


@pytest.mark.parametrize("dtype", [np.int8, np.int64, np.uint8, np.uint64],
                         ids=lambda d: np.dtype(d).name)
def test_divide_by_zero_gives_zero(dev, dtype):
    # the caller raises for a zero divisor; the kernels give NumPy's 0, 0 (NumPy also warns)
    x = edge_values(dtype)
    y = np.zeros_like(x)
    check(call(dev, "floor_divide", x, y), expected(np.floor_divide, x, y))
    check(call(dev, "remainder", x, y), expected(np.remainder, x, y))


def test_division_scalars_and_broadcasting(dev):
    x = np.arange(-12, 12, dtype=np.int32).reshape(4, 6)
    for y in (5, -5, np.array(-7, np.int32), np.array([[3], [-3], [1], [-1]], np.int32)):
        check(call(dev, "floor_divide", x, y), np.floor_divide(x, y))
        check(call(dev, "remainder", x, y), np.remainder(x, y))
    # 0-d operands and NumPy scalars give what NumPy gives (a NumPy scalar)
    a, b = np.array(-7, np.int64), np.int64(2)
    check(call(dev, "floor_divide", a, b), np.floor_divide(a, b))
    check(call(dev, "remainder", a, b), np.remainder(a, b))
    check(call(dev, "floor_divide", 7, np.array([-2], np.int8)), np.array([-4], np.int8))
    # a Python int out of the dtype's range raises, as in NumPy 2
    with pytest.raises(OverflowError):
        call(dev, "floor_divide", np.array([3], np.uint8), -1)


# ---- bitwise logic ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", INTS, ids=lambda d: np.dtype(d).name)
def test_bitwise(dev, dtype):
    rng = np.random.default_rng(2)
    for x, y in (grid(dtype, rng, n_random=50, exclude_zero_y=False),
                 random_pairs(dtype, 5000, rng)):
        check(call(dev, "bitwise_and", x, y), np.bitwise_and(x, y))
        check(call(dev, "bitwise_or", x, y), np.bitwise_or(x, y))
        check(call(dev, "bitwise_xor", x, y), np.bitwise_xor(x, y))
        check(call(dev, "invert", x), np.invert(x))


def test_bitwise_bool(dev):
    x = np.array([[False], [True]])
    y = np.array([False, True])
    check(call(dev, "bitwise_and", x, y), x & y)
    check(call(dev, "bitwise_or", x, y), x | y)
    check(call(dev, "bitwise_xor", x, y), x ^ y)
    check(call(dev, "invert", x), ~x)
    check(call(dev, "invert", np.array(True)), np.invert(np.array(True)))


def test_bitwise_scalars_and_promotion(dev):
    x = np.array([-6, 0, 127, -128], np.int8)
    for fn, name in ((np.bitwise_and, "bitwise_and"), (np.bitwise_or, "bitwise_or"),
                     (np.bitwise_xor, "bitwise_xor")):
        check(call(dev, name, x, 3), fn(x, 3))
        check(call(dev, name, -3, x), fn(-3, x))
        wide = np.array([1000, -1, 7, 2 ** 40])
        check(call(dev, name, x, wide), fn(x, wide))  # int8 with int64: int64
        check(call(dev, name, np.array(5, np.int16), np.int16(-2)),
              fn(np.array(5, np.int16), np.int16(-2)))


# ---- shifts ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", INTS, ids=lambda d: np.dtype(d).name)
def test_shifts(dev, dtype):
    rng = np.random.default_rng(3)
    bits = np.iinfo(dtype).bits
    x = np.concatenate([edge_values(dtype), random_values(dtype, 100, rng)])[:, None]
    k = np.arange(bits, dtype=dtype)[None, :]
    check(call(dev, "left_shift", x, k), np.left_shift(x, k))
    check(call(dev, "right_shift", x, k), np.right_shift(x, k))
    for shift in (0, 1, bits - 1):  # a Python int shift
        check(call(dev, "left_shift", x, shift), np.left_shift(x, shift))
        check(call(dev, "right_shift", x, shift), np.right_shift(x, shift))


def out_of_range_shifts(dtype):
    info = np.iinfo(dtype)
    k = [info.bits, info.bits + 1, 2 * info.bits, info.max]
    if info.min < 0:
        k += [-1, -info.bits, info.min]
    return np.array(sorted(set(v for v in k if v <= info.max)), dtype)


@pytest.mark.parametrize("dtype", INTS, ids=lambda d: np.dtype(d).name)
def test_shifts_out_of_range(dev, dtype):
    # k < 0 or k >= bits: left gives 0, right gives -1 for negative x and 0 otherwise
    x = edge_values(dtype)[:, None]
    k = out_of_range_shifts(dtype)[None, :]
    left, right = call(dev, "left_shift", x, k), call(dev, "right_shift", x, k)
    check(left, np.left_shift(x, k))
    check(right, np.right_shift(x, k))
    check(left, np.zeros(np.broadcast_shapes(x.shape, k.shape), dtype))
    check(right, np.broadcast_to(np.where(x < 0, -1, 0).astype(dtype), left.shape))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8],
                         ids=lambda d: np.dtype(d).name)
def test_shifts_match_torch(dev, dtype):
    torch = pytest.importorskip("torch")
    x = edge_values(dtype)[:, None]
    k = np.concatenate([np.arange(np.iinfo(dtype).bits), out_of_range_shifts(dtype)])
    k = k.astype(dtype)[None, :]
    tx, tk = torch.from_numpy(x), torch.from_numpy(k)
    check(call(dev, "left_shift", x, k), (tx << tk).numpy())
    check(call(dev, "right_shift", x, k), (tx >> tk).numpy())
