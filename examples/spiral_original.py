"""The original simplegrad README's program, as written, running on this simplegrad.

Three interleaved spiral arms of 200 points each, a 2-1024-3 ReLU network trained with Adam
for 100 epochs in the original's chaining style, then the decision regions on a 100x100
grid. The only changes to the original: a fixed seed, a printed training accuracy, the figure
saved (headless, matplotlib's Agg backend) instead of shown, and spacing and import order as
PEP 8 and ruff want.

    python examples/spiral_original.py                  # writes out/spiral_original.png
    python examples/spiral_original.py out/figure.png   # or SPIRAL_FIGURE=out/figure.png

examples/spiral.py is the polished version with options, a progress bar and a timing.
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")  # no window: the figure goes to a file

import numpy as np  # noqa: E402

try:
    import simplegrad  # noqa: F401
except ImportError:  # not installed: use the simplegrad.py of this checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

np.random.seed(0)

# ---- the original README from here on ------------------------------------------------------

# Generate nonlinear spiral data:
y_true = np.arange(3).repeat(200)
t = np.linspace(0, 4*2*np.pi, 200).repeat(3) + y_true/np.pi + np.random.randn(200 * 3) * 0.3
r = np.tile(np.linspace(0.0, 1, 200), 3)
X = r * np.stack([np.sin(t), np.cos(t)])

# Initialize weights and train model for 100 epochs:
from simplegrad import Adam, Tensor  # noqa: E402

w0 = Tensor(np.random.randn(2, 1024))
b0 = Tensor(np.random.randn(1024))
w1 = Tensor(np.random.randn(1024, 3))
b1 = Tensor(np.random.randn(3))

optim = Adam([w0, b0, w1, b1])

# one-hot encode
y = np.eye(3)[y_true]

for epoch in range(100):  # noqa: B007 (the original's loop, as written)
    out = Tensor(X).einsum("ji,jk->ik", w0).add(b0).relu().einsum("ij,jk->ik", w1).add(b1)

    # Categorical cross-entropy loss
    loss = Tensor(y).mul(out.logsoftmax()).mul(-1.0).sum(axis=1).mean()

    optim.zero_grad()
    loss.backward()
    optim.step()

# Finally, visualize the spiral data together with the decision boundary for all 3 classes:
import matplotlib.pyplot as plt  # noqa: E402

xy = np.linspace(-1.5, 1.5, 100)
xy = np.meshgrid(xy, xy)

out = Tensor(np.dstack(xy)).einsum('ijk,kl->ijl', w0).add(b0).relu()\
    .einsum('ijk,kl->ijl', w1).add(b1).softmax()

pred = out.data.argmax(axis=-1)

plt.contourf(*xy, pred, cmap="brg", alpha=0.5)
plt.scatter(*X, c=y_true, cmap="brg", alpha=0.5)

# ---- end of the original: save instead of plt.show(), and report the training accuracy -----

figure = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SPIRAL_FIGURE",
                                                               "out/spiral_original.png")
os.makedirs(os.path.dirname(figure) or ".", exist_ok=True)
plt.savefig(figure)
out = Tensor(X).einsum("ji,jk->ik", w0).add(b0).relu().einsum("ij,jk->ik", w1).add(b1)
accuracy = (out.data.argmax(axis=-1) == y_true).mean()
print(f"spiral_original: training accuracy {accuracy:.1%} after 100 epochs, "
      f"loss {loss.item():.3f}; figure saved to {figure}")
