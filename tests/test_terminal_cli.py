"""What a person meets at the terminal (issue 17): --version, completion scripts, --debug in
--help, click's usage errors in one line, ASCII terminals, unknown formats refused
everywhere, --backward in the default table, reused modules' calls and shapes, an explicit
--device meta honoured or refused."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cnnprof import __version__
from cnnprof.errors import EXIT_USAGE

SRC = Path(__file__).parents[1] / "src"
Cli = Callable[..., Any]


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert (result.code, result.out.strip()) == (0, f"cnnprof {__version__}")


def test_help_lists_debug_version_and_completion(cli: Cli) -> None:
    out = cli("--help").out
    for option in ("--debug", "--version", "--show-completion", "--install-completion"):
        assert option in out


# click's scripts (click.shell_completion); the typer versions wrote their own
@pytest.mark.parametrize(("shell", "marker", "asks"), [
    ("bash", "-F _cnnprof_completion cnnprof", "=bash_complete"),
    ("zsh", "#compdef cnnprof", "=zsh_complete"),
    ("fish", "complete --no-files --command cnnprof", "=fish_complete"),
])
def test_show_completion_prints_the_shells_script(cli: Cli, shell: str, marker: str,
                                                  asks: str) -> None:
    result = cli("--show-completion", shell)
    assert result.code == 0 and marker in result.out and "_CNNPROF_COMPLETE" + asks in result.out
    assert result.out.endswith("\n") and not result.out.endswith("\n\n")


def _complete(instruction: str, words: str, cword: int | None = None) -> list[str]:
    """What a completion script runs on <TAB>: cnnprof's answer, one candidate a line."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "_CNNPROF_COMPLETE": instruction,
           "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - 1 if cword is None else cword)}
    out = subprocess.run([sys.executable, "-m", "cnnprof"], env=env, capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0 and not out.stderr, out.stderr
    return out.stdout.split()


def test_completion_answers_the_shell() -> None:
    """What the bash script of the typer versions runs on <TAB> (still installed in some
    ~/.bash_completions): cnnprof answers with the matching commands, plain words."""
    assert _complete("complete_bash", "cnnprof mo") == ["models"]


def test_completion_answers_clicks_bash_script() -> None:
    """click's bash script: ``type,value`` lines; a command word wins over model names, a
    first word that names no command completes as MODEL (the static listing: no torch),
    and options are completed after a model, as for ``cnnprof profile MODEL``."""
    assert _complete("bash_complete", "cnnprof mo") == ["plain,models"]
    models = _complete("bash_complete", "cnnprof alexn")
    assert "plain,alexnet" in models and all(m.startswith("plain,alexn") for m in models)
    assert "plain,resnet50" in _complete("bash_complete", "cnnprof shapes resn")
    assert "plain,--input" in _complete("bash_complete", "cnnprof alexnet --inp")
    assert _complete("bash_complete", "cnnprof --debug alexnet --backw") == ["plain,--backward"]
    assert _complete("bash_complete", "cnnprof ./no/such") == ["file,./no/such"]  # a file
    assert _complete("bash_complete", "cnnprof --show-completion z") == ["plain,zsh"]
    assert _complete("bash_complete", "cnnprof models ", 2) == []


@pytest.mark.parametrize(("shell", "script", "rc", "line"), [
    ("bash", ".bash_completions/cnnprof.sh", ".bashrc",
     "source '{home}/.bash_completions/cnnprof.sh'"),
    ("zsh", ".zfunc/_cnnprof", ".zshrc", "fpath+=~/.zfunc; autoload -Uz compinit; compinit"),
    ("fish", ".config/fish/completions/cnnprof.fish", None, None),
])
def test_install_completion_writes_the_script_once(tmp_path: Path, shell: str, script: str,
                                                   rc: str | None, line: str | None) -> None:
    """Where the typer versions put it; the start-up file gets its line once, and keeps the
    bytes it had (not necessarily UTF-8)."""
    if rc:
        (tmp_path / rc).write_bytes(b"export NAME=\xe9\n")
    env = {**os.environ, "PYTHONPATH": str(SRC), "HOME": str(tmp_path)}
    for _ in range(2):
        out = subprocess.run([sys.executable, "-m", "cnnprof", "--install-completion", shell],
                             env=env, capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stderr
    path = tmp_path / script
    assert f"{shell} completion installed in {path}" in out.stdout
    assert f"={shell}_complete" in path.read_text()
    if rc and line:
        text = (tmp_path / rc).read_bytes()
        assert text.startswith(b"export NAME=\xe9\n")
        assert text.count(line.format(home=tmp_path).encode()) == 1


@pytest.mark.parametrize(("argv", "needle"), [
    (["lenet", "--repeats", "0"], "Invalid value for '--repeats'"),
    (["lenet", "--depth", "-1"], "Invalid value for '--depth'"),
    (["lenet", "extra"], "unexpected extra argument"),
    # click words it "No such option: --x" before 8.2, "No such option '--x'." since
    (["lenet", "--no-such-option"], "No such option"),
    (["lenet", "--no-such-option"], "--no-such-option"),
    (["models", "--bogus"], "--bogus"),
    (["diff"], "Missing argument 'OLD'"),
])
def test_click_usage_errors_are_one_line(cli: Cli, argv: list[str], needle: str) -> None:
    result = cli(*argv)
    assert result.code == EXIT_USAGE
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("cnnprof: error: ") and needle in lines[0]
    assert "--help)" in lines[0] and "Usage:" not in result.err


@pytest.mark.parametrize("command", [
    ["lenet"], ["models"], ["shapes", "lenet"], ["inputs", "lenet"], ["crosscheck", "lenet"],
    ["diff", "a.json", "b.json"], ["check", "budgets.toml"],
])
def test_unknown_formats_are_refused_everywhere(cli: Cli, command: list[str]) -> None:
    result = cli(*command, "--format", "yaml")
    assert result.code == EXIT_USAGE and "unknown --format 'yaml'" in result.err, result.err


def test_ascii_terminal_gets_ascii() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONIOENCODING": "ascii", "COLUMNS": "100"}
    out = subprocess.run([sys.executable, "-m", "cnnprof", "lenet"], env=env,
                         capture_output=True, check=False)
    assert out.returncode == 0, out.stderr.decode("ascii", "replace")
    text = out.stdout.decode("ascii")  # raises if anything is not ASCII
    assert "Conv2d" in text and "61.6 K" in text and " | counted on cpu | " in text
    assert "?" not in text  # every character had an ASCII spelling


def test_backward_columns_in_the_default_table(cli: Cli) -> None:
    result = cli("lenet", "--backward", "--width", "160")
    assert result.code == 0
    assert "Bwd MACs" in result.out and "Bwd FLOPs" in result.out
    assert "Bwd MACs" not in cli("lenet", "--width", "160").out


def test_reused_module_shows_calls_and_every_shape(cli: Cli) -> None:
    result = cli("basic_block", "--width", "200")
    row = next(line for line in result.out.splitlines() if line.split()[:2] == ["relu", "ReLU"])
    assert row.split()[2] == "3"  # Calls, shown because relu runs three times
    lenet = cli("lenet", "--width", "200").out
    assert "Calls" in result.out and "Calls" not in lenet  # only when something repeats
    import cnnprof

    report = cnnprof.profile("resnet50")
    relu = report.layer("layer2.0.relu")
    assert relu.calls == 3
    assert relu.distinct_input_shapes == (((1, 128, 56, 56),), ((1, 128, 28, 28),),
                                          ((1, 512, 28, 28),))
    text = cli("resnet50", "--width", "200").out
    assert "1x128x56x56; 1x128x28x28; 1x512x28x28" in text
    from cnnprof.report import Report

    assert Report.from_json(report.to_json()).layer("layer2.0.relu") == relu  # JSON keeps them


def test_explicit_meta_is_honoured_or_refused(cli: Cli, tmp_path: Path) -> None:
    model = tmp_path / "needs.py"
    model.write_text("import torch\n\n\nclass NeedsValues(torch.nn.Module):\n"
                     "    def __init__(self):\n        super().__init__()\n"
                     "        self.fc = torch.nn.Linear(4, 3)\n\n"
                     "    def forward(self, x):\n"
                     "        return self.fc(x) * (1 + int(x.abs().sum().item() >= 0))\n")
    refused = cli(f"{model}:NeedsValues", "--input", "4", "--device", "meta")
    assert refused.code == EXIT_USAGE
    assert "--device meta" in refused.err and "cannot be counted on the meta device" in refused.err
    auto = cli(f"{model}:NeedsValues", "--input", "4")
    assert auto.code == 0 and "counted on the CPU instead" in auto.out
    honoured = cli("lenet", "--device", "meta", "-f", "json")
    assert honoured.code == 0 and '"device": "meta"' in honoured.out


def test_readme_install_lines_and_ci_agree() -> None:
    root = Path(__file__).parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    ci = (root / ".ci" / "run").read_text(encoding="utf-8")
    assert "\npip install .\n" in readme and "\npip install -e '.[dev]'\n" in readme
    assert "--index-url https://download.pytorch.org/whl/cpu" in readme
    assert "-m pip install -q .\n" in ci and "-m pip install -q -e '.[dev]'\n" in ci
    test_command = readme.split("## Run the tests", 1)[1].split("```bash\n", 1)[1].split("\n")[0]
    assert ci.rstrip().splitlines()[-1] == test_command
