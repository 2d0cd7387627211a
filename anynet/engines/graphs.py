"""Whole full-batch runs of the buffer engine as replayed CUDA graphs: one launch a step, and the
host waits for the device once a block of steps, not once a step.

The buffer engine's step writes only its own buffers, so it can be captured once per ring position
(the three weight buffers it cycles through) and replayed. What changes from step to step then lives
on the device: the learning rate is read from a device array of the block's rates at a device
index, the loss (and correct count) is written to a device array at that index, and an optimizer's
step count becomes a 0-d float64 device array that its ``flat_step`` advances in place (only an
optimizer that says ``graph_safe = True`` is captured: it promises to read its numbers that way).
Adam's bias correction is then computed on the device, by the library's ``pow`` rather than the
host's: the same value to the last bit or two.

Divergence keeps its meaning: each block starts from a copy of the weights and optimizer state, and
if a loss in it is not finite, that copy is put back and the block's steps are taken again one by
one, up to that loss, as the eager loop takes them.

A capture is a small adapter per library (``CAPTURES``): PyTorch's ``torch.cuda.CUDAGraph``. On the
CPU, ``Eager`` stands in for it ("capturing" keeps the step's body, "replaying" calls it), so the
tests drive all of this module (the device slots, the counts as arrays, the recovery, an
interrupt's partial result) on any machine; the GPU check runs the real capture.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import numpy as np

from .. import core

#: steps between two reads of the losses (each read waits for the device)
BLOCK = 1024
#: the first steps of a new capture run eagerly (PyTorch's warm-up); shorter runs are not captured
WARM_UP = 3
MIN_STEPS = 16
#: set to 0 to run every step eagerly
ENV = "ANYNET_CUDA_GRAPHS"


class Eager:
    """The stand-in capture: the body itself, called at each replay."""

    def usable(self, X: Any) -> bool:
        return True

    def warm_up(self, like: Any) -> Any:
        return contextlib.nullcontext()

    def __call__(self, body: Any, like: Any) -> Any:
        return body


class TorchGraph:
    """``torch.cuda.CUDAGraph``: the warm-up steps and the captures on one side stream per device."""

    def __init__(self) -> None:
        self._streams: dict[Any, Any] = {}

    def usable(self, X: Any) -> bool:
        return bool(X.is_cuda)

    def _side(self, like: Any) -> Any:
        import torch

        if like.device not in self._streams:
            self._streams[like.device] = torch.cuda.Stream(device=like.device)
        return self._streams[like.device]

    @contextlib.contextmanager
    def warm_up(self, like: Any):
        import torch

        side, main = self._side(like), torch.cuda.current_stream(like.device)
        side.wait_stream(main)
        with torch.cuda.stream(side):
            yield
        main.wait_stream(side)

    def __call__(self, body: Any, like: Any) -> Any:
        import torch

        side, main = self._side(like), torch.cuda.current_stream(like.device)
        side.wait_stream(main)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=side):
            body()
        main.wait_stream(side)
        return graph.replay


#: backend -> its capture; a backend not named here runs its steps eagerly
CAPTURES: dict[str, Any] = {"torch": TorchGraph()}


def capture_for(eng: Any, X: Any, lrs: Any) -> Any:
    """The capture that can run this job, or ``None``: a single network (not a stack), rates that are
    plain numbers, an optimizer that reads its numbers as arrays, a device the capture serves."""
    if os.environ.get(ENV, "1").strip() == "0" or eng.stacked or len(lrs) < MIN_STEPS:
        return None
    capture = CAPTURES.get(eng.ops.name)
    if capture is None or not _graph_safe(eng.opt) or not capture.usable(X):
        return None
    if not isinstance(lrs[0], (int, float, np.floating)) or isinstance(lrs[0], bool):
        return None
    return capture


def _graph_safe(opt: Any) -> bool:
    """``graph_safe``, said by the class that wrote ``flat_step`` or by one below it: a subclass that
    rewrites the step makes no promise until it says so itself."""
    mro = type(opt).__mro__
    wrote = next((i for i, c in enumerate(mro) if "flat_step" in vars(c)), None)
    said = next((i for i, c in enumerate(mro) if "graph_safe" in vars(c)), None)
    return wrote is not None and said is not None and said <= wrote and vars(mro[said])["graph_safe"] is True


def key(X: Any, t: Any, track_acc: bool) -> tuple:
    """What a captured step is tied to: the data's addresses and layouts."""
    return (_address(X), tuple(X.shape), _address(t), tuple(t.shape), track_acc)


def _address(a: Any) -> Any:
    ptr = getattr(a, "data_ptr", None)
    if callable(ptr):  # torch
        return ptr(), tuple(a.stride())
    return id(a)  # the stand-in's body holds the array itself, so its id cannot be taken by another


def _numbers(tree: Any) -> list[tuple[int, ...]]:
    """Where the plain numbers (an optimizer's step count) sit in ``tree``, as index paths."""
    if isinstance(tree, (list, tuple)):
        return [(i, *path) for i, item in enumerate(tree) for path in _numbers(item)]
    return [()] if isinstance(tree, (int, float)) and not isinstance(tree, bool) else []


def _get(tree: Any, path: tuple[int, ...]) -> Any:
    for i in path:
        tree = tree[i]
    return tree


