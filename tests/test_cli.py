"""The ``anynet`` command line, run as a user runs it: the console script in a subprocess.

Commands that compute run on the backend under test (``--backend``). A failing command must exit
non-zero with a one-line message on stderr, nothing on stdout and no traceback. The cases beyond the
issue's list call the same ``main`` in this process, which saves a process start each.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import anynet
from anynet import backend as B
from anynet import cli
from anynet import data as D
from anynet.cli import XOR_T, XOR_X

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "anynet"
ANYNET = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "anynet"]
SPECIES = np.array(["setosa", "versicolor", "virginica"])


def argv(command: str, extra) -> list[str]:
    """``command`` split as a shell would, then ``extra`` arguments (paths, the backend) as they are."""
    return shlex.split(command) + [str(a) for a in extra]


class Started:
    """``anynet COMMAND`` started now and waited for later, so that slow commands that do not depend
    on each other overlap (each spends most of its time importing its backend)."""

    def __init__(self, command: str, *extra, cwd: Path, env: dict | None = None) -> None:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("ANYNET_")}
        # this checkout's anynet, installed or not (PYTHONPATH entries made absolute: cwd differs)
        given = [str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *given])
        environ |= env or {}
        self.args = [*ANYNET, *argv(command, extra)]
        self.cwd = cwd
        pipe = subprocess.PIPE
        self.proc = subprocess.Popen(self.args, cwd=cwd, env=environ, stdout=pipe, stderr=pipe, text=True)

    def wait(self) -> subprocess.CompletedProcess:
        out, err = self.proc.communicate(timeout=300)
        return subprocess.CompletedProcess(self.args, self.proc.returncode, out, err)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


def run(command: str, *extra, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return Started(command, *extra, cwd=cwd, env=env).wait()


def succeeded(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"{shlex.join(proc.args[len(ANYNET) :])} failed:\n{proc.stderr}"
    return proc


def ok(command: str, *extra, cwd: Path, **kw) -> subprocess.CompletedProcess:
    return succeeded(run(command, *extra, cwd=cwd, **kw))


def fails(command: str, *extra, cwd: Path, status: int = 1, **kw) -> str:
    """Run a command that must fail; return its one-line message."""
    return failed(run(command, *extra, cwd=cwd, **kw), status)


def failed(proc: subprocess.CompletedProcess, status: int = 1) -> str:
    assert proc.returncode == status, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert re.match(r"anynet( \w+)?: error: ", lines[0]), lines[0]
    return lines[0]


def main(capsys, command: str, *extra) -> tuple[int, str, str]:
    """``anynet COMMAND`` in this process: (exit status, stdout, stderr)."""
    code = cli.main(argv(command, extra))
    out, err = capsys.readouterr()
    return code, out, err


def flowers(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated clusters named like the iris species, in 3 features far from 0."""
    k = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 3)) * 0.4 + k[:, None] * np.array([2.0, -2.0, 3.0]) + np.array([50.0, 10.0, -20.0])
    return X, SPECIES[k]


