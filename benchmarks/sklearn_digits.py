"""Digits: scikit-learn's MLPClassifier against anynet.sklearn.MLPClassifier, same configuration, same run.

python benchmarks/sklearn_digits.py [ROW ...]
ROW in sklearn, numpy, torch, jax, torch-cuda, cupy (default: sklearn numpy).
Rows named after a GPU library get the data as that library's arrays on cuda:0 ("arrays follow the data").
"""

import os
import platform
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLP
from sklearn.preprocessing import StandardScaler

from anynet import backend as B
from anynet.sklearn import MLPClassifier as AnyMLP

warnings.simplefilter("ignore", ConvergenceWarning)
X, y = load_digits(return_X_y=True)
X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_tr)
X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
CONFIG = {"hidden_layer_sizes": (100,), "max_iter": 200}  # the rest is scikit-learn's default: relu, adam, batch 200
SEEDS = range(5)


def place(name):
    """(estimator class, extra params, array converter) for a row."""
    if name == "sklearn":
        return SkMLP, {}, lambda a: a
    if name in ("torch-cuda", "cupy"):
        lib = name.split("-")[0]
        native = B.native_device(lib, "cuda:0")
        return AnyMLP, {}, lambda a: B.from_numpy(np.asarray(a), lib, native)
    return AnyMLP, {"backend": name}, lambda a: a


def run(name, seed):
    cls, extra, put = place(name)
    Xtr, ytr, Xte = put(X_tr), put(y_tr), put(X_te)
    clf = cls(random_state=seed, **CONFIG, **extra)
    t0 = time.perf_counter()
    clf.fit(Xtr, ytr)
    fit_s = time.perf_counter() - t0
    pred = clf.predict(Xte)
    assert name in ("sklearn", "numpy", "torch", "jax") or B.backend_of(pred) == name.split("-")[0], type(pred)
    return float(np.mean(B.to_numpy(pred) == y_te)), fit_s, clf.n_iter_


rows = sys.argv[1:] or ["sklearn", "numpy"]
for name in rows:  # warm up: imports, first-call costs, JIT
    run(name, 0)
cpu = platform.processor() or platform.machine()
print(f"machine: {cpu}, {os.cpu_count()} cores; digits train {X_tr.shape}, test {X_te.shape}; seeds {list(SEEDS)}")
print(f"{'row':<12}{'accuracy (mean)':>16}{'fit s (median)':>16}{'epochs (mean)':>15}{'ms/epoch':>10}  accuracies")
results = {name: [] for name in rows}
for seed in SEEDS:  # interleaved, so drifting machine load hits every row alike
    for name in rows:
        results[name].append(run(name, seed))
for name, res in results.items():
    acc, fit_s, it = (np.array([r[i] for r in res], dtype=float) for i in range(3))
    print(
        f"{name:<12}{acc.mean():>16.4f}{np.median(fit_s):>16.2f}{it.mean():>15.1f}"
        f"{1e3 * np.median(fit_s / it):>10.1f}  {np.round(acc, 4).tolist()}"
    )
