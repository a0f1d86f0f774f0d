"""nn against PyTorch: layers, the Module machinery, losses, init, save/load and DataLoader.

Layers are compared by loading each PyTorch layer's state dict into the matching simplegrad
layer (both in float64), running the same input through both, and comparing the outputs and
every gradient: the input's and each parameter's, matched by name. Losses go through the
helper `check` (forward and the gradient of every input). Tolerances are the helper's
(float64: rtol 1e-9, atol 1e-11; float32: rtol 2e-4, atol 2e-5) unless a test says otherwise.
"""

import os

import numpy as np
import pytest
from helpers import (
    EPS,
    FLOATS,
    LARGE_SCALES,
    ULP_TOLERANCES,
    assert_close,
    assert_param_grads_close,
    check,
    in_float64,
    large_logits,
    torch,
)

import simplegrad as sg
from devices.reference import ReferenceDevice
from simplegrad import nn

F = nn.functional
TF = torch.nn.functional

pytestmark = pytest.mark.usefixtures("device")


def compare_layer(layer, torch_layer, x, train=True, seed=0, load=True):
    """Load torch_layer's state dict into layer (both made float64), run x through both and
    compare the outputs, the gradient of x (when it is floating) and of every parameter."""
    torch_layer.double().train(train)
    layer.double().train(train)
    if load:
        layer.load_state_dict(torch_layer.state_dict())
    layer.zero_grad()
    torch_layer.zero_grad()
    x = np.asarray(x)
    floating = x.dtype.kind == "f"
    sx = sg.Tensor(x.copy(), requires_grad=floating)
    tx = torch.tensor(x.copy(), requires_grad=floating)
    out, ref = layer(sx), torch_layer(tx)
    assert_close(out, ref, what="forward")
    upstream = np.random.default_rng(seed).standard_normal(tuple(ref.shape))
    out.backward(sg.Tensor(upstream))
    ref.backward(torch.tensor(upstream))
    if floating:
        assert_close(sx.grad, tx.grad, what="gradient of the input")
    assert_param_grads_close(layer, torch_layer)
    return out


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ================================================================================================
# Layers against PyTorch
# ================================================================================================

@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 3), (3,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(shape, bias):
    compare_layer(nn.Linear(3, 4, bias=bias), torch.nn.Linear(3, 4, bias=bias), randn(*shape))


@pytest.mark.parametrize("normalized_shape, shape", [(4, (3, 4)), ((2, 4), (3, 2, 4))])
def test_layer_norm(normalized_shape, shape):
    torch_layer = torch.nn.LayerNorm(normalized_shape)
    with torch.no_grad():  # parameters away from their initial ones and zeros
        for p in torch_layer.parameters():
            p.add_(torch.randn(p.shape))
    compare_layer(nn.LayerNorm(normalized_shape), torch_layer, randn(*shape) * 3 + 1)


def test_layer_norm_without_affine():
    layer = nn.LayerNorm(4, elementwise_affine=False)
    assert list(layer.parameters()) == []
    compare_layer(layer, torch.nn.LayerNorm(4, elementwise_affine=False), randn(3, 4))


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5)])
def test_batch_norm_training_and_running_statistics(shape):
    layer, torch_layer = nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        torch_layer.weight.add_(torch.randn(3))
        torch_layer.bias.add_(torch.randn(3))
    for step in range(3):
        x = randn(*shape, seed=step) * (step + 1) + step
        compare_layer(layer, torch_layer, x, train=True, seed=step, load=step == 0)
        for name in ("running_mean", "running_var"):
            assert_close(getattr(layer, name), getattr(torch_layer, name), what=name)
        assert int(layer.num_batches_tracked.item()) == step + 1
    # eval mode: the running statistics normalise, and nothing is updated
    before = layer.running_mean.numpy().copy()
    compare_layer(layer, torch_layer, randn(*shape, seed=9), train=False, load=False)
    np.testing.assert_array_equal(layer.running_mean.numpy(), before)
    assert int(layer.num_batches_tracked.item()) == 3


def test_batch_norm_cumulative_average_and_untracked():
    layer, torch_layer = nn.BatchNorm1d(2, momentum=None), torch.nn.BatchNorm1d(2, momentum=None)
    for step in range(3):
        compare_layer(layer, torch_layer, randn(5, 2, seed=step) + step, seed=step,
                      load=step == 0)
    assert_close(layer.running_mean, torch_layer.running_mean, what="running_mean")
    assert_close(layer.running_var, torch_layer.running_var, what="running_var")
    untracked = nn.BatchNorm1d(2, track_running_stats=False)
    assert list(untracked.state_dict()) == ["weight", "bias"]
    # without running statistics, eval mode normalises with the batch's, as torch
    compare_layer(untracked, torch.nn.BatchNorm1d(2, track_running_stats=False),
                  randn(5, 2), train=False)


def test_batch_norm_errors():
    layer = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        layer(sg.Tensor(randn(1, 3)))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        layer(sg.Tensor(randn(2, 3, 4, 5)))


@pytest.mark.parametrize("padding_idx", [None, 0, -1])
def test_embedding(padding_idx):
    index = np.array([[0, 2, 4], [4, 9, 0]], dtype=np.int64)
    torch_layer = torch.nn.Embedding(10, 3, padding_idx=padding_idx)
    layer = nn.Embedding(10, 3, padding_idx=padding_idx)
    if padding_idx is not None:  # the padding row starts at zero and never gets a gradient
        np.testing.assert_array_equal(layer.weight.numpy()[padding_idx], 0)
    compare_layer(layer, torch_layer, index)
    if padding_idx is not None:
        np.testing.assert_array_equal(np.asarray(layer.weight.grad)[padding_idx], 0)


