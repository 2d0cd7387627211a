"""anynet.sklearn: scikit-learn's own estimator checks, weight-for-weight agreement with scikit-learn's
MLPs (shuffle=False removes the only randomness the two do not share), arrays that follow the data,
pickling, partial_fit, warm_start, early stopping, and use inside Pipeline/GridSearchCV/cross_val_score.

The network computes on the backend under test: NumPy inputs through ``anynet.use``'s default, and the
backend's own arrays (``asarray``) where they live.
"""

import pickle
import re
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from anynet import backend as B
from anynet.sklearn import MLPClassifier, MLPRegressor


def make_data(n=120, d=6, k=3, seed=0):
    """Learnable data of fixed shapes (JAX compiles once per shape, so the tests share them)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(d, k))
    y = np.argmax(X @ W + 0.3 * rng.normal(size=(n, k)), axis=1)
    r = np.stack([np.sin(X[:, 0]) + 0.5 * X[:, 1], X[:, 2] * X[:, 3]], axis=1)
    return X, y, r


X, Y, R = make_data()
QUIET = {"max_iter": 6, "hidden_layer_sizes": (8,), "random_state": 0}


def fit_quietly(est, *args, **kwargs):
    """``fit`` with the ConvergenceWarning of a deliberately short run silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


def host(a):
    return B.to_numpy(a)


def atol_for(backend):
    return 1e-9 if backend == "numpy" else 1e-7


# --------------------------------------------------------------------------- scikit-learn's checks


@pytest.mark.skip_backend("jax", reason="JAX compiles each op for every new array shape: the checks take 160 s")
@pytest.mark.skip_backend("dask", reason="a Dask epoch builds and computes a task graph: the checks take over 10 min")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # short runs on tiny data, on purpose
@parametrize_with_checks([MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)])
def test_sklearn_estimator_checks(estimator, check):
    if (
        getattr(check, "func", check).__name__.endswith("on_sparse_data")
        and not estimator.__sklearn_tags__().input_tags.sparse
    ):
        # the checks were collected with NumPy's tags; on this backend the estimator refuses sparse X
        # (check_estimator_sparse_tag checks that refusal), so scikit-learn would not yield this check
        pytest.skip("sparse X trains on the NumPy backend only")
    check(estimator)


# --------------------------------------------------------------------------- agreement with scikit-learn

CLASSIFIER_CASES = {
    "sgd-nesterov-batches": {"solver": "sgd", "batch_size": 50},
    "sgd-plain-momentum": {"solver": "sgd", "momentum": 0.5, "nesterovs_momentum": False},
    "sgd-invscaling": {"solver": "sgd", "momentum": 0.0, "learning_rate": "invscaling", "power_t": 0.3},
    "sgd-adaptive": {"solver": "sgd", "learning_rate": "adaptive", "tol": 10.0, "n_iter_no_change": 1},
    "sgd-tol-stops": {"solver": "sgd", "tol": 10.0, "n_iter_no_change": 2, "learning_rate_init": 0.05},
    "adam-betas": {"beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3, "learning_rate_init": 0.01},
    "adam-early-stopping": {"early_stopping": True, "validation_fraction": 0.25, "n_iter_no_change": 2, "tol": 0.0},
    "logistic-alpha": {"activation": "logistic", "alpha": 1.0, "learning_rate_init": 0.05},
    "tanh-two-layers": {"activation": "tanh", "hidden_layer_sizes": (5, 4), "batch_size": 50},
    "identity": {"activation": "identity", "solver": "sgd", "learning_rate_init": 0.01},
    "lbfgs": {"solver": "lbfgs", "max_iter": 15},
    "lbfgs-max-fun": {"solver": "lbfgs", "max_fun": 5},
}


@pytest.mark.parametrize("case", CLASSIFIER_CASES)
def test_classifier_fits_scikit_learns_weights(case, backend):
    params = {**QUIET, "shuffle": False, **CLASSIFIER_CASES[case]}
    ours, theirs = fit_quietly(MLPClassifier(**params), X, Y), fit_quietly(SkClassifier(**params), X, Y)
    assert_same_fit(ours, theirs, backend)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)


