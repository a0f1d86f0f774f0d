"""Movement, indexing, scatter and creation against PyTorch, through the one helper `check`.

Every movement op is an adjoint pair (its gradient moves the upstream gradient back), so the
helper's random upstream gradient checks it fully. Index arguments are constants of the test,
never inputs of `check`. Scatters run with repeated indices, ties and zeros where the op has a
rule for them (scatter_add, scatter_reduce) and with distinct positions where torch leaves the
winner unspecified (scatter with src, index_copy). Random creation is checked by shape, dtype,
range and statistics with a seed (sg.manual_seed), the deterministic creators against torch.
"""

import numpy as np
import pytest
from helpers import assert_close, assert_same, check, torch
from test_ops import DTYPES, check_second, lib

import simplegrad as sg

pytestmark = pytest.mark.usefixtures("device")

SHAPE = (2, 3, 4)


def joined(pieces):
    """One output from several, each scaled differently, so that each is compared."""
    return lib(pieces[0]).cat([p.reshape(-1) * (i + 1) for i, p in enumerate(pieces)])


def index(values, like):
    """An int64 index tensor of the library of `like`."""
    return lib(like).tensor(np.asarray(values, dtype=np.int64))


# ================================================================================================
# Flips, rolls, rotations, repeats
# ================================================================================================

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn, torch_fn", [
    (lambda x: x.flip(0), None), (lambda x: x.flip(-1), None),
    (lambda x: x.flip(0, 2), lambda x: x.flip((0, 2))), (lambda x: x.flip((1, 2)), None),
    (lambda x: x.flip([0, 1, 2]), None), (lambda x: lib(x).flip(x, (1,)), None),
    (lambda x: x.fliplr(), None), (lambda x: x.flipud(), None),
    (lambda x: lib(x).fliplr(x), None), (lambda x: lib(x).flipud(x), None),
    (lambda x: x.roll(1, 0), None), (lambda x: x.roll(-2, 1), None),
    (lambda x: x.roll((1, 2), (0, 2)), None), (lambda x: x.roll(5, -1), None),
    (lambda x: x.roll(7), None), (lambda x: x.roll(-3), None), (lambda x: x.roll(0, 1), None),
    (lambda x: x.roll(shifts=(-1, 3), dims=(1, 1)), None), (lambda x: lib(x).roll(x, 2, 2), None),
    (lambda x: x.repeat(2, 1, 1), None), (lambda x: x.repeat(1, 2, 3), None),
    (lambda x: x.repeat(2, 1, 1, 2), None), (lambda x: x.repeat((1, 0, 2)), None),
    (lambda x: x.tile(2), lambda x: x.tile((2,))), (lambda x: x.tile((2, 1)), None),
    (lambda x: x.tile(1, 2, 1, 1), lambda x: x.tile((1, 2, 1, 1))),
    (lambda x: lib(x).tile(x, (2, 2, 2)), None),
], ids=["flip0", "flip-1", "flip02_varargs", "flip12", "flip_all", "flip_function", "fliplr",
        "flipud", "fliplr_function", "flipud_function", "roll1", "roll-2", "roll_two",
        "roll_wraps", "roll_flat", "roll_flat_neg", "roll0", "roll_same_dim_twice",
        "roll_function", "repeat_dim0", "repeat_all", "repeat_lead", "repeat_zero", "tile1",
        "tile2", "tile_lead", "tile_function"])
def test_flip_roll_repeat(fn, torch_fn, dtype):
    check(fn, [SHAPE], torch_fn, dtype=dtype)


@pytest.mark.parametrize("dims", [(0, 1), (1, 2), (2, 0), (-1, -2), (1, 0)], ids=str)
@pytest.mark.parametrize("k", [-1, 0, 1, 2, 3, 5])
def test_rot90(k, dims):
    check(lambda x: x.rot90(k, dims), [SHAPE])
    check(lambda x: lib(x).rot90(x, k, list(dims)), [SHAPE], dtype=np.float32)


def test_rot90_default():
    check(lambda x: x.rot90(), [(3, 4)])


@pytest.mark.parametrize("fn, torch_fn", [
    (lambda x: x.repeat_interleave(2), None),
    (lambda x: x.repeat_interleave(3, dim=0), None),
    (lambda x: x.repeat_interleave(2, 1), None),
    (lambda x: x.repeat_interleave(2, dim=-1), None),
    (lambda x: x.repeat_interleave(0, dim=1), None),
    (lambda x: x.repeat_interleave(lib(x).tensor([1, 0, 2]), dim=1), None),
    (lambda x: x.repeat_interleave(lib(x).tensor([3, 1]), dim=0), None),
    (lambda x: x.repeat_interleave(lib(x).tensor(2), dim=2), None),
    (lambda x: lib(x).repeat_interleave(x, 2, dim=1), None),
    (lambda x: x.repeat_interleave(sg.tensor([1, 2, 0, 1]), dim=2),
     lambda x: x.repeat_interleave(torch.tensor([1, 2, 0, 1]), dim=2)),
], ids=["flat", "dim0", "dim1", "dim-1", "zero", "counts", "counts0", "0d_tensor", "function",
        "counts_last"])
def test_repeat_interleave(fn, torch_fn):
    check(fn, [SHAPE], torch_fn)
    check(fn, [SHAPE], torch_fn, dtype=np.float32)


# ================================================================================================
# Triangles and diagonals
# ================================================================================================

@pytest.mark.parametrize("shape", [(3, 4), (4, 3), (2, 3, 4), (1, 1)], ids=str)
@pytest.mark.parametrize("diagonal", [-2, -1, 0, 1, 3])
def test_tril_triu(shape, diagonal):
    check(lambda x: x.tril(diagonal), [shape])
    check(lambda x: x.triu(diagonal=diagonal), [shape])
    check(lambda x: lib(x).tril(x, diagonal), [shape], dtype=np.float32)
    check(lambda x: lib(x).triu(x, diagonal), [shape], dtype=np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", [
    lambda x: x.diagonal(), lambda x: x.diagonal(1), lambda x: x.diagonal(-1),
    lambda x: x.diagonal(3), lambda x: x.diagonal(-2), lambda x: x.diagonal(5),
    lambda x: x.diagonal(0, 1, 2), lambda x: x.diagonal(1, 2, 0), lambda x: x.diagonal(-1, -1, 0),
    lambda x: x.diagonal(offset=2, dim1=-1, dim2=-2), lambda x: lib(x).diagonal(x, 1, 0, 2),
    lambda x: x.diagonal().diag_embed(), lambda x: x.diag_embed(),
    lambda x: x.diag_embed(1), lambda x: x.diag_embed(-2),
    lambda x: x.diag_embed(0, 0, 2), lambda x: x.diag_embed(1, -1, 1),
    lambda x: lib(x).diag_embed(x, offset=-1, dim1=0, dim2=-1),
], ids=["diagonal", "diagonal1", "diagonal-1", "diagonal3", "diagonal-2", "diagonal_empty",
        "diagonal12", "diagonal20", "diagonal_neg_dims", "diagonal_kw", "diagonal_function",
        "diagonal_diag_embed", "diag_embed", "diag_embed1", "diag_embed-2", "diag_embed02",
        "diag_embed_swapped", "diag_embed_function"])
