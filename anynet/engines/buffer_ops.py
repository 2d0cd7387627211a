"""The array operations the buffer engine and the ops' in-place kernels use, each writing into
``out=``: ``BufferOps`` with NumPy's ufuncs (NumPy, and CuPy, which has the same ``out=``),
``TorchBufferOps`` with PyTorch's ``out=`` functions. A backend's adapter names its class
(``out_ops``); ``anynet.backend.buffer_ops(name)`` builds it, or gives ``None`` where it has none.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import backend as B
from .. import kernels

#: what compiles an op's fused kernel (``anynet.kernels.Kernel``), per backend; where none is
#: named, ``BufferOps.kernel`` gives ``None`` and the engines run the in-place forms
KERNEL_COMPILERS: dict[str, Callable[[Any], Any]] = {"cupy": kernels.cupy_kernel}

_KERNELS: dict[tuple, Any] = {}


class BufferOps:
    """The ``out=`` operations of a library with NumPy's ufuncs. Arguments may be a scalar where
    NumPy's ufuncs take one."""

    def __init__(self, name: str) -> None:
        adapter = B.BACKENDS[name]
        self.name = name
        self._compile = KERNEL_COMPILERS.get(name)
        #: the backend's Array API namespace, for an op's pure form called from a kernel
        self.xp = adapter.namespace()
        self.lib = adapter.load()
        #: arrays in host memory (a CPU-only library), where reading a number back costs nothing
        self._host = adapter.cpu_only
        self._bind(adapter)

    def _bind(self, adapter: Any) -> None:
        m = self.lib
        self.matmul = m.dot  # dot(a, b, out) straight to BLAS, no Python frame in between
        self.add, self.subtract, self.multiply, self.divide = m.add, m.subtract, m.multiply, m.divide
        self.tanh, self.exp, self.log, self.sqrt, self.greater = m.tanh, m.exp, m.log, m.sqrt, m.greater
        self.empty_like, self.vdot = m.empty_like, m.vdot
        self.sigmoid = adapter.expit() or self._sigmoid_by_tanh

    def _sigmoid_by_tanh(self, z, out):
        # the reference's 0.5*tanh(0.5*z) + 0.5, in four passes where no one-pass kernel is installed
        self.multiply(z, 0.5, out=out)
        self.tanh(out, out=out)
        self.multiply(out, 0.5, out=out)
        return self.add(out, 0.5, out=out)

    def empty(self, shape, like):
        """An uninitialised array of ``shape`` with the dtype and device of ``like``."""
        return self.lib.empty(shape, dtype=like.dtype)

    def from_host(self, a, like, dtype=None):
        """Host data ``a`` as a new array on the device of ``like``, with its dtype or ``dtype``."""
        return self.lib.array(np.asarray(a), dtype=like.dtype if dtype is None else dtype)

    def to_host(self, a):
        return B.to_numpy(a)

    def index_zero(self, like):
        """A one-element int64 array holding 0, on the device of ``like``: a position a captured step
        reads and advances."""
        return self.lib.zeros(1, dtype=np.int64)

    def take_at(self, src, at, out):
        """``out[0] = src[at[0]]`` with ``at`` a device index (``(1,)`` int64), no read back to the host."""
        return self.lib.take(src, at, out=out)

    def put_at(self, dst, at, value):
        """``dst[at[0]] = value`` with ``at`` a device index, no read back to the host."""
        dst[at] = value

    def kernel(self, spec: Any) -> Any:
        """The op's fused kernel ``spec`` compiled for this backend (once per process), or ``None``
        where the backend compiles none or the op gives none."""
        if spec is None or self._compile is None:
            return None
        key = (self.name, self._compile, spec)
        if key not in _KERNELS:
            _KERNELS[key] = self._compile(spec)
        return _KERNELS[key]

    def inner(self, a, b):
        """``Σ a·b`` over the last two axes: a number for matrices (``vdot``), one per member for a
        stack (either may be the shared ``(n, m)`` operand of a ``(..., n, m)`` stack)."""
        if a.ndim == 2 and b.ndim == 2:
            return self.vdot(a, b)
        return self.lib.einsum("...ij,...ij->...", a, b)

    def bmatmul(self, a, b, out):
        """``out = a @ b`` with the standard's ``matmul`` semantics: stacks of matrices, broadcast over
        the leading axes (a stack of networks' ``(k, n, n_in) @ (k, n_in, n_out)``)."""
        if a.shape[-1] == 1:
            # an outer product (a one-output layer's grad_z @ W.T): the same single products, without
            # a BLAS call per matrix of the stack (twice as fast on NumPy)
            return self.multiply(a, b, out=out)
        return self.lib.matmul(a, b, out=out)

    def mT(self, a):
        """The transpose of the last two axes, as a view (the array's own ``mT`` where it has one:
        an attribute costs a tenth of ``swapaxes``'s Python wrapper on NumPy)."""
        return a.mT if hasattr(a, "mT") else self.lib.swapaxes(a, -1, -2)

    def linear(self, a, W, b, out):
        """``out = a @ W + b`` (``b`` may be ``None``); one fused call where the library has one."""
        if b is None:
            return self.matmul(a, W, out)
        self.lib.dot(a, W, out=out)
        return self.lib.add(out, b, out=out)

    def maximum(self, a, scalar, out):
        return self.lib.maximum(a, scalar, out=out)

    def keep_where_positive(self, g, z, q):
        """``g`` with 0 wherever ``z > 0`` fails (NaN included), in place: ``where(z > 0, g, 0)``, which
        stays 0 where ``g`` is infinite (a product with a 0/1 mask would give NaN there). ``q``: scratch
        of ``g``'s shape."""
        # On the CPU a masked write costs twenty products: check that g is finite (one cheap pass,
        # read back for free) and take the product; on a GPU the masked write is cheap and needs no sync.
        if self._on_host(g) and math.isfinite(self.vdot(g, g)):
            self.greater(z, 0, out=q)
            return self.multiply(g, q, out=g)
        return self._zero_unless_positive(g, z)

    def _on_host(self, g) -> bool:
        return self._host

    def _zero_unless_positive(self, g, z):
        mask = self.lib.greater(z, 0)
        self.lib.logical_not(mask, out=mask)
        self.lib.copyto(g, 0, where=mask)
        return g

    def sum_rows(self, a, out):
        """``out = sum(a, axis=0)``."""
        return self.lib.add.reduce(a, axis=0, out=out)

    def row_max(self, a):
        """``max(a, axis=-1, keepdims=True)``, a new ``(..., n, 1)`` array."""
        return self.lib.max(a, axis=-1, keepdims=True)

    def row_sum(self, a):
        """``sum(a, axis=-1, keepdims=True)``, a new ``(..., n, 1)`` array."""
        return self.lib.add.reduce(a, axis=-1, keepdims=True)

    def flat(self, arrays, like):
        """One new 1-D array holding ``arrays`` one after another, with the dtype and device of ``like``."""
        m = self.lib
        return m.concatenate([m.reshape(m.asarray(a, dtype=like.dtype), (-1,)) for a in arrays])

    def copy_into(self, dst, src):
        self.lib.copyto(dst, src)

    def copy(self, a):
        return a.copy()


