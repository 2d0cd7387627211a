"""Losses, each beside its gradient, in a registry keyed by name; and the L2 penalty.

A loss owns all its forms, side by side:

- pure (Array API): ``value(z, y, t, *, xp)`` is a 0-d array, or one value per member ``(k,)`` for a
  stack of networks' outputs ``(k, n, n_out)`` (the targets ``(n, n_out)`` are shared). A loss either gives
  ``grad_y(y, t, *, xp)`` (chained through the output activation) or, for the softmax/sigmoid pairs,
  the fused ``grad_z(y, t, *, xp) = (y - t)/n``; their values are computed from the logits ``z``,
  which is exact and never takes the log of a rounded probability.
- optionally in place, for the buffer engine: ``grad_out(ops, z, y, t, g) -> value`` writes the
  gradient (``grad_z`` if the loss has a fused one, else ``grad_y``) into the buffer ``g`` and
  returns the value. ``ops`` is ``anynet.backend.BufferOps``. Without it the engine uses the pure form.
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
    grad_out: Callable[..., Any] | None = None


def _n(t):
    return t.shape[-2]


def _total(a, *, xp):
    """The sum over a batch's rows and columns: per member for a stack."""
    return xp.sum(a, axis=(-2, -1))


def _half_sse(z, y, t, *, xp):
    d = y - t
    return 0.5 * _total(d * d, xp=xp)


def _half_sse_grad(y, t, *, xp):
    return y - t


def _mse(z, y, t, *, xp):
    d = y - t
    return xp.mean(d * d, axis=(-2, -1))


def _mse_grad(y, t, *, xp):
    return (2 / (t.shape[-2] * t.shape[-1])) * (y - t)


def _half_mse(z, y, t, *, xp):
    d = y - t
    return (0.5 / _n(t)) * _total(d * d, xp=xp)


def _half_mse_grad(y, t, *, xp):
    return (1 / _n(t)) * (y - t)


def _bce(z, y, t, *, xp):
    # -t log σ(z) - (1-t) log(1-σ(z)) = max(z,0) - z t + log1p(e^-|z|), finite for any z.
    per = xp.maximum(z, 0) - z * t + xp.log1p(xp.exp(-xp.abs(z)))
    return _total(per, xp=xp) / _n(t)


def _ce(z, y, t, *, xp):
    shifted = z - xp.max(z, axis=-1, keepdims=True)
    log_p = shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))
    return -_total(t * log_p, xp=xp) / _n(t)


def _fused_grad(y, t, *, xp):
    return (1 / _n(t)) * (y - t)


# --------------------------------------------------------------------------- in-place forms


def _half_sse_out(ops, z, y, t, g):
    ops.subtract(y, t, out=g)
    return 0.5 * ops.vdot(g, g)


def _mse_out(ops, z, y, t, g):
    ops.subtract(y, t, out=g)
    size = t.shape[0] * t.shape[1]
    value = ops.vdot(g, g) / size
    ops.multiply(g, 2 / size, out=g)
    return value


def _half_mse_out(ops, z, y, t, g):
    ops.subtract(y, t, out=g)
    value = (0.5 / _n(t)) * ops.vdot(g, g)
    ops.multiply(g, 1 / _n(t), out=g)
    return value


def _bce_out(ops, z, y, t, g):
    ops.subtract(y, t, out=g)
    ops.multiply(g, 1 / _n(t), out=g)
    return _bce(z, y, t, xp=ops.xp)


def _ce_out(ops, z, y, t, g):
    # -Σ t·log_softmax(z)/n with log_softmax(z) = z - max(z) - log Σe^(z - max z). The softmax's
    # largest entry is e^0/Σ, so log Σ = -log(max y): no second pass of exp over z.
    shift = ops.subtract(ops.row_max(z), ops.log(ops.row_max(y)))
    value = (ops.vdot(ops.row_sum(t), shift) - ops.vdot(t, z)) / _n(t)
    ops.subtract(y, t, out=g)
    ops.multiply(g, 1 / _n(t), out=g)
    return value


# --------------------------------------------------------------------------- the L2 penalty


def l2(layers, grads, scale, *, xp):
    """scikit-learn's L2 penalty, ``scale = alpha / n``: the value ``0.5 * scale * ΣW²`` to add to the
    loss and the gradients with ``scale * W`` added (biases are not penalised), as new arrays. For a
    stack, ``scale`` may be ``(k, 1, 1)`` and the value is per member."""
    squares = sum(_total(W * W, xp=xp) for W, _ in layers)
    value = 0.5 * (xp.reshape(scale, squares.shape) if getattr(scale, "ndim", 0) else scale) * squares
    grads = [(gw + scale * W, gb) for (W, _), (gw, gb) in zip(layers, grads, strict=True)]
    return value, grads


def l2_out(ops, layers, grads, scale):
    """``l2`` in place: adds ``scale * W`` into each ``grad_w`` and returns the value to add."""
    value = 0.5 * scale * sum(ops.vdot(W, W) for W, _ in layers)
    for (W, _), (gw, _) in zip(layers, grads, strict=True):
        gw += scale * W
    return value


LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        Loss("half_sse", _half_sse, grad_y=_half_sse_grad, reduction="sum", grad_out=_half_sse_out),
        Loss("mse", _mse, grad_y=_mse_grad, grad_out=_mse_out),
        Loss("half_mse", _half_mse, grad_y=_half_mse_grad, grad_out=_half_mse_out),
        Loss(
            "binary_cross_entropy",
            _bce,
            grad_z=_fused_grad,
            output="sigmoid",
            classification=True,
            grad_out=_bce_out,
        ),
        Loss("cross_entropy", _ce, grad_z=_fused_grad, output="softmax", classification=True, grad_out=_ce_out),
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
