"""The Tensor class: construction and dtype rules, properties, repr, creation functions,
comparisons, the NumPy protocol and DLPack interop. Runs on every device."""

import operator

import numpy as np
import pytest
from helpers import assert_close, torch

import simplegrad as sg

pytestmark = pytest.mark.usefixtures("device")


def host(t):
    return np.asarray(t.detach() if isinstance(t, sg.Tensor) else t)


# ---- construction and dtypes -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, np.int32, np.int64,
                                   np.uint8, np.bool_])
def test_numpy_arrays_keep_their_dtype_and_memory(dtype):
    a = np.arange(6).reshape(2, 3).astype(dtype)
    t = sg.Tensor(a)
    assert t.dtype == np.dtype(dtype)
    assert t.shape == (2, 3)
    assert np.shares_memory(t.numpy(), a), "Tensor(ndarray) copied the array"
    a[0, 0] = 1
    assert host(t)[0, 0] == 1


@pytest.mark.parametrize("data, dtype", [
    (1.5, np.float32), ([1.0, 2.0], np.float32), ([[1.0], [2.5]], np.float32),
    ([1, 2.5], np.float32), (3, np.int64), ([1, 2, 3], np.int64), (True, np.bool_),
    ([True, False], np.bool_),
])
def test_python_data_dtypes(data, dtype):
    t = sg.Tensor(data)
    assert t.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(host(t), np.asarray(data, dtype=dtype))
    assert sg.tensor(data).dtype == np.dtype(dtype)
    assert torch.tensor(data).numpy().dtype == np.dtype(dtype)  # the same rule as PyTorch's


def test_explicit_dtype_and_tensor_from_tensor():
    assert sg.Tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert sg.Tensor(np.arange(3.0), dtype=np.float32).dtype == np.float32
    assert sg.tensor([1.0], dtype=sg.float64, requires_grad=True).requires_grad
    t = sg.Tensor(np.arange(3.0))
    u = sg.Tensor(t)
    assert u is not t and u.data is t.data


def _dtype_cases():
    f32 = lambda m: m.ones(2, dtype=m.float32)
    f64 = lambda m: m.ones(2, dtype=m.float64)
    i64 = lambda m: m.arange(2)
    return {
        "f32 * python float": lambda m: f32(m) * 2.5,
        "f32 + python int": lambda m: f32(m) + 1,
        "python int - f32": lambda m: 1 - f32(m),
        "python float ** f32": lambda m: 2.0 ** f32(m),
        "f32 / python int": lambda m: f32(m) / 3,
        "f32 + f64": lambda m: f32(m) + f64(m),
        "f64 * f32": lambda m: f64(m) * f32(m),
        "i64 + python float": lambda m: i64(m) + 0.5,
        "i64 * python int": lambda m: i64(m) * 3,
        "i64 / python int": lambda m: i64(m) / 2,
        "i64 ** 2": lambda m: i64(m) ** 2,
        "i64 + f32": lambda m: i64(m) + f32(m),
        "f64 + i64": lambda m: f64(m) + i64(m),
        "-i64": lambda m: -i64(m),
        "i64.exp()": lambda m: i64(m).exp(),
        "i64.sum()": lambda m: i64(m).sum(),
        "f32 > i64": lambda m: f32(m) > i64(m),
    }


@pytest.mark.parametrize("case", sorted(_dtype_cases()))
def test_arithmetic_dtype_matches_torch(case):
    fn = _dtype_cases()[case]
    ours, theirs = fn(sg), fn(torch)
    assert ours.dtype == np.dtype(str(theirs.dtype).removeprefix("torch.")), case
    np.testing.assert_allclose(host(ours), theirs.numpy(), rtol=1e-6, atol=0)


def test_python_scalars_do_not_promote_float32():
    t = sg.Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    for result in (t * 2.5, t + 1, 1 - t, t / 3.0, t ** 2.0, 2.0 ** t, -t, t.exp() * 1e-3):
        assert result.dtype == np.float32
    (t * 2.5).sum().backward()
    assert t.grad.dtype == np.float32


# ---- properties --------------------------------------------------------------------------------

def test_properties():
    a = np.arange(6.0).reshape(2, 3)
    t = sg.Tensor(a, requires_grad=True)
    assert t.shape == (2, 3) and isinstance(t.shape, tuple)
    assert t.ndim == 2 and t.numel() == 6 and t.size() == (2, 3) and t.size(1) == 3
    assert t.dtype == np.float64 and isinstance(t.dtype, np.dtype)
    assert t.requires_grad and t.is_leaf and t.grad is None and t.grad_fn is None
    assert host(t.data).shape == (2, 3)
    assert isinstance(t.numpy(), np.ndarray) and np.shares_memory(t.numpy(), a)
    assert t.tolist() == a.tolist()
    assert len(t) == 2
    assert sg.Tensor(np.zeros((0, 4))).numel() == 0


