"""Checkpoints: ``save`` and ``load``.

A checkpoint is an ``.npz`` of host arrays plus the configuration as JSON, read back with
``allow_pickle=False`` so that loading a file can never run code. Writes go to a temporary file in
the same folder and are renamed into place (``files.atomic_write``), so a crash never leaves a
half-written checkpoint.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from . import activations, optimizers
from . import backend as B
from . import init as initialisers
from .ensemble import Ensemble
from .files import atomic_write, writable_path
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


def save(net: Network | Ensemble, path: str | os.PathLike) -> Path:
    """Write ``net`` (weights, optimizer state, classes, metadata, last history) to ``path`` atomically.

    An ``Ensemble`` is saved with every member's weights, seed and history (not its optimizer state:
    a loaded ensemble's next fit starts a fresh optimizer). Returns the path written. The file holds
    host arrays only, so it loads on any backend.
    """
    if isinstance(net, Ensemble):
        return _save_ensemble(net, path)
    if not isinstance(net, Network):
        msg = f"save expects an anynet.Network or anynet.Ensemble, got {type(net).__name__}"
        raise TypeError(msg)
    path = writable_path(path, f"cannot save to {str(path)!r}", "model.npz")
    arrays = _layer_arrays(net.layers)
    opt = None
    # only a registered optimizer is saved (by name and options): a checkpoint must load without
    # running code of its own, and an unregistered class could not be rebuilt
    named = optimizers.to_config(net.optimizer) if net.optimizer_state is not None else None
    if named is not None:
        name, options = named
        for key, value in options.items():
            if not (value is None or isinstance(value, (bool, int, float, str))):
                msg = (
                    f"cannot save the optimizer {name!r}: its option {key}={value!r} is not a number, string, "
                    "boolean or None, which is all a checkpoint holds; save after set_optimizer(None, None) to "
                    "keep the weights only"
                )
                raise TypeError(msg)
        opt = {"name": name, "options": options, "state": _flatten(net.optimizer_state, "opt", arrays)}
    classes = None
    if net.classes is not None:
        c = np.asarray(net.classes)
        classes = "numeric" if c.dtype.kind in "biuf" else "text"
        arrays["classes"] = c if classes == "numeric" else c.astype(str)
    history = None
    if net.history is not None:
        h = net.history
        history = {k: getattr(h, k) for k in HISTORY_FIELDS}
        for k in HISTORY_SERIES:
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
    return _write(path, config, arrays, "net")


def _layer_arrays(layers: Any) -> dict[str, np.ndarray]:
    """``W{i}`` and ``b{i}`` of ``[(W, b | None), ...]`` as host arrays, the checkpoint's names."""
    arrays: dict[str, np.ndarray] = {}
    for i, (W, b) in enumerate(layers):
        arrays[f"W{i}"] = B.to_numpy(W)
        if b is not None:
            arrays[f"b{i}"] = B.to_numpy(b)
    return arrays


def _write(path: Path, config: dict, arrays: dict[str, np.ndarray], owner: str) -> Path:
    """The configuration (JSON) beside ``arrays``, written to ``path`` atomically; ``owner`` names
    whose ``metadata`` is at fault when the configuration is not JSON."""
    try:
        text = json.dumps(config)
    except TypeError as exc:
        msg = f"{owner}.metadata must hold only JSON values (str, numbers, lists, dicts): {exc}"
        raise TypeError(msg) from None
    arrays[CONFIG_KEY] = np.asarray(text)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a handle, so np.savez adds no ".npz" of its own to the name
            np.savez(fh, **arrays)

    atomic_write(path, write)
    return path


