"""What several commands share: the parser's classes and argument types, where to run, where to
write, user errors and logging."""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .. import backend as B
from .. import data as D
from ..files import writable_path

#: the seed's data: the last column is the constant 1 that plays the bias
XOR_X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
XOR_T = np.array([[0, 1, 1, 0]]).T

PLOT_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg")


class UserError(Exception):
    """A mistake in what the user asked for: reported as a message, not a traceback."""


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
    given = device
    name, device = B.placement(backend, device)  # ANYNET_BACKEND and ANYNET_DEVICE, as in Python
    asked = f"--device {device}" if given else f"{B.ENV_DEVICE}={device}"
    wants_gpu = name in B.BACKENDS and (
        B.BACKENDS[name].gpu_only or str(device or "").strip().lower().startswith(("cuda", "gpu"))
    )
    if wants_gpu and B.BACKENDS[name].cpu_only:  # a fact of the backend: said before its library is looked for
        msg = (
            f"{asked}: the {name} backend runs on the CPU only; for a CUDA GPU use --backend torch "
            "or --backend cupy. `anynet backends` lists what this machine has"
        )
        raise UserError(msg)
    try:
        found = B.devices(name)
    except B.BackendError as exc:
        msg = f"{exc}; `anynet backends` lists what this machine has"
        raise UserError(msg) from None
    if wants_gpu and not any(d.startswith("cuda") for d in found):
        asked = asked if device else f"--backend {name}"
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


def _refuse_overflow(scaled: np.ndarray, X: np.ndarray, names: list[str], source: str, when: str) -> None:
    bad = ~np.isfinite(scaled).all(axis=0)
    if bad.any():
        j = int(np.argmax(bad))
        msg = (
            f"column {names[j]!r} of {source!r} overflows float64 {when}: its values reach "
            f"{np.abs(X[:, j]).max():.3g}; divide the column by a power of ten first"
        )
        raise UserError(msg)


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


def _seed(text: str) -> int:
    """A seed: a whole number from 0 (NumPy's generators take no negative seed)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        msg = f"expected a whole number from 0, got {text!r}"
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


def _command(sub: argparse._SubParsersAction, name: str, **kw) -> argparse.ArgumentParser:
    """The subparser of command ``name``, which also takes ``--debug`` after the command."""
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return sub.add_parser(name, parents=[common], **kw)


def _add_place(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend", choices=sorted(B.BACKENDS), default=None, help="array backend (default: $ANYNET_BACKEND or numpy)"
    )
    p.add_argument("--device", default=None, help="device, e.g. cpu or cuda:0 (default: the backend's)")


DATA_HELP = """\
DATA is a built-in dataset or a file of your own:
{builtins}
  FILE.csv    a header row, then one row per example: numeric feature columns and a
              target column (the last, or name it with --target); labels may be text
  FILE.npz    arrays X (2-D) and y, or one 1-D array per column (the last is the target)
""".format(builtins="\n".join(f"  {name:<10}  {text}" for name, (_, text) in D.BUILTINS.items()))
