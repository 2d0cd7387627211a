"""Every test runs on the backend named by ``--backend`` (default ``$ANYNET_BACKEND``, else numpy).

A backend named explicitly and not installed is an error, not a skip. GPU backends skip the whole
run with a reason when no CUDA device is present. ``@pytest.mark.skip_backend("dask", reason=...)``
marks a test that cannot run on a backend and says why.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import anynet
from anynet import backend as B


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--backend", default=os.environ.get("ANYNET_BACKEND") or "numpy", help="array backend to test")
    parser.addoption("--device", default=os.environ.get("ANYNET_DEVICE") or None, help="device, e.g. cpu or cuda:0")


def _gpu_wanted(name: str, device: str | None) -> bool:
    return name == "cupy" or (device is not None and device.startswith(("cuda", "gpu")))


def pytest_configure(config: pytest.Config) -> None:
    name = config.getoption("--backend")
    if name not in B.BACKENDS:
        raise pytest.UsageError(f"--backend={name!r} is not a backend; expected one of {sorted(B.BACKENDS)}")
    try:
        B.namespace_for(name)
    except B.BackendError as exc:
        raise pytest.UsageError(f"--backend={name}: {exc}") from None
    if name == "jax":
        import jax

        # The gradient checks and golden tests need float64.
        jax.config.update("jax_enable_x64", True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    name = config.getoption("--backend")
    device = config.getoption("--device")
    if _gpu_wanted(name, device):
        try:
            B.native_device(name, device)
        except B.BackendError as exc:
            skip = pytest.mark.skip(reason=f"no CUDA device here: {exc}")
            for item in items:
                item.add_marker(skip)
            return
    for item in items:
        for mark in item.iter_markers("skip_backend"):
            if name in mark.args:
                item.add_marker(pytest.mark.skip(reason=f"not on {name}: {mark.kwargs['reason']}"))


@pytest.fixture(scope="session")
def backend(pytestconfig: pytest.Config) -> str:
    return pytestconfig.getoption("--backend")


@pytest.fixture(scope="session")
def device(pytestconfig: pytest.Config, backend: str) -> str:
    return B.device_name(backend, B.native_device(backend, pytestconfig.getoption("--device")))


@pytest.fixture(scope="session")
def xp(backend: str):
    return B.namespace_for(backend)


@pytest.fixture(autouse=True)
def _default_backend(backend: str, device: str):
    """Networks made without ``backend=`` land on the backend under test."""
    with anynet.use(backend, device):
        yield


@pytest.fixture
def asarray(backend: str, device: str):
    """Host data -> an array on the backend under test (float64 unless a dtype is given)."""
    native = B.native_device(backend, device)

    def make(a, dtype: str | None = "float64"):
        a = np.asarray(a)
        if dtype is not None:
            a = a.astype(dtype)
        return B.from_numpy(a, backend, native)

    return make


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def tol(dtype) -> float:
    """A comparison tolerance scaled to the precision of ``dtype``."""
    return 1e-9 if B.dtype_name(dtype) == "float64" else 1e-4
