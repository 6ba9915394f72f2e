"""Table columns and presets. Other features add columns here (time, torchstat ...)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cnnprof.measurements import TimingSummary
from cnnprof.render import units
from cnnprof.report import LayerRecord, Report


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    cell: Callable[[LayerRecord], str]
    #: footer text from the whole report ("" for none)
    total: Callable[[Report], str] = lambda report: ""
    justify: str = "right"
    #: the shorter cell a narrow table uses instead (None: the cell has no shorter form)
    compact: Callable[[LayerRecord], str] | None = None


def _cost(field: str, fmt: Callable[[float], str], header: str) -> Column:
    """A per-layer cost ("—" when zero) with the report's total in the footer."""
    return Column(
        field, header,
        lambda r: fmt(getattr(r, field)) if getattr(r, field) else "—",
        lambda rep: fmt(getattr(rep.totals, field)),
    )


def _backward(field: str, header: str) -> Column:
    """--backward: the backward pass's cost ("—", and no total, without it)."""
    return Column(
        f"bwd_{field}", header,
        lambda r: units.count(getattr(r.backward, field))
        if r.backward and getattr(r.backward, field) else "—",
        lambda rep: units.count(getattr(rep.totals.backward, field)) if rep.totals.backward
        else "",
    )


#: after a Params cell whose tensors another row holds too (footnote: table.footnotes)
SHARED_MARK = "↔"


def _params_cell(r: LayerRecord) -> str:
    text = units.count(r.params) if r.params else "—"
    return f"{text} {SHARED_MARK}" if r.shared_params_with is not None else text


def _shapes(first: str, distinct: str, *, compact: bool) -> Callable[[LayerRecord], str]:
    """A shape cell. A module called with different shapes lists each call's (``; ``
    between calls); compact: the first call's, equal shapes once with a count, ``; +N``
    for the other calls' (all of them are in the JSON)."""
    def cell(r: LayerRecord) -> str:
        calls = getattr(r, distinct) or (getattr(r, first),)
        if not compact:
            return "; ".join(units.shapes(c) for c in calls)
        more = f"; +{len(calls) - 1}" if len(calls) > 1 else ""
        return units.shapes(calls[0], collapse=True) + more

    return cell


def _shape_column(key: str, header: str, first: str, distinct: str) -> Column:
    return Column(key, header, _shapes(first, distinct, compact=False), justify="left",
                  compact=_shapes(first, distinct, compact=True))


COLUMNS: dict[str, Column] = {
    "type": Column("type", "Type", lambda r: r.type, justify="left"),
    "input_shape": _shape_column("input_shape", "Input shape", "input_shapes",
                                 "distinct_input_shapes"),
    "output_shape": _shape_column("output_shape", "Output shape", "output_shapes",
                                  "distinct_output_shapes"),
    "params": Column("params", "Params", _params_cell, lambda rep: units.count(rep.totals.params)),
    "calls": Column("calls", "Calls", lambda r: str(r.calls)),
    "macs": _cost("macs", units.count, "MACs"),
    "flops": _cost("flops", units.count, "FLOPs"),
    "bwd_macs": _backward("macs", "Bwd MACs"),
    "bwd_flops": _backward("flops", "Bwd FLOPs"),
    "param_bytes": _cost("param_bytes", units.nbytes, "Param bytes"),
    "activation_bytes": _cost("activation_bytes", units.nbytes, "Activations"),
    "read_bytes": _cost("read_bytes", units.nbytes, "Read"),
    "write_bytes": _cost("write_bytes", units.nbytes, "Write"),
    # --train-memory: what the layer's forward keeps for backward in a training step
    "saved": Column(
        "saved", "Saved for bwd",
        lambda r: units.nbytes(r.saved_bytes) if r.saved_bytes else "—",
        lambda rep: units.nbytes(rep.training_memory.saved_bytes) if rep.training_memory
        else ""),
}

# -- timing columns (``--time``): empty cells ("—") for layers that were not timed ---------
def _from(attr: str, key: str, fmt: Callable[[float], str]) -> Callable[[LayerRecord], str]:
    """A cell from one of a layer's timing results (``time``, ``memory``, ``roofline``)."""
    def cell(r: LayerRecord) -> str:
        result = getattr(r, attr)
        value = getattr(result, key) if result is not None else None
        return "—" if value is None else fmt(value)

    return cell


