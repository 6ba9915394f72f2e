"""``--kernels`` keeps libkineto's chatter (written by C++ straight to fd 2) off stderr, and
passes on everything else written there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import IO

import pytest

from cnnprof.timing import kernels
from cnnprof.timing.kernels import KINETO_NOISE, quiet_kineto

# what torch 2.x's libkineto prints on a CPU-only --kernels run (KINETO_LOG_LEVEL unset)
USDT_START = ("USDT:2026-11-23 03:33:15 6586:6586 SyncActivityProfilerHandler.cpp:39] "
              "profiler_start\n")
USDT_STOP = ("USDT:2026-11-23 03:33:15 6586:6586 SyncActivityProfilerHandler.cpp:46] "
             "profiler_stop\n")
NO_GPU = ("ERROR:2026-11-23 03:33:15 6586:6586 DeviceProperties.cpp:56] "
          "gpuGetDeviceCount failed with code 35\n")
# older releases, from ActivityProfilerController.cpp
STAGE = ("STAGE:2024-01-02 10:11:12 42:42 ActivityProfilerController.cpp:314] "
         "Completed Stage: Warm Up\n")
# a kineto error that matters: never hidden
CUPTI = ("ERROR:2026-11-23 03:33:15 6586:6586 CuptiActivityApi.cpp:123] "
         "CUPTI_ERROR_INSUFFICIENT_PRIVILEGES\n")
NOISE = (USDT_START, USDT_STOP, NO_GPU, STAGE)


@pytest.fixture(autouse=True)
def _own_passthrough(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh passthrough cache per test, closed afterwards (it holds a dup of fd 2)."""
    monkeypatch.delenv("KINETO_LOG_LEVEL", raising=False)
    cache: dict[tuple[int, int], IO[str]] = {}
    monkeypatch.setattr(kernels, "_passthrough", cache)
    yield
    for stream in cache.values():
        stream.close()


def test_patterns_match_the_noise_only() -> None:
    for line in NOISE:
        assert any(p.match(line) for p in KINETO_NOISE), line
    for line in (CUPTI, "profiler_start\n", "warning: profiler_stop was slow\n"):
        assert not any(p.match(line) for p in KINETO_NOISE), line


def test_c_level_noise_is_dropped_and_the_rest_passed_on(capfd: pytest.CaptureFixture[str]
                                                         ) -> None:
    with quiet_kineto():
        for line in (USDT_START, "a real C warning\n", NO_GPU, STAGE, CUPTI, USDT_STOP):
            os.write(2, line.encode())  # from C level: past sys.stderr
        os.write(2, b"no newline at the end")
    assert capfd.readouterr().err == "a real C warning\n" + CUPTI + "no newline at the end"
    os.write(2, USDT_START.encode())  # fd 2 is restored: outside the block nothing is filtered
    assert capfd.readouterr().err == USDT_START


def test_lines_survive_an_exception(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError, match="boom"), quiet_kineto():
        os.write(2, (NO_GPU + "why it failed\n").encode())
        raise RuntimeError("boom")
    assert capfd.readouterr().err == "why it failed\n"


def test_python_writes_are_not_held_back(capfd: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # like a terminal's sys.stderr (or Rich's FileProxy over it): a stream on fd 2. The Rich
    # progress bar redraws through it while the profiler runs; its frames must go straight
    # out, not be captured and replayed later.
    with open(2, "w", closefd=False) as stderr:
        monkeypatch.setattr(sys, "stderr", stderr)
        with quiet_kineto():
            os.write(2, b"from C\n")
            assert sys.stderr is not stderr
            print("from Python", file=sys.stderr)
        assert sys.stderr is stderr
    # the Python line reached the real stderr at once; the C line only when the block ended
    assert capfd.readouterr().err == "from Python\nfrom C\n"


@pytest.mark.parametrize(("level", "filtered"),
                         [("5", True), ("4", True), ("", True), ("1", False), ("3x", False),
                          ("junk", False)])
def test_kineto_log_level(capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                          level: str, filtered: bool) -> None:
    # asking kineto for more than its default (ERROR=4) means debugging it: show it all.
    # Parsed like kineto's atoi: "3x" is 3, "junk" is 0 (verbose), "" is as if unset.
    monkeypatch.setenv("KINETO_LOG_LEVEL", level)
    with quiet_kineto():
        os.write(2, (USDT_START + "kept\n").encode())
    assert capfd.readouterr().err == ("kept\n" if filtered else USDT_START + "kept\n")


def test_cli_kernels_run_is_quiet() -> None:
    env = {k: v for k, v in os.environ.items() if k != "KINETO_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-m", "cnnprof", "lenet", "--device", "cpu", "--time", "--kernels",
         "--repeats", "2", "--warmup", "1", "-f", "json"],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    for marker in ("profiler_start", "profiler_stop", "gpuGetDeviceCount", "Completed Stage"):
        assert marker not in done.stderr, done.stderr
    assert not any(p.match(line) for p in KINETO_NOISE for line in done.stderr.splitlines())
    data = json.loads(done.stdout)  # and the kernels are still there
    conv = next(r for r in data["layers"] if r["name"] == "layer1.conv1")
    assert any(k["name"] == "aten::conv2d" for k in conv["kernels"])
