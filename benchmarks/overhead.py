"""Per-op overhead and big-matmul speed of simplegrad against PyTorch, in one run.

    python benchmarks/overhead.py            # both workloads
    python benchmarks/overhead.py --ops 2000 # a shorter elementwise chain
    python benchmarks/overhead.py --against old/simplegrad.py  # a change's per-op cost

With --against, the elementwise chains of this simplegrad.py and of another copy of the file (an
earlier commit, say) are timed in the same run, alternating, and their per-op times compared: the
cost of an engine change, with the machine's drift falling on both alike.

1. 10,000 elementwise ops on 1-element tensors, forward plus backward, in two chains:
   "params": y = tanh(y * w + b) repeated (three ops a step), where w and b require grad,
   so every step also accumulates their gradients (an RNN's pattern);
   "input": y = (y * c + d) - e repeated, where only the input requires grad.
   Target: at most 3x PyTorch's time.
2. A chain of 512x512 matmuls, forward plus backward, float32 and float64. Target: at most
   1.2x PyTorch's time. The same products written by hand in NumPy are timed too: they are
   the floor that NumPy's BLAS (OpenBLAS) and the C allocator set, whatever the engine does.
"""

import argparse
import importlib.util

import numpy as np
import torch
from common import compare, machine, report

import simplegrad as sg


def elementwise_chain(lib, steps, dtype, variant, module=sg):
    if lib == "torch":
        def make(v, grad):
            return torch.tensor([v], dtype=dtype, requires_grad=grad)
    else:
        def make(v, grad):
            return module.Tensor(np.array([v], dtype=dtype), requires_grad=grad)
    params = variant == "params"
    x, w, b, e = make(0.5, True), make(0.9, params), make(0.1, params), make(0.05, False)

    def run():
        y = x
        if params:
            for _ in range(steps):
                y = (y * w + b).tanh()
        else:
            for _ in range(steps):
                y = (y * w + b) - e
        y.sum().backward()
        x.grad = w.grad = b.grad = None
    return run


def matmul_chain(lib, n, depth, dtype):
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((n, n)).astype(dtype)
    ws0 = [(rng.standard_normal((n, n)) / np.sqrt(n)).astype(dtype) for _ in range(depth)]
    if lib == "numpy":
        # the same 23 products written by hand, no autograd, keeping every weight gradient
        # as an optimizer needs them: the floor that NumPy's BLAS and allocator set
        def run_by_hand():
            ys = [x0]
            for w in ws0:
                ys.append(ys[-1] @ w)
            g, grads = np.ones_like(ys[-1]), []
            for i in reversed(range(depth)):
                grads.append(ys[i].T @ g)
                if i:
                    g = g @ ws0[i].T
            return grads
        return run_by_hand
    if lib == "torch":
        x = torch.from_numpy(x0)
        ws = [torch.from_numpy(w).requires_grad_() for w in ws0]
    else:
        x = sg.Tensor(x0)
        ws = [sg.Tensor(w, requires_grad=True) for w in ws0]

    def run():
        y = x
        for w in ws:
            y = y @ w
        y.sum().backward()
        for w in ws:
            w.grad = None
    return run


def against(path, steps, repeat):
    """Per-op time of this simplegrad.py and of the one at path, in one run."""
    spec = importlib.util.spec_from_file_location("simplegrad_other", path)
    other = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)
    for variant in ("params", "input"):
        best = compare({"this": elementwise_chain("sg", steps, np.float32, variant),
                        "other": elementwise_chain("sg", steps, np.float32, variant, other)},
                       repeat, rounds=6)
        ours, theirs = (best[k] / (3 * steps) * 1e6 for k in ("this", "other"))
        print(f"{3 * steps} ops on 1 element ({variant}), fwd+bwd, per op: this {ours:.3f} us, "
              f"{path} {theirs:.3f} us: {ours / theirs - 1:+.1%}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=10_000, help="elementwise ops in the chain")
    parser.add_argument("--size", type=int, default=512, help="matrix size of the matmul chain")
    parser.add_argument("--depth", type=int, default=8, help="matmuls in the chain")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs; the best is kept")
    parser.add_argument("--against", metavar="PATH",
                        help="another simplegrad.py whose per-op time to compare with this one's")
    args = parser.parse_args()
    print(machine())
    if args.against:
        return against(args.against, args.ops // 3, args.repeat)
    steps = args.ops // 3
    for variant in ("params", "input"):
        best = compare({"simplegrad": elementwise_chain("simplegrad", steps, np.float32, variant),
                        "torch": elementwise_chain("torch", steps, torch.float32, variant)},
                       args.repeat)
        ours, theirs = best["simplegrad"], best["torch"]
        name = f"{3 * steps} ops on 1 element ({variant}), fwd+bwd"
        report(name, ours, theirs, 3.0)
        print(f"{'':<44} per op: simplegrad {ours / (3 * steps) * 1e6:.2f} us, "
              f"torch {theirs / (3 * steps) * 1e6:.2f} us")
    for dtype in (np.float32, np.float64):
        best = compare({lib: matmul_chain(lib, args.size, args.depth, dtype)
                        for lib in ("simplegrad", "torch", "numpy")}, args.repeat)
        ours, theirs, by_hand = best["simplegrad"], best["torch"], best["numpy"]
        name = f"{args.depth} matmuls {args.size}x{args.size} {np.dtype(dtype).name}, fwd+bwd"
        report(name, ours, theirs, 1.2)
        print(f"{'':<44} NumPy by hand, no autograd: {by_hand * 1e3:.3f} ms, "
              f"{by_hand / theirs:.2f}x torch; simplegrad adds {ours / by_hand - 1:+.0%}")


if __name__ == "__main__":
    main()
