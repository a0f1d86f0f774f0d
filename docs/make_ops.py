"""Write docs/ops.md, the table of simplegrad's public ops, from the code (so it cannot drift).

    python docs/make_ops.py            # write docs/ops.md
    python docs/make_ops.py --check    # exit 1, printing a unified diff, if docs/ops.md is stale

Every op runs once on small inputs under simplegrad.profile() on the NumPy device: the ops
it records, the backward rules it runs (with a random upstream gradient) and the kernels of
both come from the profile. Gradient rules and comments are read from the source with inspect
and ast; NumPy entries by calling each entry of the NumPy protocol tables and seeing which op
it reaches first; families from the banners above each definition. The only hand-written
facts are SAMPLES (one invocation per op) and NOT_OPS; FAMILIES and BANNER_WORDS only say
how the banners' words group the tables.
"""

import argparse
import ast
import collections
import difflib
import functools
import inspect
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import simplegrad as sg  # noqa: E402

F = sg.nn.functional
OUTPUT = ROOT / "docs" / "ops.md"
COMMAND = "python docs/make_ops.py"

# ---- the hand-written part: public names that are not ops, and one sample call per op ------

# hooks, autograd plumbing, casts and device moves, conversions to Python, and module-level
# helpers (everything of simplegrad.nn.init and simplegrad.optim is left out as well)
NOT_OPS = {
    "backward", "requires_grad_", "retain_grad", "register_hook",
    "register_post_accumulate_grad_hook", "detach", "detach_",
    "astype", "type", "float", "double", "half", "long", "int", "bool", "to", "cpu",
    "contiguous", "numpy", "item", "tolist", "size", "numel", "dim", "element_size", "type_as",
    "allclose", "equal", "is_tensor", "from_numpy", "as_tensor", "device",
    "manual_seed", "is_grad_enabled", "grad", "save", "load", "draw_graph", "gradcheck",
    "gradgradcheck",
}

_NUMPY = sg.NumpyDevice()
_rng = np.random.default_rng(0)


def _leaf(*shape, low=0.1, high=0.9):
    """A float64 leaf that requires grad, with values in [low, high)."""
    return sg.Tensor(_rng.uniform(low, high, shape), requires_grad=True, device=_NUMPY)


def _const(values, dtype=None):
    """A tensor that needs no gradient (indices, masks, targets)."""
    return sg.Tensor(np.asarray(values, dtype), device=_NUMPY)


def _spd(n):
    """A symmetric positive-definite leaf of shape (n, n)."""
    a = _rng.uniform(-1, 1, (n, n))
    return sg.Tensor(a @ a.T + n * np.eye(n), requires_grad=True, device=_NUMPY)


# Each sample gets x, a fresh float64 leaf of shape (3, 4) with values in [0.1, 0.9); the
# other inputs are these leaves and constants.
X_VALUES = _rng.uniform(0.1, 0.9, (3, 4))
y, col, scalar = _leaf(3, 4), _leaf(3, 1), _leaf()
v, w, a3, b3, cube = _leaf(4), _leaf(4), _leaf(2, 3), _leaf(2, 3), _leaf(2, 2, 2)
M, R, S, slope = _leaf(4, 5), _leaf(4, 3), _spd(3), _leaf(1)
src, rows = _leaf(2, 4), _leaf(2, 4)
W, b5, g4, b4, table = _leaf(5, 4), _leaf(5), _leaf(4), _leaf(4), _leaf(3, 4)
signal, k1, kt1, bias3 = _leaf(1, 2, 8), _leaf(3, 2, 3), _leaf(2, 3, 3), _leaf(3)
image, k2, kt2 = _leaf(1, 2, 5, 5), _leaf(3, 2, 3, 3), _leaf(2, 3, 3, 3)
volume, k3 = _leaf(1, 2, 4, 4, 4), _leaf(3, 2, 2, 2, 2)
q, k, val = _leaf(1, 2, 3, 4), _leaf(1, 2, 3, 4), _leaf(1, 2, 3, 4)
LEAVES = [y, col, scalar, v, w, a3, b3, cube, M, R, S, slope, src, rows, W, b5, g4, b4, table,
          signal, k1, kt1, bias3, image, k2, kt2, volume, k3, q, k, val]
ints = _const([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]], np.int64)
mask = _const([[True, False, True, False], [False, True, False, True], [True, True, False,
                                                                      False]])
idx = _const([[0, 1, 2, 0], [2, 0, 1, 1]], np.int64)
sel = _const([0, 2], np.int64)
labels, tokens = _const([0, 3, 1], np.int64), _const([[0, 2], [1, 0]], np.int64)
target = _const(_rng.uniform(0, 1, (3, 4)))
mean4, var4 = _const(np.zeros(4)), _const(np.ones(4))
sorted_seq, probs = _const([0.1, 0.3, 0.5, 0.7]), _const([0.2, 0.3, 0.5])

