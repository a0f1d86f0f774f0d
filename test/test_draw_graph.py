"""draw_graph: the DOT text of a small MLP's graph (nodes, edges, leaf kinds, parameter names,
gradients), a freed graph, escaping, deep graphs, and rendering with Graphviz when it is here."""

import collections
import re
import shutil

import numpy as np
import pytest

import simplegrad as sg
from simplegrad import nn

NODE = re.compile(r"^\s*(t\d+) \[(.*)\];$")
EDGE = re.compile(r"^\s*(t\d+) -> (t\d+);$")
ATTRIBUTE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[\w.]+)')


def parse(dot):
    """{node id: {attribute: value}} (labels unescaped) and the list of (input, output) edges."""
    nodes, edges = {}, []
    lines = dot.strip().splitlines()
    assert lines[0] == "digraph simplegrad {" and lines[-1] == "}"
    for line in lines[1:-1]:
        if match := NODE.match(line):
            attributes = {}
            for key, value in ATTRIBUTE.findall(match.group(2)):
                if value.startswith('"'):
                    value = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1),
                                   value[1:-1])
                attributes[key] = value
            nodes[match.group(1)] = attributes
        elif match := EDGE.match(line):
            edges.append(match.groups())
        else:
            assert line.strip().startswith("node ["), f"unexpected line {line!r}"
    return nodes, edges


def described(dot):
    """The graph as a Counter of (kind, label) nodes and one of (input label, output label)
    edges, independent of the node ids."""
    nodes, edges = parse(dot)
    label = {n: a["label"] for n, a in nodes.items()}
    return (collections.Counter((a["class"], a["label"]) for a in nodes.values()),
            collections.Counter((label[a], label[b]) for a, b in edges))


def mlp_loss(seed=0):
    sg.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    rng = np.random.default_rng(seed)
    x, y = sg.Tensor(rng.standard_normal((5, 3))), sg.Tensor(rng.standard_normal((5, 2)))
    loss = ((model(x) - y) ** 2).mean()
    return model, loss


# The expected graph of mlp_loss, written out: Linear is x @ weight.T + bias, mean a sum times
# 1/n, and the scalars 2 and 1/n are constants of shape ().
MLP_NODES = {
    ("constant", "constant\n(5, 3) float64"): 1,    # x
    ("parameter", "0.weight\n(4, 3) float64"): 1,
    ("op", "permute\n(3, 4) float64"): 1,
    ("op", "matmul\n(5, 4) float64"): 1,
    ("parameter", "0.bias\n(4,) float64"): 1,
    ("op", "add\n(5, 4) float64"): 1,
    ("op", "tanh\n(5, 4) float64"): 1,
    ("parameter", "2.weight\n(2, 4) float64"): 1,
    ("op", "permute\n(4, 2) float64"): 1,
    ("op", "matmul\n(5, 2) float64"): 1,
    ("parameter", "2.bias\n(2,) float64"): 1,
    ("op", "add\n(5, 2) float64"): 1,
    ("constant", "constant\n(5, 2) float64"): 1,    # y
    ("op", "sub\n(5, 2) float64"): 1,
    ("constant", "constant\n() float64"): 2,        # the exponent 2 and the 1/n of the mean
    ("op", "pow\n(5, 2) float64"): 1,
    ("op", "sum\n() float64"): 1,
    ("op", "mul\n() float64"): 1,
}
MLP_EDGES = {
    ("0.weight\n(4, 3) float64", "permute\n(3, 4) float64"): 1,
    ("constant\n(5, 3) float64", "matmul\n(5, 4) float64"): 1,
    ("permute\n(3, 4) float64", "matmul\n(5, 4) float64"): 1,
    ("matmul\n(5, 4) float64", "add\n(5, 4) float64"): 1,
    ("0.bias\n(4,) float64", "add\n(5, 4) float64"): 1,
    ("add\n(5, 4) float64", "tanh\n(5, 4) float64"): 1,
    ("2.weight\n(2, 4) float64", "permute\n(4, 2) float64"): 1,
    ("tanh\n(5, 4) float64", "matmul\n(5, 2) float64"): 1,
    ("permute\n(4, 2) float64", "matmul\n(5, 2) float64"): 1,
    ("matmul\n(5, 2) float64", "add\n(5, 2) float64"): 1,
    ("2.bias\n(2,) float64", "add\n(5, 2) float64"): 1,
    ("add\n(5, 2) float64", "sub\n(5, 2) float64"): 1,
    ("constant\n(5, 2) float64", "sub\n(5, 2) float64"): 1,
    ("sub\n(5, 2) float64", "pow\n(5, 2) float64"): 1,
    ("constant\n() float64", "pow\n(5, 2) float64"): 1,
    ("pow\n(5, 2) float64", "sum\n() float64"): 1,
    ("sum\n() float64", "mul\n() float64"): 1,
    ("constant\n() float64", "mul\n() float64"): 1,
}


def test_mlp_graph_nodes_and_edges():
    model, loss = mlp_loss()
    dot = sg.draw_graph(loss, params=dict(model.named_parameters()))
    nodes, edges = described(dot)
    assert nodes == MLP_NODES
    assert edges == MLP_EDGES
    # the output is drawn last and outlined; every edge goes from an earlier node to a later one
    ids, pairs = parse(dot)
    last = max(ids, key=lambda n: int(n[1:]))
    assert ids[last]["label"] == "mul\n() float64" and ids[last]["penwidth"] == "2"
    assert all(int(a[1:]) < int(b[1:]) for a, b in pairs)
    # styles tell the kinds apart
    style = {a["class"]: (a["shape"], a["fillcolor"]) for a in ids.values()}
    assert len(set(style.values())) == 3


