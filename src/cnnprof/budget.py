"""Budgets: a TOML file of per-model limits → rows of value × limit × headroom.

The parsing and judging here are pure (text in, dataclasses out); running the models is
``cnnprof.budget_run``'s job, a layer above, so reading a budget file never imports torch.

A budget file (or ``[tool.cnnprof]`` in ``pyproject.toml``)::

    [defaults]                  # optional: applies to every model
    input = "3x224x224"

    [models.resnet50]           # the table name is the model spec unless `model` is given
    max_params = "25.6M"
    max_macs = "4.1G"
    max_activation_bytes = "120MB"

    [models.edge]
    model = "./net.py:EdgeNet"
    args = { width = 0.5 }
    device = "cuda"             # latency needs a real device
    max_latency = "8ms"
"""

from __future__ import annotations

import difflib
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnprof.errors import BudgetFileError, UsageError
from cnnprof.units import UnitError, ceil_quantity, format_quantity, parse_quantity

if TYPE_CHECKING:
    from cnnprof.report import Report

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    kind: str  # "count" | "bytes" | "time" (how limits are written and shown)


#: Limit keys are ``max_<metric>``; the order here is the order of the output rows.
METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric("params", "params", "count"),
        Metric("macs", "MACs", "count"),
        Metric("flops", "FLOPs", "count"),
        Metric("param_bytes", "param bytes", "bytes"),
        Metric("activation_bytes", "activation bytes", "bytes"),
        Metric("latency", "latency", "time"),
    )
}
LIMIT_KEYS = {f"max_{key}": key for key in METRICS}
#: How to build and run the model: the same knobs as ``cnnprof MODEL``.
SETTING_KEYS = ("model", "input", "batch", "dtype", "device", "mode", "args",
                "warmup", "repeats")


@dataclass(frozen=True)
class ModelBudget:
    """One ``[models.NAME]`` table, validated."""

    name: str
    spec: str
    inputs: tuple[str, ...] = ()
    batch: int = 1
    dtype: str | None = None
    device: str = "meta"
    mode: str = "eval"
    args: dict[str, Any] = field(default_factory=dict)
    #: timing schedule for max_latency (None: the timing pass's defaults for the device)
    warmup: int | None = None
    repeats: int | None = None
    #: metric key → limit in base units (elements, MACs, bytes, seconds)
    limits: dict[str, float] = field(default_factory=dict)
    #: 1-based line of the table header in the file (0 when unknown)
    line: int = 0
    #: line of the ``model =`` key (the header when the table name is the spec)
    spec_line: int = 0
    #: metric key → line of its ``max_*`` key, for annotations that point at the limit
    limit_lines: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Budget:
    models: tuple[ModelBudget, ...]
    path: str = "<budget>"


@dataclass(frozen=True)
class Row:
    """One model × metric verdict."""

    model: str
    metric: str
    limit: float
    value: float | None
    #: "ok", "over", "failed" (the model did not run) or "skipped" (no device to time on)
    status: str
    note: str = ""
    line: int = 0

    @property
    def headroom(self) -> float | None:
        """Fraction of the limit still free; negative when over."""
        if self.value is None:
            return None
        if self.limit == 0:
            return 0.0 if self.value == 0 else -math.inf
        return 1.0 - self.value / self.limit

    @property
    def kind(self) -> str:
        return METRICS[self.metric].kind

    def to_dict(self) -> dict[str, Any]:
        headroom = self.headroom
        return {
            "model": self.model, "metric": self.metric, "value": self.value,
            "limit": self.limit, "status": self.status,
            "headroom": headroom if headroom is None or math.isfinite(headroom) else None,
            "note": self.note, "line": self.line,
        }


@dataclass(frozen=True)
class Measured:
    """What ``measure`` found for one model: metric → value, or why it could not."""

    values: dict[str, float]
    failed: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)


# -- parsing ---------------------------------------------------------------------------------

