"""scikit-learn drop-ins: ``MLPClassifier`` and ``MLPRegressor`` that train with anynet on any backend.

Change ``from sklearn.neural_network import MLPClassifier`` to ``from anynet.sklearn import
MLPClassifier`` and the same code runs; give it CuPy or torch-CUDA arrays and it trains on that GPU and
answers with arrays there. The parameters, fitted attributes, random draws and stopping rules are
scikit-learn's (``neural_network/_multilayer_perceptron.py``): with ``shuffle=False`` the two fit
the same weights to rounding. scikit-learn is optional (``pip install scikit-learn``):
``import anynet`` does not import this module.
"""

from __future__ import annotations

import math
import warnings
from itertools import accumulate, pairwise
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.optimize
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from . import activations, core, intake, losses, optimizers, sparse
from . import backend as B
from ._validate import all_finite, host_2d, kind_of, same_place, sample_weights
from .defaults import loss_for
from .network import Network
from .tree import tree_map

if TYPE_CHECKING:
    from ._search import MLPSearchCV

__all__ = ["MLPClassifier", "MLPRegressor", "MLPSearchCV"]

#: scikit-learn's output activation names -> anynet's, and the loss each pairs with
_OUTPUT = {
    name: (act, loss_for(act, "sklearn"))
    for name, act in {"softmax": "softmax", "logistic": "sigmoid", "identity": "identity", "exp": "exp"}.items()
}


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: validation, initialisation, the solvers."""

    _parameter_constraints: ClassVar[dict] = {
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
        # anynet checks these two when it builds the network, with its own messages
        "device": "no_validation",
        "dtype": "no_validation",
    }

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
            dtype = self.dtype if self.dtype is not None else _dtype_like(first.dtype, backend)
            out = _OUTPUT[self.out_activation_][0]
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
            state["_net"] = _net_to_host(state["_net"])
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        if "_net" in state:
            state["_net"] = _net_from_host(state["_net"])
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

    # ----------------------------------------------------------------------------- data in

    def _where(self, X: Any, y: Any = None) -> tuple[str, str] | None:
        """Where the arrays live (``None`` for host data), checked against ``backend``/``device``."""
        place = same_place(X=X, y=y)
        if place is None:
            return None
        backend = place[0] if self.backend is None else self.backend
        if backend != place[0] or (self.device is not None and _device_name(backend, self.device) != place[1]):
            msg = (
                f"X is a {kind_of(X)} but this estimator was made with backend={self.backend!r}, "
                f"device={self.device!r}; pass NumPy arrays or arrays on that backend and device, "
                "or leave backend and device as None so that the model follows the data"
            )
            raise ValueError(msg)
        return place

    def _check_X(self, X: Any, place: tuple[str, str] | None, *, reset: bool) -> Any:
        """``X`` checked as scikit-learn checks it: a NumPy array for host data, else the same array."""
        if place is None:
            return validate_data(
                self, X, accept_sparse=self._sparse_formats(X, reset), dtype=(np.float64, np.float32), reset=reset
            )
        xp = B.namespace_for(place[0])
        if not xp.isdtype(X.dtype, ("real floating", "integral", "bool")):
            msg = f"X must hold real numbers (float, int or bool), got dtype {X.dtype}"
            raise ValueError(msg)
        if X.ndim != 2:
            msg = f"Expected a 2-D X of shape (n_samples, n_features), got shape {tuple(X.shape)}"
            raise ValueError(msg)
        if X.shape[0] < 1 or X.shape[1] < 1:
            msg = f"Found array with shape {tuple(X.shape)}; a minimum of 1 sample and 1 feature is required"
            raise ValueError(msg)
        if xp.isdtype(X.dtype, "real floating") and not all_finite(X, xp):
            msg = "Input X contains NaN or infinity; clean or impute it first"
            raise ValueError(msg)
        if reset:
            self.n_features_in_ = int(X.shape[1])
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        elif X.shape[1] != self.n_features_in_:
            msg = (
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
            raise ValueError(msg)
        return X

    def _check_Xy(self, X: Any, y: Any, place: tuple[str, str] | None, *, reset: bool, y_numeric: bool):
        """``(X, y)``: ``X`` as ``_check_X`` leaves it, ``y`` as a host NumPy array (it is small)."""
        if place is None:
            dtype, formats = (np.float64, np.float32), self._sparse_formats(X, reset)
            return validate_data(
                self, X, y, accept_sparse=formats, multi_output=True, y_numeric=y_numeric, dtype=dtype, reset=reset
            )
        X = self._check_X(X, place, reset=reset)
        y = check_array(
            B.to_numpy(y), ensure_2d=False, dtype=np.float64 if y_numeric else None, input_name="y", estimator=self
        )
        if y.shape[0] != X.shape[0]:
            msg = f"Found input variables with inconsistent numbers of samples: {[X.shape[0], y.shape[0]]}"
            raise ValueError(msg)
        return X, y

    def _sparse_formats(self, X: Any, reset: bool) -> list[str]:
        """The sparse formats ``validate_data`` may pass on: CSR and CSC where the backend takes them;
        elsewhere a sparse ``X`` gets an error naming the backends that do."""
        backend = self._backend_for_host_data(refit=reset)
        if backend in sparse.BACKENDS:
            return ["csr", "csc"]
        if sparse.is_sparse(X):
            msg = (
                f"X is a SciPy sparse matrix, which trains on backend {' or '.join(map(repr, sparse.BACKENDS))} "
                f"only, but this estimator computes on {backend!r}; pass backend='numpy', or X.toarray()"
            )
            raise ValueError(msg)
        return []

    # ----------------------------------------------------------------------------- fitting

    def _fit(self, X: Any, y: Any, sample_weight: Any = None, incremental: bool = False):
        hidden = hidden_sizes(self.hidden_layer_sizes)
        first_pass = not self.__sklearn_is_fitted__() or (not self.warm_start and not incremental)
        if first_pass:  # weights set by hand are dropped, as scikit-learn's _initialize drops them
            self.__dict__.pop("_coefs_given", None)
            self.__dict__.pop("_intercepts_given", None)
        place = self._where(X, y)
        X, T = self._validate_input(X, y, place, incremental, reset=first_pass)
        sw = None if sample_weight is None else sample_weights(_host(sample_weight), X.shape[0])
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
        weights, biases = _glorot(layer_units, self.activation, rs)
        backend, device = place if place is not None else (self.backend, self.device)
        out, _ = _OUTPUT[self.out_activation_]
        dtype = self.dtype if self.dtype is not None else _dtype_like(x_dtype, backend)
        net = Network.from_weights(
            weights,
            biases,
            activation=self.activation,
            output_activation=out,
            dtype=dtype,
            backend=backend,
            device=device,
        )
        net.follow(place=True)  # the estimator's _where enforces backend/device; the network follows the data
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
            X_train, T_train, X_val = _rows(X, tr), T[tr], _on(_rows(X, va), net, "X")  # moved once, not per epoch
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
        T_train = T_train if self._data_place is None else B.from_numpy(T_train, *_native(self._data_place))
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
                loss=_OUTPUT[self.out_activation_][1],
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
        """scipy's L-BFGS-B over the flattened parameters; each loss and gradient comes from the core
        on the network's backend (one transfer of the parameter vector each way per evaluation)."""
        net = self._net
        xp, native, dtype = net.xp, B.native_device(net.backend, net.device), B.dtype_name(net.dtype)
        Xd, Td = _on(X, net, "X"), _on(T, net, "y")
        Wd = None if sw is None else _on(sw.reshape(-1, 1), net, "sample_weight")
        out, loss_name = _OUTPUT[self.out_activation_]
        acts = [activations.get(net.activation)] * (len(net.sizes) - 2) + [activations.get(out)]
        lf = losses.get(loss_name)
        shapes = [W.shape for W in net.weights] + [b.shape for b in net.biases]
        bounds = [0, *accumulate(math.prod(s) for s in shapes)]
        n_layers = len(net.weights)

        def unpack(theta: np.ndarray) -> list:
            flat = B.from_numpy(theta.astype(dtype), net.backend, native)
            parts = [xp.reshape(flat[bounds[i] : bounds[i + 1]], s) for i, s in enumerate(shapes)]
            return list(zip(parts[:n_layers], parts[n_layers:], strict=True))

        def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            value, grads, _ = core.loss_and_grads(
                unpack(theta), Xd, Td, acts=acts, loss=lf, alpha=self.alpha, w=Wd, xp=xp
            )
            pieces = [xp.reshape(gw, (-1,)) for gw, _ in grads] + [gb for _, gb in grads]
            host = B.to_numpy(xp.concat([*pieces, xp.reshape(value, (1,))]))  # one transfer back
            return float(host[-1]), host[:-1].astype(np.float64)

        theta0 = np.concatenate([B.to_numpy(a).ravel() for a in net.weights + net.biases]).astype(np.float64)
        result = scipy.optimize.minimize(
            loss_and_grad,
            theta0,
            method="L-BFGS-B",
            jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol},
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
        net.layers = unpack(result.x)

    # ----------------------------------------------------------------------------- predicting

    def _forward(self, X: Any) -> tuple[Any, tuple[str, str] | None]:
        """The network's output ``(n, n_outputs)`` for ``X``, in ``X``'s namespace and on its device."""
        check_is_fitted(self)
        self._take_given_weights()
        place = self._where(X)
        X = self._check_X(X, place, reset=False)
        y = self._net.predict(X)
        return (B.to_numpy(y) if place is None else y), place

    def _check_solver(self) -> bool:
        if self.solver not in ("sgd", "adam"):
            msg = f"partial_fit is only available for stochastic optimizers. {self.solver} is not stochastic."
            raise AttributeError(msg)
        return True


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """scikit-learn's ``MLPClassifier``, trained by anynet on any Array API backend.

    Every scikit-learn parameter keeps its name, default and meaning (``hidden_layer_sizes``,
    ``activation``, ``solver``, ``alpha``, ``batch_size``, ``learning_rate``, ``learning_rate_init``,
    ``power_t``, ``max_iter``, ``shuffle``, ``random_state``, ``tol``, ``verbose``, ``warm_start``,
    ``momentum``, ``nesterovs_momentum``, ``early_stopping``, ``validation_fraction``, ``beta_1``,
    ``beta_2``, ``epsilon``, ``n_iter_no_change``, ``max_fun``). anynet adds:

    - ``backend``: where to compute for NumPy (host) data: ``"numpy"``, ``"torch"``, ``"cupy"``, ``"jax"``,
      ``"dask"``, ``"array_api_strict"``; ``None`` is ``anynet.use``'s default. Arrays of another
      library (a torch tensor on ``cuda:0``, a CuPy array) are trained on where they live, and
      ``predict`` answers in the namespace and on the device of the ``X`` it is given.
    - ``device``: ``"cpu"``, ``"cuda:0"``, ...; ``None`` is the backend's default.
    - ``dtype``: ``"float32"`` or ``"float64"``; ``None`` follows ``X`` (float32 stays float32).

    Fitted attributes are scikit-learn's: ``classes_``, ``loss_``, ``best_loss_``, ``loss_curve_``,
    ``validation_scores_``, ``best_validation_score_``, ``coefs_``, ``intercepts_``, ``n_iter_``,
    ``t_``, ``n_features_in_``, ``n_layers_``, ``n_outputs_``, ``out_activation_`` (``coefs_`` and
    ``intercepts_`` can be set). ``fit`` and ``partial_fit`` take ``sample_weight``; ``X`` may be a SciPy
    sparse matrix where the network computes on NumPy. Shuffled mini-batches are drawn by anynet's
    generator, seeded from ``random_state``, so only ``shuffle=False`` reproduces scikit-learn's weights
    exactly.
    """

    def _output_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X, y, place, incremental, reset):
        X, y = self._check_Xy(X, y, place, reset=reset, y_numeric=False)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    msg = (
                        "warm_start can only be used where `y` has the same classes as in the previous "
                        f"call to fit. Previously got {self.classes_}, `y` has {classes}"
                    )
                    raise ValueError(msg)
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                msg = f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. 'y' has {classes}."
                raise ValueError(msg)
        return X, self._label_binarizer.transform(y).astype(np.float64)

    def _score_outputs(self, out: np.ndarray, y_val: np.ndarray, sw: np.ndarray | None = None) -> float:
        return float(accuracy_score(y_val, self._labels_host(out), sample_weight=sw))

    def _labels_host(self, out: np.ndarray) -> np.ndarray:
        return self._label_binarizer.inverse_transform(out.ravel() if self.n_outputs_ == 1 else out)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X``: ``(n_samples, n_features)`` (dense, or SciPy sparse on NumPy) and
        labels ``y``: ``(n_samples,)`` (or a ``(n_samples, n_classes)`` indicator matrix for multilabel),
        each row's loss weighted by ``sample_weight``: ``(n_samples,)`` if given. Returns ``self``."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``X``, ``y`` (rows weighted by ``sample_weight``, as in ``fit``). ``classes``
        (all labels that will ever appear) is required on the first call. Returns ``self``."""
        if getattr(self, "classes_", None) is None and classes is None:
            msg = "classes must be passed on the first call to partial_fit."
            raise ValueError(msg)
        if classes is not None:
            if getattr(self, "classes_", None) is not None:
                if not np.array_equal(self.classes_, unique_labels(classes)):
                    was = self.classes_
                    msg = f"`classes={classes!r}` is not the same as on last call to partial_fit, was: {was!r}"
                    raise ValueError(msg)
            else:
                self.classes_ = unique_labels(classes)
                self._label_binarizer = LabelBinarizer()
                y_host = _host(y)
                self._label_binarizer.fit(y_host if type_of_target(y_host).startswith("multilabel") else classes)
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Class labels ``(n_samples,)`` (an indicator matrix for multilabel), in ``X``'s namespace
        where the labels are numbers; text labels come back as a NumPy array."""
        out, place = self._forward(X)
        if place is None:
            return self._labels_host(out)
        xp = B.namespace_for(place[0])
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            return xp.astype(out > 0.5, xp.int64)
        if self.classes_.shape[0] == 1:
            index = xp.zeros_like(out[:, 0], dtype=xp.int64)
        elif self.n_outputs_ == 1:
            index = xp.astype(out[:, 0] > 0.5, xp.int64)
        else:
            index = xp.argmax(out, axis=1)
        if self.classes_.dtype.kind not in "biuf":
            return self.classes_[B.to_numpy(index)]
        return xp.take(B.from_numpy(self.classes_, *_native(place)), index, axis=0)

    def predict_proba(self, X):
        """Probabilities ``(n_samples, n_classes)`` in the order of ``classes_``, in ``X``'s namespace."""
        out, place = self._forward(X)
        if self.n_outputs_ > 1:
            return out
        if place is None:
            return np.hstack([1 - out, out])
        return B.namespace_for(place[0]).concat([1 - out, out], axis=1)

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        proba = self.predict_proba(X)
        if B.backend_of(proba) == "numpy":
            with np.errstate(divide="ignore"):
                return np.log(proba)
        return B.namespace_for(B.backend_of(proba)).log(proba)

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of ``predict(X)`` against ``y``, as a Python float."""
        if same_place(X=X, y=y) is None:
            return super().score(X, y, sample_weight=sample_weight)
        return float(accuracy_score(B.to_numpy(y), _host(self.predict(X)), sample_weight=_host(sample_weight)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """scikit-learn's ``MLPRegressor``, trained by anynet on any Array API backend.

    The parameters and fitted attributes are those of ``MLPClassifier`` here, less ``classes_``;
    ``loss`` is ``"squared_error"`` (identity output) or ``"poisson"`` (exp output, the half Poisson
    deviance; ``y`` must be non-negative). For several outputs, the squared error's ``loss_`` sums the
    halved squared error over the outputs (the quantity the gradient descends) where scikit-learn
    reports the mean over outputs.
    """

    _parameter_constraints: ClassVar[dict] = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        loss="squared_error",
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
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            backend=backend,
            device=device,
            dtype=dtype,
        )
        self.loss = loss

    def _output_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _validate_input(self, X, y, place, incremental, reset):
        X, y = self._check_Xy(X, y, place, reset=reset, y_numeric=True)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and (y < 0).any():
            msg = f"loss='poisson' needs non-negative y (counts, rates), but y has {y.min()}; use loss='squared_error'"
            raise ValueError(msg)
        return X, (y.reshape(-1, 1) if y.ndim == 1 else y).astype(np.float64)

    def _score_outputs(self, out: np.ndarray, y_val: np.ndarray, sw: np.ndarray | None = None) -> float:
        if not np.isfinite(out).all():
            return np.nan
        return float(r2_score(y_val, out.ravel() if out.shape[1] == 1 else out, sample_weight=sw))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X``: ``(n_samples, n_features)`` (dense, or SciPy sparse on NumPy) and
        targets ``y``: ``(n_samples,)`` or ``(n_samples, n_outputs)``, each row's loss weighted by
        ``sample_weight``: ``(n_samples,)`` if given. Returns ``self``."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``X``, ``y`` (rows weighted by ``sample_weight``, as in ``fit``). Returns ``self``."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predictions ``(n_samples,)`` (or ``(n_samples, n_outputs)``), in ``X``'s namespace."""
        out, place = self._forward(X)
        if out.shape[1] != 1:
            return out
        return out.ravel() if place is None else B.namespace_for(place[0]).reshape(out, (-1,))

    def score(self, X, y, sample_weight=None):
        """R² of ``predict(X)`` against ``y``, as a Python float."""
        if same_place(X=X, y=y) is None:
            return super().score(X, y, sample_weight=sample_weight)
        return float(r2_score(B.to_numpy(y), _host(self.predict(X)), sample_weight=_host(sample_weight)))


