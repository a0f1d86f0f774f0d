"""Property tests of the movement ops: random shapes, dims and shifts, on every device.

Hypothesis draws the cases; each property is an identity the ops must satisfy (a flip twice is
no flip, a roll by n and then by -n is no roll, four rotations are none, tril + triu - diag is
the matrix), a comparison with NumPy's function of the same name, or the adjoint identity of a
linear map: for out = A(x) and x.grad = A^T(g) from backward(g), sum(out * g) = sum(x * grad).
Data are float64, drawn from a NumPy generator seeded by Hypothesis; examples are derandomized,
so a run is reproducible, and few, since the reference device is slow.
"""

import math

import numpy as np
import pytest
from helpers import assert_close, check, torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import simplegrad as sg

pytestmark = pytest.mark.usefixtures("device")

# The `device` fixture only sets the global default device, so sharing it across the examples
# of one test is safe.
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

seeds = st.integers(0, 2**32 - 1)


def shapes(min_dims=0, max_dims=4, min_size=1, max_size=4):
    return st.lists(st.integers(min_size, max_size), min_size=min_dims,
                    max_size=max_dims).map(tuple)


def _array(shape, seed):
    return np.random.default_rng(seed).uniform(-2, 2, shape)


def _identical(out, expected, what):
    """Movement only moves values: equal exactly, in shape and in every element."""
    out = out.numpy()
    assert out.shape == np.shape(expected), f"{what}: shape {out.shape} != {np.shape(expected)}"
    np.testing.assert_array_equal(out, expected, err_msg=what)


def _adjoint(fn, a, seed, what):
    """fn is linear in x: sum(fn(x) * g) equals sum(x * x.grad) after fn(x).backward(g)."""
    rng = np.random.default_rng(seed + 1)
    x = sg.Tensor(a.copy(), requires_grad=True)
    out = fn(x)
    g = rng.standard_normal(out.shape)
    out.backward(sg.Tensor(g))
    grad = np.zeros(a.shape) if x.grad is None else x.grad.numpy()
    lhs, rhs = float(np.sum(out.detach().numpy() * g)), float(np.sum(a * grad))
    assert math.isclose(lhs, rhs, rel_tol=1e-10, abs_tol=1e-10), \
        f"{what}: sum(out * g) = {lhs} but sum(x * grad) = {rhs}"
    return x.grad


@st.composite
def dims_of(draw, shape, min_size=0):
    """A set of distinct dims of `shape`, some spelled negative."""
    ndim = len(shape)
    if ndim == 0:
        return ()
    chosen = draw(st.lists(st.integers(0, ndim - 1), min_size=min_size, max_size=ndim,
                           unique=True))
    return tuple(d - ndim if draw(st.booleans()) else d for d in chosen)


# ---- flip, roll, rot90 ------------------------------------------------------------------------

@PROPERTY
@given(data=st.data(), shape=shapes(1, 4), seed=seeds)
def test_flip_twice_is_identity(data, shape, seed):
    dims = data.draw(dims_of(shape, min_size=1), label="dims")
    a = _array(shape, seed)
    x = sg.Tensor(a)
    _identical(x.flip(dims), np.flip(a, dims), "flip vs NumPy")
    _identical(x.flip(dims).flip(dims), a, "flip twice")
    grad = _adjoint(lambda t: t.flip(dims), a, seed, "flip")
    _identical(grad, np.flip(np.random.default_rng(seed + 1).standard_normal(shape), dims),
               "flip's gradient is the flipped upstream gradient")


@st.composite
def roll_cases(draw):
    shape = draw(shapes(1, 4))
    if draw(st.booleans()):  # rolled as a flat tensor
        return shape, draw(st.integers(-30, 30)), None
    dims = draw(dims_of(shape, min_size=1))
    shifts = tuple(draw(st.integers(-9, 9)) for _ in dims)
    return shape, shifts, dims


@PROPERTY
@given(case=roll_cases(), seed=seeds)
def test_roll_then_roll_back(case, seed):
    shape, shifts, dims = case
    event("roll: flat" if dims is None else f"roll: {len(dims)} dim(s)")
    a = _array(shape, seed)
    x = sg.Tensor(a)
    back = -shifts if dims is None else tuple(-s for s in shifts)
    _identical(x.roll(shifts, dims), np.roll(a, shifts, dims), "roll vs NumPy")
    _identical(x.roll(shifts, dims).roll(back, dims), a, "roll by n, then by -n")
    _adjoint(lambda t: t.roll(shifts, dims), a, seed, "roll")


