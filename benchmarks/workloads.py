"""The workloads: the seed's XOR job, digits against scikit-learn, a large MLP, and (in ``sweep.py`` and
``memory.py``) how cost and memory grow. Each builds its contenders, times them together, checks
that the fast rows computed the same thing, and judges the issue's targets.

anynet rows use only the public API: ``anynet.Network(...).fit(..., verbose=0)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import peers
from common import Contender, Row, block, fmt_ratio, fmt_time, measure, table
from peers import MLPJob

import anynet

#: the seed's data: int inputs whose last column is the constant 1 that plays the bias, and targets
XOR_X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
XOR_T = np.array([[0, 1, 1, 0]]).T

#: which fit(engine=...) each backend's rows ask for; None is the default ("auto"), passed as nothing
ENGINES: dict[str, list[str | None]] = {
    "numpy": [None, "reference"],
    "cupy": [None, "reference"],
    "jax": [None, "reference"],
    "torch": [None, "reference"],
    "dask": [None],
    "array_api_strict": [None],
}


@dataclass(frozen=True)
class Plan:
    """How much work each workload does: ``QUICK`` is a smoke run, ``FULL`` the issue's numbers."""

    repeats: int
    xor_epochs: int
    xor_budget: float
    digits_epochs: int
    large_steps: int
    large_gpu_steps: int
    budget: float
    sweep_batches: tuple[int, ...]
    sweep_widths: tuple[int, ...]
    sweep_width0: int
    sweep_batch0: int
    sweep_gpu_batches: tuple[int, ...]
    sweep_gpu_widths: tuple[int, ...]
    sweep_steps: int
    sweep_budget: float
    sweep_repeats: int
    memory_rows: tuple[int, ...]
    memory_gpu_rows: tuple[int, ...]


FULL = Plan(
    repeats=5,
    xor_epochs=60000,
    xor_budget=15.0,
    digits_epochs=60,
    large_steps=48,
    large_gpu_steps=48,
    budget=10.0,
    sweep_batches=(8, 16, 32, 64, 128, 256, 512, 1024, 2048),
    sweep_widths=(32, 64, 128, 256, 512, 1024, 2048, 4096),
    sweep_width0=1024,
    sweep_batch0=256,
    sweep_gpu_batches=(16, 64, 256, 1024, 4096, 16384),
    sweep_gpu_widths=(64, 256, 1024, 4096, 8192),
    sweep_steps=32,
    sweep_budget=0.5,
    sweep_repeats=3,
    memory_rows=(16384, 131072, 262144),
    memory_gpu_rows=(65536, 262144, 524288),
)

QUICK = Plan(
    repeats=3,
    xor_epochs=1000,
    xor_budget=0.15,
    digits_epochs=3,
    large_steps=4,
    large_gpu_steps=8,
    budget=0.3,
    sweep_batches=(16, 128, 512),
    sweep_widths=(128, 512, 1024),
    sweep_width0=512,
    sweep_batch0=128,
    sweep_gpu_batches=(64, 1024, 16384),
    sweep_gpu_widths=(256, 1024, 4096),
    sweep_steps=4,
    sweep_budget=0.05,
    sweep_repeats=2,
    memory_rows=(8192, 32768),
    memory_gpu_rows=(32768, 131072),
)


@dataclass
class Env:
    """What this run may use: anynet backends with their devices, peer libraries, and the plan."""

    plan: Plan
    quick: bool
    #: anynet backend -> devices to run it on, e.g. {"torch": ["cpu", "cuda:0"]}
    backends: dict[str, list[str]]
    #: peer libraries that import here: "torch", "jax", "cupy", "sklearn", "matplotlib"
    libs: set[str]
    #: one line naming the machine, for plot titles
    machine: str = ""
    notes: list[str] = field(default_factory=list)

    def has(self, lib: str, device: str = "cpu") -> bool:
        """Whether ``lib`` runs here on ``device`` (torch/jax/cupy also need to be asked for in --backends)."""
        if lib == "sklearn":
            return "sklearn" in self.libs
        return lib in self.libs and device in self.backends.get(lib, [])

    @property
    def gpu(self) -> str | None:
        """The CUDA device some backend can use, or None."""
        for devs in self.backends.values():
            for d in devs:
                if d.startswith("cuda"):
                    return d
        return None


