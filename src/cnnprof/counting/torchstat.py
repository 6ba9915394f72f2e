"""torchstat's rules: its per-layer numbers, computed from a cnnprof report.

torchstat 0.0.7 counts per leaf module type from the module's hyper-parameters and its
input/output shapes; its reporter no longer runs (``DataFrame.append`` left pandas in 2.0).
Those definitions are pure functions of what a :class:`~cnnprof.report.LayerRecord` already
holds, so :func:`annotate` computes them from the report alone and stores them under
``LayerRecord.torchstat`` (``cnnprof.compat.torchstat`` measures the duration share and
offers torchstat's ``stat()``; ``cnnprof.render.torchstat`` prints torchstat's table).
Its definitions, as torchstat wrote them (batch ``N``, per-sample ``C·H·W``; ``MAdd`` is per
sample while ``Flops`` and memory include the batch — torchstat only ever ran at batch 1,
where the two agree):

============  =================================================  ==========================
type          MAdd                                               Flops
============  =================================================  ==========================
Conv2d        ``(2·k·k·Cin/g − 1 + bias)·Ho·Wo·Cout``            ``N·Ho·Wo·k·k·Cin·Cout/g``
                                                                 ``+ N·Cout·Ho·Wo`` if bias
Linear        ``out·(2·in − 1)``                                 ``N·in·out``
BatchNorm2d   ``4·C·H·W``                                        ``N·C·H·W`` (×2 if affine)
MaxPool2d     ``(k·k − 1)·C·Ho·Wo``                              ``N·C·H·W`` (the input)
AvgPool2d     ``k·k·C·Ho·Wo``                                    ``N·C·H·W`` (the input)
ReLU, ReLU6   ``C·H·W``                                          ``N·C·H·W``
============  =================================================  ==========================

plus Softmax, ConvTranspose2d and Bilinear (MAdd only), PReLU/ELU/LeakyReLU and Upsample
(Flops only). Memory: ``memory(MB)`` is the per-sample output at 4 bytes in MiB for every
leaf; ``MemRead``/``MemWrite`` are element counts times the input's item size: input plus
trainable parameters read, output written (BatchNorm also reads ``2·C``).

A metric torchstat has no rule for (it printed "is not supported!" and a 0) gets cnnprof's
value instead, and is named in ``from_cnnprof``: MAdd ← cnnprof FLOPs, Flops ← cnnprof FLOPs
minus MACs (MACs plus the non-multiply work, which is what torchstat's Flops counts),
MemRead/MemWrite ← cnnprof's read/write bytes. The duration share is measured (cnnprof's
timing when the report has it, else a pass of cnnprof's layer timer), never derived.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from cnnprof.report import LayerRecord, Report

__all__ = ["METRICS", "annotate", "module_leaf", "timed_durations", "torchstat_values"]

#: The metrics a torchstat row carries, in the JSON's names.
METRICS = ("madd", "flops", "mem_read_bytes", "mem_write_bytes")

#: Types each of torchstat's three compute functions knows (it dispatches on isinstance;
#: the Upsampling* classes subclass Upsample).
_MADD_TYPES = frozenset({"Conv2d", "ConvTranspose2d", "BatchNorm2d", "MaxPool2d", "AvgPool2d",
                         "ReLU", "ReLU6", "Softmax", "Linear", "Bilinear"})
_FLOPS_TYPES = frozenset({"Conv2d", "BatchNorm2d", "AvgPool2d", "MaxPool2d", "ReLU", "ReLU6",
                          "PReLU", "ELU", "LeakyReLU", "Upsample", "UpsamplingNearest2d",
                          "UpsamplingBilinear2d", "Linear"})
_MEMORY_TYPES = frozenset({"ReLU", "ReLU6", "ELU", "LeakyReLU", "PReLU", "Conv2d",
                           "BatchNorm2d", "Linear", "AvgPool2d", "MaxPool2d"})
#: torchstat asserts these input ranks; anything else would crash it.
_RANK = {"Conv2d": 4, "ConvTranspose2d": 4, "BatchNorm2d": 4, "MaxPool2d": 4, "AvgPool2d": 4,
         "Linear": 2, "Bilinear": 2}

_ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4,
             "int16": 2, "int8": 1, "uint8": 1, "bool": 1, "complex64": 8, "complex128": 16}


def _prod(dims: Sequence[int]) -> int:
    return math.prod(int(d) for d in dims)


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[-1])
    return int(value), int(value)


def _madd(layer: LayerRecord, inp: Sequence[int], out: Sequence[int]) -> int:
    kind, attrs = layer.type, layer.attributes
    if kind in ("Conv2d", "ConvTranspose2d"):
        k_h, k_w = _pair(attrs["kernel_size"])
        groups = int(attrs.get("groups", 1))
        out_c = out[1]
        kernel_mul = k_h * k_w * (inp[1] // groups)
        kernel_add = kernel_mul - 1 + (1 if attrs.get("bias") else 0)
        # a transposed conv multiplies per *input* position, a conv per output position
        positions = inp[2] * inp[3] if kind == "ConvTranspose2d" else out[2] * out[3]
        return (kernel_mul + kernel_add) * positions * (out_c // groups) * groups
    if kind == "BatchNorm2d":
        return 4 * _prod(inp[1:])  # subtract mean, divide by std, scale, shift
    if kind == "MaxPool2d":
        k_h, k_w = _pair(attrs["kernel_size"])
        return (k_h * k_w - 1) * _prod(out[1:])
    if kind == "AvgPool2d":
        k_h, k_w = _pair(attrs["kernel_size"])
        return k_h * k_w * _prod(out[1:])
    if kind in ("ReLU", "ReLU6"):
        return _prod(inp[1:])
    if kind == "Softmax":
        count = _prod(inp[1:])
        return count + (count - 1) + count  # exp, sum, divide
    if kind == "Linear":
        return out[1] * (inp[1] + inp[1] - 1)
    if kind == "Bilinear":
        second = layer.input_shapes[1]
        pairs = inp[1] * second[1] + second[1]
        return out[1] * (pairs + pairs - 1)
    raise AssertionError(kind)


def _flops(layer: LayerRecord, inp: Sequence[int], out: Sequence[int]) -> int:
    kind, attrs = layer.type, layer.attributes
    batch = inp[0]
    if kind == "Conv2d":
        k_h, k_w = _pair(attrs["kernel_size"])
        groups = int(attrs.get("groups", 1))
        out_c, out_h, out_w = out[1], out[2], out[3]
        # torchstat's own formula: the full input depth times the filters of one group
        total = k_h * k_w * inp[1] * (out_c // groups) * batch * out_h * out_w
        if attrs.get("bias"):
            total += out_c * batch * out_h * out_w
        return total
    if kind == "BatchNorm2d":
        return _prod(inp) * (2 if attrs.get("affine", True) else 1)
    if kind in ("MaxPool2d", "AvgPool2d", "ReLU", "ReLU6", "PReLU", "ELU", "LeakyReLU"):
        return _prod(inp)
    if kind in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"):
        # torchstat multiplies the batch by the dims of out[0] after its first (channels)
        return batch * _prod(out[2:])
    if kind == "Linear":
        return batch * inp[1] * out[1]
    raise AssertionError(kind)


def _memory(layer: LayerRecord, inp: Sequence[int], out: Sequence[int]) -> tuple[int, int]:
    """(elements read, elements written), before torchstat multiplies by the item size."""
    kind = layer.type
    batch = inp[0]
    trainable = layer.trainable_params
    if kind in ("ReLU", "ReLU6", "ELU", "LeakyReLU"):
        return batch * _prod(inp[1:]), batch * _prod(inp[1:])
    if kind == "PReLU":
        return batch * (_prod(inp[1:]) + trainable), batch * _prod(inp[1:])
    if kind in ("Conv2d", "Linear"):
        return batch * (_prod(inp[1:]) + trainable), _prod(out)
    if kind == "BatchNorm2d":
        return batch * (_prod(inp[1:]) + 2 * inp[1]), _prod(inp)
    if kind in ("MaxPool2d", "AvgPool2d"):
        return batch * _prod(inp[1:]), batch * _prod(out[1:])
    raise AssertionError(kind)


def _crash_reason(layer: LayerRecord) -> str | None:
    """Why torchstat itself would raise on this layer (so its numbers do not exist)."""
    if not layer.input_shapes:
        return "takes no tensor input (torchstat reads input[0])"
    if len(layer.output_shapes) != 1:
        return "returns several tensors (torchstat calls output.size())"
    if len(layer.input_shapes) > 1 and layer.type != "Bilinear":
        return "takes several inputs (torchstat passes the tuple to its formulas)"
    rank = _RANK.get(layer.type)
    inp, out = layer.input_shapes[0], layer.output_shapes[0]
    if rank is not None and (len(inp) != rank or len(out) != rank):
        return f"input rank {len(inp)} (torchstat asserts {rank}-D for {layer.type})"
    if layer.type == "Softmax" and len(inp) < 2:
        return "1-D input (torchstat asserts at least 2-D for Softmax)"
    return None


def torchstat_values(layer: LayerRecord) -> dict[str, Any]:
    """torchstat's numbers for one leaf layer (no duration: that is measured)."""
    if layer.calls == 0 or not layer.output_shapes:
        return {"input_shape": [], "output_shape": [], "params": layer.own_params,
                "memory_mb": 0.0, "madd": 0, "flops": 0, "mem_read_bytes": 0,
                "mem_write_bytes": 0, "mem_rw_bytes": 0, "from_cnnprof": [],
                "reason": "never called"}
    inp = tuple(layer.input_shapes[0]) if layer.input_shapes else ()
    out = tuple(layer.output_shapes[0])
    crash = _crash_reason(layer)
    fallback = {
        "madd": layer.flops,
        "flops": layer.flops - layer.macs,
        "mem_read_bytes": layer.read_bytes,
        "mem_write_bytes": layer.write_bytes,
    }
    values: dict[str, int] = {}
    from_cnnprof: list[str] = []
    itemsize = _ITEMSIZE.get(layer.input_dtypes[0] if layer.input_dtypes else "float32", 4)
    if crash is None and layer.type in _MADD_TYPES:
        values["madd"] = _madd(layer, inp, out)
    if crash is None and layer.type in _FLOPS_TYPES:
        values["flops"] = _flops(layer, inp, out)
    if crash is None and layer.type in _MEMORY_TYPES:
        read, write = _memory(layer, inp, out)
        values["mem_read_bytes"] = read * itemsize
        values["mem_write_bytes"] = write * itemsize
    for metric in METRICS:
        if metric not in values:
            values[metric] = fallback[metric]
            from_cnnprof.append(metric)
    reason = None
    if crash is not None:
        reason = f"torchstat would crash: {crash}"
    elif from_cnnprof:
        reason = f"torchstat has no rule for {layer.type}"
    return {
        "input_shape": list(inp[1:]),
        "output_shape": list(out[1:]),
        "params": layer.own_params,
        # torchstat: per-sample output elements at 4 bytes each, in MiB, for every leaf
        "memory_mb": _prod(out[1:]) * 4 / 1024**2,
        **values,
        "mem_rw_bytes": values["mem_read_bytes"] + values["mem_write_bytes"],
        "from_cnnprof": from_cnnprof,
        "reason": reason,
    }


