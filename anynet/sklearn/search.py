"""``MLPSearchCV``: scikit-learn's ``GridSearchCV`` for anynet's MLPs, with the fits trained as stacks.

A grid of ``lr × alpha × seed`` with 5-fold cross-validation is 135 small fits; one after another they
spend their time in per-call overhead, not arithmetic. Here every candidate × fold whose shapes agree
trains in one stack: candidates that share every parameter but ``learning_rate_init``, ``alpha``,
``momentum`` and ``random_state`` stack their networks ``(G, m, n_in, n_out)``. Each of the ``G`` groups
is one fold with one shuffle seed, so its ``m`` members see the same rows: a step gathers one batch per
group, ``(G, 1, b, n_in)``, from the single copy of ``X`` (a fold is a set of row indices, never a copy
of the data), and row weights mask the padding where the groups' batches differ in length. The stack
trains in the one training loop (``anynet.train``) with members ``(G, m)``, the batches from
``anynet.batches.Groups`` and scikit-learn's stopping rule from ``anynet.stopping.NoImprovement``.

Each member takes exactly the steps ``clone(estimator).set_params(**params).fit(X[train], y[train])``
takes: the same Glorot draws from ``random_state``, the same shuffled batches, the same per-epoch loss
and stopping rule (scikit-learn's ``tol``/``n_iter_no_change``). So ``cv_results_`` holds the scores
``GridSearchCV`` would compute, to rounding, and the search picks the same ``best_params_``. Candidates
that cannot stack (``solver="lbfgs"``, ``early_stopping=True``, an ``"invscaling"`` or ``"adaptive"``
learning rate, sparse ``X``, a lazy backend, an ``engine`` that trains one network at a time, or folds
that miss a class) train one by one, exactly as ``GridSearchCV`` trains them.
"""

from __future__ import annotations

import copy
import dataclasses
import time
import warnings
from collections import defaultdict
from typing import Any

