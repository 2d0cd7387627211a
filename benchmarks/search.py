"""A hyperparameter search trained as stacks: ``anynet.sklearn.MLPSearchCV`` against ``GridSearchCV``.

    python benchmarks/search.py [--quick] [--jobs breast_cancer,digits] [--backends numpy,torch]

Both searches run the same grid (3 ``learning_rate_init`` × 3 ``alpha`` × 3 ``random_state``) with
5-fold cross-validation, 135 fits, over ``anynet.sklearn.MLPClassifier(backend=...)``, the same
backend on both sides; ``GridSearchCV`` with ``n_jobs=1`` fits them one after another. Issue 11's
targets: on breast-cancer (standardised,
``hidden_layer_sizes=(16,)``, the estimator's defaults otherwise) the search in at most 0.2× the time
of ``GridSearchCV``, with the same best parameters; on digits (64-32-10) stacking gains little on a
2-core CPU where the arithmetic already keeps it busy: measured and reported. The digits fits run 20
epochs (``max_iter=20``) on both sides, so that the one-after-another side takes a minute, not ten.

A full run writes ``benchmarks/results/search.md`` and ``search.json``; ``--quick`` (a 2 × 1 × 1 grid,
3 folds) writes to ``benchmarks/results/quick/``, which git ignores.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import fmt_time, log, table, write_results  # noqa: E402

TARGET = 0.2


def jobs(quick: bool) -> dict:
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.preprocessing import StandardScaler

    grid = {"learning_rate_init": [1e-3, 3e-3, 1e-2], "alpha": [1e-4, 1e-2, 1.0], "random_state": [0, 1, 2]}
    if quick:
        grid = {"learning_rate_init": [1e-3, 1e-2], "alpha": [1e-4], "random_state": [0]}
    Xb, yb = load_breast_cancer(return_X_y=True)
    Xd, yd = load_digits(return_X_y=True)
    return {
        "breast_cancer": {
            "data": (StandardScaler().fit_transform(Xb), yb),
            "estimator": {"hidden_layer_sizes": (16,)},
            "grid": grid,
            "what": "breast cancer (569 × 30, standardised), 30-16-1, adam, batch 200, up to 200 epochs",
            "target": TARGET,
        },
        "digits": {
            "data": (Xd / 16.0, yd),
            "estimator": {"hidden_layer_sizes": (32,), "max_iter": 20},
            "grid": grid,
            "what": "digits (1797 × 64, scaled to [0, 1]), 64-32-10, adam, batch 200, 20 epochs",
            "target": None,
        },
    }


def run(job: dict, cv: int, backend: str) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV

    from anynet.sklearn import MLPClassifier, MLPSearchCV

    X, y = job["data"]
    est = MLPClassifier(**job["estimator"], backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm = MLPClassifier(**(job["estimator"] | {"max_iter": 2}), backend=backend)
        MLPSearchCV(warm, {"alpha": [1e-4]}, cv=2).fit(X, y)  # warm-up: imports, caches
        t0 = time.perf_counter()
        ours = MLPSearchCV(est, job["grid"], cv=cv).fit(X, y)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        theirs = GridSearchCV(est, job["grid"], cv=cv, n_jobs=1).fit(X, y)
        t_theirs = time.perf_counter() - t0
    diff = np.abs(ours.cv_results_["mean_test_score"] - theirs.cv_results_["mean_test_score"])
    fits = len(ours.cv_results_["params"]) * cv
    refit = ours.refit_time_ + theirs.refit_time_
    return {
        "fits": fits,
        "stacks": [(s["fits"], s["stacked"]) for s in ours.stacks_],
        "search_s": t_ours,
        "gridsearch_s": t_theirs,
        "ratio": t_ours / t_theirs,
        "refit_s": refit / 2,
        "same_best": ours.best_params_ == theirs.best_params_,
        "best_params": {k: float(v) if isinstance(v, float) else v for k, v in ours.best_params_.items()},
        "best_score": float(ours.best_score_),
        "max_score_diff": float(diff.max()),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run: a 2-candidate grid, 3 folds")
    p.add_argument("--jobs", default="breast_cancer,digits", help="comma list of jobs")
    p.add_argument("--backends", default="numpy", help="comma list of backends, each on both sides")
    p.add_argument("--out", type=Path, default=None, help="results folder (default: results/, --quick: results/quick/)")
    args = p.parse_args(argv)
    out = args.out or (HERE / "results" / ("quick" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    cv = 3 if args.quick else 5
    table_rows, results, verdicts = [], {}, []
    available = jobs(args.quick)
    whats = {}
    for backend, name in [(b, j) for b in args.backends.split(",") for j in args.jobs.split(",")]:
        job = available[name]
        log(f"{name} on {backend}: {job['what']}")
        r = run(job, cv, backend)
        whats[name] = job["what"]
        results[f"{name}/{backend}"] = r | {"what": job["what"], "backend": backend}
        table_rows.append(
            [
                name,
                backend,
                str(r["fits"]),
                fmt_time(r["search_s"]),
                fmt_time(r["gridsearch_s"]),
                f"{r['ratio']:.2f}×",
                "yes" if r["same_best"] else "no",
                f"{r['max_score_diff']:.1e}",
            ]
        )
        if job["target"] is not None:
            met = r["ratio"] <= job["target"] and r["same_best"]
            verdicts.append(
                f"{name} on {backend}: {r['ratio']:.2f}× GridSearchCV's time (target ≤ {job['target']}×): "
                f"{'met' if met else 'NOT met'}; same best parameters: {r['same_best']}"
            )
        else:
            verdicts.append(
                f"{name} on {backend}: {r['ratio']:.2f}× GridSearchCV's time (measured and reported, no target)"
            )
    head = ["job", "backend", "fits", "MLPSearchCV", "GridSearchCV (n_jobs=1)", "ratio", "same best_params_"]
    head.append("max |Δ mean score|")
    text = write_results(
        out,
        "search",
        "A search trained as stacks: MLPSearchCV against GridSearchCV",
        [
            f"Same estimator, grid and {cv}-fold split on both sides; both refit the best candidate on all rows"
            " (included in the times). One run each.",
            "" if not args.quick else "A --quick smoke run: too little work for the ratios to mean much.",
        ],
        [table(head, table_rows), "", *[f"- {k}: {w}" for k, w in whats.items()], *[f"- {v}" for v in verdicts]],
        {"cv": cv, "results": results},
    )
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
