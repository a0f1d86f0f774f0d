"""Draw the graph of LeNet-5's forward pass (examples/mnist_cnn.py) with simplegrad.draw_graph.

A batch of two random 28x28 images goes through an untrained LeNet5; the graph of its logits,
with the parameters named as in ``model.named_parameters()``, is written as Graphviz DOT to
``<out>/lenet5_graph.dot`` and, when Graphviz's ``dot`` program is installed (Debian/Ubuntu:
``apt-get install graphviz``), rendered to ``<out>/lenet5_graph.svg`` and ``.png``. It prints
one line with the number of tensors and edges and the files written.

    python examples/draw_lenet.py                  # out/lenet5_graph.dot (.svg, .png)
    python examples/draw_lenet.py --out docs
"""

import argparse
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # mnist_cnn, device_choice
try:
    import simplegrad  # noqa: F401
except ImportError:  # not installed: use the simplegrad.py of this checkout
    sys.path.insert(0, ROOT)
import numpy as np  # noqa: E402
from device_choice import CHOICES, HELP, use_device  # noqa: E402
from mnist_cnn import LeNet5  # noqa: E402

import simplegrad as sg  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out", help="folder for the drawings (default: out)")
    parser.add_argument("--device", choices=CHOICES, default="numpy", help=HELP)
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and images")
    args = parser.parse_args()
    use_device(args.device)
    os.makedirs(args.out, exist_ok=True)

    sg.manual_seed(args.seed)
    model = LeNet5()
    images = sg.randn(2, 1, 28, 28)
    logits = model(images)
    params = dict(model.named_parameters())

    written = [os.path.join(args.out, "lenet5_graph.dot")]
    dot = sg.draw_graph(logits, path=written[0], params=params)
    if shutil.which("dot"):
        for suffix in (".svg", ".png"):
            written.append(os.path.join(args.out, "lenet5_graph" + suffix))
            sg.draw_graph(logits, path=written[-1], params=params)
    else:
        print("Graphviz's dot is not installed (apt-get install graphviz): wrote the DOT only")
    tensors = sum(1 for line in dot.splitlines() if line.lstrip().startswith("t")
                  and "->" not in line)
    edges = sum(1 for line in dot.splitlines() if "->" in line)
    print(f"draw_lenet: the LeNet-5 forward graph of logits {tuple(logits.shape)} has "
          f"{tensors} tensors and {edges} edges ({np.sum([p.numel() for p in params.values()])} "
          f"parameters); wrote {', '.join(written)}")


if __name__ == "__main__":
    main()