# --------------------------------------------------------------------------- helpers


def _glorot(layer_units: list[int], activation: str, rs) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """scikit-learn's initial weights and biases, drawn from ``rs`` in its order."""
    factor = 2.0 if activation == "logistic" else 6.0  # Glorot's advice for the logistic
    weights, biases = [], []
    for fan_in, fan_out in pairwise(layer_units):
        bound = np.sqrt(factor / (fan_in + fan_out))
        weights.append(rs.uniform(-bound, bound, (fan_in, fan_out)))
        biases.append(rs.uniform(-bound, bound, fan_out))
    return weights, biases


def _host(a: Any) -> Any:
    return None if a is None else B.to_numpy(a)


def _native(place: tuple[str, str]) -> tuple[str, Any]:
    """``(backend, native device)`` for ``B.from_numpy``."""
    return place[0], B.native_device(*place)


def _device_name(backend: str, device: str) -> str:
    return B.device_name(backend, B.native_device(backend, device))


def _dtype_like(x_dtype: Any, backend: str | None) -> str:
    """``X``'s float precision where the backend can hold it (JAX without x64 cannot hold float64)."""
    want = "float32" if B.dtype_name(x_dtype) == "float32" else "float64"
    name = backend if backend is not None else B.default_backend()[0]
    try:
        B.dtype_for(B.namespace_for(name), name, None, want)
    except B.BackendError:
        return "float32"
    return want