class TorchBufferOps(BufferOps):
    """The same operations with PyTorch's ``out=`` functions, on the device of the arrays given."""

    def _bind(self, adapter: Any) -> None:
        torch = self.lib
        self.add, self.subtract, self.multiply, self.divide = torch.add, torch.sub, torch.mul, torch.div
        self.tanh, self.exp, self.log, self.sqrt = torch.tanh, torch.exp, torch.log, torch.sqrt
        self.greater = torch.gt
        self.empty_like, self.vdot = torch.empty_like, _torch_vdot
        self.sigmoid = torch.sigmoid

    def empty(self, shape, like):
        return self.lib.empty(shape, dtype=like.dtype, device=like.device)

    def matmul(self, a, b, out):
        """``out = a @ b`` for 2-D ``a`` and ``b`` (transposed views welcome)."""
        return self.lib.mm(a, b, out=out)

    def from_host(self, a, like, dtype=None):
        kind = like.dtype if dtype is None else getattr(self.lib, dtype)
        return self.lib.as_tensor(np.asarray(a), dtype=kind, device=like.device).clone()

    def index_zero(self, like):
        return self.lib.zeros(1, dtype=self.lib.int64, device=like.device)

    def take_at(self, src, at, out):
        return self.lib.index_select(src, 0, at, out=out)

    def put_at(self, dst, at, value):
        dst.index_copy_(0, at, self.lib.reshape(value, (1,)).to(dst.dtype))

    def inner(self, a, b):
        if a.ndim == 2 and b.ndim == 2:
            return self.vdot(a, b)
        return self.lib.sum(a * b, dim=(-2, -1))

    def linear(self, a, W, b, out):
        if b is None:
            return self.matmul(a, W, out)
        return self.lib.addmm(b, a, W, out=out)

    def maximum(self, a, scalar, out):
        return self.lib.clamp_min(a, scalar, out=out)

    def _on_host(self, g) -> bool:
        return g.device.type == "cpu"

    def _zero_unless_positive(self, g, z):
        return g.masked_fill_(~(z > 0), 0)

    def sum_rows(self, a, out):
        return self.lib.sum(a, 0, out=out)

    def row_max(self, a):
        return self.lib.amax(a, -1, keepdim=True)

    def row_sum(self, a):
        return self.lib.sum(a, -1, keepdim=True)

    def flat(self, arrays, like):
        return self.lib.cat([self.lib.reshape(a.to(dtype=like.dtype, device=like.device), (-1,)) for a in arrays])

    def copy_into(self, dst, src):
        dst.copy_(src)

    def copy(self, a):
        return a.clone()


def _torch_vdot(a, b):
    return a.reshape(-1) @ b.reshape(-1)