import numpy as np
from sklearn.base import _fit_context, clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics._scorer import _check_multimetric_scoring, _MultimetricScorer
from sklearn.model_selection import GridSearchCV, ParameterGrid, check_cv
from sklearn.model_selection._validation import (
    _fit_and_score,
    _insert_error_scores,
    _score,
    _warn_or_raise_about_fit_failures,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.metaestimators import _safe_split
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import indexable

from .. import activations, engines, intake, optimizers, plans, sparse
from .. import backend as B
from .. import train as training
from .._validate import all_finite, sample_weights
from ..batches import Groups
from ..stopping import NoImprovement
from .base import BaseMLP
from .networks import OUTPUT, glorot, to_host

__all__ = ["MLPSearchCV"]

#: the estimator parameters that may differ between the members of one stack
PER_MEMBER = ("learning_rate_init", "alpha", "momentum", "random_state", "verbose")


class MLPSearchCV(GridSearchCV):
    """``GridSearchCV`` over anynet's ``MLPClassifier``/``MLPRegressor``, training the candidates × folds
    of each stack at once.

    Takes ``GridSearchCV``'s parameters (``estimator``, ``param_grid``, ``scoring``, ``refit``, ``cv``,
    ``verbose``, ``error_score``, ``return_train_score``; ``n_jobs`` and ``pre_dispatch`` are taken
    and not used: every fit runs in this process) and gives its attributes: ``cv_results_``, ``best_params_``,
    ``best_score_``, ``best_index_``, ``best_estimator_``, ``scorer_``, ``n_splits_``, ``refit_time_``,
    ``multimetric_``, and ``predict``/``score``/... through the refitted best estimator.

    ``fit(X, y, groups=None, sample_weight=None)``: ``groups`` goes to the splitter, ``sample_weight``
    to each fit (its training rows). Every candidate's parameters are checked before any training.

    The engine that trains (``anynet.engines``) is the estimator's ``engine`` parameter, as for its own
    ``fit``: a stack trains on it when it stacks (``stacks = True``), and its candidates train alone,
    one fit at a time on it, when it does not. It may be searched over like any other parameter.

    Adds ``stacks_``: how the fits were trained, one dict per stack, ``{"candidates": [indices],
    "fits": candidates × folds, "stacked": bool, "seconds": wall time}``. A stacked fit's
    ``fit_time`` in ``cv_results_`` is its stack's time divided by the fits in it.
    """

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, *, groups=None, sample_weight=None):
        """Run every candidate on every fold and refit the best; returns ``self``."""
        base = self.estimator
        if not isinstance(base, BaseMLP):
            msg = (
                "MLPSearchCV searches anynet.sklearn.MLPClassifier or MLPRegressor, got "
                f"{type(base).__name__}; use sklearn.model_selection.GridSearchCV for other estimators"
            )
            raise TypeError(msg)
        candidates = list(ParameterGrid(self.param_grid))
        if not candidates:
            msg = "param_grid gives no candidates; give at least one parameter value"
            raise ValueError(msg)
        estimators = [_candidate(base, params) for params in candidates]  # each checked before training

        scorers, refit_metric, named = self._scorers()
        X, y = indexable(X, y)
        cv = check_cv(self.cv, y, classifier=is_classifier(base))
        splits = list(cv.split(X, y, groups))
        self.n_splits_ = len(splits)
        sw = None if sample_weight is None else sample_weights(to_host(sample_weight), _num_samples(X))
        fit_params = {} if sw is None else {"sample_weight": sw}
        # as GridSearchCV: sample_weight also weighs the scores, where every scorer takes it
        weigh_scores = sw is not None and getattr(self, "_check_scorers_accept_sample_weight", bool)()
        score_params = {"sample_weight": sw} if weigh_scores else {}
        if self.verbose > 0:
            print(
                f"Fitting {self.n_splits_} folds for each of {len(candidates)} candidates, "
                f"totalling {len(candidates) * self.n_splits_} fits"
            )

        out: list[dict | None] = [None] * (len(candidates) * self.n_splits_)
        self.stacks_ = []
        stacks, alone = _plan(estimators, X)
        context = _Data(base, estimators, X, y, splits, sw, score_params) if stacks else None
        scoring = (scorers, named)
        if context is not None and context.refused:
            alone, stacks = sorted(alone + [i for key in stacks for i in stacks[key]]), {}
        for members in stacks.values():
            t0 = time.perf_counter()
            results = _Stack(context, members, self, estimators, scoring).train()
            for (c, f), result in results.items():
                out[c * self.n_splits_ + f] = result
            self.stacks_.append(
                {
                    "candidates": members,
                    "fits": len(members) * self.n_splits_,
                    "stacked": True,
                    "seconds": time.perf_counter() - t0,
                }
            )
        for c in alone:
            t0 = time.perf_counter()
            for f, (train, test) in enumerate(splits):
                out[c * self.n_splits_ + f] = _fit_and_score(
                    clone(base),
                    X,
                    y,
                    scorer=scorers,
                    train=train,
                    test=test,
                    verbose=self.verbose,
                    parameters=clone(candidates[c], safe=False),
                    fit_params=fit_params,
                    score_params=score_params,
                    return_train_score=self.return_train_score,
                    return_n_test_samples=True,
                    return_times=True,
                    error_score=self.error_score,
                )
            self.stacks_.append(
                {"candidates": [c], "fits": self.n_splits_, "stacked": False, "seconds": time.perf_counter() - t0}
            )

        _warn_or_raise_about_fit_failures(out, self.error_score)
        if callable(self.scoring):
            _insert_error_scores(out, self.error_score)
        results = self._format_results(candidates, self.n_splits_, out)
        self.multimetric_ = isinstance(out[0]["test_scores"], dict)
        if callable(self.scoring) and self.multimetric_:
            self._check_refit_for_multimetric(out[0]["test_scores"])
            refit_metric = self.refit
        if self.refit or not self.multimetric_:
            self.best_index_ = self._select_best_index(self.refit, refit_metric, results)
            if not callable(self.refit):
                self.best_score_ = results[f"mean_test_{refit_metric}"][self.best_index_]
            self.best_params_ = results["params"][self.best_index_]
        if self.refit:
            self.best_estimator_ = clone(base).set_params(**clone(self.best_params_, safe=False))
            t0 = time.time()
            self.best_estimator_.fit(X, y, **fit_params)
            self.refit_time_ = time.time() - t0
            if hasattr(self.best_estimator_, "feature_names_in_"):
                self.feature_names_in_ = self.best_estimator_.feature_names_in_
        self.scorer_ = scorers if named is None else named
        self.cv_results_ = results
        return self

    def _scorers(self) -> tuple[Any, str, dict | None]:
        """``GridSearchCV._get_scorers``'s ``(scorers, refit_metric)``, and for several metrics the
        scorers by name (else ``None``)."""
        if callable(self.scoring) or self.scoring is None or isinstance(self.scoring, str):
            scorers, refit_metric = self._get_scorers()
            return scorers, refit_metric, None
        named = _check_multimetric_scoring(self.estimator, self.scoring)
        self._check_refit_for_multimetric(named)
        return _MultimetricScorer(scorers=named, raise_exc=(self.error_score == "raise")), self.refit, named


