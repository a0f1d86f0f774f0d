"""Attention against PyTorch: F.scaled_dot_product_attention, MultiheadAttention,
TransformerEncoderLayer and TransformerEncoder.

Functions go through the helper `check` (forward and the gradient of every input). Modules are
compared by loading the PyTorch module's state dict (parameters first moved away from their
initial zeros and ones) into the simplegrad module, both float64, and comparing the outputs,
the attention weights, and the gradients of the inputs and of every parameter, matched by name.
Tolerances are the helper's for float64 (rtol 1e-9, atol 1e-11) unless a test says otherwise.
"""

import numpy as np
import pytest
from helpers import (
    assert_close,
    assert_param_grads_close,
    check,
    compare_outputs_and_backward,
    torch,
)

import simplegrad as sg
from simplegrad import nn

F = nn.functional
TF = torch.nn.functional

L, S, N, E, HEADS = 3, 4, 2, 8, 2


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def lib_of(t):
    return sg if isinstance(t, sg.Tensor) else torch


def as_lib(lib, array):
    return None if array is None else (sg.Tensor(array) if lib is sg else torch.tensor(array))


# ================================================================================================
# scaled_dot_product_attention
# ================================================================================================

def sdpa(attn_mask=None, **options):
    """fn(q, k, v) for `check`, with the mask made in the library of its inputs."""
    def fn(q, k, v):
        f = F if lib_of(q) is sg else TF
        return f.scaled_dot_product_attention(q, k, v, attn_mask=as_lib(lib_of(q), attn_mask),
                                              **options)
    return fn


def some_keys(shape, seed=0):
    """A random bool mask (True = attend) with at least one True in every row."""
    mask = np.random.default_rng(seed).random(shape) < 0.5
    mask[..., 0] = True
    return mask


QKV = [(N, HEADS, L, 5), (N, HEADS, S, 5), (N, HEADS, S, 6)]


@pytest.mark.parametrize("case, options", [
    ("no mask", {}),
    ("bool mask, broadcast (L, S)", dict(attn_mask=some_keys((L, S)))),
    ("bool mask, full shape", dict(attn_mask=some_keys((N, HEADS, L, S), seed=1))),
    ("float mask", dict(attn_mask=randn(N, 1, L, S, seed=2))),
    ("float mask with -inf", dict(attn_mask=np.where(some_keys((L, S), seed=3), 0.5, -np.inf))),
    ("is_causal", dict(is_causal=True)),
    ("scale", dict(scale=0.3)),
    ("scale and mask", dict(scale=2.0, attn_mask=some_keys((L, S), seed=4))),
])
def test_sdpa_matches_torch(device, case, options):
    check(sdpa(**options), QKV)


@pytest.mark.parametrize("shapes", [
    [(L, 5), (S, 5), (S, 3)],                    # no batch dims
    [(N, L, 5), (N, S, 5), (N, S, 3)],           # one batch dim
    [(S, 5), (S, 5), (S, 3)],                    # is_causal on a square
])
def test_sdpa_shapes_and_causal(device, shapes):
    check(sdpa(), shapes)
    check(sdpa(is_causal=True), shapes)


def test_sdpa_float_mask_gets_a_gradient(device):
    check(lambda q, k, v, m: lib_of(q).nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=m), QKV + [(L, S)])


def test_sdpa_query_that_attends_to_nothing_gets_zeros(device):
    """As torch 2.x: a fully masked row gives zeros, and zero gradients, not nan."""
    mask = some_keys((L, S))
    mask[1] = False
    out = check(sdpa(attn_mask=mask), QKV)
    np.testing.assert_array_equal(out.numpy()[:, :, 1], 0)


