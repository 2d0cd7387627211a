"""array-api-strict: the standard and nothing else, with its own named (CPU) devices."""

from __future__ import annotations

import re
from typing import Any

from ._base import Adapter, BackendError, numpy_errstate

#: array-api-strict names a device only in its repr: ``array_api_strict.Device('CPU_DEVICE')``
_NAMED = re.compile(r"Device\('(?P<name>[^']*)'\)")


class ArrayApiStrict(Adapter):
    xp_module = "array_api_strict"

    def devices(self) -> list[str]:
        mod = self.load()
        return [self.device_name(d) for d in mod.__array_namespace_info__().devices()]

    def _native(self, mod: Any, dev: str | None, device: Any) -> Any:
        known = self.devices()
        if dev in (None, "cpu"):  # "cpu" names the CPU on every backend
            return mod.Device("CPU_DEVICE")
        if device not in known:
            msg = f"array_api_strict has no device {device!r}; expected one of {known}"
            raise BackendError(msg)
        return mod.Device(device)

    def device_name(self, native: Any) -> str:
        found = _NAMED.search(repr(native))
        if found is None:
            msg = f"cannot read the name of the array_api_strict device {native!r}"
            raise BackendError(msg)
        return found["name"]

    def to_numpy(self, x: Any) -> Any:
        # NumPy converts arrays of its CPU device only: one on another device comes over first
        cpu = self.load().Device("CPU_DEVICE")
        return super().to_numpy(x if x.device == cpu else x.to_device(cpu))

    def owns(self, x: Any) -> bool:
        return type(x).__module__.startswith("array_api_strict")

    def quiet_overflow(self):
        # computes with NumPy underneath
        return numpy_errstate()
