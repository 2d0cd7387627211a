"""Activation functions, each beside its vector-Jacobian product, in a registry keyed by name.

An activation owns all its forms, side by side:

- pure (Array API, every backend): ``f(z, *, xp) -> y`` and ``vjp(z, y, grad_y, *, xp) -> grad_z``;
- optionally in place, for the buffer engine (NumPy, CuPy, PyTorch ``out=``):
  ``f_out(ops, z, out) -> y`` writes ``f(z)`` into ``out`` (or returns ``z`` itself for the identity)
  and ``vjp_out(ops, z, y, g, q) -> g`` writes ``g * f'(z)`` over ``g``, with ``q`` as scratch.
  ``ops`` is ``anynet.engines.buffer_ops.BufferOps``. An engine that finds no in-place form uses the pure one.
- optionally fused, for a GPU: ``kernel_f`` (``z -> y``) and ``kernel_vjp`` (``z, y -> g``, over
  ``g``), ``anynet.kernels.Kernel`` bodies that CuPy compiles into one element-wise pass each.
- optionally as ONNX operators, for export (``anynet.onnx``): ``onnx(g, z) -> y`` writes ``f`` with
  ``g.node(op_type, *inputs, **attributes)`` and ``g.constant(value)`` (each returns the name of its
  output; ``g.dtype`` is the graph's float, ``"float32"`` or ``"float64"``) and returns the name of
  ``y``. An activation without it cannot be exported.

Elementwise activations write the derivative in terms of whichever of ``z`` and ``y`` is cheaper
(the seed's ``y*(1-y)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .kernels import Kernel


@dataclass(frozen=True)
class Activation:
    name: str
    f: Callable[..., Any]
    vjp: Callable[..., Any]
    f_out: Callable[..., Any] | None = None
    vjp_out: Callable[..., Any] | None = None
    kernel_f: Kernel | None = None
    kernel_vjp: Kernel | None = None
    onnx: Callable[..., str] | None = None


def _kernels(name: str, f: str, vjp: str) -> dict[str, Kernel]:
    """An activation's fused pair: ``f`` computes ``y`` from ``z``; ``vjp`` rewrites ``g``."""
    return {"kernel_f": Kernel(name, "T z", "T y", f), "kernel_vjp": Kernel(f"{name}_vjp", "T z, T y", "T g", vjp)}


# ``maximum(z, 0)`` keeps a NaN; C's fmax would drop it
_RELU = "where(z != z, z, where(z > 0, z, 0))"


def _sigmoid(z, *, xp):
    # 1/(1+exp(-z)) overflows exp for z below about -709; tanh never does and costs the same ops.
    return 0.5 * xp.tanh(0.5 * z) + 0.5


def _sigmoid_vjp(z, y, g, *, xp):
    return g * (y * (1 - y))


def _sigmoid_out(ops, z, out):
    return ops.sigmoid(z, out=out)


def _sigmoid_vjp_out(ops, z, y, g, q):
    ops.subtract(1, y, out=q)
    ops.multiply(y, q, out=q)
    return ops.multiply(g, q, out=g)


def _sigmoid_onnx(g, z):
    return g.node("Sigmoid", z)


def _tanh(z, *, xp):
    return xp.tanh(z)


def _tanh_vjp(z, y, g, *, xp):
    return g * (1 - y * y)


def _tanh_out(ops, z, out):
    return ops.tanh(z, out=out)


def _tanh_vjp_out(ops, z, y, g, q):
    ops.multiply(y, y, out=q)
    ops.subtract(1, q, out=q)
    return ops.multiply(g, q, out=g)


def _tanh_onnx(g, z):
    return g.node("Tanh", z)


def _relu(z, *, xp):
    return xp.maximum(z, 0)


def _relu_vjp(z, y, g, *, xp):
    # a scalar 0 (standard since 2024.12): NumPy's where with a zeros_like array costs twice as much
    return xp.where(z > 0, g, 0.0)


def _relu_out(ops, z, out):
    return ops.maximum(z, 0, out=out)


def _relu_vjp_out(ops, z, y, g, q):
    return ops.keep_where_positive(g, z, q)


def _relu_onnx(g, z):
    return g.node("Relu", z)


LEAKY_SLOPE = 0.01


def _leaky_relu(z, *, xp):
    return xp.where(z > 0, z, LEAKY_SLOPE * z)


def _leaky_relu_vjp(z, y, g, *, xp):
    return xp.where(z > 0, g, LEAKY_SLOPE * g)


