"""The training loop: epochs and mini-batches over the pure core, history, callbacks, progress."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import backend as B
from . import core, engines, losses, optimizers, sparse
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


def _read(name: str, xp: Any, values: list[Any]) -> list[float]:
    """Device scalars -> Python floats in one transfer (one sync on a GPU)."""
    if name == "numpy":
        return [float(v) for v in values]
    return [float(v) for v in B.to_numpy(xp.stack([xp.reshape(xp.asarray(v), ()) for v in values]))]


def _all_finite(layers: Any, xp: Any) -> bool:
    """Whether every weight and bias is finite, read back in one transfer."""
    flags = [xp.all(xp.isfinite(a)) for layer in layers for a in layer if a is not None]
    return bool(xp.all(xp.stack(flags)))


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
    engine: str = "auto",
    sample_weight: Any = None,
    on_divergence: str = "raise",
) -> History:
    """Train ``net`` on ``X``: ``(n, n_in)`` and ``t``: ``(n, n_out)`` (or 1-D class labels).

    - ``loss``: ``"half_sse"`` (the seed's ½Σ(y−t)²), ``"mse"``, ``"half_mse"``, ``"binary_cross_entropy"``
      (sigmoid output), ``"cross_entropy"`` (softmax output) or ``"poisson"`` (exp output, scikit-learn's
      half Poisson deviance). ``None`` picks cross-entropy for a softmax output and half_sse otherwise.
    - ``sample_weight``: ``(n,)`` non-negative weights, scikit-learn's: each row's loss term (and its
      gradient) is multiplied by its weight and a batch's mean becomes ``Σ w·l / Σ w``, the L2 penalty
      divided by ``Σ w``. Validation losses stay unweighted. ``X`` may be a SciPy sparse matrix (CSR or
      CSC) on the NumPy backend: it is multiplied as it is, never densified whole.
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
    ``DivergedError`` and leaves the last finite weights in place; ``on_divergence="continue"`` trains
    on instead (as scikit-learn's MLP does), recording the non-finite losses, for the caller to judge.
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
    if engine not in engines.ENGINES:
        msg = f"unknown engine {engine!r}; expected one of {list(engines.ENGINES)}"
        raise ValueError(msg)
    if on_divergence not in ("raise", "continue"):
        msg = f"on_divergence must be 'raise' or 'continue', got {on_divergence!r}"
        raise ValueError(msg)
    for cb in callbacks:
        if not callable(cb):
            msg = f"callbacks must be callables f(epoch, logs), got {cb!r}"
            raise TypeError(msg)

    Xv_in, tv_in = validation_data if validation_data is not None else (None, None)
    work = net._follow(same_place(X=X, t=t, X_val=Xv_in, t_val=tv_in, sample_weight=sample_weight), "X", X)
    if work is net:  # train a shallow copy and commit at the end: a failed fit leaves net as it was
        work = type(net).__new__(type(net))
        work.__dict__.update(net.__dict__)
    Engine = engines.select(engine, work.backend)
    if reset:
        work.reset()
    X = work._input(X, "X")
    n = X.shape[0]
    t = work._targets(t, n, lf, classes)
    w = None if sample_weight is None else work._sample_weight(sample_weight, n)
    if Engine is engines.Inplace and (w is not None or sparse.is_sparse(X)):
        if engine == "inplace":
            msg = "engine='inplace' takes neither sample_weight nor sparse X; use engine='auto' or 'reference'"
            raise ValueError(msg)
        Engine = engines.Reference  # the in-place kernels have no row weights and no sparse products
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
            sparse.take_rows(X, tr_idx, xp),
            sparse.take_rows(X, val_idx, xp),
            xp.take(t, tr_idx, axis=0),
            xp.take(t, val_idx, axis=0),
        )
        w = None if w is None else xp.take(w, tr_idx, axis=0)
        n = n - n_val
    elif validation_data is not None:
        Xv = work._input(Xv_in, "X_val")
        tv = work._targets(tv_in, Xv.shape[0], lf, label="t_val")
    else:
        Xv = tv = None
    track_acc = lf.classification or bool(metrics)

    history = History(monitor="val_loss" if Xv is not None else "loss", backend=work.backend, device=work.device)
    resume = work._opt == opt and work._opt_state is not None
    state = work._opt_state if resume else opt.init(work.layers, xp=xp)
    eng = Engine(work.layers, state, acts=work._acts, loss=lf, opt=opt, alpha=alpha, xp=xp, backend=work.backend)
    bs = n if batch_size is None else min(batch_size, n)
    loop = _Loop(work, eng, lf, history, X, t, Xv, tv, track_acc, patience, min_delta, callbacks, verbose, epochs)
    loop.w, loop.stop_on_divergence = w, on_divergence == "raise"
    lrs = [lr] * epochs if sched is optimizers.constant else [sched(lr, e, epochs) for e in range(epochs)]
    t0 = time.perf_counter()
    try:
        with B.quiet_overflow(work.backend):
            plain = w is None and on_divergence == "raise"  # the fused run knows neither
            if hasattr(eng, "run") and bs == n and Xv is None and not callbacks and patience is None and plain:
                loop.fused(lrs)
            else:
                rng = np.random.default_rng(seed if seed is not None else [work.seed or 0, work.epochs_trained])
                loop.epochs(lrs, bs, shuffle, rng)
    except DivergedError:
        history.wall_time = time.perf_counter() - t0
        work.layers, work._opt, work._opt_state = eng.layers, None, None
        work.epochs_trained += history.epochs
        work.history = history
        net.__dict__.update(work.__dict__)
        raise
    finally:
        loop.close()
    history.wall_time = time.perf_counter() - t0
    layers = loop.best if (patience is not None and restore_best_weights and loop.best is not None) else eng.layers
    work.layers, work._opt, work._opt_state = layers, opt, eng.state
    work.epochs_trained += history.epochs
    work.history = history
    net.__dict__.update(work.__dict__)
    return history


class _Loop:
    """The epoch loop shared by the engines: reads scalars back once an epoch, keeps history, runs
    callbacks and early stopping, and stops with the last finite weights when the loss diverges."""

    #: the rows' sample weights ``(n, 1)``, gathered per batch as ``t`` is; ``None``: unweighted
    w = None
    #: ``False`` (``on_divergence="continue"``) trains on through non-finite losses
    stop_on_divergence = True

    def __init__(
        self, net, eng, loss, history, X, t, Xv, tv, track_acc, patience, min_delta, callbacks, verbose, epochs
    ):
        self.net, self.eng, self.loss, self.history = net, eng, loss, history
        self.X, self.t, self.Xv, self.tv = X, t, Xv, tv
        self.track_acc, self.patience, self.min_delta, self.callbacks = track_acc, patience, min_delta, callbacks
        self.progress = Progress(epochs, verbose=verbose) if verbose else None
        self.keep_best = patience is not None
        self.best = None
        self.wait = 0
        self.logs: dict[str, Any] = {}

    def epochs(self, lrs: list[float], bs: int, shuffle: bool, rng: np.random.Generator) -> None:
        eng, net, loss, X, t, w = self.eng, self.net, self.loss, self.X, self.t, self.w
        xp, name = net.xp, net.backend
        n = X.shape[0]
        batched = bs < n
        starts = range(0, n, bs)
        # The weights at the start of this epoch and the one before, for a divergence: the in-place
        # engine keeps them in its ring on full batches; otherwise snapshot them.
        ring = not batched and hasattr(eng, "previous")
        start = prev = None if ring else eng.snapshot()
        divisor = 1 if loss.reduction == "sum" else n
        vk = 2 if self.track_acc else 1  # where the validation loss sits among the values read back
        for epoch, lr in enumerate(lrs):
            if epoch and not ring:
                prev, start = start, eng.snapshot()
            if batched and shuffle:
                perm = B.from_numpy(rng.permutation(n), name, net._native)
            total = correct = 0.0
            for s in starts:
                if not batched:
                    Xb, tb, wb = X, t, w
                elif shuffle:
                    idx = perm[s : min(s + bs, n)]  # array_api_strict rejects a stop past the end
                    Xb, tb = sparse.take_rows(X, idx, xp), xp.take(t, idx, axis=0)
                    wb = None if w is None else xp.take(w, idx, axis=0)
                else:
                    Xb, tb = X[s : min(s + bs, n), ...], t[s : min(s + bs, n), ...]
                    wb = None if w is None else w[s : min(s + bs, n), ...]
                value, y = eng.step(Xb, tb, lr, w=wb)
                total = total + (value if divisor == 1 else value * Xb.shape[0])
                if self.track_acc:
                    correct = correct + core.accuracy_sum(y, tb, xp=xp)
            if name == "dask":
                eng.layers, eng.state, total, correct = B.materialize((eng.layers, eng.state, total, correct), name)
            scalars = [total, correct] if self.track_acc else [total]
            if self.Xv is not None:
                yv, cache = core.forward(eng.layers, self.Xv, acts=net._acts, xp=xp)
                scalars.append(loss.value(cache[-1][1], yv, self.tv, xp=xp))
                if self.track_acc:
                    scalars.append(core.accuracy_sum(yv, self.tv, xp=xp))
            values = _read(name, xp, scalars)
            bad = not math.isfinite(values[0]) or (self.Xv is not None and not math.isfinite(values[vk]))
            if bad and self.stop_on_divergence:
                if ring:
                    start, prev = eng.previous(1), eng.previous(2)
                self._diverged(epoch, values[0] / divisor, lr, start, prev)
            if self._record(epoch, lr, values, n):
                break
        if lrs and self.stop_on_divergence and not _all_finite(eng.layers, xp):  # the loss came before the update
            if ring:
                start, prev = eng.previous(1), eng.previous(2)
            self._diverged(len(lrs) - 1, math.inf, lrs[-1], start, prev, after_update=True)

    def fused(self, lrs: list[float]) -> None:
        """Full-batch epochs in compiled chunks (JAX), with no Python between epochs: used when
        nothing (validation, callbacks, patience) needs the host each epoch."""
        from .compiled import CHUNK

        eng, n, h = self.eng, self.X.shape[0], self.history
        for lo in range(0, len(lrs), CHUNK):
            chunk = lrs[lo : lo + CHUNK]
            values, correct, prev = eng.run(self.X, self.t, chunk, self.track_acc)
            values, correct = B.to_numpy(values), B.to_numpy(correct)
            bad = np.flatnonzero(~np.isfinite(values))
            stop = len(chunk) if bad.size == 0 else int(bad[0])
            if stop:
                losses = values[:stop]  # one full batch an epoch: already in the loss's reduction
                best = int(np.argmin(losses))
                if h.best_value is None or losses[best] < h.best_value - self.min_delta:
                    h.best_value, h.best_epoch = float(losses[best]), lo + best
                h.loss.extend(losses.tolist())
                h.lr.extend(chunk[:stop])
                if self.track_acc:
                    h.accuracy.extend((correct[:stop] / n).tolist())
                if self.progress is not None:
                    self.logs = {"loss": h.loss[-1]} | ({"accuracy": h.accuracy[-1]} if self.track_acc else {})
                    self.progress.update(lo + stop, self.logs)
            if bad.size:
                # The scan froze at the first bad epoch: eng.layers produced it, prev came before.
                self._diverged(lo + stop, float(values[stop]), chunk[stop], eng.layers, prev)
        if lrs and not _all_finite(eng.layers, self.net.xp):  # the last update overflowed
            self._diverged(len(lrs) - 1, math.inf, lrs[-1], prev, prev, after_update=True)

    def _record(self, epoch: int, lr: float, values: list[float], n: int) -> bool:
        """Append one epoch to the history; True when training should stop."""
        h = self.history
        divisor = 1 if self.loss.reduction == "sum" else n
        h.loss.append(values[0] / divisor)
        h.lr.append(lr)
        k = 1
        if self.track_acc:
            h.accuracy.append(values[1] / n)
            k = 2
        if self.Xv is not None:
            h.val_loss.append(values[k])
            if self.track_acc:
                h.val_accuracy.append(values[k + 1] / self.Xv.shape[0])
        current = h.val_loss[-1] if self.Xv is not None else h.loss[-1]
        if h.best_value is None or current < h.best_value - self.min_delta:
            h.best_value, h.best_epoch, self.wait = current, epoch, 0
            if self.keep_best:
                self.best = self.eng.snapshot()
        else:
            self.wait += 1
        stop = self.patience is not None and self.wait >= self.patience
        if self.progress is None and not self.callbacks:
            h.stopped_early = stop
            return stop
        logs = {"epoch": epoch, "loss": h.loss[-1], "lr": lr}
        if self.track_acc:
            logs["accuracy"] = h.accuracy[-1]
        if self.Xv is not None:
            logs["val_loss"] = h.val_loss[-1]
            if self.track_acc:
                logs["val_accuracy"] = h.val_accuracy[-1]
        self.logs = logs
        if self.progress is not None:
            self.progress.update(epoch + 1, logs)
        if self.callbacks:
            self.net.layers = self.eng.snapshot()
            logs["network"] = self.net
            answers = [cb(epoch, logs) for cb in self.callbacks]  # every callback runs, even after a stop
            stop = any(answers) or stop
        if stop:
            h.stopped_early = True
        return stop

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close(self.history.epochs, self.logs)

    def _diverged(self, epoch: int, loss_value: float, lr: float, start, prev, after_update=False) -> None:
        xp = self.net.xp
        self.eng.layers = start if _all_finite(start, xp) else prev
        self.history.stopped_early = True
        what = "the weights became infinite or NaN" if after_update else f"the loss became {loss_value}"
        msg = (
            f"training diverged at epoch {epoch + 1}: {what}; the last finite "
            f"weights were kept. Try a smaller lr (it was {lr:g}) or standardise the inputs"
        )
        raise DivergedError(msg, self.history)
