"""Accuracy of the elementwise maths kernels (rint, floor, sin, atan, log1p, erfc, fmod, ...)
on every device, in ulps of NumPy's result (math.erfc and math.erf for erfc and erf).

Each kernel runs on dense grids over its whole domain (linear and log-spaced, both signs),
plus signed zeros, subnormals, infinities, nan, the largest finite and the domain edges,
for float64, float32 and float16. The error of a value is |got - want| / spacing(want);
a nan, an infinity or a zero's sign that differs counts as an infinite error. On the
reference device these are the libm-style defaults of simplegrad.Device, written with the
twelve primitives (the table in docs/devices.md); on NumpyDevice, NumPy's own functions.
"""

import math
import zlib

import numpy as np
import pytest
from conftest import DEVICES as ALL_DEVICES
from conftest import cupy_unavailable

from simplegrad import _libm_constants

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

DEVICES = {name: cls for name, cls in ALL_DEVICES.items()
           if name != "cupy" or cupy_unavailable() is None}


@pytest.fixture(params=sorted(DEVICES))
def dev(request):
    return DEVICES[request.param]()


def kernel(dev, name):
    return getattr(dev, name)


# Worst error allowed, in ulps (float64, float32): what the defaults device measures on
# these grids (kernels.py's table) plus one, for NumPy builds whose float32 functions round
# differently. NumPy's own float32 functions are 1-3 ulps off, and its float32 exp and log,
# which the defaults build on, 2.5 and 3 ulps (AVX-512).
MEASURED = {
    "sin": (1, 1), "cos": (1, 1), "tan": (2, 3),
    "arcsin": (1, 3), "arccos": (1, 2), "arctan": (1, 1), "arctan2": (2, 3),
    "sinh": (2, 4), "cosh": (2, 4), "arcsinh": (2, 3), "arccosh": (2, 4), "arctanh": (2, 3),
    "log2": (1, 4), "log10": (2, 5), "log1p": (2, 4), "exp2": (1, 2), "expm1": (3, 4),
    "erfc": (6, 6), "erf": (4, 4), "hypot": (1, 1),
}
BOUNDS = {name: (a + 1, b + 1) for name, (a, b) in MEASURED.items()}
# NumpyDevice's float32 erf is one rational function on [-4, 4] (the one Eigen and XLA use),
# chosen for speed: within 7 ulps
NATIVE_BOUNDS = {("numpy", "erf"): (BOUNDS["erf"][0], 7)}


def bound(dev, name, dtype):
    return NATIVE_BOUNDS.get((dev.name, name), BOUNDS[name])[FLOATS.index(dtype)]
EXACT = ("rint", "floor", "ceil", "trunc", "copysign", "fmod", "remainder", "floor_divide")
FLOATS = (np.float64, np.float32)