REGRESSOR_CASES = {
    "adam-two-outputs": {"alpha": 0.0},
    "sgd-early-stopping": {"solver": "sgd", "early_stopping": True, "validation_fraction": 0.2, "tol": 0.0},
    "relu-alpha-batches": {"alpha": 0.5, "batch_size": 32, "learning_rate_init": 0.01},
    "lbfgs": {"solver": "lbfgs", "activation": "tanh", "max_iter": 15},
}


@pytest.mark.parametrize("case", REGRESSOR_CASES)
def test_regressor_fits_scikit_learns_weights(case, backend):
    params = {**QUIET, "shuffle": False, **REGRESSOR_CASES[case]}
    # scikit-learn reports the mean over outputs of a loss whose gradient is the sum's (L-BFGS sees both)
    target = R if case in ("adam-two-outputs", "relu-alpha-batches") else R[:, 0]
    ours, theirs = fit_quietly(MLPRegressor(**params), X, target), fit_quietly(SkRegressor(**params), X, target)
    assert_same_fit(ours, theirs, backend, loss=target.ndim == 1)
    if target.ndim == 2 and not params.get("alpha", 1e-4):  # without a penalty the two differ by n_outputs
        np.testing.assert_allclose(ours.loss_curve_, 2 * np.asarray(theirs.loss_curve_), rtol=1e-9)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), atol=1e-6)


def assert_same_fit(ours, theirs, backend, loss=True):
    atol = atol_for(backend)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.out_activation_ == theirs.out_activation_
    assert (ours.n_layers_, ours.n_outputs_, ours.n_features_in_) == (theirs.n_layers_, theirs.n_outputs_, 6)
    for mine, want in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True):
        assert isinstance(mine, np.ndarray)
        np.testing.assert_allclose(mine, want, rtol=0, atol=atol)
    if loss:
        assert ours.loss_ == pytest.approx(theirs.loss_, abs=atol)
    if theirs.solver == "lbfgs":
        assert not hasattr(ours, "loss_curve_")
        return
    assert ours.t_ == theirs.t_
    if loss:
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=0, atol=atol)
    if theirs.early_stopping:
        assert ours.best_loss_ is None
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, atol=atol)
        assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_)
    else:
        assert ours.validation_scores_ is None
        assert ours.best_validation_score_ is None
        if loss:
            assert ours.best_loss_ == pytest.approx(theirs.best_loss_, abs=atol)


def test_binary_and_multilabel_classification_match(backend):
    params = {**QUIET, "shuffle": False, "solver": "sgd", "learning_rate_init": 0.05}
    binary = np.where(Y == 0, "no", "yes")
    ours, theirs = MLPClassifier(**params), SkClassifier(**params)
    fit_quietly(ours, X, binary), fit_quietly(theirs, X, binary)
    assert ours.out_activation_ == "logistic"
    assert ours.predict_proba(X).shape == (120, 2)
    assert_same_fit(ours, theirs, backend)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    multilabel = np.stack([Y == 0, Y == 1, X[:, 0] > 0], axis=1).astype(int)
    ours, theirs = MLPClassifier(**params), SkClassifier(**params)
    fit_quietly(ours, X, multilabel), fit_quietly(theirs, X, multilabel)
    assert_same_fit(ours, theirs, backend)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_partial_fit_follows_scikit_learn(backend):
    params = {**QUIET, "shuffle": False, "solver": "sgd", "learning_rate": "invscaling", "learning_rate_init": 0.3}
    ours, theirs = MLPClassifier(**params), SkClassifier(**params)
    for lo in (0, 60, 0):
        ours.partial_fit(X[lo : lo + 60], Y[lo : lo + 60], classes=np.arange(3))
        theirs.partial_fit(X[lo : lo + 60], Y[lo : lo + 60], classes=np.arange(3))
    assert ours.n_iter_ == 1
    assert len(ours.loss_curve_) == 3
    assert_same_fit(ours, theirs, backend)


