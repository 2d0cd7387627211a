"""Losses, each beside its gradient, in a registry keyed by name; and the L2 penalty.

A loss owns all its forms, side by side:

- pure (Array API): ``value(z, y, t, *, xp, w=None)`` is a 0-d array, or one value per member ``(k,)``
  for a stack of networks' outputs ``(k, n, n_out)`` (the targets ``(n, n_out)`` are shared). A loss
  either gives ``grad_y(y, t, *, xp, w=None)`` (chained through the output activation) or, for the
  canonical pairs (softmax, sigmoid, exp), the fused ``grad_z(y, t, *, xp, w=None) = (y - t)/n``; their
  values are computed from the logits ``z``, which is exact and never takes the log of a rounded
  probability. ``w``: ``(n, 1)`` per-row weights, scikit-learn's ``sample_weight``: each row's term is
  multiplied by its weight and a mean over rows becomes the weighted mean ``Σ w·l / Σ w`` (a sum
  stays a sum). For a stack, ``w`` may also be ``(..., n, 1)``, one set of rows per member.
- optionally in place, for the buffer engine: ``grad_out(ops, z, y, t, g) -> value`` writes the
  unweighted gradient (``grad_z`` if the loss has a fused one, else ``grad_y``) into the buffer ``g``
  and returns the value (one per member for a stack). ``ops`` is ``anynet.engines.buffer_ops.BufferOps``.
  Without it, or with row weights, the engine uses the pure form.
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
    #: whether targets must be non-negative (counts, rates): checked where targets come in
    nonnegative_targets: bool = False
    grad_out: Callable[..., Any] | None = None


def rows(t, w, *, xp, keepdims=False):
    """What a mean over rows divides by: ``n``, or ``Σ w`` for weighted rows. Row weights ``(n, 1)``
    are shared by a stack's members; stacked ones ``(..., n, 1)`` (each member its own rows, as a
    cross-validation fold's mask) give one sum per member, ``(...)``, or ``(..., 1, 1)`` with
    ``keepdims`` (for scaling a gradient)."""
    if w is None:
        return t.shape[-2]
    if w.ndim == 2:
        return xp.sum(w)
    return xp.sum(w, axis=(-2, -1), keepdims=keepdims)


def _n(t, w, xp):
    return rows(t, w, xp=xp)


def _n_grad(t, w, xp):
    return rows(t, w, xp=xp, keepdims=True)


def _total(a, *, xp):
    """The sum over a batch's rows and columns: per member for a stack."""
    return xp.sum(a, axis=(-2, -1))


def _w(a, w):
    """Each row of ``a`` times its weight (``a`` itself without weights)."""
    return a if w is None else w * a


def _half_sse(z, y, t, *, xp, w=None):
    d = y - t
    return 0.5 * _total(_w(d * d, w), xp=xp)


def _half_sse_grad(y, t, *, xp, w=None):
    return _w(y - t, w)


def _mse(z, y, t, *, xp, w=None):
    d = y - t
    if w is None:
        return xp.mean(d * d, axis=(-2, -1))
    return _total(w * (d * d), xp=xp) / (_n(t, w, xp) * t.shape[-1])


def _mse_grad(y, t, *, xp, w=None):
    return (2 / (_n_grad(t, w, xp) * t.shape[-1])) * _w(y - t, w)


def _half_mse(z, y, t, *, xp, w=None):
    d = y - t
    return (0.5 / _n(t, w, xp)) * _total(_w(d * d, w), xp=xp)


def _half_mse_grad(y, t, *, xp, w=None):
    return (1 / _n_grad(t, w, xp)) * _w(y - t, w)


def _bce(z, y, t, *, xp, w=None):
    # -t log σ(z) - (1-t) log(1-σ(z)) = max(z,0) - z t + log1p(e^-|z|), finite for any z. The 0 is an
    # array: a Python 0 becomes a host-to-device copy on torch, which a CUDA graph cannot capture.
    per = xp.maximum(z, xp.zeros_like(z)) - z * t + xp.log1p(xp.exp(-xp.abs(z)))
    return _total(_w(per, w), xp=xp) / _n(t, w, xp)


def _ce(z, y, t, *, xp, w=None):
    shifted = z - xp.max(z, axis=-1, keepdims=True)
    log_p = shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))
    return -_total(_w(t * log_p, w), xp=xp) / _n(t, w, xp)


