"""LeNet-5 training speed and memory of simplegrad against PyTorch.

    python benchmarks/lenet.py                 # step time, then peak memory
    python benchmarks/lenet.py --steps 50      # a shorter memory run

1. Time of one training step (forward, cross-entropy, backward, SGD step) of LeNet-5 at
   batch 64, float32, both libraries in this process. Target: at most 2x PyTorch's time.
2. Peak resident memory of a 200-step training run, each library in a process of its own
   (this script re-run with --memory-run). Target: at most 1.5x PyTorch's. Reported twice:
   the whole process's peak, and the growth over the process after its imports (what the
   training itself takes; a process that imports torch starts a few hundred MB higher).

LeNet-5: conv 6@5x5 padding 2, relu, max-pool 2, conv 16@5x5, relu, max-pool 2, linear
400-120-84-10. The inputs are random images with random labels: speed and memory do not
depend on what the pixels show.
"""

import argparse
import json
import resource
import subprocess
import sys

import numpy as np
from common import compare, machine, report

BATCH = 64
BATCHES = 8  # cycled: the data stays small next to what training allocates


def batches(seed=0):
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((BATCHES, BATCH, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, (BATCHES, BATCH))
    return images, labels


def lenet5(nn):
    """LeNet-5 written once, for either library's `nn` (their names and signatures agree)."""

    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
            self.fc1, self.fc2 = nn.Linear(400, 120), nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x):
            x = nn.functional.max_pool2d(self.conv1(x).relu(), 2)
            x = nn.functional.max_pool2d(self.conv2(x).relu(), 2)
            x = self.fc2(self.fc1(x.reshape(x.shape[0], 400)).relu()).relu()
            return self.fc3(x)

    return LeNet5()


def training_step(lib):
    """A function run(i) doing one SGD step of LeNet-5 on batch i (mod BATCHES) in `lib`."""
    if lib == "torch":
        import torch as library
        from torch import nn
        tensor = library.from_numpy
    else:
        import simplegrad as library
        from simplegrad import nn
        tensor = library.Tensor
    library.manual_seed(0)
    model = lenet5(nn)
    opt = library.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images, labels = batches()
    images, labels = tensor(images), tensor(labels)

    def run(i=0):
        i %= BATCHES
        loss = nn.functional.cross_entropy(model(images[i]), labels[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return run


def peak_rss_mb():
    """This process's peak resident set size. VmHWM belongs to the address space made by
    exec, whereas getrusage's ru_maxrss would also count the parent that forked us."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def memory_run(lib, steps):
    """Train `steps` steps in this process; print the peak RSS as JSON."""
    run = training_step(lib)  # imports done, data made
    baseline = peak_rss_mb()
    for i in range(steps):
        run(i)
    print(json.dumps({"baseline": baseline, "peak": peak_rss_mb()}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="steps of the memory run")
    parser.add_argument("--repeat", type=int, default=20, help="timed steps; the best is kept")
    parser.add_argument("--memory-run", choices=["simplegrad", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_run:
        memory_run(args.memory_run, args.steps)
        return
    print(machine())
    best = compare({lib: training_step(lib) for lib in ("simplegrad", "torch")}, args.repeat)
    report("LeNet-5 training step, batch 64, float32", best["simplegrad"], best["torch"], 2.0)
    mem = {}
    for lib in ("simplegrad", "torch"):
        out = subprocess.run([sys.executable, __file__, "--memory-run", lib, "--steps",
                              str(args.steps)], capture_output=True, text=True, check=True)
        mem[lib] = json.loads(out.stdout.strip().splitlines()[-1])
    ours, theirs = mem["simplegrad"], mem["torch"]
    growth = [m["peak"] - m["baseline"] for m in (ours, theirs)]
    print(f"peak RSS over {args.steps} steps (separate processes): simplegrad "
          f"{ours['peak']:.0f} MB, torch {theirs['peak']:.0f} MB, ratio "
          f"{ours['peak'] / theirs['peak']:.2f}x (target <= 1.5x)")
    print(f"growth over the process after imports: simplegrad {growth[0]:.0f} MB, torch "
          f"{growth[1]:.0f} MB, ratio {growth[0] / max(growth[1], 1):.2f}x")


if __name__ == "__main__":
    main()
