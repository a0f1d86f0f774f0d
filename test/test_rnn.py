"""Recurrent layers against PyTorch: LSTM, GRU, LSTMCell, GRUCell, and Tensor.unbind.

Each layer is compared by loading the PyTorch layer's state dict into the simplegrad layer
(both float64), running the same input (and initial state) through both, and comparing the
output, the final states, and the gradients of the input, of the initial states and of every
parameter, matched by name, for a random upstream gradient on every output. Tolerances are the
helper's for float64 (rtol 1e-9, atol 1e-11) unless a test says otherwise. Sizes are tiny, so
the reference device runs the same cases; the long-sequence tests run on NumPy only.
"""

import tracemalloc
import warnings

import numpy as np
import pytest
from helpers import assert_close, assert_param_grads_close, compare_outputs_and_backward, torch

import simplegrad as sg
from simplegrad import nn

SEQ, BATCH, FEATURES, HIDDEN = 3, 2, 3, 2


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def pair(make, **options):
    """A torch layer and a simplegrad layer holding its weights, both float64. Dropout warns
    for one layer in both libraries; that warning is not what these tests look at."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch_layer = make(torch.nn, **options).double()
        layer = make(nn, **options).double()
    layer.load_state_dict(torch_layer.state_dict())
    return layer, torch_layer


def compare(layer, torch_layer, x, states=(), seed=1):
    """Run x and the initial states (arrays, or () for none) through both layers; compare
    every output and every gradient. Returns simplegrad's outputs, flattened."""
    sx, tx = sg.Tensor(x.copy(), requires_grad=True), torch.tensor(x.copy(), requires_grad=True)
    s_states = [sg.Tensor(s.copy(), requires_grad=True) for s in states]
    t_states = [torch.tensor(s.copy(), requires_grad=True) for s in states]
    cell_pair = isinstance(layer, (nn.LSTM, nn.LSTMCell))
    s_hx = (tuple(s_states) if cell_pair else s_states[0]) if states else None
    t_hx = (tuple(t_states) if cell_pair else t_states[0]) if states else None
    outs, refs = layer(sx, s_hx), torch_layer(tx, t_hx)

    def flat(result):
        if isinstance(result, (tuple, list)):
            return [t for item in result for t in flat(item)]
        return [result]

    outs, refs = flat(outs), flat(refs)
    compare_outputs_and_backward(outs, refs, seed)
    assert_close(sx.grad, tx.grad, what="gradient of the input")
    for i, (s, t) in enumerate(zip(s_states, t_states)):
        assert_close(s.grad, t.grad, what=f"gradient of initial state {i}")
    assert_param_grads_close(layer, torch_layer)
    return outs


def sequence_input(batch_first, batched=True, seed=0):
    if not batched:
        return randn(SEQ, FEATURES, seed=seed)
    return randn(*((BATCH, SEQ) if batch_first else (SEQ, BATCH)), FEATURES, seed=seed)


def initial_states(mode, layers, directions, batched=True, seed=5):
    shape = (layers * directions,) + ((BATCH,) if batched else ()) + (HIDDEN,)
    return [randn(*shape, seed=seed + i) for i in range(2 if mode == "LSTM" else 1)]


# ================================================================================================
# LSTM and GRU
# ================================================================================================

CONFIGS = [
    dict(),
    dict(num_layers=2),
    dict(bidirectional=True),
    dict(num_layers=2, bidirectional=True, batch_first=True),
    dict(bias=False, batch_first=True),
    dict(num_layers=2, bidirectional=True, bias=False),
]


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in
                                                                    c.items()) or "default")
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
def test_rnn_matches_torch(device, mode, config, with_state):
    make = lambda lib, **kw: getattr(lib, mode)(FEATURES, HIDDEN, **kw)
    layer, torch_layer = pair(make, **config)
    x = sequence_input(config.get("batch_first", False))
    directions = 2 if config.get("bidirectional") else 1
    states = initial_states(mode, config.get("num_layers", 1), directions) if with_state else ()
    compare(layer, torch_layer, x, states)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
