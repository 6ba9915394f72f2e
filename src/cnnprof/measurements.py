"""What the timing pass measured, as typed frozen values: per layer ``LayerTime``,
``LayerMemory`` and ``Roofline``, per run ``TimingSummary``.

They sit beside ``cnnprof.report`` (the bottom layer): the timing pass builds them, renderers,
diff and budgets read their attributes, and ``to_dict``/``from_dict`` give the JSON keys of
``cnnprof.report/1`` in the order they always had, so a timed report round-trips byte for byte.
Seconds are float seconds, bytes ints.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in values or ())


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class LayerTime:
    """One layer's times. Inclusive (``median_s`` ...) and self (children excluded);
    ``share`` of the whole-model time measured the same way; ``samples_s`` the raw samples
    the statistics come from. With ``--graphs`` the figures are the graph replay's, and
    ``method`` says how ("marks", "isolated" or "events"), the eager ones riding along."""

    median_s: float
    p10_s: float
    p90_s: float
    min_s: float
    self_median_s: float
    self_p10_s: float
    self_p90_s: float
    share: float
    calls: int
    samples_s: tuple[float, ...] = ()
    method: str | None = None
    eager_median_s: float | None = None
    eager_self_median_s: float | None = None
    graph_calls_per_window: int | None = None
    backward_median_s: float | None = None
    kernel_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "samples_s":
                out[f.name] = list(value)
            elif value is not None:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerTime:
        per_window = data.get("graph_calls_per_window")
        return cls(
            median_s=float(data["median_s"]), p10_s=float(data["p10_s"]),
            p90_s=float(data["p90_s"]), min_s=float(data["min_s"]),
            self_median_s=float(data["self_median_s"]), self_p10_s=float(data["self_p10_s"]),
            self_p90_s=float(data["self_p90_s"]), share=float(data["share"]),
            calls=int(data["calls"]), samples_s=_floats(data.get("samples_s")),
            method=data.get("method"), eager_median_s=_opt_float(data.get("eager_median_s")),
            eager_self_median_s=_opt_float(data.get("eager_self_median_s")),
            graph_calls_per_window=None if per_window is None else int(per_window),
            backward_median_s=_opt_float(data.get("backward_median_s")),
            kernel_s=_opt_float(data.get("kernel_s")),
        )


@dataclass(frozen=True)
class LayerMemory:
    """CUDA allocator figures while the layer ran (``cnnprof.timing.memory``)."""

    alloc_delta_bytes: int
    peak_bytes: int
    start_bytes: int

    def to_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerMemory:
        return cls(int(data["alloc_delta_bytes"]), int(data["peak_bytes"]),
                   int(data["start_bytes"]))


@dataclass(frozen=True)
class Roofline:
    """Achieved throughput of one layer against the device's roofs
    (``cnnprof.timing.roofline.classify``). ``intensity`` is None for a layer that moves no
    bytes; ``bound`` is "compute" or "memory"."""

    achieved_tflops: float
    achieved_gbps: float
    intensity: float | None
    bound: str
    peak_tflops: float
    peak_gbps: float
    ridge_intensity: float
    attainable_tflops: float
    efficiency: float | None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Roofline:
        return cls(
            achieved_tflops=float(data["achieved_tflops"]),
            achieved_gbps=float(data["achieved_gbps"]),
            intensity=_opt_float(data.get("intensity")), bound=str(data["bound"]),
            peak_tflops=float(data["peak_tflops"]), peak_gbps=float(data["peak_gbps"]),
            ridge_intensity=float(data["ridge_intensity"]),
            attainable_tflops=float(data["attainable_tflops"]),
            efficiency=_opt_float(data.get("efficiency")),
        )


@dataclass(frozen=True)
class SweepRow:
    """End-to-end latency at one batch size of a ``--batch 1,8,32`` sweep."""

    batch: int
    latency_median_s: float
    latency_p10_s: float
    latency_p90_s: float
    throughput_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepRow:
        return cls(int(data["batch"]), float(data["latency_median_s"]),
                   float(data["latency_p10_s"]), float(data["latency_p90_s"]),
                   float(data["throughput_per_s"]))


#: device-information keys, present depending on the device (CUDA or CPU)
_DEVICE_KEYS = ("cuda", "driver", "cpu_threads")
#: the graph pass's keys (``--graphs``), in the order the timing pass writes them
GRAPH_KEYS = (
    "graph_method", "end_to_end_graph_median_s", "end_to_end_graph_p10_s",
    "end_to_end_graph_p90_s", "end_to_end_graph_samples_s", "graph_leaf_sum_s",
    "graph_parent_self_sum_s", "graph_sum_s", "graph_fallbacks", "graph_marks_failure",
    "graph_plan", "graph_seconds", "end_to_end_graph_marked_median_s",
    "end_to_end_graph_marked_samples_s", "graph_mark_overhead", "graph_dense_mark_overhead",
    "graph_variants", "graph_marks", "graph_mark_cost_s", "graph_mark_plan",
)


@dataclass(frozen=True)
class TimingSummary:
    """The whole timed run: where and how it was timed, end-to-end figures (hooked and
    un-hooked), memory peak, launch-bound verdict and notes. ``mode`` is the report's mode,
    or "graph" when per-layer times come from CUDA graph replays (``graph`` then holds the
    graph pass's figures, keys ``GRAPH_KEYS``)."""

    device: str
    torch: str
    device_name: str
    clock: str
    warmup: int
    repeats: int
    batch: int
    dtype: str
    channels_last: bool
    mode: str
    end_to_end_median_s: float
    end_to_end_p10_s: float
    end_to_end_p90_s: float
    end_to_end_unhooked_median_s: float | None
    hook_overhead: float | None
    host_median_s: float
    host_unhooked_median_s: float | None
    leaf_self_sum_s: float
    peak_memory_bytes: int | None
    memory_baseline_bytes: int | None
    launch_bound: bool
    notes: tuple[str, ...] = ()
    end_to_end_samples_s: tuple[float, ...] = ()
    end_to_end_unhooked_samples_s: tuple[float, ...] = ()
    #: CUDA runtime version and driver (CUDA), or the CPU threads torch used (CPU)
    cuda: str | None = None
    driver: str | None = None
    cpu_threads: int | None = None
    #: the known GPU's published roofs (``cnnprof.timing.roofline``) and the TF32 switches
    peaks: dict[str, Any] | None = None
    #: ``--peak-tflops`` / ``--peak-gbps`` as given
    peak_override: dict[str, Any] | None = None
    kernel_iterations: int | None = None
    sweep: tuple[SweepRow, ...] | None = None
    graph: dict[str, Any] | None = None
    command: str | None = None
    #: keys this version does not know (a newer writer), kept so they survive a round trip
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def end_to_end_s(self) -> float:
        """The whole-model median the layer shares are of: the graph replay's when timed
        with ``--graphs``, else the hooked eager forward's."""
        graph = (self.graph or {}).get("end_to_end_graph_median_s")
        return float(graph) if graph is not None else self.end_to_end_median_s

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"device": self.device, "torch": self.torch,
                               "device_name": self.device_name}
        for key in _DEVICE_KEYS:
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        for key in ("clock", "warmup", "repeats", "batch", "dtype", "channels_last", "mode",
                    "end_to_end_median_s", "end_to_end_p10_s", "end_to_end_p90_s",
                    "end_to_end_unhooked_median_s", "hook_overhead", "host_median_s",
                    "host_unhooked_median_s", "leaf_self_sum_s", "peak_memory_bytes",
                    "memory_baseline_bytes", "launch_bound"):
            out[key] = getattr(self, key)
        out["notes"] = list(self.notes)
        out["end_to_end_samples_s"] = list(self.end_to_end_samples_s)
        out["end_to_end_unhooked_samples_s"] = list(self.end_to_end_unhooked_samples_s)
        for key in ("peaks", "peak_override", "kernel_iterations"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.sweep is not None:
            out["sweep"] = [row.to_dict() for row in self.sweep]
        if self.graph is not None:
            out.update(self.graph)
        out.update(self.extra)
        if self.command is not None:
            out["command"] = self.command
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TimingSummary:
        known = {f.name for f in fields(cls)} - {"graph", "extra", "sweep"}
        graph = {k: data[k] for k in data if k in GRAPH_KEYS}
        extra = {k: v for k, v in data.items()
                 if k not in known and k not in GRAPH_KEYS and k != "sweep"}
        sweep = data.get("sweep")

        def opt_int(key: str) -> int | None:
            value = data.get(key)
            return None if value is None else int(value)

        return cls(
            device=str(data["device"]), torch=str(data.get("torch", "")),
            device_name=str(data.get("device_name", "")), clock=str(data.get("clock", "")),
            warmup=int(data["warmup"]), repeats=int(data["repeats"]),
            batch=int(data.get("batch", 1)), dtype=str(data.get("dtype", "float32")),
            channels_last=bool(data.get("channels_last", False)),
            mode=str(data.get("mode", "eval")),
            end_to_end_median_s=float(data["end_to_end_median_s"]),
            end_to_end_p10_s=float(data["end_to_end_p10_s"]),
            end_to_end_p90_s=float(data["end_to_end_p90_s"]),
            end_to_end_unhooked_median_s=_opt_float(data.get("end_to_end_unhooked_median_s")),
            hook_overhead=_opt_float(data.get("hook_overhead")),
            host_median_s=float(data.get("host_median_s", 0.0)),
            host_unhooked_median_s=_opt_float(data.get("host_unhooked_median_s")),
            leaf_self_sum_s=float(data.get("leaf_self_sum_s", 0.0)),
            peak_memory_bytes=opt_int("peak_memory_bytes"),
            memory_baseline_bytes=opt_int("memory_baseline_bytes"),
            launch_bound=bool(data.get("launch_bound", False)),
            notes=tuple(str(n) for n in data.get("notes", [])),
            end_to_end_samples_s=_floats(data.get("end_to_end_samples_s")),
            end_to_end_unhooked_samples_s=_floats(data.get("end_to_end_unhooked_samples_s")),
            cuda=data.get("cuda"), driver=data.get("driver"),
            cpu_threads=opt_int("cpu_threads"),
            peaks=data.get("peaks"), peak_override=data.get("peak_override"),
            kernel_iterations=opt_int("kernel_iterations"),
            sweep=None if sweep is None else tuple(SweepRow.from_dict(r) for r in sweep),
            graph=graph or None, command=data.get("command"), extra=extra,
        )
