"""What anynet is measured against: the seed's own loop, and the same network written by hand in NumPy,
CuPy, PyTorch (by hand and with autograd) and JAX (jitted), and scikit-learn's ``MLPClassifier``.

Every function here does its setup (copies, transfers to the device) when called and returns the
thunk the clock times; the thunk returns the final parameters. Libraries are imported inside the
functions, so a machine without one never imports it.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Thunk = Callable[[], Any]

# --------------------------------------------------------------------------- XOR, the seed's job


def seed_xor(X: np.ndarray, t: np.ndarray, W1: np.ndarray, W2: np.ndarray, steps: int) -> Thunk:
    """The seed, as written: int ``X``, ``np.dot``, in-place ``+=`` updates (lr 1, ½Σ(y−t)²)."""

    def run():
        syn0, syn1 = W1.copy(), W2.copy()
        for _ in range(steps):
            l1 = 1 / (1 + np.exp(-(np.dot(X, syn0))))
            l2 = 1 / (1 + np.exp(-(np.dot(l1, syn1))))
            l2_delta = (t - l2) * (l2 * (1 - l2))
            l1_delta = l2_delta.dot(syn1.T) * (l1 * (1 - l1))
            syn1 += l1.T.dot(l2_delta)
            syn0 += X.T.dot(l1_delta)
        return syn0, syn1

    return run


def compat_seed_xor(X: np.ndarray, t: np.ndarray, W1: np.ndarray, W2: np.ndarray, steps: int) -> Thunk:
    """The seed's loop through ``array_api_compat.numpy`` with float ``X``: what a naive port costs."""
    import array_api_compat.numpy as xp

    Xf, tf = xp.asarray(X, dtype=xp.float64), xp.asarray(t, dtype=xp.float64)

    def run():
        syn0, syn1 = xp.asarray(W1, copy=True), xp.asarray(W2, copy=True)
        for _ in range(steps):
            l1 = 1 / (1 + xp.exp(-xp.matmul(Xf, syn0)))
            l2 = 1 / (1 + xp.exp(-xp.matmul(l1, syn1)))
            l2_delta = (tf - l2) * (l2 * (1 - l2))
            l1_delta = xp.matmul(l2_delta, syn1.T) * (l1 * (1 - l1))
            syn1 = syn1 + xp.matmul(l1.T, l2_delta)
            syn0 = syn0 + xp.matmul(Xf.T, l1_delta)
        return syn0, syn1

    return run


def cupy_xor(X, t, W1, W2, steps: int) -> Thunk:
    """The seed's loop in CuPy, float64 on the GPU."""
    import cupy as cp

    Xd, td = cp.asarray(X, dtype=cp.float64), cp.asarray(t, dtype=cp.float64)
    A, B = cp.asarray(W1), cp.asarray(W2)

    def run():
        syn0, syn1 = A.copy(), B.copy()
        for _ in range(steps):
            l1 = 1 / (1 + cp.exp(-(Xd @ syn0)))
            l2 = 1 / (1 + cp.exp(-(l1 @ syn1)))
            l2_delta = (td - l2) * (l2 * (1 - l2))
            l1_delta = (l2_delta @ syn1.T) * (l1 * (1 - l1))
            syn1 += l1.T @ l2_delta
            syn0 += Xd.T @ l1_delta
        return syn0, syn1

    return run


def torch_xor(X, t, W1, W2, steps: int, device: str = "cpu") -> Thunk:
    """The seed's loop in PyTorch, backprop by hand, float64."""
    import torch

    Xd = torch.as_tensor(X, dtype=torch.float64, device=device)
    td = torch.as_tensor(t, dtype=torch.float64, device=device)
    A, B = torch.as_tensor(W1, device=device), torch.as_tensor(W2, device=device)

    def run():
        with torch.no_grad():
            syn0, syn1 = A.clone(), B.clone()
            for _ in range(steps):
                l1 = torch.sigmoid(Xd @ syn0)
                l2 = torch.sigmoid(l1 @ syn1)
                l2_delta = (td - l2) * (l2 * (1 - l2))
                l1_delta = (l2_delta @ syn1.T) * (l1 * (1 - l1))
                syn1 += l1.T @ l2_delta
                syn0 += Xd.T @ l1_delta
        return syn0, syn1

    return run


