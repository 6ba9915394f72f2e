"""Budgets, the pure part: units, budget files (and their errors, with line and key), the
verdicts, ``check --init``'s starter text, and the ``cnnprof.testing`` helper."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from cnnprof.budget import (
    Measured,
    ModelBudget,
    exit_code,
    judge,
    load_budget,
    parse_budget,
    parse_percent,
    starter_budget,
)
from cnnprof.budget_run import run
from cnnprof.errors import BudgetFileError, UsageError
from cnnprof.testing import assert_within_budget
from cnnprof.units import UnitError, ceil_quantity, format_quantity, parse_quantity

# -- units -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "kind", "value"), [
    ("25.6M", "count", 25_600_000),
    ("4.1G", "count", 4_100_000_000),  # exactly, not 4099999999.9999995
    ("4.1 GFLOPs", "count", 4_100_000_000),
    ("25.6M params", "count", 25_600_000),
    ("1.5B", "count", 1_500_000_000),  # B = billion for counts
    ("2_000", "count", 2000),
    ("61,100,840", "count", 61_100_840),
    ("900", "count", 900),
    (1234, "count", 1234),
    ("120MB", "bytes", 120_000_000),
    ("120 mb", "bytes", 120_000_000),
    ("1.5GiB", "bytes", 1.5 * 2**30),
    ("512", "bytes", 512),
    ("8ms", "time", 0.008),
    ("250us", "time", 250e-6),
    ("250µs", "time", 250e-6),  # "µ".upper() is Greek capital mu: must still read as micro
    ("2s", "time", 2.0),
    ("1e-3", "time", 1e-3),
])
def test_parse_quantity(text: str | int, kind: str, value: float) -> None:
    assert parse_quantity(text, kind) == pytest.approx(value, rel=1e-12)


def test_decimal_limits_are_exact() -> None:
    # a model with exactly 4.1e9 MACs must sit at its limit, not over it
    assert parse_quantity("4.1G", "count") == 4_100_000_000
    assert parse_quantity("0.3GB", "bytes") == 300_000_000


@pytest.mark.parametrize(("text", "kind"), [
    ("5Q", "count"), ("-3", "count"), ("abc", "count"), ("", "count"), (True, "count"),
    ("12 parsecs", "time"), ("8 mss", "time"), ("120M", "bytes"), ("4.1G", "time"),
    (-1, "bytes"), (float("nan"), "count"), ("1.2.3M", "count"),
])
def test_parse_quantity_rejects(text: object, kind: str) -> None:
    with pytest.raises(UnitError):
        parse_quantity(text, kind)  # type: ignore[arg-type]


@given(st.integers(min_value=1, max_value=10**14), st.sampled_from(["count", "bytes"]))
def test_ceil_quantity_never_reads_back_below(value: int, kind: str) -> None:
    text = ceil_quantity(value, kind)
    back = parse_quantity(text, kind)
    # rounded up at 3 significant digits: at least the value, at most 1% more
    assert value <= back <= value * 1.01 + 1


@given(st.floats(min_value=1e-9, max_value=100.0))
def test_ceil_quantity_time(value: float) -> None:
    back = parse_quantity(ceil_quantity(value, "time"), "time")
    assert value * (1 - 1e-9) <= back <= value * 1.01


def test_format_quantity_is_what_parse_reads() -> None:
    for value, kind in [(61_100_840, "count"), (246_440, "bytes"), (0.00812, "time"),
                        (3e-6, "time")]:
        assert parse_quantity(format_quantity(value, kind), kind) == pytest.approx(value, rel=5e-3)


def test_parse_percent() -> None:
    assert parse_percent("10%") == pytest.approx(0.10)
    assert parse_percent("2.5") == pytest.approx(0.025)
    with pytest.raises(UsageError):
        parse_percent("ten")
    with pytest.raises(UsageError):
        parse_percent("-5%")


# -- budget files ----------------------------------------------------------------------------

GOOD = """\
# budgets for CI
[defaults]
max_param_bytes = "300KB"

[models.lenet]
input = "1x28x28"
max_params = "62K"
max_macs = 400000

