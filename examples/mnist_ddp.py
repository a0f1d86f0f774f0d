"""LeNet-5 learns MNIST in several processes at once, with DistributedDataParallel.

Each process trains on its own share of every epoch's images (DistributedSampler) in batches of
--batch-size; backward() averages the gradients of all processes over torch.distributed, so
the processes keep identical weights and together take the steps of one process with batches
of --batch-size x the number of processes. Rank 0 prints the loss and accuracy of each epoch
(training: over all processes; test: the 10,000 test images) and the seconds it took.

Launch it with torchrun, which starts the processes and sets RANK, WORLD_SIZE, MASTER_ADDR and
MASTER_PORT for torch.distributed.init_process_group(); without torchrun it runs as one process.

    torchrun --nproc_per_node=2 examples/mnist_ddp.py                 # 2 processes, gloo
    torchrun --nproc_per_node=2 examples/mnist_ddp.py --epochs 1 --limit 5000
    python examples/mnist_ddp.py --epochs 1                          # 1 process

On two machines (see docs/ddp.md), run on each, with its own --node_rank (0 and 1):

    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=2 --rdzv_backend=c10d \\
        --rdzv_endpoint=10.0.0.1:29500 examples/mnist_ddp.py

The data are the standard MNIST IDX files, read by examples/mnist_data.py from --data-dir, else
$SIMPLEGRAD_MNIST, else ../shared/data/mnist beside the repository; nothing is downloaded.
"""

import argparse
import os
import socket
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # mnist_data, mnist_cnn
try:
    import simplegrad  # noqa: F401
except ImportError:  # not installed: use the simplegrad.py of this checkout
    sys.path.insert(0, ROOT)
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from mnist_cnn import LeNet5, evaluate, normalize  # noqa: E402
from mnist_data import load_mnist  # noqa: E402

import simplegrad as sg  # noqa: E402
from simplegrad import Tensor, nn  # noqa: E402


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init(device):
    """Join the process group that torchrun describes in the environment (or a group of one)."""
    if "RANK" not in os.environ:  # started without torchrun: a single process
        os.environ.update(RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(_free_port()))
    if device == "cupy":  # one GPU per process on each machine; NCCL moves the gradients
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        Tensor.device = sg.CupyDevice(local_rank)
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    return dist.get_rank(), dist.get_world_size()


def train_epoch(model, optimizer, loader):
    """One pass over this process's batches; (loss sum, correct, seen) over all processes."""
    totals = np.zeros(3)
    for x, y in loader:
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()  # returns with every process's gradients averaged
        optimizer.step()
        totals += (loss.item() * len(y), int((logits.argmax(dim=1).numpy() == y.numpy()).sum()),
                   len(y))
    totals = torch.from_numpy(totals)
    dist.all_reduce(totals)
    return totals.tolist()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5, help="passes over the training images")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size per process")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed for the weights and the order")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N training and test images (quick runs)")
    parser.add_argument("--device", choices=["numpy", "cupy"], default="numpy",
                        help="numpy (gloo between processes) or cupy (one GPU per process, NCCL)")
    parser.add_argument("--data-dir", default=None,
                        help="folder of the MNIST IDX files (default: $SIMPLEGRAD_MNIST, else "
                             "../shared/data/mnist beside the repository)")
    args = parser.parse_args()

    try:
        train_images, train_labels = load_mnist(args.data_dir, "train", args.limit)
        test_images, test_labels = load_mnist(args.data_dir, "test", args.limit)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(str(e))
    rank, world = init(args.device)
    train = sg.TensorDataset(Tensor(normalize(train_images)), Tensor(train_labels))
    sampler = sg.DistributedSampler(train, seed=args.seed)
    loader = sg.DataLoader(train, batch_size=args.batch_size, sampler=sampler)

    sg.manual_seed(args.seed)
    model = nn.parallel.DistributedDataParallel(LeNet5())  # rank 0's weights everywhere
    optimizer = sg.optim.Adam(model.parameters(), lr=args.lr)
    say = print if rank == 0 else (lambda *a, **k: None)
    say(f"mnist_ddp: {world} process{'es' * (world > 1)}, {len(train)} training images, "
        f"{len(sampler)} per process, batch {args.batch_size} per process", flush=True)

    seconds, test_acc = [], 0.0
    for epoch in range(1, args.epochs + 1):
        sampler.set_epoch(epoch)  # a new order each epoch, the same in every process
        start = time.perf_counter()
        loss_sum, correct, seen = train_epoch(model, optimizer, loader)
        seconds.append(time.perf_counter() - start)
        if rank == 0:
            test_loss, test_acc = evaluate(model.module, normalize(test_images), test_labels)
            say(f"epoch {epoch}: training loss {loss_sum / seen:.4f}, training accuracy "
                f"{correct / seen:.2%}, test loss {test_loss:.4f}, test accuracy "
                f"{test_acc:.2%} ({seconds[-1]:.1f} s)", flush=True)
    mean = np.mean(seconds) if seconds else 0.0
    epochs = f"{args.epochs} epoch{'s' * (args.epochs != 1)}"
    say(f"mnist_ddp: test accuracy {test_acc:.2%} on {len(test_labels)} images after {epochs} "
        f"with {world} process{'es' * (world > 1)} ({mean:.1f} s/epoch)")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