def torch_autograd_xor(X, t, W1, W2, steps: int, device: str = "cpu") -> Thunk:
    """The seed's network in PyTorch the usual way: autograd, ``torch.optim.SGD(lr=1)``, ½Σ(y−t)²."""
    import torch

    Xd = torch.as_tensor(X, dtype=torch.float64, device=device)
    td = torch.as_tensor(t, dtype=torch.float64, device=device)

    def run():
        syn0 = torch.tensor(W1, device=device, requires_grad=True)
        syn1 = torch.tensor(W2, device=device, requires_grad=True)
        opt = torch.optim.SGD([syn0, syn1], lr=1.0)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            y = torch.sigmoid(torch.sigmoid(Xd @ syn0) @ syn1)
            loss = 0.5 * ((y - td) ** 2).sum()
            loss.backward()
            opt.step()
        return syn0.detach(), syn1.detach()

    return run


def _jax_xor_step(W, X, t):
    import jax.numpy as jnp

    syn0, syn1 = W
    l1 = 1 / (1 + jnp.exp(-(X @ syn0)))
    l2 = 1 / (1 + jnp.exp(-(l1 @ syn1)))
    l2_delta = (t - l2) * (l2 * (1 - l2))
    l1_delta = (l2_delta @ syn1.T) * (l1 * (1 - l1))
    return syn0 + X.T @ l1_delta, syn1 + l1.T @ l2_delta


@functools.cache
def _jax_xor_jitted(steps: int | None):
    """One jitted function per loop length, kept for the whole run so a timed call never compiles."""
    import jax

    if steps is None:
        return jax.jit(_jax_xor_step)
    return jax.jit(lambda W, X, t: jax.lax.fori_loop(0, steps, lambda i, W: _jax_xor_step(W, X, t), W))


def jax_xor(X, t, W1, W2, steps: int, device: Any = None, whole_loop: bool = False) -> Thunk:
    """The seed's loop in JAX: a jitted step called from Python, or (``whole_loop``) the whole loop
    jitted as one ``lax.fori_loop``. float64: the harness turns on JAX's 64-bit mode."""
    import jax
    import jax.numpy as jnp

    put = lambda a: jax.device_put(jnp.asarray(a, dtype=jnp.float64), device)  # noqa: E731
    Xd, td, W0 = put(X), put(t), (put(W1), put(W2))
    if whole_loop:
        loop = _jax_xor_jitted(steps)
        return lambda: loop(W0, Xd, td)
    jstep = _jax_xor_jitted(None)

    def run():
        W = W0
        for _ in range(steps):
            W = jstep(W, Xd, td)
        return W

    return run


# --------------------------------------------------------------------------- MLPs: digits, large, sweep


@dataclass(frozen=True)
class MLPJob:
    """A relu MLP with a softmax output and cross-entropy loss, trained on mini-batches.

    ``optimizer`` is ``"sgd"`` (plain) or ``"adam"`` (scikit-learn's form); ``alpha`` is
    scikit-learn's L2 penalty ``0.5*alpha*ΣW²/batch``. ``shuffle`` draws a permutation per epoch
    from ``numpy.random.default_rng(seed)`` on the host; without it batches are consecutive slices.
    """

    optimizer: str
    lr: float
    batch: int
    epochs: int = 1
    alpha: float = 0.0
    shuffle: bool = False
    seed: int = 0
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8


def mlp_flops(sizes: list[int], batch: int) -> float:
    """Multiply-adds ×2 in one step: forward, the weight gradients, and the input gradients of every
    layer but the first (which nothing needs)."""
    pairs = [a * b for a, b in itertools.pairwise(sizes)]
    return 2.0 * batch * (2 * sum(pairs) + sum(pairs[1:]))


class _NumpyOps:
    """The handful of calls where NumPy, CuPy and torch spell things differently."""

    def __init__(self, mod: Any) -> None:
        self.m = mod

    def relu(self, z):
        return self.m.maximum(z, 0)

    def rowmax(self, z):
        return z.max(axis=1, keepdims=True)

    def rowsum(self, z):
        return z.sum(axis=1, keepdims=True)

    def index(self, order, device):
        return self.m.asarray(order)


class _TorchOps:
    def __init__(self, torch: Any) -> None:
        self.m = torch

    def relu(self, z):
        return self.m.relu(z)

    def rowmax(self, z):
        return z.amax(dim=1, keepdim=True)

    def rowsum(self, z):
        return z.sum(dim=1, keepdim=True)

    def index(self, order, device):
        return self.m.as_tensor(order, device=device)


