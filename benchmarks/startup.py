"""Start-up: whole ``cnnprof`` processes against ``import torch`` (and torchvision), side by side.

    python benchmarks/startup.py                  # → benchmarks/results/startup.md
    python benchmarks/startup.py --rounds 5 --output /tmp/startup.md

Every round runs each command once, in an order rotated per round, so a burst of load from
elsewhere on the machine spreads over all of them; the table gives medians over the rounds and
each command's ratio to its floor (``import torch`` for commands that need no torchvision,
``import torch, torchvision`` for a torchvision model). Wall time is what a shell pays; CPU
time (user + system of the child, from ``os.wait4``) is reported beside it because it moves
less on a shared machine.

Bytecode: an installed package has its ``.pyc`` files. This checkout may run with
``PYTHONDONTWRITEBYTECODE`` set, which would recompile cnnprof's sources in every process, so
the children write and read bytecode under a temporary ``PYTHONPYCACHEPREFIX`` (warmed by one
untimed run of every command) and leave the source tree untouched.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import cpu_model, publish

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUTPUT = HERE / "results" / "startup.md"
USER_FILE = "benchmarks/models/small_cnn.py:SmallCNN"

#: (label, argv after the interpreter, floor label or None)
TORCH = 'python -c "import torch"'
TORCH_TV = 'python -c "import torch, torchvision"'
#: the CLI collects garbage rarely and freezes the collector before it exits
#: (cnnprof/cli/collector.py); these rows show what that alone does to the floors, so the
#: reader can tell it apart from cnnprof's own cost
GC_TUNED = ("import gc; gc.set_threshold(200000, 30, 30); import torch{}; gc.collect(); "
            "gc.freeze()")
#: each floor's row with the CLI's collector settings
TUNED = {TORCH: f'python -c "{GC_TUNED.format("")}"',
         TORCH_TV: f'python -c "{GC_TUNED.format(", torchvision")}"'}
COMMANDS: tuple[tuple[str, list[str], str | None], ...] = (
    (TORCH, ["-c", "import torch"], None),
    (TORCH_TV, ["-c", "import torch, torchvision"], None),
    (TUNED[TORCH], ["-c", GC_TUNED.format("")], TORCH),
    (TUNED[TORCH_TV], ["-c", GC_TUNED.format(", torchvision")], TORCH_TV),
    ("cnnprof --help", ["-m", "cnnprof", "--help"], None),
    ("cnnprof lenet -f json", ["-m", "cnnprof", "lenet", "-f", "json"], TORCH),
    (f"cnnprof {USER_FILE} -f json", ["-m", "cnnprof", USER_FILE, "-f", "json"], TORCH),
    ("cnnprof alexnet -f json", ["-m", "cnnprof", "alexnet", "-f", "json"], TORCH_TV),
)
#: acceptance (issue 21): a command's median wall time over its floor's
TARGETS = {"cnnprof lenet -f json": 1.2, f"cnnprof {USER_FILE} -f json": 1.2,
           "cnnprof alexnet -f json": 1.1}
HELP_LIMIT_S = 0.3


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {stderr[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="cnnprof-startup-pyc-")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"),
                                         *filter(None, [env.get("PYTHONPATH")])])
    for _, cmd, _ in COMMANDS:  # warm the file cache and write bytecode
        run_once(cmd, env)
    walls: dict[str, list[float]] = {label: [] for label, _, _ in COMMANDS}
    cpus: dict[str, list[float]] = {label: [] for label, _, _ in COMMANDS}
    load_start = os.getloadavg()
    began = time.perf_counter()
    for r in range(args.rounds):
        order = COMMANDS[r % len(COMMANDS):] + COMMANDS[:r % len(COMMANDS)]
        for label, cmd, _ in order:
            wall, cpu = run_once(cmd, env)
            walls[label].append(wall)
            cpus[label].append(cpu)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    load_end = os.getloadavg()
    minutes = (time.perf_counter() - began) / 60

    from importlib.metadata import version

    wall_med = {k: statistics.median(v) for k, v in walls.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpus.items()}
    cpu_name = cpu_model()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Start-up: cnnprof commands against `import torch`",
        "",
        f"Generated by `{' '.join(['python benchmarks/startup.py', *sys.argv[1:]])}` on {now}.",
        "",
        f"- machine: {cpu_name}, {os.cpu_count()} logical cores; load average (1, 5, 15 min) "
        f"{' / '.join(f'{x:.2f}' for x in load_start)} at start, "
        f"{' / '.join(f'{x:.2f}' for x in load_end)} at end; {minutes:.1f} min",
        f"- Python {platform.python_version()}, torch {version('torch')}, torchvision "
        f"{version('torchvision')}, cnnprof {version('cnnprof')} (this checkout's `src`)",
        f"- {args.rounds} rounds, each running every command once in a rotated order (after "
        "one untimed run of each); medians over the rounds; output to /dev/null; bytecode "
        "cached (see the script's docstring)",
        "",
        "| command | wall median (s) | CPU median (s) | floor | wall / floor | CPU / floor "
        "| wall / floor with the CLI's collector settings | target | holds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for label, _, floor in COMMANDS:
        row = f"| `{label}` | {wall_med[label]:.3f} | {cpu_med[label]:.3f} |"
        if floor is None:
            if label == "cnnprof --help":
                ok = wall_med[label] < HELP_LIMIT_S
                verdicts.append((label, ok, f"{wall_med[label]:.3f} s"))
                row += f" — | — | — | — | < {HELP_LIMIT_S} s | {'yes' if ok else 'no'} |"
            else:
                row += " — | — | — | — | — | — |"
        else:
            ratio = wall_med[label] / wall_med[floor]
            cpu_ratio = cpu_med[label] / cpu_med[floor]
            row += f" `{floor.split('-c ')[1]}` | {ratio:.2f} | {cpu_ratio:.2f} |"
            row += (f" {wall_med[label] / wall_med[TUNED[floor]]:.2f} |"
                    if label not in TUNED.values() else " — |")
            target = TARGETS.get(label)
            if target is None:  # information, not a goal
                row += " — | — |"
            else:
                ok = ratio <= target
                verdicts.append((label, ok, f"{ratio:.2f}x"))
                row += f" ≤ {target} | {'yes' if ok else 'no'} |"
        lines.append(row)
    lines += ["", "Runs (wall s, in round order):", ""]
    for label, _, _ in COMMANDS:
        lines.append(f"- `{label}`: " + ", ".join(f"{s:.2f}" for s in walls[label]))
    lines += ["", "Targets (issue 21): " + "; ".join(
        f"`{label}` {'meets' if ok else 'misses'} it ({text})" for label, ok, text in verdicts),
        ""]
    text = "\n".join(lines)
    publish(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
