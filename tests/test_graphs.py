"""Full-batch runs captured as CUDA graphs (``anynet.engines.graphs``) train exactly as the eager
steps do: rates, losses, accuracy, an optimizer's step count, divergence and interrupts.

On PyTorch with a CUDA device these tests run the real ``torch.cuda.CUDAGraph``; elsewhere the
``Eager`` stand-in replays the captured body by calling it, which checks everything but the capture.
"""

import itertools

import numpy as np
import pytest
from conftest import tol

import anynet
from anynet import DivergedError
from anynet.cli import XOR_T, XOR_X
from anynet.engines import graphs
from anynet.engines.buffer import Buffer
from anynet.optimizers import SGD, Adam

pytestmark = pytest.mark.skip_backend(
    "jax", "dask", "array_api_strict", reason="the buffer engine (the one that captures) runs on NumPy, CuPy, PyTorch"
)

CLASSES = np.array(["a", "b", "c", "a", "b", "c"])
X3 = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [0.5, 0.5], [0.2, 0.9]])


class Counting:
    """A capture that counts its captures and replays, around the one under test."""

    def __init__(self, inner):
        self.inner, self.captures, self.replays = inner, 0, 0

    def usable(self, X):
        return self.inner.usable(X)

    def warm_up(self, like):
        return self.inner.warm_up(like)

    def __call__(self, body, like):
        self.captures += 1
        replay = self.inner(body, like)

        def counted():
            self.replays += 1
            return replay()

        return counted


@pytest.fixture
def capture(monkeypatch, backend, device):
    """The real CUDA graph on PyTorch on a GPU, else the stand-in; counted."""
    real = backend == "torch" and device.startswith("cuda")
    counting = Counting(graphs.CAPTURES["torch"] if real else graphs.Eager())
    monkeypatch.setitem(graphs.CAPTURES, backend, counting)
    return counting


def both(monkeypatch, make, **fit):
    """``make()``'s network fitted eagerly and captured: ``(eager, captured)`` networks and histories."""
    out = []
    for env in ("0", "1"):
        monkeypatch.setenv(graphs.ENV, env)
        net = make()
        out.append((net, net.fit(**fit, verbose=0)))
    return out


def assert_same(a, b, exact):
    (net_a, h_a), (net_b, h_b) = a, b
    rtol = 0 if exact else tol(net_a.dtype)
    np.testing.assert_allclose(h_b.loss, h_a.loss, rtol=rtol, atol=0)
    assert h_b.accuracy == h_a.accuracy
    assert net_a.epochs_trained == net_b.epochs_trained
    for x, y in zip(net_a.weights + net_a.biases, net_b.weights + net_b.biases, strict=True):
        np.testing.assert_allclose(anynet.to_numpy(y), anynet.to_numpy(x), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "options",
    [{}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True}, {"alpha": 0.01}, {"schedule": "cosine"}],
    ids=["sgd", "momentum", "nesterov", "l2", "cosine"],
)
def test_a_captured_sgd_run_is_the_eager_run(monkeypatch, capture, dtype, options):
    runs = both(
        monkeypatch,
        lambda: anynet.Network([3, 4, 1], seed=0, dtype=dtype),
        X=XOR_X,
        t=XOR_T,
        epochs=1500,
        lr=0.5,
        **options,
    )
    assert_same(*runs, exact=True)
    assert capture.captures == 3  # one graph per slot of the weights' ring
    assert capture.replays == 1500 - graphs.WARM_UP  # the first steps warm up, eagerly
    assert runs[1][1].loss[-1] < runs[1][1].loss[0] * 0.5  # it learned: the agreement is not trivial


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_captured_adam_run_counts_its_steps_on_the_device(monkeypatch, capture, dtype):
    make = lambda: anynet.Network([2, 5, 3], activation="tanh", output_activation="softmax", seed=1, dtype=dtype)  # noqa: E731
    eager, captured = both(monkeypatch, make, X=X3, t=CLASSES, epochs=300, lr=0.05, optimizer="adam")
    # the bias correction's powers come from the array library's pow, not the host's: the last bit may differ
    assert_same(eager, captured, exact=False)
    assert captured[1].accuracy[-1] == 1.0
    for net in (eager[0], captured[0]):
        count = net.optimizer_state[0]
        assert type(count) is int
        assert count == 300
    # and the count goes on from there, captured again
    more = captured[0].fit(X3, CLASSES, epochs=40, lr=0.05, optimizer="adam", verbose=0)
    assert captured[0].optimizer_state[0] == 340
    assert np.isfinite(more.loss).all()


def test_a_long_run_reads_its_losses_once_a_block(monkeypatch, capture):
    monkeypatch.setattr(graphs, "BLOCK", 64)
    runs = both(monkeypatch, lambda: anynet.Network([3, 4, 1], seed=0), X=XOR_X, t=XOR_T, epochs=1000, lr=0.5)
    assert_same(*runs, exact=True)
    assert capture.captures == 3


def test_a_divergence_inside_a_block_keeps_what_the_eager_run_keeps(monkeypatch, capture):
    monkeypatch.setattr(graphs, "BLOCK", 32)
    results = []
    for env in ("0", "1"):
        monkeypatch.setenv(graphs.ENV, env)
        net = anynet.Network([3, 8, 1], activation="tanh", output_activation="identity", seed=0, dtype="float64")
        with pytest.raises(DivergedError) as info:  # a rate that grows every epoch, read from the device
            net.fit(XOR_X, XOR_T, epochs=400, lr=0.01, loss="mse", schedule=lambda lr0, e, n: lr0 * 1.05**e, verbose=0)
        results.append((net, info.value.history))
    (eager, h_eager), (captured, h_captured) = results
    assert 100 < h_eager.epochs < 400  # the loss overflowed inside a later block, not in the warm-up
    assert h_captured.loss == h_eager.loss
    for x, y in zip(eager.weights, captured.weights, strict=True):
        np.testing.assert_array_equal(anynet.to_numpy(y), anynet.to_numpy(x))
    assert capture.replays >= 32