def test_diagonal_diag_embed(fn, dtype):
    check(fn, [(3, 4, 5)], dtype=dtype)


@pytest.mark.parametrize("diagonal", [-2, -1, 0, 1, 2])
def test_diag(diagonal):
    check(lambda x: x.diag(diagonal), [(4,)])
    check(lambda x: x.diag(diagonal), [(3, 4)])
    check(lambda x: lib(x).diag(x, diagonal), [(4, 3)], dtype=np.float32)


def test_trace():
    check(lambda x: x.trace(), [(3, 4)])
    check(lambda x: lib(x).trace(x), [(4, 4)])
    check(lambda x: x.trace(), [(4, 2)], dtype=np.float32)


# ================================================================================================
# Dims: movedim, swapaxes, unflatten, narrow
# ================================================================================================

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", [
    lambda x: x.movedim(0, 2), lambda x: x.movedim(-1, 0), lambda x: x.movedim((0, 1), (2, 0)),
    lambda x: x.movedim([2, 0], [0, 1]), lambda x: x.moveaxis(1, -1),
    lambda x: lib(x).movedim(x, 2, 1), lambda x: lib(x).moveaxis(x, (0, 2), (1, 0)),
    lambda x: x.swapaxes(0, 2), lambda x: x.swapdims(-1, 1), lambda x: lib(x).swapaxes(x, 0, 1),
    lambda x: lib(x).swapdims(x, 2, 2),
    lambda x: x.unflatten(2, (2, 2)), lambda x: x.unflatten(-1, (4, 1)),
    lambda x: x.unflatten(1, (-1, 1)), lambda x: x.unflatten(0, (1, 2, 1)),
    lambda x: lib(x).unflatten(x, 2, (2, -1)),
    lambda x: x.narrow(0, 1, 1), lambda x: x.narrow(1, -3, 2), lambda x: x.narrow(2, 0, 4),
    lambda x: x.narrow(2, 4, 0), lambda x: x.narrow(-1, 1, 2), lambda x: lib(x).narrow(x, 1, 1, 2),
], ids=["movedim02", "movedim-10", "movedim_pairs", "movedim_lists", "moveaxis",
        "movedim_function", "moveaxis_function", "swapaxes", "swapdims", "swapaxes_function",
        "swapdims_same", "unflatten", "unflatten_last", "unflatten_-1", "unflatten_ones",
        "unflatten_function", "narrow0", "narrow_neg_start", "narrow_all", "narrow_empty",
        "narrow_last", "narrow_function"])
def test_dims(fn, dtype):
    check(fn, [SHAPE], dtype=dtype)


# ================================================================================================
# Selecting by index
# ================================================================================================

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", [
    lambda x: x.index_select(0, index([1, 0, 1], x)),
    lambda x: x.index_select(1, index([2, 2, 0, 1], x)),
    lambda x: x.index_select(-1, index([3], x)),
    lambda x: x.index_select(2, index(1, x)),
    lambda x: x.index_select(1, index([], x)),
    lambda x: lib(x).index_select(x, 2, index([0, 3, 0], x)),
    lambda x: x.take_along_dim(index([[[0], [2], [1]]], x), 1),
    lambda x: x.take_along_dim(index([[[0, 3, 3]]], x), 2),          # broadcasts dims 0, 1
    lambda x: x.take_along_dim(index([[[1], [0], [1]], [[0], [0], [1]]], x), 0),
    lambda x: x.take_along_dim(index([5, 0, 23, 5], x)),              # flat, dim=None
    lambda x: x.take_along_dim(index([[7, 1], [2, 2]], x), dim=None),
    lambda x: lib(x).take_along_dim(x, index([[[2, 0]]], x), dim=-1),
    lambda x: x.gather(1, index([[[0, 1], [2, 2]], [[1, 1], [0, 2]]], x)),  # smaller outside
    lambda x: x.gather(2, index([[[3, 0, 0, 1, 2]]], x)),                  # longer along dim
    lambda x: x.gather(0, index([[[1, 0, 1, 1]], [[0, 0, 0, 0]]], x)),
    lambda x: lib(x).gather(x, -1, index([[[1], [2], [3]]], x)),
], ids=["index_select0", "index_select1", "index_select-1", "index_select_0d",
        "index_select_empty", "index_select_function", "take_along_dim1",
        "take_along_dim_broadcast", "take_along_dim0", "take_along_dim_flat",
        "take_along_dim_flat_2d", "take_along_dim_function", "gather_smaller", "gather_longer",
        "gather0", "gather_function"])
def test_index_select_take_along_dim_gather(fn, dtype):
    check(fn, [SHAPE], dtype=dtype)


MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, True, True]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_fill_masked_select(dtype):
    def mask(x, m=MASK):
        return lib(x).tensor(m)

    check(lambda x: x.masked_fill(mask(x), 2.5), [SHAPE], dtype=dtype)
    check(lambda x: x.masked_fill(mask(x, MASK[:, :1]), -1.0), [SHAPE], dtype=dtype)
    check(lambda x: lib(x).masked_fill(x, mask(x), 0.0), [SHAPE], dtype=dtype)
    # a 0-d tensor value gets the gradient of every position it fills
    check(lambda x, v: x.masked_fill(mask(x), v), [SHAPE, ()], dtype=dtype)
    check(lambda x: x.masked_select(mask(x)), [SHAPE], dtype=dtype)
    check(lambda x: x.masked_select(mask(x, MASK[0])), [SHAPE], dtype=dtype)
    check(lambda x: lib(x).masked_select(x, mask(x, MASK[:1, :1])), [(3, 4)], dtype=dtype)
    check(lambda x: x.masked_select(mask(x)), [(3, 1)], dtype=dtype)  # x broadcast to the mask


