"""Data-parallel training on a ``dask.distributed`` cluster: a ``LocalCluster`` of two worker processes
(one thread each, to fit CI's two cores), started once for the module and closed at its end.

The cluster trains on Dask arrays whatever backend the suite runs on, so these tests run in the numpy
and dask sessions only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import anynet
from anynet.engines import distributed as engine
from anynet.sklearn import MLPClassifier

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.skip_backend(
    "torch",
    "jax",
    "array_api_strict",
    "cupy",
    reason="the cluster trains on Dask arrays whatever the backend under test; the numpy and dask runs check it",
)

ROOT = Path(__file__).resolve().parent.parent
N, CHUNK = 250, 70  # four row chunks, the last one short


@pytest.fixture(scope="module")
def client():
    # not the default client: each test says whether it trains on the cluster
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        distributed.Client(cluster, set_as_default=False) as c,
    ):
        yield c


@pytest.fixture
def spy(monkeypatch):
    """How many steps the data-parallel engine took."""
    calls = []
    step = engine.Distributed._step

    def counted(self, *args):
        calls.append(args[2] is None)
        return step(self, *args)

    monkeypatch.setattr(engine.Distributed, "_step", counted)
    return calls


def data(n=N, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    labels = (X[:, 0] * X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    return X, labels


def chunked(a, rows=CHUNK):
    return da.from_array(a, chunks=(rows, *a.shape[1:]))


def net_of(out=1, output_activation="sigmoid", backend=None):
    return anynet.Network([3, 6, out], activation="tanh", output_activation=output_activation, backend=backend)


def assert_close(net, ref, tol=1e-9):
    for (W, b), (W0, b0) in zip(net.layers, ref.layers, strict=True):
        np.testing.assert_allclose(np.asarray(W), W0, rtol=0, atol=tol)
        np.testing.assert_allclose(np.asarray(b), b0, rtol=0, atol=tol)


# --------------------------------------------------------------------------- same numbers as one process


@pytest.mark.parametrize(
    ("out", "output_activation", "options"),
    [
        (1, "sigmoid", {"lr": 0.01}),  # half_sse: a sum over the rows
        (1, "sigmoid", {"loss": "binary_cross_entropy", "alpha": 0.3, "optimizer": "adam", "lr": 0.05}),
        (3, "softmax", {"momentum": 0.9, "lr": 0.3}),  # 1-D labels, one-hot encoded on the workers
    ],
)
def test_full_batch_matches_one_process(client, spy, out, output_activation, options):
    X, labels = data()
    t = labels if out == 3 else (labels > 0).astype(float).reshape(-1, 1)
    ref = net_of(out, output_activation, backend="numpy")
    ref.fit(X, t, epochs=15, verbose=0, **options)
    net = net_of(out, output_activation)
    history = net.fit(chunked(X), chunked(t), epochs=15, verbose=0, client=client, **options)
    assert len(spy) == 15
    assert net.backend == "dask"
    assert_close(net, ref)
    np.testing.assert_allclose(history.loss, ref.history.loss, rtol=1e-12)
    if out == 3:
        np.testing.assert_array_equal(net.classes, [0, 1, 2])
        np.testing.assert_allclose(history.accuracy, ref.history.accuracy)


def test_mini_batches_repeat_exactly_and_match_one_process(client, spy):
    X, labels = data()
    t = (labels > 0).astype(float).reshape(-1, 1)
    options = {"epochs": 3, "batch_size": 32, "optimizer": "adam", "lr": 0.05, "verbose": 0, "seed": 7}
    ref = net_of(backend="numpy")
    ref.fit(X, t, **options)
    runs = []
    for _ in range(2):
        net = net_of()
        net.fit(chunked(X), chunked(t), client=client, **options)
        runs.append(net)
    assert len(spy) == 2 * 3 * 8  # 8 batches of at most 32 rows an epoch, each from several chunks
    for (W, b), (W2, b2) in zip(runs[0].layers, runs[1].layers, strict=True):
        np.testing.assert_array_equal(np.asarray(W), np.asarray(W2))
        np.testing.assert_array_equal(np.asarray(b), np.asarray(b2))
    assert_close(runs[0], ref)  # the same seeded row order draws the same batches
    np.testing.assert_allclose(runs[0].history.loss, ref.history.loss, rtol=1e-12)


def test_a_second_fit_goes_on_from_the_weights_and_optimizer_state_of_the_first(client):
    X, labels = data()
    t = (labels > 0).astype(float).reshape(-1, 1)
    options = {"verbose": 0, "optimizer": "adam", "lr": 0.05, "loss": "binary_cross_entropy"}
    ref = net_of(backend="numpy")
    ref.fit(X, t, epochs=8, **options)
    net = net_of()
    net.fit(chunked(X), chunked(t), epochs=4, client=client, **options)
    net.fit(chunked(X), chunked(t), epochs=4, client=client, **options)
    assert net.epochs_trained == 8
    assert_close(net, ref)


def test_validation_and_callbacks_run_on_the_cluster(client, spy):
    X, labels = data()
    t = (labels > 0).astype(float).reshape(-1, 1)
    seen = []
    options = {"epochs": 4, "verbose": 0, "patience": 10, "callbacks": [lambda e, logs: seen.append(logs["loss"])]}
    ref = net_of(backend="numpy")
    ref.fit(X[:200], t[:200], validation_data=(X[200:], t[200:]), **options)
    net = net_of()
    Xd, td = chunked(X), chunked(t)
    history = net.fit(Xd[:200], td[:200], validation_data=(Xd[200:], td[200:]), client=client, **options)
    assert len(spy) == 4
    assert_close(net, ref)
    np.testing.assert_allclose(history.val_loss, ref.history.val_loss, rtol=1e-12)
    np.testing.assert_allclose(seen[4:], seen[:4], rtol=1e-12)  # the callbacks saw the same losses


def test_validation_split_holds_out_the_rows_one_process_holds_out(client, spy):
    X, labels = data()
    t = (labels > 0).astype(float).reshape(-1, 1)
    options = {"epochs": 3, "verbose": 0, "validation_split": 0.2}
    ref = net_of(backend="numpy")
    ref.fit(X, t, **options)
    net = net_of()
    history = net.fit(chunked(X), chunked(t), client=client, **options)
    assert len(spy) == 3
    assert_close(net, ref)
    np.testing.assert_allclose(history.val_loss, ref.history.val_loss, rtol=1e-12)


def test_the_default_client_is_found_and_without_one_dask_stays_lazy(client, spy):
    X, labels = data(60)
    t = (labels > 0).astype(float).reshape(-1, 1)
    lazy = net_of()
    lazy.fit(chunked(X, 20), chunked(t, 20), epochs=2, verbose=0)
    assert spy == []  # no client active: the one-process lazy path
    with client.as_current():
        net = net_of()
        net.fit(chunked(X, 20), chunked(t, 20), epochs=2, verbose=0)
        assert len(spy) == 2
        named = net_of()
        named.fit(chunked(X, 20), chunked(t, 20), epochs=2, verbose=0, engine="reference")
        assert len(spy) == 2  # another engine named: the lazy path, even with a client
    assert_close(net, lazy, tol=1e-12)
    assert_close(named, lazy, tol=1e-12)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_the_sklearn_estimators_train_on_the_default_client(client, spy, solver):
    X, labels = data()
    options = {"hidden_layer_sizes": (6,), "solver": solver, "max_iter": 15, "random_state": 0, "tol": 0.0}
    with pytest.warns(ConvergenceWarning):  # noqa: PT031 - both fits stop at max_iter
        ref = MLPClassifier(**options).fit(X, labels)
        with client.as_current():
            est = MLPClassifier(**options).fit(chunked(X), chunked(labels))
    if solver == "adam":
        assert len(spy) == 15 * 2  # the data-parallel engine: 2 batches of 200 rows an iteration
    else:
        assert spy == []  # L-BFGS: each loss and gradient a Dask graph, computed by the client's cluster
    for W, W0 in zip(est.coefs_, ref.coefs_, strict=True):
        np.testing.assert_allclose(np.asarray(W), W0, rtol=0, atol=1e-9)


# --------------------------------------------------------------------------- faults


def test_a_worker_killed_mid_fit_changes_nothing(client):
    X, labels = data()
    t = (labels > 0).astype(float).reshape(-1, 1)
    undisturbed = net_of()
    undisturbed.fit(chunked(X), chunked(t), epochs=6, verbose=0, client=client, callbacks=[lambda e, logs: None])
    pids = sorted(client.run(os.getpid).values())
    victims = []

    def kill_one(epoch, logs):
        if epoch == 2:
            os.kill(pids[0], signal.SIGKILL)  # its chunks are lost; the nanny starts a fresh worker
            victims.append(pids[0])

    net = net_of()
    net.fit(chunked(X), chunked(t), epochs=6, verbose=0, client=client, callbacks=[kill_one])
    assert victims
    assert net.history.epochs == 6
    for (W, b), (W0, b0) in zip(net.layers, undisturbed.layers, strict=True):
        np.testing.assert_array_equal(np.asarray(W), np.asarray(W0))
        np.testing.assert_array_equal(np.asarray(b), np.asarray(b0))
    client.wait_for_workers(2, timeout=60)
    assert pids[0] not in client.run(os.getpid).values()


def test_data_that_cannot_be_recomputed_stops_with_the_last_completed_epoch(client):
    import dask

    X, labels = data(100)
    t = (labels > 0).astype(float).reshape(-1, 1)
    workers = sorted(client.scheduler_info()["workers"])
    halves = [slice(0, 50), slice(50, 100)]
    # scattered from the client: no source to read again
    fx = [client.scatter(X[h], workers=[w]) for h, w in zip(halves, workers, strict=True)]
    ft = [client.scatter(t[h], workers=[w]) for h, w in zip(halves, workers, strict=True)]
    Xd = da.concatenate([da.from_delayed(dask.delayed(f), (50, 3), float) for f in fx])
    td = da.concatenate([da.from_delayed(dask.delayed(f), (50, 1), float) for f in ft])
    pid = client.run(os.getpid, workers=[workers[0]])[workers[0]]

    def kill(epoch, logs):
        if epoch == 1:
            os.kill(pid, signal.SIGKILL)

    net = net_of()
    with pytest.raises(RuntimeError, match="could not compute it again from its source"):
        net.fit(Xd, td, epochs=5, verbose=0, client=client, callbacks=[kill])
    assert net.epochs_trained == 2
    two = net_of(backend="numpy")
    two.fit(X, t, epochs=2, verbose=0)
    assert_close(net, two)
    client.wait_for_workers(2, timeout=60)


def test_many_chunks_are_added_in_pairs_on_the_workers(client, spy):
    assert N // 15 > engine.FAN_IN  # more partial sums than come back to the client
    X, labels = data()
    t = (labels > 0).astype(float).reshape(-1, 1)
    ref = net_of(backend="numpy")
    ref.fit(X, t, epochs=5, verbose=0, loss="binary_cross_entropy")
    net = net_of()
    net.fit(chunked(X, 15), t, epochs=5, verbose=0, loss="binary_cross_entropy", client=client)
    assert len(spy) == 5
    assert_close(net, ref)


# --------------------------------------------------------------------------- bad input


def test_host_targets_and_column_chunks_are_put_in_row_chunks(client):
    X, labels = data()
    ref = net_of(3, "softmax", backend="numpy")
    ref.fit(X, labels, epochs=5, verbose=0)
    net = net_of(3, "softmax")
    net.fit(da.from_array(X, chunks=(CHUNK, 2)), labels, epochs=5, verbose=0, client=client)
    assert_close(net, ref)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda X, t: (X, t), ValueError, "client= trains on Dask arrays"),
        (lambda X, t: (chunked(X)[chunked(X)[:, 0] > 0], t), ValueError, "compute_chunk_sizes"),
        (lambda X, t: (chunked(np.where(X > 2.5, np.nan, X)), chunked(t)), ValueError, r"X holds \d+ NaN"),
        (lambda X, t: (chunked(X), chunked(t[:-1])), ValueError, "X has 250 rows but t has 249"),
        (lambda X, t: (chunked(X)[:, :2], chunked(t)), ValueError, "2 features but the network expects 3"),
        (lambda X, t: (chunked(X), chunked(np.hstack([t, t]))), ValueError, "2 columns but the network has 1"),
    ],
)
def test_bad_input_is_refused_before_any_weight_changes(client, spy, make, error, match):
    X, labels = data()
    t = (labels > 0).astype(float).reshape(-1, 1)
    net = net_of()
    before = [np.asarray(W).copy() for W in net.weights]
    Xb, tb = make(X, t)
    with pytest.raises(error, match=match):
        net.fit(Xb, tb, epochs=2, verbose=0, client=client)
    assert spy == []
    assert net.history is None
    for W, W0 in zip(net.weights, before, strict=True):
        np.testing.assert_array_equal(np.asarray(W), W0)


def test_workers_without_the_chunks_library_are_refused(client, spy, monkeypatch):
    import importlib.util

    from anynet import cluster

    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed here, so the workers have it too")
    # chunks of a library the workers do not have: CuPy
    monkeypatch.setattr(cluster, "chunk_backend", lambda X: "cupy")
    X, labels = data(60)
    net = net_of()
    with pytest.raises(RuntimeError, match="a worker of the Dask cluster cannot train on cupy chunks"):
        net.fit(chunked(X, 20), chunked((labels > 0).astype(float)), epochs=1, verbose=0, client=client)
    assert spy == []
    assert net.history is None


def test_a_closed_client_or_no_client_is_refused(client):
    X, labels = data(60)
    t = (labels > 0).astype(float).reshape(-1, 1)
    closed = distributed.Client(client.scheduler.address, set_as_default=False)
    closed.close()
    net = net_of()
    with pytest.raises(RuntimeError, match="the Dask client is closed"):
        net.fit(chunked(X, 20), chunked(t, 20), epochs=1, verbose=0, client=closed)
    with pytest.raises(ValueError, match="engine='distributed' cannot run this: it trains on a Dask cluster"):
        net.fit(chunked(X, 20), chunked(t, 20), epochs=1, verbose=0, engine="distributed")
    assert net.history is None


# --------------------------------------------------------------------------- the command line


def test_the_command_line_trains_on_a_scheduler_with_the_numbers_of_one_process(client, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYNET_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "anynet", "train", "moons", "--epochs", "2", "--out", "m.npz"]
    runs = {}
    for where in ("here", "cluster"):
        extra = ["--scheduler", client.scheduler.address] if where == "cluster" else []
        proc = subprocess.run(
            command + extra, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert proc.returncode == 0, proc.stderr
        assert "Warning" not in proc.stderr
        runs[where] = proc
    assert "2 worker(s)" in runs["cluster"].stderr
    assert "dask on cpu" in runs["cluster"].stdout

    def figures(out):
        return [line for line in out.splitlines() if line.strip().startswith(("loss", "accuracy"))]

    assert figures(runs["cluster"].stdout) == figures(runs["here"].stdout)  # 32-row batches, validation split


def test_the_command_line_refuses_a_scheduler_with_another_backend(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYNET_")} | {"PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "anynet", "train", "moons", "--scheduler", "tcp://127.0.0.1:9"]
    command += ["--backend", "torch"]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0
    assert "--scheduler trains on Dask arrays on the cluster; leave --backend torch out" in proc.stderr