def write_csv(path: Path, columns: dict[str, np.ndarray], sep: str = ",") -> Path:
    names = list(columns)
    rows = zip(*(columns[c].tolist() for c in names), strict=True)
    path.write_text(sep.join(names) + "\n" + "".join(sep.join(map(str, r)) + "\n" for r in rows))
    return path


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def default_mode() -> int:
    """The permissions a new file gets here (0666 less the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def summary_row(stdout: str, name: str) -> list[str]:
    """The cells after ``name`` on its line of the summary table."""
    for line in stdout.splitlines():
        cells = line.split()
        if cells[:1] == [name]:
            return cells[1:]
    raise AssertionError(f"no {name!r} row in:\n{stdout}")


@pytest.fixture(scope="session")
def place(backend, device) -> tuple[str, ...]:
    """The options that put a command on the backend and device under test."""
    return ("--backend", backend, "--device", device)


#: user errors the issue names, each with a piece of the message it must give
ERRORS = [
    ("train missing.csv", "cannot read 'missing.csv': no such file"),
    ("train mnist", "built-in datasets are xor, digits, moons, spirals"),
    ("train binary.csv", "is not UTF-8 text"),
    ("train good.csv --target Label", "has no column 'Label' (did you mean 'label'?)"),
    ("train text.csv", "column 'b' of 'text.csv' holds text ('oops' on line 3)"),
    ("evaluate missing.npz good.csv", "cannot load the model 'missing.npz': no such file"),
]


@pytest.fixture(scope="module", autouse=True)
def started(backend, place, tmp_path_factory) -> dict[str, Started]:
    """Every command that needs nothing from the tests before it, started together as the module
    begins, in one folder with the files they read; a test waits for its own. Each process spends
    most of its time starting up, so together they take about as long as the slowest."""
    folder = tmp_path_factory.mktemp("started")
    (folder / "text.csv").write_text("a,b,label\n1,2,x\n3,oops,y\n")
    (folder / "binary.csv").write_bytes(bytes(range(256)))
    (folder / "good.csv").write_text("a,b,label\n1,2,x\n3,4,y\n")
    blocker = folder / "hidden" / "sklearn"  # an `import sklearn` that fails, as where it is not installed
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('scikit-learn is hidden for this test')\n")
    hidden = {
        "PYTHONPATH": os.pathsep.join(p for p in (str(blocker.parent), str(ROOT), os.environ.get("PYTHONPATH")) if p)
    }
    both = ",".join(dict.fromkeys(["numpy", backend]))
    jobs = {
        "demo": Started("demo --epochs 30", *place, cwd=folder),
        "demo plot": Started("demo --epochs 30 --plot pictures", *place, cwd=folder),
        "backends": Started("backends", cwd=folder),
        "bench": Started("bench --seconds 0.2 --epochs 50 --backends", both, cwd=folder),
        "gpu": Started("train good.csv --device cuda:7 --backend", backend, cwd=folder),
        "help": Started("--help", cwd=folder),
        "train help": Started("train --help", cwd=folder),
        "tensorflow": Started("train good.csv --backend tensorflow", cwd=folder),
        "debug": Started("--debug train missing.csv", cwd=folder),
        "no sklearn": Started("train digits", cwd=folder, env=hidden),
    }
    jobs |= {command: Started(command, cwd=folder) for command, _ in ERRORS}
    yield jobs
    for job in jobs.values():
        job.stop()


# --------------------------------------------------------------------------- help and demo


def test_help_lists_the_commands_and_the_train_options(started):
    top = succeeded(started["help"].wait()).stdout
    for command in ("demo", "train", "evaluate", "predict", "backends", "bench"):
        assert re.search(rf"^\s+{command}\s+\w", top, re.M), command
    train = succeeded(started["train help"].wait()).stdout
    options = "--hidden --activation --output --loss --optimizer --lr --epochs --batch-size --validation-split"
    options += " --patience --seed --backend --device --dtype --standardize --out --plot --boundary --movie --quiet"
    for option in options.split():
        assert re.search(rf"^\s+(-\w, )?{option}\b", train, re.M), option
    for dataset in D.BUILTINS:
        assert re.search(rf"^\s+{dataset}\s+\w", train, re.M), dataset


def test_demo_prints_the_seeds_story(started, backend, device):
    out = succeeded(started["demo"].wait()).stdout
    lines = out.splitlines()
    assert lines[0].startswith(f"anynet {anynet.__version__} demo: the seed's XOR network on {backend} ({device}, ")
    got = float(re.search(r"trained 30 epochs in [\d.]+s; final loss ([\d.]+)", out).group(1))
    net = anynet.Network([3, 4, 1], activation="sigmoid", bias=False, seed=1, backend="numpy")
    want = net.fit(XOR_X, XOR_T, epochs=30, lr=1.0, loss="half_sse", verbose=0).loss[-1]
    assert got == pytest.approx(want, abs=1e-5)
    # told for a learner: the task, then each step in words before its numbers
    steps = [
        next(i for i, line in enumerate(lines) if line.startswith(s))
        for s in ("The task", "Step 1", "Step 2", "Step 3")
    ]
    assert steps == sorted(steps)
    assert "forward" in out
    assert "backward" in out
    assert "update" in out
    rows = [line.split() for line in lines[steps[-1] + 2 : steps[-1] + 6]]
    assert [(r[0], r[1], r[3]) for r in rows] == [("0", "0", "0"), ("0", "1", "1"), ("1", "0", "1"), ("1", "1", "0")]
    right = sum((float(r[4]) > 0.5) == (r[3] == "1") for r in rows)
    assert lines[-1].startswith(f"{right} of 4 rows right")


# --------------------------------------------------------------------------- train, predict, evaluate


def test_demo_draws_the_xor_regions_and_the_weights_before_and_after(started):
    proc = succeeded(started["demo plot"].wait())
    names = ("xor-boundary.png", "xor-weights-before.png", "xor-weights-after.png")
    assert proc.stdout.splitlines()[-1] == "pictures: " + ", ".join(f"pictures/{n}" for n in names)
    folder = started["demo plot"].cwd / "pictures"  # made by the demo
    sizes = {}
    for name in names:
        with Image.open(folder / name) as im:
            assert im.format == "PNG"
            sizes[name] = im.size
    assert sizes == {names[0]: (400, 400), names[1]: (610, 320), names[2]: (610, 320)}  # 3-4-1: two layers
    assert (folder / names[1]).read_bytes() != (folder / names[2]).read_bytes()


def test_csv_round_trip_train_predict_evaluate(tmp_path, backend, device, place):
    """Train on a CSV with text labels, predict new rows whose columns come in another order, evaluate."""
    rng = np.random.default_rng(7)
    X, t = flowers(rng, 150)
    write_csv(tmp_path / "train.csv", {"sepal": X[:, 0], "petal": X[:, 1], "width": X[:, 2], "species": t})
    Xn, _ = flowers(rng, 12)
    write_csv(tmp_path / "new.csv", {"id": np.arange(12), "width": Xn[:, 2], "sepal": Xn[:, 0], "petal": Xn[:, 1]})
    Xt, tt = flowers(rng, 40)
    write_csv(tmp_path / "test.csv", {"species": tt, "petal": Xt[:, 1], "sepal": Xt[:, 0], "width": Xt[:, 2]})

    command = "train train.csv --target species --standardize --epochs 10 --batch-size full --lr 0.1"
    train = ok(command, "--out", "flowers.npz", *place, cwd=tmp_path)
    out, err = train.stdout, train.stderr
    assert "epoch 10/10" in err  # progress goes to stderr ...
    assert "epoch 10/10" not in out  # ... and only the summary to stdout
    assert summary_row(out, "epochs")[:4] == ["run", "10", "of", "10"]
    assert summary_row(out, "backend")[:3] == [backend, "on", f"{device},"]
    assert summary_row(out, "data")[:8] == ["train.csv:", "150", "rows", "(120", "train,", "30", "validation),", "3"]
    assert summary_row(out, "model") == ["flowers.npz"]
    net = anynet.load(tmp_path / "flowers.npz", backend=backend, device=device)  # to redo its arithmetic here
    assert net.sizes == [3, 32, 3]
    assert net.classes.tolist() == SPECIES.tolist()
    assert net.metadata["features"] == ["sepal", "petal", "width"]
    assert net.metadata["target"] == "species"
    assert net.history.epochs == 10
    train_loss, val_loss = summary_row(out, "loss")
    assert float(train_loss) == pytest.approx(net.history.loss[-1], rel=1e-3)
    assert float(val_loss) == pytest.approx(net.history.val_loss[-1], rel=1e-3)
    assert summary_row(out, "accuracy")[1] == f"{100 * net.history.val_accuracy[-1]:.1f}%"

    predicting = Started("predict flowers.npz new.csv --proba --out pred.csv", *place, cwd=tmp_path)
    evaluating = Started("evaluate flowers.npz test.csv", *place, cwd=tmp_path)
    predict, evaluate = succeeded(predicting.wait()), succeeded(evaluating.wait()).stdout
    assert predict.stdout == ""
    rows = read_csv((tmp_path / "pred.csv").read_text())
    assert list(rows[0]) == ["species", "p_setosa", "p_versicolor", "p_virginica"]
    assert len(rows) == 12
    proba = np.array([[float(r[f"p_{s}"]) for s in SPECIES] for r in rows])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-4)
    assert [r["species"] for r in rows] == SPECIES[proba.argmax(axis=1)].tolist()
    # the same model in this process, reading the new rows by hand the way the model says
    scale = net.metadata["standardize"]
    mine = anynet.to_numpy(net.predict(D.standardize(Xn, scale["mean"], scale["std"])))
    np.testing.assert_allclose(proba, mine, atol=1e-5)

    hits, n = map(int, re.search(r"accuracy\s+[\d.]+\s+\((\d+) of (\d+)\)", evaluate).groups())
    assert n == 40
    mine = anynet.to_numpy(net.predict_classes(D.standardize(Xt, scale["mean"], scale["std"])))
    assert hits == int(np.sum(mine == tt))
    assert hits >= 36  # three clusters this far apart are easy
    matrix = evaluate[evaluate.index("confusion matrix") :].splitlines()
    assert matrix[1].split() == SPECIES.tolist()
    counts = np.array([[int(v) for v in line.split()[1:]] for line in matrix[2:5]])
    assert counts.sum(axis=1).tolist() == [int(np.sum(tt == s)) for s in SPECIES]
    assert int(np.trace(counts)) == hits

    for name in ("flowers.npz", "pred.csv"):
        assert mode(tmp_path / name) == default_mode(), name


# --------------------------------------------------------------------------- backends and bench


def test_backends_lists_each_with_version_and_devices(started, backend):
    out = succeeded(started["backends"].wait()).stdout
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(lines) == set(B.BACKENDS)
    mine = anynet.backends()[backend]
    assert mine["version"] in lines[backend]
    assert all(device in lines[backend] for device in mine["devices"])


def test_bench_times_the_xor_job_and_backends_agree(started, backend):
    names = list(dict.fromkeys(["numpy", backend]))
    out = succeeded(started["bench"].wait()).stdout
    header, *rows = [line.split() for line in out.splitlines()]
    assert header[:4] == ["backend", "device", "dtype", "epochs"]
    assert [r[0] for r in rows][: len(names)] == names
    assert all(1 <= int(r[3]) <= 50 for r in rows)
    losses = [float(r[-1]) for r in rows]
    assert max(losses) - min(losses) < 1e-4  # the same job on each backend


# --------------------------------------------------------------------------- errors, as the issue lists them


@pytest.mark.parametrize(("command", "message"), ERRORS)
def test_user_errors_are_one_line_that_says_what_to_fix(started, command, message):
    assert message in failed(started[command].wait())


def test_unknown_backend_is_a_usage_error(started):
    message = failed(started["tensorflow"].wait(), status=2)
    assert "invalid choice: 'tensorflow'" in message
    assert "`anynet train --help`" in message


def test_a_gpu_asked_for_and_absent(started):
    assert "cuda:7" in failed(started["gpu"].wait())


def test_debug_shows_the_traceback(started):
    proc = started["debug"].wait()
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    assert "DataError: cannot read 'missing.csv'" in proc.stderr


def test_digits_without_scikit_learn_says_how_to_install_it(started):
    assert "pip install scikit-learn" in failed(started["no sklearn"].wait())


def test_importing_anynet_does_not_import_scikit_learn(tmp_path):
    code = "import sys, anynet, anynet.cli, anynet.data; print('sklearn' in sys.modules)"
    env = os.environ | {"PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, check=True
    )
    assert proc.stdout.strip() == "False"


def test_bad_input_leaves_existing_files_alone(tmp_path):
    (tmp_path / "text.csv").write_text("a,b,label\n1,2,x\n3,oops,y\n")
    (tmp_path / "model.npz").write_bytes(b"an older model")
    fails("train text.csv --out model.npz", cwd=tmp_path)
    assert (tmp_path / "model.npz").read_bytes() == b"an older model"
    # a run that fails once training has started saves nothing either
    (tmp_path / "numbers.csv").write_text("a,b,y\n1,2,30\n3,4,70\n5,6,110\n")
    command = "train numbers.csv --output identity --optimizer sgd --lr 1e300 --epochs 5 --out model.npz --quiet"
    message = fails(command, "--backend", "numpy", cwd=tmp_path)
    assert "diverged" in message
    assert "nothing was saved" in message
    assert (tmp_path / "model.npz").read_bytes() == b"an older model"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left behind


# --------------------------------------------------------------------------- more, in this process


def test_regression_reports_mse_mae_r2_in_the_targets_units(tmp_path, capsys, backend, device, place):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 2))
    y = 3.0 * X[:, 0] - 2.0 * X[:, 1] + 500.0  # far from 0: --standardize scales the target too
    data = write_csv(tmp_path / "houses.csv", {"a": X[:, 0], "b": X[:, 1], "price": y}, sep=";")
    model = tmp_path / "houses.npz"
    command = "train --output identity --standardize --hidden none --epochs 15 --batch-size full --lr 0.2 --quiet"
    code, out, _ = main(capsys, command, data, "--out", model, *place)
    assert code == 0
    assert "regression of 'price'" in out
    assert "accuracy" not in out
    net = anynet.load(model, backend=backend, device=device)
    meta = net.metadata
    scaled = anynet.to_numpy(net.predict(D.standardize(X, meta["standardize"]["mean"], meta["standardize"]["std"])))
    mine = scaled[:, 0] * meta["target_standardize"]["std"] + meta["target_standardize"]["mean"]

    code, out, _ = main(capsys, "evaluate", model, data, *place)
    assert code == 0
    mse, mae, r2 = (float(re.search(rf"{k}\s+(\S+)", out).group(1)) for k in ("MSE", "MAE", "R²"))
    assert mse == pytest.approx(np.mean((mine - y) ** 2), rel=1e-3)
    assert mae == pytest.approx(np.mean(np.abs(mine - y)), rel=1e-3)
    assert r2 > 0.9  # a linear target and a linear network

    code, out, err = main(capsys, "predict", model, data, *place)
    assert code == 0
    assert err == ""
    values = np.array([float(r["price"]) for r in read_csv(out)])
    np.testing.assert_allclose(values, mine, rtol=1e-5)  # in the target's units, not in standard deviations

    code, out, err = main(capsys, "predict --proba", model, data, *place)
    assert code == 1
    assert "is a regressor; leave --proba out" in err


def test_npz_data_with_X_and_y_and_a_loss_plot(tmp_path, capsys):
    """Reading the file and drawing the plot are host work: NumPy is enough to check them."""
    rng = np.random.default_rng(5)
    X, t = flowers(rng, 90)
    np.savez(tmp_path / "train.npz", X=X, y=t)
    np.savez(tmp_path / "new.npz", X=X[:5])
    model = tmp_path / "m.npz"
    command = "train --standardize --epochs 5 --batch-size full --quiet"
    plot = tmp_path / "loss.png"
    assert main(capsys, command, tmp_path / "train.npz", "--out", model, "--plot", plot, "--backend", "numpy")[0] == 0
    assert anynet.load(model, backend="numpy").metadata["features"] == ["x1", "x2", "x3"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert mode(plot) == default_mode()  # not the 0600 of the temporary file it was drawn in
    code, out, _ = main(capsys, "predict", model, tmp_path / "new.npz", "--backend", "numpy")
    assert code == 0
    labels = [r["y"] for r in read_csv(out)]
    assert len(labels) == 5
    assert set(labels) <= set(SPECIES)


def test_train_draws_the_class_regions_and_a_movie_of_them(tmp_path, capsys, place):
    model, boundary, movie = tmp_path / "m.npz", tmp_path / "boundary.png", tmp_path / "learning.gif"
    command = "train moons --epochs 6 --batch-size full --quiet"
    code, out, err = main(capsys, command, "--out", model, "--boundary", boundary, "--movie", movie, *place)
    assert code == 0, err
    assert err == ""
    assert summary_row(out, "boundary") == [str(boundary)]
    assert summary_row(out, "movie") == [str(movie)]
    with Image.open(boundary) as im:
        assert (im.format, im.size) == ("PNG", (400, 400))
    with Image.open(movie) as im:
        assert (im.format, im.size, im.n_frames) == ("GIF", (320, 320), 7)  # the untrained net and 6 epochs
    assert mode(movie) == default_mode()
    saved = anynet.load(model, backend="numpy")
    assert saved.history.epochs == saved.epochs_trained == 6  # the whole run, not the movie's last chunk
    assert summary_row(out, "epochs") == ["run", "6", "of", "6"]


def test_pictures_without_matplotlib_fail_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)  # `import matplotlib...` now raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for command in ("train moons --boundary b.png", "train moons --movie m.gif", "demo --plot pictures"):
        code, out, err = main(capsys, command, "--backend", "numpy")
        assert code == 1
        assert out == ""
        assert "pictures are drawn with matplotlib, which is not installed; pip install matplotlib" in err
    assert list(tmp_path.iterdir()) == []  # no model, no picture, no folder


def test_early_stopping_keeps_the_best_epoch(tmp_path, capsys, place):
    model = tmp_path / "m.npz"
    command = "train moons --lr 0.3 --patience 1 --epochs 40 --batch-size full --quiet"
    code, out, err = main(capsys, command, "--out", model, *place)
    assert code == 0
    assert err == ""
    net = anynet.load(model, backend="numpy")
    assert net.history.stopped_early
    assert net.history.epochs < 40
    epochs = " ".join(summary_row(out, "epochs"))
    assert f"run {net.history.epochs} of 40 (stopped early: no better val_loss for 1 epoch)" in epochs
    assert f"kept epoch {net.history.best_epoch + 1}, the best val_loss" in epochs
    # the summary shows the kept epoch's numbers, which are the saved weights'
    assert float(summary_row(out, "loss")[1]) == pytest.approx(net.history.val_loss[net.history.best_epoch], rel=1e-3)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("train moons --hidden 64,x", "argument --hidden: expected hidden layer widths"),
        ("train moons --validation-split 1.5", "argument --validation-split: expected a fraction"),
        ("train moons --batch-size 0", "argument --batch-size: expected a positive whole number"),
        ("train moons --lr -1", "argument --lr: expected a positive number"),
        ("bench --backends numpy,tf", "unknown backend(s) ['tf']"),
        ("frobnicate", "invalid choice: 'frobnicate'"),
    ],
)
def test_malformed_command_lines_exit_2(capsys, command, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(shlex.split(command))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1


@pytest.fixture
def trained(tmp_path, capsys, monkeypatch):
    """A folder holding a small classifier ``m.npz`` trained on good.csv (labels x, y) and the files
    the error cases need; the working directory for the test."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 3},{'xy'[i % 2]}\n" for i in range(12)))
    (tmp_path / "ragged.csv").write_text("a,b,label\n1,2,x\n3,4\n")
    (tmp_path / "other.csv").write_text("a,b,label\n1,2,z\n")
    (tmp_path / "nolabel.csv").write_text("a,b\n1,2\n")
    (tmp_path / "lacks.csv").write_text("a,label\n1,x\n")
    (tmp_path / "numbers.csv").write_text("a,y\n" + "".join(f"{i},{i * 0.37}\n" for i in range(30)))
    (tmp_path / "values.csv").write_text("a,b,y\n" + "".join(f"{i},{i % 4},{i * 0.37}\n" for i in range(30)))
    (tmp_path / "three.csv").write_text("a,b,c,label\n" + "".join(f"{i},{i % 3},{i % 5},{i % 2}\n" for i in range(12)))
    assert main(capsys, "train good.csv --epochs 2 --out m.npz --quiet --backend numpy")[0] == 0
    return tmp_path


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("train ragged.csv", "line 3 has 2 fields but the header has 3; check for a missing or extra comma"),
        ("train good.csv --out nowhere/m.npz", "the folder 'nowhere' does not exist"),
        ("train good.csv --out m.csv", "--out 'm.csv': give a file name ending in .npz"),
        ("train good.csv --plot loss.gif", "--plot 'loss.gif': give a file name ending in .png"),
        ("train good.csv --output identity", "makes a regressor, but the target 'label' holds text"),
        ("train numbers.csv --output softmax", "makes a classifier, but the target 'y' holds 30 distinct"),
        ("train good.csv --loss cross_entropy --output sigmoid", "add --output softmax"),
        ("train good.csv --validation-split 0.99", "leaving none to train on"),
        ("predict good.csv good.csv", "'good.csv' is not an anynet model"),
        ("predict m.npz lacks.csv", "lacks the column 'b' that the model was trained on"),
        ("predict m.npz good.csv --out p.txt", "give a file name ending in .csv"),
        ("evaluate m.npz nolabel.csv", "has no target column 'label' to evaluate against"),
        ("evaluate m.npz other.csv", "label(s) ['z'] in 'label' that the model never saw"),
        (
            "train three.csv --boundary b.png --movie m.gif",
            "--boundary and --movie: the class regions are drawn over the plane of 2 features, but 'three.csv' has 3",
        ),
        ("train values.csv --boundary b.png", "the regions are those of classes, but 'y' in 'values.csv' holds values"),
        ("train good.csv --boundary b.gif", "--boundary 'b.gif': give a file name ending in .png"),
        ("train good.csv --movie m.png", "--movie 'm.png': give a file name ending in .gif"),
        ("train good.csv --movie no/m.gif", "the folder 'no' does not exist"),
        ("train good.csv --movie m.gif --patience 2", "early stopping (--patience) cannot span them; drop one"),
        ("demo --plot good.csv", "--plot 'good.csv': give a folder for the demo's pictures; this one is a file"),
        ("demo --plot no/pictures", "this one does not exist, nor does the folder it would go in"),
    ],
)
def test_more_user_errors(trained, capsys, command, message):
    files = sorted(trained.iterdir())
    code, out, err = main(capsys, command)
    assert code == 1
    assert out == ""
    assert message in err
    assert err.startswith("anynet: error: ")
    assert len(err.strip().splitlines()) == 1
    assert sorted(trained.iterdir()) == files  # nothing written: no model, no picture