# fn and the input's shape (diff's second pass slices its empty first difference; flip is a
# reversed slice)
@pytest.mark.parametrize("fn, shape", [
    (lambda x: x[1:], (0,)), (lambda x: x[:, 1:], (2, 0)),
    (lambda x: x[:-1], (0, 3)), (lambda x: x.narrow(1, 0, 0), (2, 0)),
    (lambda x: x.diff(2, 0), (1, 3)), (lambda x: x.flip(0), (0, 2)),
    (lambda x: x.roll(1, 1), (2, 0)), (lambda x: x.tril(), (0, 3)),
    (lambda x: x.diagonal(), (0, 3)),
], ids=["slice_1d", "slice_2d", "slice_end", "narrow", "diff_to_empty", "flip", "roll", "tril",
        "diagonal"])
def test_movement_of_empty_tensors(fn, shape):
    out = check(fn, [shape])
    assert out.numel() == 0


# ---- __getitem__: torch's placement of dims when ints and index arrays mix -----------------------

GETITEM_KEYS = [
    (0, slice(None), [1, 2]),
    ([0, 1], slice(None), 0),
    (slice(None), 0, [1, 2]),
    (0, [1, 2], [0, 1]),
    ([0], 1, [2]),
    (1, slice(None), [[0, 1], [2, 3]]),
    (Ellipsis, 0, [1, 2]),
    (0, None, slice(None), [1, 2]),
    ([1, 0], 2, slice(1, 3), [4, 0]),
    (0, slice(None), slice(None), [3, 3, 1]),
    (-1, [0, 2], slice(None), -2),
    (slice(None), [0, 2], 1, [3, 4]),
    (1, [[0], [2]], slice(None), [1, 3]),
    (slice(None), 1, [0, 0], slice(None)),
    (0, 1, [2, 0, 2]),
    ([1], slice(None), -1, slice(1, None)),
    ((0, 1), slice(None)),                 # a tuple inside an index is a sequence
    ((1, 0, 1),),
    (slice(None), (2, 0)),
    (0, (1, 2), slice(None), (4, 0)),
    ((0, 1), 2, (3, 3)),
    (1, Ellipsis, (0, 4)),
]


@pytest.mark.parametrize("key", GETITEM_KEYS, ids=str)
def test_getitem_mixed_keys(key):
    out = check(lambda x: x[key], [(2, 3, 4, 5)])
    assert out.shape == tuple(torch.zeros(2, 3, 4, 5)[key].shape)


def test_getitem_mixed_keys_with_tensors():
    check(lambda x: x[0, :, lib(x).tensor([1, 2])], [(2, 3, 4)])
    check(lambda x: x[lib(x).tensor([1, 0]), 1, lib(x).tensor([0, 3])], [(2, 3, 4)])
    check(lambda x: x[lib(x).tensor(1), :, [0, 0]], [(2, 3, 4)])
    check(lambda x: x[0, lib(x).tensor([True, False, True])], [(2, 3, 4)])
    check(lambda x: x[1, :, lib(x).tensor([[3], [1]])], [(2, 3, 4)], dtype=np.float32)


# ================================================================================================
# Scatter and index_*: the gradient of each written value goes back to it
# ================================================================================================

def _distinct_rows(shape, n, dim, seed=0):
    """An index of `shape` with values below n and no repeat along dim (torch's scatter leaves
    the winner of a repeated position unspecified)."""
    rng = np.random.default_rng(seed)
    moved = (shape[dim],) + tuple(m for i, m in enumerate(shape) if i != dim)
    rows = np.stack([rng.permutation(n)[:shape[dim]] for _ in range(int(np.prod(moved[1:])))], -1)
    return np.moveaxis(rows.reshape(moved), 0, dim)


def _check_larger_src(fn, idx, dtype):
    """src larger than index: only its leading part is read, as torch. torch's backward fails
    there (it returns src's gradient in index's shape), so the forward is torch's and the
    gradient of src is, by hand, the gradient of its leading part padded with zeros."""
    rng = np.random.default_rng(1)
    a, big = rng.uniform(-2, 2, SHAPE).astype(dtype), rng.uniform(-2, 2, (3, 3, 4)).astype(dtype)
    lead = tuple(slice(0, m) for m in idx.shape)
    x, s = sg.Tensor(a, requires_grad=True), sg.Tensor(big, requires_grad=True)
    out = fn(x, sg.Tensor(idx), s)
    assert_close(out, fn(torch.tensor(a), torch.tensor(idx), torch.tensor(big)), dtype)
    g = rng.standard_normal(SHAPE).astype(dtype)
    out.backward(sg.Tensor(g))
    ref_s = torch.tensor(big[lead].copy(), requires_grad=True)
    fn(torch.tensor(a), torch.tensor(idx), ref_s).backward(torch.tensor(g))
    expected = np.zeros_like(big)
    expected[lead] = ref_s.grad.numpy()
    assert_close(s.grad, expected, dtype, what="gradient of the larger src")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_scatter_src_and_value(dim, dtype):
    ishape = tuple(min(n, 2) if i != dim % 3 else 2 for i, n in enumerate(SHAPE))
    idx = _distinct_rows(ishape, SHAPE[dim], dim % 3, seed=dim % 3 + 3)
    check(lambda x, s: x.scatter(dim, index(idx, x), s), [SHAPE, ishape], dtype=dtype)
    check(lambda x, s: lib(x).scatter(x, dim, index(idx, x), s), [SHAPE, ishape], dtype=dtype)
    _check_larger_src(lambda x, i, s: x.scatter(dim, i, s), idx, dtype)
    check(lambda x: x.scatter(dim, index(idx, x), value=2.5), [SHAPE],
          lambda x: x.scatter(dim, index(idx, x), 2.5), dtype=dtype)
    check(lambda x: x.scatter(dim, index(idx, x), -1.0), [SHAPE], dtype=dtype)


