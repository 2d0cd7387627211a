"""The one table of training defaults, read by every face: ``Network.fit``, the command line and
``anynet.sklearn``. A face that differs says so here, in its own column, not in its own module."""

from __future__ import annotations

FACES = ("library", "cli", "sklearn")

#: the loss each output activation trains with when none is named, per face. The library keeps the
#: seed's ½Σ(y−t)² for every output but softmax and exp, so the seed's job runs with no options; the command
#: line and scikit-learn pair each output with its likelihood (scikit-learn's ``squared_error`` is
#: half the mean squared error).
LOSS: dict[str, dict[str, str]] = {
    "library": {"softmax": "cross_entropy", "exp": "poisson"},
    "cli": {"softmax": "cross_entropy", "sigmoid": "binary_cross_entropy", "identity": "mse", "exp": "poisson"},
    "sklearn": {
        "softmax": "cross_entropy",
        "sigmoid": "binary_cross_entropy",
        "identity": "half_mse",
        "exp": "poisson",
    },
}
#: the loss of an output activation the face's row does not name
FALLBACK_LOSS = {"library": "half_sse", "cli": "mse", "sklearn": "half_mse"}

#: the learning rate each optimizer starts from when none is named, per face: the seed's 1.0 for
#: gradient descent and Adam's customary 1e-3 in the library; the command line trains unknown data,
#: where the seed's 1.0 diverges. (scikit-learn's estimators always pass their ``learning_rate_init``.)
LR: dict[str, dict[str, float]] = {
    "library": {"sgd": 1.0, "adam": 1e-3},
    "cli": {"sgd": 0.1, "adam": 0.01},
}
#: the learning rate of an optimizer the table does not name (a custom one)
FALLBACK_LR = 1e-3


def loss_for(output_activation: str, face: str = "library") -> str:
    """The default loss for a network whose output activation is ``output_activation``."""
    return LOSS[face].get(output_activation, FALLBACK_LOSS[face])


def lr_for(optimizer: str, face: str = "library") -> float:
    """The default learning rate for the optimizer called ``optimizer``."""
    return LR[face].get(optimizer, FALLBACK_LR)
