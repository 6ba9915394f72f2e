"""Every example in the README and the Python docs runs, so none can rot (issue 16).

* ```python blocks: written as doctests (``>>>``) they are run as one doctest per file
  (names carry over between blocks) and their output must match; plain blocks are executed.
* ```bash blocks: each ``cnnprof ...`` command runs through the CLI and must succeed; an
  unlabelled block right after it is its output, whose lines ("..." elides) must appear in
  order. Commands that cannot run inside a test are listed in ``NOT_RUN`` with the reason.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "docs/api.md", "docs/coming-from.md", "docs/timing.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)

#: shell commands the test does not run, and why
NOT_RUN = {
    "pip": "installs: .ci/run installs the project from a clean clone as the README says",
    "python -m pytest": "the test command itself: .ci/run runs exactly it",
}


def _blocks(name: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(
        (ROOT / name).read_text(encoding="utf-8"))]


def _python_docs() -> list[str]:
    return [name for name in DOCS
            if (ROOT / name).exists() and any(lang == "python" for lang, _ in _blocks(name))]


#: runs one document's examples in a fresh interpreter: the peers' examples patch torch and
#: module classes process-wide (torchstat never restores ``__call__``), which must not leak
#: into the other tests of this worker
_RUNNER = """
import doctest, sys
name, blocks = sys.argv[1], sys.stdin.read().split("\\0")
for body in blocks:
    if not body.lstrip().startswith(">>>"):
        exec(compile(body, name + " example", "exec"), {"__name__": "__readme__"})
tests = "\\n".join(b for b in blocks if b.lstrip().startswith(">>>"))
if tests:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    test = doctest.DocTestParser().get_doctest(tests, {"__name__": "__readme__"}, name, name, 0)
    runner.run(test, out=sys.stderr.write)
    result = runner.summarize(verbose=False)
    print(result.attempted, result.failed)
    sys.exit(1 if result.failed else 0)
print(0, 0)
"""


@pytest.mark.parametrize("name", _python_docs())
def test_python_examples(name: str) -> None:
    code = [body for lang, body in _blocks(name) if lang == "python"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-c", _RUNNER, name], input="\0".join(code),
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=900,
                          check=False)
    assert done.returncode == 0, done.stderr[-8000:]
    attempted, failed = (int(v) for v in done.stdout.split()[-2:])
    assert failed == 0 and attempted >= sum(body.count(">>>") for body in code
                                            if body.lstrip().startswith(">>>"))


def _shell_examples() -> list[tuple[str, str, str | None]]:
    """(document, command, the output block shown after it or None)."""
    out: list[tuple[str, str, str | None]] = []
    for name in DOCS:
        if not (ROOT / name).exists():
            continue
        blocks = _blocks(name)
        for index, (lang, body) in enumerate(blocks):
            if lang not in ("bash", "sh", "shell", "console"):
                continue
            following = blocks[index + 1] if index + 1 < len(blocks) else None
            shown = following[1] if following is not None and following[0] == "" else None
            commands = [part.strip() for line in body.splitlines()
                        if line.strip() and not line.lstrip().startswith("#")
                        for part in line.split("#", 1)[0].split("&&")]
            for position, command in enumerate(commands):
                last = position == len(commands) - 1
                out.append((name, command, shown if last else None))
    return out


def test_every_shell_command_is_run_or_says_why_not() -> None:
    examples = _shell_examples()
    assert any(command.startswith("cnnprof ") for _, command, _ in examples)
    for name, command, _ in examples:
        runnable = command.startswith("cnnprof ")
        skipped = any(command.startswith(prefix) for prefix in NOT_RUN)
        assert runnable or skipped, f"{name}: {command!r} is neither run nor in NOT_RUN"


@pytest.mark.parametrize(("name", "command", "shown"),
                         [e for e in _shell_examples() if e[1].startswith("cnnprof ")],
                         ids=lambda v: v if isinstance(v, str) and v.startswith("cnnprof")
                         else "")
def test_shell_examples(name: str, command: str, shown: str | None,
                        capsys: pytest.CaptureFixture[str],
                        monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnprof.cli.app import main

    # the outputs shown were printed in a 120-column terminal; pin it (a worker may inherit
    # another COLUMNS, and a pipe without one gets 200)
    monkeypatch.setenv("COLUMNS", "120")
    code = main(shlex.split(command)[1:])
    out = capsys.readouterr()
    assert code == 0, f"{name}: {command}\n{out.err}"
    if shown is None:
        return
    got = [line.strip() for line in out.out.splitlines()]
    position = 0
    for line in (line.strip() for line in shown.splitlines()):
        if not line or line == "...":
            continue
        assert line in got[position:], f"{name}: {command}: {line!r} not in the output:\n" \
                                       + out.out
        position = got.index(line, position) + 1
