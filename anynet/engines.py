"""How one training step runs: the pure reference path, an in-place path for NumPy and CuPy, and a
compiled path for JAX. All three do the core's math; the reference is what the others are tested
against.

An engine owns the parameters and optimizer state while ``fit`` runs: ``step(X, t, lr, w=None)`` trains
on one batch (``w``: its ``(n, 1)`` sample weights, or ``None``) and returns ``(loss, y)`` with the loss
in the loss's own batch reduction, ``layers`` and ``state`` are the live values, and ``snapshot()``
gives layers that later steps will not overwrite.
"""

from __future__ import annotations

from . import backend as B
from . import core
from .optimizers import SGD, Adam

ENGINES = ("auto", "reference", "inplace", "compiled")


class Reference:
    """The pure core, one new set of arrays per step; runs on every backend."""

    name = "reference"

    def __init__(self, layers, state, *, acts, loss, opt, alpha, xp, backend) -> None:
        self.layers, self.state = layers, state
        self._acts, self._loss, self._opt, self._alpha, self._xp = acts, loss, opt, alpha, xp

    def step(self, X, t, lr, w=None):
        value, grads, y = core.loss_and_grads(
            self.layers, X, t, acts=self._acts, loss=self._loss, alpha=self._alpha, w=w, xp=self._xp
        )
        self.layers, self.state = self._opt.step(self.layers, grads, self.state, lr, xp=self._xp)
        return value, y

    def snapshot(self):
        return self.layers


# --------------------------------------------------------------------------- in place (NumPy, CuPy)

IDENTITY, SIGMOID, TANH, RELU, SOFTMAX_CE, OTHER = range(6)
_KINDS = {"identity": IDENTITY, "sigmoid": SIGMOID, "tanh": TANH, "relu": RELU}


