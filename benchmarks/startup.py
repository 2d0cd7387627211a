"""What a user waits for before training starts: ``import anynet`` against ``import numpy``, and the
README's first command, ``anynet demo``, against the seed's own loop run as a script.

    python benchmarks/startup.py [--quick] [--out DIR]

Each side runs in a fresh Python process, alternating, and the fastest of the repeats counts (the
machine is shared: the minimum is the run least disturbed). The import is timed by Python itself
(``-X importtime``: the cumulative time of the top-level module), the commands by the wall clock.
Targets: ``import anynet`` at most 2x ``import numpy``; ``anynet demo`` at most 2x the seed's script.

A full run writes ``benchmarks/results/startup.md`` and ``startup.json``; ``--quick`` (fewer repeats)
writes to ``benchmarks/results/quick/``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from common import log, table, write_results  # noqa: E402

#: the seed's 11 lines, 60000 epochs, as a script a user would run (the constant column is the bias)
SEED = """
import numpy as np
X = np.array([[0,0,1],[0,1,1],[1,0,1],[1,1,1]])
y = np.array([[0,1,1,0]]).T
np.random.seed(1)
syn0 = 2*np.random.random((3,4)) - 1
syn1 = 2*np.random.random((4,1)) - 1
for j in range(60000):
    l1 = 1/(1+np.exp(-(np.dot(X,syn0))))
    l2 = 1/(1+np.exp(-(np.dot(l1,syn1))))
    l2_delta = (y - l2)*(l2*(1-l2))
    l1_delta = l2_delta.dot(syn1.T) * (l1 * (1-l1))
    syn1 += l1.T.dot(l2_delta)
    syn0 += X.T.dot(l1_delta)
print(l2)
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYNET_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return env


def import_time(module: str) -> float:
    """Seconds ``import module`` takes in a fresh process, as ``-X importtime`` reports it."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=_env(),
        check=True,
    )
    for line in done.stderr.splitlines():
        match = re.match(rf"import time:\s+\d+ \|\s+(\d+) \| {re.escape(module)}$", line)
        if match:
            return int(match.group(1)) / 1e6
    msg = f"-X importtime printed no line for {module}"
    raise RuntimeError(msg)


def wall(args: list[str]) -> float:
    """Seconds a command takes, start to exit, in a fresh process."""
    t0 = time.perf_counter()
    subprocess.run(args, capture_output=True, env=_env(), check=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    p.add_argument("--out", type=Path, default=None, help="results folder (default: results/, --quick: results/quick/)")
    args = p.parse_args(argv)
    out = args.out or (HERE / "results" / ("quick" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    repeats = 3 if args.quick else 9
    imports = {"numpy": [], "anynet": []}
    for _ in range(repeats):  # alternating, so that a busy moment hurts both sides
        for module in imports:
            imports[module].append(import_time(module))
    log("imports timed")
    commands = {
        "the seed's loop as a script": [sys.executable, "-c", SEED],
        "anynet demo": [sys.executable, "-m", "anynet", "demo"],
    }
    walls: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(max(2, repeats // 3)):
        for name, cmd in commands.items():
            walls[name].append(wall(cmd))
    log("commands timed")
    best = {k: min(v) for k, v in imports.items()} | {k: min(v) for k, v in walls.items()}
    ratio_import = best["anynet"] / best["numpy"]
    ratio_demo = best["anynet demo"] / best["the seed's loop as a script"]
    rows = [
        ["import numpy", f"{best['numpy'] * 1e3:.0f} ms", "", ""],
        ["import anynet", f"{best['anynet'] * 1e3:.0f} ms", f"{ratio_import:.2f}× import numpy", "≤ 2×"],
        ["the seed's loop as a script", f"{best[next(iter(commands))]:.2f} s", "", ""],
        ["anynet demo", f"{best['anynet demo']:.2f} s", f"{ratio_demo:.2f}× the seed's script", "≤ 2×"],
    ]
    verdicts = [
        f"import anynet: {ratio_import:.2f}× import numpy (target ≤ 2×: {'met' if ratio_import <= 2 else 'NOT met'})",
        f"anynet demo: {ratio_demo:.2f}× the seed's script (target ≤ 2×: {'met' if ratio_demo <= 2 else 'NOT met'})",
    ]
    text = write_results(
        out,
        "startup",
        "Start-up: import anynet, and anynet demo against the seed's script",
        [
            f"Each in a fresh process, alternating, the fastest of {repeats} imports and "
            f"{len(walls['anynet demo'])} runs of each command. Imports as `python -X importtime` reports them "
            "(the top-level module's cumulative time); commands by the wall clock, start to exit, both 60000 "
            "epochs of the seed's XOR on NumPy.",
            "" if not args.quick else "A --quick smoke run.",
        ],
        [table(["what", "time", "ratio", "target"], rows), "", *[f"- {v}" for v in verdicts]],
        {"imports_s": imports, "commands_s": walls, "ratio_import": ratio_import, "ratio_demo": ratio_demo},
    )
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
