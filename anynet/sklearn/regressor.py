"""``MLPRegressor``: scikit-learn's, trained by anynet on any Array API backend."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import column_or_1d

from .. import backend as B
from .._validate import same_place
from .base import PARAMETER_CONSTRAINTS, BaseMLP, stochastic_only
from .networks import to_host


class MLPRegressor(RegressorMixin, BaseMLP):
    """scikit-learn's ``MLPRegressor``, trained by anynet on any Array API backend.

    The parameters and fitted attributes are those of ``MLPClassifier`` here, less ``classes_``;
    ``loss`` is ``"squared_error"`` (identity output) or ``"poisson"`` (exp output, the half Poisson
    deviance; ``y`` must be non-negative). For several outputs, the squared error's ``loss_`` sums the
    halved squared error over the outputs (the quantity the gradient descends) where scikit-learn
    reports the mean over outputs.
    """

    _parameter_constraints: ClassVar[dict] = {
        **PARAMETER_CONSTRAINTS,
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
        engine="auto",
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
            engine=engine,
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

    @available_if(stochastic_only)
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
        return float(r2_score(B.to_numpy(y), to_host(self.predict(X)), sample_weight=to_host(sample_weight)))