SAMPLES = {
    # elementwise
    "abs": lambda x: x.abs(),
    "acos": lambda x: x.acos(),
    "acosh": lambda x: x.acosh(),
    "add": lambda x: x.add(y),
    "asin": lambda x: x.asin(),
    "asinh": lambda x: x.asinh(),
    "atan": lambda x: x.atan(),
    "atan2": lambda x: x.atan2(y),
    "atanh": lambda x: x.atanh(),
    "bitwise_and": lambda x: ints.bitwise_and(6),
    "bitwise_left_shift": lambda x: ints.bitwise_left_shift(1),
    "bitwise_not": lambda x: ints.bitwise_not(),
    "bitwise_or": lambda x: ints.bitwise_or(6),
    "bitwise_right_shift": lambda x: ints.bitwise_right_shift(1),
    "bitwise_xor": lambda x: ints.bitwise_xor(6),
    "ceil": lambda x: x.ceil(),
    "clamp": lambda x: x.clamp(0.2, 0.8),
    "clone": lambda x: x.clone(),
    "copysign": lambda x: x.copysign(y),
    "cos": lambda x: x.cos(),
    "cosh": lambda x: x.cosh(),
    "deg2rad": lambda x: x.deg2rad(),
    "div": lambda x: x.div(y),
    "eq": lambda x: x.eq(y),
    "erf": lambda x: x.erf(),
    "erfc": lambda x: x.erfc(),
    "exp": lambda x: x.exp(),
    "exp2": lambda x: x.exp2(),
    "expm1": lambda x: x.expm1(),
    "floor": lambda x: x.floor(),
    "floor_divide": lambda x: x.floor_divide(y),
    "fmax": lambda x: x.fmax(y),
    "fmin": lambda x: x.fmin(y),
    "fmod": lambda x: x.fmod(y),
    "frac": lambda x: x.frac(),
    "ge": lambda x: x.ge(y),
    "gt": lambda x: x.gt(y),
    "hypot": lambda x: x.hypot(y),
    "isclose": lambda x: x.isclose(y),
    "isfinite": lambda x: x.isfinite(),
    "isinf": lambda x: x.isinf(),
    "isnan": lambda x: x.isnan(),
    "isneginf": lambda x: x.isneginf(),
    "isposinf": lambda x: x.isposinf(),
    "le": lambda x: x.le(y),
    "lerp": lambda x: x.lerp(y, 0.3),
    "log": lambda x: x.log(),
    "log10": lambda x: x.log10(),
    "log1p": lambda x: x.log1p(),
    "log2": lambda x: x.log2(),
    "logaddexp": lambda x: x.logaddexp(y),
    "logaddexp2": lambda x: x.logaddexp2(y),
    "logical_and": lambda x: x.logical_and(y),
    "logical_not": lambda x: x.logical_not(),
    "logical_or": lambda x: x.logical_or(y),
    "logical_xor": lambda x: x.logical_xor(y),
    "lt": lambda x: x.lt(y),
    "maximum": lambda x: x.maximum(y),
    "minimum": lambda x: x.minimum(y),
    "mul": lambda x: x.mul(y),
    "nan_to_num": lambda x: x.nan_to_num(),
    "ne": lambda x: x.ne(y),
    "neg": lambda x: x.neg(),
    "pow": lambda x: x.pow(y),
    "rad2deg": lambda x: x.rad2deg(),
    "reciprocal": lambda x: x.reciprocal(),
    "remainder": lambda x: x.remainder(y),
    "round": lambda x: x.round(),
    "rsqrt": lambda x: x.rsqrt(),
    "sign": lambda x: x.sign(),
    "sin": lambda x: x.sin(),
    "sinc": lambda x: x.sinc(),
    "sinh": lambda x: x.sinh(),
    "sqrt": lambda x: x.sqrt(),
    "square": lambda x: x.square(),
    "sub": lambda x: x.sub(y),
    "tan": lambda x: x.tan(),
    "trunc": lambda x: x.trunc(),
    "where": lambda x: sg.where(mask, x, y),
    # activations
    "celu": lambda x: F.celu(x),
    "elu": lambda x: F.elu(x),
    "gelu": lambda x: x.gelu(),
    "glu": lambda x: F.glu(x),
    "hardshrink": lambda x: x.hardshrink(),
    "hardsigmoid": lambda x: F.hardsigmoid(x),
    "hardswish": lambda x: F.hardswish(x),
    "hardtanh": lambda x: F.hardtanh(x),
    "leaky_relu": lambda x: x.leaky_relu(),
    "log_softmax": lambda x: x.log_softmax(1),
    "logsigmoid": lambda x: F.logsigmoid(x),
    "mish": lambda x: F.mish(x),
    "prelu": lambda x: x.prelu(slope),
    "relu": lambda x: x.relu(),
    "relu6": lambda x: F.relu6(x),
    "rrelu": lambda x: F.rrelu(x),
    "selu": lambda x: F.selu(x),
    "sigmoid": lambda x: x.sigmoid(),
    "silu": lambda x: F.silu(x),
    "softmax": lambda x: x.softmax(1),
    "softmin": lambda x: F.softmin(x, 1),
    "softplus": lambda x: x.softplus(),
    "softshrink": lambda x: F.softshrink(x),
    "softsign": lambda x: F.softsign(x),
    "tanh": lambda x: x.tanh(),
    "tanhshrink": lambda x: F.tanhshrink(x),
    "threshold": lambda x: F.threshold(x, 0.5, 0.0),
    # reductions and scans
    "all": lambda x: x.all(),
    "amax": lambda x: x.amax(1),
    "amin": lambda x: x.amin(1),
    "any": lambda x: x.any(),
    "argmax": lambda x: x.argmax(1),
    "argmin": lambda x: x.argmin(1),
    "count_nonzero": lambda x: x.count_nonzero(),
    "cummax": lambda x: x.cummax(1),
    "cummin": lambda x: x.cummin(1),
    "cumprod": lambda x: x.cumprod(1),
    "cumsum": lambda x: x.cumsum(1),
    "logcumsumexp": lambda x: x.logcumsumexp(1),
    "logsumexp": lambda x: x.logsumexp(1),
    "max": lambda x: x.max(),
    "mean": lambda x: x.mean(1),
    "median": lambda x: x.median(),
    "min": lambda x: x.min(),
    "nanmean": lambda x: x.nanmean(1),
    "nansum": lambda x: x.nansum(1),
    "norm": lambda x: x.norm(),
    "prod": lambda x: x.prod(1),
    "std": lambda x: x.std(1),
    "std_mean": lambda x: sg.std_mean(x, 1),
    "sum": lambda x: x.sum(1),
    "var": lambda x: x.var(1),
    "var_mean": lambda x: sg.var_mean(x, 1),
    # sorting
    "argsort": lambda x: x.argsort(1),
    "kthvalue": lambda x: x.kthvalue(2, 1),
    "msort": lambda x: x.msort(),
    "searchsorted": lambda x: sg.searchsorted(sorted_seq, v),
    "sort": lambda x: x.sort(1),
    "topk": lambda x: x.topk(2, 1),
    "unique": lambda x: x.unique(),
    # movement
    "array_split": lambda x: sg.array_split(x, 2, 1),
    "as_strided": lambda x: x.as_strided((2, 2), (1, 1)),
    "atleast_1d": lambda x: sg.atleast_1d(scalar),
    "atleast_2d": lambda x: sg.atleast_2d(v),
    "atleast_3d": lambda x: sg.atleast_3d(x),
    "broadcast_to": lambda x: col.broadcast_to((3, 4)),
    "cat": lambda x: sg.cat([x, y]),
    "chunk": lambda x: x.chunk(2, 1),
    "column_stack": lambda x: sg.column_stack([v, w]),
    "diag": lambda x: v.diag(),
    "diag_embed": lambda x: v.diag_embed(),
    "diagonal": lambda x: x.diagonal(),
    "diff": lambda x: x.diff(),
    "dsplit": lambda x: sg.dsplit(cube, 2),
    "dstack": lambda x: sg.dstack([x, y]),
    "expand": lambda x: col.expand(3, 4),
    "expand_as": lambda x: col.expand_as(x),
    "flatten": lambda x: x.flatten(),
    "flip": lambda x: x.flip(0),
    "fliplr": lambda x: x.fliplr(),
    "flipud": lambda x: x.flipud(),
    "gather": lambda x: x.gather(0, idx),
    "hsplit": lambda x: sg.hsplit(x, 2),
    "hstack": lambda x: sg.hstack([x, y]),
    "index_select": lambda x: x.index_select(0, sel),
    "kron": lambda x: v.kron(w),
    "masked_fill": lambda x: x.masked_fill(mask, 0.0),
    "masked_select": lambda x: x.masked_select(mask),
    "meshgrid": lambda x: sg.meshgrid(v, w),
    "movedim": lambda x: x.movedim(0, 1),
    "narrow": lambda x: x.narrow(1, 1, 2),
    "outer": lambda x: v.outer(w),
    "pad": lambda x: x.pad((1, 1)),
    "permute": lambda x: x.permute(1, 0),
    "repeat": lambda x: x.repeat(2, 1),
    "repeat_interleave": lambda x: x.repeat_interleave(2, 0),
    "reshape": lambda x: x.reshape(4, 3),
    "roll": lambda x: x.roll(1, 1),
    "rot90": lambda x: x.rot90(),
    "split": lambda x: x.split(2, 1),
    "squeeze": lambda x: col.squeeze(1),
    "stack": lambda x: sg.stack([x, y]),
    "swapaxes": lambda x: x.swapaxes(0, 1),
    "take_along_dim": lambda x: x.take_along_dim(idx, 0),
    "tensor_split": lambda x: sg.tensor_split(x, 2, 1),
    "tile": lambda x: x.tile(2),
    "trace": lambda x: x.trace(),
    "transpose": lambda x: x.transpose(0, 1),
    "t": lambda x: x.t(),
    "tril": lambda x: x.tril(),
    "triu": lambda x: x.triu(),
    "unbind": lambda x: x.unbind(0),
    "unflatten": lambda x: x.unflatten(1, (2, 2)),
    "unsqueeze": lambda x: x.unsqueeze(0),
    "vsplit": lambda x: sg.vsplit(x, 3),
    "vstack": lambda x: sg.vstack([x, y]),
    "windows": lambda x: x.windows(2),
    # indexing and scatter
    "index_add": lambda x: x.index_add(0, sel, rows),
    "index_copy": lambda x: x.index_copy(0, sel, rows),
    "index_fill": lambda x: x.index_fill(0, sel, 0.5),
    "scatter": lambda x: x.scatter(0, idx, src),
    "scatter_add": lambda x: x.scatter_add(0, idx, src),
    "scatter_reduce": lambda x: x.scatter_reduce(0, idx, src, "amax"),
    # linear algebra
    "cholesky": lambda x: sg.linalg.cholesky(S),
    "cross": lambda x: a3.cross(b3),
    "det": lambda x: sg.linalg.det(S),
    "dot": lambda x: v.dot(w),
    "eigh": lambda x: sg.linalg.eigh(S),
    "eigvalsh": lambda x: sg.linalg.eigvalsh(S),
    "einsum": lambda x: x.einsum("ij,kj->ik", y),
    "inner": lambda x: x.inner(y),
    "inv": lambda x: sg.linalg.inv(S),
    "matmul": lambda x: x.matmul(M),
    "mm": lambda x: x.mm(M),
    "bmm": lambda x: sg.bmm(cube, cube),
    "mv": lambda x: x.mv(v),
    "matrix_norm": lambda x: sg.linalg.matrix_norm(x),
    "pinv": lambda x: sg.linalg.pinv(R),
    "qr": lambda x: sg.linalg.qr(R),
    "slogdet": lambda x: sg.linalg.slogdet(S),
    "solve": lambda x: sg.linalg.solve(S, x),
    "svd": lambda x: sg.linalg.svd(R, full_matrices=False),
    "svdvals": lambda x: sg.linalg.svdvals(R),
    "tensordot": lambda x: sg.tensordot(x, y, ([1], [1])),
    "vector_norm": lambda x: sg.vector_norm(x),
    # creation
    "arange": lambda x: sg.arange(5),
    "bernoulli": lambda x: sg.bernoulli(x),
    "empty": lambda x: sg.empty(2, 3),
    "empty_like": lambda x: sg.empty_like(x),
    "eye": lambda x: sg.eye(3),
    "full": lambda x: sg.full((2, 3), 7.0),
    "full_like": lambda x: sg.full_like(x, 2.0),
    "linspace": lambda x: sg.linspace(0, 1, 5),
    "logspace": lambda x: sg.logspace(0, 1, 5),
    "multinomial": lambda x: sg.multinomial(probs, 2),
    "normal": lambda x: sg.normal(x, 1.0),
    "ones": lambda x: sg.ones(2, 3),
    "ones_like": lambda x: sg.ones_like(x),
    "rand": lambda x: sg.rand(2, 3),
    "rand_like": lambda x: sg.rand_like(x),
    "randint": lambda x: sg.randint(0, 5, (2, 3)),
    "randint_like": lambda x: sg.randint_like(x, 5),
    "randn": lambda x: sg.randn(2, 3),
    "randn_like": lambda x: sg.randn_like(x),
    "randperm": lambda x: sg.randperm(5),
    "tensor": lambda x: sg.tensor([1.0, 2.0]),
    "tril_indices": lambda x: sg.tril_indices(3, 3),
    "triu_indices": lambda x: sg.triu_indices(3, 3),
    "zeros": lambda x: sg.zeros(2, 3),
    "new_zeros": lambda x: x.new_zeros(2, 3),
    "new_ones": lambda x: x.new_ones(2, 3),
    "new_full": lambda x: x.new_full((2, 3), 7.0),
    "new_tensor": lambda x: x.new_tensor([1.0, 2.0]),
    "zeros_like": lambda x: sg.zeros_like(x),
    # nn.functional layers and losses
    "adaptive_avg_pool2d": lambda x: F.adaptive_avg_pool2d(image, 2),
    "avg_pool1d": lambda x: F.avg_pool1d(signal, 2),
    "avg_pool2d": lambda x: F.avg_pool2d(image, 2),
    "batch_norm": lambda x: F.batch_norm(x, mean4, var4, g4, b4),
    "binary_cross_entropy": lambda x: F.binary_cross_entropy(x, target),
    "binary_cross_entropy_with_logits": lambda x: F.binary_cross_entropy_with_logits(x, target),
    "conv1d": lambda x: F.conv1d(signal, k1, bias3),
    "conv2d": lambda x: F.conv2d(image, k2, bias3),
    "conv3d": lambda x: F.conv3d(volume, k3, bias3),
    "conv_transpose1d": lambda x: F.conv_transpose1d(signal, kt1),
    "conv_transpose2d": lambda x: F.conv_transpose2d(image, kt2),
    "cross_entropy": lambda x: F.cross_entropy(x, labels),
    "dropout": lambda x: F.dropout(x, 0.5),
    "embedding": lambda x: F.embedding(tokens, table),
    "l1_loss": lambda x: F.l1_loss(x, y),
    "layer_norm": lambda x: F.layer_norm(x, (4,), g4, b4),
    "linear": lambda x: F.linear(x, W, b5),
    "max_pool1d": lambda x: F.max_pool1d(signal, 2),
    "max_pool2d": lambda x: F.max_pool2d(image, 2),
    "mse_loss": lambda x: F.mse_loss(x, y),
    "nll_loss": lambda x: F.nll_loss(x, labels),
    "scaled_dot_product_attention": lambda x: F.scaled_dot_product_attention(q, k, val),
}

