"""One loop, three faces: what the training loop (``anynet.train.fit``) does is written once there, and
``Network.fit``, ``Ensemble.fit`` and ``MLPSearchCV`` all get it: callbacks, an interrupt's kept epochs,
``sample_weight``."""

import numpy as np
import pytest

import anynet

SIZES = [3, 5, 2]
NET = {"activation": "tanh", "output_activation": "identity", "dtype": "float64"}
FIT = {"epochs": 6, "lr": 0.05, "loss": "half_mse", "batch_size": 4, "seed": 3, "verbose": 0}


def make(face):
    if face == "network":
        return anynet.Network(SIZES, seed=4, **NET)
    return anynet.Ensemble(SIZES, members=3, seed=4, **NET)


def histories(model):
    return model.histories if isinstance(model, anynet.Ensemble) else [model.history]


def weights(model):
    return [anynet.to_numpy(W) for W, _ in model.layers]


def data(rng, n=24):
    X, t = rng.normal(size=(n, 3)), rng.normal(size=(n, 2))
    w = rng.uniform(0.5, 2.0, n)
    w[::4] = 0.0
    return X, t, w, np.where(w[:, None] == 0, 1e3, t)  # garbage where the weight is 0


@pytest.mark.parametrize("face", ["network", "ensemble"])
def test_callbacks_see_every_epoch_and_can_stop_training(rng, face):
    X, t, _, _ = data(rng)
    seen = []

    def log(epoch, logs):
        seen.append((epoch, logs["loss"], logs["network"]))

    model = make(face)
    model.fit(X, t, callbacks=[lambda epoch, logs: epoch == 2, log], **FIT)
    assert [epoch for epoch, _, _ in seen] == [0, 1, 2]  # every callback ran, the stopping epoch too
    assert all(h.epochs == 3 and h.stopped_early for h in histories(model))
    # logs hold each member's loss, as its history does
    np.testing.assert_array_equal(
        np.reshape([loss for _, loss, _ in seen], (3, -1)).T, [h.loss for h in histories(model)]
    )
    last = seen[-1][2]
    assert type(last) is type(model)
    for a, b in zip(weights(last), weights(model), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("batch_size", [None, 4], ids=["full-batch", "mini-batch"])
@pytest.mark.parametrize("face", ["network", "ensemble"])
def test_an_interrupt_from_a_callback_keeps_the_completed_epochs(rng, face, batch_size):
    X, t, _, _ = data(rng)

    def interrupt(epoch, logs):
        if epoch == 3:
            raise KeyboardInterrupt

    model, alone = make(face), make(face)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, t, callbacks=[interrupt], **(FIT | {"batch_size": batch_size}))
    alone.fit(X, t, **(FIT | {"batch_size": batch_size, "epochs": 4}))
    assert model.epochs_trained == alone.epochs_trained == 4
    for a, b in zip(histories(model), histories(alone), strict=True):
        np.testing.assert_allclose(a.loss, b.loss, rtol=1e-12)
    for a, b in zip(weights(model), weights(alone), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("face", ["network", "ensemble"])
def test_a_row_of_weight_0_teaches_nothing(rng, face):
    X, t, w, junk = data(rng)
    clean, garbage, plain = make(face), make(face), make(face)
    clean.fit(X, t, sample_weight=w, **FIT)
    garbage.fit(X, junk, sample_weight=w, **FIT)
    plain.fit(X, t, **FIT)
    for a, b, c in zip(weights(clean), weights(garbage), weights(plain), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        assert not np.allclose(a, c)  # the weights did weigh


def test_each_weighted_member_is_the_network_trained_alone(rng):
    X, t, w, _ = data(rng)
    ens = anynet.Ensemble(SIZES, members=3, seed=4, **NET)
    ens.fit(X, t, sample_weight=w, validation_data=(X[:5], t[:5]), **(FIT | {"lr": [0.01, 0.05, 0.1]}))
    for i, member in enumerate(ens.members):
        net = anynet.Network(SIZES, seed=4 + i, **NET)
        net.fit(
            X,
            t,
            sample_weight=w,
            validation_data=(X[:5], t[:5]),
            engine="reference",
            **(FIT | {"lr": ens.histories[i].lr[0]}),
        )
        np.testing.assert_allclose(ens.histories[i].loss, net.history.loss, rtol=1e-9)
        np.testing.assert_allclose(ens.histories[i].val_loss, net.history.val_loss, rtol=1e-9)
        for a, b in zip(weights(member), weights(net), strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


@pytest.mark.skip_backend("dask", reason="on Dask every candidate trains alone (tests/test_search.py)")
def test_a_row_of_weight_0_teaches_nothing_in_a_search(rng):
    pytest.importorskip("sklearn")
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import KFold

    from anynet.sklearn import MLPRegressor, MLPSearchCV

    X, t, w, junk = data(rng, 36)
    est = MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", max_iter=6, batch_size=5, random_state=0)
    grid = {"alpha": [1e-4, 1e-2], "learning_rate_init": [0.01, 0.05]}
    runs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for y, weights_ in ((t, w), (junk, w), (t, None)):
            runs.append(MLPSearchCV(est, grid, cv=KFold(3), refit=False).fit(X, y, sample_weight=weights_))
    clean, garbage, plain = (r.cv_results_["mean_test_score"] for r in runs)
    assert runs[0].stacks_[0]["stacked"]
    np.testing.assert_allclose(clean, garbage, rtol=1e-12)  # R² weighs the rows as the fits did
    assert not np.allclose(clean, plain)


@pytest.mark.parametrize("face", ["network", "ensemble"])
def test_an_interrupt_inside_a_quiet_full_batch_fit_keeps_every_completed_epoch(rng, monkeypatch, face):
    """No callback, no progress: the engine's whole-run hook trains many epochs in one call (for a
    stack too), and an interrupt inside it still keeps exactly the epochs it completed."""
    import itertools

    X, t, _, _ = data(rng)
    model, alone = make(face), make(face)
    act = anynet.activations.get("tanh")
    Engine = anynet.engines.select(
        "auto",
        model.backend,
        acts=(act, act),
        loss=anynet.losses.get("half_sse"),
        opt=anynet.optimizers.SGD(),
        stack=face == "ensemble",
    )
    if hasattr(Engine, "run") and not hasattr(Engine, "partial"):
        pytest.skip(f"the {Engine.name} engine's whole run is one compiled call: all of a chunk or none of it")
    monkeypatch.setenv("ANYNET_CUDA_GRAPHS", "0")  # every epoch through the Python step
    calls, step = itertools.count(1), Engine.step

    def failing_step(self, *args, **kwargs):
        out = step(self, *args, **kwargs)  # the update is done: the worst moment
        if next(calls) == 37:
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(Engine, "step", failing_step)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, t, **(FIT | {"epochs": 500, "batch_size": None}))
    monkeypatch.undo()
    alone.fit(X, t, **(FIT | {"epochs": 36, "batch_size": None}))
    assert model.epochs_trained == alone.epochs_trained == 36
    for a, b in zip(histories(model), histories(alone), strict=True):
        assert a.loss == b.loss
    for a, b in zip(weights(model), weights(alone), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("path", ["whole-run", "epoch-by-epoch"])
@pytest.mark.parametrize("face", ["network", "ensemble"])
def test_an_overflow_in_the_last_update_keeps_the_weights_before_it(rng, face, path):
    """Every loss finite, but the last epoch's update overflows: the weights before it are kept, in a
    whole run as epoch by epoch."""
    X, t, _, _ = data(rng)
    fit = FIT | {"batch_size": None, "epochs": 5, "schedule": lambda lr, e, n: 1e308 if e == n - 1 else lr}
    if path == "epoch-by-epoch":
        fit["callbacks"] = [lambda epoch, logs: None]
    model, before = make(face), make(face)
    with pytest.raises(anynet.DivergedError, match="weights became infinite"):
        model.fit(X, 1e3 * t, **fit)
    before.fit(X, 1e3 * t, **(FIT | {"batch_size": None, "epochs": 4}))
    assert all(h.epochs == 5 and np.isfinite(h.loss).all() for h in histories(model))
    for a, b in zip(weights(model), weights(before), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