def _poisson(z, y, t, *, xp, w=None):
    # scikit-learn's half Poisson deviance t log(t/y) - t + y with y = e^z, so log y is z itself;
    # t log t is 0 at t = 0 (and log sees 1 there, so nothing warns).
    t_log_t = t * xp.log(xp.where(t > 0, t, xp.ones_like(t)))
    return _total(_w(t_log_t - t * z - t + y, w), xp=xp) / _n(t, w, xp)


def _fused_grad(y, t, *, xp, w=None):
    return (1 / _n_grad(t, w, xp)) * _w(y - t, w)


# --------------------------------------------------------------------------- in-place forms


def _half_sse_out(ops, z, y, t, g):
    ops.subtract(y, t, out=g)
    return 0.5 * ops.inner(g, g)


def _mse_out(ops, z, y, t, g):
    ops.subtract(y, t, out=g)
    size = t.shape[-2] * t.shape[-1]
    value = ops.inner(g, g) / size
    ops.multiply(g, 2 / size, out=g)
    return value


def _half_mse_out(ops, z, y, t, g):
    ops.subtract(y, t, out=g)
    value = (0.5 / t.shape[-2]) * ops.inner(g, g)
    ops.multiply(g, 1 / t.shape[-2], out=g)
    return value


def _bce_out(ops, z, y, t, g):
    ops.subtract(y, t, out=g)
    ops.multiply(g, 1 / t.shape[-2], out=g)
    return _bce(z, y, t, xp=ops.xp)


def _ce_out(ops, z, y, t, g):
    # -Σ t·log_softmax(z)/n with log_softmax(z) = z - max(z) - log Σe^(z - max z). The softmax's
    # largest entry is e^0/Σ, so log Σ = -log(max y): no second pass of exp over z.
    shift = ops.subtract(ops.row_max(z), ops.log(ops.row_max(y)))
    value = (ops.inner(ops.row_sum(t), shift) - ops.inner(t, z)) / t.shape[-2]
    ops.subtract(y, t, out=g)
    ops.multiply(g, 1 / t.shape[-2], out=g)
    return value


# --------------------------------------------------------------------------- the L2 penalty


def l2(layers, grads, scale, *, xp):
    """scikit-learn's L2 penalty, ``scale = alpha / n``: the value ``0.5 * scale * ΣW²`` to add to the
    loss and the gradients with ``scale * W`` added (biases are not penalised), as new arrays. For a
    stack, ``scale`` may be ``(k, 1, 1)`` (or ``(G, m, 1, 1)``, ``(G, 1, 1, 1)``) and the value is per member."""
    squares = sum(_total(W * W, xp=xp) for W, _ in layers)
    # a per-member scale (..., 1, 1) drops its two matrix axes to meet the per-member sums
    value = 0.5 * (scale[..., 0, 0] if getattr(scale, "ndim", 0) >= 2 else scale) * squares
    grads = [(gw + scale * W, gb) for (W, _), (gw, gb) in zip(layers, grads, strict=True)]
    return value, grads


def l2_out(ops, layers, grads, scale):
    """``l2`` in place: adds ``scale * W`` into each ``grad_w`` and returns the value to add (one
    per member for a stack, whose ``scale`` may be per member)."""
    if layers[0][0].ndim == 2:
        value = 0.5 * scale * sum(ops.vdot(W, W) for W, _ in layers)
    else:
        squares = sum(_total(W * W, xp=ops.xp) for W, _ in layers)
        value = 0.5 * (scale[..., 0, 0] if getattr(scale, "ndim", 0) >= 2 else scale) * squares
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
        Loss("poisson", _poisson, grad_z=_fused_grad, output="exp", nonnegative_targets=True),
    )
}

ALIASES = {
    "sse": "half_sse",
    "squared_error": "half_mse",
    "bce": "binary_cross_entropy",
    "log_loss": "cross_entropy",
    "categorical_cross_entropy": "cross_entropy",
    "half_poisson": "poisson",
}


def get(name: str) -> Loss:
    """The loss called ``name``; a ValueError lists the valid names otherwise."""
    key = ALIASES.get(name, name) if isinstance(name, str) else name
    if key not in LOSSES:
        msg = f"unknown loss {name!r}; expected one of {sorted(LOSSES)}"
        raise ValueError(msg)
    return LOSSES[key]
