"""Optimizers: every update rule against torch.optim over 100 steps, parameter groups,
zero_grad, state_dict, in-place updates, and the bridge that lets torch.optim (and its LR
schedulers) drive simplegrad parameters without copies. Runs on every device."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import torch

import simplegrad as sg
from simplegrad import optim

pytestmark = pytest.mark.usefixtures("device")

# float64 trajectories agree with PyTorch's to this relative error (the bound)
TRAJECTORY_RTOL = 1e-10
# the bridge: the same model trained by torch.optim in PyTorch and in simplegrad
BRIDGE_RTOL = 1e-9


# ---- a small model, written once for both libraries ---------------------------------------------

def make_data(seed=0, n=32, features=3, hidden=16, classes=3):
    """Inputs, one-hot labels and the initial weights of a 2-layer tanh MLP (float64)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features))
    onehot = np.eye(classes)[rng.integers(0, classes, n)]
    weights = [rng.standard_normal((features, hidden)) / np.sqrt(features),
               rng.standard_normal(hidden) * 0.1,
               rng.standard_normal((hidden, classes)) / np.sqrt(hidden),
               rng.standard_normal(classes) * 0.1]
    return x, onehot, weights


def mlp_loss(params, x, onehot):
    """Cross-entropy of a tanh MLP; the same code runs on simplegrad and torch tensors."""
    w1, b1, w2, b2 = params
    logits = (x @ w1 + b1).tanh() @ w2 + b2
    return -(logits.log_softmax(-1) * onehot).sum() / x.shape[0]


def relative_error(actual, expected):
    """max |actual - expected| / max |expected| (the infinity-norm relative error)."""
    actual, expected = (np.asarray(v.detach() if isinstance(v, sg.Tensor) else v)
                        for v in (actual, expected))
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def compare_with_torch(build, steps=100, seed=0):
    """Train the MLP with build(sg.optim, params) and build(torch.optim, params) side by side;
    return the largest relative error of the loss and of the parameters over all steps."""
    x, onehot, weights = make_data(seed)
    params = [sg.Tensor(w.copy()) for w in weights]  # plain tensors: the optimizer marks them
    t_params = [torch.tensor(w, requires_grad=True) for w in weights]
    sx, sy, tx, ty = sg.Tensor(x), sg.Tensor(onehot), torch.tensor(x), torch.tensor(onehot)
    opt, t_opt = build(optim, params), build(torch.optim, t_params)
    worst_loss = worst_param = 0.0
    for _ in range(steps):
        loss, t_loss = mlp_loss(params, sx, sy), mlp_loss(t_params, tx, ty)
        worst_loss = max(worst_loss, relative_error(loss, t_loss.item()))
        opt.zero_grad()
        loss.backward()
        opt.step()
        t_opt.zero_grad()
        t_loss.backward()
        t_opt.step()
        for p, tp in zip(params, t_params):
            worst_param = max(worst_param, relative_error(p, tp.detach()))
    return worst_loss, worst_param


# ---- every optimizer against torch.optim ---------------------------------------------------------

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.5, weight_decay=1e-2)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), amsgrad=True, weight_decay=1e-2)),
    ("Adam", dict(lr=1e-3, maximize=True)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.5)),
    ("RMSprop", dict(lr=0.005, alpha=0.9, centered=True, momentum=0.9, weight_decay=1e-2)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=1e-2, initial_accumulator_value=0.1)),
]


@pytest.mark.parametrize("name, options", CONFIGS,
                         ids=[f"{n}-{'-'.join(o) or 'defaults'}" for n, o in CONFIGS])
def test_trajectory_matches_torch(name, options):
    def build(lib, params):
        return getattr(lib, name)(params, **options)

    worst_loss, worst_param = compare_with_torch(build)
    assert worst_loss <= TRAJECTORY_RTOL, f"{name}{options}: loss off by {worst_loss:.2e}"
    assert worst_param <= TRAJECTORY_RTOL, f"{name}{options}: parameters off by {worst_param:.2e}"


def test_param_groups_with_their_own_options_match_torch():
    def build(lib, params):
        w1, b1, w2, b2 = params
        return lib.Adam([{"params": [w1, b1], "lr": 0.05, "amsgrad": True},
                         {"params": [w2, b2], "weight_decay": 0.1}], lr=0.01)

    worst_loss, worst_param = compare_with_torch(build)
    assert max(worst_loss, worst_param) <= TRAJECTORY_RTOL