@pytest.mark.parametrize("make", [
    lambda lib: lib.ReLU(), lambda lib: lib.LeakyReLU(0.2), lambda lib: lib.Tanh(),
    lambda lib: lib.Sigmoid(), lambda lib: lib.GELU(), lambda lib: lib.GELU("tanh"),
    lambda lib: lib.Softmax(dim=-1), lambda lib: lib.LogSoftmax(dim=1), lambda lib: lib.Identity(),
    lambda lib: lib.Flatten(), lambda lib: lib.Flatten(0, 1),
], ids=["relu", "leaky_relu", "tanh", "sigmoid", "gelu", "gelu_tanh", "softmax", "log_softmax",
        "identity", "flatten", "flatten_0_1"])
def test_activations_and_shape_layers(make):
    compare_layer(make(nn), make(torch.nn), randn(2, 3, 4) * 2)


def test_sequential_model_against_torch():
    def build(lib):
        return lib.Sequential(lib.Linear(4, 8), lib.LayerNorm(8), lib.GELU(), lib.Dropout(0.5),
                              lib.Linear(8, 8), lib.BatchNorm1d(8), lib.Tanh(), lib.Linear(8, 3),
                              lib.LogSoftmax(dim=1))
    # eval mode: dropout is the identity and BatchNorm uses the (loaded) running statistics
    compare_layer(build(nn), build(torch.nn), randn(6, 4), train=False)


def test_functional_forms_match_torch():
    x = randn(3, 4)
    w, b = randn(5, 4, seed=1), randn(5, seed=2)
    check(lambda x, w, b: F.linear(x, w, b), None, inputs=[x, w, b],
          torch_fn=lambda x, w, b: TF.linear(x, w, b))
    check(lambda x, w, b: F.layer_norm(x, (4,), w, b), None,
          inputs=[x, randn(4, seed=1), randn(4, seed=2)],
          torch_fn=lambda x, w, b: TF.layer_norm(x, (4,), w, b))
    check(lambda x: F.pad(x, (1, 2, 0, 1), value=0.5), None, inputs=[x],
          torch_fn=lambda x: TF.pad(x, (1, 2, 0, 1), value=0.5))
    check(lambda w: F.embedding(sg.Tensor(np.array([3, 0, 3])), w), None, inputs=[w],
          torch_fn=lambda w: TF.embedding(torch.tensor([3, 0, 3]), w))


@pytest.mark.parametrize("name, args", [
    ("relu", ()), ("leaky_relu", (0.3,)), ("gelu", ()), ("sigmoid", ()), ("tanh", ()),
    ("softmax", (0,)), ("log_softmax", (1,)), ("softplus", ())])
def test_functional_activations(name, args):
    check(lambda x: getattr(F, name)(x, *args), [(3, 4)],
          torch_fn=lambda x: getattr(TF, name)(x, *args))


def test_default_init_matches_torch_layout_and_bounds():
    sg.manual_seed(0)
    layer = nn.Linear(400, 300)
    assert layer.weight.shape == (300, 400) and layer.bias.shape == (300,)
    assert layer.weight.dtype == np.float32 and layer.weight.requires_grad
    bound = 1 / np.sqrt(400)  # kaiming_uniform_(a=sqrt(5)) and the bias: U(-1/sqrt(in), ...)
    w, b = layer.weight.numpy(), layer.bias.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound
    assert np.abs(b).max() <= bound
    np.testing.assert_allclose(w.std(), bound / np.sqrt(3), rtol=0.01)
    np.testing.assert_allclose(w.mean(), 0, atol=0.01 * bound)
    emb = nn.Embedding(1000, 100).weight.numpy()  # N(0, 1)
    np.testing.assert_allclose([emb.mean(), emb.std()], [0, 1], atol=0.01)
    norm = nn.LayerNorm(5)
    np.testing.assert_array_equal(norm.weight.numpy(), 1)
    np.testing.assert_array_equal(norm.bias.numpy(), 0)
    bn = nn.BatchNorm1d(4)
    assert {k: (v.shape, v.dtype) for k, v in bn.state_dict().items()} == {
        k: (tuple(v.shape), np.dtype(str(v.dtype).replace("torch.", "")))
        for k, v in torch.nn.BatchNorm1d(4).state_dict().items()}
    np.testing.assert_array_equal(bn.running_var.numpy(), 1)


def test_dropout_statistics_and_eval_identity():
    sg.manual_seed(0)
    n, p = 200_000, 0.3
    x = sg.ones(n, requires_grad=True)
    layer = nn.Dropout(p)
    out = layer(x)
    kept = out.numpy() != 0
    assert abs(kept.mean() - (1 - p)) < 0.005
    np.testing.assert_allclose(out.numpy()[kept], 1 / (1 - p), rtol=1e-6)
    assert abs(out.numpy().mean() - 1) < 0.01  # the mean is preserved
    out.sum().backward()
    np.testing.assert_allclose(np.asarray(x.grad), out.numpy(), rtol=1e-6)  # grad = mask / (1-p)
    assert layer.eval()(x) is x
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), 0)
    sg.manual_seed(1)
    first = F.dropout(x, 0.5).numpy()
    sg.manual_seed(1)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), first)  # seeded by manual_seed


# ================================================================================================
# Module mechanics
# ================================================================================================

