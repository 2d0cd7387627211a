"""``anynet backends``: which backends import here, their versions and devices."""

from __future__ import annotations

import argparse

from .. import backend as B
from ._common import _command


def run(args: argparse.Namespace) -> int:
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


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``anynet backends``, which takes no options."""
    backends = _command(sub, "backends", help="which backends import here, their versions and devices")
    backends.set_defaults(func=run)