def load_budget(path: str | Path | None = None) -> Budget:
    """Read a budget file, or ``[tool.cnnprof]`` of ``./pyproject.toml`` when ``path`` is None."""
    if path is None:
        candidate = Path("pyproject.toml")
        if not candidate.is_file():
            raise BudgetFileError(
                "no budget file given and no pyproject.toml here",
                hint="cnnprof check budgets.toml, or write one with cnnprof check --init MODEL",
            )
        return parse_budget(candidate.read_text(encoding="utf-8"), str(candidate),
                            table=("tool", "cnnprof"))
    file = Path(path)
    if not file.is_file():
        raise BudgetFileError(f"budget file {str(file)!r} not found")
    table = ("tool", "cnnprof") if file.name == "pyproject.toml" else ()
    return parse_budget(file.read_text(encoding="utf-8"), str(file), table=table)


def parse_budget(text: str, path: str = "<budget>", *,
                 table: tuple[str, ...] = ()) -> Budget:
    """Validate a budget document. ``table`` is where the budget lives inside it
    (``("tool", "cnnprof")`` in pyproject.toml). Every error names the line and the key."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\(at line (\d+), column \d+\)", message)
        line = int(found.group(1)) if found else 0
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", message) or "invalid TOML"
        raise BudgetFileError(f"{location(path, line)}: invalid TOML: {reason}") from None
    locate = _Locator(text)
    root: Any = document
    for part in table:
        root = root.get(part) if isinstance(root, dict) else None
    if not isinstance(root, dict):
        header = ".".join(table)
        raise BudgetFileError(f"{path}: no [{header}] table", hint="see docs/ci.md")

    def fail(keys: Sequence[str], message: str, hint: str | None = None) -> BudgetFileError:
        line = locate.line((*table, *keys))
        return BudgetFileError(f"{location(path, line)}: {dotted_key(keys)}: {message}", hint=hint)

    if not table:
        for key in root:
            if key not in ("models", "defaults"):
                raise fail([key], "unknown top-level key",
                           hint="a budget file holds [defaults] and [models.NAME] tables")
    defaults = root.get("defaults", {})
    if not isinstance(defaults, dict):
        raise fail(["defaults"], "must be a table")
    models = root.get("models")
    if models is None:
        raise fail([], "no [models.NAME] tables: nothing to check",
                   hint="add e.g. [models.resnet50] with max_params = \"25.6M\"")
    if not isinstance(models, dict):
        raise fail(["models"], "must be a table of [models.NAME] tables")
    if not models:
        raise fail(["models"], "no [models.NAME] tables: nothing to check")
    _check_keys(defaults, ["defaults"], fail)
    out: list[ModelBudget] = []
    for name, body in models.items():
        keys = ["models", name]
        if not isinstance(body, dict):
            raise fail(keys, "must be a table of settings and max_* limits")
        _check_keys(body, keys, fail)
        merged = {**defaults, **body}
        limits: dict[str, float] = {}
        limit_lines: dict[str, int] = {}
        for key, value in merged.items():
            if key in LIMIT_KEYS:
                metric = LIMIT_KEYS[key]
                origin = [*(keys if key in body else ["defaults"]), key]
                try:
                    limits[metric] = parse_quantity(value, METRICS[metric].kind)
                except UnitError as exc:
                    raise fail(origin, str(exc)) from None
                limit_lines[metric] = locate.line((*table, *origin))
        if not limits:
            raise fail(keys, "no limits", hint="add max_params, max_macs, max_flops, "
                       "max_param_bytes, max_activation_bytes or max_latency")
        entry = _settings(name, merged, limits, keys, body, fail, locate.line((*table, *keys)))
        spec_keys = [*keys, "model"] if "model" in body else (
            ["defaults", "model"] if "model" in defaults else keys)
        out.append(replace(entry, spec_line=locate.line((*table, *spec_keys)),
                           limit_lines=limit_lines))
    return Budget(tuple(out), path)


FailFn = Callable[..., BudgetFileError]


def _check_keys(body: dict[str, Any], keys: list[str], fail: FailFn) -> None:
    known = [*SETTING_KEYS, *LIMIT_KEYS]
    for key in body:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            raise fail([*keys, key], "unknown key",
                       hint=f"did you mean {close[0]}?" if close else f"known: {', '.join(known)}")


def _settings(name: str, merged: dict[str, Any], limits: dict[str, float], keys: list[str],
              body: dict[str, Any], fail: FailFn, line: int) -> ModelBudget:
    def origin(key: str) -> list[str]:
        return [*keys, key] if key in body else ["defaults", key]

    def text(key: str, default: str | None) -> str | None:
        value = merged.get(key, default)
        if value is not None and not isinstance(value, str):
            raise fail(origin(key), f"must be a string, got {value!r}")
        return value

    def integer(key: str, default: int | None, low: int) -> Any:
        value = merged.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise fail(origin(key), f"must be an integer >= {low}, got {value!r}")
        return value

    raw_inputs = merged.get("input", [])
    if isinstance(raw_inputs, str):
        raw_inputs = [raw_inputs]
    if not isinstance(raw_inputs, list) or not all(isinstance(i, str) for i in raw_inputs):
        raise fail(origin("input"), "must be a shape string such as \"3x224x224\" or a list")
    from cnnprof.errors import InputSpecError
    from cnnprof.inputs import parse_dtype, parse_input_spec

    try:
        for item in raw_inputs:
            parse_input_spec(item)
        dtype = text("dtype", None)
        if dtype is not None:
            dtype = parse_dtype(dtype)
    except InputSpecError as exc:
        key = "dtype" if "dtype" in exc.message else "input"
        raise fail(origin(key), exc.message, hint=exc.hint) from None
    args = merged.get("args", {})
    if not isinstance(args, dict):
        raise fail(origin("args"), "must be a table, e.g. args = { num_classes = 10 }")
    from cnnprof.device import parse as parse_device
    from cnnprof.errors import DeviceError

    try:
        named = parse_device(text("device", "meta") or "meta")
    except DeviceError as exc:
        raise fail(origin("device"), exc.message, hint="meta, cpu or cuda[:N]") from None
    if named is None:
        raise fail(origin("device"), "auto is not a budget device: name where to time",
                   hint="meta, cpu or cuda[:N]")
    device = str(named)
    mode = text("mode", "eval") or "eval"
    if mode not in ("eval", "train"):
        raise fail(origin("mode"), f"must be eval or train, got {mode!r}")
    if "latency" in limits and device == "meta":
        raise fail(origin("max_latency"), "latency needs a real device",
                   hint='set device = "cuda" (or "cpu") for this model')
    return ModelBudget(
        name=name, spec=text("model", name) or name, inputs=tuple(raw_inputs),
        batch=integer("batch", 1, 1), dtype=dtype, device=device, mode=mode, args=dict(args),
        warmup=integer("warmup", None, 0), repeats=integer("repeats", None, 1),
        limits=limits, line=line,
    )


def dotted_key(keys: Sequence[str]) -> str:
    return ".".join(k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else f'"{k}"' for k in keys) or "file"


def location(path: str, line: int) -> str:
    return f"{path}:{line}" if line else path


class _Locator:
    """Finds the line of a key path in TOML text. tomllib keeps no positions, so headers
    are re-read with tomllib itself (quoted keys and all) and ``key =`` lines by pattern."""

    _KEY = re.compile(r"""^\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")

    def __init__(self, text: str) -> None:
        self.entries: list[tuple[tuple[str, ...], int]] = []
        current: tuple[str, ...] = ()
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if line.startswith("["):
                header = _header_path(line)
                if header is not None:
                    current = header
                    self.entries.append((current, number))
                continue
            match = self._KEY.match(raw)
            if match:
                key = match.group(1)
                if key[0] in "\"'":
                    key = key[1:-1]
                self.entries.append(((*current, key), number))

    def line(self, keys: Sequence[str]) -> int:
        """The line of ``keys``, else of its nearest enclosing table that appears."""
        wanted = tuple(keys)
        while wanted:
            for path, number in self.entries:
                if path == wanted:
                    return number
            wanted = wanted[:-1]
        return 0