@pytest.mark.filterwarnings("ignore:The reduce argument of torch.scatter:UserWarning")
@pytest.mark.parametrize("reduce", ["add", "multiply"])
def test_scatter_reduce_argument(reduce):
    idx = np.array([[0, 1, 0], [2, 2, 2]])
    check(lambda x, s: x.scatter(1, index(idx, x), s, reduce=reduce), [(2, 4), (2, 3)],
          grad=False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scatter_add(dim, dtype):
    rng = np.random.default_rng(dim + 5)
    ishape = (2, 3, 3) if dim != 0 else (3, 2, 4)
    idx = rng.integers(0, SHAPE[dim], ishape)  # repeated positions add up
    check(lambda x, s: x.scatter_add(dim, index(idx, x), s), [SHAPE, ishape], dtype=dtype)
    check(lambda x, s: lib(x).scatter_add(x, dim, index(idx, x), s), [SHAPE, ishape],
          dtype=dtype)
    _check_larger_src(lambda x, i, s: x.scatter_add(dim, i, s), idx, dtype)


def _scatter_reduce_cases():
    rng = np.random.default_rng(0)
    ties = rng.integers(0, 3, (3, 5)).astype(np.float64)
    zeros = np.where(rng.random((3, 5)) < 0.3, 0.0, rng.uniform(-2, 2, (3, 5)))
    return {
        "random": (rng.uniform(-2, 2, (3, 5)), rng.uniform(-2, 2, (3, 4))),
        "ties": (ties, rng.integers(0, 3, (3, 4)).astype(np.float64)),
        "zeros": (zeros, np.where(rng.random((3, 4)) < 0.3, 0.0, rng.uniform(-2, 2, (3, 4)))),
    }


SCATTER_REDUCE_CASES = _scatter_reduce_cases()
# repeated positions along dim 1; position 4 of each row is never written
SCATTER_REDUCE_INDEX = np.array([[0, 0, 1, 3], [2, 2, 2, 2], [3, 1, 0, 1]])


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("data", sorted(SCATTER_REDUCE_CASES))
@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
def test_scatter_reduce(reduce, data, include_self):
    x, src = SCATTER_REDUCE_CASES[data]
    check(lambda x, s: x.scatter_reduce(1, index(SCATTER_REDUCE_INDEX, x), s, reduce,
                                        include_self=include_self), None, inputs=[x, src])
    # along dim 0, an index shorter than the input outside dim (4 of its 5 columns)
    check(lambda x, s: x.scatter_reduce(0, index(SCATTER_REDUCE_INDEX[:2] % 3, x), s,
                                        reduce=reduce, include_self=include_self), None,
          inputs=[x, src[:2]])


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
def test_scatter_reduce_float32_and_function(reduce):
    x, src = SCATTER_REDUCE_CASES["random"]
    check(lambda x, s: lib(x).scatter_reduce(x, 1, index(SCATTER_REDUCE_INDEX, x), s, reduce),
          None, inputs=[x, src], dtype=np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_add_copy_fill(dim, dtype):
    n = SHAPE[dim]
    repeated = np.array([1, 0, 1, n - 1, 1])
    distinct = np.random.default_rng(dim % 3).permutation(n)[:2]
    source = list(SHAPE)
    source[dim] = len(repeated)
    check(lambda x, s: x.index_add(dim, index(repeated, x), s), [SHAPE, tuple(source)],
          dtype=dtype)
    check(lambda x, s: x.index_add(dim, index(repeated, x), s, alpha=-2.5),
          [SHAPE, tuple(source)], dtype=dtype)
    check(lambda x, s: lib(x).index_add(x, dim, index(repeated, x), s),
          [SHAPE, tuple(source)], dtype=dtype)
    source[dim] = 2
    check(lambda x, s: x.index_copy(dim, index(distinct, x), s), [SHAPE, tuple(source)],
          dtype=dtype)
    check(lambda x, s: lib(x).index_copy(x, dim, index(distinct, x), s),
          [SHAPE, tuple(source)], dtype=dtype)
    check(lambda x: x.index_fill(dim, index(repeated, x), -1.5), [SHAPE], dtype=dtype)
    check(lambda x: lib(x).index_fill(x, dim, index(distinct, x), 3.0), [SHAPE], dtype=dtype)


def test_scatter_second_derivative():
    idx = np.array([[0, 0, 1, 3], [2, 2, 2, 2], [3, 1, 0, 1]])
    check_second(lambda x, s: x.scatter_add(1, index(idx, x), s * s).tanh(), [(3, 5), (3, 4)])
    check_second(lambda x, s: x.scatter_reduce(1, index(idx, x), s, "prod").sin(),
                 [(3, 5), (3, 4)])
    check_second(lambda x: x.gather(1, index(idx, x)) ** 3, [(3, 5)])
    check_second(lambda x: x.index_select(0, index([2, 0, 2], x)).exp(), [(3, 5)])


# ================================================================================================
# Products and joins: meshgrid, outer, inner, kron, cross, tensordot, diff, stacks, splits
# ================================================================================================

@pytest.mark.parametrize("indexing", ["ij", "xy"])
def test_meshgrid(indexing):
    check(lambda a, b: joined(lib(a).meshgrid(a, b, indexing=indexing)), [(3,), (4,)])
    check(lambda a, b, c: joined(lib(a).meshgrid(a, b, c, indexing=indexing)),
          [(2,), (3,), (4,)])
    check(lambda a, b: joined(lib(a).meshgrid([a, b], indexing=indexing)), [(3,), (1,)])
    check(lambda a: joined(lib(a).meshgrid(a, indexing=indexing)), [(3,)])
    check(lambda a, b: joined(lib(a).meshgrid(a, b, indexing=indexing)), [(3,), (4,)],
          dtype=np.float32)


def test_meshgrid_default_is_ij():
    a, b = sg.Tensor(np.arange(3.0)), sg.Tensor(np.arange(4.0))
    xs, ys = sg.meshgrid(a, b)
    assert xs.shape == ys.shape == (3, 4)
    np.testing.assert_array_equal(xs.numpy(), np.meshgrid(np.arange(3.0), np.arange(4.0),
                                                          indexing="ij")[0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn, shapes, torch_fn", [
    (lambda a, b: lib(a).outer(a, b), [(3,), (4,)], None),
    (lambda a, b: a.outer(b), [(3,), (4,)], None),
    (lambda a, b: a.ger(b), [(3,), (1,)], lambda a, b: torch.outer(a, b)),
    (lambda a, b: lib(a).inner(a, b), [(3, 4), (5, 4)], None),
    (lambda a, b: lib(a).inner(a, b), [(4,), (4,)], None),
    (lambda a, b: a.inner(b), [(2, 3, 4), (4,)], None),
    (lambda a, b: lib(a).inner(a, b), [(), (3,)], None),
    (lambda a, b: lib(a).kron(a, b), [(2, 3), (3, 2)], None),
    (lambda a, b: lib(a).kron(a, b), [(2,), (3,)], None),
    (lambda a, b: a.kron(b), [(2, 1, 2), (3, 2)], None),
    (lambda a, b: lib(a).kron(a, b), [(3,), (2, 2)], None),
    (lambda a, b: lib(a).cross(a, b, dim=-1), [(4, 3), (4, 3)], None),
    (lambda a, b: lib(a).cross(a, b, dim=0), [(3, 5), (3, 5)], None),
    (lambda a, b: lib(a).cross(a, b, dim=1), [(1, 3), (4, 3)], None),
    (lambda a, b: a.cross(b), [(2, 3, 3), (2, 3, 3)], lambda a, b: a.cross(b, dim=1)),
    (lambda a, b: sg.cross(a, b) if isinstance(a, sg.Tensor) else torch.cross(a, b, dim=1),
     [(4, 3, 2), (4, 3, 2)], None),
    (lambda a, b: lib(a).linalg.cross(a, b), [(5, 3), (5, 3)], None),
    (lambda a, b: lib(a).tensordot(a, b, 2), [(2, 3, 4), (3, 4, 5)], None),
    (lambda a, b: lib(a).tensordot(a, b, dims=1), [(2, 3, 4), (4, 5)], None),
    (lambda a, b: lib(a).tensordot(a, b, 0), [(2, 3), (2,)], None),
    (lambda a, b: lib(a).tensordot(a, b, ([1, 0], [0, 1])), [(2, 3, 4), (3, 2, 5)], None),
    (lambda a, b: lib(a).tensordot(a, b, dims=([2], [0])), [(2, 3, 4), (4, 2)], None),
], ids=["outer", "outer_method", "ger", "inner", "inner_1d", "inner_method", "inner_0d",
        "kron", "kron_1d", "kron_3d", "kron_mixed", "cross", "cross_dim0", "cross_broadcast",
        "cross_first_dim_of_3", "cross_function_default", "linalg_cross", "tensordot2",
        "tensordot1", "tensordot0", "tensordot_pairs", "tensordot_lists"])
def test_products(fn, shapes, torch_fn, dtype):
    check(fn, shapes, torch_fn, dtype=dtype)


@pytest.mark.parametrize("fn", [
    lambda x: x.diff(), lambda x: x.diff(2), lambda x: x.diff(dim=0), lambda x: x.diff(1, 1),
    lambda x: x.diff(n=3, dim=-1), lambda x: lib(x).diff(x, 1, 0),
    lambda x: x.diff(prepend=x[:, :, :1] * 2), lambda x: x.diff(append=x[:, :, :2] - 1),
    lambda x: x.diff(2, 1, x[:, :1] + 1, x[:, -2:] ** 2), lambda x: x.diff(4, -1),
], ids=["default", "n2", "dim0", "dim1", "n3", "function", "prepend", "append", "both",
        "n_is_size"])
def test_diff(fn):
    check(fn, [SHAPE])
    check(fn, [SHAPE], dtype=np.float32)


@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 3, 4)], ids=str)
@pytest.mark.parametrize("name", ["atleast_1d", "atleast_2d", "atleast_3d"])
def test_atleast(name, shape):
    out = check(lambda x: getattr(lib(x), name)(x), [shape])
    assert out.ndim == max(len(shape), int(name[8]))
    check(lambda x, y: joined(getattr(lib(x), name)(x, y)), [shape, (2,)])
    check(lambda x, y: joined(getattr(lib(x), name)([x, y])), [shape, ()])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, shapes", [
    ("hstack", [(3,), (2,)]), ("hstack", [(2, 3), (2, 1)]), ("hstack", [(2, 3, 1), (2, 2, 1)]),
    ("vstack", [(3,), (3,)]), ("vstack", [(2, 3), (1, 3)]), ("vstack", [(3,), (2, 3)]),
    ("dstack", [(3,), (3,)]), ("dstack", [(2, 3), (2, 3)]), ("dstack", [(2, 3, 1), (2, 3, 2)]),
    ("column_stack", [(3,), (3,)]), ("column_stack", [(3, 2), (3,)]),
    ("column_stack", [(), ()]), ("row_stack", [(3,), (2, 3)]),
], ids=str)
def test_stacks(name, shapes, dtype):
    check(lambda *ts: getattr(lib(ts[0]), name)(list(ts)), shapes, dtype=dtype)
    check(lambda *ts: getattr(lib(ts[0]), name)(tuple(ts)), shapes, dtype=dtype)


