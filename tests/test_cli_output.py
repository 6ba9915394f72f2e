"""``--output`` and ``--plot`` files that cannot be written: exit 2 with one line in every
command (profile, check, check --init, diff), refused before any model is built.

The model here records its own construction in a file next to it, so "refused before the
slow work" is observed, not inferred from timing or progress output.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cnnprof.errors import EXIT_OK, EXIT_USAGE

#: a tiny model that leaves ``built`` beside its file when constructed
MODEL = """\
from pathlib import Path

import torch

CNNPROF_INPUTS = ["4"]


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        Path(__file__).with_name("built").touch()
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)
"""

class Project:
    """A model file and a budget for it in a fresh directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "net.py").write_text(MODEL)
        self.spec = f"{root / 'net.py'}:Net"
        self.budget = root / "budget.toml"
        self.budget.write_text(f'[models.net]\nmodel = "{self.spec}"\nmax_params = "1K"\n')

    @property
    def built(self) -> bool:
        return (self.root / "built").exists()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


Cli = Callable[..., Any]  # conftest's cli: argv -> CliResult
Argv = Callable[[Project, str], list[str]]

# (id, option, file name (its suffix picks the format), argv around the target)
COMMANDS: list[tuple[str, str, str, Argv]] = [
    ("profile", "--output", "report.json", lambda p, t: [p.spec, "--output", t]),
    ("profile --plot", "--plot", "chart.png", lambda p, t: [p.spec, "-f", "json", "--plot", t]),
    ("check", "--output", "result.json",
     lambda p, t: ["check", str(p.budget), "-f", "json", "--output", t]),
    ("check --init", "--output", "starter.toml",
     lambda p, t: ["check", "--init", p.spec, "--output", t]),
    ("diff", "--output", "diff.json",
     lambda p, t: ["diff", p.spec, p.spec, "-f", "json", "--output", t]),
]
IDS = [c[0] for c in COMMANDS]
ARGS = [c[1:] for c in COMMANDS]


def _assert_refused(res: Any, option: str, target: Path, reason: str) -> None:
    assert res.code == EXIT_USAGE, (res.out, res.err)
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    assert lines == [f"cnnprof: error: cannot write {option} {target}: {reason}"], res.err


@pytest.mark.parametrize(("option", "name", "argv"), ARGS, ids=IDS)
def test_existing_directory_is_refused_before_the_model_is_built(
        cli: Cli, project: Project, option: str, name: str, argv: Argv) -> None:
    target = project.root / name
    target.mkdir()
    res = cli(*argv(project, str(target)))
    _assert_refused(res, option, target, os.strerror(errno.EISDIR))
    assert not project.built
    assert not any(target.iterdir())


@pytest.mark.parametrize(("option", "name", "argv"), ARGS, ids=IDS)
def test_path_under_a_file_is_refused_before_the_model_is_built(
        cli: Cli, project: Project, option: str, name: str, argv: Argv) -> None:
    target = project.root / "net.py" / "sub" / name  # mkdir would hit a file
    res = cli(*argv(project, str(target)))
    net = project.root / "net.py"
    _assert_refused(res, option, target, f"{os.strerror(errno.ENOTDIR)} ({net} is a file)")
    assert not project.built


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """A read-only directory (writable again afterwards, so pytest can remove it).

    Skips where the mode bits stop nothing: root (os.geteuid() == 0) may write anyway, and
    os.access says so. Asking os.access rather than the uid also runs these tests as root
    without CAP_DAC_OVERRIDE (setpriv --bounding-set -dac_override,-dac_read_search).
    """
    path = tmp_path / "locked"
    path.mkdir()
    path.chmod(0o555)
    try:
        if os.access(path, os.W_OK):
            pytest.skip("this user may write into a read-only directory (root)")
        yield path
    finally:
        path.chmod(0o755)


@pytest.mark.parametrize(("option", "name", "argv"), ARGS, ids=IDS)
def test_read_only_directory_is_refused_before_the_model_is_built(
        cli: Cli, project: Project, locked: Path, option: str, name: str, argv: Argv) -> None:
    target = locked / "sub" / name
    res = cli(*argv(project, str(target)))
    _assert_refused(res, option, target, f"{os.strerror(errno.EACCES)} ({locked})")
    assert not project.built
    assert not any(locked.iterdir())


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize(("option", "name", "argv"), ARGS, ids=IDS)
def test_write_failure_after_the_run_is_still_a_usage_error(
        cli: Cli, project: Project, option: str, name: str, argv: Argv) -> None:
    # /dev/full passes every early check (it exists and anyone may write it) and then fails
    # the write with ENOSPC: the late path, which for check used to exit 1 ("over budget")
    target = project.root / name
    target.symlink_to("/dev/full")
    res = cli(*argv(project, str(target)))
    _assert_refused(res, option, target, os.strerror(errno.ENOSPC))
    assert project.built


@pytest.mark.parametrize(("option", "name", "argv"), ARGS, ids=IDS)
def test_writable_path_in_new_directories_is_written(
        cli: Cli, project: Project, option: str, name: str, argv: Argv) -> None:
    target = project.root / "new" / "dirs" / name
    res = cli(*argv(project, str(target)))
    assert res.code == EXIT_OK, res.err
    assert project.built and target.stat().st_size > 0
