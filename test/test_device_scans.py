"""Sorting, scans, products, linear algebra and scatter-reduce kernels on every device, against
NumPy and, where the semantics are torch's (stable sorts with nan last, cummax's indices,
searchsorted of nan, logcumsumexp), torch 2.13. The reference device runs the defaults of
simplegrad.Device written with the twelve primitives; NumpyDevice NumPy's own calls.
"""

import warnings

import numpy as np
import pytest
from conftest import DEVICES as ALL_DEVICES
from conftest import cupy_unavailable
from helpers import torch

DEVICES = {name: cls for name, cls in ALL_DEVICES.items()
           if name != "cupy" or cupy_unavailable() is None}


@pytest.fixture(params=sorted(DEVICES))
def dev(request):
    return DEVICES[request.param]()


@pytest.fixture(autouse=True)
def _quiet():
    # the defaults compute lanes they then mask (inf - inf, 0 / 0): NumPy warns, harmlessly
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


FLOATS = [np.float64, np.float32]


def tied(rng, shape, dtype, special=True):
    """Many ties: small integers, and for floats nan, +-inf and -0.0 among them."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    x = rng.integers(0 if dtype.kind == "u" else -2, 3, shape)
    if dtype.kind != "f":
        return x.astype(dtype)
    x = x.astype(dtype)
    if special:
        u = rng.random(shape)
        x[u < 0.15] = np.nan
        x[(u >= 0.15) & (u < 0.2)] = np.inf
        x[(u >= 0.2) & (u < 0.25)] = -np.inf
        x[(x == 0) & (rng.random(shape) < 0.5)] = -0.0
    return x


def ulps(got, want):
    """Largest distance between got and want in ulps of want's dtype (at want's magnitude, at
    least the smallest normal's); non-finite values must agree exactly."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    special = ~np.isfinite(want)
    assert np.array_equal(got[special], want[special], equal_nan=True)
    if not np.isfinite(got).all() and not special.any():
        raise AssertionError("non-finite result where the reference is finite")
    finite = ~special
    if not finite.any():
        return 0.0
    g, w = got[finite].astype(np.float64), want[finite].astype(np.float64)
    tiny = np.finfo(want.dtype).tiny
    scale = np.spacing(np.maximum(np.abs(want[finite]), tiny).astype(want.dtype))
    return float(np.max(np.abs(g - w) / scale.astype(np.float64)))


def ulps_from_exact(got, exact):
    """Largest distance in ulps of got's dtype between got and `exact`, a long double (64-bit
    significand) reference of the same values."""
    got = np.asarray(got)
    exact = np.asarray(exact, dtype=np.longdouble)
    assert got.shape == exact.shape
    scale = np.spacing(np.maximum(np.abs(exact), np.finfo(got.dtype).tiny).astype(got.dtype))
    return float(np.max(np.abs(got.astype(np.longdouble) - exact) / scale, initial=0))


def product_bound(n):
    """Ulps within which a product of n factors lands, by a tree or a running product alike
    (each rounds n - 1 times; the errors add up like a random walk)."""
    return 2 * np.sqrt(max(n, 1)) + 2


