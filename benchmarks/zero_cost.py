"""anynet against the same job hand-written in the same library (issue: "zero cost on each backend").

Two jobs, each on NumPy, PyTorch (CPU) and JAX, interleaved in one process with
``common.measure`` (warm-up, rotating order, min and median of the repeats):

- the seed's XOR: 3-4-1 sigmoid without biases, float ``X``, full batch, lr 1, ½Σ(y−t)², 60000 steps.
  Hand-written: the seed's loop with ``np.dot`` (NumPy), the same loop in torch (PyTorch). JAX's
  target is against the NumPy seed loop.
- a large MLP: 784-1024-1024-10 relu/softmax, cross-entropy, plain SGD, batch 256, float32, one
  whole ``fit`` of 24 steps (6144 rows, in order). Hand-written: ``peers._train_by_hand`` in NumPy and
  torch, and a jitted JAX step called per batch.

anynet's rows time the whole ``fit`` (input checks, buffer set-up, the loop), on the default
``engine="auto"``, with the data already on the backend. Every anynet row's final weights are
checked against its hand-written twin.

    python benchmarks/zero_cost.py            # writes benchmarks/results/zero-cost.{md,json}
    python benchmarks/zero_cost.py --quick    # a smoke run: writes benchmarks/results/quick/
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import peers

import anynet

RESULTS = common.ROOT / "benchmarks" / "results"
XOR_X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.float64)
XOR_T = np.array([[0.0, 1.0, 1.0, 0.0]]).T
LARGE = [784, 1024, 1024, 10]
BATCH, LARGE_STEPS, LARGE_LR = 256, 24, 0.01
#: time ratios (anynet ÷ hand-written) the issue sets, per backend and job
TARGETS = {
    ("numpy", "xor"): 1.00,
    ("torch", "xor"): 1.30,
    ("jax", "xor"): 0.10,  # against the NumPy seed loop
    ("numpy", "large"): 1.05,
    ("torch", "large"): 1.05,
    ("jax", "large"): 1.05,
}


def _seed_weights() -> tuple[np.ndarray, np.ndarray]:
    """The seed's starting weights: ``2*random - 1`` after ``np.random.seed(1)``."""
    rs = np.random.RandomState(1)
    return 2 * rs.random_sample((3, 4)) - 1, 2 * rs.random_sample((4, 1)) - 1


def _on(a: np.ndarray, backend: str):
    return anynet.backend.from_numpy(a, backend, anynet.backend.native_device(backend, None))


def _host(params) -> list[np.ndarray]:
    out = []
    for p in params:
        if isinstance(p, (list, tuple)):
            out.extend(_host(p))
        elif p is not None:
            out.append(np.asarray(anynet.to_numpy(p), dtype=np.float64))
    return out


def _anynet_xor(backend: str, W1, W2, steps: int):
    X, t = _on(XOR_X, backend), _on(XOR_T, backend)
    net = anynet.Network.from_weights([W1, W2], activation="sigmoid", dtype="float64", backend=backend)

    def run():
        net.fit(X, t, epochs=steps, lr=1.0, loss="half_sse", verbose=0, reset=False)
        return net.weights

    return run


def _anynet_large(backend: str, X, T, params, steps: int):
    Xd, Td = _on(X, backend), _on(T, backend)
    weights = [W for W, _ in params]
    biases = [b for _, b in params]
    net = anynet.Network.from_weights(
        weights, biases, activation="relu", output_activation="softmax", dtype="float32", backend=backend
    )
    n = steps * BATCH

    def run():
        net.fit(Xd[:n], Td[:n], epochs=1, batch_size=BATCH, shuffle=False, lr=LARGE_LR, loss="cross_entropy", verbose=0)
        return net.layers

    return run


def _contenders(backends: list[str], xor_steps: int, large_steps: int) -> list[common.Contender]:
    W1, W2 = _seed_weights()
    rng = np.random.default_rng(0)
    n = large_steps * BATCH
    X = rng.standard_normal((n, LARGE[0])).astype(np.float32)
    T = np.eye(LARGE[-1], dtype=np.float32)[rng.integers(0, LARGE[-1], n)]
    params = [
        (rng.standard_normal((a, b)).astype(np.float32) * np.float32(np.sqrt(2 / a)), np.zeros(b, np.float32))
        for a, b in itertools.pairwise(LARGE)
    ]
    job = peers.MLPJob("sgd", LARGE_LR, BATCH, epochs=1)

    def row(name: str, build, steps: int, kind: str) -> common.Contender:
        backend = name.split()[0]
        sync = (lambda out: common.block("jax", out)) if backend == "jax" else common._no_sync
        host = lambda out: {"params": _host(out)}  # noqa: E731
        return common.Contender(name, build, steps, kind=kind, host=host, cap=False, backend=backend, sync=sync)

    rows = [
        row("numpy xor: seed loop by hand", lambda s: peers.seed_xor(XOR_X, XOR_T, W1, W2, s), xor_steps, "ref"),
        row("numpy xor: anynet", lambda s: _anynet_xor("numpy", W1, W2, s), xor_steps, "anynet"),
        row("numpy large: by hand", lambda s: peers.numpy_mlp(X, T, params, job), large_steps, "ref"),
        row("numpy large: anynet", lambda s: _anynet_large("numpy", X, T, params, s), large_steps, "anynet"),
    ]
    if "torch" in backends:
        rows += [
            row("torch xor: seed loop by hand", lambda s: peers.torch_xor(XOR_X, XOR_T, W1, W2, s), xor_steps, "ref"),
            row("torch xor: anynet", lambda s: _anynet_xor("torch", W1, W2, s), xor_steps, "anynet"),
            row("torch large: by hand", lambda s: peers.torch_mlp(X, T, params, job), large_steps, "ref"),
            row("torch large: anynet", lambda s: _anynet_large("torch", X, T, params, s), large_steps, "anynet"),
        ]
    if "jax" in backends:
        rows += [
            row("jax xor: anynet", lambda s: _anynet_xor("jax", W1, W2, s), xor_steps, "anynet"),
            row("jax large: jitted by hand", lambda s: peers.jax_mlp(X, T, params, job), large_steps, "ref"),
            row("jax large: anynet", lambda s: _anynet_large("jax", X, T, params, s), large_steps, "anynet"),
        ]
    return rows


