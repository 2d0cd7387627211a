"""The ``Network``: its configuration and parameters, on one backend and device; it calls the core."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import numpy as np

from . import activations, core, defaults, intake, losses
from . import backend as B
from . import init as initialisers
from ._validate import host_2d, kind_of, same_place


class Network:
    """A fully connected feed-forward network.

    ``sizes`` lists the width of every layer, input first: ``[2, 4, 1]`` is the seed's shape with the
    bias as a separate vector. ``activation`` is used on the hidden layers and, unless
    ``output_activation`` names another, on the output layer too. Weights ``W`` are ``(n_in, n_out)``
    so that ``X @ W`` reads as the seed's ``np.dot(X, W1)``.

    ``backend``/``device`` pin the network to an array library and device; left as ``None`` the
    network starts on the default (``anynet.use``, ``ANYNET_BACKEND``, else NumPy) and moves, once, to
    wherever the arrays given to ``fit`` live. ``dtype`` ``None`` is the backend's default float.
    """

    def __init__(
        self,
        sizes: list[int],
        activation: str = "sigmoid",
        output_activation: str | None = None,
        bias: bool = True,
        init: str = "uniform",
        seed: int | None = 0,
        dtype: Any = None,
        backend: str | None = None,
        device: str | None = None,
    ) -> None:
        sizes = _check_sizes(sizes)
        initialisers.get(init)
        if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
            msg = f"seed must be an integer or None, got {seed!r}"
            raise TypeError(msg)
        self._configure(sizes, activation, output_activation, bias, init, seed)
        self._place(backend, device, dtype)
        self.layers = self._initial_layers()

    # ----------------------------------------------------------------------------- construction

    @classmethod
    def from_weights(
        cls,
        weights: list[Any],
        biases: list[Any] | None = None,
        activation: str = "sigmoid",
        output_activation: str | None = None,
        dtype: Any = None,
        backend: str | None = None,
        device: str | None = None,
    ) -> Network:
        """A network with the given weights ``[(n_in, n_out), ...]`` and optional biases ``[(n_out,), ...]``.

        The arrays are copied. The backend and device follow the weights unless named; so does the
        dtype, on every backend: float32 weights make a float32 network, any others float64 (float32 on
        JAX without its 64-bit mode, which has no float64).
        """
        if not isinstance(weights, (list, tuple)) or not weights:
            msg = f"weights must be a non-empty list of 2-D arrays, got {type(weights).__name__}"
            raise TypeError(msg)
        hosts = [host_2d(W, f"weights[{i}]") for i, W in enumerate(weights)]
        for i in range(1, len(hosts)):
            if hosts[i].shape[0] != hosts[i - 1].shape[1]:
                msg = (
                    f"weights[{i}] has {hosts[i].shape[0]} rows but weights[{i - 1}] has "
                    f"{hosts[i - 1].shape[1]} columns; each W must be (n_in, n_out) and chain"
                )
                raise ValueError(msg)
        sizes = [hosts[0].shape[0]] + [W.shape[1] for W in hosts]
        if biases is not None:
            if len(biases) != len(hosts):
                msg = f"got {len(biases)} biases for {len(hosts)} weight matrices; give one per layer"
                raise ValueError(msg)
            bhost = [np.asarray(B.to_numpy(b), dtype=float).reshape(-1) for b in biases]
            for i, (b, n) in enumerate(zip(bhost, sizes[1:], strict=True)):
                if b.shape != (n,) or not np.isfinite(b).all():
                    msg = f"biases[{i}] must be {n} finite numbers, got shape {b.shape}"
                    raise ValueError(msg)
        chosen = dtype is not None
        place = same_place(**{f"weights[{i}]": W for i, W in enumerate(weights)})
        if backend is None and place is not None:
            backend, device = place if device is None else (place[0], device)
        if dtype is None:  # the weights' precision, whatever the backend's default float
            dtype = "float32" if hosts[0].dtype == np.float32 else "float64"
            if dtype == "float64" and not B.has_float64(B.placement(backend, device)[0]):
                dtype = "float32"
        net: Network = cls.__new__(cls)
        net._configure(sizes, activation, output_activation, biases is not None, "uniform", None)
        net._place(backend, device, dtype)
        net._dtype_chosen = chosen
        net.layers = net.spec.put([(W, None if biases is None else bhost[i]) for i, W in enumerate(hosts)])
        return net

    def _configure(self, sizes, activation, output_activation, bias, init, seed) -> None:
        self.sizes = list(sizes)
        self.activation = activations.get(activation).name
        out = activation if output_activation is None else output_activation
        self.output_activation = activations.get(out).name
        if self.activation == "softmax":
            msg = "softmax is an output activation; use it as output_activation='softmax'"
            raise ValueError(msg)
        if self.output_activation == "softmax" and sizes[-1] == 1:
            msg = (
                "a softmax over one output is always 1, so it cannot learn; for two classes use one output "
                "with output_activation='sigmoid', or two outputs with softmax"
            )
            raise ValueError(msg)
        self.bias = bool(bias)
        self.init = init
        self.seed = seed
        self.classes: np.ndarray | None = None
        self.metadata: dict[str, Any] = {}
        self.history = None
        self.epochs_trained = 0
        self._opt = None
        self._opt_state = None
        n_hidden = len(sizes) - 2
        self._acts = tuple([activations.get(self.activation)] * n_hidden + [activations.get(self.output_activation)])

    def _place(self, backend: str | None, device: str | None, dtype: Any) -> None:
        """Resolve backend, device and dtype once; everything after uses ``self.xp`` and friends."""
        self._pinned = backend is not None
        backend, device = B.placement(backend, device)
        self.backend = backend
        self.xp = B.namespace_for(backend)
        self._native = B.native_device(backend, device)
        self.device = B.device_name(backend, self._native)
        self.dtype = B.dtype_for(self.xp, backend, self._native, dtype)
        #: a dtype named by the user stays; otherwise the network takes the dtype of the data it follows
        self._dtype_chosen = dtype is not None

    # ----------------------------------------------------------------------------- parameters

    @property
    def weights(self) -> list[Any]:
        """The weight matrices, ``W`` shaped ``(n_in, n_out)``, on the network's backend."""
        return [W for W, _ in self.layers]

    @property
    def biases(self) -> list[Any]:
        """The bias vectors ``(n_out,)``; ``[]`` for a network without biases."""
        return [b for _, b in self.layers if b is not None]

    @property
    def n_in(self) -> int:
        return self.sizes[0]

    @property
    def n_out(self) -> int:
        return self.sizes[-1]

    @property
    def n_params(self) -> int:
        return sum(a * b + (b if self.bias else 0) for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=True))

    def __repr__(self) -> str:
        return (
            f"Network({self.sizes}, activation={self.activation!r}, "
            f"output_activation={self.output_activation!r}, bias={self.bias}, "
            f"backend={self.backend!r}, device={self.device!r}, dtype={B.dtype_name(self.dtype)!r})"
        )

    @property
    def optimizer(self) -> Any:
        """The optimizer whose state the network holds from its last fit (or a checkpoint), or ``None``."""
        return self._opt

    @property
    def optimizer_state(self) -> Any:
        """That optimizer's state, on the network's device, or ``None``; a ``fit`` with an equal
        optimizer continues from it."""
        return self._opt_state

    def set_optimizer(self, optimizer: Any, state: Any) -> None:
        """Hold ``optimizer`` (an ``anynet.optimizers`` object) and its ``state`` (host or device arrays,
        moved here) for the next ``fit`` to continue from; ``None`` for either forgets both."""
        if optimizer is None or state is None:
            self._opt = self._opt_state = None
            return
        from .optimizers import is_optimizer

        if not is_optimizer(optimizer):
            msg = f"optimizer must be an optimizer object with init and step, got {optimizer!r}"
            raise TypeError(msg)
        self._opt, self._opt_state = optimizer, self.spec.put(state)

    def follow(self, *, place: bool | None = None, dtype: bool | None = None) -> Network:
        """Whether the network follows the data it is given: ``place=True`` lets it move (once) to the
        backend and device of arrays passed to ``fit``/``predict``, ``dtype=True`` lets it take their
        float dtype. ``None`` leaves a setting as it is. Returns the network."""
        if place is not None:
            self._pinned = not place
        if dtype is not None:
            self._dtype_chosen = not dtype
        return self

    def to(self, backend: str | None = None, device: str | None = None, dtype: Any = None) -> Network:
        """The same network (weights, optimizer state, classes) on another backend, device or dtype."""
        return self._moved(backend or self.backend, device, dtype or B.dtype_name(self.dtype), dtype is not None)

    def _moved(self, backend: str, device: str | None, dtype: Any, chosen: bool) -> Network:
        new: Network = Network.__new__(Network)
        new.__dict__.update(self.__dict__)
        new._place(backend, device, dtype)
        new._dtype_chosen = self._dtype_chosen or chosen
        spec = new.spec
        new.layers = spec.put(self.layers)
        new._opt_state = spec.put(self._opt_state)
        new.metadata = dict(self.metadata)
        return new

    def for_data(self, place: tuple[str, str] | None, x: Any, label: str = "X") -> Network:
        """This network, or a copy of it moved to ``place``, the ``(backend, device)`` where the data
        of a ``fit`` or ``predict`` lives (``None``: host data, which goes wherever the network is), as
        ``fit`` and ``predict`` move it. A network pinned to its place (``follow(place=False)``)
        refuses, naming ``x``, the array given as ``label``."""
        if place is None or place == (self.backend, self.device):
            return self
        if self._pinned:
            msg = (
                f"{label} is a {kind_of(x)} but this network lives on {self.backend} ({self.device}); "
                f"pass NumPy arrays, or move the network with net = net.to({place[0]!r}, {place[1]!r})"
            )
            raise ValueError(msg)
        dtype = B.dtype_name(self.dtype) if self._dtype_chosen else B.dtype_name(getattr(x, "dtype", None))
        if dtype not in ("float32", "float64"):
            dtype = None  # integer data: the new backend's default float
        moved: Network = self._moved(place[0], place[1], dtype, chosen=False)
        moved._pinned = False
        return moved

    @property
    def spec(self) -> intake.Spec:
        """What the network expects of data and where it keeps it (``anynet.intake.Spec``): its input
        and output widths, known classes, backend, device and dtype."""
        place = (self.backend, self.device, self._native, self.xp, self.dtype)
        return intake.Spec(self.n_in, self.n_out, *place, classes=self.classes)

    @property
    def acts(self) -> tuple:
        """The activation of each layer (``anynet.activations`` ops, hidden layers first), as the core takes them."""
        return self._acts

    # ----------------------------------------------------------------------------- using it

    def predict(self, X: Any) -> Any:
        """The network's output ``(n, n_out)`` for ``X``: ``(n, n_in)``, as an array on its backend."""
        self.__dict__.update(self.for_data(same_place(X=X), X).__dict__)
        return core.predict(self.layers, intake.inputs(X, self.spec), acts=self._acts, xp=self.xp)

    def predict_classes(self, X: Any) -> Any:
        """Class labels: ``self.classes`` picked by the largest output (or output > 0.5 for one
        sigmoid output). Numeric labels come back on the network's backend, string labels as NumPy."""
        xp = self.xp
        y = self.predict(X)
        if self.n_out == 1:
            integral = xp.__array_namespace_info__().default_dtypes(device=self._native)["integral"]
            index = xp.astype(y[:, 0] > 0.5, integral)
        else:
            index = xp.argmax(y, axis=1)
        if self.classes is None:
            return index
        if self.classes.dtype.kind in "biuf":
            classes = B.from_numpy(self.classes, self.backend, self._native)
            return xp.take(classes, index, axis=0)
        return self.classes[B.to_numpy(index)]

    def evaluate(self, X: Any, t: Any, loss: str = "half_sse") -> dict[str, float]:
        """The loss (and accuracy, for a classification loss) on labelled data, as floats."""
        lf = losses.get(loss)
        if lf.output is not None and lf.output != self.output_activation:  # as fit refuses the pair
            msg = (
                f"loss {lf.name!r} works on {lf.output} outputs, but this network's output activation is "
                f"{self.output_activation!r}; evaluate with a loss for it (such as "
                f"{defaults.loss_for(self.output_activation)!r})"
            )
            raise ValueError(msg)
        self.__dict__.update(self.for_data(same_place(X=X, t=t), X).__dict__)
        spec = self.spec
        Xd = intake.inputs(X, spec)
        td, _ = intake.targets(t, Xd.shape[0], lf, spec)
        xp = self.xp
        y, cache = core.forward(self.layers, Xd, acts=self._acts, xp=xp)
        out = {"loss": float(lf.value(cache[-1][1], y, td, xp=xp))}
        if lf.classification or self.classes is not None:
            out["accuracy"] = float(core.accuracy_sum(y, td, xp=xp)) / Xd.shape[0]
        return out

    def fit(self, X: Any, t: Any, **options: Any):
        """Train on ``X``: ``(n, n_in)`` and targets ``t``: ``(n, n_out)`` (or 1-D class labels).

        - ``loss``: ``"half_sse"`` (the seed's ½Σ(y−t)²), ``"mse"``, ``"half_mse"``,
          ``"binary_cross_entropy"`` (sigmoid output) or ``"cross_entropy"`` (softmax output). ``None``
          picks cross-entropy for a softmax output and half_sse otherwise (``anynet.defaults``).
        - ``optimizer``: ``"sgd"`` (with ``momentum``/``nesterov``), ``"adam"`` (``beta_1``, ``beta_2``,
          ``epsilon``) or any name registered with ``anynet.optimizers.register`` (its options as
          keywords), or an optimizer object (``anynet.optimizers`` or your own with ``init``/``step``);
          ``lr`` ``None`` is 1.0 for sgd (the seed) and 1e-3 for Adam. ``schedule``: ``"constant"``,
          ``"invscaling"``, ``"step"``, ``"cosine"`` or ``f(lr, epoch, epochs)``. ``alpha``: L2 penalty as
          scikit-learn's, ``0.5*alpha*ΣW²/batch``.
        - ``batch_size`` ``None`` is the full batch, as the seed; ``shuffle`` draws a seeded permutation
          per epoch on the host (``seed``).
        - ``validation_data=(Xv, tv)`` or ``validation_split`` (a seeded random fraction held out);
          ``patience``/``min_delta`` stop early on the validation loss (the training loss without
          validation) and, with ``restore_best_weights``, keep the best weights.
        - ``metrics=["accuracy"]``; ``classes``: every class label, when ``t`` may not show them all.
        - ``callbacks``: ``f(epoch, logs)`` after each epoch; returning ``True`` stops training.
        - ``reset``: start again from the initial weights; otherwise training continues from the
          current weights and optimizer state. ``verbose``: 0 quiet, 1 progress bar, 2 a line per epoch.
        - ``engine``: ``"auto"``, ``"reference"``, ``"buffer"``, ``"compiled"`` or ``"distributed"``
          (``anynet.engines``).
        - ``client``: a ``dask.distributed.Client``. Dask ``X`` with this client, or while a default
          client is active, trains data-parallel on its cluster (``engine="distributed"``): the row
          chunks stay on the workers and only weights and gradient sums travel. ``t`` may be Dask
          (labels are encoded on the workers) or host data. Without a client, Dask arrays train
          lazily in this process.

        Every argument is checked before any weight changes. A loss that turns NaN or infinite raises
        ``DivergedError`` and keeps the last weights whose loss was finite. An exception from a
        callback, or a ``KeyboardInterrupt``, keeps the weights and history of the last completed
        epoch, then propagates. Returns the ``History``.
        """
        from . import engines, plans, train

        client = options.pop("client", None)
        plan = plans.plan(self.output_activation, **options)
        site = engines.site_for(X, client, plan.engine)
        if site is not None:  # data-parallel, where the rows live
            plan = dataclasses.replace(plan, engine=site.engine)
        net: Network = self.for_data(intake.place_of(X, t, options, site), X)
        data = intake.fit_data(net.spec, X, t, plan, options, seed=net.seed, site=site)
        if plan.reset:
            layers, state, trained = net._initial_layers(), None, 0
        else:
            resume = net._opt == plan.opt and net._opt_state is not None
            layers, state, trained = net.layers, (net._opt_state if resume else None), net.epochs_trained
        seed = plan.seed if plan.seed is not None else [net.seed or 0, trained]
        rows = data.rows(size=plan.batch_size, shuffle=plan.shuffle, rng=np.random.default_rng(seed))
        with contextlib.nullcontext() if site is None else site.running():
            result = train.fit(
                layers,
                state,
                rows,
                data.X_val,
                data.t_val,
                plan=plan,
                acts=net._acts,
                xp=net.xp,
                backend=net.backend,
                device=net.device,
                native=net._native,
                view=net.with_layers,
            )
        # Commit: everything above could still refuse; from here the fit has happened.
        if net is not self:
            self.__dict__.update(net.__dict__)
        self.layers, self._opt, self._opt_state = result.layers, result.opt, result.state
        self.classes = data.classes
        self.epochs_trained = trained + result.history.epochs
        self.history = result.history
        if result.error is not None:
            raise result.error
        if result.diverged:
            raise train.DivergedError(result.diverged[0], result.history)
        return result.history

    def with_layers(self, layers: Any) -> Network:
        """A shallow copy of this network (configuration, place, classes) holding ``layers``
        (``[(W, b | None), ...]`` on its backend): what a callback sees mid-fit."""
        view = Network.__new__(Network)
        view.__dict__.update(self.__dict__)
        view.layers = layers
        return view

    def _initial_layers(self) -> Any:
        host = initialisers.draw(self.init, self.sizes, self.seed)
        return self.spec.put([(W, b if self.bias else None) for W, b in host])

    def reset(self) -> None:
        """Back to the initial weights drawn from ``seed``, with no optimizer state or history."""
        self.layers = self._initial_layers()
        self._opt = self._opt_state = self.history = None
        self.epochs_trained = 0


def _check_sizes(sizes: Any) -> list[int]:
    ok = isinstance(sizes, (list, tuple)) and len(sizes) >= 2
    ok = ok and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in sizes)
    if not ok:
        msg = f"sizes must list at least two positive layer widths, input first, like [2, 4, 1]; got {sizes!r}"
        raise ValueError(msg)
    return [int(s) for s in sizes]
