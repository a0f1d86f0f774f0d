"""torch's tensor utilities that ordinary programs reach for: mm / bmm / mv, isclose /
allclose / equal, from_numpy / as_tensor / is_tensor, and the Tensor methods t(), dim(),
type_as, element_size, nbytes and new_zeros / new_ones / new_full / new_tensor, each against
torch's own call."""

import numpy as np
import pytest
from helpers import check, torch
from test_ops import lib

import simplegrad as sg


@pytest.mark.parametrize("name, shapes", [
    ("mm", [(3, 4), (4, 5)]), ("bmm", [(2, 3, 4), (2, 4, 5)]), ("mv", [(3, 4), (4,)])])
def test_matrix_products_values_and_gradients(device, name, shapes):
    check(lambda x, y: getattr(lib(x), name)(x, y), shapes)  # module functions
    check(lambda x, y: getattr(x, name)(y), shapes)  # methods


@pytest.mark.parametrize("name, shapes, message", [
    ("mm", [(3, 4), (4,)], r"mm: expected operands of 2 and 2 dims, got shapes \(3, 4\) and "
                           r"\(4,\)"),
    ("mm", [(3, 4), (5, 6)], r"mm: shapes \(3, 4\) and \(5, 6\) cannot be multiplied "
                             r"\(4 != 5\)"),
    ("bmm", [(2, 3, 4), (2, 5, 6)], r"bmm: shapes \(2, 3, 4\) and \(2, 5, 6\) cannot be "
                                    r"multiplied \(4 != 5\)"),
    ("mv", [(3, 4), (5,)], r"mv: shapes \(3, 4\) and \(5,\) cannot be multiplied \(4 != 5\)"),
    ("bmm", [(2, 3, 4), (3, 4, 5)], r"bmm: the batch sizes of shapes \(2, 3, 4\) and "
                                    r"\(3, 4, 5\) differ"),
    ("bmm", [(3, 4), (4, 5)], r"bmm: expected operands of 3 and 3 dims"),
    ("mv", [(3, 4), (4, 1)], r"mv: expected operands of 2 and 1 dims"),
])
def test_matrix_products_refuse_wrong_ranks_as_torch(name, shapes, message):
    xs = [np.ones(s) for s in shapes]
    with pytest.raises(RuntimeError):
        getattr(torch, name)(*map(torch.tensor, xs))
    with pytest.raises(RuntimeError, match=message):
        getattr(sg, name)(*map(sg.Tensor, xs))


CLOSE_CASES = [
    ([1.0, 2.0, 3.0], [1.0 + 1e-9, 2.0 + 1e-4, 3.0]),
    ([np.inf, -np.inf, np.inf, 1.0], [np.inf, -np.inf, -np.inf, np.inf]),
    ([np.nan, 1.0, np.nan], [np.nan, np.nan, 2.0]),
    ([0.0, 1e-9, -1e-9], [1e-8, 0.0, 2e-8]),
    ([1e300, -1e300], [1e300 * (1 + 1e-6), 1e300]),
]


@pytest.mark.parametrize("a, b", CLOSE_CASES)
@pytest.mark.parametrize("options", [{}, {"equal_nan": True}, {"rtol": 1e-3, "atol": 0.0},
                                     {"rtol": 0.0, "atol": 1e-8}])
def test_isclose_and_allclose_as_torch(device, a, b, options):
    x, y = np.array(a), np.array(b)
    expected = torch.isclose(torch.tensor(x), torch.tensor(y), **options).numpy()
    got = sg.isclose(sg.Tensor(x), sg.Tensor(y), **options)
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got.numpy(), expected)
    np.testing.assert_array_equal(sg.Tensor(x).isclose(sg.Tensor(y), **options).numpy(),
                                  expected)
    assert sg.allclose(sg.Tensor(x), sg.Tensor(y), **options) is bool(expected.all())


def test_isclose_broadcasts_takes_numbers_and_integers_and_records_nothing(device):
    x = sg.Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    got = sg.isclose(x, np.array([1.0, 4.0]))
    row = torch.tensor([1.0, 4.0], dtype=torch.float64)
    np.testing.assert_array_equal(got.numpy(), torch.isclose(torch.tensor(x.numpy()), row).numpy())
    assert not got.requires_grad
    ints = sg.Tensor(np.array([1, 2, 3]))
    np.testing.assert_array_equal(sg.isclose(ints, sg.Tensor(np.array([1, 5, 3]))).numpy(),
                                  [True, False, True])
    assert sg.allclose(x, x.detach() + 1e-9) and not sg.allclose(x, x.detach() + 1)


def test_isclose_refuses_negative_or_non_numeric_tolerances():
    x = sg.Tensor(np.ones(2))
    with pytest.raises(RuntimeError, match=r"isclose: rtol and atol must be non-negative"):
        sg.isclose(x, x, rtol=-1)
    with pytest.raises(TypeError, match=r"isclose: atol must be a number, not"):
        sg.isclose(x, x, atol="1")


def test_equal_as_torch():
    a = np.arange(6.0).reshape(2, 3)
    for x, y in [(a, a.copy()), (a, a + 1), (a, a.T.copy()), (a, a.reshape(6))]:
        assert sg.equal(sg.Tensor(x), sg.Tensor(y)) is torch.equal(torch.tensor(x),
                                                                    torch.tensor(y))
        assert sg.Tensor(x).equal(sg.Tensor(y)) is torch.equal(torch.tensor(x), torch.tensor(y))
    nan = np.array([np.nan])
    assert sg.equal(sg.Tensor(nan), sg.Tensor(nan)) is torch.equal(torch.tensor(nan),
                                                                    torch.tensor(nan))
    with pytest.raises(TypeError, match=r"equal: expected two tensors, got None"):
        sg.equal(sg.Tensor(a), None)


