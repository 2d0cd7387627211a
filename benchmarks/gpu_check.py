"""On a CUDA machine: the whole test suite on each GPU backend, the GPU benchmarks, and one report.

Meant for a CUDA machine with the array libraries installed and no network (see the README,
"On a GPU"), run from the repository root:

    PYTHONPATH=.:.whl/site python benchmarks/gpu_check.py [--budget 420] [--out benchmarks/results]

1. ``pytest --backend=cupy``, ``--backend=torch --device=cuda:0`` and ``--backend=jax --device=cuda:0``
   run side by side, each split over a few worker processes where pytest-xdist is installed (JAX
   compiles on the CPU, and one process compiled too slowly to finish), with JAX's persistent
   compilation cache on and its memory preallocation off; each is noted "not run", with the reason,
   where its library or a CUDA device is missing. Their logs go to ``<out>/gpu-<date>/``.
2. The GPU benchmarks, in what time is left: the large MLP 784-4096-4096-10 at batch 1024 on CuPy
   and torch CUDA against the same loop by hand; the seed's XOR with and without CUDA graphs against
   PyTorch by hand; where a large MLP step's time goes (PyTorch's profiler, anynet against the same
   step by hand); ensembles of a 784-256-256-10 network, one against 64 members; and the digits
   search (``benchmarks/search.py --jobs digits``) on each GPU backend. (``benchmarks/run.py``, every
   contender on every device, does not fit the budget: run it alone when a GPU is at hand longer.)
3. ``<out>/gpu-<date>.md``: the commit tested, the GPU, the library versions, each backend's
   passed/failed/skipped counts and wall time, every benchmark's table, and what did not run.

Everything runs under one ``--budget`` in seconds (default 420, to leave room for a rerun in a
15-minute lease); a step that would overrun is cut, and the report says so. On a machine without a
GPU it still writes the report, saying that nothing could run, which is how it is tested.
"""

from __future__ import annotations

import argparse
import importlib.util
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
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # before JAX is imported

from common import machine_info  # noqa: E402

GPU_BACKENDS = ("cupy", "torch")
#: pytest-xdist workers per suite; the three suites run at once, so together they fill 16 cores
WORKERS = {"cupy": 4, "torch": 4, "jax": 8}


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


def _env(**more: str) -> dict[str, str]:
    # absolute: the CLI and README tests start Python in other folders (".whl/site" found nothing there)
    given = [str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), *given]), **more)


def suites(
    runs: list[tuple[str, str | None]], logs: Path, timeout: float, extra: list[str], workers: bool = True
) -> tuple[list[list[str]], list[str], bool]:
    # a few BLAS threads a worker: fourteen workers of sixteen threads each would fight for the cores
    env = _env(
        OMP_NUM_THREADS="2",
        OPENBLAS_NUM_THREADS="2",
        MKL_NUM_THREADS="2",
        XLA_PYTHON_CLIENT_PREALLOCATE="false",
        JAX_COMPILATION_CACHE_DIR=str(logs / "jax-cache"),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.2",
    )
    xdist = workers and importlib.util.find_spec("xdist") is not None
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
        if xdist and WORKERS.get(name, 1) > 1:
            # pytest-benchmark warns (an error under this suite's filterwarnings) beside xdist
            cmd += ["-n", str(WORKERS[name]), "-p", "no:benchmark"]
        log = (logs / f"pytest-{name}.log").open("w")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        procs[label] = (proc, log, time.perf_counter(), xdist and WORKERS.get(name, 1) > 1)
    deadline = time.perf_counter() + timeout
    for label, (proc, log, start, split) in procs.items():
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
        wall = f"{time.perf_counter() - start:.0f} s" + (f" ({WORKERS[label.split()[0]]} workers)" if split else "")
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
    if timeout < 20:
        return "not run: no time left in the budget", ""
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return f"cut after {timeout:.0f} s", out
    return ("ok" if done.returncode == 0 else f"exit {done.returncode}"), done.stdout + done.stderr[-3000:]


def _best(run, sync, repeats: int = 3) -> float:
    """The fastest of ``repeats`` timed calls of ``run`` after one warm-up, ``sync`` waiting for the GPU."""
    sync(run())
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        sync(run())
        best = min(best, time.perf_counter() - t0)
    return best


