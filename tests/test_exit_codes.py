"""docs/exit-codes.md's table "Every path, checked" is executable: every row's command runs
here and must end with the row's code, in one line of error and no traceback."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CliResult

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "exit-codes.md"


def _rows() -> list[tuple[str, str, int]]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Every path, checked", 1)[1]
    rows = []
    for line in section.splitlines():
        found = re.match(r"^\| (.+?) \| `(cnnprof [^`]+)` \| (\d+) \|$", line)
        if found:
            rows.append((found.group(1), found.group(2), int(found.group(3))))
    return rows


ROWS = _rows()


def test_the_table_covers_every_code() -> None:
    assert len(ROWS) >= 30
    assert {code for _, _, code in ROWS} == {0, 1, 2, 130}


@pytest.mark.parametrize(("situation", "command", "code"), ROWS, ids=[r[0] for r in ROWS])
def test_documented_exit_code(situation: str, command: str, code: int,
                              cli: Callable[..., CliResult],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setitem(os.environ, "COLUMNS", "120")
    result = cli(*shlex.split(command)[1:])
    assert result.code == code, f"{command}: {result.err}"
    assert "Traceback" not in result.out + result.err
    errors = [line for line in result.err.splitlines() if line.startswith("cnnprof: error:")]
    verdict = command.startswith("cnnprof check") and code == 1  # the table says it
    assert len(errors) == (0 if code == 0 or verdict else 1), result.err
    if code == 130:
        assert "interrupted" in errors[0]
