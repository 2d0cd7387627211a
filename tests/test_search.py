"""anynet.sklearn.MLPSearchCV: the same results as GridSearchCV over anynet's estimators, with the fits
of a stack trained together, and clear errors before any training.

Scores that vary continuously with the weights (log loss, R²) pin every member to the fit
GridSearchCV makes of the same candidate on the same fold: equal scores mean equal networks.
"""

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold

from anynet.sklearn import MLPClassifier, MLPRegressor, MLPSearchCV

pytestmark = pytest.mark.skip_backend(
    "dask", reason="on Dask every candidate trains alone, as GridSearchCV trains it: nothing here to compare"
)


def make_data(n=118, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.argmax(X @ rng.normal(size=(d, k)) + 0.3 * rng.normal(size=(n, k)), axis=1)
    r = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2]
    return X, y, r


X, Y, R = make_data()


def both(est, grid, X_, y_, **options):
    """``(MLPSearchCV, GridSearchCV)`` fitted alike, short runs' ConvergenceWarnings silenced."""
    fit_options = {k: options.pop(k) for k in ("sample_weight", "groups") if k in options}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", "Got `batch_size`", UserWarning)  # scikit-learn's, for both
        ours = MLPSearchCV(est, grid, **options).fit(X_, y_, **fit_options)
        theirs = GridSearchCV(est, grid, **options).fit(X_, y_, **fit_options)
    return ours, theirs


def assert_same_results(ours, theirs, metrics=("score",), atol=1e-9):
    assert ours.best_params_ == theirs.best_params_
    for metric in metrics:
        for split in range(theirs.n_splits_):
            key = f"split{split}_test_{metric}"
            np.testing.assert_allclose(ours.cv_results_[key], theirs.cv_results_[key], rtol=0, atol=atol, err_msg=key)
        rank = f"rank_test_{metric}"
        np.testing.assert_array_equal(ours.cv_results_[rank], theirs.cv_results_[rank])
    assert ours.cv_results_["params"] == theirs.cv_results_["params"]
    assert sorted(ours.cv_results_) == sorted(theirs.cv_results_)


def tolerance(backend):
    return 1e-9 if backend in ("numpy", "torch", "array_api_strict") else 1e-5


def test_classifier_stack_equals_gridsearch_fit_by_fit(backend):
    """lr × alpha × seed, 4 folds of 88-89 rows in shuffled batches of 32 (the short last batch
    padded where folds differ): one stack of 32 fits, each the network GridSearchCV trains."""
    est = MLPClassifier(hidden_layer_sizes=(6,), max_iter=12, batch_size=32, random_state=0)
    grid = {"learning_rate_init": [1e-3, 1e-2], "alpha": [1e-4, 0.1], "random_state": [0, 7]}
    ours, theirs = both(est, grid, X, Y, cv=4, scoring="neg_log_loss", return_train_score=True)
    assert_same_results(ours, theirs, atol=tolerance(ours.best_estimator_._net.backend))
    for split in range(4):
        key = f"split{split}_train_score"
        np.testing.assert_allclose(ours.cv_results_[key], theirs.cv_results_[key], rtol=0, atol=1e-6, err_msg=key)
    assert [(s["fits"], s["stacked"]) for s in ours.stacks_] == [(32, True)]
    assert ours.best_score_ == pytest.approx(theirs.best_score_, abs=1e-6)


def test_stopping_rule_is_each_fits_own(backend):
    """A loose tol stops fits at different epochs (scikit-learn's n_iter_no_change rule); each
    member stops where its own fit does, and keeps those weights while the others go on."""
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=60, tol=0.02, n_iter_no_change=2, batch_size=40)
    grid = {"learning_rate_init": [1e-3, 3e-2, 0.3], "random_state": [1]}
    ours, theirs = both(est, grid, X, Y, cv=3, scoring="neg_log_loss")
    assert_same_results(ours, theirs, atol=tolerance(ours.best_estimator_._net.backend))


def test_regressor_sgd_momentum_and_sample_weight(backend):
    """Per-member momentum (SGD, Nesterov), sample weights cut per fold, the full batch of folds of
    different sizes (padded to the widest), R² scores (weighted too, as GridSearchCV weighs them)."""
    est = MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", max_iter=8, batch_size=500, random_state=3)
    grid = {"momentum": [0.0, 0.9], "learning_rate_init": [0.01, 0.05]}
    weights = np.random.default_rng(1).uniform(0.5, 2.0, size=X.shape[0])
    ours, theirs = both(est, grid, X, R, cv=KFold(3), sample_weight=weights)
    assert_same_results(ours, theirs, atol=tolerance(ours.best_estimator_._net.backend))
    assert ours.stacks_[0]["stacked"]


