"""anynet: a small neural-network library whose forward pass, backprop and update are written once
against the Python Array API standard, and run on NumPy, CuPy, PyTorch, JAX, Dask and array-api-strict.

``import anynet`` loads what every user needs (``Network``, the backends, the ops); plotting,
checkpoints, ensembles, the ONNX export and the training loop load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import activations, losses
from .backend import BackendError, backends, to_numpy, use
from .network import Network

__version__ = "0.1.0"

#: public names loaded on first use: name -> (module, attribute, or None for the module itself)
_LAZY = {
    "CheckpointError": ("checkpoints", "CheckpointError"),
    "DivergedError": ("train", "DivergedError"),
    "Ensemble": ("ensemble", "Ensemble"),
    "History": ("train", "History"),
    "engines": ("engines", None),
    "load": ("checkpoints", "load"),
    "onnx": ("onnx", None),
    "optimizers": ("optimizers", None),
    "plot": ("plot", None),
    "save": ("checkpoints", "save"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        msg = f"module 'anynet' has no attribute {name!r}"
        raise AttributeError(msg)
    module, attribute = _LAZY[name]
    value = importlib.import_module(f".{module}", __name__)
    value = value if attribute is None else getattr(value, attribute)
    globals()[name] = value  # once: later lookups find it without this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BackendError",
    "CheckpointError",
    "DivergedError",
    "Ensemble",
    "History",
    "Network",
    "__version__",
    "activations",
    "backends",
    "engines",
    "load",
    "losses",
    "onnx",
    "optimizers",
    "plot",
    "save",
    "to_numpy",
    "use",
]
