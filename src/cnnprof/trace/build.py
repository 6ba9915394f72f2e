"""Freeze a finished trace into report records: execution order, roll-ups, parameters."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch

from cnnprof.report import Cost, LayerRecord, Totals
from cnnprof.trace.frozen import maker
from cnnprof.trace.observers import Charged, Node, Stretch

#: ``LayerRecord(**fields)`` from a dict of fields, without the frozen dataclass's __init__
#: (trace/frozen.py): one per row
_record = maker(LayerRecord)

#: ``LayerRecord.type`` of the rows made from ops in a parent's own forward
FUNCTIONAL = "functional"
#: distinct op names a functional row's name lists before it abbreviates
_LABEL_OPS = 3

#: Hyper-parameters worth showing, read from modules that have them.
_ATTRIBUTES = (
    "in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
    "output_padding", "padding_mode", "in_features", "out_features", "num_features",
    "normalized_shape", "num_groups", "eps", "affine", "output_size", "ceil_mode",
    "count_include_pad", "inplace", "p", "scale_factor", "mode", "size", "embed_dim",
    "num_heads", "input_size", "hidden_size", "num_layers", "bidirectional", "batch_first",
    "num_embeddings", "embedding_dim", "dim", "start_dim", "end_dim", "negative_slope",
    "approximate", "return_indices",
)


_ATTRIBUTE_SET = frozenset(_ATTRIBUTES)
_ATTRIBUTE_RANK = {key: rank for rank, key in enumerate(_ATTRIBUTES)}
_SCALAR_TYPES = (bool, int, float, str)
_EXACT_SCALARS = frozenset({bool, int, float, str, type(None)})


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind in _EXACT_SCALARS:  # the common case, without isinstance's subclass walk
        return value
    if kind is tuple and all(type(v) is int for v in value):  # kernel_size=(3, 3)
        return list(value)
    if value is None or isinstance(value, _SCALAR_TYPES):
        return value
    if isinstance(value, (tuple, list)) and all(isinstance(v, _SCALAR_TYPES) for v in value):
        return list(value)
    return None


def module_attributes(module: torch.nn.Module) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = vars(module)
    # runs once per row: look up only the few hyper-parameters this module has
    present = _ATTRIBUTE_SET.intersection(names)
    if present:
        for key in sorted(present, key=_ATTRIBUTE_RANK.__getitem__):  # in _ATTRIBUTES' order
            value = _plain(names[key])
            if value is not None:
                out[key] = value
    if "bias" in module._parameters or "bias" in names:
        out["bias"] = module._parameters.get("bias") is not None
    return out


def ordered_nodes(root: Node) -> list[Node | Stretch]:
    """Pre-order walk with children sorted by first call; modules that never ran keep their
    place after the sibling declared before them. A parent's stretches of own ops sit among
    its children where they first ran."""
    out: list[Node | Stretch] = []
    todo: list[Node | Stretch] = [root]
    while todo:
        item = todo.pop()
        out.append(item)
        if isinstance(item, Stretch) or not (item.children or item.stretches):
            continue  # a row of ops, or a leaf module
        keyed: list[tuple[float, int, Node | Stretch]] = []
        previous = float(item.order)
        for index, child in enumerate(item.children):
            key = float(child.order) if child.calls else previous + 0.5
            previous = key
            keyed.append((key, index, child))
        for stretch in item.stretches.values():
            keyed.append((float(stretch.order), len(item.children) + stretch.segment, stretch))
        keyed.sort(key=lambda entry: (entry[0], entry[1]))
        todo.extend(child for _, _, child in reversed(keyed))
    return out


def stretch_names(node: Node) -> dict[int, str]:
    """Row names of a parent's stretches, ``<parent>.(<ops>)``: the distinct ops in the order
    they ran (``(add_)``, ``(mul+add)``); a stretch of more ops names the three with the most
    FLOPs, still in run order, and ``+more`` (``(addmm+bmm+_softmax+more)``). A label repeated
    in the same parent gets ``#2``, ``#3`` in the order the gaps ran."""
    names: dict[int, str] = {}
    seen: Counter[str] = Counter()
    for segment in sorted(node.stretches):
        stretch = node.stretches[segment]
        ops = list(stretch.ops)  # run order
        if len(ops) > _LABEL_OPS:
            heavy = sorted(ops, key=lambda op: (-stretch.op_flops[op], ops.index(op)))
            ops = [op for op in ops if op in heavy[:_LABEL_OPS]] + ["more"]
        label = "+".join(ops)
        seen[label] += 1
        label = f"({label})" + (f"#{seen[label]}" if seen[label] > 1 else "")
        names[segment] = f"{node.name}.{label}" if node.name else label
    return names


#: per module class: may it keep packed weights behind ``weight()``/``bias()``?
_PACKED: dict[type, bool] = {}


def _maybe_packed(module: torch.nn.Module) -> bool:
    """May ``module`` keep packed weights behind ``weight()``/``bias()`` (its class has a
    ``weight`` method)?"""
    cls = type(module)
    packed = _PACKED.get(cls)
    if packed is None:
        packed = _PACKED[cls] = callable(getattr(cls, "weight", None))
    return packed


