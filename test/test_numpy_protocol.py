"""NumPy's ufuncs and functions called on tensors (the NumPy protocol). Those with a
differentiable meaning are recorded with NumPy's semantics: their values equal NumPy's (float64,
tightly) and their gradients pass gradcheck. Those whose results carry no gradient by nature
compute NumPy's result. Every other one refuses a tensor that requires grad. A walk over NumPy's
public ufuncs and functions checks that no call on such a tensor returns without its gradient.
Runs on every device; the decompositions of np.linalg skip on the reference device, which has
none."""

import inspect
import warnings
import zlib

import numpy as np
import pytest
from helpers import assert_close

import simplegrad as sg

pytestmark = pytest.mark.usefixtures("device")


def require_decompositions():
    """Skip on a device without QR, SVD and eigh kernels (the reference device)."""
    if type(sg.Tensor.device).svd is sg.Device.svd:
        pytest.skip(f"{type(sg.Tensor.device).__name__} has no QR, SVD or eigh kernels (no "
                    "default is written with the primitives)")


# ---- inputs ------------------------------------------------------------------------------------

def uniform(*shapes, low=-2.0, high=2.0):
    return lambda rng: [rng.uniform(low, high, shape) for shape in shapes]


def with_nan(*shapes):
    """Random arrays with a nan in some rows (never a whole row)."""
    def make(rng):
        arrays = [rng.uniform(-2, 2, shape) for shape in shapes]
        for a in arrays:
            a.reshape(-1)[::5] = np.nan
        return arrays
    return make


def conditioned(*shapes):
    """Matrices (..., n, n) far from singular: random plus n times the identity."""
    return lambda rng: [rng.uniform(-1, 1, s) + s[-1] * np.eye(s[-1]) for s in shapes]


def spd(*shapes):
    """Symmetric positive-definite matrices (..., n, n)."""
    def make(rng):
        out = []
        for s in shapes:
            m = rng.uniform(-1, 1, s)
            out.append(m @ np.swapaxes(m, -1, -2) + s[-1] * np.eye(s[-1]))
        return out
    return make


def ascending(*sizes, low=-2.0, high=2.0):
    """Sorted vectors of distinct values (the sample points of np.interp)."""
    return lambda rng: [np.sort(rng.uniform(low, high, n)) for n in sizes]


def fixed(*arrays):
    return lambda rng: [np.array(a, dtype=np.float64) for a in arrays]


def case(func, *shapes, call=None, make=None, low=-2.0, high=2.0, grad=True,
         decomposition=False, id=None):
    """One recorded NumPy call: call(*inputs) (default func(*inputs)) on arrays and on tensors
    made from `make` (default: uniform arrays of `shapes`)."""
    make = make or uniform(*shapes, low=low, high=high)
    return pytest.param(func, call or func, make, grad, decomposition, id=id or name_of(func))


def name_of(func):
    """NumPy's name of a function or ufunc method, as linalg.norm or add.reduce."""
    if hasattr(func, "__self__") and isinstance(func.__self__, np.ufunc):
        return f"{func.__self__.__name__}.{func.__name__}"
    module = getattr(func, "__module__", None) or "numpy"
    return module.replace("numpy", "", 1).lstrip(".") + "." * (module != "numpy") + func.__name__


A, B, C = (3, 4), (4, 2), (4,)
INTS = np.array([[0, 2, 1, 3], [1, 1, 0, 2], [3, 0, 2, 1]])
MASK = INTS > 1

UFUNC_CASES = [
    *(case(f, A) for f in (np.negative, np.positive, np.conjugate, np.absolute, np.fabs,
                           np.square, np.sin, np.cos, np.arctan, np.sinh, np.cosh, np.tanh,
                           np.arcsinh, np.exp, np.exp2, np.expm1, np.cbrt, np.degrees,
                           np.rad2deg, np.radians, np.deg2rad, np.floor, np.ceil, np.trunc,
                           np.rint, np.sign, np.modf, np.frexp)),
    *(case(f, A, grad=False) for f in (np.signbit, np.isnan, np.isinf, np.isfinite,
                                       np.logical_not)),
    case(np.tan, A, low=-1.2, high=1.2),
    *(case(f, A, low=0.5, high=2.0) for f in (np.reciprocal, np.sqrt, np.log, np.log2,
                                              np.log10, np.log1p)),
    *(case(f, A, low=-0.9, high=0.9) for f in (np.arcsin, np.arccos, np.arctanh)),
    case(np.arccosh, A, low=1.1, high=3.0),
    *(case(f, A, A) for f in (np.add, np.subtract, np.multiply, np.divide, np.logaddexp,
                              np.logaddexp2, np.arctan2, np.hypot, np.maximum, np.minimum,
                              np.fmax, np.fmin, np.fmod, np.remainder, np.copysign,
                              np.heaviside)),
    case(np.heaviside, call=lambda x: np.heaviside(np.where(MASK, x, 0.0), 0.5), make=uniform(A),
         id="heaviside-at-0"),
    *(case(f, A, A, low=0.5, high=2.0) for f in (np.power, np.float_power)),
    case(np.power, call=lambda x: np.power(x, 3), make=uniform(A), id="power-int"),
    *(case(f, A, A, grad=False) for f in (np.floor_divide, np.divmod, np.equal, np.not_equal,
                                          np.less, np.less_equal, np.greater, np.greater_equal,
                                          np.logical_and, np.logical_or, np.logical_xor)),
    case(np.ldexp, call=lambda x: np.ldexp(x, INTS - 1), make=uniform(A)),
    case(np.matmul, A, B),
    case(np.matmul, C, B, id="matmul-vector"),
    case(np.vecdot, A, A),
    case(np.matvec, A, C),
    case(np.vecmat, C, B),
    case(np.add, call=lambda x: np.add(x, 2, dtype=np.float64), make=uniform(A),
         id="add-dtype"),
]

