"""Property tests: random shapes, axes, einsum subscripts and indices, on every device.

Hypothesis draws the cases; each is checked against PyTorch (forward and gradient) or, where
PyTorch has no counterpart (negative slice steps, some einsum forms), against NumPy for the
forward value and central finite differences for the gradient. Data are float64 throughout,
drawn from a NumPy generator seeded by Hypothesis, and examples are derandomized so that a
run is reproducible.
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
PROPERTY = settings(max_examples=100, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

# Finite differences of float64 functions that are linear in each input: the truncation error
# is zero, and rounding leaves about 1e-16 * |f| / eps.
FD_EPS, FD_RTOL, FD_ATOL = 1e-6, 1e-5, 1e-7

seeds = st.integers(0, 2**32 - 1)


def shapes(min_dims=0, max_dims=4, min_size=1, max_size=4):
    return st.lists(st.integers(min_size, max_size), min_size=min_dims,
                    max_size=max_dims).map(tuple)


def finite_difference_grad(f, arrays, eps=FD_EPS):
    """Central differences of the scalar f(*arrays) with respect to every element of every
    array, in float64."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]  # fresh contiguous copies
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        flat, gflat = a.reshape(-1), g.reshape(-1)  # views into a and g
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            high = f(*arrays)
            flat[i] = old - eps
            low = f(*arrays)
            flat[i] = old
            gflat[i] = (high - low) / (2 * eps)
        grads.append(g)
    return grads


def check_numpy_fd(sg_fn, np_fn, arrays, seed):
    """Compare sg_fn with np_fn on the same float64 arrays, and the gradient of
    sum(sg_fn(...) * w) for a random w with finite differences of the NumPy function."""
    rng = np.random.default_rng(seed)
    inputs = [sg.Tensor(a.copy(), requires_grad=True) for a in arrays]
    out = sg_fn(*inputs)
    expected = np_fn(*arrays)
    assert_close(out, expected, what="forward vs NumPy")
    w = rng.standard_normal(np.shape(expected))
    out.backward(sg.Tensor(w))
    numeric = finite_difference_grad(lambda *a: float(np.sum(np_fn(*a) * w)), arrays)
    for i, (t, g) in enumerate(zip(inputs, numeric)):
        actual = np.zeros(t.shape) if t.grad is None else t.grad
        assert_close(actual, g, rtol=FD_RTOL, atol=FD_ATOL,
                     what=f"gradient of input {i} vs finite differences")


# ---- 1. reductions -----------------------------------------------------------------------------

@st.composite
def reduction_cases(draw):
    """A shape of 0-4 dims and an axis: None, an int (maybe negative) or a tuple of distinct
    axes (some negative), with a keepdim flag."""
    shape = draw(shapes(0, 4))
    ndim = len(shape)
    rank = max(ndim, 1)  # a 0-d tensor accepts dim 0 and -1, as in PyTorch
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        axis = None
    elif kind == "int":
        axis = draw(st.integers(-rank, rank - 1))
    else:
        dims = draw(st.lists(st.integers(0, rank - 1), min_size=1, max_size=rank, unique=True))
        axis = tuple(d - rank if draw(st.booleans()) else d for d in dims)
    keepdim = draw(st.booleans())
    if ndim == 0 or axis is None:
        count = math.prod(shape)
    else:
        count = math.prod(shape[a % ndim] for a in (axis if isinstance(axis, tuple) else (axis,)))
    return shape, axis, keepdim, count


def _torch_dims(shape, axis):
    # torch's reductions take every dim spelled out, where simplegrad and NumPy take None
    return tuple(range(len(shape))) if axis is None else axis


REDUCTIONS = ["sum", "mean", "amax", "amin", "logsumexp", "var", "std"]


@PROPERTY
@given(case=reduction_cases(), name=st.sampled_from(REDUCTIONS), seed=seeds,
       torch_names=st.booleans(), ties=st.booleans(), data=st.data())