def test_warm_start_continues_and_cold_start_restarts(backend):
    params = {**QUIET, "shuffle": False, "max_iter": 3}
    warm_ours = fit_quietly(fit_quietly(MLPClassifier(warm_start=True, **params), X, Y), X, Y)
    warm_theirs = fit_quietly(fit_quietly(SkClassifier(warm_start=True, **params), X, Y), X, Y)
    assert len(warm_ours.loss_curve_) == 6
    assert warm_ours.t_ == 720
    assert_same_fit(warm_ours, warm_theirs, backend)
    cold = fit_quietly(fit_quietly(MLPClassifier(**params), X, Y), X, Y)
    once = fit_quietly(MLPClassifier(**params), X, Y)
    assert len(cold.loss_curve_) == 3
    np.testing.assert_array_equal(cold.coefs_[0], once.coefs_[0])
    with pytest.raises(ValueError, match="warm_start can only be used where `y` has the same classes"):
        warm_ours.fit(X, np.where(Y == 2, 1, Y))


# --------------------------------------------------------------------------- behaviour of our own


def test_shuffled_runs_repeat_with_random_state_and_learn():
    params = {**QUIET, "max_iter": 12, "batch_size": 60, "learning_rate_init": 0.05}
    a = fit_quietly(MLPClassifier(**params), X, Y)
    b = fit_quietly(MLPClassifier(**params), X, Y)
    c = fit_quietly(MLPClassifier(**{**params, "random_state": 1}), X, Y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert a.loss_curve_ == b.loss_curve_
    assert not np.allclose(a.coefs_[0], c.coefs_[0])
    unshuffled = fit_quietly(MLPClassifier(**{**params, "shuffle": False}), X, Y)
    assert not np.allclose(a.coefs_[0], unshuffled.coefs_[0])
    assert a.loss_curve_[-1] < 0.5 * a.loss_curve_[0]
    assert a.score(X, Y) > 0.9


def test_convergence_warning_only_when_max_iter_is_reached():
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(6\) reached"):
        MLPClassifier(**QUIET).fit(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = MLPClassifier(**{**QUIET, "tol": 10.0, "n_iter_no_change": 1}).fit(X, Y)
    assert est.n_iter_ == 3  # the loss never beats the best by tol=10: the count passes 1 after epoch 3
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        MLPRegressor(**{**QUIET, "solver": "lbfgs", "max_iter": 2}).fit(X, R)


def test_batch_size_larger_than_data_is_clipped_with_a_warning():
    with pytest.warns(UserWarning, match="It is going to be clipped"):
        est = fit_quietly(MLPClassifier(**{**QUIET, "batch_size": 500}), X, Y)
    full = fit_quietly(MLPClassifier(**{**QUIET, "batch_size": 120}), X, Y)
    np.testing.assert_allclose(est.coefs_[0], full.coefs_[0])


def test_verbose_prints_scikit_learns_progress_lines(capsys):
    params = {**QUIET, "verbose": True, "early_stopping": True, "tol": 10.0, "n_iter_no_change": 1}
    fit_quietly(MLPClassifier(**params), X, Y)
    out = capsys.readouterr().out
    assert re.search(r"^Iteration 1, loss = \d+\.\d{8}$", out, re.MULTILINE)
    assert re.search(r"^Validation score: \d\.\d{6}$", out, re.MULTILINE)
    assert "Validation score did not improve more than tol=10.000000 for 1 consecutive epochs. Stopping." in out
    fit_quietly(MLPClassifier(**QUIET), X, Y)
    assert capsys.readouterr().out == ""


def test_early_stopping_keeps_the_best_validation_weights():
    params = {**QUIET, "max_iter": 40, "early_stopping": True, "n_iter_no_change": 3, "learning_rate_init": 0.05}
    est = fit_quietly(MLPClassifier(**params), X, Y)
    assert len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        est.partial_fit(X, Y)
    with pytest.raises(ValueError, match="validation set is too small"):
        MLPClassifier(**{**params, "validation_fraction": 0.01}).fit(X[:20], Y[:20])


def test_float32_data_trains_in_float32_unless_dtype_says_otherwise():
    X32 = X.astype(np.float32)
    est = fit_quietly(MLPClassifier(**QUIET), X32, Y)
    assert est.coefs_[0].dtype == np.float32
    assert est.predict_proba(X32).dtype == np.float32
    est = fit_quietly(MLPClassifier(**QUIET, dtype="float64"), X32, Y)
    assert est.coefs_[0].dtype == np.float64
    est = fit_quietly(MLPRegressor(**QUIET, dtype="float32"), X, R)
    assert est.predict(X).dtype == np.float32


def test_parameters_are_validated_at_fit():
    with pytest.raises(ValueError, match="'alpha' parameter of MLPClassifier must be a float in the range"):
        MLPClassifier(alpha=-1).fit(X, Y)
    with pytest.raises(ValueError, match="'backend' parameter of MLPRegressor must be a str among"):
        MLPRegressor(backend="tensorflow").fit(X, R)
    with pytest.raises(ValueError, match="'loss' parameter"):
        MLPRegressor(loss="absolute_error").fit(X, R)
    with pytest.raises(ValueError, match=r"loss='poisson' needs non-negative y \(counts, rates\), but y has -4"):
        MLPRegressor(loss="poisson").fit(X, R)
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64'"):
        MLPRegressor(**QUIET, dtype="int8").fit(X, R)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        MLPClassifier(hidden_layer_sizes=(4, 0)).fit(X, Y)
    with pytest.raises(B.BackendError, match="runs on the CPU only"):
        MLPClassifier(**QUIET, backend="numpy", device="cuda:0").fit(X, Y)
    assert fit_quietly(MLPClassifier(**QUIET, backend="numpy", device="cpu"), X, Y).score(X, Y) > 0.3


def test_unfitted_and_unavailable_methods():
    est = MLPClassifier()
    with pytest.raises(NotFittedError):
        est.predict(X)
    with pytest.raises(NotFittedError):
        _ = est.coefs_
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")
    with pytest.raises(ValueError, match="classes must be passed on the first call to partial_fit"):
        MLPClassifier().partial_fit(X, Y)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scikit-learn's overflow and NaN warnings on this data
def test_solver_diverging_raises_like_scikit_learn():
    huge = np.finfo(np.float64).max * np.random.default_rng(0).uniform(size=(10, 2))
    t = np.random.default_rng(1).normal(size=10)
    for Estimator in (SkRegressor, MLPRegressor):
        with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
            fit_quietly(Estimator(**{**QUIET, "solver": "sgd"}), huge, t)


def test_pickle_round_trip_keeps_predictions_and_optimizer_state():
    est = MLPClassifier(**{**QUIET, "solver": "sgd", "shuffle": False})
    est.partial_fit(X, Y, classes=np.arange(3))
    copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.predict_proba(X), est.predict_proba(X))
    assert copy.loss_curve_ == est.loss_curve_
    assert copy.get_params() == est.get_params()
    est.partial_fit(X, Y)
    copy.partial_fit(X, Y)  # momentum carried over: the second step is identical
    np.testing.assert_array_equal(copy.coefs_[1], est.coefs_[1])
    fresh = clone(est).partial_fit(X, Y, classes=np.arange(3)).partial_fit(X, Y)
    np.testing.assert_array_equal(fresh.coefs_[1], est.coefs_[1])


def test_explicit_backend_is_where_the_network_computes(backend):
    other = "numpy" if backend != "numpy" else "array_api_strict"
    pytest.importorskip(B.BACKENDS[other].module)
    est = fit_quietly(MLPClassifier(**QUIET, backend=other), X, Y)
    assert est._net.backend == other
    default = fit_quietly(MLPClassifier(**QUIET), X, Y)
    assert default._net.backend == backend
    np.testing.assert_allclose(est.predict_proba(X), default.predict_proba(X), atol=1e-6)


# --------------------------------------------------------------------------- arrays follow the data


def test_arrays_follow_the_data(backend, asarray):
    ref = fit_quietly(MLPClassifier(**QUIET, shuffle=False), X, Y)
    est = fit_quietly(MLPClassifier(**QUIET, shuffle=False), asarray(X), asarray(Y, dtype=None))
    labels, proba, log_proba = est.predict(asarray(X)), est.predict_proba(asarray(X)), est.predict_log_proba(asarray(X))
    for out in (labels, proba, log_proba, est.coefs_[0], est.intercepts_[-1]):
        assert B.backend_of(out) == backend
    assert proba.shape == (120, 3)
    assert labels.shape == (120,)
    np.testing.assert_array_equal(host(labels), ref.predict(X))
    np.testing.assert_allclose(host(proba), ref.predict_proba(X), atol=atol_for(backend))
    np.testing.assert_allclose(host(log_proba), np.log(host(proba)), atol=1e-9)
    np.testing.assert_allclose(host(est.coefs_[0]), ref.coefs_[0], atol=atol_for(backend))
    assert isinstance(est.score(asarray(X), asarray(Y, dtype=None)), float)
    assert est.score(asarray(X), asarray(Y, dtype=None)) == pytest.approx(ref.score(X, Y))
    assert isinstance(est.predict(X), np.ndarray)  # NumPy in, NumPy out, whatever it trained on
    np.testing.assert_array_equal(est.predict(X), ref.predict(X))


def test_regressor_and_text_labels_follow_the_data(backend, asarray):
    reg = fit_quietly(MLPRegressor(**QUIET), asarray(X), asarray(R[:, 0]))
    pred = reg.predict(asarray(X))
    assert B.backend_of(pred) == backend
    assert pred.shape == (120,)
    ref = fit_quietly(MLPRegressor(**QUIET), X, R[:, 0])
    np.testing.assert_allclose(host(pred), ref.predict(X), atol=atol_for(backend))
    words = np.array(["ant", "bee", "cat"])[Y]
    clf = fit_quietly(MLPClassifier(**QUIET), asarray(X), list(words))
    got = clf.predict(asarray(X))
    assert isinstance(got, np.ndarray)
    assert set(got) <= set(words)


@pytest.mark.skip_backend("numpy", reason="needs a second array library; NumPy arrays are the host data")
def test_mixed_inputs_raise_a_clear_error(backend, asarray):
    with pytest.raises(ValueError, match=rf"X is a {backend} array on .* but y is a numpy array"):
        MLPClassifier(**QUIET).fit(asarray(X), Y)
    with pytest.raises(ValueError, match="made with backend='numpy'"):
        MLPClassifier(**QUIET, backend="numpy").fit(asarray(X), asarray(Y, dtype=None))
    est = fit_quietly(MLPClassifier(**QUIET, backend=backend), asarray(X), asarray(Y, dtype=None))
    with pytest.raises(ValueError, match="X has 5 features, but MLPClassifier is expecting 6 features"):
        est.predict(asarray(X[:, :5]))


def test_pickle_keeps_the_namespace_of_the_data(backend, asarray):
    est = fit_quietly(MLPRegressor(**QUIET), asarray(X), asarray(R))
    copy = pickle.loads(pickle.dumps(est))
    assert B.backend_of(copy.coefs_[0]) == backend
    np.testing.assert_array_equal(host(copy.predict(asarray(X))), host(est.predict(asarray(X))))


# --------------------------------------------------------------------------- inside scikit-learn's tools


@pytest.mark.skip_backend("dask", reason="13 fits of 150+ epochs take 4 min on Dask; the tools only pass data through")
def test_pipeline_grid_search_and_cross_val_score():
    mlp = MLPClassifier(hidden_layer_sizes=(8,), max_iter=150, learning_rate_init=0.01, random_state=0)
    pipe = make_pipeline(StandardScaler(), mlp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, X, Y, cv=3)
        grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(1,), (16,)]}, cv=3).fit(X, Y)
        regressor = MLPRegressor(hidden_layer_sizes=(16,), max_iter=300, learning_rate_init=0.01, random_state=0)
        regression = cross_val_score(regressor, X, R, cv=3)
    assert scores.shape == (3,)
    assert scores.mean() > 0.8
    assert grid.best_params_ == {"mlpclassifier__hidden_layer_sizes": (16,)}
    assert grid.best_score_ > grid.cv_results_["mean_test_score"].min()
    assert grid.score(X, Y) > 0.9
    assert regression.mean() > 0.4


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_values_that_overflow_float32_are_refused_by_name(solver):
    est = MLPRegressor(**QUIET, solver=solver, dtype="float32")
    too_large = r"holds 720 value\(s\) too large for float32 \(largest magnitude [\d.]+e\+300\); scale the data"
    with pytest.raises(ValueError, match=rf"X {too_large}"):
        fit_quietly(est, X * 1e300, R)
    with pytest.raises(ValueError, match=r"y holds 240 value\(s\) too large for float32"):
        fit_quietly(est, X, R * 1e300)
    fit_quietly(est, X, R)
    with pytest.raises(ValueError, match=rf"X {too_large}"):
        est.predict(X * 1e300)


