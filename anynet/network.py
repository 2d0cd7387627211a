"""The ``Network``: its configuration and parameters, on one backend and device; it calls the core."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from . import activations, core, defaults, losses, sparse
from . import backend as B
from . import init as initialisers
from ._validate import all_finite, check_shape, host_2d, kind_of, not_finite_message, same_place, sample_weights
from .batches import Rows
from .tree import tree_map


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
        host = initialisers.draw(init, sizes, seed)
        self.layers = self._to_device([(W, b if bias else None) for W, b in host], np_dtype=B.dtype_name(self.dtype))

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
        net = cls.__new__(cls)
        net._configure(sizes, activation, output_activation, biases is not None, "uniform", None)
        net._place(backend, device, dtype)
        net._dtype_chosen = chosen
        layers = [(W, None if biases is None else bhost[i]) for i, W in enumerate(hosts)]
        net.layers = net._to_device(layers, np_dtype=B.dtype_name(net.dtype))
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

    def _to_device(self, tree: Any, np_dtype: str | None = None) -> Any:
        """Move host arrays (or other backends' arrays) in a nested list to this network's place."""

        def move(x):
            a = B.to_numpy(x)
            if np_dtype is not None and a.dtype.kind in "biuf":
                a = a.astype(np_dtype)
            return B.from_numpy(a, self.backend, self._native)

        return tree_map(move, tree)

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
        self._opt, self._opt_state = optimizer, self._to_device(state, B.dtype_name(self.dtype))

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
        new = Network.__new__(Network)
        new.__dict__.update(self.__dict__)
        new._place(backend, device, dtype)
        new._dtype_chosen = self._dtype_chosen or chosen
        np_dtype = B.dtype_name(new.dtype)
        new.layers = new._to_device(self.layers, np_dtype)
        new._opt_state = new._to_device(self._opt_state, np_dtype)
        new.metadata = dict(self.metadata)
        return new

    def _follow(self, place: tuple[str, str] | None, label: str, x: Any) -> Network:
        """This network, or a copy moved to where the user's arrays live (a pinned one refuses)."""
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
        moved = self._moved(place[0], place[1], dtype, chosen=False)
        moved._pinned = False
        return moved

    # ----------------------------------------------------------------------------- data in

    def _input(self, X: Any, label: str = "X") -> Any:
        """``X`` as a 2-D array of this network's dtype on its device, checked (a SciPy sparse ``X``
        stays sparse, as CSR, on the NumPy backend)."""
        if sparse.is_sparse(X):
            return sparse.check(X, n_in=self.n_in, backend=self.backend, dtype=B.dtype_name(self.dtype), label=label)
        if B.backend_of(X) not in (None, "numpy"):
            return self._device_input(X, label)
        a = host_2d(X, label, features=self.n_in, dtype=B.dtype_name(self.dtype))
        return B.from_numpy(a, self.backend, self._native)

    def _device_input(self, X: Any, label: str) -> Any:
        xp = self.xp
        X = B.detached(X)  # training must not extend the caller's autograd graph
        if not xp.isdtype(X.dtype, ("real floating", "integral", "bool")):
            msg = f"{label} must be numeric (float, int or bool), got dtype {X.dtype}"
            raise TypeError(msg)
        check_shape(X.shape, label, features=self.n_in)
        with np.errstate(over="ignore"):  # NumPy-based backends warn on an overflowing cast; reported below
            cast = X if X.dtype == self.dtype else xp.astype(X, self.dtype)
            if not all_finite(cast, xp):
                raise ValueError(not_finite_message(X, cast, label))
        return cast

    def _targets(self, t: Any, n: int, loss: losses.Loss, classes: Any = None, label: str = "t") -> tuple[Any, Any]:
        """Targets as ``(n, n_out)`` floats on the device, and the class labels they were encoded
        against (``self.classes`` where nothing new was learned). 1-D labels (or any non-numeric
        labels) are encoded against ``classes``, else ``self.classes``: one-hot for several outputs,
        0/1 for a single sigmoid output."""
        known = self.classes
        a = np.asarray(t) if B.backend_of(t) in (None, "numpy") else B.to_numpy(t)
        if a.ndim == 0 or a.ndim > 2:
            msg = f"{label} must be 1-D labels or 2-D (n_samples, n_outputs), got shape {a.shape}"
            raise ValueError(msg)
        if a.shape[0] != n:
            msg = f"{'X_val' if label == 't_val' else 'X'} has {n} rows but {label} has {a.shape[0]}; they must match"
            raise ValueError(msg)
        labels = a.ndim == 1 or (a.ndim == 2 and a.shape[1] == 1 and self.n_out > 1) or a.dtype.kind not in "biuf"
        if labels and a.ndim == 2 and a.shape[1] != 1:
            msg = f"{label} must be numeric (float, int or bool), or class labels in one column; got dtype {a.dtype}"
            raise TypeError(msg)
        if classes is not None and self.n_out == 1:
            _two_classes(np.unique(np.asarray(classes)), "classes")
        dtype = B.dtype_name(self.dtype)
        if labels and (loss.classification or self.n_out > 1 or a.dtype.kind not in "biuf"):
            a, known = self._encode(a.reshape(-1), classes, label)
            a = a.astype(dtype)
        else:
            # finite in the network's dtype, not only in t's own
            a = host_2d(a.reshape(-1, 1) if a.ndim == 1 else a, label, dtype=dtype)
            if a.shape[1] != self.n_out:
                msg = f"{label} has {a.shape[1]} columns but the network has {self.n_out} outputs"
                raise ValueError(msg)
            if loss.nonnegative_targets and (a < 0).any():
                msg = f"loss {loss.name!r} needs non-negative targets (counts, rates), but {label} has {a.min()}"
                raise ValueError(msg)
        return B.from_numpy(a, self.backend, self._native), known

    def _sample_weight(self, sample_weight: Any, n: int) -> Any:
        """``sample_weight`` checked (see ``_validate.sample_weights``) as ``(n, 1)`` on the device."""
        w = sample_weights(sample_weight, n, B.dtype_name(self.dtype)).reshape(-1, 1)
        return B.from_numpy(w.astype(B.dtype_name(self.dtype)), self.backend, self._native)

    def _cluster_data(self, client, X, t, loss, classes, x_label="X", t_label="t"):
        """``X`` and ``t`` checked and prepared, lazily, as row-chunked Dask arrays for training on
        the cluster of ``client`` (persisted by the caller), and the classes ``t`` was encoded against."""
        from . import cluster

        dtype = B.dtype_name(self.dtype)
        X = cluster.rows(X, x_label, n_in=self.n_in, dtype=dtype)
        cluster.check_workers(client, cluster.chunk_backend(X))
        if B.backend_of(t) != "dask":  # host targets: encoded here, sent once, chunked like X
            t, known = self._targets(t, X.shape[0], loss, classes, label=t_label)
            return X, t.rechunk({0: X.chunks[0]}), known
        t, known = cluster.targets(
            client,
            t,
            X,
            t_label,
            n_out=self.n_out,
            dtype=dtype,
            labels_wanted=loss.classification or self.n_out > 1,
            encode=lambda found: self._encode(found, classes, t_label)[1],
        )
        return X, t, self.classes if known is None else known

    def _encode(self, labels: np.ndarray, classes: Any, label: str) -> tuple[np.ndarray, np.ndarray]:
        if labels.dtype.kind == "f" and not np.isfinite(labels).all():
            msg = f"{label} holds NaN or infinite labels"
            raise ValueError(msg)
        found = np.unique(labels)
        if classes is not None:
            known = np.unique(np.asarray(classes))
        elif self.classes is not None:
            known = self.classes
        else:
            known = found
        missing = np.setdiff1d(found, known)
        if missing.size:
            msg = f"{label} has labels {missing.tolist()[:5]} outside the known classes {known.tolist()[:10]}"
            raise ValueError(msg)
        want = 2 if self.n_out == 1 else self.n_out
        if self.n_out == 1:
            _two_classes(known, label)
        if known.size > want or (classes is None and self.classes is None and known.size < want and self.n_out > 1):
            msg = (
                f"{label} has {known.size} classes but the network's {self.n_out} output(s) fit {want}; "
                "size the output layer to the number of classes, or pass classes=[...] to fit"
            )
            raise ValueError(msg)
        index = np.searchsorted(known, labels)
        if self.n_out == 1:
            return (index == 1).astype(float).reshape(-1, 1), known
        onehot = np.zeros((labels.shape[0], self.n_out))
        onehot[np.arange(labels.shape[0]), index] = 1.0
        return onehot, known

    # ----------------------------------------------------------------------------- using it

    def predict(self, X: Any) -> Any:
        """The network's output ``(n, n_out)`` for ``X``: ``(n, n_in)``, as an array on its backend."""
        self.__dict__.update(self._follow(same_place(X=X), "X", X).__dict__)
        return core.predict(self.layers, self._input(X), acts=self._acts, xp=self.xp)

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
        self.__dict__.update(self._follow(same_place(X=X, t=t), "X", X).__dict__)
        Xd = self._input(X)
        td, _ = self._targets(t, Xd.shape[0], lf)
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
        from . import cluster, train

        client = options.pop("client", None)
        plan = train.plan(self.output_activation, **options)
        on = cluster.client_for(X, client, plan.engine)
        if on is not None:  # data-parallel, where the rows live
            plan = dataclasses.replace(plan, engine="distributed")
        net, X, t, w, Xv, tv, classes = self._intake(X, t, plan, options, on)
        if plan.reset:
            layers, state, trained = net._initial_layers(), None, 0
        else:
            resume = net._opt == plan.opt and net._opt_state is not None
            layers, state, trained = net.layers, (net._opt_state if resume else None), net.epochs_trained
        seed = plan.seed if plan.seed is not None else [net.seed or 0, trained]
        rng = np.random.default_rng(seed)
        data = Rows(
            X, t, w, size=plan.batch_size, shuffle=plan.shuffle, rng=rng, backend=net.backend, native=net._native
        )
        with cluster.computing_on(on):
            result = train.fit(
                layers,
                state,
                data,
                Xv,
                tv,
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
        self.classes = classes
        self.epochs_trained = trained + result.history.epochs
        self.history = result.history
        if result.error is not None:
            raise result.error
        if result.diverged:
            raise train.DivergedError(result.diverged[0], result.history)
        return result.history

    def _intake(self, X: Any, t: Any, plan: Any, options: dict, on: Any = None) -> tuple:
        """A fit's data checked and placed once, for this network or a stack of its shape: ``(net, X,
        t, w, X_val, t_val, classes)``, ``net`` being this network or a copy moved to where the arrays
        live, ``w`` the row weights ``(n, 1)`` or ``None``. ``on``: a ``dask.distributed`` client whose
        workers keep the rows (``t`` may then come from the host)."""
        from . import cluster

        Xv_in, tv_in = options.get("validation_data") or (None, None)
        sample_weight = options.get("sample_weight")
        if on is None:
            place = same_place(X=X, t=t, X_val=Xv_in, t_val=tv_in, sample_weight=sample_weight)
            net = self._follow(place, "X", X)
            X = net._input(X, "X")
            t, classes = net._targets(t, X.shape[0], plan.loss, options.get("classes"))
        else:
            if sample_weight is not None:
                msg = "sample_weight is not supported on a Dask cluster yet; train without it, or on NumPy"
                raise ValueError(msg)
            net = self._follow(same_place(X=X, X_val=Xv_in), "X", X)
            X, t, classes = net._cluster_data(on, X, t, plan.loss, options.get("classes"))
        w = None if sample_weight is None else net._sample_weight(sample_weight, X.shape[0])
        Xv = tv = None
        if plan.validation_split:
            X, t, w, Xv, tv = net._split(X, t, w, plan.validation_split, net.seed, host_index=on is not None)
        elif Xv_in is not None and on is not None:
            Xv, tv, _ = net._cluster_data(on, Xv_in, tv_in, plan.loss, classes, "X_val", "t_val")
        elif Xv_in is not None:
            Xv = net._input(Xv_in, "X_val")
            tv, _ = net._targets(tv_in, Xv.shape[0], plan.loss, classes, label="t_val")
        if on is not None:
            held = cluster.persist(on, {"X": X, "t": t} | ({} if Xv is None else {"X_val": Xv, "t_val": tv}))
            X, t, Xv, tv = held["X"], held["t"], held.get("X_val"), held.get("t_val")
        return net, X, t, w, Xv, tv, classes

    def _split(self, X: Any, t: Any, w: Any, fraction: float, seed: Any, *, host_index: bool = False) -> tuple:
        """``validation_split``: a seeded random ``fraction`` of the rows of ``X``, ``t`` (and ``w``) held
        out, as ``(X, t, w, X_val, t_val)``. ``host_index``: index with host integers (Dask keeps its
        chunk sizes known so)."""
        n = X.shape[0]
        n_val = max(1, round(n * fraction))
        if n - n_val < 1:
            msg = f"validation_split={fraction} leaves no training rows out of {n}"
            raise ValueError(msg)
        order = np.random.default_rng(seed).permutation(n)
        val_idx, tr_idx = order[:n_val], order[n_val:]
        if not host_index:
            val_idx, tr_idx = (B.from_numpy(i, self.backend, self._native) for i in (val_idx, tr_idx))
        xp = self.xp
        return (
            sparse.take_rows(X, tr_idx, xp),
            xp.take(t, tr_idx, axis=0),
            None if w is None else xp.take(w, tr_idx, axis=0),
            sparse.take_rows(X, val_idx, xp),
            xp.take(t, val_idx, axis=0),
        )

    def with_layers(self, layers: Any) -> Network:
        """A shallow copy of this network (configuration, place, classes) holding ``layers``
        (``[(W, b | None), ...]`` on its backend): what a callback sees mid-fit."""
        view = Network.__new__(Network)
        view.__dict__.update(self.__dict__)
        view.layers = layers
        return view

    def _initial_layers(self) -> Any:
        host = initialisers.draw(self.init, self.sizes, self.seed)
        return self._to_device([(W, b if self.bias else None) for W, b in host], B.dtype_name(self.dtype))

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


def _two_classes(known: np.ndarray, label: str) -> None:
    """A one-output network separates two classes: refuse one (``predict_classes`` could not name the other)."""
    if known.size < 2:
        found = repr(known.tolist()[0]) if known.size else "none"
        msg = (
            f"{label} holds a single class ({found}) but a one-output network needs two to tell apart; "
            "give labels of both classes, or pass both to fit as classes=[...]"
        )
        raise ValueError(msg)
