"""Optimizers in optax's shape: ``init(layers, xp) -> state`` and
``step(layers, grads, state, lr, *, xp) -> (layers, state)``, returning new arrays, never mutating.

An optimizer owns all its forms. Beside the pure ``step``, it may give the flat-buffer kernel the
buffer engine runs, where all parameters, gradients and moments each live in one 1-D buffer:

- ``flat_state(state, pack)`` turns the pure state into the kernel's (``pack(tree)`` makes a buffer),
  ``tree_state(fstate, views)`` turns it back (``views(buffer)`` sees a buffer as a tree);
- ``flat_step(ops, p, p_next, g, s, fstate, lr) -> fstate`` writes the next parameters into
  ``p_next`` from ``p`` and the gradients ``g`` (which it may overwrite), ``s`` being scratch.

An optimizer without them never runs on the buffer engine: ``engine="auto"`` takes the reference
engine, and ``engine="buffer"`` refuses it. With them it may also give the whole update as one fused
GPU kernel: ``kernel() -> anynet.kernels.Kernel`` and ``fused_step(run, p, p_next, g, fstate, lr) ->
fstate``, ``run`` being the compiled kernel; the engine uses it where the backend compiles kernels.
An optimizer whose ``flat_step`` also works with ``lr`` and the numbers of its state (a step count)
as 0-d device arrays (float64), advanced in place, says ``graph_safe = True``; the buffer engine may
then capture its steps in a CUDA graph (``anynet.engines.graphs``).

Learning-rate schedules live here too: ``schedule(lr0, epoch, epochs) -> lr`` on the host, once an epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from . import core
from .kernels import Kernel
from .tree import tree_map as _map

_SGD = Kernel("sgd", "T p, T g, T lr", "T pn", "pn = p - lr * g")
_MOMENTUM = Kernel("momentum", "T p, T g, T lr, T mu", "T pn, T v", "v = mu * v - lr * g; pn = p + v")
_NESTEROV = Kernel("nesterov", "T p, T g, T lr, T mu", "T pn, T v", "v = mu * v - lr * g; pn = p + (mu * v - lr * g)")
_ADAM = Kernel(
    "adam",
    "T p, T g, T lr_t, T b1, T b2, T eps",
    "T pn, T m, T v",
    "m = b1 * m + (1 - b1) * g; v = b2 * v + (1 - b2) * (g * g); pn = p - lr_t * m / (sqrt(v) + eps)",
)


def _zero(value: Any) -> bool:
    """Whether a hyperparameter is the number 0 (an array of per-member values never is)."""
    return isinstance(value, (int, float)) and value == 0


@dataclass(frozen=True)
class SGD:
    """Gradient descent, with optional (Nesterov) momentum as scikit-learn and Keras define it:
    ``v = momentum*v - lr*g``; ``W += v`` (or ``W += momentum*v - lr*g`` with Nesterov).

    For a stack of networks ``momentum`` may be a ``(k, 1, 1)`` array, one value per member: each
    member then keeps a velocity, and a member whose momentum is 0 steps exactly as plain descent."""

    momentum: Any = 0.0
    nesterov: bool = False
    name: str = field(default="sgd", init=False)
    #: ``flat_step`` takes ``lr`` as a device array: a captured step (a CUDA graph) replays right
    graph_safe: ClassVar[bool] = True

    def init(self, layers, *, xp):
        return None if _zero(self.momentum) else _map(xp.zeros_like, layers)

    def step(self, layers, grads, state, lr, *, xp):
        if _zero(self.momentum):
            return core.update(layers, grads, lr=lr), None
        m = self.momentum
        v = _map(lambda v, g: m * v - lr * g, state, grads)
        if self.nesterov:
            return _map(lambda w, v, g: w + (m * v - lr * g), layers, v, grads), v
        return _map(lambda w, v: w + v, layers, v), v

    def flat_state(self, state, pack):
        return None if _zero(self.momentum) else pack(state)

    def tree_state(self, fstate, views):
        return None if _zero(self.momentum) else views(fstate)

    def flat_step(self, ops, p, pn, g, s, fstate, lr):
        # the pure step's order of operations, over whole buffers; ``lr`` and ``momentum`` may be
        # flat arrays of one value per parameter (a stack's per-member values, spread out)
        if _zero(self.momentum):
            if not (isinstance(lr, (int, float)) and lr == 1.0):
                ops.multiply(g, lr, out=g)
            ops.subtract(p, g, out=pn)
            return None
        mu, v = self.momentum, fstate
        ops.multiply(v, mu, out=v)
        ops.multiply(g, lr, out=g)
        ops.subtract(v, g, out=v)
        if self.nesterov:
            ops.multiply(v, mu, out=s)
            ops.subtract(s, g, out=s)
            ops.add(p, s, out=pn)
        else:
            ops.add(p, v, out=pn)
        return v

    def kernel(self):
        if _zero(self.momentum):
            return _SGD
        return _NESTEROV if self.nesterov else _MOMENTUM

    def fused_step(self, run, p, pn, g, fstate, lr):
        if _zero(self.momentum):
            run(p, g, lr, pn)
            return None
        run(p, g, lr, self.momentum, pn, fstate)
        return fstate


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba), with the bias correction folded into the step size as scikit-learn does."""

    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    name: str = field(default="adam", init=False)
    #: ``flat_step`` takes ``lr`` and its step count as device arrays (it advances the count in place,
    #: ``count += 1``, and computes the bias correction from it): a captured step replays right
    graph_safe: ClassVar[bool] = True

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

    def flat_state(self, state, pack):
        count, first, second = state
        return (count, pack(first), pack(second))

    def tree_state(self, fstate, views):
        count, first, second = fstate
        return (count, views(first), views(second))

    def flat_step(self, ops, p, pn, g, s, fstate, lr):
        count, mo, ve = fstate
        count += 1
        b1, b2, eps = self.beta_1, self.beta_2, self.epsilon
        lr_t = lr * (1 - b2**count) ** 0.5 / (1 - b1**count)
        ops.multiply(mo, b1, out=mo)
        ops.multiply(g, 1 - b1, out=s)
        ops.add(mo, s, out=mo)
        ops.multiply(g, g, out=s)
        ops.multiply(s, 1 - b2, out=s)
        ops.multiply(ve, b2, out=ve)
        ops.add(ve, s, out=ve)
        ops.sqrt(ve, out=s)
        ops.add(s, eps, out=s)
        ops.multiply(mo, lr_t, out=g)
        ops.divide(g, s, out=g)
        ops.subtract(p, g, out=pn)
        return (count, mo, ve)

    def kernel(self):
        return _ADAM

    def fused_step(self, run, p, pn, g, fstate, lr):
        count, mo, ve = fstate
        count += 1
        b1, b2 = self.beta_1, self.beta_2
        rate = lr * (1 - b2**count) ** 0.5 / (1 - b1**count)
        if getattr(rate, "dtype", p.dtype) != p.dtype:  # a count held as a float64 device array
            rate = rate.astype(p.dtype)
        run(p, g, rate, b1, b2, self.epsilon, pn, mo, ve)
        return (count, mo, ve)


