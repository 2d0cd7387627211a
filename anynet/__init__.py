"""anynet: a small neural-network library whose forward pass, backprop and update are written once
against the Python Array API standard, and run on NumPy, CuPy, PyTorch, JAX, Dask and array-api-strict."""

from . import activations, engines, losses, optimizers, plot
from .backend import BackendError, backends, to_numpy, use
from .checkpoints import CheckpointError, load, save
from .ensemble import Ensemble
from .network import Network
from .train import DivergedError, History

__version__ = "0.1.0"

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
    "optimizers",
    "plot",
    "save",
    "to_numpy",
    "use",
]