# ---- reading the source --------------------------------------------------------------------

SOURCE = inspect.getsource(sg)
LINES = SOURCE.splitlines()
TREE = ast.parse(SOURCE)
FAMILIES = ["elementwise", "activations", "reductions and scans", "sorting", "movement",
            "indexing and scatter", "linear algebra", "creation",
            "nn.functional layers and losses"]
# a word in a banner (or a Device comment) -> the family of the code below it, first match wins
BANNER_WORDS = [
    ("functional", FAMILIES[8]), ("activation", FAMILIES[1]), ("creation", FAMILIES[7]),
    ("linear algebra", FAMILIES[6]), ("linalg", FAMILIES[6]), ("contraction", FAMILIES[6]),
    ("scatter", FAMILIES[5]), ("sort", FAMILIES[3]), ("reduction", FAMILIES[2]),
    ("scan", FAMILIES[2]), ("movement", FAMILIES[4]), ("view", FAMILIES[4]),
    ("elementwise", FAMILIES[0]), ("arithmetic", FAMILIES[0]), ("comparison", FAMILIES[0]),
    ("bitwise", FAMILIES[0]), ("binary", FAMILIES[0]),
]
TABLES = ("_UNARY", "_STEPS", "_BINARY")  # section 3's tables of elementwise ops
FORMS = {"x": "`x.f()`", "sg": "`sg.f`", "F": "`F.f`", "linalg": "`sg.linalg.f`"}


