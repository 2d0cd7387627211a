"""The registry of array backends: which library, which devices, how to move arrays.

Each library's answers come from its adapter in ``anynet.adapters``, which also names them (its
``REGISTRY``, ``BACKENDS`` here); this module asks them. Those modules and this one are the only
ones that import ``array_api_compat`` and know library names. Everything else asks this one for a
namespace ``xp`` and a native device, once, at the public boundary.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
from typing import Any

import numpy as np

from .adapters import REGISTRY, Adapter
from .adapters import BackendError as BackendError  # raised by the adapters; public here and as anynet.BackendError

ENV_BACKEND = "ANYNET_BACKEND"
ENV_DEVICE = "ANYNET_DEVICE"


#: name -> the library's adapter (``anynet.adapters.REGISTRY``: a new backend is one adapter module
#: there and one line in that table)
BACKENDS: dict[str, Adapter] = REGISTRY

#: the backends whose arrays take ``out=``: the buffer engine runs on these
BUFFER_BACKENDS = tuple(name for name, adapter in BACKENDS.items() if adapter.out_ops is not None)

# --------------------------------------------------------------------------- choosing a backend

_default: contextvars.ContextVar[tuple[str | None, str | None]] = contextvars.ContextVar(
    "anynet_default_backend", default=(None, None)
)


def check_name(name: str) -> str:
    """Return ``name`` if it is a known backend id, else raise a ValueError listing the valid ones."""
    if not isinstance(name, str) or name not in BACKENDS:
        msg = f"unknown backend {name!r}; expected one of {sorted(BACKENDS)}"
        raise ValueError(msg)
    return name


class use:  # noqa: N801 - reads as a verb: anynet.use("torch") and `with anynet.use("torch"):`
    """Set the default backend (and device) for networks made without ``backend=``.

    Call it to set the default for the rest of the program, or use it as a context manager to set it
    for a block; leaving the block restores what was there before.
    """

    def __init__(self, backend: str | None, device: str | None = None) -> None:
        if backend is not None:
            BACKENDS[check_name(backend)].load()  # a missing library is said here, not at the next Network
        self.backend, self.device = backend, device
        self._token = _default.set((backend, device))

    def __enter__(self) -> use:
        return self

    def __exit__(self, *exc: object) -> None:
        _default.reset(self._token)


def default_backend() -> tuple[str, str | None]:
    """The backend and device a network uses when nothing names one: ``use()``, then the
    ``ANYNET_BACKEND``/``ANYNET_DEVICE`` environment variables, then NumPy. ``ANYNET_DEVICE`` alone
    is the device of that default NumPy: a GPU there is refused as ``device="cuda:0"`` on NumPy is,
    not silently ignored."""
    name, device = _default.get()
    if name is not None:
        return name, device
    env = os.environ.get(ENV_BACKEND, "").strip()
    if env and env not in BACKENDS:
        msg = f"{ENV_BACKEND}={env!r} is not a backend; expected one of {sorted(BACKENDS)}"
        raise ValueError(msg)
    return env or "numpy", os.environ.get(ENV_DEVICE, "").strip() or None


def placement(backend: str | None, device: str | None) -> tuple[str, str | None]:
    """Where a network goes: ``backend`` and ``device`` as named; a part left ``None`` comes from the
    default (``use()``, then the environment). The default device applies to the default backend
    only: ``use("torch", "cuda:0")`` puts ``Network(backend="torch")`` on ``cuda:0``, and
    ``Network(backend="numpy")`` on the CPU."""
    if backend is not None and device is not None:
        return check_name(backend), device
    if backend is None:
        default, default_device = default_backend()
        return default, default_device if device is None else device
    check_name(backend)
    try:
        default, default_device = default_backend()
    except ValueError:  # a bad ANYNET_BACKEND concerns networks that take the default, not this one
        return backend, None
    return backend, default_device if backend == default else None


# --------------------------------------------------------------------------- asking the adapters


def _adapter(name: str) -> Adapter:
    return BACKENDS[check_name(name)]


def namespace_for(name: str) -> Any:
    """The Array API namespace ``xp`` for a backend id."""
    return _adapter(name).namespace()


def devices(name: str) -> list[str]:
    """The device names a backend can use here, e.g. ``["cpu", "cuda:0"]``."""
    return _adapter(name).devices()


def backends() -> dict[str, dict[str, Any]]:
    """Which backends import here: ``{name: {"available", "version", "devices", "error"}}``."""
    report: dict[str, dict[str, Any]] = {}
    for name, adapter in BACKENDS.items():
        entry: dict[str, Any] = {"available": False, "version": None, "devices": [], "error": None}
        try:
            mod = adapter.load()
            top = importlib.import_module(adapter.module.split(".")[0])
            entry["version"] = getattr(top, "__version__", getattr(mod, "__version__", None))
            entry["devices"] = devices(name)
            entry["available"] = bool(entry["devices"])
            if not entry["available"]:
                entry["error"] = "no CUDA device found"
        except BackendError as exc:
            entry["error"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - report any import failure, do not crash the report
            entry["error"] = f"{type(exc).__name__}: {exc}"
        report[name] = entry
    return report


def native_device(name: str, device: str | None) -> Any:
    """Turn a device name (``"cpu"``, ``"cuda:0"``) into the backend's own device object.

    ``None`` picks the backend's default device. Asking for a device the backend cannot see raises
    a ``BackendError`` here, at construction, rather than a CUDA traceback in the middle of training.
    """
    return _adapter(name).native_device(device)


def device_name(name: str, native: Any) -> str:
    """The canonical name of a backend's device object: ``"cpu"`` or ``"cuda:N"``."""
    return _adapter(name).device_name(native)


