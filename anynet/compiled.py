"""The compiled engine: the reference core under ``jax.jit``, the JAX seam of ``anynet.engines``.

``step`` is one jitted training step. ``run`` trains many full-batch epochs inside one compiled
``lax.scan``, so a tiny network like the seed's runs without Python in the loop at all. Both trace
the same pure functions the reference engine calls, so they compute the same numbers.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from . import core

#: epochs per compiled chunk: between chunks the loop reports progress
CHUNK = 10000
#: epochs per scan iteration: unrolling cuts the per-iteration cost of the XLA loop on tiny networks
UNROLL = 8


def _tree_where(cond, a, b):
    return jax.tree_util.tree_map(lambda x, y: jnp.where(cond, x, y), a, b)


@functools.lru_cache(maxsize=64)
def _step_fn(acts, loss, opt, alpha):
    def step(layers, state, X, t, lr, w):
        value, grads, y = core.loss_and_grads(layers, X, t, acts=acts, loss=loss, alpha=alpha, w=w, xp=jnp)
        layers, state = opt.step(layers, grads, state, lr, xp=jnp)
        return layers, state, value, y

    return jax.jit(step)


@functools.lru_cache(maxsize=64)
def _run_fn(acts, loss, opt, alpha, track_acc):
    def epoch(carry, lr, X, t):
        layers, state, prev, ok = carry
        value, grads, y = core.loss_and_grads(layers, X, t, acts=acts, loss=loss, alpha=alpha, xp=jnp)
        new_layers, new_state = opt.step(layers, grads, state, lr, xp=jnp)
        # After the first non-finite loss nothing moves: the carry keeps the weights that produced it
        # and the ones before, for the training loop to choose the last finite set.
        good = ok & jnp.isfinite(value)
        carry = (
            _tree_where(good, new_layers, layers),
            _tree_where(good, new_state, state),
            _tree_where(good, layers, prev),
            good,
        )
        correct = core.accuracy_sum(y, t, xp=jnp) if track_acc else jnp.zeros((), dtype=value.dtype)
        return carry, (value, correct)

    def run(layers, state, X, t, lrs):
        carry = (layers, state, layers, jnp.asarray(True))
        carry, out = jax.lax.scan(lambda c, lr: epoch(c, lr, X, t), carry, lrs, unroll=UNROLL)
        return carry, out

    return jax.jit(run)


class Compiled:
    """JAX only: every step jitted; whole full-batch runs fused into ``lax.scan`` chunks."""

    name = "compiled"

    def __init__(self, layers, state, *, acts, loss, opt, alpha, xp, backend) -> None:
        self.layers = layers
        self._int_count = isinstance(state, tuple) and isinstance(state[0], int)
        if self._int_count:  # Adam's step count becomes a traced array
            state = (jnp.asarray(state[0]), *state[1:])
        self._state = state
        self._key = (tuple(acts), loss, opt, float(alpha))

    @property
    def state(self):
        if self._int_count:
            return (int(self._state[0]), *self._state[1:])
        return self._state

    def snapshot(self):
        return self.layers

    def step(self, X, t, lr, w=None):
        self.layers, self._state, value, y = _step_fn(*self._key)(self.layers, self._state, X, t, lr, w)
        return value, y

    def run(self, X, t, lrs, track_acc):
        """Train ``len(lrs)`` full-batch epochs; returns per-epoch ``(loss, correct)`` arrays and the
        (layers, previous layers, ok) needed to recover from divergence."""
        fn = _run_fn(*self._key, bool(track_acc))
        (layers, state, prev, _ok), (values, correct) = fn(
            self.layers, self._state, X, t, jnp.asarray(np.asarray(lrs), dtype=X.dtype)
        )
        self.layers, self._state = layers, state
        return values, correct, prev