@PROPERTY
@given(data=st.data(), shape=shapes(2, 4), k=st.integers(-5, 5), seed=seeds)
def test_rot90_four_times_is_identity(data, shape, k, seed):
    pair = data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=2, max_size=2)
                     .filter(lambda p: p[0] % len(shape) != p[1] % len(shape)), label="dims")
    a = _array(shape, seed)
    x = sg.Tensor(a)
    _identical(x.rot90(k, pair), np.rot90(a, k, pair), "rot90 vs NumPy")
    out = x
    for _ in range(4):
        out = out.rot90(1, pair)
    _identical(out, a, "rot90 four times")
    _identical(x.rot90(k, pair).rot90(-k, pair), a, "rot90 by k, then by -k")
    _adjoint(lambda t: t.rot90(k, pair), a, seed, "rot90")


# ---- repeat, tile, repeat_interleave -------------------------------------------------------------

@st.composite
def repeat_cases(draw):
    shape = draw(shapes(0, 3))
    lead = draw(st.integers(0, 2))
    sizes = tuple(draw(st.integers(0, 3)) for _ in range(len(shape) + lead))
    return shape, sizes


@PROPERTY
@given(case=repeat_cases(), seed=seeds)
def test_repeat_and_tile_match_numpy(case, seed):
    shape, sizes = case
    a = _array(shape, seed)
    x = sg.Tensor(a)
    expected = np.tile(a, sizes)  # torch's repeat is NumPy's tile with a size per dim
    out = x.repeat(*sizes) if sizes else x.repeat(())
    assert out.shape == tuple(r * n for r, n in zip(sizes, (1,) * (len(sizes) - len(shape))
                                                     + shape))
    _identical(out, expected, "repeat vs np.tile")
    _identical(x.tile(sizes), expected, "tile vs np.tile")
    if len(shape) >= 2:  # fewer sizes than dims: they repeat the last dims
        fewer = sizes[len(sizes) - len(shape) + 1:]
        _identical(x.tile(fewer), np.tile(a, fewer), "tile with fewer sizes than dims")
    _adjoint(lambda t: t.repeat(sizes), a, seed, "repeat")


@PROPERTY
@given(data=st.data(), shape=shapes(1, 3), seed=seeds)
def test_repeat_interleave_matches_numpy(data, shape, seed):
    a = _array(shape, seed)
    use_dim = data.draw(st.booleans(), label="use_dim")
    axis = data.draw(st.integers(0, len(shape) - 1), label="axis") if use_dim else None
    n = a.size if axis is None else shape[axis]
    if data.draw(st.booleans(), label="per slice"):
        repeats = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n), label="counts")
        event("repeat_interleave: counts")
        arg = sg.tensor(repeats)
    else:
        repeats = arg = data.draw(st.integers(0, 3), label="repeats")
    x = sg.Tensor(a)
    _identical(x.repeat_interleave(arg, dim=axis), np.repeat(a, repeats, axis=axis),
               "repeat_interleave vs np.repeat")
    _adjoint(lambda t: t.repeat_interleave(arg, dim=axis), a, seed, "repeat_interleave")


# ---- movedim, unflatten, narrow -----------------------------------------------------------------

@PROPERTY
@given(data=st.data(), shape=shapes(1, 4), seed=seeds)
def test_movedim_round_trip(data, shape, seed):
    ndim = len(shape)
    source = data.draw(dims_of(shape, min_size=1), label="source")
    destination = tuple(data.draw(st.permutations(range(ndim)), label="destination")
                        [:len(source)])
    a = _array(shape, seed)
    x = sg.Tensor(a)
    moved = x.movedim(source, destination)
    _identical(moved, np.moveaxis(a, source, destination), "movedim vs np.moveaxis")
    _identical(moved.movedim(destination, source), a, "movedim and back")
    _identical(x.moveaxis(source, destination), np.moveaxis(a, source, destination), "moveaxis")
    _adjoint(lambda t: t.movedim(source, destination), a, seed, "movedim")


