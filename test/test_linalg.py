"""simplegrad.linalg against torch.linalg: values, gradients for random upstream gradients on
every output, second derivatives (create_graph) and errors, in float64 and float32, on every
device. The reference device has LU-based det, slogdet, inv, solve and Cholesky written with the
primitives, but no QR, SVD or eigendecomposition: tests of those skip there, saying so.

Decompositions are unique only up to signs (a column of Q, U or V and the matching row of R or
Vh): where torch's representative differs from ours, torch's outputs are first flipped to ours
by constant signs, which changes neither function locally, so both must give one gradient.
The checks compare the largest error with the largest magnitude of torch's result (TOL).
"""

import numpy as np
import pytest
from helpers import torch

import simplegrad as sg

linalg = sg.linalg
LinAlgError = sg.linalg.LinAlgError

pytestmark = pytest.mark.usefixtures("device")

# worst error relative to the largest magnitude of torch's result, per dtype
TOL = {np.float64: 1e-10, np.float32: 1e-4}


def require_decompositions():
    """Skip on a device without QR, SVD and eigh kernels (the reference device)."""
    if type(sg.Tensor.device).svd is sg.Device.svd:
        pytest.skip(f"{type(sg.Tensor.device).__name__} has no QR, SVD or eigh kernels (no "
                    "default is written with the primitives)")


@pytest.fixture
def decompositions(device):
    require_decompositions()


needs_decompositions = pytest.mark.usefixtures("decompositions")


# ---- matrices with known conditioning -----------------------------------------------------------

def orthonormal(rng, batch, m, k):
    """Random matrices (batch, m, k) with orthonormal columns."""
    q, r = np.linalg.qr(rng.standard_normal(batch + (m, k)))
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


def spread(rng, batch, k, lo, hi):
    """Values (batch, k) near linspace(lo, hi), shuffled: distinct, gaps near (hi-lo)/(k-1)."""
    base = np.linspace(lo, hi, k)
    jitter = rng.uniform(-0.1, 0.1, batch + (k,)) * (hi - lo) / max(k - 1, 1)
    return rng.permuted(np.broadcast_to(base, batch + (k,)) + jitter, axis=-1)


def with_singular_values(rng, shape, lo=1.0, hi=3.0):
    """Random matrices of `shape` whose singular values are distinct and lie in [lo, hi]."""
    batch, (m, n) = shape[:-2], shape[-2:]
    k = min(m, n)
    s = spread(rng, batch, k, lo, hi)
    return orthonormal(rng, batch, m, k) * s[..., None, :] @ np.swapaxes(
        orthonormal(rng, batch, n, k), -1, -2)


def symmetric(rng, shape, lo=-2.0, hi=2.0):
    """Random symmetric matrices with distinct eigenvalues in about [lo, hi]."""
    batch, n = shape[:-2], shape[-1]
    q = orthonormal(rng, batch, n, n)
    return q * spread(rng, batch, n, lo, hi)[..., None, :] @ np.swapaxes(q, -1, -2)


def spd(rng, shape):
    return symmetric(rng, shape, 1.0, 3.0)


# ---- comparing with torch -----------------------------------------------------------------------

def rel_err(ours, theirs):
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    if ours.size == 0:
        return 0.0
    return float(np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-30))


def check(key, ours, theirs, dtype):
    err = rel_err(ours, theirs)
    assert err < TOL[dtype], f"{key} [{np.dtype(dtype).name}]: error {err:.2e}"


def as_tuple(x):
    return tuple(x) if isinstance(x, tuple) else (x,)


def flip_to(ours, theirs, axis):
    """Signs (constants) that turn torch's columns (axis=-2 sums) or rows into ours."""
    return torch.tensor(np.where(np.sum(ours * theirs.detach().numpy(), axis=axis) < 0, -1.0, 1.0),
                        dtype=theirs.dtype)