UFUNC_METHOD_CASES = [
    case(np.add.reduce, A),
    case(np.add.reduce, call=lambda x: np.add.reduce(x, axis=None, keepdims=True, initial=2.0),
         make=uniform(A), id="add.reduce-initial"),
    case(np.multiply.reduce, call=lambda x: np.multiply.reduce(x, 1), make=uniform(A)),
    case(np.maximum.reduce, A),
    case(np.minimum.reduce, call=lambda x: np.minimum.reduce(x, axis=1, initial=-0.5),
         make=uniform(A)),
    case(np.logaddexp.reduce, A),
    case(np.logaddexp2.reduce, call=lambda x: np.logaddexp2.reduce(x, axis=(0, 1)),
         make=uniform(A)),
    *(case(f.reduce, A, grad=False) for f in (np.logical_and, np.logical_or)),
    case(np.add.accumulate, call=lambda x: np.add.accumulate(x, 1), make=uniform(A)),
    *(case(f.accumulate, A) for f in (np.multiply, np.maximum, np.minimum, np.logaddexp,
                                      np.logaddexp2)),
    case(np.add.outer, (3,), (2, 2)),
    case(np.multiply.outer, (3,), (2,)),
    case(np.arctan2.outer, (2, 2), (3,)),
]


def sym(a):
    """The symmetric part of a: the functions that read one triangle get a gradient that
    finite differences can check."""
    return (a + np.swapaxes(a, -1, -2)) / 2