def test_debug_after_the_command_raises_too(trained):
    with pytest.raises(D.DataError, match="no such file"):
        cli.main(["train", "missing.csv", "--debug"])


def test_a_binary_model_from_numpy_predicts_on_the_backend_under_test(trained, capsys, backend, place):
    """A model saved from NumPy (float64) runs on the backend under test, here in float32."""
    code, here, _ = main(capsys, "predict m.npz good.csv --proba --backend numpy")
    assert code == 0
    code, there, err = main(capsys, "predict m.npz good.csv --proba --dtype float32", *place)
    assert code == 0, err
    here, there = read_csv(here), read_csv(there)
    assert list(there[0]) == ["label", "p_x", "p_y"]  # one sigmoid output, told as both classes
    assert [r["label"] for r in there] == [r["label"] for r in here]
    p_here = np.array([[float(r["p_x"]), float(r["p_y"])] for r in here])
    p_there = np.array([[float(r["p_x"]), float(r["p_y"])] for r in there])
    np.testing.assert_allclose(p_there, p_here, atol=1e-5)
    np.testing.assert_allclose(p_there.sum(axis=1), 1.0, atol=1e-6)


# --------------------------------------------------------------------------- nothing a user can break (issue 14)


def zip_field(path: Path, offset: int, value: int) -> None:
    """Set a 2-byte field of the first central directory record of the zip at ``path``."""
    import zipfile

    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        start = zf.start_dir
    data[start + offset : start + offset + 2] = value.to_bytes(2, "little")
    path.write_bytes(bytes(data))


