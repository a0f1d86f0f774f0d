"""The spiral demo: a 2-1024-3 ReLU network learns three interleaved spiral arms with Adam.

The original simplegrad README's workload (examples/spiral_original.py is that program as
written): 600 points in three classes, full-batch training with Adam (lr 0.01) on the
cross-entropy written out as -sum(one_hot * log_softmax(logits)), in the original's
einsum-chaining style. It prints one line with the training accuracy and saves
``<out>/spiral.png``: the points over the decision regions the network learned.

    python examples/spiral.py                        # 100 epochs, a few seconds; out/spiral.png
    python examples/spiral.py --epochs 300 --hidden 256 --dtype float32 --seed 1
    python examples/spiral.py --device reference     # the twelve-primitive device
"""

import argparse
import os
import sys
import time

import matplotlib

matplotlib.use("Agg")  # figures go to files, never to a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:
    import simplegrad  # noqa: F401
except ImportError:  # not installed: use the simplegrad.py of this checkout
    sys.path.insert(0, ROOT)
from device_choice import CHOICES, HELP, use_device  # noqa: E402  (beside this script)

from simplegrad import Adam, Tensor, no_grad  # noqa: E402


def make_spirals(rng, n=200, noise=0.3):
    """The original README's data: three spiral arms of n points each, in the unit disc.

    Returns the points as the columns of a (2, 3n) array, and their labels 0, 1, 2.
    """
    labels = np.arange(3).repeat(n)
    t = np.linspace(0, 8 * np.pi, n).repeat(3) + labels / np.pi + noise * rng.standard_normal(3 * n)
    r = np.tile(np.linspace(0.0, 1.0, n), 3)
    return r * np.stack([np.sin(t), np.cos(t)]), labels


def init_params(rng, hidden, dtype):
    """w0, b0, w1, b1 drawn from N(0, 1) as in the original; Adam will make them require grad."""
    shapes = [(2, hidden), (hidden,), (hidden, 3), (3,)]
    return [Tensor(rng.standard_normal(shape).astype(dtype)) for shape in shapes]


def forward(params, x):
    """Logits (points, 3) of the points stored as the columns of x (2, points)."""
    w0, b0, w1, b1 = params
    return x.einsum("ji,jk->ik", w0).add(b0).relu().einsum("ij,jk->ik", w1).add(b1)


def cross_entropy(logits, one_hot):
    """Mean over points of -sum_k one_hot[k] * log_softmax(logits)[k]."""
    return one_hot.mul(logits.log_softmax(dim=1)).mul(-1.0).sum(dim=1).mean()


def accuracy(logits, labels):
    return float((logits.argmax(dim=1).numpy() == labels).mean())


def plot(params, X, labels, title, path, dtype, extent=1.5, steps=200):
    """The points over the decision regions of the network, on a steps x steps grid."""
    ticks = np.linspace(-extent, extent, steps)
    gx, gy = np.meshgrid(ticks, ticks)
    grid = Tensor(np.stack([gx.ravel(), gy.ravel()]).astype(dtype))
    with no_grad():
        regions = forward(params, grid).argmax(dim=1).numpy().reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.contourf(gx, gy, regions, levels=[-0.5, 0.5, 1.5, 2.5], cmap="brg", alpha=0.3)
    ax.scatter(X[0], X[1], c=labels, cmap="brg", s=10, edgecolors="k", linewidths=0.3)
    ax.set(xlim=(-extent, extent), ylim=(-extent, extent), aspect="equal", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--epochs", type=int, default=100, help="full-batch Adam steps")
    parser.add_argument("--hidden", type=int, default=1024, help="width of the hidden layer")
    parser.add_argument("--lr", type=float, default=0.01, help="Adam's learning rate")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                        help="float64 as the original, or float32")
    parser.add_argument("--seed", type=int, default=0, help="seed for the data and the weights")
    parser.add_argument("--device", choices=CHOICES, default="numpy", help=HELP)
    parser.add_argument("--out", default="out", help="folder for spiral.png")
    args = parser.parse_args()
    use_device(args.device)

    rng = np.random.default_rng(args.seed)
    X, labels = make_spirals(rng)
    x = Tensor(X.astype(args.dtype))                       # data: requires_grad is False
    one_hot = Tensor(np.eye(3, dtype=args.dtype)[labels])
    params = init_params(rng, args.hidden, args.dtype)
    optim = Adam(params, lr=args.lr)                       # marks them as requiring grad

    start = time.perf_counter()
    bar = tqdm(range(args.epochs), desc="spiral", unit="epoch")
    for _ in bar:
        logits = forward(params, x)
        loss = cross_entropy(logits, one_hot)
        optim.zero_grad()
        loss.backward()
        optim.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{accuracy(logits, labels):.1%}")
    bar.close()
    seconds = time.perf_counter() - start

    with no_grad():
        final = accuracy(forward(params, x), labels)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "spiral.png")
    title = (f"2-{args.hidden}-3 MLP, Adam, {args.epochs} epochs\n"
             f"{final:.1%} training accuracy")
    plot(params, X, labels, title, path, args.dtype)
    print(f"spiral: training accuracy {final:.1%} after {args.epochs} epochs "
          f"({seconds / max(args.epochs, 1) * 1e3:.1f} ms/epoch, {args.dtype}, "
          f"{Tensor.device}); figure saved to {path}")


if __name__ == "__main__":
    main()
