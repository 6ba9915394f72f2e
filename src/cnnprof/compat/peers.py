"""Run the peer counters (thop, fvcore, torchstat's per-module functions) next to cnnprof and
explain, layer by layer, where they disagree.

Every peer runs on a ``deepcopy`` of the model, in eval mode, on real CPU tensors, with its
printing swallowed: thop leaves ``total_ops`` buffers on modules it has no rule for,
fvcore traces with the JIT, and torchstat's reporter is broken, so of torchstat only its
per-module ``compute_madd``/``compute_flops``/``compute_memory`` functions are called, from
forward hooks this module registers and removes itself (torchstat's own ``ModelHook`` patches
``__call__`` on the classes and never restores it). Nothing is patched process-wide.

Units differ and that is most of the disagreement: thop and fvcore count multiply-accumulates
(what they print as "FLOPs"); torchstat's ``Flops`` is MACs plus bias adds and element-wise
work, its ``MAdd`` about 2×MACs; cnnprof keeps MACs and FLOPs (2 per MAC plus everything
else) apart. :func:`compare` turns the runs into findings with one of these kinds:

* ``convention``: both count the work, under different definitions (explained numerically);
* ``unseen``: a functional op in a parent's own ``forward`` (a residual ``+``) that module
  hooks cannot see;
* ``unsupported``: the peer has no rule for the module type or aten op and counts 0;
* ``crash``: the peer raised on this layer or model;
* ``differs``: none of the above explains the gap.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from cnnprof.errors import named_line
from cnnprof.report import Cost, LayerRecord, Report

if TYPE_CHECKING:
    import torch

__all__ = ["Comparison", "Finding", "PeerRun", "compare", "run_fvcore", "run_peers",
           "run_thop", "run_torchstat", "self_ops"]


@dataclass(frozen=True)
class PeerRun:
    """One peer's counts. ``layers``: per module name, in the peer's own unit."""

    tool: str
    unit: str
    version: str | None = None
    total: float | None = None
    params: int | None = None
    layers: dict[str, float] = field(default_factory=dict)
    #: torchstat: per leaf {madd, flops, mem_read_bytes, mem_write_bytes, unsupported: [...]}
    detail: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: per module: unsupported aten ops (fvcore) or the module type itself (thop)
    unsupported: dict[str, dict[str, int]] = field(default_factory=dict)
    #: per module: why the peer raised there
    crashed: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    import warnings

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _copy_eval(model: torch.nn.Module) -> torch.nn.Module:
    clone = copy.deepcopy(model)
    clone.eval()
    return clone


def _leaf_names(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    return {n: m for n, m in model.named_modules() if not any(True for _ in m.children())}


# -- thop ----------------------------------------------------------------------------------


def run_thop(model: torch.nn.Module, args: tuple[Any, ...]) -> PeerRun:
    """thop's MACs per module (summed over calls) and its parameter total."""
    version = _version("thop")
    try:
        with _quiet():
            import thop
            from thop.profile import register_hooks
    except Exception as exc:
        return PeerRun("thop", "MACs", version, error=f"not usable: {named_line(exc)}")
    clone = _copy_eval(model)
    try:
        import torch

        with _quiet(), torch.no_grad():
            total, params, tree = thop.profile(clone, inputs=args, verbose=False,
                                               ret_layer_info=True, report_missing=False)
    except Exception as exc:
        return PeerRun("thop", "MACs", version, error=named_line(exc))
    layers: dict[str, float] = {}

    def walk(prefix: str, node: dict[str, Any]) -> None:
        for name, (ops, _params, children) in node.items():
            full = f"{prefix}.{name}" if prefix else name
            layers[full] = float(ops)
            walk(full, children)

    walk("", tree)
    ruled = set(register_hooks)
    unsupported = {name: {type(m).__name__: 1} for name, m in _leaf_names(clone).items()
                   if type(m) not in ruled}
    return PeerRun("thop", "MACs", version, float(total), int(params), layers,
                   unsupported=unsupported)


# -- fvcore --------------------------------------------------------------------------------


