"""scikit-learn drop-ins: ``MLPClassifier`` and ``MLPRegressor`` that train with anynet on any backend,
and ``MLPSearchCV``, a ``GridSearchCV`` that trains their fits as stacks.

Change ``from sklearn.neural_network import MLPClassifier`` to ``from anynet.sklearn import
MLPClassifier`` and the same code runs; give it CuPy or torch-CUDA arrays and it trains on that GPU and
answers with arrays there. The parameters, fitted attributes, random draws and stopping rules are
scikit-learn's (``neural_network/_multilayer_perceptron.py``): with ``shuffle=False`` the two fit
the same weights to rounding. scikit-learn is optional (``pip install scikit-learn``):
``import anynet`` does not import this package.

One module per idea: ``base`` (what the estimators share), ``classifier``, ``regressor``, ``checks``
(scikit-learn's checks of their data, on any backend), ``lbfgs`` (that solver), ``networks`` (the
anynet networks behind them) and ``search`` (``MLPSearchCV``).
"""

from .classifier import MLPClassifier
from .regressor import MLPRegressor
from .search import MLPSearchCV

__all__ = ["MLPClassifier", "MLPRegressor", "MLPSearchCV"]
