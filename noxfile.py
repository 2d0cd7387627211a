"""Test sessions, one per backend: ``nox`` runs every CPU backend; ``nox -s tests-cupy`` needs CUDA."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

#: what each backend's session installs besides ``.[test]``; torch is pinned to the CPU build that
#: lies on this machine's disk (a plain ``torch`` can pull a multi-GB CUDA build)
BACKEND_DEPS = {
    "numpy": [],
    "array_api_strict": ["array-api-strict>=2.2"],
    "torch": ["torch==2.13.0"],
    "jax": ["jax>=0.4.32"],
    "dask": ["dask[array,distributed]>=2024.8"],  # distributed: the LocalCluster tests
    "cupy": [],  # bring your own CuPy wheel matching your CUDA: cupy-cuda12x or cupy-cuda13x
}
CPU_BACKENDS = ["numpy", "array_api_strict", "torch", "jax", "dask"]


def _tests(session: nox.Session, name: str) -> None:
    deps = BACKEND_DEPS[name]
    if deps:
        session.install(*deps)
    session.install("-e", ".[test]")
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
