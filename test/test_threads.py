"""Threads: grad mode and the engine's state are per thread, as in PyTorch, so independent
graphs built and differentiated in several threads at once give exactly what they give one
after the other."""

import threading
import time

import numpy as np
import pytest

import simplegrad as sg
from simplegrad import nn, optim


def train(seed, steps=15, out=None, key=None, barrier=None):
    """A small MLP trained with Adam on fixed data; returns (losses, final parameters)."""
    rng = np.random.default_rng(seed)
    x = sg.Tensor(rng.standard_normal((32, 5)))
    y = sg.Tensor(rng.integers(0, 3, 32))
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    for p in model.parameters():  # seeded weights, not the shared generator's
        nn.init.normal_(p, 0.0, 0.3, generator=rng)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        if barrier is not None:
            barrier.wait()  # both threads in the same phase of a step at once
        with sg.no_grad():  # an evaluation pass under no_grad, overlapping the other's backward
            losses.append(nn.functional.cross_entropy(model(x), y).item())
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    result = (losses, [p.numpy().copy() for p in model.parameters()])
    if out is not None:
        out[key] = result
    return result


def test_two_models_in_two_threads_train_as_one_after_the_other():
    alone = [train(seed) for seed in (1, 2)]
    results, barrier = {}, threading.Barrier(2, timeout=30)
    threads = [threading.Thread(target=train, args=(seed,),
                                kwargs=dict(out=results, key=seed, barrier=barrier))
               for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seed, (losses, params) in zip((1, 2), alone):
        threaded_losses, threaded_params = results[seed]
        assert threaded_losses == losses, f"seed {seed}: losses differ in a thread"
        for a, b in zip(params, threaded_params):
            np.testing.assert_array_equal(a, b)  # bit for bit


def test_overlapping_no_grad_blocks_leave_each_thread_right():
    sleep = sg.no_grad()(time.sleep)
    a = threading.Thread(target=sleep, args=(0.2,))
    b = threading.Thread(target=sleep, args=(0.4,))
    a.start()
    time.sleep(0.05)
    b.start()
    a.join()
    b.join()
    assert sg.is_grad_enabled()


def test_ops_under_no_grad_record_nothing_while_other_threads_come_and_go():
    # ops read a count of the threads with recording off before their own thread's mode: the
    # count must stay right as blocks in other threads open and close around this one's
    w = sg.Tensor(np.ones(3), requires_grad=True)
    a_in, b_in, a_out, b_check = (threading.Event() for _ in range(4))
    seen = {}

    def a():
        with sg.no_grad():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b():
        a_in.wait(5)
        with sg.no_grad():
            b_in.set()
            a_out.wait(5)  # a's block has closed, b's is still open
            seen["inside"] = (w * 2).requires_grad
            b_check.set()
        seen["after"] = (w * 2).requires_grad

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    assert b_check.wait(5)
    assert (w * 2).requires_grad  # the main thread records all along
    for t in threads:
        t.join()
    assert seen == {"inside": False, "after": True}
    assert sg._threads_without_grad == 0


def test_grad_mode_is_per_thread():
    seen = {}
    entered, leave = threading.Event(), threading.Event()

    def off():
        with sg.no_grad():
            seen["off"] = sg.is_grad_enabled()
            entered.set()
            leave.wait(5)

    t = threading.Thread(target=off)
    t.start()
    assert entered.wait(5)
    w = sg.Tensor(np.ones(3), requires_grad=True)
    assert sg.is_grad_enabled() and (w * 2).requires_grad  # this thread still records
    leave.set()
    t.join()
    assert seen["off"] is False
    with sg.set_grad_enabled(False):
        other = {}
        t = threading.Thread(target=lambda: other.setdefault("mode", sg.is_grad_enabled()))
        t.start()
        t.join()
        assert other["mode"] is True  # a new thread starts with recording on, as in PyTorch


def test_backward_in_one_thread_does_not_stop_recording_in_another():
    # while one thread is inside backward (held there by a hook), another builds a graph
    inside, release = threading.Event(), threading.Event()
    built = {}
    x = sg.Tensor(np.ones(3), requires_grad=True)
    y = (x * 3).sum()
    y.register_hook(lambda g: (inside.set(), release.wait(5), None)[2])
    t = threading.Thread(target=y.backward)
    t.start()
    assert inside.wait(5)
    w = sg.Tensor(np.ones(2), requires_grad=True)
    built["z"] = (w * w).sum()
    release.set()
    t.join()
    assert built["z"].requires_grad and built["z"].grad_fn == "sum"
    built["z"].backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0])
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0, 3.0])


@pytest.mark.parametrize("threads", [4])
def test_many_threads_differentiate_their_own_graphs(threads):
    # gradients land on each thread's own leaves, and hooks' ids never collide
    out, errors = {}, []

    def work(i):
        try:
            rng = np.random.default_rng(i)
            a = rng.standard_normal((20, 20))
            w = sg.Tensor(a.copy(), requires_grad=True)
            handles = [w.register_hook(lambda g: None) for _ in range(50)]
            for _ in range(20):
                ((w @ w).tanh() * 2).sum().backward()
            out[i] = (w.grad.numpy(), {h.id for h in handles})
        except Exception as e:  # noqa: BLE001 - reported below with its thread
            errors.append((i, e))

    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    ids = [out[i][1] for i in range(threads)]
    assert len(set().union(*ids)) == 50 * threads
    for i in range(threads):
        w = sg.Tensor(np.random.default_rng(i).standard_normal((20, 20)), requires_grad=True)
        for _ in range(20):
            ((w @ w).tanh() * 2).sum().backward()
        np.testing.assert_array_equal(out[i][0], w.grad.numpy())
