"""On a CUDA machine: the whole test suite on each GPU backend, the GPU benchmarks, and one report.

Meant for a lent GPU machine with the array libraries installed and no network (see the README,
"On a GPU"), run from the repository root:

    PYTHONPATH=.:.whl/site python benchmarks/gpu_check.py [--budget 480] [--out benchmarks/results]

1. ``pytest --backend=cupy``, ``--backend=torch --device=cuda:0`` and ``--backend=jax --device=cuda:0``
   run side by side (each noted "not run", with the reason, where its library or a CUDA device is
   missing); their logs go to ``<out>/gpu-<date>/``.
2. The GPU benchmarks, in what time is left: ``benchmarks/run.py`` (the seed's XOR, the large MLP
   784-4096-4096-10 at batch 1024, digits, memory at two data sizes) on CuPy and torch CUDA;
   ensembles of a 784-256-256-10 network, one against 64 members; and the digits search
   (``benchmarks/search.py --jobs digits``) on each GPU backend.
3. ``<out>/gpu-<date>.md``: the commit tested, the GPU, the library versions, each backend's
   passed/failed/skipped counts and wall time, every benchmark's table, and what did not run.

Everything runs under one ``--budget`` in seconds (default 480, to leave room for a rerun in a
15-minute lease); a step that would overrun is cut, and the report says so. On a machine without a
GPU it still writes the report, saying that nothing could run, which is how it is tested.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from common import machine_info  # noqa: E402

GPU_BACKENDS = ("cupy", "torch")


def _available(name: str, device: str | None) -> str | None:
    """None when the backend can run on the GPU here, else why not."""
    from anynet import backend as B

    try:
        B.native_device(name, device)
    except Exception as exc:  # noqa: BLE001 - any failure is a reason to report, not to crash
        return f"{type(exc).__name__}: {exc}"
    return None


def _counts(text: str) -> dict[str, int]:
    """pytest's closing summary as numbers: ``{"passed": 1100, "skipped": 40, ...}``."""
    found = {}
    for line in reversed(text.splitlines()):
        if re.search(r"\d+ (passed|failed|error)", line):
            for number, what in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)", line):
                found[what.rstrip("s") if what.startswith("error") else what] = int(number)
            break
    return found


def suites(
    runs: list[tuple[str, str | None]], logs: Path, timeout: float, extra: list[str]
) -> tuple[list[list[str]], list[str], bool]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    rows, notes, procs, ok = [], [], {}, True
    for name, device in runs:
        label = name if device is None else f"{name} ({device})"
        why = _available(name, device)
        if why:
            rows.append([label, "not run", "", "", "", why])
            continue
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--backend={name}", *extra]
        if device:
            cmd.append(f"--device={device}")
        log = (logs / f"pytest-{name}.log").open("w")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        procs[label] = (proc, log, time.perf_counter())
    deadline = time.perf_counter() + timeout
    for label, (proc, log, start) in procs.items():
        try:
            proc.wait(timeout=max(1.0, deadline - time.perf_counter()))
            cut = False
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            cut = True
        log.close()
        text = Path(log.name).read_text(errors="replace")
        c = _counts(text)
        wall = f"{time.perf_counter() - start:.0f} s"
        state = "cut at the time limit" if cut else ("ok" if proc.returncode == 0 else f"exit {proc.returncode}")
        rows.append(
            [
                label,
                state,
                str(c.get("passed", 0)),
                str(c.get("failed", 0) + c.get("error", 0)),
                str(c.get("skipped", 0)),
                wall,
            ]
        )
        ok = ok and proc.returncode == 0 and not cut
        notes.extend([f"{label}: {ln}" for ln in text.splitlines() if ln.startswith(("FAILED", "ERROR"))][:20])
    return rows, notes, ok and bool(procs)


