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


def test_an_optimizer_of_the_users_own_is_not_saved_and_the_file_still_loads(tmp_path):
    class Halving:  # plain gradient descent at half the learning rate, with a state anynet cannot rebuild
        name = "halving"

        def init(self, layers, *, xp):
            return [(xp.zeros_like(W), None if b is None else xp.zeros_like(b)) for W, b in layers]

        def step(self, layers, grads, state, lr, *, xp):
            new = [
                (W - 0.5 * lr * gw, None if b is None else b - 0.5 * lr * gb)
                for (W, b), (gw, gb) in zip(layers, grads, strict=True)
            ]
            return new, state

    net = anynet.Network([3, 2, 1], seed=0)
    net.fit(XOR_X, XOR_X[:, :1], epochs=2, optimizer=Halving(), verbose=0)
    assert isinstance(net.optimizer, Halving)
    back = anynet.load(anynet.save(net, tmp_path / "net.npz"))
    assert back.optimizer is None
    assert back.optimizer_state is None
    for a, b in zip(host(net), host(back), strict=True):
        np.testing.assert_array_equal(a, b)


def test_set_optimizer_hands_a_state_to_the_next_fit():
    a, b = trained(), trained()
    options = {"epochs": 2, "lr": 0.05, "optimizer": "adam", "batch_size": 2, "seed": 1, "verbose": 0}
    a.fit(XOR_X, LABELS, **options)
    b.set_optimizer(None, None)
    assert b.optimizer is None
    b.set_optimizer(a.optimizer, a.optimizer_state)  # Adam's step count and moments
    b.layers = a.layers
    assert a.fit(XOR_X, LABELS, **options).loss == b.fit(XOR_X, LABELS, **options).loss
    with pytest.raises(TypeError, match="optimizer must be an optimizer object"):
        b.set_optimizer("adam", a.optimizer_state)


def test_round_trip_without_bias_and_with_momentum(tmp_path):
    net = anynet.Network([3, 2, 1], bias=False, seed=0)
    net.fit(XOR_X, XOR_X[:, :1], epochs=2, momentum=0.9, verbose=0)
    back = anynet.load(anynet.save(net, tmp_path / "net.npz"))
    assert back.biases == []
    assert back.classes is None
    h_net = net.fit(XOR_X, XOR_X[:, :1], epochs=2, momentum=0.9, verbose=0)
    h_back = back.fit(XOR_X, XOR_X[:, :1], epochs=2, momentum=0.9, verbose=0)
    assert h_back.loss == h_net.loss


def test_load_onto_a_named_backend(tmp_path, backend, device):
    net = trained(dtype="float64")
    path = anynet.save(net, tmp_path / "net.npz")
    on_numpy = anynet.load(path, backend="numpy")
    assert on_numpy.backend == "numpy"
    assert type(on_numpy.weights[0]) is np.ndarray
    np.testing.assert_array_equal(on_numpy.weights[0], anynet.to_numpy(net.weights[0]))
    here = anynet.load(path, backend=backend, device=device)
    assert (here.backend, here.device) == (backend, device)
    np.testing.assert_array_equal(anynet.to_numpy(here.weights[0]), anynet.to_numpy(net.weights[0]))


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


@pytest.mark.parametrize("version", [0, -7])
def test_a_version_before_the_first_is_refused(tmp_path, version):
    path = anynet.save(quick(), tmp_path / "net.npz")
    rewrite(path, anynet_config=np.asarray(json.dumps(config_of(path) | {"version": version})))
    with pytest.raises(anynet.CheckpointError, match=rf"format version {version}; anynet's versions start at 1"):
        anynet.load(path)


def test_a_bad_request_is_blamed_on_the_request_not_the_file(tmp_path):
    path = anynet.save(quick(), tmp_path / "net.npz")
    with pytest.raises(ValueError, match=r"unknown backend 'nope'; expected one of") as info:
        anynet.load(path, backend="nope")
    assert not isinstance(info.value, anynet.CheckpointError)
    with pytest.raises(ValueError, match=r"dtype must be 'float32' or 'float64' .*got 'float16'") as info:
        anynet.load(path, dtype="float16")
    assert not isinstance(info.value, anynet.CheckpointError)