class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(3))
        self.blocks = torch.nn.ModuleList([torch.nn.Linear(3, 4), torch.nn.Linear(4, 3)])
        self.heads = torch.nn.ModuleDict({"a": torch.nn.Linear(3, 2), "b": torch.nn.Linear(3, 1)})
        self.norm = torch.nn.BatchNorm1d(3)
        self.tail = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU())
        self.shift = torch.nn.Parameter(torch.zeros(3))

    def forward(self, x):
        x = self.norm(x * self.scale + self.shift)
        for block in self.blocks:
            x = block(x).tanh()
        x = self.tail(x)
        return torch.cat([self.heads["a"](x), self.heads["b"](x)], dim=1)


class Net(nn.Module):
    """TorchNet with simplegrad's containers, or with plain Python lists and dicts."""

    def __init__(self, plain=False):
        super().__init__()
        self.scale = nn.Parameter(sg.ones(3))
        blocks = [nn.Linear(3, 4), nn.Linear(4, 3)]
        heads = {"a": nn.Linear(3, 2), "b": nn.Linear(3, 1)}
        self.blocks = blocks if plain else nn.ModuleList(blocks)
        self.heads = heads if plain else nn.ModuleDict(heads)
        self.norm = nn.BatchNorm1d(3)
        self.tail = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
        self.shift = nn.Parameter(sg.zeros(3))

    def forward(self, x):
        x = self.norm(x * self.scale + self.shift)
        for block in self.blocks:
            x = block(x).tanh()
        x = self.tail(x)
        return sg.cat([self.heads["a"](x), self.heads["b"](x)], dim=1)


@pytest.mark.parametrize("plain", [False, True], ids=["containers", "lists_and_dicts"])
def test_names_order_and_state_dict_keys_match_torch(plain):
    net, torch_net = Net(plain), TorchNet()
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in torch_net.named_parameters()]
    assert list(net.state_dict()) == list(torch_net.state_dict())
    assert [n for n, _ in net.named_buffers()] == [n for n, _ in torch_net.named_buffers()]
    assert len(list(net.parameters())) == 14 and len(list(net.buffers())) == 3
    assert all(isinstance(p, nn.Parameter) for p in net.parameters())
    with torch.no_grad():
        torch_net.scale.mul_(2)
    net.double()
    torch_net.double()
    net.load_state_dict(torch_net.state_dict())
    x = randn(5, 3)
    assert_close(net(sg.Tensor(x)), torch_net(torch.tensor(x)), what="forward")
    n_modules = 9 if plain else 11  # containers are modules of their own
    assert len(list(net.modules())) == n_modules


def test_parameters_in_tuples_and_nested_dicts_shared_once():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            shared = nn.Parameter(sg.zeros(2))
            self.pair = (shared, nn.Parameter(sg.ones(2)))
            self.table = {"x": {"y": nn.Parameter(sg.ones(1))}, "z": shared}
            self.inner = nn.Linear(2, 2)
            self.plain = sg.ones(3)  # a plain tensor is not state
            self.numbers = [1, 2.0, "three"]

    m = M()
    assert [n for n, _ in m.named_parameters()] == ["pair.0", "pair.1", "table.x.y",
                                                    "inner.weight", "inner.bias"]
    # state_dict lists every name, the shared parameter under both, as torch does
    assert list(m.state_dict()) == ["pair.0", "pair.1", "table.x.y", "table.z", "inner.weight",
                                    "inner.bias"]
    assert [n for n, _ in m.named_children()] == ["inner"]
    assert [n for n, _ in m.named_parameters(recurse=False)] == ["pair.0", "pair.1", "table.x.y"]


