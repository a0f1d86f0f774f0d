"""MNIST: the IDX loader (examples/mnist_data.py) and the LeNet-5 example (examples/mnist_cnn.py).

The loader tests write their own tiny IDX files. The training checks read the standard files
from ../shared/data/mnist beside the repository when they are there, and otherwise fall back to
a tiny, learnable IDX set the tests write themselves (the 90%-on-real-digits check then skips).
No test touches the network.
"""

import gzip
import os
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

import simplegrad as sg
from simplegrad import Tensor, nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
sys.path.insert(0, EXAMPLES)
import mnist_data  # noqa: E402
from mnist_data import load_mnist, write_idx  # noqa: E402

STANDARD = [name for pair in mnist_data.FILES.values() for name in pair]
HAVE_MNIST = all(os.path.exists(os.path.join(mnist_data.DEFAULT_DIR, name + ".gz"))
                 or os.path.exists(os.path.join(mnist_data.DEFAULT_DIR, name))
                 for name in STANDARD)
needs_mnist = pytest.mark.skipif(
    not HAVE_MNIST, reason=f"the standard MNIST files are not in {mnist_data.DEFAULT_DIR}")
needs_conv = pytest.mark.skipif(
    not (hasattr(nn, "Conv2d") and hasattr(nn, "MaxPool2d")),
    reason="simplegrad has no nn.Conv2d / nn.MaxPool2d yet: LeNet-5 cannot be built")


def idx_bytes(magic, dims, payload):
    """An IDX file written by hand: big-endian magic and dims, then the bytes."""
    return struct.pack(f">i{len(dims)}i", magic, *dims) + bytes(payload)


