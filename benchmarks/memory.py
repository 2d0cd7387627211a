"""Peak memory while training on mini-batches, against the size of the data.

Each measurement runs in a fresh Python process (this file run as a script), so that nothing the
other workloads allocated is counted. The child makes the data, warms the loop up on two batches,
then resets the peak counters and trains one epoch: for host memory it reads the peak resident set
(``VmHWM``, reset through ``/proc/self/clear_refs``; ``ru_maxrss`` where that is not possible), for
CUDA memory torch's ``max_memory_allocated`` or the bytes CuPy's memory pool holds.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SIZES = [784, 256, 10]
BATCH = 256
MIB = 2**20


# --------------------------------------------------------------------------- the parent


def memory(env):
    """Run the children for each contender and data size; judge target 6 from how the extra memory grows."""
    from common import fmt_ratio, log
    from workloads import Outcome, Target

    plan = env.plan
    contenders = []
    if "numpy" in env.backends:
        contenders += [("anynet", "numpy", "cpu"), ("hand", "numpy", "cpu")]
    gpu = env.gpu
    if gpu is not None:
        for lib in ("cupy", "torch"):
            if env.has(lib, gpu):
                # A smoke run keeps one by-hand reference (NumPy's): each child costs a CUDA start-up.
                contenders += [("anynet", lib, gpu)] + ([] if env.quick else [("hand", lib, gpu)])
    if not contenders:
        return None
    lines, results, targets = [], {}, []
    for who, lib, device in contenders:
        name = _name(who, lib, device)
        rows = plan.memory_gpu_rows if device.startswith("cuda") else plan.memory_rows
        for n in rows:
            log(f"    {name}, {n} rows")
            res = _child(who, lib, device, n)
            results.setdefault(name, []).append(res)
            if "error" in res:
                lines.append([name, str(n), "ERROR", res["error"], "", "", "", ""])
                continue
            lines.append(
                [
                    name,
                    str(n),
                    res["memory"],
                    f"{res['data'] / MIB:.1f}",
                    f"{res['before'] / MIB:.1f}",
                    f"{res['peak'] / MIB:.1f}",
                    f"{res['extra'] / MIB:.1f}",
                    fmt_ratio(res["extra"] / res["data"]),
                ]
            )
    growth = {}
    for name, runs in results.items():
        ok = [r for r in runs if "error" not in r]
        if len(ok) >= 2 and ok[-1]["data"] > ok[0]["data"]:
            growth[name] = (ok[-1]["extra"] - ok[0]["extra"]) / (ok[-1]["data"] - ok[0]["data"])
    text = "anynet's extra memory in fit does not grow with the data (< 0.10 byte per byte of data)"
    mine = {k: v for k, v in growth.items() if k.startswith("anynet")}
    if not mine:
        targets.append(Target(6, text, "no anynet row measured at two data sizes", "n/a"))
    else:
        worst = max(mine.values())
        measured = ", ".join(f"{k}: {v:+.3f}" for k, v in mine.items())
        targets.append(Target(6, text, measured, "PASS" if worst < 0.10 else "FAIL"))
    notes = [
        "growth of the extra memory per byte of data, smallest to largest size: "
        + ", ".join(f"{k} {v:+.3f}" for k, v in growth.items())
    ]
    model = sum(a * b + b for a, b in itertools.pairwise(SIZES)) * 4
    batch_bytes = BATCH * sum(SIZES) * 4
    return Outcome(
        "memory",
        "memory: peak while training, against the data",
        f"{'-'.join(map(str, SIZES))} relu MLP, softmax + cross-entropy, SGD, float32, batch {BATCH}, shuffled, one "
        f"epoch, each in a fresh process. *data*: X and one-hot targets, already in memory (on the GPU for CUDA "
        f"rows) before fit; *extra*: the peak during fit less what was held before it. For scale: the parameters "
        f"are {model / MIB:.1f} MiB, one batch's activations {batch_bytes / MIB:.2f} MiB. Host rows read the "
        "resident set; CuPy rows the bytes its pool holds (an upper bound on the peak); torch rows "
        "max_memory_allocated.",
        ["contender", "rows", "memory", "data MiB", "before fit MiB", "peak MiB", "extra MiB", "extra ÷ data"],
        lines,
        [],
        targets,
        notes,
        extra={"runs": results},
    )


def _name(who: str, lib: str, device: str) -> str:
    if who == "anynet":
        return f"anynet {lib}" + (f" {device}" if lib == "torch" else "") + " (auto)"
    return "NumPy by hand" if lib == "numpy" else "cupy: by hand" if lib == "cupy" else f"torch {device}: by hand"


def _child(who: str, lib: str, device: str, rows: int) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, str(Path(__file__).resolve()), who, lib, device, str(rows)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=str(ROOT))
    except subprocess.TimeoutExpired:
        return {"error": "timed out after 300 s"}
    for text in reversed(done.stdout.splitlines()):
        if text.startswith("{"):
            return json.loads(text)
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {done.returncode}: {tail[:120]}"}


# --------------------------------------------------------------------------- the child


def _rss() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak() -> int:
    with contextlib.suppress(OSError, ValueError):
        for text in Path("/proc/self/status").read_text().splitlines():
            if text.startswith("VmHWM:"):
                return int(text.split()[1]) * 1024
    import resource

    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _gpu_counters(lib: str):
    """(reset, current, peak) functions for ``lib``'s CUDA memory."""
    if lib == "torch":
        import torch

        def reset():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

        return reset, torch.cuda.memory_allocated, torch.cuda.max_memory_allocated
    import cupy

    pool = cupy.get_default_memory_pool()

    def reset_cupy():
        cupy.cuda.Device().synchronize()
        pool.free_all_blocks()

    return reset_cupy, pool.used_bytes, pool.total_bytes