@pytest.mark.parametrize("fn, shape", [
    (lambda x: lib(x).hsplit(x, 2), (3, 4)), (lambda x: lib(x).hsplit(x, [1, 3]), (3, 4)),
    (lambda x: lib(x).hsplit(x, 3), (6,)), (lambda x: lib(x).hsplit(x, 2), (2, 4, 3)),
    (lambda x: lib(x).vsplit(x, 3), (3, 4)), (lambda x: lib(x).vsplit(x, [2]), (3, 4)),
    (lambda x: lib(x).dsplit(x, 2), (2, 3, 4)), (lambda x: lib(x).dsplit(x, [1, 1, 3]), (2, 3, 4)),
    (lambda x: lib(x).tensor_split(x, 3), (7, 2)), (lambda x: lib(x).tensor_split(x, 3, 1),
                                                    (2, 5)),
    (lambda x: lib(x).tensor_split(x, [1, 4], dim=1), (2, 5)),
    (lambda x: lib(x).tensor_split(x, [-2, 1, 9]), (5,)),
    (lambda x: lib(x).tensor_split(x, 7), (3, 2)),
    (lambda x: x.tensor_split(2) if isinstance(x, torch.Tensor) else sg.tensor_split(x, 2),
     (5, 2)),
], ids=["hsplit2", "hsplit_at", "hsplit_1d", "hsplit_3d", "vsplit3", "vsplit_at", "dsplit2",
        "dsplit_at", "tensor_split3", "tensor_split_dim1", "tensor_split_at",
        "tensor_split_unordered", "tensor_split_more_than_size", "tensor_split_method"])
def test_splits(fn, shape):
    check(lambda x: joined(fn(x)), [shape])
    a = np.random.default_rng(0).uniform(-2, 2, shape)
    out, ref = fn(sg.Tensor(a)), fn(torch.tensor(a))
    assert len(out) == len(ref)
    for i, (o, r) in enumerate(zip(out, ref)):
        assert_close(o, r, what=f"piece {i}")


@pytest.mark.parametrize("sections", [3, [1, 3], [2, 2, 5]], ids=str)
def test_array_split_matches_numpy(sections):
    a = np.random.default_rng(0).uniform(-2, 2, (5, 4))
    out = sg.array_split(sg.Tensor(a), sections)
    expected = np.array_split(a, sections)
    assert isinstance(out, list) and len(out) == len(expected)
    for o, e in zip(out, expected):
        assert_close(o, e)
    out = sg.array_split(sg.Tensor(a), sections, axis=1)
    for o, e in zip(out, np.array_split(a, sections, axis=1)):
        assert_close(o, e)
    check(lambda x: joined(sg.array_split(x, sections) if isinstance(x, sg.Tensor)
                           else torch.tensor_split(x, sections)), None, inputs=[a])


