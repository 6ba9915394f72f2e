"""Detection models count what their boxes cost: how many boxes each head processed, and the
option to count at the model's configured capacity.

A detector's MACs depend on how many boxes survive each stage (the RPN's non-maximum
suppression, the box head's score threshold), so they depend on the weights and the image.
cnnprof's counts repeat because it seeds what it creates (cnnprof.guard.SEED): random weights
and inputs are the same every run. That count is one sample, though, not a bound: a trained
model on a busy image keeps more boxes. ``capacity=True`` (``--arg capacity=true``) switches
the thresholds off so that every stage keeps as many boxes as it is configured to (the RPN's
post-NMS top-N, ``detections_per_img``): the upper bound a budget wants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch

from cnnprof.report import LayerRecord

#: Thresholds that let every box through: scores are probabilities (> 0), and NMS discards a
#: box only when its overlap is strictly above the threshold (never above 1).
_KEEP_ALL = {"score_thresh": 0.0, "nms_thresh": 1.0}


def at_capacity(model: torch.nn.Module) -> torch.nn.Module:
    """Configure ``model`` (a torchvision detector) to keep every box up to its limits."""
    targets = [model, getattr(model, "rpn", None), getattr(model, "roi_heads", None)]
    for target in targets:
        if target is None:
            continue
        for key, value in _KEEP_ALL.items():
            if hasattr(target, key):
                setattr(target, key, value)
    return model


def limits(model: torch.nn.Module) -> dict[str, int]:
    """The configured capacity of each stage (eval mode): row name → boxes per image."""
    out: dict[str, int] = {}
    rpn = getattr(model, "rpn", None)
    if rpn is not None and hasattr(rpn, "_post_nms_top_n"):
        out["rpn"] = int(rpn._post_nms_top_n["testing"])
    roi_heads = getattr(model, "roi_heads", None)
    if roi_heads is not None and hasattr(roi_heads, "detections_per_img"):
        out["roi_heads"] = int(roi_heads.detections_per_img)
    elif hasattr(model, "detections_per_img"):
        cap: Any = model.detections_per_img
        out[""] = int(cap)  # single-stage: the model's own output
    return out


def boxes_processed(model: torch.nn.Module, records: Sequence[LayerRecord],
                    capacity: bool = False) -> tuple[list[LayerRecord], list[str]]:
    """Rows of the detection stages annotated with the boxes per image they returned
    (``attributes["boxes_per_image"]``, and ``"box_capacity"``), and one note saying it."""
    caps = limits(model)
    out: list[LayerRecord] = []
    said: list[str] = []
    for record in records:
        if record.name in caps:
            boxes = [s[0] for s in record.output_shapes if len(s) == 2 and s[-1] == 4]
            if boxes:
                cap = caps[record.name]
                attributes: dict[str, Any] = {**record.attributes, "boxes_per_image": boxes,
                                              "box_capacity": cap}
                record = replace(record, attributes=attributes)
                label = record.name or "the model"
                said.append(f"{label} {'/'.join(map(str, boxes))} of {cap}")
        out.append(record)
    notes = []
    if said:
        notes.append("boxes per image (counted / capacity): " + ", ".join(said)
                     + ("; counted at capacity (thresholds off)" if capacity else
                        "; they depend on the weights and the image: --arg capacity=true "
                        "counts every stage full, the bound a budget wants"))
    return out, notes
