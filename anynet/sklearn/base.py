"""What ``MLPClassifier`` and ``MLPRegressor`` share: scikit-learn's parameters, validation,
initialisation and solvers, over an anynet ``Network`` on any backend."""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted

from .. import backend as B
from .. import engines, intake, optimizers, sparse
from .._validate import host_2d, same_place, sample_weights
from ..network import Network
from . import checks, lbfgs
from .networks import (
    OUTPUT,
    dtype_like,
    glorot,
    hidden_sizes,
    native,
    net_from_host,
    net_to_host,
    take_rows,
    to_host,
)

#: the estimators' parameters and what each may be (scikit-learn's ``_parameter_constraints``)
PARAMETER_CONSTRAINTS: dict = {
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
    "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "power_t": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "shuffle": ["boolean"],
    "random_state": ["random_state"],
    "tol": [Interval(Real, 0, None, closed="left")],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "momentum": [Interval(Real, 0, 1, closed="both")],
    "nesterovs_momentum": ["boolean"],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "beta_1": [Interval(Real, 0, 1, closed="left")],
    "beta_2": [Interval(Real, 0, 1, closed="left")],
    "epsilon": [Interval(Real, 0, None, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
    "max_fun": [Interval(Integral, 1, None, closed="left")],
    "backend": [StrOptions(set(B.BACKENDS)), None],
    # anynet checks these when it builds the network or trains it, with its own messages
    "device": "no_validation",
    "dtype": "no_validation",
    "engine": [str],
}


class BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: validation, initialisation, the solvers."""

    _parameter_constraints: ClassVar[dict] = PARAMETER_CONSTRAINTS

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        backend=None,
        device=None,
        dtype=None,
        engine="auto",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.backend = backend
        self.device = device
        self.dtype = dtype
        self.engine = engine

    # ----------------------------------------------------------------------------- fitted state

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "_net") or "_coefs_given" in self.__dict__

    @property
    def coefs_(self) -> list[Any]:
        """The weight matrices ``(n_in, n_out)``, in the namespace of the data ``fit`` was given.

        Settable, as scikit-learn's: the list given (and what is put in it before the next ``fit``,
        ``partial_fit`` or ``predict``) becomes the network's weights there, so ``partial_fit`` and
        ``warm_start`` continue from weights you chose."""
        if "_coefs_given" in self.__dict__:
            return self._coefs_given
        check_is_fitted(self)
        return [self._out(W) for W in self._net.weights]

    @coefs_.setter
    def coefs_(self, value: list[Any]) -> None:
        self._coefs_given = value

    @property
    def intercepts_(self) -> list[Any]:
        """The bias vectors ``(n_out,)``, in the namespace of the data ``fit`` was given; settable
        as ``coefs_`` is."""
        if "_intercepts_given" in self.__dict__:
            return self._intercepts_given
        check_is_fitted(self)
        return [self._out(b) for b in self._net.biases]

    @intercepts_.setter
    def intercepts_(self, value: list[Any]) -> None:
        self._intercepts_given = value

    @property
    def network_(self) -> Network:
        """The ``anynet.Network`` the estimator trains: its weights, backend, device and dtype (the
        estimator's own, not a copy: read it, train the estimator)."""
        check_is_fitted(self)
        self._take_given_weights()
        return self._net

    def _take_given_weights(self) -> None:
        """Weights set through ``coefs_``/``intercepts_`` become the network's: the network's place,
        dtype and optimizer state are kept; a first network is made where the arrays live."""
        if "_coefs_given" not in self.__dict__ and "_intercepts_given" not in self.__dict__:
            return
        old = getattr(self, "_net", None)
        coefs = self.__dict__.pop("_coefs_given", None)
        intercepts = self.__dict__.pop("_intercepts_given", None)
        if old is None and (coefs is None or intercepts is None or not hasattr(self, "out_activation_")):
            msg = (
                "set coefs_, intercepts_ and out_activation_ together to give an unfitted estimator its "
                "weights (as scikit-learn's attributes: coefs_ [(n_in, n_out), ...], intercepts_ [(n_out,), ...])"
            )
            raise ValueError(msg)
        coefs = list(old.weights if coefs is None else coefs)
        intercepts = list(old.biases if intercepts is None else intercepts)
        if old is None:
            place = same_place(**{f"coefs_[{i}]": W for i, W in enumerate(coefs)})
            backend, device = place if place is not None else (self.backend, self.device)
            first = np.asarray(coefs[0]) if place is None else coefs[0]
            dtype = self.dtype if self.dtype is not None else dtype_like(first.dtype, backend)
            out = OUTPUT[self.out_activation_][0]
            self._data_place = place
        else:
            backend, device, dtype, out = old.backend, old.device, B.dtype_name(old.dtype), old.output_activation
        net = Network.from_weights(
            coefs,
            intercepts,
            activation=self.activation,
            output_activation=out,
            dtype=dtype,
            backend=backend,
            device=device,
        )
        net.follow(place=True)
        if old is not None and net.sizes == old.sizes:  # the optimizer carries on, as scikit-learn's does
            net.set_optimizer(old.optimizer, old.optimizer_state)
            net.epochs_trained = old.epochs_trained
        self._net = net

    def _out(self, a: Any) -> Any:
        return B.to_numpy(a) if self._data_place is None else a

    def __getstate__(self) -> dict:
        # A Network holds its array module, which does not pickle: keep host copies and rebuild.
        state = dict(super().__getstate__())
        if "_net" in state:
            state["_net"] = net_to_host(state["_net"])
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        if "_net" in state:
            state["_net"] = net_from_host(state["_net"])
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.input_tags.sparse = self._backend_for_host_data() in sparse.BACKENDS
        return tags

    def _backend_for_host_data(self, *, refit: bool = False) -> str:
        """The backend NumPy (and SciPy sparse) input computes on: the fitted network's (unless a new
        fit replaces it), else ``backend``."""
        if hasattr(self, "_net") and not refit:
            return self._net.backend
        return self.backend if self.backend is not None else B.default_backend()[0]

    # ----------------------------------------------------------------------------- for MLPSearchCV

    def check_params(self) -> None:
        """Check the parameters as ``fit`` checks them, without fitting: scikit-learn's constraints,
        then ``hidden_layer_sizes`` and ``engine``; raises what ``fit`` would raise."""
        self._validate_params()
        hidden_sizes(self.hidden_layer_sizes)
        engines.check(self.engine)

    def fit_backend(self, X: Any) -> str:
        """The backend a new ``fit`` on ``X`` computes on: the library of ``X`` where it is an array of
        one, else ``backend`` (``None``: the default, ``anynet.use``)."""
        name = B.backend_of(X)
        return self._backend_for_host_data(refit=True) if name in (None, "numpy") else name

    def begin_fit(self, X: Any, y: Any) -> tuple[Any, np.ndarray]:
        """The first steps of a first ``fit``, without its training: ``X`` and ``y`` checked as ``fit``
        checks them (a classifier learns its ``classes_``), the output activation chosen, and a network
        with scikit-learn's initial draws from ``random_state`` made where the data lives. Returns
        ``(X, T)``: ``X`` as checked (host data as NumPy, other arrays where they live) and the targets
        ``T``: ``(n, n_outputs)`` on the host. ``MLPSearchCV`` sets up each stack of fits so."""
        hidden = hidden_sizes(self.hidden_layer_sizes)
        place = checks.where(self, X, y)
        X, T = self._validate_input(X, y, place, False, reset=True)
        rs = check_random_state(self.random_state)
        self._initialize(T, [X.shape[1], *hidden, T.shape[1]], rs, place, X.dtype)
        self._data_place = place
        return X, T

    def as_fitted(self, template: BaseMLP, layers: list, loss_curve: list[float], n_train: int) -> BaseMLP:
        """A clone of this estimator, fitted: as a stochastic ``fit`` that recorded the per-epoch
        ``loss_curve`` over ``n_train`` rows an epoch and ended at ``layers`` (``[(W, b), ...]`` on the
        place of ``template``'s network). ``template``: an estimator of this class that ``begin_fit``
        set up on the same data; the clone takes its record of that data (features, outputs, classes).
        ``MLPSearchCV`` makes each fit of a stack so."""
        est: BaseMLP = clone(self)
        for name in ("n_features_in_", "feature_names_in_", "n_outputs_", "n_layers_", "out_activation_"):
            if hasattr(template, name):
                setattr(est, name, getattr(template, name))
        est._data_place = template._data_place
        est._net = template._net.with_layers(layers)
        est.n_iter_ = len(loss_curve)
        est.loss_curve_ = list(loss_curve)
        est.loss_ = est.loss_curve_[-1]
        est.best_loss_ = float(np.min(est.loss_curve_))
        est.t_ = int(len(loss_curve) * n_train)
        est.validation_scores_ = est.best_validation_score_ = None
        return est

    # ----------------------------------------------------------------------------- data in

    def _check_Xy(self, X: Any, y: Any, place: tuple[str, str] | None, *, reset: bool, y_numeric: bool):
        """``(X, y)`` checked as scikit-learn checks them (``anynet.sklearn.checks``)."""
        backend = self._backend_for_host_data(refit=reset)
        return checks.check_Xy(self, X, y, place, reset=reset, y_numeric=y_numeric, backend=backend)

    # ----------------------------------------------------------------------------- fitting

    def _fit(self, X: Any, y: Any, sample_weight: Any = None, incremental: bool = False):
        hidden = hidden_sizes(self.hidden_layer_sizes)
        engines.check(self.engine)
        first_pass = not self.__sklearn_is_fitted__() or (not self.warm_start and not incremental)
        if first_pass:  # weights set by hand are dropped, as scikit-learn's _initialize drops them
            self.__dict__.pop("_coefs_given", None)
            self.__dict__.pop("_intercepts_given", None)
        place = checks.where(self, X, y)
        X, T = self._validate_input(X, y, place, incremental, reset=first_pass)
        sw = None if sample_weight is None else sample_weights(to_host(sample_weight), X.shape[0])
        if not first_pass:
            self._take_given_weights()
        layer_units = [X.shape[1], *hidden, T.shape[1]]
        rs = check_random_state(self.random_state)
        if first_pass:
            self._initialize(T, layer_units, rs, place, X.dtype)
        elif place is not None and (self._net.backend, self._net.device) != place:
            self._net = self._net.to(*place)  # a warm start on data that lives elsewhere
            self._net.follow(place=True)
        self._data_place = place
        host_2d(T, "y", dtype=B.dtype_name(self._net.dtype))  # y finite in the network's dtype too
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, T, sw)
        else:
            self._fit_stochastic(X, T, sw, rs, incremental)
        net = self._net
        if not all(bool(net.xp.all(net.xp.isfinite(a))) for layer in net.layers for a in layer):
            msg = (
                "Solver produced non-finite parameter weights. The input data may contain large values "
                "and need to be preprocessed."
            )
            raise ValueError(msg)
        return self

    def _initialize(self, T: np.ndarray, layer_units: list[int], rs, place, x_dtype) -> None:
        """First fit: output activation, scikit-learn's Glorot draws, and the network that holds them."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = T.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        weights, biases = glorot(layer_units, self.activation, rs)
        backend, device = place if place is not None else (self.backend, self.device)
        out, _ = OUTPUT[self.out_activation_]
        dtype = self.dtype if self.dtype is not None else dtype_like(x_dtype, backend)
        net = Network.from_weights(
            weights,
            biases,
            activation=self.activation,
            output_activation=out,
            dtype=dtype,
            backend=backend,
            device=device,
        )
        net.follow(place=True)  # checks.where enforces backend/device; the network follows the data
        self._net = net
        for name in ("_lr", "_no_improvement_count"):
            self.__dict__.pop(name, None)
        if self.solver != "lbfgs":
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _fit_stochastic(self, X: Any, T: np.ndarray, sw: np.ndarray | None, rs, incremental: bool) -> None:
        """scikit-learn's ``_fit_stochastic`` on anynet's ``fit``: a callback after each epoch keeps the
        loss curve and validation scores and decides, by scikit-learn's rules, when to stop. A loss
        that diverges does not stop it (scikit-learn trains on): the loss curve and validation scores
        show the non-finite values, and the weights are checked at the end."""
        net = self._net
        if not incremental or not hasattr(self, "_lr"):
            self._lr = float(self.learning_rate_init)
            net.set_optimizer(None, None)  # a new fit starts a new optimizer, as scikit-learn's does
        if self.early_stopping and incremental:
            msg = "partial_fit does not support early_stopping=True"
            raise ValueError(msg)
        n = X.shape[0]
        if self.early_stopping:
            classifier = isinstance(self, ClassifierMixin)
            # the same split as scikit-learn's: it depends only on n, the generator and stratify, and
            # stratifies on the same booleans (so its messages name the class 'True')
            stratify = T.astype(bool) if classifier and self.n_outputs_ == 1 else None
            tr, va = train_test_split(
                np.arange(n), random_state=rs, test_size=self.validation_fraction, stratify=stratify
            )
            if va.shape[0] < 2:
                msg = "The validation set is too small. Increase 'validation_fraction' or the size of your dataset."
                raise ValueError(msg)
            X_val = intake.placed(take_rows(X, va), net.spec, "X")  # moved once, not per epoch
            X_train, T_train = take_rows(X, tr), T[tr]
            y_val = self._label_binarizer.inverse_transform(T[va]) if classifier else T[va]
            sw_train, sw_val = (None, None) if sw is None else (sw[tr], sw[va])
        else:
            X_train, T_train, X_val, y_val, sw_train, sw_val = X, T, None, None, sw, None
        n_train = X_train.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_train)
        else:
            if self.batch_size > n_train:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
                    stacklevel=3,
                )
            batch_size = int(np.clip(self.batch_size, 1, n_train))
        sgd = self.solver == "sgd"
        if sgd:
            opt = optimizers.SGD(momentum=float(self.momentum), nesterov=bool(self.nesterovs_momentum))
        else:
            opt = optimizers.Adam(beta_1=float(self.beta_1), beta_2=float(self.beta_2), epsilon=float(self.epsilon))
        adaptive = sgd and self.learning_rate == "adaptive"
        invscaling = sgd and self.learning_rate == "invscaling"
        lr_init = float(self.learning_rate_init)
        T_train = T_train if self._data_place is None else B.from_numpy(T_train, *native(self._data_place))
        stopped = restart = False
        best = net.layers

        def end_of_epoch(epoch: int, logs: dict) -> bool:
            nonlocal stopped, restart, best
            self.n_iter_ += 1
            self.loss_ = logs["loss"]
            self.t_ += n_train
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
            if self.early_stopping:
                if self._validation_score(logs["network"], X_val, y_val, sw_val):
                    best = logs["network"].layers
            else:
                self._track_loss()
            if invscaling:
                self._lr = lr_init / (self.t_ + 1) ** self.power_t
            if self._no_improvement_count <= self.n_iter_no_change:
                return False
            what = "Validation score" if self.early_stopping else "Training loss"
            msg = f"{what} did not improve more than tol={self.tol:f} for {self.n_iter_no_change} consecutive epochs."
            if adaptive and self._lr > 1e-6:
                self._lr /= 5.0
                self._no_improvement_count = 0
                if self.verbose:
                    print(f"{msg} Setting learning rate to {self._lr:f}")
                restart = True  # the next epochs run at the new rate, in a new segment
            else:
                if self.verbose:
                    print(f"{msg}{' Learning rate too small.' if adaptive else ''} Stopping.")
                stopped = True
            return True

        # Segments of epochs at known learning rates: 'invscaling' is a formula in the samples seen,
        # and each 'adaptive' cut ends a segment; weights and optimizer state carry across segments.
        self.n_iter_ = 0
        epochs = 1 if incremental else self.max_iter
        while self.n_iter_ < epochs and not stopped:
            lr0, t0, restart = self._lr, self.t_, False

            def schedule(_lr, e, _epochs, lr0=lr0, t0=t0):
                return lr0 if e == 0 or not invscaling else lr_init / (t0 + e * n_train + 1) ** self.power_t

            net.fit(
                X_train,
                T_train,
                epochs=epochs - self.n_iter_,
                lr=lr0,
                loss=OUTPUT[self.out_activation_][1],
                optimizer=opt,
                alpha=float(self.alpha),
                schedule=schedule,
                batch_size=batch_size,
                shuffle=self.shuffle,
                seed=int(rs.randint(np.iinfo(np.int32).max)) if self.shuffle else 0,
                callbacks=[end_of_epoch],
                verbose=0,
                sample_weight=sw_train,
                on_divergence="continue",
                engine=self.engine,
            )
            if not restart:
                break
        if self.early_stopping:
            net.layers = best
        if not incremental and not stopped and self.n_iter_ == self.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the optimization "
                "hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _track_loss(self) -> None:
        if self.loss_curve_[-1] > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])

    def _validation_score(self, net: Network, X_val: Any, y_val: Any, sw_val: np.ndarray | None) -> bool:
        """Score the held-out data as scikit-learn does; ``True`` when it is the best so far."""
        score = self._score_outputs(B.to_numpy(net.predict(X_val)), y_val, sw_val)
        self.validation_scores_.append(score)
        if self.verbose:
            print(f"Validation score: {score:f}")
        if score < self.best_validation_score_ + self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            return True
        return False

    def _fit_lbfgs(self, X: Any, T: np.ndarray, sw: np.ndarray | None) -> None:
        """scipy's L-BFGS-B over the flattened parameters (``anynet.sklearn.lbfgs``)."""
        output, loss = OUTPUT[self.out_activation_]
        result, self._net.layers = lbfgs.minimize(
            self._net,
            X,
            T,
            sw,
            output=output,
            loss=loss,
            alpha=self.alpha,
            max_iter=self.max_iter,
            max_fun=self.max_fun,
            tol=self.tol,
        )
        self.n_iter_ = min(int(result.nit), self.max_iter)
        if result.status != 0:
            warnings.warn(
                f"lbfgs failed to converge after {self.n_iter_} iteration(s) (status={result.status}):\n"
                f"{result.message}\nIncrease the number of iterations (max_iter) or scale the data.",
                ConvergenceWarning,
                stacklevel=3,
            )
        if self.verbose:
            print(f"L-BFGS-B: {self.n_iter_} iterations, loss = {float(result.fun):.8f}")
        self.loss_ = float(result.fun)

    # ----------------------------------------------------------------------------- predicting

    def _forward(self, X: Any) -> tuple[Any, tuple[str, str] | None]:
        """The network's output ``(n, n_outputs)`` for ``X``, in ``X``'s namespace and on its device."""
        check_is_fitted(self)
        self._take_given_weights()
        place = checks.where(self, X)
        X = checks.check_X(self, X, place, reset=False, backend=self._backend_for_host_data())
        y = self._net.predict(X)
        return (B.to_numpy(y) if place is None else y), place


def stochastic_only(est: BaseMLP) -> bool:
    """Whether ``est`` has ``partial_fit``: a stochastic solver; an AttributeError says why not."""
    if est.solver not in ("sgd", "adam"):
        msg = f"partial_fit is only available for stochastic optimizers. {est.solver} is not stochastic."
        raise AttributeError(msg)
    return True