def synthetic_digits(n, seed):
    """A learnable stand-in for MNIST: digit k is a bright bar at rows 2k+3..2k+5, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 2 * k + 3:2 * k + 6, 4:24] = 255
    return images, labels


@pytest.fixture
def tiny_mnist(tmp_path):
    """A folder holding a tiny synthetic IDX set under the standard names (gzip-compressed)."""
    folder = tmp_path / "tiny-mnist"
    folder.mkdir()
    for split, n, seed in [("train", 400, 0), ("test", 200, 1)]:
        images_name, labels_name = mnist_data.FILES[split]
        images, labels = synthetic_digits(n, seed)
        write_idx(folder / (images_name + ".gz"), images)
        write_idx(folder / (labels_name + ".gz"), labels)
    return folder


# ---- the loader --------------------------------------------------------------------------------

@pytest.mark.parametrize("compressed", [False, True])
def test_reads_idx_files_written_by_hand(tmp_path, compressed):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28)).astype(np.uint8)
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    opener = gzip.open if compressed else open
    suffix = ".gz" if compressed else ""
    with opener(tmp_path / f"t10k-images-idx3-ubyte{suffix}", "wb") as f:
        f.write(idx_bytes(2051, (5, 28, 28), images.tobytes()))
    with opener(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", "wb") as f:
        f.write(idx_bytes(2049, (5,), labels.tobytes()))

    x, y = load_mnist(tmp_path, "test", verify=False)
    assert x.dtype == np.uint8 and x.shape == (5, 28, 28)
    assert y.dtype == np.int64 and y.shape == (5,)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    x, y = load_mnist(tmp_path, "test", limit=2, verify=False)
    assert x.shape == (2, 28, 28) and list(y) == [3, 1]


def test_write_idx_round_trips(tmp_path):
    images, labels = synthetic_digits(7, 0)
    write_idx(tmp_path / "train-images-idx3-ubyte", images)       # uncompressed
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)    # gzip
    x, y = load_mnist(str(tmp_path), "train", verify=False)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)


def test_data_dir_argument_then_environment_variable(tmp_path, monkeypatch):
    for folder, n in [("from-env", 3), ("from-arg", 4)]:
        (tmp_path / folder).mkdir()
        images, labels = synthetic_digits(n, 0)
        write_idx(tmp_path / folder / "t10k-images-idx3-ubyte", images)
        write_idx(tmp_path / folder / "t10k-labels-idx1-ubyte", labels)
    monkeypatch.setenv("SIMPLEGRAD_MNIST", str(tmp_path / "from-env"))
    assert len(load_mnist(split="test", verify=False)[0]) == 3
    assert len(load_mnist(tmp_path / "from-arg", "test", verify=False)[0]) == 4
    monkeypatch.delenv("SIMPLEGRAD_MNIST")
    assert mnist_data.resolve_data_dir() == mnist_data.DEFAULT_DIR
    assert mnist_data.DEFAULT_DIR == os.path.join(os.path.dirname(ROOT), "shared", "data", "mnist")


@pytest.mark.parametrize("which", ["images", "labels"])
def test_bad_magic_number_is_a_clear_error(tmp_path, which):
    images, labels = synthetic_digits(4, 0)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    if which == "images":  # a labels header where the images belong
        (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(2049, (4,), labels))
        message = r"magic number 2049, but an IDX file of images starts with 2051"
    else:
        (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(2052, (4,), labels))
        message = r"magic number 2052, but an IDX file of labels starts with 2049"
    with pytest.raises(ValueError, match=message):
        load_mnist(tmp_path, "test", verify=False)


def test_truncated_file_and_mismatched_counts_are_clear_errors(tmp_path):
    images, labels = synthetic_digits(4, 0)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(
        idx_bytes(2051, (4, 28, 28), images.tobytes()[:-10]))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_mnist(tmp_path, "test", verify=False)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images[:3])
    with pytest.raises(ValueError, match="3 images but .* 4 labels"):
        load_mnist(tmp_path, "test", verify=False)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((4, 14, 14), np.uint8))
    with pytest.raises(ValueError, match="14x14 pixels, not 28x28"):
        load_mnist(tmp_path, "test", verify=False)


def test_missing_files_say_where_to_get_them(tmp_path, monkeypatch):
    monkeypatch.delenv("SIMPLEGRAD_MNIST", raising=False)
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(empty, "train")
    message = str(info.value)
    for expected in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", str(empty),
                     "SIMPLEGRAD_MNIST", "--data-dir", "yann.lecun.com/exdb/mnist"):
        assert expected in message, (expected, message)
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_mnist(empty, "validation")


def test_checksum_failure_on_a_corrupted_standard_file(tmp_path):
    # a copy of the standard test images (or, without them, tiny data) with one pixel changed
    if HAVE_MNIST:
        images, labels = load_mnist(split="test")
    else:
        images, labels = synthetic_digits(20, 0)
    images[3, 14, 14] ^= 1
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    with pytest.raises(ValueError, match="fails its checksum") as info:
        load_mnist(tmp_path, "test")
    assert "2646ac647ad5339dbf082846283269ea" in str(info.value)      # the standard images' MD5
    assert "t10k-images-idx3-ubyte.gz" in str(info.value)
    assert len(load_mnist(tmp_path, "test", verify=False)[1]) == len(labels)


@needs_mnist
def test_standard_files_load_and_pass_their_checksums():
    x, y = load_mnist(split="train")
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
    assert list(y[:5]) == [5, 0, 4, 1, 9]                  # the well-known first labels
    assert abs(x.mean() / 255 - 0.1307) < 1e-3             # the mean used to normalise
    x, y = load_mnist(split="test")
    assert x.shape == (10000, 28, 28) and sorted(set(y.tolist())) == list(range(10))
    assert list(y[:5]) == [7, 2, 1, 0, 4]


# ---- the example -------------------------------------------------------------------------------

def run_example(*args, cwd):
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, "mnist_cnn.py"),
                             *map(str, args)],
                            cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return result


@needs_conv
def test_example_quick_run_prints_and_saves(tmp_path, tiny_mnist):
    pytest.importorskip("matplotlib", reason="examples/mnist_cnn.py plots with matplotlib")
    pytest.importorskip("tqdm", reason="examples/mnist_cnn.py shows a tqdm progress bar")
    data = [] if HAVE_MNIST else ["--data-dir", tiny_mnist, "--no-verify"]
    out = tmp_path / "out"
    result = run_example("--epochs", 1, "--limit-train", 320, "--limit-test", 200,
                         "--out", out, *data, cwd=tmp_path)
    assert result.returncode == 0, f"mnist_cnn.py failed:\n{result.stdout}\n{result.stderr}"
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(r"epoch 1: training loss [\d.]+, test loss [\d.]+, "
                        r"test accuracy [\d.]+% \([\d.]+ s\)", lines[0]), lines[0]
    match = re.match(r"mnist_cnn: test accuracy ([\d.]+)% on 200 images after 1 epoch "
                     r"\(([\d.]+) s/epoch on 320 training images", lines[-1])
    assert match, lines[-1]
    assert 0.0 <= float(match.group(1)) <= 100.0 and float(match.group(2)) > 0
    assert str(out / "lenet5.npz") in lines[-1]
    assert (out / "mnist_cnn_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the saved weights are LeNet-5's state dict and load back into a fresh model
    import mnist_cnn
    state = sg.load(out / "lenet5.npz")
    model = mnist_cnn.LeNet5()
    expected = model.state_dict()
    assert sorted(state) == sorted(expected)
    for key, value in expected.items():
        assert tuple(state[key].shape) == tuple(value.shape), key
    model.load_state_dict(state)
    np.testing.assert_array_equal(model.conv1.weight.numpy(), state["conv1.weight"].numpy())


@needs_conv
def test_example_help_and_missing_data(tmp_path):
    pytest.importorskip("matplotlib", reason="examples/mnist_cnn.py plots with matplotlib")
    pytest.importorskip("tqdm", reason="examples/mnist_cnn.py shows a tqdm progress bar")
    result = run_example("--help", cwd=tmp_path)
    assert result.returncode == 0
    for option in ("--epochs", "--batch-size", "--device", "--data-dir", "--out", "--lr",
                   "--seed", "--limit-train", "--limit-test", "--no-verify"):
        assert option in result.stdout, option
    result = run_example("--data-dir", tmp_path, "--out", tmp_path / "out", cwd=tmp_path)
    assert result.returncode != 0
    assert "not found in" in result.stderr and "yann.lecun.com" in result.stderr, result.stderr


def train_lenet(train, test, epochs, batch_size, lr, seed=0):
    """LeNet-5 from examples/mnist_cnn.py trained in-process; its test accuracy."""
    import mnist_cnn
    (train_images, train_labels), (test_images, test_labels) = train, test
    dataset = sg.TensorDataset(Tensor(mnist_cnn.normalize(train_images)), Tensor(train_labels))
    loader = sg.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                           generator=np.random.default_rng(seed))
    sg.manual_seed(seed)
    model = mnist_cnn.LeNet5()
    optimizer = sg.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        mnist_cnn.train_epoch(model, optimizer, loader)
    return mnist_cnn.evaluate(model, mnist_cnn.normalize(test_images), test_labels)[1]


@needs_conv
@needs_mnist
def test_lenet_one_epoch_on_5000_images_scores_90_percent():
    pytest.importorskip("tqdm", reason="examples/mnist_cnn.py shows a tqdm progress bar")
    # 157 Adam steps (batch 32, lr 3e-3): 93-94% over seeds 0-2; batch 64 at lr 1e-3 (the
    # example's default, tuned for 5 epochs) gives only about 86% after one epoch of 5,000
    accuracy = train_lenet(load_mnist(split="train", limit=5000),
                           load_mnist(split="test", limit=1000), epochs=1, batch_size=32, lr=3e-3)
    assert accuracy >= 0.90, f"{accuracy:.1%} test accuracy on 1,000 images"


@needs_conv
def test_lenet_pipeline_on_tiny_self_written_idx_set(tiny_mnist):
    # the whole pipeline (IDX files -> loader -> LeNet-5 -> Adam) without the standard files:
    # the synthetic digits (a bar at a row set by the label) are easy, so two epochs suffice
    pytest.importorskip("tqdm", reason="examples/mnist_cnn.py shows a tqdm progress bar")
    accuracy = train_lenet(load_mnist(tiny_mnist, "train", verify=False),
                           load_mnist(tiny_mnist, "test", verify=False),
                           epochs=2, batch_size=32, lr=3e-3)
    assert accuracy >= 0.90, f"{accuracy:.1%} test accuracy on the synthetic digits"
