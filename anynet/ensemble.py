"""``Ensemble``: many networks of one shape, trained at once.

The members' parameters are stacked on a leading axis (``W``: ``(k, n_in, n_out)``, ``b``:
``(k, 1, n_out)``) and trained by the stacked engine (``anynet.engines.stacked``), which runs the core's
own math on the stack: one matrix product per layer for all members, each member computing exactly what
it would alone. Members share every mini-batch (the fit's ``seed`` draws one order), so a batch is
gathered once; ``lr``, ``alpha`` and ``momentum`` may differ per member.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import backend as B
from . import core, engines, train
from . import init as initialisers
from ._validate import positive_int, same_place
from .network import Network
from .progress import Progress
from .train import DivergedError, History
from .tree import leaves

#: fit options that may hold one value per member
PER_MEMBER = ("lr", "alpha", "momentum")
#: the engines that train a stack: the stacked engine (jitted on JAX), or the plain reference math
ENGINES = ("auto", "stacked", "reference")
#: the quantities ``best`` can rank members by, and whether larger is better
METRICS = {"loss": False, "val_loss": False, "accuracy": True, "val_accuracy": True}


class Ensemble:
    """``members`` networks ``Network(sizes, ..., seed=seed + i)`` (or ``seeds=[...]``), trained together.

    Takes every argument of ``anynet.Network``. The members live stacked on one backend and device;
    ``members[i]`` gives member ``i`` as a plain ``Network``.
    """

    def __init__(
        self,
        sizes: list[int],
        members: int | None = None,
        activation: str = "sigmoid",
        output_activation: str | None = None,
        bias: bool = True,
        init: str = "uniform",
        seed: int | None = 0,
        seeds: Sequence[int | None] | None = None,
        dtype: Any = None,
        backend: str | None = None,
        device: str | None = None,
    ) -> None:
        seeds = _seeds(members, seed, seeds)
        # the first member checks every Network argument and fixes the backend, device and dtype
        self._net = Network(sizes, activation, output_activation, bias, init, seeds[0], dtype, backend, device)
        for s in seeds:
            if s is not None and (not isinstance(s, (int, np.integer)) or isinstance(s, bool)):
                msg = f"seeds must be integers or None, got {s!r}"
                raise TypeError(msg)
        self.seeds = [None if s is None else int(s) for s in seeds]
        hosts = [initialisers.draw(init, self._net.sizes, s) for s in self.seeds]
        stacked = [
            (np.stack([h[i][0] for h in hosts]), np.stack([h[i][1][None, :] for h in hosts]) if bias else None)
            for i in range(len(self._net.sizes) - 1)
        ]
        self._layers = self._net._to_device(stacked, B.dtype_name(self._net.dtype))
        self.histories: list[History | None] = [None] * len(seeds)
        self.diverged: dict[int, str] = {}
        self.metadata: dict[str, Any] = {}
        self.epochs_trained = 0
        self._opts: list[Any] | None = None  # each member's optimizer, while the stacked state is kept
        self._opt_state = None

    # ----------------------------------------------------------------------------- description

    @property
    def n_members(self) -> int:
        return len(self.seeds)

    def __len__(self) -> int:
        return self.n_members

    sizes = property(lambda self: self._net.sizes)
    activation = property(lambda self: self._net.activation)
    output_activation = property(lambda self: self._net.output_activation)
    bias = property(lambda self: self._net.bias)
    init = property(lambda self: self._net.init)
    backend = property(lambda self: self._net.backend)
    device = property(lambda self: self._net.device)
    dtype = property(lambda self: self._net.dtype)
    xp = property(lambda self: self._net.xp)
    classes = property(lambda self: self._net.classes)

    @property
    def layers(self) -> list:
        """The stacked parameters ``[(W: (k, n_in, n_out), b: (k, 1, n_out) | None), ...]``."""
        return self._layers

    def __repr__(self) -> str:
        return (
            f"Ensemble({self.sizes}, members={self.n_members}, activation={self.activation!r}, "
            f"output_activation={self.output_activation!r}, backend={self.backend!r}, device={self.device!r})"
        )

    # ----------------------------------------------------------------------------- members

    @property
    def members(self) -> list[Network]:
        """Each member as a ``Network`` on the ensemble's backend: its weights, history and optimizer
        state. They are copies of the ensemble's members: training one leaves the ensemble as it is."""
        return [self._member(i) for i in range(self.n_members)]

    def member(self, i: int) -> Network:
        """Member ``i`` as a ``Network``."""
        return self._member(self._index(i))

    def _index(self, i: Any) -> int:
        k = self.n_members
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool) or not -k <= i < k:
            msg = f"member must be an integer index in [0, {k}) (or from -{k}), got {i!r}"
            raise IndexError(msg) if isinstance(i, (int, np.integer)) else TypeError(msg)
        return int(i) % k

    def _member(self, i: int) -> Network:
        net = self._net.with_layers([(W[i, ...], None if b is None else b[i, 0, ...]) for W, b in self._layers])
        net.seed = self.seeds[i]
        net.history = self.histories[i]
        net.epochs_trained = self.epochs_trained
        net.metadata = dict(self.metadata)
        net.set_optimizer(None, None)
        if self._opts is not None and self._opt_state is not None:
            net.set_optimizer(self._opts[i], _slice_state(self._opt_state, i))
        return net

    def best(self, metric: str = "val_loss") -> Network:
        """The member with the best ``metric`` (``"loss"``, ``"val_loss"``, ``"accuracy"``,
        ``"val_accuracy"``) at the weights it kept, as a ``Network``. Diverged members do not count."""
        return self._member(self.best_index(metric))

    def best_index(self, metric: str = "val_loss") -> int:
        """The index of the member ``best(metric)`` returns."""
        if metric not in METRICS:
            msg = f"unknown metric {metric!r}; expected one of {list(METRICS)}"
            raise ValueError(msg)
        if any(h is None for h in self.histories):
            msg = "the ensemble has not been trained; call fit first"
            raise ValueError(msg)
        scores = [self.score(i, metric) for i in range(self.n_members)]
        if all(s is None for s in scores):
            msg = f"no member has a {metric} (the last fit recorded {self._recorded()}); pass validation_data to fit"
            if all(i in self.diverged for i in range(self.n_members)):
                msg = "every member diverged; there is no best one"
            raise ValueError(msg)
        sign = -1.0 if METRICS[metric] else 1.0
        return min((i for i, s in enumerate(scores) if s is not None), key=lambda i: sign * scores[i])

    def score(self, i: int, metric: str = "val_loss") -> float | None:
        """Member ``i``'s ``metric`` at the weights it kept (its best epoch if those were restored,
        else its last), or ``None`` if it has none or diverged."""
        i = self._index(i)
        h = self.histories[i]
        if h is None or i in self.diverged:
            return None
        values = getattr(h, metric)
        if not values:
            return None
        return float(values[h.best_epoch if h.restored_best else -1])

    def _recorded(self) -> list[str]:
        h = self.histories[0]
        return [m for m in METRICS if getattr(h, m)]

    # ----------------------------------------------------------------------------- predicting

    def predict_members(self, X: Any) -> Any:
        """Every member's output for ``X``: ``(n, n_in)`` -> ``(members, n, n_out)``, on the ensemble's backend."""
        return core.predict(self._layers, self._net._input(self._host(X)), acts=self._net._acts, xp=self.xp)

    def predict(self, X: Any, member: int | None = None) -> Any:
        """The members' mean output ``(n, n_out)`` for ``X``, or member ``member``'s own."""
        if member is not None:
            i = self._index(member)
            return core.predict(
                self._member_layers(i), self._net._input(self._host(X)), acts=self._net._acts, xp=self.xp
            )
        return self.xp.mean(self.predict_members(X), axis=0)

    def predict_classes(self, X: Any, member: int | None = None) -> Any:
        """Class labels from the mean output (or member ``member``'s), as ``Network.predict_classes``."""
        view = self._member(0)
        view.predict = lambda X_: self.predict(X_, member)
        return Network.predict_classes(view, X)

    def _member_layers(self, i: int) -> list:
        return [(W[i, ...], None if b is None else b[i, ...]) for W, b in self._layers]

    def _host(self, X: Any) -> Any:
        place = same_place(X=X)
        if place is not None and place != (self.backend, self.device):
            msg = (
                f"X is a {place[0]} array on {place[1]} but this ensemble lives on {self.backend} "
                f"({self.device}); pass NumPy arrays or arrays of its backend"
            )
            raise ValueError(msg)
        return X

    # ----------------------------------------------------------------------------- training

    def fit(self, X: Any, t: Any, **options: Any) -> list[History]:
        """Train every member on ``X``, ``t``; returns ``histories``, one ``History`` per member.

        Takes ``Network.fit``'s options. ``lr``, ``alpha`` and ``momentum`` may be one value per
        member (a list as long as ``members``). Every member sees the same mini-batches, drawn from
        ``seed``: member ``i`` ends where ``Network(sizes, seed=seeds[i])`` trained alone with its
        own ``lr``/``alpha``/``momentum`` and the same ``seed`` would. ``validation_split`` holds out
        the same rows for every member (drawn from the first member's seed).

        With ``patience``, each member stops on its own (frozen at its best weights with
        ``restore_best_weights``) while the others go on; ``fit`` ends when all have stopped. A member
        whose loss turns NaN or infinite is frozen at its last weights whose loss was finite and named
        in ``diverged`` (and in a ``RuntimeWarning``); the others go on. ``DivergedError`` is raised
        only when every member diverged. ``callbacks`` are not supported. ``engine``: ``"auto"`` (the
        stacked engine), ``"stacked"`` or ``"reference"``.

        Every argument is checked before any weight changes.
        """
        k = self.n_members
        if options.get("callbacks"):
            msg = "Ensemble.fit does not take callbacks; train a member as a Network to use them"
            raise ValueError(msg)
        engine = options.pop("engine", "auto")
        if engine not in ENGINES:
            msg = f"engine {engine!r} cannot train an ensemble; expected one of {list(ENGINES)}"
            raise ValueError(msg)
        per = {}
        for key in PER_MEMBER:
            value = options.get(key)
            if isinstance(value, (list, tuple, np.ndarray)):
                values = list(np.asarray(value, dtype=object).reshape(-1))
                if np.ndim(value) != 1 or len(values) != k:
                    msg = (
                        f"{key} has {len(values)} values but the ensemble has {k} members; "
                        "give one value per member, or a single number for all"
                    )
                    raise ValueError(msg)
                per[key] = values
        # each member's own options, checked exactly as Network.fit checks them
        plans = [
            train.plan(self.output_activation, **(options | {key: values[i] for key, values in per.items()}))
            for i in range(k)
        ]
        plan = plans[0]
        lrs = np.array([p.lrs() for p in plans], dtype=float).reshape(k, plan.epochs).T  # (epochs, k)
        alphas = [p.alpha for p in plans]
        opts = [p.opt for p in plans]

        Xv_in, tv_in = options.get("validation_data") or (None, None)
        net = self._net._follow(same_place(X=X, t=t, X_val=Xv_in, t_val=tv_in), "X", X)
        X = net._input(X, "X")
        n = X.shape[0]
        t, classes = net._targets(t, n, plan.loss, options.get("classes"))
        xp = net.xp
        Xv = tv = None
        if plan.validation_split:  # the same held-out rows for every member, drawn from the first one's seed
            X, t, _, Xv, tv = net._split(X, t, None, plan.validation_split, self.seeds[0])
        elif Xv_in is not None:
            Xv = net._input(Xv_in, "X_val")
            tv, _ = net._targets(tv_in, Xv.shape[0], plan.loss, classes, label="t_val")

        moved = net is not self._net
        dtype = B.dtype_name(net.dtype)
        layers = net._to_device(self._layers, dtype) if moved else self._layers
        if plan.reset:
            hosts = [initialisers.draw(self.init, self.sizes, s) for s in self.seeds]
            stacked = [
                (np.stack([h[i][0] for h in hosts]), np.stack([h[i][1][None, :] for h in hosts]) if self.bias else None)
                for i in range(len(self.sizes) - 1)
            ]
            layers, state, trained = net._to_device(stacked, dtype), None, 0
        else:
            resume = self._opts == opts and self._opt_state is not None
            state = (net._to_device(self._opt_state, dtype) if moved else self._opt_state) if resume else None
            trained = self.epochs_trained
        seed = plan.seed if plan.seed is not None else [self.seeds[0] or 0, trained]
        rng = np.random.default_rng(seed)

        def per_member(values: list[float]) -> Any:
            if all(v == values[0] for v in values):
                return float(values[0])
            return B.from_numpy(np.asarray(values, dtype=dtype).reshape(-1, 1, 1), net.backend, net._native)

        opt = _stacked_optimizer(opts, per_member)
        if state is None:
            state = opt.init(layers, xp=xp)
        Engine = engines.REGISTRY["reference" if engine == "reference" else "stacked"].load()
        eng = Engine(
            layers,
            state,
            acts=net._acts,
            loss=plan.loss,
            opt=opt,
            alpha=per_member(alphas),
            xp=xp,
            backend=net.backend,
        )
        run = _Run(eng, plan, X, t, Xv, tv, net, k)
        t0 = time.perf_counter()
        error: BaseException | None = None
        try:
            with B.quiet_overflow(net.backend), B.no_autograd(net.backend):
                run.epochs(_epoch_lrs(lrs, per_member), lrs, rng)
        except BaseException as exc:  # noqa: BLE001 - an interrupt: keep the completed epochs, re-raise
            error = exc
        finally:
            run.close()
            wall = time.perf_counter() - t0
        histories = run.histories()
        for h in histories:
            h.wall_time = wall
        final, keep_state = run.result(error is not None, histories)

        # Commit: everything above could still refuse; from here the fit has happened.
        if moved:
            self._net = net
        self._net.classes = classes
        self._layers = final
        self._opts, self._opt_state = (opts, eng.state) if keep_state else (None, None)
        self.epochs_trained = trained + max(h.epochs for h in histories)
        self.histories = histories
        self.diverged = run.diverged
        if error is not None:
            raise error
        if run.diverged:
            if len(run.diverged) == k:
                msg = f"every member diverged; each kept its last weights whose loss was finite. {run.diverged[0]}"
                raise DivergedError(msg, histories[0])
            msg = (
                f"member(s) {sorted(run.diverged)} of {k} diverged and kept their last weights whose loss was "
                f"finite (see Ensemble.diverged); the others trained on. {next(iter(run.diverged.values()))}"
            )
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
        return self.histories


