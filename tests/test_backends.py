"""Choosing a backend (inferred, named, ``use``, ``ANYNET_BACKEND``), devices and dtypes, moving a
network, the errors for missing libraries and devices, and agreement with the NumPy backend."""

import dataclasses
import importlib

import numpy as np
import pytest
from conftest import tol

import anynet
from anynet import backend as B
from anynet.cli import XOR_T, XOR_X


def foreign(backend: str) -> str:
    """A library that is not NumPy: the session's own, or array_api_strict when the session is NumPy."""
    return "array_api_strict" if backend == "numpy" else backend


def put(a, name, dtype="float64"):
    return B.from_numpy(np.asarray(a, dtype=dtype), name, B.native_device(name, None))


# --------------------------------------------------------------------------- choosing


def test_backend_inferred_from_the_data(backend, device, asarray):
    with anynet.use("numpy"):
        net = anynet.Network([3, 4, 1], seed=0)
    assert net.backend == "numpy"
    net.fit(asarray(XOR_X), asarray(XOR_T), epochs=2, verbose=0)
    assert (net.backend, net.device) == (backend, device)
    assert all(B.backend_of(W) == backend for W in net.weights)
    y = net.predict(asarray(XOR_X))
    assert B.backend_of(y) == backend
    assert B.device_of(y) == device
    # host data after the move keeps the network where it is
    assert B.backend_of(net.predict(XOR_X)) == backend
    with anynet.use("numpy"):
        fresh = anynet.Network([3, 4, 1], seed=0)
    assert B.backend_of(fresh.predict(asarray(XOR_X))) == backend


def test_a_pinned_network_refuses_another_library(backend):
    other = foreign(backend)
    pinned = "numpy" if other != "numpy" else "array_api_strict"
    net = anynet.Network([3, 2, 1], backend=pinned)
    with pytest.raises(ValueError, match=rf"X is a {other} array on .* but this network lives on {pinned}.*net.to\("):
        net.predict(put(XOR_X, other))
    assert net.backend == pinned


@pytest.mark.parametrize("name", ["numpy", "array_api_strict"])
def test_backend_named_explicitly(backend, name):
    net = anynet.Network([2, 1], backend=name)
    assert net.backend == name
    assert B.backend_of(net.predict(np.ones((1, 2)))) == name
    assert anynet.Network([2, 1], backend=backend).backend == backend


def test_use_as_setter_and_context_manager(backend):
    assert anynet.Network([2, 1]).backend == backend
    with anynet.use("array_api_strict"):
        assert anynet.Network([2, 1]).backend == "array_api_strict"
        with anynet.use("numpy"):
            assert anynet.Network([2, 1]).backend == "numpy"
        assert anynet.Network([2, 1]).backend == "array_api_strict"
    assert anynet.Network([2, 1]).backend == backend
    # the setter form lasts until changed (the autouse fixture restores the session's backend after)
    anynet.use("array_api_strict")
    assert anynet.Network([2, 1]).backend == "array_api_strict"
    anynet.use(backend)
    assert anynet.Network([2, 1]).backend == backend


def test_env_var_is_the_default_when_nothing_else_says(monkeypatch, backend):
    name = foreign(backend)
    monkeypatch.setenv("ANYNET_BACKEND", name)
    monkeypatch.delenv("ANYNET_DEVICE", raising=False)
    with anynet.use(None):
        assert anynet.Network([2, 1]).backend == name
        assert anynet.Network([2, 1], backend="numpy").backend == "numpy"
        with anynet.use("numpy"):
            assert anynet.Network([2, 1]).backend == "numpy"
        monkeypatch.delenv("ANYNET_BACKEND")
        assert anynet.Network([2, 1]).backend == "numpy"
        monkeypatch.setenv("ANYNET_BACKEND", "tensorflow")
        with pytest.raises(ValueError, match=r"ANYNET_BACKEND='tensorflow' is not a backend; expected one of \["):
            anynet.Network([2, 1])


def test_anynet_device_alone_is_the_default_numpys_device(monkeypatch):
    # ignored before: one rule with device="cuda:0" on NumPy, which is refused
    monkeypatch.delenv("ANYNET_BACKEND", raising=False)
    monkeypatch.setenv("ANYNET_DEVICE", "cuda:0")
    with anynet.use(None):
        with pytest.raises(anynet.BackendError, match=r"backend 'numpy' runs on the CPU only; device 'cuda:0'"):
            anynet.Network([2, 1])
        monkeypatch.setenv("ANYNET_DEVICE", "cpu")
        assert anynet.Network([2, 1]).device == "cpu"
        monkeypatch.setenv("ANYNET_BACKEND", "array_api_strict")
        monkeypatch.setenv("ANYNET_DEVICE", "device1")
        assert anynet.Network([2, 1]).device == "device1"
        assert anynet.Network([2, 1], backend="numpy").device == "cpu"  # another backend: its own default


