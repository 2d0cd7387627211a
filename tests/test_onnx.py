"""ONNX export: ONNX Runtime answers as anynet does, for every activation and output activation, with
and without bias, in float32 and float64, for networks trained on the backend under test; the file
written with ``path=``; the errors. onnx and onnxruntime come with the ``onnx`` extra, which only the
numpy session installs: elsewhere this module is skipped."""

import sys

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

import anynet  # noqa: E402
from anynet import activations  # noqa: E402
from anynet.onnx import DEFAULT_OPSET, MIN_OPSET, to_onnx  # noqa: E402

#: how close ONNX Runtime comes to anynet: a few ulps of the outputs, far below any trained difference
TOL = {"float32": 1e-5, "float64": 1e-12}


def run(model, X):
    """The model's outputs for ``X`` in ONNX Runtime, from the serialised model (as a user loads it)."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})


def assert_close(got, want, dtype):
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, anynet.to_numpy(want), rtol=TOL[dtype], atol=TOL[dtype])


def trained(asarray, rng, sizes, dtype, **options):
    """A network trained a few Adam steps on the backend under test (so its weights are its own)."""
    net = anynet.Network(sizes, dtype=dtype, seed=1, **options)
    X = rng.normal(size=(40, sizes[0]))
    t = (
        np.eye(sizes[-1])[rng.integers(0, sizes[-1], 40)]
        if net.output_activation == "softmax"
        else rng.uniform(size=(40, sizes[-1]))
    )
    net.fit(asarray(X, dtype), asarray(t, dtype), epochs=5, optimizer="adam", lr=0.01, verbose=0)
    return net


# --------------------------------------------------------------------------- the same answers


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_onnx_runtime_answers_as_anynet_for_every_activation(name, bias, dtype, asarray, rng):
    """Each activation on the hidden layer and on the output (softmax on the output only)."""
    hidden = "tanh" if name == "softmax" else name
    net = trained(asarray, rng, [3, 5, 2], dtype, activation=hidden, output_activation=name, bias=bias)
    # both signs of every pre-activation; exp of exp overflows float32 on a wider spread
    X = (rng.normal(size=(9, 3)) * (1 if name == "exp" else 2)).astype(dtype)
    (y,) = run(to_onnx(net), X)
    assert_close(y, net.predict(asarray(X, dtype)), dtype)


def test_the_graph_is_each_layer_s_matmul_add_and_activation(asarray, rng):
    net = trained(asarray, rng, [3, 4, 5, 2], "float64", activation="tanh", output_activation="softmax")
    model = to_onnx(net)
    ops = [node.op_type for node in model.graph.node]
    assert ops == ["MatMul", "Add", "Tanh", "MatMul", "Add", "Tanh", "MatMul", "Add", "Softmax"]
    weights = {w.name: onnx.numpy_helper.to_array(w) for w in model.graph.initializer}
    for i, (W, b) in enumerate(net.layers):
        np.testing.assert_array_equal(weights[f"W{i}"], anynet.to_numpy(W))  # (n_in, n_out), as anynet's
        np.testing.assert_array_equal(weights[f"b{i}"], anynet.to_numpy(b))
    (X,), (y,) = model.graph.input, model.graph.output
    shape = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in (X, y)]
    assert (X.name, y.name, shape) == ("X", "y", [["N", 3], ["N", 2]])
    assert X.type.tensor_type.elem_type == y.type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert [(o.domain, o.version) for o in model.opset_import] == [("", DEFAULT_OPSET)]
    assert model.producer_name == "anynet"
    for n in (1, 17):  # the batch size is symbolic
        X = rng.normal(size=(n, 3))
        assert_close(run(model, X)[0], net.predict(asarray(X)), "float64")


def test_without_bias_or_activation_a_layer_is_its_matmul(asarray, rng):
    net = trained(asarray, rng, [3, 4, 2], "float64", activation="relu", output_activation="identity", bias=False)
    model = to_onnx(net)
    assert [(n.op_type, list(n.output)) for n in model.graph.node][-1] == ("MatMul", ["y"])
    assert [n.op_type for n in model.graph.node] == ["MatMul", "Relu", "MatMul"]


@pytest.mark.parametrize(("own", "asked"), [("float64", "float32"), ("float32", np.float64)])
def test_dtype_casts_the_model(own, asked, asarray, rng):
    net = trained(asarray, rng, [3, 5, 2], own, activation="tanh", output_activation="sigmoid")
    model = to_onnx(net, dtype=asked)
    name = np.dtype(asked).name
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.helper.np_dtype_to_tensor_dtype(np.dtype(name))
    X = rng.normal(size=(9, 3))
    (y,) = run(model, X.astype(name))
    assert y.dtype == np.dtype(name)
    np.testing.assert_allclose(y, anynet.to_numpy(net.predict(asarray(X, own))), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "z"), [("leaky_relu", [-100.0, -3.0, 2.0]), ("softplus", [-800.0, -40.0, 1e-3, 40.0, 800.0])]
)
def test_float64_keeps_the_slope_and_softplus_tails(name, z, asarray):
    """LeakyRelu's alpha is a float32 attribute and ONNX Runtime has no float64 Softplus: in float64
    these are written with other operators, and must still match anynet to rounding."""
    z = np.asarray(z)
    net = anynet.Network.from_weights([asarray(z[None, :])], [asarray(np.zeros_like(z))], output_activation=name)
    X = np.ones((1, 1))
    assert_close(run(to_onnx(net), X)[0], net.predict(asarray(X)), "float64")


@pytest.mark.parametrize("opset", [MIN_OPSET, 17, 18])  # ReduceMean's axes: an attribute until 18, then an input
def test_an_ensemble_exports_its_members_mean(opset, asarray, rng):
    ens = anynet.Ensemble([3, 6, 3], members=4, activation="relu", output_activation="softmax", dtype="float64")
    X = rng.normal(size=(40, 3))
    ens.fit(asarray(X), asarray(np.eye(3)[rng.integers(0, 3, 40)]), epochs=5, optimizer="adam", lr=0.01, verbose=0)
    model = to_onnx(ens, opset=opset)
    assert model.graph.node[-1].op_type == "ReduceMean"
    assert model.opset_import[0].version == opset
    members = anynet.to_numpy(ens.predict_members(asarray(X)))
    assert np.ptp(members, axis=0).max() > 1e-3  # the members differ, so the mean is not any one of them
    assert_close(run(model, X)[0], ens.predict(asarray(X)), "float64")


# --------------------------------------------------------------------------- the file


def test_path_writes_the_model_there(tmp_path, asarray, rng):
    net = trained(asarray, rng, [3, 4, 2], "float64", activation="tanh", output_activation="identity")
    path = tmp_path / "net.onnx"
    path.write_bytes(b"an older model")
    model = to_onnx(net, path=path)
    assert path.read_bytes() == model.SerializeToString()
    assert [p.name for p in tmp_path.iterdir()] == ["net.onnx"]  # no temporary file left beside it
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    X = rng.normal(size=(5, 3))
    assert_close(session.run(None, {"X": X})[0], net.predict(asarray(X)), "float64")


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "net.onnx"
    path.write_bytes(b"an older model")

    def broken(model, f):
        with open(f, "wb") as fh:
            fh.write(b"half a mod")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(onnx, "save_model", broken)
    with pytest.raises(OSError, match=r"cannot write .*net\.onnx.*No space left"):
        to_onnx(anynet.Network([2, 3, 1]), path=path)
    assert path.read_bytes() == b"an older model"
    assert [p.name for p in tmp_path.iterdir()] == ["net.onnx"]


@pytest.mark.parametrize(
    ("where", "error", "match"),
    [("missing/net.onnx", FileNotFoundError, "does not exist"), (".", IsADirectoryError, "it is a folder")],
)
def test_an_unwritable_path_is_refused_first(where, error, match, tmp_path):
    with pytest.raises(error, match=match):
        to_onnx(anynet.Network([2, 3, 1]), path=tmp_path / where)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- errors


def test_only_a_network_or_an_ensemble_is_exported():
    with pytest.raises(TypeError, match=r"exports an anynet\.Network or anynet\.Ensemble, got dict$"):
        to_onnx({"W": 1})


def test_a_scikit_learn_estimator_is_sent_to_skl2onnx():
    from anynet.sklearn import MLPClassifier

    with pytest.raises(TypeError, match=r"got MLPClassifier; .*register_skl2onnx\(\).*skl2onnx\.to_onnx"):
        to_onnx(MLPClassifier())


def test_an_activation_without_an_onnx_form_is_refused(monkeypatch, tmp_path):
    cube = activations.Activation("cube", lambda z, *, xp: z * z * z, lambda z, y, g, *, xp: 3 * z * z * g)
    monkeypatch.setitem(activations.ACTIVATIONS, "cube", cube)
    net = anynet.Network([2, 3, 1], activation="cube", output_activation="identity")
    with pytest.raises(ValueError, match=r"activation 'cube' has no ONNX form.*'leaky_relu'.*'softmax'"):
        to_onnx(net, path=tmp_path / "net.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("opset", [MIN_OPSET - 1, 10_000, "17", 17.0, True])
def test_an_opset_out_of_range_is_refused(opset):
    with pytest.raises(ValueError, match=rf"opset must be an integer from {MIN_OPSET} to \d+ .*got {opset!r}"):
        to_onnx(anynet.Network([2, 3, 1]), opset=opset)


@pytest.mark.parametrize("dtype", ["float16", "int64", np.int32])
def test_a_dtype_other_than_float32_or_float64_is_refused(dtype):
    with pytest.raises(ValueError, match=r"dtype must be 'float32' or 'float64' \(or None for the network's own"):
        to_onnx(anynet.Network([2, 3, 1]), dtype=dtype)


def test_weights_that_overflow_the_asked_dtype_are_refused(asarray):
    net = anynet.Network.from_weights([asarray([[1e300]])], output_activation="identity")
    with pytest.raises(ValueError, match=r"layer 0's weights hold NaN or infinity once cast to float32"):
        to_onnx(net, dtype="float32")
    to_onnx(net)  # in its own float64 it is finite


def test_without_onnx_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(
        ImportError, match=r"anynet\.onnx\.to_onnx needs onnx, which is not installed; pip install onnx"
    ):
        to_onnx(anynet.Network([2, 3, 1]))


# --------------------------------------------------------------------------- skl2onnx


@pytest.fixture
def skl2onnx():
    skl2onnx = pytest.importorskip("skl2onnx")
    from anynet.onnx import register_skl2onnx

    register_skl2onnx()
    register_skl2onnx()  # again: changes nothing
    return skl2onnx


def pipeline(estimator, X, y):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), estimator).fit(X, y)


def zipped(proba, classes):
    """ZipMap's list of ``{class: probability}`` as ``(N, n_classes)`` in the order of ``classes``."""
    return np.array([[row[c] for c in classes] for row in proba])


