"""Data-parallel LeNet-5 training: throughput with 1 and 2 processes, and the all-reduce share.

    python benchmarks/ddp.py                    # gloo on this machine's CPUs
    python benchmarks/ddp.py --steps 100 --procs 1 2 4
    python benchmarks/ddp.py --device cupy      # one GPU per process, NCCL (untested here)

For each number of processes P this script starts P copies of itself (--worker), joined by
torch.distributed over the loopback. Each trains LeNet-5 (float32) wrapped in
nn.parallel.DistributedDataParallel with SGD at batch 64 per process on random images, and
times --steps steps after --warmup untimed ones. Reported per P:

* throughput: images per second over all processes (P x 64 x steps / the slowest rank's time);
* all-reduce share: time backward() spends waiting for the gradient all-reduces after its
  sweep (DistributedDataParallel's wait; includes waiting for a slower peer) / step time.

On CPUs the processes share the machine's cores: each gets cores / P BLAS threads, so P=1 and
P=2 use the same hardware and the comparison shows the cost or gain of splitting it. A
1-process run without DDP is timed too, as the baseline of the wrapper's own cost.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
BATCH = 64


def worker(args):
    import torch.distributed as dist
    from lenet import batches, lenet5

    import simplegrad as sg
    from simplegrad import nn
    rank = int(os.environ["RANK"])
    if args.device == "cupy":
        import torch
        sg.Tensor.device = sg.CupyDevice(rank)
        torch.cuda.set_device(rank)
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    sg.manual_seed(0)
    model = lenet5(nn)
    if not args.no_ddp:
        model = nn.parallel.DistributedDataParallel(model)
    opt = sg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images, labels = batches(seed=rank)
    images, labels = sg.Tensor(images), sg.Tensor(labels)

    def step(i):
        i %= len(images)
        loss = nn.functional.cross_entropy(model(images[i]), labels[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()  # waits for a GPU to finish the step

    for i in range(args.warmup):
        step(i)
    dist.barrier()
    waited = 0.0 if args.no_ddp else model._reducer.wait_seconds
    start = time.perf_counter()
    for i in range(args.steps):
        step(i)
    seconds = time.perf_counter() - start
    waited = 0.0 if args.no_ddp else model._reducer.wait_seconds - waited
    result = {"rank": rank, "seconds": seconds, "waited": waited}
    print("RESULT " + json.dumps(result), flush=True)
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(procs, args, ddp=True):
    """Run `procs` workers; per-rank results."""
    threads = max(1, (os.cpu_count() or 1) // procs) if args.device == "numpy" else 1
    port = free_port()
    command = [sys.executable, os.path.abspath(__file__), "--worker", "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--device", args.device]
    if not ddp:
        command.append("--no-ddp")
    running = []
    for rank in range(procs):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(procs),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
               "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
               "MKL_NUM_THREADS": str(threads)}
        running.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True,
                                        cwd=HERE))
    results = []
    for p in running:
        out, _ = p.communicate(timeout=600)
        if p.returncode != 0:
            sys.exit(f"a worker failed with code {p.returncode}:\n{out}")
        results += [json.loads(line[7:]) for line in out.splitlines() if line.startswith("RESULT")]
    return results, threads


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2],
                        help="numbers of processes to time")
    parser.add_argument("--device", choices=["numpy", "cupy"], default="numpy",
                        help="numpy over gloo, or cupy (one GPU per process) over NCCL")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-ddp", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    from common import machine
    backend = "NCCL" if args.device == "cupy" else "gloo"
    print(f"LeNet-5, batch {BATCH} per process, float32, SGD, {backend}; {machine()}")
    runs = [("1 process, no DDP", 1, False)] + [
        (f"{p} process{'es' * (p > 1)}, DDP", p, True) for p in args.procs]
    base = None
    for name, procs, ddp in runs:
        results, threads = launch(procs, args, ddp)
        seconds = max(r["seconds"] for r in results)
        step_ms = 1e3 * seconds / args.steps
        rate = procs * BATCH * args.steps / seconds
        share = np.mean([r["waited"] / r["seconds"] for r in results])
        base = base or rate
        print(f"{name:<20} {threads} thread{'s' * (threads > 1)} each: "
              f"{rate:8.0f} images/s ({rate / base:4.2f}x)   step {step_ms:7.2f} ms   "
              f"all-reduce wait {share:6.1%} of the step")


if __name__ == "__main__":
    main()