FUNCTION_CASES = [
    # reductions
    case(np.sum, A),
    case(np.sum, call=lambda x: np.sum(x, axis=(0, 1), keepdims=True, initial=1.5),
         make=uniform(A), id="sum-initial"),
    case(np.prod, call=lambda x: np.prod(x, axis=1), make=uniform(A)),
    case(np.max, call=lambda x: np.max(x, 0), make=uniform(A)),
    case(np.amax, call=lambda x: np.amax(x, axis=1, keepdims=True), make=uniform(A)),
    case(np.min, A),
    case(np.amin, call=lambda x: np.amin(x, axis=1, initial=-0.5), make=uniform(A)),
    case(np.mean, call=lambda x: np.mean(x, axis=0), make=uniform(A)),
    case(np.var, A),
    case(np.var, call=lambda x: np.var(x, axis=1, ddof=1, keepdims=True), make=uniform(A),
         id="var-ddof"),
    case(np.var, call=lambda x, m: np.var(x, axis=1, keepdims=True, mean=m),
         make=uniform(A, (3, 1)), id="var-mean"),
    case(np.std, call=lambda x: np.std(x, axis=0, correction=1), make=uniform(A)),
    case(np.ptp, call=lambda x: np.ptp(x, axis=1), make=uniform(A)),
    case(np.all, A, grad=False),
    case(np.any, call=lambda x: np.any(x > 1, axis=0), make=uniform(A), grad=False),
    case(np.average, A),
    case(np.average, call=lambda x, w: np.average(x, axis=1, weights=w, returned=True),
         make=uniform(A, C, low=0.5), id="average-weights"),
    case(np.average, call=lambda x, w: np.average(x, weights=w, keepdims=True),
         make=uniform(A, A, low=0.5), id="average-weights-all"),
    case(np.median, A),
    case(np.median, call=lambda x: np.median(x, axis=0, keepdims=True), make=uniform(A),
         id="median-odd"),
    case(np.median, call=lambda x: np.median(x, axis=(0, 2)), make=uniform((3, 2, 2)),
         id="median-axes"),
    case(np.quantile, call=lambda x: np.quantile(x, 0.3), make=uniform(A)),
    *(case(np.quantile, call=lambda x, m=m: np.quantile(x, [0.1, 0.5, 0.95], axis=1, method=m),
           make=uniform(A), id=f"quantile-{m}")
      for m in ("linear", "lower", "higher", "nearest", "midpoint")),
    case(np.quantile, call=lambda x, q: np.quantile(x, q, axis=0), make=uniform(A, (2,), low=0.1,
                                                                               high=0.9),
         id="quantile-q"),
    case(np.percentile, call=lambda x: np.percentile(x, 37, axis=0, keepdims=True),
         make=uniform(A)),
    case(np.nansum, make=with_nan(A)),
    case(np.nanprod, call=lambda x: np.nanprod(x, axis=1), make=with_nan(A)),
    case(np.nanmax, call=lambda x: np.nanmax(x, axis=1), make=with_nan(A)),
    case(np.nanmin, make=with_nan(A)),
    case(np.nanmean, call=lambda x: np.nanmean(x, axis=0), make=with_nan(A)),
    case(np.nanvar, call=lambda x: np.nanvar(x, axis=1, ddof=1), make=with_nan(A)),
    case(np.nanstd, make=with_nan(A)),
    case(np.nanmedian, call=lambda x: np.nanmedian(x, axis=1), make=with_nan(A)),
    case(np.nanmedian, make=with_nan((3, 5)), id="nanmedian-all"),
    case(np.nanquantile, call=lambda x: np.nanquantile(x, [0.2, 0.7], axis=1),
         make=with_nan(A)),
    case(np.nanpercentile, call=lambda x: np.nanpercentile(x, 40), make=with_nan(A)),
    # sorting and running reductions
    case(np.sort, A),
    case(np.sort, call=lambda x: np.sort(x, axis=None), make=uniform(A), id="sort-flat"),
    case(np.cumsum, A),
    case(np.cumsum, call=lambda x: np.cumsum(x, axis=1), make=uniform(A), id="cumsum-axis"),
    case(np.cumprod, call=lambda x: np.cumprod(x, axis=0), make=uniform(A)),
    case(np.nancumsum, call=lambda x: np.nancumsum(x, axis=1), make=with_nan(A)),
    case(np.nancumprod, make=with_nan(A)),
    case(np.cumulative_sum, call=lambda x: np.cumulative_sum(x, axis=1, include_initial=True),
         make=uniform(A)),
    case(np.cumulative_prod, C),
    case(np.diff, call=lambda x: np.diff(x, n=2, axis=0), make=uniform(A)),
    case(np.diff, call=lambda x, y: np.diff(x, prepend=0.5, append=y), make=uniform(A, (3, 1)),
         id="diff-ends"),
    case(np.ediff1d, call=lambda x, y: np.ediff1d(x, to_begin=[1.0, 2.0], to_end=y),
         make=uniform(A, (2,))),
    case(np.gradient, A),
    case(np.gradient, call=lambda x: np.gradient(x, 0.5, axis=1, edge_order=2),
         make=uniform((3, 5)), id="gradient-edge2"),
    case(np.gradient, call=lambda f, x: np.gradient(f, x), make=lambda rng: [
        rng.uniform(-2, 2, 6), np.cumsum(rng.uniform(0.5, 1.5, 6))], id="gradient-points"),
    case(np.gradient, call=lambda f, x: np.gradient(f, x, edge_order=2, axis=0),
         make=lambda rng: [rng.uniform(-2, 2, (6, 2)), np.cumsum(rng.uniform(0.5, 1.5, 6))],
         id="gradient-points-edge2"),
    case(np.trapezoid, call=lambda y: np.trapezoid(y, axis=0, dx=0.5), make=uniform(A)),
    case(np.trapezoid, call=lambda y, x: np.trapezoid(y, x), make=uniform(A, C),
         id="trapezoid-x"),
    # products
    case(np.dot, A, B),
    case(np.dot, C, C, id="dot-vectors"),
    case(np.dot, (2, 3, 4), (2, 4, 3), id="dot-nd"),
    case(np.dot, (2, 3, 4), C, id="dot-nd-vector"),
    case(np.dot, call=lambda x: np.dot(x, 2.5), make=uniform(A), id="dot-scalar"),
    case(np.vdot, A, (2, 6)),
    case(np.inner, (2, 3), (4, 3)),
    case(np.outer, (2, 3), C),
    case(np.tensordot, call=lambda a, b: np.tensordot(a, b, axes=([1, 0], [0, 1])),
         make=uniform(A, (4, 3, 2))),
    case(np.tensordot, call=lambda a, b: np.tensordot(a, b, 1), make=uniform(A, B),
         id="tensordot-1"),
    case(np.kron, (2, 3), (3, 2)),
    case(np.cross, (4, 3), (4, 3)),
    case(np.cross, call=lambda a, b: np.cross(a, b, axisa=0, axisb=0, axisc=0),
         make=uniform((3, 2), (3, 1)), id="cross-axes"),
    case(np.einsum, call=lambda a, b: np.einsum("ij,jk->ik", a, b), make=uniform(A, B)),
    case(np.einsum, call=lambda a, b: np.einsum(a, [0, 1], b, [1, 2], [0, 2]),
         make=uniform(A, B), id="einsum-sublists"),
    case(np.einsum, call=lambda a: np.einsum("ii->i", a), make=uniform((3, 3)),
         id="einsum-diagonal"),
    case(np.trace, call=lambda a: np.trace(a, offset=1), make=uniform(C * 2)),
    case(np.trace, call=lambda a: np.trace(a, axis1=0, axis2=2), make=uniform((3, 2, 3)),
         id="trace-axes"),
    case(np.diagonal, call=lambda a: np.diagonal(a, 1), make=uniform(A)),
    case(np.diag, call=lambda v: np.diag(v, k=1), make=uniform(C)),
    case(np.diag, A, id="diag-matrix"),
    case(np.diagflat, (2, 2)),
    case(np.tril, call=lambda a: np.tril(a, -1), make=uniform(A)),
    case(np.triu, C, id="triu-vector"),
    # joining and splitting
    case(np.concatenate, call=lambda x, y: np.concatenate([x, y], axis=1),
         make=uniform(A, (3, 2))),
    case(np.concatenate, call=lambda x, y: np.concatenate((x, y), axis=None),
         make=uniform(A, (5,)), id="concatenate-flat"),
    case(np.concat, call=lambda x, y: np.concat([x, y]), make=uniform(A, (1, 4))),
    case(np.stack, call=lambda x, y: np.stack([x, y], axis=-1), make=uniform(A, A)),
    case(np.vstack, call=lambda x, y: np.vstack([x, y]), make=uniform(A, C)),
    case(np.hstack, call=lambda x, y: np.hstack((x, y)), make=uniform(A, (3, 1))),
    case(np.dstack, call=lambda x, y: np.dstack([x, y]), make=uniform(A, A)),
    case(np.column_stack, call=lambda x, y: np.column_stack([x, y]), make=uniform((3,), A)),
    case(np.append, A, (2,)),
    case(np.append, call=lambda x, y: np.append(x, y, axis=0), make=uniform(A, (1, 4)),
         id="append-axis"),
    case(np.block, call=lambda x, y: np.block([[x, y], [y, x]]), make=uniform((2, 2), (2, 2))),
    case(np.split, call=lambda x: np.split(x, 2, axis=1), make=uniform(A)),
    case(np.split, call=lambda x: np.split(x, [1, -1], axis=1), make=uniform(A),
         id="split-indices"),
    case(np.array_split, call=lambda x: np.array_split(x, 3, axis=1), make=uniform(A)),
    case(np.hsplit, call=lambda x: np.hsplit(x, 2), make=uniform(A)),
    case(np.vsplit, call=lambda x: np.vsplit(x, [1]), make=uniform(A)),
    case(np.dsplit, call=lambda x: np.dsplit(x, 2), make=uniform((2, 1, 4))),
    case(np.unstack, call=lambda x: np.unstack(x, axis=1), make=uniform(A)),
    # movement
    case(np.reshape, call=lambda x: np.reshape(x, (4, 3)), make=uniform(A)),
    case(np.reshape, call=lambda x: np.reshape(x, (2, -1), order="F"), make=uniform(A),
         id="reshape-F"),
    case(np.ravel, A),
    case(np.ravel, call=lambda x: np.ravel(x, order="F"), make=uniform(A), id="ravel-F"),
    case(np.squeeze, call=lambda x: np.squeeze(x, axis=2), make=uniform((3, 1, 1, 4))),
    case(np.expand_dims, call=lambda x: np.expand_dims(x, (0, 3)), make=uniform(A)),
    case(np.moveaxis, call=lambda x: np.moveaxis(x, 0, -1), make=uniform((2, 3, 4))),
    case(np.swapaxes, call=lambda x: np.swapaxes(x, 0, 2), make=uniform((2, 3, 4))),
    case(np.rollaxis, call=lambda x: np.rollaxis(x, 2), make=uniform((2, 3, 4))),
    case(np.transpose, call=lambda x: np.transpose(x, (1, 2, 0)), make=uniform((2, 3, 4))),
    case(np.permute_dims, (2, 3, 4)),
    case(np.matrix_transpose, (2, 3, 4)),
    case(np.broadcast_to, call=lambda x: np.broadcast_to(x, A), make=uniform(C)),
    case(np.broadcast_arrays, A, (3, 1)),
    case(np.atleast_1d, (), C),
    case(np.atleast_2d, C),
    case(np.atleast_3d, A, C),
    case(np.copy, A),
    case(np.astype, call=lambda x: np.astype(x, np.float64), make=uniform(A)),
    case(np.flip, A),
    case(np.flip, call=lambda x: np.flip(x, axis=1), make=uniform(A), id="flip-axis"),
    case(np.fliplr, A),
    case(np.flipud, A),
    case(np.roll, call=lambda x: np.roll(x, 5), make=uniform(A)),
    case(np.roll, call=lambda x: np.roll(x, (1, 2), axis=(0, 0)), make=uniform(A),
         id="roll-axes"),
    case(np.rot90, call=lambda x: np.rot90(x, 3), make=uniform(A)),
    case(np.tile, call=lambda x: np.tile(x, (2, 1, 2)), make=uniform(A)),
    case(np.repeat, call=lambda x: np.repeat(x, [1, 0, 2], axis=0), make=uniform(A)),
    case(np.repeat, call=lambda x: np.repeat(x, 2), make=uniform(A), id="repeat-flat"),
    case(np.resize, call=lambda x: np.resize(x, (5, 3)), make=uniform(A)),
    case(np.pad, call=lambda x: np.pad(x, ((1, 2), (0, 1)),
                                       constant_values=((1.5, 2.5), (3.5, 4.5))),
         make=uniform(A)),
    *(case(np.pad, call=lambda x, m=m: np.pad(x, 2, mode=m), make=uniform(A), id=f"pad-{m}")
      for m in ("edge", "reflect", "symmetric", "wrap")),
    case(np.take, call=lambda x: np.take(x, [[0, 5], [11, 3]]), make=uniform(A)),
    case(np.take, call=lambda x: np.take(x, [5, -1], axis=1, mode="wrap"), make=uniform(A),
         id="take-wrap"),
    case(np.take_along_axis, call=lambda x: np.take_along_axis(x, INTS, axis=1),
         make=uniform(A)),
    case(np.choose, call=lambda x, y: np.choose(INTS % 2, [x, y]), make=uniform(A, C)),
    case(np.compress, call=lambda x: np.compress([True, False, True], x, axis=0),
         make=uniform(A)),
    case(np.extract, call=lambda x: np.extract(MASK, x), make=uniform(A)),
    case(np.insert, call=lambda x, v: np.insert(x, 1, v, axis=1), make=uniform(A, (3,))),
    case(np.insert, call=lambda x: np.insert(x, [1, 3], [7.0, 8.0]), make=uniform(C),
         id="insert-constants"),
    case(np.delete, call=lambda x: np.delete(x, [0, 2], axis=1), make=uniform(A)),
    case(np.trim_zeros, make=fixed([0.0, 0.0, 1.5, 0.0, -2.0, 0.0]), grad=False),
    case(np.trim_zeros, call=lambda x: np.trim_zeros(x, "b"),
         make=lambda rng: [np.pad(rng.uniform(1, 2, (2, 3)), 1)], grad=False,
         id="trim_zeros-back"),
    # selection and elementwise
    case(np.where, call=lambda x, y: np.where(MASK, x, y), make=uniform(A, C)),
    case(np.where, call=lambda x: np.where(MASK, x, 0.5), make=uniform(A), id="where-scalar"),
    case(np.select, call=lambda x, y: np.select([MASK, ~MASK & (INTS > 0)], [x, y], 0.25),
         make=uniform(A, A)),
    case(np.piecewise, call=lambda x: np.piecewise(x, [x < 0, x > 1], [
        lambda v: v ** 2, lambda v: np.sin(v), 0.5]), make=uniform(A)),
    case(np.clip, call=lambda x: np.clip(x, -1, 1), make=uniform(A)),
    case(np.clip, call=lambda x, lo: np.clip(x, lo, 1.5), make=uniform(A, C), id="clip-arrays"),
    case(np.clip, call=lambda x: np.clip(x, min=-0.5), make=uniform(A), id="clip-min"),
    case(np.round, call=lambda x: np.round(x, 2), make=uniform(A)),
    case(np.around, call=lambda x: np.around(x * 50, -1), make=uniform(A)),
    case(np.fix, A),
    case(np.sinc, A),
    case(np.sinc, make=fixed([0.0, 0.5, -1.5]), id="sinc-0"),
    case(np.nan_to_num, make=fixed([np.nan, np.inf, -np.inf, 1.5])),
    case(np.nan_to_num, call=lambda x: np.nan_to_num(x, nan=2.0, posinf=9.0),
         make=fixed([np.nan, np.inf, -np.inf, 1.5]), id="nan_to_num-values"),
    case(np.real, A),
    case(np.real_if_close, A),
    case(np.imag, A),
    case(np.angle, call=lambda x: np.angle(x, deg=True), make=uniform(A)),
    case(np.interp, call=lambda x, xp, fp: np.interp(x, xp, fp),
         make=lambda rng: [rng.uniform(-2.5, 2.5, A), np.sort(rng.uniform(-2, 2, 6)),
                           rng.uniform(-2, 2, 6)]),
    case(np.interp, call=lambda fp: np.interp([-2, -1, -0.5, 0, 0.3, 1, 2], [-1, 0, 1], fp,
                                              left=-5, right=5), make=uniform((3,)),
         id="interp-ends"),
    case(np.interp, call=lambda x, fp: np.interp(x, [0.5, 1.5, 2.5], fp, period=3.0),
         make=lambda rng: [rng.uniform(-4, 4, 7), rng.uniform(-2, 2, 3)], id="interp-period"),
    # polynomials, convolutions, statistics, grids
    case(np.polyval, (4,), A),
    case(np.polyadd, (3,), (5,)),
    case(np.polysub, (5,), (2,)),
    case(np.polymul, (3,), (4,)),
    case(np.polydiv, call=lambda u, v: np.polydiv(u, v), make=lambda rng: [
        rng.uniform(-2, 2, 5), rng.uniform(0.5, 2, 3)]),
    case(np.polyder, call=lambda p: np.polyder(p, 2), make=uniform((5,))),
    case(np.polyint, call=lambda p, k: np.polyint(p, 2, k=k), make=uniform((4,), (2,))),
    case(np.poly, (3,)),
    case(np.vander, call=lambda x: np.vander(x, 4), make=uniform(C)),
    case(np.vander, call=lambda x: np.vander(x, increasing=True), make=uniform((3,)),
         id="vander-increasing"),
    *(case(np.convolve, (5,), (3,), call=lambda a, v, m=m: np.convolve(a, v, m),
           id=f"convolve-{m}") for m in ("full", "same", "valid")),
    case(np.convolve, (2,), (5,), id="convolve-long-v"),
    *(case(np.correlate, (5,), (3,), call=lambda a, v, m=m: np.correlate(a, v, m),
           id=f"correlate-{m}") for m in ("full", "same", "valid")),
    case(np.correlate, call=lambda a, v: np.correlate(a, v, "full"), make=uniform((2,), (4,)),
         id="correlate-long-v"),
    case(np.cov, (3, 5)),
    case(np.cov, call=lambda x, y: np.cov(x, y, rowvar=False, bias=True),
         make=uniform((5, 2), (5,)), id="cov-columns"),
    case(np.cov, call=lambda x, w: np.cov(x, fweights=[1, 2, 1, 3, 1], aweights=w),
         make=uniform((2, 5), (5,), low=0.5), id="cov-weights"),
    case(np.corrcoef, (3, 5)),
    case(np.corrcoef, (5,), (5,), id="corrcoef-pair"),
    case(np.unwrap, call=lambda p: np.unwrap(p * 3), make=uniform((3, 6))),
    case(np.unwrap, call=lambda p: np.unwrap(p, axis=0, period=2.0), make=uniform((6, 2)),
         id="unwrap-period"),
    case(np.linspace, call=lambda a, b: np.linspace(a, b, 5), make=uniform((), ())),
    case(np.linspace, call=lambda a, b: np.linspace(a, b, 4, endpoint=False, retstep=True,
                                                    axis=1), make=uniform((3,), (3,)),
         id="linspace-arrays"),
    case(np.logspace, call=lambda a, b: np.logspace(a, b, 4, base=2.0), make=uniform((), ())),
    case(np.logspace, call=lambda a, b, base: np.logspace(a, b, 3, base=base, axis=1),
         make=uniform((2,), (2,), (2,), low=0.5), id="logspace-bases"),
    case(np.geomspace, call=lambda a, b: np.geomspace(a, b, 4), make=uniform((), (), low=0.5)),
    case(np.geomspace, call=lambda a, b: np.geomspace(-a, -b, 3, axis=1),
         make=uniform((2,), (2,), low=0.5), id="geomspace-negative"),
    case(np.meshgrid, (3,), (2,)),
    case(np.meshgrid, call=lambda x, y, z: np.meshgrid(x, y, z, indexing="ij", sparse=True),
         make=uniform((3,), (2,), (2,)), id="meshgrid-ij-sparse"),
    case(np.bincount, call=lambda w: np.bincount(INTS.reshape(-1), weights=w, minlength=6),
         make=uniform((12,))),
    # np.linalg
    case(np.linalg.det, make=conditioned((2, 3, 3))),
    case(np.linalg.slogdet, make=conditioned((3, 3))),
    case(np.linalg.inv, make=conditioned((3, 3))),
    case(np.linalg.solve, make=lambda rng: conditioned((3, 3))(rng) + [rng.uniform(-1, 1, 3)]),
    case(np.linalg.solve, make=lambda rng: conditioned((2, 3, 3))(rng) + [
        rng.uniform(-1, 1, (2, 3, 2))], id="linalg.solve-matrices"),
    case(np.linalg.solve, make=lambda rng: conditioned((3, 3, 3))(rng) + [
        rng.uniform(-1, 1, (3, 3))], id="linalg.solve-2d-b"),
    case(np.linalg.cholesky, call=lambda a: np.linalg.cholesky(sym(a)), make=spd((3, 3))),
    case(np.linalg.cholesky, call=lambda a: np.linalg.cholesky(sym(a), upper=True),
         make=spd((3, 3)), id="linalg.cholesky-upper"),
    case(np.linalg.qr, (4, 3), decomposition=True),
    case(np.linalg.qr, call=lambda a: np.linalg.qr(a, mode="r"), make=uniform((4, 3)),
         decomposition=True, id="linalg.qr-r"),
    case(np.linalg.svd, (3, 3), decomposition=True),
    case(np.linalg.svd, call=lambda a: np.linalg.svd(a, full_matrices=False),
         make=uniform((4, 3)), decomposition=True, id="linalg.svd-reduced"),
    case(np.linalg.svd, call=lambda a: np.linalg.svd(a, compute_uv=False), make=uniform(A),
         decomposition=True, id="linalg.svd-values"),
    case(np.linalg.svdvals, (2, 3, 4), decomposition=True),
    case(np.linalg.eigh, call=lambda a: np.linalg.eigh(sym(a)), make=uniform((3, 3)),
         decomposition=True),
    case(np.linalg.eigvalsh, call=lambda a: np.linalg.eigvalsh(sym(a), UPLO="U"),
         make=uniform((3, 3)), decomposition=True),
    case(np.linalg.pinv, (4, 3), decomposition=True),
    case(np.linalg.pinv, call=lambda a: np.linalg.pinv(sym(a), hermitian=True),
         make=spd((3, 3)), decomposition=True, id="linalg.pinv-hermitian"),
    case(np.linalg.norm, A),
    *(case(np.linalg.norm, call=lambda x, o=o: np.linalg.norm(x, o, axis=1), make=uniform(A),
           id=f"linalg.norm-vector-{o}") for o in (1, 3, np.inf, -np.inf, 0, -1.5)),
    *(case(np.linalg.norm, call=lambda x, o=o: np.linalg.norm(x, o), make=uniform(A),
           id=f"linalg.norm-matrix-{o}") for o in ("fro", 1, -1, np.inf, -np.inf)),
    *(case(np.linalg.norm, call=lambda x, o=o: np.linalg.norm(x, o, keepdims=True),
           make=uniform(A), decomposition=True, id=f"linalg.norm-matrix-{o}")
      for o in (2, -2, "nuc")),
    case(np.linalg.norm, call=lambda x: np.linalg.norm(x, axis=(2, 0)), make=uniform((2, 3, 2)),
         id="linalg.norm-axes"),
    case(np.linalg.matrix_norm, call=lambda x: np.linalg.matrix_norm(x, ord=1, keepdims=True),
         make=uniform((2, 3, 4))),
    case(np.linalg.vector_norm, call=lambda x: np.linalg.vector_norm(x, axis=(0, 2), ord=3),
         make=uniform((2, 3, 4))),
    *(case(np.linalg.matrix_power, call=lambda a, n=n: np.linalg.matrix_power(a, n),
           make=conditioned((3, 3)), id=f"linalg.matrix_power-{n}") for n in (0, 3, 5, -2)),
    case(np.linalg.multi_dot, call=lambda a, b, c: np.linalg.multi_dot([a, b, c]),
         make=uniform((3,), (3, 4), (4, 2))),
    case(np.linalg.multi_dot, call=lambda *m: np.linalg.multi_dot(m),
         make=uniform((2, 3), (3, 4), (4, 5), (5,)), id="linalg.multi_dot-chain"),
    case(np.linalg.cond, make=conditioned((3, 3)), decomposition=True),
    case(np.linalg.cond, call=lambda a: np.linalg.cond(a, "fro"), make=conditioned((3, 3)),
         id="linalg.cond-fro"),
    case(np.linalg.tensorinv, call=lambda a: np.linalg.tensorinv(a, ind=1),
         make=lambda rng: [(rng.uniform(-1, 1, (4, 4)) + 4 * np.eye(4)).reshape(4, 2, 2)]),
    case(np.linalg.tensorsolve, make=lambda rng: [
        (rng.uniform(-1, 1, (6, 6)) + 6 * np.eye(6)).reshape(2, 3, 6), rng.uniform(-1, 1, (2, 3))]),
    case(np.linalg.outer, (3,), (2,)),
    case(np.linalg.cross, (2, 3), (2, 3)),
    case(np.linalg.tensordot, A, B, call=lambda a, b: np.linalg.tensordot(a, b, axes=1)),
    case(np.linalg.vecdot, call=lambda a, b: np.linalg.vecdot(a, b, axis=0),
         make=uniform(A, (3, 1))),
    case(np.linalg.matmul, A, B),
    case(np.linalg.matrix_transpose, (2, 3, 4)),
    case(np.linalg.trace, call=lambda a: np.linalg.trace(a, offset=-1), make=uniform((2, 3, 3))),
    case(np.linalg.diagonal, (2, 3, 4)),
    # np.fft
    case(np.fft.fftshift, (3, 5)),
    case(np.fft.ifftshift, call=lambda x: np.fft.ifftshift(x, axes=1), make=uniform((3, 5))),
]
CASES = UFUNC_CASES + UFUNC_METHOD_CASES + FUNCTION_CASES