def compare(key, fn, tfn, arrays, dtype, second=False, rng=None):
    """fn on simplegrad tensors and tfn on torch tensors of the same arrays (tfn also gets our
    outputs as NumPy arrays, to align signs): values, gradients of every input for random
    upstream gradients on every float output, and with second=True the gradients of
    sum(grads * random) (the derivative of the backward pass)."""
    rng = rng or np.random.default_rng(0)
    xs = [sg.Tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    ts = [torch.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    outs = as_tuple(fn(*xs))
    touts = as_tuple(tfn(*ts, ours=[o.numpy() for o in outs]))
    assert len(outs) == len(touts)
    for i, (o, t) in enumerate(zip(outs, touts, strict=True)):
        assert o.dtype == dtype, (key, i, o.dtype)
        check(f"{key} value {i}", o.numpy(), t.detach().numpy(), dtype)
    pairs = [(o, t) for o, t in zip(outs, touts, strict=True)
             if o.requires_grad and t.requires_grad]
    ups = [rng.standard_normal(o.shape).astype(dtype) for o, _ in pairs]
    grads = sg.grad([o for o, _ in pairs], xs, [sg.Tensor(u) for u in ups],
                    create_graph=second, allow_unused=True)
    tgrads = torch.autograd.grad([t for _, t in pairs], ts, [torch.tensor(u) for u in ups],
                                 create_graph=second, allow_unused=True)
    for i, (g, tg) in enumerate(zip(grads, tgrads, strict=True)):
        if tg is None:
            assert g is None or not np.any(g.numpy()), (key, i)
            continue
        check(f"{key} grad {i}", g.numpy(), tg.detach().numpy(), dtype)
    used = [i for i, tg in enumerate(tgrads) if tg is not None and tg.requires_grad]
    if second and used:
        vs = [rng.standard_normal(arrays[i].shape).astype(dtype) for i in used]
        loss = sum((grads[i] * sg.Tensor(v)).sum() for i, v in zip(used, vs, strict=True))
        tloss = sum((tgrads[i] * torch.tensor(v)).sum() for i, v in zip(used, vs, strict=True))
        gg = sg.grad(loss, xs, allow_unused=True)
        tgg = torch.autograd.grad(tloss, ts, allow_unused=True)
        for i, (g, tg) in enumerate(zip(gg, tgg, strict=True)):
            if tg is not None:
                # torch's ZeroTensor (a known zero, as abs's second derivative) needs force
                check(f"{key} grad2 {i}", g.numpy(), tg.detach().numpy(force=True), dtype)
    return outs


DTYPES = [np.float64, np.float32]
BATCHES = [(), (3,), (2, 3)]


def plain(tfn):
    return lambda *ts, ours: tfn(*ts)


# ---- det, slogdet, inv --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", BATCHES)
def test_det(dtype, batch):
    rng = np.random.default_rng(1)
    a = rng.standard_normal(batch + (4, 4)) + 2 * np.eye(4)
    compare("det", linalg.det, plain(torch.linalg.det), [a], dtype, second=True)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_det_sizes(n):
    a = np.random.default_rng(n).standard_normal((2, n, n)) + 2 * np.eye(n)
    compare(f"det n={n}", linalg.det, plain(torch.linalg.det), [a], np.float64, second=True)


@needs_decompositions
def test_det_singular_is_the_cofactor_matrix():
    # torch's double-backward path (create_graph) uses the SVD for |det| < 100 eps; its plain
    # backward gives 0 for an exactly singular matrix. Ours is the cofactor matrix always.
    rng = np.random.default_rng(2)
    a = rng.standard_normal((2, 3, 4, 4))
    a[0, 1, :, 3] = a[0, 1, :, 0] + a[0, 1, :, 1]   # rank 3
    a[1, 2, 2] = 0.0                                # a zero row
    a[1, 0] = np.outer([1, 2, 3, 4], [1, -1, 2, 0.5]) + np.outer([0, 1, 0, 1], [1, 1, 1, 1])
    A = sg.Tensor(a, requires_grad=True)
    tA = torch.tensor(a, requires_grad=True)
    g = rng.standard_normal((2, 3))
    (ours,) = sg.grad(linalg.det(A), A, sg.Tensor(g))
    (theirs,) = torch.autograd.grad(torch.linalg.det(tA), tA, torch.tensor(g), create_graph=True)
    check("det singular grad", ours.numpy(), theirs.detach().numpy(), np.float64)
    # the cofactors of the rank-3 matrix, by definition
    m = a[0, 1]
    cof = np.array([[(-1) ** (i + j) * np.linalg.det(np.delete(np.delete(m, i, 0), j, 1))
                     for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(ours.numpy()[0, 1], g[0, 1] * cof, atol=1e-12)


@needs_decompositions
def test_det_singular_second_derivative():
    # rank n - 1 matrices among regular ones: torch's double backward goes through the SVD too
    rng = np.random.default_rng(26)
    a = rng.standard_normal((2, 3, 4, 4)) + 2 * np.eye(4)
    a[0, 1, :, 3] = a[0, 1, :, 0] - 2 * a[0, 1, :, 2]
    a[1, 2, 1] = 0.5 * a[1, 2, 3]
    compare("det singular", linalg.det, plain(torch.linalg.det), [a], np.float64, second=True)


def test_det_empty():
    A = sg.Tensor(np.zeros((2, 0, 0)), requires_grad=True)
    out = linalg.det(A)
    np.testing.assert_array_equal(out.numpy(), [1.0, 1.0])
    out.sum().backward()
    assert A.grad.shape == (2, 0, 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", BATCHES)
def test_slogdet(dtype, batch):
    rng = np.random.default_rng(3)
    a = with_singular_values(rng, batch + (4, 4))      # both signs of det occur
    sign, logabsdet = compare("slogdet", linalg.slogdet, plain(torch.linalg.slogdet), [a],
                              dtype, second=True)
    assert sign.requires_grad   # in the graph with a zero gradient, as torch's
    A = sg.Tensor(a.astype(dtype), requires_grad=True)
    (g,) = sg.grad(linalg.slogdet(A).sign.sum(), A)
    assert not np.any(g.numpy())


def test_slogdet_named_fields():
    a = np.diag([2.0, -3.0])
    r = linalg.slogdet(sg.Tensor(a))
    assert r.sign.item() == -1.0 and abs(r.logabsdet.item() - np.log(6)) < 1e-15


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", BATCHES)
def test_inv(dtype, batch):
    a = with_singular_values(np.random.default_rng(4), batch + (4, 4))
    compare("inv", linalg.inv, plain(torch.linalg.inv), [a], dtype, second=True)


# ---- solve --------------------------------------------------------------------------------------

SOLVE_SHAPES = [  # A, B, left
    ((4, 4), (4,), True),
    ((4, 4), (4, 2), True),
    ((2, 3, 4, 4), (2, 3, 4), True),         # a batch of vectors: B is A's shape minus one dim
    ((2, 3, 4, 4), (4,), True),
    ((2, 3, 4, 4), (3, 4, 4), True),         # a matrix B broadcast against A's batch
    ((2, 1, 4, 4), (3, 4, 2), True),
    ((4, 4), (5, 2, 4, 1), True),
    ((3, 4, 4), (2, 4), False),
    ((2, 3, 4, 4), (1, 5, 4), False),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("a_shape, b_shape, left", SOLVE_SHAPES)
def test_solve(dtype, a_shape, b_shape, left):
    rng = np.random.default_rng(5)
    a = with_singular_values(rng, a_shape)
    b = rng.standard_normal(b_shape)
    compare(f"solve {a_shape} {b_shape} left={left}",
            lambda A, B: linalg.solve(A, B, left=left),
            plain(lambda A, B: torch.linalg.solve(A, B, left=left)), [a, b], dtype,
            second=dtype == np.float64)


# ---- cholesky -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("upper", [False, True])
def test_cholesky(dtype, batch, upper):
    a = spd(np.random.default_rng(6), batch + (4, 4))
    compare(f"cholesky upper={upper}", lambda A: linalg.cholesky(A, upper=upper),
            plain(lambda A: torch.linalg.cholesky(A, upper=upper)), [a], dtype, second=True)


@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_reads_one_triangle(upper):
    # torch reads the lower triangle (upper: the upper one); the gradient is torch's formula,
    # symmetric, on the whole matrix
    rng = np.random.default_rng(7)
    a = spd(rng, (4, 4))
    if upper:
        a[np.tril_indices(4, -1)] = rng.standard_normal(6)
    else:
        a[np.triu_indices(4, 1)] = rng.standard_normal(6)
    compare(f"cholesky one triangle upper={upper}", lambda A: linalg.cholesky(A, upper=upper),
            plain(lambda A: torch.linalg.cholesky(A, upper=upper)), [a], np.float64)


# ---- qr -----------------------------------------------------------------------------------------

def aligned_qr(mode):
    def tfn(A, ours):
        Q, R = torch.linalg.qr(A, mode=mode)
        s = flip_to(ours[0][..., :, :R.shape[-2]], Q[..., :, :R.shape[-2]], -2)
        if Q.shape[-1] == R.shape[-2]:
            return Q * s.unsqueeze(-2), R * s.unsqueeze(-1)
        raise AssertionError("complete QR with m > n is not compared")
    return tfn


@needs_decompositions
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 5, 3), (3, 3, 5), (2, 4, 4)])
def test_qr(dtype, shape):
    a = with_singular_values(np.random.default_rng(8), shape)
    compare(f"qr {shape}", linalg.qr, aligned_qr("reduced"), [a], dtype,
            second=dtype == np.float64 and len(shape) == 4)


@needs_decompositions
@pytest.mark.parametrize("shape", [(3, 5), (2, 4, 4)])
def test_qr_complete_wide_or_square(shape):
    a = with_singular_values(np.random.default_rng(9), shape)
    compare(f"qr complete {shape}", lambda A: linalg.qr(A, mode="complete"),
            aligned_qr("complete"), [a], np.float64)


@needs_decompositions
def test_qr_gauge_invariant_loss():
    # Q R and |Q| are independent of the signs: no alignment needed
    a = with_singular_values(np.random.default_rng(10), (2, 5, 3))

    def f(qr):
        return lambda A, **kw: (lambda Q, R: ((Q @ R) ** 3, (Q * Q) * 2, (R * R).sum(-1)))(
            *qr(A))
    compare("qr gauge-invariant", f(linalg.qr), f(torch.linalg.qr), [a], np.float64,
            second=True)


@needs_decompositions
def test_qr_modes_not_differentiable():
    rng = np.random.default_rng(11)
    A = sg.Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    Q, R = linalg.qr(A, mode="r")
    assert Q.shape == (0,)
    np.testing.assert_allclose(R.numpy(), torch.linalg.qr(torch.tensor(A.numpy()))[1].numpy(),
                               atol=1e-14)
    with pytest.raises(NotImplementedError, match="mode='r'"):
        R.sum().backward()
    Q, R = linalg.qr(A, mode="complete")
    assert Q.shape == (4, 4) and R.shape == (4, 3)
    np.testing.assert_allclose(Q.numpy() @ R.numpy(), A.numpy(), atol=1e-14)
    with pytest.raises(NotImplementedError, match="mode='complete' and nrows > ncols"):
        R.sum().backward()
    assert issubclass(NotImplementedError, RuntimeError)  # torch raises a RuntimeError
    with pytest.raises(ValueError, match="unrecognized mode 'foo'"):
        linalg.qr(A, mode="foo")


# ---- svd and svdvals ----------------------------------------------------------------------------

def aligned_svd(full_matrices):
    def tfn(A, ours):
        U, S, Vh = torch.linalg.svd(A, full_matrices=full_matrices)
        k = S.shape[-1]
        s = flip_to(ours[0][..., :, :k], U[..., :, :k], -2)
        U = torch.cat([U[..., :, :k] * s.unsqueeze(-2), U[..., :, k:]], -1)
        Vh = torch.cat([Vh[..., :k, :] * s.unsqueeze(-1), Vh[..., k:, :]], -2)
        return U, S, Vh
    return tfn


@needs_decompositions
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 4, 4), (2, 5, 3), (3, 2, 3, 5)])
def test_svd(dtype, shape):
    a = with_singular_values(np.random.default_rng(12), shape)
    compare(f"svd {shape}", lambda A: linalg.svd(A, full_matrices=False),
            aligned_svd(False), [a], dtype, second=dtype == np.float64 and len(shape) < 4)


@needs_decompositions
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 5)])
def test_svd_full_matrices(shape):
    # the columns of U (rows of Vh) past min(m, n) are an arbitrary basis: their values are
    # compared only through U U^T, and both libraries ignore their gradients
    rng = np.random.default_rng(13)
    a = with_singular_values(rng, shape)
    k = min(shape[-2:])
    A = sg.Tensor(a, requires_grad=True)
    U, S, Vh = linalg.svd(A)
    assert U.shape[-1] == shape[-2] and Vh.shape[-2] == shape[-1]
    np.testing.assert_allclose(U.numpy() @ np.swapaxes(U.numpy(), -1, -2),
                               np.broadcast_to(np.eye(shape[-2]), U.shape), atol=1e-14)
    np.testing.assert_allclose(Vh.numpy() @ np.swapaxes(Vh.numpy(), -1, -2),
                               np.broadcast_to(np.eye(shape[-1]), Vh.shape), atol=1e-14)
    tA = torch.tensor(a, requires_grad=True)
    tU, tS, tVh = aligned_svd(True)(tA, ours=[U.numpy(), S.numpy(), Vh.numpy()])
    gU, gS, gVh = (rng.standard_normal(t.shape) for t in (tU, tS, tVh))
    (ours,) = sg.grad([U, S, Vh], A, [sg.Tensor(g) for g in (gU, gS, gVh)])
    (theirs,) = torch.autograd.grad([tU, tS, tVh], tA, [torch.tensor(g) for g in (gU, gS, gVh)])
    check(f"svd full_matrices {shape} grad", ours.numpy(), theirs.numpy(), np.float64)
    check(f"svd full_matrices {shape} U", U.numpy()[..., :k], tU.detach().numpy()[..., :k],
          np.float64)


