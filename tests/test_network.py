"""The public ``Network`` API: construction, ``from_weights``, ``predict``, parameters, the seed's
exercises (XOR), and input validation that fails clearly before any weight changes."""

import numpy as np
import pytest

import anynet
from anynet import backend as B
from anynet.cli import XOR_T, XOR_X


def host(net):
    return [anynet.to_numpy(a).copy() for a in net.weights + net.biases]


def assert_unchanged(net, before):
    for a, b in zip(before, host(net), strict=True):
        np.testing.assert_array_equal(a, b)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


# --------------------------------------------------------------------------- construction


def test_network_defaults_and_shapes(backend, device):
    net = anynet.Network([2, 4, 1])
    assert (net.backend, net.device) == (backend, device)
    assert net.activation == net.output_activation == "sigmoid"
    assert [tuple(W.shape) for W in net.weights] == [(2, 4), (4, 1)]
    assert [tuple(b.shape) for b in net.biases] == [(4,), (1,)]
    assert net.n_params == 2 * 4 + 4 + 4 * 1 + 1
    for a in net.weights + net.biases:
        assert B.backend_of(a) == backend
        assert B.device_of(a) == device


def test_output_activation_and_no_bias():
    net = anynet.Network([2, 3, 3, 2], activation="relu", output_activation="softmax", bias=False)
    assert (net.activation, net.output_activation) == ("relu", "softmax")
    assert net.biases == []
    assert len(net.weights) == 3
    y = anynet.to_numpy(net.predict(np.ones((2, 2))))
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)


def test_predict_is_the_forward_pass_of_the_given_weights(backend, device, rng):
    W1, W2 = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    b1, b2 = rng.normal(size=4), rng.normal(size=2)
    net = anynet.Network.from_weights([W1, W2], biases=[b1, b2], activation="tanh", dtype="float64")
    X = rng.normal(size=(5, 3))
    y = net.predict(X)
    assert B.backend_of(y) == backend
    assert B.device_of(y) == device
    assert tuple(y.shape) == (5, 2)
    np.testing.assert_allclose(anynet.to_numpy(y), np.tanh(np.tanh(X @ W1 + b1) @ W2 + b2), rtol=1e-12)
    no_bias = anynet.Network.from_weights([W1, W2], output_activation="identity", dtype="float64")
    assert no_bias.biases == []
    np.testing.assert_allclose(anynet.to_numpy(no_bias.predict(X)), sigmoid(X @ W1) @ W2, rtol=1e-12)


def test_from_weights_copies_its_input(rng):
    W = rng.normal(size=(2, 1))
    net = anynet.Network.from_weights([W], dtype="float64")
    kept = W.copy()
    W[:] = 0.0
    np.testing.assert_array_equal(anynet.to_numpy(net.weights[0]), kept)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_from_weights_keeps_the_weights_precision_on_every_backend(backend, dtype):
    # the seed's XOR from float64 NumPy weights must be float64 on torch too, whose default is float32
    W = np.array([[1, -2], [3, 4]], dtype=dtype)
    want = "float32" if dtype == "float32" else "float64"
    for net in (anynet.Network.from_weights([W]), anynet.Network.from_weights([W], backend=backend)):
        assert net.backend == backend
        assert B.dtype_name(net.dtype) == want
        assert B.dtype_name(net.weights[0].dtype) == want
    assert B.dtype_name(anynet.Network.from_weights([W], dtype="float32").dtype) == "float32"


def test_from_weights_on_backend_arrays_stays_there(backend, asarray, rng):
    net = anynet.Network.from_weights([asarray(rng.normal(size=(2, 3))), asarray(rng.normal(size=(3, 1)))])
    assert net.backend == backend
    assert B.dtype_name(net.dtype) == "float64"