def _timed(key: str, fmt: Callable[[float], str]) -> Callable[[LayerRecord], str]:
    return _from("time", key, fmt)


def _spread(r: LayerRecord) -> str:
    if r.time is None:
        return "—"
    return f"{units.seconds(r.time.p10_s)}–{units.seconds(r.time.p90_s)}"


def short_kernel_name(name: str, limit: int = 36) -> str:
    """``void at::native::vectorized_elementwise_kernel<4, ...>(...)`` → the readable head."""
    text = name.removeprefix("void ").split("<", 1)[0].split("(", 1)[0]
    text = text.rsplit("::", 1)[-1] or text
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: kernels shown per layer in the table (all of them are in the JSON)
TABLE_TOP_KERNELS = 2


def _kernels(r: LayerRecord) -> str:
    if not r.kernels:
        return "—"
    shown = [f"{short_kernel_name(k['name'])}×{k['count']}" for k in r.kernels[:TABLE_TOP_KERNELS]]
    more = len(r.kernels) - TABLE_TOP_KERNELS
    return "; ".join(shown) + (f" +{more}" if more > 0 else "")


def _graph(t: TimingSummary) -> bool:
    return (t.mode == "graph"
            and (t.graph or {}).get("end_to_end_graph_median_s") is not None)


def _e2e(report: Report) -> str:
    """The Total row's time: measured the same way as the rows above it."""
    t = report.timing
    return "" if t is None else units.seconds(t.end_to_end_s)


def _leaf_sum(report: Report) -> str:
    t = report.timing
    if t is None:
        return ""
    value = (t.graph or {}).get("graph_leaf_sum_s") if _graph(t) else t.leaf_self_sum_s
    return units.seconds(value) if value else ""


def _float(value: float) -> str:
    return f"{value:.3g}"


COLUMNS.update({
    "time": Column("time", "Time", _timed("median_s", units.seconds), _e2e),
    "self_time": Column("self_time", "Self", _timed("self_median_s", units.seconds), _leaf_sum),
    "share": Column("share", "Share", _timed("share", units.percent),
                    lambda rep: "100.0%" if rep.timing else ""),
    "time_spread": Column("time_spread", "p10–p90", _spread),
    "min_time": Column("min_time", "Min", _timed("min_s", units.seconds)),
    "backward_time": Column("backward_time", "Backward",
                            _timed("backward_median_s", units.seconds)),
    "kernel_time": Column("kernel_time", "Kernel time", _timed("kernel_s", units.seconds)),
    "kernels": Column("kernels", "Top kernels", _kernels, justify="left"),
    "mem_delta": Column("mem_delta", "Mem Δ", _from("memory", "alloc_delta_bytes", units.nbytes)),
    "mem_peak": Column("mem_peak", "Peak mem", _from("memory", "peak_bytes", units.nbytes),
                       lambda rep: units.nbytes(rep.timing.peak_memory_bytes)
                       if rep.timing and rep.timing.peak_memory_bytes else ""),
    "tflops": Column("tflops", "TFLOP/s", _from("roofline", "achieved_tflops", _float)),
    "gbps": Column("gbps", "GB/s", _from("roofline", "achieved_gbps", _float)),
    "intensity": Column("intensity", "FLOP/B", _from("roofline", "intensity", _float)),
    "bound": Column("bound", "Bound", lambda r: r.roofline.bound if r.roofline else "—",
                    justify="left"),
    "efficiency": Column("efficiency", "Of roof", _from("roofline", "efficiency", units.percent)),
})


