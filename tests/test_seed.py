"""The seed, exactly: the 11-line XOR network, reproduced by the library."""

import numpy as np
import pytest

import anynet
from anynet.cli import XOR_T, XOR_X


def seed_loop(W1, W2, epochs):
    """The seed's loop, as written (with float X, as any faithful port computes)."""
    X, t = XOR_X, XOR_T
    W1, W2 = W1.copy(), W2.copy()
    for _ in range(epochs):
        h = 1 / (1 + np.exp(-(np.dot(X, W1))))
        y = 1 / (1 + np.exp(-(np.dot(h, W2))))
        y_delta = (t - y) * (y * (1 - y))
        h_delta = np.dot(y_delta, W2.T) * (h * (1 - h))
        W2 += np.dot(h.T, y_delta)
        W1 += np.dot(X.T, h_delta)
    return W1, W2


def initial():
    r = np.random.default_rng(1)
    return 2 * r.random((3, 4)) - 1, 2 * r.random((4, 1)) - 1


def _train(epochs):
    W1, W2 = initial()
    net = anynet.Network.from_weights([W1, W2], activation="sigmoid", dtype="float64")
    history = net.fit(XOR_X, XOR_T, epochs=epochs, lr=1.0, loss="half_sse", verbose=0)
    return net, history, seed_loop(W1, W2, epochs)


def test_golden_short():
    net, history, (W1, W2) = _train(300)
    got = [anynet.to_numpy(W) for W in net.weights]
    np.testing.assert_allclose(got[0], W1, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got[1], W2, rtol=0, atol=1e-9)
    assert history.epochs == 300


@pytest.mark.skip_backend(
    "dask",
    "array_api_strict",
    reason="60000 eager steps (the reference engine) take minutes; test_golden_short covers it",
)
def test_golden_60000_epochs():
    net, history, (W1, W2) = _train(60000)
    got = [anynet.to_numpy(W) for W in net.weights]
    np.testing.assert_allclose(got[0], W1, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got[1], W2, rtol=0, atol=1e-9)
    y = anynet.to_numpy(net.predict(XOR_X))[:, 0]
    # The seed's famous answer: about [0.003, 0.996, 0.996, 0.005].
    assert np.all(np.abs(y - XOR_T[:, 0]) < 0.02)
    assert len(history.loss) == 60000
    assert history.loss[-1] < history.loss[0] / 100


def test_loss_is_recorded_each_epoch_and_matches_half_sse():
    """Exercise 5: the loss per epoch is the seed's ½Σ(y−t)² at that epoch's starting weights."""
    W1, W2 = initial()
    net = anynet.Network.from_weights([W1, W2], activation="sigmoid", dtype="float64")
    history = net.fit(XOR_X, XOR_T, epochs=3, lr=1.0, verbose=0)
    V1, V2 = W1, W2
    for epoch in range(3):
        y = 1 / (1 + np.exp(-(1 / (1 + np.exp(-(XOR_X @ V1))) @ V2)))
        assert history.loss[epoch] == pytest.approx(0.5 * np.sum((y - XOR_T) ** 2), rel=1e-12)
        V1, V2 = seed_loop(V1, V2, 1)
