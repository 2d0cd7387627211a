"""Export to ONNX: a ``Network`` (or an ``Ensemble``'s mean output) as an ONNX model.

The graph is the forward pass, layer by layer: ``MatMul`` by ``W``: ``(n_in, n_out)`` (an
initializer), ``Add`` of the bias ``(n_out,)``, then the activation's own ONNX form (see
``anynet.activations``: an activation without one is refused). onnx is optional (``pip install onnx``)
and imported when a model is written, so ``import anynet.onnx`` does not import it.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from . import activations
from . import backend as B
from .files import atomic_write, writable_path
from .network import Network

if TYPE_CHECKING:
    import onnx

#: the opset written unless ``opset=`` names another: the operators used here have meant the same
#: since 13, and 17 loads in ONNX Runtime 1.14 and later and in most other runtimes of the last years
DEFAULT_OPSET = 17
#: Softmax normalises one axis, not the flattened trailing ones, from 13 on (an Ensemble's stack is 3-D)
MIN_OPSET = 13


def to_onnx(
    net: Any, *, opset: int | None = None, dtype: Any = None, path: str | os.PathLike | None = None
) -> onnx.ModelProto:
    """``net`` (an ``anynet.Network``, or an ``anynet.Ensemble`` for its members' mean output, as its
    ``predict``) as an ``onnx.ModelProto``: input ``X``: ``(N, n_in)``, output ``y``: ``(N, n_out)``,
    ``N`` a symbolic batch size.

    ``opset``: the ONNX opset to write (``DEFAULT_OPSET`` if ``None``). ``dtype``: ``"float32"`` or
    ``"float64"`` for the model's input, weights and output; ``None`` is the network's own. ``path``:
    also write the model there (atomically: a crash never leaves half a file). Everything is checked
    before anything is written.
    """
    layers, names, stacked = _parts(net)
    acts = _exportable(names)
    dtype = _check_dtype(dtype, B.dtype_name(net.dtype))
    path = None if path is None else writable_path(path, "to_onnx path", "model.onnx")
    onnx = _require("onnx", "anynet.onnx.to_onnx")
    opset = _check_opset(opset, onnx)
    layers = _host_layers(layers, dtype, cast=dtype != B.dtype_name(net.dtype))

    g = _Graph(onnx, dtype)
    y = _forward(g, layers, acts, "X")
    if stacked:  # (members, N, n_out) -> (N, n_out): the members' mean, as Ensemble.predict
        if opset >= 18:  # ReduceMean takes its axes as an input from opset 18 on
            y = g.node("ReduceMean", y, g.constant(np.array([0], dtype=np.int64), "axes"), keepdims=0)
        else:
            y = g.node("ReduceMean", y, axes=[0], keepdims=0)
    g.rename(y, "y")

    from . import __version__

    kind = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    graph = onnx.helper.make_graph(
        g.nodes,
        "anynet",
        [onnx.helper.make_tensor_value_info("X", kind, ["N", net.sizes[0]])],
        [onnx.helper.make_tensor_value_info("y", kind, ["N", net.sizes[-1]])],
        g.initializers,
        doc_string=repr(net),
    )
    opsets = [onnx.helper.make_opsetid("", opset)]
    model = onnx.helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="anynet",
        producer_version=__version__,
        # the oldest IR that carries this opset, so that older runtimes load the file too
        ir_version=onnx.helper.find_min_ir_version_for(opsets),
    )
    onnx.checker.check_model(model, full_check=True)
    if path is not None:
        atomic_write(path, lambda tmp: onnx.save_model(model, os.fspath(tmp)))
    return model


# --------------------------------------------------------------------------- checks


def _parts(net: Any) -> tuple[list, list[str], bool]:
    """``(layers, activation names, stacked)`` of a Network or an Ensemble; anything else is refused."""
    if isinstance(net, Network):
        return net.layers, _names(len(net.layers), net.activation, net.output_activation), False
    from .ensemble import Ensemble

    if isinstance(net, Ensemble):
        return net.layers, _names(len(net.layers), net.activation, net.output_activation), True
    msg = f"to_onnx exports an anynet.Network or anynet.Ensemble, got {type(net).__name__}"
    raise TypeError(msg)


def _names(n_layers: int, hidden: str, output: str) -> list[str]:
    """Each layer's activation: ``hidden`` on every layer but the last."""
    return [hidden] * (n_layers - 1) + [output]