@dataclass
class Target:
    """One of the issue's targets, judged on this run."""

    number: int
    text: str
    measured: str
    status: str  # PASS, FAIL or n/a


@dataclass
class Outcome:
    """One workload's result: the table as printed, the targets it judged, and the raw rows."""

    key: str
    title: str
    setup: str
    headers: list[str]
    lines: list[list[str]]
    rows: list[Row]
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def render(self) -> str:
        out = [f"### {self.title}", "", self.setup, "", table(self.headers, self.lines)]
        if self.targets:
            out += ["", *(f"- target {t.number}: {t.text}: {t.measured} → **{t.status}**" for t in self.targets)]
        if self.notes:
            out += ["", *(f"- {n}" for n in self.notes)]
        return "\n".join(out)


# --------------------------------------------------------------------------- shared pieces


def _label(backend: str, device: str, engine: str | None) -> str:
    where = f" {device}" if backend in ("torch", "jax") else ""
    return f"anynet {backend}{where} ({engine or 'auto'})"


def _anynet_rows(env: Env, *, gpu: bool | None) -> list[tuple[str, str, str | None]]:
    """(backend, device, engine) for every anynet row: ``gpu`` True for CUDA devices only, False for
    CPU only, None for both."""
    out = []
    for backend, devices in env.backends.items():
        for device in devices:
            on_gpu = device.startswith("cuda")
            if gpu is not None and on_gpu != gpu:
                continue
            for engine in ENGINES.get(backend, [None]):
                # Eager JAX compiles every op for every new shape: seconds of warm-up per workload.
                if env.quick and backend == "jax" and engine is None:
                    continue
                out.append((backend, device, engine))
    return out


def _may_cap(backend: str, engine: str | None) -> bool:
    """Rows the targets are judged on run the full job; so does a compiled path, which is fast or
    else should be seen to be slow. Eager rows of the other backends may be cut to the time budget."""
    return backend not in ("numpy", "cupy") and engine != "compiled"


def _place(a: np.ndarray, backend: str, device: str) -> Any:
    """A host array as ``backend``'s array on ``device``: the data a GPU user already has there."""
    import anynet.backend as B

    return B.from_numpy(a, backend, B.native_device(backend, device))


def _fit_options(engine: str | None, **options: Any) -> dict:
    if engine is not None:
        options["engine"] = engine
    return options | {"verbose": 0}


def _host_params(params: Any) -> list[np.ndarray]:
    """Any library's ``[(W, b), ...]`` (or ``(W1, W2)``) as a flat list of float64 host arrays."""
    flat = []
    for p in params:
        flat += [anynet.to_numpy(q) for q in p] if isinstance(p, (list, tuple)) else [anynet.to_numpy(p)]
    return [np.asarray(a, dtype=np.float64) for a in flat]


def _net_params(net: anynet.Network) -> list[np.ndarray]:
    if net.biases:
        return _host_params(list(zip(net.weights, net.biases, strict=True)))
    return _host_params(net.weights)


def _lib_sync(lib: str) -> Callable[[Any], None]:
    return lambda result: block(lib, result)


def _ratio(row: Row, ref: Row | None, stat: str = "min") -> float | None:
    if ref is None or not row.ok or not ref.ok:
        return None
    return row.per_step(stat) / ref.per_step(stat)


def _status_cell(row: Row) -> str:
    return row.status if row.status == "n/a" else "ERROR"


