"""Where a count's time goes, per aten op and per module call (warm process, one thread).

    python benchmarks/overhead.py                          # → benchmarks/results/overhead.md
    python benchmarks/overhead.py --models resnet18 --rounds 5 --output /tmp/o.md
    python benchmarks/overhead.py --models regnet_y_400mf --cprofile 30 --output /tmp/o.md

For each model (built on the CPU, counted on meta as ``cnnprof.profile(model, [x])`` does) the
same forward runs under growing layers of the trace, alternating every round:

1. ``memo``: a dispatch mode that only answers ops from the meta-kernel memo (the floor of a
   meta count: torch's Python dispatch, the model's own Python, a meta tensor per result);
2. ``+ costing``: cnnprof's ``OpObserver`` (cost memo and attribution to the running module);
3. ``+ function mode``: ``FusedFunctionObserver`` (every torch function call goes through it);
4. ``+ module observation``: the whole ``run_observed`` with the leaf memo off (every module
   call observed, by a wrapped ``forward`` or a hook pair, with the function mode off the
   stack inside plain ``torch.nn`` leaves; the tree, attach/detach, the saved training flags);
5. ``leaf memo``: ``run_observed`` as it runs: plain leaves answered from the leaf memo
   (trace/leaf_memo.py) instead of running their ops (this layer takes time away);
6. ``profile()``: the full report (stand-ins, freezing the records, totals).

Times are CPU seconds of this thread (``time.thread_time``), the minimum over the rounds: on a
shared machine that is the figure least moved by other processes. Differences between rows
are the cost of each layer; divided by the number of ops or module calls they give µs per op
and µs per module call. Layer 4 also takes the function mode off the stack inside plain
leaves, so part of layer 3's cost comes back there (its per-call figure can be below the
observation's own cost). Layer 5's saving is divided by the leaf calls answered from the
memo.

``--cprofile N`` also prints, per model, the N functions with the most own time of
``profile()`` under cProfile (ten warm calls) to stderr: where to look next. cProfile adds
a fixed cost per Python call, so it ranks; the table above measures.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from results_file import publish

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "results" / "overhead.md"
MODELS = ("mobilenet_v3_large", "regnet_y_400mf", "shufflenet_v2_x1_0", "resnet50")


def measure(name: str, rounds: int, cprofile: int = 0) -> dict[str, Any]:
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    import cnnprof
    from cnnprof.trace import engine, leaf_memo, meta_cache, observers, stand_ins
    from cnnprof.zoo import resolve

    entry = resolve(name)
    model, _ = entry.build("cpu")
    model.eval()
    x = torch.randn(1, *entry.default_inputs[0].shape)
    xm = x.to("meta")
    si = engine.meta_stand_ins(model)

    class MemoOnly(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops = 0

        @classmethod
        def _should_skip_dynamo(cls) -> bool:
            return False

        def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                               kwargs: dict[str, Any] | None = None) -> Any:
            self.ops += 1
            return meta_cache.run_op_keyed(func, args, kwargs or {})[0]

    def call() -> Any:
        return stand_ins.call_with(model, si, (xm,))

    def memo() -> None:
        with MemoOnly():
            call()

    def costing() -> None:
        ops = observers.OpObserver(observers.ModuleObserver(model))
        with ops:
            call()

    def function_mode() -> None:
        ops = observers.OpObserver(observers.ModuleObserver(model))
        with observers.FusedFunctionObserver(ops), ops:
            call()

    def without_leaf_memo() -> None:
        keyed = leaf_memo.key
        leaf_memo.key = lambda *args, **kwargs: None  # no call can be keyed: all run
        try:
            engine.run_observed(model, call)
        finally:
            leaf_memo.key = keyed

    variants: dict[str, Callable[[], Any]] = {
        "memo": memo, "+ costing": costing, "+ function mode": function_mode,
        "+ module observation": without_leaf_memo,
        "leaf memo": lambda: engine.run_observed(model, call),
        "profile()": lambda: cnnprof.profile(model, [x]),
    }
    best = {k: float("inf") for k in variants}
    with torch.no_grad():
        for fn in variants.values():  # warm the memos
            fn()
        for _ in range(rounds):
            for label, fn in variants.items():
                gc.collect()
                start = time.thread_time()
                fn()
                best[label] = min(best[label], time.thread_time() - start)
        counter = MemoOnly()
        with counter:
            call()
        replayed: list[Any] = []
        replay = observers._replay

        def counted(*args: Any) -> Any:
            replayed.append(args[0])
            return replay(*args)

        observers._replay = counted
        try:
            run = engine.run_observed(model, call)
        finally:
            observers._replay = replay
    module_calls = sum(node.calls for node in run.modules.nodes.values())
    if cprofile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        with torch.no_grad():
            profiler.enable()
            for _ in range(10):
                cnnprof.profile(model, [x])
            profiler.disable()
        print(f"\n{name}: cProfile of 10 profile() calls, by own time", file=sys.stderr)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(cprofile)
    return {"best": best, "ops": counter.ops, "module_calls": module_calls,
            "modules": len(run.modules.nodes), "replayed": len(replayed)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--cprofile", type=int, default=0, metavar="N",
                        help="also print the N functions with the most own time (stderr)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    load_start = os.getloadavg()
    results = {}
    for name in args.models:
        results[name] = measure(name, args.rounds, args.cprofile)
        print(name, {k: f"{v * 1e3:.2f} ms" for k, v in results[name]["best"].items()},
              file=sys.stderr, flush=True)
    from importlib.metadata import version

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Per-op and per-module cost of a count",
        "",
        f"Generated by `{' '.join(['python benchmarks/overhead.py', *sys.argv[1:]])}` on {now}.",
        "",
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical "
        f"cores, load average (1 min) {load_start[0]:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end; torch {version('torch')}, 1 thread",
        f"- CPU time of this thread, minimum over {args.rounds} alternating rounds, warm "
        "memos (what every count after the first pays); method in the script's docstring",
        "",
        "| model | aten ops | module calls | leaf calls from the memo | memo (floor) "
        "| + costing | + function mode | + module observation | leaf memo | profile() "
        "| µs / op (costing) | µs / op (function mode) | µs / module call (observation) "
        "| µs saved / leaf call (leaf memo) | µs / row (freeze, stand-ins, totals) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, res in results.items():
        b = {k: v * 1e3 for k, v in res["best"].items()}
        ops, calls = res["ops"], res["module_calls"]
        replayed = res["replayed"]
        per = [
            (b["+ costing"] - b["memo"]) * 1e3 / ops,
            (b["+ function mode"] - b["+ costing"]) * 1e3 / ops,
            (b["+ module observation"] - b["+ function mode"]) * 1e3 / calls,
            (b["+ module observation"] - b["leaf memo"]) * 1e3 / max(1, replayed),
            (b["profile()"] - b["leaf memo"]) * 1e3 / res["modules"],
        ]
        lines.append(
            f"| {name} | {ops} | {calls} | {replayed} | " + " | ".join(
                f"{b[k]:.1f} ms" for k in ("memo", "+ costing", "+ function mode",
                                           "+ module observation", "leaf memo", "profile()"))
            + " | " + " | ".join(f"{v:.1f}" for v in per) + " |")
    lines.append("")
    text = "\n".join(lines)
    publish(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
