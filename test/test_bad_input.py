"""Bad arguments, in one table: each call raises PyTorch's error type (checked against torch's
own call wherever torch has one and raises from it a clear error), with a message that names
the op and the offending value, and leaves every tensor, module and optimizer it was given
exactly as it was: values, dtypes, shapes, gradients, flags and the arrays themselves."""

import operator

import numpy as np
import pytest
from helpers import torch

import simplegrad as sg
from simplegrad import nn, optim

F = nn.functional


# ---- what a bad call must leave alone ----------------------------------------------------------

def _tensor_state(t):
    """Everything about a tensor that a call could change (the version counter where tensors
    have one)."""
    grad = None if t.grad is None else _tensor_state(t.grad)
    return (t.shape, t.dtype, t.numpy().tobytes(), t.requires_grad, t.is_leaf, grad,
            id(t.data), getattr(t, "_version", None))


def snapshot(obj):
    """The state of a tensor, a module (every parameter and buffer, the training flags) or an
    optimizer (its groups' options, its parameters and its per-parameter state)."""
    if isinstance(obj, sg.Tensor):
        return _tensor_state(obj)
    if isinstance(obj, nn.Module):
        entries = obj.state_dict(keep_vars=True).items()
        return ([(name, id(t), _tensor_state(t)) for name, t in entries],
                [m.training for m in obj.modules()])
    if isinstance(obj, optim.Optimizer):
        groups = [({k: v for k, v in g.items() if k != "params"},
                   [(id(p), _tensor_state(p)) for p in g["params"]]) for g in obj.param_groups]
        state = [(id(p), {k: snapshot(v) if isinstance(v, sg.Tensor) else v
                          for k, v in s.items()}) for p, s in obj.state.items()]
        return groups, state
    if isinstance(obj, sg.TensorDataset):
        return [snapshot(t) for t in obj.tensors]
    raise TypeError(f"no snapshot for {type(obj).__name__}")


# ---- the objects the calls are given -----------------------------------------------------------

def leaf():
    """A float64 leaf of shape (2, 3) that requires grad and already has a gradient."""
    t = sg.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    (t * t).sum().backward()
    return t


def leaf_2x3():
    return {"t": leaf()}


def ints_2x3():
    return {"t": sg.tensor([[1, 2, 3], [4, 5, 6]])}


def leaf_6():
    return {"t": sg.Tensor(np.arange(6.0), requires_grad=True)}


def module(factory):
    def make():
        sg.manual_seed(0)
        return {"m": factory()}
    return make


