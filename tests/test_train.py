"""Training: fit's options against reference formulas written out in NumPy, history, validation,
early stopping, callbacks, continuing and resetting, reproducibility, divergence, plot and progress."""

import io
import itertools
import math

import numpy as np
import pytest
from conftest import tol

import anynet
from anynet import activations, losses
from anynet import backend as B
from anynet.cli import XOR_T, XOR_X
from anynet.optimizers import SGD
from anynet.progress import Progress


def host(net):
    return [anynet.to_numpy(a).copy() for a in net.weights + net.biases]


def assert_weights(net, expected, dtype="float64"):
    for got, want in zip(host(net), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=tol(dtype), atol=tol(dtype))


def snapshots():
    """A callback that keeps a host copy of the weights after every epoch, and the list it fills."""
    kept = []

    def keep(epoch, logs):
        kept.append(host(logs["network"]))

    return keep, kept


# --------------------------------------------------------------------------- a reference in NumPy
#
# A linear model (one identity layer) with half_mse has the gradient X^T (y - t)/n in closed form,
# so the optimizers, L2, schedules and batching can be checked against their formulas.


def linear(rng, n_in=3, n_out=2):
    W, b = rng.normal(size=(n_in, n_out)), rng.normal(size=n_out)
    return W, b, anynet.Network.from_weights([W], biases=[b], activation="identity", dtype="float64")


def grads(W, b, X, t, alpha=0.0):
    d = (X @ W + b - t) / X.shape[0]
    return X.T @ d + alpha / X.shape[0] * W, d.sum(axis=0)


def half_mse(W, b, X, t):
    return 0.5 * np.sum((X @ W + b - t) ** 2) / X.shape[0]


def reference(W, b, X, t, lrs, *, optimizer="sgd", momentum=0.0, nesterov=False, alpha=0.0, batches=None):
    """Run the update rules as scikit-learn writes them; ``batches`` lists row indices per step."""
    p = [W.copy(), b.copy()]
    vel = [np.zeros_like(W), np.zeros_like(b)]
    m, v, count = [np.zeros_like(W), np.zeros_like(b)], [np.zeros_like(W), np.zeros_like(b)], 0
    losses = []
    for lr in lrs:
        total = 0.0
        for rows in batches or [np.arange(X.shape[0])]:
            Xb, tb = X[rows], t[rows]
            # the recorded loss includes the L2 penalty, as scikit-learn's loss_curve_ does
            total += (half_mse(p[0], p[1], Xb, tb) + 0.5 * alpha * np.sum(p[0] ** 2) / len(rows)) * len(rows)
            g = grads(p[0], p[1], Xb, tb, alpha)
            if optimizer == "adam":
                count += 1
                m = [0.9 * mi + 0.1 * gi for mi, gi in zip(m, g, strict=True)]
                v = [0.999 * vi + 0.001 * gi * gi for vi, gi in zip(v, g, strict=True)]
                step = lr * math.sqrt(1 - 0.999**count) / (1 - 0.9**count)
                p = [pi - step * mi / (np.sqrt(vi) + 1e-8) for pi, mi, vi in zip(p, m, v, strict=True)]
            else:
                vel = [momentum * vi - lr * gi for vi, gi in zip(vel, g, strict=True)]
                if nesterov:
                    p = [pi + momentum * vi - lr * gi for pi, vi, gi in zip(p, vel, g, strict=True)]
                else:
                    p = [pi + vi for pi, vi in zip(p, vel, strict=True)]
        losses.append(total / X.shape[0])
    return p, losses


@pytest.mark.parametrize(
    "options",
    [
        {"optimizer": "sgd"},
        {"optimizer": "sgd", "momentum": 0.9},
        {"optimizer": "sgd", "momentum": 0.9, "nesterov": True},
        {"optimizer": "adam"},
        {"optimizer": "sgd", "alpha": 0.5},
        {"optimizer": "adam", "alpha": 0.5, "momentum": 0.0},
    ],
    ids=["sgd", "momentum", "nesterov", "adam", "sgd-l2", "adam-l2"],
)
def test_optimizers_follow_their_formulas(rng, options):
    X, t = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    W, b, net = linear(rng)
    lr = 0.1
    history = net.fit(X, t, epochs=4, lr=lr, loss="half_mse", verbose=0, **options)
    want, losses = reference(W, b, X, t, [lr] * 4, **options)
    assert_weights(net, want)
    np.testing.assert_allclose(history.loss, losses, rtol=1e-12)


def test_l2_penalty_shrinks_the_weights(rng):
    X, t = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    _, _, plain = linear(np.random.default_rng(0))
    _, _, decayed = linear(np.random.default_rng(0))
    plain.fit(X, t, epochs=5, lr=0.2, loss="half_mse", verbose=0)
    decayed.fit(X, t, epochs=5, lr=0.2, loss="half_mse", alpha=2.0, verbose=0)
    assert np.linalg.norm(host(decayed)[0]) < np.linalg.norm(host(plain)[0])


