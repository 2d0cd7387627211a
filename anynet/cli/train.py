"""``anynet train``: a network (or ``--members`` of them) trained on DATA, saved, and summed up."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__, activations, defaults, losses, optimizers
from .. import backend as B
from .. import data as D
from ..files import atomic_write
from ._common import (
    DATA_HELP,
    PLOT_SUFFIXES,
    UserError,
    _add_place,
    _command,
    _Help,
    _logger,
    _need_matplotlib,
    _place,
    _positive_float,
    _positive_int,
    _refuse_overflow,
    _seed,
    _writable,
)
from ._members import _pct_or_loss, _train_ensemble

#: pictures in a training movie (--movie), fewer for a run of fewer epochs
MOVIE_FRAMES = 30
#: datasets with at least this many rows hold out 20% for validation unless --validation-split says
AUTO_SPLIT_ROWS = 50


def run(args: argparse.Namespace) -> int:
    from ..checkpoints import save
    from ..network import Network

    say = _logger(args.quiet)
    out = _writable(args.out, "--out", (".npz",))
    plot = _writable(args.plot, "--plot", PLOT_SUFFIXES) if args.plot else None
    boundary = _writable(args.boundary, "--boundary", PLOT_SUFFIXES) if args.boundary else None
    movie = _writable(args.movie, "--movie", (".gif",)) if args.movie else None
    asked = [flag for flag, path in (("--plot", plot), ("--boundary", boundary), ("--movie", movie)) if path]
    _need_matplotlib(asked)
    table = D.load(args.data, target=args.target, seed=args.seed)
    _check_pictures(args, table, boundary, movie)
    task, output, loss, n_out = _task(args, table)
    X, t, scaling, t_scaling = table.X, table.t, None, None
    if args.standardize:
        X, mean, std = _standardized(X, table.features, table.source)
        scaling = {"mean": mean, "std": std}
        if task == "regression":  # a target far from 0 would take the output bias many epochs to reach
            t, (t_mean,), (t_std,) = _standardized(t.astype(float).reshape(-1, 1), [table.target], table.source)
            t, t_scaling = t[:, 0], {"mean": t_mean, "std": t_std}
    backend = args.backend
    if args.scheduler is not None:
        from .. import cluster

        try:
            backend = cluster.backend_for(args.backend)
        except cluster.ClusterError as exc:
            msg = f"--scheduler {exc}"
            raise UserError(msg) from None
    backend, device = _place(backend, args.device)
    sizes = [X.shape[1], *args.hidden, n_out]
    net = Network(
        sizes,
        activation=args.activation,
        output_activation=output,
        init="he" if args.activation in ("relu", "leaky_relu") else "glorot",
        seed=args.seed,
        dtype=args.dtype,
        backend=backend,
        device=device,
    )
    split = args.validation_split
    if split is None:
        split = 0.2 if table.n >= AUTO_SPLIT_ROWS else 0.0
    n_val = max(1, round(table.n * split)) if split else 0
    if n_val >= table.n:
        msg = (
            f"--validation-split {split} holds out {n_val} of {table.n} rows, leaving none to train on; "
            "use a smaller fraction"
        )
        raise UserError(msg)
    lrs = args.lr or [defaults.lr_for(args.optimizer, "cli")]
    members = args.members if args.members is not None else len(lrs)
    if len(lrs) > members:
        msg = f"--lr gives {len(lrs)} values but --members is {members}; give at most one value per member"
        raise UserError(msg)
    if members > 1 and asked:
        msg = f"{asked[0]} draws one network; with --members, draw the best one after `--keep best`"
        raise UserError(msg)
    lr = lrs[0]
    batch = None if args.batch_size is None or args.batch_size >= table.n - n_val else args.batch_size
    kind = f"{np.unique(table.t).size} classes" if task == "classification" else "regression"
    say(f"data: {table.source}: {table.n} rows, {X.shape[1]} features, target {table.target!r} ({kind})")
    say(
        f"training {'-'.join(map(str, sizes))} ({net.activation} -> {output}) on {net.backend} "
        f"({net.device}, {B.dtype_name(net.dtype)}): {args.optimizer} lr {lr:g}, "
        f"batch {batch or 'full'}, {args.epochs} epochs" + (f", {n_val} rows held out for validation" if n_val else "")
    )
    options = {"lr": lr, "loss": loss, "optimizer": args.optimizer, "batch_size": batch, "validation_split": split}
    metadata = {
        "made_by": f"anynet {__version__} train",
        "data": table.source,
        "task": task,
        "features": table.features,
        "target": table.target,
        "standardize": scaling,
        "target_standardize": t_scaling,
        "loss": loss,
    }
    if members > 1:
        if args.scheduler is not None:
            msg = "--members trains in this process; it does not go with --scheduler yet"
            raise UserError(msg)
        options["lr"] = [lrs[i % len(lrs)] for i in range(members)]  # a comma list repeats over the members
        return _train_ensemble(args, net, X, t, members, options, metadata, table, task, n_val, out)
    with contextlib.ExitStack() as stack, np.errstate(all="ignore"):  # divergence: one DivergedError line
        fit_X = X
        if args.scheduler is not None:
            fit_X, options["client"] = _on_cluster(args.scheduler, X, stack, say)
        if movie is not None:
            from ..plot import training_movie

            frames = min(MOVIE_FRAMES, args.epochs + 1)
            say(f"drawing {frames} frames of the class regions while it trains (no progress bar meanwhile)")
            history = training_movie(net, fit_X, t, movie, epochs=args.epochs, frames=frames, seed=args.seed, **options)
        else:
            history = net.fit(
                fit_X,
                t,
                epochs=args.epochs,
                patience=args.patience,
                seed=args.seed,
                verbose=0 if args.quiet else 1,
                **options,
            )
    net.metadata = metadata
    save(net, out)
    if plot is not None:
        title = f"{Path(table.source).name}: loss per epoch ({net.backend}, {net.device})"
        atomic_write(plot, lambda tmp: history.plot(str(tmp), title=title))
    if boundary is not None:
        from ..plot import decision_boundary

        decision_boundary(net, X, t, boundary)
    pictures = [("loss plot", plot), ("boundary", boundary), ("movie", movie)]
    kept = history.best_epoch if history.restored_best else -1
    _print_summary(net, history, kept, table, task, n_val, lr, batch, args, out, pictures)
    return 0


def _check_pictures(args: argparse.Namespace, table: D.Table, boundary: Path | None, movie: Path | None) -> None:
    """--boundary and --movie draw the plane of 2 features: other data is refused before training."""
    flags = [flag for flag, path in (("--boundary", boundary), ("--movie", movie)) if path is not None]
    if flags and table.X.shape[1] != 2:
        msg = (
            f"{' and '.join(flags)}: the class regions are drawn over the plane of 2 features, but "
            f"{table.source!r} has {table.X.shape[1]}; leave {' and '.join(flags)} out, or train on moons, spirals, "
            "xor or a 2-column file"
        )
        raise UserError(msg)
    if flags and not D.is_categorical(table.t):
        msg = (
            f"{' and '.join(flags)}: the regions are those of classes, but {table.target!r} in {table.source!r} "
            "holds values to regress; leave them out"
        )
        raise UserError(msg)
    if movie is not None and args.patience is not None:
        msg = "--movie trains in chunks between its frames, and early stopping (--patience) cannot span them; drop one"
        raise UserError(msg)


def _standardized(X: np.ndarray, names: list[str], source: str) -> tuple[np.ndarray, list[float], list[float]]:
    """``X`` scaled to mean 0, std 1 per column, with the means and stds; a column whose statistics
    overflow float64 is refused by name, with no NumPy warnings on the way."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean, std = D.standardizer(X)
        scaled = D.standardize(X, mean, std)
    stats_ok = np.isfinite(mean) & np.isfinite(std)
    _refuse_overflow(np.where(stats_ok, scaled, np.inf), X, names, source, "when standardised (--standardize)")
    return scaled, mean, std