def test_add_param_group_fills_in_the_defaults_and_matches_torch():
    def build(lib, params):
        opt = lib.SGD(params[:2], lr=0.1, momentum=0.9)
        opt.add_param_group({"params": params[2:], "lr": 0.02})
        return opt

    worst_loss, worst_param = compare_with_torch(build)
    assert max(worst_loss, worst_param) <= TRAJECTORY_RTOL
    opt = build(optim, [sg.Tensor(w) for w in make_data()[2]])
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.02]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.9]


def test_changing_a_groups_lr_takes_effect():
    w = sg.Tensor(np.array([1.0, -2.0]))
    opt = optim.SGD([w], lr=0.1)
    opt.param_groups[0]["lr"] = 0.5
    (w * w).sum().backward()  # gradient 2w
    opt.step()
    np.testing.assert_array_equal(w.numpy(), [0.0, 0.0])


# ---- zero_grad, step(closure), in-place updates ------------------------------------------------

def test_zero_grad_sets_to_none_by_default():
    w = sg.Tensor(np.ones(3))
    opt = optim.Adam([w])
    (w * 2).sum().backward()
    opt.zero_grad()
    assert w.grad is None


def test_zero_grad_in_place_keeps_the_gradient_array():
    w = sg.Tensor(np.ones(3))
    opt = optim.SGD([w], lr=0.1)
    (w * 2).sum().backward()
    array = w.grad.data
    opt.zero_grad(set_to_none=False)
    assert w.grad.data is array
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros(3))
    (w * 3).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), np.full(3, 3.0))


def test_zero_grad_in_place_on_gradients_without_memory_of_their_own():
    w, s = sg.Tensor(np.ones(3)), sg.Tensor(np.array(2.0))
    opt = optim.SGD([w, s], lr=0.1)
    w.sum().backward(create_graph=True)  # with create_graph, .grad may be a broadcast view
    for _ in range(2):
        (s * 3).backward()  # a 0-d gradient accumulated twice
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros(3))
    assert s.grad.item() == 0.0 and not w.grad.requires_grad


def test_step_calls_the_closure_and_returns_its_loss():
    w = sg.Tensor(np.array([3.0]))
    opt = optim.SGD([w], lr=0.25)
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert len(calls) == 1 and loss.item() == 9.0
    np.testing.assert_array_equal(w.numpy(), [1.5])  # 3 - 0.25 * 6
    assert opt.step() is None


def test_parameters_without_gradient_are_left_alone():
    used, unused = sg.Tensor(np.ones(2)), sg.Tensor(np.ones(2))
    opt = optim.Adam([used, unused])
    used.sum().backward()
    opt.step()
    np.testing.assert_array_equal(unused.numpy(), np.ones(2))
    assert unused not in opt.state and used in opt.state