LABELS = {
    "three ints": lambda rng, n: rng.integers(0, 3, n) * 10,
    "two strings": lambda rng, n: np.array(["no", "yes"])[rng.integers(0, 2, n)],
    "two floats": lambda rng, n: rng.integers(0, 2, n).astype(float),
    "multilabel": lambda rng, n: rng.integers(0, 2, (n, 3)),
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # short runs on tiny data, on purpose
@pytest.mark.parametrize("zipmap", [True, False])
@pytest.mark.parametrize("labels", sorted(LABELS))
@pytest.mark.parametrize("x_dtype", ["float64", "float32"])
def test_a_pipeline_ending_in_mlpclassifier_converts(x_dtype, labels, zipmap, skl2onnx, backend, rng):
    from anynet.sklearn import MLPClassifier

    X = (rng.normal(size=(80, 4)) * 5 + 3).astype(x_dtype)
    clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=30, random_state=0, backend=backend)
    pipe = pipeline(clf, X, LABELS[labels](rng, 80))
    model = skl2onnx.to_onnx(pipe, X[:1], options=None if zipmap else {"zipmap": False})
    label, proba = run(model, X)
    # the outputs skl2onnx gives scikit-learn's own MLPClassifier
    assert [o.name for o in model.graph.output] == (
        ["output_label", "output_probability"] if zipmap else ["label", "probabilities"]
    )
    np.testing.assert_array_equal(label, pipe.predict(X))
    if zipmap:  # a list of {class: probability}, in float32 (ZipMap takes no other float)
        assert isinstance(proba, list)
        proba, tol = zipped(proba, pipe.classes_), 1e-6
    else:
        tol = TOL[x_dtype]
    assert proba.shape == (80, len(pipe.classes_))
    np.testing.assert_allclose(proba, pipe.predict_proba(X), rtol=tol, atol=tol)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("x_dtype", ["float64", "float32"])
