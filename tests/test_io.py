"""Checkpoints: ``anynet.save`` / ``anynet.load`` round trips, no pickle, atomic writes, and clear
errors for truncated, foreign and tampered files."""

import json
import os

import numpy as np
import pytest

import anynet
from anynet import backend as B
from anynet.cli import XOR_X


def host(net):
    return [anynet.to_numpy(a).copy() for a in net.weights + net.biases]


LABELS = np.array(["no", "yes", "yes", "no"])


def trained(**net_options):
    net = anynet.Network([3, 4, 2], activation="tanh", output_activation="softmax", seed=1, **net_options)
    net.fit(XOR_X, LABELS, epochs=3, lr=0.05, optimizer="adam", batch_size=2, verbose=0)
    net.metadata = {"note": "xor", "scores": [1, 2.5], "nested": {"ok": True}}
    return net


def quick():
    """A network with classes, Adam state and metadata from one full-batch step (cheap on Dask)."""
    net = anynet.Network([3, 4, 2], activation="tanh", output_activation="softmax", seed=1)
    net.fit(XOR_X, LABELS, epochs=1, lr=0.05, optimizer="adam", verbose=0)
    net.metadata = {"note": "xor"}
    return net


def entries(path):
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def rewrite(path, **changes):
    arrays = entries(path) | changes
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def config_of(path):
    return json.loads(str(entries(path)["anynet_config"]))


# --------------------------------------------------------------------------- round trips


def test_round_trip(tmp_path, backend):
    net = trained()
    path = anynet.save(net, tmp_path / "net.npz")
    assert path == tmp_path / "net.npz"
    back = anynet.load(path)
    assert back.backend == backend
    assert (back.sizes, back.activation, back.output_activation, back.bias) == ([3, 4, 2], "tanh", "softmax", True)
    assert B.dtype_name(back.dtype) == B.dtype_name(net.dtype)
    for a, b in zip(host(net), host(back), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.classes, ["no", "yes"])
    assert back.metadata == net.metadata
    assert back.epochs_trained == 3
    assert back.history.loss == net.history.loss
    np.testing.assert_array_equal(back.predict_classes(XOR_X), net.predict_classes(XOR_X))


def test_continued_training_after_load_equals_training_on(tmp_path):
    net = trained()
    back = anynet.load(anynet.save(net, tmp_path / "net.npz"))
    options = {"epochs": 3, "lr": 0.05, "optimizer": "adam", "batch_size": 2, "verbose": 0}
    h_net, h_back = net.fit(XOR_X, LABELS, **options), back.fit(XOR_X, LABELS, **options)
    assert h_back.loss == h_net.loss  # the Adam moments and step count came back, and the shuffling
    for a, b in zip(host(net), host(back), strict=True):
        np.testing.assert_array_equal(a, b)


def test_round_trip_without_bias_and_with_momentum(tmp_path):
    net = anynet.Network([3, 2, 1], bias=False, seed=0)
    net.fit(XOR_X, XOR_X[:, :1], epochs=2, momentum=0.9, verbose=0)
    back = anynet.load(anynet.save(net, tmp_path / "net.npz"))
    assert back.biases == []
    assert back.classes is None
    h_net = net.fit(XOR_X, XOR_X[:, :1], epochs=2, momentum=0.9, verbose=0)
    h_back = back.fit(XOR_X, XOR_X[:, :1], epochs=2, momentum=0.9, verbose=0)
    assert h_back.loss == h_net.loss


def test_load_onto_a_named_backend(tmp_path, backend):
    net = trained(dtype="float64")
    path = anynet.save(net, tmp_path / "net.npz")
    on_numpy = anynet.load(path, backend="numpy")
    assert on_numpy.backend == "numpy"
    assert type(on_numpy.weights[0]) is np.ndarray
    np.testing.assert_array_equal(on_numpy.weights[0], anynet.to_numpy(net.weights[0]))
    here = anynet.load(path, backend=backend, device="cpu")
    assert (here.backend, here.device) == (backend, B.device_name(backend, B.native_device(backend, "cpu")))


def test_a_checkpoint_holds_no_pickled_objects(tmp_path):
    path = anynet.save(quick(), tmp_path / "net.npz")
    arrays = entries(path)  # allow_pickle=False reads every entry
    assert all(a.dtype != object for a in arrays.values())
    assert config_of(path)["format"] == "anynet"


