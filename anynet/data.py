"""Data for the command line: the built-in datasets, reading a user's CSV or NPZ table, standardising.

Everything here is host NumPy: a ``Table`` holds features ``X``: ``(n, d)`` float64 and targets
``t``: ``(n,)`` (class labels, numbers or text, or regression values). The network moves them to
its backend once, in ``fit``/``predict``.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: at most this many distinct integer values make a numeric target a set of class labels
MAX_NUMERIC_CLASSES = 20

#: cells read as a missing value rather than a number
MISSING = {"", "na", "n/a", "nan", "null", "none", "?", "-"}


class DataError(ValueError):
    """Data that cannot be used as given: the message says where the problem is and what to do."""


@dataclass
class Table:
    """Features ``X``: ``(n, d)`` float64, named by ``features``; targets ``t``: ``(n,)`` or ``None``."""

    X: np.ndarray
    t: np.ndarray | None
    features: list[str]
    target: str | None
    source: str

    @property
    def n(self) -> int:
        return self.X.shape[0]


# --------------------------------------------------------------------------- built-in datasets


def _xor(seed: int) -> Table:
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    return Table(X, np.array([0, 1, 1, 0]), ["x1", "x2"], "xor", "xor")


def _digits(seed: int) -> Table:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        msg = (
            "the 'digits' dataset comes with scikit-learn, which is not installed; "
            "pip install scikit-learn, or train on moons, spirals or a CSV file"
        )
        raise DataError(msg) from None
    bunch = load_digits()
    return Table(
        np.asarray(bunch.data, dtype=float), np.asarray(bunch.target), list(bunch.feature_names), "digit", "digits"
    )


def _moons(seed: int, n: int = 500, noise: float = 0.15) -> Table:
    """Two interleaving half circles, as scikit-learn's ``make_moons``, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    n_top = n // 2
    a = np.linspace(0.0, np.pi, n_top)
    b = np.linspace(0.0, np.pi, n - n_top)
    X = np.concatenate([np.c_[np.cos(a), np.sin(a)], np.c_[1.0 - np.cos(b), 0.5 - np.sin(b)]])
    X = X + rng.normal(0.0, noise, X.shape)
    t = np.repeat([0, 1], [n_top, n - n_top])
    order = rng.permutation(n)
    return Table(X[order], t[order], ["x1", "x2"], "moon", "moons")


