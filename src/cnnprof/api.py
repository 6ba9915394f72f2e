"""``profile()``: model (instance or spec) + inputs → Report. No printing."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from cnnprof import __version__
from cnnprof.counting import REGISTRY, FormulaRegistry
from cnnprof.device import Device, for_counting, for_timing
from cnnprof.errors import (
    InputSpecError,
    ModelFailedError,
    UsageError,
    first_line,
)
from cnnprof.guard import UserCodeExit, seeded_rng
from cnnprof.inputs import (
    FLOAT_DTYPES,
    InputSpec,
    bind,
    check_names,
    check_size,
    example_tensor,
    make_tensors,
    parse_dtype,
    parse_input_spec,
    torch_dtype,
    with_dtype,
)
from cnnprof.report import Generation, ModelInfo, Report, TensorInfo
from cnnprof.trace.build import freeze
from cnnprof.trace.engine import TraceRun, meta_stand_ins, needs_real_values, run_observed
from cnnprof.trace.lazy import lazy_modules, materialise
from cnnprof.trace.stand_ins import Plan, call_with, meta_plan
from cnnprof.weights import apply as apply_weights
from cnnprof.weights import load_state_dict
from cnnprof.weights import stand_ins as weight_stand_ins
from cnnprof.zoo import ZooEntry, resolve

InputLike = str | InputSpec | Sequence[int] | torch.Tensor


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
    if isinstance(inputs, Mapping):
        return _named_specs(inputs)
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
    check_names(specs)
    return specs, (tensors or None)


def _named_specs(inputs: Mapping[Any, Any]) -> tuple[list[InputSpec], list[torch.Tensor] | None]:
    """``{"input_ids": "128:int64"}`` or ``{"input_ids": tensor}``: keyword inputs."""
    specs: list[InputSpec] = []
    tensors: list[torch.Tensor] = []
    for key, value in inputs.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise InputSpecError(f"input name {key!r} is not a keyword name")
        spec, tensor = _specs(value, None)
        if len(spec) != 1:
            raise InputSpecError(f"input {key!r}: give one shape or tensor")
        if spec[0].name not in (None, key):
            raise InputSpecError(f"input {key!r} is named {spec[0].name!r} in its spec")
        specs.append(replace(spec[0], name=key))
        tensors.extend(tensor or [])
    if not specs:
        raise InputSpecError("inputs={} names no input")
    if tensors and len(tensors) != len(specs):
        raise InputSpecError("pass either tensors or shapes as inputs, not both")
    return specs, (tensors or None)


def check_keywords(model: torch.nn.Module, names: Sequence[str]) -> None:
    """Refuse a keyword input ``model.forward`` does not take, before running it.

    A forward with ``**kwargs`` takes any name, except a transformers model's: its
    ``**kwargs`` are attention options passed down, where an unknown name is ignored."""
    if not names:
        return
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return
    named = [n for n, p in params.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    open_ended = any(p.kind is p.VAR_KEYWORD for p in params.values())
    if open_ended and not type(model).__module__.startswith("transformers."):
        return
    for name in names:
        if name not in named:
            import difflib

            close = difflib.get_close_matches(name, named, n=2, cutoff=0.6)
            raise InputSpecError(
                f"{type(model).__name__}.forward takes no input {name!r}",
                hint=(f"did you mean {', '.join(close)}? " if close else "")
                + f"its inputs: {', '.join(named[:8])}" + (" ..." if len(named) > 8 else ""))


def profile(
    model: torch.nn.Module | str,
    inputs: InputLike | Sequence[InputLike] | None = None,
    *,
    batch: int = 1,
    dtype: str | None = None,
    device: str | Device = "auto",
    mode: str = "eval",
    model_args: dict[str, Any] | None = None,
    registry: FormulaRegistry = REGISTRY,
    command: str | None = None,
    weights: str | Path | None = None,
    backward: bool = False,
    time: bool = False,
    warmup: int | None = None,
    repeats: int | None = None,
    decode: int | None = None,
    train_memory: bool = False,
    optimizer: str = "adamw",
    amp: str | None = None,
    fit: str | int | None = None,
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
    ``train_memory``: also simulate one steady-state training step (forward, ``output.sum()``,
    backward, ``optimizer`` step, ``zero_grad``; under autocast with ``amp="bf16"|"fp16"``)
    into ``Report.training_memory`` and ``LayerRecord.saved_bytes``; ``fit`` (``"24GB"``, or
    bytes) adds the largest batch whose peak fits (docs/memory.md). ``fit`` implies
    ``train_memory``.
    ``inputs`` may name keyword inputs: ``{"input_ids": "128:int64"}``, a dict of tensors,
    or ``"input_ids=128:int64"`` strings; the model is called ``model(*positional, **named)``.
    ``decode=N``: count one decoding step of a causal LM (a transformers model, or an
    ``hf:`` spec, built with its causal-LM head) whose KV cache holds N tokens; the report's
    ``generation`` says what the step reads (docs/huggingface.md).

    ``time=True``: also time every layer on ``device`` (``"cpu"``, ``"cuda[:N]"``, or
    ``"auto"``: the GPU when there is one, else the CPU, with a note saying which); the counts
    are made on the meta device as usual and each layer gets a typed ``LayerRecord.time``
    (``median_s``, ``p10_s``, ``self_median_s`` ...), the run a ``Report.timing`` summary.
    ``warmup``/``repeats``: untimed and timed iterations (default 2/10 on the CPU, 10/50 on
    CUDA). More control (batch sweeps, CUDA graphs, kernels): ``cnnprof.timing.api``.
    """
    if time and decode is not None:
        raise UsageError("decode counts one step; timing it (time=True) is not supported",
                         hint="time the prefill instead: inputs={'input_ids': 'N:int64'}")
    if time:
        return _profile_timed(model, inputs, batch=batch, dtype=dtype, device=device,
                              mode=mode, model_args=model_args, registry=registry,
                              command=command, weights=weights, backward=backward,
                              warmup=warmup, repeats=repeats, train_memory=train_memory,
                              optimizer=optimizer, amp=amp, fit=fit)
    if warmup is not None or repeats is not None:
        raise UsageError("warmup and repeats only apply with time=True")
    if mode not in ("eval", "train"):
        raise UsageError(f"--mode must be eval or train, got {mode!r}")
    if batch <= 0:
        raise InputSpecError(f"--batch must be a positive integer, got {batch}")
    counting = for_counting(device)
    float_dtype = parse_dtype(dtype) if dtype else None
    if train_memory or fit is not None:
        from cnnprof.training import check_options

        optimizer, amp, fit_bytes = check_options(optimizer, amp, fit)
    entry: ZooEntry | None = None
    if decode is not None:
        if isinstance(decode, bool) or not isinstance(decode, int) or decode < 0:
            raise UsageError(f"--decode takes a number of context tokens, got {decode!r}")
        if inputs is not None and not (isinstance(inputs, (list, tuple)) and not inputs):
            raise UsageError("--decode makes its own inputs (one new token and the KV cache)",
                             hint="drop --input; the prefill is the plain count at "
                                  "--input input_ids=N:int64")
        if backward:
            raise UsageError("--decode counts inference; it does not combine with --backward")
        inputs = [InputSpec((1,), "int64", "input_ids")]
        if isinstance(model, str) and model.strip().startswith("hf:"):
            from cnnprof.zoo.hf import for_decode

            model_args = for_decode(model_args)
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
    if counting is None:
        counting, built = _auto_device(
            entry, model if isinstance(model, torch.nn.Module) else None, specs, given, batch,
            dtype)
    state = load_state_dict(weights) if weights is not None else None
    if entry is not None:
        notes.extend(entry.extra.get("build_notes", ()))
    cache_bytes: list[int] = []
    # seeded: the weights cnnprof initialises and the inputs it makes are the same every run,
    # so a data-dependent model (detection: how many boxes survive) counts the same; the
    # caller's RNG state is given back
    with seeded_rng():
        run, instance, used_device = _count(
            entry, model if isinstance(model, torch.nn.Module) else None,
            specs, given, batch, float_dtype, str(counting), mode, registry, notes,
            weights=(state, str(weights)) if state is not None else None, backward=backward,
            decode=(decode, cache_bytes) if decode is not None else None,
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
    frozen = freeze(run.modules.root)
    records, unsupported = frozen.records, frozen.unsupported
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
    totals = frozen.totals(records[0].backward if records else None)
    generation = None
    if decode is not None and cache_bytes:
        from cnnprof.zoo.hf import decode_shape

        shape = decode_shape(instance.config)
        generation = Generation(
            context=decode, batch=batch, layers=shape.layers, kv_heads=shape.kv_heads,
            head_dim=shape.head_dim, dtype=_float_name(instance),
            kv_cache_bytes=cache_bytes[0], weight_bytes=totals.param_bytes)
    report = Report(
        model=info,
        inputs=_input_infos(specs, given, batch),
        device=used_device,
        totals=totals,
        layers=tuple(records),
        unsupported_ops=unsupported,
        notes=tuple(notes),
        mode=mode,
        meta={"cnnprof": __version__, "torch": torch.__version__,
              **({"command": command} if command else {})},
        generation=generation,
    )
    if run.error is not None:
        error = _describe_failure(run, instance, entry,
                                  specs if given is None and decode is None else [],
                                  batch, mode, info.spec if entry is not None else None)
        report = report.with_updates(error=error)
        raise ModelFailedError(error["message"], hint=error.get("hint"), report=report)
    if train_memory or fit is not None:
        from cnnprof.training import with_training_memory

        report = with_training_memory(report, instance, entry, specs, given, batch, float_dtype,
                                      optimizer=optimizer, amp=amp, fit_bytes=fit_bytes)
    return report


def _refuse_torchscript(model: torch.nn.Module) -> None:
    if isinstance(model, torch.jit.ScriptModule):
        raise UsageError(
            f"cannot profile a TorchScript module ({type(model).__name__}): its submodules "
            "cannot be hooked nor its weights swapped for meta tensors",
            hint="pass the nn.Module you traced or scripted")


def _auto_device(entry: ZooEntry | None, instance: torch.nn.Module | None,
                 specs: list[InputSpec], given: list[torch.Tensor] | None, batch: int,
                 dtype: str | None) -> tuple[Device, tuple[torch.nn.Module, list[str]] | None]:
    """``device="auto"`` (rules and measurements: cnnprof.device_choice, docs/performance.md),
    and a spec's model when it had to be built (on meta) to decide."""
    from cnnprof.device_choice import choose, meta_started

    if meta_started():
        return Device("meta", reason="auto: meta kernels already started in this process"), None
    if given is not None and any(t.is_meta for t in given):
        # the user's inputs hold no values: count where they are
        return Device("meta", reason="auto: the inputs are meta tensors"), None
    built: tuple[torch.nn.Module, list[str]] | None = None
    model: torch.nn.Module
    model_device: str | None
    if entry is not None:
        if entry.source not in SMALL_SPEC_SOURCES or not entry.meta_ok:
            # torchvision, timm and hf: built on meta without initialising weights (the same
            # JSON on every machine); entries that need the CPU say so themselves
            return Device("meta", reason="auto: a zoo model is built on meta"), None
        # a seed model, a user file or a module:factory: built on meta (no weight
        # initialisation) to learn its size; a small one in a process where meta has not
        # started is rebuilt on the CPU, which counts it faster than meta's start-up
        built = entry.build("meta")
        if meta_started():  # the constructor ran meta kernels: the start-up is paid
            return Device("meta", reason="auto: the constructor started meta"), built
        model, model_device = built[0], "cpu"
    else:
        assert instance is not None
        if lazy_modules(instance):  # parameters without sizes: shaped on meta (trace/lazy.py)
            return Device("meta", reason="auto: lazy modules are materialised on meta"), None
        model, model_device = instance, _model_device(instance)
    elements = (sum(t.numel() for t in given) if given is not None
                else sum(batch * math.prod(s.shape) for s in specs))
    params = sum(p.numel() for p in model.parameters())
    kind, why = choose(params=params, input_elements=elements, model_device=model_device,
                       dtype=dtype)
    chosen = Device("cpu" if kind == "cpu" else "meta", reason="auto: " + why)
    return chosen, (built if chosen.kind == "meta" else None)


#: Zoo sources whose models ``device="auto"`` may count on the CPU: small models whose
#: constructor is cheap (issue 21: seed models, user files, ``module:factory``).
SMALL_SPEC_SOURCES = frozenset({"classic", "file", "module"})


def _profile_timed(model: torch.nn.Module | str, inputs: Any, *, device: str | Device,
                   warmup: int | None, repeats: int | None, dtype: str | None,
                   model_args: dict[str, Any] | None, command: str | None,
                   **counting: Any) -> Report:
    """Count on meta, then time on the real device (``cnnprof.timing.api``)."""
    from cnnprof.timing.api import TimingOptions, time_report

    options = TimingOptions(device=for_timing(device), warmup=warmup, repeats=repeats,
                            dtype=dtype)
    options.check()  # usage errors before the (slower) count
    report = profile(model, inputs, device="meta", dtype=dtype, model_args=model_args,
                     command=command, **counting)
    given = [t for t in _tensors_in(inputs)] if isinstance(model, torch.nn.Module) else []
    return time_report(report, model, options, model_args=model_args,
                       inputs=given or None, command=command)


def _tensors_in(inputs: Any) -> list[torch.Tensor]:
    if isinstance(inputs, torch.Tensor):
        return [inputs]
    if isinstance(inputs, (list, tuple)):
        return [t for t in inputs if isinstance(t, torch.Tensor)]
    return []


def _input_infos(specs: list[InputSpec], given: list[torch.Tensor] | None,
                 batch: int) -> tuple[TensorInfo, ...]:
    if given is not None:
        return tuple(TensorInfo(tuple(t.shape), s.dtype, s.name)
                     for s, t in zip(specs, given, strict=True))
    return tuple(TensorInfo((batch, *s.shape), s.dtype, s.name) for s in specs)


def _float_name(model: torch.nn.Module) -> str:
    for p in model.parameters():
        if p.is_floating_point():
            return str(p.dtype).removeprefix("torch.")
    return "float32"


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
    decode: tuple[int, list[int]] | None = None,
    built: tuple[torch.nn.Module, list[str]] | None = None,
) -> tuple[TraceRun, torch.nn.Module, str]:
    """``decode``: (context tokens, a list that receives the KV cache's bytes); ``built``:
    the spec's model, already built on meta by ``_auto_device``."""
    train = mode == "train"
    cast = torch_dtype(float_dtype) if float_dtype else None
    names = [s.name for s in specs if s.name is not None]

    def keywords(model: torch.nn.Module, dev: str) -> dict[str, Any]:
        """Checks the keyword inputs; the KV cache of a decoding step."""
        if decode is None:
            check_keywords(model, names)
            return {}
        from cnnprof.zoo.hf import decode_arguments

        dtype = cast or next((p.dtype for p in model.parameters() if p.is_floating_point()),
                             torch.float32)
        extra, nbytes = decode_arguments(model, batch=batch, context=decode[0], dtype=dtype,
                                         device=dev)
        decode[1][:] = [nbytes]
        check_keywords(model, names)
        return extra

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
            lazy = lazy_modules(model)
            if lazy:  # a first forward shapes them, outside the trace
                lazy_args, lazy_kwargs = entry.arguments(tensors_on(actual))
                model = materialise(model, actual, lambda m: m(*lazy_args, **lazy_kwargs),
                                    copy=False)
                notes.append(_lazy_note(lazy, actual, copy=False))
            if cast is not None:
                model = model.to(cast)
            notes.extend(build_notes)
            if weights is not None:
                apply_weights(model, *weights)
            positional, named = bind(specs, tensors_on(actual))
            args, kwargs = entry.arguments(list(positional))
            kwargs = {**kwargs, **named, **keywords(model, actual)}
            return run_observed(model, lambda: model(*args, **kwargs), train=train,
                                registry=registry, backward=backward), model, actual
        assert instance is not None
        model = instance
        args, kwargs = bind(specs, tensors_on(dev))
        kwargs = {**kwargs, **keywords(model, dev)}
        lazy = lazy_modules(model)
        if lazy:  # shaped by a first forward on a copy: the user's instance stays lazy
            model = materialise(model, dev, lambda m: m(*args, **kwargs), copy=True)
            notes.append(_lazy_note(lazy, dev, copy=True))
        current = _model_device(model)
        swap: dict[str, torch.Tensor] | Plan
        if current == dev and cast is None and weights is None:
            # the instance's own parameters, but copies of its buffers: a forward in train mode
            # updates BatchNorm statistics and spectral norm's u/v in place
            swap = {name: b.clone() for name, b in model.named_buffers()}
        elif dev == "meta" and cast is None and weights is None:
            swap = meta_plan(model)  # the common case: by tensor, no names
        else:
            stand_ins = meta_stand_ins(model, dev)
            if weights is not None:
                stand_ins.update(weight_stand_ins(model, *weights, dev))
            if cast is not None:
                stand_ins = {k: v.to(cast) if v.is_floating_point() else v
                             for k, v in stand_ins.items()}
            swap = stand_ins

        def call() -> Any:  # functional_call's semantics, ties kept (trace/stand_ins.py)
            return call_with(model, swap, args, kwargs)

        return run_observed(model, call, train=train, registry=registry,
                            backward=backward), model, dev

    run, model, used = attempt(device)
    inputs_bytes = (sum(t.numel() * t.element_size() for t in given) if given is not None
                    else sum(batch * math.prod(s.shape) * torch_dtype(s.dtype).itemsize
                             for s in specs))
    if (run.error is not None and used == "meta" and inputs_bytes <= CPU_RETRY_LIMIT_BYTES
            and _may_retry_on_cpu(run.error, model, entry)):
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


def _lazy_note(names: list[str], device: str, *, copy: bool) -> str:
    shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
    return (f"{len(names)} lazy module(s) ({shown}) materialised on {device} by a first "
            + ("forward of a copy before counting (your instance stays lazy)" if copy
               else "forward before counting"))


#: Models whose parameters exceed this are not materialised on the CPU to retry a failed
#: meta-device forward, unless the failure says it needs tensor values; inputs larger than
#: this never are.
CPU_RETRY_LIMIT_BYTES = 2 * 1024**3


def _may_retry_on_cpu(error: BaseException, model: torch.nn.Module,
                      entry: ZooEntry | None = None) -> bool:
    if isinstance(error, UserCodeExit):
        return False  # it exits on any device
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    if entry is not None and not entry.cpu_fallback:
        # a Hugging Face config may describe 70B parameters: never materialised
        return size <= CPU_RETRY_LIMIT_BYTES
    if needs_real_values(error):
        return True
    return size <= CPU_RETRY_LIMIT_BYTES


def _model_device(model: torch.nn.Module) -> str | None:
    for param in model.parameters():
        return param.device.type if param.device.type != "cuda" else str(param.device)
    for buffer in model.buffers():
        return buffer.device.type
    return None
