"""Export to ONNX: a ``Network`` (or an ``Ensemble``'s mean output) as an ONNX model, and the
converters that let skl2onnx convert anynet's scikit-learn estimators and the pipelines ending in them.

The graph is the forward pass, layer by layer: ``MatMul`` by ``W``: ``(n_in, n_out)`` (an
initializer), ``Add`` of the bias ``(n_out,)``, then the activation's own ONNX form (see
``anynet.activations``: an activation without one is refused). onnx is optional (``pip install onnx``)
and imported when a model is written; skl2onnx only by ``register_skl2onnx``. So ``import anynet.onnx``
imports neither.
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
#: the options skl2onnx's own MLPClassifier converter declares; its parser then adds the ZipMap
CLASSIFIER_OPTIONS = {"zipmap": [True, False, "columns"], "output_class_labels": [False, True], "nocl": [True, False]}


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


def register_skl2onnx() -> None:
    """Teach skl2onnx anynet's ``MLPClassifier`` and ``MLPRegressor`` (``anynet.sklearn``), alone or at
    the end of a ``Pipeline``: ``skl2onnx.to_onnx(pipeline, X[:1])`` then converts them as it converts
    scikit-learn's own MLPs, with the same outputs. A classifier gives labels ``(N,)`` (an indicator
    ``(N, n_classes)`` for multilabel) and probabilities: ``output_label`` and ``output_probability``,
    a list of ``{class: probability}`` (skl2onnx's ZipMap, in float32, the only float it takes), or
    with ``options={"zipmap": False}`` ``label`` and ``probabilities`` ``(N, n_classes)``. A regressor
    gives ``variable`` ``(N, n_outputs)``. The graph computes in the input's float (float64 for a
    float64 ``X``, else float32), as skl2onnx's own MLP converters do.

    Not done on ``import anynet.onnx``: it imports skl2onnx and scikit-learn (a second or so that
    ``to_onnx`` does not need) and changes skl2onnx's registry, which a program should ask for.
    Calling it again changes nothing."""
    skl2onnx = _require("skl2onnx", "anynet.onnx.register_skl2onnx")
    from .sklearn import MLPClassifier, MLPRegressor

    skl2onnx.update_registered_converter(
        MLPClassifier, "AnynetMLPClassifier", _classifier_shapes, _convert_classifier, options=CLASSIFIER_OPTIONS
    )
    skl2onnx.update_registered_converter(MLPRegressor, "AnynetMLPRegressor", _regressor_shapes, _convert_regressor)


# --------------------------------------------------------------------------- checks


def _parts(net: Any) -> tuple[list, list[str], bool]:
    """``(layers, activation names, stacked)`` of a Network or an Ensemble; anything else is refused."""
    if isinstance(net, Network):
        return net.layers, _names(len(net.layers), net.activation, net.output_activation), False
    from .ensemble import Ensemble

    if isinstance(net, Ensemble):
        return net.layers, _names(len(net.layers), net.activation, net.output_activation), True
    msg = f"to_onnx exports an anynet.Network or anynet.Ensemble, got {type(net).__name__}"
    if hasattr(net, "fit") and hasattr(net, "get_params"):
        msg += (
            "; for anynet.sklearn's MLPClassifier or MLPRegressor (or a Pipeline ending in one), call "
            "anynet.onnx.register_skl2onnx() and then skl2onnx.to_onnx(model, X[:1])"
        )
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


class _Skl2onnxGraph(_Builder):
    """Writing into skl2onnx's graph, under its unique names (a converter's)."""

    def __init__(self, scope: Any, container: Any, dtype: str) -> None:
        super().__init__(dtype)
        self._scope, self._container = scope, container

    def _name(self, hint: str) -> str:
        return self._scope.get_unique_variable_name(hint)

    def _add(self, op: str, inputs: list[str], output: str, **attributes: Any) -> None:
        self._container.add_node(op, inputs, output, name=self._scope.get_unique_operator_name(op), **attributes)

    def _initializer(self, name: str, a: np.ndarray) -> str:
        from onnx import TensorProto, helper

        if a.dtype.kind in "OUS":
            self._container.add_initializer(name, TensorProto.STRING, list(a.shape), [str(s).encode() for s in a.flat])
        else:
            self._container.add_initializer(name, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape), a.ravel())
        return name


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


# --------------------------------------------------------------------------- skl2onnx


def _estimator_graph(scope: Any, operator: Any, container: Any) -> tuple[_Skl2onnxGraph, str]:
    """The builder for an estimator's converter, computing in the input's float as skl2onnx's own MLP
    converters do (float64 for a double input, else float32), and the (cast) input's name."""
    from onnx import TensorProto
    from skl2onnx.common.data_types import guess_proto_type

    given = guess_proto_type(operator.inputs[0].type)
    kind = TensorProto.DOUBLE if given == TensorProto.DOUBLE else TensorProto.FLOAT
    g = _Skl2onnxGraph(scope, container, "float64" if kind == TensorProto.DOUBLE else "float32")
    x = operator.inputs[0].full_name
    return g, (x if given == kind else g.node("Cast", x, to=kind))