def module_leaf(layer: LayerRecord) -> bool:
    """A leaf as torchstat sees one: a module. Rows of a parent's own ops (``is_ops``) are
    invisible to its module hooks, so they have no torchstat values."""
    return layer.is_leaf and not layer.is_ops


def _descendant_leaves(report: Report, index: int) -> Iterator[LayerRecord]:
    parent = report.layers[index]
    for layer in report.layers[index + 1:]:
        if layer.depth <= parent.depth:
            break
        if module_leaf(layer):
            yield layer


def timed_durations(report: Report) -> dict[str, float]:
    """Leaf seconds from the report's own timing (``--time``); empty when it has none."""
    return {layer.name: float(layer.time.median_s) for layer in report.layers
            if module_leaf(layer) and layer.time is not None}


def annotate(report: Report, durations: dict[str, float] | None = None,
             source: str | None = None, why: str | None = None) -> Report:
    """A copy of ``report`` whose layers carry torchstat's values under ``torchstat``.

    Leaves get torchstat's own numbers; parents (and the root) the sums over their leaves, as
    torchstat's tree rolls them up (``rollup: true``). Durations: the report's own timing
    when it has one, else ``durations`` (seconds per layer name, measured as ``source``
    says); ``why`` says why there are none.
    """
    timed = timed_durations(report)
    if timed:
        durations, source, why = timed, "cnnprof timing (median)", None
    durations = durations or {}
    leaf_sum = sum(durations.get(layer.name, 0.0) for layer in report.layers
                   if module_leaf(layer))

    rows: dict[str, dict[str, Any]] = {}
    for layer in report.layers:
        if not module_leaf(layer):
            continue
        values = torchstat_values(layer)
        seconds = durations.get(layer.name)
        values["duration_s"] = seconds
        values["duration_share"] = (seconds / leaf_sum if seconds is not None and leaf_sum > 0
                                    else None)
        values["duration_source"] = source if seconds is not None else None
        rows[layer.name] = values

    layers = list(report.layers)
    for index, layer in enumerate(report.layers):
        if layer.is_ops:
            continue
        if layer.is_leaf:
            # the root of a one-module model is its own (only) leaf
            layers[index] = replace(layer, torchstat=rows[layer.name])
            continue
        leaves = [rows[leaf.name] for leaf in _descendant_leaves(report, index)]
        layers[index] = replace(layer, torchstat=_rollup(layer, leaves))

    notes = list(report.notes)
    missing: dict[str, set[str]] = {}
    for layer in report.layers:
        row = rows.get(layer.name)
        if row and row["from_cnnprof"] and row["reason"] != "never called":
            missing.setdefault(layer.type, set()).update(row["from_cnnprof"])
    if missing:
        parts = ", ".join(f"{kind} ({', '.join(_pretty(m) for m in METRICS if m in got)})"
                          for kind, got in sorted(missing.items()))
        notes.append(f"torchstat has no rule for {parts}: those cells (marked *) hold "
                     "cnnprof's values")
    if why:
        notes.append(f"torchstat duration[%] not measured: {why}")
    elif source:
        notes.append(f"torchstat duration[%] is measured ({source}), not derived")
    return report.with_updates(layers=tuple(layers), notes=tuple(notes))