def test_item_and_conversions():
    assert sg.Tensor(5).item() == 5 and isinstance(sg.Tensor(5).item(), int)
    value = sg.Tensor(np.array([2.5])).item()
    assert value == 2.5 and isinstance(value, float)
    assert float(sg.Tensor(np.array(1.25))) == 1.25 and int(sg.Tensor(7)) == 7
    assert bool(sg.Tensor(1.0)) and not bool(sg.Tensor(0.0))
    with pytest.raises(ValueError, match=r"\(2,\)"):
        sg.Tensor([1.0, 2.0]).item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(sg.Tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="0-d"):
        len(sg.Tensor(3.0))


def test_array_protocol():
    a = np.arange(6.0).reshape(2, 3)
    t = sg.Tensor(a)
    np.testing.assert_array_equal(np.asarray(t), a)
    assert np.asarray(t, dtype=np.float32).dtype == np.float32
    assert np.array(t).shape == (2, 3)


def test_iteration_yields_rows_that_carry_gradients():
    a = np.arange(6.0).reshape(3, 2)
    t = sg.Tensor(a, requires_grad=True)
    rows = list(t)
    assert len(rows) == 3 and all(isinstance(r, sg.Tensor) and r.shape == (2,) for r in rows)
    np.testing.assert_array_equal(host(rows[2]), a[2])
    (rows[0] * 2 + rows[2]).sum().backward()
    np.testing.assert_array_equal(host(t.grad), [[2.0, 2.0], [0.0, 0.0], [1.0, 1.0]])


# ---- repr --------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, requires_grad", [
    ([1.0, 2.0], False), ([[1.0, 2.0], [3.0, 4.0]], False), ([1, 2], False),
    ([True, False], False), ([1.0, 2.0], True), (3.0, False),
])
def test_repr_matches_torch_for_default_dtypes(data, requires_grad):
    ours = sg.tensor(data, requires_grad=requires_grad)
    theirs = torch.tensor(data, requires_grad=requires_grad)
    assert repr(ours) == repr(theirs)


def test_repr_shows_dtype_and_grad_fn():
    t = sg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert repr(t).startswith("tensor(") and "dtype=float64" in repr(t)
    assert "requires_grad=True" in repr(t)
    r = repr(t * 2)
    assert r.startswith("tensor(") and "grad_fn=<" in r and "requires_grad" not in r
    assert "grad_fn" not in repr((t * 2).detach())


# ---- creation functions ------------------------------------------------------------------------

def test_zeros_ones_full_eye():
    assert sg.zeros(2, 3).shape == (2, 3) and sg.zeros((2, 3)).shape == (2, 3)
    assert sg.zeros(2, 3).dtype == np.float32 and not host(sg.zeros(2, 3)).any()
    np.testing.assert_array_equal(host(sg.ones(4, dtype=sg.float64)), np.ones(4))
    assert sg.ones(4, dtype=sg.float64).dtype == np.float64
    assert sg.ones(2, requires_grad=True).requires_grad
    np.testing.assert_array_equal(host(sg.full((2, 2), 7)), np.full((2, 2), 7))
    assert sg.full((2, 2), 7).dtype == np.int64 == torch.full((2, 2), 7).numpy().dtype
    assert sg.full((2,), 0.5).dtype == np.float32 == torch.full((2,), 0.5).numpy().dtype
    np.testing.assert_array_equal(host(sg.eye(3)), np.eye(3))
    np.testing.assert_array_equal(host(sg.eye(2, 3)), np.eye(2, 3))
    assert sg.eye(3).dtype == np.float32


@pytest.mark.parametrize("args, expected, dtype", [
    ((5,), np.arange(5), np.int64), ((2, 7, 2), np.arange(2, 7, 2), np.int64),
    ((5.0,), np.arange(5.0), np.float32), ((0, 1, 0.25), np.arange(0, 1, 0.25), np.float32),
])
def test_arange(args, expected, dtype):
    t = sg.arange(*args)
    assert t.dtype == np.dtype(dtype) == torch.arange(*args).numpy().dtype
    np.testing.assert_array_equal(host(t), expected.astype(dtype))