@pytest.mark.parametrize(
    ("weights", "biases", "match"),
    [
        ([np.ones((2, 3)), np.ones((4, 1))], None, r"weights\[1\] has 4 rows but weights\[0\] has 3 columns"),
        ([np.ones((2, 3)), np.ones((3, 1))], [np.ones(3)], r"got 1 biases for 2 weight matrices"),
        ([np.ones((2, 3)), np.ones((3, 1))], [np.ones(3), np.ones(2)], r"biases\[1\] must be 1 finite numbers"),
        ([np.ones(3)], None, r"weights\[0\] must be 2-D"),
        ([np.array([[1.0, np.nan]])], None, r"weights\[0\] holds 1 NaN"),
        ([], None, r"weights must be a non-empty list"),
    ],
)
def test_from_weights_rejects_bad_shapes(weights, biases, match):
    with pytest.raises((ValueError, TypeError), match=match):
        anynet.Network.from_weights(weights, biases=biases)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sizes": [2]}, ValueError, r"sizes must list at least two positive layer widths"),
        ({"sizes": [2, 0, 1]}, ValueError, r"sizes must list"),
        ({"sizes": [2, 1.5]}, ValueError, r"sizes must list"),
        ({"activation": "swish"}, ValueError, r"unknown activation 'swish'; expected one of \[.*'tanh'"),
        ({"output_activation": "swish"}, ValueError, r"unknown activation 'swish'"),
        ({"activation": "softmax"}, ValueError, r"softmax is an output activation"),
        ({"init": "zeros"}, ValueError, r"unknown init 'zeros'; expected one of \['glorot', 'he', 'uniform'\]"),
        ({"seed": 1.5}, TypeError, r"seed must be an integer or None"),
        ({"dtype": "float16"}, ValueError, r"dtype must be 'float32' or 'float64'"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs, error, match):
    kwargs = {"sizes": [2, 3, 1]} | kwargs
    with pytest.raises(error, match=match):
        anynet.Network(**kwargs)


def test_to_numpy_gives_host_arrays(asarray):
    a = anynet.to_numpy(asarray([[1.0, 2.0]]))
    assert type(a) is np.ndarray
    np.testing.assert_array_equal(a, [[1.0, 2.0]])
    assert type(anynet.to_numpy([[1, 2]])) is np.ndarray


# --------------------------------------------------------------------------- int and bool inputs


def test_int_and_bool_inputs_are_cast(asarray):
    net = anynet.Network([3, 4, 1], seed=3)
    ref = anynet.to_numpy(net.predict(XOR_X.astype(float)))
    for X in (XOR_X, XOR_X.astype(bool), asarray(XOR_X, dtype="int64"), asarray(XOR_X, dtype=None)):
        y = net.predict(X)
        assert y.dtype == net.dtype
        np.testing.assert_array_equal(anynet.to_numpy(y), ref)
    a = anynet.Network([3, 4, 1], seed=3)
    b = anynet.Network([3, 4, 1], seed=3)
    a.fit(XOR_X.astype(bool), XOR_T.astype(bool), epochs=3, verbose=0)
    b.fit(XOR_X.astype(float), XOR_T.astype(float), epochs=3, verbose=0)
    for wa, wb in zip(host(a), host(b), strict=True):
        np.testing.assert_array_equal(wa, wb)


# --------------------------------------------------------------------------- the seed's exercises

LEARN = pytest.mark.skip_backend(
    "dask", reason="hundreds of lazy steps at ~30 ms each; test_backends checks Dask's training arithmetic"
)


def learns_xor(net, epochs, lr):
    history = net.fit(XOR_X, XOR_T, epochs=epochs, lr=lr, verbose=0)
    y = anynet.to_numpy(net.predict(XOR_X))[:, 0]
    assert np.all(np.abs(y - XOR_T[:, 0]) < 0.25), y
    assert len(history.loss) == epochs
    assert history.loss[-1] < history.loss[0] / 10


@LEARN
def test_more_hidden_nodes_learn_xor():
    learns_xor(anynet.Network([3, 8, 1], seed=0), epochs=600, lr=2.0)


@LEARN
def test_another_hidden_layer_learns_xor():
    learns_xor(anynet.Network([3, 4, 4, 1], seed=0), epochs=800, lr=4.0)


@LEARN
def test_tanh_hidden_layer_learns_xor():
    learns_xor(anynet.Network([3, 4, 1], activation="tanh", output_activation="sigmoid", seed=0), epochs=300, lr=2.0)


@LEARN
def test_held_out_xor_row():
    """Train on three XOR rows and ask about the fourth.

    The three rows fit; the fourth is not generalised: any of the two answers is consistent with the
    rows seen, so the network's guess for [1, 1] says nothing about XOR. Only what is honest is
    asserted: the training rows are fit and the held-out prediction is a valid probability.
    """
    net = anynet.Network([3, 8, 1], seed=0)
    net.fit(XOR_X[:3], XOR_T[:3], epochs=600, lr=2.0, verbose=0)
    y = anynet.to_numpy(net.predict(XOR_X))[:, 0]
    assert np.all(np.abs(y[:3] - XOR_T[:3, 0]) < 0.25), y
    assert 0.0 < y[3] < 1.0


# --------------------------------------------------------------------------- bad input