def test_a_compressed_entry_is_refused_before_it_is_inflated(tmp_path):
    path = anynet.save(quick(), tmp_path / "net.npz")
    with open(path, "wb") as fh:  # the same entries, deflated: anynet never writes such a file
        np.savez_compressed(fh, **entries(anynet.save(quick(), tmp_path / "plain.npz")))
    with pytest.raises(anynet.CheckpointError, match=r"entry '.*' is compressed, and anynet writes its arrays"):
        anynet.load(path)


def test_a_best_epoch_past_the_history_is_refused(tmp_path):
    net = anynet.Network([3, 2, 1], seed=0)
    net.fit(XOR_X, XOR_X[:, :1], epochs=3, verbose=0)
    path = anynet.save(net, tmp_path / "net.npz")
    config = config_of(path)
    config["history"]["best_epoch"] = 3
    rewrite(path, anynet_config=np.asarray(json.dumps(config)))
    with pytest.raises(anynet.CheckpointError, match=r"its history names best epoch 3, but holds 3 epochs"):
        anynet.load(path)
    ens = anynet.Ensemble([3, 2, 1], 2, seed=0)
    ens.fit(XOR_X, XOR_X[:, :1], epochs=2, verbose=0)
    path = anynet.save(ens, tmp_path / "ens.npz")
    config = config_of(path)
    config["histories"][1]["best_epoch"] = 7
    rewrite(path, anynet_config=np.asarray(json.dumps(config)))
    with pytest.raises(anynet.CheckpointError, match=r"member 1's history names best epoch 7, but holds 2 epochs"):
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


def test_saving_over_a_private_file_keeps_it_private(tmp_path):
    path = tmp_path / "model.npz"
    anynet.save(anynet.Network([2, 2, 1]), path)
    path.chmod(0o600)
    anynet.save(anynet.Network([2, 2, 1], seed=1), path)
    assert path.stat().st_mode & 0o777 == 0o600  # as open(path, "w") leaves it, not world-readable


