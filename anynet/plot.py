"""Pictures of what a network learned: the class regions it draws over the plane, a movie of them
changing as it trains, and its weight matrices.

matplotlib is optional (``pip install matplotlib``) and imported only when a picture is drawn,
so ``import anynet`` never imports it. Given a ``path``, a picture is drawn on its own
``matplotlib.figure.Figure``, never pyplot's global state, so no display is needed, and written
atomically: an error leaves no file behind and an existing file as it was.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import backend as B
from .files import atomic_write, writable_path
from .train import History

#: the regions' grid: this many points along each axis, predicted in one batch
RESOLUTION = 150
#: how much the grid reaches past the data on each side, as a fraction of the data's span
MARGIN = 0.1
DPI = 100
#: figure sizes in inches (times DPI: pixels)
BOUNDARY_INCHES = (4.0, 4.0)
MOVIE_INCHES = (3.2, 3.2)
#: frames a second in a training movie
FPS = 8
#: colours in a training movie's one palette
GIF_COLOURS = 32
#: confidence is drawn in this many shades, so that a region is a few flat colours (GIFs stay small)
SHADES = 5


def _matplotlib(what: str):
    """``matplotlib.figure.Figure``, or an ImportError that says how to install it."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        msg = f"anynet.plot.{what} needs matplotlib, which is not installed; pip install matplotlib"
        raise ImportError(msg) from None
    return Figure


def _target(path: str | os.PathLike, what: str, suffixes: tuple[str, ...]) -> Path:
    """``path`` checked as a picture to write, before any work is spent on it."""
    path = writable_path(path, f"cannot write the picture to {str(path)!r}", "picture" + suffixes[0])
    if path.suffix.lower() not in suffixes:
        msg = f"{what} writes {' or '.join(suffixes)} files; give a path ending in one of them, not {str(path)!r}"
        raise ValueError(msg)
    return path


def _picture_suffixes(Figure) -> tuple[str, ...]:
    found = Figure().canvas.get_supported_filetypes()
    return (".png", *(f".{s}" for s in found if s != "png"))


def _plane(net, X: Any, what: str) -> np.ndarray:
    """``X`` on the host as ``(n, 2)`` floats, for a network with 2 inputs."""
    n_in = getattr(net, "n_in", None)
    if n_in is None or not callable(getattr(net, "predict", None)):
        msg = f"{what} draws an anynet.Network, got {type(net).__name__}"
        raise TypeError(msg)
    if n_in != 2:
        msg = (
            f"{what} draws the plane of a network's 2 inputs, but this network has {n_in} "
            f"(sizes {net.sizes}); train one on 2-feature data such as moons, spirals or xor"
        )
        raise ValueError(msg)
    a = B.to_numpy(X)
    if a.ndim != 2 or a.shape[0] == 0 or a.dtype.kind not in "biuf":
        msg = f"X must be a non-empty 2-D numeric array (n_samples, 2), got {a.dtype} of shape {a.shape}"
        raise ValueError(msg)
    if a.shape[1] != 2:
        msg = f"X has {a.shape[1]} features, but {what} draws 2-feature data over the plane"
        raise ValueError(msg)
    a = a.astype(float)
    if not np.isfinite(a).all():
        msg = "X holds NaN or infinite values; clean or impute them first"
        raise ValueError(msg)
    return a


def _class_index(net, y: Any, n: int) -> np.ndarray | None:
    """Each point's class as an index into the network's outputs (``None`` without labels)."""
    if y is None:
        return None
    a = B.to_numpy(y)
    if a.shape[:1] != (n,) or a.ndim > 2:
        msg = f"y must hold one label (or one row of targets) per point of X: {n}, got shape {a.shape}"
        raise ValueError(msg)
    if a.ndim == 2 and a.shape[1] > 1:  # one-hot or per-class targets
        return a.argmax(axis=1)
    a = a.reshape(-1)
    classes = getattr(net, "classes", None)
    if classes is not None and np.isin(a, classes).all():
        return np.searchsorted(classes, a)
    whole = a.dtype.kind in "biu" or (a.dtype.kind == "f" and np.all(a == np.round(a)))
    if whole and a.min() >= 0:
        return a.astype(int) if net.n_out > 1 else (a > 0.5).astype(int)
    return np.unique(a, return_inverse=True)[1].reshape(-1)


