"""device="auto", the memoised meta kernels and the stand-in call: same reports, less time."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
import torchvision

import cnnprof
from cnnprof.device_choice import COLD_CPU_MAX_PARAMS, choose
from cnnprof.trace import meta_cache, observers
from cnnprof.trace.stand_ins import call_with


def _plain_run_op(func, args, kwargs):  # type: ignore[no-untyped-def]
    return func(*args, **kwargs), None  # no key: neither kernels nor costs memoised


def _counts(report: cnnprof.Report) -> dict[str, object]:
    data = report.to_dict()
    data.pop("meta", None)
    return data


# -- choose(): the rule -------------------------------------------------------------------


def test_choose_prefers_meta_once_started() -> None:
    # this test process imported torchvision, which imports sympy and torch._dynamo
    assert choose(params=10, input_elements=10, model_device="cpu") == (
        "meta", "meta kernels already started in this process")


@pytest.mark.parametrize(
    ("kwargs", "device"),
    [
        ({"params": 61_706, "input_elements": 784, "model_device": "cpu"}, "cpu"),  # LeNet
        ({"params": None, "input_elements": 784, "model_device": None}, "meta"),
        ({"params": COLD_CPU_MAX_PARAMS + 1, "input_elements": 784, "model_device": "cpu"},
         "meta"),
        ({"params": 10, "input_elements": 10**8, "model_device": "cpu"}, "meta"),
        ({"params": 10, "input_elements": 10, "model_device": "meta"}, "meta"),
        ({"params": 10, "input_elements": 10, "model_device": "cpu", "dtype": "float16"},
         "meta"),
    ],
)
def test_choose_in_a_cold_process(monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, object],
                                  device: str) -> None:
    monkeypatch.setattr("cnnprof.device_choice.meta_started", lambda: False)
    assert choose(**kwargs)[0] == device  # type: ignore[arg-type]


def test_auto_in_a_fresh_process_counts_a_small_model_on_the_cpu() -> None:
    """No torchvision imported: meta has not started, so a LeNet counts on the CPU, with the
    same totals as on meta."""
    code = textwrap.dedent("""
        import sys, torch, cnnprof
        net = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 5), torch.nn.ReLU(),
                                  torch.nn.Flatten(), torch.nn.Linear(6 * 24 * 24, 10))
        auto = cnnprof.profile(net, ["1x28x28"])
        meta = cnnprof.profile(net, ["1x28x28"], device="meta")
        assert "torchvision" not in sys.modules
        print(auto.device, meta.device, auto.totals == meta.totals)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    assert out == ["cpu", "meta", "True"]