@needs_decompositions
def test_svd_gauge_invariant_loss():
    a = with_singular_values(np.random.default_rng(14), (2, 4, 6))

    def f(svd):
        def loss(A, **kw):
            U, S, Vh = svd(A, full_matrices=False)
            return (U * S.unsqueeze(-2)) @ Vh, U * U, Vh.mT @ Vh
        return loss
    compare("svd gauge-invariant", f(linalg.svd), f(torch.linalg.svd), [a], np.float64,
            second=True)


@needs_decompositions
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_svd_repeated_singular_values():
    # as torch: the gradient through U or Vh is not finite; through S alone it is
    A = sg.Tensor(np.eye(3), requires_grad=True)
    U, S, Vh = linalg.svd(A)
    (g,) = sg.grad((U * sg.Tensor(np.arange(9.0).reshape(3, 3))).sum(), A)
    assert not np.all(np.isfinite(g.numpy()))
    (g,) = sg.grad(linalg.svd(A)[1].sum(), A)
    np.testing.assert_allclose(g.numpy(), np.eye(3), atol=1e-15)


@needs_decompositions
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 5, 3), (3, 5)])
def test_svdvals(dtype, shape):
    a = with_singular_values(np.random.default_rng(15), shape)
    compare(f"svdvals {shape}", linalg.svdvals, plain(torch.linalg.svdvals), [a], dtype,
            second=dtype == np.float64)


