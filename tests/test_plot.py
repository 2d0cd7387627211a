"""``anynet.plot``: the class regions, the training movie and the weights, drawn on the backend
under test and read back with Pillow; bad input fails before anything is trained or written."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import anynet
from anynet import backend as B
from anynet import data as D
from anynet import plot

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

from matplotlib.figure import Figure  # noqa: E402  (after the skip above)


@pytest.fixture(scope="module")
def moons() -> D.Table:
    table = D.load("moons", seed=3)
    return D.Table(table.X[:120], table.t[:120], table.features, table.target, table.source)


def classifier(seed: int = 0, n_out: int = 1) -> anynet.Network:
    output = "sigmoid" if n_out == 1 else "softmax"
    return anynet.Network([2, 8, n_out], activation="tanh", output_activation=output, init="glorot", seed=seed)


def opened(path) -> Image.Image:
    assert path.stat().st_size > 0
    return Image.open(path)


class Counted:
    """``net.predict`` with a count of its calls and the rows each was given."""

    def __init__(self, net: anynet.Network) -> None:
        self.rows: list[int] = []
        self.predict = net.predict
        net.predict = self

    def __call__(self, X):
        self.rows.append(X.shape[0])
        return self.predict(X)


# --------------------------------------------------------------------------- decision_boundary


def test_decision_boundary_writes_a_png(tmp_path, moons, backend):
    net = classifier()
    net.fit(moons.X, moons.t, epochs=20, optimizer="adam", lr=0.05, loss="binary_cross_entropy", verbose=0)
    assert net.backend == backend
    path = tmp_path / "boundary.png"
    plot.decision_boundary(net, moons.X, moons.t, path)
    with opened(path) as im:
        assert im.format == "PNG"
        assert im.size == (400, 400)


def test_the_grid_is_one_predict_call(moons):
    net = classifier()
    calls = Counted(net)
    plot.decision_boundary(net, moons.X, moons.t, ax=Figure().add_subplot())
    assert calls.rows == [plot.RESOLUTION**2 + moons.n]  # the grid and the points, one batch


def test_data_near_the_largest_float_is_drawn_or_named():
    # the grid's margins overflowed, and the data was blamed: "X holds NaN or infinite values"
    net = anynet.Network([2, 3, 1], seed=0, dtype="float64")
    far = np.array([[-4e307, 6e307], [6e307, -4e307], [0.0, 0.0]])
    ax = plot.decision_boundary(net, far, [0, 1, 0], ax=Figure().add_subplot())
    assert np.isfinite(ax.images[0].get_extent()).all()
    too_far = np.array([[-1e308, 1.7e308], [1.7e308, -1e308]])
    with pytest.raises(ValueError, match=r"X spans -1e\+308 to 1.7e\+308, more than a plot's axis can hold"):
        plot.decision_boundary(net, too_far, [0, 1], ax=Figure().add_subplot())


def test_weights_of_an_ensemble_asks_for_one_member():
    ens = anynet.Ensemble([2, 3, 1], 4, seed=0)
    with pytest.raises(TypeError, match=r"weights draws one network, and this Ensemble has 4.*ens.member\(i\)"):
        plot.weights(ens)
    assert isinstance(plot.weights(ens.member(1)), Figure)


def test_the_regions_are_the_classes_the_network_predicts(asarray, moons):
    """The drawn image, pixel by pixel, is the class ``predict_classes`` gives at that grid point:
    here for 3 classes, with the data handed over as arrays of the backend under test."""
    t = (moons.X[:, 0] > 0.5).astype(int) + (moons.X[:, 1] > 0.25)
    net = classifier(seed=2, n_out=3)
    net.fit(asarray(moons.X), asarray(t, None), epochs=30, optimizer="adam", lr=0.05, verbose=0)
    ax = plot.decision_boundary(net, asarray(moons.X), asarray(t, None), ax=Figure().add_subplot())
    image = np.asarray(ax.images[0].get_array())
    assert image.shape == (plot.RESOLUTION, plot.RESOLUTION, 3)
    lo, hi = moons.X.min(axis=0), moons.X.max(axis=0)
    pad = plot.MARGIN * (hi - lo)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], plot.RESOLUTION)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], plot.RESOLUTION)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    want = B.to_numpy(net.predict_classes(grid)).reshape(plot.RESOLUTION, plot.RESOLUTION)
    assert len(np.unique(want)) == 3
    # each pixel is its class's colour blended with white: its hue is that colour's
    colours = plot._colours(3)
    tint = 1.0 - image  # (1 - colour) scaled by the strength
    direction = (1.0 - colours) / np.linalg.norm(1.0 - colours, axis=1, keepdims=True)
    got = np.argmax(tint @ direction.T / np.linalg.norm(tint, axis=-1, keepdims=True), axis=-1)
    np.testing.assert_array_equal(got, want)


def test_decision_boundary_titles_the_share_of_points_right(moons):
    net = classifier()
    net.fit(moons.X, moons.t, epochs=60, optimizer="adam", lr=0.05, loss="binary_cross_entropy", verbose=0)
    right = np.mean(B.to_numpy(net.predict_classes(moons.X)) == moons.t)
    ax = plot.decision_boundary(net, moons.X, moons.t, ax=Figure().add_subplot())
    assert ax.get_title() == f"2-8-1 tanh: {right:.0%} of points right"


# --------------------------------------------------------------------------- training_movie


def test_training_movie_writes_a_gif_of_the_frames(tmp_path, moons, backend):
    net = classifier()
    path = tmp_path / "learning.gif"
    history = plot.training_movie(
        net, moons.X, moons.t, path, epochs=12, frames=5, optimizer="adam", lr=0.05, loss="binary_cross_entropy"
    )
    with opened(path) as im:
        assert im.format == "GIF"
        assert im.size == (320, 320)
        assert im.n_frames == 5
        assert im.is_animated
        palette = np.asarray(im.getpalette()).reshape(-1, 3)
    for colour in np.round(255 * plot._colours(2)):  # the points' colours, exact, though they are few pixels
        assert (palette == colour).all(axis=1).any(), colour
    assert net.backend == backend
    assert history.epochs == net.epochs_trained == 12
    assert net.history is history


def test_the_movie_trains_as_one_fit_would(tmp_path, moons):
    """The chunks between frames continue weights and optimizer state: the losses are one run's."""
    options = {"optimizer": "adam", "lr": 0.05, "loss": "binary_cross_entropy"}
    net, same = classifier(), classifier()
    history = plot.training_movie(net, moons.X, moons.t, tmp_path / "m.gif", epochs=10, frames=4, **options)
    whole = same.fit(moons.X, moons.t, epochs=10, verbose=0, **options)
    np.testing.assert_allclose(history.loss, whole.loss, rtol=1e-4)
    for W, V in zip(net.weights, same.weights, strict=True):
        np.testing.assert_allclose(B.to_numpy(W), B.to_numpy(V), rtol=1e-4, atol=1e-6)