[models."lenet-wide"]
model = "lenet"
args = { num_classes = 100 }
max_params = "70K"
"""


def test_parse_good_budget() -> None:
    budget = parse_budget(GOOD, "b.toml")
    lenet, wide = budget.models
    assert (lenet.name, lenet.spec, lenet.inputs) == ("lenet", "lenet", ("1x28x28",))
    assert lenet.limits == {"param_bytes": 300_000, "params": 62_000, "macs": 400_000}
    assert lenet.line == 5 and lenet.limit_lines == {"param_bytes": 3, "params": 7, "macs": 8}
    assert (wide.name, wide.spec, wide.args) == ("lenet-wide", "lenet", {"num_classes": 100})
    assert wide.line == 10 and wide.spec_line == 11
    assert wide.limits["param_bytes"] == 300_000  # from [defaults]


def _error(text: str, **kwargs: object) -> str:
    with pytest.raises(BudgetFileError) as info:
        parse_budget(text, "b.toml", **kwargs)  # type: ignore[arg-type]
    assert info.value.exit_code == 2
    return info.value.one_line()


def test_malformed_toml_names_the_line() -> None:
    text = GOOD.replace('max_macs = 400000', 'max_macs 400000')
    message = _error(text)
    assert message.startswith("b.toml:8: invalid TOML")


def test_unknown_key_names_line_key_and_suggestion() -> None:
    message = _error(GOOD.replace("max_macs", "max_mac"))
    assert message.startswith("b.toml:8: models.lenet.max_mac: unknown key")
    assert "did you mean max_macs?" in message


def test_bad_unit_names_line_and_key() -> None:
    message = _error(GOOD.replace('max_params = "70K"', 'max_params = "70 kilo"'))
    assert message.startswith('b.toml:13: models.lenet-wide.max_params: ')
    assert "70 kilo" in message


def test_bad_default_points_at_defaults() -> None:
    message = _error(GOOD.replace('"300KB"', '"300 bananas"'))
    assert message.startswith("b.toml:3: defaults.max_param_bytes: ")


@pytest.mark.parametrize(("edit", "line", "key", "words"), [
    (('input = "1x28x28"', 'input = "1xAx28"'), 6, "models.lenet.input", "not a positive"),
    (('input = "1x28x28"', 'input = 28'), 6, "models.lenet.input", "shape string"),
    (('input = "1x28x28"', 'dtype = "float17"'), 6, "models.lenet.dtype", "unknown dtype"),
    (('input = "1x28x28"', 'batch = 0'), 6, "models.lenet.batch", "integer >= 1"),
    (('input = "1x28x28"', 'device = "tpu"'), 6, "models.lenet.device", "unknown device"),
    (('input = "1x28x28"', 'max_latency = "5ms"'), 6, "models.lenet.max_latency",
     "needs a real device"),
    (('args = { num_classes = 100 }', 'args = 3'), 12, 'models.lenet-wide.args', "table"),
])
def test_setting_errors(edit: tuple[str, str], line: int, key: str, words: str) -> None:
    message = _error(GOOD.replace(*edit))
    assert message.startswith(f"b.toml:{line}: {key}: "), message
    assert words in message


def test_structure_errors() -> None:
    assert "nothing to check" in _error("[defaults]\nmax_params = 1\n")
    assert "b.toml:1: models: must be a table" in _error('models = "lenet"\n')
    assert "b.toml:1: models.lenet: no limits" in _error('[models.lenet]\ninput = "1x28x28"\n')
    assert "b.toml:1: budget: unknown top-level key" in _error("[budget]\nx = 1\n")
    assert "no [tool.cnnprof] table" in _error("[project]\nname = 'x'\n",
                                                 table=("tool", "cnnprof"))


def test_pyproject_table(tmp_path, monkeypatch) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'demo'\n\n[tool.ruff]\nline-length = 100\n\n"
        "[tool.cnnprof.models.lenet]\nmax_params = \"62K\"\nmax_flops = \"1M\"\n")
    monkeypatch.chdir(tmp_path)
    budget = load_budget(None)
    assert budget.path == "pyproject.toml"
    assert budget.models[0].limits == {"params": 62_000, "flops": 1_000_000}
    assert budget.models[0].line == 7 and budget.models[0].limit_lines["flops"] == 9


def test_missing_files(tmp_path, monkeypatch) -> None:
    with pytest.raises(BudgetFileError, match="not found"):
        load_budget(tmp_path / "nope.toml")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BudgetFileError, match=r"no pyproject\.toml"):
        load_budget(None)


def test_unknown_model_is_a_file_error_with_its_line() -> None:
    budget = parse_budget(GOOD.replace('model = "lenet"', 'model = "lenett"'), "b.toml")
    with pytest.raises(BudgetFileError) as info:
        run(budget)
    assert info.value.one_line().startswith(
        "b.toml:11: models.lenet-wide.model: unknown model 'lenett'")
    assert "did you mean lenet" in info.value.one_line()


# -- verdicts --------------------------------------------------------------------------------

def test_run_real_model_pass_and_fail() -> None:
    # LeNet: 61,610 params, 341,256 MACs, 246,440 param bytes (fp32: 4 B per param)
    rows = run(parse_budget(GOOD, "b.toml"))
    by = {(r.model, r.metric): r for r in rows}
    assert by["lenet", "params"].value == 61_610 and by["lenet", "params"].status == "ok"
    assert by["lenet", "macs"].value == 341_256
    assert by["lenet", "param_bytes"].value == 4 * 61_610
    # 100 classes: fc3 grows from 84*10+10 to 84*100+100 params: 61,610 + 7,650 = 69,260
    assert by["lenet-wide", "params"].value == 69_260
    assert by["lenet-wide", "params"].headroom == pytest.approx(1 - 69_260 / 70_000)
    assert exit_code(rows) == 0

    tight = GOOD.replace('max_params = "70K"', 'max_params = "69K"')
    rows = run(parse_budget(tight, "b.toml"))
    over = [r for r in rows if r.status == "over"]
    assert [(r.model, r.metric, r.line) for r in over] == [("lenet-wide", "params", 13)]
    assert over[0].headroom == pytest.approx(1 - 69_260 / 69_000)
    assert exit_code(rows) == 1


def test_judge_failed_and_skipped() -> None:
    budget = ModelBudget("m", "m", device="cuda", limits={"params": 10.0, "latency": 0.01})
    failed = judge(budget, Measured({}, failed="forward failed"))
    assert [r.status for r in failed] == ["failed", "failed"] and exit_code(failed) == 1
    skipped = judge(budget, Measured({"params": 5.0}, skipped={"latency": "no GPU"}))
    assert [r.status for r in skipped] == ["ok", "skipped"] and exit_code(skipped) == 0
    zero = judge(ModelBudget("m", "m", limits={"params": 0.0}), Measured({"params": 1.0}))
    assert zero[0].status == "over" and zero[0].headroom == -math.inf


def test_failing_model_row(tmp_path) -> None:
    # alexnet_seed_227: the seed's view(-1, 256*5*5) does not fit a 227 input
    rows = run(parse_budget('[models.alexnet_seed_227]\nmax_params = "100M"\n', "b.toml"))
    assert rows[0].status == "failed" and "forward failed" in rows[0].note
    assert exit_code(rows) == 1


def test_starter_budget_round_trips() -> None:
    from cnnprof.api import profile

    report = profile("lenet")
    text = starter_budget([("lenet", report, ["1x28x28"])], 0.10)
    budget = parse_budget(text, "init.toml")
    limits = budget.models[0].limits
    # 61,610 * 1.1 = 67,771 → rounded up at 3 digits: 67.8K
    assert limits["params"] == 67_800
    # 341,256 * 1.1 = 375,381.6 → 376K
    assert limits["macs"] == 376_000
    assert exit_code(run(budget)) == 0


# -- the Python helper ----------------------------------------------------------------------

class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(100, 10)  # 100*10 + 10 = 1,010 params; 1,000 MACs per sample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def test_assert_within_budget_passes_and_returns_report() -> None:
    report = assert_within_budget(Tiny(), "100", max_params=1010, max_macs="1K")
    assert report.totals.params == 1010


def test_assert_within_budget_shows_the_table() -> None:
    with pytest.raises(AssertionError) as info:
        assert_within_budget(Tiny(), "100", batch=4, max_params="2K", max_macs="3.9K")
    text = str(info.value)
    # batch 4: 4 * 1,000 = 4,000 MACs > 3,900
    assert "MACs" in text and "4K" in text and "3.9K" in text and "OVER" in text
    assert "params" in text and "ok" in text


def test_assert_within_budget_argument_errors() -> None:
    with pytest.raises(TypeError):
        assert_within_budget(Tiny(), "100")
    with pytest.raises(ValueError, match="max_macs"):
        assert_within_budget(Tiny(), "100", max_macs="lots")
    with pytest.raises(ValueError, match="device"):
        assert_within_budget(Tiny(), "100", max_latency="1s")


def test_assert_within_budget_latency_on_cpu_leaves_model_alone() -> None:
    model = Tiny().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert_within_budget(model, "100", max_latency="10s", device="cpu", warmup=0, repeats=2)
    assert model.training and next(model.parameters()).device.type == "cpu"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(AssertionError, match="latency"):
        assert_within_budget(model, "100", max_latency="1ns", device="cpu", warmup=0, repeats=2)
