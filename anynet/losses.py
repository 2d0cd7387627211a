"""Losses, each beside its gradient, in a registry keyed by name.

``value(z, y, t, *, xp)`` is a 0-d array. A loss either gives ``grad_y(y, t, *, xp)`` (chained through
the output activation) or, for the softmax/sigmoid pairs, the fused ``grad_z(y, t, *, xp) = (y - t)/n``
computed from the logits ``z``, which is exact and never takes the log of a rounded probability.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Loss:
    name: str
    value: Callable[..., Any]
    grad_y: Callable[..., Any] | None = None
    grad_z: Callable[..., Any] | None = None
    #: the output activation a fused loss needs (its ``grad_z`` assumes it)
    output: str | None = None
    #: whether the targets are class indicators, so accuracy is meaningful
    classification: bool = False
    #: "sum" over the batch (the seed's half_sse) or "mean" per sample: how batch losses add up
    reduction: str = "mean"


def _n(t):
    return t.shape[0]


def _half_sse(z, y, t, *, xp):
    d = y - t
    return 0.5 * xp.sum(d * d)


def _half_sse_grad(y, t, *, xp):
    return y - t


def _mse(z, y, t, *, xp):
    d = y - t
    return xp.mean(d * d)


def _mse_grad(y, t, *, xp):
    return (2 / (t.shape[0] * t.shape[1])) * (y - t)


def _half_mse(z, y, t, *, xp):
    d = y - t
    return (0.5 / _n(t)) * xp.sum(d * d)


def _half_mse_grad(y, t, *, xp):
    return (1 / _n(t)) * (y - t)


def _bce(z, y, t, *, xp):
    # -t log σ(z) - (1-t) log(1-σ(z)) = max(z,0) - z t + log1p(e^-|z|), finite for any z.
    per = xp.maximum(z, 0) - z * t + xp.log1p(xp.exp(-xp.abs(z)))
    return xp.sum(per) / _n(t)


def _ce(z, y, t, *, xp):
    shifted = z - xp.max(z, axis=-1, keepdims=True)
    log_p = shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))
    return -xp.sum(t * log_p) / _n(t)


def _fused_grad(y, t, *, xp):
    return (1 / _n(t)) * (y - t)


LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        Loss("half_sse", _half_sse, grad_y=_half_sse_grad, reduction="sum"),
        Loss("mse", _mse, grad_y=_mse_grad),
        Loss("half_mse", _half_mse, grad_y=_half_mse_grad),
        Loss("binary_cross_entropy", _bce, grad_z=_fused_grad, output="sigmoid", classification=True),
        Loss("cross_entropy", _ce, grad_z=_fused_grad, output="softmax", classification=True),
    )
}

ALIASES = {
    "sse": "half_sse",
    "squared_error": "half_mse",
    "bce": "binary_cross_entropy",
    "log_loss": "cross_entropy",
    "categorical_cross_entropy": "cross_entropy",
}


def get(name: str) -> Loss:
    """The loss called ``name``; a ValueError lists the valid names otherwise."""
    key = ALIASES.get(name, name) if isinstance(name, str) else name
    if key not in LOSSES:
        msg = f"unknown loss {name!r}; expected one of {sorted(LOSSES)}"
        raise ValueError(msg)
    return LOSSES[key]