def timing_lines(report: Report) -> list[str]:
    """Summary lines under a timed table: device, end-to-end with and without hooks, caveats."""
    t = report.timing
    if t is None:
        return []
    parts = [f"Timed on {t.device_name or t.device} ({t.device}, "
             f"{t.dtype}, batch {t.batch}, {t.mode}"
             + (", channels_last" if t.channels_last else "")
             + f"): {t.warmup} warm-up + {t.repeats} repeats, {t.clock}"]
    g = t.graph or {}
    if _graph(t):
        line = (f"Layer times from the replayed CUDA graph of the forward: replay median "
                f"{units.seconds(g['end_to_end_graph_median_s'])}")
        marked = g.get("end_to_end_graph_marked_median_s")
        if marked is not None:
            variants = g.get("graph_variants", 1)
            line += (f", {units.seconds(marked)} with timing marks "
                     f"({units.signed_percent(g.get('graph_mark_overhead') or 0.0)}"
                     + (f", split over {variants} graphs" if variants > 1 else "")
                     + "; layer times are compensated for them)")
        elif g.get("graph_method") == "isolated":
            line += " (each layer replayed in isolation)"
        leaves, parents = g.get("graph_leaf_sum_s"), g.get("graph_parent_self_sum_s")
        if leaves is not None and parents is not None:
            line += (f" · leaf times sum to {units.seconds(leaves)}, parents' own work "
                     f"{units.seconds(parents)}")
        parts.append(line)
    plain = t.end_to_end_unhooked_median_s
    line = (("Eager: e" if _graph(t) else "E")
            + f"nd-to-end median {units.seconds(t.end_to_end_median_s)} with hooks")
    if plain is not None:
        line += f", {units.seconds(plain)} without"
    if t.hook_overhead is not None:
        line += f" (hook overhead {units.signed_percent(t.hook_overhead)})"
    line += f" · leaf self times sum to {units.seconds(t.leaf_self_sum_s)}"
    parts.append(line)
    if t.peak_memory_bytes is not None:
        parts.append(f"Peak CUDA memory {units.nbytes(t.peak_memory_bytes)} "
                     f"(of which {units.nbytes(t.memory_baseline_bytes or 0)} resident "
                     "before the forward)")
    for row in t.sweep or ():
        parts.append(f"Batch {row.batch}: latency {units.seconds(row.latency_median_s)}, "
                     f"throughput {row.throughput_per_s:,.1f}/s")
    parts.extend(f"Caveat: {note}" for note in t.notes)
    return parts


# -- torchstat's table (``--columns torchstat``; values from cnnprof.counting.torchstat) -----


def _ts_value(r: LayerRecord, key: str) -> object:
    return (r.torchstat or {}).get(key)


def _ts_count(key: str, commas: bool) -> Callable[[LayerRecord], str]:
    def cell(r: LayerRecord) -> str:
        value = _ts_value(r, key)
        if value is None:
            return ""
        # a metric torchstat has no rule for holds cnnprof's value: marked, never a bare 0
        star = "*" if key in ((r.torchstat or {}).get("from_cnnprof") or ()) else ""
        return (f"{int(value):,}" if commas else str(int(value))) + star  # type: ignore[call-overload]

    return cell


def _ts_total(key: str, fmt: Callable[[object], str]) -> Callable[[Report], str]:
    def total(rep: Report) -> str:
        value = (rep.layers[0].torchstat or {}).get(key) if rep.layers else None
        return "" if value is None else fmt(value)

    return total


def _ts_shape(key: str) -> Callable[[LayerRecord], str]:
    def cell(r: LayerRecord) -> str:
        dims = _ts_value(r, key)
        return " ".join(str(d) for d in dims) if isinstance(dims, list) else ""

    return cell


def _ts_share(value: object) -> str:
    return f"{value:.2%}" if isinstance(value, float) else ""


