"""When a member stops training: small rules with one method, called at each epoch's end.

``on_epoch_end(epoch, value, live)`` takes the monitored value of every member (a host array of the
members' shape: ``()`` for one network) and the mask of those that trained this epoch; it returns the
members to stop now and those whose value just improved (whose weights ``restore_best_weights`` keeps).
"""

from __future__ import annotations

import numpy as np


class EarlyStopping:
    """Keras's rule: a member stops after ``patience`` epochs without improving on its best value by
    more than ``min_delta``; with ``restore_best_weights`` it keeps the weights of its best epoch."""

    def __init__(self, patience: int, min_delta: float = 0.0, restore_best_weights: bool = True) -> None:
        self.patience, self.min_delta, self.restore_best_weights = patience, min_delta, restore_best_weights
        self.best = self.wait = None

    def on_epoch_end(self, epoch: int, value: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.best is None:
            self.best, self.wait = np.full(value.shape, np.inf), np.zeros(value.shape, dtype=int)
        with np.errstate(invalid="ignore"):
            improved = live & (value < self.best - self.min_delta)
        self.best = np.where(improved, value, self.best)
        self.wait = np.where(improved, 0, self.wait + live)
        return live & (self.wait >= self.patience), improved


class NoImprovement:
    """scikit-learn's rule for its MLPs: a member stops once more than ``n_iter_no_change`` epochs in
    a row did not bring its loss below its best by ``tol``."""

    restore_best_weights = False

    def __init__(self, tol: float, n_iter_no_change: int) -> None:
        self.tol, self.n_iter_no_change = tol, n_iter_no_change
        self.best = self.count = None

    def on_epoch_end(self, epoch: int, value: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.best is None:
            self.best, self.count = np.full(value.shape, np.inf), np.zeros(value.shape, dtype=int)
        with np.errstate(invalid="ignore"):
            self.count = np.where(value > self.best - self.tol, self.count + 1, 0)
            self.best = np.where(value < self.best, value, self.best)
        return live & (self.count > self.n_iter_no_change), np.zeros(value.shape, dtype=bool)


def first_best(values: np.ndarray, min_delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Per member (``values``: ``(epochs, members)``, ``inf`` past a member's last epoch), the first
    epoch whose value beat the best before it by more than ``min_delta``, and that value; ``-1``
    where none did (a value that is not finite never improves)."""
    values = np.where(np.isnan(values), np.inf, values)
    if min_delta == 0 or not len(values):  # the rule's answer is then the first minimum
        epoch = np.argmin(values, axis=0) if len(values) else np.zeros(values.shape[1:], dtype=int)
        best = values[epoch, np.arange(values.shape[1])] if len(values) else np.full(values.shape[1:], np.inf)
    else:
        best, epoch = np.full(values.shape[1:], np.inf), np.full(values.shape[1:], -1)
        for e, row in enumerate(values):
            improved = row < best - min_delta
            best, epoch = np.where(improved, row, best), np.where(improved, e, epoch)
    return np.where(best < np.inf, epoch, -1), best