def leaves(out):
    """The arrays of a result, through tuples and lists."""
    if isinstance(out, (tuple, list)):
        return [leaf for o in out for leaf in leaves(o)]
    return [out]


def floating(out):
    return tuple(o for o in leaves(out) if np.dtype(o.dtype).kind == "f")


@pytest.mark.parametrize("func, call, make, grad, decomposition", CASES)
def test_recorded_values_and_gradients(func, call, make, grad, decomposition, request):
    """Values equal NumPy's, every float result is recorded, and gradients pass gradcheck."""
    if decomposition:
        require_decompositions()
    rng = np.random.default_rng(zlib.crc32(request.node.callspec.id.encode()))
    arrays = make(rng)
    expected = call(*(a.copy() for a in arrays))
    tensors = [sg.Tensor(a.copy(), requires_grad=True) for a in arrays]
    out = call(*tensors)
    assert getattr(out, "_fields", None) == getattr(expected, "_fields", None)
    outs, refs = leaves(out), leaves(expected)
    assert len(outs) == len(refs)
    for i, (o, r) in enumerate(zip(outs, refs)):
        r = np.asarray(r)
        assert isinstance(o, sg.Tensor), f"result {i}: {type(o).__name__}, not a Tensor"
        assert o.dtype == r.dtype, f"result {i}: dtype {o.dtype}, NumPy's is {r.dtype}"
        if r.dtype.kind == "f":
            assert o.requires_grad, f"result {i} is not recorded"
            assert_close(o, r, what=f"result {i}")
        else:
            np.testing.assert_array_equal(o.numpy(), r, err_msg=f"result {i}")
    if grad and floating(out):
        sg.gradcheck(lambda *xs: floating(call(*xs)), tensors)