class Checker:
    """Compares each row's final parameters with the reference's after the same number of steps,
    running the reference again (untimed) when a slow row was capped to fewer steps."""

    def __init__(self, ref: Contender, ref_row: Row, tol: float, relative: bool) -> None:
        self.ref, self.tol, self.relative = ref, tol, relative
        self.cache: dict[int, list[np.ndarray]] = {}
        if ref_row.ok and "params" in ref_row.result:
            self.cache[ref_row.steps] = ref_row.result["params"]

    def reference(self, steps: int) -> list[np.ndarray]:
        if steps not in self.cache:
            out = self.ref.build(steps)()
            self.ref.sync(out)
            self.cache[steps] = self.ref.host(out)["params"]
        return self.cache[steps]

    def __call__(self, row: Row) -> tuple[bool | None, str]:
        if not row.ok or "params" not in row.result:
            return None, "—"
        if row.kind == "ref":
            return True, "ref"
        try:
            want = self.reference(row.steps)
        except Exception as exc:  # noqa: BLE001
            return None, f"ref failed: {type(exc).__name__}"
        got = row.result["params"]
        if len(got) != len(want) or any(g.shape != w.shape for g, w in zip(got, want, strict=False)):
            return False, "WRONG shapes"
        if self.relative:
            # All parameters together: a bias vector alone can be near zero, so its own relative
            # error measures cancellation in its batch sum rather than a wrong step.
            diff = math.sqrt(sum(float(np.sum((g - w) ** 2)) for g, w in zip(got, want, strict=True)))
            err = diff / max(math.sqrt(sum(float(np.sum(w**2)) for w in want)), 1e-30)
        else:
            err = max(float(np.max(np.abs(g - w))) for g, w in zip(got, want, strict=True))
        ok = bool(np.isfinite(err) and err <= self.tol)
        return ok, f"{'ok' if ok else 'WRONG'} {err:.0e}"


def _find(rows: list[Row], name: str) -> Row | None:
    return next((r for r in rows if r.name == name), None)


# --------------------------------------------------------------------------- XOR