def _spirals(seed: int, per_arm: int = 200, arms: int = 3, noise: float = 0.2) -> Table:
    """``arms`` interleaved spirals in the unit disc (the CS231n toy problem), drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    r = np.tile(np.linspace(0.0, 1.0, per_arm), arms)
    theta = np.concatenate([np.linspace(4.0 * k, 4.0 * (k + 1), per_arm) for k in range(arms)])
    theta = theta + rng.normal(0.0, noise, theta.shape)
    X = np.c_[r * np.sin(theta), r * np.cos(theta)]
    t = np.repeat(np.arange(arms), per_arm)
    order = rng.permutation(X.shape[0])
    return Table(X[order], t[order], ["x1", "x2"], "arm", "spirals")


#: name -> (maker from a seed, one line for --help)
BUILTINS: dict[str, tuple[Callable[[int], Table], str]] = {
    "xor": (_xor, "the seed's 4 rows: 2 binary inputs, label x1 XOR x2"),
    "digits": (_digits, "1797 8x8 images of handwritten digits, 64 features, 10 classes (needs scikit-learn)"),
    "moons": (_moons, "500 points on two interleaving half circles, 2 classes, drawn from --seed"),
    "spirals": (_spirals, "600 points on three interleaved spirals, 3 classes, drawn from --seed"),
}


# --------------------------------------------------------------------------- reading files


def load(
    source: str,
    *,
    target: str | None = None,
    seed: int = 0,
    need_target: bool = True,
    features: Sequence[str] | None = None,
) -> Table:
    """A built-in dataset by name, or a CSV/NPZ file; ``target`` names the label column of a file.

    ``need_target=False`` reads data that may lack the target (new rows to predict): ``t`` is then
    ``None`` unless the target column is there. ``features`` (a model's columns) are the only columns
    a CSV's numbers are read from, and one it lacks is named as missing.
    """
    if source in BUILTINS and not Path(source).exists():
        return BUILTINS[source][0](seed)
    path = Path(source)
    if not path.exists():
        hint = "" if path.suffix else f"; built-in datasets are {', '.join(BUILTINS)}"
        msg = f"cannot read {source!r}: no such file{hint}"
        raise DataError(msg)
    if path.is_dir():
        msg = f"cannot read {source!r}: it is a folder; give a .csv or .npz file"
        raise DataError(msg)
    if path.suffix.lower() == ".npz" or zipfile.is_zipfile(path):
        return read_npz(path, target=target, need_target=need_target)
    return read_csv(path, target=target, need_target=need_target, features=features)


def read_csv(
    path: str | Path, *, target: str | None = None, need_target: bool = True, features: Sequence[str] | None = None
) -> Table:
    """A CSV file with a header row: numeric feature columns and one target column (the last,
    unless ``target`` names another); class labels may be text. Comma, semicolon or tab separated."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        msg = (
            f"cannot read {str(path)!r} as a CSV file: byte {exc.start} is not UTF-8 text "
            f"({exc.object[exc.start : exc.start + 1]!r}); save it as UTF-8 CSV"
        )
        raise DataError(msg) from None
    if "\0" in text[:4096]:
        msg = f"cannot read {str(path)!r} as a CSV file: it holds binary data; give a text CSV with a header row"
        raise DataError(msg)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    rows, lines = [], []  # lines[i]: the file line where rows[i] ends, for messages
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        for row in reader:
            if any(c.strip() for c in row):
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as exc:
        msg = f"cannot read {str(path)!r} as a CSV file: {exc}"
        raise DataError(msg) from None
    if not rows:
        msg = f"{str(path)!r} is empty; give a CSV file with a header row and at least one row of data"
        raise DataError(msg)
    header = [c.strip() for c in rows[0]]
    if _looks_like_data(header, rows[1] if len(rows) > 1 else None):
        msg = (
            f"the first line of {str(path)!r} looks like a row of data ({','.join(header[:5])}), not column "
            "names; anynet needs a header row naming each column: add one as the file's first line"
        )
        raise DataError(msg)
    _check_header(header, str(path))
    body, lines = rows[1:], lines[1:]
    if not body:
        msg = f"{str(path)!r} has a header but no rows of data"
        raise DataError(msg)
    for i, row in enumerate(body):
        if len(row) != len(header):
            msg = (
                f"{str(path)!r} line {lines[i]} has {len(row)} fields but the header has {len(header)}; "
                f"check for a missing or extra {_sep_name(delimiter)}"
            )
            raise DataError(msg)
    columns = {name: [row[j].strip() for row in body] for j, name in enumerate(header)}
    target = _pick_target(header, target, need_target, str(path))
    if features is None:
        return _table(columns, [name for name in header if name != target], target, path, lines)
    _check_features(list(features), header, str(path))
    return _table(columns, list(features), target, path, lines)


def _table(columns: dict, features: list[str], target: str | None, path: Path, lines: Any) -> Table:
    """The ``Table`` of named ``columns``: ``features`` parsed as numbers, ``target`` as labels."""
    if not features:
        msg = f"{str(path)!r} has only the target column {target!r}; it needs at least one feature column"
        raise DataError(msg)
    X = np.column_stack([_numeric(columns[name], name, str(path), lines) for name in features])
    t = None if target is None else _labels(columns[target], target, str(path), lines)
    return Table(X, t, features, target, str(path))


