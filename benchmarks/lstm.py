"""LSTM training speed of simplegrad against PyTorch.

    python benchmarks/lstm.py                  # both measurements
    python benchmarks/lstm.py --repeat 10      # fewer timed steps

Input 32, hidden 128, sequence 50, batch 32, float32; one forward and backward pass per step
(loss: the mean of the last hidden state), gradients for the weights only. Both libraries run
in this process.

1. The cell written out: the same code for both libraries, one step at a time: gates =
   x_t W_ih^T + h W_hh^T + b, then sigmoid/tanh on four slices, c = f c + i g, h = o tanh(c).
   Target: at most 2x PyTorch's time for the same written-out cell.
2. The library's own layer, `nn.LSTM` in each (PyTorch's is one fused C++ kernel): reported
   against PyTorch's nn.LSTM; simplegrad's should approach it.
"""

import argparse

import numpy as np
from common import compare, machine, report

INPUT, HIDDEN, SEQ, BATCH = 32, 128, 50, 32


def data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((SEQ, BATCH, INPUT), dtype=np.float32)
    bound = 1 / np.sqrt(HIDDEN)
    w_ih = rng.uniform(-bound, bound, (4 * HIDDEN, INPUT)).astype(np.float32)
    w_hh = rng.uniform(-bound, bound, (4 * HIDDEN, HIDDEN)).astype(np.float32)
    b = rng.uniform(-bound, bound, (4 * HIDDEN,)).astype(np.float32)
    return x, w_ih, w_hh, b


def library(lib):
    """(module, tensor from array, tensor from array with requires_grad, zeros) for `lib`."""
    if lib == "torch":
        import torch
        return (torch, torch.from_numpy,
                lambda a: torch.from_numpy(a).requires_grad_(), lambda *s: torch.zeros(s))
    import simplegrad as sg
    return (sg, sg.Tensor, lambda a: sg.Tensor(a, requires_grad=True),
            lambda *s: sg.Tensor(np.zeros(s, np.float32)))


def written_out_step(lib):
    """A function doing one forward and backward pass of the written-out cell in `lib`."""
    _, tensor, param, zeros = library(lib)
    x, w_ih, w_hh, b = data()
    x, w_ih, w_hh, b = tensor(x), param(w_ih), param(w_hh), param(b)
    H = HIDDEN

    def run():
        for p in (w_ih, w_hh, b):
            p.grad = None
        h, c = zeros(BATCH, H), zeros(BATCH, H)
        for t in range(SEQ):
            gates = x[t] @ w_ih.T + h @ w_hh.T + b
            i, f = gates[:, :H].sigmoid(), gates[:, H:2 * H].sigmoid()
            g, o = gates[:, 2 * H:3 * H].tanh(), gates[:, 3 * H:].sigmoid()
            c = f * c + i * g
            h = o * c.tanh()
        h.mean().backward()
    return run


def layer_step(lib):
    """A function doing one forward and backward pass of `lib`'s own nn.LSTM, or None when
    that library has no nn.LSTM."""
    module, tensor, _, _ = library(lib)
    if not hasattr(module.nn, "LSTM"):
        return None
    module.manual_seed(0)
    lstm = module.nn.LSTM(INPUT, HIDDEN)
    x = tensor(data()[0])

    def run():
        for p in lstm.parameters():
            p.grad = None
        _, (h, _) = lstm(x)
        h.mean().backward()
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="timed steps; the best is kept")
    args = parser.parse_args()
    print(machine())
    shape = f"input {INPUT}, hidden {HIDDEN}, seq {SEQ}, batch {BATCH}"
    best = compare({lib: written_out_step(lib) for lib in ("simplegrad", "torch")}, args.repeat)
    report(f"written-out cell, {shape}", best["simplegrad"], best["torch"], 2.0)
    layers = {lib: layer_step(lib) for lib in ("simplegrad", "torch")}
    if layers["simplegrad"] is None:
        print("nn.LSTM: simplegrad has no nn.LSTM; skipped")
        return
    best_layer = compare(layers, args.repeat)
    ratio = best_layer["simplegrad"] / best_layer["torch"]
    print(f"{'nn.LSTM (torch: fused kernel)':<44} simplegrad "
          f"{best_layer['simplegrad'] * 1e3:9.3f} ms   torch {best_layer['torch'] * 1e3:9.3f} ms"
          f"   ratio {ratio:5.2f}x  (no target; simplegrad's written-out cell above: "
          f"{best['simplegrad'] * 1e3:.3f} ms)")


if __name__ == "__main__":
    main()
