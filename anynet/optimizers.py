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

The optimizers that can be named (``fit(optimizer="adam", beta_1=0.8)``, a checkpoint, the command
line) live in a registry, ``OPTIMIZERS``: ``register(cls)`` adds a frozen dataclass whose init fields
are its options (checked in its ``__post_init__``) and which says what its state holds,
``state_layout(shapes) -> layout``: ``None`` (no state), ``Count(what)`` (a step count),
``LikeParams(what)`` (one array per parameter, ``[(W, b | None), ...]``), ``Array(what, shape)``,
``Maybe(layout)`` (that or ``None``), or a tuple of these. ``get(name, **options)`` builds any of them;
a checkpoint stores the name and options, and a state that ``check_state`` holds against the layout.

Learning-rate schedules live here too: ``schedule(lr0, epoch, epochs) -> lr`` on the host, once an epoch.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np

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


def _setting(opt: Any, key: str, ok: Callable[[float], bool], expected: str) -> None:
    """Refuse the number option ``key`` of ``opt`` (a frozen dataclass) unless it is finite and ``ok``;
    keep it as a Python float. An array (a stack's one value per member) is left as it is: each
    member's value was checked as that member's own optimizer."""
    value = getattr(opt, key)
    if getattr(value, "ndim", 0):
        return
    number = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if not (number and math.isfinite(value) and ok(float(value))):
        msg = f"{type(opt).__name__}'s {key} must be {expected}, got {value!r}"
        raise ValueError(msg)
    object.__setattr__(opt, key, float(value))


def _flag(opt: Any, key: str) -> None:
    """Refuse the option ``key`` of ``opt`` unless it is True or False; keep it as a Python bool."""
    value = getattr(opt, key)
    if not isinstance(value, (bool, np.bool_)):
        msg = f"{type(opt).__name__}'s {key} must be True or False, got {value!r}"
        raise ValueError(msg)
    object.__setattr__(opt, key, bool(value))


# --------------------------------------------------------------------------- state layouts

#: a layer's parameter shapes, ``(W shape, b shape | None)``
Shapes = Sequence[tuple[tuple[int, ...], tuple[int, ...] | None]]


@dataclass(frozen=True)
class Count:
    """A step count in an optimizer's state: a whole number >= 0 (a 0-d array inside a compiled or
    captured run)."""

    what: str = "step count"


@dataclass(frozen=True)
class LikeParams:
    """Arrays shaped like the parameters, ``[(W, b | None), ...]``: one per weight and bias."""

    what: str


@dataclass(frozen=True)
class Array:
    """One float array of ``shape``."""

    what: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Maybe:
    """``layout``, or ``None`` in its place."""

    layout: Any


#: what ``state_layout`` returns: ``None`` (nothing kept), a ``Count``, ``LikeParams``, ``Array``,
#: ``Maybe``, or a tuple of layouts (the state is then a tuple, or a list once read back from a checkpoint)
Layout = None | Count | LikeParams | Array | Maybe | tuple


def describe(layout: Layout) -> str:
    """``layout`` in words: ``"[step count, first moments, second moments]"``."""
    if isinstance(layout, tuple):
        return "[" + ", ".join(describe(part) for part in layout) + "]"
    if isinstance(layout, LikeParams):  # the arrays of every parameter: "first moments", "velocities"
        what = layout.what
        return f"{what[:-1]}ies" if what.endswith("y") else f"{what}s"
    if isinstance(layout, Maybe):
        return f"{describe(layout.layout)} or nothing"
    return "nothing" if layout is None else layout.what