def xor(env: Env) -> Outcome:
    """The seed's job: 3-4-1 sigmoid net without biases, full batch, lr 1, ½Σ(y−t)², float64."""
    plan = env.plan
    E = plan.xor_epochs
    start = anynet.Network([3, 4, 1], bias=False, activation="sigmoid", dtype="float64")
    W1, W2 = (np.array(anynet.to_numpy(W), dtype=np.float64) for W in start.weights)
    X, t = XOR_X, XOR_T
    params_host = lambda out: {"params": _host_params(out)}  # noqa: E731

    cs = [
        Contender(
            "seed: raw NumPy loop (int X)",
            lambda s: peers.seed_xor(X, t, W1, W2, s),
            E,
            kind="ref",
            cap=False,
            host=params_host,
        ),
        Contender(
            "seed loop via array_api_compat.numpy",
            lambda s: peers.compat_seed_xor(X, t, W1, W2, s),
            E,
            cap=False,
            host=params_host,
        ),
    ]

    def anynet_xor(backend: str, device: str, engine: str | None) -> Contender:
        def build(steps: int):
            net = anynet.Network(
                [3, 4, 1], bias=False, activation="sigmoid", dtype="float64", backend=backend, device=device
            )
            options = _fit_options(engine, epochs=steps, lr=1.0, loss="half_sse")

            def run():
                net.fit(X, t, **options)
                return net

            return run

        return Contender(
            _label(backend, device, engine),
            build,
            E,
            kind="anynet",
            sync=lambda net: block(backend, net.weights),
            host=lambda net: {"params": _net_params(net)},
            cap=_may_cap(backend, engine),
            engine=engine,
            backend=backend,
            device=device,
        )

    cs += [anynet_xor(*r) for r in _anynet_rows(env, gpu=None)]
    for device in ("cpu", env.gpu):
        if device is None:
            continue
        if env.has("torch", device):
            cs.append(
                Contender(
                    f"torch {device}: hand-written backprop",
                    lambda s, d=device: peers.torch_xor(X, t, W1, W2, s, device=d),
                    E,
                    sync=_lib_sync("torch"),
                    host=params_host,
                )
            )
            cs.append(
                Contender(
                    f"torch {device}: autograd + optim.SGD",
                    lambda s, d=device: peers.torch_autograd_xor(X, t, W1, W2, s, device=d),
                    E,
                    sync=_lib_sync("torch"),
                    host=params_host,
                )
            )
        if env.has("jax", device):
            jdev = _jax_device(device)
            cs.append(
                Contender(
                    f"jax {device}: jitted step, Python loop",
                    lambda s, d=jdev: peers.jax_xor(X, t, W1, W2, s, device=d),
                    E,
                    sync=_lib_sync("jax"),
                    host=params_host,
                )
            )
            cs.append(
                Contender(
                    f"jax {device}: whole loop in lax.fori_loop",
                    lambda s, d=jdev: peers.jax_xor(X, t, W1, W2, s, device=d, whole_loop=True),
                    E,
                    sync=_lib_sync("jax"),
                    host=params_host,
                    cap=False,
                )
            )
        if device != "cpu" and env.has("cupy", device):
            cs.append(
                Contender(
                    "cupy: hand-written seed loop",
                    lambda s: peers.cupy_xor(X, t, W1, W2, s),
                    E,
                    sync=_lib_sync("cupy"),
                    host=params_host,
                )
            )

    rows = measure(cs, repeats=plan.repeats, budget=plan.xor_budget, min_steps=min(E, 10))
    ref = rows[0]
    check = Checker(cs[0], ref, tol=1e-6, relative=False)
    lines, checks = [], {}
    for row in rows:
        if not row.ok:
            lines.append([row.name, _status_cell(row), row.reason, "", "", "", "", ""])
            continue
        ok, text = check(row)
        checks[row.name] = ok
        lines.append(
            [
                row.name,
                str(row.steps),
                fmt_time(row.min),
                fmt_time(row.median),
                f"{row.per_step() * 1e6:.2f}",
                fmt_ratio(_ratio(row, ref)),
                fmt_ratio(_ratio(row, ref, "median")),
                text,
            ]
        )
    targets = _xor_targets(rows, ref, checks)
    return Outcome(
        "xor",
        "XOR: the seed's job",
        f"3-4-1 sigmoid network without biases, the seed's int X, full batch, lr 1, ½Σ(y−t)², float64, "
        f"{E} steps, min/median of {plan.repeats} runs after a warm-up. Ratios are time per step against the "
        "seed's loop (lower is faster); a slow row may run fewer steps. *check*: largest difference of the "
        "final weights from the seed's after the same steps (must be ≤ 1e-6).",
        ["contender", "steps", "min", "median", "µs/step", "× seed (min)", "× seed (median)", "check"],
        lines,
        rows,
        targets,
    )


def _jax_device(device: str) -> Any:
    import jax

    return jax.devices("cpu")[0] if device == "cpu" else jax.devices("gpu")[int(device.split(":")[1])]


def _xor_targets(rows: list[Row], ref: Row, checks: dict) -> list[Target]:
    out = []
    row = _find(rows, _label("numpy", "cpu", None))
    if row is None or not row.ok or not ref.ok:
        out.append(Target(1, "anynet numpy ≤ 1.0× the seed's loop", _why(row), "n/a"))
    else:
        r = _ratio(row, ref)
        good = r <= 1.0 and checks.get(row.name) is True
        out.append(Target(1, "anynet numpy ≤ 1.0× the seed's loop", _with_check(fmt_ratio(r), row, checks), _v(good)))
    compiled = [r for r in rows if r.engine == "compiled" and r.ok]
    if not compiled or not ref.ok:
        tried = [r for r in rows if r.engine == "compiled"]
        why = "no compiled row here" if not tried else f"{tried[0].name}: {tried[0].reason or tried[0].status}"
        out.append(Target(2, "a compiled path ≥ 10× faster than the seed (≤ 0.10×)", why, "n/a"))
    else:
        best = min(compiled, key=lambda r: _ratio(r, ref))
        r = _ratio(best, ref)
        good = r <= 0.1 and checks.get(best.name) is True
        text = f"{best.name}: " + _with_check(fmt_ratio(r), best, checks)
        out.append(Target(2, "a compiled path ≥ 10× faster than the seed (≤ 0.10×)", text, _v(good)))
    return out