@pytest.mark.parametrize("operands", [
    pytest.param(lambda a, b: (a, [0, 1], b, [1, 2], [0, 2]), id="matmul"),
    pytest.param(lambda a, b: (a, [0, 1], b, [1, 2]), id="implicit"),
    pytest.param(lambda a, b: (a, [1, 0], b, [0, 2], [2, 1]), id="transposed"),
    pytest.param(lambda a, b: (a, [0, 1], b, [1, 2], []), id="full_sum"),
    pytest.param(lambda a, b: (a, [Ellipsis, 1], b, [1, 2], [Ellipsis, 2]), id="ellipsis"),
    pytest.param(lambda a, b: (a, [Ellipsis, 1], b, [1, 2]), id="ellipsis_implicit"),
    pytest.param(lambda a, b: (a, [0, 1], [1, 0]), id="one_operand"),
    pytest.param(lambda a, b: (a[:, :3], [0, 0]), id="one_operand_trace"),
])
def test_einsum_sublist_form(operands):
    def fn(a, b):
        args = operands(a, b)
        return lib(a).einsum(*args)

    check(fn, [(3, 4), (4, 5)])
    check(fn, [(3, 4), (4, 5)], dtype=np.float32)


# ================================================================================================
# dtypes through the joins
# ================================================================================================

@pytest.mark.parametrize("dtype", [np.bool_, np.int32, np.uint8, np.int64, np.float32])
def test_cat_keeps_dtype(dtype):
    a = np.array([[1, 0, 1]], dtype=dtype)
    b = np.array([[0, 1, 1], [1, 1, 0]], dtype=dtype)
    assert_same(sg.cat([sg.Tensor(a), sg.Tensor(b)]), torch.cat([torch.tensor(a), torch.tensor(b)]),
                "cat")
    assert_same(sg.stack([sg.Tensor(b), sg.Tensor(b)], 1),
                torch.stack([torch.tensor(b), torch.tensor(b)], 1), "stack")


DTYPE_KEEPERS = {
    "flip": lambda v: v.flip(0), "rot90": lambda v: v.rot90(), "roll": lambda v: v.roll(1, 1),
    "repeat": lambda v: v.repeat(2, 1), "tile": lambda v: v.tile(2),
    "repeat_interleave": lambda v: v.repeat_interleave(2, 0), "tril": lambda v: v.tril(),
    "triu": lambda v: v.triu(1), "diagonal": lambda v: v.diagonal(),
    "diag_embed": lambda v: v.diag_embed(), "diag": lambda v: v[0].diag(),
    "movedim": lambda v: v.movedim(0, 1), "narrow": lambda v: v.narrow(1, 1, 2),
    "masked_fill": lambda v: v.masked_fill(v > 0, 1),
    "index_select": lambda v: v.index_select(1, index([0, 0, 3], v)),
    "gather": lambda v: v.gather(1, index([[0], [1], [3]], v)),
    "take_along_dim": lambda v: v.take_along_dim(index([[2, 0]], v), 1),
}


@pytest.mark.parametrize("dtype", [np.bool_, np.int32, np.int64])
@pytest.mark.parametrize("name", sorted(DTYPE_KEEPERS))
def test_movement_keeps_dtype(name, dtype):
    a = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    fn = DTYPE_KEEPERS[name]
    assert_same(fn(sg.Tensor(a)), fn(torch.tensor(a)), f"{name} of {np.dtype(dtype).name}")


# ================================================================================================
# Creation and random
# ================================================================================================

@pytest.mark.parametrize("fill, dtype", [
    (1.5, None), (7, None), (True, None), (-2, sg.float64), (3.25, sg.float32), (5, sg.int32),
    (0, np.uint8), (2.0, np.int64), (1, np.bool_), (-0.5, sg.float16),
], ids=str)
def test_full(fill, dtype):
    out = sg.full((2, 3), fill, dtype=dtype)
    tdtype = None if dtype is None else getattr(torch, np.dtype(dtype).name if np.dtype(
        dtype) != np.bool_ else "bool")
    assert_same(out, torch.full((2, 3), fill, dtype=tdtype), f"full({fill!r}, {dtype})")
    assert_same(sg.full([4], fill, dtype=dtype), torch.full([4], fill, dtype=tdtype),
                "full, a list")
    like = sg.Tensor(np.zeros((3, 1), dtype=np.float64))
    assert_same(sg.full_like(like, fill),
                torch.full_like(torch.zeros(3, 1, dtype=torch.float64), fill), "full_like")


def test_full_requires_grad():
    x = sg.full((2,), 1.5, requires_grad=True)
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


@pytest.mark.parametrize("size, dtype", [((2, 3), None), ((4,), sg.float64), ((0, 2), sg.int64),
                                         ((), sg.float32)], ids=str)
def test_empty_and_empty_like(size, dtype):
    out = sg.empty(*size) if dtype is None else sg.empty(size, dtype=dtype)
    assert out.shape == size and out.dtype == (dtype or np.float32)
    assert out.device is sg.Tensor.device
    like = sg.empty_like(sg.Tensor(np.ones((3, 2), dtype=np.int32)))
    assert like.shape == (3, 2) and like.dtype == np.int32
    like = sg.empty_like(sg.Tensor(np.ones((3, 2))), dtype=sg.float32)
    assert like.dtype == np.float32
    assert sg.empty(2, 3, requires_grad=True).requires_grad


def test_randint_randint_like_randperm():
    sg.manual_seed(0)
    a = sg.randint(3, 10, (2000,))
    assert a.dtype == np.int64 and a.shape == (2000,)
    values = a.numpy()
    assert values.min() == 3 and values.max() == 9  # both ends reached, high excluded
    counts = np.bincount(values - 3, minlength=7)
    assert counts.min() > 2000 / 7 * 0.7  # roughly uniform
    b = sg.randint(5, (3, 4))
    assert b.shape == (3, 4) and (b.numpy() >= 0).all() and (b.numpy() < 5).all()
    c = sg.randint(-2, 2, size=(100,), dtype=sg.int32)
    assert c.dtype == np.int32 and set(np.unique(c.numpy())) <= {-2, -1, 0, 1}
    like = sg.randint_like(sg.Tensor(np.zeros((4, 5))), 7)
    assert like.shape == (4, 5) and like.dtype == np.float64
    assert (like.numpy() == np.round(like.numpy())).all() and like.numpy().max() < 7
    like = sg.randint_like(sg.Tensor(np.zeros(50, dtype=np.int32)), 2, 4)
    assert like.dtype == np.int32 and set(np.unique(like.numpy())) == {2, 3}
    p = sg.randperm(20)
    assert p.dtype == np.int64
    np.testing.assert_array_equal(np.sort(p.numpy()), np.arange(20))
    assert not np.array_equal(p.numpy(), np.arange(20))
    assert sg.randperm(5, dtype=sg.float32).dtype == np.float32
    assert sg.randperm(0).shape == (0,)