def run_fvcore(model: torch.nn.Module, args: tuple[Any, ...]) -> PeerRun:
    """fvcore's JIT-traced counts per module (its "flop" is one multiply-add)."""
    version = _version("fvcore")
    try:
        with _quiet():
            from fvcore.nn import FlopCountAnalysis, parameter_count
    except Exception as exc:
        return PeerRun("fvcore", "MACs", version, error=f"not usable: {named_line(exc)}")
    clone = _copy_eval(model)
    try:
        import torch

        with _quiet(), torch.no_grad():
            analysis = FlopCountAnalysis(clone, args)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            analysis.tracer_warnings("none")
            by_module = analysis.by_module()
            total = analysis.total()
            names = [n for n, _ in clone.named_modules()]
            inclusive = {n: Counter(analysis.unsupported_ops(n)) for n in names}
            params = int(parameter_count(clone)[""])
    except Exception as exc:
        return PeerRun("fvcore", "MACs", version, error=named_line(exc))
    # fvcore reports unsupported ops inclusive of submodules; keep each module's own
    children: dict[str, list[str]] = {n: [] for n in names}
    for name in names:
        if name:
            parent = name.rpartition(".")[0]
            if parent in children:
                children[parent].append(name)
    own: dict[str, dict[str, int]] = {}
    for name in names:
        left = Counter(inclusive[name])
        for child in children[name]:
            left.subtract(inclusive[child])
        kept = {op: n for op, n in left.items() if n > 0}
        if kept:
            own[name] = kept
    layers = {str(k): float(v) for k, v in by_module.items()}
    return PeerRun("fvcore", "MACs", version, float(total), params, layers, unsupported=own)


# -- torchstat's per-module functions ------------------------------------------------------


