"""A user's model: ``path/to/file.py:ClassOrFactory`` or ``package.module:factory``.

A model file is Python code: cnnprof executes it, exactly as ``python file.py`` would
(minus the ``__main__`` block). Only profile files you trust.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from cnnprof.errors import (
    ModelCodeError,
    ModelLoadError,
    UsageError,
    first_line,
    named_line,
)
from cnnprof.guard import Captured, UserCodeExit, user_code
from cnnprof.inputs import InputSpec, parse_input_spec
from cnnprof.zoo.base import ZooEntry


def is_user_spec(spec: str) -> bool:
    path_part = spec.rsplit(":", 1)[0] if ":" in spec else spec
    return (":" in spec and not spec.startswith(("timm:", "hf:"))) or path_part.endswith(".py")


def parse_args(pairs: list[str]) -> dict[str, Any]:
    """``--arg key=value`` pairs; values literal-evaluated (``10``, ``True``, ``(3, 4)``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        # dotted keys reach nested configs (hf: text_config.num_hidden_layers=2)
        if not sep or not all(part.isidentifier() for part in key.split(".")):
            raise UsageError(f"bad --arg {pair!r}", hint="write key=value, e.g. num_classes=10")
        try:
            out[key] = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            out[key] = raw.strip()  # a bare word is a string: --arg act=relu
    return out


def _load_file(path: Path) -> tuple[ModuleType, str]:
    if not path.exists():
        raise ModelLoadError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelLoadError(f"not a file: {path}")
    source = path.read_text(encoding="utf-8", errors="replace")
    try:
        compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise ModelCodeError(
            f"syntax error in {path} line {exc.lineno}: {exc.msg}"
        ) from None
    module_name = f"cnnprof_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    printed = Captured()
    errors = Captured()
    # the file's directory first, so its sibling imports work as under `python file.py`
    sys.path.insert(0, str(path.resolve().parent))
    try:
        # stderr is held back too: an argparse at import writes its usage there, which would
        # read as cnnprof's own; it is replayed when the import succeeds (warnings)
        with user_code(f"importing {path}", program=str(path)), \
                contextlib.redirect_stdout(printed), contextlib.redirect_stderr(errors):
            spec.loader.exec_module(module)
    except UserCodeExit as exc:
        sys.modules.pop(module_name, None)
        raise ModelCodeError(str(exc), hint=_said(errors.getvalue())) from exc
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise ModelCodeError(
            f"importing {path} raised {named_line(exc)}",
            hint=_said(errors.getvalue()),
        ) from exc
    finally:
        sys.path.pop(0)
    sys.stderr.write(errors.getvalue())
    return module, printed.getvalue()


def _said(stderr: str) -> str | None:
    """The last line user code wrote to stderr before it failed (argparse's complaint)."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    return f"it wrote: {lines[-1][:200]}" if lines else None


def _candidates(module: ModuleType) -> list[str]:
    return sorted(
        name for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, torch.nn.Module)
        and getattr(obj, "__module__", None) == module.__name__
    )


def entry(spec: str, kwargs: dict[str, Any]) -> ZooEntry:
    target, sep, attr = spec.rpartition(":")
    if not sep or not attr:
        raise UsageError(
            f"model spec {spec!r} names no class or factory",
            hint="write path/to/file.py:ClassName or package.module:factory",
        )
    printed = ""
    if target.endswith(".py") or "/" in target or Path(target).suffix == ".py":
        module, printed = _load_file(Path(target))
        source = "file"
    else:
        try:
            with user_code(f"importing {target}"):
                module = importlib.import_module(target)
        except ImportError as exc:
            raise ModelLoadError(f"cannot import module {target!r}: {first_line(exc)}") from None
        except UserCodeExit as exc:
            raise ModelCodeError(str(exc)) from None
        except Exception as exc:
            raise ModelCodeError(
                f"importing {target!r} raised {named_line(exc)}"
            ) from None
        source = "module"
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            found = ", ".join(_candidates(module)) or "none"
            raise ModelLoadError(
                f"{target} has no {attr!r}", hint=f"nn.Module classes there: {found}"
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise ModelLoadError(f"{spec} is not a class or factory function")
    factory_obj = obj

    def factory() -> torch.nn.Module:
        try:
            with user_code(f"{attr}({_fmt(kwargs)})"):
                model = factory_obj(**kwargs)
        except UserCodeExit as exc:
            raise ModelCodeError(str(exc)) from exc
        except TypeError as exc:
            raise ModelCodeError(f"{attr}({_fmt(kwargs)}) failed: {first_line(exc)}") from exc
        except Exception as exc:
            raise ModelCodeError(
                f"{attr}({_fmt(kwargs)}) raised {named_line(exc)}"
            ) from exc
        if not isinstance(model, torch.nn.Module):
            raise ModelLoadError(f"{attr}(...) returned {type(model).__name__}, not an nn.Module")
        return model

    default_inputs: tuple[InputSpec, ...] = ()
    declared = getattr(module, "CNNPROF_INPUTS", None)
    if declared:
        default_inputs = tuple(parse_input_spec(str(s)) for s in declared)
    return ZooEntry(
        name=spec,
        source=source,
        factory=factory,
        default_inputs=default_inputs,
        description=f"{source} model",
        extra={"printed_on_import": printed} if printed else {},
    )


def _fmt(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
