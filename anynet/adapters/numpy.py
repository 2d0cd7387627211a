"""NumPy: the CPU, its ufuncs' ``out=`` for the buffer engine, SciPy's ``expit`` where installed."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from ._base import HostAdapter


class NumPy(HostAdapter):
    xp_module = "array_api_compat.numpy"
    out_ops = "anynet.engines.buffer_ops:BufferOps"

    owns = staticmethod(array_api_compat.is_numpy_array)

    def from_numpy(self, a: np.ndarray, native: Any) -> Any:
        return a

    def expit(self) -> Any:
        # four elementwise passes of the sigmoid become one
        try:
            from scipy.special import expit
        except ImportError:
            return None
        return expit