def test_a_save_under_a_file_or_beside_a_folder_named_like_a_temporary_file(tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder")
    with pytest.raises(NotADirectoryError, match=r"'.*notes.txt' is a file, not a folder"):
        anynet.save(quick(), blocker / "net.npz")
    from anynet.files import _HOST

    (tmp_path / f".net.npz.{_HOST}.999999999.abcd.npz").mkdir()  # a dead writer's name, but a folder
    anynet.save(quick(), tmp_path / "net.npz")
    assert anynet.load(tmp_path / "net.npz").sizes == quick().sizes


# --------------------------------------------------------------------------- what load checks (issue 14)


def small():
    """A one-output sigmoid classifier with Adam state and history: every kind of entry, in a few KB."""
    net = anynet.Network([2, 1], output_activation="sigmoid", seed=1)
    t = np.array([0, 1, 1, 1])
    net.fit(XOR_X[:, :2], t, epochs=1, lr=0.05, optimizer="adam", loss="binary_cross_entropy", verbose=0)
    return net


def content(net):
    """Everything a checkpoint restores, on the host, for exact comparison."""
    state = []

    def leaves(tree):
        if isinstance(tree, (list, tuple)):
            for item in tree:
                leaves(item)
        elif tree is not None:
            state.append(np.asarray(anynet.to_numpy(tree)) if not isinstance(tree, int) else tree)

    leaves(net._opt_state)
    return {
        "params": host(net),
        "state": state,
        "classes": np.asarray(net.classes),
        "config": (net.sizes, net.activation, net.output_activation, net.bias, net.init, net.seed),
        "epochs": net.epochs_trained,
        "metadata": net.metadata,
        "history": net.history.as_dict(),
        "optimizer": net._opt,
    }


def same(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


def test_a_nan_in_the_optimizer_state_is_refused_at_load(tmp_path):
    path = anynet.save(quick(), tmp_path / "net.npz")
    moment = entries(path)["opt.1.0.0"].copy()
    moment[0, 0] = np.nan
    rewrite(path, **{"opt.1.0.0": moment})
    with pytest.raises(anynet.CheckpointError, match=r"optimizer state entry opt.1.0.0 should be finite floats"):
        anynet.load(path)
    rewrite(path, **{"opt.1.0.0": np.full_like(moment, np.inf)})
    with pytest.raises(anynet.CheckpointError, match=r"opt.1.0.0 should be finite floats, found NaN or infinite"):
        anynet.load(path)


def damage_positions(data: bytes) -> list[int]:
    """Every byte of the zip's local headers and central directory (where a flipped bit changes the
    compression method, the version, the flags or a size), and a seeded sample of the rest."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        headers = set(range(zf.start_dir, len(data)))
        for info in zf.infolist():
            headers |= set(range(info.header_offset, info.header_offset + 30 + len(info.filename) + 20))
    rest = sorted(set(range(len(data))) - headers)
    sample = np.random.default_rng(14).choice(rest, size=min(300, len(rest)), replace=False)
    return sorted(headers & set(range(len(data)))) + sorted(int(i) for i in sample)


def test_any_single_damaged_byte_loads_identically_or_raises_checkpoint_error(tmp_path):
    path = anynet.save(small(), tmp_path / "net.npz")
    data = path.read_bytes()
    want = content(anynet.load(path))
    damaged = tmp_path / "damaged.npz"
    loaded = refused = 0
    for i in damage_positions(data):
        for flip in (0xFF, 0x01):
            b = bytearray(data)
            b[i] ^= flip
            damaged.write_bytes(bytes(b))
            try:
                net = anynet.load(damaged)
            except anynet.CheckpointError:
                refused += 1
                continue
            loaded += 1
            assert same(content(net), want), f"byte {i} ^ {flip:#x} loaded different content"
    assert refused > 0
    assert loaded > 0


def npy_bytes(shape, data):
    """A .npy entry whose header declares ``shape`` (float64) whatever ``data`` holds."""
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buffer.getvalue() + data


def test_a_huge_declared_shape_is_refused_before_any_allocation(tmp_path):
    import zipfile

    path = anynet.save(quick(), tmp_path / "net.npz")
    arrays = entries(path)
    with zipfile.ZipFile(path, "w") as zf:
        for key, a in arrays.items():
            if key == "W0":  # 8 TiB declared, 96 bytes held
                zf.writestr("W0.npy", npy_bytes((1 << 20, 1 << 20), a.tobytes()))
            else:
                with zf.open(f"{key}.npy", "w") as fh:
                    np.lib.format.write_array(fh, a, allow_pickle=False)
    with pytest.raises(anynet.CheckpointError, match=r"entry 'W0.npy' declares float64 \(1048576, 1048576\)"):
        anynet.load(path)


def test_declared_shapes_are_checked_against_the_configuration_before_any_array_is_read(tmp_path, monkeypatch):
    path = anynet.save(quick(), tmp_path / "net.npz")
    rewrite(path, W1=np.ones((40, 30)))
    read = []
    original = np.lib.format.read_array
    monkeypatch.setattr(np.lib.format, "read_array", lambda fh, **kw: read.append(fh.name) or original(fh, **kw))
    with pytest.raises(anynet.CheckpointError, match=r"W1 should be finite floats of shape \(4, 2\), found float64"):
        anynet.load(path)
    assert read == ["anynet_config.npy"]  # the configuration only: no weight was read


def with_config(path, **changes):
    rewrite(path, anynet_config=np.asarray(json.dumps(config_of(path) | changes)))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs_trained": -7}, r"epochs_trained -7 is not a whole number >= 0"),
        ({"epochs_trained": 2.5}, r"epochs_trained 2.5 is not a whole number"),
        ({"seed": "abc"}, r"seed 'abc' is not an integer or null"),
        ({"seed": 1.5}, r"seed 1.5 is not an integer or null"),
        ({"init": 123}, r"init 123 is not one of \['glorot', 'he', 'uniform'\]"),
        ({"bias": "yes"}, r"bias 'yes' is not true or false"),
        ({"metadata": [1, 2]}, r"metadata \[1, 2\] is not a JSON object"),
    ],
)
def test_the_configuration_is_type_checked(tmp_path, change, message):
    path = anynet.save(quick(), tmp_path / "net.npz")
    with_config(path, **change)
    with pytest.raises(anynet.CheckpointError, match=message):
        anynet.load(path)


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("abc", r"the adam state is not \[step count, first moments, second moments\]"),
        (lambda s: ["abc", *s[1:]], r"the adam step count 'abc' is not a whole number >= 0"),
        (lambda s: [-1, *s[1:]], r"the adam step count -1 is not a whole number >= 0"),
        (lambda s: [s[0], s[1][:1], s[2]], r"first moment is not one entry per layer \(2\)"),
        (lambda s: [s[0], s[1], [[{"array": "opt.2.0.0"}, None], s[2][1]]], r"second moment for b0 is None"),
    ],
)
def test_the_optimizer_state_structure_is_type_checked(tmp_path, state, message):
    path = anynet.save(quick(), tmp_path / "net.npz")
    optimizer = config_of(path)["optimizer"]
    optimizer["state"] = state(optimizer["state"]) if callable(state) else state
    with_config(path, optimizer=optimizer)
    with pytest.raises(anynet.CheckpointError, match=message):
        anynet.load(path)


def test_optimizer_state_shapes_must_equal_the_weights(tmp_path):
    path = anynet.save(quick(), tmp_path / "net.npz")  # opt.1.0.0 is Adam's first moment of W0: (3, 4)
    rewrite(path, **{"opt.1.0.0": np.zeros((1, 4))})  # broadcasts silently against W0 on the reference engine
    with pytest.raises(anynet.CheckpointError, match=r"opt.1.0.0 should be finite floats of shape \(3, 4\)"):
        anynet.load(path)
    path = anynet.save(quick(), tmp_path / "net.npz")
    rewrite(path, **{"opt.2.1.1": np.zeros(3)})
    with pytest.raises(anynet.CheckpointError, match=r"opt.2.1.1 should be finite floats of shape \(2,\)"):
        anynet.load(path)


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (np.array(["no"]), r"classes should be text of shape \(2,\), found <U2 \(1,\)"),
        (np.array([["no", "yes"]]), r"classes should be text of shape \(2,\), found <U3 \(1, 2\)"),
        (np.array(["yes", "no"]), r"classes \['yes', 'no'\] are not sorted and distinct"),
        (np.array(["no", "no"]), r"classes \['no', 'no'\] are not sorted and distinct"),
    ],
)
def test_classes_must_match_the_outputs(tmp_path, classes, message):
    path = anynet.save(quick(), tmp_path / "net.npz")
    rewrite(path, classes=classes)
    with pytest.raises(anynet.CheckpointError, match=message):
        anynet.load(path)


def test_one_sigmoid_output_holds_two_classes(tmp_path):
    net = small()
    path = anynet.save(net, tmp_path / "net.npz")
    np.testing.assert_array_equal(anynet.load(path).classes, [0, 1])
    rewrite(path, classes=np.array([0, 1, 2]))
    with pytest.raises(anynet.CheckpointError, match=r"classes should be numbers of shape \(2,\), found int64 \(3,\)"):
        anynet.load(path)


# --------------------------------------------------------------------------- leftovers of a killed save


def dead_pid():
    """The pid of a process that has exited (and been reaped)."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


KILLED_MID_SAVE = """
import os, signal, sys
import numpy as np
import anynet

def dies(fh, **arrays):
    fh.write(b"PK\\x03\\x04 half a zip")
    fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)

net = anynet.Network([2, 1])
np.savez = dies
anynet.save(net, sys.argv[1])
"""


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL and pid probes are POSIX")
def test_a_save_clears_what_a_killed_save_left_and_nothing_else(tmp_path):
    import signal
    import subprocess
    import sys

    path = tmp_path / "net.npz"
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_SAVE, str(path)], check=False)
    assert killed.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1
    assert left[0].startswith(".net.npz.")
    assert not path.exists()

    from anynet.files import _HOST

    stale = tmp_path / f".net.npz.{_HOST}.{dead_pid()}.abcd1234.npz"
    stale.write_bytes(b"PK\x03\x04 another dead writer's")
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as live:
        try:
            busy = tmp_path / f".net.npz.{_HOST}.{live.pid}.efgh5678.npz"  # a concurrent save in progress
            elsewhere = tmp_path / f".net.npz.otherhost.{dead_pid()}.ijkl9012.npz"  # a pid of another machine
            other = tmp_path / f".other.npz.{_HOST}.{dead_pid()}.mnop3456.npz"  # another file's leftover
            for p in (busy, elsewhere, other):
                p.write_bytes(b"in progress")
            anynet.save(quick(), path)
            assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
                ["net.npz", busy.name, elsewhere.name, other.name]
            )
        finally:
            live.kill()
    anynet.load(path)


def test_the_history_keeps_whether_the_best_weights_were_restored(tmp_path):
    net = anynet.Network([3, 4, 1], seed=0)
    net.fit(XOR_X, XOR_X[:, :1], epochs=6, lr=2.0, validation_data=(XOR_X, 1 - XOR_X[:, :1]), patience=2, verbose=0)
    assert net.history.restored_best
    back = anynet.load(anynet.save(net, tmp_path / "net.npz"))
    assert back.history.restored_best
    assert back.history.best_epoch == net.history.best_epoch