def _save_ensemble(ens: Ensemble, path: str | os.PathLike) -> Path:
    """``save`` for an ``Ensemble``: its configuration says ``kind: "ensemble"``, ``W{i}`` is stacked
    ``(members, n_in, n_out)``, ``b{i}`` ``(members, 1, n_out)``, and each member's history has its own
    entries ``history.{member}.{series}``."""
    path = writable_path(path, f"cannot save to {str(path)!r}", "ensemble.npz")
    arrays = _layer_arrays(ens.layers)
    classes = None
    if ens.classes is not None:
        c = np.asarray(ens.classes)
        classes = "numeric" if c.dtype.kind in "biuf" else "text"
        arrays["classes"] = c if classes == "numeric" else c.astype(str)
    histories = []
    for m, h in enumerate(ens.histories):
        histories.append(None if h is None else {k: getattr(h, k) for k in HISTORY_FIELDS})
        if h is not None:
            for k in HISTORY_SERIES:
                arrays[f"history.{m}.{k}"] = np.asarray(getattr(h, k), dtype=float)
    config = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "kind": "ensemble",
        "sizes": ens.sizes,
        "activation": ens.activation,
        "output_activation": ens.output_activation,
        "bias": ens.bias,
        "init": ens.init,
        "seeds": ens.seeds,
        "dtype": B.dtype_name(ens.dtype),
        "saved_from": {"backend": ens.backend, "device": ens.device},
        "epochs_trained": ens.epochs_trained,
        "classes": classes,
        "metadata": ens.metadata,
        "histories": histories,
        "diverged": {str(i): why for i, why in ens.diverged.items()},
    }
    return _write(path, config, arrays, "ens")


def _fail(path: Path, why: str) -> CheckpointError:
    return CheckpointError(f"{str(path)!r} is not a valid anynet checkpoint: {why}")


class _FormatError(ValueError):
    """A readable archive whose contents break the format: the message says which entry and how."""