def test_train_eval_propagate_and_zero_grad():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net and not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net(sg.Tensor(randn(4, 3).astype(np.float32))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    grad = net.blocks[0].weight.grad
    net.zero_grad(set_to_none=False)
    assert net.blocks[0].weight.grad is grad and not np.any(np.asarray(grad))
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_repr_matches_torch():
    def build(lib):
        return lib.Sequential(lib.Linear(4, 8), lib.LayerNorm(8), lib.ReLU(), lib.Dropout(0.1),
                              lib.ModuleList([lib.BatchNorm1d(8), lib.Embedding(10, 3,
                                                                                padding_idx=0)]),
                              lib.LeakyReLU(0.2), lib.GELU(), lib.Softmax(dim=-1),
                              lib.Flatten(), lib.CrossEntropyLoss())
    assert repr(build(nn)) == repr(build(torch.nn))
    assert repr(nn.Parameter(sg.zeros(2))).startswith("Parameter containing:\ntensor(")


def test_load_state_dict_accepts_tensors_arrays_and_torch_and_writes_in_place():
    layer = nn.Linear(3, 2)
    weight_array = layer.weight.data
    alias = layer.weight.numpy()  # the same memory on NumPy-backed devices
    source = torch.nn.Linear(3, 2).state_dict()
    result = layer.load_state_dict({"weight": source["weight"], "bias": source["bias"].numpy()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert layer.weight.data is weight_array
    np.testing.assert_array_equal(alias, source["weight"].numpy())
    layer.load_state_dict(torch.nn.Linear(3, 2).state_dict(keep_vars=True))  # requires grad
    layer.load_state_dict({"weight": sg.Tensor(np.ones((2, 3))), "bias": [5.0, 6.0]})
    assert layer.weight.dtype == np.float32  # converted to the parameter's dtype
    np.testing.assert_array_equal(alias, 1)
    np.testing.assert_array_equal(layer.bias.numpy(), [5, 6])


def test_load_state_dict_errors_leave_the_module_unchanged():
    net = Net()
    before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    good = {k: np.full(v.shape, 7, v.dtype) for k, v in net.state_dict().items()}

    def unchanged():
        for k, v in net.state_dict().items():
            np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)

    missing = dict(good)
    del missing["blocks.1.bias"]
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "blocks.1.bias"'):
        net.load_state_dict(missing)
    unchanged()
    extra = dict(good, **{"blocks.7.weight": np.zeros(3)})
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "blocks.7.weight"'):
        net.load_state_dict(extra)
    unchanged()
    wrong = dict(good, **{"heads.a.weight": np.zeros((3, 2))})
    with pytest.raises(RuntimeError, match=r"size mismatch for heads.a.weight: copying a param "
                                           r"with shape \(3, 2\) from checkpoint, the shape in "
                                           r"current model is \(2, 3\)"):
        net.load_state_dict(wrong)
    unchanged()
    with pytest.raises(RuntimeError, match="size mismatch"):  # even when not strict
        net.load_state_dict(wrong, strict=False)
    unchanged()
    # not strict: the keys that match are loaded, the others reported
    result = net.load_state_dict({"scale": np.full(3, 2.0), "nope": np.zeros(1)}, strict=False)
    assert result.unexpected_keys == ["nope"] and "shift" in result.missing_keys
    np.testing.assert_array_equal(net.scale.numpy(), 2)
    net.load_state_dict(good)
    assert int(net.norm.num_batches_tracked.item()) == 7


def test_double_and_float_convert_parameters_and_floating_buffers():
    net = Net()
    params = list(net.parameters())
    assert net.double() is net
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]  # same objects
    assert net.norm.running_mean.dtype == np.float64
    assert net.norm.num_batches_tracked.dtype == np.int64
    assert all(p.dtype == np.float32 for p in net.float().parameters())


def test_to_moves_parameters_and_buffers_to_another_device(device):
    other = ReferenceDevice() if isinstance(device, sg.NumpyDevice) else sg.NumpyDevice()
    layer = nn.BatchNorm1d(3)
    weight = layer.weight
    assert layer.to(other, np.float64) is layer and layer.weight is weight
    for t in [*layer.parameters(), *layer.buffers()]:
        assert t.device == other
    assert layer.running_mean.dtype == np.float64 and layer.num_batches_tracked.dtype == np.int64
    out = layer(sg.Tensor(randn(4, 3), device=other))
    assert out.device == other and out.dtype == np.float64


def test_module_errors():
    with pytest.raises(NotImplementedError, match="does not define forward"):
        nn.Module()(1)
    with pytest.raises(TypeError, match="is not a Module"):
        nn.Sequential(nn.Linear(2, 2), lambda x: x)
    with pytest.raises(TypeError, match="must be a Tensor"):
        nn.Module().register_buffer("b", np.zeros(2))


def test_containers_behave_like_lists_and_dicts():
    blocks = nn.ModuleList([nn.Linear(2, 2)])
    blocks.append(nn.ReLU()).extend([nn.Tanh()])
    blocks.insert(0, nn.Linear(2, 2))
    assert len(blocks) == 4 and isinstance(blocks[-1], nn.Tanh)
    assert [n for n, _ in blocks.named_parameters()] == ["0.weight", "0.bias", "1.weight",
                                                         "1.bias"]
    assert len(blocks[1:]) == 3
    heads = nn.ModuleDict({"a": nn.Linear(2, 1)})
    heads["b"] = nn.Linear(2, 3)
    assert list(heads) == ["a", "b"] and "b" in heads and len(heads) == 2
    seq = nn.Sequential({"first": nn.Linear(2, 3), "act": nn.ReLU()})
    assert list(seq.state_dict()) == ["first.weight", "first.bias"]
    assert isinstance(seq[1], nn.ReLU) and len(seq[:1]) == 1
    assert seq(sg.ones(4, 2)).shape == (4, 3)


# ================================================================================================
# Losses against PyTorch
# ================================================================================================

REDUCTIONS = ["none", "mean", "sum"]


def labels(shape, n_classes, seed=0, ignore=None):
    t = np.random.default_rng(seed).integers(0, n_classes, size=shape)
    if ignore is not None:
        t.flat[::3] = ignore
    return t


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape, target_shape", [((5, 4), (5,)), ((3, 4, 2), (3, 2)),
                                                 ((4,), ())], ids=["2d", "3d", "unbatched"])
def test_cross_entropy_class_indices(reduction, shape, target_shape):
    t = labels(target_shape, 4)
    check(lambda x: F.cross_entropy(x, sg.Tensor(t), reduction=reduction), [shape],
          torch_fn=lambda x: TF.cross_entropy(x, torch.tensor(t), reduction=reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_ignore_index_smoothing_and_weight(reduction, label_smoothing, weighted):
    t = labels((7,), 4, ignore=-1)
    w = np.array([0.5, 2.0, 1.0, 3.0])
    sw, tw = (sg.Tensor(w), torch.tensor(w)) if weighted else (None, None)
    check(lambda x: F.cross_entropy(x, sg.Tensor(t), weight=sw, ignore_index=-1,
                                    reduction=reduction, label_smoothing=label_smoothing),
          [(7, 4)],
          torch_fn=lambda x: TF.cross_entropy(x, torch.tensor(t), weight=tw, ignore_index=-1,
                                              reduction=reduction,
                                              label_smoothing=label_smoothing))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_probability_targets(reduction, label_smoothing, weighted):
    probs = np.random.default_rng(3).dirichlet(np.ones(4), size=(5,))
    w = np.array([0.5, 2.0, 1.0, 3.0])
    sw, tw = (sg.Tensor(w), torch.tensor(w)) if weighted else (None, None)
    # the gradient with respect to the target probabilities is compared too
    check(lambda x, p: F.cross_entropy(x, p, weight=sw, reduction=reduction,
                                       label_smoothing=label_smoothing), None,
          inputs=[randn(5, 4), probs],
          torch_fn=lambda x, p: TF.cross_entropy(x, p, weight=tw, reduction=reduction,
                                                 label_smoothing=label_smoothing))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_extreme_logits_stay_finite(dtype, smoothing):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [3.0, 1e4, -1e4]])
    t = np.array([1, 2, 0])
    out = check(lambda x: F.cross_entropy(x, sg.Tensor(t), label_smoothing=smoothing), None,
                inputs=[x], dtype=dtype,
                torch_fn=lambda x: TF.cross_entropy(x, torch.tensor(t), label_smoothing=smoothing))
    assert np.isfinite(out.item())


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss(reduction):
    t = labels((6,), 3, ignore=-100)
    w = np.array([1.0, 0.5, 2.0])
    check(lambda x: F.nll_loss(x.log_softmax(1), sg.Tensor(t), reduction=reduction), [(6, 3)],
          torch_fn=lambda x: TF.nll_loss(x.log_softmax(1), torch.tensor(t), reduction=reduction))
    check(lambda x: F.nll_loss(x, sg.Tensor(t), weight=sg.Tensor(w), reduction=reduction),
          [(6, 3)],
          torch_fn=lambda x: TF.nll_loss(x, torch.tensor(t), weight=torch.tensor(w),
                                         reduction=reduction))