def _header_path(line: str) -> tuple[str, ...] | None:
    try:
        parsed: Any = tomllib.loads(line.replace("[[", "[").replace("]]", "]"))
    except tomllib.TOMLDecodeError:
        return None
    path: list[str] = []
    while isinstance(parsed, dict) and len(parsed) == 1:
        key = next(iter(parsed))
        path.append(key)
        parsed = parsed[key]
    return tuple(path)


# -- judging ---------------------------------------------------------------------------------

def judge(budget: ModelBudget, measured: Measured) -> list[Row]:
    """Rows for one model: each limit against its measured value."""
    rows: list[Row] = []
    for metric in METRICS:
        if metric not in budget.limits:
            continue
        limit = budget.limits[metric]
        line = budget.limit_lines.get(metric, budget.line)
        if measured.failed is not None:
            rows.append(Row(budget.name, metric, limit, None, "failed", measured.failed, line))
        elif metric in measured.skipped:
            rows.append(Row(budget.name, metric, limit, None, "skipped",
                            measured.skipped[metric], line))
        else:
            value = measured.values[metric]
            rows.append(Row(budget.name, metric, limit, value,
                            "ok" if value <= limit else "over", "", line))
    return rows


def values_of(report: Report) -> dict[str, float]:
    """The budgeted metrics of a finished report (latency when it was timed)."""
    t = report.totals
    values: dict[str, float] = {"params": t.params, "macs": t.macs, "flops": t.flops,
                                "param_bytes": t.param_bytes,
                                "activation_bytes": t.activation_bytes}
    timing = report.timing
    if timing is not None:  # the un-hooked forward when measured: hooks are our cost
        unhooked = timing.end_to_end_unhooked_median_s
        values["latency"] = unhooked if unhooked is not None else timing.end_to_end_median_s
    return values


