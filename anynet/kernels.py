"""Fused element-wise kernels: the ops' GPU form, and what compiles them.

Beside its pure and in-place forms, an op may give a ``Kernel``: typed inputs and outputs and a body
of statements written in the part of C that is also Python (arithmetic, the functions in ``MATH``,
and ``where(c, a, b)`` for C's ``c ? a : b``). On CuPy, ``BufferOps.kernel`` compiles one into a
single ``cupy.ElementwiseKernel``: an activation or its derivative in one pass instead of up to
four (with the bias added in the same pass, ``bias_then``), an optimizer's whole update over the flat
parameter buffer in one launch instead of two to twelve. Where nothing compiles kernels (NumPy,
PyTorch), the buffer engine runs the in-place forms.

``numpy_kernel`` runs a body with NumPy under CuPy's calling convention (inputs, then the outputs,
written in place), so the tests check on any machine that each kernel computes its op's pure form,
and can stand it in for CuPy's compiler to drive the engine's kernel path on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: the C function-like macro that lets a body say ``where(c, a, b)`` in both languages
PREAMBLE = "#define where(c, a, b) ((c) ? (a) : (b))\n"

#: the functions a body may call, as NumPy gives them (CUDA's math library has each by this name)
MATH = {
    "where": np.where,
    "tanh": np.tanh,
    "exp": np.exp,
    "log1p": np.log1p,
    "fabs": np.abs,
    "sqrt": np.sqrt,
}


@dataclass(frozen=True)
class Kernel:
    """An element-wise kernel: ``inputs`` and ``outputs`` as CuPy declares them (``"T z, T y"``),
    and ``body``, statements separated by ``;``. An output may be read before it is written (an
    update in place: ``g = g * ...``)."""

    name: str
    inputs: str
    outputs: str
    body: str


def bias_then(kernel: Kernel) -> Kernel:
    """An activation's ``kernel_f`` (``z -> y``) with the bias added first, in the same pass:
    ``(b) -> (z, y)``, ``z = z + b`` kept for the backward pass. After the product ``z = a @ W`` this
    is one pass over ``z`` where adding the bias and the activation would take two."""
    return Kernel(f"{kernel.name}_bias", "T b", "T z, " + kernel.outputs, "z = z + b; " + kernel.body)


def _names(params: str) -> list[str]:
    return [p.split()[-1] for p in params.split(",")]


def numpy_kernel(kernel: Kernel) -> Callable[..., Any]:
    """``kernel`` as a NumPy function: ``run(*inputs, *outputs)`` writes each output in place."""
    ins, outs = _names(kernel.inputs), _names(kernel.outputs)
    code = compile(kernel.body, f"<kernel {kernel.name}>", "exec")

    def run(*args: Any) -> Any:
        scope = dict(MATH)
        scope.update(zip(ins + outs, args, strict=True))
        with np.errstate(all="ignore"):  # C computes inf and NaN without a word
            exec(code, {"__builtins__": {}}, scope)  # our own kernel bodies, never user input
        for name, out in zip(outs, args[len(ins) :], strict=True):
            np.copyto(out, scope[name], casting="unsafe")
        return args[len(ins)]

    return run


#: NVRTC may otherwise contract ``a * b + c`` into one fused multiply-add, rounded once where the
#: op's pure form (separate array operations) rounds twice: a last-bit difference (``1 - y * y`` in
#: tanh's derivative came out 1e-10 apart, relatively, near y = ±1). Element-wise passes are bound by
#: memory, not arithmetic, so the kernel gives up nothing by computing exactly what the pure form does.
NVRTC_OPTIONS = ("--fmad=false",)


def cupy_kernel(kernel: Kernel) -> Callable[..., Any]:
    """``kernel`` compiled by CuPy (on its first call, for the dtypes it is given)."""
    import cupy

    return cupy.ElementwiseKernel(
        kernel.inputs,
        kernel.outputs,
        kernel.body,
        f"anynet_{kernel.name}",
        preamble=PREAMBLE,
        options=NVRTC_OPTIONS,
    )