def _candidate(base: BaseMLP, params: dict) -> BaseMLP:
    """``base`` with ``params`` set and checked, as ``GridSearchCV`` would fit it; a name the
    estimator does not have is an error here, before any training."""
    valid = base.get_params()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        msg = (
            f"param_grid names {unknown}, which {type(base).__name__} does not have; its parameters are {sorted(valid)}"
        )
        raise ValueError(msg)
    est = clone(base).set_params(**clone(params, safe=False))
    try:
        est.check_params()
    except InvalidParameterError:  # scikit-learn's own message names the parameter and the value
        raise
    except ValueError as exc:  # said before any training, for the candidate that has it
        msg = f"param_grid candidate {params}: {exc}"
        raise ValueError(msg) from None
    return est


def _stackable(est: BaseMLP, X: Any) -> bool:
    if est.solver == "lbfgs" or est.early_stopping or sparse.is_sparse(X):
        return False
    if est.solver == "sgd" and est.learning_rate != "constant":
        return False
    if not engines.stacks(est.engine):  # an engine that trains one network at a time
        return False
    return not B.is_lazy(est.fit_backend(X))  # on a lazy backend each candidate trains alone


def _plan(estimators: list[BaseMLP], X: Any) -> tuple[dict, list[int]]:
    """The stacks (candidate indices by the parameters their members must share) and the candidates
    that train alone."""
    stacks: dict[str, list[int]] = defaultdict(list)
    alone = []
    for i, est in enumerate(estimators):
        if not _stackable(est, X):
            alone.append(i)
            continue
        params = est.get_params()
        params["hidden_layer_sizes"] = tuple(np.atleast_1d(params["hidden_layer_sizes"]).tolist())
        stacks[repr(sorted((k, v) for k, v in params.items() if k not in PER_MEMBER))].append(i)
    return dict(stacks), alone


class _Data:
    """What every stack shares: ``X`` and the targets checked once and moved to the backend once, and
    each fold's training rows and test data."""

    def __init__(self, base, estimators, X, y, splits, sw, score_params):
        est = clone(estimators[0]).set_params(random_state=0)  # its draws are not used (see _template)
        self.X, self.T = est.begin_fit(X, y)
        self.splits, self.sw, self.score_params = splits, sw, score_params
        self.X_raw, self.y_raw = X, y
        #: a fold whose training rows miss a class has other outputs: its fits cannot join a stack
        self.refused = is_classifier(base) and any(
            not np.array_equal(unique_labels(to_host(y)[train]), est.classes_) for train, _ in splits
        )
        self._tests: dict[int, tuple] = {}  # each fold's test rows: the folds' together are one copy of X
        self._train: tuple = (None, None)  # one fold's training rows at a time (scored fold by fold)

    def test(self, f: int, base: BaseMLP, *, train: bool = False) -> tuple:
        """``(X_test, y_test, test score params)`` of fold ``f`` as ``GridSearchCV`` cuts them, and
        with ``train`` also ``(X_train, y_train, train score params)``."""
        rows, test = self.splits[f]
        if f not in self._tests:
            X_test, y_test = _safe_split(base, self.X_raw, self.y_raw, test, rows)
            self._tests[f] = (X_test, y_test, {k: v[test] for k, v in self.score_params.items()})
        if not train:
            return self._tests[f]
        if self._train[0] != f:
            X_train, y_train = _safe_split(base, self.X_raw, self.y_raw, rows)
            self._train = (f, (X_train, y_train, {k: v[rows] for k, v in self.score_params.items()}))
        return self._tests[f] + self._train[1]