def test_a_pipeline_ending_in_mlpregressor_converts(x_dtype, n_outputs, loss, skl2onnx, backend, rng):
    from anynet.sklearn import MLPRegressor

    X = (rng.normal(size=(80, 4)) * 5 + 3).astype(x_dtype)
    y = rng.uniform(0, 3, size=(80, n_outputs)).squeeze()
    reg = MLPRegressor(loss=loss, hidden_layer_sizes=(6,), max_iter=30, random_state=0, backend=backend)
    pipe = pipeline(reg, X, y)
    model = skl2onnx.to_onnx(pipe, X[:1])
    (out,) = run(model, X)
    assert [o.name for o in model.graph.output] == ["variable"]
    assert out.shape == (80, n_outputs)  # (N, 1) for one output, as skl2onnx's own MLPRegressor
    np.testing.assert_allclose(out, pipe.predict(X).reshape(80, n_outputs), rtol=TOL[x_dtype], atol=TOL[x_dtype])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_float32_network_converts_in_the_input_s_float(skl2onnx, backend, rng):
    from anynet.sklearn import MLPRegressor

    X = rng.normal(size=(40, 3))
    reg = MLPRegressor(hidden_layer_sizes=(6,), max_iter=300, random_state=0, backend=backend, dtype="float32")
    reg.fit(X, X.sum(axis=1))
    (out,) = run(skl2onnx.to_onnx(reg, X[:1]), X)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out[:, 0], reg.predict(X), rtol=1e-5, atol=1e-5)


def test_an_unfitted_estimator_is_not_converted(skl2onnx):
    # (an unfitted classifier stops earlier, in skl2onnx's parser, as scikit-learn's own does)
    from sklearn.exceptions import NotFittedError

    from anynet.sklearn import MLPRegressor

    with pytest.raises(NotFittedError, match="MLPRegressor instance is not fitted yet"):
        skl2onnx.to_onnx(MLPRegressor(), np.zeros((1, 3)))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_classifier_of_one_class_is_refused(skl2onnx, rng):
    from anynet.sklearn import MLPClassifier

    X = rng.normal(size=(20, 3))
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, np.full(20, 7))
    with pytest.raises(ValueError, match=r"fitted on a single class \(\[7\]\), so it has nothing to tell apart"):
        skl2onnx.to_onnx(clf, X[:1])
