"""The package's face: ``import anynet`` loads what every user needs, the rest on first use."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import anynet

ROOT = Path(__file__).resolve().parents[1]


def test_import_anynet_loads_no_plotting_checkpoints_or_training_loop():
    code = (
        "import sys, anynet; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('matplotlib', 'scipy', 'sklearn', 'zipfile', 'torch', 'jax', 'dask', 'cupy') "
        "or m in ('anynet.plot', 'anynet.checkpoints', 'anynet.ensemble', 'anynet.train', 'anynet.cli')))"
    )
    env = os.environ | {"PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    env = {k: v for k, v in env.items() if not k.startswith("ANYNET_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", anynet.__all__)
def test_every_public_name_resolves(name):
    assert getattr(anynet, name) is not None
    assert name in dir(anynet)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match=r"module 'anynet' has no attribute 'Netwrok'"):
        anynet.Netwrok  # noqa: B018
