"""anynet.Ensemble: k networks trained as one stack compute what each would alone.

Every member is held to ``Network(sizes, seed=seeds[i])`` trained by itself with that member's
``lr``/``alpha``/``momentum`` and the same fit ``seed``, on the backend under test.
"""

import contextlib

import numpy as np
import pytest

import anynet
from anynet import activations, core, losses

SIZES = [3, 5, 3]
NET = {"activation": "tanh", "output_activation": "softmax", "dtype": "float64"}


def _data(rng, n=20):
    X = rng.normal(size=(n, 3))
    return X, rng.integers(0, 3, n)


def _alone(i, first_seed=4, **fit):
    """Member ``i`` trained alone: its own seed, its own entries of the per-member lists."""
    net = anynet.Network(SIZES, seed=first_seed + i, **NET)
    own = {k: (v[i] if isinstance(v, list) else v) for k, v in fit.items()}
    with contextlib.suppress(anynet.DivergedError):
        net.fit(verbose=0, engine="reference", **own)
    return net


def _assert_member(ens, i, net, tol=1e-9):
    member = ens.members[i]
    for (Wa, ba), (Wb, bb) in zip(member.layers, net.layers, strict=True):
        np.testing.assert_allclose(anynet.to_numpy(Wa), anynet.to_numpy(Wb), rtol=0, atol=tol)
        np.testing.assert_allclose(anynet.to_numpy(ba), anynet.to_numpy(bb), rtol=0, atol=tol)
    ha, hb = ens.histories[i], net.history
    np.testing.assert_allclose(ha.loss, hb.loss, rtol=tol, atol=tol)
    np.testing.assert_allclose(ha.val_loss, hb.val_loss, rtol=tol, atol=tol)
    assert (ha.best_epoch, ha.stopped_early, ha.restored_best) == (hb.best_epoch, hb.stopped_early, hb.restored_best)


OPTIONS = {
    "sgd": {"optimizer": "sgd", "lr": [0.5, 0.1, 0.3], "alpha": [0.0, 0.1, 0.01]},
    "momentum": {"optimizer": "sgd", "lr": 0.2, "momentum": [0.0, 0.9, 0.5], "nesterov": True},
    "adam": {"optimizer": "adam", "lr": [0.01, 0.03, 0.003], "alpha": 0.01},
}


@pytest.mark.parametrize("batch_size", [None, 6])
@pytest.mark.parametrize("optimizer", list(OPTIONS))
def test_each_member_is_the_network_trained_alone(rng, optimizer, batch_size):
    X, y = _data(rng)
    fit = OPTIONS[optimizer] | {"epochs": 6, "batch_size": batch_size, "seed": 11}
    ens = anynet.Ensemble(SIZES, members=3, seed=4, **NET)
    hists = ens.fit(X, y, verbose=0, **fit)
    assert hists == ens.histories
    assert len(hists) == 3
    for i in range(3):
        _assert_member(ens, i, _alone(i, X=X, t=y, **fit))
    # the members really differ: different seeds and hyperparameters
    assert not np.allclose(anynet.to_numpy(ens.members[0].weights[0]), anynet.to_numpy(ens.members[1].weights[0]))


def test_the_reference_engine_trains_the_same_stack(rng):
    X, y = _data(rng)
    fit = OPTIONS["adam"] | {"epochs": 2, "batch_size": 10, "seed": 2}
    a = anynet.Ensemble(SIZES, members=3, seed=4, **NET)
    b = anynet.Ensemble(SIZES, members=3, seed=4, **NET)
    a.fit(X, y, verbose=0, **fit)
    b.fit(X, y, verbose=0, engine="reference", **fit)
    for (Wa, _), (Wb, _) in zip(a.layers, b.layers, strict=True):
        np.testing.assert_allclose(anynet.to_numpy(Wa), anynet.to_numpy(Wb), rtol=0, atol=1e-9)


