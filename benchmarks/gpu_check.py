"""On a CUDA machine: run the test suite on each GPU backend and print a short report.

Meant for a machine with the array libraries already installed and no network:

    PYTHONPATH=.:/path/to/array_api_compat python benchmarks/gpu_check.py [--out DIR] [-- PYTEST ARGS]

It runs ``pytest --backend=cupy``, ``--backend=torch --device=cuda:0`` and ``--backend=jax
--device=cuda:0`` side by side (each skipped with a note when its library or a CUDA device is
missing), then prints one line per backend with its pass/fail/skip counts and time.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUNS = [("cupy", None), ("torch", "cuda:0"), ("jax", "cuda:0")]


def _available(name: str, device: str | None) -> str | None:
    """None when the backend can run on the GPU here, else why not."""
    from anynet import backend as B

    try:
        B.native_device(name, device)
    except Exception as exc:  # noqa: BLE001 - any failure is a reason to report, not to crash
        return f"{type(exc).__name__}: {exc}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="folder for the per-backend pytest logs")
    parser.add_argument("--timeout", type=int, default=420, help="seconds allowed for each backend's run")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args()
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    procs = {}
    report = []
    for name, device in RUNS:
        why = _available(name, device)
        label = name if device is None else f"{name} ({device})"
        if why:
            report.append(f"{label:<18} not run: {why}")
            continue
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--backend={name}", *args.pytest_args]
        if device:
            cmd.append(f"--device={device}")
        log = open(out / f"pytest-{name}.log", "w") if out else subprocess.PIPE  # noqa: SIM115
        procs[label] = (
            subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True),
            log,
            time.perf_counter(),
        )
    status = 0
    for label, (proc, log, start) in procs.items():
        try:
            text, _ = proc.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            text, _ = proc.communicate()
            status = 1
        if log is not subprocess.PIPE:
            log.close()
            text = Path(log.name).read_text()
        summary = [line for line in (text or "").splitlines() if re.search(r"\d+ (passed|failed|error)", line)]
        line = summary[-1].strip("= ") if summary else f"no summary (exit {proc.returncode})"
        report.append(f"{label:<18} {line}  [{time.perf_counter() - start:.0f}s wall]")
        if proc.returncode not in (0, None):
            status = 1
            fails = [ln for ln in (text or "").splitlines() if ln.startswith(("FAILED", "ERROR"))]
            report.extend(f"    {ln}" for ln in fails[:15])
    print("GPU test report")
    print("\n".join(report))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