def test_parameters_without_names_and_leaves_that_require_grad():
    model, loss = mlp_loss()
    nodes, _ = described(sg.draw_graph(loss))  # Parameters are recognised without params=
    assert nodes[("parameter", "parameter\n(4, 3) float64")] == 1
    assert sum(n for (kind, _), n in nodes.items() if kind == "parameter") == 4
    a = sg.Tensor(np.ones((2, 2), np.float32), requires_grad=True)
    nodes, edges = described(sg.draw_graph((a * a).sum()))
    assert nodes == {("leaf", "leaf\n(2, 2) float32"): 1, ("op", "mul\n(2, 2) float32"): 1,
                     ("op", "sum\n() float32"): 1}
    # a tensor used twice by one op gives two edges
    assert edges[("leaf\n(2, 2) float32", "mul\n(2, 2) float32")] == 2


def test_show_grad():
    model, loss = mlp_loss()
    params = dict(model.named_parameters())
    assert "\\ngrad" not in sg.draw_graph(loss, show_grad=True, params=params)  # none yet
    loss.backward(retain_graph=True)
    nodes, _ = described(sg.draw_graph(loss, show_grad=True, params=params))
    with_grad = sorted(label for _, label in nodes if "grad" in label)
    assert with_grad == ["0.bias\n(4,) float64\ngrad (4,)",
                         "0.weight\n(4, 3) float64\ngrad (4, 3)",
                         "2.bias\n(2,) float64\ngrad (2,)",
                         "2.weight\n(2, 4) float64\ngrad (2, 4)"]
    without, _ = described(sg.draw_graph(loss, params=params))
    assert without == MLP_NODES


def test_freed_graph_is_an_error():
    _, loss = mlp_loss()
    loss.backward()
    with pytest.raises(RuntimeError, match=r"freed by backward\(\).*before backward\(\).*"
                                           r"retain_graph=True"):
        sg.draw_graph(loss)
    # a new op on top of a freed graph: drawn, with the freed node as an end
    x = sg.Tensor(np.ones(2), requires_grad=True)
    y = x * 2
    y.sum().backward()
    nodes, edges = described(sg.draw_graph(y.exp()))
    assert nodes == {("op", "mul (graph freed)\n(2,) float64"): 1, ("op", "exp\n(2,) float64"): 1}
    assert sum(edges.values()) == 1


def test_no_graph_and_several_roots():
    nodes, edges = described(sg.draw_graph(sg.Tensor(np.zeros(3))))
    assert nodes == {("constant", "constant\n(3,) float64"): 1} and not edges
    x = sg.Tensor(np.ones(2), requires_grad=True)
    h = x.exp()
    dot = sg.draw_graph([h.tanh(), h.log()])
    nodes, edges = described(dot)
    assert nodes == {("leaf", "leaf\n(2,) float64"): 1, ("op", "exp\n(2,) float64"): 1,
                     ("op", "tanh\n(2,) float64"): 1, ("op", "log\n(2,) float64"): 1}
    assert sum(edges.values()) == 3
    outlined = sorted(a["label"] for a in parse(dot)[0].values() if "penwidth" in a)
    assert outlined == ["log\n(2,) float64", "tanh\n(2,) float64"]


def test_labels_are_escaped():
    w = nn.Parameter(sg.Tensor(np.ones(2)))
    name = 'odd "name" \\ with\nnewline'
    dot = sg.draw_graph(w * 2, params={name: w})
    assert r'label="odd \"name\" \\ with\nnewline\n(2,) float64"' in dot
    nodes, _ = described(dot)
    assert ("parameter", name + "\n(2,) float64") in nodes


def test_deep_graph_is_walked_iteratively():
    x = sg.Tensor(np.ones(1), requires_grad=True)
    y = x
    for _ in range(20_000):
        y = y * 1.0
    nodes, edges = parse(sg.draw_graph(y))
    assert len(nodes) == 1 + 2 * 20_000 and len(edges) == 2 * 20_000


def test_write_dot_and_bad_format(tmp_path):
    _, loss = mlp_loss()
    path = tmp_path / "mlp.dot"
    dot = sg.draw_graph(loss, path=path)
    assert path.read_text() == dot
    with pytest.raises(ValueError, match=r"\.jpg.*\.dot, \.svg, \.png, \.pdf"):
        sg.draw_graph(loss, path=tmp_path / "mlp.jpg")
    other = tmp_path / "mlp.txt"
    sg.draw_graph(loss, path=other, format="dot")
    assert other.read_text() == dot


def test_render_without_dot_names_the_package(tmp_path, monkeypatch):
    _, loss = mlp_loss()
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot here
    with pytest.raises(RuntimeError, match="`dot`.*apt-get install graphviz"):
        sg.draw_graph(loss, path=tmp_path / "mlp.svg")


@pytest.mark.skipif(shutil.which("dot") is None,
                    reason="Graphviz's dot is not installed (apt-get install graphviz)")
def test_render_svg(tmp_path):
    model, loss = mlp_loss()
    path = tmp_path / "mlp.svg"
    sg.draw_graph(loss, path=path, params=dict(model.named_parameters()))
    text = path.read_text()
    assert text.lstrip().startswith(("<?xml", "<svg"))
    assert "0.weight" in text