def _sections():
    """(first line, number) of each numbered section of simplegrad.py, 1-based lines."""
    found = []
    for i, line in enumerate(LINES[1:], 1):
        match = re.match(r"# (\d+)\. \S", line)
        if match and LINES[i - 1].startswith("# ===="):
            found.append((i + 1, int(match.group(1))))
    return found


SECTIONS = _sections()


def _section(line):
    """The number of the section holding a (1-based) line."""
    return max((n for start, n in SECTIONS if start <= line), default=0)


def _section_range(number):
    """(first line, line after the last) of a numbered section."""
    starts = [start for start, n in SECTIONS if n == number]
    ends = [start for start, n in SECTIONS if n == number + 1]
    return starts[0], (ends[0] if ends else len(LINES) + 1)


def _comment_family(text):
    """The family a banner or comment names, or None."""
    text = text.lower()
    return next((family for word, family in BANNER_WORDS if word in text), None)


def _comments(pattern):
    """(line, indent, text) of every full-line comment that matches pattern."""
    found = []
    for i, line in enumerate(LINES, 1):
        match = re.match(pattern, line)
        if match:
            found.append((i, len(match.group(1)), match.group(2).strip()))
    return found


BANNERS = _comments(r"^(\s*)# ---- (.*?)\s*-*$")
MEMBER_COMMENTS = _comments(r"^( {4})# (?:---- )?(.*?)\s*-*$")  # the comments of class bodies


def _banner_family(line, indent, floor=0):
    """The family of the nearest banner above `line` (same indent and section, below floor)
    that names one, walking up past banners that name none."""
    for at, depth, text in reversed(BANNERS):
        if at >= line or depth != indent:
            continue
        if at <= floor or _section(at) != _section(line):
            return None
        family = _comment_family(text)
        if family:
            return family
    return None


def _top_level(name):
    """The module-level ast statement that defines `name`."""
    for node in TREE.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            return node
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return node
    return None


def _home_family(fn):
    """The family given by the banner above fn's definition (a Tensor method's banner within
    the class, a function's among the module-level banners)."""
    try:
        line = inspect.getsourcelines(fn)[1]
    except (OSError, TypeError):
        return None
    for node in TREE.body:
        if node.lineno <= line <= node.end_lineno:
            if isinstance(node, ast.ClassDef):
                return _banner_family(line, 4, floor=node.lineno)
            return _banner_family(node.lineno, 0)
    return None


def _device_family(kernel):
    """The family given by the comment above a kernel's definition in the Device class."""
    device = _top_level("Device")
    method = next((n for n in device.body if isinstance(n, ast.FunctionDef)
                   and n.name == kernel), None)
    if method is None:
        return None
    for at, _, text in reversed(MEMBER_COMMENTS):
        if device.lineno < at < method.lineno:
            family = _comment_family(text)
            if family:
                return family
    return None


def _functions_in(table):
    """The functions anywhere in a table (nested lists, tuples and dicts)."""
    if inspect.isfunction(table):
        return [table]
    if isinstance(table, dict):
        table = list(table.values())
    if isinstance(table, (list, tuple)):
        return [fn for item in table for fn in _functions_in(item)]
    return []


def _activation_functions():
    """The nn.functional functions that nn's activation table and the modules below the
    "activations" banner of section 5 use."""
    names = set()
    names.update(fn.__name__ for fn in _functions_in(sg._ACTIVATIONS))
    start, end = _section_range(5)
    banners = [at for at, depth, _ in BANNERS if depth == 0 and start <= at < end]
    for at, depth, text in BANNERS:
        if depth == 0 and start <= at < end and _comment_family(text) == FAMILIES[1]:
            stop = min([b for b in banners if b > at] + [end])
            for node in TREE.body:
                if at < node.lineno < stop:
                    names.update(getattr(n, "id", getattr(n, "attr", None))
                                 for n in ast.walk(node))
    return {name for name in names if inspect.isfunction(vars(F).get(name))}


# ---- the public ops ------------------------------------------------------------------------

class Row:
    """One public op: its name, its aliases and its forms (namespace, name, function)."""

    def __init__(self, name):
        self.name, self.aliases, self.forms = name, [], []
        self.family = self.run = self.gradient = None
        self.numpy = []

    def functions(self, namespace=None):
        """The functions of its forms, or of those in one namespace ("x", "sg", "F", "linalg")."""
        return [fn for ns, _, fn in self.forms if namespace in (None, ns)]


