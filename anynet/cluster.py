"""Training on a ``dask.distributed`` cluster: the public boundary of data-parallel training.

``claim`` says whether a fit runs on a cluster (its ``X`` is a Dask array and a ``Client`` is active,
or was passed as ``client=``) and answers with a ``Cluster``, the site where the rows stay: the data
intake (``anynet.intake``) has it put the data in place with ``rows`` and ``targets`` (checked, in the
network's dtype, one chunk across the columns, the targets' row chunks aligned with ``X``'s) and
``persist`` it on the workers before any weight changes. The engine (``anynet.engines.distributed``)
then trains where the rows are.
"""

from __future__ import annotations

import contextlib
import math
import socket
from typing import Any

import numpy as np

from . import backend as B
from . import intake

#: the backend of the arrays a cluster trains on
BACKEND = "dask"


class ClusterError(RuntimeError):
    """A cluster that cannot be used from here; the message says why and what to do."""


class Cluster:
    """The site of a fit on the cluster of a ``dask.distributed`` client: the rows stay on its workers."""

    #: the engine that trains there
    engine = "distributed"
    #: rows are picked with host integers: Dask then keeps its chunk sizes known
    host_index = True

    def __init__(self, client: Any) -> None:
        self.client = client

    def prepare(
        self,
        spec: intake.Spec,
        X: Any,
        t: Any,
        loss: Any,
        classes: Any,
        *,
        sample_weight: Any = None,
        labels: tuple[str, str] = ("X", "t"),
    ) -> tuple[Any, Any, Any]:
        """``X`` and ``t`` checked and prepared, lazily, as row-chunked Dask arrays for a model of
        ``spec`` (persisted by ``hold``), and the classes ``t`` was encoded against. ``labels``: how
        the messages name ``X`` and ``t``."""
        if sample_weight is not None:
            msg = "sample_weight is not supported on a Dask cluster yet; train without it, or on NumPy"
            raise ValueError(msg)
        x_label, t_label = labels
        X = rows(X, x_label, n_in=spec.n_in, dtype=spec.dtype_name)
        check_workers(self.client, chunk_backend(X))
        if B.backend_of(t) != "dask":  # host targets: encoded here, sent once, chunked like X
            t, known = intake.targets(t, X.shape[0], loss, spec, classes, label=t_label)
            return X, t.rechunk({0: X.chunks[0]}), known
        t, known = targets(
            self.client,
            t,
            X,
            t_label,
            n_out=spec.n_out,
            dtype=spec.dtype_name,
            labels_wanted=loss.classification or spec.n_out > 1,
            encode=lambda found: intake.encode(found, classes, spec, t_label)[1],
        )
        return X, t, spec.classes if known is None else known

    def hold(self, arrays: dict[str, Any]) -> dict[str, Any]:
        """``arrays`` persisted on the workers, each checked finite there."""
        return persist(self.client, arrays)

    def running(self) -> contextlib.AbstractContextManager:
        """The context to train in (see ``computing_on``)."""
        return computing_on(self.client)


def claim(X: Any, client: Any, engine: str) -> Cluster | None:
    """The ``Cluster`` a fit of ``X`` trains on, or ``None`` for one process (see ``client_for``)."""
    found = client_for(X, client, engine)
    return None if found is None else Cluster(found)


def client_for(X: Any, client: Any, engine: str) -> Any:
    """The running ``dask.distributed`` client to train ``X`` on, or ``None`` for one process.

    A Dask ``X`` goes to the cluster with ``client=`` or the default client, unless another engine is
    named (``engine="reference"`` keeps the lazy one-process path); ``engine="distributed"`` without a
    client, a ``client=`` for non-Dask data, or a closed client raise."""
    dask_X = B.backend_of(X) == "dask"
    if client is None and engine in ("auto", "distributed") and dask_X:
        try:
            from distributed import default_client

            client = default_client()
        except (ImportError, ValueError):
            client = None
    if client is None:
        if engine == "distributed":
            msg = (
                "engine='distributed' cannot run this: it trains on a Dask cluster and no dask.distributed Client "
                "is active; start one (from dask.distributed import Client; client = Client(address)) or pass client="
            )
            raise ValueError(msg)
        return None
    if not hasattr(client, "submit") or not hasattr(client, "persist"):
        msg = f"client must be a dask.distributed Client, got {type(client).__name__}"
        raise TypeError(msg)
    if not dask_X:
        msg = (
            f"client= trains on Dask arrays where they live, but X is a {B.backend_of(X) or type(X).__name__} "
            "array; make it one with dask.array.from_array(X, chunks=(rows_per_chunk, -1)), or leave client= out"
        )
        raise ValueError(msg)
    if engine not in ("auto", "distributed"):
        msg = f"engine={engine!r} runs in one process; with client= use engine='auto' or 'distributed'"
        raise ValueError(msg)
    if client.status != "running":
        msg = (
            f"the Dask client is {client.status}, not running; connect a new one "
            "(Client(address)) and fit again, or leave client= out to train in one process"
        )
        raise RuntimeError(msg)
    return client


