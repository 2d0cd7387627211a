"""``Ensemble``: many networks of one shape, trained at once.

The members' parameters are stacked on a leading axis (``W``: ``(k, n_in, n_out)``, ``b``:
``(k, 1, n_out)``) and trained by the one training loop (``anynet.train``) with members ``(k,)``: the
engines run the core's own math on the stack, one matrix product per layer for all members, each
member computing exactly what it would alone. Members share every mini-batch (the fit's ``seed`` draws
one order), so a batch is gathered once; ``lr``, ``alpha`` and ``momentum`` may differ per member.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import backend as B
from . import core, intake, plans, train
from . import init as initialisers
from ._validate import positive_int, same_place
from .network import Network
from .train import DivergedError, History

#: fit options that may hold one value per member
PER_MEMBER = ("lr", "alpha", "momentum")
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
        self._layers = self._net.spec.put(self._draw())
        self.histories: list[History | None] = [None] * len(seeds)
        self.diverged: dict[int, str] = {}
        self.metadata: dict[str, Any] = {}
        self.epochs_trained = 0
        self._opts: list[Any] | None = None  # each member's optimizer, while the stacked state is kept
        self._opt_state = None

    @classmethod
    def from_weights(
        cls,
        weights: list[Any],
        biases: list[Any] | None = None,
        *,
        seeds: Sequence[int | None],
        activation: str = "sigmoid",
        output_activation: str | None = None,
        init: str = "uniform",
        classes: Any = None,
        dtype: Any = None,
        backend: str | None = None,
        device: str | None = None,
    ) -> Ensemble:
        """An ensemble holding the given stacked parameters: ``weights`` ``[(k, n_in, n_out), ...]`` and
        optional ``biases`` ``[(k, 1, n_out), ...]``, one of the ``k`` members per seed of ``seeds`` (the
        seeds that ``reset`` and ``fit(reset=True)`` draw from, with ``init``). ``classes``: the class
        labels, sorted, as ``fit`` stores them. The arrays are copied; the other arguments are
        ``Ensemble``'s."""
        hosts = [np.asarray(B.to_numpy(W)) for W in weights]
        k = len(seeds)
        for i, W in enumerate(hosts):
            if W.ndim != 3 or W.shape[0] != k or (i and W.shape[1] != hosts[i - 1].shape[2]):
                msg = (
                    f"weights[{i}] has shape {W.shape}; each must be (members, n_in, n_out), with {k} members "
                    "(one per seed) and n_in the previous layer's n_out"
                )
                raise ValueError(msg)
        sizes = [hosts[0].shape[1]] + [W.shape[2] for W in hosts]
        if biases is not None:
            for i, (b, n) in enumerate(zip(biases, sizes[1:], strict=True)):
                if tuple(b.shape) != (k, 1, n):
                    msg = f"biases[{i}] has shape {tuple(b.shape)}; it must be (members, 1, n_out) = {(k, 1, n)}"
                    raise ValueError(msg)
        ens: Ensemble = cls(
            sizes,
            seeds=seeds,
            activation=activation,
            output_activation=output_activation,
            bias=biases is not None,
            init=init,
            dtype=dtype,
            backend=backend,
            device=device,
        )
        bs = [None] * len(hosts) if biases is None else biases
        ens._layers = ens._net.spec.put([(W, b) for W, b in zip(hosts, bs, strict=True)])
        if classes is not None:
            ens._net.classes = np.asarray(classes)
        return ens

    def follow(self, *, place: bool | None = None, dtype: bool | None = None) -> Ensemble:
        """Whether the ensemble follows the data it is given, as ``Network.follow``. Returns the ensemble."""
        self._net.follow(place=place, dtype=dtype)
        return self

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
    def spec(self) -> intake.Spec:
        """What the members expect of data and where they live (``anynet.intake.Spec``), as ``Network.spec``."""
        return self._net.spec

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
        return core.predict(self._layers, self._inputs(X), acts=self._net.acts, xp=self.xp)

    def predict(self, X: Any, member: int | None = None) -> Any:
        """The members' mean output ``(n, n_out)`` for ``X``, or member ``member``'s own."""
        if member is not None:
            i = self._index(member)
            return core.predict(self._member_layers(i), self._inputs(X), acts=self._net.acts, xp=self.xp)
        return self.xp.mean(self.predict_members(X), axis=0)

    def predict_classes(self, X: Any, member: int | None = None) -> Any:
        """Class labels from the mean output (or member ``member``'s), as ``Network.predict_classes``."""
        view = self._member(0)
        view.predict = lambda X_: self.predict(X_, member)
        return Network.predict_classes(view, X)

    def _member_layers(self, i: int) -> list:
        return [(W[i, ...], None if b is None else b[i, ...]) for W, b in self._layers]

    def _inputs(self, X: Any) -> Any:
        """``X`` checked and placed for the members (host data, or arrays where the ensemble lives)."""
        place = same_place(X=X)
        if place is not None and place != (self.backend, self.device):
            msg = (
                f"X is a {place[0]} array on {place[1]} but this ensemble lives on {self.backend} "
                f"({self.device}); pass NumPy arrays or arrays of its backend"
            )
            raise ValueError(msg)
        return intake.inputs(X, self.spec)

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
        only when every member diverged. ``callbacks`` get ``logs`` with one value per member
        (``logs["loss"]``: ``(members,)``) and the ensemble as ``logs["network"]``; returning ``True``
        stops every member. ``engine``: as ``Network.fit``'s, where the engine trains a stack.

        Every argument is checked before any weight changes.
        """
        k = self.n_members
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
        planned = [
            plans.plan(self.output_activation, **(options | {key: values[i] for key, values in per.items()}))
            for i in range(k)
        ]
        plan = planned[0]
        # validation_split holds out the same rows for every member, drawn from the first one's seed
        net = self._net.for_data(intake.place_of(X, t, options), X)
        data = intake.fit_data(net.spec, X, t, plan, options, seed=net.seed)
        moved = net is not self._net
        spec = net.spec
        opts = [p.opt for p in planned]
        if plan.reset:
            layers, state, trained = spec.put(self._draw()), None, 0
        else:
            layers = spec.put(self._layers) if moved else self._layers
            resume = self._opts == opts and self._opt_state is not None
            state = (spec.put(self._opt_state) if moved else self._opt_state) if resume else None
            trained = self.epochs_trained
        seed = plan.seed if plan.seed is not None else [self.seeds[0] or 0, trained]
        rows = data.rows(size=plan.batch_size, shuffle=plan.shuffle, rng=np.random.default_rng(seed))
        on = {"backend": spec.backend, "native": spec.native, "dtype": spec.dtype_name}
        result = train.fit(
            layers,
            state,
            rows,
            data.X_val,
            data.t_val,
            plan=plan,
            acts=net.acts,
            xp=spec.xp,
            backend=spec.backend,
            device=spec.device,
            native=spec.native,
            view=lambda layers: self._view(net, layers),
            lrs=np.array([p.lrs() for p in planned], dtype=float).reshape(k, plan.epochs).T,  # (epochs, members)
            alpha=train.per_member([p.alpha for p in planned], **on),
            opt=_stacked_optimizer(opts, on),
        )

        # Commit: everything above could still refuse; from here the fit has happened.
        if moved:
            self._net = net
        self._net.classes = data.classes
        self._layers = result.layers
        self._opts, self._opt_state = (opts, result.state) if result.opt is not None else (None, None)
        self.epochs_trained = trained + max(h.epochs for h in result.histories)
        self.histories = result.histories
        self.diverged = result.diverged
        if result.error is not None:
            raise result.error
        if self.diverged:
            if len(self.diverged) == k:
                msg = f"every member diverged; each kept its last weights whose loss was finite. {self.diverged[0]}"
                raise DivergedError(msg, self.histories[0])
            msg = (
                f"member(s) {sorted(self.diverged)} of {k} diverged and kept their last weights whose loss was "
                f"finite (see Ensemble.diverged); the others trained on. {next(iter(self.diverged.values()))}"
            )
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
        return self.histories

    def _view(self, net: Network, layers: Any) -> Ensemble:
        """A shallow copy of this ensemble on ``net``'s place holding ``layers``: what a callback sees."""
        view: Ensemble = Ensemble.__new__(Ensemble)
        view.__dict__.update(self.__dict__)
        view._net, view._layers = net, layers
        return view

    def _draw(self) -> list:
        """The members' initial parameters, stacked, on the host."""
        hosts = [initialisers.draw(self.init, self.sizes, s) for s in self.seeds]
        return [
            (np.stack([h[i][0] for h in hosts]), np.stack([h[i][1][None, :] for h in hosts]) if self.bias else None)
            for i in range(len(self.sizes) - 1)
        ]


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


def _stacked_optimizer(opts: list[Any], on: dict) -> Any:
    """The optimizer that steps the stack: the members' own when they agree, else theirs with one
    momentum per member, ``(k, 1, 1)`` (momentum is the only optimizer option ``fit`` lets differ)."""
    first = opts[0]
    if all(o == first for o in opts):
        return first
    return dataclasses.replace(first, momentum=train.per_member([o.momentum for o in opts], **on))


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