# --------------------------------------------------------------------------- arrays


def backend_of(x: Any) -> str | None:
    """The backend id that owns array ``x``; ``None`` for host data that is not an array of a known
    library (lists, scalars)."""
    for name, adapter in BACKENDS.items():
        if adapter.owns(x):
            return name
    return None


def device_of(x: Any) -> str:
    """The canonical device name of an array of any known backend."""
    name = backend_of(x)
    return "cpu" if name is None else BACKENDS[name].device_of(x)


def to_numpy(x: Any) -> np.ndarray:
    """Any backend's array (or nested list) -> a ``numpy.ndarray`` on the host."""
    name = backend_of(x)
    return np.asarray(x) if name is None else BACKENDS[name].to_numpy(x)


def from_numpy(a: np.ndarray, name: str, native: Any) -> Any:
    """A host array -> the backend's array on ``native`` device, same dtype, one transfer."""
    return _adapter(name).from_numpy(np.ascontiguousarray(a), native)


def dtype_for(xp: Any, name: str, native: Any, dtype: Any) -> Any:
    """Resolve a dtype request (``None``, ``"float32"``, ``"float64"`` or a dtype) to ``xp``'s own.

    ``None`` means the backend's default floating dtype (float64 on NumPy, float32 on torch and JAX).
    """
    if dtype is None:
        info = xp.__array_namespace_info__()
        return info.default_dtypes(device=native)["real floating"]
    text = str(np.dtype(dtype)) if not isinstance(dtype, str) else dtype
    text = text.replace("torch.", "").replace("array_api_strict.", "")
    if text not in ("float32", "float64"):
        msg = f"dtype must be 'float32' or 'float64', got {dtype!r}"
        raise ValueError(msg)
    if text == "float64":
        _adapter(name).require_float64()
    return getattr(xp, text)


def has_float64(name: str) -> bool:
    """Whether backend ``name`` can make float64 arrays now (JAX only in its 64-bit mode)."""
    return _adapter(name).has_float64()


def dtype_name(dtype: Any) -> str:
    """``"float32"`` or ``"float64"`` for any backend's float dtype."""
    text = str(dtype)
    for cand in ("float64", "float32", "float16", "bfloat16"):
        if cand in text:
            return cand
    return text


def synchronize(name: str, native: Any = None) -> None:
    """Wait for queued device work to finish (for timing); a no-op on the CPU backends."""
    _adapter(name).synchronize(native)


def is_lazy(name: str) -> bool:
    """Whether backend ``name``'s arrays are task graphs, computed when asked (its adapter's ``lazy``):
    the training loop then materialises them once an epoch."""
    return _adapter(name).lazy


def materialize(arrays: Any, name: str) -> Any:
    """Bound a lazy backend's task graph by computing ``arrays`` now; others pass through.

    The training loop calls this once per epoch so a graph never grows with the step count.
    """
    return _adapter(name).materialize(arrays)


def quiet_overflow(name: str) -> contextlib.AbstractContextManager:
    """Silence NumPy's overflow warnings while training: a run that overflows ends in a clear
    ``DivergedError``, and the warnings before it would only repeat that less clearly. A lazy backend
    computing with NumPy underneath does so in this thread when the loop persists its arrays each epoch."""
    return _adapter(name).quiet_overflow()


def no_autograd(name: str) -> contextlib.AbstractContextManager:
    """Run training without recording autograd history: anynet computes its own gradients, and a
    graph kept across steps would grow every epoch and end up on the parameters."""
    return _adapter(name).no_autograd()


def detached(x: Any) -> Any:
    """``x`` cut from any autograd graph it belongs to (torch tensors); other arrays as they are."""
    name = backend_of(x)
    return x if name is None else BACKENDS[name].detached(x)


def buffer_ops(name: str) -> Any:
    """The ``out=`` operations of backend ``name`` (``anynet.engines.buffer_ops``); ``None`` where it
    has none (an immutable or lazy library, or one that exposes no ``out=``)."""
    adapter = BACKENDS.get(name)
    if adapter is None or adapter.out_ops is None:
        return None
    module, _, cls = adapter.out_ops.partition(":")
    return getattr(importlib.import_module(module), cls)(name)