def exit_code(rows: Sequence[Row]) -> int:
    """0 when every limit holds (skipped rows do not fail), 1 otherwise."""
    return 1 if any(r.status in ("over", "failed") for r in rows) else 0


def parse_percent(text: str | float) -> float:
    """``"10%"`` or ``"10"`` → 0.10 (a bare number is a percentage too)."""
    raw = str(text).strip().removesuffix("%").strip()
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"cannot read {text!r} as a percentage", hint="e.g. 10%") from None
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"percentage must be a non-negative number, got {text!r}")
    return value / 100.0


def starter_budget(reports: Sequence[tuple[str, Report, Sequence[str]]], headroom: float,
                   latencies: dict[str, float] | None = None, device: str = "meta") -> str:
    """TOML text for ``check --init``: each model's current values plus ``headroom``,
    rounded *up* to three significant digits so the new budget passes today."""
    lines = [
        "# cnnprof budget: `cnnprof check THIS_FILE` exits 1 when a model grows past a limit.",
        f"# Written by `cnnprof check --init` from current values plus {100 * headroom:g}% "
        "headroom.",
        "# Units: K M G T (counts), KB MB GB / KiB MiB (bytes), s ms us (time).",
        "",
    ]
    for name, report, inputs in reports:
        values = values_of(report)
        if latencies and name in latencies:
            values["latency"] = latencies[name]
        lines.append(f"[models.{dotted_key([name])}]")
        if inputs:
            shown = ", ".join(f'"{i}"' for i in inputs)
            lines.append(f"input = {shown}" if len(inputs) == 1 else f"input = [{shown}]")
        batch = report.inputs[0].shape[0] if report.inputs and report.inputs[0].shape else 1
        if batch != 1:
            lines.append(f"batch = {batch}")
        if latencies and name in latencies:
            lines.append(f'device = "{device}"')
        for metric, meta in METRICS.items():
            if metric not in values:
                continue
            limit = ceil_quantity(values[metric] * (1.0 + headroom), meta.kind)
            now = format_quantity(values[metric], meta.kind)
            lines.append(f'max_{metric} = "{limit}"'.ljust(36) + f"# now {now}")
        lines.append("")
    return "\n".join(lines)