@pytest.mark.parametrize("func, call, make, grad, decomposition", CASES)
def test_recorded_dtypes_in_float32(func, call, make, grad, decomposition, request):
    """In float32 (and without requires_grad), results are tensors with NumPy's dtypes."""
    if decomposition:
        require_decompositions()
    rng = np.random.default_rng(zlib.crc32(request.node.callspec.id.encode()))
    arrays = [a.astype(np.float32) for a in make(rng)]
    expected = leaves(call(*(a.copy() for a in arrays)))
    out = leaves(call(*(sg.Tensor(a.copy()) for a in arrays)))
    for i, (o, r) in enumerate(zip(out, expected)):
        r = np.asarray(r)
        assert isinstance(o, sg.Tensor) and o.dtype == r.dtype, f"result {i}"
        np.testing.assert_allclose(o.numpy(), r, rtol=2e-4, atol=2e-4, err_msg=f"result {i}")


def test_every_recorded_entry_has_a_case():
    """Each ufunc with a float loop, each function and each ufunc method that is recorded has
    a case above (the ufuncs of integers only are in test_integer_tensors_give_numpys_dtypes)."""
    covered = {func for func, *_ in (c.values for c in CASES)}
    ufuncs = {f for f in sg._UFUNCS if any(t.startswith("f") for t in f.types)}
    missing = [getattr(f, "__name__", f) for f in (ufuncs | set(sg._FUNCTIONS)) - covered]
    methods = {getattr(f, method) for method, table in (("reduce", sg._UFUNC_REDUCTIONS),
                                                       ("accumulate", sg._UFUNC_SCANS))
               for f in table}
    missing += [str(m) for m in methods - covered]
    assert not missing, f"recorded without a test case: {sorted(missing)}"