class Inplace:
    """The same math with NumPy/CuPy ``out=`` buffers: nothing is allocated per step.

    All parameters live in one flat buffer (each ``W`` and ``b`` a view into it), and so do their
    gradients and the optimizer's moments, so an optimizer step is a handful of whole-buffer
    operations however many layers there are. The weights are a ring of three such buffers: each
    update writes the next weights into the oldest, so the two previous steps' weights are still
    there when a loss turns out non-finite, without a copy per step. Activations other than
    identity/sigmoid/tanh/relu use the pure functions for that layer.
    """

    name = "inplace"

    def __init__(self, layers, state, *, acts, loss, opt, alpha, xp, backend) -> None:
        m = self._m = B.inplace_module(backend)
        self._shapes = [(W.shape, None if b is None else b.shape) for W, b in layers]
        self._dtype = layers[0][0].dtype
        # Own copies: the arrays the caller still holds are never written.
        self._flats = [self._pack(layers) for _ in range(3)]
        self._ring = [self._views(f) for f in self._flats]
        self._pos = 0
        self._acts, self._loss, self._opt, self._alpha, self._xp = acts, loss, opt, alpha, xp
        self._kinds = [_KINDS.get(a.name, OTHER) for a in acts]
        if acts[-1].name == "softmax" and loss.name == "cross_entropy":
            self._kinds[-1] = SOFTMAX_CE  # one pass gives the softmax and the log-softmax the loss needs
        self._expit = B.sigmoid_kernel(backend)
        self._bufs: dict[int, dict] = {}
        self._grad_flat = m.empty_like(self._flats[0])
        self._grads = self._views(self._grad_flat)
        self._scratch = m.empty_like(self._flats[0])
        self._adam = isinstance(opt, Adam)
        self._momentum = isinstance(opt, SGD) and bool(opt.momentum)
        if self._adam:
            count, first, second = state
            self._count, self._m1, self._m2 = count, self._pack(first), self._pack(second)
        elif self._momentum:
            self._vel = self._pack(state)
        self._squared = {"half_sse": 1, "mse": 2, "half_mse": 3}.get(loss.name, 0)

    def _pack(self, tree):
        """One new flat buffer holding every array of ``tree`` (a list of ``(W, b | None)``)."""
        m = self._m
        return m.concatenate([m.reshape(m.asarray(a, dtype=self._dtype), (-1,)) for a in _flat(tree)])

    def _views(self, flat):
        """``flat`` seen as ``[(W, b | None), ...]`` (views: writing one writes the other)."""
        out, at = [], 0
        for shape_w, shape_b in self._shapes:
            size = shape_w[0] * shape_w[1]
            W = flat[at : at + size].reshape(shape_w)
            at += size
            b = None
            if shape_b is not None:
                b = flat[at : at + shape_b[0]]
                at += shape_b[0]
            out.append((W, b))
        return out

    @property
    def layers(self):
        return self._ring[self._pos]

    @layers.setter
    def layers(self, value):
        self._m.copyto(self._flats[self._pos], self._pack(value))

    @property
    def state(self):
        if self._adam:
            return (self._count, self._views(self._m1), self._views(self._m2))
        return self._views(self._vel) if self._momentum else None

    def snapshot(self):
        return self._views(self._flats[self._pos].copy())

    def previous(self, k: int):
        """The weights from ``k`` (1 or 2) steps ago, still intact in the ring."""
        return self._ring[(self._pos - k) % 3]

    def _buffers(self, n, dtype):
        m = self._m
        widths = [shape_w[1] for shape_w, _ in self._shapes]
        bufs = {key: [m.empty((n, k), dtype=dtype) for k in widths] for key in ("z", "y", "g", "q")}
        bufs["grads"] = self._grads
        self._bufs[n] = bufs
        return bufs

    def step(self, X, t, lr, w=None):
        if w is not None:
            msg = "the in-place engine has no per-row weights; train with sample_weight on engine='reference'"
            raise ValueError(msg)
        m, dot, kinds = self._m, self._m.dot, self._kinds
        layers = self._ring[self._pos]
        n = X.shape[0]
        bufs = self._bufs.get(n) or self._buffers(n, X.dtype)
        zs, ys, gs, qs = bufs["z"], bufs["y"], bufs["g"], bufs["q"]
        outs = []
        a = X
        for i, (W, b) in enumerate(layers):
            z = zs[i]
            dot(a, W, out=z)
            if b is not None:
                m.add(z, b, out=z)
            kind = kinds[i]
            if kind == IDENTITY:
                a = z
            elif kind == SIGMOID:
                a = ys[i]
                if self._expit is not None:
                    self._expit(z, out=a)
                else:  # the reference's 0.5*tanh(0.5*z) + 0.5
                    m.multiply(z, 0.5, out=a)
                    m.tanh(a, out=a)
                    m.multiply(a, 0.5, out=a)
                    m.add(a, 0.5, out=a)
            elif kind == TANH:
                a = m.tanh(z, out=ys[i])
            elif kind == RELU:
                a = m.maximum(z, 0, out=ys[i])
            elif kind == SOFTMAX_CE:
                # the reference's softmax and log-softmax: shifted = z - max; y = e^shifted / Σ
                shifted, a = qs[i], ys[i]
                m.subtract(z, m.max(z, axis=1, keepdims=True), out=shifted)
                m.exp(shifted, out=a)
                total = m.add.reduce(a, axis=1, keepdims=True)
                m.divide(a, total, out=a)
            else:
                a = self._acts[i].f(z, xp=self._xp)
            outs.append(a)
        last = len(layers) - 1
        y, z, g = a, zs[last], gs[last]
        loss, sq = self._loss, self._squared
        # dL/dz at the output; the squared losses share d = y - t between the value and the gradient.
        if sq:
            m.subtract(y, t, out=g)
            ss = m.vdot(g, g)
            if sq == 1:
                value = 0.5 * ss
            elif sq == 2:
                value = ss / (n * t.shape[1])
                m.multiply(g, 2 / (n * t.shape[1]), out=g)
            else:
                value = (0.5 / n) * ss
                m.multiply(g, 1 / n, out=g)
            g = self._vjp(last, z, y, g, qs[last])
        elif kinds[last] == SOFTMAX_CE:
            # -Σ t·(shifted - log Σ) / n, from what the forward pass left in qs[last]
            value = (m.vdot(m.log(total), m.add.reduce(t, axis=1, keepdims=True)) - m.vdot(t, shifted)) / n
            m.subtract(y, t, out=g)
            m.multiply(g, 1 / n, out=g)
        elif loss.grad_z is not None:
            value = loss.value(z, y, t, xp=self._xp)
            m.subtract(y, t, out=g)
            m.multiply(g, 1 / n, out=g)
        else:
            value = loss.value(z, y, t, xp=self._xp)
            g = self._vjp(last, z, y, loss.grad_y(y, t, xp=self._xp), qs[last])
        for i in range(last, -1, -1):
            W, b = layers[i]
            gw, gb = bufs["grads"][i]
            dot((X if i == 0 else outs[i - 1]).T, g, out=gw)
            if b is not None:
                m.add.reduce(g, axis=0, out=gb)
            if i > 0:
                dot(g, W.T, out=gs[i - 1])
                g = self._vjp(i - 1, zs[i - 1], outs[i - 1], gs[i - 1], qs[i - 1])
        if self._alpha:
            scale = self._alpha / n
            value = value + 0.5 * scale * sum(m.vdot(W, W) for W, _ in layers)
            for (W, _), (gw, _) in zip(layers, bufs["grads"], strict=True):
                gw += scale * W
        self._update(lr)
        return value, y

    def _vjp(self, i, z, y, g, q):
        """``g * f'(z)``, written over ``g`` (a buffer of this step), with ``q`` as scratch."""
        kind, m = self._kinds[i], self._m
        if kind == IDENTITY:
            return g
        if kind == SIGMOID:
            m.subtract(1, y, out=q)
            m.multiply(y, q, out=q)
        elif kind == TANH:
            m.multiply(y, y, out=q)
            m.subtract(1, q, out=q)
        elif kind == RELU:
            m.greater(z, 0, out=q)
        else:
            return self._acts[i].vjp(z, y, g, xp=self._xp)
        return m.multiply(g, q, out=g)

    def _update(self, lr):
        """Write the next weights into the oldest ring slot, in the reference optimizers' order of
        operations, over whole flat buffers, then make it current."""
        m, opt = self._m, self._opt
        p, pn = self._flats[self._pos], self._flats[(self._pos + 1) % 3]
        g, s = self._grad_flat, self._scratch
        if self._adam:
            self._count += 1
            b1, b2, eps = opt.beta_1, opt.beta_2, opt.epsilon
            lr_t = lr * (1 - b2**self._count) ** 0.5 / (1 - b1**self._count)
            mo, ve = self._m1, self._m2
            m.multiply(mo, b1, out=mo)
            m.multiply(g, 1 - b1, out=s)
            m.add(mo, s, out=mo)
            m.multiply(g, g, out=s)
            m.multiply(s, 1 - b2, out=s)
            m.multiply(ve, b2, out=ve)
            m.add(ve, s, out=ve)
            m.sqrt(ve, out=s)
            m.add(s, eps, out=s)
            m.multiply(mo, lr_t, out=g)
            m.divide(g, s, out=g)
            m.subtract(p, g, out=pn)
        elif self._momentum:
            mu, v = opt.momentum, self._vel
            m.multiply(v, mu, out=v)
            m.multiply(g, lr, out=g)
            m.subtract(v, g, out=v)
            if opt.nesterov:
                m.multiply(v, mu, out=s)
                m.subtract(s, g, out=s)
                m.add(p, s, out=pn)
            else:
                m.add(p, v, out=pn)
        else:
            if lr != 1.0:
                m.multiply(g, lr, out=g)
            m.subtract(p, g, out=pn)
        self._pos = (self._pos + 1) % 3


def _flat(tree):
    return [a for layer in tree for a in layer if a is not None]


def select(engine: str, backend: str) -> type:
    """The engine class for a request (``"auto"`` picks in-place where the backend has it)."""
    if engine not in ENGINES:
        msg = f"unknown engine {engine!r}; expected one of {list(ENGINES)}"
        raise ValueError(msg)
    has_inplace = B.inplace_module(backend) is not None
    if engine == "auto":
        return Inplace if has_inplace else Reference
    if engine == "reference":
        return Reference
    if engine == "inplace":
        if not has_inplace:
            msg = f"engine='inplace' needs NumPy or CuPy; backend {backend!r} has no in-place arrays"
            raise ValueError(msg)
        return Inplace
    if backend != "jax":
        msg = f"engine='compiled' is available on the jax backend; {backend!r} has no compiler here"
        raise ValueError(msg)
    from .compiled import Compiled

    return Compiled
