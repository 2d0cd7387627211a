"""The training loop, one for any number of members: epochs and batches, history, callbacks,
stopping rules, divergence, progress.

``fit`` runs a ``Plan`` (``anynet.plans``: ``fit``'s options, checked before any data is touched) on
batches that the caller (``Network.fit``, ``Ensemble.fit``, ``MLPSearchCV``) has already checked and
put in place (``anynet.intake``): it runs an engine and returns a ``Result`` with the new parameters,
optimizer state and histories. A single network is a stack of shape ``()``; an ensemble's members are
``(k,)``, a search's ``(G, m)``. It changes no object it was given.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import backend as B
from . import core, engines, sparse
from .batches import Rows
from .history import History
from .plans import Plan
from .progress import Progress
from .stopping import EarlyStopping, first_best
from .tree import leaves


class DivergedError(FloatingPointError):
    """Training produced a NaN or infinite loss. The network keeps the last weights whose loss was
    finite, and the history up to that point is on ``.history`` (and on the network)."""

    def __init__(self, message: str, history: History) -> None:
        super().__init__(message)
        self.history = history


@dataclass
class Result:
    """What a fit produced: the parameters to keep, the optimizer and its state (``None`` when the
    state cannot be trusted), one ``History`` per member (in C order; one for a single network), the
    members that diverged (flat index -> what happened) and the exception that ended it early, if any."""

    layers: Any
    opt: Any
    state: Any
    histories: list[History]
    diverged: dict[int, str] = field(default_factory=dict)
    error: BaseException | None = None

    @property
    def history(self) -> History:
        return self.histories[0]


def per_member(values: Any, *, backend: str, native: Any, dtype: str) -> Any:
    """A hyperparameter with one value per member (host, the members' shape) as the step takes it: a
    number where every member has the same, else an array ``(*members, 1, 1)`` on the device."""
    values = np.asarray(values, dtype=float)
    if (values == values.flat[0]).all():
        return float(values.flat[0])
    return B.from_numpy(values.reshape(*values.shape, 1, 1).astype(dtype), backend, native)


def fit(
    layers: Any,
    state: Any,
    data: Any,
    Xv: Any = None,
    tv: Any = None,
    *,
    plan: Plan,
    acts: tuple,
    xp: Any,
    backend: str,
    device: str,
    native: Any,
    view: Callable[[Any], Any] | None = None,
    lrs: Any = None,
    alpha: Any = None,
    opt: Any = None,
    stopping: Any = None,
) -> Result:
    """Train ``layers`` (``[(W, b | None), ...]``) from the optimizer ``state`` (``None``: a fresh one)
    on the batches of ``data`` (``anynet.batches``: checked and on the device), with optional
    validation data ``Xv``, ``tv``. The parameters may carry leading member axes, ``W``:
    ``(*members, n_in, n_out)``, ``b``: ``(*members, 1, n_out)``: the members train at once, each as
    it would alone. ``lrs``: the rates ``(epochs, *members)`` (default: the plan's schedule);
    ``alpha`` and ``opt``: the stack's penalty and optimizer where they differ per member (default:
    the plan's); ``stopping``: a rule of ``anynet.stopping`` (default: ``EarlyStopping`` from the
    plan's ``patience``). ``view(layers)`` makes the model callbacks see as ``logs["network"]``.

    Never raises for what happens while training: a divergence is in ``Result.diverged``, and an
    exception from a callback or a ``KeyboardInterrupt`` in ``Result.error``, with the parameters and
    histories it left behind.
    """
    opt = plan.opt if opt is None else opt
    members = tuple(layers[0][0].shape[:-2])
    if state is None:
        state = opt.init(layers, xp=xp)
    Engine = engines.select(
        plan.engine,
        backend,
        acts=acts,
        loss=plan.loss,
        opt=opt,
        weighted=data.weighted,
        sparse=sparse.is_sparse(data.X),
        stack=bool(members),
    )
    alpha = plan.alpha if alpha is None else alpha
    eng = Engine(layers, state, acts=acts, loss=plan.loss, opt=opt, alpha=alpha, xp=xp, backend=backend)
    if stopping is None and plan.patience is not None:
        stopping = EarlyStopping(plan.patience, plan.min_delta, plan.restore_best_weights)
    lrs = np.asarray(plan.lrs() if lrs is None else lrs, dtype=float).reshape(plan.epochs, *members)
    loop = _Loop(eng, plan, data, Xv, tv, lrs, stopping, members, acts, xp, (backend, device, native), view)
    t0 = time.perf_counter()
    error: BaseException | None = None
    try:
        with B.quiet_overflow(backend), B.no_autograd(backend):
            # the whole-run hooks know no validation, callbacks, stopping rule, row weights, or
            # training on through a divergence
            whole = data.full and Xv is None and not plan.callbacks and stopping is None and not data.weighted
            if whole and loop.check and hasattr(eng, "run"):
                loop.whole()
            else:
                loop.epochs()
    except BaseException as exc:  # noqa: BLE001 - an interrupt or a callback's error: keep the progress, re-raise
        error = exc
    finally:
        loop.close()
    return loop.result(opt, error, time.perf_counter() - t0)


#: epochs per call of an engine's whole-run hook, when nothing needs to hear more often (an engine
#: may ask for another number with a ``CHUNK`` attribute)
CHUNK = 1000


class _Loop:
    """The epoch loop, for one network or a stack of members: reads the values back once an epoch
    (or once a chunk of whole-run epochs) as arrays of the members' shape and keeps them until the
    end, runs callbacks, progress and the stopping rule, and freezes a member whose loss diverges at
    its last weights whose loss was finite while the others go on."""

    def __init__(self, eng, plan, data, Xv, tv, lrs, stopping, members, acts, xp, place, view):
        self.eng, self.plan, self.data, self.Xv, self.tv, self.lrs = eng, plan, data, Xv, tv, lrs
        self.stopping, self.members, self.acts, self.xp, self.view = stopping, members, acts, xp, view
        self.backend, self.device, self.native = place
        self.lazy = B.is_lazy(self.backend)
        self.size = int(np.prod(members))
        self.track, self.check = plan.track_accuracy, plan.on_divergence == "raise"
        self.active = np.ones(members, dtype=bool)  # still training
        self.training = self.size  # how many
        self.stopped = np.zeros(members, dtype=bool)  # by the stopping rule or a callback
        self.failed = np.zeros(members, dtype=bool)  # diverged
        self.epochs_run = 0  # epochs recorded for the members still training
        self.ended = np.full(members, -1)  # the epochs recorded by each member that no longer trains
        self.diverged: dict[int, str] = {}
        self.kept = _Kept(self)  # the weights of members that stopped or diverged while others went on
        self.best = _Kept(self)  # each member's best weights, for restore_best_weights
        #: what is recorded each epoch, in order, and the blocks of epochs recorded: ``(epochs, len(keys), *members)``
        self.keys = ("loss", "accuracy")[: 1 + self.track]
        self.keys += ("val_loss", "val_accuracy")[: 1 + self.track] if Xv is not None else ()
        self.rows: list[np.ndarray] = []
        self.monitor = "val_loss" if Xv is not None else "loss"
        self.progress = Progress(plan.epochs, verbose=plan.verbose) if plan.verbose else None
        self.logs: dict[str, Any] = {}
        self.epoch_start = eng.snapshot()  # the weights after the last completed epoch
        self.in_epoch = False

    def epochs(self) -> None:
        eng, data, xp, loss, track = self.eng, self.data, self.xp, self.plan.loss, self.track
        # The weights at the start of this epoch and the one before, for a divergence: the buffer
        # engine keeps them in its ring on a single network's full batches; otherwise snapshot them.
        ring = not self.members and data.full and hasattr(eng, "previous")
        whole_epoch = isinstance(data, Rows) and (not data.full or getattr(eng, "remote", False))
        whole_epoch = whole_epoch and hasattr(eng, "epoch") and not data.weighted
        summed = loss.reduction == "sum"
        # what turns each value, a sum over rows, into a mean: a number, or one per group of members
        n, nv = data.n, None if self.Xv is None else self.Xv.shape[0]
        by = {"loss": 1 if summed else n, "accuracy": n, "val_loss": 1, "val_accuracy": nv}
        divisors = np.stack([np.broadcast_to(np.asarray(by[key], dtype=float), np.shape(n)) for key in self.keys])
        divisors = divisors.reshape(divisors.shape + (1,) * (1 + len(self.members) - divisors.ndim))
        start = prev = self.epoch_start
        for epoch, lr in enumerate(self._step_rates()):
            if epoch and not ring:
                prev, start = start, eng.snapshot()
            # on a full batch, the ring slot of the current weights survives this epoch's one step
            self.epoch_start, self.in_epoch = (eng.layers if ring else start), True
            order = data.draw()
            if whole_epoch:
                total, correct = eng.epoch(data.X, data.t, order, data.size, lr, track)
            else:
                total = correct = 0.0
                for Xb, tb, wb, rows in data.batches(order, xp):
                    value, y = eng.step(Xb, tb, lr) if wb is None else eng.step(Xb, tb, lr, w=wb)
                    total = total + (value if summed else value * rows)
                    if track:
                        correct = correct + core.accuracy_sum(y, tb, xp=xp)
                if self.lazy:  # bound the task graph: it must not grow with the epochs
                    done = B.materialize((eng.layers, eng.state, total, correct), self.backend)
                    eng.layers, eng.state, total, correct = done
            scalars = [total, correct] if track else [total]
            if self.Xv is not None:
                yv, cache = core.forward(eng.layers, self.Xv, acts=self.acts, xp=xp)
                scalars.append(loss.value(cache[-1][1], yv, self.tv, xp=xp))
                if track:
                    scalars.append(core.accuracy_sum(yv, self.tv, xp=xp))
            values = _read(self.backend, xp, scalars, self.members)  # (len(keys), *members)
            self.in_epoch = False
            values /= divisors  # sums to means
            if self.check and not math.isfinite(values.sum()):  # one test on the usual path
                bad = self.active & ~np.isfinite(values[:: 1 + track]).all(axis=0)  # the losses
                if bad.any():
                    # Keep the weights that started the last epoch whose loss was finite (on a full
                    # batch, exactly the ones that produced it); in the first epoch, the starting ones.
                    keep = (eng.previous(2) if epoch else eng.previous(1)) if ring else (prev if epoch else start)
                    self._diverge(bad, epoch, values[0], keep)
            if self._record(epoch, values):
                break
        if len(self.lrs) and self.check:  # an epoch's loss comes before its update: did the last one overflow?
            self._overflowed(lambda: eng.previous(1) if ring else start)

    def whole(self) -> None:
        """Full-batch epochs through the engine's ``run``, in chunks, with no Python between epochs:
        used when nothing (validation, callbacks, a stopping rule) needs the host each epoch."""
        eng, epochs = self.eng, len(self.lrs)
        # Progress wants to hear between chunks: a line an epoch (verbose=2), or about a hundred updates.
        most = getattr(eng, "CHUNK", CHUNK)  # a compiled engine wants long chunks: each call costs a dispatch
        size = {0: most, 1: max(1, min(most, -(-epochs // 100)))}.get(self.plan.verbose, 1)
        for lo in range(0, epochs, size):
            rates = self.lrs[lo : lo + size]
            flat = rates.reshape(len(rates), self.size)
            rates = flat[:, 0].tolist() if (flat == flat[:, :1]).all() else rates.reshape(*rates.shape, 1, 1)
            self.epoch_start, self.in_epoch = eng.snapshot(), True
            try:
                values, correct = eng.run(self.data.X, self.data.t, rates, self.track)
            except BaseException:
                # An interrupt: keep the epochs the engine completed, where it can say which (a
                # compiled chunk is all or nothing: the chunk's starting weights are kept then).
                if hasattr(eng, "partial"):
                    values, correct, self.epoch_start = eng.partial()
                    self._chunk(lo, values, correct)
                raise
            self.in_epoch = False
            self._chunk(lo, values, correct)
            if not self.training:
                break
        if epochs:
            self._overflowed(eng.last_finite)

    def _chunk(self, lo: int, values: np.ndarray, correct: np.ndarray) -> None:
        """Record the epochs that a whole-run chunk starting at epoch ``lo`` ran: host ``values`` and
        ``correct``, ``(epochs, *members)``, one full batch an epoch (the loss in its own reduction).
        A member stops before its first loss that is not finite, keeping ``eng.last_finite()``."""
        c = len(values)
        if not c:
            return
        values = values.reshape(c, *self.members)
        rows = [values, correct.reshape(c, *self.members) / self.data.n] if self.track else [values]
        self.rows.append(np.stack(rows, axis=1))
        self.epochs_run = lo + c
        bad = ~np.isfinite(values)
        count = np.where(self.active, np.where(bad.any(axis=0), bad.argmax(axis=0), c), 0)
        diverging = self.active & (count < c)
        if diverging.any():
            self._diverge(diverging, lo + count, _at(values, count), self.eng.last_finite())
        if self.progress is not None and self.training:
            self.logs = self._shown(self.rows[-1][-1], self.active)
            self.progress.update(self.epochs_run, self.logs)

    def _step_rates(self) -> list:
        """Each epoch's rate as the step takes it: a number where the members agree, else an array
        ``(*members, 1, 1)`` on the device, made once for a run of equal epochs."""
        flat = self.lrs.reshape(len(self.lrs), self.size)
        if (flat == flat[:, :1]).all():
            return flat[:, 0].tolist()
        place = {"backend": self.backend, "native": self.native, "dtype": B.dtype_name(self.eng.layers[0][0].dtype)}
        out, last = [], (None, None)
        for row in self.lrs:
            if last[0] is None or not np.array_equal(row, last[0]):
                last = (row, per_member(row, **place))
            out.append(last[1])
        return out

    def _record(self, epoch: int, values: np.ndarray) -> bool:
        """Keep one epoch's ``values`` (``(len(keys), *members)``) for the members still training, then
        run the stopping rule, progress and callbacks; True when no member trains on."""
        if not self.training:
            return True
        live = self.active
        self.rows.append(values[None])
        self.epochs_run += 1
        stop = None
        if self.stopping is not None:
            stop, improved = self.stopping.on_epoch_end(epoch, values[self.keys.index(self.monitor)], live)
            if self.stopping.restore_best_weights and improved.any():
                self.best.set(improved, self.eng.snapshot())
        if self.progress is not None:
            self.logs = self._shown(values, live)
            self.progress.update(epoch + 1, self.logs)
        if self.plan.callbacks:
            lr = self.lrs[epoch]
            if self.members:  # one value per member
                logs = {"epoch": epoch, "lr": lr} | dict(zip(self.keys, values, strict=True))
            else:
                logs = {"epoch": epoch, "lr": float(lr)} | dict(zip(self.keys, values.tolist(), strict=True))
            if self.view is not None:
                logs["network"] = self.view(self.eng.snapshot())
            answers = [cb(epoch, logs) for cb in self.plan.callbacks]  # every callback runs, even after a stop
            if any(answers):
                stop = live
        if stop is not None and stop.any():
            self.stopped = self.stopped | stop
            self._end(stop, self.epochs_run)
            if self.training:  # the others train on: keep these members' weights as they are now
                self.kept.set(stop, self.eng.snapshot())
        return not self.training

    @property
    def recorded(self) -> np.ndarray:
        """The epochs each member recorded: a prefix of the fit's."""
        return np.where(self.ended < 0, self.epochs_run, self.ended)

    def _end(self, mask: np.ndarray, recorded: Any) -> None:
        """The members of ``mask`` train no more, having recorded ``recorded`` epochs."""
        self.active = self.active & ~mask
        self.ended = np.where(mask, recorded, self.ended)
        self.training = int(self.active.sum())

    def _diverge(self, mask: np.ndarray, epoch: Any, loss: Any, keep: Any, after_update: bool = False) -> None:
        """Freeze the members of ``mask`` at ``keep``, saying where (``epoch``) and how each diverged."""
        self.kept.set(mask, keep)
        self._end(mask, epoch + after_update)  # a member whose update overflowed recorded that epoch
        self.failed = self.failed | mask
        epochs = np.broadcast_to(epoch, self.members).reshape(-1)
        losses = np.broadcast_to(loss, self.members).reshape(-1)
        for i in np.flatnonzero(mask):
            e = int(epochs[i])
            what = "the weights became infinite or NaN" if after_update else f"the loss became {losses[i]}"
            who = f"member {i}" if self.members else "training"
            kept = "" if self.members else "; the last weights whose loss was finite were kept"
            lr = self.lrs[e].reshape(-1)[i]
            self.diverged[int(i)] = (
                f"{who} diverged at epoch {e + 1}: {what}{kept}. Try a smaller lr (it was {lr:g}) "
                "or standardise the inputs"
            )

    def _overflowed(self, keep: Callable[[], Any]) -> None:
        """After the last epoch: a member whose weights are the engine's own and no longer finite
        (its last update overflowed) keeps ``keep()``, the weights before that update."""
        mine = ~self.kept.mask()
        if mine.any():
            bad = mine & ~_finite_members(self.eng.layers, self.xp, self.members)
            if bad.any():
                self._diverge(bad, np.maximum(self.recorded - 1, 0), np.inf, keep(), after_update=True)

    def _shown(self, values: np.ndarray, live: np.ndarray) -> dict[str, float]:
        """What the progress line shows: each value of the best member among ``live``."""
        if not self.members:
            return dict(zip(self.keys, values.tolist(), strict=True))
        return {
            k: float((np.max if "accuracy" in k else np.min)(v[live])) for k, v in zip(self.keys, values, strict=True)
        }

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close(int(self.recorded.max()), self.logs)

    def result(self, opt: Any, error: BaseException | None, wall: float) -> Result:
        histories = self._histories(wall)
        if error is not None:
            # A step cut short may have half-written the optimizer's moments: keep the weights of the
            # last completed epoch, and let the next fit start a fresh optimizer.
            completed = self.epoch_start if self.in_epoch else self.eng.snapshot()
            return Result(self.kept.over(completed), None, None, histories, self.diverged, error)
        restored = self.best.mask() & ~self.failed
        for i in np.flatnonzero(restored):
            histories[i].restored_best = True
        layers = self.kept.over(self.best.over(self.eng.layers, restored), ~restored)
        if self.diverged:
            return Result(layers, None, None, histories, self.diverged)
        return Result(layers, opt, self.eng.state, histories)

    def _histories(self, wall: float) -> list[History]:
        """One ``History`` per member, from the values read back."""
        size, counts, monitor = self.size, self.recorded.reshape(-1), self.monitor
        table = np.concatenate(self.rows) if self.rows else np.zeros((0, len(self.keys), *self.members))
        # (members, epochs) per key, so that each member's series is contiguous
        series = {k: np.ascontiguousarray(table[:, i].reshape(-1, size).T) for i, k in enumerate(self.keys)}
        lrs = np.ascontiguousarray(self.lrs.reshape(len(self.lrs), size).T)
        best_epoch, best_value = np.full(size, -1), np.zeros(size)
        if len(table):
            values = series[monitor]
            values = np.where(np.arange(values.shape[1]) < counts[:, None], values, np.inf)
            best_epoch, best_value = first_best(values.T, self.plan.min_delta)
        stopped = (self.stopped | self.failed).reshape(-1)
        out = []
        for i in range(size):
            m = int(counts[i])
            h = History(monitor=monitor, backend=self.backend, device=self.device, wall_time=wall)
            for key, values in series.items():
                setattr(h, key, values[i, :m].tolist())
            h.lr = lrs[i, :m].tolist()
            if best_epoch[i] >= 0:
                h.best_epoch, h.best_value = int(best_epoch[i]), float(best_value[i])
            h.stopped_early = bool(stopped[i])
            out.append(h)
        return out


class _Kept:
    """Per member, the weights it ends with where they are not the engine's own: a few snapshots of
    the stack, each with the mask of the members that take their part of it."""

    def __init__(self, loop: _Loop) -> None:
        self.loop, self.parts = loop, []

    def set(self, mask: np.ndarray, layers: Any) -> None:
        self.parts = [(m & ~mask, kept) for m, kept in self.parts if (m & ~mask).any()] + [(mask.copy(), layers)]

    def mask(self) -> np.ndarray:
        out = np.zeros(self.loop.members, dtype=bool)
        for m, _ in self.parts:
            out = out | m
        return out

    def over(self, base: Any, only: Any = True) -> Any:
        """``base`` with each member of ``only`` that has weights here taking them instead."""
        loop = self.loop
        for m, layers in self.parts:
            m = m & only
            if m.all():
                base = layers
            elif m.any():
                base = core.where_members(B.from_numpy(m, loop.backend, loop.native), layers, base, xp=loop.xp)
        return base


def _read(name: str, xp: Any, values: list[Any], members: tuple) -> np.ndarray:
    """Device values (numbers, or one per member) -> host float64 ``(len(values), *members)``, in one
    transfer (one sync on a GPU)."""
    if name == "numpy" or all(isinstance(v, float) for v in values):  # host values: nothing to transfer
        return np.array(values, dtype=float)
    return np.array(B.to_numpy(xp.stack([xp.reshape(xp.asarray(v), members) for v in values])), dtype=float)


def _finite_members(layers: Any, xp: Any, members: tuple) -> np.ndarray:
    """Per member, whether all its parameters are finite, read back in one transfer."""
    flags = [
        xp.all(xp.isfinite(a), axis=tuple(range(len(members), a.ndim)) if members else None) for a in leaves(layers)
    ]
    return np.asarray(B.to_numpy(xp.all(xp.stack(flags), axis=0)), dtype=bool)


def _at(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per member, ``values[index[member], member]``, the index clipped into range."""
    index = np.clip(index, 0, len(values) - 1)
    return np.take_along_axis(values, np.reshape(index, (1, *np.shape(index))), axis=0)[0]
