"""How the cost of one SGD step grows with batch size and with width, for anynet and the same loop by
hand on each device; a log-log plot shows it (``sweep.png``)."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import peers
from common import Contender, Row, block, fmt_ratio, fmt_time, log, measure
from peers import MLPJob
from workloads import Env, Outcome, _label, _place, _random_task

import anynet

CPU_ROWS, GPU_ROWS = 2**15, 2**18  # the most rows of data a sweep point trains on


def _pairs(env: Env) -> list[tuple[str, str, str]]:
    """(anynet backend, device, peer library) to sweep: NumPy always, the GPU's libraries when there is
    one, torch on the CPU in a full run."""
    out = [("numpy", "cpu", "numpy")] if "numpy" in env.backends else []
    if not env.quick and env.has("torch", "cpu"):
        out.append(("torch", "cpu", "torch"))
    gpu = env.gpu
    if gpu is not None:
        if env.has("cupy", gpu):
            out.append(("cupy", gpu, "cupy"))
        if env.has("torch", gpu):
            out.append(("torch", gpu, "torch"))
    return out


def _peer_name(lib: str, device: str) -> str:
    return "NumPy by hand" if lib == "numpy" else "cupy: by hand" if lib == "cupy" else f"torch {device}: by hand"


def _points(batches, widths, width0, batch0) -> list[tuple[str, int, int]]:
    return [("batch", b, width0) for b in batches] + [("width", batch0, w) for w in widths]


def sweep(env: Env, out_dir: Path) -> Outcome | None:
    plan = env.plan
    pairs = _pairs(env)
    if not pairs:
        return None
    cpu_points = _points(plan.sweep_batches, plan.sweep_widths, plan.sweep_width0, plan.sweep_batch0)
    gpu_points = _points(plan.sweep_gpu_batches, plan.sweep_gpu_widths, plan.sweep_width0, plan.sweep_batch0)
    times: dict[tuple[str, int, int], dict[str, Row]] = {}
    data: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    placed: dict[tuple[str, str], Any] = {}
    for on_gpu, points in ((False, cpu_points), (True, gpu_points)):
        mine = [p for p in pairs if p[1].startswith("cuda") == on_gpu]
        if not mine:
            continue
        cap = GPU_ROWS if on_gpu else CPU_ROWS
        most = min(cap, max(b for _, b, _ in points) * plan.sweep_steps)
        key = "gpu" if on_gpu else "cpu"
        data[key] = _random_task(most, 784, 10, seed=1)
        X, T = data[key]
        for batch, width in dict.fromkeys((b, w) for _, b, w in points):  # the corner point once
            log(f"    {key} batch {batch}, width {width}")
            steps = max(2, min(plan.sweep_steps, most // batch))
            sizes = [784, width, width, 10]
            job = MLPJob("sgd", lr=0.01, batch=batch, epochs=1)
            start = anynet.Network(sizes, activation="relu", output_activation="softmax", init="he", dtype="float32")
            params = [
                (np.array(anynet.to_numpy(W)), np.array(anynet.to_numpy(b)))
                for W, b in zip(start.weights, start.biases, strict=True)
            ]
            cs = []
            for backend, device, lib in mine:
                cs.append(_anynet(backend, device, sizes, job, steps, X, T, placed))
                cs.append(_peer(lib, device, params, job, steps, X, T, placed))
            rows = measure(cs, repeats=plan.sweep_repeats, budget=plan.sweep_budget, min_steps=2, verbose=False)
            for c, row in zip(cs, rows, strict=True):
                times.setdefault((key, batch, width), {})[c.name] = row
    lines, series = _table(env, pairs, cpu_points, gpu_points, times)
    notes = []
    plot = out_dir / "sweep.png"
    if "matplotlib" in env.libs:
        try:
            _plot(series, plot, env)
            notes.append(f"plot: {plot.name}")
        except Exception as exc:  # noqa: BLE001 - a plot that fails must not lose the numbers
            notes.append(f"plot not drawn: {type(exc).__name__}: {exc}")
    else:
        notes.append("plot not drawn: matplotlib is not installed here")
    headers = ["axis", "batch", "width"]
    for backend, device, lib in pairs:
        headers += [_label(backend, device, None), _peer_name(lib, device), "×"]
    return Outcome(
        "sweep",
        "sweep: cost of one step against batch size and width",
        f"784-w-w-10 relu MLP, softmax + cross-entropy, SGD, float32, consecutive batches; time per step, "
        f"min of {plan.sweep_repeats} runs of up to {plan.sweep_steps} steps. *×* is anynet's time over the same "
        "loop by hand on that device. On a log-log plot a slope of 1 against batch and 2 against width means the "
        "cost is all in the matmuls; flatter means per-step overhead dominates.",
        headers,
        lines,
        [row for by_name in times.values() for row in by_name.values()],
        notes=notes,
        extra={"series": series},
    )


def _anynet(backend, device, sizes, job, steps, X, T, placed) -> Contender:
    def build(steps: int):
        key = (backend, device)
        if key not in placed:
            placed[key] = (_place(X, backend, device), _place(T, backend, device))
        Xd, Td = placed[key]
        n = steps * job.batch
        net = anynet.Network(
            sizes,
            activation="relu",
            output_activation="softmax",
            init="he",
            dtype="float32",
            backend=backend,
            device=device,
        )
        options = {"epochs": 1, "lr": job.lr, "batch_size": job.batch, "shuffle": False, "loss": "cross_entropy"}

        def run():
            net.fit(Xd[:n, ...], Td[:n, ...], verbose=0, **options)
            return net

        return run

    return Contender(
        _label(backend, device, None),
        build,
        steps,
        kind="anynet",
        sync=lambda net: block(backend, net.weights),
        backend=backend,
        device=device,
    )


def _peer(lib, device, params, job, steps, X, T, placed) -> Contender:
    def build(steps: int):
        n = steps * job.batch
        if lib == "numpy":
            return peers.numpy_mlp(X[:n], T[:n], params, job)
        key = (lib, device)
        if key not in placed:
            placed[key] = (_place(X, lib, device), _place(T, lib, device))
        Xd, Td = placed[key]
        if lib == "cupy":
            return peers.cupy_mlp(Xd[:n], Td[:n], params, job)
        return peers.torch_mlp(Xd[:n], Td[:n], params, job, device=device)

    return Contender(_peer_name(lib, device), build, steps, sync=lambda out: block(lib, out), backend=lib)


def _table(env, pairs, cpu_points, gpu_points, times):
    lines, series = [], {}
    for key, points in (("cpu", cpu_points), ("gpu", gpu_points)):
        for axis, batch, width in points:
            by_name = times.get((key, batch, width))
            if by_name is None:
                continue
            line = [axis, str(batch), str(width)]
            for backend, device, lib in pairs:
                a, p = by_name.get(_label(backend, device, None)), by_name.get(_peer_name(lib, device))
                if a is None and p is None:
                    line += ["", "", ""]
                    continue
                cells = []
                for row in (a, p):
                    if row is not None and row.ok:
                        cells.append(fmt_time(row.per_step()))
                        x = batch if axis == "batch" else width
                        series.setdefault((axis, row.name), []).append((x, row.per_step()))
                    else:
                        cells.append("n/a" if row is None else row.status)
                ratio = a.per_step() / p.per_step() if a is not None and p is not None and a.ok and p.ok else None
                line += [*cells, fmt_ratio(ratio)]
            lines.append(line)
    return lines, series


def _slope(points: list[tuple[int, float]]) -> float | None:
    """The log-log slope over the upper half of the points, where the matmuls should dominate."""
    pts = sorted(points)
    pts = pts[len(pts) // 2 :] if len(pts) >= 4 else pts
    if len(pts) < 2:
        return None
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(x, y, 1)[0])


def _plot(series: dict, path: Path, env: Env) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")
    # Between powers of ten, label 2 and 5 only: enough to read a narrow range, not a crowd.
    some = FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else "")

    fig = Figure(figsize=(11, 4.6), layout="constrained")
    axes = dict(zip(("batch", "width"), fig.subplots(1, 2), strict=True))
    names = sorted({name for _, name in series})
    colour = {name: f"C{i % 10}" for i, name in enumerate(names)}  # one colour per contender, both panels
    for (axis, name), pts in sorted(series.items()):
        pts = sorted(pts)
        slope = _slope(pts)
        label = name + ("" if slope is None else f"  (slope {slope:.2f})")
        style = "-o" if name.startswith("anynet") else "--s"
        xs, ys = [p[0] for p in pts], [p[1] * 1e3 for p in pts]
        axes[axis].plot(xs, ys, style, color=colour[name], label=label, markersize=4)
    for axis, ax in axes.items():
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        fixed = f"width {env.plan.sweep_width0}" if axis == "batch" else f"batch {env.plan.sweep_batch0}"
        ax.set_xlabel(f"{axis} ({fixed})")
        ax.set_ylabel("time per SGD step (ms)")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(some)
        ax.xaxis.set_major_formatter(plain)
        ax.grid(True, which="both", alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
        ref = 1 if axis == "batch" else 2
        with contextlib.suppress(ValueError):
            lo, hi = ax.get_xlim()
            ylo, yhi = ax.get_ylim()
            xs = np.array([lo, hi])
            mid = math.sqrt(ylo * yhi)
            ax.plot(xs, mid * (xs / math.sqrt(lo * hi)) ** ref, ":", color="0.6", linewidth=1)
            ax.set_ylim(ylo, yhi)
    fig.suptitle(f"784-w-w-10 MLP, one float32 SGD step; {env.machine}; dotted lines: slope 1 and 2", fontsize=9)
    fig.savefig(path, dpi=120)