def resaved(path: Path, **changes) -> None:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files} | changes
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def with_config(path: Path, **changes) -> None:
    import json

    with np.load(path, allow_pickle=False) as data:
        config = json.loads(str(data["anynet_config"]))
    resaved(path, anynet_config=np.asarray(json.dumps(config | changes)))


def with_metadata(path: Path, **changes) -> None:
    import json

    with np.load(path, allow_pickle=False) as data:
        config = json.loads(str(data["anynet_config"]))
    config["metadata"] |= changes
    resaved(path, anynet_config=np.asarray(json.dumps(config)))


def huge_w0(path: Path) -> None:
    """W0's .npy header declares 8 TiB; the entry holds its few real bytes."""
    import zipfile

    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (1 << 20, 1 << 20)})
    with zipfile.ZipFile(path, "w") as zf:
        for key, a in arrays.items():
            with zf.open(f"{key}.npy", "w") as fh:
                if key == "W0":
                    fh.write(header.getvalue() + a.tobytes())
                else:
                    np.lib.format.write_array(fh, a, allow_pickle=False)


TAMPERED = {
    "compression method": (lambda p: zip_field(p, 10, 99), "is compressed, and anynet writes its arrays uncompressed"),
    "encrypted": (lambda p: zip_field(p, 8, 1), "not a readable .npz archive"),
    "huge shape": (huge_w0, "entry 'W0.npy' declares float64 (1048576, 1048576)"),
    "wrong shape": (lambda p: resaved(p, W0=np.ones((1, 1))), r"W0 should be finite floats of shape (2, 32)"),
    "classes 2-D": (lambda p: resaved(p, classes=np.array([["x", "y"]])), "classes should be text of shape (2,)"),
    "classes unsorted": (lambda p: resaved(p, classes=np.array(["y", "x"])), "are not sorted and distinct"),
    "epochs_trained": (lambda p: with_config(p, epochs_trained=-7), "epochs_trained -7 is not a whole number"),
    "scaling": (lambda p: with_metadata(p, standardize={"mean": 1}), "its metadata standardize"),
    "features": (lambda p: with_metadata(p, features=["a"]), "is not a list of 2 column names"),
}


