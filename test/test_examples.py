"""Each example runs briefly, in a subprocess, headless (MPLBACKEND=Agg), with no network."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


def run_example(script, *args, cwd):
    """Run examples/<script> with this checkout's simplegrad; return its standard output."""
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, script), *map(str, args)],
                            cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def accuracy_in(line):
    """The percentage after 'training accuracy' in a script's last line."""
    match = re.search(r"training accuracy ([\d.]+)%", line)
    assert match, f"no accuracy in {line!r}"
    return float(match.group(1))


def test_original_readme_program_reaches_90_percent(tmp_path):
    # the original simplegrad README's program as written: 100 epochs of Adam (lr 0.01)
    pytest.importorskip("matplotlib", reason="the original program plots with matplotlib")
    figure = tmp_path / "original.png"
    last = run_example("spiral_original.py", figure, cwd=tmp_path).strip().splitlines()[-1]
    assert accuracy_in(last) >= 90.0, last
    assert "after 100 epochs" in last
    assert figure.stat().st_size > 0


@pytest.mark.parametrize("device_name", ["numpy", "reference"])
def test_spiral_runs_and_saves_figure(tmp_path, device_name):
    pytest.importorskip("matplotlib", reason="examples/spiral.py plots with matplotlib")
    pytest.importorskip("tqdm", reason="examples/spiral.py shows a tqdm progress bar")
    out = tmp_path / "out"
    stdout = run_example("spiral.py", "--epochs", 5, "--hidden", 64, "--device", device_name,
                         "--dtype", "float32", "--out", out, cwd=tmp_path)
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("spiral: training accuracy") and "after 5 epochs" in last, last
    assert 0.0 <= accuracy_in(last) <= 100.0
    assert (out / "spiral.png").stat().st_size > 0


def test_spiral_help():
    pytest.importorskip("matplotlib", reason="examples/spiral.py plots with matplotlib")
    pytest.importorskip("tqdm", reason="examples/spiral.py shows a tqdm progress bar")
    stdout = run_example("spiral.py", "--help", cwd=ROOT)
    for option in ("--epochs", "--hidden", "--device", "--out", "--seed", "--dtype"):
        assert option in stdout


def test_tour_runs(tmp_path):
    last = run_example("tour.py", "--steps", 50, cwd=tmp_path).strip().splitlines()[-1]
    assert last.startswith("tour: fitted sin(x)") and "after 50 steps" in last, last


def test_draw_lenet_writes_the_graph(tmp_path):
    pytest.importorskip("matplotlib", reason="examples/mnist_cnn.py, which it imports, plots")
    pytest.importorskip("tqdm", reason="examples/mnist_cnn.py, which it imports, shows tqdm bars")
    out = tmp_path / "out"
    last = run_example("draw_lenet.py", "--out", out, cwd=tmp_path).strip().splitlines()[-1]
    assert last.startswith("draw_lenet: the LeNet-5 forward graph"), last
    dot = (out / "lenet5_graph.dot").read_text()
    assert "conv1.weight" in dot and "fc3.bias" in dot and dot.count("->") > 20
