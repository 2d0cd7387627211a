"""The compiled engine: the reference core under ``jax.jit``; ``engine="auto"`` on JAX, for one
network or a stack of them.

``step`` is one jitted training step. ``run`` trains many full-batch epochs inside one compiled
``lax.scan``, and ``epoch`` a whole mini-batch epoch (its permutation drawn on the host and passed in),
so a fit makes one dispatch per chunk of epochs or per epoch, never one per step. All of them trace
the same pure functions the reference engine calls, so they compute the same numbers. In a stack, a
member whose loss turns non-finite inside a scan stops moving while the others go on.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .. import core

#: epochs per scan iteration: unrolling cuts the per-iteration cost of the XLA loop on tiny networks
UNROLL = 16


def _train_step(acts, loss, opt, penalised):
    def step(layers, state, X, t, lr, alpha, w=None):
        alpha = alpha if penalised else 0.0
        value, grads, y = core.loss_and_grads(layers, X, t, acts=acts, loss=loss, alpha=alpha, w=w, xp=jnp)
        layers, state = opt.step(layers, grads, state, lr, xp=jnp)
        return layers, state, value, y

    return step


@functools.lru_cache(maxsize=64)
def _step_fn(acts, loss, opt, penalised):
    return jax.jit(_train_step(acts, loss, opt, penalised))


#: how many times a whole-run scan has been traced (compiled) in this process: what the tests count
TRACES = {"run": 0}


def _bucket(n: int) -> int:
    """The scan length that runs ``n`` epochs: the next power of two (at least ``UNROLL``), so that
    fits of other lengths reuse a compiled scan: the epoch count is data, not a shape."""
    return max(UNROLL, 1 << (max(n, 1) - 1).bit_length())


@functools.lru_cache(maxsize=64)
def _run_fn(acts, loss, opt, penalised, track_acc, guard):
    """Full-batch epochs in one scan over a bucket of rates, of which the first ``count`` are epochs
    (the rest are skipped by a ``cond``, at the cost of a branch). Unguarded, every epoch just steps (the
    fast path); guarded, a member stops moving after its first non-finite loss: the carry keeps the
    weights that produced it and, in ``prev``, the ones that produced its last finite loss. A chunk
    runs unguarded first, and again guarded from its start only if a loss in it was not finite."""
    step = _train_step(acts, loss, opt, penalised)

    def epoch(carry, lr, X, t, alpha):
        layers, state, prev, ok = carry
        new_layers, new_state, value, y = step(layers, state, X, t, lr, alpha)
        if guard:
            good = ok & jnp.isfinite(value)
            keep = core.where_members(good, (new_layers, new_state, layers), (layers, state, prev), xp=jnp)
            carry = (*keep, good)
        else:
            carry = (new_layers, new_state, layers, ok)
        correct = core.accuracy_sum(y, t, xp=jnp) if track_acc else jnp.zeros_like(value)
        return carry, (value, correct)

    def run(layers, state, prev, X, t, lrs, count, alpha):
        TRACES["run"] += 1  # Python runs here once per trace, never per call
        carry = (layers, state, prev, jnp.ones(layers[0][0].shape[:-2], dtype=bool))
        shape = jax.eval_shape(lambda c: epoch(c, lrs[0], X, t, alpha)[1], carry)
        idle = tuple(jnp.zeros(s.shape, s.dtype) for s in shape)

        def maybe(c, item):
            lr, i = item
            return jax.lax.cond(i < count, lambda c: epoch(c, lr, X, t, alpha), lambda c: (c, idle), c)

        return jax.lax.scan(maybe, carry, (lrs, jnp.arange(lrs.shape[0])), unroll=UNROLL)

    return jax.jit(run)


@functools.lru_cache(maxsize=64)
def _epoch_fn(acts, loss, opt, penalised, track_acc, summed):
    step = _train_step(acts, loss, opt, penalised)

    def batch(carry, idx, X, t, lr, alpha):
        layers, state = carry
        Xb, tb = jnp.take(X, idx, axis=0), jnp.take(t, idx, axis=0)
        layers, state, value, y = step(layers, state, Xb, tb, lr, alpha)
        total = value if summed else value * idx.shape[0]
        correct = core.accuracy_sum(y, tb, xp=jnp) if track_acc else jnp.zeros_like(value)
        return (layers, state), (total, correct)

    def epoch(layers, state, X, t, batches, lr, alpha):
        """``batches``: ``(k, bs)`` row indices, one row a batch of equal size."""
        (layers, state), (totals, correct) = jax.lax.scan(
            lambda c, idx: batch(c, idx, X, t, lr, alpha), (layers, state), batches
        )
        return layers, state, jnp.sum(totals, axis=0), jnp.sum(correct, axis=0)

    return jax.jit(epoch)


class Compiled:
    """JAX only: every step jitted; full-batch runs fused into ``lax.scan`` chunks, mini-batch epochs
    into one scan each."""

    name = "compiled"
    #: epochs per whole-run call: each call costs a dispatch and a read-back; a power of two, so that a
    #: long fit's full chunks and its shorter last one run scans of bucket lengths (``_bucket``)
    CHUNK = 8192
    row_weights = True  # through step; the whole-run and epoch hooks are not used with weights
    stacks = True

    @staticmethod
    def refuses(backend, acts, loss, opt):
        if backend != "jax":
            return f"it compiles with JAX, and the backend is {backend!r}"
        return None

    def __init__(self, layers, state, *, acts, loss, opt, alpha, xp, backend) -> None:
        self.layers = layers
        self._prev = layers
        # A scan's carry must keep one tree structure: a state loaded from a checkpoint comes back in
        # lists where the optimizer's own step returns tuples, so take the structure its init makes.
        fresh = jax.tree_util.tree_structure(opt.init(layers, xp=jnp))
        state = jax.tree_util.tree_unflatten(fresh, jax.tree_util.tree_leaves(state))
        self._int_count = isinstance(state, tuple) and state and isinstance(state[0], int)
        if self._int_count:  # Adam's step count becomes a traced array
            state = (jnp.asarray(state[0]), *state[1:])
        self._state = state
        self._alpha = alpha  # a number, or one per member: traced, so a new value needs no new compile
        self._key = (tuple(acts), loss, opt, not (isinstance(alpha, (int, float)) and alpha == 0))
        self._summed = loss.reduction == "sum"
        self._fns: dict = {}

    def _fn(self, make, *more):
        """``make(*key, *more)``: cached across fits where the optimizer hashes, else made for this one
        (an optimizer holding per-member arrays, such as a stack's momenta)."""
        if (make, more) not in self._fns:
            try:
                self._fns[make, more] = make(*self._key, *more)
            except TypeError:
                self._fns[make, more] = make.__wrapped__(*self._key, *more)
        return self._fns[make, more]

    @property
    def state(self):
        if self._int_count:
            return (int(self._state[0]), *self._state[1:])
        return self._state

    def snapshot(self):
        return self.layers

    def last_finite(self):
        return self._prev

    def step(self, X, t, lr, w=None):
        self.layers, self._state, value, y = self._fn(_step_fn)(self.layers, self._state, X, t, lr, self._alpha, w)
        return value, y

    def run(self, X, t, lrs, track_acc):
        n = len(lrs)
        padded = np.zeros((_bucket(n), *np.shape(lrs)[1:]))
        padded[:n] = np.asarray(lrs)
        start, padded = (self.layers, self._state, self._prev), jnp.asarray(padded, dtype=X.dtype)
        count = jnp.asarray(n, dtype=jnp.int32)
        (layers, state, prev, _ok), (values, correct) = self._fn(_run_fn, bool(track_acc), False)(
            *start, X, t, padded, count, self._alpha
        )
        values = np.asarray(values, dtype=float)[:n]
        if not np.isfinite(values).all():  # rare: run the chunk again, each member stopping at its first bad loss
            (layers, state, prev, _ok), (values, correct) = self._fn(_run_fn, bool(track_acc), True)(
                *start, X, t, padded, count, self._alpha
            )
            values = np.asarray(values, dtype=float)[:n]
        self.layers, self._state, self._prev = layers, state, prev
        correct = np.asarray(correct, dtype=float)[:n]
        # stop after the first epoch by which every member has had a non-finite loss
        alive = np.logical_and.accumulate(np.isfinite(values).reshape(len(values), -1), axis=0).any(axis=1)
        stop = len(values) if alive.all() else int(np.argmin(alive)) + 1
        return values[:stop], correct[:stop]

    def epoch(self, X, t, order, bs, lr, track_acc):
        n = X.shape[0]
        order = np.arange(n) if order is None else order
        k = n // bs
        fn = self._fn(_epoch_fn, bool(track_acc), self._summed)
        lr = jnp.asarray(lr, dtype=X.dtype)
        total = correct = 0.0
        if k:
            self.layers, self._state, total, correct = fn(
                self.layers, self._state, X, t, jnp.asarray(order[: k * bs].reshape(k, bs)), lr, self._alpha
            )
        if k * bs < n:  # the short last batch: its own (cached) compile
            rest = jnp.asarray(order[k * bs :])[None]
            self.layers, self._state, t2, c2 = fn(self.layers, self._state, X, t, rest, lr, self._alpha)
            total, correct = total + t2, correct + c2
        return total, correct
