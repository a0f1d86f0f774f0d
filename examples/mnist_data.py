"""MNIST from the standard IDX files, for the MNIST examples and their tests (NumPy only).

    from mnist_data import load_mnist
    images, labels = load_mnist(split="train")    # uint8 (60000, 28, 28), int64 (60000,)
    images, labels = load_mnist(split="test", limit=1000)

Where the files are read from, first match wins:

1. the `data_dir` argument (the examples' ``--data-dir``);
2. the environment variable ``SIMPLEGRAD_MNIST``;
3. ``../shared/data/mnist`` beside the repository (``<repo>/../shared/data/mnist``).

The folder holds the four files of the official distribution under their standard names
(``train-images-idx3-ubyte`` and so on), each either gzip-compressed (``.gz``) or not. Nothing
is ever downloaded: when the files are missing, the error says where to get them.

Checksums. With ``verify=True`` (the default) the MD5 of each file's uncompressed content must
match the table below, the published checksums of the standard files, so a truncated or
corrupted download fails loudly instead of training on garbage. Other IDX data under the
standard names (a tiny set written by a test, a subset, a variant such as Fashion-MNIST) loads
with ``verify=False``; the header checks (magic numbers 2051 and 2049, 28x28 images, as many
labels as images, labels 0-9, sizes that match the header) apply either way.
"""

import gzip
import hashlib
import os
import struct

import numpy as np

ENV_VAR = "SIMPLEGRAD_MNIST"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DIR = os.path.join(os.path.dirname(ROOT), "shared", "data", "mnist")
SOURCE = ("the official MNIST distribution, http://yann.lecun.com/exdb/mnist/ (or a mirror of "
          "it such as https://ossci-datasets.s3.amazonaws.com/mnist/)")

# split -> (images file, labels file), standard names of the uncompressed files
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# MD5 of the uncompressed content of each standard file
MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049  # 0x0803: unsigned bytes, 3 dims; 0x0801: 1 dim


def resolve_data_dir(data_dir=None):
    """The folder to read: `data_dir`, else $SIMPLEGRAD_MNIST, else <repo>/../shared/data/mnist."""
    if data_dir:
        return os.fspath(data_dir)
    return os.environ.get(ENV_VAR) or DEFAULT_DIR


def _missing(directory, names):
    return FileNotFoundError(
        f"MNIST: {', '.join(names)} not found in {directory} (each may be gzip-compressed, "
        f"with .gz). The folder searched is the data_dir argument (--data-dir), else the "
        f"environment variable {ENV_VAR}, else <repo>/../shared/data/mnist. Get the four files "
        f"train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
        f"t10k-labels-idx1-ubyte.gz from {SOURCE}, and put them in that folder (nothing is "
        f"downloaded automatically).")


def _find(directory, name):
    """The path of `name` or `name.gz` in directory, or None."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def read_idx(path, magic, verify_md5=None):
    """The array stored in one IDX file (gzip or not), after checking its header.

    `magic` is the expected magic number (2051 images, 2049 labels); `verify_md5`, when given,
    is the expected MD5 of the uncompressed content.
    """
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as file:
            content = file.read()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"MNIST: cannot read {path}: {e}") from e
    if verify_md5 is not None:
        digest = hashlib.md5(content).hexdigest()
        if digest != verify_md5:
            raise ValueError(
                f"MNIST: {path} fails its checksum: the MD5 of its uncompressed content is "
                f"{digest}, the standard file's is {verify_md5}. The file is corrupt or not the "
                f"standard one: get it again from {SOURCE}, or load custom IDX data with "
                f"verify=False.")
    if len(content) < 4:
        raise ValueError(f"MNIST: {path} is too short for an IDX header ({len(content)} bytes)")
    (found,) = struct.unpack(">i", content[:4])
    if found != magic:
        kind = "images" if magic == IMAGES_MAGIC else "labels"
        raise ValueError(f"MNIST: {path} has magic number {found}, but an IDX file of {kind} "
                         f"starts with {magic}: it is not an MNIST {kind} file")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(content) < header:
        raise ValueError(f"MNIST: {path} is too short for its header ({len(content)} bytes)")
    dims = struct.unpack(f">{ndim}i", content[4:header])
    if ndim == 3 and dims[1:] != (28, 28):
        raise ValueError(f"MNIST: {path} holds images of {dims[1]}x{dims[2]} pixels, not 28x28")
    expected = header + int(np.prod(dims))
    if len(content) != expected:
        raise ValueError(f"MNIST: {path} is {len(content)} bytes, but its header (dims "
                         f"{dims}) says {expected}: the file is truncated or corrupt")
    return np.frombuffer(content, np.uint8, offset=header).reshape(dims)


def load_mnist(data_dir=None, split="train", limit=None, verify=True):
    """Images (N, 28, 28) uint8 and labels (N,) int64 of the "train" or "test" split.

    `limit` keeps the first `limit` samples. `verify` checks each file against the MD5 of the
    standard distribution; pass False for custom IDX data under the standard names.
    """
    if split not in FILES:
        raise ValueError(f"MNIST: split must be 'train' or 'test', got {split!r}")
    directory = resolve_data_dir(data_dir)
    names = FILES[split]
    paths = [_find(directory, name) for name in names]
    if None in paths:
        raise _missing(directory, [n for n, p in zip(names, paths) if p is None])
    images = read_idx(paths[0], IMAGES_MAGIC, MD5[names[0]] if verify else None)
    labels = read_idx(paths[1], LABELS_MAGIC, MD5[names[1]] if verify else None)
    if len(images) != len(labels):
        raise ValueError(f"MNIST: {paths[0]} holds {len(images)} images but {paths[1]} holds "
                         f"{len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"MNIST: {paths[1]} holds label {labels.max()}; labels are 0-9")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images.copy(), labels.astype(np.int64)


def write_idx(path, array):
    """Write a uint8 array as an IDX file (gzip-compressed when path ends with .gz): for tests
    and custom data sets."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(f">i{array.ndim}i", 0x0800 | array.ndim, *array.shape)
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "wb") as file:
        file.write(header + array.tobytes())