def _regions(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The class each output row picks (``predict_classes``'s rule) and how sure it is, 0 to 1."""
    if y.shape[1] == 1:
        p = np.clip(y[:, 0], 0.0, 1.0)
        return (p > 0.5).astype(int), np.abs(2.0 * p - 1.0)
    k = y.shape[1]
    top = np.clip(y.max(axis=1), 1.0 / k, 1.0)
    return y.argmax(axis=1), (top - 1.0 / k) / (1.0 - 1.0 / k)


class _Grid:
    """The grid over the data that the regions are drawn on, ``RESOLUTION`` points a side."""

    def __init__(self, X: np.ndarray) -> None:
        lo, hi = X.min(axis=0), X.max(axis=0)
        with np.errstate(over="ignore"):
            span = np.where(hi > lo, hi - lo, 1.0)
            self.lo, self.hi = lo - MARGIN * span, hi + MARGIN * span
            drawable = np.isfinite(self.hi - self.lo).all()
        if not drawable:  # finite data, but an axis (ours, and matplotlib's) cannot span it
            msg = (
                f"X spans {lo.min():.3g} to {hi.max():.3g}, more than a plot's axis can hold (its extent "
                "would pass the largest float); scale the data down to draw it"
            )
            raise ValueError(msg)
        u = np.linspace(0.0, 1.0, RESOLUTION)[:, None]
        xs, ys = (self.lo * (1 - u) + self.hi * u).T  # convex combinations: never past either end
        self.points = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)

    @property
    def extent(self) -> tuple[float, float, float, float]:
        return (self.lo[0], self.hi[0], self.lo[1], self.hi[1])

    def predict(self, net, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The outputs over the grid and at ``X``, from one batched ``predict``."""
        with np.errstate(over="ignore", invalid="ignore"):  # far out, a network saturates: draw what it gives
            y = B.to_numpy(net.predict(np.concatenate([self.points, X]))).astype(float)
        return y[: self.points.shape[0]], y[self.points.shape[0] :]


def _colours(k: int) -> np.ndarray:
    from matplotlib import colormaps

    return np.asarray(colormaps["tab10"].colors)[np.arange(k) % 10]


def _image(grid_y: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """An RGB image ``(RESOLUTION, RESOLUTION, 3)``: each class's colour, paler where the network is unsure."""
    cls, sure = _regions(grid_y)
    strength = 0.12 + 0.43 * np.floor(sure * SHADES - 1e-9).clip(0) / (SHADES - 1)
    rgb = 1.0 - strength[:, None] * (1.0 - colours[cls])
    return rgb.reshape(RESOLUTION, RESOLUTION, 3)


def _n_classes(net, index: np.ndarray | None) -> int:
    k = 2 if net.n_out == 1 else net.n_out
    return max(k, int(index.max()) + 1) if index is not None else k


def _draw(ax, grid: _Grid, grid_y: np.ndarray, X: np.ndarray, index: np.ndarray | None, colours: np.ndarray):
    """The regions as an image and the points on top; returns both artists."""
    image = ax.imshow(_image(grid_y, colours), extent=grid.extent, origin="lower", aspect="auto", interpolation="none")
    face = colours[index] if index is not None else "0.3"
    size = float(np.clip(5000 / X.shape[0], 14, 120))  # a few points drawn large, hundreds small
    points = ax.scatter(X[:, 0], X[:, 1], c=face, s=size, edgecolors="white", linewidths=0.5 if size < 50 else 1.5)
    ax.set_xlim(grid.lo[0], grid.hi[0])
    ax.set_ylim(grid.lo[1], grid.hi[1])
    ax.set_xticks([])
    ax.set_yticks([])
    return image, points


def _describe(net) -> str:
    return f"{'-'.join(map(str, net.sizes))} {net.activation}"


def decision_boundary(
    net, X: Any, y: Any = None, path: str | os.PathLike | None = None, ax: Any = None, *, title: str | None = None
):
    """Draw the class each point of the plane gets from ``net`` (a network with 2 inputs), with the
    points ``X``: ``(n, 2)`` on top, coloured by their labels ``y``: ``(n,)`` (or one-hot ``(n, k)``).

    The regions cover the data plus a margin, on a ``RESOLUTION``² grid predicted in one batch on
    the network's backend; a region is paler where the network is less sure. With ``path`` the
    picture is written there (PNG, SVG, PDF... by suffix, 400×400 pixels); with ``ax`` it is drawn
    in those axes. Returns the matplotlib Axes.
    """
    Figure = _matplotlib("decision_boundary")
    Xh = _plane(net, X, "decision_boundary")
    index = _class_index(net, y, Xh.shape[0])
    if path is not None:
        path = _target(path, "decision_boundary", _picture_suffixes(Figure))
    grid = _Grid(Xh)
    grid_y, point_y = grid.predict(net, Xh)
    if ax is None:
        if path is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=BOUNDARY_INCHES)
        else:
            ax = Figure(figsize=BOUNDARY_INCHES, layout="constrained").add_subplot()
    _draw(ax, grid, grid_y, Xh, index, _colours(_n_classes(net, index)))
    if title is None:
        title = _describe(net)
        if index is not None:
            title += f": {np.mean(_regions(point_y)[0] == index):.0%} of points right"
    ax.set_title(title, fontsize=10)
    if path is not None:
        figure = ax.figure
        atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=DPI))
    return ax


