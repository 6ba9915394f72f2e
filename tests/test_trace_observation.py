"""How the trace watches module calls: an instance ``forward`` wrapper where a module has no
hooks (``Module._call_impl`` keeps its fast path), a pre/post hook pair where it does. Both
must give the same report, field for field (trace/observers.py, docs/performance.md). And
the records freeze makes without LayerRecord's own __init__ (trace/frozen.py)."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, fields

import pytest
import torch
from torch import nn

from cnnprof import profile
from cnnprof.errors import ModelFailedError
from cnnprof.report import LayerRecord
from cnnprof.trace import observers
from cnnprof.trace.frozen import maker


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x))) + x


class Mixed(nn.Module):
    """Residual blocks, a shared module called with two shapes, a direct ``.forward`` call
    (no module call for hooks either), a child with a hook of its own, keyword inputs,
    attention and a recurrent layer (fused functions)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.blocks = nn.Sequential(Block(), Block())
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.act = nn.ReLU()
        self.hooked = nn.Linear(16, 16)
        self.hooked.register_forward_hook(lambda module, args, out: out * 2)
        self.mha = nn.MultiheadAttention(16, 2, batch_first=True)
        self.lstm = nn.LSTM(16, 8, batch_first=True)
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        x = self.act(self.blocks(self.stem(x)))
        x = self.act.forward(self.pool(x))  # not a module call
        x = self.act(x.flatten(2).transpose(1, 2).reshape(x.shape[0], 1, 16))
        x = self.hooked(x)
        x = x + self.mha(x, x, x, need_weights=False)[0]
        x, _ = self.lstm(x)
        out = self.head(x)
        return out * scale if scale is not None else out


@pytest.fixture
def hooks_everywhere() -> Iterator[None]:
    """A process-wide module hook: the trace then hooks every module instead of wrapping."""
    handle = nn.modules.module.register_module_forward_hook(lambda module, args, out: None)
    try:
        yield
    finally:
        handle.remove()


def _inputs() -> dict[str, torch.Tensor]:
    return {"x": torch.randn(2, 3, 8, 8), "scale": torch.randn(2, 1, 5)}


@pytest.mark.parametrize("device", ["meta", "cpu"])
@pytest.mark.parametrize("backward", [False, True])
def test_wrapped_and_hooked_modules_give_the_same_report(device: str, backward: bool,
                                                         request: pytest.FixtureRequest) -> None:
    model = Mixed().eval()
    wrapped = profile(model, _inputs(), device=device, backward=backward).to_dict()
    request.getfixturevalue("hooks_everywhere")
    hooked = profile(model, _inputs(), device=device, backward=backward).to_dict()
    assert wrapped == hooked
    rows = {row["name"]: row for row in wrapped["layers"]}
    assert rows["act"]["calls"] == 2  # the direct act.forward(...) is no call
    assert rows["blocks.0.act"]["calls"] == 1


def test_the_wrappers_are_used_and_removed() -> None:
    model = Mixed()
    modules = observers.ModuleObserver(model)
    modules.attach()
    try:
        wrapped = {id(state) for state, _ in modules._wrapped}
        assert id(vars(model.stem)) in wrapped
        assert id(vars(model.hooked)) not in wrapped  # a hook of its own: hooked
        assert len(modules._hooked) == 1
    finally:
        modules.detach()
    assert all("forward" not in vars(m) for m in model.modules())
    assert len(model.hooked._forward_hooks) == 1  # the user's hook stays