def test_the_movie_predicts_the_grid_once_a_frame(tmp_path, moons):
    net = classifier()
    calls = Counted(net)
    plot.training_movie(net, moons.X, moons.t, tmp_path / "m.gif", epochs=6, frames=4, verbose=1)  # verbose: ignored
    assert calls.rows == [plot.RESOLUTION**2 + moons.n] * 4


# --------------------------------------------------------------------------- weights


def test_weights_share_one_zero_centred_scale(tmp_path):
    net = anynet.Network([3, 4, 1], activation="sigmoid", bias=False, seed=1)
    path = tmp_path / "weights.png"
    figure = plot.weights(net, path)
    with opened(path) as im:
        assert im.format == "PNG"
        assert im.size == (610, 320)  # 2.6 inches a layer and 0.9 for the scale, 3.2 high, 100 dpi
    biggest = max(float(np.abs(B.to_numpy(W)).max()) for W in net.weights)
    images = [ax.images[0] for ax in figure.axes if ax.images]
    assert [im.get_array().shape for im in images] == [(3, 4), (4, 1)]
    assert [im.get_clim() for im in images] == [(-biggest, biggest)] * 2
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert texts == [f"{v:.2f}" for v in B.to_numpy(net.weights[0]).ravel()]  # the seed's numbers, written in


def test_weights_draw_the_bias_as_a_last_row(tmp_path):
    net = classifier()
    figure = plot.weights(net, tmp_path / "w.png")
    first = figure.axes[0].images[0].get_array()
    assert first.shape == (3, 8)
    np.testing.assert_allclose(first[2], B.to_numpy(net.biases[0]))


# --------------------------------------------------------------------------- bad input