def test_sdpa_dropout_drops_and_rescales_weights(device):
    """With value the identity, the output is the attention weights: after dropout each one is
    either 0 or w / (1 - p); dropout_p=0 leaves them alone."""
    q, k = sg.Tensor(randn(64, 8)), sg.Tensor(randn(32, 8, seed=1))
    eye = sg.Tensor(np.eye(32))
    weights = F.scaled_dot_product_attention(q, k, eye).numpy()
    np.testing.assert_allclose(weights.sum(-1), 1, rtol=1e-12)
    sg.manual_seed(0)
    dropped = F.scaled_dot_product_attention(q, k, eye, dropout_p=0.25).numpy()
    kept = dropped != 0
    assert 0.65 < kept.mean() < 0.85  # 2048 draws: 0.75 +- 0.03 (three standard deviations)
    np.testing.assert_allclose(dropped[kept], weights[kept] / 0.75, rtol=1e-12)
    np.testing.assert_array_equal(F.scaled_dot_product_attention(q, k, eye, dropout_p=0.0)
                                  .numpy(), weights)


def test_sdpa_errors():
    q, k, v = (sg.Tensor(randn(*s)) for s in QKV)
    with pytest.raises(ValueError, match="attn_mask or is_causal=True, not both"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=some_keys((L, S)), is_causal=True)
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: expected .*\(2, 2, 3, 5\)"
                                         r", \(2, 2, 4, 4\)"):
        F.scaled_dot_product_attention(q, sg.Tensor(randn(N, HEADS, S, 4)), v)
    with pytest.raises(ValueError, match=r"attn_mask of shape \(3, 5\) does not broadcast"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=some_keys((L, 5)))
    with pytest.raises(TypeError, match="bool or floating"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((L, S), np.int64))


# ================================================================================================
# MultiheadAttention
# ================================================================================================

def perturbed(torch_module, seed=0):
    """torch_module in float64 with every parameter moved by N(0, 0.5^2), so that zero biases
    and unit norms are not what the comparison rests on."""
    torch_module.double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in torch_module.parameters():
            p.add_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * 0.5)
    return torch_module


def compare_module(module, torch_module, inputs, call, train=True, seed=1):
    """Load torch_module's state into module, call both with the input arrays (the same array
    object more than once stands for one tensor used in several roles), compare every output
    that is not None, then the gradients of the inputs and of every parameter."""
    module.double().train(train)
    torch_module.train(train)
    module.load_state_dict(torch_module.state_dict())
    made = {}
    for a in inputs:
        if id(a) not in made:
            made[id(a)] = (sg.Tensor(a.copy(), requires_grad=True),
                           torch.tensor(a.copy(), requires_grad=True))
    outs = call(module, sg, *[made[id(a)][0] for a in inputs])
    refs = call(torch_module, torch, *[made[id(a)][1] for a in inputs])
    outs, refs = (outs if isinstance(outs, tuple) else (outs,)), \
        (refs if isinstance(refs, tuple) else (refs,))
    compare_outputs_and_backward(outs, refs, seed)
    for i, (s, t) in enumerate(made.values()):
        assert_close(s.grad, t.grad, what=f"gradient of input {i}")
    assert_param_grads_close(module, torch_module)
    return outs


def mha_pair(**options):
    return nn.MultiheadAttention(E, HEADS, **options), \
        perturbed(torch.nn.MultiheadAttention(E, HEADS, **options))


def blocked(shape, seed=0):
    """A random bool mask in nn.MultiheadAttention's sense (True = may NOT attend) that leaves
    every query at least one key (torch gives nan for a query that attends to nothing)."""
    return ~some_keys(shape, seed)


ATTN_MASKS = {
    "none": (None, None, False),
    "bool attn_mask": (blocked((L, S)), None, False),
    "float attn_mask": (randn(L, S, seed=3), None, False),
    "3-D attn_mask": (blocked((N * HEADS, L, S), seed=4), None, False),
    "bool key_padding_mask": (None, blocked((N, S), seed=5), False),
    "float key_padding_mask": (None, randn(N, S, seed=6), False),
    "both masks": (blocked((L, S), seed=7), blocked((N, S), seed=8), False),
    "is_causal": (np.triu(np.ones((L, S), bool), 1), None, True),
}
WEIGHTS = {"no weights": dict(need_weights=False),
           "averaged weights": dict(need_weights=True),
           "weights per head": dict(need_weights=True, average_attn_weights=False)}