def test_update_is_in_place_and_visible_through_aliases():
    w = sg.Tensor(np.array([1.0, 2.0, 3.0]))
    array = w.data
    view = w.numpy()[1:]  # a NumPy view of the parameter's memory
    alias = torch.from_numpy(w.numpy()) if isinstance(array, np.ndarray) else None
    opt = optim.SGD([w], lr=0.5)
    (w * w).sum().backward()
    opt.step()
    assert w.data is array
    np.testing.assert_array_equal(w.numpy(), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(view, [0.0, 0.0])
    if alias is not None:
        np.testing.assert_array_equal(alias.numpy(), [0.0, 0.0, 0.0])


def test_float32_parameters_stay_float32():
    w = sg.Tensor(np.array([1.0, 2.0], dtype=np.float32))
    opt = optim.Adam([w], amsgrad=True)
    (w * w).sum().backward()
    opt.step()
    assert w.dtype == np.float32
    assert all(v.dtype == np.float32 for v in opt.state[w].values() if isinstance(v, sg.Tensor))


# ---- Adam's simplegrad defaults, plain tensors, errors -------------------------------------------

def test_adam_keeps_the_original_default_learning_rate():
    opt = optim.Adam([sg.Tensor(np.ones(2))])
    assert opt.defaults["lr"] == 0.01 and opt.param_groups[0]["lr"] == 0.01
    assert "1e-3" in optim.Adam.__doc__  # says that PyTorch's differs
    assert sg.Adam is optim.Adam and "Adam" in sg.__all__ and "optim" in sg.__all__
    import simplegrad.optim
    assert simplegrad.optim.AdamW is optim.AdamW


def test_adam_accepts_the_original_keyword_names():
    a, b = sg.Tensor(np.array([1.0, -1.0])), sg.Tensor(np.array([1.0, -1.0]))
    old = optim.Adam([a], learning_rate=0.05, beta1=0.8, beta2=0.99, epsilon=1e-6)
    new = optim.Adam([b], lr=0.05, betas=(0.8, 0.99), eps=1e-6)
    group = old.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"]) == (0.05, (0.8, 0.99), 1e-6)
    for _ in range(5):
        for opt, w in ((old, a), (new, b)):
            opt.zero_grad()
            (w * w * w).sum().backward()
            opt.step()
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_plain_tensors_are_marked_as_requiring_grad():
    # the DESIGN's classic style
    rng = np.random.default_rng(0)
    w = sg.Tensor(rng.standard_normal((2, 64)))
    before = w.numpy().copy()
    opt = sg.Adam([w])
    assert w.requires_grad
    x = sg.Tensor(rng.standard_normal((8, 2)))
    loss = (x @ w).tanh().sum()
    loss.backward()
    opt.step()
    assert np.all(np.abs(w.numpy() - before) > 0)


def test_integer_tensors_raise_a_clear_error_and_change_nothing():
    w, n = sg.Tensor(np.ones(2)), sg.Tensor(np.arange(3))
    with pytest.raises(TypeError, match="floating-point.*int64.*shape \\(3,\\)"):
        optim.SGD([w, n], lr=0.1)
    assert not w.requires_grad


def test_bad_parameter_lists_raise():
    w = sg.Tensor(np.ones(2))
    with pytest.raises(TypeError, match="iterable"):
        optim.SGD(w, lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([])
    with pytest.raises(ValueError, match="twice"):
        optim.Adam([{"params": [w]}, {"params": [w]}])
    with pytest.raises(ValueError, match="non-leaf"):
        optim.Adam([sg.Tensor(np.ones(2), requires_grad=True) * 2])
    with pytest.raises(TypeError, match="Tensors"):
        optim.Adam([np.ones(2)])
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="invalid"):
        optim.Adam([w], lr=-1)


# ---- state_dict ----------------------------------------------------------------------------------

def train(opt, params, steps, x, onehot):
    for _ in range(steps):
        opt.zero_grad()
        mlp_loss(params, x, onehot).backward()
        opt.step()


@pytest.mark.parametrize("name, options", [
    ("Adam", dict(amsgrad=True)), ("SGD", dict(lr=0.05, momentum=0.9)),
    ("RMSprop", dict(centered=True, momentum=0.5)), ("Adagrad", dict(lr_decay=0.01))])
def test_state_dict_round_trip_continues_training_exactly(name, options):
    x, onehot, weights = make_data(1)
    x, onehot = sg.Tensor(x), sg.Tensor(onehot)
    a = [sg.Tensor(w.copy()) for w in weights]
    opt_a = getattr(optim, name)([{"params": a[:2]}, {"params": a[2:], "lr": 0.02}], **options)
    train(opt_a, a, 10, x, onehot)
    opt_a.param_groups[0]["lr"] = 0.003  # as a scheduler would
    saved = opt_a.state_dict()
    assert sorted(saved["state"]) == [0, 1, 2, 3]
    assert [g["params"] for g in saved["param_groups"]] == [[0, 1], [2, 3]]
    b = [sg.Tensor(p.numpy().copy()) for p in a]
    opt_b = getattr(optim, name)([{"params": b[:2]}, {"params": b[2:]}])
    opt_b.load_state_dict(saved)
    assert [g["lr"] for g in opt_b.param_groups] == [0.003, 0.02]
    for p, q in zip(a, b):  # loaded state is a copy, not shared
        for key, value in opt_a.state[p].items():
            if isinstance(value, sg.Tensor):
                assert opt_b.state[q][key] is not value
                np.testing.assert_array_equal(opt_b.state[q][key].numpy(), value.numpy())
    train(opt_a, a, 10, x, onehot)
    train(opt_b, b, 10, x, onehot)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_state_dict_survives_json_style_keys():
    w = sg.Tensor(np.array([1.0, 2.0]))
    opt = optim.Adam([w])
    (w * w).sum().backward()
    opt.step()
    saved = opt.state_dict()
    saved = {"state": {str(i): {k: (v.tolist() if isinstance(v, sg.Tensor) else v)
                                for k, v in s.items()} for i, s in saved["state"].items()},
             "param_groups": json.loads(json.dumps(saved["param_groups"]))}
    other = optim.Adam([sg.Tensor(np.array([1.0, 2.0]))])
    other.load_state_dict(saved)
    (state,) = other.state.values()
    assert state["step"] == 1 and state["exp_avg"].dtype == np.float64
    np.testing.assert_array_equal(state["exp_avg"].numpy(), opt.state[w]["exp_avg"].numpy())


def test_load_state_dict_rejects_a_different_layout():
    w, v = sg.Tensor(np.ones(2)), sg.Tensor(np.ones(2))
    saved = optim.Adam([w, v]).state_dict()
    with pytest.raises(ValueError, match="group 0 has 2 parameters saved, 1 here"):
        optim.Adam([w]).load_state_dict(saved)
    with pytest.raises(ValueError, match="1 parameter groups saved, 2 here"):
        optim.Adam([{"params": [w]}, {"params": [v]}]).load_state_dict(saved)


def test_loads_a_torch_adam_state_dict():
    # the state's names are torch's, so torch.optim's state_dict loads and training continues
    x, onehot, weights = make_data(2)
    t_params = [torch.tensor(w, requires_grad=True) for w in weights]
    tx, ty = torch.tensor(x), torch.tensor(onehot)
    t_opt = torch.optim.Adam(t_params, lr=0.01, amsgrad=True)
    for _ in range(10):
        t_opt.zero_grad()
        mlp_loss(t_params, tx, ty).backward()
        t_opt.step()
    params = [sg.Tensor(tp.detach().numpy().copy()) for tp in t_params]
    opt = optim.Adam(params)
    opt.load_state_dict(t_opt.state_dict())
    assert opt.param_groups[0]["amsgrad"] and opt.state[params[0]]["step"] == 10
    for _ in range(10):
        t_opt.zero_grad()
        mlp_loss(t_params, tx, ty).backward()
        t_opt.step()
    train(opt, params, 10, sg.Tensor(x), sg.Tensor(onehot))
    for p, tp in zip(params, t_params):
        assert relative_error(p, tp.detach()) <= TRAJECTORY_RTOL


# ---- the PyTorch bridge --------------------------------------------------------------------------

@pytest.fixture
def host_arrays(device):
    if not isinstance(device.array(np.zeros(1)), np.ndarray):
        pytest.skip(f"the bridge tests use torch on the CPU, which shares NumPy arrays only; "
                    f"{device} keeps its arrays elsewhere")


def train_with_torch_optim(build, leaves, forward, steps, closure, zero_grad_to_none):
    """Train with the optimizer and scheduler of build(leaves); the loss curve."""
    opt, scheduler = build(leaves)
    curve = []
    for _ in range(steps):
        if closure:
            def evaluate():
                opt.zero_grad()
                loss = forward()
                loss.backward()
                return loss.item()  # a float: LBFGS only needs the value
            curve.append(opt.step(evaluate))
        else:
            opt.zero_grad(set_to_none=zero_grad_to_none)
            loss = forward()
            loss.backward()
            opt.step()
            curve.append(loss.item())
        if scheduler is not None:
            scheduler.step()
    return np.array(curve)


def bridge_pair(build, steps, seed=0, closure=False, zero_grad_to_none=True):
    """The MLP trained with build(params)'s torch optimizer in pure PyTorch and in simplegrad
    through torch_params: the two loss curves, simplegrad's parameters and their torch leaves."""
    x, onehot, weights = make_data(seed)
    t_params = [torch.tensor(w, requires_grad=True) for w in weights]
    params = [sg.Tensor(w.copy()) for w in weights]
    leaves = optim.torch_params(params)
    tx, ty, sx, sy = torch.tensor(x), torch.tensor(onehot), sg.Tensor(x), sg.Tensor(onehot)
    expected = train_with_torch_optim(build, t_params, lambda: mlp_loss(t_params, tx, ty),
                                      steps, closure, zero_grad_to_none)
    actual = train_with_torch_optim(build, leaves, lambda: mlp_loss(params, sx, sy),
                                    steps, closure, zero_grad_to_none)
    return expected, actual, params, leaves


@pytest.mark.usefixtures("host_arrays")
def test_bridge_adamw_with_one_cycle_lr_matches_pytorch():
    def build(params):
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2)
        return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=200)

    expected, actual, params, leaves = bridge_pair(build, 200)
    errors = np.abs(actual - expected) / np.abs(expected)
    assert errors.max() <= BRIDGE_RTOL, f"step {errors.argmax()}: {errors.max():.2e}"
    assert expected[-1] < 0.5 * expected[0]  # it did train
    for p, tp in zip(params, leaves):  # the torch leaves are the simplegrad arrays
        assert tp.data_ptr() == p.data.ctypes.data


