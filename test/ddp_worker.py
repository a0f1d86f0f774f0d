"""One process of the DistributedDataParallel tests (test_ddp.py starts two of them).

    python test/ddp_worker.py SCENARIO RANK WORLD PORT OUT_DIR

Scenarios: "train" (20 SGD steps on this rank's half of each batch, then the checks of unused
parameters), "fail" (rank 1 raises at step 3; rank 0 must get a clear error, not hang),
"stall" (rank 1 stops answering at step 3; rank 0 must fail after the 3 s timeout).
"""

import datetime
import os
import sys
import time
import traceback

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch.distributed as dist  # noqa: E402

import simplegrad as sg  # noqa: E402
from simplegrad import nn  # noqa: E402

STEPS, BATCH, FEATURES = 20, 16, 5


class Net(nn.Module):
    """A small float64 MLP; `extra` is used only when asked (unused-parameter checks)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(FEATURES, 8).double()
        self.fc2 = nn.Linear(8, 3).double()
        self.extra = nn.Linear(8, 3).double()

    def forward(self, x, use_extra=True):
        h = self.fc1(x).tanh()
        out = self.fc2(h)
        return out + self.extra(h) if use_extra else out


def data():
    """The full batches, the same in every process: (x, y) per step."""
    rng = np.random.default_rng(1)
    return [(rng.standard_normal((BATCH, FEATURES)), rng.integers(0, 3, BATCH))
            for _ in range(STEPS)]


def train(model, batches, step_fn=None):
    """20 steps of SGD with momentum on cross-entropy; the model's final state."""
    opt = sg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step, (x, y) in enumerate(batches):
        if step_fn is not None:
            step_fn(step)
        loss = nn.functional.cross_entropy(model(sg.Tensor(x)), sg.Tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {k: v.numpy() for k, v in model.state_dict().items()}


def main(scenario, rank, world, port, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=3))
    sg.manual_seed(rank)  # different initial weights: DDP must copy rank 0's
    model = Net()
    half = BATCH // world
    batches = [(x[rank * half:(rank + 1) * half], y[rank * half:(rank + 1) * half])
               for x, y in data()]
    if scenario == "train":
        # a small bucket cap: several buckets, launched while backward still runs
        ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=100 / 2**20)
        assert len(ddp._reducer.buckets) > 2, len(ddp._reducer.buckets)
        state = train(ddp, batches)
        np.savez(os.path.join(out, f"rank{rank}.npz"), **state)

        # find_unused_parameters=True: `extra` gets no gradient anywhere and keeps grad None
        model = Net()
        ddp = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
        x, y = batches[0]
        nn.functional.cross_entropy(ddp(sg.Tensor(x), use_extra=False), sg.Tensor(y)).backward()
        unused = [model.extra.weight.grad is None, model.extra.bias.grad is None]
        # the default: a clear error naming the parameters
        ddp = nn.parallel.DistributedDataParallel(Net())
        try:
            nn.functional.cross_entropy(ddp(sg.Tensor(x), use_extra=False),
                                        sg.Tensor(y)).backward()
            message = ""
        except RuntimeError as e:
            message = str(e)
        np.savez(os.path.join(out, f"unused{rank}.npz"), unused=np.array(unused),
                 fc1=model.fc1.weight.grad.numpy(), message=np.array(message))
    else:
        ddp = nn.parallel.DistributedDataParallel(model)

        def crash(step):
            if rank == 1 and step == 3:
                if scenario == "stall":
                    time.sleep(60)  # alive but silent: the test kills it
                raise SystemExit("rank 1 fails on purpose at step 3")

        try:
            train(ddp, batches, crash)
        except RuntimeError:
            with open(os.path.join(out, f"error{rank}.txt"), "w") as f:
                f.write(traceback.format_exc())
            raise
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