def adam():
    """Adam over two parameters, after two steps (so that it has state to lose)."""
    a = sg.Tensor(np.arange(6.0).reshape(2, 3))
    b = sg.Tensor(np.array([1.0, -2.0]))
    opt = optim.Adam([a, b], lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        ((a * a).sum() + (b * b * b).sum()).backward()
        opt.step()
    return {"opt": opt}


def adam_saved(change):
    """adam(), and its state_dict() after change(saved) has spoilt it."""
    def make():
        objects = adam()
        saved = objects["opt"].state_dict()
        change(saved)
        return dict(objects, saved=saved)
    return make


def linear_saved(change):
    """A Sequential of two Linears, and a state dict of another one (every value differs) whose
    entries change(saved) spoils."""
    def make():
        sg.manual_seed(0)
        m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
        saved = {k: v.numpy() + 1 for k, v in m.state_dict().items()}
        change(saved)
        return {"m": m, "saved": saved}
    return make


def setitem(key, value):
    def change(saved):
        saved[key] = value
    return change


def set_state(index, key, value):
    def change(saved):
        saved["state"][index][key] = value
    return change


def tt():
    return torch.ones(2, 3, dtype=torch.float64)


def torch_linear_saved(value):
    """torch's load_state_dict given value as a Linear's bias."""
    layer = torch.nn.Linear(3, 4)
    return layer.load_state_dict({"weight": torch.ones(4, 3), "bias": value})


# ---- the table ---------------------------------------------------------------------------------
# (id, objects, the bad call on them, error, message pattern, torch's call raising that error or
# None where torch has no such call, accepts it, or raises another type from an accident such as
# an AttributeError)

CASES = [
    # a non-numeric value where a tensor or number is expected
    ("Tensor-str", dict, lambda: sg.Tensor("abc"), TypeError, r"Tensor: .*str 'abc'",
     lambda: torch.tensor("abc")),
    ("tensor-None-in-list", dict, lambda: sg.tensor([1.0, None]), TypeError,
     r"Tensor: .*\[1\.0, None\]", None),  # torch: RuntimeError (cannot infer a dtype)
    ("tensor-str-array", dict, lambda: sg.tensor(np.array(["a", "b"])), TypeError,
     r"Tensor: .*ndarray array\(\['a', 'b'\]", lambda: torch.tensor(np.array(["a", "b"]))),
    ("tensor-object", dict, lambda: sg.tensor(object()), TypeError, r"Tensor: .*object <object",
     None),  # torch: RuntimeError (cannot infer a dtype)
    ("iadd-None", leaf_2x3, lambda t: operator.iadd(t, None), TypeError, r"add: .*None",
     lambda: operator.iadd(tt(), None)),
    ("isub-list-with-None", leaf_2x3, lambda t: operator.isub(t, [1, None, 2]), TypeError,
     r"sub: .*\[1, None, 2\]", lambda: operator.isub(tt(), [1, None, 2])),
    ("and-None", ints_2x3, lambda t: t & None, TypeError, r"bitwise_and: .*None",
     lambda: torch.ones(2, dtype=torch.int64) & None),
    ("xor-str", ints_2x3, lambda t: t ^ "x", TypeError, r"bitwise_xor: .*'x'",
     lambda: torch.ones(2, dtype=torch.int64) ^ "x"),
    ("eq-method-None", leaf_2x3, lambda t: t.eq(None), TypeError, r"eq: .*None",
     lambda: tt().eq(None)),
    ("ne-method-str", leaf_2x3, lambda t: t.ne("x"), TypeError, r"ne: .*'x'", lambda: tt().ne("x")),
    ("add-fn-None", leaf_2x3, lambda t: sg.add(t, None), TypeError, r"add: .*None",
     lambda: torch.add(tt(), None)),
    ("mul-fn-str", leaf_2x3, lambda t: sg.mul(t, "x"), TypeError, r"mul: .*'x'",
     lambda: torch.mul(tt(), "x")),
    ("maximum-None", leaf_2x3, lambda t: sg.maximum(t, None), TypeError, r"maximum: .*None",
     lambda: torch.maximum(tt(), None)),
    ("minimum-None-first", leaf_2x3, lambda t: sg.minimum(None, t), TypeError, r"minimum: .*None",
     lambda: torch.minimum(None, tt())),
    ("where-None-other", leaf_2x3, lambda t: sg.where(t > 0, t, None), TypeError, r"where: .*None",
     lambda: torch.where(tt() > 0, tt(), None)),
    ("where-None-condition", leaf_2x3, lambda t: sg.where(None, t, t), TypeError, r"where: .*None",
     lambda: torch.where(None, tt(), tt())),
    ("sin-None", dict, lambda: sg.sin(None), TypeError, r"sin: .*None", lambda: torch.sin(None)),
    ("sin-str", dict, lambda: sg.sin("x"), TypeError, r"sin: .*'x'", lambda: torch.sin("x")),
    ("atan2-None", leaf_2x3, lambda t: sg.atan2(t, None), TypeError, r"atan2: .*None",
     lambda: torch.atan2(tt(), None)),
    ("pow-fn-None-base", leaf_2x3, lambda t: sg.pow(None, t), TypeError, r"pow: .*None",
     lambda: torch.pow(None, tt())),
    ("lerp-None-weight", leaf_2x3, lambda t: sg.lerp(t, t, None), TypeError, r"lerp: .*None",
     lambda: torch.lerp(tt(), tt(), None)),
    ("clamp-str", leaf_2x3, lambda t: t.clamp(min="x"), TypeError, r"clamp: min .*'x'",
     lambda: tt().clamp(min="x")),
    ("masked_fill-None", leaf_2x3, lambda t: t.masked_fill(t > 2, None), TypeError,
     r"masked_fill: .*None", lambda: tt().masked_fill(tt() > 2, None)),
    ("full-None", dict, lambda: sg.full((2,), None), TypeError, r"full: .*None",
     lambda: torch.full((2,), None)),
    ("full-str", dict, lambda: sg.full((2,), "x"), TypeError, r"full: .*'x'",
     lambda: torch.full((2,), "x")),
    ("arange-None", dict, lambda: sg.arange(None), TypeError, r"arange: end .*None",
     lambda: torch.arange(None)),
    ("arange-step-0", dict, lambda: sg.arange(0, 5, 0), RuntimeError, r"arange: step",
     lambda: torch.arange(0, 5, 0)),
    ("dropout-p-str", leaf_2x3, lambda t: F.dropout(t, "x"), TypeError, r"dropout: p .*'x'",
     lambda: torch.nn.functional.dropout(tt(), "x")),
    ("Dropout-p-str", dict, lambda: nn.Dropout("x"), TypeError, r"Dropout: p .*'x'",
     lambda: torch.nn.Dropout("x")),
    ("leaky_relu-str", leaf_2x3, lambda t: F.leaky_relu(t, "x"), TypeError,
     r"leaky_relu: negative_slope .*'x'", lambda: torch.nn.functional.leaky_relu(tt(), "x")),
    ("elu-None", leaf_2x3, lambda t: F.elu(t, None), TypeError, r"elu: alpha .*None",
     lambda: torch.nn.functional.elu(tt(), None)),
    ("hardtanh-str", leaf_2x3, lambda t: F.hardtanh(t, "a", 1.0), TypeError,
     r"hardtanh: min_val .*'a'", lambda: torch.nn.functional.hardtanh(tt(), "a", 1.0)),
    ("label_smoothing-str", leaf_2x3, lambda t: F.cross_entropy(t, sg.tensor([0, 1]),
                                                         label_smoothing="x"),
     TypeError, r"cross_entropy: label_smoothing .*'x'",
     lambda: torch.nn.functional.cross_entropy(tt(), torch.tensor([0, 1]), label_smoothing="x")),
    ("init.constant_-None", leaf_2x3, lambda t: nn.init.constant_(t, None), TypeError,
     r"constant_: val .*None", lambda: torch.nn.init.constant_(tt(), None)),
    ("init.uniform_-str", leaf_2x3, lambda t: nn.init.uniform_(t, "a"), TypeError,
     r"uniform_: a .*'a'", lambda: torch.nn.init.uniform_(tt(), "a")),
    ("init.normal_-None", leaf_2x3, lambda t: nn.init.normal_(t, None), TypeError,
     r"normal_: mean .*None", lambda: torch.nn.init.normal_(tt(), None)),
    ("SGD-lr-str", leaf_2x3, lambda t: optim.SGD([t], lr="x"), TypeError, r"SGD: lr .*'x'",
     lambda: torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr="x")),
    ("Adam-beta-str", leaf_2x3, lambda t: optim.Adam([t], betas=("a", 0.9)), TypeError,
     r"Adam: beta1 .*'a'",
     lambda: torch.optim.Adam([torch.zeros(2, requires_grad=True)], betas=("a", 0.9))),

    # a float (or a bool) where an int is expected: never truncated
    ("zeros-float", dict, lambda: sg.zeros(2.5), TypeError, r"zeros: size .*float 2\.5",
     lambda: torch.zeros(2.5)),
    ("zeros-bool", dict, lambda: sg.zeros(True), TypeError, r"zeros: size .*bool True",
     lambda: torch.zeros(True)),
    ("ones-float-in-tuple", dict, lambda: sg.ones(2, 3.0), TypeError, r"ones: size .*float 3\.0",
     lambda: torch.ones(2, 3.0)),
    ("randn-float", dict, lambda: sg.randn(2.5), TypeError, r"randn: size .*2\.5",
     lambda: torch.randn(2.5)),
    ("full-float-size", dict, lambda: sg.full((2.5,), 1.0), TypeError, r"full: size .*2\.5",
     lambda: torch.full((2.5,), 1.0)),
    ("eye-float", dict, lambda: sg.eye(2.5), TypeError, r"eye: n .*2\.5", lambda: torch.eye(2.5)),
    ("randperm-float", dict, lambda: sg.randperm(2.5), TypeError, r"randperm: n .*2\.5",
     lambda: torch.randperm(2.5)),
    ("linspace-float-steps", dict, lambda: sg.linspace(0, 1, 2.5), TypeError,
     r"linspace: steps .*2\.5", lambda: torch.linspace(0, 1, 2.5)),
    ("randint-float-size", dict, lambda: sg.randint(0, 5, (2.5,)), TypeError,
     r"randint: size .*2\.5", lambda: torch.randint(0, 5, (2.5,))),
    ("randint-float-high", dict, lambda: sg.randint(0, 5.5, (2,)), TypeError,
     r"randint: high .*5\.5", lambda: torch.randint(0, 5.5, (2,))),
    ("multinomial-float", dict, lambda: sg.multinomial(sg.ones(3), 1.5), TypeError,
     r"multinomial: num_samples .*1\.5", lambda: torch.multinomial(torch.ones(3), 1.5)),
    ("reshape-float", leaf_2x3, lambda t: t.reshape(2.5), TypeError, r"reshape: shape .*float 2\.5",
     lambda: tt().reshape(2.5)),
    ("view-float", leaf_2x3, lambda t: t.view(3, 2.0), TypeError, r"reshape: shape .*float 2\.0",
     lambda: tt().view(3, 2.0)),
    ("expand-float", leaf_2x3, lambda t: t.expand(2, 3.0), TypeError, r"expand: size .*3\.0",
     lambda: tt().expand(2, 3.0)),
    ("repeat-float", leaf_2x3, lambda t: t.repeat(2.5, 1), TypeError, r"repeat: repeats .*2\.5",
     lambda: tt().repeat(2.5, 1)),
    ("tile-float", leaf_2x3, lambda t: t.tile(1.5), TypeError, r"tile: dims .*1\.5",
     lambda: tt().tile(1.5)),
    ("split-float", leaf_2x3, lambda t: t.split(1.5), TypeError, r"split: split_size .*1\.5",
     lambda: tt().split(1.5)),
    ("split-float-sizes", leaf_2x3, lambda t: t.split([1.0, 1.0]), TypeError,
     r"split: split sizes .*float 1\.0", lambda: tt().split([1.0, 1.0])),
    ("chunk-float", leaf_2x3, lambda t: t.chunk(1.5), TypeError, r"chunk: chunks .*1\.5",
     lambda: tt().chunk(1.5)),
    ("topk-float", leaf_2x3, lambda t: t.topk(1.5), TypeError, r"topk: k .*1\.5",
     lambda: tt().topk(1.5)),
    ("kthvalue-float", leaf_2x3, lambda t: t.kthvalue(1.5), TypeError, r"kthvalue: k .*1\.5",
     lambda: tt().kthvalue(1.5)),
    ("narrow-float", leaf_2x3, lambda t: t.narrow(0, 0, 1.5), TypeError, r"narrow: length .*1\.5",
     lambda: tt().narrow(0, 0, 1.5)),
    ("roll-float", leaf_2x3, lambda t: t.roll(1.5, 0), TypeError, r"roll: shifts .*1\.5",
     lambda: tt().roll(1.5, 0)),
    ("flip-float", leaf_2x3, lambda t: t.flip(1.5), TypeError, r"flip: dims .*1\.5",
     lambda: tt().flip(1.5)),
    ("permute-float", leaf_2x3, lambda t: t.permute(0, 1.5), TypeError, r"permute: dims .*1\.5",
     lambda: tt().permute(0, 1.5)),
    ("movedim-float", leaf_2x3, lambda t: t.movedim(0, 1.5), TypeError,
     r"movedim: destination .*1\.5",
     lambda: tt().movedim(0, 1.5)),
    ("unflatten-float", leaf_2x3, lambda t: t.unflatten(1, (1.5, 2)), TypeError,
     r"unflatten: sizes .*1\.5", lambda: tt().unflatten(1, (1.5, 2))),
    ("as_strided-float", leaf_2x3, lambda t: t.as_strided((1.5,), (1,)), TypeError,
     r"as_strided: size .*1\.5", lambda: tt().as_strided((1.5,), (1,))),
    ("pad-float", leaf_2x3, lambda t: F.pad(t, (1.5, 1)), TypeError, r"pad: pad .*1\.5",
     lambda: torch.nn.functional.pad(tt(), (1.5, 1))),
    ("sum-dim-float", leaf_2x3, lambda t: t.sum(dim=1.5), TypeError, r"sum: dim .*1\.5",
     lambda: tt().sum(dim=1.5)),
    ("sum-dims-float", leaf_2x3, lambda t: t.sum(dim=(0, 1.5)), TypeError, r"sum: dim .*1\.5",
     lambda: tt().sum(dim=(0, 1.5))),
    ("unsqueeze-float", leaf_2x3, lambda t: t.unsqueeze(1.5), TypeError, r"unsqueeze: dim .*1\.5",
     lambda: tt().unsqueeze(1.5)),
    ("unsqueeze-None", leaf_2x3, lambda t: t.unsqueeze(None), TypeError, r"unsqueeze: dim .*None",
     lambda: tt().unsqueeze(None)),
    ("transpose-float", leaf_2x3, lambda t: t.transpose(0, 1.5), TypeError,
     r"transpose: dim .*1\.5",
     lambda: tt().transpose(0, 1.5)),
    ("flatten-float", leaf_2x3, lambda t: t.flatten(1.5), TypeError, r"flatten: dim .*1\.5",
     lambda: tt().flatten(1.5)),
    ("softmax-str-dim", leaf_2x3, lambda t: t.softmax("a"), TypeError, r"softmax: dim .*'a'",
     lambda: tt().softmax("a")),
    ("cumsum-float", leaf_2x3, lambda t: t.cumsum(1.5), TypeError, r"cumsum: dim .*1\.5",
     lambda: tt().cumsum(1.5)),
    ("argmax-float", leaf_2x3, lambda t: t.argmax(1.5), TypeError, r"argmax: dim .*1\.5",
     lambda: tt().argmax(1.5)),
    ("Linear-float", dict, lambda: nn.Linear(2.5, 3), TypeError,
     r"Linear: in_features .*2\.5", lambda: torch.nn.Linear(2.5, 3)),
    ("Conv2d-float-kernel", dict, lambda: nn.Conv2d(1, 1, kernel_size=1.5), TypeError,
     r"Conv2d: kernel_size .*1\.5", lambda: torch.nn.Conv2d(1, 1, kernel_size=1.5)),
    ("Conv2d-float-channels", dict, lambda: nn.Conv2d(1.5, 1, 2), TypeError,
     r"Conv2d: in_channels .*1\.5", None),  # torch: a ValueError about groups, by accident
    ("Conv2d-float-stride", dict, lambda: nn.Conv2d(1, 1, 2, stride=1.5), TypeError,
     r"Conv2d: stride .*1\.5", None),  # torch fails only in forward
    ("MaxPool2d-float", dict, lambda: nn.MaxPool2d(1.5)(sg.ones(1, 1, 4, 4)), TypeError,
     r"max_pool2d: kernel_size .*1\.5",
     lambda: torch.nn.MaxPool2d(1.5)(torch.ones(1, 1, 4, 4))),
    ("Embedding-float", dict, lambda: nn.Embedding(2.5, 2), TypeError,
     r"Embedding: num_embeddings .*2\.5", lambda: torch.nn.Embedding(2.5, 2)),
    ("Embedding-float-padding", dict, lambda: nn.Embedding(3, 2, padding_idx=1.5), TypeError,
     r"Embedding: padding_idx .*1\.5", None),  # torch: an IndexError from its indexing
    ("BatchNorm1d-float", dict, lambda: nn.BatchNorm1d(2.5), TypeError,
     r"BatchNorm1d: num_features .*2\.5", lambda: torch.nn.BatchNorm1d(2.5)),
    ("LayerNorm-float", dict, lambda: nn.LayerNorm(2.5), TypeError,
     r"LayerNorm: size .*2\.5", lambda: torch.nn.LayerNorm(2.5)),
    ("LSTM-float", dict, lambda: nn.LSTM(2.5, 3), TypeError, r"LSTM: input_size .*2\.5",
     lambda: torch.nn.LSTM(2.5, 3)),
    ("MultiheadAttention-float", dict, lambda: nn.MultiheadAttention(4, 2.0), TypeError,
     r"MultiheadAttention: num_heads .*2\.0", None),  # torch accepts 2.0
    ("DataLoader-float", leaf_6, lambda t: sg.DataLoader(sg.TensorDataset(t), batch_size=2.5),
     ValueError, r"DataLoader: batch_size .*2\.5",
     lambda: torch.utils.data.DataLoader([1, 2, 3], batch_size=2.5)),
    ("DataLoader-bool", leaf_6, lambda t: sg.DataLoader(sg.TensorDataset(t), batch_size=True),
     ValueError, r"DataLoader: batch_size .*True",
     lambda: torch.utils.data.DataLoader([1, 2, 3], batch_size=True)),
    ("DataLoader-zero", leaf_6, lambda t: sg.DataLoader(sg.TensorDataset(t), batch_size=0),
     ValueError, r"DataLoader: batch_size .*0",
     lambda: torch.utils.data.DataLoader([1, 2, 3], batch_size=0)),


    # an input a layer cannot take, refused before the layer counts the batch
    ("BatchNorm1d-channels", module(lambda: nn.BatchNorm1d(3)), lambda m: m(sg.ones(2, 5)),
     RuntimeError, r"BatchNorm1d: expected 3 channels .*\(2, 5\)",
     lambda: torch.nn.BatchNorm1d(3)(torch.ones(2, 5))),
    ("BatchNorm1d-one-value", module(lambda: nn.BatchNorm1d(3)), lambda m: m(sg.ones(1, 3)),
     ValueError, r"BatchNorm1d: expected more than 1 value per channel .*\(1, 3\)",
     lambda: torch.nn.BatchNorm1d(3)(torch.ones(1, 3))),
    ("BatchNorm1d-None", module(lambda: nn.BatchNorm1d(3)), lambda m: m(None), TypeError,
     r"BatchNorm1d: .*None", None),  # torch: an AttributeError
    ("LSTM-None", module(lambda: nn.LSTM(3, 4)), lambda m: m(None), TypeError,
     r"LSTM: .*None", None),  # torch: an AttributeError
    ("MultiheadAttention-None-key", module(lambda: nn.MultiheadAttention(4, 2)),
     lambda m: m(sg.ones(2, 1, 4), None, sg.ones(2, 1, 4)), TypeError,
     r"MultiheadAttention: .*None", None),  # torch: an AttributeError
    ("sdpa-None-key", dict, lambda: F.scaled_dot_product_attention(sg.ones(2, 4), None,
                                                                   sg.ones(2, 4)),
     TypeError, r"scaled_dot_product_attention: .*None",
     lambda: torch.nn.functional.scaled_dot_product_attention(torch.ones(2, 4), None,
                                                              torch.ones(2, 4))),
    ("conv2d-float-groups", dict, lambda: F.conv2d(sg.ones(1, 1, 4, 4), sg.ones(1, 1, 2, 2),
                                                   groups=1.5),
     TypeError, r"conv2d: groups .*1\.5",
     lambda: torch.nn.functional.conv2d(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 2, 2),
                                        groups=1.5)),
    ("AdaptiveAvgPool2d-float", dict, lambda: nn.AdaptiveAvgPool2d(1.5)(sg.ones(1, 1, 4, 4)),
     TypeError, r"adaptive_avg_pool2d: output_size .*1\.5",
     lambda: torch.nn.AdaptiveAvgPool2d(1.5)(torch.ones(1, 1, 4, 4))),

    # a negative size
    ("zeros-negative", dict, lambda: sg.zeros(-1), RuntimeError, r"zeros: .*negative .*-1",
     lambda: torch.zeros(-1)),
    ("ones-negative", dict, lambda: sg.ones(2, -3), RuntimeError, r"ones: .*\(2, -3\)",
     lambda: torch.ones(2, -3)),
    ("rand-negative", dict, lambda: sg.rand(-1), RuntimeError, r"rand: .*-1",
     lambda: torch.rand(-1)),
    ("eye-negative", dict, lambda: sg.eye(-1), RuntimeError, r"eye: n .*-1",
     lambda: torch.eye(-1)),
    ("randperm-negative", dict, lambda: sg.randperm(-1), RuntimeError, r"randperm: n .*-1",
     lambda: torch.randperm(-1)),
    ("linspace-negative", dict, lambda: sg.linspace(0, 1, -1), RuntimeError,
     r"linspace: steps .*-1", lambda: torch.linspace(0, 1, -1)),
    ("Linear-negative", dict, lambda: nn.Linear(3, -4), RuntimeError,
     r"Linear: out_features .*-4", lambda: torch.nn.Linear(3, -4)),
    ("Embedding-negative", dict, lambda: nn.Embedding(-1, 2), RuntimeError,
     r"Embedding: num_embeddings .*-1", lambda: torch.nn.Embedding(-1, 2)),
    ("BatchNorm1d-negative", dict, lambda: nn.BatchNorm1d(-1), RuntimeError,
     r"BatchNorm1d: num_features .*-1", lambda: torch.nn.BatchNorm1d(-1)),
    ("LayerNorm-negative", dict, lambda: nn.LayerNorm((2, -1)), RuntimeError,
     r"LayerNorm: .*\(2, -1\)", lambda: torch.nn.LayerNorm((2, -1))),
    ("Conv2d-negative-kernel", dict, lambda: nn.Conv2d(1, 1, -2), RuntimeError,
     r"Conv2d: kernel_size \(-2, -2\)", lambda: torch.nn.Conv2d(1, 1, -2)),
    ("reshape-negative", leaf_6, lambda t: t.reshape(-2, -3), RuntimeError,
     r"reshape: invalid size -3 in shape \(-2, -3\)", lambda: torch.ones(6).reshape(-2, -3)),
    ("expand-negative", leaf_2x3, lambda t: t.expand(-2, 3), RuntimeError,
     r"expand: .*\(-2, 3\)", lambda: tt().expand(-2, 3)),
    ("expand-minus-one-new-dim", leaf_2x3, lambda t: t.expand(-1, 2, 3), RuntimeError,
     r"expand: .*\(-1, 2, 3\)", lambda: tt().expand(-1, 2, 3)),
    ("repeat-negative", leaf_2x3, lambda t: t.repeat(-1, 1), RuntimeError,
     r"repeat: repeats \(-1, 1\)",
     lambda: tt().repeat(-1, 1)),
    ("split-negative-size", leaf_6, lambda t: t.split([2, -1, 5]), RuntimeError,
     r"split: split sizes \[2, -1, 5\]", lambda: torch.ones(6).split([2, -1, 5])),
    ("chunk-zero", leaf_2x3, lambda t: t.chunk(0), RuntimeError, r"chunk: chunks .*0",
     lambda: tt().chunk(0)),

    # an index out of range
    ("getitem-int", leaf_2x3, lambda t: t[5], IndexError, r"getitem: index 5 .*axis 0.*\(2, 3\)",
     lambda: tt()[5]),
    ("getitem-negative", leaf_2x3, lambda t: t[-3], IndexError, r"getitem: index -3 .*\(2, 3\)",
     lambda: tt()[-3]),
    ("getitem-second-dim", leaf_2x3, lambda t: t[0, 3], IndexError,
     r"getitem: index 3 .*axis 1.*\(2, 3\)", lambda: tt()[0, 3]),
    ("getitem-list", leaf_2x3, lambda t: t[[0, 2]], IndexError, r"getitem: index 2 .*\(2, 3\)",
     lambda: tt()[[0, 2]]),
    ("Embedding-minus-one", module(lambda: nn.Embedding(3, 2)),
     lambda m: m(sg.tensor([0, -1])), IndexError, r"embedding: index -1 .*\[0, 3\)",
     lambda: torch.nn.Embedding(3, 2)(torch.tensor([0, -1]))),
    ("Embedding-too-large", module(lambda: nn.Embedding(3, 2)),
     lambda m: m(sg.tensor([[1, 3]])), IndexError, r"embedding: index 3 .*\[0, 3\)",
     lambda: torch.nn.Embedding(3, 2)(torch.tensor([[1, 3]]))),
    ("embedding-fn", leaf_2x3, lambda t: F.embedding(sg.tensor([5]), t), IndexError,
     r"embedding: index 5 .*\(2, 3\)",
     lambda: torch.nn.functional.embedding(torch.tensor([5]), tt())),
    ("index_select", leaf_2x3, lambda t: t.index_select(0, [5]), IndexError,
     r"index_select: index 5 .*\(2, 3\)",
     lambda: tt().index_select(0, torch.tensor([5]))),
    ("gather", leaf_2x3, lambda t: t.gather(1, sg.tensor([[0, 3]])), IndexError,
     r"gather: index 3 .*\[0, 3\)", None),  # torch: a RuntimeError from its kernel
    ("cross_entropy-target", leaf_2x3, lambda t: F.cross_entropy(t, sg.tensor([0, 5])), IndexError,
     r"cross_entropy: target 5", lambda: torch.nn.functional.cross_entropy(
         tt(), torch.tensor([0, 5]))),

    # None (or another non-tensor) where a tensor is expected
    ("linear-None-weight", leaf_2x3, lambda t: F.linear(t, None), TypeError, r"linear: .*None",
     lambda: torch.nn.functional.linear(tt(), None)),
    ("linear-None-input", leaf_2x3, lambda t: F.linear(None, t), TypeError, r"linear: .*None",
     lambda: torch.nn.functional.linear(None, tt())),
    ("Linear-None", module(lambda: nn.Linear(3, 4)), lambda m: m(None), TypeError,
     r"linear: .*None", lambda: torch.nn.Linear(3, 4)(None)),
    ("Linear-str", module(lambda: nn.Linear(3, 4)), lambda m: m("x"), TypeError,
     r"linear: .*'x'", lambda: torch.nn.Linear(3, 4)("x")),
    ("Conv2d-None", module(lambda: nn.Conv2d(1, 1, 2)), lambda m: m(None), TypeError,
     r"conv2d: .*None", lambda: torch.nn.Conv2d(1, 1, 2)(None)),
    ("conv2d-None-weight", dict, lambda: F.conv2d(sg.ones(1, 1, 4, 4), None), TypeError,
     r"conv2d: .*None", lambda: torch.nn.functional.conv2d(torch.ones(1, 1, 4, 4), None)),
    ("relu-None", dict, lambda: F.relu(None), TypeError, r"relu: .*None",
     lambda: torch.nn.functional.relu(None)),
    ("ReLU-None", module(nn.ReLU), lambda m: m(None), TypeError, r"relu: .*None",
     lambda: torch.nn.ReLU()(None)),
    ("GELU-str", module(nn.GELU), lambda m: m("x"), TypeError, r"gelu: .*'x'",
     lambda: torch.nn.GELU()("x")),
    ("softmax-fn-None", dict, lambda: F.softmax(None, 0), TypeError, r"softmax: .*None",
     None),  # torch: an AttributeError
    ("layer_norm-None", dict, lambda: F.layer_norm(None, (3,)), TypeError,
     r"layer_norm: .*None", lambda: torch.nn.functional.layer_norm(None, (3,))),
    ("LayerNorm-None", module(lambda: nn.LayerNorm(3)), lambda m: m(None), TypeError,
     r"layer_norm: .*None", lambda: torch.nn.LayerNorm(3)(None)),
    ("matmul-fn-None", leaf_2x3, lambda t: sg.matmul(t, None), TypeError, r"matmul: .*None",
     lambda: torch.matmul(tt(), None)),
    ("einsum-None", leaf_2x3, lambda t: sg.einsum("ij,ij->", t, None), TypeError, r"einsum: .*None",
     lambda: torch.einsum("ij,ij->", tt(), None)),
    ("cat-None-entry", leaf_2x3, lambda t: sg.cat([t, None]), TypeError, r"cat: .*None",
     lambda: torch.cat([tt(), None])),
    ("cat-str-entry", leaf_2x3, lambda t: sg.cat([t, "x"]), TypeError, r"cat: .*'x'",
     lambda: torch.cat([tt(), "x"])),
    ("cat-None", dict, lambda: sg.cat(None), TypeError, r"cat: .*sequence.*None",
     lambda: torch.cat(None)),
    ("cat-tensor", leaf_2x3, lambda t: sg.cat(t), TypeError, r"cat: .*sequence.*Tensor",
     lambda: torch.cat(tt())),
    ("stack-None-entry", leaf_2x3, lambda t: sg.stack([t, None]), TypeError, r"stack: .*None",
     lambda: torch.stack([tt(), None])),
    ("gather-None", leaf_2x3, lambda t: t.gather(0, None), TypeError, r"gather: .*None",
     lambda: tt().gather(0, None)),
    ("index_select-None", leaf_2x3, lambda t: t.index_select(0, None), TypeError,
     r"index_select: .*None", lambda: tt().index_select(0, None)),
    ("embedding-None-weight", dict, lambda: F.embedding(sg.tensor([1]), None), TypeError,
     r"embedding: .*None", lambda: torch.nn.functional.embedding(torch.tensor([1]), None)),
    ("MSELoss-None-input", leaf_2x3, lambda t: nn.MSELoss()(None, t), TypeError,
     r"mse_loss: .*None", None),  # torch: an AttributeError
    ("MSELoss-None-target", leaf_2x3, lambda t: nn.MSELoss()(t, None), TypeError,
     r"mse_loss: .*None", None),  # torch: an AttributeError
    ("l1_loss-str-target", leaf_2x3, lambda t: F.l1_loss(t, "x"), TypeError, r"l1_loss: .*'x'",
     None),  # torch: an AttributeError
    ("cross_entropy-None-input", dict, lambda: F.cross_entropy(None, sg.tensor([0])),
     TypeError, r"cross_entropy: .*None",
     lambda: torch.nn.functional.cross_entropy(None, torch.tensor([0]))),
    ("cross_entropy-None-target", leaf_2x3, lambda t: F.cross_entropy(t, None), TypeError,
     r"cross_entropy: .*None", lambda: torch.nn.functional.cross_entropy(tt(), None)),
    ("nll_loss-None-target", leaf_2x3, lambda t: F.nll_loss(t, None), TypeError,
     r"nll_loss: .*None",
     lambda: torch.nn.functional.nll_loss(tt(), None)),
    ("binary_cross_entropy-None", leaf_2x3, lambda t: F.binary_cross_entropy(None, t), TypeError,
     r"binary_cross_entropy: .*None", None),  # torch: an AttributeError
    ("TensorDataset-None", leaf_2x3, lambda t: sg.TensorDataset(t, None), TypeError,
     r"TensorDataset: .*None", None),  # torch: an AttributeError

    # a flag that is not a bool, where torch checks it
    ("requires_grad_-str", leaf_2x3, lambda t: t.requires_grad_("x"), TypeError,
     r"requires_grad_: requires_grad .*'x'", lambda: tt().requires_grad_("x")),
    ("requires_grad_-int", leaf_2x3, lambda t: t.requires_grad_(0), TypeError,
     r"requires_grad_: requires_grad .*int 0", lambda: tt().requires_grad_(0)),
    ("tensor-requires_grad-str", dict, lambda: sg.tensor([1.0], requires_grad="x"), TypeError,
     r"requires_grad .*'x'", lambda: torch.tensor([1.0], requires_grad="x")),
    ("sum-keepdim-str", leaf_2x3, lambda t: t.sum(0, keepdim="x"), TypeError, r"sum: keepdim .*'x'",
     lambda: tt().sum(0, keepdim="x")),
    ("mean-keepdim-int", leaf_2x3, lambda t: t.mean(0, keepdim=1), TypeError,
     r"mean: keepdim .*int 1", lambda: tt().mean(0, keepdim=1)),
    ("max-keepdim-str", leaf_2x3, lambda t: t.max(0, keepdim="x"), TypeError,
     r"max/min: keepdim .*'x'", lambda: tt().max(0, keepdim="x")),
    ("median-keepdim-int", leaf_2x3, lambda t: t.median(0, keepdim=1), TypeError,
     r"median: keepdim .*int 1", lambda: tt().median(0, keepdim=1)),
    ("sort-descending-str", leaf_2x3, lambda t: t.sort(descending="x"), TypeError,
     r"argsort: descending .*'x'", lambda: tt().sort(descending="x")),
    ("topk-largest-str", leaf_2x3, lambda t: t.topk(1, largest="x"), TypeError,
     r"topk: largest .*'x'", lambda: tt().topk(1, largest="x")),
    ("std-unbiased-str", leaf_2x3, lambda t: t.std(0, unbiased="x"), TypeError,
     r"var: unbiased .*'x'", lambda: tt().std(0, unbiased="x")),
    ("Module.requires_grad_-str", module(lambda: nn.Linear(3, 4)),
     lambda m: m.requires_grad_("x"), TypeError, r"requires_grad_: requires_grad .*'x'",
     lambda: torch.nn.Linear(3, 4).requires_grad_("x")),
    ("Module.train-str", module(lambda: nn.Sequential(nn.Linear(3, 4), nn.Dropout())),
     lambda m: m.train("x"), ValueError, r"train: mode .*'x'",
     lambda: torch.nn.Linear(3, 4).train("x")),

    # Module.load_state_dict: checked and converted before anything is written
    ("load_state_dict-None", module(lambda: nn.Linear(3, 4)), lambda m: m.load_state_dict(None),
     TypeError, r"load_state_dict: .*dict.*None",
     lambda: torch.nn.Linear(3, 4).load_state_dict(None)),
    ("load_state_dict-list", module(lambda: nn.Linear(3, 4)),
     lambda m: m.load_state_dict([("weight", np.ones((4, 3)))]), TypeError,
     r"load_state_dict: .*dict.*list",
     lambda: torch.nn.Linear(3, 4).load_state_dict([("weight", torch.ones(4, 3))])),
    ("load_state_dict-last-str", linear_saved(setitem("1.bias", np.array(["a", "b"]))),
     lambda m, saved: m.load_state_dict(saved), RuntimeError,
     r'parameter named "1\.bias".*ndarray', lambda: torch_linear_saved(np.array(["a"] * 4))),
    ("load_state_dict-last-None", linear_saved(setitem("1.bias", None)),
     lambda m, saved: m.load_state_dict(saved), RuntimeError,
     r'parameter named "1\.bias".*None', lambda: torch_linear_saved(None)),
    ("load_state_dict-last-complex", linear_saved(setitem("1.bias", np.ones(2) * 1j)),
     lambda m, saved: m.load_state_dict(saved), RuntimeError,
     r'parameter named "1\.bias".*float32', None),  # torch casts, discarding the imaginary part
    ("load_state_dict-last-shape", linear_saved(setitem("1.bias", np.ones(3))),
     lambda m, saved: m.load_state_dict(saved), RuntimeError,
     r"size mismatch for 1\.bias.*\(3,\)", lambda: torch_linear_saved(torch.ones(5))),

    # Optimizer.load_state_dict: the param_groups and every state entry checked against the
    # parameters before anything changes (torch checks the groups' sizes only)
    ("optim-load-None", adam, lambda opt: opt.load_state_dict(None), TypeError,
     r"Adam\.load_state_dict: .*None", None),  # torch: an AttributeError
    ("optim-load-no-state", adam_saved(lambda s: s.pop("state")),
     lambda opt, saved: opt.load_state_dict(saved), ValueError,
     r"Adam\.load_state_dict: .*'state'", None),  # torch: a KeyError
    ("optim-exp_avg-shape", adam_saved(set_state(1, "exp_avg", np.zeros(3))),
     lambda opt, saved: opt.load_state_dict(saved), ValueError,
     r"Adam\.load_state_dict: the state of parameter 1, 'exp_avg', has shape \(3,\), but the "
     r"parameter has shape \(2,\)", None),  # torch broadcasts it at every later step
    ("optim-exp_avg_sq-scalar", adam_saved(set_state(0, "exp_avg_sq", sg.tensor(1.0))),
     lambda opt, saved: opt.load_state_dict(saved), ValueError,
     r"'exp_avg_sq', has shape \(\), but the parameter has shape \(2, 3\)", None),
    ("optim-exp_avg-str", adam_saved(set_state(1, "exp_avg", np.array(["a", "b"]))),
     lambda opt, saved: opt.load_state_dict(saved), TypeError,
     r"the state of parameter 1, 'exp_avg', must be numbers", None),
    ("optim-exp_avg-complex", adam_saved(set_state(1, "exp_avg", np.ones(2) * 1j)),
     lambda opt, saved: opt.load_state_dict(saved), TypeError,
     r"'exp_avg', of complex128, does not fit a parameter of float64", None),
    ("optim-step-str", adam_saved(set_state(1, "step", "abc")),
     lambda opt, saved: opt.load_state_dict(saved), TypeError,
     r"the state of parameter 1, 'step', must be a number, not str 'abc'", None),
    ("optim-state-unknown-index", adam_saved(lambda s: s["state"].update({5: {}})),
     lambda opt, saved: opt.load_state_dict(saved), ValueError, r"state 5 ", None),
    ("optim-groups-count", adam_saved(lambda s: s["param_groups"].append(
        dict(s["param_groups"][0], params=[]))),
     lambda opt, saved: opt.load_state_dict(saved), ValueError,
     r"2 parameter groups saved, 1 here", None),
    ("optim-group-size", adam_saved(lambda s: s["param_groups"][0]["params"].pop()),
     lambda opt, saved: opt.load_state_dict(saved), ValueError,
     r"parameter group 0 has 1 parameters saved, 2 here", None),
    ("optim-group-repeated-index", adam_saved(lambda s: s["param_groups"][0].update(
        params=[0, 0])),
     lambda opt, saved: opt.load_state_dict(saved), ValueError,
     r"parameter group 0 lists 0, which is not an integer index new", None),
    ("optim-lr-str", adam_saved(lambda s: s["param_groups"][0].update(lr="fast")),
     lambda opt, saved: opt.load_state_dict(saved), TypeError,
     r"parameter group 0's option 'lr' is str 'fast'", None),
    ("optim-betas-number", adam_saved(lambda s: s["param_groups"][0].update(betas=0.9)),
     lambda opt, saved: opt.load_state_dict(saved), TypeError,
     r"option 'betas' is float 0\.9", None),
]

