"""``profile()``: model (instance or spec) + inputs → Report. No printing."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from cnnprof import __version__
from cnnprof.counting import REGISTRY, FormulaRegistry
from cnnprof.errors import (
    DeviceError,
    InputSpecError,
    ModelFailedError,
    UsageError,
    first_line,
)
from cnnprof.guard import UserCodeExit, seeded_rng
from cnnprof.inputs import (
    FLOAT_DTYPES,
    InputSpec,
    check_size,
    example_tensor,
    make_tensors,
    parse_dtype,
    parse_input_spec,
    torch_dtype,
    with_dtype,
)
from cnnprof.report import ModelInfo, Report, TensorInfo
from cnnprof.trace.build import freeze, model_totals
from cnnprof.trace.engine import TraceRun, meta_stand_ins, needs_real_values, run_observed
from cnnprof.trace.stand_ins import call_with
from cnnprof.weights import apply as apply_weights
from cnnprof.weights import load_state_dict
from cnnprof.weights import stand_ins as weight_stand_ins
from cnnprof.zoo import ZooEntry, resolve

InputLike = str | InputSpec | Sequence[int] | torch.Tensor


def check_device(device: str) -> str:
    """Validate a device string; ``cuda`` without a GPU is a usage error, not a crash."""
    text = device.strip().lower()
    if text in ("meta", "cpu", "auto"):  # auto: cnnprof.device_choice
        return text
    if text == "gpu":
        text = "cuda"
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"--device {device}: no CUDA GPU is available here",
                hint="counting needs no GPU: use --device meta (default) or cpu",
            )
        try:
            index = torch.device(text).index
        except RuntimeError:
            raise DeviceError(f"unknown device {device!r}") from None
        if index is not None and index >= torch.cuda.device_count():
            raise DeviceError(
                f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
        return text
    raise DeviceError(f"unknown device {device!r}", hint="use meta, cpu or cuda[:N]")


def _specs(
    inputs: Any, entry: ZooEntry | None
) -> tuple[list[InputSpec], list[torch.Tensor] | None]:
    """Input specs, and the user's own tensors when they passed tensors."""
    if inputs is None or (isinstance(inputs, (list, tuple)) and len(inputs) == 0):
        if entry is not None and entry.default_inputs:
            return list(entry.default_inputs), None
        raise InputSpecError(
            "no input shape given and the model has no default",
            hint="pass --input, e.g. --input 3x224x224",
        )
    if isinstance(inputs, (str, InputSpec, torch.Tensor)):
        inputs = [inputs]
    elif isinstance(inputs, (tuple, list)) and inputs and all(isinstance(d, int) for d in inputs):
        inputs = [tuple(inputs)]
    specs: list[InputSpec] = []
    tensors: list[torch.Tensor] = []
    for item in inputs:
        if isinstance(item, torch.Tensor):
            tensors.append(item)
            specs.append(InputSpec(tuple(item.shape[1:]), str(item.dtype).removeprefix("torch.")))
        elif isinstance(item, InputSpec):
            specs.append(item)
        elif isinstance(item, str):
            specs.append(parse_input_spec(item))
        elif isinstance(item, (tuple, list)) and all(isinstance(d, int) for d in item):
            if any(d <= 0 for d in item):
                raise InputSpecError(f"input shape {tuple(item)} has a non-positive dimension")
            specs.append(InputSpec(tuple(item)))
        else:
            raise InputSpecError(f"cannot make an input from {type(item).__name__}")
    if tensors and len(tensors) != len(specs):
        raise InputSpecError("pass either tensors or shapes as inputs, not both")
    return specs, (tensors or None)


