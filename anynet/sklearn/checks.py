"""scikit-learn's checks of the data an estimator is given, on any backend: host data through
``validate_data``, as scikit-learn checks it; another library's arrays where they live, with the same
checks and messages."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_array, validate_data

from .. import backend as B
from .. import sparse
from .._validate import all_finite, kind_of, same_place
from .networks import device_name


def where(est: BaseEstimator, X: Any, y: Any = None) -> tuple[str, str] | None:
    """Where the arrays live (``None`` for host data), checked against ``est.backend``/``est.device``."""
    place = same_place(X=X, y=y)
    if place is None:
        return None
    backend = place[0] if est.backend is None else est.backend
    if backend != place[0] or (est.device is not None and device_name(backend, est.device) != place[1]):
        msg = (
            f"X is a {kind_of(X)} but this estimator was made with backend={est.backend!r}, "
            f"device={est.device!r}; pass NumPy arrays or arrays on that backend and device, "
            "or leave backend and device as None so that the model follows the data"
        )
        raise ValueError(msg)
    return place


def check_X(est: BaseEstimator, X: Any, place: tuple[str, str] | None, *, reset: bool, backend: str) -> Any:
    """``X`` checked as scikit-learn checks it: a NumPy array for host data, else the same array.
    ``reset``: a first fit (``n_features_in_`` is set, else checked); ``backend``: where host data
    computes (for which sparse formats pass)."""
    if place is None:
        return validate_data(
            est, X, accept_sparse=sparse_formats(X, backend), dtype=(np.float64, np.float32), reset=reset
        )
    xp = B.namespace_for(place[0])
    if not xp.isdtype(X.dtype, ("real floating", "integral", "bool")):
        msg = f"X must hold real numbers (float, int or bool), got dtype {X.dtype}"
        raise ValueError(msg)
    if X.ndim != 2:
        msg = f"Expected a 2-D X of shape (n_samples, n_features), got shape {tuple(X.shape)}"
        raise ValueError(msg)
    if X.shape[0] < 1 or X.shape[1] < 1:
        msg = f"Found array with shape {tuple(X.shape)}; a minimum of 1 sample and 1 feature is required"
        raise ValueError(msg)
    if xp.isdtype(X.dtype, "real floating") and not all_finite(X, xp):
        msg = "Input X contains NaN or infinity; clean or impute it first"
        raise ValueError(msg)
    if reset:
        est.n_features_in_ = int(X.shape[1])
        if hasattr(est, "feature_names_in_"):
            del est.feature_names_in_
    elif X.shape[1] != est.n_features_in_:
        msg = (
            f"X has {X.shape[1]} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input."
        )
        raise ValueError(msg)
    return X


def check_Xy(
    est: BaseEstimator, X: Any, y: Any, place: tuple[str, str] | None, *, reset: bool, y_numeric: bool, backend: str
) -> tuple[Any, np.ndarray]:
    """``(X, y)``: ``X`` as ``check_X`` leaves it, ``y`` as a host NumPy array (it is small)."""
    if place is None:
        dtype, formats = (np.float64, np.float32), sparse_formats(X, backend)
        return validate_data(
            est, X, y, accept_sparse=formats, multi_output=True, y_numeric=y_numeric, dtype=dtype, reset=reset
        )
    X = check_X(est, X, place, reset=reset, backend=backend)
    y = check_array(
        B.to_numpy(y), ensure_2d=False, dtype=np.float64 if y_numeric else None, input_name="y", estimator=est
    )
    if y.shape[0] != X.shape[0]:
        msg = f"Found input variables with inconsistent numbers of samples: {[X.shape[0], y.shape[0]]}"
        raise ValueError(msg)
    return X, y


def sparse_formats(X: Any, backend: str) -> list[str]:
    """The sparse formats ``validate_data`` may pass on: CSR and CSC where ``backend`` takes them;
    elsewhere a sparse ``X`` gets an error naming the backends that do."""
    if backend in sparse.BACKENDS:
        return ["csr", "csc"]
    if sparse.is_sparse(X):
        msg = (
            f"X is a SciPy sparse matrix, which trains on backend {' or '.join(map(repr, sparse.BACKENDS))} "
            f"only, but this estimator computes on {backend!r}; pass backend='numpy', or X.toarray()"
        )
        raise ValueError(msg)
    return []