class _Stack:
    """One stack's fits, trained together: ``G`` groups (a fold and a shuffle seed each) of ``m``
    candidates, in the training loop."""

    def __init__(self, data: _Data, members: list[int], search: MLPSearchCV, estimators: list[BaseMLP], scoring):
        self.data, self.search, self.estimators = data, search, estimators
        self.scorers, self.named = scoring  # the search's scorers, and by name for several metrics
        ests = [self.estimators[c] for c in members]
        first = ests[0]
        n_features, n_out = data.X.shape[1], data.T.shape[1]
        hidden = list(np.atleast_1d(first.hidden_layer_sizes).tolist())
        self.units = [n_features, *hidden, n_out]
        # Each fit's draws, in the order its own fit makes them: Glorot weights, then the shuffle seed.
        # A group is the fits that share a fold and a seed: their batches are the same rows.
        draws: dict[tuple[int, int], list[tuple[int, list, list]]] = defaultdict(list)
        for c, est in zip(members, ests, strict=True):
            for f in range(len(data.splits)):
                rs = check_random_state(copy.deepcopy(est.random_state))
                weights, biases = glorot(self.units, est.activation, rs)
                seed = int(rs.randint(np.iinfo(np.int32).max)) if est.shuffle else 0
                draws[f, seed].append((c, weights, biases))
        sizes = {len(v) for v in draws.values()}
        # groups of unequal size (seeds shared by different numbers of candidates) go one stack per size
        self.parts = [[(key, draws[key]) for key in draws if len(draws[key]) == m] for m in sorted(sizes)]
        self.first = first
        self.schedule = self._schedules()

    def train(self) -> dict[tuple[int, int], dict]:
        out = {}
        for part in self.parts:
            # folds whose batch counts differ cannot step together: one run per count
            by_steps: dict[tuple, list] = defaultdict(list)
            for key, fits in part:
                by_steps[self.schedule[key[0]][1:]].append((key, fits))
            for groups in by_steps.values():
                out.update(self._run(groups))
        return out

    def _schedules(self) -> dict[int, tuple[int, bool, int]]:
        """Each fold's ``(batch size, batched, steps per epoch)``, as its own fit would choose."""
        est, out = self.first, {}
        for f, (train, _) in enumerate(self.data.splits):
            n_train = len(train)
            bs = min(200, n_train) if est.batch_size == "auto" else int(np.clip(est.batch_size, 1, n_train))
            out[f] = (bs, bs < n_train, -(-n_train // bs))
        if est.batch_size != "auto" and est.batch_size > min(len(train) for train, _ in self.data.splits):
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
                stacklevel=5,
            )
        return out

    def _run(self, groups: list) -> dict[tuple[int, int], dict]:
        """The groups that step together (a fold and a shuffle seed each, of ``m`` candidates) trained
        as one ``(G, m)`` stack by the training loop, with scikit-learn's stopping rule, then scored."""
        data, est = self.data, self.first
        tpl = _template(data, est)
        net = tpl.network_
        spec = net.spec
        folds = [key[0] for key, _ in groups]
        fits = [[c for c, _, _ in f] for _, f in groups]  # (G, m) candidate indices
        on = {"backend": spec.backend, "native": spec.native, "dtype": spec.dtype_name}
        stack = [
            (
                np.array([[w[i] for _, w, _ in f] for _, f in groups]),
                np.array([[b[i][None, :] for _, _, b in f] for _, f in groups]),
            )
            for i in range(len(self.units) - 1)
        ]
        layers = spec.put(stack)

        def each(name: str) -> np.ndarray:
            return np.array([[float(getattr(self.estimators[c], name)) for c in row] for row in fits])

        if est.solver == "sgd":
            opt = optimizers.SGD(
                momentum=training.per_member(each("momentum"), **on), nesterov=bool(est.nesterovs_momentum)
            )
        else:
            opt = optimizers.Adam(beta_1=float(est.beta_1), beta_2=float(est.beta_2), epsilon=float(est.epsilon))
        out, loss = OUTPUT[tpl.out_activation_]
        acts = (activations.get(net.activation),) * (len(self.units) - 2) + (activations.get(out),)
        batches = Groups(
            intake.placed(data.X, spec, "X"),
            intake.placed(data.T, spec, "y"),
            None if data.sw is None else intake.placed(data.sw.reshape(-1, 1), spec, "sample_weight"),
            [data.splits[f][0] for f in folds],
            [self.schedule[f][0] for f in folds],
            shuffle=self.schedule[folds[0]][1] and est.shuffle,
            seeds=[key[1] for key, _ in groups],
            **on,
        )
        plan = plans.plan(
            out,
            epochs=est.max_iter,
            loss=loss,
            optimizer=opt,
            verbose=0,
            on_divergence="continue",
            engine=est.engine,  # shared by the stack's members: it is no per-member parameter
        )
        lr = each("learning_rate_init")
        t0 = time.perf_counter()
        result = training.fit(
            layers,
            None,
            batches,
            plan=dataclasses.replace(plan, track_accuracy=False),  # nothing reads it, and padding would count
            acts=acts,
            xp=spec.xp,
            backend=spec.backend,
            device=spec.device,
            native=spec.native,
            lrs=np.broadcast_to(lr, (est.max_iter, *lr.shape)),
            alpha=training.per_member(each("alpha"), **on),
            opt=opt,
            stopping=NoImprovement(est.tol, est.n_iter_no_change),
        )
        seconds = time.perf_counter() - t0
        if result.error is not None:
            raise result.error
        histories = np.array(result.histories, dtype=object).reshape(len(groups), -1)
        if not all(h.stopped_early for h in result.histories):
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) reached and the optimization "
                "hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=5,
            )
        return self._score(tpl, result.layers, folds, fits, histories, seconds / histories.size)

    def _score(self, tpl, layers, folds, fits, histories, fit_time) -> dict[tuple[int, int], dict]:
        """Each fit as a fitted estimator, scored on its fold as ``GridSearchCV`` scores it."""
        search, data = self.search, self.data
        scorers = self.scorers
        out = {}
        for g in sorted(range(len(folds)), key=lambda g: folds[g]):  # fold by fold: one training split at a time
            f = folds[g]
            X_test, y_test, on_test, *on_train_rows = data.test(f, search.estimator, train=search.return_train_score)
            for j, c in enumerate(fits[g]):
                mine = [(W[g, j, ...], b[g, j, 0, ...]) for W, b in layers]
                est = _fitted(tpl, self.estimators[c], mine, histories[g, j], len(data.splits[f][0]))
                result: dict[str, Any] = {"fit_time": fit_time, "n_test_samples": _num_samples(X_test)}
                if est is None:
                    result.update(_failed(self.named, search, "Solver produced non-finite parameter weights."))
                    out[c, f] = result
                    continue
                t0 = time.perf_counter()
                result["test_scores"] = _score(est, X_test, y_test, scorers, on_test, search.error_score)
                result["score_time"] = time.perf_counter() - t0
                if search.return_train_score:
                    X_train, y_train, on_train = on_train_rows
                    result["train_scores"] = _score(est, X_train, y_train, scorers, on_train, search.error_score)
                result["fit_error"] = None
                out[c, f] = result
        return out