def profile(
    model: torch.nn.Module | str,
    inputs: InputLike | Sequence[InputLike] | None = None,
    *,
    batch: int = 1,
    dtype: str | None = None,
    device: str = "auto",
    mode: str = "eval",
    model_args: dict[str, Any] | None = None,
    registry: FormulaRegistry = REGISTRY,
    command: str | None = None,
    weights: str | Path | None = None,
    backward: bool = False,
) -> Report:
    """Profile ``model`` (an ``nn.Module`` or a zoo spec such as ``"alexnet"``).

    ``inputs``: per-sample shapes (``"3x224x224"``, ``(3, 224, 224)``, ``"16:int64"``) with
    ``batch`` prepended, or ready tensors (used as they are). ``device="auto"`` (default)
    counts on the meta device (no arithmetic, no memory) except for a small model in a
    process where meta has not started yet, which a CPU forward counts faster
    (cnnprof.device_choice); ``report.device`` says which. The user's instance is never
    modified.
    Raises ``ModelFailedError`` (carrying the partial report) when the forward raises.
    ``weights``: a state-dict file (loaded with ``weights_only=True``), checked against the
    model on meta and loaded on a real device.
    ``backward``: also count a backward pass (gradients of parameters and activations), per
    layer into ``LayerRecord.backward`` and in total into ``Totals.backward``.
    """
    if mode not in ("eval", "train"):
        raise UsageError(f"--mode must be eval or train, got {mode!r}")
    if batch <= 0:
        raise InputSpecError(f"--batch must be a positive integer, got {batch}")
    device = check_device(device)
    float_dtype = parse_dtype(dtype) if dtype else None
    entry: ZooEntry | None = None
    if isinstance(model, str):
        entry = resolve(model, model_args)
        info = ModelInfo(model, "", entry.source)
    elif isinstance(model, torch.nn.Module):
        _refuse_torchscript(model)
        if model_args:
            raise UsageError("model_args apply to model specs, not instances")
        info = ModelInfo(type(model).__name__, type(model).__name__, "instance")
    else:
        raise UsageError(f"cannot profile a {type(model).__name__}: pass an nn.Module or a spec")
    specs, given = _specs(inputs, entry)
    if float_dtype is not None and float_dtype not in FLOAT_DTYPES:
        raise InputSpecError(f"--dtype must be a floating type, got {float_dtype}")
    specs = with_dtype(specs, float_dtype)
    check_size(specs, batch)

    notes: list[str] = []
    built: tuple[torch.nn.Module, list[str]] | None = None
    if device == "auto":
        device, built = _auto_device(entry, model if isinstance(model, torch.nn.Module)
                                     else None, specs, given, batch, dtype)
    state = load_state_dict(weights) if weights is not None else None
    # seeded: the weights cnnprof initialises and the inputs it makes are the same every run,
    # so a data-dependent model (detection: how many boxes survive) counts the same; the
    # caller's RNG state is given back
    with seeded_rng():
        run, instance, used_device = _count(
            entry, model if isinstance(model, torch.nn.Module) else None,
            specs, given, batch, float_dtype, device, mode, registry, notes,
            weights=(state, str(weights)) if state is not None else None, backward=backward,
            built=built,
        )
    if run.backward_note:
        notes.append(run.backward_note)
    if state is not None:
        notes.append(f"weights {weights}: {len(state)} tensors match the model"
                     + (" (checked only: values do not matter on meta)"
                        if used_device == "meta" else " (loaded)"))
    if run.printed:
        notes.append("the model printed during forward: " + _clip(run.printed))
    records, total_cost, unsupported = freeze(run.modules.root)
    if entry is not None and entry.task == "detection" and run.error is None:
        from cnnprof.zoo.detection import boxes_processed

        records, box_notes = boxes_processed(instance, records,
                                             bool(entry.extra.get("capacity")))
        notes.extend(box_notes)
    if unsupported:
        notes.append(
            f"{sum(unsupported.values())} call(s) of {len(unsupported)} op(s) have no formula; "
            "their MACs/FLOPs are not counted (see unsupported_ops)"
        )
    ran = {r.name for r in records if r.calls}
    # containers (ModuleList/ModuleDict) are iterated, never called, and parameter-free
    # helpers (FloatFunctional) are used through methods: only unrun weights are worth a note
    # (MultiheadAttention's out_proj is such a case: its weight goes to a function)
    uncalled = [r.name for r in records if r.calls == 0 and r.params
                and r.type != "NonDynamicallyQuantizableLinear"
                and not any(n.startswith(r.name + ".") for n in ran)]
    if uncalled:
        notes.append(f"{len(uncalled)} module(s) never ran in forward: {', '.join(uncalled[:5])}"
                     + (" ..." if len(uncalled) > 5 else ""))
    if entry is not None and entry.extra.get("printed_on_import"):
        notes.append("the model file printed on import: " + _clip(entry.extra["printed_on_import"]))
    info = ModelInfo(info.spec, type(instance).__name__, info.source)
    report = Report(
        model=info,
        inputs=_input_infos(specs, given, batch),
        device=used_device,
        totals=model_totals(instance, total_cost, records[0].backward if records else None),
        layers=tuple(records),
        unsupported_ops=unsupported,
        notes=tuple(notes),
        mode=mode,
        meta={"cnnprof": __version__, "torch": torch.__version__,
              **({"command": command} if command else {})},
    )
    if run.error is not None:
        error = _describe_failure(run, instance, entry, specs if given is None else [],
                                  batch, mode, info.spec if entry is not None else None)
        report = report.with_updates(error=error)
        raise ModelFailedError(error["message"], hint=error.get("hint"), report=report)
    return report


