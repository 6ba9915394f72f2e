"""``cnnprof check``: exit codes 0/1/2, every output format, ``--init``, pyproject.toml."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cnnprof.budget import parse_budget

# LeNet: 61,610 params, 341,256 MACs, 695,334 FLOPs; BasicBlock(64): 73,984 params
PASSING = """\
[models.lenet]
max_params = "62K"
max_macs = "342K"

[models.basic_block]
max_params = "74K"
"""
FAILING = PASSING.replace('max_macs = "342K"', 'max_macs = "300K"')


@pytest.fixture
def budget_file(tmp_path: Path):
    def write(text: str, name: str = "budgets.toml") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


def test_pass_exits_0_with_table(cli, budget_file) -> None:
    res = cli("check", budget_file(PASSING), "--width", "200")
    assert res.code == 0, res.err
    row = next(ln for ln in res.out.splitlines() if "lenet" in ln and "MACs" in ln)
    # 341,256 of 342,000: headroom 1 - 341256/342000 = +0.2%
    assert "341K" in row and "342K" in row and "+0.2%" in row and "ok" in row
    assert "3 limit(s) on 2 model(s): all within budget" in res.out


def test_fail_exits_1_and_names_the_limit(cli, budget_file) -> None:
    res = cli("check", budget_file(FAILING), "--width", "200")
    assert res.code == 1
    row = next(ln for ln in res.out.splitlines() if "lenet" in ln and "MACs" in ln)
    # 1 - 341256/300000 = -13.8%
    assert "300K" in row and "-13.8%" in row and "OVER" in row
    assert "1 exceeded" in res.out


def test_malformed_exits_2_with_line_and_key(cli, budget_file) -> None:
    res = cli("check", budget_file(PASSING.replace("max_macs", "max_macz")))
    assert res.code == 2
    assert "budgets.toml:3: models.lenet.max_macz: unknown key" in res.err
    assert "did you mean max_macs?" in res.err
    res = cli("check", budget_file(PASSING.replace('"62K"', '"62K')))
    assert res.code == 2 and "budgets.toml:2: invalid TOML" in res.err


def test_missing_model_and_file_exit_2(cli, budget_file, tmp_path: Path) -> None:
    res = cli("check", budget_file(PASSING.replace("[models.basic_block]",
                                                   "[models.basic_blok]")))
    assert res.code == 2
    assert "budgets.toml:5: models.basic_blok: unknown model 'basic_blok'" in res.err
    assert "did you mean basic_block" in res.err
    res = cli("check", str(tmp_path / "absent.toml"))
    assert res.code == 2 and "not found" in res.err


def test_failing_forward_exits_1(cli, budget_file) -> None:
    res = cli("check", budget_file('[models.alexnet_seed_227]\nmax_params = "100M"\n'),
              "--width", "200")
    assert res.code == 1
    assert "FAILED" in res.out and "forward failed" in res.out


def test_json_format(cli, budget_file) -> None:
    res = cli("check", budget_file(FAILING), "--format", "json")
    assert res.code == 1
    data = json.loads(res.out)
    assert data["schema"] == "cnnprof.budget-check/1" and data["ok"] is False
    macs = next(r for r in data["rows"] if r["model"] == "lenet" and r["metric"] == "macs")
    assert macs == {"model": "lenet", "metric": "macs", "value": 341_256, "limit": 300_000.0,
                    "status": "over", "headroom": pytest.approx(1 - 341_256 / 300_000),
                    "note": "", "line": 3}


def test_junit_format_to_file(cli, budget_file, tmp_path: Path) -> None:
    target = tmp_path / "out" / "budget.xml"
    res = cli("check", budget_file(FAILING), "--format", "junit", "--output", str(target))
    assert res.code == 1 and res.out == ""
    root = ET.fromstring(target.read_text())
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"lenet.params", "lenet.macs", "basic_block.params"}
    failure = cases["lenet.macs"].find("failure")
    assert failure is not None and "exceeds limit 300K" in (failure.get("message") or "")
    assert cases["lenet.params"].find("failure") is None


def test_github_format(cli, budget_file) -> None:
    path = budget_file(FAILING)
    res = cli("check", path, "--format", "github")
    assert res.code == 1
    errors = [ln for ln in res.out.splitlines() if ln.startswith("::error ")]
    assert len(errors) == 1
    # the annotation points at the max_macs line of the budget file; ':' and ',' in
    # property values are escaped as %3A and %2C
    assert f"file={path}," in errors[0] and ",line=3," in errors[0]
    assert "title=cnnprof budget%3A lenet::" in errors[0]
    # ... and '%' in the message as %25, which GitHub shows as '%' again
    assert errors[0].endswith("lenet: MACs 341K exceeds limit 300K (headroom -13.8%25)")
    assert "1 exceeded" in res.out  # the table follows for the log


def test_unknown_format_and_extra_args(cli, budget_file) -> None:
    path = budget_file(PASSING)
    assert cli("check", path, "--format", "yaml").code == 2
    res = cli("check", path, path)
    assert res.code == 2 and "one budget file" in res.err


def test_pyproject_default(cli, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'demo'\n\n[tool.cnnprof.models.lenet]\nmax_params = \"61K\"\n")
    monkeypatch.chdir(tmp_path)
    res = cli("check", "--format", "github")
    assert res.code == 1
    assert "::error file=pyproject.toml,line=5," in res.out


def test_init_writes_a_budget_that_passes(cli, tmp_path: Path) -> None:
    target = tmp_path / "budget.toml"
    res = cli("check", "--init", "lenet", "basic_block", "--headroom", "10%",
              "--output", str(target))
    assert res.code == 0, res.err
    text = target.read_text()
    budget = parse_budget(text, str(target))
    lenet = budget.models[0]
    # 61,610 * 1.1 = 67,771 → 67.8K ; 695,334 FLOPs * 1.1 = 764,867.4 → 765K
    assert lenet.limits["params"] == 67_800 and lenet.limits["flops"] == 765_000
    assert "# now 61.6K" in text
    assert cli("check", str(target)).code == 0


def test_init_to_stdout_with_input_and_batch(cli) -> None:
    res = cli("check", "--init", "lenet_sequential", "--input", "3x32x32", "--batch", "2",
              "--headroom", "0")
    assert res.code == 0, res.err
    budget = parse_budget(res.out, "stdout")
    model = budget.models[0]
    assert (model.inputs, model.batch) == (("3x32x32",), 2)
    # headroom 0: limits are today's values rounded up at 3 digits (62,006 → 62.1K)
    assert model.limits["params"] == 62_100


def test_init_of_a_failing_model_exits_1(cli) -> None:
    # at 1x32x32 LeNet flattens 16*6*6 = 576 features into fc1, which takes 400
    res = cli("check", "--init", "lenet", "--input", "1x32x32")
    assert res.code == 1 and "forward failed" in res.err and res.out == ""


def test_init_needs_models(cli) -> None:
    res = cli("check", "--init")
    assert res.code == 2 and "needs at least one MODEL" in res.err


def test_latency_on_cpu(cli, budget_file) -> None:
    text = ('[models.lenet]\ndevice = "cpu"\nwarmup = 0\nrepeats = 3\n'
            'max_latency = "10s"\nmax_params = "62K"\n')
    res = cli("check", budget_file(text), "--format", "json")
    assert res.code == 0, res.err
    rows = {r["metric"]: r for r in json.loads(res.out)["rows"]}
    assert 0 < rows["latency"]["value"] < 10 and rows["latency"]["status"] == "ok"
    res = cli("check", budget_file(text.replace('"10s"', '"1ns"')), "--format", "json")
    assert res.code == 1


def test_latency_without_gpu_is_skipped(cli, budget_file) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    text = '[models.lenet]\ndevice = "cuda"\nmax_latency = "5ms"\nmax_params = "62K"\n'
    res = cli("check", budget_file(text), "--format", "json")
    assert res.code == 0, res.err
    rows = {r["metric"]: r for r in json.loads(res.out)["rows"]}
    assert rows["latency"]["status"] == "skipped" and "CUDA" in rows["latency"]["note"]
    assert rows["params"]["status"] == "ok"


@pytest.mark.cuda
def test_latency_on_cuda(cli, budget_file) -> None:
    text = ('[models.resnet18]\ndevice = "cuda"\nwarmup = 3\nrepeats = 10\n'
            'max_latency = "1s"\nmax_macs = "1.9G"\n')
    res = cli("check", budget_file(text), "--format", "json")
    assert res.code == 0, res.err
    rows = {r["metric"]: r for r in json.loads(res.out)["rows"]}
    # a resnet18 forward on a GPU takes milliseconds, far from 1 s and far above 1 µs
    assert 1e-5 < rows["latency"]["value"] < 0.5 and rows["latency"]["status"] == "ok"
    # 100% headroom: a re-measured latency jitters by more than a tight margin would allow
    res = cli("check", "--init", "resnet18", "--device", "cuda", "--headroom", "100%")
    assert res.code == 0, res.err
    assert 'device = "cuda"' in res.out and "max_latency" in res.out
    assert cli("check", budget_file(res.out, "init.toml")).code == 0
