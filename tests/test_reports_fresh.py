"""``reports/`` is what ``python -m cnnprof.reports_gen reports/`` writes today.

When this fails, the counting or the renderers changed: regenerate with that command,
look at the diff, and commit it with the change that caused it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cnnprof.reports_gen import COMMAND, TORCHVISION, generate, model_names

REPORTS = Path(__file__).resolve().parent.parent / "reports"
_SVG = re.compile(r"<svg\b.*?</svg>", re.S)


def _comparable(path: Path, text: str) -> str:
    # The chart's SVG path data is matplotlib's (it moves between matplotlib releases);
    # the numbers it draws are in the JSON and in the HTML table, which are compared
    # exactly. Its presence is still checked.
    if path.suffix == ".html":
        assert text.count("<svg") == 1, f"{path.name}: chart missing"
        return _SVG.sub("<svg>(chart)</svg>", text)
    return text


@pytest.fixture(scope="module")
def fresh() -> dict[Path, str]:
    return generate(REPORTS)


def test_documented_command_is_in_readme() -> None:
    readme = (REPORTS / "README.md").read_text(encoding="utf-8")
    assert COMMAND in readme


def test_reports_cover_the_seed_and_torchvision_models() -> None:
    from cnnprof.zoo import classic

    names = model_names()
    assert set(classic.ENTRIES) <= set(names) and set(TORCHVISION) <= set(names)


def test_reports_are_fresh(fresh: dict[Path, str]) -> None:
    committed = {p for p in REPORTS.iterdir() if p.is_file() and p.name != ".gitattributes"}
    missing = sorted(p.name for p in fresh if p not in committed)
    extra = sorted(p.name for p in committed if p not in fresh)
    assert not missing and not extra, (
        f"reports/ is stale (missing {missing}, extra {extra}); run: {COMMAND}")
    stale = [p.name for p, text in fresh.items()
             if _comparable(p, p.read_text(encoding="utf-8")) != _comparable(p, text)]
    assert not stale, f"reports/ is stale ({', '.join(sorted(stale))}); run: {COMMAND}"


def test_reports_carry_no_machine_specifics(fresh: dict[Path, str]) -> None:
    for path, text in fresh.items():
        if path.suffix != ".json":
            continue
        data = json.loads(text)
        assert data["meta"] == {"command": COMMAND}, path.name
        assert data["device"] == "meta" and "timing" not in data
        assert "traceback" not in data.get("error", {})
        assert "/home/" not in text and "/tmp/" not in text and "/work/" not in text