def test_reduction_matches_torch(case, name, seed, torch_names, ties, data):
    """Every reduction over any axes, with or without keepdim: values and gradients."""
    shape, axis, keepdim, count = case
    dims = _torch_dims(shape, axis)
    rng = np.random.default_rng(seed)
    if ties and name in ("amax", "amin", "std"):
        # few distinct values: ties are common; amax and amin split the gradient evenly among
        # them, and std's gradient is 0 where the spread is 0, in both libraries
        a = rng.integers(-1, 2, shape).astype(np.float64)
        event(f"{name} with ties")
    else:
        # continuous data: amax and amin meet a tie with probability zero
        a = rng.uniform(-2, 2, shape)
    # spell the arguments sometimes as PyTorch (dim, keepdim), sometimes as NumPy
    kwargs = {"dim": axis, "keepdim": keepdim} if torch_names else {"axis": axis,
                                                                   "keepdims": keepdim}
    if name in ("var", "std"):
        correction = data.draw(st.integers(0, min(count - 1, 2)), label="correction")
        check(lambda x: getattr(x, name)(correction=correction, **kwargs), None,
              lambda x: getattr(torch, name)(x, dims, correction=correction, keepdim=keepdim),
              inputs=[a], seed=seed)
    else:
        check(lambda x: getattr(x, name)(**kwargs), None,
              lambda x: getattr(torch, name)(x, dims, keepdim=keepdim), inputs=[a], seed=seed)


# ---- 2. broadcasting binary ops ----------------------------------------------------------------

@st.composite
def broadcast_pairs(draw):
    """Two shapes that broadcast: drop leading dims of a result shape and set some dims to 1."""
    out = draw(shapes(0, 4))

    def operand():
        lead = draw(st.integers(0, len(out)))
        return tuple(1 if draw(st.booleans()) else n for n in out[lead:])

    return operand(), operand()


def _signed(rng, shape, low, high):
    # magnitudes in [low, high] with random signs: nowhere near zero
    return rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)


BINARY = {
    # name: (simplegrad, torch, draw x, draw y)
    "add": (lambda x, y: x + y, lambda x, y: x + y,
            lambda r, s: r.uniform(-2, 2, s), lambda r, s: r.uniform(-2, 2, s)),
    "sub": (lambda x, y: x - y, lambda x, y: x - y,
            lambda r, s: r.uniform(-2, 2, s), lambda r, s: r.uniform(-2, 2, s)),
    "mul": (lambda x, y: x * y, lambda x, y: x * y,
            lambda r, s: r.uniform(-2, 2, s), lambda r, s: r.uniform(-2, 2, s)),
    "div": (lambda x, y: x / y, lambda x, y: x / y,
            lambda r, s: r.uniform(-2, 2, s), lambda r, s: _signed(r, s, 0.5, 2.0)),
    "pow": (lambda x, y: x ** y, lambda x, y: x ** y,
            lambda r, s: r.uniform(0.5, 2, s), lambda r, s: r.uniform(-2, 2, s)),
    # continuous data: ties have probability zero
    "maximum": (sg.maximum, torch.maximum,
                lambda r, s: r.uniform(-2, 2, s), lambda r, s: r.uniform(-2, 2, s)),
    "minimum": (sg.minimum, torch.minimum,
                lambda r, s: r.uniform(-2, 2, s), lambda r, s: r.uniform(-2, 2, s)),
}


@PROPERTY
@given(shapes_xy=broadcast_pairs(), name=st.sampled_from(sorted(BINARY)), seed=seeds,
       ties=st.booleans())
def test_broadcasting_binary_op_matches_torch(shapes_xy, name, seed, ties):
    """Binary ops on broadcasting shapes: values, and gradients summed over broadcast dims."""
    sg_fn, torch_fn, draw_x, draw_y = BINARY[name]
    rng = np.random.default_rng(seed)
    if ties and name in ("maximum", "minimum"):
        # few distinct values: ties are common, and both libraries split the gradient evenly
        draw_x = draw_y = lambda r, s: r.integers(-1, 2, s).astype(np.float64)
        event("maximum/minimum with ties")
    x, y = draw_x(rng, shapes_xy[0]), draw_y(rng, shapes_xy[1])
    check(sg_fn, None, torch_fn, inputs=[x, y], seed=seed)


# ---- 3. einsum ---------------------------------------------------------------------------------

EINSUM_LETTERS = "abcd"