def test_a_second_fit_continues_like_a_network_does(rng):
    X, y = _data(rng)
    fit = OPTIONS["adam"] | {"epochs": 3, "seed": 5}
    ens = anynet.Ensemble(SIZES, seeds=[4, 5, 6], **NET)
    ens.fit(X, y, verbose=0, **fit)
    ens.fit(X, y, verbose=0, **fit)
    for i in range(3):
        net = _alone(i, X=X, t=y, **fit)
        own = {k: (v[i] if isinstance(v, list) else v) for k, v in fit.items()}
        net.fit(X, y, verbose=0, engine="reference", **own)
        _assert_member(ens, i, net)
    assert ens.epochs_trained == 6


def test_members_stop_early_on_their_own(rng):
    """With patience, a member that stops is frozen at its best weights while the others go on."""
    X, y = _data(rng, 30)
    Xv, yv = _data(rng, 12)
    fit = {"optimizer": "sgd", "lr": [3.0, 0.05, 1.0], "epochs": 40, "patience": 3, "validation_data": (Xv, yv)}
    ens = anynet.Ensemble(SIZES, members=3, seed=4, **NET)
    ens.fit(X, y, verbose=0, seed=1, **fit)
    lengths = [h.epochs for h in ens.histories]
    assert min(lengths) < max(lengths), lengths  # they stopped at different epochs
    assert any(h.stopped_early for h in ens.histories)
    for i in range(3):
        _assert_member(ens, i, _alone(i, X=X, t=y, **(fit | {"seed": 1})))
    best = ens.best("val_loss")
    scores = [ens.histories[i].val_loss[ens.histories[i].best_epoch] for i in range(3)]
    winner = ens.members[int(np.argmin(scores))]
    np.testing.assert_array_equal(anynet.to_numpy(best.weights[0]), anynet.to_numpy(winner.weights[0]))
    assert ens.best_index("val_loss") == int(np.argmin(scores))


def test_a_diverging_member_is_frozen_and_reported_while_the_others_train_on(rng):
    X, y = _data(rng)
    fit = {"optimizer": "sgd", "lr": [0.01, 1e300, 0.02], "epochs": 8, "seed": 0}
    ens = anynet.Ensemble(SIZES, members=3, seed=4, activation="relu", output_activation="identity", dtype="float64")
    with pytest.warns(RuntimeWarning, match=r"member\(s\) \[1\] of 3 diverged"):
        ens.fit(X, np.eye(3)[y], verbose=0, loss="mse", **fit)
    assert list(ens.diverged) == [1]
    assert ens.histories[1].epochs < 8
    assert ens.histories[0].epochs == ens.histories[2].epochs == 8
    for i in range(3):
        net = anynet.Network(SIZES, seed=4 + i, activation="relu", output_activation="identity", dtype="float64")
        with pytest.raises(anynet.DivergedError) if i == 1 else contextlib.nullcontext():
            net.fit(X, np.eye(3)[y], verbose=0, loss="mse", engine="reference", **(fit | {"lr": fit["lr"][i]}))
        for (Wa, _), (Wb, _) in zip(ens.members[i].layers, net.layers, strict=True):
            np.testing.assert_allclose(anynet.to_numpy(Wa), anynet.to_numpy(Wb), rtol=0, atol=1e-9)
        assert np.isfinite(anynet.to_numpy(ens.members[i].weights[0])).all()
    assert ens.best_index("loss") != 1


def test_every_member_diverging_raises(rng):
    X, y = _data(rng)
    ens = anynet.Ensemble(SIZES, members=2, seed=4, activation="relu", output_activation="identity", dtype="float64")
    with pytest.raises(anynet.DivergedError, match="every member diverged"):
        ens.fit(30 * X, np.eye(3)[y], verbose=0, loss="mse", lr=1e300, epochs=5)
    assert sorted(ens.diverged) == [0, 1]


