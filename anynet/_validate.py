"""Checks at the public boundary: turn what a user passed into a 2-D float array on the network's
backend, or raise an error that says what was expected, what was given and what to do."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import backend as B


def kind_of(x: Any) -> str:
    """How an error message names where an array lives: ``"cupy array on cuda:0"``, ``"list"``."""
    name = B.backend_of(x)
    if name is None:
        return type(x).__name__
    return f"{name} array on {B.device_of(x)}"


def same_place(**arrays: Any) -> tuple[str, str] | None:
    """The one ``(backend, device)`` that all the non-host inputs share, or ``None`` if all are host
    data (NumPy arrays, lists). Inputs from two libraries or devices raise a ValueError naming both."""
    seen: dict[tuple[str, str], str] = {}
    for label, x in arrays.items():
        if x is None:
            continue
        name = B.backend_of(x)
        if name is None or name == "numpy":
            continue
        seen.setdefault((name, B.device_of(x)), label)
    placed = {(n, d): lbl for (n, d), lbl in seen.items()}
    if len(placed) > 1:
        parts = [f"{lbl} is a {kind_of(arrays[lbl])}" for lbl in placed.values()]
        msg = f"inputs live in different places: {', '.join(parts)}; put them on one backend and device"
        raise ValueError(msg)
    hosts = [lbl for lbl, x in arrays.items() if x is not None and B.backend_of(x) == "numpy"]
    if placed and hosts:
        (name, dev), lbl = next(iter(placed.items()))
        msg = (
            f"inputs live in different places: {lbl} is a {name} array on {dev} but "
            f"{hosts[0]} is a numpy array; put them on one backend and device"
        )
        raise ValueError(msg)
    return next(iter(placed), None)


def check_shape(shape: Any, label: str, *, features: int | None = None, kind: str = "") -> None:
    """A ValueError unless ``shape`` is 2-D, with at least one row and (when given) ``features``
    columns; ``kind`` names the container in the message (``"a sparse array of "``)."""
    shape = tuple(shape)
    if len(shape) != 2:
        hint = f"; reshape a single feature with {label}.reshape(-1, 1)" if len(shape) == 1 else ""
        msg = f"{label} must be 2-D (n_samples, n_features), got {kind}shape {shape}{hint}"
        raise ValueError(msg)
    if shape[0] == 0:
        msg = f"{label} is empty (shape {shape}); need at least one row"
        raise ValueError(msg)
    if features is not None and shape[1] != features:
        msg = f"{label} has {shape[1]} features but the network expects {features}"
        raise ValueError(msg)


def host_2d(
    x: Any, label: str, *, allow_1d: bool = False, features: int | None = None, dtype: str | None = None
) -> np.ndarray:
    """A host view of ``x`` with its shape and dtype checked (used for host data before transfer).

    ``features`` is the number of columns expected. With ``dtype`` (``"float32"``, ``"float64"``) the
    result is cast to it, and checked for finiteness after the cast: a value finite in float64 may
    not be in float32."""
    a = np.asarray(x) if B.backend_of(x) in (None, "numpy") else B.to_numpy(x)
    if a.dtype == object or a.dtype.kind not in "biuf":
        msg = f"{label} must be numeric (float, int or bool), got dtype {a.dtype}"
        raise TypeError(msg)
    if a.ndim == 1 and allow_1d:
        return a
    check_shape(a.shape, label, features=features)
    if a.shape[1] == 0:
        msg = f"{label} has no columns (shape {a.shape}); need at least one"
        raise ValueError(msg)
    cast = a
    if dtype is not None:
        with np.errstate(over="ignore"):  # an overflow is reported below, with the values that caused it
            cast = a.astype(dtype, copy=False)
    if cast.dtype.kind == "f" and not all_finite(cast, np):
        raise ValueError(not_finite_message(a, cast, label))
    return cast


def not_finite_message(original: Any, cast: Any, label: str) -> str:
    """Why ``cast`` (``original`` in the network's dtype) holds NaN or infinity: the data's own, or
    values too large for the dtype. Runs only on the error path, so it reads both back to the host."""
    a, c = B.to_numpy(original), B.to_numpy(cast)
    bad = int(a.size - np.isfinite(a).sum()) if a.dtype.kind == "f" else 0
    if bad:
        return f"{label} holds {bad} NaN or infinite value(s); clean or impute them first"
    over = int(c.size - np.isfinite(c).sum())
    largest = float(np.max(np.abs(a)))
    advice = "scale the data or use dtype='float64'" if c.dtype == np.float32 else "scale the data"
    return f"{label} holds {over} value(s) too large for {c.dtype} (largest magnitude {largest:g}); {advice}"


def sample_weights(sample_weight: Any, n: int, dtype: str | None = None) -> np.ndarray:
    """``sample_weight`` as a host float array ``(n,)``: finite, non-negative, not all zero; with
    ``dtype`` (the network's), also in that dtype, summed as well, and with no positive weight lost to 0."""
    w = np.asarray(sample_weight) if B.backend_of(sample_weight) in (None, "numpy") else B.to_numpy(sample_weight)
    if w.dtype == object or w.dtype.kind not in "biuf":
        msg = f"sample_weight must be numeric, got dtype {w.dtype}"
        raise TypeError(msg)
    if w.ndim != 1 or w.shape[0] != n:
        msg = f"sample_weight must be 1-D with one weight per row of X ({n}), got shape {w.shape}"
        raise ValueError(msg)
    w = w.astype(np.float64)
    if not np.isfinite(w).all() or (w < 0).any():
        msg = "sample_weight must be finite and non-negative; a row to leave out gets weight 0"
        raise ValueError(msg)
    if not w.any():
        msg = "sample_weight is zero for every row, so there is nothing to learn from; give some rows a positive weight"
        raise ValueError(msg)
    if dtype is not None:
        with np.errstate(over="ignore"):
            cast = w.astype(dtype)
            total = np.sum(cast, dtype=dtype)
        if not np.isfinite(cast).all() or not np.isfinite(total):
            msg = (
                f"sample_weight is too large for {dtype} (largest {w.max():.3g}, sum {w.sum():.3g}); "
                "scale the weights down: only their ratios matter to a mean loss"
            )
            raise ValueError(msg)
        lost = (w > 0) & (cast == 0)
        if lost.any():
            msg = (
                f"sample_weight has {int(lost.sum())} positive weight(s) too small for {dtype} (smallest "
                f"{w[w > 0].min():.3g}), which would count as 0; scale the weights up"
            )
            raise ValueError(msg)
    return w


def all_finite(x: Any, xp: Any) -> bool:
    """Whether ``x`` holds no NaN or infinity, without an ``x``-sized temporary: the min and the max
    are finite exactly when every element is (NaN propagates through both)."""
    if 0 in x.shape:
        return True
    return bool(xp.isfinite(xp.min(x)) & xp.isfinite(xp.max(x)))


def positive_int(value: Any, label: str, *, allow_zero: bool = False, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    low = 0 if allow_zero else 1
    if not ok or value < low:
        what = "a non-negative integer" if allow_zero else "a positive integer"
        msg = f"{label} must be {what}, got {value!r}"
        raise ValueError(msg)
    return int(value)


def positive_float(value: Any, label: str, *, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    # a number, not text that reads as one (lr="0.1" trained before) nor a bool
    wrong_type = isinstance(value, (bool, str, bytes)) or not isinstance(value, (int, float, np.number))
    if wrong_type or not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        what = "a non-negative finite number" if allow_zero else "a positive finite number"
        msg = f"{label} must be {what}, got {value!r}"
        raise ValueError(msg)
    return v
