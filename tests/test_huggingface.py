"""Hugging Face models through ``hf:`` specs: offline, built from configs on meta, checked
against the transformers model itself (params) and torch's FlopCounterMode (MACs)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from cnnprof import profile
from cnnprof.errors import InputSpecError, UsageError
from cnnprof.report import Report

transformers = pytest.importorskip("transformers")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

SMALL_LLAMA = {"num_hidden_layers": 2, "hidden_size": 256, "intermediate_size": 512,
               "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000}


def _args(overrides: dict[str, Any]) -> list[str]:
    out = []
    for key, value in overrides.items():
        out += ["--arg", f"{key}={value}"]
    return out


def _oracle(model_type: str, auto: str, config_kwargs: dict[str, Any],
            inputs: dict[str, tuple[tuple[int, ...], torch.dtype]]) -> tuple[int, int]:
    """params = sum(numel) of the transformers model, MACs = FlopCounterMode on meta / 2;
    built here straight from transformers, not through cnnprof."""
    config = transformers.AutoConfig.for_model(model_type, **config_kwargs)
    with torch.device("meta"):
        model = getattr(transformers, auto).from_config(config)
    model.eval()
    tensors = {name: torch.zeros(shape, dtype=dtype, device="meta")
               for name, (shape, dtype) in inputs.items()}
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(**tensors)
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2


def _profile_cli(cli: Any, spec: str, *argv: str) -> dict[str, Any]:
    res = cli(spec, *argv, "-f", "json")
    assert res.code == 0, res.err
    data: dict[str, Any] = json.loads(res.out)
    return data


def test_bert_default_config_from_the_cli_matches_transformers(cli: Any) -> None:
    """Acceptance 1: cnnprof hf:bert --input input_ids=128:int64 -f json."""
    data = _profile_cli(cli, "hf:bert", "--input", "input_ids=128:int64")
    params, macs = _oracle("bert", "AutoModel", {},
                           {"input_ids": ((1, 128), torch.int64)})
    assert data["model"] == {"spec": "hf:bert", "class": "BertModel", "source": "huggingface"}
    assert data["totals"]["params"] == params == 109_482_240
    assert data["totals"]["macs"] == macs
    assert data["inputs"] == [{"shape": [1, 128], "dtype": "int64", "name": "input_ids"}]
    assert data["device"] == "meta" and not data["unsupported_ops"]


# (model type, --arg overrides for cnnprof, the same config for transformers, auto class,
#  keyword inputs)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], str, dict[str, str]]] = [
    ("gpt2", {"head": "causal-lm", "n_layer": 2}, {"n_layer": 2}, "AutoModelForCausalLM",
     {"input_ids": "64:int64"}),
    ("t5", {"num_layers": 2, "num_decoder_layers": 2, "d_model": 128, "d_ff": 256,
            "num_heads": 4, "d_kv": 32},
     {"num_layers": 2, "num_decoder_layers": 2, "d_model": 128, "d_ff": 256, "num_heads": 4,
      "d_kv": 32}, "AutoModel", {"input_ids": "32:int64", "decoder_input_ids": "16:int64"}),
    ("llama", {"head": "causal-lm", **SMALL_LLAMA}, SMALL_LLAMA, "AutoModelForCausalLM",
     {"input_ids": "64:int64"}),
    ("mistral", {"head": "causal-lm", **SMALL_LLAMA}, SMALL_LLAMA, "AutoModelForCausalLM",
     {"input_ids": "64:int64"}),
    ("qwen2", {**SMALL_LLAMA, "num_attention_heads": 8}, {**SMALL_LLAMA, "num_attention_heads": 8},
     "AutoModel", {"input_ids": "64:int64"}),  # GQA: 8 query heads share 2 KV heads
    ("vit", {"num_hidden_layers": 2, "image_size": 64}, {"num_hidden_layers": 2,
                                                         "image_size": 64},
     "AutoModel", {"pixel_values": "3x64x64"}),
    # a plain key reaches both towers' sub-configs; a dotted one only the named one
    ("clip", {"num_hidden_layers": 2, "vision_config.image_size": 64},
     {"text_config": {"num_hidden_layers": 2},
      "vision_config": {"num_hidden_layers": 2, "image_size": 64}},
     "AutoModel", {"input_ids": "16:int64", "pixel_values": "3x64x64"}),
    ("whisper", {"encoder_layers": 1, "decoder_layers": 1, "d_model": 96,
                 "max_source_positions": 100},
     {"encoder_layers": 1, "decoder_layers": 1, "d_model": 96, "max_source_positions": 100},
     "AutoModel", {"input_features": "80x200", "decoder_input_ids": "8:int64"}),
]


def _shape(spec: str) -> tuple[tuple[int, ...], torch.dtype]:
    dims, _, dtype = spec.partition(":")
    return (1, *(int(d) for d in dims.split("x"))), getattr(torch, dtype or "float32")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hf_spec_matches_transformers_and_flop_counter(
        cli: Any, case: tuple[str, dict[str, Any], dict[str, Any], str, dict[str, str]]) -> None:
    model_type, overrides, config_kwargs, auto, inputs = case
    argv = _args(overrides)
    for name, spec in inputs.items():
        argv += ["--input", f"{name}={spec}"]
    data = _profile_cli(cli, f"hf:{model_type}", *argv)
    params, macs = _oracle(model_type, auto, config_kwargs,
                           {n: _shape(s) for n, s in inputs.items()})
    assert data["totals"]["params"] == params
    assert data["totals"]["macs"] == macs
    assert [i["name"] for i in data["inputs"]] == list(inputs)
    assert not data["unsupported_ops"]
    leaves = sum(r["macs"] for r in data["layers"] if r["is_leaf"])
    assert leaves == data["totals"]["macs"]  # leaf rows add up, keyword inputs or not


def test_attention_mask_needs_values_and_changes_no_macs(cli: Any) -> None:
    """transformers looks at the mask's values (all ones → no mask), so a mask sends a small
    model to the CPU, with ones (attend everywhere); the MACs are the unmasked ones."""
    argv = [*_args({"num_hidden_layers": 2}), "--input", "input_ids=128:int64"]
    plain = _profile_cli(cli, "hf:bert", *argv)
    masked = _profile_cli(cli, "hf:bert", *argv, "--input", "attention_mask=128:int64")
    assert masked["totals"]["macs"] == plain["totals"]["macs"]
    assert masked["device"] == "cpu" and "counted on the CPU" in " ".join(masked["notes"])


def test_default_inputs_per_modality() -> None:
    from cnnprof.zoo import resolve

    def names(spec: str) -> list[str]:
        return [str(s) for s in resolve(spec).default_inputs]

    assert names("hf:bert") == ["input_ids=128:int64"]
    assert names("hf:vit") == ["pixel_values=3x224x224"]
    assert names("hf:clip") == ["input_ids=77:int64", "pixel_values=3x224x224"]  # 77 positions
    assert names("hf:whisper") == ["input_features=80x3000", "decoder_input_ids=128:int64"]
    assert names("hf:t5") == ["input_ids=128:int64", "decoder_input_ids=128:int64"]


def test_default_inputs_run_without_input_flags(cli: Any) -> None:
    data = _profile_cli(cli, "hf:whisper", *_args({"encoder_layers": 1, "decoder_layers": 1}))
    assert data["inputs"] == [
        {"shape": [1, 80, 3000], "dtype": "float32", "name": "input_features"},
        {"shape": [1, 128], "dtype": "int64", "name": "decoder_input_ids"},
    ]
    assert data["totals"]["macs"] > 0


def test_tied_embedding_is_one_tensor_counted_once_and_shown(cli: Any) -> None:
    data = _profile_cli(cli, "hf:gpt2", *_args({"head": "causal-lm", "n_layer": 1}),
                        "--input", "input_ids=16:int64")
    rows = {r["name"]: r for r in data["layers"]}
    assert rows["lm_head"]["shared_params_with"] == "transformer.wte"
    assert rows["transformer.wte"]["shared_params_with"] == "lm_head"
    assert rows["lm_head"]["params"] == rows["transformer.wte"]["params"] == 50257 * 768
    assert "shared_params_with" not in rows["transformer.wpe"]
    assert data["totals"]["params"] == rows[""]["params"]
    leaf_params = sum(r["params"] for r in data["layers"] if r["is_leaf"])
    assert leaf_params - data["totals"]["params"] == 50257 * 768  # the one tensor, twice
    table = cli("hf:gpt2", *_args({"head": "causal-lm", "n_layer": 1}), "--input",
                "input_ids=16:int64", "--width", "150", "--depth", "1")
    assert table.code == 0
    lm_head = next(line for line in table.out.splitlines() if line.strip().startswith("lm_head"))
    assert "↔" in lm_head
    assert "↔ shared parameters (one tensor, counted once in the totals): " \
           "transformer.wte ↔ lm_head" in table.out


def test_report_with_names_shared_and_generation_round_trips(cli: Any) -> None:
    data = _profile_cli(cli, "hf:gpt2", *_args({"n_layer": 1}), "--decode", "4")
    report = Report.from_dict(data)
    assert report.to_dict() == data
    assert report.generation is not None and report.generation.context == 4


# -- one decoding step ----------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 3])
def test_decode_step_macs_and_cache_bytes_are_analytic(cli: Any, batch: int) -> None:
    n = 100  # tokens already in the KV cache
    d, layers, heads, kv_heads, ff, vocab = 256, 2, 4, 2, 512, 1000
    head_dim = d // heads  # 64
    data = _profile_cli(cli, "hf:llama", *_args(SMALL_LLAMA), "--decode", str(n),
                        "--batch", str(batch))
    per_layer = (
        d * heads * head_dim          # q projection
        + 2 * d * kv_heads * head_dim  # k and v projections (grouped-query: 2 KV heads)
        + heads * head_dim * d        # o projection
        + heads * (n + 1) * head_dim  # scores: the new query against N cached keys + its own
        + heads * (n + 1) * head_dim  # weighted sum of N + 1 values
        + 3 * d * ff                  # gate, up, down
    )
    expected = batch * (layers * per_layer + d * vocab)  # + LM head for the one new token
    # 2*(65536 + 2*32768 + 65536 + 6464 + 6464 + 393216) + 256000 = 1,539,072 per sequence
    assert expected == batch * 1_539_072
    assert data["totals"]["macs"] == expected
    gen = data["generation"]
    # keys and values × layers × tokens × kv heads × head dim × float32
    assert gen["kv_cache_bytes"] == 2 * layers * batch * n * kv_heads * head_dim * 4
    assert gen["weight_bytes"] == data["totals"]["param_bytes"]
    assert gen["step_read_bytes"] == gen["weight_bytes"] + gen["kv_cache_bytes"]
    assert (gen["context"], gen["batch"], gen["layers"], gen["kv_heads"], gen["head_dim"]) == \
        (n, batch, layers, kv_heads, head_dim)
    assert data["inputs"] == [{"shape": [batch, 1], "dtype": "int64", "name": "input_ids"}]
    assert data["model"]["class"] == "LlamaForCausalLM"  # --decode picks the causal-LM head


def test_decode_dtype_sets_cache_and_weight_bytes(cli: Any) -> None:
    data = _profile_cli(cli, "hf:qwen2", *_args(SMALL_LLAMA), "--decode", "10",
                        "--dtype", "bfloat16")
    gen = data["generation"]
    assert gen["dtype"] == "bfloat16"
    assert gen["kv_cache_bytes"] == 2 * 2 * 10 * 2 * 64 * 2
    assert gen["weight_bytes"] == 2 * data["totals"]["params"]


def test_decode_from_python_on_a_transformers_instance() -> None:
    config = transformers.AutoConfig.for_model("llama", **SMALL_LLAMA)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    report = profile(model, decode=100)
    assert report.totals.macs == 1_539_072  # the analytic count of the test above
    assert report.generation is not None
    assert report.generation.kv_cache_bytes == 2 * 2 * 100 * 2 * 64 * 4


def test_decode_refuses_what_it_cannot_count(cli: Any) -> None:
    res = cli("hf:t5", "--decode", "8")
    assert res.code == 2 and "t5 has no causal-lm head" in res.err
    res = cli("hf:t5", "--decode", "8", "--arg", "head=seq2seq-lm")
    assert res.code == 2 and "decoder-only" in res.err
    res = cli("hf:llama", "--decode", "8", "--input", "input_ids=8:int64")
    assert res.code == 2 and "--decode makes its own inputs" in res.err
    with pytest.raises(UsageError, match="transformers model"):
        profile("alexnet", decode=4)


# -- keyword inputs on any model ------------------------------------------------------------


class Gated(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor, *, gate: torch.Tensor | None = None) -> torch.Tensor:
        out = self.fc(x)
        return out if gate is None else out * gate


def test_keyword_inputs_from_python_as_specs_and_tensors() -> None:
    model = Gated()
    by_spec = profile(model, inputs={"x": "8", "gate": "4"}, device="meta")
    assert [(i.name, i.shape) for i in by_spec.inputs] == [("x", (1, 8)), ("gate", (1, 4))]
    assert by_spec.totals.macs == 32
    mixed = profile(model, ["8", "gate=4"], batch=2, device="meta")
    assert [i.name for i in mixed.inputs] == [None, "gate"]
    assert mixed.to_dict()["inputs"][0] == {"shape": [2, 8], "dtype": "float32"}  # no name key
    tensors = profile(model, inputs={"x": torch.randn(3, 8), "gate": torch.randn(3, 4)})
    assert tensors.inputs[1].shape == (3, 4) and tensors.totals.flops == by_spec.totals.flops * 3
    without = profile(model, ["8"], device="meta")
    assert without.totals.flops < by_spec.totals.flops  # the gate's multiply ran above


def test_keyword_inputs_bad_uses() -> None:
    model = Gated()
    with pytest.raises(InputSpecError) as caught:
        profile(model, inputs={"x": "8", "gait": "4"}, device="meta")
    assert caught.value.one_line() == ("Gated.forward takes no input 'gait' "
                                       "(did you mean gate? its inputs: x, gate)")
    with pytest.raises(InputSpecError, match="given twice"):
        profile(model, ["x=8", "x=8"], device="meta")
    with pytest.raises(InputSpecError, match="not a keyword name"):
        profile(model, ["2x=8"], device="meta")


def test_keyword_inputs_on_the_cli_with_a_model_file(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "gated.py"
    path.write_text(
        "import torch\n"
        "class Gated(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.fc = torch.nn.Linear(8, 4)\n"
        "    def forward(self, x, gate=None):\n"
        "        return self.fc(x) * gate\n")
    data = _profile_cli(cli, f"{path}:Gated", "--input", "8", "--input", "gate=4")
    assert [i.get("name") for i in data["inputs"]] == [None, "gate"]
    res = cli(f"{path}:Gated", "--input", "8", "--input", "mask=4")
    assert res.code == 2
    assert res.err.strip().splitlines() == [
        "cnnprof: error: Gated.forward takes no input 'mask' (its inputs: x, gate)"]


# -- errors: one line, exit 2, and never a network connection -------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every socket connection attempt is recorded and refused."""
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError("network use in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def _one_line_error(res: Any) -> str:
    assert res.code == 2, (res.code, res.err)
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.err, res.err
    return str(lines[0])


def test_errors_are_one_line_and_offline(cli: Any, tmp_path: Path, no_network: list[Any],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "hub-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    empty = tmp_path / "empty"
    empty.mkdir()
    line = _one_line_error(cli("hf:meta-llama/Llama-2-7b-hf"))
    assert "not in the local Hugging Face cache" in line and str(cache) in line
    assert "hf:./DIR" in line
    line = _one_line_error(cli(f"hf:{empty}"))
    assert "has no config.json" in line
    line = _one_line_error(cli("hf:lama"))
    assert "unknown Hugging Face model type 'lama'" in line and "hf:llama" in line
    line = _one_line_error(cli("hf:bert", "--arg", "num_hiden_layers=2"))
    assert "no field 'num_hiden_layers'" in line and "num_hidden_layers" in line
    line = _one_line_error(cli("hf:bert", "--input", "input_ids=8:int64",
                               "--input", "attention_mask=8:int64",
                               "--input", "token_ids=8:int64"))
    assert "BertModel.forward takes no input 'token_ids'" in line
    line = _one_line_error(cli("hf:bert", "--arg", "head=causal"))
    assert "unknown head 'causal'" in line and "causal-lm" in line
    line = _one_line_error(cli("hf:vit", "--arg", "head=causal-lm"))
    assert "vit has no causal-lm head" in line and "image-classification" in line
    line = _one_line_error(cli("hf:./missing-dir"))
    assert "no such file or directory" in line
    # a success touches no network either
    assert cli("hf:bert", *_args({"num_hidden_layers": 1}), "-f", "json").code == 0
    assert no_network == []


def _write_cache(cache: Path, repo: str, config: dict[str, Any]) -> None:
    """The layout huggingface_hub writes: refs/main → snapshots/<commit>/config.json."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(config))


def test_hub_id_from_the_local_cache_and_a_directory(cli: Any, tmp_path: Path,
                                                     no_network: list[Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], **SMALL_LLAMA}
    cache = tmp_path / "cache"
    _write_cache(cache, "acme/tiny-llama", config)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    from_cache = _profile_cli(cli, "hf:acme/tiny-llama", "--input", "input_ids=32:int64")
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    from_dir = _profile_cli(cli, f"hf:{folder}", "--input", "input_ids=32:int64")
    from_file = _profile_cli(cli, f"hf:{folder / 'config.json'}", "--input", "input_ids=32:int64")
    params, macs = _oracle("llama", "AutoModelForCausalLM", SMALL_LLAMA,
                           {"input_ids": ((1, 32), torch.int64)})
    for data in (from_cache, from_dir, from_file):
        assert data["model"]["class"] == "LlamaForCausalLM"  # architectures[0]
        assert (data["totals"]["params"], data["totals"]["macs"]) == (params, macs)
    assert no_network == []


def test_offline_switches_are_set_during_the_build_and_restored(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from cnnprof.zoo import hf

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    seen: dict[str, str | None] = {}
    with hf.offline():
        seen = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    assert seen == {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    assert os.environ["HF_HUB_OFFLINE"] == "0" and "TRANSFORMERS_OFFLINE" not in os.environ


def test_profiling_another_model_does_not_import_transformers() -> None:
    code = ("import sys\nfrom cnnprof.cli.app import main\n"
            "main(['lenet', '-f', 'json', '-o', '/dev/null'])\n"
            "print('HF', 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HF False" in out.stdout, out.stderr


def test_meta_built_instance_with_a_real_mask_is_retried_on_the_cpu() -> None:
    """transformers reads the mask's values; an instance built on meta has none to copy, so
    the CPU retry gets example values for its parameters (counts need none)."""
    config = transformers.AutoConfig.for_model("llama", **SMALL_LLAMA)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    ids = torch.randint(0, 1000, (2, 16))
    masked = profile(model, inputs={"input_ids": ids, "attention_mask": torch.ones_like(ids)})
    plain = profile(model, inputs={"input_ids": ids})
    assert masked.device == "cpu" and plain.device == "meta"
    assert masked.totals.macs == plain.totals.macs
    assert all(p.is_meta for p in model.parameters())  # the instance is left as found


def test_models_filter_hf_lists_examples(cli: Any) -> None:
    res = cli("models", "--filter", "hf", "--format", "json")
    rows = {r["name"]: r for r in json.loads(res.out)}
    assert rows["hf:whisper"]["default_input"] == "input_features=80x3000, " \
                                                  "decoder_input_ids=128:int64"
    assert rows["hf:vit"]["task"] == "vision"


def test_bad_config_files(cli: Any, tmp_path: Path, no_network: list[Any]) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert "cannot read" in _one_line_error(cli(f"hf:{broken}"))
    untyped = tmp_path / "untyped.json"
    untyped.write_text(json.dumps({"hidden_size": 8}))
    assert "names no model_type" in _one_line_error(cli(f"hf:{untyped}"))
    custom = tmp_path / "custom.json"
    custom.write_text(json.dumps({"model_type": "my_own_arch", "auto_map": {}}))
    line = _one_line_error(cli(f"hf:{custom}"))
    assert "unknown model type 'my_own_arch'" in line and "trust_remote_code" in line
    assert "names no model" in _one_line_error(cli("hf:"))
    assert "takes a number" not in _one_line_error(cli("hf:bert", "--arg", "head=3"))
    assert no_network == []