def test_predict_is_the_members_mean(rng):
    X, y = _data(rng)
    ens = anynet.Ensemble(SIZES, members=4, seed=1, **NET)
    ens.fit(X, y, epochs=3, lr=[0.1, 0.2, 0.3, 0.4], verbose=0)
    each = anynet.to_numpy(ens.predict_members(X))
    assert each.shape == (4, 20, 3)
    for i, net in enumerate(ens.members):
        np.testing.assert_allclose(each[i], anynet.to_numpy(net.predict(X)), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(anynet.to_numpy(ens.predict(X, member=i)), each[i], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(anynet.to_numpy(ens.predict(X)), each.mean(axis=0), rtol=1e-12, atol=1e-12)
    labels = anynet.to_numpy(ens.predict_classes(X))
    np.testing.assert_array_equal(labels, each.mean(axis=0).argmax(axis=1))


def test_members_are_networks_with_their_own_seed_history_and_optimizer(rng, backend):
    X, y = _data(rng)
    ens = anynet.Ensemble(SIZES, members=2, seed=7, **NET)
    ens.fit(X, y, epochs=2, optimizer="sgd", momentum=[0.5, 0.9], verbose=0)
    m = ens.members[1]
    assert isinstance(m, anynet.Network)
    assert m.backend == backend
    assert m.seed == 8
    assert m.history is ens.histories[1]
    assert m._opt.momentum == 0.9
    before = anynet.to_numpy(ens.layers[0][0]).copy()
    m.fit(X, y, epochs=2, verbose=0)  # training a member leaves the ensemble as it was
    np.testing.assert_array_equal(anynet.to_numpy(ens.layers[0][0]), before)


# --------------------------------------------------------------------------- the core on a stack


@pytest.mark.parametrize("loss_name", list(losses.LOSSES))
def test_the_core_on_a_stack_is_the_core_on_each_member(xp, asarray, rng, loss_name):
    """forward/backward/loss on (k, n_in, n_out) stacks give each member's 2-D result, with a
    per-member alpha as (k, 1, 1)."""
    loss = losses.get(loss_name)
    out = loss.output or "identity"
    acts = (activations.get("tanh"), activations.get(out))
    k, X = 3, asarray(rng.normal(size=(7, 4)))
    t = asarray(np.eye(2)[rng.integers(0, 2, 7)] if out == "softmax" else rng.random((7, 2)).round())
    stack = [(asarray(rng.normal(size=(k, 4, 5))), asarray(rng.normal(size=(k, 1, 5))))]
    stack.append((asarray(rng.normal(size=(k, 5, 2))), asarray(rng.normal(size=(k, 1, 2)))))
    alphas = [0.0, 0.3, 2.0]
    value, grads, y = core.loss_and_grads(
        stack, X, t, acts=acts, loss=loss, alpha=asarray(np.reshape(alphas, (k, 1, 1))), xp=xp
    )
    assert tuple(value.shape) == (k,)
    assert tuple(y.shape) == (k, 7, 2)
    for i in range(k):
        one = [(W[i, ...], b[i, 0, ...]) for W, b in stack]
        v1, g1, y1 = core.loss_and_grads(one, X, t, acts=acts, loss=loss, alpha=alphas[i], xp=xp)
        np.testing.assert_allclose(anynet.to_numpy(value)[i], anynet.to_numpy(v1), rtol=1e-12)
        np.testing.assert_allclose(anynet.to_numpy(y)[i], anynet.to_numpy(y1), rtol=1e-12)
        for (gw, gb), (gw1, gb1) in zip(grads, g1, strict=True):
            np.testing.assert_allclose(anynet.to_numpy(gw)[i], anynet.to_numpy(gw1), rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(anynet.to_numpy(gb)[i, 0], anynet.to_numpy(gb1), rtol=1e-12, atol=1e-15)
        acc = anynet.to_numpy(core.accuracy_sum(y, t, xp=xp))
        assert acc[i] == float(anynet.to_numpy(core.accuracy_sum(y1, t, xp=xp)))


# --------------------------------------------------------------------------- bad input


def _weights(ens):
    return [anynet.to_numpy(W).copy() for W, _ in ens.layers]


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"lr": [0.1, 0.2]}, ValueError, "lr has 2 values but the ensemble has 3 members"),
        ({"alpha": [0, 0, 0, 0]}, ValueError, "alpha has 4 values but the ensemble has 3 members"),
        ({"momentum": [[0.1, 0.2, 0.3]]}, ValueError, "momentum has 3 values but the ensemble has 3 members"),
        ({"lr": [0.1, -1.0, 0.2]}, ValueError, "lr must be a positive finite number, got -1.0"),
        ({"engine": "distributed"}, ValueError, "engine='distributed' cannot run this: it trains one network, not a"),
        ({"engine": "stacked"}, ValueError, "unknown engine 'stacked'"),
        ({"callbacks": ["print"]}, TypeError, "callbacks must be callables"),
        ({"epochs": 2, "optimizer": "nadam"}, ValueError, "unknown optimizer 'nadam'"),
    ],
)
def test_bad_fit_options_are_refused_before_training(rng, options, error, match):
    X, y = _data(rng)
    ens = anynet.Ensemble(SIZES, members=3, **NET)
    before = _weights(ens)
    with pytest.raises(error, match=match):
        ens.fit(X, y, verbose=0, **options)
    for a, b in zip(before, _weights(ens), strict=True):
        np.testing.assert_array_equal(a, b)
    assert ens.histories == [None] * 3
    assert ens.epochs_trained == 0


