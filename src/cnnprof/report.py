"""The report: plain frozen dataclasses and their JSON form (``cnnprof.report/1``).

Nothing here formats numbers or prints; renderers do that. Counts are ints in base units
(elements, multiply-accumulates, FLOPs, bytes); times are float seconds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cnnprof.measurements import LayerMemory, LayerTime, Roofline, TimingSummary

if TYPE_CHECKING:
    import pandas

SCHEMA = "cnnprof.report/1"

#: Cost fields counted per op and rolled up per layer.
COST_FIELDS: tuple[str, ...] = ("macs", "flops", "activation_bytes", "read_bytes", "write_bytes")


@dataclass(frozen=True)
class Cost:
    """What a piece of computation costs. Adds like a vector."""

    macs: int = 0
    flops: int = 0
    activation_bytes: int = 0
    read_bytes: int = 0
    write_bytes: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.macs + other.macs,
            self.flops + other.flops,
            self.activation_bytes + other.activation_bytes,
            self.read_bytes + other.read_bytes,
            self.write_bytes + other.write_bytes,
        )

    def scaled(self, factor: int) -> Cost:
        return Cost(*(factor * getattr(self, f) for f in COST_FIELDS))

    def to_dict(self) -> dict[str, int]:
        return {f: getattr(self, f) for f in COST_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cost:
        return cls(**{f: int(data.get(f, 0)) for f in COST_FIELDS})

    @staticmethod
    def total(costs: Iterable[Cost]) -> Cost:
        out = Cost()
        for c in costs:
            out = out + c
        return out


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]
    dtype: str
    #: the keyword the input was passed as (``input_ids``); None for a positional input
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"shape": list(self.shape), "dtype": self.dtype}
        if self.name is not None:
            out["name"] = self.name
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorInfo:
        name = data.get("name")
        return cls(tuple(int(d) for d in data["shape"]), str(data["dtype"]),
                   str(name) if name is not None else None)


@dataclass(frozen=True)
class ModelInfo:
    spec: str
    class_name: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "class": self.class_name, "source": self.source}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        return cls(str(data["spec"]), str(data["class"]), str(data["source"]))


Shape = tuple[int, ...]


@dataclass(frozen=True)
class LayerRecord:
    """One module, or one stretch of ops a parent ran itself, in first-call order. Cost
    fields are inclusive of children.

    ``kind`` is ``"module"`` or ``"ops"``. An ``"ops"`` row (type ``functional``, named
    ``<parent>.(<ops>)``) holds the ops a parent module ran in its own ``forward`` in one gap
    between child calls: a residual ``out += identity``, an attention's ``torch.matmul``. It is
    a leaf child of that parent; ``attributes`` holds ``parent``, ``segment`` (how many child
    calls returned before the gap) and ``ops`` (op name → calls per parent call).

    ``self_cost`` holds what ran in the row's own code outside any child row: all of it for a
    leaf, nothing for a parent module (its own ops are in its ``"ops"`` rows) except ops run
    outside every module call. The sum of ``self_cost`` over all rows equals the totals, and
    so does the sum of the leaf rows.
    """

    name: str
    type: str
    depth: int
    calls: int = 1
    is_leaf: bool = True
    input_shapes: tuple[Shape, ...] = ()
    input_dtypes: tuple[str, ...] = ()
    output_shapes: tuple[Shape, ...] = ()
    output_dtypes: tuple[str, ...] = ()
    #: A module called more than once with different shapes: every distinct input (output)
    #: signature in first-seen order, the first call's first; empty when every call agrees.
    distinct_input_shapes: tuple[tuple[Shape, ...], ...] = ()
    distinct_output_shapes: tuple[tuple[Shape, ...], ...] = ()
    params: int = 0
    own_params: int = 0
    trainable_params: int = 0
    buffers: int = 0
    param_bytes: int = 0
    macs: int = 0
    flops: int = 0
    activation_bytes: int = 0
    read_bytes: int = 0
    write_bytes: int = 0
    self_cost: Cost = field(default_factory=Cost)
    unsupported_ops: dict[str, int] = field(default_factory=dict)
    #: Backward-pass cost (``--backward``), inclusive.
    backward: Cost | None = None
    #: Timing (``--time``): median_s, p10_s, p90_s, min_s, self_median_s, share, samples_s.
    time: LayerTime | None = None
    #: CUDA memory: alloc_delta_bytes, peak_bytes, start_bytes.
    memory: LayerMemory | None = None
    #: Kernels launched (``--kernels``): list of {name, count, total_s}.
    kernels: list[dict[str, Any]] | None = None
    #: Achieved throughput against the device's peak.
    roofline: Roofline | None = None
    #: torchstat's own definitions (``--columns torchstat``).
    torchstat: dict[str, Any] | None = None
    #: Module hyper-parameters (kernel_size, stride, groups, bias, in_features ...).
    attributes: dict[str, Any] = field(default_factory=dict)
    #: "module", or "ops" for a stretch of a parent's own ops
    kind: str = "module"
    #: Bytes this layer's forward keeps for backward in a training step (``--train-memory``),
    #: inclusive of children; None unless asked for.
    saved_bytes: int | None = None
    #: the row that owns the same parameter tensors (a tied LM head and embedding: GPT-2's
    #: ``lm_head`` says ``transformer.wte`` and vice versa); totals count them once
    shared_params_with: str | None = None

    @property
    def is_ops(self) -> bool:
        return self.kind == "ops"

    @property
    def cost(self) -> Cost:
        return Cost(*(getattr(self, f) for f in COST_FIELDS))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "depth": self.depth,
            "calls": self.calls,
            "is_leaf": self.is_leaf,
            "input_shapes": [list(s) for s in self.input_shapes],
            "input_dtypes": list(self.input_dtypes),
            "output_shapes": [list(s) for s in self.output_shapes],
            "output_dtypes": list(self.output_dtypes),
            "params": self.params,
            "own_params": self.own_params,
            "trainable_params": self.trainable_params,
            "buffers": self.buffers,
            "param_bytes": self.param_bytes,
            **self.cost.to_dict(),
            "self": self.self_cost.to_dict(),
            "unsupported_ops": dict(self.unsupported_ops),
            "attributes": dict(self.attributes),
        }
        for key in ("distinct_input_shapes", "distinct_output_shapes"):
            if getattr(self, key):  # only for a module whose calls saw different shapes
                out[key] = [[list(s) for s in call] for call in getattr(self, key)]
        if self.backward is not None:
            out["backward"] = self.backward.to_dict()
        for key in ("time", "memory", "kernels", "roofline", "torchstat"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value.to_dict() if hasattr(value, "to_dict") else value
        if self.saved_bytes is not None:
            out["saved_bytes"] = self.saved_bytes
        if self.shared_params_with is not None:
            out["shared_params_with"] = self.shared_params_with
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerRecord:
        def shapes(key: str) -> tuple[Shape, ...]:
            return tuple(tuple(int(d) for d in s) for s in data.get(key, []))

        return cls(
            name=str(data["name"]),
            type=str(data["type"]),
            depth=int(data["depth"]),
            calls=int(data.get("calls", 1)),
            is_leaf=bool(data.get("is_leaf", True)),
            input_shapes=shapes("input_shapes"),
            input_dtypes=tuple(data.get("input_dtypes", [])),
            output_shapes=shapes("output_shapes"),
            output_dtypes=tuple(data.get("output_dtypes", [])),
            distinct_input_shapes=tuple(tuple(tuple(int(d) for d in s) for s in call)
                                        for call in data.get("distinct_input_shapes", [])),
            distinct_output_shapes=tuple(tuple(tuple(int(d) for d in s) for s in call)
                                         for call in data.get("distinct_output_shapes", [])),
            params=int(data.get("params", 0)),
            own_params=int(data.get("own_params", 0)),
            trainable_params=int(data.get("trainable_params", 0)),
            buffers=int(data.get("buffers", 0)),
            param_bytes=int(data.get("param_bytes", 0)),
            **{f: int(data.get(f, 0)) for f in COST_FIELDS},
            self_cost=Cost.from_dict(data.get("self", {})),
            unsupported_ops={str(k): int(v) for k, v in data.get("unsupported_ops", {}).items()},
            backward=Cost.from_dict(data["backward"]) if "backward" in data else None,
            time=LayerTime.from_dict(data["time"]) if data.get("time") else None,
            memory=LayerMemory.from_dict(data["memory"]) if data.get("memory") else None,
            kernels=data.get("kernels"),
            roofline=Roofline.from_dict(data["roofline"]) if data.get("roofline") else None,
            torchstat=data.get("torchstat"),
            attributes=dict(data.get("attributes", {})),
            kind=str(data.get("kind", "module")),
            saved_bytes=int(data["saved_bytes"]) if "saved_bytes" in data else None,
            shared_params_with=(str(data["shared_params_with"])
                                if data.get("shared_params_with") is not None else None),
        )


@dataclass(frozen=True)
class Totals:
    params: int = 0
    trainable_params: int = 0
    frozen_params: int = 0
    buffers: int = 0
    param_bytes: int = 0
    buffer_bytes: int = 0
    macs: int = 0
    flops: int = 0
    activation_bytes: int = 0
    read_bytes: int = 0
    write_bytes: int = 0
    backward: Cost | None = None

    @property
    def cost(self) -> Cost:
        return Cost(*(getattr(self, f) for f in COST_FIELDS))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name != "backward"
        }
        if self.backward is not None:
            out["backward"] = self.backward.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Totals:
        names = [f.name for f in fields(cls) if f.name != "backward"]
        back = data.get("backward")
        return cls(
            **{n: int(data.get(n, 0)) for n in names},
            backward=Cost.from_dict(back) if back is not None else None,
        )


@dataclass(frozen=True)
class Generation:
    """One decoding step of a causal LM (``--decode N``): the step's per-layer cost is the
    report's layers; this says what the step read besides them.

    ``kv_cache_bytes`` = 2 (keys and values) × layers × batch × context × kv_heads ×
    head_dim × element size: the cache before the step. One step must read every weight and
    the whole cache, ``step_read_bytes`` = ``weight_bytes`` + ``kv_cache_bytes``, which bounds
    the tokens per second of a memory-bound device: bandwidth / step_read_bytes.
    """

    context: int
    batch: int
    layers: int
    kv_heads: int
    head_dim: int
    dtype: str
    kv_cache_bytes: int
    weight_bytes: int
    new_tokens: int = 1

    @property
    def step_read_bytes(self) -> int:
        return self.weight_bytes + self.kv_cache_bytes

    def tokens_per_s_bound(self, bytes_per_s: float) -> float:
        """Steps per second a device reading ``bytes_per_s`` can at most run (each step
        yields ``batch`` tokens, one per sequence)."""
        return bytes_per_s / self.step_read_bytes

    def to_dict(self) -> dict[str, Any]:
        return {"context": self.context, "batch": self.batch, "new_tokens": self.new_tokens,
                "layers": self.layers, "kv_heads": self.kv_heads, "head_dim": self.head_dim,
                "dtype": self.dtype, "kv_cache_bytes": self.kv_cache_bytes,
                "weight_bytes": self.weight_bytes, "step_read_bytes": self.step_read_bytes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Generation:
        return cls(context=int(data["context"]), batch=int(data["batch"]),
                   layers=int(data["layers"]), kv_heads=int(data["kv_heads"]),
                   head_dim=int(data["head_dim"]), dtype=str(data["dtype"]),
                   kv_cache_bytes=int(data["kv_cache_bytes"]),
                   weight_bytes=int(data["weight_bytes"]),
                   new_tokens=int(data.get("new_tokens", 1)))


@dataclass(frozen=True)
class Report:
    model: ModelInfo
    inputs: tuple[TensorInfo, ...]
    device: str
    totals: Totals
    layers: tuple[LayerRecord, ...]
    unsupported_ops: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    mode: str = "eval"
    #: Whole-model timing (``--time``): device_name, warmup, repeats, end_to_end_median_s, ...
    timing: TimingSummary | None = None
    #: Set when the forward failed: the partial report plus where and why.
    error: dict[str, Any] | None = None
    #: Provenance: cnnprof and torch versions, command line.
    meta: dict[str, Any] = field(default_factory=dict)
    schema: str = SCHEMA
    #: Peak memory of one training step (``--train-memory``).
    training_memory: TrainingMemory | None = None
    #: One decoding step's context and KV cache (``--decode N``).
    generation: Generation | None = None

    # -- navigation -------------------------------------------------------------------
    def layer(self, name: str) -> LayerRecord:
        for rec in self.layers:
            if rec.name == name:
                return rec
        raise KeyError(name)

    def leaves(self) -> Iterator[LayerRecord]:
        return (r for r in self.layers if r.is_leaf)

    @property
    def root(self) -> LayerRecord:
        return self.layers[0]

    def with_updates(self, **changes: Any) -> Report:
        return replace(self, **changes)

    # -- JSON -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": self.schema,
            "model": self.model.to_dict(),
            "inputs": [i.to_dict() for i in self.inputs],
            "device": self.device,
            "mode": self.mode,
            "totals": self.totals.to_dict(),
            "layers": [layer.to_dict() for layer in self.layers],
            "unsupported_ops": dict(self.unsupported_ops),
            "notes": list(self.notes),
        }
        if self.timing is not None:
            out["timing"] = self.timing.to_dict()
        if self.error is not None:
            out["error"] = self.error
        if self.training_memory is not None:
            out["training_memory"] = self.training_memory.to_dict()
        if self.generation is not None:
            out["generation"] = self.generation.to_dict()
        out["meta"] = dict(self.meta)
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        schema = str(data.get("schema", ""))
        if not schema.startswith("cnnprof.report/"):
            raise ValueError(f"not a cnnprof report (schema {schema!r})")
        return cls(
            model=ModelInfo.from_dict(data["model"]),
            inputs=tuple(TensorInfo.from_dict(i) for i in data.get("inputs", [])),
            device=str(data.get("device", "meta")),
            totals=Totals.from_dict(data.get("totals", {})),
            layers=tuple(LayerRecord.from_dict(r) for r in data.get("layers", [])),
            unsupported_ops={str(k): int(v) for k, v in data.get("unsupported_ops", {}).items()},
            notes=tuple(str(n) for n in data.get("notes", [])),
            mode=str(data.get("mode", "eval")),
            timing=TimingSummary.from_dict(data["timing"]) if data.get("timing") else None,
            error=data.get("error"),
            meta=dict(data.get("meta", {})),
            schema=schema,
            training_memory=(TrainingMemory.from_dict(data["training_memory"])
                             if data.get("training_memory") is not None else None),
            generation=(Generation.from_dict(data["generation"])
                        if data.get("generation") is not None else None),
        )

    @classmethod
    def from_json(cls, text: str) -> Report:
        return cls.from_dict(json.loads(text))

    @classmethod
    def load(cls, path: str | Path) -> Report:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    # -- display in Python and notebooks (docs/api.md) -----------------------------------
    # Python's display protocols (repr, _repr_html_, __rich_console__) must be methods of the
    # object itself, but the renderers sit above the data model: the methods call the
    # `Display` the package root wired in (cnnprof/__init__.py), so no import points up.
    def __repr__(self) -> str:
        return _display().summary(self)

    def __rich_console__(self, console: Any, options: Any) -> Iterator[Any]:
        yield _display().renderable(self)

    def _repr_html_(self) -> str:
        return _display().html(self)

    def show(self, *, depth: int | None = None, columns: str | None = None,
             width: int | None = None) -> None:
        """Print the per-layer table (``cnnprof MODEL``'s), folded at ``depth``, with
        ``columns`` (a preset or comma-separated keys), ``width`` characters wide."""
        _display().show(self, depth=depth, columns=columns, width=width)

    def to_dataframe(self) -> pandas.DataFrame:
        """One row per layer (pandas needed: ``pip install 'cnnprof[pandas]'``)."""
        return _display().dataframe(self)


class ShowTable(Protocol):
    def __call__(self, report: Report, *, depth: int | None, columns: str | None,
                 width: int | None) -> None: ...


@dataclass(frozen=True)
class Display:
    """How a report shows itself in Python: what the renderers provide
    (``cnnprof.render.notebook.DISPLAY``) and the package root hands to `use_display`, so the
    data model calls up without importing up (the dependency is inverted, not hidden)."""

    #: the one-line ``repr``
    summary: Callable[[Report], str]
    #: what Rich prints for ``rich.print(report)``
    renderable: Callable[[Report], Any]
    #: the notebook's HTML table
    html: Callable[[Report], str]
    show: ShowTable
    dataframe: Callable[[Report], pandas.DataFrame]


_wired: list[Display] = []


def use_display(display: Display) -> None:
    """Wire the renderers' `Display` in (the package root does, once, at import)."""
    _wired[:] = [display]


def _display() -> Display:
    if not _wired:  # only if cnnprof/__init__.py lost its wiring: a bug, not a user error
        raise RuntimeError("cnnprof.report has no Display wired in (cnnprof/__init__.py)")
    return _wired[0]


#: The parts of live memory in a training step, in report order.
MEMORY_PARTS: tuple[str, ...] = (
    "parameters", "buffers", "gradients", "optimizer_state", "input", "saved_activations",
    "temporaries",
)


@dataclass(frozen=True)
class TrainingMemory:
    """Live tensor bytes during one steady-state training step (docs/memory.md).

    ``peak_parts`` splits ``peak_bytes`` into ``MEMORY_PARTS``; ``peak_at`` says when it
    happens (``"forward features.3"``, ``"backward layer4.0.conv1"``, ``"optimizer step"``).
    ``timeline_bytes`` is live memory over the step, sampled after ops (at most a few hundred
    points, each the largest value of its stretch); ``phases`` maps a phase to the index of
    its first point. ``max_batch`` (``--fit``): the largest batch whose peak fits
    ``fit_bytes``, and ``max_batch_peak_bytes`` its peak (0 and None when none fits).
    """

    optimizer: str
    amp: str | None
    batch: int
    peak_bytes: int
    peak_at: str
    peak_parts: dict[str, int]
    param_bytes: int
    buffer_bytes: int
    gradient_bytes: int
    optimizer_state_bytes: int
    input_bytes: int
    saved_bytes: int
    start_bytes: int
    end_bytes: int
    loss: str = "output.sum()"
    timeline_bytes: tuple[int, ...] = ()
    phases: dict[str, int] = field(default_factory=dict)
    fit_bytes: int | None = None
    max_batch: int | None = None
    max_batch_peak_bytes: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def model_state_bytes(self) -> int:
        """Parameters, gradients and optimizer state: what a training step keeps whatever
        the batch."""
        return self.param_bytes + self.gradient_bytes + self.optimizer_state_bytes

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "optimizer": self.optimizer,
            "amp": self.amp,
            "batch": self.batch,
            "loss": self.loss,
            "peak_bytes": self.peak_bytes,
            "peak_at": self.peak_at,
            "peak_parts": {k: self.peak_parts.get(k, 0) for k in MEMORY_PARTS},
            "model_state_bytes": self.model_state_bytes,
            "param_bytes": self.param_bytes,
            "buffer_bytes": self.buffer_bytes,
            "gradient_bytes": self.gradient_bytes,
            "optimizer_state_bytes": self.optimizer_state_bytes,
            "input_bytes": self.input_bytes,
            "saved_bytes": self.saved_bytes,
            "start_bytes": self.start_bytes,
            "end_bytes": self.end_bytes,
            "timeline_bytes": list(self.timeline_bytes),
            "phases": dict(self.phases),
        }
        if self.fit_bytes is not None:
            out["fit_bytes"] = self.fit_bytes
            out["max_batch"] = self.max_batch
            out["max_batch_peak_bytes"] = self.max_batch_peak_bytes
        out["notes"] = list(self.notes)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingMemory:
        def optional(key: str) -> int | None:
            value = data.get(key)
            return int(value) if value is not None else None

        amp = data.get("amp")
        return cls(
            optimizer=str(data["optimizer"]),
            amp=str(amp) if amp is not None else None,
            batch=int(data["batch"]),
            loss=str(data.get("loss", "output.sum()")),
            peak_bytes=int(data["peak_bytes"]),
            peak_at=str(data.get("peak_at", "")),
            peak_parts={str(k): int(v) for k, v in data.get("peak_parts", {}).items()},
            param_bytes=int(data.get("param_bytes", 0)),
            buffer_bytes=int(data.get("buffer_bytes", 0)),
            gradient_bytes=int(data.get("gradient_bytes", 0)),
            optimizer_state_bytes=int(data.get("optimizer_state_bytes", 0)),
            input_bytes=int(data.get("input_bytes", 0)),
            saved_bytes=int(data.get("saved_bytes", 0)),
            start_bytes=int(data.get("start_bytes", 0)),
            end_bytes=int(data.get("end_bytes", 0)),
            timeline_bytes=tuple(int(v) for v in data.get("timeline_bytes", [])),
            phases={str(k): int(v) for k, v in data.get("phases", {}).items()},
            fit_bytes=optional("fit_bytes"),
            max_batch=optional("max_batch"),
            max_batch_peak_bytes=optional("max_batch_peak_bytes"),
            notes=tuple(str(n) for n in data.get("notes", [])),
        )