def bad_inputs(asarray):
    """``(X, t, error, message)``: each must fail before training starts."""
    X = XOR_X.astype(float)
    nan_X = X.copy()
    nan_X[1, 1] = np.nan
    inf_t = XOR_T.astype(float)
    inf_t[2, 0] = np.inf
    return [
        (nan_X, XOR_T, ValueError, r"X holds 1 NaN or infinite"),
        (asarray(nan_X), asarray(XOR_T), ValueError, r"X holds (1 )?NaN or infinite"),
        (X, inf_t, ValueError, r"t holds 1 NaN or infinite"),
        (X, XOR_T[:3], ValueError, r"X has 4 rows but t has 3"),
        (X[:, :2], XOR_T, ValueError, r"X has 2 features but the network expects 3"),
        (asarray(X[:, :2]), asarray(XOR_T), ValueError, r"X has 2 features but the network expects 3"),
        (X[:, 0], XOR_T, ValueError, r"X must be 2-D .* got shape \(4,\).*reshape"),
        (X[None], XOR_T, ValueError, r"X must be 2-D .* got shape \(1, 4, 3\)"),
        (np.zeros((0, 3)), np.zeros((0, 1)), ValueError, r"X is empty"),
        (X.astype(str), XOR_T, TypeError, r"X must be numeric .* got dtype <U"),
        (X.astype(object), XOR_T, TypeError, r"X must be numeric .* got dtype object"),
        # string or object labels are class labels (one column); a table of them is not a target
        (X, np.array([["a", "b"]] * 4), TypeError, r"t must be numeric .* or class labels in one column"),
        (X, np.ones((4, 2)), ValueError, r"t has 2 columns but the network has 1 outputs"),
    ]


def test_bad_fit_input_fails_before_any_weight_changes(asarray):
    net = anynet.Network([3, 4, 1], seed=0)
    before = host(net)
    for X, t, error, match in bad_inputs(asarray):
        with pytest.raises(error, match=match):
            net.fit(X, t, epochs=2, verbose=0)
        assert_unchanged(net, before)
        assert net.history is None


def test_bad_predict_input_is_refused(asarray):
    net = anynet.Network([3, 4, 1], seed=0)
    for X, match in [
        (np.ones((2, 2)), r"X has 2 features but the network expects 3"),
        (np.ones(3), r"X must be 2-D"),
        (np.ones((1, 2, 3)), r"X must be 2-D"),
        (np.array([[1.0, np.inf, 0.0]]), r"X holds 1 NaN or infinite"),
        (asarray([[1.0, np.nan, 0.0]]), r"X holds (1 )?NaN or infinite"),
        (np.zeros((0, 3)), r"X is empty"),
    ]:
        with pytest.raises(ValueError, match=match):
            net.predict(X)
    with pytest.raises(TypeError, match=r"X must be numeric"):
        net.predict(np.array([["a", "b", "c"]]))


def test_x_without_columns_says_what_the_network_expects(asarray):
    net = anynet.Network([3, 4, 1], seed=0)
    before = host(net)
    for X, t in [(np.zeros((4, 0)), XOR_T), (asarray(np.zeros((4, 0))), asarray(XOR_T))]:
        with pytest.raises(ValueError, match=r"X has 0 features but the network expects 3"):
            net.fit(X, t, epochs=2, verbose=0)
        with pytest.raises(ValueError, match=r"X has 0 features but the network expects 3"):
            net.predict(X)
    assert_unchanged(net, before)
    with pytest.raises(ValueError, match=r"weights\[0\] has no columns \(shape \(3, 0\)\); need at least one"):
        anynet.Network.from_weights([np.zeros((3, 0))])


def test_values_that_overflow_the_networks_dtype_are_refused(backend, asarray, rng):
    # finite in float64, infinite once cast to the network's float32: say so, don't train on inf
    net = anynet.Network([3, 4, 1], seed=0, dtype="float32", backend=backend)
    before = host(net)
    X = rng.uniform(1, 2, size=(4, 3))
    t = rng.uniform(size=(4, 1))
    big = (
        r"X holds 12 value\(s\) too large for float32 \(largest magnitude 2e\+300\); "
        r"scale the data or use dtype='float64'"
    )
    X[0, 0] = 2.0
    for bad_X, bad_t in [(X * 1e300, t), (asarray(X * 1e300), asarray(t))]:
        with pytest.raises(ValueError, match=big):
            net.fit(bad_X, bad_t, epochs=2, verbose=0)
        with pytest.raises(ValueError, match=big):
            net.predict(bad_X)
    with pytest.raises(ValueError, match=r"X_val holds 12 value\(s\) too large for float32"):
        net.fit(X, t, epochs=2, verbose=0, validation_data=(X * 1e300, t))
    t_big = t.copy()
    t_big[1, 0] = -1e300
    with pytest.raises(ValueError, match=r"t holds 1 value\(s\) too large for float32 \(largest magnitude 1e\+300\)"):
        net.fit(X, t_big, epochs=2, verbose=0)
    assert_unchanged(net, before)
    with pytest.raises(ValueError, match=r"X holds 1 NaN or infinite value\(s\)"):  # the data's own still says so
        net.predict(np.where(np.arange(12).reshape(4, 3) == 5, np.inf, X))