def three_features() -> tuple[anynet.Network, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    return anynet.Network([3, 4, 1], seed=0), X, (X[:, 0] > 0).astype(int)


def test_three_features_are_refused_and_nothing_is_written(tmp_path):
    net, X, t = three_features()
    before = [B.to_numpy(W).copy() for W in net.weights]
    with pytest.raises(ValueError, match=r"this network has 3 \(sizes \[3, 4, 1\]\); train one on 2-feature"):
        plot.decision_boundary(net, X, t, tmp_path / "b.png")
    with pytest.raises(ValueError, match="this network has 3"):
        plot.training_movie(net, X, t, tmp_path / "m.gif", epochs=5, frames=2)
    with pytest.raises(ValueError, match="X has 3 features, but decision_boundary draws 2-feature data"):
        plot.decision_boundary(classifier(), X, t, tmp_path / "b.png")
    assert list(tmp_path.iterdir()) == []
    assert net.epochs_trained == 0
    for W, old in zip(net.weights, before, strict=True):
        np.testing.assert_array_equal(B.to_numpy(W), old)


def boundary(p, X, t, **kw):
    return plot.decision_boundary(classifier(), X, t, p, **kw)


def movie(p, X, t, **kw):
    return plot.training_movie(classifier(), X, t, p, **kw)


def heat_map(p, X, t):
    return plot.weights(classifier(), p)


@pytest.mark.parametrize(
    ("draw", "where", "options", "error", "match"),
    [
        (boundary, "no/b.png", {}, OSError, "the folder '.*no' does not exist; create it first"),
        (boundary, ".", {}, OSError, "it is a folder; give a file name such as '.*picture.png'"),
        (
            boundary,
            "b.txt",
            {},
            ValueError,
            r"writes \.png or \.eps or .*; give a path ending in one of them, not '.*b\.txt'",
        ),
        (heat_map, "no/w.png", {}, OSError, "the folder '.*no' does not exist"),
        (movie, "m.png", {}, ValueError, "training_movie writes .gif files"),
        (movie, "no/m.gif", {}, OSError, "the folder '.*no' does not exist"),
        (movie, "m.gif", {"epochs": 3}, ValueError, r"at most epochs \+ 1 \(4\)"),
        (movie, "m.gif", {"frames": 1}, ValueError, "frames=1 must be at least 2"),
        (movie, "m.gif", {"patience": 2}, TypeError, "cannot take patience="),
        (movie, "m.gif", {"lr": -1}, ValueError, "lr"),
    ],
)
def test_bad_paths_and_options_say_what_to_do_and_write_nothing(tmp_path, moons, draw, where, options, error, match):
    (tmp_path / "keep.png").write_bytes(b"old")
    with pytest.raises(error, match=match):
        draw(tmp_path / where, moons.X, moons.t, **options)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.png"]  # no picture, no temporary file
    assert (tmp_path / "keep.png").read_bytes() == b"old"


def test_bad_arguments(moons):
    with pytest.raises(ValueError, match=r"y must hold one label \(or one row of targets\) per point of X: 120"):
        plot.decision_boundary(classifier(), moons.X, moons.t[:5])
    with pytest.raises(TypeError, match=r"weights draws an anynet\.Network, got str"):
        plot.weights("net")
    with pytest.raises(TypeError, match=r"decision_boundary draws an anynet\.Network, got str"):
        plot.decision_boundary("net", moons.X, moons.t)


def test_without_matplotlib_each_says_how_to_install_it(tmp_path, moons, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)  # `import matplotlib...` now raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    net = classifier()
    calls = [
        lambda: plot.decision_boundary(net, moons.X, moons.t, tmp_path / "b.png"),
        lambda: plot.training_movie(net, moons.X, moons.t, tmp_path / "m.gif", epochs=4, frames=2),
        lambda: plot.weights(net, tmp_path / "w.png"),
    ]
    for call, name in zip(calls, ("decision_boundary", "training_movie", "weights"), strict=True):
        with pytest.raises(ImportError, match=rf"anynet.plot.{name} needs matplotlib.*pip install matplotlib"):
            call()
    assert list(tmp_path.iterdir()) == []
    assert net.epochs_trained == 0


def test_importing_anynet_does_not_import_matplotlib():
    code = "import sys, anynet; anynet.plot.decision_boundary; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
