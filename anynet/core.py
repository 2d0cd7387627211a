"""The pure core: forward pass, backprop and the plain gradient-descent update.

Arrays in, new arrays out; the namespace ``xp`` is passed in and nothing here names an array
library, draws random numbers, mutates its inputs or reads values back to the host. A network's
parameters are ``layers``: a list of ``(W, b)`` with ``W`` shaped ``(n_in, n_out)`` and ``b`` shaped
``(n_out,)`` or ``None``; ``acts`` holds one activation (see ``activations``) per layer.

The same functions train ``k`` networks of one shape at once (``anynet.Ensemble``): stacked on a
leading axis, ``W`` is ``(k, n_in, n_out)`` and ``b`` ``(k, 1, n_out)``, ``X @ W`` broadcasts a shared
batch to ``(k, n, n_out)``, every loss comes back as one value per member ``(k,)``, and per-member
hyperparameters (``lr``, ``alpha``) are ``(k, 1, 1)`` arrays.
"""

from __future__ import annotations

from typing import Any

from .losses import l2, rows
from .tree import tree_map

Layers = list  # [(W, b | None), ...]


def forward(layers: Layers, X: Any, /, *, acts, xp) -> tuple[Any, list]:
    """Run ``X``: ``(n, n_in)`` through the network.

    Returns ``y``: ``(n, n_out)`` and the cache backprop needs, ``[(a_in, z, y), ...]`` per layer.
    """
    a = X
    cache = []
    for (W, b), act in zip(layers, acts, strict=True):
        z = a @ W if b is None else a @ W + b
        y = act.f(z, xp=xp)
        cache.append((a, z, y))
        a = y
    return a, cache


def predict(layers: Layers, X: Any, /, *, acts, xp) -> Any:
    """The network's output for ``X``: ``(n, n_in)`` -> ``(n, n_out)``, keeping nothing for backprop."""
    a = X
    for (W, b), act in zip(layers, acts, strict=True):
        a = act.f(a @ W if b is None else a @ W + b, xp=xp)
    return a


def output_grad(z: Any, y: Any, t: Any, /, *, act, loss, w: Any = None, xp) -> Any:
    """dLoss/dz at the output layer: the fused ``(y - t)/n`` where the loss has one, else the loss's
    dL/dy pulled back through the output activation. ``w``: ``(n, 1)`` row weights or ``None``."""
    if loss.grad_z is not None:
        return loss.grad_z(y, t, xp=xp, w=w)
    return act.vjp(z, y, loss.grad_y(y, t, xp=xp, w=w), xp=xp)


def _mT(a: Any, xp) -> Any:
    """The transpose of the last two axes: ``.T`` on a matrix, else the array's own ``.mT`` (an
    attribute, cheaper than the wrapped function on NumPy), else ``xp.matrix_transpose`` (arrays without one)."""
    if a.ndim == 2:
        return a.T
    return a.mT if hasattr(a, "mT") else xp.matrix_transpose(a)


def backward(layers: Layers, cache: list, grad_z: Any, /, *, acts, xp) -> Layers:
    """Backprop ``grad_z`` (dLoss/dz of the output layer) to ``[(grad_w, grad_b | None), ...]``."""
    grads = []  # last layer first
    grad_a = None
    for i in range(len(layers) - 1, -1, -1):
        a_in, z, y = cache[i]
        W, b = layers[i]
        if grad_a is not None:
            grad_z = acts[i].vjp(z, y, grad_a, xp=xp)
        # the shared first-layer input (n, n_in) broadcasts against a stack's (k, n, n_out)
        grad_b = None if b is None else xp.sum(grad_z, axis=-2, keepdims=b.ndim > 1)
        grads.append((_mT(a_in, xp) @ grad_z, grad_b))
        grad_a = grad_z @ _mT(W, xp) if i > 0 else None
    return grads[::-1]


def loss_and_grads(
    layers: Layers, X: Any, t: Any, /, *, acts, loss, alpha: float = 0.0, w: Any = None, xp
) -> tuple[Any, Layers, Any]:
    """The loss (a 0-d array; ``(k,)`` for a stack), its gradients and the output ``y`` for one batch.

    ``alpha`` adds scikit-learn's L2 penalty ``0.5 * alpha * sum(W**2) / n`` (biases are not penalised);
    for a stack it may be one value per member, ``(k, 1, 1)``.
    ``w``: ``(n, 1)`` per-row weights (scikit-learn's ``sample_weight``): the loss becomes the weighted
    mean ``Σ w·l / Σ w`` and the penalty is divided by ``Σ w`` instead of ``n``, as scikit-learn's. For
    a stack, ``w`` may be ``(..., n, 1)``: each member's own rows (a fold's mask), one sum per member.
    ``X`` may be a SciPy sparse matrix on NumPy: the first layer's ``X @ W`` and ``X.T @ grad_z`` are
    the sparse products.
    """
    y, cache = forward(layers, X, acts=acts, xp=xp)
    z = cache[-1][1]
    value = loss.value(z, y, t, xp=xp, w=w)
    grads = backward(layers, cache, output_grad(z, y, t, act=acts[-1], loss=loss, w=w, xp=xp), acts=acts, xp=xp)
    if not (isinstance(alpha, (int, float)) and alpha == 0):
        penalty, grads = l2(layers, grads, alpha / rows(X, w, xp=xp, keepdims=True), xp=xp)
        value = value + penalty
    return value, grads, y


def update(layers: Layers, grads: Layers, /, *, lr: Any) -> Layers:
    """One plain gradient-descent step (the seed's): ``W - lr * grad_w``, as new arrays; ``lr`` a
    number, or ``(k, 1, 1)`` for a stack."""
    return [(W - lr * gw, None if b is None else b - lr * gb) for (W, b), (gw, gb) in zip(layers, grads, strict=True)]


def accuracy_sum(y: Any, t: Any, /, *, xp) -> Any:
    """How many rows of ``y`` pick the class ``t`` marks (argmax; > 0.5 for one output), as a 0-d float
    (``(k,)`` for a stack's ``y``: ``(k, n, n_out)``)."""
    if y.shape[-1] == 1:
        hit = (y[..., 0] > 0.5) == (t[..., 0] > 0.5)
    else:
        hit = xp.argmax(y, axis=-1) == xp.argmax(t, axis=-1)
    return xp.sum(xp.astype(hit, y.dtype), axis=-1)


def where_members(ok: Any, new: Any, old: Any, /, *, xp) -> Any:
    """Per member, ``new`` where ``ok`` else ``old``: ``ok`` has the members' shape (``()`` for one
    network), ``new`` and ``old`` are trees of one structure (layers, an optimizer's state) whose
    arrays lead with the members' axes; an array without them (a stack's shared step count) is ``new``'s."""

    def pick(a, b):
        if tuple(a.shape[: ok.ndim]) != tuple(ok.shape):
            return a
        return xp.where(xp.reshape(ok, (*ok.shape, *(1,) * (a.ndim - ok.ndim))), a, b)

    return tree_map(pick, new, old)