def mha_call(attn_mask, key_padding_mask, is_causal, **options):
    def call(module, lib, q, k, v):
        return module(q, k, v, key_padding_mask=as_lib(lib, key_padding_mask),
                      attn_mask=as_lib(lib, attn_mask), is_causal=is_causal, **options)
    return call


@pytest.mark.parametrize("masks", ATTN_MASKS, ids=str)
@pytest.mark.parametrize("weights", WEIGHTS, ids=str)
def test_mha_masks_and_weights_match_torch(device, masks, weights):
    module, torch_module = mha_pair()
    q, kv = randn(L, N, E), randn(S, N, E, seed=1)
    outs = compare_module(module, torch_module, [q, kv, kv],
                          mha_call(*ATTN_MASKS[masks], **WEIGHTS[weights]))
    expected = {"no weights": None, "averaged weights": (N, L, S),
                "weights per head": (N, HEADS, L, S)}[weights]
    assert (outs[1] is None if expected is None else outs[1].shape == expected)


@pytest.mark.parametrize("batch_first", [False, True], ids=["seq_first", "batch_first"])
@pytest.mark.parametrize("roles", ["self", "cross"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_mha_layouts_match_torch(device, batch_first, roles, bias):
    module, torch_module = mha_pair(batch_first=batch_first, bias=bias)
    shape = (N, L, E) if batch_first else (L, N, E)
    x = randn(*shape)
    if roles == "self":
        inputs = [x, x, x]
    else:
        inputs = [x, randn(*((N, S, E) if batch_first else (S, N, E)), seed=1),
                  randn(*((N, S, E) if batch_first else (S, N, E)), seed=2)]
    outs = compare_module(module, torch_module, inputs,
                          mha_call(None, blocked((N, S if roles == "cross" else L), seed=3),
                                   False))
    assert outs[0].shape == shape


@pytest.mark.parametrize("weights", WEIGHTS, ids=str)
def test_mha_unbatched_matches_torch(device, weights):
    module, torch_module = mha_pair()
    q, kv = randn(L, E), randn(S, E, seed=1)
    outs = compare_module(module, torch_module, [q, kv, kv],
                          mha_call(blocked((HEADS, L, S)), blocked((S,), seed=2), False,
                                   **WEIGHTS[weights]))
    assert outs[0].shape == (L, E)


def test_mha_is_causal_alone_makes_the_causal_mask(device):
    """torch needs the mask with is_causal (a hint); here is_causal alone makes it."""
    module = nn.MultiheadAttention(E, HEADS).double()
    x = sg.Tensor(randn(L, N, E))
    causal = np.triu(np.ones((L, L), bool), 1)
    out, weights = module(x, x, x, is_causal=True)
    ref, ref_weights = module(x, x, x, attn_mask=causal)
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
    np.testing.assert_array_equal(weights.numpy(), ref_weights.numpy())
    assert np.all(weights.numpy()[:, causal] == 0) and np.all(weights.numpy()[:, ~causal] > 0)


def test_mha_dropout_only_in_training(device):
    module, torch_module = mha_pair(dropout=0.5)
    q, kv = randn(L, N, E), randn(S, N, E, seed=1)
    compare_module(module, torch_module, [q, kv, kv], mha_call(None, None, False), train=False)
    x, y = sg.Tensor(q), sg.Tensor(kv)
    _, clean = module(x, y, y, average_attn_weights=False)
    module.train()
    sg.manual_seed(0)
    _, dropped = module(x, y, y, average_attn_weights=False)
    dropped, clean = dropped.numpy(), clean.numpy()
    kept = dropped != 0
    assert 0 < kept.sum() < kept.size
    np.testing.assert_allclose(dropped[kept], 2 * clean[kept], rtol=1e-12)


def test_mha_parameters_and_init_as_torch():
    module, torch_module = nn.MultiheadAttention(16, 4), torch.nn.MultiheadAttention(16, 4)
    assert list(module.state_dict()) == list(torch_module.state_dict())
    for key, value in module.state_dict().items():
        assert value.shape == tuple(torch_module.state_dict()[key].shape), key
    np.testing.assert_array_equal(module.in_proj_bias.numpy(), 0)
    np.testing.assert_array_equal(module.out_proj.bias.numpy(), 0)
    w = np.abs(module.in_proj_weight.numpy())
    bound = np.sqrt(6 / (16 + 48))  # xavier_uniform_ on (3 E, E)
    assert w.max() <= bound and w.max() > 0.95 * bound
    no_bias = nn.MultiheadAttention(16, 4, bias=False)
    assert list(no_bias.state_dict()) == list(torch.nn.MultiheadAttention(16, 4, bias=False)
                                              .state_dict())


def test_mha_errors():
    module = nn.MultiheadAttention(E, HEADS)
    x = sg.Tensor(randn(L, N, E).astype(np.float32))
    with pytest.raises(ValueError, match="embed_dim .10. must be a positive multiple of "
                                         "num_heads .3."):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match=r"MultiheadAttention: expected .*\(3, 2, 4\)"):
        module(sg.Tensor(randn(L, N, 4)), x, x)
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(3, 3\) or \(4, 3, 3\), "
                                         r"got \(3, 4\)"):
        module(x, x, x, attn_mask=np.zeros((L, S), bool))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(2, 3\), got"):
        module(x, x, x, key_padding_mask=np.zeros((N, S), bool))
    with pytest.raises(ValueError, match="different batch sizes"):
        module(x, sg.Tensor(randn(S, 3, E)), sg.Tensor(randn(S, 3, E)))
    with pytest.raises(NotImplementedError, match="kdim = vdim = embed_dim"):
        nn.MultiheadAttention(E, HEADS, kdim=4)


