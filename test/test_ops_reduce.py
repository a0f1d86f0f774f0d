"""Reductions, scans, sorting and selection against PyTorch, through the one helper `check`.

Values and gradients for random upstream gradients, over the dim / keepdim combinations of
test_ops.REDUCE_DIMS where the op takes several dims, with zeros (prod, cumprod), -inf
(logcumsumexp), nan (cummax, sort, nan* reductions) and ties. torch.topk and torch.kthvalue have
no rule among ties, so those are compared on tie-free data, and on tied data only through
x[indices] == values. Tolerances are the helper's unless a test says otherwise.
"""

import numpy as np
import pytest
from helpers import assert_close, assert_same, check, torch
from test_ops import DTYPES, REDUCE_DIMS, check_second, lib

import simplegrad as sg

pytestmark = pytest.mark.usefixtures("device")

SHAPE = (2, 3, 4)


def _all_dims(dim, ndim=3):
    """torch's spelling of 'every dim' for the reductions that take no dim=None."""
    return tuple(range(ndim)) if dim is None else dim


def _dims(dim, ndim):
    """dim as a tuple of non-negative dims, highest first."""
    dims = range(ndim) if dim is None else ((dim,) if isinstance(dim, int) else dim)
    return sorted((d % ndim for d in dims), reverse=True)


def _tied(shape, seed=0, high=3):
    """Small integers as floats: many exact ties."""
    return np.random.default_rng(seed).integers(0, high, size=shape).astype(np.float64)


