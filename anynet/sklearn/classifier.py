"""``MLPClassifier``: scikit-learn's, trained by anynet on any Array API backend."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d

from .. import backend as B
from .._validate import same_place
from .base import BaseMLP, stochastic_only
from .networks import native, to_host


class MLPClassifier(ClassifierMixin, BaseMLP):
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
    - ``engine``: the executor of the stochastic solvers' steps, as ``Network.fit``'s (``"auto"``, or a
      name registered in ``anynet.engines.REGISTRY``); ``MLPSearchCV`` trains its stacks with it too.
      ``solver="lbfgs"`` computes with the core directly.

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

    def as_fitted(self, template: MLPClassifier, layers: list, loss_curve: list[float], n_train: int) -> BaseMLP:
        """As ``BaseMLP.as_fitted``, with ``template``'s classes."""
        est: MLPClassifier = super().as_fitted(template, layers, loss_curve, n_train)
        est._label_binarizer, est.classes_ = template._label_binarizer, template.classes_
        return est

    def _score_outputs(self, out: np.ndarray, y_val: np.ndarray, sw: np.ndarray | None = None) -> float:
        return float(accuracy_score(y_val, self._labelsto_host(out), sample_weight=sw))

    def _labelsto_host(self, out: np.ndarray) -> np.ndarray:
        return self._label_binarizer.inverse_transform(out.ravel() if self.n_outputs_ == 1 else out)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X``: ``(n_samples, n_features)`` (dense, or SciPy sparse on NumPy) and
        labels ``y``: ``(n_samples,)`` (or a ``(n_samples, n_classes)`` indicator matrix for multilabel),
        each row's loss weighted by ``sample_weight``: ``(n_samples,)`` if given. Returns ``self``."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(stochastic_only)
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
                y_host = to_host(y)
                self._label_binarizer.fit(y_host if type_of_target(y_host).startswith("multilabel") else classes)
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Class labels ``(n_samples,)`` (an indicator matrix for multilabel), in ``X``'s namespace
        where the labels are numbers; text labels come back as a NumPy array."""
        out, place = self._forward(X)
        if place is None:
            return self._labelsto_host(out)
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
        return xp.take(B.from_numpy(self.classes_, *native(place)), index, axis=0)

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
        return float(accuracy_score(B.to_numpy(y), to_host(self.predict(X)), sample_weight=to_host(sample_weight)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