def _exportable(names: list[str]) -> list[activations.Activation]:
    acts = [activations.get(name) for name in names]
    for act in acts:
        if act.onnx is None:
            have = sorted(name for name, a in activations.ACTIVATIONS.items() if a.onnx is not None)
            msg = f"activation {act.name!r} has no ONNX form, so the network cannot be exported; these have one: {have}"
            raise ValueError(msg)
    return acts


def _check_dtype(dtype: Any, own: str) -> str:
    if dtype is None:
        return own
    name = B.dtype_name(dtype)
    if name not in ("float32", "float64"):
        msg = f"dtype must be 'float32' or 'float64' (or None for the network's own, {own!r}), got {dtype!r}"
        raise ValueError(msg)
    return name


def _check_opset(opset: Any, onnx: Any) -> int:
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        return min(DEFAULT_OPSET, newest)
    if not isinstance(opset, (int, np.integer)) or isinstance(opset, bool) or not MIN_OPSET <= opset <= newest:
        msg = (
            f"opset must be an integer from {MIN_OPSET} to {newest} (the newest this onnx {onnx.__version__} "
            f"knows), got {opset!r}; None writes {min(DEFAULT_OPSET, newest)}"
        )
        raise ValueError(msg)
    return int(opset)


def _host_layers(layers: list, dtype: str, *, cast: bool) -> list:
    """The layers as host arrays of ``dtype``, each checked finite there."""
    host = []
    for i, (W, b) in enumerate(layers):
        with np.errstate(over="ignore"):  # an overflowing cast is reported below, with the layer
            pair = tuple(None if a is None else B.to_numpy(a).astype(dtype) for a in (W, b))
        for what, a in zip(("weights", "bias"), pair, strict=True):
            if a is not None and not np.isfinite(a).all():
                why = f" once cast to {dtype}: pass dtype=None to keep the network's own" if cast else ""
                msg = f"layer {i}'s {what} hold NaN or infinity{why}; only finite weights can be exported"
                raise ValueError(msg)
        host.append(pair)
    return host


def _require(name: str, what: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:  # installed, but something it needs is missing: that error says what
            raise
        msg = f"{what} needs {name}, which is not installed; pip install {name}"
        raise ImportError(msg) from None


# --------------------------------------------------------------------------- the graph


class _Builder:
    """What an activation's ONNX form writes with: ``node`` adds an operator, ``constant`` a tensor
    (floats in the graph's ``dtype``, ``"float32"`` or ``"float64"``); each returns its output's name."""

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype

    def constant(self, value: Any, hint: str = "c") -> str:
        a = np.asarray(value)
        if a.dtype.kind == "f":
            a = a.astype(self.dtype)
        return self._initializer(self._name(hint), a)

    def node(self, op: str, *inputs: str, output: str | None = None, **attributes: Any) -> str:
        out = output or self._name(op.lower())
        self._add(op, list(inputs), out, **attributes)
        return out


class _Graph(_Builder):
    """A model's own graph (``to_onnx``)."""

    def __init__(self, onnx: Any, dtype: str) -> None:
        super().__init__(dtype)
        self._onnx = onnx
        self.nodes: list = []
        self.initializers: list = []
        self._used = {"X", "y"}

    def _name(self, hint: str) -> str:
        name, i = hint, 0
        while name in self._used:
            i += 1
            name = f"{hint}_{i}"
        self._used.add(name)
        return name

    def _add(self, op: str, inputs: list[str], output: str, **attributes: Any) -> None:
        self.nodes.append(self._onnx.helper.make_node(op, inputs, [output], name=self._name(op), **attributes))

    def _initializer(self, name: str, a: np.ndarray) -> str:
        self.initializers.append(self._onnx.numpy_helper.from_array(a, name))
        return name

    def rename(self, value: str, name: str) -> None:
        """Call the output ``value`` (of the last node that writes it) ``name`` instead."""
        for node in self.nodes:
            node.input[:] = [name if v == value else v for v in node.input]
            node.output[:] = [name if v == value else v for v in node.output]


def _forward(g: _Builder, layers: list, acts: list[activations.Activation], x: str) -> str:
    """Write ``x @ W + b`` and the activation, layer after layer; returns the output's name. ``layers``:
    ``[(W, b | None), ...]``, host arrays; stacked ones (``(k, n_in, n_out)``, ``(k, 1, n_out)``) give
    every member's output, ``(k, N, n_out)``, as the core's forward does."""
    a = x
    for i, ((W, b), act) in enumerate(zip(layers, acts, strict=True)):
        z = g.node("MatMul", a, g.constant(W, f"W{i}"))
        if b is not None:
            z = g.node("Add", z, g.constant(b, f"b{i}"))
        a = act.onnx(g, z)
    return a