# ================================================================================================
# TransformerEncoderLayer and TransformerEncoder
# ================================================================================================

ACTIVATIONS = {"relu": ("relu", "relu"), "gelu": ("gelu", "gelu"),
               "callable": (lambda x: x.tanh(), lambda x: x.tanh())}


def encoder_layer_pair(activation="relu", **options):
    ours, theirs = ACTIVATIONS[activation]
    options = dict(dim_feedforward=12, dropout=0.0, **options)
    return nn.TransformerEncoderLayer(E, HEADS, activation=ours, **options), \
        perturbed(torch.nn.TransformerEncoderLayer(E, HEADS, activation=theirs, **options))


def encoder_call(src_mask=None, key_padding_mask=None, is_causal=False):
    def call(module, lib, x):
        return module(x, as_lib(lib, src_mask), src_key_padding_mask=as_lib(lib,
                                                                            key_padding_mask),
                      is_causal=is_causal)
    return call


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_norm", "pre_norm"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("batch_first", [False, True], ids=["seq_first", "batch_first"])
def test_encoder_layer_matches_torch(device, norm_first, activation, batch_first):
    module, torch_module = encoder_layer_pair(activation, norm_first=norm_first,
                                              batch_first=batch_first)
    x = randn(*((N, L, E) if batch_first else (L, N, E)))
    compare_module(module, torch_module, [x], encoder_call())


@pytest.mark.parametrize("masks", [
    dict(src_mask=blocked((L, L), seed=1)),
    dict(src_mask=randn(L, L, seed=2)),
    dict(key_padding_mask=blocked((N, L), seed=3)),
    dict(src_mask=np.triu(np.ones((L, L), bool), 1), key_padding_mask=blocked((N, L), seed=4),
         is_causal=True),
], ids=["bool src_mask", "float src_mask", "key_padding_mask", "causal and padding"])
@pytest.mark.parametrize("norm_first", [False, True], ids=["post_norm", "pre_norm"])
def test_encoder_layer_masks_match_torch(device, masks, norm_first):
    module, torch_module = encoder_layer_pair(norm_first=norm_first)
    compare_module(module, torch_module, [randn(L, N, E)], encoder_call(**masks))