def _refuse_torchscript(model: torch.nn.Module) -> None:
    if isinstance(model, torch.jit.ScriptModule):
        raise UsageError(
            f"cannot profile a TorchScript module ({type(model).__name__}): its submodules "
            "cannot be hooked nor its weights swapped for meta tensors",
            hint="pass the nn.Module you traced or scripted")


def _auto_device(entry: ZooEntry | None, instance: torch.nn.Module | None,
                 specs: list[InputSpec], given: list[torch.Tensor] | None, batch: int,
                 dtype: str | None) -> tuple[str, tuple[torch.nn.Module, list[str]] | None]:
    """``device="auto"`` (rules and measurements: cnnprof.device_choice, docs/performance.md),
    and a spec's model when it had to be built (on meta) to decide."""
    from cnnprof.device_choice import choose, meta_started

    if meta_started() or (given is not None and any(t.is_meta for t in given)):
        # meta tensors the user passed hold no values: count where they are
        return "meta", None
    built: tuple[torch.nn.Module, list[str]] | None = None
    model: torch.nn.Module
    model_device: str | None
    if entry is not None:
        if not entry.meta_ok:
            return "meta", None  # its build says why it counts on the CPU
        # built on meta (no weight initialisation) to learn its size; a small model in a
        # process where meta has not started is rebuilt on the CPU (a seed model, a user file)
        built = entry.build("meta")
        if meta_started():  # the constructor ran meta kernels: the start-up is paid
            return "meta", built
        model, model_device = built[0], "cpu"
    else:
        assert instance is not None
        model, model_device = instance, _model_device(instance)
    elements = (sum(t.numel() for t in given) if given is not None
                else sum(batch * math.prod(s.shape) for s in specs))
    params = sum(p.numel() for p in model.parameters())
    device = choose(params=params, input_elements=elements, model_device=model_device,
                    dtype=dtype)[0]
    return device, (built if device == "meta" else None)


def _input_infos(specs: list[InputSpec], given: list[torch.Tensor] | None,
                 batch: int) -> tuple[TensorInfo, ...]:
    if given is not None:
        return tuple(TensorInfo(tuple(t.shape), s.dtype) for s, t in zip(specs, given, strict=True))
    return tuple(TensorInfo((batch, *s.shape), s.dtype) for s in specs)


def _clip(text: str, limit: int = 500) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + " ..."


def _describe_failure(
    run: TraceRun,
    model: torch.nn.Module,
    entry: ZooEntry | None,
    specs: list[InputSpec],
    batch: int,
    mode: str,
    spec: str | None,
) -> dict[str, Any]:
    """The report's ``error``: where and why (cnnprof.failure), and a hint with the nearest
    input that runs, searched on the meta device within a few seconds."""
    from cnnprof import failure
    from cnnprof.inspect_inputs import Prober, suggest

    def hint(detail: str) -> tuple[str, dict[str, Any]] | None:
        if (not specs or needs_real_values(run.error or Exception())
                or isinstance(run.error, UserCodeExit)):  # no input size makes it return
            return None
        arguments = entry.arguments if entry is not None else None
        with Prober(model, batch=batch, train=mode == "train", arguments=arguments) as prober:
            found = suggest(prober, specs, detail)
        if found is None:
            return None
        flags = " ".join(f"--input {s}" for s in found.specs)
        outputs = ", ".join(failure.shape_text(s) for s in found.output_shapes)
        text = f"nearest input that runs: {flags} (output {outputs})"
        if spec is not None:
            text += f"; all sizes that run: cnnprof inputs {spec} --input {specs[0]}"
        return text, {"inputs": [str(s) for s in found.specs],
                      "output_shapes": [list(s) for s in found.output_shapes],
                      "change": found.change}

    return failure.describe(run, hint)


