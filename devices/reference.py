"""The reference device: the twelve primitives and the plumbing, and nothing else.

Every other kernel simplegrad calls (matmul, tanh, where, take, scatter-add, pad, ...) runs
through the default, derived implementations on ``simplegrad.Device``. The whole test suite
runs on this device too (``pytest --device reference``), which is what shows that twelve
primitives are enough. It is slow on purpose: read it as the template for a new backend.
"""

import numpy as np

import simplegrad


class ReferenceDevice(simplegrad.Device):
    """NumPy arrays, twelve primitives, eight plumbing methods."""

    name = "reference"

    # ---- the twelve primitives ----------------------------------------------------------------
    def exp(self, x):
        return np.exp(x)

    def log(self, x):
        return np.log(x)

    def sum(self, x, axis=None, keepdims=False):
        return np.sum(x, axis=axis, keepdims=keepdims)

    def max(self, x, axis=None, keepdims=False):
        return np.max(x, axis=axis, keepdims=keepdims)

    def argmax(self, x, axis=None, keepdims=False):
        return np.argmax(x, axis=axis, keepdims=keepdims)

    def equal(self, x, y):
        return np.equal(x, y)

    def greater_equal(self, x, y):
        return np.greater_equal(x, y)

    def add(self, x, y):
        return np.add(x, y)

    def mul(self, x, y):
        return np.multiply(x, y)

    def pow(self, x, y):
        return np.power(x, y)

    def einsum(self, subscripts, *operands):
        return np.einsum(subscripts, *operands)

    def as_strided(self, x, shape, strides, offset=0):
        flat = np.ascontiguousarray(x).reshape(-1)[offset:]
        byte_strides = tuple(s * flat.itemsize for s in strides)
        return np.lib.stride_tricks.as_strided(flat, shape, byte_strides, writeable=False)

    # ---- plumbing -----------------------------------------------------------------------------
    def array(self, data, dtype=None):
        if not isinstance(data, np.ndarray) and hasattr(data, "__dlpack__"):
            data = np.from_dlpack(data)
        return np.asarray(data, dtype=dtype)

    def to_host(self, x):
        return np.asarray(x)

    def full(self, shape, value, dtype):
        return np.full(shape, value, dtype=dtype)

    def arange(self, n, dtype):
        return np.arange(n, dtype=dtype)

    def reshape(self, x, shape):
        return np.reshape(x, shape)

    def copy(self, x):
        return np.array(x, order="C", copy=True)

    def astype(self, x, dtype):
        return np.asarray(x).astype(dtype)

    def assign(self, dst, src):
        np.copyto(dst, src, casting="unsafe")