@needs_decompositions
def test_svdvals_without_grad():
    a = with_singular_values(np.random.default_rng(16), (3, 4))
    s = linalg.svdvals(sg.Tensor(a))
    assert not s.requires_grad
    np.testing.assert_allclose(s.numpy(), np.linalg.svd(a, compute_uv=False), rtol=1e-14)


@needs_decompositions
def test_outputs_of_one_decomposition_share_one_graph():
    # gradients from several outputs add up, in one backward or in several (retain_graph)
    a = with_singular_values(np.random.default_rng(27), (2, 4, 3))
    A = sg.Tensor(a, requires_grad=True)
    U, S, Vh = linalg.svd(A, full_matrices=False)
    losses = [(U ** 4).sum(), (S * S).sum(), (Vh ** 4).sum()]
    (losses[0] + losses[1] + losses[2]).backward(retain_graph=True)
    together, A.grad = A.grad.numpy().copy(), None
    for loss in losses:
        loss.backward(retain_graph=True)
    np.testing.assert_allclose(A.grad.numpy(), together, rtol=1e-12)
    with sg.no_grad():
        assert not any(t.requires_grad for t in linalg.svd(A))


# ---- eigh and eigvalsh --------------------------------------------------------------------------

def aligned_eigh(UPLO):
    def tfn(A, ours):
        L, V = torch.linalg.eigh(A, UPLO=UPLO)
        return L, V * flip_to(ours[1], V, -2).unsqueeze(-2)
    return tfn