def _why(row: Row | None) -> str:
    if row is None:
        return "row not run"
    return f"{row.status}: {row.reason}" if row.reason else row.status


def _with_check(text: str, row: Row, checks: dict) -> str:
    ok = checks.get(row.name)
    return text if ok is True else f"{text}, but the check failed" if ok is False else f"{text} (unchecked)"


def _v(good: bool) -> str:
    return "PASS" if good else "FAIL"


# --------------------------------------------------------------------------- digits


def _digits_data(env: Env) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    if env.has("sklearn"):
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        X, y = load_digits(return_X_y=True)
        Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)
        return Xtr, Xte, ytr, yte, "scikit-learn's digits (1797 8×8 images, /16), stratified 75/25 split"
    # Without scikit-learn the data set is not on disk: a stand-in of the same shape keeps the timings.
    rng = np.random.default_rng(0)
    centres = rng.random((10, 64))
    y = rng.integers(0, 10, 1797)
    X = np.clip(centres[y] + 0.25 * rng.standard_normal((1797, 64)), 0, 1)
    n = 1347
    return X[:n], X[n:], y[:n], y[n:], "a random stand-in of digits' shape (scikit-learn is not installed)"


def _onehot(y: np.ndarray, k: int, dtype=np.float64) -> np.ndarray:
    out = np.zeros((y.shape[0], k), dtype=dtype)
    out[np.arange(y.shape[0]), y] = 1
    return out


def _accuracy(params: list[np.ndarray], X: np.ndarray, y: np.ndarray) -> float:
    a = X
    pairs = list(zip(params[::2], params[1::2], strict=True))
    for i, (W, b) in enumerate(pairs):
        a = a @ W + b
        if i < len(pairs) - 1:
            a = np.maximum(a, 0)
    return float(np.mean(np.argmax(a, axis=1) == y))


