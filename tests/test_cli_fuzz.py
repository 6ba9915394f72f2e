"""A hypothesis-driven fuzz of the CLI's argument space: model specs, inputs and options,
valid and not, in every command. Whatever is asked, cnnprof ends with a documented exit code
(docs/exit-codes.md), in at most one line of error, and never with a traceback or an
unforeseen exception (the "run with --debug" fallback that marks a bug).

Bounded for CI (``CNNPROF_FUZZ_EXAMPLES``, default 60, derandomised so a CI run repeats);
run it longer locally with e.g. ``CNNPROF_FUZZ_EXAMPLES=2000``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from conftest import FIXTURES, CliResult
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("CNNPROF_FUZZ_EXAMPLES", "60"))

junk = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
dims = st.lists(st.integers(min_value=-2, max_value=40), min_size=0, max_size=4)
input_specs = st.one_of(
    st.sampled_from(["1x28x28", "1x32x32", "3x224x224", "4", "16:int64", "1x28x28:fp16",
                     "3xq", "", "0x5", "1x99999999999x99999999999", "x", "1x28x28:int9"]),
    dims.map(lambda d: "x".join(map(str, d))),
    junk,
)
models = st.sampled_from([
    "lenet", "mnist_cnn", "lenet_sequential", "lenett", "timm:nope", "resnet",
    f"{FIXTURES}/exiting/exiting.py:ExitsInForward",
    f"{FIXTURES}/exiting/exiting.py:GeneratorExitInForward",
    f"{FIXTURES}/exiting/exits_at_import.py:Net",
    f"{FIXTURES}/robust_models.py:Printing", f"{FIXTURES}/robust_models.py:ReturnsNested",
    f"{FIXTURES}/robust_models.py:nope", f"{FIXTURES}/import_error.py:Net",
    "no/such/file.py:Net", "os:getcwd", "json:loads", ":", "a:b:c",
])


def option(tmp: Path) -> st.SearchStrategy[list[str]]:
    out = str(tmp / "out")
    return st.one_of(
        input_specs.map(lambda s: ["--input", s]),
        st.sampled_from(["1", "2", "0", "-1", "abc", "1,2"]).map(lambda b: ["--batch", b]),
        st.sampled_from(["float32", "fp16", "bf16", "int64", "float9", ""]).map(
            lambda d: ["--dtype", d]),
        st.sampled_from(["meta", "cpu", "auto", "cuda", "cuda:7", "gpu", "tpu", ""]).map(
            lambda d: ["--device", d]),
        st.integers(min_value=-2, max_value=5).map(lambda n: ["--depth", str(n)]),
        st.sampled_from(["table", "json", "csv", "markdown", "html", "yaml", ""]).map(
            lambda f: ["--format", f]),
        st.sampled_from(["default", "all", "bytes", "shapes", "macs,flops", "nope", ""]).map(
            lambda c: ["--columns", c]),
        st.integers(min_value=-1, max_value=300).map(lambda w: ["--width", str(w)]),
        st.sampled_from(["eval", "train", "test"]).map(lambda m: ["--mode", m]),
        st.sampled_from(["num_classes=3", "weights=DEFAULT", "x", "=1", "a=(1,"]).map(
            lambda a: ["--arg", a]),
        st.sampled_from([f"{out}.json", f"{out}.csv", f"{out}.md", f"{out}.txt", str(tmp),
                         f"{out}.json/sub/x.json"]).map(lambda o: ["--output", o]),
        st.just(["--backward"]),
        junk.map(lambda j: [j]),
    )


@st.composite
def argvs(draw: st.DrawFn, tmp: Path) -> list[str]:
    command = draw(st.sampled_from(["", "", "", "shapes", "inputs", "check", "diff", "models"]))
    argv = [command] if command else []
    if command == "check":
        argv.append(draw(st.sampled_from([
            str(FIXTURES / "budgets" / name) for name in
            ("within.toml", "over.toml", "exits.toml", "malformed.toml", "unknown_model.toml")
        ] + ["no-such-budget.toml", str(tmp)])))
    elif command == "diff":
        argv += [draw(models), draw(st.sampled_from(
            ["lenet", str(FIXTURES / "reports" / "failed_lenet.json"), str(tmp)]))]
    elif command == "models":
        for extra in draw(st.lists(st.sampled_from(
                [["--filter", "res"], ["--format", "json"], ["--format", "csv"], ["-x"]]),
                max_size=2)):
            argv += extra
    else:
        argv.append(draw(models))
    if command not in ("check", "diff", "models"):
        for extra in draw(st.lists(option(tmp), max_size=4)):
            argv += extra
    return argv


def test_no_argument_list_ends_in_a_traceback(cli: Callable[..., CliResult],
                                              tmp_path: Path) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(argvs(tmp_path))
    def check(argv: list[str]) -> None:
        result = cli(*argv)
        assert result.code in (0, 1, 2, 130), (argv, result.code, result.err)
        assert "Traceback" not in result.out + result.err, (argv, result.err)
        errors = [line for line in result.err.splitlines()
                  if line.startswith("cnnprof: error:")]
        assert len(errors) <= 1, (argv, result.err)
        if result.code == 2:  # a usage error is always explained
            assert errors, (argv, result.err)
        unforeseen = [e for e in errors if "run with --debug" in e and "sys.exit" not in e]
        assert not unforeseen, (argv, result.err)

    check()