def check_state(
    layout: Layout, state: Any, shapes: Shapes, leaf: Callable[[Any, tuple, str, str], None], *, name: str
) -> None:
    """Hold ``state`` against ``layout`` for parameters of ``shapes``; raise a ValueError saying where
    they part. ``leaf(node, shape, kinds, what)`` checks each array the layout calls for (``kinds``:
    the dtype kinds it may have, ``"f"``, or ``"fiu"`` for a count held as an array) and raises where
    ``node`` is not one; ``name`` is the optimizer's, for the messages."""
    if isinstance(layout, tuple):
        if not isinstance(state, (list, tuple)) or len(state) != len(layout):
            msg = f"the {name} state is not {describe(layout)}"
            raise ValueError(msg)
        for part, node in zip(layout, state, strict=True):
            check_state(part, node, shapes, leaf, name=name)
    elif isinstance(layout, Maybe):
        if state is not None:
            check_state(layout.layout, state, shapes, leaf, name=name)
    elif layout is None:
        if state is not None:
            msg = f"the {name} state holds {repr(state)[:60]} where the optimizer keeps nothing"
            raise ValueError(msg)
    elif isinstance(layout, Count):
        if state is None or isinstance(state, (bool, int, float, str, list, tuple)):
            if not (isinstance(state, int) and not isinstance(state, bool) and state >= 0):
                msg = f"the {name} {layout.what} {state!r} is not a whole number >= 0"
                raise ValueError(msg)
        else:
            leaf(state, (), "fiu", layout.what)
    elif isinstance(layout, Array):
        leaf(state, tuple(layout.shape), "f", layout.what)
    elif isinstance(layout, LikeParams):
        what = layout.what
        if state is None:
            msg = f"the {name} state has no {what}"
            raise ValueError(msg)
        if not isinstance(state, (list, tuple)) or len(state) != len(shapes):
            msg = f"the {name} state's {what} is not one entry per layer ({len(shapes)})"
            raise ValueError(msg)
        for i, (pair, (shape_w, shape_b)) in enumerate(zip(state, shapes, strict=True)):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                msg = f"the {name} state's {what} for layer {i} is not a [W, b] pair"
                raise ValueError(msg)
            leaf(pair[0], tuple(shape_w), "f", f"{what} for W{i}")
            if shape_b is not None:
                leaf(pair[1], tuple(shape_b), "f", f"{what} for b{i}")
            elif pair[1] is not None:
                msg = f"the {name} state has a {what} for b{i}, but the network has no biases"
                raise ValueError(msg)
    else:
        msg = f"the {name} optimizer's state_layout gave {layout!r}, which is not a layout (see anynet.optimizers)"
        raise TypeError(msg)


# --------------------------------------------------------------------------- the registry

#: the optimizers that can be named, by name; any object with ``init`` and ``step`` trains as well
OPTIMIZERS: dict[str, type] = {}

_T = TypeVar("_T", bound=type)


def register(cls: _T) -> _T:
    """Add the optimizer class ``cls`` to ``OPTIMIZERS`` under ``cls.name``; returns ``cls``, so it works
    as a class decorator. ``cls`` is a dataclass whose init fields are its options, with ``init``,
    ``step`` and ``state_layout`` (and, to run on the buffer engine, ``flat_state``, ``tree_state``
    and ``flat_step``)."""
    if not isinstance(cls, type) or not dataclasses.is_dataclass(cls):
        msg = f"register expects a dataclass whose init fields are the optimizer's options, got {cls!r}"
        raise TypeError(msg)
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        msg = f"register needs {cls.__name__}.name, the name fit and checkpoints call it by (a string), got {name!r}"
        raise TypeError(msg)
    missing = [m for m in ("init", "step", "state_layout") if not callable(getattr(cls, m, None))]
    if missing:
        msg = f"{cls.__name__} cannot be registered: it has no {', '.join(missing)} (see anynet.optimizers)"
        raise TypeError(msg)
    if OPTIMIZERS.get(name, cls) is not cls:
        msg = (
            f"the optimizer name {name!r} is taken by {OPTIMIZERS[name].__qualname__}; give {cls.__name__} "
            f"another name, or unregister({name!r}) first"
        )
        raise ValueError(msg)
    OPTIMIZERS[name] = cls
    return cls


def unregister(name: str) -> type:
    """Take the optimizer called ``name`` out of ``OPTIMIZERS``; returns its class."""
    if name not in OPTIMIZERS:
        msg = f"no optimizer {name!r} is registered; the registered ones are {names()}"
        raise ValueError(msg)
    return OPTIMIZERS.pop(name)


def names() -> list[str]:
    """The registered optimizers' names, sorted: the choices of ``fit(optimizer=...)`` and the command line."""
    return sorted(OPTIMIZERS)