def _public_functions(namespace):
    """name -> function for the public functions simplegrad defines in a namespace."""
    return {name: fn for name, fn in vars(namespace).items()
            if not name.startswith("_") and inspect.isfunction(fn)
            and fn.__module__ == sg.__name__}


def _canonical(names_by_fn):
    """name -> the name of its row: of names sharing a function, the function's own name."""
    out = {}
    for fn, names in names_by_fn.items():
        main = fn.__name__ if fn.__name__ in names else sorted(names)[0]
        out.update((name, main) for name in names)
    return out


def public_ops():
    """name -> Row for every public op: Tensor methods, module-level functions,
    simplegrad.nn.functional and simplegrad.linalg, aliases folded into their op's row."""
    methods = {name: value for name in dir(sg.Tensor) if not name.startswith("_")
               for value in [inspect.getattr_static(sg.Tensor, name)]
               if inspect.isfunction(value)}
    by_fn = collections.defaultdict(list)
    for name, fn in methods.items():
        by_fn[fn].append(name)
    method_rows = _canonical(by_fn)
    elsewhere = {id(fn) for module in (sg.nn.init, sg.optim, sg.nn.parallel)
                 for fn in vars(module).values()}
    others = [(ns, name, fn) for ns, module in (("sg", sg), ("F", F), ("linalg", sg.linalg))
              for name, fn in _public_functions(module).items() if id(fn) not in elsewhere]
    by_fn = collections.defaultdict(list)
    for _, name, fn in others:
        if name not in method_rows and name not in by_fn[fn]:
            by_fn[fn].append(name)
    function_rows = _canonical(by_fn)
    rows = {}
    forms = [("x", name, fn) for name, fn in methods.items()] + others
    for ns, name, fn in forms:
        row_name = method_rows.get(name) or function_rows.get(name, name)
        if name in NOT_OPS or row_name in NOT_OPS:
            continue
        row = rows.setdefault(row_name, Row(row_name))
        row.forms.append((ns, name, fn))
        if name != row_name and name not in row.aliases:
            row.aliases.append(name)
    for row in rows.values():
        row.aliases.sort()
    return rows


def sample_coverage(rows=None):
    """(public ops without a sample, samples that name no public op)."""
    rows = public_ops() if rows is None else rows
    return sorted(set(rows) - set(SAMPLES)), sorted(set(SAMPLES) - set(rows))


# ---- running a sample under the profiler ---------------------------------------------------

class Run:
    """What one sample did: recorded ops, graph, kernels, and what went wrong."""

    def __init__(self):
        self.error = self.backward_error = self.output_op = None
        self.recorded, self.rules, self.graph = [], [], {}
        self.kernels = {"forward": [], "backward": []}
        self.op_kernels = {}  # (phase, op) -> kernels
        self.differentiable = False  # some float output requires grad
        self.integral = False        # every output is an integer or bool tensor


def _tensors(out):
    """The tensors in an op's result (a tensor, or tuples and lists of them)."""
    if isinstance(out, sg.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in _tensors(item)]
    return []


def _graph(outs):
    """Op name -> backward rule, for every node behind outs (read before backward frees it)."""
    found, stack, seen = {}, list(outs), set()
    while stack:
        t = stack.pop()
        node = t._node
        if node is None or id(t) in seen:
            continue
        seen.add(id(t))
        found.setdefault(node.name, node.backward)
        stack.extend(node.inputs)
    return found


def _add_unique(items, new):
    """Append the items of new that items lacks, in order."""
    items.extend(item for item in new if item not in items)


def run_sample(sample):
    """Run a sample once, forward and backward, under simplegrad.profile()."""
    result = Run()
    x = sg.Tensor(X_VALUES.copy(), requires_grad=True, device=_NUMPY)
    grads_rng = np.random.default_rng(1)
    with sg.profile() as prof:
        try:
            out = sample(x)
        except Exception as e:
            result.error = f"{type(e).__name__}: {e}"
            return result
        tensors = _tensors(out)
        outs = [t for t in tensors if t.requires_grad]
        result.integral = bool(tensors) and all(t.dtype.kind in "biu" for t in tensors)
        result.differentiable = bool(outs)
        result.output_op = tensors[0].grad_fn if tensors else None
        result.graph = _graph(outs)
        if outs:
            seeds = [sg.Tensor(grads_rng.standard_normal(t.shape).astype(t.dtype),
                               device=_NUMPY) for t in outs]
            try:
                sg.grad(outs, [x] + LEAVES, seeds, allow_unused=True)
            except Exception as e:
                result.backward_error = str(e)
    for (phase, op), stats in prof.ops.items():
        kernels = list(stats.kernel_calls)
        result.op_kernels[phase, op] = kernels
        if op != "(other)" or phase == "forward":  # backward's: making the seed gradients
            _add_unique(result.kernels[phase], kernels)
        if op != "(other)":
            (result.recorded if phase == "forward" else result.rules).append(op)
    return result


def run_all(rows):
    """Run every row's sample on the NumPy device, with seeded random ops."""
    default = sg.Tensor.device
    sg.Tensor.device = _NUMPY
    sg.manual_seed(0)
    try:
        for name, row in rows.items():
            if name in SAMPLES:
                row.run = run_sample(SAMPLES[name])
    finally:
        sg.Tensor.device = default


# ---- gradient rules and comments ----------------------------------------------------------

_PROVENANCE = re.compile(r" \((?:as |torch's |PyTorch's )[^()]*\)")
_PROSE = re.compile(r" \([A-Za-z][\w' ,-]*\)")  # a remark in words: (repeats add up)


def _first_sentence(text):
    """text up to its first "; " or ". " outside brackets."""
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch in "([") - (ch in ")]")
        if depth == 0 and (text.startswith("; ", i) or re.match(r"\. [A-Z(]", text[i:i + 3])):
            return text[:i]
    return text.rstrip(".")


def _one_line(text, limit=150):
    """A comment as one line: its first sentence, shortened to `limit` by dropping remarks
    in brackets that are words only, and then by cutting at a comma."""
    text = _first_sentence(" ".join(text.split()))
    for pattern in (_PROVENANCE, _PROSE):
        if len(text) > limit:
            text = pattern.sub(lambda m: "" if len(m.group(0).split()) > 2 else m.group(0),
                               text)
    if len(text) > limit:
        cut = max(text.rfind(", ", 0, limit), text.rfind(": ", 0, limit))
        text = text[:cut if cut > 0 else limit] + " …"
    return text


