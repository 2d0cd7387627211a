"""``History``: what one ``fit`` did, epoch by epoch, and a picture of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class History:
    """What one ``fit`` did, one entry per epoch run. Values are Python floats."""

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    #: the quantity early stopping and ``best_epoch`` watch: ``"val_loss"`` with validation data
    monitor: str = "loss"
    best_epoch: int | None = None
    best_value: float | None = None
    stopped_early: bool = False
    #: the network kept the weights of ``best_epoch`` (early stopping), not those of the last epoch
    restored_best: bool = False
    wall_time: float = 0.0
    backend: str = ""
    device: str = ""

    @property
    def epochs(self) -> int:
        """How many epochs ran."""
        return len(self.loss)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__) | {"epochs": self.epochs}

    def plot(self, path: str | None = None, *, ax: Any = None, logy: bool | None = None, title: str | None = None):
        """Draw the loss per epoch (and validation loss, if any) with matplotlib.

        With ``path``, the figure is saved there (PNG, SVG, PDF by suffix) without touching pyplot's
        global state, so it works on a machine with no display. Returns the matplotlib Axes.
        """
        try:
            from matplotlib.figure import Figure
        except ImportError as exc:
            msg = "History.plot needs matplotlib; pip install matplotlib"
            raise ImportError(msg) from exc
        if ax is None:
            if path is None:
                import matplotlib.pyplot as plt

                _, ax = plt.subplots(figsize=(6, 4))
            else:
                ax = Figure(figsize=(6, 4), layout="constrained").add_subplot()
        epochs = np.arange(1, self.epochs + 1)
        ax.plot(epochs, self.loss, label="train loss")
        if self.val_loss:
            ax.plot(epochs, self.val_loss, label="validation loss")
        if self.restored_best and self.best_epoch is not None:
            ax.axvline(self.best_epoch + 1, color="0.6", linestyle=":", label=f"best epoch ({self.best_epoch + 1})")
        positive = all(v > 0 for v in self.loss + self.val_loss)
        if (logy if logy is not None else positive and self.epochs > 1) and positive:
            ax.set_yscale("log")
        if self.epochs > 100:
            ax.set_xscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title(title or f"training loss ({self.backend}, {self.device})")
        ax.grid(True, alpha=0.3)
        ax.legend()
        if path is not None:
            ax.figure.savefig(path, dpi=120)
        return ax
