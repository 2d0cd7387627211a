"""anynet against the seed and its peers: ``python benchmarks/run.py [--quick] [--only xor,digits,...]``.

Runs the benchmark workloads on every anynet backend and device that imports here, and on the
peers (the seed's loop, the same network by hand in NumPy/CuPy/PyTorch/JAX, PyTorch autograd,
scikit-learn), prints a table per workload with the targets judged, and writes ``RESULTS.md``,
``results.json`` and ``sweep.png`` to ``--out``. Whatever is not installed is skipped with a note.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path

# Before JAX is imported: by default it takes 75% of the GPU's memory at start, which would starve
# the CuPy and torch rows of the same run.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

HERE = Path(__file__).resolve().parent
WORKLOADS = ["xor", "digits", "large", "sweep", "memory"]
BACKENDS = ["numpy", "torch", "jax", "cupy", "dask", "array_api_strict"]


def _import_anynet() -> None:
    """Use the installed anynet; from a bare checkout, the one beside this folder."""
    try:
        import anynet
    except ImportError:
        sys.path.insert(1, str(HERE.parent))
        import anynet  # noqa: F401


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[1], prog="benchmarks/run.py")
    p.add_argument("--quick", action="store_true", help="a smoke run: small sizes, few steps (under a minute)")
    p.add_argument("--only", default=",".join(WORKLOADS), help=f"workloads to run (default: {','.join(WORKLOADS)})")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per contender (default: 5; --quick 3)")
    p.add_argument(
        "--backends",
        default=None,
        help=f"anynet backends, and peer libraries, to include (default: all that import of {','.join(BACKENDS)}; "
        "--quick leaves dask out)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="limit every library's CPU threads to N (BLAS, OpenMP, torch, XLA); default: each library's own",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where the results go (default: benchmarks/results; --quick: benchmarks/results/quick, git-ignored, "
        "so a smoke run never overwrites the committed full-run results)",
    )
    args = p.parse_args(argv)
    if args.out is None:
        args.out = HERE / "results" / "quick" if args.quick else HERE / "results"
    args.only = [w.strip() for w in args.only.split(",") if w.strip()]
    bad = [w for w in args.only if w not in WORKLOADS]
    if bad:
        p.error(f"unknown workload(s) {bad}; expected some of {WORKLOADS}")
    if args.backends is not None:
        wanted = [b.strip() for b in args.backends.split(",") if b.strip()]
    else:  # Dask runs the core through a task graph, about 0.1 s a step: too slow for a smoke run
        wanted = [b for b in BACKENDS if not (args.quick and b == "dask")]
    bad = [b for b in wanted if b not in BACKENDS]
    if bad:
        p.error(f"unknown backend(s) {bad}; expected some of {BACKENDS}")
    args.wanted, args.explicit = wanted, args.backends is not None
    if args.repeats is not None and args.repeats < 1:
        p.error("--repeats must be at least 1")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be at least 1")
    return args


def limit_threads(n: int) -> None:
    """Before any array library loads: N threads for OpenBLAS/MKL/OpenMP (this process and the memory
    children) and for XLA's CPU client; torch is told again once imported."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
        os.environ[var] = str(n)
    flags = f"--xla_cpu_multi_thread_eigen={'true' if n > 1 else 'false'} intra_op_parallelism_threads={n}"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()