def own_parameters(module: torch.nn.Module) -> list[torch.Tensor]:
    """A module's own parameters, including the packed weights of quantized modules
    (``torch.ao.nn.quantized.Conv2d`` keeps them behind ``weight()``/``bias()``)."""
    params: list[torch.Tensor] = [p for p in module._parameters.values() if p is not None]
    if params:
        return params
    cls = type(module)
    if _maybe_packed(module) and (hasattr(module, "_packed_params")
                                  or cls.__module__.startswith("torch.ao.nn.quantized")):
        try:
            weight, bias = module.weight(), module.bias()  # type: ignore[operator]
        except Exception:  # not a packed-weight module after all
            return params
        params = [t for t in (weight, bias) if isinstance(t, torch.Tensor)]
    return params


class _Parameters:
    """Own and inclusive parameter statistics per module, shared parameters counted once, the
    rows sharing parameters, and the model's totals: one pass over the modules' own tensors
    (kept alive throughout, so identities compare even for the fresh tensors a quantized
    module's ``weight()`` returns on every access)."""

    def __init__(self, nodes: list[Node]) -> None:
        #: node id → (params, trainable, buffer elements, parameter bytes)
        self.own: dict[int, tuple[int, int, int, int]] = {}
        self.inclusive: dict[int, tuple[int, int, int, int]] = {}
        own_params: dict[int, list[torch.Tensor]] = {}
        unique: dict[int, torch.Tensor] = {}  # the model's parameters, tied ones once
        buffers: dict[int, torch.Tensor] = {}
        holders: dict[int, list[Node]] = {}
        own_total = 0
        none = (0, 0, 0, 0)
        for node in nodes:
            module = node.module
            if not module._parameters and not module._buffers and not _maybe_packed(module):
                own_params[id(node)] = []  # most activations, pools, containers
                self.own[id(node)] = none
                continue
            params = own_parameters(module)
            own_params[id(node)] = params
            own_total += len(params)
            buffer_elems = 0
            for b in module._buffers.values():
                if b is not None:
                    buffer_elems += b.numel()
                    buffers[id(b)] = b
            numel = trainable = nbytes = 0
            for p in params:
                unique[id(p)] = p
                n = p.numel()
                numel += n
                nbytes += n * p.element_size()
                if p.requires_grad:
                    trainable += n
            self.own[id(node)] = (numel, trainable, buffer_elems, nbytes)
            for param in module._parameters.values():
                if param is not None:
                    rows = holders.setdefault(id(param), [])
                    if node not in rows:
                        rows.append(node)
        self.holders = holders
        self.unique_params = list(unique.values())
        self.buffers = list(buffers.values())
        # post-order (reverse pre-order) roll-up
        if own_total == len(unique):  # nothing shared: plain sums
            for node in reversed(nodes):
                numel, trainable, buffer_elems, nbytes = self.own[id(node)]
                for child in node.children:
                    c = self.inclusive[id(child)]
                    numel += c[0]
                    trainable += c[1]
                    buffer_elems += c[2]
                    nbytes += c[3]
                self.inclusive[id(node)] = (numel, trainable, buffer_elems, nbytes)
            return
        sets: dict[int, dict[int, torch.Tensor]] = {}
        for node in reversed(nodes):
            ids = {id(p): p for p in own_params[id(node)]}
            for child in node.children:
                ids.update(sets.pop(id(child)))
            sets[id(node)] = ids
            buffer_elems = self.own[id(node)][2] + sum(
                self.inclusive[id(c)][2] for c in node.children
            )
            numel, trainable, _, nbytes = _stats(list(ids.values()), [])
            self.inclusive[id(node)] = (numel, trainable, buffer_elems, nbytes)

    def shared_rows(self) -> dict[int, str]:
        """Modules whose own parameters another row owns too (a tied LM head and embedding),
        keyed by node id: the name of the first other row, in execution order, holding one of
        them. Only ``_parameters`` are compared (quantized packed weights are fresh tensors on
        every access, so their identities mean nothing)."""
        out: dict[int, str] = {}
        for rows in self.holders.values():
            for node in rows if len(rows) > 1 else ():
                if id(node) not in out:
                    out[id(node)] = next(other.name for other in rows if other is not node)
        return out

    def totals(self, cost: Cost, backward: Cost | None = None) -> Totals:
        params = self.unique_params
        numel = sum(p.numel() for p in params)
        trainable = sum(p.numel() for p in params if p.requires_grad)
        return Totals(
            params=numel,
            trainable_params=trainable,
            frozen_params=numel - trainable,
            buffers=sum(b.numel() for b in self.buffers),
            param_bytes=sum(p.numel() * p.element_size() for p in params),
            buffer_bytes=sum(b.numel() * b.element_size() for b in self.buffers),
            **cost.to_dict(),
            backward=backward,
        )


def _stats(params: list[torch.Tensor], buffers: list[torch.Tensor]) -> tuple[int, int, int, int]:
    numel = trainable = nbytes = 0
    for p in params:  # one pass: this runs for every layer
        n = p.numel()
        numel += n
        nbytes += n * p.element_size()
        if p.requires_grad:
            trainable += n
    buffer_elems = sum(b.numel() for b in buffers) if buffers else 0
    return numel, trainable, buffer_elems, nbytes