def _estimator_output(g: _Builder, est: Any, x: str) -> str:
    """The estimator's network output ``(N, n_outputs_)``, from its public fitted attributes."""
    layers = _host_layers(list(zip(est.coefs_, est.intercepts_, strict=True)), g.dtype, cast=False)
    acts = _exportable(_names(len(layers), est.activation, est.out_activation_))
    return _forward(g, layers, acts, x)


def _multilabel(est: Any) -> bool:
    # one sigmoid per label: several outputs that are not a softmax
    return est.n_outputs_ > 1 and est.out_activation_ == "logistic"


def _classes(est: Any, classes: Any = None) -> np.ndarray:
    """The class labels as the ONNX labels hold them: numbers as int64 (as skl2onnx gives every
    numeric label), else text; a single class is refused."""
    classes = np.asarray(est.classes_ if classes is None else classes)
    if classes.shape[0] < 2:
        msg = (
            f"the classifier was fitted on a single class ({classes.tolist()}), so it has nothing to tell "
            "apart; fit it on two classes or more"
        )
        raise ValueError(msg)
    # float labels are whole numbers: scikit-learn refuses to fit others
    return classes.astype(str) if classes.dtype.kind in "OUS" else classes.astype(np.int64)


def _classifier_shapes(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, Int64TensorType
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
    from sklearn.utils.validation import check_is_fitted

    est = operator.raw_operator
    check_is_fitted(est)
    _classes(est)
    calculate_linear_classifier_output_shapes(operator)
    if _multilabel(est):  # an indicator row per sample, as scikit-learn's predict gives
        n = operator.inputs[0].get_first_dimension()
        operator.outputs[0].type = Int64TensorType([n, len(est.classes_)])
    zipmap = operator.scope_inst.get_options(est, {"zipmap": True})["zipmap"]
    proba = operator.outputs[1]
    if zipmap and zipmap != "columns" and isinstance(proba.type, DoubleTensorType):
        # ZipMap takes float32 only: skl2onnx's own MLPClassifier converter writes a model that ONNX
        # Runtime refuses here. The graph computes in float64 and hands ZipMap float32.
        proba.type = FloatTensorType(proba.type.shape)


def _convert_classifier(scope: Any, operator: Any, container: Any) -> None:
    """Labels and probabilities, as skl2onnx's converter of scikit-learn's MLPClassifier writes them."""
    from onnx import TensorProto
    from skl2onnx.common.data_types import FloatTensorType
    from skl2onnx.common.utils_classifier import get_label_classes

    est = operator.raw_operator
    g, x = _estimator_graph(scope, operator, container)
    p = _estimator_output(g, est, x)
    labels, proba = operator.outputs[0], operator.outputs[1]
    if _multilabel(est):
        full = p
        g.node("Cast", g.node("Greater", p, g.constant(0.5)), to=TensorProto.INT64, output=labels.full_name)
    else:
        if est.n_outputs_ == 1:  # one sigmoid: P(classes_[1]); P(classes_[0]) is the rest
            full = g.node("Concat", g.node("Sub", g.constant(1.0), p), p, axis=1)
        else:
            full = p
        # nocl=True asks for class indices in place of the labels
        classes = g.constant(_classes(est, get_label_classes(scope, est)), "classes")
        g.node("Gather", classes, g.node("ArgMax", full, axis=1, keepdims=0), axis=0, output=labels.full_name)
    if g.dtype == "float64" and isinstance(proba.type, FloatTensorType):  # for ZipMap (see _classifier_shapes)
        g.node("Cast", full, to=TensorProto.FLOAT, output=proba.full_name)
    else:
        g.node("Identity", full, output=proba.full_name)


def _regressor_shapes(operator: Any) -> None:
    from skl2onnx.common.shape_calculator import calculate_linear_regressor_output_shapes
    from sklearn.utils.validation import check_is_fitted

    est = operator.raw_operator
    check_is_fitted(est)
    calculate_linear_regressor_output_shapes(operator)
    # skl2onnx's own MLPRegressor converter reshapes to (N, 1), which would flatten several outputs
    operator.outputs[0].type.shape = [operator.inputs[0].get_first_dimension(), est.n_outputs_]


def _convert_regressor(scope: Any, operator: Any, container: Any) -> None:
    est = operator.raw_operator
    g, x = _estimator_graph(scope, operator, container)
    g.node("Identity", _estimator_output(g, est, x), output=operator.outputs[0].full_name)
