"""What an adapter answers for ``anynet.backend``, with the answers most libraries share.

``Adapter`` holds how to find a library (the module to import, the ``pip install`` that brings it)
and the defaults: no autograd, nothing lazy, nothing queued to wait for, no ``out=`` arrays.
``HostAdapter`` is a library whose one device is the CPU (NumPy, Dask), ``GpuAdapter`` one that may
see CUDA devices (CuPy, PyTorch, JAX). An adapter imports its library only when asked.
"""

from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass
from typing import Any, ClassVar

import array_api_compat
import numpy as np


class BackendError(RuntimeError):
    """A backend that cannot be used here: not installed, or no device for it."""

    __module__ = "anynet.backend"  # its public home (and ``anynet``'s): tracebacks name it as before


@dataclass(frozen=True)
class Adapter:
    """One array library: where it is, what to install, and its answer to each question
    ``anynet.backend`` asks (the ``pip`` is the library itself: ``anynet[...]`` on the package index
    is another project)."""

    name: str
    module: str
    pip: str
    gpu_only: bool = False
    #: no CUDA device whatever the machine has: a GPU needs another backend
    cpu_only: bool = False

    #: the module of its Array API namespace ``xp``
    xp_module: ClassVar[str]
    #: ``"module:Class"`` of its ``out=`` operations for the buffer engine; ``None``: no ``out=`` arrays
    out_ops: ClassVar[str | None] = None
    #: its arrays are task graphs, computed when asked: the training loop materialises them once an
    #: epoch (``materialize``), so that a graph never grows with the step count
    lazy: ClassVar[bool] = False

    def load(self) -> Any:
        """The library's module, imported now; a BackendError says what to install if it is missing."""
        try:
            return importlib.import_module(self.module)
        except ImportError as exc:
            msg = (
                f"backend {self.name!r} needs the {self.module!r} package, which is not installed; "
                f"pip install {self.pip}"
            )
            raise BackendError(msg) from exc

    def namespace(self) -> Any:
        """The Array API namespace ``xp``."""
        self.load()
        return importlib.import_module(self.xp_module)

    def cuda_count(self) -> int:
        """How many CUDA devices the library sees here."""
        try:
            return self._count_cuda()
        except Exception:  # noqa: BLE001 - a broken CUDA install means "no CUDA device" here
            return 0

    def _count_cuda(self) -> int:
        return 0

    def devices(self) -> list[str]:
        """The device names it can use here, e.g. ``["cpu", "cuda:0"]``."""
        raise NotImplementedError

    def native_device(self, device: str | None) -> Any:
        """A device name (``"cpu"``, ``"cuda:0"``, ``None`` for the default) -> the library's own device
        object; a BackendError for a device it cannot see."""
        mod = self.load()
        dev = None if device is None else str(device).strip().lower()
        if dev == "gpu":
            dev = "cuda:0"
        if dev is not None and dev.startswith("cuda") and ":" not in dev:
            dev = "cuda:0"
        if self.gpu_only and dev is not None and not dev.startswith("cuda"):
            msg = (
                f"backend {self.name!r} runs on CUDA GPUs only; device {device!r} is not available. "
                "For the CPU use backend='numpy' (or torch/jax with device='cpu')"
            )
            raise BackendError(msg)
        return self._native(mod, dev, device)

    def _native(self, mod: Any, dev: str | None, device: Any) -> Any:
        """The device object for ``dev`` (``device`` as given, lower-cased, ``"gpu"`` and ``"cuda"``
        read as ``"cuda:0"``); ``device``: as the caller wrote it, for the messages."""
        raise NotImplementedError

    def device_name(self, native: Any) -> str:
        """The canonical name of one of its device objects: ``"cpu"`` or ``"cuda:N"``."""
        raise NotImplementedError

    def device_of(self, x: Any) -> str:
        """The canonical device name of its array ``x``."""
        return self.device_name(array_api_compat.device(x))

    def owns(self, x: Any) -> bool:
        """Whether ``x`` is one of its arrays."""
        raise NotImplementedError

    def to_numpy(self, x: Any) -> np.ndarray:
        """Its array ``x`` -> a ``numpy.ndarray`` on the host."""
        return widened(np.asarray(x))

    def from_numpy(self, a: np.ndarray, native: Any) -> Any:
        """A C-contiguous host array -> its array on ``native``, same dtype, one transfer."""
        return self.namespace().asarray(a, device=native)

    def has_float64(self) -> bool:
        """Whether it can make float64 arrays now."""
        return True

    def require_float64(self) -> None:
        """Raise a BackendError saying how to get float64 where it cannot make it now."""

    def synchronize(self, native: Any) -> None:
        """Wait for queued device work to finish."""

    def materialize(self, arrays: Any) -> Any:
        """``arrays`` (a tree) computed now where it is lazy."""
        return arrays

    def quiet_overflow(self) -> contextlib.AbstractContextManager:
        """A context in which its overflow warnings are silent."""
        return contextlib.nullcontext()

    def no_autograd(self) -> contextlib.AbstractContextManager:
        """A context in which it records no autograd history."""
        return contextlib.nullcontext()

    def detached(self, x: Any) -> Any:
        """Its array ``x`` cut from any autograd graph."""
        return x

    def expit(self) -> Any:
        """A one-pass logistic sigmoid taking ``out=``, where one is installed, else ``None``."""
        return None