def _pretty(metric: str) -> str:
    return {"madd": "MAdd", "flops": "Flops", "mem_read_bytes": "MemRead",
            "mem_write_bytes": "MemWrite"}[metric]


def _rollup(layer: LayerRecord, leaves: list[dict[str, Any]]) -> dict[str, Any]:
    shares = [row["duration_share"] for row in leaves if row["duration_share"] is not None]
    seconds = [row["duration_s"] for row in leaves if row["duration_s"] is not None]
    return {
        "input_shape": list(layer.input_shapes[0][1:]) if layer.input_shapes else [],
        "output_shape": list(layer.output_shapes[0][1:]) if layer.output_shapes else [],
        "params": sum(row["params"] for row in leaves),
        "memory_mb": sum(row["memory_mb"] for row in leaves),
        **{m: sum(row[m] for row in leaves) for m in METRICS},
        "mem_rw_bytes": sum(row["mem_rw_bytes"] for row in leaves),
        "duration_s": sum(seconds) if seconds else None,
        "duration_share": sum(shares) if shares else None,
        "duration_source": next((r["duration_source"] for r in leaves if r["duration_source"]),
                                None),
        "from_cnnprof": sorted({m for row in leaves for m in row["from_cnnprof"]}),
        "reason": None,
        "rollup": True,
    }