def child(who: str, lib: str, device: str, rows: int) -> dict:
    sys.path.insert(0, str(HERE))
    import peers
    from common import block
    from workloads import _place, _random_task

    import anynet

    on_gpu = device.startswith("cuda")
    X, T = _random_task(rows, SIZES[0], SIZES[-1])
    data = X.nbytes + T.nbytes
    if on_gpu:
        X, T = _place(X, lib, device), _place(T, lib, device)
    net = anynet.Network(SIZES, activation="relu", output_activation="softmax", init="he", dtype="float32")
    params = [(anynet.to_numpy(W), anynet.to_numpy(b)) for W, b in zip(net.weights, net.biases, strict=True)]
    job = peers.MLPJob("sgd", lr=0.01, batch=BATCH, epochs=1, shuffle=True)

    def train(Xs, Ts):
        if who == "anynet":
            mine = anynet.Network(
                SIZES,
                activation="relu",
                output_activation="softmax",
                init="he",
                dtype="float32",
                backend=lib,
                device=device,
            )
            mine.fit(Xs, Ts, epochs=1, lr=0.01, batch_size=BATCH, loss="cross_entropy", verbose=0)
            block(lib, mine.weights)
            return
        if lib == "numpy":
            out = peers.numpy_mlp(Xs, Ts, params, job)()
        elif lib == "cupy":
            out = peers.cupy_mlp(Xs, Ts, params, job)()
        else:
            out = peers.torch_mlp(Xs, Ts, params, job, device=device)()
        block(lib, out)

    train(X[: 2 * BATCH, ...], T[: 2 * BATCH, ...])  # warm-up: BLAS buffers, CUDA handles, kernel caches
    gc.collect()
    result = {"rows": rows, "data": data}
    if on_gpu:
        reset, current, peak = _gpu_counters(lib)
        reset()
        result["before"] = current()
        train(X, T)
        result["peak"] = peak()
        result["memory"] = "CUDA (torch)" if lib == "torch" else "CUDA (CuPy pool)"
    else:
        result["before"] = _rss() or _peak()
        result["memory"] = "host RSS" if _reset_peak() else "host ru_maxrss"
        train(X, T)
        result["peak"] = _peak()
    result["extra"] = max(result["peak"] - result["before"], 0)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="one peak-memory measurement (run by benchmarks/run.py)")
    parser.add_argument("who", choices=["anynet", "hand"])
    parser.add_argument("lib", choices=["numpy", "cupy", "torch"])
    parser.add_argument("device")
    parser.add_argument("rows", type=int)
    args = parser.parse_args()
    print(json.dumps(child(args.who, args.lib, args.device, args.rows)))