def _backward(charged: Charged) -> Cost:
    """Backward self cost (zero where the backward pass reached none of its nodes)."""
    return charged.bwd.cost() if charged.bwd is not None else Cost()


def _stretch_record(stretch: Stretch, name: str) -> LayerRecord:
    cost = stretch.cost()
    calls = max(1, stretch.calls)
    return _record({
        "name": name,
        "type": FUNCTIONAL,
        "kind": "ops",
        "depth": stretch.parent.depth + 1,
        "calls": stretch.calls,
        "is_leaf": True,
        "input_shapes": stretch.input_shapes,
        "input_dtypes": stretch.input_dtypes,
        "output_shapes": stretch.output_shapes,
        "output_dtypes": stretch.output_dtypes,
        "macs": cost.macs,
        "flops": cost.flops,
        "activation_bytes": cost.activation_bytes,
        "read_bytes": cost.read_bytes,
        "write_bytes": cost.write_bytes,
        "self_cost": cost,
        "unsupported_ops": dict(stretch.unsupported),
        "backward": _backward(stretch) if stretch.bwd is not None else None,
        "attributes": {"parent": stretch.parent.name, "segment": stretch.segment,
                       # per call of the parent (a parent called in a loop runs them each
                       # time)
                       "ops": {op: max(1, n // calls) for op, n in stretch.ops.items()}},
    })


@dataclass(frozen=True)
class Frozen:
    """A finished trace as report rows: the records in execution order, the total cost, the
    unsupported ops of the model, and the parameter totals (``totals``)."""

    records: list[LayerRecord]
    cost: Cost
    unsupported: dict[str, int]
    parameters: _Parameters

    def totals(self, backward: Cost | None = None) -> Totals:
        return self.parameters.totals(self.cost, backward)


def freeze(root: Node) -> Frozen:
    """Records in execution order, the total cost, the unsupported ops of the model and its
    parameter totals."""
    items = ordered_nodes(root)
    nodes = [item for item in items if type(item) is Node]
    stats = _Parameters(nodes)
    shared = stats.shared_rows()
    # inclusive costs as plain [macs, flops, act, read, write] (Cost is frozen: an object
    # per addition), post-order
    sums: dict[int, list[int]] = {}
    backward: dict[int, Cost] = {}
    unsupported_total: Counter[str] = Counter()
    for node in reversed(nodes):
        acc = [node.macs, node.flops, node.act, node.read, node.write]
        for child in node.children:
            c = sums[id(child)]
            acc[0] += c[0]
            acc[1] += c[1]
            acc[2] += c[2]
            acc[3] += c[3]
            acc[4] += c[4]
        for stretch in node.stretches.values():
            acc[0] += stretch.macs
            acc[1] += stretch.flops
            acc[2] += stretch.act
            acc[3] += stretch.read
            acc[4] += stretch.write
            if stretch.unsupported:
                unsupported_total.update(stretch.unsupported)
        sums[id(node)] = acc
        if node.bwd is not None:
            back = _backward(node)
            for child in node.children:
                back = back + backward.get(id(child), Cost())
            for stretch in node.stretches.values():
                back = back + _backward(stretch)
            backward[id(node)] = back
        if node.unsupported:
            unsupported_total.update(node.unsupported)
    records = []
    names: dict[int, dict[int, str]] = {}
    root_cost = Cost()
    for item in items:
        if type(item) is Stretch:
            parent = item.parent
            if id(parent) not in names:
                names[id(parent)] = stretch_names(parent)
            records.append(_stretch_record(item, names[id(parent)][item.segment]))
            continue
        node = item  # type: ignore[assignment]
        macs, flops, act, read, write = sums[id(node)]
        if node is root:
            root_cost = Cost(macs, flops, act, read, write)
        numel, trainable, buffer_elems, nbytes = stats.inclusive[id(node)]
        records.append(_record({
            "name": node.name,
            "type": node.type,
            "depth": node.depth,
            "calls": node.calls,
            "is_leaf": not node.children,
            "input_shapes": node.input_shapes,
            "input_dtypes": node.input_dtypes,
            "output_shapes": node.output_shapes,
            "output_dtypes": node.output_dtypes,
            "distinct_input_shapes": tuple(node.input_variants),
            "distinct_output_shapes": tuple(node.output_variants),
            "params": numel,
            "own_params": stats.own[id(node)][0],
            "trainable_params": trainable,
            "buffers": buffer_elems,
            "param_bytes": nbytes,
            "macs": macs,
            "flops": flops,
            "activation_bytes": act,
            "read_bytes": read,
            "write_bytes": write,
            "self_cost": node.cost(),
            "unsupported_ops": dict(node.unsupported),
            "backward": backward.get(id(node)),
            "attributes": module_attributes(node.module),
            "shared_params_with": shared.get(id(node)),
        }))
    return Frozen(records, root_cost, dict(unsupported_total), stats)
