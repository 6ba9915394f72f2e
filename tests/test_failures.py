"""Failure reports: where a forward failed, with which shapes, and which input would work.

Seed models are in tests/fixtures/seed_models.py: the seeds/001 AlexNet that views to
256*5*5 (fits 224x224 only) and a LeNet-5 built for 32x32 inputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cnnprof.api import profile
from cnnprof.cli.app import main
from cnnprof.errors import EXIT_FAILURE, ModelFailedError

FIXTURES = Path(__file__).parent / "fixtures"
SEEDS = FIXTURES / "seed_models.py"
ROBUST = FIXTURES / "robust_models.py"
ALEXNET = f"{SEEDS}:AlexNetSeed"
LENET32 = f"{SEEDS}:LeNet32"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_seed_alexnet_at_227_names_the_view(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, ALEXNET, "--input", "3x227x227", "--width", "140")
    assert code == EXIT_FAILURE
    # the failing step is the view in AlexNetSeed.forward, after `features`
    assert "in `forward` of AlexNetSeed, after layer features" in err
    # features end at 256x6x6 = 9216 elements; the view asks for 256*5*5 = 6400
    assert "[1, 256, 6, 6]" in err and "[1, 6400]" in err and "6,400" in err
    assert "shape '[1, 6400]' is invalid for input of size 9216" in err  # the error itself
    # the layers that ran, with their shapes; the classifier never ran so is not listed
    assert "MaxPool2d" in out and "1x256x6x6" in out
    assert "classifier" not in out
    # a hint that works: 227 → 226 makes features end at 5x5 (checked by running it below)
    assert "--input 3x226x226" in err
    assert "Traceback" not in out + err
    assert profile(ALEXNET, "3x226x226").root.output_shapes == ((1, 10),)


def test_debug_shows_the_model_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, ALEXNET, "--input", "3x227x227", "--debug")
    assert code == EXIT_FAILURE
    assert "Traceback (most recent call last)" in err
    assert "x = x.view(x.size(0), 256 * 5 * 5)" in err  # the user's own line


def test_lenet32_at_28_names_fc1_and_its_widths(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, LENET32, "--input", "1x28x28")
    assert code == EXIT_FAILURE
    # 28 → conv5 24 → pool 12 → conv5 8 → pool 4: 16*4*4 = 256 features, fc1 takes 16*5*5 = 400
    assert "classifier.fc1 (Linear)" in err
    assert "expects 400 input features" in err and "got 256" in err
    assert "--input 1x32x32" in err
    assert "Traceback" not in out + err


def test_failure_json_has_the_error_and_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, LENET32, "--input", "1x28x28", "-f", "json")
    assert code == EXIT_FAILURE
    data = json.loads(out)
    error = data["error"]
    assert error["module"] == "classifier.fc1" and error["type"] == "Linear"
    assert error["input_shapes"] == [[1, 256]]
    assert error["exception"] == "RuntimeError"
    assert error["suggestion"]["inputs"] == ["1x32x32"]
    assert error["op"]["name"] == "aten.addmm"
    assert "traceback" not in error
    ran = [layer["name"] for layer in data["layers"]]
    assert "features.5" in ran and "classifier.fc2" not in ran  # only what ran


def test_api_failure_carries_partial_report_and_traceback() -> None:
    with pytest.raises(ModelFailedError) as info:
        profile(ALEXNET, "3x227x227")
    report = info.value.report
    assert report is not None and report.error is not None
    assert report.error["after"] == "features"
    assert report.error["after_output_shapes"] == [[1, 256, 6, 6]]
    assert report.error["op"]["call"] == "view(float32[1, 256, 6, 6], [1, 6400])"
    assert "Traceback" in report.error["traceback"]
    assert report.layer("features.12").output_shapes == ((1, 256, 6, 6),)


def test_channel_mismatch_is_explained_and_fixed() -> None:
    with pytest.raises(ModelFailedError) as info:
        profile(LENET32, "3x32x32")
    error = info.value.report.error  # type: ignore[attr-defined]
    assert "Conv2d expects 1 input channels, got 3" in error["message"]
    assert error["suggestion"]["inputs"] == ["1x32x32"]
    assert error["suggestion"]["change"] == "channels"


def test_rank_the_model_rejects_gets_a_rank_hint() -> None:
    with pytest.raises(ModelFailedError) as info:
        profile(ALEXNET, "3x224")  # batch prepended: [1, 3, 224] is read as unbatched CHW
    error = info.value.report.error  # type: ignore[attr-defined]
    assert error["suggestion"]["inputs"] == ["3x224x224"]


def test_batchnorm_train_batch1_error_is_clear() -> None:
    with pytest.raises(ModelFailedError) as info:
        profile(f"{ROBUST}:BatchNormHead", "4", mode="train")
    error = info.value.report.error  # type: ignore[attr-defined]
    assert error["module"] == "bn"
    assert "--batch 2" in error["hint"]
    # and the hint is right
    assert profile(f"{ROBUST}:BatchNormHead", "4", mode="train", batch=2).root.calls == 1


def test_float_into_embedding_suggests_int_indices() -> None:
    with pytest.raises(ModelFailedError) as info:
        profile(f"{ROBUST}:Embedder", "16")
    error = info.value.report.error  # type: ignore[attr-defined]
    assert error["module"] == "emb"
    assert "integer indices" in error["message"]
    assert error["suggestion"]["inputs"] == ["16:int64"]


def test_python_error_in_forward_is_reported_without_an_op() -> None:
    with pytest.raises(ModelFailedError) as info:
        profile(f"{ROBUST}:TrainOnly", "4")
    error = info.value.report.error  # type: ignore[attr-defined]
    assert "op" not in error
    assert "this model only runs in train mode" in error["message"]


# -- cnnprof shapes ---------------------------------------------------------------------------


def test_shapes_lists_every_layer(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "shapes", "lenet")
    assert code == 0
    lines = out.splitlines()
    # seeds/001's comments: 28x28x6 → 14x14x6 → 10x10x16 → 5x5x16 → 400 → 120 → 84 → 10
    assert any("layer1.conv1" in line and "→ [1, 6, 28, 28]" in line for line in lines)
    assert any("layer2.pool2" in line and "→ [1, 16, 5, 5]" in line for line in lines)
    assert any("layer3.fc1" in line and "[1, 400]" in line for line in lines)
    assert lines[-1].split()[-2:] == ["[1,", "10]"]


def test_shapes_on_failure_shows_what_ran(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "shapes", ALEXNET, "--input", "3x227x227")
    assert code == EXIT_FAILURE
    assert "features.12" in out and "[1, 256, 6, 6]" in out
    assert "✗ in forward of AlexNetSeed, after features" in out
    assert "Traceback" not in out + err


def test_shapes_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "shapes", "lenet", "--all", "-f", "json")
    assert code == 0
    data = json.loads(out)
    assert data["output_shapes"] == [[1, 10]]
    assert [r["name"] for r in data["layers"]][:2] == ["layer1", "layer1.conv1"]


# -- cnnprof inputs ---------------------------------------------------------------------------


def test_inputs_finds_the_exact_range_of_seed_alexnet(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inputs", ALEXNET, "--input", "3x227x227", "-f", "json")
    assert code == 0
    data = json.loads(out)
    # view needs a 5x5 map: pool3/2 input 11..12, conv11/4 output 47..54 → sizes 195..226
    assert data["accepted"] == [[195, 226]]
    assert data["smallest"] == {"input": "3x195x195", "output_shapes": [[1, 10]]}
    assert data["probed"] < 512


def test_inputs_sampled_scan_agrees_with_exhaustive(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inputs", LENET32, "--input", "1x32x32", "--max", "96",
                       "--exhaustive", "-f", "json")
    assert code == 0
    exhaustive = json.loads(out)
    code, out, _ = run(capsys, "inputs", LENET32, "--input", "1x32x32", "--max", "96",
                       "-f", "json")
    sampled = json.loads(out)
    # conv5 → pool2 → conv5 → pool2 must end at 5x5: sizes 32..35
    assert exhaustive["accepted"] == sampled["accepted"] == [[32, 35]]
    assert exhaustive["exhaustive"] and exhaustive["probed"] == 96


def test_inputs_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inputs", "lenet", "--max", "64")
    assert code == 0
    assert "Smallest that runs: --input 1x28x28 (output [1, 10])" in out


def test_inputs_with_no_accepted_size_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inputs", ALEXNET, "--input", "3x8x8", "--max", "64")
    assert code == EXIT_FAILURE
    assert "No size in the range runs." in out


def test_inputs_leaves_an_instance_untouched() -> None:
    import sys

    from cnnprof.inputs import InputSpec
    from cnnprof.inspect_inputs import Prober, scan_sizes

    sys.path.insert(0, str(FIXTURES))
    try:
        from seed_models import LeNet32
    finally:
        sys.path.pop(0)
    model = LeNet32().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with Prober(model) as prober:
        scan = scan_sizes(prober, [InputSpec((1, 32, 32))], 1, 64)
    assert scan.accepted() == [(32, 35)]
    assert model.training and all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) and after[k].device.type == "cpu" for k in before)


def test_zoo_alexnet_seed_227(capsys: pytest.CaptureFixture[str]) -> None:
    from cnnprof.zoo import classic

    if "alexnet_seed_227" not in classic.ENTRIES:
        pytest.skip("the classic zoo has no alexnet_seed_227 yet")
    code, out, err = run(capsys, "alexnet_seed_227", "--input", "3x227x227")
    assert code == EXIT_FAILURE
    assert "after layer features" in err and "[1, 256, 6, 6]" in err and "6,400" in err
    assert "--input 3x226x226" in err
    assert "Traceback" not in out + err
