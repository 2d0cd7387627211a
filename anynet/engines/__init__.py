"""Executors: how training steps run. Each implements the ``Engine`` protocol below and registers
itself in one line of ``REGISTRY``; ``fit`` talks to an engine only through the protocol. An engine
that trains where the data lives (other machines) also names a *site* hook in its line: the faces
ask ``site_for`` where a fit runs, and the data intake (``anynet.intake``) has the site prepare the rows.

All engines do the core's math. The reference engine *is* the core (``anynet.core`` and the pure forms
of the ops); the others ask each op for a faster form of itself and fall back to the pure one, and
``tests/test_engines.py`` holds every engine to the reference, op by op, as the registries grow.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Engine(Protocol):
    """What ``fit`` may call while an engine owns the parameters and optimizer state.

    ``__init__(layers, state, *, acts, loss, opt, alpha, xp, backend)`` takes the starting
    parameters ``[(W, b | None), ...]`` and the optimizer's pure state; the caller's arrays are never
    written. ``step(X, t, lr)`` trains on one batch and returns ``(loss, y)``, the loss in the loss's
    own batch reduction as a 0-d array (not read back), ``y`` the batch's output. ``layers`` and
    ``state`` are the live values (in the pure optimizer's state format); ``snapshot()`` gives layers
    that later steps will not overwrite.

    An engine whose class says ``stacks = True`` also trains a stack of networks of one shape: ``W``:
    ``(*members, n_in, n_out)``, ``b``: ``(*members, 1, n_out)``, the core's math broadcast over the
    leading member axes, so that each member computes what it would alone. Its losses (and correct
    counts) are then one per member, ``lr`` and ``alpha`` numbers or ``(*members, 1, 1)`` arrays.

    Optional hooks, looked up with ``getattr``:

    - ``refuses(backend, acts, loss, opt) -> str | None`` (a staticmethod): why this engine cannot run
      that job, or ``None``; ``engine="auto"`` skips an engine that refuses, a named one raises.
    - ``run(X, t, lrs, track_acc) -> (values, correct)``: many full-batch epochs in one call (``lrs``
      numbers, or host ``(epochs, *members, 1, 1)``), one loss (and correct count) per epoch and member
      as host arrays; it may stop once every member has had a non-finite loss.
    - ``epoch(X, t, order, bs, lr, track_acc) -> (total, correct)``: one whole mini-batch epoch over
      ``X[order]`` in one call (``order`` a host permutation, or ``None`` for the given order).
    - ``last_finite()``: after ``run``, per member, the layers that produced its last finite loss of
      this fit (or the starting ones).
    - ``previous(k)``: the weights from ``k`` (1 or 2) steps ago, kept without a copy.
    - ``remote = True``: the batch outputs stay where the data lives (other machines), so ``fit``
      runs every epoch, full batch too, through ``epoch``, and reads nothing of ``step``'s ``y``.

    Class attributes ``row_weights`` and ``sparse_input`` (default ``False``) say whether ``step``
    takes a keyword ``w`` (``(n, 1)`` row weights) and a SciPy sparse ``X``.
    """

    name: str
    layers: Any
    state: Any

    def step(self, X: Any, t: Any, lr: float) -> tuple[Any, Any]: ...

    def snapshot(self) -> Any: ...


class Site(Protocol):
    """Where a fit trains when its rows stay where they live (a cluster's workers), as an engine's
    ``site`` hook returns it: ``f(X, client, engine) -> Site | None`` claims a fit of ``X`` (``client``:
    the fit's ``client=`` option, ``engine``: its ``engine=``), or returns ``None`` to leave it to this
    process; a request it cannot serve (a closed client, say) raises.

    ``engine``: the registered engine that trains there. ``prepare(spec, X, t, loss, classes, *,
    sample_weight=None, labels=("X", "t"))`` checks ``X`` and ``t`` for a model of ``spec``
    (``anynet.intake.Spec``) and returns them as the engine takes them, with the classes ``t`` was
    encoded against; ``hold(arrays)`` keeps a dict of them in place for the fit; ``running()`` is the
    context the fit trains in. ``host_index``: rows are picked with host integers.
    """

    engine: str
    host_index: bool

    def prepare(self, spec: Any, X: Any, t: Any, loss: Any, classes: Any, **options: Any) -> tuple: ...

    def hold(self, arrays: dict[str, Any]) -> dict[str, Any]: ...

    def running(self) -> contextlib.AbstractContextManager: ...


@dataclass(frozen=True)
class Entry:
    """A registered engine: its class, or where it lives as ``"module:Class"`` (imported on first
    use, so JAX is imported only when asked for), the backends whose ``engine="auto"`` it serves, in
    order of preference, and its ``site`` hook (a function, or ``"module:function"``), if it trains
    where the data lives."""

    target: str | type
    auto: tuple[str, ...] = ()
    site: str | Callable[[Any, Any, str], Site | None] | None = None

    def load(self) -> type:
        return _load(self.target)


#: name -> engine; a new executor is one module and one line here
REGISTRY: dict[str, Entry] = {
    "reference": Entry("anynet.engines.reference:Reference"),
    "buffer": Entry("anynet.engines.buffer:Buffer", auto=("numpy", "cupy", "torch")),
    "compiled": Entry("anynet.engines.compiled:Compiled", auto=("jax",)),
    # chosen where its site claims the fit (a dask.distributed client is active), never as a backend's auto
    "distributed": Entry("anynet.engines.distributed:Distributed", site="anynet.cluster:claim"),
}
#: other names accepted for an engine
ALIASES = {"inplace": "buffer"}


def _load(target: str | Any) -> Any:
    if not isinstance(target, str):
        return target
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def site_for(X: Any, client: Any, engine: str) -> Site | None:
    """Where a fit of ``X`` trains when its rows stay where they live: the site of the first
    registered engine whose ``site`` hook claims it, or ``None`` for this process. ``client`` and
    ``engine``: the fit's ``client=`` and ``engine=`` options."""
    for entry in REGISTRY.values():
        if entry.site is not None:
            site = _load(entry.site)(X, client, engine)
            if site is not None:
                return site
    return None


def stacks(engine: str) -> bool:
    """Whether ``engine`` (a name ``check`` takes) can train a stack of members: ``"auto"`` always
    can (the reference does); a named engine says so with ``stacks = True``."""
    engine = check(engine)
    if engine == "auto":
        return True
    try:
        return bool(getattr(REGISTRY[engine].load(), "stacks", False))
    except ImportError:
        return False


def names() -> list[str]:
    return ["auto", *REGISTRY, *ALIASES]


def check(engine: str) -> str:
    """The registered name ``engine`` stands for; a ValueError lists the valid names otherwise."""
    if engine == "auto" or engine in REGISTRY:
        return engine
    if engine in ALIASES:
        return ALIASES[engine]
    msg = f"unknown engine {engine!r}; expected one of {names()}"
    raise ValueError(msg)


def select(
    engine: str,
    backend: str,
    *,
    acts: Any,
    loss: Any,
    opt: Any,
    weighted: bool = False,
    sparse: bool = False,
    stack: bool = False,
) -> type:
    """The engine class that runs this job: the named one (a ValueError says why it can't), or for
    ``"auto"`` the first engine serving ``backend`` that takes the job, else the reference.
    ``weighted``: the rows carry weights; ``sparse``: ``X`` is a SciPy sparse matrix; ``stack``: the
    parameters are a stack of members. An engine takes those only if it says so (``row_weights``,
    ``sparse_input``, ``stacks`` class attributes)."""
    asked, engine = engine, check(engine)
    if engine == "auto":
        for entry in REGISTRY.values():
            if backend in entry.auto:
                cls = entry.load()
                if _refusal(cls, backend, acts, loss, opt, weighted, sparse, stack) is None:
                    return cls
        return REGISTRY["reference"].load()
    try:
        cls = REGISTRY[engine].load()
    except ImportError as exc:  # e.g. the compiled engine without JAX installed
        msg = f"engine={asked!r} cannot run this: it needs {exc.name or 'a library'}, which is not installed ({exc})"
        raise ValueError(msg) from None
    reason = _refusal(cls, backend, acts, loss, opt, weighted, sparse, stack)
    if reason is not None:
        msg = f"engine={asked!r} cannot run this: {reason}; use engine='auto' or engine='reference'"
        raise ValueError(msg)
    return cls


def _refusal(cls, backend, acts, loss, opt, weighted: bool, sparse: bool, stack: bool) -> str | None:
    if stack and not getattr(cls, "stacks", False):
        return "it trains one network, not a stack of members"
    if weighted and not getattr(cls, "row_weights", False):
        return "it takes no row weights (sample_weight)"
    if sparse and not getattr(cls, "sparse_input", False):
        return "it takes no sparse X"
    refuses = getattr(cls, "refuses", None)
    return None if refuses is None else refuses(backend, acts, loss, opt)