SCHEDULES = {
    "constant": lambda lr, e, n: lr,
    "invscaling": lambda lr, e, n: lr / (e + 1) ** 0.5,
    "step": lambda lr, e, n: lr * 0.1 ** (e // 30),
    "cosine": lambda lr, e, n: 0.5 * lr * (1 + math.cos(math.pi * e / n)),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedules_show_in_history_and_drive_the_steps(rng, name):
    epochs = 32 if name == "step" else 5
    X, t = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    W, b, net = linear(rng)
    history = net.fit(X, t, epochs=epochs, lr=0.05, loss="half_mse", schedule=name, verbose=0)
    lrs = [SCHEDULES[name](0.05, e, epochs) for e in range(epochs)]
    np.testing.assert_allclose(history.lr, lrs, rtol=1e-15)
    assert_weights(net, reference(W, b, X, t, lrs)[0])


def test_a_callable_schedule(rng):
    X, t = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    W, b, net = linear(rng)
    history = net.fit(X, t, epochs=4, lr=0.3, loss="half_mse", schedule=lambda lr, e, n: lr if e == 0 else 0.0)
    assert history.lr == [0.3, 0.0, 0.0, 0.0]
    assert_weights(net, reference(W, b, X, t, [0.3])[0])  # only the first epoch moved


# --------------------------------------------------------------------------- batches and shuffling


def test_full_batch_is_the_default(rng):
    X, t = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    W, b, net = linear(rng)
    net.fit(X, t, epochs=3, lr=0.1, loss="half_mse", verbose=0)
    assert_weights(net, reference(W, b, X, t, [0.1] * 3)[0])


def test_mini_batches_in_order_without_shuffle(rng):
    X, t = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    W, b, net = linear(rng)
    history = net.fit(X, t, epochs=2, lr=0.1, loss="half_mse", batch_size=2, shuffle=False, verbose=0)
    batches = [np.arange(0, 2), np.arange(2, 4), np.arange(4, 5)]  # the last batch is short
    want, losses = reference(W, b, X, t, [0.1] * 2, batches=batches)
    assert_weights(net, want)
    np.testing.assert_allclose(history.loss, losses, rtol=1e-12)


def test_a_shuffled_epoch_visits_each_row_once(rng):
    X, t = rng.normal(size=(3, 3)), rng.normal(size=(3, 2))
    W, b, net = linear(rng)
    # batches of 2 and 1 rows: the short last batch is shuffled in too
    net.fit(X, t, epochs=1, lr=0.2, loss="half_mse", batch_size=2, seed=4, verbose=0)
    got = host(net)
    matches = []
    for last in range(3):  # the order within a batch does not change its gradient
        first = [i for i in range(3) if i != last]
        want, _ = reference(W, b, X, t, [0.2], batches=[first, [last]])
        matches.append(all(np.allclose(g, w, rtol=1e-12, atol=1e-12) for g, w in zip(got, want, strict=True)))
    assert sum(matches) == 1


def test_shuffling_is_seeded(rng):
    X, t = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    runs = {}
    for key, seed in [("a", 1), ("b", 1), ("c", 2)]:
        _, _, net = linear(np.random.default_rng(0))
        net.fit(X, t, epochs=3, lr=0.1, loss="half_mse", batch_size=2, seed=seed, verbose=0)
        runs[key] = host(net)
    for a, b in zip(runs["a"], runs["b"], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(runs["a"][0], runs["c"][0])


# --------------------------------------------------------------------------- history, validation


LEARN = pytest.mark.skip_backend(
    "dask", reason="dozens of lazy steps at ~100 ms each; the other label tests cover Dask in a few steps"
)


def test_history_fields():
    net = anynet.Network([3, 4, 2], output_activation="softmax", seed=0)
    labels = np.array([0, 1, 1, 0])
    history = net.fit(XOR_X, labels, epochs=4, lr=0.5, validation_data=(XOR_X, labels), verbose=0)
    assert history.epochs == 4
    for name in ("loss", "val_loss", "accuracy", "val_accuracy", "lr"):
        values = getattr(history, name)
        assert len(values) == 4
        assert all(type(v) is float and math.isfinite(v) for v in values)
    assert all(0.0 <= a <= 1.0 for a in history.accuracy + history.val_accuracy)
    assert history.monitor == "val_loss"
    assert history.best_epoch == int(np.argmin(history.val_loss))
    assert history.best_value == min(history.val_loss)
    assert type(history.wall_time) is float
    assert history.wall_time >= 0.0
    assert net.history is history
    assert net.epochs_trained == 4


def test_regression_tracks_no_accuracy_unless_asked():
    net = anynet.Network([3, 4, 1], seed=0)
    assert net.fit(XOR_X, XOR_T, epochs=2, verbose=0).accuracy == []
    history = net.fit(XOR_X, XOR_T, epochs=2, metrics=["accuracy"], verbose=0)
    assert len(history.accuracy) == 2


def test_loss_and_accuracy_are_measured_at_each_epochs_start(backend):
    """A full-batch epoch computes its loss and accuracy on the weights it starts from."""
    net = anynet.Network([3, 4, 2], activation="tanh", output_activation="softmax", seed=1)
    labels = np.array([1, 0, 0, 1])
    y = anynet.to_numpy(net.predict(XOR_X))
    t = np.eye(2)[labels]
    history = net.fit(XOR_X, labels, epochs=1, lr=0.1, verbose=0)
    assert history.loss[0] == pytest.approx(-np.sum(t * np.log(y)) / 4, rel=tol(net.dtype))
    assert history.accuracy[0] == np.mean(np.argmax(y, axis=1) == labels)


def test_validation_data_is_scored_after_each_epoch():
    net = anynet.Network([3, 4, 2], output_activation="softmax", seed=0)
    labels, val_labels = np.array([0, 1, 1, 0]), np.array([1, 1, 0, 0])
    history = net.fit(XOR_X, labels, epochs=3, lr=0.5, validation_data=(XOR_X, val_labels), verbose=0)
    scores = net.evaluate(XOR_X, val_labels, loss="cross_entropy")
    assert history.val_loss[-1] == pytest.approx(scores["loss"], rel=tol(net.dtype))
    assert history.val_accuracy[-1] == scores["accuracy"]


def test_validation_split_holds_rows_out(rng):
    X, t = rng.normal(size=(8, 3)), rng.normal(size=(8, 1))
    net = anynet.Network([3, 2, 1], seed=0)
    per_row = 0.5 * ((anynet.to_numpy(net.predict(X)) - t) ** 2)[:, 0]
    # lr 0 keeps the weights, so both losses are the initial half_sse over complementary rows
    frozen = {"epochs": 2, "lr": 1.0, "schedule": lambda lr, e, n: 0.0, "validation_split": 0.25, "verbose": 0}
    history = net.fit(X, t, **frozen)
    assert len(history.val_loss) == 2
    assert history.loss[0] + history.val_loss[0] == pytest.approx(per_row.sum(), rel=tol(net.dtype))
    pairs = [per_row[list(rows)].sum() for rows in itertools.combinations(range(8), 2)]
    assert np.isclose(pairs, history.val_loss[0], rtol=tol(net.dtype)).any()
    again = anynet.Network([3, 2, 1], seed=0).fit(X, t, **frozen)
    assert again.val_loss == history.val_loss


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"validation_split": 1.0}, r"validation_split must be in \[0, 1\)"),
        ({"validation_split": 0.5, "validation_data": (XOR_X, XOR_T)}, r"not both"),
        ({"validation_data": XOR_X}, r"validation_data must be a pair"),
        ({"validation_data": (XOR_X[:, :2], XOR_T)}, r"X_val has 2 features"),
        ({"validation_data": (np.where(XOR_X == 1, np.nan, 0.0), XOR_T)}, r"X_val holds 8 NaN or infinite"),
        ({"validation_data": (XOR_X, XOR_T[:2])}, r"X_val has 4 rows but t_val has 2"),
    ],
)
def test_bad_validation_options(options, match):
    net = anynet.Network([3, 2, 1], seed=0)
    before = host(net)
    with pytest.raises(ValueError, match=match):
        net.fit(XOR_X, XOR_T, epochs=2, verbose=0, **options)
    assert_weights(net, before)