def same(got, want):
    """Bitwise the same values (nan matches nan; -0.0 differs from 0.0)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    if want.dtype.kind == "f":
        assert np.array_equal(np.signbit(got), np.signbit(want) | np.isnan(want) & np.signbit(got))
        assert np.array_equal(got, want, equal_nan=True)
    else:
        assert np.array_equal(got, want)


# ---- argsort -----------------------------------------------------------------------------------
SORT_CASES = [((50,), 0), ((4, 50), 1), ((50, 3), 0), ((3, 7, 5), 1), ((2, 3, 9), 2),
              ((1,), 0), ((0,), 0), ((3, 0), 1), ((0, 4), 1)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, np.int64, np.bool_])
@pytest.mark.parametrize("shape,axis", SORT_CASES)
@pytest.mark.parametrize("descending", [False, True])
def test_argsort_is_torch_stable_sort(dev, dtype, shape, axis, descending):
    rng = np.random.default_rng(1)
    x = tied(rng, shape, dtype)
    got = dev.argsort(x, axis, descending)
    want = torch.sort(torch.from_numpy(x.copy()), dim=axis, stable=True,
                      descending=descending).indices.numpy()
    same(got, want)
    if not descending:
        same(got, np.argsort(x, axis=axis, kind="stable"))


def test_argsort_of_distinct_values_sorts(dev):
    x = np.random.default_rng(2).standard_normal((6, 40))
    order = dev.argsort(x, 1, True)
    assert (np.diff(np.take_along_axis(x, order, 1), axis=1) < 0).all()


# ---- searchsorted -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_1d_is_torch(dev, dtype, right):
    rng = np.random.default_rng(3)
    seq = np.sort(tied(rng, (40,), dtype, special=False))
    if np.dtype(dtype).kind == "f":
        seq[:2], seq[-2:] = -np.inf, np.inf
        seq[seq == 0] = -0.0
        values = np.array([np.nan, -np.inf, np.inf, -0.0, 0.0, -3, -2, -1.5, 0.5, 2, 7],
                          dtype)
        values = np.concatenate([values, tied(rng, (30,), dtype)]).reshape(41, 1)
    else:
        values = np.arange(-4, 5, dtype=dtype).reshape(3, 3)
    got = dev.searchsorted(seq, values, right)
    want = torch.searchsorted(torch.from_numpy(seq), torch.from_numpy(values),
                              right=right).numpy()
    same(got, want)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_batched_is_torch(dev, dtype, right):
    rng = np.random.default_rng(4)
    seq = np.sort(tied(rng, (3, 4, 30), dtype, special=False), -1)
    values = tied(rng, (3, 4, 12), dtype)
    got = dev.searchsorted(seq, values, right)
    want = torch.searchsorted(torch.from_numpy(seq), torch.from_numpy(values),
                              right=right).numpy()
    same(got, want)


@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_with_nan_in_the_sequence_is_numpy(dev, right):
    # torch's binary search is not defined there; nan counts as above every number, as
    # np.sort puts it, and a nan value goes to the end (n) as in torch
    seq = np.array([[-1.0, 0.0, 0.0, 2.0, np.nan, np.nan]] * 2)
    values = np.array([[-2.0, 0.0, 1.0, 2.0, 3.0, np.inf], [np.nan, -np.inf, 0, 5, 2, -1]])
    side = "right" if right else "left"
    want = np.stack([np.searchsorted(s, v, side) for s, v in zip(seq, values)])
    want[np.isnan(values)] = seq.shape[-1]
    same(dev.searchsorted(seq, values, right), want)
    same(dev.searchsorted(seq[0], values, right), want)


# ---- prod ---------------------------------------------------------------------------------------
PROD_AXES = [((6, 5, 7), None), ((6, 5, 7), (0,)), ((6, 5, 7), (1, 2)), ((6, 5, 7), (0, 2)),
             ((6, 5, 7), ()), ((64,), (0,)), ((3, 33), (1,)), ((3, 0), (1,)), ((3, 0), (0,)),
             ((), None), ((1,), (0,))]


@pytest.mark.parametrize("shape,axis", PROD_AXES)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("dtype", FLOATS)
def test_prod_float(dev, shape, axis, keepdims, dtype):
    rng = np.random.default_rng(5)
    x = rng.uniform(0.5, 2.0, shape).astype(dtype) * rng.choice([-1, 1], shape).astype(dtype)
    got = dev.prod(x, axis, keepdims)
    want = np.prod(x, axis=axis, keepdims=keepdims)
    assert got.dtype == want.dtype and got.shape == want.shape
    exact = np.prod(x.astype(np.longdouble), axis=axis, keepdims=keepdims)
    n = x.size // max(want.size, 1)
    assert ulps_from_exact(got, exact) <= product_bound(n)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
@pytest.mark.parametrize("shape,axis", PROD_AXES)
def test_prod_int_is_exact(dev, dtype, shape, axis):
    rng = np.random.default_rng(6)
    x = rng.integers(-3, 4, shape).astype(dtype)
    same(np.asarray(dev.prod(x, axis)), np.asarray(np.prod(x, axis=axis)))
    big = rng.integers(-2**40, 2**40, (3, 20))  # overflows and wraps, in any order alike
    same(dev.prod(big, (1,)), np.prod(big, axis=1))


def test_prod_special_values(dev):
    x = np.array([[np.inf, 0.0], [np.nan, 1.0], [-np.inf, 2.0], [-0.0, 3.0], [-0.0, -3.0],
                  [1e200, 1e200], [1e-200, 1e-200]])
    same(dev.prod(x, (1,)), np.prod(x, axis=1))
    same(dev.prod(x.astype(np.float16), (1,)), np.prod(x.astype(np.float16), axis=1))


# ---- cumsum, cumprod ----------------------------------------------------------------------------
SCAN_CASES = [((50,), 0), ((4, 50), 1), ((37, 3), 0), ((3, 7, 5), 1), ((1,), 0), ((0,), 0),
              ((3, 0), 1), ((0, 5), 1), ((2, 64), 1)]


@pytest.mark.parametrize("shape,axis", SCAN_CASES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_cumsum_float(dev, shape, axis, dtype):
    x = np.random.default_rng(7).standard_normal(shape).astype(dtype)
    got = dev.cumsum(x, axis)
    want = np.cumsum(x, axis)
    assert got.dtype == want.dtype and got.shape == want.shape
    # a scan rounds log2(n) times per element, the running sum n times: both within
    # n eps sum|x| of the exact sums
    n = max(x.shape[axis] if x.ndim else 1, 1)
    bound = n * np.finfo(dtype).eps * np.cumsum(np.abs(x).astype(np.float64), axis)
    assert (np.abs(got.astype(np.float64) - want) <= bound).all()


@pytest.mark.parametrize("shape,axis", SCAN_CASES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_cumprod_float(dev, shape, axis, dtype):
    rng = np.random.default_rng(8)
    x = rng.uniform(0.5, 2.0, shape).astype(dtype) * rng.choice([-1, 1], shape).astype(dtype)
    got, want = dev.cumprod(x, axis), np.cumprod(x, axis)
    assert got.dtype == want.dtype and got.shape == want.shape
    exact = np.cumprod(x.astype(np.longdouble), axis)
    assert ulps_from_exact(got, exact) <= product_bound(x.shape[axis])


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
@pytest.mark.parametrize("shape,axis", SCAN_CASES)
def test_cumsum_cumprod_int_are_exact(dev, dtype, shape, axis):
    rng = np.random.default_rng(9)
    x = rng.integers(0 if dtype == np.uint8 else -3, 4, shape).astype(dtype)
    same(dev.cumsum(x, axis), np.cumsum(x, axis))
    same(dev.cumprod(x, axis), np.cumprod(x, axis))


def test_scans_special_values(dev):
    # (not where partial sums overflow: a scan and a running sum overflow at different lanes)
    x = np.array([[1.0, np.inf, -np.inf, 2.0], [-0.0, -0.0, 0.0, -0.0], [np.nan, 1, 2, 3],
                  [1e308, -1e308, 1e308, 1.0], [0.0, np.inf, 1.0, 2.0]])
    same(dev.cumsum(x, 1), np.cumsum(x, 1))
    same(dev.cumprod(x, 1), np.cumprod(x, 1))
    same(dev.cumsum(x.astype(np.float16), 1), np.cumsum(x.astype(np.float16), 1))


# ---- logcumsumexp -------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,axis", SCAN_CASES)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 8), (np.float32, 8)])
def test_logcumsumexp_is_torch(dev, shape, axis, dtype, tol):
    x = (np.random.default_rng(10).standard_normal(shape) * 30).astype(dtype)
    got = dev.logcumsumexp(x, axis)
    want = torch.logcumsumexp(torch.from_numpy(x), axis).numpy()
    assert ulps(got, want) <= tol
    assert ulps(got, np.logaddexp.accumulate(x, axis)) <= tol


@pytest.mark.parametrize("dtype", FLOATS)
def test_logcumsumexp_special_values(dev, dtype):
    x = np.array([[-np.inf, -np.inf, 1.0, -np.inf], [np.inf, np.inf, 1.0, -np.inf],
                  [np.inf, -np.inf, -np.inf, 0.0], [-np.inf, 0.0, np.inf, 1.0],
                  [1.0, np.nan, -np.inf, 2.0], [np.nan, np.inf, 0.0, 1.0],
                  [-800.0, -800.0, 800.0, 800.0], [0.0, -40.0, -80.0, -745.0],
                  [1e-30, 2e-30, -1e-30, 0.0]], dtype)
    got = dev.logcumsumexp(x, 1)
    want = torch.logcumsumexp(torch.from_numpy(x), 1).numpy()
    assert ulps(got, want) <= 2


# ---- cummax, cummin -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, np.int64, np.uint8,
                                   np.bool_])
@pytest.mark.parametrize("shape,axis", SCAN_CASES)
@pytest.mark.parametrize("op", ["cummax", "cummin"])
def test_cummax_cummin_are_torch(dev, dtype, shape, axis, op):
    rng = np.random.default_rng(11)
    for special in (True, False):
        x = tied(rng, shape, dtype, special)
        values, indices = getattr(dev, op)(x, axis)
        want = getattr(torch, op)(torch.from_numpy(x.copy()), axis)
        same(indices, want.indices.numpy())
        same(values, want.values.numpy())  # x at the index: -0.0 or 0.0 as torch


def test_cummax_ties_and_nan_by_hand(dev):
    x = np.array([1.0, 3.0, 3.0, 2.0, np.nan, 5.0, np.nan, 1.0])
    values, indices = dev.cummax(x, 0)
    same(indices, np.array([0, 1, 2, 2, 4, 4, 6, 6]))
    same(values, np.array([1.0, 3, 3, 3, np.nan, np.nan, np.nan, np.nan]))
    values, indices = dev.cummin(np.array([2, 1, 1, 3, 1]), 0)
    same(indices, np.array([0, 1, 2, 2, 4]))


# ---- linear algebra -----------------------------------------------------------------------------
def matrices(rng, shape, dtype):
    """Well-conditioned matrices: normal entries plus a multiple of the identity."""
    n = shape[-1]
    return (rng.standard_normal(shape) + 3 * np.eye(n)).astype(dtype)


def close(got, want, dtype, factor):
    """|got - want| <= factor eps max|want|, per matrix."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    scale = np.max(np.abs(want), axis=(-2, -1), keepdims=True) if want.ndim >= 2 else 1
    err = np.abs(got - want) / (np.finfo(dtype).eps * np.maximum(scale, 1e-300))
    assert np.all(err <= factor), float(np.max(err))


