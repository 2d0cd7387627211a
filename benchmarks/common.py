"""Timing for the benchmarks: warm up, interleave the contenders, min and median of repeats, sync GPUs.

A contender is one row of a table. ``build(steps)`` does the untimed setup (a fresh network, data on
the device) and returns the thunk the clock measures; ``sync`` runs inside the timed region, so queued
GPU work is finished before the clock stops (scipy ``benchmarks/common.py``).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: errors that mean "this row does not apply here" (an engine that is not there yet, or has no
#: compiled path on this backend) rather than a bug: the row reads n/a and the run goes on
NOT_APPLICABLE = (TypeError, ValueError, NotImplementedError)


def log(*parts: object) -> None:
    """Progress for the person waiting, on stderr; the tables go to stdout."""
    print(*parts, file=sys.stderr, flush=True)


def _no_sync(result: Any) -> None:
    return None


@dataclass
class Contender:
    """One row: ``build(steps)`` -> the timed thunk, whose result ``sync`` waits for and ``host`` reads."""

    name: str
    build: Callable[[int], Callable[[], Any]]
    #: the full work in steps (epochs or batches); every row's time is also shown per step
    steps: int
    #: "ref" (the row ratios are taken against), "anynet", or "peer"
    kind: str = "peer"
    sync: Callable[[Any], None] = _no_sync
    #: untimed, after the repeats: the last result -> host values (weights, accuracy) for checks
    host: Callable[[Any], dict] | None = None
    #: a slow row may run fewer steps than ``steps`` so that one run stays within the time budget
    cap: bool = True
    #: the fit(engine=...) this row asks for, None for the default (anynet rows only)
    engine: str | None = None
    backend: str = ""
    device: str = ""


@dataclass
class Row:
    """What the clock saw for one contender."""

    name: str
    kind: str
    steps: int = 0
    times: list[float] = field(default_factory=list)
    status: str = "ok"  # "ok", "n/a" or "error"
    reason: str = ""
    result: dict = field(default_factory=dict)
    engine: str | None = None
    backend: str = ""
    device: str = ""
    last: Any = None

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.times)

    @property
    def min(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def per_step(self, stat: str = "min") -> float:
        return (self.min if stat == "min" else self.median) / self.steps


def _short(exc: BaseException, limit: int = 110) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _round_down(n: int) -> int:
    """Two significant digits, so capped step counts read as 1200 rather than 1237."""
    if n < 100:
        return n
    scale = 10 ** (len(str(n)) - 2)
    return n // scale * scale


def _run_once(c: Contender, steps: int) -> tuple[float, Any]:
    thunk = c.build(steps)
    gc.collect()
    start = time.perf_counter()
    out = thunk()
    c.sync(out)
    return time.perf_counter() - start, out


def _prepare(c: Contender, budget: float, min_steps: int) -> int:
    """Warm up (imports, jit compiles, caches) and pick the step count a timed run will use.

    A row that may be capped is probed on a few steps first: the first probe warms it up, the second
    gives its cost per step. If the first probe was much slower (a compile), the row is warmed again
    at the final step count, since a jitted loop specialises on its length.
    """
    if not c.cap:
        _run_once(c, c.steps)
        return c.steps
    probe = min(c.steps, min_steps)
    first, _ = _run_once(c, probe)
    second, _ = _run_once(c, probe)
    per = max(second, 1e-9) / probe
    steps = c.steps if per * c.steps <= budget else max(probe, _round_down(int(budget / per)))
    if steps != probe and first > 2 * second:
        _run_once(c, steps)
    return steps


def measure(
    contenders: Sequence[Contender], *, repeats: int, budget: float, min_steps: int = 10, verbose: bool = True
) -> list[Row]:
    """Warm every contender up, then time ``repeats`` rounds, each running every contender once.

    The order rotates from round to round, so that no row always runs right after the same
    neighbour (thread pools spinning down, caches, turbo). A row whose setup raises one of
    ``NOT_APPLICABLE`` reads n/a; any other exception reads error; neither stops the run.
    """
    # Move what exists now (the libraries: torch, JAX and scikit-learn make ~0.3 s of it) out of the
    # collector's reach, so that the collection before each timed run only sees that run's garbage.
    gc.collect()
    gc.freeze()
    rows = {
        c.name: Row(c.name, c.kind, c.steps, engine=c.engine, backend=c.backend, device=c.device) for c in contenders
    }
    live: list[Contender] = []
    for c in contenders:
        row = rows[c.name]
        start = time.perf_counter()
        try:
            row.steps = _prepare(c, budget, min_steps)
        except NOT_APPLICABLE as exc:
            row.status, row.reason = "n/a", _short(exc)
        except Exception as exc:  # noqa: BLE001 - a broken row is reported, the others still run
            row.status, row.reason = "error", _short(exc)
        else:
            live.append(c)
        if verbose:
            log(f"    warm-up {time.perf_counter() - start:5.1f} s  {c.name}" + (f": {row.status}" * (not row.ok)))
    for r in range(repeats):
        k = r % len(live) if live else 0
        order = live[k:] + live[:k]
        if r % 2:
            order.reverse()
        for c in order:
            row = rows[c.name]
            if row.status != "ok":
                continue
            try:
                elapsed, row.last = _run_once(c, row.steps)
            except Exception as exc:  # noqa: BLE001
                row.status, row.reason = "error", _short(exc)
                continue
            row.times.append(elapsed)
    for c in contenders:
        row = rows[c.name]
        if row.ok and c.host is not None:
            try:
                row.result = c.host(row.last)
            except Exception as exc:  # noqa: BLE001
                row.status, row.reason = "error", "reading the result back: " + _short(exc)
        row.last = None
    return [rows[c.name] for c in contenders]


# --------------------------------------------------------------------------- GPUs


def block(backend: str, arrays: Any = None) -> None:
    """Wait until the device work behind ``arrays`` is done: JAX by its arrays, CuPy/torch by stream."""
    if backend == "jax":
        import jax

        jax.block_until_ready(arrays)
        return
    if backend in ("cupy", "torch"):
        import anynet.backend

        anynet.backend.synchronize(backend)


def import_optional(name: str) -> Any | None:
    """The module, or None when it is not installed (or fails to import) here."""
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - a broken install counts as absent
        return None


# --------------------------------------------------------------------------- tables


def fmt_time(seconds: float) -> str:
    if seconds >= 100:
        return f"{seconds:.0f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} µs"


def fmt_ratio(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "—"
    return f"{x:.3f}×" if x < 0.1 else f"{x:.2f}×"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown pipe table with padded columns: it reads the same in a terminal and on GitHub."""
    cells = [list(map(str, headers)), *[list(map(str, r)) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


# --------------------------------------------------------------------------- the machine


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                return text.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _memory() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for text in Path("/proc/meminfo").read_text().splitlines():
            if text.startswith("MemTotal"):
                return f"{int(text.split()[1]) / 2**20:.1f} GiB"
    return "unknown"


def _blas() -> str:
    """NumPy's BLAS: library, version, threads, kernel architecture (threadpoolctl, else numpy's config)."""
    tpc = import_optional("threadpoolctl")
    if tpc is not None:
        with contextlib.suppress(Exception):
            infos = [i for i in tpc.threadpool_info() if i.get("user_api") == "blas"]
            mine = [i for i in infos if "numpy" in str(i.get("filepath", ""))] or infos
            if mine:
                i = mine[0]
                arch = f", {i['architecture']}" if i.get("architecture") else ""
                return f"{i['internal_api']} {i.get('version') or ''} ({i['num_threads']} threads{arch})".replace(
                    "  ", " "
                )
    with contextlib.suppress(Exception):
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{deps.get('name', '?')} {deps.get('version', '')} (np.show_config)".strip()
    return "unknown"


def gpu_name() -> str | None:
    """The first CUDA device's name, from whichever of torch and CuPy sees it; None without one."""
    torch = import_optional("torch")
    if torch is not None:
        with contextlib.suppress(Exception):
            if torch.cuda.is_available():
                return torch.cuda.get_device_name(0)
    cupy = import_optional("cupy")
    if cupy is not None:
        with contextlib.suppress(Exception):
            name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
            return name.decode() if isinstance(name, bytes) else str(name)
    return None


DISTRIBUTIONS = {
    "numpy": ["numpy"],
    "array-api-compat": ["array-api-compat"],
    "torch": ["torch"],
    "jax": ["jax"],
    "jaxlib": ["jaxlib"],
    "cupy": ["cupy", "cupy-cuda12x", "cupy-cuda13x", "cupy-cuda11x"],
    "scikit-learn": ["scikit-learn"],
    "dask": ["dask"],
    "array-api-strict": ["array-api-strict"],
    "matplotlib": ["matplotlib"],
    "threadpoolctl": ["threadpoolctl"],
}


def versions() -> dict[str, str]:
    """Installed versions, read from package metadata (nothing is imported for it)."""
    found: dict[str, str] = {}
    for label, dists in DISTRIBUTIONS.items():
        for dist in dists:
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                found[label] = importlib.metadata.version(dist)
                break
    for label, module in (("array-api-compat", "array_api_compat"), ("cupy", "cupy")):
        if label not in found and module in sys.modules:  # on sys.path without package metadata
            found[label] = getattr(sys.modules[module], "__version__", "?")
    import anynet

    found["anynet"] = getattr(anynet, "__version__", "?")
    return found


def _git() -> str:
    """The commit of this checkout (``ANYNET_COMMIT`` where the tree is a copy without its own git, as
    on a GPU machine it was copied to); "unknown" when the git found is not this checkout's."""
    if os.environ.get("ANYNET_COMMIT"):
        return os.environ["ANYNET_COMMIT"]
    with contextlib.suppress(Exception):
        top = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--show-toplevel"], capture_output=True, text=True, timeout=10
        )
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != ROOT.resolve():
            return "unknown"
        rev = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if rev.returncode == 0:
            return rev.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")
    return "unknown"


def machine_info() -> dict[str, str]:
    """Where the numbers came from: CPU, cores, memory, BLAS, GPU, versions, date, commit."""
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    info = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": f"{cores} logical ({usable} usable by this process)",
        "memory": _memory(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "numpy BLAS": _blas(),
        "gpu": gpu_name() or "none",
        "anynet commit": _git(),
    }
    info["versions"] = ", ".join(f"{k} {v}" for k, v in versions().items())
    return info


def write_results(out: Path, stem: str, title: str, intro: list[str], body: list[str], data: dict) -> str:
    """``<out>/<stem>.md`` (the title, the intro lines, the body, the machine) and ``<stem>.json``
    (``data`` and the machine); returns the text written to the ``.md``."""
    info = machine_info()
    text = "\n".join([f"# {title}", "", *intro, "", *body, "", *[f"- {k}: {v}" for k, v in info.items()]]) + "\n"
    (out / f"{stem}.md").write_text(text, encoding="utf-8")
    (out / f"{stem}.json").write_text(json.dumps(data | {"machine": info}, indent=2) + "\n", encoding="utf-8")
    return text