COLUMNS.update({
    "ts_input_shape": Column("ts_input_shape", "input shape", _ts_shape("input_shape")),
    "ts_output_shape": Column("ts_output_shape", "output shape", _ts_shape("output_shape")),
    "ts_params": Column("ts_params", "params", _ts_count("params", False),
                        _ts_total("params", lambda v: str(v))),
    "ts_memory_mb": Column(
        "ts_memory_mb", "memory(MB)",
        lambda r: f"{_ts_value(r, 'memory_mb'):.2f}" if r.torchstat else "",
        _ts_total("memory_mb", lambda v: f"{v:.2f}")),
    "ts_madd": Column("ts_madd", "MAdd", _ts_count("madd", True),
                      _ts_total("madd", lambda v: f"{v:,}")),
    "ts_flops": Column("ts_flops", "Flops", _ts_count("flops", True),
                       _ts_total("flops", lambda v: f"{v:,}")),
    "ts_mem_read": Column("ts_mem_read", "MemRead(B)", _ts_count("mem_read_bytes", False),
                          _ts_total("mem_read_bytes", str)),
    "ts_mem_write": Column("ts_mem_write", "MemWrite(B)", _ts_count("mem_write_bytes", False),
                           _ts_total("mem_write_bytes", str)),
    "ts_duration": Column("ts_duration", "duration[%]",
                          lambda r: _ts_share(_ts_value(r, "duration_share")),
                          _ts_total("duration_share", _ts_share)),
    "ts_mem_rw": Column("ts_mem_rw", "MemR+W(B)", _ts_count("mem_rw_bytes", False),
                        _ts_total("mem_rw_bytes", str)),
})


PRESETS: dict[str, list[str]] = {
    "default": ["type", "input_shape", "output_shape", "params", "macs", "flops"],
    "shapes": ["type", "input_shape", "output_shape", "params"],
    "bytes": ["type", "output_shape", "params", "param_bytes", "activation_bytes",
              "read_bytes", "write_bytes"],
    # torchstat's own table: its definitions, "module name" is the Layer column
    "torchstat": ["ts_input_shape", "ts_output_shape", "ts_params", "ts_memory_mb", "ts_madd",
                  "ts_flops", "ts_mem_read", "ts_mem_write", "ts_duration", "ts_mem_rw"],
    "all": ["type", "calls", "input_shape", "output_shape", "params", "macs", "flops",
            "bwd_macs", "bwd_flops", "param_bytes", "activation_bytes", "read_bytes",
            "write_bytes"],
    # --time: "timed" is the table a timed report gets when no --columns is given
    "timed": ["type", "output_shape", "params", "flops", "time", "self_time", "share"],
    "time": ["type", "calls", "time", "time_spread", "min_time", "self_time", "share",
             "backward_time", "mem_delta", "mem_peak"],
    "memory": ["type", "output_shape", "activation_bytes", "mem_delta", "mem_peak"],
    "kernels": ["type", "time", "kernel_time", "kernels"],
    "roofline": ["type", "flops", "time", "tflops", "gbps", "intensity", "bound", "efficiency"],
    # --train-memory: the table a report with training memory gets when no --columns is given
    "train": ["type", "output_shape", "params", "flops", "activation_bytes", "saved"],
}


def default_preset(report: Report) -> str:
    """The columns used when ``--columns`` is not given: timing columns once a report has
    them (the training-memory preset when it has that), the Calls column when a module ran
    more than once (resnet's shared ``relu``), the backward pass's MACs and FLOPs when it was
    counted (``--backward``)."""
    if report.timing:
        base = "timed"
    else:
        base = "train" if report.training_memory is not None else "default"
    keys = [base]
    if any(layer.calls > 1 for layer in report.layers):
        keys.insert(0, "type,calls")  # right after Type (the first occurrence wins)
    if report.totals.backward is not None and not report.timing:
        keys.append("bwd_macs,bwd_flops")
    return ",".join(keys)


def resolve_columns(spec: str | None) -> list[Column]:
    """``--columns``: a preset name or a comma-separated list of column keys."""
    from cnnprof.errors import UsageError

    text = (spec or "default").strip()
    keys: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if part in PRESETS:
            keys.extend(PRESETS[part])
        elif part in COLUMNS:
            keys.append(part)
        else:
            known = ", ".join(list(PRESETS) + list(COLUMNS))
            raise UsageError(f"unknown column or preset {part!r}", hint=f"known: {known}")
    return [COLUMNS[k] for k in dict.fromkeys(keys)]  # first occurrence wins


def needs_torchstat(spec: str | None) -> bool:
    """Whether ``--columns`` shows any of torchstat's columns: their values come from a
    separate pass (``cnnprof.compat.torchstat.annotate_torchstat``) that only runs when
    asked. Resolved, not searched for "torchstat", so ``ts_madd`` alone counts too.
    Unknown columns raise the usage error, as ``resolve_columns`` does."""
    return any(column.key.startswith("ts_") for column in resolve_columns(spec))
