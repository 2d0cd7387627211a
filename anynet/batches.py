"""Where a fit's batches come from, for any number of members.

A source gives the epoch's order with ``draw()`` (host randomness, drawn once an epoch) and then
``batches(order, xp)``: one ``(X_b, t_b, w_b | None, rows)`` a step, ``rows`` being what the step's mean
loss is weighed by when the epoch's loss is summed (a number, or one per group of members); ``n`` is
what that sum is divided by. ``full`` says the one batch is all of ``X`` every epoch, which is what
the engines' whole-run hooks train.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import backend as B
from . import sparse


class Rows:
    """Every member trains on the same rows of ``X``: ``(n, n_in)``, ``t``: ``(n, n_out)`` and row
    weights ``w``: ``(n, 1)`` or ``None``: the full batch, or batches of ``size`` in order, or in a
    permutation drawn from ``rng`` each epoch and shared by all members (so a batch is gathered once)."""

    def __init__(self, X: Any, t: Any, w: Any, *, size: int | None, shuffle: bool, rng, backend: str, native: Any):
        self.X, self.t, self.w = X, t, w
        self.n = X.shape[0]
        self.size = self.n if size is None else min(size, self.n)
        self.full = self.size == self.n
        self.weighted = w is not None
        self.shuffle, self.rng, self._place = shuffle, rng, (backend, native)

    def draw(self) -> np.ndarray | None:
        return self.rng.permutation(self.n) if self.shuffle and not self.full else None

    def batches(self, order: np.ndarray | None, xp: Any):
        return [(self.X, self.t, self.w, self.n)] if self.full else self._batches(order, xp)

    def _batches(self, order: np.ndarray | None, xp: Any):
        X, t, w, n = self.X, self.t, self.w, self.n
        if order is not None:
            perm = B.from_numpy(order, *self._place)
        for s in range(0, n, self.size):
            end = min(s + self.size, n)  # array_api_strict rejects a stop past the end
            if order is None:
                yield X[s:end, ...], t[s:end, ...], None if w is None else w[s:end, ...], end - s
            else:
                idx = perm[s:end]
                wb = None if w is None else xp.take(w, idx, axis=0)
                yield sparse.take_rows(X, idx, xp), xp.take(t, idx, axis=0), wb, end - s


class Groups:
    """``G`` groups of members, each training on its own rows of one copy of ``X`` (``rows[g]``, a
    cross-validation fold) in batches of ``sizes[g]``, in a permutation drawn from its own seed each
    epoch when ``shuffle``. A step's batch is ``(G, 1, width, n_in)``, padded to the widest group
    with rows whose weight is 0, so each member sees exactly the batches of its own fit; ``w``:
    ``(n, 1)`` or ``None`` weighs the rows besides. Every group takes the same number of steps."""

    full = False
    weighted = True  # the padding

    def __init__(self, X, t, w, rows: list, sizes: list[int], *, shuffle: bool, seeds: list, backend, native, dtype):
        self.X, self.t, self.w, self.rows, self.sizes, self.shuffle = X, t, w, rows, sizes, shuffle
        self.rngs = [np.random.default_rng(seed) for seed in seeds]
        self.n = np.array([[len(r)] for r in rows], dtype=float)  # (G, 1): each group's epoch is its rows
        self._index = lambda a: B.from_numpy(np.asarray(a, dtype=np.int64), backend, native)
        to = lambda a: B.from_numpy(np.ascontiguousarray(a, dtype=dtype), backend, native)  # noqa: E731
        # Per step: each group's batch length, the padded width, the row mask and the row counts; the
        # lengths do not depend on the shuffle, so all of this is made once.
        self._steps = []
        for s in range(-(-len(rows[0]) // sizes[0])):
            lengths = np.array([max(0, min(b, len(r) - s * b)) for b, r in zip(sizes, rows, strict=True)])
            width = int(lengths.max())
            valid = np.arange(width)[None, :] < lengths[:, None]  # (G, width)
            mask = None if valid.all() else to(valid[:, None, :, None])
            self._steps.append((lengths, width, valid, mask, to(lengths[:, None])))

    def draw(self) -> list:
        return [rng.permutation(len(r)) if self.shuffle else None for rng, r in zip(self.rngs, self.rows, strict=True)]

    def batches(self, orders: list, xp: Any):
        rows, sizes, G = self.rows, self.sizes, len(self.rows)
        for s, (lengths, width, valid, mask, counts) in enumerate(self._steps):
            index = np.zeros((G, width), dtype=np.int64)
            for g in range(G):
                lo, hi = s * sizes[g], s * sizes[g] + lengths[g]
                index[g, : lengths[g]] = rows[g][lo:hi] if orders[g] is None else rows[g][orders[g][lo:hi]]
            index[~valid] = rows[0][0]  # padding: any row, weighted 0
            flat = self._index(index.reshape(-1))
            Xb = xp.reshape(xp.take(self.X, flat, axis=0), (G, 1, width, self.X.shape[1]))
            tb = xp.reshape(xp.take(self.t, flat, axis=0), (G, 1, width, self.t.shape[1]))
            wb = mask
            if self.w is not None:
                wb = xp.reshape(xp.take(self.w, flat, axis=0), (G, 1, width, 1))
                wb = wb if mask is None else wb * mask
            yield Xb, tb, wb, counts
