"""The reference engine: the pure core, one new set of arrays per step; runs on every backend, for
one network or a stack of them, and is what every other engine is tested against."""

from __future__ import annotations

from .. import core


class Reference:
    name = "reference"
    row_weights = True
    stacks = True  # the core's math broadcasts over leading member axes
    sparse_input = True  # the core's X @ W and X.T @ grad_z are SciPy's sparse products on NumPy

    def __init__(self, layers, state, *, acts, loss, opt, alpha, xp, backend) -> None:
        self.layers, self.state = layers, state
        self._acts, self._loss, self._opt, self._alpha, self._xp = acts, loss, opt, alpha, xp

    def step(self, X, t, lr, w=None):
        value, grads, y = core.loss_and_grads(
            self.layers, X, t, acts=self._acts, loss=self._loss, alpha=self._alpha, w=w, xp=self._xp
        )
        self.layers, self.state = self._opt.step(self.layers, grads, self.state, lr, xp=self._xp)
        return value, y

    def snapshot(self):
        return self.layers
