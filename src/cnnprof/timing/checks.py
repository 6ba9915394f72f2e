"""Self-checks of a timed report against independent references (used by the CUDA tests
and ``benchmarks/gpu_calibrate.py``). Pure functions of a Report: testable anywhere.

The bounds are the design's promises at batch 32 on a datacenter GPU:
  (a) hooks add at most 10% to the end-to-end median;
  (b) leaf self times sum to within 10% of the hooked end-to-end median;
  (c) each layer over 50 µs is within 10% of the kernel time torch.profiler attributes to it;
  (d) the reported peak memory is within 5% of ``max_memory_allocated`` of a plain forward.

A report timed with ``--graphs`` also gets the graph-mode versions (same 10% bounds):
  (a') the graph replay with timing marks vs without;
  (b') executed-leaf graph times vs the unmarked graph end-to-end;
  (c') each layer's graph time vs its profiler kernel time.
(b) and (c) on such a report use the eager figures it keeps (``eager_median_s``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnprof.report import LayerRecord, Report

HOOK_OVERHEAD_BOUND = 0.10
LEAF_SUM_BOUND = 0.10
KERNEL_MATCH_BOUND = 0.10
KERNEL_MIN_S = 50e-6
MEMORY_BOUND = 0.05


@dataclass(frozen=True)
class Check:
    name: str
    value: float | None
    bound: float
    passed: bool | None  # None: not applicable (no data)
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "bound": self.bound,
                "passed": self.passed, "detail": self.detail}


def hook_overhead(report: Report) -> Check:
    t = _timing(report)
    value = t.get("hook_overhead")
    if value is None:
        return Check("hook_overhead", None, HOOK_OVERHEAD_BOUND, None, "no unhooked baseline")
    return Check("hook_overhead", value, HOOK_OVERHEAD_BOUND, value <= HOOK_OVERHEAD_BOUND,
                 f"hooked {t['end_to_end_median_s'] * 1e3:.3f} ms vs unhooked "
                 f"{t['end_to_end_unhooked_median_s'] * 1e3:.3f} ms")


def leaf_sum(report: Report) -> Check:
    t = _timing(report)
    total, e2e = t.get("leaf_self_sum_s"), t.get("end_to_end_median_s")
    if not total or not e2e:
        return Check("leaf_self_sum", None, LEAF_SUM_BOUND, None, "no timing")
    ratio = total / e2e - 1.0
    # time spent in parents' own code (a residual add, attention's matmuls in
    # MultiheadAttention.forward) is real work outside any leaf: name the largest
    parents = sorted((_eager(_time(r), "self_median_s"), r.name) for r in report.layers
                     if not r.is_leaf and r.time)
    top = ", ".join(f"{n or '<model>'} {s * 1e3:.3f} ms" for s, n in parents[::-1][:3])
    return Check("leaf_self_sum", ratio, LEAF_SUM_BOUND, abs(ratio) <= LEAF_SUM_BOUND,
                 f"leaves {total * 1e3:.3f} ms of {e2e * 1e3:.3f} ms; largest parent self "
                 f"times: {top}")


def _eager(t: dict[str, Any], key: str) -> float:
    """The eager figure of a layer: kept as ``eager_<key>`` in graph mode."""
    return float(t.get("eager_" + key, t.get(key, 0.0)))


def is_graph(report: Report) -> bool:
    return report.timing is not None and report.timing.mode == "graph"


def _timing(report: Report) -> dict[str, Any]:
    """The summary's JSON keys: these checks compare figures by their report names."""
    return report.timing.to_dict() if report.timing is not None else {}


def _time(rec: LayerRecord) -> dict[str, Any]:
    return rec.time.to_dict() if rec.time is not None else {}