# --------------------------------------------------------------------------- weights, sparse X, Poisson, set weights

#: integer sample weights, zeros among them
SW = np.random.default_rng(5).integers(0, 4, 120).astype(float)
COUNTS = np.random.default_rng(1).poisson(np.exp(0.5 * X[:, 0]))

WEIGHTED_CASES = {
    "sgd-batches": {"solver": "sgd", "batch_size": 50},
    "adam-early-stopping": {"early_stopping": True, "validation_fraction": 0.25, "n_iter_no_change": 2, "tol": 0.0},
    "lbfgs": {"solver": "lbfgs", "max_iter": 15},
}


@pytest.mark.parametrize("case", WEIGHTED_CASES)
def test_sample_weight_fits_scikit_learns_weights(case, backend):
    params = {**QUIET, "shuffle": False, **WEIGHTED_CASES[case]}
    ours = fit_quietly(MLPClassifier(**params), X, Y, sample_weight=SW)
    theirs = fit_quietly(SkClassifier(**params), X, Y, sample_weight=SW)
    assert_same_fit(ours, theirs, backend)
    unweighted = fit_quietly(MLPClassifier(**params), X, Y)
    assert not np.allclose(unweighted.coefs_[0], ours.coefs_[0])


def test_partial_fit_takes_sample_weight_as_scikit_learn(backend):
    params = {**QUIET, "shuffle": False, "solver": "sgd"}
    ours, theirs = MLPRegressor(**params), SkRegressor(**params)
    for lo in (0, 60):
        ours.partial_fit(X[lo : lo + 60], R[lo : lo + 60, 0], sample_weight=SW[lo : lo + 60])
        theirs.partial_fit(X[lo : lo + 60], R[lo : lo + 60, 0], sample_weight=SW[lo : lo + 60])
    assert_same_fit(ours, theirs, backend)


