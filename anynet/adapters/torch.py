"""PyTorch: the CPU and CUDA devices, autograd switched off while anynet trains (it computes its own
gradients), its ``out=`` functions for the buffer engine."""

from __future__ import annotations

from typing import Any

import array_api_compat

from ._base import GpuAdapter


class Torch(GpuAdapter):
    xp_module = "array_api_compat.torch"
    out_ops = "anynet.engines.buffer_ops:TorchBufferOps"

    owns = staticmethod(array_api_compat.is_torch_array)

    def _count_cuda(self) -> int:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0

    def cpu_device(self, mod: Any, dev: str | None) -> Any:
        return mod.device("cpu")

    def cuda_device(self, mod: Any, index: int) -> Any:
        return mod.device("cuda", index)

    def device_name(self, native: Any) -> str:
        return "cpu" if native.type == "cpu" else f"cuda:{native.index or 0}"

    def to_numpy(self, x: Any) -> Any:
        x = x.detach().cpu()
        if (x.is_floating_point() and x.element_size() < 2) or str(x.dtype) == "torch.bfloat16":
            x = x.float()  # NumPy has no bfloat16 (or float8): its values as float32
        return x.numpy()

    def from_numpy(self, a: Any, native: Any) -> Any:
        xp = self.namespace()
        if not a.flags.writeable:
            a = a.copy()  # torch shares host memory and warns on a read-only buffer (a memmap, say)
        return xp.asarray(a, device=native)

    def synchronize(self, native: Any) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def no_autograd(self):
        import torch

        return torch.no_grad()

    def detached(self, x: Any) -> Any:
        return x.detach()
