"""Every engine computes what the reference does, for every registered op.

The parity tests are built from the registries (``anynet.activations.ACTIVATIONS``,
``anynet.losses.LOSSES``, ``anynet.optimizers.OPTIMIZERS``, ``anynet.engines.REGISTRY``), so a new
activation, loss, optimizer or engine is covered without touching this file.
"""

import dataclasses
from typing import ClassVar

import numpy as np
import pytest

import anynet
from anynet import activations, engines, losses, optimizers
from anynet.engines.reference import Reference


def fast_engines(backend: str) -> list[str]:
    """The registered engines, other than the reference, that serve ``backend``."""
    return [name for name, entry in engines.REGISTRY.items() if backend in entry.auto]


@pytest.fixture
def fast(backend):
    names = fast_engines(backend)
    if not names:
        pytest.skip(f"no engine but the reference serves {backend}: there is nothing to compare")
    return names[0]


def _data(rng, n=24, n_in=5, n_out=3):
    X = rng.normal(size=(n, n_in))
    t = rng.random((n, n_out))
    labels = rng.integers(0, n_out, n)
    return X, t, labels


def _pair(sizes, **kwargs):
    return anynet.Network(sizes, dtype="float64", **kwargs), anynet.Network(sizes, dtype="float64", **kwargs)


def _assert_same(a, b, rtol=1e-9):
    for (Wa, ba), (Wb, bb) in zip(a.layers, b.layers, strict=True):
        np.testing.assert_allclose(anynet.to_numpy(Wa), anynet.to_numpy(Wb), rtol=rtol, atol=1e-12)
        if ba is not None:
            np.testing.assert_allclose(anynet.to_numpy(ba), anynet.to_numpy(bb), rtol=rtol, atol=1e-12)


HIDDEN = [name for name in activations.ACTIVATIONS if name != "softmax"]
#: every loss with every output activation it can train: its own for a fused loss, else all of them
LOSS_OUTPUTS = [
    (loss.name, out)
    for loss in losses.LOSSES.values()
    for out in ([loss.output] if loss.output else list(activations.ACTIVATIONS))
]


def _targets(loss, output, X, t, labels):
    if loss.output == "softmax":
        return labels
    if loss.classification or output in ("sigmoid", "softmax"):
        return (t > 0.5).astype(float) if output == "sigmoid" or loss.classification else t / t.sum(1, keepdims=True)
    return t


@pytest.mark.parametrize("engine", ["fast", "whole"])
@pytest.mark.parametrize(("loss", "output"), LOSS_OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_every_activation_and_loss_matches_the_reference(rng, backend, fast, engine, loss, output, hidden):
    """Each hidden activation with each loss and output; "whole" takes the engine's whole-run hook
    (no callbacks, quiet), "fast" its epoch-by-epoch path (a callback)."""
    if fast == "compiled" and hidden != "tanh" and (loss, output, engine) != ("mse", "identity", "fast"):
        pytest.skip(
            "compiled: each case costs a compile (about a second here), so every op is covered once, by the "
            "tanh row and the mse/identity column, instead of the whole product"
        )
    lf = losses.get(loss)
    X, t, labels = _data(rng)
    target = _targets(lf, output, X, t, labels)
    ref, net = _pair([5, 6, 3], activation=hidden, output_activation=output, init="glorot", bias=hidden != "tanh")
    cbs = [] if engine == "whole" else [lambda epoch, logs: None]
    lr = 0.05
    if "exp" in (hidden, output):  # exp grows fast: smaller inputs and a gentler step keep it finite
        X, lr = 0.1 * X, 0.001
    h_ref = ref.fit(X, target, epochs=4, lr=lr, loss=loss, verbose=0, engine="reference")
    h = net.fit(X, target, epochs=4, lr=lr, loss=loss, verbose=0, engine=fast, callbacks=cbs)
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-9)
    if h_ref.accuracy:
        assert h.accuracy == h_ref.accuracy
    _assert_same(net, ref)


