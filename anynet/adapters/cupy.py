"""CuPy: CUDA devices only, NumPy's ufuncs' ``out=`` on the GPU, ``cupyx``'s ``expit`` where installed."""

from __future__ import annotations

from typing import Any

import array_api_compat

from ._base import GpuAdapter


class CuPy(GpuAdapter):
    xp_module = "array_api_compat.cupy"
    out_ops = "anynet.engines.buffer_ops:BufferOps"

    owns = staticmethod(array_api_compat.is_cupy_array)

    def _count_cuda(self) -> int:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount())

    def devices(self) -> list[str]:
        self.load()
        return self._cuda_names()

    def _native(self, mod: Any, dev: str | None, device: Any) -> Any:
        index = self._cuda_index(dev, device)
        return mod.cuda.Device(index)

    def instead(self) -> str:
        return "backend='numpy'"

    def device_name(self, native: Any) -> str:
        return f"cuda:{native.id}"

    def to_numpy(self, x: Any) -> Any:
        return x.get()

    def from_numpy(self, a: Any, native: Any) -> Any:
        xp = self.namespace()
        with native:
            return xp.asarray(a)

    def synchronize(self, native: Any) -> None:
        import cupy

        cupy.cuda.get_current_stream().synchronize()

    def expit(self) -> Any:
        # four elementwise passes of the sigmoid become one
        try:
            from cupyx.scipy.special import expit
        except ImportError:
            return None
        return expit
