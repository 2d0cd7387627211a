"""Draw the README's "Watch it learn" pictures again, and write what made them to ``pictures.md``.

    PYTHONPATH=. python docs/make_pictures.py              # into docs/, as committed
    PYTHONPATH=. python docs/make_pictures.py --out /tmp/p # a trial run, elsewhere

The demo's pictures come from ``anynet demo --plot``; the spirals' from ``anynet.plot``, with the
network and options that the README shows. Everything runs on NumPy with fixed seeds, so the
pictures come out the same on any machine; only the timing in ``pictures.md`` is this machine's.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import os
import platform
import subprocess
import time
from pathlib import Path

import matplotlib
import PIL

import anynet
from anynet import cli, data, plot

HERE = Path(__file__).resolve().parent

#: the spirals run the README shows: the network, then its training options
SPIRALS_NET = {"activation": "relu", "output_activation": "softmax", "init": "he", "seed": 0, "backend": "numpy"}
SPIRALS_FIT = {"epochs": 300, "frames": 30, "optimizer": "adam", "lr": 0.003}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        info = Path("/proc/cpuinfo").read_text().splitlines()
        names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE)
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def options(kw: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kw.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the pictures (default: docs/)")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)

    demo = io.StringIO()
    with contextlib.redirect_stdout(demo):
        status = cli.main(["demo", "--plot", str(out), "--backend", "numpy"])
    if status != 0:
        raise SystemExit(status)

    spirals = data.load("spirals")
    net = anynet.Network([2, 32, 32, 3], **SPIRALS_NET)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    history = plot.training_movie(net, spirals.X, spirals.t, out / "spirals-learning.gif", **SPIRALS_FIT)
    movie_s = time.perf_counter() - start
    plot.decision_boundary(net, spirals.X, spirals.t, out / "spirals-boundary.png")

    trained = next(line for line in demo.getvalue().splitlines() if line.startswith("trained "))
    names = [*cli.DEMO_PICTURES, "spirals-learning.gif", "spirals-boundary.png"]
    sizes = {name: (out / name).stat().st_size for name in names}
    lines = [
        "# The README's pictures",
        "",
        f"Drawn by `docs/make_pictures.py` at commit `{commit()}` on {datetime.date.today().isoformat()}, on",
        f"{machine()}; anynet {anynet.__version__}, matplotlib {matplotlib.__version__}, Pillow {PIL.__version__}.",
        "",
        "| file | bytes |",
        "|---|---|",
        *(f"| `{name}` | {size:,} |" for name, size in sizes.items()),
        f"| all | {sum(sizes.values()):,} |",
        "",
        f"- demo: `anynet demo --plot DIR --backend numpy`: {trained}",
        f"- spirals: `Network([2, 32, 32, 3], {options(SPIRALS_NET)})`, `training_movie(net, X, t, path, "
        f"{options(SPIRALS_FIT)})`: {history.epochs} epochs, {history.wall_time:.2f} s of it training; the whole "
        f"movie, training and drawing, took {movie_s:.2f} s (one run, not a benchmark); final training accuracy "
        f"{history.accuracy[-1]:.1%}. The machine's load average as the movie began: {load:.1f} on "
        f"{os.cpu_count()} cores (it is shared).",
        "",
    ]
    (out / "pictures.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