def test_random_creation_and_manual_seed():
    sg.manual_seed(1234)
    a, u = sg.randn(3, 4), sg.rand(5)
    sg.manual_seed(1234)
    b, v = sg.randn(3, 4), sg.rand(5)
    np.testing.assert_array_equal(host(a), host(b))
    np.testing.assert_array_equal(host(u), host(v))
    sg.manual_seed(4321)
    assert not np.array_equal(host(sg.randn(3, 4)), host(a))
    assert a.shape == (3, 4) and a.dtype == np.float32 and sg.randn((2, 2)).shape == (2, 2)
    sg.manual_seed(0)
    n = sg.randn(40_000, dtype=sg.float64)
    assert n.dtype == np.float64
    # standard normal: the sample mean's sd is 1/200, its std's about 1/283; 5 sd bounds
    assert abs(host(n).mean()) < 0.025 and abs(host(n).std() - 1) < 0.018
    r = host(sg.rand(40_000))
    assert r.min() >= 0 and r.max() < 1 and abs(r.mean() - 0.5) < 0.008


def test_like_functions_keep_shape_and_dtype():
    t = sg.Tensor(np.ones((2, 3)))  # float64
    for fn in (sg.zeros_like, sg.ones_like, sg.randn_like, sg.rand_like):
        out = fn(t)
        assert out.shape == (2, 3) and out.dtype == np.float64, fn.__name__
        assert fn(t, dtype=sg.float32).dtype == np.float32
        assert not out.requires_grad and fn(t, requires_grad=True).requires_grad
    np.testing.assert_array_equal(host(sg.zeros_like(t)), np.zeros((2, 3)))
    np.testing.assert_array_equal(host(sg.ones_like(t)), np.ones((2, 3)))
    np.testing.assert_array_equal(host(sg.full_like(t, 3.5)), np.full((2, 3), 3.5))
    assert sg.full_like(t, 3).dtype == np.float64
    i = sg.Tensor(np.arange(3))
    assert sg.zeros_like(i).dtype == np.int64


# ---- comparisons -------------------------------------------------------------------------------

@pytest.mark.parametrize("op", [operator.eq, operator.ne, operator.lt, operator.le, operator.gt,
                                operator.ge], ids=lambda op: op.__name__)
def test_comparisons_give_bool_tensors_without_gradients(op):
    a = np.array([1.0, 2.0, 3.0, np.nan, np.inf])
    b = np.array([3.0, 2.0, 1.0, np.nan, np.inf])
    x, y = sg.Tensor(a, requires_grad=True), sg.Tensor(b, requires_grad=True)
    for out, expected in ((op(x, y), op(a, b)), (op(x, 2.0), op(a, 2.0)),
                          (op(2.0, x), op(2.0, a)), (op(b, x), op(b, a))):
        assert isinstance(out, sg.Tensor) and out.dtype == np.bool_
        assert not out.requires_grad and out.grad_fn is None
        np.testing.assert_array_equal(host(out), expected)


# ---- the NumPy protocol ------------------------------------------------------------------------

def _pair(a):
    return sg.Tensor(a.copy(), requires_grad=True), torch.tensor(a.copy(), requires_grad=True)


def test_numpy_ufuncs_are_recorded():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    (x, tx), (y, ty) = _pair(a), _pair(b)
    out = np.exp(x) * np.maximum(x, y) + np.tanh(y)
    ref = torch.exp(tx) * torch.maximum(tx, ty) + torch.tanh(ty)
    assert isinstance(out, sg.Tensor) and out.grad_fn is not None
    assert_close(out, ref, what="forward")
    out.sum().backward()
    ref.sum().backward()
    assert_close(x.grad, tx.grad, what="grad x")
    assert_close(y.grad, ty.grad, what="grad y")
    assert np.allclose(x.grad, tx.grad.numpy(), rtol=1e-12, atol=0)


def test_numpy_functions_are_recorded():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    (x, tx), (u, tu) = _pair(a), _pair(b)
    c = a > 0
    parts = [
        (np.sum(x, axis=0), tx.sum(0)),
        (np.mean(x), tx.mean()),
        (np.einsum("ij,jk->ik", x, u), torch.einsum("ij,jk->ik", tx, tu)),
        (np.concatenate([x, x * 2], axis=1), torch.cat([tx, tx * 2], dim=1)),
        (np.where(c, x, -x), torch.where(torch.tensor(c), tx, -tx)),
        (np.maximum(x, 0.5), torch.clamp(tx, min=0.5)),
    ]
    loss, ref_loss = 0.0, 0.0
    for i, (out, ref) in enumerate(parts):
        assert isinstance(out, sg.Tensor) and out.requires_grad, f"part {i}"
        assert_close(out, ref, what=f"part {i}")
        loss, ref_loss = loss + (out * out).sum(), ref_loss + (ref * ref).sum()
    loss.backward()
    ref_loss.backward()
    assert_close(x.grad, tx.grad, what="grad x")
    assert_close(u.grad, tu.grad, what="grad u")


