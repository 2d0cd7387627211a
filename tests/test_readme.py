"""The README is code: every ```python block of README.md and docs/*.md runs as pasted, in a fresh
interpreter in an empty folder, with only the optional libraries it names.

A block that needs an optional library or a GPU says so on its first line, ``# needs: sklearn, cuda``,
and is skipped, with that reason, only where the need is absent. Every optional library a block does
not name is hidden from it, even where it is installed: an import of one by the block, or by anynet on
the block's behalf, fails as if it were not installed. The libraries' imports of each other go through
(scikit-learn imports SciPy), and naming a library names what its install brings (``sklearn``: SciPy;
``skl2onnx``: ONNX and scikit-learn; ``distributed``: Dask). Each block runs once, as a user pastes
it: a block that needs torch, jax, dask or cupy in that backend's session (the one that installs it),
every other block in the numpy session.
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
#: the pages whose blocks run: the README, then docs/ in name order
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
#: the libraries a block may need: each is skipped for when it is not installed, and hidden when not named
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
#: what installing a library brings besides itself, so that anynet may import it for a block that names it
BRINGS = {"sklearn": {"scipy"}, "skl2onnx": {"onnx", "sklearn", "scipy"}, "distributed": {"dask"}}
#: the backends whose own session runs a block that needs their library; every other block runs in the
#: numpy session (the blocks run as pasted, with no backend named, so on NumPy unless they name one)
HOMES = ("torch", "jax", "dask", "cupy")

#: ``sitecustomize.py`` for a block's interpreter (and the processes it starts, such as Dask's workers):
#: an import of a hidden library by the block (``__main__``) or by anynet fails as if it were absent.
#: Both ways in are watched, the import statement and ``importlib.import_module``, so that a library
#: already imported by another one is still refused to the block.
PRELUDE = """\
import builtins
import importlib
import sys

HIDDEN_FROM_BLOCK = {block!r}
HIDDEN_FROM_ANYNET = {anynet!r}


def _check(name, importer):
    top = name.partition(".")[0]
    if importer in ("__main__", "__mp_main__"):
        hidden = top in HIDDEN_FROM_BLOCK
    elif importer == "anynet" or importer.startswith("anynet."):
        hidden = top in HIDDEN_FROM_ANYNET
    else:
        return
    if hidden:
        msg = f"No module named {{top!r}} (the README test hides it: the block's '# needs:' line does not name it)"
        raise ModuleNotFoundError(msg, name=top)


_import = builtins.__import__
_import_module = importlib.import_module


def _watched_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0:
        _check(name, (globals or {{}}).get("__name__") or "")
    return _import(name, globals, locals, fromlist, level)


def _watched_import_module(name, package=None):
    if not name.startswith("."):
        _check(name, sys._getframe(1).f_globals.get("__name__") or "")
    return _import_module(name, package)