def _comment_block(end):
    """The full-line comments directly above (1-based) line `end`, as one text."""
    lines, i = [], end - 2
    while i >= 0 and LINES[i].strip().startswith("#"):
        lines.insert(0, LINES[i].strip().lstrip("#").strip())
        i -= 1
    return " ".join(lines)


def _source_of(node):
    """The source text of an ast node (ast.get_source_segment, without re-reading the file)."""
    lines = [line.encode() for line in LINES[node.lineno - 1:node.end_lineno]]
    lines[-1] = lines[-1][:node.end_col_offset]
    lines[0] = lines[0][node.col_offset:]
    return b"\n".join(lines).decode()


LAMBDAS = collections.defaultdict(list)  # line -> the lambdas that start on it
for _node in ast.walk(TREE):
    if isinstance(_node, ast.Lambda):
        LAMBDAS[_node.lineno].append(_node)


def _lambda_body(fn):
    """The source of a lambda's body: `g * x.cos()` for lambda g, x, out: g * x.cos()."""
    lambdas = LAMBDAS.get(fn.__code__.co_firstlineno, [])
    return _source_of(lambdas[0].body) if len(lambdas) == 1 else None


def _zero(expression):
    """Whether a rule's expression only makes zeros: it calls _zero_grad (and tuple) only."""
    called = {getattr(n.func, "id", None) for n in ast.walk(ast.parse(expression))
              if isinstance(n, ast.Call)}
    return "_zero_grad" in called and called <= {"_zero_grad", "tuple"}


def _single_return(fdef):
    """The expression a function returns when its body is one return (1-tuples unwrapped)."""
    body = [s for s in fdef.body if not (isinstance(s, ast.Expr)
                                         and isinstance(s.value, ast.Constant))]
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        return None
    value = body[0].value
    if isinstance(value, ast.Tuple) and len(value.elts) == 1:
        value = value.elts[0]
    return _source_of(value)


def _block_rule(fdef):
    """The gradient of an op block: the comment above or inside its backward, else what the
    backward returns, else the block's docstring."""
    backward = next((n for n in ast.walk(fdef) if isinstance(n, ast.FunctionDef)
                     and n is not fdef and n.name == "backward"), None)
    if backward is not None:
        above = _comment_block(backward.lineno)
        if above:
            return _one_line(above)
        inside = []
        for i in range(backward.lineno, backward.end_lineno):
            text = LINES[i].strip()
            if text.startswith("#") and re.match(r"#\s*d[(/ ]", text):
                inside.append(_one_line(text.lstrip("#")))
        if inside:
            return "; ".join(inside)
        expression = _single_return(backward)
        if expression:
            return "0" if _zero(expression) else f"`{expression}`"
    doc = ast.get_docstring(fdef)
    return _one_line(doc) if doc else None


@functools.lru_cache(maxsize=None)
def _op_blocks():
    """Recorded op name (or a pattern, for f-string names) -> the section 3 function that
    records it, and the names of section 3's tables."""
    start, end = _section_range(3)
    blocks, patterns = {}, {}
    for node in TREE.body:
        if not (isinstance(node, ast.FunctionDef) and start <= node.lineno < end):
            continue
        for call in ast.walk(node):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                    and call.func.id in ("_record", "_record_tuple") and call.args):
                continue
            first = call.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                blocks.setdefault(first.value, node)
            elif isinstance(first, ast.JoinedStr):
                parts = [re.escape(p.value) if isinstance(p, ast.Constant) else r"\w+"
                         for p in first.values]
                patterns["".join(parts)] = (node, _source_of(first)[2:-1])
    tables = {}
    for table in TABLES:
        for row in getattr(sg, table, ()):
            tables[row[0]] = table
    return blocks, patterns, tables


class Recorded:
    """One recorded op name: its rule or comment, kernels, and the code that records it."""

    def __init__(self, name, code, rule):
        self.name, self.code, self.rule = name, code, rule
        self.kernels = None  # (forward, backward) from the cleanest sample that records it


def _table_rule(backward):
    """A table op's rule from the lambdas its node's backward closes over."""
    lambdas = [c.cell_contents for c in backward.__closure__ or ()
               if inspect.isfunction(c.cell_contents) and c.cell_contents.__name__ == "<lambda>"]
    bodies = [_lambda_body(fn) for fn in sorted(lambdas, key=lambda f: f.__code__.co_firstlineno)]
    if not bodies or None in bodies:
        return None
    shown = ["0" if _zero(body) else f"`{body}`" for body in bodies]
    if len(shown) == 1 or set(shown) == {"0"}:
        return shown[0]
    return ", ".join(f"g{arg} {rule}" for arg, rule in zip("xy", shown, strict=False))


def _enclosing_function(fn):
    """The module-level function whose source holds fn's code (a rule's op block)."""
    line = fn.__code__.co_firstlineno
    for node in TREE.body:
        if isinstance(node, ast.FunctionDef) and node.lineno <= line <= node.end_lineno:
            return node
    return None


def recorded_ops(rows):
    """name -> Recorded for every op name section 3 records and every one a sample recorded."""
    blocks, patterns, tables = _op_blocks()
    blocks = dict(blocks)
    seen = {}  # op name -> the rows whose sample's graph holds it
    for row in sorted(rows.values(), key=lambda r: r.name):
        if row.run is not None:
            for op in row.run.graph:
                seen.setdefault(op, []).append(row)
    for pattern, (node, shown) in patterns.items():
        for name in [n for n in seen if re.fullmatch(pattern, n)] or [shown]:
            blocks.setdefault(name, node)
    out = {}
    for name in sorted(set(blocks) | set(tables) | set(seen)):
        runs = seen.get(name, [])
        backward = runs[0].run.graph[name] if runs else None
        block, rule = blocks.get(name), None
        if name in tables:
            code = tables[name]
            rule = _table_rule(backward) if backward else None
        elif block is not None:
            code, rule = block.name, _block_rule(block)
        else:
            fdef = _enclosing_function(backward) if backward else None
            code = fdef.name if fdef else "?"
            rule = _block_rule(fdef) if fdef else None
        single = [r for r in runs if list(r.run.graph) == [name]]
        for r in single:
            if r.run.backward_error:
                rule = "none: " + _one_line(r.run.backward_error.split(":")[0])
        recorded = out[name] = Recorded(name, code, rule or f"see `{code}`")
        best = ([r for r in single if r.name == name] or single or runs)[:1]
        if best:
            kernels = best[0].run.op_kernels
            recorded.kernels = (kernels.get(("forward", name), []),
                                kernels.get(("backward", name)))
    return out


