"""A fit's options, checked: everything about a fit that does not depend on the data.

``plan`` takes ``fit``'s keywords (every face's: ``Network.fit``, ``Ensemble.fit``, the search's
stacks) and returns a frozen ``Plan``, or raises before any data is touched, saying what was expected.
The training loop (``anynet.train``) then runs the plan.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import defaults, engines, losses, optimizers
from ._validate import positive_float, positive_int


@dataclass(frozen=True)
class Plan:
    """``fit``'s options, checked: everything about a fit that does not depend on the data."""

    epochs: int
    lr: float
    loss: losses.Loss
    opt: Any
    alpha: float
    schedule: Callable[[float, int, int], float]
    batch_size: int | None
    shuffle: bool
    seed: int | None
    validation_split: float
    patience: int | None
    min_delta: float
    restore_best_weights: bool
    track_accuracy: bool
    callbacks: tuple
    reset: bool
    verbose: int
    engine: str
    #: "raise" a ``DivergedError`` on a non-finite loss, or "continue" training through it (as
    #: scikit-learn's MLP does), the history showing what happened
    on_divergence: str = "raise"

    def lrs(self) -> list[float]:
        """The learning rate of every epoch."""
        if self.schedule is optimizers.constant:
            return [self.lr] * self.epochs
        return [self.schedule(self.lr, e, self.epochs) for e in range(self.epochs)]


def plan(
    output_activation: str,
    *,
    epochs: int = 100,
    lr: float | None = None,
    loss: str | None = None,
    optimizer: str | optimizers.Optimizer = "sgd",
    momentum: float | None = None,
    nesterov: bool | None = None,
    alpha: float = 0.0,
    schedule: str | Callable[[float, int, int], float] = "constant",
    batch_size: int | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    validation_data: tuple[Any, Any] | None = None,
    validation_split: float = 0.0,
    patience: int | None = None,
    min_delta: float = 0.0,
    restore_best_weights: bool = True,
    metrics: Sequence[str] | None = None,
    callbacks: Sequence[Callable[[int, dict], Any]] = (),
    classes: Sequence[Any] | None = None,
    reset: bool = False,
    verbose: int = 1,
    engine: str = "auto",
    sample_weight: Any = None,
    on_divergence: str = "raise",
    **optimizer_options: Any,
) -> Plan:
    """Check ``fit``'s options for a network whose output activation is ``output_activation``.

    ``validation_data``, ``classes`` and ``sample_weight`` are the caller's to prepare; here they are
    only checked for shape. See ``anynet.Network.fit`` for what each option means. ``momentum``,
    ``nesterov`` and any other keyword go to the optimizer named by ``optimizer``, as its options
    (``beta_1`` for Adam: ``anynet.optimizers.options_of(name)``); ``None`` is its own default.
    """
    epochs = positive_int(epochs, "epochs", allow_zero=True)
    batch_size = positive_int(batch_size, "batch_size", allow_none=True)
    lf = losses.get(loss if loss is not None else defaults.loss_for(output_activation))
    if lf.output is not None and lf.output != output_activation:
        msg = (
            f"loss {lf.name!r} works on {lf.output} outputs, but this network's output activation is "
            f"{output_activation!r}; make the network with output_activation={lf.output!r}"
        )
        raise ValueError(msg)
    given = {"momentum": momentum, "nesterov": nesterov}
    opt = _optimizer(optimizer, {k: v for k, v in given.items() if v is not None} | optimizer_options)
    lr = positive_float(defaults.lr_for(getattr(opt, "name", "")) if lr is None else lr, "lr")
    alpha = positive_float(alpha, "alpha", allow_zero=True)
    sched = optimizers.get_schedule(schedule)
    min_delta = positive_float(min_delta, "min_delta", allow_zero=True)
    patience = positive_int(patience, "patience", allow_none=True)
    if metrics is not None and any(m != "accuracy" for m in metrics):
        msg = f"unknown metric in {list(metrics)!r}; expected 'accuracy'"
        raise ValueError(msg)
    split = float(validation_split)
    if not 0.0 <= split < 1.0:
        msg = f"validation_split must be in [0, 1), got {validation_split!r}"
        raise ValueError(msg)
    if split and validation_data is not None:
        msg = "give validation_data or validation_split, not both"
        raise ValueError(msg)
    if validation_data is not None and (not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2):
        msg = "validation_data must be a pair (X_val, t_val)"
        raise ValueError(msg)
    engines.check(engine)
    if on_divergence not in ("raise", "continue"):
        msg = f"on_divergence must be 'raise' or 'continue', got {on_divergence!r}"
        raise ValueError(msg)
    for cb in callbacks:
        if not callable(cb):
            msg = f"callbacks must be callables f(epoch, logs), got {cb!r}"
            raise TypeError(msg)
    return Plan(
        epochs=epochs,
        lr=lr,
        loss=lf,
        opt=opt,
        alpha=alpha,
        schedule=sched,
        batch_size=batch_size,
        shuffle=bool(shuffle),
        seed=seed,
        validation_split=split,
        patience=patience,
        min_delta=min_delta,
        restore_best_weights=bool(restore_best_weights),
        track_accuracy=lf.classification or bool(metrics),
        callbacks=tuple(callbacks),
        reset=bool(reset),
        verbose=int(verbose),
        engine=engine,
        on_divergence=on_divergence,
    )


#: fit's named optimizer options, each with the value that asks for nothing: an optimizer that does not
#: take the option trains as asked (Adam with ``momentum=0.0``), so that value is dropped, not refused
NEUTRAL = {"momentum": 0.0, "nesterov": False}


def _optimizer(optimizer: Any, options: dict[str, Any]) -> Any:
    """``optimizer`` built with ``options``, the keywords ``fit`` does not take itself; one that the
    optimizer does not take either is a TypeError saying what each takes (a ``NEUTRAL`` value is
    dropped where a registered optimizer does not take it)."""
    registered = isinstance(optimizer, str) and optimizer in optimizers.OPTIMIZERS
    if registered:
        takes = list(optimizers.options_of(optimizer))
        subject, theirs = f"the optimizer {optimizer!r}", f"takes {takes}"
    elif optimizers.is_optimizer(optimizer):
        takes, subject, theirs = [], "an optimizer object", "takes none here (set them on the object)"
    else:
        return optimizers.get(optimizer, **options)  # an unknown optimizer: get says so
    for key, value in list(options.items()):
        if key in takes:
            continue
        if registered and key in NEUTRAL and isinstance(value, (int, float, np.generic)) and value == NEUTRAL[key]:
            del options[key]
            continue
        if key in NEUTRAL:
            msg = f"fit got {key}={value!r}, but {subject} does not take {key!r}; it {theirs}"
        else:
            hint = optimizers.did_you_mean(key, [*FIT_OPTIONS, *takes])
            msg = f"fit got an unknown option {key!r}{hint}; {subject} {theirs}, and fit itself takes {FIT_OPTIONS}"
        raise TypeError(msg)
    return optimizers.get(optimizer, **options)


#: the options ``plan`` (so ``fit``) takes itself; ``momentum``, ``nesterov`` and any other go to the optimizer
FIT_OPTIONS = [
    k for k, p in inspect.signature(plan).parameters.items() if p.kind is p.KEYWORD_ONLY and k not in NEUTRAL
]
