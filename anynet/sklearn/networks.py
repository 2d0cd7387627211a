"""The anynet networks behind the scikit-learn estimators: scikit-learn's output activations and
initial draws, the moves between host data and a network's place, and a network's host copy for
pickling."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np

from .. import backend as B
from ..defaults import loss_for
from ..network import Network
from ..tree import tree_map

#: scikit-learn's output activation names -> anynet's, and the loss each pairs with
OUTPUT = {
    name: (act, loss_for(act, "sklearn"))
    for name, act in {"softmax": "softmax", "logistic": "sigmoid", "identity": "identity", "exp": "exp"}.items()
}


def hidden_sizes(value: Any) -> list[int]:
    """``hidden_layer_sizes`` as a list of widths, each > 0 (scikit-learn's message when one is not)."""
    hidden = list(value) if hasattr(value, "__iter__") else [value]
    if any(h <= 0 for h in hidden):
        msg = f"hidden_layer_sizes must be > 0, got {hidden}."
        raise ValueError(msg)
    return hidden


def glorot(layer_units: list[int], activation: str, rs) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """scikit-learn's initial weights and biases, drawn from ``rs`` in its order."""
    factor = 2.0 if activation == "logistic" else 6.0  # Glorot's advice for the logistic
    weights, biases = [], []
    for fan_in, fan_out in pairwise(layer_units):
        bound = np.sqrt(factor / (fan_in + fan_out))
        weights.append(rs.uniform(-bound, bound, (fan_in, fan_out)))
        biases.append(rs.uniform(-bound, bound, fan_out))
    return weights, biases


def to_host(a: Any) -> Any:
    """``a`` as a NumPy array on the host; ``None`` stays ``None``."""
    return None if a is None else B.to_numpy(a)


def native(place: tuple[str, str]) -> tuple[str, Any]:
    """``(backend, native device)`` of a ``(backend, device)`` place, for ``B.from_numpy``."""
    return place[0], B.native_device(*place)


def device_name(backend: str, device: str) -> str:
    """The canonical name of ``device`` on ``backend`` (``"cuda"`` -> ``"cuda:0"``)."""
    return B.device_name(backend, B.native_device(backend, device))


def dtype_like(x_dtype: Any, backend: str | None) -> str:
    """``X``'s float precision where the backend can hold it (JAX without x64 cannot hold float64)."""
    want = "float32" if B.dtype_name(x_dtype) == "float32" else "float64"
    name = backend if backend is not None else B.default_backend()[0]
    try:
        B.dtype_for(B.namespace_for(name), name, None, want)
    except B.BackendError:
        return "float32"
    return want


def take_rows(X: Any, index: np.ndarray) -> Any:
    """Rows ``index`` of a host or device array, taken where it lives."""
    name = B.backend_of(X)
    if name in (None, "numpy"):
        return X[index]
    xp = B.namespace_for(name)
    return xp.take(X, B.from_numpy(index, *native((name, B.device_of(X)))), axis=0)


def net_to_host(net: Network) -> dict:
    """What rebuilds ``net`` anywhere: host arrays, names, and the optimizer's state."""
    return {
        "weights": [B.to_numpy(W) for W in net.weights],
        "biases": [B.to_numpy(b) for b in net.biases],
        "activation": net.activation,
        "output_activation": net.output_activation,
        "backend": net.backend,
        "device": net.device,
        "dtype": B.dtype_name(net.dtype),
        "optimizer": net.optimizer,
        "opt_state": tree_map(B.to_numpy, net.optimizer_state),
        "epochs_trained": net.epochs_trained,
    }


def net_from_host(state: dict) -> Network:
    """The network ``net_to_host`` described, on its backend and device; where that device is
    missing (a GPU model loaded on a laptop) it lands on the default backend instead."""
    backend, device = state["backend"], state["device"]
    try:
        B.native_device(backend, device)
    except B.BackendError:
        backend, device = None, None
    net = Network.from_weights(
        [np.array(W) for W in state["weights"]],
        [np.array(b) for b in state["biases"]],
        activation=state["activation"],
        output_activation=state["output_activation"],
        dtype=state["dtype"],
        backend=backend,
        device=device,
    )
    net.follow(place=True)
    net.epochs_trained = state["epochs_trained"]
    net.set_optimizer(state["optimizer"], state["opt_state"])
    return net