class _Run:
    """One ensemble fit's epoch loop: per-member history, early stopping and divergence, with the
    scalars of all members read back together once an epoch and kept as arrays (``(members,)`` per
    epoch) until the histories are written at the end, so the Python per epoch does not grow with the
    number of members."""

    def __init__(self, eng, plan, X, t, Xv, tv, net, k):
        self.eng, self.plan, self.loss = eng, plan, plan.loss
        self.X, self.t, self.Xv, self.tv, self.net, self.k = X, t, Xv, tv, net, k
        self.xp, self.name = net.xp, net.backend
        self.monitor = "val_loss" if Xv is not None else "loss"
        self.active = np.ones(k, dtype=bool)
        self.final: list[Any] = [None] * k  # the stacked layers each frozen member takes its slice from
        self.best: list[Any] = [None] * k
        self.best_value = np.full(k, np.inf)
        self.best_epoch = np.full(k, -1)
        self.wait = np.zeros(k, dtype=int)
        self.stopped = np.zeros(k, dtype=bool)
        self.diverged: dict[int, str] = {}
        self.rows: list[np.ndarray] = []  # blocks of epochs: (quantities, members, epochs) as read back
        self.lrs: list[np.ndarray] = []  # likewise (members, epochs)
        self.recorded = np.zeros(k, dtype=int)  # epochs recorded per member (a prefix of the fit's)
        self.start = self.prev = eng.snapshot()
        self.in_epoch = False
        self.progress = Progress(plan.epochs, verbose=plan.verbose) if plan.verbose else None
        self.logs: dict[str, float] = {}
        self.n = X.shape[0]
        self.divisor = 1 if self.loss.reduction == "sum" else self.n
        #: without patience, progress or min_delta the best epoch is the first minimum, found at the end
        self.lean = plan.patience is None and self.progress is None and plan.min_delta == 0

    def epochs(self, lrs: list[Any], host_lrs: np.ndarray, rng: np.random.Generator) -> None:
        eng, X, t, xp, name, plan = self.eng, self.X, self.t, self.xp, self.name, self.plan
        n, divisor = self.n, self.divisor
        bs = n if plan.batch_size is None else min(plan.batch_size, n)
        batched = bs < n
        track = plan.track_accuracy
        if self.lean and not batched and self.Xv is None and hasattr(eng, "run"):
            self.whole(host_lrs)
            return
        for epoch, lr in enumerate(lrs):
            if epoch:
                self.prev, self.start = self.start, eng.snapshot()
            self.in_epoch = True
            order = rng.permutation(n) if batched and plan.shuffle else None
            if order is not None:
                perm = B.from_numpy(order, name, self.net._native)
            total = correct = 0.0
            for s in range(0, n, bs):
                if not batched:
                    Xb, tb = X, t
                elif order is not None:
                    idx = perm[s : min(s + bs, n)]
                    Xb, tb = xp.take(X, idx, axis=0), xp.take(t, idx, axis=0)
                else:
                    Xb, tb = X[s : min(s + bs, n), ...], t[s : min(s + bs, n), ...]
                value, y = eng.step(Xb, tb, lr)
                total = total + (value if divisor == 1 else value * Xb.shape[0])
                if track:
                    correct = correct + core.accuracy_sum(y, tb, xp=xp)
            if name == "dask":
                eng.layers, eng.state, total, correct = B.materialize((eng.layers, eng.state, total, correct), name)
            scalars = [total, correct] if track else [total]
            if self.Xv is not None:
                yv, cache = core.forward(eng.layers, self.Xv, acts=self.net._acts, xp=xp)
                scalars.append(self.loss.value(cache[-1][1], yv, self.tv, xp=xp))
                if track:
                    scalars.append(core.accuracy_sum(yv, self.tv, xp=xp))
            values = B.to_numpy(xp.stack(scalars)) if len(scalars) > 1 else B.to_numpy(scalars[0])[None]
            self.in_epoch = False
            self._record(epoch, host_lrs[epoch], values)
            if not self.active.any():
                break
        if len(lrs):
            finite = _finite_members(eng.layers, xp)
            for i in np.flatnonzero(self.active & ~finite):
                self._diverge(int(i), len(lrs) - 1, math.inf, host_lrs[len(lrs) - 1][i], self.start, True)

    def whole(self, host_lrs: np.ndarray) -> None:
        """Full-batch epochs through the engine's ``run``, in chunks, with no Python between epochs:
        used when nothing (validation, patience, progress) needs the host each epoch."""
        eng, track = self.eng, self.plan.track_accuracy
        self.divisor = 1  # one full batch an epoch: each loss is already in the loss's own reduction
        same = bool((host_lrs == host_lrs[:, :1]).all())
        k = self.k
        size = getattr(eng, "CHUNK", train.CHUNK)
        for lo in range(0, host_lrs.shape[0], size):
            chunk = host_lrs[lo : lo + size]
            self.start, self.in_epoch = eng.snapshot(), True
            values, correct = eng.run(self.X, self.t, chunk[:, 0] if same else chunk.reshape(-1, k, 1, 1), track)
            self.in_epoch = False
            if np.isfinite(values).all():  # nothing to decide per epoch: keep the chunk whole
                block = np.stack([values.T, correct.T]) if track else values.T[None]
                self.rows.append(block)
                self.lrs.append(chunk.T)
                self.recorded[self.active] += chunk.shape[0]
                continue
            for j in range(chunk.shape[0]):
                row = np.stack([values[j], correct[j]]) if track else values[j][None]
                self._record(lo + j, chunk[j], row, keep=eng.last_finite)
                if not self.active.any():
                    return
        if host_lrs.shape[0]:
            last = host_lrs.shape[0] - 1
            for i in np.flatnonzero(self.active & ~_finite_members(eng.layers, self.xp)):
                self._diverge(int(i), last, math.inf, host_lrs[last][i], eng.last_finite(), True)

    def _record(self, epoch: int, lr: np.ndarray, values: np.ndarray, keep: Any = None) -> None:
        """One epoch's values ``(quantities, members)`` for the members still training; ``keep()``
        gives the layers a member diverging now keeps (default: those that started the last epoch
        whose loss was finite)."""
        plan = self.plan
        monitored = values[2 if plan.track_accuracy else 1] if self.Xv is not None else values[0]
        ok = np.isfinite(values[0]) & np.isfinite(monitored)
        if not ok.all():
            for i in np.flatnonzero(self.active & ~ok):
                kept = keep() if keep is not None else self.prev if epoch else self.start
                self._diverge(int(i), epoch, values[0, i] / self.divisor, lr[i], kept, False)
        self.rows.append(values[..., None])
        self.lrs.append(np.asarray(lr)[..., None])
        if self.lean:  # nothing needs the best epoch before the end: ``histories`` finds it
            self.recorded[self.active] += 1
            return
        if self.Xv is None:
            monitored = monitored / self.divisor
        live = self.active.copy()  # the members this epoch counts for
        self.recorded[live] += 1
        with np.errstate(invalid="ignore"):
            improved = live & (monitored < self.best_value - plan.min_delta)
        self.best_value[improved] = monitored[improved]
        self.best_epoch[improved] = epoch
        self.wait[improved] = 0
        self.wait[live & ~improved] += 1
        if plan.patience is not None:
            if improved.any():
                snap = self.eng.snapshot()
                for i in np.flatnonzero(improved):
                    self.best[i] = snap
            stop = live & (self.wait >= plan.patience)
            if stop.any():
                snap = self.eng.snapshot()
                for i in np.flatnonzero(stop):
                    self.final[i] = snap
                self.stopped |= stop
                self.active &= ~stop
        if self.progress is not None and live.any():
            self.logs = {"loss": float(np.min(values[0][live])) / self.divisor}
            if self.Xv is not None:
                self.logs["val_loss"] = float(np.min(monitored[live]))
            self.progress.update(epoch + 1, self.logs)

    def _diverge(self, i: int, epoch: int, value: float, lr: float, keep: Any, after_update: bool) -> None:
        self.active[i] = False
        self.final[i] = keep
        what = "the weights became infinite or NaN" if after_update else f"the loss became {value}"
        self.diverged[i] = (
            f"member {i} diverged at epoch {epoch + 1}: {what}. Try a smaller lr (it was {lr:g}) "
            "or standardise the inputs"
        )

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close(int(self.recorded.max()), self.logs)

    def histories(self) -> list[History]:
        """One ``History`` per member, from the values read back each epoch."""
        plan, n = self.plan, self.n
        track, has_val = plan.track_accuracy, self.Xv is not None
        # (quantities, members, epochs), so that each member's series is contiguous
        table = np.concatenate(self.rows, axis=-1) if self.rows else np.zeros((4, self.k, 0))
        lrs = np.concatenate(self.lrs, axis=-1) if self.lrs else np.zeros((self.k, 0))
        vk = 2 if track else 1
        losses = table[0] / self.divisor  # (members, epochs), scaled once for all members
        monitored = table[vk] if has_val else losses
        out = []
        for i in range(self.k):
            m = int(self.recorded[i])
            h = History(monitor=self.monitor, backend=self.name, device=self.net.device)
            h.loss = losses[i, :m].tolist()
            h.lr = lrs[i, :m].tolist()
            if track:
                h.accuracy = (table[1, i, :m] / n).tolist()
            if has_val:
                h.val_loss = table[vk, i, :m].tolist()
                if track:
                    h.val_accuracy = (table[vk + 1, i, :m] / self.Xv.shape[0]).tolist()
            if self.lean and m:
                # the first minimum, as the rule "strictly better" finds; on the array, not the list
                self.best_epoch[i] = int(np.argmin(monitored[i, :m]))
                self.best_value[i] = monitored[i, self.best_epoch[i]]
            if self.best_epoch[i] >= 0:
                h.best_epoch, h.best_value = int(self.best_epoch[i]), float(self.best_value[i])
            h.stopped_early = bool(self.stopped[i]) or i in self.diverged
            out.append(h)
        return out

    def result(self, interrupted: bool, histories: list[History]) -> tuple[list, bool]:
        """The stacked layers to keep, and whether the optimizer state still goes with them."""
        plan, eng, xp = self.plan, self.eng, self.xp
        if interrupted:
            # a step cut short may have half-written the moments: the weights of the last completed
            # epoch, and a fresh optimizer next time
            live = self.start if self.in_epoch else eng.snapshot()
            sources = [self.final[i] if self.final[i] is not None else live for i in range(self.k)]
            return _pick(sources, xp), False
        keep_best = plan.patience is not None and plan.restore_best_weights
        sources = []
        for i, h in enumerate(histories):
            if i in self.diverged:
                sources.append(self.final[i])
            elif keep_best and self.best[i] is not None:
                h.restored_best = True
                sources.append(self.best[i])
            else:
                sources.append(self.final[i] if self.final[i] is not None else eng.layers)
        return _pick(sources, xp), not self.diverged