def _fitted(tpl: BaseMLP, est: BaseMLP, layers: list, history: Any, n_train: int) -> BaseMLP | None:
    """``est`` holding one member's ``layers`` and fit record, or ``None`` if the weights are not finite."""
    xp = tpl.network_.xp
    if not all(all_finite(a, xp) for pair in layers for a in pair):
        return None
    return est.as_fitted(tpl, layers, history.loss, n_train)


def _template(data: _Data, est: BaseMLP) -> BaseMLP:
    """An estimator of ``est``'s parameters set up as its fit sets itself up (label binarizer,
    output activation, a network on the backend), whose network the members' views share. Its own
    initial draws are never used: seeded, they leave the global generator as it was."""
    tpl = clone(est).set_params(random_state=0)
    tpl.begin_fit(data.X_raw, data.y_raw)
    return tpl


def _failed(named: dict | None, search: MLPSearchCV, message: str) -> dict:
    if search.error_score == "raise":
        raise ValueError(message)
    scores: Any = search.error_score if named is None else dict.fromkeys(named, search.error_score)
    result = {"fit_error": f"ValueError: {message}", "test_scores": scores, "score_time": 0.0}
    if search.return_train_score:
        result["train_scores"] = copy.copy(scores)
    return result


def _num_samples(X: Any) -> int:
    return int(X.shape[0]) if hasattr(X, "shape") else len(X)
