"""A model saved by ``anynet train``, read back for ``evaluate`` and ``predict``: the file, its
metadata, and DATA read the way the training data was."""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import numpy as np

from .. import backend as B
from .. import data as D
from .. import losses
from ._common import UserError, _place, _refuse_overflow, _seed


def _add_data(p: argparse.ArgumentParser, *, target_help: str) -> None:
    p.add_argument("model", metavar="MODEL", help="a model file written by `anynet train --out`")
    p.add_argument("data", metavar="DATA", help="a CSV or NPZ file, or a built-in dataset name")
    p.add_argument("--target", metavar="COLUMN", default=None, help=target_help)
    p.add_argument("--seed", type=_seed, default=0, help="seed that draws a built-in dataset (default: 0)")


def _load_model(path: str):
    """The model at ``path``, on the host: DATA is read and checked before any backend is imported."""
    from ..checkpoints import load

    order = "the model comes first: anynet COMMAND MODEL DATA"
    if not Path(path).exists():
        hint = order if path in D.BUILTINS else f"train one with `anynet train DATA --out {path}`"
        msg = f"cannot load the model {path!r}: no such file; {hint}"
        raise UserError(msg)
    if Path(path).is_file() and not zipfile.is_zipfile(path):
        # a damaged .npz is just that; any other file in MODEL's place may be DATA given first
        hint = "it is damaged or not written by anynet" if Path(path).suffix.lower() == ".npz" else order
        msg = f"{path!r} is not an anynet model (models are .npz files written by `anynet train --out`); {hint}"
        raise UserError(msg)
    net = load(path, backend="numpy")
    if not hasattr(net, "weights"):  # an anynet.Ensemble
        msg = (
            f"{path!r} holds an ensemble of {net.n_members} networks; this command takes one model: "
            "save the best member with `anynet train ... --members N --keep best`"
        )
        raise UserError(msg)
    _check_metadata(net, path)
    return net


def _numbers(value, n: int | None, positive: bool = False) -> bool:
    """``value`` is ``n`` finite numbers (one number if ``n`` is None), each > 0 if ``positive``."""
    values = [value] if n is None else value
    if not isinstance(values, list) or (n is not None and len(values) != n):
        return False
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in values)
    return ok and (not positive or all(v > 0 for v in values))


def _check_metadata(net, path: str) -> None:
    """The metadata ``anynet train`` wrote, checked before the commands read it: a model edited by hand
    gets one line that names the entry, not a traceback from deep inside a command."""
    from ..checkpoints import CheckpointError

    meta, n_in = net.metadata, net.n_in

    def scaling(value, n):
        return value is None or (
            isinstance(value, dict)
            and set(value) == {"mean", "std"}
            and _numbers(value["mean"], n)
            and _numbers(value["std"], n, positive=True)
        )

    checks = {
        "features": (
            lambda v: v is None or (isinstance(v, list) and len(v) == n_in and all(isinstance(f, str) for f in v)),
            f"a list of {n_in} column names",
        ),
        "target": (lambda v: v is None or isinstance(v, str), "a column name"),
        "task": (lambda v: v in ("classification", "regression"), "'classification' or 'regression'"),
        "loss": (lambda v: v in losses.LOSSES, f"one of {sorted(losses.LOSSES)}"),
        "standardize": (lambda v: scaling(v, n_in), f"null or {n_in} means and {n_in} positive stds"),
        "target_standardize": (lambda v: scaling(v, None), "null or a mean and a positive std"),
    }
    for key, (ok, want) in checks.items():
        if key in meta and not ok(meta[key]):
            msg = f"{path!r} is not a valid anynet checkpoint: its metadata {key} {str(meta[key])[:60]!r} is not {want}"
            raise CheckpointError(msg)
    if meta.get("task") == "classification" and net.classes is None:
        msg = f"{path!r} is not a valid anynet checkpoint: its metadata says classification but it holds no classes"
        raise CheckpointError(msg)


def _moved(net, args: argparse.Namespace):
    """``net`` on the backend, device and dtype that ``args`` ask for."""
    name, device = _place(args.backend, args.device)
    try:
        return net.to(name, device, args.dtype)
    except B.BackendError as exc:
        if args.dtype is None and B.dtype_name(net.dtype) == "float64":
            msg = f"{exc}; or add --dtype float32 to compute in single precision"
            raise UserError(msg) from None
        raise


def _model_data(net, args: argparse.Namespace, *, need_target: bool) -> D.Table:
    """DATA read the way the model's training data was: same feature columns, same standardisation."""
    meta = net.metadata
    target = getattr(args, "target", None) or meta.get("target")
    table = D.load(args.data, target=target, seed=args.seed, need_target=False, features=meta.get("features"))
    if need_target and table.t is None:
        what = f"target column {target!r}" if target else "targets"
        msg = f"{args.data!r} has no {what} to evaluate against; name the label column with --target"
        raise UserError(msg)
    if meta.get("features"):
        table = D.select(table, meta["features"])
    if table.X.shape[1] != net.n_in:
        msg = f"{args.data!r} has {table.X.shape[1]} feature columns but the model {args.model!r} expects {net.n_in}"
        raise UserError(msg)
    scaling = meta.get("standardize")
    if scaling:
        with np.errstate(over="ignore", invalid="ignore"):
            X = D.standardize(table.X, scaling["mean"], scaling["std"])
        _refuse_overflow(X, table.X, table.features, table.source, "once standardised as the training data was")
        table.X = X
    return table


def _is_classifier(net) -> bool:
    return net.metadata.get("task", "classification" if net.classes is not None else "regression") == "classification"


def _labels_of(net, y: np.ndarray) -> np.ndarray:
    """The class labels for outputs ``y``: ``(n, n_out)`` on the host, by ``predict_classes``'s rule
    (the largest output, or output > 0.5 for one sigmoid), from the one forward pass already made."""
    index = (y[:, 0] > 0.5).astype(int) if y.shape[1] == 1 else y.argmax(axis=1)
    return np.asarray(net.classes)[index]


def _values(net, X: np.ndarray) -> np.ndarray:
    """A regressor's predictions ``(n,)`` in the target's own units (undoing --standardize)."""
    y = B.to_numpy(net.predict(X))[:, 0].astype(float)
    scale = net.metadata.get("target_standardize")
    return y * scale["std"] + scale["mean"] if scale else y