# --------------------------------------------------------------------------- early stopping


def expected_best(values, min_delta):
    best, best_epoch = math.inf, None
    for epoch, value in enumerate(values):
        if value < best - min_delta:
            best, best_epoch = value, epoch
    return best_epoch


def early_stopping_run(**options):
    # validating on the opposite labels: the better the fit, the worse the validation loss
    net = anynet.Network([3, 4, 1], seed=0)
    keep, kept = snapshots()
    history = net.fit(
        XOR_X, XOR_T, epochs=40, lr=2.0, validation_data=(XOR_X, 1 - XOR_T), callbacks=[keep], verbose=0, **options
    )
    return net, history, kept


def test_early_stopping_restores_the_best_weights():
    net, history, kept = early_stopping_run(patience=3)
    assert history.stopped_early
    best = expected_best(history.val_loss, 0.0)
    assert history.best_epoch == best
    assert history.epochs == best + 3 + 1
    assert len(kept) == history.epochs
    assert_weights(net, kept[best], net.dtype)
    assert not np.allclose(kept[best][0], kept[-1][0])


def test_min_delta_and_restore_best_weights_false():
    net, history, kept = early_stopping_run(patience=2, min_delta=1e6, restore_best_weights=False)
    assert history.stopped_early
    assert history.best_epoch == 0  # nothing improves by a million
    assert history.epochs == 3
    assert_weights(net, kept[-1], net.dtype)


def test_no_early_stop_while_the_training_loss_improves():
    net = anynet.Network([3, 4, 1], seed=0)
    history = net.fit(XOR_X, XOR_T, epochs=10, lr=1.0, patience=2, verbose=0)
    assert history.monitor == "loss"
    assert not history.stopped_early
    assert history.epochs == 10
    assert history.best_epoch == expected_best(history.loss, 0.0)


# --------------------------------------------------------------------------- labels, classes


def test_integer_labels_are_one_hot_for_cross_entropy(rng):
    X = rng.normal(size=(9, 2))
    labels = np.array([0, 2, 1] * 3)
    a = anynet.Network([2, 4, 3], activation="tanh", output_activation="softmax", seed=0)
    b = anynet.Network([2, 4, 3], activation="tanh", output_activation="softmax", seed=0)
    ha = a.fit(X, labels, epochs=3, lr=0.5, verbose=0)
    hb = b.fit(X, np.eye(3)[labels], epochs=3, lr=0.5, verbose=0)
    np.testing.assert_array_equal(a.classes, [0, 1, 2])
    assert ha.loss == hb.loss
    assert_weights(a, host(b), a.dtype)


def test_string_labels_and_predict_classes(backend, rng):
    X = rng.normal(size=(9, 2))
    labels = np.array(["emu", "cat", "dog"] * 3)
    a = anynet.Network([2, 4, 3], activation="tanh", output_activation="softmax", seed=0)
    b = anynet.Network([2, 4, 3], activation="tanh", output_activation="softmax", seed=0)
    a.fit(X, labels, epochs=2, lr=0.5, verbose=0)
    b.fit(X, np.eye(3)[[2, 0, 1] * 3], epochs=2, lr=0.5, verbose=0)  # classes sort: cat, dog, emu
    np.testing.assert_array_equal(a.classes, ["cat", "dog", "emu"])
    assert_weights(a, host(b), a.dtype)
    got = a.predict_classes(X)
    assert isinstance(got, np.ndarray)
    np.testing.assert_array_equal(got, a.classes[np.argmax(anynet.to_numpy(a.predict(X)), axis=1)])
    numeric = anynet.Network([2, 4, 3], activation="tanh", output_activation="softmax", seed=0)
    numeric.fit(X, np.array([7, 3, 5] * 3), epochs=2, lr=0.5, verbose=0)
    got = numeric.predict_classes(X)
    assert B.backend_of(got) == backend
    want = np.array([3, 5, 7])[np.argmax(anynet.to_numpy(numeric.predict(X)), axis=1)]
    np.testing.assert_array_equal(anynet.to_numpy(got), want)


@LEARN
def test_a_classifier_learns_its_labels():
    X = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.0]] * 3) + np.linspace(0, 0.3, 9)[:, None]
    labels = np.array(["emu", "cat", "dog"] * 3)
    net = anynet.Network([2, 8, 3], activation="tanh", output_activation="softmax", seed=0)
    history = net.fit(X, labels, epochs=60, lr=1.0, momentum=0.9, verbose=0)
    np.testing.assert_array_equal(net.predict_classes(X), labels)
    assert history.accuracy[-1] == 1.0


