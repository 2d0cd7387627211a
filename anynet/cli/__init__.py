"""The ``anynet`` command line: the friendly layer over the strict library.

Results go to stdout, progress and logs to stderr; a user error exits 1 with a one-paragraph
message (``--debug`` shows the traceback), a malformed command line exits 2 (argparse).

One module per command, each with ``add_parser(sub)`` and ``run(args) -> int``; ``_common`` holds
what several share, ``_model`` the saved model that ``evaluate`` and ``predict`` read.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from .. import backend as B
from . import backends, bench, demo, evaluate, predict, train
from ._common import DATA_HELP, PLOT_SUFFIXES, XOR_T, XOR_X, UserError, _Help, _Parser
from .demo import DEMO_PICTURES
from .train import AUTO_SPLIT_ROWS, MOVIE_FRAMES

__all__ = [
    "AUTO_SPLIT_ROWS",
    "DATA_HELP",
    "DEMO_PICTURES",
    "MOVIE_FRAMES",
    "PLOT_SUFFIXES",
    "XOR_T",
    "XOR_X",
    "UserError",
    "build_parser",
    "main",
]

#: the commands in the order ``anynet --help`` lists them
COMMANDS = (demo, train, evaluate, predict, backends, bench)


def build_parser() -> argparse.ArgumentParser:
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
    for command in COMMANDS:
        command.add_parser(sub)
    parser.commands = sub.choices  # name -> the command's own parser, for its own errors
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from ..checkpoints import CheckpointError
    from ..train import DivergedError

    argv = list(sys.argv[1:] if argv is None else argv)
    # A GPU is shared: JAX would otherwise claim 75% of its memory in every anynet process up front.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        args, extra = parser.parse_known_args(["demo", *argv])
    if extra:  # the command's own parser says so, and points to the command's own --help
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    if sys.stdout is None:  # started with its standard output closed (`>&-`)
        if args.command == "predict" and not getattr(args, "out", None):
            msg = "standard output is closed, and predict writes there; give --out FILE"
            print(f"anynet: error: {msg}", file=sys.stderr)
            return 1
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the rest of the process: nobody reads it
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
    except MemoryError:
        if args.debug:
            raise
        msg = "not enough memory for this (a network or data too large for this machine)"
        print(f"anynet: error: {msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("anynet: interrupted", file=sys.stderr)
        return 130