LINALG_SHAPES = [(5, 5), (4, 6, 6), (2, 3, 4, 4), (1, 1), (3, 2, 2), (12, 12)]


@pytest.mark.parametrize("shape", LINALG_SHAPES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_inv_solve(dev, shape, dtype):
    rng = np.random.default_rng(12)
    a = matrices(rng, shape, dtype)
    close(dev.inv(a), np.linalg.inv(a), dtype, 64)
    b = rng.standard_normal(shape[:-1] + (3,)).astype(dtype)
    close(dev.solve(a, b), np.linalg.solve(a, b), dtype, 64)


def test_solve_vector_and_broadcast(dev):
    rng = np.random.default_rng(13)
    a = matrices(rng, (4, 4), np.float64)
    b = rng.standard_normal(4)
    np.testing.assert_allclose(dev.solve(a, b), np.linalg.solve(a, b), rtol=1e-13, atol=1e-14)
    bs = rng.standard_normal((3, 4, 2))
    np.testing.assert_allclose(dev.solve(a, bs), np.linalg.solve(a, bs), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("shape", LINALG_SHAPES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_det_slogdet(dev, shape, dtype):
    rng = np.random.default_rng(14)
    a = rng.standard_normal(shape).astype(dtype)  # no shift: signs of either kind
    sign, logabsdet = dev.slogdet(a)
    want_sign, want_log = np.linalg.slogdet(a)
    same(sign, want_sign)
    n = shape[-1]
    assert np.all(np.abs(logabsdet - want_log) <= 64 * n * np.finfo(dtype).eps
                  * np.maximum(np.abs(want_log), 1)), (logabsdet, want_log)
    det = dev.det(a)
    want = np.linalg.det(a)
    assert det.dtype == want.dtype
    # log|det| is within a few eps per step; exp turns its absolute error into a relative one
    np.testing.assert_allclose(det, want, rtol=256 * n * np.finfo(dtype).eps)


def test_det_of_integer_matrices_is_numpys(dev):
    a = np.array([[[2.0, 0.0], [0.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [1.0, 0.0]]])
    np.testing.assert_allclose(dev.det(a), np.linalg.det(a), rtol=4e-16)


def singular_matrices(dtype):
    return np.array([[[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]],   # two rows in ratio
                     [[1.0, 2.0, 0.0], [3.0, 4.0, 0.0], [5.0, 6.0, 0.0]],   # a zero column
                     [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
                     [[2.0, 1.0, 1.0], [4.0, 2.0, 2.0], [1.0, 5.0, 3.0]]], dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_singular_matrices(dev, dtype):
    a = singular_matrices(dtype)
    sign, logabsdet = dev.slogdet(a)
    want_sign, want_log = np.linalg.slogdet(a)
    same(sign, want_sign)
    same(logabsdet, want_log)
    same(dev.det(a), np.linalg.det(a))
    for m in a:
        with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
            dev.inv(m)
        with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
            dev.solve(m, np.ones((3, 1), dtype))
    good = matrices(np.random.default_rng(15), (3, 3), dtype)
    with pytest.raises(np.linalg.LinAlgError):
        dev.inv(np.stack([good, a[0]]))  # one singular matrix in a batch


def test_empty_matrices(dev):
    a = np.zeros((2, 0, 0))
    same(dev.det(a), np.linalg.det(a))
    sign, logabsdet = dev.slogdet(a)
    same(sign, np.ones(2))
    same(logabsdet, np.zeros(2))
    assert dev.inv(a).shape == (2, 0, 0)


@pytest.mark.parametrize("shape", LINALG_SHAPES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_cholesky(dev, shape, dtype):
    rng = np.random.default_rng(16)
    m = rng.standard_normal(shape)
    a = (m @ np.swapaxes(m, -1, -2) + shape[-1] * np.eye(shape[-1])).astype(dtype)
    a_lower = np.tril(a) + np.triu(np.full_like(a, np.nan), 1)  # only the lower triangle is read
    want = np.linalg.cholesky(a)
    close(dev.cholesky(a), want, dtype, 16)
    close(dev.cholesky(a_lower), want, dtype, 16)


@pytest.mark.parametrize("dtype", FLOATS)
def test_cholesky_not_positive_definite_raises(dev, dtype):
    for a in ([[1.0, 2.0], [2.0, 1.0]], [[0.0, 0.0], [0.0, 1.0]], [[-1.0]], [[4.0, 0], [np.inf, 1]],
              [[[4.0, 0], [0, 1]], [[1.0, 0], [0, -1]]]):
        with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
            dev.cholesky(np.array(a, dtype))
    # a nan is not detected: it spreads, as NumPy (with OpenBLAS) does
    for a in ([[np.nan, 0], [0, 1]], [[4.0, 0], [np.nan, 1]]):
        a = np.array(a, dtype)
        same(dev.cholesky(a), np.linalg.cholesky(a))


@pytest.mark.parametrize("shape", [(5, 5), (3, 6, 4), (2, 4, 6)])
@pytest.mark.parametrize("dtype", FLOATS)
def test_qr_svd_eigh(dev, shape, dtype):
    rng = np.random.default_rng(17)
    a = rng.standard_normal(shape).astype(dtype)
    sym = (a[..., :, :1] * a[..., :1, :] + np.eye(*shape[-2:])).astype(dtype)[..., :1, :1]
    if dev.name == "reference":
        for name, arg in (("qr", a), ("svd", a), ("eigh", sym)):
            with pytest.raises(NotImplementedError,
                               match=f"ReferenceDevice: {name} is not available"):
                getattr(dev, name)(arg)
        return
    tol = 1e-12 if dtype == np.float64 else 2e-5
    q, r = dev.qr(a)
    k = min(shape[-2:])
    assert q.shape == shape[:-1] + (k,) and r.shape == shape[:-2] + (k, shape[-1])
    np.testing.assert_allclose(q @ r, a, atol=tol * 10)
    u, s, vh = dev.svd(a)
    assert u.shape == shape[:-1] + (k,) and s.shape == shape[:-2] + (k,)
    np.testing.assert_allclose((u * s[..., None, :]) @ vh, a, atol=tol * 10)
    sq = a[..., :k, :k]
    sq = sq + np.swapaxes(sq, -1, -2)
    w, v = dev.eigh(np.tril(sq) + np.triu(np.full_like(sq, 7.0), 1))  # the lower triangle
    np.testing.assert_allclose((v * w[..., None, :]) @ np.swapaxes(v, -1, -2), sq,
                               atol=tol * 10 * k)


# ---- scatter-reduce -----------------------------------------------------------------------------
def scatter_data(rng, dtype, count=40, size=9):
    index = rng.integers(0, size, count)
    index[:3] = 4  # a repeated position
    values = tied(rng, (count,), dtype, special=False)
    if np.dtype(dtype).kind == "f":
        values = values + rng.standard_normal(count).astype(dtype)
    initial = tied(rng, (size,), dtype, special=False)
    return index, values, initial


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int32, np.uint8,
                                   np.bool_])
@pytest.mark.parametrize("op,ufunc", [("scatter_max", np.maximum), ("scatter_min", np.minimum)])
def test_scatter_max_min_are_exact(dev, dtype, op, ufunc):
    rng = np.random.default_rng(18)
    index, values, initial = scatter_data(rng, dtype)
    want = initial.copy()
    ufunc.at(want, index, values)
    same(getattr(dev, op)(index, values, 9, initial), want)
    # from the lowest value: each position's maximum alone
    if np.dtype(dtype).kind == "f":
        start = np.full(9, -np.inf if op == "scatter_max" else np.inf, dtype)
        want = start.copy()
        ufunc.at(want, index, values)
        same(getattr(dev, op)(index.reshape(8, 5), values.reshape(8, 5), 9, start), want)
    same(getattr(dev, op)(index[:0], values[:0], 9, initial), initial)


@pytest.mark.parametrize("op,ufunc", [("scatter_max", np.maximum), ("scatter_min", np.minimum)])
def test_scatter_max_min_nan_and_infinities(dev, op, ufunc):
    index = np.array([0, 0, 1, 2, 2, 3, 4])
    values = np.array([1.0, np.nan, 2.0, np.inf, -np.inf, 5.0, -np.inf])
    initial = np.array([0.0, np.nan, -np.inf, np.inf, 3.0])
    want = initial.copy()
    ufunc.at(want, index, values)
    same(getattr(dev, op)(index, values, 5, initial), want)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int32, np.bool_])
def test_scatter_prod(dev, dtype):
    rng = np.random.default_rng(19)
    index, values, initial = scatter_data(rng, dtype)
    if np.dtype(dtype).kind == "f":
        values = rng.uniform(0.5, 2.0, values.shape).astype(dtype)
    want = initial.copy()
    np.multiply.at(want, index, values)
    got = dev.scatter_prod(index, values, 9, initial)
    if np.dtype(dtype).kind == "f":
        exact = initial.astype(np.longdouble)
        np.multiply.at(exact, index, values.astype(np.longdouble))
        assert got.dtype == want.dtype
        assert ulps_from_exact(got, exact) <= product_bound(np.bincount(index).max() + 1)
    else:
        same(got, want)
    special = np.array([np.inf, 0.0, np.nan, -0.0, 2.0])
    idx = np.array([0, 0, 1, 2, 3])
    want = np.ones(4)
    np.multiply.at(want, idx, special)
    same(dev.scatter_prod(idx, special, 4, np.ones(4)), want)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.bool_])
def test_scatter_set_last_write_wins(dev, dtype):
    rng = np.random.default_rng(20)
    index, values, initial = scatter_data(rng, dtype)
    want = initial.copy()
    for i, v in zip(index, values):  # in order: the last write to a position stays
        want[i] = v
    same(dev.scatter_set(index, values, initial), want)
    same(dev.scatter_set(index[:0], values[:0], initial), initial)
    if np.dtype(dtype).kind == "f":
        special = np.array([np.nan, -0.0, np.inf, -np.inf], dtype)
        same(dev.scatter_set(np.array([3, 0, 1, 2]), special, initial[:4]), special[[1, 2, 3, 0]])
