"""Table columns and presets. Other features add columns here (time, torchstat ...)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


def _cost(field: str, fmt: Callable[[float], str]) -> Column:
    return Column(
        field, field.replace("_", " ").replace("bytes", "B").strip().capitalize(),
        lambda r: fmt(getattr(r, field)) if getattr(r, field) else "—",
        lambda rep: fmt(getattr(rep.totals, field)),
    )


COLUMNS: dict[str, Column] = {
    "type": Column("type", "Type", lambda r: r.type, justify="left"),
    "input_shape": Column("input_shape", "Input shape", lambda r: units.shapes(r.input_shapes),
                          justify="left"),
    "output_shape": Column("output_shape", "Output shape",
                           lambda r: units.shapes(r.output_shapes), justify="left"),
    "params": Column("params", "Params", lambda r: units.count(r.params) if r.params else "—",
                     lambda rep: units.count(rep.totals.params)),
    "calls": Column("calls", "Calls", lambda r: str(r.calls)),
    "macs": Column("macs", "MACs", lambda r: units.count(r.macs) if r.macs else "—",
                   lambda rep: units.count(rep.totals.macs)),
    "flops": Column("flops", "FLOPs", lambda r: units.count(r.flops) if r.flops else "—",
                    lambda rep: units.count(rep.totals.flops)),
    "param_bytes": _cost("param_bytes", units.nbytes),
    "activation_bytes": Column(
        "activation_bytes", "Activations",
        lambda r: units.nbytes(r.activation_bytes) if r.activation_bytes else "—",
        lambda rep: units.nbytes(rep.totals.activation_bytes)),
    "read_bytes": Column("read_bytes", "Read", lambda r: units.nbytes(r.read_bytes) if r.read_bytes else "—",
                         lambda rep: units.nbytes(rep.totals.read_bytes)),
    "write_bytes": Column("write_bytes", "Write",
                          lambda r: units.nbytes(r.write_bytes) if r.write_bytes else "—",
                          lambda rep: units.nbytes(rep.totals.write_bytes)),
}

PRESETS: dict[str, list[str]] = {
    "default": ["type", "input_shape", "output_shape", "params", "macs", "flops"],
    "shapes": ["type", "input_shape", "output_shape", "params"],
    "bytes": ["type", "output_shape", "params", "param_bytes", "activation_bytes",
              "read_bytes", "write_bytes"],
    "all": ["type", "calls", "input_shape", "output_shape", "params", "macs", "flops",
            "param_bytes", "activation_bytes", "read_bytes", "write_bytes"],
}


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
    seen: set[str] = set()
    return [COLUMNS[k] for k in keys if not (k in seen or seen.add(k))]
