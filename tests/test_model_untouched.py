"""After success, failure or Ctrl-C, the user's instance is exactly as it was: no hooks,
same parameter values, devices and dtypes, same buffers, same training flags, nothing
written onto its modules."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from cnnprof.api import profile
from cnnprof.cli.app import main
from cnnprof.errors import EXIT_INTERRUPTED, ModelFailedError

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def fixtures() -> Iterator[Any]:
    sys.path.insert(0, str(FIXTURES))
    try:
        import robust_models
        import seed_models

        yield seed_models, robust_models
    finally:
        sys.path.remove(str(FIXTURES))


def snapshot(model: nn.Module) -> dict[str, Any]:
    hooks = 0
    for m in model.modules():
        hooks += len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        hooks += len(m._backward_pre_hooks) + len(m._state_dict_hooks)
    return {
        "state": {k: (v.detach().clone(), v.device, v.dtype, v.requires_grad)
                  for k, v in model.state_dict(keep_vars=True).items()},
        "ids": [id(p) for p in model.parameters()],
        "training": [(n, m.training) for n, m in model.named_modules()],
        "attributes": {n: sorted(vars(m)) for n, m in model.named_modules()},
        "hooks": hooks,
        "global_hooks": (len(nn.modules.module._global_forward_hooks),
                         len(nn.modules.module._global_forward_pre_hooks)),
        "mha_fastpath": torch.backends.mha.get_fastpath_enabled(),
        "rng": torch.random.get_rng_state(),
        "grads": {n: None if p.grad is None else p.grad.clone()
                  for n, p in model.named_parameters()},
        # tensors kept as plain attributes (weight_norm's weight, an LSTM's _flat_weights)
        "plain": {(n, k): [id(t) for t in (v if isinstance(v, list) else [v])]
                  for n, m in model.named_modules() for k, v in vars(m).items()
                  if isinstance(v, torch.Tensor)
                  or (isinstance(v, list) and v and isinstance(v[0], torch.Tensor))},
        "parametrized": sorted(n for n, m in model.named_modules()
                               if nn.utils.parametrize.is_parametrized(m)),
    }


def assert_same(before: dict[str, Any], model: nn.Module) -> None:
    after = snapshot(model)
    assert after["hooks"] == before["hooks"]  # the user's own (weight_norm's) stay; none of ours
    assert after["global_hooks"] == before["global_hooks"]
    assert after["training"] == before["training"]
    assert after["attributes"] == before["attributes"]
    assert after["ids"] == before["ids"]
    assert after["mha_fastpath"] == before["mha_fastpath"]
    assert torch.equal(after["rng"], before["rng"])
    assert after["plain"] == before["plain"]
    assert after["parametrized"] == before["parametrized"]
    assert after["grads"].keys() == before["grads"].keys()
    for key, grad in before["grads"].items():
        new_grad = after["grads"][key]
        assert (grad is None) == (new_grad is None), key
        assert grad is None or torch.equal(grad, new_grad), key
    assert after["state"].keys() == before["state"].keys()
    for key, (value, device, dtype, grad) in before["state"].items():
        new_value, new_device, new_dtype, new_grad = after["state"][key]
        assert (new_device, new_dtype, new_grad) == (device, dtype, grad), key
        assert torch.equal(new_value, value), key


def _mixed_flags(model: nn.Module) -> nn.Module:
    """Some submodules in train mode, the rest in eval: each flag must come back."""
    model.eval()
    for i, m in enumerate(model.modules()):
        if i % 2:
            m.train()
    return model


Case = Callable[[Any, Any], tuple[nn.Module, Callable[[nn.Module], object]]]


def _ok_meta(seeds: Any, robust: Any) -> Any:
    return _mixed_flags(seeds.LeNet32()), lambda m: profile(m, "1x32x32")


def _ok_cpu_train(seeds: Any, robust: Any) -> Any:
    return seeds.LeNet32().eval(), lambda m: profile(m, "1x32x32", device="cpu", mode="train")


def _ok_dtype(seeds: Any, robust: Any) -> Any:
    return seeds.LeNet32(), lambda m: profile(m, "1x32x32", dtype="float16")


def _fails_with_hint(seeds: Any, robust: Any) -> Any:
    return _mixed_flags(seeds.LeNet32()), lambda m: profile(m, "1x28x28")


def _fails_on_cpu(seeds: Any, robust: Any) -> Any:
    return seeds.LeNet32().train(), lambda m: profile(m, "1x28x28", device="cpu")


def _interrupted(seeds: Any, robust: Any) -> Any:
    return robust.Interrupting(), lambda m: profile(m, "4")


def _interrupted_cpu(seeds: Any, robust: Any) -> Any:
    return robust.Interrupting().train(), lambda m: profile(m, "4", device="cpu")


def _weights(seeds: Any, robust: Any, tmp: Path | None = None) -> Any:
    path = Path(FIXTURES.parent / ".weights_untouched.pt")

    def run(m: nn.Module) -> object:
        torch.save({k: torch.ones_like(v) for k, v in m.state_dict().items()}, path)
        try:
            return profile(m, "1x32x32", device="cpu", weights=path)
        finally:
            path.unlink()

    return seeds.LeNet32(), run


def _stateful(fail: type[BaseException] | None, device: str, *, grads: bool = False,
              backward: bool = False) -> Case:
    def case(seeds: Any, robust: Any) -> Any:
        model = robust.Stateful(fail).train()
        if grads:  # a .grad left from the user's own step must stay as it is
            model(torch.randn(3, 4)).sum().backward()
        return model, lambda m: profile(m, "4", batch=3, device=device, mode="train",
                                        backward=backward)
    return case


CASES: dict[str, Case] = {
    "train mode with state, cpu": _stateful(None, "cpu", grads=True),
    "train mode with state, meta": _stateful(None, "meta", grads=True),
    "train mode with state, cpu, --backward": _stateful(None, "cpu", backward=True),
    "train mode with state, auto": _stateful(None, "auto"),
    "train mode, fails after the state changed": _stateful(RuntimeError, "cpu"),
    "train mode, Ctrl-C after the state changed": _stateful(KeyboardInterrupt, "cpu"),
    "train mode, Ctrl-C on meta": _stateful(KeyboardInterrupt, "meta"),
    "success on meta": _ok_meta,
    "success on cpu, train mode": _ok_cpu_train,
    "success with --dtype": _ok_dtype,
    "failure + hint search": _fails_with_hint,
    "failure on cpu": _fails_on_cpu,
    "KeyboardInterrupt in forward": _interrupted,
    "KeyboardInterrupt on cpu": _interrupted_cpu,
    "weights swapped in on cpu": _weights,
}


@pytest.mark.parametrize("case", list(CASES))
def test_instance_is_left_as_found(case: str, fixtures: Any) -> None:
    model, action = CASES[case](*fixtures)
    before = snapshot(model)
    with contextlib.suppress(ModelFailedError, KeyboardInterrupt):
        action(model)
    assert_same(before, model)


def test_interrupt_propagates_and_cli_exits_130(capsys: pytest.CaptureFixture[str],
                                               fixtures: Any) -> None:
    model = fixtures[1].Interrupting()
    with pytest.raises(KeyboardInterrupt):
        profile(model, "4")
    code = main([f"{FIXTURES}/robust_models.py:Interrupting", "--input", "4"])
    out, err = capsys.readouterr()
    assert code == EXIT_INTERRUPTED
    assert "Traceback" not in out + err
    # one line, no blank line before it (click's own main writes one on Ctrl-C)
    assert err.splitlines()[:1] == ["cnnprof: error: interrupted (the model was left as found)"]
    # stdout is ours again after the interrupted run redirected it
    print("still here")
    assert capsys.readouterr().out == "still here\n"


@pytest.mark.cuda
def test_instance_is_left_as_found_on_cuda(fixtures: Any) -> None:
    model = fixtures[1].Stateful().train().cuda()
    before = snapshot(model)
    profile(model, "4", batch=3, device="cuda", mode="train", backward=True)
    assert_same(before, model)