def test_encoder_layer_unbatched_and_without_bias(device):
    module, torch_module = encoder_layer_pair("gelu", bias=False)
    assert list(module.state_dict()) == list(torch_module.state_dict())
    outs = compare_module(module, torch_module, [randn(L, E)], encoder_call())
    assert outs[0].shape == (L, E)


def test_encoder_layer_dropout_only_in_training(device):
    module = nn.TransformerEncoderLayer(E, HEADS, dim_feedforward=12, dropout=0.5).double()
    _, torch_module = encoder_layer_pair()
    torch_module.dropout.p = torch_module.dropout1.p = torch_module.dropout2.p = 0.5
    torch_module.self_attn.dropout = 0.5
    # eval: no dropout anywhere, so torch's output with the same weights is matched
    compare_module(module, torch_module, [randn(L, N, E)], encoder_call(), train=False)
    x = sg.Tensor(randn(L, N, E))
    clean = module(x).numpy()
    module.train()
    first, second = module(x).numpy(), module(x).numpy()
    assert not np.allclose(first, clean) and not np.allclose(first, second)
    module.eval()
    np.testing.assert_array_equal(module(x).numpy(), clean)


def test_encoder_layer_submodules_as_torch():
    module = nn.TransformerEncoderLayer(E, HEADS)
    torch_module = torch.nn.TransformerEncoderLayer(E, HEADS)
    names = [name for name, _ in module.named_children()]
    assert names == ["self_attn", "linear1", "dropout", "linear2", "norm1", "norm2", "dropout1",
                     "dropout2"]
    assert list(module.state_dict()) == list(torch_module.state_dict())
    assert module.linear1.out_features == 2048 and module.dropout.p == 0.1
    with pytest.raises(ValueError, match="activation should be 'relu', 'gelu'"):
        nn.TransformerEncoderLayer(E, HEADS, activation="swish")


@pytest.mark.parametrize("with_norm", [False, True], ids=["no_norm", "final_norm"])
def test_encoder_matches_torch(device, with_norm):
    layer = nn.TransformerEncoderLayer(E, HEADS, dim_feedforward=12, dropout=0.0)
    torch_layer = torch.nn.TransformerEncoderLayer(E, HEADS, dim_feedforward=12, dropout=0.0)
    encoder = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(E) if with_norm else None)
    torch_encoder = perturbed(torch.nn.TransformerEncoder(
        torch_layer, 2, norm=torch.nn.LayerNorm(E) if with_norm else None,
        enable_nested_tensor=False))
    assert list(encoder.state_dict()) == list(torch_encoder.state_dict())

    def call(module, lib, x):
        return module(x, mask=as_lib(lib, np.triu(np.ones((L, L), bool), 1)),
                      src_key_padding_mask=as_lib(lib, blocked((N, L), seed=3)), is_causal=True)

    compare_module(encoder, torch_encoder, [randn(L, N, E)], call)


def test_encoder_layers_are_independent_copies():
    layer = nn.TransformerEncoderLayer(E, HEADS, dim_feedforward=12)
    encoder = nn.TransformerEncoder(layer, 3)
    assert len(encoder.layers) == 3 and all(m is not layer for m in encoder.layers)
    first, second = encoder.layers[0], encoder.layers[1]
    assert first.linear1.weight is not second.linear1.weight
    np.testing.assert_array_equal(first.linear1.weight.numpy(), layer.linear1.weight.numpy())
    nn.init.zeros_(first.linear1.weight)
    assert np.any(second.linear1.weight.numpy() != 0) and np.any(layer.linear1.weight.numpy())
    assert len(list(encoder.parameters())) == 3 * len(list(layer.parameters()))
    assert first.linear1.weight.device is layer.linear1.weight.device  # devices are shared
