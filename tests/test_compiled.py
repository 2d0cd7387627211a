"""The compiled engine (JAX): the epoch count of a full-batch fit is data, not a shape, so fits of
another length reuse the compiled scan (a new value compiled anew: 2-4 s, timed by `anynet bench`)."""

import numpy as np
import pytest

import anynet
from anynet.cli import XOR_T, XOR_X

pytestmark = pytest.mark.skip_backend(
    "numpy", "torch", "cupy", "dask", "array_api_strict", reason="the compiled engine is JAX's"
)


def test_fits_of_other_lengths_reuse_the_compiled_scan():
    from anynet.engines import compiled

    def fit(epochs):
        net = anynet.Network([3, 4, 1], bias=False, seed=1, dtype="float64")
        return net, net.fit(XOR_X, XOR_T, epochs=epochs, lr=1.0, loss="half_sse", verbose=0)

    fit(130)
    before = compiled.TRACES["run"]
    for epochs in (150, 170, 256):  # the same bucket of scan lengths as 130
        net, history = fit(epochs)
        assert history.epochs == epochs
    assert compiled.TRACES["run"] == before
    # and the skipped tail of the bucket changed nothing: the same as numpy's steps, epoch by epoch
    ref = anynet.Network([3, 4, 1], bias=False, seed=1, dtype="float64", backend="numpy")
    h_ref = ref.fit(XOR_X, XOR_T, epochs=170, lr=1.0, loss="half_sse", verbose=0)
    net, history = fit(170)
    np.testing.assert_allclose(history.loss, h_ref.loss, rtol=1e-12)
    np.testing.assert_allclose(anynet.to_numpy(net.weights[0]), ref.weights[0], rtol=1e-12)