# Large logits in every float dtype: values and gradients against torch in the same dtype and
# against the float64 computation rounded to it; tolerances in helpers.ULP_TOLERANCES

LARGE_TARGETS = np.array([0, 3, 5, 1, 2])
LARGE_CLASS_WEIGHTS = np.random.default_rng(4).uniform(0.5, 2, 7)
LARGE_PROBABILITIES = np.random.default_rng(5).dirichlet(np.ones(7), size=5)


def _large_logits_loss(lib, case, dtype):
    """The loss `case` of lib (simplegrad's F or torch's TF) as a function of the logits."""
    tensor = sg.Tensor if lib is F else torch.tensor
    targets = tensor(LARGE_TARGETS)
    # weights and probabilities rounded to dtype, then in the dtype of the logits (float64 for
    # the float64 reference)
    weight = tensor(LARGE_CLASS_WEIGHTS.astype(dtype))
    probabilities = tensor(LARGE_PROBABILITIES.astype(dtype))
    if case == "indices":
        return lambda x: lib.cross_entropy(x, targets, reduction="none")
    if case == "weight_smoothing":
        return lambda x: lib.cross_entropy(x, targets, weight=weight.to(x.dtype),
                                           label_smoothing=0.1)
    if case == "probabilities":
        return lambda x: lib.cross_entropy(x, probabilities.to(x.dtype), reduction="sum")
    return lambda x: lib.nll_loss(x.log_softmax(1), targets, reduction="sum")


# float16: sums past 65504 are inf, as in torch
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda dtype: np.dtype(dtype).name)
@pytest.mark.parametrize("case", ["indices", "weight_smoothing", "probabilities", "nll_loss"])
def test_cross_entropy_large_logits_every_dtype(case, dtype):
    fn, torch_fn = _large_logits_loss(F, case, dtype), _large_logits_loss(TF, case, dtype)
    tol = ULP_TOLERANCES[dtype]
    for scale in LARGE_SCALES[dtype]:
        x = large_logits(scale)
        check(fn, None, torch_fn, inputs=[x], dtype=dtype, rtol=tol, atol=tol)
        # (in float16 at 3e4 the smoothing term's sum over the classes of weighted
        # log-probabilities, down to -2e5, is -inf in both libraries; the loss is finite)
        if dtype != np.float64 and not (case == "weight_smoothing" and scale > 65504 / 7):
            check(fn, None, in_float64(torch_fn), inputs=[x], dtype=dtype, rtol=tol, atol=tol)


def _textbook_bce_with_logits(x, t, weight=None, reduction="none", pos_weight=None):
    """-(pos_weight t log sigmoid(x) + (1 - t) log sigmoid(-x)) in torch: no term cancels."""
    loss = -((1.0 if pos_weight is None else pos_weight) * t * TF.logsigmoid(x)
             + (1 - t) * TF.logsigmoid(-x))
    loss = loss if weight is None else loss * weight
    return loss if reduction == "none" else loss.sum()


# float16: sums past 65504 are inf, as in torch
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda dtype: np.dtype(dtype).name)
@pytest.mark.parametrize("reduction", ["none", "sum"])
@pytest.mark.parametrize("options", [(), ("pos_weight",), ("weight", "pos_weight")])
def test_binary_cross_entropy_with_logits_large_logits_every_dtype(options, reduction, dtype):
    big = LARGE_SCALES[dtype][-1]
    row = [-big, -1e3, -100, -40, -17, -10, -3, -1, 0, 1, 3, 10, 17, 40, 100, 1e3, big]
    rng = np.random.default_rng(6)
    x = np.array([row] * 3)
    t = np.stack([np.zeros(17), np.ones(17), rng.uniform(0, 1, 17)])
    values = {"weight": rng.uniform(0.5, 2, 17), "pos_weight": rng.uniform(0.5, 3, 17)}
    sg_kwargs = {k: sg.Tensor(values[k].astype(dtype)) for k in options}
    torch_kwargs = {k: torch.tensor(values[k].astype(dtype)) for k in options}

    def fn(x, t):
        return F.binary_cross_entropy_with_logits(x, t, reduction=reduction, **sg_kwargs)

    def torch_fn(x, t):
        return TF.binary_cross_entropy_with_logits(x, t, reduction=reduction, **torch_kwargs)

    def textbook(x, t):
        return _textbook_bce_with_logits(x, t, reduction=reduction,
                                         **{k: v.to(x.dtype) for k, v in torch_kwargs.items()})
    # torch's (1 - t) x - log sigmoid(x) cancels where t = 0 and x < 0, off by up to ulp(x) / 2
    # there: that is below 32 eps (1 + |loss|) wherever e^x is not smaller still
    check(fn, None, torch_fn, inputs=[x, t], dtype=dtype, rtol=32 * EPS[dtype],
          atol=32 * EPS[dtype])
    # the textbook form in float64, rounded: values to the ulp tolerance relative (the smallest
    # losses, e^x at t = 0, included), gradients (sums of terms of size 1) also absolute
    tol, tiny = ULP_TOLERANCES[dtype], 2 * float(np.finfo(dtype).smallest_subnormal)
    check(fn, None, in_float64(textbook), inputs=[x, t], dtype=dtype, rtol=tol, atol=tiny,
          grad=False)
    check(fn, None, in_float64(textbook), inputs=[x, t], dtype=dtype, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda dtype: np.dtype(dtype).name)
