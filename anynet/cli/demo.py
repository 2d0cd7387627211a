"""``anynet demo``: the seed's XOR network, trained and told step by step."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .. import __version__
from .. import backend as B
from ._common import (
    XOR_T,
    XOR_X,
    UserError,
    _add_place,
    _command,
    _Help,
    _need_matplotlib,
    _place,
    _positive_int,
    _seed,
    _writable,
)

#: the most epochs the demo runs on a lazy backend (``anynet.backend.is_lazy``: each epoch a task graph,
#: about a tenth of a second: under two minutes)
LAZY_EPOCHS = 1000
#: what ``anynet demo --plot DIR`` writes in DIR
DEMO_PICTURES = ("xor-boundary.png", "xor-weights-before.png", "xor-weights-after.png")


def _fmt(a: np.ndarray) -> str:
    return np.array2string(np.asarray(a), precision=3, suppress_small=True, floatmode="fixed")


def run(args: argparse.Namespace) -> int:
    """The seed: a 3-4-1 sigmoid network learns XOR by full-batch gradient descent, lr 1, ½Σ(y−t)²,
    told step by step for someone who meets a neural network here for the first time."""
    from ..network import Network

    backend, device = _place(args.backend, args.device)
    pictures = _demo_pictures(args.plot) if args.plot else None  # a wrong folder is said first, on any backend
    if B.is_lazy(backend) and args.epochs > LAZY_EPOCHS:
        # each epoch is a task graph of its own, about 0.1 s: 60000 of them would take two hours
        minutes = args.epochs * 0.1 / 60
        msg = (
            f"{args.epochs} epochs on {backend} would take about {minutes:.0f} minutes (each epoch is a task graph, "
            f"about 0.1 s); give --epochs {LAZY_EPOCHS} or fewer to watch it there, or run on numpy"
        )
        raise UserError(msg)
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
        from .. import plot

        boundary, before, after = pictures
        title = f"the seed's 3-4-1 on XOR after {history.epochs} epochs"
        plot.decision_boundary(_bias_folded(net), XOR_X[:, :2], XOR_T, boundary, title=title)
        plot.weights(untrained, before)
        plot.weights(net, after)
        say(f"pictures: {boundary}, {before}, {after}")
    return 0


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
    from ..network import Network

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


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``anynet demo``'s options."""
    demo = _command(sub, "demo", help="train the seed's XOR network and print what it learned", formatter_class=_Help)
    demo.add_argument(
        "--epochs", type=_positive_int, default=60000, help="full-batch passes (default: 60000, as the seed)"
    )
    demo.add_argument("--seed", type=_seed, default=1, help="seed for the initial weights (default: 1)")
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
    demo.set_defaults(func=run)
