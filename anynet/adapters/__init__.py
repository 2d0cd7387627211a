"""One adapter per array library, each answering ``anynet.backend``'s questions for its library
(which devices, how to move arrays, how to wait, ...) and importing the library only when asked.
``anynet.backend.BACKENDS`` registers them: a new backend is one module here and one line there."""

from ._base import Adapter, BackendError, GpuAdapter, HostAdapter
from .array_api_strict import ArrayApiStrict
from .cupy import CuPy
from .dask import Dask
from .jax import Jax
from .numpy import NumPy
from .torch import Torch

__all__ = [
    "Adapter",
    "ArrayApiStrict",
    "BackendError",
    "CuPy",
    "Dask",
    "GpuAdapter",
    "HostAdapter",
    "Jax",
    "NumPy",
    "Torch",
]