def rng_for(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def ulp_error(got, want):
    """|got - want| in units of spacing(want), elementwise, as float64; 0 where both are the
    same nan, infinity or signed zero, inf where they differ in kind or in a zero's sign."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.dtype, want.dtype)
    g, w = got.astype(np.float64), want.astype(np.float64)
    spacing = np.spacing(np.abs(want)).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(g - w) / spacing
    same = (g == w) & (np.signbit(g) == np.signbit(w))
    same |= np.isnan(g) & np.isnan(w)
    err = np.where(same, 0.0, err)
    return np.where(np.isnan(err) | ((g == w) & ~same), np.inf, err)


def specials(dtype):
    info = np.finfo(dtype)
    v = [0.0, np.inf, np.nan, 1.0, 0.5, 2.0, 1.5, 2.5, info.max, info.tiny,
         info.smallest_subnormal, info.tiny * 3.5, float(info.eps), 1 - float(info.epsneg)]
    v = np.array(v, dtype)
    return np.concatenate([v, -v])


def logspace(rng, lo, hi, n, dtype):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n)).astype(dtype)


def unary_grid(name, dtype, n):
    """Points over the domain of `name`; n per segment."""
    rng = rng_for(name, np.dtype(dtype).name)
    info = np.finfo(dtype)
    big, sub = float(info.max), float(info.smallest_subnormal)

    def both(a):
        return np.concatenate([a, -a])

    lin = lambda lo, hi: rng.uniform(lo, hi, n).astype(dtype)  # noqa: E731
    log = lambda lo, hi: logspace(rng, lo, hi, n, dtype)        # noqa: E731
    near_one = 1 - log(float(info.epsneg), 0.5)
    seg = {
        "sin": [lin(-10, 10), both(log(sub, big))], "arctan": [lin(-4, 4), both(log(sub, big))],
        "arcsin": [lin(-1, 1), both(near_one), both(log(sub, 0.5)), both(lin(1, 4))],
        "sinh": [lin(-4, 4), both(log(sub, 800 if dtype == np.float64 else 100)),
                 both(lin(np.log(big) - 1, np.log(big) + 1))],   # overflow of e^|x|, sinh
        "arcsinh": [lin(-4, 4), both(log(sub, big))],
        "arccosh": [1 + log(float(info.eps), 4), log(1, big), lin(-2, 1)],
        "arctanh": [lin(-1, 1), both(near_one), both(log(sub, 0.5)), both(lin(1, 4))],
        "log2": [log(sub, big), 1 + both(log(float(info.epsneg), 0.2)), lin(-4, 4)],
        "log1p": [both(log(sub, 1)), log(1, big), -1 + log(float(info.epsneg), 1),
                  lin(-4, 4)],
        "exp2": [lin(info.minexp - info.nmant - 2, info.maxexp + 1), both(log(sub, 1))],
        "expm1": [lin(-60, np.log(big) + 1), both(log(sub, 1))],
        "erfc": [lin(-6, 28 if dtype == np.float64 else 11), both(log(sub, 0.5))],
        "rint": [lin(-10, 10), both(rng.integers(-2 ** 20, 2 ** 20, n) + 0.5),
                 both(log(1, big)), both(log(sub, 1)),
                 both(log(2 ** (info.nmant - 2), 2 ** (info.nmant + 2)))],
    }
    seg["cos"] = seg["tan"] = seg["sin"]
    seg["arccos"] = seg["arcsin"]
    seg["cosh"] = seg["sinh"]
    seg["log10"] = seg["log2"]
    seg["erf"] = seg["erfc"]
    seg["floor"] = seg["ceil"] = seg["trunc"] = seg["rint"]
    edges = [specials(dtype)]
    if name in ("sin", "cos", "tan"):  # multiples of pi/2 rounded: Cody-Waite's cancellations
        k = np.unique(rng.integers(1, int(_cw_limit(dtype)), n))
        edges.append(both((k * (np.pi / 2)).astype(dtype)))
    if name in ("log2", "log10"):
        edges.append(np.array([2.0 ** e for e in range(info.minexp - info.nmant, info.maxexp)]
                              + [10.0 ** e for e in range(-30, 30)], dtype))
    return np.concatenate(seg[name] + edges).astype(dtype)


def _cw_limit(dtype):
    return _libm_constants(dtype).cw_limit


def reference(name, x):
    """What NumPy computes (math.erfc / math.erf elementwise for erfc and erf: NumPy has
    none, and scipy.special.erfc is thousands of ulps off where erfc is subnormal)."""
    with np.errstate(all="ignore"):
        if name in ("erfc", "erf"):
            f = getattr(math, name)
            wide = np.array([f(float(v)) for v in x.astype(np.float64).ravel()])
            return wide.reshape(x.shape).astype(x.dtype)
        return getattr(np, name)(x)


def worst(err, *args):
    i = int(np.argmax(err))
    return f"worst {err.flat[i]:.3g} ulps at {[a.flat[i] for a in args]}"


# ---- unary kernels, float64 and float32 --------------------------------------------------------
UNARY = ("sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "arcsinh",
         "arccosh", "arctanh", "log2", "log10", "log1p", "exp2", "expm1", "erfc", "erf")


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", UNARY)
def test_unary_accuracy(dev, name, dtype):
    x = unary_grid(name, dtype, 20000)
    got = kernel(dev, name)(x)
    err = ulp_error(got, reference(name, x))
    assert err.max() <= bound(dev, name, dtype), f"{name} {np.dtype(dtype).name}: {worst(err, x)}"


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", ("rint", "floor", "ceil", "trunc"))
def test_rounding_exact(dev, name, dtype):
    x = unary_grid(name, dtype, 20000)
    err = ulp_error(kernel(dev, name)(x), reference(name, x))
    assert err.max() == 0, f"{name} {np.dtype(dtype).name}: {worst(err, x)}"


# ---- binary kernels ----------------------------------------------------------------------------
def binary_grid(name, dtype, n):
    """Every pair of specials, random pairs of log-uniform magnitudes over the whole range
    (huge quotients for fmod), and small integers and simple fractions (exact quotients)."""
    rng = rng_for(name, np.dtype(dtype).name)
    info = np.finfo(dtype)
    s = specials(dtype)
    x, y = (a.ravel() for a in np.meshgrid(s, s))

    def mags():
        m = logspace(rng, float(info.smallest_subnormal), float(info.max), n, dtype)
        return m * rng.choice(np.array([-1, 1], dtype), n)

    def simple():
        return (rng.integers(-60, 60, n) * rng.choice([0.25, 0.5, 1, 0.1, 3], n)).astype(dtype)

    def normal(scale):
        return (rng.standard_normal(n) * scale).astype(dtype)

    xs = np.concatenate([x, mags(), simple(), mags(), simple(), normal(100)])
    ys = np.concatenate([y, mags(), simple(), simple(), mags(), normal(1)])
    return xs.astype(dtype), ys.astype(dtype)


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", ("copysign", "fmod", "remainder", "floor_divide"))
def test_binary_exact(dev, name, dtype):
    x, y = binary_grid(name, dtype, 6000)
    if name == "copysign":  # a nan's sign bit is not visible to arithmetic: positive nans only
        y = np.where(np.isnan(y), np.abs(y), y)
    with np.errstate(all="ignore"):
        want = getattr(np, name)(x, y)
    err = ulp_error(kernel(dev, name)(x, y), want)
    assert err.max() == 0, f"{name} {np.dtype(dtype).name}: {worst(err, x, y)}"


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", ("arctan2", "hypot"))
def test_binary_accuracy(dev, name, dtype):
    x, y = binary_grid(name, dtype, 6000)
    with np.errstate(all="ignore"):
        want = getattr(np, name)(x, y)
    err = ulp_error(kernel(dev, name)(x, y), want)
    assert err.max() <= bound(dev, name, dtype), \
        f"{name} {np.dtype(dtype).name}: {worst(err, x, y)}"


def test_floor_divide_huge_quotients(dev):
    # quotients beyond 2^53 are the rounded (x - fmod(x, y)) / y itself: IEEE division matters
    rng = rng_for("huge quotients")
    x = logspace(rng, 1e20, 1e308, 20000, np.float64)
    y = logspace(rng, 1e-300, 1e5, 20000, np.float64) * rng.choice([-1.0, 1.0], 20000)
    err = ulp_error(kernel(dev, "floor_divide")(x, y), np.floor_divide(x, y))
    assert err.max() == 0, worst(err, x, y)


def test_broadcasting(dev):
    x = np.linspace(-5, 5, 12).reshape(3, 4)
    y = np.array([-1.5, 0.75, 2.0, 3.0])
    for name in ("fmod", "remainder", "floor_divide", "copysign", "arctan2", "hypot"):
        got = kernel(dev, name)(x, y)
        assert got.shape == (3, 4) and got.dtype == np.float64
        assert ulp_error(got, getattr(np, name)(x, y)).max() <= 2, name
    # 0-d arrays and NumPy scalars, as full reductions return them
    for name in ("sin", "floor", "log1p"):
        got = kernel(dev, name)(np.float32(0.75))
        assert np.shape(got) == () and np.asarray(got).dtype == np.float32, name


# ---- float16: computed in float32 and rounded, as NumPy's float16 loops -------------------------
ALL16 = np.arange(0, 2 ** 16, dtype=np.uint16).view(np.float16)


@pytest.mark.parametrize("name", UNARY + ("rint", "floor", "ceil", "trunc"))
def test_float16_exhaustive(dev, name):
    x = ALL16
    got = kernel(dev, name)(x)
    assert got.dtype == np.float16
    bound = 0 if name in EXACT else 1
    err = ulp_error(got, reference(name, x))
    assert err.max() <= bound, f"{name} float16: {worst(err, x)}"


@pytest.mark.parametrize("name", ("copysign", "fmod", "remainder", "floor_divide", "arctan2",
                                  "hypot"))
def test_float16_binary(dev, name):
    rng = rng_for(name, "float16")
    x, y = rng.choice(ALL16, 20000), rng.choice(ALL16, 20000)
    if name == "copysign":
        y = np.where(np.isnan(y), np.abs(y), y)
    got = kernel(dev, name)(x, y)
    assert got.dtype == np.float16
    with np.errstate(all="ignore"):
        err = ulp_error(got, getattr(np, name)(x, y))
    assert err.max() <= (0 if name in EXACT else 1), f"{name} float16: {worst(err, x, y)}"


# ---- arguments where NumPy itself is off, and the reductions themselves ------------------------
def test_trig_worst_case_reduction(dev):
    # Kahan and McDonald's double closest to a multiple of pi/2: 6381956970095103 * 2^797;
    # the values from mpmath with 2000 bits (glibc's and NumPy's cos are 8 ulps off here)
    x = np.array([6381956970095103 * 2.0 ** 797, np.finfo(np.float64).max])
    want = {"sin": [1.0, 0.004961954789184062], "cos": [-4.687165924254628e-19,
                                                        -0.9999876894265599],
            "tan": [-2.133485385753704e+18, -0.004962015874444895]}
    bound = 1 if dev.name == "reference" else 16   # leave NumPy its 8 ulps
    for name, values in want.items():
        err = ulp_error(kernel(dev, name)(x), np.array(values))
        assert err.max() <= bound, (name, worst(err, x))


def test_sin_cos_bounded_everywhere(dev):
    for dtype in FLOATS:
        x = unary_grid("sin", dtype, 3000)
        for name in ("sin", "cos"):
            v = kernel(dev, name)(x)
            finite = np.isfinite(x)
            assert np.all(np.abs(v[finite]) <= 1) and np.all(np.isnan(v[~finite]))


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_cody_waite_agrees_with_payne_hanek(dtype):
    # the two reductions on their common ground, 1 <= x < cw_limit
    d = DEVICES["reference"]()
    x = logspace(rng_for("cw-ph", np.dtype(dtype).name), 1, _cw_limit(dtype), 20000, dtype)
    q1, h1, l1 = d._reduce_cody_waite(x)
    q2, h2, l2 = d._reduce_payne_hanek(x)
    assert np.array_equal(q1, q2)
    r1 = h1.astype(np.longdouble) + l1
    r2 = h2.astype(np.longdouble) + l2
    assert np.max(np.abs(r1 - r2) / np.spacing(np.abs(h1))) <= 1e-3


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_exponent_tools_exact(dtype):
    d = DEVICES["reference"]()
    info = np.finfo(dtype)
    rng = rng_for("frexp", np.dtype(dtype).name)
    v = np.concatenate([logspace(rng, float(info.smallest_subnormal), float(info.max), 20000,
                                 dtype),
                        np.array([info.smallest_subnormal, info.tiny, info.max, 1.0], dtype)])
    m, e = d._frexp(v)
    fm, fe = np.frexp(v)                               # fm in [1/2, 1)
    assert np.array_equal(m, fm * 2) and np.array_equal(e, (fe - 1).astype(dtype))
    assert np.array_equal(d._ldexp(m, e), v)


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_correctly_rounded_division(dtype):
    d = DEVICES["reference"]()
    info = np.finfo(dtype)
    rng = rng_for("div", np.dtype(dtype).name)
    a = logspace(rng, float(info.tiny) * 2 ** 60, float(info.max), 50000, dtype)
    b = logspace(rng, 1e-3, 1e3, 50000, dtype) * rng.choice(np.array([-1, 1], dtype), 50000)
    assert np.array_equal(d._div_rn(a, b), a / b)


def test_exact_where_float32():
    # the default where's pow trick is inexact with NumPy's float32 SIMD pow
    d = DEVICES["reference"]()
    x = np.array([623333.5, -0.0, np.inf, -np.inf, np.nan, 1e-45, 3.4e38], np.float32)
    y = np.full_like(x, 2.0)
    for got, want in ((d.where(np.ones(7, bool), x, y), x), (d.where(np.zeros(7, bool), y, x), x)):
        assert ulp_error(got, want).max() == 0


def _table():
    """The worst errors on the test grids, on the defaults device (python test_kernels.py)."""
    d = DEVICES["reference"]()
    rows = []
    for name in UNARY + ("hypot", "arctan2"):
        cells = []
        for dtype in FLOATS:
            if name in UNARY:
                x = unary_grid(name, dtype, 20000)
                err = ulp_error(getattr(d, name)(x), reference(name, x))
            else:
                x, y = binary_grid(name, dtype, 6000)
                with np.errstate(all="ignore"):
                    err = ulp_error(getattr(d, name)(x, y), getattr(np, name)(x, y))
            cells.append(f"{err.max():g}")
        x = ALL16
        if name in UNARY:
            e16 = ulp_error(getattr(d, name)(x), reference(name, x)).max()
        else:
            rng = rng_for(name, "float16")
            a, b = rng.choice(ALL16, 20000), rng.choice(ALL16, 20000)
            with np.errstate(all="ignore"):
                e16 = ulp_error(getattr(d, name)(a, b), getattr(np, name)(a, b)).max()
        rows.append(f"{name:10s} {cells[0]:>6s} {cells[1]:>6s} {e16:>6g}")
    print("\n".join(rows))


if __name__ == "__main__":
    _table()
