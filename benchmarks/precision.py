"""log_softmax at large logits, and GELU's float16 gradient there: simplegrad against PyTorch.

    python benchmarks/precision.py                       # this simplegrad.py
    python benchmarks/precision.py --simplegrad OLD.py   # another copy of the file

64x10 logits uniform in [-s, s] (rounded to the dtype), log_softmax along the last axis: the
largest difference from torch's result in the same dtype. Then the float16 gradient of
gelu(approximate="tanh") at +1000 and -1000 (torch: 1 and 0).
"""

import argparse
import importlib.util
import warnings

import numpy as np
import torch
from common import ROOT, machine


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simplegrad", default=f"{ROOT}/simplegrad.py", metavar="PATH")
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("simplegrad_checked", args.simplegrad)
    sg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sg)
    print(machine(), "|", args.simplegrad)
    warnings.simplefilter("ignore", RuntimeWarning)  # float16 overflow inside the old forms
    for dtype, scale in ((np.float16, 1e3), (np.float32, 1e3), (np.float32, 1e5)):
        x = np.random.default_rng(0).uniform(-1, 1, (64, 10)) * scale
        x = x.astype(dtype)
        ours = sg.Tensor(x).log_softmax(-1).numpy().astype(np.float64)
        theirs = torch.log_softmax(torch.from_numpy(x), -1).numpy().astype(np.float64)
        print(f"log_softmax {np.dtype(dtype).name} at |x| <= {scale:g}: "
              f"max |simplegrad - torch| = {np.abs(ours - theirs).max():.3g}")
    t = sg.Tensor(np.array([1000.0, -1000.0], np.float16), requires_grad=True)
    t.gelu(approximate="tanh").sum().backward()
    print(f"gelu(approximate='tanh') float16 gradient at +1000, -1000: {t.grad.numpy()}")


if __name__ == "__main__":
    main()