class Inspects(nn.Module):
    """Reads a child's forward signature while running, as some libraries do."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = Block()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert list(inspect.signature(self.inner.forward).parameters) == ["x"]
        return self.inner(x)


def test_a_wrapped_forward_keeps_its_signature() -> None:
    report = profile(Inspects(), [torch.randn(1, 4, 5, 5)], device="meta")
    assert report.layer("inner.conv").calls == 1


class BadLeaf(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ok = nn.Conv2d(3, 4, 1)
        self.bad = nn.Conv2d(5, 4, 1)  # gets 4 channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bad(self.ok(x))


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_a_failing_plain_leaf_puts_the_function_mode_back(device: str) -> None:
    model = BadLeaf()
    depth = torch._C._len_torch_function_stack()
    with pytest.raises(ModelFailedError) as failed:
        profile(model, [torch.randn(1, 3, 4, 4)], device=device)
    assert torch._C._len_torch_function_stack() == depth
    report = failed.value.report
    assert report is not None and report.error is not None
    assert report.error["module"] == "bad"
    assert report.layer("ok").calls == 1
    assert all("forward" not in vars(m) for m in model.modules())


class ExitsAfterAChild(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.conv(x)
        sys.exit(0)


@pytest.mark.parametrize("hooked", [False, True])
def test_a_sys_exit_is_placed_as_the_hooks_place_it(hooked: bool,
                                                    request: pytest.FixtureRequest) -> None:
    """A ``SystemExit`` is no ``Exception``: the wrapped forward must still mark where it
    happened, as the always-called hook does."""
    if hooked:
        request.getfixturevalue("hooks_everywhere")
    with pytest.raises(ModelFailedError) as failed:
        profile(ExitsAfterAChild(), [torch.randn(1, 3, 8, 8)], device="meta")
    error = failed.value.report.error  # type: ignore[union-attr]
    assert error["type"] == "ExitsAfterAChild"
    assert error["after"] == "conv"
    assert error["exception"] == "SystemExit"


def test_forward_callers_are_torchs_own() -> None:
    callers = observers._forward_callers()
    codes = (torch.nn.Module._call_impl.__code__, torch.nn.Module._slow_forward.__code__,
             observers._HOOKS_CALLER)
    assert {c.co_name for c in codes} == {"_call_impl", "inner", "_slow_forward"}
    assert {id(c) for c in codes} <= callers


class Fallback(nn.Module):
    """Calls its children while handling an exception (a fallback path)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            raise KeyError("no fast path")
        except KeyError:
            return self.b(self.a(x))


@pytest.mark.parametrize("hooked", [False, True])
def test_modules_called_while_an_exception_is_handled_did_not_fail(
        hooked: bool, request: pytest.FixtureRequest) -> None:
    if hooked:
        request.getfixturevalue("hooks_everywhere")
    report = profile(Fallback(), [torch.randn(2, 4)], device="meta")
    assert report.layer("a").output_shapes == ((2, 4),)
    assert report.layer("b").output_shapes == ((2, 4),)


@pytest.mark.parametrize("backward", [False, True])
def test_records_are_what_their_init_makes(backward: bool) -> None:
    """freeze builds LayerRecords without the frozen dataclass's __init__ (trace/frozen.py):
    each must be the very object LayerRecord(**fields) makes."""
    report = profile(Mixed().eval(), _inputs(), device="meta", backward=backward)
    for record in report.layers:
        made = LayerRecord(**{f.name: getattr(record, f.name) for f in fields(LayerRecord)})
        assert made == record
        assert list(vars(made).items()) == list(vars(record).items())


def test_maker_falls_back_to_init() -> None:
    @dataclass(frozen=True)
    class Checked:
        n: int
        tags: list[int] = field(default_factory=list)

        def __post_init__(self) -> None:
            if self.n < 0:
                raise ValueError("negative")

    @dataclass(frozen=True, slots=True)
    class Slotted:
        n: int = 0

    with pytest.raises(ValueError):
        maker(Checked)({"n": -1})
    assert maker(Slotted)({"n": 2}) == Slotted(2)
    plain = maker(LayerRecord)
    first, second = plain({"name": "a", "type": "b", "depth": 0}), LayerRecord("a", "b", 0)
    assert first == second and first.attributes is not plain({"name": "a", "type": "b",
                                                               "depth": 0}).attributes
    with pytest.raises(TypeError):
        plain({"name": "a", "type": "b", "depth": 0, "no_such_field": 1})
    with pytest.raises(TypeError):
        plain({"name": "a"})


class HoldsScripted(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(4, 4)
        self.scripted = torch.jit.script(nn.Sequential(nn.Linear(4, 4), nn.ReLU()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scripted(self.first(x))


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_a_scripted_submodule_is_refused_and_nothing_stays_attached() -> None:
    model = HoldsScripted()
    with pytest.raises(RuntimeError, match="ScriptModules"):
        profile(model, [torch.randn(2, 4)], device="meta")
    assert all("forward" not in vars(m) for m in (model, model.first))
    assert not model.first._forward_hooks and not model.first._forward_pre_hooks
