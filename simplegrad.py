"""simplegrad: an eager autograd library for NumPy, in one file.

A ``Tensor`` records the operations applied to it; ``backward()`` walks that graph
depth-first and differentiates only what leads to a tensor that requires a gradient.
All numerical work goes through a ``Device``: NumPy by default, CuPy on a GPU, or any
backend that implements twelve crude primitives and a little plumbing.

    import numpy as np
    from simplegrad import Tensor

    w = Tensor(np.random.randn(3, 2), requires_grad=True)
    x = Tensor(np.random.randn(4, 3))
    loss = (x @ w).tanh().sum()
    loss.backward()
    print(w.grad)                        # d loss / d w, shape (3, 2)

    # the same expression in the original simplegrad's chaining style
    out = Tensor(x).einsum("ij,jk->ik", w).tanh().sum()

The twelve primitives a device must implement (NumPy names and semantics):

    unary elementwise      exp  log
    reductions             sum  max  argmax             (axis, keepdims)
    binary, broadcasting   equal  greater_equal  add  mul  pow
    contraction            einsum
    views                  as_strided

Sections of this file, each using only the ones above it:

    1. Devices   Device (primitives, plumbing, derived kernels: elementwise; maths as libm
                 computes it (rounding, trigonometry, logarithms, erfc); integers and bits;
                 reductions, scans and sorts; matmul; linear algebra; movement, indexing and
                 scatters) · NumpyDevice · CupyDevice
    2. Engine    graph node · grad modes · iterative toposort · backprop · grad() · profile ·
                 detect_anomaly
    3. Ops       one block per differentiable op: forward and backward side by side; tables of
                 elementwise ops (_UNARY, _STEPS, _BINARY), one row and one derivative each
    4. Tensor    construction · properties · backward · operators · composites (elementwise,
                 activations, reductions and scans, sorting, movement, indexing and scatters) ·
                 module-level functions (sin, cumsum, tensordot, ...) · creation and random ·
                 the NumPy protocol · simplegrad.linalg
    5. nn        Module · layers (conv, pooling, LSTM/GRU, attention, Transformer encoder) ·
                 activations (one table) · losses · init · state_dict · save/load · data ·
                 DistributedDataParallel
    6. optim     SGD · Adam · AdamW · RMSprop · Adagrad · torch.optim bridge
    7. Tools     draw_graph (Graphviz DOT) · gradcheck · gradgradcheck
"""

__version__ = "0.1.0"

import builtins
import collections
import copy
import functools
import inspect
import itertools
import json
import math
import operator
import os
import sys
import threading
import time
import traceback
import types
import warnings
import zipfile
from fractions import Fraction

import numpy as np

__all__ = [
    "Device", "NumpyDevice", "Tensor", "tensor", "no_grad", "enable_grad", "set_grad_enabled",
    "is_grad_enabled", "grad", "einsum", "matmul", "cat", "concatenate", "stack", "where",
    "maximum", "minimum", "zeros", "ones", "full", "arange", "eye", "randn", "rand",
    "zeros_like", "ones_like", "full_like", "randn_like", "rand_like", "manual_seed",
    "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "half",
    "double", "short", "long",
    "nn", "save", "load", "DataLoader", "TensorDataset", "DistributedSampler",
    "optim", "Adam",
    "profile", "detect_anomaly", "AnomalyError",
    "draw_graph", "gradcheck", "gradgradcheck",
    "linalg", "tensordot", "inner", "outer", "kron", "cross", "meshgrid", "atleast_1d",
    "atleast_2d", "atleast_3d", "hstack", "vstack", "row_stack", "dstack", "column_stack",
    "tensor_split", "array_split", "hsplit", "vsplit", "dsplit", "searchsorted", "var_mean",
    "std_mean", "vector_norm", "empty", "empty_like", "randint", "randint_like", "randperm",
    "normal", "bernoulli", "multinomial", "linspace", "logspace", "tril_indices",
    "triu_indices", "mm", "bmm", "mv", "isclose", "allclose", "equal", "is_tensor",
    "from_numpy", "as_tensor", "device", "cuda",
]

float16, float32, float64 = np.float16, np.float32, np.float64
int8, int16, int32, int64, uint8 = np.int8, np.int16, np.int32, np.int64, np.uint8
# torch's other names for them (float, int and bool stay Python's builtins in this module)
half, double, short, long = np.float16, np.float64, np.int16, np.int64


# ================================================================================================
# 1. Devices
# ================================================================================================

def _contiguous_strides(shape):
    """Element strides of a row-major array of `shape`."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def _size(shape):
    return math.prod(shape)


def _dtype_of(x, y):
    """The dtype of a binary kernel's operands, one of which may be a Python scalar."""
    return x.dtype if hasattr(x, "dtype") else y.dtype


def _float32_for_half(method):
    """Run a kernel on float16 arrays in float32 and round the result back, as NumPy's
    float16 loops do."""
    @functools.wraps(method)
    def wrapper(self, *args):
        if builtins.any(getattr(a, "dtype", None) == np.float16 for a in args):
            out = method(self, *(self.astype(a, np.float32) if hasattr(a, "dtype") else a
                                 for a in args))
            return self.astype(out, np.float16)
        return method(self, *args)
    return wrapper


class Device:
    """Where arrays live and how they are computed.

    A device implements the twelve primitives and the plumbing below; every other kernel
    the library calls is a *derived kernel* whose default here is written with those alone.
    Subclasses make themselves fast by overriding derived kernels with native calls.

    Device arrays must expose ``.shape`` (a tuple) and ``.dtype`` (a NumPy dtype).
    Binary primitives also accept Python scalars, which take the array's dtype
    (NumPy 2's rule), and broadcast their operands as NumPy does.
    """

    name = "device"

    def __repr__(self):
        return f"{type(self).__name__}()"

    def __eq__(self, other):
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self):
        return hash(type(self))

    def __deepcopy__(self, memo):
        # a handle on hardware: copy.deepcopy of a module copies its arrays, not its devices
        return self

    def _missing(self, what):
        raise NotImplementedError(f"{type(self).__name__} does not implement the primitive "
                                  f"'{what}'; see docs/devices.md")

    # ---- the twelve primitives ----------------------------------------------------------------
    # unary elementwise
    def exp(self, x):
        """e ** x, elementwise."""
        self._missing("exp")

    def log(self, x):
        """Natural logarithm, elementwise."""
        self._missing("log")

    # reductions: axis is None (all) or a tuple of non-negative ints
    def sum(self, x, axis=None, keepdims=False):
        """Sum over `axis`."""
        self._missing("sum")

    def max(self, x, axis=None, keepdims=False):
        """Maximum over `axis`."""
        self._missing("max")

    def argmax(self, x, axis=None, keepdims=False):
        """Index (int64) of the first maximum along one int `axis`, or of the flattened array."""
        self._missing("argmax")

    # binary, broadcasting
    def equal(self, x, y):
        """x == y, elementwise, as a bool array."""
        self._missing("equal")

    def greater_equal(self, x, y):
        """x >= y, elementwise, as a bool array."""
        self._missing("greater_equal")

    def add(self, x, y):
        """x + y, elementwise."""
        self._missing("add")

    def mul(self, x, y):
        """x * y, elementwise."""
        self._missing("mul")

    def pow(self, x, y):
        """x ** y, elementwise."""
        self._missing("pow")

    # contraction
    def einsum(self, subscripts, *operands):
        """Explicit einsum 'ab,bc->ac': letters only, none twice in an operand, equal sizes."""
        self._missing("einsum")

    # views
    def as_strided(self, x, shape, strides, offset=0):
        """View of x's row-major element layout with element `strides`, from element `offset`."""
        self._missing("as_strided")

    # ---- plumbing -----------------------------------------------------------------------------
    def array(self, data, dtype=None):
        """A device array from host data: a NumPy array, Python scalars or lists, or DLPack."""
        self._missing("array")

    def to_host(self, x):
        """A NumPy array with the contents of device array x."""
        self._missing("to_host")

    def full(self, shape, value, dtype):
        """A new array of `shape` filled with `value`."""
        self._missing("full")

    def arange(self, n, dtype):
        """0, 1, ..., n - 1."""
        self._missing("arange")

    def reshape(self, x, shape):
        """x's row-major elements in a new shape."""
        self._missing("reshape")

    def copy(self, x):
        """A contiguous (row-major) copy of x."""
        self._missing("copy")

    def astype(self, x, dtype):
        """x converted to `dtype`."""
        self._missing("astype")

    def assign(self, dst, src):
        """Write src (an array or scalar, broadcast to dst's shape) into dst, in place."""
        self._missing("assign")

    # ---- derived kernels: defaults use only the primitives and the plumbing -------------------
    # elementwise
    def add_(self, x, y):
        """x + y written into x (a writable array of the sum's shape and dtype), returned: how
        the engine adds further contributions to a gradient it has summed itself."""
        self.assign(x, self.add(x, y))
        return x

    def neg(self, x):
        if x.dtype.kind == "u":  # -x modulo 2^n: x times the all-ones value (-1 is out of range)
            return self.mul(x, self.full((), _all_ones(x.dtype), x.dtype))
        return self.mul(x, -1)

    def subtract(self, x, y):
        # a Python scalar is negated in Python: neg would make it a float64 NumPy scalar
        return self.add(x, self.neg(y) if hasattr(y, "shape") else -y)

    def divide(self, x, y):
        if not hasattr(y, "shape"):  # a Python scalar: a 0-d array of x's float dtype
            y = self.full((), y, x.dtype if x.dtype.kind == "f" else np.float64)
        return self.mul(x, self.pow(y, -1.0))

    def logical_not(self, b):
        return self.equal(b, False)

    def greater(self, x, y):
        # x >= y and not x == y; not (y >= x) would call nan > 1 true (bool * bool is "and")
        return self.mul(self.greater_equal(x, y), self.logical_not(self.equal(x, y)))

    def less(self, x, y):
        return self.greater(y, x)

    def less_equal(self, x, y):
        return self.greater_equal(y, x)

    def not_equal(self, x, y):
        return self.logical_not(self.equal(x, y))

    def sign(self, x):
        positive = self.astype(self.greater(x, 0), x.dtype)
        negative = self.astype(self.less(x, 0), x.dtype)
        return self.where(self.equal(x, x), self.subtract(positive, negative), x)  # nan stays

    def abs(self, x):
        return self.mul(x, self.sign(x))

    def where(self, cond, x, y):
        # An exact select from pow alone: x ** 1 == x and x ** 0 == 1 for every x, inf and nan
        # too, where pow is exact at those exponents. NumPy's SIMD float32 pow is not (623333.5
        # ** 1 gives 623333.44), its float64 pow is: float16 and float32 select in float64.
        dtype = np.dtype(x.dtype if hasattr(x, "dtype") else y.dtype)
        if dtype == np.bool_:  # bools have no pow: select their 0/1 values as uint8
            x, y = (self.astype(v, np.uint8) if hasattr(v, "dtype") else int(v) for v in (x, y))
            return self.astype(self.where(cond, x, y), np.bool_)
        work = np.float64 if dtype in (np.float16, np.float32) else dtype
        c, not_c = self.astype(cond, work), self.astype(self.logical_not(cond), work)
        out = self.mul(self.pow(x, c), self.pow(y, not_c))
        return out if work == dtype else self.astype(out, dtype)

    def maximum(self, x, y):
        # a nan in x is kept by the equal(x, x) test; a nan in y loses greater_equal
        return self.where(self.equal(x, x), self.where(self.greater_equal(x, y), x, y), x)

    def minimum(self, x, y):
        return self.where(self.equal(x, x), self.where(self.greater_equal(y, x), x, y), x)

    def clip(self, x, lo, hi):
        if lo is not None:
            x = self.maximum(x, lo)
        if hi is not None:
            x = self.minimum(x, hi)
        return x

    def sqrt(self, x):
        # pow(x, 0.5), correctly rounded for positive x; sqrt(-0.0) is -0.0 (IEEE), pow's +0.0
        return self.where(self.equal(x, 0), x, self.pow(x, 0.5))

    def fmax(self, x, y):
        # maximum, except that a nan loses to a number (NumPy's fmax)
        return self.where(self.not_equal(y, y), x, self.where(self.not_equal(x, x), y,
                                                              self.maximum(x, y)))

    def fmin(self, x, y):
        return self.where(self.not_equal(y, y), x, self.where(self.not_equal(x, x), y,
                                                              self.minimum(x, y)))

    def logaddexp(self, x, y):
        # log(e^x + e^y) = max + log1p(e^-|x - y|); x == y (infinities too) is x + log 2
        m = self.maximum(x, y)
        soft = self.add(m, self.log1p(self.exp(self.neg(self.abs(self.subtract(x, y))))))
        return self.where(self.equal(x, y), self.add(x, math.log(2)), soft)

    def logaddexp2(self, x, y):
        # log2(2^x + 2^y) = max + log1p(2^-|x - y|) / log 2
        m = self.maximum(x, y)
        tail = self.log1p(self.exp2(self.neg(self.abs(self.subtract(x, y)))))
        soft = self.add(m, self.mul(tail, 1 / math.log(2)))
        return self.where(self.equal(x, y), self.add(x, 1), soft)

    def tanh(self, x):
        # tanh x = sign(x) (1 - e^{-2|x|}) / (1 + e^{-2|x|}), finite for any x; below
        # |x| = 0.01, where 1 - e^{-2|x|} cancels, the series x - x^3/3 + 2x^5/15 - ... instead
        t = self.exp(self.mul(self.abs(x), -2))
        wide = self.mul(self.sign(x), self.divide(self.subtract(1, t), self.add(1, t)))
        small = self.less(self.abs(x), 0.01)
        xs = self.where(small, x, 0)  # keeps the series' powers finite on the unused lanes
        z = self.mul(xs, xs)
        series = self.mul(xs, self.add(1, self.mul(z, self.add(-1 / 3, self.mul(z, self.add(
            2 / 15, self.mul(z, self.add(-17 / 315, self.mul(z, 62 / 2835)))))))))
        return self.where(small, series, wide)

    def sigmoid(self, x):
        # 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) below, so exp never overflows
        e = self.exp(self.neg(self.abs(x)))
        r = self.divide(1, self.add(1, e))
        return self.where(self.greater_equal(x, 0), r, self.mul(e, r))

    def _k(self, x):
        return _libm_constants(x.dtype)

    def _zero(self, x):
        """+0.0 as a 0-d array of x's dtype (where() wants one array operand)."""
        return self.full((), 0.0, x.dtype)

    def _select(self, x, conditions, values, default):
        """The first of the constants `values` whose condition holds, else `default`."""
        out = self.full((), default, x.dtype)
        for cond, v in zip(conditions[::-1], values[::-1], strict=True):
            out = self.where(cond, v, out)
        return out

    def _or(self, a, b):
        # De Morgan: bool * bool is "and"
        return self.logical_not(self.mul(self.logical_not(a), self.logical_not(b)))

    def _isfinite(self, x):
        return self.mul(self.less(x, math.inf), self.greater(x, -math.inf))

    def _fabs(self, x):
        """|x| with fabs's signed zero: -0.0 gives +0.0 (x + 0.0 does that)."""
        return self.where(self.less(x, 0), self.neg(x), self.add(x, 0.0))

    def _signbit(self, x):
        """x < 0, and True for -0.0 too: 1 / -0.0 is -inf (it raises divide-by-zero there).
        A nan counts as positive: its sign bit cannot be seen through arithmetic."""
        zero = self.equal(x, 0)
        inverse = self.pow(self.where(zero, x, 1.0), -1.0)
        return self.less(self.where(zero, inverse, x), 0)

    def _horner(self, coefs, z):
        """The polynomial coefs[0] z^n + ... + coefs[n] (highest degree first) at z."""
        acc = self.add(self.mul(z, coefs[0]), coefs[1])
        for c in coefs[2:]:
            acc = self.add(self.mul(acc, z), c)
        return acc

    def _rint_small(self, v):
        """rint(v) for |v| < 2^(p-2): v + 1.5 2^52 lies in [2^52, 2^53), where the spacing
        is 1, so the addition rounds v to an integer (ties to even) and the subtraction is
        exact."""
        k = self._k(v)
        return self.subtract(self.add(v, k.magic), k.magic)

    def _floor_small(self, v):
        """floor(v) for |v| < 2^(p-2)."""
        r = self._rint_small(v)
        return self.where(self.greater(r, v), self.subtract(r, 1.0), r)

    def _split(self, a):
        """Veltkamp's split a = hi + lo, hi with the top half of a's bits, lo with the rest,
        so that products of halves are exact. |a| must be below max / 2^27 (float32 2^12)."""
        g = self.mul(a, self._k(a).split)
        hi = self.subtract(g, self.subtract(g, a))
        return hi, self.subtract(a, hi)

    def _two_prod(self, a, b, b_split=None):
        """Dekker's TwoProduct: p = fl(a b) and e with a b = p + e exactly."""
        p = self.mul(a, b)
        ah, al = self._split(a)
        if b_split is None:
            b_split = self._split(b) if hasattr(b, "dtype") else _split_scalar(b, a.dtype)
        bh, bl = b_split
        e = self.add(self.add(self.add(self.subtract(self.mul(ah, bh), p), self.mul(ah, bl)),
                              self.mul(al, bh)), self.mul(al, bl))
        return p, e

    def _two_sum(self, a, b):
        """Knuth's TwoSum: s = fl(a + b) and e with a + b = s + e exactly."""
        s = self.add(a, b)
        bb = self.subtract(s, a)
        e = self.add(self.subtract(a, self.subtract(s, bb)), self.subtract(b, bb))
        return s, e

    def _fast_two_sum(self, a, b):
        """s + e = a + b exactly, when |a| >= |b| (or a is zero)."""
        s = self.add(a, b)
        return s, self.subtract(b, self.subtract(s, a))

    def _div_newton(self, a, b):
        """a / b to about half an ulp whatever divide's rounding: one Newton step with the
        residual a - q b from TwoProduct. |a|, |b| within [2^-960, 2^960] (float32 2^-100,
        2^100), b nonzero."""
        inv = self.divide(1.0, b)
        q = self.mul(a, inv)
        p, e = self._two_prod(q, b)
        r = self.subtract(self.subtract(a, p), e)
        return self.add(q, self.mul(r, inv))

    def _sqrt(self, x):
        """sqrt(x) as x ** 0.5 (correctly rounded by NumPy's pow on float32 and float64)."""
        return self.pow(x, 0.5)

    # ---- exponents: x = m 2^e ------------------------------------------------------------------
    def _ldexp(self, x, n):
        """x * 2^n for integer-valued n, |n| <= 2 * ldexp_step, in two exact power-of-two
        steps (2^n alone overflows for a subnormal's n = 1074). pow(2, n) is exact for integer
        n: the result is a float, and pow is accurate to less than an ulp."""
        step = self._k(x).ldexp_step
        n1 = self.clip(n, -step, step)
        return self.mul(self.mul(x, self.pow(2.0, n1)), self.pow(2.0, self.subtract(n, n1)))

    def _frexp(self, v):
        """(m, e) with v = m 2^e exactly and 1 <= m < 2, for positive finite v (subnormals
        too): e from log, which is within one, then a one-step fix."""
        k = self._k(v)
        e = self._rint_small(self.mul(self.log(v), k.inv_ln2))  # |log2 v - e| <= 1/2 + tiny
        m = self._ldexp(v, self.neg(e))                          # in [2^-0.5, 2^0.5]
        low = self.less(m, 1.0)
        return self.where(low, self.mul(m, 2.0), m), self.where(low, self.subtract(e, 1.0), e)

    # ---- rounding ------------------------------------------------------------------------------
    @_float32_for_half
    def rint(self, x):
        """np.rint: the nearest integer, ties to even."""
        k = self._k(x)
        ax = self._fabs(x)
        # |x| + 2^52 rounds away the fraction; from 2^52 on (and for inf, nan) x is integral
        r = self.subtract(self.add(ax, k.int_limit), k.int_limit)
        r = self.where(self.less(x, 0), self.neg(r), r)        # -0.3 gives -0.0
        keep = self._or(self.greater_equal(ax, k.int_limit), self.equal(x, 0))
        return self.where(self._or(keep, self.not_equal(x, x)), x, r)

    @_float32_for_half
    def floor(self, x):
        """np.floor: the largest integer <= x."""
        r = self.rint(x)
        return self.where(self.greater(r, x), self.subtract(r, 1.0), r)

    @_float32_for_half
    def ceil(self, x):
        """np.ceil: the smallest integer >= x; ceil(x) = -floor(-x) gives ceil(-0.5) = -0.0."""
        return self.neg(self.floor(self.neg(x)))

    @_float32_for_half
    def trunc(self, x):
        """np.trunc: x rounded toward zero, keeping its sign (trunc(-0.5) = -0.0)."""
        negative = self.less(x, 0)
        f = self.floor(self.where(negative, self.neg(x), x))
        return self.where(negative, self.neg(f), f)

    @_float32_for_half
    def copysign(self, x, y):
        """np.copysign: |x| with the sign of y (a nan y counts as positive)."""
        mag = self._fabs(x)
        return self.where(self._signbit(y), self.neg(mag), mag)

    # ---- fmod, remainder, floor_divide ---------------------------------------------------------
    @_float32_for_half
    def fmod(self, x, y):
        """np.fmod: C's fmod, x - trunc(x / y) y, exact, with the sign of x."""
        if _dtype_of(x, y).kind in "iu":  # the floor remainder, moved to x's side of zero
            r = self.int_divmod(x, y)[1]
            moved = self.mul(self.not_equal(r, 0), self.not_equal(self.less(x, 0),
                                                                  self.less(y, 0)))
            return self.where(moved, self.subtract(r, y), r)
        k = self._k(x)
        ax, ay = self._fabs(x), self._fabs(y)
        invalid = self._or(self._or(self.not_equal(x, x), self.not_equal(y, y)),
                           self._or(self.equal(ax, math.inf), self.equal(ay, 0)))
        run = self.mul(self.logical_not(invalid),
                       self.mul(self.less(ay, math.inf), self.greater_equal(ax, ay)))
        ma, ea = self._frexp(self.where(run, ax, 1.0))
        mb, eb = self._frexp(self.where(run, ay, 1.0))
        # Long division of ma 2^(ea - eb) by mb, c bits of quotient at a time. The remainder r
        # stays in (-mb, mb) and a multiple of mb's last bit: r 2^c - q mb is then exact with
        # q = rint(r 2^c / mb) (TwoProduct for q mb; r 2^c - fl(q mb) is exact by Sterbenz).
        inv_b = self.divide(1.0, mb)
        b_split = self._split(mb)
        gap = self.subtract(ea, eb)
        r = ma
        for step in range(k.fmod_steps):
            c = self.clip(self.subtract(gap, float(step * k.fmod_bits)), 0.0, float(k.fmod_bits))
            r = self.mul(r, self.pow(2.0, c))
            q = self._rint_small(self.mul(r, inv_b))            # off by at most one
            p, e = self._two_prod(q, mb, b_split)
            r = self.subtract(self.subtract(r, p), e)
        r = self.where(self.less(r, 0), self.add(r, mb), r)     # into [0, mb): exact
        res = self._ldexp(r, eb)
        res = self.where(self.less(x, 0), self.neg(res), res)   # zero results keep x's sign
        return self.where(run, res, self.where(invalid, math.nan, x))

    @_float32_for_half
    def remainder(self, x, y):
        """np.remainder: x - floor(x / y) y, with the sign of y, as NumPy's divmod."""
        if _dtype_of(x, y).kind in "iu":
            return self.int_divmod(x, y)[1]
        mod = self.fmod(x, y)
        wrong_side = self.mul(self.not_equal(mod, 0),
                              self.not_equal(self.less(y, 0), self.less(mod, 0)))
        mod = self.where(wrong_side, self.add(mod, y), mod)
        zero = self._zero(x)
        signed_zero = self.where(self.less(y, 0), self.neg(zero), zero)
        return self.where(self.equal(mod, 0), signed_zero, mod)

    @_float32_for_half
    def floor_divide(self, x, y):
        """np.floor_divide on floats, as NumPy's npy_divmod: div = (x - fmod(x, y)) / y
        (correctly rounded), minus one where fmod has the wrong sign, then snapped to the
        nearest integer; x / y where y is zero. Integers: exact floor division."""
        if _dtype_of(x, y).kind in "iu":
            return self.int_divmod(x, y)[0]
        mod = self.fmod(x, y)
        div = self._div_rn(self.subtract(x, mod), y)
        wrong_side = self.mul(self.not_equal(mod, 0),
                              self.not_equal(self.less(y, 0), self.less(mod, 0)))
        div = self.where(wrong_side, self.subtract(div, 1.0), div)
        fl = self.floor(div)
        fl = self.where(self.greater(self.subtract(div, fl), 0.5), self.add(fl, 1.0), fl)
        # a zero quotient takes the sign of x / y: that of x, flipped by a negative y
        signed = self.mul(self.where(self.less(y, 0), self.neg(x), x), 0.0)
        fl = self.where(self.equal(div, 0), signed, fl)
        return self.where(self.equal(y, 0), self.divide(x, y), fl)

    def _div_rn(self, a, b):
        """a / b correctly rounded (IEEE division) whatever divide's own rounding, except
        where the quotient is subnormal; a finite, b finite and nonzero, elsewhere divide().
        Both are scaled into [1, 2): q1 = a / b to within an ulp by a Newton step, then the
        exact residual r = a - q1 b (TwoProduct) says on which side of the midpoint between
        q1 and its neighbour a / b lies (a quotient is never exactly a midpoint)."""
        k = self._k(a)
        valid = self.mul(self.mul(self._isfinite(a), self._isfinite(b)),
                         self.mul(self.not_equal(a, 0), self.not_equal(b, 0)))
        ma, ea = self._frexp(self.where(valid, self._fabs(a), 1.0))
        mb, eb = self._frexp(self.where(valid, self._fabs(b), 1.0))
        q = self._div_newton(ma, mb)                                    # in [0.5, 2], within an ulp
        p, e = self._two_prod(q, mb)
        r = self.subtract(self.subtract(ma, p), e)              # exact: a - q b
        up = self._select(q, (self.greater_equal(q, 1.0),), (k.ulp1,), k.ulp1 / 2)  # next float
        down = self._select(q, (self.greater(q, 1.0),), (k.ulp1,), k.ulp1 / 2)     # previous
        q = self.where(self.greater(r, self.mul(mb, self.mul(up, 0.5))), self.add(q, up),
                       self.where(self.less(r, self.mul(mb, self.mul(down, -0.5))),
                                  self.subtract(q, down), q))
        step = 2.0 * k.ldexp_step
        res = self._ldexp(q, self.clip(self.subtract(ea, eb), -step, step))
        res = self.where(self.not_equal(self.less(a, 0), self.less(b, 0)), self.neg(res), res)
        # a zero over anything nonzero, or a finite over an infinity: a signed zero
        signed_zero = self.mul(self.where(self.less(b, 0), self.neg(a), a), 0.0)
        other = self.where(self._or(self.equal(a, 0), self.equal(self._fabs(b), math.inf)),
                           signed_zero, self.divide(a, b))
        return self.where(valid, res, other)

    # ---- trigonometric functions ---------------------------------------------------------------
    def _reduce_cody_waite(self, ax):
        """For 0 <= ax < cw_limit (2^20, float32 2^8): k = rint(ax 2/pi) and r = rh + rl with
        ax = k pi/2 + r. k P1, k P2, k P3 are exact, ax - k P1 is exact (Sterbenz), and TwoSum
        keeps the rest in two floats."""
        k = self._k(ax)
        p1, p2, p3, p4 = k.cw_parts
        n = self._rint_small(self.mul(ax, k.two_over_pi))
        t = self.subtract(ax, self.mul(n, p1))
        u, ue = self._two_sum(t, self.neg(self.mul(n, p2)))
        v = self.subtract(self.subtract(ue, self.mul(n, p3)), self.mul(n, p4))
        rh, rl = self._two_sum(u, v)
        quadrant = self.subtract(n, self.mul(self._floor_small(self.mul(n, 0.25)), 4.0))
        return quadrant, rh, rl

    def _reduce_payne_hanek(self, ax):
        """For finite ax >= 1: the quadrant k (0..3) and r = rh + rl, |r| <= pi/4 (+ tiny),
        with ax = k pi/2 + r modulo 2 pi, exact to ~2^-130 (float32 2^-70) relative to pi/2.

        Write ax = m 2^e (1 <= m < 2) and e = w B + t (0 <= t < w, w = 24 or 10 bits). Then
        ax 2/pi = (m 2^t) (2^(w B) 2/pi): the first factor has 4 digits L_j in base 2^w (L_0
        integral, L_j weighing 2^(-w j)), the second is read, as digits G_i of weight
        2^(-w i), from row B of a table built from 2/pi at import. Products L_j G_i are exact
        (2w bits); those of weight 2^(-w (i + j)) >= 2^w are multiples of 4 and dropped, so
        the quadrant mod 4 survives. The products are summed by weight into exact integer
        "levels", carries are propagated, and the fraction is read off the levels below the
        units. No float here ever rounds until the final product with pi/2."""
        k = self._k(ax)
        w, radix = k.ph_w, float(2 ** k.ph_w)
        m, e = self._frexp(ax)
        block = self._floor_small(self.mul(self.add(e, 0.5), 1.0 / w))   # (e + 1/2) / w: never
        t = self.subtract(e, self.mul(block, float(w)))                   # an integer
        rest = self.mul(m, self.pow(2.0, t))                               # m 2^t in [1, 2^w)
        limbs = []
        for _ in range(k.ph_limbs):
            digit = self._floor_small(rest)
            limbs.append(digit)
            rest = self.mul(self.subtract(rest, digit), radix)
        row = self.astype(block, np.int64)
        digits = [self.take(self.array(k.ph_table[:, col]), row)
                  for col in range(k.ph_table.shape[1])]

        def table(i):  # the digit of weight 2^(-w i)
            return digits[i - k.ph_first]

        levels = []
        for level in range(k.ph_levels + 1):      # weight 2^(-w level); integers < 2^(2w + 2)
            acc = None
            for j, limb in enumerate(limbs):
                term = self.mul(limb, table(level - j))
                acc = term if acc is None else self.add(acc, term)
            levels.append(acc)
        for level in range(k.ph_levels, 0, -1):   # carries, so that each level is below 2^w
            carry = self._floor_small(self.mul(levels[level], 1.0 / radix))
            levels[level] = self.subtract(levels[level], self.mul(carry, radix))
            levels[level - 1] = self.add(levels[level - 1], carry)
        units = levels[0]
        quadrant = self.subtract(units, self.mul(self._floor_small(self.mul(units, 0.25)), 4.0))
        # the fraction, two levels (2w <= p bits) per exact float
        parts = [self.add(self.mul(levels[i], float(2.0 ** (-w * i))),
                          self.mul(levels[i + 1], float(2.0 ** (-w * (i + 1)))))
                 for i in range(1, k.ph_levels, 2)]
        up = self.greater_equal(parts[0], 0.5)    # to the nearest quadrant: f in [-1/2, 1/2)
        parts[0] = self.where(up, self.subtract(parts[0], 1.0), parts[0])
        quadrant = self.where(up, self.add(quadrant, 1.0), quadrant)
        quadrant = self.where(self.greater_equal(quadrant, 4.0),
                              self.subtract(quadrant, 4.0), quadrant)
        hi, lo = self._two_sum(parts[0], parts[1])
        for part in parts[2:]:
            lo = self.add(lo, part)
        hi, lo = self._fast_two_sum(hi, lo)
        # r = f pi/2 in two floats
        rh, err = self._two_prod(hi, k.pio2_hi)
        rl = self.add(err, self.add(self.mul(hi, k.pio2_lo), self.mul(lo, k.pio2_hi)))
        rh, rl = self._fast_two_sum(rh, rl)
        return quadrant, rh, rl

    def _reduce_pio2(self, ax):
        """ax = k pi/2 + r for finite ax >= 0: Cody-Waite below cw_limit, Payne-Hanek above."""
        k = self._k(ax)
        moderate = self.less(ax, k.cw_limit)
        large = self.mul(self.logical_not(moderate), self.less(ax, math.inf))
        q1, h1, l1 = self._reduce_cody_waite(self.where(moderate, ax, 0.0))
        q2, h2, l2 = self._reduce_payne_hanek(self.where(large, ax, 1.0))
        return (self.where(moderate, q1, q2), self.where(moderate, h1, h2),
                self.where(moderate, l1, l2))

    def _kernel_sin(self, x, y):
        """sin(x + y) for |x| <= pi/4, |y| <= ulp(x) / 2 (FreeBSD's __kernel_sin):
        x + x^3 (S1 + x^2 S2 + ...) with y's first-order term y cos x."""
        s = _SIN_S
        z = self.mul(x, x)
        w = self.mul(z, z)
        r = self.add(self._horner((s[3], s[2], s[1]), z),
                     self.mul(self.mul(z, w), self._horner((s[5], s[4]), z)))
        v = self.mul(z, x)
        inner = self.subtract(self.mul(z, self.subtract(self.mul(y, 0.5), self.mul(v, r))), y)
        return self.subtract(x, self.subtract(inner, self.mul(v, s[0])))

    def _kernel_cos(self, x, y):
        """cos(x + y) for |x| <= pi/4 (FreeBSD's __kernel_cos): 1 - x^2/2 + x^4 (C1 + ...),
        with 1 - x^2/2 summed so that its rounding error is kept."""
        c = _COS_C
        z = self.mul(x, x)
        w = self.mul(z, z)
        r = self.add(self.mul(z, self._horner((c[2], c[1], c[0]), z)),
                     self.mul(self.mul(w, w), self._horner((c[5], c[4], c[3]), z)))
        hz = self.mul(z, 0.5)
        one_minus = self.subtract(1.0, hz)
        tail = self.add(self.subtract(self.subtract(1.0, one_minus), hz),
                        self.subtract(self.mul(z, r), self.mul(x, y)))
        return self.add(one_minus, tail)

    def _sin_cos_reduced(self, x):
        """For |x|: the quadrant k and sin r, cos r of the reduced argument."""
        ax = self._fabs(x)
        finite = self._isfinite(x)
        quadrant, rh, rl = self._reduce_pio2(self.where(finite, ax, 0.0))
        odd = self.equal(self.subtract(quadrant, self.mul(self._floor_small(
            self.mul(quadrant, 0.5)), 2.0)), 1.0)
        return quadrant, odd, self._kernel_sin(rh, rl), self._kernel_cos(rh, rl), finite

    @_float32_for_half
    def sin(self, x):
        """np.sin; sin(k pi/2 + r) is sin r, cos r, -sin r, -cos r for k = 0, 1, 2, 3."""
        quadrant, odd, s, c, finite = self._sin_cos_reduced(x)
        v = self.where(odd, c, s)
        v = self.where(self.greater_equal(quadrant, 2.0), self.neg(v), v)
        v = self.where(self.less(x, 0), self.neg(v), v)        # sin is odd
        return self.where(self.equal(x, 0), x, self.where(finite, v, math.nan))

    @_float32_for_half
    def cos(self, x):
        """np.cos; cos(k pi/2 + r) is cos r, -sin r, -cos r, sin r for k = 0, 1, 2, 3."""
        quadrant, odd, s, c, finite = self._sin_cos_reduced(x)
        v = self.where(odd, s, c)
        negate = self.not_equal(odd, self.greater_equal(quadrant, 2.0))   # k = 1 or 2
        v = self.where(negate, self.neg(v), v)
        return self.where(finite, v, math.nan)

    @_float32_for_half
    def tan(self, x):
        """np.tan; tan(k pi/2 + r) is sin r / cos r for even k, -cos r / sin r for odd k."""
        quadrant, odd, s, c, finite = self._sin_cos_reduced(x)
        v = self._div_newton(self.where(odd, self.neg(c), s), self.where(odd, s, c))
        v = self.where(self.less(x, 0), self.neg(v), v)
        return self.where(self.equal(x, 0), x, self.where(finite, v, math.nan))

    # ---- inverse trigonometric functions -------------------------------------------------------
    @_float32_for_half
    def arctan(self, x):
        """np.arctan (FreeBSD's atan): atan|x| = atan(c) + atan(t) with c = 0, 1/2, 1, 3/2 or
        inf picked by |x| and t = (|x| - c) / (1 + c |x|) small; then atan(t) by a series."""
        k = self._k(x)
        ax = self._fabs(x)
        # breakpoints 7/16, 11/16, 19/16, 39/16; the numerator and denominator of t
        b1, b2, b3, b4 = (self.greater_equal(ax, v) for v in (0.4375, 0.6875, 1.1875, 2.4375))
        num = self.where(b4, -1.0, self.where(b3, self.subtract(ax, 1.5), self.where(
            b2, self.subtract(ax, 1.0), self.where(b1, self.subtract(self.mul(ax, 2.0), 1.0),
                                                    ax))))
        den = self.where(b4, ax, self.where(b3, self.add(self.mul(ax, 1.5), 1.0), self.where(
            b2, self.add(ax, 1.0), self.where(b1, self.add(ax, 2.0), 1.0))))
        hi = self._select(x, (b4, b3, b2, b1), k.atan_hi[::-1], 0.0)
        lo = self._select(x, (b4, b3, b2, b1), k.atan_lo[::-1], 0.0)
        t = self.divide(num, den)
        res = self._atan_series(t, hi, lo)
        res = self.where(self.less(x, 0), self.neg(res), res)
        return self.where(self.equal(x, 0), x, res)

    def _atan_series(self, t, hi, lo):
        """hi + lo + atan(t) for |t| <= 7/16, as FreeBSD: t - t^3 (aT0 + aT1 t^2 + ...),
        the odd and even coefficients in two Horner chains of t^4."""
        a = _ATAN_T
        z = self.mul(t, t)
        w = self.mul(z, z)
        s1 = self.mul(z, self._horner(a[10::-2], w))
        s2 = self.mul(w, self._horner(a[9::-2], w))
        poly = self.mul(t, self.add(s1, s2))
        return self.subtract(hi, self.subtract(self.subtract(poly, lo), t))

    @_float32_for_half
    def arctan2(self, y, x):
        """np.arctan2(y, x): the angle of the point (x, y), in [-pi, pi], with C's signed
        zeros and infinities."""
        k = self._k(x)
        ax, ay = self._fabs(x), self._fabs(y)
        big, small = self.maximum(ax, ay), self.minimum(ax, ay)
        # both infinite: the angle of (1, 1); both zero: t = 0
        both_inf = self.mul(self.equal(ax, math.inf), self.equal(ay, math.inf))
        big = self.where(both_inf, 1.0, self.where(self.equal(big, 0), 1.0, big))
        small = self.where(both_inf, 1.0, small)
        # scale both so that 1 / big neither overflows nor underflows
        scale = self._select(x, (self.greater(big, 2.0 ** (k.emax - k.p)),
                                 self.less(big, 2.0 ** (k.emin + k.p))),
                             (2.0 ** -(k.p + 10), 2.0 ** (k.p + 10)), 1.0)
        t = self.divide(self.mul(small, scale), self.mul(big, scale))       # in [0, 1]
        a = self.arctan(t)
        # |y| > |x|: pi/2 - atan(|x| / |y|)
        z = self.where(self.greater(ay, ax),
                       self.add(self.subtract(k.pio2_hi, a), k.pio2_lo), a)
        # x < 0 (or x = -0.0): pi - z
        z = self.where(self._signbit(x), self.add(self.subtract(k.pi_hi, z), k.pi_lo), z)
        z = self.where(self._signbit(y), self.neg(z), z)
        nan = self._or(self.not_equal(x, x), self.not_equal(y, y))
        return self.where(nan, math.nan, z)

    def _asin_ratio(self, z):
        """R(z) = z P(z) / Q(z) of FreeBSD's asin: asin x = x + x R(x^2) for |x| < 1/2."""
        p = self.mul(z, self._horner(_ASIN_P[::-1], z))
        q = self._horner(_ASIN_Q[::-1], z)
        return self.divide(p, q)

    @_float32_for_half
    def arcsin(self, x):
        """np.arcsin (FreeBSD's asin): x + x R(x^2) for |x| < 1/2; above, with z = (1 - |x|)/2
        and s = sqrt(z), asin|x| = pi/2 - 2 (s + s R(z)), with s in two parts below 0.975."""
        k = self._k(x)
        ax = self._fabs(x)
        small = self.less(ax, 0.5)
        z = self.where(small, self.mul(ax, ax), self.mul(self.subtract(1.0, ax), 0.5))
        r = self._asin_ratio(z)
        res_small = self.add(ax, self.mul(ax, r))
        s = self._sqrt(z)
        # near 1: pi/2 - 2 (s + s R)
        res_one = self.subtract(k.pio2_hi, self.subtract(
            self.mul(self.add(s, self.mul(s, r)), 2.0), k.pio2_lo))
        # 1/2 <= |x| < 0.975: s = w + c with w's square exact, c = (z - w^2) / (s + w)
        w, _ = self._split(s)
        den = self.add(s, w)
        c = self.divide(self.subtract(z, self.mul(w, w)), self.where(self.equal(den, 0), 1.0,
                                                                     den))
        p = self.subtract(self.mul(self.mul(s, r), 2.0),
                          self.subtract(k.pio2_lo, self.mul(c, 2.0)))
        q = self.subtract(k.pio4_hi, self.mul(w, 2.0))
        res_mid = self.subtract(k.pio4_hi, self.subtract(p, q))
        res = self.where(small, res_small,
                         self.where(self.greater_equal(ax, 0.975), res_one, res_mid))
        res = self.where(self.less(x, 0), self.neg(res), res)
        res = self.where(self.equal(x, 0), x, res)
        return self.where(self.less_equal(ax, 1.0), res, math.nan)

    @_float32_for_half
    def arccos(self, x):
        """np.arccos (FreeBSD's acos): pi/2 - (x + x R(x^2)) for |x| < 1/2; above, with
        z = (1 - |x|)/2, s = sqrt(z): 2 (s + s R(z)) for x > 0, pi - 2 (s + s R(z)) below."""
        k = self._k(x)
        ax = self._fabs(x)
        small = self.less(ax, 0.5)
        z = self.where(small, self.mul(x, x), self.mul(self.subtract(1.0, ax), 0.5))
        r = self._asin_ratio(z)
        res_small = self.subtract(k.pio2_hi, self.subtract(x, self.subtract(k.pio2_lo,
                                                                             self.mul(x, r))))
        s = self._sqrt(z)
        res_neg = self.subtract(k.pi_hi, self.mul(self.add(s, self.subtract(
            self.mul(r, s), k.pio2_lo)), 2.0))
        # x >= 1/2: s = w + c with w's square exact
        w, _ = self._split(s)
        den = self.add(s, w)
        c = self.divide(self.subtract(z, self.mul(w, w)), self.where(self.equal(den, 0), 1.0,
                                                                     den))
        res_pos = self.mul(self.add(w, self.add(self.mul(r, s), c)), 2.0)
        res = self.where(small, res_small, self.where(self.less(x, 0), res_neg, res_pos))
        return self.where(self.less_equal(ax, 1.0), res, math.nan)

    # ---- exponentials and logarithms -----------------------------------------------------------
    @_float32_for_half
    def expm1(self, x):
        """np.expm1: e^x - 1. With u = fl(e^x), e^x = u e^(x - log u), so e^x - 1 =
        (u - 1) + u (x - log u) to first order: u - 1 is exact near 0, x - log u (exact by
        Sterbenz) carries exp's rounding error, and u == 1 gives x itself."""
        k = self._k(x)
        xc = self.maximum(x, -(k.p + 10.0))            # e^x - 1 rounds to -1 below
        u = self.exp(xc)
        finite_u = self.less(u, math.inf)
        uc = self.where(finite_u, u, 1.0)
        res = self.add(self.subtract(uc, 1.0), self.mul(uc, self.subtract(xc, self.log(uc))))
        res = self.where(finite_u, res, u)
        return self.where(self.equal(x, 0), x, res)

    @_float32_for_half
    def log1p(self, x):
        """np.log1p: log(1 + x). With u = fl(1 + x) and c = (1 + x) - u exactly (TwoSum),
        log(1 + x) = log(u) + log(1 + c/u) = log(u) + c/u: u == 1 gives c = x."""
        u, c = self._two_sum(self.where(self.equal(x, math.inf), 0.0, x), 1.0)
        uc = self.where(self.greater(u, 0), u, 1.0)
        res = self.add(self.log(u), self.divide(c, uc))
        res = self.where(self.equal(x, math.inf), x, res)
        return self.where(self.equal(x, 0), x, res)

    @_float32_for_half
    def log2(self, x):
        """np.log2: with x = m 2^e and m in [2^-0.5, 2^0.5], e + log(m) / ln 2 (exact for
        powers of two)."""
        k = self._k(x)
        ok = self.mul(self.greater(x, 0), self.less(x, math.inf))
        xc = self.where(ok, x, 1.0)
        e = self._rint_small(self.mul(self.log(xc), k.inv_ln2))
        m = self._ldexp(xc, self.neg(e))
        res = self.add(e, self.mul(self.log(m), k.inv_ln2))
        return self.where(ok, res, self.log(x))               # 0, negatives, inf, nan

    @_float32_for_half
    def log10(self, x):
        """np.log10: with x = m 2^e, e log10(2) + log(m) / ln 10, log10(2) in two parts so
        that e log10(2)'s leading part is exact."""
        k = self._k(x)
        ok = self.mul(self.greater(x, 0), self.less(x, math.inf))
        xc = self.where(ok, x, 1.0)
        e = self._rint_small(self.mul(self.log(xc), k.inv_ln2))
        m = self._ldexp(xc, self.neg(e))
        res = self.add(self.mul(e, k.log10_2_hi), self.add(
            self.mul(e, k.log10_2_lo), self.mul(self.log(m), k.inv_ln10)))
        return self.where(ok, res, self.log(x))

    @_float32_for_half
    def exp2(self, x):
        """np.exp2: 2^x, as pow(2, x)."""
        return self.pow(2.0, x)

    # ---- hyperbolic functions ------------------------------------------------------------------
    @_float32_for_half
    def sinh(self, x):
        """np.sinh (FreeBSD's sinh): with t = expm1|x|, (2t - t^2/(t + 1)) / 2 below 1,
        (t + t/(t + 1)) / 2 below 22, e^|x| / 2 below log(max), (e^(|x|/2) / 2) e^(|x|/2)."""
        k = self._k(x)
        ax = self._fabs(x)
        t = self.expm1(self.minimum(ax, k.sinh_exp_cut))
        t1 = self.add(t, 1.0)
        below_one = self.subtract(self.mul(t, 2.0), self.divide(self.mul(t, t), t1))
        below_cut = self.add(t, self.divide(t, t1))
        e = self.exp(self.minimum(ax, k.ln_max))
        w = self.exp(self.mul(ax, 0.5))
        res = self.where(self.less(ax, 1.0), self.mul(below_one, 0.5),
                         self.where(self.less(ax, k.sinh_exp_cut), self.mul(below_cut, 0.5),
                                    self.where(self.less(ax, k.ln_max), self.mul(e, 0.5),
                                               self.mul(self.mul(w, 0.5), w))))
        res = self.where(self.less(x, 0), self.neg(res), res)
        return self.where(self.equal(x, 0), x, res)

    @_float32_for_half
    def cosh(self, x):
        """np.cosh (FreeBSD's cosh): 1 + t^2 / (2 (1 + t)) with t = expm1|x| below ln2/2,
        (e^|x| + 1/e^|x|) / 2 below 22, e^|x| / 2 below log(max), (e^(|x|/2) / 2) e^(|x|/2)."""
        k = self._k(x)
        ax = self._fabs(x)
        t = self.expm1(self.minimum(ax, 0.5))
        w1 = self.add(t, 1.0)
        near_zero = self.add(1.0, self.divide(self.mul(t, t), self.add(w1, w1)))
        e = self.exp(self.minimum(ax, k.ln_max))
        below_cut = self.add(self.mul(e, 0.5), self.divide(0.5, e))
        w = self.exp(self.mul(ax, 0.5))
        return self.where(self.less(ax, 0.5 * k.ln2), near_zero,
                          self.where(self.less(ax, k.sinh_exp_cut), below_cut,
                                     self.where(self.less(ax, k.ln_max), self.mul(e, 0.5),
                                                self.mul(self.mul(w, 0.5), w))))

    @_float32_for_half
    def arcsinh(self, x):
        """np.arcsinh (FreeBSD's asinh): log|x| + ln 2 for huge |x|, log(2|x| + 1/(sqrt(x^2 + 1)
        + |x|)) above 2, log1p(|x| + x^2 / (1 + sqrt(1 + x^2))) below."""
        k = self._k(x)
        ax = self._fabs(x)
        huge = self.add(self.log(ax), k.ln2)
        a = self.minimum(ax, k.huge_log)
        large = self.log(self.add(self.mul(a, 2.0), self.divide(
            1.0, self.add(self._sqrt(self.add(self.mul(a, a), 1.0)), a))))
        a = self.minimum(ax, 2.0)
        t = self.mul(a, a)
        small = self.log1p(self.add(a, self.divide(t, self.add(1.0, self._sqrt(
            self.add(1.0, t))))))
        res = self.where(self.greater(ax, k.huge_log), huge,
                         self.where(self.greater(ax, 2.0), large, small))
        res = self.where(self.less(x, 0), self.neg(res), res)
        return self.where(self.equal(x, 0), x, res)

    @_float32_for_half
    def arccosh(self, x):
        """np.arccosh (FreeBSD's acosh): log x + ln 2 for huge x, log(2x - 1/(x + sqrt(x^2 -
        1))) above 2, log1p(t + sqrt(2t + t^2)) with t = x - 1 below; nan below 1."""
        k = self._k(x)
        huge = self.add(self.log(self.maximum(x, 1.0)), k.ln2)
        a = self.clip(x, 1.0, k.huge_log)
        large = self.log(self.subtract(self.mul(a, 2.0), self.divide(
            1.0, self.add(a, self._sqrt(self.subtract(self.mul(a, a), 1.0))))))
        t = self.subtract(self.clip(x, 1.0, 2.0), 1.0)
        small = self.log1p(self.add(t, self._sqrt(self.add(self.mul(t, 2.0), self.mul(t, t)))))
        res = self.where(self.greater(x, k.huge_log), huge,
                         self.where(self.greater(x, 2.0), large, small))
        return self.where(self.greater_equal(x, 1.0), res, math.nan)

    @_float32_for_half
    def arctanh(self, x):
        """np.arctanh (FreeBSD's atanh): log1p(2|x| / (1 - |x|)) / 2, written as
        log1p(2|x| + 2|x|^2 / (1 - |x|)) / 2 below 1/2; +-inf at +-1, nan beyond."""
        ax = self._fabs(x)
        one_minus = self.subtract(1.0, ax)
        a = self.minimum(ax, 0.5)
        t = self.mul(a, 2.0)
        small = self.log1p(self.add(t, self.divide(self.mul(t, a), self.subtract(1.0, a))))
        large = self.log1p(self.divide(self.mul(ax, 2.0), self.where(
            self.greater(one_minus, 0), one_minus, 1.0)))
        res = self.mul(self.where(self.less(ax, 0.5), small, large), 0.5)
        res = self.where(self.equal(ax, 1.0), math.inf, res)
        res = self.where(self.less(x, 0), self.neg(res), res)
        res = self.where(self.equal(x, 0), x, res)
        return self.where(self.less_equal(ax, 1.0), res, math.nan)

    # ---- error function ------------------------------------------------------------------------
    def _erfc_large(self, ax):
        """erfc(ax) for ax >= 0.46875 by Cody's rational approximations, e^-ax^2 R(ax) with R
        = C/D below 4 and (1/sqrt(pi) - P/Q(1/ax^2) / ax^2) / ax above. e^-ax^2 is computed as
        e^-h^2 e^-(ax - h)(ax + h) with h the upper half of ax's bits, so h^2 is exact: a
        rounded ax^2 would cost up to ax^2 ulps (700 at ax = 26)."""
        k = self._k(ax)
        a = self.clip(ax, 0.46875, k.erfc_zero)
        mid = self._div_newton(self._horner(_ERF_C, a), self._horner(_ERF_D, a))
        at = self.maximum(a, 4.0)                           # the clamp keeps unused lanes finite
        iz = self.divide(1.0, self.mul(at, at))
        tail = self.divide(self.subtract(_FRAC_1_SQRT_PI, self.mul(iz, self.divide(
            self._horner(_ERF_P, iz), self._horner(_ERF_Q, iz)))), at)
        # e^-a^2 = e^-h^2 e^-d with d = (a - h)(a + h) < 0.04 (float32; h has 12 bits):
        # e^-d by its series
        h, _ = self._split(a)
        d = self.mul(self.subtract(a, h), self.add(a, h))
        gauss = self.mul(self.exp(self.neg(self.mul(h, h))),
                         self._horner((-1 / 120, 1 / 24, -1 / 6, 0.5, -1.0, 1.0), d))
        res = self.mul(gauss, self.where(self.greater(a, 4.0), tail, mid))
        return self.where(self.greater_equal(ax, k.erfc_zero), 0.0, res)

    def _erf_small(self, x):
        """erf(x) = x A(x^2) / B(x^2) for |x| <= 0.46875 (Cody)."""
        z = self.mul(x, x)
        return self.mul(x, self.divide(self._horner(_ERF_A, z), self._horner(_ERF_B, z)))

    @_float32_for_half
    def erfc(self, x):
        """scipy.special.erfc: 1 - erf(x), accurate in both tails: 1 - erf(x) only where erf
        is below 1/2, Cody's erfc approximations above, erfc(-x) = 2 - erfc(x)."""
        ax = self._fabs(x)
        small = self.less_equal(ax, 0.46875)
        near = self.subtract(1.0, self._erf_small(self.where(small, x, 0.0)))
        tail = self._erfc_large(self.where(small, 0.5, ax))
        far = self.where(self.less(x, 0), self.subtract(2.0, tail), tail)
        return self.where(small, near, self.where(self.equal(x, x), far, x))

    @_float32_for_half
    def erf(self, x):
        """Proposed replacement for Device.erf, sharing _erfc_large with erfc (and its exact
        e^-x^2): x A/B below 0.46875, sign(x) (1 - erfc|x|) above."""
        ax = self._fabs(x)
        small = self.less_equal(ax, 0.46875)
        near = self._erf_small(self.where(small, x, 0.0))
        far = self.subtract(1.0, self._erfc_large(self.where(small, 0.5, ax)))
        far = self.where(self.less(x, 0), self.neg(far), far)
        return self.where(small, near, self.where(self.equal(x, x), far, x))

    # ---- hypot ---------------------------------------------------------------------------------
    @_float32_for_half
    def hypot(self, x, y):
        """np.hypot: sqrt(x^2 + y^2) without overflow or underflow: both scaled by the power
        of two nearest the larger, the sum of squares kept in two floats (TwoProduct), and
        the square root corrected once with its exact residual."""
        ax, ay = self._fabs(x), self._fabs(y)
        big, small = self.maximum(ax, ay), self.minimum(ax, ay)
        ok = self.mul(self.greater(big, 0), self.less(big, math.inf))
        bc = self.where(ok, big, 1.0)
        e = self._rint_small(self.mul(self.log(bc), self._k(x).inv_ln2))
        a = self._ldexp(bc, self.neg(e))                       # in [2^-0.5, 2^0.5]
        b = self._ldexp(self.where(ok, small, 0.0), self.neg(e))
        p1, e1 = self._two_prod(a, a)
        p2, e2 = self._two_prod(b, b)
        s, es = self._two_sum(p1, p2)
        lo = self.add(es, self.add(e1, e2))
        r = self._sqrt(s)
        rr, err = self._two_prod(r, r)
        # sqrt(s + lo) = r + (s + lo - r^2) / (2 r)
        r = self.add(r, self.divide(self.add(self.subtract(self.subtract(s, rr), err), lo),
                                    self.mul(r, 2.0)))
        res = self._ldexp(r, e)
        inf = self._or(self.equal(ax, math.inf), self.equal(ay, math.inf))
        nan = self._or(self.not_equal(x, x), self.not_equal(y, y))
        res = self.where(ok, res, self._select(x, (self.equal(big, 0),), (0.0,), math.nan))
        return self.where(inf, math.inf, self.where(nan, math.nan, res))

    # integers and bits: two's complement arithmetic, which wraps modulo 2^n as NumPy's does
    def _int_operands(self, x, y):
        """x and y as arrays of one integer (or bool) dtype, NumPy's promotion of the two; a
        Python int becomes a 0-d array of the other operand's dtype (NumPy 2's weak scalars:
        a value out of that dtype's range raises OverflowError, as in NumPy)."""
        if not hasattr(x, "dtype"):
            x = self.full((), x, y.dtype)
        if not hasattr(y, "dtype"):
            y = self.full((), y, x.dtype)
        dtype = np.result_type(x.dtype, y.dtype)
        if x.dtype != dtype:
            x = self.astype(x, dtype)
        if y.dtype != dtype:
            y = self.astype(y, dtype)
        return x, y

    def int_divmod(self, x, y):
        """np.divmod for integers: (x // y, x % y), the floor quotient and the remainder with
        the sign of y; both 0 where y == 0 (as NumPy, which also warns), and the quotient of
        min // -1 wraps to min."""
        x, y = self._int_operands(x, y)
        dtype = x.dtype
        bits = np.iinfo(dtype).bits
        zero = self.equal(y, 0)
        y = self.add(y, self.astype(zero, dtype))  # divide by 1 there, and zero q at the end

        # Estimate q by float64 division and correct it with the exact remainder r = x - q y.
        # A round divides r by y in float64: fl(fl(r) / fl(y)) is within four roundings,
        # a factor (1 + u)^3 / (1 - u) < 1 + 6u (u = 2^-53), of the exact t = r / y; shrunk
        # by 1 - 8u (= 1 - 2^-50) it is below |t| in magnitude, and truncated (astype) it is an
        # integer d with |t| - 1 - 14u |t| < |d| <= |t| and d of t's sign. So d y never
        # overshoots r: r - d y keeps r's sign and is in range (for unsigned types too), and
        # q + d and d y, which may wrap, are right modulo 2^n, which is all they need to be.
        # The new |r| = |y| (|t| - |d|) is below |y| + 2^-49 |r|; from |x| <= 2^bits, after k
        # rounds |r| < (1 + 2^-48) |y| + 2^(bits - 49 k), under 2 |y| for k = ceil(bits / 48):
        # one round up to 32 bits (float64 holds those integers exactly), two for 64 bits.
        yf = self.astype(y, np.float64)
        q, r = None, x
        for _ in range(-(-bits // 48)):
            t = self.mul(self.divide(self.astype(r, np.float64), yf), _QUOTIENT_SHRINK)
            d = self.astype(t, dtype)
            q = d if q is None else self.add(q, d)
            r = self.subtract(r, self.mul(d, y))

        # Now r has x's sign (or is 0) and |r| < 2 |y|, so floor(r / y) is 1, 0, -1 or -2:
        # [r / y >= 1] - [r / y < 0] - [r / y < -1], found by comparisons that never form -y
        # (out of range for y = min); add it to q and take it times y from r.
        if np.iinfo(dtype).min < 0:
            positive = self.greater(y, 0)
            negative = self.logical_not(positive)  # y != 0 here

            def by_sign(if_positive, if_negative):
                # one test where y > 0, the other where y < 0 (at most one product holds)
                return self.not_equal(self.mul(positive, if_positive),
                                      self.mul(negative, if_negative))

            r_plus_y = self.add(r, y)  # no overflow where r and y have opposite signs
            up = by_sign(self.greater_equal(r, y), self.less_equal(r, y))
            below = by_sign(self.less(r, 0), self.greater(r, 0))
            far_below = self.mul(below, by_sign(self.less(r_plus_y, 0),
                                                self.greater(r_plus_y, 0)))
            s = self.subtract(self.astype(up, dtype), self.add(self.astype(below, dtype),
                                                               self.astype(far_below, dtype)))
        else:  # r >= 0 and y > 0: floor(r / y) is 0 or 1
            s = self.astype(self.greater_equal(r, y), dtype)
        q = self.add(q, s)
        r = self.subtract(r, self.mul(s, y))
        q = self.mul(q, self.astype(self.logical_not(zero), dtype))
        return q, r

    def _int_bits(self, x):
        """The bits of integer array x, most significant first, as pairs (bool array, weight)
        with x = sum of weight * bit: two's complement, so the sign bit of a signed type
        weighs -2^(n-1) (min), and 2^(n-1) in an unsigned one."""
        info = np.iinfo(x.dtype)
        n = info.bits
        if info.min < 0:
            top, weight = self.less(x, 0), int(info.min)
        else:
            top, weight = self.greater_equal(x, 2 ** (n - 1)), 2 ** (n - 1)
        yield top, weight
        # p is x with the bits below k + 1 cleared (p <= x < p + 2^(k+1)), so bit k is set
        # where x >= p + 2^k; p + 2^k never overflows: it is at most x with its low bits set
        p = self.mul(self.astype(top, x.dtype), weight)
        for k in range(n - 2, -1, -1):
            bit = self.greater_equal(x, self.add(p, 2 ** k))
            yield bit, 2 ** k
            if k:
                p = self.add(p, self.mul(self.astype(bit, x.dtype), 2 ** k))

    def bitwise_and(self, x, y):
        """np.bitwise_and: x & y, bit by bit; logical and for bools."""
        x, y = self._int_operands(x, y)
        if x.dtype == np.bool_:
            return self.mul(x, y)
        # sum over the bits of weight * (bit of x and bit of y), which stays in range
        out = None
        for (a, weight), (b, _) in zip(self._int_bits(x), self._int_bits(y), strict=True):
            term = self.mul(self.astype(self.mul(a, b), x.dtype), weight)
            out = term if out is None else self.add(out, term)
        return out

    def bitwise_or(self, x, y):
        """np.bitwise_or: x | y, bit by bit; logical or for bools."""
        x, y = self._int_operands(x, y)
        if x.dtype == np.bool_:  # x or y = not (not x and not y)
            return self.logical_not(self.mul(self.logical_not(x), self.logical_not(y)))
        # x + y = (x | y) + (x & y) bit by bit (a + b = (a or b) + (a and b)), modulo 2^n too
        return self.subtract(self.add(x, y), self.bitwise_and(x, y))

    def bitwise_xor(self, x, y):
        """np.bitwise_xor: x ^ y, bit by bit; logical xor (x != y) for bools."""
        x, y = self._int_operands(x, y)
        if x.dtype == np.bool_:
            return self.not_equal(x, y)
        # x + y = (x ^ y) + 2 (x & y) bit by bit (a + b = (a xor b) + 2 (a and b)), modulo 2^n
        return self.subtract(self.add(x, y), self.mul(self.bitwise_and(x, y), 2))

    def invert(self, x):
        """np.invert: ~x, every bit flipped (-x - 1 in two's complement); logical not for
        bools."""
        if x.dtype == np.bool_:
            return self.logical_not(x)
        # ~x = -(x + 1) = (x + 1) times the all-ones value, modulo 2^n
        return self.mul(self.add(x, 1), self.full((), _all_ones(x.dtype), x.dtype))

    def left_shift(self, x, k):
        """np.left_shift: x << k = x * 2^k modulo 2^n; 0 for shifts k < 0 or k >= n bits (as
        NumPy and torch)."""
        x, k = self._int_operands(x, k)
        bits = np.iinfo(x.dtype).bits
        inside = self.astype(self.mul(self.greater_equal(k, 0), self.less(k, bits)), x.dtype)
        # 2 ** k by the device's integer pow, which wraps 2^(n-1) to min in a signed type;
        # shifts outside [0, n) raise 2 to 0 (a negative power of an integer is an error)
        scale = self.pow(self.full((), 2, x.dtype), self.mul(k, inside))
        return self.mul(self.mul(x, scale), inside)

    def right_shift(self, x, k):
        """np.right_shift: x >> k = floor(x / 2^k), arithmetic (sign-filling) for signed types;
        for shifts k < 0 or k >= n bits, -1 for negative x and 0 otherwise (as NumPy and
        torch)."""
        x, k = self._int_operands(x, k)
        info = np.iinfo(x.dtype)
        signed = info.min < 0
        # 2^k is in range for k < n - 1 (signed) or k < n (unsigned); the signed shift by
        # n - 1 leaves only the sign, as a shift past the end does
        last = info.bits - 1 if signed else info.bits
        inside = self.mul(self.greater_equal(k, 0), self.less(k, last))
        scale = self.pow(self.full((), 2, x.dtype), self.mul(k, self.astype(inside, x.dtype)))
        out = self.mul(self.int_divmod(x, scale)[0], self.astype(inside, x.dtype))
        if signed:  # -1 where x < 0 and the shift is outside
            fill = self.mul(self.less(x, 0), self.logical_not(inside))
            out = self.subtract(out, self.astype(fill, x.dtype))
        return out

    # reductions
    def min(self, x, axis=None, keepdims=False):
        return self._reverse_order(self.max(self._reverse_order(x), axis, keepdims))

    def argmin(self, x, axis=None, keepdims=False):
        return self.argmax(self._reverse_order(x), axis, keepdims)

    def pool_argmax(self, x, k):
        """For x of shape (*kernel, *rest) with k kernel axes: the flat kernel offset (int64,
        shape rest) that each max-pool window passes its gradient to, as torch's max_pool: the
        first maximum, or the last nan when the window holds one (a nan replaces the running
        maximum)."""
        n = _size(x.shape[:k])
        x = self.reshape(x, (n,) + tuple(x.shape[k:]))
        offsets = self.reshape(self.arange(n, np.int64), (n,) + (1,) * (len(x.shape) - 1))

        def ones(mask):  # integer arithmetic on 0/1 masks: where is slow to broadcast offsets
            return self.astype(mask, np.int64)

        # offset i where the maximum is, i + n elsewhere; (i + 1) where a nan is, 0 elsewhere
        first = self.min(self.add(offsets, self.mul(ones(self.not_equal(
            x, self.max(x, (0,), True))), n)), (0,))
        last_nan = self.add(self.max(self.mul(ones(self.not_equal(x, x)),
                                              self.add(offsets, 1)), (0,)), -1)
        has_nan = ones(self.greater_equal(last_nan, 0))
        return self.add(first, self.mul(has_nan, self.subtract(last_nan, first)))

    # scans and products: a shift along an axis is an as_strided view of two copies of the
    # array end to end, so every read is in bounds, and where masks the lanes left over
    def _lanes(self, x, axis):
        """x with `axis` moved last and the other axes merged, shape (rows, n), and a function
        that puts an array of that shape back into x's layout."""
        ndim = len(x.shape)
        perm = tuple(a for a in range(ndim) if a != axis) + (axis,)
        lead = tuple(x.shape[a] for a in perm[:-1])
        n = x.shape[axis]
        moved = x if axis == ndim - 1 else self.transpose(x, perm)
        inverse = tuple(perm.index(a) for a in range(ndim))

        def restore(y):
            y = self.reshape(y, lead + (n,))
            return y if axis == ndim - 1 else self.transpose(y, inverse)

        return self.reshape(moved, (_size(lead), n)), restore

    def _doubled(self, y):
        """Two copies of y's elements end to end, shape (2, size): any window of y's size
        inside it is in bounds, which lets as_strided shift along an axis."""
        total = _size(y.shape)
        return self.broadcast_to(self.reshape(y, (1, total)), (2, total))

    def _shifted(self, y, s):
        """For y of shape (rows, n), a view whose [r, i] is y[r, i - s] where i >= s; lanes
        i < s hold other elements of y, for the caller to mask."""
        m, n = y.shape
        return self.as_strided(self._doubled(y), (m, n), (n, 1), m * n - s)

    def _scan(self, arrays, combine):
        """Inclusive scan along the last axis of (rows, n) arrays (a tuple, scanned together),
        Hillis and Steele's: after the step with shift s, lane i combines lanes i - 2s + 1 ..
        i, so log2(n) steps cover every prefix. combine(earlier, later) takes and returns a
        tuple and must be associative."""
        n = arrays[0].shape[1]
        lane = self.arange(n, np.int64)
        s = 1
        while s < n:
            has_partner = self.greater_equal(lane, s)
            earlier = tuple(self._shifted(a, s) for a in arrays)
            combined = combine(earlier, arrays)
            arrays = tuple(self.where(has_partner, c, a) for c, a in zip(combined, arrays))
            s *= 2
        return arrays

    def _cumulative(self, x, axis, combine):
        """The running combination of x's elements along `axis` (a scan), in NumPy's result
        dtype."""
        dtype = _accumulated_dtype(x.dtype)
        work = _work_dtype(dtype)
        if x.dtype != work:
            x = self.astype(x, work)
        if _size(x.shape) == 0:
            return self.astype(x, dtype)
        rows, restore = self._lanes(x, axis)
        (out,) = self._scan((rows,), lambda earlier, later: (combine(earlier[0], later[0]),))
        out = restore(out)
        return out if work == dtype else self.astype(out, dtype)

    def _cumulative_extreme(self, x, axis, wins):
        # Scan (value, index) pairs: the later candidate takes over where it is nan or where
        # wins(later, earlier) (>= for the max: the latest of tied maxima, as torch), so a nan
        # stays until the next nan. That is the maximum under the order "nan above numbers,
        # ties broken by the later index", hence associative; values are x at the index.
        work = _work_dtype(x.dtype)
        rows, restore = self._lanes(x if x.dtype == work else self.astype(x, work), axis)
        m, n = rows.shape
        index = self.add(self.full((m, n), 0, np.int64), self.arange(n, np.int64))

        def combine(earlier, later):
            (v0, i0), (v1, i1) = earlier, later
            take = wins(v1, v0)
            if x.dtype.kind == "f":
                take = self.add(take, self.not_equal(v1, v1))  # bool + bool is "or"
            return self.where(take, v1, v0), self.where(take, i1, i0)

        values, index = self._scan((rows, index), combine) if m * n else (rows, index)
        values = restore(values)
        return (values if x.dtype == work else self.astype(values, x.dtype)), restore(index)

    def prod(self, x, axis=None, keepdims=False):
        """np.prod over `axis` (None or a sorted tuple of non-negative ints): a pairwise tree of
        products over the reduced elements, padded with ones to a power of two."""
        ndim = len(x.shape)
        axes = tuple(range(ndim)) if axis is None else tuple(axis)
        dtype = _accumulated_dtype(x.dtype)
        work = _work_dtype(dtype)
        if x.dtype != work:
            x = self.astype(x, work)
        kept = tuple(a for a in range(ndim) if a not in axes)
        lead = tuple(x.shape[a] for a in kept)
        m, n = _size(lead), _size(x.shape[a] for a in axes)
        if m * n == 0:
            out = self.full(lead, 1, work)
        else:
            moved = x if kept + axes == tuple(range(ndim)) else self.transpose(x, kept + axes)
            y = self.reshape(moved, (m, n))
            width = 1 << (n - 1).bit_length()
            if width > n:  # read past each row (in bounds, in the doubled copy), then mask
                wide = self.as_strided(self._doubled(y), (m, width), (n, 1))
                y = self.where(self.less(self.arange(width, np.int64), n), wide, 1)
            while width > 1:
                width //= 2
                y = self.mul(self.as_strided(y, (m, width), (2 * width, 1)),
                             self.as_strided(y, (m, width), (2 * width, 1), width))
            out = self.reshape(y, lead)
        if keepdims:
            out = self.reshape(out, tuple(1 if a in axes else x.shape[a] for a in range(ndim)))
        return out if work == dtype else self.astype(out, dtype)

    def cumsum(self, x, axis):
        """np.cumsum along one int axis (bools and narrow ints accumulate in int64, as NumPy):
        a Hillis-Steele scan, exact for integers."""
        return self._cumulative(x, axis, self.add)

    def cumprod(self, x, axis):
        """np.cumprod along one int axis: a Hillis-Steele scan, exact for integers."""
        return self._cumulative(x, axis, self.mul)

    def logcumsumexp(self, x, axis):
        """torch.logcumsumexp along one int axis (floats): log of the running sums of e^x, a
        scan of the stable pairwise log-add-exp."""
        return self._cumulative(x, axis, self.logaddexp)

    def cummax(self, x, axis):
        """torch.cummax along one int axis: (running maxima, their indices int64), the latest
        index among tied maxima; from a nan on, the values are nan and the index is the
        latest nan's."""
        return self._cumulative_extreme(x, axis, self.greater_equal)

    def cummin(self, x, axis):
        """torch.cummin along one int axis: as cummax with minima (ties: the latest index)."""
        return self._cumulative_extreme(x, axis, self.less_equal)

    # sorting and searching
    def argsort(self, x, axis, descending=False):
        """Stable argsort (int64) along one int axis, as torch.sort(stable=True): ties keep
        their order in both directions, nan sorts above every number, -0.0 == 0.0."""
        rows, restore = self._lanes(x, axis)
        m, n = rows.shape
        xi = self.reshape(rows, (m, n, 1))
        xj = self.reshape(rows, (m, 1, n))
        # rank_i = #{j: x_j goes before x_i} + #{j < i: x_j ties with x_i}: O(n^2) comparisons
        ahead = self.greater(xj, xi) if descending else self.less(xj, xi)
        ahead = self.astype(ahead, np.int64)
        tie = self.astype(self.equal(xj, xi), np.int64)
        if x.dtype.kind == "f":
            nan_i = self.astype(self.not_equal(xi, xi), np.int64)
            nan_j = self.astype(self.not_equal(xj, xj), np.int64)
            # a nan goes after every number ascending, before every number descending
            if descending:
                ahead = self.add(ahead, self.mul(nan_j, self.subtract(1, nan_i)))
            else:
                ahead = self.add(ahead, self.mul(nan_i, self.subtract(1, nan_j)))
            tie = self.add(tie, self.mul(nan_i, nan_j))
        lane = self.arange(n, np.int64)
        earlier = self.astype(self.less(self.reshape(lane, (1, n)), self.reshape(lane, (n, 1))),
                              np.int64)  # [i, j]: j < i
        rank = self.sum(self.add(ahead, self.mul(tie, earlier)), (2,))
        # the inverse permutation, order[r] = the i of rank r, by a one-hot sum over i
        hot = self.astype(self.equal(self.reshape(rank, (m, n, 1)),
                                     self.reshape(lane, (1, 1, n))), np.int64)
        order = self.sum(self.mul(hot, self.reshape(lane, (1, n, 1))), (1,))
        return restore(order)

    def searchsorted(self, sorted_seq, values, right=False):
        """torch.searchsorted (int64): for each value, the number of elements of sorted_seq
        below it (right=True: not above it), along the last axis of sorted_seq, which is 1-D or
        has values' leading dims; a nan value goes after everything (index n), as in torch."""
        n = sorted_seq.shape[-1]
        seq = sorted_seq
        if len(sorted_seq.shape) > 1:
            if tuple(sorted_seq.shape[:-1]) != tuple(values.shape[:-1]):
                raise ValueError(f"searchsorted: sorted_seq {tuple(sorted_seq.shape)} and values "
                                 f"{tuple(values.shape)} differ in their leading dims")
            seq = self.reshape(sorted_seq, tuple(sorted_seq.shape[:-1]) + (1, n))
        v = self.reshape(values, tuple(values.shape) + (1,))
        below = self.less_equal(seq, v) if right else self.less(seq, v)
        count = self.sum(self.astype(below, np.int64), (len(values.shape),))
        if values.dtype.kind == "f":
            count = self.where(self.not_equal(values, values), self.full((), n, np.int64), count)
        return count

    # contraction
    def matmul(self, x, y):
        """Batched matrix product of two arrays of at least two dimensions."""
        batch = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
        x = self.broadcast_to(x, batch + x.shape[-2:])
        y = self.broadcast_to(y, batch + y.shape[-2:])
        b = "".join(_LETTERS[:len(batch)])
        return self.einsum(f"{b}ij,{b}jk->{b}ik", x, y)

    # linear algebra on batches (..., n, n): LU with partial pivoting, a column at a time, each
    # step vectorised over the batch; the decompositions beyond Cholesky have no default
    def _last(self, a, k):
        """a[..., k] as a view."""
        return self.as_strided(a, tuple(a.shape[:-1]), _contiguous_strides(a.shape)[:-1], k)

    def _row(self, a, k):
        """a[..., k, :] as a view."""
        strides = _contiguous_strides(a.shape)
        return self.as_strided(a, tuple(a.shape[:-2]) + (a.shape[-1],), strides[:-2] + (1,),
                               k * a.shape[-1])

    def _diagonal(self, a):
        """The diagonals a[..., i, i] of a batch of square matrices, as a view."""
        n = a.shape[-1]
        strides = _contiguous_strides(a.shape)
        return self.as_strided(a, tuple(a.shape[:-1]), strides[:-2] + (n + 1,))

    def _swap_rows(self, m, k, at_p):
        """m (..., n, c) with its rows k and p exchanged, p marked by the one-hot at_p (..., n).
        Row p is read by a max over the other rows filled with -inf, which is exact."""
        n = m.shape[-2]
        hot = self.reshape(at_p, tuple(at_p.shape) + (1,))
        row_p = self.max(self.where(hot, m, self.full((), -np.inf, m.dtype)),
                         (len(m.shape) - 2,), True)
        row_k = self.reshape(self._row(m, k), tuple(m.shape[:-2]) + (1, m.shape[-1]))
        is_k = self.equal(self.reshape(self.arange(n, np.int64), (n, 1)), k)
        return self.where(is_k, row_p, self.where(hot, row_k, m))

    def _lu(self, a, rhs=None):
        """Gaussian elimination with partial pivoting (LAPACK's getrf: the pivot is the first
        largest |a_ik| at or below the diagonal) on a batch (..., n, n), one column at a time,
        each step vectorised over the batch. Returns (u, sign, rhs): u has U on and above its
        diagonal (below it, the rounding residue of the eliminated entries, never read), sign
        the parity of the row exchanges (+-1 in a's dtype, shape ...), and rhs (..., n, k) with
        the same row operations applied (L^-1 P b), or None."""
        n = a.shape[-1]
        batch = tuple(a.shape[:-2])
        axis = len(batch)  # the axis of a column of a, and of a row of rhs
        lane = self.arange(n, np.int64)
        one, minus_one = self.full((), 1, a.dtype), self.full((), -1, a.dtype)
        sign = self.full(batch, 1, a.dtype)
        for k in range(n):
            col = self._last(a, k)
            p = self.argmax(self.where(self.greater_equal(lane, k), self.abs(col), -1), axis,
                            True)
            at_p = self.equal(lane, p)
            pivot = self.max(self.where(at_p, col, self.full((), -np.inf, a.dtype)), (axis,))
            sign = self.mul(sign, self.where(self.equal(self.reshape(p, batch), k), one,
                                             minus_one))
            a = self._swap_rows(a, k, at_p)
            if rhs is not None:
                rhs = self._swap_rows(rhs, k, at_p)
            # row_i -= (a_ik / pivot) row_k below the pivot; a zero pivot is the largest |a_ik|
            # from row k down, so that column is already zero there: nothing to eliminate
            safe = self.where(self.equal(pivot, 0), one, pivot)
            factors = self.where(self.greater(lane, k), self.divide(
                self._last(a, k), self.reshape(safe, batch + (1,))), 0)
            factors = self.reshape(factors, batch + (n, 1))
            below = self.greater(self.reshape(lane, (n, 1)), k)
            a = self.where(below, self.subtract(a, self.mul(factors, self.reshape(
                self._row(a, k), batch + (1, n)))), a)
            if rhs is not None:
                rhs = self.where(below, self.subtract(rhs, self.mul(factors, self.reshape(
                    self._row(rhs, k), batch + (1, rhs.shape[-1])))), rhs)
        return a, sign, rhs

    def _back_substitute(self, u, y):
        """x with u x = y, u's upper triangle (..., n, n) and y (..., n, k), from the last row
        up: x_k = (y_k - sum_{j > k} u_kj x_j) / u_kk."""
        n = u.shape[-1]
        batch = tuple(u.shape[:-2])
        b = _LETTERS[:len(batch)]
        lane = self.arange(n, np.int64)
        rows = self.reshape(lane, (n, 1))
        x = self.full(tuple(y.shape), 0, y.dtype)
        diagonal = self._diagonal(u)
        for k in reversed(range(n)):
            # x's rows up to k are still zero; the mask keeps u's residue left of the
            # diagonal out of the sum all the same
            u_row = self.where(self.greater(lane, k), self._row(u, k), 0)
            known = self.einsum(f"{b}j,{b}jc->{b}c", u_row, x)
            x_k = self.divide(self.subtract(self._row(y, k), known),
                              self.reshape(self._last(diagonal, k), batch + (1,)))
            x = self.where(self.equal(rows, k), self.reshape(x_k, batch + (1, y.shape[-1])), x)
        return x

    def _require_nonsingular(self, u):
        # NumPy raises when LAPACK meets an exactly zero pivot; so does this (one host sync)
        zero_pivots = self.sum(self.astype(self.equal(self._diagonal(u), 0), np.int64))
        if int(self.to_host(zero_pivots)) > 0:
            raise np.linalg.LinAlgError("Singular matrix")

    def solve(self, a, b):
        """np.linalg.solve: x with a x = b for a (..., n, n) and b (..., n, k) (or (n,)), by
        LU with partial pivoting; raises LinAlgError("Singular matrix") on a zero pivot."""
        vector = len(b.shape) == 1
        if vector:
            b = self.reshape(b, (b.shape[0], 1))
        batch = np.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
        a = self.broadcast_to(a, batch + tuple(a.shape[-2:]))
        b = self.broadcast_to(b, batch + tuple(b.shape[-2:]))
        u, _, y = self._lu(a, b)
        self._require_nonsingular(u)
        x = self._back_substitute(u, y)
        return self.reshape(x, batch + (b.shape[-2],)) if vector else x

    def inv(self, a):
        """np.linalg.inv of a batch (..., n, n): solve(a, I); raises LinAlgError on a zero
        pivot."""
        n = a.shape[-1]
        lane = self.arange(n, np.int64)
        eye = self.astype(self.equal(self.reshape(lane, (n, 1)), lane), a.dtype)
        return self.solve(a, self.add(self.full(tuple(a.shape), 0, a.dtype), eye))

    def slogdet(self, a):
        """np.linalg.slogdet of a batch (..., n, n): (sign, log|det|) from the LU pivots;
        a zero pivot gives (0, -inf), as NumPy."""
        u, sign, _ = self._lu(a)
        pivots = self._diagonal(u)
        axis = (len(a.shape) - 2,)
        sign = self.mul(sign, self.prod(self.sign(pivots), axis))
        sign = self.where(self.equal(sign, 0), 0, sign)  # +0.0, as NumPy, not -0.0
        logs = self.log(self.where(self.equal(pivots, 0), 1, self.abs(pivots)))
        logabsdet = self.where(self.equal(sign, 0), self.full((), -np.inf, a.dtype),
                               self.sum(logs, axis))
        return sign, logabsdet

    def det(self, a):
        """np.linalg.det of a batch (..., n, n): sign * exp(log|det|), as NumPy computes it."""
        sign, logabsdet = self.slogdet(a)
        return self.mul(sign, self.exp(logabsdet))

    def cholesky(self, a):
        """np.linalg.cholesky: lower L with L L^T = a, from a's lower triangle; raises
        LinAlgError("Matrix is not positive definite") as NumPy where a pivot is <= 0 (a nan
        is no such pivot: it spreads to the rest of L, as NumPy with OpenBLAS does)."""
        n = a.shape[-1]
        batch = tuple(a.shape[:-2])
        b = _LETTERS[:len(batch)]
        lane = self.arange(n, np.int64)
        low = self.full(tuple(a.shape), 0, a.dtype)
        failed = self.full(batch, False, np.bool_)
        for j in range(n):
            # s_i = a_ij - sum_{k < j} l_ik l_jk for every row i (the columns of low from j on
            # are still zero); l_jj = sqrt(s_j), l_ij = s_i / l_jj below
            s = self.subtract(self._last(a, j), self.einsum(f"{b}ik,{b}k->{b}i", low,
                                                              self._row(low, j)))
            d = self._last(s, j)
            not_positive = self.less_equal(d, 0)
            failed = self.add(failed, not_positive)  # bool + bool is "or"
            root = self.reshape(self.pow(self.where(not_positive, 1, d), 0.5), batch + (1,))
            column = self.where(self.greater(lane, j), self.divide(s, root),
                                self.where(self.equal(lane, j), root, 0))
            low = self.where(self.equal(lane, j), self.reshape(column, batch + (n, 1)), low)
        if _size(batch) and bool(self.to_host(self.max(failed))):
            raise np.linalg.LinAlgError("Matrix is not positive definite")
        return low

    def qr(self, a, mode="reduced"):
        """np.linalg.qr(a, mode) of a batch, mode "reduced" or "complete": (q, r). No default."""
        _not_implemented(self, "qr")

    def svd(self, a, full_matrices=False, compute_uv=True):
        """np.linalg.svd of a batch: (u, s, vh), or s alone without compute_uv. No default."""
        _not_implemented(self, "svd")

    def eigh(self, a):
        """np.linalg.eigh(a) of a batch (lower triangle): (w, v). No default."""
        _not_implemented(self, "eigh")

    # movement (views or copies; callers never write into the results)
    def transpose(self, x, axes):
        strides = _contiguous_strides(x.shape)
        return self.as_strided(x, tuple(x.shape[a] for a in axes), tuple(strides[a] for a in axes))

    def broadcast_to(self, x, shape):
        if tuple(x.shape) == tuple(shape):
            return x
        lead = len(shape) - len(x.shape)
        strides = (0,) * lead + tuple(0 if n == 1 else s for n, s in
                                      zip(x.shape, _contiguous_strides(x.shape)))
        return self.as_strided(x, tuple(shape), strides)

    def take(self, x, index):
        """x's row-major elements at the flat integer positions `index` (any shape)."""
        # the largest of a one-hot row filled with the lowest value elsewhere: exact for inf
        # and nan (a 0/1 product would make 0 * inf a nan)
        n = _size(x.shape)
        if n == 0 or _size(index.shape) == 0:
            return self.full(tuple(index.shape), 0, x.dtype)
        work = np.int64 if x.dtype == np.bool_ else x.dtype
        onehot = self.equal(self.reshape(index, (-1, 1)), self.reshape(self.arange(n, index.dtype),
                                                                        (1, n)))
        flat = self.reshape(self.astype(x, work), (1, n))
        picked = self.max(self.where(onehot, flat, self.full((), _extreme(work), work)), (1,))
        return self.astype(self.reshape(picked, index.shape), x.dtype)

    def scatter_add(self, index, values, size):
        """A flat array of `size` zeros plus `values` at positions `index` (repeats add up)."""
        positions = self.reshape(self.arange(size, index.dtype), (1, size))
        onehot = self.equal(self.reshape(index, (-1, 1)), positions)
        flat = self.reshape(values, (_size(values.shape), 1))
        # a sum of the selected values and zeros: exact for inf and nan, unlike a 0/1 product
        out = self.sum(self.where(onehot, flat, self.full((), 0, values.dtype)), (0,))
        return out if out.dtype == values.dtype else self.astype(out, values.dtype)  # bools

    def _reverse_order(self, x):
        """An order-reversing bijection of x's dtype: -x for floats, the ones' complement ~x
        for integers (-1 - x, or max - x unsigned), which never overflows as -x does."""
        if x.dtype.kind == "f":
            return self.neg(x)
        return self.subtract(self.full((), _all_ones(x.dtype), x.dtype), x)

    def _scatter_hits(self, index, size):
        """The one-hot (len(index), size) of the flat positions in `index`."""
        return self.equal(self.reshape(index, (-1, 1)),
                          self.reshape(self.arange(size, index.dtype), (1, size)))

    def scatter_max(self, index, values, size, initial):
        """np.maximum.at on a copy of `initial` (shape (size,)) at the flat positions `index`
        with `values` (repeats combine; nan wins)."""
        dtype, work = initial.dtype, _work_dtype(initial.dtype)
        flat = self.reshape(self.astype(values, work), (-1, 1))
        if flat.shape[0] == 0:
            return self.copy(initial)
        lowest = self.full((), _extreme(work), work)
        best = self.max(self.where(self._scatter_hits(index, size), flat, lowest), (0,))
        out = self.maximum(self.astype(initial, work), best)
        return out if dtype == work else self.astype(out, dtype)

    def scatter_min(self, index, values, size, initial):
        """np.minimum.at on a copy of `initial` (shape (size,)) at the flat positions `index`
        with `values` (repeats combine; nan wins): scatter_max in reversed order."""
        dtype, work = initial.dtype, _work_dtype(initial.dtype)
        flip = self._reverse_order
        out = flip(self.scatter_max(index, flip(self.astype(values, work)), size,
                                    flip(self.astype(initial, work))))
        return out if dtype == work else self.astype(out, dtype)

    def scatter_prod(self, index, values, size, initial):
        """np.multiply.at on a copy of `initial` (shape (size,)) at the flat positions `index`
        with `values` (repeats multiply), the products of each position's values as a tree."""
        dtype, work = initial.dtype, _work_dtype(initial.dtype)
        flat = self.reshape(self.astype(values, work), (-1, 1))
        if flat.shape[0] == 0:
            return self.copy(initial)
        factors = self.prod(self.where(self._scatter_hits(index, size), flat, 1), (0,))
        # (integers: prod widens int32 to int64, and the cast back is exact modulo 2**32)
        out = self.mul(self.astype(initial, work), self.astype(factors, work))
        return out if dtype == work else self.astype(out, dtype)

    def scatter_set(self, index, values, initial):
        """`initial` (flat) with `values` written at the flat positions `index`, as torch's
        scatter and index_copy; of repeated positions the last write wins (deterministic)."""
        dtype, work = initial.dtype, _work_dtype(initial.dtype)
        flat = self.reshape(self.astype(values, work), (-1, 1))
        count, size = flat.shape[0], initial.shape[0]
        if count == 0:
            return self.copy(initial)
        writes = self.reshape(self.arange(count, np.int64), (count, 1))
        last = self.max(self.where(self._scatter_hits(index, size), writes, -1), (0,))
        chosen = self.equal(writes, self.reshape(last, (1, size)))  # the last write, one-hot
        written = self.max(self.where(chosen, flat, self.full((), _extreme(work), work)), (0,))
        out = self.where(self.greater_equal(last, 0), written, self.astype(initial, work))
        return out if dtype == work else self.astype(out, dtype)

    def _index_map(self, shape, key):
        # Flat source positions of x[key], computed on the host with NumPy's own indexing rules.
        host_key = tuple(self.to_host(k) if hasattr(k, "shape") else k for k in key)
        positions = np.arange(_size(shape), dtype=np.int64).reshape(shape)[host_key]
        return self.array(np.array(positions, order="C"))  # 0-d stays 0-d

    def getitem(self, x, key):
        """x[key] for a tuple of ints, slices, None, Ellipsis and int or bool arrays."""
        return self.take(x, self._index_map(x.shape, key))

    def getitem_scatter(self, g, shape, key):
        """Zeros of `shape` with g added at x[key]'s positions: the adjoint of getitem."""
        index = self._index_map(shape, key)
        return self.reshape(self.scatter_add(index, g, _size(shape)), shape)

    def as_strided_scatter(self, g, shape, strides, offset, base_shape):
        """Zeros of `base_shape` with g added where as_strided(shape, strides, offset) reads."""
        n = _size(base_shape)
        index = self.as_strided(self.arange(n, np.int64), shape, strides, offset)
        return self.reshape(self.scatter_add(self.copy(index), g, n), base_shape)

    def pad(self, x, widths, value=0):
        """x with `widths` ((before, after) per axis, non-negative) of `value` around it."""
        shape = tuple(n + a + b for n, (a, b) in zip(x.shape, widths))
        strides = _contiguous_strides(shape)
        offset = builtins.sum(a * s for (a, _), s in zip(widths, strides))
        out = self.as_strided_scatter(x, tuple(x.shape), strides, offset, shape)
        if value == 0:
            return out
        # the value where no element of x went: a select, exact for an infinite value too
        inside = self.as_strided_scatter(self.full(tuple(x.shape), 1, x.dtype), tuple(x.shape),
                                         strides, offset, shape)
        return self.where(self.equal(inside, 1), out, self.full((), value, x.dtype))

    def concatenate(self, arrays, axis):
        total = builtins.sum(a.shape[axis] for a in arrays)
        out, start = None, 0
        for a in arrays:
            widths = [(0, 0)] * len(a.shape)
            widths[axis] = (start, total - start - a.shape[axis])
            part = self.pad(a, widths)
            out = part if out is None else self.add(out, part)
            start += a.shape[axis]
        return out


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_FRAC_1_SQRT_PI = 0.56418958354775628695
# W. J. Cody's coefficients, highest degree first, each denominator monic.
_ERF_A = (1.85777706184603153e-1, 3.16112374387056560e00, 1.13864154151050156e02,
          3.77485237685302021e02, 3.20937758913846947e03)
_ERF_B = (1.0, 2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERF_C = (2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e00,
          6.61191906371416295e01, 2.98635138197400131e02, 8.81952221241769090e02,
          1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03)
_ERF_D = (1.0, 1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
          1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
          3.43936767414372164e03, 1.23033935480374942e03)
_ERF_P = (1.63153871373020978e-2, 3.05326634961232344e-1, 3.60344899949804439e-1,
          1.25781726111229246e-1, 1.60837851487422766e-2, 6.58749161529837803e-4)
_ERF_Q = (1.0, 2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
          6.05183413124413191e-2, 2.33520497626869185e-3)


# ---- the constants of the libm kernels, built once at import with Python integers ----------

_CONST_BITS = 1400  # bits of pi and 2/pi: the Payne-Hanek table reaches 2^1023 * 2/pi + 150 bits
_GUARD_BITS = 64


def _arctan_inverse(n, bits):
    """atan(1/n) * 2^bits for an integer n >= 2, to within a few units, by the Taylor series."""
    total, power, k = 0, (1 << bits) // n, 0
    while power:
        term = power // (2 * k + 1)
        total += -term if k % 2 else term
        power //= n * n
        k += 1
    return total


def _pi_scaled(bits):
    """floor(pi * 2^bits), exact: Machin's formula pi = 16 atan(1/5) - 4 atan(1/239)."""
    b = bits + _GUARD_BITS
    return (16 * _arctan_inverse(5, b) - 4 * _arctan_inverse(239, b)) >> _GUARD_BITS


_PI_SCALED = _pi_scaled(_CONST_BITS)
_PI_EXACT = Fraction(_PI_SCALED, 1 << _CONST_BITS)                      # pi to 1400 bits
_TWO_OVER_PI_SCALED = (1 << (2 * _CONST_BITS + 1)) // _PI_SCALED   # 2/pi * 2^1400, floored


def _arctanh_inverse(n, bits):
    """atanh(1/n) * 2^bits for an integer n >= 2, to within a few units."""
    total, power, k = 0, (1 << bits) // n, 0
    while power:
        total += power // (2 * k + 1)
        power //= n * n
        k += 1
    return total


# ln 2 = 2 atanh(1/3) and ln 10 = 3 ln 2 + ln(5/4) = 3 ln 2 + 2 atanh(1/9), to 200 bits
_LN2_EXACT = Fraction(2 * _arctanh_inverse(3, 264) >> 64, 1 << 200)
_LN10_EXACT = 3 * _LN2_EXACT + Fraction(2 * _arctanh_inverse(9, 264) >> 64, 1 << 200)


def _round_fraction(v, bits, chop=False):
    """v (a Fraction) rounded to `bits` significant bits: to nearest even, or toward zero."""
    if v == 0:
        return Fraction(0)
    sign, v = (-1, -v) if v < 0 else (1, v)
    e = v.numerator.bit_length() - v.denominator.bit_length()
    if Fraction(2) ** e > v:
        e -= 1
    scale = Fraction(2) ** (e - bits + 1)              # v / scale lies in [2^(bits-1), 2^bits)
    q, r = divmod(v / scale, 1)
    if not chop and (r > Fraction(1, 2) or (r == Fraction(1, 2) and q % 2)):
        q += 1
    return sign * q * scale


def _split_constant(v, dtype, parts=2):
    """v as `parts` floats of `dtype` whose sum is v to (parts * precision) bits: hi, lo, ..."""
    bits = np.finfo(dtype).nmant + 1
    out = []
    for _ in range(parts):
        piece = _round_fraction(v, bits)
        out.append(float(piece))
        v -= piece
    return out


def _double_double(hi, lo):
    """The exact value of the double-double constant hi + lo, as a Fraction."""
    return Fraction(hi) + Fraction(lo)


# FreeBSD msun's constants (checked against their hexadecimal forms), highest degree last
# __kernel_sin and __kernel_cos on [-pi/4, pi/4]
_SIN_S = (-1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04,
          2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10)
_COS_C = (4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05,
          -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11)
# s_atan.c: atan(t) = t - t^3 (aT0 + aT1 t^2 + ...) on |t| < 7/16, and atan of the breakpoints
_ATAN_T = (3.33333333333329318027e-01, -1.99999999998764832476e-01, 1.42857142725034663711e-01,
           -1.11111104054623557880e-01, 9.09088713343650656196e-02, -7.69187620504482999495e-02,
           6.66107313738753120669e-02, -5.83357013379057348645e-02, 4.97687799461593236017e-02,
           -3.65315727442169155270e-02, 1.62858201153657823623e-02)
_ATAN_HI = (4.63647609000806093515e-01, 7.85398163397448278999e-01, 9.82793723247329054082e-01,
            1.57079632679489655800e+00)
_ATAN_LO = (2.26987774529616870924e-17, 3.06161699786838301793e-17, 1.39033110312309984516e-17,
            6.12323399573676603587e-17)
# e_asin.c: asin(x) = x + x R(x^2), R(z) = z P(z) / Q(z) on |x| < 1/2 (also used for acos)
_ASIN_P = (1.66666666666666657415e-01, -3.25565818622400915405e-01, 2.01212532134862925881e-01,
           -4.00555345006794114027e-02, 7.91534994289814532176e-04, 3.47933107596021167570e-05)
_ASIN_Q = (1.0, -2.40339491173441421878e+00, 2.02094576023350569471e+00,
           -6.88283971605453293030e-01, 7.70381505559019352791e-02)

class _LibmConstants:
    """Everything the kernels need to know about one float dtype, as Python floats that are
    exact in that dtype (so that NumPy 2's weak scalars keep them as they are)."""

    def __init__(self, dtype):
        info = np.finfo(dtype)
        p = self.p = info.nmant + 1                    # precision: 53 or 24 bits
        self.emax, self.emin = info.maxexp - 1, info.minexp  # 1023, -1022 / 127, -126
        self.max = float(info.max)
        self.split = float(2 ** ((p + 1) // 2) + 1)    # Veltkamp: a * split splits a in halves
        self.int_limit = float(2 ** (p - 1))           # from 2^52 on, every float is an integer
        self.magic = float(3 * 2 ** (p - 2))           # (v + 1.5 2^52) - 1.5 2^52: rint(v)
        self.ulp1 = float(2.0 ** (1 - p))              # spacing of the floats in [1, 2)
        self.ldexp_step = 1000 if p == 53 else 120     # 2^+-step is a normal float
        self.ln2 = float(_round_fraction(_LN2_EXACT, p))
        self.inv_ln2 = float(_round_fraction(1 / _LN2_EXACT, p))
        self.inv_ln10 = float(_round_fraction(1 / _LN10_EXACT, p))
        # log10(2) = hi + lo with hi's last 12 bits clear, so e hi is exact for |e| < 2^11
        log10_2 = _LN2_EXACT / _LN10_EXACT
        self.log10_2_hi = float(_round_fraction(log10_2, p - 12, chop=True))
        self.log10_2_lo = float(_round_fraction(log10_2 - Fraction(self.log10_2_hi), p))
        # the largest float whose exp is finite: log(max) = (emax + 1) ln 2 + log(1 - 2^-p)
        self.ln_max = float(_round_fraction(
            (self.emax + 1) * _LN2_EXACT - Fraction(1, 2 ** p), p, chop=True))
        self.sinh_exp_cut = 22.0 if p == 53 else 9.0   # above, sinh x = cosh x = e^x / 2
        self.huge_log = float(2 ** ((p + 3) // 2))     # asinh/acosh: above, x^2 + 1 == x^2

        # pi/2 and pi as hi + lo
        self.pio2_hi, self.pio2_lo = _split_constant(_PI_EXACT / 2, dtype)
        self.pi_hi, self.pi_lo = 2 * self.pio2_hi, 2 * self.pio2_lo
        self.pio4_hi = self.pio2_hi / 2
        self.two_over_pi = float(_round_fraction(2 / _PI_EXACT, p))

        # Cody-Waite: pi/2 = P1 + P2 + P3 + P4 with P1..P3 of `b` bits, so that k * Pi is exact
        # for k < 2^(p - b); P4 is rounded. 33-bit parts for float64 (FreeBSD's pio2_1..3t).
        b = 33 if p == 53 else 16
        rest, parts = _PI_EXACT / 2, []
        for _ in range(3):
            parts.append(_round_fraction(rest, b, chop=True))
            rest -= parts[-1]
        parts.append(_round_fraction(rest, p))
        self.cw_parts = tuple(float(v) for v in parts)
        self.cw_limit = float(2 ** (p - b))

        # Payne-Hanek: digits in base 2^w of 2^(w B) * 2/pi for each table row B (see
        # _reduce_payne_hanek): digit i weighs 2^(-w i), i = -(limbs - 1) .. levels
        w = self.ph_w = 24 if p == 53 else 10
        self.ph_limbs = 4                               # base-2^w digits of m 2^t, t < w
        self.ph_levels = 6 if p == 53 else 8            # fraction kept to 2^(-w levels)
        rows = self.emax // w + 1
        first = -(self.ph_limbs - 1)
        table = np.zeros((rows, self.ph_levels - first + 1))
        for row in range(rows):
            for col, i in enumerate(range(first, self.ph_levels + 1)):
                shift = _CONST_BITS - w * row - w * i     # bits of 2/pi below digit i
                table[row, col] = (_TWO_OVER_PI_SCALED >> shift) & ((1 << w) - 1)
        self.ph_table = table.astype(dtype)
        self.ph_first = first

        # atan's breakpoints atan(1/2), atan(1), atan(3/2), atan(inf) as hi + lo of dtype
        pairs = [_split_constant(_double_double(h, lo), dtype)
                 for h, lo in zip(_ATAN_HI, _ATAN_LO, strict=True)]
        self.atan_hi = tuple(h for h, _ in pairs)
        self.atan_lo = tuple(lo for _, lo in pairs)

        # fmod's long division: c bits of the quotient per step, enough steps for the widest
        # exponent gap (largest finite over smallest subnormal)
        self.fmod_bits = 48 if p == 53 else 19
        gap = self.emax - (self.emin - p + 1)
        self.fmod_steps = -(-gap // self.fmod_bits)

        # erfc underflows to 0 above this (float64: 27.3, float32: 10.1)
        self.erfc_zero = 27.5 if p == 53 else 10.5


@functools.lru_cache(maxsize=None)
def _libm_constants(dtype):
    return _LibmConstants(np.dtype(dtype))


def _split_scalar(v, dtype):
    """Veltkamp's split of a Python float constant, in `dtype`'s arithmetic."""
    with np.errstate(all="ignore"):
        a = np.asarray(v, dtype)
        g = a * dtype.type(_libm_constants(dtype).split)
        hi = g - (g - a)
        return float(hi), float(a - hi)


# Shrinking a float64 quotient by 1 - 2^-50 before truncating it makes it no larger than the
# exact quotient in magnitude (see Device.int_divmod).
_QUOTIENT_SHRINK = 1 - 2.0 ** -50


def _all_ones(dtype):
    """The value of integer `dtype` whose bits are all set: -1, or 2^n - 1 when unsigned."""
    return -1 if np.iinfo(dtype).min < 0 else int(np.iinfo(dtype).max)



def _accumulated_dtype(dtype):
    """The result dtype of np.prod/np.cumsum/np.cumprod over `dtype`: bools and narrower
    integers widen to int64 (uint64 when unsigned), the rest stay."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_ or (dtype.kind == "i" and dtype.itemsize < 8):
        return np.dtype(np.int64)
    if dtype.kind == "u" and dtype.itemsize < 8:
        return np.dtype(np.uint64)
    return dtype


def _work_dtype(dtype):
    """The dtype the defaults compute `dtype` in: float16 in float32, bools and unsigned
    integers in int64. (Device.where's default negates its 0/1 mask, which NumPy refuses in an
    unsigned dtype; int64 holds the same bits, so sums and products agree modulo 2**64, and
    the order of values below 2**63.)"""
    dtype = np.dtype(dtype)
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype == np.bool_ or dtype.kind == "u":
        return np.dtype(np.int64)
    return dtype


def _extreme(dtype, highest=False):
    """-inf (or +inf), or an integer dtype's minimum (maximum): what every element beats in a
    maximum (minimum)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return math.inf if highest else -math.inf
    return int(np.iinfo(dtype).max if highest else np.iinfo(dtype).min)


def _not_implemented(device, what):
    raise NotImplementedError(
        f"{type(device).__name__}: {what} is not available on this device (it has no default "
        f"written with the primitives); use NumpyDevice or override Device.{what}")


class NumpyDevice(Device):
    """The default device: NumPy arrays, with every derived kernel a native NumPy call."""

    name = "numpy"

    # primitives
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    equal = staticmethod(np.equal)
    greater_equal = staticmethod(np.greater_equal)
    add = staticmethod(np.add)
    mul = staticmethod(np.multiply)
    pow = staticmethod(np.power)

    def sum(self, x, axis=None, keepdims=False):
        return np.sum(x, axis, keepdims=keepdims)

    def max(self, x, axis=None, keepdims=False):
        return np.max(x, axis, keepdims=keepdims)

    def argmax(self, x, axis=None, keepdims=False):
        return np.argmax(x, axis, keepdims=keepdims)

    def einsum(self, subscripts, *operands):
        if len(operands) == 2:
            return self._einsum2(subscripts, *operands)
        if len(operands) == 1:
            return np.einsum(subscripts, operands[0])
        key = (subscripts,) + tuple(o.shape for o in operands)
        path = self._paths.get(key)
        if path is None:
            path = self._paths[key] = np.einsum_path(subscripts, *operands, optimize="greedy")[0]
        return np.einsum(subscripts, *operands, optimize=path)

    _paths = {}
    _plans = {}

    def _einsum2(self, subscripts, x, y):
        # Two operands become one batched matmul: sum away letters found in one operand only,
        # move (batch, kept, contracted) letters together, multiply, and put the output in order.
        key = (subscripts, x.shape, y.shape)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = _plan_einsum2(subscripts, x.shape, y.shape)
        x_sum, x_perm, x_shape, y_sum, y_perm, y_shape, out_shape, out_perm, swap = plan
        if x_sum:
            x = x.sum(x_sum)
        if y_sum:
            y = y.sum(y_sum)
        x = _matrices(x.transpose(x_perm), x_shape)
        y = _matrices(y.transpose(y_perm), y_shape)
        if swap:  # (x y)^T = y^T x^T, so that the output's last letter is innermost in memory
            out = np.matmul(y.transpose(0, 2, 1), x.transpose(0, 2, 1))
        else:
            out = np.matmul(x, y)
        return out.reshape(out_shape).transpose(out_perm)

    def as_strided(self, x, shape, strides, offset=0):
        flat = np.ascontiguousarray(x).reshape(-1)[offset:]
        return np.lib.stride_tricks.as_strided(
            flat, shape, tuple(s * flat.itemsize for s in strides), writeable=False)

    # plumbing
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
        return np.asarray(x).astype(dtype, copy=False)

    def assign(self, dst, src):
        np.copyto(dst, src, casting="unsafe")

    # derived kernels, natively
    def add_(self, x, y):
        return np.add(x, y, out=x)

    neg = staticmethod(np.negative)
    subtract = staticmethod(np.subtract)
    divide = staticmethod(np.divide)
    logical_not = staticmethod(np.logical_not)
    greater = staticmethod(np.greater)
    less = staticmethod(np.less)
    less_equal = staticmethod(np.less_equal)
    not_equal = staticmethod(np.not_equal)
    sign = staticmethod(np.sign)
    abs = staticmethod(np.abs)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    tanh = staticmethod(np.tanh)
    # elementwise maths: NumPy's ufuncs (NumPy has no erfc: the default runs, on NumPy arrays)
    sqrt = staticmethod(np.sqrt)
    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    tan = staticmethod(np.tan)
    arcsin = staticmethod(np.arcsin)
    arccos = staticmethod(np.arccos)
    arctan = staticmethod(np.arctan)
    sinh = staticmethod(np.sinh)
    cosh = staticmethod(np.cosh)
    arcsinh = staticmethod(np.arcsinh)
    arccosh = staticmethod(np.arccosh)
    arctanh = staticmethod(np.arctanh)
    log2 = staticmethod(np.log2)
    log10 = staticmethod(np.log10)
    log1p = staticmethod(np.log1p)
    exp2 = staticmethod(np.exp2)
    expm1 = staticmethod(np.expm1)
    rint = staticmethod(np.rint)
    floor = staticmethod(np.floor)
    ceil = staticmethod(np.ceil)
    trunc = staticmethod(np.trunc)
    arctan2 = staticmethod(np.arctan2)
    hypot = staticmethod(np.hypot)
    copysign = staticmethod(np.copysign)
    fmax = staticmethod(np.fmax)
    fmin = staticmethod(np.fmin)
    logaddexp = staticmethod(np.logaddexp)
    logaddexp2 = staticmethod(np.logaddexp2)
    fmod = staticmethod(np.fmod)
    remainder = staticmethod(np.remainder)
    floor_divide = staticmethod(np.floor_divide)
    # integers and bits
    int_divmod = staticmethod(np.divmod)
    bitwise_and = staticmethod(np.bitwise_and)
    bitwise_or = staticmethod(np.bitwise_or)
    bitwise_xor = staticmethod(np.bitwise_xor)
    invert = staticmethod(np.invert)
    left_shift = staticmethod(np.left_shift)
    right_shift = staticmethod(np.right_shift)

    def matmul(self, x, y):
        # BLAS takes transposed views as they are, but a broadcast (stride 0) operand, such as
        # the gradient of a sum, sends NumPy to a slower loop: give it real memory first
        if 0 in x.strides:
            x = np.ascontiguousarray(x)
        if 0 in y.strides:
            y = np.ascontiguousarray(y)
        if x.ndim > 2 and y.ndim == 2 and x.shape[-1] == y.shape[0]:
            # a batch of inputs times one matrix (a linear layer on (N, T, in)): one product of
            # all rows, not N small ones
            out = np.matmul(x.reshape(-1, x.shape[-1]), y)
            return out.reshape(x.shape[:-1] + (y.shape[1],))
        return np.matmul(x, y)

    def where(self, cond, x, y):
        # np.where branches on every element, and a random mask makes it several times slower
        # than arithmetic; on large float arrays, select bits instead: (x & m) | (y & ~m),
        # with m all ones where cond holds, which is exact for every value, inf and nan too
        if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)
                and isinstance(cond, np.ndarray) and cond.dtype == np.bool_
                and x.dtype == y.dtype and x.dtype in _SAME_SIZE_INT):
            return np.where(cond, x, y)  # Python scalars keep NumPy's weak typing here
        bits = _SAME_SIZE_INT[x.dtype]
        shape = np.broadcast_shapes(cond.shape, x.shape, y.shape)
        if _size(shape) < 4096:
            return np.where(cond, x, y)
        mask = np.subtract(0, np.broadcast_to(cond, shape), dtype=bits)  # 0 - True = all ones
        if _is_zero(y):
            return np.bitwise_and(x.view(bits), mask, out=mask).view(x.dtype)
        np.invert(mask, out=mask)
        if _is_zero(x):
            return np.bitwise_and(y.view(bits), mask, out=mask).view(x.dtype)
        out = np.bitwise_and(y.view(bits), mask)
        np.invert(mask, out=mask)
        np.bitwise_or(out, np.bitwise_and(x.view(bits), mask, out=mask), out=out)
        return out.view(x.dtype)

    def clip(self, x, lo, hi):
        return np.clip(x, lo, hi)

    def erf(self, x):
        x = np.asarray(x)
        if x.dtype == np.float16:
            return self.erf(x.astype(np.float32)).astype(np.float16)
        if x.dtype == np.float32:
            # one rational function x P(x^2) / Q(x^2) on [-4, 4] (beyond, erf is +-1 to
            # float32's precision), branch-free: within 4.5e-7 of erf (7 float32 ulps) and
            # 10x faster than the three-interval float64 method below (GELU's activations)
            x = np.clip(x, -4.0, 4.0)
            z = np.multiply(x, x, out=np.empty_like(x))
            # x times P / Q, not (x P) / Q: for a subnormal x, x P would round away bits
            p = np.divide(_poly(_ERF32_P, z), _poly(_ERF32_Q, z), out=z)
            return np.multiply(p, x, out=p)
        # the default's three rational approximations, but the two for |x| > 0.46875 only on
        # the elements that need them, and the polynomials in place (the small-|x| formula,
        # computed everywhere, keeps nan)
        with np.errstate(over="ignore", invalid="ignore"):
            z = np.multiply(x, x, out=np.empty_like(x))  # an array even when x is 0-d
            out = np.multiply(x, np.divide(_poly(_ERF_A, z), _poly(_ERF_B, z), out=z), out=z)
            ax = np.abs(x).reshape(-1)
            big = np.flatnonzero(ax > 0.46875)
            if big.size:
                a = ax[big]
                erfc = np.empty_like(a)
                tail = a > 4.0
                mid = ~tail
                am = a[mid]
                erfc[mid] = np.exp(-am * am) * _poly(_ERF_C, am) / _poly(_ERF_D, am)
                at = a[tail]
                iz = 1 / (at * at)
                erfc[tail] = np.exp(-at * at) * (
                    _FRAC_1_SQRT_PI - iz * _poly(_ERF_P, iz) / _poly(_ERF_Q, iz)) / at
                out.reshape(-1)[big] = np.copysign(1 - erfc, x.reshape(-1)[big])
        return out

    def sigmoid(self, x):
        # e^min(x, 0) / (1 + e^-|x|): 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) below, so
        # exp never overflows, without a select (np.where branches on every element: 2-3x slower)
        return np.exp(np.minimum(x, 0)) / (1 + np.exp(-np.abs(x)))

    def min(self, x, axis=None, keepdims=False):
        return np.min(x, axis, keepdims=keepdims)

    def argmin(self, x, axis=None, keepdims=False):
        return np.argmin(x, axis, keepdims=keepdims)

    def pool_argmax(self, x, k):
        # np.argmax wants one axis and takes the first nan: copy the windows once, offsets
        # first, and scan the few offsets with plain ufuncs into buffers
        x = np.ascontiguousarray(x).reshape((-1,) + x.shape[k:])
        top = np.max(x, 0)
        found = np.equal(x[0], top)
        index, step = np.zeros(top.shape, np.int64), np.empty(top.shape, np.int64)
        hit = np.empty(top.shape, bool)
        for i in range(1, len(x)):
            np.greater(np.equal(x[i], top, out=hit), found, out=hit)  # a first maximum
            np.logical_or(found, hit, out=found)
            np.add(index, np.multiply(hit, i, out=step), out=index)
        if np.isnan(top).any():  # rare: the last nan of a window takes the gradient
            for i in range(len(x)):
                index = np.where(np.isnan(x[i]), i, index)
        return index

    def transpose(self, x, axes):
        return np.transpose(x, axes)

    def broadcast_to(self, x, shape):
        return np.broadcast_to(x, shape)

    def take(self, x, index):
        return np.take(x, index)

    def scatter_add(self, index, values, size):
        out = np.bincount(index.reshape(-1), np.ravel(values), minlength=size)
        return out.astype(values.dtype, copy=False)

    def getitem(self, x, key):
        return x[key]

    def getitem_scatter(self, g, shape, key):
        out = np.zeros(shape, dtype=g.dtype)
        if len(key) == 1 and len(shape) == 1 and isinstance(key[0], np.ndarray) \
                and key[0].dtype.kind in "iu":  # a gather: np.add.at is fastest on flat arrays
            np.add.at(out, key[0].reshape(-1), np.broadcast_to(g, key[0].shape).reshape(-1))
        elif builtins.any(isinstance(k, np.ndarray) for k in key):
            np.add.at(out, key, g)  # advanced indices may repeat: accumulate
        else:
            out[key] = g            # a basic index reads every element at most once
        return out

    def as_strided_scatter(self, g, shape, strides, offset, base_shape):
        n = _size(base_shape)
        key = (shape, strides)
        if key not in self._scatter_plans:
            self._scatter_plans[key] = _scatter_loops(shape, strides)
        loops = self._scatter_plans[key]
        if loops is None:  # no cheap split: an index map summed by bincount
            index = self.as_strided(np.arange(n), shape, strides, offset)
            return self.scatter_add(index, g, n).reshape(base_shape)
        return _window_scatter(np, g, shape, strides, offset, base_shape, loops)

    _scatter_plans = {}

    def pad(self, x, widths, value=0):
        return np.pad(x, widths, constant_values=value)

    def concatenate(self, arrays, axis):
        return np.concatenate(arrays, axis)

    # scans, sorting, linear algebra and scatters
    def argsort(self, x, axis, descending=False):
        if not descending:
            return np.argsort(x, axis=axis, kind="stable")
        # a stable ascending sort of the reversed axis, reversed and mapped back, lists ties
        # (and nans, which NumPy sorts last) in their original order, as torch does
        n = x.shape[axis]
        return n - 1 - np.flip(np.argsort(np.flip(x, axis), axis=axis, kind="stable"), axis)

    def searchsorted(self, sorted_seq, values, right=False):
        sorted_seq, values = np.asarray(sorted_seq), np.asarray(values)
        n = sorted_seq.shape[-1]
        if sorted_seq.ndim == 1:
            count = np.searchsorted(sorted_seq, values, "right" if right else "left")
        else:
            if sorted_seq.shape[:-1] != values.shape[:-1]:
                raise ValueError(f"searchsorted: sorted_seq {sorted_seq.shape} and values "
                                 f"{values.shape} differ in their leading dims")
            # a stable sort of each row of the sequence and the values together, the values
            # first (left: before equal elements) or last (right: after them); a value's count
            # is the number of sequence elements sorted before it
            k = values.shape[-1]
            parts = (sorted_seq, values) if right else (values, sorted_seq)
            order = np.argsort(np.concatenate(parts, -1), axis=-1, kind="stable")
            first_value = n if right else 0
            is_value = (order >= first_value) & (order < first_value + k)
            seq_before = np.cumsum(~is_value, axis=-1)
            position = np.empty_like(order)  # of each column of the concatenation, sorted
            np.put_along_axis(position, order, np.arange(n + k), -1)
            count = np.take_along_axis(seq_before, position[..., first_value:first_value + k],
                                       -1)
        count = np.asarray(count, dtype=np.int64)
        if values.dtype.kind == "f":
            count = np.where(np.isnan(values), n, count)
        return count

    def prod(self, x, axis=None, keepdims=False):
        return np.prod(x, axis=axis, keepdims=keepdims)

    def cumsum(self, x, axis):
        return np.cumsum(x, axis)

    def cumprod(self, x, axis):
        return np.cumprod(x, axis)

    def logcumsumexp(self, x, axis):
        return np.logaddexp.accumulate(x, axis)

    def cummax(self, x, axis):
        return _accumulated_extreme(x, axis, np.maximum.accumulate)

    def cummin(self, x, axis):
        return _accumulated_extreme(x, axis, np.minimum.accumulate)

    def solve(self, a, b):
        return np.linalg.solve(a, b)

    def inv(self, a):
        return np.linalg.inv(a)

    def slogdet(self, a):
        sign, logabsdet = np.linalg.slogdet(a)
        return sign, logabsdet

    def det(self, a):
        return np.linalg.det(a)

    def cholesky(self, a):
        return np.linalg.cholesky(a)

    def qr(self, a, mode="reduced"):
        q, r = np.linalg.qr(a, mode=mode)
        return q, r

    def svd(self, a, full_matrices=False, compute_uv=True):
        return np.linalg.svd(a, full_matrices=full_matrices, compute_uv=compute_uv)

    def eigh(self, a):
        w, v = np.linalg.eigh(a)
        return w, v

    def scatter_max(self, index, values, size, initial):
        out = np.array(initial, copy=True)
        np.maximum.at(out, np.reshape(index, -1), np.ravel(values))
        return out

    def scatter_min(self, index, values, size, initial):
        out = np.array(initial, copy=True)
        np.minimum.at(out, np.reshape(index, -1), np.ravel(values))
        return out

    def scatter_prod(self, index, values, size, initial):
        out = np.array(initial, copy=True)
        np.multiply.at(out, np.reshape(index, -1), np.ravel(values))
        return out

    def scatter_set(self, index, values, initial):
        # NumPy leaves which of repeated positions' writes lands unspecified: keep each
        # position's last write explicitly (the first of the reversed writes, by np.unique)
        out = np.array(initial, copy=True)
        index, values = np.reshape(index, -1), np.ravel(values)
        positions, first = np.unique(index[::-1], return_index=True)
        out[positions] = values[::-1][first]
        return out


def _accumulated_extreme(x, axis, accumulate):
    """torch.cummax/cummin with NumPy: `accumulate` (np.maximum.accumulate or its min) gives
    the running extreme, nan from the first nan on; each lane's index is the latest position
    that matched its running extreme (a new extreme or a tie) or held a nan."""
    x = np.asarray(x)
    running = accumulate(x, axis)
    hit = (x == running) | (x != x)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    positions = np.arange(x.shape[axis], dtype=np.int64).reshape(shape)
    index = np.maximum.accumulate(np.where(hit, positions, 0), axis)
    return np.take_along_axis(x, index, axis), index



class CupyDevice(Device):
    """NVIDIA GPUs through CuPy: CuPy arrays on GPU `device_id`, every kernel a CuPy call.

    CuPy is imported when the device is made, never before, so simplegrad needs it only where
    it is used: ``Tensor.device = CupyDevice()`` and everything afterwards runs on the GPU.
    Kernels never copy to the host (the one exception is ``to_host``), so a training step runs
    without synchronising with the CPU. The GPU is made CuPy's current device when the
    CupyDevice is created: drive one GPU per process (or thread) at a time.
    """

    name = "cupy"

    def __init__(self, device_id=0):
        try:
            import cupy
            import cupyx
            import cupyx.scipy.special
        except ImportError as e:
            raise ImportError(
                "CupyDevice needs CuPy and an NVIDIA GPU: pip install cupy-cuda12x (or "
                "cupy-cuda13x, matching your CUDA driver); see docs/devices.md") from e
        self.device_id = int(device_id)
        cupy.cuda.Device(self.device_id).use()  # raises when there is no such GPU
        self._cp, self._cupyx = cupy, cupyx
        # the primitives and the one-call derived kernels: CuPy's ufuncs, as instance
        # attributes (the class cannot name them before CuPy is imported)
        for name, fn in dict(
                exp=cupy.exp, log=cupy.log, equal=cupy.equal, greater_equal=cupy.greater_equal,
                add=cupy.add, mul=cupy.multiply, pow=cupy.power, neg=cupy.negative,
                subtract=cupy.subtract, divide=cupy.divide, logical_not=cupy.logical_not,
                greater=cupy.greater, less=cupy.less, less_equal=cupy.less_equal,
                not_equal=cupy.not_equal, sign=cupy.sign, abs=cupy.abs, maximum=cupy.maximum,
                minimum=cupy.minimum, tanh=cupy.tanh, where=cupy.where, matmul=cupy.matmul,
                transpose=cupy.transpose, broadcast_to=cupy.broadcast_to,
                erf=cupyx.scipy.special.erf, erfc=cupyx.scipy.special.erfc,
                sqrt=cupy.sqrt, sin=cupy.sin, cos=cupy.cos, tan=cupy.tan, arcsin=cupy.arcsin,
                arccos=cupy.arccos, arctan=cupy.arctan, sinh=cupy.sinh, cosh=cupy.cosh,
                arcsinh=cupy.arcsinh, arccosh=cupy.arccosh, arctanh=cupy.arctanh,
                log2=cupy.log2, log10=cupy.log10, log1p=cupy.log1p, exp2=cupy.exp2,
                expm1=cupy.expm1, rint=cupy.rint, floor=cupy.floor, ceil=cupy.ceil,
                trunc=cupy.trunc, arctan2=cupy.arctan2, hypot=cupy.hypot,
                copysign=cupy.copysign, fmax=cupy.fmax, fmin=cupy.fmin,
                logaddexp=cupy.logaddexp, logaddexp2=cupy.logaddexp2, fmod=cupy.fmod,
                remainder=cupy.remainder, floor_divide=cupy.floor_divide,
                int_divmod=cupy.divmod, bitwise_and=cupy.bitwise_and, bitwise_or=cupy.bitwise_or,
                bitwise_xor=cupy.bitwise_xor, invert=cupy.invert,
                left_shift=cupy.left_shift, right_shift=cupy.right_shift).items():
            setattr(self, name, fn)

    def __repr__(self):
        return f"CupyDevice(device_id={self.device_id})"

    def __eq__(self, other):
        return type(self) is type(other) and self.device_id == other.device_id

    def __hash__(self):
        return hash((type(self), self.device_id))

    # primitives (the elementwise ones are set in __init__)
    def sum(self, x, axis=None, keepdims=False):
        return self._cp.sum(x, axis, keepdims=keepdims)

    def max(self, x, axis=None, keepdims=False):
        return self._cp.max(x, axis, keepdims=keepdims)

    def argmax(self, x, axis=None, keepdims=False):
        out = self._cp.argmax(x, axis)
        if keepdims:
            out = self._cp.expand_dims(out, tuple(range(x.ndim)) if axis is None else axis)
        return out

    def einsum(self, subscripts, *operands):
        return self._cp.einsum(subscripts, *operands)

    def as_strided(self, x, shape, strides, offset=0):
        flat = self._cp.ascontiguousarray(x).reshape(-1)[offset:]
        return self._cp.lib.stride_tricks.as_strided(
            flat, shape, tuple(s * flat.itemsize for s in strides))

    # plumbing
    def array(self, data, dtype=None):
        cp = self._cp
        if isinstance(data, cp.ndarray):
            return data if dtype is None else data.astype(dtype, copy=False)
        if not isinstance(data, np.ndarray) and hasattr(data, "__dlpack__"):
            device_type, _ = data.__dlpack_device__()
            if device_type == 2:  # kDLCUDA: a GPU array (torch CUDA, JAX, ...): no copy
                data = cp.from_dlpack(data)
                return data if dtype is None else data.astype(dtype, copy=False)
            data = np.from_dlpack(data)  # a host array: copied to the GPU below
        return cp.asarray(np.asarray(data, dtype=dtype))

    def to_host(self, x):
        return self._cp.asnumpy(x)

    def full(self, shape, value, dtype):
        return self._cp.full(shape, value, dtype=dtype)

    def arange(self, n, dtype):
        return self._cp.arange(n, dtype=dtype)

    def reshape(self, x, shape):
        return self._cp.reshape(x, shape)

    def copy(self, x):
        return self._cp.array(x, order="C", copy=True)

    def astype(self, x, dtype):
        return self._cp.asarray(x).astype(dtype, copy=False)

    def assign(self, dst, src):
        self._cp.copyto(dst, src, casting="unsafe")

    # derived kernels CuPy has no single call for
    def add_(self, x, y):
        return self._cp.add(x, y, out=x)

    def clip(self, x, lo, hi):
        return self._cp.clip(x, lo, hi)

    def sigmoid(self, x):
        cp = self._cp  # as NumpyDevice: exp never overflows
        return cp.exp(cp.minimum(x, 0)) / (1 + cp.exp(-cp.abs(x)))

    def min(self, x, axis=None, keepdims=False):
        return self._cp.min(x, axis, keepdims=keepdims)

    def argmin(self, x, axis=None, keepdims=False):
        return self.argmax(self._cp.negative(x), axis, keepdims)

    def pool_argmax(self, x, k):
        # branch-free, so nothing waits for the GPU: the first maximum is the first True of
        # x == max; where a window holds a nan (its max is nan), the last nan instead
        cp = self._cp
        x = cp.ascontiguousarray(x).reshape((-1,) + tuple(x.shape[k:]))
        top = x.max(0)
        first = cp.argmax(x == top, 0)
        last_nan = len(x) - 1 - cp.argmax(cp.isnan(x)[::-1], 0)
        return cp.where(cp.isnan(top), last_nan, first).astype(np.int64)

    def take(self, x, index):
        return self._cp.take(x, index)

    def scatter_add(self, index, values, size):
        cp = self._cp
        out = cp.zeros(size, dtype=values.dtype)
        self._cupyx.scatter_add(out, index.reshape(-1), cp.ravel(values))
        return out

    def getitem(self, x, key):
        return x[self._device_key(key)]

    def getitem_scatter(self, g, shape, key):
        out = self._cp.zeros(shape, dtype=g.dtype)
        self._cupyx.scatter_add(out, self._device_key(key), g)  # repeats add up
        return out

    def _device_key(self, key):
        return tuple(self._cp.asarray(k) if isinstance(k, np.ndarray) else k for k in key)

    def as_strided_scatter(self, g, shape, strides, offset, base_shape):
        # as NumpyDevice: one strided add per kernel offset of a window view, else scatter_add
        n = _size(base_shape)
        loops = _scatter_loops(shape, strides)
        if loops is None:
            index = self.as_strided(self._cp.arange(n), shape, strides, offset)
            return self.scatter_add(index, g, n).reshape(base_shape)
        return _window_scatter(self._cp, g, shape, strides, offset, base_shape, loops)

    def pad(self, x, widths, value=0):
        return self._cp.pad(x, widths, constant_values=value)

    def concatenate(self, arrays, axis):
        return self._cp.concatenate(arrays, axis)

    # scans, sorting, linear algebra and scatters: CuPy's calls where they have the contract's
    # semantics; cummax, cummin, logcumsumexp and the batched searchsorted use the defaults
    def prod(self, x, axis=None, keepdims=False):
        return self._cp.prod(x, axis, keepdims=keepdims)

    def cumsum(self, x, axis):
        return self._cp.cumsum(x, axis)

    def cumprod(self, x, axis):
        return self._cp.cumprod(x, axis)

    def argsort(self, x, axis, descending=False):
        cp = self._cp  # as NumpyDevice: stable, and descending by sorting the reversed axis
        if not descending:
            return cp.argsort(x, axis, kind="stable")
        n = x.shape[axis]
        return n - 1 - cp.flip(cp.argsort(cp.flip(x, axis), axis, kind="stable"), axis)

    def solve(self, a, b):
        return self._linalg_checked(self._cp.linalg.solve, a, b)

    def inv(self, a):
        return self._linalg_checked(self._cp.linalg.inv, a)

    def slogdet(self, a):
        sign, logabsdet = self._cp.linalg.slogdet(a)
        return sign, logabsdet

    def det(self, a):
        return self._cp.linalg.det(a)

    def cholesky(self, a):
        return self._linalg_checked(self._cp.linalg.cholesky, a)

    def qr(self, a, mode="reduced"):
        q, r = self._cp.linalg.qr(a, mode=mode)
        return q, r

    def svd(self, a, full_matrices=False, compute_uv=True):
        return self._cp.linalg.svd(a, full_matrices=full_matrices, compute_uv=compute_uv)

    def eigh(self, a):
        w, v = self._cp.linalg.eigh(a)
        return w, v

    def _linalg_checked(self, fn, *args):
        # CuPy returns nan for a singular or indefinite matrix unless asked to raise
        with self._cupyx.errstate(linalg="raise"):
            return fn(*args)

    def scatter_max(self, index, values, size, initial):
        out = initial.copy()
        self._cupyx.scatter_max(out, index.reshape(-1), self._cp.ravel(values))
        return out

    def scatter_min(self, index, values, size, initial):
        out = initial.copy()
        self._cupyx.scatter_min(out, index.reshape(-1), self._cp.ravel(values))
        return out


# erf in float32 as x P(x^2) / Q(x^2) on [-4, 4]: the rational approximation that Eigen, XLA
# and others use for float erf (highest power first)
_ERF32_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
            -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
            -1.60960333262415e-02)
_ERF32_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
            -7.37332916720468e-03, -1.42647390514189e-02)


def _poly(coefs, z):
    """The polynomial with coefficients `coefs` (highest power first) at z, by Horner's rule
    in one buffer (a NumPy array of z's dtype)."""
    acc = np.full_like(z, coefs[0])
    for c in coefs[1:]:
        np.add(np.multiply(acc, z, out=acc), c, out=acc)
    return acc


_SAME_SIZE_INT = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}


def _is_zero(a):
    """A 0-d array holding +0.0 (all bits clear), which a bitwise select can skip."""
    return a.ndim == 0 and not a.view(_SAME_SIZE_INT[a.dtype])


def _scatter_loops(shape, strides, max_loops=256, short=16):
    """How many trailing dims of an as_strided view NumpyDevice.as_strided_scatter loops over
    so that the leading dims read each element at most once; None: no such split is cheap.
    Dims sorted by stride read distinct elements when each stride exceeds the span of the
    smaller ones (a mixed-radix number), which holds for the positions of a window view.
    A few more trailing dims (up to `short` iterations) are looped over when that is free:
    NumPy's inner loop then runs along the positions instead of a 2-wide kernel row."""
    ndim = len(shape)
    for loops in range(ndim):  # never all of them: that is a loop over elements
        if _size(shape[ndim - loops:]) > max_loops:
            return None
        dims = sorted((s, n) for s, n in zip(strides[:ndim - loops], shape) if n > 1)
        span = 0
        for s, n in dims:
            if s <= span:
                break
            span += (n - 1) * s
        else:
            while loops + 1 < ndim and _size(shape[ndim - loops - 1:]) <= short:
                loops += 1
            return loops
    return None


def _window_scatter(xp, g, shape, strides, offset, base_shape, loops):
    """as_strided_scatter for a window view (conv, pooling), in array module xp (NumPy or
    CuPy): for each of the few kernel offsets in the trailing `loops` dims, the rest of the
    view reads distinct elements, so a strided slice of the output takes that part of g with
    one vectorised +=; overlaps add up across offsets."""
    out = xp.zeros(_size(base_shape), dtype=g.dtype)
    inner = len(shape) - loops
    steps = tuple(s * out.itemsize for s in strides[:inner])
    for idx in np.ndindex(*shape[inner:]):
        start = offset + builtins.sum(i * s for i, s in zip(idx, strides[inner:]))
        view = xp.lib.stride_tricks.as_strided(out[start:], shape[:inner], steps)
        view += g[(Ellipsis,) + idx]
    return out.reshape(base_shape)


def _groups(shape, sizes):
    """Split the dims of `shape` into consecutive groups whose sizes multiply to `sizes`."""
    groups, start = [], 0
    for i, size in enumerate(sizes):
        end, prod = start, 1
        while end < len(shape) and (prod < size or (i == len(sizes) - 1)):
            prod *= shape[end]
            end += 1
        groups.append(range(start, end))
        start = end
    return groups


def _matrices(a, shape):
    """a reshaped to (batch, rows, cols) for matmul. When that needs a copy (a strided window
    view, say), the copy is made rows-last and transposed back if a's memory is read in longer
    runs that way: the windows of a convolution copy four times faster position-major."""
    if 0 in a.shape:
        return a.reshape(shape)
    batch, rows, cols = _groups(a.shape, shape)

    def merges(dims):
        dims = [(a.shape[d], a.strides[d]) for d in dims if a.shape[d] != 1]
        return builtins.all(s == t * m for (_, s), (m, t) in zip(dims, dims[1:]))

    if merges(batch) and merges(rows) and merges(cols):
        return a.reshape(shape)
    inner = [d for d in cols if a.shape[d] != 1]
    outer = [d for d in rows if a.shape[d] != 1]
    if inner and outer:
        run_cols = (builtins.abs(a.strides[inner[-1]]), -a.shape[inner[-1]])
        run_rows = (builtins.abs(a.strides[outer[-1]]), -a.shape[outer[-1]])
        if run_rows < run_cols:
            copied = a.transpose(tuple(batch) + tuple(cols) + tuple(rows))
            return copied.reshape((shape[0], shape[2], shape[1])).transpose(0, 2, 1)
    return a.reshape(shape)


def _plan_einsum2(subscripts, x_shape, y_shape):
    """How NumpyDevice turns a two-operand einsum into transposes, reshapes and one matmul."""
    inputs, out = subscripts.split("->")
    a, b = inputs.split(",")
    x_sum = tuple(i for i, c in enumerate(a) if c not in b and c not in out)
    y_sum = tuple(i for i, c in enumerate(b) if c not in a and c not in out)
    a = "".join(c for c in a if c in b or c in out)
    b = "".join(c for c in b if c in a or c in out)
    size = dict(zip(a, [n for i, n in enumerate(x_shape) if i not in x_sum]))
    size.update(zip(b, [n for i, n in enumerate(y_shape) if i not in y_sum]))
    batch = [c for c in out if c in a and c in b]
    left = [c for c in out if c in a and c not in b]
    right = [c for c in out if c in b and c not in a]
    contracted = [c for c in a if c in b and c not in out]

    def numel(letters):
        return _size(size[c] for c in letters)

    nb, nl, nr, nc = numel(batch), numel(left), numel(right), numel(contracted)
    x_perm = tuple(a.index(c) for c in batch + left + contracted)
    y_perm = tuple(b.index(c) for c in batch + contracted + right)
    # the product is laid out (batch, left, right), or (batch, right, left) when the output's
    # last letter is on the left: consumers then read it in order (a conv's input gradient)
    swap = bool(out) and out[-1] in left and nr > 1
    order = batch + right + left if swap else batch + left + right
    out_perm = tuple(order.index(c) for c in out)
    out_shape = tuple(size[c] for c in order)
    return x_sum, x_perm, (nb, nl, nc), y_sum, y_perm, (nb, nc, nr), out_shape, out_perm, swap


# ================================================================================================
# 2. Engine
# ================================================================================================

class _Node:
    """How a tensor was made: the op's name, its input tensors, and its backward rule.

    ``backward(g, out, need)`` gets the gradient g of the output `out` and returns one
    gradient (or None) per input, computing only those where ``need[i]`` is true.
    """

    __slots__ = ("name", "inputs", "backward", "epoch")

    def __init__(self, name, inputs, backward):
        self.name, self.inputs, self.backward = name, inputs, backward
        self.epoch = _changes  # the in-place changes so far: a later one must not reach inputs


# ---- version counters: in-place changes of data that a backward rule needs ------------------
# A tensor's data changed in place (an optimizer step, nn.init, load_state_dict, assigning
# .data) after an op saved the tensor would make that op's gradient silently wrong. So every
# such change is counted: per data (a _Version, shared by the tensors that share the data, as
# detach()'s), and in the whole process (_changes). A node remembers _changes at its creation,
# and backward checks the node's tensors only when some change came since (one comparison per
# node otherwise), raising PyTorch's error as PyTorch does.

class _Version:
    """How often one tensor's data was changed in place, and the process-wide numbers of its
    last changes (to tell which came after a node was made)."""

    __slots__ = ("count", "changes")

    def __init__(self):
        self.count, self.changes = 0, collections.deque(maxlen=64)


_changes = 0
_changes_lock = threading.Lock()


def _counter_of(t, create=False):
    """t's _Version, or None where its data was never changed in place; the slot is left unset
    until then (setting it in every new tensor would cost each op time)."""
    try:
        return t._counter
    except AttributeError:
        if not create:
            return None
        t._counter = _Version()
        return t._counter


def _bump(t):
    """Count an in-place change of t's data."""
    global _changes
    with _changes_lock:
        counter = _counter_of(t, create=True)
        _changes += 1
        counter.count += 1
        counter.changes.append(_changes)


def _write(t, value):
    """Write value (an array or a number, broadcast) into t's data, in place, and count it."""
    t._device.assign(t._data, value)
    _bump(t)
    return t


# the ops whose rules read no input's values (only shapes), so that changing an input after
# them is harmless, as in PyTorch: their inputs are not checked
_SAVES_NO_INPUTS = frozenset({
    "add", "sub", "neg", "sum", "reshape", "expand", "permute", "getitem", "getitem_scatter",
    "pad", "cat", "unbind", "astype", "as_strided", "as_strided_scatter", "to"})


# the ops whose result may be a view of their input's memory (as PyTorch's views, they see the
# input's changes): a change of the input is a change of what a later op saved from the view
_VIEWS = frozenset({"reshape", "permute", "expand", "getitem", "as_strided", "unbind"})


def _check_unchanged(node, out):
    """Raise PyTorch's error if a tensor that node's rule reads (its inputs, its output), or the
    tensor it is a view of, was changed in place after the node was made."""
    saved = [out] if node.name in _SAVES_NO_INPUTS else list(node.inputs) + [out]
    for x in saved:
        if x._node is not None and x._node.name in _VIEWS and x._node.inputs:
            saved.append(x._node.inputs[0])  # the view's base, checked in its turn
        v = _counter_of(x)
        if v is None or not v.changes or v.changes[-1] <= node.epoch:
            continue
        later = builtins.sum(1 for c in v.changes if c > node.epoch)
        expected = v.count - later
        how = "at most " if later == v.changes.maxlen else ""
        raise RuntimeError(
            "backward: one of the variables needed for gradient computation has been modified "
            f"by an inplace operation: the {x.dtype} tensor of shape {x.shape} that "
            f"'{node.name}' saved is at version {v.count}; expected version {how}{expected} "
            "instead (its gradient would be wrong). Change it after backward(), or give the op a "
            "copy (x.clone()).")


class _ThreadState(threading.local):
    """The engine's state in one thread, as PyTorch's grad mode is per thread: how many
    backward sweeps run here (a hook may call backward()), and the callbacks that the sweep in
    progress runs when it ends (_queue_callback). Graphs built and differentiated in several
    threads at once do not see each other's state."""

    in_backward = 0

    def __init__(self):
        self.final_callbacks = []


_state = _ThreadState()
# This thread's grad mode: a plain threading.local (its attribute reads cost half those of a
# subclass's), set on a thread's first read to PyTorch's default, recording. Every op asks for
# it, and a thread-local read costs an op about 2%; so the ops read the module's count of the
# threads whose mode is off (_threads_without_grad) first, and the thread's own mode only where
# some thread has turned recording off (inside no_grad, or a backward sweep).
_grad_mode = threading.local()
_grad_mode.enabled = True
_threads_without_grad = 0
_grad_mode_lock = threading.Lock()


def is_grad_enabled():
    """Whether operations are being recorded for differentiation (in this thread)."""
    try:
        return _grad_mode.enabled
    except AttributeError:  # a thread that has not read its mode yet
        _grad_mode.enabled = True
        return True


def _set_grad_mode(mode):
    """Set this thread's grad mode; return the previous one."""
    global _threads_without_grad
    with _grad_mode_lock:
        prev = is_grad_enabled()
        if prev != mode:
            _threads_without_grad += 1 if prev else -1
        _grad_mode.enabled = mode
    return prev


class set_grad_enabled:
    """Turn recording on or off in this thread: as a call, a context manager (restoring on
    exit) or a decorator."""

    def __init__(self, mode=True):
        self._mode = bool(mode)
        self._prev = _set_grad_mode(self._mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set_grad_mode(self._prev)

    def __call__(self, fn):
        mode = self._mode
        if not isinstance(self, no_grad):
            _set_grad_mode(self._prev)  # as a decorator the mode applies inside fn only

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            # the previous mode is kept here, not on self: one decorated function may run in
            # several threads at once
            prev = _set_grad_mode(mode)
            try:
                return fn(*args, **kwargs)
            finally:
                _set_grad_mode(prev)
        return wrapper


class no_grad(set_grad_enabled):
    """Context manager and decorator that turns recording off (in this thread)."""

    _default = False

    def __init__(self):
        self._mode = self._default

    def __enter__(self):
        self._prev = _set_grad_mode(self._mode)
        return self


class enable_grad(no_grad):
    """Context manager and decorator that turns recording on (inside a no_grad block)."""

    _default = True


def _device_named(op, device):
    """A Device, from a Device or one of torch's names: "cpu", "cuda", "cuda:N"."""
    if isinstance(device, Device):
        return device
    if device == "cpu":
        return NumpyDevice()
    if isinstance(device, str) and (device == "cuda" or device.startswith("cuda:")):
        return CupyDevice(int(device[5:] or 0))
    raise TypeError(f"{op}: a device is a simplegrad Device, 'cpu' or 'cuda[:N]', not "
                    f"{device!r}")


def device(name):
    """The Device for one of torch's names ("cpu", "cuda", "cuda:N"), as torch.device; a Device
    is returned as it is. "cuda" needs CuPy and a GPU (an ImportError saying so otherwise)."""
    return _device_named("device", name)


class cuda:
    """torch.cuda's questions, answered for the CuPy device: `if sg.cuda.is_available()`."""

    @staticmethod
    def device_count():
        """How many GPUs CuPy sees; 0 without CuPy or a driver."""
        try:
            import cupy
            return cupy.cuda.runtime.getDeviceCount()
        except Exception:  # no CuPy, no driver, no GPU: all mean none to use
            return 0

    @staticmethod
    def is_available():
        return cuda.device_count() > 0


def _to_device(x, device):
    """x's data copied to `device` (through the host); the gradient is copied back."""
    source = x._device
    if device == source:
        return x

    def backward(g, out, need):
        return (_wrap(source.array(device.to_host(g._data)), source),)

    out = _record("to", device.array(source.to_host(x._data)), (x,), backward)
    out._device = device
    return out


def _record(name, data, inputs, backward):
    """Wrap an op's forward result; keep its node when recording and an input requires grad."""
    out = _wrap(data, inputs[0]._device)
    recording = True
    if _threads_without_grad:  # is_grad_enabled(), inlined: every op asks
        try:
            recording = _grad_mode.enabled
        except AttributeError:
            recording = is_grad_enabled()
    if recording:
        for x in inputs:
            if x._rg:
                out._rg = True
                out._node = _Node(name, inputs, backward)
                break
    if _profiler is not None:
        _profiler._op(name)
    if _anomaly:
        _check_output(name, out)
    return out


def _toposort(roots):
    """Tensors that require grad reachable from `roots`, each after all of its inputs.

    Depth-first with an explicit stack, so the depth of a graph never meets Python's
    recursion limit, and each tensor is visited once however many paths lead to it.
    """
    order, seen = [], set()
    for root in roots:
        if id(root) in seen:
            continue
        seen.add(id(root))
        stack = [(root, iter(_inputs_of(root)))]
        while stack:
            t, inputs = stack[-1]
            for x in inputs:
                if x._rg and id(x) not in seen:
                    seen.add(id(x))
                    stack.append((x, iter(_inputs_of(x))))
                    break
            else:
                stack.pop()
                order.append(t)
    return order


def _inputs_of(t):
    node = t._node
    if node is None:
        return ()
    if node.backward is None:
        raise RuntimeError(
            f"backward: the graph through '{node.name}' (output shape {t.shape}) was freed by an "
            "earlier backward(); pass retain_graph=True to the first call to backward twice")
    return node.inputs


def _unbroadcast(g, shape):
    """Sum g down to `shape`, undoing NumPy broadcasting (the one place it is undone)."""
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    if axes:
        g = g.sum(axes, keepdims=True)
    return g.reshape(shape) if g.shape != shape else g


def _queue_callback(fn):
    """Run fn() once, right after the backward sweep in progress has visited every tensor
    (torch's Variable._execution_engine.queue_callback): DistributedDataParallel waits for its
    all-reduces there. Call it from a hook during backward()."""
    _state.final_callbacks.append(fn)


def _backprop(roots, root_grads, targets=None, retain_graph=False, create_graph=False):
    """Push gradients from `roots` to every tensor that needs one.

    Without `targets` (backward()), leaves that require grad and tensors that called
    retain_grad() accumulate into ``.grad``. With `targets` (grad()), nothing is stored:
    the gradients of the targets are returned, and only paths that reach them are walked.
    """
    order = _toposort(roots)
    if targets is None:
        relevant = None
    else:
        relevant = {id(t) for t in targets}
        for t in order:
            if t._node is not None and builtins.any(id(x) in relevant for x in t._node.inputs):
                relevant.add(id(t))
    grads = {}
    for r, g in zip(roots, root_grads):
        grads[id(r)] = grads[id(r)] + g if id(r) in grads else g
    summed = set()  # tensors whose gradient the sweep has summed into memory of its own
    target_ids = () if targets is None else {id(t) for t in targets}
    found = {}
    callbacks = _state.final_callbacks
    del callbacks[:]  # left by a sweep that raised
    with set_grad_enabled(create_graph), _backward_phase():
        for t in reversed(order):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            hooks = t._hooks
            if hooks:
                for hook in list(hooks["grad"].values()):
                    new = hook(g)
                    if new is not None:
                        g = new
            node = t._node
            if targets is not None:
                if id(t) in target_ids:
                    found[id(t)] = g
            elif node is None or t._retain:
                if t.grad is None:
                    # memory of its own: g may be a broadcast view or another tensor's
                    # gradient too, and optimizers (torch.optim's as well) write into .grad
                    t.grad = g if create_graph else _wrap(g._device.copy(g._data), g._device)
                else:
                    t.grad = t.grad + g
                if hooks:
                    for hook in list(hooks["post_accumulate"].values()):
                        hook(t)
            if node is None:
                continue
            inputs = node.inputs
            if relevant is None:
                need = tuple(x._rg for x in inputs)
            else:
                need = tuple(id(x) in relevant for x in inputs)
            if True in need:
                if node.epoch != _changes:
                    _check_unchanged(node, t)
                if _profiler is not None:
                    _profiler._rule(node.name)
                gxs = node.backward(g, t, need)
                if _anomaly:
                    _check_gradients(node, gxs, need)
                for x, gx, needed in zip(inputs, gxs, need):
                    if gx is None or not needed:
                        continue
                    if gx.shape != x.shape:
                        gx = _unbroadcast(gx, x.shape)
                    key = id(x)
                    acc = grads.get(key)
                    if acc is None:
                        grads[key] = gx
                    elif key in summed and gx.dtype == acc.dtype:
                        acc._device.add_(acc._data, gx._data)  # its own array: add in place
                    else:
                        grads[key] = acc = acc + gx
                        if not create_graph and acc.ndim:  # fresh memory no one else sees
                            summed.add(key)
            if not retain_graph:
                node.backward, node.inputs = None, ()
    while callbacks:
        callbacks.pop(0)()
    return found


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of `outputs` with respect to `inputs`, returned rather than stored in .grad."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    for x in inputs:
        if not x._rg:
            raise RuntimeError(f"grad: an input of shape {x.shape} does not require grad")
    root_grads = [_root_grad("grad", out, g) for out, g in zip(outputs, grad_outputs)]
    retain = create_graph if retain_graph is None else retain_graph
    found = _backprop(outputs, root_grads, inputs, retain, create_graph)
    result = []
    for x in inputs:
        g = found.get(id(x))
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: an input of shape {x.shape} was not used to compute the "
                               "outputs; pass allow_unused=True to get None for it")
        result.append(g)
    return tuple(result)


def _root_grad(op, out, g):
    if not out._rg:
        raise RuntimeError(f"{op}: the output of shape {out.shape} does not require grad and has "
                           "no graph; did you call requires_grad_() on the inputs?")
    if g is None:
        if out.numel() != 1:
            raise RuntimeError(f"{op}: a gradient is implicitly created only for a one-element "
                               f"output, but this one has shape {out.shape}; pass a gradient")
        return _wrap(out._device.full(out.shape, 1, out.dtype), out._device)
    g = g if isinstance(g, Tensor) else Tensor(g, dtype=out.dtype)
    if g.shape != out.shape:
        raise RuntimeError(f"{op}: the gradient has shape {g.shape} but the output has shape "
                           f"{out.shape}")
    return g if g.dtype == out.dtype else g.astype(out.dtype)


# ---- profile and detect_anomaly ----------------------------------------------------------------
# Both hook into the engine behind module-level flags, so that they cost one test each when
# off: _record (every op's forward, under no_grad too), _backprop's call of each node's rule,
# and _backward_phase around the sweep, which tells them that the ops a backward rule runs are
# part of that rule, not forward ops of their own.

_profiler = None   # the active profile, or None
_anomaly = False   # whether detect_anomaly() is on


class _backward_phase:
    """Around a backward sweep: the ops recorded now belong to the rule that runs them."""

    def __enter__(self):
        _state.in_backward += 1
        if _profiler is not None and _state.in_backward == 1:
            _profiler._begin_backward()

    def __exit__(self, *exc):
        if _profiler is not None and _state.in_backward == 1:
            _profiler._end_backward()
        _state.in_backward -= 1


class _OpStats:
    """One row of a profile, an op in one phase: its calls, time and the kernels it ran.

    ``kernel_calls`` and ``kernel_ns`` count the outermost device calls; ``nested_calls`` and
    ``nested_ns`` the calls made from inside another kernel (a derived kernel's default).
    """

    __slots__ = ("calls", "time_ns", "kernel_calls", "kernel_ns", "nested_calls", "nested_ns")

    def __init__(self):
        self.calls, self.time_ns = 0, 0
        self.kernel_calls, self.kernel_ns, self.nested_calls, self.nested_ns = {}, {}, {}, {}

    def __repr__(self):
        return (f"_OpStats(calls={self.calls}, total_ms={self.time_ns / 1e6:.3f}, "
                f"kernel_calls={self.kernel_calls})")


class profile:
    """Record every op's calls and time, forward and backward apart, and its device kernels.

        with simplegrad.profile() as prof:
            loss = model(x).cross_entropy(y)
            loss.backward()
        print(prof.table())
        prof.to_chrome_trace("trace.json")   # open in chrome://tracing or ui.perfetto.dev

    ``prof.ops`` maps ``(phase, op)`` to an ``_OpStats``: ``calls``, ``time_ns``, and
    ``kernel_calls`` / ``kernel_ns`` per device method (primitive, derived kernel or plumbing).

    Attribution. An op computes its result, then records it: in forward, the kernels called
    since the previous op was recorded belong to the op being recorded, and its time runs from
    its first kernel to its recording. Ops never write in place, so kernels up to an ``assign``
    (an optimizer step, loading weights) go to the pseudo-op "(other)" instead, as do kernels
    left over when the profile ends. Ops under no_grad are counted. In backward, an op's time and
    kernels run from the start of its rule to the start of the next rule, so they include
    undoing broadcasting and accumulating the gradients it returned; the ops a rule runs are part
    of the rule, not counted on their own. A kernel called from inside another kernel (a derived
    kernel's default built on primitives, as on the reference device) counts once, under the
    outermost call, in ``kernel_calls``; the inner calls are counted apart in ``nested_calls``.

    While the profile is active the device methods of the classes of `devices` (default:
    ``[Tensor.device]``) are wrapped, so every instance of those classes is seen; ops on
    tensors of other device classes are timed without their kernels. Profiles do not nest.
    """

    def __init__(self, devices=None):
        self.ops = {}
        self._devices = devices
        self._events = []    # (phase, op, start_ns, end_ns, kernels), in order
        self._pending = []   # kernels since the last op: (name, start_ns, duration_ns, depth)
        self._depth = 0      # how many kernels are running (a default calling primitives)
        self._rule_op = None  # in backward: (op, start_ns) of the rule running
        self._restore = []
        self._start = 0

    def __enter__(self):
        global _profiler
        if _profiler is not None:
            raise RuntimeError("profile: another profile is active; profiles do not nest")
        devices = [Tensor.device] if self._devices is None else list(self._devices)
        patches = []  # every original is looked up before anything is wrapped
        for device in devices:
            cls = type(device)
            for name in _DEVICE_METHODS:
                if name in vars(device):  # an instance attribute (CupyDevice's ufuncs)
                    patches.append((device, name, vars(device)[name], True))
                elif not builtins.any(cls is c and name == n for c, n, _, _ in patches):
                    raw = next(vars(k)[name] for k in cls.__mro__ if name in vars(k))
                    patches.append((cls, name, raw, name in vars(cls)))
        for owner, name, original, own in patches:
            if isinstance(owner, type):
                setattr(owner, name, self._timed_method(owner, name, original))
            else:
                setattr(owner, name, self._timed_function(name, original))
            self._restore.append((owner, name, original, own))
        self._start = time.perf_counter_ns()
        _profiler = self
        return self

    def __exit__(self, *exc):
        global _profiler
        if _state.in_backward:
            self._end_backward()
        self._flush_other("forward", self._pending)
        _profiler = None
        for owner, name, original, own in reversed(self._restore):
            if own:
                setattr(owner, name, original)
            else:
                delattr(owner, name)
        self._restore = []

    # ---- hooks: device kernels, and the engine's forward ops and backward rules ---------------
    def _kernel(self, name, fn, args, kwargs):
        depth = self._depth
        self._depth = depth + 1
        start = time.perf_counter_ns()
        try:
            return fn(*args, **kwargs)
        finally:
            self._depth = depth
            self._pending.append((name, start, time.perf_counter_ns() - start, depth))

    def _timed_method(self, cls, name, raw):
        def method(device, *args, **kwargs):
            fn = raw.__get__(device, cls) if hasattr(raw, "__get__") else raw
            return self._kernel(name, fn, args, kwargs)
        method.__name__ = name
        return method

    def _timed_function(self, name, fn):
        def function(*args, **kwargs):
            return self._kernel(name, fn, args, kwargs)
        function.__name__ = name
        return function

    def _op(self, name):
        """_record's hook: the kernels pending belong to this forward op."""
        if _state.in_backward:
            return  # an op inside a backward rule: its kernels belong to the rule
        now = time.perf_counter_ns()
        kernels, self._pending = self._pending, []
        last_assign = builtins.max((i for i, k in enumerate(kernels)
                                    if k[0] == "assign" and k[3] == 0),
                          default=None)
        if last_assign is not None:
            self._flush_other("forward", kernels[:last_assign + 1])
            kernels = kernels[last_assign + 1:]
        start = builtins.min((k[1] for k in kernels), default=now)
        self._add("forward", name, start, now, kernels)

    def _begin_backward(self):
        self._rule_op = None

    def _rule(self, name):
        """_backprop's hook, as a node's rule starts: close the previous rule's span."""
        now = time.perf_counter_ns()
        self._end_rule(now)
        self._rule_op = (name, now)

    def _end_backward(self):
        self._end_rule(time.perf_counter_ns())
        self._rule_op = None

    def _end_rule(self, now):
        kernels, self._pending = self._pending, []
        if self._rule_op is None:
            self._flush_other("backward", kernels)  # the seed gradient, before the first rule
        else:
            self._add("backward", self._rule_op[0], self._rule_op[1], now, kernels)

    def _flush_other(self, phase, kernels):
        if kernels:
            self._add(phase, "(other)", builtins.min(k[1] for k in kernels),
                      builtins.max(k[1] + k[2] for k in kernels), kernels)
        if kernels is self._pending:
            self._pending = []

    def _add(self, phase, op, start, end, kernels):
        stats = self.ops.get((phase, op))
        if stats is None:
            stats = self.ops[phase, op] = _OpStats()
        stats.calls += 1
        stats.time_ns += end - start
        for name, _, duration, depth in kernels:
            calls, ns = ((stats.kernel_calls, stats.kernel_ns) if depth == 0 else
                         (stats.nested_calls, stats.nested_ns))
            calls[name] = calls.get(name, 0) + 1
            ns[name] = ns.get(name, 0) + duration
        self._events.append((phase, op, start, end, kernels))

    # ---- reports ------------------------------------------------------------------------------
    def table(self, limit=None):
        """The ops as a text table, the longest total time first, with their kernels."""
        rows = sorted(self.ops.items(), key=lambda item: -item[1].time_ns)[:limit]
        width = builtins.max([len(op) for _, op in self.ops] + [8])
        lines = [f"{'phase':<9} {'op':<{width}} {'calls':>6} {'total ms':>9} {'kernel ms':>9}"
                 "  kernels: name(calls) ms, the longest first"]
        for (phase, op), s in rows:
            kernels = sorted(s.kernel_ns, key=lambda k: -s.kernel_ns[k])
            breakdown = ", ".join(f"{k}({s.kernel_calls[k]}) {s.kernel_ns[k] / 1e6:.3f}"
                                  for k in kernels)
            lines.append(f"{phase:<9} {op:<{width}} {s.calls:>6} {s.time_ns / 1e6:>9.3f} "
                         f"{builtins.sum(s.kernel_ns.values()) / 1e6:>9.3f}  {breakdown}")
        for phase in ("forward", "backward"):
            total = builtins.sum(s.time_ns for (p, _), s in self.ops.items() if p == phase)
            calls = builtins.sum(s.calls for (p, _), s in self.ops.items() if p == phase)
            lines.append(f"{phase + ' total':<{width + 10}} {calls:>6} {total / 1e6:>9.3f}")
        return "\n".join(lines)

    def to_chrome_trace(self, path):
        """Write the profile as Chrome trace JSON (chrome://tracing, ui.perfetto.dev): one
        complete event per op, with its kernels as the events inside it."""
        pid = os.getpid()

        def event(name, category, start, duration, args):
            return {"name": name, "cat": category, "ph": "X", "pid": pid, "tid": 1,
                    "ts": (start - self._start) / 1e3, "dur": duration / 1e3, "args": args}

        events = []
        for phase, op, start, end, kernels in self._events:
            events.append(event(op, phase, start, end - start, {"phase": phase}))
            for name, k_start, duration, depth in kernels:
                events.append(event(name, "kernel" if depth == 0 else "nested kernel", k_start,
                                    duration, {"op": op, "phase": phase}))
        with open(path, "w") as f:
            json.dump({"traceEvents": events, "displayTimeUnit": "ms"}, f)


# every public Device method a profile wraps: primitives, plumbing and derived kernels
_DEVICE_METHODS = tuple(name for name, value in vars(Device).items()
                        if callable(value) and not name.startswith("_"))


class AnomalyError(RuntimeError):
    """Raised under detect_anomaly() by the first op whose forward or backward is not finite."""


class detect_anomaly:
    """Raise AnomalyError at the first op whose output (forward) or input gradient (backward)
    holds nan or inf: a context manager, or a decorator. While it is on, each node also keeps
    the stack (outside simplegrad) that created it, and a backward error shows it. Each check
    reads the array on the host (a GPU synchronises), so this is for debugging only.
    """

    def __enter__(self):
        global _anomaly
        self._prev, _anomaly = _anomaly, True
        return self

    def __exit__(self, *exc):
        global _anomaly
        _anomaly = self._prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly():
                return fn(*args, **kwargs)
        return wrapper


class _TracedNode(_Node):
    """A node made under detect_anomaly(): also the user's stack at the op's creation."""

    __slots__ = ("stack",)


def _non_finite(t):
    """"nan" or "inf" when float tensor t holds one, else None."""
    if t._data.dtype.kind not in "fc":
        return None
    a = t._data
    if not isinstance(a, (np.ndarray, np.generic)):
        a = t._device.to_host(a)
    if np.isfinite(a).all():
        return None
    return "nan" if np.isnan(a).any() else "inf"


def _check_output(name, out):
    """_record's anomaly hook: keep where the op was made; its output must be finite."""
    if _state.in_backward:
        return  # an op inside a backward rule: _check_gradients checks what the rule returns
    node = out._node
    if node is not None:
        traced = out._node = _TracedNode(node.name, node.inputs, node.backward)
        traced.epoch = node.epoch
        frames = traceback.StackSummary.extract(traceback.walk_stack(sys._getframe(2)),
                                                lookup_lines=False)
        traced.stack = [f for f in reversed(frames) if f.filename != _THIS_FILE]
    bad = None if name == "to" else _non_finite(out)  # a copy holds what its input held
    if bad:
        raise AnomalyError(f"detect_anomaly: the forward of '{name}' produced {bad} (output "
                           f"shape {out.shape})")


def _check_gradients(node, gxs, need):
    """_backprop's anomaly hook: each input gradient a rule returns must be finite."""
    for i, (gx, needed) in enumerate(zip(gxs, need)):
        bad = None if gx is None or not needed else _non_finite(gx)
        if bad:
            stack = getattr(node, "stack", None)
            where = ("".join(traceback.format_list(stack[-10:])) if stack else
                     "  (unknown: it was made while detect_anomaly() was off)\n")
            raise AnomalyError(
                f"detect_anomaly: the backward of '{node.name}' returned {bad} in the gradient "
                f"of input {i} (shape {gx.shape}). The '{node.name}' was created at (most "
                f"recent call last):\n{where}")


_THIS_FILE = _check_output.__code__.co_filename


# ================================================================================================
# 3. Ops
# ================================================================================================
# Each op computes its forward with device calls and returns the result through _record,
# together with a rule backward(g, out, need) written with Tensor operations, so that with
# create_graph=True the backward pass is recorded too. `need[i]` says whether input i wants a
# gradient; broadcasting is undone by the engine, never here. The order follows the device:
# unary, reductions, binary, contraction, views, then derived ops.

# ---- unary elementwise -------------------------------------------------------------------------

def _exp(x):
    # d/dx e^x = e^x
    def backward(g, out, need):
        return (g * out,)
    return _record("exp", x._device.exp(x._data), (x,), backward)


def _log(x):
    # d/dx log x = 1/x
    def backward(g, out, need):
        return (g / x,)
    return _record("log", x._device.log(x._data), (x,), backward)


# ---- reductions ----------------------------------------------------------------------------------

def _kept_shape(shape, axes):
    return tuple(1 if axes is None or i in axes else n for i, n in enumerate(shape))


def _sum(x, axes, keepdims):
    # every element gets the gradient of the sum it went into
    def backward(g, out, need):
        return (g.reshape(_kept_shape(x.shape, axes)).expand(x.shape),)
    return _record("sum", x._device.sum(x._data, axes, keepdims), (x,), backward)


def _amax(x, axes, keepdims):
    d = x._device

    # the gradient goes to the maximal elements, split evenly among ties (as torch.amax)
    def backward(g, out, need):
        shape = _kept_shape(x.shape, axes)
        hit = d.astype(d.equal(x._data, d.reshape(out._data, shape)), x.dtype)
        share = _wrap(d.divide(hit, d.sum(hit, axes, True)), d)
        return (g.reshape(shape) * share,)
    return _record("amax", d.max(x._data, axes, keepdims), (x,), backward)


# ---- binary, broadcasting ------------------------------------------------------------------------
# (sub, div and neg are derived ops: each is one device kernel, cheaper than its composite)

def _add(x, y):
    # d(x + y) = dx + dy
    def backward(g, out, need):
        return g, g
    return _record("add", x._device.add(x._data, y._data), (x, y), backward)


def _mul(x, y):
    # d(x y) = y dx + x dy
    def backward(g, out, need):
        return (g * y if need[0] else None), (g * x if need[1] else None)
    return _record("mul", x._device.mul(x._data, y._data), (x, y), backward)


def _sub(x, y):
    # d(x - y) = dx - dy
    def backward(g, out, need):
        return g, (-g if need[1] else None)
    return _record("sub", x._device.subtract(x._data, y._data), (x, y), backward)


def _div(x, y):
    # d(x / y) = dx / y - x dy / y^2 = (dx - out dy) / y
    def backward(g, out, need):
        gx = g / y
        return gx, (-gx * out if need[1] else None)
    return _record("div", x._device.divide(x._data, y._data), (x, y), backward)


def _pow(x, y):
    def backward(g, out, need):
        gx = gy = None
        if need[0]:
            # d/dx x^y = y x^(y-1), and 0 where y == 0 (as PyTorch)
            if y.ndim == 0 and not y._rg:
                c = y.item()
                gx = g * (c * x ** (c - 1)) if c != 0 else g * 0
            else:
                gx = g * where(y == 0, 0.0, y * x ** (y - 1))
        if need[1]:
            # d/dy x^y = x^y log x, and 0 where x == 0 and y >= 0 (as PyTorch)
            gy = g * where((x == 0) & (y >= 0), 0.0, out * x.log())
        return gx, gy
    return _record("pow", x._device.pow(x._data, y._data), (x, y), backward)


# ---- contraction -------------------------------------------------------------------------------

def _einsum(subscripts, operands):
    """Einsum in the device's explicit form: no ellipsis, no letter twice in one operand."""
    inputs, output = subscripts.split("->")
    subs = inputs.split(",")

    # d/dA of einsum(A, B, ... -> out) is einsum(g, B, ... -> A's letters); letters that A
    # alone has were summed away, so the gradient is broadcast back over them
    def backward(g, out, need):
        grads = []
        for k, sub in enumerate(subs):
            if not need[k]:
                grads.append(None)
                continue
            others = [s for j, s in enumerate(subs) if j != k]
            kept = "".join(c for c in sub if c in output or builtins.any(c in s for s in others))
            if not others and kept == output:
                gk = g
            else:
                gk = _einsum(",".join([output] + others) + "->" + kept,
                             [g] + [o for j, o in enumerate(operands) if j != k])
            if kept != sub:
                x = operands[k]
                gk = gk.reshape(tuple(n if c in kept else 1 for c, n in zip(sub, x.shape)))
                gk = gk.expand(x.shape)
            grads.append(gk)
        return grads
    data = operands[0]._device.einsum(subscripts, *(o._data for o in operands))
    return _record("einsum", data, tuple(operands), backward)


def _matmul(x, y):
    # d(x @ y) = dx @ y + x @ dy, batch dimensions summed by the engine; a matrix y shared by
    # a batch of x (a layer's weight) gets one product over the flattened batch, rather than a
    # batch of products as large as the batch that is then summed
    def backward(g, out, need):
        gx = g @ y.mT if need[0] else None
        if not need[1]:
            gy = None
        elif y.ndim == 2 and x.ndim > 2:
            gy = x.reshape(-1, x.shape[-1]).mT @ g.reshape(-1, g.shape[-1])
        else:
            gy = x.mT @ g
        return gx, gy
    return _record("matmul", x._device.matmul(x._data, y._data), (x, y), backward)


# ---- views ---------------------------------------------------------------------------------------

def _as_strided(x, shape, strides, offset):
    # each element of x gets the sum of the gradients of every view position that read it
    def backward(g, out, need):
        return (_as_strided_scatter(g, shape, strides, offset, x.shape),)
    data = x._device.as_strided(x._data, shape, strides, offset)
    return _record("as_strided", data, (x,), backward)


def _as_strided_scatter(g, shape, strides, offset, base_shape):
    # the adjoint of as_strided, so its own gradient is as_strided again
    def backward(gg, out, need):
        return (_as_strided(gg, shape, strides, offset),)
    data = g._device.as_strided_scatter(g._data, shape, strides, offset, base_shape)
    return _record("as_strided_scatter", data, (g,), backward)


# ---- derived ops: one device kernel each, for speed or stability ------------------------------

def _neg(x):
    # d(-x) = -dx
    def backward(g, out, need):
        return (-g,)
    return _record("neg", x._device.neg(x._data), (x,), backward)


# ---- elementwise maths: one row per op ---------------------------------------------------------
# Each row is an op made of one device kernel (NumPy's name) and its derivative in one line, in
# the vocabulary of PyTorch's derivatives.yaml: g is the incoming gradient, x (and y) the inputs,
# out the result, all Tensors, so that a rule is itself differentiable (create_graph). Below the
# Tensor class one loop makes each row a Tensor method, a module-level function and, where NumPy
# has the ufunc, a NumPy protocol entry; integer inputs become float32 first, as in PyTorch.

_LN2, _LN10, _2_SQRT_PI = math.log(2), math.log(10), 2 / math.sqrt(math.pi)

# name       kernel       d out / d x
_UNARY = [
    ("sqrt",    "sqrt",    lambda g, x, out: g / (2 * out)),
    ("sin",     "sin",     lambda g, x, out: g * x.cos()),
    ("cos",     "cos",     lambda g, x, out: g * -x.sin()),
    ("tan",     "tan",     lambda g, x, out: g * (1 + out * out)),
    ("asin",    "arcsin",  lambda g, x, out: g * (1 - x * x).rsqrt()),
    ("acos",    "arccos",  lambda g, x, out: g * -(1 - x * x).rsqrt()),
    ("atan",    "arctan",  lambda g, x, out: g / (x * x + 1)),
    ("sinh",    "sinh",    lambda g, x, out: g * x.cosh()),
    ("cosh",    "cosh",    lambda g, x, out: g * x.sinh()),
    ("tanh",    "tanh",    lambda g, x, out: g * (1 - out * out)),
    ("asinh",   "arcsinh", lambda g, x, out: g * (x * x + 1).rsqrt()),
    ("acosh",   "arccosh", lambda g, x, out: g * (x * x - 1).rsqrt()),
    ("atanh",   "arctanh", lambda g, x, out: g / (1 - x * x)),
    ("log2",    "log2",    lambda g, x, out: g / (x * _LN2)),
    ("log10",   "log10",   lambda g, x, out: g / (x * _LN10)),
    ("log1p",   "log1p",   lambda g, x, out: g / (x + 1)),
    ("exp2",    "exp2",    lambda g, x, out: g * out * _LN2),
    ("expm1",   "expm1",   lambda g, x, out: g * (out + 1)),
    ("sigmoid", "sigmoid", lambda g, x, out: g * (out * (1 - out))),
    ("erf",     "erf",     lambda g, x, out: g * (-(x * x)).exp() * _2_SQRT_PI),
    ("erfc",    "erfc",    lambda g, x, out: g * (-(x * x)).exp() * -_2_SQRT_PI),
]

# Rounding and sign are piecewise constant: their gradient is zero, and the result stays in the
# graph (as in PyTorch). round is rint: halves go to the even neighbour, as torch.round.
# name       kernel
_STEPS = [
    ("floor",   "floor"),
    ("ceil",    "ceil"),
    ("trunc",   "trunc"),
    ("round",   "rint"),
    ("sign",    "sign"),
]

# name          kernel         d out / d x                                    d out / d y
_BINARY = [
    ("atan2",      "arctan2",    lambda g, x, y, out: g * y * _inverse_square(x, y),
                                 lambda g, x, y, out: g * -x * _inverse_square(x, y)),
    ("hypot",      "hypot",      lambda g, x, y, out: g * x / out,
                                 lambda g, x, y, out: g * y / out),
    ("logaddexp",  "logaddexp",  lambda g, x, y, out: g / (1 + (y - x).exp()),
                                 lambda g, x, y, out: g / (1 + (x - y).exp())),
    ("logaddexp2", "logaddexp2", lambda g, x, y, out: g / (1 + 2 ** (y - x)),
                                 lambda g, x, y, out: g / (1 + 2 ** (x - y))),
    ("copysign",   "copysign",   lambda g, x, y, out: g * where(x == 0, 0.0, out / x),
                                 lambda g, x, y, out: _zero_grad(g)),
    ("fmax",       "fmax",       lambda g, x, y, out: g * ((x >= y) | y.isnan()),
                                 lambda g, x, y, out: g * ~((x >= y) | y.isnan())),
    ("fmin",       "fmin",       lambda g, x, y, out: g * ((x <= y) | y.isnan()),
                                 lambda g, x, y, out: g * ~((x <= y) | y.isnan())),
    ("fmod",       "fmod",       lambda g, x, y, out: g,
                                 lambda g, x, y, out: g * -(x / y).trunc()),
    ("remainder",  "remainder",  lambda g, x, y, out: g,
                                 lambda g, x, y, out: g * -_quotient(x, y)),
]
# ops of _BINARY that keep integer inputs integral (the others turn them into float32 first)
_INTEGRAL_BINARY = {"fmax", "fmin", "fmod", "remainder"}


def _inverse_square(x, y):
    """1 / (x^2 + y^2), and 0 where that sum is 0 (it underflows too): atan2's gradient is 0
    at the origin, as torch's."""
    r2 = x * x + y * y
    return where(r2 == 0, 0.0, 1 / where(r2 == 0, 1.0, r2))


def _quotient(x, y):
    """floor(x / y) as NumPy rounds it, a constant (no graph): remainder's derivative in y."""
    return _wrap(x._device.floor_divide(x._data, y._data), x._device)


def _zero_grad(g):
    """A zero gradient of g's shape: the derivative of a piecewise-constant op."""
    return _wrap(g._device.full(g.shape, 0, g.dtype), g._device)


def _unary_op(name, kernel, rule):
    def op(x):
        def backward(g, out, need):
            return (rule(g, x, out),)
        return _record(name, getattr(x._device, kernel)(x._data), (x,), backward)
    op.__name__ = op.__qualname__ = f"_{name}"
    return op


def _binary_op(name, kernel, rule_x, rule_y):
    def op(x, y):
        def backward(g, out, need):
            return (rule_x(g, x, y, out) if need[0] else None,
                    rule_y(g, x, y, out) if need[1] else None)
        return _record(name, getattr(x._device, kernel)(x._data, y._data), (x, y), backward)
    op.__name__ = op.__qualname__ = f"_{name}"
    return op


def _no_derivative(op):
    def backward(g, out, need):
        raise RuntimeError(f"the derivative of {op} is not implemented (as in PyTorch): it is "
                           "zero almost everywhere; detach() its inputs")
    return backward


def _zero_gradient(name, data, inputs):
    """An op whose result does not vary smoothly with its inputs (a rounded quotient, a random
    sample that is not reparameterised): in the graph, with a zero gradient for each input, as
    PyTorch's div(rounding_mode=...), normal and bernoulli."""
    def backward(g, out, need):
        return tuple(_zero_grad(x) for x in inputs)
    return _record(name, data, tuple(inputs), backward)


def _nan_to_zero(x):
    # nan becomes 0; the gradient is g times the mask of numbers (a product, as torch.nansum's
    # rule, so an infinite g makes nan where x was nan, as there)
    d = x._device
    number = d.equal(x._data, x._data)

    def backward(g, out, need):
        return (g * _wrap(number, d),)
    return _record("nan_to_zero", d.where(number, x._data, d.full((), 0, x.dtype)), (x,),
                   backward)


def _sinc(x):
    d = x._device
    zero = d.equal(x._data, 0)
    px = d.mul(d.where(zero, 1, x._data), math.pi)  # a safe input at 0

    # d/dx sin(pi x) / (pi x) = (pi x cos(pi x) - sin(pi x)) / (pi x^2), and 0 where pi x^2 is
    # 0 (also where it underflows): torch's formula, one fraction (two terms of 1 / x^2 each
    # would cancel badly near 0)
    def backward(g, out, need):
        denominator = x * x * math.pi
        tiny = denominator == 0
        p = where(tiny, 1.0, x) * math.pi
        return (g * where(tiny, 0.0, (p * p.cos() - p.sin()) / where(tiny, 1.0, denominator)),)
    return _record("sinc", d.where(zero, 1, d.divide(d.sin(px), px)), (x,), backward)


def _floor_divide(x, y):
    # floor(x / y) rounded as NumPy and PyTorch do; PyTorch defines no derivative for it
    return _record("floor_divide", x._device.floor_divide(x._data, y._data), (x, y),
                   _no_derivative("floor_divide"))


_UNARY_OPS = {name: _unary_op(name, kernel, rule) for name, kernel, rule in _UNARY}
_STEP_OPS = {name: _unary_op(name, kernel, lambda g, x, out: _zero_grad(g))
             for name, kernel in _STEPS}
_BINARY_OPS = {name: _binary_op(name, kernel, rule_x, rule_y)
               for name, kernel, rule_x, rule_y in _BINARY}


# ---- reductions and scans beyond sum and max --------------------------------------------------

def _any(d, mask):
    """Whether a bool device array holds a True (read on the host)."""
    return bool(d.to_host(d.sum(d.astype(mask, np.int64))))


def _prod(x, axes, keepdims):
    d = x._device

    # d/dx_i prod(x) = the product of the others: out / x_i where no element is 0 (PyTorch's
    # rule), else exclusive products from both sides, which are exact around the zeros
    def backward(g, out, need):
        shape = _kept_shape(x.shape, axes)
        g, out = g.reshape(shape), out.reshape(shape)
        if not _any(d, d.equal(x._data, 0)):
            return (g * out / x,)
        return (g * _others_product(x, axes),)
    return _record("prod", d.prod(x._data, axes, keepdims), (x,), backward)


def _others_product(x, axes):
    """The product of the other elements of each element's group (the reduced axes), from
    cumulative products of the elements before it and after it."""
    axes = tuple(range(x.ndim)) if axes is None else axes
    rest = [i for i in range(x.ndim) if i not in axes]
    moved = x.permute(rest + list(axes))
    flat = moved.reshape(moved.shape[:len(rest)] + (-1,))
    if flat.shape[-1] == 0:
        return x * 0
    one = _wrap(x._device.full(flat.shape[:-1] + (1,), 1, x.dtype), x._device)
    before = cat([one, flat[..., :-1]], -1).cumprod(-1)
    after = cat([flat[..., 1:], one], -1).flip(-1).cumprod(-1).flip(-1)
    return (before * after).reshape(moved.shape).permute(tuple(np.argsort(rest + list(axes))))


def _shared_pick(x, value):
    """value, one of x's elements (a graph-less 0-d tensor), as an op whose gradient is split
    evenly among the elements of x equal to it, or among x's nans when it is nan: the rule of
    torch.median() without a dim (and of max() over everything)."""
    # d/dx_i = [x_i == value] / #{j: x_j == value}: the ties share the gradient
    def backward(g, out, need):
        hit = (x == value) | (x.isnan() & value.isnan())
        return (g * hit / hit.sum(),)
    return _record("median", value._data, (x,), backward)


def _cumsum(x, axis):
    # every element feeds the sums at and after it: the gradient is a reversed cumulative sum
    def backward(g, out, need):
        return (g.flip(axis).cumsum(axis).flip(axis),)
    return _record("cumsum", x._device.cumsum(x._data, axis), (x,), backward)


def _cumprod(x, axis):
    d = x._device

    # d out_k / d x_i = out_k / x_i for k >= i: a reversed cumulative sum of g out, over x,
    # where no element is 0 (PyTorch's rule); with zeros, see _cumprod_grad_with_zeros
    def backward(g, out, need):
        if not _any(d, d.equal(x._data, 0)):
            return ((g * out).flip(axis).cumsum(axis).flip(axis) / x,)
        return (_cumprod_grad_with_zeros(g, x, out, axis),)
    return _record("cumprod", d.cumprod(x._data, axis), (x,), backward)


def _cumprod_grad_with_zeros(g, x, out, axis):
    """cumprod's gradient along a row whose first zero is at z: before z, the rule for no
    zeros (the products past z are 0); at z, the sum over k >= z of g_k times the product of
    x_j for j <= k but z (a cumprod with that zero replaced by 1); after z, 0."""
    n = x.shape[axis]
    shape = [1] * x.ndim
    shape[axis] = n
    position = arange(n, dtype=np.int64).to(x.device).reshape(shape)
    zero = x == 0
    z = where(zero.any(axis, keepdims=True), zero.argmax(axis, keepdims=True), n)
    safe = where(zero, 1.0, x)
    before = (g * out).flip(axis).cumsum(axis).flip(axis) / safe
    others = where(position == z, 1.0, x).cumprod(axis)
    at_zero = (where(position >= z, g * others, 0.0)).sum(axis, keepdims=True)
    return where(position < z, before, where(position == z, at_zero, 0.0))


def _logcumsumexp(x, axis):
    # d out_k / d x_i = e^(x_i - out_k) for k >= i. Summed against g in log space, as PyTorch
    # (after TensorFlow): the positive and the negative parts of g separately, each a reversed
    # logcumsumexp, so that nothing overflows
    def backward(g, out, need):
        lowest = float(np.finfo(x.dtype).min)
        log_g = where(g == 0, 1.0, g.abs()).log()  # where g is 0 its log is not used

        def part(sign):
            s = where(g * sign > 0, log_g, lowest) - out
            return (s.flip(axis).logcumsumexp(axis).flip(axis) + x).exp()
        return (part(1) - part(-1),)
    return _record("logcumsumexp", x._device.logcumsumexp(x._data, axis), (x,), backward)


def _vector_norm(x, p, axes, keepdims):
    d = x._device
    a = d.abs(x._data)
    if p == math.inf or p == -math.inf:
        data = (d.max if p > 0 else d.min)(a, axes, keepdims)
    elif p == 0:
        data = d.sum(d.astype(d.not_equal(a, 0), x.dtype), axes, keepdims)
    elif p == 1:
        data = d.sum(a, axes, keepdims)
    elif p == 2:
        data = d.pow(d.sum(d.mul(x._data, x._data), axes, keepdims), 0.5)
    else:
        data = d.pow(d.sum(d.pow(a, float(p)), axes, keepdims), 1.0 / p)

    # PyTorch's norm_backward: d/dx ||x||_p = sign(x) |x|^(p-1) / ||x||^(p-1), and 0 where the
    # norm is 0; for p = +-inf the gradient is split among the extreme elements (and nans)
    def backward(g, out, need):
        shape = _kept_shape(x.shape, axes)
        g, norm = g.reshape(shape), out.reshape(shape)
        if p == 0:
            return (_zero_grad(x),)
        if p == 1:
            return (x.sign() * g,)
        if p == 2:
            return (g * where(norm == 0, 0.0, x / where(norm == 0, 1.0, norm)),)
        if p in (math.inf, -math.inf):
            hit = (x.abs() == norm) | x.isnan()
            return (x.sign() * (g / hit.sum(axes, keepdims=True) * hit),)
        if p < 1:
            scaled = x.sign() * where(x == 0, 0.0, x.abs() ** (p - 1))
            return (scaled * g * norm ** (1 - p),)
        scaled = x.sign() * x.abs() ** (p - 1)
        return (scaled * where(norm == 0, 0.0, g / norm ** (p - 1)),)
    return _record("vector_norm", data, (x,), backward)


# ---- scatters: values combined into positions ----------------------------------------------------

def _scatter(x, positions, src, reduce, include_self=True):
    """x with src's elements combined into x's flat positions `positions` (an int64 Tensor of
    src's shape, without a graph): reduce "set" writes them (torch's scatter, index_copy),
    "sum", "prod", "mean", "amax" or "amin" combine them with x's element there (or, without
    include_self, with each other only), as torch.scatter_reduce."""
    d, n = x._device, x.numel()
    flat, where_to = d.reshape(x._data, (n,)), d.reshape(positions._data, (-1,))
    values = d.reshape(src._data, (-1,))
    count = d.scatter_add(where_to, d.full((src.numel(),), 1, x.dtype), n)
    hit = d.greater(count, 0)
    if reduce == "set":
        data = d.scatter_set(where_to, values, flat)
    elif reduce in ("sum", "mean"):
        total = d.add(d.where(hit, 0, flat) if not include_self else flat,
                      d.scatter_add(where_to, values, n))
        if reduce == "sum":
            data = total
        else:
            many = d.add(count, 1 if include_self else 0)
            divide = d.floor_divide if not _is_float(x.dtype) else d.divide
            data = d.where(d.greater(many, 0), divide(total, d.maximum(many, 1)), flat)
    else:
        if reduce == "prod":
            kernel, neutral = d.scatter_prod, 1
        else:
            kernel = d.scatter_max if reduce == "amax" else d.scatter_min
            neutral = _extreme(x.dtype, reduce == "amin")
        data = kernel(where_to, values, n, flat if include_self else d.where(hit, neutral, flat))
    shape_of_x = x.shape

    def gather(t):  # t's elements at the scattered positions, in src's shape
        return t.reshape(-1)[positions]

    def scatter_sum(t):  # zeros of x's shape plus t added at the positions
        zeros = _wrap(d.full(shape_of_x, 0, t.dtype), d)
        return _scatter(zeros, positions, t, "sum")

    # PyTorch's scatter_reduce_backward (and scatter's): the gradient of each written or
    # combined value, and x's own gradient where it still counts
    def backward(g, out, need):
        kept = _wrap(d.reshape(d.astype(d.logical_not(hit), g.dtype), shape_of_x), d)
        if reduce == "set":
            return g * kept, gather(g)
        if reduce == "sum":
            return (g if include_self else g * kept), gather(g)
        if reduce == "mean":
            many = _wrap(d.reshape(d.maximum(d.add(count, 1 if include_self else 0), 1),
                                   shape_of_x), d)
            gx = g / many
            return (gx if include_self else gx * kept), gather(gx)
        if reduce in ("amax", "amin"):
            value = gather(out)
            x_is, src_is = (x == out).astype(g.dtype), (src == value).astype(g.dtype)
            share = g / (x_is + scatter_sum(src_is))
            gx = x_is * share
            return (gx if include_self else gx * kept), src_is * gather(share)
        # prod: out / x and out / src, with the zeros handled as PyTorch does
        safe_x = where(x == 0, 1.0, x)
        gx = g * _scatter(safe_x, positions, src, "prod", include_self) / safe_x
        src_zero = src == 0
        zeros_there = gather(scatter_sum(src_zero.astype(g.dtype)))
        single = src_zero & (zeros_there == 1)
        single_result = _scatter(x, positions, where(single, 1.0, src), "prod", include_self)
        gsrc = where(single, gather(g * single_result),
                     gather(g * out) / where(src_zero, 1.0, src))
        return (gx if include_self else gx * kept), gsrc
    return _record(f"scatter_{reduce}", d.reshape(data, shape_of_x), (x, src), backward)


def _maximum(x, y):
    d = x._device

    # the larger input gets the gradient; ties split it evenly (as torch.maximum)
    def backward(g, out, need):
        w = d.add(d.astype(d.greater(x._data, y._data), g.dtype),
                  d.mul(d.astype(d.equal(x._data, y._data), g.dtype), 0.5))
        w = _wrap(w, d)
        return (g * w if need[0] else None), (g * (1 - w) if need[1] else None)
    return _record("maximum", d.maximum(x._data, y._data), (x, y), backward)


def _where(cond, x, y):
    # the gradient follows the branch that was taken; cond is a bool device array
    def backward(g, out, need):
        zero = _wrap(g._device.full((), 0, g.dtype), g._device)
        return (_where(cond, g, zero) if need[0] else None,
                _where(cond, zero, g) if need[1] else None)
    return _record("where", x._device.where(cond, x._data, y._data), (x, y), backward)


def _clamp(x, lo, hi):
    d = x._device

    # the gradient passes where lo <= x <= hi, bounds included (as torch.clamp)
    def backward(g, out, need):
        inside = d.full(x.shape, 1, g.dtype)
        if lo is not None:
            inside = d.mul(inside, d.astype(d.greater_equal(x._data, lo), g.dtype))
        if hi is not None:
            inside = d.mul(inside, d.astype(d.less_equal(x._data, hi), g.dtype))
        return (g * _wrap(inside, d),)
    return _record("clamp", d.clip(x._data, lo, hi), (x,), backward)


def _astype(x, dtype):
    def backward(g, out, need):
        return (g.astype(x.dtype),)
    return _record("astype", x._device.astype(x._data, dtype), (x,), backward)


# ---- movement ------------------------------------------------------------------------------------

def _reshape(x, shape):
    def backward(g, out, need):
        return (g.reshape(x.shape),)
    return _record("reshape", x._device.reshape(x._data, shape), (x,), backward)


def _expand(x, shape):
    # the gradient of a broadcast is a sum over the broadcast dimensions
    def backward(g, out, need):
        return (_unbroadcast(g, x.shape),)
    return _record("expand", x._device.broadcast_to(x._data, shape), (x,), backward)


def _permute(x, axes):
    def backward(g, out, need):
        return (g.permute(tuple(np.argsort(axes))),)
    return _record("permute", x._device.transpose(x._data, axes), (x,), backward)


def _getitem(x, key):
    # each element of x gets the gradients of every position that read it (repeats add up)
    def backward(g, out, need):
        return (_getitem_scatter(g, x.shape, key),)
    return _record("getitem", x._device.getitem(x._data, key), (x,), backward)


def _getitem_scatter(g, shape, key):
    # the adjoint of getitem, so its own gradient is getitem again
    def backward(gg, out, need):
        return (_getitem(gg, key),)
    return _record("getitem_scatter", g._device.getitem_scatter(g._data, shape, key), (g,),
                   backward)


def _pad(x, widths, value):
    # the gradient of a padded tensor is its interior
    def backward(g, out, need):
        return (g[tuple(slice(a, a + n) for (a, _), n in zip(widths, x.shape))],)
    return _record("pad", x._device.pad(x._data, widths, value), (x,), backward)


def _cat(tensors, axis):
    # each input gets its own slice of the gradient
    def backward(g, out, need):
        grads, start = [], 0
        for t, needed in zip(tensors, need):
            n = t.shape[axis]
            key = (slice(None),) * axis + (slice(start, start + n),)
            grads.append(g[key] if needed else None)
            start += n
        return grads
    data = tensors[0]._device.concatenate([t._data for t in tensors], axis)
    return _record("cat", data, tuple(tensors), backward)


def _record_tuple(name, datas, inputs, backward):
    """The outputs of an op that makes several, each a tensor of its own.

    As in _unbind, the outputs hang from one hidden 0-d tensor, the hub: each output's rule
    hands its gradient to the hub's rule (returning a zero for the hub), and the hub's rule,
    which runs after all of them, calls backward(grads, outs, need) with one gradient per
    output (None for those that got none) and the outputs themselves, so that a rule written
    with them is recorded under create_graph=True."""
    d = inputs[0]._device
    received, outs = {}, []

    def hub_backward(g, out, need):
        grads = [received.pop(i, None) for i in range(len(outs))]
        return backward(grads, outs, need)

    def output(i, data):
        def give_to_hub(g, out, need):
            received[i] = g
            return (_wrap(d.full((), 0, hub.dtype), d),)
        return _record(name, data, (hub,), give_to_hub)

    hub = _record(name, d.full((), 0, inputs[0].dtype), inputs, hub_backward)
    outs.extend(output(i, data) for i, data in enumerate(datas))
    return outs


def _unbind(x, axis):
    # The slices of x along axis. Were each a getitem, each slice's gradient would be scattered
    # into zeros of x's whole shape, which costs n^2 for n slices (an RNN's time steps); through
    # a hub, the gradients are stacked once (zeros for slices that got none).
    d, n = x._device, x.shape[axis]
    lead = (slice(None),) * axis

    # d/dx: the slices' gradients stacked along axis (zeros for a slice that got none)
    def backward(grads, outs, need):
        zeros = _wrap(d.full(x.shape[:axis] + x.shape[axis + 1:], 0, x.dtype), d)
        return (_cat([(zeros if g is None else g).unsqueeze(axis) for g in grads], axis),)
    return tuple(_record_tuple("unbind", [d.getitem(x._data, lead + (i,)) for i in range(n)],
                               (x,), backward))


# ---- linear algebra: decompositions and solves (their public functions: simplegrad.linalg) --

def _diag_matrices(v):
    """Diagonal matrices (..., n, n) with the diagonals v (..., n)."""
    return v.diag_embed()


class LinAlgError(RuntimeError):
    """A linear-algebra routine failed on its input: a singular matrix for inv or solve, one
    that is not positive-definite for cholesky (torch.linalg.LinAlgError)."""


def _factorize(op, kernel, shape, what, *args):
    """Run a device kernel, turning its np.linalg.LinAlgError into one that names op and shape."""
    try:
        return kernel(*args)
    except np.linalg.LinAlgError:
        raise LinAlgError(f"linalg.{op}: {what} (input of shape {shape})") from None


def _eye_like(X):
    """The identity, a constant tensor of X's last dim, dtype and device."""
    n = X.shape[-1]
    return _wrap(X._device.array(np.eye(n, dtype=X.dtype)), X._device)


def _solve_right(A, B):
    """X with X A = B: (A^T X^T = B^T)^T."""
    return _solve(A.mT, B.mT).mT


def _masked_apply(mask, f_true, f_false, *tensors):
    """f_true on the batch elements where the host bool array `mask` (the batch shape, leading
    every tensor's shape) holds and f_false on the others, each formula seeing only its own
    elements (torch's masked_fmap): one may fail where the other is meant for."""
    if mask.all():
        return f_true(*tensors)
    if not mask.any():
        return f_false(*tensors)
    batch = mask.shape
    flat = [t.reshape((-1,) + t.shape[len(batch):]) for t in tensors]
    hit, miss = np.flatnonzero(mask), np.flatnonzero(~mask)
    parts = _cat([f_true(*(t[hit] for t in flat)), f_false(*(t[miss] for t in flat))], 0)
    out = parts[np.argsort(np.concatenate([hit, miss]))]
    return out.reshape(batch + out.shape[1:])


# ---- determinants -------------------------------------------------------------------------------

def _det(A):
    d = A._device

    # d/dA det(A) is the cofactor matrix det(A) A^-T, solved as A^T X = g det(A) I. Where
    # |det(A)| < 100 eps, A is taken as singular and, with A = U diag(S) Vh, the cofactors are
    # det(U) det(Vh) U diag(prod_{j != i} S_j) Vh (the adjugate; torch's linalg_det_backward
    # under create_graph)
    def backward(g, out, need):
        if A.numel() == 0:
            return (_wrap(d.full(A.shape, 0, A.dtype), d),)
        eps = float(np.finfo(A.dtype).eps)
        singular = np.asarray(d.to_host(d.less(d.abs(out._data), 100 * eps)))

        def regular(A, g, out):
            return _solve(A.mT, _diag_matrices((g * out).unsqueeze(-1).expand(A.shape[:-1])))

        def cofactors(A, g, out):
            U, S, Vh = _svd(A, False)
            alpha = _det(U) * _det(Vh) * g
            others = _others_product(S, (S.ndim - 1,))
            return (U * (alpha.unsqueeze(-1) * others).unsqueeze(-2)) @ Vh

        return (_masked_apply(singular, cofactors, regular, A, g, out),)
    return _record("linalg_det", d.det(A._data), (A,), backward)


def _slogdet(A):
    d = A._device

    # d/dA log|det A| = A^-T, solved as A^T X = g_logabsdet I; the sign is piecewise constant,
    # so its gradient is zero (torch's slogdet_backward for real A)
    def backward(grads, outs, need):
        g = grads[1]
        if g is None:
            return (_wrap(d.full(A.shape, 0, A.dtype), d),)
        try:
            return (_solve(A.mT, _diag_matrices(g.unsqueeze(-1).expand(A.shape[:-1]))),)
        except LinAlgError:
            raise LinAlgError(f"linalg.slogdet: log|det| is not differentiable at a singular "
                              f"matrix (input of shape {A.shape})") from None
    sign, logabsdet = d.slogdet(A._data)
    return tuple(_record_tuple("linalg_slogdet", (sign, logabsdet), (A,), backward))


# ---- inverse and solve --------------------------------------------------------------------------

def _inv(A):
    # d(A^-1) = -A^-1 dA A^-1, so gA = -A^-T g A^-T
    def backward(g, out, need):
        return (-(out.mT @ (g @ out.mT)),)
    data = _factorize("inv", A._device.inv, A.shape, "the inversion could not be completed "
                      "because the input matrix is singular", A._data)
    return _record("linalg_inv", data, (A,), backward)


def _solve(A, B):
    """X with A X = B, for A (..., n, n) and B (..., n, k), batch dims broadcast."""
    d = A._device
    batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])

    # X = A^-1 B: gB = A^-T gX, and dX = -A^-1 dA X gives gA = -gB X^T (torch's
    # linalg_solve_backward); broadcast batch dims are summed by the engine
    def backward(g, out, need):
        gB = _solve(A.mT, g)
        return (-(gB @ out.mT) if need[0] else None), gB
    a = d.broadcast_to(A._data, batch + A.shape[-2:])
    b = d.broadcast_to(B._data, batch + B.shape[-2:])
    data = _factorize("solve", d.solve, A.shape, "the solver failed because the input matrix "
                      "is singular", a, b)
    return _record("linalg_solve", data, (A, B), backward)


# ---- Cholesky -----------------------------------------------------------------------------------

def _cholesky(A):
    # A = L L^T: with P = tril(L^T gL) and Phi = (P + tril(P, -1)^T) / 2 (P's lower triangle
    # made symmetric, the diagonal halved), gA = L^-T Phi L^-1 (torch's cholesky_backward)
    def backward(g, out, need):
        L = out
        P = (L.mT @ g).tril()
        phi = 0.5 * (P + (P).tril(-1).mT)
        return (_solve_right(L, _solve(L.mT, phi)),)
    data = _factorize("cholesky", A._device.cholesky, A.shape, "the factorization could not "
                      "be completed because the input is not positive-definite", A._data)
    return _record("linalg_cholesky", data, (A,), backward)


# ---- QR -----------------------------------------------------------------------------------------

def _qr_not_differentiable(mode):
    def backward(*args):
        if mode == "r":
            raise NotImplementedError(
                "linalg.qr: the derivative depends on Q, which is not computed when mode='r'; "
                "use mode='reduced' to differentiate through linalg.qr")
        raise NotImplementedError("linalg.qr: the QR decomposition is not differentiable when "
                                  "mode='complete' and nrows > ncols")
    return backward


def _qr(A, mode):
    d = A._device
    m, n = A.shape[-2:]

    # torch's linalg_qr_backward, with M = gR R^T - Q^T gQ:
    #   m >= n: gA = (gQ + Q copyltu(M)) R^-T, copyltu(M) = triu(M) + triu(M, 1)^T
    #   m < n:  gA = [Q tril(M^T - M) R1^-T, 0] + Q gR, with R1 = R's leading m x m block
    def backward(grads, outs, need):
        gQ, gR = grads
        Q, R = outs
        if gQ is None:
            M = gR @ R.mT
        elif gR is None:
            M = -(Q.mT @ gQ)
        else:
            M = gR @ R.mT - Q.mT @ gQ
        if m >= n:
            M = M.triu()
            gA = Q @ (M + M.triu(1).mT)
            if gQ is not None:
                gA = gA + gQ
            return (_solve_right(R.mT, gA),)
        gA = _solve_right(R[..., :m].mT, Q @ (M.mT - M).tril()).pad((0, n - m))
        if gR is not None:
            gA = gA + Q @ gR
        return (gA,)
    if mode == "r":
        _, r = d.qr(A._data, "reduced")
        empty = _wrap(d.full((0,), 0, A.dtype), d)
        return empty, _record("linalg_qr", r, (A,), _qr_not_differentiable(mode))
    q, r = d.qr(A._data, mode)
    if mode == "complete" and m > n:
        return tuple(_record_tuple("linalg_qr", (q, r), (A,), _qr_not_differentiable(mode)))
    return tuple(_record_tuple("linalg_qr", (q, r), (A,), backward))


# ---- SVD ----------------------------------------------------------------------------------------

def _svd(A, full_matrices):
    d = A._device
    m, n = A.shape[-2:]

    # torch's svd_backward for real A = U diag(S) Vh, with skew(X) = X - X^T and
    # E_jk = S_k^2 - S_j^2 off the diagonal (1 on it):
    #   gA = U [(skew(U^T gU) / E) S + S (skew(Vh gVh^T) / E) + diag(gS)] Vh
    #      + (I - U U^T) gU S^-1 Vh        if m > n
    #      + U S^-1 gVh (I - Vh^T Vh)      if m < n
    # Repeated singular values make E zero: the gradient is then inf or nan, as torch's.
    # With full_matrices, the columns of U and rows of Vh past min(m, n) are an arbitrary
    # basis, and their gradients are ignored (as torch does).
    def backward(grads, outs, need):
        gU, gS, gVh = grads
        U, S, Vh = outs
        k = S.shape[-1]
        if full_matrices and U.shape[-1] != k:
            U, gU = U[..., :k], (gU[..., :k] if gU is not None else None)
        if full_matrices and Vh.shape[-2] != k:
            Vh, gVh = Vh[..., :k, :], (gVh[..., :k, :] if gVh is not None else None)
        if gU is None and gVh is None:
            return ((U @ (gS.unsqueeze(-1) * Vh)) if m >= n else ((U * gS.unsqueeze(-2)) @ Vh),)
        S2 = S * S
        E = S2.unsqueeze(-2) - S2.unsqueeze(-1) + _eye_like(S2)
        if gU is not None:
            UgU = U.mT @ gU
            UgU = UgU - UgU.mT
        if gVh is not None:
            VgV = Vh @ gVh.mT
            VgV = VgV - VgV.mT
        if gU is not None and gVh is not None:
            inner = (UgU * S.unsqueeze(-2) + S.unsqueeze(-1) * VgV) / E
        elif gU is not None:
            inner = (UgU / E) * S.unsqueeze(-2)
        else:
            inner = S.unsqueeze(-1) * (VgV / E)
        if gS is not None:
            inner = inner + _diag_matrices(gS)
        if m > n and gU is not None:
            gUSinv = gU / S.unsqueeze(-2)
            gA = U @ inner + gUSinv - U @ (U.mT @ gUSinv)
            return (gA @ Vh,)
        if m < n and gVh is not None:
            SinvgVh = gVh / S.unsqueeze(-1)
            gA = inner @ Vh + SinvgVh - (SinvgVh @ Vh.mT) @ Vh
            return (U @ gA,)
        return ((U @ (inner @ Vh)) if m >= n else ((U @ inner) @ Vh),)
    u, s, vh = d.svd(A._data, full_matrices)
    return tuple(_record_tuple("linalg_svd", (u, s, vh), (A,), backward))


# ---- symmetric eigendecomposition ---------------------------------------------------------------

def _eigh(A):
    d = A._device

    # A = V diag(L) V^T: with skew(X) = X - X^T and E_ij = L_j - L_i off the diagonal (1 on it),
    #   gA = V [diag(gL) + skew(V^T gV) / (2 E)] V^T
    # (torch's linalg_eig_backward, Hermitian case; symmetric but not projected on the lower
    # triangle that the forward reads). Repeated eigenvalues give inf or nan, as in torch.
    def backward(grads, outs, need):
        gL, gV = grads
        L, V = outs
        if gV is None:
            return ((V * gL.unsqueeze(-2)) @ V.mT,)
        VgV = V.mT @ gV
        E = L.unsqueeze(-2) - L.unsqueeze(-1) + _eye_like(L)
        inner = 0.5 * (VgV - VgV.mT) / E
        if gL is not None:
            inner = inner + _diag_matrices(gL)
        return (V @ (inner @ V.mT),)
    w, v = d.eigh(A._data)
    return tuple(_record_tuple("linalg_eigh", (w, v), (A,), backward))


# ---- pseudo-inverse -----------------------------------------------------------------------------

def _mT(d, x):
    """The device array x with its last two dims swapped."""
    return d.transpose(x, tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2))


def _pinv(A, atol, rtol, hermitian):
    """pinv(A), zeroing singular values at or below max(atol, rtol * sigma_max); atol and rtol
    are device arrays of A's dtype that broadcast against A's batch dims."""
    d = A._device
    m, n = A.shape[-2:]

    # torch's pinv_backward (Golub and Pereyra 1973): with P = pinv(A), for m <= n
    #   K = g^T P:  gA = -(P K)^T + K P^T - A P K P^T + P^T P (g^T - K A)
    # and for m > n
    #   K = P g^T:  gA = -(K P)^T + (g^T - A K) P P^T + P^T K - P^T K P A
    def backward(g, out, need):
        P, gh = out, g.mT
        if m <= n:
            K = gh @ P
            KPh = K @ P.mT
            return (-(P @ K).mT + KPh - (A @ P) @ KPh + (P.mT @ P) @ (gh - K @ A),)
        K = P @ gh
        PhK = P.mT @ K
        return (-(K @ P).mT + (gh - A @ K) @ P @ P.mT + PhK - PhK @ P @ A,)
    # pinv(A) = V diag(1 / w) U^T over the kept values, from A = U diag(w) V^T: the SVD
    # (w = S), or for symmetric A the eigendecomposition (U = V, singular values |w|)
    if hermitian:
        w, V = d.eigh(A._data)
        s, U = d.abs(w), V
    else:
        U, s, Vh = d.svd(A._data, False)
        w, V = s, _mT(d, Vh)
    last = (s.ndim - 1,)
    tol = d.maximum(d.reshape(atol, atol.shape + (1,)),
                    d.mul(d.reshape(rtol, rtol.shape + (1,)), d.max(s, last, True)))
    keep = d.greater(s, tol)
    w_pinv = d.where(keep, d.divide(1, d.where(keep, w, 1)), 0)
    w_pinv = d.reshape(w_pinv, w_pinv.shape[:-1] + (1, w_pinv.shape[-1]))
    data = d.matmul(d.mul(V, w_pinv), _mT(d, U))
    return _record("linalg_pinv", data, (A,), backward)


# ================================================================================================
# 4. Tensor
# ================================================================================================

class _TensorMeta(type):
    """Makes ``Tensor.device`` the default device (settable) while ``t.device`` is t's own."""

    @property
    def device(cls):
        return cls._default_device

    @device.setter
    def device(cls, device):
        if not isinstance(device, Device):
            raise TypeError(f"Tensor.device must be a Device, not {type(device).__name__}")
        cls._default_device = device


def _wrap(data, device):
    """A tensor around a device array, with no graph (the fast internal constructor)."""
    t = _new_tensor(Tensor)
    t._data, t.grad, t._rg, t._node, t._device, t._retain, t._hooks = (
        data, None, False, None, device, False, None)
    return t


def _is_float(dtype):
    return dtype.kind in "fc"


def _describe(value):
    """A bad argument for an error message: its type and (shortened) value."""
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return text if value is None else f"{type(value).__name__} {text}"


def _numbers_only(op, data, array):
    """Raise a TypeError naming op unless array (made from data) holds numbers or bools."""
    if array.dtype.kind not in "biufc":
        raise TypeError(f"{op}: expected a tensor, a number or an array of numbers, got "
                        f"{_describe(data)}")


def _host_array(data, dtype, op="Tensor"):
    """Python scalars and (nested) lists: floats become float32, ints int64 (DESIGN); strings,
    None and other objects are refused (NumPy would make an object or string array)."""
    arr = np.asarray(data)
    _numbers_only(op, data, arr)
    if dtype is not None:
        return arr.astype(dtype, copy=False)
    return arr.astype(np.float32) if arr.dtype == np.float64 else arr


class Tensor(metaclass=_TensorMeta):
    """An array that records the operations applied to it, for reverse-mode differentiation.

    ``Tensor(data)`` keeps a NumPy array's dtype and memory (no copy); Python floats and
    lists of floats become float32, ints int64. ``requires_grad`` defaults to False.
    """

    __slots__ = ("_data", "grad", "_rg", "_node", "_device", "_retain", "_hooks", "_counter",
                 "__weakref__")
    _default_device = NumpyDevice()
    __array_priority__ = 1000

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        device = Tensor._default_device if device is None else device
        dtype = None if dtype is None else np.dtype(dtype)
        if isinstance(data, Tensor):
            if data._device != device:
                raise RuntimeError(f"Tensor: the data is on {data._device}, not {device}")
            array = data._data if dtype is None else device.astype(data._data, dtype)
        elif isinstance(data, (np.ndarray, np.generic)) or hasattr(data, "__dlpack__"):
            if isinstance(data, (np.ndarray, np.generic)):
                _numbers_only("Tensor", data, data)
            try:
                array = device.array(data, dtype)
            except NotImplementedError:
                raise
            except (RuntimeError, BufferError, TypeError) as e:
                raise TypeError(f"Tensor: cannot take a {type(data).__name__} on {device}: {e} "
                                "(a torch tensor that requires grad needs .detach() first)") from e
        else:
            array = device.array(_host_array(data, dtype))
        self._data, self.grad, self._node, self._device = array, None, None, device
        self._rg, self._retain, self._hooks = False, False, None
        if requires_grad is not False:
            self.requires_grad_(requires_grad)

    # ---- properties -------------------------------------------------------------------------
    @property
    def data(self):
        """The device array that holds the values, outside the graph."""
        return self._data

    @data.setter
    def data(self, array):
        # new data (or `t.data -= step`, which assigns the result back) is an in-place change:
        # counted, so that backward refuses a graph that saved the old values
        if not (hasattr(array, "shape") and hasattr(array, "dtype")):
            raise TypeError(f"Tensor.data: needs an array of the tensor's device "
                            f"({self._device}), not {type(array).__name__}")
        self._data = array
        _bump(self)

    @property
    def device(self):
        """The Device this tensor's array lives on."""
        return self._device

    @property
    def shape(self):
        return tuple(self._data.shape)

    @property
    def ndim(self):
        return len(self._data.shape)

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def requires_grad(self):
        return self._rg

    @requires_grad.setter
    def requires_grad(self, flag):
        self.requires_grad_(flag)

    @property
    def is_leaf(self):
        """True for tensors not made by a recorded op (inputs, parameters, detached tensors)."""
        return self._node is None

    @property
    def grad_fn(self):
        """The name of the op that made this tensor, or None for a leaf."""
        return None if self._node is None else self._node.name

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self):
        return _size(self._data.shape)

    def dim(self):
        return len(self._data.shape)

    def element_size(self):
        """Bytes per element, as torch's."""
        return self._data.dtype.itemsize

    @property
    def nbytes(self):
        return _size(self._data.shape) * self._data.dtype.itemsize

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def numpy(self):
        """The data as a NumPy array (shares memory on the NumPy device)."""
        return self._device.to_host(self._data)

    def item(self):
        if self.numel() != 1:
            raise ValueError(f"item: only one-element tensors convert to a Python number, "
                             f"this one has shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.item())

    def __array__(self, dtype=None, copy=None):
        if self._rg and is_grad_enabled():
            # NumPy converts a tensor it cannot dispatch to a plain array (np.asarray(t),
            # np.array([t, u]), np.mean([t, u])): its gradient would be lost without a word
            raise RuntimeError(
                f"a tensor of shape {self.shape} that requires grad cannot become a NumPy array: "
                "its gradient would be lost. Use t.detach() (or t.numpy()) for its values, "
                "sg.stack([...]) for a list of tensors, or a simplegrad op")
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype, copy=False)

    def __dlpack__(self, *args, **kwargs):
        data = self._data
        if not hasattr(data, "__dlpack__"):  # a NumPy scalar from a 0-d result
            data = self._device.array(data)
        return data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return np.asarray(self._data).__dlpack_device__() if not hasattr(
            self._data, "__dlpack_device__") else self._data.__dlpack_device__()

    def __repr__(self):
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        extras = []
        if self.dtype not in (np.float32, np.int64, np.bool_):
            extras.append(f"dtype={self.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn=<{self._node.name}>")
        elif self._rg:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    __hash__ = object.__hash__

    # ---- autograd ---------------------------------------------------------------------------
    def requires_grad_(self, requires_grad=True):
        """Mark this leaf as needing a gradient (in place); returns self."""
        _flag("requires_grad_", "requires_grad", requires_grad)
        if requires_grad and not _is_float(self.dtype):
            raise RuntimeError(f"requires_grad: only floating-point tensors can require "
                               f"gradients, this one is {self.dtype} of shape {self.shape}")
        if not requires_grad and self._node is not None:
            raise RuntimeError("requires_grad: a tensor made by an op cannot stop requiring grad;"
                               " use detach()")
        self._rg = bool(requires_grad)
        return self

    def backward(self, gradient=None, retain_graph=False, create_graph=False):
        """Accumulate d(self)/d(leaf) into the .grad of every leaf that requires grad."""
        _backprop([self], [_root_grad("backward", self, gradient)], None,
                  retain_graph or create_graph, create_graph)

    def retain_grad(self):
        """Keep .grad on this non-leaf tensor too."""
        if not self._rg:
            raise RuntimeError(f"retain_grad: a tensor of shape {self.shape} that does not "
                               "require grad has no gradient to keep")
        self._retain = True

    @property
    def retains_grad(self):
        return self._retain

    def register_hook(self, hook):
        """Call hook(grad) when this tensor's gradient is computed; a tensor it returns is used
        instead."""
        if not self._rg:
            raise RuntimeError(f"register_hook: a tensor of shape {self.shape} that does not "
                               "require grad gets no gradient")
        return self._add_hook("grad", hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call hook(self) on a leaf each time backward() has accumulated into its .grad."""
        if not self._rg or self._node is not None:
            raise RuntimeError(f"register_post_accumulate_grad_hook: only a leaf that requires "
                               f"grad accumulates a .grad (shape {self.shape})")
        return self._add_hook("post_accumulate", hook)

    def _add_hook(self, kind, hook):
        if self._hooks is None:
            self._hooks = {"grad": {}, "post_accumulate": {}}
        handle = _HookHandle(self._hooks[kind])
        self._hooks[kind][handle.id] = hook
        return handle

    def detach(self):
        """The same data, cut from the graph; it shares the version counter, so an in-place
        change through either is seen by backward (as in PyTorch)."""
        out = _wrap(self._data, self._device)
        with _changes_lock:
            out._counter = _counter_of(self, create=True)
        return out

    @property
    def _version(self):
        """How many times this tensor's data was changed in place (torch's t._version)."""
        counter = _counter_of(self)
        return 0 if counter is None else counter.count

    def detach_(self):
        self._node, self._rg = None, False
        return self

    # ---- casting ----------------------------------------------------------------------------
    def astype(self, dtype):
        dtype = np.dtype(dtype)
        return self if dtype == self.dtype else _astype(self, dtype)

    def type(self, dtype):
        return self.astype(dtype)

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    def half(self):
        return self.astype(np.float16)

    def long(self):
        return self.astype(np.int64)

    def int(self):
        return self.astype(np.int32)

    def bool(self):
        return self.astype(np.bool_)

    def type_as(self, other):
        return self.astype(other.dtype)

    # ---- devices ----------------------------------------------------------------------------
    def to(self, *args, dtype=None, device=None):
        """This tensor on another device and/or with another dtype, as torch's to(device),
        to(dtype) and to(device, dtype); self when nothing changes. A device is a Device, or
        torch's names: "cpu" (NumpyDevice), "cuda" or "cuda:N" (CupyDevice(N)). Gradients
        flow back to the original device."""
        for arg in args:
            if isinstance(arg, (Device, str)):
                device = arg
            else:
                dtype = arg
        out = self if device is None else _to_device(self, _device_named("to", device))
        return out if dtype is None else out.astype(dtype)

    def cpu(self):
        """This tensor on the NumPy device (self when it is there already)."""
        return self.to(NumpyDevice())

    def clone(self):
        """A copy with its own memory, connected to the graph."""
        return self * 1 if self._rg else _wrap(self._device.copy(self._data), self._device)

    def contiguous(self):
        return self

    # ---- creation: new tensors on this one's device, of its dtype unless given ------------
    def new_tensor(self, data, dtype=None, requires_grad=False):
        """A new tensor of data, with this one's dtype (unless given) and device."""
        return Tensor(_host_array(data, dtype or self.dtype), requires_grad=requires_grad,
                      device=self._device)

    def _new(self, op, size, fill_value, dtype, requires_grad):
        value = _real(op, "fill_value", fill_value)
        data = self._device.full(_new_shape(op, size), value, np.dtype(dtype or self.dtype))
        return Tensor(data, requires_grad=requires_grad, device=self._device)

    def new_full(self, size, fill_value, dtype=None, requires_grad=False):
        """A new tensor of size filled with fill_value, with this one's dtype (unless given)
        and device; new_zeros and new_ones likewise."""
        return self._new("new_full", size, fill_value, dtype, requires_grad)

    def new_zeros(self, *size, dtype=None, requires_grad=False):
        return self._new("new_zeros", size, 0, dtype, requires_grad)

    def new_ones(self, *size, dtype=None, requires_grad=False):
        return self._new("new_ones", size, 1, dtype, requires_grad)

    # ---- arithmetic -------------------------------------------------------------------------
    def __add__(self, other):
        return _add(*_operands("add", self, other))

    def __radd__(self, other):
        return _add(*_operands("add", self, other, reverse=True))

    def __sub__(self, other):
        return _sub(*_operands("sub", self, other))

    def __rsub__(self, other):
        return _sub(*_operands("sub", self, other, reverse=True))

    def __mul__(self, other):
        return _mul(*_operands("mul", self, other))

    def __rmul__(self, other):
        return _mul(*_operands("mul", self, other, reverse=True))

    def __truediv__(self, other):
        x, y = _operands("div", _floating(self), other)
        return _div(x, _floating(y))

    def __rtruediv__(self, other):
        x, y = _operands("div", _floating(self), other, reverse=True)
        return _div(_floating(x), y)

    def __pow__(self, other):
        return _pow(*_operands("pow", self, other))

    def __rpow__(self, other):
        return _pow(*_operands("pow", self, other, reverse=True))

    def __neg__(self):
        return _neg(self)

    def __pos__(self):
        return self

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def add(self, other):
        return self + other

    def sub(self, other):
        return self - other

    def mul(self, other):
        return self * other

    def div(self, other, *, rounding_mode=None):
        """self / other; rounding_mode "trunc" rounds toward zero and "floor" down, as torch
        (integers then stay integral)."""
        if rounding_mode is None:
            return self / other
        if rounding_mode == "floor":
            x, y = _operands("div", self, other)
            if not _is_float(x.dtype):
                return x.floor_divide(y)
            # unlike floor_divide, torch's div with a rounding mode has a zero gradient
            return _zero_gradient("div", x._device.floor_divide(x._data, y._data), (x, y))
        if rounding_mode != "trunc":
            raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', not "
                             f"{rounding_mode!r}")
        x, y = _operands("div", self, other)
        if _is_float(x.dtype):
            return (x / y).trunc()
        _check_divisor("div", x, y)
        q = _floor_divide(x, y)
        # toward zero: one more than the floor where the division is inexact and signs differ
        return q + ((q * y != x) & ((x < 0) != (y < 0))).astype(q.dtype)

    divide = true_divide = div

    def pow(self, other):
        return self ** other

    def neg(self):
        return -self

    def matmul(self, other):
        return matmul(self, other)

    def dot(self, other):
        """Inner product of two 1-D tensors."""
        other = _tensor(other, self, "dot")
        if self.ndim != 1 or other.ndim != 1:
            raise RuntimeError(f"dot: needs two 1-D tensors, got shapes {self.shape} and "
                               f"{other.shape}")
        return matmul(self, other)

    def einsum(self, subscripts, *others):
        """einsum(subscripts, self, *others): the original simplegrad's chaining form."""
        return einsum(subscripts, self, *others)

    # ---- comparisons (no gradient) ----------------------------------------------------------
    def _compare(self, other, op, kernel):
        x, y = _operands(op, self, other)
        return _wrap(kernel(x._device)(x._data, y._data), x._device)

    def __eq__(self, other):
        if _not_numbers(other):  # t == None is False, as in torch (Python compares identities)
            return NotImplemented
        return self._compare(other, "eq", lambda d: d.equal)

    def __ne__(self, other):
        if _not_numbers(other):
            return NotImplemented
        return self._compare(other, "ne", lambda d: d.not_equal)

    def __lt__(self, other):
        return self._compare(other, "lt", lambda d: d.less)

    def __le__(self, other):
        return self._compare(other, "le", lambda d: d.less_equal)

    def __gt__(self, other):
        return self._compare(other, "gt", lambda d: d.greater)

    def __ge__(self, other):
        return self._compare(other, "ge", lambda d: d.greater_equal)

    # ---- bitwise and logical: integer bits on integer tensors, and/or/not on bool ------------
    def __and__(self, other):
        return _bitwise("bitwise_and", self, other)

    def __rand__(self, other):
        return _bitwise("bitwise_and", self, other, reverse=True)

    def __or__(self, other):
        return _bitwise("bitwise_or", self, other)

    def __ror__(self, other):
        return _bitwise("bitwise_or", self, other, reverse=True)

    def __xor__(self, other):
        return _bitwise("bitwise_xor", self, other)

    def __rxor__(self, other):
        return _bitwise("bitwise_xor", self, other, reverse=True)

    def __lshift__(self, other):
        return _bitwise("left_shift", self, other)

    def __rlshift__(self, other):
        return _bitwise("left_shift", self, other, reverse=True)

    def __rshift__(self, other):
        return _bitwise("right_shift", self, other)

    def __rrshift__(self, other):
        return _bitwise("right_shift", self, other, reverse=True)

    def __invert__(self):
        if self.dtype == np.bool_:
            return _wrap(self._device.logical_not(self._data), self._device)
        return _bitwise("invert", self)

    def bitwise_and(self, other):
        return self & other

    def bitwise_or(self, other):
        return self | other

    def bitwise_xor(self, other):
        return self ^ other

    def bitwise_not(self):
        return ~self

    def bitwise_left_shift(self, other):
        return self << other

    def bitwise_right_shift(self, other):
        return self >> other

    def logical_and(self, other):
        return (self != 0) & (_tensor(other, self, "logical_and") != 0)

    def logical_or(self, other):
        return (self != 0) | (_tensor(other, self, "logical_or") != 0)

    def logical_xor(self, other):
        return (self != 0) != (_tensor(other, self, "logical_xor") != 0)

    def logical_not(self):
        return self == 0

    def eq(self, other):
        if _not_numbers(other):  # where == falls back to Python's identity test
            _numbers("eq", other)  # raises the TypeError naming eq
        return self == other

    def ne(self, other):
        if _not_numbers(other):
            _numbers("ne", other)
        return self != other

    def lt(self, other):
        return self < other

    def le(self, other):
        return self <= other

    def gt(self, other):
        return self > other

    def ge(self, other):
        return self >= other

    def isinf(self):
        return self.abs() == math.inf

    def isnan(self):
        return self != self

    def isfinite(self):
        return (self == self) & (self.abs() != math.inf)

    def isposinf(self):
        return self == math.inf

    def isneginf(self):
        return self == -math.inf

    # ---- elementwise ------------------------------------------------------------------------
    def exp(self):
        return _exp(_floating(self))

    def log(self):
        return _log(_floating(self))

    def rsqrt(self):
        """1 / sqrt(x) (so -0.0 gives -inf, as torch)."""
        return 1 / self.sqrt()

    def square(self):
        return self * self

    def reciprocal(self):
        return 1 / self

    def abs(self):
        # |x| = x sign(x): gradient sign(x), which is 0 at 0 (as PyTorch)
        return self * self.sign()

    __abs__ = abs

    def round(self, decimals=0):
        """Round half to even (as torch.round), to `decimals` places; the gradient is zero."""
        rint = _STEP_OPS["round"]
        if not _is_float(self.dtype):
            return self
        if decimals == 0:
            return rint(self)
        if decimals > 0:  # PyTorch's order of operations, for the same rounding
            return rint(self * 10.0 ** decimals) / 10.0 ** decimals
        return rint(self / 10.0 ** -decimals) * 10.0 ** -decimals

    def frac(self):
        """The fractional part x - trunc(x), with x's sign; gradient 1."""
        return self - self.trunc()

    def sinc(self):
        """sin(pi x) / (pi x), and 1 at 0."""
        return _sinc(_floating(self))

    def deg2rad(self):
        return _floating(self) * (math.pi / 180)

    def rad2deg(self):
        return _floating(self) * (180 / math.pi)

    def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
        """nan, +inf and -inf replaced (by default with 0 and the dtype's largest and
        smallest finite values); the gradient passes where x is finite."""
        if not _is_float(self.dtype):
            return self
        big = float(np.finfo(self.dtype).max)
        out = where(self == math.inf, big if posinf is None else posinf, self)
        out = where(self == -math.inf, -big if neginf is None else neginf, out)
        return where(self != self, nan, out)

    def lerp(self, end, weight):
        """self + weight (end - self), computed from the nearer end as PyTorch does."""
        end = _tensor(end, self, "lerp")
        w = _tensor(weight, self, "lerp")
        near_start = w.abs() < 0.5
        return where(near_start, self + w * (end - self), end - (end - self) * (1 - w))

    def floor_divide(self, other):
        """floor(self / other) as Python's //; integers stay integral (dividing one by zero
        raises). No derivative, as in PyTorch."""
        x, y = _operands("floor_divide", self, other)
        _check_divisor("floor_divide", x, y)
        return _floor_divide(x, y)

    def __floordiv__(self, other):
        return self.floor_divide(other)

    def __rfloordiv__(self, other):
        return _tensor(other, self, "floor_divide").floor_divide(self)

    def __mod__(self, other):
        return self.remainder(other)

    def __rmod__(self, other):
        return _tensor(other, self, "remainder").remainder(self)

    def clamp(self, min=None, max=None):
        """Limit to [min, max]; bounds may be numbers or tensors."""
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        for what, bound in (("min", min), ("max", max)):
            if bound is not None and _not_numbers(bound):
                raise TypeError(f"clamp: {what} must be a number or a tensor, not "
                                f"{_describe(bound)}")
        if not _is_float(self.dtype) and builtins.any(isinstance(b, (float, np.floating))
                                                      for b in (min, max)):
            return _floating(self).clamp(min, max)  # PyTorch's promotion: float32
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            # where, not maximum/minimum: at a tie x keeps the whole gradient (as torch.clamp)
            out = self if min is None else where(self < min, min, self)
            return out if max is None else where(out > max, max, out)
        return _clamp(self, min, max)

    clip = clamp

    def maximum(self, other):
        return maximum(self, other)

    def minimum(self, other):
        return minimum(self, other)

    def relu(self):
        # max(x, 0), with gradient 0 at 0 (as PyTorch)
        return _where(self._device.greater(self._data, 0), self, _lift(0, self))

    def leaky_relu(self, negative_slope=0.01):
        _real("leaky_relu", "negative_slope", negative_slope)
        return _where(self._device.greater(self._data, 0), self, self * negative_slope)

    def gelu(self, approximate="none"):
        """x Phi(x) (approximate='none') or its tanh approximation (approximate='tanh')."""
        if approximate not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', not {approximate!r}")

        def gelu(x):
            if approximate == "tanh":
                # x x x rather than x ** 3, as torch: pow's slope 3 x^2 overflows before x^2
                # does, and where tanh is +-1 its slope 0 times inf would make the gradient nan
                inner = (x + 0.044715 * (x * x * x)) * math.sqrt(2 / math.pi)
                return 0.5 * x * (1 + inner.tanh())
            return 0.5 * x * (1 + (x * (1 / math.sqrt(2))).erf())
        # float16 in float32, as torch: in float16, x^3 (tanh form) overflows from |x| = 40 on,
        # and the gradient g x / 2 (both forms) where it passes 65504, and inf times a slope of
        # 0 is nan
        return _half_in_float32(gelu, self)

    def softplus(self, beta=1.0, threshold=20.0):
        """log(1 + e^(beta x)) / beta, and x itself where beta x > threshold (as PyTorch)."""
        _reals("softplus", beta=beta, threshold=threshold)
        z = self * beta
        # softplus z = max(z, 0) + log(1 + e^-|z|); -|z| is written so its slope at 0 is 1
        negabs = _where(self._device.greater(z._data, 0), -z, z)
        soft = (z.relu() + negabs.exp().log1p()) / beta
        return _where(self._device.greater(z._data, threshold), self, soft)

    def hardshrink(self, lambd=0.5):
        """x where |x| > lambd, else 0."""
        _real("hardshrink", "lambd", lambd)
        return where((self > lambd) | (self < -lambd), self, 0.0)

    def prelu(self, weight):
        """x for x > 0, weight x otherwise; weight holds one slope, or one per channel (dim 1)."""
        weight = _tensor(weight, self, "prelu")
        channels = self.shape[1] if self.ndim >= 2 else 1
        if weight.ndim > 1 or weight.numel() not in (1, channels):
            raise ValueError(f"prelu: weight of shape {weight.shape} must hold 1 or {channels} "
                             f"slopes for an input of shape {self.shape}")
        if weight.numel() > 1:
            weight = weight.reshape((-1,) + (1,) * (self.ndim - 2))
        return where(self > 0, self, weight * self)

    # ---- reductions -------------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axes, keep = _reduction_args("sum", self, axis, dim, keepdims, keepdim)
        return _sum(self, axes, keep)

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axes, keep = _reduction_args("mean", self, axis, dim, keepdims, keepdim)
        count = _count(self.shape, axes)
        # the mean of no elements is nan, as in PyTorch
        return _sum(_floating(self), axes, keep) * (1.0 / count if count else math.nan)

    def var(self, axis=None, correction=1, keepdims=False, *, dim=None, keepdim=None,
            unbiased=None, ddof=None):
        """Variance with Bessel's correction by default (PyTorch's `correction=1`)."""
        axes, keep = _reduction_args("var", self, axis, dim, keepdims, keepdim)
        if unbiased is not None:
            _flag("var", "unbiased", unbiased)
            correction = int(unbiased)
        if ddof is not None:
            correction = ddof
        _real("var", "correction", correction)
        x = _floating(self)
        centered = x - x.mean(axes, keepdims=True)
        count = _count(self.shape, axes)
        return (centered * centered).sum(axes, keepdims=keep) / builtins.max(count - correction, 0)

    def std(self, axis=None, correction=1, keepdims=False, *, dim=None, keepdim=None,
            unbiased=None, ddof=None):
        v = self.var(axis, correction, keepdims, dim=dim, keepdim=keepdim, unbiased=unbiased,
                     ddof=ddof)
        # where the spread is 0 the gradient is 0, as in torch.std (sqrt's slope there is inf)
        zero = v == 0
        return where(zero, 0.0, where(zero, 1.0, v).sqrt())

    def amax(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """Maximum over dims; ties share the gradient evenly."""
        axes, keep = _reduction_args("amax", self, axis, dim, keepdims, keepdim)
        return _amax(self, axes, keep)

    def amin(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return -(-self).amax(axis, keepdims, dim=dim, keepdim=keepdim)

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """max() over everything (ties share the gradient), max(dim) -> (values, indices)
        with the gradient going to that index, or max(other) -> maximum(self, other)."""
        if isinstance(axis, Tensor):
            return maximum(self, axis)
        return self._max_or_min(axis, keepdims, dim, keepdim, self.amax, self.argmax)

    def min(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """min() over everything, min(dim) -> (values, indices), or minimum(self, other)."""
        if isinstance(axis, Tensor):
            return minimum(self, axis)
        return self._max_or_min(axis, keepdims, dim, keepdim, self.amin, self.argmin)

    def _max_or_min(self, axis, keepdims, dim, keepdim, reduce, arg):
        axis = dim if axis is None else axis
        keep = keepdims if keepdim is None else keepdim
        _flag("max/min", "keepdim", keep)
        if axis is None:
            return reduce()
        if not isinstance(axis, (int, np.integer)):
            raise TypeError(f"max/min: dim must be an int, not {axis!r}; use amax/amin for "
                            "several dims")
        index = arg(axis, keepdims=True)
        values = self.take_along_dim(index, axis)
        if not keep:
            values, index = values.squeeze(axis), index.squeeze(axis)
        return _ValuesIndices(values, index)

    def argmax(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return self._arg("argmax", axis, keepdims, dim, keepdim)

    def argmin(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return self._arg("argmin", axis, keepdims, dim, keepdim)

    def _arg(self, name, axis, keepdims, dim, keepdim):
        axes, keep = _reduction_args(name, self, axis, dim, keepdims, keepdim)
        d = self._device
        kernel = d.argmax if name == "argmax" else d.argmin
        if axes is None:
            out = kernel(self._data)
            if keep:
                out = d.reshape(out, (1,) * self.ndim)
        elif len(axes) != 1:
            raise ValueError(f"{name}: needs a single dim, got {axis if dim is None else dim}")
        else:
            out = kernel(self._data, axes[0], keep)
        return _wrap(d.astype(out, np.int64), d)

    def logsumexp(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """log(sum(exp(x))) computed without overflow."""
        axes, keep = _reduction_args("logsumexp", self, axis, dim, keepdims, keepdim)

        def logsumexp(x):
            d = x._device
            m = d.max(x._data, axes, True)
            m = _wrap(d.where(d.equal(d.abs(m), math.inf), 0, m), d)  # all -inf stays -inf
            return (x - m).exp().sum(axes, keepdims=True).log() + m
        out = _half_in_float32(logsumexp, _floating(self))
        return out if keep else out.reshape(_reduced(self.shape, axes))

    def softmax(self, dim=-1, *, axis=None):
        """exp(x) / sum(exp(x)) along one dim (the last by default)."""
        axes, _ = _reduction_args("softmax", self, axis, dim, False, None)

        def softmax(x):
            e = (x - _wrap(x._device.max(x._data, axes, True), x._device)).exp()
            return e / e.sum(axes, keepdims=True)
        return _half_in_float32(softmax, _floating(self))

    def log_softmax(self, dim=-1, *, axis=None):
        """x - logsumexp(x) along one dim (the last by default)."""
        axes, _ = _reduction_args("log_softmax", self, axis, dim, False, None)

        # (x - max) - log(sum(exp(x - max))), as torch: x - logsumexp(x), with logsumexp =
        # max + log(sum) rounded to the spacing of max, loses the low bits of the result (in
        # float16 at |x| = 1000 that spacing is 0.5)
        def log_softmax(x):
            shifted = x - _wrap(x._device.max(x._data, axes, True), x._device)
            return shifted - shifted.exp().sum(axes, keepdims=True).log()
        return _half_in_float32(log_softmax, _floating(self))

    logsoftmax = log_softmax

    def prod(self, axis=None, keepdims=False, *, dim=None, keepdim=None, dtype=None):
        """Product over dims; the gradient is exact where elements are 0 (as PyTorch)."""
        axes, keep = _reduction_args("prod", self, axis, dim, keepdims, keepdim)
        return _prod(_accumulating(self, dtype), axes, keep)

    def cumsum(self, dim=None, *, dtype=None, axis=None):
        """Running sums along dim (integers accumulate in int64, as PyTorch)."""
        return self._scan("cumsum", _cumsum, dim, axis, _accumulating(self, dtype))

    def cumprod(self, dim=None, *, dtype=None, axis=None):
        """Running products along dim; the gradient is exact where elements are 0."""
        return self._scan("cumprod", _cumprod, dim, axis, _accumulating(self, dtype))

    def logcumsumexp(self, dim=None, *, axis=None):
        """log(cumsum(exp(x))) along dim, without overflow."""
        return self._scan("logcumsumexp", _logcumsumexp, dim, axis, _floating(self))

    def _scan(self, name, op, dim, axis, x):
        dim = dim if axis is None else axis
        if dim is None:
            raise TypeError(f"{name}: needs a dim")
        axis = _axis(name, self, dim)
        return op(x.reshape(1), 0).reshape(()) if x.ndim == 0 else op(x, axis)

    def cummax(self, dim):
        """(running maximum, the index where it was reached) along dim; ties take the latest
        index and a nan its own, as torch.cummax. The gradient goes to those indices."""
        return self._cumulative_extreme("cummax", dim)

    def cummin(self, dim):
        """(running minimum, the index where it was reached) along dim, as torch.cummin."""
        return self._cumulative_extreme("cummin", dim)

    def _cumulative_extreme(self, name, dim):
        axis = _axis(name, self, dim)
        if self.ndim == 0:
            return _ValuesIndices(self, zeros((), dtype=np.int64).to(self._device))
        d = self._device
        _, index = (d.cummax if name == "cummax" else d.cummin)(self._data, axis)
        index = _wrap(d.astype(index, np.int64), d)
        return _ValuesIndices(self.take_along_dim(index, axis), index)

    def any(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """Whether any element is nonzero (True), over dims."""
        axes, keep = _reduction_args("any", self, axis, dim, keepdims, keepdim)
        d = self._device
        count = d.sum(d.astype(d.not_equal(self._data, 0), np.int64), axes, keep)
        return _wrap(d.greater(count, 0), d)

    def all(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """Whether every element is nonzero (True), over dims."""
        return ~(self == 0).any(axis, keepdims, dim=dim, keepdim=keepdim)

    def count_nonzero(self, dim=None):
        """How many elements are nonzero, over dims (int64)."""
        _reduction_args("count_nonzero", self, dim, None, False, None)  # checks dim
        return (self != 0).sum(dim=dim).astype(np.int64)

    def nansum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """Sum with nan counted as 0."""
        axes, keep = _reduction_args("nansum", self, axis, dim, keepdims, keepdim)
        x = _nan_to_zero(self) if _is_float(self.dtype) else self
        return _sum(_accumulating(x), axes, keep)

    def nanmean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """Mean of the elements that are not nan (nan where there are none)."""
        axes, keep = _reduction_args("nanmean", self, axis, dim, keepdims, keepdim)
        x = _floating(self)
        counted = _sum(_wrap(x._device.astype(x._device.equal(x._data, x._data), x.dtype),
                             x._device), axes, keep)
        return _sum(_nan_to_zero(x), axes, keep) / counted

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        """The p-norm over dims (all by default): p a number, inf, 'fro' (the 2-norm of the
        elements) or 'nuc' (the nuclear norm of matrices in dims, default the last two)."""
        x = self if dtype is None else self.astype(dtype)
        if p == "nuc":
            return matrix_norm(x, "nuc", (-2, -1) if dim is None else dim, keepdim)
        return vector_norm(x, 2 if p == "fro" else p, dim, keepdim)

    def median(self, dim=None, keepdim=False):
        """The lower median: of all elements (a value, its gradient to that element), or along
        dim -> (values, indices); a nan anywhere makes it nan, as torch.median."""
        _flag("median", "keepdim", keepdim)
        if dim is None:
            return _shared_pick(self, self.detach().reshape(-1).median(0).values)
        axis = _axis("median", self, dim)
        n = self.shape[axis] if self.ndim else 1
        if n == 0:
            raise IndexError(f"median: dim {dim} of a tensor of shape {self.shape} is empty")
        x = self.reshape(1) if self.ndim == 0 else self
        # ascending, nan last: the middle, or the first nan where there is one
        order = x.argsort(axis)
        has_nan = x.isnan().any(axis, keepdims=True)
        middle = (n - 1) // 2
        index = order.narrow(axis, middle, 1)
        first_nan = x.isnan().astype(np.int64).argmax(axis, keepdims=True)
        index = where(has_nan, first_nan, index)
        values = x.take_along_dim(index, axis)
        if not keepdim or self.ndim == 0:
            values, index = values.squeeze(axis), index.squeeze(axis)
        return _ValuesIndices(values, index)

    # ---- sorting and selection: an argsort, then the gradient goes where the values came from
    def argsort(self, dim=-1, descending=False, stable=False, *, axis=None):
        """Indices that sort along dim; ties keep their order, and nan sorts last (ascending),
        as torch.sort(stable=True) does. `stable` is accepted: the sort always is."""
        axis = _axis("argsort", self, dim if axis is None else axis)
        _flag("argsort", "descending", descending)
        d = self._device
        if self.ndim == 0:
            return _wrap(d.full((), 0, np.int64), d)
        return _wrap(d.astype(d.argsort(self._data, axis, bool(descending)), np.int64), d)

    def sort(self, dim=-1, descending=False, stable=False):
        """(values, indices) sorted along dim (a stable sort, nan last ascending)."""
        index = self.argsort(dim, descending)
        if self.ndim == 0:
            return _ValuesIndices(self, index)
        return _ValuesIndices(self.take_along_dim(index, _axis("sort", self, dim)), index)

    def msort(self):
        """Sorted along dim 0."""
        return self.sort(0).values

    def topk(self, k, dim=-1, largest=True, sorted=True):
        """The k largest (or smallest) elements along dim and their indices, in order."""
        axis = _axis("topk", self, dim)
        _flag("topk", "largest", largest)
        n = self.shape[axis] if self.ndim else 1
        k = _int("topk", "k", k)
        if not 0 <= k <= n:
            raise IndexError(f"topk: k ({k}) is out of range for dim {dim} of size {n} "
                             f"(shape {self.shape})")
        index = self.argsort(axis, descending=largest)
        index = index if self.ndim == 0 else index.narrow(axis, 0, k)
        values = self if self.ndim == 0 else self.take_along_dim(index, axis)
        return _ValuesIndices(values, index)

    def kthvalue(self, k, dim=-1, keepdim=False):
        """The k-th smallest element along dim (k from 1) and its index."""
        axis = _axis("kthvalue", self, dim)
        _flag("kthvalue", "keepdim", keepdim)
        n = self.shape[axis] if self.ndim else 1
        k = _int("kthvalue", "k", k)
        if not 1 <= k <= n:
            raise IndexError(f"kthvalue: k ({k}) is out of range for dim {dim} of size {n} "
                             f"(shape {self.shape})")
        x = self.reshape(1) if self.ndim == 0 else self
        index = x.argsort(axis).narrow(axis, k - 1, 1)
        values = x.take_along_dim(index, axis)
        if not keepdim or self.ndim == 0:
            values, index = values.squeeze(axis), index.squeeze(axis)
        return _ValuesIndices(values, index)

    def unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
        """The distinct elements in ascending order (nan values each distinct), and with
        return_inverse where each element went, with return_counts how often each occurs; with
        dim, the distinct slices along dim. No gradient, as in PyTorch. `sorted=False` sorts
        too (PyTorch leaves that order unspecified)."""
        x = self.detach()
        if dim is None:
            rows = x.reshape(-1, 1)
        else:
            axis = _axis("unique", x, dim)
            rows = x.movedim(axis, 0).reshape(x.shape[axis], -1)
        # sort the rows lexicographically: stable sorts by the last column first
        order = arange(rows.shape[0], dtype=np.int64).to(x._device)
        for j in reversed(range(rows.shape[1])):
            order = order[rows[order, j].argsort(0)]
        ranked = rows[order]
        if rows.shape[1]:
            new = (ranked[1:] != ranked[:-1]).any(1)  # a nan differs from everything
        else:  # slices without elements are all equal
            new = zeros(builtins.max(len(rows) - 1, 0), dtype=np.bool_).to(x._device)
        starts = cat([ones(1, dtype=np.bool_).to(x._device), new]) if len(rows) else new
        group = starts.astype(np.int64).cumsum(0) - 1
        values = ranked[starts]
        distinct = values.shape[0]
        if dim is None:
            values = values.reshape(-1)
        else:
            values = values.reshape((-1,) + x.movedim(axis, 0).shape[1:]).movedim(0, axis)
        out = [values]
        if return_inverse:
            inverse = group[order.argsort(0)]
            out.append(inverse.reshape(x.shape) if dim is None else inverse)
        if return_counts:
            counts = zeros(distinct, dtype=np.int64).to(x._device)
            out.append(counts.scatter_add(0, group, ones_like(group)))
        return out[0] if len(out) == 1 else tuple(out)

    # ---- movement ---------------------------------------------------------------------------
    def reshape(self, *shape):
        shape = _shape_arg("reshape", shape, "shape")
        if builtins.min(shape, default=0) < -1:
            raise RuntimeError(f"reshape: invalid size {builtins.min(shape)} in shape {shape} "
                               "(only -1 may be negative: it stands for the inferred size)")
        if -1 in shape:
            known = _size(n for n in shape if n != -1)
            if shape.count(-1) > 1 or known == 0 or self.numel() % known:
                raise RuntimeError(f"reshape: shape {shape} is invalid for a tensor of shape "
                                   f"{self.shape}")
            shape = tuple(self.numel() // known if n == -1 else n for n in shape)
        if _size(shape) != self.numel():
            raise RuntimeError(f"reshape: a tensor of shape {self.shape} ({self.numel()} "
                               f"elements) cannot become shape {shape}")
        return self if shape == self.shape else _reshape(self, shape)

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        start, end = (_axis("flatten", self, a) for a in (start_dim, end_dim))
        return self.reshape(self.shape[:start] + (-1,) + self.shape[end + 1:])

    def squeeze(self, dim=None):
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        dims = _reduction_args("squeeze", self, dim, None, False, None)[0]
        return self.reshape(tuple(n for i, n in enumerate(self.shape)
                                  if not (i in dims and n == 1)))

    def unsqueeze(self, dim):
        dim = _int("unsqueeze", "dim", dim)
        if not -self.ndim - 1 <= dim <= self.ndim:
            raise IndexError(f"unsqueeze: dim {dim} is out of range for a tensor of shape "
                             f"{self.shape}")
        dim = dim % (self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def permute(self, *dims):
        dims = tuple(_axis("permute", self, a) for a in _shape_arg("permute", dims, "dims"))
        if sorted(dims) != list(range(self.ndim)):
            raise RuntimeError(f"permute: {dims} is not a permutation of the dims of a tensor "
                               f"of shape {self.shape}")
        return self if dims == tuple(range(self.ndim)) else _permute(self, dims)

    def transpose(self, *dims):
        """transpose(d0, d1) swaps two dims (PyTorch); transpose() or transpose(axes) as NumPy."""
        if len(dims) == 2 and not builtins.any(isinstance(a, (tuple, list)) for a in dims):
            order = list(range(self.ndim))
            a, b = (_axis("transpose", self, a) for a in dims)
            order[a], order[b] = order[b], order[a]
            return self.permute(order)
        if not dims or dims == (None,):
            return self.permute(tuple(reversed(range(self.ndim))))
        return self.permute(*dims)

    def t(self):
        """The transpose of a matrix; a vector or a number as it is (torch's t())."""
        if self.ndim > 2:
            raise RuntimeError(f"t: expects a tensor of at most 2 dims, got shape {self.shape}; "
                               "use transpose(dim0, dim1) or mT")
        return self.transpose(0, 1) if self.ndim == 2 else self

    @property
    def T(self):
        return self.permute(tuple(reversed(range(self.ndim))))

    @property
    def mT(self):
        return self.transpose(-2, -1)

    def expand(self, *shape):
        shape = _shape_arg("expand", shape)
        lead = len(shape) - self.ndim
        if lead < 0 or builtins.any(n < -1 or (n == -1 and i < lead) for i, n in enumerate(shape)):
            raise RuntimeError(f"expand: cannot expand shape {self.shape} to {shape} (-1, to "
                               "keep a size, only in the tensor's own dims)")
        shape = tuple(self.shape[i - lead] if n == -1 and i >= lead else n
                      for i, n in enumerate(shape))
        for i, n in enumerate(self.shape):
            if n != 1 and n != shape[lead + i]:
                raise RuntimeError(f"expand: cannot expand shape {self.shape} to {shape}")
        return self if shape == self.shape else _expand(self, shape)

    def broadcast_to(self, shape):
        return self.expand(shape)

    def expand_as(self, other):
        return self.expand(other.shape)

    def __getitem__(self, key):
        key = _index_key(self, key)
        arrays = [k for k in key if hasattr(k, "shape")]
        if arrays and builtins.any(isinstance(k, (int, np.integer)) for k in key):
            # PyTorch selects with the integers first and then places the array indices among
            # the dims left (x[0, :, idx] has shape (B, K)), where NumPy would count integers
            # as array indices and move the dims (shape (K, B))
            first = []
            for k in key:
                if hasattr(k, "shape"):
                    first.extend([slice(None)] * (len(k.shape) if k.dtype == np.bool_ else 1))
                else:
                    first.append(k)
            rest = tuple(slice(None) if k is None or isinstance(k, slice) else k for k in key
                         if not isinstance(k, (int, np.integer)))
            return self._index(tuple(first))._index(rest)
        return self._index(key)

    def _index(self, key):
        try:
            return _getitem(self, key)
        except IndexError as e:
            raise IndexError(f"getitem: {e} (tensor of shape {self.shape})") from None

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def pad(self, pad, value=0.0):
        """Pad with a constant, PyTorch's F.pad order: (last_before, last_after, prev_before, ...).
        Negative amounts crop."""
        pad = _ntuple("pad", pad, 1, "pad")
        if len(pad) % 2 or len(pad) // 2 > self.ndim:
            raise ValueError(f"pad: {pad} must hold two amounts for each of up to {self.ndim} dims")
        widths = [(0, 0)] * self.ndim
        for i in range(len(pad) // 2):
            widths[self.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
        x = self
        if builtins.any(a < 0 or b < 0 for a, b in widths):
            x = x[tuple(slice(builtins.max(-a, 0), n - builtins.max(-b, 0))
                        for (a, b), n in zip(widths, x.shape))]
            widths = [(builtins.max(a, 0), builtins.max(b, 0)) for a, b in widths]
        return _pad(x, tuple(widths), value) if builtins.any(a or b for a, b in widths) else x

    def split(self, split_size_or_sections, dim=0):
        """Pieces of `split_size` along dim (the last may be smaller), or of the listed sizes."""
        axis = _axis("split", self, dim)
        n = self.shape[axis]
        sections = split_size_or_sections
        if not isinstance(sections, (list, tuple)) and not getattr(sections, "ndim", 0):
            step = _int("split", "split_size", sections)
            if step <= 0:
                raise ValueError(f"split: split_size must be positive, got {step}")
            sizes = [builtins.min(step, n - i) for i in range(0, n, step)] or [0]
        else:
            sizes = list(_ints("split", "split sizes", sections))
            if builtins.any(size < 0 for size in sizes):
                raise RuntimeError(f"split: split sizes {sizes} cannot be negative")
            if builtins.sum(sizes) != n:
                raise ValueError(f"split: sizes {sizes} do not add up to {n}, the size of dim "
                                 f"{dim} of a tensor of shape {self.shape}")
        pieces, start = [], 0
        for size in sizes:
            pieces.append(self[(slice(None),) * axis + (slice(start, start + size),)])
            start += size
        return tuple(pieces)

    def chunk(self, chunks, dim=0):
        n = self.shape[_axis("chunk", self, dim)]
        chunks = _int("chunk", "chunks", chunks)
        if chunks <= 0:
            raise RuntimeError(f"chunk: chunks must be positive, got {chunks}")
        return self.split(builtins.max(-(-n // chunks), 1), dim)

    def unbind(self, dim=0):
        """The slices along dim, each without that dim; their gradients are stacked once, so
        unbinding n steps costs O(n) in backward, where n getitems would cost O(n^2)."""
        return _unbind(self, _axis("unbind", self, dim))

    def take_along_dim(self, indices, dim=None):
        """Elements at `indices` (integers) along dim, the other dims broadcast together, as
        torch.take_along_dim; with dim None, at flat positions of the flattened tensor."""
        indices = _tensor(indices, self, "take_along_dim")
        if dim is None:
            return self.reshape(-1)._gather(0, indices.reshape(-1))
        axis = _axis("take_along_dim", self, dim)
        if indices.ndim != self.ndim:
            raise ValueError(f"take_along_dim: indices of shape {indices.shape} need as many "
                             f"dims as the input's shape {self.shape}")
        try:
            shape = list(np.broadcast_shapes(
                self.shape[:axis] + (1,) + self.shape[axis + 1:],
                indices.shape[:axis] + (1,) + indices.shape[axis + 1:]))
        except ValueError:
            raise ValueError(f"take_along_dim: shapes {self.shape} and {indices.shape} cannot "
                             f"be broadcast outside dim {dim}") from None
        x_shape, index_shape = list(shape), list(shape)
        x_shape[axis], index_shape[axis] = self.shape[axis], indices.shape[axis]
        return self.expand(x_shape)._gather(axis, indices.expand(index_shape))

    def gather(self, dim, index):
        """self[i][index[i][j]] along dim, as torch.gather: index has self's number of dims and
        is no larger than self outside dim."""
        axis = _axis("gather", self, dim)
        index = _tensor(index, self, "gather")
        larger = builtins.any(m > n for i, (m, n) in enumerate(zip(index.shape, self.shape))
                              if i != axis)
        if index.ndim != self.ndim or larger:
            raise RuntimeError(f"gather: index of shape {index.shape} must have as many dims as "
                               f"the input of shape {self.shape} and be no larger outside dim "
                               f"{dim}")
        if index.dtype.kind not in "iu":
            raise TypeError(f"gather: index must be an integer tensor, not {index.dtype}")
        _check_index_range("gather", index, self.shape[axis] if self.ndim else 1, axis,
                           self.shape)
        return self._gather(axis, index)

    def _gather(self, axis, index):
        # self[arange, ..., index, ..., arange]: the aranges span index's shape in their dims
        d = self._device
        key = []
        for i, n in enumerate(index.shape):
            if i == axis:
                key.append(index._data)
            else:
                shape = tuple(n if j == i else 1 for j in range(index.ndim))
                key.append(d.reshape(d.arange(n, np.int64), shape))
        return self[tuple(_wrap(k, d) for k in key)]

    def index_select(self, dim, index):
        """The slices at the (1-d) integer `index` along dim."""
        axis = _axis("index_select", self, dim)
        index = _tensor(index, self, "index_select")
        if index.ndim > 1 or index.dtype.kind not in "iu":
            raise IndexError(f"index_select: index must be a 0-d or 1-d integer tensor, got "
                             f"{index.dtype} of shape {index.shape}")
        _check_index_range("index_select", index, self.shape[axis], axis, self.shape)
        return self[(slice(None),) * axis + (index.reshape(-1),)]

    def narrow(self, dim, start, length):
        """The `length` elements from `start` (negative: from the end) along dim."""
        axis = _axis("narrow", self, dim)
        n = self.shape[axis]
        start, length = _int("narrow", "start", start), _int("narrow", "length", length)
        start = start + n if start < 0 else start
        if not (0 <= start <= n and 0 <= length <= n - start):
            raise IndexError(f"narrow: start {start} and length {length} do not fit dim {dim} of "
                             f"size {n} (shape {self.shape})")
        return self[(slice(None),) * axis + (slice(start, start + length),)]

    def masked_fill(self, mask, value):
        """value where mask (bool, broadcast) holds, else self; a tensor value gets the
        gradient of the positions it fills."""
        mask = _tensor(mask, self, "masked_fill")
        if mask.dtype != np.bool_:
            raise TypeError(f"masked_fill: the mask must be a bool tensor, not {mask.dtype}")
        out = where(mask, _tensor(value, self, "masked_fill").astype(self.dtype), self)
        if out.shape != self.shape:
            raise RuntimeError(f"masked_fill: a mask of shape {mask.shape} does not broadcast to "
                               f"the input's shape {self.shape}")
        return out

    def masked_select(self, mask):
        """The elements where mask (bool, broadcast with self) holds, as a 1-d tensor."""
        mask = _tensor(mask, self, "masked_select")
        if mask.dtype != np.bool_:
            raise TypeError(f"masked_select: the mask must be a bool tensor, not {mask.dtype}")
        shape = np.broadcast_shapes(self.shape, mask.shape)
        return self.expand(shape)[mask.expand(shape)]

    # ---- scatter: out-of-place, the gradient of each written value goes back to it -----------
    def scatter(self, dim, index, src=None, *, value=None, reduce=None):
        """self with src (or the number `value`) written at `index` along dim, as torch.scatter;
        of repeated positions one write wins. reduce='add' or 'multiply' combines instead."""
        if src is None and value is None:
            raise TypeError("scatter: needs src or value")
        source = src if src is not None else value
        if reduce is not None:
            modes = {"add": "sum", "multiply": "prod"}
            if reduce not in modes:
                raise ValueError(f"scatter: reduce must be 'add' or 'multiply', not {reduce!r}")
            return self.scatter_reduce(dim, index, self._scatter_source(index, source),
                                       modes[reduce])
        return self._scatter_into(dim, index, source, "set", "scatter")

    def scatter_add(self, dim, index, src):
        """self with src added at `index` along dim (repeats add up)."""
        return self._scatter_into(dim, index, src, "sum", "scatter_add")

    def scatter_reduce(self, dim, index, src, reduce, *, include_self=True):
        """self with src combined at `index` along dim by reduce: 'sum', 'prod', 'mean',
        'amax' or 'amin' (with self's element unless include_self=False), as
        torch.scatter_reduce; amax and amin split the gradient among ties."""
        if reduce not in ("sum", "prod", "mean", "amax", "amin"):
            raise ValueError(f"scatter_reduce: reduce must be 'sum', 'prod', 'mean', 'amax' or "
                             f"'amin', not {reduce!r}")
        return self._scatter_into(dim, index, src, reduce, "scatter_reduce", include_self)

    def _scatter_source(self, index, source):
        if isinstance(source, Tensor):
            return source
        return full(_tensor(index, self).shape, source, dtype=self.dtype).to(self._device)

    def _scatter_into(self, dim, index, src, reduce, op, include_self=True):
        axis = _axis(op, self, dim)
        index = _tensor(index, self)
        src = self._scatter_source(index, src).astype(self.dtype)
        if index.dtype.kind not in "iu":
            raise TypeError(f"{op}: index must be an integer tensor, not {index.dtype}")
        if index.ndim != self.ndim or src.ndim != self.ndim or builtins.any(
                m > s or (i != axis and m > n)
                for i, (m, n, s) in enumerate(zip(index.shape, self.shape, src.shape))):
            raise RuntimeError(f"{op}: index of shape {index.shape} must have the dims of the "
                               f"input {self.shape} and of src {src.shape}, and be no larger "
                               f"than src, nor than the input outside dim {dim}")
        src = src[tuple(slice(0, m) for m in index.shape)]
        return _scatter(self, self._flat_positions(op, axis, index), src, reduce, include_self)

    def _flat_positions(self, op, axis, index):
        """The flat positions in self of (i0, ..., index[i], ..., in) for every i of index."""
        _check_index_range(op, index, self.shape[axis], axis, self.shape)
        d = self._device
        strides = _contiguous_strides(self.shape)
        flat = d.mul(d.astype(index._data, np.int64), strides[axis])
        for i, m in enumerate(index.shape):
            if i != axis:
                shape = tuple(m if j == i else 1 for j in range(index.ndim))
                flat = d.add(flat, d.reshape(d.mul(d.arange(m, np.int64), strides[i]), shape))
        return _wrap(flat, d)

    def index_add(self, dim, index, source, *, alpha=1):
        """self with alpha * source's slices added at the (1-d) `index` along dim."""
        return self._index_into("index_add", dim, index, source * alpha, "sum")

    def index_copy(self, dim, index, source):
        """self with source's slices written at the (1-d) `index` along dim."""
        return self._index_into("index_copy", dim, index, source, "set")

    def index_fill(self, dim, index, value):
        """self with value written into the slices at the (1-d) `index` along dim."""
        axis = _axis("index_fill", self, dim)
        index = _tensor(index, self, "index_fill").reshape(-1)
        shape = list(self.shape)
        shape[axis] = index.numel()
        return self._index_into("index_fill", dim, index,
                                _tensor(value, self, "index_fill").astype(self.dtype).expand(shape),
                                "set")

    def _index_into(self, op, dim, index, source, reduce):
        axis = _axis(op, self, dim)
        index = _tensor(index, self)
        source = _tensor(source, self).astype(self.dtype)
        if index.ndim > 1 or index.dtype.kind not in "iu":
            raise IndexError(f"{op}: index must be a 0-d or 1-d integer tensor, got "
                             f"{index.dtype} of shape {index.shape}")
        index = index.reshape(-1)
        expected = self.shape[:axis] + (index.numel(),) + self.shape[axis + 1:]
        if source.shape != expected:
            raise RuntimeError(f"{op}: source of shape {source.shape} must have shape {expected} "
                               f"(the input {self.shape} with {index.numel()} slices along dim "
                               f"{dim})")
        shape = [1] * self.ndim
        shape[axis] = index.numel()
        positions = self._flat_positions(op, axis, index.reshape(shape).expand(expected))
        return _scatter(self, positions, source, reduce)

    # ---- more movement: flips, rolls, repeats, triangles, diagonals ---------------------------
    def flip(self, *dims):
        """Reversed along dims."""
        dims = _shape_arg("flip", dims, "dims") if dims else ()
        axes = {_axis("flip", self, a) for a in dims}
        if not axes or self.ndim == 0:
            return self
        return self[tuple(slice(None, None, -1) if i in axes else slice(None)
                          for i in range(self.ndim))]

    def fliplr(self):
        """Reversed along dim 1 (left-right)."""
        if self.ndim < 2:
            raise ValueError(f"fliplr: needs at least 2 dims, got shape {self.shape}")
        return self.flip(1)

    def flipud(self):
        """Reversed along dim 0 (up-down)."""
        if self.ndim < 1:
            raise ValueError("flipud: needs at least 1 dim, got a 0-d tensor")
        return self.flip(0)

    def roll(self, shifts, dims=None):
        """Elements shifted by `shifts` along dims, wrapping around; with dims None, along the
        flattened tensor, then reshaped back."""
        if dims is None:
            return self.reshape(-1).roll(shifts, 0).reshape(self.shape)
        shifts = _ntuple("roll", shifts, 1, "shifts")
        dims = _ntuple("roll", dims, 1, "dims")
        if len(shifts) != len(dims):
            raise ValueError(f"roll: {len(shifts)} shifts for {len(dims)} dims")
        out = self
        for shift, dim in zip(shifts, dims):
            axis = _axis("roll", self, dim)
            n = self.shape[axis]
            k = shift % n if n else 0
            if k:
                lead = (slice(None),) * axis
                out = cat([out[lead + (slice(n - k, None),)], out[lead + (slice(0, n - k),)]],
                          axis)
        return out

    def rot90(self, k=1, dims=(0, 1)):
        """Rotated by 90 degrees k times, from the first of dims toward the second."""
        if len(dims) != 2:
            raise ValueError(f"rot90: dims must name two dims, got {dims}")
        a, b = (_axis("rot90", self, d) for d in dims)
        if a == b or self.ndim < 2:
            raise ValueError(f"rot90: dims {dims} must be two different dims of a tensor of "
                             f"shape {self.shape}")
        k %= 4
        if k == 1:
            return self.flip(b).transpose(a, b)
        if k == 2:
            return self.flip(a, b)
        if k == 3:
            return self.flip(a).transpose(a, b)
        return self

    def repeat(self, *sizes):
        """Tiled: each dim repeated sizes[i] times (sizes may add leading dims), as
        torch.Tensor.repeat."""
        sizes = _shape_arg("repeat", sizes, "repeats")
        if builtins.any(r < 0 for r in sizes):
            raise RuntimeError(f"repeat: repeats {sizes} cannot be negative")
        if len(sizes) < self.ndim:
            raise ValueError(f"repeat: {len(sizes)} sizes for a tensor of shape {self.shape}; "
                             "give at least one per dim")
        shape = (1,) * (len(sizes) - self.ndim) + self.shape
        # (1, n0, 1, n1, ...) expanded to (r0, n0, r1, n1, ...), then merged pairwise
        interleaved = tuple(v for n in shape for v in (1, n))
        wide = tuple(v for r, n in zip(sizes, shape) for v in (r, n))
        out = self.reshape(interleaved).expand(wide)
        return out.reshape(tuple(r * n for r, n in zip(sizes, shape)))

    def tile(self, *dims):
        """As repeat, with fewer sizes than dims allowed (they repeat the last dims)."""
        dims = _shape_arg("tile", dims, "dims")
        return self.repeat((1,) * (self.ndim - len(dims)) + dims)

    def repeat_interleave(self, repeats, dim=None, *, output_size=None):
        """Each element (or slice along dim) repeated `repeats` times, in place: an int, or an
        integer tensor with one count per slice. With dim None, of the flattened tensor."""
        x = self.reshape(-1) if dim is None else self
        axis = 0 if dim is None else _axis("repeat_interleave", self, dim)
        if isinstance(repeats, Tensor) and repeats.numel() != 1 or isinstance(repeats, list):
            counts = _tensor(repeats, x, "repeat_interleave").numpy().reshape(-1).astype(np.int64)
            if len(counts) != x.shape[axis] or (counts < 0).any():
                raise ValueError(f"repeat_interleave: {len(counts)} non-negative repeats are "
                                 f"needed for dim {axis} of size {x.shape[axis]}")
            index = np.repeat(np.arange(x.shape[axis]), counts)
            return x.index_select(axis, Tensor(index, device=x._device))
        r = _int("repeat_interleave", "repeats",
                 repeats.reshape(()) if isinstance(repeats, Tensor) else repeats)
        if r < 0:
            raise ValueError(f"repeat_interleave: repeats must be non-negative, got {r}")
        shape = x.shape[:axis + 1] + (r,) + x.shape[axis + 1:]
        out = x.unsqueeze(axis + 1).expand(shape)
        return out.reshape(x.shape[:axis] + (x.shape[axis] * r,) + x.shape[axis + 1:])

    def _triangle(self, name, diagonal, lower):
        if self.ndim < 2:
            raise ValueError(f"{name}: needs at least 2 dims, got shape {self.shape}")
        rows, cols = self.shape[-2:]
        i = np.arange(rows).reshape(-1, 1) + diagonal
        j = np.arange(cols).reshape(1, -1)
        keep = Tensor(i >= j if lower else i <= j, device=self._device)
        return where(keep, self, _wrap(self._device.full((), 0, self.dtype), self._device))

    def tril(self, diagonal=0):
        """The lower triangle of the last two dims (on and below the diagonal `diagonal`)."""
        return self._triangle("tril", diagonal, lower=True)

    def triu(self, diagonal=0):
        """The upper triangle of the last two dims (on and above the diagonal `diagonal`)."""
        return self._triangle("triu", diagonal, lower=False)

    def diagonal(self, offset=0, dim1=0, dim2=1):
        """The diagonal `offset` (above the main one if positive) of the matrices in dims dim1
        and dim2, as a last dim."""
        a, b = _axis("diagonal", self, dim1), _axis("diagonal", self, dim2)
        if a == b or self.ndim < 2:
            raise ValueError(f"diagonal: dim1 {dim1} and dim2 {dim2} must be two different dims "
                             f"of a tensor of shape {self.shape}")
        x = self.movedim((a, b), (-2, -1))
        rows, cols = x.shape[-2:]
        length = builtins.min(rows, cols - offset) if offset >= 0 else builtins.min(rows + offset,
                                                                                    cols)
        length = builtins.max(length, 0)
        start = offset if offset >= 0 else -offset * cols
        strides = _contiguous_strides(x.shape)
        return x.as_strided(x.shape[:-2] + (length,), strides[:-2] + (cols + 1,),
                            start if length else 0)

    def diag_embed(self, offset=0, dim1=-2, dim2=-1):
        """Matrices with the last dim of self on their diagonal `offset`, placed in dims dim1
        and dim2 of the result (zeros elsewhere)."""
        n = self.shape[-1] + builtins.abs(offset) if self.ndim else 1 + builtins.abs(offset)
        ndim = builtins.max(self.ndim, 1) + 1
        a, b = (_axis("diag_embed", zeros((1,) * ndim), d) for d in (dim1, dim2))
        if a == b:
            raise ValueError(f"diag_embed: dim1 {dim1} and dim2 {dim2} must differ")
        x = self.reshape(1) if self.ndim == 0 else self
        shape = x.shape[:-1] + (n, n)
        strides = _contiguous_strides(shape)
        start = offset if offset >= 0 else -offset * n
        out = _as_strided_scatter(x, x.shape, strides[:-2] + (n + 1,), start, shape)
        return out.movedim((-2, -1), (a, b))

    def diag(self, diagonal=0):
        """A 1-d tensor placed on a matrix's diagonal `diagonal`, or a matrix's diagonal."""
        if self.ndim == 1:
            return self.diag_embed(diagonal)
        if self.ndim == 2:
            return self.diagonal(diagonal)
        raise ValueError(f"diag: needs a 1-d or 2-d tensor, got shape {self.shape}")

    def trace(self):
        """The sum of a matrix's diagonal."""
        if self.ndim != 2:
            raise ValueError(f"trace: needs a matrix, got shape {self.shape}")
        return self.diagonal().sum()

    def movedim(self, source, destination):
        """Dims `source` moved to positions `destination`, the others keeping their order."""
        source = _ntuple("movedim", source, 1, "source")
        destination = _ntuple("movedim", destination, 1, "destination")
        if len(source) != len(destination):
            raise ValueError(f"movedim: {len(source)} source dims for {len(destination)} "
                             "destinations")
        src = [_axis("movedim", self, a) for a in source]
        dst = [_axis("movedim", self, a) for a in destination]
        if len(set(src)) != len(src) or len(set(dst)) != len(dst):
            raise ValueError(f"movedim: repeated dims in {source} or {destination}")
        order = [i for i in range(self.ndim) if i not in src]
        for d_, s_ in sorted(zip(dst, src)):
            order.insert(d_, s_)
        return self.permute(order)

    moveaxis = movedim

    def swapaxes(self, axis0, axis1):
        """Dims axis0 and axis1 exchanged."""
        return self.transpose(axis0, axis1)

    swapdims = swapaxes

    def unflatten(self, dim, sizes):
        """Dim `dim` split into dims of `sizes` (one may be -1)."""
        axis = _axis("unflatten", self, dim)
        sizes = _ntuple("unflatten", sizes, 1, "sizes")
        known = _size(n for n in sizes if n != -1)
        n = self.shape[axis]
        if sizes.count(-1) > 1 or (known != n if -1 not in sizes else not known or n % known):
            raise RuntimeError(f"unflatten: sizes {sizes} do not multiply to {n}, the size of dim "
                               f"{dim} of a tensor of shape {self.shape}")
        return self.reshape(self.shape[:axis] + sizes + self.shape[axis + 1:])

    def outer(self, other):
        """The outer product of two 1-d tensors."""
        other = _tensor(other, self, "outer")
        if self.ndim != 1 or other.ndim != 1:
            raise ValueError(f"outer: needs two 1-d tensors, got shapes {self.shape} and "
                             f"{other.shape}")
        return self.unsqueeze(1) * other.unsqueeze(0)

    ger = outer

    def inner(self, other):
        """Sums of products over the last dims: the dot product of 1-d tensors."""
        return inner(self, other)

    def kron(self, other):
        """The Kronecker product."""
        return kron(self, other)

    def cross(self, other, dim=None):
        """The cross product of 3-vectors along dim (the first of size 3 when None)."""
        return cross(self, other, dim)

    def diff(self, n=1, dim=-1, prepend=None, append=None):
        """The n-th forward difference along dim, after prepend and append are joined."""
        axis = _axis("diff", self, dim)
        x = cat([t for t in (prepend, self, append) if t is not None], axis) if (
            prepend is not None or append is not None) else self
        lead = (slice(None),) * axis
        for _ in range(n):
            x = x[lead + (slice(1, None),)] - x[lead + (slice(None, -1),)]
        return x

    def as_strided(self, size, stride, storage_offset=0):
        """A view that reads self's row-major elements with `stride` (in elements), as
        torch.as_strided does on a contiguous tensor; overlapping reads add up in backward."""
        size = _ntuple("as_strided", size, 1, "size")
        stride = _ntuple("as_strided", stride, 1, "stride")
        storage_offset = _int("as_strided", "storage_offset", storage_offset)
        if len(size) != len(stride) or storage_offset < 0 or builtins.min(stride, default=0) < 0:
            raise ValueError(f"as_strided: size {size}, stride {stride} and offset "
                             f"{storage_offset} do not describe a view")
        last = storage_offset + builtins.sum((n - 1) * s for n, s in zip(size, stride) if n > 0)
        if 0 not in size and last >= self.numel():
            raise ValueError(f"as_strided: size {size}, stride {stride} and offset "
                             f"{storage_offset} read element {last} of a tensor of shape "
                             f"{self.shape} ({self.numel()} elements)")
        return _as_strided(self, size, stride, storage_offset)

    def windows(self, kernel_size, stride=1, dilation=1):
        """Sliding windows over the last len(kernel_size) dims, as one as_strided view:
        shape (*leading, *output_positions, *kernel_size). Convolutions are einsums over it."""
        kernel = _ntuple("windows", kernel_size, 1, "kernel_size")
        k = len(kernel)
        stride = _ntuple("windows", stride, k, "stride")
        dilation = _ntuple("windows", dilation, k, "dilation")
        if k > self.ndim:
            raise ValueError(f"windows: a {k}-d window needs at least {k} dims, the tensor "
                             f"has shape {self.shape}")
        spatial = self.shape[self.ndim - k:]
        positions = tuple((n - dl * (kk - 1) - 1) // st + 1
                          for n, kk, st, dl in zip(spatial, kernel, stride, dilation))
        if builtins.min(positions) <= 0:
            raise ValueError(f"windows: kernel {kernel} with dilation {dilation} does not fit "
                             f"in the trailing dims {spatial} of shape {self.shape}")
        strides = _contiguous_strides(self.shape)
        inner = strides[self.ndim - k:]
        return self.as_strided(
            self.shape[:self.ndim - k] + positions + kernel,
            strides[:self.ndim - k] + tuple(s * st for s, st in zip(inner, stride))
            + tuple(s * dl for s, dl in zip(inner, dilation)))

    # ---- the NumPy protocol -----------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """np.sin(t) and the like: recorded, or refused (see the NumPy protocol below)."""
        return _array_ufunc(self, ufunc, method, *inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        """np.sum(t), np.linalg.solve(a, b) and the like: recorded, computed without a gradient,
        or refused (see the NumPy protocol below)."""
        return _array_function(self, func, types, args, kwargs)


_new_tensor = object.__new__


class _HookHandle:
    _ids = itertools.count(1)  # next() is atomic: handles made in two threads never share an id

    def __init__(self, hooks):
        self.id, self._hooks = next(_HookHandle._ids), hooks

    def remove(self):
        self._hooks.pop(self.id, None)


class _ValuesIndices(tuple):
    """(values, indices), as torch.max(dim), sort, topk, cummax ... return."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    values = property(operator.itemgetter(0))
    indices = property(operator.itemgetter(1))


# ---- helpers for Tensor methods ----------------------------------------------------------------

def _tensor(x, like=None, op=None):
    """x as a Tensor: Python numbers take like's dtype; arrays and lists go through Tensor().
    With op, what is not numbers (None, a string, an object) is a TypeError naming op."""
    if isinstance(x, Tensor):
        return x
    if like is not None and (type(x) in (float, int, bool) or isinstance(x, np.number)):
        return _lift(x, like)
    return Tensor(x if op is None else _numbers(op, x),
                  device=None if like is None else like._device)


def _numbers(op, x):
    """x ready for Tensor(): lists and scalars as a NumPy array; what is not numbers (None, a
    string, an object, an array of them) is a TypeError naming op."""
    if isinstance(x, (np.ndarray, np.generic)):
        _numbers_only(op, x, x)
        return x
    return x if hasattr(x, "__dlpack__") else _host_array(x, None, op)


def _lift(value, like):
    """A Python number as a constant tensor: it keeps like's dtype unless like is integral
    and the number is not (then float32, as PyTorch's default)."""
    dtype = like._data.dtype
    if dtype.kind not in "fc":
        if isinstance(value, (float, np.floating)):
            dtype = np.dtype(np.float32)
        elif dtype == np.bool_ and not isinstance(value, bool):
            dtype = np.dtype(np.int64)
    return _wrap(like._device.array(value, dtype), like._device)


def _not_numbers(x):
    """True for None, strings and other objects that no tensor can be made from (cheap: lists
    and arrays count as numbers here, and are checked when converted)."""
    if x is None or isinstance(x, (str, bytes)):
        return True
    numeric = (Tensor, int, float, complex, np.generic, np.ndarray, list, tuple)
    return not isinstance(x, numeric) and not hasattr(x, "__dlpack__")


def _floating(x):
    return x if _is_float(x.dtype) else x.astype(np.float32)


def _half_in_float32(fn, x):
    """fn(x), computed in float32 and rounded to float16 once where x is float16 (as torch's
    CPU kernels for half); the gradient is rounded once too."""
    if x.dtype == np.float16:
        return fn(x.float()).half()
    return fn(x)


def _operands(op, x, other, reverse=False, broadcast=True):
    """Two tensors on one device with one dtype, ready for a broadcasting op."""
    y = other if isinstance(other, Tensor) else _tensor(other, x, op)
    if x._device is not y._device and x._device != y._device:
        raise RuntimeError(f"{op}: the operands are on two devices, {x._device} and "
                           f"{y._device}; move one to the other's with .to(device) (or "
                           f".cpu()), e.g. y.to(x.device)")
    if x._data.dtype != y._data.dtype:
        dtype = _result_dtype(x._data.dtype, y._data.dtype)
        x, y = x.astype(dtype), y.astype(dtype)
    if broadcast and x._data.shape != y._data.shape and not _broadcastable(x._data.shape,
                                                                         y._data.shape):
        raise ValueError(f"{op}: shapes {x.shape} and {y.shape} cannot be broadcast together")
    return (y, x) if reverse else (x, y)


def _broadcastable(a, b):
    for m, n in zip(reversed(a), reversed(b)):
        if m != n and m != 1 and n != 1:
            return False
    return True


def _same_device(op, tensors):
    """Raise unless all tensors are on one device (the check _operands makes for two)."""
    first = tensors[0]._device
    for t in tensors[1:]:
        if t._device is not first and t._device != first:
            raise RuntimeError(f"{op}: the operands are on two devices, {first} and {t._device}; "
                               "move one of them to the other's device")


def _result_dtype(a, b):
    # PyTorch's rule: a float beats an integer whatever the sizes; otherwise NumPy's promotion
    if _is_float(a) != _is_float(b):
        return a if _is_float(a) else b
    return np.promote_types(a, b)


def _as_int(value):
    """value as an int if it is an integer (an int, a NumPy integer, a 0-d integer tensor),
    else None: floats, bools, None and strings are not, as in torch."""
    if type(value) is int:  # the common case first
        return value
    if isinstance(value, Tensor):
        return int(value.item()) if value.ndim == 0 and value.dtype.kind in "iu" else None
    if isinstance(value, (bool, np.bool_)):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _int(op, what, value):
    """An integer argument as an int; anything else is a TypeError naming op and the value."""
    n = _as_int(value)
    if n is None:
        raise TypeError(f"{op}: {what} must be an int, not {_describe(value)}")
    return n


def _ints(op, what, values):
    """A sequence of integer arguments as a tuple of ints (a TypeError naming op otherwise)."""
    values = tuple(values)
    if builtins.all(type(v) is int for v in values):  # the common case, without a copy
        return values
    out = tuple(_as_int(v) for v in values)
    if None in out:
        bad = values[out.index(None)]
        raise TypeError(f"{op}: {what} must be a tuple of ints, not {values!r} (which holds "
                        f"{_describe(bad)})")
    return out


def _size_arg(op, what, value):
    """A size argument (a non-negative int): a TypeError for a non-integer, a RuntimeError for a
    negative one, as in torch."""
    n = _int(op, what, value)
    if n < 0:
        raise RuntimeError(f"{op}: {what} must be non-negative, got {n}")
    return n


def _real(op, what, value):
    """Raise a TypeError naming op unless value is a real number (a probability, a rate)."""
    try:
        if isinstance(value, (str, bytes)) or value is None:
            raise TypeError
        float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {what} must be a number, not {_describe(value)}") from None
    return value


def _flag(op, what, value):
    """Raise a TypeError naming op unless value is a bool (where torch checks a flag's type)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {what} must be a bool, not {_describe(value)}")


def _shape_arg(op, shape, what="size"):
    """A shape given as ints or as one tuple or list of them, as a tuple of ints."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return _ints(op, what, shape)


def _new_shape(op, shape):
    """The shape of a new tensor: ints, none negative (a RuntimeError, as in torch)."""
    shape = _shape_arg(op, shape)
    if builtins.min(shape, default=0) < 0:
        raise RuntimeError(f"{op}: cannot make a tensor of negative size {shape}")
    return shape


def _ntuple(op, x, n, what="size"):
    """An int or a sequence of ints (kernel sizes, strides, dims) as a tuple; one int is
    repeated n times."""
    if isinstance(x, (tuple, list)):
        return _ints(op, what, x)
    return (_int(op, what, x),) * n


def _axis(op, t, a):
    ndim = builtins.max(t.ndim, 1)
    a = _int(op, "dim", a)
    if not -ndim <= a < ndim:
        raise IndexError(f"{op}: dim {a!r} is out of range for a tensor of shape {t.shape}")
    return a % ndim


def _reduction_args(op, t, axis, dim, keepdims, keepdim):
    """Sorted non-negative axes (None for all) and the keepdims flag, from either spelling."""
    axis = dim if axis is None else axis
    keep = keepdims if keepdim is None else keepdim
    _flag(op, "keepdim", keep)
    keep = bool(keep)
    if axis is None:
        return None, keep
    if isinstance(axis, (list, tuple)):
        axes = tuple(_axis(op, t, a) for a in axis)
    else:
        axes = (_axis(op, t, axis),)
    if t.ndim == 0:
        return (), keep
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: dim {axis} repeats a dim")
    return tuple(sorted(axes)), keep


def _reduced(shape, axes):
    """The shape left after reducing `axes` (None: all) without keepdims."""
    return tuple(n for i, n in enumerate(shape) if axes is not None and i not in axes)


def _count(shape, axes):
    """How many elements each output of a reduction over `axes` (None: all) combines."""
    return _size(n for i, n in enumerate(shape) if axes is None or i in axes)


def _index_key(t, key):
    """Normalise an index to a tuple of ints, slices, None, Ellipsis and device arrays."""
    if not isinstance(key, tuple):
        key = (key,)
    d = t._device
    out = []
    for k in key:
        if isinstance(k, Tensor):
            if k.dtype.kind not in "iub":
                raise IndexError(f"getitem: index tensors must be integer or bool, not "
                                 f"{k.dtype} (tensor of shape {t.shape})")
            if k.ndim == 0 and k.dtype.kind in "iu":
                out.append(k.item())  # a 0-d integer tensor indexes as an int (as in PyTorch)
            else:
                out.append(k._data)
        elif isinstance(k, (list, tuple, np.ndarray)):  # a tuple inside an index: a sequence
            arr = np.asarray(k)
            if arr.size == 0:
                arr = arr.astype(np.int64)
            if arr.dtype.kind not in "iub":
                raise IndexError(f"getitem: index arrays must be integer or bool, not {arr.dtype}"
                                 f" (tensor of shape {t.shape})")
            out.append(d.array(arr))
        elif k is None or k is Ellipsis or isinstance(k, (slice, int, np.integer)):
            out.append(k)
        else:
            raise IndexError(f"getitem: unsupported index {k!r} (tensor of shape {t.shape})")
    return tuple(out)


def _bitwise(kernel, x, *other, reverse=False):
    """A bitwise device kernel on integer or bool tensors (on bool: logical and, or, xor, not);
    no gradient, since neither kind can require one."""
    # other is a tuple, so that t & None is refused rather than taken for a unary op
    operands = (x,) if not other else _operands(kernel, x, other[0], reverse)
    for t in operands:
        if t.dtype.kind not in "biu" or (kernel.endswith("shift") and t.dtype == np.bool_):
            shapes = " and ".join(str(t.shape) for t in operands)
            raise TypeError(f"{kernel}: needs integer{'' if 'shift' in kernel else ' or bool'} "
                            f"tensors, got {' and '.join(str(t.dtype) for t in operands)} "
                            f"(shapes {shapes})")
    d = x._device
    return _wrap(getattr(d, kernel)(*(t._data for t in operands)), d)


def _check_divisor(op, x, y):
    """Integer division by zero raises, as in PyTorch (floats give inf and nan)."""
    if not _is_float(y.dtype) and bool(y._device.to_host(y._device.max(y._device.equal(
            y._data, 0)))):
        raise ZeroDivisionError(f"{op}: integer division by zero (shapes {x.shape} and "
                                f"{y.shape})")


def _check_index_range(op, index, n, axis, shape):
    """Indices of gather, scatter and index_* must lie in [0, n), as in PyTorch."""
    if not index.numel():
        return
    d = index._device
    low, high = (int(d.to_host(extreme(index._data))) for extreme in (d.min, d.max))
    if low < 0 or high >= n:
        raise IndexError(f"{op}: index {low if low < 0 else high} is out of range [0, {n}) for "
                         f"dim {axis} of a tensor of shape {shape}")


def _accumulating(x, dtype=None):
    """x in `dtype`, or for sums and products of integers and bools, in int64 (PyTorch's
    rule, so that they do not overflow a small type)."""
    if dtype is not None:
        return x.astype(dtype)
    return x.astype(np.int64) if x.dtype.kind in "biu" else x


def _unwrap(obj):
    """Tensors inside args become host arrays, for NumPy functions without a gradient rule."""
    if isinstance(obj, Tensor):
        return obj.numpy()
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _unwrap(v) for k, v in obj.items()}
    return obj


# ---- the table ops: Tensor methods and module-level functions ---------------------------------

def _unary_method(name, op):
    def method(self):
        return op(_floating(self))
    return _named(method, name, f"Elementwise {name}, for floats (integers become float32).")


def _step_method(name, op):
    def method(self):
        # integers are whole numbers already: floor, ceil and trunc return them
        return op(self) if _is_float(self.dtype) or name == "sign" else self
    return _named(method, name, f"Elementwise {name}; its gradient is zero (as in PyTorch).")


def _binary_method(name, op):
    integral = name in _INTEGRAL_BINARY

    def method(self, other):
        x, y = _operands(name, self if integral else _floating(self), other)
        if name in ("fmod", "remainder"):
            _check_divisor(name, x, y)
        return op(x, y)
    return _named(method, name, f"Elementwise {name}(self, other), broadcasting.")


def _named(fn, name, doc):
    fn.__name__, fn.__qualname__, fn.__doc__ = name, name, doc
    return fn


def _function(name, method):
    """torch's module-level form of a Tensor method: f(input, *args) = input.f(*args), where
    input may be a number or an array when a later argument is a tensor."""
    def fn(input, *args, **kwargs):
        like = next((a for a in (input,) + args if isinstance(a, Tensor)), None)
        return method(_tensor(input, like, name), *args, **kwargs)
    return _named(fn, name, method.__doc__)


for _name, _kernel, _rule in _UNARY:
    setattr(Tensor, _name, _unary_method(_name, _UNARY_OPS[_name]))
for _name, _kernel in _STEPS:
    if _name not in vars(Tensor):  # a method of the class (round, with decimals) stays
        setattr(Tensor, _name, _step_method(_name, _STEP_OPS[_name]))
for _name, _kernel, _rule_x, _rule_y in _BINARY:
    setattr(Tensor, _name, _binary_method(_name, _BINARY_OPS[_name]))

# PyTorch's second spelling of an op, and NumPy's
_ALIASES = {
    "arcsin": "asin", "arccos": "acos", "arctan": "atan", "arcsinh": "asinh",
    "arccosh": "acosh", "arctanh": "atanh", "arctan2": "atan2", "sgn": "sign", "fix": "trunc",
    "absolute": "abs", "negative": "neg", "multiply": "mul", "subtract": "sub",
}
for _alias, _name in _ALIASES.items():
    setattr(Tensor, _alias, getattr(Tensor, _name))

# ---- functions on tensors ----------------------------------------------------------------------

def einsum(subscripts, *operands):
    """Einstein summation with NumPy's subscripts: ellipsis, implicit output, traces and
    diagonals ('ii->i'), letters summed out of one operand only, any number of operands; or
    the sublist form einsum(a, [0, 1], b, [1, 2], [0, 2])."""
    if not isinstance(subscripts, str):
        subscripts, operands = _sublists(subscripts, operands)
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError(f"einsum: '{subscripts}' needs at least one operand")
    like = next((o for o in operands if isinstance(o, Tensor)), None)
    operands = [_tensor(o, like, "einsum") for o in operands]
    _same_device("einsum", operands)
    subs, output, sizes = _parse_einsum(subscripts, tuple(o.shape for o in operands))
    subs = list(subs)
    for k, (sub, x) in enumerate(zip(subs, operands)):
        if len(set(sub)) != len(sub):
            # a letter repeated within an operand reads a diagonal: an as_strided view
            letters = "".join(dict.fromkeys(sub))
            strides = _contiguous_strides(x.shape)
            x = x.as_strided(tuple(sizes[c] if x.shape[sub.index(c)] != 1 else 1 for c in letters),
                             tuple(builtins.sum(s for c2, s in zip(sub, strides) if c2 == c)
                                   for c in letters))
            sub = letters
        target = tuple(sizes[c] for c in sub)
        if x.shape != target:
            x = x.expand(target)  # size-1 ellipsis dims broadcast
        subs[k], operands[k] = sub, x
    dtype = functools.reduce(_result_dtype, (o.dtype for o in operands))
    operands = [o.astype(dtype) for o in operands]
    return _einsum(",".join(subs) + "->" + output, operands)


def _sublists(first, rest):
    """einsum's sublist form (operand, [dims], operand, [dims], ..., [output dims]) as
    subscripts and operands: dim numbers become letters, Ellipsis '...'."""
    args = (first,) + tuple(rest)
    output = args[-1] if len(args) % 2 else None  # an odd count ends with the output's dims
    if output is not None:
        args = args[:-1]
    operands, subs = list(args[0::2]), list(args[1::2])
    if len(subs) != len(operands):
        raise ValueError("einsum: the sublist form alternates operands and lists of dims")

    def letters(sub):
        try:
            return "".join("..." if d is Ellipsis else _LETTERS[d] for d in sub)
        except (IndexError, TypeError):
            raise ValueError(f"einsum: sublist {sub} must hold dims 0 to 51 or Ellipsis") from None
    text = ",".join(letters(sub) for sub in subs)
    return (text if output is None else text + "->" + letters(output)), operands


@functools.lru_cache(maxsize=1024)
def _parse_einsum(subscripts, shapes):
    """Explicit subscripts (one letter per dim), the output letters, and each letter's size;
    cached per subscripts and shapes, so a training loop parses each einsum once."""
    def fail(why):
        raise ValueError(f"einsum: subscripts '{subscripts}' with operand shapes "
                         f"{[tuple(s) for s in shapes]}: {why}")

    s = subscripts.replace(" ", "")
    if s.count("->") > 1:
        fail("'->' may appear once")
    lhs, arrow, output = s.partition("->")
    subs = lhs.split(",")
    if len(subs) != len(shapes):
        fail(f"they name {len(subs)} operands but {len(shapes)} were given")
    for part in subs + [output]:
        if part.replace("...", "").strip(_LETTERS) or part.count("...") > 1:
            fail(f"'{part}' must be letters with at most one '...'")
    free = [c for c in _LETTERS if c not in s]
    n_ellipsis = 0
    for sub, shape in zip(subs, shapes):
        letters = len(sub.replace("...", ""))
        if "..." in sub:
            if letters > len(shape):
                fail(f"'{sub}' names {letters} dims but the operand has {len(shape)}")
            n_ellipsis = builtins.max(n_ellipsis, len(shape) - letters)
        elif letters != len(shape):
            fail(f"'{sub}' names {letters} dims but the operand has {len(shape)}")
    ellipsis = "".join(free[:n_ellipsis])
    subs = [sub.replace("...", ellipsis[n_ellipsis - (len(shape) - len(sub) + 3):])
            if "..." in sub else sub for sub, shape in zip(subs, shapes)]
    if arrow:
        output = output.replace("...", ellipsis)
    else:
        counts = {}
        for c in "".join(subs):
            counts[c] = counts.get(c, 0) + 1
        output = ellipsis + "".join(sorted(c for c, k in counts.items()
                                           if k == 1 and c not in ellipsis))
    sizes = {}
    for sub, shape in zip(subs, shapes):
        for c, n in zip(sub, shape):
            if sizes.get(c, 1) == 1:
                sizes[c] = n
            elif n != sizes[c] and not (n == 1 and c in ellipsis):
                fail(f"index '{c}' has sizes {sizes[c]} and {n}")
    for c in output:
        if c not in sizes:
            fail(f"output index '{c}' appears in no operand")
        if output.count(c) > 1:
            fail(f"output index '{c}' is repeated")
    return tuple(subs), output, types.MappingProxyType(sizes)


def _sequence(op, tensors):
    """The tensors of cat, stack and the like as a list: a tensor, None or a number is a
    TypeError naming op, as in torch."""
    if isinstance(tensors, Tensor) or not isinstance(tensors, collections.abc.Iterable):
        raise TypeError(f"{op}: expected a sequence of tensors, not {_describe(tensors)}")
    return list(tensors)


def matmul(x, y):
    """Matrix product with NumPy's rules: 1-D operands are vectors, batch dims broadcast."""
    like = x if isinstance(x, Tensor) else y
    x, y = _tensor(x, like, "matmul"), _tensor(y, like, "matmul")
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(f"matmul: operands must have at least one dim, got shapes {x.shape} "
                         f"and {y.shape}")
    x2 = x.unsqueeze(0) if x.ndim == 1 else x
    y2 = y.unsqueeze(-1) if y.ndim == 1 else y
    if x2.shape[-1] != y2.shape[-2]:
        raise ValueError(f"matmul: shapes {x.shape} and {y.shape} do not match "
                         f"({x2.shape[-1]} != {y2.shape[-2]})")
    try:
        np.broadcast_shapes(x2.shape[:-2], y2.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dims of shapes {x.shape} and {y.shape} cannot be "
                         "broadcast together") from None
    x2, y2 = _operands("matmul", x2, y2, broadcast=False)
    out = _matmul(x2, y2)
    if x.ndim == 1:
        out = out.squeeze(-2)
    if y.ndim == 1:
        out = out.squeeze(-1)
    return out


def cat(tensors, dim=0, *, axis=None):
    """Join tensors along an existing dim."""
    tensors = _sequence("cat", tensors)
    if not tensors:
        raise ValueError("cat: needs at least one tensor")
    like = next((t for t in tensors if isinstance(t, Tensor)), None)
    tensors = [_tensor(t, like, "cat") for t in tensors]
    _same_device("cat", tensors)
    axis = _axis("cat", tensors[0], dim if axis is None else axis)
    first = tensors[0].shape
    for t in tensors[1:]:
        if t.ndim != len(first) or builtins.any(a != b for i, (a, b)
                                                in enumerate(zip(t.shape, first))
                                       if i != axis):
            raise ValueError(f"cat: shapes {[t.shape for t in tensors]} differ outside dim {axis}")
    dtype = functools.reduce(_result_dtype, (t.dtype for t in tensors))
    return _cat([t.astype(dtype) for t in tensors], axis)


concatenate = cat


def stack(tensors, dim=0, *, axis=None):
    """Join tensors of one shape along a new dim."""
    tensors = [_tensor(t, None, "stack") for t in _sequence("stack", tensors)]
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    if len({t.shape for t in tensors}) != 1:
        raise ValueError(f"stack: all tensors need one shape, got {[t.shape for t in tensors]}")
    dim = dim if axis is None else axis
    return cat([t.unsqueeze(dim) for t in tensors], dim)


def where(condition, x, y):
    """x where condition holds, else y; the gradient follows the branch taken."""
    like = next((t for t in (x, y, condition) if isinstance(t, Tensor)), None)
    cond = _tensor(condition, like, "where")
    like = like if like is not cond else None
    if like is None:
        x = _tensor(x, None, "where")
        like = x
    x, y = _operands("where", _tensor(x, like, "where"), y)
    _same_device("where", [x, cond])
    if cond.dtype != np.bool_:
        cond = cond != 0
    try:
        np.broadcast_shapes(cond.shape, x.shape, y.shape)
    except ValueError:
        raise ValueError(f"where: shapes {cond.shape}, {x.shape} and {y.shape} cannot be "
                         "broadcast together") from None
    return _where(cond._data, x, y)


def maximum(x, y):
    """Elementwise maximum; ties split the gradient evenly."""
    like = x if isinstance(x, Tensor) else y
    return _maximum(*_operands("maximum", _tensor(x, like, "maximum"), y))


def minimum(x, y):
    """Elementwise minimum; ties split the gradient evenly."""
    like = x if isinstance(x, Tensor) else y
    x, y = _operands("minimum", _tensor(x, like, "minimum"), y)
    return -_maximum(-x, -y)


def tensordot(a, b, dims=2):
    """Sums of products over the last `dims` dims of a and the first of b, or over the listed
    pairs of dims ([dims of a], [dims of b])."""
    like = a if isinstance(a, Tensor) else b
    a, b = _tensor(a, like, "tensordot"), _tensor(b, like, "tensordot")
    if isinstance(dims, (int, np.integer)):
        if not 0 <= dims <= builtins.min(a.ndim, b.ndim):
            raise ValueError(f"tensordot: dims {dims} is out of range for shapes {a.shape} and "
                             f"{b.shape}")
        dims_a, dims_b = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        dims_a, dims_b = (list(_ntuple("tensordot", d, 1, "dims")) for d in dims)
    dims_a = [_axis("tensordot", a, i) for i in dims_a]
    dims_b = [_axis("tensordot", b, i) for i in dims_b]
    if len(dims_a) != len(dims_b) or builtins.any(a.shape[i] != b.shape[j]
                                         for i, j in zip(dims_a, dims_b)):
        raise ValueError(f"tensordot: dims {dims_a} of shape {a.shape} and {dims_b} of shape "
                         f"{b.shape} do not match")
    sub_a = [_LETTERS[i] for i in range(a.ndim)]
    sub_b = [_LETTERS[a.ndim + j] for j in range(b.ndim)]
    for i, j in zip(dims_a, dims_b):
        sub_b[j] = sub_a[i]
    out = [c for i, c in enumerate(sub_a) if i not in dims_a]
    out += [c for j, c in enumerate(sub_b) if j not in dims_b]
    return einsum(f"{''.join(sub_a)},{''.join(sub_b)}->{''.join(out)}", a, b)


def inner(a, b):
    """Sums of products over the last dims of a and b (a number times a tensor for 0-d)."""
    like = a if isinstance(a, Tensor) else b
    a, b = _tensor(a, like, "inner"), _tensor(b, like, "inner")
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"inner: the last dims of shapes {a.shape} and {b.shape} differ")
    return tensordot(a, b, ([-1], [-1]))


def outer(a, b):
    """The outer product of two 1-d tensors."""
    return _tensor(a, b if isinstance(b, Tensor) else None).outer(b)


def kron(a, b):
    """The Kronecker product: every element of a times the whole of b, in blocks."""
    like = a if isinstance(a, Tensor) else b
    a, b = _tensor(a, like, "kron"), _tensor(b, like, "kron")
    ndim = builtins.max(a.ndim, b.ndim)
    a = a.reshape((1,) * (ndim - a.ndim) + a.shape)
    b = b.reshape((1,) * (ndim - b.ndim) + b.shape)
    # out[i * m + k] = a[i] b[k]: interleave a's dims with b's, multiply, merge the pairs
    blocks = (a.reshape(tuple(v for n in a.shape for v in (n, 1)))
              * b.reshape(tuple(v for n in b.shape for v in (1, n))))
    return blocks.reshape(tuple(m * n for m, n in zip(a.shape, b.shape)))


def cross(a, b, dim=None):
    """The cross product of 3-vectors along dim (broadcast); None takes the first dim of size
    3, as torch.cross."""
    like = a if isinstance(a, Tensor) else b
    a, b = _tensor(a, like, "cross"), _tensor(b, like, "cross")
    shape = np.broadcast_shapes(a.shape, b.shape)
    a, b = a.expand(shape), b.expand(shape)
    if dim is None:
        dim = next((i for i, n in enumerate(shape) if n == 3), None)
        if dim is None:
            raise ValueError(f"cross: no dim of size 3 in shape {shape}")
    axis = _axis("cross", a, dim)
    if shape[axis] != 3:
        raise ValueError(f"cross: dim {dim} of shape {shape} has size {shape[axis]}, not 3")
    a0, a1, a2 = a.unbind(axis)
    b0, b1, b2 = b.unbind(axis)
    return stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis)


def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids from 1-d tensors: indexing 'ij' (matrix, PyTorch's default) or 'xy'."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', not {indexing!r}")
    tensors = [_tensor(t, None, "meshgrid") for t in tensors]
    if builtins.any(t.ndim > 1 for t in tensors):
        raise ValueError(f"meshgrid: needs 0-d or 1-d tensors, got shapes "
                         f"{[t.shape for t in tensors]}")
    tensors = [t.reshape(-1) for t in tensors]
    swap = indexing == "xy" and len(tensors) >= 2
    order = [1, 0] + list(range(2, len(tensors))) if swap else list(range(len(tensors)))
    shape = tuple(tensors[i].numel() for i in order)
    grids = []
    for k, t in enumerate(tensors):
        view = [1] * len(tensors)
        view[order.index(k)] = t.numel()
        grids.append(t.reshape(view).expand(shape))
    return tuple(grids)


def _as_1d(t):
    return t.reshape(1) if t.ndim == 0 else t


def _as_2d(t):
    return t.reshape((1,) * (2 - t.ndim) + t.shape) if t.ndim < 2 else t


def _as_3d(t):
    # (n,) becomes (1, n, 1) and (m, n) becomes (m, n, 1), as NumPy
    if t.ndim < 2:
        return t.reshape(1, -1, 1)
    return t.unsqueeze(-1) if t.ndim == 2 else t


def _atleast(tensors, lift):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        return tuple(lift(_tensor(t)) for t in tensors[0])
    out = tuple(lift(_tensor(t)) for t in tensors)
    return out[0] if len(out) == 1 else out


def atleast_1d(*tensors):
    """Each tensor with at least 1 dim (a 0-d tensor becomes shape (1,))."""
    return _atleast(tensors, _as_1d)


def atleast_2d(*tensors):
    """Each tensor with at least 2 dims: (n,) becomes (1, n)."""
    return _atleast(tensors, _as_2d)


def atleast_3d(*tensors):
    """Each tensor with at least 3 dims: (n,) becomes (1, n, 1), (m, n) becomes (m, n, 1)."""
    return _atleast(tensors, _as_3d)


def hstack(tensors):
    """Joined along dim 1, or along dim 0 for 1-d tensors."""
    tensors = [_as_1d(_tensor(t, None, "hstack")) for t in tensors]
    return cat(tensors, 0 if tensors and tensors[0].ndim == 1 else 1)


def vstack(tensors):
    """Joined along dim 0, 1-d tensors as rows."""
    return cat([_as_2d(_tensor(t, None, "vstack")) for t in tensors], 0)


row_stack = vstack


def dstack(tensors):
    """Joined along dim 2, each made at least 3-d."""
    return cat([_as_3d(_tensor(t, None, "dstack")) for t in tensors], 2)


def column_stack(tensors):
    """1-d tensors as columns (and 2-d ones as they are), joined along dim 1."""
    tensors = [_tensor(t, None, "column_stack") for t in tensors]
    return cat([t.reshape(-1, 1) if t.ndim <= 1 else t for t in tensors], 1)


def tensor_split(input, indices_or_sections, dim=0):
    """Pieces along dim: n nearly equal ones (the first n % size one larger), or cut at the
    listed indices, as torch.tensor_split and np.array_split."""
    x = _tensor(input, None, "tensor_split")
    axis = _axis("tensor_split", x, dim)
    n = x.shape[axis]
    if not isinstance(indices_or_sections, (list, tuple)) and not getattr(
            indices_or_sections, "ndim", 0):
        sections = _int("tensor_split", "sections", indices_or_sections)
        if sections <= 0:
            raise ValueError(f"tensor_split: sections must be positive, got {sections}")
        size, extra = divmod(n, sections)
        bounds = np.cumsum([0] + [size + 1] * extra + [size] * (sections - extra))
    else:
        cuts = _ints("tensor_split", "indices", indices_or_sections)
        bounds = [0] + [builtins.min(builtins.max(i + n if i < 0 else i, 0), n)
                        for i in cuts] + [n]
    lead = (slice(None),) * axis
    return tuple(x[lead + (slice(int(a), builtins.max(int(a), int(b))),)]
                 for a, b in zip(bounds, bounds[1:]))


def array_split(ary, indices_or_sections, axis=0):
    """NumPy's name for tensor_split (a list of pieces)."""
    return list(tensor_split(ary, indices_or_sections, axis))


def _split_along(op, min_ndim, axis):
    def split(input, indices_or_sections):
        x = _tensor(input)
        if x.ndim < min_ndim:
            raise ValueError(f"{op}: needs at least {min_ndim} dims, got shape {x.shape}")
        dim = 0 if (op == "hsplit" and x.ndim == 1) else axis
        if isinstance(indices_or_sections, (int, np.integer)) and \
                x.shape[dim] % indices_or_sections:
            raise ValueError(f"{op}: dim {dim} of size {x.shape[dim]} does not divide into "
                             f"{indices_or_sections} equal pieces")
        return tensor_split(x, indices_or_sections, dim)
    return _named(split, op, f"Pieces along dim {axis}, as torch.{op} and np.{op}.")


hsplit = _split_along("hsplit", 1, 1)
vsplit = _split_along("vsplit", 2, 0)
dsplit = _split_along("dsplit", 3, 2)


def searchsorted(sorted_sequence, values, *, out_int32=False, right=False, side=None,
                 sorter=None):
    """Where each value would go in the ascending sorted_sequence (its last dim, per row of
    leading dims, or for every value when 1-d) to keep it sorted: the first such place, or with
    right=True (side='right') the last. No gradient."""
    seq = _tensor(sorted_sequence, None, "searchsorted")
    vals = _tensor(values, seq, "searchsorted")
    if side is not None:
        if side not in ("left", "right"):
            raise ValueError(f"searchsorted: side must be 'left' or 'right', not {side!r}")
        right = side == "right"
    if sorter is not None:
        seq = seq.take_along_dim(_tensor(sorter, seq, "searchsorted"), -1)
    if seq.ndim > 1 and seq.shape[:-1] != vals.shape[:-1]:
        raise ValueError(f"searchsorted: a sorted_sequence of shape {seq.shape} needs values "
                         f"with the same leading dims, got shape {vals.shape}")
    if vals.dtype != seq.dtype:
        dtype = _result_dtype(seq.dtype, vals.dtype)
        seq, vals = seq.astype(dtype), vals.astype(dtype)
    d = seq._device
    out = _wrap(d.astype(d.searchsorted(seq._data, vals._data, bool(right)), np.int64), d)
    return out.astype(np.int32) if out_int32 else out


def var_mean(input, dim=None, *, correction=1, keepdim=False, unbiased=None):
    """(variance, mean) over dims."""
    x = _tensor(input, None, "var_mean")
    return (x.var(dim=dim, correction=correction, keepdim=keepdim, unbiased=unbiased),
            x.mean(dim=dim, keepdim=keepdim))


def std_mean(input, dim=None, *, correction=1, keepdim=False, unbiased=None):
    """(standard deviation, mean) over dims."""
    x = _tensor(input, None, "std_mean")
    return (x.std(dim=dim, correction=correction, keepdim=keepdim, unbiased=unbiased),
            x.mean(dim=dim, keepdim=keepdim))


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """The ord-norm of the elements over dims (all by default): ord a number, inf or -inf
    (the largest or smallest |x|), 0 (how many are nonzero). Its gradient is PyTorch's: 0
    where the norm is 0, shared among ties for +-inf."""
    x = _tensor(x, None, "vector_norm")
    x = _floating(x if dtype is None else x.astype(dtype))
    if isinstance(ord, str):
        raise ValueError(f"vector_norm: ord must be a number, not {ord!r}")
    axes, keep = _reduction_args("vector_norm", x, dim, None, keepdim, None)
    return _vector_norm(x, float(ord), axes, keep)


# ---- creation ----------------------------------------------------------------------------------

_rng = np.random.default_rng()


def manual_seed(seed):
    """Seed the generator behind randn and rand."""
    global _rng
    _rng = np.random.default_rng(seed)


def tensor(data, dtype=None, requires_grad=False):
    """A new tensor, as torch.tensor (same as Tensor(...))."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def _create(host, dtype, requires_grad):
    return Tensor(np.asarray(host, dtype=dtype), requires_grad=requires_grad)


def zeros(*size, dtype=np.float32, requires_grad=False):
    return _create(np.zeros(_new_shape("zeros", size)), dtype, requires_grad)


def ones(*size, dtype=np.float32, requires_grad=False):
    return _create(np.ones(_new_shape("ones", size)), dtype, requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False):
    value = _host_array(fill_value, None, "full")
    if value.ndim:
        raise RuntimeError(f"full: fill_value must be a number, not an array of shape "
                           f"{value.shape}")
    return _create(np.full(_new_shape("full", (size,)), value),
                   value.dtype if dtype is None else dtype, requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    """start, start + step, ... below end; int64 for integer arguments, else float32."""
    if end is None:
        start, end = 0, start
    for what, value in (("start", start), ("end", end), ("step", step)):
        _real("arange", what, value)
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if dtype is None:
        integers = builtins.all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if integers else np.float32
    return _create(np.arange(start, end, step), dtype, requires_grad)


def eye(n, m=None, dtype=np.float32, requires_grad=False):
    m = None if m is None else _size_arg("eye", "m", m)
    return _create(np.eye(_size_arg("eye", "n", n), m), dtype, requires_grad)


def randn(*size, dtype=np.float32, requires_grad=False):
    """Standard normal samples from the generator that manual_seed seeds."""
    return _create(_rng.standard_normal(_new_shape("randn", size)), dtype, requires_grad)


def rand(*size, dtype=np.float32, requires_grad=False):
    """Uniform samples on [0, 1) from the generator that manual_seed seeds."""
    return _create(_rng.random(_new_shape("rand", size)), dtype, requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    return zeros(t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return ones(t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def full_like(t, fill_value, dtype=None, requires_grad=False):
    return full(t.shape, fill_value, dtype=t.dtype if dtype is None else dtype,
                requires_grad=requires_grad)


def randn_like(t, dtype=None, requires_grad=False):
    return randn(t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def rand_like(t, dtype=None, requires_grad=False):
    return rand(t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def empty(*size, dtype=np.float32, requires_grad=False):
    """A new tensor of `size` (zeros: simplegrad has no uninitialised memory)."""
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def empty_like(t, dtype=None, requires_grad=False):
    return zeros_like(t, dtype=dtype, requires_grad=requires_grad)


def randint(low, high=None, size=None, *, dtype=np.int64, requires_grad=False):
    """Integers drawn uniformly from [low, high) (randint(high, size) draws from [0, high))."""
    if size is None:
        low, high, size = 0, low, high
    if size is None:
        raise TypeError("randint: needs a size")
    low, high = _int("randint", "low", low), _int("randint", "high", high)
    if high <= low:
        raise ValueError(f"randint: the range [{low}, {high}) is empty")
    return _create(_rng.integers(low, high, _new_shape("randint", (size,))), dtype,
                   requires_grad)


def randint_like(t, low, high=None, *, dtype=None, requires_grad=False):
    if high is None:
        low, high = 0, low
    return randint(low, high, t.shape, dtype=t.dtype if dtype is None else dtype,
                   requires_grad=requires_grad)


def randperm(n, *, dtype=np.int64, requires_grad=False):
    """A random permutation of 0, ..., n - 1."""
    return _create(_rng.permutation(_size_arg("randperm", "n", n)), dtype, requires_grad)


def normal(mean=0.0, std=1.0, size=None, *, dtype=None, requires_grad=False):
    """Normal samples: of `size` for number arguments, else of the broadcast shape of mean and
    std (tensors); a zero gradient flows to tensor arguments, as in PyTorch."""
    tensors = [t for t in (mean, std) if isinstance(t, Tensor)]
    if not tensors:
        if size is None:
            raise TypeError("normal: needs a size when mean and std are numbers")
        host = _rng.normal(mean, std, _new_shape("normal", (size,)))
        return _create(host, np.float32 if dtype is None else dtype, requires_grad)
    like = tensors[0]
    mean, std = _tensor(mean, like), _tensor(std, like)
    shape = np.broadcast_shapes(mean.shape, std.shape)
    if size is not None and _new_shape("normal", (size,)) != shape:
        raise ValueError(f"normal: size {size} differs from the shape {shape} of mean and std")
    d = like._device
    sample = d.array(_rng.standard_normal(shape).astype(like.dtype))
    data = d.add(d.mul(sample, std._data), mean._data)
    return _zero_gradient("normal", data, [t for t in (mean, std) if isinstance(t, Tensor)])


def bernoulli(input, p=None):
    """1 with probability p (or each element's own probability, input), else 0, in input's
    dtype; a zero gradient flows to input, as in PyTorch."""
    x = _tensor(input)
    prob = x if p is None else _tensor(p, x).expand(x.shape)
    if not _is_float(prob.dtype):
        raise TypeError(f"bernoulli: probabilities must be floats, not {prob.dtype}")
    d = x._device
    draw = d.array(_rng.random(x.shape))
    data = d.astype(d.less(draw, d.astype(prob._data, np.float64)), x.dtype)
    return _zero_gradient("bernoulli", data, [x])


def multinomial(input, num_samples, replacement=False):
    """Indices drawn from each row of input (weights, not necessarily normalised): num_samples
    per row, without replacement unless replacement=True."""
    num_samples = _size_arg("multinomial", "num_samples", num_samples)
    weights = np.asarray(_tensor(input, None, "multinomial").detach().numpy(), dtype=np.float64)
    rows = weights.reshape(-1, weights.shape[-1]) if weights.ndim else None
    if rows is None or weights.ndim > 2 or (weights < 0).any() or not np.isfinite(weights).all():
        raise ValueError(f"multinomial: needs a 1-d or 2-d tensor of finite non-negative "
                         f"weights, got shape {weights.shape}")
    out = []
    for row in rows:
        total = row.sum()
        if total <= 0 or (not replacement and num_samples > np.count_nonzero(row)):
            raise ValueError(f"multinomial: cannot draw {num_samples} samples "
                             f"{'with' if replacement else 'without'} replacement from "
                             f"weights {row.tolist()}")
        out.append(_rng.choice(len(row), num_samples, replace=replacement, p=row / total))
    out = np.array(out, dtype=np.int64).reshape(weights.shape[:-1] + (num_samples,))
    return Tensor(out, device=_tensor(input)._device)


def linspace(start, end, steps, *, dtype=None, requires_grad=False):
    """`steps` evenly spaced values from start to end (inclusive)."""
    return _create(np.linspace(start, end, _size_arg("linspace", "steps", steps)),
                   dtype or np.float32, requires_grad)


def logspace(start, end, steps, base=10.0, *, dtype=None, requires_grad=False):
    """base ** linspace(start, end, steps)."""
    return _create(np.logspace(start, end, _size_arg("logspace", "steps", steps), base=base),
                   dtype or np.float32, requires_grad)


def tril_indices(row, col, offset=0, *, dtype=np.int64):
    """The (row, column) indices of the lower triangle of a row x col matrix, as a 2 x N
    tensor in row-major order."""
    return _create(np.stack(np.tril_indices(row, offset, col)), dtype, False)


def triu_indices(row, col, offset=0, *, dtype=np.int64):
    """The (row, column) indices of the upper triangle of a row x col matrix, 2 x N."""
    return _create(np.stack(np.triu_indices(row, offset, col)), dtype, False)


# ---- torch's matrix products (linear algebra): mm, bmm, mv -----------------------------------

def _matrix_product(op, x, y, ranks):
    """torch's mm, bmm and mv: matmul with the operands' ranks checked as torch checks them."""
    like = x if isinstance(x, Tensor) else y
    x, y = _tensor(x, like, op), _tensor(y, like, op)
    if (x.ndim, y.ndim) != ranks:
        raise RuntimeError(f"{op}: expected operands of {ranks[0]} and {ranks[1]} dims, got "
                           f"shapes {x.shape} and {y.shape}")
    if op == "bmm" and x.shape[0] != y.shape[0]:
        raise RuntimeError(f"bmm: the batch sizes of shapes {x.shape} and {y.shape} differ")
    inner = y.shape[0] if op == "mv" else y.shape[-2]
    if x.shape[-1] != inner:
        raise RuntimeError(f"{op}: shapes {x.shape} and {y.shape} cannot be multiplied "
                           f"({x.shape[-1]} != {inner})")
    return matmul(x, y)


def mm(input, mat2):
    """Product of two matrices (no broadcasting), as torch.mm."""
    return _matrix_product("mm", input, mat2, (2, 2))


def bmm(input, mat2):
    """Batched product of (b, n, m) and (b, m, p) tensors, as torch.bmm."""
    return _matrix_product("bmm", input, mat2, (3, 3))


def mv(input, vec):
    """Product of a matrix and a vector, as torch.mv."""
    return _matrix_product("mv", input, vec, (2, 1))


# ---- comparisons of whole tensors, and conversions from NumPy ---------------------------------

def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Where |input - other| <= atol + rtol |other| (equal values, infinities included, are
    close; nan is close to nan only with equal_nan), as a bool tensor, as torch.isclose."""
    like = input if isinstance(input, Tensor) else other
    a, b = (_tensor(v, like, "isclose").detach() for v in (input, other))
    rtol, atol = _real("isclose", "rtol", rtol), _real("isclose", "atol", atol)
    if rtol < 0 or atol < 0:
        raise RuntimeError(f"isclose: rtol and atol must be non-negative, got {rtol} and {atol}")
    with no_grad():
        a, b = _operands("isclose", a, b)
        if not np.issubdtype(a.dtype, np.inexact):
            a, b = a.astype(np.float64), b.astype(np.float64)
        finite = a.isfinite() & b.isfinite()
        a0, b0 = where(finite, a, 0), where(finite, b, 0)  # no inf - inf
        close = (a == b) | (finite & ((a0 - b0).abs() <= atol + rtol * b0.abs()))
        return close | (a.isnan() & b.isnan()) if equal_nan else close


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Whether every element is close (isclose), as a Python bool, as torch.allclose."""
    return builtins.bool(isclose(input, other, rtol, atol, equal_nan).all())


def equal(input, other):
    """Whether the two tensors have the same shape and the same values, as torch.equal."""
    for v in (input, other):
        if not isinstance(v, Tensor):
            raise TypeError(f"equal: expected two tensors, got {_describe(v)}")
    return input.shape == other.shape and builtins.bool((input.detach() == other.detach()).all())


def is_tensor(obj):
    return isinstance(obj, Tensor)


def from_numpy(ndarray):
    """A tensor on the NumPy device that shares ndarray's memory, as torch.from_numpy."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected a NumPy array, got {_describe(ndarray)}")
    return Tensor(ndarray, device=NumpyDevice())


def as_tensor(data, dtype=None, device=None):
    """data as a tensor, sharing its memory where the dtype and device allow (a tensor is
    returned as it is), as torch.as_tensor."""
    device = None if device is None else _device_named("as_tensor", device)
    if isinstance(data, Tensor):
        if device is not None and device != data._device:
            data = data.to(device)
        return data if dtype is None else data.astype(dtype)
    return Tensor(data, dtype=dtype, device=device)


for _f in (mm, bmm, mv, isclose, allclose, equal):  # as methods too: x.mm(y), x.isclose(y)
    setattr(Tensor, _f.__name__, _f)


# ---- module-level functions: torch.sin(x) for x.sin() -----------------------------------------
# Every Tensor method that torch also offers as a function, generated from the method (so the
# two cannot drift apart): input may be a number or an array when a later argument is a
# tensor. The functions written out above (matmul, where, einsum, tensordot, ...) stay as
# they are.
_METHOD_FUNCTIONS = """
    abs absolute acos acosh add all amax amin any arccos arccosh arcsin arcsinh arctan arctan2
    arctanh argmax argmin argsort as_strided asin asinh atan atan2 atanh bernoulli bitwise_and
    bitwise_left_shift bitwise_not bitwise_or bitwise_right_shift bitwise_xor broadcast_to ceil
    chunk clamp clip clone copysign cos cosh count_nonzero cummax cummin cumprod cumsum deg2rad
    detach diag diag_embed diagonal diff div divide dot eq erf erfc exp exp2 expm1 fix flatten
    flip fliplr flipud floor floor_divide fmax fmin fmod frac gather ge ger gt hypot index_add
    index_copy index_fill index_select isfinite isinf isnan isneginf isposinf kthvalue le lerp
    log log10 log1p log2 logaddexp logaddexp2 logcumsumexp logical_and logical_not logical_or
    logical_xor logsumexp lt masked_fill masked_select max mean median min moveaxis movedim
    msort mul multinomial multiply nan_to_num nanmean nansum narrow ne neg negative norm numel
    permute pow prod rad2deg reciprocal remainder repeat_interleave reshape roll rot90 round
    rsqrt scatter scatter_add scatter_reduce sgn sign sin sinc sinh sort split sqrt square
    squeeze std sub subtract sum swapaxes swapdims take_along_dim tan tile topk trace transpose
    tril triu true_divide trunc unbind unflatten unique unsqueeze var
""".split()
for _name in _METHOD_FUNCTIONS:
    if _name not in globals():
        globals()[_name] = _function(_name, getattr(Tensor, _name))
    elif not hasattr(Tensor, _name):  # bernoulli and multinomial: the method from the function
        setattr(Tensor, _name, globals()[_name])
# (sum, max, min, abs, all, any, round and pow are functions here as in torch, but stay out of
# __all__, so that `from simplegrad import *` does not hide Python's builtins; this file calls
# those as builtins.max and so on)
__all__ += [name for name in _METHOD_FUNCTIONS if not hasattr(builtins, name)]


# ---- the NumPy protocol: which NumPy calls on tensors are recorded --------------------------
# A NumPy ufunc or function called with a tensor among its arguments comes to
# Tensor.__array_ufunc__ or __array_function__, which look it up in these tables:
#   _UFUNCS, _FUNCTIONS   recorded: simplegrad ops with NumPy's semantics (argument names,
#                         defaults, result dtypes), so that gradients flow through NumPy code
#   _NO_GRADIENT          functions whose results carry no gradient by nature (shapes, indices,
#                         tests, text): NumPy's own result, computed on the tensors' values
#   anything else         refused with a RuntimeError when a tensor that requires grad is among
#                         the arguments (its gradient would be lost), else NumPy's plain result.
# Calls whose tensors are all integers or bools (which cannot require grad) run in NumPy on the
# host, for NumPy's exact dtypes, and come back as tensors on the tensors' device. Under no_grad
# nothing is recorded, so nothing is refused.

_NOVALUE = np._NoValue  # NumPy's "argument not given"


class _NotRecorded(Exception):
    """An argument that simplegrad cannot record (out=, where=, a mode it lacks, ...)."""


def _np_name(func):
    """NumPy's public name of a function: np.sum, np.linalg.eig, np.fft.fft."""
    return func.__module__.replace("numpy", "np", 1) + "." + func.__name__


def _refusal(name, detail=None):
    """The RuntimeError for a NumPy call that would lose a gradient; detail names the argument
    at fault, if one is."""
    if detail == "out=":
        return RuntimeError(f"{name}(..., out=...): simplegrad cannot write a result that needs a "
                            "gradient into an existing array or tensor; drop out= and use the "
                            "tensor returned, or call .detach() on the inputs first")
    how = f" with {detail}" if detail else ""
    return RuntimeError(f"{name}{how}: simplegrad cannot record this NumPy function on a tensor "
                        "that requires grad; call .detach() on it first, or use a simplegrad op")


def _contents(obj):
    """The objects inside obj, through lists, tuples and dicts."""
    if isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _contents(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _contents(o)
    else:
        yield obj


def _tensors(obj):
    return [t for t in _contents(obj) if isinstance(t, Tensor)]


def _needs_grad(obj):
    """Whether recording is on and obj holds a tensor that requires grad."""
    return is_grad_enabled() and builtins.any(t._rg for t in _tensors(obj))


def _on_device(result, device):
    """NumPy's result with its arrays and NumPy scalars made tensors on device."""
    if isinstance(result, (np.ndarray, np.generic)):
        return Tensor(np.asarray(result), device=device)
    if isinstance(result, tuple) and hasattr(result, "_fields"):  # a named tuple
        return type(result)(*(_on_device(r, device) for r in result))
    if isinstance(result, (list, tuple)):
        return type(result)(_on_device(r, device) for r in result)
    return result


def _np_tensor(x, like=None):
    """x as a tensor (on like's device), converted as NumPy functions convert their arguments:
    Python floats and lists of them become float64."""
    if isinstance(x, Tensor):
        return x
    return Tensor(np.asarray(x), device=None if like is None else like._device)


def _shape(shape):
    """A shape argument (an int or a sequence of them) as a tuple, rejecting what NumPy
    rejects (floats, arrays of them)."""
    shape = _host(shape)
    return (operator.index(shape),) if np.ndim(shape) == 0 else tuple(
        operator.index(n) for n in shape)


def _np_cast(x, dtype):
    return x if dtype is None else x.astype(dtype)


def _host(x):
    """An argument without gradient (indices, masks, shapes) as NumPy values."""
    return _unwrap(x)


def _constant(values, like):
    """NumPy values as a tensor on like's device."""
    return Tensor(np.asarray(values), device=like._device)


def _zeros(shape, dtype, like):
    return _wrap(like._device.full(tuple(shape), 0, np.dtype(dtype)), like._device)


def _off_graph(name, x, data, slope=None):
    """A result computed without the graph (device array `data`, of x's shape) whose derivative
    with respect to x is `slope` (a tensor), or zero: frexp's mantissa, angle, imag."""
    def backward(g, out, need):
        return (_zero_grad(g) if slope is None else g * slope,)
    return _record(name, data, (x,), backward)


# ---- ufuncs: "__call__" ----------------------------------------------------------------------

def _identity(x):
    return x


def _cbrt(x):
    # sign(x) |x|^(1/3); its derivative 1 / (3 cbrt(x)^2) is infinite at 0
    d = x._device
    data = d.mul(d.sign(x._data), d.pow(d.abs(x._data), 1 / 3))
    return _record("cbrt", data, (x,), lambda g, out, need: (g / (3 * out * out),))


def _heaviside(x1, x2):
    # 0 below 0, x2 at 0, 1 above (nan at nan); the step keeps x1 in the graph with slope 0
    return where(x1 == 0, x2, (x1.sign() + 1) * 0.5)


def _signbit(x):
    d = x._device
    return _wrap(d.less(d.copysign(d.full(x.shape, 1, x.dtype), x._data), 0), d)


def _divmod(x1, x2):
    return x1.floor_divide(x2), x1.remainder(x2)


def _modf(x):
    # (fractional part, integral part), both with x's sign; modf(+-inf) = (+-0, +-inf)
    whole = x.trunc()
    zero = Tensor.copysign(_zeros(x.shape, x.dtype, x), x.detach())
    return where(x.isinf() | (x == whole), zero, x - whole), whole


def _times_power_of_two(x, exponent):
    """x * 2**exponent (an integer array of x's shape), exactly, with its derivative."""
    data = np.ldexp(x.numpy(), exponent).astype(x.dtype)
    slope = _constant(np.ldexp(np.ones((), x.dtype), exponent), x)
    return _off_graph("ldexp", x, x._device.array(data), slope)


def _frexp(x):
    exponent = np.frexp(x.numpy())[1]
    return _times_power_of_two(x, -exponent), _constant(exponent, x)


def _ldexp(x1, x2):
    shape = np.broadcast_shapes(x1.shape, x2.shape)
    exponent = np.broadcast_to(x2.numpy(), shape)
    return _times_power_of_two(x1.expand(shape), exponent)


def _core_dims(name, x1, x2, ndim1=1, ndim2=1):
    """Check that the gufunc operands have their core dimensions: (n), or (m, n) for ndim 2."""
    if x1.ndim < ndim1 or x2.ndim < ndim2:
        raise ValueError(f"{name}: operands of shapes {x1.shape} and {x2.shape} lack core "
                         f"dimensions (it needs at least {ndim1} and {ndim2})")


def _vecdot(x1, x2):
    _core_dims("vecdot", x1, x2)
    if x1.shape[-1] != x2.shape[-1]:
        raise ValueError(f"vecdot: shapes {x1.shape} and {x2.shape} differ in their last dims")
    return (x1 * x2).sum(-1)


def _matvec(x1, x2):
    _core_dims("matvec", x1, x2, 2, 1)
    return matmul(x1, x2.unsqueeze(-1)).squeeze(-1)


def _vecmat(x1, x2):
    _core_dims("vecmat", x1, x2, 1, 2)
    return matmul(x1.unsqueeze(-2), x2).squeeze(-2)


def _on_host(ufunc):
    """A ufunc of integers (gcd, lcm, bitwise_count, isnat): computed by NumPy; NumPy has no
    loop for floats, so nothing here can carry a gradient."""
    def impl(*xs):
        return _on_device(ufunc(*(x.numpy() for x in xs)), xs[0]._device)
    return impl


# one line per ufunc; every input is a tensor already cast to the dtype of NumPy's loop
_UFUNCS = {
    np.add: operator.add, np.subtract: operator.sub,
    np.multiply: operator.mul, np.divide: operator.truediv,
    np.power: operator.pow, np.float_power: operator.pow,  # its loop is float64
    np.negative: operator.neg, np.positive: _identity, np.conjugate: _identity,
    np.absolute: Tensor.abs, np.fabs: Tensor.abs,
    np.reciprocal: Tensor.reciprocal, np.square: Tensor.square,
    np.sqrt: Tensor.sqrt, np.cbrt: _cbrt,
    np.exp: Tensor.exp, np.exp2: Tensor.exp2, np.expm1: Tensor.expm1,
    np.log: Tensor.log, np.log2: Tensor.log2, np.log10: Tensor.log10, np.log1p: Tensor.log1p,
    np.logaddexp: Tensor.logaddexp, np.logaddexp2: Tensor.logaddexp2,
    np.sin: Tensor.sin, np.cos: Tensor.cos, np.tan: Tensor.tan,
    np.arcsin: Tensor.asin, np.arccos: Tensor.acos, np.arctan: Tensor.atan,
    np.arctan2: Tensor.atan2, np.hypot: Tensor.hypot,
    np.sinh: Tensor.sinh, np.cosh: Tensor.cosh, np.tanh: Tensor.tanh,
    np.arcsinh: Tensor.asinh, np.arccosh: Tensor.acosh, np.arctanh: Tensor.atanh,
    np.degrees: Tensor.rad2deg, np.rad2deg: Tensor.rad2deg,
    np.radians: Tensor.deg2rad, np.deg2rad: Tensor.deg2rad,
    np.floor: Tensor.floor, np.ceil: Tensor.ceil, np.trunc: Tensor.trunc,
    np.rint: Tensor.round, np.sign: Tensor.sign, np.heaviside: _heaviside,
    np.maximum: maximum, np.minimum: minimum, np.fmax: Tensor.fmax, np.fmin: Tensor.fmin,
    np.fmod: Tensor.fmod, np.remainder: Tensor.remainder,
    np.floor_divide: Tensor.floor_divide, np.divmod: _divmod,
    np.copysign: Tensor.copysign, np.modf: _modf, np.frexp: _frexp, np.ldexp: _ldexp,
    np.matmul: matmul, np.vecdot: _vecdot, np.matvec: _matvec, np.vecmat: _vecmat,
    np.equal: operator.eq, np.not_equal: operator.ne,
    np.less: operator.lt, np.less_equal: operator.le,
    np.greater: operator.gt, np.greater_equal: operator.ge,
    np.logical_and: Tensor.logical_and, np.logical_or: Tensor.logical_or,
    np.logical_xor: Tensor.logical_xor, np.logical_not: Tensor.logical_not,
    np.isnan: Tensor.isnan, np.isinf: Tensor.isinf, np.isfinite: Tensor.isfinite,
    np.signbit: _signbit,
    np.bitwise_and: operator.and_, np.bitwise_or: operator.or_, np.bitwise_xor: operator.xor,
    np.invert: operator.invert, np.left_shift: operator.lshift, np.right_shift: operator.rshift,
    np.gcd: _on_host(np.gcd), np.lcm: _on_host(np.lcm),
    np.bitwise_count: _on_host(np.bitwise_count), np.isnat: _on_host(np.isnat),
}


def _operand_dtype(x):
    """What ufunc.resolve_dtypes takes for an input: a dtype, or int, float or complex for a
    Python number (NumPy's weak scalars)."""
    if isinstance(x, (Tensor, np.ndarray, np.generic)):
        return x.dtype
    if type(x) in (int, float, complex):
        return type(x)
    return np.asarray(x).dtype


def _result_type(*values):
    """np.result_type of tensors, arrays and numbers (Python numbers weak, as NumPy's)."""
    return np.result_type(*(x if type(x) in (int, float, complex) else
                            np.dtype(_operand_dtype(x)) for x in values))


@functools.lru_cache(maxsize=1024)
def _ufunc_loop(ufunc, operand_dtypes, dtype):
    """The dtypes of the loop NumPy runs for these operands (cached: resolving costs more than
    the small ops it is asked about)."""
    options = {} if dtype is None else {"signature": (None,) * ufunc.nin + (dtype,) * ufunc.nout}
    return ufunc.resolve_dtypes(operand_dtypes + (None,) * ufunc.nout, **options)


def _ufunc_call(ufunc, fn, inputs, dtype=None, like=None):
    """fn on the inputs cast to the dtypes of the loop NumPy would run, its results cast to
    that loop's output dtypes (like: the first tensor among the inputs)."""
    like = _tensors(inputs)[0] if like is None else like
    loop = _ufunc_loop(ufunc, tuple(_operand_dtype(x) for x in inputs),
                       None if dtype is None else np.dtype(dtype))
    operands = [x.astype(t) if isinstance(x, Tensor) else _constant(np.asarray(x, t), like)
                for x, t in zip(inputs, loop)]
    out = fn(*operands)
    if ufunc.nout == 1:
        return out.astype(loop[-1])
    return tuple(o.astype(t) for o, t in zip(out, loop[ufunc.nin:]))


# ---- ufuncs: "reduce", "accumulate" and "outer" ----------------------------------------------

def _logsumexp2(x, axis, keepdims=False):
    return (x * _LN2).logsumexp(axis, keepdims=keepdims) * (1 / _LN2)


def _logcumsumexp2(x, axis):
    return (x * _LN2).logcumsumexp(axis) * (1 / _LN2)


# reduce(x, axis, keepdims=...): np.add.reduce(x, axis=0) is np.sum(x, axis=0)
_UFUNC_REDUCTIONS = {
    np.add: Tensor.sum, np.multiply: Tensor.prod,
    np.maximum: Tensor.amax, np.minimum: Tensor.amin,
    np.logaddexp: Tensor.logsumexp, np.logaddexp2: _logsumexp2,
    np.logical_and: Tensor.all, np.logical_or: Tensor.any,
}

# accumulate(x, axis): np.add.accumulate(x, axis=0) is np.cumsum(x, axis=0)
_UFUNC_SCANS = {
    np.add: Tensor.cumsum, np.multiply: Tensor.cumprod,
    np.maximum: lambda x, axis: x.cummax(axis).values,
    np.minimum: lambda x, axis: x.cummin(axis).values,
    np.logaddexp: Tensor.logcumsumexp, np.logaddexp2: _logcumsumexp2,
}

# keyword arguments of ufunc methods that are recorded only with these values (or absent)
_UFUNC_DEFAULTS = {"where": True, "casting": "same_kind", "order": "K", "subok": True,
                   "signature": None, "axes": None, "axis": None, "keepdims": False}


def _ufunc_options(method, kwargs):
    """The keyword arguments of a ufunc method that are recorded; _NotRecorded for the rest."""
    options = dict(kwargs)
    if builtins.any(o is not None for o in _contents(options.pop("out", None))):
        raise _NotRecorded("out=")
    recorded = {"__call__": {"dtype"}, "outer": {"dtype"},
                "reduce": {"axis", "dtype", "keepdims", "initial"},
                "accumulate": {"axis", "dtype"}}[method]
    for key, value in list(options.items()):
        if key not in recorded:
            default = _UFUNC_DEFAULTS.get(key, _NOVALUE)
            if value is not default and not (isinstance(value, str) and value == default):
                raise _NotRecorded(f"{key}=")
            del options[key]
    return options


def _ufunc_reduce(ufunc, x, axis=0, dtype=None, keepdims=False, initial=_NOVALUE):
    x = _np_cast(_np_tensor(x), dtype)
    out = _UFUNC_REDUCTIONS[ufunc](x, _axes(x, axis, ufunc=True), keepdims=keepdims)
    return out if initial is _NOVALUE else _ufunc_call(ufunc, _UFUNCS[ufunc], (out, initial))


def _ufunc_accumulate(ufunc, x, axis=0, dtype=None):
    x = _np_cast(_np_tensor(x), dtype)
    if x.ndim == 0:
        raise ValueError(f"np.{ufunc.__name__}.accumulate: cannot accumulate a 0-d array")
    return _UFUNC_SCANS[ufunc](x, axis)


def _ufunc_outer(ufunc, a, b, dtype=None):
    like = _tensors((a, b))[0]
    a = _np_tensor(a, like)
    return _ufunc_call(ufunc, _UFUNCS[ufunc], (a.reshape(a.shape + (1,) * np.ndim(b)), b),
                       dtype)


def _array_ufunc(self, ufunc, method, *inputs, **kwargs):
    """Tensor.__array_ufunc__: record ufunc.method(*inputs) or refuse it (see above)."""
    tensors = _tensors(inputs)
    grad = is_grad_enabled() and (builtins.any(t._rg for t in tensors) or _needs_grad(kwargs))
    try:
        if method not in ("__call__", "reduce", "accumulate", "outer"):
            raise _NotRecorded(None)
        options = _ufunc_options(method, kwargs) if kwargs else {}
        if not builtins.any(_is_float(t.dtype) for t in tensors):
            result = getattr(ufunc, method)(*_unwrap(inputs), **_unwrap(kwargs))
            return _on_device(result, (tensors or [self])[0]._device)
        table = {"__call__": _UFUNCS, "outer": _UFUNCS, "reduce": _UFUNC_REDUCTIONS,
                 "accumulate": _UFUNC_SCANS}[method]
        if ufunc not in table:
            raise _NotRecorded(None)
    except _NotRecorded as e:
        if grad:
            name = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
            raise _refusal(name, e.args[0]) from None
        return getattr(ufunc, method)(*_unwrap(inputs), **_unwrap(kwargs))
    if method == "__call__":
        return _ufunc_call(ufunc, _UFUNCS[ufunc], inputs, like=tensors[0], **options)
    return {"reduce": _ufunc_reduce, "accumulate": _ufunc_accumulate,
            "outer": _ufunc_outer}[method](ufunc, *inputs, **options)


# ---- functions: reductions -------------------------------------------------------------------

def _axes(x, axis, ufunc=False):
    """axis as a tuple of axes of x (None for all), checked as NumPy checks it; the reductions
    made of ufuncs also take the axis 0 or -1 of a 0-d array."""
    if ufunc and x.ndim == 0 and not isinstance(axis, tuple) and axis in (0, -1):
        return ()
    return None if axis is None else np.lib.array_utils.normalize_axis_tuple(axis, x.ndim)


def _reduction(method, combine):
    """np.sum, np.prod, np.max ...: method(x, axes, keepdims=...), with NumPy's `initial`
    joined by the ufunc `combine`."""
    def impl(a, axis=None, dtype=None, keepdims=False, initial=_NOVALUE):
        x = _np_cast(_np_tensor(a), dtype)
        out = method(x, _axes(x, axis, ufunc=True), keepdims=keepdims)
        return out if initial is _NOVALUE else _ufunc_call(combine, _UFUNCS[combine],
                                                           (out, initial))
    return impl


def _nan_filled(method, fill):
    """method on x with its nan replaced by fill (np.nansum, np.nanprod, np.nancumsum ...)."""
    def impl(x, *args, **kwargs):
        return method(where(x.isnan(), fill, x), *args, **kwargs)
    return impl


def _nan_extreme(method, fill):
    """np.nanmax, np.nanmin: the extreme of the values that are not nan (nan if none is)."""
    def impl(x, axis=None, keepdims=False):
        out = method(where(x.isnan(), fill, x), axis, keepdims=keepdims)
        return where(x.isnan().all(axis, keepdims=keepdims), math.nan, out)
    return impl


def _np_mean(a, axis=None, dtype=None, keepdims=False):
    x = _np_cast(_np_tensor(a), dtype)
    return x.mean(_axes(x, axis), keepdims=keepdims)


def _np_nanmean(a, axis=None, dtype=None, keepdims=False):
    x = _np_cast(_np_tensor(a), dtype)
    return x.nanmean(_axes(x, axis, ufunc=True), keepdims=keepdims)


def _variance(x, axis, ddof, keepdims, mean, nan):
    """NumPy's var: the mean square deviation from the mean (or the given `mean`), divided by
    count - ddof; with nan=True, of the values that are not nan."""
    valid = ~x.isnan() if nan else None
    if nan:
        count = valid.sum(axis, keepdims=True).astype(x.dtype)
        x = where(valid, x, 0)
    else:
        count = x.numel() // builtins.max(x.sum(axis, keepdims=True).numel(), 1)
    centre = x.sum(axis, keepdims=True) / count if mean is _NOVALUE else _np_tensor(mean, x)
    deviation = x - centre
    if nan:
        deviation = where(valid, deviation, 0)
    total = (deviation * deviation).sum(axis, keepdims=keepdims)
    if not nan:
        return total / builtins.max(count - ddof, 0)
    dof = count - ddof if keepdims else (count - ddof).reshape(total.shape)
    return where(dof > 0, total / where(dof > 0, dof, 1), math.nan)


def _spread(root, nan=False):
    """np.var and np.std (root=True), and their nan versions."""
    def impl(a, axis=None, dtype=None, ddof=0, keepdims=False, mean=_NOVALUE,
             correction=_NOVALUE):
        if correction is not _NOVALUE:
            if ddof != 0:
                raise ValueError("ddof and correction can't be provided simultaneously.")
            ddof = correction
        x = _np_cast(_floating(_np_tensor(a)), dtype)
        v = _variance(x, _axes(x, axis, ufunc=nan), ddof, keepdims, mean, nan)
        if not root:
            return v
        zero = v == 0  # the gradient is 0 where the spread is, as torch.std
        return where(zero, 0.0, where(zero, 1.0, v).sqrt())
    return impl


def _np_ptp(a, axis=None, keepdims=False):
    x = _np_tensor(a)
    axes = _axes(x, axis, ufunc=True)
    return x.amax(axes, keepdims=keepdims) - x.amin(axes, keepdims=keepdims)


def _np_all_any(method):
    def impl(a, axis=None, keepdims=False):
        x = _np_tensor(a)
        return method(x, _axes(x, axis, ufunc=True), keepdims=keepdims)
    return impl


def _np_average(a, axis=None, weights=None, returned=False, keepdims=False):
    x = _np_tensor(a)
    axes = _axes(x, axis)
    if weights is None:
        avg = x.mean(axes, keepdims=keepdims)
        scale = _constant(np.asarray(x.numel() / builtins.max(avg.numel(), 1), avg.dtype), x)
    else:
        w = _np_tensor(weights, x)
        if w.shape != x.shape:
            if axes is None:
                raise TypeError("Axis must be specified when shapes of a and weights differ.")
            if w.shape != tuple(x.shape[i] for i in axes):
                raise ValueError("Shape of weights must be consistent with shape of a along "
                                 "specified axis.")
            w = w.permute(list(np.argsort(axes))).reshape(
                tuple(n if i in axes else 1 for i, n in enumerate(x.shape)))
        dtype = np.result_type(x.dtype, w.dtype)
        x, w = x.astype(dtype), w.astype(dtype)
        scale = w.expand(np.broadcast_shapes(w.shape, x.shape)).sum(axes, keepdims=keepdims)
        if bool((scale.detach() == 0).any()):
            raise ZeroDivisionError("Weights sum to zero, can't be normalized")
        avg = (x * w).sum(axes, keepdims=keepdims) / scale
    if returned:
        return avg, scale.expand(avg.shape)
    return avg


# ---- functions: medians and quantiles ---------------------------------------------------------

def _along_last(x, axis):
    """x with the axes of `axis` (None: all) merged into a last axis, and the shape of the
    reduction with keepdims."""
    axes = tuple(range(x.ndim)) if axis is None else _axes(x, axis)
    keep = [i for i in range(x.ndim) if i not in axes]
    y = x.permute(keep + sorted(axes)).reshape(tuple(x.shape[i] for i in keep) + (-1,))
    return y, tuple(1 if i in axes else n for i, n in enumerate(x.shape))


def _median(x, axis, keepdims, nan):
    y, kept = _along_last(_floating(x), axis)
    s = y.sort(-1).values  # nan last
    if nan:
        count = (~y.detach().isnan()).sum(-1, keepdims=True)
        low, high = (count - 1).clamp(0, None) // 2, count // 2
        out = (s.take_along_dim(low, -1) + s.take_along_dim(high.clamp(None, s.shape[-1] - 1),
                                                            -1)).squeeze(-1) * 0.5
        out = where(count.squeeze(-1) == 0, math.nan, out)
    else:
        n = y.shape[-1]
        out = s[..., (n - 1) // 2:n // 2 + 1].mean(-1)
        if n:
            out = where(s[..., -1].isnan(), s[..., -1], out)
    return out.reshape(kept) if keepdims else out


def _np_median(a, axis=None, overwrite_input=False, keepdims=False):
    return _median(_np_tensor(a), axis, keepdims, nan=False)


def _np_nanmedian(a, axis=None, overwrite_input=False, keepdims=False):
    return _median(_np_tensor(a), axis, keepdims, nan=True)


# NumPy's quantile methods that simplegrad records: the virtual index into the n sorted values
_QUANTILE_METHODS = {
    "linear": lambda n, q: (n - 1) * q,
    "lower": lambda n, q: ((n - 1) * q).floor(),
    "higher": lambda n, q: ((n - 1) * q).ceil(),
    "nearest": lambda n, q: ((n - 1) * q).round(),
    "midpoint": lambda n, q: (((n - 1) * q).floor() + ((n - 1) * q).ceil()) * 0.5,
}
_OTHER_QUANTILE_METHODS = ("inverted_cdf", "averaged_inverted_cdf", "closest_observation",
                           "interpolated_inverted_cdf", "hazen", "weibull", "median_unbiased",
                           "normal_unbiased")


def _quantile(x, q, axis, method, keepdims, weights, nan, weak):
    """np.quantile's values (q in [0, 1], a tensor), by NumPy's rules for `method`."""
    if method in _OTHER_QUANTILE_METHODS or weights is not None:
        raise _NotRecorded(f"method={method!r}" if weights is None else "weights=")
    if method not in _QUANTILE_METHODS:
        raise ValueError(f"{method!r} is not a valid method. Use one of: "
                         f"{tuple(_QUANTILE_METHODS) + _OTHER_QUANTILE_METHODS}")
    if q.ndim > 2:
        raise ValueError("q must be a scalar or 1d")
    y, kept = _along_last(_floating(x), axis)
    s = y.sort(-1).values  # nan last
    batch, last = y.shape[:-1], y.shape[-1] - 1
    if nan:  # each slice's count of values that are not nan
        count = (~y.detach().isnan()).sum(-1).astype(q.dtype).reshape(batch + (1,) * q.ndim)
    else:
        count = _constant(np.full(batch + (1,) * q.ndim, y.shape[-1], q.dtype), y)
    virtual = _QUANTILE_METHODS[method](count, q)
    # NumPy's _get_indexes: the neighbours of the virtual index, clipped to [0, count - 1]
    top, below = count - 1, virtual.detach().floor()
    previous = where(virtual >= top, top, where(virtual < 0, 0, below))
    following = where(virtual >= top, top, where(virtual < 0, 0, below + 1))
    if nan:  # a slice of nan alone reads its last element (a nan)
        previous, following = where(count == 0, last, previous), where(count == 0, last, following)
    flat = batch + (-1,)
    gather = [s.take_along_dim(i.astype(np.int64).reshape(flat), -1).reshape(virtual.shape)
              for i in (previous, following)]
    if method == "midpoint":
        gamma = (virtual.detach() % 1 != 0).astype(q.dtype) * 0.5
    else:
        gamma = virtual - previous
    gamma = gamma.astype(s.dtype) if weak else gamma
    a, b = gather
    if method in ("lower", "higher", "nearest"):
        out = a.astype(s.dtype)
    else:
        out = where(gamma >= 0.5, b - (b - a) * (1 - gamma), a + (b - a) * gamma)
    if not nan:
        has_nan = s[..., -1:].isnan().reshape(batch + (1,) * q.ndim) if last >= 0 else False
        out = where(has_nan, math.nan, out)
    out = out.movedim(tuple(range(len(batch), out.ndim)), tuple(range(q.ndim)))
    return out.reshape(q.shape + kept) if keepdims else out


def _quantile_function(scale, nan):
    """np.quantile (scale 1), np.percentile (scale 100) and their nan versions."""
    def impl(a, q, axis=None, overwrite_input=False, method="linear", keepdims=False,
             weights=None, interpolation=None):
        if interpolation is not None:
            raise _NotRecorded("interpolation=")
        x = _np_tensor(a)
        if isinstance(q, Tensor):
            qt = (q if _is_float(q.dtype) else q.astype(np.float64)) / scale
        else:
            qt = _constant(np.true_divide(q, scale), x)
        values = qt.detach().numpy()
        if not (np.all(values >= 0) and np.all(values <= 1)):
            raise ValueError("Percentiles must be in the range [0, 100]" if scale == 100 else
                             "Quantiles must be in the range [0, 1]")
        return _quantile(x, qt, axis, method, keepdims, weights, nan, type(q) in (int, float))
    return impl


# ---- functions: sorting and running reductions --------------------------------------------------

def _flattened(x, axis):
    """x flattened when axis is None (NumPy's rule for sort, cumsum ...), and the axis."""
    if axis is None:
        return x.reshape(-1), 0
    return x, np.lib.array_utils.normalize_axis_index(axis, x.ndim)


def _np_sort(a, axis=-1, kind=None, order=None, stable=None):
    if order is not None:
        raise _NotRecorded("order=")
    x, axis = _flattened(_np_tensor(a), axis)
    return x.sort(axis).values


def _np_argsort(a, axis=-1, kind=None, order=None, stable=None):
    if order is not None:
        raise _NotRecorded("order=")
    return Tensor.argsort(*_flattened(_np_tensor(a), axis))


def _np_arg(method):
    def impl(a, axis=None, keepdims=False):
        return method(_np_tensor(a), axis, keepdims=keepdims)
    return impl


def _scan(method):
    """np.cumsum, np.cumprod and their nan versions: axis None scans the flattened array."""
    def impl(a, axis=None, dtype=None):
        x = _np_cast(_np_tensor(a), dtype)
        return method(*_flattened(x.reshape(1) if x.ndim == 0 else x, axis))
    return impl


def _cumulative(method, identity):
    """np.cumulative_sum and np.cumulative_prod (the array API's scans)."""
    def impl(x, axis=None, dtype=None, include_initial=False):
        x = _np_cast(_np_tensor(x), dtype)
        x = x.reshape(1) if x.ndim == 0 else x
        if axis is None:
            if x.ndim > 1:
                raise ValueError("For arrays which have more than one dimension ``axis`` "
                                 "argument is required.")
            axis = 0
        out = method(x, axis)
        if include_initial:
            shape = list(out.shape)
            shape[_axis("cumulative", out, axis)] = 1
            out = cat([_zeros(shape, out.dtype, out) + identity, out], axis)
        return out
    return impl


def _np_diff(a, n=1, axis=-1, prepend=_NOVALUE, append=_NOVALUE):
    x = _np_tensor(a)
    if n == 0:
        return x
    if n < 0:
        raise ValueError(f"order must be non-negative but got {n!r}")
    if x.ndim == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    axis = _axis("diff", x, axis)
    parts = []
    for extra in (prepend, x, append):
        if extra is not _NOVALUE:
            extra = _np_tensor(extra, x)
            if extra.ndim == 0:
                extra = extra.expand(x.shape[:axis] + (1,) + x.shape[axis + 1:])
            parts.append(extra)
    return _joined(parts, axis).diff(n, axis)


def _np_ediff1d(ary, to_end=None, to_begin=None):
    x = _np_tensor(ary).reshape(-1)
    parts = [x[1:] - x[:-1]]
    for extra, at in ((to_begin, 0), (to_end, len(parts) + 1)):
        if extra is not None:
            extra = _np_tensor(extra, x)
            if not np.can_cast(extra.dtype, x.dtype, casting="same_kind"):
                raise TypeError(f"dtype of `{'to_begin' if at == 0 else 'to_end'}` must be "
                                f"compatible with input `ary` under the `same_kind` rule.")
            parts.insert(at, extra.astype(x.dtype).reshape(-1))
    return cat(parts)


def _np_gradient(f, varargs=(), axis=None, edge_order=1):
    f = _floating(_np_tensor(f))
    axes = tuple(range(f.ndim)) if axis is None else _axes(f, axis)
    if not varargs:
        spacings = [1.0] * len(axes)
    elif len(varargs) == 1 and np.ndim(_host(varargs[0])) == 0:
        spacings = list(varargs) * len(axes)
    elif len(varargs) == len(axes):
        spacings = []
        for i, distances in zip(axes, varargs):
            if np.ndim(_host(distances)) == 0:
                spacings.append(distances)
                continue
            distances = _np_tensor(distances, f)
            if not _is_float(distances.dtype):
                distances = distances.astype(np.float64)
            if distances.ndim != 1:
                raise ValueError("distances must be either scalars or 1d")
            if len(distances) != f.shape[i]:
                raise ValueError("when 1d, distances must match the length of the "
                                 "corresponding dimension")
            steps = distances[1:] - distances[:-1]
            host = steps.detach().numpy()
            spacings.append(steps[0] if bool((host == host[0]).all()) else steps)
    else:
        raise TypeError("invalid number of arguments")
    if edge_order > 2:
        raise ValueError("'edge_order' greater than 2 not supported")
    out = [_gradient_along(f, i, dx, edge_order) for i, dx in zip(axes, spacings)]
    return out[0] if len(out) == 1 else tuple(out)


def _gradient_along(f, axis, dx, edge_order):
    """np.gradient along one axis: second-order central differences inside, first- or
    second-order one-sided ones at the edges, for a uniform (scalar) or 1-d spacing."""
    if f.shape[axis] < edge_order + 1:
        raise ValueError("Shape of array too small to calculate a numerical gradient, at least "
                         "(edge_order + 1) elements are required.")
    lead = (slice(None),) * axis

    def at(s):
        return f[lead + (s,)]
    uniform = not isinstance(dx, Tensor) or dx.ndim == 0
    if uniform:
        inner_ = (at(slice(2, None)) - at(slice(None, -2))) / (2.0 * dx)
    else:
        shape = (1,) * axis + (-1,) + (1,) * (f.ndim - axis - 1)
        dx1, dx2 = dx[:-1], dx[1:]
        a = (-dx2 / (dx1 * (dx1 + dx2))).reshape(shape)
        b = ((dx2 - dx1) / (dx1 * dx2)).reshape(shape)
        c = (dx1 / (dx2 * (dx1 + dx2))).reshape(shape)
        inner_ = a * at(slice(None, -2)) + b * at(slice(1, -1)) + c * at(slice(2, None))
    if edge_order == 1:
        first = (at(slice(1, 2)) - at(slice(0, 1))) / (dx if uniform else dx[0])
        last = (at(slice(-1, None)) - at(slice(-2, -1))) / (dx if uniform else dx[-1])
    else:
        if uniform:
            a, b, c = -1.5 / dx, 2.0 / dx, -0.5 / dx
        else:
            dx1, dx2 = dx[0], dx[1]
            a = -(2.0 * dx1 + dx2) / (dx1 * (dx1 + dx2))
            b = (dx1 + dx2) / (dx1 * dx2)
            c = -dx1 / (dx2 * (dx1 + dx2))
        first = a * at(slice(0, 1)) + b * at(slice(1, 2)) + c * at(slice(2, 3))
        if uniform:
            a, b, c = 0.5 / dx, -2.0 / dx, 1.5 / dx
        else:
            dx1, dx2 = dx[-2], dx[-1]
            a = dx2 / (dx1 * (dx1 + dx2))
            b = -(dx2 + dx1) / (dx1 * dx2)
            c = (2.0 * dx2 + dx1) / (dx2 * (dx1 + dx2))
        last = a * at(slice(-3, -2)) + b * at(slice(-2, -1)) + c * at(slice(-1, None))
    return cat([first.astype(f.dtype), inner_.astype(f.dtype), last.astype(f.dtype)], axis)


def _np_trapezoid(y, x=None, dx=1.0, axis=-1):
    y = _np_tensor(y)
    i = np.lib.array_utils.normalize_axis_index(axis, y.ndim)
    if x is None:
        d = dx
    else:
        x = _np_tensor(x, y)
        d = x.diff(1, axis) if x.ndim != 1 else (x[1:] - x[:-1]).reshape(
            (1,) * i + (-1,) + (1,) * (y.ndim - i - 1))
        dtype = np.result_type(d.dtype, y.dtype)
        d, y = d.astype(dtype), y.astype(dtype)
    lead = (slice(None),) * i
    return (d * (y[lead + (slice(1, None),)] + y[lead + (slice(None, -1),)]) / 2.0).sum(axis)


# ---- functions: products ------------------------------------------------------------------------

def _pair(a, b):
    """a and b as tensors of NumPy's common dtype."""
    like = _tensors((a, b))[0]
    a, b = _np_tensor(a, like), _np_tensor(b, like)
    dtype = np.result_type(a.dtype, b.dtype)
    return a.astype(dtype), b.astype(dtype)


def _np_dot(a, b):
    """np.dot: a product of scalars, a matrix product for 1-d and 2-d operands, else the sum
    over a's last axis and b's second-to-last."""
    a, b = _pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if a.ndim <= 2 and b.ndim <= 2:
        return matmul(a, b)
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(f"shapes {a.shape} and {b.shape} not aligned")
    return tensordot(a, b, ([-1], [-2 if b.ndim > 1 else 0]))


def _np_vdot(a, b):
    a, b = _pair(a, b)
    if a.numel() != b.numel():
        raise ValueError("cannot reshape array: vdot needs two arrays of one size")
    return matmul(a.reshape(-1), b.reshape(-1))


def _np_outer(a, b):
    a, b = _pair(a, b)
    return a.reshape(-1, 1) * b.reshape(1, -1)


def _np_einsum(operands, optimize=False, dtype=None, order="K", casting="safe"):
    """np.einsum, in both forms: subscripts and operands, or operands alternating with their
    lists of axes (the sublist form, with an optional list of output axes last)."""
    like = _tensors(operands)[0]
    operands = list(operands)
    if isinstance(operands[0], str):
        arrays = range(1, len(operands))
    else:
        arrays = range(0, len(operands) - len(operands) % 2, 2)
    for i in arrays:
        operands[i] = _np_cast(_np_tensor(operands[i], like), dtype)
    return einsum(*operands)


def _np_cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    a, b = _pair(a, b)
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = a.movedim(axisa, -1), b.movedim(axisb, -1)
    if a.shape[-1] not in (2, 3) or b.shape[-1] not in (2, 3):
        raise ValueError("incompatible dimensions for cross product\n(dimension must be 2 or 3)")
    if a.shape[-1] == 2 or b.shape[-1] == 2:
        warnings.warn("Arrays of 2-dimensional vectors are deprecated. Use arrays of "
                      "3-dimensional vectors instead. (deprecated in NumPy 2.0)",
                      DeprecationWarning, stacklevel=4)
    a0, a1, a2 = (a[..., i] if i < a.shape[-1] else None for i in range(3))
    b0, b1, b2 = (b[..., i] if i < b.shape[-1] else None for i in range(3))
    z = a0 * b1 - a1 * b0
    if a2 is None and b2 is None:
        return z
    x = a1 * b2 if a2 is None else (-a2 * b1 if b2 is None else a1 * b2 - a2 * b1)
    y = -a0 * b2 if a2 is None else (a2 * b0 if b2 is None else a2 * b0 - a0 * b2)
    shape = np.broadcast_shapes(x.shape, y.shape, z.shape)
    return stack([x.expand(shape), y.expand(shape), z.expand(shape)], -1).movedim(-1, axisc)


def _np_kron(a, b):
    return kron(*_pair(a, b))


def _np_inner(a, b):
    return inner(*_pair(a, b))


def _np_tensordot(a, b, axes=2):
    return tensordot(*_pair(a, b), axes)


def _np_trace(a, offset=0, axis1=0, axis2=1, dtype=None):
    x = _np_tensor(a)
    if x.ndim < 2:
        raise ValueError("diag requires an array of at least two dimensions")
    return _np_cast(x.diagonal(offset, axis1, axis2), dtype).sum(-1)


def _np_tri(lower):
    """np.tril and np.triu: zeros outside NumPy's np.tri mask of the last two axes (a 1-d input
    is repeated as the rows of a matrix)."""
    def impl(m, k=0):
        x = _np_tensor(m)
        zero = _zeros((1,), x.dtype, x)
        if lower:
            return where(_constant(np.tri(*x.shape[-2:], k=k, dtype=bool), x), x, zero)
        return where(_constant(np.tri(*x.shape[-2:], k=k - 1, dtype=bool), x), zero, x)
    return impl


# ---- functions: joining and splitting ----------------------------------------------------------

def _joinable(arrays, dtype=None):
    """The arrays as tensors of NumPy's common dtype (or `dtype`)."""
    like = _tensors(arrays)[0]
    tensors = [_np_tensor(x, like) for x in arrays]
    common = np.result_type(*(t.dtype for t in tensors)) if dtype is None else dtype
    return [t.astype(common) for t in tensors]


def _joined(tensors, axis):
    if builtins.any(t.ndim == 0 for t in tensors):
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    return cat(_joinable(tensors), axis)


def _np_concatenate(arrays, axis=0, dtype=None, casting="same_kind"):
    tensors = _joinable(arrays, dtype)
    if axis is None:
        tensors, axis = [t.reshape(-1) for t in tensors], 0
    return _joined(tensors, axis)


def _np_stack(arrays, axis=0, dtype=None, casting="same_kind"):
    return stack(_joinable(arrays, dtype), axis)


def _np_vstack(tup, dtype=None, casting="same_kind"):
    return _joined([_at_least(t, 2) for t in _joinable(tup, dtype)], 0)


def _np_hstack(tup, dtype=None, casting="same_kind"):
    tensors = [_at_least(t, 1) for t in _joinable(tup, dtype)]
    return _joined(tensors, 0 if tensors and tensors[0].ndim == 1 else 1)


def _np_dstack(tup):
    return _joined([_at_least(t, 3) for t in _joinable(tup)], 2)


def _np_column_stack(tup):
    return _joined([t.reshape(-1, 1) if t.ndim < 2 else t for t in _joinable(tup)], 1)


def _np_append(arr, values, axis=None):
    x, v = _joinable([arr, values])
    if axis is None:
        x, v, axis = x.reshape(-1), v.reshape(-1), 0
    return _joined([x, v], axis)


def _block_depth(arrays):
    """How deeply np.block's lists nest, along their first elements."""
    depth = 0
    while isinstance(arrays, list):
        depth, arrays = depth + 1, arrays[0] if arrays else None
    return depth


def _np_block(arrays):
    """np.block: nested lists joined along the last axes, the innermost lists along -1."""
    depth = _block_depth(arrays)
    tensors = _joinable(list(_contents(arrays)))
    ndim = builtins.max([depth] + [t.ndim for t in tensors])
    tensors = iter(tensors)

    def build(level, item):
        if not isinstance(item, list):
            if level != depth:
                raise ValueError("List depths are mismatched. np.block needs equally deep lists")
            t = next(tensors)
            return t.reshape((1,) * (ndim - t.ndim) + t.shape)
        if level == depth:
            raise ValueError("List depths are mismatched. np.block needs equally deep lists")
        if not item:
            raise ValueError("Lists cannot be empty")
        return cat([build(level + 1, i) for i in item], level - depth)
    return build(0, arrays) if isinstance(arrays, list) else next(tensors)


def _np_array_split(ary, indices_or_sections, axis=0):
    """np.array_split: equal pieces (the first ones one larger), or cut at the indices, with
    Python's slicing rules for them."""
    x = _np_tensor(ary)
    axis = _axis("array_split", x, axis)
    total = x.shape[axis]
    if np.ndim(indices_or_sections) == 0:
        sections = int(indices_or_sections)
        if sections <= 0:
            raise ValueError("number sections must be larger than 0.")
        each, extras = divmod(total, sections)
        bounds = np.cumsum([0] + [each + 1] * extras + [each] * (sections - extras)).tolist()
    else:
        bounds = [0] + [operator.index(i) for i in _host(indices_or_sections)] + [total]
    lead = (slice(None),) * axis
    return [x[lead + (slice(start, end),)] for start, end in zip(bounds, bounds[1:])]


def _np_split(ary, indices_or_sections, axis=0):
    x = _np_tensor(ary)
    if np.ndim(indices_or_sections) == 0 and x.shape[_axis("split", x, axis)] % _host(
            indices_or_sections):
        raise ValueError("array split does not result in an equal division")
    return _np_array_split(x, indices_or_sections, axis)


def _np_split_along(name, min_ndim, axis):
    """np.hsplit, np.vsplit and np.dsplit."""
    def impl(ary, indices_or_sections):
        x = _np_tensor(ary)
        if x.ndim < min_ndim:
            raise ValueError(f"{name} only works on arrays of {min_ndim} or more dimensions")
        return _np_split(x, indices_or_sections, 0 if x.ndim == 1 else axis)
    return impl


def _np_unstack(x, axis=0):
    x = _np_tensor(x)
    if x.ndim == 0:
        raise ValueError("Input array must be at least 1-d.")
    return x.unbind(axis)


# ---- functions: movement -----------------------------------------------------------------------

def _at_least(x, ndim):
    return (_as_1d, _as_2d, _as_3d)[ndim - 1](x)


def _np_atleast(ndim):
    """np.atleast_1d, _2d and _3d: one array, or a tuple of them."""
    def impl(arys):
        out = tuple(_at_least(_np_tensor(a, _tensors(arys)[0]), ndim) for a in arys)
        return out[0] if len(out) == 1 else out
    return impl


def _gathered(move, *sources, dtype=None, like=None):
    """The elements of the sources where `move` (a NumPy function that only moves, repeats or
    drops elements) puts them: move runs on the positions of the elements, which are then
    gathered, so that NumPy's semantics hold exactly and the gradient flows back."""
    like = _tensors(sources)[0] if like is None else like
    tensors = [_np_tensor(s, like) for s in sources]
    dtype = tensors[0].dtype if dtype is None else dtype
    starts = np.cumsum([0] + [t.numel() for t in tensors])
    positions = move(*(np.arange(s, s + t.numel()).reshape(t.shape)
                       for s, t in zip(starts, tensors)))
    elements = cat([t.astype(dtype).reshape(-1) for t in tensors])
    return elements[_constant(np.asarray(positions, np.int64), like)]


def _np_reshape(a, shape=None, order="C", newshape=None, copy=None):
    x = _np_tensor(a)
    if newshape is not None:
        if shape is not None:
            raise TypeError("You cannot specify 'newshape' and 'shape' arguments at the same "
                            "time.")
        shape = newshape
    if shape is None:
        raise TypeError("reshape() missing 1 required positional argument: 'shape'")
    if not isinstance(order, str):
        raise TypeError(f"order must be str, not {type(order).__name__}")
    shape = _shape(shape)
    if order == "F":  # column-major: reverse the axes before and after
        return x.permute(tuple(reversed(range(x.ndim)))).reshape(shape[::-1]).permute(
            tuple(reversed(range(len(shape)))))
    if order not in ("C", "A"):
        raise ValueError(f"order must be one of 'C', 'F', 'A', or 'K' (got '{order}')")
    return x.reshape(shape)


def _np_ravel(a, order="C"):
    return _np_reshape(a, -1, order if order != "K" else "C")


def _np_squeeze(a, axis=None):
    x = _np_tensor(a)
    if x.ndim == 0 or axis is None:
        return x.squeeze()
    axes = _axes(x, axis)
    if builtins.any(x.shape[i] != 1 for i in axes):
        raise ValueError("cannot select an axis to squeeze out which has size not equal to one")
    return x.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes))


def _np_expand_dims(a, axis):
    x = _np_tensor(a)
    axes = np.lib.array_utils.normalize_axis_tuple(
        axis, x.ndim + (len(axis) if isinstance(axis, (tuple, list)) else 1))
    sizes = iter(x.shape)
    return x.reshape(tuple(1 if i in axes else next(sizes) for i in range(x.ndim + len(axes))))


def _np_rollaxis(a, axis, start=0):
    x = _np_tensor(a)
    n = x.ndim
    axis = _axis("rollaxis", x, axis)
    start = start + n if start < 0 else start
    if not 0 <= start < n + 1:
        raise ValueError(f"'start' arg requires {-n} <= start < {n + 1}, but {start} was "
                         "passed in")
    start = start - 1 if axis < start else start
    order = [i for i in range(n) if i != axis]
    order.insert(start, axis)
    return x.permute(order)


def _np_transpose(a, axes=None):
    return _np_tensor(a).transpose(axes)


def _np_matrix_transpose(x):
    x = _np_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"Input array must be at least 2-dimensional, but it is {x.ndim}")
    return x.mT


def _np_broadcast_arrays(args, subok=False):
    tensors = [_np_tensor(a, _tensors(args)[0]) for a in args]
    shape = np.broadcast_shapes(*(t.shape for t in tensors))
    return tuple(t.expand(shape) for t in tensors)


def _np_flip(m, axis=None):
    x = _np_tensor(m)
    return x.flip(*(range(x.ndim) if axis is None else _axes(x, axis)))


def _np_roll(a, shift, axis=None):
    x = _np_tensor(a)
    if axis is None:
        return _np_roll(x.reshape(-1), shift, 0).reshape(x.shape)
    if np.ndim(_host(shift)) > 1 or np.ndim(_host(axis)) > 1:
        raise ValueError("'shift' and 'axis' should be scalars or 1D sequences")
    pairs = [(int(s), operator.index(i)) for s, i in np.broadcast(_host(shift), _host(axis))]
    return x.roll(*zip(*pairs)) if pairs else x


def _np_rot90(m, k=1, axes=(0, 1)):
    x = _np_tensor(m)
    axes = tuple(axes)
    if len(axes) != 2:
        raise ValueError("len(axes) must be 2.")
    if axes[0] == axes[1] or builtins.abs(axes[0] - axes[1]) == x.ndim:
        raise ValueError("Axes must be different.")
    k %= 4  # NumPy takes every k but 0, 1 and 2 for 3
    return x.rot90(k if k in (0, 1, 2) else 3, axes)


def _np_tile(A, reps):
    return _np_tensor(A).tile(*_shape(reps))


def _np_resize(a, new_shape):
    x = _np_tensor(a)
    if x.numel() == 0 or 0 in _shape(new_shape):
        return _zeros(_shape(new_shape), x.dtype, x)
    return _gathered(lambda p: np.resize(p, new_shape), x)


def _np_pad(array, pad_width, mode="constant", **kwargs):
    """np.pad: constant padding and the modes that copy elements (edge, reflect, symmetric,
    wrap), exactly as NumPy places them."""
    x = _np_tensor(array)
    if np.asarray(_host(pad_width)).dtype.kind not in "iu":
        raise TypeError("`pad_width` must be of integral type.")
    if mode == "constant":
        values = kwargs.pop("constant_values", 0)
        if kwargs:
            raise ValueError(f"unsupported keyword arguments for mode 'constant': {set(kwargs)}")
        return _gathered(lambda p, v: np.pad(p, pad_width, "constant", constant_values=v), x,
                         values)
    if mode not in ("edge", "reflect", "symmetric", "wrap") or kwargs.get(
            "reflect_type", "even") != "even":
        raise _NotRecorded(f"mode={mode!r}" + "".join(f", {k}={v!r}" for k, v in kwargs.items()))
    return _gathered(lambda p: np.pad(p, pad_width, mode, **kwargs), x)


def _np_take(a, indices, axis=None, mode="raise"):
    return _gathered(lambda p: np.take(p, _host(indices), axis, mode=mode), a,
                     like=_tensors((a, indices))[0])


def _np_take_along_axis(arr, indices, axis=-1):
    x = _np_tensor(arr)
    index = _np_tensor(indices, x)
    if axis is None:
        return x.reshape(-1).take_along_dim(index.reshape(-1), 0)
    if index.ndim != x.ndim:
        raise ValueError("`indices` and `arr` must have the same number of dimensions")
    return x.take_along_dim(index, axis)


def _np_choose(a, choices, mode="raise"):
    choices = list(choices) if isinstance(choices, (list, tuple)) else list(_np_tensor(choices))
    dtype = _result_type(*choices)
    return _gathered(lambda *ps: np.choose(_host(a), ps, mode=mode), *choices, dtype=dtype,
                     like=_tensors((a, choices))[0])


def _np_compress(condition, a, axis=None):
    return _gathered(lambda p: np.compress(_host(condition), p, axis), a,
                     like=_tensors((condition, a))[0])


def _np_extract(condition, arr):
    return _gathered(lambda p: np.extract(_host(condition), p), arr,
                     like=_tensors((condition, arr))[0])


def _np_insert(arr, obj, values, axis=None):
    return _gathered(lambda p, v: np.insert(p, _host(obj), v, axis), arr, values,
                     like=_tensors((arr, obj, values))[0])


def _np_delete(arr, obj, axis=None):
    return _gathered(lambda p: np.delete(p, _host(obj), axis), arr,
                     like=_tensors((arr, obj))[0])


def _np_repeat(a, repeats, axis=None):
    return _gathered(lambda p: np.repeat(p, _host(repeats), axis), a,
                     like=_tensors((a, repeats))[0])


def _np_trim_zeros(filt, trim="fb", axis=None):
    x = _np_tensor(filt)
    trim = trim.lower()
    if trim not in {"fb", "bf", "f", "b"}:
        raise ValueError(f"unexpected character(s) in `trim`: {trim!r}")
    axes = range(x.ndim) if axis is None else _axes(x, axis)
    nonzero = np.argwhere(x.detach().numpy())
    if nonzero.size == 0:
        start = stop = [0] * x.ndim
    else:
        start = nonzero.min(0) if "f" in trim else [None] * x.ndim
        stop = nonzero.max(0) + 1 if "b" in trim else [None] * x.ndim
    return x[tuple(slice(start[i], stop[i]) if i in axes else slice(None)
                   for i in range(x.ndim))]


def _np_fftshift(sign):
    """np.fft.fftshift (sign 1) and ifftshift (-1): a roll by half of each axis."""
    def impl(x, axes=None):
        x = _np_tensor(x)
        axes = tuple(range(x.ndim)) if axes is None else axes
        shift = [sign * (x.shape[i] // 2) for i in _axes(x, axes)]
        return _np_roll(x, shift if isinstance(axes, (tuple, list)) else shift[0], axes)
    return impl


# ---- functions: selection and elementwise --------------------------------------------------------

def _np_where(condition, x=_NOVALUE, y=_NOVALUE):
    if x is _NOVALUE and y is _NOVALUE:  # the indices where condition holds
        return _on_device(np.nonzero(_host(condition)), _tensors(condition)[0]._device)
    if x is _NOVALUE or y is _NOVALUE:
        raise ValueError("either both or neither of x and y should be given")
    like = _tensors((x, y, condition))[0]
    dtype = _result_type(x, y)
    x, y = (_np_tensor(v, like).astype(dtype) for v in (x, y))
    return where(_np_tensor(condition, like).astype(np.bool_), x, y)


def _np_select(condlist, choicelist, default=0):
    if len(condlist) != len(choicelist):
        raise ValueError("list of cases must be same length as list of conditions")
    if not condlist:
        raise ValueError("select with an empty condition list is not possible")
    choices = list(choicelist) + [default]
    dtype = _result_type(*choices)
    like = _tensors(choices)[0]
    conds = [_np_tensor(c, like) for c in condlist]
    for i, c in enumerate(conds):
        if c.dtype != np.bool_:
            raise TypeError(f"invalid entry {i} in condlist: should be boolean ndarray")
    choices = [_np_tensor(c, like).astype(dtype) for c in choices]
    shape = np.broadcast_shapes(*(t.shape for t in conds + choices))
    out = choices[-1].expand(shape)
    for cond, choice in zip(reversed(conds), reversed(choices[:-1])):
        out = where(cond, choice, out)
    return out


def _np_piecewise(x, condlist, funclist, args=(), **kw):
    """np.piecewise: each function applied to the elements its condition selects (later
    conditions win), a constant written there, or 0."""
    x = _np_tensor(x)
    condlist = _host(condlist)
    if np.isscalar(condlist) or (not isinstance(condlist[0], (list, np.ndarray))
                                 and x.ndim != 0):
        condlist = [condlist]
    conds = np.asarray(condlist, dtype=bool)
    if len(conds) == len(funclist) - 1:
        conds = np.concatenate([conds, ~np.any(conds, axis=0, keepdims=True)], axis=0)
    elif len(conds) != len(funclist):
        raise ValueError(f"with {len(conds)} condition(s), either {len(conds)} or "
                         f"{len(conds) + 1} functions are expected")
    flat = x.reshape(-1)
    out = _zeros(flat.shape, x.dtype, x)
    for cond, func in zip(conds, funclist):
        positions = _constant(np.flatnonzero(np.broadcast_to(cond, x.shape)), x)
        if callable(func):
            if not positions.numel():
                continue
            values = func(flat[positions], *args, **kw)
        else:
            values = func
        values = _np_tensor(values, x).astype(x.dtype).expand(positions.shape)
        out = out.index_copy(0, positions, values)
    return out.reshape(x.shape)


def _np_clip(a, a_min=_NOVALUE, a_max=_NOVALUE, min=_NOVALUE, max=_NOVALUE, **kwargs):
    if kwargs:
        raise _NotRecorded(", ".join(f"{k}=" for k in kwargs))
    if a_min is _NOVALUE and a_max is _NOVALUE:
        a_min, a_max = (None if v is _NOVALUE else v for v in (min, max))
    elif a_min is _NOVALUE or a_max is _NOVALUE:
        missing = "a_min" if a_min is _NOVALUE else "a_max"
        raise TypeError(f"clip() missing 1 required positional argument: '{missing}'")
    elif min is not _NOVALUE or max is not _NOVALUE:
        raise ValueError("Passing `min` or `max` keyword argument when `a_min` and `a_max` "
                         "are provided is forbidden.")
    x = _np_tensor(a)
    low, high = (None if v is None or v is _NOVALUE else _np_tensor(v, x) for v in (a_min, a_max))
    dtype = _result_type(x, *(v for v in (a_min, a_max) if v is not None and v is not _NOVALUE))
    if low is None and high is None:
        return x.astype(dtype) * 1
    return x.astype(dtype).clamp(None if low is None else low.astype(dtype),
                                 None if high is None else high.astype(dtype))


def _np_around(a, decimals=0):
    return _np_tensor(a).round(operator.index(decimals))


def _np_nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    if not copy:
        raise _NotRecorded("copy=False")
    return _np_tensor(x).nan_to_num(nan, posinf, neginf)


def _np_imag(val):
    x = _np_tensor(val)
    return _off_graph("imag", x, x._device.full(x.shape, 0, x.dtype))


def _np_angle(z, deg=False):
    # arctan2(0, x): 0 for x >= +0, pi for x <= -0; its gradient is zero
    x = _np_tensor(z)
    d = x._device
    data = d.arctan2(d.full(x.shape, 0, x.dtype), x._data)
    return _off_graph("angle", x, d.mul(data, 180 / math.pi) if deg else data)


def _np_interp(x, xp, fp, left=None, right=None, period=None):
    """np.interp, differentiable with respect to x, xp and fp."""
    like = _tensors((x, xp, fp))[0]
    x, xp, fp = (_np_tensor(v, like).astype(np.float64) for v in (x, xp, fp))
    if period is not None:
        if period == 0:
            raise ValueError("period must be a non-zero value")
        period, left, right = builtins.abs(period), None, None
        if xp.ndim != 1 or fp.ndim != 1:
            raise ValueError("Data points must be 1-D sequences")
        if xp.shape[0] != fp.shape[0]:
            raise ValueError("fp and xp are not of the same length")
        x, xp = x % period, xp % period
        order = _constant(np.argsort(xp.detach().numpy(), kind="stable"), xp)
        xp, fp = xp[order], fp[order]
        xp = cat([xp[-1:] - period, xp, xp[0:1] + period])
        fp = cat([fp[-1:], fp, fp[0:1]])
    if xp.ndim != 1 or fp.ndim != 1:
        raise ValueError("object too deep for desired array")
    if xp.shape[0] != fp.shape[0]:
        raise ValueError("fp and xp are not of the same length.")
    if xp.shape[0] == 0:
        raise ValueError("array of sample points is empty")
    n = xp.shape[0]
    low = fp[0] if left is None else _np_tensor(left, fp).astype(np.float64)
    high = fp[-1] if right is None else _np_tensor(right, fp).astype(np.float64)
    # j with xp[j] <= x < xp[j + 1], as NumPy's binary search
    j = searchsorted(xp.detach(), x.detach(), right=True) - 1
    inside = j.clamp(0, builtins.max(n - 2, 0))
    x0, y0 = xp[inside], fp[inside]
    if n > 1:
        x1, y1 = xp[inside + 1], fp[inside + 1]
        slope = (y1 - y0) / (x1 - x0)
        value = slope * (x - x0) + y0
        again = slope * (x - x1) + y1  # NumPy's second try where the first gives nan
        value = where(value.isnan(), where(again.isnan() & (y0 == y1), y0, again), value)
        value = where(x == x0, y0, value)
    else:
        value = y0
    value = where(j == n - 1, fp[-1], value)
    out = where(x < xp[0], low, where(x > xp[-1], high, value))
    return where(x.isnan(), x, out)


# ---- functions: polynomials, convolutions, statistics, grids ---------------------------------

def _np_polyval(p, x):
    p, x = _pair(p, x)
    y = _zeros(x.shape, x.dtype, x)
    for coefficient in p:
        y = y * x + coefficient
    return y


def _np_poly_add_sub(op):
    """np.polyadd and np.polysub: coefficient arrays aligned at their ends."""
    def impl(a1, a2):
        a1, a2 = (_at_least(t, 1) for t in _pair(a1, a2))
        width = builtins.max(len(a1), len(a2))
        a1, a2 = (cat([_zeros((width - len(t),), t.dtype, t), t]) if len(t) < width else t
                  for t in (a1, a2))
        return op(a1, a2)
    return impl


def _np_polymul(a1, a2):
    return _np_convolve(*(_at_least(t, 1) for t in _pair(a1, a2)))


def _np_polyder(p, m=1):
    m = int(m)
    if m < 0:
        raise ValueError("Order of derivative must be positive (see polyint)")
    p = _np_tensor(p)
    for _ in range(m):
        n = len(p) - 1
        p = p[:-1] * _constant(np.arange(n, 0, -1, dtype=np.result_type(p.dtype, int)), p)
    return p


def _np_polyint(p, m=1, k=None):
    m = int(m)
    if m < 0:
        raise ValueError("Order of integral must be positive (see polyder)")
    p = _np_tensor(p)
    k = _zeros((m,), np.float64, p) if k is None else _at_least(_np_tensor(k, p), 1)
    if len(k) == 1 and m > 1:
        k = k[0] * _constant(np.ones(m), p)
    if len(k) < m:
        raise ValueError("k must be a scalar or a rank-1 array of length 1 or >m.")
    for i in range(m):
        scale = _constant(np.arange(len(p), 0, -1, dtype=np.result_type(p.dtype, float)), p)
        p = cat(_joinable([p / scale, k[i:i + 1]]))
    return p


def _np_polydiv(u, v):
    """np.polydiv: (quotient, remainder) by long division, as NumPy computes them."""
    u, v = (_at_least(t, 1) + 0.0 for t in _pair(u, v))
    dtype = (u[0] + v[0]).dtype
    m, n = len(u) - 1, len(v) - 1
    scale = 1.0 / v[0]
    q = [_zeros((), dtype, u)] * builtins.max(m - n + 1, 1)
    r = u.astype(dtype)
    for k in range(m - n + 1):
        d = scale * r[k]
        q[k] = d
        r = cat([r[:k], r[k:k + n + 1] - d * v, r[k + n + 1:]])
    while bool(np.allclose(r[0].detach().numpy(), 0, rtol=1e-14)) and r.shape[-1] > 1:
        r = r[1:]
    return stack(q), r


def _np_poly(seq_of_zeros):
    roots = _at_least(_np_tensor(seq_of_zeros), 1)
    if roots.ndim == 2 and roots.shape[0] == roots.shape[1] != 0:
        raise _NotRecorded("a matrix (its eigenvalues)")
    if roots.ndim != 1:
        raise ValueError("input must be 1d or non-empty square 2d array.")
    roots = _floating(roots)
    if not len(roots):
        return roots.sum() * 0 + 1.0
    a = _zeros((1,), roots.dtype, roots) + 1
    for zero in roots:
        a = _np_convolve(a, stack([_zeros((), roots.dtype, roots) + 1, -zero]))
    return a


def _np_vander(x, N=None, increasing=False):
    x = _np_tensor(x)
    if x.ndim != 1:
        raise ValueError("x must be a one-dimensional array or sequence.")
    n = len(x) if N is None else operator.index(N)
    x = x.astype(np.promote_types(x.dtype, int)).reshape(-1, 1)
    ones = x._device.full((len(x), builtins.min(n, 1)), 1, x.dtype)
    columns = [_off_graph("vander", x[:, :builtins.min(n, 1)], ones)]  # x^0, slope 0
    if n > 1:
        columns.append(x.expand(len(x), n - 1).cumprod(1))
    v = cat(columns, 1)
    return v if increasing else v.flip(1)


def _correlation(a, v, mode):
    """sum_n a[n + k] v[n] for the k of `mode`, with len(a) >= len(v) >= 1 (NumPy's
    multiarray.correlate)."""
    n = len(v)
    left, right = {"valid": (0, 0), "same": (n // 2, n - n // 2 - 1),
                   "full": (n - 1, n - 1)}[mode]
    padded = a.pad((left, right)) if left or right else a
    return padded.windows(n) @ v


def _convolution_args(a, v, mode):
    a, v = (_at_least(t, 1) for t in _joinable([a, v]))
    if a.ndim > 1 or v.ndim > 1:
        raise ValueError("object too deep for desired array")
    if not len(a) or not len(v):
        raise ValueError(f"{'a' if not len(a) else 'v'} cannot be empty")
    modes = {0: "valid", 1: "same", 2: "full"}
    mode = modes.get(mode, mode)
    if mode not in ("valid", "same", "full"):
        raise ValueError(f"mode must be one of 'valid', 'same', or 'full' (got {mode!r})")
    return a, v, mode


def _np_convolve(a, v, mode="full"):
    a, v, mode = _convolution_args(a, v, mode)
    if len(v) > len(a):
        a, v = v, a
    return _correlation(a, v.flip(0), mode)


def _np_correlate(a, v, mode="valid"):
    if np.ndim(_host(a)) == 0 or np.ndim(_host(v)) == 0:
        raise ValueError("object of too small depth for desired array")
    a, v, mode = _convolution_args(a, v, mode)
    if len(v) > len(a):  # NumPy correlates the other way round and reverses
        return _correlation(v, a, mode).flip(0)
    return _correlation(a, v, mode)


def _np_cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None,
            dtype=None):
    """np.cov, with frequency and analytic weights (either may be a tensor)."""
    if ddof is not None and ddof != int(ddof):
        raise ValueError("ddof must be integer")
    like = _tensors((m, y, fweights, aweights))[0]
    m = _np_tensor(m, like)
    if m.ndim > 2:
        raise ValueError("m has more than 2 dimensions")
    y = None if y is None else _np_tensor(y, like)
    if y is not None and y.ndim > 2:
        raise ValueError("y has more than 2 dimensions")
    if dtype is None:
        dtype = np.result_type(m.dtype, *([] if y is None else [y.dtype]), np.float64)
    X = _as_2d(m.astype(dtype))
    if not rowvar and m.ndim != 1:
        X = X.T
    if X.shape[0] == 0:
        return _zeros((0, 0), dtype, X)
    if y is not None:
        y = _as_2d(y.astype(dtype))
        if not rowvar and y.shape[0] != 1:
            y = y.T
        X = cat([X, y], 0)
    ddof = (0 if bias else 1) if ddof is None else ddof
    w = None
    for name, weights in (("fweights", fweights), ("aweights", aweights)):
        if weights is None:
            continue
        weights = _np_tensor(weights, X).astype(np.float64)
        host = weights.detach().numpy()
        if name == "fweights" and not np.all(host == np.around(host)):
            raise TypeError("fweights must be integer")
        if weights.ndim > 1:
            raise RuntimeError(f"cannot handle multidimensional {name}")
        if weights.shape[0] != X.shape[1]:
            raise RuntimeError(f"incompatible numbers of samples and {name}")
        if np.any(host < 0):
            raise ValueError(f"{name} cannot be negative")
        w = weights if w is None else w * weights
        if name == "aweights":
            aweights = weights
    if w is None:
        avg, w_sum = X.mean(1), None
        fact = X.shape[1] - ddof
    else:
        w_sum = w.sum()
        avg = (X * w).sum(1) / w_sum
        if ddof == 0:
            fact = w_sum
        elif aweights is None:
            fact = w_sum - ddof
        else:
            fact = w_sum - ddof * (w * aweights).sum() / w_sum
    if float(fact) <= 0:
        warnings.warn("Degrees of freedom <= 0 for slice", RuntimeWarning, stacklevel=4)
        fact = 0.0
    X = X - avg[:, None]
    c = matmul(X, (X if w is None else X * w).T)
    return (c * (1 / fact if isinstance(fact, Tensor) else np.true_divide(1, fact))).squeeze()


def _np_corrcoef(x, y=None, rowvar=True, dtype=None):
    c = _np_cov(x, y, rowvar, dtype=dtype)
    if c.ndim == 0:
        return c / c
    d = c.diagonal()
    stddev = d.sqrt()
    c = c / stddev[:, None] / stddev[None, :]
    return c.clamp(-1, 1)


def _np_unwrap(p, discont=None, axis=-1, period=2 * math.pi):
    """np.unwrap: p plus multiples of period, a correction computed on the values, which
    is constant (its gradient is zero)."""
    x = _floating(_np_tensor(p))
    axis = _axis("unwrap", x, axis)
    host = x.detach().numpy()
    dd = np.diff(host, axis=axis)
    discont = period / 2 if discont is None else discont
    high = period / 2
    ddmod = np.mod(dd + high, period) - high
    np.copyto(ddmod, high, where=(ddmod == -high) & (dd > 0))
    correct = ddmod - dd
    np.copyto(correct, 0, where=np.abs(dd) < discont)
    lead = (slice(None),) * axis
    rest = x[lead + (slice(1, None),)] + _constant(correct.cumsum(axis), x)
    return cat([x[lead + (slice(0, 1),)], rest.astype(x.dtype)], axis)


def _np_linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0,
                 device=None):
    """np.linspace, differentiable with respect to start and stop."""
    num = operator.index(num)
    if num < 0:
        raise ValueError(f"Number of samples, {num}, must be non-negative.")
    like = _tensors((start, stop))[0]
    dt = _result_type(start, stop)
    dt = dt if _is_float(dt) else np.dtype(np.float64)
    start, stop = (_np_tensor(v, like).astype(dt) for v in (start, stop))
    div = (num - 1) if endpoint else num
    delta = stop - start
    y = _constant(np.arange(0, num, dtype=dt).reshape((-1,) + (1,) * delta.ndim), like)
    if div > 0:
        step = delta / div
        y = y / div * delta if bool((step.detach() == 0).any()) else y * step
    else:
        step, y = math.nan, y * delta
    y = y + start
    if endpoint and num > 1:
        y = cat([y[:-1], stop.expand(y.shape[1:]).unsqueeze(0)])
    if axis != 0:
        y = y.movedim(0, axis)
    if dtype is not None:
        y = (y.floor() if np.issubdtype(dtype, np.integer) else y).astype(dtype)
    return (y, step) if retstep else y


def _np_logspace(start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    if type(base) not in (int, float) and np.ndim(_host(base)):
        like = _tensors((start, stop, base))[0]
        start, stop, base = (_np_tensor(v, like) for v in (start, stop, base))
        ndim = builtins.max(start.ndim, stop.ndim, base.ndim)
        start, stop, base = (t.reshape((1,) * (ndim - t.ndim) + t.shape)
                             for t in (start, stop, base))
        base = _np_expand_dims(base, axis)
    y = _np_linspace(start, stop, num, endpoint, axis=axis)
    out = _ufunc_call(np.power, operator.pow, (base, y))
    return out if dtype is None else out.astype(dtype)


def _np_geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    like = _tensors((start, stop))[0]
    start, stop = (_np_tensor(v, None if isinstance(v, Tensor) else like) for v in (start, stop))
    if bool((start.detach() == 0).any()) or bool((stop.detach() == 0).any()):
        raise ValueError("Geometric sequence cannot include zero")
    dt = np.result_type(start.dtype, stop.dtype, float(num), np.dtype(dtype or np.float64))
    start, stop = start.astype(dt), stop.astype(dt)
    sign = start.detach().sign()
    start, stop = start / sign, stop / sign
    out = _np_logspace(start.log10(), stop.log10(), num, endpoint, 10.0, dt)
    if num > 0:  # the ends exactly, as NumPy writes them
        first = [start.expand(out.shape[1:]).unsqueeze(0)]
        last = [stop.expand(out.shape[1:]).unsqueeze(0)] if num > 1 and endpoint else []
        out = cat(first + [out[1:len(out) - len(last)]] + last)
    out = out * sign
    if axis != 0:
        out = out.movedim(0, axis)
    return out if dtype is None else out.astype(dtype)


def _np_meshgrid(xi, copy=True, sparse=False, indexing="xy"):
    if indexing not in ("xy", "ij"):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    shapes = [[-1 if j == i else 1 for j in range(len(xi))] for i in range(len(xi))]
    if indexing == "xy" and len(xi) > 1:  # the first two axes swap
        shapes[0][:2], shapes[1][:2] = [1, -1], [-1, 1]
    grids = tuple(_np_tensor(x, _tensors(xi)[0]).reshape(s) for x, s in zip(xi, shapes))
    return grids if sparse else _np_broadcast_arrays(grids)


def _np_bincount(x, weights=None, minlength=0):
    index = _host(x)
    counts = np.bincount(index, minlength=minlength)
    if weights is None:
        return _constant(counts, _tensors((x, weights))[0])
    w = _np_tensor(weights)
    if w.shape != np.shape(index):
        raise ValueError("The weights and list don't have the same length.")
    out = _zeros(counts.shape, np.float64, w)
    return out.index_add(0, _constant(np.asarray(index, np.int64).reshape(-1), w),
                         w.astype(np.float64).reshape(-1))


# ---- functions: np.linalg -----------------------------------------------------------------------

def _np_matrices(a):
    return _floating(_np_tensor(a))


def _np_solve(a, b):
    # NumPy 2 reads b as vectors only when it is 1-d; otherwise as matrices (..., n, k)
    a, b = _pair(a, b)
    a, b = _np_matrices(a), _floating(b)
    if b.ndim >= 2 and b.ndim == a.ndim - 1:
        b = b.unsqueeze(0)
    dtype = np.result_type(a.dtype, b.dtype)
    return solve(a.astype(dtype), b.astype(dtype))


def _np_qr(a, mode="reduced"):
    if mode == "raw":
        raise _NotRecorded("mode='raw'")
    if mode == "r":
        return _linalg_qr(_np_matrices(a), "reduced").R
    return _linalg_qr(_np_matrices(a), mode)


def _np_svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    if not compute_uv:
        return svdvals(_np_matrices(a))
    if hermitian:
        raise _NotRecorded("hermitian=True")
    return _linalg_svd(_np_matrices(a), full_matrices)


def _np_pinv(a, rcond=None, hermitian=False, rtol=_NOVALUE):
    x = _np_matrices(a)
    if rcond is None:
        if rtol is _NOVALUE:
            rcond = 1e-15
        elif rtol is None:
            rcond = builtins.max(x.shape[-2:]) * float(np.finfo(x.dtype).eps)
        else:
            rcond = rtol
    elif rtol is not _NOVALUE:
        raise ValueError("`rtol` and `rcond` can't be both set.")
    return pinv(x, rtol=rcond if np.ndim(_host(rcond)) == 0 or isinstance(rcond, Tensor)
                else _constant(rcond, x), hermitian=hermitian)


def _np_norm(x, ord=None, axis=None, keepdims=False):
    """np.linalg.norm: NumPy's choice of a vector or matrix norm from ord and axis."""
    x = _floating(_np_tensor(x))
    if axis is None:
        if ord is None or (ord in ("f", "fro") and x.ndim == 2 if isinstance(ord, str) else
                           ord == 2 and x.ndim == 1):
            out = vector_norm(x, 2)
            return out.reshape((1,) * x.ndim) if keepdims else out
        axis = tuple(range(x.ndim))
    axes = (operator.index(axis),) if not isinstance(axis, tuple) else axis
    if len(axes) == 1:
        axes = _axes(x, axes)
        if isinstance(ord, str):
            raise ValueError(f"Invalid norm order '{ord}' for vectors")
        return vector_norm(x, 2 if ord is None else ord, axes, keepdims)
    if len(axes) == 2:
        if ord not in (None, "fro", "f", "nuc", 1, -1, 2, -2, math.inf, -math.inf):
            raise ValueError("Invalid norm order for matrices.")
        rows, cols = (_axis("norm", x, i) for i in axes)
        if rows == cols:
            raise ValueError("Duplicate axes given.")
        return matrix_norm(x, "fro" if ord in (None, "f") else ord, (rows, cols), keepdims)
    raise ValueError("Improper number of dimensions to norm.")


def _np_matrix_power(a, n):
    x = _np_matrices(a)
    n = operator.index(n)
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError("Last 2 dimensions of the array must be square")
    if n == 0:
        eye = np.broadcast_to(np.eye(x.shape[-1], dtype=x.dtype), x.shape)
        return _off_graph("matrix_power", x, x._device.array(np.ascontiguousarray(eye)))
    if n < 0:
        x, n = inv(x), -n
    if n <= 3:
        return (x, matmul(x, x), matmul(matmul(x, x), x))[n - 1]
    z = result = None  # binary decomposition, as NumPy
    while n > 0:
        z = x if z is None else matmul(z, z)
        n, bit = divmod(n, 2)
        if bit:
            result = z if result is None else matmul(result, z)
    return result


def _chain_order(sizes):
    """Where to split each run of the matrix chain (sizes[i] x sizes[i + 1]) for the fewest
    multiplications, as NumPy's _multi_dot_matrix_chain_order."""
    n = len(sizes) - 1
    cost = [[0.0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = math.inf
            for k in range(i, j):
                q = cost[i][k] + cost[k + 1][j] + sizes[i] * sizes[k + 1] * sizes[j + 1]
                if q < cost[i][j]:
                    cost[i][j], split[i][j] = q, k
    return split


def _np_multi_dot(arrays):
    """np.linalg.multi_dot: the chain of products in NumPy's cheapest order."""
    arrays = [_np_tensor(a, _tensors(arrays)[0]) for a in arrays]
    if len(arrays) < 2:
        raise ValueError("Expecting at least two arrays.")
    first, last = arrays[0].ndim == 1, arrays[-1].ndim == 1
    if first:
        arrays[0] = arrays[0].reshape(1, -1)
    if last:
        arrays[-1] = arrays[-1].reshape(-1, 1)
    if builtins.any(a.ndim != 2 for a in arrays):
        raise ValueError("multi_dot: the arrays between the first and the last must be 2-d")
    if len(arrays) == 2:
        out = matmul(*arrays)
    elif len(arrays) == 3:
        a, b, c = arrays
        cost_ab_c = a.shape[0] * a.shape[1] * b.shape[1] + a.shape[0] * b.shape[1] * c.shape[1]
        cost_a_bc = b.shape[0] * b.shape[1] * c.shape[1] + a.shape[0] * a.shape[1] * c.shape[1]
        out = matmul(matmul(a, b), c) if cost_ab_c < cost_a_bc else matmul(a, matmul(b, c))
    else:
        order = _chain_order([a.shape[0] for a in arrays] + [arrays[-1].shape[1]])

        def chain(i, j):
            return arrays[i] if i == j else matmul(chain(i, order[i][j]),
                                                   chain(order[i][j] + 1, j))
        out = chain(0, len(arrays) - 1)
    if first:
        out = out[0]
    return out[..., 0] if last else out


def _np_cond(x, p=None):
    x = _np_matrices(x)
    if x.shape[-2:] == (0, 0) or 0 in x.shape[-2:]:
        raise np.linalg.LinAlgError("cond is not defined on empty arrays")
    if p is None or p == 2 or p == -2:
        s = svdvals(x)
        r = s[..., -1] / s[..., 0] if p == -2 else s[..., 0] / s[..., -1]
    else:
        if x.shape[-1] != x.shape[-2]:
            raise np.linalg.LinAlgError("Last 2 dimensions of the array must be square")
        r = _np_norm(x, p, (-2, -1)) * _np_norm(inv(x), p, (-2, -1))
    nan = r.isnan() & ~x.isnan().any((-2, -1))  # NumPy's inf for singular matrices
    return where(nan, math.inf, r)


def _np_tensorinv(a, ind=2):
    x = _np_matrices(a)
    if ind <= 0:
        raise ValueError("Invalid ind argument.")
    rows = math.prod(x.shape[ind:])
    return inv(x.reshape(rows, -1)).reshape(x.shape[ind:] + x.shape[:ind])


def _np_tensorsolve(a, b, axes=None):
    a, b = _pair(a, b)
    a = _np_matrices(a)
    if axes is not None:
        order = [i for i in range(a.ndim) if i not in [k % a.ndim for k in axes]]
        a = a.permute(order + [k % a.ndim for k in axes])
    shape = a.shape[-(a.ndim - b.ndim):]
    rows = math.prod(shape)
    if a.numel() != rows ** 2:
        raise np.linalg.LinAlgError("Input arrays must satisfy the requirement "
                                 "prod(a.shape[b.ndim:]) == prod(a.shape[:b.ndim])")
    return solve(a.reshape(rows, rows), b.astype(a.dtype).reshape(-1)).reshape(shape)


def _np_linalg_vector(name, op):
    """np.linalg.outer and cross, which need 1-d and 3-vectors where np.outer and np.cross
    take more."""
    def impl(x1, x2, axis=-1):
        a, b = _pair(x1, x2)
        if name == "outer" and (a.ndim != 1 or b.ndim != 1):
            raise ValueError(f"Input arrays must be one-dimensional, but they are {a.ndim}-d "
                             f"and {b.ndim}-d")
        if name == "cross" and (a.shape[axis] != 3 or b.shape[axis] != 3):
            raise ValueError("Both input arrays must be (arrays of) 3-dimensional vectors, but "
                             f"they are {a.shape[axis]} and {b.shape[axis]} dimensional "
                             "instead.")
        return op(a, b) if name == "outer" else op(a, b, axis)
    return impl


def _np_linalg_vecdot(x1, x2, axis=-1):
    a, b = _pair(x1, x2)
    _core_dims("vecdot", a, b)
    shape = np.broadcast_shapes(a.shape, b.shape)
    return _vecdot(a.expand(shape).movedim(axis, -1), b.expand(shape).movedim(axis, -1))


# ---- the tables of functions ------------------------------------------------------------------
# Each entry is called with the NumPy function's arguments by their names (out= and where= are
# never recorded and do not reach it); one line per NumPy function.

_FUNCTIONS = {
    # reductions
    np.sum: _reduction(Tensor.sum, np.add),
    np.prod: _reduction(Tensor.prod, np.multiply),
    np.max: _reduction(Tensor.amax, np.maximum),
    np.amax: _reduction(Tensor.amax, np.maximum),
    np.min: _reduction(Tensor.amin, np.minimum),
    np.amin: _reduction(Tensor.amin, np.minimum),
    np.nansum: _reduction(_nan_filled(Tensor.sum, 0.0), np.add),
    np.nanprod: _reduction(_nan_filled(Tensor.prod, 1.0), np.multiply),
    np.nanmax: _reduction(_nan_extreme(Tensor.amax, -math.inf), np.fmax),
    np.nanmin: _reduction(_nan_extreme(Tensor.amin, math.inf), np.fmin),
    np.mean: _np_mean,
    np.nanmean: _np_nanmean,
    np.var: _spread(root=False),
    np.std: _spread(root=True),
    np.nanvar: _spread(root=False, nan=True),
    np.nanstd: _spread(root=True, nan=True),
    np.ptp: _np_ptp,
    np.all: _np_all_any(Tensor.all),
    np.any: _np_all_any(Tensor.any),
    np.average: _np_average,
    np.median: _np_median,
    np.nanmedian: _np_nanmedian,
    np.quantile: _quantile_function(1, nan=False),
    np.percentile: _quantile_function(100, nan=False),
    np.nanquantile: _quantile_function(1, nan=True),
    np.nanpercentile: _quantile_function(100, nan=True),
    # sorting and running reductions
    np.sort: _np_sort,
    np.cumsum: _scan(Tensor.cumsum),
    np.cumprod: _scan(Tensor.cumprod),
    np.nancumsum: _scan(_nan_filled(Tensor.cumsum, 0.0)),
    np.nancumprod: _scan(_nan_filled(Tensor.cumprod, 1.0)),
    np.cumulative_sum: _cumulative(Tensor.cumsum, 0),
    np.cumulative_prod: _cumulative(Tensor.cumprod, 1),
    np.diff: _np_diff,
    np.ediff1d: _np_ediff1d,
    np.gradient: _np_gradient,
    np.trapezoid: _np_trapezoid,
    # products
    np.dot: _np_dot,
    np.vdot: _np_vdot,
    np.inner: _np_inner,
    np.outer: _np_outer,
    np.tensordot: _np_tensordot,
    np.kron: _np_kron,
    np.cross: _np_cross,
    np.einsum: _np_einsum,
    np.trace: _np_trace,
    np.diagonal: lambda a, offset=0, axis1=0, axis2=1: _np_tensor(a).diagonal(offset, axis1,
                                                                              axis2),
    np.diag: lambda v, k=0: _np_tensor(v).diag(k),
    np.diagflat: lambda v, k=0: _np_tensor(v).reshape(-1).diag(k),
    np.tril: _np_tri(lower=True),
    np.triu: _np_tri(lower=False),
    # joining and splitting
    np.concatenate: _np_concatenate,
    np.concat: _np_concatenate,
    np.stack: _np_stack,
    np.vstack: _np_vstack,
    np.hstack: _np_hstack,
    np.dstack: _np_dstack,
    np.column_stack: _np_column_stack,
    np.append: _np_append,
    np.block: _np_block,
    np.split: _np_split,
    np.array_split: _np_array_split,
    np.hsplit: _np_split_along("hsplit", 1, 1),
    np.vsplit: _np_split_along("vsplit", 2, 0),
    np.dsplit: _np_split_along("dsplit", 3, 2),
    np.unstack: _np_unstack,
    # movement
    np.reshape: _np_reshape,
    np.ravel: _np_ravel,
    np.squeeze: _np_squeeze,
    np.expand_dims: _np_expand_dims,
    np.moveaxis: lambda a, source, destination: _np_tensor(a).movedim(source, destination),
    np.swapaxes: lambda a, axis1, axis2: _np_tensor(a).swapaxes(axis1, axis2),
    np.rollaxis: _np_rollaxis,
    np.transpose: _np_transpose,
    np.permute_dims: _np_transpose,
    np.matrix_transpose: _np_matrix_transpose,
    np.broadcast_to: lambda array, shape, subok=False: _np_tensor(array).expand(
        _shape(shape)),
    np.broadcast_arrays: _np_broadcast_arrays,
    np.atleast_1d: _np_atleast(1),
    np.atleast_2d: _np_atleast(2),
    np.atleast_3d: _np_atleast(3),
    np.copy: lambda a, order="K", subok=False: _np_tensor(a).clone(),
    np.astype: lambda x, dtype, copy=True, device=None: _np_tensor(x).astype(dtype),
    np.flip: _np_flip,
    np.fliplr: lambda m: _np_tensor(m).fliplr(),
    np.flipud: lambda m: _np_tensor(m).flipud(),
    np.roll: _np_roll,
    np.rot90: _np_rot90,
    np.tile: _np_tile,
    np.repeat: _np_repeat,
    np.resize: _np_resize,
    np.pad: _np_pad,
    np.take: _np_take,
    np.take_along_axis: _np_take_along_axis,
    np.choose: _np_choose,
    np.compress: _np_compress,
    np.extract: _np_extract,
    np.insert: _np_insert,
    np.delete: _np_delete,
    np.trim_zeros: _np_trim_zeros,
    # selection and elementwise
    np.where: _np_where,
    np.select: _np_select,
    np.piecewise: _np_piecewise,
    np.clip: _np_clip,
    np.round: _np_around,
    np.around: _np_around,
    np.fix: lambda x: _np_tensor(x).fix(),
    np.sinc: lambda x: _np_tensor(x).sinc(),
    np.nan_to_num: _np_nan_to_num,
    np.real: lambda val: _np_tensor(val),
    np.real_if_close: lambda a, tol=100: _np_tensor(a),
    np.imag: _np_imag,
    np.angle: _np_angle,
    np.interp: _np_interp,
    # polynomials, convolutions, statistics, grids
    np.polyval: _np_polyval,
    np.polyadd: _np_poly_add_sub(operator.add),
    np.polysub: _np_poly_add_sub(operator.sub),
    np.polymul: _np_polymul,
    np.polydiv: _np_polydiv,
    np.polyder: _np_polyder,
    np.polyint: _np_polyint,
    np.poly: _np_poly,
    np.vander: _np_vander,
    np.convolve: _np_convolve,
    np.correlate: _np_correlate,
    np.cov: _np_cov,
    np.corrcoef: _np_corrcoef,
    np.unwrap: _np_unwrap,
    np.linspace: _np_linspace,
    np.logspace: _np_logspace,
    np.geomspace: _np_geomspace,
    np.meshgrid: _np_meshgrid,
    np.bincount: _np_bincount,
    # np.linalg
    np.linalg.det: lambda a: det(_np_matrices(a)),
    np.linalg.slogdet: lambda a: slogdet(_np_matrices(a)),
    np.linalg.inv: lambda a: inv(_np_matrices(a)),
    np.linalg.solve: _np_solve,
    np.linalg.cholesky: lambda a, upper=False: cholesky(_np_matrices(a), upper=upper),
    np.linalg.qr: _np_qr,
    np.linalg.svd: _np_svd,
    np.linalg.svdvals: lambda x: svdvals(_np_matrices(x)),
    np.linalg.eigh: lambda a, UPLO="L": eigh(_np_matrices(a), UPLO),
    np.linalg.eigvalsh: lambda a, UPLO="L": eigvalsh(_np_matrices(a), UPLO),
    np.linalg.pinv: _np_pinv,
    np.linalg.norm: _np_norm,
    np.linalg.matrix_norm: lambda x, keepdims=False, ord="fro": _np_norm(x, ord, (-2, -1),
                                                                         keepdims),
    np.linalg.vector_norm: lambda x, axis=None, keepdims=False, ord=2: vector_norm(
        _floating(_np_tensor(x)), ord, _axes(_np_tensor(x), axis), keepdims),
    np.linalg.matrix_power: _np_matrix_power,
    np.linalg.multi_dot: _np_multi_dot,
    np.linalg.cond: _np_cond,
    np.linalg.tensorinv: _np_tensorinv,
    np.linalg.tensorsolve: _np_tensorsolve,
    np.linalg.outer: _np_linalg_vector("outer", outer),
    np.linalg.cross: _np_linalg_vector("cross", cross),
    np.linalg.tensordot: lambda x1, x2, axes=2: _np_tensordot(x1, x2, axes),
    np.linalg.vecdot: _np_linalg_vecdot,
    np.linalg.matmul: lambda x1, x2: matmul(*_pair(x1, x2)),
    np.linalg.matrix_transpose: _np_matrix_transpose,
    np.linalg.trace: lambda x, offset=0, dtype=None: _np_trace(x, offset, -2, -1, dtype),
    np.linalg.diagonal: lambda x, offset=0: _np_tensor(x).diagonal(offset, -2, -1),
    # np.fft
    np.fft.fftshift: _np_fftshift(1),
    np.fft.ifftshift: _np_fftshift(-1),
}


def _unless_grad_in(func, *names):
    """A function without gradient but for the arguments `names` (histogram's weights, the
    fill value of full_like): refused when one of them requires grad."""
    def impl(**arguments):
        if _needs_grad([arguments.get(n) for n in names]):
            raise _refusal(_np_name(func), " or ".join(f"{n}=" for n in names))
        return func(**_unwrap(arguments))
    return impl


# Functions whose results carry no gradient by nature: None runs NumPy on the tensors' values
# (a plain result, as NumPy's); an adapter returns tensors where simplegrad has the op.
_NO_GRADIENT = {
    np.argmax: _np_arg(Tensor.argmax),
    np.argmin: _np_arg(Tensor.argmin),
    np.argsort: _np_argsort,
    np.histogram: _unless_grad_in(np.histogram, "weights"),
    np.histogram2d: _unless_grad_in(np.histogram2d, "weights"),
    np.histogramdd: _unless_grad_in(np.histogramdd, "weights"),
    np.full_like: _unless_grad_in(np.full_like, "fill_value"),
    **dict.fromkeys([
        # shapes, types and memory
        np.shape, np.ndim, np.size, np.result_type, np.can_cast, np.min_scalar_type,
        np.common_type, np.may_share_memory, np.shares_memory, np.isrealobj, np.iscomplexobj,
        # indices and counts
        np.argpartition, np.argwhere, np.nonzero, np.flatnonzero, np.count_nonzero,
        np.nanargmax, np.nanargmin, np.searchsorted, np.digitize, np.lexsort,
        np.unravel_index, np.ravel_multi_index, np.diag_indices_from, np.tril_indices_from,
        np.triu_indices_from, np.ix_, np.histogram_bin_edges, np.packbits, np.unpackbits,
        # tests
        np.isclose, np.allclose, np.array_equal, np.array_equiv, np.isin, np.isneginf,
        np.isposinf, np.isreal, np.iscomplex,
        # distinct values and sets (no gradient, as torch.unique)
        np.unique, np.unique_all, np.unique_counts, np.unique_inverse, np.unique_values,
        np.intersect1d, np.union1d, np.setdiff1d, np.setxor1d,
        # new arrays of a shape, text and files: explicit conversions of the values
        np.zeros_like, np.ones_like, np.empty_like, np.array2string, np.array_repr,
        np.array_str, np.save, np.savez, np.savez_compressed, np.savetxt, np.einsum_path,
        np.linalg.matrix_rank,
    ]),
}


@functools.lru_cache(maxsize=None)
def _signature(func):
    return inspect.signature(func)


def _arguments(func, args, kwargs):
    """func's arguments by their names (a * or ** parameter by its name, as a tuple or merged),
    with NumPy's "not given" left out; _NotRecorded for out= and where=."""
    sig = _signature(func)
    arguments = dict(sig.bind(*args, **kwargs).arguments)
    for name, parameter in sig.parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update(arguments.pop(name, {}))
    if arguments.pop("out", None) is not None:
        raise _NotRecorded("out=")
    if arguments.pop("where", True) is not True:
        raise _NotRecorded("where=")
    return {k: v for k, v in arguments.items() if v is not _NOVALUE}


def _array_function(self, func, types, args, kwargs):
    """Tensor.__array_function__: record func(*args, **kwargs) or refuse it (see above)."""
    if func in _NO_GRADIENT:
        try:
            if _NO_GRADIENT[func] is not None:
                return _NO_GRADIENT[func](**_arguments(func, args, kwargs))
        except _NotRecorded:  # out= or where=: NumPy's result, which has no gradient anyway
            pass
        return func(*_unwrap(args), **_unwrap(kwargs))
    try:
        if func not in _FUNCTIONS:
            raise _NotRecorded(None)
        arguments = _arguments(func, args, kwargs)
        tensors = _tensors((args, kwargs))
        if not builtins.any(_is_float(t.dtype) for t in tensors):
            return _on_device(func(*_unwrap(args), **_unwrap(kwargs)), tensors[0]._device)
        return _FUNCTIONS[func](**arguments)
    except _NotRecorded as e:
        if _needs_grad((args, kwargs)):
            raise _refusal(_np_name(func), e.args[0]) from None
        return func(*_unwrap(args), **_unwrap(kwargs))


def _namespace(name, doc, **members):
    """A submodule made from this file's names, so that `from simplegrad import nn` and
    `import simplegrad.nn` both work while simplegrad stays one file."""
    module = types.ModuleType(name, doc)
    module.__dict__.update(members)
    sys.modules[name] = module
    return module


# ---- simplegrad.linalg ------------------------------------------------------------------------

SlogdetResult = collections.namedtuple("SlogdetResult", ["sign", "logabsdet"])
QRResult = collections.namedtuple("QRResult", ["Q", "R"])
SVDResult = collections.namedtuple("SVDResult", ["U", "S", "Vh"])
EighResult = collections.namedtuple("EighResult", ["eigenvalues", "eigenvectors"])


def _check_matrices(op, A, square=False):
    """Check that A is a float32 or float64 tensor of (square) matrices (..., m, n)."""
    if not isinstance(A, Tensor):
        raise TypeError(f"linalg.{op}: expected a Tensor, got {type(A).__name__}")
    if A.dtype not in (np.float32, np.float64):
        raise TypeError(f"linalg.{op}: expected a float32 or float64 tensor, got {A.dtype}")
    if A.ndim < 2:
        raise ValueError(f"linalg.{op}: the input must have at least 2 dimensions, got shape "
                         f"{A.shape}")
    if square and A.shape[-1] != A.shape[-2]:
        raise ValueError(f"linalg.{op}: the input must be batches of square matrices, but they "
                         f"are {A.shape[-2]} by {A.shape[-1]} matrices (shape {A.shape})")
    return A


def det(A):
    """The determinants (...) of the square matrices A (..., n, n) (torch.linalg.det)."""
    return _det(_check_matrices("det", A, square=True))


def slogdet(A):
    """(sign, log|det|) of the square matrices A (torch.linalg.slogdet); the sign has a zero
    gradient, and log|det| is differentiable where A is invertible."""
    return SlogdetResult(*_slogdet(_check_matrices("slogdet", A, square=True)))


def inv(A):
    """The inverses of the square matrices A (torch.linalg.inv); raises LinAlgError where one
    is singular."""
    return _inv(_check_matrices("inv", A, square=True))


def _is_vector_rhs(A, B):
    # torch's linalg_solve_is_vector_rhs: B is a batch of vectors if it is 1-D, or if it has
    # exactly A's batch dims followed by n
    return B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape == A.shape[:-1])


def solve(A, B, *, left=True):
    """X with A X = B (left=True) or X A = B (torch.linalg.solve): A (..., n, n), B a batch of
    vectors (..., n) or matrices (..., n, k) (left) or (..., k, n) (right), batch dims
    broadcast. Raises LinAlgError where A is singular."""
    _check_matrices("solve", A, square=True)
    if not isinstance(B, Tensor):
        raise TypeError(f"linalg.solve: expected B to be a Tensor, got {type(B).__name__}")
    if B.dtype != A.dtype:
        raise TypeError(f"linalg.solve: A and B must have one dtype, got {A.dtype} and "
                        f"{B.dtype}")
    n = A.shape[-1]
    vector = B.ndim >= 1 and _is_vector_rhs(A, B)
    B2 = B.unsqueeze(-1) if vector else B
    rows, cols = (B2.shape[-2:] if B2.ndim >= 2 else (None, None))
    if (rows != n) if left else (cols != n):
        shown = f"{rows}x{cols}" if B2.ndim >= 2 else f"shape {B.shape}"
        raise ValueError(f"linalg.solve: incompatible shapes of A and B for the equation "
                         f"{'AX = B' if left else 'XA = B'} ({n}x{n} and {shown})")
    try:
        np.broadcast_shapes(A.shape[:-2], B2.shape[:-2])
    except ValueError:
        raise ValueError(f"linalg.solve: the batch dims of A {A.shape} and B {B.shape} cannot "
                         "be broadcast together") from None
    X = _solve(A, B2) if left else _solve_right(A, B2)
    return X.squeeze(-1) if vector else X


def cholesky(A, *, upper=False):
    """The Cholesky factor of the symmetric positive-definite matrices A (torch.linalg.cholesky):
    lower L with A = L L^T, read from A's lower triangle, or with upper=True upper U with
    A = U^T U, read from A's upper triangle. Raises LinAlgError where A is not
    positive-definite."""
    _check_matrices("cholesky", A, square=True)
    return _cholesky(A.mT).mT if upper else _cholesky(A)


def _linalg_qr(A, mode="reduced"):
    """(Q, R) with A = Q R, Q orthonormal columns and R upper triangular (torch.linalg.qr).
    mode "reduced": Q (..., m, k), R (..., k, n), k = min(m, n); "complete": Q (..., m, m),
    R (..., m, n), not differentiable when m > n; "r": R alone (Q is empty), not
    differentiable."""
    _check_matrices("qr", A)
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"linalg.qr: unrecognized mode {mode!r}; expected 'reduced' "
                         "(default), 'r' or 'complete'")
    return QRResult(*_qr(A, mode))


def _linalg_svd(A, full_matrices=True):
    """(U, S, Vh) with A = U diag(S) Vh, S descending (torch.linalg.svd). With full_matrices
    (the default, as torch) U is (..., m, m) and Vh (..., n, n), and the gradients of the
    columns of U and rows of Vh past min(m, n) are ignored; otherwise (..., m, k), (..., k, n).
    The gradient through U or Vh is finite only for distinct singular values (and, when
    m != n, nonzero ones), and it is ill-defined unless the loss is invariant to flipping the
    sign of a singular pair (U[..., :, i], Vh[..., i, :])."""
    _check_matrices("svd", A)
    return SVDResult(*_svd(A, bool(full_matrices)))


def svdvals(A):
    """The singular values (..., k) of A, descending (torch.linalg.svdvals)."""
    _check_matrices("svdvals", A)
    if A._rg and is_grad_enabled():
        return _svd(A, False)[1]
    return _wrap(A._device.svd(A._data, False, False), A._device)


def _check_uplo(op, UPLO):
    if UPLO not in ("L", "U"):
        raise ValueError(f"linalg.{op}: UPLO must be 'L' or 'U', got {UPLO!r}")


def eigh(A, UPLO="L"):
    """(eigenvalues ascending, eigenvectors as columns) of the symmetric matrices that A's lower
    (UPLO="L") or upper ("U") triangles define (torch.linalg.eigh). The gradient through the
    eigenvectors is finite only for distinct eigenvalues, and it is ill-defined unless the
    loss is invariant to the eigenvectors' signs."""
    _check_matrices("eigh", A, square=True)
    _check_uplo("eigh", UPLO)
    return EighResult(*_eigh(A if UPLO == "L" else A.mT))


def eigvalsh(A, UPLO="L"):
    """The eigenvalues of the symmetric matrices A, ascending (torch.linalg.eigvalsh)."""
    _check_matrices("eigvalsh", A, square=True)
    _check_uplo("eigvalsh", UPLO)
    if A._rg and is_grad_enabled():
        return _eigh(A if UPLO == "L" else A.mT)[0]
    a = A._data if UPLO == "L" else _mT(A._device, A._data)
    return _wrap(A._device.eigh(a)[0], A._device)


def _tolerance(value, A):
    """atol or rtol as a device array of A's dtype: a number, or a tensor of A's batch dims."""
    d = A._device
    if isinstance(value, Tensor):
        return d.astype(value._data, A.dtype)
    return d.full((), float(value), A.dtype)


def pinv(A, *, atol=None, rtol=None, hermitian=False):
    """The Moore-Penrose pseudo-inverse (..., n, m) of A (..., m, n) (torch.linalg.pinv).
    Singular values at or below max(atol, rtol * the largest) count as zero; by default atol
    is 0 and rtol is eps * max(m, n), and rtol is 0 when only a positive atol is given. With
    hermitian=True, A is taken as symmetric (its lower triangle) and an eigendecomposition is
    used."""
    _check_matrices("pinv", A, square=hermitian)
    d = A._device
    atol_a = d.full((), 0, A.dtype) if atol is None else _tolerance(atol, A)
    if rtol is not None:
        rtol_a = _tolerance(rtol, A)
    else:
        default = float(np.finfo(A.dtype).eps) * builtins.max(A.shape[-2:])
        rtol_a = d.full((), default, A.dtype)
        if atol is not None:
            rtol_a = d.where(d.greater(atol_a, 0), d.full((), 0, A.dtype), rtol_a)
    return _pinv(A, atol_a, rtol_a, bool(hermitian))


_MATRIX_ORDERS = ("fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False):
    """The matrix norm of A over the two dims `dim` (torch.linalg.matrix_norm): "fro", "nuc"
    (sum of singular values), 2 / -2 (largest / smallest singular value), 1 / -1 (largest /
    smallest column sum of |A|), inf / -inf (largest / smallest row sum)."""
    _check_matrices("matrix_norm", A)
    if type(ord) is bool or not builtins.any(ord == o for o in _MATRIX_ORDERS):
        raise ValueError(f"linalg.matrix_norm: order {ord!r} is not supported; use 'fro', "
                         "'nuc', 1, -1, 2, -2, inf or -inf")
    if len(dim) != 2:
        raise ValueError(f"linalg.matrix_norm: dim must be a pair of dims, got {dim}")
    axes = tuple(_axis("linalg.matrix_norm", A, a) for a in dim)
    if axes[0] == axes[1]:
        raise ValueError(f"linalg.matrix_norm: dims must be different, got {tuple(dim)}")
    if ord == "fro":
        return _vector_norm(A, 2.0, tuple(sorted(axes)), keepdim)
    if ord in (1, -1, np.inf, -np.inf):
        # the 1-norm is the largest column sum of |A|; the inf-norm is the 1-norm of A^T
        rows, cols = axes if ord in (1, -1) else axes[::-1]
        sums = A.abs().sum(rows, keepdims=True)
        out = sums.amax(cols, keepdims=True) if ord > 0 else sums.amin(cols, keepdims=True)
        return out if keepdim else out.squeeze(axes)
    # the singular-value norms: move the two dims to the end, as torch does
    rest = [i for i in range(A.ndim) if i not in axes]
    S = svdvals(A.permute(rest + list(axes)))
    if ord == "nuc":
        out = S.sum(-1)
    else:
        out = S.amax(-1) if ord == 2 else S.amin(-1)
    if keepdim:
        out = out.reshape(tuple(1 if i in axes else n for i, n in enumerate(A.shape)))
    return out


def _linalg_norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """torch.linalg.norm: over one dim, a vector norm; over two, a matrix norm; with dim None,
    the 2-norm of all elements when ord is None, else the norm of a 1-d or 2-d A."""
    A = _tensor(A) if dtype is None else _tensor(A).astype(dtype)
    if dim is None:
        if ord is None:
            return vector_norm(A, 2)
        if A.ndim not in (1, 2):
            raise ValueError(f"linalg.norm: with ord and no dim, A must be 1-d or 2-d, got shape "
                             f"{A.shape}")
        dim = (0,) if A.ndim == 1 else (-2, -1)
    dims = _ntuple("linalg.norm", dim, 1, "dim")
    if len(dims) == 1:
        return vector_norm(A, 2 if ord is None else ord, dims, keepdim)
    if len(dims) == 2:
        return matrix_norm(A, "fro" if ord is None else ord, dims, keepdim)
    raise ValueError(f"linalg.norm: dim must name one or two dims, got {dim}")


# torch.svd and torch.qr (deprecated) differ from torch.linalg's: so that a port of
# `U, S, V = torch.svd(A)` fails loudly rather than reading Vh as V, simplegrad has no
# module-level svd or qr; they are simplegrad.linalg.svd and simplegrad.linalg.qr.
linalg = _namespace(
    "simplegrad.linalg", "Differentiable linear algebra on batches of matrices, as torch.linalg.",
    det=det, slogdet=slogdet, inv=inv, solve=solve, cholesky=cholesky, qr=_linalg_qr,
    svd=_linalg_svd, svdvals=svdvals, eigh=eigh, eigvalsh=eigvalsh, pinv=pinv,
    matrix_norm=matrix_norm, vector_norm=vector_norm, norm=_linalg_norm, cross=cross,
    LinAlgError=LinAlgError)


# ================================================================================================
# 5. nn
# ================================================================================================

# Layers, losses and the Module machinery, as torch.nn, made of Tensor operations only: nothing
# here has backward code of its own. Parameters and buffers are written in place only through
# Device.assign, so that every alias of their memory (a torch.from_numpy view, a DLPack capsule)
# sees the new values. Default initialisation and weight layout are PyTorch's, so a torch state
# dict loads directly.

# ---- Parameter and Module ----------------------------------------------------------------------

class Parameter(Tensor):
    """A tensor that a Module registers as a parameter; it requires grad by default."""

    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = np.zeros(0, np.float32)
        device = data._device if isinstance(data, Tensor) else None
        super().__init__(data, requires_grad=requires_grad, device=device)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def _found(name, value):
    """(name, item) for each Parameter and Module in value, looking inside lists, tuples and
    dicts, whose entries are named as in torch's ModuleList and ModuleDict: name.0, name.key."""
    if isinstance(value, (Parameter, Module)):
        yield name, value
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _found(f"{name}.{i}", item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _found(f"{name}.{key}", item)


def _host_value(value):
    """A state-dict entry as a NumPy array: from a Tensor, an array, a torch tensor, a number."""
    if isinstance(value, Tensor):
        return value.numpy()
    if hasattr(value, "detach"):  # a torch tensor that requires grad (state_dict(keep_vars))
        value = value.detach()
    return np.asarray(value)


class _LoadResult(tuple):
    """(missing_keys, unexpected_keys), as torch's load_state_dict returns."""

    def __new__(cls, missing_keys, unexpected_keys):
        return super().__new__(cls, (missing_keys, unexpected_keys))

    missing_keys = property(operator.itemgetter(0))
    unexpected_keys = property(operator.itemgetter(1))


class Module:
    """Base class of layers and models (torch.nn.Module); forward() says what it computes.

    There is no registration step: every attribute that is a Parameter or a Module, or a list,
    tuple or dict holding them, is found when asked for, in the order the attributes were first
    set. Entries of containers are named as in torch (``layers.0.weight``), and, as in torch, a
    module lists its own parameters, then its buffers, then those of its sub-modules. A plain
    Tensor attribute is not state; ``register_buffer`` makes it a buffer (saved in state_dict,
    converted by double() and to(), but not a parameter).
    """

    training = True
    _buffers = {}  # buffer name -> persistent; replaced, never mutated, by register_buffer

    def __init__(self):
        self.training = True

    def forward(self, *args, **kwargs):
        """What the module computes; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- what the module holds ----------------------------------------------------------------
    def _attributes(self):
        """The (name, value) pairs searched for parameters and sub-modules; containers override."""
        return vars(self).items()

    def _own(self):
        """This module's own parameters and its direct sub-modules, in attribute order."""
        for name, value in self._attributes():
            yield from _found(name, value)

    def register_buffer(self, name, tensor, persistent=True):
        """Set attribute `name` to tensor (or None) and keep it as state that is not a parameter:
        in state_dict when persistent, converted by double()/float()/to()."""
        if tensor is not None and (not isinstance(tensor, Tensor)
                                   or isinstance(tensor, Parameter)):
            raise TypeError(f"register_buffer: '{name}' must be a Tensor (not a Parameter) or "
                            f"None, not {type(tensor).__name__}")
        setattr(self, name, tensor)
        self._buffers = {**self._buffers, name: bool(persistent)}

    def named_children(self):
        """(name, module) for each direct sub-module."""
        seen = set()
        for name, value in self._own():
            if isinstance(value, Module) and id(value) not in seen:
                seen.add(id(value))
                yield name, value

    def children(self):
        """The direct sub-modules."""
        for _, module in self.named_children():
            yield module

    def named_modules(self, memo=None, prefix=""):
        """(dotted name, module) for this module and every module below it, each once."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(memo, _join(prefix, name))

    def modules(self):
        """This module and every module below it, each once."""
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, Parameter) for every parameter, each once, in torch's order."""
        seen = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in module._own():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    yield _join(module_prefix, name), value

    def parameters(self, recurse=True):
        """Every parameter, each once."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        """(dotted name, tensor) for every buffer that is not None, each once."""
        seen = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name in module._buffers:
                t = getattr(module, name, None)
                if t is not None and id(t) not in seen:
                    seen.add(id(t))
                    yield _join(module_prefix, name), t

    def buffers(self, recurse=True):
        """Every buffer that is not None, each once."""
        for _, t in self.named_buffers(recurse=recurse):
            yield t

    # ---- modes and gradients ------------------------------------------------------------------
    def train(self, mode=True):
        """Set training mode on this module and all below it (Dropout, BatchNorm); returns self."""
        if not isinstance(mode, (bool, np.bool_)):
            raise ValueError(f"train: mode must be a bool, not {_describe(mode)}")
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self):
        """Set evaluation mode on this module and all below it; returns self."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Make every parameter require grad or not; returns self."""
        _flag("requires_grad_", "requires_grad", requires_grad)
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Forget the parameters' gradients: set .grad to None, or fill it with zeros."""
        for p in self.parameters():
            g = p.grad
            if g is None or set_to_none:
                p.grad = None
            elif g._node is None and getattr(getattr(g._data, "flags", None), "writeable", True):
                _write(g, 0)
            else:  # a recorded gradient (create_graph) or read-only memory: new zeros
                p.grad = _wrap(g._device.full(g.shape, 0, g.dtype), g._device)

    def apply(self, fn):
        """Call fn on every sub-module, then on this module (as torch); returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- dtype and device ---------------------------------------------------------------------
    def to(self, *args, dtype=None, device=None):
        """Move every parameter and buffer to a Device and/or convert the floating ones to a
        dtype: to(np.float64), to(device), to(device, dtype). Returns self.

        The same Parameter objects get new arrays (so an optimizer made earlier still holds
        them), but views of the old memory, such as a torch.from_numpy alias, no longer follow.
        """
        for arg in args:
            if isinstance(arg, Device):
                device = arg
            else:
                dtype = arg
        dtype = None if dtype is None else np.dtype(dtype)
        for t in [*self.parameters(), *self.buffers()]:
            for holder in (t, t.grad):
                if holder is None:
                    continue
                d = holder._device
                if device is not None and device != d:
                    holder.data, holder._device = device.array(d.to_host(holder._data)), device
                    d = device
                if dtype is not None and _is_float(holder.dtype) and holder.dtype != dtype:
                    holder.data = d.astype(holder._data, dtype)
        return self

    def double(self):
        """Convert floating parameters and buffers to float64 (see to()); returns self."""
        return self.to(np.float64)

    def float(self):
        """Convert floating parameters and buffers to float32 (see to()); returns self."""
        return self.to(np.float32)

    def half(self):
        """Convert floating parameters and buffers to float16 (see to()); returns self."""
        return self.to(np.float16)

    # ---- state_dict ---------------------------------------------------------------------------
    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """Parameters and persistent buffers by dotted name, in torch's order and with torch's
        key names; the values are detached tensors sharing the memory (keep_vars: the tensors)."""
        out = {} if destination is None else destination
        own = list(self._own())
        for name, value in own:
            if isinstance(value, Parameter):
                out[prefix + name] = value if keep_vars else value.detach()
        for name, persistent in self._buffers.items():
            t = getattr(self, name, None)
            if persistent and t is not None:
                out[prefix + name] = t if keep_vars else t.detach()
        for name, value in own:
            if isinstance(value, Module):
                value.state_dict(out, prefix + name + ".", keep_vars)
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy the values of state_dict (Tensors, NumPy arrays, torch tensors, numbers) into
        the existing parameter and buffer arrays, in place, converting to their dtypes.

        Every key, shape and value is checked, and every value converted, before anything is
        written, so an error leaves the module as it was. Returns (missing_keys,
        unexpected_keys), as torch.
        """
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(f"load_state_dict: expected a dict-like state_dict, got "
                            f"{_describe(state_dict)}")
        targets = self.state_dict(keep_vars=True)
        missing = [key for key in targets if key not in state_dict]
        unexpected = [key for key in state_dict if key not in targets]
        errors = []
        if strict and missing:
            errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing)
                          + ".")
        if strict and unexpected:
            errors.append("Unexpected key(s) in state_dict: "
                          + ", ".join(f'"{k}"' for k in unexpected) + ".")
        sources = {}
        for key, target in targets.items():
            if key not in state_dict:
                continue
            try:
                source = _host_value(state_dict[key])
            except (TypeError, ValueError, RuntimeError) as e:
                errors.append(f'While copying the parameter named "{key}": {e}')
                continue
            if source.dtype.kind not in "biufc" or (source.dtype.kind == "c"
                                                    and target.dtype.kind != "c"):
                errors.append(f'While copying the parameter named "{key}", expected numbers '
                              f"for a tensor of {target.dtype} from checkpoint but received "
                              f"{_describe(state_dict[key])}.")
            elif tuple(source.shape) != target.shape:
                errors.append(f"size mismatch for {key}: copying a param with shape "
                              f"{tuple(source.shape)} from checkpoint, the shape in current "
                              f"model is {target.shape}.")
            elif not errors:  # converted now, so that nothing is written if a later one fails
                sources[key] = target._device.array(source, target.dtype)
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        for key, source in sources.items():
            _write(targets[key], source)
        return _LoadResult(missing, unexpected)

    # ---- repr ---------------------------------------------------------------------------------
    def extra_repr(self):
        """The settings shown between the parentheses of repr(); layers override it."""
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        children = [f"({name}): " + repr(child).replace("\n", "\n  ")
                    for name, child in self.named_children()]
        lines = (extra.split("\n") if extra else []) + children
        if not children and len(lines) <= 1:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


def _check_module(owner, module):
    if not isinstance(module, Module):
        raise TypeError(f"{owner}: {type(module).__name__} is not a Module")
    return module


class Sequential(Module):
    """Modules applied one after the other: Sequential(m0, m1, ...) or Sequential(dict of
    named modules); the sub-modules are named "0", "1", ... or by their keys, as in torch."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], dict):
            items = modules[0].items()
        else:
            items = ((str(i), m) for i, m in enumerate(modules))
        self._modules = {name: _check_module("Sequential", m) for name, m in items}

    def _attributes(self):
        return self._modules.items()

    def forward(self, input):
        """Each module applied to the previous one's output."""
        for module in self._modules.values():
            input = module(input)
        return input

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(dict(list(self._modules.items())[index]))
        return list(self._modules.values())[index]

    def append(self, module):
        """Add a module at the end; returns self."""
        self._modules[str(len(self._modules))] = _check_module("Sequential", module)
        return self


class ModuleList(Module):
    """A list of modules, named "0", "1", ... by position (torch.nn.ModuleList)."""

    def __init__(self, modules=()):
        super().__init__()
        self._list = [_check_module("ModuleList", m) for m in modules]

    def _attributes(self):
        return ((str(i), m) for i, m in enumerate(self._list))

    def __len__(self):
        return len(self._list)

    def __iter__(self):
        return iter(self._list)

    def __getitem__(self, index):
        return ModuleList(self._list[index]) if isinstance(index, slice) else self._list[index]

    def __setitem__(self, index, module):
        self._list[index] = _check_module("ModuleList", module)

    def __delitem__(self, index):
        del self._list[index]

    def append(self, module):
        """Add a module at the end; returns self."""
        self._list.append(_check_module("ModuleList", module))
        return self

    def extend(self, modules):
        """Add modules at the end; returns self."""
        self._list.extend(_check_module("ModuleList", m) for m in modules)
        return self

    def insert(self, index, module):
        """Insert a module before position index."""
        self._list.insert(index, _check_module("ModuleList", module))


class ModuleDict(Module):
    """A dict of modules, named by their keys (torch.nn.ModuleDict)."""

    def __init__(self, modules=None):
        super().__init__()
        self._dict = {}
        self.update(modules or {})

    def _attributes(self):
        return self._dict.items()

    def __len__(self):
        return len(self._dict)

    def __iter__(self):
        return iter(self._dict)

    def __contains__(self, key):
        return key in self._dict

    def __getitem__(self, key):
        return self._dict[key]

    def __setitem__(self, key, module):
        self._dict[str(key)] = _check_module("ModuleDict", module)

    def __delitem__(self, key):
        del self._dict[key]

    def keys(self):
        """The keys, in insertion order."""
        return self._dict.keys()

    def values(self):
        """The modules, in insertion order."""
        return self._dict.values()

    def items(self):
        """(key, module) pairs, in insertion order."""
        return self._dict.items()

    def update(self, modules):
        """Add the (key, module) pairs of a dict or of an iterable of pairs."""
        for key, module in (modules.items() if isinstance(modules, dict) else modules):
            self[key] = module


# ---- init --------------------------------------------------------------------------------------
# Each function overwrites a tensor's memory in place (through Device.assign) and returns it.
# Random values come from simplegrad's generator (manual_seed), or from `generator` (a NumPy
# Generator) when one is given, drawn on the host and then copied to the device.

def _fill(tensor, host):
    """Write a host array into tensor's memory, in place."""
    return _write(tensor, tensor._device.array(np.asarray(host, dtype=tensor.dtype)))


def _random(generator):
    return _rng if generator is None else generator


def _fan(op, tensor, mode):
    """fan_in (mode 'fan_in') or fan_out of a weight: (out, in, *kernel), as torch computes it."""
    if tensor.ndim < 2:
        raise ValueError(f"{op}: fan in and fan out need a tensor of at least 2 dims, got shape "
                         f"{tensor.shape}")
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{op}: mode must be 'fan_in' or 'fan_out', not {mode!r}")
    receptive = _size(tensor.shape[2:])
    return tensor.shape[1] * receptive if mode == "fan_in" else tensor.shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for an activation function (torch.nn.init.calculate_gain)."""
    if nonlinearity in ("linear", "identity", "sigmoid") or nonlinearity.startswith("conv"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with samples from U(a, b)."""
    _reals("uniform_", a=a, b=b)
    return _fill(tensor, _random(generator).uniform(a, b, tensor.shape))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with samples from N(mean, std^2)."""
    _reals("normal_", mean=mean, std=std)
    return _fill(tensor, _random(generator).normal(mean, std, tensor.shape))


def constant_(tensor, val):
    """Fill with the value val."""
    _real("constant_", "val", val)
    return _write(tensor, val)


def zeros_(tensor):
    """Fill with zeros."""
    return constant_(tensor, 0)


def ones_(tensor):
    """Fill with ones."""
    return constant_(tensor, 1)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """Glorot: U(-b, b) with b = gain sqrt(6 / (fan_in + fan_out))."""
    fans = _fan("xavier_uniform_", tensor, "fan_in") + _fan("xavier_uniform_", tensor, "fan_out")
    bound = gain * math.sqrt(6.0 / fans)
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """Glorot: N(0, std^2) with std = gain sqrt(2 / (fan_in + fan_out))."""
    fans = _fan("xavier_normal_", tensor, "fan_in") + _fan("xavier_normal_", tensor, "fan_out")
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / fans), generator)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He: U(-b, b) with b = gain sqrt(3 / fan), gain = calculate_gain(nonlinearity, a)."""
    fan = _fan("kaiming_uniform_", tensor, mode)
    if fan == 0:  # an empty tensor: nothing to fill (torch warns)
        return tensor
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He: N(0, std^2) with std = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a)."""
    fan = _fan("kaiming_normal_", tensor, mode)
    if fan == 0:
        return tensor
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan), generator)


# ---- functional: layers and activations ----------------------------------------------------

def _as_tensor(x, like, op=None):
    """x as a Tensor on like's device; unlike _tensor, a Python int stays an integer. With op,
    what is not numbers (None, a string) is a TypeError naming op."""
    if isinstance(x, Tensor):
        return x
    return Tensor(x if op is None else _numbers(op, x), device=like._device)


def linear(input, weight, bias=None):
    """input @ weight.T + bias, with weight laid out (out_features, in_features) as torch."""
    weight = _tensor(weight, None, "linear")
    out = matmul(_tensor(input, weight, "linear"), weight.T)
    return out if bias is None else out + _tensor(bias, weight, "linear")


def relu(input, inplace=False):
    """max(x, 0)."""
    input = _tensor(input, None, "relu")
    return input.relu()


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x where x > 0, else negative_slope x."""
    input = _tensor(input, None, "leaky_relu")
    return input.leaky_relu(negative_slope)


def gelu(input, approximate="none"):
    """x Phi(x), or its tanh approximation (approximate='tanh')."""
    input = _tensor(input, None, "gelu")
    return input.gelu(approximate)


def sigmoid(input):
    """1 / (1 + e^-x)."""
    input = _tensor(input, None, "sigmoid")
    return input.sigmoid()


def tanh(input):
    """Hyperbolic tangent."""
    input = _tensor(input, None, "tanh")
    return input.tanh()


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + e^(beta x)) / beta, and x where beta x > threshold."""
    input = _tensor(input, None, "softplus")
    return input.softplus(beta, threshold)


def softmax(input, dim=-1, dtype=None):
    """exp(x) / sum(exp(x)) along dim (None: PyTorch's legacy choice, see _implicit_dim)."""
    input = _tensor(input, None, "softmax")
    x = input if dtype is None else input.astype(dtype)
    return x.softmax(_implicit_dim(input, dim))


def log_softmax(input, dim=-1, dtype=None):
    """x - logsumexp(x) along dim."""
    input = _tensor(input, None, "log_softmax")
    x = input if dtype is None else input.astype(dtype)
    return x.log_softmax(_implicit_dim(input, dim))


def softmin(input, dim=None, dtype=None):
    """softmax(-x) along dim."""
    input = _tensor(input, None, "softmin")
    x = input if dtype is None else input.astype(dtype)
    return (-x).softmax(_implicit_dim(input, dim))


def _implicit_dim(input, dim):
    # PyTorch's deprecated rule for a softmax without dim: 0 for 0-, 1- and 3-d inputs, else 1
    if dim is not None:
        return dim
    return 0 if input.ndim in (0, 1, 3) else 1


# The other activations, as compositions. A branch that would overflow where it is not taken
# (e^x for large x) reads a clamped input, so that its zero gradient stays zero; where a kink
# is, each one's gradient there is PyTorch's (hardtanh's bounds pass none, elu's 0 takes the
# exponential side).

def elu(input, alpha=1.0, inplace=False):
    """x for x > 0, alpha (e^x - 1) otherwise."""
    input = _tensor(input, None, "elu")
    _real("elu", "alpha", alpha)
    return where(input > 0, input, alpha * input.clamp(max=0).expm1())


def celu(input, alpha=1.0, inplace=False):
    """x for x > 0, alpha (e^(x / alpha) - 1) otherwise."""
    input = _tensor(input, None, "celu")
    _real("celu", "alpha", alpha)
    return where(input > 0, input, alpha * (input.clamp(max=0) / alpha).expm1())


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def selu(input, inplace=False):
    """scale * elu(x, alpha), with the self-normalising constants of Klambauer et al."""
    input = _tensor(input, None, "selu")
    return _SELU_SCALE * elu(input, _SELU_ALPHA)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """x clamped to [min_val, max_val]; the gradient is zero at the bounds (as PyTorch)."""
    input = _tensor(input, None, "hardtanh")
    if _real("hardtanh", "min_val", min_val) > _real("hardtanh", "max_val", max_val):
        raise ValueError(f"hardtanh: min_val {min_val} is greater than max_val {max_val}")
    return where(input <= min_val, min_val, where(input >= max_val, max_val, input))


def relu6(input, inplace=False):
    """min(max(x, 0), 6)."""
    input = _tensor(input, None, "relu6")
    return hardtanh(input, 0.0, 6.0)


def hardsigmoid(input, inplace=False):
    """x / 6 + 1/2 clamped to [0, 1]."""
    input = _tensor(input, None, "hardsigmoid")
    return where(input <= -3, 0.0, where(input >= 3, 1.0, input / 6 + 0.5))


def hardswish(input, inplace=False):
    """x hardsigmoid(x)."""
    input = _tensor(input, None, "hardswish")
    return where(input <= -3, 0.0, where(input >= 3, input, input * (input + 3) / 6))


def silu(input, inplace=False):
    """x sigmoid(x) (swish)."""
    input = _tensor(input, None, "silu")
    return input * input.sigmoid()


def mish(input, inplace=False):
    """x tanh(softplus(x))."""
    input = _tensor(input, None, "mish")
    return input * input.softplus(threshold=math.inf).tanh()


def softsign(input):
    """x / (1 + |x|)."""
    input = _tensor(input, None, "softsign")
    return input / (input.abs() + 1)


def logsigmoid(input):
    """log(1 / (1 + e^-x)) = -softplus(-x)."""
    input = _tensor(input, None, "logsigmoid")
    return -(-input).softplus(threshold=math.inf)


def glu(input, dim=-1):
    """a sigmoid(b), with a and b the two halves of input along dim."""
    input = _tensor(input, None, "glu")
    n = input.shape[_axis("glu", input, dim)] if input.ndim else 0
    if n % 2:
        raise ValueError(f"glu: the size of dim {dim} must be even, got shape {input.shape}")
    a, b = input.chunk(2, dim)
    return a * b.sigmoid()


def tanhshrink(input):
    """x - tanh(x)."""
    input = _tensor(input, None, "tanhshrink")
    return input - input.tanh()


def softshrink(input, lambd=0.5):
    """x - lambd above lambd, x + lambd below -lambd, 0 between."""
    input = _tensor(input, None, "softshrink")
    if _real("softshrink", "lambd", lambd) < 0:
        raise ValueError(f"softshrink: lambd must be at least 0, got {lambd}")
    return where(input > lambd, input - lambd, where(input < -lambd, input + lambd, 0.0))


def hardshrink(input, lambd=0.5):
    """x where |x| > lambd, else 0."""
    input = _tensor(input, None, "hardshrink")
    return input.hardshrink(lambd)


def threshold(input, threshold, value, inplace=False):
    """x where x > threshold, else value."""
    input = _tensor(input, None, "threshold")
    _reals("threshold", threshold=threshold, value=value)
    return where(input > threshold, input, value)


def prelu(input, weight):
    """x for x > 0, weight x otherwise; weight has 1 or C (input's dim 1) elements."""
    input = _tensor(input, None, "prelu")
    return input.prelu(weight)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """Leaky ReLU with slope (lower + upper) / 2, or when training a slope drawn uniformly from
    [lower, upper] for each element (from simplegrad's generator, manual_seed)."""
    input = _tensor(input, None, "rrelu")
    _reals("rrelu", lower=lower, upper=upper)
    if not training:
        return input.leaky_relu((lower + upper) / 2)
    d = input._device
    slope = _wrap(d.array(_rng.uniform(lower, upper, input.shape).astype(input.dtype)), d)
    return where(input > 0, input, input * slope)


def dropout(input, p=0.5, training=True):
    """Zero each element with probability p and scale the rest by 1 / (1 - p) when training;
    the identity otherwise. The mask comes from simplegrad's generator (manual_seed)."""
    input = _tensor(input, None, "dropout")
    if not 0.0 <= _real("dropout", "p", p) <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    keep = _rng.random(input.shape) >= p
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    d = input._device
    return input * _wrap(d.array((keep * scale).astype(input.dtype)), d)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing dims `normalized_shape` (mean 0, biased variance 1), then
    scale by weight and shift by bias."""
    input = _tensor(input, None, "layer_norm")
    shape = _ntuple("layer_norm", normalized_shape, 1, "normalized_shape")
    if input.shape[builtins.max(input.ndim - len(shape), 0):] != shape or input.ndim < len(shape):
        raise ValueError(f"layer_norm: normalized_shape {shape} does not match the trailing "
                         f"dims of an input of shape {input.shape}")
    axes = tuple(range(input.ndim - len(shape), input.ndim))
    centered = input - input.mean(axes, keepdims=True)
    out = centered * ((centered * centered).mean(axes, keepdims=True) + eps).rsqrt()
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


def _blend(buffer, value, momentum):
    """buffer <- (1 - momentum) buffer + momentum value, in place."""
    with no_grad():
        new = buffer * (1 - momentum) + value.detach() * momentum
    _write(buffer, new._data)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalise each channel (dim 1) over the batch and any trailing dims: with the batch's
    statistics when training (and then update the running ones in place, the variance
    unbiased, as torch), else with running_mean and running_var."""
    input = _tensor(input, None, "batch_norm")
    if input.ndim < 2:
        raise ValueError(f"batch_norm: needs an input of shape (N, C, ...), got {input.shape}")
    axes = (0,) + tuple(range(2, input.ndim))
    shape = (1, input.shape[1]) + (1,) * (input.ndim - 2)
    if training or running_mean is None or running_var is None:
        count = _count(input.shape, axes)
        if training and count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when "
                             f"training, got input of shape {input.shape}")
        mean = input.mean(axes, keepdims=True)
        centered = input - mean
        var = (centered * centered).mean(axes, keepdims=True)
        if training and running_mean is not None:
            _blend(running_mean, mean.reshape(-1), momentum)
        if training and running_var is not None:
            _blend(running_var, var.reshape(-1) * (count / builtins.max(count - 1, 1)), momentum)
    else:
        centered = input - running_mean.reshape(shape)
        var = running_var.reshape(shape)
    out = centered * (var + eps).rsqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    return out if bias is None else out + bias.reshape(shape)


def embedding(input, weight, padding_idx=None):
    """Rows of weight picked by the integer indices in input: shape input.shape + (dim,).
    The row padding_idx gets no gradient (as torch)."""
    weight = _tensor(weight, None, "embedding")
    index = _as_tensor(input, weight, "embedding")
    if index.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, not {index.dtype}")
    # a negative index would read a row from the end (NumPy's rule); torch refuses it
    _check_index_range("embedding", index, weight.shape[0], 0, weight.shape)
    out = weight[index]
    if padding_idx is None:
        return out
    if padding_idx < 0:
        padding_idx += weight.shape[0]
    return where((index != padding_idx).unsqueeze(-1), out, out.detach())


def pad(input, pad, mode="constant", value=0.0):
    """Pad with a constant, in F.pad's order: (last_before, last_after, prev_before, ...)."""
    input = _tensor(input, None, "pad")
    if mode != "constant":
        raise NotImplementedError(f"pad: only mode 'constant' is implemented, not {mode!r}")
    return input.pad(pad, value)


# ---- functional: attention ---------------------------------------------------------------------

def _score_mask(op, mask, scores, attend):
    """An attention mask as a tensor to add to the scores: a float mask as it is, a bool mask
    as 0 where it equals `attend` and -inf elsewhere (torch's F.scaled_dot_product_attention
    says True for "may attend", nn.MultiheadAttention True for "may not")."""
    mask = _as_tensor(mask, scores, op)
    if mask.dtype == np.bool_:
        d = scores._device
        inf = d.full((), -math.inf, scores.dtype)
        zero = d.full((), 0, scores.dtype)
        data = d.where(mask._data, zero, inf) if attend else d.where(mask._data, inf, zero)
        return _wrap(data, d)
    if not _is_float(mask.dtype):
        raise TypeError(f"{op}: a mask must be bool or floating, not {mask.dtype}")
    return mask


def _causal_mask(length, source_length, like):
    """(L, S) bool, True where query i may attend to key j <= i (the top-left triangle)."""
    host = np.tril(np.ones((length, source_length), np.bool_))
    return _wrap(like._device.array(host), like._device)


def _attention_weights(scores, masked):
    """softmax over the last dim, from the maximum of each row for stability; when scores are
    `masked`, a row that is all -inf (a query that may attend to nothing) gets zeros instead
    of nan, as torch's scaled_dot_product_attention."""
    d = scores._device
    top = d.max(scores._data, (scores.ndim - 1,), True)
    if masked:
        top = d.where(d.equal(top, -math.inf), d.full((), 0, scores.dtype), top)
    e = (scores - _wrap(top, d)).exp()
    total = e.sum(-1, keepdims=True)
    if masked:
        total = where(total == 0, 1.0, total)
    return e / total


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None):
    """softmax(query key^T scale + mask) value over the last two dims (..., L, E), (..., S, E),
    (..., S, Ev), as torch 2.x: scale defaults to 1 / sqrt(E); a bool attn_mask is True where
    a query may attend to a key, a float one is added to the scores; is_causal lets query i
    attend to keys 0..i. dropout_p drops attention weights (always: pass 0 in evaluation)."""
    op = "scaled_dot_product_attention"
    query, key, value = (_tensor(t, None, op) for t in (query, key, value))
    _real(op, "dropout_p", dropout_p)
    if builtins.min(query.ndim, key.ndim, value.ndim) < 2 or query.shape[-1] != key.shape[-1] \
            or key.shape[-2] != value.shape[-2]:
        raise ValueError(f"{op}: expected query (..., L, E), key (..., S, E) and value "
                         f"(..., S, Ev), got shapes {query.shape}, {key.shape} and {value.shape}")
    if is_causal and attn_mask is not None:
        raise ValueError(f"{op}: pass attn_mask or is_causal=True, not both")
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = matmul(query, key.mT) * scale
    if is_causal:
        attn_mask = _causal_mask(query.shape[-2], key.shape[-2], scores)
    if attn_mask is not None:
        mask = _score_mask(op, attn_mask, scores, attend=True)
        try:
            np.broadcast_shapes(mask.shape, scores.shape)
        except ValueError:
            raise ValueError(f"{op}: an attn_mask of shape {mask.shape} does not broadcast to "
                             f"the scores' shape {scores.shape} (query {query.shape}, key "
                             f"{key.shape})") from None
        scores = scores + mask
    weights = _attention_weights(scores, attn_mask is not None)
    if dropout_p > 0:
        weights = dropout(weights, dropout_p)
    return matmul(weights, value)


# ---- functional: convolution and pooling -------------------------------------------------------
# Every one is a window view (Tensor.windows, one as_strided) of the padded input followed by an
# einsum or a reduction over the kernel dims, so the gradients come from those ops' rules: the
# backward of the window view is as_strided_scatter, where overlapping windows add up.

_SPATIAL = "pqr"  # einsum letters of the output positions (up to 3 spatial dims)
_KERNEL = "ijk"   # and of the kernel offsets


def _spatial_input(op, input, nd):
    """(input with a batch dim, whether one was added): torch accepts (C, *spatial) too."""
    input = _tensor(input, None, op)
    if input.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{op}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) "
                         f"input, got shape {input.shape}")
    return (input.unsqueeze(0), True) if input.ndim == nd + 1 else (input, False)


def _conv_padding(op, padding, nd, kernel, stride, dilation):
    """((before, after) per spatial dim) for an int, a tuple, 'valid' or 'same'."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding != "same":
            raise ValueError(f"{op}: padding must be 'valid', 'same', an int or a tuple, "
                             f"not {padding!r}")
        if builtins.any(s != 1 for s in stride):
            raise ValueError(f"{op}: padding='same' is not supported for strided "
                             f"convolutions (stride {stride})")
        # the total dilation (k - 1) goes half before, the odd one after, as torch
        total = tuple(dl * (k - 1) for k, dl in zip(kernel, dilation))
        return tuple((t // 2, t - t // 2) for t in total)
    pads = _ntuple(op, padding, nd, "padding")
    if len(pads) != nd or builtins.min(pads) < 0:
        raise ValueError(f"{op}: padding {padding!r} must be {nd} non-negative ints")
    return tuple((p, p) for p in pads)


def _flat_pad(widths):
    """((before, after), ...) per trailing dim as F.pad's (last_before, last_after, ...)."""
    return tuple(a for pair in reversed(widths) for a in pair)


def _conv(op, nd, input, weight, bias, stride, padding, dilation, groups):
    """N-d convolution (cross-correlation, as torch): pad, take windows, einsum with weight."""
    x, unbatched = _spatial_input(op, input, nd)
    weight = _tensor(weight, None, op)
    if weight.ndim != nd + 2:
        raise ValueError(f"{op}: weight must be {nd + 2}-D (out_channels, in_channels / groups, "
                         f"*kernel), got shape {weight.shape}")
    kernel = weight.shape[2:]
    stride, dilation = _ntuple(op, stride, nd, "stride"), _ntuple(op, dilation, nd, "dilation")
    if len(stride) != nd or len(dilation) != nd or builtins.min(stride + dilation) < 1:
        raise ValueError(f"{op}: stride {stride} and dilation {dilation} must be {nd} "
                         "positive ints")
    n, c = x.shape[:2]
    out_channels = weight.shape[0]
    groups = _int(op, "groups", groups)
    if groups < 1 or c % groups or out_channels % groups:
        raise ValueError(f"{op}: groups={groups} must divide the input channels ({c}, input "
                         f"shape {input.shape}) and the output channels ({out_channels}, weight "
                         f"shape {weight.shape})")
    if weight.shape[1] * groups != c:
        raise ValueError(f"{op}: an input of shape {input.shape} has {c} channels, but a weight "
                         f"of shape {weight.shape} with groups={groups} expects "
                         f"{weight.shape[1] * groups}")
    widths = _conv_padding(op, padding, nd, kernel, stride, dilation)
    spatial = tuple(m + a + b for m, (a, b) in zip(x.shape[2:], widths))
    if builtins.any(dl * (k - 1) + 1 > m for m, k, dl in zip(spatial, kernel, dilation)):
        raise ValueError(f"{op}: kernel {kernel} with dilation {dilation} is larger than the "
                         f"padded input {spatial} (input shape {input.shape})")
    if builtins.any(a or b for a, b in widths):
        x = x.pad(_flat_pad(widths))
    # im2col: the windows (n, groups, c / groups, *positions, *kernel) copied once into one
    # (c / groups * kernel, n * positions) matrix per group, input channel and kernel offset
    # outermost. The forward einsum and both gradients' einsums (weight: g cols^T; windows:
    # W^T g) then multiply it as it lies, with no other copy of it, and the gradient of the
    # windows comes with each kernel offset's slab in one piece, as as_strided_scatter adds them
    cols = x.reshape((n, groups, c // groups) + spatial).windows(kernel, stride, dilation)
    positions = cols.shape[3:3 + nd]
    cols = cols.permute((1, 2) + tuple(range(3 + nd, 3 + 2 * nd)) + (0,)
                        + tuple(range(3, 3 + nd)))
    cols = cols.reshape((groups, _size(cols.shape[1:2 + nd]), n * _size(positions)))
    w = weight.reshape((groups, out_channels // groups, cols.shape[1]))
    out = einsum("gok,gkp->gop", w, cols)
    out = out.reshape((out_channels, n) + positions).permute((1, 0) + tuple(range(2, 2 + nd)))
    if bias is not None:
        out = out + bias.reshape((out_channels,) + (1,) * nd)
    return out.squeeze(0) if unbatched else out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-d convolution of (N, C, L) with weight (out, C / groups, k), as F.conv1d."""
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d convolution of (N, C, H, W) with weight (out, C / groups, kh, kw), as F.conv2d."""
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-d convolution of (N, C, D, H, W) with weight (out, C / groups, kd, kh, kw)."""
    return _conv("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


def _conv_transpose(op, nd, input, weight, bias, stride, padding, output_padding, groups,
                    dilation):
    """The adjoint of _conv: every input position adds weight times its value to the window
    it would have been computed from, an einsum followed by as_strided_scatter (whose own
    gradient is the window view again), then the padding is cropped away."""
    x, unbatched = _spatial_input(op, input, nd)
    weight = _tensor(weight, None, op)
    if weight.ndim != nd + 2:
        raise ValueError(f"{op}: weight must be {nd + 2}-D (in_channels, out_channels / groups, "
                         f"*kernel), got shape {weight.shape}")
    kernel = weight.shape[2:]
    stride, dilation = _ntuple(op, stride, nd, "stride"), _ntuple(op, dilation, nd, "dilation")
    pads = _ntuple(op, padding, nd, "padding")
    extra = _ntuple(op, output_padding, nd, "output_padding")
    if builtins.any(len(t) != nd for t in (stride, dilation, pads, extra)) \
            or builtins.min(stride + dilation) < 1 \
            or builtins.min(pads + extra) < 0:
        raise ValueError(f"{op}: stride {stride}, padding {pads}, output_padding {extra} and "
                         f"dilation {dilation} must be {nd} ints each (stride, dilation >= 1)")
    if builtins.any(e >= s and e >= dl for e, s, dl in zip(extra, stride, dilation)):
        raise ValueError(f"{op}: output_padding {extra} must be smaller than stride {stride} "
                         f"or dilation {dilation}")
    n, c = x.shape[:2]
    groups = _int(op, "groups", groups)
    if groups < 1 or c % groups or weight.shape[0] != c:
        raise ValueError(f"{op}: an input of shape {input.shape} and a weight of shape "
                         f"{weight.shape} (in_channels, out_channels / groups, *kernel) do not "
                         f"match with groups={groups}")
    out_channels = weight.shape[1] * groups
    # the full output, before cropping `padding` from each side; output_padding adds at the end
    full = tuple((m - 1) * s + dl * (k - 1) + 1 + e
                 for m, k, s, dl, e in zip(x.shape[2:], kernel, stride, dilation, extra))
    if builtins.any(f - 2 * p <= 0 for f, p in zip(full, pads)):
        raise ValueError(f"{op}: padding {pads} leaves no output for an input of shape "
                         f"{input.shape} and kernel {kernel}")
    pos, ker = _SPATIAL[:nd], _KERNEL[:nd]
    # computed kernel-first, so that each kernel offset's slab is in one piece for the scatter
    if groups == 1:
        cols = einsum(f"nc{pos},co{ker}->no{ker}{pos}", x, weight)
    else:
        xg = x.reshape((n, groups, c // groups) + x.shape[2:])
        wg = weight.reshape((groups, c // groups) + weight.shape[1:])
        cols = einsum(f"ngc{pos},gco{ker}->ngo{ker}{pos}", xg, wg)
        cols = cols.reshape((n, out_channels) + cols.shape[3:])
    cols = cols.permute((0, 1) + tuple(range(2 + nd, 2 + 2 * nd)) + tuple(range(2, 2 + nd)))
    base = (n, out_channels) + full
    strides = _contiguous_strides(base)
    inner = strides[2:]
    view = strides[:2] + tuple(s * st for s, st in zip(inner, stride)) \
        + tuple(s * dl for s, dl in zip(inner, dilation))
    out = _as_strided_scatter(cols, cols.shape, view, 0, base)
    if builtins.any(pads):
        out = out[(slice(None),) * 2 + tuple(slice(p, f - p) for p, f in zip(pads, full))]
    if bias is not None:
        out = out + bias.reshape((out_channels,) + (1,) * nd)
    return out.squeeze(0) if unbatched else out


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed 1-d convolution, weight (in, out / groups, k), as F.conv_transpose1d."""
    return _conv_transpose("conv_transpose1d", 1, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed 2-d convolution (the gradient of conv2d with respect to its input), weight
    (in, out / groups, kh, kw), as F.conv_transpose2d."""
    return _conv_transpose("conv_transpose2d", 2, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


def _pool_setup(op, input, nd, kernel_size, stride, padding, dilation, ceil_mode):
    """Checked (x, unbatched, kernel, stride, dilation, widths) for a pooling op; widths
    include the extra trailing room that ceil_mode's last, partial window reads."""
    x, unbatched = _spatial_input(op, input, nd)
    kernel = _ntuple(op, kernel_size, nd, "kernel_size")
    stride = kernel if stride is None or stride == [] or stride == () else _ntuple(
        op, stride, nd, "stride")
    pads, dilation = _ntuple(op, padding, nd, "padding"), _ntuple(op, dilation, nd, "dilation")
    if builtins.any(len(t) != nd for t in (kernel, stride, pads, dilation)) \
            or builtins.min(kernel + stride + dilation) < 1 or builtins.min(pads) < 0:
        raise ValueError(f"{op}: kernel_size {kernel}, stride {stride}, padding {pads} and "
                         f"dilation {dilation} must be {nd} ints each")
    if builtins.any(2 * p > k for p, k in zip(pads, kernel)):
        raise ValueError(f"{op}: padding {pads} should be at most half of kernel_size {kernel}")
    widths = []
    for m, k, s, p, dl in zip(x.shape[2:], kernel, stride, pads, dilation):
        span = m + 2 * p - dl * (k - 1) - 1
        count = (span + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (count - 1) * s >= m + p:  # the last window must start inside
            count -= 1
        if span < 0 or count < 1:
            raise ValueError(f"{op}: kernel_size {kernel} with padding {pads} and dilation "
                             f"{dilation} does not fit an input of shape {input.shape}")
        widths.append((p, builtins.max((count - 1) * s + dl * (k - 1) + 1 - m - p, p)))
    return x, unbatched, kernel, stride, dilation, tuple(widths)


def _max_pool(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x, unbatched, kernel, stride, dilation, widths = _pool_setup(
        op, input, nd, kernel_size, stride, padding, dilation, ceil_mode)
    shape, d = x.shape, x._device
    # Where each window's maximum is, is found on the raw data, outside the graph: the
    # windows of the input (padding reads -inf) as one strided view, kernel offsets first.
    # The output then takes one element per window from the input, so the gradient goes to
    # that element alone, as torch's max_pool: the first maximum, or the last nan.
    flat = x.reshape(-1)
    data = d.reshape(flat._data, shape)
    plan = _max_pool_plan(d, shape, x.dtype, kernel, stride, dilation, widths)
    if plan.outside is not None:  # zeros inside, -inf outside; adding keeps inf and nan
        data = d.add(d.pad(data, ((0, 0), (0, 0)) + widths), plan.outside)
    view = d.as_strided(data, plan.view_shape, plan.view_strides)
    index = d.add(plan.starts, d.take(plan.steps, d.pool_argmax(view, nd)))
    if plan.outside is not None:
        # a window whose input elements are all -inf: torch gives its first one, never the
        # padding (-inf read from the padding ties with it)
        empty = d.equal(d.max(view, tuple(range(nd))), -np.inf)
        index = d.where(empty, plan.first_inside, index)
    out = flat[_wrap(d.add(index, plan.planes), d)]
    if unbatched:
        out = out.squeeze(0)
    if not return_indices:
        return out
    indices = _wrap(index, d)  # torch's indices: flat positions in each input plane
    return out, (indices.squeeze(0) if unbatched else indices)


class _MaxPoolPlan:
    """Host-built tables of one max-pool geometry, as device arrays: the strided view of the
    (padded) input's windows, and per output position and kernel offset where they read."""

    def __init__(self, d, shape, dtype, kernel, stride, dilation, widths):
        nd = len(kernel)
        padded = tuple(m + a + b for m, (a, b) in zip(shape[2:], widths))
        positions = tuple((m - dl * (k - 1) - 1) // s + 1
                          for m, k, s, dl in zip(padded, kernel, stride, dilation))
        strides = _contiguous_strides(shape[:2] + padded)
        self.view_shape = kernel + shape[:2] + positions
        self.view_strides = (tuple(st * dl for st, dl in zip(strides[2:], dilation))
                             + strides[:2] + tuple(st * s for st, s in zip(strides[2:], stride)))
        plane = _contiguous_strides(shape[2:])  # strides in the unpadded input plane
        # a window's first element and each kernel offset's step from it, in plane positions
        corner = np.zeros(positions, np.int64)
        for axis in range(nd):
            grid = np.arange(positions[axis]) * stride[axis] - widths[axis][0]
            corner = corner + grid.reshape([-1 if a == axis else 1 for a in range(nd)]) \
                * plane[axis]
        steps = np.zeros(kernel, np.int64)
        for axis in range(nd):
            steps = steps + (np.arange(kernel[axis]) * dilation[axis] * plane[axis]).reshape(
                [-1 if a == axis else 1 for a in range(nd)])
        self.starts = d.array(corner.reshape((1, 1) + positions))
        self.steps = d.array(steps.reshape(-1))
        self.planes = d.array(np.arange(shape[0] * shape[1], dtype=np.int64).reshape(
            shape[:2] + (1,) * nd) * _size(shape[2:]))
        self.outside = self.first_inside = None
        if builtins.any(a or b for a, b in widths):
            self.outside = d.array(np.pad(np.zeros(shape[2:], dtype), widths,
                                          constant_values=-np.inf))
            first = np.zeros(positions, np.int64)
            for axis in range(nd):  # the first offset that lands inside, per axis
                origin = np.arange(positions[axis]) * stride[axis] - widths[axis][0]
                skip = np.maximum(np.ceil(-origin / dilation[axis]), 0).astype(np.int64)
                first = first + ((origin + skip * dilation[axis]) * plane[axis]).reshape(
                    [-1 if a == axis else 1 for a in range(nd)])
            self.first_inside = d.array(first.reshape((1, 1) + positions))


_max_pool_plans = {}


def _max_pool_plan(d, shape, dtype, kernel, stride, dilation, widths):
    key = (d, shape, dtype, kernel, stride, dilation, widths)
    plan = _max_pool_plans.get(key)
    if plan is None:
        plan = _max_pool_plans[key] = _MaxPoolPlan(d, shape, dtype, kernel, stride, dilation,
                                                   widths)
    return plan


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Maximum over each window of (N, C, L), as F.max_pool1d (gradient to the first max)."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Maximum over each window of (N, C, H, W), as F.max_pool2d: padding reads -inf, the
    gradient goes to the first maximum of each window, and return_indices gives torch's flat
    indices into each H*W plane."""
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def _avg_pool(op, nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    x, unbatched, kernel, stride, _, widths = _pool_setup(
        op, input, nd, kernel_size, stride, padding, 1, ceil_mode)
    spatial = x.shape[2:]
    if builtins.any(a or b for a, b in widths):
        x = x.pad(_flat_pad(widths))
    axes = tuple(range(-nd, 0))
    total = x.windows(kernel, stride).sum(axes)
    if divisor_override:
        out = total / divisor_override
    elif not ceil_mode and (count_include_pad or not builtins.any(a for a, _ in widths)):
        out = total / _size(kernel)
    else:
        # torch divides by the window's size within the input (and, with count_include_pad,
        # its padding, but never the room beyond it that ceil_mode adds): count it with a mask
        inside = [(0, b - a) if count_include_pad else (a, b) for a, b in widths]
        mask = np.pad(np.ones(tuple(m + (2 * a if count_include_pad else 0)
                                    for m, (a, _) in zip(spatial, widths))), inside)
        counts = np.lib.stride_tricks.sliding_window_view(mask, kernel)[
            tuple(slice(None, None, s) for s in stride)].sum(tuple(range(nd, 2 * nd)))
        counts = counts[tuple(slice(0, n) for n in total.shape[2:])]
        out = total / Tensor(counts.astype(x.dtype), device=x._device)
    return out.squeeze(0) if unbatched else out


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """Mean over each window of (N, C, L), as F.avg_pool1d (padding counts by default)."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Mean over each window of (N, C, H, W), as F.avg_pool2d (padding counts by default)."""
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def _bin_means(n, out):
    """(out, n) matrix averaging torch's adaptive bins: floor(i n/out) to ceil((i+1) n/out)."""
    m = np.zeros((out, n))
    for i in range(out):
        start, end = (i * n) // out, -(-((i + 1) * n) // out)
        m[i, start:end] = 1.0 / (end - start)
    return m


def adaptive_avg_pool2d(input, output_size):
    """Mean over torch's adaptive bins of (N, C, H, W): output_size (h, w), an int, or None in
    a place to keep that size. A bin mean is separable, so this is one einsum with two small
    averaging matrices."""
    x, unbatched = _spatial_input("adaptive_avg_pool2d", input, 2)
    size = (output_size, output_size) if not isinstance(output_size, (tuple, list)) \
        else tuple(output_size)
    if len(size) != 2:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be an int or 2 values, "
                         f"got {output_size!r}")
    size = tuple(m if s is None else _int("adaptive_avg_pool2d", "output_size", s)
                 for s, m in zip(size, x.shape[2:]))
    if builtins.min(size) < 1 or builtins.min(x.shape[2:]) < 1:
        raise ValueError(f"adaptive_avg_pool2d: output_size {size} and input shape "
                         f"{input.shape} must be positive")
    rows, cols = (Tensor(_bin_means(m, s).astype(x.dtype), device=x._device)
                  for m, s in zip(x.shape[2:], size))
    out = einsum("nchw,ph,qw->ncpq", x, rows, cols)
    return out.squeeze(0) if unbatched else out


# ---- functional: losses --------------------------------------------------------------------

def _check_reduction(op, reduction):
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{op}: reduction must be 'none', 'mean' or 'sum', not {reduction!r}")


def _reduce(op, loss, reduction):
    _check_reduction(op, reduction)
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def _same_shape(op, input, target):
    if input.shape != target.shape:
        raise ValueError(f"{op}: input of shape {input.shape} and target of shape "
                         f"{target.shape} differ (PyTorch would broadcast them, with a warning)")


def _nll_terms(op, logp, target, weight, ignore_index):
    """Per-element -weight[t] logp[t] (0 where t is ignore_index), the per-element weights, and
    the mask of targets that count; logp is (N, C, d1, ...) with target (N, d1, ...), or (C,)
    with a 0-d target."""
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: class-index targets must be integers, not {target.dtype}")
    batched = logp.ndim >= 2
    expected = (logp.shape[:1] + logp.shape[2:]) if batched else ()
    if target.shape != expected:
        raise ValueError(f"{op}: an input of shape {logp.shape} needs a target of shape "
                         f"{expected}, got {target.shape}")
    n_classes = logp.shape[1] if batched else logp.shape[0]
    host = target.numpy()
    bad = host[(host != ignore_index) & ((host < 0) | (host >= n_classes))]
    if bad.size:
        raise IndexError(f"{op}: target {bad.flat[0]} is out of bounds for {n_classes} classes")
    counted = target != ignore_index
    safe = where(counted, target, 0)  # ignored targets read class 0, then count for nothing
    if batched:
        picked = logp.take_along_dim(safe.unsqueeze(1), 1).squeeze(1)
    else:
        picked = logp[safe]
    if weight is None:
        return where(counted, -picked, 0.0), counted.astype(logp.dtype), counted
    w = where(counted, _as_tensor(weight, logp)[safe], 0.0)
    return where(counted, -picked * w, 0.0), w, counted


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of class-index targets; input holds log-probabilities in dim 1.
    'mean' divides by the summed weights of the targets that count (as torch)."""
    _check_reduction("nll_loss", reduction)
    input = _tensor(input, None, "nll_loss")
    losses, w, _ = _nll_terms("nll_loss", input, _as_tensor(target, input, "nll_loss"), weight,
                              ignore_index)
    if reduction == "mean":
        return losses.sum() / w.sum()
    return _reduce("nll_loss", losses, reduction)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """log_softmax over the classes (dim 1, or 0 for an unbatched input) and the negative
    log-likelihood, as torch: target holds class indices (integers, with ignore_index and
    weight) or class probabilities (floats, the input's shape); label_smoothing mixes in the
    uniform distribution."""
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= _real("cross_entropy", "label_smoothing", label_smoothing) <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got "
                         f"{label_smoothing}")
    input = _tensor(input, None, "cross_entropy")
    dim = 1 if input.ndim >= 2 else 0
    n_classes = input.shape[dim]
    logp = input.log_softmax(dim)
    target = _as_tensor(target, input, "cross_entropy")
    if weight is not None:
        weight = _as_tensor(weight, input).reshape(
            tuple(n_classes if i == dim else 1 for i in range(input.ndim)))
    if _is_float(target.dtype):  # class probabilities
        _same_shape("cross_entropy", input, target)
        if label_smoothing:
            target = target * (1 - label_smoothing) + label_smoothing / n_classes
        terms = logp * target if weight is None else logp * target * weight
        return _reduce("cross_entropy", -terms.sum(dim), reduction)
    flat_weight = None if weight is None else weight.reshape(-1)
    losses, w, counted = _nll_terms("cross_entropy", logp, target, flat_weight, ignore_index)
    if reduction == "mean":
        loss = losses.sum() / w.sum()
    else:
        loss = _reduce("cross_entropy", losses, reduction)
    if not label_smoothing:
        return loss
    # torch's smoothing term: -sum_c weight_c logp_c per element, reduced like the main term
    smooth = -(logp if weight is None else logp * weight).sum(dim)
    smooth = where(counted, smooth, 0.0)
    if reduction == "mean":
        smooth = smooth.sum() / w.sum()
    else:
        smooth = _reduce("cross_entropy", smooth, reduction)
    return loss * (1 - label_smoothing) + smooth * (label_smoothing / n_classes)


def mse_loss(input, target, reduction="mean"):
    """(input - target)^2, reduced; the shapes must match."""
    input = _tensor(input, None, "mse_loss")
    target = _as_tensor(target, input, "mse_loss")
    _same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce("mse_loss", diff * diff, reduction)


def l1_loss(input, target, reduction="mean"):
    """|input - target|, reduced; the shapes must match."""
    input = _tensor(input, None, "l1_loss")
    target = _as_tensor(target, input, "l1_loss")
    _same_shape("l1_loss", input, target)
    return _reduce("l1_loss", (input - target).abs(), reduction)


def _clamped_log(p, complement=False):
    # log p, or log(1 - p) as log1p(-p) (complement=True; as torch, so that a small p keeps
    # its bits), at least -100 as in torch; where the log is -inf the constant branch is taken,
    # so that the gradient there is 0 rather than 0 * inf (torch's is about -1e12 instead)
    inside = p < 1 if complement else p > 0
    safe = where(inside, p, 0.5)
    log = (-safe).log1p() if complement else safe.log()
    return where(inside, log, -100.0).clamp(min=-100.0)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """-(t log p + (1 - t) log(1 - p)) for probabilities p in [0, 1], each log clamped at
    -100 (as torch)."""
    input = _tensor(input, None, "binary_cross_entropy")
    target = _as_tensor(target, input, "binary_cross_entropy")
    _same_shape("binary_cross_entropy", input, target)
    host = input.detach().numpy()
    if np.any((host < 0) | (host > 1)):
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 "
                         "and 1 (use binary_cross_entropy_with_logits for logits)")
    loss = -(target * _clamped_log(input) + (1 - target) * _clamped_log(input, True))
    if weight is not None:
        loss = loss * _as_tensor(weight, input)
    return _reduce("binary_cross_entropy", loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean",
                                     pos_weight=None):
    """binary_cross_entropy(sigmoid(x), t) without overflow, for any logits x:
    (1 - t) softplus(x) + pos_weight t softplus(-x)."""
    input = _tensor(input, None, "binary_cross_entropy_with_logits")
    target = _as_tensor(target, input, "binary_cross_entropy_with_logits")
    _same_shape("binary_cross_entropy_with_logits", input, target)
    # -log(1 - sigmoid x) = softplus(x) = max(x, 0) + log(1 + e^-|x|), and -log(sigmoid x) =
    # softplus(-x): two terms that are never negative, rather than torch's (1 - t) x -
    # log(sigmoid x), which cancels (at t = 0 and x = -10 about 6 of float32's 24 bits are
    # left); the gradient, (1 - t) sigmoid(x) - pos_weight t sigmoid(-x), is exact at t = 0 and
    # t = 1. The three wheres keep softplus's slopes at x = 0 (max(x, 0): 0, max(-x, 0): -1,
    # -|x|: 1), so that the gradient there is torch's
    x = input
    positive = x > 0
    log_one_plus = where(positive, -x, x).exp().log1p()
    softplus_x = where(positive, x, 0.0) + log_one_plus
    softplus_neg_x = where(positive, 0.0, -x) + log_one_plus
    if pos_weight is not None:
        target_pos = _as_tensor(pos_weight, input) * target
    else:
        target_pos = target
    loss = (1 - target) * softplus_x + target_pos * softplus_neg_x
    if weight is not None:
        loss = loss * _as_tensor(weight, input)
    return _reduce("binary_cross_entropy_with_logits", loss, reduction)


# ---- layers ------------------------------------------------------------------------------------

def _empty(shape, dtype):
    """A new parameter of `shape` (zeros until it is initialised)."""
    return Parameter(np.zeros(shape, np.float32 if dtype is None else dtype))


class Identity(Module):
    """Returns its input (arguments to the constructor are ignored, as torch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        """The input itself."""
        return input


class Linear(Module):
    """y = x W^T + b, with W of shape (out_features, in_features) and PyTorch's default init."""

    def __init__(self, in_features, out_features, bias=True, *, dtype=None):
        super().__init__()
        in_features = _size_arg("Linear", "in_features", in_features)
        out_features = _size_arg("Linear", "out_features", out_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = _empty((out_features, in_features), dtype)
        self.bias = _empty((out_features,), dtype) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """W ~ kaiming_uniform_(a=sqrt(5)) and b ~ U(-1/sqrt(in), 1/sqrt(in)), as torch."""
        kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            uniform_(self.bias, -bound, bound)

    def forward(self, input):
        """linear(input, weight, bias)."""
        return linear(input, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Dropout(Module):
    """Zeroes elements with probability p when training (scaling the rest); identity in eval."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= _real("Dropout", "p", p) <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p, self.inplace = p, inplace  # inplace is accepted for torch's signature only

    def forward(self, input):
        """dropout(input, p, training)."""
        return dropout(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class LayerNorm(Module):
    """Normalises over the trailing dims normalized_shape, then weight * x + bias."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, *,
                 dtype=None):
        super().__init__()
        self.normalized_shape = _new_shape("LayerNorm", (normalized_shape,))
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self.weight = self.bias = None
        if elementwise_affine:
            self.weight = ones_(_empty(self.normalized_shape, dtype))
            self.bias = zeros_(_empty(self.normalized_shape, dtype)) if bias else None

    def forward(self, input):
        """layer_norm(input, normalized_shape, weight, bias, eps)."""
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class BatchNorm1d(Module):
    """Batch normalisation of (N, C) or (N, C, L) inputs per channel, with running statistics
    (buffers running_mean, running_var, num_batches_tracked) used in eval mode, as torch.
    momentum=None keeps a cumulative average instead of an exponential one."""

    _input_dims = (2, 3)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, *, bias=True, dtype=None):
        super().__init__()
        num_features = _size_arg(type(self).__name__, "num_features", num_features)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = ones_(_empty((num_features,), dtype)) if affine else None
        self.bias = zeros_(_empty((num_features,), dtype)) if affine and bias else None
        dtype = np.float32 if dtype is None else dtype
        tracked = track_running_stats
        self.register_buffer("running_mean",
                             Tensor(np.zeros(num_features, dtype)) if tracked else None)
        self.register_buffer("running_var",
                             Tensor(np.ones(num_features, dtype)) if tracked else None)
        self.register_buffer("num_batches_tracked",
                             Tensor(np.array(0, np.int64)) if tracked else None)

    def forward(self, input):
        """batch_norm with the batch's statistics when training, the running ones in eval."""
        input = _tensor(input, None, type(self).__name__)
        if input.ndim not in self._input_dims:
            dims = " or ".join(f"{n}-D" for n in self._input_dims)
            raise ValueError(f"{type(self).__name__}: expected a {dims} input, got shape "
                             f"{input.shape}")
        # checked here, before num_batches_tracked counts the batch
        if input.shape[1] != self.num_features:
            raise RuntimeError(f"{type(self).__name__}: expected {self.num_features} channels "
                               f"(dim 1), got an input of shape {input.shape}")
        if self.training and _count(input.shape, (0,) + tuple(range(2, input.ndim))) <= 1:
            raise ValueError(f"{type(self).__name__}: expected more than 1 value per channel "
                             f"when training, got input of shape {input.shape}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            count = self.num_batches_tracked
            _write(count, count._device.add(count._data, 1))
            if self.momentum is None:  # a cumulative moving average
                momentum = 1.0 / count.item()
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        tracked = not self.training or self.track_running_stats
        return batch_norm(input, self.running_mean if tracked else None,
                          self.running_var if tracked else None, self.weight, self.bias,
                          use_batch, momentum, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class Embedding(Module):
    """A table of num_embeddings vectors of size embedding_dim, looked up by integer index;
    initialised N(0, 1), the padding_idx row zero (and without gradient)."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, *, dtype=None):
        super().__init__()
        num_embeddings = _size_arg("Embedding", "num_embeddings", num_embeddings)
        embedding_dim = _size_arg("Embedding", "embedding_dim", embedding_dim)
        if padding_idx is not None:
            padding_idx = _int("Embedding", "padding_idx", padding_idx)
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} is out of range for "
                                 f"{num_embeddings} embeddings")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        self.weight = _empty((num_embeddings, embedding_dim), dtype)
        self.reset_parameters()

    def reset_parameters(self):
        """weight ~ N(0, 1), with the padding_idx row zero, as torch."""
        host = _rng.standard_normal(self.weight.shape)
        if self.padding_idx is not None:
            host[self.padding_idx] = 0
        _fill(self.weight, host)

    def forward(self, input):
        """embedding(input, weight, padding_idx)."""
        return embedding(input, self.weight, self.padding_idx)

    def extra_repr(self):
        pad_text = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad_text}"


class BatchNorm2d(BatchNorm1d):
    """Batch normalisation of (N, C, H, W) inputs per channel over (N, H, W), with running
    statistics, as torch.nn.BatchNorm2d."""

    _input_dims = (4,)


class _ConvNd(Module):
    """What Conv1d/2d/3d and ConvTranspose2d share: torch's layout, init and repr."""

    _nd, _transposed, _functional = 2, False, None

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", output_padding=0, *, dtype=None):
        super().__init__()
        name, nd = type(self).__name__, self._nd
        in_channels = _size_arg(name, "in_channels", in_channels)
        out_channels = _size_arg(name, "out_channels", out_channels)
        groups = _int(name, "groups", groups)
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: groups={groups} must divide in_channels ({in_channels}) "
                             f"and out_channels ({out_channels})")
        if padding_mode != "zeros":
            raise NotImplementedError(f"{name}: only padding_mode 'zeros' is implemented, not "
                                      f"{padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _ntuple(name, kernel_size, nd, "kernel_size")
        if builtins.any(k < 0 for k in self.kernel_size):
            raise RuntimeError(f"{name}: kernel_size {self.kernel_size} cannot be negative")
        self.stride = _ntuple(name, stride, nd, "stride")
        self.padding = padding if isinstance(padding, str) else _ntuple(name, padding, nd,
                                                                        "padding")
        self.dilation = _ntuple(name, dilation, nd, "dilation")
        self.output_padding = _ntuple(name, output_padding, nd, "output_padding")
        self.padding_mode = padding_mode
        if isinstance(padding, str):
            _conv_padding(name, padding, nd, self.kernel_size, self.stride, self.dilation)
        if self._transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = _empty(shape, dtype)
        self.bias = _empty((out_channels,), dtype) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """weight ~ kaiming_uniform_(a=sqrt(5)), bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
        fan_in = weight.shape[1] * kernel size, as torch."""
        kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = _fan("reset_parameters", self.weight, "fan_in")
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv1d(_ConvNd):
    """1-d convolution layer over (N, C, L), weight (out, in / groups, k), as torch."""

    _nd = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", *, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype=dtype)

    def forward(self, input):
        """conv1d(input, weight, bias, stride, padding, dilation, groups)."""
        return conv1d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                      self.groups)


class Conv2d(_ConvNd):
    """2-d convolution layer over (N, C, H, W), weight (out, in / groups, kh, kw), as torch."""

    _nd = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", *, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype=dtype)

    def forward(self, input):
        """conv2d(input, weight, bias, stride, padding, dilation, groups)."""
        return conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                      self.groups)


class Conv3d(_ConvNd):
    """3-d convolution layer over (N, C, D, H, W), weight (out, in / groups, *k), as torch."""

    _nd = 3

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", *, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype=dtype)

    def forward(self, input):
        """conv3d(input, weight, bias, stride, padding, dilation, groups)."""
        return conv3d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                      self.groups)


class ConvTranspose2d(_ConvNd):
    """Transposed 2-d convolution layer, weight (in, out / groups, kh, kw), as torch."""

    _nd, _transposed = 2, True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros", *,
                 dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, dtype=dtype)

    def forward(self, input):
        """conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups,
        dilation)."""
        return conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                self.output_padding, self.groups, self.dilation)


class MaxPool2d(Module):
    """max_pool2d as a layer (stride defaults to kernel_size)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input):
        """max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode,
        return_indices)."""
        return max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                          self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """avg_pool2d as a layer (stride defaults to kernel_size)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input):
        """avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
        divisor_override)."""
        return avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """adaptive_avg_pool2d as a layer."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        """adaptive_avg_pool2d(input, output_size)."""
        return adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class Flatten(Module):
    """Flattens dims start_dim..end_dim into one (by default all but the batch dim)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        """input.flatten(start_dim, end_dim)."""
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


# ---- activations -------------------------------------------------------------------------------
# Each activation module holds its arguments as attributes (PyTorch's names, order and defaults)
# and applies its function from nn.functional; `shown` is its extra_repr, as PyTorch prints it.
# `inplace` is accepted and ignored: every op returns a new tensor.

_REQUIRED = object()  # an argument without a default (Threshold's)


class _Activation(Module):
    """The base of the activation modules in _ACTIVATIONS."""

    _function, _defaults, _shown = None, {}, ""

    def __init__(self, *args, **kwargs):
        super().__init__()
        names = list(self._defaults)
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}: takes at most {len(names)} arguments "
                            f"({', '.join(names)}), got {len(args)}")
        values = dict(self._defaults, **dict(zip(names, args)))
        for key, value in kwargs.items():
            if key not in values or key in names[:len(args)]:
                raise TypeError(f"{type(self).__name__}: unexpected or repeated argument {key!r}")
            values[key] = value
        missing = [k for k, v in values.items() if v is _REQUIRED]
        if missing:
            raise TypeError(f"{type(self).__name__}: missing argument(s) {', '.join(missing)}")
        self.__dict__.update(values)

    def forward(self, input):
        arguments = {k: getattr(self, k) for k in self._defaults if k != "inplace"}
        return type(self)._function(input, **arguments)

    def extra_repr(self):
        shown = self._shown.format(*(getattr(self, k) for k in self._defaults if k != "inplace"))
        if getattr(self, "inplace", False):
            shown += ", inplace=True" if shown else "inplace=True"
        return shown

# name          function     arguments (PyTorch's)                      extra_repr
_ACTIVATIONS = [
    ("ReLU",        relu,        dict(inplace=False),                       ""),
    ("LeakyReLU",   leaky_relu,  dict(negative_slope=0.01, inplace=False),  "negative_slope={!r}"),
    ("Tanh",        tanh,        dict(),                                    ""),
    ("Sigmoid",     sigmoid,     dict(),                                    ""),
    ("GELU",        gelu,        dict(approximate="none"),                  "approximate={!r}"),
    ("Softplus",    softplus,    dict(beta=1.0, threshold=20.0),      "beta={!r}, threshold={!r}"),
    ("Softmax",     softmax,     dict(dim=-1),                              "dim={!r}"),
    ("LogSoftmax",  log_softmax, dict(dim=-1),                              "dim={!r}"),
    ("Softmin",     softmin,     dict(dim=None),                            "dim={!r}"),
    ("ELU",         elu,         dict(alpha=1.0, inplace=False),            "alpha={!r}"),
    ("CELU",        celu,        dict(alpha=1.0, inplace=False),            "alpha={!r}"),
    ("SELU",        selu,        dict(inplace=False),                       ""),
    ("ReLU6",       relu6,       dict(inplace=False),                       ""),
    ("Hardtanh",    hardtanh,    dict(min_val=-1.0, max_val=1.0, inplace=False),
     "min_val={!r}, max_val={!r}"),
    ("Hardsigmoid", hardsigmoid, dict(inplace=False),                       ""),
    ("Hardswish",   hardswish,   dict(inplace=False),                       ""),
    ("SiLU",        silu,        dict(inplace=False),                       ""),
    ("Mish",        mish,        dict(inplace=False),                       ""),
    ("Softsign",    softsign,    dict(),                                    ""),
    ("LogSigmoid",  logsigmoid,  dict(),                                    ""),
    ("GLU",         glu,         dict(dim=-1),                              "dim={!r}"),
    ("Tanhshrink",  tanhshrink,  dict(),                                    ""),
    ("Softshrink",  softshrink,  dict(lambd=0.5),                           "{!r}"),
    ("Hardshrink",  hardshrink,  dict(lambd=0.5),                           "{!r}"),
    ("Threshold",   threshold,   dict(threshold=_REQUIRED, value=_REQUIRED, inplace=False),
     "threshold={!r}, value={!r}"),
]
_ACTIVATION_MODULES = {
    name: type(name, (_Activation,), dict(
        __doc__=fn.__doc__, __module__="simplegrad.nn", _function=staticmethod(fn),
        _defaults=defaults, _shown=shown))
    for name, fn, defaults, shown in _ACTIVATIONS}


class RReLU(Module):
    """Leaky ReLU with a random slope in [lower, upper] per element when training, and the
    mean slope (lower + upper) / 2 in eval mode."""

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False):
        super().__init__()
        self.lower, self.upper = lower, upper

    def forward(self, input):
        """rrelu(input, lower, upper, training)."""
        return rrelu(input, self.lower, self.upper, self.training)

    def extra_repr(self):
        return f"lower={self.lower!r}, upper={self.upper!r}"


class PReLU(Module):
    """x for x > 0, a x otherwise, with the slopes a a parameter: one, or one per channel."""

    def __init__(self, num_parameters=1, init=0.25, *, dtype=None):
        super().__init__()
        self.num_parameters = _size_arg("PReLU", "num_parameters", num_parameters)
        self.weight = Parameter(Tensor(np.full(num_parameters, init), dtype=dtype or np.float32))

    def forward(self, input):
        """prelu(input, weight)."""
        return input.prelu(self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


# ---- recurrent layers --------------------------------------------------------------------------
# PyTorch's layouts, so that its state dicts load: the gates of a cell are stacked in one weight,
# rows (i, f, g, o) for an LSTM and (r, z, n) for a GRU, so one matmul computes them all. A
# sequence runs layer by layer and direction by direction: the input projection of all time
# steps is one matmul (x W_ih^T + b), unbound into steps once (Tensor.unbind, linear in
# backward); each step adds h W_hh^T and applies the gates; the outputs are stacked once.

def _lstm_step_composite(gates, c):
    """(h', c') from the pre-activations x W_ih^T + h W_hh^T + b and the cell state c."""
    i, f, g, o = gates.chunk(4, -1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c.tanh(), c


def _lstm_step(gates, c):
    """_lstm_step_composite as two ops, c' = s(i) tanh(g) + s(f) c and h' = s(o) tanh(c'),
    each one raw device computation forward and backward instead of a dozen recorded ops
    (nn.LSTM runs it at every step). Under create_graph their rules compute the same
    formulas with tensor ops, so gradients of gradients stay exact."""
    d, n = gates._device, gates.shape[-1] // 4
    lead = (slice(None),) * (gates.ndim - 1)

    def part(k):  # the k-th gate block of the pre-activations, raw
        return d.getitem(gates._data, lead + (slice(k * n, (k + 1) * n),))

    si, sf, tg = d.sigmoid(part(0)), d.sigmoid(part(1)), d.tanh(part(2))
    so = d.sigmoid(part(3))
    zeros = d.full(si.shape, 0, gates.dtype)

    def cell_backward(g, out, need):
        # dc'/d(i, f, g) = tanh(g) s'(i), c s'(f), s(i) tanh'(g); dc'/dc = s(f)
        if is_grad_enabled():  # create_graph: the same, recorded
            i, f, gg, _ = gates.chunk(4, -1)
            i, f, gg = i.sigmoid(), f.sigmoid(), gg.tanh()
            dgates = cat([g * gg * i * (1 - i), g * c * f * (1 - f), g * i * (1 - gg * gg),
                          zeros_like(i)], -1)
            return dgates, g * f
        gd = g._data
        di = d.mul(d.mul(gd, tg), d.mul(si, d.subtract(1, si)))
        df = d.mul(d.mul(gd, c._data), d.mul(sf, d.subtract(1, sf)))
        dg = d.mul(d.mul(gd, si), d.subtract(1, d.mul(tg, tg)))
        return (_wrap(d.concatenate([di, df, dg, zeros], -1), d) if need[0] else None,
                _wrap(d.mul(gd, sf), d) if need[1] else None)

    c_new = _record("lstm_cell", d.add(d.mul(si, tg), d.mul(sf, c._data)), (gates, c),
                    cell_backward)
    tc = d.tanh(c_new._data)

    def hidden_backward(g, out, need):
        # dh'/do = tanh(c') s'(o); dh'/dc' = s(o) tanh'(c')
        if is_grad_enabled():
            o, t = gates.chunk(4, -1)[3].sigmoid(), c_new.tanh()
            dgates = cat([zeros_like(o)] * 3 + [g * t * o * (1 - o)], -1)
            return dgates, g * o * (1 - t * t)
        gd = g._data
        do = d.mul(d.mul(gd, tc), d.mul(so, d.subtract(1, so)))
        dc = d.mul(d.mul(gd, so), d.subtract(1, d.mul(tc, tc)))
        return (_wrap(d.concatenate([zeros, zeros, zeros, do], -1), d) if need[0] else None,
                _wrap(dc, d) if need[1] else None)

    return _record("lstm_hidden", d.mul(so, tc), (gates, c_new), hidden_backward), c_new


def _gru_step(gi, gh, h):
    """h' from gi = x W_ih^T + b_ih, gh = h W_hh^T + b_hh and h: r and z are the sigmoids of
    their gates, n = tanh(gi_n + r gh_n), and h' = (1 - z) n + z h."""
    i_r, i_z, i_n = gi.chunk(3, -1)
    h_r, h_z, h_n = gh.chunk(3, -1)
    r = (i_r + h_r).sigmoid()
    z = (i_z + h_z).sigmoid()
    n = (i_n + r * h_n).tanh()
    return n + z * (h - n)


def _check_state(name, what, state, shape, input):
    """state as a Tensor of `shape`, or a ValueError naming the layer and the shapes."""
    state = _as_tensor(state, input, name)
    if state.shape != shape:
        raise ValueError(f"{name}: expected {what} of shape {shape} for an input of shape "
                         f"{input.shape}, got {state.shape}")
    return state


class _RNNBase(Module):
    """What LSTM and GRU share: the weights under torch's names, and the loop over layers and
    directions. A subclass gives the number of gates and _recur, the loop over time steps."""

    _gates = 1
    _states = 1  # tensors in the state: h, or (h, c)

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, *, dtype=None):
        super().__init__()
        name = type(self).__name__
        input_size = _int(name, "input_size", input_size)
        hidden_size = _int(name, "hidden_size", hidden_size)
        num_layers = _int(name, "num_layers", num_layers)
        if input_size <= 0 or hidden_size <= 0 or num_layers <= 0:
            raise ValueError(f"{name}: input_size ({input_size}), hidden_size ({hidden_size}) "
                             f"and num_layers ({num_layers}) must be positive")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"{name}: dropout={dropout} is applied between layers, so with "
                          "num_layers=1 it does nothing", stacklevel=2)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        directions = 2 if bidirectional else 1
        rows = self._gates * hidden_size
        # torch's names, in torch's order; _weight_names keeps them per layer and direction
        self._weight_names = []
        for layer in range(num_layers):
            for suffix in ("", "_reverse")[:directions]:
                size = input_size if layer == 0 else hidden_size * directions
                shapes = {f"weight_ih_l{layer}{suffix}": (rows, size),
                          f"weight_hh_l{layer}{suffix}": (rows, hidden_size)}
                if bias:
                    shapes[f"bias_ih_l{layer}{suffix}"] = (rows,)
                    shapes[f"bias_hh_l{layer}{suffix}"] = (rows,)
                for key, shape in shapes.items():
                    setattr(self, key, _empty(shape, dtype))
                self._weight_names.append(tuple(shapes))
        self.reset_parameters()

    def reset_parameters(self):
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as torch."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            uniform_(p, -bound, bound)

    @property
    def all_weights(self):
        """[w_ih, w_hh, b_ih, b_hh] (without the biases when bias=False) per layer and
        direction, in the order layer 0, layer 0 reverse, layer 1, ..."""
        return [[getattr(self, key) for key in keys] for keys in self._weight_names]

    def flatten_parameters(self):
        """Nothing to do (torch packs the weights for cuDNN); here for torch's API."""

    def _sequence(self, input, hx, state_names):
        """(output, final states as a tuple): every layer and direction over input. hx is None
        or a tuple of initial states, each (layers * directions, batch, hidden)."""
        name = type(self).__name__
        input = _as_tensor(input, next(self.parameters()), name)
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: expected a 2-D (unbatched) or 3-D (batched) input, got "
                             f"shape {input.shape}")
        batched = input.ndim == 3
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        steps, batch, size = x.shape
        if size != self.input_size or steps == 0:
            raise ValueError(f"{name}: expected an input of {self.input_size} features per step "
                             f"and at least one step, got shape {input.shape}"
                             + (" (batch_first)" if batched and self.batch_first else ""))
        directions = 2 if self.bidirectional else 1
        count = self.num_layers * directions
        if hx is None:
            zeros = _wrap(x._device.full((batch, self.hidden_size), 0, x.dtype), x._device)
            initial = [(zeros,) * self._states] * count
        else:
            shape = (count, batch, self.hidden_size) if batched else (count, self.hidden_size)
            hx = [_check_state(name, what, s, shape, input) for what, s in zip(state_names, hx)]
            if not batched:
                hx = [s.unsqueeze(1) for s in hx]
            initial = list(zip(*(s.unbind(0) for s in hx)))
        weights = self.all_weights
        finals = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                k = layer * directions + direction
                output, final = self._layer(x, initial[k], weights[k], direction == 1)
                outputs.append(output)
                finals.append(final)
            x = outputs[0] if directions == 1 else cat(outputs, -1)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                x = dropout(x, self.dropout)
        final = tuple(stack(states) for states in zip(*finals))
        if not batched:
            return x.squeeze(1), tuple(s.squeeze(1) for s in final)
        return (x.transpose(0, 1) if self.batch_first else x), final

    def _layer(self, x, state, weights, reverse):
        """One layer in one direction over x (steps, batch, features): (outputs (steps,
        batch, hidden), final state)."""
        w_ih, w_hh, b_ih, b_hh = weights if self.bias else weights + [None, None]
        steps, batch, size = x.shape
        projected = linear(x.reshape(steps * batch, size), w_ih, self._input_bias(b_ih, b_hh))
        inputs = projected.reshape(steps, batch, -1).unbind(0)
        outputs, state = self._recur(inputs[::-1] if reverse else inputs, state, w_hh.T, b_hh)
        if reverse:
            outputs.reverse()
        return stack(outputs), state

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text


class LSTM(_RNNBase):
    """A multi-layer LSTM over sequences (torch.nn.LSTM): input (L, N, input_size), or
    (N, L, input_size) with batch_first, or (L, input_size) unbatched; forward returns
    (output, (h_n, c_n)). dropout applies between layers when training."""

    _gates, _states = 4, 2

    def forward(self, input, hx=None):
        """(output (L, N, D * hidden), (h_n, c_n) each (D * num_layers, N, hidden)), from
        hx = (h_0, c_0) of that shape or zeros; D = 2 when bidirectional."""
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise ValueError("LSTM: hx must be a tuple (h_0, c_0)")
        output, (h, c) = self._sequence(input, hx, ("h_0", "c_0"))
        return output, (h, c)

    @staticmethod
    def _input_bias(b_ih, b_hh):
        return None if b_ih is None else b_ih + b_hh

    @staticmethod
    def _recur(inputs, state, w_hh_t, b_hh):
        h, c = state
        outputs = []
        for gates in inputs:
            h, c = _lstm_step(gates + matmul(h, w_hh_t), c)
            outputs.append(h)
        return outputs, (h, c)


class GRU(_RNNBase):
    """A multi-layer GRU over sequences (torch.nn.GRU): input (L, N, input_size), or
    (N, L, input_size) with batch_first, or (L, input_size) unbatched; forward returns
    (output, h_n). dropout applies between layers when training."""

    _gates, _states = 3, 1

    def forward(self, input, hx=None):
        """(output (L, N, D * hidden), h_n (D * num_layers, N, hidden)), from hx = h_0 of that
        shape or zeros; D = 2 when bidirectional."""
        output, (h,) = self._sequence(input, None if hx is None else (hx,), ("h_0",))
        return output, h

    @staticmethod
    def _input_bias(b_ih, b_hh):
        return b_ih

    @staticmethod
    def _recur(inputs, state, w_hh_t, b_hh):
        (h,) = state
        outputs = []
        for gi in inputs:
            gh = matmul(h, w_hh_t)
            h = _gru_step(gi, gh if b_hh is None else gh + b_hh, h)
            outputs.append(h)
        return outputs, (h,)


class _CellBase(Module):
    """What LSTMCell and GRUCell share: weight_ih, weight_hh, bias_ih, bias_hh as torch."""

    _gates = 1

    def __init__(self, input_size, hidden_size, bias=True, *, dtype=None):
        super().__init__()
        input_size = _int(type(self).__name__, "input_size", input_size)
        hidden_size = _int(type(self).__name__, "hidden_size", hidden_size)
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(f"{type(self).__name__}: input_size ({input_size}) and hidden_size "
                             f"({hidden_size}) must be positive")
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        rows = self._gates * hidden_size
        self.weight_ih = _empty((rows, input_size), dtype)
        self.weight_hh = _empty((rows, hidden_size), dtype)
        self.bias_ih = _empty((rows,), dtype) if bias else None
        self.bias_hh = _empty((rows,), dtype) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as torch."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            uniform_(p, -bound, bound)

    def _inputs(self, input, hx, state_names):
        """(input (N, input_size), [states (N, hidden)], batched) after the checks."""
        name = type(self).__name__
        input = _as_tensor(input, self.weight_ih, name)
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected an input of shape (N, {self.input_size}) or "
                             f"({self.input_size},), got {input.shape}")
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        shape = (x.shape[0], self.hidden_size)
        if hx is None:
            states = [_wrap(x._device.full(shape, 0, x.dtype), x._device)] * len(state_names)
        else:
            want = shape if batched else (self.hidden_size,)
            states = [_check_state(name, what, s, want, input) for what, s in
                      zip(state_names, hx)]
            states = states if batched else [s.unsqueeze(0) for s in states]
        return x, states, batched

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class LSTMCell(_CellBase):
    """One LSTM step (torch.nn.LSTMCell): (h', c') from input (N, input_size) or
    (input_size,) and hx = (h, c), zeros by default."""

    _gates = 4

    def forward(self, input, hx=None):
        """(h', c'), each (N, hidden_size), or (hidden_size,) for an unbatched input."""
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise ValueError("LSTMCell: hx must be a tuple (h, c)")
        x, (h, c), batched = self._inputs(input, hx, ("h", "c"))
        gates = linear(x, self.weight_ih, self.bias_ih) + linear(h, self.weight_hh, self.bias_hh)
        h, c = _lstm_step(gates, c)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(_CellBase):
    """One GRU step (torch.nn.GRUCell): h' from input (N, input_size) or (input_size,) and
    hx = h, zeros by default."""

    _gates = 3

    def forward(self, input, hx=None):
        """h', (N, hidden_size), or (hidden_size,) for an unbatched input."""
        x, (h,), batched = self._inputs(input, None if hx is None else (hx,), ("hx",))
        h = _gru_step(linear(x, self.weight_ih, self.bias_ih),
                      linear(h, self.weight_hh, self.bias_hh), h)
        return h if batched else h.squeeze(0)


# ---- attention and the transformer encoder -----------------------------------------------------

class MultiheadAttention(Module):
    """Attention over num_heads heads of embed_dim / num_heads features each, as
    torch.nn.MultiheadAttention, with its parameters: in_proj_weight (3 embed_dim, embed_dim)
    (the query, key and value projections stacked), in_proj_bias, and out_proj, a Linear.
    Keys and values have embed_dim features (kdim = vdim = embed_dim); add_bias_kv and
    add_zero_attn are not implemented. Unlike torch, is_causal=True without an attn_mask
    makes the causal mask instead of raising, and a query whose keys are all masked gets
    zero weights instead of nan."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, *, dtype=None):
        super().__init__()
        embed_dim = _int("MultiheadAttention", "embed_dim", embed_dim)
        num_heads = _int("MultiheadAttention", "num_heads", num_heads)
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be a positive "
                             f"multiple of num_heads ({num_heads})")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1], got {dropout}")
        if add_bias_kv or add_zero_attn or kdim not in (None, embed_dim) \
                or vdim not in (None, embed_dim):
            raise NotImplementedError("MultiheadAttention: only kdim = vdim = embed_dim, without "
                                      "add_bias_kv and add_zero_attn, is implemented")
        self.embed_dim = self.kdim = self.vdim = embed_dim
        self.num_heads, self.head_dim = num_heads, embed_dim // num_heads
        self.dropout, self.batch_first = float(dropout), batch_first
        self.in_proj_weight = _empty((3 * embed_dim, embed_dim), dtype)
        self.in_proj_bias = _empty((3 * embed_dim,), dtype) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        self._reset_parameters()

    def _reset_parameters(self):
        """xavier_uniform_ in_proj_weight, zero biases, out_proj.weight as a Linear's (torch)."""
        xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            zeros_(self.in_proj_bias)
            zeros_(self.out_proj.bias)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        """(output, weights): output is query's shape, (L, N, E), (N, L, E) with batch_first,
        or (L, E) unbatched; weights (N, L, S) averaged over heads, (N, heads, L, S) with
        average_attn_weights=False, or None when not need_weights. Masks as torch:
        key_padding_mask (N, S), attn_mask (L, S) or (N * heads, L, S); True where a query
        may NOT attend (or a float added to the scores)."""
        name, e, heads = "MultiheadAttention", self.embed_dim, self.num_heads
        like = next((t for t in (query, key, value) if isinstance(t, Tensor)),
                    self.in_proj_weight)
        q, k, v = (_as_tensor(t, like, name) for t in (query, key, value))
        batched = q.ndim == 3
        if q.ndim not in (2, 3) or k.ndim != q.ndim or v.shape != k.shape \
                or {q.shape[-1], k.shape[-1]} != {e}:
            raise ValueError(f"{name}: expected query (L, N, {e}) and key and value (S, N, {e}), "
                             f"batch first with batch_first, or without N unbatched; got "
                             f"{q.shape}, {k.shape} and {v.shape}")
        if not batched:
            q, k, v = q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0)
        elif not self.batch_first:
            q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
        if q.shape[0] != k.shape[0]:
            raise ValueError(f"{name}: query {query.shape} and key {key.shape} have different "
                             "batch sizes")
        n, length, source = q.shape[0], q.shape[1], k.shape[1]
        w, b = self.in_proj_weight, self.in_proj_bias
        if query is key and key is value:  # self-attention: one matmul for q, k and v
            q, k, v = linear(q, w, b).chunk(3, -1)
        else:
            wq, wk, wv = w.chunk(3)
            bq, bk, bv = (None,) * 3 if b is None else b.chunk(3)
            q, k, v = linear(q, wq, bq), linear(k, wk, bk), linear(v, wv, bv)

        def split_heads(t):  # (N, L, E) -> (N, heads, L, head_dim)
            return t.reshape(n, t.shape[1], heads, self.head_dim).permute(0, 2, 1, 3)

        q, k, v = split_heads(q), split_heads(k), split_heads(v)
        mask = self._mask(attn_mask, key_padding_mask, is_causal, n, length, source, batched, q)
        scores = matmul(q, k.mT) * (1.0 / math.sqrt(self.head_dim))
        if mask is not None:
            scores = scores + mask
        weights = _attention_weights(scores, mask is not None)
        if self.training and self.dropout > 0:
            weights = dropout(weights, self.dropout)
        out = self.out_proj(matmul(weights, v).permute(0, 2, 1, 3).reshape(n, length, e))
        if not batched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(1)
        return out, (weights if batched else weights.squeeze(0))

    def _mask(self, attn_mask, key_padding_mask, is_causal, n, length, source, batched, like):
        """The masks as one tensor to add to the scores (N, heads, L, S), or None."""
        name = "MultiheadAttention"
        mask = None
        if attn_mask is None and is_causal:
            mask = _score_mask(name, _causal_mask(length, source, like), like, attend=True)
        elif attn_mask is not None:
            mask = _score_mask(name, attn_mask, like, attend=False)
            stacked = (n * self.num_heads if batched else self.num_heads, length, source)
            if mask.shape == stacked:
                mask = mask.reshape(n, self.num_heads, length, source)
            elif mask.shape != (length, source):
                raise ValueError(f"{name}: attn_mask must have shape {(length, source)} or "
                                 f"{stacked}, got {mask.shape}")
        if key_padding_mask is not None:
            padding = _score_mask(name, key_padding_mask, like, attend=False)
            if padding.shape != ((n, source) if batched else (source,)):
                raise ValueError(f"{name}: key_padding_mask must have shape "
                                 f"{(n, source) if batched else (source,)}, got {padding.shape}")
            padding = padding.reshape(n, 1, 1, source)
            mask = padding if mask is None else mask + padding
        return mask

    def extra_repr(self):
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}")


def _activation_function(name, activation):
    if isinstance(activation, str):
        if activation == "relu":
            return relu
        if activation == "gelu":
            return gelu
        raise ValueError(f"{name}: activation should be 'relu', 'gelu' or a callable, not "
                         f"{activation!r}")
    if not callable(activation):
        raise TypeError(f"{name}: activation {activation!r} is not callable")
    return activation


class TransformerEncoderLayer(Module):
    """Self-attention and a feed-forward network, each with a residual connection and a
    LayerNorm (after them, or before with norm_first), as torch.nn.TransformerEncoderLayer,
    with its submodules: self_attn, linear1, dropout, linear2, norm1, norm2, dropout1,
    dropout2."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True, *,
                 dtype=None):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _activation_function("TransformerEncoderLayer", activation)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        """src plus self-attention, then plus the feed-forward network, each normalised."""
        x = src
        if self.norm_first:
            x = x + self._attention_block(self.norm1(x), src_mask, src_key_padding_mask,
                                          is_causal)
            return x + self._feed_forward_block(self.norm2(x))
        x = self.norm1(x + self._attention_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._feed_forward_block(x))

    def _attention_block(self, x, attn_mask, key_padding_mask, is_causal):
        out, _ = self.self_attn(x, x, x, key_padding_mask=key_padding_mask, need_weights=False,
                                attn_mask=attn_mask, is_causal=is_causal)
        return self.dropout1(out)

    def _feed_forward_block(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerEncoder(Module):
    """num_layers deep copies of encoder_layer applied in turn (layers, a ModuleList), then
    norm when one is given, as torch.nn.TransformerEncoder (enable_nested_tensor and
    mask_check are accepted for its signature only)."""

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True,
                 mask_check=True):
        super().__init__()
        _check_module("TransformerEncoder", encoder_layer)
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        """Each layer on the previous one's output, with the same masks; then norm."""
        out = src
        for layer in self.layers:
            out = layer(out, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                        is_causal=bool(is_causal))
        return out if self.norm is None else self.norm(out)


# ---- loss modules ------------------------------------------------------------------------------
# A class weight or pos_weight is a buffer, so it is in state_dict under torch's names.

class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction


def _loss_buffer(value):
    return None if value is None or isinstance(value, Tensor) else Tensor(value)


class MSELoss(_Loss):
    """mse_loss as a module."""

    def forward(self, input, target):
        """mse_loss(input, target, reduction)."""
        return mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    """l1_loss as a module."""

    def forward(self, input, target):
        """l1_loss(input, target, reduction)."""
        return l1_loss(input, target, self.reduction)


class NLLLoss(_Loss):
    """nll_loss as a module."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.register_buffer("weight", _loss_buffer(weight))
        self.ignore_index = ignore_index

    def forward(self, input, target):
        """nll_loss(input, target, weight, ignore_index, reduction)."""
        return nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class CrossEntropyLoss(_Loss):
    """cross_entropy as a module."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        self.register_buffer("weight", _loss_buffer(weight))
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):
        """cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)."""
        return cross_entropy(input, target, self.weight, self.ignore_index, self.reduction,
                             self.label_smoothing)


class BCELoss(_Loss):
    """binary_cross_entropy as a module."""

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction)
        self.register_buffer("weight", _loss_buffer(weight))

    def forward(self, input, target):
        """binary_cross_entropy(input, target, weight, reduction)."""
        return binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """binary_cross_entropy_with_logits as a module."""

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self.register_buffer("weight", _loss_buffer(weight))
        self.register_buffer("pos_weight", _loss_buffer(pos_weight))

    def forward(self, input, target):
        """binary_cross_entropy_with_logits(input, target, weight, reduction, pos_weight)."""
        return binary_cross_entropy_with_logits(input, target, self.weight, self.reduction,
                                                self.pos_weight)


# ---- save and load -----------------------------------------------------------------------------
# A checkpoint is an ordinary .npz archive: one .npy member per array, named by its key path
# ("fc.weight", "optimizer.state.0.exp_avg"), plus a member "__simplegrad__" holding, as JSON,
# the structure around them (dicts, lists, numbers, strings), so that np.load can read it too.
# load trusts nothing in the file: it reads every member whole (so that zipfile checks each
# CRC), believes no length before checking it against the file's size, unpickles nothing, and
# accepts only a table of contents that save could have written and that names exactly the
# arrays present. Whatever is wrong, it raises ValueError naming the file.

_MANIFEST = "__simplegrad__"
# Containers (dicts, lists, tuples) nested in a saved object, at most. Each is at most three
# levels of JSON in the table of contents ({"dict": [[key, node], ...]}), inside the manifest's
# own object and a leaf's, so load refuses a deeper table before json parses it.
_MAX_NESTING = 100
_TOC_MAX_DEPTH = 3 * _MAX_NESTING + 2
_READ_CHUNK = 1 << 24  # bytes of a member read at a time


def _pack(obj, name, arrays, nesting=0):
    """obj as a JSON-able tree; its arrays are added to `arrays` under unique key paths."""
    if isinstance(obj, Tensor):
        return {"tensor": _add_array(arrays, name, obj.numpy())}
    if isinstance(obj, np.generic):
        return {"scalar": _add_array(arrays, name, np.asarray(obj))}
    if obj is None:
        return {"none": None}
    for kind in (bool, int, float, str):  # bool first: True is an int too
        if isinstance(obj, kind):
            return {kind.__name__: kind(obj)}
    if isinstance(obj, (dict, list, tuple)) and nesting == _MAX_NESTING:
        raise ValueError(f"save: containers nest more than {_MAX_NESTING} deep (at '{name}'), "
                         "more than load accepts")
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(f"save: dict keys must be strings or ints, got {key!r}")
            items.append([key, _pack(value, _join(name, str(key)), arrays, nesting + 1)])
        return {"dict": items}
    if isinstance(obj, (list, tuple)):
        kind = "tuple" if isinstance(obj, tuple) else "list"
        return {kind: [_pack(v, _join(name, str(i)), arrays, nesting + 1)
                       for i, v in enumerate(obj)]}
    if isinstance(obj, np.ndarray) or hasattr(obj, "__array__"):  # NumPy, torch, ...
        return {"ndarray": _add_array(arrays, name, np.asarray(obj))}
    raise TypeError(f"save: cannot save a {type(obj).__name__} (at '{name}'); a checkpoint "
                    "holds tensors, arrays, numbers, strings, None, and dicts, lists and tuples "
                    "of them")


def _add_array(arrays, name, array):
    if array.dtype.hasobject:
        raise TypeError(f"save: the array at '{name}' holds Python objects")
    unique, n = name or "array", 1
    while unique in arrays or unique == _MANIFEST:
        unique, n = f"{name}~{n}", n + 1
    arrays[unique] = array
    return unique


# the JSON types of the leaves that are stored in the table of contents itself
_LEAF_TYPES = {"none": type(None), "bool": bool, "int": int, "float": float, "str": str}


def _unpack(node, arrays, used):
    """The object that _pack turned into `node`, checking that save could have written it; the
    names of the arrays it takes from `arrays` are added to `used`, each at most once."""
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError(f"an entry of its table of contents is {str(node)[:60]}, not an "
                         "object with one key")
    (kind, value), = node.items()
    if kind in ("tensor", "ndarray", "scalar"):
        if not isinstance(value, str) or value not in arrays:
            raise ValueError(f"its table of contents names an array {str(value)[:60]!r} that "
                             "it does not hold")
        if value in used:
            raise ValueError(f"its table of contents names the array '{value}' twice")
        used.add(value)
        array = arrays[value]
        if kind == "tensor":
            return Tensor(array)
        if kind == "ndarray":
            return array
        if array.ndim:
            raise ValueError(f"the scalar '{value}' is an array of shape {array.shape}")
        return array[()]
    if kind == "dict" and isinstance(value, list):
        items = {}
        for item in value:
            if not (isinstance(item, list) and len(item) == 2 and type(item[0]) in (str, int)):
                raise ValueError(f"a dict item of its table of contents is {str(item)[:60]}, "
                                 "not a [key, entry] pair with a string or int key")
            if item[0] in items:
                raise ValueError(f"a dict of its table of contents has the key {item[0]!r} twice")
            items[item[0]] = _unpack(item[1], arrays, used)
        return items
    if kind in ("list", "tuple") and isinstance(value, list):
        items = [_unpack(item, arrays, used) for item in value]
        return items if kind == "list" else tuple(items)
    if kind in _LEAF_TYPES and type(value) is _LEAF_TYPES[kind]:
        return value
    raise ValueError(f"its table of contents has an entry {{{kind!r}: {str(value)[:60]}}} "
                     "that save does not write")


def _write_npz(file, arrays):
    """Write arrays into an open binary file as an .npz archive (what np.savez writes)."""
    with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def save(obj, path):
    """Write a state dict (or nested dicts, lists and tuples of tensors, arrays, numbers and
    strings) to `path` as an .npz archive, exactly at that path.

    Atomic: the archive is written to a new file beside `path`, flushed to disk, then renamed
    over it, so a crash or an error leaves either the old file or the new one, never half of one.
    A file replaced keeps its permission bits, as with torch.save, which writes in place.
    """
    arrays = {}
    tree = _pack(obj, "", arrays)
    arrays[_MANIFEST] = np.array(json.dumps({"format": "simplegrad", "version": 1,
                                             "tree": tree}))
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = None
    for attempt in range(1000):  # a fresh name beside path; "x" never opens an existing file
        temporary = f"{path}.{os.getpid()}-{attempt}.tmp"
        try:
            file = open(temporary, "xb")
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"save: cannot create a temporary file beside {path}")
    try:
        with file:
            if mode is not None:  # set before any data is written (a 0600 file stays private)
                os.chmod(temporary, mode)
            _write_npz(file, arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.remove(temporary)
        except OSError:
            pass
        raise


class _Bounded:
    """A binary file whose reads never ask for more bytes than are left in it, so that a corrupt
    length in a zip directory cannot make zipfile allocate more memory than the file's size."""

    def __init__(self, file, size):
        self._file, self._size = file, size

    def read(self, n=-1):
        left = builtins.max(self._size - self._file.tell(), 0)
        return self._file.read(left if n is None or n < 0 else builtins.min(n, left))

    def seek(self, offset, whence=os.SEEK_SET):
        return self._file.seek(offset, whence)

    def tell(self):
        return self._file.tell()

    def seekable(self):
        return True


def _read_array(archive, info, size):
    """The array in one .npy member of an archive of `size` bytes, read whole, so that zipfile
    checks the member's CRC; its header is checked against the member's size first."""
    name = info.filename
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"its member '{name}' is compressed (method {info.compress_type}); "
                         "save stores members as they are")
    if not info.file_size == info.compress_size <= size:
        raise ValueError(f"its member '{name}' claims {info.file_size} bytes stored in "
                         f"{info.compress_size}, in a file of {size}")
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ValueError(f"its member '{name}' is in .npy format {version}, not 1.0 or 2.0")
        if dtype.hasobject:
            raise ValueError(f"its member '{name}' holds Python objects, which load never "
                             "unpickles")
        nbytes = math.prod(shape) * dtype.itemsize
        if builtins.min(shape, default=0) < 0 or member.tell() + nbytes != info.file_size:
            raise ValueError(f"the .npy header of '{name}' ({dtype}, shape {shape}) does not "
                             f"fit the member's {info.file_size} bytes")
        array = np.empty(shape[::-1] if fortran_order else shape, dtype)
        flat = array.reshape(-1).view(np.uint8) if nbytes else None
        for start in range(0, nbytes, _READ_CHUNK):
            want = builtins.min(_READ_CHUNK, nbytes - start)
            chunk = member.read(want)
            if len(chunk) != want:
                raise ValueError(f"its member '{name}' is truncated")
            flat[start:start + want] = np.frombuffer(chunk, np.uint8)
    return array.T if fortran_order else array


def _json_depth(text):
    """How deeply the arrays and objects of a JSON text nest, found without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = builtins.max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _checkpoint_contents(arrays):
    """The object that a checkpoint's arrays (its table of contents among them) hold."""
    toc = arrays.pop(_MANIFEST)
    if toc.shape != () or toc.dtype.kind != "U":
        raise ValueError(f"its table of contents is a {toc.dtype} array of shape {toc.shape}, "
                         "not a string")
    text = toc.item()
    depth = _json_depth(text)
    if depth > _TOC_MAX_DEPTH:
        raise ValueError(f"its table of contents nests {depth} deep, more than the "
                         f"{_TOC_MAX_DEPTH} of the deepest object save writes")
    manifest = json.loads(text)
    if not (isinstance(manifest, dict) and manifest.keys() == {"format", "version", "tree"}
            and manifest["format"] == "simplegrad"):
        raise ValueError(f"its table of contents is not simplegrad's: {text[:60]}")
    if type(manifest["version"]) is not int or manifest["version"] != 1:
        raise ValueError(f"it is in format version {manifest['version']!r}; this simplegrad "
                         "reads version 1")
    used = set()
    obj = _unpack(manifest["tree"], arrays, used)
    if used != arrays.keys():
        raise ValueError(f"it holds arrays that its table of contents does not name, such as "
                         f"'{builtins.min(arrays.keys() - used)}'")
    return obj


def load(path):
    """Read a file written by save: tensors come back as Tensors on the default device, arrays
    as arrays, numbers as numbers.

    The whole file is checked (every member's CRC, every .npy header, the table of contents);
    a damaged file, or one that save did not write (a plain .npz: read it with np.load), raises
    ValueError naming the file. Nothing is unpickled.
    """
    path = os.fspath(path)
    what = f"load: {path} is not a checkpoint written by simplegrad.save (an .npz archive)"
    corrupt = f"load: {path} is corrupt"
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        magic = file.read(6)
        if not magic:
            raise ValueError(f"{what}: it is empty")
        if magic == b"\x93NUMPY":
            raise ValueError(f"{what}: it holds a single array (.npy)")
        # zipfile and NumPy's .npy reader raise many types on damaged bytes (BadZipFile,
        # NotImplementedError for a strange compression method, RuntimeError for an "encrypted"
        # member, OSError for a negative offset, ...): any of them, here, means a bad file.
        # MemoryError is not one: every length is checked against the file's size first.
        try:
            archive = zipfile.ZipFile(_Bounded(file, size))
        except MemoryError:
            raise
        except Exception as e:
            if magic.startswith(b"PK"):
                raise ValueError(f"{corrupt} (truncated?): {e}") from e
            raise ValueError(f"{what}: it is not a zip archive") from e
        with archive:
            try:
                infos = archive.infolist()
                for info in infos:  # opening a member checks its header against the directory
                    archive.open(info).close()
            except MemoryError:
                raise
            except Exception as e:
                raise ValueError(f"{corrupt}: {e}") from e
            names = [info.filename for info in infos]
            others = [name for name in names if not name.endswith(".npy")]
            if others:  # a zip archive of other files, such as one torch.save wrote
                raise ValueError(f"{what}: it is a zip archive holding files other than "
                                 f"arrays, such as '{others[0]}'")
            if _MANIFEST + ".npy" not in names:
                raise ValueError(f"{what}, or is damaged: it has no table of contents "
                                 f"('{_MANIFEST}.npy'); np.load reads a plain .npz")
            if len(set(names)) < len(names):
                raise ValueError(f"{corrupt}: its zip directory lists a member twice")
            try:
                arrays = {info.filename[:-4]: _read_array(archive, info, size)
                          for info in infos}
                return _checkpoint_contents(arrays)
            except MemoryError:
                raise
            except Exception as e:
                raise ValueError(f"{corrupt}: {e}") from e


# ---- data --------------------------------------------------------------------------------------

class TensorDataset:
    """Samples are the i-th rows of the given tensors (torch.utils.data.TensorDataset)."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        self.tensors = tuple(_tensor(t, None, "TensorDataset") for t in tensors)
        sizes = [t.shape[0] if t.ndim else None for t in self.tensors]
        if None in sizes or len(set(sizes)) != 1:
            raise ValueError(f"TensorDataset: the tensors must share their first dim, got shapes "
                             f"{[t.shape for t in self.tensors]}")

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]


def _collate(samples):
    """One batch from a list of samples: tensors and arrays stacked, numbers made a tensor,
    tuples, lists and dicts collated entry by entry."""
    first = samples[0]
    if isinstance(first, Tensor):
        return stack(samples)
    if isinstance(first, np.ndarray):
        return Tensor(np.stack(samples))
    if isinstance(first, (tuple, list)):
        return tuple(_collate(list(group)) for group in zip(*samples))
    if isinstance(first, dict):
        return {key: _collate([s[key] for s in samples]) for key in first}
    return Tensor(list(samples))


class DataLoader:
    """Batches from a dataset (anything with __len__ and __getitem__), as torch's DataLoader.

    A TensorDataset gives a tuple of tensors per batch, cut with one index per tensor; other
    datasets are read sample by sample and joined by `collate_fn`. With shuffle=True each pass
    draws a new order from `generator` (a NumPy Generator, or an int seed for a new one made
    here), or from simplegrad's generator (manual_seed) when it is None. A `sampler` (an
    iterable of indices with a length, such as DistributedSampler) gives the order instead.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, generator=None,
                 collate_fn=None, sampler=None):
        size = _as_int(batch_size)
        if size is None or size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got "
                             f"{_describe(batch_size)}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True exclude each other (the "
                             "sampler chooses the order)")
        self.dataset, self.batch_size, self.sampler = dataset, size, sampler
        self.shuffle, self.drop_last, self.collate_fn = shuffle, drop_last, collate_fn
        if isinstance(generator, (int, np.integer)):
            generator = np.random.default_rng(generator)
        self.generator = generator

    def __len__(self):
        n = len(self.dataset if self.sampler is None else self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n, size = len(self.dataset), self.batch_size
        order = None
        if self.sampler is not None:
            order = np.fromiter(self.sampler, dtype=np.int64)
            n = len(order)
        elif self.shuffle:
            order = (_rng if self.generator is None else self.generator).permutation(n)
        stop = n - n % size if self.drop_last else n
        for start in range(0, stop, size):
            end = builtins.min(start + size, n)
            index = slice(start, end) if order is None else order[start:end]
            if isinstance(self.dataset, TensorDataset) and self.collate_fn is None:
                yield self.dataset[index]
            else:
                positions = range(n)[index] if order is None else index
                samples = [self.dataset[int(i)] for i in positions]
                yield (self.collate_fn or _collate)(samples)


def _world(op, num_replicas, rank, group=None):
    """(number of processes, this process's rank), from torch.distributed where not given."""
    if num_replicas is None or rank is None:
        import torch.distributed as dist
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError(f"{op}: torch.distributed is not initialised; call "
                               "torch.distributed.init_process_group() first, or pass "
                               "num_replicas and rank")
        num_replicas = dist.get_world_size(group) if num_replicas is None else num_replicas
        rank = dist.get_rank(group) if rank is None else rank
    if not 0 <= rank < num_replicas:
        raise ValueError(f"{op}: rank {rank} is not in [0, {num_replicas})")
    return int(num_replicas), int(rank)


class DistributedSampler:
    """This process's share of a dataset's indices (torch.utils.data.DistributedSampler).

    Every process draws the same order (a permutation seeded by seed + epoch when shuffling;
    call set_epoch() before each epoch for a new one) and takes every num_replicas-th index
    from position `rank`. So that all processes get the same number, the order is padded by
    repeating its start, or with drop_last=True cut to a multiple of num_replicas. The order
    comes from NumPy's generator, so it differs from torch's for the same seed.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
                 drop_last=False):
        self.num_replicas, self.rank = _world("DistributedSampler", num_replicas, rank)
        self.dataset, self.shuffle, self.seed, self.drop_last = dataset, shuffle, seed, drop_last
        self.epoch = 0
        n = len(dataset)
        self.num_samples = n // self.num_replicas if drop_last else -(-n // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch):
        """Use the order of this epoch (shuffle=True): the same in every process."""
        self.epoch = int(epoch)

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            order = np.arange(n)
        if self.total_size > n:  # pad by repeating from the start, as often as needed
            order = np.resize(order, self.total_size)
        order = order[self.rank:self.total_size:self.num_replicas]
        return iter(order.tolist())

    def __len__(self):
        return self.num_samples


# ---- data-parallel training ----------------------------------------------------------------
# torch.distributed moves the bytes (gloo on CPUs, NCCL on GPUs); simplegrad hands it zero-copy
# torch views of its arrays (torch.from_numpy, or DLPack for CuPy). torch is imported lazily.

def _shared_view(torch, t):
    """A torch view of tensor t's memory, making t's array contiguous and writable first."""
    if isinstance(t._data, np.generic) or (isinstance(t._data, np.ndarray) and not (
            t._data.flags.c_contiguous and t._data.flags.writeable)):
        t._data = np.array(t._data)
    return _torch_view(torch, t._data)


class _Bucket:
    """Gradients of a few parameters, reduced with one all-reduce of one flat array."""

    def __init__(self, params):
        self.params = params
        self.offsets = np.cumsum([0] + [p.numel() for p in params]).tolist()
        p = params[0]
        self.flat = p._device.full((self.offsets[-1],), 0, p.dtype)
        self.pending = len(params)


class _Reducer:
    """Averages the gradients of `params` over the processes of `group` during backward().

    Parameters are cut into buckets in reverse registration order (roughly the order backward
    produces their gradients). A parameter's post-accumulate-grad hook copies its .grad into
    its bucket's flat array; when a bucket is full its all-reduce starts (async_op=True), the
    buckets in index order so that every process issues the same sequence. A callback queued
    on the engine runs when the sweep ends: it deals with parameters that got no gradient,
    waits for every all-reduce, divides by the number of processes and writes the averages
    back into each .grad in place (so torch views of the gradients stay valid).
    """

    def __init__(self, named_params, group, bucket_cap_bytes, find_unused_parameters):
        import torch
        import torch.distributed as dist
        self.torch, self.dist, self.group = torch, dist, group
        self.world = dist.get_world_size(group)
        self.names = {id(p): name for name, p in named_params}
        self.find_unused_parameters = find_unused_parameters
        self.enabled = True  # False inside DistributedDataParallel.no_sync()
        self.wait_seconds = 0.0  # time spent waiting for all-reduces, summed over steps
        self.buckets, self.slot, size, group_params = [], {}, 0, []
        for _, p in reversed(named_params):
            nbytes = p.numel() * np.dtype(p.dtype).itemsize
            if group_params and (size + nbytes > bucket_cap_bytes
                                 or p.dtype != group_params[0].dtype):
                self.buckets.append(_Bucket(group_params))
                group_params, size = [], 0
            group_params.append(p)
            size += nbytes
        if group_params:
            self.buckets.append(_Bucket(group_params))
        for b, bucket in enumerate(self.buckets):
            for i, p in enumerate(bucket.params):
                self.slot[id(p)] = (b, i)
                p.register_post_accumulate_grad_hook(self._ready)
        self.works, self.ready, self.next = [], set(), 0

    def _copy_in(self, p):
        bucket_index, i = self.slot[id(p)]
        bucket = self.buckets[bucket_index]
        part = bucket.flat[bucket.offsets[i]:bucket.offsets[i + 1]]
        if p.grad is None:
            part[...] = 0
        else:
            part[...] = p.grad._data.reshape(-1)
        self.ready.add(id(p))
        bucket.pending -= 1

    def _ready(self, p):
        if not self.enabled:
            return
        if self._finish not in _state.final_callbacks:  # the first gradient of this sweep
            for bucket in self.buckets:
                bucket.pending = len(bucket.params)
            self.works, self.ready, self.next = [], set(), 0
            _queue_callback(self._finish)
        if id(p) in self.ready:
            return
        self._copy_in(p)
        self._launch()

    def _launch(self):
        """Start the all-reduce of each bucket that is full, in bucket order."""
        while self.next < len(self.buckets) and self.buckets[self.next].pending == 0:
            flat = _torch_view(self.torch, self.buckets[self.next].flat)
            self.works.append(self.dist.all_reduce(flat, group=self.group, async_op=True))
            self.next += 1

    def _unused(self):
        return [p for bucket in self.buckets for p in bucket.params if id(p) not in self.ready]

    def _finish(self):
        unused, used_anywhere = self._unused(), None
        if unused and not self.find_unused_parameters:
            names = ", ".join(self.names[id(p)] for p in unused)
            raise RuntimeError(
                f"DistributedDataParallel: these parameters got no gradient in this backward(): "
                f"{names}. The other processes may now wait for their gradients until the "
                "timeout of init_process_group. Pass find_unused_parameters=True if parts of "
                "the model may go unused, or make every parameter take part in the loss")
        if self.find_unused_parameters:
            used = np.array([id(p) in self.ready for bucket in self.buckets
                             for p in bucket.params], dtype=np.int32)
            for p in unused:  # they contribute their current .grad, or zeros
                self._copy_in(p)
            self._launch()
            self.dist.all_reduce(self.torch.from_numpy(used), group=self.group)
            used_anywhere = used > 0
        start = time.perf_counter()
        for b, work in enumerate(self.works):
            try:
                work.wait()
            except RuntimeError as e:
                raise RuntimeError(
                    f"DistributedDataParallel: the all-reduce of gradient bucket {b} failed on "
                    f"rank {self.dist.get_rank()} of {self.world}: a peer process has probably "
                    f"died or is stuck ({type(e).__name__}: {e})") from e
        self.wait_seconds += time.perf_counter() - start
        k = 0
        for bucket in self.buckets:
            bucket.flat /= self.world
            for i, p in enumerate(bucket.params):
                if used_anywhere is None or used_anywhere[k]:
                    _write_grad(p, bucket.flat[bucket.offsets[i]:bucket.offsets[i + 1]])
                k += 1


def _write_grad(p, value):
    """p.grad = value (flat), in place where p.grad's array allows it."""
    g = None if p.grad is None else p.grad._data
    if g is None or isinstance(g, np.generic) or (
            isinstance(g, np.ndarray) and not g.flags.writeable):
        p.grad = _wrap(p._device.copy(value.reshape(p.shape)), p._device)
    else:
        g[...] = value.reshape(g.shape)


class DistributedDataParallel(Module):
    """Data-parallel training over processes: torch.nn.parallel.DistributedDataParallel.

    Call torch.distributed.init_process_group() first (gloo for NumpyDevice, NCCL for
    CupyDevice), then wrap the model in every process. Wrapping copies rank 0's parameters and
    buffers to all processes; each backward() then leaves in every .grad the mean of the
    processes' gradients, all-reduced in buckets of about `bucket_cap_mb` that start while
    backward is still running (see docs/ddp.md). Forward calls go to ``.module``; as in torch,
    state_dict() names carry a ``module.`` prefix (save ``ddp.module.state_dict()`` to load
    into an unwrapped model). With broadcast_buffers=True, rank 0's buffers (BatchNorm's
    running statistics) are copied to all processes at each forward. A parameter that gets no
    gradient raises a RuntimeError naming it at the end of backward(), unless
    find_unused_parameters=True: it then counts as a zero gradient (or its current .grad), and
    a parameter that no process used keeps its .grad untouched, as in torch.
    """

    def __init__(self, module, process_group=None, bucket_cap_mb=25, broadcast_buffers=True,
                 find_unused_parameters=False):
        super().__init__()
        import torch.distributed as dist
        _world("DistributedDataParallel", None, None, process_group)
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected a Module, not "
                            f"{type(module).__name__}")
        self.module = module
        self.process_group = process_group
        self.broadcast_buffers = broadcast_buffers
        self._source = 0 if process_group is None else dist.get_global_rank(process_group, 0)
        named = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
        self._broadcast([p for _, p in module.named_parameters()] + list(module.buffers()))
        self._reducer = _Reducer(named, process_group, bucket_cap_mb * 2**20,
                                 find_unused_parameters)

    def _broadcast(self, tensors):
        import torch
        import torch.distributed as dist
        for t in tensors:
            dist.broadcast(_shared_view(torch, t), src=self._source, group=self.process_group)

    def forward(self, *args, **kwargs):
        """The wrapped module's forward, after copying rank 0's buffers if asked to."""
        if self.broadcast_buffers and self.training:
            self._broadcast(list(self.module.buffers()))
        return self.module(*args, **kwargs)

    def no_sync(self):
        """Context manager: backward() inside it only accumulates local gradients; the first
        backward() after it averages everything accumulated (gradient accumulation)."""
        return _NoSync(self._reducer)


class _NoSync:
    def __init__(self, reducer):
        self.reducer = reducer

    def __enter__(self):
        self.reducer.enabled = False

    def __exit__(self, *exc):
        self.reducer.enabled = True


# ---- the namespaces ----------------------------------------------------------------------------

nn = _namespace(
    "simplegrad.nn", "Layers, losses and the Module machinery, as torch.nn.",
    Parameter=Parameter, Module=Module, Sequential=Sequential, ModuleList=ModuleList,
    ModuleDict=ModuleDict, Identity=Identity, Linear=Linear, Dropout=Dropout,
    LayerNorm=LayerNorm, BatchNorm1d=BatchNorm1d, BatchNorm2d=BatchNorm2d, Embedding=Embedding,
    Conv1d=Conv1d, Conv2d=Conv2d, Conv3d=Conv3d, ConvTranspose2d=ConvTranspose2d,
    MaxPool2d=MaxPool2d, AvgPool2d=AvgPool2d, AdaptiveAvgPool2d=AdaptiveAvgPool2d,
    Flatten=Flatten, PReLU=PReLU, RReLU=RReLU, **_ACTIVATION_MODULES, MSELoss=MSELoss,
    L1Loss=L1Loss, NLLLoss=NLLLoss,
    CrossEntropyLoss=CrossEntropyLoss, BCELoss=BCELoss, BCEWithLogitsLoss=BCEWithLogitsLoss,
    LSTM=LSTM, GRU=GRU, LSTMCell=LSTMCell, GRUCell=GRUCell,
    MultiheadAttention=MultiheadAttention, TransformerEncoderLayer=TransformerEncoderLayer,
    TransformerEncoder=TransformerEncoder,
    functional=_namespace(
        "simplegrad.nn.functional", "The layers and losses of simplegrad.nn as functions.",
        linear=linear, relu=relu, leaky_relu=leaky_relu, gelu=gelu, sigmoid=sigmoid, tanh=tanh,
        softplus=softplus, softmax=softmax, log_softmax=log_softmax, softmin=softmin,
        elu=elu, celu=celu, selu=selu, hardtanh=hardtanh, relu6=relu6, hardsigmoid=hardsigmoid,
        hardswish=hardswish, silu=silu, mish=mish, softsign=softsign, logsigmoid=logsigmoid,
        glu=glu, tanhshrink=tanhshrink, softshrink=softshrink, hardshrink=hardshrink,
        threshold=threshold, prelu=prelu, rrelu=rrelu, dropout=dropout,
        layer_norm=layer_norm, batch_norm=batch_norm, embedding=embedding, pad=pad,
        conv1d=conv1d, conv2d=conv2d, conv3d=conv3d, conv_transpose1d=conv_transpose1d,
        conv_transpose2d=conv_transpose2d, max_pool1d=max_pool1d, max_pool2d=max_pool2d,
        avg_pool1d=avg_pool1d, avg_pool2d=avg_pool2d, adaptive_avg_pool2d=adaptive_avg_pool2d,
        cross_entropy=cross_entropy, nll_loss=nll_loss, mse_loss=mse_loss, l1_loss=l1_loss,
        binary_cross_entropy=binary_cross_entropy,
        binary_cross_entropy_with_logits=binary_cross_entropy_with_logits,
        scaled_dot_product_attention=scaled_dot_product_attention),
    init=_namespace(
        "simplegrad.nn.init", "In-place initialisation of tensors, as torch.nn.init.",
        calculate_gain=calculate_gain, uniform_=uniform_, normal_=normal_, constant_=constant_,
        zeros_=zeros_, ones_=ones_, xavier_uniform_=xavier_uniform_,
        xavier_normal_=xavier_normal_, kaiming_uniform_=kaiming_uniform_,
        kaiming_normal_=kaiming_normal_),
    parallel=_namespace(
        "simplegrad.nn.parallel", "Data-parallel training over processes, as torch.nn.parallel.",
        DistributedDataParallel=DistributedDataParallel),
)


# ================================================================================================
# 6. optim
# ================================================================================================

# Optimizers update parameter arrays in place (device.assign), so every alias of that memory (a
# torch.from_numpy view, a DLPack capsule) sees the new values. Each update rule follows
# torch.optim's single-tensor code formula for formula and in the same order of operations, so
# that trajectories agree with PyTorch's to rounding (p - a * b / c is torch's
# p.addcdiv_(b, c, value=-a): negating is exact). Rules are written with Tensor arithmetic under
# no_grad: they run on every device, and the state they keep is Tensors.

def _zeros_like(p, value=0):
    """A new tensor of p's shape, dtype and device, filled with `value`."""
    return _wrap(p._device.full(p.shape, value, p.dtype), p._device)


def _lerp(start, end, weight):
    # start + weight (end - start), computed as torch.lerp does so that rounding matches
    if weight < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


def _state_value(op, index, key, value, p):
    """A loaded state entry, checked against its parameter p: "step" becomes an int, other
    numbers stay numbers, arrays (which must have p's shape) new tensors of p's dtype, as
    torch.optim casts them."""
    where = f"the state of parameter {index}, {key!r},"
    if key == "step" or value is None or isinstance(value, (bool, int, float)):
        if key != "step":
            return value
        host = _host_value(value)
        if host.shape != () or host.dtype.kind not in "biuf":
            raise TypeError(f"{op}: {where} must be a number, not {_describe(value)}")
        return int(host.item())
    d = p._device
    if isinstance(value, Tensor) and value._device == d:
        data = value._data
    else:  # a NumPy array, a torch tensor, a tensor of another device
        host = _host_value(value)
        if host.dtype.kind not in "biufc":
            raise TypeError(f"{op}: {where} must be numbers, not {_describe(value)}")
        data = d.array(host)
    if data.dtype.kind not in "biufc" or data.dtype.kind == "c" and p.dtype.kind != "c":
        raise TypeError(f"{op}: {where} of {data.dtype}, does not fit a parameter of "
                        f"{p.dtype}")
    if tuple(data.shape) != p.shape:
        raise ValueError(f"{op}: {where} has shape {tuple(data.shape)}, but the parameter has "
                         f"shape {p.shape}")
    return _wrap(d.copy(d.astype(data, p.dtype)), d)


def _checked_groups(op, saved, groups):
    """The parameters by saved index, after checking that the saved param_groups match the
    optimizer's groups: as many, each listing as many parameters, every index once, and
    options of the kinds the groups hold (a number for a number, a pair for a pair)."""
    if not isinstance(saved, (list, tuple)) or not builtins.all(
            isinstance(s, collections.abc.Mapping) and "params" in s for s in saved):
        raise ValueError(f"{op}: param_groups must be a list of dicts with a 'params' entry, "
                         f"not {_describe(saved)}")
    if len(saved) != len(groups):
        raise ValueError(f"{op}: {len(saved)} parameter groups saved, {len(groups)} here")
    params = {}
    for i, (s, group) in enumerate(zip(saved, groups)):
        if len(s["params"]) != len(group["params"]):
            raise ValueError(f"{op}: parameter group {i} has {len(s['params'])} parameters "
                             f"saved, {len(group['params'])} here")
        for index, p in zip(s["params"], group["params"]):
            if _as_int(index) is None or _as_int(index) in params:
                raise ValueError(f"{op}: parameter group {i} lists {index!r}, which is not an "
                                 "integer index new to the state dict")
            params[_as_int(index)] = p
        for key, value in s.items():
            current = group.get(key)
            if isinstance(current, (tuple, list)):
                fits = isinstance(value, (tuple, list)) and len(value) == len(current)
            elif isinstance(current, (int, float, np.number)) and not isinstance(current, bool):
                fits = value is not None and not isinstance(value, (str, bytes, tuple, list,
                                                                    dict))
            else:
                fits = True
            if key != "params" and not fits:
                raise TypeError(f"{op}: parameter group {i}'s option {key!r} is "
                                f"{_describe(value)}, where the optimizer holds {current!r}")
    return params


def _reals(op, **options):
    """Raise a TypeError naming op and the option unless every option is a number."""
    for what, value in options.items():
        _real(op, what, value)


def _zero_(t):
    """Zero a gradient in place where it owns writable memory, else give it new zeros."""
    writeable = getattr(getattr(t._data, "flags", None), "writeable", True)
    if t._rg or not writeable:  # a recorded gradient (create_graph), a view or a NumPy scalar
        return _zeros_like(t)
    return _write(t, 0)


class Optimizer:
    """Base class: parameter groups, per-parameter state, zero_grad, step, state_dict.

    ``Optimizer(params, defaults)`` as in PyTorch (options may also come as keywords). `params`
    is an iterable of tensors or of dicts, each with ``"params"`` and its own options. A subclass
    writes one rule, ``update(p, grad, state, group)``, returning p's new value; step() writes
    that value into p's array in place.
    """

    def __init__(self, params, defaults=None, **options):
        self.defaults = {**(defaults or {}), **options}
        self.state = {}
        self.param_groups = []
        if isinstance(params, (Tensor, dict)):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of tensors or "
                            f"of dicts, not a {type(params).__name__}")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group):
        """Add a group of parameters with its own options (the defaults fill the rest)."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict, "
                            f"not a {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise ValueError(f"{name}: a parameter group needs a 'params' entry")
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, not {type(p).__name__}")
            if not _is_float(p.dtype):
                raise TypeError(f"{name}: can only optimize floating-point tensors, this one is "
                                f"{p.dtype} of shape {p.shape}")
            if p._node is not None:
                raise ValueError(f"{name}: can't optimize a non-leaf tensor (shape {p.shape}, "
                                 f"made by '{p._node.name}'); optimize the leaves it comes from")
            if id(p) in seen:
                raise ValueError(f"{name}: a parameter of shape {p.shape} appears twice in the "
                                 "parameter groups")
            seen.add(id(p))
        for p in params:  # checked first, so an error leaves every tensor as it was
            p.requires_grad_(True)
        group["params"] = params
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Forget the gradients: set .grad to None, or (set_to_none=False) fill it with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad = None if set_to_none else _zero_(p.grad)

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns closure()'s loss if given one.

        `closure` re-evaluates the model (zero_grad, forward, backward) and returns the loss.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    grad = -p.grad if group.get("maximize") else p.grad
                    new = self.update(p, grad, self.state.setdefault(p, {}), group)
                    _write(p, new._data)
        return loss

    def update(self, p, grad, state, group):
        """The new value of parameter p, given its gradient, its state (updated in place) and
        its group's options."""
        raise NotImplementedError(f"{type(self).__name__} does not implement update()")

    def state_dict(self):
        """The state and the options as in PyTorch: parameters are referred to by index."""
        index, groups = {}, []
        for group in self.param_groups:
            packed = {key: value for key, value in group.items() if key != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Take the state and options of state_dict() (copied: the two do not share memory).

        Everything is checked and converted before anything changes: the param_groups must
        match this optimizer's groups, and each state entry its parameter (arrays of the
        parameter's shape, cast to its dtype; "step" a number), else nothing is loaded.
        """
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(f"{name}: expected a dict-like state_dict, got "
                            f"{_describe(state_dict)}")
        missing = [key for key in ("state", "param_groups") if key not in state_dict]
        if missing or not isinstance(state_dict["state"], collections.abc.Mapping):
            raise ValueError(f"{name}: expected a dict with a 'state' dict and 'param_groups', "
                             f"got one with keys {list(state_dict)}")
        saved = state_dict["param_groups"]
        params = _checked_groups(name, saved, self.param_groups)
        state = {}
        for index, entries in state_dict["state"].items():
            # keys may have become strings (JSON)
            k = int(index) if isinstance(index, str) and index.isdigit() else _as_int(index)
            if k not in params or not isinstance(entries, collections.abc.Mapping):
                raise ValueError(f"{name}: state {index!r} is not a dict for a parameter that "
                                 "the param_groups list")
            p = params[k]
            state[p] = {key: _state_value(name, index, key, value, p)
                        for key, value in entries.items()}
        self.state = state
        for s, group in zip(saved, self.param_groups):
            for key, value in s.items():
                if key != "params":
                    group[key] = list(value) if isinstance(value, list) else value

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {key}: {value}" for key, value in sorted(group.items())
                      if key != "params"]
        return "\n".join(lines + [")"])


class Adam(Optimizer):
    """Adam (Kingma & Ba), with PyTorch's options and formulas.

    The learning rate defaults to 0.01, the original simplegrad's, where PyTorch's is 1e-3.
    The original keyword names ``learning_rate``, ``beta1``, ``beta2`` and ``epsilon`` are
    accepted too.
    """

    def __init__(self, params, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, maximize=False, decoupled_weight_decay=False,
                 learning_rate=None, beta1=None, beta2=None, epsilon=None):
        lr = lr if learning_rate is None else learning_rate
        betas = (betas[0] if beta1 is None else beta1, betas[1] if beta2 is None else beta2)
        eps = eps if epsilon is None else epsilon
        _reals(type(self).__name__, lr=lr, beta1=betas[0], beta2=betas[1], eps=eps,
               weight_decay=weight_decay)
        if lr < 0 or eps < 0 or weight_decay < 0 or not builtins.all(0 <= b < 1 for b in betas):
            raise ValueError(f"{type(self).__name__}: invalid option: lr={lr}, betas={betas}, "
                             f"eps={eps}, weight_decay={weight_decay}")
        super().__init__(params, dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
            maximize=maximize, decoupled_weight_decay=decoupled_weight_decay))

    def update(self, p, grad, state, group):
        """One Adam step for p (torch.optim.adam's _single_tensor_adam)."""
        lr, (beta1, beta2), wd = group["lr"], group["betas"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"], state["exp_avg_sq"] = _zeros_like(p), _zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = _zeros_like(p)
        state["step"] = step = state["step"] + 1
        if wd != 0:
            if group["decoupled_weight_decay"]:
                p = p * (1 - lr * wd)  # AdamW: decay the weights themselves
            else:
                grad = grad + wd * p  # L2 penalty folded into the gradient
        # running averages of the gradient and of its square
        state["exp_avg"] = exp_avg = _lerp(state["exp_avg"], grad, 1 - beta1)
        state["exp_avg_sq"] = exp_avg_sq = state["exp_avg_sq"] * beta2 + (1 - beta2) * grad * grad
        if group["amsgrad"]:  # normalize by the largest second moment seen so far
            state["max_exp_avg_sq"] = exp_avg_sq = maximum(state["max_exp_avg_sq"], exp_avg_sq)
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        step_size = lr / bias_correction1
        denom = exp_avg_sq.sqrt() / bias_correction2 ** 0.5 + group["eps"]
        return p - step_size * exp_avg / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch's defaults."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)


class SGD(Optimizer):
    """Stochastic gradient descent, with momentum (optionally Nesterov's), dampening and
    weight decay, as torch.optim.SGD."""

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False):
        _reals("SGD", lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay)
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: invalid option: lr={lr}, momentum={momentum}, "
                             f"weight_decay={weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def update(self, p, grad, state, group):
        """One SGD step for p (torch.optim.sgd's _single_tensor_sgd)."""
        momentum = group["momentum"]
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * p
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:  # the first step starts the velocity at the gradient
                buf = grad.clone()
            else:
                buf = buf * momentum + (1 - group["dampening"]) * grad
            state["momentum_buffer"] = buf
            grad = grad + momentum * buf if group["nesterov"] else buf
        return p - group["lr"] * grad


class RMSprop(Optimizer):
    """RMSprop (Hinton), optionally centered and with momentum, as torch.optim.RMSprop."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, *, maximize=False):
        _reals("RMSprop", lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
               momentum=momentum)
        if lr < 0 or alpha < 0 or eps < 0 or weight_decay < 0 or momentum < 0:
            raise ValueError(f"RMSprop: invalid option: lr={lr}, alpha={alpha}, eps={eps}, "
                             f"weight_decay={weight_decay}, momentum={momentum}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def update(self, p, grad, state, group):
        """One RMSprop step for p (torch.optim.rmsprop's _single_tensor_rmsprop)."""
        lr, alpha, momentum = group["lr"], group["alpha"], group["momentum"]
        if not state:
            state["step"] = 0
            state["square_avg"] = _zeros_like(p)
            if momentum > 0:
                state["momentum_buffer"] = _zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = _zeros_like(p)
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * p
        state["square_avg"] = square_avg = state["square_avg"] * alpha + (1 - alpha) * grad * grad
        if group["centered"]:  # divide by an estimate of the variance rather than the 2nd moment
            state["grad_avg"] = grad_avg = _lerp(state["grad_avg"], grad, 1 - alpha)
            avg = (square_avg - grad_avg * grad_avg).sqrt()
        else:
            avg = square_avg.sqrt()
        avg = avg + group["eps"]
        if momentum > 0:
            state["momentum_buffer"] = buf = state["momentum_buffer"] * momentum + grad / avg
            return p - lr * buf
        return p - lr * grad / avg


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), with learning-rate decay, as torch.optim.Adagrad."""

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, *, maximize=False):
        _reals("Adagrad", lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
               initial_accumulator_value=initial_accumulator_value, eps=eps)
        if lr < 0 or lr_decay < 0 or weight_decay < 0 or initial_accumulator_value < 0 or eps < 0:
            raise ValueError(f"Adagrad: invalid option: lr={lr}, lr_decay={lr_decay}, "
                             f"weight_decay={weight_decay}, initial_accumulator_value="
                             f"{initial_accumulator_value}, eps={eps}")
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize))

    def update(self, p, grad, state, group):
        """One Adagrad step for p (torch.optim.adagrad's _single_tensor_adagrad)."""
        if not state:
            state["step"] = 0
            state["sum"] = _zeros_like(p, group["initial_accumulator_value"])
        state["step"] = step = state["step"] + 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * p
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        state["sum"] = total = state["sum"] + grad * grad
        std = total.sqrt() + group["eps"]
        return p - clr * grad / std


# ---- the PyTorch bridge -------------------------------------------------------------------------

def _torch_view(torch, array):
    """A torch tensor on the memory of a device array (NumPy's, or any DLPack exporter)."""
    if isinstance(array, np.ndarray):
        return torch.from_numpy(array)
    return torch.from_dlpack(array)


def torch_params(params):
    """Torch leaf tensors sharing memory with simplegrad parameters, for ``torch.optim``.

    Any torch.optim optimizer, and any LR scheduler on it, then drives the parameters::

        params = optim.torch_params(model.parameters())
        opt = torch.optim.AdamW(params, lr=1e-3)
        ...
        loss.backward(); opt.step(); opt.zero_grad()      # loss: a simplegrad tensor

    Nothing is copied: each torch tensor is a view of a parameter's array, and after every
    backward() its ``.grad`` is a view of the parameter's gradient. torch's ``zero_grad()``
    (which sets ``.grad`` to None) makes the next backward() start the simplegrad gradient
    afresh; simplegrad's ``p.grad = None`` works too. torch is imported here only.
    """
    import torch

    out = []
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"torch_params: expected simplegrad Tensors, not {type(p).__name__}")
        p.requires_grad_(True)
        tp = _torch_view(torch, p._data).requires_grad_(True)

        def restart(g, tp=tp, p=p):
            if tp.grad is None:  # torch's zero_grad() ran: accumulation starts again
                p.grad = None

        def share(p, tp=tp):
            if isinstance(p.grad._data, np.generic):  # a 0-d result: give it real memory
                p.grad._data = np.array(p.grad._data)
            tp.grad = _torch_view(torch, p.grad._data)

        p.register_hook(restart)
        p.register_post_accumulate_grad_hook(share)
        out.append(tp)
    return out


optim = _namespace(
    "simplegrad.optim", "Optimizers that update simplegrad parameters in place, and the bridge "
    "that lets torch.optim drive them.",
    Optimizer=Optimizer, SGD=SGD, Adam=Adam, AdamW=AdamW, RMSprop=RMSprop, Adagrad=Adagrad,
    torch_params=torch_params)


# ================================================================================================
# 7. Tools
# ================================================================================================
# Two debugging aids built on the engine: draw_graph shows the graph that produced a tensor,
# and gradcheck / gradgradcheck compare the backward rules with finite differences.

# ---- draw_graph ---------------------------------------------------------------------------------

# how each kind of tensor is drawn: (shape, fill colour)
_GRAPH_STYLES = {
    "op": ("box", "lightgrey"),
    "parameter": ("ellipse", "lightblue"),
    "leaf": ("ellipse", "palegreen"),
    "constant": ("box", "white"),
}
_GRAPH_FORMATS = ("dot", "svg", "png", "pdf")


def _dot_string(text):
    """A double-quoted DOT string: backslashes and quotes escaped, newlines as centred breaks."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _graph_walk(roots):
    """Every tensor reachable from `roots` through node.inputs, each after its inputs.

    Unlike _toposort this enters constants too (they are drawn) and does not stop at freed
    nodes (their inputs are gone: they are drawn as ends). Iterative, as _toposort."""
    order, seen = [], set()
    for root in roots:
        if id(root) in seen:
            continue
        seen.add(id(root))
        stack = [(root, iter(root._node.inputs if root._node is not None else ()))]
        while stack:
            t, inputs = stack[-1]
            for x in inputs:
                if id(x) not in seen:
                    seen.add(id(x))
                    stack.append((x, iter(x._node.inputs if x._node is not None else ())))
                    break
            else:
                stack.pop()
                order.append(t)
    return order


def _graph_format(path, format):
    if format is None:
        format = os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
    if format not in _GRAPH_FORMATS:
        raise ValueError(f"draw_graph: cannot write {os.fspath(path)!r} as {format!r}; give a "
                         f"path ending in one of .{', .'.join(_GRAPH_FORMATS)}, or format=")
    return format


def draw_graph(tensor, show_grad=False, path=None, format=None, params=None):
    """The graph that produced `tensor` (or a list of tensors) as Graphviz DOT text.

    One node per tensor: the op's name for a tensor an op made, else ``parameter`` (or its
    name, from ``params=dict(model.named_parameters())``), ``leaf`` (requires grad) or
    ``constant``; then its shape and dtype, and with ``show_grad=True`` its ``.grad``'s shape.
    Edges go from inputs to outputs. backward() frees the graph it walks, so call draw_graph
    before backward(), or backward with retain_graph=True. With `path` the DOT is written
    there (``.dot``) or rendered by Graphviz's ``dot`` program (``.svg``, ``.png``, ``.pdf``;
    `format` overrides the suffix). Returns the DOT text either way.
    """
    roots = [tensor] if isinstance(tensor, Tensor) else list(tensor)
    for root in roots:
        if not isinstance(root, Tensor):
            raise TypeError(f"draw_graph: expected Tensors, not {type(root).__name__}")
        if root._node is not None and root._node.backward is None:
            raise RuntimeError(
                f"draw_graph: the graph through '{root._node.name}' (output shape {root.shape}) "
                "was freed by backward(); call draw_graph before backward(), or pass "
                "retain_graph=True to backward()")
    names = {id(p): name for name, p in dict(params or {}).items()}
    order = _graph_walk(roots)
    ids = {id(t): f"t{i}" for i, t in enumerate(order)}
    root_ids = {id(r) for r in roots}
    lines = ["digraph simplegrad {",
             '  node [fontname="Helvetica", fontsize=10, style=filled];']
    for t in order:
        node = t._node
        if node is not None:
            kind, title = "op", node.name
            if node.backward is None:  # freed by an earlier backward(): its inputs are gone
                title += " (graph freed)"
        elif id(t) in names or isinstance(t, Parameter):
            kind, title = "parameter", names.get(id(t), "parameter")
        else:
            kind, title = ("leaf", "leaf") if t._rg else ("constant", "constant")
        label = f"{title}\n{tuple(t.shape)} {t.dtype}"
        if show_grad and t.grad is not None:
            label += f"\ngrad {tuple(t.grad.shape)}"
        shape, fill = _GRAPH_STYLES[kind]
        extra = ", penwidth=2" if id(t) in root_ids else ""
        lines.append(f"  {ids[id(t)]} [label={_dot_string(label)}, class={kind}, shape={shape}, "
                     f'fillcolor="{fill}"{extra}];')
    for t in order:
        if t._node is not None:
            for x in t._node.inputs:
                lines.append(f"  {ids[id(x)]} -> {ids[id(t)]};")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    if path is not None:
        _write_graph(text, path, _graph_format(path, format))
    return text


def _write_graph(text, path, format):
    """Write DOT text to `path`, rendered by Graphviz's dot unless the format is dot."""
    if format == "dot":
        with open(path, "w") as f:
            f.write(text)
        return
    import shutil
    import subprocess

    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(
            f"draw_graph: rendering {os.fspath(path)!r} as {format} needs Graphviz's `dot` "
            "program, which is not on the PATH (Debian/Ubuntu: apt-get install graphviz); "
            "a path ending in .dot needs no rendering")
    result = subprocess.run([dot, f"-T{format}", "-o", os.fspath(path)], input=text.encode(),
                            capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"draw_graph: dot failed on {os.fspath(path)!r}: "
                           f"{result.stderr.decode(errors='replace').strip()}")


# ---- gradcheck ----------------------------------------------------------------------------------
# The suite compares most backward rules with PyTorch (test/helpers.py); gradcheck backs up the
# rules that PyTorch cannot mirror (unbind's hub, overlapping windows/as_strided, custom ops).

def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _float64_host(t):
    """A float64 NumPy copy of a tensor's values."""
    return np.array(t._device.to_host(t._data), dtype=np.float64)


def _checked_inputs(op, inputs):
    """Positions of the tensors among `inputs` that require grad; each must be float64."""
    checked = []
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor) and x._rg:
            if x.dtype != np.float64:
                raise TypeError(f"{op}: input {i} has dtype {x.dtype}; finite differences are "
                                "accurate only in float64, so pass float64 inputs (.double())")
            checked.append(i)
    if not checked:
        raise ValueError(f"{op}: no input requires grad, so there is nothing to check")
    return checked


def _differentiable_outputs(op, outputs):
    """The float outputs (those that can have a gradient); each must be float64."""
    result = []
    for k, out in enumerate(outputs):
        if not isinstance(out, Tensor):
            raise TypeError(f"{op}: fn returned a {type(out).__name__} as output {k}; return "
                            "a tensor or a tuple of tensors")
        if _is_float(out.dtype):
            if out.dtype != np.float64:
                raise TypeError(f"{op}: output {k} has dtype {out.dtype}; compute in float64 so "
                                "that finite differences are accurate")
            result.append(k)
    if not result:
        raise ValueError(f"{op}: fn returned no float output, so there is nothing to check")
    return result


def _analytic_jacobian(out, inputs, checked):
    """Rows d out[k] / d inputs[i] for each checked i, by one vector-Jacobian product per
    output element k (a unit vector as grad_outputs): {i: array (out.numel(), x.numel())}."""
    jac = {i: np.zeros((out.numel(), inputs[i].numel())) for i in checked}
    if not out._rg:
        return jac  # the output does not depend on any input that requires grad
    d = out._device
    targets = [inputs[i] for i in checked]
    for k in range(out.numel()):
        unit = np.zeros(out.numel())
        unit[k] = 1.0
        seed = _wrap(d.array(unit.reshape(out.shape), np.float64), d)
        grads = grad(out, targets, seed, retain_graph=True, allow_unused=True)
        for i, g in zip(checked, grads):
            if g is not None:
                jac[i][k] = _float64_host(g).reshape(-1)
    return jac


def _numerical_jacobians(fn, inputs, checked, outs, eps):
    """Central differences (f(x + eps) - f(x - eps)) / 2 eps, element by element, in float64:
    {(output k, input i): array (out.numel(), x.numel())}. Each input's array is swapped for
    a perturbed copy while fn runs, and put back."""
    jac = {(k, i): np.zeros((outputs_numel, inputs[i].numel()))
           for k, outputs_numel in outs.items() for i in checked}
    for i in checked:
        x = inputs[i]
        d, saved = x._device, x._data
        base = _float64_host(x)
        try:
            for j in range(base.size):
                values = []
                for step in (eps, -eps):
                    moved = base.copy()
                    moved.reshape(-1)[j] += step
                    x.data = d.array(moved, np.float64)
                    results = _as_tuple(fn(*inputs))
                    values.append({k: _float64_host(results[k]).reshape(-1) for k in outs})
                for k in outs:
                    jac[k, i][:, j] = (values[0][k] - values[1][k]) / (2 * eps)
        finally:
            x.data = saved
    return jac


def _index(shape, flat):
    return tuple(int(n) for n in np.unravel_index(flat, shape)) if shape else ()


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Compare fn's backward with central finite differences, as torch.autograd.gradcheck.

    `inputs` is a tensor or a tuple (passed to ``fn(*inputs)``); those that require grad are
    checked and must be float64. Every element of the analytic Jacobian (one vector-Jacobian
    product per output element) must satisfy ``|analytic - numerical| <= atol + rtol *
    |numerical|``. Returns True, or on failure raises (or returns False with
    ``raise_exception=False``) naming the worst element: output, input, indices and both values.
    """
    inputs = _as_tuple(inputs)
    checked = _checked_inputs("gradcheck", inputs)
    with enable_grad():
        outputs = _as_tuple(fn(*inputs))
        float_outputs = _differentiable_outputs("gradcheck", outputs)
        analytic = {(k, i): jac for k in float_outputs
                    for i, jac in _analytic_jacobian(outputs[k], inputs, checked).items()}
        numerical = _numerical_jacobians(
            fn, inputs, checked, {k: outputs[k].numel() for k in float_outputs}, eps)
    worst = None
    for (k, i), a in analytic.items():
        n = numerical[k, i]
        excess = np.abs(a - n) - (atol + rtol * np.abs(n))
        if excess.size and (worst is None or excess.max() > worst[0]):
            row, col = np.unravel_index(int(np.argmax(excess)), excess.shape)
            worst = (excess[row, col], k, i, row, col, a[row, col], n[row, col])
    if worst is None or worst[0] <= 0:
        return True
    _, k, i, row, col, a, n = worst
    message = (f"gradcheck: Jacobian mismatch for output {k} with respect to input {i}: at "
               f"output index {_index(outputs[k].shape, row)} and input index "
               f"{_index(inputs[i].shape, col)} the analytic gradient is {a:.10g} but the "
               f"numerical one is {n:.10g} (|difference| {builtins.abs(a - n):.3g} > atol + rtol * "
               f"|numerical| = {atol:g} + {rtol:g} * {builtins.abs(n):.3g}; the worst element)")
    if raise_exception:
        raise RuntimeError(message)
    return False


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3,
                  raise_exception=True):
    """Check second derivatives: gradcheck of the vector-Jacobian product of fn, as
    torch.autograd.gradgradcheck.

    The product ``v -> grad(fn(*inputs), inputs, v, create_graph=True)`` is checked with
    respect to the inputs and to `v`, the grad_outputs (random normal, seeded, when not given).
    """
    inputs = _as_tuple(inputs)
    checked = _checked_inputs("gradgradcheck", inputs)
    with enable_grad():
        outputs = _as_tuple(fn(*inputs))
    float_outputs = _differentiable_outputs("gradgradcheck", outputs)
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = [Tensor(rng.standard_normal(outputs[k].shape), dtype=np.float64,
                               device=outputs[k]._device) for k in float_outputs]
    else:
        grad_outputs = [g if isinstance(g, Tensor) else Tensor(np.asarray(g), dtype=np.float64)
                        for g in _as_tuple(grad_outputs)]
        if len(grad_outputs) != len(float_outputs):
            raise ValueError(f"gradgradcheck: {len(grad_outputs)} grad_outputs given for "
                             f"{len(float_outputs)} float outputs")
    grad_outputs = [g.detach().requires_grad_() for g in grad_outputs]
    n = len(inputs)

    def vjp(*args):
        with enable_grad():
            outs = _as_tuple(fn(*args[:n]))
            pairs = [(outs[k], v) for k, v in zip(float_outputs, args[n:]) if outs[k]._rg]
            if not pairs:
                raise RuntimeError("gradgradcheck: no output of fn requires grad")
            targets = [args[i] for i in checked]
            grads = grad([o for o, _ in pairs], targets, [v for _, v in pairs],
                         create_graph=True, allow_unused=True)
        return tuple(g if g is not None else _wrap(x._device.full(x.shape, 0, np.float64),
                                                   x._device)
                     for g, x in zip(grads, targets))

    return gradcheck(vjp, inputs + tuple(grad_outputs), eps, atol, rtol, raise_exception)