def test_bad_sample_weight_is_refused():
    with pytest.raises(ValueError, match=r"sample_weight must be 1-D with one weight per row of X \(120\)"):
        MLPClassifier(**QUIET).fit(X, Y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="sample_weight must be finite and non-negative"):
        MLPRegressor(**QUIET).fit(X, R, sample_weight=-SW)


@pytest.mark.parametrize(("solver", "weighted"), [("adam", False), ("sgd", True), ("lbfgs", True)])
def test_poisson_fits_scikit_learns_weights(solver, weighted, backend):
    params = {**QUIET, "shuffle": False, "solver": solver, "loss": "poisson", "learning_rate_init": 0.01}
    sw = SW if weighted else None
    ours = fit_quietly(MLPRegressor(**params), X, COUNTS, sample_weight=sw)
    theirs = fit_quietly(SkRegressor(**params), X, COUNTS, sample_weight=sw)
    assert ours.out_activation_ == "exp"
    assert_same_fit(ours, theirs, backend)
    np.testing.assert_allclose(host(ours.predict(X)), theirs.predict(X), rtol=1e-6)


@pytest.mark.skip_backend(
    "torch", "jax", "dask", "array_api_strict", "cupy", reason="sparse X trains on NumPy only; see the next test"
)
@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_sparse_X_fits_scikit_learns_weights(solver):
    sp = pytest.importorskip("scipy.sparse")
    Xs = X * (np.abs(X) > 0.8)
    params = {**QUIET, "shuffle": False, "solver": solver, "batch_size": 50, "early_stopping": solver == "sgd"}
    for fmt in (sp.csr_matrix, sp.csc_array):
        ours, theirs = fit_quietly(MLPClassifier(**params), fmt(Xs), Y), fit_quietly(SkClassifier(**params), fmt(Xs), Y)
        assert_same_fit(ours, theirs, "numpy")
        np.testing.assert_allclose(ours.predict_proba(fmt(Xs)), theirs.predict_proba(Xs), atol=1e-9)
    assert MLPClassifier().__sklearn_tags__().input_tags.sparse