def _rows(X: Any, index: np.ndarray) -> Any:
    """Rows ``index`` of a host or device array, taken where it lives."""
    name = B.backend_of(X)
    if name in (None, "numpy"):
        return X[index]
    xp = B.namespace_for(name)
    return xp.take(X, B.from_numpy(index, *_native((name, B.device_of(X)))), axis=0)


def _on(a: Any, net: Network, label: str = "X") -> Any:
    """``a`` as an array of the network's place and dtype (``anynet.intake.placed``)."""
    return intake.placed(a, net.spec, label)


def _net_to_host(net: Network) -> dict:
    """What rebuilds ``net`` anywhere: host arrays, names, and the optimizer's state."""
    return {
        "weights": [B.to_numpy(W) for W in net.weights],
        "biases": [B.to_numpy(b) for b in net.biases],
        "activation": net.activation,
        "output_activation": net.output_activation,
        "backend": net.backend,
        "device": net.device,
        "dtype": B.dtype_name(net.dtype),
        "optimizer": net.optimizer,
        "opt_state": tree_map(B.to_numpy, net.optimizer_state),
        "epochs_trained": net.epochs_trained,
    }


def _net_from_host(state: dict) -> Network:
    """The network ``_net_to_host`` described, on its backend and device; where that device is
    missing (a GPU model loaded on a laptop) it lands on the default backend instead."""
    backend, device = state["backend"], state["device"]
    try:
        B.native_device(backend, device)
    except B.BackendError:
        backend, device = None, None
    net = Network.from_weights(
        [np.array(W) for W in state["weights"]],
        [np.array(b) for b in state["biases"]],
        activation=state["activation"],
        output_activation=state["output_activation"],
        dtype=state["dtype"],
        backend=backend,
        device=device,
    )
    net.follow(place=True)
    net.epochs_trained = state["epochs_trained"]
    net.set_optimizer(state["optimizer"], state["opt_state"])
    return net


def __getattr__(name: str) -> Any:
    # MLPSearchCV builds on the estimators above; loaded on first use, so either module may be imported first
    if name == "MLPSearchCV":
        from ._search import MLPSearchCV

        return MLPSearchCV
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def hidden_sizes(value: Any) -> list[int]:
    """``hidden_layer_sizes`` as a list of widths, each > 0 (scikit-learn's message when one is not)."""
    hidden = list(value) if hasattr(value, "__iter__") else [value]
    if any(h <= 0 for h in hidden):
        msg = f"hidden_layer_sizes must be > 0, got {hidden}."
        raise ValueError(msg)
    return hidden