def test_meta_inputs_count_on_meta_in_a_fresh_process() -> None:
    """Inputs the user made on meta hold no values: auto must not pick the CPU for them
    (copying a meta tensor raises), however small the model."""
    code = textwrap.dedent("""
        import torch, cnnprof
        net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
        report = cnnprof.profile(net, [torch.empty(2, 4, device="meta")])
        print(report.device, report.totals.macs)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    assert out == ["meta", str(2 * 4 * 3)]


class NeedsValues(torch.nn.Module):
    """Reads a value in forward (``.item()``): meta cannot run it, the CPU can."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * (1 + int(x.abs().sum().item() >= 0))


def test_meta_inputs_get_example_values_when_the_count_moves_to_the_cpu() -> None:
    report = cnnprof.profile(NeedsValues(), [torch.empty(2, 4, device="meta")], device="meta")
    assert report.device == "cpu"
    assert any("counted on the CPU instead" in note for note in report.notes)
    assert report.layer("fc").macs == 2 * 4 * 3
    assert report.inputs[0].shape == (2, 4)


def test_auto_reports_the_device_used() -> None:
    report = cnnprof.profile(torchvision.models.resnet18(), ["3x64x64"])
    assert report.device == "meta"  # torchvision is imported here: meta has started
    spec = cnnprof.profile("alexnet", device="auto")
    assert spec.device == "meta"


# -- the meta kernel memo -----------------------------------------------------------------


def test_memo_reproduces_layouts_dtypes_and_in_place_results() -> None:
    meta_cache.clear()
    x = torch.empty(2, 3, 8, 8, device="meta").to(memory_format=torch.channels_last)
    ints = torch.empty(4, dtype=torch.int64, device="meta")
    calls = [
        (torch.ops.aten.add.Tensor, (x, x), {}),
        (torch.ops.aten.mul.Scalar, (ints, 2), {}),     # int64 * int → int64
        (torch.ops.aten.mul.Scalar, (ints, 2.0), {}),   # int64 * float → float32: keyed apart
        (torch.ops.aten.hardswish_.default, (x,), {}),  # in place: returns x itself
        (torch.ops.aten.native_batch_norm.default,
         (x, None, None, None, None, True, 0.1, 1e-5), {}),
        (torch.ops.aten.empty.memory_format, ([2, 3],), {"device": torch.device("meta")}),
    ]
    first = [func(*args, **kwargs) for func, args, kwargs in calls]
    for _ in range(2):  # the second pass answers from the memo
        for (func, args, kwargs), expected in zip(calls, first, strict=True):
            got = meta_cache.run_op(func, args, kwargs)
            expected_t = expected if isinstance(expected, tuple) else (expected,)
            got_t = got if isinstance(got, tuple) else (got,)
            for e, g in zip(expected_t, got_t, strict=True):
                assert (g.shape, g.stride(), g.dtype, g.device) == (
                    e.shape, e.stride(), e.dtype, e.device)
    assert meta_cache.run_op(torch.ops.aten.hardswish_.default, (x,), {}) is x
    assert meta_cache.size() == len(calls)


def test_memo_of_a_factory_follows_the_default_dtype() -> None:
    meta_cache.clear()
    empty = (torch.ops.aten.empty.memory_format, ([2, 3],), {"device": torch.device("meta")})
    before = torch.get_default_dtype()
    try:
        dtypes = []
        for default in (torch.float32, torch.float64, torch.float32):
            torch.set_default_dtype(default)
            dtypes.append(meta_cache.run_op(*empty).dtype)
    finally:
        torch.set_default_dtype(before)
    assert dtypes == [torch.float32, torch.float64, torch.float32]


def test_memo_keeps_views_errors_and_real_tensors_out() -> None:
    meta_cache.clear()
    x = torch.empty(2, 6, device="meta")
    view = meta_cache.run_op(torch.ops.aten.view.default, (x, [12]), {})
    assert view._base is x  # a view must alias its input: never rebuilt from the memo
    cpu = torch.ones(3)
    assert meta_cache.run_op(torch.ops.aten.add.Tensor, (cpu, cpu), {}).tolist() == [2, 2, 2]
    bad = (x, torch.empty(5, 7, device="meta"))
    for _ in range(2):  # a shape error is raised every time, not remembered
        with pytest.raises(RuntimeError):
            meta_cache.run_op(torch.ops.aten.mm.default, bad, {})
    assert meta_cache.size() == 0


@pytest.mark.parametrize("name", ["mobilenet_v3_large", "vit_b_16", "densenet121"])
def test_memo_changes_no_report(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """The whole report (every layer's shapes, bytes, MACs, FLOPs) is identical with the
    memos (kernels and costs), cold and warm, and with plain meta kernels and formulas."""
    model = torchvision.models.get_model(name, weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    meta_cache.clear()
    cold = cnnprof.profile(model, [x], device="meta")
    warm = cnnprof.profile(model, [x], device="meta")
    monkeypatch.setattr(observers, "run_op_keyed", _plain_run_op)
    plain = cnnprof.profile(model, [x], device="meta")
    assert _counts(cold) == _counts(warm) == _counts(plain)


# -- stand-ins ----------------------------------------------------------------------------


class _Tied(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.out = torch.nn.Linear(4, 10, bias=False)
        self.out.weight = self.embed.weight  # tied, as in language models

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(x))


def test_tied_weights_count_on_meta_and_the_model_is_left_as_found() -> None:
    model = _Tied()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = cnnprof.profile(model, ["3:int64"], device="meta")
    assert report.device == "meta"  # functional_call refused per-name stand-ins of a tie
    assert report.totals.params == 40  # 10*4, the tied weight once
    assert report.totals.macs == 3 * 4 * 10  # the linear: 3 tokens x 4 in x 10 out
    assert model.out.weight is model.embed.weight
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_call_with_restores_every_tensor_when_the_forward_raises() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    originals = {k: v for k, v in model.state_dict(keep_vars=True).items()}
    stand_ins = {k: torch.empty_like(v, device="meta") for k, v in originals.items()}
    with pytest.raises(RuntimeError):
        call_with(model, stand_ins, (torch.empty(2, 5, device="meta"),))  # 5 != 4 features
    assert all(v is originals[k] for k, v in model.state_dict(keep_vars=True).items())
