"""The README's spiral workload, simplegrad against PyTorch, in one run.

    python benchmarks/spiral.py               # float32 and float64
    python benchmarks/spiral.py --dtype float32 --epochs 20

One epoch: 600 points, a 2-1024-3 ReLU network, full batch, forward, the cross-entropy
written as -sum(one_hot * log_softmax(logits)) averaged over points, zero_grad, backward and
an Adam step (lr 0.01). simplegrad runs the README's einsum chain; PyTorch runs the same
network as ``x.T @ w0 + b0`` ... with torch.optim.Adam. Both start from the same arrays.
Target: at most 1.5x PyTorch's time per epoch. The same epoch written by hand in NumPy (the
gradients worked out on paper, Adam in place) is timed too: the floor that NumPy sets,
whatever the engine does.
"""

import argparse

import numpy as np
import torch
from common import compare, machine, report

import simplegrad as sg


def make_problem(dtype, points=200, hidden=1024, seed=0):
    """The README's spiral data (2, 3 * points), one-hot labels and N(0, 1) weights."""
    rng = np.random.default_rng(seed)
    labels = np.arange(3).repeat(points)
    t = (np.linspace(0, 8 * np.pi, points).repeat(3) + labels / np.pi
         + 0.3 * rng.standard_normal(3 * points))
    r = np.tile(np.linspace(0.0, 1.0, points), 3)
    X = (r * np.stack([np.sin(t), np.cos(t)])).astype(dtype)
    y = np.eye(3, dtype=dtype)[labels]
    weights = [rng.standard_normal(shape).astype(dtype)
               for shape in [(2, hidden), (hidden,), (hidden, 3), (3,)]]
    return X, y, weights


def simplegrad_epochs(X, y, weights, epochs):
    x, one_hot = sg.Tensor(X), sg.Tensor(y)
    w0, b0, w1, b1 = params = [sg.Tensor(w.copy()) for w in weights]
    optim = sg.Adam(params, lr=0.01)

    def run():
        for _ in range(epochs):
            out = x.einsum("ji,jk->ik", w0).add(b0).relu().einsum("ij,jk->ik", w1).add(b1)
            loss = one_hot.mul(out.logsoftmax()).mul(-1.0).sum(axis=1).mean()
            optim.zero_grad()
            loss.backward()
            optim.step()
    return run


def torch_epochs(X, y, weights, epochs):
    x, one_hot = torch.from_numpy(X), torch.from_numpy(y)
    w0, b0, w1, b1 = params = [torch.tensor(w, requires_grad=True) for w in weights]
    optim = torch.optim.Adam(params, lr=0.01)

    def run():
        for _ in range(epochs):
            out = (x.T @ w0 + b0).relu() @ w1 + b1
            loss = -(one_hot * out.log_softmax(dim=1)).sum(dim=1).mean()
            optim.zero_grad()
            loss.backward()
            optim.step()
    return run


def numpy_epochs(X, y, weights, epochs, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8):
    """The same epoch by hand: forward, the gradients worked out on paper, Adam in place."""
    params = [w.copy() for w in weights]
    moments = [(np.zeros_like(w), np.zeros_like(w)) for w in weights]
    n, step = X.shape[1], 0

    def run():
        nonlocal step
        w0, b0, w1, b1 = params
        for _ in range(epochs):
            h = X.T @ w0 + b0
            a = np.maximum(h, 0)
            out = a @ w1 + b1
            e = np.exp(out - out.max(axis=1, keepdims=True))
            g_out = (e / e.sum(axis=1, keepdims=True) - y) / n  # one-hot rows sum to 1
            g_a = g_out @ w1.T
            g_a *= h > 0
            grads = [X @ g_a, g_a.sum(axis=0), a.T @ g_out, g_out.sum(axis=0)]
            step += 1
            step_size = lr / (1 - beta1 ** step)
            root_bias = (1 - beta2 ** step) ** 0.5
            for p, g, (m, v) in zip(params, grads, moments):
                m *= beta1
                m += (1 - beta1) * g
                v *= beta2
                v += (1 - beta2) * g * g
                p -= step_size * m / (np.sqrt(v) / root_bias + eps)
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["float32", "float64"], action="append",
                        help="dtype to time (repeatable; default: both)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs in one timed run")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs; the best is kept")
    parser.add_argument("--rounds", type=int, default=3, help="rounds the libraries alternate")
    args = parser.parse_args()
    print(machine())
    for dtype in args.dtype or ["float32", "float64"]:
        X, y, weights = make_problem(dtype)
        fns = {"simplegrad": simplegrad_epochs(X, y, weights, args.epochs),
               "torch": torch_epochs(X, y, weights, args.epochs),
               "numpy": numpy_epochs(X, y, weights, args.epochs)}
        best = compare(fns, args.repeat, args.rounds)
        ours, theirs, by_hand = (best[lib] / args.epochs
                                 for lib in ("simplegrad", "torch", "numpy"))
        report(f"spiral 2-1024-3 Adam {dtype}, per epoch", ours, theirs, 1.5)
        print(f"{'':<44} NumPy by hand, no autograd: {by_hand * 1e3:.3f} ms, "
              f"{by_hand / theirs:.2f}x torch; simplegrad adds {ours / by_hand - 1:+.0%}")


if __name__ == "__main__":
    main()
