"""Dask: lazy arrays on the CPU, computed with NumPy; the training loop bounds the task graph by
computing it once per epoch."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from ._base import HostAdapter


class Dask(HostAdapter):
    xp_module = "array_api_compat.dask.array"

    owns = staticmethod(array_api_compat.is_dask_array)
    lazy = True

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x.compute())

    def from_numpy(self, a: np.ndarray, native: Any) -> Any:
        self.namespace()
        import dask.array as da

        return da.from_array(a, chunks=a.shape or ())

    def materialize(self, arrays: Any) -> Any:
        import dask

        from ..tree import leaves, rebuild

        done = iter(dask.persist(*leaves(arrays), scheduler="sync"))
        return rebuild(arrays, done)