@pytest.mark.skip_backend("numpy", reason="NumPy takes sparse X; the test above")
def test_sparse_X_elsewhere_says_which_backends_take_it():
    sp = pytest.importorskip("scipy.sparse")
    assert not MLPClassifier().__sklearn_tags__().input_tags.sparse
    with pytest.raises(ValueError, match=r"X is a SciPy sparse matrix, which trains on backend 'numpy' only"):
        MLPClassifier(**QUIET).fit(sp.csr_matrix(X), Y)
    fit_quietly(MLPClassifier(**QUIET, backend="numpy"), sp.csr_matrix(X), Y)  # backend='numpy' takes it


def test_a_diverging_loss_trains_on_as_scikit_learn(backend):
    # scikit-learn's issue 29504: a diverging candidate with early stopping must not raise
    params = {**QUIET, "activation": "identity", "solver": "sgd", "learning_rate_init": 1.0, "shuffle": False}
    params |= {"max_iter": 12, "early_stopping": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scikit-learn's own overflow
        theirs = fit_quietly(SkRegressor(**params), X, 100 * R[:, 0])
    ours = fit_quietly(MLPRegressor(**params), X, 100 * R[:, 0])
    assert ours.n_iter_ == theirs.n_iter_ == 12
    assert np.isnan(ours.validation_scores_[-1])
    assert isinstance(ours.validation_scores_[-1], float)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-6)  # NaN where theirs is NaN
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-6)
    np.testing.assert_allclose(host(ours.coefs_[0]), theirs.coefs_[0], atol=1e-7)  # the best weights, restored


