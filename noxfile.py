"""Test sessions, one per backend: ``nox`` runs every CPU backend; ``nox -s tests-cupy`` needs CUDA."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

#: tests-torch's PyTorch, a CPU build: on Linux, PyPI's ``torch`` wheel is the CUDA build (several GB
#: with its CUDA libraries), which the CPU tests do not use. See ``_torch_index``.
TORCH = "torch==2.13.0"
#: PyTorch's own index of CPU builds (Linux and Windows wheels ``+cpu``; macOS wheels are CPU-only anyway)
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: what each backend's session installs besides ``.[test]``
BACKEND_DEPS = {
    "numpy": [],
    "array_api_strict": ["array-api-strict>=2.2"],
    "torch": [TORCH],
    "jax": ["jax>=0.4.32"],
    "dask": ["dask[array,distributed]>=2024.8"],  # distributed: the LocalCluster tests
    # CUDA 12's wheel; another (cupy-cuda13x, or a wheel file) by naming it in ANYNET_CUPY_WHEEL
    "cupy": [os.environ.get("ANYNET_CUPY_WHEEL") or "cupy-cuda12x"],
}
CPU_BACKENDS = ["numpy", "array_api_strict", "torch", "jax", "dask"]
#: extras a session installs besides ``test``: the ONNX export is tested once, where ONNX Runtime's
#: answers are compared with NumPy's (the export itself reads every backend through ``to_numpy``)
EXTRAS = {"numpy": ["onnx"]}


def _cuda_devices() -> str | None:
    """Why there is no CUDA device here (no driver library, or it sees no device), or None if there is
    one: asked of the driver itself, before CuPy (hundreds of MB) is installed for nothing."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "no CUDA driver (libcuda.so.1) on this machine"
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value < 1:
        return "the CUDA driver sees no device"
    return None


def _torch_index(session: nox.Session) -> list[str]:
    """pip's options for installing ``TORCH``: ``--index-url $ANYNET_TORCH_INDEX`` where that is set (set
    and empty: pip's own configuration, e.g. a mirror); else nothing where pip's configuration already
    holds the wheel without asking an index (a ``find-links`` folder, as on a machine without a network);
    else PyTorch's index of CPU builds."""
    if "ANYNET_TORCH_INDEX" in os.environ:
        index = os.environ["ANYNET_TORCH_INDEX"]
        return ["--index-url", index] if index else []
    python = shutil.which("python", path=session.bin) or "python"
    local = [python, "-m", "pip", "install", "--dry-run", "--quiet", "--no-deps", "--no-index", TORCH]
    if subprocess.run(local, capture_output=True, check=False).returncode == 0:
        return []
    return ["--index-url", TORCH_CPU_INDEX]


def _tests(session: nox.Session, name: str) -> None:
    if name == "cupy" and (why := _cuda_devices()):
        session.skip(f"tests-cupy needs a CUDA GPU: {why}")
    deps = BACKEND_DEPS[name]
    if name == "torch":
        session.install(*deps, *_torch_index(session))
    elif deps:
        session.install(*deps)
    extras = ",".join(["test", *EXTRAS.get(name, [])])
    session.install("-e", f".[{extras}]")
    session.run("pytest", f"--backend={name}", *session.posargs)


for _name in BACKEND_DEPS:

    def _session(session: nox.Session, name: str = _name) -> None:
        _tests(session, name)

    nox.session(name=f"tests-{_name}", default=_name in CPU_BACKENDS)(_session)


@nox.session(default=True)
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """The benchmarks against the seed and the peers; writes benchmarks/results/."""
    session.install("torch==2.13.0", "jax>=0.4.32", "-e", ".[bench]")
    session.run("python", "benchmarks/run.py", *session.posargs)