#: the optimizers anynet ships, by name; any object with ``init`` and ``step`` works as well
OPTIMIZERS: dict[str, type] = {"sgd": SGD, "adam": Adam}
Optimizer = SGD | Adam


def is_optimizer(obj: Any) -> bool:
    """Whether ``obj`` can train: it has ``init(layers, *, xp)`` and ``step(layers, grads, state, lr, *, xp)``."""
    return not isinstance(obj, str) and callable(getattr(obj, "init", None)) and callable(getattr(obj, "step", None))


def has_flat_kernel(opt: Any) -> bool:
    """Whether ``opt`` gives the buffer engine its flat-buffer forms."""
    return all(callable(getattr(opt, a, None)) for a in ("flat_state", "tree_state", "flat_step"))


def get(name: str | Optimizer, **options: Any) -> Optimizer:
    """An optimizer from a name (``"sgd"``, ``"adam"``) and its options, or an optimizer object passed
    through (anything with ``init`` and ``step``, in the shape of ``SGD`` and ``Adam``)."""
    if is_optimizer(name):
        return name
    if name == "sgd":
        return SGD(momentum=float(options.get("momentum", 0.0)), nesterov=bool(options.get("nesterov", False)))
    if name == "adam":
        return Adam(**{k: float(v) for k, v in options.items() if k in ("beta_1", "beta_2", "epsilon")})
    msg = (
        f"unknown optimizer {name!r}; expected one of {sorted(OPTIMIZERS)} or an optimizer object "
        "with init(layers, *, xp) and step(layers, grads, state, lr, *, xp)"
    )
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