def check_workers(client: Any, name: str) -> None:
    """Every worker can run anynet's steps on chunks of backend ``name``; a RuntimeError otherwise."""
    try:
        found = client.run(_probe, name)
    except Exception as exc:  # noqa: BLE001 - whatever a worker reports, say which and what to install
        msg = (
            f"a worker of the Dask cluster cannot train on {name} chunks ({type(exc).__name__}: {exc}); "
            f"install anynet and {name} on every worker, the same versions as here"
        )
        raise RuntimeError(msg) from None
    if not found:
        msg = "the Dask cluster has no workers; start some (dask worker ADDRESS) or wait for them, then fit again"
        raise RuntimeError(msg)


def _probe(name: str) -> str:
    """Runs on a worker: imports what the steps need there."""
    B.namespace_for(name)
    return name


def chunk_backend(X: Any) -> str:
    """The library of ``X``'s chunks: ``"numpy"`` or, on GPU workers, ``"cupy"``."""
    return B.backend_of(getattr(X, "_meta", None)) or "numpy"


def rows(X: Any, label: str, *, n_in: int, dtype: str) -> Any:
    """``X`` checked, as a lazy Dask array of ``dtype`` with one chunk across its columns."""
    if X.dtype.kind not in "biuf":
        msg = f"{label} must be numeric (float, int or bool), got dtype {X.dtype}"
        raise TypeError(msg)
    if X.ndim != 2:
        msg = f"{label} must be 2-D (n_samples, n_features), got shape {tuple(X.shape)}"
        raise ValueError(msg)
    _known_rows(X, label)
    if X.shape[0] == 0:
        msg = f"{label} is empty (shape {tuple(X.shape)}); need at least one row"
        raise ValueError(msg)
    if X.shape[1] != n_in:
        msg = f"{label} has {X.shape[1]} features but the network expects {n_in}"
        raise ValueError(msg)
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})  # a row chunk holds whole rows: each chunk's gradient needs them
    return X if X.dtype == dtype else X.astype(dtype)


def targets(
    client: Any, t: Any, X: Any, label: str, *, n_out: int, dtype: str, labels_wanted: bool, encode
) -> tuple[Any, Any]:
    """A Dask ``t`` as a lazy Dask array ``(n, n_out)`` of ``dtype`` chunked by rows like ``X``, and
    the classes it was encoded against (``None`` where it holds numbers).

    Labels stay where they are: their distinct values are computed on the cluster, ``encode(labels)``
    (the network's) checks them and returns the classes, and each chunk is one-hot encoded on its
    worker. ``labels_wanted``: the loss or the network's shape reads 1-D numbers as class labels."""
    import dask.array as da

    n = X.shape[0]
    if t.ndim == 0 or t.ndim > 2:
        msg = f"{label} must be 1-D labels or 2-D (n_samples, n_outputs), got shape {tuple(t.shape)}"
        raise ValueError(msg)
    _known_rows(t, label)
    if t.shape[0] != n:
        x = "X_val" if label == "t_val" else "X"
        msg = f"{x} has {n} rows but {label} has {t.shape[0]}; they must match"
        raise ValueError(msg)
    kind = t.dtype.kind
    is_labels = t.ndim == 1 or (t.shape[1] == 1 and n_out > 1) or kind not in "biuf"
    if is_labels and t.ndim == 2 and t.shape[1] != 1:
        msg = f"{label} must be numeric (float, int or bool), or class labels in one column; got dtype {t.dtype}"
        raise TypeError(msg)
    if is_labels and (labels_wanted or kind not in "biuf"):
        flat = t.reshape(-1) if t.ndim == 1 else t[:, 0]
        known = encode(np.asarray(client.compute(da.unique(flat), sync=True)))
        onehot = flat.map_blocks(
            _one_hot, known, n_out, dtype, new_axis=1, chunks=(flat.chunks[0], (n_out,)), dtype=dtype
        )
        return onehot.rechunk({0: X.chunks[0]}), known
    t = t.reshape(-1, 1) if t.ndim == 1 else t
    if t.shape[1] != n_out:
        msg = f"{label} has {t.shape[1]} columns but the network has {n_out} outputs"
        raise ValueError(msg)
    t = t.rechunk({0: X.chunks[0], 1: -1})
    return (t if t.dtype == dtype else t.astype(dtype)), None


