"""The README is code: every ```python block runs as pasted, in a fresh interpreter in an empty folder.

A block that needs an optional library or a GPU says so on its first line, ``# needs: sklearn, cuda``,
and is skipped, with that reason, only where the need is absent. Each block runs once, as a user
pastes it: a block that needs torch, jax, dask or cupy in that backend's session (the one that installs
it), every other block in the numpy session.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from anynet import backend as B

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: the libraries a block may need: each is skipped for when it is not installed
LIBRARIES = {
    "sklearn",
    "matplotlib",
    "torch",
    "jax",
    "cupy",
    "dask",
    "distributed",
    "array_api_strict",
    "scipy",
    "onnx",
    "onnxruntime",
    "skl2onnx",
}
#: the backends whose own session runs a block that needs their library; every other block runs in the
#: numpy session (the blocks run as pasted, with no backend named, so on NumPy unless they name one)
HOMES = ("torch", "jax", "dask", "cupy")


def blocks() -> list:
    text = README.read_text(encoding="utf-8")
    found = []
    for match in BLOCK.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        section = re.findall(r"^#+ (.+)$", text[: match.start()], re.MULTILINE)[-1]
        found.append(pytest.param(match.group(1), id=f"line {line} ({section})"))
    return found


def needs_of(code: str) -> set[str]:
    first = code.splitlines()[0] if code.strip() else ""
    match = re.fullmatch(r"# needs: (.+)", first.strip())
    return {need.strip() for need in match.group(1).split(",")} if match else set()


def absent(need: str, needs: set[str]) -> str | None:
    """Why ``need`` is not met here, or None if it is."""
    if need in LIBRARIES:
        return None if importlib.util.find_spec(need) is not None else f"needs {need}, which is not installed"
    if need == "cuda":
        named = sorted(needs & {"torch", "cupy", "jax"}) or ["torch", "cupy", "jax"]
        for name in named:
            try:
                if any(d.startswith("cuda") for d in B.devices(name)):
                    return None
            except B.BackendError:
                continue
        return f"needs a CUDA device for {' or '.join(named)}, and none is present"
    pytest.fail(f"unknown need {need!r} in a README block; expected 'cuda' or one of {sorted(LIBRARIES)}")
    return None


def test_the_readme_has_python_blocks():
    assert len(blocks()) >= 5


@pytest.mark.parametrize("code", blocks())
def test_a_readme_block_runs_as_pasted(code, tmp_path, backend):
    needs = needs_of(code)
    home = next((name for name in HOMES if name in needs), "numpy")
    if backend != home:
        pytest.skip(f"runs as pasted once, in the {home} session (the one that has what it needs)")
    for need in sorted(needs):
        reason = absent(need, needs)
        if reason is not None:
            pytest.skip(reason)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYNET_")}  # a fresh user's shell
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    script = tmp_path / "block.py"
    script.write_text(code, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, f"the block failed:\n{code}\n--- stderr:\n{proc.stderr}"
    assert "Warning" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("code", blocks())
def test_a_readme_block_says_what_it_needs(code):
    """A block that uses an optional library or a GPU is marked, so that the test above skips it only
    for that reason, and a reader sees the need on its first line."""
    needs = needs_of(code)
    imported = set(re.findall(r"^\s*(?:import|from) (\w+)", code, re.MULTILINE))
    assert imported & LIBRARIES <= needs, f"imports {sorted(imported & LIBRARIES)} but its needs are {sorted(needs)}"
    if ".plot(" in code:
        assert "matplotlib" in needs
    if re.search(r"[\"']cuda", code):
        assert "cuda" in needs


def test_the_readme_sends_no_one_to_the_unrelated_package_or_a_private_tracker():
    text = README.read_text(encoding="utf-8")
    commands = re.findall(r"pip install [^\n`]*", "\n".join(re.findall(r"```(?:bash|console)\n(.*?)```", text, re.S)))
    assert commands
    assert not [c for c in commands if "anynet[" in c]
    assert "(issue " not in text
    assert "--index-url https://download.pytorch.org/whl/cpu" in text


def test_the_targets_figures_come_from_the_committed_results():
    """Every ratio in the README's targets table is in the results file its column names."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("### Targets, measured") :]
    rows = [line.split(" | ") for line in table.splitlines() if re.match(r"\| \d \|", line)]
    assert len(rows) == 6
    results = {
        "cpu": (ROOT / "benchmarks/results/RESULTS.md").read_text(encoding="utf-8"),
        "gpu": (ROOT / "benchmarks/results/h100-quick.md").read_text(encoding="utf-8"),
    }
    for row in rows:
        for column, cell in zip(("cpu", "gpu"), row[-2:], strict=True):
            for figure in re.findall(r"\+?\d+\.\d+×?", cell):
                assert figure in results[column], f"{figure} in row {row[1]} is not in the {column} results file"


def test_a_quick_benchmark_run_writes_beside_the_committed_results():
    probe = (
        "import sys; sys.path.insert(0, 'benchmarks'); import run; "
        "print(run.parse(['--quick']).out); print(run.parse([]).out)"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    quick, full = (Path(line) for line in proc.stdout.split())
    assert full == ROOT / "benchmarks" / "results"
    assert quick == full / "quick"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(quick / "RESULTS.md")], cwd=ROOT, check=False)
    assert ignored.returncode == 0, "benchmarks/results/quick/ should be git-ignored"


def test_the_zero_cost_figures_come_from_the_committed_results():
    """Every time and ratio in the README's zero-cost table is in ``benchmarks/results/zero-cost.md``."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Zero cost: anynet against the same job by hand") :]
    section = section[: section.index("\n## ")] if "\n## " in section else section
    rows = [line for line in section.splitlines() if re.match(r"\| (numpy|torch|jax) ", line)]
    assert len(rows) == 6
    results = (ROOT / "benchmarks/results/zero-cost.md").read_text(encoding="utf-8")
    for row in rows:
        for figure in re.findall(r"\d+\.\d+ ?(?:×|ms|s\b)", row):
            assert figure in results, f"{figure!r} in {row!r} is not in benchmarks/results/zero-cost.md"
