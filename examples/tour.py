"""A first look at simplegrad: fit a small MLP to a noisy sine, by hand.

A 1-32-1 network with a tanh hidden layer learns y = sin(x) + noise with plain gradient
descent written out in full (no optimizer classes): forward, backward(), then
``w.data -= lr * w.grad.data`` on each parameter and ``w.grad = None``. Before training,
the engine checks itself: the gradient of the loss with respect to the first layer's
weights is compared with a central finite difference.

    python examples/tour.py                 # 3,000 steps, about a second
    python examples/tour.py --steps 200 --seed 1
"""

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:
    import simplegrad as sg
except ImportError:  # not installed: use the simplegrad.py of this checkout
    sys.path.insert(0, ROOT)
    import simplegrad as sg
from device_choice import CHOICES, HELP, use_device  # noqa: E402  (beside this script)

from simplegrad import Tensor  # noqa: E402


def make_data(rng, n=128, noise=0.1):
    """n points of y = sin(x) + noise on [-3, 3], as (n, 1) float64 columns."""
    x = np.sort(rng.uniform(-3.0, 3.0, size=(n, 1)))
    y = np.sin(x) + noise * rng.standard_normal((n, 1))
    return x, y


def init_params(rng, hidden=32):
    """w1, b1, w2, b2 of a 1-hidden-32-1 MLP, float64, requiring grad."""
    return [
        Tensor(rng.standard_normal((1, hidden)), requires_grad=True),
        Tensor(np.zeros(hidden), requires_grad=True),
        Tensor(rng.standard_normal((hidden, 1)) / np.sqrt(hidden), requires_grad=True),
        Tensor(np.zeros(1), requires_grad=True),
    ]


def mse(params, x, y):
    """Mean squared error of the MLP tanh(x w1 + b1) w2 + b2 against y."""
    w1, b1, w2, b2 = params
    pred = (x @ w1 + b1).tanh() @ w2 + b2
    return ((pred - y) ** 2).mean()


def gradient_check(params, x, y, eps=1e-6):
    """Largest gap between backward()'s d loss / d w1 and a central finite difference."""
    w1 = params[0]
    mse(params, x, y).backward()
    analytic = w1.grad.numpy().copy()
    for p in params:
        p.grad = None
    numeric = np.zeros_like(analytic)
    with sg.no_grad():
        for i in np.ndindex(*w1.shape):
            saved = w1.data[i]
            w1.data[i] = saved + eps
            up = mse(params, x, y).item()
            w1.data[i] = saved - eps
            down = mse(params, x, y).item()
            w1.data[i] = saved
            numeric[i] = (up - down) / (2 * eps)
    return np.abs(analytic - numeric).max()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3000, help="gradient-descent steps")
    parser.add_argument("--lr", type=float, default=0.05, help="learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed for data and weights")
    parser.add_argument("--device", choices=CHOICES, default="numpy", help=HELP)
    args = parser.parse_args()
    use_device(args.device)

    rng = np.random.default_rng(args.seed)
    x_np, y_np = make_data(rng)
    x, y = Tensor(x_np), Tensor(y_np)  # data: requires_grad is False, as in PyTorch
    params = init_params(rng)

    error = gradient_check(params, x, y)
    print(f"gradient check: backward() vs central differences on w1, max error {error:.1e}")

    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        loss = mse(params, x, y)
        loss.backward()
        for p in params:
            p.data -= args.lr * p.grad.data  # in place: the array inside the tensor changes
            p.grad = None
        if step % 500 == 0 or step == 1:
            print(f"step {step:5d}  loss {loss.item():.4f}")

    with sg.no_grad():
        final = mse(params, x, y).item()
    noise = np.mean((np.sin(x_np) - y_np) ** 2)
    print(f"tour: fitted sin(x) with a 1-32-1 tanh MLP: MSE {final:.4f} after {args.steps} steps "
          f"(noise floor {noise:.4f}) in {time.perf_counter() - start:.1f} s on {Tensor.device}")


if __name__ == "__main__":
    main()
