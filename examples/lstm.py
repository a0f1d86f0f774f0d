"""An LSTM on simplegrad: continue a sine wave, or write text one character at a time.

Sine mode (the default; the original simplegrad's LSTM demo): windows of 40 samples of sine
waves with random phase and a frequency drawn from a range; an `nn.LSTM` (1 -> 64) and a linear
head read each window and predict, at every step, the next sample. The error counts from the
10th step on (`--warmup`): one or two samples cannot tell a wave's phase and frequency apart,
so nobody can predict those steps. Trained with Adam on mean squared error; the test error is
measured on held-out windows (other phases and frequencies), and the model then continues a
held-out wave on its own, feeding back its predictions, for the plot ``<out>/lstm_sine.png``.

    python examples/lstm.py                     # sine wave: train, test, plot
    python examples/lstm.py --mode text         # character-level language model, then a sample

Text mode: a character-level language model (embedding, a two-layer `nn.LSTM`, a linear head
over the characters, cross-entropy on the next character) trained on a text that ships with
Python: the Zen of Python (``import this``) followed by the standard library's own docstrings
of a few modules, so nothing is downloaded. It prints the loss per epoch and then a sample,
drawn one character at a time from a prompt.
"""

import argparse
import codecs
import contextlib
import io
import os
import sys
import time

import matplotlib

matplotlib.use("Agg")  # figures go to files, never to a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
try:
    import simplegrad  # noqa: F401
except ImportError:  # not installed: use the simplegrad.py of this checkout
    sys.path.insert(0, os.path.dirname(HERE))

sys.path.insert(0, HERE)
from device_choice import CHOICES, HELP, use_device  # noqa: E402

import simplegrad as sg  # noqa: E402
from simplegrad import Tensor, nn, no_grad  # noqa: E402

F = nn.functional


# ---- sine wave ----------------------------------------------------------------------------------

def sine_windows(n, length, rng, freq=(0.05, 0.15)):
    """n windows of `length` + 1 samples of sin(2 pi f t + phase): inputs (n, length, 1) and
    the next sample after each prefix, targets (n, length, 1)."""
    f = rng.uniform(*freq, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    t = np.arange(length + 1)
    waves = np.sin(2 * np.pi * f * t + phase).astype(np.float32)[..., None]
    return waves[:, :-1], waves[:, 1:]


class SineModel(nn.Module):
    """An LSTM reading the wave, and a linear head predicting the next sample at each step."""

    def __init__(self, hidden=64):
        super().__init__()
        self.lstm = nn.LSTM(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x, state=None):
        out, state = self.lstm(x, state)
        return self.head(out), state


def continue_wave(model, prefix, steps):
    """Feed `prefix` (length,), then `steps` of the model's own predictions."""
    model.eval()
    with no_grad():
        pred, state = model(Tensor(prefix.reshape(1, -1, 1)))
        value = pred[:, -1:]
        out = []
        for _ in range(steps):
            out.append(value.item())
            value, state = model(value, state)
    model.train()
    return np.array(out)


def run_sine(args):
    rng = np.random.default_rng(args.seed)
    x_train, y_train = sine_windows(args.train_windows, args.length, rng)
    x_test, y_test = sine_windows(args.test_windows, args.length, rng)
    model = SineModel(args.hidden)
    opt = sg.optim.Adam(model.parameters(), lr=args.lr)
    batches = len(x_train) // args.batch_size
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(x_train))
        bar = tqdm(range(batches), desc=f"sine epoch {epoch}/{args.epochs}", unit="batch",
                   mininterval=1.0)
        total = 0.0
        for b in bar:
            idx = order[b * args.batch_size:(b + 1) * args.batch_size]
            pred, _ = model(Tensor(x_train[idx]))
            loss = F.mse_loss(pred[:, args.warmup:], Tensor(y_train[idx, args.warmup:]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            bar.set_postfix(mse=f"{total / (b + 1):.2e}")
        bar.close()
        model.eval()
        with no_grad():
            pred = model(Tensor(x_test))[0][:, args.warmup:]
            test = F.mse_loss(pred, Tensor(y_test[:, args.warmup:])).item()
        model.train()
        print(f"epoch {epoch}: training mse {total / batches:.3e}, test mse {test:.3e}",
              flush=True)
    seconds = (time.perf_counter() - start) / args.epochs

    # the model continues a held-out wave on its own
    wave_rng = np.random.default_rng(args.seed + 1)
    f, phase = wave_rng.uniform(0.05, 0.15), wave_rng.uniform(0, 2 * np.pi)
    t = np.arange(args.length + args.continue_steps)
    truth = np.sin(2 * np.pi * f * t + phase)
    predicted = continue_wave(model, truth[:args.length].astype(np.float32), args.continue_steps)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "lstm_sine.png")
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.plot(t, truth, color="0.6", lw=3, label="truth")
    ax.plot(t[:args.length], truth[:args.length], color="C0", lw=1.5, label="prefix read")
    ax.plot(t[args.length:], predicted, "--", color="C3", lw=1.5, label="LSTM continues")
    ax.axvline(args.length - 0.5, color="0.8", lw=1)
    ax.set_xlabel("step")
    ax.set_title(f"LSTM continuing a held-out sine wave (test mse {test:.2e})")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"lstm sine: test mse {test:.3e} on {args.test_windows} held-out windows after "
          f"{args.epochs} epochs ({seconds:.1f} s/epoch); plot in {path}")


