"""The ``anynet`` command line: the friendly layer over the strict library.

Results go to stdout, progress and logs to stderr; a user error exits 1 with a one-paragraph
message (``--debug`` shows the traceback), a malformed command line exits 2 (argparse).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import io
import os
import sys
import textwrap
import time
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, activations, defaults, losses
from . import backend as B
from . import data as D
from .files import atomic_write, writable_path

#: the seed's data: the last column is the constant 1 that plays the bias
XOR_X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
XOR_T = np.array([[0, 1, 1, 0]]).T

PLOT_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg")
#: pictures in a training movie (--movie), fewer for a run of fewer epochs
MOVIE_FRAMES = 30
#: datasets with at least this many rows hold out 20% for validation unless --validation-split says
AUTO_SPLIT_ROWS = 50


class UserError(Exception):
    """A mistake in what the user asked for: reported as a message, not a traceback."""


def _fmt(a: np.ndarray) -> str:
    return np.array2string(np.asarray(a), precision=3, suppress_small=True, floatmode="fixed")


def _logger(quiet: bool) -> Callable[[str], None]:
    """A ``say(text)`` that writes a log line to stderr, or nothing with ``--quiet``."""

    def say(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr, flush=True)

    return say


# --------------------------------------------------------------------------- shared checks


def _place(backend: str | None, device: str | None) -> tuple[str, str | None]:
    """The backend and device to run on, checked before any data moves: a missing library or an
    absent GPU becomes a message that says what to do."""
    name = backend if backend is not None else B.default_backend()[0]
    wants_gpu = name in B.BACKENDS and (
        B.BACKENDS[name].gpu_only or str(device or "").strip().lower().startswith(("cuda", "gpu"))
    )
    if wants_gpu and B.BACKENDS[name].cpu_only:  # a fact of the backend: said before its library is looked for
        msg = (
            f"--device {device}: the {name} backend runs on the CPU only; for a CUDA GPU use --backend torch "
            "or --backend cupy. `anynet backends` lists what this machine has"
        )
        raise UserError(msg)
    try:
        found = B.devices(name)
    except B.BackendError as exc:
        msg = f"{exc}; `anynet backends` lists what this machine has"
        raise UserError(msg) from None
    if wants_gpu and not any(d.startswith("cuda") for d in found):
        asked = f"--device {device}" if device else f"--backend {name}"
        msg = (
            f"{asked} asks for a GPU, but {name} sees no CUDA device on this machine "
            f"(it has: {', '.join(found) or 'none'}); run on the CPU with "
            f"{'--backend numpy' if B.BACKENDS[name].gpu_only else '--device cpu'}, or check the CUDA driver with "
            "nvidia-smi. `anynet backends` lists what this machine has"
        )
        raise UserError(msg)
    return name, device


def _writable(path: str, flag: str, suffixes: Sequence[str]) -> Path:
    """``path`` checked as a place to write, before any work is spent on what goes there."""
    if Path(path).suffix.lower() not in suffixes:
        msg = f"{flag} {path!r}: give a file name ending in {' or '.join(suffixes)}"
        raise UserError(msg)
    try:
        return writable_path(path, f"{flag} {path!r}", "out" + suffixes[0])
    except OSError as exc:
        raise UserError(str(exc)) from None


def _need_matplotlib(flags: Sequence[str]) -> None:
    """matplotlib imported now, if ``flags`` ask for pictures: a missing one is told before any training."""
    if not flags:
        return
    try:
        importlib.import_module("matplotlib.figure")
    except ImportError:
        what = " and ".join(flags)
        msg = f"{what}: pictures are drawn with matplotlib, which is not installed; pip install matplotlib"
        raise UserError(msg) from None


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


def _load_model(path: str):
    """The model at ``path``, on the host: DATA is read and checked before any backend is imported."""
    from .checkpoints import load

    order = "the model comes first: anynet COMMAND MODEL DATA"
    if not Path(path).exists():
        hint = order if path in D.BUILTINS else f"train one with `anynet train DATA --out {path}`"
        msg = f"cannot load the model {path!r}: no such file; {hint}"
        raise UserError(msg)
    if Path(path).is_file() and not zipfile.is_zipfile(path):
        msg = f"{path!r} is not an anynet model (models are .npz files written by `anynet train --out`); {order}"
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
    from .checkpoints import CheckpointError

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
    table = D.load(args.data, target=target, seed=args.seed, need_target=False)
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


def _standardized(X: np.ndarray, names: list[str], source: str) -> tuple[np.ndarray, list[float], list[float]]:
    """``X`` scaled to mean 0, std 1 per column, with the means and stds; a column whose statistics
    overflow float64 is refused by name, with no NumPy warnings on the way."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean, std = D.standardizer(X)
        scaled = D.standardize(X, mean, std)
    stats_ok = np.isfinite(mean) & np.isfinite(std)
    _refuse_overflow(np.where(stats_ok, scaled, np.inf), X, names, source, "when standardised (--standardize)")
    return scaled, mean, std


