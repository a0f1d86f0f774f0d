"""profile(): op and kernel counts per phase, times, the table, the Chrome trace, and that
nothing is recorded or wrapped outside the context. Runs on every device."""

import json
import time

import numpy as np
import pytest

import simplegrad as sg

pytestmark = pytest.mark.usefixtures("device")


def small_graph():
    rng = np.random.default_rng(0)
    x = sg.Tensor(rng.standard_normal((4, 3)))
    w = sg.Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    b = sg.Tensor(np.zeros(2), requires_grad=True)
    return x, w, b


def kernel_calls(prof):
    return {key: s.kernel_calls for key, s in prof.ops.items()}


# the outermost device calls of (x @ w + b).tanh().sum() and its backward, the same on every
# device: a derived kernel is counted once, whether native or built from primitives
EXPECTED = {
    ("forward", "matmul"): {"matmul": 1},
    ("forward", "add"): {"add": 1},
    ("forward", "tanh"): {"tanh": 1},
    ("forward", "sum"): {"sum": 1},
    ("backward", "(other)"): {"full": 1},                  # the seed gradient
    ("backward", "sum"): {"reshape": 1, "broadcast_to": 1},  # g.reshape(...).expand(...)
    ("backward", "tanh"): {"mul": 2, "subtract": 1, "array": 1},  # g * (1 - out * out)
    ("backward", "add"): {"sum": 1, "reshape": 1, "copy": 1},  # b's gradient unbroadcast, stored
    ("backward", "matmul"): {"transpose": 1, "matmul": 1, "copy": 1},  # x^T g, w.grad stored
}


def test_counts_per_phase_and_op(device):
    x, w, b = small_graph()
    with sg.profile() as prof:
        (x @ w + b).tanh().sum().backward()
    assert {key: s.calls for key, s in prof.ops.items()} == {key: 1 for key in EXPECTED}
    assert kernel_calls(prof) == EXPECTED
    nested = {key: s.nested_calls for key, s in prof.ops.items() if s.nested_calls}
    if isinstance(device, sg.NumpyDevice):
        assert nested == {}  # every derived kernel is one NumPy call
    else:  # the reference device builds them from primitives, counted apart
        assert nested["forward", "matmul"] == {"broadcast_to": 2, "einsum": 1}
        assert nested["forward", "tanh"]["exp"] == 1
        assert ("forward", "add") not in nested


def test_repeated_ops_and_no_grad_are_counted(device):
    x, w, b = small_graph()
    with sg.profile() as prof:
        for _ in range(3):
            (x @ w).sum().backward()
        with sg.no_grad():
            (x @ w).exp()
    calls = {key: s.calls for key, s in prof.ops.items()}
    assert calls["forward", "matmul"] == 4 and calls["forward", "exp"] == 1
    assert calls["backward", "matmul"] == 3 and ("backward", "exp") not in calls
    assert prof.ops["forward", "matmul"].kernel_calls == {"matmul": 4}


def test_times_are_consistent(device):
    x, w, b = small_graph()
    start = time.perf_counter_ns()
    with sg.profile() as prof:
        (x @ w + b).tanh().sum().backward()
    wall = time.perf_counter_ns() - start
    for s in prof.ops.values():
        assert s.time_ns >= 0 and all(ns >= 0 for ns in s.kernel_ns.values())
        assert sum(s.kernel_ns.values()) <= s.time_ns  # an op's kernels run inside its span
        assert set(s.kernel_ns) == set(s.kernel_calls)
    assert sum(s.time_ns for s in prof.ops.values()) <= wall  # the spans do not overlap


def test_table(device):
    x, w, b = small_graph()
    with sg.profile() as prof:
        (x @ w + b).tanh().sum().backward()
    lines = prof.table().splitlines()
    assert lines[0].split()[:5] == ["phase", "op", "calls", "total", "ms"]
    rows = [line.split() for line in lines[1:-2]]
    assert len(rows) == len(EXPECTED)
    times = [float(row[3]) for row in rows]
    assert times == sorted(times, reverse=True)
    assert any(row[:3] == ["backward", "matmul", "1"] and "matmul(1)" in row for row in rows)
    assert lines[-2].split()[:3] == ["forward", "total", "4"]
    assert len(prof.table(limit=2).splitlines()) == 1 + 2 + 2


def test_chrome_trace(device, tmp_path):
    x, w, b = small_graph()
    with sg.profile() as prof:
        (x @ w + b).tanh().sum().backward()
    path = tmp_path / "trace.json"
    prof.to_chrome_trace(path)
    events = json.loads(path.read_text())["traceEvents"]
    assert all(e["ph"] == "X" and e["dur"] >= 0 and e["ts"] >= 0 for e in events)
    assert all({"pid", "tid", "name", "cat"} <= set(e) for e in events)
    ops = [e for e in events if e["cat"] in ("forward", "backward")]
    assert [e["name"] for e in ops if e["cat"] == "forward"] == ["matmul", "add", "tanh", "sum"]
    assert [e["name"] for e in ops if e["cat"] == "backward"] == [
        "(other)", "sum", "tanh", "add", "matmul"]
    kernels = [e for e in events if e["cat"] == "kernel"]
    assert len(kernels) == sum(sum(c.values()) for c in EXPECTED.values())
    eps = 1e-3  # microseconds, for rounding
    for k in kernels:  # each kernel lies inside the op it is attributed to
        (op,) = [e for e in ops if e["name"] == k["args"]["op"] and e["cat"] == k["args"]["phase"]]
        assert op["ts"] - eps <= k["ts"] and k["ts"] + k["dur"] <= op["ts"] + op["dur"] + eps


def test_nothing_recorded_outside_and_methods_restored(device):
    cls = type(device)
    before = dict(vars(cls))
    x, w, b = small_graph()
    with sg.profile() as prof:
        assert vars(cls)["matmul"] is not before.get("matmul")  # wrapped while active
        (x @ w).sum().backward()
    assert sg._profiler is None
    assert dict(vars(cls)) == before
    recorded = {key: s.calls for key, s in prof.ops.items()}
    (x @ w + b).tanh().sum().backward()
    assert {key: s.calls for key, s in prof.ops.items()} == recorded
    # a second profile sees the fresh ops only, and an exception still restores everything
    with pytest.raises(ValueError):
        with sg.profile() as again:
            (x @ w).exp()
            raise ValueError
    assert set(again.ops) == {("forward", "matmul"), ("forward", "exp")}
    assert dict(vars(cls)) == before and sg._profiler is None


def test_profiles_do_not_nest(device):
    with sg.profile():
        with pytest.raises(RuntimeError, match="do not nest"):
            with sg.profile():
                pass
    assert sg._profiler is None


def test_optimizer_updates_are_not_an_op(device):
    x, w, b = small_graph()
    opt = sg.optim.SGD([w, b], lr=0.1)
    with sg.profile() as prof:
        for _ in range(2):
            opt.zero_grad()
            (x @ w + b).tanh().sum().backward()
            opt.step()
    assert prof.ops["forward", "matmul"].calls == 2
    assert "assign" not in prof.ops["forward", "matmul"].kernel_calls
    assert prof.ops["forward", "(other)"].kernel_calls.get("assign", 0) >= 2