# ---- characters ---------------------------------------------------------------------------------

def corpus():
    """Text that ships with Python: the Zen of Python and a few standard modules' docstrings."""
    import functools
    import json
    with contextlib.redirect_stdout(io.StringIO()):  # `import this` prints the Zen
        import this  # its text is this.s, rot13-coded
    text = codecs.decode(this.s, "rot13")
    for module in (json, functools, argparse):
        text += "\n\n" + (module.__doc__ or "")
    return text


class CharModel(nn.Module):
    """Embedding, a two-layer LSTM, and logits over the characters."""

    def __init__(self, vocab, hidden=128, layers=2):
        super().__init__()
        self.embed = nn.Embedding(vocab, 32)
        self.lstm = nn.LSTM(32, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        out, state = self.lstm(self.embed(x), state)
        return self.head(out), state


def sample(model, chars, prompt, length, rng, temperature=0.8):
    index = {c: i for i, c in enumerate(chars)}
    model.eval()
    with no_grad():
        logits, state = model(Tensor(np.array([[index[c] for c in prompt]])))
        out = prompt
        for _ in range(length):
            p = (logits[0, -1] / temperature).softmax(dim=0).numpy().astype(np.float64)
            c = rng.choice(len(chars), p=p / p.sum())
            out += chars[c]
            logits, state = model(Tensor(np.array([[c]])), state)
    model.train()
    return out


def run_text(args):
    text = corpus()
    chars = sorted(set(text))
    data = np.array([chars.index(c) for c in text])
    rng = np.random.default_rng(args.seed)
    model = CharModel(len(chars), args.hidden)
    opt = sg.optim.Adam(model.parameters(), lr=args.lr)
    steps = args.steps_per_epoch
    print(f"text: {len(text)} characters, {len(chars)} distinct")
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        bar = tqdm(range(steps), desc=f"text epoch {epoch}/{args.epochs}", unit="batch",
                   mininterval=1.0)
        total = 0.0
        for s in bar:
            starts = rng.integers(0, len(data) - args.length - 1, args.batch_size)
            window = np.stack([data[i:i + args.length + 1] for i in starts])
            logits, _ = model(Tensor(window[:, :-1]))
            loss = F.cross_entropy(logits.reshape(-1, len(chars)),
                                   Tensor(window[:, 1:].reshape(-1)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            bar.set_postfix(loss=f"{total / (s + 1):.3f}")
        bar.close()
        print(f"epoch {epoch}: training loss {total / steps:.3f} nats/char", flush=True)
    seconds = (time.perf_counter() - start) / args.epochs
    text_out = sample(model, chars, args.prompt, args.sample_length, rng)
    print(f"lstm text: sample after {args.epochs} epochs ({seconds:.1f} s/epoch):")
    print(text_out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--mode", choices=["sine", "text"], default="sine")
    parser.add_argument("--epochs", type=int, default=None,
                        help="passes (default: 12 for sine, 10 for text)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=None,
                        help="Adam's learning rate (default: 1e-2 for sine, 3e-3 for text)")
    parser.add_argument("--hidden", type=int, default=None,
                        help="LSTM units (default: 64 for sine, 128 for text)")
    parser.add_argument("--length", type=int, default=None,
                        help="sequence length (default: 40 for sine, 64 for text)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=CHOICES, default="numpy", help=HELP)
    parser.add_argument("--out", default="out/lstm", help="folder for the sine plot")
    parser.add_argument("--warmup", type=int, default=10,
                        help="sine: steps read before the error counts")
    parser.add_argument("--train-windows", type=int, default=2048, help="sine: training windows")
    parser.add_argument("--test-windows", type=int, default=512, help="sine: held-out windows")
    parser.add_argument("--continue-steps", type=int, default=120,
                        help="sine: samples the model draws on its own for the plot")
    parser.add_argument("--steps-per-epoch", type=int, default=100, help="text: batches/epoch")
    parser.add_argument("--prompt", default="Beautiful is", help="text: start of the sample")
    parser.add_argument("--sample-length", type=int, default=300,
                        help="text: characters to generate")
    args = parser.parse_args()
    sine = args.mode == "sine"
    defaults = dict(epochs=12 if sine else 10, lr=1e-2 if sine else 3e-3,
                    hidden=64 if sine else 128, length=40 if sine else 64)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    use_device(args.device)
    sg.manual_seed(args.seed)
    (run_sine if sine else run_text)(args)


if __name__ == "__main__":
    main()
