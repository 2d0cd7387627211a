"""The data-parallel engine: training on a ``dask.distributed`` cluster, where the data lives.

``X`` and ``t`` arrive as Dask arrays whose row chunks are persisted on the workers (``Network.fit``
put them there, see ``anynet.cluster``). A step sends the weights with one task per chunk; each task
runs the pure core on its chunk's own arrays (NumPy, or CuPy on a GPU worker) and returns the chunk's
loss sum, gradient sums and correct count; the sums are added in pairs on the workers, in chunk order,
and the last few come back. The optimizer then runs once, on the client, on NumPy.

The sums are added in a fixed order whichever worker computes them, so a run repeats exactly, and a
worker lost mid-fit changes nothing: Dask recomputes its chunks from their source and reruns the
step's tasks elsewhere.
"""

from __future__ import annotations

import functools
import math
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import backend as B
from .. import core, losses
from ..tree import leaves, rebuild, tree_map

#: how many partial sums come back to the client on each step; more are first added in pairs on the workers
FAN_IN = 8


class Distributed:
    name = "distributed"
    #: the batch outputs stay on the workers: ``fit`` runs every epoch through ``epoch``
    remote = True

    @staticmethod
    def refuses(backend, acts, loss, opt):
        if backend != "dask":
            return f"it trains on Dask arrays on a dask.distributed cluster, and this network is on {backend}"
        return None

    def __init__(self, layers, state, *, acts, loss, opt, alpha, xp, backend) -> None:
        # The parameters and the optimizer live on the client, on NumPy; the network sees Dask arrays.
        self._w, self._s = _host(layers), _host(state)
        self._last = self._w
        self._acts, self._loss, self._opt, self._alpha = acts, loss, opt, alpha
        self._np = B.namespace_for("numpy")
        self._data: _Placed | None = None

    @property
    def layers(self):
        return _device(self._w)

    @layers.setter
    def layers(self, value):
        self._w = _host(value)

    @property
    def state(self):
        return _device(self._s)

    @state.setter
    def state(self, value):
        self._s = _host(value)

    def snapshot(self):
        return self.layers  # the host arrays are never written in place: new Dask views suffice

    def last_finite(self):
        return _device(self._last)

    # ----------------------------------------------------------------------------- steps

    def step(self, X, t, lr):
        """One full-batch step on ``X``; ``y`` comes back lazy (computing it runs the forward pass
        where the rows are)."""
        y = core.predict(self.layers, X, acts=self._acts, xp=B.namespace_for("dask"))
        value, _ = self._step(X, t, None, lr, False)
        return np.asarray(value), y

    def run(self, X, t, lrs, track_acc):
        values, correct = [], []
        for lr in lrs:
            value, hits = self._step(X, t, None, lr, track_acc)
            values.append(value)
            correct.append(hits)
            if not math.isfinite(value):
                break
        return np.asarray(values), np.asarray(correct, dtype=float)

    def epoch(self, X, t, order, bs, lr, track_acc):
        """One epoch of batches ``order[s : s + bs]`` (global row numbers; ``None``: the given order),
        each drawn as per-chunk shares, in this order, so the batches are those one process draws."""
        n = X.shape[0]
        total = correct = 0.0
        for s in range(0, n, bs):
            if order is not None:
                rows = order[s : s + bs]
            else:
                rows = np.arange(s, min(s + bs, n)) if bs < n else None
            value, hits = self._step(X, t, rows, lr, track_acc)
            m = n if rows is None else rows.shape[0]
            total += value if self._loss.reduction == "sum" else value * m
            correct += hits
        return total, correct

    def _step(self, X, t, rows, lr, track_acc):
        """Train on the rows ``rows`` of ``X`` (``None``: all); returns the loss, in the loss's own
        reduction, and the correct count, as Python floats. A non-finite loss leaves the weights."""
        loss_sum, grads, hits, m = self._sums(X, t, rows, track_acc)
        scale = 1.0 if self._loss.reduction == "sum" else 1.0 / m
        value = float(loss_sum) * scale
        grads = tree_map(lambda g: g * scale, grads)
        if self._alpha:
            penalty, grads = losses.l2(self._w, grads, self._alpha / m, xp=self._np)
            value += float(penalty)
        if math.isfinite(value):
            self._last = self._w
            self._w, self._s = self._opt.step(self._w, grads, self._s, lr, xp=self._np)
        return value, float(hits)

    def _sums(self, X, t, rows, track_acc):
        """Submit one task per chunk holding some of ``rows``, add their results in pairs on the
        workers in chunk order, and bring back the total: ``(loss_sum, grad_sums, correct, m)``."""
        client, xs, ts, bounds = self._place(X, t)
        if rows is None:
            shares = [(c, None) for c in range(len(xs))]
            m = X.shape[0]
        else:
            chunk = np.searchsorted(bounds, rows, side="right") - 1
            shares = [(c, rows[chunk == c] - bounds[c]) for c in np.unique(chunk)]
            m = rows.shape[0]
        opts = {"acts": self._acts, "loss": self._loss, "track_acc": track_acc}
        parts = [client.submit(chunk_sums, self._w, xs[c], ts[c], r, **opts, pure=False) for c, r in shares]
        # Pairs are added on the workers down to FAN_IN sums; the client adds those, in order: a layer
        # of tasks fewer on every step, and the client receives at most FAN_IN gradient-sized sums.
        while len(parts) > FAN_IN:
            pairs = range(0, len(parts) - 1, 2)
            parts = [client.submit(add, parts[i], parts[i + 1], pure=False) for i in pairs] + parts[len(pairs) * 2 :]
        try:
            sums = client.gather(parts)
        except Exception as exc:
            clear = _lost(exc)
            if clear is exc:
                raise
            raise clear from exc
        loss_sum, grads, hits = functools.reduce(add, sums)
        return loss_sum, grads, hits, m

    def _place(self, X, t):
        """Where the row chunks of ``X`` and ``t`` live (persisted here if they are not yet); worked
        out once per fit."""
        d = self._data
        if d is None or d.X is not X or d.t is not t:
            from distributed import get_client

            client = get_client()
            held = (_persisted(client, X), _persisted(client, t))
            xs, ts = _chunk_futures(held[0]), _chunk_futures(held[1])
            d = self._data = _Placed(X, t, held, client, xs, ts, np.cumsum((0, *X.chunks[0])))
        return d.client, d.xs, d.ts, d.bounds