def read_npz(path: str | Path, *, target: str | None = None, need_target: bool = True) -> Table:
    """An ``.npz`` of either ``X`` (2-D) with targets ``y`` or ``t`` (or the array ``target`` names),
    or one 1-D array per column, the target being the last unless ``target`` names another."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except ValueError as exc:
        msg = (
            f"cannot read {str(path)!r}: {exc}; save text labels as a NumPy string array "
            "(np.asarray(labels, dtype=str)), not as Python objects"
        )
        raise DataError(msg) from None
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        msg = f"cannot read {str(path)!r} as an .npz file ({type(exc).__name__}: {exc})"
        raise DataError(msg) from None
    if "anynet_config" in arrays:
        msg = f"{str(path)!r} is an anynet model, not data; give it as MODEL (anynet predict MODEL DATA)"
        raise DataError(msg)
    if not arrays:
        msg = f"{str(path)!r} holds no arrays"
        raise DataError(msg)
    if "X" in arrays:
        X = arrays["X"]
        if X.ndim != 2:
            msg = f"array 'X' in {str(path)!r} must be 2-D (n_samples, n_features), got shape {X.shape}"
            raise DataError(msg)
        features = [str(f) for f in arrays["feature_names"]] if "feature_names" in arrays else None
        features = features or [f"x{j + 1}" for j in range(X.shape[1])]
        if len(features) != X.shape[1]:
            msg = f"'feature_names' in {str(path)!r} has {len(features)} names but X has {X.shape[1]} columns"
            raise DataError(msg)
        rest = [k for k in arrays if k not in ("X", "feature_names")]
        if target is None:
            target = next((k for k in ("y", "t", "target", "label", "labels") if k in arrays), None)
        elif target not in rest:
            if need_target:
                msg = f"{str(path)!r} has no array {target!r} for --target; it holds {sorted(arrays)}"
                raise DataError(msg)
            target = None
        if target is None and need_target:
            msg = f"{str(path)!r} has X but no targets; add an array 'y' (or name yours with --target)"
            raise DataError(msg)
        columns = {name: X[:, j] for j, name in enumerate(features)}
        if target is not None:
            columns[target] = arrays[target]
    else:
        columns = dict(arrays)
        features = None
        target = _pick_target(list(columns), target, need_target, str(path))
    n = next(iter(columns.values())).shape[0] if columns else 0
    for name, a in columns.items():
        if a.ndim != 1 or a.shape[0] != n:
            msg = (
                f"array {name!r} in {str(path)!r} has shape {a.shape}; expected one value per row ({n},). "
                "Store either X (2-D) and y, or one 1-D array per column"
            )
            raise DataError(msg)
    if n == 0:
        msg = f"{str(path)!r} has no rows"
        raise DataError(msg)
    if features is None:
        features = [name for name in columns if name != target]
    return _table(columns, features, target, path, None)


def select(table: Table, features: Sequence[str]) -> Table:
    """``table`` with its feature columns picked and ordered as ``features`` (what a model was trained on)."""
    features = list(features)
    if table.features == features:
        return table
    _check_features(features, table.features, table.source)
    index = [table.features.index(f) for f in features]
    return Table(table.X[:, index], table.t, features, table.target, table.source)


def _check_features(features: list[str], columns: list[str], source: str) -> None:
    """Each of a model's ``features`` is among ``columns``, else a message naming those missing."""
    missing = [f for f in features if f not in columns]
    if missing:
        shown = ", ".join(repr(f) for f in missing[:5]) + (" ..." if len(missing) > 5 else "")
        some = f"{len(missing)} of the {len(features)} columns" if len(missing) > 1 else "the column"
        msg = (
            f"{source!r} lacks {some} {shown} that the model was trained on; "
            f"it has {columns[:8]}{' ...' if len(columns) > 8 else ''}"
        )
        raise DataError(msg)


# --------------------------------------------------------------------------- targets


def is_categorical(t: np.ndarray) -> bool:
    """Whether targets look like class labels: text, or a few distinct integers."""
    if t.dtype.kind not in "biuf":
        return True
    values = np.unique(t)
    return bool(np.all(values == np.round(values))) and values.size <= MAX_NUMERIC_CLASSES