def test_rnn_unbatched_matches_torch(device, mode, with_state):
    options = dict(num_layers=2, bidirectional=True, batch_first=True)  # ignored unbatched
    layer, torch_layer = pair(lambda lib, **kw: getattr(lib, mode)(FEATURES, HIDDEN, **kw),
                              **options)
    states = initial_states(mode, 2, 2, batched=False) if with_state else ()
    outs = compare(layer, torch_layer, sequence_input(True, batched=False), states)
    assert outs[0].shape == (SEQ, 2 * HIDDEN) and outs[1].shape == (4, HIDDEN)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_rnn_dropout_zero_in_training_matches_torch(device, mode):
    layer, torch_layer = pair(lambda lib, **kw: getattr(lib, mode)(FEATURES, HIDDEN, **kw),
                              num_layers=2, dropout=0.0)
    layer.train(), torch_layer.train()
    compare(layer, torch_layer, sequence_input(False))


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_rnn_dropout_between_layers_only_in_training(device, mode):
    make = lambda lib, **kw: getattr(lib, mode)(FEATURES, HIDDEN, **kw)
    layer, torch_layer = pair(make, num_layers=2, dropout=0.5)
    plain, _ = pair(make, num_layers=2)
    plain.load_state_dict(layer.state_dict())
    x = sg.Tensor(sequence_input(False))
    sg.manual_seed(0)
    # eval: no dropout, so torch's output (which ignores p in eval) is matched
    layer.eval(), torch_layer.eval()
    compare(layer, torch_layer, sequence_input(False))
    # train: the second layer sees a dropped-out first layer, so its outputs differ from the
    # same weights without dropout, and from one call to the next
    layer.train()
    reference = plain(x)[0].numpy()
    first, second = layer(x)[0].numpy(), layer(x)[0].numpy()
    assert not np.allclose(first, reference) and not np.allclose(first, second)
    # the first layer's input is never dropped: with one layer, dropout changes nothing
    with pytest.warns(UserWarning, match="num_layers=1"):
        single = getattr(nn, mode)(FEATURES, HIDDEN, dropout=0.5).double()
    single_plain = getattr(nn, mode)(FEATURES, HIDDEN).double()
    single_plain.load_state_dict(single.state_dict())
    np.testing.assert_array_equal(single(x)[0].numpy(), single_plain(x)[0].numpy())


# ================================================================================================
# LSTMCell and GRUCell
# ================================================================================================

@pytest.mark.parametrize("mode", ["LSTMCell", "GRUCell"])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_cell_matches_torch(device, mode, batched, with_state, bias):
    layer, torch_layer = pair(lambda lib, **kw: getattr(lib, mode)(FEATURES, HIDDEN, **kw),
                              bias=bias)
    x = randn(BATCH, FEATURES) if batched else randn(FEATURES)
    count = 2 if mode == "LSTMCell" else 1
    shape = (BATCH, HIDDEN) if batched else (HIDDEN,)
    states = [randn(*shape, seed=3 + i) for i in range(count)] if with_state else ()
    compare(layer, torch_layer, x, states)


def test_cell_steps_equal_the_sequence_layer(device):
    """An LSTM over a sequence is its LSTMCell applied step by step (same weights)."""
    lstm, cell = nn.LSTM(FEATURES, HIDDEN).double(), nn.LSTMCell(FEATURES, HIDDEN).double()
    cell.load_state_dict({name[:-3]: value for name, value in lstm.state_dict().items()})
    x = sg.Tensor(sequence_input(False))
    output, (h_n, c_n) = lstm(x)
    h = c = sg.Tensor(np.zeros((BATCH, HIDDEN)))
    for t in range(SEQ):
        h, c = cell(x[t], (h, c))
        np.testing.assert_allclose(h.numpy(), output.numpy()[t], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c.numpy(), c_n.numpy()[0], rtol=1e-12, atol=1e-14)


# ================================================================================================
# Parameters, state dicts, init, errors
# ================================================================================================

@pytest.mark.parametrize("mode", ["LSTM", "GRU", "LSTMCell", "GRUCell"])
def test_state_dict_and_init_as_torch(mode):
    options = {} if mode.endswith("Cell") else dict(num_layers=2, bidirectional=True)
    layer = getattr(nn, mode)(5, 16, **options)
    torch_layer = getattr(torch.nn, mode)(5, 16, **options)
    assert list(layer.state_dict()) == list(torch_layer.state_dict())
    for (name, p), (_, tp) in zip(layer.state_dict().items(), torch_layer.state_dict().items()):
        assert p.shape == tuple(tp.shape), name
        assert p.dtype == np.float32
    # U(-1/sqrt(hidden), 1/sqrt(hidden)) for every parameter: inside the bound, and filling it
    values = np.concatenate([p.numpy().ravel() for p in layer.parameters()])
    bound = 1 / np.sqrt(16)
    assert np.abs(values).max() <= bound and np.abs(values).max() > 0.95 * bound
    assert abs(values.mean()) < 0.05 * bound and values.std() > 0.5 * bound
    # load_state_dict writes into the arrays forward reads
    layer.load_state_dict(torch_layer.state_dict())
    for p, tp in zip(layer.parameters(), torch_layer.parameters()):
        np.testing.assert_array_equal(p.numpy(), tp.detach().numpy())