@needs_decompositions
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("UPLO", ["L", "U"])
def test_eigh(dtype, batch, UPLO):
    rng = np.random.default_rng(17)
    a = symmetric(rng, batch + (4, 4))
    # the other triangle is never read: make it garbage (the gradient is torch's, symmetric)
    rows, cols = np.triu_indices(4, 1) if UPLO == "L" else np.tril_indices(4, -1)
    a[..., rows, cols] = rng.standard_normal(batch + (6,))
    compare(f"eigh UPLO={UPLO}", lambda A: linalg.eigh(A, UPLO=UPLO), aligned_eigh(UPLO), [a],
            dtype, second=dtype == np.float64 and batch != (2, 3))


@needs_decompositions
def test_eigh_gauge_invariant_loss():
    a = symmetric(np.random.default_rng(18), (2, 5, 5))

    def f(eigh):
        def loss(A, **kw):
            L, V = eigh(A)
            return (V * L.unsqueeze(-2) ** 2) @ V.mT, V ** 4
        return loss
    compare("eigh gauge-invariant", f(linalg.eigh), f(torch.linalg.eigh), [a], np.float64,
            second=True)


@needs_decompositions
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("UPLO", ["L", "U"])
def test_eigvalsh(dtype, UPLO):
    a = symmetric(np.random.default_rng(19), (2, 3, 4, 4))
    compare(f"eigvalsh UPLO={UPLO}", lambda A: linalg.eigvalsh(A, UPLO=UPLO),
            plain(lambda A: torch.linalg.eigvalsh(A, UPLO=UPLO)), [a], dtype,
            second=dtype == np.float64)
    s = linalg.eigvalsh(sg.Tensor(a), UPLO=UPLO)
    assert not s.requires_grad
    np.testing.assert_allclose(s.numpy(), np.linalg.eigvalsh(a, UPLO=UPLO), rtol=1e-12)


