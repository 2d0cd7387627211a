"""The fast engines (in place on NumPy/CuPy, compiled on JAX) compute what the reference does."""

import numpy as np
import pytest

import anynet
from anynet import engines

NO_FAST = pytest.mark.skip_backend(
    "torch", "dask", "array_api_strict", reason="no in-place or compiled engine: the reference is its only path"
)


@pytest.fixture
def fast(backend):
    return "compiled" if backend == "jax" else "inplace"


def _data(rng, n=24, n_in=5, n_out=3):
    X = rng.normal(size=(n, n_in))
    t = rng.random((n, n_out))
    labels = rng.integers(0, n_out, n)
    return X, t, labels


def _pair(sizes, **kwargs):
    return anynet.Network(sizes, dtype="float64", **kwargs), anynet.Network(sizes, dtype="float64", **kwargs)


def _assert_same(a, b, rtol=1e-9):
    for (Wa, ba), (Wb, bb) in zip(a.layers, b.layers, strict=True):
        np.testing.assert_allclose(anynet.to_numpy(Wa), anynet.to_numpy(Wb), rtol=rtol, atol=1e-12)
        if ba is not None:
            np.testing.assert_allclose(anynet.to_numpy(ba), anynet.to_numpy(bb), rtol=rtol, atol=1e-12)


@NO_FAST
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu", "softplus", "identity"])
@pytest.mark.parametrize("bias", [True, False])
def test_activations_match_reference(rng, fast, activation, bias):
    X, t, _ = _data(rng)
    ref, net = _pair([5, 6, 4, 3], activation=activation, output_activation="identity", bias=bias, init="glorot")
    h_ref = ref.fit(X, t, epochs=6, lr=0.05, loss="mse", verbose=0, engine="reference")
    h = net.fit(X, t, epochs=6, lr=0.05, loss="mse", verbose=0, engine=fast)
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-9)
    _assert_same(net, ref)


@NO_FAST
@pytest.mark.parametrize(
    ("loss", "output"),
    [
        ("half_sse", "sigmoid"),
        ("mse", "tanh"),
        ("half_mse", "softmax"),
        ("binary_cross_entropy", "sigmoid"),
        ("cross_entropy", "softmax"),
    ],
)
def test_losses_match_reference(rng, fast, loss, output):
    X, t, labels = _data(rng)
    target = labels if loss == "cross_entropy" else (t > 0.5).astype(float) if output == "sigmoid" else t
    ref, net = _pair([5, 4, 3], activation="tanh", output_activation=output, init="glorot")
    h_ref = ref.fit(X, target, epochs=6, lr=0.1, loss=loss, verbose=0, engine="reference")
    h = net.fit(X, target, epochs=6, lr=0.1, loss=loss, verbose=0, engine=fast)
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-9)
    if h_ref.accuracy:
        assert h.accuracy == h_ref.accuracy
    _assert_same(net, ref)


@NO_FAST
@pytest.mark.parametrize(
    "options",
    [
        {"optimizer": "sgd", "lr": 0.3},
        {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9},
        {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True},
        {"optimizer": "adam", "lr": 0.01},
        {"optimizer": "adam", "lr": 0.01, "alpha": 0.5},
        {"optimizer": "sgd", "lr": 0.2, "schedule": "cosine", "alpha": 0.1},
        {"optimizer": "adam", "lr": 0.01, "batch_size": 7},
        {"optimizer": "sgd", "lr": 0.1, "momentum": 0.5, "batch_size": 10, "shuffle": False},
    ],
)
def test_optimizers_and_batches_match_reference(rng, fast, options):
    X, _, labels = _data(rng)
    ref, net = _pair([5, 8, 3], activation="relu", output_activation="softmax", init="he")
    h_ref = ref.fit(X, labels, epochs=5, verbose=0, engine="reference", seed=3, **options)
    h = net.fit(X, labels, epochs=5, verbose=0, engine=fast, seed=3, **options)
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-8)
    _assert_same(net, ref, rtol=1e-8)
    # Continuing picks up the optimizer state either engine left behind.
    ref.fit(X, labels, epochs=2, verbose=0, engine="reference", seed=4, **options)
    net.fit(X, labels, epochs=2, verbose=0, engine=fast, seed=4, **options)
    _assert_same(net, ref, rtol=1e-8)


@NO_FAST
def test_fast_engine_never_writes_the_callers_arrays(fast, asarray):
    W1, W2 = np.ones((3, 4)) * 0.1, np.ones((4, 1)) * 0.2
    net = anynet.Network.from_weights([asarray(W1), asarray(W2)], dtype="float64")
    before = [anynet.to_numpy(W).copy() for W in net.weights]
    held = net.weights
    net.fit(np.eye(3), np.ones((3, 1)), epochs=5, verbose=0, engine=fast)
    for W, old in zip(held, before, strict=True):
        np.testing.assert_array_equal(anynet.to_numpy(W), old)
    assert not np.allclose(anynet.to_numpy(net.weights[0]), before[0])


@NO_FAST
@pytest.mark.parametrize("batch_size", [None, 2])
def test_divergence_keeps_the_same_last_finite_weights(fast, batch_size):
    X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]]) * 50.0
    t = np.array([[0.0], [1e6], [1e6], [0.0]])
    kept = []
    for engine in ("reference", fast):
        net = anynet.Network([3, 4, 1], activation="tanh", output_activation="identity", dtype="float64")
        with pytest.raises(anynet.DivergedError, match="diverged at epoch"):
            net.fit(X, t, epochs=500, lr=10.0, verbose=0, engine=engine, batch_size=batch_size, shuffle=False)
        assert all(np.isfinite(anynet.to_numpy(W)).all() for W in net.weights)
        kept.append((net.history.epochs, [anynet.to_numpy(W) for W in net.weights]))
    assert kept[0][0] == kept[1][0]
    for a, b in zip(kept[0][1], kept[1][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9)


def test_unknown_engine_is_refused_before_training():
    net = anynet.Network([2, 2, 1])
    before = anynet.to_numpy(net.weights[0]).copy()
    with pytest.raises(ValueError, match="unknown engine 'turbo'; expected one of"):
        net.fit(np.eye(2), np.ones((2, 1)), epochs=3, verbose=0, engine="turbo")
    np.testing.assert_array_equal(anynet.to_numpy(net.weights[0]), before)


def test_engine_availability_follows_the_backend(backend):
    net = anynet.Network([2, 2, 1])
    X, t = np.eye(2), np.ones((2, 1))
    for engine in ("inplace", "compiled"):
        works = (engine == "inplace" and backend in ("numpy", "cupy")) or (engine == "compiled" and backend == "jax")
        if works:
            assert net.fit(X, t, epochs=2, verbose=0, engine=engine).epochs == 2
        else:
            with pytest.raises(ValueError, match=f"engine='{engine}'"):
                net.fit(X, t, epochs=2, verbose=0, engine=engine)
    assert engines.select("auto", backend) in (engines.Inplace if backend in ("numpy", "cupy") else engines.Reference,)