def load(
    path: str | os.PathLike, backend: str | None = None, device: str | None = None, dtype: Any = None
) -> Network | Ensemble:
    """Read a checkpoint written by ``save`` onto ``backend``/``device`` (default: the current default
    backend, whatever the network was trained on). ``dtype`` ``None`` keeps the saved dtype. A saved
    ``Ensemble`` comes back as an ``Ensemble``.

    Before any array is read, the configuration is type-checked and each array's declared shape and
    dtype compared with it; the arrays must then be finite where training needs them to be. Any
    failure raises ``CheckpointError`` saying what is wrong, and nothing is half-loaded.
    """
    # what the caller asks for is checked first: a bad request is not the file's fault
    if backend is not None:
        B.check_name(backend)
    if dtype is not None and B.dtype_name(dtype) not in ("float32", "float64"):
        msg = f"dtype must be 'float32' or 'float64' (or None: the saved dtype), got {dtype!r}"
        raise ValueError(msg)
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        msg = f"cannot load {str(path)!r}: it {what}"
        raise FileNotFoundError(msg)
    try:
        with open(path, "rb") as fh:
            if fh.read(6) == b"\x93NUMPY":
                msg = "it holds a single .npy array, not an .npz archive"
                raise _FormatError(msg)
            config, arrays = _read(fh, path.stat().st_size)
    except _FormatError as exc:
        raise _fail(path, str(exc)) from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - see below
        # Damaged bytes make the zip and .npy readers raise a dozen types (BadZipFile, EOFError,
        # NotImplementedError for a "compression method", RuntimeError for "encrypted", struct.error,
        # zlib.error, ValueError...): each means the same thing here, a file that is not a checkpoint.
        raise _fail(path, f"it is not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    try:
        if config.get("kind") == "ensemble":
            return _build_ensemble(config, arrays, backend, device, dtype)
        return _build(config, arrays, backend, device, dtype)
    except (KeyError, TypeError, IndexError) as exc:
        raise _fail(path, f"missing or malformed entry {exc}") from None
    except ValueError as exc:
        raise _fail(path, str(exc)) from None


def _read(fh: Any, disk_size: int) -> tuple[dict, dict[str, np.ndarray]]:
    """The configuration and the arrays of an open archive; every declared shape and dtype is checked
    against the configuration before a byte of array data is read."""
    fh.seek(0)
    with zipfile.ZipFile(fh) as zf:
        members = {}
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                msg = f"it holds {info.filename!r}, which is not a .npy entry"
                raise _FormatError(msg)
            members[info.filename[: -len(".npy")]] = info
        if CONFIG_KEY not in members:
            msg = f"it has no {CONFIG_KEY!r} entry (found {sorted(members)[:6]})"
            raise _FormatError(msg)
        headers = {key: _header(zf, info, disk_size) for key, info in members.items()}
        shape, dtype = headers[CONFIG_KEY]
        if shape != () or dtype.kind != "U":
            msg = f"its {CONFIG_KEY!r} entry is {dtype} {shape}, not one string"
            raise _FormatError(msg)
        try:
            config = json.loads(str(_array(zf, members[CONFIG_KEY])))
        except json.JSONDecodeError as exc:
            msg = f"its configuration is not valid JSON ({exc})"
            raise _FormatError(msg) from None
        expected = _expected(config)
        for key, (want_shape, kinds) in expected.items():
            if key not in headers:
                msg = f"missing or malformed entry {key!r}, which its configuration calls for"
                raise _FormatError(msg)
            shape, dtype = headers[key]
            if not _matches(shape, want_shape) or dtype.kind not in kinds:
                what = {"f": "floats", "U": "text", "biuf": "numbers", "fiu": "numbers", "iu": "integers"}[kinds]
                if key.startswith(("W", "b", "opt.")):
                    what = "finite " + what
                msg = f"{key} should be {what} of shape {want_shape}, found {dtype} {shape}"
                raise _FormatError(msg)
        extra = sorted(set(headers) - set(expected) - {CONFIG_KEY})
        if extra:
            msg = f"it holds entries its configuration does not describe: {extra[:6]}"
            raise _FormatError(msg)
        arrays = {key: _array(zf, members[key]) for key in expected}
    _check_values(config, arrays, expected)
    return config, arrays


def _header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, disk_size: int) -> tuple[tuple[int, ...], np.dtype]:
    """An entry's declared ``(shape, dtype)``, read from its .npy header alone, after checking that the
    bytes it declares are the bytes the archive holds (so reading it cannot allocate more than that)."""
    if info.compress_type != zipfile.ZIP_STORED:
        # anynet stores its arrays as they are; an entry that inflates could claim any size (a 0.5 MB
        # file inflated to 512 MiB once), so none is read
        msg = f"entry {info.filename!r} is compressed, and anynet writes its arrays uncompressed"
        raise _FormatError(msg)
    if info.file_size != info.compress_size or info.compress_size > disk_size:
        msg = f"entry {info.filename!r} claims {info.file_size} bytes, more than the file holds"
        raise _FormatError(msg)
    with zf.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            msg = f"entry {info.filename!r} is .npy format {version}; anynet writes 1.0"
            raise _FormatError(msg)
        start = member.tell()
    if dtype.hasobject:
        msg = f"entry {info.filename!r} holds Python objects, which anynet never writes or unpickles"
        raise _FormatError(msg)
    if any(d < 0 for d in shape) or start + math.prod(shape) * dtype.itemsize != info.file_size:
        msg = f"entry {info.filename!r} declares {dtype} {shape}, which its size does not match"
        raise _FormatError(msg)
    return shape, dtype