def _task(args: argparse.Namespace, table: D.Table) -> tuple[str, str, str, int]:
    """``(task, output activation, loss, n_out)`` from the options and what the target holds."""
    t = table.t
    categorical = D.is_categorical(t)
    loss = losses.get(args.loss) if args.loss else None
    output = args.output or (loss.output if loss is not None else None)
    if output is None:
        output = ("softmax" if np.unique(t).size > 2 else "sigmoid") if categorical else "identity"
    task = "regression" if output in ("identity", "exp") else "classification"  # exp: counts, rates
    if task == "regression" and t.dtype.kind not in "biuf":
        msg = (
            f"--output {output} makes a regressor, but the target {table.target!r} holds text labels "
            f"(such as {str(t[0])!r}); use --output softmax (or leave --output out) to classify them"
        )
        raise UserError(msg)
    n_classes = np.unique(t).size
    if task == "classification":
        if not categorical:
            msg = (
                f"--output {output} makes a classifier, but the target {table.target!r} holds {n_classes} distinct "
                f"numbers; use --output identity to predict them as values (regression)"
            )
            raise UserError(msg)
        if n_classes < 2:
            msg = f"the target {table.target!r} holds a single class ({str(t[0])!r}); a classifier needs two or more"
            raise UserError(msg)
    loss = loss or losses.get(defaults.loss_for(output, "cli"))
    if loss.output is not None and loss.output != output:
        msg = (
            f"--loss {loss.name} works on {loss.output} outputs, but the output is {output}; add --output {loss.output}"
        )
        raise UserError(msg)
    n_out = 1 if task == "regression" or (output == "sigmoid" and n_classes == 2) else n_classes
    return task, output, loss.name, n_out