def graphs_xor(steps: int = 3000, device: str = "cuda:0") -> str:
    """The seed's XOR (3-4-1 sigmoid, no biases, lr 1, float64, full batch) on torch CUDA: anynet with
    its CUDA graphs, anynet step by step, and the seed's loop in PyTorch by hand; the target is 0.3x
    the hand loop's time. The final weights are checked against the seed's NumPy loop."""
    import numpy as np
    import peers
    import torch

    import anynet
    from anynet.cli import XOR_T, XOR_X
    from anynet.engines import graphs

    start = anynet.Network([3, 4, 1], bias=False, dtype="float64", backend="numpy")
    W1, W2 = (np.array(W) for W in start.weights)
    seed = peers.seed_xor(XOR_X, XOR_T, W1, W2, steps)()

    def sync(out):
        if device != "cpu":
            torch.cuda.synchronize()
        return out

    def anynet_run():
        net = anynet.Network.from_weights([W1, W2], backend="torch", device=device)
        net.fit(XOR_X, XOR_T, epochs=steps, lr=1.0, loss="half_sse", verbose=0)
        return [anynet.to_numpy(W) for W in net.weights]

    lines, times = [], {}
    real, counted = graphs.CAPTURES["torch"], []

    class Counting:
        usable, warm_up = real.usable, real.warm_up

        def __call__(self, body, like):
            counted.append(1)
            return real(body, like)

    graphs.CAPTURES["torch"] = Counting()
    try:
        for label, env in ((f"anynet torch {device}, CUDA graphs", "1"), (f"anynet torch {device}, step by step", "0")):
            os.environ[graphs.ENV] = env
            counted.clear()
            times[label] = _best(anynet_run, sync)
            diff = max(float(np.max(np.abs(a - b))) for a, b in zip(anynet_run(), seed, strict=True))
            lines.append((label, times[label], f"{len(counted)} captures a fit; |W - seed's| ≤ {diff:.1e}"))
    finally:
        graphs.CAPTURES["torch"] = real
        os.environ.pop(graphs.ENV, None)
    hand = peers.torch_xor(XOR_X, XOR_T, W1, W2, steps, device=device)
    times["hand"] = _best(hand, sync)
    diff = max(float(np.max(np.abs(anynet.to_numpy(a) - b))) for a, b in zip(hand(), seed, strict=True))
    lines.append((f"torch {device} by hand (eager, the seed's loop)", times["hand"], f"|W - seed's| ≤ {diff:.1e}"))
    out = [f"{steps} steps, best of 3 after a warm-up (a fit includes moving the data and weights there)"]
    for label, t, note in lines:
        out.append(f"{label}: {t / steps * 1e6:.1f} us/step, {t / times['hand']:.2f}x by hand; {note}")
    ratio = times[f"anynet torch {device}, CUDA graphs"] / times["hand"]
    out.append(f"target <= 0.3x PyTorch eager by hand: {ratio:.2f}x, {'met' if ratio <= 0.3 else 'NOT met'}")
    return "\n".join(out)


def large_mlp(steps: int = 30, gpus: tuple[str, ...] = GPU_BACKENDS, device: str = "cuda:0", width: int = 4096) -> str:
    """784-4096-4096-10 at batch 1024, float32 SGD (lr 0.01, no TF32), softmax cross-entropy, ``steps``
    consecutive batches: anynet on each GPU backend against the same loop by hand in PyTorch and CuPy.
    The target: the fastest anynet path at most 1.0x PyTorch by hand."""
    import numpy as np
    import peers

    import anynet

    sizes, batch = [784, width, width, 10], 1024
    rng = np.random.default_rng(0)
    X = rng.normal(size=(steps * batch, sizes[0])).astype("float32")
    T = np.eye(sizes[-1], dtype="float32")[rng.integers(0, sizes[-1], X.shape[0])]
    start = anynet.Network(sizes, "relu", "softmax", init="he", dtype="float32", backend="numpy")
    hand = f"torch {device} by hand"
    params = [(np.array(W), np.array(b)) for W, b in start.layers]
    job = peers.MLPJob("sgd", lr=0.01, batch=batch, epochs=1)
    rows = []
    if "torch" in gpus:
        import torch

        def torch_sync(out):
            if device != "cpu":
                torch.cuda.synchronize()
            return out

        rows.append((hand, peers.torch_mlp(X, T, params, job, device=device), torch_sync, None))
    if "cupy" in gpus:
        import cupy

        def cupy_sync(out):
            cupy.cuda.Device().synchronize()
            return out

        rows.append(("cupy by hand", peers.cupy_mlp(X, T, params, job), cupy_sync, None))
    for backend in gpus:
        net = anynet.Network.from_weights(
            [W for W, _ in params], [b for _, b in params], "relu", "softmax", backend=backend, device=device
        )
        Xd, Td = (anynet.backend.from_numpy(a, backend, anynet.backend.native_device(backend, device)) for a in (X, T))

        def fit(net=net, Xd=Xd, Td=Td):
            net.fit(Xd, Td, epochs=1, batch_size=batch, shuffle=False, lr=0.01, loss="cross_entropy", verbose=0)
            return net.weights

        rows.append((f"anynet {backend} {device}", fit, None, backend))
    flops = peers.mlp_flops(sizes, batch)
    times = {}
    for label, run, sync, backend in rows:
        if backend is not None:
            sync = (lambda b: lambda out: (anynet.backend.synchronize(b), out)[1])(backend)
        times[label] = _best(run, sync) / steps
    ref = times.get(hand) or next(iter(times.values()))
    out = [f"{steps} steps, best of 3 after a warm-up; the ratio is time per step against the first row"]
    for label, t in times.items():
        out.append(f"{label}: {t * 1e3:.2f} ms/step, {flops / t / 1e12:.1f} TFLOP/s, {t / ref:.2f}x")
    mine = [t for label, t in times.items() if label.startswith("anynet")]
    if mine and "torch cuda:0 by hand" in times:
        best = min(mine) / ref
        out.append(
            f"target: fastest anynet <= 1.0x PyTorch by hand: {best:.2f}x, {'met' if best <= 1.0 else 'NOT met'}"
        )
    return "\n".join(out)