def test_array_api_strict_trains_on_its_second_device(tmp_path):
    # anything read back to the host (losses, to_numpy, checkpoints) came from its CPU device only
    net = anynet.Network([3, 4, 1], backend="array_api_strict", device="device1", seed=0)
    history = net.fit(XOR_X, XOR_T, epochs=300, lr=1.0, verbose=0)
    assert history.loss[-1] < history.loss[0] / 2
    y = net.predict(XOR_X)
    assert str(y.device) == str(B.native_device("array_api_strict", "device1"))
    ref = anynet.Network([3, 4, 1], backend="numpy", seed=0, dtype=B.dtype_name(net.dtype))
    ref.fit(XOR_X, XOR_T, epochs=300, lr=1.0, verbose=0)
    np.testing.assert_allclose(anynet.to_numpy(y), ref.predict(XOR_X), rtol=1e-9)
    back = anynet.load(anynet.save(net, tmp_path / "net.npz"), backend="array_api_strict", device="device1")
    assert back.device == "device1"
    np.testing.assert_array_equal(anynet.to_numpy(back.weights[0]), anynet.to_numpy(net.weights[0]))


def test_backends_report(backend, device):
    report = anynet.backends()
    assert set(report) == set(B.BACKENDS)
    for entry in report.values():
        assert set(entry) >= {"available", "version", "devices", "error"}
    assert report["numpy"]["available"]
    assert report["numpy"]["version"] == np.__version__
    here = report[backend]
    assert here["available"]
    assert here["error"] is None
    assert device in here["devices"]
    top = importlib.import_module(B.BACKENDS[backend].module.split(".")[0])
    assert here["version"] == top.__version__
    if not report["cupy"]["available"]:
        assert report["cupy"]["error"]


# --------------------------------------------------------------------------- moving, dtypes


def test_to_gives_an_equal_network_elsewhere(backend, asarray):
    net = anynet.Network([2, 3, 3], activation="tanh", output_activation="softmax", seed=4, dtype="float64")
    net.fit(np.eye(3)[:, :2], np.array(["a", "b", "c"]), epochs=2, lr=0.1, optimizer="adam", verbose=0)
    moved = net.to("numpy")
    assert moved.backend == "numpy"
    assert net.backend == backend
    for a, b in zip(net.weights + net.biases, moved.weights + moved.biases, strict=True):
        assert type(b) is np.ndarray
        np.testing.assert_array_equal(anynet.to_numpy(a), b)
    np.testing.assert_array_equal(moved.classes, net.classes)
    X = np.random.default_rng(0).normal(size=(4, 2))
    np.testing.assert_allclose(anynet.to_numpy(net.predict(X)), moved.predict(X), rtol=tol(net.dtype))
    back = moved.to(backend)
    assert back.backend == backend
    np.testing.assert_array_equal(anynet.to_numpy(back.weights[0]), anynet.to_numpy(net.weights[0]))
    # the optimizer state moved too: training on continues identically
    h1 = net.fit(np.eye(3)[:, :2], np.array(["a", "b", "c"]), epochs=2, lr=0.1, optimizer="adam", verbose=0)
    h2 = back.fit(np.eye(3)[:, :2], np.array(["a", "b", "c"]), epochs=2, lr=0.1, optimizer="adam", verbose=0)
    assert h1.loss == h2.loss


def test_default_dtype_is_the_backends_default_float(xp, backend):
    # the library's own default: what a Python float becomes as an array
    expected = B.dtype_name(xp.asarray(1.0).dtype)
    assert B.dtype_name(anynet.Network([2, 1]).dtype) == expected


def test_the_default_device_goes_with_the_default_backend(backend, device):
    # named or not, the backend under test lands on the device under test (cuda:0 on a GPU run)
    assert anynet.Network([2, 1]).device == device
    assert anynet.Network([2, 1], backend=backend).device == device
    assert anynet.Network([2, 1], backend="numpy").to(backend).device == device
    # another backend than the default one takes its own default device, not the default's
    other = "numpy" if backend != "numpy" else "array_api_strict"
    assert anynet.Network([2, 1], backend=other).device == B.device_name(other, B.native_device(other, None))
    with anynet.use("array_api_strict", "device1"):
        assert anynet.Network([2, 1], backend="array_api_strict").device == "device1"
        assert anynet.Network([2, 1], backend="array_api_strict", device="cpu").device == "CPU_DEVICE"


