"""The ``anynet`` command line: the friendly layer over the strict library.

Results go to stdout, progress and logs to stderr; a user error exits non-zero with a one-paragraph
message (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np

from . import __version__
from . import backend as B

#: the seed's data: the last column is the constant 1 that plays the bias
XOR_X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
XOR_T = np.array([[0, 1, 1, 0]]).T


class UserError(Exception):
    """A mistake in what the user asked for: reported as a message, not a traceback."""


def _fmt(a: np.ndarray) -> str:
    return np.array2string(np.asarray(a), precision=3, suppress_small=True, floatmode="fixed")


def cmd_demo(args: argparse.Namespace) -> int:
    """The seed: a 3-4-1 sigmoid network learns XOR by full-batch gradient descent, lr 1, ½Σ(y−t)²."""
    from .network import Network

    net = Network(
        [3, 4, 1],
        activation="sigmoid",
        bias=False,
        init="uniform",
        seed=args.seed,
        backend=args.backend,
        device=args.device,
        dtype=args.dtype,
    )
    out = sys.stdout
    print(
        f"anynet {__version__} demo: the seed's XOR network on {net.backend} ({net.device}, {B.dtype_name(net.dtype)})",
        file=out,
    )
    print("inputs (last column is the constant 1 that acts as the bias):", file=out)
    print(_fmt(XOR_X), file=out)
    for i, W in enumerate(net.weights, 1):
        print(f"initial W{i} {tuple(W.shape)}:\n{_fmt(B.to_numpy(W))}", file=out)
    start = time.perf_counter()
    every = max(args.epochs // 6, 1)
    report = lambda epoch, logs: (  # noqa: E731 - a one-line callback reads best inline
        print(f"  epoch {epoch + 1:>6}  loss {logs['loss']:.6f}", file=out)
        if (epoch + 1) % every == 0 or epoch == 0
        else None
    )
    history = net.fit(XOR_X, XOR_T, epochs=args.epochs, lr=1.0, loss="half_sse", verbose=0, callbacks=[report])
    elapsed = time.perf_counter() - start
    y = B.to_numpy(net.predict(XOR_X))[:, 0]
    print(f"trained {history.epochs} epochs in {elapsed:.2f}s; final loss {history.loss[-1]:.6f}", file=out)
    print("  input     target  prediction", file=out)
    for x, t, p in zip(XOR_X, XOR_T[:, 0], y, strict=True):
        print(f"  {x[0]} {x[1]} (1)      {t}      {p:.3f}", file=out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anynet", description="Small neural networks on any array backend.")
    parser.add_argument("--version", action="version", version=f"anynet {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="train the seed's XOR network and print what it learned")
    demo.add_argument("--epochs", type=int, default=60000, help="full-batch passes (default: 60000, as the seed)")
    demo.add_argument("--seed", type=int, default=1, help="seed for the initial weights (default: 1)")
    demo.add_argument(
        "--backend", choices=sorted(B.BACKENDS), default=None, help="array backend (default: $ANYNET_BACKEND or numpy)"
    )
    demo.add_argument("--device", default=None, help="device, e.g. cpu or cuda:0")
    demo.add_argument(
        "--dtype", choices=["float32", "float64"], default=None, help="float precision (default: the backend's)"
    )
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["demo", *(argv or [])])
    try:
        return args.func(args)
    except (UserError, ValueError, TypeError, FileNotFoundError, B.BackendError) as exc:
        if args.debug:
            raise
        print(f"anynet: error: {exc}", file=sys.stderr)
        return 2