def _distinct(shape, seed=0):
    """A random permutation of well-separated values: no ties anywhere."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n) * 0.37 - n * 0.15).reshape(shape)


# ================================================================================================
# prod
# ================================================================================================

def torch_prod(x, dim, keepdim):
    """torch.prod over any dims: it takes one dim (or all, without keepdim) at a time."""
    if dim is None and not keepdim:
        return x.prod()
    for d in _dims(dim, x.ndim):
        x = x.prod(d, keepdim=True)
    return x if keepdim else x.reshape(
        tuple(n for i, n in enumerate(x.shape) if i not in _dims(dim, x.ndim)))


def _with_zeros(kind):
    a = np.random.default_rng(1).uniform(0.5, 1.5, SHAPE) * np.where(
        np.random.default_rng(2).random(SHAPE) < 0.5, -1, 1)
    if kind == "one":
        a[0, 1, 2] = 0.0
    elif kind == "two":
        a[0, 1, 2] = a[0, 1, 3] = 0.0  # two in one row of the last dim
        a[1, 0, 0] = a[1, 2, 0] = 0.0  # two in one column of dim 1
        a[0, 0, 1] = a[1, 0, 1] = 0.0  # two along dim 0
    elif kind == "all":
        a[:] = 0.0
    return a


@pytest.mark.parametrize("dim, keepdim", REDUCE_DIMS, ids=str)
@pytest.mark.parametrize("zeros", ["none", "one", "two", "all"])
def test_prod(zeros, dim, keepdim):
    check(lambda x: x.prod(dim=dim, keepdim=keepdim), None,
          lambda x: torch_prod(x, dim, keepdim), inputs=[_with_zeros(zeros)])


@pytest.mark.parametrize("dtype", DTYPES)
def test_prod_spellings_and_float32(dtype):
    check(lambda x: x.prod(), [(3, 4)], dtype=dtype)
    check(lambda x: x.prod(1), [(3, 4)], dtype=dtype)
    check(lambda x: lib(x).prod(x, 0), [(3, 4)], dtype=dtype)
    check(lambda x: x.prod(axis=-1, keepdims=True), [(3, 4)],
          lambda x: x.prod(-1, keepdim=True), dtype=dtype)
    check(lambda x: x.prod(0), None, inputs=[_with_zeros("two")[0]], dtype=dtype)
    check(lambda x: x.prod(), [()], dtype=dtype)


def test_prod_integers_accumulate_in_int64():
    a = np.array([[2, 3, 4], [100, 100, 100]], dtype=np.int32)
    assert_same(sg.Tensor(a).prod(1), torch.tensor(a).prod(1), "int32 prod")
    assert_same(sg.Tensor(a).prod(), torch.tensor(a).prod(), "int32 prod of all")
    b = np.array([True, True, False])
    assert_same(sg.Tensor(b).prod(), torch.tensor(b).prod(), "bool prod")


def test_prod_second_derivative_with_zeros():
    check_second(lambda x: x.prod(1), [(3, 4)])
    for kind in ["one", "two"]:
        a = _with_zeros(kind)[0]
        x, t = sg.Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        (gx,) = sg.grad(x.prod(1).sum(), [x], create_graph=True)
        (gt,) = torch.autograd.grad(t.prod(1).sum(), [t], create_graph=True)
        assert_close(gx, gt, what="gradient")
        w = np.random.default_rng(0).standard_normal(a.shape)
        (hx,) = sg.grad((gx * sg.Tensor(w)).sum(), [x])
        (ht,) = torch.autograd.grad((gt * torch.tensor(w)).sum(), [t])
        assert_close(hx, ht, what=f"second derivative, {kind} zero(s)")


# ================================================================================================
# Scans
# ================================================================================================

SCAN_ZEROS = np.array([[1.5, -2.0, 0.5, 3.0, -0.7],
                       [1.5, 0.0, 0.5, 3.0, -0.7],     # one zero
                       [0.0, 2.0, 0.0, -1.0, 2.0],     # two zeros
                       [2.0, 0.5, -1.5, 0.0, 0.0],     # two at the end
                       [0.0, 0.0, 0.0, 0.0, 0.0]])     # all zeros


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
@pytest.mark.parametrize("name", ["cumsum", "cumprod", "logcumsumexp"])
def test_scan(name, dim, dtype):
    check(lambda x: getattr(x, name)(dim), [SHAPE], dtype=dtype)
    check(lambda x: getattr(lib(x), name)(x, dim=dim), [SHAPE], dtype=dtype, seed=1)


@pytest.mark.parametrize("name", ["cumsum", "cumprod", "logcumsumexp"])
def test_scan_zero_dim_and_axis_spelling(name):
    check(lambda x: getattr(x, name)(0), [()])
    check(lambda x: getattr(x, name)(axis=1), [(3, 4)], lambda x: getattr(x, name)(dim=1))


@pytest.mark.parametrize("dim", [0, 1])
def test_cumprod_with_zeros(dim):
    check(lambda x: x.cumprod(dim), None, inputs=[SCAN_ZEROS])
    check(lambda x: x.cumprod(dim), None, inputs=[SCAN_ZEROS], dtype=np.float32)


def test_cumprod_second_derivative_with_zeros():
    check_second(lambda x: x.cumprod(1), [(3, 4)])
    a = SCAN_ZEROS
    x, t = sg.Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    (gx,) = sg.grad(x.cumprod(1).sum(), [x], create_graph=True)
    (gt,) = torch.autograd.grad(t.cumprod(1).sum(), [t], create_graph=True)
    assert_close(gx, gt, what="gradient")
    (hx,) = sg.grad((gx * gx).sum(), [x])
    (ht,) = torch.autograd.grad((gt * gt).sum(), [t])
    assert_close(hx, ht, what="second derivative")


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
def test_scan_integers(name):
    a = np.array([[1, 2, 3], [4, -5, 6]], dtype=np.int32)
    assert_same(getattr(sg.Tensor(a), name)(1), getattr(torch.tensor(a), name)(1), f"{name} int32")
    b = np.array([True, False, True, True])
    assert_same(getattr(sg.Tensor(b), name)(0), getattr(torch.tensor(b), name)(0), f"{name} bool")
    assert_same(getattr(sg.Tensor(a), name)(0, dtype=np.float64),
                getattr(torch.tensor(a), name)(0, dtype=torch.float64), f"{name} dtype=float64")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_logcumsumexp_with_minus_inf():
    # an all -inf row stays -inf; -inf elements before finite ones; torch's gradients (nan at
    # the -inf elements) are the reference
    inf = np.inf
    a = np.array([[-inf, -inf, -inf, -inf], [-inf, 0.0, 1.0, -inf], [0.0, -inf, 2.0, -1.0],
                  [1000.0, -1000.0, 1000.0, -inf], [-inf, -inf, -inf, 5.0]])
    check(lambda x: x.logcumsumexp(1), None, inputs=[a])
    check(lambda x: x.logcumsumexp(0), None, inputs=[a[:, 1:3]])
    check(lambda x: x.logcumsumexp(1), None, inputs=[np.array([[-1e3, 0.0, 1e3, 1e3]])],
          dtype=np.float32)


# ---- cummax, cummin ------------------------------------------------------------------------------

CUM_INPUTS = {
    "random": lambda: np.random.default_rng(0).uniform(-2, 2, SHAPE),
    "ties": lambda: _tied(SHAPE, seed=3),
    "nan": lambda: np.array([[1.0, np.nan, 0.5, 3.0], [2.0, 2.0, np.nan, np.nan],
                             [np.nan, 1.0, 4.0, -1.0]]),
}


@pytest.mark.parametrize("data", sorted(CUM_INPUTS))
@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_cummin(name, data):
    a = CUM_INPUTS[data]()
    for dim in range(-a.ndim, a.ndim):
        out = check(lambda x, dim=dim: getattr(x, name)(dim).values, None, inputs=[a])
        ref = getattr(torch.tensor(a), name)(dim)
        out = getattr(sg.Tensor(a), name)(dim)
        assert_same(out.indices, ref.indices, f"{name} indices along {dim}, {data}")
        assert_same(out[1], ref[1], f"{name}[1] along {dim}")
        check(lambda x, dim=dim: getattr(lib(x), name)(x, dim)[0], None, inputs=[a])


def test_cummax_cummin_float32_and_zero_dim():
    check(lambda x: x.cummax(1).values, [(3, 5)], dtype=np.float32)
    check(lambda x: x.cummin(0).values, [(3, 5)], dtype=np.float32)
    out = sg.Tensor(np.array(2.0)).cummax(0)
    ref = torch.tensor(2.0, dtype=torch.float64).cummax(0)
    assert_close(out.values, ref.values)
    assert_same(out.indices, ref.indices, "indices")


# ================================================================================================
# any, all, count_nonzero, nansum, nanmean, empty means
# ================================================================================================

ANY_ALL_INPUTS = {
    "float": lambda: np.where(np.random.default_rng(0).random(SHAPE) < 0.4, 0.0, 1.5),
    "int": lambda: np.random.default_rng(1).integers(0, 2, SHAPE) * 3,
    "bool": lambda: np.random.default_rng(2).random(SHAPE) < 0.7,
    "nan": lambda: np.where(np.random.default_rng(3).random(SHAPE) < 0.4, 0.0, np.nan),
}


@pytest.mark.parametrize("dim, keepdim", REDUCE_DIMS, ids=str)
@pytest.mark.parametrize("data", sorted(ANY_ALL_INPUTS))
@pytest.mark.parametrize("name", ["any", "all"])
def test_any_all(name, data, dim, keepdim):
    a = ANY_ALL_INPUTS[data]()
    out = getattr(sg.Tensor(a), name)(dim=dim, keepdim=keepdim)
    ref = getattr(torch.tensor(a), name)(dim=_all_dims(dim), keepdim=keepdim)
    assert_same(out, ref, f"{name} of {data}")
    if dim is None and not keepdim:
        assert_same(getattr(sg, name)(sg.Tensor(a)), getattr(torch, name)(torch.tensor(a)), name)


def test_any_all_edge_cases():
    empty = np.zeros((0, 3))
    assert_same(sg.Tensor(empty).any(0), torch.tensor(empty).any(0), "any of nothing")
    assert_same(sg.Tensor(empty).all(0), torch.tensor(empty).all(0), "all of nothing")
    assert_same(sg.Tensor(np.array(0.0)).any(), torch.tensor(0.0).any(), "0-d any")
    assert_same(sg.Tensor(np.array([-0.0, 0.0])).any(), torch.tensor([-0.0, 0.0]).any(), "-0")


@pytest.mark.parametrize("dim", [None, 0, 1, -1, (0, 2), (-1, 0, 1)], ids=str)
def test_count_nonzero(dim):
    a = ANY_ALL_INPUTS["float"]()
    a[0, 0, 0] = np.nan  # nan is nonzero
    out, ref = sg.Tensor(a).count_nonzero(dim=dim), torch.tensor(a).count_nonzero(dim=dim)
    assert_same(out, ref, "count_nonzero")
    assert_same(sg.count_nonzero(sg.Tensor(a), dim), torch.count_nonzero(torch.tensor(a), dim),
                "count_nonzero function")
    ints = ANY_ALL_INPUTS["int"]()
    assert_same(sg.Tensor(ints).count_nonzero(dim=dim), torch.tensor(ints).count_nonzero(dim=dim),
                "int count_nonzero")


def _with_nans(seed=0, shape=SHAPE):
    a = np.random.default_rng(seed).uniform(-2, 2, shape)
    a[np.random.default_rng(seed + 1).random(shape) < 0.3] = np.nan
    return a


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dim, keepdim", REDUCE_DIMS, ids=str)
@pytest.mark.parametrize("name", ["nansum", "nanmean"])
def test_nansum_nanmean(name, dim, keepdim):
    a = _with_nans()
    if name == "nansum":
        a[1, 2, :] = np.nan  # a whole row of nan: nansum 0 (nanmean's: test_nanmean_all_nan)
    else:
        a[0] = np.random.default_rng(9).uniform(-2, 2, SHAPE[1:])
        assert not np.isnan(a).all(axis=1).any() and not np.isnan(a).all(axis=2).any()
    check(lambda x: getattr(x, name)(dim=dim, keepdim=keepdim), None,
          lambda x: getattr(x, name)(dim=_all_dims(dim), keepdim=keepdim), inputs=[a])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nanmean_all_nan_group():
    a = np.array([[np.nan, np.nan, np.nan], [1.0, np.nan, 2.0]])
    check(lambda x: x.nanmean(1), None, inputs=[a])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["nansum", "nanmean"])
def test_nansum_nanmean_functions_and_float32(name, dtype):
    a = _with_nans(seed=4, shape=(3, 5))
    check(lambda x: getattr(lib(x), name)(x, 1), None, inputs=[a], dtype=dtype)
    check(lambda x: getattr(lib(x), name)(x), None, inputs=[a], dtype=dtype)
    check(lambda x: getattr(x, name)(axis=0, keepdims=True), None,
          lambda x: getattr(x, name)(dim=0, keepdim=True), inputs=[a], dtype=dtype)
    check(lambda x: getattr(x, name)(1), [(3, 5)], dtype=dtype)  # no nan at all


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_mean_over_an_empty_dim_is_nan():
    for shape, dim in [((0, 3), 0), ((3, 0), 1), ((0,), None), ((2, 0, 3), (0, 1))]:
        out = check(lambda x, dim=dim: x.mean(dim=dim), [shape],
                    lambda x, dim=dim, shape=shape: x.mean(dim=_all_dims(dim, len(shape))))
        assert np.isnan(out.numpy()).all() and out.numel() == (3 if shape != (0,) else 1)
    out = check(lambda x: x.sum(0), [(0, 3)])
    np.testing.assert_array_equal(out.numpy(), np.zeros(3))


# ================================================================================================
# Norms
# ================================================================================================

NORM_ORDERS = [1, 2, 3, 0.5, np.inf, -np.inf, 0]


def _norm_input(seed=0):
    # values away from zero and from each other in |x| (the +-inf norms have no ties here)
    return _distinct(SHAPE, seed) / 3 + np.where(_distinct(SHAPE, seed + 1) > 0, 0.05, -0.05)


@pytest.mark.parametrize("dim, keepdim", REDUCE_DIMS, ids=str)
@pytest.mark.parametrize("p", NORM_ORDERS + ["fro"], ids=str)
def test_norm(p, dim, keepdim):
    ord_ = 2 if p == "fro" else p
    check(lambda x: x.norm(p, dim=dim, keepdim=keepdim), None,
          lambda x: torch.linalg.vector_norm(x, ord_, dim=dim, keepdim=keepdim),
          inputs=[_norm_input()])
    check(lambda x: sg.linalg.vector_norm(x, ord_, dim=dim, keepdim=keepdim), None,
          lambda x: torch.linalg.vector_norm(x, ord_, dim=dim, keepdim=keepdim),
          inputs=[_norm_input(seed=5)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [1, 2, 3, np.inf, "fro"], ids=str)
def test_norm_torch_spelling_and_float32(p, dtype):
    check(lambda x: x.norm(p), [(3, 4)], dtype=dtype)
    check(lambda x: x.norm(p, 1), [(3, 4)], lambda x: x.norm(p, dim=1), dtype=dtype)
    check(lambda x: lib(x).norm(x, p, dim=0, keepdim=True), [(3, 4)], dtype=dtype)
    check(lambda x: x.norm(), [(3, 4)], dtype=dtype)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # |0| ** (p - 1), p < 1
@pytest.mark.parametrize("p", NORM_ORDERS, ids=str)
def test_norm_at_zeros_and_ties(p):
    # zero elements, an all-zero row and tied |x|: the gradient is torch's (0 at a zero norm,
    # shared among the tied extremes for +-inf)
    a = np.array([[0.0, 1.0, -2.0, 0.5], [0.0, 0.0, 0.0, 0.0], [2.0, -2.0, 1.0, -1.0],
                  [-3.0, 3.0, 3.0, 0.5]])
    for dim in [1, None]:
        check(lambda x, dim=dim: sg.linalg.vector_norm(x, p, dim=dim), None,
              lambda x, dim=dim: torch.linalg.vector_norm(x, p, dim=dim), inputs=[a])


MATRIX_ORDERS = ["fro", 1, -1, np.inf, -np.inf]


@pytest.mark.parametrize("dim", [(0, 1), (1, 0), (-1, -2), (0, 2)], ids=str)
@pytest.mark.parametrize("ord_", MATRIX_ORDERS, ids=str)
def test_linalg_norm_matrix(ord_, dim):
    check(lambda x: lib(x).linalg.norm(x, ord_, dim=dim), None, inputs=[_norm_input()])
    check(lambda x: lib(x).linalg.norm(x, ord_, dim=dim, keepdim=True), None,
          inputs=[_norm_input(seed=2)])


@pytest.mark.parametrize("ord_", [None, 1, 2, 3, np.inf, -np.inf, 0.5], ids=str)
def test_linalg_norm_vector(ord_):
    check(lambda x: lib(x).linalg.norm(x, ord_), None, inputs=[_norm_input()[0, 0]])
    check(lambda x: lib(x).linalg.norm(x, ord_, dim=1), None, inputs=[_norm_input()])
    check(lambda x: lib(x).linalg.norm(x, ord_, dim=(2,), keepdim=True), None,
          inputs=[_norm_input()])
    if ord_ is None:  # no ord and no dim: the 2-norm of every element
        check(lambda x: lib(x).linalg.norm(x), None, inputs=[_norm_input()])
    elif ord_ in MATRIX_ORDERS:  # an ord and no dim on a 2-d input: a matrix norm
        check(lambda x: lib(x).linalg.norm(x, ord_), None, inputs=[_norm_input()[0]])


def test_norm_second_derivative():
    check_second(lambda x: x.norm(dim=1), [(3, 4)])
    check_second(lambda x: sg.linalg.vector_norm(x, 3, dim=0) if isinstance(x, sg.Tensor)
                 else torch.linalg.vector_norm(x, 3, dim=0), [(3, 4)])


# ================================================================================================
# var_mean, std_mean, median
# ================================================================================================

@pytest.mark.parametrize("dim, keepdim", REDUCE_DIMS, ids=str)
@pytest.mark.parametrize("correction", [0, 1])
@pytest.mark.parametrize("name", ["var_mean", "std_mean"])
def test_var_std_mean(name, correction, dim, keepdim):
    def both(x):
        spread, mean = getattr(lib(x), name)(x, dim=dim, correction=correction, keepdim=keepdim)
        return lib(x).cat([spread.reshape(-1), mean.reshape(-1) * 3])

    check(both, [SHAPE])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["var_mean", "std_mean"])
def test_var_std_mean_spellings(name, dtype):
    for kwargs in [{}, {"dim": 1}, {"dim": 0, "unbiased": False}, {"dim": (0, 1), "correction": 2}]:
        def both(x, kwargs=kwargs):
            spread, mean = getattr(lib(x), name)(x, **kwargs)
            return lib(x).cat([spread.reshape(-1), mean.reshape(-1) * 3])

        check(both, [(3, 4)], dtype=dtype)
    out = getattr(sg, name)(sg.Tensor(np.ones((2, 3))), 0)
    assert isinstance(out, tuple) and len(out) == 2


def test_std_mean_constant_rows():
    # a zero spread: std's gradient there is 0, as torch's
    a = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]])
    check(lambda x: lib(x).std_mean(x, 1)[0] + lib(x).std_mean(x, 1)[1], None, inputs=[a])


MEDIAN_INPUTS = {
    "distinct_odd": lambda: _distinct((3, 5)),
    "distinct_even": lambda: _distinct((3, 4)),
    "ties": lambda: _tied((3, 6), seed=4),
    "all_equal": lambda: np.full((2, 4), 1.5),
}


@pytest.mark.parametrize("data", sorted(MEDIAN_INPUTS))
def test_median_of_all(data):
    # the lower median of every element; ties split the gradient evenly, as torch.median()
    a = MEDIAN_INPUTS[data]()
    check(lambda x: x.median(), None, inputs=[a])
    check(lambda x: lib(x).median(x), None, inputs=[a], dtype=np.float32)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_median_dim(dim, keepdim):
    a = _distinct((4, 5))
    out = check(lambda x: x.median(dim, keepdim=keepdim).values, None, inputs=[a])
    ref = torch.tensor(a).median(dim, keepdim=keepdim)
    out = sg.Tensor(a).median(dim=dim, keepdim=keepdim)
    assert_same(out.indices, ref.indices, "median indices")
    check(lambda x: lib(x).median(x, dim, keepdim)[0], None, inputs=[a], dtype=np.float32)


def test_median_dim_ties_and_nan():
    # ties: torch promises no index, only one holding the median
    a = _tied((4, 7), seed=5)
    out = sg.Tensor(a).median(1)
    ref = torch.tensor(a).median(1)
    assert_close(out.values, ref.values)
    np.testing.assert_array_equal(np.take_along_axis(a, out.indices.numpy()[:, None], 1)[:, 0],
                                  out.values.numpy())
    x = sg.Tensor(a, requires_grad=True)
    x.median(1).values.sum().backward()
    assert (x.grad.numpy().sum(1) == 1).all() and ((x.grad.numpy() == 0).sum(1) == 6).all()
    # a nan anywhere makes the median nan, and its index is the first nan's
    b = np.array([[1.0, np.nan, 3.0, np.nan], [4.0, 2.0, 1.0, 3.0]])
    out, ref = sg.Tensor(b).median(1), torch.tensor(b).median(1)
    assert_close(out.values, ref.values)
    assert_same(out.indices, ref.indices, "median indices with nan")
    assert np.isnan(sg.Tensor(b).median().item())
    check(lambda x: x.median(1).values, None, inputs=[b])


def test_median_zero_dim():
    check(lambda x: x.median(), [()])
    out, ref = sg.Tensor(np.array(3.0)).median(0), torch.tensor(3.0).median(0)
    assert_close(out.values, ref.values.double())
    assert_same(out.indices, ref.indices, "indices")


# ================================================================================================
# Sorting and selection
# ================================================================================================

SORT_INPUTS = {
    "random": lambda: np.random.default_rng(0).uniform(-2, 2, SHAPE),
    "ties": lambda: _tied(SHAPE, seed=6),
    "nan": lambda: np.where(np.random.default_rng(7).random(SHAPE) < 0.25, np.nan,
                            _tied(SHAPE, seed=8)),
    "inf": lambda: np.where(np.random.default_rng(9).random(SHAPE) < 0.3, np.inf,
                            -_tied(SHAPE, seed=8) * np.inf),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("data", sorted(SORT_INPUTS))
def test_sort_argsort(data, descending):
    a = SORT_INPUTS[data]()
    if data == "inf":
        a = np.nan_to_num(a, nan=0.0, posinf=np.inf, neginf=-np.inf)
    for dim in [0, 1, -1]:
        # stable: ties keep their order, as torch.sort(stable=True); nan is the largest
        check(lambda x, dim=dim: x.sort(dim, descending=descending).values, None,
              lambda x, dim=dim: x.sort(dim=dim, descending=descending, stable=True).values,
              inputs=[a])
        out = sg.Tensor(a).sort(dim=dim, descending=descending)
        ref = torch.tensor(a).sort(dim=dim, descending=descending, stable=True)
        assert_same(out.indices, ref.indices, f"sort indices, dim {dim}")
        assert_same(out[1], ref[1], "sort()[1]")
        assert_same(sg.Tensor(a).argsort(dim, descending=descending),
                    torch.argsort(torch.tensor(a), dim=dim, descending=descending, stable=True),
                    "argsort")
        assert_same(sg.argsort(sg.Tensor(a), dim=dim, descending=descending, stable=True),
                    torch.tensor(a).argsort(dim=dim, descending=descending, stable=True),
                    "argsort fn")


@pytest.mark.parametrize("dtype", DTYPES)
def test_sort_functions_float32_and_integers(dtype):
    check(lambda x: lib(x).sort(x, 1)[0], [(3, 5)],
          lambda x: torch.sort(x, dim=1, stable=True)[0], dtype=dtype)
    check(lambda x: x.sort().values, [(3, 5)], dtype=dtype)
    check(lambda x: lib(x).msort(x), None, inputs=[_tied((5, 3))], dtype=dtype)
    check(lambda x: x.msort(), [(5, 3)], dtype=dtype)
    ints = np.random.default_rng(0).integers(-5, 5, (4, 6))
    out, ref = sg.Tensor(ints).sort(1), torch.tensor(ints).sort(dim=1, stable=True)
    assert_same(out.values, ref.values, "int sort values")
    assert_same(out.indices, ref.indices, "int sort indices")
    check(lambda x: x.sort(0).values, [()], lambda x: x.sort(0).values)


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_topk(k, dim, largest):
    a = _distinct(SHAPE, seed=k)
    if k > SHAPE[dim]:
        k = SHAPE[dim]
    check(lambda x: x.topk(k, dim, largest=largest).values, None, inputs=[a])
    out = sg.Tensor(a).topk(k, dim=dim, largest=largest)
    ref = torch.tensor(a).topk(k, dim=dim, largest=largest)
    assert_same(out.indices, ref.indices, "topk indices")
    check(lambda x: lib(x).topk(x, k, dim, largest, True)[0], None, inputs=[a],
          dtype=np.float32)


def test_topk_ties_and_edges():
    a = _tied((4, 6), seed=11)
    out, ref = sg.Tensor(a).topk(3, 1), torch.tensor(a).topk(3, 1)
    assert_close(out.values, ref.values)
    np.testing.assert_array_equal(np.take_along_axis(a, out.indices.numpy(), 1),
                                  out.values.numpy())
    assert (np.diff(out.values.numpy(), axis=1) <= 0).all()
    check(lambda x: x.topk(0, 1).values, [(3, 4)])
    check(lambda x: x.topk(4, 1).values, None, inputs=[_distinct((3, 4))])
    check(lambda x: x.topk(1).values, None, inputs=[_distinct((5,))])


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_kthvalue(k, dim, keepdim):
    a = _distinct(SHAPE, seed=k + 3)
    k = min(k, SHAPE[dim])
    check(lambda x: x.kthvalue(k, dim, keepdim=keepdim).values, None, inputs=[a])
    out = sg.Tensor(a).kthvalue(k, dim=dim, keepdim=keepdim)
    ref = torch.tensor(a).kthvalue(k, dim=dim, keepdim=keepdim)
    assert_same(out.indices, ref.indices, "kthvalue indices")
    check(lambda x: lib(x).kthvalue(x, k, dim)[0], None, inputs=[a], dtype=np.float32)


def test_kthvalue_ties():
    a = _tied((4, 7), seed=12)
    for k in [1, 4, 7]:
        out, ref = sg.Tensor(a).kthvalue(k, 1), torch.tensor(a).kthvalue(k, 1)
        assert_close(out.values, ref.values)
        np.testing.assert_array_equal(
            np.take_along_axis(a, out.indices.numpy()[:, None], 1)[:, 0], out.values.numpy())
        x = sg.Tensor(a, requires_grad=True)
        x.kthvalue(k, 1).values.sum().backward()
        assert (x.grad.numpy().sum(1) == 1).all()


UNIQUE_INPUTS = {
    "1d": lambda: np.array([3.0, 1.0, 2.0, 3.0, 1.0, -1.0, 2.0, 2.0]),
    "2d": lambda: _tied((4, 5), seed=13),
    "int": lambda: np.random.default_rng(14).integers(-3, 3, (3, 4)),
    "bool": lambda: np.array([[True, False], [True, True]]),
}


@pytest.mark.parametrize("counts", [False, True])
@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("data", sorted(UNIQUE_INPUTS))
def test_unique(data, inverse, counts):
    a = UNIQUE_INPUTS[data]()
    kwargs = dict(sorted=True, return_inverse=inverse, return_counts=counts)
    out, ref = sg.Tensor(a).unique(**kwargs), torch.tensor(a).unique(**kwargs)
    out, ref = (out, ref) if isinstance(ref, tuple) else ((out,), (ref,))
    assert len(out) == len(ref)
    for i, (o, r) in enumerate(zip(out, ref)):
        assert_same(o, r, f"unique output {i}")
    assert_same(sg.unique(sg.Tensor(a)), torch.unique(torch.tensor(a)), "unique function")


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_unique_dim(dim):
    a = np.array([[1.0, 2.0, 1.0, 2.0], [0.0, 3.0, 0.0, 3.0], [1.0, 2.0, 1.0, 2.0]])
    a = np.concatenate([a, a[:, :1] + 5], axis=1)
    kwargs = dict(return_inverse=True, return_counts=True, dim=dim)
    out, ref = sg.Tensor(a).unique(**kwargs), torch.tensor(a).unique(**kwargs)
    for i, (o, r) in enumerate(zip(out, ref)):
        assert_same(o, r, f"unique(dim={dim}) output {i}")
    assert_same(sg.Tensor(a).unique(dim=dim), torch.tensor(a).unique(dim=dim), "unique values only")


def test_unique_has_no_gradient():
    x = sg.Tensor(np.array([2.0, 1.0, 2.0]), requires_grad=True)
    out = x.unique()
    assert not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), [1.0, 2.0])


SEARCH_SEQ = np.array([-1.0, 0.0, 0.0, 2.0, 3.5, 3.5, 7.0])
SEARCH_VALUES = np.array([[-2.0, -1.0, 0.0, 1.0], [3.5, 7.0, 8.0, 2.0]])


@pytest.mark.parametrize("right", [False, True])
def test_searchsorted(right):
    side = "right" if right else "left"
    seq, vals = torch.tensor(SEARCH_SEQ), torch.tensor(SEARCH_VALUES)
    ref = torch.searchsorted(seq, vals, right=right)
    assert_same(sg.searchsorted(sg.Tensor(SEARCH_SEQ), sg.Tensor(SEARCH_VALUES), right=right), ref,
                f"1-d sequence, {side}")
    assert_same(sg.searchsorted(sg.Tensor(SEARCH_SEQ), sg.Tensor(SEARCH_VALUES), side=side), ref,
                f"side={side!r}")
    assert_same(sg.searchsorted(sg.Tensor(SEARCH_SEQ), sg.Tensor(SEARCH_VALUES[0, 1]), right=right),
                torch.searchsorted(seq, vals[0, 1:2], right=right).reshape(()), "a 0-d value")
    # batched: one sorted row per row of values
    batched = np.stack([SEARCH_SEQ, np.sort(SEARCH_SEQ * -2.0)])
    assert_same(sg.searchsorted(sg.Tensor(batched), sg.Tensor(SEARCH_VALUES), right=right),
                torch.searchsorted(torch.tensor(batched), vals, right=right), f"batched, {side}")
    assert_same(sg.searchsorted(sg.Tensor(batched), sg.Tensor(SEARCH_VALUES), out_int32=True,
                side=side),
                torch.searchsorted(torch.tensor(batched), vals, out_int32=True, side=side),
                "out_int32")
    # an unsorted sequence with a sorter, and a Python number as the values
    order = np.array([3, 0, 6, 1, 4, 2, 5])
    shuffled = SEARCH_SEQ[np.argsort(order)]
    sorter = np.argsort(shuffled, kind="stable")
    assert_same(sg.searchsorted(sg.Tensor(shuffled), sg.Tensor(SEARCH_VALUES), side=side,
                sorter=sg.Tensor(sorter)),
                torch.searchsorted(torch.tensor(shuffled), vals, side=side,
                sorter=torch.tensor(sorter)), "sorter")
    ints = np.array([1, 3, 3, 5], dtype=np.int64)
    assert_same(sg.searchsorted(sg.Tensor(ints), sg.Tensor(np.array([0, 3, 6])), right=right),
                torch.searchsorted(torch.tensor(ints), torch.tensor([0, 3, 6]), right=right),
                "ints")


# ================================================================================================
# Second derivatives of selections: the gradient is a gather, itself differentiable
# ================================================================================================

# logcumsumexp's backward takes logs of the signed parts of g, which may be 0
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("fn", [
    lambda x: x.sort(1).values ** 2,
    lambda x: x.topk(2, 1).values.exp(),
    lambda x: x.kthvalue(2, 0).values ** 3,
    lambda x: x.cummax(1).values * x,
    lambda x: x.cumsum(0).tanh(),
    lambda x: x.logcumsumexp(1),
    lambda x: x.median(1).values ** 2,
    lambda x: x.nansum(1) ** 2,
], ids=["sort", "topk", "kthvalue", "cummax", "cumsum", "logcumsumexp", "median", "nansum"])
def test_second_derivative_selections(fn):
    check_second(fn, [(3, 5)])


# ================================================================================================
# Error messages: the op, the argument and the shape
# ================================================================================================

def test_reduction_errors():
    x = sg.Tensor(np.zeros((2, 3)))
    with pytest.raises(IndexError, match=r"prod.*dim 2.*\(2, 3\)"):
        x.prod(2)
    with pytest.raises(IndexError, match=r"cumsum.*dim -3.*\(2, 3\)"):
        x.cumsum(-3)
    with pytest.raises(TypeError, match="cumprod.*dim"):
        x.cumprod()
    with pytest.raises(IndexError, match=r"cummax.*dim 5.*\(2, 3\)"):
        x.cummax(5)
    with pytest.raises(ValueError, match="vector_norm.*ord"):
        sg.linalg.vector_norm(x, "fro")
    with pytest.raises(IndexError, match=r"median.*empty"):
        sg.Tensor(np.zeros((2, 0))).median(1)


def test_nan_reduction_errors_name_the_op():
    x = sg.Tensor(np.zeros((2, 3)))
    with pytest.raises(IndexError, match=r"nansum.*dim.*\(2, 3\)"):
        x.nansum(dim=(0, 4))
    with pytest.raises(IndexError, match=r"nanmean.*dim.*\(2, 3\)"):
        x.nanmean(dim=4)


def test_selection_errors():
    x = sg.Tensor(np.zeros((2, 3)))
    with pytest.raises(IndexError, match=r"topk.*k \(4\).*size 3.*\(2, 3\)"):
        x.topk(4)
    with pytest.raises(IndexError, match=r"kthvalue.*k \(0\).*\(2, 3\)"):
        x.kthvalue(0)
    with pytest.raises(IndexError, match=r"sort.*dim 2.*\(2, 3\)"):
        x.sort(2)
    with pytest.raises(IndexError, match=r"argsort.*dim -3.*\(2, 3\)"):
        x.argsort(-3)
    with pytest.raises(IndexError, match=r"unique.*dim 2.*\(2, 3\)"):
        x.unique(dim=2)
    with pytest.raises(ValueError, match=r"searchsorted.*\(2, 3\).*\(3, 1\)"):
        sg.searchsorted(x, sg.Tensor(np.zeros((3, 1))))
    with pytest.raises(ValueError, match="searchsorted.*side.*'middle'"):
        sg.searchsorted(x, x, side="middle")