#: each anynet row -> the hand-written row its time is divided by
PAIRS = {
    "numpy xor: anynet": "numpy xor: seed loop by hand",
    "torch xor: anynet": "torch xor: seed loop by hand",
    "jax xor: anynet": "numpy xor: seed loop by hand",
    "numpy large: anynet": "numpy large: by hand",
    "torch large: anynet": "torch large: by hand",
    "jax large: anynet": "jax large: jitted by hand",
}


def _check(row: common.Row, ref: common.Row) -> float | None:
    """Largest difference between two rows' final parameters (the seed loop's are (W1, W2))."""
    a, b = row.result.get("params"), ref.result.get("params")
    if not a or not b:
        return None
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few steps and repeats, written elsewhere")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--backends", default="numpy,torch,jax")
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b == "numpy" or common.import_optional(b) is not None]
    if "jax" in backends:
        import jax

        jax.config.update("jax_enable_x64", True)  # the XOR job is float64, as the seed's
    xor_steps, large_steps, repeats = (2000, 4, 2) if args.quick else (60000, LARGE_STEPS, args.repeats)
    common.log(f"zero-cost: {backends}, XOR {xor_steps} steps, large {large_steps} steps, {repeats} repeats")
    rows = {
        r.name: r for r in common.measure(_contenders(backends, xor_steps, large_steps), repeats=repeats, budget=1e9)
    }
    table, records = [], []
    for name, ref_name in PAIRS.items():
        row, ref = rows.get(name), rows.get(ref_name)
        if row is None or ref is None:
            continue
        backend, job = name.split(":")[0].split()
        ok = row.ok and ref.ok
        r_min = row.min / ref.min if ok else None
        r_med = row.median / ref.median if ok else None
        target = TARGETS[(backend, job)]
        diff = _check(row, ref) if ok else None
        met = ok and r_min is not None and r_min <= target
        records.append(
            {
                "backend": backend,
                "job": job,
                "anynet": name,
                "hand": ref_name,
                "anynet_min_s": row.min if row.ok else None,
                "anynet_median_s": row.median if row.ok else None,
                "hand_min_s": ref.min if ref.ok else None,
                "hand_median_s": ref.median if ref.ok else None,
                "ratio_min": r_min,
                "ratio_median": r_med,
                "target": target,
                "met": met,
                "max_weight_diff": diff,
                "status": row.status if not row.ok else ref.status,
                "reason": row.reason or ref.reason,
            }
        )
        table.append(
            [
                backend,
                job,
                ref_name.split(": ")[1],
                common.fmt_time(ref.min) if ref.ok else ref.status,
                common.fmt_time(row.min) if row.ok else row.status,
                common.fmt_ratio(r_min),
                common.fmt_ratio(r_med),
                f"≤ {target:.2f}",
                ("met" if met else "**not met**") if ok else "n/a",
                "" if diff is None else f"{diff:.1e}",
            ]
        )
    info = common.machine_info()
    fastest = {}
    for job in ("xor", "large"):
        timed = [(r["anynet_min_s"], r["backend"]) for r in records if r["job"] == job and r["anynet_min_s"]]
        if timed:
            fastest[job] = min(timed)[1]
    text = "\n".join(
        [
            "# anynet against the same job hand-written in the same library",
            "",
            *(f"- {k}: {v}" for k, v in info.items()),
            f"- repeats: {repeats}; XOR {xor_steps} full-batch steps; large MLP {large_steps} steps of batch {BATCH}",
            "",
            "Time ratios anynet ÷ hand-written (lower is faster), min and median of the repeats. JAX's XOR is "
            "against the NumPy seed loop. *diff*: the largest difference between the two rows' final weights.",
            "",
            common.table(
                [
                    "backend",
                    "job",
                    "hand-written",
                    "hand min",
                    "anynet min",
                    "× (min)",
                    "× (median)",
                    "target",
                    "result",
                    "diff",
                ],
                table,
            ),
            "",
            "Fastest anynet backend on this machine: " + "; ".join(f"{job}: {b}" for job, b in fastest.items()),
            "",
        ]
    )
    print(text)
    out = RESULTS / "quick" if args.quick else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    (out / "zero-cost.md").write_text(text)
    (out / "zero-cost.json").write_text(json.dumps({"machine": info, "rows": records, "fastest": fastest}, indent=2))
    common.log(f"wrote {out / 'zero-cost.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