#: each registered optimizer with its variants
OPTIMIZER_CASES = [
    {"optimizer": name, **variant}
    for name in optimizers.OPTIMIZERS
    for variant in (
        {"sgd": [{"lr": 0.3}, {"lr": 0.1, "momentum": 0.9}, {"lr": 0.1, "momentum": 0.9, "nesterov": True}]}.get(
            name, [{"lr": 0.01}]
        )
    )
]


@pytest.mark.parametrize(
    "batches",
    [{}, {"batch_size": 7}, {"batch_size": 10, "shuffle": False}, {"alpha": 0.5}, {"schedule": "cosine", "alpha": 0.1}],
    ids=["full", "batch7", "batch10-ordered", "l2", "cosine-l2"],
)
@pytest.mark.parametrize("options", OPTIMIZER_CASES, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_every_optimizer_matches_the_reference(rng, fast, options, batches):
    X, _, labels = _data(rng)
    ref, net = _pair([5, 8, 3], activation="relu", output_activation="softmax", init="he")
    h_ref = ref.fit(X, labels, epochs=5, verbose=0, engine="reference", seed=3, **options, **batches)
    h = net.fit(X, labels, epochs=5, verbose=0, engine=fast, seed=3, **options, **batches)
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-9)
    _assert_same(net, ref, rtol=1e-8)
    # Continuing picks up the optimizer state either engine left behind.
    ref.fit(X, labels, epochs=2, verbose=0, engine="reference", seed=4, **options, **batches)
    net.fit(X, labels, epochs=2, verbose=0, engine=fast, seed=4, **options, **batches)
    _assert_same(net, ref, rtol=1e-8)