# ---- NumPy entries: which op each entry of the protocol tables reaches first ---------------

_MISSING = object()


def _callables(rows):
    """code object -> [(function, label)]: every form of every row (labelled with the row)
    and Tensor's dunders (labelled with their own name)."""
    index = collections.defaultdict(list)
    for row in rows.values():
        for fn in row.functions():
            if (fn, row.name) not in index[fn.__code__]:
                index[fn.__code__].append((fn, row.name))
    for name, fn in vars(sg.Tensor).items():
        if name.startswith("__") and inspect.isfunction(fn):
            index[fn.__code__].append((fn, name))
    return index


def _identify(frame, index):
    """The label of the indexed function a frame runs, told apart by closure when functions
    share their code (the table ops, the generated module-level functions)."""
    for fn, label in index.get(frame.f_code, ()):
        free = fn.__code__.co_freevars
        cells = fn.__closure__ or ()
        if all(frame.f_locals.get(n, _MISSING) is c.cell_contents
               for n, c in zip(free, cells, strict=True)):
            return label
    return None


def _positional(frame):
    """The values of a frame's positional parameters."""
    code = frame.f_code
    return [frame.f_locals.get(n) for n in code.co_varnames[:code.co_argcount]]


def _trace(index, call, *args):
    """(label, parent label, same arguments as the parent) for every indexed function that
    call(*args) reaches, in the order they start; an exception ends the trace."""
    events = []

    def hook(frame, event, arg):
        if event != "call":
            return
        label = _identify(frame, index)
        if label is not None:
            parent = frame.f_back
            mine, theirs = _positional(frame), parent and _positional(parent)
            same = bool(theirs) and len(mine) == len(theirs) and all(
                a is b for a, b in zip(mine, theirs, strict=True))
            events.append((label, parent and _identify(parent, index), same))

    previous = sys.getprofile()
    sys.setprofile(hook)
    try:
        call(*args)
    except Exception:
        pass
    finally:
        sys.setprofile(previous if callable(previous) else None)
    return events


def _probe_inputs():
    """Three fresh float64 leaves of shape (4, 4) to call NumPy entries and methods with."""
    return [sg.Tensor(np.full((4, 4), 0.5), requires_grad=True, device=_NUMPY)
            for _ in range(3)]