@pytest.mark.parametrize("command", ["evaluate m.npz good.csv", "predict m.npz good.csv"])
@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_a_tampered_model_is_one_line_not_a_traceback(trained, capsys, command, case):
    tamper, message = TAMPERED[case]
    tamper(trained / "m.npz")
    code, out, err = main(capsys, command)
    assert code == 1
    assert out == ""
    assert err.startswith("anynet: error: 'm.npz' is not a valid anynet checkpoint: ")
    assert message in err
    assert err.rstrip().endswith("give a model saved by `anynet train`")
    assert len(err.strip().splitlines()) == 1


def test_features_that_overflow_when_standardised_are_named(trained, capsys):
    rows = "".join(f"{i * 1e307},{i % 3},{'xy'[i % 2]}\n" for i in range(12))
    (trained / "huge.csv").write_text("a,b,label\n" + rows)
    code, out, err = main(capsys, "train huge.csv --standardize --epochs 2 --out h.npz --quiet")
    assert code == 1
    assert out == ""
    assert err.strip() == (
        "anynet: error: column 'a' of 'huge.csv' overflows float64 when standardised (--standardize): "
        "its values reach 1.1e+308; divide the column by a power of ten first"
    )
    assert not (trained / "h.npz").exists()
    # a model trained on ordinary numbers, asked about these: named too, not "X holds NaN"
    assert main(capsys, "train good.csv --standardize --epochs 2 --out s.npz --quiet")[0] == 0
    (trained / "far.csv").write_text("a,b,label\n1,1.7e308,x\n2,1,y\n")  # b's std in training is below 1
    code, out, err = main(capsys, "predict s.npz far.csv")
    assert code == 1
    assert "column 'b' of 'far.csv' overflows float64 once standardised as the training data was" in err
    assert len(err.strip().splitlines()) == 1


