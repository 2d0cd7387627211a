"""The one data intake: what a model is given (inputs, targets, row weights, validation data),
checked and placed once, on the model's backend, device and dtype.

``Network``, ``Ensemble``, the scikit-learn estimators and ``MLPSearchCV`` take their data in here,
as scikit-learn's estimators take theirs through ``validate_data``. A model says what it expects with
a ``Spec`` (its widths, known classes, backend, device and dtype); ``fit_data`` returns a fit's data as
one ``Data``, which knows where it lives. Where a fit trains on data that stays elsewhere (a cluster's
workers), a *site* from the engine registry (``anynet.engines.site_for``) prepares it instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import backend as B
from . import sparse
from ._validate import all_finite, check_shape, host_2d, not_finite_message, same_place, sample_weights
from .batches import Rows
from .tree import tree_map


@dataclass(frozen=True, eq=False)
class Spec:
    """What a model expects of its data, and where it keeps it.

    ``n_in``/``n_out``: the widths of its input and output layers; ``backend``; ``device``: its name
    (``"cpu"``, ``"cuda:0"``); ``native``: the library's own device object; ``xp``: the namespace;
    ``dtype``: ``xp``'s float dtype; ``classes``: the class labels the model knows (sorted), or ``None``.
    """

    n_in: int
    n_out: int
    backend: str
    device: str
    native: Any
    xp: Any
    dtype: Any
    classes: np.ndarray | None = None

    @property
    def dtype_name(self) -> str:
        """``"float32"`` or ``"float64"``."""
        return B.dtype_name(self.dtype)

    def put(self, tree: Any) -> Any:
        """A nested list of host arrays (or other backends' arrays) moved here, numbers cast to this dtype."""
        dtype = self.dtype_name

        def move(x):
            a = B.to_numpy(x)
            if a.dtype.kind in "biuf":
                a = a.astype(dtype)
            return B.from_numpy(a, self.backend, self.native)

        return tree_map(move, tree)


@dataclass(eq=False)
class Data:
    """A fit's data, checked and placed where ``spec`` says: ``X``: ``(n, n_in)`` (SciPy CSR on NumPy
    where it was given sparse), ``t``: ``(n, n_out)`` floats, ``w``: row weights ``(n, 1)`` or ``None``,
    ``X_val``/``t_val`` or ``None``, and ``classes``: the labels ``t`` was encoded against (the spec's
    where nothing new was learned)."""

    spec: Spec
    X: Any
    t: Any
    w: Any = None
    X_val: Any = None
    t_val: Any = None
    classes: Any = None

    backend = property(lambda self: self.spec.backend)
    device = property(lambda self: self.spec.device)
    native = property(lambda self: self.spec.native)
    xp = property(lambda self: self.spec.xp)
    dtype = property(lambda self: self.spec.dtype)

    def rows(self, *, size: int | None, shuffle: bool, rng: np.random.Generator) -> Rows:
        """The training rows as ``anynet.batches.Rows``: batches of ``size`` (``None``: all), in a
        permutation drawn from ``rng`` each epoch when ``shuffle``."""
        return Rows(
            self.X, self.t, self.w, size=size, shuffle=shuffle, rng=rng, backend=self.backend, native=self.native
        )


# --------------------------------------------------------------------------- a fit's data


def place_of(X: Any, t: Any, options: dict, site: Any = None) -> tuple[str, str] | None:
    """Where a fit's arrays live, ``(backend, device)``, or ``None`` for host data (see
    ``_validate.same_place``). ``options``: the fit's, for ``validation_data`` and ``sample_weight``.
    On a ``site`` the targets may come from the host beside ``X``."""
    Xv, tv = options.get("validation_data") or (None, None)
    if site is not None:
        return same_place(X=X, X_val=Xv)
    return same_place(X=X, t=t, X_val=Xv, t_val=tv, sample_weight=options.get("sample_weight"))


def fit_data(spec: Spec, X: Any, t: Any, plan: Any, options: dict, *, seed: Any, site: Any = None) -> Data:
    """A fit's data checked and placed once, for a model of ``spec`` (one network, or a stack of
    networks of its shape). ``plan``: the fit's checked options (``anynet.plans.Plan``: its loss
    and ``validation_split``); ``options``: the fit's own, for ``classes``, ``validation_data`` and
    ``sample_weight``; ``seed``: what ``validation_split`` draws the held-out rows from. ``site``:
    where the rows stay, for data that is not trained on in this process (``anynet.engines.site_for``)."""
    Xv_in, tv_in = options.get("validation_data") or (None, None)
    sample_weight = options.get("sample_weight")
    if site is None:
        X = inputs(X, spec, "X")
        t, classes = targets(t, X.shape[0], plan.loss, spec, options.get("classes"))
    else:
        X, t, classes = site.prepare(spec, X, t, plan.loss, options.get("classes"), sample_weight=sample_weight)
    w = None if sample_weight is None else row_weights(sample_weight, X.shape[0], spec)
    Xv = tv = None
    if plan.validation_split:
        host_index = site is not None and site.host_index
        X, t, w, Xv, tv = split(X, t, w, plan.validation_split, seed, spec, host_index=host_index)
    elif Xv_in is not None and site is not None:
        Xv, tv, _ = site.prepare(spec, Xv_in, tv_in, plan.loss, classes, labels=("X_val", "t_val"))
    elif Xv_in is not None:
        Xv = inputs(Xv_in, spec, "X_val")
        tv, _ = targets(tv_in, Xv.shape[0], plan.loss, spec, classes, label="t_val")
    if site is not None:
        held = site.hold({"X": X, "t": t} | ({} if Xv is None else {"X_val": Xv, "t_val": tv}))
        X, t, Xv, tv = held["X"], held["t"], held.get("X_val"), held.get("t_val")
    return Data(spec, X, t, w, Xv, tv, classes)


# --------------------------------------------------------------------------- the pieces


def inputs(X: Any, spec: Spec, label: str = "X") -> Any:
    """``X`` as a 2-D array ``(n, n_in)`` of the spec's dtype on its device, checked (a SciPy sparse
    ``X`` stays sparse, as CSR, on the NumPy backend)."""
    if sparse.is_sparse(X):
        return sparse.check(X, n_in=spec.n_in, backend=spec.backend, dtype=spec.dtype_name, label=label)
    if B.backend_of(X) not in (None, "numpy"):
        return _device_inputs(X, spec, label)
    a = host_2d(X, label, features=spec.n_in, dtype=spec.dtype_name)
    return B.from_numpy(a, spec.backend, spec.native)


def _device_inputs(X: Any, spec: Spec, label: str) -> Any:
    xp = spec.xp
    X = B.detached(X)  # training must not extend the caller's autograd graph
    if not xp.isdtype(X.dtype, ("real floating", "integral", "bool")):
        msg = f"{label} must be numeric (float, int or bool), got dtype {X.dtype}"
        raise TypeError(msg)
    check_shape(X.shape, label, features=spec.n_in)
    with np.errstate(over="ignore"):  # NumPy-based backends warn on an overflowing cast; reported below
        cast = X if X.dtype == spec.dtype else xp.astype(X, spec.dtype)
        if not all_finite(cast, xp):
            raise ValueError(not_finite_message(X, cast, label))
    return cast


def placed(a: Any, spec: Spec, label: str = "X") -> Any:
    """``a`` (host, or already where the spec lives), already checked for shape, as an array of the
    spec's place and dtype, refused if it is not finite there (a value finite in float64 may overflow
    float32); a SciPy sparse ``a`` stays sparse (CSR) on NumPy."""
    if sparse.is_sparse(a):
        return sparse.check(a, n_in=spec.n_in, backend=spec.backend, dtype=spec.dtype_name)
    if B.backend_of(a) in (None, "numpy"):
        a = np.asarray(a)
        with np.errstate(over="ignore"):  # reported below, with the values that caused it
            cast = B.from_numpy(a.astype(spec.dtype_name), spec.backend, spec.native)
    else:
        a = B.detached(a)
        cast = a if a.dtype == spec.dtype else spec.xp.astype(a, spec.dtype)
    with np.errstate(over="ignore"):  # a lazy backend's cast runs here
        if not all_finite(cast, spec.xp):
            raise ValueError(not_finite_message(a, cast, label))
    return cast


def targets(t: Any, n: int, loss: Any, spec: Spec, classes: Any = None, label: str = "t") -> tuple[Any, Any]:
    """Targets as ``(n, n_out)`` floats on the spec's device, and the class labels they were encoded
    against (``spec.classes`` where nothing new was learned). 1-D labels (or any non-numeric labels)
    are encoded against ``classes``, else ``spec.classes``: one-hot for several outputs, 0/1 for a
    single sigmoid output. ``loss``: an ``anynet.losses.Loss``."""
    known, n_out = spec.classes, spec.n_out
    a = np.asarray(t) if B.backend_of(t) in (None, "numpy") else B.to_numpy(t)
    if a.ndim == 0 or a.ndim > 2:
        msg = f"{label} must be 1-D labels or 2-D (n_samples, n_outputs), got shape {a.shape}"
        raise ValueError(msg)
    if a.shape[0] != n:
        msg = f"{'X_val' if label == 't_val' else 'X'} has {n} rows but {label} has {a.shape[0]}; they must match"
        raise ValueError(msg)
    labels = a.ndim == 1 or (a.ndim == 2 and a.shape[1] == 1 and n_out > 1) or a.dtype.kind not in "biuf"
    if labels and a.ndim == 2 and a.shape[1] != 1:
        msg = f"{label} must be numeric (float, int or bool), or class labels in one column; got dtype {a.dtype}"
        raise TypeError(msg)
    if classes is not None and n_out == 1:
        _two_classes(np.unique(np.asarray(classes)), "classes")
    dtype = spec.dtype_name
    if labels and (loss.classification or n_out > 1 or a.dtype.kind not in "biuf"):
        a, known = encode(a.reshape(-1), classes, spec, label)
        a = a.astype(dtype)
    else:
        # finite in the model's dtype, not only in t's own
        a = host_2d(a.reshape(-1, 1) if a.ndim == 1 else a, label, dtype=dtype)
        if a.shape[1] != n_out:
            msg = f"{label} has {a.shape[1]} columns but the network has {n_out} outputs"
            raise ValueError(msg)
        if loss.nonnegative_targets and (a < 0).any():
            msg = f"loss {loss.name!r} needs non-negative targets (counts, rates), but {label} has {a.min()}"
            raise ValueError(msg)
    return B.from_numpy(a, spec.backend, spec.native), known


def encode(labels: np.ndarray, classes: Any, spec: Spec, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Host ``labels`` ``(n,)`` encoded for the spec's outputs (one-hot, or 0/1 for one output) against
    ``classes``, else the spec's classes, else the labels found; returns ``(encoded, classes)``."""
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        msg = f"{label} holds NaN or infinite labels"
        raise ValueError(msg)
    n_out = spec.n_out
    found = np.unique(labels)
    if classes is not None:
        known = np.unique(np.asarray(classes))
    elif spec.classes is not None:
        known = spec.classes
    else:
        known = found
    missing = np.setdiff1d(found, known)
    if missing.size:
        msg = f"{label} has labels {missing.tolist()[:5]} outside the known classes {known.tolist()[:10]}"
        raise ValueError(msg)
    want = 2 if n_out == 1 else n_out
    if n_out == 1:
        _two_classes(known, label)
    if known.size > want or (classes is None and spec.classes is None and known.size < want and n_out > 1):
        msg = (
            f"{label} has {known.size} classes but the network's {n_out} output(s) fit {want}; "
            "size the output layer to the number of classes, or pass classes=[...] to fit"
        )
        raise ValueError(msg)
    index = np.searchsorted(known, labels)
    if n_out == 1:
        return (index == 1).astype(float).reshape(-1, 1), known
    onehot = np.zeros((labels.shape[0], n_out))
    onehot[np.arange(labels.shape[0]), index] = 1.0
    return onehot, known


def row_weights(sample_weight: Any, n: int, spec: Spec) -> Any:
    """``sample_weight`` checked (see ``_validate.sample_weights``) as ``(n, 1)`` on the spec's device."""
    w = sample_weights(sample_weight, n, spec.dtype_name).reshape(-1, 1)
    return B.from_numpy(w.astype(spec.dtype_name), spec.backend, spec.native)


def split(
    X: Any, t: Any, w: Any, fraction: float, seed: Any, spec: Spec, *, host_index: bool = False
) -> tuple[Any, Any, Any, Any, Any]:
    """``validation_split``: a seeded random ``fraction`` of the rows of ``X``, ``t`` (and ``w``) held
    out, as ``(X, t, w, X_val, t_val)``. ``host_index``: index with host integers (a site's arrays
    keep their chunk sizes known so)."""
    n = X.shape[0]
    n_val = max(1, round(n * fraction))
    if n - n_val < 1:
        msg = f"validation_split={fraction} leaves no training rows out of {n}"
        raise ValueError(msg)
    order = np.random.default_rng(seed).permutation(n)
    val_idx, tr_idx = order[:n_val], order[n_val:]
    if not host_index:
        val_idx, tr_idx = (B.from_numpy(i, spec.backend, spec.native) for i in (val_idx, tr_idx))
    xp = spec.xp
    return (
        sparse.take_rows(X, tr_idx, xp),
        xp.take(t, tr_idx, axis=0),
        None if w is None else xp.take(w, tr_idx, axis=0),
        sparse.take_rows(X, val_idx, xp),
        xp.take(t, val_idx, axis=0),
    )


def _two_classes(known: np.ndarray, label: str) -> None:
    """A one-output network separates two classes: refuse one (``predict_classes`` could not name the other)."""
    if known.size < 2:
        found = repr(known.tolist()[0]) if known.size else "none"
        msg = (
            f"{label} holds a single class ({found}) but a one-output network needs two to tell apart; "
            "give labels of both classes, or pass both to fit as classes=[...]"
        )
        raise ValueError(msg)
