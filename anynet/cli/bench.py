"""``anynet bench``: the seed's XOR job timed on each available backend."""

from __future__ import annotations

import argparse

from .. import backend as B
from ._common import XOR_T, XOR_X, UserError, _command, _Help, _logger, _para, _positive_float, _positive_int


def run(args: argparse.Namespace) -> int:
    from ..network import Network

    say = _logger(args.quiet)
    if args.backends:  # only the named ones are imported
        found = {}
        for name in args.backends:
            try:
                found[name] = B.devices(name)
            except B.BackendError as exc:
                msg = f"cannot bench {name}: {exc}"
                raise UserError(msg) from None
            if not found[name]:
                msg = f"cannot bench {name}: it sees no device here (no CUDA device found)"
                raise UserError(msg)
    else:
        found = {n: e["devices"] for n, e in B.backends().items() if e["available"]}
    say(
        f"the seed's XOR job (3-4-1 sigmoid, full batch, lr 1, ½Σ(y−t)²): up to {args.epochs} epochs "
        f"or {args.seconds:g} s on each backend"
    )
    rows = []
    for name, devices in found.items():
        for device in _bench_places(devices):
            net = Network(
                [3, 4, 1], activation="sigmoid", bias=False, init="uniform", seed=1, backend=name, device=device
            )
            say(f"timing {name} on {net.device} ...")
            epochs = _bench_epochs(net, args.epochs, args.seconds)
            # the timed fit is the second of two alike: any compile or first allocation is done by then
            net.fit(XOR_X, XOR_T, epochs=epochs, lr=1.0, loss="half_sse", verbose=0, reset=True)
            history = net.fit(XOR_X, XOR_T, epochs=epochs, lr=1.0, loss="half_sse", verbose=0, reset=True)
            rows.append((name, net.device, B.dtype_name(net.dtype), history))
    common = min(h.epochs for *_, h in rows)
    base = next((h for n, d, _, h in rows if n == "numpy"), rows[0][3])
    base_per = base.wall_time / base.epochs
    table = [("backend", "device", "dtype", "epochs", "time", "per epoch", "vs numpy", f"loss @ {common}")]
    for name, device, dtype, h in rows:
        per = h.wall_time / h.epochs
        table.append(
            (
                name,
                device,
                dtype,
                str(h.epochs),
                f"{h.wall_time:.2f} s",
                f"{1e6 * per:,.0f} µs",
                f"{per / base_per:.2f}x",
                f"{h.loss[common - 1]:.6f}",
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        cells = [f"{c:<{w}}" if i < 3 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        print("  ".join(cells).rstrip())
    return 0


def _bench_places(found: list[str]) -> list[str | None]:
    """The devices ``bench`` times a backend on: its CPU (else its default device) and its first GPU."""
    cuda = [d for d in found if d.startswith("cuda")]
    first = ["cpu"] if "cpu" in found else [] if cuda else [None]
    return first + cuda[:1]


def _bench_epochs(net, most: int, seconds: float) -> int:
    """How many epochs fit in ``seconds``, from short runs that also warm the backend up (JAX
    compiles, PyTorch allocates). The timed run then goes through fit's usual path, callbacks off."""
    n = 10
    net.fit(XOR_X, XOR_T, epochs=min(n, most), lr=1.0, loss="half_sse", verbose=0)
    while True:
        history = net.fit(XOR_X, XOR_T, epochs=min(n, most), lr=1.0, loss="half_sse", verbose=0)
        if n >= most or history.wall_time > seconds / 10:
            break
        n *= 4
    return max(1, min(most, int(seconds * history.epochs / max(history.wall_time, 1e-9))))


def _backend_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in B.BACKENDS]
    if unknown or not names:
        msg = f"unknown backend(s) {unknown}; expected names from {sorted(B.BACKENDS)}, separated by commas"
        raise argparse.ArgumentTypeError(msg)
    return names


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``anynet bench``'s options."""
    bench = _command(
        sub,
        "bench",
        help="time the seed's XOR job on each available backend",
        description=_para(
            "Time the seed's XOR network (3-4-1 sigmoid, full batch, lr 1) on each available backend and device, "
            "for up to --epochs epochs or --seconds each, after a short warm-up. Compare the ratios, not the "
            "absolute times: other work on the machine changes them from run to run."
        ),
        formatter_class=_Help,
    )
    bench.add_argument(
        "--backends",
        type=_backend_list,
        default=None,
        metavar="A,B",
        help="which backends (default: every available one)",
    )
    bench.add_argument("--epochs", type=_positive_int, default=60000, help="at most this many epochs (default: 60000)")
    bench.add_argument(
        "--seconds", type=_positive_float, default=2.0, help="at most this long per backend (default: 2)"
    )
    bench.add_argument("-q", "--quiet", action="store_true", help="no logs on stderr")
    bench.set_defaults(func=run)
