"""The training loop: epochs and mini-batches over the pure core, history, callbacks, progress."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import backend as B
from . import core, losses, optimizers
from ._validate import positive_float, positive_int, same_place
from .progress import Progress


class DivergedError(FloatingPointError):
    """Training produced a NaN or infinite loss. The network keeps its last finite weights, and the
    history up to that point is on ``.history`` (and on the network)."""

    def __init__(self, message: str, history: History) -> None:
        super().__init__(message)
        self.history = history


@dataclass
class History:
    """What one ``fit`` did, one entry per epoch run. Values are Python floats."""

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    #: the quantity early stopping and ``best_epoch`` watch: ``"val_loss"`` with validation data
    monitor: str = "loss"
    best_epoch: int | None = None
    best_value: float | None = None
    stopped_early: bool = False
    wall_time: float = 0.0
    backend: str = ""
    device: str = ""

    @property
    def epochs(self) -> int:
        """How many epochs ran."""
        return len(self.loss)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__) | {"epochs": self.epochs}

    def plot(self, path: str | None = None, *, ax: Any = None, logy: bool | None = None, title: str | None = None):
        """Draw the loss per epoch (and validation loss, if any) with matplotlib.

        With ``path``, the figure is saved there (PNG, SVG, PDF by suffix) without touching pyplot's
        global state, so it works on a machine with no display. Returns the matplotlib Axes.
        """
        try:
            from matplotlib.figure import Figure
        except ImportError as exc:
            msg = 'History.plot needs matplotlib; pip install "anynet[plot]"'
            raise ImportError(msg) from exc
        if ax is None:
            if path is None:
                import matplotlib.pyplot as plt

                _, ax = plt.subplots(figsize=(6, 4))
            else:
                ax = Figure(figsize=(6, 4), layout="constrained").add_subplot()
        epochs = np.arange(1, self.epochs + 1)
        ax.plot(epochs, self.loss, label="train loss")
        if self.val_loss:
            ax.plot(epochs, self.val_loss, label="validation loss")
        if self.best_epoch is not None and self.monitor in ("loss", "val_loss"):
            ax.axvline(self.best_epoch + 1, color="0.6", linestyle=":", label=f"best epoch ({self.best_epoch + 1})")
        positive = all(v > 0 for v in self.loss + self.val_loss)
        if (logy if logy is not None else positive and self.epochs > 1) and positive:
            ax.set_yscale("log")
        if self.epochs > 100:
            ax.set_xscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title(title or f"training loss ({self.backend}, {self.device})")
        ax.grid(True, alpha=0.3)
        ax.legend()
        if path is not None:
            ax.figure.savefig(path, dpi=120)
        return ax


def accuracy_sum(y: Any, t: Any, *, xp) -> Any:
    """How many rows of ``y`` pick the class ``t`` marks (argmax; or > 0.5 for one output), as a 0-d float."""
    if y.shape[1] == 1:
        hit = (y[:, 0] > 0.5) == (t[:, 0] > 0.5)
    else:
        hit = xp.argmax(y, axis=1) == xp.argmax(t, axis=1)
    return xp.sum(xp.astype(hit, y.dtype))


def _read(name: str, xp: Any, values: list[Any]) -> list[float]:
    """Device scalars -> Python floats in one transfer (one sync on a GPU)."""
    if name == "numpy":
        return [float(v) for v in values]
    return [float(v) for v in B.to_numpy(xp.stack([xp.reshape(xp.asarray(v), ()) for v in values]))]


def _all_finite(layers: Any, xp: Any) -> bool:
    return all(bool(xp.all(xp.isfinite(a))) for layer in layers for a in layer if a is not None)


def fit(
    net,
    X: Any,
    t: Any,
    *,
    epochs: int = 100,
    lr: float | None = None,
    loss: str | None = None,
    optimizer: str | optimizers.Optimizer = "sgd",
    momentum: float = 0.0,
    nesterov: bool = False,
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
) -> History:
    """Train ``net`` on ``X``: ``(n, n_in)`` and ``t``: ``(n, n_out)`` (or 1-D class labels).

    - ``loss``: ``"half_sse"`` (the seed's ½Σ(y−t)²), ``"mse"``, ``"half_mse"``, ``"binary_cross_entropy"``
      (sigmoid output) or ``"cross_entropy"`` (softmax output). ``None`` picks cross-entropy for a
      softmax output and half_sse otherwise.
    - ``optimizer``: ``"sgd"`` (with ``momentum``/``nesterov``) or ``"adam"``, or an object from
      ``anynet.optimizers``; ``lr`` ``None`` is 1.0 for sgd (the seed) and 1e-3 for Adam.
      ``schedule``: ``"constant"``, ``"invscaling"``, ``"step"``, ``"cosine"`` or ``f(lr, epoch, epochs)``.
      ``alpha``: L2 penalty as scikit-learn's, ``0.5*alpha*ΣW²/batch``.
    - ``batch_size`` ``None`` is the full batch, as the seed; ``shuffle`` draws a seeded permutation
      per epoch on the host.
    - ``validation_data=(Xv, tv)`` or ``validation_split`` (a seeded random fraction held out);
      ``patience``/``min_delta`` stop early on the validation loss (the training loss without
      validation) and, with ``restore_best_weights``, keep the best weights.
    - ``callbacks``: ``f(epoch, logs)`` after each epoch; returning ``True`` stops training.
    - ``reset``: start again from the initial weights; otherwise training continues from the
      current weights and optimizer state. ``verbose``: 0 quiet, 1 progress bar, 2 a line per epoch.

    Every argument is checked before any weight changes. A loss that turns NaN or infinite raises
    ``DivergedError`` and leaves the last finite weights in place.
    """
    epochs = positive_int(epochs, "epochs", allow_zero=True)
    batch_size = positive_int(batch_size, "batch_size", allow_none=True)
    lf = losses.get(
        loss if loss is not None else ("cross_entropy" if net.output_activation == "softmax" else "half_sse")
    )
    if lf.output is not None and lf.output != net.output_activation:
        msg = (
            f"loss {lf.name!r} works on {lf.output} outputs, but this network's output activation is "
            f"{net.output_activation!r}; make the network with output_activation={lf.output!r}"
        )
        raise ValueError(msg)
    opt_options = {"momentum": momentum, "nesterov": nesterov}
    opt = optimizers.get(optimizer, **opt_options)
    lr = positive_float(optimizers.DEFAULT_LR[opt.name] if lr is None else lr, "lr")
    positive_float(momentum, "momentum", allow_zero=True)
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
    for cb in callbacks:
        if not callable(cb):
            msg = f"callbacks must be callables f(epoch, logs), got {cb!r}"
            raise TypeError(msg)

    Xv_in, tv_in = validation_data if validation_data is not None else (None, None)
    work = net._follow(same_place(X=X, t=t, X_val=Xv_in, t_val=tv_in), "X", X)
    if reset:
        work = work.to(work.backend, work.device) if work is net else work
        work.reset()
    X = work._input(X, "X")
    n = X.shape[0]
    t = work._targets(t, n, lf, classes)
    xp = work.xp
    if split:
        n_val = max(1, round(n * split))
        if n - n_val < 1:
            msg = f"validation_split={split} leaves no training rows out of {n}"
            raise ValueError(msg)
        order = np.random.default_rng(work.seed).permutation(n)
        val_idx = B.from_numpy(order[:n_val], work.backend, work._native)
        tr_idx = B.from_numpy(order[n_val:], work.backend, work._native)
        X, Xv, t, tv = (
            xp.take(X, tr_idx, axis=0),
            xp.take(X, val_idx, axis=0),
            xp.take(t, tr_idx, axis=0),
            xp.take(t, val_idx, axis=0),
        )
        n = n - n_val
    elif validation_data is not None:
        Xv = work._input(Xv_in, "X_val")
        tv = work._targets(tv_in, Xv.shape[0], lf, label="t_val")
    else:
        Xv = tv = None
    track_acc = lf.classification or bool(metrics)

    history = History(monitor="val_loss" if Xv is not None else "loss", backend=work.backend, device=work.device)
    layers = work.layers
    state = (
        work._opt_state if (work._opt == opt and work._opt_state is not None and not reset) else opt.init(layers, xp=xp)
    )
    bs = n if batch_size is None else min(batch_size, n)
    starts = range(0, n, bs)
    batched = bs < n
    rng = np.random.default_rng(seed if seed is not None else [work.seed or 0, work.epochs_trained])
    acts = work._acts
    best_layers, wait, start_prev = layers, 0, layers
    progress = Progress(epochs, verbose=verbose)
    logs: dict[str, Any] = {}
    t0 = time.perf_counter()
    epoch = 0
    for epoch in range(epochs):
        lr_e = sched(lr, epoch, epochs)
        start_layers = layers
        if batched and shuffle:
            perm = B.from_numpy(rng.permutation(n), work.backend, work._native)
        total = correct = 0.0
        for s in starts:
            if not batched:
                Xb, tb = X, t
            elif shuffle:
                idx = perm[s : s + bs]
                Xb, tb = xp.take(X, idx, axis=0), xp.take(t, idx, axis=0)
            else:
                Xb, tb = X[s : s + bs, ...], t[s : s + bs, ...]
            value, grads, y = core.loss_and_grads(layers, Xb, tb, acts=acts, loss=lf, alpha=alpha, xp=xp)
            layers, state = opt.step(layers, grads, state, lr_e, xp=xp)
            total = total + (value if lf.reduction == "sum" else value * Xb.shape[0])
            if track_acc:
                correct = correct + accuracy_sum(y, tb, xp=xp)
        layers, state = B.materialize((layers, state), work.backend)
        scalars = [total]
        if track_acc:
            scalars.append(correct)
        if Xv is not None:
            yv, cache = core.forward(layers, Xv, acts=acts, xp=xp)
            scalars.append(lf.value(cache[-1][1], yv, tv, xp=xp))
            if track_acc:
                scalars.append(accuracy_sum(yv, tv, xp=xp))
        values = _read(work.backend, xp, scalars)
        train_loss = values[0] / (1 if lf.reduction == "sum" else n)
        if not math.isfinite(train_loss) or (Xv is not None and not math.isfinite(values[1 + track_acc])):
            layers = start_layers if _all_finite(start_layers, xp) else start_prev
            work.layers, work._opt, work._opt_state = layers, None, None
            history.wall_time = time.perf_counter() - t0
            work.history = history
            net.__dict__.update(work.__dict__)
            msg = (
                f"training diverged at epoch {epoch + 1}: the loss became {train_loss}; the last finite "
                f"weights were kept. Try a smaller lr (it was {lr_e:g}) or standardise the inputs"
            )
            raise DivergedError(msg, history)
        start_prev = start_layers
        history.loss.append(train_loss)
        history.lr.append(lr_e)
        logs = {"epoch": epoch, "loss": train_loss, "lr": lr_e}
        k = 1
        if track_acc:
            history.accuracy.append(values[k] / n)
            logs["accuracy"] = history.accuracy[-1]
            k += 1
        if Xv is not None:
            history.val_loss.append(values[k])
            logs["val_loss"] = history.val_loss[-1]
            if track_acc:
                history.val_accuracy.append(values[k + 1] / Xv.shape[0])
                logs["val_accuracy"] = history.val_accuracy[-1]
        current = logs[history.monitor]
        if history.best_value is None or current < history.best_value - min_delta:
            history.best_value, history.best_epoch, best_layers, wait = current, epoch, layers, 0
        else:
            wait += 1
        progress.update(epoch + 1, logs)
        stop = patience is not None and wait >= patience
        if callbacks:
            work.layers = layers
            logs["network"] = work
            answers = [cb(epoch, logs) for cb in callbacks]  # every callback runs, even after a stop
            stop = any(answers) or stop
        if stop:
            history.stopped_early = True
            break
    history.wall_time = time.perf_counter() - t0
    progress.close(history.epochs, logs)
    if patience is not None and restore_best_weights and history.best_epoch is not None:
        layers = best_layers
    work.layers, work._opt, work._opt_state = layers, opt, state
    work.epochs_trained += history.epochs
    work.history = history
    net.__dict__.update(work.__dict__)
    return history