def _run(cmd: list[str], timeout: float) -> tuple[str, str]:
    """``(status, output)`` of a benchmark command given at most ``timeout`` seconds."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    if timeout < 20:
        return "not run: no time left in the budget", ""
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return f"cut after {timeout:.0f} s", out
    return ("ok" if done.returncode == 0 else f"exit {done.returncode}"), done.stdout + done.stderr[-3000:]


def ensembles(backend: str, members: int = 64, steps: int = 200) -> str:
    """One 784-256-256-10 network against ``members`` of them, ``steps`` mini-batch steps of 256 rows
    on random data, on ``backend``'s GPU; issue 11's target is at most 2x."""
    import numpy as np

    import anynet
    from anynet import backend as B

    rng = np.random.default_rng(0)
    X = rng.normal(size=(256 * 8, 784)).astype("float32")
    y = rng.integers(0, 10, size=X.shape[0])
    device = None if backend == "cupy" else "cuda:0"
    options = {"epochs": steps // 8, "batch_size": 256, "optimizer": "sgd", "lr": 0.01, "verbose": 0, "seed": 0}
    one = anynet.Network([784, 256, 256, 10], "relu", "softmax", backend=backend, device=device, dtype="float32")
    many = anynet.Ensemble(
        [784, 256, 256, 10], members, "relu", "softmax", backend=backend, device=device, dtype="float32"
    )
    times = {}
    for label, model in (("one", one), ("ensemble", many)):
        model.fit(X, y, **(options | {"epochs": 1}))  # warm-up: kernels, buffers
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            model.fit(X, y, **options)
            layers = model.layers
            np.asarray(B.to_numpy(layers[-1][0]))  # waits for the GPU
            best = min(best, time.perf_counter() - t0)
        times[label] = best
    ratio = times["ensemble"] / times["one"]
    verdict = "met" if ratio <= 2 else "NOT met"
    return (
        f"{backend}: one network {times['one'] * 1e3:.1f} ms, {members} members {times['ensemble'] * 1e3:.1f} ms "
        f"for {steps} steps: {ratio:.2f}x (target <= 2x: {verdict})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results", help="where the report goes")
    parser.add_argument("--budget", type=float, default=480, help="seconds for everything (default 480)")
    parser.add_argument("--suite-share", type=float, default=0.5, help="the budget's share for the test suites")
    parser.add_argument(
        "--suites",
        default="cupy,torch:cuda:0,jax:cuda:0",
        help="backend[:device] list to test (default: cupy,torch:cuda:0,jax:cuda:0; numpy tries the script on a CPU)",
    )
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    logs = args.out / f"gpu-{date}"
    logs.mkdir(parents=True, exist_ok=True)
    info = machine_info()

    runs = [(item.split(":", 1)[0], item.split(":", 1)[1] if ":" in item else None) for item in args.suites.split(",")]
    rows, notes, suites_ok = suites(runs, logs, args.budget * args.suite_share, args.pytest_args)
    left = lambda: args.budget - (time.perf_counter() - start)  # noqa: E731
    gpus = [b for b in GPU_BACKENDS if _available(b, None if b == "cupy" else "cuda:0") is None]
    bench = []
    if gpus:
        status, out = _run(
            [
                sys.executable,
                "benchmarks/run.py",
                "--only",
                "xor,large,digits,memory",
                "--repeats",
                "3",
                "--backends",
                ",".join(["numpy", *gpus]),
                "--out",
                str(logs / "bench"),
            ],
            left() * 0.6,
        )
        bench.append(("benchmarks/run.py (xor, large, digits, memory)", status, out))
        lines = []
        for backend in gpus:
            try:
                lines.append(ensembles(backend))
            except Exception as exc:  # noqa: BLE001 - reported, and the other checks go on
                lines.append(f"{backend}: failed: {type(exc).__name__}: {exc}")
        bench.append(("ensembles: 64 members of 784-256-256-10 against one", "ok", "\n".join(lines)))
        status, out = _run(
            [
                sys.executable,
                "benchmarks/search.py",
                "--jobs",
                "digits",
                "--backends",
                ",".join(gpus),
                "--out",
                str(logs / "search"),
            ],
            left() - 10,
        )
        bench.append(("benchmarks/search.py --jobs digits", status, out))

    text = [
        f"# GPU check, {date}",
        "",
        f"`benchmarks/gpu_check.py` on commit {info['anynet commit']}; GPU: {info['gpu']}.",
        f"Total wall time {time.perf_counter() - start:.0f} s of a {args.budget:.0f} s budget.",
        "",
        "## The test suite on each GPU backend",
        "",
        "| backend | run | passed | failed | skipped | wall / why not |",
        "|---|---|---|---|---|---|",
        *["| " + " | ".join(r) + " |" for r in rows],
        "",
        *([f"- {n}" for n in notes] or ["No failures." if suites_ok else "No suite passed in full here."]),
        "",
        "## Benchmarks",
        "",
    ]
    if not bench:
        text.append("Not run: no GPU backend could run here (see the table above).")
    for title, status, out in bench:
        text += [f"### {title}: {status}", "", "```", out.strip()[-6000:] or "(no output)", "```", ""]
    text += ["", "## Machine", "", *[f"- {k}: {v}" for k, v in info.items()], ""]
    report = args.out / f"gpu-{date}.md"
    report.write_text("\n".join(text), encoding="utf-8")
    print("\n".join(text))
    print(f"report: {report}")
    return 0 if suites_ok and gpus else 1


if __name__ == "__main__":
    raise SystemExit(main())