def _array(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with zf.open(info) as member:
        a = np.lib.format.read_array(member, allow_pickle=False)
        member.read()  # to the end of the entry, where zipfile checks its CRC-32
    return a


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _expected(config: Any) -> dict[str, tuple[tuple[int | None, ...], str]]:
    """Type-check the configuration; return the ``(shape, dtype kinds)`` of every array it calls for."""
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        msg = "its configuration does not say format 'anynet'"
        raise _FormatError(msg)
    version = config.get("version")
    if not _is_int(version) or version > FORMAT_VERSION:
        msg = f"format version {version!r}; this anynet reads versions up to {FORMAT_VERSION}, upgrade it"
        raise _FormatError(msg)
    if version < 1:
        msg = f"format version {version!r}; anynet's versions start at 1"
        raise _FormatError(msg)
    for key in ("sizes", "activation", "output_activation", "bias", "dtype"):
        if key not in config:
            msg = f"missing or malformed entry {key!r} in its configuration"
            raise _FormatError(msg)
    sizes = config["sizes"]
    if not isinstance(sizes, list) or len(sizes) < 2 or not all(_is_int(s) and s > 0 for s in sizes):
        msg = f"sizes {sizes!r} are not a list of positive widths"
        raise _FormatError(msg)
    for key in ("activation", "output_activation"):
        if not isinstance(config[key], str) or config[key] not in activations.ACTIVATIONS:
            msg = f"{key} {config[key]!r} is not one of {sorted(activations.ACTIVATIONS)}"
            raise _FormatError(msg)
    if not isinstance(config["bias"], bool):
        msg = f"bias {config['bias']!r} is not true or false"
        raise _FormatError(msg)
    if not isinstance(config["dtype"], str):
        msg = f"dtype {config['dtype']!r} is not a dtype name such as 'float32'"
        raise _FormatError(msg)
    init = config.get("init", "uniform")
    if not isinstance(init, str) or init not in initialisers.INITS:
        msg = f"init {init!r} is not one of {sorted(initialisers.INITS)}"
        raise _FormatError(msg)
    seed = config.get("seed")
    if seed is not None and not _is_int(seed):
        msg = f"seed {seed!r} is not an integer or null"
        raise _FormatError(msg)
    epochs = config.get("epochs_trained", 0)
    if not _is_int(epochs) or epochs < 0:
        msg = f"epochs_trained {epochs!r} is not a whole number >= 0"
        raise _FormatError(msg)
    if not isinstance(config.get("metadata") or {}, dict):
        msg = f"metadata {config['metadata']!r} is not a JSON object"
        raise _FormatError(msg)
    layers = list(itertools.pairwise(sizes))
    kind = config.get("kind", "network")
    if kind not in ("network", "ensemble"):
        msg = f"kind {kind!r} is not 'network' or 'ensemble'"
        raise _FormatError(msg)
    # an ensemble stacks its members' parameters on a leading axis
    lead = (_check_ensemble(config),) if kind == "ensemble" else ()
    expected: dict[str, tuple[tuple[int | None, ...], str]] = {}
    for i, (n_in, n_out) in enumerate(layers):
        expected[f"W{i}"] = ((*lead, n_in, n_out), "f")
        if config["bias"]:
            expected[f"b{i}"] = ((*lead, 1, n_out) if lead else (n_out,), "f")
    if lead:
        for m, history in enumerate(config["histories"]):
            if history is not None:
                _check_history(history)
                expected |= {f"history.{m}.{k}": ((None,), "f") for k in HISTORY_SERIES}
    classes = config.get("classes")
    if classes is not None:
        if classes not in ("numeric", "text"):
            msg = f"classes {classes!r} is not 'numeric', 'text' or null"
            raise _FormatError(msg)
        n_classes = 2 if sizes[-1] == 1 else sizes[-1]
        expected["classes"] = ((n_classes,), "biuf" if classes == "numeric" else "U")
    if config.get("optimizer") is not None:
        expected |= _expected_optimizer(config["optimizer"], layers, config["bias"])
    history = config.get("history")
    if history is not None:
        _check_history(history)
        for k in HISTORY_SERIES:
            expected[f"history.{k}"] = ((None,), "f")
    return expected


def _check_ensemble(config: dict) -> int:
    """Type-check what only an ensemble's configuration holds; return its number of members."""
    seeds = config.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(s is None or _is_int(s) for s in seeds):
        msg = f"seeds {str(seeds)[:80]!r} are not a non-empty list of integers or nulls, one per member"
        raise _FormatError(msg)
    histories = config.get("histories")
    if not isinstance(histories, list) or len(histories) != len(seeds):
        msg = f"histories is not a list of one entry per member ({len(seeds)})"
        raise _FormatError(msg)
    diverged = config.get("diverged", {})
    ok = isinstance(diverged, dict) and all(
        isinstance(why, str) and key.isdigit() and int(key) < len(seeds) for key, why in diverged.items()
    )
    if not ok:
        msg = f"diverged {str(diverged)[:80]!r} does not map member numbers to messages"
        raise _FormatError(msg)
    if config.get("optimizer") is not None or config.get("history") is not None:
        msg = "an ensemble's configuration holds an optimizer or a single history, which anynet never writes"
        raise _FormatError(msg)
    return len(seeds)


def _matches(shape: tuple[int, ...], want: tuple[int | None, ...]) -> bool:
    return len(shape) == len(want) and all(w is None or s == w for s, w in zip(shape, want, strict=True))


def _expected_optimizer(opt: Any, layers: list[tuple[int, int]], bias: bool) -> dict:
    """The arrays an optimizer entry calls for, after checking its name and options (the registered
    optimizer's own checks) and its state's structure (against the optimizer's ``state_layout``)."""
    if not isinstance(opt, dict) or set(opt) != {"name", "options", "state"}:
        msg = f"its optimizer entry {str(opt)[:80]!r} is not {{name, options, state}}"
        raise _FormatError(msg)
    name, options, state = opt["name"], opt["options"], opt["state"]
    if not isinstance(name, str) or name not in optimizers.OPTIMIZERS:
        msg = (
            f"optimizer {name!r} is not one of {optimizers.names()}; if it is an optimizer of your own, "
            "register its class (anynet.optimizers.register) before loading"
        )
        raise _FormatError(msg)
    takes = optimizers.options_of(name)
    if not isinstance(options, dict) or not set(options) <= set(takes):
        msg = f"{name} options {options!r} are not among {sorted(takes)}"
        raise _FormatError(msg)
    try:
        built = optimizers.get(name, **options)
    except (TypeError, ValueError) as exc:
        msg = f"its {name} options are refused: {exc}"
        raise _FormatError(msg) from None
    expected: dict[str, tuple[tuple[int | None, ...], str]] = {}

    def leaf(node: Any, shape: tuple[int, ...], kinds: str, what: str) -> None:
        if not (isinstance(node, dict) and set(node) == {"array"} and isinstance(node["array"], str)):
            msg = f"the optimizer state's {what} is {repr(node)[:60]}, not an array entry"
            raise _FormatError(msg)
        key = node["array"]
        if not key.startswith("opt.") or key in expected:
            msg = f"the optimizer state names the entry {key!r} twice or outside 'opt.'"
            raise _FormatError(msg)
        expected[key] = (shape, kinds)

    shapes = [((n_in, n_out), (n_out,) if bias else None) for n_in, n_out in layers]
    try:
        optimizers.check_state(built.state_layout(shapes), state, shapes, leaf, name=name)
    except ValueError as exc:
        raise _FormatError(str(exc)) from None
    return expected


HISTORY_SERIES = ("loss", "val_loss", "accuracy", "val_accuracy", "lr")
HISTORY_FIELDS = (
    "monitor",
    "best_epoch",
    "best_value",
    "stopped_early",
    "restored_best",
    "wall_time",
    "backend",
    "device",
)


def _check_history(history: Any) -> None:
    if not isinstance(history, dict) or not set(history) <= set(HISTORY_FIELDS):
        msg = f"its history entry {str(history)[:80]!r} has fields other than {list(HISTORY_FIELDS)}"
        raise _FormatError(msg)
    checks = {
        "monitor": lambda v: isinstance(v, str),
        "best_epoch": lambda v: v is None or (_is_int(v) and v >= 0),
        "best_value": lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)),
        "stopped_early": lambda v: isinstance(v, bool),
        "restored_best": lambda v: isinstance(v, bool),
        "wall_time": lambda v: _is_number(v) and v >= 0,
        "backend": lambda v: isinstance(v, str),
        "device": lambda v: isinstance(v, str),
    }
    for key, value in history.items():
        if not checks[key](value):
            msg = f"its history's {key} {value!r} has the wrong type"
            raise _FormatError(msg)