def test_all_weights_and_repr():
    lstm = nn.LSTM(3, 4, num_layers=2, bias=False, batch_first=True, bidirectional=True)
    assert [len(w) for w in lstm.all_weights] == [2, 2, 2, 2]
    assert lstm.all_weights[1][0] is lstm.weight_ih_l0_reverse
    assert lstm.all_weights[2][1] is lstm.weight_hh_l1
    assert repr(lstm) == "LSTM(3, 4, num_layers=2, bias=False, batch_first=True, " \
                         "bidirectional=True)"
    assert repr(nn.GRUCell(3, 4)) == repr(torch.nn.GRUCell(3, 4))
    assert repr(nn.GRU(3, 4, num_layers=2)) == repr(torch.nn.GRU(3, 4, num_layers=2))


def test_replaced_parameter_is_used():
    """forward reads the parameters by name, so assigning a new one (as torch allows) works."""
    gru = nn.GRU(2, 3).double()
    x = sg.Tensor(randn(4, 1, 2))
    before = gru(x)[0].numpy()
    gru.weight_hh_l0 = nn.Parameter(sg.Tensor(np.zeros((9, 3))))
    assert not np.allclose(gru(x)[0].numpy(), before)
    assert any(p is gru.weight_hh_l0 for p in gru.parameters())


def test_errors_name_the_layer_and_the_shapes():
    lstm = nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match=r"LSTM: expected a 2-D \(unbatched\) or 3-D .*\(3,\)"):
        lstm(sg.Tensor(np.zeros(3)))
    with pytest.raises(ValueError, match=r"LSTM: expected an input of 3 features .*\(5, 2, 4\)"):
        lstm(sg.Tensor(np.zeros((5, 2, 4), np.float32)))
    h0 = sg.Tensor(np.zeros((1, 2, 4), np.float32))
    with pytest.raises(ValueError, match=r"LSTM: expected h_0 of shape \(2, 2, 4\) .*\(1, 2, 4\)"):
        lstm(sg.Tensor(np.zeros((5, 2, 3), np.float32)), (h0, h0))
    with pytest.raises(ValueError, match="LSTM: hx must be a tuple"):
        lstm(sg.Tensor(np.zeros((5, 2, 3), np.float32)), h0)
    gru = nn.GRU(3, 4, batch_first=True)
    with pytest.raises(ValueError, match=r"GRU: expected h_0 of shape \(1, 5, 4\)"):
        gru(sg.Tensor(np.zeros((5, 2, 3), np.float32)), sg.Tensor(np.zeros((1, 2, 4))))
    with pytest.raises(ValueError, match=r"GRUCell: expected an input of shape \(N, 3\)"):
        nn.GRUCell(3, 4)(sg.Tensor(np.zeros((2, 5))))
    with pytest.raises(ValueError, match=r"LSTMCell: expected c of shape \(2, 4\) .* \(2, 3\)"):
        nn.LSTMCell(3, 4)(sg.Tensor(np.zeros((2, 3))), (sg.Tensor(np.zeros((2, 4))),
                                                        sg.Tensor(np.zeros((2, 3)))))
    with pytest.raises(ValueError, match="GRU: dropout must be in"):
        nn.GRU(3, 4, dropout=1.5)
    with pytest.raises(ValueError, match="LSTM: input_size"):
        nn.LSTM(3, 0)


# ================================================================================================
# Long sequences: unbind, depth, memory
# ================================================================================================

@pytest.mark.parametrize("dim", [0, 1, -1])
def test_unbind_matches_torch(device, dim):
    x = randn(4, 3, 2)
    sx, tx = sg.Tensor(x.copy(), requires_grad=True), torch.tensor(x.copy(), requires_grad=True)
    pieces, refs = sx.unbind(dim), tx.unbind(dim)
    assert len(pieces) == len(refs)
    weights = [randn(*r.shape, seed=i) for i, r in enumerate(refs)]
    # the last piece is unused: its part of the gradient is zero, as torch's
    s_loss = sum((p * sg.Tensor(w) ** 2).sum() for p, w in zip(pieces[:-1], weights))
    t_loss = sum((p * torch.tensor(w) ** 2).sum() for p, w in zip(refs[:-1], weights))
    for p, r in zip(pieces, refs):
        assert_close(p, r, what="piece")
    s_loss.backward()
    t_loss.backward()
    assert_close(sx.grad, tx.grad, what="gradient")