# ---- pinv ---------------------------------------------------------------------------------------

@needs_decompositions
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 5, 3), (3, 5)])
def test_pinv(dtype, shape):
    a = with_singular_values(np.random.default_rng(20), shape)
    compare(f"pinv {shape}", linalg.pinv, plain(torch.linalg.pinv), [a], dtype,
            second=dtype == np.float64)


@needs_decompositions
@pytest.mark.parametrize("dtype", DTYPES)
def test_pinv_hermitian(dtype):
    a = symmetric(np.random.default_rng(21), (2, 4, 4), -3.0, 3.0)   # eigenvalues near -3..3
    compare("pinv hermitian", lambda A: linalg.pinv(A, hermitian=True),
            plain(lambda A: torch.linalg.pinv(A, hermitian=True)), [a], dtype,
            second=dtype == np.float64)


@pytest.mark.parametrize("kw", [{}, {"atol": 0.5}, {"rtol": 0.3}, {"atol": 0.0},
                                {"atol": 0.1, "rtol": 0.4}])
@needs_decompositions
def test_pinv_tolerances(kw):
    # singular values straddling the cutoffs; the default cutoff drops only 1e-17 and 0
    rng = np.random.default_rng(22)
    u, v = orthonormal(rng, (2,), 5, 4), orthonormal(rng, (2,), 4, 4)
    s = np.array([[3.0, 1.0, 0.6, 1e-17], [2.0, 0.9, 0.2, 0.0]])
    a = u * s[..., None, :] @ np.swapaxes(v, -1, -2)
    ours = linalg.pinv(sg.Tensor(a), **kw).numpy()
    theirs = torch.linalg.pinv(torch.tensor(a), **kw).numpy()
    check(f"pinv tolerances {kw}", ours, theirs, np.float64)