def test_a_single_class_is_refused_by_a_one_output_network():
    net = anynet.Network([3, 4, 1], seed=0)
    before = host(net)
    single = r"single class \(0\) but a one-output network needs two"
    with pytest.raises(ValueError, match=rf"t holds a {single}"):
        net.fit(XOR_X, np.zeros(4, dtype=int), loss="binary_cross_entropy", epochs=2, verbose=0)
    with pytest.raises(ValueError, match=rf"classes holds a {single}"):
        net.fit(XOR_X, np.zeros(4), classes=[0], loss="binary_cross_entropy", epochs=2, verbose=0)
    with pytest.raises(ValueError, match=r"classes holds a single class \('yes'\)"):
        net.fit(XOR_X, np.array(["yes"] * 4), classes=["yes", "yes"], epochs=2, verbose=0)
    assert_unchanged(net, before)
    assert net.classes is None
    assert net.history is None
    net.fit(XOR_X, np.zeros(4), classes=[0, 1], loss="binary_cross_entropy", epochs=2, verbose=0)
    assert net.classes.tolist() == [0, 1]


def test_a_softmax_over_one_output_is_refused():
    # it trained before, with loss 0.0 and accuracy 0.5 every epoch: nothing to learn
    with pytest.raises(ValueError, match=r"a softmax over one output is always 1.*output_activation='sigmoid'"):
        anynet.Network([3, 4, 1], output_activation="softmax")
    with pytest.raises(ValueError, match=r"a softmax over one output is always 1"):
        anynet.Ensemble([3, 1], 2, output_activation="softmax")
    assert anynet.Network([3, 4, 2], output_activation="softmax").n_out == 2


def test_evaluate_refuses_a_loss_that_does_not_fit_the_output():
    # it returned -0.0 for cross-entropy on a sigmoid output, 2.65 for binary cross-entropy on softmax
    sigmoid = anynet.Network([3, 4, 1], seed=0)
    with pytest.raises(ValueError, match=r"loss 'cross_entropy' works on softmax outputs.*'sigmoid'"):
        sigmoid.evaluate(XOR_X, XOR_T, loss="cross_entropy")
    softmax = anynet.Network([3, 4, 2], output_activation="softmax", seed=0)
    with pytest.raises(ValueError, match=r"loss 'binary_cross_entropy' works on sigmoid outputs.*'cross_entropy'"):
        softmax.evaluate(XOR_X, XOR_T[:, 0], loss="binary_cross_entropy")
    assert sigmoid.evaluate(XOR_X, XOR_T, loss="binary_cross_entropy")["loss"] > 0


@pytest.mark.skip_backend("numpy", "dask", "array_api_strict", "cupy", reason="bfloat16 is torch's and JAX's")
def test_bfloat16_targets_are_numbers(backend, device):
    # torch raised "unsupported ScalarType BFloat16"; JAX's were read as 59 class labels
    if backend == "torch":
        import torch

        t = torch.tensor(XOR_T, dtype=torch.bfloat16, device=device)
    else:
        import jax.numpy as jnp

        t = jnp.asarray(XOR_T, dtype=jnp.bfloat16)
    plain = anynet.Network([3, 4, 1], seed=0, dtype="float32")
    half = anynet.Network([3, 4, 1], seed=0, dtype="float32")
    h_plain = plain.fit(XOR_X, XOR_T, epochs=3, verbose=0)
    h_half = half.fit(XOR_X, anynet.to_numpy(t), epochs=3, verbose=0)
    assert half.classes is None
    assert h_half.loss == h_plain.loss


@pytest.mark.parametrize(
    ("weight", "match"),
    [
        (1e300, r"sample_weight is too large for float32 \(largest 1e\+300"),
        (1e38, r"sample_weight is too large for float32 \(largest 1e\+38, sum 4e\+38\)"),
        (1e-300, r"sample_weight has 4 positive weight\(s\) too small for float32 \(smallest 1e-300\)"),
    ],
)
def test_sample_weights_that_do_not_fit_the_networks_dtype_are_bad_input(weight, match):
    # they were reported as a divergence, with "try a smaller lr"
    net = anynet.Network([3, 4, 1], seed=0, dtype="float32")
    before = host(net)
    with pytest.raises(ValueError, match=match):
        net.fit(XOR_X, XOR_T, epochs=2, verbose=0, sample_weight=np.full(4, weight))
    assert_unchanged(net, before)