def test_bad_construction_and_member_indices_are_refused(rng):
    with pytest.raises(ValueError, match="members must be a positive integer, got 0"):
        anynet.Ensemble(SIZES, members=0)
    with pytest.raises(ValueError, match="give the number of members"):
        anynet.Ensemble(SIZES)
    with pytest.raises(ValueError, match="members=3 but 2 seeds were given"):
        anynet.Ensemble(SIZES, members=3, seeds=[1, 2])
    with pytest.raises(TypeError, match="seeds must be integers or None"):
        anynet.Ensemble(SIZES, seeds=[1, "2"])
    ens = anynet.Ensemble(SIZES, members=3, **NET)
    X, _ = _data(rng)
    with pytest.raises(IndexError, match=r"member must be an integer index in \[0, 3\)"):
        ens.predict(X, member=3)
    with pytest.raises(IndexError, match=r"in \[0, 3\)"):
        ens.member(-4)
    with pytest.raises(ValueError, match="has not been trained"):
        ens.best("val_loss")
    ens.fit(X, _data(rng)[1], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="no member has a val_loss"):
        ens.best("val_loss")
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        ens.best("f1")


# --------------------------------------------------------------------------- checkpoints


def test_save_and_load_round_trip(tmp_path, rng, backend):
    X, y = _data(rng)
    Xv, yv = _data(rng, 8)
    ens = anynet.Ensemble(SIZES, seeds=[3, 9], **NET)
    ens.fit(
        X, np.array(["a", "b", "c"])[y], epochs=3, lr=[0.1, 0.3], validation_data=(Xv, np.array(["a", "b", "c"])[yv])
    )
    path = anynet.save(ens, tmp_path / "ens.npz")
    back = anynet.load(path)
    assert isinstance(back, anynet.Ensemble)
    assert (back.sizes, back.seeds, back.activation, back.output_activation) == (SIZES, [3, 9], "tanh", "softmax")
    assert back.backend == backend
    assert back.epochs_trained == 3
    assert list(back.classes) == ["a", "b", "c"]
    for (Wa, ba), (Wb, bb) in zip(ens.layers, back.layers, strict=True):
        np.testing.assert_array_equal(anynet.to_numpy(Wa), anynet.to_numpy(Wb))
        np.testing.assert_array_equal(anynet.to_numpy(ba), anynet.to_numpy(bb))
    for ha, hb in zip(ens.histories, back.histories, strict=True):
        assert ha.loss == hb.loss
        assert ha.val_loss == hb.val_loss
    np.testing.assert_array_equal(anynet.to_numpy(back.predict_classes(X)), anynet.to_numpy(ens.predict_classes(X)))
    assert back.best_index("val_loss") == ens.best_index("val_loss")
    back.fit(X, np.array(["a", "b", "c"])[y], epochs=1, verbose=0)  # trains on, with a fresh optimizer
    assert back.epochs_trained == 4