def _train_by_hand(ops, X, T, params, job: MLPJob, device=None):
    """The training loop as a person writes it: forward, backprop by hand, in-place updates.

    ``params`` is a list of ``[W, b]`` (copies the loop may overwrite); they are returned trained.
    """
    m = ops.m
    n, L = X.shape[0], len(params)
    rng = np.random.default_rng(job.seed)
    adam = job.optimizer == "adam"
    moments = [[m.zeros_like(p) for p in layer] for layer in params] if adam else None
    squares = [[m.zeros_like(p) for p in layer] for layer in params] if adam else None
    b1, b2, eps, count = job.beta_1, job.beta_2, job.epsilon, 0
    for _ in range(job.epochs):
        order = ops.index(rng.permutation(n), device) if job.shuffle else None
        total = 0.0
        for s in range(0, n, job.batch):
            if order is None:
                xb, tb = X[s : s + job.batch], T[s : s + job.batch]
            else:
                idx = order[s : s + job.batch]
                xb, tb = X[idx], T[idx]
            rows = xb.shape[0]
            acts = [xb]
            a = xb
            for i, (W, b) in enumerate(params):
                z = a @ W + b
                if i < L - 1:
                    a = ops.relu(z)
                else:
                    shifted = z - ops.rowmax(z)
                    e = m.exp(shifted)
                    norm = ops.rowsum(e)
                    a = e / norm
                    total = total - (tb * (shifted - m.log(norm))).sum()
                acts.append(a)
            g = (a - tb) * (1.0 / rows)
            if adam:
                count += 1
                lr_t = job.lr * math.sqrt(1 - b2**count) / (1 - b1**count)
            for i in range(L - 1, -1, -1):
                W, b = params[i]
                grad_w = acts[i].T @ g
                grad_b = g.sum(0)
                if job.alpha:
                    grad_w += (job.alpha / rows) * W
                if i:
                    g = (g @ W.T) * (acts[i] > 0)  # before W changes below
                if not adam:
                    W -= job.lr * grad_w
                    b -= job.lr * grad_b
                    continue
                for p, grad, mom, sq in zip((W, b), (grad_w, grad_b), moments[i], squares[i], strict=True):
                    mom *= b1
                    mom += (1 - b1) * grad
                    sq *= b2
                    sq += (1 - b2) * (grad * grad)
                    p -= lr_t * mom / (m.sqrt(sq) + eps)
        float(total)  # the epoch's loss, read back once an epoch as anynet does
    return params


def numpy_mlp(X: np.ndarray, T: np.ndarray, params: list, job: MLPJob) -> Thunk:
    """Hand-written NumPy: ``X``: ``(n, n_in)``, one-hot ``T``: ``(n, n_out)``, ``params`` ``[(W, b), ...]``."""
    ops = _NumpyOps(np)
    mine = [[W.copy(), b.copy()] for W, b in params]  # the loop trains these in place
    return lambda: _train_by_hand(ops, X, T, mine, job)


def cupy_mlp(X, T, params: list, job: MLPJob) -> Thunk:
    """Hand-written CuPy: the NumPy loop on the GPU (cuBLAS matmuls, CuPy elementwise kernels)."""
    import cupy as cp

    ops = _NumpyOps(cp)
    Xd, Td = cp.asarray(X), cp.asarray(T)
    mine = [[cp.array(W), cp.array(b)] for W, b in params]
    return lambda: _train_by_hand(ops, Xd, Td, mine, job)


def torch_mlp(X, T, params: list, job: MLPJob, device: str = "cpu") -> Thunk:
    """Hand-written PyTorch, no autograd: the NumPy loop with torch tensors."""
    import torch

    ops = _TorchOps(torch)
    Xd, Td = torch.as_tensor(X, device=device), torch.as_tensor(T, device=device)
    mine = [[torch.tensor(W, device=device), torch.tensor(b, device=device)] for W, b in params]

    def run():
        with torch.no_grad():
            return _train_by_hand(ops, Xd, Td, mine, job, device=device)

    return run