def test_a_target_whose_scale_overflows_is_refused_not_trained_into_inf(trained, capsys):
    (trained / "far.csv").write_text("a,y\n" + "".join(f"{i},{(-1) ** i * (1 + i / 30) * 1e300}\n" for i in range(30)))
    code, _, err = main(capsys, "train far.csv --standardize --epochs 2 --out far.npz --quiet")
    assert code == 1
    assert "column 'y' of 'far.csv' overflows float64 when standardised (--standardize)" in err
    assert not (trained / "far.npz").exists()


def test_a_full_disk_names_the_file(trained, capsys, monkeypatch):
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", full)
    code, _, err = main(capsys, "train good.csv --epochs 2 --out new.npz --quiet")
    assert code == 1
    assert err.strip() == f"anynet: error: cannot write 'new.npz': {os.strerror(errno.ENOSPC)}"
    monkeypatch.setattr(Path, "write_text", full)
    code, _, err = main(capsys, "predict m.npz good.csv --out p.csv --quiet")
    assert code == 1
    assert err.strip() == f"anynet: error: cannot write 'p.csv': {os.strerror(errno.ENOSPC)}"
    assert sorted(p.name for p in trained.iterdir() if p.name.startswith(".")) == []  # no temporary files left


@pytest.mark.parametrize("cpu_only", ["numpy", "dask", "array_api_strict"])
def test_a_gpu_asked_of_a_cpu_only_backend_names_one_that_has_it(trained, capsys, cpu_only):
    code, _, err = main(capsys, f"train good.csv --backend {cpu_only} --device cuda --out g.npz --quiet")
    assert code == 1
    assert f"--device cuda: the {cpu_only} backend runs on the CPU only" in err
    assert "use --backend torch or --backend cupy" in err
    assert "nvidia-smi" not in err