@st.composite
def einsum_cases(draw):
    """A valid einsum: 1-3 operands over a small alphabet, so that letters are shared, repeated
    within an operand (diagonals) or found in one operand only (summed out); an explicit or
    implicit output; sometimes '...' with broadcasting batch dims."""
    sizes = {c: draw(st.integers(1, 3)) for c in EINSUM_LETTERS}
    use_ellipsis = draw(st.booleans())
    batch = draw(shapes(0, 2, 1, 3)) if use_ellipsis else ()
    subs, operand_shapes = [], []
    for _ in range(draw(st.integers(1, 3))):
        letters = draw(st.lists(st.sampled_from(EINSUM_LETTERS), max_size=3))
        shape = [sizes[c] for c in letters]
        sub = "".join(letters)
        if use_ellipsis and draw(st.integers(0, 2)) > 0:
            lead = draw(st.integers(0, len(batch)))
            dots = [1 if draw(st.booleans()) else n for n in batch[lead:]]
            at = draw(st.integers(0, len(letters)))
            sub = sub[:at] + "..." + sub[at:]
            shape = shape[:at] + dots + shape[at:]
        subs.append(sub)
        operand_shapes.append(tuple(shape))
    expression = ",".join(subs)
    if draw(st.booleans()):
        used = sorted(set(expression) - set(".,"))
        output = "".join(draw(st.lists(st.sampled_from(used), unique=True))) if used else ""
        if "..." in expression:  # NumPy wants the ellipsis dims in an explicit output
            at = draw(st.integers(0, len(output)))
            output = output[:at] + "..." + output[at:]
        expression += "->" + output
    return expression, operand_shapes


@PROPERTY
@given(case=einsum_cases(), seed=seeds)
def test_einsum_matches_numpy_and_torch(case, seed):
    """Any valid einsum: the value of np.einsum and the gradients of torch.einsum."""
    expression, operand_shapes = case
    subs = expression.partition("->")[0].split(",")
    event(f"einsum: {len(subs)} operand(s), {'explicit' if '->' in expression else 'implicit'}")
    if any(len(set(s.replace("...", ""))) < len(s.replace("...", "")) for s in subs):
        event("einsum: a letter repeated within an operand")
    if "..." in expression:
        event("einsum: ellipsis")
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-2, 2, shape) for shape in operand_shapes]
    expected = np.einsum(expression, *arrays)

    def sg_fn(*ts):
        return sg.einsum(expression, *ts)

    try:
        reference = torch.einsum(expression, *[torch.tensor(a) for a in arrays])
    except RuntimeError:
        reference = None  # a form torch rejects: finite differences instead
    event(f"einsum: gradient vs {'finite differences' if reference is None else 'torch'}")
    if reference is None:
        check_numpy_fd(sg_fn, lambda *a: np.einsum(expression, *a), arrays, seed)
        return
    assert_close(reference, expected, what="torch vs NumPy (a test assumption)")
    out = check(sg_fn, None, lambda *ts: torch.einsum(expression, *ts), inputs=arrays,
                seed=seed)
    assert_close(out, expected, what="forward vs NumPy")


# ---- 4. indexing -------------------------------------------------------------------------------

@st.composite
def index_cases(draw):
    """A shape of 1-4 dims and an index: ints (some negative), slices with any start, stop and
    step, None, Ellipsis, integer arrays with repeats in up to two positions, or a boolean mask
    over the leading dims."""
    variant = draw(st.sampled_from(["basic", "reversed", "one array", "two arrays", "mask"]))
    n_arrays = {"one array": 1, "two arrays": 2}.get(variant, 0)
    n_special = 1 if variant == "reversed" else n_arrays  # dims that must be named
    shape = draw(shapes(max(n_special, 1), 4))
    ndim = len(shape)
    key = []
    dim = 0
    if variant == "mask":  # no integer arrays together with a mask
        dim = draw(st.integers(1, ndim))
        n = math.prod(shape[:dim])
        key.append(np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)),
                            dtype=bool).reshape(shape[:dim]))
    # the dims after the mask that the key names: all but a run of left_out dims, which is
    # spelled '...' or, at the end, left out
    dims = range(dim, ndim)
    left_out = draw(st.integers(0, len(dims) - n_special))
    ellipsis = draw(st.booleans())
    start = draw(st.integers(0, len(dims) - left_out)) if ellipsis else len(dims) - left_out
    named = [*dims[:start], *dims[start + left_out:]]
    special = draw(st.permutations(named))[:n_special]
    array_shape = draw(shapes(0, 2, 1, 3))
    parts = []
    for d in named:
        n = shape[d]
        if d in special and variant == "reversed":
            bound = st.none() | st.integers(-n - 1, n + 1)
            step = draw(st.sampled_from([-1, -2, -3]))
            parts.append(slice(draw(bound), draw(bound), step))
        elif d in special:
            # the arrays broadcast together: each drops leading dims of array_shape or has 1s
            lead = draw(st.integers(0, len(array_shape)))
            ishape = tuple(1 if draw(st.booleans()) else m for m in array_shape[lead:])
            values = draw(st.lists(st.integers(-n, n - 1), min_size=math.prod(ishape),
                                   max_size=math.prod(ishape)))
            parts.append(np.array(values, dtype=np.int64).reshape(ishape))
        elif draw(st.booleans()):
            parts.append(draw(st.integers(-n, n - 1)))
        else:
            bound = st.none() | st.integers(-n - 1, n + 1)
            step = draw(st.sampled_from([None, 1, 2, 3, -1, -2]))
            parts.append(slice(draw(bound), draw(bound), step))
    key += parts[:start] + ([Ellipsis] if ellipsis else []) + parts[start:]
    for _ in range(draw(st.integers(0, 2))):
        key.insert(draw(st.integers(0, len(key))), None)
    return shape, key


