"""Which inputs does a model accept? Probe it on the meta device, fast and without memory.

Two uses: ``cnnprof inputs`` scans a range of spatial sizes (which sizes run, the smallest,
the output shape at each), and a failed profile asks :func:`suggest` for the nearest input
that does run, for its hint.

A probe is a bare forward on meta tensors: no hooks, no dispatch modes, stdout captured, the
user's instance left as found (a model not already on meta is called through
``torch.func.functional_call`` with meta stand-ins for its parameters and buffers).
Acceptance is not monotone in general (a U-Net takes multiples of 32, a flattening
classifier one interval), so scans sample the range and locate each accept/reject boundary
by bisection; every size reported as accepted was either run or lies between two runs that
agree, and the report says how many sizes were actually run.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from cnnprof.guard import Captured, UserCodeExit, seeded_rng, user_code
from cnnprof.inputs import InputSpec, bind, make_tensors
from cnnprof.trace.engine import meta_stand_ins, preserved_state
from cnnprof.trace.structure import shapes_and_dtypes

Shape = tuple[int, ...]
#: Sizes people use; probed first by scans and hints (after the sizes nearest the user's).
COMMON_SIZES = (28, 32, 64, 96, 112, 128, 160, 192, 224, 227, 256, 299, 320, 384, 448, 512)


@dataclass(frozen=True)
class Outcome:
    specs: tuple[InputSpec, ...]
    ok: bool
    output_shapes: tuple[Shape, ...] = ()
    error: str = ""


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


class Prober:
    """Runs ``model`` on meta example inputs; use as a context manager around the probes.

    ``arguments`` turns example tensors into the model's call arguments (a zoo entry's
    input form); by default ``model(*tensors)``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        batch: int = 1,
        train: bool = False,
        arguments: Callable[[list[torch.Tensor]], tuple[tuple[Any, ...], dict[str, Any]]]
        | None = None,
    ) -> None:
        self.model = model
        self.batch = batch
        self.train = train
        self.arguments = arguments or (lambda tensors: (tuple(tensors), {}))
        self.runs = 0
        self.printed = Captured()
        self._stand_ins: dict[str, torch.Tensor] | None = None
        self._stack: contextlib.ExitStack | None = None

    def __enter__(self) -> Prober:
        on_meta = all(t.device.type == "meta" for t in _tensors_of(self.model))
        # a model on a real device is never moved: meta stand-ins are swapped in per call
        self._stand_ins = None if on_meta else meta_stand_ins(self.model)
        stack = contextlib.ExitStack()
        stack.enter_context(seeded_rng())  # holds the process lock too (cnnprof.guard)
        stack.enter_context(preserved_state(self.model, train=self.train))
        stack.enter_context(contextlib.redirect_stdout(self.printed))
        stack.enter_context(torch.no_grad())
        self._stack = stack
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stack is not None
        self._stack.close()
        self._stack = None

    def __call__(self, specs: Sequence[InputSpec]) -> Outcome:
        assert self._stack is not None, "use the Prober as a context manager"
        self.runs += 1
        specs = tuple(specs)
        try:
            positional, named = bind(list(specs), make_tensors(list(specs), self.batch, "meta"))
            args, kwargs = self.arguments(list(positional))
            kwargs = {**kwargs, **named}
            with user_code("the model's forward"):
                if self._stand_ins is None:
                    out = self.model(*args, **kwargs)
                else:
                    out = torch.func.functional_call(self.model, self._stand_ins, args, kwargs,
                                                     strict=False, tie_weights=True)
        except UserCodeExit:
            raise  # the model exits whatever its input: no size is an answer
        except Exception as exc:  # a rejected input is the answer, not a failure
            return Outcome(specs, False, error=first_line(exc))
        return Outcome(specs, True, shapes_and_dtypes(out)[0])


def _tensors_of(model: torch.nn.Module) -> Iterator[torch.Tensor]:
    yield from model.parameters()
    yield from model.buffers()


def varied_dims(spec: InputSpec) -> tuple[int, ...]:
    """Which dimensions a size search varies: all but the first (channels) of ``CxHxW``,
    ``CxL``, ``CxDxHxW``; the only one of a rank-1 spec (a sequence length)."""
    return (0,) if len(spec.shape) == 1 else tuple(range(1, len(spec.shape)))


def with_size(spec: InputSpec, size: int) -> InputSpec:
    shape = list(spec.shape)
    for dim in varied_dims(spec):
        shape[dim] = size
    return replace(spec, shape=tuple(shape))