# every arithmetic and comparison operator, on either side, with a non-numeric scalar: the
# message names the op (the mirrored comparison on the right, as Python calls it)
_OPERATORS = [
    ("add", "add", operator.add), ("sub", "sub", operator.sub), ("mul", "mul", operator.mul),
    ("div", "div", operator.truediv), ("pow", "pow", operator.pow),
    ("floor_divide", "floor_divide", operator.floordiv),
    ("remainder", "remainder", operator.mod), ("matmul", "matmul", operator.matmul),
    ("lt", "gt", operator.lt), ("le", "ge", operator.le), ("gt", "lt", operator.gt),
    ("ge", "le", operator.ge),
]
_SCALARS = [("None", None, r"None"), ("str", "x", r"str 'x'"),
            ("object", object(), r"object <object object")]

for _name, _mirrored, _fn in _OPERATORS:
    for _label, _value, _text in _SCALARS:
        CASES.append((f"{_name}-{_label}", leaf_2x3, lambda t, fn=_fn, v=_value: fn(t, v),
                      TypeError, rf"{_name}: .*{_text}", lambda fn=_fn, v=_value: fn(tt(), v)))
        if _name == "remainder" and _value == "x":
            continue  # "x" % t is string formatting: str's own TypeError, before any tensor's
        CASES.append((f"r{_name}-{_label}", leaf_2x3, lambda t, fn=_fn, v=_value: fn(v, t),
                      TypeError, rf"{_mirrored}: .*{_text}",
                      lambda fn=_fn, v=_value: fn(v, tt())))