def test_an_interrupt_between_replays_keeps_every_completed_epoch(monkeypatch, capture, backend):
    monkeypatch.setattr(graphs, "BLOCK", 50)
    calls, inner = itertools.count(1), capture.inner

    class Interrupting:
        usable, warm_up = inner.usable, inner.warm_up

        def __call__(self, body, like):
            replay = inner(body, like)

            def failing():
                replay()
                if next(calls) == 70:  # inside the second block, its values not read yet
                    raise KeyboardInterrupt

            return failing

    monkeypatch.setitem(graphs.CAPTURES, backend, Interrupting())
    net = anynet.Network([3, 4, 1], seed=0, dtype="float64")
    with pytest.raises(KeyboardInterrupt):
        net.fit(XOR_X, XOR_T, epochs=500, lr=0.5, verbose=0)
    done = graphs.WARM_UP + 69  # the 70th replay's interrupt came before it was counted: a step in progress
    assert net.history.epochs == net.epochs_trained == done
    monkeypatch.setenv(graphs.ENV, "0")
    alone = anynet.Network([3, 4, 1], seed=0, dtype="float64")
    h = alone.fit(XOR_X, XOR_T, epochs=done, lr=0.5, verbose=0)
    assert net.history.loss == h.loss
    for x, y in zip(alone.weights, net.weights, strict=True):
        np.testing.assert_array_equal(anynet.to_numpy(y), anynet.to_numpy(x))


def test_only_an_optimizer_that_promises_it_is_captured(monkeypatch, capture, asarray, backend, xp):
    class Rewritten(SGD):
        def flat_step(self, ops, p, pn, g, s, fstate, lr):  # reads lr as a Python number
            return super().flat_step(ops, p, pn, g, s, fstate, float(lr))

    class Promised(Rewritten):
        graph_safe = True

    layers = [(asarray(np.ones((3, 2))), asarray(np.zeros(2))), (asarray(np.ones((2, 1))), None)]
    X, lrs = asarray(XOR_X), [0.1] * graphs.MIN_STEPS
    acts = [anynet.activations.get("sigmoid")] * 2

    def engine(opt):
        loss = anynet.losses.get("half_sse")
        return Buffer(layers, opt.init(layers, xp=xp), acts=acts, loss=loss, opt=opt, alpha=0, xp=xp, backend=backend)

    assert graphs.capture_for(engine(SGD()), X, lrs) is capture
    assert graphs.capture_for(engine(Adam()), X, lrs) is capture
    assert graphs.capture_for(engine(Rewritten()), X, lrs) is None  # inherits SGD's promise, not its step
    assert graphs.capture_for(engine(Promised()), X, lrs) is capture
    assert graphs.capture_for(engine(SGD()), X, lrs[:-1]) is None  # too short to be worth a capture
    monkeypatch.setenv(graphs.ENV, "0")
    assert graphs.capture_for(engine(SGD()), X, lrs) is None


@pytest.mark.skip_backend("torch", reason="no kernel compiler for PyTorch: its steps run the in-place forms")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_captured_run_of_fused_kernels_is_the_eager_run(monkeypatch, capture, backend, dtype, optimizer):
    """The fused kernels (CuPy's compiled ones; on the CPU the NumPy stand-in) read the rate and Adam's
    bias correction from the device slots, in the network's dtype."""
    from anynet import kernels
    from anynet.engines import buffer_ops

    if backend != "cupy":
        monkeypatch.setitem(buffer_ops.KERNEL_COMPILERS, backend, kernels.numpy_kernel)
    make = lambda: anynet.Network([2, 5, 3], activation="tanh", output_activation="softmax", seed=1, dtype=dtype)  # noqa: E731
    eager, captured = both(monkeypatch, make, X=X3, t=CLASSES, epochs=100, lr=0.05, optimizer=optimizer)
    assert_same(eager, captured, exact=optimizer == "sgd")
    assert capture.replays == 100 - graphs.WARM_UP


def test_a_step_that_cannot_be_captured_trains_eagerly(monkeypatch, capture, backend, device):
    """A step whose ops a capture refuses (on a GPU: a copy from the host inside the step) falls back to
    the eager steps, once for the data, and ends where the eager run ends."""
    body = graphs.GraphRun._body

    def refused(self, p):
        run = body(self, p)

        def copying():
            if backend == "torch" and device.startswith("cuda"):
                import torch

                torch.ones(1).to(device)  # a pageable host copy: CUDA graph capture refuses it
            else:
                raise RuntimeError("operation not permitted when stream is capturing")
            run()

        return copying

    monkeypatch.setattr(graphs.GraphRun, "_body", refused)
    if not (backend == "torch" and device.startswith("cuda")):  # the stand-in calls the body at replay, not capture
        monkeypatch.setattr(graphs.Eager, "__call__", lambda self, body, like: body() or body)
    runs = both(monkeypatch, lambda: anynet.Network([3, 4, 1], seed=0), X=XOR_X, t=XOR_T, epochs=2500, lr=0.5)
    assert_same(*runs, exact=True)
    assert capture.captures == 1  # tried once: the fit's later chunks (of 1000 epochs) did not try again
    assert capture.replays == 0
