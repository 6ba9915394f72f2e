"""Every way a user can get the command line wrong: a clear one-line message, the right
exit code (docs/exit-codes.md), and never a traceback."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch

from cnnprof.cli.app import main
from cnnprof.errors import EXIT_FAILURE, EXIT_USAGE

FIXTURES = Path(__file__).parent / "fixtures"
SEEDS = FIXTURES / "seed_models.py"
ROBUST = FIXTURES / "robust_models.py"


class Pickled(collections.OrderedDict):  # type: ignore[type-arg]
    """A custom class inside a checkpoint: unpickling it would need arbitrary code."""


def _files(tmp: Path) -> dict[str, str]:
    torch.save({"fc.weight": torch.zeros(2, 4), "fc.bias": torch.zeros(2)}, tmp / "ok.pt")
    torch.save({"fc.weight": torch.zeros(3, 4), "fc.bias": torch.zeros(3)}, tmp / "shape.pt")
    torch.save(Pickled(fc=torch.zeros(1)), tmp / "evil.pt")
    (tmp / "junk.pt").write_bytes(b"this is not a checkpoint")
    (tmp / "empty.py").write_text("x = 1\n")
    (tmp / "syntax.py").write_text("import torch\nclass Net(torch.nn.Module)\n    pass\n")
    return {"tmp": str(tmp), "ok": str(tmp / "ok.pt"), "shape": str(tmp / "shape.pt"),
            "evil": str(tmp / "evil.pt"), "junk": str(tmp / "junk.pt"),
            "empty": str(tmp / "empty.py")}


PRINTING = f"{ROBUST}:Printing"

# (id, argv template, exit code, substring of the one-line message)
CASES: list[tuple[str, list[str], int, str]] = [
    ("unknown model", ["alexnt"], EXIT_USAGE, "did you mean alexnet"),
    ("unknown model far", ["zzzzzz"], EXIT_USAGE, "see: cnnprof models"),
    ("input 3x224 rank rejected", ["alexnet", "--input", "3x224"], EXIT_FAILURE,
     "--input 3x224x224"),
    ("input abc", ["alexnet", "--input", "abc"], EXIT_USAGE, "'abc' is not a positive integer"),
    ("input 0x4", ["alexnet", "--input", "0x4"], EXIT_USAGE, "dimensions must be positive"),
    ("input -1", ["alexnet", "--input", "-1"], EXIT_USAGE, "'-1' is not a positive integer"),
    ("input empty", ["alexnet", "--input", ""], EXIT_USAGE, "empty --input"),
    ("input dtype", ["alexnet", "--input", "3x224x224:float7"], EXIT_USAGE,
     "unknown dtype 'float7'"),
    ("input wrong channels", ["lenet", "--input", "3x28x28"], EXIT_FAILURE,
     "Conv2d expects 1 input channels, got 3"),
    ("missing file", ["no/such/net.py:Net"], EXIT_USAGE, "model file not found"),
    ("syntax error", ["{tmp}/syntax.py:Net"], EXIT_USAGE, "syntax error in"),
    ("import error", [f"{FIXTURES}/import_error.py:Net"], EXIT_USAGE,
     "raised ModuleNotFoundError"),
    ("missing class", [f"{SEEDS}:AlexNet"], EXIT_USAGE, "nn.Module classes there: AlexNetSeed"),
    ("file without class", [f"{SEEDS}"], EXIT_USAGE, "names no class"),
    ("constructor raises", [f"{ROBUST}:BadConstructor"], EXIT_USAGE, "constructor exploded"),
    ("factory returns int", [f"{ROBUST}:not_a_module", "--input", "4"], EXIT_USAGE,
     "returned int, not an nn.Module"),
    ("no input, no default", [f"{SEEDS}:LeNet32"], EXIT_USAGE, "no input shape given"),
    ("bad --arg syntax", ["lenet", "--arg", "oops"], EXIT_USAGE, "bad --arg 'oops'"),
    ("unknown --arg", ["lenet", "--arg", "colour=3"], EXIT_USAGE, "colour"),
    ("unknown dtype", ["lenet", "--dtype", "float7"], EXIT_USAGE, "unknown dtype"),
    ("integer --dtype", ["lenet", "--dtype", "int8"], EXIT_USAGE, "must be a floating type"),
    ("unknown device", ["lenet", "--device", "tpu"], EXIT_USAGE, "unknown device 'tpu'"),
    ("bad --batch", ["lenet", "--batch", "0"], EXIT_USAGE, "--batch must be a positive"),
    ("bad --batch word", ["lenet", "--batch", "many"], EXIT_USAGE, "many"),
    ("bad --depth", ["lenet", "--depth", "-1"], EXIT_USAGE, "--depth"),
    ("bad --depth word", ["lenet", "--depth", "deep"], EXIT_USAGE, "--depth"),
    ("bad --columns", ["lenet", "--columns", "nope"], EXIT_USAGE, "unknown column or preset"),
    ("bad --columns with json", ["lenet", "-f", "json", "--columns", "nope"], EXIT_USAGE,
     "unknown column or preset"),
    ("--output a directory", ["lenet", "-f", "json", "--output", "{tmp}"], EXIT_USAGE,
     "cannot write --output"),
    ("bad --format", ["lenet", "--format", "xml"], EXIT_USAGE, "unknown --format 'xml'"),
    ("bad --output suffix", ["lenet", "--output", "{tmp}/r.xyz"], EXIT_USAGE,
     "cannot tell the format"),
    ("unwritable --output", ["lenet", "--output", "{ok}/under/a/file.json"], EXIT_USAGE,
     "cannot write --output"),
    ("bad --mode", ["lenet", "--mode", "test"], EXIT_USAGE, "--mode must be eval or train"),
    ("unknown option", ["lenet", "--bogus"], EXIT_USAGE, "--bogus"),
    ("missing weights", ["lenet", "--weights", "{tmp}/nope.pt"], EXIT_USAGE,
     "--weights: file not found"),
    ("unsafe weights", [PRINTING, "--weights", "{evil}"], EXIT_USAGE, "refused to load"),
    ("junk weights", [PRINTING, "--weights", "{junk}"], EXIT_USAGE, "cannot read"),
    ("mismatched weights", [PRINTING, "--weights", "{shape}"], EXIT_USAGE,
     "fc.weight: file 3x4, model 2x4"),
    ("weights of another model", ["lenet", "--weights", "{ok}"], EXIT_USAGE,
     "do not fit the model"),
    ("file with no module class", ["{empty}:Net"], EXIT_USAGE, "has no 'Net'"),
    ("shapes unknown model", ["shapes", "alexnt"], EXIT_USAGE, "did you mean alexnet"),
    ("shapes bad format", ["shapes", "lenet", "-f", "xml"], EXIT_USAGE, "unknown --format"),
    ("inputs empty range", ["inputs", "lenet", "--min", "64", "--max", "8"], EXIT_USAGE,
     "--min 64 is larger than --max 8"),
    ("inputs bad input", ["inputs", "lenet", "--input", "1x"], EXIT_USAGE,
     "is not a positive integer"),
]
if not torch.cuda.is_available():
    CASES.append(("cuda without a GPU", ["lenet", "--device", "cuda"], EXIT_USAGE,
                  "no CUDA GPU is available"))


@pytest.mark.parametrize(("argv", "code", "needle"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_invocation(argv: list[str], code: int, needle: str, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    files = _files(tmp_path)
    args = [a.format(**files) for a in argv]
    got = main(args)
    out, err = capsys.readouterr()
    assert got == code, (out, err)
    assert needle in err, err
    assert "Traceback" not in out + err
    assert "cnnprof: error:" in err or "Usage:" in err  # click's own usage errors


def test_at_least_25_cases() -> None:
    assert len(CASES) >= 25