def test_binary_labels_with_one_sigmoid_output():
    a = anynet.Network([3, 4, 1], seed=0)
    b = anynet.Network([3, 4, 1], seed=0)
    a.fit(XOR_X, np.array(["no", "yes", "yes", "no"]), loss="binary_cross_entropy", epochs=3, verbose=0)
    b.fit(XOR_X, XOR_T, loss="binary_cross_entropy", epochs=3, verbose=0)
    assert_weights(a, host(b), a.dtype)
    np.testing.assert_array_equal(a.classes, ["no", "yes"])
    assert set(a.predict_classes(XOR_X).tolist()) <= {"no", "yes"}


def test_label_errors_leave_the_weights_alone():
    net = anynet.Network([3, 4, 2], output_activation="softmax", seed=0)
    before = host(net)
    with pytest.raises(ValueError, match=r"t has 3 classes but the network's 2 output\(s\) fit 2"):
        net.fit(XOR_X, np.array([0, 1, 2, 0]), epochs=2, verbose=0)
    assert_weights(net, before)
    net.fit(XOR_X, np.array(["a", "b", "a", "b"]), epochs=1, verbose=0)
    after = host(net)
    with pytest.raises(ValueError, match=r"t has labels \['c'\] outside the known classes \['a', 'b'\]"):
        net.fit(XOR_X, np.array(["a", "b", "c", "b"]), epochs=2, verbose=0)
    assert_weights(net, after)


def test_classes_can_be_given_up_front():
    net = anynet.Network([3, 4, 3], output_activation="softmax", seed=0)
    net.fit(XOR_X, np.array([0, 1, 1, 0]), classes=[0, 1, 2], epochs=1, verbose=0)
    np.testing.assert_array_equal(net.classes, [0, 1, 2])


# --------------------------------------------------------------------------- callbacks, continuing


def test_callbacks_log_and_stop():
    seen = []

    def log(epoch, logs):
        seen.append((epoch, logs["loss"]))

    def stop(epoch, logs):
        return epoch == 2

    net = anynet.Network([3, 4, 1], seed=0)
    history = net.fit(XOR_X, XOR_T, epochs=10, callbacks=[stop, log], verbose=0)
    assert history.epochs == 3
    assert history.stopped_early
    assert seen == list(enumerate(history.loss))  # every callback ran, the stopping epoch too
    with pytest.raises(TypeError, match=r"callbacks must be callables"):
        net.fit(XOR_X, XOR_T, epochs=1, callbacks=["print"], verbose=0)


@pytest.mark.parametrize("options", [{"momentum": 0.9}, {"optimizer": "adam", "lr": 0.05}], ids=["momentum", "adam"])
def test_fit_again_continues_weights_and_optimizer_state(options):
    once = anynet.Network([3, 4, 1], seed=0)
    twice = anynet.Network([3, 4, 1], seed=0)
    h5 = once.fit(XOR_X, XOR_T, epochs=5, verbose=0, **options)
    h3 = twice.fit(XOR_X, XOR_T, epochs=3, verbose=0, **options)
    h2 = twice.fit(XOR_X, XOR_T, epochs=2, verbose=0, **options)
    assert h3.loss + h2.loss == pytest.approx(h5.loss, rel=tol(once.dtype))
    assert_weights(twice, host(once), once.dtype)
    assert twice.epochs_trained == 5
    assert twice.history is h2


def test_reset_starts_over():
    fresh = anynet.Network([3, 4, 1], seed=0)
    used = anynet.Network([3, 4, 1], seed=0)
    used.fit(XOR_X, XOR_T, epochs=4, momentum=0.9, verbose=0)
    h_used = used.fit(XOR_X, XOR_T, epochs=3, momentum=0.9, reset=True, verbose=0)
    h_fresh = fresh.fit(XOR_X, XOR_T, epochs=3, momentum=0.9, verbose=0)
    assert h_used.loss == h_fresh.loss
    assert_weights(used, host(fresh), fresh.dtype)
    assert used.epochs_trained == 3


def test_same_seed_same_history_twice():
    def run():
        net = anynet.Network([3, 4, 1], activation="tanh", output_activation="sigmoid", seed=3)
        X = np.tile(XOR_X, (2, 1))
        t = np.tile(XOR_T, (2, 1))
        history = net.fit(X, t, epochs=4, batch_size=3, optimizer="adam", lr=0.05, validation_split=0.25, verbose=0)
        return history, host(net)

    (h1, w1), (h2, w2) = run(), run()
    assert h1.loss == h2.loss
    assert h1.val_loss == h2.val_loss
    for a, b in zip(w1, w2, strict=True):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- divergence


def test_divergence_raises_and_keeps_the_last_weights_whose_loss_was_finite():
    net = anynet.Network([3, 4, 1], activation="identity", seed=0, dtype="float64")
    keep, kept = snapshots()
    with pytest.raises(anynet.DivergedError, match=r"training diverged at epoch \d+.*smaller lr") as info:
        net.fit(XOR_X, XOR_T, epochs=50, lr=1e3, callbacks=[keep], verbose=0)
    weights = host(net)
    assert all(np.isfinite(w).all() for w in weights)
    assert len(kept) >= 2, "it should diverge after a few epochs, not at once"
    # kept[-1] came out of the last recorded epoch and gave the infinite loss; kept[-2] gave a finite one
    for got, want in zip(weights, kept[-2], strict=True):
        np.testing.assert_array_equal(got, want)
    assert math.isfinite(net.evaluate(XOR_X, XOR_T)["loss"])
    history = info.value.history
    assert history.epochs == len(kept)
    assert all(math.isfinite(v) for v in history.loss)
    assert net.history is history


def test_on_divergence_continue_trains_on_and_records_it():
    # scikit-learn's MLP trains on through a diverging loss; its drop-ins ask fit to do the same
    net = anynet.Network([3, 4, 1], activation="identity", seed=0, dtype="float64")
    history = net.fit(XOR_X, XOR_T, epochs=50, lr=1e3, verbose=0, on_divergence="continue")
    assert history.epochs == 50
    assert math.isfinite(history.loss[0])
    assert not all(math.isfinite(v) for v in history.loss)
    assert not all(np.isfinite(w).all() for w in host(net))