builtins.__import__ = _watched_import
importlib.import_module = _watched_import_module
"""


def blocks(pages: list[Path] = PAGES) -> list:
    found = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            before = FENCED.sub("", text[: match.start()])  # a comment in a block is no heading
            headings = re.findall(r"^#+ (.+)$", before, re.MULTILINE)
            section = headings[-1] if headings else "top"
            name = page.relative_to(ROOT).as_posix()
            found.append(pytest.param(match.group(1), id=f"{name} line {line} ({section})"))
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
    pytest.fail(f"unknown need {need!r} in a block; expected 'cuda' or one of {sorted(LIBRARIES)}")
    return None


def run_block(code: str, needs: set[str], folder: Path) -> subprocess.CompletedProcess:
    """Run ``code`` as ``python block.py`` in ``folder/work``, the libraries ``needs`` does not name hidden."""
    brought = set().union(needs, *(BRINGS.get(need, set()) for need in needs))
    prelude = folder / "prelude"
    prelude.mkdir()
    (prelude / "sitecustomize.py").write_text(
        PRELUDE.format(block=sorted(LIBRARIES - needs), anynet=sorted(LIBRARIES - brought)), encoding="utf-8"
    )
    work = folder / "work"
    work.mkdir()
    (work / "block.py").write_text(code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYNET_")}  # a fresh user's shell
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(prelude), str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "block.py"], cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_the_readme_has_python_blocks():
    assert len(blocks([README])) >= 5


@pytest.mark.parametrize("code", blocks())
def test_a_block_runs_as_pasted(code, tmp_path, backend):
    needs = needs_of(code)
    home = next((name for name in HOMES if name in needs), "numpy")
    if backend != home:
        pytest.skip(f"runs as pasted once, in the {home} session (the one that has what it needs)")
    for need in sorted(needs):
        reason = absent(need, needs)
        if reason is not None:
            pytest.skip(reason)
    proc = run_block(code, needs, tmp_path)
    assert proc.returncode == 0, f"the block failed:\n{code}\n--- stderr:\n{proc.stderr}"
    assert "Warning" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("code", blocks())
def test_a_block_says_what_it_needs(code):
    """A block that uses an optional library or a GPU is marked, so that the test above skips it only
    for that reason, and a reader sees the need on its first line."""
    needs = needs_of(code)
    imported = set(re.findall(r"^\s*(?:import|from) (\w+)", code, re.MULTILINE))
    assert imported & LIBRARIES <= needs, f"imports {sorted(imported & LIBRARIES)} but its needs are {sorted(needs)}"
    if ".plot(" in code or re.search(r"\bplot\b", " ".join(re.findall(r"^from anynet import .+$", code, re.M))):
        assert "matplotlib" in needs
    if "anynet.sklearn" in code:
        assert "sklearn" in needs
    if "anynet.onnx" in code:
        assert "onnx" in needs
    if re.search(r"[\"']cuda", code):
        assert "cuda" in needs


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="needs scikit-learn, to hide it")
@pytest.mark.parametrize(
    ("code", "needs", "refused"),
    [
        ("import sklearn", set(), "sklearn"),  # the block's own import
        ("import anynet.sklearn", set(), "scipy|sklearn"),  # anynet's imports, for the block
        ("import anynet.sklearn", {"sklearn"}, None),  # anynet may import SciPy: scikit-learn brings it
        ("import sklearn.datasets\nimport scipy", {"sklearn"}, "scipy"),  # imported already, still refused
        ("import sklearn.datasets\nimport importlib\nimportlib.import_module('scipy')", {"sklearn"}, "scipy"),
    ],
)
def test_a_block_cannot_import_what_it_does_not_name(code, needs, refused, tmp_path):
    proc = run_block(code, needs, tmp_path)
    if refused is None:
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode != 0
        assert re.search(rf"No module named '({refused})' \(the README test hides it", proc.stderr), proc.stderr


def test_the_pages_send_no_one_to_the_unrelated_package_or_a_private_tracker():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        shell = "\n".join(re.findall(r"```(?:bash|console)\n(.*?)```", text, re.S))
        commands = re.findall(r"pip install [^\n`]*", shell)
        assert not [c for c in commands if "anynet[" in c], page.name
        assert "(issue " not in text, page.name
    assert re.findall(r"pip install [^\n`]*", README.read_text(encoding="utf-8"))
    assert "--index-url https://download.pytorch.org/whl/cpu" in README.read_text(encoding="utf-8")


#: words from the project's own work that mean nothing to a reader
INTERNAL = re.compile(
    r"issue \d|issue's|the issue|\blent\b|development machine|this 2-core machine|(?:the )?machine is shared"
    r"|shared machine|work session",
    re.IGNORECASE,
)


@pytest.mark.parametrize("page", [p for p in PAGES if p.name != "pictures.md"], ids=lambda p: p.name)
def test_the_pages_speak_to_a_reader_not_to_the_team(page):
    """docs/pictures.md is left out: ``docs/make_pictures.py`` writes it."""
    found = INTERNAL.findall(page.read_text(encoding="utf-8"))
    assert not found, f"{page.name}: {found}"


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCED.sub("", page.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", text, re.M):
        slug = _slug(heading)
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _links(page: Path) -> list[str]:
    text = FENCED.sub("", page.read_text(encoding="utf-8"))
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_pages_links_lead_somewhere(page):
    """Every link to a file of the repository names one that exists, and every #anchor a heading there."""
    for link in _links(page):
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{page.name} links to {link}, which does not exist"
        if anchor:
            assert anchor in _anchors(target), f"{page.name} links to {link}: no such heading"


def test_the_readme_leads_with_what_a_newcomer_needs():
    """The order of the README's sections: what it is, the two commands, the library, the command line,
    the backends, errors; the rest after."""
    text = README.read_text(encoding="utf-8")
    sections = re.findall(r"^## (.+)$", FENCED.sub("", text), re.M)
    assert sections[:7] == [
        "Contents",
        "Two commands",
        "The seed, as a library",
        "The command line on your own data",
        "Backends and devices",
        "When something is wrong",
        "Going further",
    ]
    assert "python3 -m pip install nox && python3 -m nox\n" in text  # .ci/run runs exactly this
    assert text.index("unrelated project") < text.index("## The seed, as a library")


RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs"


def _results(*paths: Path) -> str:
    """The results files' text, with ``1.04x`` read as ``1.04×`` (the GPU reports write an x)."""
    return "\n".join(re.sub(r"(\d)x\b", "\\1×", p.read_text(encoding="utf-8")) for p in paths)


def _section(page: Path, heading: str) -> str:
    text = page.read_text(encoding="utf-8")
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end > 0 else len(text)]


def test_the_targets_figures_come_from_the_committed_results():
    """Every figure in the targets table is in the results file of its column: the full CPU run's, the
    H100 run's, and in the last column the file the cell links to."""
    page = DOCS / "benchmarks.md"
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in _section(page, "## Targets, measured").splitlines()
        if re.match(r"\| \d \|", line)
    ]
    assert len(rows) == 6
    columns = {2: [RESULTS / "RESULTS.md"], 3: [RESULTS / "h100-quick.md"]}
    for row in rows:
        assert len(row) == 5, row
        for column, cell in enumerate(row[2:], start=2):
            files = columns.get(column) or [
                (page.parent / link).resolve() for link in re.findall(r"\]\(([^)]+)\)", cell)
            ]
            figures = re.findall(r"\+?\d+\.\d+×?", cell)
            assert files or not figures, f"row {row[0]}: {cell!r} names no results file"
            results = _results(*files)
            for figure in figures:
                assert figure in results, f"{figure} in row {row[0]} is not in {[f.name for f in files]}"


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


@pytest.mark.parametrize(
    ("page", "heading", "row", "count", "results"),
    [
        (
            "benchmarks.md",
            "## Zero cost: anynet against the same job by hand",
            r"\| (numpy|torch|jax) \|",
            6,
            "zero-cost.md",
        ),
        ("ensembles.md", "## How much it saves", r"\| (numpy|torch|jax) \|", 3, "ensemble.md"),
        ("sklearn.md", "## A search that trains", r"\| (breast cancer|digits), ", 4, "search.md"),
    ],
    ids=["zero-cost", "ensembles", "search"],
)
def test_a_tables_figures_come_from_its_committed_results(page, heading, row, count, results):
    """Every time and ratio in the table is in the results file it quotes."""
    rows = [line for line in _section(DOCS / page, heading).splitlines() if re.match(row, line)]
    assert len(rows) == count
    text = _results(RESULTS / results)
    for line in rows:
        for figure in re.findall(r"\d+\.\d+ ?(?:×|ms|s\b)", line):
            assert figure in text, f"{figure!r} in {line!r} is not in benchmarks/results/{results}"


def test_the_gpu_figures_come_from_the_gpu_reports():
    """Every figure on docs/gpu.md, and in the README's first paragraph, is in a GPU report."""
    reports = _results(*sorted(RESULTS.glob("gpu-2026-12-04*.md")), RESULTS / "GPU.md")
    intro = README.read_text(encoding="utf-8").split("\n\n")[1]
    for text in ((DOCS / "gpu.md").read_text(encoding="utf-8"), intro):
        for figure in re.findall(r"\d+\.\d+×?|\d+%|\d+ s\b", text):
            assert figure in reports, f"{figure!r} is in no GPU report"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_a_paragraph_that_cites_results_quotes_them(page):
    """A paragraph (or list item) that links results files under benchmarks/results/ quotes only figures
    that are in them; tables are checked above, column by column."""
    text = FENCED.sub("", page.read_text(encoding="utf-8"))
    for paragraph in re.split(r"\n\s*\n|\n(?=- )", text):
        if paragraph.lstrip().startswith("|"):
            continue
        links = [link.partition("#")[0] for link in re.findall(r"\]\(([^)\s]+)\)", paragraph)]
        files = [(page.parent / link).resolve() for link in links if re.search(r"benchmarks/results/[^/]+\.md$", link)]
        if files:
            results = _results(*files)
            missing = [f for f in re.findall(r"\d+\.\d+×?", paragraph) if f not in results]
            assert not missing, f"{page.name}: {missing} are not in {[f.name for f in files]}:\n{paragraph}"
