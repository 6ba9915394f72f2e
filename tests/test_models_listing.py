"""``cnnprof models`` lists from a static listing (cnnprof/listing_data.py) that must stay
what the zoo resolves: same names, sources, tasks, default inputs and descriptions."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cnnprof import listing

SRC = Path(__file__).parents[1] / "src"


def test_static_listing_is_what_the_zoo_resolves() -> None:
    static = listing.static_rows()
    if static is None:
        pytest.skip(f"listing made with torchvision {listing.installed_torchvision()} is not "
                    "the installed one: regenerate with python -m cnnprof.listing")
    assert static == listing.live_rows()


def test_listed_classic_models_build_with_their_default_input() -> None:
    from cnnprof.api import profile
    from cnnprof.errors import ModelFailedError

    rows = [r for r in listing.list_models() if r.source == "classic"]
    assert len(rows) >= 10
    for row in rows:
        try:
            report = profile(row.name)
        except ModelFailedError:
            assert "fails" in row.description  # the one that fails on purpose says so
            continue
        assert ", ".join(str(i.shape[1:]) for i in report.inputs).replace("(", "").replace(
            ")", "").replace(", ", "x").rstrip(",") == row.default_input.replace(",", "")
    resnet18 = next(r for r in listing.list_models("resnet18") if r.name == "resnet18")
    assert profile("resnet18").inputs[0].shape == (1, *map(int, resnet18.default_input.split("x")))


def test_descriptions_speak_to_a_newcomer() -> None:
    for row in listing.list_models():
        assert "seeds/" not in row.description and "on purpose" not in row.description
        assert "torchstat post" not in row.description and "FAILS" not in row.description


def test_models_imports_neither_torch_nor_rich() -> None:
    code = ("import sys; from cnnprof.cli.app import main; main(['models']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'rich')))")
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "100"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.rstrip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_models_table_fits(width: int, cli: Callable[..., Any]) -> None:
    result = cli("models", "--width", str(width))
    assert result.code == 0
    lines = result.out.splitlines()
    assert max(len(line) for line in lines) <= width
    names = {r.name for r in listing.list_models()}
    assert names <= {line.split()[0] for line in lines if line.strip()}  # names whole
    if width < 120:
        assert "Source and Task not shown at this width" in result.out


def test_models_refuses_unknown_formats(cli: Callable[..., Any]) -> None:
    result = cli("models", "-f", "yaml")
    assert result.code == 2 and "unknown --format 'yaml'" in result.err
    out = cli("models", "-f", "json", "--filter", "alexnet_").out
    assert out.count('"name"') == 5 and '"alexnet_lrn"' in out
