"""Start-up: a command imports only what its model needs, and a small model in a fresh process
does not pay the meta device's start-up (sympy and torch._dynamo, 1-2 s)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cnnprof

#: packages a seed model, a user file or a ``module:factory`` spec must not import on their own
HEAVY = ("torchvision", "timm", "transformers", "matplotlib", "pandas", "thop", "fvcore",
         "torchstat")
#: what the first meta kernel imports (cnnprof.device_choice.meta_started)
META_START = ("sympy", "torch._dynamo")
#: argument parsing that cost ~0.3 s per command (issue 21: typer 0.29 coerced option values
#: through pydantic); the CLI is plain click, and no command may bring them back
CLI_PARSING = ("typer", "pydantic")
#: Rich draws the terminal's table; ``-f json`` needs none of it
JSON_NEEDS_NO = (*CLI_PARSING, "rich")

MODEL_FILE = """
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 26 * 26, 10)

    def forward(self, x):
        return self.fc(self.conv(x).relu().flatten(1))

def small(width=8):
    return nn.Sequential(nn.Linear(16, width), nn.ReLU(), nn.Linear(width, 2))
"""

#: runs ``cnnprof ARGS -f json`` through the CLI's own entry point, one spec after the other
#: in one fresh process, and says after each which heavy modules are loaded
RUNNER = textwrap.dedent("""
    import contextlib, io, json, sys
    from cnnprof.cli.app import main

    heavy = {heavy!r}
    for argv in {commands!r}:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                main([*argv, "-f", "json"])
            except SystemExit as exc:
                assert not exc.code, exc.code
        report = json.loads(out.getvalue())
        print(json.dumps({{"spec": argv[0], "device": report["device"],
                          "macs": report["totals"]["macs"],
                          "params": report["totals"]["params"],
                          "loaded": [m for m in heavy if m in sys.modules]}}))
