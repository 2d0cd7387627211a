"""Many networks at once: ``anynet.Ensemble`` against one network, on the seed's XOR job.

    python benchmarks/ensemble.py [--quick] [--backends numpy,torch,jax] [--members 1,4,16,64,256]

Each row trains the seed's 3-4-1 sigmoid network on XOR, full batch, for ``--steps`` epochs: one
``Network`` (the default engine), and ``Ensemble``s of 1 to 256 members. The table gives each time and
its ratio to one network; the target is 64 members in at most 4x the time of one. Members one
after another would take ``members`` times one network. A plot of time against members per backend
goes beside the table. A full run writes to benchmarks/results/; ``--quick`` (a few hundred steps, a
smoke test) writes to benchmarks/results/quick/, which git ignores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import (  # noqa: E402
    Contender,
    block,
    fmt_ratio,
    fmt_time,
    import_optional,
    log,
    measure,
    table,
    write_results,
)

import anynet  # noqa: E402

XOR_X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
XOR_T = np.array([[0, 1, 1, 0]], dtype=float).T
SIZES = [3, 4, 1]
TARGET_MEMBERS, TARGET_RATIO = 64, 4.0


def _network(backend: str, steps: int):
    net = anynet.Network(SIZES, seed=1, backend=backend, dtype="float64")
    X, T = net.spec.put(XOR_X), net.spec.put(XOR_T)

    def run():
        net.fit(X, T, epochs=steps, verbose=0, reset=True)
        return net.layers

    return run


def _ensemble(backend: str, members: int, steps: int):
    ens = anynet.Ensemble(SIZES, members=members, seed=1, backend=backend, dtype="float64")
    X, T = ens.spec.put(XOR_X), ens.spec.put(XOR_T)

    def run():
        ens.fit(X, T, epochs=steps, verbose=0, reset=True)
        return ens.layers

    return run


def contenders(backend: str, members: list[int], steps: int) -> list[Contender]:
    rows = [
        Contender(
            f"{backend}: one Network",
            lambda s, b=backend: _network(b, s),
            steps,
            kind="ref",
            sync=lambda out, b=backend: block(b, out),
            cap=False,
            backend=backend,
        )
    ]
    for k in members:
        rows.append(
            Contender(
                f"{backend}: Ensemble of {k}",
                lambda s, b=backend, k=k: _ensemble(b, k, s),
                steps,
                kind="anynet",
                sync=lambda out, b=backend: block(b, out),
                cap=False,
                backend=backend,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run: 300 steps, 1 repeat, fewer member counts")
    p.add_argument("--backends", default=None, help="comma list (default: numpy, torch and jax where installed)")
    p.add_argument("--members", default=None, help="member counts, comma list (default: 1,4,16,64,256)")
    p.add_argument("--steps", type=int, default=None, help="full-batch epochs per run (default: 20000; --quick 300)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per row (default: 3; --quick 1)")
    p.add_argument("--out", type=Path, default=None, help="results folder (default: results/, --quick: results/quick/)")
    args = p.parse_args(argv)
    steps = args.steps or (300 if args.quick else 20000)
    repeats = args.repeats or (1 if args.quick else 3)
    members = [int(m) for m in (args.members or ("1,16,64" if args.quick else "1,4,16,64,256")).split(",")]
    if TARGET_MEMBERS not in members:
        members.append(TARGET_MEMBERS)
    wanted = args.backends.split(",") if args.backends else ["numpy", "torch", "jax"]
    backends = [b for b in wanted if b == "numpy" or import_optional(b) is not None]
    out = args.out or (HERE / "results" / "quick" if args.quick else HERE / "results")
    out.mkdir(parents=True, exist_ok=True)
    if "jax" in backends:
        import jax

        jax.config.update("jax_enable_x64", True)

    results: dict[str, dict] = {}
    lines = []
    verdicts = []
    for backend in backends:
        log(f"{backend}: {steps} full-batch steps, members {members}")
        rows = measure(contenders(backend, members, steps), repeats=repeats, budget=float("inf"))
        one = rows[0]
        per = {}
        for row in rows:
            ratio = row.min / one.min if row.ok and one.ok else None
            k = 1 if row.kind == "ref" else int(row.name.rsplit(" ", 1)[1])
            sequential = k * one.min if one.ok else None
            speedup = sequential / row.min if row.ok and sequential else None
            lines.append(
                [
                    row.name,
                    fmt_time(row.min) if row.ok else row.status,
                    fmt_ratio(ratio),
                    "" if row.kind == "ref" else fmt_ratio(speedup),
                ]
            )
            if row.kind != "ref":
                per[k] = {"seconds": row.min if row.ok else None, "ratio_to_one": ratio}
        results[backend] = {"one_network_seconds": one.min if one.ok else None, "members": per}
        at = per.get(TARGET_MEMBERS, {}).get("ratio_to_one")
        if at is not None:
            met = "met" if at <= TARGET_RATIO else "missed"
            target = f"target ≤ {TARGET_RATIO:g}x"
            verdicts.append(f"{backend}: {TARGET_MEMBERS} members in {at:.2f}x one network's time ({met}; {target})")

    head = ["row", "time", "÷ one network", "speed-up over one after another"]
    text = write_results(
        out,
        "ensemble",
        "Ensembles: many networks at once",
        [
            f"The seed's XOR network ({'-'.join(map(str, SIZES))}, sigmoid), {steps} full-batch steps, "
            f"best of {repeats}.",
            "" if not args.quick else "A --quick smoke run: too few steps for the ratios to mean much.",
        ],
        [table(head, lines), "", *[f"- {v}" for v in verdicts]],
        {"steps": steps, "repeats": repeats, "results": results},
    )
    _plot(results, out / "ensemble-sweep.png", steps)
    print(text)
    return 0


def _plot(results: dict, path: Path, steps: int) -> None:
    if import_optional("matplotlib") is None:
        log("no matplotlib: no sweep plot")
        return
    from matplotlib.figure import Figure

    ax = Figure(figsize=(6, 4), layout="constrained").add_subplot()
    for backend, res in results.items():
        ks = sorted(k for k, v in res["members"].items() if v["seconds"] is not None)
        if ks:
            ax.plot(ks, [res["members"][k]["seconds"] for k in ks], marker="o", label=f"{backend}: Ensemble")
        if res["one_network_seconds"]:
            ax.plot(
                ks, [k * res["one_network_seconds"] for k in ks], linestyle=":", label=f"{backend}: one after another"
            )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("members")
    ax.set_ylabel(f"seconds for {steps} steps")
    ax.set_title("XOR: members trained at once vs one after another")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.figure.savefig(path, dpi=120)


if __name__ == "__main__":
    raise SystemExit(main())