def test_from_numpy_shares_memory_and_refuses_other_objects():
    array = np.arange(4.0)
    t = sg.from_numpy(array)
    array[0] = 10.0
    assert t.dtype == np.float64 and t.numpy()[0] == 10.0  # the same memory, as torch's
    assert isinstance(t.device, sg.NumpyDevice)
    with pytest.raises(TypeError, match=r"from_numpy: expected a NumPy array, got list"):
        sg.from_numpy([1.0, 2.0])
    with pytest.raises(TypeError):
        torch.from_numpy([1.0, 2.0])


def test_as_tensor_and_is_tensor():
    t = sg.Tensor(np.ones(3, np.float32))
    assert sg.as_tensor(t) is t  # a tensor is returned as it is, as in torch
    assert sg.as_tensor(t, dtype=sg.float64).dtype == np.float64
    array = np.zeros(3)
    shared = sg.as_tensor(array, device="cpu")
    array[1] = 2.0
    assert shared.numpy()[1] == 2.0  # shares the array's memory, as torch.as_tensor does
    assert sg.as_tensor([1, 2]).dtype == torch.as_tensor([1, 2]).numpy().dtype
    assert sg.is_tensor(t) and not sg.is_tensor(array) and not sg.is_tensor(None)


def test_shape_and_size_methods_as_torch():
    for shape, dtype in [((2, 3), np.float32), ((), np.float64), ((4, 1, 2), np.int64),
                         ((0, 3), np.float16)]:
        a = np.zeros(shape, dtype)
        t, ref = sg.Tensor(a), torch.from_numpy(a)
        assert t.dim() == ref.dim()
        assert t.element_size() == ref.element_size()
        assert t.nbytes == ref.nbytes


@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
def test_t_as_torch(device, shape):
    check(lambda x: x.t(), [shape])


def test_t_refuses_more_than_two_dims():
    with pytest.raises(RuntimeError):
        torch.zeros(2, 3, 4).t()
    with pytest.raises(RuntimeError, match=r"t: expects a tensor of at most 2 dims, got shape "
                                           r"\(2, 3, 4\)"):
        sg.Tensor(np.zeros((2, 3, 4))).t()


def test_type_as_and_new_tensors_as_torch(device):
    base = np.arange(3, dtype=np.float32)
    t, ref = sg.Tensor(base), torch.from_numpy(base)
    other = sg.Tensor(np.zeros(2, np.int64))
    assert t.type_as(other).dtype == np.int64
    np.testing.assert_array_equal(t.type_as(other).numpy(),
                                  ref.type_as(torch.zeros(2, dtype=torch.int64)).numpy())
    for name, args, kwargs in [
        ("new_zeros", (2, 3), {}), ("new_zeros", ((2, 3),), {}), ("new_ones", (4,), {}),
        ("new_ones", ((2,),), {"dtype": np.float64}), ("new_full", ((2, 2), 7.5), {}),
        ("new_tensor", ([1, 2, 3],), {}), ("new_tensor", ([[1.5]],), {"dtype": np.float64}),
    ]:
        torch_kwargs = {k: getattr(torch, np.dtype(v).name) for k, v in kwargs.items()}
        expected = getattr(ref, name)(*args, **torch_kwargs).numpy()
        got = getattr(t, name)(*args, **kwargs)
        assert got.dtype == expected.dtype and got.shape == expected.shape, name
        np.testing.assert_array_equal(got.numpy(), expected)
        assert got.device == t.device and not got.requires_grad
    assert t.new_zeros(2, requires_grad=True).requires_grad
    with pytest.raises(RuntimeError, match=r"new_zeros: cannot make a tensor of negative size"):
        t.new_zeros(-1)


@pytest.mark.parametrize("name", ["float16", "float32", "float64", "int8", "int16", "int32",
                                  "int64", "uint8", "half", "double", "short", "long"])
def test_dtype_names_as_torch(name):
    expected = torch.zeros(2, dtype=getattr(torch, name)).numpy().dtype
    assert np.dtype(getattr(sg, name)) == expected
    assert sg.zeros(2, dtype=getattr(sg, name)).dtype == expected
    assert sg.Tensor(np.ones(2)).astype(getattr(sg, name)).dtype == expected


def _cupy_gpus():
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:
        return 0


def test_device_names_and_cuda_availability():
    gpus = _cupy_gpus()
    assert sg.cuda.device_count() == gpus
    assert sg.cuda.is_available() is (gpus > 0)
    cpu = sg.device("cpu")
    assert isinstance(cpu, sg.NumpyDevice) and sg.device(cpu) is cpu
    t = sg.Tensor(np.ones(2)).to(sg.device("cuda" if sg.cuda.is_available() else "cpu"))
    assert t.device == (sg.device("cuda") if gpus else cpu)
    with pytest.raises(TypeError, match=r"device: a device is a simplegrad Device, 'cpu' or "
                                        r"'cuda\[:N\]', not 'tpu'"):
        sg.device("tpu")
    try:
        import cupy  # noqa: F401
    except ImportError:  # without CuPy, "cuda" names a device that cannot be made
        with pytest.raises(ImportError, match=r"CupyDevice needs CuPy and an NVIDIA GPU"):
            sg.device("cuda")