def _leaky_relu_onnx(g, z):
    if g.dtype == "float32":
        return g.node("LeakyRelu", z, alpha=LEAKY_SLOPE)
    # LeakyRelu's alpha is a float32 attribute (0.0099999998 in float64); max(z, slope*z) keeps the slope
    return g.node("Max", z, g.node("Mul", z, g.constant(LEAKY_SLOPE)))


def _softplus(z, *, xp):
    # log(1+e^z) = max(z,0) + log1p(e^-|z|): no overflow for large |z|.
    # an array 0, as in the binary cross-entropy: a CUDA graph can capture this step (no in-place form)
    return xp.maximum(z, xp.zeros_like(z)) + xp.log1p(xp.exp(-xp.abs(z)))


def _softplus_vjp(z, y, g, *, xp):
    return g * _sigmoid(z, xp=xp)


def _softplus_onnx(g, z):
    if g.dtype == "float32":
        return g.node("Softplus", z)
    # ONNX Runtime has no float64 Softplus; ONNX has no log1p, and log(1 + e) is off by at most 2e-16
    tail = g.node("Log", g.node("Add", g.constant(1.0), g.node("Exp", g.node("Neg", g.node("Abs", z)))))
    return g.node("Add", g.node("Relu", z), tail)


def _identity(z, *, xp):
    return z


def _identity_vjp(z, y, g, *, xp):
    return g


def _identity_out(ops, z, out):
    return z


def _identity_vjp_out(ops, z, y, g, q):
    return g


def _identity_onnx(g, z):
    return z


def _exp(z, *, xp):
    return xp.exp(z)


def _exp_vjp(z, y, g, *, xp):
    return g * y


def _exp_onnx(g, z):
    return g.node("Exp", z)


def _softmax(z, *, xp):
    e = xp.exp(z - xp.max(z, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


def _softmax_vjp(z, y, g, *, xp):
    # The Jacobian is diag(y) - y yᵀ, so Jᵀg = y * (g - <g, y>).
    return y * (g - xp.sum(g * y, axis=-1, keepdims=True))


def _softmax_out(ops, z, out):
    ops.subtract(z, ops.row_max(z), out=out)
    ops.exp(out, out=out)
    return ops.divide(out, ops.row_sum(out), out=out)


def _softmax_onnx(g, z):
    return g.node("Softmax", z, axis=-1)


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation(
            "sigmoid",
            _sigmoid,
            _sigmoid_vjp,
            _sigmoid_out,
            _sigmoid_vjp_out,
            **_kernels("sigmoid", "y = 0.5 * tanh(0.5 * z) + 0.5", "g = g * (y * (1 - y))"),
            onnx=_sigmoid_onnx,
        ),
        Activation(
            "tanh",
            _tanh,
            _tanh_vjp,
            _tanh_out,
            _tanh_vjp_out,
            **_kernels("tanh", "y = tanh(z)", "g = g * (1 - y * y)"),
            onnx=_tanh_onnx,
        ),
        Activation(
            "relu",
            _relu,
            _relu_vjp,
            _relu_out,
            _relu_vjp_out,
            **_kernels("relu", f"y = {_RELU}", "g = where(z > 0, g, 0)"),
            onnx=_relu_onnx,
        ),
        # leaky_relu and softplus have no in-place form yet: the buffer engine runs their pure one
        Activation(
            "leaky_relu",
            _leaky_relu,
            _leaky_relu_vjp,
            **_kernels(
                "leaky_relu", f"y = where(z > 0, z, {LEAKY_SLOPE} * z)", f"g = where(z > 0, g, {LEAKY_SLOPE} * g)"
            ),
            onnx=_leaky_relu_onnx,
        ),
        Activation(
            "softplus",
            _softplus,
            _softplus_vjp,
            **_kernels("softplus", f"y = {_RELU} + log1p(exp(-fabs(z)))", "g = g * (0.5 * tanh(0.5 * z) + 0.5)"),
            onnx=_softplus_onnx,
        ),
        Activation("identity", _identity, _identity_vjp, _identity_out, _identity_vjp_out, onnx=_identity_onnx),
        Activation("exp", _exp, _exp_vjp, **_kernels("exp", "y = exp(z)", "g = g * y"), onnx=_exp_onnx),
        Activation("softmax", _softmax, _softmax_vjp, _softmax_out, onnx=_softmax_onnx),
    )
}

# scikit-learn's names, so its users can keep theirs.
ALIASES = {"logistic": "sigmoid", "linear": "identity", "none": "identity"}


def get(name: str) -> Activation:
    """The activation called ``name``; a ValueError lists the valid names otherwise."""
    key = ALIASES.get(name, name) if isinstance(name, str) else name
    if key not in ACTIVATIONS:
        msg = f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}"
        raise ValueError(msg)
    return ACTIVATIONS[key]
