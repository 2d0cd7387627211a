"""The training loop: epochs and mini-batches, history, callbacks, early stopping, progress.

``plan`` checks ``fit``'s options (before any data is touched); ``fit`` takes arrays that the caller
(``Network.fit``) has already checked and put in place, runs an engine, and returns a ``Result`` with
the new parameters, optimizer state and ``History``. It changes no object it was given.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import backend as B
from . import core, defaults, engines, losses, optimizers, sparse
from ._validate import positive_float, positive_int
from .progress import Progress
from .tree import leaves


class DivergedError(FloatingPointError):
    """Training produced a NaN or infinite loss. The network keeps the last weights whose loss was
    finite, and the history up to that point is on ``.history`` (and on the network)."""

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
    #: the network kept the weights of ``best_epoch`` (early stopping), not those of the last epoch
    restored_best: bool = False
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
            msg = "History.plot needs matplotlib; pip install matplotlib"
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
        if self.restored_best and self.best_epoch is not None:
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
    if name == "numpy" or all(isinstance(v, float) for v in values):  # host floats: nothing to transfer
        return [float(v) for v in values]
    return [float(v) for v in B.to_numpy(xp.stack([xp.reshape(xp.asarray(v), ()) for v in values]))]


def all_finite(layers: Any, xp: Any) -> bool:
    """Whether every array of ``layers`` is finite, read back in one transfer."""
    return bool(xp.all(xp.stack([xp.all(xp.isfinite(a)) for a in leaves(layers)])))


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


@dataclass
class Result:
    """What a fit produced: the parameters to keep, the optimizer and its state (``None`` when the
    state cannot be trusted), the ``History``, and the exception that ended it early, if any."""

    layers: Any
    opt: Any
    state: Any
    history: History
    error: BaseException | None = None


def fit(
    layers: Any,
    state: Any,
    X: Any,
    t: Any,
    Xv: Any = None,
    tv: Any = None,
    *,
    plan: Plan,
    acts: tuple,
    xp: Any,
    backend: str,
    device: str,
    native: Any,
    rng: np.random.Generator,
    view: Callable[[Any], Any] | None = None,
    w: Any = None,
) -> Result:
    """Train ``layers`` (``[(W, b | None), ...]``) from the optimizer ``state`` (``None``: a fresh one)
    on ``X``: ``(n, n_in)``, ``t``: ``(n, n_out)``, checked and on the device, with optional validation
    data ``Xv``, ``tv``. ``rng`` draws the mini-batch order; ``view(layers)`` makes the network that
    callbacks see as ``logs["network"]``. ``w``: ``(n, 1)`` row weights (scikit-learn's
    ``sample_weight``), or ``None``; ``X`` may be a SciPy sparse matrix on NumPy.

    Never raises for what happens while training: a divergence or an exception from a callback or a
    ``KeyboardInterrupt`` ends up in ``Result.error``, with the parameters and history it left behind.
    """
    opt = plan.opt
    if state is None:
        state = opt.init(layers, xp=xp)
    weighted, sparse_x = w is not None, sparse.is_sparse(X)
    Engine = engines.select(
        plan.engine, backend, acts=acts, loss=plan.loss, opt=opt, weighted=weighted, sparse=sparse_x
    )
    eng = Engine(layers, state, acts=acts, loss=plan.loss, opt=opt, alpha=plan.alpha, xp=xp, backend=backend)
    history = History(monitor="val_loss" if Xv is not None else "loss", backend=backend, device=device)
    loop = _Loop(eng, plan, history, X, t, Xv, tv, acts, xp, backend, native, view, w)
    n = X.shape[0]
    bs = n if plan.batch_size is None else min(plan.batch_size, n)
    lrs = plan.lrs()
    t0 = time.perf_counter()
    error: BaseException | None = None
    try:
        with B.quiet_overflow(backend), B.no_autograd(backend):
            whole = bs == n and Xv is None and not plan.callbacks and plan.patience is None
            whole = whole and w is None and plan.on_divergence == "raise"  # the whole-run hooks know neither
            if whole and hasattr(eng, "run"):
                loop.whole(lrs)
            else:
                loop.epochs(lrs, bs, plan.shuffle, rng)
    except DivergedError as exc:
        error = exc
        result = Result(loop.kept, None, None, history, exc)
    except BaseException as exc:  # noqa: BLE001 - an interrupt or a callback's error: keep the progress, re-raise
        error = exc
        # A step cut short may have half-written the optimizer's moments: keep the weights of the
        # last completed epoch, and let the next fit start a fresh optimizer.
        result = Result(loop.completed(), None, None, history, exc)
    finally:
        loop.close()
        history.wall_time = time.perf_counter() - t0
    if error is None:
        keep_best = plan.patience is not None and plan.restore_best_weights and loop.best is not None
        history.restored_best = keep_best
        result = Result(loop.best if keep_best else eng.layers, opt, eng.state, history)
    return result


#: epochs per call of an engine's whole-run hook, when nothing needs to hear more often (an engine
#: may ask for another number with a ``CHUNK`` attribute)
CHUNK = 1000


class _Loop:
    """The epoch loop shared by the engines: reads scalars back once an epoch, keeps history, runs
    callbacks and early stopping, and stops with the last weights whose loss was finite when the
    loss diverges."""

    def __init__(self, eng, plan, history, X, t, Xv, tv, acts, xp, backend, native, view, w=None):
        self.eng, self.plan, self.loss, self.history = eng, plan, plan.loss, history
        self.w = w  # the rows' weights (n, 1), gathered per batch as t is; None: unweighted
        self.X, self.t, self.Xv, self.tv = X, t, Xv, tv
        self.acts, self.xp, self.backend, self.native, self.view = acts, xp, backend, native, view
        self.track_acc, self.min_delta, self.callbacks = plan.track_accuracy, plan.min_delta, plan.callbacks
        self.progress = Progress(plan.epochs, verbose=plan.verbose) if plan.verbose else None
        self.keep_best = plan.patience is not None
        self.best = None
        self.kept = None  # the layers a divergence keeps
        self.wait = 0
        self.logs: dict[str, Any] = {}
        self.epoch_start = eng.snapshot()  # the weights after the last completed epoch
        self.in_epoch = False

    def completed(self):
        """The weights the history so far ends with: the engine's own between epochs, else those
        the current epoch (or chunk of epochs) started from."""
        return self.epoch_start if self.in_epoch else self.eng.snapshot()

    def epochs(self, lrs: list[float], bs: int, shuffle: bool, rng: np.random.Generator) -> None:
        eng, loss, X, t, xp, name = self.eng, self.loss, self.X, self.t, self.xp, self.backend
        n = X.shape[0]
        batched = bs < n
        starts = range(0, n, bs)
        whole_epoch = (batched or getattr(eng, "remote", False)) and hasattr(eng, "epoch") and self.w is None
        w, stop = self.w, self.plan.on_divergence == "raise"
        # The weights at the start of this epoch and the one before, for a divergence: the buffer
        # engine keeps them in its ring on full batches; otherwise snapshot them.
        ring = not batched and hasattr(eng, "previous")
        start = prev = self.epoch_start
        divisor = 1 if loss.reduction == "sum" else n
        vk = 2 if self.track_acc else 1  # where the validation loss sits among the values read back
        for epoch, lr in enumerate(lrs):
            if epoch and not ring:
                prev, start = start, eng.snapshot()
            # on a full batch, the ring slot of the current weights survives this epoch's one step
            self.epoch_start = eng.layers if ring else start
            self.in_epoch = True
            order = rng.permutation(n) if batched and shuffle else None
            if whole_epoch:
                total, correct = eng.epoch(X, t, order, bs, lr, self.track_acc)
            else:
                if order is not None:
                    perm = B.from_numpy(order, name, self.native)
                total = correct = 0.0
                for s in starts:
                    if not batched:
                        Xb, tb, wb = X, t, w
                    elif order is not None:
                        idx = perm[s : min(s + bs, n)]  # array_api_strict rejects a stop past the end
                        Xb, tb = sparse.take_rows(X, idx, xp), xp.take(t, idx, axis=0)
                        wb = None if w is None else xp.take(w, idx, axis=0)
                    else:
                        Xb, tb = X[s : min(s + bs, n), ...], t[s : min(s + bs, n), ...]
                        wb = None if w is None else w[s : min(s + bs, n), ...]
                    value, y = eng.step(Xb, tb, lr) if wb is None else eng.step(Xb, tb, lr, w=wb)
                    total = total + (value if divisor == 1 else value * Xb.shape[0])
                    if self.track_acc:
                        correct = correct + core.accuracy_sum(y, tb, xp=xp)
            if name == "dask" and not whole_epoch:
                eng.layers, eng.state, total, correct = B.materialize((eng.layers, eng.state, total, correct), name)
            scalars = [total, correct] if self.track_acc else [total]
            if self.Xv is not None:
                yv, cache = core.forward(eng.layers, self.Xv, acts=self.acts, xp=xp)
                scalars.append(loss.value(cache[-1][1], yv, self.tv, xp=xp))
                if self.track_acc:
                    scalars.append(core.accuracy_sum(yv, self.tv, xp=xp))
            values = _read(name, xp, scalars)
            bad = not math.isfinite(values[0]) or (self.Xv is not None and not math.isfinite(values[vk]))
            if bad and stop:
                # Keep the weights that started the last epoch whose loss was finite (on a full
                # batch, exactly the ones that produced it); in the first epoch, the starting ones.
                if ring:
                    keep = eng.previous(2) if epoch else eng.previous(1)
                else:
                    keep = prev if epoch else start
                self._diverged(epoch, values[0] / divisor, lr, keep)
            self.in_epoch = False
            if self._record(epoch, lr, values, n):
                break
        if lrs and stop and not all_finite(eng.layers, xp):  # the epoch's loss came before its last update
            self._diverged(len(lrs) - 1, math.inf, lrs[-1], eng.previous(1) if ring else start, after_update=True)

    def whole(self, lrs: list[float]) -> None:
        """Full-batch epochs through the engine's ``run``, in chunks, with no Python between epochs:
        used when nothing (validation, callbacks, patience) needs the host each epoch."""
        eng = self.eng
        # Progress wants to hear between chunks: a line an epoch (verbose=2), or about a hundred updates.
        most = getattr(eng, "CHUNK", CHUNK)  # a compiled engine wants long chunks: each call costs a dispatch
        chunk_size = {0: most, 1: max(1, min(most, -(-len(lrs) // 100)))}.get(self.plan.verbose, 1)
        for lo in range(0, len(lrs), chunk_size):
            chunk = lrs[lo : lo + chunk_size]
            self.epoch_start, self.in_epoch = eng.snapshot(), True
            try:
                values, correct = eng.run(self.X, self.t, chunk, self.track_acc)
            except BaseException:
                # An interrupt: keep the epochs the engine completed, where it can say which (a
                # compiled chunk is all or nothing: the chunk's starting weights are kept then).
                if hasattr(eng, "partial"):
                    values, correct, self.epoch_start = eng.partial()
                    self._extend(lo, chunk, values, correct, len(values))
                raise
            self.in_epoch = False
            stop = len(values) if math.isfinite(values[-1]) else len(values) - 1
            self._extend(lo, chunk, values, correct, stop)
            if stop < len(values):
                self._diverged(lo + stop, float(values[stop]), chunk[stop], eng.last_finite())
        if lrs and not all_finite(eng.layers, self.xp):  # the last update overflowed
            self._diverged(len(lrs) - 1, math.inf, lrs[-1], eng.last_finite(), after_update=True)

    def _extend(self, lo: int, chunk: list[float], values: np.ndarray, correct: np.ndarray, stop: int) -> None:
        """Add the first ``stop`` epochs of a whole-run chunk starting at epoch ``lo`` to the history."""
        h, n = self.history, self.X.shape[0]
        if not stop:
            return
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
        stop = self.plan.patience is not None and self.wait >= self.plan.patience
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
            if self.view is not None:
                logs["network"] = self.view(self.eng.snapshot())
            answers = [cb(epoch, logs) for cb in self.callbacks]  # every callback runs, even after a stop
            stop = any(answers) or stop
        if stop:
            h.stopped_early = True
        return stop

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close(self.history.epochs, self.logs)

    def _diverged(self, epoch: int, loss_value: float, lr: float, keep, after_update=False) -> None:
        self.kept = keep
        self.history.stopped_early = True
        what = "the weights became infinite or NaN" if after_update else f"the loss became {loss_value}"
        msg = (
            f"training diverged at epoch {epoch + 1}: {what}; the last weights whose loss was finite "
            f"were kept. Try a smaller lr (it was {lr:g}) or standardise the inputs"
        )
        raise DivergedError(msg, self.history)