def _epoch_lrs(lrs: np.ndarray, per_member: Any) -> list[Any]:
    """Each epoch's learning rate from the ``(epochs, members)`` table: a number where the members
    agree, else a ``(k, 1, 1)`` array, made once for a run of identical epochs."""
    if lrs.shape[0] == 0:
        return []
    if (lrs == lrs[:, :1]).all():
        return lrs[:, 0].tolist()
    if (lrs == lrs[:1]).all():
        return [per_member(list(lrs[0]))] * lrs.shape[0]
    return [per_member(list(row)) for row in lrs]


def _pick(sources: list[Any], xp: Any) -> list:
    """The stacked layers whose member ``i`` is member ``i`` of ``sources[i]`` (itself stacked layers)."""
    first = sources[0]
    if all(s is first for s in sources):
        return first
    out = []
    for layer in range(len(first)):
        W = xp.stack([s[layer][0][i, ...] for i, s in enumerate(sources)])
        b = None if first[layer][1] is None else xp.stack([s[layer][1][i, ...] for i, s in enumerate(sources)])
        out.append((W, b))
    return out


def _finite_members(layers: list, xp: Any) -> np.ndarray:
    """Per member, whether all its parameters are finite, read back in one transfer."""
    flags = [xp.all(xp.isfinite(a), axis=tuple(range(1, a.ndim))) for a in leaves(layers)]
    return np.asarray(B.to_numpy(xp.all(xp.stack(flags), axis=0)), dtype=bool)