def run_torchstat(model: torch.nn.Module, args: tuple[Any, ...]) -> PeerRun:
    """torchstat's MAdd, Flops and memory per leaf, computed by torchstat's own functions.

    The last call of a module wins, as in torchstat. Its "is not supported!" messages become
    ``unsupported`` metrics; a formula that raises (torchstat asserts ranks) is ``crashed``.
    """
    version = _version("torchstat")
    try:
        with _quiet():
            from torchstat import compute_flops, compute_madd, compute_memory
    except Exception as exc:
        return PeerRun("torchstat", "Flops", version, error=f"not usable: {named_line(exc)}")
    import torch

    clone = _copy_eval(model)
    leaves = _leaf_names(clone)
    detail: dict[str, dict[str, Any]] = {}
    crashed: dict[str, str] = {}

    def measure(fn: Callable[..., Any], module: torch.nn.Module, inp: Any,
                out: Any) -> tuple[Any, bool]:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            value = fn(module, inp, out)
        return value, "not supported" in printed.getvalue()

    def hook_for(name: str) -> Callable[..., None]:
        def hook(module: torch.nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            try:
                if not inputs or not isinstance(output, torch.Tensor):
                    raise TypeError("torchstat needs one tensor input[0] and a tensor output")
                inp = inputs[0] if len(inputs) == 1 else inputs
                itemsize = inputs[0].element_size()
                madd, no_madd = measure(compute_madd, module, inp, output)
                flops, no_flops = measure(compute_flops, module, inp, output)
                memory, no_memory = measure(compute_memory, module, inp, output)
            except Exception as exc:
                crashed[name] = named_line(exc)
                return
            unsupported = [m for m, missing in (("madd", no_madd), ("flops", no_flops),
                                                ("memory", no_memory)) if missing]
            detail[name] = {
                "madd": int(madd), "flops": int(flops),
                "mem_read_bytes": int(memory[0]) * itemsize,
                "mem_write_bytes": int(memory[1]) * itemsize,
                "params": sum(p.numel() for p in module._parameters.values() if p is not None),
                "unsupported": unsupported,
            }
            crashed.pop(name, None)

        return hook

    handles = [m.register_forward_hook(hook_for(n)) for n, m in leaves.items()]
    try:
        with _quiet(), torch.no_grad():
            clone(*args)
    except Exception as exc:
        return PeerRun("torchstat", "Flops", version, error=named_line(exc))
    finally:
        for handle in handles:
            handle.remove()
    layers = {name: float(row["flops"]) for name, row in detail.items()}
    return PeerRun(
        "torchstat", "Flops", version,
        total=float(sum(layers.values())),
        params=sum(row["params"] for row in detail.values()),
        layers=layers, detail=detail,
        unsupported={n: {type(leaves[n]).__name__: 1} for n, r in detail.items()
                     if r["unsupported"]},
        crashed=crashed,
    )


# -- the ops a parent runs itself ----------------------------------------------------------


def self_ops(report: Report) -> dict[str, dict[str, int]]:
    """The ops each parent module ran in its own ``forward`` (outside any child), such as the
    residual ``add_`` of a ResNet block: the work module-hook tools cannot see. Read from the
    report's ``"ops"`` rows, which the counting trace's one op observer attributed (named as
    those rows name them; calls over the whole forward). Views are free and never listed."""
    found: dict[str, Counter[str]] = {}
    for layer in report.layers:
        if layer.is_ops:
            parent = str(layer.attributes.get("parent", ""))
            per_call = layer.attributes.get("ops") or {}
            ops = found.setdefault(parent, Counter())
            for op, n in per_call.items():
                ops[str(op)] += int(n) * layer.calls
    return {name: dict(ops) for name, ops in found.items()}


# -- comparison ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    layer: str
    type: str
    tool: str
    kind: str
    cnnprof: float
    peer: float | None
    why: str


@dataclass(frozen=True)
class Comparison:
    model: str
    inputs: list[list[int]]
    tools: dict[str, dict[str, Any]]
    totals: list[dict[str, Any]]
    layers: list[dict[str, Any]]
    findings: list[Finding]
    functional_ops: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["schema"] = "cnnprof.crosscheck/1"
        return out


def _bias_adds(layer: LayerRecord) -> int:
    if not layer.attributes.get("bias") or not layer.output_shapes:
        return 0
    return math.prod(int(d) for d in layer.output_shapes[0])


def _mac_finding(layer: LayerRecord, run: PeerRun) -> Finding | None:
    """thop/fvcore against cnnprof's MACs."""
    peer = run.layers.get(layer.name)
    mine = layer.macs
    if peer is None:
        peer = 0.0
    if round(peer) == mine:
        return None
    unsupported = run.unsupported.get(layer.name)
    if peer == 0 and unsupported:
        what = ", ".join(sorted(unsupported))
        return Finding(layer.name, layer.type, run.tool, "unsupported", mine, peer,
                       f"{run.tool} has no rule for {what}: counts 0")
    if mine == 0:
        return Finding(layer.name, layer.type, run.tool, "convention", mine, peer,
                       f"{run.tool} counts {layer.type}'s element-wise work in its MACs; "
                       "cnnprof counts it as FLOPs, not MACs")
    if unsupported:
        what = ", ".join(sorted(unsupported))
        return Finding(layer.name, layer.type, run.tool, "unsupported", mine, peer,
                       f"{run.tool} skips {what} inside this layer")
    ratio = peer / mine - 1
    return Finding(layer.name, layer.type, run.tool, "differs", mine, peer,
                   f"{run.tool} differs by {ratio:+.2%}")


def _torchstat_findings(layer: LayerRecord, run: PeerRun) -> list[Finding]:
    """torchstat's functions against cnnprof's ``--columns torchstat`` and cnnprof's MACs."""
    out: list[Finding] = []
    mine = layer.torchstat or {}
    if layer.name in run.crashed:
        return [Finding(layer.name, layer.type, "torchstat", "crash", layer.macs, None,
                        f"torchstat raises here: {run.crashed[layer.name]}")]
    row = run.detail.get(layer.name)
    if row is None:
        return out
    missing: list[str] = []
    for metric in ("madd", "flops", "mem_read_bytes", "mem_write_bytes"):
        if (metric if metric in ("madd", "flops") else "memory") in row["unsupported"]:
            if mine.get(metric):
                missing.append(metric)
            continue
        if mine.get(metric) is not None and mine[metric] != row[metric]:
            out.append(Finding(layer.name, layer.type, "torchstat", "differs",
                               mine[metric], row[metric],
                               f"cnnprof's torchstat {metric} differs from torchstat's own"))
    if missing:
        out.append(Finding(
            layer.name, layer.type, "torchstat", "unsupported", layer.macs, 0.0,
            f"torchstat has no {'/'.join(missing)} rule for {layer.type} (prints 0); "
            "cnnprof's torchstat preset shows cnnprof's values there, marked *"))
    if "flops" not in row["unsupported"] and row["flops"] != layer.macs:
        bias = _bias_adds(layer) if layer.macs else 0
        if layer.macs and row["flops"] == layer.macs + bias:
            why = "torchstat Flops = MACs + one add per output element for the bias"
        elif layer.macs == 0:
            why = f"torchstat Flops counts {layer.type}'s element-wise work; MACs are 0"
        else:
            why = f"torchstat Flops uses its own {layer.type} formula"
        out.append(Finding(layer.name, layer.type, "torchstat", "convention", layer.macs,
                           row["flops"], why))
    return out


def compare(report: Report, runs: list[PeerRun]) -> Comparison:
    """Findings for a report annotated with torchstat values, against the peers' runs."""
    from cnnprof.compat.torchstat import annotate_torchstat

    if not any(layer.torchstat for layer in report.layers):
        report = annotate_torchstat(report, measure=False)
    by_tool = {run.tool: run for run in runs if run.error is None}
    root = report.layers[0].torchstat or {}
    thop, fv, ts = by_tool.get("thop"), by_tool.get("fvcore"), by_tool.get("torchstat")
    totals = [
        {"metric": "params", "cnnprof": report.totals.params,
         "thop": thop.params if thop else None, "fvcore": fv.params if fv else None,
         "torchstat": ts.params if ts else None},
        {"metric": "MACs (thop/fvcore 'FLOPs')", "cnnprof": report.totals.macs,
         "thop": thop.total if thop else None, "fvcore": fv.total if fv else None,
         "torchstat": None},
        {"metric": "torchstat Flops (MACs + bias + element-wise)", "cnnprof": root.get("flops"),
         "thop": None, "fvcore": None, "torchstat": ts.total if ts else None},
        {"metric": "torchstat MAdd (≈ 2×MACs)", "cnnprof": root.get("madd"), "thop": None,
         "fvcore": None,
         "torchstat": sum(r["madd"] for r in ts.detail.values()) if ts else None},
        {"metric": "FLOPs (cnnprof: 2 per MAC + all other arithmetic)",
         "cnnprof": report.totals.flops, "thop": None, "fvcore": None, "torchstat": None},
    ]
    findings: list[Finding] = []
    layers: list[dict[str, Any]] = []
    for layer in report.layers:
        if (not layer.is_leaf or layer.is_ops or layer.calls == 0
                or (layer.depth == 0 and len(report.layers) > 1)):
            continue  # the peers have module rows only; own ops are compared per parent below
        found: list[Finding] = []
        for run in (thop, fv):
            if run is not None:
                finding = _mac_finding(layer, run)
                if finding is not None:
                    found.append(finding)
        if ts is not None:
            found.extend(_torchstat_findings(layer, ts))
        findings.extend(found)
        ts_row = ts.detail.get(layer.name) if ts else None
        layers.append({
            "layer": layer.name, "type": layer.type, "cnnprof_macs": layer.macs,
            "cnnprof_flops": layer.flops,
            "thop": thop.layers.get(layer.name, 0.0) if thop else None,
            "fvcore": fv.layers.get(layer.name, 0.0) if fv else None,
            "torchstat_flops": ts_row["flops"] if ts_row else None,
            "torchstat_madd": ts_row["madd"] if ts_row else None,
            "agree": not found,
        })
    # a parent's own ops: its rows of kind "ops" (and anything left in its self cost)
    functional = self_ops(report)
    own_ops: dict[str, Cost] = {}
    for layer in report.layers:
        if layer.is_ops:
            parent = str(layer.attributes.get("parent", ""))
            own_ops[parent] = own_ops.get(parent, Cost()) + layer.cost
    functional_rows: list[dict[str, Any]] = []
    for layer in report.layers:
        if layer.is_leaf:
            continue
        own = layer.self_cost + own_ops.get(layer.name, Cost())
        if own.flops == 0 and own.macs == 0:
            continue
        ops = functional.get(layer.name, {})
        fv_unsupported = fv.unsupported.get(layer.name, {}) if fv else {}
        if fv is None:
            fv_says = None
        elif fv_unsupported:
            fv_says = "unsupported " + ", ".join(f"{k} ×{v}" for k, v in fv_unsupported.items())
        else:
            fv_says = "counted"
        row = {
            "layer": layer.name, "type": layer.type, "cnnprof_self_macs": own.macs,
            "cnnprof_self_flops": own.flops, "ops": ops,
            "thop": "not seen (module hooks only)" if thop else None,
            "torchstat": "not seen (module hooks only)" if ts else None,
            "fvcore": fv_says,
        }
        functional_rows.append(row)
        op_text = ", ".join(f"{k} ×{v}" for k, v in ops.items()) or "functional ops"
        for tool in ("thop", "torchstat"):
            if tool in by_tool:
                findings.append(Finding(
                    layer.name, layer.type, tool, "unseen", own.flops, 0.0,
                    f"{op_text} in {layer.type}.forward: a functional op, "
                    "not seen by module hooks"))
        if fv is not None and fv_unsupported:
            findings.append(Finding(
                layer.name, layer.type, "fvcore", "unsupported", own.flops, 0.0,
                f"fvcore: {fv_says} in {layer.type}.forward (counted 0)"))
    tools = {run.tool: {"version": run.version, "unit": run.unit, "error": run.error}
             for run in runs}
    tools["cnnprof"] = {"version": report.meta.get("cnnprof"), "unit": "MACs and FLOPs",
                        "error": None}
    return Comparison(
        model=report.model.spec, inputs=[list(i.shape) for i in report.inputs], tools=tools,
        totals=totals, layers=layers, findings=findings, functional_ops=functional_rows,
    )


def run_peers(model: torch.nn.Module, args: tuple[Any, ...],
              tools: tuple[str, ...] = ("thop", "fvcore", "torchstat")) -> list[PeerRun]:
    runners = {"thop": run_thop, "fvcore": run_fvcore, "torchstat": run_torchstat}
    return [runners[name](model, args) for name in tools]