def test_not_enough_memory_is_one_line(capsys, monkeypatch):
    # `--hidden 2000000000` asks for more than the machine has: say so, no traceback (the command
    # stands in, so that no test asks this machine for 48 GB)
    def too_big(args):
        raise MemoryError

    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with_func(parser(), too_big))
    code, out, err = main(capsys, "train xor --hidden 2000000000")
    assert code == 1
    assert out == ""
    assert err == "anynet: error: not enough memory for this (a network or data too large for this machine)\n"


def _with_func(parser, func):
    parse = parser.parse_args

    def parse_args(argv=None):
        args = parse(argv)
        args.func = func
        return args

    parser.parse_args = parse_args
    return parser


def test_predict_with_its_output_closed_asks_for_out(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYNET_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    (tmp_path / "new.csv").write_text("a,b\n1,2\n")
    code = "import sys; from anynet.cli import main; sys.exit(main(sys.argv[1:]))"
    # the shell closes the child's standard output (`>&-`), as a user's script might
    command = ["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-c", code, "predict", "m.npz", "new.csv"]
    proc = subprocess.run(command, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    want = "anynet: error: standard output is closed, and predict writes there; give --out FILE"
    assert proc.stderr.splitlines()[-1] == want


def test_the_environment_places_the_command_line_as_it_places_python(tmp_path):
    # ANYNET_DEVICE was ignored by the command line: `ANYNET_BACKEND=torch ANYNET_DEVICE=cuda:0 anynet demo`
    # ran on the CPU
    message = fails("demo --epochs 30", cwd=tmp_path, env={"ANYNET_BACKEND": "numpy", "ANYNET_DEVICE": "cuda:0"})
    assert "ANYNET_DEVICE=cuda:0: the numpy backend runs on the CPU only" in message
    env = {"ANYNET_BACKEND": "array_api_strict", "ANYNET_DEVICE": "device1"}
    proc = run("demo --epochs 30", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "device1" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("demo --epochs 0", "anynet demo: error: argument --epochs: expected a positive whole number, got '0'"),
        ("demo --seed -1", "anynet demo: error: argument --seed: expected a whole number from 0, got '-1'"),
        ("train xor --seed 1.5", "anynet train: error: argument --seed: expected a whole number from 0, got '1.5'"),
        ("evaluate m.npz xor --bogus", "anynet evaluate: error: unrecognized arguments: --bogus; `anynet evaluate"),
        ("train xor --lrr 0.1", "anynet train: error: unrecognized arguments: --lrr"),
    ],
)
def test_usage_errors_name_the_option_and_the_commands_own_help(capsys, command, message):
    # `demo --epochs 0` was an IndexError traceback; unrecognized arguments pointed to the top-level help
    with pytest.raises(SystemExit) as info:
        cli.main(shlex.split(command))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(message), err
    assert len(err.strip().splitlines()) == 1


def test_every_command_that_logs_takes_quiet():
    for command in ("train", "evaluate", "predict", "bench"):
        assert "-q, --quiet" in cli.build_parser().commands[command].format_help()


def test_counts_train_as_a_regression_with_an_exp_output(tmp_path, capsys, rng):
    # --output exp with --loss poisson: counts are values to predict, not seven classes
    x = rng.uniform(-1, 1, size=(120, 2))
    counts = rng.poisson(np.exp(0.5 * x[:, 0] + 0.3))
    path = tmp_path / "counts.csv"
    np.savetxt(path, np.c_[x, counts], delimiter=",", header="a,b,count", comments="", fmt="%g")
    code, out, _ = main(
        capsys,
        "train",
        path,
        "--output",
        "exp",
        "--loss",
        "poisson",
        "--epochs",
        "5",
        "-q",
        "--out",
        tmp_path / "c.npz",
    )
    assert code == 0
    assert "regression of 'count'" in out
    assert "2-32-1, relu -> exp" in out


def test_evaluate_names_the_model_columns_the_data_lacks_and_a_damaged_model(tmp_path, capsys):
    # it blamed a text column of the other data set; a damaged .npz was told to come first
    code, _, _ = main(capsys, "train digits --epochs 1 -q --out", tmp_path / "digits.npz")
    assert code == 0
    (tmp_path / "iris.csv").write_text("sepal,petal,species\n1,2,setosa\n3,4,virginica\n")
    message = fails("evaluate digits.npz iris.csv", cwd=tmp_path)
    assert "'iris.csv' lacks 64 of the 64 columns 'pixel_0_0'" in message
    assert "that the model was trained on; it has ['sepal', 'petal', 'species']" in message
    (tmp_path / "damaged.npz").write_bytes((tmp_path / "digits.npz").read_bytes()[:100])
    message = fails("evaluate damaged.npz iris.csv", cwd=tmp_path)
    assert "'damaged.npz' is not an anynet model" in message
    assert "damaged or not written by anynet" in message
    assert "comes first" not in message
    assert "the model comes first" in fails("evaluate iris.csv digits.npz", cwd=tmp_path)


def test_the_demo_on_dask_says_how_long_it_would_take(tmp_path):
    pytest.importorskip("dask.array", reason="the dask backend's library")
    message = fails("demo --backend dask", cwd=tmp_path)  # it ran for about two hours
    assert "60000 epochs on dask would take about 100 minutes" in message
    assert "give --epochs 1000 or fewer" in message


@pytest.mark.parametrize("address", ["notaurl", "tcp://127.0.0.1:1"])
def test_a_scheduler_that_is_not_there_is_one_line(tmp_path, address):
    # after the message came a Client.__del__ traceback, 20 s later
    pytest.importorskip("distributed", reason="--scheduler needs dask.distributed")
    message = fails(f"train xor --epochs 2 -q --scheduler {address}", cwd=tmp_path)
    assert f"--scheduler {address}: cannot reach a Dask scheduler there" in message