def digits(env: Env) -> Outcome:
    """Digits 64-128-64-10, relu, softmax, Adam lr 1e-3, L2 1e-4, batch 64, shuffled, float64."""
    plan = env.plan
    E = plan.digits_epochs
    Xtr, Xte, ytr, yte, source = _digits_data(env)
    sizes = [64, 128, 64, 10]
    job = MLPJob("adam", lr=1e-3, batch=64, epochs=E, alpha=1e-4, shuffle=True, seed=0)
    start = anynet.Network(sizes, activation="relu", output_activation="softmax", init="glorot", dtype="float64")
    params = [
        (np.array(anynet.to_numpy(W)), np.array(anynet.to_numpy(b)))
        for W, b in zip(start.weights, start.biases, strict=True)
    ]
    Ttr = _onehot(ytr, 10)
    acc_of = lambda out: {"accuracy": _accuracy(_host_params(out), Xte, yte)}  # noqa: E731

    cs: list[Contender] = []
    if env.has("sklearn"):
        cs.append(
            Contender(
                "scikit-learn MLPClassifier",
                lambda s: peers.sklearn_mlp(Xtr, ytr, (128, 64), _epochs(job, s)),
                E,
                kind="ref",
                cap=False,
                host=lambda clf: {"accuracy": float(clf.score(Xte, yte))},
            )
        )
    cs.append(
        Contender(
            "NumPy by hand",
            lambda s: peers.numpy_mlp(Xtr, Ttr, params, _epochs(job, s)),
            E,
            kind="peer" if cs else "ref",
            cap=False,
            host=acc_of,
        )
    )

    def anynet_digits(backend: str, device: str, engine: str | None) -> Contender:
        def build(steps: int):
            net = anynet.Network(
                sizes,
                activation="relu",
                output_activation="softmax",
                init="glorot",
                dtype="float64",
                backend=backend,
                device=device,
            )
            options = _fit_options(engine, epochs=steps, optimizer="adam", lr=1e-3, batch_size=64, alpha=1e-4, seed=0)

            def run():
                net.fit(Xtr, ytr, **options)
                return net

            return run

        def host(net):
            pred = anynet.to_numpy(net.predict_classes(Xte))
            return {"accuracy": float(np.mean(pred == yte))}

        return Contender(
            _label(backend, device, engine),
            build,
            E,
            kind="anynet",
            sync=lambda net: block(backend, net.weights),
            host=host,
            cap=_may_cap(backend, engine),
            engine=engine,
            backend=backend,
            device=device,
        )

    cs += [anynet_digits(*r) for r in _anynet_rows(env, gpu=None)]
    for device in ("cpu", env.gpu):
        if device is None:
            continue
        if env.has("torch", device):
            cs.append(
                Contender(
                    f"torch {device}: autograd + optim.Adam",
                    lambda s, d=device: peers.torch_autograd_mlp(Xtr, Ttr, params, _epochs(job, s), device=d),
                    E,
                    sync=_lib_sync("torch"),
                    host=acc_of,
                )
            )
        if env.has("jax", device):
            jdev = _jax_device(device)
            cs.append(
                Contender(
                    f"jax {device}: jitted Adam step",
                    lambda s, d=jdev: peers.jax_mlp(Xtr, Ttr, params, _epochs(job, s), device=d),
                    E,
                    sync=_lib_sync("jax"),
                    host=lambda P: {"accuracy": _accuracy(_host_params(P), Xte, yte)},
                )
            )

    rows = measure(cs, repeats=plan.repeats, budget=plan.budget, min_steps=1)
    ref = rows[0]
    lines = []
    for row in rows:
        if not row.ok:
            lines.append([row.name, _status_cell(row), row.reason, "", "", "", ""])
            continue
        acc = row.result.get("accuracy")
        acc_text = "—" if acc is None else f"{acc:.3f}" + ("" if row.steps == E else f" ({row.steps} ep)")
        lines.append(
            [
                row.name,
                str(row.steps),
                fmt_time(row.min),
                fmt_time(row.median),
                fmt_ratio(_ratio(row, ref)),
                fmt_ratio(_ratio(row, ref, "median")),
                acc_text,
            ]
        )
    targets = []
    mine = _find(rows, _label("numpy", "cpu", None))
    text = "anynet numpy ≤ 0.6× scikit-learn's fit time, accuracy no lower"
    if ref.kind != "ref" or ref.name != "scikit-learn MLPClassifier" or not ref.ok or mine is None or not mine.ok:
        targets.append(Target(3, text, "scikit-learn not run" if not env.has("sklearn") else _why(mine), "n/a"))
    else:
        r = _ratio(mine, ref)
        a, b = mine.result.get("accuracy", float("nan")), ref.result.get("accuracy", float("nan"))
        good = r <= 0.6 and a >= b
        targets.append(Target(3, text, f"{fmt_ratio(r)}, accuracy {a:.3f} vs {b:.3f}", _v(good)))
    ref_word = "scikit-learn" if ref.name.startswith("scikit") else "NumPy by hand"
    return Outcome(
        "digits",
        "digits: 64-128-64-10 against scikit-learn",
        f"{source}; relu, softmax + cross-entropy, Adam lr 1e-3, L2 alpha 1e-4, batch 64, shuffled, {E} epochs, "
        f"float64; min/median of {plan.repeats} runs. Ratios are time per epoch against {ref_word}; accuracy "
        "is on the held-out quarter. Each library draws its own shuffles, so accuracies differ a little.",
        ["contender", "epochs", "min", "median", f"× {ref_word} (min)", "× (median)", "test accuracy"],
        lines,
        rows,
        targets,
    )


