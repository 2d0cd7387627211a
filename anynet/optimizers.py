"""Optimizers in optax's shape: ``init(layers, xp) -> state`` and
``step(layers, grads, state, lr, *, xp) -> (layers, state)``, returning new arrays, never mutating.

Learning-rate schedules live here too: ``schedule(lr0, epoch, epochs) -> lr`` on the host, once an epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import core


def _map(fn, *trees):
    """Apply ``fn`` leaf-wise over lists of ``(W, b | None)``, keeping ``None`` biases as ``None``."""
    return [
        tuple(None if parts[0] is None else fn(*parts) for parts in zip(*layer, strict=True))
        for layer in zip(*trees, strict=True)
    ]


@dataclass(frozen=True)
class SGD:
    """Gradient descent, with optional (Nesterov) momentum as scikit-learn and Keras define it:
    ``v = momentum*v - lr*g``; ``W += v`` (or ``W += momentum*v - lr*g`` with Nesterov)."""

    momentum: float = 0.0
    nesterov: bool = False
    name: str = field(default="sgd", init=False)

    def init(self, layers, *, xp):
        return _map(xp.zeros_like, layers) if self.momentum else None

    def step(self, layers, grads, state, lr, *, xp):
        if not self.momentum:
            return core.update(layers, grads, lr=lr), None
        m = self.momentum
        v = _map(lambda v, g: m * v - lr * g, state, grads)
        if self.nesterov:
            return _map(lambda w, v, g: w + (m * v - lr * g), layers, v, grads), v
        return _map(lambda w, v: w + v, layers, v), v


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba), with the bias correction folded into the step size as scikit-learn does."""

    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    name: str = field(default="adam", init=False)

    def init(self, layers, *, xp):
        return (0, _map(xp.zeros_like, layers), _map(xp.zeros_like, layers))

    def step(self, layers, grads, state, lr, *, xp):
        count, m, v = state
        count += 1
        b1, b2, eps = self.beta_1, self.beta_2, self.epsilon
        m = _map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
        v = _map(lambda v, g: b2 * v + (1 - b2) * (g * g), v, grads)
        # ** 0.5 rather than math.sqrt: ``count`` is a traced array inside a compiled loop
        lr_t = lr * (1 - b2**count) ** 0.5 / (1 - b1**count)
        new = _map(lambda w, m, v: w - lr_t * m / (xp.sqrt(v) + eps), layers, m, v)
        return new, (count, m, v)


Optimizer = SGD | Adam

#: default learning rates: the seed's 1.0 for plain gradient descent, Adam's customary 1e-3
DEFAULT_LR = {"sgd": 1.0, "adam": 1e-3}


def get(name: str | Optimizer, **options: Any) -> Optimizer:
    """An optimizer from a name (``"sgd"``, ``"adam"``) and its options, or one passed through."""
    if isinstance(name, (SGD, Adam)):
        return name
    if name == "sgd":
        return SGD(momentum=float(options.get("momentum", 0.0)), nesterov=bool(options.get("nesterov", False)))
    if name == "adam":
        return Adam(**{k: float(v) for k, v in options.items() if k in ("beta_1", "beta_2", "epsilon")})
    msg = f"unknown optimizer {name!r}; expected one of ['adam', 'sgd'] or an anynet.optimizers object"
    raise ValueError(msg)


# --------------------------------------------------------------------------- schedules

Schedule = Callable[[float, int, int], float]


def constant(lr0: float, epoch: int, epochs: int) -> float:
    return lr0


def invscaling(lr0: float, epoch: int, epochs: int, power_t: float = 0.5) -> float:
    """``lr0 / (epoch+1)**power_t`` (scikit-learn's inverse scaling, counted in epochs)."""
    return lr0 / (epoch + 1) ** power_t


def step(lr0: float, epoch: int, epochs: int, step_size: int = 30, gamma: float = 0.1) -> float:
    """``lr0 * gamma**(epoch // step_size)``."""
    return lr0 * gamma ** (epoch // step_size)


def cosine(lr0: float, epoch: int, epochs: int) -> float:
    """Cosine decay from ``lr0`` at the first epoch towards 0 at the last."""
    return 0.5 * lr0 * (1 + math.cos(math.pi * epoch / max(epochs, 1)))


SCHEDULES: dict[str, Schedule] = {"constant": constant, "invscaling": invscaling, "step": step, "cosine": cosine}


def get_schedule(schedule: str | Schedule) -> Schedule:
    """A schedule from its name, or a callable ``(lr0, epoch, epochs) -> lr`` passed through."""
    if callable(schedule):
        return schedule
    if schedule not in SCHEDULES:
        msg = f"unknown schedule {schedule!r}; expected one of {sorted(SCHEDULES)} or a callable"
        raise ValueError(msg)
    return SCHEDULES[schedule]
