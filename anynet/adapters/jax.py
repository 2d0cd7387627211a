"""JAX: its default device (the GPU where it sees one) or the CPU; float64 only in its 64-bit mode."""

from __future__ import annotations

from typing import Any

import array_api_compat

from ._base import BackendError, GpuAdapter


class Jax(GpuAdapter):
    xp_module = "jax.numpy"

    owns = staticmethod(array_api_compat.is_jax_array)

    def _count_cuda(self) -> int:
        import jax

        try:
            return len(jax.devices("gpu"))
        except RuntimeError:
            return 0

    def cpu_device(self, mod: Any, dev: str | None) -> Any:
        # no device named: JAX's default one, which is the GPU where it sees one
        return mod.devices()[0] if dev is None else mod.devices("cpu")[0]

    def cuda_device(self, mod: Any, index: int) -> Any:
        return mod.devices("gpu")[index]

    def device_name(self, native: Any) -> str:
        return "cpu" if native.platform == "cpu" else f"cuda:{native.id}"

    def from_numpy(self, a: Any, native: Any) -> Any:
        self.namespace()
        import jax

        return jax.device_put(a, native)

    def has_float64(self) -> bool:
        import jax

        return bool(jax.config.read("jax_enable_x64"))

    def require_float64(self) -> None:
        if not self.has_float64():
            msg = (
                "float64 on JAX needs 64-bit mode; set JAX_ENABLE_X64=1 or call "
                "jax.config.update('jax_enable_x64', True) before creating arrays"
            )
            raise BackendError(msg)