def test_binary_cross_entropy_probabilities_near_0_and_1_every_dtype(dtype):
    eps = EPS[dtype]
    ends = [0.0, float(np.finfo(dtype).smallest_subnormal), 1e-30, 1e-7, 1 - eps / 2, 1.0]
    # (not below 1e-4: the reference device's x / y is x y^-1, and 1 / 1e-5 overflows float16)
    inside = [1e-4, 1e-3, 0.3, 0.5, 0.999, 1 - 1e-3]
    rng = np.random.default_rng(7)
    t = np.stack([np.zeros(12), np.ones(12), rng.uniform(0, 1, 12)])
    p = np.array([ends + inside] * 3)

    def fn(p, t):
        return F.binary_cross_entropy(p, t, reduction="none")

    def torch_fn(p, t):
        return TF.binary_cross_entropy(p, t, reduction="none")
    tol, tiny = ULP_TOLERANCES[dtype], 2 * float(np.finfo(dtype).smallest_subnormal)
    # values: log(1 - p) is log1p(-p), as torch, so that -log(1 - p) = p + ... for small p
    for reference in (torch_fn, in_float64(torch_fn)):
        check(fn, None, reference, inputs=[p, t], dtype=dtype, rtol=tol, atol=tiny, grad=False)
    # gradients where torch's are the derivative: torch divides by max(p (1 - p), 1e-12) (and
    # that 1e-12 is 0 in float16, nan at p = 0 and 1), where simplegrad differentiates the loss
    # with its logs clamped at -100
    check(fn, None, torch_fn, inputs=[p[:, len(ends):], t[:, len(ends):]], dtype=dtype,
          rtol=tol, atol=tol)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