@pytest.mark.parametrize("batches", [{}, {"batch_size": 7, "alpha": 0.3}], ids=["full", "batch7-l2"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_weighted_rows_match_the_reference(rng, fast, optimizer, batches):
    """sample_weight on the backend's fast engine: the same weighted mean and penalty as the reference."""
    X, _, labels = _data(rng)
    weights = rng.uniform(0.0, 3.0, size=X.shape[0])
    ref, net = _pair([5, 8, 3], activation="tanh", output_activation="softmax")
    common = {"epochs": 4, "verbose": 0, "seed": 3, "optimizer": optimizer, "sample_weight": weights, **batches}
    h_ref = ref.fit(X, labels, engine="reference", **common)
    h = net.fit(X, labels, engine=fast, **common)
    np.testing.assert_allclose(h.loss, h_ref.loss, rtol=1e-9)
    _assert_same(net, ref, rtol=1e-8)


@dataclasses.dataclass(frozen=True)
class SignSGD:
    """An optimizer of the user's own, with a pure form only: ``W - lr * sign(grad)``."""

    name: str = "sign_sgd"

    def init(self, layers, *, xp):
        return None

    def step(self, layers, grads, state, lr, *, xp):
        return [
            (W - lr * xp.sign(gw), None if b is None else b - lr * xp.sign(gb))
            for (W, b), (gw, gb) in zip(layers, grads, strict=True)
        ], None


def test_a_custom_optimizer_runs_as_itself_never_as_sgd(rng):
    X, t, _ = _data(rng)
    net = anynet.Network([5, 4, 3], activation="tanh", output_activation="identity", dtype="float64")
    sgd = anynet.Network([5, 4, 3], activation="tanh", output_activation="identity", dtype="float64")
    start = [(anynet.to_numpy(W), anynet.to_numpy(b)) for W, b in net.layers]
    net.fit(X, t, epochs=1, lr=0.01, loss="mse", optimizer=SignSGD(), verbose=0)
    sgd.fit(X, t, epochs=1, lr=0.01, loss="mse", optimizer="sgd", verbose=0)
    moved = [anynet.to_numpy(W) - W0 for (W, _), (W0, _) in zip(net.layers, start, strict=True)]
    # one sign step moves every weight by exactly ±lr (where the gradient is not 0); SGD would not
    for d in moved:
        np.testing.assert_allclose(np.abs(d[d != 0]), 0.01, rtol=1e-12)
    assert not np.allclose(anynet.to_numpy(sgd.weights[0]), anynet.to_numpy(net.weights[0]))


def test_an_engine_without_the_optimizers_form_refuses_it(backend, fast):
    net = anynet.Network([2, 2, 1])
    before = anynet.to_numpy(net.weights[0]).copy()
    if fast == "compiled":
        pytest.skip("the compiled engine traces any pure optimizer: it has no form to lack")
    with pytest.raises(ValueError, match=rf"engine='{fast}' cannot run this: the optimizer SignSGD has no flat-buffer"):
        net.fit(np.eye(2), np.ones((2, 1)), epochs=2, verbose=0, optimizer=SignSGD(), engine=fast)
    np.testing.assert_array_equal(anynet.to_numpy(net.weights[0]), before)


class Counting(Reference):
    """A toy executor: the reference engine, noting each step's members (the leading axes of the
    parameters: ``()`` for one network) and batch rows."""

    name = "counting"
    steps: ClassVar[list[tuple]] = []

    def step(self, X, t, lr, w=None):
        Counting.steps.append((tuple(self.layers[0][0].shape[:-2]), X.shape[-2]))
        return super().step(X, t, lr, w)


@pytest.fixture
def counting(monkeypatch):
    """The toy registered as ``engine="counting"``: one class and one registry line."""
    monkeypatch.setitem(engines.REGISTRY, "counting", engines.Entry(Counting))
    monkeypatch.setattr(Counting, "steps", [])
    return Counting.steps


def test_a_new_engine_is_one_class_and_one_registry_line(rng, counting):
    X, _, labels = _data(rng)
    ref, net = _pair([5, 4, 3], output_activation="softmax")
    ref.fit(X, labels, epochs=3, batch_size=8, verbose=0, engine="reference", seed=1)
    net.fit(X, labels, epochs=3, batch_size=8, verbose=0, engine="counting", seed=1)
    assert counting == [((), 8)] * 9
    _assert_same(net, ref)


def test_a_new_engine_trains_an_ensemble_as_the_reference_does(rng, counting):
    X, _, labels = _data(rng)
    options = {"epochs": 3, "batch_size": 8, "verbose": 0, "seed": 1, "lr": [0.5, 1.0, 2.0]}
    ref, ens = (anynet.Ensemble([5, 4, 3], members=3, output_activation="softmax", dtype="float64") for _ in "ab")
    ref.fit(X, labels, engine="reference", **options)
    ens.fit(X, labels, engine="counting", **options)
    assert counting == [((3,), 8)] * 9  # one step for the stack of members, each batch shared
    for a, b in zip(ens.histories, ref.histories, strict=True):
        np.testing.assert_array_equal(a.loss, b.loss)
    for (Wa, ba), (Wb, bb) in zip(ens.layers, ref.layers, strict=True):
        np.testing.assert_array_equal(anynet.to_numpy(Wa), anynet.to_numpy(Wb))
        np.testing.assert_array_equal(anynet.to_numpy(ba), anynet.to_numpy(bb))


def test_a_new_engine_trains_a_search_as_the_reference_does(rng, backend, counting):
    """A face picks the engine by its own parameter: the estimator's ``engine``, which the search's
    stacks take (a stack's members share every parameter but a few numbers)."""
    pytest.importorskip("sklearn")
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import KFold

    from anynet.sklearn import MLPClassifier, MLPSearchCV

    X, _, labels = _data(rng, n=30)
    grid = {"learning_rate_init": [0.01, 0.1], "alpha": [1e-4, 1e-2]}
    searches = {}
    for engine in ("reference", "counting"):
        est = MLPClassifier((4,), max_iter=5, batch_size=8, random_state=0, dtype="float64", engine=engine)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            searches[engine] = MLPSearchCV(est, grid, cv=KFold(3)).fit(X, labels)
    ref, toy = searches["reference"], searches["counting"]
    stacked = not anynet.backend.is_lazy(backend)  # a lazy backend trains each candidate alone
    assert [s["stacked"] for s in toy.stacks_] == [s["stacked"] for s in ref.stacks_]
    assert toy.stacks_[0]["stacked"] == stacked
    # the stack's steps, members (folds, candidates); then the refit's (and any alone fit's), one network's
    assert {members for members, _ in counting} == ({(3, 4), ()} if stacked else {()})
    for key in ("mean_test_score", "split0_test_score", "split1_test_score", "split2_test_score"):
        np.testing.assert_array_equal(toy.cv_results_[key], ref.cv_results_[key])
    assert toy.best_params_ == ref.best_params_
    for a, b in zip(toy.best_estimator_.coefs_, ref.best_estimator_.coefs_, strict=True):
        np.testing.assert_array_equal(anynet.to_numpy(a), anynet.to_numpy(b))


def test_a_search_trains_alone_on_an_engine_that_does_not_stack(rng, counting, monkeypatch):
    pytest.importorskip("sklearn")
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import KFold

    from anynet.sklearn import MLPRegressor, MLPSearchCV

    class OneAtATime(Counting):
        stacks = False

    monkeypatch.setitem(engines.REGISTRY, "one-at-a-time", engines.Entry(OneAtATime))
    X, t, _ = _data(rng, n=30, n_out=1)
    est = MLPRegressor(hidden_layer_sizes=(3,), solver="sgd", max_iter=2, batch_size=10, engine="one-at-a-time")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = MLPSearchCV(est, {"alpha": [1e-4, 1e-2]}, cv=KFold(2), refit=False).fit(X, t[:, 0])
    assert [s["stacked"] for s in search.stacks_] == [False, False]
    assert {members for members, _ in counting} == {()}  # every fit on the toy, one network at a time


def test_fast_engine_never_writes_the_callers_arrays(fast, asarray):
    W1, W2 = np.ones((3, 4)) * 0.1, np.ones((4, 1)) * 0.2
    net = anynet.Network.from_weights([asarray(W1), asarray(W2)], dtype="float64")
    before = [anynet.to_numpy(W).copy() for W in net.weights]
    held = net.weights
    net.fit(np.eye(3), np.ones((3, 1)), epochs=5, verbose=0, engine=fast)
    for W, old in zip(held, before, strict=True):
        np.testing.assert_array_equal(anynet.to_numpy(W), old)
    assert not np.allclose(anynet.to_numpy(net.weights[0]), before[0])


@pytest.mark.parametrize("batch_size", [None, 2])
def test_divergence_keeps_the_same_last_finite_weights(fast, batch_size):
    X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]]) * 50.0
    t = np.array([[0.0], [1e6], [1e6], [0.0]])
    kept = []
    for engine in ("reference", fast):
        net = anynet.Network([3, 4, 1], activation="tanh", output_activation="identity", dtype="float64")
        with pytest.raises(anynet.DivergedError, match="diverged at epoch"):
            net.fit(X, t, epochs=500, lr=10.0, verbose=0, engine=engine, batch_size=batch_size, shuffle=False)
        assert all(np.isfinite(anynet.to_numpy(W)).all() for W in net.weights)
        kept.append((net.history.epochs, [anynet.to_numpy(W) for W in net.weights]))
    assert kept[0][0] == kept[1][0]
    for a, b in zip(kept[0][1], kept[1][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9)


def test_unknown_engine_is_refused_before_training():
    net = anynet.Network([2, 2, 1])
    before = anynet.to_numpy(net.weights[0]).copy()
    with pytest.raises(ValueError, match="unknown engine 'turbo'; expected one of"):
        net.fit(np.eye(2), np.ones((2, 1)), epochs=3, verbose=0, engine="turbo")
    np.testing.assert_array_equal(anynet.to_numpy(net.weights[0]), before)


def test_engine_availability_follows_the_backend(backend):
    net = anynet.Network([2, 2, 1])
    X, t = np.eye(2), np.ones((2, 1))
    for engine, entry in engines.REGISTRY.items():
        if engine == "reference" or backend in entry.auto:
            assert net.fit(X, t, epochs=2, verbose=0, engine=engine).epochs == 2
        else:
            with pytest.raises(ValueError, match=f"engine='{engine}' cannot run this: "):
                net.fit(X, t, epochs=2, verbose=0, engine=engine)
    # the old name of the buffer engine still works where the buffer engine does
    assert engines.check("inplace") == "buffer"


@pytest.mark.parametrize("optimizer", list(optimizers.OPTIMIZERS))
def test_auto_picks_the_backends_fast_engine(backend, optimizer):
    acts = (activations.get("relu"), activations.get("softmax"))
    chosen = engines.select("auto", backend, acts=acts, loss=losses.get("cross_entropy"), opt=optimizers.get(optimizer))
    want = {"numpy": "buffer", "cupy": "buffer", "torch": "buffer", "jax": "compiled"}.get(backend, "reference")
    assert chosen.name == want


@pytest.mark.parametrize("name", [a.name for a in activations.ACTIVATIONS.values() if a.f_out or a.vjp_out])
def test_every_in_place_activation_form_equals_its_pure_form(backend, xp, asarray, rng, name):
    from anynet import backend as B

    ops = B.buffer_ops(backend)
    if ops is None:
        pytest.skip(f"{backend} has no out= arrays: no in-place form runs there")
    act = activations.get(name)
    z = asarray(rng.normal(size=(5, 4)) * 3)
    g = np.full((5, 4), np.inf)  # an infinite gradient (a loss that overflowed) meets every z
    g[::2] = rng.normal(size=(3, 4))
    y = act.f(z, xp=xp)
    if act.f_out is not None:
        got = act.f_out(ops, z, asarray(np.zeros((5, 4))))
        np.testing.assert_allclose(anynet.to_numpy(got), anynet.to_numpy(y), rtol=1e-12)
    if act.vjp_out is not None:
        want = anynet.to_numpy(act.vjp(z, y, asarray(g), xp=xp))
        got = anynet.to_numpy(act.vjp_out(ops, z, y, asarray(g), asarray(np.zeros((5, 4)))))
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))  # relu: 0, not inf·0 = NaN, where z <= 0
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_the_buffer_engine_runs_where_the_adapter_names_out_arrays(backend, asarray, rng):
    """``BUFFER_BACKENDS`` comes from the adapters (those naming ``out_ops``); ``buffer_ops`` builds
    that class, whose arrays stay on the backend and device of ``like``, and the others are refused."""
    from anynet import backend as B

    assert B.BUFFER_BACKENDS == ("numpy", "cupy", "torch")
    ops = B.buffer_ops(backend)
    if backend not in B.BUFFER_BACKENDS:
        assert ops is None
        runs_on = r"\(the buffer engine runs on \['numpy', 'cupy', 'torch'\]\)"
        with pytest.raises(ValueError, match=rf"backend '{backend}' has no out= arrays {runs_on}"):
            anynet.Network([2, 1]).fit(rng.normal(size=(4, 2)), rng.random((4, 1)), engine="buffer", verbose=0)
        return
    assert ops.name == backend
    like = asarray(rng.normal(size=(2, 3)))
    for made in (ops.empty((2, 3), like), ops.from_host(np.ones((2, 3)), like), ops.index_zero(like)):
        assert B.backend_of(made) == backend
        assert B.device_of(made) == B.device_of(like)