def size_of(spec: InputSpec) -> int:
    return spec.shape[varied_dims(spec)[0]] if spec.shape else 1


# -- scan: which sizes in a range run -------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """Consecutive sizes with one verdict (``ok`` None: a gap the budget left unprobed);
    ``first`` and ``last`` are the outcomes at its probed ends."""

    lo: int
    hi: int
    ok: bool | None
    first: Outcome | None = None
    last: Outcome | None = None


@dataclass
class Scan:
    spec: InputSpec
    lo: int
    hi: int
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    complete: bool = True  # False: the time budget ran out before every probe ran

    @property
    def runs(self) -> int:
        return len(self.outcomes)

    @property
    def exhaustive(self) -> bool:
        return self.runs == self.hi - self.lo + 1

    def segments(self) -> list[Segment]:
        """Probed sizes grouped by verdict; sizes between two probes that agree take their
        verdict, a change of verdict that was not bisected leaves an explicit gap."""
        out: list[Segment] = []
        for size in sorted(self.outcomes):
            outcome = self.outcomes[size]
            if out and out[-1].ok == outcome.ok:
                out[-1] = replace(out[-1], hi=size, last=outcome)
                continue
            if out and size > out[-1].hi + 1:
                out.append(Segment(out[-1].hi + 1, size - 1, None))
            out.append(Segment(size, size, outcome.ok, outcome, outcome))
        return out

    def accepted(self) -> list[tuple[int, int]]:
        return [(s.lo, s.hi) for s in self.segments() if s.ok]

    def smallest(self) -> Outcome | None:
        for size in sorted(self.outcomes):
            if self.outcomes[size].ok:
                return self.outcomes[size]
        return None


def scan_sizes(
    prober: Prober,
    specs: Sequence[InputSpec],
    lo: int = 1,
    hi: int = 512,
    *,
    exhaustive: bool = False,
    samples: int = 48,
    budget_s: float = 60.0,
) -> Scan:
    """Probe the first input at spatial sizes ``lo..hi`` (others unchanged).

    Not exhaustive: about ``samples`` evenly spread sizes plus the common ones, then every
    accept/reject boundary between neighbouring probes is bisected to the exact size.
    """
    specs = list(specs)
    scan = Scan(specs[0], lo, hi)
    deadline = time.perf_counter() + budget_s

    def probe(size: int) -> bool | None:
        if size in scan.outcomes:
            return scan.outcomes[size].ok
        if time.perf_counter() > deadline:
            scan.complete = False
            return None
        scan.outcomes[size] = prober([with_size(specs[0], size), *specs[1:]])
        return scan.outcomes[size].ok

    if exhaustive:
        grid = list(range(lo, hi + 1))
    else:
        step = max(1, math.ceil((hi - lo + 1) / samples))
        grid = sorted({*range(lo, hi + 1, step), hi, size_of(specs[0]),
                       *(s for s in COMMON_SIZES if lo <= s <= hi)})
        grid = [s for s in grid if lo <= s <= hi]
    for size in grid:
        if probe(size) is None:
            return scan
    if exhaustive:
        return scan
    for a, b in itertools.pairwise(grid):
        if scan.outcomes[a].ok == scan.outcomes[b].ok:
            continue
        left, right = a, b
        while right - left > 1:  # one boundary assumed between neighbouring probes
            middle = (left + right) // 2
            verdict = probe(middle)
            if verdict is None:
                return scan
            if verdict == scan.outcomes[left].ok:
                left = middle
            else:
                right = middle
    return scan


# -- suggest: the nearest input that runs, for a failure's hint ---------------------------


@dataclass(frozen=True)
class Suggestion:
    specs: tuple[InputSpec, ...]
    output_shapes: tuple[Shape, ...]
    #: what changed: "size", "channels", "dtype", "rank"
    change: str
    runs: int


_DTYPE_WORDS = ("long", "int", "integer", "indices", "dtype", "scalar type", "float")


def _first_module_with(model: torch.nn.Module, attribute: str) -> int | None:
    for module in model.modules():
        value = getattr(module, attribute, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _bases(model: torch.nn.Module, spec: InputSpec, error: str) -> list[tuple[str, InputSpec]]:
    """The user's spec and structural fixes of it (channels, features, dtype)."""
    bases: list[tuple[str, InputSpec]] = [("size", spec)]
    shape = spec.shape
    channels = _first_module_with(model, "in_channels")
    features = _first_module_with(model, "in_features")
    if len(shape) >= 2 and channels is not None and shape[0] != channels:
        bases.append(("channels", replace(spec, shape=(channels, *shape[1:]))))
    elif len(shape) == 1 and channels is None and features is not None and shape[0] != features:
        bases.append(("features", replace(spec, shape=(features,))))
    text = error.lower()
    if any(word in text for word in _DTYPE_WORDS):
        floating = spec.dtype.startswith(("float", "bfloat"))
        # a float input of another precision than the weights wants the weights' dtype;
        # anything else flips between float and integer indices
        own = next((str(p.dtype).removeprefix("torch.") for p in model.parameters()
                    if p.is_floating_point()), "float32")
        other = own if floating and spec.dtype != own else ("int64" if floating else own)
        bases.extend((f"{kind}+dtype" if kind != "size" else "dtype", replace(s, dtype=other))
                     for kind, s in list(bases))
    return bases