def test_coefs_and_intercepts_can_be_set_to_start_partial_fit(backend):
    params = {**QUIET, "shuffle": False, "solver": "sgd"}
    ours, theirs = fit_quietly(MLPClassifier(**params), X, Y), fit_quietly(SkClassifier(**params), X, Y)
    rng = np.random.default_rng(3)
    chosen = [rng.normal(size=W.shape) for W in theirs.coefs_], [rng.normal(size=b.shape) for b in theirs.intercepts_]
    for est in (ours, theirs):
        est.coefs_ = [W.copy() for W in chosen[0]]
        est.intercepts_ = [b.copy() for b in chosen[1]]
        est.coefs_[1][0, 0] = 5.0  # set item by item, as scikit-learn's own test_fit does
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=atol_for(backend))
    ours.partial_fit(X, Y)
    theirs.partial_fit(X, Y)
    assert_same_fit(ours, theirs, backend)
    assert not np.allclose(host(ours.coefs_[0]), chosen[0][0])


def test_stratified_early_stopping_names_the_rare_class_as_scikit_learn():
    Xs, ys = [[1, 2], [2, 3], [3, 4], [4, 5]], [0, 0, 0, 1]
    with pytest.raises(ValueError, match="too few members") as theirs:
        SkClassifier(early_stopping=True).fit(Xs, ys)
    with pytest.raises(ValueError, match=r"Classes with too few members are: \['True'\]") as ours:
        MLPClassifier(early_stopping=True).fit(Xs, ys)
    assert str(ours.value) == str(theirs.value)