def numpy_errstate() -> contextlib.AbstractContextManager:
    """NumPy's overflow and invalid-value warnings off, for the libraries that compute with NumPy."""
    return np.errstate(over="ignore", invalid="ignore")


class HostAdapter(Adapter):
    """A library whose one device is the CPU, named ``"cpu"`` (NumPy, Dask)."""

    def devices(self) -> list[str]:
        self.load()
        return ["cpu"]

    def _native(self, mod: Any, dev: str | None, device: Any) -> Any:
        if dev not in (None, "cpu"):
            msg = (
                f"backend {self.name!r} runs on the CPU only; device {device!r} is not available. "
                "For a CUDA GPU use backend='torch' or backend='cupy'"
            )
            raise BackendError(msg)
        return "cpu"

    def device_name(self, native: Any) -> str:
        return "cpu"

    def device_of(self, x: Any) -> str:
        return "cpu"

    def quiet_overflow(self) -> contextlib.AbstractContextManager:
        return numpy_errstate()


class GpuAdapter(Adapter):
    """A library that may see CUDA devices: ``"cuda:N"`` is checked against what it sees, so a missing
    GPU is a BackendError at construction rather than a CUDA traceback in the middle of training."""

    def devices(self) -> list[str]:
        self.load()
        return ["cpu", *self._cuda_names()]

    def _cuda_names(self) -> list[str]:
        return [f"cuda:{i}" for i in range(self.cuda_count())]

    def _native(self, mod: Any, dev: str | None, device: Any) -> Any:
        if dev is not None and dev.startswith("cuda"):
            return self.cuda_device(mod, self._cuda_index(dev, device))
        if dev not in (None, "cpu") and not dev.startswith("cpu:"):
            msg = f"unknown device {device!r} for backend {self.name!r}; expected 'cpu' or 'cuda:N'"
            raise BackendError(msg)
        return self.cpu_device(mod, dev)

    def _cuda_index(self, dev: str | None, device: Any) -> int:
        """The index of CUDA device ``dev`` (``None``: the first), checked against the count here."""
        index = 0 if dev is None else _read_index(dev, device)
        count = self.cuda_count()
        if index >= count:
            found = "none was found" if count == 0 else f"only {count} found"
            msg = (
                f"backend {self.name!r} on {dev or 'cuda:0'!r} needs a CUDA device and {found}; "
                f"use {self.instead()} or install a CUDA driver"
            )
            raise BackendError(msg)
        return index

    def instead(self) -> str:
        """What to use where no CUDA device is found."""
        return f"backend={self.name!r}, device='cpu'"

    def cpu_device(self, mod: Any, dev: str | None) -> Any:
        """Its CPU device object (``dev``: ``None`` for its default device, ``"cpu"`` or ``"cpu:N"``)."""
        raise NotImplementedError

    def cuda_device(self, mod: Any, index: int) -> Any:
        """Its device object for CUDA device ``index``, which it sees."""
        raise NotImplementedError


def _read_index(dev: str, given: object) -> int:
    try:
        return int(dev.split(":", 1)[1])
    except (ValueError, IndexError):
        msg = f"cannot read device {given!r}; expected 'cpu', 'cuda' or 'cuda:N'"
        raise BackendError(msg) from None


def widened(a: np.ndarray) -> np.ndarray:
    """``a``, or float32 for the floats NumPy has no arithmetic of its own for (``bfloat16`` and the
    float8 kinds that JAX hands over as ml_dtypes): numbers to read, not 59 class labels."""
    if a.dtype.kind == "V" and "float" in a.dtype.name:
        return a.astype(np.float32)
    return a