def test_a_bad_default_does_not_stop_a_named_backend(monkeypatch):
    monkeypatch.setenv("ANYNET_BACKEND", "nope")
    with anynet.use(None):
        assert anynet.Network([2, 1], backend="numpy").backend == "numpy"
        with pytest.raises(ValueError, match=r"ANYNET_BACKEND='nope' is not a backend"):
            anynet.Network([2, 1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float32_and_float64_both_train(backend, dtype):
    net = anynet.Network([3, 4, 1], dtype=dtype, seed=0)
    assert B.dtype_name(net.dtype) == dtype
    history = net.fit(XOR_X, XOR_T, epochs=5, lr=1.0, verbose=0)
    y = net.predict(XOR_X)
    assert B.dtype_name(y.dtype) == dtype
    assert all(B.dtype_name(W.dtype) == dtype for W in net.weights + net.biases)
    assert np.isfinite(history.loss).all()
    assert history.loss[-1] < history.loss[0]


# --------------------------------------------------------------------------- errors


def test_unknown_backend_lists_the_valid_ones():
    valid = r"expected one of \['array_api_strict', 'cupy', 'dask', 'jax', 'numpy', 'torch'\]"
    with pytest.raises(ValueError, match=r"unknown backend 'tensorflow'; " + valid):
        anynet.Network([2, 1], backend="tensorflow")
    with pytest.raises(ValueError, match=r"unknown backend 'tensorflow'"):
        anynet.use("tensorflow")


def test_a_missing_library_names_what_to_install(monkeypatch, backend):
    name = "jax" if backend != "jax" else "torch"
    monkeypatch.setitem(B.BACKENDS, name, dataclasses.replace(B.BACKENDS[name], module="anynet_no_such_module"))
    with pytest.raises(anynet.BackendError, match=rf"backend '{name}' needs .* not installed; pip install {name}"):
        anynet.Network([2, 1], backend=name)
    with pytest.raises(anynet.BackendError, match=rf"backend '{name}' needs .* not installed"):
        anynet.use(name)  # at once, not at the next Network
    report = anynet.backends()[name]
    assert not report["available"]
    assert f"pip install {name}" in report["error"]
    # "anynet[...]" on the package index is an unrelated project: no message may send anyone there
    assert not any("anynet[" in info.pip for info in B.BACKENDS.values())
    assert "--index-url https://download.pytorch.org/whl/cpu" in B.BACKENDS["torch"].pip


@pytest.mark.skipif(
    any(B.BACKENDS[name].cuda_count() for name in ("cupy", "torch", "jax")),
    reason="a CUDA device is present: no error to see",
)
def test_cuda_without_a_device_says_so_at_construction(monkeypatch, backend):
    if backend in ("torch", "jax"):  # the real library, asked for a GPU it cannot see
        with pytest.raises(
            anynet.BackendError, match=rf"backend '{backend}' on 'cuda:0' needs a CUDA device and none was found"
        ):
            anynet.Network([2, 1], backend=backend, device="cuda")
    # CuPy imports here only with a CUDA toolkit; stand in for an installed CuPy that sees no GPU
    monkeypatch.setattr(type(B.BACKENDS["cupy"]), "load", lambda self: object())
    monkeypatch.setattr(type(B.BACKENDS["cupy"]), "cuda_count", lambda self: 0)
    with pytest.raises(
        anynet.BackendError, match=r"backend 'cupy' .* needs a CUDA device and none was found; use backend='numpy'"
    ):
        B.native_device("cupy", None)


def test_a_gpu_only_backend_refuses_the_cpu(monkeypatch):
    # CuPy imports here only with a CUDA toolkit; stand in for an installed CuPy that sees one GPU
    monkeypatch.setattr(type(B.BACKENDS["cupy"]), "load", lambda self: object())
    monkeypatch.setattr(type(B.BACKENDS["cupy"]), "cuda_count", lambda self: 1)
    for device in ("cpu", "CPU", "cpu:0", "tpu"):
        with pytest.raises(
            anynet.BackendError, match=rf"backend 'cupy' runs on CUDA GPUs only; device {device!r} is not available"
        ):
            B.native_device("cupy", device)
    with pytest.raises(anynet.BackendError, match=r"cannot read device 'cuda:x'; expected 'cpu', 'cuda' or 'cuda:N'"):
        B.native_device("cupy", "cuda:x")


def test_cpu_names_the_cpu_on_every_backend(backend):
    if B.BACKENDS[backend].gpu_only:
        with pytest.raises(anynet.BackendError, match=rf"backend '{backend}' runs on CUDA GPUs only"):
            anynet.Network([2, 1], backend=backend, device="cpu")
        return
    net = anynet.Network([2, 1], backend=backend, device="cpu")
    assert net.device == B.device_of(net.weights[0])
    assert net.device in anynet.backends()[backend]["devices"]
    assert not net.device.startswith("cuda")  # on JAX with a GPU, the default device is the GPU, not this


def test_a_cpu_only_backend_refuses_a_gpu_device():
    with pytest.raises(
        anynet.BackendError, match=r"backend 'numpy' runs on the CPU only.*use backend='torch' or backend='cupy'"
    ):
        anynet.Network([2, 1], backend="numpy", device="cuda:0")


def test_inputs_from_two_libraries_name_both(backend):
    other = foreign(backend)
    net = anynet.Network([3, 2, 1], seed=0)
    before = anynet.to_numpy(net.weights[0]).copy()
    with pytest.raises(ValueError, match=rf"different places: t is a {other} array on .* but X is a numpy array"):
        net.fit(XOR_X, put(XOR_T, other), epochs=1, verbose=0)
    np.testing.assert_array_equal(anynet.to_numpy(net.weights[0]), before)


# --------------------------------------------------------------------------- agreement with NumPy


@pytest.mark.parametrize("init", ["uniform", "glorot", "he"])
def test_same_seed_same_initial_weights_as_numpy(init):
    here = anynet.Network([3, 5, 2], init=init, seed=9, dtype="float64")
    ref = anynet.Network([3, 5, 2], init=init, seed=9, dtype="float64", backend="numpy")
    for a, b in zip(here.weights + here.biases, ref.weights + ref.biases, strict=True):
        np.testing.assert_array_equal(anynet.to_numpy(a), b)


def agree_with_numpy(backend, **options):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(8, 3))
    t = (X[:, :1] * X[:, 1:2] > 0).astype(float)
    config = {"activation": "tanh", "output_activation": "sigmoid", "seed": 2, "dtype": "float64"}
    here = anynet.Network([3, 4, 1], **config)
    ref = anynet.Network([3, 4, 1], **config, backend="numpy")
    h_here, h_ref = here.fit(X, t, verbose=0, **options), ref.fit(X, t, verbose=0, **options)
    assert here.backend == backend
    assert h_ref.loss[-1] < h_ref.loss[0]  # it did train, so agreement is not trivial
    np.testing.assert_allclose(h_here.loss, h_ref.loss, rtol=tol(here.dtype), atol=tol(here.dtype))
    for a, b in zip(here.weights + here.biases, ref.weights + ref.biases, strict=True):
        np.testing.assert_allclose(anynet.to_numpy(a), b, rtol=tol(here.dtype), atol=tol(here.dtype))


def test_200_steps_agree_with_numpy(backend):
    agree_with_numpy(backend, epochs=200, lr=0.5)


def test_shuffled_minibatches_agree_with_numpy(backend):
    # 4 batches an epoch in a seeded order; Adam with L2 and a schedule
    agree_with_numpy(backend, epochs=6, lr=0.05, optimizer="adam", alpha=0.1, schedule="cosine", batch_size=2, seed=1)


def test_following_the_data_takes_its_float_dtype_unless_one_was_named(backend, asarray):
    """Moving to float32 data must not copy it to float64 (a second copy of the data on the device)."""
    X = asarray(np.eye(3), dtype="float32")
    t = asarray(np.ones((3, 1)), dtype="float32")
    with anynet.use("numpy"):
        free = anynet.Network([3, 2, 1])
        named = anynet.Network([3, 2, 1], dtype="float64")
    free.fit(X, t, epochs=1, verbose=0)
    # NumPy arrays are host data: they go to the network as it is, in its own dtype.
    assert anynet.backend.dtype_name(free.dtype) == ("float64" if backend == "numpy" else "float32")
    if backend != "numpy":  # a pinned dtype stays, whatever the data
        named.fit(X, t, epochs=1, verbose=0)
        assert anynet.backend.dtype_name(named.dtype) == "float64"
        assert named.backend == backend