def _refuse_overflow(scaled: np.ndarray, X: np.ndarray, names: list[str], source: str, when: str) -> None:
    bad = ~np.isfinite(scaled).all(axis=0)
    if bad.any():
        j = int(np.argmax(bad))
        msg = (
            f"column {names[j]!r} of {source!r} overflows float64 {when}: its values reach "
            f"{np.abs(X[:, j]).max():.3g}; divide the column by a power of ten first"
        )
        raise UserError(msg)


def _is_classifier(net) -> bool:
    return net.metadata.get("task", "classification" if net.classes is not None else "regression") == "classification"


# --------------------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> int:
    """The seed: a 3-4-1 sigmoid network learns XOR by full-batch gradient descent, lr 1, ½Σ(y−t)²,
    told step by step for someone who meets a neural network here for the first time."""
    from .network import Network

    backend, device = _place(args.backend, args.device)
    pictures = _demo_pictures(args.plot) if args.plot else None
    net = Network(
        [3, 4, 1],
        activation="sigmoid",
        bias=False,
        init="uniform",
        seed=args.seed,
        backend=backend,
        device=device,
        dtype=args.dtype,
    )

    def say(text: str = "") -> None:
        print(text, file=sys.stdout)

    say(f"anynet {__version__} demo: the seed's XOR network on {net.backend} ({net.device}, {B.dtype_name(net.dtype)})")
    say()
    say("The task. Each row holds two inputs, 0 or 1, and a constant 1 that acts as a bias. The target")
    say("is their XOR: 1 when exactly one input is 1. No straight line separates the 1s from the 0s,")
    say("so the network needs a hidden layer between its inputs and its output.")
    for x, t in zip(XOR_X, XOR_T[:, 0], strict=True):
        say(f"  inputs {x[0]} {x[1]} (1)  ->  target {t}")
    say()
    W1, W2 = (B.to_numpy(W) for W in net.weights)
    say(f"Step 1: random weights. W1 {W1.shape} carries the 3 inputs to 4 hidden units, W2 {W2.shape}")
    say(f"carries those to the one output. Drawn uniformly from [-1, 1) with --seed {args.seed}:")
    say(f"W1 =\n{_fmt(W1)}")
    say(f"W2 =\n{_fmt(W2)}")
    say()
    say(f"Step 2: {args.epochs} rounds of learning (epochs), each on all four rows at once:")
    say("  forward   hidden = sigmoid(X @ W1), output y = sigmoid(hidden @ W2), each between 0 and 1")
    say("  loss      ½Σ(y − t)²: how far the four outputs are from their targets")
    say("  backward  the chain rule turns that error into a gradient for every weight")
    say("  update    each weight steps against its gradient (learning rate 1), so the loss falls")
    untrained = net.to()  # a copy, for the picture of the weights before training
    start = time.perf_counter()
    history = net.fit(XOR_X, XOR_T, epochs=args.epochs, lr=1.0, loss="half_sse", verbose=0)
    elapsed = time.perf_counter() - start
    every = max(args.epochs // 6, 1)
    for epoch, loss in enumerate(history.loss, 1):  # the history has every epoch: no callback needed
        if epoch == 1 or epoch % every == 0:
            say(f"  epoch {epoch:>6}  loss {loss:.6f}")
    say(f"trained {history.epochs} epochs in {elapsed:.2f}s; final loss {history.loss[-1]:.6f}")
    say()
    y = B.to_numpy(net.predict(XOR_X))[:, 0]
    right = int(np.sum((y > 0.5) == (XOR_T[:, 0] == 1)))
    say("Step 3: the trained network's output for each row; above 0.5 reads as 1.")
    say("  input     target  output")
    for x, t, p in zip(XOR_X, XOR_T[:, 0], y, strict=True):
        say(f"  {x[0]} {x[1]} (1)      {t}      {p:.3f}")
    if right == 4:
        say("4 of 4 rows right: the network learned XOR from these four examples alone.")
    else:
        say(f"{right} of 4 rows right so far; more --epochs, or another --seed, may get the rest.")
    if pictures is not None:
        from . import plot

        boundary, before, after = pictures
        title = f"the seed's 3-4-1 on XOR after {history.epochs} epochs"
        plot.decision_boundary(_bias_folded(net), XOR_X[:, :2], XOR_T, boundary, title=title)
        plot.weights(untrained, before)
        plot.weights(net, after)
        say(f"pictures: {boundary}, {before}, {after}")
    return 0


#: what ``anynet demo --plot DIR`` writes in DIR
DEMO_PICTURES = ("xor-boundary.png", "xor-weights-before.png", "xor-weights-after.png")


def _demo_pictures(folder: str) -> list[Path]:
    """The demo's picture files in ``folder`` (made if its parent exists), checked before training."""
    _need_matplotlib(["--plot"])
    where = Path(folder)
    if not where.exists() and where.parent.is_dir():
        where.mkdir()
    if not where.is_dir():
        what = "is a file" if where.exists() else "does not exist, nor does the folder it would go in"
        msg = f"--plot {folder!r}: give a folder for the demo's pictures; this one {what}"
        raise UserError(msg)
    return [_writable(str(where / name), "--plot", (".png",)) for name in DEMO_PICTURES]


def _bias_folded(net):
    """The seed's network as a function of (x1, x2) alone: its third input is always 1, so that
    input's weights are a bias, and ``X @ W1`` over ``[x1, x2, 1]`` is ``[x1, x2] @ W1[:2] + W1[2]``."""
    from .network import Network

    W1, W2 = (B.to_numpy(W) for W in net.weights)
    biases = [W1[2], np.zeros(W2.shape[1])]
    return Network.from_weights(
        [W1[:2], W2],
        biases,
        activation=net.activation,
        dtype=B.dtype_name(net.dtype),
        backend=net.backend,
        device=net.device,
    )


# --------------------------------------------------------------------------- train


def _task(args: argparse.Namespace, table: D.Table) -> tuple[str, str, str, int]:
    """``(task, output activation, loss, n_out)`` from the options and what the target holds."""
    t = table.t
    categorical = D.is_categorical(t)
    loss = losses.get(args.loss) if args.loss else None
    output = args.output or (loss.output if loss is not None else None)
    if output is None:
        output = ("softmax" if np.unique(t).size > 2 else "sigmoid") if categorical else "identity"
    task = "regression" if output == "identity" else "classification"
    if task == "regression" and t.dtype.kind not in "biuf":
        msg = (
            f"--output identity makes a regressor, but the target {table.target!r} holds text labels "
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


def cmd_train(args: argparse.Namespace) -> int:
    from .checkpoints import save
    from .network import Network

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
    if args.scheduler is not None and args.backend not in (None, "dask"):
        msg = f"--scheduler trains on Dask arrays on the cluster; leave --backend {args.backend} out"
        raise UserError(msg)
    backend, device = _place("dask" if args.scheduler else args.backend, args.device)
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
            from .plot import training_movie

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
        from .plot import decision_boundary

        decision_boundary(net, X, t, boundary)
    pictures = [("loss plot", plot), ("boundary", boundary), ("movie", movie)]
    kept = history.best_epoch if history.restored_best else -1
    _print_summary(net, history, kept, table, task, n_val, lr, batch, args, out, pictures)
    return 0


def _on_cluster(address: str, X: np.ndarray, stack: contextlib.ExitStack, say) -> tuple[Any, Any]:
    """``X`` as a Dask array in row chunks, and a client of the scheduler at ``address``, closed when
    ``stack`` closes: the fit trains data-parallel on that cluster."""
    try:
        import dask.array as da
        from distributed import Client
    except ImportError:
        msg = '--scheduler needs dask.distributed on this machine; pip install ".[distributed]"'
        raise UserError(msg) from None
    try:
        client = stack.enter_context(Client(address, timeout="10s", set_as_default=False))
    except (OSError, ValueError, TypeError) as exc:
        msg = (
            f"--scheduler {address}: cannot reach a Dask scheduler there ({exc}); start one with "
            "`dask scheduler` and give the address it prints (tcp://HOST:8786)"
        )
        raise UserError(msg) from None
    workers = len(client.scheduler_info()["workers"])
    if not workers:
        msg = f"--scheduler {address}: the cluster has no workers; start some with `dask worker {address}`"
        raise UserError(msg)
    rows = -(-X.shape[0] // (2 * workers))  # two chunks a worker
    say(f"cluster: {address}, {workers} worker(s); the rows go to them once, in chunks of {rows}")
    return da.from_array(X, chunks=(rows, X.shape[1])), client


def _train_ensemble(args, net, X, t, members, options, metadata, table, task, n_val, out) -> int:
    """``train --members N``: N networks (seeds ``--seed`` + i) trained at once; prints a table of the
    members and saves the ensemble, or with ``--keep best`` the best member as a plain model."""
    from .checkpoints import save
    from .ensemble import Ensemble

    ens = Ensemble(
        net.sizes,
        members=members,
        activation=net.activation,
        output_activation=net.output_activation,
        init=net.init,
        seed=args.seed,
        dtype=args.dtype,
        backend=net.backend,
        device=args.device,
    )
    lrs = options["lr"]
    _logger(args.quiet)(f"training {members} members at once, lr {', '.join(f'{v:g}' for v in sorted(set(lrs)))}")
    # a member that diverges is marked in the table (every member diverging ends in one error line)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        verbose = 0 if args.quiet else 1
        ens.fit(X, t, epochs=args.epochs, patience=args.patience, seed=args.seed, verbose=verbose, **options)
    ens.metadata = metadata
    monitor = "val_loss" if n_val else "loss"
    best = ens.best_index(monitor)
    if args.keep == "best":
        model = ens.member(best)
        model.metadata = dict(metadata)
        save(model, out)
    else:
        save(ens, out)
    percent = task == "classification"
    head = f"  {'member':>6}  {'seed':>5}  {'lr':>8}  {'epochs':>6}  {'loss':>10}  {'val loss':>10}"
    head += f"  {'val acc':>8}" if percent and n_val else ""
    lines = [f"anynet {__version__} train: {table.source} -> {out}", "", head]
    for i, h in enumerate(ens.histories):
        kept = h.best_epoch if h.restored_best else -1
        row = f"  {i:>6}  {ens.seeds[i]:>5}  {lrs[i]:>8.3g}  {h.epochs:>6}  {_pct_or_loss(h.loss, kept, False):>10}"
        row += f"  {_pct_or_loss(h.val_loss, kept, False):>10}"
        row += f"  {_pct_or_loss(h.val_accuracy, kept, True):>8}" if percent and n_val else ""
        if i in ens.diverged:
            row += "  diverged"
        elif i == best:
            row += f"  <- best {monitor.replace('_', ' ')}"
        lines.append(row)
    saved = f"member {best} (a plain model)" if args.keep == "best" else f"the ensemble of {members} members"
    wall = max(h.wall_time for h in ens.histories)
    lines += [
        "",
        f"  {'time':<12}{wall:.2f} s for all {members} members",
        f"  {'backend':<12}{ens.backend} on {ens.device}, {B.dtype_name(ens.dtype)}",
        f"  {'network':<12}{'-'.join(map(str, ens.sizes))}, {ens.activation} -> {ens.output_activation}",
        f"  {'model':<12}{out}: {saved}",
    ]
    print("\n".join(lines))
    return 0


def _pct_or_loss(values: list[float], kept: int, percent: bool) -> str:
    if not values:
        return "-"
    return f"{100 * values[kept]:.1f}%" if percent else f"{values[kept]:.4g}"


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


# --------------------------------------------------------------------------- evaluate, predict


def cmd_evaluate(args: argparse.Namespace) -> int:
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


def cmd_predict(args: argparse.Namespace) -> int:
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


# --------------------------------------------------------------------------- backends, bench


def cmd_backends(args: argparse.Namespace) -> int:
    report = B.backends()
    default = B.default_backend()[0]
    rows = [("backend", "version", "devices", "notes")]
    for name, entry in report.items():
        note = "default" if name == default else ""
        if entry["error"]:
            note = entry["error"]
        rows.append((name, entry["version"] or "-", ", ".join(entry["devices"]) or "-", note))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip())
    return 0


def _bench_places(found: list[str]) -> list[str | None]:
    """The devices ``bench`` times a backend on: its CPU (else its default device) and its first GPU."""
    cuda = [d for d in found if d.startswith("cuda")]
    first = ["cpu"] if "cpu" in found else [] if cuda else [None]
    return first + cuda[:1]


def _bench_epochs(net, most: int, seconds: float) -> int:
    """How many epochs fit in ``seconds``, from short runs that also warm the backend up (JAX
    compiles, PyTorch allocates). The timed run then goes through fit's usual path, callbacks off."""
    n = 10
    net.fit(XOR_X, XOR_T, epochs=min(n, most), lr=1.0, loss="half_sse", verbose=0)
    while True:
        history = net.fit(XOR_X, XOR_T, epochs=min(n, most), lr=1.0, loss="half_sse", verbose=0)
        if n >= most or history.wall_time > seconds / 10:
            break
        n *= 4
    return max(1, min(most, int(seconds * history.epochs / max(history.wall_time, 1e-9))))


def cmd_bench(args: argparse.Namespace) -> int:
    from .network import Network

    say = _logger(args.quiet)
    if args.backends:  # only the named ones are imported
        found = {}
        for name in args.backends:
            try:
                found[name] = B.devices(name)
            except B.BackendError as exc:
                msg = f"cannot bench {name}: {exc}"
                raise UserError(msg) from None
            if not found[name]:
                msg = f"cannot bench {name}: it sees no device here (no CUDA device found)"
                raise UserError(msg)
    else:
        found = {n: e["devices"] for n, e in B.backends().items() if e["available"]}
    say(
        f"the seed's XOR job (3-4-1 sigmoid, full batch, lr 1, ½Σ(y−t)²): up to {args.epochs} epochs "
        f"or {args.seconds:g} s on each backend"
    )
    rows = []
    for name, devices in found.items():
        for device in _bench_places(devices):
            net = Network(
                [3, 4, 1], activation="sigmoid", bias=False, init="uniform", seed=1, backend=name, device=device
            )
            say(f"timing {name} on {net.device} ...")
            epochs = _bench_epochs(net, args.epochs, args.seconds)
            history = net.fit(XOR_X, XOR_T, epochs=epochs, lr=1.0, loss="half_sse", verbose=0, reset=True)
            rows.append((name, net.device, B.dtype_name(net.dtype), history))
    common = min(h.epochs for *_, h in rows)
    base = next((h for n, d, _, h in rows if n == "numpy"), rows[0][3])
    base_per = base.wall_time / base.epochs
    table = [("backend", "device", "dtype", "epochs", "time", "per epoch", "vs numpy", f"loss @ {common}")]
    for name, device, dtype, h in rows:
        per = h.wall_time / h.epochs
        table.append(
            (
                name,
                device,
                dtype,
                str(h.epochs),
                f"{h.wall_time:.2f} s",
                f"{1e6 * per:,.0f} µs",
                f"{per / base_per:.2f}x",
                f"{h.loss[common - 1]:.6f}",
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        cells = [f"{c:<{w}}" if i < 3 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        print("  ".join(cells).rstrip())
    return 0


# --------------------------------------------------------------------------- the parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"expected a positive whole number, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        msg = f"expected a positive number, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


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


def _backend_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in B.BACKENDS]
    if unknown or not names:
        msg = f"unknown backend(s) {unknown}; expected names from {sorted(B.BACKENDS)}, separated by commas"
        raise argparse.ArgumentTypeError(msg)
    return names


def _para(*parts: str) -> str:
    """A description paragraph wrapped for the terminal (the raw formatter keeps the epilogs' tables)."""
    return textwrap.fill("".join(parts), 88)


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error told in one line and a pointer to --help instead of the whole usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; `{self.prog} --help` lists the options\n")


class _Help(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)


def _add_place(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend", choices=sorted(B.BACKENDS), default=None, help="array backend (default: $ANYNET_BACKEND or numpy)"
    )
    p.add_argument("--device", default=None, help="device, e.g. cpu or cuda:0 (default: the backend's)")


def _add_data(p: argparse.ArgumentParser, *, target_help: str) -> None:
    p.add_argument("model", metavar="MODEL", help="a model file written by `anynet train --out`")
    p.add_argument("data", metavar="DATA", help="a CSV or NPZ file, or a built-in dataset name")
    p.add_argument("--target", metavar="COLUMN", default=None, help=target_help)
    p.add_argument("--seed", type=int, default=0, help="seed that draws a built-in dataset (default: 0)")


DATA_HELP = """\
DATA is a built-in dataset or a file of your own:
{builtins}
  FILE.csv    a header row, then one row per example: numeric feature columns and a
              target column (the last, or name it with --target); labels may be text
  FILE.npz    arrays X (2-D) and y, or one 1-D array per column (the last is the target)
""".format(builtins="\n".join(f"  {name:<10}  {text}" for name, (_, text) in D.BUILTINS.items()))


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser = _Parser(
        prog="anynet",
        description="Small neural networks on any array backend: NumPy, CuPy, PyTorch, JAX, Dask, array-api-strict.",
        formatter_class=_Help,
        epilog=(
            "examples:\n"
            "  anynet demo                                   the seed's XOR network, step by step\n"
            "  anynet train digits --standardize --plot loss.png --out digits.npz\n"
            "  anynet evaluate digits.npz digits             accuracy and confusion matrix\n"
            "  anynet predict model.npz new.csv --proba --out predictions.csv\n"
            "  anynet backends                               what runs on this machine\n\n"
            "Results go to stdout, progress and logs to stderr. Exit status: 0 done, 1 an error in the\n"
            "data, files or environment (one-line message; --debug shows the traceback), 2 a malformed\n"
            "command line. `anynet COMMAND --help` tells more."
        ),
    )
    parser.add_argument("--version", action="version", version=f"anynet {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo", parents=[common], help="train the seed's XOR network and print what it learned", formatter_class=_Help
    )
    demo.add_argument("--epochs", type=int, default=60000, help="full-batch passes (default: 60000, as the seed)")
    demo.add_argument("--seed", type=int, default=1, help="seed for the initial weights (default: 1)")
    demo.add_argument(
        "--plot",
        default=None,
        metavar="DIR",
        help=f"draw the class regions and the weights before and after training into DIR: {', '.join(DEMO_PICTURES)}",
    )
    _add_place(demo)
    demo.add_argument(
        "--dtype", choices=["float32", "float64"], default=None, help="float precision (default: the backend's)"
    )
    demo.set_defaults(func=cmd_demo)

    train = sub.add_parser(
        "train",
        parents=[common],
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
        choices=["softmax", "sigmoid", "identity"],
        default=None,
        help="output activation; identity makes a regressor (default: softmax for 3+ classes, "
        "sigmoid for 2, identity for numeric targets)",
    )
    model.add_argument(
        "--loss",
        choices=sorted(losses.LOSSES),
        default=None,
        help="loss (default: cross_entropy, binary_cross_entropy or mse to match --output)",
    )
    fit = train.add_argument_group("training")
    fit.add_argument("--optimizer", choices=["adam", "sgd"], default="adam", help="(default: adam)")
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
        "--seed", type=int, default=0, help="seed for the weights, the shuffling and the built-in datasets (default: 0)"
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
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser(
        "evaluate",
        parents=[common],
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
    evaluate.set_defaults(func=cmd_evaluate)

    predict = sub.add_parser(
        "predict",
        parents=[common],
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
    predict.set_defaults(func=cmd_predict)

    backends = sub.add_parser(
        "backends", parents=[common], help="which backends import here, their versions and devices"
    )
    backends.set_defaults(func=cmd_backends)

    bench = sub.add_parser(
        "bench",
        parents=[common],
        help="time the seed's XOR job on each available backend",
        description=_para(
            "Time the seed's XOR network (3-4-1 sigmoid, full batch, lr 1) on each available backend and device, "
            "for up to --epochs epochs or --seconds each, after a short warm-up. Compare the ratios, not the "
            "absolute times: the machine is shared."
        ),
        formatter_class=_Help,
    )
    bench.add_argument(
        "--backends",
        type=_backend_list,
        default=None,
        metavar="A,B",
        help="which backends (default: every available one)",
    )
    bench.add_argument("--epochs", type=_positive_int, default=60000, help="at most this many epochs (default: 60000)")
    bench.add_argument(
        "--seconds", type=_positive_float, default=2.0, help="at most this long per backend (default: 2)"
    )
    bench.add_argument("-q", "--quiet", action="store_true", help="no logs on stderr")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .checkpoints import CheckpointError
    from .train import DivergedError

    argv = list(sys.argv[1:] if argv is None else argv)
    # A GPU is shared: JAX would otherwise claim 75% of its memory in every anynet process up front.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["demo", *argv])
    try:
        return args.func(args)
    except BrokenPipeError:  # `anynet predict ... | head` stopped reading: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (UserError, ValueError, TypeError, OSError, ImportError, B.BackendError, DivergedError) as exc:
        if args.debug:
            raise
        text = str(exc)
        if isinstance(exc, CheckpointError):
            text += "; give a model saved by `anynet train`"
        elif isinstance(exc, DivergedError):
            text += " (on the command line: --lr, --standardize); nothing was saved"
        print(f"anynet: error: {text}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("anynet: interrupted", file=sys.stderr)
        return 130