def test_ndarray_with_tensor_gives_a_recorded_tensor():
    a = np.arange(3.0)
    t = sg.Tensor(np.ones(3), requires_grad=True)
    for out in (a + t, a * t, a - t, a / (t + 1), a @ t):
        assert isinstance(out, sg.Tensor) and out.grad_fn is not None
    (a * t).sum().backward()
    np.testing.assert_array_equal(host(t.grad), a)


def test_numpy_functions_without_a_rule_return_plain_arrays_or_refuse():
    a = np.array([[3.0, -1.0], [0.5, 2.0]])
    p = np.partition(sg.Tensor(a), 1, axis=1)  # no gradient wanted: NumPy's plain result
    assert type(p) is np.ndarray
    np.testing.assert_array_equal(p, np.partition(a, 1, axis=1))
    with pytest.raises(RuntimeError, match=r"np\.partition.*\.detach\(\)"):
        np.partition(sg.Tensor(a, requires_grad=True), 1)  # its gradient would be lost
    with pytest.raises(RuntimeError, match=r"np\.fft\.fft.*\.detach\(\)"):
        np.fft.fft(sg.Tensor(a, requires_grad=True))
    norm = np.linalg.norm(sg.Tensor(a, requires_grad=True))  # recorded: a rule exists
    assert isinstance(norm, sg.Tensor) and norm.grad_fn is not None
    assert norm.item() == pytest.approx(np.linalg.norm(a), rel=1e-15)


# ---- DLPack ------------------------------------------------------------------------------------

def test_torch_from_dlpack_shares_memory():
    t = sg.Tensor(np.arange(4.0))
    tt = torch.from_dlpack(t)
    assert tt.dtype == torch.float64 and tuple(tt.shape) == (4,)
    tt[1] = 9.0
    assert host(t)[1] == 9.0
    scalar = (t * 2).sum()
    assert torch.from_dlpack(scalar).item() == pytest.approx(2 * (0 + 9 + 2 + 3))


def test_tensor_from_torch_shares_memory():
    tt = torch.arange(3, dtype=torch.float32)
    t = sg.Tensor(tt)
    assert t.dtype == np.float32 and t.shape == (3,)
    tt[0] = 7.0
    assert host(t)[0] == 7.0
    assert sg.Tensor(torch.arange(3)).dtype == np.int64


def test_torch_tensor_that_requires_grad_is_refused():
    with pytest.raises(TypeError, match=r"\.detach\(\)"):
        sg.Tensor(torch.ones(3, requires_grad=True))
    t = sg.Tensor(torch.ones(3, requires_grad=True).detach())
    np.testing.assert_array_equal(host(t), np.ones(3, dtype=np.float32))


# ---- module-level functions --------------------------------------------------------------------

SHADOWED = ("sum", "max", "min", "abs", "all", "any", "round", "pow")


def test_torch_style_functions_that_share_a_builtins_name():
    x = sg.Tensor(np.array([[1.0, -4.0], [3.0, 2.0]]))
    np.testing.assert_array_equal(host(sg.sum(x, 0)), [4.0, -2.0])
    np.testing.assert_array_equal(host(sg.max(x, 1).values), [1.0, 3.0])
    np.testing.assert_array_equal(host(sg.abs(x)), np.abs(host(x)))
    assert bool(sg.any(x < 0)) and not bool(sg.all(x < 0))
    namespace = {}
    exec("from simplegrad import *", namespace)
    assert not set(SHADOWED) & set(namespace), "import * must not hide Python's builtins"


def test_simplegrad_calls_pythons_builtins_as_builtins():
    # simplegrad.py defines sum, max, ... as torch-style functions, so inside the module a bare
    # max(...) would call simplegrad's: Python's must be spelled builtins.max(...)
    import io
    import tokenize
    with open(sg.__file__) as f:
        tokens = list(tokenize.generate_tokens(io.StringIO(f.read()).readline))
    bare = [f"line {t.start[0]}: {t.string}(" for i, t in enumerate(tokens[1:-1], 1)
            if t.type == tokenize.NAME and t.string in SHADOWED
            and tokens[i + 1].string == "(" and tokens[i - 1].string not in (".", "def")]
    assert not bare, f"bare calls of shadowed builtins in simplegrad.py: {bare}"
