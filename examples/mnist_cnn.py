"""LeNet-5 learns MNIST: two convolutions, two max-pools and three linear layers, with Adam.

The classic network (conv 6@5x5 padding 2, ReLU, max-pool 2, conv 16@5x5, ReLU, max-pool 2,
linear 400-120-84-10) trained with Adam (lr 1e-3) in batches of 64 on the 60,000 training
images, then evaluated on the 10,000 test images after every epoch. It reaches about 99% test
accuracy in 5 epochs. It saves ``<out>/mnist_cnn_curves.png`` (loss and accuracy per epoch) and
``<out>/lenet5.npz`` (simplegrad.save of the model's state_dict; load it into ``LeNet5()`` with
``model.load_state_dict(simplegrad.load(path))``), and prints one final line with the test
accuracy and the seconds per epoch.

The data are the standard MNIST IDX files, read by examples/mnist_data.py from --data-dir, else
$SIMPLEGRAD_MNIST, else ../shared/data/mnist beside the repository; nothing is downloaded.

    python examples/mnist_cnn.py                              # 5 epochs; out/mnist_cnn_curves.png
    python examples/mnist_cnn.py --epochs 1 --limit-train 5000 --limit-test 1000
    python examples/mnist_cnn.py --data-dir ~/data/mnist --out results --seed 1
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
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # mnist_data, when imported
try:
    import simplegrad  # noqa: F401
except ImportError:  # not installed: use the simplegrad.py of this checkout
    sys.path.insert(0, ROOT)
from device_choice import CHOICES, HELP, use_device  # noqa: E402
from mnist_data import load_mnist  # noqa: E402

import simplegrad as sg  # noqa: E402
from simplegrad import Tensor, nn  # noqa: E402

MEAN, STD = 0.1307, 0.3081  # of the training images' pixels, scaled to [0, 1]


class LeNet5(nn.Module):
    """LeNet-5 for 28x28 digits: (N, 1, 28, 28) images to (N, 10) logits."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)   # 6 x 28 x 28
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)             # 16 x 10 x 10
        self.pool = nn.MaxPool2d(2)                              # halves each side
        self.relu = nn.ReLU()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))                  # 6 x 14 x 14
        x = self.pool(self.relu(self.conv2(x)))                  # 16 x 5 x 5
        x = x.reshape(x.shape[0], 16 * 5 * 5)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


def normalize(images):
    """uint8 images (N, 28, 28) to float32 (N, 1, 28, 28), standardised: (x/255 - mean) / std."""
    return ((images.astype(np.float32) / 255 - MEAN) / STD)[:, None].astype(np.float32)


def train_epoch(model, optimizer, loader, desc="epoch"):
    """One pass over the loader's batches with a tqdm bar; the mean loss and the accuracy."""
    total_loss, correct, seen = 0.0, 0, 0
    bar = tqdm(loader, desc=desc, unit="batch")
    for step, (x, y) in enumerate(bar):
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(y)
        correct += int((logits.argmax(dim=1).numpy() == y.numpy()).sum())
        seen += len(y)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.1%}")
    bar.close()
    return total_loss / seen, correct / seen


def evaluate(model, x, labels, batch_size=1000):
    """Mean cross-entropy and accuracy on all of x (N, 1, 28, 28), in batches, without a graph."""
    model.eval()
    total_loss, correct = 0.0, 0
    with sg.no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(Tensor(x[start:start + batch_size]))
            target = labels[start:start + batch_size]
            loss = nn.functional.cross_entropy(logits, Tensor(target), reduction="sum")
            total_loss += loss.item()
            correct += int((logits.argmax(dim=1).numpy() == target).sum())
    model.train()
    return total_loss / len(x), correct / len(x)


def plot(history, path, title):
    """Training and test loss (left) and accuracy (right) per epoch."""
    epochs = np.arange(1, len(history["test_acc"]) + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    left.plot(epochs, history["train_loss"], "o-", label="training (mean over the epoch)")
    left.plot(epochs, history["test_loss"], "s-", label="test")
    left.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    right.plot(epochs, 100 * np.array(history["train_acc"]), "o-",
               label="training (during the epoch)")
    right.plot(epochs, 100 * np.array(history["test_acc"]), "s-", label="test")
    right.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (left, right):
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5, help="passes over the training images")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch size")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed for the weights and the order")
    parser.add_argument("--device", choices=CHOICES, default="numpy", help=HELP)
    parser.add_argument("--data-dir", default=None,
                        help="folder of the MNIST IDX files (default: $SIMPLEGRAD_MNIST, else "
                             "../shared/data/mnist beside the repository)")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the MD5 check of the standard files (for custom IDX data)")
    parser.add_argument("--limit-train", type=int, default=None,
                        help="use only the first N training images (quick runs)")
    parser.add_argument("--limit-test", type=int, default=None,
                        help="use only the first N test images (quick runs)")
    parser.add_argument("--out", default="out",
                        help="folder for mnist_cnn_curves.png and lenet5.npz")
    args = parser.parse_args()
    use_device(args.device)

    try:
        train_images, train_labels = load_mnist(args.data_dir, "train", args.limit_train,
                                                 verify=not args.no_verify)
        test_images, test_labels = load_mnist(args.data_dir, "test", args.limit_test,
                                               verify=not args.no_verify)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(str(e))
    train = sg.TensorDataset(Tensor(normalize(train_images)), Tensor(train_labels))
    x_test = normalize(test_images)
    loader = sg.DataLoader(train, batch_size=args.batch_size, shuffle=True,
                           generator=np.random.default_rng(args.seed))

    sg.manual_seed(args.seed)
    model = LeNet5()
    optimizer = sg.optim.Adam(model.parameters(), lr=args.lr)

    history = {"train_loss": [], "train_acc": [], "test_loss": [], "test_acc": []}
    epoch_seconds = []
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        train_loss, train_acc = train_epoch(model, optimizer, loader,
                                            desc=f"epoch {epoch}/{args.epochs}")
        epoch_seconds.append(time.perf_counter() - start)
        test_loss, test_acc = evaluate(model, x_test, test_labels)
        for key, value in zip(history, (train_loss, train_acc, test_loss, test_acc)):
            history[key].append(value)
        print(f"epoch {epoch}: training loss {train_loss:.4f}, test loss {test_loss:.4f}, "
              f"test accuracy {test_acc:.2%} ({epoch_seconds[-1]:.1f} s)", flush=True)

    os.makedirs(args.out, exist_ok=True)
    weights = os.path.join(args.out, "lenet5.npz")
    sg.save(model.state_dict(), weights)
    curves = os.path.join(args.out, "mnist_cnn_curves.png")
    plot(history, curves, f"LeNet-5 on MNIST ({len(train)} training images, batch "
                          f"{args.batch_size}, Adam lr {args.lr:g}): "
                          f"{history['test_acc'][-1]:.2%} test accuracy")
    seconds = np.mean(epoch_seconds) if epoch_seconds else 0.0
    accuracy = history["test_acc"][-1] if epoch_seconds else evaluate(model, x_test,
                                                                      test_labels)[1]
    epochs = f"{args.epochs} epoch{'s' * (args.epochs != 1)}"
    print(f"mnist_cnn: test accuracy {accuracy:.2%} on {len(x_test)} images after {epochs} "
          f"({seconds:.1f} s/epoch on {len(train)} training images, {Tensor.device}); "
          f"weights saved to {weights}, curves to {curves}")


if __name__ == "__main__":
    main()