def _slice_state(tree: Any, i: int) -> Any:
    """``tree`` (an optimizer state over stacked ``[(W, b), ...]``) with member ``i`` taken out: ``W``
    moments ``(k, n_in, n_out)`` -> ``(n_in, n_out)``, ``b`` moments ``(k, 1, n_out)`` -> ``(n_out,)``."""
    if isinstance(tree, tuple) and len(tree) == 2 and not isinstance(tree[0], (int, float)) and _leaf_pair(tree):
        W, b = tree
        return (W[i, ...], None if b is None else b[i, 0, ...])
    if isinstance(tree, (list, tuple)):
        return type(tree)(_slice_state(item, i) for item in tree)
    return tree


def _leaf_pair(pair: tuple) -> bool:
    W, b = pair
    return getattr(W, "ndim", 0) == 3 and (b is None or getattr(b, "ndim", 0) == 3)


def _stacked_optimizer(opts: list[Any], per_member: Any) -> Any:
    """The optimizer that steps the stack: the members' own when they agree, else theirs with one
    momentum per member, ``(k, 1, 1)`` (momentum is the only optimizer option ``fit`` lets differ)."""
    first = opts[0]
    if all(o == first for o in opts):
        return first
    return dataclasses.replace(first, momentum=per_member([o.momentum for o in opts]))


def _seeds(members: Any, seed: Any, seeds: Any) -> list:
    if seeds is not None:
        if not isinstance(seeds, (list, tuple, np.ndarray)) or len(seeds) < 1:
            msg = f"seeds must be a non-empty list of integers, one per member, got {seeds!r}"
            raise ValueError(msg)
        if members is not None and positive_int(members, "members") != len(seeds):
            msg = f"members={members} but {len(seeds)} seeds were given; give one seed per member (or drop members)"
            raise ValueError(msg)
        return list(seeds)
    if members is None:
        msg = "give the number of members (members=8) or one seed per member (seeds=[...])"
        raise ValueError(msg)
    members = positive_int(members, "members")
    if seed is None:
        return [None] * members
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        msg = f"seed must be an integer or None, got {seed!r}"
        raise TypeError(msg)
    return [int(seed) + i for i in range(members)]