@pytest.mark.parametrize("make, call, error, message, torch_call",
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_bad_call_raises_and_changes_nothing(make, call, error, message, torch_call):
    objects = make()
    before = {name: snapshot(obj) for name, obj in objects.items() if name != "saved"}
    with pytest.raises(error, match=message):
        call(**objects)
    for name, state in before.items():
        assert snapshot(objects[name]) == state, f"the bad call changed {name}"
    if torch_call is not None:  # the error type is torch's
        with pytest.raises(error):
            torch_call()


def test_the_table_ids_are_unique():
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


# ---- what stays allowed ------------------------------------------------------------------------

def test_equality_with_a_non_number_is_false_as_in_torch():
    x, ref = leaf(), tt()
    assert (x == None) is (ref == None) is False  # noqa: E711 (the operator is under test)
    assert (x != "x") is (ref != "x") is True
    assert x not in [None, "x"] and None not in [x]


def test_integer_arguments_accept_numpy_integers_and_0d_integer_tensors():
    n = sg.tensor(3)
    assert sg.zeros(np.int64(2), n).shape == torch.zeros(np.int64(2), torch.tensor(3)).shape
    assert sg.ones(6).reshape(np.int32(2), -1).shape == (2, 3)
    assert nn.Linear(np.int64(3), n).weight.shape == (3, 3)
    assert sg.ones(6).split(np.int64(4))[1].shape == (2,)


def test_numbers_lists_and_arrays_stay_operands():
    x = leaf()
    np.testing.assert_array_equal((x + [1, 2, 3]).numpy(), x.numpy() + [1, 2, 3])
    np.testing.assert_array_equal((np.ones(3) * x).numpy(), x.numpy())
    np.testing.assert_array_equal((2 ** sg.tensor([1, 2])).numpy(), [2, 4])


# ---- load_state_dict: nothing is written unless everything fits --------------------------------

def test_module_state_dict_whose_last_entry_cannot_be_converted_leaves_every_parameter(device):
    sg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    before = snapshot(model)
    arrays = [t.data for t in model.state_dict().values()]
    new = {k: v.numpy() + 1 for k, v in model.state_dict().items()}
    last = list(new)[-1]
    assert last == "2.bias"
    bad = dict(new, **{last: np.array(["1.5", "2.5"])})  # the right shape, not numbers
    with pytest.raises(RuntimeError, match=r'parameter named "2\.bias"'):
        model.load_state_dict(bad)
    assert snapshot(model) == before
    # the good entries do load, into the same arrays (so the check above could fail)
    model.load_state_dict(new)
    for (key, value), array in zip(model.state_dict().items(), arrays):
        assert value.data is array
        np.testing.assert_array_equal(value.numpy(), new[key], err_msg=key)


def test_module_load_state_dict_refuses_none_naming_it():
    with pytest.raises(TypeError, match=r"load_state_dict: expected a dict-like state_dict, got "
                                        r"None"):
        nn.Linear(2, 2).load_state_dict(None)
    with pytest.raises(TypeError, match="dict"):
        torch.nn.Linear(2, 2).load_state_dict(None)


def test_optimizer_refuses_a_wrong_shaped_exp_avg_and_then_steps_as_torch(device):
    # one parameter, two Adam steps in simplegrad and in torch; a state dict with a broadcastable
    # but wrong exp_avg (shape (1,) for a (3,) parameter) is refused, and the next steps still
    # match torch's, which it would not if the loaded value had been broadcast
    start = np.array([1.0, -2.0, 0.5])
    w, tw = sg.Tensor(start.copy()), torch.tensor(start.copy(), requires_grad=True)
    opt, topt = optim.Adam([w], lr=0.1), torch.optim.Adam([tw], lr=0.1)

    def steps(n):
        for _ in range(n):
            opt.zero_grad()
            topt.zero_grad()
            (w * w * w).sum().backward()
            (tw * tw * tw).sum().backward()
            opt.step()
            topt.step()

    steps(2)
    saved = opt.state_dict()
    saved["state"][0]["exp_avg"] = np.zeros(1)
    before = snapshot(opt)
    with pytest.raises(ValueError, match=r"'exp_avg', has shape \(1,\), but the parameter has "
                                         r"shape \(3,\)"):
        opt.load_state_dict(saved)
    assert snapshot(opt) == before
    steps(3)
    np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_optimizer_load_state_dict_refuses_none_naming_it():
    opt = optim.SGD([sg.Tensor(np.ones(2))], lr=0.1)
    with pytest.raises(TypeError, match=r"SGD\.load_state_dict: expected a dict-like "
                                        r"state_dict, got None"):
        opt.load_state_dict(None)


def test_optimizer_loads_torch_state_dicts_and_casts_to_the_parameter_dtype():
    # torch's Adam keeps "step" as a 0-d tensor, and here its moments in float64
    tw = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    topt = torch.optim.Adam([tw], lr=0.1)
    (tw * tw).sum().backward()
    topt.step()
    w = sg.Tensor(np.array([1.0, -2.0], dtype=np.float32))
    opt = optim.Adam([w], lr=0.1)
    opt.load_state_dict(topt.state_dict())
    state = opt.state[w]
    assert state["step"] == 1 and state["exp_avg"].dtype == np.float32
    np.testing.assert_allclose(state["exp_avg_sq"].numpy(),
                               topt.state[tw]["exp_avg_sq"].numpy(), rtol=1e-6)