def _candidates(model: torch.nn.Module, spec: InputSpec,
                error: str) -> Iterator[tuple[str, InputSpec]]:
    bases = _bases(model, spec, error)
    for kind, base in bases[1:]:
        yield kind, base
    size = size_of(spec)
    if len(spec.shape) >= 2:  # one spatial dimension more or fewer (3x224 → 3x224x224)
        yield "rank", replace(spec, shape=(*spec.shape, spec.shape[-1]))
        if len(spec.shape) >= 3:
            yield "rank", replace(spec, shape=spec.shape[:-1])
    for distance in range(1, 17):
        for kind, base in bases:
            for candidate in (size - distance, size + distance):
                if candidate >= 1:
                    yield kind if kind == "size" else f"{kind}+size", with_size(base, candidate)
    for common in sorted(COMMON_SIZES, key=lambda s: (abs(s - size), s)):
        if abs(common - size) > 16:
            for kind, base in bases:
                yield kind if kind == "size" else f"{kind}+size", with_size(base, common)


def suggest(
    prober: Prober,
    specs: Sequence[InputSpec],
    error: str,
    *,
    budget_s: float = 3.0,
    max_runs: int = 120,
) -> Suggestion | None:
    """The input nearest to ``specs`` (first input varied) that runs, within a budget."""
    specs = list(specs)
    if not specs:
        return None
    deadline = time.perf_counter() + budget_s
    seen: set[InputSpec] = {specs[0]}
    runs = 0
    for kind, candidate in _candidates(prober.model, specs[0], error):
        if candidate in seen:
            continue
        seen.add(candidate)
        if runs >= max_runs or time.perf_counter() > deadline:
            return None
        runs += 1
        outcome = prober([candidate, *specs[1:]])
        if outcome.ok:
            return Suggestion((candidate, *specs[1:]), outcome.output_shapes, kind, runs)
    return None


# -- the `cnnprof inputs` command's library side -------------------------------------------


def scan_model(
    spec: str,
    specs: Sequence[InputSpec] | None,
    *,
    batch: int = 1,
    dtype: str | None = None,
    model_args: dict[str, Any] | None = None,
    mode: str = "eval",
    lo: int = 1,
    hi: int = 512,
    exhaustive: bool = False,
    budget_s: float = 60.0,
) -> tuple[Scan, str]:
    """Build ``spec`` on meta and scan the first input's spatial sizes; returns the scan and
    the model's class name."""
    from cnnprof.errors import InputSpecError, UsageError
    from cnnprof.inputs import FLOAT_DTYPES, parse_dtype, torch_dtype, with_dtype
    from cnnprof.zoo import resolve

    if mode not in ("eval", "train"):
        raise UsageError(f"--mode must be eval or train, got {mode!r}")
    if lo < 1 or hi < lo:
        raise UsageError(f"size range {lo}..{hi} is empty", hint="use 1 <= --min <= --max")
    float_dtype = parse_dtype(dtype) if dtype else None
    if float_dtype is not None and float_dtype not in FLOAT_DTYPES:
        raise InputSpecError(f"--dtype must be a floating type, got {float_dtype}")
    entry = resolve(spec, model_args)
    chosen = list(specs or entry.default_inputs)
    if not chosen:
        raise InputSpecError("no input shape given and the model has no default",
                             hint="pass --input, e.g. --input 3x224x224")
    chosen = with_dtype(chosen, float_dtype)
    with contextlib.redirect_stdout(io.StringIO()):  # constructors print, too
        model, _notes = entry.build("meta")
    if float_dtype is not None:
        model = model.to(torch_dtype(float_dtype))
    with Prober(model, batch=batch, train=mode == "train", arguments=entry.arguments) as prober:
        scan = scan_sizes(prober, chosen, lo, hi, exhaustive=exhaustive, budget_s=budget_s)
    return scan, type(model).__name__
