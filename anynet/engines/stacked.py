"""The stacked engine: ``k`` networks of one shape trained as one (``anynet.Ensemble``).

Their parameters are stacked on a leading axis (``W``: ``(k, n_in, n_out)``, ``b``: ``(k, 1, n_out)``)
and each step is the core's own math on the stack, so member ``i`` computes what the reference engine
computes for network ``i`` alone; ``lr`` and ``alpha`` are numbers or ``(k, 1, 1)`` arrays, one per
member. It runs on every backend; on JAX each step is one jitted call.
"""

from __future__ import annotations

import functools

from .. import core


def _jit(acts, loss, opt, penalised):
    """One training step on the stack, compiled; ``alpha`` is traced only when there is a penalty."""
    import jax
    import jax.numpy as jnp

    def step(layers, state, X, t, lr, alpha):
        alpha = alpha if penalised else 0.0
        value, grads, y = core.loss_and_grads(layers, X, t, acts=acts, loss=loss, alpha=alpha, xp=jnp)
        layers, state = opt.step(layers, grads, state, lr, xp=jnp)
        return layers, state, value, y

    return jax.jit(step)


_jit_cached = functools.lru_cache(maxsize=64)(_jit)


class Stacked:
    name = "stacked"

    @staticmethod
    def refuses(backend, acts, loss, opt):
        # selected by anynet.Ensemble itself; a single network's 2-D parameters are not a stack
        return "it trains the stacked members of an anynet.Ensemble, not a single network"

    def __init__(self, layers, state, *, acts, loss, opt, alpha, xp, backend) -> None:
        self.layers = layers
        self._acts, self._loss, self._opt, self._alpha, self._xp = acts, loss, opt, alpha, xp
        self._fn = None
        self._int_count = False
        if backend == "jax":
            import jax.numpy as jnp

            penalised = not (isinstance(alpha, (int, float)) and alpha == 0)
            try:
                self._fn = _jit_cached(tuple(acts), loss, opt, penalised)
            except TypeError:  # an optimizer holding per-member arrays is not hashable: compile for this fit
                self._fn = _jit(tuple(acts), loss, opt, penalised)
            self._int_count = isinstance(state, tuple) and bool(state) and isinstance(state[0], int)
            if self._int_count:  # Adam's step count becomes a traced array
                state = (jnp.asarray(state[0]), *state[1:])
        self._state = state

    @property
    def state(self):
        if self._int_count:
            return (int(self._state[0]), *self._state[1:])
        return self._state

    @state.setter
    def state(self, value):
        if self._int_count:
            import jax.numpy as jnp

            value = (jnp.asarray(value[0]), *value[1:])
        self._state = value

    def snapshot(self):
        return self.layers  # every step makes new arrays

    def step(self, X, t, lr):
        if self._fn is not None:
            self.layers, self._state, value, y = self._fn(self.layers, self._state, X, t, lr, self._alpha)
            return value, y
        value, grads, y = core.loss_and_grads(
            self.layers, X, t, acts=self._acts, loss=self._loss, alpha=self._alpha, xp=self._xp
        )
        self.layers, self._state = self._opt.step(self.layers, grads, self._state, lr, xp=self._xp)
        return value, y
