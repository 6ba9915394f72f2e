"""Acceptance of the foundation: the main job, JSON, output files, zoo listing, user files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import FIXTURES

from cnnprof.report import Report


def test_alexnet_table_has_every_module_with_shapes(cli):
    res = cli("alexnet", "--input", "3x224x224", "--width", "200")
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    conv0 = [ln for ln in lines if "Conv2d" in ln and "1x3x224x224" in ln]
    assert conv0 and "1x64x55x55" in conv0[0]
    assert any("Linear" in ln and "1x4096" in ln and "1x1000" in ln for ln in lines)
    assert "61,100,840" in res.out
    # one row per module: features.0..12 and classifier.0..6 print as indented indices
    assert sum(1 for ln in lines if ln.strip()[:1].isdigit()) == 13 + 7
    assert all(any(ln.strip().startswith(name) for ln in lines)
               for name in ("features", "avgpool", "classifier"))


def test_alexnet_json_carries_the_same(cli):
    res = cli("alexnet", "--input", "3x224x224", "--format", "json")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["schema"] == "cnnprof.report/1"
    assert data["totals"]["params"] == 61_100_840
    layers = {layer["name"]: layer for layer in data["layers"]}
    assert layers["features.0"]["input_shapes"] == [[1, 3, 224, 224]]
    assert layers["features.0"]["output_shapes"] == [[1, 64, 55, 55]]
    assert layers["classifier.6"]["output_shapes"] == [[1, 1000]]
    assert layers[""]["depth"] == 0 and layers["features.0"]["depth"] == 2
    # execution order: features before avgpool before classifier
    names = [layer["name"] for layer in data["layers"]]
    assert names.index("features.12") < names.index("avgpool") < names.index("classifier.0")
    assert Report.from_dict(data).to_dict() == data


def test_output_suffix_picks_the_format(cli, tmp_path: Path):
    target = tmp_path / "r.json"
    res = cli("alexnet", "--output", str(target))
    assert res.code == 0, res.err
    assert json.loads(target.read_text())["totals"]["params"] == 61_100_840
    assert res.out == ""


def test_batch_dtype_and_depth(cli):
    res = cli("alexnet", "--batch", "4", "--dtype", "float16", "-f", "json")
    data = json.loads(res.out)
    assert data["inputs"] == [{"shape": [4, 3, 224, 224], "dtype": "float16"}]
    assert data["layers"][1]["input_dtypes"] == ["float16"]
    folded = cli("alexnet", "--depth", "1", "--width", "200")
    assert folded.code == 0
    assert "Conv2d" not in folded.out and "features" in folded.out and "61.1 M" in folded.out


def test_default_input_comes_from_the_zoo(cli):
    res = cli("inception_v3", "-f", "json")
    data = json.loads(res.out)
    assert data["inputs"][0]["shape"] == [1, 3, 299, 299]
    assert data["totals"]["params"] == 27_161_264  # with aux logits, as its weights


def test_seed_alexnet_user_file_with_args(cli):
    path = FIXTURES / "seed004_alexnet.py"
    res = cli(f"{path}:AlexNet", "--arg", "num_classes=10", "--input", "3x224x224", "-f", "json")
    assert res.code == 0, res.err
    data = json.loads(res.out)  # the model's print() in forward did not corrupt the JSON
    assert data["totals"]["params"] == 57_044_810
    assert data["model"]["class"] == "AlexNet" and data["model"]["source"] == "file"
    assert any("torch.Size([1, 256, 6, 6])" in note for note in data["notes"])


def test_module_factory_spec(cli):
    res = cli(
        "torchvision.models:resnet18", "--arg", "num_classes=10", "--input", "3x64x64", "-f", "json"
    )
    assert res.code == 0, res.err
    assert json.loads(res.out)["layers"][-1]["output_shapes"] == [[1, 10]]


def test_several_inputs_and_int_dtype(cli, tmp_path: Path):
    model_file = tmp_path / "two.py"
    model_file.write_text(
        "import torch\nfrom torch import nn\n"
        "class Two(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.emb = nn.Embedding(100, 8)\n        self.fc = nn.Linear(8 + 4, 2)\n"
        "    def forward(self, ids, feats):\n"
        "        return self.fc(torch.cat([self.emb(ids).mean(1), feats], dim=1))\n"
    )
    res = cli(f"{model_file}:Two", "--input", "16:int64", "--input", "4", "-b", "3", "-f", "json")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["inputs"] == [
        {"shape": [3, 16], "dtype": "int64"},
        {"shape": [3, 4], "dtype": "float32"},
    ]
    assert data["totals"]["params"] == 100 * 8 + 12 * 2 + 2


def test_models_lists_the_zoo(cli):
    res = cli("models", "--filter", "resnet", "--format", "json")
    rows = json.loads(res.out)
    names = {r["name"] for r in rows}
    assert {"resnet18", "resnet50", "quantized_resnet18", "fcn_resnet50"} <= names
    res = cli("models", "--format", "json")
    assert {"lenet", "alexnet", "vit_h_14", "raft_small", "r3d_18"} <= {
        r["name"] for r in json.loads(res.out)
    }


def test_help_is_fast_and_does_not_import_torch():
    code = (
        "import sys, runpy; sys.argv=['cnnprof','--help']\n"
        "from cnnprof.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('TORCH', 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "TORCH False" in out.stdout
    assert "profile" in out.stdout and "models" in out.stdout


def test_python_dash_m_works():
    env = {**os.environ, "COLUMNS": "200"}
    out = subprocess.run(
        [sys.executable, "-m", "cnnprof", "lenet", "-f", "json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["model"]["spec"] == "lenet"