def test_a_file_with_an_object_array_is_refused(tmp_path):
    path = anynet.save(quick(), tmp_path / "net.npz")
    arrays = entries(path)
    arrays["W0"] = np.array([{"payload": 1}], dtype=object)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)  # numpy pickles the object array
    with pytest.raises(anynet.CheckpointError, match=r"is not a valid anynet checkpoint"):
        anynet.load(path)


# --------------------------------------------------------------------------- atomic saves


def test_unserialisable_metadata_leaves_the_old_checkpoint(tmp_path):
    net = quick()
    path = anynet.save(net, tmp_path / "net.npz")
    saved = path.read_bytes()
    net.metadata = {"when": object()}
    with pytest.raises(TypeError, match=r"metadata must hold only JSON values"):
        anynet.save(net, path)
    assert path.read_bytes() == saved
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]


def test_a_write_that_fails_midway_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    net = quick()
    path = anynet.save(net, tmp_path / "net.npz")
    saved = path.read_bytes()

    def broken(fh, **arrays):
        fh.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        anynet.save(net, path)
    assert path.read_bytes() == saved
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]


def test_save_to_a_missing_folder_or_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"the folder .*missing.* does not exist"):
        anynet.save(quick(), tmp_path / "missing" / "net.npz")
    assert not (tmp_path / "missing").exists()
    with pytest.raises(IsADirectoryError, match=r"it is a folder"):
        anynet.save(quick(), tmp_path)
    with pytest.raises(TypeError, match=r"save expects an anynet.Network"):
        anynet.save({"W": 1}, tmp_path / "x.npz")


# --------------------------------------------------------------------------- bad files


def test_truncated_file(tmp_path):
    path = anynet.save(quick(), tmp_path / "net.npz")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(anynet.CheckpointError, match=r"net.npz' is not a valid anynet checkpoint"):
        anynet.load(path)


def test_foreign_files(tmp_path):
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.ones((2, 2)))
    with pytest.raises(anynet.CheckpointError, match=r"it has no 'anynet_config' entry"):
        anynet.load(other)
    noise = tmp_path / "noise.npz"
    noise.write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(anynet.CheckpointError, match=r"it is not a readable .npz archive"):
        anynet.load(noise)
    single = tmp_path / "single.npy"
    np.save(single, np.ones(3))
    with pytest.raises(anynet.CheckpointError, match=r"it holds a single .npy array, not an .npz archive"):
        anynet.load(single)
    plain = tmp_path / "plain.npz"
    np.savez(plain, anynet_config=np.asarray(json.dumps({"format": "keras"})))
    with pytest.raises(anynet.CheckpointError, match=r"does not say format 'anynet'"):
        anynet.load(plain)


def test_tampered_shape(tmp_path):
    path = anynet.save(quick(), tmp_path / "net.npz")
    rewrite(path, W1=np.ones((4, 3)))
    with pytest.raises(anynet.CheckpointError, match=r"W1 should be finite floats of shape \(4, 2\)"):
        anynet.load(path)


def test_tampered_values_and_missing_entries(tmp_path):
    path = anynet.save(quick(), tmp_path / "net.npz")
    original = entries(path)
    rewrite(path, b0=np.full(4, np.nan))
    with pytest.raises(anynet.CheckpointError, match=r"b0 should be finite floats"):
        anynet.load(path)
    arrays = dict(original)
    del arrays["W0"]
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(anynet.CheckpointError, match=r"missing or malformed entry 'W0'"):
        anynet.load(path)


def test_version_from_the_future(tmp_path):
    path = anynet.save(quick(), tmp_path / "net.npz")
    config = config_of(path) | {"version": 99}
    rewrite(path, anynet_config=np.asarray(json.dumps(config)))
    with pytest.raises(anynet.CheckpointError, match=r"format version 99; this anynet reads versions up to 1"):
        anynet.load(path)


def test_load_a_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        anynet.load(tmp_path / "nothing.npz")
    with pytest.raises(FileNotFoundError, match=r"is a folder"):
        anynet.load(tmp_path)


def test_a_checkpoint_gets_ordinary_file_permissions(tmp_path):
    path = tmp_path / "model.npz"
    old = os.umask(0o022)
    try:
        anynet.save(anynet.Network([2, 2, 1]), path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