def _check_values(config: dict, arrays: dict[str, np.ndarray], expected: dict) -> None:
    """What the headers cannot show: finite weights and optimizer state, whole step counts, classes
    sorted and distinct."""
    for key, a in arrays.items():
        if key.startswith(("W", "b", "opt.")) and a.dtype.kind == "f" and not np.isfinite(a).all():
            what = "optimizer state entry " if key.startswith("opt.") else ""
            msg = f"{what}{key} should be finite floats, found NaN or infinite values"
            raise _FormatError(msg)
        counted = key.startswith("opt.") and expected[key][1] == "fiu"  # a step count held as an array
        if counted and (a < 0 or a != np.floor(a)):
            msg = f"the optimizer state's step count {key} is {a}, not a whole number >= 0"
            raise _FormatError(msg)
    histories = [("history", config.get("history"))]
    histories += [(f"history.{m}", h) for m, h in enumerate(config.get("histories") or [])]
    for prefix, history in histories:
        epochs = arrays.get(f"{prefix}.loss")
        best = None if history is None else history.get("best_epoch")
        if best is not None and epochs is not None and best >= epochs.shape[0]:
            who = "its history" if prefix == "history" else f"member {prefix.split('.')[1]}'s history"
            msg = f"{who} names best epoch {best}, but holds {epochs.shape[0]} epochs"
            raise _FormatError(msg)
    if "classes" in arrays:
        c = arrays["classes"]
        if c.dtype.kind == "f" and not np.isfinite(c).all():
            msg = "classes holds NaN or infinite labels"
            raise _FormatError(msg)
        if not np.array_equal(np.unique(c), c):
            msg = f"classes {c.tolist()[:10]} are not sorted and distinct, as fit stores them"
            raise _FormatError(msg)


