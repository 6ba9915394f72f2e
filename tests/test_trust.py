"""Trust: user code cannot end cnnprof or turn a CI gate green, stdout carries only the
result, output files are replaced atomically, counts repeat. Each test reproduces a failure
found by a hostile probe (issue 18) before its fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, CliResult
from torch import nn

from cnnprof.api import profile
from cnnprof.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, ModelFailedError, UsageError

EXITING = FIXTURES / "exiting"
Cli = Callable[..., CliResult]


def run_cnnprof(*args: str, cwd: Path | None = None,
                **kwargs: object) -> subprocess.CompletedProcess:
    """The real console entry point in a child process (its own stdout descriptor)."""
    env = {**os.environ, "COLUMNS": "120"}
    code = "import sys; from cnnprof.cli.app import main; sys.argv[0] = 'cnnprof'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300, **kwargs)  # type: ignore[call-overload]


# -- 1. SystemExit and other BaseExceptions from user code -----------------------------------

def test_check_with_a_model_exiting_at_import_fails_and_checks_the_others(tmp_path: Path) -> None:
    budget = tmp_path / "budgets.toml"
    budget.write_text(textwrap.dedent(f"""
        [models.quits]
        model = "{EXITING / 'exits_at_import.py'}:Net"
        input = "4"
        max_params = "1M"

        [models.lenet]
        max_params = "1M"
    """))
    junit = tmp_path / "junit.xml"
    result = run_cnnprof("check", str(budget), "-f", "junit", "-o", str(junit))
    assert result.returncode == EXIT_FAILURE, result.stderr
    text = junit.read_text()
    assert 'name="quits.params"' in text and "called sys.exit(0)" in text
    assert 'name="lenet.params" />' in text  # the other model was still checked, and passed
    table = run_cnnprof("check", str(budget))
    assert table.returncode == EXIT_FAILURE
    assert "quits" in table.stdout and "sys.exit(0)" in table.stdout


@pytest.mark.parametrize(("target", "code", "words"), [
    ("exits_at_import.py:Net", EXIT_USAGE, "importing"),
    ("exiting.py:ExitsInConstructor", EXIT_USAGE, "ExitsInConstructor() called sys.exit(0)"),
    ("exiting.py:exits_factory", EXIT_USAGE, "exits_factory() called sys.exit(3)"),
    ("exiting.py:RaisesInConstructor", EXIT_USAGE, "RuntimeError: bad configuration"),
    ("exiting.py:ExitsInForward", EXIT_FAILURE, "forward called sys.exit(0)"),
    ("exiting.py:GeneratorExitInForward", EXIT_FAILURE, "raised GeneratorExit"),
    ("exiting.py:CancelledInForward", EXIT_FAILURE, "raised CancelledError: cancelled"),
])
def test_user_code_that_exits_is_a_failure_with_one_line(cli: Cli, target: str, code: int,
                                                         words: str) -> None:
    result = cli(f"{EXITING}/{target}", "--input", "4")
    assert result.code == code
    assert words in result.err
    assert "Traceback" not in result.out + result.err


@pytest.mark.parametrize("command", [["shapes"], ["inputs"], ["crosscheck"], ["check", "--init"]])
def test_every_command_fails_on_a_model_that_exits(cli: Cli, command: list[str]) -> None:
    result = cli(*command, f"{EXITING}/exiting.py:ExitsInForward", "--input", "4")
    assert result.code != EXIT_OK
    assert "sys.exit(0)" in result.err
    assert "Traceback" not in result.err


def test_argparse_at_import_sees_no_cnnprof_options(cli: Cli) -> None:
    failing = cli(f"{EXITING}/train_script.py:Net", "--input", "4")
    assert failing.code == EXIT_USAGE
    assert "called sys.exit(2)" in failing.err
    # argparse's complaint names the file, not cnnprof, and is quoted once, in the one line
    assert "train_script.py: error: the following arguments are required: --lr" in failing.err
    assert "usage: cnnprof" not in failing.err
    working = cli(f"{EXITING}/argparse_defaults.py:Net", "--input", "4", "-f", "json")
    assert working.code == EXIT_OK, working.err
    assert json.loads(working.out)["totals"]["params"] == 4 * 8 + 8


def test_python_api_raises_model_failed_for_sys_exit() -> None:
    sys.path.insert(0, str(EXITING))
    try:
        import exiting  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(EXITING))
    with pytest.raises(ModelFailedError, match=r"sys\.exit\(0\)"):
        profile(exiting.ExitsInForward(), "4")
    with pytest.raises(ModelFailedError, match="GeneratorExit"):
        profile(exiting.GeneratorExitInForward(), "4", device="cpu")


# -- 5. stdout carries the result only -------------------------------------------------------

def test_json_on_stdout_survives_output_below_python(tmp_path: Path) -> None:
    spec = f"{EXITING}/exiting.py:WritesBelowPython"
    result = run_cnnprof(spec, "--input", "4", "-f", "json")
    assert result.returncode == EXIT_OK, result.stderr
    report = json.loads(result.stdout)
    assert report["totals"]["params"] == 10
    assert "forward-echo" in result.stderr and "forward-dunder" in result.stderr
    assert any("constructor print" in note for note in report["notes"])
    budget = tmp_path / "b.toml"
    budget.write_text(f'[models.noisy]\nmodel = "{spec}"\ninput = "4"\nmax_params = "1M"\n')
    checked = run_cnnprof("check", str(budget), "-f", "json")
    assert checked.returncode == EXIT_OK, checked.stderr
    assert json.loads(checked.stdout)["rows"][0]["status"] == "ok"


def test_closed_stdout_and_broken_pipes_keep_the_verdict(tmp_path: Path) -> None:
    over = tmp_path / "over.toml"
    over.write_text('[models.lenet]\nmax_params = "1K"\n')
    # `check | head -1`: the reader leaves after one line; the verdict (1: over) stands
    pipe = subprocess.run(
        f"{sys.executable} -c \"import sys; from cnnprof.cli.app import main; main()\" "
        f"check {over} -f json | head -c 1", shell=True, capture_output=True, text=True,
        executable="/bin/bash", env={**os.environ, "SHELLOPTS": "pipefail"}, timeout=300)
    assert pipe.returncode == EXIT_FAILURE, pipe.stderr
    assert "Traceback" not in pipe.stderr and "Error" not in pipe.stderr
    models = subprocess.run(
        f"{sys.executable} -c \"import sys; from cnnprof.cli.app import main; main()\" "
        "models | head -n 1", shell=True, capture_output=True, text=True,
        executable="/bin/bash", env={**os.environ, "SHELLOPTS": "pipefail"}, timeout=300)
    assert models.returncode == EXIT_OK, models.stderr
    # `cnnprof lenet >&-`: Python starts with no sys.stdout at all
    closed = subprocess.run([sys.executable, "-c",
                             "import sys; from cnnprof.cli.app import main; main()", "lenet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            timeout=300, preexec_fn=lambda: os.close(1))
    assert closed.returncode == EXIT_OK, closed.stderr
    assert "Traceback" not in closed.stderr


# -- 6. output files are replaced, never truncated -------------------------------------------

def test_failed_write_leaves_the_old_report(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text("OLD REPORT")
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (256, 256)); "
            "from cnnprof.cli.app import main; main()")
    for args in (["lenet", "-f", "json", "-o", str(target)],
                 ["diff", "lenet", "alexnet_seed", "-f", "json", "-o", str(target)]):
        result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == EXIT_USAGE, result.stderr
        assert "cannot write --output" in result.stderr
        assert target.read_text() == "OLD REPORT"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temporary left


def test_written_report_keeps_the_files_permissions_and_links(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text("old")
    target.chmod(0o640)
    assert cli("lenet", "-o", str(target)).code == EXIT_OK
    assert json.loads(target.read_text())["model"]["spec"] == "lenet"
    assert target.stat().st_mode & 0o777 == 0o640
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    assert cli("mnist_cnn", "-o", str(link)).code == EXIT_OK
    assert link.is_symlink()  # the file it names was replaced, the link kept
    assert json.loads(target.read_text())["model"]["spec"] == "mnist_cnn"


# -- 7. diff refuses what is not a finished report -------------------------------------------

def test_diff_refuses_failed_runs_and_non_reports(cli: Cli, tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    failed = tmp_path / "failed.json"
    assert cli("lenet", "-o", str(good)).code == EXIT_OK
    assert cli("lenet", "--input", "1x8x8", "-o", str(failed)).code == EXIT_FAILURE
    assert "error" in json.loads(failed.read_text())
    result = cli("diff", str(good), str(failed), "--fail-above", "5")
    assert result.code == EXIT_USAGE
    assert "failed run" in result.err
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    for bad in (listing,):
        result = cli("diff", str(bad), str(good))
        assert result.code == EXIT_USAGE and "not a cnnprof report" in result.err
        assert "Traceback" not in result.err


# -- 8. never a download ---------------------------------------------------------------------

@pytest.mark.parametrize("args", [["resnet18", "--arg", "weights=IMAGENET1K_V1"],
                                  ["fasterrcnn_resnet50_fpn", "--arg", "weights_backbone=DEFAULT"],
                                  ["resnet18", "--arg", "pretrained=True"]])
def test_weights_arguments_that_download_are_refused(cli: Cli, args: list[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def no_network(*a: object, **k: object) -> None:
        raise AssertionError("cnnprof tried to connect")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    result = cli(*args)
    assert result.code == EXIT_USAGE
    assert "never does" in result.err and "--weights FILE" in result.err


# -- 9. detection counts repeat; boxes and capacity ------------------------------------------

@pytest.mark.slow
def test_detection_counts_repeat_and_capacity_bounds_them() -> None:
    name = "fasterrcnn_mobilenet_v3_large_320_fpn"
    first = profile(name)
    torch.manual_seed(1234)  # the caller's RNG does not matter, and is given back
    state = torch.random.get_rng_state()
    second = profile(name)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert first.to_dict()["layers"] == second.to_dict()["layers"]
    assert first.totals == second.totals
    rows = {r.name: r.attributes for r in first.layers if "boxes_per_image" in r.attributes}
    assert rows["rpn"]["box_capacity"] == 150 and rows["roi_heads"]["box_capacity"] == 100
    assert any("boxes per image" in n for n in first.notes)
    full = profile(name, model_args={"capacity": True})
    boxes = {r.name: r.attributes["boxes_per_image"] for r in full.layers
             if "boxes_per_image" in r.attributes}
    assert boxes == {"rpn": [150], "roi_heads": [100]}
    assert full.totals.flops >= first.totals.flops


def test_a_forward_that_draws_random_numbers_counts_the_same_and_restores_rng() -> None:
    class Sampler(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            keep = int(torch.randint(1, 8, ()).item())  # data-dependent work
            return x[:, :keep] @ torch.ones(keep, 3)

    torch.manual_seed(99)
    before = torch.random.get_rng_state()
    counts = {profile(Sampler(), "8", device="cpu").totals.macs for _ in range(3)}
    assert len(counts) == 1
    assert torch.equal(torch.random.get_rng_state(), before)


# -- 3. threads --------------------------------------------------------------------------------

def test_profile_from_threads_restores_process_state() -> None:
    stdout, fastpath = sys.stdout, torch.backends.mha.get_fastpath_enabled()
    model = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 2)
    results: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(3):
                results.append(profile(model, "5x16", device="cpu").totals.macs)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(results)) == 1 and len(results) == 12
    assert sys.stdout is stdout
    assert torch.backends.mha.get_fastpath_enabled() == fastpath


# -- 10. exit codes and messages of odd requests ---------------------------------------------

def test_odd_requests_end_in_one_line(cli: Cli, tmp_path: Path) -> None:
    cases = [
        (["lenet", "--width", "0"], EXIT_USAGE, "too narrow"),
        (["lenet", "--input", "1x99999999999x99999999999"], EXIT_USAGE, "more than a tensor"),
        (["lenet", "--input", "99999999999999999999999"], EXIT_USAGE, "more than a tensor"),
        (["lenet", "--depth", "-1"], EXIT_USAGE, "--depth"),
        (["lenet", "extra-argument"], EXIT_USAGE, "unexpected extra argument"),
        (["models", "--no-such-option"], EXIT_USAGE, "No such option"),
    ]
    for args, code, words in cases:
        result = cli(*args)
        assert result.code == code, (args, result.err)
        assert words in result.err, (args, result.err)
        assert "Traceback" not in result.err and "Usage:" not in result.err, args
        assert len(result.err.strip().splitlines()) == 1, (args, result.err)


def test_meta_model_counted_on_cpu_gets_example_values() -> None:
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    report = profile(model, "4", batch=2, device="cpu")
    assert report.device == "cpu"
    assert report.totals.macs == 2 * 4 * 3


def test_torchscript_models_are_refused_in_one_line(cli: Cli, tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    for module in (torch.jit.trace(model, torch.randn(1, 4)), torch.jit.script(model)):
        with pytest.raises(UsageError, match="TorchScript") as caught:
            profile(module, "4")
        assert "\n" not in caught.value.one_line()
    model_file = tmp_path / "scripted.py"
    model_file.write_text("import torch\nfrom torch import nn\n"
                          "def build():\n    return torch.jit.script(nn.Linear(4, 2))\n")
    result = cli(f"{model_file}:build", "--input", "4")
    assert result.code == EXIT_USAGE and "TorchScript" in result.err
    assert "Traceback" not in result.err


def test_a_model_that_closes_stdout_keeps_what_it_printed() -> None:
    class Closes(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            print("bye")
            sys.stdout.close()
            return self.fc(x)

    stdout = sys.stdout
    report = profile(Closes(), "4", device="cpu")
    assert "the model printed during forward: bye" in report.notes
    assert sys.stdout is stdout and not stdout.closed


def test_the_failure_report_fits_a_narrow_terminal(cli: Cli) -> None:
    result = cli("lenet", "--input", "1x8x8", "--width", "60")
    assert result.code == EXIT_FAILURE
    block = [line for line in result.err.splitlines() if not line.startswith("cnnprof: error:")]
    assert any(line.startswith("  error    RuntimeError") for line in block)
    assert all(len(line) <= 60 for line in block), block