def test_random_creation_is_seeded():
    def draw():
        return [sg.randint(0, 100, (5,)).numpy(), sg.randperm(8).numpy(),
                sg.normal(0.0, 1.0, (4,)).numpy(),
                sg.bernoulli(sg.Tensor(np.full(6, 0.5))).numpy(),
                sg.multinomial(sg.Tensor(np.ones(6)), 3).numpy(), sg.randn(3).numpy(),
                sg.rand(3).numpy()]

    sg.manual_seed(123)
    first = draw()
    sg.manual_seed(123)
    second = draw()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    sg.manual_seed(124)
    assert not all(np.array_equal(a, b) for a, b in zip(first, draw()))


def test_normal():
    sg.manual_seed(1)
    x = sg.normal(2.0, 3.0, (20000,))
    assert x.dtype == np.float32 and x.shape == (20000,)
    assert abs(x.numpy().mean() - 2.0) < 0.1 and abs(x.numpy().std() - 3.0) < 0.1
    assert sg.normal(0.0, 1.0, size=(2, 3), dtype=sg.float64).dtype == np.float64
    # tensor mean and std: their broadcast shape, each element its own parameters
    mean = sg.Tensor(np.array([[-100.0], [0.0], [100.0]]), requires_grad=True)
    std = sg.Tensor(np.array([0.01, 1.0, 0.1, 0.5]), requires_grad=True)
    y = sg.normal(mean, std)
    assert y.shape == (3, 4) and y.dtype == np.float64
    assert (np.abs(y.numpy() - mean.numpy()) < 5 * std.numpy()).all()
    # a zero gradient flows to tensor parameters, as torch's (no reparameterisation)
    tmean = torch.tensor(mean.numpy(), requires_grad=True)
    tstd = torch.tensor(std.numpy(), requires_grad=True)
    torch.normal(tmean, tstd).sum().backward()
    y.sum().backward()
    assert_close(mean.grad, tmean.grad)
    assert_close(std.grad, tstd.grad)
    z = sg.normal(sg.Tensor(np.zeros(5000)), 2.0)
    assert z.shape == (5000,) and abs(z.numpy().std() - 2.0) < 0.1


def test_bernoulli():
    sg.manual_seed(2)
    p = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    draws = np.stack([sg.bernoulli(sg.Tensor(p)).numpy() for _ in range(400)])
    assert draws.dtype == np.float64 and set(np.unique(draws)) <= {0.0, 1.0}
    np.testing.assert_array_equal(draws[:, 0], 0.0)
    np.testing.assert_array_equal(draws[:, 4], 1.0)
    np.testing.assert_allclose(draws.mean(0), p, atol=0.07)
    x = sg.Tensor(np.zeros((3, 1000), dtype=np.float32))
    out = sg.bernoulli(x, 0.3)
    assert out.dtype == np.float32 and out.shape == (3, 1000)
    assert abs(out.numpy().mean() - 0.3) < 0.03
    q = sg.Tensor(np.full((4,), 0.5), requires_grad=True)
    out = q.bernoulli()
    assert out.requires_grad
    (out * 3).sum().backward()
    np.testing.assert_array_equal(q.grad.numpy(), np.zeros(4))  # as torch: a zero gradient


def test_multinomial():
    sg.manual_seed(3)
    w = np.array([0.0, 1.0, 2.0, 0.0, 5.0])
    out = sg.multinomial(sg.Tensor(w), 3)
    assert out.dtype == np.int64 and out.shape == (3,)
    assert sorted(out.numpy().tolist()) == [1, 2, 4]  # without replacement: the nonzero ones
    many = sg.multinomial(sg.Tensor(w), 8000, replacement=True).numpy()
    assert not np.isin(many, [0, 3]).any()
    np.testing.assert_allclose(np.bincount(many, minlength=5) / 8000, w / w.sum(), atol=0.03)
    rows = sg.multinomial(sg.Tensor(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])), 2,
                          replacement=True)
    np.testing.assert_array_equal(rows.numpy(), [[0, 0], [2, 2]])
    distinct = sg.multinomial(sg.Tensor(np.ones((4, 6))), 6).numpy()
    assert all(sorted(row) == list(range(6)) for row in distinct.tolist())


@pytest.mark.parametrize("start, end, steps", [(0, 1, 5), (-2.5, 3.0, 12), (3, -3, 7),
                                               (1, 1, 3), (0, 10, 1), (0, 1, 0)], ids=str)
def test_linspace_logspace(start, end, steps):
    assert_same(sg.linspace(start, end, steps), torch.linspace(start, end, steps), "linspace")
    for dtype, tdtype in [(sg.float64, torch.float64), (sg.float32, torch.float32)]:
        out = sg.linspace(start, end, steps, dtype=dtype)
        assert out.dtype == dtype
        assert_close(out, torch.linspace(start, end, steps, dtype=tdtype), dtype,
                     what="linspace")
        out = sg.logspace(start, end, steps, dtype=dtype)
        assert out.dtype == dtype
        assert_close(out, torch.logspace(start, end, steps, dtype=tdtype), dtype,
                     what="logspace")
        assert_close(sg.logspace(start, end, steps, base=2.0, dtype=dtype),
                     torch.logspace(start, end, steps, base=2.0, dtype=tdtype), dtype,
                     what="logspace base 2")
    assert sg.logspace(start, end, steps).dtype == np.float32


@pytest.mark.parametrize("row, col, offset", [(3, 3, 0), (4, 3, 0), (3, 5, 1), (4, 4, -1),
                                              (3, 4, 5), (3, 4, -5), (1, 1, 0), (0, 3, 0)],
                         ids=str)
def test_tril_triu_indices(row, col, offset):
    assert_same(sg.tril_indices(row, col, offset), torch.tril_indices(row, col, offset), "tril")
    assert_same(sg.triu_indices(row, col, offset), torch.triu_indices(row, col, offset), "triu")
    assert_same(sg.tril_indices(row, col, offset, dtype=sg.int32),
                torch.tril_indices(row, col, offset, dtype=torch.int32), "tril int32")


# ================================================================================================
# Error messages: the op, the argument and the shapes
# ================================================================================================

