"""SciPy sparse input (CSR, CSC) on the NumPy backend, never densified whole: the first layer's
``X @ W`` and its weight gradient ``X.T @ grad_z`` are SciPy's sparse products, and mini-batches are
row slices of CSR. Other backends refuse sparse input with an error that names the ones that take it.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from ._validate import check_shape

#: the backends whose training takes a SciPy sparse ``X``
BACKENDS = ("numpy",)


def is_sparse(x: Any) -> bool:
    """Whether ``x`` is a SciPy sparse matrix or array (without importing SciPy when nothing has)."""
    sp = sys.modules.get("scipy.sparse")
    return sp is not None and sp.issparse(x)


def check(X: Any, *, n_in: int, backend: str, dtype: str, label: str = "X") -> Any:
    """``X`` as a CSR matrix of ``dtype`` (the format that slices rows), with its shape and values checked."""
    if backend not in BACKENDS:
        msg = (
            f"{label} is a SciPy sparse matrix, which trains on backend {' or '.join(map(repr, BACKENDS))} "
            f"only, but this model computes on {backend!r}; use backend='numpy', or pass {label}.toarray()"
        )
        raise ValueError(msg)
    check_shape(X.shape, label, features=n_in, kind="a sparse array of ")
    if X.dtype == object or X.dtype.kind not in "biuf":
        msg = f"{label} must be numeric (float, int or bool), got dtype {X.dtype}"
        raise TypeError(msg)
    X = X.tocsr()
    if X.dtype != dtype:
        X = X.astype(dtype)
    if not np.isfinite(X.data).all():
        msg = f"{label} holds NaN or infinite values; clean or impute them first"
        raise ValueError(msg)
    return X


def take_rows(X: Any, index: Any, xp: Any) -> Any:
    """Rows ``index`` of ``X``: CSR row indexing for sparse ``X``, ``xp.take`` otherwise."""
    return X[index] if is_sparse(X) else xp.take(X, index, axis=0)
