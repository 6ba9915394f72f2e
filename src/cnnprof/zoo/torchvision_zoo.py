"""Every torchvision builder, configured as its DEFAULT weights' builder configures it.

Built with ``weights=None`` (and ``weights_backbone=None``), so nothing is ever downloaded,
but with the constructor arguments the weights would force: the number of classes, aux
heads, input transforms and image sizes. A bare ``get_model(name)`` gets those wrong
(googlenet with aux logits, vit_h_14 at 224 instead of the weights' 518).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch

from cnnprof.inputs import InputSpec
from cnnprof.zoo.base import ZooEntry

#: Constructor arguments the DEFAULT weights' builders set beyond num_classes/image_size.
_DEPLOY_KWARGS: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "transform_input": True, "init_weights": False},
    "quantized_googlenet": {"aux_logits": False, "transform_input": True, "init_weights": False},
    "inception_v3": {"aux_logits": True, "transform_input": True, "init_weights": False},
    "quantized_inception_v3": {"aux_logits": False, "transform_input": True,
                               "init_weights": False},
}

_TASK_MODULES = {
    "detection": "torchvision.models.detection",
    "segmentation": "torchvision.models.segmentation",
    "video": "torchvision.models.video",
    "optical_flow": "torchvision.models.optical_flow",
    "quantization": "torchvision.models.quantization",
}


@functools.cache
def _tasks() -> dict[str, str]:
    import importlib

    import torchvision

    tasks: dict[str, str] = {}
    for task, module_name in _TASK_MODULES.items():
        module = importlib.import_module(module_name)
        for name in torchvision.models.list_models(module=module):
            tasks[name] = task
    for name in torchvision.models.list_models():
        tasks.setdefault(name, "classification")
    return tasks


def names() -> list[str]:
    return sorted(_tasks())


def _crop(weights: Any, fallback: int) -> tuple[int, int]:
    keywords = getattr(weights.transforms, "keywords", {}) if weights is not None else {}
    crop = keywords.get("crop_size") or keywords.get("resize_size") or [fallback]
    if isinstance(crop, int):
        crop = [crop]
    crop = list(crop)
    return int(crop[0]), int(crop[-1])


def _default_inputs(task: str, weights: Any) -> tuple[tuple[InputSpec, ...], str]:
    if task == "detection":
        return (InputSpec((3, 800, 800)),), "image_list"
    if task == "optical_flow":
        frame = InputSpec((3, 368, 496))  # RAFT needs H and W divisible by 8
        return (frame, frame), "tensors"
    if task == "video":
        h, w = _crop(weights, 112)
        return (InputSpec((3, 16, h, w)),), "tensors"
    if task == "segmentation":
        size = 520
        if weights is not None:
            size = int(getattr(weights.transforms, "keywords", {}).get("resize_size", 520))
        return (InputSpec((3, size, size)),), "tensors"
    h, w = _crop(weights, 224)
    return (InputSpec((3, h, w)),), "tensors"


def deploy_kwargs(name: str, weights: Any, builder: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"weights": None}
    params = inspect.signature(builder).parameters
    if "weights_backbone" in params:
        kwargs["weights_backbone"] = None
    if "quantize" in params:
        kwargs["quantize"] = True
    if weights is not None:
        categories = weights.meta.get("categories")
        if categories:
            kwargs["num_classes"] = len(categories)
        min_size = weights.meta.get("min_size")
        if name.startswith("vit_") and min_size and min_size[0] != 224:
            kwargs["image_size"] = int(min_size[0])
    if "aux_loss" in params and weights is not None:
        kwargs["aux_loss"] = True  # segmentation weights ship with their auxiliary head
    kwargs.update(_DEPLOY_KWARGS.get(name, {}))
    return kwargs


def _trained_backbone(builder: Any) -> bool:
    """Does the builder switch its backbone to frozen BN when it has weights?"""
    import sys

    try:
        source = inspect.getsource(builder)
        module = sys.modules[builder.__module__]
        # the switch may sit in a private helper the builder calls (_fasterrcnn_mobilenet_...)
        for name, obj in vars(module).items():
            if name.startswith("_") and inspect.isfunction(obj) and f"{name}(" in source:
                source += inspect.getsource(obj)
    except (OSError, TypeError, KeyError):
        return False
    return "FrozenBatchNorm2d if is_trained" in source


def freeze_backbone(model: torch.nn.Module, trainable_layers: int = 3) -> torch.nn.Module:
    """What a weights builder does to a detection backbone: FrozenBatchNorm2d in place of
    BatchNorm2d (weight/bias become buffers) and only the last ``trainable_layers`` trainable."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    backbone = getattr(model, "backbone", None)
    if backbone is None:
        return model
    for parent in backbone.modules():
        for child_name, child in list(parent.named_children()):
            if type(child) is torch.nn.BatchNorm2d:
                frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
                frozen.to(child.weight.device)
                setattr(parent, child_name, frozen)
    body = getattr(backbone, "body", None)
    if body is not None and hasattr(body, "layer4"):  # resnet: the fpn extractor's rule
        train = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
        for pname, param in body.named_parameters():
            if all(not pname.startswith(layer) for layer in train):
                param.requires_grad_(False)
    return model


def default_weights(name: str) -> Any:
    import torchvision

    try:
        return torchvision.models.get_model_weights(name).DEFAULT
    except (ValueError, AttributeError, KeyError):
        return None


def entry(name: str, overrides: dict[str, Any] | None = None) -> ZooEntry:
    """``name`` as its DEFAULT weights configure it; ``overrides`` (``--arg``) win."""
    import torchvision

    from cnnprof.errors import ModelLoadError
    from cnnprof.zoo.detection import at_capacity

    task = _tasks()[name]
    builder = torchvision.models.get_model_builder(name)
    weights = default_weights(name)
    overrides = dict(overrides or {})
    capacity = task == "detection" and bool(overrides.pop("capacity", False))
    kwargs = {**deploy_kwargs(name, weights, builder), **overrides}
    inputs, form = _default_inputs(task, weights)

    frozen_bn = weights is not None and _trained_backbone(builder)

    def factory() -> torch.nn.Module:
        try:
            model: torch.nn.Module = builder(**kwargs)
        except TypeError as exc:
            if not overrides:
                raise
            raise ModelLoadError(f"{name}: bad --arg: {exc}") from exc
        model = freeze_backbone(model) if frozen_bn else model
        return at_capacity(model) if capacity else model

    description = f"torchvision {task}"
    if weights is not None:
        description += f", configured as {type(weights).__name__}.{weights.name}"
    return ZooEntry(
        name=name,
        source="torchvision",
        factory=factory,
        default_inputs=inputs,
        input_form=form,
        description=description,
        meta_ok=task != "quantization",
        task=task,
        extra={"weights": f"{type(weights).__name__}.{weights.name}" if weights else None,
               **({"capacity": True} if capacity else {})},
    )


def deploy_kwargs_for(name: str, weights: Any) -> dict[str, Any]:
    """Constructor arguments of ``name`` configured as ``weights`` (any entry, not only
    DEFAULT) configures it: its number of classes, ViT image size, aux heads."""
    import torchvision

    return deploy_kwargs(name, weights, torchvision.models.get_model_builder(name))


def weights_input(weights: Any) -> InputSpec:
    """A classification weights entry's eval input: 3×crop×crop."""
    h, w = _crop(weights, 224)
    return InputSpec((3, h, w))