@dataclass(eq=False)
class _Placed:
    """The row chunks of one ``X`` and ``t`` on the cluster."""

    X: Any
    t: Any
    held: tuple  # X and t persisted: while referenced, their chunks stay on the workers
    client: Any
    xs: list  # the futures of X's row chunks, top to bottom
    ts: list
    bounds: np.ndarray  # the first row of each chunk, and n


# --------------------------------------------------------------------------- on the workers


def chunk_sums(layers, X, t, rows, *, acts, loss, track_acc):
    """One chunk's share of a batch (rows ``rows`` of the chunk; ``None``: all of it), on the chunk's
    own backend: the loss as a sum over its rows, the gradient sums and the correct count, on the host.

    The core gives a mean loss as the mean over the share, so the share's sums are its means times
    its rows; the L2 penalty is added once, on the client, to the total.
    """
    name = B.backend_of(X) or "numpy"
    xp = B.namespace_for(name)
    if name != "numpy":
        native = B.native_device(name, None)  # dask-cuda gives each worker its own GPU as device 0
        layers = tree_map(lambda a: B.from_numpy(a, name, native), layers)
        if rows is not None:
            rows = B.from_numpy(rows, name, native)
        if B.backend_of(t) != name:  # host targets beside CuPy rows
            t = B.from_numpy(B.to_numpy(t), name, native)
    if rows is not None:
        X, t = xp.take(X, rows, axis=0), xp.take(t, rows, axis=0)
    scale = 1 if loss.reduction == "sum" else X.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is reported by the client
        value, grads, y = core.loss_and_grads(layers, X, t, acts=acts, loss=loss, xp=xp)
        hits = core.accuracy_sum(y, t, xp=xp) if track_acc else 0.0
        grads = tree_map(lambda g: B.to_numpy(g * scale), grads)
    return float(B.to_numpy(value)) * scale, grads, float(B.to_numpy(hits))


def add(a, b):
    """Two chunks' sums added: ``(loss_sum, grad_sums, correct)``."""
    return a[0] + b[0], tree_map(operator.add, a[1], b[1]), a[2] + b[2]


# --------------------------------------------------------------------------- helpers


def _host(tree):
    """A tree of (small, in-memory) Dask arrays as NumPy arrays, computed here, not on the cluster."""
    arrays = list(leaves(tree))
    if not arrays:
        return tree
    import dask

    return rebuild(tree, iter(np.asarray(a) for a in dask.compute(*arrays, scheduler="sync")))


def _device(tree):
    return tree_map(lambda a: B.from_numpy(a, "dask", "cpu"), tree)


def _persisted(client, A):
    from distributed import futures_of

    keys = {k for row in A.__dask_keys__() for k in row}
    if not keys <= {f.key for f in futures_of(A)}:
        A = client.persist(A)
    return A


def _chunk_futures(A):
    """The futures of ``A``'s row chunks, top to bottom (``A`` has one chunk across its columns)."""
    from distributed import futures_of

    by_key = {f.key: f for f in futures_of(A)}
    return [by_key[row[0]] for row in A.__dask_keys__()]


def _lost(exc: Exception) -> Exception:
    """The error a failed step raises: a clear one where the cluster lost data it cannot rebuild."""
    from distributed import KilledWorker

    failed = f"a training step on the Dask cluster failed ({type(exc).__name__}: {exc})"
    kept = "the network keeps the weights of the last completed epoch"
    if isinstance(exc, KilledWorker):
        msg = (
            f"{failed}: the task's workers died each time it ran (out of memory?); {kept}. Use smaller "
            "chunks (X.rechunk) or workers with more memory, and fit again"
        )
        return RuntimeError(msg)
    if "CancelledError" in type(exc).__name__:
        msg = (
            f"{failed}: the workers that held part of the data were lost and Dask could not compute it "
            f"again from its source (data scattered from the client has no source); {kept}. Build X and "
            "t from files or dask.array.from_array, and fit again"
        )
        return RuntimeError(msg)
    return exc
