"""The stacked engine: ``k`` networks of one shape trained as one (``anynet.Ensemble``).

Their parameters are stacked on a leading axis (``W``: ``(k, n_in, n_out)``, ``b``: ``(k, 1, n_out)``)
and each step is the core's own math on the stack, so member ``i`` computes what the reference engine
computes for network ``i`` alone; ``lr`` and ``alpha`` are numbers or ``(k, 1, 1)`` arrays, one per
member. More leading axes work the same way: ``anynet.sklearn.MLPSearchCV`` stacks ``(G, m, n_in, n_out)``
with a batch ``(G, 1, n, n_in)`` per group of members that share their rows, and row weights
``(G, 1, n, 1)`` masking each group's padding.

It runs on every backend. On NumPy, CuPy and PyTorch it hands the stack to the buffer engine (``out=``
buffers, nothing allocated per step where the ops have in-place forms) when the optimizer has a flat
kernel; elsewhere it runs the core's pure functions. On JAX each step is one jitted call, and ``run``
trains many full-batch epochs in one compiled ``lax.scan``, in which a member whose loss turns non-finite stops moving
(keeping, in ``last_finite``, the weights that produced its last finite loss) while the others go on.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import backend as B
from .. import core
from ..tree import tree_map
from .buffer import Buffer


def _where_members(good, new, old, xp):
    """Per member (``good``: ``(k,)``), the stacked layers of ``new`` where good, else of ``old``."""
    out = []
    for (Wn, bn), (Wo, bo) in zip(new, old, strict=True):
        keep = xp.reshape(good, (-1,) + (1,) * (Wn.ndim - 1))
        out.append((xp.where(keep, Wn, Wo), None if bn is None else xp.where(keep, bn, bo)))
    return out


def _jit(acts, loss, opt, penalised):
    """One training step on the stack, compiled; ``alpha`` is traced only when there is a penalty."""
    import jax
    import jax.numpy as jnp

    def step(layers, state, X, t, lr, alpha, w):
        alpha = alpha if penalised else 0.0
        value, grads, y = core.loss_and_grads(layers, X, t, acts=acts, loss=loss, alpha=alpha, w=w, xp=jnp)
        layers, state = opt.step(layers, grads, state, lr, xp=jnp)
        return layers, state, value, y

    return jax.jit(step)


_jit_cached = functools.lru_cache(maxsize=64)(_jit)


def _run(acts, loss, opt, penalised, track_acc):
    """Full-batch epochs in one ``lax.scan``; ``ok`` (one flag per member) freezes a member after its
    first non-finite loss. Per-member leaves are ``(k, ...)``; shared ones (Adam's count) just move."""
    import jax
    import jax.numpy as jnp

    def where(ok, new, old):
        def pick(a, b):
            return jnp.where(jnp.reshape(ok, (-1,) + (1,) * (a.ndim - 1)), a, b) if a.ndim == 3 else a

        return jax.tree_util.tree_map(pick, new, old)

    def epoch(carry, lr, X, t, alpha):
        layers, state, prev, ok = carry
        alpha = alpha if penalised else 0.0
        value, grads, y = core.loss_and_grads(layers, X, t, acts=acts, loss=loss, alpha=alpha, xp=jnp)
        new_layers, new_state = opt.step(layers, grads, state, lr, xp=jnp)
        good = ok & jnp.isfinite(value)
        carry = (where(good, new_layers, layers), where(good, new_state, state), where(good, layers, prev), good)
        correct = core.accuracy_sum(y, t, xp=jnp) if track_acc else jnp.zeros_like(value)
        return carry, (value, correct)

    def run(layers, state, prev, X, t, lrs, alpha):
        ok = jnp.ones(layers[0][0].shape[0], dtype=bool)
        return jax.lax.scan(lambda c, lr: epoch(c, lr, X, t, alpha), (layers, state, prev, ok), lrs)

    return jax.jit(run)


_run_cached = functools.lru_cache(maxsize=64)(_run)


class Stacked:
    name = "stacked"
    row_weights = True  # through step: ``(n, 1)`` shared, or ``(..., n, 1)`` per member

    @staticmethod
    def refuses(backend, acts, loss, opt):
        # selected by anynet.Ensemble itself; a single network's 2-D parameters are not a stack
        return "it trains the stacked members of an anynet.Ensemble, not a single network"

    def __init__(self, layers, state, *, acts, loss, opt, alpha, xp, backend) -> None:
        self._layers = layers
        self._acts, self._loss, self._opt, self._alpha, self._xp = acts, loss, opt, alpha, xp
        self._fn = None
        self._int_count = False
        self._buffer = None
        if backend != "jax" and Buffer.refuses(backend, acts, loss, opt) is None:
            self._buffer = Buffer(layers, state, acts=acts, loss=loss, opt=opt, alpha=alpha, xp=xp, backend=backend)
            self.step = self._buffer.step
            self.run = self._run_buffer
            self._prev = None
            self._backend = backend
        elif backend == "jax":
            import jax.numpy as jnp

            penalised = not (isinstance(alpha, (int, float)) and alpha == 0)
            try:
                self._fn = _jit_cached(tuple(acts), loss, opt, penalised)
            except TypeError:  # an optimizer holding per-member arrays is not hashable: compile for this fit
                self._fn = _jit(tuple(acts), loss, opt, penalised)
            self._int_count = isinstance(state, tuple) and bool(state) and isinstance(state[0], int)
            if self._int_count:  # Adam's step count becomes a traced array
                state = (jnp.asarray(state[0]), *state[1:])
            self._key = (tuple(acts), loss, opt, penalised)
            self._prev = layers
            self.run = self._run  # the whole-run hook, on JAX only
        self._state = state

    @property
    def layers(self):
        return self._layers if self._buffer is None else self._buffer.layers

    @layers.setter
    def layers(self, value):
        if self._buffer is None:
            self._layers = value
        else:
            self._buffer.layers = value

    @property
    def state(self):
        if self._buffer is not None:
            return self._buffer.state
        if self._int_count:
            return (int(self._state[0]), *self._state[1:])
        return self._state

    @state.setter
    def state(self, value):
        if self._buffer is not None:
            msg = "the stacked engine's buffers take their state when they are made"
            raise AttributeError(msg)
        if self._int_count:
            import jax.numpy as jnp

            value = (jnp.asarray(value[0]), *value[1:])
        self._state = value

    def snapshot(self):
        if self._buffer is not None:
            return self._buffer.snapshot()
        return self._layers  # every step makes new arrays

    def last_finite(self):
        """After ``run``: per member, the weights that produced its last finite loss of this fit (the
        starting ones if it had none); the others' are one step back."""
        if self._buffer is not None and self._prev is None:  # no loss of the last run was non-finite
            return tree_map(self._buffer._ops.copy, self._buffer.previous(1))
        return self._prev

    def _run(self, X, t, lrs, track_acc):
        """``lrs``: ``(epochs,)`` or ``(epochs, k, 1, 1)``. Returns host ``(epochs, k)`` losses and correct
        counts; a member's entries after its first non-finite loss are not to be read."""
        import jax.numpy as jnp

        try:
            fn = _run_cached(*self._key, bool(track_acc))
        except TypeError:
            fn = _run(*self._key, bool(track_acc))
        lrs = jnp.asarray(lrs, dtype=X.dtype)
        (self.layers, self._state, self._prev, _), (values, correct) = fn(
            self.layers, self._state, self._prev, X, t, lrs, self._alpha
        )
        return np.asarray(values, dtype=float), np.asarray(correct, dtype=float)

    def _run_buffer(self, X, t, lrs, track_acc):
        """Full-batch epochs on the buffer engine with no Python between steps but the step itself;
        the losses stay on the device until the chunk ends. If one turns out not finite, the chunk is
        run again from its start, keeping for each member the weights that produced its last finite
        loss (as the JAX scan does) for ``last_finite``. Returns host ``(epochs, k)`` losses and
        correct counts."""
        buf = self._buffer
        lrs = self._rates(lrs)
        start = buf.checkpoint()
        self._prev = None  # every loss finite: the weights before the last step (see last_finite)
        values, correct = self._epochs(X, t, lrs, track_acc, careful=False)
        if not np.isfinite(values).all():
            buf.restore(start)
            values, correct = self._epochs(X, t, lrs, track_acc, careful=True)
        return values, correct

    def _rates(self, lrs):
        """The chunk's rates (host ``(epochs,)`` or ``(epochs, k, 1, 1)``) as the step takes them: numbers,
        or per-member arrays on the stack's device, one array per run of equal rows (the buffer
        spreads each distinct one over its parameters once)."""
        W = self._buffer.layers[0][0]
        out, last_host, last = [], None, None
        for lr in lrs:
            if np.ndim(lr) == 0:
                out.append(float(lr))
                continue
            if last_host is None or not np.array_equal(lr, last_host):
                native = B.native_device(self._backend, B.device_of(W))
                last_host, last = lr, B.from_numpy(np.asarray(lr, dtype=B.dtype_name(W.dtype)), self._backend, native)
            out.append(last)
        return out

    def _epochs(self, X, t, lrs, track_acc, careful):
        buf, xp = self._buffer, self._xp
        values, correct = [], []
        ok = prev = None
        for lr in lrs:
            before = buf.snapshot() if careful else None
            value, y = buf.step(X, t, lr)
            values.append(value)
            if track_acc:
                correct.append(core.accuracy_sum(y, t, xp=xp))
            if careful:
                good = xp.isfinite(value) if ok is None else ok & xp.isfinite(value)
                prev = before if prev is None else _where_members(good, before, prev, xp)
                ok = good
        if careful:
            self._prev = prev
        host = B.to_numpy(xp.stack(values)) if values else np.zeros((0, 0))
        hits = B.to_numpy(xp.stack(correct)) if correct else np.zeros_like(host)
        return np.asarray(host, dtype=float), np.asarray(hits, dtype=float)

    def step(self, X, t, lr, w=None):
        if self._fn is not None:
            self.layers, self._state, value, y = self._fn(self.layers, self._state, X, t, lr, self._alpha, w)
            return value, y
        value, grads, y = core.loss_and_grads(
            self.layers, X, t, acts=self._acts, loss=self._loss, alpha=self._alpha, w=w, xp=self._xp
        )
        self.layers, self._state = self._opt.step(self.layers, grads, self._state, lr, xp=self._xp)
        return value, y