@pytest.mark.usefixtures("host_arrays")
def test_bridge_sgd_with_momentum_matches_pytorch():
    def build(params):
        opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)
        return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=20, gamma=0.5)

    for to_none in (True, False):  # torch's zero_grad either forgets or zeroes in place
        expected, actual, _, _ = bridge_pair(build, 100, zero_grad_to_none=to_none)
        errors = np.abs(actual - expected) / np.abs(expected)
        assert errors.max() <= BRIDGE_RTOL, f"set_to_none={to_none}: {errors.max():.2e}"


@pytest.mark.usefixtures("host_arrays")
def test_bridge_lbfgs_with_a_closure_matches_pytorch():
    def build(params):
        return torch.optim.LBFGS(params, lr=1, max_iter=10, history_size=5,
                                 line_search_fn="strong_wolfe"), None

    # 4 steps: as the loss nears 0, L-BFGS magnifies rounding ~50x a step (pure PyTorch against
    # itself with x @ w written as (w.T @ x.T).T drifts the same way: 5e-11 after 5 steps)
    expected, actual, _, _ = bridge_pair(build, 4, closure=True)
    errors = np.abs(actual - expected) / np.abs(expected)
    assert errors.max() <= BRIDGE_RTOL, f"{errors.max():.2e}"
    assert expected[-1] < 0.5 * expected[0]


