"""Resolve a model spec to a zoo entry: torchvision names, ``timm:NAME``, the classic seed
architectures, a user's ``file.py:Class`` or ``package.module:factory``."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from cnnprof.errors import ModelLoadError, UnknownModelError, UsageError
from cnnprof.zoo.base import ZooEntry

__all__ = ["ListedModel", "ZooEntry", "list_models", "resolve"]


@dataclass(frozen=True)
class ListedModel:
    name: str
    source: str
    task: str
    default_input: str
    description: str


def _timm_entry(name: str, kwargs: dict[str, Any]) -> ZooEntry:
    try:
        import timm
    except ImportError:
        raise UsageError(
            "timm is not installed", hint="pip install 'cnnprof[timm]'"
        ) from None
    from cnnprof.inputs import InputSpec

    if name not in timm.list_models():
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        raise UnknownModelError(
            f"unknown timm model {name!r}",
            hint=f"did you mean {', '.join('timm:' + c for c in close)}?" if close else None,
        )
    cfg: Any = timm.get_pretrained_cfg(name)
    size = tuple(cfg.input_size) if cfg is not None else (3, 224, 224)

    def factory() -> Any:
        return timm.create_model(name, pretrained=False, **kwargs)

    return ZooEntry(name=f"timm:{name}", source="timm", factory=factory,
                    default_inputs=(InputSpec(tuple(int(d) for d in size)),),
                    description="timm model")


def resolve(spec: str, kwargs: dict[str, Any] | None = None) -> ZooEntry:
    """The zoo entry for ``spec``; raises UnknownModelError with the closest names."""
    from cnnprof.zoo import classic, torchvision_zoo, user

    kwargs = dict(kwargs or {})
    spec = spec.strip()
    if user.is_user_spec(spec):
        return user.entry(spec, kwargs)  # a user's own constructor: its arguments are its own
    _refuse_downloads(kwargs)
    if spec.startswith("timm:"):
        return _timm_entry(spec[5:], kwargs)
    if spec in classic.ENTRIES:
        return classic.entry(spec, kwargs)
    if spec in torchvision_zoo.names():
        return torchvision_zoo.entry(spec, kwargs)
    if spec.endswith(".py"):
        raise ModelLoadError(
            f"model file spec {spec!r} names no class",
            hint=f"write {spec}:ClassName",
        )
    known = list(classic.ENTRIES) + torchvision_zoo.names()
    close = difflib.get_close_matches(spec.lower(), known, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "see: cnnprof models"
    raise UnknownModelError(f"unknown model {spec!r}", hint=hint)


#: Constructor arguments of torchvision and timm builders that download weights.
_DOWNLOADING_ARGS = ("weights", "weights_backbone", "pretrained", "pretrained_backbone")


def _refuse_downloads(kwargs: dict[str, Any]) -> None:
    """cnnprof never downloads: a zoo model built with pretrained weights would."""
    for key in _DOWNLOADING_ARGS:
        if kwargs.get(key) not in (None, False, "None", "none"):
            raise UsageError(
                f"--arg {key}={kwargs[key]!r} would download weights, and cnnprof never does",
                hint="counts do not depend on weight values; to use your own, pass "
                     "--weights FILE (a saved state_dict)")
        kwargs.pop(key, None)  # None/False: what the zoo passes anyway


def list_models(filter_text: str | None = None) -> list[ListedModel]:
    from cnnprof.zoo import classic, torchvision_zoo

    rows: list[ListedModel] = []
    for name in classic.ENTRIES:
        e = classic.entry(name, {})
        rows.append(ListedModel(name, "classic", e.task, _fmt_inputs(e), e.description))
    for name in torchvision_zoo.names():
        e = torchvision_zoo.entry(name)
        rows.append(ListedModel(name, "torchvision", e.task, _fmt_inputs(e), e.description))
    if filter_text:
        needle = filter_text.lower()
        rows = [r for r in rows if needle in r.name.lower() or needle in r.task.lower()
                or needle in r.source.lower()]
    return rows


def _fmt_inputs(entry: ZooEntry) -> str:
    return ", ".join(str(s) for s in entry.default_inputs)
