"""examples/mnist_gan.py runs briefly on a few hundred images, headless, with no network.

The images are the first few hundred of ../shared/data/mnist when it is there; otherwise the
test writes a tiny IDX file set of its own (standard names, so the loader reads it with
--no-verify). The LeNet-5 evaluation runs on 100 samples when examples/lenet5.npz exists
(trained by examples/mnist_cnn.py); otherwise the script must say why it skipped it.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
SHARED_MNIST = os.path.join(os.path.dirname(ROOT), "shared", "data", "mnist")
LENET = os.path.join(EXAMPLES, "lenet5.npz")

pytest.importorskip("matplotlib", reason="examples/mnist_gan.py plots with matplotlib")
pytest.importorskip("tqdm", reason="examples/mnist_gan.py shows a tqdm progress bar")


def run_gan(*args, cwd):
    """Run examples/mnist_gan.py with this checkout's simplegrad; return its standard output."""
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    env.pop("SIMPLEGRAD_MNIST", None)  # the data folder comes from --data-dir or the default
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, "mnist_gan.py"),
                             *map(str, args)],
                            cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"mnist_gan.py failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def tiny_mnist(folder, n=256, seed=0):
    """Write n random 28x28 images and labels as IDX files under the standard training names."""
    sys.path.insert(0, EXAMPLES)
    try:
        from mnist_data import write_idx
    finally:
        sys.path.remove(EXAMPLES)
    rng = np.random.default_rng(seed)
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
    write_idx(folder / "train-labels-idx1-ubyte", rng.integers(0, 10, n))
    return folder


@pytest.fixture
def data_args(tmp_path):
    """--data-dir (and --no-verify for a written set) for a few hundred training images."""
    if os.path.exists(os.path.join(SHARED_MNIST, "train-images-idx3-ubyte.gz")):
        return ["--data-dir", SHARED_MNIST]
    return ["--data-dir", tiny_mnist(tmp_path / "tiny_mnist"), "--no-verify"]


def check_evaluation(last):
    """The last line gives the LeNet-5 measurement, or says why it was skipped."""
    if not os.path.exists(LENET):
        assert "evaluation skipped: no LeNet-5 weights" in last, last
        return
    match = re.search(r"mnist_gan: ([\d.]+)% of 100 samples classified with probability > 0.9, "
                      r"(all ten digits present|digits present (\d+|none) \(not all ten\))", last)
    assert match, last
    assert 0.0 <= float(match.group(1)) <= 100.0


def test_gan_trains_saves_and_evaluates(tmp_path, data_args):
    out = tmp_path / "out"
    stdout = run_gan("--epochs", 1, "--limit", 256, "--batch-size", 32, "--eval-samples", 100,
                     "--lenet", LENET, "--out", out, *data_args, cwd=tmp_path)
    lines = stdout.strip().splitlines()
    assert re.match(r"epoch 1: loss_d [\d.]+ loss_g [\d.]+ \([\d.]+ s/epoch\)", lines[-2]), stdout
    last = lines[-1]
    assert "after 1 epochs of 8 steps" in last, last
    check_evaluation(last)
    for name in ("gan_samples.png", "gan_epoch_001.png", "generator.npz"):
        assert (out / name).stat().st_size > 0, name

    # the saved generator evaluates on its own
    last = run_gan("--eval-only", "--eval-samples", 100, "--lenet", LENET, "--out", out,
                   cwd=tmp_path).strip().splitlines()[-1]
    assert f"from {out / 'generator.npz'}" in last, last
    check_evaluation(last)


def test_gan_resume_continues_exactly(tmp_path, data_args):
    """Two epochs straight and one epoch then --resume for the second give the same generator:
    the checkpoint holds both networks, both optimizers' state and the random generator."""
    import simplegrad as sg

    common = ["--limit", 96, "--batch-size", 32, "--no-eval", *data_args]
    run_gan("--epochs", 2, "--out", tmp_path / "straight", *common, cwd=tmp_path)
    run_gan("--epochs", 1, "--out", tmp_path / "resumed", *common, cwd=tmp_path)
    stdout = run_gan("--epochs", 2, "--resume", "--out", tmp_path / "resumed", *common,
                     cwd=tmp_path)
    assert "resuming after epoch 1" in stdout, stdout
    assert "epoch 1:" not in stdout and "epoch 2:" in stdout, stdout
    straight = sg.load(tmp_path / "straight" / "generator.npz")
    resumed = sg.load(tmp_path / "resumed" / "generator.npz")
    assert straight.keys() == resumed.keys()
    for name in straight:  # same arithmetic in the same order: bit for bit
        np.testing.assert_array_equal(resumed[name].numpy(), straight[name].numpy(), err_msg=name)


def test_gan_resume_without_checkpoint_says_so(tmp_path, data_args):
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, "mnist_gan.py"), "--resume",
                             "--out", str(tmp_path / "none"), *map(str, data_args)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "--resume: no checkpoint at" in result.stderr, result.stderr


def test_gan_skips_evaluation_without_lenet_weights(tmp_path, data_args):
    out = tmp_path / "out"
    run_gan("--epochs", 1, "--limit", 64, "--batch-size", 32, "--no-eval", "--out", out,
            *data_args, cwd=tmp_path)
    last = run_gan("--eval-only", "--lenet", tmp_path / "absent.npz", "--out", out,
                   cwd=tmp_path).strip().splitlines()[-1]
    assert "evaluation skipped: no LeNet-5 weights at" in last, last


def test_gan_help():
    stdout = run_gan("--help", cwd=ROOT)
    for option in ("--epochs", "--batch-size", "--latent", "--device", "--data-dir", "--out",
                   "--seed", "--limit", "--lenet", "--eval-samples", "--eval-only", "--resume",
                   "--eval-every"):
        assert option in stdout