@pytest.mark.usefixtures("host_arrays")
def test_bridge_shares_memory_and_follows_torchs_zero_grad():
    w = sg.Tensor(np.array([1.0, 2.0, 3.0]))
    (tw,) = optim.torch_params([w])
    assert w.requires_grad and tw.requires_grad and tw.is_leaf
    assert tw.data_ptr() == w.data.ctypes.data
    opt = torch.optim.SGD([tw], lr=0.5)
    (w * w).sum().backward()
    assert tw.grad.data_ptr() == w.grad.data.ctypes.data  # the gradient is not copied
    opt.step()
    np.testing.assert_array_equal(w.numpy(), [0.0, 0.0, 0.0])  # the update is in w's memory
    opt.zero_grad()
    w.data[:] = [1.0, 1.0, 1.0]
    (w * w).sum().backward()
    (w * w).sum().backward()  # without zero_grad, gradients accumulate (as in torch)
    assert tw.grad.data_ptr() == w.grad.data.ctypes.data
    np.testing.assert_array_equal(tw.grad.numpy(), [4.0, 4.0, 4.0])
    opt.zero_grad()  # torch's: tw.grad = None; the next backward starts afresh
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(tw.grad.numpy(), [2.0, 2.0, 2.0])
    w.grad = None  # simplegrad's way of forgetting works too
    (w * 3).sum().backward()
    np.testing.assert_array_equal(tw.grad.numpy(), [3.0, 3.0, 3.0])
    opt.zero_grad(set_to_none=False)  # zeroes in place, and so zeroes simplegrad's gradient
    np.testing.assert_array_equal(w.grad.numpy(), [0.0, 0.0, 0.0])


@pytest.mark.usefixtures("host_arrays")
def test_bridge_zero_dimensional_parameter():
    s = sg.Tensor(np.array(2.0))
    (ts,) = optim.torch_params([s])
    for _ in range(2):
        (s * s).backward()
    assert ts.grad.item() == 8.0 and ts.grad.data_ptr() == s.grad.data.ctypes.data


def test_simplegrad_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None; import simplegrad; "
            "w = simplegrad.Tensor([1.0]); opt = simplegrad.Adam([w]); (w * w).sum().backward(); "
            "opt.step(); print(w.item())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.abspath(sg.__file__)), check=True)
    assert float(out.stdout) == pytest.approx(0.99, abs=1e-6)