def standardizer(X: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-feature mean and standard deviation of ``X``: ``(n, d)``, as lists (a constant column gets 1)."""
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return mean.tolist(), std.tolist()


def standardize(X: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``(X - mean) / std``, column by column."""
    return (X - np.asarray(mean)) / np.asarray(std)


# --------------------------------------------------------------------------- helpers


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _looks_like_data(header: list[str], second: list[str] | None) -> bool:
    """Whether a CSV's first line is data rather than names: all numbers, or all numbers but one column
    (a label column, as in iris without its header) whose next value is not a number either."""
    text = [j for j, c in enumerate(header) if not _is_number(c)]
    if not text:
        return True
    if len(text) > 1 or len(header) < 2 or second is None or len(second) != len(header):
        return False
    return not _is_number(second[text[0]].strip())


def _check_header(header: list[str], source: str) -> None:
    for j, name in enumerate(header):
        if not name:
            msg = f"column {j + 1} of {source!r} has no name in the header row; name every column"
            raise DataError(msg)
    seen = set()
    for name in header:
        if name in seen:
            msg = f"{source!r} has two columns named {name!r}; give each column its own name"
            raise DataError(msg)
        seen.add(name)


def _pick_target(names: list[str], target: str | None, need_target: bool, source: str) -> str | None:
    if target is None:
        return names[-1] if need_target else None
    if target not in names:
        if not need_target:
            return None
        close = [n for n in names if n.lower() == target.lower()]
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        more = " ..." if len(names) > 12 else ""
        msg = f"{source!r} has no column {target!r}{hint}; its columns are {names[:12]}{more}"
        raise DataError(msg)
    return target


def _sep_name(delimiter: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab"}.get(delimiter, repr(delimiter))


def _where(i: int, lines: list[int] | None) -> str:
    return f"line {lines[i]}" if lines is not None else f"row {i + 1}"


def _numeric(column: Sequence[str] | np.ndarray, name: str, source: str, lines: list[int] | None) -> np.ndarray:
    """A feature column as float64, or a DataError at the first cell that is not a finite number."""
    values = np.asarray(column)
    if values.dtype.kind in "biuf":
        out = values.astype(float)
    else:
        out = np.empty(len(values))
        for i, cell in enumerate(values.tolist()):
            cell = str(cell).strip()
            if cell.lower() in MISSING:
                out[i] = math.nan
                continue
            try:
                out[i] = float(cell)
            except ValueError:
                msg = (
                    f"column {name!r} of {source!r} holds text ({cell!r} on {_where(i, lines)}); features must be "
                    "numbers: encode it (one 0/1 column per category), drop it, or make it the --target"
                )
                raise DataError(msg) from None
    bad = np.flatnonzero(~np.isfinite(out))
    if bad.size:
        msg = (
            f"column {name!r} of {source!r} has {bad.size} missing or infinite value(s), the first on "
            f"{_where(int(bad[0]), lines)}; fill them in or drop those rows"
        )
        raise DataError(msg)
    return out


def _labels(column: Sequence[str] | np.ndarray, name: str, source: str, lines: list[int] | None) -> np.ndarray:
    """Targets: numbers if every cell is one (integers where they all are), else text labels."""
    values = np.asarray(column)
    if values.dtype.kind == "b":
        values = values.astype(int)
    if values.dtype.kind not in "biuf":
        cells = [str(c).strip() for c in values.tolist()]
        empty = [i for i, c in enumerate(cells) if c.lower() in MISSING]
        if empty:
            msg = (
                f"target column {name!r} of {source!r} is empty on {_where(empty[0], lines)} "
                f"({len(empty)} row(s) in all); fill in or drop those rows"
            )
            raise DataError(msg)
        if not all(_is_number(c) for c in cells):
            return np.asarray(cells, dtype=str)
        values = np.asarray([float(c) for c in cells])
    if values.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            msg = f"target column {name!r} of {source!r} is not finite on {_where(int(bad[0]), lines)}"
            raise DataError(msg)
        if np.all(values == np.round(values)) and np.abs(values).max() < 2**53:
            values = values.astype(np.int64)
    return values
