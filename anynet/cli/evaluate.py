"""``anynet evaluate``: a saved model's metrics on labelled data."""

from __future__ import annotations

import argparse

import numpy as np

from .. import backend as B
from ._common import DATA_HELP, UserError, _add_place, _command, _Help
from ._model import _add_data, _is_classifier, _labels_of, _load_model, _model_data, _moved, _values


def run(args: argparse.Namespace) -> int:
    net = _load_model(args.model)
    table = _model_data(net, args, need_target=True)
    net = _moved(net, args)
    out = [f"{args.model} on {table.source}: {table.n} rows"]
    if _is_classifier(net):
        classes = np.asarray(net.classes)
        t = table.t
        if classes.dtype.kind not in "biuf":
            t = t.astype(str)
        elif t.dtype.kind not in "biuf":
            msg = (
                f"{table.source!r} has text labels in {table.target!r} (such as {str(t[0])!r}) but the model "
                f"was trained on numbers {classes.tolist()[:12]}"
            )
            raise UserError(msg)
        unknown = np.setdiff1d(np.unique(t), classes)
        if unknown.size:
            msg = (
                f"{table.source!r} has label(s) {unknown.tolist()[:5]} in {table.target!r} that the model never saw "
                f"in training; it knows {classes.tolist()[:12]}"
            )
            raise UserError(msg)
        predicted = _labels_of(net, B.to_numpy(net.predict(table.X)))
        metrics = net.evaluate(table.X, t, loss=net.metadata.get("loss", "half_sse"))
        hits = int(np.sum(predicted == t))
        out[0] += f", {classes.size} classes"
        out.append(f"  accuracy  {hits / table.n:.4f}  ({hits} of {table.n})")
        out.append(f"  loss      {metrics['loss']:.4g}  ({net.metadata.get('loss', 'half_sse')})")
        out.append("")
        out.append("confusion matrix (rows: true label, columns: predicted)")
        out += _confusion(classes, t, predicted)
    else:
        if table.t.dtype.kind not in "biuf":
            msg = f"the model is a regressor but {table.target!r} in {table.source!r} holds text; give numeric targets"
            raise UserError(msg)
        y = _values(net, table.X)
        t = table.t.astype(float)
        err = y - t
        ss_tot = float(np.sum((t - t.mean()) ** 2))
        r2 = 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else float("nan")
        out[0] += f", regression of {table.target!r}"
        out.append(f"  MSE  {np.mean(err**2):.6g}")
        out.append(f"  MAE  {np.mean(np.abs(err)):.6g}")
        out.append(f"  R²   {r2:.4f}")
    print("\n".join(out))
    return 0


def _confusion(classes: np.ndarray, t: np.ndarray, predicted: np.ndarray) -> list[str]:
    index = {c: i for i, c in enumerate(classes.tolist())}
    counts = np.zeros((classes.size, classes.size), dtype=int)
    for a, b in zip(t.tolist(), predicted.tolist(), strict=True):
        counts[index[a], index[b]] += 1
    names = [str(c) for c in classes.tolist()]
    width = max(max(map(len, names)), len(str(counts.max())), 3)
    label = max(map(len, names))
    lines = ["  " + " " * label + "".join(f"  {n:>{width}}" for n in names)]
    for name, row in zip(names, counts, strict=True):
        lines.append(f"  {name:<{label}}" + "".join(f"  {v:>{width}}" for v in row))
    return lines


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``anynet evaluate``'s options."""
    evaluate = _command(
        sub,
        "evaluate",
        help="metrics of a saved model on labelled data",
        description="Accuracy, loss and a confusion matrix for a classifier; MSE, MAE and R² for a regressor.",
        epilog=DATA_HELP,
        formatter_class=_Help,
    )
    _add_data(evaluate, target_help="the label column (default: the one the model was trained on)")
    _add_place(evaluate)
    evaluate.add_argument(
        "--dtype", choices=["float32", "float64"], default=None, help="float precision (default: the model's)"
    )
    evaluate.add_argument(
        "-q", "--quiet", action="store_true", help="no logs on stderr (evaluate writes only its metrics, to stdout)"
    )
    evaluate.set_defaults(func=run)