def _set(tree: Any, path: tuple[int, ...], value: Any) -> Any:
    if not path:
        return value
    items = list(tree)
    items[path[0]] = _set(items[path[0]], path[1:], value)
    return type(tree)(items)


class GraphRun:
    """The buffer engine ``eng``'s full-batch steps on ``X``, ``t``, captured by ``capture``: made once
    the engine has taken a few steps on this data, then reused by every ``run`` on it."""

    def __init__(self, eng: Any, X: Any, t: Any, track_acc: bool, capture: Any) -> None:
        self.eng, self.X, self.t, self.track_acc = eng, X, t, track_acc
        ops, like = eng.ops, eng.like
        self.key = key(X, t, track_acc)
        self.lrs = ops.empty((BLOCK,), like)
        self.losses = ops.empty((BLOCK,), like)
        self.correct = ops.empty((BLOCK,), like) if track_acc else None
        self.lr = ops.empty((1,), like)
        self.lr0 = self.lr.reshape(())  # the rate as the step reads it: a 0-d view of the slot
        self.at = ops.index_zero(like)
        #: the optimizer state's numbers, each a 0-d array the captured step reads and advances
        self.paths = _numbers(eng.fstate)
        self.kinds = [type(_get(eng.fstate, path)) for path in self.paths]
        # float64 whatever the network's dtype: Adam's 1 - 0.999**count loses its digits in float32
        self.slots = [ops.from_host(np.zeros(()), like, "float64") for _ in self.paths]
        self.pending = 0  # steps replayed in the current block whose values are not read yet
        pos, steps, fstate = eng.pos, eng.steps, eng.fstate
        self.to_arrays()
        self.replays: list[Any] = [None, None, None]  # by ring slot
        try:
            for p in range(3):
                self.replays[p] = capture(self._body(p), like)
        finally:
            eng.pos, eng.steps, eng.fstate = pos, steps, fstate  # capturing ran the body's Python once

    def _body(self, p: int) -> Any:
        eng, X, t = self.eng, self.X, self.t
        ops = eng.ops

        def body() -> None:
            ops.take_at(self.lrs, self.at, self.lr)
            eng.pos = p
            value, y = eng.step(X, t, self.lr0)
            ops.put_at(self.losses, self.at, value)
            if self.track_acc:
                ops.put_at(self.correct, self.at, core.accuracy_sum(y, t, xp=eng.xp))
            ops.add(self.at, 1, out=self.at)

        return body

    def to_arrays(self) -> None:
        """The engine's optimizer state with its numbers in this run's 0-d slots (their values copied in)."""
        eng, fstate = self.eng, self.eng.fstate
        for path, slot in zip(self.paths, self.slots, strict=True):
            value = _get(fstate, path)
            if value is not slot:
                eng.ops.copy_into(slot, eng.ops.from_host(np.full((), value), slot))
                fstate = _set(fstate, path, slot)
        eng.fstate = fstate

    def to_numbers(self) -> None:
        """The slots read back into plain numbers, as the rest of anynet keeps an optimizer's counts."""
        eng, fstate = self.eng, self.eng.fstate
        for path, slot, kind in zip(self.paths, self.slots, self.kinds, strict=True):
            value = float(np.asarray(eng.ops.to_host(slot)).reshape(-1)[0])
            fstate = _set(fstate, path, round(value) if kind is int else kind(value))
        eng.fstate = fstate

    def run(self, lrs: Any) -> None:
        """Like ``Buffer.run``'s loop: the engine's ``_run_values`` (and ``_run_correct``) get one
        value per step, stopping after a non-finite loss."""
        eng, ops = self.eng, self.eng.ops
        values, correct = eng.run_values, eng.run_correct
        for lo in range(0, len(lrs), BLOCK):
            block = [float(lr) for lr in lrs[lo : lo + BLOCK]]
            k = len(block)
            ops.copy_into(self.lrs[:k], ops.from_host(np.asarray(block), self.lrs))
            ops.multiply(self.at, 0, out=self.at)
            saved, pos, steps = eng.checkpoint(), eng.pos, eng.steps
            self.pending = 0
            for _ in range(k):
                at, done = eng.pos, eng.steps
                self.replays[at]()
                eng.pos, eng.steps = (at + 1) % 3, done + 1
                self.pending += 1
            got, hits = self.unread()
            self.pending = 0
            bad = [i for i, v in enumerate(got) if not np.isfinite(v)]
            if bad:
                # back to the block's start, then step by step up to its first non-finite loss
                eng.pos, eng.steps = pos, steps
                eng.restore_in_place(saved)
                for lr in block[: bad[0] + 1]:
                    value, y = eng.step(self.X, self.t, lr)
                    values.append(float(value))
                    if self.track_acc:
                        correct.append(float(core.accuracy_sum(y, self.t, xp=eng.xp)))
                return
            values.extend(got)
            correct.extend(hits)

    def unread(self) -> tuple[list[float], list[float]]:
        """The values of the steps replayed in the current block (all of them, once it is done)."""
        k, ops = self.pending, self.eng.ops
        if not k:
            return [], []
        got = np.asarray(ops.to_host(self.losses[:k]), dtype=float).tolist()
        hits = np.asarray(ops.to_host(self.correct[:k]), dtype=float).tolist() if self.track_acc else []
        return got, hits
