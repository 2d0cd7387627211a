"""The buffer engine: the core's math with ``out=`` buffers (NumPy, CuPy, PyTorch), nothing allocated
per step where the ops have in-place forms.

It is a generic driver: it asks each activation, the loss and the optimizer for its in-place form
(``f_out``/``vjp_out``, ``grad_out``, ``flat_step``) and runs an op's pure form where it has none.
All parameters live in one flat buffer (each ``W`` and ``b`` a view into it), and so do their
gradients and the optimizer's moments, so an optimizer step is a handful of whole-buffer operations
however many layers there are. The weights are a ring of three such buffers: each update writes the
next weights into the oldest, so the two previous steps' weights are still there when a loss turns
out non-finite, without a copy per step. ``step`` takes row weights ``w`` (``(n, 1)``, or
``(..., n, 1)`` per member of a stack) through the loss's pure form.

It also trains a stack of networks (``anynet.Ensemble``, ``MLPSearchCV``): ``W``: ``(..., n_in, n_out)``,
``b``: ``(..., 1, n_out)``, products broadcast over the leading axes, each bias gradient one product
with a row of ones, each loss value one per member, and per-member ``lr``, ``alpha`` and optimizer
settings (``(..., 1, 1)`` arrays) spread out once to one value per parameter, so the optimizer's flat
kernel runs unchanged. A stack's whole runs keep the losses on the device until the chunk ends.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .. import backend as B
from .. import core, kernels, losses
from ..optimizers import has_flat_kernel
from ..tree import leaves, tree_map
from . import graphs


class Buffer:
    """The buffer engine. Its working state is public, for the collaborators that drive its steps
    another way (``anynet.engines.graphs`` replays them): ``ops`` (the backend's ``out=`` operations),
    ``like`` (an array of the parameters' dtype and device), ``xp``, ``opt``, ``stacked``, ``pos`` (the
    ring slot of the current weights), ``steps`` (this run's), ``fstate`` (the optimizer's flat state),
    and ``run_values``/``run_correct`` (this run's losses and correct counts so far)."""

    name = "buffer"
    row_weights = True  # through the loss's pure form; the whole-run hook is not used with weights
    stacks = True

    @staticmethod
    def refuses(backend, acts, loss, opt):
        if B.buffer_ops(backend) is None:
            return f"backend {backend!r} has no out= arrays (the buffer engine runs on {list(B.BUFFER_BACKENDS)})"
        if not has_flat_kernel(opt):
            return (
                f"the optimizer {type(opt).__name__} has no flat-buffer kernel (flat_state, tree_state, "
                "flat_step); the reference engine runs any optimizer"
            )
        return None

    def __init__(self, layers, state, *, acts, loss, opt, alpha, xp, backend) -> None:
        self.ops = ops = B.buffer_ops(backend)
        self._shapes = [(tuple(W.shape), None if b is None else tuple(b.shape)) for W, b in layers]
        self.like = layers[0][0]
        self.stacked = layers[0][0].ndim > 2
        # Own copies: the arrays the caller still holds are never written.
        first = self._pack(layers)
        self._flats = [first, ops.empty_like(first), ops.empty_like(first)]  # the other two: written before read
        self._ring = [self._views(f) for f in self._flats]
        self.pos = 0
        self._start = 0  # the ring slot this fit started from, while it is still intact
        self._acts, self._loss, self.opt, self._alpha, self.xp = acts, loss, opt, alpha, xp
        self._bufs: dict[tuple, tuple] = {}
        self._grad_flat = ops.empty_like(self._flats[0])
        self._grads = self._views(self._grad_flat)
        self._scratch = ops.empty_like(self._flats[0])
        self.fstate = opt.flat_state(state, self._pack)
        self._flat_opt = self._spread_fields(opt)
        # the optimizer's whole update as one fused kernel, where the backend compiles kernels
        self._fused_step = ops.kernel(opt.kernel()) if callable(getattr(opt, "kernel", None)) else None
        self._lr_key = self._lr_flat = None
        self.steps = 0
        self.run_values: list = []
        self.run_correct: list = []
        self._graph: graphs.GraphRun | None = None  # full-batch steps captured on this data, if any
        self._uncapturable = None  # the data whose step failed to capture: its runs go eagerly
        self._prev = None  # a stack's run that met a non-finite loss: each member's last finite weights

    def _pack(self, tree):
        """One new flat buffer holding every array of ``tree`` (a list of ``(W, b | None)``)."""
        return self.ops.flat(list(leaves(tree)), self.like)

    def _views(self, flat):
        """``flat`` seen as ``[(W, b | None), ...]`` (views: writing one writes the other)."""
        out, at = [], 0
        for shape_w, shape_b in self._shapes:
            size = math.prod(shape_w)
            W = flat[at : at + size].reshape(shape_w)
            at += size
            b = None
            if shape_b is not None:
                size = math.prod(shape_b)
                b = flat[at : at + size].reshape(shape_b)
                at += size
            out.append((W, b))
        return out

    def _spread(self, h):
        """A stack's per-member value ``(..., 1, 1)`` as one value per parameter, laid out as the flat
        buffer is."""
        xp = self.xp
        return self._pack(
            [(xp.broadcast_to(h, sw), None if sb is None else xp.broadcast_to(h, sb)) for sw, sb in self._shapes]
        )

    def _spread_fields(self, opt):
        """``opt`` with each per-member setting (an array, such as a stack's momenta) spread out."""
        if not dataclasses.is_dataclass(opt):
            return opt
        arrays = {
            f.name: self._spread(getattr(opt, f.name))
            for f in dataclasses.fields(opt)
            if f.init and getattr(getattr(opt, f.name), "ndim", 0)
        }
        return dataclasses.replace(opt, **arrays) if arrays else opt

    @property
    def layers(self):
        return self._ring[self.pos]

    @layers.setter
    def layers(self, value):
        self.ops.copy_into(self._flats[self.pos], self._pack(value))

    @property
    def state(self):
        return self.opt.tree_state(self.fstate, self._views)

    def snapshot(self):
        return self._views(self.ops.copy(self._flats[self.pos]))

    def checkpoint(self):
        """A copy of the weights and the optimizer's state, for ``restore``."""
        copy = self.ops.copy
        return copy(self._flats[self.pos]), tree_map(copy, self.fstate), self.steps  # counts stay numbers

    def restore(self, checkpoint) -> None:
        """Back to the weights and optimizer state of ``checkpoint``."""
        flat, fstate, steps = checkpoint
        self.ops.copy_into(self._flats[self.pos], flat)
        self.fstate = tree_map(self.ops.copy, fstate)
        self.steps = steps
        self._graph = None  # a captured step wrote the state arrays just replaced

    def restore_in_place(self, checkpoint) -> None:
        """``restore`` into the arrays the engine holds now (a captured step keeps writing those)."""
        flat, fstate, steps = checkpoint
        self.ops.copy_into(self._flats[self.pos], flat)
        for dst, src in zip(leaves(self.fstate), leaves(fstate), strict=True):
            self.ops.copy_into(dst, src)
        self.steps = steps

    def previous(self, k: int):
        """The weights from ``k`` (1 or 2) steps ago, still intact in the ring."""
        return self._ring[(self.pos - k) % 3]

    def last_finite(self):
        if self.stacked:
            return self._prev if self._prev is not None else tree_map(self.ops.copy, self.previous(1))
        # run() stops right after a step whose loss was not finite: that loss came from the weights
        # one step back, the last finite one from two back, unless this fit has taken fewer steps.
        values = self.run_values
        back = 2 if values and not math.isfinite(values[-1]) else 1
        return self._ring[(self.pos - back) % 3] if self.steps >= back else self._ring[self._start]

    def _buffers(self, X):
        """Per layer, this batch shape's buffers and the activation's forms:
        ``(z, y, g, q, f_out, f, vjp_out, vjp, bias_f)``, looked up once, not once a step (``bias_f``:
        the bias and the activation in one compiled pass, or ``None``); and, for a stack, a row of
        ones ``(1, n)`` whose product with ``grad_z`` sums its rows."""
        ops, n = self.ops, X.shape[-2]
        plan = []
        for (shape_w, shape_b), act in zip(self._shapes, self._acts, strict=True):
            z, y, g, q = (ops.empty((*shape_w[:-2], n, shape_w[-1]), X) for _ in range(4))
            f_out, vjp_out, bias_f = act.f_out, act.vjp_out, None
            fused_f, fused_vjp = ops.kernel(act.kernel_f), ops.kernel(act.kernel_vjp)
            if fused_f is not None:  # one pass where the backend compiles the op's kernel
                f_out = _forward_kernel(fused_f)
                if shape_b is not None:
                    bias_f = ops.kernel(kernels.bias_then(act.kernel_f))
            if fused_vjp is not None:
                vjp_out = _vjp_kernel(fused_vjp)
            plan.append((z, y, g, q, f_out, act.f, vjp_out, act.vjp, bias_f))
        ones = None
        if self.stacked:
            ones = self.xp.reshape(self.xp.ones_like(X[(0,) * (X.ndim - 2)][:, 0]), (1, n))
        self._bufs[tuple(X.shape)] = plan, ones
        return plan, ones

    def step(self, X, t, lr, w=None):
        ops, xp, stacked = self.ops, self.xp, self.stacked
        layers = self._ring[self.pos]
        n = X.shape[-2]
        plan, ones = self._bufs.get(tuple(X.shape)) or self._buffers(X)
        outs = []
        a = X
        for (W, b), (z, y, _, _, f_out, f, _, _, bias_f) in zip(layers, plan, strict=True):
            if bias_f is not None:  # the product, then the bias and the activation in one pass
                z = ops.bmatmul(a, W, z) if stacked else ops.matmul(a, W, z)
                bias_f(b, z, y)
                a = y
            elif stacked:
                z = ops.bmatmul(a, W, z)
                if b is not None:
                    z = ops.add(z, b, out=z)
                a = f(z, xp=xp) if f_out is None else f_out(ops, z, y)
            else:
                z = ops.matmul(a, W, z) if b is None else ops.linear(a, W, b, z)
                a = f(z, xp=xp) if f_out is None else f_out(ops, z, y)
            outs.append(a)
        last = len(layers) - 1
        z, _, g, q, _, _, vjp_out, vjp, _ = plan[last]
        y = a
        loss = self._loss
        if loss.grad_out is not None and w is None:
            value = loss.grad_out(ops, z, y, t, g)
        else:  # the pure form, the one that takes row weights
            value = loss.value(z, y, t, xp=xp, w=w)
            g = loss.grad_z(y, t, xp=xp, w=w) if loss.grad_z is not None else loss.grad_y(y, t, xp=xp, w=w)
        if loss.grad_z is None:  # g is dL/dy: through the output activation (g * f'(z), over g)
            g = vjp(z, y, g, xp=xp) if vjp_out is None else vjp_out(ops, z, y, g, q)
        grads = self._grads
        for i in range(last, -1, -1):
            W, b = layers[i]
            gw, gb = grads[i]
            a_in = X if i == 0 else outs[i - 1]
            if stacked:
                ops.bmatmul(ops.mT(a_in), g, gw)
                if b is not None:
                    ops.bmatmul(ones, g, gb)
            else:
                ops.matmul(a_in.T, g, gw)
                if b is not None:
                    ops.sum_rows(g, gb)
            if i > 0:
                # g is this step's buffer, or a new array an op's pure form just made: ours to write
                z, _, g_prev, q, _, _, vjp_out, vjp, _ = plan[i - 1]
                g = ops.bmatmul(g, ops.mT(W), g_prev) if stacked else ops.matmul(g, W.T, g_prev)
                y = outs[i - 1]
                g = vjp(z, y, g, xp=xp) if vjp_out is None else vjp_out(ops, z, y, g, q)
        alpha = self._alpha
        if not (isinstance(alpha, (int, float)) and alpha == 0):
            rows = n if w is None else losses.rows(X, w, xp=xp, keepdims=True)
            value = value + losses.l2_out(ops, layers, grads, alpha / rows)
        if getattr(lr, "ndim", 0):  # per member: spread out once per distinct array
            if lr is not self._lr_key:
                self._lr_key, self._lr_flat = lr, self._spread(lr)
            lr = self._lr_flat
        nxt = (self.pos + 1) % 3
        if self._fused_step is not None:
            self.fstate = self._flat_opt.fused_step(
                self._fused_step, self._flats[self.pos], self._flats[nxt], self._grad_flat, self.fstate, lr
            )
        else:
            self.fstate = self._flat_opt.flat_step(
                ops, self._flats[self.pos], self._flats[nxt], self._grad_flat, self._scratch, self.fstate, lr
            )
        self.pos = nxt
        self.steps += 1
        return value, outs[-1]

    def run(self, X, t, lrs, track_acc):
        """Full-batch epochs with no Python between them but the step and reading the loss back (which
        the epoch loop does too); stops right after the first non-finite loss, so ``last_finite`` can
        find the weights that produced the one before it in the ring. Where a capture serves the
        backend and device (``anynet.engines.graphs``: PyTorch on CUDA), the steps after the first
        few replay a CUDA graph, and the losses are read back once a block."""
        self.steps = 0
        self._start = self.pos
        self.run_values, self.run_correct = [], []
        if self.stacked:
            return self._run_stack(X, t, lrs, track_acc)
        capture = graphs.capture_for(self, X, lrs)
        if capture is None:
            self._eager(X, t, lrs, track_acc)
            return self._host_values()
        key = graphs.key(X, t, track_acc)
        graph = self._graph
        if key == self._uncapturable:
            self._eager(X, t, lrs, track_acc)
            return self._host_values()
        if graph is None or graph.key != key:
            self._graph = None
            with capture.warm_up(self.like):
                self._eager(X, t, lrs[: graphs.WARM_UP], track_acc)
            self.run_correct = [float(c) for c in self.run_correct]
            done = len(self.run_values)
            if done < graphs.WARM_UP or not math.isfinite(self.run_values[-1]):
                return self._host_values()
            try:
                graph = self._graph = graphs.GraphRun(self, X, t, track_acc, capture)
            except Exception:  # noqa: BLE001 - a step the library cannot capture still trains, eagerly
                # (an op of the step copies from the host, say); nothing ran, the state is as it was
                self._uncapturable = key
                self._eager(X, t, lrs[done:], track_acc)
                return self._host_values()
            lrs = lrs[done:]
        graph.to_arrays()
        try:
            graph.run(lrs)
        finally:
            graph.to_numbers()
        return self._host_values()

    def _eager(self, X, t, lrs, track_acc) -> None:
        values, correct = self.run_values, self.run_correct
        step, isfinite, xp = self.step, math.isfinite, self.xp
        for lr in lrs:
            value, y = step(X, t, lr)
            v = float(value)
            values.append(v)
            if track_acc:
                correct.append(core.accuracy_sum(y, t, xp=xp))
            if not isfinite(v):
                break

    def _run_stack(self, X, t, lrs, track_acc):
        """A stack's full-batch epochs, the losses left on the device until the chunk ends. If one turns
        out not finite, the chunk runs again from its start, keeping for each member the weights that
        produced its last finite loss (for ``last_finite``)."""
        lrs = self._rates(lrs)
        start = self.checkpoint()
        self._prev = None
        self._stack_epochs(X, t, lrs, track_acc, careful=False)
        values, correct = self._host_values()
        if not np.isfinite(values).all():
            self.restore(start)
            self._stack_epochs(X, t, lrs, track_acc, careful=True)
            values, correct = self._host_values()
        return values, correct

    def _rates(self, lrs):
        """The chunk's rates (numbers, or host ``(epochs, ..., 1, 1)``) as the step takes them: numbers,
        or per-member arrays on the stack's device, one array per run of equal rows (the step spreads
        each distinct one over its parameters once)."""
        out, last_host, last = [], None, None
        for lr in lrs:
            if np.ndim(lr) == 0:
                out.append(float(lr))
                continue
            if last_host is None or not np.array_equal(lr, last_host):
                last_host, last = lr, self.ops.from_host(np.asarray(lr), self.like)
            out.append(last)
        return out

    def _stack_epochs(self, X, t, lrs, track_acc, careful):
        xp, values, correct = self.xp, [], []
        self.run_values, self.run_correct = values, correct
        ok = prev = None
        for lr in lrs:
            before = self.snapshot() if careful else None
            value, y = self.step(X, t, lr)
            values.append(value)
            if track_acc:
                correct.append(core.accuracy_sum(y, t, xp=xp))
            if careful:
                good = xp.isfinite(value) if ok is None else ok & xp.isfinite(value)
                prev = before if prev is None else core.where_members(good, before, prev, xp=xp)
                ok = good
        if careful:
            self._prev = prev

    def _host_values(self, values=None, correct=None):
        """The run's losses and correct counts as host arrays (either may still be device arrays)."""
        values = self.run_values if values is None else values
        correct = self.run_correct if correct is None else correct
        if values and not isinstance(values[0], float):
            values = B.to_numpy(self.xp.stack(values))
        if correct and not isinstance(correct[0], float):
            correct = B.to_numpy(self.xp.stack(correct))
        return np.asarray(values, dtype=float), np.asarray(correct, dtype=float)

    def partial(self):
        """After ``run`` was cut short (an interrupt): the losses (and correct counts) of the epochs
        it completed, and the weights they ended with. A step commits its weights last, so if the
        cut came between a step and its loss being kept, those weights are one step back."""
        values, correct = list(self.run_values), list(self.run_correct)[: len(self.run_values)]
        if self._graph is not None and self._graph.pending:  # replayed steps whose values were not read yet
            more, hits = self._graph.unread()
            values, correct = values + more, correct + hits
        back = 1 if self.steps > len(values) else 0
        layers = self._views(self.ops.copy(self._flats[(self.pos - back) % 3]))
        return (*self._host_values(values, correct), layers)


def _forward_kernel(run):
    """A compiled ``kernel_f`` in the shape of ``f_out(ops, z, out)``."""

    def f_out(ops, z, out):
        return run(z, out)

    return f_out


def _vjp_kernel(run):
    """A compiled ``kernel_vjp`` in the shape of ``vjp_out(ops, z, y, g, q)``, rewriting ``g``."""

    def vjp_out(ops, z, y, g, q):
        return run(z, y, g)

    return vjp_out