# ---- the walk over NumPy's public ufuncs and functions -------------------------------------------

# what simplegrad cannot record, and so refuses for a tensor that requires grad
REFUSED = set("""
    np.spacing np.nextafter
    np.apply_along_axis np.apply_over_axes np.partition np.i0 np.sort_complex
    np.polyfit np.roots np.busday_count np.busday_offset np.is_busday np.datetime_as_string
    np.copyto np.place np.put np.putmask np.fill_diagonal np.put_along_axis
    np.linalg.eig np.linalg.eigvals np.linalg.lstsq
    np.fft.fft np.fft.ifft np.fft.fft2 np.fft.ifft2 np.fft.fftn np.fft.ifftn np.fft.rfft
    np.fft.irfft np.fft.rfft2 np.fft.irfft2 np.fft.rfftn np.fft.irfftn np.fft.hfft np.fft.ihfft
""".split())


def np_name(func):
    module = getattr(func, "__module__", None) or "numpy"
    return module.replace("numpy", "np", 1) + "." + func.__name__


def public_ufuncs():
    return sorted({f for f in vars(np).values() if isinstance(f, np.ufunc)}, key=np_name)


def public_functions():
    """Every public function of np, np.linalg and np.fft that NumPy dispatches to
    __array_function__."""
    found = {}
    for module in (np, np.linalg, np.fft):
        for name, f in vars(module).items():
            if not name.startswith("_") and type(f).__name__ == "_ArrayFunctionDispatcher":
                found[id(f)] = f
    return sorted(found.values(), key=np_name)


