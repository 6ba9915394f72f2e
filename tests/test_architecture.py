"""The layering of docs/architecture.md, enforced: ``lint-imports`` checks the contracts in
pyproject.toml ([tool.importlinter]) so the suite, and with it ``.ci/run``, fails on an
upward import or an import cycle. Two mutation tests show the contracts bite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(root: Path, *options: str) -> subprocess.CompletedProcess[str]:
    # the package analysed is the one under root/src, not whichever cnnprof is installed
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": os.pathsep.join(
        [str(root / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    script = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"
    return subprocess.run(
        [sys.executable, "-c", script, "--no-cache", "--no-logo", *options, "pyproject.toml"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_import_contracts_hold() -> None:
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
    for contract in ("Layers look down only", "render and counting know nothing",
                     "No two modules"):
        assert contract in done.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    # report (the bottom data layer) reaching up to the zoo
    ("report.py", "from cnnprof import zoo as _up  # noqa", "layers"),
    # render reaching for the timing package the forbidden contract keeps it from
    ("render/csv.py", "from cnnprof.timing import stats as _up  # noqa", "render-counting-pure"),
    # structure is imported by engine: importing engine back closes a cycle
    ("trace/structure.py", "from cnnprof.trace import engine as _cycle  # noqa", "acyclic"),
])
def test_a_bad_import_breaks_a_contract(tmp_path: Path, module: str, line: str,
                                        contract: str) -> None:
    shutil.copytree(ROOT / "src" / "cnnprof", tmp_path / "src" / "cnnprof",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "src" / "cnnprof" / module
    assert _lint_imports(tmp_path, "--contract", contract).returncode == 0  # kept unchanged…
    target.write_text(target.read_text() + f"\n{line}\n")
    done = _lint_imports(tmp_path, "--contract", contract)
    assert done.returncode != 0, done.stdout  # …and broken by the one bad import
    assert "0 kept, 1 broken" in done.stdout, done.stdout


def test_no_contract_carries_an_exception() -> None:
    """Acceptance 2 of issue 20 holds strictly: no import is excused. The report's display
    methods reach the renderers through the Display the package root wires in, not by
    importing up (cnnprof/__init__.py)."""
    text = (ROOT / "pyproject.toml").read_text()
    section = text[text.index("[tool.importlinter]"):]
    assert "ignore_imports" not in section


def test_a_report_loaded_from_the_bottom_layer_still_shows_itself() -> None:
    """Whatever module a user imports the report from, the display is wired: importing any
    cnnprof module runs the package root first. Checked in a fresh process that imports only
    ``cnnprof.report`` (no api, no render), and without importing torch."""
    code = (
        "import sys\n"
        "from cnnprof.report import Report\n"
        "r = Report.load(sys.argv[1])\n"
        "assert 'torch' not in sys.modules\n"
        "print(repr(r)); print(r._repr_html_()[:28])\n"
    )
    report = ROOT / "reports" / "lenet.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-c", code, str(report)], capture_output=True,
                          text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("<cnnprof.Report lenet (LeNet) · input 1x1x28x28")
    assert '<div class="cnnprof-report">' in done.stdout
