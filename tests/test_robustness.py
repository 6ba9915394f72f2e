"""Whatever the model returns, however deep it is, whatever it prints and whatever dtype
it is fed, cnnprof answers: a report, or a clear failure with exit code 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnprof import weights
from cnnprof.api import profile
from cnnprof.cli.app import main
from cnnprof.errors import EXIT_FAILURE, ModelFailedError, ModelLoadError
from cnnprof.inputs import DTYPE_ALIASES

FIXTURES = Path(__file__).parent / "fixtures"
ROBUST = f"{FIXTURES}/robust_models.py"


@pytest.mark.parametrize(("name", "outputs"), [
    ("ReturnsNone", []),
    ("ReturnsScalar", []),
    ("ReturnsNested", [[1, 2], [1, 3], [1, 2]]),  # dict → list → tuple → dict, in order
    ("ReturnsNamedTuple", [[1, 2], [1, 4]]),
])
def test_any_output_structure(name: str, outputs: list[list[int]]) -> None:
    report = profile(f"{ROBUST}:{name}", "4")
    assert [list(s) for s in report.root.output_shapes] == outputs
    assert report.layer("fc").output_shapes == ((1, 2),)


def test_module_called_three_times_is_counted_three_times() -> None:
    report = profile(f"{ROBUST}:Reused", "4")
    fc = report.layer("fc")
    assert fc.calls == 3
    # Linear(4, 4) at batch 1: 4*4 = 16 MACs per call, ×3 calls = 48
    assert fc.macs == 48
    assert fc.params == 4 * 4 + 4  # parameters once, however often called


def test_train_only_model_needs_mode_train(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([f"{ROBUST}:TrainOnly", "--input", "4"]) == EXIT_FAILURE
    assert "only runs in train mode" in capsys.readouterr().err
    assert main([f"{ROBUST}:TrainOnly", "--input", "4", "--mode", "train"]) == 0


def test_json_stays_valid_when_the_model_prints(capsys: pytest.CaptureFixture[str]) -> None:
    # robust_models.py prints at import, Printing prints in __init__ and in forward
    code = main([f"{ROBUST}:Printing", "-f", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    notes = " | ".join(data["notes"])
    assert "forward sees (1, 4)" in notes
    assert "robust_models imported" in notes
    assert "building Printing" in notes


def test_json_stays_valid_when_a_failing_model_prints(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([f"{FIXTURES}/seed_models.py:AlexNetSeed", "--input", "3x227x227",
                 "-f", "json"])
    out, _ = capsys.readouterr()
    assert code == EXIT_FAILURE
    data = json.loads(out)
    assert "torch.Size([1, 256, 6, 6])" in " ".join(data["notes"])  # the seed's print
    assert data["error"]["after"] == "features"


@pytest.mark.parametrize("dtype", sorted(set(DTYPE_ALIASES.values())))
def test_every_input_dtype_gives_a_report_or_a_clear_failure(
        dtype: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["lenet", "--input", f"1x28x28:{dtype}", "-f", "json"])
    out, err = capsys.readouterr()
    assert code in (0, EXIT_FAILURE), err
    assert "Traceback" not in out + err
    data = json.loads(out)
    assert data["inputs"][0]["dtype"] == dtype
    if code:
        assert data["error"]["message"] and "cnnprof: error: forward failed" in err
    if dtype == "float32":  # the model's own dtype; others fail as in plain PyTorch
        assert code == 0
    if dtype in ("float16", "bfloat16", "float64"):
        assert data["error"]["suggestion"]["inputs"] == ["1x28x28"]  # back to float32


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_model_dtype_flag(dtype: str) -> None:
    report = profile("lenet", dtype=dtype)
    assert report.inputs[0].dtype == dtype
    assert report.layer("layer1.conv1").output_dtypes == (dtype,)


def test_ten_thousand_layers_without_recursion_error() -> None:
    with torch.device("meta"):
        model = nn.Sequential(*[nn.ReLU() for _ in range(10_000)])
    report = profile(model, "8")
    assert len(report.layers) == 10_001
    assert report.layers[-1].name == "9999" and report.layers[-1].output_shapes == ((1, 8),)


def test_deeply_nested_modules() -> None:
    model: nn.Module = nn.Linear(4, 4)
    for _ in range(150):  # 150 levels of nesting: torch's own recursion stays well below 1000
        model = nn.Sequential(model)
    report = profile(model, "4")
    assert max(r.depth for r in report.layers) == 150  # root 0, the Linear under 150 wrappers
    assert report.totals.macs == 16


def test_user_tensors_of_any_dtype_are_used_as_given() -> None:
    report = profile(torch.nn.Embedding(10, 3), torch.zeros(2, 5, dtype=torch.int64))
    assert report.inputs[0].shape == (2, 5) and report.inputs[0].dtype == "int64"
    assert report.root.output_shapes == ((2, 5, 3),)


# -- weights ---------------------------------------------------------------------------------


def _lenet_state() -> dict[str, torch.Tensor]:
    from cnnprof.zoo.classic import LeNet

    return {k: torch.full_like(v, 0.5) for k, v in LeNet().state_dict().items()}


def test_weights_are_checked_on_meta_and_loaded_on_cpu(tmp_path: Path) -> None:
    path = tmp_path / "lenet.pt"
    torch.save(_lenet_state(), path)
    meta = profile("lenet", weights=path)
    assert any("checked only" in n for n in meta.notes)
    cpu = profile("lenet", weights=path, device="cpu")
    assert any("(loaded)" in n for n in cpu.notes)
    assert cpu.totals.params == meta.totals.params


def test_weights_unwrap_checkpoints_and_dataparallel_prefix(tmp_path: Path) -> None:
    state = _lenet_state()
    path = tmp_path / "ckpt.pt"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    loaded = weights.load_state_dict(path)
    assert loaded.keys() == state.keys()
    from cnnprof.zoo.classic import LeNet

    model = LeNet()
    weights.apply(model, loaded, path)
    assert torch.equal(model.layer1.conv1.weight, torch.full_like(model.layer1.conv1.weight, 0.5))


def test_weights_that_need_code_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "module.pt"
    torch.save(nn.Linear(2, 2), path)  # a whole pickled module, not a state dict
    with pytest.raises(ModelLoadError, match="refused to load"):
        weights.load_state_dict(path)


def test_weight_mismatch_on_meta_names_keys_and_shapes(tmp_path: Path) -> None:
    state = _lenet_state()
    state["layer3.fc3.weight"] = torch.zeros(5, 84)
    del state["layer1.conv1.bias"]
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(ModelLoadError) as info:
        profile("lenet", weights=path)
    message = info.value.message
    assert "1 missing (layer1.conv1.bias)" in message
    assert "1 unexpected (extra.weight)" in message
    assert "layer3.fc3.weight: file 5x84, model 10x84" in message


def test_failure_report_survives_a_model_that_fails_everywhere() -> None:
    class Always(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise ValueError("never works")

    with pytest.raises(ModelFailedError) as info:
        profile(Always(), "3x8x8")
    error = info.value.report.error  # type: ignore[attr-defined]
    assert error["detail"] == "never works" and "suggestion" not in error
