"""``anynet predict``: a saved model's predictions for new rows, as CSV."""

from __future__ import annotations

import argparse
import csv
import io
import sys

import numpy as np

from .. import backend as B
from ..files import atomic_write
from ._common import DATA_HELP, UserError, _add_place, _command, _Help, _logger, _para, _writable
from ._model import _add_data, _is_classifier, _labels_of, _load_model, _model_data, _moved, _values


def run(args: argparse.Namespace) -> int:
    say = _logger(args.quiet)
    out = _writable(args.out, "--out", (".csv",)) if args.out else None
    net = _load_model(args.model)
    table = _model_data(net, args, need_target=False)
    net = _moved(net, args)
    name = net.metadata.get("target") or "prediction"
    header = [name]
    if _is_classifier(net):
        classes = np.asarray(net.classes)
        y = B.to_numpy(net.predict(table.X)).astype(float)
        columns = [_labels_of(net, y).tolist()]
        if args.proba:
            p = np.c_[1.0 - y[:, 0], y[:, 0]] if y.shape[1] == 1 else y
            header += [f"p_{c}" for c in classes.tolist()]
            columns += [[f"{v:.6g}" for v in col] for col in p.T]
    else:
        if args.proba:
            msg = f"--proba gives class probabilities, but {args.model!r} is a regressor; leave --proba out"
            raise UserError(msg)
        columns = [[f"{v:.6g}" for v in _values(net, table.X)]]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(zip(*columns, strict=True))
    if out is None:
        sys.stdout.write(buffer.getvalue())
    else:
        atomic_write(out, lambda tmp: tmp.write_text(buffer.getvalue(), encoding="utf-8"))
        say(f"wrote {table.n} predictions to {out}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``anynet predict``'s options."""
    predict = _command(
        sub,
        "predict",
        help="predictions of a saved model for new rows, as CSV",
        description=_para(
            "Predict a label (or a value) for each row of DATA, read the way the training data was: the same "
            "feature columns, in any order, and the same standardisation. Writes CSV to stdout or --out."
        ),
        epilog=DATA_HELP,
        formatter_class=_Help,
    )
    _add_data(predict, target_help=argparse.SUPPRESS)
    predict.add_argument("--proba", action="store_true", help="add a probability column per class")
    predict.add_argument("--out", default=None, metavar="FILE.csv", help="write the predictions here (default: stdout)")
    predict.add_argument("-q", "--quiet", action="store_true", help="no logs on stderr")
    _add_place(predict)
    predict.add_argument(
        "--dtype", choices=["float32", "float64"], default=None, help="float precision (default: the model's)"
    )
    predict.set_defaults(func=run)