def test_every_ufunc_and_function_is_recorded_or_refused():
    tables = {"_UFUNCS": sg._UFUNCS, "_FUNCTIONS": sg._FUNCTIONS,
              "_NO_GRADIENT": sg._NO_GRADIENT}
    names = set()
    for f in public_ufuncs() + public_functions():
        names.add(np_name(f))
        places = [t for t, table in tables.items() if f in table]
        places += ["REFUSED"] if np_name(f) in REFUSED else []
        assert len(places) == 1, f"{np_name(f)} is in {places or 'no table'}"
    assert not REFUSED - names, f"not public NumPy functions: {sorted(REFUSED - names)}"


def walk_arguments():
    """Argument patterns that a function may accept or reject: tensors that require grad."""
    t = sg.Tensor(np.array([[3.0, 1.0, 0.5], [1.0, 2.0, 0.2], [0.5, 0.2, 1.5]]),
                  requires_grad=True)
    v = sg.Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    return [((t,), {}), ((v,), {}), ((t, t), {}), ((v, v), {}), ((t, 2), {}), ((v, 1), {}),
            (([t, t],), {}), ((t,), {"axis": 0}), ((t, v, v), {})]


def ufunc_calls(f):
    t, v = walk_arguments()[0][0][0], walk_arguments()[1][0][0]
    calls = [(f, (t,) * f.nin, {})]
    if f.nin == 2:
        calls += [(f, (t, 2), {}), (f.reduce, (t,), {}), (f.accumulate, (t,), {}),
                  (f.outer, (v, v), {}), (f.at, (t, [0], 1.0), {}),
                  (f.reduceat, (t, [0, 1]), {})]
    else:
        calls += [(f.at, (t, [0]), {})]
    return calls


def on_arrays(obj):
    """The arguments with tensors replaced by their (detached) arrays, for NumPy."""
    if isinstance(obj, sg.Tensor):
        return obj.detach().numpy().copy()
    if isinstance(obj, (list, tuple)):
        return type(obj)(on_arrays(o) for o in obj)
    if isinstance(obj, dict):
        return {k: on_arrays(o) for k, o in obj.items()}
    return obj


def outcome(f, args, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return f(*args, **kwargs), None
        except Exception as e:  # the walk compares what happens with what NumPy does
            return None, e


ALLOWED_ERRORS = (RuntimeError, NotImplementedError)  # refusals; devices without a kernel


def check_call(name, f, args, kwargs, kind):
    """What is wrong with f(*args, **kwargs) on tensors that require grad, or None."""
    out, error = outcome(f, args, kwargs)
    expected, numpy_error = outcome(f, on_arrays(args), on_arrays(kwargs))
    what = f"{name}{tuple(type(a).__name__ for a in args)}{kwargs or ''}"
    if isinstance(error, RuntimeError) and "cannot become a NumPy array" in str(error):
        return None  # NumPy did not dispatch (a list of tensors) and converted: Tensor.__array__
    if kind == "refused":
        if error is None:
            return f"{what} returned instead of refusing"
        if type(error) is type(numpy_error):  # NumPy rejects these arguments itself
            return None
        if not isinstance(error, RuntimeError) or name not in str(error) or (
                ".detach()" not in str(error)):
            return f"{what} raised {error!r}"
        return None
    if error is not None:
        if numpy_error is None and not isinstance(error, ALLOWED_ERRORS):
            return f"{what} raised {error!r} where NumPy returns"
        return None
    if kind == "no gradient":
        return None
    for leaf in leaves(out):
        if not isinstance(leaf, sg.Tensor):
            return f"{what} returned a {type(leaf).__name__}"
        if leaf.dtype.kind == "f" and not leaf.requires_grad:
            return f"{what} returned a float tensor without its gradient"
    if numpy_error is not None:
        return None
    refs = leaves(expected)
    if len(refs) != len(leaves(out)):
        return f"{what}: {len(leaves(out))} results, NumPy's {len(refs)}"
    for leaf, ref in zip(leaves(out), refs):
        if np.shape(ref) != leaf.shape or not np.allclose(leaf.numpy(), ref, rtol=1e-9,
                                                          atol=1e-12, equal_nan=True):
            return f"{what}: the values differ from NumPy's"
    return None


def test_walk_every_ufunc_and_function_with_tensors_that_require_grad(tmp_path, monkeypatch):
    """Each call records its result, returns one without gradient by nature, or raises: never
    a plain array, nor a float tensor cut from the graph."""
    monkeypatch.chdir(tmp_path)  # np.save and friends get tensors for file names
    problems = []
    for f in public_ufuncs():
        for call, args, kwargs in ufunc_calls(f):
            method = "" if call is f else "." + call.__name__
            table = {"": sg._UFUNCS, ".reduce": sg._UFUNC_REDUCTIONS,
                     ".accumulate": sg._UFUNC_SCANS, ".outer": sg._UFUNCS}.get(method, {})
            kind = "recorded" if f in table and np_name(f) not in REFUSED else "refused"
            problems.append(check_call(np_name(f) + method, call, args, kwargs, kind))
    for f in public_functions():
        kind = ("refused" if np_name(f) in REFUSED else
                "no gradient" if f in sg._NO_GRADIENT else "recorded")
        problems += [check_call(np_name(f), f, args, kwargs, kind)
                     for args, kwargs in walk_arguments()]
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)


# ---- refusals, conversions and tensors that do not require grad ------------------------------

