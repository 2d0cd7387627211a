"""Initialisers: drawn on the host from a seeded ``numpy.random.Generator``, then moved once.

The same seed gives bit-identical initial weights on every backend, since the numbers are made in
float64 by NumPy, cast on the host, and only then transferred.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

Init = Callable[[np.random.Generator, int, int], tuple[np.ndarray, np.ndarray]]


def uniform(rng: np.random.Generator, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """The seed's ``2*random - 1``: weights and biases uniform on [-1, 1)."""
    return 2 * rng.random((n_in, n_out)) - 1, 2 * rng.random(n_out) - 1


def glorot(rng: np.random.Generator, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Glorot/Xavier uniform on ±sqrt(6/(n_in+n_out)); zero biases. Suits tanh and sigmoid."""
    limit = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, (n_in, n_out)), np.zeros(n_out)


def he(rng: np.random.Generator, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """He normal with std sqrt(2/n_in); zero biases. Suits relu."""
    return rng.normal(0.0, np.sqrt(2.0 / n_in), (n_in, n_out)), np.zeros(n_out)


INITS: dict[str, Init] = {"uniform": uniform, "glorot": glorot, "he": he}


def get(name: str) -> Init:
    """The initialiser called ``name``; a ValueError lists the valid names otherwise."""
    if name not in INITS:
        msg = f"unknown init {name!r}; expected one of {sorted(INITS)}"
        raise ValueError(msg)
    return INITS[name]


def draw(name: str, sizes: list[int], seed: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Host float64 ``(W, b)`` for each layer of ``sizes``, from one generator seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    fn = get(name)
    return [fn(rng, n_in, n_out) for n_in, n_out in itertools.pairwise(sizes)]
