"""One adapter per array library, each answering ``anynet.backend``'s questions for its library
(which devices, how to move arrays, how to wait, ...) and importing the library only when asked.
``REGISTRY`` below names them (``anynet.backend.BACKENDS``): a new backend is one module here and one
line there."""

from ._base import Adapter, BackendError, GpuAdapter, HostAdapter
from .array_api_strict import ArrayApiStrict
from .cupy import CuPy
from .dask import Dask
from .jax import Jax
from .numpy import NumPy
from .torch import Torch

#: name -> the library's adapter: where to import it from, what to pip install, whether it is GPU-
#: or CPU-only. A new backend is one adapter module in this package and one line here.
REGISTRY: dict[str, Adapter] = {
    "numpy": NumPy("numpy", "numpy", "numpy", cpu_only=True),
    "cupy": CuPy("cupy", "cupy", "cupy-cuda12x (or cupy-cuda13x, matching your CUDA)", gpu_only=True),
    "torch": Torch(
        "torch", "torch", "torch (CPU only: pip install torch --index-url https://download.pytorch.org/whl/cpu)"
    ),
    "jax": Jax("jax", "jax", "jax"),
    "dask": Dask("dask", "dask.array", '"dask[array]"', cpu_only=True),
    "array_api_strict": ArrayApiStrict("array_api_strict", "array_api_strict", "array-api-strict", cpu_only=True),
}

__all__ = [
    "REGISTRY",
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
