"""scikit-learn's own MLP tests, run against anynet's drop-ins.

``sklearn/neural_network/tests/test_mlp.py`` is read from the installed scikit-learn (never a copy
kept here), its one line ``from sklearn.neural_network import MLPClassifier, MLPRegressor`` is
swapped for ``from anynet.sklearn import ...``, and pytest runs the result in a subprocess, with
scikit-learn's own conftest as a plugin (its ``global_random_seed`` fixture) and its strict warnings
(``SKLEARN_WARNINGS_AS_ERRORS=1``). The estimators compute on the backend under test (the
subprocess gets it as ``ANYNET_BACKEND``). Every upstream test passes except the ones listed below,
each deselected by its exact name with the reason.
"""

import importlib.util
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

import anynet

UPSTREAM = "sklearn.neural_network.tests.test_mlp"
IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"

#: upstream tests that read scikit-learn's private attributes, which anynet's estimators do not have
DESELECTED = {
    "test_gradient": "calls scikit-learn's private _loss_grad_lbfgs with its own activation and delta buffers",
    "test_learning_rate_warmstart": "reads scikit-learn's private optimizer object, _optimizer.learning_rate",
    "test_adaptive_learning_rate": "reads scikit-learn's private optimizer object, _optimizer.learning_rate",
}

#: upstream tests that cannot pass on some backends, and why
DESELECTED_ON = {
    "test_sparse_matrices": (
        {"torch", "jax", "dask", "array_api_strict", "cupy"},
        "sparse X trains on the NumPy backend only; the others refuse it with an error that says so",
    ),
}

#: deselection by exact function name (``--deselect`` matches node-id prefixes, so test_fit would
#: take test_fit_anything with it)
CONFTEST = """
import json, os

DESELECT = set(json.loads(os.environ["ANYNET_UPSTREAM_DESELECT"]))


def pytest_collection_modifyitems(config, items):
    drop = [item for item in items if item.originalname in DESELECT]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if item.originalname not in DESELECT]
"""


def upstream_source() -> str:
    spec = importlib.util.find_spec(UPSTREAM)
    if spec is None or spec.origin is None:
        pytest.fail(f"the installed scikit-learn has no {UPSTREAM}; its tests ship with it from 0.x on")
    return Path(spec.origin).read_text()


def deselected_for(backend: str) -> dict[str, str]:
    extra = {name: why for name, (backends, why) in DESELECTED_ON.items() if backend in backends}
    return DESELECTED | extra


def test_the_deselected_tests_exist_upstream():
    # A renamed upstream test would otherwise run, or a stale name would hide nothing: both are noticed here.
    source = upstream_source()
    for name in [*DESELECTED, *DESELECTED_ON]:
        assert f"\ndef {name}(" in source, f"{name} is no longer in scikit-learn's test_mlp.py; update the list"
    assert source.count(IMPORT) == 1, f"scikit-learn's test_mlp.py no longer imports its MLPs as {IMPORT!r}"


@pytest.mark.skip_backend(
    "dask", reason="a Dask epoch builds and computes a task graph: over 12 min here (NumPy: 10 s)"
)
def test_scikit_learns_mlp_tests_pass_with_anynets_estimators(tmp_path, backend, pytestconfig):
    source = upstream_source()
    assert source.count(IMPORT) == 1
    (tmp_path / "test_mlp_anynet.py").write_text(
        source.replace(IMPORT, "from anynet.sklearn import MLPClassifier, MLPRegressor")
    )
    (tmp_path / "conftest.py").write_text(CONFTEST)
    skip = deselected_for(backend)
    root = str(Path(anynet.__file__).resolve().parent.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANYNET_", "PYTEST_"))}
    env |= {
        "ANYNET_BACKEND": backend,
        "ANYNET_UPSTREAM_DESELECT": json.dumps(sorted(skip)),
        "SKLEARN_WARNINGS_AS_ERRORS": "1",
        "PYTHONPATH": os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])]),
    }
    if pytestconfig.getoption("--device"):
        env["ANYNET_DEVICE"] = pytestconfig.getoption("--device")
    if backend == "jax":
        env["JAX_ENABLE_X64"] = "1"  # as this suite's conftest does: float64 data trains in float64
    report = tmp_path / "report.xml"
    args = [sys.executable, "-m", "pytest", "-p", "sklearn.conftest", "-p", "no:cacheprovider", "-q"]
    args += ["--rootdir", str(tmp_path), f"--junitxml={report}", "test_mlp_anynet.py"]
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500)
    assert report.exists(), f"pytest did not run scikit-learn's tests (status {proc.returncode}):\n{proc.stderr}"

    passed, failed, skipped = [], [], []
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("name")
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is not None:
            failed.append(f"{name}: {(bad.get('message') or '').strip().splitlines()[:1]}")
        elif case.find("skipped") is not None:
            skipped.append(name)
        else:
            passed.append(name)
    assert not failed, "scikit-learn's MLP tests failed with anynet's estimators:\n" + "\n".join(failed)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ran = {name.split("[")[0] for name in passed + skipped}
    assert not ran & set(skip), f"deselected tests ran: {sorted(ran & set(skip))}"
    # every other test function of the file ran: none was lost to a collection problem
    upstream = {line[4:].split("(")[0] for line in source.splitlines() if line.startswith("def test_")}
    assert ran == upstream - set(skip), f"not run: {sorted(upstream - set(skip) - ran)}"