def test_indexing_errors():
    x = sg.Tensor(np.zeros((3, 4)))
    with pytest.raises(IndexError, match=r"gather.*out of range.*\(3, 4\)"):
        x.gather(1, sg.Tensor(np.array([[0, 4]])))
    with pytest.raises(IndexError, match=r"gather.*out of range"):
        x.gather(0, sg.Tensor(np.array([[-1, 0]])))
    with pytest.raises(RuntimeError, match=r"gather.*\(4, 1\).*\(3, 4\)"):
        x.gather(1, sg.Tensor(np.zeros((4, 1), dtype=np.int64)))
    with pytest.raises(TypeError, match="gather.*integer"):
        x.gather(1, sg.Tensor(np.zeros((3, 1))))
    with pytest.raises(IndexError, match=r"index_select.*\(2, 2\)"):
        x.index_select(0, sg.Tensor(np.zeros((2, 2), dtype=np.int64)))
    with pytest.raises(IndexError, match=r"index_select.*out of range.*\(3, 4\)"):
        x.index_select(0, sg.Tensor(np.array([3])))
    with pytest.raises(ValueError, match=r"take_along_dim.*\(2,\).*\(3, 4\)"):
        x.take_along_dim(sg.Tensor(np.array([0, 1])), 1)
    with pytest.raises(IndexError, match=r"narrow.*size 4.*\(3, 4\)"):
        x.narrow(1, 2, 3)
    with pytest.raises(TypeError, match="masked_fill.*bool"):
        x.masked_fill(sg.Tensor(np.ones((3, 4))), 0.0)
    with pytest.raises(RuntimeError, match=r"masked_fill.*\(2, 3, 4\).*\(3, 4\)"):
        x.masked_fill(sg.Tensor(np.ones((2, 3, 4), dtype=bool)), 0.0)


def test_scatter_errors():
    x = sg.Tensor(np.zeros((3, 4)))
    idx = sg.Tensor(np.array([[0, 1]]))
    with pytest.raises(IndexError, match=r"scatter_add.*out of range.*\(3, 4\)"):
        x.scatter_add(1, sg.Tensor(np.array([[0, 4]])), sg.Tensor(np.ones((1, 2))))
    with pytest.raises(RuntimeError, match=r"scatter.*\(1, 2\).*\(3, 4\).*\(1, 1\)"):
        x.scatter(1, idx, sg.Tensor(np.ones((1, 1))))
    with pytest.raises(TypeError, match="scatter.*integer"):
        x.scatter(1, sg.Tensor(np.zeros((1, 2))), 1.0)
    with pytest.raises(ValueError, match="scatter_reduce.*'max'"):
        x.scatter_reduce(1, idx, sg.Tensor(np.ones((1, 2))), "max")
    with pytest.raises(RuntimeError, match=r"index_add.*\(2, 4\).*\(1, 4\)"):
        x.index_add(0, sg.Tensor(np.array([0])), sg.Tensor(np.ones((2, 4))))
    with pytest.raises(IndexError, match=r"index_copy.*out of range"):
        x.index_copy(0, sg.Tensor(np.array([5])), sg.Tensor(np.ones((1, 4))))


def test_movement_errors():
    x = sg.Tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"rot90.*\(3, 4\)"):
        x.rot90(1, (0, 0))
    with pytest.raises(ValueError, match=r"repeat.*1 sizes.*\(3, 4\)"):
        x.repeat(2)
    with pytest.raises(ValueError, match=r"diagonal.*\(3, 4\)"):
        x.diagonal(0, 1, 1)
    with pytest.raises(ValueError, match=r"fliplr.*\(3,\)"):
        sg.Tensor(np.zeros(3)).fliplr()
    with pytest.raises(ValueError, match=r"tril.*\(3,\)"):
        sg.Tensor(np.zeros(3)).tril()
    with pytest.raises(ValueError, match=r"trace.*\(2, 3, 4\)"):
        sg.Tensor(np.zeros((2, 3, 4))).trace()
    with pytest.raises(IndexError, match=r"movedim.*dim 2.*\(3, 4\)"):
        x.movedim(2, 0)
    with pytest.raises(ValueError, match="roll.*2 shifts for 1 dims"):
        x.roll((1, 2), 0)
    with pytest.raises(ValueError, match=r"repeat_interleave.*3.*dim 1 of size 4"):
        x.repeat_interleave(sg.tensor([1, 2, 3]), dim=1)


def test_unflatten_error_names_the_op():
    with pytest.raises(RuntimeError, match=r"unflatten.*\(5, -1\).*\(3, 4\)"):
        sg.Tensor(np.zeros((3, 4))).unflatten(1, (5, -1))


def test_join_errors():
    a, b = sg.Tensor(np.zeros((4, 3))), sg.Tensor(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"cross.*\(4, 2\)"):
        sg.cross(b, b)
    with pytest.raises(ValueError, match=r"cross.*dim 0.*\(4, 3\).*size 4"):
        sg.cross(a, a, dim=0)
    with pytest.raises(ValueError, match=r"tensordot.*\(4, 3\).*\(4, 2\)"):
        sg.tensordot(a, b, 1)
    with pytest.raises(ValueError, match=r"outer.*\(4, 3\)"):
        sg.outer(a, sg.Tensor(np.zeros(3)))
    with pytest.raises(ValueError, match=r"inner.*\(4, 3\).*\(4, 2\)"):
        sg.inner(a, b)
    with pytest.raises(ValueError, match="meshgrid.*'ji'"):
        sg.meshgrid(a[0], a[0], indexing="ji")
    with pytest.raises(ValueError, match=r"hsplit.*size 3.*2"):
        sg.hsplit(a, 2)
    with pytest.raises(ValueError, match=r"dsplit.*3 dims.*\(4, 3\)"):
        sg.dsplit(a, 1)
    with pytest.raises(ValueError, match=r"cat.*\(4, 3\).*\(4, 2\)"):
        sg.vstack([a, b])


def test_creation_errors():
    with pytest.raises(ValueError, match=r"randint.*\[5, 5\)"):
        sg.randint(5, 5, (3,))
    with pytest.raises(ValueError, match="multinomial.*3 samples without replacement"):
        sg.multinomial(sg.Tensor(np.array([1.0, 0.0, 1.0])), 3)
    with pytest.raises(ValueError, match="multinomial.*non-negative"):
        sg.multinomial(sg.Tensor(np.array([1.0, -1.0])), 1)
    with pytest.raises(TypeError, match="bernoulli.*float"):
        sg.bernoulli(sg.Tensor(np.array([1, 0])))
    with pytest.raises(ValueError, match=r"normal.*\(5,\).*\(3,\)"):
        sg.normal(sg.Tensor(np.zeros(3)), 1.0, size=(5,))