def _count(
    entry: ZooEntry | None,
    instance: torch.nn.Module | None,
    specs: list[InputSpec],
    given: list[torch.Tensor] | None,
    batch: int,
    float_dtype: str | None,
    device: str,
    mode: str,
    registry: FormulaRegistry,
    notes: list[str],
    weights: tuple[dict[str, torch.Tensor], str] | None = None,
    backward: bool = False,
    built: tuple[torch.nn.Module, list[str]] | None = None,
) -> tuple[TraceRun, torch.nn.Module, str]:
    """``built``: the spec's model, already built on meta by ``_auto_device``."""
    train = mode == "train"
    cast = torch_dtype(float_dtype) if float_dtype else None

    def tensors_on(dev: str) -> list[torch.Tensor]:
        if given is not None:
            # meta tensors the user passed hold no values to copy: a retry on the CPU (an op
            # with no meta kernel) gets example values of the same shape and dtype
            return [t.detach().to("meta") if dev == "meta"
                    else example_tensor(t.shape, t.dtype, dev) if t.is_meta
                    else t.to(dev) for t in given]
        return make_tensors(specs, batch, dev)

    def attempt(dev: str) -> tuple[TraceRun, torch.nn.Module, str]:
        nonlocal built
        if entry is not None:
            if built is not None and dev == "meta":
                (model, build_notes), built = built, None
            else:
                model, build_notes = entry.build(dev)
            _refuse_torchscript(model)
            actual = _model_device(model) or dev
            if cast is not None:
                model = model.to(cast)
            notes.extend(build_notes)
            if weights is not None:
                apply_weights(model, *weights)
            args, kwargs = entry.arguments(tensors_on(actual))
            return run_observed(model, lambda: model(*args, **kwargs), train=train,
                                registry=registry, backward=backward), model, actual
        assert instance is not None
        model = instance
        args = tuple(tensors_on(dev))
        current = _model_device(model)
        if current == dev and cast is None and weights is None:
            # the instance's own parameters, but copies of its buffers: a forward in train mode
            # updates BatchNorm statistics and spectral norm's u/v in place
            stand_ins = {name: b.clone() for name, b in model.named_buffers()}
        else:
            stand_ins = meta_stand_ins(model, dev)
        if weights is not None:
            stand_ins.update(weight_stand_ins(model, *weights, dev))
        if cast is not None:
            stand_ins = {k: v.to(cast) if v.is_floating_point() else v
                         for k, v in stand_ins.items()}

        def call() -> Any:  # functional_call's semantics, ties kept (trace/stand_ins.py)
            return call_with(model, stand_ins, args)

        return run_observed(model, call, train=train, registry=registry,
                            backward=backward), model, dev

    run, model, used = attempt(device)
    inputs_bytes = (sum(t.numel() * t.element_size() for t in given) if given is not None
                    else sum(batch * math.prod(s.shape) * torch_dtype(s.dtype).itemsize
                             for s in specs))
    if (run.error is not None and used == "meta" and inputs_bytes <= CPU_RETRY_LIMIT_BYTES
            and _may_retry_on_cpu(run.error, model)):
        reason = first_line(run.error)
        retry, retry_model, retry_used = attempt("cpu")
        if retry.error is None:
            notes.append("the forward needs real values (on the meta device: "
                         f"{_clip(reason, 160)});"
                         " counted on the CPU instead")
            return retry, retry_model, retry_used
        if needs_real_values(run.error):
            return retry, retry_model, retry_used  # the real error, not the meta artefact
    return run, model, used


#: Models whose parameters exceed this are not materialised on the CPU to retry a failed
#: meta-device forward, unless the failure says it needs tensor values; inputs larger than
#: this never are.
CPU_RETRY_LIMIT_BYTES = 2 * 1024**3


def _may_retry_on_cpu(error: BaseException, model: torch.nn.Module) -> bool:
    if isinstance(error, UserCodeExit):
        return False  # it exits on any device
    if needs_real_values(error):
        return True
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    return size <= CPU_RETRY_LIMIT_BYTES


def _model_device(model: torch.nn.Module) -> str | None:
    for param in model.parameters():
        return param.device.type if param.device.type != "cuda" else str(param.device)
    for buffer in model.buffers():
        return buffer.device.type
    return None