def torch_autograd_mlp(X, T, params: list, job: MLPJob, device: str = "cpu") -> Thunk:
    """PyTorch as its users write it: ``nn.Linear`` layers, autograd, ``torch.optim.SGD``/``Adam``."""
    import torch

    Xd, Td = torch.as_tensor(X, device=device), torch.as_tensor(T, device=device)
    n = Xd.shape[0]

    def run():
        layers = []
        for W, b in params:
            lin = torch.nn.Linear(W.shape[0], W.shape[1], device=device, dtype=Xd.dtype)
            with torch.no_grad():
                lin.weight.copy_(torch.as_tensor(W.T))
                lin.bias.copy_(torch.as_tensor(b))
            layers.append(lin)
        model = torch.nn.Sequential(*[m for lin in layers for m in (lin, torch.nn.ReLU())][:-1])
        if job.optimizer == "adam":
            opt = torch.optim.Adam(model.parameters(), lr=job.lr, betas=(job.beta_1, job.beta_2), eps=job.epsilon)
        else:
            opt = torch.optim.SGD(model.parameters(), lr=job.lr)
        rng = np.random.default_rng(job.seed)
        for _ in range(job.epochs):
            order = torch.as_tensor(rng.permutation(n), device=device) if job.shuffle else None
            total = 0.0
            for s in range(0, n, job.batch):
                if order is None:
                    xb, tb = Xd[s : s + job.batch], Td[s : s + job.batch]
                else:
                    idx = order[s : s + job.batch]
                    xb, tb = Xd[idx], Td[idx]
                opt.zero_grad(set_to_none=True)
                loss = -(tb * torch.log_softmax(model(xb), dim=1)).sum() / xb.shape[0]
                if job.alpha:
                    loss = loss + 0.5 * job.alpha / xb.shape[0] * sum((lin.weight**2).sum() for lin in layers)
                loss.backward()
                opt.step()
                total = total + loss.detach()
            float(total)
        return [(lin.weight.detach().T, lin.bias.detach()) for lin in layers]

    return run


@functools.cache
def _jax_mlp_steps(job: MLPJob):
    """The jitted SGD and Adam steps for one job, made once so that no timed call compiles."""
    import jax
    import jax.numpy as jnp

    def loss_fn(P, xb, tb):
        a = xb
        for W, b in P[:-1]:
            a = jax.nn.relu(a @ W + b)
        W, b = P[-1]
        loss = -(tb * jax.nn.log_softmax(a @ W + b, axis=1)).sum() / xb.shape[0]
        if job.alpha:
            loss = loss + 0.5 * job.alpha / xb.shape[0] * sum((W * W).sum() for W, _ in P)
        return loss

    grad = jax.value_and_grad(loss_fn)
    b1, b2, eps = job.beta_1, job.beta_2, job.epsilon

    @jax.jit
    def sgd_step(P, xb, tb):
        loss, g = grad(P, xb, tb)
        return jax.tree.map(lambda p, g: p - job.lr * g, P, g), loss

    @jax.jit
    def adam_step(P, M, V, count, xb, tb):
        loss, g = grad(P, xb, tb)
        M = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, M, g)
        V = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, V, g)
        lr_t = job.lr * jnp.sqrt(1 - b2**count) / (1 - b1**count)
        P = jax.tree.map(lambda p, m, v: p - lr_t * m / (jnp.sqrt(v) + eps), P, M, V)
        return P, M, V, loss

    return sgd_step, adam_step


def jax_mlp(X, T, params: list, job: MLPJob, device: Any = None) -> Thunk:
    """JAX as its users write it: ``jax.value_and_grad`` of the loss and a jitted step (SGD, or Adam
    as scikit-learn writes it) called from a Python loop over batches."""
    import jax
    import jax.numpy as jnp

    Xd, Td = jax.device_put(X, device), jax.device_put(T, device)
    P0 = jax.device_put([(W, b) for W, b in params], device)
    n = X.shape[0]
    sgd_step, adam_step = _jax_mlp_steps(job)

    def run():
        P = P0
        M = V = jax.tree.map(jnp.zeros_like, P0)
        rng = np.random.default_rng(job.seed)
        count = 0
        for _ in range(job.epochs):
            order = jax.device_put(rng.permutation(n), device) if job.shuffle else None
            total = 0.0
            for s in range(0, n, job.batch):
                if order is None:
                    xb, tb = Xd[s : s + job.batch], Td[s : s + job.batch]
                else:
                    idx = order[s : s + job.batch]
                    xb, tb = Xd[idx], Td[idx]
                if job.optimizer == "adam":
                    count += 1
                    P, M, V, loss = adam_step(P, M, V, count, xb, tb)
                else:
                    P, loss = sgd_step(P, xb, tb)
                total = total + loss
            float(total)
        return P

    return run


def sklearn_mlp(X: np.ndarray, y: np.ndarray, hidden: tuple[int, ...], job: MLPJob) -> Thunk:
    """scikit-learn's ``MLPClassifier`` doing the same job: relu, Adam, the same batch, epochs and L2,
    without early stopping (and its own initial weights). The thunk returns the fitted classifier."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=hidden,
        activation="relu",
        solver=job.optimizer,
        alpha=job.alpha,
        batch_size=job.batch,
        learning_rate_init=job.lr,
        max_iter=job.epochs,
        shuffle=job.shuffle,
        random_state=job.seed,
        tol=0.0,
        n_iter_no_change=job.epochs + 1,
        beta_1=job.beta_1,
        beta_2=job.beta_2,
        epsilon=job.epsilon,
    )

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return clf.fit(X, y)

    return run