def training_movie(
    net, X: Any, y: Any, path: str | os.PathLike, *, epochs: int = 300, frames: int = 30, **fit_options: Any
) -> History:
    """Train ``net`` on ``X``: ``(n, 2)`` and ``y`` for ``epochs`` and write an animated GIF to ``path``:
    ``frames`` pictures of the class regions (as ``decision_boundary``), evenly spaced from the
    untrained network (epoch 0) to the trained one, each titled with its epoch and loss.

    Training is ``net.fit(X, y, verbose=0, **fit_options)`` in chunks between the frames, so it
    continues from the current weights; ``patience`` is refused (early stopping cannot span the
    chunks), and a callback that stops training ends the movie there. Everything is checked before
    training starts, and the file is written only when the last frame is drawn. Returns the whole
    run's ``History``, which is also ``net.history``.
    """
    Figure = _matplotlib("training_movie")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image  # matplotlib's own dependency

    Xh = _plane(net, X, "training_movie")
    index = _class_index(net, y, Xh.shape[0])
    for name, value in (("epochs", epochs), ("frames", frames)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            msg = f"{name} must be a positive whole number, got {value!r}"
            raise ValueError(msg)
    if not 2 <= frames <= epochs + 1:
        msg = (
            f"frames={frames} must be at least 2 (the first shows the untrained network) "
            f"and at most epochs + 1 ({epochs + 1})"
        )
        raise ValueError(msg)
    for name in ("patience", "epochs"):
        if name in fit_options:
            msg = f"training_movie trains in chunks between frames, so it cannot take {name}=; leave it out"
            raise TypeError(msg)
    path = _target(path, "training_movie", (".gif",))
    fit_options["verbose"] = 0
    reset = fit_options.pop("reset", False)

    grid = _Grid(Xh)
    marks = np.linspace(0, epochs, frames).round().astype(int)
    shots = [grid.predict(net, Xh)[0]]
    histories = []
    for a, b in itertools.pairwise(marks):
        histories.append(net.fit(X, y, epochs=int(b - a), reset=reset and not histories, **fit_options))
        shots.append(grid.predict(net, Xh)[0])
        if histories[-1].stopped_early:  # a callback said stop: the movie ends here
            break
    history = net.history = _joined(histories)  # the whole run, as a saved model should keep it
    # each frame: the epochs run so far (a callback may stop a chunk early) and the last epoch's loss
    ran = np.cumsum([0] + [h.epochs for h in histories])
    losses = [histories[0].loss[0]] + [h.loss[-1] for h in histories]

    colours = _colours(_n_classes(net, index))
    figure = Figure(figsize=MOVIE_INCHES, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    image, _ = _draw(ax, grid, shots[0], Xh, index, colours)
    title = ax.set_title("", fontsize=10, family="monospace")
    pictures = []
    for epoch, shot, value in zip(ran, shots, losses, strict=True):
        image.set_data(_image(shot, colours))
        title.set_text(f"epoch {epoch:>{len(str(epochs))}}  loss {value:.4f}")
        canvas.draw()
        pictures.append(Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB"))
    atomic_write(path, lambda tmp: _save_gif(pictures, tmp, colours))
    return history


def _save_gif(pictures: list, path: Path, colours: np.ndarray) -> None:
    """An animated GIF of RGB ``pictures``, all on one palette drawn from the first and the last and
    the points' ``colours``: a palette per frame (as matplotlib's PillowWriter makes) changes every
    pixel's index from one frame to the next, so no frame could be stored as its difference from the
    one before, and the file came out about twice as large."""
    from PIL import Image

    first, last = pictures[0], pictures[-1]
    both = Image.new("RGB", (first.width + last.width, first.height))
    both.paste(first)
    both.paste(last, (first.width, 0))
    # the points' own colours are added by hand: they cover too few pixels to win a place by count
    found = both.quantize(colors=GIF_COLOURS - len(colours), dither=Image.Dither.NONE).getpalette()
    found = found[: 3 * (GIF_COLOURS - len(colours))]
    palette = Image.new("P", (1, 1))
    palette.putpalette(found + np.round(255 * colours).astype(int).ravel().tolist())
    frames = [p.quantize(palette=palette, dither=Image.Dither.NONE) for p in pictures]
    frames[0].save(
        path, format="GIF", save_all=True, append_images=frames[1:], duration=1000 // FPS, loop=0, optimize=True
    )


def _joined(histories: list[History]) -> History:
    """One ``History`` for a run trained as several ``fit`` calls, one after the other."""
    h = History(monitor=histories[0].monitor, backend=histories[-1].backend, device=histories[-1].device)
    for part in histories:
        for name in ("loss", "val_loss", "accuracy", "val_accuracy", "lr"):
            getattr(h, name).extend(getattr(part, name))
        h.wall_time += part.wall_time
    watched = h.val_loss if h.monitor == "val_loss" else h.loss
    if watched:
        h.best_epoch = int(np.argmin(watched))
        h.best_value = float(watched[h.best_epoch])
    return h


def weights(net, path: str | os.PathLike | None = None):
    """Draw each layer's weight matrix ``W``: ``(n_in, n_out)`` as a heat map, its bias (if any) as an
    extra row, on one colour scale centred on zero (red positive, blue negative) shared by every
    layer; small matrices get their numbers written in. With ``path`` the picture is written there
    (2.6 inches a layer plus 0.9 for the scale, 3.2 high, at 100 dpi). Returns the matplotlib Figure.
    """
    Figure = _matplotlib("weights")
    layers = getattr(net, "layers", None)
    if layers is None or not hasattr(net, "sizes"):
        msg = f"weights draws an anynet.Network, got {type(net).__name__}"
        raise TypeError(msg)
    if hasattr(net, "n_members"):
        msg = (
            f"weights draws one network, and this Ensemble has {net.n_members}; draw one of them: "
            "plot.weights(ens.member(i)) or plot.weights(ens.best())"
        )
        raise TypeError(msg)
    if path is not None:
        path = _target(path, "weights", _picture_suffixes(Figure))
    mats = []
    for W, b in layers:
        W = B.to_numpy(W).astype(float)
        mats.append(W if b is None else np.vstack([W, B.to_numpy(b).astype(float).reshape(1, -1)]))
    scale = max(float(np.abs(m).max()) for m in mats) or 1.0
    size = (2.6 * len(mats) + 0.9, 3.2)
    if path is None:
        import matplotlib.pyplot as plt

        figure = plt.figure(figsize=size, layout="constrained")
    else:
        figure = Figure(figsize=size, layout="constrained")
    axes = figure.subplots(1, len(mats), squeeze=False)[0]
    for i, (ax, m, (W, b)) in enumerate(zip(axes, mats, layers, strict=True), 1):
        shown = ax.imshow(m, cmap="RdBu_r", vmin=-scale, vmax=scale, aspect="auto", interpolation="none")
        n_in, n_out = W.shape
        ax.set_title(f"W{i}  ({n_in}×{n_out})" + ("  + bias" if b is not None else ""), fontsize=10)
        ax.set_xlabel(f"to layer {i} unit" if i < len(mats) else "to output")
        ax.set_ylabel(f"from {'input' if i == 1 else f'layer {i - 1} unit'}")
        if m.size <= 64:
            ax.set_xticks(range(n_out))
            ax.set_yticks(range(m.shape[0]), [*map(str, range(n_in)), "b"][: m.shape[0]])
            for (r, c), v in np.ndenumerate(m):
                ink = "white" if abs(v) > 0.6 * scale else "black"
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=8, color=ink)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        if b is not None:
            ax.axhline(n_in - 0.5, color="black", linewidth=1)
    figure.colorbar(shown, ax=list(axes), shrink=0.9, label="weight")
    if path is not None:
        atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=DPI))
    return figure