def test_regression_losses(name, reduction):
    check(lambda x, y: getattr(F, name)(x, y, reduction=reduction), [(4, 3), (4, 3)],
          torch_fn=lambda x, y: getattr(TF, name)(x, y, reduction=reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(reduction):
    rng = np.random.default_rng(0)
    p, t = rng.uniform(0.02, 0.98, size=(4, 3)), rng.uniform(0, 1, size=(4, 3))
    check(lambda p, t: F.binary_cross_entropy(p, t, reduction=reduction), None, inputs=[p, t],
          torch_fn=lambda p, t: TF.binary_cross_entropy(p, t, reduction=reduction))
    w = rng.uniform(0.5, 2, size=(3,))
    check(lambda p: F.binary_cross_entropy(p, sg.Tensor(t), sg.Tensor(w), reduction), None,
          inputs=[p],
          torch_fn=lambda p: TF.binary_cross_entropy(p, torch.tensor(t), torch.tensor(w),
                                                     reduction=reduction))


def test_binary_cross_entropy_clamps_the_log_at_minus_100():
    p = np.array([0.0, 1.0, 0.5, 1e-50])
    t = np.array([1.0, 0.0, 1.0, 1.0])
    out = F.binary_cross_entropy(sg.Tensor(p), sg.Tensor(t), reduction="none")
    ref = TF.binary_cross_entropy(torch.tensor(p), torch.tensor(t), reduction="none")
    assert_close(out, ref)
    np.testing.assert_array_equal(out.numpy()[[0, 1, 3]], 100)
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.binary_cross_entropy(sg.Tensor([1.5]), sg.Tensor([1.0]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("options", [(), ("weight",), ("pos_weight",), ("weight", "pos_weight")])
def test_binary_cross_entropy_with_logits(reduction, dtype, options):
    rng = np.random.default_rng(1)
    x = rng.uniform(-4, 4, size=(5, 3))
    x[0] = [1e4, -1e4, 0.0]  # extreme logits, and 0 where |x| has a kink
    x[1] = [-1e4, 1e4, 30.0]
    t = rng.uniform(0, 1, size=(5, 3))
    t[:2] = [[0.0, 1.0, 1.0], [0.0, 1.0, 0.0]]
    values = {"weight": rng.uniform(0.5, 2, size=(3,)),
              "pos_weight": rng.uniform(0.5, 3, size=(3,))}
    sg_kwargs = {k: sg.Tensor(values[k].astype(dtype)) for k in options}
    torch_kwargs = {k: torch.tensor(values[k].astype(dtype)) for k in options}
    out = check(lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction=reduction,
                                                                **sg_kwargs),
                None, inputs=[x, t], dtype=dtype,
                torch_fn=lambda x, t: TF.binary_cross_entropy_with_logits(
                    x, t, reduction=reduction, **torch_kwargs))
    assert np.all(np.isfinite(out.numpy()))


def test_loss_modules_match_functions_and_torch_state_dict():
    w = np.array([1.0, 2.0, 0.5])
    x, t = randn(4, 3), np.array([0, 2, 1, 2])
    pairs = [(nn.CrossEntropyLoss(weight=w, label_smoothing=0.1),
              torch.nn.CrossEntropyLoss(weight=torch.tensor(w), label_smoothing=0.1)),
             (nn.NLLLoss(reduction="sum"), torch.nn.NLLLoss(reduction="sum"))]
    for loss, torch_loss in pairs:
        assert list(loss.state_dict()) == list(torch_loss.state_dict())
        assert_close(loss(sg.Tensor(x), sg.Tensor(t)), torch_loss(torch.tensor(x),
                                                                  torch.tensor(t)))
    y = randn(4, 3, seed=1)
    pos = np.array([1.0, 2.0, 3.0])
    pairs = [(nn.MSELoss(), torch.nn.MSELoss()),
             (nn.L1Loss(reduction="sum"), torch.nn.L1Loss(reduction="sum")),
             (nn.BCEWithLogitsLoss(pos_weight=pos),
              torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos))),
             (nn.BCELoss(), torch.nn.BCELoss())]
    for loss, torch_loss in pairs:
        sx, tx = (sg.Tensor(x).sigmoid(), torch.tensor(x).sigmoid()) if isinstance(
            loss, nn.BCELoss) else (sg.Tensor(x), torch.tensor(x))
        target = 1 / (1 + np.exp(-y))
        assert list(loss.state_dict()) == list(torch_loss.state_dict())
        assert_close(loss(sx, sg.Tensor(target)), torch_loss(tx, torch.tensor(target)))


def test_loss_errors():
    x = sg.Tensor(randn(3, 4))
    with pytest.raises(ValueError, match="reduction must be"):
        F.cross_entropy(x, sg.Tensor(np.array([0, 1, 2])), reduction="avg")
    with pytest.raises(IndexError, match="target 4 is out of bounds for 4 classes"):
        F.cross_entropy(x, sg.Tensor(np.array([0, 4, 2])))
    with pytest.raises(IndexError, match="target -2 is out of bounds"):
        F.nll_loss(x, sg.Tensor(np.array([0, -2, 2])))
    with pytest.raises(ValueError, match="needs a target of shape"):
        F.cross_entropy(x, sg.Tensor(np.array([0, 1])))
    with pytest.raises(ValueError, match="differ"):
        F.mse_loss(sg.Tensor(randn(3, 1)), sg.Tensor(randn(3)))


# ================================================================================================
# init
# ================================================================================================

def test_init_distributions():
    t = sg.zeros(400, 500)
    fan_in, fan_out = 500, 400
    sg.manual_seed(0)
    bound = np.sqrt(2.0) * np.sqrt(3.0 / fan_in)  # relu gain
    assert nn.init.kaiming_uniform_(t, nonlinearity="relu") is t
    w = t.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound
    np.testing.assert_allclose(w.std(), bound / np.sqrt(3), rtol=0.01)
    nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    np.testing.assert_allclose(t.numpy().std(), np.sqrt(2.0 / fan_out), rtol=0.01)
    nn.init.xavier_uniform_(t, gain=2.0)
    bound = 2.0 * np.sqrt(6.0 / (fan_in + fan_out))
    assert np.abs(t.numpy()).max() <= bound and np.abs(t.numpy()).max() > 0.999 * bound
    nn.init.xavier_normal_(t)
    np.testing.assert_allclose(t.numpy().std(), np.sqrt(2.0 / (fan_in + fan_out)), rtol=0.01)
    nn.init.normal_(t, mean=3.0, std=0.5)
    np.testing.assert_allclose([t.numpy().mean(), t.numpy().std()], [3.0, 0.5], rtol=0.01)
    nn.init.uniform_(t, -1.0, 2.0)
    assert t.numpy().min() >= -1.0 and t.numpy().max() < 2.0
    np.testing.assert_allclose(t.numpy().mean(), 0.5, atol=0.01)
    np.testing.assert_array_equal(nn.init.zeros_(t).numpy(), 0)
    np.testing.assert_array_equal(nn.init.ones_(t).numpy(), 1)
    assert t.dtype == np.float32


def test_init_is_seeded_in_place_and_gains_match_torch():
    a, b = sg.zeros(3, 4), sg.zeros(3, 4)
    memory = a.data
    sg.manual_seed(5)
    nn.init.xavier_uniform_(a)
    sg.manual_seed(5)
    nn.init.xavier_uniform_(b)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.data is memory
    nn.init.normal_(b, generator=np.random.default_rng(1))
    nn.init.normal_(a, generator=np.random.default_rng(1))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    for name, param in [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                        ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None),
                        ("conv2d", None)]:
        assert nn.init.calculate_gain(name, param) == pytest.approx(
            torch.nn.init.calculate_gain(name, param), rel=1e-12)
    with pytest.raises(ValueError, match="at least 2 dims"):
        nn.init.xavier_uniform_(sg.zeros(3))


# ================================================================================================
# save and load
# ================================================================================================