def profile_large(steps: int = 10, device: str = "cuda:0", width: int = 4096) -> str:
    """Where a 784-4096-4096-10 step (batch 1024, f32 SGD, softmax cross-entropy) spends its GPU time:
    anynet's torch step against the same step by hand, PyTorch's profiler, the top kernels of each."""
    import numpy as np
    import peers
    import torch
    from torch.profiler import ProfilerActivity, profile

    import anynet

    sizes, batch = [784, width, width, 10], 1024
    rng = np.random.default_rng(0)
    X = rng.normal(size=(steps * batch, sizes[0])).astype("float32")
    T = np.eye(sizes[-1], dtype="float32")[rng.integers(0, sizes[-1], X.shape[0])]
    net = anynet.Network(sizes, "relu", "softmax", init="he", dtype="float32", backend="torch", device=device)
    params = [(np.array(anynet.to_numpy(W)), np.array(anynet.to_numpy(b))) for W, b in net.layers]
    Xd, Td = torch.as_tensor(X, device=device), torch.as_tensor(T, device=device)
    job = peers.MLPJob("sgd", lr=0.01, batch=batch, epochs=1)
    hand = peers.torch_mlp(X, T, params, job, device=device)
    gpu = device != "cpu"
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    activity = ProfilerActivity.CUDA if gpu else ProfilerActivity.CPU

    def mine():
        net.fit(Xd, Td, epochs=1, batch_size=batch, shuffle=False, lr=0.01, loss="cross_entropy", verbose=0)

    out = []
    for label, run in (("anynet", mine), ("by hand", hand)):
        run()
        sync()
        t0 = time.perf_counter()
        with profile(activities=[activity]) as prof:
            run()
            sync()
        wall = time.perf_counter() - t0
        events = prof.key_averages()
        key = "device_time_total" if gpu else "self_cpu_time_total"
        total = sum(getattr(e, key) for e in events) / 1e3
        out.append(f"## {label}: {wall / steps * 1e3:.2f} ms/step wall (profiled), {total / steps:.2f} ms/step {key}")
        out.append(events.table(sort_by=key, row_limit=10, max_name_column_width=48))
    return "\n".join(out)


def ensembles(backend: str, members: int = 64, steps: int = 200) -> str:
    """One 784-256-256-10 network against ``members`` of them, ``steps`` mini-batch steps of 256 rows
    on random data, on ``backend``'s GPU; the target is at most 2x."""
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


def _section(title: str, fn, *args) -> tuple[str, str, str]:
    t0 = time.perf_counter()
    try:
        out = fn(*args)
        status = "ok"
    except Exception as exc:  # noqa: BLE001 - reported, and the other checks go on
        out, status = f"{type(exc).__name__}: {exc}", "failed"
    return title, f"{status} ({time.perf_counter() - t0:.0f} s)", out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results", help="where the report goes")
    parser.add_argument("--budget", type=float, default=420, help="seconds for everything (default 420)")
    # JAX's suite, beside the other two, needs about 190 s of a GPU machine's 16 cores
    parser.add_argument("--suite-share", type=float, default=0.6, help="the budget's share for the test suites")
    parser.add_argument(
        "--suites",
        default="cupy,torch:cuda:0,jax:cuda:0",
        help="backend[:device] list to test (default: cupy,torch:cuda:0,jax:cuda:0; numpy tries the script on a CPU)",
    )
    parser.add_argument("--no-workers", action="store_true", help="one pytest process a suite, even with xdist")
    parser.add_argument("--no-bench", action="store_true", help="the test suites only")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    logs = args.out / f"gpu-{date}"
    logs.mkdir(parents=True, exist_ok=True)
    info = machine_info()

    runs = [(item.split(":", 1)[0], item.split(":", 1)[1] if ":" in item else None) for item in args.suites.split(",")]
    rows, notes, suites_ok = suites(
        runs, logs, args.budget * args.suite_share, args.pytest_args, workers=not args.no_workers
    )
    left = lambda: args.budget - (time.perf_counter() - start)  # noqa: E731
    gpus = [b for b in GPU_BACKENDS if _available(b, None if b == "cupy" else "cuda:0") is None]
    bench = []
    if gpus and not args.no_bench:
        bench.append(_section("the large MLP, 784-4096-4096-10 at batch 1024", large_mlp, 30, tuple(gpus)))
        if "torch" in gpus:
            bench.append(_section("the seed's XOR on torch CUDA: CUDA graphs", graphs_xor))
            bench.append(_section("where a large MLP step's GPU time goes (torch)", profile_large))
        lines = [_section("", ensembles, b)[2] for b in gpus]
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