def make_env(args: argparse.Namespace):
    """Which backends, devices and peer libraries this run gets; what is missing becomes a note."""
    from common import gpu_name, import_optional, log
    from workloads import FULL, QUICK, Env

    import anynet.backend as B

    plan = QUICK if args.quick else FULL
    if args.repeats is not None:
        plan = replace(plan, repeats=args.repeats, sweep_repeats=min(plan.sweep_repeats, args.repeats))
    notes: list[str] = []
    if "jax" in args.wanted and import_optional("jax") is not None:
        import jax

        # float64 for the seed's job, as the seed computes; full float32 matmuls (no TF32) on GPUs,
        # as CuPy and torch do by default, so every library does the same arithmetic.
        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_default_matmul_precision", "highest")
    backends: dict[str, list[str]] = {}
    for name in args.wanted:
        try:
            found = B.devices(name)
        except Exception as exc:  # noqa: BLE001 - not installed or broken: skip it and say so
            notes.append(f"anynet {name} skipped: {str(exc).splitlines()[0][:160]}")
            continue
        cuda = [d for d in found if d.startswith("cuda")][:1]
        devices = (["cpu"] if "cpu" in found or name == "array_api_strict" else []) + cuda
        if name == "array_api_strict":
            devices = ["CPU_DEVICE"] if "CPU_DEVICE" in found else found[:1]
        if not devices:
            notes.append(f"anynet {name} skipped: no device (CuPy needs a CUDA GPU)")
            continue
        backends[name] = devices
    if args.quick and "jax" in backends:
        notes.append("--quick leaves out the eager anynet jax rows (each op compiles per shape); the compiled ones run")
    if any(d.startswith("cuda") for d in backends.get("torch", [])):
        import torch

        # IEEE float32 matmuls, as CuPy does by default and JAX does at "highest": no TF32 anywhere.
        was = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("highest")
        torch.backends.cudnn.allow_tf32 = False
        if was != "highest":
            notes.append(f"torch's float32 matmul precision was {was!r}; set to 'highest' (no TF32) for this run")
    if os.environ.get("CUPY_TF32", "0") != "0":
        notes.append("CUPY_TF32 is set: CuPy may multiply float32 in TF32, unlike the other libraries here")
    libs = {lib for lib in ("torch", "jax", "cupy") if lib in backends}
    for lib, why in (("sklearn", "scikit-learn"), ("matplotlib", "matplotlib")):
        if import_optional(lib) is not None:
            libs.add(lib)
        else:
            notes.append(f"{why} is not installed: its rows (or the plot) are skipped")
    cpu = _cpu_short()
    gpu = gpu_name() if any(d.startswith("cuda") for ds in backends.values() for d in ds) else None
    machine = f"{cpu}, {os.cpu_count()} cores" + (f", {gpu}" if gpu else "")
    for n in notes:
        log(f"note: {n}")
    return Env(plan=plan, quick=args.quick, backends=backends, libs=libs, machine=machine, notes=notes)


def _load() -> str:
    """The 1/5/15-minute load averages, and a warning when other work was competing for the cores."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    busy = " (busy: other processes were competing for the cores, so times are noisy)"
    return f"{one:.1f}, {five:.1f}, {fifteen:.1f}" + (busy if one > 0.5 * (os.cpu_count() or 1) else "")


def _cpu_short() -> str:
    from common import machine_info

    return machine_info()["cpu"]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.threads is not None:
        limit_threads(args.threads)
    _import_anynet()
    sys.path.insert(0, str(HERE))
    from common import log, machine_info, table
    from memory import memory
    from report import targets_table, write_json, write_markdown
    from sweep import sweep
    from workloads import digits, large, xor

    start = time.perf_counter()
    env = make_env(args)
    if args.threads is not None and "torch" in env.libs:
        import torch

        torch.set_num_threads(args.threads)
    machine = machine_info()
    machine["threads"] = str(args.threads) if args.threads else "each library's default"
    machine["load average at start"] = _load()
    print(table(["machine", ""], [[k, str(v)] for k, v in machine.items()]))
    print()
    print(
        "anynet backends: " + ", ".join(f"{k} ({', '.join(v)})" for k, v in env.backends.items()),
        "| peers: " + ", ".join(sorted(env.libs | {"numpy"})),
    )
    print()
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = {
        "xor": lambda: [xor(env)],
        "digits": lambda: [digits(env)],
        "large": lambda: [large(env, gpu=False), large(env, gpu=True)],
        "sweep": lambda: [sweep(env, args.out)],
        "memory": lambda: [memory(env)],
    }
    outcomes = []
    for key in args.only:
        t0 = time.perf_counter()
        log(f"== {key}")
        try:
            done = [o for o in jobs[key]() if o is not None]
        except Exception:  # noqa: BLE001 - one broken workload must not lose the others' numbers
            text = traceback.format_exc()
            log(text)
            env.notes.append(f"workload {key} failed: {text.strip().splitlines()[-1]}")
            continue
        for outcome in done:
            print(outcome.render())
            print()
        outcomes += done
        log(f"   {key} took {time.perf_counter() - t0:.1f} s")
    elapsed = time.perf_counter() - start
    machine["load average at end"] = _load()
    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/run.py", *(argv or sys.argv[1:])])
    if args.quick:
        env.notes.insert(
            0,
            "a --quick run does a fraction of each job, so fixed per-call costs (fit's set-up, a compiled loop's "
            "launch) weigh more than in the real job: judge the targets on a full run",
        )
    if any(o.targets for o in outcomes):
        print("### Targets\n")
        print(targets_table(outcomes))
        print()
    if env.notes:
        print("\n".join(f"note: {n}" for n in env.notes))
    write_markdown(
        args.out / "RESULTS.md", machine=machine, command=command, elapsed=elapsed, outcomes=outcomes, notes=env.notes
    )
    write_json(args.out / "results.json", machine=machine, command=command, outcomes=outcomes, notes=env.notes)
    print(f"\nwrote {args.out / 'RESULTS.md'} and results.json in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