def _one_hot(labels: Any, known: np.ndarray, n_out: int, dtype: str) -> np.ndarray:
    """Runs on a worker: one chunk of labels encoded against ``known`` (0/1 for one output)."""
    index = np.searchsorted(known, np.asarray(labels))
    if n_out == 1:
        return (index == 1).astype(dtype).reshape(-1, 1)
    out = np.zeros((index.shape[0], n_out), dtype=dtype)
    out[np.arange(index.shape[0]), index] = 1
    return out


def _known_rows(A: Any, label: str) -> None:
    if any(math.isnan(c) for c in A.chunks[0]):
        msg = (
            f"{label} has chunks of unknown length; call {label}.compute_chunk_sizes() first, or make it "
            "with to_dask_array(lengths=True) from a Dask DataFrame"
        )
        raise ValueError(msg)


def persist(client: Any, arrays: dict[str, Any]) -> dict[str, Any]:
    """``arrays`` persisted on the workers, each checked finite there (only counts come back)."""
    import dask.array as da

    held = dict(zip(arrays, client.persist(list(arrays.values())), strict=True))
    bad = client.compute([(~da.isfinite(a)).sum() for a in held.values()], sync=True)
    for (label, a), count in zip(held.items(), bad, strict=True):
        if int(count):
            msg = (
                f"{label} holds {int(count)} NaN or infinite value(s) in {a.dtype}; clean or impute them "
                "first (or scale them, if they are too large for the dtype)"
            )
            raise ValueError(msg)
    return held


@contextlib.contextmanager
def computing_on(client: Any):
    """While training: the engine finds ``client`` with ``distributed.get_client()``, and whatever the
    training loop computes of Dask arrays (validation, a check of the weights) runs on its cluster,
    where the rows are, not in this process."""
    if client is None:
        yield
        return
    import dask

    with dask.config.set(scheduler=client), client.as_current():
        yield


# --------------------------------------------------------------------------- from the command line


def backend_for(asked: str | None) -> str:
    """The backend a fit on a scheduler's cluster computes on; ``asked``, another backend named for
    it (``--backend``), is a ClusterError."""
    if asked not in (None, BACKEND):
        msg = f"trains on Dask arrays on the cluster; leave --backend {asked} out"
        raise ClusterError(msg)
    return BACKEND


def connect(address: str, X: np.ndarray, stack: contextlib.ExitStack) -> tuple[Any, Any, int, int]:
    """A client of the scheduler at ``address``, closed when ``stack`` closes, and the host ``X`` as
    a Dask array in row chunks (two a worker) to train on its cluster: ``(X, client, workers, rows
    per chunk)``. A ClusterError says what is missing (dask.distributed, the scheduler, workers);
    its message reads after the name of what gave the address (``--scheduler``)."""
    try:
        import dask.array as da
        from distributed import Client
    except ImportError:
        msg = 'needs dask.distributed on this machine; pip install ".[distributed]"'
        raise ClusterError(msg) from None
    try:
        # asked first, outside a Client: one whose start fails lingers, and its __del__ printed a
        # traceback after a 20 s wait
        _reachable(address)
        client = stack.enter_context(Client(address, timeout="10s", set_as_default=False))
    except (OSError, ValueError, TypeError) as exc:
        msg = (
            f"{address}: cannot reach a Dask scheduler there ({exc}); start one with "
            "`dask scheduler` and give the address it prints (tcp://HOST:8786)"
        )
        raise ClusterError(msg) from None
    workers = len(client.scheduler_info()["workers"])
    if not workers:
        msg = f"{address}: the cluster has no workers; start some with `dask worker {address}`"
        raise ClusterError(msg)
    rows = -(-X.shape[0] // (2 * workers))  # two chunks a worker
    return da.from_array(X, chunks=(rows, X.shape[1])), client, workers, rows


def _reachable(address: str) -> None:
    """Raise ``ValueError`` for an address Dask cannot read, ``OSError`` where nothing listens on it."""
    from distributed.comm.addressing import parse_address, parse_host_port

    protocol, location = parse_address(address)
    if protocol not in ("tcp", "tls"):
        return  # a transport this check does not speak: the Client will say
    host, port = parse_host_port(location)
    with socket.create_connection((host, port), timeout=5):
        pass