def test_divergence_in_the_last_step_is_caught():
    # one step with lr=1e308 overflows the weights; no later loss is computed to notice it
    net = anynet.Network([3, 4, 1], activation="identity", seed=0, dtype="float64")
    before = host(net)
    with pytest.raises(anynet.DivergedError):
        net.fit(XOR_X, XOR_T, epochs=1, lr=1e308, verbose=0)
    assert all(np.isfinite(w).all() for w in host(net))
    assert_weights(net, before)


@pytest.mark.parametrize("batch_size", [None, 2], ids=["full-batch", "mini-batch"])
def test_after_a_divergence_the_kept_weights_have_a_finite_loss(batch_size):
    # a linear model: the loss grows each epoch until it overflows while the weights are still finite
    net = anynet.Network([3, 1], activation="identity", seed=0, dtype="float32")
    with pytest.raises(anynet.DivergedError) as info:
        net.fit(XOR_X, XOR_T, epochs=500, lr=10.0, batch_size=batch_size, verbose=0)
    assert info.value.history.epochs >= 2
    assert math.isfinite(net.evaluate(XOR_X, XOR_T)["loss"])
    history = net.fit(XOR_X, XOR_T, epochs=5, lr=1e-6, verbose=0)  # a smaller lr goes on from there
    assert all(math.isfinite(v) for v in history.loss)


@pytest.mark.skip_backend(*(set(B.BACKENDS) - {"jax"}), reason="the fused lax.scan chunks are JAX's compiled engine")
def test_a_divergence_at_a_compiled_chunks_first_epoch_keeps_the_chunk_befores_weights(monkeypatch):
    monkeypatch.setattr("anynet.train.CHUNK", 1)  # every epoch is a chunk of its own
    net = anynet.Network([3, 1], activation="identity", seed=0, dtype="float32")
    with pytest.raises(anynet.DivergedError):
        net.fit(XOR_X, XOR_T, epochs=500, lr=10.0, verbose=0, engine="compiled")
    assert math.isfinite(net.evaluate(XOR_X, XOR_T)["loss"])


def test_training_records_no_autograd_history(backend, asarray):
    if backend != "torch":
        pytest.skip("requires_grad is torch's; the other backends have no autograd graph to extend")
    import torch

    X = asarray(XOR_X).requires_grad_(True)
    t = asarray(XOR_T).requires_grad_(True)
    weights = [asarray(np.full((3, 4), 0.1)).requires_grad_(True), asarray(np.full((4, 1), 0.2))]
    for net in (anynet.Network([3, 4, 1], seed=0), anynet.Network.from_weights(weights)):
        net.fit(X, t, epochs=3, verbose=0, callbacks=[lambda epoch, logs: None])
        net.fit(X, t, epochs=3, verbose=0, validation_data=(X, t), batch_size=2)
        for a in net.weights + net.biases + [net.predict(X)]:
            assert not a.requires_grad
            assert a.grad_fn is None
    assert torch.is_grad_enabled()  # fit leaves autograd as it found it


# --------------------------------------------------------------------------- interrupts