def _on_cluster(address: str, X: np.ndarray, stack: contextlib.ExitStack, say) -> tuple[Any, Any]:
    """``X`` in row chunks on the cluster of the scheduler at ``address``, and a client of it, closed
    when ``stack`` closes (``anynet.cluster.connect``): the fit trains data-parallel there."""
    from .. import cluster

    try:
        X, client, workers, rows = cluster.connect(address, X, stack)
    except cluster.ClusterError as exc:
        msg = f"--scheduler {exc}"
        raise UserError(msg) from None
    say(f"cluster: {address}, {workers} worker(s); the rows go to them once, in chunks of {rows}")
    return X, client


def _print_summary(net, history, kept, table, task, n_val, lr, batch, args, out, pictures) -> None:
    """The table at the end of ``train``, on stdout."""
    rows = [("loss", _pct_or_loss(history.loss, kept, False), _pct_or_loss(history.val_loss, kept, False))]
    if task == "classification":
        rows.append(
            ("accuracy", _pct_or_loss(history.accuracy, kept, True), _pct_or_loss(history.val_accuracy, kept, True))
        )
    epochs = f"{history.epochs} of {args.epochs}"
    if history.stopped_early:
        epochs += f" (stopped early: no better {history.monitor} for {args.patience} epoch{'s' * (args.patience > 1)})"
    if kept >= 0 and history.epochs:
        epochs += f"; kept epoch {kept + 1}, the best {history.monitor}"
    per = f" ({1000 * history.wall_time / history.epochs:.3g} ms/epoch)" if history.epochs else ""
    kind = f"{net.classes.size} classes" if task == "classification" else f"regression of {table.target!r}"
    split = f"{table.n - n_val} train, {n_val} validation" if n_val else "no validation"
    shape = "-".join(map(str, net.sizes))
    facts = [
        ("epochs run", epochs),
        ("time", f"{history.wall_time:.2f} s{per}"),
        ("backend", f"{net.backend} on {net.device}, {B.dtype_name(net.dtype)}"),
        ("data", f"{table.source}: {table.n} rows ({split}), {table.X.shape[1]} features, {kind}"),
        ("network", f"{shape}, {net.activation} -> {net.output_activation}, {net.n_params:,} parameters"),
        ("training", f"{args.optimizer}, lr {lr:g}, batch {batch or 'full'}, loss {net.metadata['loss']}"),
        ("model", str(out)),
    ]
    facts += [(name, str(path)) for name, path in pictures if path is not None]
    if net.metadata.get("target_standardize"):
        facts.insert(5, ("scaling", f"features and {table.target!r} standardised; the loss is on the scaled target"))
    elif net.metadata.get("standardize"):
        facts.insert(5, ("scaling", "features standardised (mean 0, std 1)"))
    lines = [f"anynet {__version__} train: {table.source} -> {out}", ""]
    lines += [f"  {'':<12}{'train':>10}  {'validation':>10}"]
    lines += [f"  {name:<12}{a:>10}  {b:>10}" for name, a, b in rows]
    lines.append("")
    lines += [f"  {name:<12}{value}" for name, value in facts]
    print("\n".join(lines))


# --------------------------------------------------------------------------- the parser


def _lr_list(text: str) -> list[float]:
    parts = text.split(",")
    if len(parts) == 1:
        return [_positive_float(text)]
    try:
        return [_positive_float(part.strip()) for part in parts]
    except argparse.ArgumentTypeError:
        msg = f"expected a positive learning rate, or several separated by commas (1e-3,3e-3), got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        msg = f"expected a fraction in [0, 1), such as 0.2, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _hidden(text: str) -> list[int]:
    if text.strip().lower() in ("", "none", "0"):
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        sizes = [0]
    if any(s < 1 for s in sizes):
        msg = f"expected hidden layer widths separated by commas, such as 64,32 (or 'none'), got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return sizes


