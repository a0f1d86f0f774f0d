"""simplegrad.save and simplegrad.load: every damaged file is refused, never half read.

A checkpoint either loads as exactly what was saved or raises ValueError naming the file:
checked by corrupting every byte of a small one, truncating it at every length, and by
hand-made archives whose table of contents is wrong. Also: the committed example checkpoints
still load, a replaced file keeps its permission bits, and nothing is ever unpickled.
"""

import io
import json
import os
import tracemalloc
import zipfile

import numpy as np
import pytest

import simplegrad as sg

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def sample():
    """A small checkpoint: tensors and arrays of several dtypes and shapes in nested dicts."""
    rng = np.random.default_rng(0)
    return {
        "model": {"fc.weight": sg.Tensor(rng.standard_normal((2, 3)).astype(np.float32)),
                  "steps": sg.Tensor(np.array(7, dtype=np.int64))},
        "optimizer": {"state": {0: {"step": 5, "avg": sg.Tensor(rng.standard_normal(2))}},
                      "groups": [{"lr": 0.01, "betas": (0.9, 0.999)}]},
        "mask": np.array([True, False, True]),
        "name": "run", "best": None, "scalar": np.float32(1.5),
    }


def same(a, b):
    """Whether two loaded objects are identical: types, keys and order, dtypes, shapes, bytes."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, sg.Tensor):
        a, b = a.numpy(), b.numpy()
    if isinstance(a, (np.ndarray, np.generic)):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    return a == b


def outcome(path, original):
    """'exact' when path loads as `original`, 'refused' on ValueError naming path; else fail."""
    try:
        back = sg.load(path)
    except ValueError as e:
        assert str(path) in str(e), e
        return "refused"
    assert same(back, original), f"{path} loaded as different data"
    return "exact"


def craft(path, toc, **arrays):
    """Write an archive as save does, with `toc` (JSON text) as its table of contents."""
    np.savez(path, __simplegrad__=np.array(toc), **arrays)


def test_every_corrupted_byte_is_refused_or_harmless(tmp_path):
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    sg.save(sample(), good)
    original = sg.load(good)
    assert same(original, sample())
    data = good.read_bytes()
    assert 1500 < len(data) < 4000  # small enough to run in seconds
    bad.write_bytes(data)
    with open(bad, "r+b") as file:  # one byte changed in place, then restored
        for pattern in (lambda byte: byte ^ 0xFF, lambda byte: 0):
            counts = {"exact": 0, "refused": 0}
            for i in range(len(data)):
                file.seek(i)
                file.write(bytes([pattern(data[i])]))
                file.flush()
                counts[outcome(bad, original)] += 1
                file.seek(i)
                file.write(data[i:i + 1])
            # every byte of the arrays and of the table of contents is under a CRC, so most
            # changes are refused; the exact ones hit fields zipfile does not need (times,
            # versions) or bytes already 0
            assert counts["refused"] > len(data) // 3, counts
    assert bad.read_bytes() == data  # each change was undone


def test_truncated_and_empty_files_are_refused(tmp_path):
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    sg.save(sample(), good)
    data = good.read_bytes()
    for length in range(len(data)):
        bad.write_bytes(data[:length])
        with pytest.raises(ValueError, match="corrupt|not a checkpoint") as info:
            sg.load(bad)
        assert str(bad) in str(info.value)
    bad.write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        sg.load(bad)


def test_sizes_are_checked_before_anything_is_allocated(tmp_path):
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    sg.save({"w": sg.ones(3)}, good)
    data = good.read_bytes()
    with zipfile.ZipFile(good) as archive:
        directory = archive.start_dir
    for field in (directory + 20, directory + 24):  # a member's stored and unpacked sizes
        damaged = bytearray(data)
        damaged[field:field + 4] = (0xFFFFFFF0).to_bytes(4, "little")
        bad.write_bytes(damaged)
        with pytest.raises(ValueError, match="corrupt: its member 'w.npy' claims .*4294967280"):
            sg.load(bad)
    # an .npy header (its CRC right) that claims 2 GiB of data, followed by 8 bytes
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (1 << 28,)})
    manifest = io.BytesIO()
    np.lib.format.write_array(manifest, np.array(toc({"ndarray": "w"})))
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("w.npy", header.getvalue() + bytes(8))
        archive.writestr("__simplegrad__.npy", manifest.getvalue())
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"header of 'w.npy' \(float64, shape \(268435456,"):
            sg.load(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak


def test_table_of_contents_nested_too_deep(tmp_path):
    path = tmp_path / "deep.npz"
    head = '{"format": "simplegrad", "version": 1, "tree": '
    for tree, depth in [('{"list": [' * 600 + "]}" * 600, 1201),  # 600 nested lists
                        ("[" * 100_000 + "]" * 100_000, 100_001)]:  # beyond any stack
        craft(path, head + tree + "}")
        with pytest.raises(ValueError, match=f"nests {depth} deep, more than the 302") as info:
            sg.load(path)
        assert str(path) in str(info.value)
    # the deepest object save writes loads again; one level more is refused by save itself
    obj = leaf = {}
    for _ in range(sg._MAX_NESTING - 1):
        leaf["x"] = {}
        leaf = leaf["x"]
    leaf["x"] = sg.ones(2)
    sg.save(obj, path)
    back = sg.load(path)
    for _ in range(sg._MAX_NESTING):
        back = back["x"]
    np.testing.assert_array_equal(back.numpy(), np.ones(2, np.float32))
    leaf["x"] = [sg.ones(2)]
    with pytest.raises(ValueError, match="nest more than 100 deep"):
        sg.save(obj, tmp_path / "deeper.npz")
    cycle = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="nest more than 100 deep"):
        sg.save(cycle, tmp_path / "cycle.npz")


def toc(tree):
    return json.dumps({"format": "simplegrad", "version": 1, "tree": tree})


@pytest.mark.parametrize("text, arrays, message", [
    (toc({"dict": [["w", {"tensor": "w"}]]}), {"w": np.ones(2), "v": np.ones(2)},
     "does not name, such as 'v'"),
    (toc({"dict": [["w", {"tensor": "w"}], ["v", {"tensor": "v"}]]}), {"w": np.ones(2)},
     "names an array 'v' that it does not hold"),
    (toc({"list": [{"tensor": "w"}, {"ndarray": "w"}]}), {"w": np.ones(2)},
     "names the array 'w' twice"),
    (toc({"dict": [["a", {"int": 1}], ["a", {"int": 2}]]}), {}, "the key 'a' twice"),
    (toc({"dict": [[True, {"int": 1}]]}), {}, "not a \\[key, entry\\] pair"),
    (toc({"int": "3"}), {}, "that save does not write"),
    (toc({"int": True}), {}, "that save does not write"),
    (toc({"pickle": "x"}), {}, "that save does not write"),
    (toc({"int": 1, "str": "a"}), {}, "not an object with one key"),
    (toc({"scalar": "w"}), {"w": np.ones(2)}, "the scalar 'w' is an array of shape \\(2,\\)"),
    (json.dumps({"format": "simplegrad", "version": 2, "tree": {"none": None}}), {},
     "format version 2"),
    (json.dumps({"format": "other", "version": 1, "tree": {"none": None}}), {},
     "not simplegrad's"),
    (toc({"none": None})[:-1], {}, "Expecting"),  # not JSON
])
def test_table_of_contents_must_match_the_arrays(tmp_path, text, arrays, message):
    path = tmp_path / "crafted.npz"
    craft(path, text, **arrays)
    with pytest.raises(ValueError, match=message) as info:
        sg.load(path)
    assert str(path) in str(info.value)


UNPICKLED = []


def ring():
    """What unpickling an Alarm calls."""
    UNPICKLED.append(True)
    return "rung"


class Alarm:
    """An object that records being unpickled."""

    def __reduce__(self):
        return ring, ()


def test_nothing_is_unpickled(tmp_path):
    path = tmp_path / "pickled.npz"
    craft(path, toc({"ndarray": "x"}), x=np.array([Alarm()], dtype=object))
    with pytest.raises(ValueError, match="'x.npy' holds Python objects") as info:
        sg.load(path)
    assert str(path) in str(info.value) and not UNPICKLED
    with np.load(path, allow_pickle=True) as archive:  # what unpickling it would have done
        assert archive["x"][0] == "rung" and UNPICKLED
    with pytest.raises(TypeError, match="holds Python objects"):
        sg.save({"x": np.array([1, "a"], dtype=object)}, tmp_path / "objects.npz")


def test_a_plain_npz_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, a=np.arange(3), b=np.ones(2))
    with pytest.raises(ValueError, match="no table of contents.*np.load reads a plain") as info:
        sg.load(path)
    assert str(path) in str(info.value)
    np.savez_compressed(path, a=np.arange(3))
    with pytest.raises(ValueError, match="no table of contents"):
        sg.load(path)
    craft(path, toc({"ndarray": "a"}), a=np.arange(3))  # a checkpoint written by np.savez
    np.testing.assert_array_equal(sg.load(path), np.arange(3))


@pytest.mark.parametrize("name", ["lenet5.npz", "gan_generator.npz"])
def test_committed_checkpoints_still_load(name):
    path = os.path.join(EXAMPLES, name)
    state = sg.load(path)
    with np.load(path) as archive:
        assert sorted(state) == sorted(set(archive.files) - {"__simplegrad__"})
        for key, value in state.items():
            assert isinstance(value, sg.Tensor)
            expected = archive[key]
            assert value.dtype == expected.dtype and value.shape == expected.shape
            np.testing.assert_array_equal(value.numpy(), expected)


def test_arrays_of_every_layout_round_trip(tmp_path):
    arrays = {
        "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        "empty": np.zeros((0, 3), np.float32), "zero_d": np.array(2.5), "half": np.ones(3, "f2"),
        "big_endian": np.arange(4, dtype=">i4"), "complex": np.array([1 + 2j]),
        "strings": np.array(["ab", "c"]), "bytes": np.array([b"xy"]),
        "dates": np.array(["2024-01-02"], "datetime64[D]"),
        "records": np.array([(1, 2.0)], [("a", "i2"), ("b", "f8")]),
    }
    path = tmp_path / "layouts.npz"
    sg.save(arrays, path)
    back = sg.load(path)
    assert list(back) == list(arrays)
    for key, value in arrays.items():
        assert back[key].dtype == value.dtype and back[key].shape == value.shape, key
        assert back[key].flags.writeable, key
        np.testing.assert_array_equal(back[key], value)
    assert back["fortran"].flags.f_contiguous


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_save_keeps_the_permission_bits_of_the_file_it_replaces(tmp_path):
    path = tmp_path / "ckpt.npz"
    umask = os.umask(0o022)
    os.umask(umask)
    sg.save({"w": sg.ones(2)}, path)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # a new file: as open() makes it
    for mode in (0o600, 0o640, 0o444):
        os.chmod(path, mode)
        sg.save({"w": sg.zeros(2)}, path)
        assert os.stat(path).st_mode & 0o777 == mode
        np.testing.assert_array_equal(sg.load(path)["w"].numpy(), np.zeros(2, np.float32))
    assert os.listdir(tmp_path) == ["ckpt.npz"]