@needs_decompositions
def test_pinv_tensor_tolerance():
    a = with_singular_values(np.random.default_rng(23), (3, 4, 4), 0.1, 2.0)
    atol = np.array([0.0, 0.5, 1.5])
    ours = linalg.pinv(sg.Tensor(a), atol=sg.Tensor(atol)).numpy()
    theirs = torch.linalg.pinv(torch.tensor(a), atol=torch.tensor(atol)).numpy()
    check("pinv tensor atol", ours, theirs, np.float64)


# ---- matrix_norm --------------------------------------------------------------------------------

ORDS = ["fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ord", ORDS)
@pytest.mark.parametrize("shape, dim, keepdim", [((2, 3, 4, 4), (-2, -1), False),
                                                 ((3, 5), (-2, -1), True),
                                                 ((3, 4, 5), (2, 0), False),
                                                 ((3, 4, 5), (0, 2), True)])
def test_matrix_norm(dtype, ord, shape, dim, keepdim):
    if ord in ("nuc", 2, -2):
        require_decompositions()
    a = np.random.default_rng(24).standard_normal(shape)
    second = dtype == np.float64 and ord in ("fro", "nuc", 2, 1)
    compare(f"matrix_norm ord={ord}", lambda A: linalg.matrix_norm(A, ord, dim, keepdim),
            plain(lambda A: torch.linalg.matrix_norm(A, ord, dim, keepdim)), [a], dtype,
            second=second)


@needs_decompositions
def test_matrix_norm_at_zero():
    for ord in ORDS:
        A = sg.Tensor(np.zeros((3, 3)), requires_grad=True)
        tA = torch.zeros((3, 3), dtype=torch.float64, requires_grad=True)
        (g,) = sg.grad(linalg.matrix_norm(A, ord), A)
        (tg,) = torch.autograd.grad(torch.linalg.matrix_norm(tA, ord), tA)
        assert np.all(np.isfinite(g.numpy())), ord
        if ord in ("fro", 1, -1, np.inf, -np.inf):   # the SVD of 0 has an arbitrary basis
            np.testing.assert_array_equal(g.numpy(), tg.numpy())


# ---- errors -------------------------------------------------------------------------------------