def test_refusal_names_the_function_and_suggests_detach():
    t = sg.Tensor(np.ones((2, 2)), requires_grad=True)
    for call, name in ((lambda: np.fft.fft(t), "np.fft.fft"),
                       (lambda: np.linalg.eig(t), "np.linalg.eig"),
                       (lambda: np.partition(t, 1), "np.partition"),
                       (lambda: np.spacing(t), "np.spacing"),
                       (lambda: np.add.at(t, [0], 1.0), "np.add.at"),
                       (lambda: np.subtract.reduce(t), "np.subtract.reduce"),
                       (lambda: np.pad(t, 1, mode="mean"), "np.pad"),
                       (lambda: np.add(t, 1, where=np.eye(2, dtype=bool)), "np.add"),
                       (lambda: np.histogram(np.ones(4), weights=t.reshape(-1)), "np.histogram")):
        with pytest.raises(RuntimeError, match=r"\.detach\(\)") as info:
            call()
        assert str(info.value).startswith(name), str(info.value)


def test_out_is_refused_for_tensors_that_require_grad():
    t = sg.Tensor(np.ones(3), requires_grad=True)
    for call in (lambda: np.sin(t, out=np.empty(3)), lambda: np.sum(t, out=np.empty(())),
                 lambda: np.add(np.ones(3), np.ones(3), out=t)):
        with pytest.raises(RuntimeError, match=r"out=\.\.\.\): simplegrad cannot write"):
            call()


def test_conversions_of_tensors_that_require_grad_raise():
    t, u = (sg.Tensor(np.ones(3), requires_grad=True) for _ in range(2))
    out = np.stack([t, u])
    assert out.grad_fn is not None and out.shape == (2, 3)
    for call in (lambda: np.mean([t, u]), lambda: np.array([t, u]), lambda: np.asarray(t)):
        with pytest.raises(RuntimeError, match="cannot become a NumPy array"):
            call()


def test_without_grad_unrecorded_functions_give_plain_arrays():
    a = np.array([[3.0, 1.0], [1.0, 2.0]])
    u = sg.Tensor(a)
    for out, ref in ((np.fft.fft(u), np.fft.fft(a)), (np.linalg.eigvals(u), np.linalg.eigvals(a)),
                     (np.partition(u, 1), np.partition(a, 1)), (np.spacing(u), np.spacing(a)),
                     (np.shape(u), np.shape(a)), (np.zeros_like(u), np.zeros_like(a))):
        assert not isinstance(out, sg.Tensor)
        np.testing.assert_array_equal(out, ref)
    for out, ref in ((np.sin(u), np.sin(a)), (np.sort(u, axis=None), np.sort(a, axis=None)),
                     (np.linalg.det(u), np.linalg.det(a)), (np.add.reduce(u), a.sum(0))):
        assert isinstance(out, sg.Tensor) and out.grad_fn is None
        assert_close(out, ref)
    target = np.empty(2)
    assert np.sum(u, axis=0, out=target) is target  # out= as in NumPy, without gradient
    np.testing.assert_array_equal(target, a.sum(0))


def test_under_no_grad_nothing_is_refused():
    t = sg.Tensor(np.array([1.0, 2.0, 4.0]), requires_grad=True)
    with sg.no_grad():
        np.testing.assert_allclose(np.fft.fft(t), np.fft.fft([1.0, 2.0, 4.0]))
        np.testing.assert_array_equal(np.asarray(t), [1.0, 2.0, 4.0])
        out = np.sin(t)
    assert isinstance(out, sg.Tensor) and not out.requires_grad


@pytest.mark.parametrize("ufunc", [f for f in public_ufuncs() if f in sg._UFUNCS],
                         ids=lambda f: f.__name__)
def test_integer_tensors_give_numpys_dtypes(ufunc):
    """Tensors of integers and bools (which cannot require grad) get NumPy's exact result, as
    tensors on their device."""
    for arrays in ([np.arange(1, 7).reshape(2, 3)] * ufunc.nin,
                   [np.array([True, False, True])] * ufunc.nin):
        expected, error = outcome(ufunc, arrays, {})
        out, our_error = outcome(ufunc, [sg.Tensor(a) for a in arrays], {})
        assert type(our_error) is type(error), (ufunc, our_error, error)
        for o, r in zip(leaves(out), leaves(expected)) if error is None else ():
            assert isinstance(o, sg.Tensor) and o.device == sg.Tensor.device
            assert o.dtype == r.dtype
            np.testing.assert_array_equal(o.numpy(), r)


def test_integer_tensors_in_functions_give_numpys_dtypes():
    a = np.array([[3, 1], [1, 2]])
    t = sg.Tensor(a)
    for f in (np.mean, np.median, np.cumsum, np.linalg.det, np.linalg.inv, np.diff, np.cov):
        out, ref = f(t), f(a)
        assert isinstance(out, sg.Tensor) and out.dtype == ref.dtype, f
        assert_close(out, ref)


def test_no_gradient_functions_with_tensor_results():
    a = np.array([[0.5, -1.0, 2.0], [3.0, 0.0, -2.0]])
    t = sg.Tensor(a, requires_grad=True)
    for f, kwargs in ((np.argmax, {}), (np.argmin, {"axis": 1}),
                      (np.argsort, {"axis": None}), (np.argsort, {"axis": 0})):
        out = f(t, **kwargs)
        assert isinstance(out, sg.Tensor) and out.dtype == np.int64
        np.testing.assert_array_equal(out.numpy(), f(a, **kwargs))
    counts, edges = np.histogram(t, bins=3)
    np.testing.assert_array_equal(counts, np.histogram(a, bins=3)[0])
    with pytest.raises(RuntimeError, match="np.full_like"):
        np.full_like(t, t)
    with pytest.raises(RuntimeError, match="np.copyto"):  # NumPy's full_like fills with copyto
        np.full_like(a, t)


def test_cross_of_2_vectors_warns_as_numpy():
    x, y = (sg.Tensor(np.array(v), requires_grad=True) for v in ([1.0, 2.0], [3.0, 5.0]))
    with pytest.warns(DeprecationWarning, match="2-dimensional vectors"):
        out = np.cross(x, y)
    assert out.item() == -1.0 and out.requires_grad


def test_signatures_of_adapters_accept_numpys_names():
    """Every recorded function is called with NumPy's own argument names."""
    for f, impl in sg._FUNCTIONS.items():
        names = [n for n, p in inspect.signature(f).parameters.items()
                 if n not in ("out", "where", "like", "device") and
                 p.kind is not inspect.Parameter.VAR_KEYWORD]
        accepted = inspect.signature(impl).parameters
        keywords = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
        missing = [n for n in names if n not in accepted and not keywords]
        assert not missing, f"{np_name(f)}: the adapter lacks {missing}"
