"""Checkpoints: ``save`` and ``load``; the only file I/O in the library.

A checkpoint is an ``.npz`` of host arrays plus the configuration as JSON, read back with
``allow_pickle=False`` so that loading a file can never run code. Writes go to a temporary file in
the same folder and are renamed into place, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import activations, optimizers
from . import backend as B
from .network import Network
from .train import History

FORMAT = "anynet"
FORMAT_VERSION = 1
CONFIG_KEY = "anynet_config"


class CheckpointError(ValueError):
    """A file that is not a readable anynet checkpoint: truncated, foreign or tampered with."""


def _flatten(tree: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """A JSON skeleton of a nested state with each array stored in ``arrays`` under a key."""
    if isinstance(tree, (list, tuple)):
        return [_flatten(item, f"{prefix}.{i}", arrays) for i, item in enumerate(tree)]
    if tree is None or isinstance(tree, (int, float)):
        return tree
    arrays[prefix] = B.to_numpy(tree)
    return {"array": prefix}


def _unflatten(skeleton: Any, arrays: Any) -> Any:
    if isinstance(skeleton, list):
        return [_unflatten(item, arrays) for item in skeleton]
    if isinstance(skeleton, dict):
        return np.asarray(arrays[skeleton["array"]])
    return skeleton


def save(net: Network, path: str | os.PathLike) -> Path:
    """Write ``net`` (weights, optimizer state, classes, metadata, last history) to ``path`` atomically.

    Returns the path written. The file holds host arrays only, so it loads on any backend.
    """
    if not isinstance(net, Network):
        msg = f"save expects an anynet.Network, got {type(net).__name__}"
        raise TypeError(msg)
    path = writable_path(path, f"cannot save to {str(path)!r}", "model.npz")
    arrays: dict[str, np.ndarray] = {}
    for i, (W, b) in enumerate(net.layers):
        arrays[f"W{i}"] = B.to_numpy(W)
        if b is not None:
            arrays[f"b{i}"] = B.to_numpy(b)
    opt = None
    if net._opt is not None and net._opt_state is not None:
        fields = {k: v for k, v in net._opt.__dict__.items() if k != "name"}
        opt = {"name": net._opt.name, "options": fields, "state": _flatten(net._opt_state, "opt", arrays)}
    classes = None
    if net.classes is not None:
        c = np.asarray(net.classes)
        classes = "numeric" if c.dtype.kind in "biuf" else "text"
        arrays["classes"] = c if classes == "numeric" else c.astype(str)
    history = None
    if net.history is not None:
        h = net.history
        history = {
            k: getattr(h, k)
            for k in ("monitor", "best_epoch", "best_value", "stopped_early", "wall_time", "backend", "device")
        }
        for k in ("loss", "val_loss", "accuracy", "val_accuracy", "lr"):
            arrays[f"history.{k}"] = np.asarray(getattr(h, k), dtype=float)
    config = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "sizes": net.sizes,
        "activation": net.activation,
        "output_activation": net.output_activation,
        "bias": net.bias,
        "init": net.init,
        "seed": None if net.seed is None else int(net.seed),
        "dtype": B.dtype_name(net.dtype),
        "saved_from": {"backend": net.backend, "device": net.device},
        "epochs_trained": net.epochs_trained,
        "optimizer": opt,
        "classes": classes,
        "metadata": net.metadata,
        "history": history,
    }
    try:
        text = json.dumps(config)
    except TypeError as exc:
        msg = f"net.metadata must hold only JSON values (str, numbers, lists, dicts): {exc}"
        raise TypeError(msg) from None
    arrays[CONFIG_KEY] = np.asarray(text)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a handle, so np.savez adds no ".npz" of its own to the name
            np.savez(fh, **arrays)

    atomic_write(path, write)
    return path


def writable_path(path: str | os.PathLike, label: str, example: str) -> Path:
    """``path`` checked as a file to write, before any work is spent on what goes there: not a folder,
    in a folder that exists and is writable. ``label`` opens each message; ``example`` is a file name
    to suggest in place of a folder."""
    path = Path(path)
    if path.is_dir():
        msg = f"{label}: it is a folder; give a file name such as {str(path / example)!r}"
        raise IsADirectoryError(msg)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        msg = f"{label}: the folder {str(folder)!r} does not exist; create it first"
        raise FileNotFoundError(msg)
    if not os.access(folder, os.W_OK):
        msg = f"{label}: the folder {str(folder)!r} is not writable"
        raise PermissionError(msg)
    return path


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Let ``write(tmp)`` fill a temporary file beside ``path`` (same suffix), flush it to disk, give it
    the permissions a plain ``open(path, "w")`` would, and rename it into place: a crash or an error
    in ``write`` never leaves ``path`` half-written, and an existing ``path`` stays as it was."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes the file private (0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fail(path: Path, why: str) -> CheckpointError:
    return CheckpointError(f"{str(path)!r} is not a valid anynet checkpoint: {why}")


def load(path: str | os.PathLike, backend: str | None = None, device: str | None = None, dtype: Any = None) -> Network:
    """Read a checkpoint written by ``save`` onto ``backend``/``device`` (default: the current default
    backend, whatever the network was trained on). ``dtype`` ``None`` keeps the saved dtype."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        msg = f"cannot load {str(path)!r}: it {what}"
        raise FileNotFoundError(msg)
    arrays = None
    try:
        # Our own handle: np.load leaks the one it opens when a truncated zip fails to parse.
        with open(path, "rb") as fh:
            data = np.load(fh, allow_pickle=False)
            if isinstance(data, np.lib.npyio.NpzFile):
                with data:
                    arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise _fail(path, f"it is not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    if arrays is None:
        raise _fail(path, "it holds a single .npy array, not an .npz archive")
    if CONFIG_KEY not in arrays:
        raise _fail(path, f"it has no {CONFIG_KEY!r} entry (found {sorted(arrays)[:6]})")
    try:
        config = json.loads(str(arrays[CONFIG_KEY]))
    except json.JSONDecodeError as exc:
        raise _fail(path, f"its configuration is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise _fail(path, "its configuration does not say format 'anynet'")
    version = config.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise _fail(path, f"format version {version!r}; this anynet reads versions up to {FORMAT_VERSION}, upgrade it")
    try:
        net = _build(config, arrays, backend, device, dtype)
    except (KeyError, TypeError, IndexError) as exc:
        raise _fail(path, f"missing or malformed entry {exc}") from None
    except ValueError as exc:
        raise _fail(path, str(exc)) from None
    return net


def _build(config: dict, arrays: dict, backend: str | None, device: str | None, dtype: Any) -> Network:
    sizes = config["sizes"]
    if not isinstance(sizes, list) or len(sizes) < 2 or not all(isinstance(s, int) and s > 0 for s in sizes):
        msg = f"sizes {sizes!r} are not a list of positive widths"
        raise ValueError(msg)
    for name in (config["activation"], config["output_activation"]):
        activations.get(name)
    bias = bool(config["bias"])
    weights, biases = [], []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        W = arrays[f"W{i}"]
        if W.shape != (n_in, n_out) or W.dtype.kind != "f" or not np.isfinite(W).all():
            msg = f"W{i} should be finite floats of shape {(n_in, n_out)}, found {W.dtype} {W.shape}"
            raise ValueError(msg)
        weights.append(W)
        if bias:
            b = arrays[f"b{i}"]
            if b.shape != (n_out,) or b.dtype.kind != "f" or not np.isfinite(b).all():
                msg = f"b{i} should be finite floats of shape {(n_out,)}, found {b.dtype} {b.shape}"
                raise ValueError(msg)
            biases.append(b)
    if f"W{len(sizes) - 1}" in arrays:
        msg = f"it holds more weight matrices than its sizes {sizes} describe"
        raise ValueError(msg)
    net = Network.from_weights(
        weights,
        biases if bias else None,
        activation=config["activation"],
        output_activation=config["output_activation"],
        dtype=dtype if dtype is not None else config["dtype"],
        backend=backend,
        device=device,
    )
    net._pinned = backend is not None
    net._dtype_chosen = dtype is not None
    net.init = config.get("init", "uniform")
    net.seed = config.get("seed")
    net.epochs_trained = int(config.get("epochs_trained", 0))
    net.metadata = dict(config.get("metadata") or {})
    if config.get("classes") is not None:
        net.classes = np.asarray(arrays["classes"])
    opt = config.get("optimizer")
    if opt is not None:
        net._opt = optimizers.get(opt["name"], **opt["options"])
        state = _unflatten(opt["state"], arrays)
        net._opt_state = net._to_device(state, B.dtype_name(net.dtype))
    if config.get("history") is not None:
        h = History(**config["history"])
        for k in ("loss", "val_loss", "accuracy", "val_accuracy", "lr"):
            setattr(h, k, [float(v) for v in arrays[f"history.{k}"]])
        net.history = h
    return net