""")


def _run(commands: list[list[str]], cwd: Path, extra_path: Path | None = None) -> list[dict]:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(extra_path), *filter(None, [env.get("PYTHONPATH")])])
    src = str(Path(cnnprof.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    code = RUNNER.format(heavy=HEAVY + META_START + JSON_NEEDS_NO, commands=commands)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_small_specs_import_nothing_heavy_and_count_on_the_cpu(tmp_path: Path) -> None:
    """lenet, a user file and a ``module:factory`` spec in one fresh process: none imports
    torchvision (nor timm, transformers, ..., nor typer, pydantic or Rich), none starts the
    meta device, and each counts what the meta device counts. A spec too big for a quick CPU
    forward then counts on meta."""
    (tmp_path / "mynets.py").write_text(MODEL_FILE)
    commands = [["lenet"], ["mynets.py:Net", "--input", "1x28x28"],
                ["mynets:small", "--input", "16", "--arg", "width=32"],
                ["alexnet_seed"]]
    rows = _run(commands, tmp_path, extra_path=tmp_path)
    assert [r["spec"] for r in rows] == [c[0] for c in commands]
    for row in rows[:3]:
        assert row["device"] == "cpu", row
        assert row["loaded"] == [], row
    # the same counts as on meta (this test process has started meta: torchvision)
    lenet = cnnprof.profile("lenet", device="meta")
    assert (rows[0]["macs"], rows[0]["params"]) == (lenet.totals.macs, lenet.totals.params)
    assert rows[1]["macs"] == 4 * 26 * 26 * 9 + 4 * 26 * 26 * 10  # conv 3x3 + linear
    assert rows[2]["macs"] == 16 * 32 + 32 * 2
    big = rows[3]  # 57 M parameters: more than a quick CPU forward, meta needs no memory
    assert big["device"] == "meta"
    assert big["params"] == cnnprof.profile("alexnet_seed", device="meta").totals.params
    assert set(big["loaded"]) == set(META_START)  # meta started, torchvision still not loaded


def test_a_user_file_that_imports_torchvision_counts_on_meta(tmp_path: Path) -> None:
    """Importing torchvision starts meta (it imports sympy and torch._dynamo): the count then
    runs there, as it would for any spec in a process that has it."""
    (tmp_path / "tv.py").write_text(
        "import torchvision\n"
        "def tiny():\n"
        "    return torchvision.ops.MLP(8, [4, 2])\n")
    (row,) = _run([["tv.py:tiny", "--input", "8"]], tmp_path)
    assert row["device"] == "meta"
    assert "torchvision" in row["loaded"]
    assert row["macs"] == 8 * 4 + 4 * 2


@pytest.mark.parametrize("argv", [
    ["--help"], ["profile", "--help"], ["alexnet", "--help"], ["models", "--help"],
    ["check", "--help"], ["diff", "--help"], ["crosscheck", "--help"], ["shapes", "--help"],
    ["inputs", "-h"], ["models"], ["--version"], ["--show-completion", "bash"],
])
def test_help_and_listing_import_no_torch_rich_typer_or_pydantic(argv: list[str]) -> None:
    """``cnnprof --help``, every command's help and ``cnnprof models`` answer from click alone."""
    watched = {"torch", "torchvision", "rich", *CLI_PARSING}
    code = (f"import sys; from cnnprof.cli.app import main; code = main({argv!r}); "
            f"print(code, sorted({{m.split('.')[0] for m in sys.modules}} & {watched!r}))")
    env = {**os.environ, "COLUMNS": "100",
           "PYTHONPATH": os.pathsep.join([str(Path(cnnprof.__file__).resolve().parents[1]),
                                          *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.rstrip().splitlines()[-1] == "0 []", done.stdout[-500:]


def test_a_command_collects_garbage_rarely_and_gives_the_thresholds_back(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI raises the collector's thresholds for the command's life (the collector's young
    passes cost about a tenth of ``import torch``: cnnprof/cli/collector.py), and a caller
    of ``main()`` in-process gets its own thresholds back, also after a failure."""
    import gc

    from cnnprof.cli.app import main
    from cnnprof.cli.collector import THRESHOLDS

    (tmp_path / "seen_gc.py").write_text(
        "import gc, pathlib, torch.nn as nn\n"
        "class Net(nn.Linear):\n"
        "    def __init__(self):\n"
        "        seen = pathlib.Path(__file__).with_name('seen.txt')\n"
        "        seen.write_text(seen.read_text() + repr(gc.get_threshold()) if seen.exists()\n"
        "                        else repr(gc.get_threshold()))\n"
        "        super().__init__(4, 2)\n"
        "class Broken(nn.Module):\n"
        "    def __init__(self):\n"
        "        raise RuntimeError('no')\n")
    before = gc.get_threshold()
    assert before != THRESHOLDS
    assert main([str(tmp_path / "seen_gc.py") + ":Net", "--input", "4", "-f", "json"]) == 0
    assert gc.get_threshold() == before
    assert main([str(tmp_path / "seen_gc.py") + ":Broken", "--input", "4"]) == 2
    assert gc.get_threshold() == before
    assert repr(THRESHOLDS) in (tmp_path / "seen.txt").read_text()
    capsys.readouterr()


QUICK_EXIT_MODEL = """
import atexit, gc, sys, threading, time
from pathlib import Path
import torch.nn as nn

HERE = Path(__file__).parent
if "--leave-open" in (HERE / "mode.txt").read_text():
    LOG = open(HERE / "unclosed.txt", "w")  # never closed: flushed at the usual shutdown
    LOG.write("buffered")

def late():
    time.sleep(0.5)
    (HERE / "thread.txt").write_text("finished")

class Net(nn.Linear):
    def __init__(self):
        super().__init__(4, 2)
        threading.Thread(target=late).start()
        atexit.register(lambda: (HERE / "atexit.txt").write_text(str(gc.get_freeze_count())))
"""


@pytest.mark.skipif(not Path("/dev/fd").is_dir(), reason="descriptors cannot be listed")
@pytest.mark.parametrize("leave_open", [False, True])
def test_the_quick_exit_keeps_what_a_normal_exit_does(tmp_path: Path, leave_open: bool) -> None:
    """The console entry point freezes the collector before exiting (the interpreter's
    shutdown then skips re-walking torch's objects: cnnprof/cli/collector.py). A model's
    atexit handler still runs (after the freeze), and a non-daemon thread it started still
    finishes. A model that leaves a file open for writing gets the usual exit, so the file's
    buffered text is still written (the quick exit would lose it)."""
    (tmp_path / "leaves_work.py").write_text(QUICK_EXIT_MODEL)
    (tmp_path / "mode.txt").write_text("--leave-open" if leave_open else "")
    src = str(Path(cnnprof.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [src, *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-m", "cnnprof", "leaves_work.py:Net", "--input",
                           "4", "-f", "json"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["totals"]["params"] == 10
    assert (tmp_path / "thread.txt").read_text() == "finished"
    frozen = int((tmp_path / "atexit.txt").read_text())
    if leave_open:
        assert frozen == 0  # the usual exit
        assert (tmp_path / "unclosed.txt").read_text() == "buffered"
    else:
        assert frozen > 1000  # the quick exit, and the handler still ran