@PROPERTY
@given(data=st.data(), shape=shapes(1, 3), seed=seeds)
def test_unflatten_flatten_round_trip(data, shape, seed):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    n = shape[axis]
    factors = [d for d in range(1, n + 1) if n % d == 0]
    first = data.draw(st.sampled_from(factors), label="first")
    sizes = [first, n // first]
    if data.draw(st.booleans(), label="minus one"):
        sizes[data.draw(st.integers(0, 1), label="which")] = -1
    a = _array(shape, seed)
    x = sg.Tensor(a)
    out = x.unflatten(axis, sizes)
    k = axis % len(shape)
    expected_shape = shape[:k] + (first, n // first) + shape[k + 1:]
    _identical(out, a.reshape(expected_shape), "unflatten vs reshape")
    _identical(out.flatten(k, k + 1), a, "unflatten, then flatten")
    _adjoint(lambda t: t.unflatten(axis, sizes), a, seed, "unflatten")


@PROPERTY
@given(data=st.data(), shape=shapes(1, 4, 1, 5), seed=seeds)
def test_narrow_is_slicing(data, shape, seed):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    n = shape[axis]
    start = data.draw(st.integers(-n, n), label="start")
    begin = start + n if start < 0 else start
    length = data.draw(st.integers(0, n - begin), label="length")
    a = _array(shape, seed)
    key = (slice(None),) * (axis % len(shape)) + (slice(begin, begin + length),)
    _identical(sg.Tensor(a).narrow(axis, start, length), a[key], "narrow vs slicing")
    grad = _adjoint(lambda t: t.narrow(axis, start, length), a, seed, "narrow")
    outside = np.ones(shape, dtype=bool)
    outside[key] = False
    assert not grad.numpy()[outside].any(), "narrow's gradient is zero outside the slice"


# ---- diagonals and triangles ---------------------------------------------------------------------

@PROPERTY
@given(data=st.data(), shape=shapes(2, 4), offset=st.integers(-4, 4), seed=seeds)
def test_diagonal_matches_numpy(data, shape, offset, seed):
    ndim = len(shape)
    pair = data.draw(st.lists(st.integers(-ndim, ndim - 1), min_size=2, max_size=2)
                     .filter(lambda p: p[0] % ndim != p[1] % ndim), label="dims")
    a = _array(shape, seed)
    out = sg.Tensor(a).diagonal(offset, *pair)
    _identical(out, np.diagonal(a, offset, *pair), "diagonal vs np.diagonal")
    event("diagonal: empty" if out.numel() == 0 else "diagonal: some elements")
    _adjoint(lambda t: t.diagonal(offset, *pair), a, seed, "diagonal")
    # diag_embed puts it back where it came from, zeros elsewhere
    if pair[0] % ndim < pair[1] % ndim and out.shape[-1] > 0:
        back = out.diag_embed(offset, *pair)
        _identical(back.diagonal(offset, *pair), np.diagonal(a, offset, *pair),
                   "diagonal of diag_embed")
    _adjoint(lambda t: t.diag_embed(offset), a, seed, "diag_embed")


@PROPERTY
@given(shape=shapes(2, 4), diagonal=st.integers(-4, 4), seed=seeds)
def test_tril_plus_triu_minus_diag_is_x(shape, diagonal, seed):
    a = _array(shape, seed)
    x = sg.Tensor(a)
    lower, upper = x.tril(diagonal), x.triu(diagonal)
    _identical(lower, np.tril(a, diagonal), "tril vs np.tril")
    _identical(upper, np.triu(a, diagonal), "triu vs np.triu")
    # the diagonal `diagonal` lies in both triangles: once too often in their sum
    on_diagonal = x.triu(diagonal).tril(diagonal)
    assert_close(lower + upper - on_diagonal, a, rtol=0, atol=0, what="tril + triu - diag")
    if shape[-1] == shape[-2] and diagonal == 0:
        diag = x.diagonal(0, -2, -1).diag_embed()
        assert_close(lower + upper - diag, a, rtol=0, atol=0, what="with diag_embed")
    _adjoint(lambda t: t.tril(diagonal) * 2 + t.triu(diagonal), a, seed, "tril and triu")


# ---- the adjoint identity across the family ---------------------------------------------------

MOVEMENT = {
    "flip": lambda t, r: t.flip(tuple(range(0, t.ndim, 2))),
    "fliplr": lambda t, r: t.fliplr(),
    "flipud": lambda t, r: t.flipud(),
    "roll": lambda t, r: t.roll(int(r.integers(-5, 6)), int(r.integers(0, t.ndim))),
    "rot90": lambda t, r: t.rot90(int(r.integers(-3, 4)), (0, 1)),
    "repeat": lambda t, r: t.repeat(tuple(int(v) for v in r.integers(1, 3, t.ndim + 1))),
    "tile": lambda t, r: t.tile((2,)),
    "repeat_interleave": lambda t, r: t.repeat_interleave(int(r.integers(1, 3)), dim=0),
    "tril": lambda t, r: t.tril(int(r.integers(-2, 3))),
    "triu": lambda t, r: t.triu(int(r.integers(-2, 3))),
    "diagonal": lambda t, r: t.diagonal(int(r.integers(-2, 3))),
    "diag_embed": lambda t, r: t.diag_embed(int(r.integers(-2, 3))),
    "movedim": lambda t, r: t.movedim(0, -1),
    "swapaxes": lambda t, r: t.swapaxes(0, 1),
    "narrow": lambda t, r: t.narrow(1, 0, max(t.shape[1] - 1, 1)),
    "unflatten": lambda t, r: t.unflatten(0, (1, t.shape[0])),
    "index_select": lambda t, r: t.index_select(1, sg.Tensor(r.integers(0, t.shape[1], 5))),
    "take_along_dim": lambda t, r: t.take_along_dim(
        sg.Tensor(r.integers(0, t.shape[0], (3,) + t.shape[1:])), 0),
    "gather": lambda t, r: t.gather(0, sg.Tensor(r.integers(0, t.shape[0], (4,) + t.shape[1:]))),
    "masked_select": lambda t, r: t.masked_select(sg.Tensor(r.random(t.shape) < 0.5)),
    # prepend keeps the result non-empty (slicing an empty tensor: test_ops_movement.py)
    "diff": lambda t, r: t.diff(int(r.integers(1, t.shape[0] + 1)), 0, prepend=t[:1] * 0.5),
    "scatter_add": lambda t, r: t.scatter_add(
        0, sg.Tensor(r.integers(0, t.shape[0], t.shape)), t * 2),
    "index_add": lambda t, r: t.index_add(0, sg.Tensor(r.integers(0, t.shape[0], 3)),
                                          t[:1].expand(3, *t.shape[1:]), alpha=1.5),
}


@PROPERTY
@given(name=st.sampled_from(sorted(MOVEMENT)), shape=shapes(2, 3, 1, 4), seed=seeds)
def test_gradients_are_adjoints(name, shape, seed):
    """Every movement op is linear: its backward is its adjoint, for any upstream gradient."""
    a = _array(shape, seed)
    rng = np.random.default_rng(seed)
    # the op's random arguments, drawn once and replayed, so that fn is one linear map
    state = rng.bit_generator.state

    def fn(t):
        replay = np.random.default_rng()
        replay.bit_generator.state = state
        return MOVEMENT[name](t, replay)

    _identical(fn(sg.Tensor(a)), fn(sg.Tensor(a)).numpy(), f"{name} replays")
    _adjoint(fn, a, seed, name)


# ---- __getitem__ with ints and index arrays together: torch's placement of dims ---------------

@st.composite
def mixed_keys(draw):
    """A shape and a key of ints, slices (positive steps), index lists and None, with at least
    one int and one index list: where torch selects with the ints first and then places the
    array dims among the dims left (NumPy would count the ints as arrays)."""
    shape = draw(shapes(2, 4, 1, 4))
    kinds = draw(st.lists(st.sampled_from(["int", "slice", "list", "full"]), min_size=len(shape),
                          max_size=len(shape)).filter(lambda k: "int" in k and "list" in k))
    length = draw(st.integers(1, 3))  # the index lists broadcast: one length for all
    key = []
    for n, kind in zip(shape, kinds):
        if kind == "int":
            key.append(draw(st.integers(-n, n - 1)))
        elif kind == "list":
            key.append(draw(st.lists(st.integers(-n, n - 1), min_size=length, max_size=length)))
        elif kind == "slice":
            bound = st.none() | st.integers(-n - 1, n + 1)
            key.append(slice(draw(bound), draw(bound), draw(st.sampled_from([None, 1, 2]))))
        else:
            key.append(slice(None))
    if draw(st.booleans()):
        key.insert(draw(st.integers(0, len(key))), None)
    return shape, tuple(key)


@settings(PROPERTY)
@given(case=mixed_keys(), seed=seeds)
def test_getitem_ints_with_arrays_match_torch(case, seed):
    shape, key = case
    a = _array(shape, seed)
    expected = torch.tensor(a)[key]
    event(f"getitem: {sum(isinstance(k, slice) and k != slice(None) for k in key)} slices")
    check(lambda t: t[key], None, inputs=[a], seed=seed)
    assert tuple(sg.Tensor(a)[key].shape) == tuple(expected.shape)