def _dunder_rows(rows, index):
    """Tensor dunder -> the op whose method is exactly that operator (__eq__ -> eq): the
    method calls the dunder with its own arguments."""
    found = {}
    for row in sorted(rows.values(), key=lambda r: r.name):
        for method in row.functions("x"):
            params = [p for p in list(inspect.signature(method).parameters.values())[1:]
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            if len(params) > 1 or any(p.default is not p.empty for p in params):
                continue
            a, b, _ = _probe_inputs()
            args = (a, b)[:len(params) + 1]
            for label, parent, same in _trace(index, method, *args):
                if label.startswith("__") and parent == row.name and same:
                    found.setdefault(label, row.name)
                    break
    return found


def _dispatch_row(impl, rows, index, dunders):
    """The op a NumPy protocol entry reaches first, or None."""
    for row in rows.values():
        if any(fn is impl for fn in row.functions()):
            return row.name
    try:
        params = list(inspect.signature(impl).parameters.values())
    except (TypeError, ValueError):
        return None
    required = [p for p in params if p.default is p.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
    count = max(len(required), 1) + (2 if varargs else 0)
    for rest in ("tensors", "ints"):
        inputs = _probe_inputs() * (1 + count // 3)
        args = inputs[:count] if rest == "tensors" else [inputs[0]] + [2] * (count - 1)
        for label, _, _ in _trace(index, impl, *args):
            row = dunders.get(label) if label.startswith("__") else label
            if row is not None:
                return row
    return None


def numpy_entries(rows):
    """Attach to each row the NumPy names that dispatch to it; return those reaching none."""
    index = _callables(rows)
    dunders = _dunder_rows(rows, index)
    unresolved = []
    for table in (getattr(sg, "_UFUNCS", {}), getattr(sg, "_FUNCTIONS", {})):
        for np_fn, impl in dict(table).items():
            module = getattr(np_fn, "__module__", None) or "numpy"
            name = module.replace("numpy", "np", 1) + "." + getattr(np_fn, "__name__", str(np_fn))
            row = _dispatch_row(impl, rows, index, dunders)
            if row is None:
                unresolved.append(name)
            elif name not in rows[row].numpy:
                rows[row].numpy.append(name)
    for row in rows.values():
        row.numpy.sort()
    return sorted(set(unresolved)), index


# ---- families and gradients ----------------------------------------------------------------

def _families(rows, recorded, index):
    """Give every row a family; return the names of the rows none was found for."""
    activations = _activation_functions()
    blocks, _, tables = _op_blocks()

    def op_family(op):
        if op in tables:
            return _banner_family(_top_level(tables[op]).lineno, 0)
        code = recorded[op].code if op in recorded else None
        node = _top_level(code) if code else None
        return _banner_family(node.lineno, 0) if node is not None else None

    def direct(row):
        if any(fn.__name__ in activations for fn in row.functions("F")):
            return FAMILIES[1]
        if row.functions("linalg"):
            return FAMILIES[6]
        if not row.functions("x") and all(fn in row.functions("F") for fn in row.functions()):
            return FAMILIES[8]
        if row.run and any(op_family(op) == FAMILIES[6] for op in row.run.graph):
            return FAMILIES[6]
        for method in row.functions("x"):
            if method.__name__ in tables:
                return op_family(method.__name__)
        for fn in row.functions("x") + row.functions("sg"):
            family = _home_family(fn)
            if family:
                return family
        return None

    unknown = []
    for row in rows.values():
        row.family = direct(row)
    for row in rows.values():
        if row.family is not None:
            continue
        if row.name in SAMPLES:  # the family of the first other op that it calls
            for label, _, _ in _trace(index, run_sample, SAMPLES[row.name]):
                other = rows.get(label)
                if other is not None and other is not row and other.family:
                    row.family = other.family
                    break
        if row.family is None and row.run and row.run.output_op:
            row.family = op_family(row.run.output_op)
        if row.family is None and row.run and row.run.kernels["forward"]:
            row.family = _device_family(row.run.kernels["forward"][0])
        if row.family is None:
            row.family = "other"
            unknown.append(row.name)
    return unknown


def _gradient(row, recorded):
    """The gradient column of a row."""
    run = row.run
    if run is None:
        return "—"
    if run.error:
        return f"sample failed: {run.error}"
    if not run.differentiable:
        if row.family == FAMILIES[7]:
            return "— (a new leaf)"
        return "none (integer or bool result)" if run.integral else "none (detached result)"
    if run.backward_error:
        return "none: " + _one_line(run.backward_error.split(":")[0])
    via = [op for op in run.recorded if op in run.rules]
    if not via:
        return "`g` (returns its input)"
    names = [row.name] + row.aliases
    if len(via) == 1 and via[0] in recorded and any(
            via[0] == name or via[0].endswith("_" + name) for name in names):
        return recorded[via[0]].rule  # the op is its own node (linalg_det for det)
    return "via " + ", ".join(via)


# ---- the Markdown --------------------------------------------------------------------------

def _cell(text):
    """Text for a Markdown table cell."""
    return text.replace("|", "\\|")


def _code_list(names):
    """Names as a comma-separated list of code spans."""
    return ", ".join(f"`{n}`" for n in names)


def _kernels(forward, backward):
    """Forward kernels, then (when a backward rule ran: backward is not None) backward's."""
    parts = [_code_list(forward) or "—"]
    if backward is not None:
        parts.append("bwd " + (_code_list(backward) or "—"))
    return "; ".join(parts)


def _forms(row):
    """The forms of a row's name, then those of each alias that has other forms."""
    def of(name):
        return " ".join(FORMS[ns] for ns in FORMS
                        if any(n == name and space == ns for space, n, _ in row.forms))
    return "".join([of(row.name)] + [f"; {alias}: {of(alias)}" for alias in row.aliases
                                     if of(alias) != of(row.name)])


HEADER = f"""\
# Ops

Every public op of simplegrad, generated from the code by `{COMMAND}`: do not edit
this file by hand, and run `{COMMAND} --check` to see whether it is up to date. The
script runs each op once on small inputs under `simplegrad.profile()` on the NumPy device,
forward and then backward with a random upstream gradient, and reads the rules and comments
from simplegrad.py.

How to read the main tables (one per family, as the banners of simplegrad.py give them):

- **op**: the op's name, its aliases in parentheses.
- **forms**: a Tensor method `x.f()`, a function `sg.f` (`import simplegrad as sg`), `F.f`
  (`simplegrad.nn.functional`), `sg.linalg.f`; an alias with other forms follows a semicolon.
- **gradient**: for an op that is one recorded node, that node's rule: its lambda in
  `_UNARY`, `_STEPS` or `_BINARY` (in terms of the upstream gradient `g`, the inputs `x`, `y`
  and the result `out`), or the maths comment of its op block; `0` for a piecewise-constant
  op. For an op made of others, "via" the recorded ops its backward runs, in the order the
  forward records them; each has a row in the [last table](#recorded-ops).
- **NumPy**: the NumPy functions and ufuncs that reach the op when called on a tensor
  (through `__array_ufunc__` and `__array_function__`).
- **kernels**: the `Device` methods the op calls in forward, and after "bwd" in backward.
"""


def _heading(family):
    """A family's section title."""
    return family if family.startswith("nn.") else family[0].upper() + family[1:]


def render(rows, recorded, unresolved):
    """docs/ops.md as text."""
    lines = [HEADER, f"{len(rows)} ops, {len(recorded)} recorded ops.\n"]
    for family in FAMILIES + ["other"]:
        members = sorted((r for r in rows.values() if r.family == family), key=lambda r: r.name)
        if not members:
            continue
        lines.append(f"## {_heading(family)}\n")
        lines.append("| op | forms | gradient | NumPy | kernels |")
        lines.append("|---|---|---|---|---|")
        for row in members:
            name = f"`{row.name}`" + (f" ({_code_list(row.aliases)})" if row.aliases else "")
            run = row.run
            kernels = "—" if run is None or run.error else _kernels(
                run.kernels["forward"], run.kernels["backward"] if run.rules else None)
            cells = [name, _forms(row), row.gradient, _code_list(row.numpy) or "—", kernels]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    lines.append("## Recorded ops\n")
    lines.append("The names the ops record (a tensor's `grad_fn`, the ops of\n"
                 "`simplegrad.profile()`), each with its gradient rule and the block of\n"
                 "simplegrad.py that defines it; the kernels are those of one sample that\n"
                 "records it.\n")
    lines.append("| recorded op | gradient | code | kernels |")
    lines.append("|---|---|---|---|")
    for op in recorded.values():
        kernels = _kernels(*op.kernels) if op.kernels else "— (no sample records it)"
        cells = [f"`{op.name}`", op.rule, f"`{op.code}`", kernels]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if unresolved:
        lines.append("")
        lines.append("NumPy protocol entries that reach no op: " + _code_list(unresolved) + ".")
    return "\n".join(lines) + "\n"


def build():
    """(the text of docs/ops.md, problems that make the script fail, warnings)."""
    rows = public_ops()
    missing, extra = sample_coverage(rows)
    problems = []
    if missing:
        problems.append("public ops without a sample in SAMPLES: " + ", ".join(missing))
    if extra:
        problems.append("samples for names that are no public op: " + ", ".join(extra))
    with np.errstate(all="ignore"):
        run_all(rows)
        recorded = recorded_ops(rows)
        unresolved, index = numpy_entries(rows)
        unknown = _families(rows, recorded, index)
    problems += [f"the sample of {name} failed: {row.run.error}"
                 for name, row in sorted(rows.items()) if row.run and row.run.error]
    for row in rows.values():
        row.gradient = _gradient(row, recorded)
    warnings = [f"the backward of {name} raised: {row.run.backward_error}"
                for name, row in sorted(rows.items()) if row.run and row.run.backward_error]
    if unknown:
        warnings.append("ops in no family: " + ", ".join(sorted(unknown)))
    if unresolved:
        warnings.append("NumPy entries that reach no op: " + ", ".join(unresolved))
    return render(rows, recorded, unresolved), problems, warnings


def check(text):
    """The unified diff of docs/ops.md against text (empty when they agree)."""
    old = OUTPUT.read_text() if OUTPUT.exists() else ""
    return "".join(difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                        "docs/ops.md", "docs/ops.md (from the code)"))


def main(argv=None):
    """Write docs/ops.md, or with --check compare it with the code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1, printing a unified diff, when docs/ops.md is out of date")
    args = parser.parse_args(argv)
    text, problems, warnings = build()
    for warning in warnings:
        print(f"make_ops: warning: {warning}", file=sys.stderr)
    if problems:
        for problem in problems:
            print(f"make_ops: {problem}", file=sys.stderr)
        return 1
    if args.check:
        diff = check(text)
        if diff:
            sys.stdout.write(diff)
            print(f"docs/ops.md is out of date: run {COMMAND}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
