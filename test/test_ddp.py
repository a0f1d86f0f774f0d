"""DistributedDataParallel and DistributedSampler: two processes over gloo on the loopback."""

import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import simplegrad as sg

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _distributed_unavailable():
    try:
        import torch.distributed as dist
    except ImportError:
        return "torch is not installed"
    if not dist.is_available() or not dist.is_gloo_available():
        return "torch.distributed with the gloo backend is not available"
    return None


needs_gloo = pytest.mark.skipif(_distributed_unavailable() is not None,
                                reason=str(_distributed_unavailable()))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_workers(scenario, out, timeout=60):
    """Start two worker processes; (return codes, outputs, seconds taken)."""
    port, start = _free_port(), time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "ddp_worker.py"), scenario,
                               str(rank), "2", str(port), str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=env)
             for rank in range(2)]
    outputs = []
    for p in procs:
        try:
            outputs.append(p.communicate(timeout=timeout)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail(f"DDP workers ({scenario}) still running after {timeout} s: a hang")
    return [p.returncode for p in procs], outputs, time.perf_counter() - start


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    codes, outputs, _ = _run_workers("train", out)
    assert codes == [0, 0], "\n".join(outputs)
    return out


@needs_gloo
def test_ddp_equals_one_process_on_full_batches(trained):
    import ddp_worker
    # one process, full batches, starting from rank 0's weights (DDP broadcasts those)
    sg.manual_seed(0)
    expected = ddp_worker.train(ddp_worker.Net(), ddp_worker.data())
    ranks = [np.load(trained / f"rank{r}.npz") for r in range(2)]
    assert sorted(ranks[0].files) == sorted("module." + k for k in expected)
    for name, value in expected.items():
        for got in ranks:
            g = got["module." + name]
            np.testing.assert_allclose(g, value, rtol=1e-10, atol=1e-12, err_msg=name)
        np.testing.assert_array_equal(ranks[0]["module." + name], ranks[1]["module." + name])


@needs_gloo
def test_ddp_unused_parameters(trained):
    for r in range(2):
        got = np.load(trained / f"unused{r}.npz")
        assert got["unused"].all()  # unused everywhere: .grad stays None, as in torch
        assert np.isfinite(got["fc1"]).all()
        message = str(got["message"])
        assert "got no gradient" in message and "extra.weight" in message, message
        assert "find_unused_parameters=True" in message


@needs_gloo
def test_ddp_peer_failure_is_an_error_not_a_hang(tmp_path):
    codes, outputs, seconds = _run_workers("fail", tmp_path, timeout=60)
    assert codes[1] != 0 and "fails on purpose" in outputs[1]
    assert codes[0] != 0, outputs[0]
    error = (tmp_path / "error0.txt").read_text()
    assert "DistributedDataParallel" in error and "peer process" in error, error
    assert seconds < 45


@needs_gloo
def test_ddp_stalled_peer_times_out(tmp_path):
    # rank 1 stays alive but stops at step 3: rank 0 must give up after the 3 s timeout
    port, start = _free_port(), time.perf_counter()
    procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "ddp_worker.py"), "stall",
                               str(rank), "2", str(port), str(tmp_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in range(2)]
    try:
        output = procs[0].communicate(timeout=45)[0]
    except subprocess.TimeoutExpired:
        procs[0].kill()
        pytest.fail("rank 0 still waits for a stalled peer after 45 s")
    finally:
        procs[1].kill()
        procs[1].communicate()
    assert procs[0].returncode != 0, output
    assert "peer process" in (tmp_path / "error0.txt").read_text()
    assert time.perf_counter() - start < 30


def test_distributed_sampler_partitions_and_pads():
    data = list(range(10))
    parts = [list(sg.DistributedSampler(data, 4, r, shuffle=False)) for r in range(4)]
    assert parts == [[0, 4, 8], [1, 5, 9], [2, 6, 0], [3, 7, 1]]  # padded from the start
    assert all(len(sg.DistributedSampler(data, 4, r, shuffle=False)) == 3 for r in range(4))
    dropped = [list(sg.DistributedSampler(data, 4, r, shuffle=False, drop_last=True))
               for r in range(4)]
    assert dropped == [[0, 4], [1, 5], [2, 6], [3, 7]]
    # shuffled: the ranks still partition the dataset, and each epoch has its own order
    shuffled = [sg.DistributedSampler(range(12), 3, r, seed=5) for r in range(3)]
    first = [list(s) for s in shuffled]
    assert sorted(sum(first, [])) == list(range(12))
    assert first == [list(s) for s in shuffled]  # deterministic
    for s in shuffled:
        s.set_epoch(1)
    second = [list(s) for s in shuffled]
    assert sorted(sum(second, [])) == list(range(12)) and second != first
    again = [sg.DistributedSampler(range(12), 3, r, seed=5) for r in range(3)]
    assert [list(s) for s in again] == first  # a fresh sampler starts at epoch 0
    for s in again:
        s.set_epoch(1)
    assert [list(s) for s in again] == second
    with pytest.raises(ValueError, match="rank 4"):
        sg.DistributedSampler(data, 4, 4)


def test_dataloader_takes_a_sampler():
    x = sg.Tensor(np.arange(10.0))
    loader = sg.DataLoader(sg.TensorDataset(x), batch_size=2,
                           sampler=sg.DistributedSampler(range(10), 2, 1, shuffle=False))
    assert len(loader) == 3
    assert [b[0].numpy().tolist() for b in loader] == [[1.0, 3.0], [5.0, 7.0], [9.0]]
    with pytest.raises(ValueError, match="sampler"):
        sg.DataLoader(sg.TensorDataset(x), shuffle=True, sampler=range(10))


@needs_gloo
def test_mnist_ddp_example_with_torchrun(tmp_path):
    data = os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared", "data", "mnist")
    if not os.path.isdir(data) and not os.environ.get("SIMPLEGRAD_MNIST"):
        pytest.skip("no MNIST files in ../shared/data/mnist or $SIMPLEGRAD_MNIST")
    pytest.importorskip("matplotlib", reason="examples/mnist_cnn.py (LeNet5) imports matplotlib")
    script = os.path.join(os.path.dirname(HERE), "examples", "mnist_ddp.py")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         "--master_addr=127.0.0.1", f"--master_port={_free_port()}", script, "--epochs", "1",
         "--limit", "512", "--batch-size", "32"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("mnist_ddp: 2 processes, 512 training images, 256 per process")
    assert lines[1].startswith("epoch 1: training loss") and "test accuracy" in lines[1]
    assert "after 1 epoch with 2 processes" in lines[-1], lines[-1]