def test_candidates_that_cannot_stack_train_alone():
    """lbfgs, early stopping and hidden sizes: separate stacks or fits one by one, same results."""
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=10, random_state=0)
    grid = [
        {"hidden_layer_sizes": [(4,), (7,)], "alpha": [1e-4, 1e-2]},
        {"solver": ["lbfgs"], "alpha": [1e-4]},
        {"early_stopping": [True], "alpha": [1e-4]},
    ]
    ours, theirs = both(est, grid, X, Y, cv=3, scoring=["accuracy", "neg_log_loss"], refit="neg_log_loss")
    assert_same_results(ours, theirs, metrics=("accuracy", "neg_log_loss"), atol=1e-9)
    kinds = sorted((s["candidates"], s["stacked"]) for s in ours.stacks_)
    assert kinds == [([0, 2], True), ([1, 3], True), ([4], False), ([5], False)]  # alpha varies fastest
    assert ours.multimetric_
    assert ours.refit_time_ > 0


def test_uneven_seed_groups_and_refit(backend):
    """Candidates with seeds shared by different numbers of candidates, and a refit that predicts."""
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, batch_size=50)
    grid = [{"random_state": [0], "alpha": [1e-4, 1e-3, 1e-2]}, {"random_state": [1], "alpha": [1e-4]}]
    ours, theirs = both(est, grid, X, Y, cv=StratifiedKFold(3, shuffle=True, random_state=0), scoring="neg_log_loss")
    assert_same_results(ours, theirs, atol=tolerance(ours.best_estimator_._net.backend))
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert ours.score(X, Y) == pytest.approx(theirs.score(X, Y))


def test_a_fold_missing_a_class_trains_alone():
    """A fold whose training rows lack a class has other outputs than the rest: no stack."""
    y = Y.copy()
    y[:3] = 5  # class 5 only in the first fold's test rows
    est = MLPClassifier(hidden_layer_sizes=(3,), max_iter=4, random_state=0)
    ours, theirs = both(est, {"alpha": [1e-4, 1e-2]}, X, y, cv=KFold(3), error_score="raise")
    assert_same_results(ours, theirs)
    assert not any(s["stacked"] for s in ours.stacks_)


@pytest.mark.parametrize(
    ("grid", "error", "match"),
    [
        ({"learning_rate": [1e-3]}, ValueError, "learning_rate"),
        ({"lr": [1e-3]}, ValueError, r"param_grid names \['lr'\], which MLPClassifier does not have"),
        ({"alpha": [-1.0]}, ValueError, "alpha"),
        ({"alpha": []}, ValueError, "no candidates|empty"),
    ],
)
def test_bad_grid_is_refused_before_training(grid, error, match):
    search = MLPSearchCV(MLPClassifier(max_iter=2), grid, cv=2)
    with pytest.raises(error, match=match):
        search.fit(X, Y)
    assert not hasattr(search, "cv_results_")
    assert not hasattr(search, "stacks_")


def test_only_anynet_estimators():
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(TypeError, match=r"anynet\.sklearn\.MLPClassifier or MLPRegressor, got LogisticRegression"):
        MLPSearchCV(LogisticRegression(), {"C": [1.0]}).fit(X, Y)


def test_a_diverging_fit_gets_the_error_score():
    """A fit whose weights overflow scores ``error_score``, as GridSearchCV's failed fit does, and
    the others are unaffected."""
    est = MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", momentum=0.0, max_iter=30, random_state=0)
    grid = {"learning_rate_init": [0.01, 10.0]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = MLPSearchCV(est, grid, cv=2).fit(X, R * 10)
        theirs = GridSearchCV(est, grid, cv=2).fit(X, R * 10)
    np.testing.assert_array_equal(np.isnan(theirs.cv_results_["mean_test_score"]), [False, True])
    np.testing.assert_array_equal(np.isnan(ours.cv_results_["mean_test_score"]), [False, True])
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"][0], theirs.cv_results_["mean_test_score"][0])
    assert ours.stacks_ == [{"candidates": [0, 1], "fits": 4, "stacked": True, "seconds": ours.stacks_[0]["seconds"]}]


def test_lists_in_as_gridsearchcv_takes_them():
    est = MLPClassifier(hidden_layer_sizes=(3,), max_iter=3, random_state=0)
    weights = np.linspace(0.5, 1.5, X.shape[0]).tolist()
    ours, theirs = both(est, {"alpha": [1e-4, 1e-1]}, X.tolist(), Y.tolist(), cv=3, sample_weight=weights)
    assert_same_results(ours, theirs)
    assert ours.stacks_[0]["stacked"]


@pytest.mark.parametrize("hidden", [(0,), (4, -1)])
def test_a_bad_hidden_layer_size_in_the_grid_is_named(hidden):
    # it was "weights[0] has no columns" or numpy's "negative dimensions are not allowed"
    X = np.random.default_rng(0).normal(size=(40, 3))
    search = MLPSearchCV(MLPClassifier(max_iter=2), {"hidden_layer_sizes": [(8,), hidden]}, cv=2)
    with pytest.raises(ValueError, match=r"param_grid candidate .*hidden_layer_sizes must be > 0, got"):
        search.fit(X, np.arange(40) % 2)