def test_save_load_round_trip(tmp_path):
    net = Net()
    obj = {"model": net.state_dict(), "epoch": 3, "lr": 0.125, "best": float("inf"),
           "name": "run", "flags": [True, None, (1, 2.5)], "steps": {0: np.arange(3), 1: 2},
           "scalar": np.float32(1.5)}
    path = tmp_path / "ckpt.pt"
    sg.save(obj, path)
    assert os.listdir(tmp_path) == ["ckpt.pt"]  # exactly at the path, nothing else left
    back = sg.load(path)
    assert list(back) == list(obj)
    assert back["epoch"] == 3 and back["lr"] == 0.125 and back["best"] == float("inf")
    assert back["name"] == "run" and back["flags"] == [True, None, (1, 2.5)]
    assert list(back["steps"]) == [0, 1] and back["steps"][1] == 2
    np.testing.assert_array_equal(back["steps"][0], np.arange(3))
    assert back["scalar"] == np.float32(1.5) and back["scalar"].dtype == np.float32
    assert list(back["model"]) == list(net.state_dict())
    for key, value in net.state_dict().items():
        assert isinstance(back["model"][key], sg.Tensor)
        assert back["model"][key].dtype == value.dtype
        np.testing.assert_array_equal(back["model"][key].numpy(), value.numpy())
    other = Net()
    other.load_state_dict(back["model"])
    x = sg.Tensor(randn(4, 3).astype(np.float32))
    net.eval(), other.eval()
    np.testing.assert_array_equal(other(x).numpy(), net(x).numpy())
    # numpy reads the archive too, by key
    with np.load(path) as archive:
        np.testing.assert_array_equal(archive["model.blocks.0.weight"],
                                      net.blocks[0].weight.numpy())


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    sg.save({"w": sg.ones(3)}, path)

    def fail_midway(file, arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(sg, "_write_npz", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        sg.save({"w": sg.zeros(3)}, path)
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # no temporary file left
    np.testing.assert_array_equal(sg.load(path)["w"].numpy(), 1)  # the old file, intact


def test_load_errors(tmp_path):
    good = tmp_path / "good.npz"
    sg.save({"w": sg.ones(100), "b": sg.zeros(5)}, good)
    data = good.read_bytes()
    for name, content in [("truncated.npz", data[:len(data) // 2]), ("text.npz", b"hello\n"),
                          ("empty.npz", b"")]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match="not a checkpoint|corrupt"):
            sg.load(tmp_path / name)
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        sg.load(tmp_path / "array.npy")
    with pytest.raises(FileNotFoundError):
        sg.load(tmp_path / "missing.npz")
    with pytest.raises(TypeError, match="cannot save a object"):
        sg.save({"x": object()}, tmp_path / "bad.npz")
    torch.save({"w": torch.ones(2)}, tmp_path / "torch.pt")  # a zip archive, but not of arrays
    with pytest.raises(ValueError, match="not a checkpoint.*files other than arrays"):
        sg.load(tmp_path / "torch.pt")
    np.savez(tmp_path / "plain.npz", a=np.arange(3), b=np.ones(2))  # no table of contents
    with pytest.raises(ValueError, match="not a checkpoint.*no table of contents"):
        sg.load(tmp_path / "plain.npz")


# ================================================================================================
# DataLoader
# ================================================================================================

def test_data_loader_batches_and_drop_last():
    x, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    ds = sg.TensorDataset(sg.Tensor(x), sg.Tensor(y))
    assert len(ds) == 10 and ds[3][1].item() == 3
    loader = sg.DataLoader(ds, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [b[0].shape for b in batches] == [(4, 2), (4, 2), (2, 2)]
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), y)
    dropped = sg.DataLoader(ds, batch_size=4, drop_last=True)
    assert len(dropped) == 2 and [b[1].shape for b in dropped] == [(4,), (4,)]
    with pytest.raises(ValueError, match="first dim"):
        sg.TensorDataset(sg.Tensor(x), sg.Tensor(np.arange(9)))


def test_data_loader_shuffle_is_reproducible():
    y = np.arange(30)
    ds = sg.TensorDataset(sg.Tensor(y * 2.0), sg.Tensor(y))

    def epoch(loader):
        return [b[1].numpy().tolist() for b in loader]

    a = sg.DataLoader(ds, batch_size=8, shuffle=True, generator=np.random.default_rng(0))
    b = sg.DataLoader(ds, batch_size=8, shuffle=True, generator=0)  # an int seeds a new one
    first = epoch(a)
    assert first == epoch(b) and epoch(a) == epoch(b)  # the same orders, epoch after epoch
    assert first != epoch(a)  # each epoch draws a new order
    assert sorted(sum(first, [])) == y.tolist() and sum(first, []) != y.tolist()
    for batch in a:  # the rows stay together
        np.testing.assert_array_equal(batch[0].numpy(), batch[1].numpy() * 2.0)
    sg.manual_seed(3)
    c = epoch(sg.DataLoader(ds, batch_size=8, shuffle=True))
    sg.manual_seed(3)
    assert epoch(sg.DataLoader(ds, batch_size=8, shuffle=True)) == c


def test_data_loader_collates_other_datasets():
    samples = [(np.full(2, i, np.float32), i, {"k": float(i)}) for i in range(5)]
    batches = list(sg.DataLoader(samples, batch_size=2))
    assert len(batches) == 3
    x, label, extra = batches[0]
    assert x.shape == (2, 2) and x.dtype == np.float32
    assert label.tolist() == [0, 1] and label.dtype == np.int64
    assert extra["k"].tolist() == [0.0, 1.0] and extra["k"].dtype == np.float32
    rows = [sg.Tensor(np.full(3, i)) for i in range(4)]
    stacked = list(sg.DataLoader(rows, batch_size=4, collate_fn=sg.stack))
    assert stacked[0].shape == (4, 3)


def test_namespaces():
    import simplegrad.nn.functional as functional
    import simplegrad.nn.init as init
    from simplegrad.nn import functional as F2

    assert functional is F and F2 is F and init is nn.init and nn.functional is F
    for name in ("nn", "save", "load", "DataLoader", "TensorDataset"):
        assert name in sg.__all__