def _build_ensemble(config: dict, arrays: dict, backend: str | None, device: str | None, dtype: Any) -> Ensemble:
    """An ensemble from a configuration and arrays that ``_read`` has checked."""
    n_layers = len(config["sizes"]) - 1
    ens = Ensemble.from_weights(
        [arrays[f"W{i}"] for i in range(n_layers)],
        [arrays[f"b{i}"] for i in range(n_layers)] if config["bias"] else None,
        seeds=config["seeds"],
        activation=config["activation"],
        output_activation=config["output_activation"],
        init=config.get("init", "uniform"),
        classes=arrays["classes"] if config.get("classes") is not None else None,
        dtype=dtype if dtype is not None else config["dtype"],
        backend=backend,
        device=device,
    )
    ens.follow(dtype=dtype is None)
    ens.epochs_trained = config.get("epochs_trained", 0)
    ens.metadata = dict(config.get("metadata") or {})
    for m, fields in enumerate(config["histories"]):
        if fields is not None:
            h = History(**fields)
            for k in HISTORY_SERIES:
                setattr(h, k, [float(v) for v in arrays[f"history.{m}.{k}"]])
            ens.histories[m] = h
    ens.diverged = {int(key): why for key, why in config.get("diverged", {}).items()}
    return ens


def _build(config: dict, arrays: dict, backend: str | None, device: str | None, dtype: Any) -> Network:
    """A network from a configuration and arrays that ``_read`` has checked."""
    n_layers = len(config["sizes"]) - 1
    weights = [arrays[f"W{i}"] for i in range(n_layers)]
    biases = [arrays[f"b{i}"] for i in range(n_layers)] if config["bias"] else None
    net = Network.from_weights(
        weights,
        biases,
        activation=config["activation"],
        output_activation=config["output_activation"],
        dtype=dtype if dtype is not None else config["dtype"],
        backend=backend,
        device=device,
    )
    net.follow(place=backend is None, dtype=dtype is None)
    net.init = config.get("init", "uniform")
    net.seed = config.get("seed")
    net.epochs_trained = config.get("epochs_trained", 0)
    net.metadata = dict(config.get("metadata") or {})
    if config.get("classes") is not None:
        net.classes = np.asarray(arrays["classes"])
    opt = config.get("optimizer")
    if opt is not None:
        net.set_optimizer(optimizers.get(opt["name"], **opt["options"]), _unflatten(opt["state"], arrays))
    if config.get("history") is not None:
        h = History(**config["history"])
        for k in HISTORY_SERIES:
            setattr(h, k, [float(v) for v in arrays[f"history.{k}"]])
        net.history = h
    return net