def test_unbind_gradient_of_gradient(device):
    x = randn(3, 2)
    sx = sg.Tensor(x, requires_grad=True)
    loss = sum((p ** 3).sum() for p in sx.unbind(1))
    (g,) = sg.grad(loss, sx, create_graph=True)  # 3 x^2
    (h,) = sg.grad(g.sum(), sx)  # 6 x
    np.testing.assert_allclose(np.asarray(h), 6 * x, rtol=1e-12)


def long_lstm_step_count(device):
    if device.name == "reference":
        pytest.skip("1,000 steps are too slow on the reference device, whose indexing is a "
                    "one-hot product over the whole tensor")


def test_thousand_step_lstm_backpropagates(device):
    """1,000 steps (some 20,000 graph nodes deep): no RecursionError, and torch's gradients."""
    long_lstm_step_count(device)
    layer, torch_layer = pair(lambda lib, **kw: lib.LSTM(2, 3, **kw))
    x = randn(1000, 1, 2, seed=3)
    compare(layer, torch_layer, x)


def peak_memory(layer, steps):
    """tracemalloc's peak (bytes) over the forward and backward of `steps` LSTM steps."""
    x = sg.Tensor(randn(steps, 4, 8, seed=steps))
    layer.zero_grad()
    tracemalloc.start()
    try:
        output, (h, c) = layer(x)
        (output.sum() + c.sum()).backward()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_grows_linearly_with_the_sequence(device):
    """Peak memory of forward + backward for 1,000 steps is at most 5 times that of 250:
    linear growth gives 4, any quadratic term 16."""
    long_lstm_step_count(device)
    layer = nn.LSTM(8, 16).double()
    peak_memory(layer, 50)  # warm caches (einsum plans, imports) outside the measurement
    short, long = peak_memory(layer, 250), peak_memory(layer, 1000)
    assert long < 5 * short, f"peak memory {long} bytes for 1,000 steps, {short} for 250"


def test_backward_scatters_grow_linearly_with_the_sequence(device, monkeypatch):
    """The elements written by indexing's backward (getitem_scatter) and by concatenation
    (the step gradients stacked by unbind, the cell's gate gradients) over a whole backward
    pass: linear in the steps (ratio 4 from 250 to 1,000 steps), where slicing each step out
    of the projected input by indexing would scatter into the whole sequence at every step
    (ratio 16)."""
    long_lstm_step_count(device)
    layer = nn.LSTM(8, 16).double()
    written = [0]
    scatter, concatenate = device.getitem_scatter, device.concatenate

    def counting(g, shape, key):
        written[0] += int(np.prod(shape))
        return scatter(g, shape, key)

    def counting_concatenate(arrays, axis):
        out = concatenate(arrays, axis)
        written[0] += int(np.prod(out.shape))
        return out

    monkeypatch.setattr(device, "getitem_scatter", counting)
    monkeypatch.setattr(device, "concatenate", counting_concatenate)

    def elements(steps):
        written[0] = 0
        output, _ = layer(sg.Tensor(randn(steps, 4, 8)))
        output.sum().backward()
        return written[0]

    short, long = elements(250), elements(1000)
    assert 0 < long <= 4.1 * short, f"{long} elements scattered for 1,000 steps, {short} for 250"


def test_lstm_gradients_of_gradients(device):
    """create_graph through nn.LSTM and nn.LSTMCell: the fused step's rules then differentiate
    the composite cell formula, so second derivatives match finite differences."""
    layer = nn.LSTM(3, 4).double()
    x = sg.Tensor(randn(4, 2, 3), requires_grad=True)
    # with and without a graph, the first derivatives agree (two code paths)
    upstream = sg.Tensor(randn(4, 2, 4, seed=3))
    plain = sg.grad(layer(x)[0], [x, layer.weight_hh_l0], upstream)
    graphed = sg.grad(layer(x)[0], [x, layer.weight_hh_l0], upstream, create_graph=True)
    for a, b in zip(plain, graphed):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-12, atol=1e-14)
    assert sg.gradgradcheck(lambda x: layer(x)[0], x)
    cell = nn.LSTMCell(3, 4).double()
    h0 = sg.Tensor(randn(2, 4, seed=1), requires_grad=True)
    c0 = sg.Tensor(randn(2, 4, seed=2), requires_grad=True)
    assert sg.gradgradcheck(lambda x, h, c: cell(x, (h, c))[1], (x[0], h0, c0))