def _epochs(job: MLPJob, epochs: int) -> MLPJob:
    from dataclasses import replace

    return replace(job, epochs=epochs)


# --------------------------------------------------------------------------- large MLP


def _random_task(rows: int, n_in: int, n_out: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """float32 inputs and one-hot float32 targets, drawn straight in float32 (no float64 temporary)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, n_in), dtype=np.float32)
    return X, _onehot(rng.integers(0, n_out, rows), n_out, np.float32)


def large(env: Env, *, gpu: bool) -> Outcome | None:
    """A large MLP in float32, SGD on consecutive batches: 784-1024-1024-10 at batch 256 on the CPU,
    784-4096-4096-10 at batch 1024 on a GPU."""
    plan = env.plan
    device = env.gpu if gpu else "cpu"
    if device is None:
        return None
    width, batch, S = (4096, 1024, plan.large_gpu_steps) if gpu else (1024, 256, plan.large_steps)
    sizes = [784, width, width, 10]
    job = MLPJob("sgd", lr=0.01, batch=batch, epochs=1)
    X, T = _random_task(S * batch, sizes[0], sizes[-1])
    start = anynet.Network(sizes, activation="relu", output_activation="softmax", init="he", dtype="float32")
    params = [
        (np.array(anynet.to_numpy(W)), np.array(anynet.to_numpy(b)))
        for W, b in zip(start.weights, start.biases, strict=True)
    ]
    host = lambda out: {"params": _host_params(out)}  # noqa: E731

    n_of = lambda s: s * batch  # noqa: E731
    peer_specs: list[tuple[str, Callable[[int], Any], str | None]] = []
    if not gpu:
        peer_specs.append(("NumPy by hand", lambda s: peers.numpy_mlp(X[: n_of(s)], T[: n_of(s)], params, job), None))
    if env.has("torch", device):
        peer_specs.append(
            (
                f"torch {device}: by hand",
                lambda s: peers.torch_mlp(X[: n_of(s)], T[: n_of(s)], params, job, device=device),
                "torch",
            )
        )
    if gpu and env.has("cupy", device):
        peer_specs.append(("cupy: by hand", lambda s: peers.cupy_mlp(X[: n_of(s)], T[: n_of(s)], params, job), "cupy"))
    if env.has("torch", device):
        peer_specs.append(
            (
                f"torch {device}: autograd + optim.SGD",
                lambda s: peers.torch_autograd_mlp(X[: n_of(s)], T[: n_of(s)], params, job, device=device),
                "torch",
            )
        )
    if env.has("jax", device):
        jdev = _jax_device(device)
        peer_specs.append(
            (
                f"jax {device}: jitted step",
                lambda s: peers.jax_mlp(X[: n_of(s)], T[: n_of(s)], params, job, device=jdev),
                "jax",
            )
        )
    if not peer_specs:
        return None
    cs = [
        Contender(
            name,
            build,
            S,
            kind="ref" if i == 0 else "peer",
            sync=_lib_sync(lib) if lib else (lambda out: None),
            host=host,
            cap=i != 0,
        )
        for i, (name, build, lib) in enumerate(peer_specs)
    ]

    def anynet_large(backend: str, dev: str, engine: str | None) -> Contender:
        cache: dict[str, Any] = {}

        def build(steps: int):
            if not cache:
                cache["X"], cache["T"] = _place(X, backend, dev), _place(T, backend, dev)
            n = n_of(steps)
            Xs, Ts = cache["X"][:n, ...], cache["T"][:n, ...]
            net = anynet.Network(
                sizes,
                activation="relu",
                output_activation="softmax",
                init="he",
                dtype="float32",
                backend=backend,
                device=dev,
            )
            options = _fit_options(engine, epochs=1, lr=job.lr, batch_size=batch, shuffle=False, loss="cross_entropy")

            def run():
                net.fit(Xs, Ts, **options)
                return net

            return run

        return Contender(
            _label(backend, dev, engine),
            build,
            S,
            kind="anynet",
            sync=lambda net: block(backend, net.weights),
            host=lambda net: {"params": _net_params(net)},
            cap=_may_cap(backend, engine),
            engine=engine,
            backend=backend,
            device=dev,
        )

    anynet_cs = [anynet_large(*r) for r in _anynet_rows(env, gpu=gpu)]
    cs = cs[:1] + anynet_cs + cs[1:]
    rows = measure(cs, repeats=plan.repeats, budget=plan.budget, min_steps=2)
    ref = rows[0]
    check = Checker(cs[0], ref, tol=1e-3, relative=True)
    flops = peers.mlp_flops(sizes, batch)
    lines, checks = [], {}
    for row in rows:
        if not row.ok:
            lines.append([row.name, _status_cell(row), row.reason, "", "", "", "", ""])
            continue
        ok, text = check(row)
        checks[row.name] = ok
        r = _ratio(row, ref)
        lines.append(
            [
                row.name,
                str(row.steps),
                fmt_time(row.min),
                fmt_time(row.median),
                f"{flops / row.per_step() / 1e9:.1f}",
                fmt_ratio(r),
                "—" if r is None else f"{1 / r:.2f}",
                text,
            ]
        )
    targets = []
    if gpu:
        text = "anynet cupy ≥ 0.95× PyTorch by hand's CUDA throughput"
        cupy_rows = [r for r in rows if r.backend == "cupy" and r.kind == "anynet" and r.ok]
        if not ref.name.startswith("torch"):
            targets.append(Target(5, text, "no PyTorch CUDA here", "n/a"))
        elif not cupy_rows:
            targets.append(Target(5, text, "no anynet cupy row ran", "n/a"))
        else:
            best = max(cupy_rows, key=lambda r: 1 / _ratio(r, ref))
            through = 1 / _ratio(best, ref)
            good = through >= 0.95 and checks.get(best.name) is True
            targets.append(Target(5, text, f"{best.name}: " + _with_check(f"{through:.2f}×", best, checks), _v(good)))
    else:
        text = "anynet numpy ≥ 0.95× NumPy-by-hand throughput"
        mine = _find(rows, _label("numpy", "cpu", None))
        if mine is None or not mine.ok or not ref.ok:
            targets.append(Target(4, text, _why(mine), "n/a"))
        else:
            through = 1 / _ratio(mine, ref)
            good = through >= 0.95 and checks.get(mine.name) is True
            targets.append(Target(4, text, _with_check(f"{through:.2f}×", mine, checks), _v(good)))
    arch = "-".join(map(str, sizes))
    return Outcome(
        "large-gpu" if gpu else "large",
        f"large MLP {arch} on {'the GPU' if gpu else 'the CPU'}",
        f"{arch}, relu, softmax + cross-entropy, SGD lr 0.01, batch {batch}, consecutive batches (no shuffle), "
        f"float32 (no TF32), {S} steps; min/median of {plan.repeats} runs. GFLOP/s counts the forward pass, the "
        f"weight gradients and the input gradients of all layers but the first ({flops / 1e9:.2f} GFLOP a step). "
        f"Ratios are time per step against {ref.name}; *throughput* is its inverse. *check*: relative difference "
        "(2-norm over all parameters) of the final parameters from the reference's after the same steps "
        "(must be ≤ 1e-3).",
        ["contender", "steps", "min", "median", "GFLOP/s", "× ref time", "throughput × ref", "check"],
        lines,
        rows,
        targets,
    )