def test_singular_and_indefinite_errors():
    singular = sg.Tensor(np.zeros((2, 3, 3)))
    with pytest.raises(LinAlgError, match=r"linalg\.inv: .*singular.*\(2, 3, 3\)"):
        linalg.inv(singular)
    with pytest.raises(LinAlgError, match=r"linalg\.solve: .*singular.*\(2, 3, 3\)"):
        linalg.solve(singular, sg.Tensor(np.ones(3)))
    with pytest.raises(LinAlgError, match=r"linalg\.cholesky: .*positive-definite.*\(3, 3\)"):
        linalg.cholesky(sg.Tensor(-np.eye(3)))
    assert issubclass(LinAlgError, RuntimeError)
    A = sg.Tensor(np.diag([1.0, 0.0, 2.0]), requires_grad=True)
    sign, logabsdet = linalg.slogdet(A)
    assert sign.item() == 0 and logabsdet.item() == -np.inf
    with pytest.raises(LinAlgError, match=r"linalg\.slogdet: .*singular"):
        logabsdet.backward()


@pytest.mark.parametrize("call, error, message", [
    (lambda: linalg.inv(sg.Tensor(np.zeros((3, 4)))), ValueError, r"linalg\.inv: .*3 by 4"),
    (lambda: linalg.det(sg.Tensor(np.zeros(3))), ValueError, r"at least 2 dimensions.*\(3,\)"),
    (lambda: linalg.eigh(sg.Tensor(np.zeros((2, 3)))), ValueError, "square"),
    (lambda: linalg.eigh(sg.Tensor(np.eye(2)), UPLO="X"), ValueError, "UPLO"),
    (lambda: linalg.cholesky(sg.Tensor(np.eye(3, dtype=np.int64))), TypeError, "int64"),
    (lambda: linalg.svd(np.eye(3)), TypeError, "Tensor"),
    (lambda: linalg.solve(sg.Tensor(np.eye(3)), sg.Tensor(np.ones((4, 1)))), ValueError,
     r"AX = B \(3x3 and 4x1\)"),
    (lambda: linalg.solve(sg.Tensor(np.eye(3)), sg.Tensor(np.ones(3)), left=False), ValueError,
     r"XA = B \(3x3 and 3x1\)"),
    (lambda: linalg.solve(sg.Tensor(np.ones((2, 3, 3))), sg.Tensor(np.ones((4, 3, 1)))),
     ValueError, "broadcast"),
    (lambda: linalg.solve(sg.Tensor(np.eye(3)), sg.Tensor(np.ones(3, np.float32))), TypeError,
     "dtype"),
    (lambda: linalg.matrix_norm(sg.Tensor(np.eye(3)), 3), ValueError, "order 3"),
    (lambda: linalg.matrix_norm(sg.Tensor(np.eye(3)), "bla"), ValueError, "order 'bla'"),
    (lambda: linalg.matrix_norm(sg.Tensor(np.eye(3)), True), ValueError, "order True"),
    (lambda: linalg.matrix_norm(sg.Tensor(np.ones((2, 3, 4))), dim=(0, 0)), ValueError,
     "different"),
    (lambda: linalg.matrix_norm(sg.Tensor(np.ones((2, 3, 4))), dim=(0, 3)), IndexError,
     "out of range"),
])
def test_argument_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


@needs_decompositions
def test_float32_stays_float32():
    rng = np.random.default_rng(25)
    A = sg.Tensor(with_singular_values(rng, (3, 3)).astype(np.float32))
    outs = [linalg.det(A), *linalg.slogdet(A), linalg.inv(A), linalg.solve(A, A),
            *linalg.qr(A), *linalg.svd(A), linalg.svdvals(A), *linalg.eigh(A @ A.mT),
            linalg.eigvalsh(A @ A.mT), linalg.pinv(A), linalg.pinv(A @ A.mT, hermitian=True),
            linalg.cholesky(A @ A.mT)] + [linalg.matrix_norm(A, o) for o in ORDS]
    assert all(o.dtype == np.float32 for o in outs), [o.dtype for o in outs]