def _as_user_index(k, how):
    """The same index component spelled as a NumPy array, a list or a simplegrad tensor."""
    if not isinstance(k, np.ndarray):
        return k
    if how == "list" and k.ndim > 0:
        return k.tolist()
    if how == "tensor":
        return sg.Tensor(k)
    return k


@PROPERTY
@given(case=index_cases(), how=st.sampled_from(["numpy", "list", "tensor"]),
       bare=st.booleans(), seed=seeds)
def test_indexing_matches_numpy_and_torch(case, how, bare, seed):
    """x[key] is NumPy's x[key], with index arrays given as NumPy arrays, lists or tensors;
    the gradient adds up over repeated positions."""
    shape, key = case
    np_key = key[0] if bare and len(key) == 1 else tuple(key)
    sg_key = _as_user_index(key[0], how) if bare and len(key) == 1 else tuple(
        _as_user_index(k, how) for k in key)
    x = np.random.default_rng(seed).uniform(-2, 2, shape)
    expected = x[np_key]

    # torch mirrors NumPy except for negative steps and where it places the dims of an int
    # next to an array; where its result differs, finite differences check the gradient
    comparable = not any(isinstance(k, slice) and (k.step or 1) < 0 for k in key)
    if comparable:
        t_key = tuple(torch.tensor(k) if isinstance(k, np.ndarray) else k for k in key)
        t_key = t_key[0] if bare and len(key) == 1 else t_key
        try:
            reference = torch.tensor(x)[t_key].numpy()
            comparable = reference.shape == expected.shape and np.array_equal(reference,
                                                                              expected)
        except (IndexError, RuntimeError):
            comparable = False
    n_arrays = sum(isinstance(k, np.ndarray) and k.dtype != bool for k in key)
    event(f"index: {n_arrays} integer array(s)")
    if any(isinstance(k, np.ndarray) and k.dtype == bool for k in key):
        event("index: boolean mask")
    if any(isinstance(k, slice) and (k.step or 1) < 0 for k in key):
        event("index: negative step")
    event(f"index: gradient vs {'torch' if comparable else 'finite differences'}")
    if comparable:
        out = check(lambda t: t[sg_key], None, lambda t: t[t_key], inputs=[x], seed=seed)
        assert_close(out, expected, what="forward vs NumPy")
    else:
        check_numpy_fd(lambda t: t[sg_key], lambda a: a[np_key], [x], seed)


# ---- 5. movement -------------------------------------------------------------------------------

@PROPERTY
@given(data=st.data(), shape=shapes(0, 4), seed=seeds)
def test_permute_round_trip(data, shape, seed):
    """A permutation followed by its inverse is the identity, values and gradient."""
    perm = tuple(data.draw(st.permutations(range(len(shape))), label="perm"))
    inverse = tuple(np.argsort(perm).tolist())
    rng = np.random.default_rng(seed)
    a, w = rng.uniform(-2, 2, shape), rng.standard_normal(shape)
    x = sg.Tensor(a.copy(), requires_grad=True)
    y = x.permute(*perm)
    assert_close(y, np.transpose(a, perm), what="permute vs NumPy")
    z = y.permute(inverse)
    np.testing.assert_array_equal(np.asarray(z.detach()), a)
    (z * sg.Tensor(w)).sum().backward()
    np.testing.assert_array_equal(np.asarray(x.grad), w)  # the identity's gradient is w
    check(lambda t: t.permute(*perm), None, lambda t: t.permute(perm), inputs=[a], seed=seed)