def _batch(text: str) -> int | None:
    if text.strip().lower() == "full":
        return None
    return _positive_int(text)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``anynet train``'s options, in groups: the network, training, where it runs, output."""
    train = _command(
        sub,
        "train",
        help="train a network on a dataset and save it",
        description="Train a network on DATA, save it (--out), and print a summary on stdout.",
        epilog=DATA_HELP + "\nexamples:\n"
        "  anynet train digits --hidden 64,32 --epochs 30 --standardize --plot loss.png\n"
        "  anynet train moons --boundary boundary.png --movie learning.gif\n"
        "  anynet train flowers.csv --target species --out flowers.npz\n"
        "  anynet train houses.csv --target price --output identity --standardize",
        formatter_class=_Help,
    )
    train.add_argument("data", metavar="DATA", help="a built-in dataset name, or a CSV or NPZ file")
    train.add_argument("--target", metavar="COLUMN", help="the column to predict (default: the last)")
    model = train.add_argument_group("the network")
    model.add_argument(
        "--hidden", type=_hidden, default=[32], metavar="N,N", help="hidden layer widths, e.g. 64,32 (default: 32)"
    )
    model.add_argument(
        "--activation",
        choices=sorted(a for a in activations.ACTIVATIONS if a != "softmax"),
        default="relu",
        help="hidden layer activation (default: relu)",
    )
    model.add_argument(
        "--output",
        choices=["softmax", "sigmoid", "identity", "exp"],
        default=None,
        help="output activation; identity makes a regressor, exp one of counts (with --loss poisson) "
        "(default: softmax for 3+ classes, sigmoid for 2, identity for numeric targets)",
    )
    model.add_argument(
        "--loss",
        choices=sorted(losses.LOSSES),
        default=None,
        help="loss (default: cross_entropy, binary_cross_entropy or mse to match --output)",
    )
    fit = train.add_argument_group("training")
    fit.add_argument("--optimizer", choices=optimizers.names(), default="adam", help="(default: adam)")
    fit.add_argument(
        "--lr",
        type=_lr_list,
        default=None,
        metavar="LR[,LR...]",
        help="learning rate (default: 0.01 for adam, 0.1 for sgd); with --members, a comma list repeats over them",
    )
    fit.add_argument("--epochs", type=_positive_int, default=100, help="passes over the data (default: 100)")
    fit.add_argument(
        "--batch-size",
        type=_batch,
        default=32,
        metavar="N",
        help="rows per step, or 'full' for the whole set (default: 32)",
    )
    fit.add_argument(
        "--validation-split",
        type=_fraction,
        default=None,
        metavar="F",
        help=f"fraction of rows held out to validate (default: 0.2 with {AUTO_SPLIT_ROWS}+ rows, else 0)",
    )
    fit.add_argument(
        "--patience",
        type=_positive_int,
        default=None,
        metavar="N",
        help="stop after N epochs without a better validation loss, and keep the best weights",
    )
    fit.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help="seed for the weights, the shuffling and the built-in datasets (default: 0)",
    )
    fit.add_argument(
        "--standardize",
        action="store_true",
        help="scale each feature (and a regression target) to mean 0, std 1; saved with the model",
    )
    fit.add_argument(
        "--members",
        type=_positive_int,
        default=None,
        metavar="N",
        help="train N networks at once (seeds --seed, --seed+1, ...) and print a table of them "
        "(default: one per --lr value)",
    )
    fit.add_argument(
        "--keep",
        choices=["all", "best"],
        default="all",
        help="with --members: save the whole ensemble, or the best member as a plain model (default: all)",
    )
    place = train.add_argument_group("where it runs")
    _add_place(place)
    place.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="train data-parallel on the Dask cluster of this scheduler, e.g. tcp://10.0.0.5:8786",
    )
    place.add_argument(
        "--dtype", choices=["float32", "float64"], default=None, help="float precision (default: the backend's)"
    )
    outputs = train.add_argument_group("output")
    outputs.add_argument(
        "--out", default="model.npz", metavar="FILE.npz", help="where to save the model (default: model.npz)"
    )
    outputs.add_argument(
        "--plot", default=None, metavar="FILE.png", help="save a plot of the loss per epoch (png, svg, pdf)"
    )
    outputs.add_argument(
        "--boundary",
        default=None,
        metavar="FILE.png",
        help="save the class regions the network draws over the plane, with the points (2-feature data)",
    )
    outputs.add_argument(
        "--movie",
        default=None,
        metavar="FILE.gif",
        help=f"save an animated GIF of the class regions as the network learns, {MOVIE_FRAMES} frames (2-feature data)",
    )
    outputs.add_argument("-q", "--quiet", action="store_true", help="no progress or logs on stderr; just the summary")
    train.set_defaults(func=run)