def interrupted_fit(error, monkeypatch, *, batch_size=None, in_step=None):
    """Fit that raises ``error`` from a callback at epoch 3, or from inside the engine's step call
    number ``in_step`` (after the step's update, the worst moment); returns the network, the weights
    after each completed epoch, and the exception."""
    net = anynet.Network([3, 4, 1], seed=0, dtype="float64")
    keep, kept = snapshots()

    def interrupt(epoch, logs):
        if in_step is None and epoch == 3:
            raise error

    if in_step is not None:
        acts = (activations.get("sigmoid"),) * 2
        Engine = anynet.engines.select("auto", net.backend, acts=acts, loss=losses.get("half_sse"), opt=SGD())
        calls = itertools.count(1)
        step = Engine.step

        def failing_step(self, X, t, lr):
            out = step(self, X, t, lr)
            if next(calls) == in_step:
                raise error
            return out

        monkeypatch.setattr(Engine, "step", failing_step)
        if batch_size is not None and hasattr(Engine, "epoch"):  # a whole epoch in one call (JAX's scan)
            epoch_call, epoch = itertools.count(1), Engine.epoch
            steps_per_epoch = -(-len(XOR_X) // batch_size)

            def failing_epoch(self, *args):
                out = epoch(self, *args)
                if next(epoch_call) == -(-in_step // steps_per_epoch):
                    raise error
                return out

            monkeypatch.setattr(Engine, "epoch", failing_epoch)
    with pytest.raises(type(error)) as info:
        net.fit(XOR_X, XOR_T, epochs=20, batch_size=batch_size, callbacks=[keep, interrupt], verbose=0)
    return net, kept, info.value


@pytest.mark.parametrize("error", [KeyboardInterrupt(), RuntimeError("a callback failed")], ids=["ctrl-c", "error"])
@pytest.mark.parametrize("batch_size", [None, 2], ids=["full-batch", "mini-batch"])
def test_an_exception_in_a_callback_keeps_the_completed_epochs(error, batch_size, monkeypatch):
    net, kept, raised = interrupted_fit(error, monkeypatch, batch_size=batch_size)
    assert raised is error
    assert len(kept) == 4  # epochs 0 to 3 ran, and the callback of epoch 3 raised
    assert net.history.epochs == 4
    assert net.epochs_trained == 4
    assert_weights(net, kept[-1])
    assert net.history.loss[0] > net.history.loss[-1]
    net.fit(XOR_X, XOR_T, epochs=2, verbose=0)  # and training goes on from there
    assert net.epochs_trained == 6


@pytest.mark.parametrize("batch_size", [None, 2], ids=["full-batch", "mini-batch"])
def test_an_interrupt_inside_a_step_keeps_the_last_completed_epoch(batch_size, monkeypatch):
    steps_per_epoch = 1 if batch_size is None else 2
    net, kept, _ = interrupted_fit(
        KeyboardInterrupt(), monkeypatch, batch_size=batch_size, in_step=3 * steps_per_epoch + 1
    )
    assert len(kept) == 3
    assert net.history.epochs == 3
    assert net.epochs_trained == 3
    assert_weights(net, kept[-1])


# --------------------------------------------------------------------------- option errors

BAD_OPTIONS = [
    ({"epochs": -1}, ValueError, r"epochs must be a non-negative integer, got -1"),
    ({"epochs": 2.5}, ValueError, r"epochs must be a non-negative integer"),
    ({"batch_size": 0}, ValueError, r"batch_size must be a positive integer, got 0"),
    ({"batch_size": -2}, ValueError, r"batch_size must be a positive integer"),
    ({"lr": 0}, ValueError, r"lr must be a positive finite number, got 0"),
    ({"lr": -1}, ValueError, r"lr must be a positive finite number, got -1"),
    ({"lr": math.nan}, ValueError, r"lr must be a positive finite number, got nan"),
    ({"lr": math.inf}, ValueError, r"lr must be a positive finite number, got inf"),
    ({"lr": "a"}, ValueError, r"lr must be a positive finite number, got 'a'"),
    ({"lr": "0.1"}, ValueError, r"lr must be a positive finite number, got '0.1'"),  # text that reads as one
    ({"alpha": True}, ValueError, r"alpha must be a non-negative finite number, got True"),
    ({"loss": "hinge"}, ValueError, r"unknown loss 'hinge'; expected one of \["),
    ({"loss": "cross_entropy"}, ValueError, r"loss 'cross_entropy' works on softmax outputs"),
    ({"optimizer": "rmsprop"}, ValueError, r"unknown optimizer 'rmsprop'; expected one of \['adam', 'sgd'\]"),
    ({"schedule": "linear"}, ValueError, r"unknown schedule 'linear'; expected one of \["),
    ({"momentum": -0.5}, ValueError, r"momentum must be a non-negative finite number"),
    ({"alpha": -1.0}, ValueError, r"alpha must be a non-negative finite number"),
    ({"patience": 0}, ValueError, r"patience must be a positive integer"),
    ({"metrics": ["f1"]}, ValueError, r"unknown metric"),
    ({"on_divergence": "ignore"}, ValueError, r"on_divergence must be 'raise' or 'continue', got 'ignore'"),
    (
        {"sample_weight": [1, 1]},
        ValueError,
        r"sample_weight must be 1-D with one weight per row of X \(4\), got shape \(2,\)",
    ),
    ({"sample_weight": np.ones((4, 1))}, ValueError, r"sample_weight must be 1-D .* got shape \(4, 1\)"),
    ({"sample_weight": [1, -1, 1, 1]}, ValueError, r"sample_weight must be finite and non-negative"),
    ({"sample_weight": [1, np.nan, 1, 1]}, ValueError, r"sample_weight must be finite and non-negative"),
    ({"sample_weight": [0, 0, 0, 0]}, ValueError, r"sample_weight is zero for every row"),
    ({"sample_weight": list("abcd")}, TypeError, r"sample_weight must be numeric, got dtype <U1"),
]


@pytest.mark.parametrize(("options", "error", "match"), BAD_OPTIONS, ids=[str(o) for o, _, _ in BAD_OPTIONS])
def test_bad_options_fail_before_any_weight_changes(options, error, match):
    net = anynet.Network([3, 4, 1], seed=0)
    net.fit(XOR_X, XOR_T, epochs=1, momentum=0.9, verbose=0)
    before, state = host(net), net.epochs_trained
    with pytest.raises(error, match=match):
        net.fit(XOR_X, XOR_T, **({"epochs": 2, "verbose": 0} | options))
    assert_weights(net, before, net.dtype)
    assert net.epochs_trained == state


def test_zero_epochs_change_nothing():
    net = anynet.Network([3, 4, 1], seed=0)
    before = host(net)
    history = net.fit(XOR_X, XOR_T, epochs=0, verbose=0)
    assert history.epochs == 0
    assert_weights(net, before)


# --------------------------------------------------------------------------- plot, progress


def test_history_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    net = anynet.Network([3, 4, 1], seed=0)
    history = net.fit(XOR_X, XOR_T, epochs=3, validation_data=(XOR_X, XOR_T), patience=5, verbose=0)
    path = tmp_path / "loss.png"
    ax = history.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {line.get_label() for line in ax.get_lines()} >= {"train loss", "validation loss"}


def test_the_plot_marks_a_best_epoch_only_when_its_weights_were_kept(tmp_path):
    pytest.importorskip("matplotlib")
    _, restored, _ = early_stopping_run(patience=3)
    _, last_kept, _ = early_stopping_run(patience=2, min_delta=1e6, restore_best_weights=False)
    no_patience = anynet.Network([3, 4, 1], seed=0).fit(XOR_X, XOR_T, epochs=5, verbose=0)
    assert (restored.restored_best, last_kept.restored_best, no_patience.restored_best) == (True, False, False)
    assert last_kept.best_epoch is not None  # tracked, but those weights were not kept: no marker

    def marked(history):
        return [
            line.get_label() for line in history.plot(tmp_path / "loss.png").get_lines() if "best" in line.get_label()
        ]

    assert marked(restored) == [f"best epoch ({restored.best_epoch + 1})"]
    assert marked(last_kept) == []
    assert marked(no_patience) == []


def test_verbose_0_prints_nothing(capfd):
    anynet.Network([3, 4, 1], seed=0).fit(XOR_X, XOR_T, epochs=5, verbose=0)
    assert capfd.readouterr() == ("", "")


def test_verbose_1_to_a_file_prints_a_bounded_number_of_lines(capfd):
    anynet.Network([3, 4, 1], seed=0).fit(XOR_X, XOR_T, epochs=30, verbose=1)
    out, err = capfd.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert 2 <= len(lines) <= 12
    assert lines[-1].startswith("epoch 30/30")
    assert "loss" in lines[-1]
    assert "\r" not in err


def test_verbose_2_prints_a_line_per_epoch(capfd):
    anynet.Network([3, 4, 1], seed=0).fit(XOR_X, XOR_T, epochs=4, verbose=2)
    lines = capfd.readouterr().err.splitlines()
    assert [line.split()[1] for line in lines] == ["1/4", "2/4", "3/4", "4/4"]


def test_progress_bar_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    progress = Progress(3, verbose=1, stream=stream)
    for epoch in (1, 2, 3):
        progress.update(epoch, {"loss": 1.0 / epoch})
    progress.close(3, {"loss": 1 / 3})
    text = stream.getvalue()
    assert text.startswith("\r[")
    assert text.endswith("\n")
    assert text.count("\n") == 1
    assert "3/3" in text


def test_patience_stops_a_quiet_run_without_callbacks():
    """Early stopping must not depend on a progress bar or a callback being there to notice it."""
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    t = np.array([[1.0], [1.0], [0.0], [0.0]])
    net = anynet.Network([2, 3, 1], activation="tanh", output_activation="identity", dtype="float64")
    history = net.fit(X, t, epochs=200, lr=1e-12, loss="mse", patience=3, min_delta=1.0, verbose=0)
    assert history.stopped_early
    assert history.epochs == 4  # the first epoch sets the best; three without improvement stop it


@pytest.mark.skip_backend("dask", reason="1260 lazy mini-batch steps take minutes; the other backends run it")
def test_digits_reaches_97_percent_with_adam():
    """Issue 4's proof: digits, standardised, 75/25 split, 64-128-64-10 relu + softmax, Adam."""
    from sklearn.datasets import load_digits  # the data ship with scikit-learn, a test dependency
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std == 0] = 1
    X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
    net = anynet.Network([64, 128, 64, 10], activation="relu", output_activation="softmax", init="he", seed=0)
    net.fit(X_train, y_train, epochs=60, batch_size=64, optimizer="adam", lr=1e-3, verbose=0)
    accuracy = np.mean(anynet.to_numpy(net.predict_classes(X_test)) == y_test)
    assert accuracy >= 0.97


# --------------------------------------------------------------------------- sample weights


@pytest.mark.parametrize(
    "options", [{"optimizer": "sgd", "momentum": 0.9, "lr": 0.1}, {"optimizer": "adam", "lr": 0.05}]
)
def test_integer_sample_weights_train_as_repeated_rows(rng, options):
    X, t = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    counts = np.array([1, 0, 2, 1, 3, 1, 0, 2])
    common = {"epochs": 20, "alpha": 0.3, "loss": "half_mse", "verbose": 0, **options}
    weighted = anynet.Network([3, 4, 2], activation="tanh", output_activation="identity", seed=1, dtype="float64")
    repeated = anynet.Network([3, 4, 2], activation="tanh", output_activation="identity", seed=1, dtype="float64")
    hw = weighted.fit(X, t, sample_weight=counts, **common)
    hr = repeated.fit(np.repeat(X, counts, axis=0), np.repeat(t, counts, axis=0), **common)
    np.testing.assert_allclose(hw.loss, hr.loss, rtol=1e-10)
    assert_weights(weighted, host(repeated))


def test_sample_weights_follow_their_rows_through_shuffled_batches(rng):
    # a row of weight 0 teaches nothing: garbage in its target changes nothing, if the weights are
    # gathered with the same rows as X and t in every shuffled batch
    X, t = rng.normal(size=(10, 3)), rng.normal(size=(10, 1))
    w = np.array([1.0, 0.0, 2.0, 0.5, 0.0, 1.0, 1.0, 3.0, 0.0, 1.0])
    garbage = np.where(w[:, None] == 0, 1e6, t)
    common = {"epochs": 5, "batch_size": 3, "seed": 7, "optimizer": "adam", "lr": 0.01, "verbose": 0}
    nets = [anynet.Network([3, 5, 1], activation="tanh", output_activation="identity", seed=2) for _ in range(2)]
    nets[0].fit(X, t, loss="half_mse", sample_weight=w, **common)
    nets[1].fit(X, garbage, loss="half_mse", sample_weight=w, **common)
    assert_weights(nets[1], host(nets[0]), nets[0].dtype)
    plain = anynet.Network([3, 5, 1], activation="tanh", output_activation="identity", seed=2)
    plain.fit(X, t, loss="half_mse", **common)
    assert not np.allclose(host(plain)[0], host(nets[0])[0])  # the weights did weigh


def test_sample_weights_follow_a_validation_split(rng):
    X, t = rng.normal(size=(10, 3)), rng.normal(size=(10, 1))
    w = rng.integers(1, 4, 10).astype(float)
    net = anynet.Network([3, 2, 1], activation="tanh", output_activation="identity", seed=0)
    history = net.fit(X, t, loss="half_mse", sample_weight=w, validation_split=0.3, epochs=3, verbose=0)
    assert len(history.val_loss) == 3


@pytest.mark.skip_backend(
    "torch", "jax", "dask", "array_api_strict", reason="the in-place engine exists for NumPy and CuPy only"
)
def test_an_engine_without_row_weights_refuses_them_and_auto_steps_around_it(backend):
    net = anynet.Network([3, 4, 1], seed=0)
    before = host(net)
    for name, entry in anynet.engines.REGISTRY.items():
        if backend in entry.auto and not getattr(entry.load(), "row_weights", False):
            with pytest.raises(ValueError, match=rf"engine='{name}' cannot run this: it takes no row weights"):
                net.fit(XOR_X, XOR_T, epochs=1, verbose=0, engine=name, sample_weight=np.ones(4))
            assert_weights(net, before)
    weighted = anynet.Network([3, 4, 1], seed=0)
    weighted.fit(XOR_X, XOR_T, epochs=3, verbose=0, sample_weight=np.full(4, 2.0))  # auto takes an engine that can
    plain = anynet.Network([3, 4, 1], seed=0)
    plain.fit(XOR_X, XOR_T, epochs=3, verbose=0, engine="reference")
    assert not np.allclose(host(weighted)[0], host(plain)[0])  # half_sse is a sum: doubled weights, doubled steps


# --------------------------------------------------------------------------- sparse input


def sparse_formats():
    sp = pytest.importorskip("scipy.sparse")
    return sp, [sp.csr_matrix, sp.csc_matrix, sp.csr_array]


@pytest.mark.skip_backend(
    "torch", "jax", "dask", "array_api_strict", "cupy", reason="sparse X trains on NumPy only; see the next test"
)
def test_sparse_X_trains_as_dense_X(rng):
    sp, formats = sparse_formats()
    X = rng.normal(size=(12, 5)) * (rng.random((12, 5)) < 0.3)
    t = rng.integers(0, 3, 12)
    w = rng.random(12) + 0.5
    common = {"epochs": 4, "batch_size": 5, "seed": 3, "optimizer": "adam", "lr": 0.05, "alpha": 0.1, "verbose": 0}
    dense = anynet.Network([5, 4, 3], activation="relu", output_activation="softmax", seed=0, dtype="float64")
    hd = dense.fit(X, t, sample_weight=w, **common)
    for fmt in formats:
        net = anynet.Network([5, 4, 3], activation="relu", output_activation="softmax", seed=0, dtype="float64")
        hs = net.fit(fmt(X), t, sample_weight=w, validation_data=(fmt(X[:4]), t[:4]), **common)
        np.testing.assert_allclose(hs.loss, hd.loss, rtol=1e-12)
        assert_weights(net, host(dense))
        np.testing.assert_allclose(net.predict(fmt(X)), dense.predict(X), rtol=1e-12)
    sparse_scores = net.evaluate(sp.csr_matrix(X), t, loss="cross_entropy")
    assert sparse_scores == pytest.approx(dense.evaluate(X, t, loss="cross_entropy"), rel=1e-12)


@pytest.mark.skip_backend(
    "torch", "jax", "dask", "array_api_strict", "cupy", reason="sparse X trains on NumPy only; see the next test"
)
def test_sparse_X_is_never_densified(rng):
    sp, _ = sparse_formats()

    class Undensifiable(sp.csr_matrix):
        def toarray(self, *args, **kwargs):
            raise AssertionError("densified")

        todense = toarray
        __array__ = toarray

    X = Undensifiable(rng.normal(size=(9, 4)) * (rng.random((9, 4)) < 0.4))
    net = anynet.Network([4, 3, 1], seed=0)
    net.fit(X, rng.normal(size=(9, 1)), epochs=2, batch_size=4, verbose=0)
    net.fit(X, rng.normal(size=(9, 1)), epochs=1, verbose=0, validation_split=0.3)
    assert net.predict(X).shape == (9, 1)


@pytest.mark.skip_backend("numpy", reason="NumPy takes sparse X; the test above")
def test_sparse_X_on_another_backend_says_which_take_it(rng):
    sp, _ = sparse_formats()
    net = anynet.Network([3, 4, 1], seed=0)
    with pytest.raises(ValueError, match=r"X is a SciPy sparse matrix, which trains on backend 'numpy' only"):
        net.fit(sp.csr_matrix(XOR_X), XOR_T, epochs=1, verbose=0)


# --------------------------------------------------------------------------- Poisson


def test_poisson_loss_with_an_exp_output_recovers_a_log_linear_rate():
    x = np.linspace(-1, 1, 20).reshape(-1, 1)
    net = anynet.Network([1, 1], activation="exp", seed=0, dtype="float64")
    history = net.fit(x, np.exp(0.5 * x + 0.2), loss="poisson", epochs=200, lr=0.5, verbose=0)
    assert_weights(net, [np.array([[0.5]]), np.array([0.2])], "float32")
    assert history.loss[-1] < 1e-9  # scikit-learn's deviance keeps its constant term: 0 at a perfect fit


def test_poisson_loss_needs_an_exp_output_and_counts():
    net = anynet.Network([3, 4, 1], activation="tanh", output_activation="exp", seed=0)
    with pytest.raises(ValueError, match=r"loss 'poisson' needs non-negative targets \(counts, rates\), but t has -1"):
        net.fit(XOR_X, XOR_T - 1, loss="poisson", epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"loss 'poisson' works on exp outputs"):
        anynet.Network([3, 1], seed=0).fit(XOR_X, XOR_T, loss="poisson", epochs=1, verbose=0)


def test_an_interrupt_in_a_quiet_full_batch_fit_keeps_every_completed_epoch(monkeypatch):
    """No callback, no progress: the engine's whole-run hook trains many epochs in one call, and an
    interrupt inside it still keeps exactly the epochs it completed."""
    acts = (activations.get("sigmoid"),) * 2
    net = anynet.Network([3, 4, 1], seed=0, dtype="float64")
    Engine = anynet.engines.select("auto", net.backend, acts=acts, loss=losses.get("half_sse"), opt=SGD())
    if hasattr(Engine, "run") and not hasattr(Engine, "partial"):
        pytest.skip(f"the {Engine.name} engine's whole run is one compiled call: all of a chunk or none of it")
    calls, step = itertools.count(1), Engine.step
    # every epoch through the Python step (a CUDA graph replays without it; tests/test_graphs.py
    # interrupts a captured run)
    monkeypatch.setenv("ANYNET_CUDA_GRAPHS", "0")

    def failing_step(self, X, t, lr):
        out = step(self, X, t, lr)  # the update is done: the worst moment
        if next(calls) == 37:
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(Engine, "step", failing_step)
    with pytest.raises(KeyboardInterrupt):
        net.fit(XOR_X, XOR_T, epochs=500, verbose=0)
    monkeypatch.undo()
    assert net.history.epochs == net.epochs_trained == 36
    alone = anynet.Network([3, 4, 1], seed=0, dtype="float64")
    h = alone.fit(XOR_X, XOR_T, epochs=36, verbose=0)
    assert net.history.loss == h.loss
    assert_weights(net, host(alone))