def test_a_damaged_ensemble_checkpoint_is_refused(tmp_path, rng):
    import json

    ens = anynet.Ensemble(SIZES, members=2, **NET)
    path = anynet.save(ens, tmp_path / "ens.npz")
    with np.load(path) as f:
        arrays = dict(f)
    config = json.loads(str(arrays["anynet_config"]))
    bad = dict(arrays, anynet_config=np.asarray(json.dumps(config | {"seeds": [1, 2, 3]})))
    np.savez(tmp_path / "seeds.npz", **bad)
    with pytest.raises(anynet.CheckpointError, match="histories is not a list of one entry per member"):
        anynet.load(tmp_path / "seeds.npz")
    bad = dict(arrays, W0=arrays["W0"][:1])
    np.savez(tmp_path / "shape.npz", **bad)
    with pytest.raises(anynet.CheckpointError, match=r"W0 should be finite floats of shape \(2, 3, 5\)"):
        anynet.load(tmp_path / "shape.npz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        anynet.save(ens, tmp_path / "missing" / "ens.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ens.npz", "seeds.npz", "shape.npz"]


# --------------------------------------------------------------------------- the command line


def _cli(capsys, *args):
    from anynet import cli

    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_trains_members_at_once_and_saves_the_ensemble_or_the_best(tmp_path, capsys, backend, device):
    place = ("--backend", backend, "--device", device, "--dtype", "float64", "-q")
    common = (
        "train",
        "moons",
        "--members",
        3,
        "--lr",
        "0.001,0.03",
        "--epochs",
        4,
        "--hidden",
        4,
        "--batch-size",
        "full",
        *place,
    )
    code, out, _ = _cli(capsys, *common, "--out", tmp_path / "all.npz")
    assert code == 0
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [(r[0], r[1], r[2]) for r in rows] == [("0", "0", "0.001"), ("1", "1", "0.03"), ("2", "2", "0.001")]
    ens = anynet.load(tmp_path / "all.npz")
    assert isinstance(ens, anynet.Ensemble)
    assert ens.seeds == [0, 1, 2]
    assert ens.metadata["data"] == "moons"
    best = [r[0] for r in rows if "<-" in r]
    assert best == [str(ens.best_index("val_loss"))]
    code, out, _ = _cli(capsys, *common, "--keep", "best", "--out", tmp_path / "best.npz")
    assert code == 0
    net = anynet.load(tmp_path / "best.npz")
    assert isinstance(net, anynet.Network)
    assert net.metadata["data"] == "moons"
    np.testing.assert_array_equal(anynet.to_numpy(net.weights[0]), anynet.to_numpy(ens.member(int(best[0])).weights[0]))
    code, _, err = _cli(capsys, "evaluate", tmp_path / "all.npz", "moons")
    assert code == 1
    assert "holds an ensemble of 3 networks" in err


@pytest.mark.parametrize(
    ("extra", "code", "match"),
    [
        (("--members", 2, "--lr", "0.1,0.2,0.3"), 1, "--lr gives 3 values but --members is 2"),
        (("--lr", "0.1,fast", "--members", 2), 2, "expected a positive learning rate, or several separated by commas"),
        (("--members", 2, "--plot", "loss.png"), 1, "--plot draws one network"),
    ],
)
def test_cli_refuses_bad_member_options_and_writes_nothing(tmp_path, capsys, monkeypatch, extra, code, match):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) if code == 2 else contextlib.nullcontext():
        got, _, err = _cli(capsys, "train", "xor", "--epochs", 2, *extra)
        assert got == code
        assert match in err
    if code == 2:
        assert match in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_member_whose_last_update_overflows_keeps_the_weights_before_it(rng):
    """Every loss finite, but the last step's update overflows one member's weights: that member
    keeps the weights the step started from (its last finite loss's), the other trains on."""
    X, y = _data(rng)
    ens = anynet.Ensemble(SIZES, members=2, seed=4, activation="relu", output_activation="identity", dtype="float64")
    start = [anynet.to_numpy(W).copy() for W in ens.members[1].weights]
    with pytest.warns(RuntimeWarning, match=r"member\(s\) \[1\] of 2 diverged"):
        ens.fit(X * 1e4, np.eye(3)[y], verbose=0, loss="mse", optimizer="sgd", lr=[0.01, 1e308], epochs=1)
    assert list(ens.diverged) == [1]
    for W, W0 in zip(ens.members[1].weights, start, strict=True):
        np.testing.assert_array_equal(anynet.to_numpy(W), W0)
    assert all(np.isfinite(anynet.to_numpy(W)).all() for W in ens.members[0].weights)
