"""Data-parallel training on a Dask ``LocalCluster``: ``python benchmarks/dask_cluster.py [--quick]``.

Three measurements; the first two are each the median of ``--repeats`` timed fits after a warm-up fit:

- per-step overhead: full-batch steps of a tiny network (the seed's XOR, 3-4-1, 4 rows in 2 chunks) on
  2 worker processes, against the same fit on the lazy in-process Dask path and on NumPy;
- scaling: a 64-128-128-1 network on 500 000 x 64 float32 rows (``--quick``: 20 000), full batch,
  on 1 worker and on 2 workers (one thread each), in steps per second;
- memory: two epochs on data 1.5x one worker's ``memory_limit`` (2 GiB; ``--quick``: 400 MiB), and how
  much the client's peak memory grew meanwhile, against one chunk plus the parameters.

The rows are drawn on the workers (``dask.array.random``), so nothing large leaves this process.
Writes ``dask_cluster.md`` to ``benchmarks/results/`` (``--quick``: ``benchmarks/results/quick/``,
git-ignored, so a smoke run never overwrites the committed numbers).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import dask.array as da  # noqa: E402
from common import fmt_ratio, fmt_time, log, machine_info, table  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

import anynet  # noqa: E402

XOR_X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
XOR_T = np.array([[0], [1], [1], [0]], dtype=float)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a smoke run: small data, few steps (under a minute)")
    p.add_argument("--repeats", type=int, default=None, help="timed fits per row (default: 5; --quick 2)")
    p.add_argument("--out", type=Path, default=None, help="folder for dask_cluster.md")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    if args.out is None:
        args.out = HERE / "results" / "quick" if args.quick else HERE / "results"
    return args


def median_fit(make, X, t, epochs: int, repeats: int, **options) -> float:
    """Median seconds of ``repeats`` fits of ``epochs`` full-batch epochs, after one warm-up fit."""
    make().fit(X, t, epochs=1, verbose=0, **options)
    times = []
    for _ in range(repeats):
        net = make()
        start = time.perf_counter()
        net.fit(X, t, epochs=epochs, verbose=0, **options)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cluster(workers: int) -> tuple[LocalCluster, Client]:
    c = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    return c, Client(c, set_as_default=False)


def overhead(args) -> list[list[str]]:
    epochs = 50 if args.quick else 500
    xor = lambda: anynet.Network([3, 4, 1], seed=1)  # noqa: E731
    Xd, td = da.from_array(XOR_X, chunks=(2, 3)), da.from_array(XOR_T, chunks=(2, 1))
    log(f"per-step overhead: {epochs} full-batch steps of 3-4-1 on 4 rows")
    numpy = median_fit(lambda: anynet.Network([3, 4, 1], seed=1, backend="numpy"), XOR_X, XOR_T, epochs, args.repeats)
    lazy = median_fit(xor, Xd, td, epochs, args.repeats)
    c, client = cluster(2)
    with c, client:
        data_parallel = median_fit(xor, Xd, td, epochs, args.repeats, client=client)
    rows = []
    for name, seconds in (
        ("numpy, one process", numpy),
        ("dask, lazy, in process", lazy),
        ("dask, 2 workers", data_parallel),
    ):
        rows.append([name, fmt_time(seconds / epochs), fmt_ratio(seconds / data_parallel)])
    return rows


def scaling(args) -> list[list[str]]:
    n, epochs = (20_000, 5) if args.quick else (500_000, 20)
    log(f"scaling: {n} x 64 float32 rows, 64-128-128-1, {epochs} full-batch steps, 1 and 2 workers")
    make = lambda: anynet.Network([64, 128, 128, 1], activation="relu", output_activation="identity")  # noqa: E731
    rows, rates = [], {}
    for workers in (1, 2):
        c, client = cluster(workers)
        with c, client:
            rng = da.random.default_rng(0)
            X = rng.standard_normal((n, 64), chunks=(n // 4, 64), dtype=np.float32)
            t = X[:, :1] * X[:, 1:2]
            X, t = client.persist([X, t.rechunk({0: X.chunks[0]})])
            seconds = median_fit(make, X, t, epochs, args.repeats, client=client, loss="mse", lr=1e-3)
        rates[workers] = epochs / seconds
        rows.append([f"{workers} worker(s)", f"{rates[workers]:.2f}", fmt_ratio(rates[workers] / rates[1])])
    return rows


def memory(args) -> list[list[str]]:
    """Data 1.5x one worker's memory limit on 2 workers: the fit completes, and the client's peak
    memory grows by less than one chunk plus the parameters."""
    import resource

    limit = 400 * 2**20 if args.quick else 2 * 2**30
    n = int(1.5 * limit / (64 * 4))  # float32 rows of 64 features
    chunk_rows = n // 8
    log(f"memory: {n} x 64 float32 rows ({1.5 * limit / 2**20:.0f} MiB) on 2 workers of {limit / 2**20:.0f} MiB each")
    make = lambda: anynet.Network([64, 16, 1], activation="relu", output_activation="identity")  # noqa: E731
    c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", memory_limit=limit)
    with c, Client(c, set_as_default=False) as client:
        rng = da.random.default_rng(0)
        X = rng.standard_normal((n, 64), chunks=(chunk_rows, 64), dtype=np.float32)
        t = X[:, :1] * X[:, 1:2]
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        net = make()
        history = net.fit(X, t, epochs=2, verbose=0, client=client, loss="mse", lr=1e-3)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    bound = chunk_rows * 64 * 4 + net.n_params * 4
    return [
        ["data / one worker's limit", "1.5×"],
        ["epochs completed", f"{history.epochs} of 2"],
        ["client peak memory growth", f"{grown / 2**20:.1f} MiB"],
        ["one chunk + the parameters", f"{bound / 2**20:.1f} MiB"],
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    start = time.perf_counter()
    parts = [
        "# Data-parallel training on a Dask LocalCluster",
        "",
        f"`python benchmarks/dask_cluster.py{' --quick' if args.quick else ''}`, median of {args.repeats} fits.",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in machine_info().items()),
        "",
        "## Per-step overhead (full batch, tiny network)",
        "",
        table(["where", "per step", "× the 2-worker time"], overhead(args)),
        "",
        "## Scaling (full batch, 64-128-128-1, float32)",
        "",
        table(["cluster", "steps/s", "× 1 worker"], scaling(args)),
        "",
        "## Memory (data larger than a worker's memory limit)",
        "",
        table(["", ""], memory(args)),
        "",
    ]
    text = "\n".join(parts)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dask_cluster.md").write_text(text, encoding="utf-8")
    log(f"wrote {args.out / 'dask_cluster.md'} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
