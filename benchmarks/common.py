"""Shared timing helpers: simplegrad and PyTorch are timed in the same process run."""

import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def best_of(fn, repeat=5, warmup=1):
    """The fastest of `repeat` timed calls of fn(), in seconds (after `warmup` untimed calls)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def compare(fns, repeat=5, rounds=3):
    """Best time of each named workload over `rounds` rounds of `repeat` back-to-back runs.

    Each library runs in a block of its own (a BLAS thread pool left spinning by the previous
    call would otherwise slow the next library), and the blocks alternate across rounds so
    that a slow stretch of a shared machine does not fall on one library only.
    """
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], best_of(fn, repeat))
    return best


def machine():
    """A one-line description of where the figures were taken."""
    import numpy as np
    import torch
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, NumPy {np.__version__}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads)")


def report(name, ours, theirs, target):
    ratio = ours / theirs
    verdict = "ok" if ratio <= target else "OVER TARGET"
    print(f"{name:<44} simplegrad {ours * 1e3:9.3f} ms   torch {theirs * 1e3:9.3f} ms   "
          f"ratio {ratio:5.2f}x  (target <= {target}x: {verdict})")
    return ratio