@st.composite
def reshape_cases(draw):
    """A shape and a random factorization of its size, with some 1s and perhaps one -1."""
    shape = draw(shapes(0, 4))
    factors = [p for n in shape for p in _prime_factors(n)]
    dims = [1] * draw(st.integers(1 if factors else 0, 4))
    for p in factors:
        dims[draw(st.integers(0, len(dims) - 1))] *= p
    for _ in range(draw(st.integers(0, 2))):
        dims.insert(draw(st.integers(0, len(dims))), 1)
    if dims and draw(st.booleans()):
        dims[draw(st.integers(0, len(dims) - 1))] = -1
    return shape, tuple(dims)


def _prime_factors(n):
    factors, p = [], 2
    while n > 1:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    return factors


@PROPERTY
@given(case=reshape_cases(), seed=seeds)
def test_reshape_to_random_factorization(case, seed):
    """Reshape to any shape of the same size, spelled with 1s and -1."""
    shape, new_shape = case
    a = np.random.default_rng(seed).uniform(-2, 2, shape)
    out = check(lambda t: t.reshape(new_shape), None, inputs=[a], seed=seed)
    assert_close(out, a.reshape(new_shape), what="reshape vs NumPy")


@st.composite
def expand_cases(draw):
    """A shape with some dims of size 1, and a target that grows them and adds leading dims;
    -1 keeps a dim."""
    shape = tuple(1 if draw(st.booleans()) else n for n in draw(shapes(0, 3)))
    target = [draw(st.integers(1, 3)) if n == 1 else n for n in shape]
    target = [-1 if draw(st.integers(0, 3)) == 0 else n for n in target]
    return shape, tuple(draw(shapes(0, 2, 1, 3)) + tuple(target))


@PROPERTY
@given(case=expand_cases(), seed=seeds)
def test_expand_size_one_dims(case, seed):
    """Expand size-1 dims and add leading ones; the gradient sums over them."""
    shape, target = case
    a = np.random.default_rng(seed).uniform(-2, 2, shape)
    out = check(lambda t: t.expand(*target), None, lambda t: t.expand(target), inputs=[a],
                seed=seed)
    lead = len(target) - len(shape)
    full = tuple(shape[i - lead] if n == -1 else n for i, n in enumerate(target))
    assert_close(out, np.broadcast_to(a, full), what="expand vs NumPy")


# ---- 6. as_strided -----------------------------------------------------------------------------

@st.composite
def as_strided_cases(draw):
    """A contiguous base and a view (size, stride, offset) inside it; strides may be 0 or
    smaller than the extent of inner dims, so that view positions overlap."""
    base = draw(shapes(1, 3))
    numel = math.prod(base)
    size = list(draw(shapes(0, 3, 1, 4)))
    stride = draw(st.lists(st.integers(0, 4), min_size=len(size), max_size=len(size)))
    budget = numel - 1  # the furthest element the view may read, before the offset
    for i, s in enumerate(stride):
        if s:
            size[i] = min(size[i], budget // s + 1)
            budget -= (size[i] - 1) * s
    offset = draw(st.integers(0, budget))
    return base, tuple(size), tuple(stride), offset


@PROPERTY
@given(case=as_strided_cases(), seed=seeds)
def test_as_strided_matches_torch(case, seed):
    """Any in-bounds view of a contiguous tensor; overlapping reads add up in the gradient."""
    base, size, stride, offset = case
    a = np.random.default_rng(seed).uniform(-2, 2, base)
    out = check(lambda t: t.as_strided(size, stride, offset), None,
                lambda t: torch.as_strided(t, size, stride, offset), inputs=[a], seed=seed)
    expected = np.lib.stride_tricks.as_strided(a.reshape(-1)[offset:], size,
                                               tuple(s * a.itemsize for s in stride))
    assert_close(out, expected, what="as_strided vs NumPy")