def kernel_match(report: Report, min_s: float = KERNEL_MIN_S, *, graph: bool = False) -> Check:
    """Layers whose median is over ``min_s``: |median / kernel time - 1| ≤ bound.

    ``graph=False`` checks the eager event times, ``graph=True`` the graph-mode
    times of a ``--graphs`` report (check name ``kernel_match_graph``)."""
    name = "kernel_match_graph" if graph else "kernel_match"
    if graph and not is_graph(report):
        return Check(name, None, KERNEL_MATCH_BOUND, None, "not timed with --graphs")
    rows = []
    fallback = 0
    for rec in report.layers:
        t = _time(rec)
        value = float(t.get("median_s", 0.0)) if graph else _eager(t, "median_s")
        if value > min_s and t.get("kernel_s"):
            rows.append((value / t["kernel_s"] - 1.0, rec.name, rec.is_leaf))
            fallback += graph and t.get("method") == "events"
    if not rows:
        return Check(name, None, KERNEL_MATCH_BOUND, None,
                     "no layer over the threshold with kernel times (--kernels)")
    bad = [r for r in rows if abs(r[0]) > KERNEL_MATCH_BOUND]
    worst = max(rows, key=lambda r: abs(r[0]))
    leaves = [r for r in rows if r[2]]
    leaves_bad = [r for r in leaves if abs(r[0]) > KERNEL_MATCH_BOUND]
    return Check(name, worst[0], KERNEL_MATCH_BOUND, not bad,
                 f"{len(rows) - len(bad)}/{len(rows)} layers within bound "
                 f"(leaves {len(leaves) - len(leaves_bad)}/{len(leaves)}); worst "
                 f"{worst[1] or '<model>'} {100 * worst[0]:+.1f}%"
                 + (f"; {fallback} of them on eager events (not capturable)" if fallback
                    else ""))


def graph_mark_overhead(report: Report) -> Check:
    """(a') in-graph marks: the marked graph replay (worst variant) vs the unmarked one."""
    t = _timing(report)
    value = t.get("graph_mark_overhead")
    if not is_graph(report) or value is None:
        return Check("graph_mark_overhead", None, HOOK_OVERHEAD_BOUND, None,
                     "no in-graph marks (--graphs on a torch with external events)")
    variants = t.get("graph_variants", 1)
    return Check("graph_mark_overhead", value, HOOK_OVERHEAD_BOUND,
                 value <= HOOK_OVERHEAD_BOUND,
                 f"marked {t['end_to_end_graph_marked_median_s'] * 1e3:.3f} ms vs unmarked "
                 f"{t['end_to_end_graph_median_s'] * 1e3:.3f} ms; {variants} variant(s), "
                 f"marks {t.get('graph_marks')}; all marks in one graph "
                 f"{100 * (t.get('graph_dense_mark_overhead') or 0.0):+.1f}%")


def graph_leaf_sum(report: Report) -> Check:
    """(b') executed-leaf graph times vs the unmarked whole-model graph replay (graph times
    are compensated for their marks, so they estimate the unmarked forward). Parents' own
    time (a residual add, attention's matmuls in ``MultiheadAttention.forward``) is real
    work outside every leaf; the detail shows it and the sum with it."""
    t = _timing(report)
    leaves = t.get("graph_leaf_sum_s")
    e2e = t.get("end_to_end_graph_median_s")
    if not is_graph(report) or not leaves or not e2e:
        return Check("graph_leaf_sum", None, LEAF_SUM_BOUND, None,
                     "no graph timing (--graphs)")
    ratio = leaves / e2e - 1.0
    parents = t["graph_parent_self_sum_s"]
    fallbacks = len(t.get("graph_fallbacks") or {})
    return Check("graph_leaf_sum", ratio, LEAF_SUM_BOUND, abs(ratio) <= LEAF_SUM_BOUND,
                 f"leaves {leaves * 1e3:.3f} ms + parents' own {parents * 1e3:.3f} ms vs "
                 f"graph replay {e2e * 1e3:.3f} ms (with parents' own "
                 f"{100 * ((leaves + parents) / e2e - 1.0):+.1f}%)"
                 + (f"; {fallbacks} layer(s) on eager events" if fallbacks else ""))


def memory_match(report: Report, plain_peak_bytes: int | None) -> Check:
    t = _timing(report)
    peak = t.get("peak_memory_bytes")
    if peak is None or not plain_peak_bytes:
        return Check("peak_memory", None, MEMORY_BOUND, None, "CUDA only")
    ratio = peak / plain_peak_bytes - 1.0
    return Check("peak_memory", ratio, MEMORY_BOUND, abs(ratio) <= MEMORY_BOUND,
                 f"reported {peak / 1e6:.1f} MB vs plain forward {plain_peak_bytes / 1e6:.1f} MB")


def all_checks(report: Report, plain_peak_bytes: int | None = None) -> list[Check]:
    """(a)-(d) on the eager figures, then (a'), (b') and (c') for a ``--graphs`` report."""
    out = [hook_overhead(report), leaf_sum(report), kernel_match(report),
           memory_match(report, plain_peak_bytes)]
    if is_graph(report):
        out += [graph_mark_overhead(report), graph_leaf_sum(report),
                kernel_match(report, graph=True)]
    return out
