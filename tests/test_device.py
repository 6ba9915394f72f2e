"""cnnprof.device: a device is parsed and checked in one place (issue 20)."""

from __future__ import annotations

import pytest
import torch

from cnnprof.device import Device, check_available, for_counting, for_timing, parse
from cnnprof.errors import DeviceError, UsageError


@pytest.mark.parametrize(("text", "expected"), [
    ("meta", Device("meta")), ("CPU", Device("cpu")), (" cuda ", Device("cuda")),
    ("cuda:1", Device("cuda", 1)), ("gpu", Device("cuda")), ("gpu:2", Device("cuda", 2)),
    ("auto", None), ("Auto", None),
])
def test_parse(text: str, expected: Device | None) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text", ["tpu", "", "cuda:", "cuda:x", "cpu:0", "meta:1", "cuda:-1",
                                  "cuda 0", "mps"])
def test_parse_refuses_with_one_line(text: str) -> None:
    with pytest.raises(DeviceError) as info:
        parse(text)
    assert "\n" not in info.value.one_line() and "unknown device" in info.value.message


def test_str_is_the_torch_spelling_and_kinds() -> None:
    assert str(Device("cuda", 1)) == "cuda:1" and str(Device("cpu")) == "cpu"
    assert Device("cuda").is_cuda and Device("meta").is_meta and not Device("cpu").chosen
    assert Device("cpu", reason="auto: no CUDA GPU here").chosen
    assert Device("cuda", 3).torch() == torch.device("cuda:3")


def test_timing_device() -> None:
    chosen = for_timing("auto")
    assert chosen.chosen and chosen.reason is not None and chosen.reason.startswith("auto: ")
    assert chosen.kind == ("cuda" if torch.cuda.is_available() else "cpu")
    assert for_timing("cpu") == Device("cpu")
    with pytest.raises(UsageError, match="needs a real device"):
        for_timing("meta")


def test_counting_device() -> None:
    assert for_counting("auto") is None  # resolved per model by the counting pass
    assert for_counting("meta") == Device("meta")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_a_device_error() -> None:
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        check_available(Device("cuda"))
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        for_timing("cuda:0")
