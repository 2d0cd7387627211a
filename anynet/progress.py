"""Progress while training: a bar redrawn in place on a terminal, a few plain lines elsewhere."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Report epochs on ``stream`` (stderr by default).

    On a terminal a one-line bar is redrawn at most ten times a second. When the output is a file or
    a pipe, a line is written at each tenth of the run,
    so a log never floods. ``verbose=2`` writes one line per epoch.
    """

    def __init__(self, epochs: int, *, verbose: int = 1, stream: TextIO | None = None) -> None:
        self.epochs = max(int(epochs), 1)
        self.verbose = verbose
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._next_line = 0
        self._printed = 0

    def update(self, epoch: int, logs: dict[str, float]) -> None:
        """``epoch`` counts from 1 within this run."""
        if not self.verbose:
            return
        now = time.perf_counter()
        last = epoch >= self.epochs
        if self.verbose >= 2:
            self._line(epoch, logs, now)
        elif self.tty:
            if last or now - self._last_draw >= 0.1:
                self._bar(epoch, logs, now)
                self._last_draw = now
        elif last or epoch >= self._next_line:
            self._line(epoch, logs, now)
            self._next_line = epoch + max(self.epochs // 10, 1)

    def close(self, epoch: int, logs: dict[str, float]) -> None:
        """Finish the bar (training may stop before the last epoch)."""
        if not self.verbose:
            return
        if self.tty and self.verbose < 2:
            self._bar(epoch, logs, time.perf_counter())
            self.stream.write("\n")
        elif epoch != self._printed:
            self._line(epoch, logs, time.perf_counter())
        self.stream.flush()

    def _fields(self, logs: dict[str, float]) -> str:
        keys = ("loss", "val_loss", "accuracy", "val_accuracy")
        return "  ".join(f"{k} {logs[k]:.4g}" for k in keys if k in logs and logs[k] is not None)

    def _line(self, epoch: int, logs: dict[str, float], now: float) -> None:
        self._printed = epoch
        width = len(str(self.epochs))
        self.stream.write(f"epoch {epoch:>{width}}/{self.epochs}  {self._fields(logs)}  {now - self.start:.1f}s\n")
        self.stream.flush()

    def _bar(self, epoch: int, logs: dict[str, float], now: float) -> None:
        frac = min(epoch / self.epochs, 1.0)
        filled = int(frac * 24)
        bar = "#" * filled + "-" * (24 - filled)
        elapsed = now - self.start
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        text = f"\r[{bar}] {epoch}/{self.epochs}  {self._fields(logs)}  {elapsed:.1f}s<{eta:.1f}s"
        self.stream.write(text + " " * 4)
        self.stream.flush()
