"""examples/quickstart.ipynb runs from top to bottom in a real Jupyter kernel, and the report
it displays is the HTML table (issue 16)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"


def test_quickstart_notebook_executes_and_shows_the_html_table(
        monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    # the kernel is a new process: it must import this checkout's cnnprof
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        "commit the notebook without outputs"
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error

    outputs = [out for cell in notebook.cells if cell.cell_type == "code"
               for out in cell.outputs]
    html = [out["data"]["text/html"] for out in outputs
            if out.get("output_type") == "execute_result" and "text/html" in out.get("data", {})]
    # the report's own table, then the two DataFrames
    assert any('<div class="cnnprof-report">' in h and "<table" in h and "layer4.1.conv2" in h
               for h in html)
    assert sum("<table" in h for h in html) >= 3
    text = "".join(out.get("text", "") for out in outputs if out.get("output_type") == "stream")
    assert "<cnnprof.Report resnet18 (ResNet)" in text and "conv1: median" in text
    assert any("image/png" in out.get("data", {}) for out in outputs)  # the plot