def options_of(optimizer: str | type) -> dict[str, Any]:
    """The options a registered optimizer (a name) or an optimizer class takes, with their defaults
    (``dataclasses.MISSING`` for one without)."""
    cls = OPTIMIZERS[optimizer] if isinstance(optimizer, str) else optimizer
    out = {}
    for f in dataclasses.fields(cls):
        if f.init:
            out[f.name] = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return out


def to_config(opt: Any) -> tuple[str, dict[str, Any]] | None:
    """The name and options that rebuild ``opt`` as ``get(name, **options)``, or ``None`` when its
    class is not registered (NumPy scalars come back as Python numbers)."""
    name = getattr(opt, "name", None)
    if not isinstance(name, str) or OPTIMIZERS.get(name) is not type(opt):
        return None
    options = {}
    for f in dataclasses.fields(opt):
        if f.init:
            value = getattr(opt, f.name)
            options[f.name] = value.item() if isinstance(value, np.generic) else value
    return name, options


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to ``word``, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1) if isinstance(word, str) else []
    return f" (did you mean {close[0]!r}?)" if close else ""


@register
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

    def __post_init__(self):
        _setting(self, "momentum", lambda m: m >= 0, "a non-negative finite number")
        _flag(self, "nesterov")

    def state_layout(self, shapes: Shapes) -> Layout:
        # a member of an ensemble trained with per-member momenta keeps the stack's velocity where its
        # own momentum is 0 (plain descent ignores it), and its checkpoint holds that velocity
        return Maybe(LikeParams("velocity")) if _zero(self.momentum) else LikeParams("velocity")

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


@register
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

    def __post_init__(self):
        # scikit-learn's ranges: at a beta of 1 a moment's bias correction divides by 0
        _setting(self, "beta_1", lambda b: 0 <= b < 1, "a number in [0, 1)")
        _setting(self, "beta_2", lambda b: 0 <= b < 1, "a number in [0, 1)")
        _setting(self, "epsilon", lambda e: e > 0, "a positive finite number")

    def state_layout(self, shapes: Shapes) -> Layout:
        return (Count(), LikeParams("first moment"), LikeParams("second moment"))

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


class Optimizer(Protocol):
    """What ``fit`` trains with: ``SGD``, ``Adam``, any registered class, or an object of your own."""

    def init(self, layers: Any, *, xp: Any) -> Any: ...

    def step(self, layers: Any, grads: Any, state: Any, lr: Any, *, xp: Any) -> tuple[Any, Any]: ...


def is_optimizer(obj: Any) -> bool:
    """Whether ``obj`` can train: it has ``init(layers, *, xp)`` and ``step(layers, grads, state, lr, *, xp)``."""
    return not isinstance(obj, str) and callable(getattr(obj, "init", None)) and callable(getattr(obj, "step", None))


def has_flat_kernel(opt: Any) -> bool:
    """Whether ``opt`` gives the buffer engine its flat-buffer forms."""
    return all(callable(getattr(opt, a, None)) for a in ("flat_state", "tree_state", "flat_step"))


def get(name: str | Optimizer, **options: Any) -> Optimizer:
    """The registered optimizer ``name`` built with ``options`` (its init fields: ``get("adam",
    beta_1=0.8)``), or an optimizer object passed through as it is (anything with ``init`` and
    ``step``, in the shape of ``SGD`` and ``Adam``), which takes no options here.

    An option the optimizer does not take is a TypeError naming those it does; a value out of range
    is refused by the optimizer itself (a ValueError)."""
    if is_optimizer(name):
        if options:
            msg = (
                f"options {sorted(options)} were given with the optimizer object {name!r}, which is used as it "
                "is; set them on the object, or name a registered optimizer"
            )
            raise TypeError(msg)
        return name
    cls = OPTIMIZERS.get(name) if isinstance(name, str) else None
    if cls is None:
        msg = (
            f"unknown optimizer {name!r}{did_you_mean(name, names())}; expected one of {names()} or an optimizer "
            "object with init(layers, *, xp) and step(layers, grads, state, lr, *, xp)"
        )
        raise ValueError(msg)
    accepted = list(options_of(cls))
    for key in options:
        if key not in accepted:
            msg = f"optimizer {name!r} takes no option {key!r}{did_you_mean(key, accepted)}; its options are {accepted}"
            raise TypeError(msg)
    return cls(**options)


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
