"""A zoo entry knows how to build its model (on any device) and what input it takes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from cnnprof.errors import CnnprofError, ModelCodeError, ModelLoadError, named_line
from cnnprof.guard import PROCESS_LOCK, Captured, UserCodeExit, user_code
from cnnprof.inputs import InputSpec


@dataclass(frozen=True)
class ZooEntry:
    name: str
    source: str
    factory: Callable[[], torch.nn.Module]
    default_inputs: tuple[InputSpec, ...] = ()
    #: "tensors": model(*inputs); "image_list": model([img, ...]) with one image per batch item
    input_form: str = "tensors"
    description: str = ""
    #: False for models that only build and run on the CPU (quantized kernels)
    meta_ok: bool = True
    task: str = "classification"
    extra: dict[str, Any] = field(default_factory=dict)
    #: False: a model that fails to build on meta is an error, never built on the CPU
    #: instead (a Hugging Face config may describe 70B parameters)
    cpu_fallback: bool = True

    def build(self, device: str = "meta") -> tuple[torch.nn.Module, list[str]]:
        """Construct the model on ``device``; returns it with notes on how it was built
        (and what the constructor printed: stdout is the report's, not the model's)."""
        printed = Captured()
        with PROCESS_LOCK, contextlib.redirect_stdout(printed):
            model, notes = self._build(device)
        text = printed.getvalue().strip()
        if text:
            notes.append("the model printed while being built: "
                         + (text if len(text) <= 500 else text[:500] + " ..."))
        return model, notes

    def _build(self, device: str) -> tuple[torch.nn.Module, list[str]]:
        if device == "meta":
            if not self.meta_ok:
                return self._construct("cpu"), [
                    f"{self.name} runs only on the CPU: counted on real CPU tensors"
                ]
            try:
                return self._construct("meta"), []
            except Exception:
                if not self.cpu_fallback:
                    raise
            try:
                # e.g. RegNet: its constructor calls .tolist() on arithmetic tensors
                with parameters_on_meta():
                    model = self._call_factory()
                return model.to("meta"), [
                    "built with parameters on meta (the constructor needs real arithmetic)"
                ]
            except Exception:
                return self._construct("cpu"), [
                    f"{self.name} cannot be built on the meta device; built on the CPU"
                ]
        if not self.meta_ok and device != "cpu":
            raise ModelLoadError(f"{self.name} runs only on the CPU (quantized kernels)")
        return self._construct(device), []

    def _construct(self, device: str) -> torch.nn.Module:
        with torch.device(device):
            return self._call_factory()

    def _call_factory(self) -> torch.nn.Module:
        """The constructor, inside the user-code guard: whatever it raises (or a
        ``sys.exit``) is the model's failure to build, one line, exit 2."""
        try:
            with user_code(f"building {self.name}"):
                return self.factory()
        except CnnprofError:
            raise
        except Exception as exc:
            shown = exc.original if isinstance(exc, UserCodeExit) else exc
            raise ModelCodeError(f"building {self.name} raised {named_line(shown)}") from exc

    def arguments(self, tensors: list[torch.Tensor]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Model call arguments from example tensors in the entry's input form."""
        if self.input_form == "image_list":
            images = tensors[0]
            return ([images[i] for i in range(images.shape[0])],), {}
        return tuple(tensors), {}


#: Factory functions whose results become parameters and buffers in constructors.
_PARAM_FACTORIES = ("empty", "zeros", "ones", "full", "randn", "rand", "empty_strided", "normal")


class _ParamsOnMeta(TorchFunctionMode):
    """Like ``torch.device('meta')`` but only for parameter-sized factories, so constructor
    arithmetic (``torch.arange(...).tolist()``) still runs on the CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.targets = {getattr(torch, n) for n in _PARAM_FACTORIES}

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = dict(kwargs or {})
        if func in self.targets and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


@contextlib.contextmanager
def parameters_on_meta() -> Iterator[None]:
    with _ParamsOnMeta():
        yield
