"""Peak memory of one steady-state training step, simulated on fake tensors (no memory).

The step is the loop body people write::

    output = model(batch)                   # forward with autograd (under autocast with amp)
    loss = output.sum()                     # every floating-point output, summed
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)   # output and loss stay alive until here

run on ``FakeTensorMode`` CPU tensors: shapes, dtypes and storages behave as on a device, no
arithmetic is done and nothing is allocated. Fake tensors, not plain meta tensors, because
``torch.autocast`` acts only on tensors of a device that has an autocast dispatch key; fake
CPU tensors have it, so ``amp`` runs PyTorch's own autocast (its CPU op lists) and the casts
it saves for backward are real storages here as on a GPU.

"Steady state": the optimizer state exists already (as from the second step on) and no
gradient exists before the step (``zero_grad(set_to_none=True)`` after the previous one).

A ledger follows every tensor *storage* (views share one) from the op that creates it to
the moment it is freed (a weak reference to the storage, whose Python object lives exactly
as long as the storage does), sorted into the parts of ``CATEGORIES``. The optimizer's own
state and temporaries come from running the real ``torch.optim`` class on meta tensors
(:func:`optimizer_cost`), since optimizers read their step counter with ``.item()``, which
fake tensors cannot answer.
"""

from __future__ import annotations

import bisect
import contextlib
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from cnnprof.report import MEMORY_PARTS
from cnnprof.trace.structure import iter_tensors

if TYPE_CHECKING:
    from cnnprof.report import LayerRecord, TrainingMemory

CATEGORIES = MEMORY_PARTS

#: ``--optimizer`` name → (torch.optim class, keyword arguments). Hyper-parameters that do
#: not change memory keep torch's defaults; the ones that do are part of the name.
OPTIMIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    "sgd": ("SGD", {"lr": 0.01}),
    "sgd-momentum": ("SGD", {"lr": 0.01, "momentum": 0.9}),
    "adam": ("Adam", {}),
    "adamw": ("AdamW", {}),
    "adam-amsgrad": ("Adam", {"amsgrad": True}),
    "adamax": ("Adamax", {}),
    "nadam": ("NAdam", {}),
    "radam": ("RAdam", {}),
    "rmsprop": ("RMSprop", {}),
    "adagrad": ("Adagrad", {}),
    "adadelta": ("Adadelta", {}),
}

#: ``--amp`` name → autocast dtype.
AMP_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_optimizer(name: str) -> str:
    key = name.strip().lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r} (use {', '.join(OPTIMIZERS)})")
    return key


def check_amp(name: str | None) -> str | None:
    if name is None:
        return None
    key = name.strip().lower().replace("bfloat16", "bf16").replace("float16", "fp16")
    if key in ("", "none", "off", "fp32"):
        return None
    if key not in AMP_DTYPES:
        raise ValueError(f"unknown --amp {name!r} (use bf16 or fp16)")
    return key


# --------------------------------------------------------------------------------------------
# the ledger of live storages


def _storage(t: torch.Tensor) -> Any:
    try:
        return t.untyped_storage()
    except (RuntimeError, NotImplementedError, TypeError):
        return None  # sparse, nested and other storage-less tensors are not followed


class Ledger:
    """Live storage bytes by part; the peak and what was live at it."""

    def __init__(self, where: Callable[[], str]) -> None:
        self._live: dict[int, list[Any]] = {}  # storage address → [bytes, part, weakref]
        self.totals: dict[str, int] = dict.fromkeys(CATEGORIES, 0)
        self.total = 0
        self.peak = 0
        self.peak_parts: dict[str, int] = dict(self.totals)
        self.peak_where = ""
        self._where = where
        #: live bytes after each op (the memory-over-time curve) and the phase it ran in
        self.samples: list[int] = []
        self.phase_starts: dict[str, int] = {}

    def add(self, t: torch.Tensor, part: str) -> int:
        """Follow ``t``'s storage (once); returns the bytes it newly added."""
        st = _storage(t)
        if st is None:
            return 0
        key = st._cdata
        entry = self._live.get(key)
        if entry is not None:
            return 0
        nbytes = int(st.nbytes())
        if nbytes == 0:
            return 0
        ref = weakref.ref(st, partial(self._freed, key))
        self._live[key] = [nbytes, part, ref]
        self._change(part, nbytes)
        return nbytes

    def move(self, t: torch.Tensor, part: str, *, only_from: str | None = None) -> int:
        """Re-file ``t``'s storage under ``part`` (following it first if it is new); returns
        the bytes moved (0 when it already was there, or not in ``only_from``)."""
        st = _storage(t)
        if st is None:
            return 0
        entry = self._live.get(st._cdata)
        if entry is None:
            return self.add(t, part)
        if entry[1] == part or (only_from is not None and entry[1] != only_from):
            return 0
        self.totals[entry[1]] -= entry[0]
        self.totals[part] += entry[0]
        entry[1] = part
        return int(entry[0])

    def constant(self, part: str, nbytes: int) -> None:
        """Bytes that are live without a tensor here (the optimizer's state)."""
        self._change(part, nbytes)

    def transient(self, part: str, nbytes: int) -> None:
        """Bytes live for a moment only (the optimizer step's temporaries)."""
        self._change(part, nbytes)
        self._change(part, -nbytes)

    def sample(self) -> None:
        self.samples.append(self.total)

    def phase(self, name: str) -> None:
        self.phase_starts[name] = len(self.samples)

    def _freed(self, key: int, ref: Any) -> None:
        entry = self._live.get(key)
        if entry is not None and entry[2] is ref:
            del self._live[key]
            self._change(entry[1], -entry[0])

    def _change(self, part: str, nbytes: int) -> None:
        self.totals[part] += nbytes
        self.total += nbytes
        if self.total > self.peak:
            self.peak = self.total
            self.peak_parts = dict(self.totals)
            self.peak_where = self._where()


class _Allocations(TorchDispatchMode):
    """Files every op's outputs in the ledger (as temporaries until something claims them)."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        if func is _DEVICE:
            # the autograd engine asks every fake tensor its device, most ops of a backward;
            # answered here without a round trip through the fake mode
            device = getattr(args[0], "fake_device", None)
            return device if device is not None else func(*args, **(kwargs or {}))
        out = func(*args, **(kwargs or {}))
        for t in iter_tensors(out):
            self.ledger.add(t, "temporaries")
        self.ledger.sample()
        return out


_DEVICE = torch.ops.prim.device.default


# --------------------------------------------------------------------------------------------
# where the step is: module names in forward, and in backward through autograd's node numbers


class _Whereabouts:
    """The running module in forward, and the module whose forward created the autograd node
    running in backward (nodes are numbered in creation order: ``_get_sequence_nr`` at every
    module boundary splits the numbers between modules)."""

    def __init__(self) -> None:
        self.phase = "setup"
        self.stack: list[str] = []
        #: direct child calls returned so far in each running call (the gap a parent's own
        #: ops run in: ``LayerRecord.attributes["segment"]`` of its "ops" rows)
        self.returned: list[int] = []
        self.bounds: list[int] = []  # sequence numbers where the running module changed
        self.owners: list[str] = []  # the module running from that number on
        self._seq: Callable[[], int] | None = getattr(torch._C._autograd, "_get_sequence_nr",
                                                      None)
        self._node: Callable[[], Any] | None = getattr(torch._C, "_current_autograd_node",
                                                       None)
        self.recomputing = False

    def enter(self, name: str) -> None:
        self.stack.append(name)
        self.returned.append(0)
        self._mark()

    def leave(self) -> None:
        if self.stack:
            self.stack.pop()
            self.returned.pop()
            if self.returned:
                self.returned[-1] += 1
        self._mark()

    def gap(self) -> tuple[str, int]:
        """(running module, how many of its direct child calls have returned)."""
        return (self.stack[-1], self.returned[-1]) if self.stack else ("", 0)

    def _mark(self) -> None:
        # forward, and a checkpointed module recomputing its forward in backward (its new
        # nodes number after all of the forward's, so the bounds stay sorted)
        if self._seq is not None and (self.phase == "forward"
                                      or (self.phase == "backward" and self.stack)):
            self.bounds.append(self._seq())
            self.owners.append(self.stack[-1] if self.stack else "")

    def module_of_running_node(self) -> str | None:
        if self._node is None:
            return None
        node = self._node()
        if node is None or not hasattr(node, "_sequence_nr"):
            return None
        index = bisect.bisect_right(self.bounds, node._sequence_nr()) - 1
        return self.owners[index] if index >= 0 else None

    def describe(self) -> str:
        if self.phase == "forward":
            return f"forward {self.stack[-1]}" if self.stack and self.stack[-1] else "forward"
        if self.phase == "backward":
            if self.stack:  # a checkpointed region recomputing its forward
                return f"backward {self.stack[-1]} (recomputing its forward)"
            name = self.module_of_running_node()
            return f"backward {name}" if name else "backward"
        return self.phase


# --------------------------------------------------------------------------------------------
# the optimizer, measured on meta tensors


@dataclass(frozen=True)
class OptimizerCost:
    #: bytes of the state tensors that live on the parameters' device (step counters that
    #: torch keeps on the host are left out)
    state_bytes: int
    #: the most bytes ``step()`` holds beyond state, parameters and gradients at any moment
    step_bytes: int


def optimizer_cost(params: list[tuple[torch.Size, torch.dtype]], name: str,
                   *, foreach: bool = True) -> OptimizerCost:
    """Run ``torch.optim`` itself on meta tensors shaped like ``params``: a first step makes
    the state, the second (steady) step is measured. ``foreach``: the multi-tensor
    implementation PyTorch picks by default on CUDA."""
    cls_name, kwargs = OPTIMIZERS[name]
    if not params:
        return OptimizerCost(0, 0)
    tensors = [torch.empty(shape, dtype=dtype, device="meta", requires_grad=True)
               for shape, dtype in params]
    for t in tensors:
        t.grad = torch.empty_like(t)
    cls = getattr(torch.optim, cls_name)
    options = dict(kwargs)
    options["foreach"] = foreach
    opt = cls(tensors, **options)
    with torch.no_grad():
        opt.step()  # the state appears (as after the first training step)
        state_bytes = 0
        seen: set[int] = set()
        for state in opt.state.values():
            for value in state.values():
                if isinstance(value, torch.Tensor) and value.is_meta:
                    st = value.untyped_storage()
                    if st._cdata not in seen:
                        seen.add(st._cdata)
                        state_bytes += int(st.nbytes())
        ledger = Ledger(lambda: "optimizer step")
        with _MetaOnly(ledger):
            opt.step()
    return OptimizerCost(state_bytes, ledger.peak)


class _MetaOnly(_Allocations):
    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in iter_tensors(out):
            if t.is_meta:
                self.ledger.add(t, "temporaries")
        return out


# --------------------------------------------------------------------------------------------
# one simulated step


@dataclass
class StepResult:
    peak_bytes: int
    peak_where: str
    peak_parts: dict[str, int]
    #: bytes live before the step (parameters, buffers, optimizer state, input batch)
    start_bytes: int
    #: bytes live after zero_grad (equal to start_bytes unless the model keeps tensors)
    end_bytes: int
    param_bytes: int
    buffer_bytes: int
    gradient_bytes: int
    optimizer_state_bytes: int
    input_bytes: int
    saved_bytes: int
    #: (module name, gap) → bytes its own ops kept for backward (``_Whereabouts.gap``)
    saved_by_module: dict[tuple[str, int], int] = field(default_factory=dict)
    samples: list[int] = field(default_factory=list)
    phase_starts: dict[str, int] = field(default_factory=dict)
    error: BaseException | None = None
    #: False when no output required grad (nothing to differentiate)
    backward: bool = True


def fake_mode() -> Any:
    from torch._subclasses.fake_tensor import FakeTensorMode

    # allow_non_fake_inputs: a model's plain tensor attributes (not buffers) may be real
    return FakeTensorMode(allow_non_fake_inputs=True)


def fake_like(t: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A fake CPU tensor of ``t``'s shape (call inside the fake mode)."""
    cast = dtype if dtype is not None and t.is_floating_point() else t.dtype
    return torch.empty(t.shape, dtype=cast, device="cpu")


def simulate_step(
    model: torch.nn.Module,
    call: Callable[[list[torch.Tensor]], Any],
    inputs: Callable[[], list[torch.Tensor]],
    *,
    optimizer: OptimizerCost,
    amp: str | None = None,
    dtype: torch.dtype | None = None,
) -> StepResult:
    """One steady-state step of ``model``; ``call(tensors)`` runs its forward on ``tensors``
    (from ``inputs()``, made inside the fake mode) while fake stand-ins replace its
    parameters and buffers, from forward to the end of backward (a checkpointed module runs
    its forward again there). The model is left as found."""
    from cnnprof.trace.engine import preserved_state
    from cnnprof.trace.stand_ins import swapped

    where = _Whereabouts()
    ledger = Ledger(where.describe)
    saved_by_module: dict[tuple[str, int], int] = {}
    names = {id(m): n for n, m in model.named_modules()}
    handles: list[Any] = []
    error: BaseException | None = None
    output: Any = None
    loss: Any = None
    grads = 0
    backward = False
    params: list[torch.Tensor] = []
    stand_ins: dict[str, torch.Tensor] = {}

    def pre(module: torch.nn.Module, _args: Any) -> None:
        where.enter(names.get(id(module), ""))

    def post(module: torch.nn.Module, _args: Any, _out: Any) -> None:
        where.leave()

    def pack(t: torch.Tensor) -> torch.Tensor:
        moved = ledger.move(t, "saved_activations", only_from="temporaries")
        if moved and where.phase == "forward":
            key = where.gap()
            saved_by_module[key] = saved_by_module.get(key, 0) + moved
        # a detached alias (same storage): returning ``t`` itself would make a tensor its
        # own node saves a reference cycle, freed only by the garbage collector, later
        # than without the hook
        return t.detach()

    def grad_ready(p: torch.Tensor) -> None:
        if p.grad is not None:
            ledger.move(p.grad, "gradients")

    with fake_mode(), contextlib.ExitStack() as stack:
        by_id: dict[int, torch.Tensor] = {}
        for name, p in model.named_parameters(remove_duplicate=False):
            new = by_id.get(id(p))
            if new is None:
                new = fake_like(p, dtype)
                if new.is_floating_point() and p.requires_grad:
                    new.requires_grad_(True)
                    params.append(new)
                    handles.append(new.register_post_accumulate_grad_hook(grad_ready))
                ledger.add(new, "parameters")
                by_id[id(p)] = new
            stand_ins[name] = new
        for name, b in model.named_buffers(remove_duplicate=False):
            new = by_id.get(id(b))
            if new is None:
                new = fake_like(b, dtype)
                ledger.add(new, "buffers")
                by_id[id(b)] = new
            stand_ins[name] = new
        del by_id
        ledger.constant("optimizer_state", optimizer.state_bytes)
        tensors = inputs()
        for t in tensors:
            ledger.add(t, "input")
        start = ledger.total
        for module in model.modules():
            handles.append(module.register_forward_pre_hook(pre))
            handles.append(module.register_forward_hook(post, always_call=True))
        try:
            stack.enter_context(preserved_state(model, train=True))
            stack.enter_context(swapped(model, stand_ins))
            stack.enter_context(torch.enable_grad())
            stack.enter_context(_Allocations(ledger))
            where.phase = "forward"
            ledger.phase("forward")
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), \
                    _autocast(amp):
                output = call(tensors)
                where.phase = "loss"
                ledger.phase("loss")
                loss = _loss(output)
            where.phase = "backward"
            where.stack.clear()
            where.returned.clear()
            ledger.phase("backward")
            if loss is not None:
                loss.backward()
                backward = True
            grads = _unique_bytes(p.grad for p in params if p.grad is not None)
            where.phase = "optimizer step"
            ledger.phase("optimizer step")
            ledger.transient("temporaries", optimizer.step_bytes)
            ledger.sample()
            where.phase = "zero_grad"
            ledger.phase("zero_grad")
            for leaf in params:
                leaf.grad = None
            ledger.sample()
        except Exception as exc:  # the model's failure is data for the caller
            error = exc
        finally:
            for handle in handles:
                handle.remove()
        output = loss = None
        ledger.sample()
        end = ledger.total
    del stand_ins, params
    totals = ledger.peak_parts
    return StepResult(
        peak_bytes=ledger.peak, peak_where=ledger.peak_where, peak_parts=dict(totals),
        start_bytes=start, end_bytes=end,
        param_bytes=totals["parameters"], buffer_bytes=totals["buffers"],
        gradient_bytes=grads, optimizer_state_bytes=optimizer.state_bytes,
        input_bytes=totals["input"], saved_bytes=sum(saved_by_module.values()),
        saved_by_module=saved_by_module, samples=ledger.samples,
        phase_starts=ledger.phase_starts, error=error, backward=backward,
    )


def _unique_bytes(tensors: Any) -> int:
    seen: dict[int, int] = {}
    for t in tensors:
        st = _storage(t)
        if st is not None:
            seen[st._cdata] = int(st.nbytes())
    return sum(seen.values())


@contextlib.contextmanager
def _autocast(amp: str | None) -> Iterator[None]:
    if amp is None:
        yield
        return
    with torch.autocast("cpu", dtype=AMP_DTYPES[amp]):
        yield


def _loss(output: Any) -> torch.Tensor | None:
    """``output.sum()``, over every floating-point output that requires grad."""
    total: torch.Tensor | None = None
    for t in iter_tensors(output):
        if t.is_floating_point() and t.requires_grad:
            part = t.sum()
            total = part if total is None else total + part
    return total


# --------------------------------------------------------------------------------------------
# the whole measurement: one step at ``batch``, and the batch search for ``fit_bytes``

#: points kept of the memory-over-time curve
TIMELINE_POINTS = 300
#: the largest batch ``--fit`` considers
MAX_FIT_BATCH = 1 << 24


class StepFailed(Exception):
    """The simulated step raised; ``cause`` is the model's (or torch's) exception."""

    def __init__(self, cause: BaseException, batch: int) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause
        self.batch = batch


def measure(
    model: torch.nn.Module,
    call: Callable[[list[torch.Tensor]], Any],
    make_inputs: Callable[[int], list[torch.Tensor]],
    *,
    batch: int,
    optimizer: str = "adamw",
    amp: str | None = None,
    dtype: torch.dtype | None = None,
    fit_bytes: int | None = None,
) -> tuple[TrainingMemory, dict[tuple[str, int], int]]:
    """Training memory of ``model`` at ``batch`` (and the largest batch under ``fit_bytes``).

    ``make_inputs(b)`` builds the inputs at batch ``b`` (called inside the fake mode). Returns
    the report object and the bytes each module's own ops saved (``attach_saved``). Raises
    ``StepFailed`` when the step cannot run.
    """
    from cnnprof.report import TrainingMemory

    optimizer = check_optimizer(optimizer)
    amp = check_amp(amp)
    trainable = [(p.shape, dtype if dtype is not None and p.is_floating_point() else p.dtype)
                 for p in model.parameters() if p.requires_grad and p.is_floating_point()]
    cost = optimizer_cost(trainable, optimizer)

    def step(b: int) -> StepResult:
        result = simulate_step(model, call, lambda: make_inputs(b), optimizer=cost, amp=amp,
                               dtype=dtype)
        if result.error is not None:
            raise StepFailed(result.error, b)
        return result

    result = step(batch)
    notes: list[str] = []
    if not trainable:
        notes.append("no parameter requires grad: no gradients and no optimizer state")
    elif not result.backward:
        notes.append("no floating-point output requires grad: the step has no backward")
    if result.end_bytes != result.start_bytes:
        notes.append(f"{result.end_bytes - result.start_bytes} bytes more are live after the "
                     "step than before it (the model keeps tensors between steps)")
    max_batch: int | None = None
    max_peak: int | None = None
    if fit_bytes is not None:
        peaks = {batch: result.peak_bytes}

        def peak(b: int) -> int:
            if b not in peaks:
                peaks[b] = step(b).peak_bytes
            return peaks[b]

        max_batch = largest_fitting(peak, fit_bytes, hint=batch)
        max_peak = peaks[max_batch] if max_batch else None
        if max_batch == MAX_FIT_BATCH:
            notes.append(f"the peak grows too slowly with the batch: --fit stops at {max_batch}")
    timeline, phases = _downsample(result.samples, result.phase_starts)
    memory = TrainingMemory(
        optimizer=optimizer, amp=amp, batch=batch,
        peak_bytes=result.peak_bytes, peak_at=result.peak_where,
        peak_parts={k: result.peak_parts.get(k, 0) for k in CATEGORIES},
        param_bytes=result.param_bytes, buffer_bytes=result.buffer_bytes,
        gradient_bytes=result.gradient_bytes,
        optimizer_state_bytes=result.optimizer_state_bytes, input_bytes=result.input_bytes,
        saved_bytes=result.saved_bytes, start_bytes=result.start_bytes,
        end_bytes=result.end_bytes, timeline_bytes=timeline, phases=phases,
        fit_bytes=fit_bytes, max_batch=max_batch, max_batch_peak_bytes=max_peak,
        notes=tuple(notes),
    )
    return memory, result.saved_by_module


def largest_fitting(peak: Callable[[int], int], budget: int, *, hint: int = 1) -> int:
    """The largest batch ``b`` with ``peak(b) <= budget`` (0 when not even 1 fits), for a
    ``peak`` that grows with the batch. Interpolates between the nearest batches known to
    fit and not to fit (the peak is close to affine in the batch), so a handful of steps
    settle it."""
    if peak(1) > budget:
        return 0
    lo, hi = 1, None  # peak(lo) fits; peak(hi) does not
    probe = max(2, hint)
    turn = 0
    while hi is None or hi - lo > 1:
        probe = min(max(probe, lo + 1), MAX_FIT_BATCH if hi is None else hi - 1)
        if peak(probe) <= budget:
            lo = probe
            if lo >= MAX_FIT_BATCH:
                return MAX_FIT_BATCH
        else:
            hi = probe
        turn += 1
        if hi is None and turn > 3:
            probe = lo * 2  # the line keeps falling short: double until past the budget
            continue
        if hi is not None and turn % 2 == 0:
            probe = (lo + hi) // 2  # every other probe halves: a bent curve still converges
            continue
        # where the line through the nearest known points meets the budget
        a, b = (lo, hi) if hi is not None else (1, lo)
        slope = (peak(b) - peak(a)) / (b - a) if b > a else 0.0
        probe = lo * 2 if slope <= 0 else lo + int((budget - peak(lo)) // slope)
        if hi is not None and probe >= hi - 1 and hi - lo > 2:
            probe = hi - 1  # the line says just below hi: check that neighbour
    return lo


def _downsample(samples: list[int], starts: dict[str, int]) -> tuple[tuple[int, ...],
                                                                     dict[str, int]]:
    """At most ``TIMELINE_POINTS`` points, each the largest of its stretch (the peak stays)."""
    if not samples:
        return (), {}
    size = -(-len(samples) // TIMELINE_POINTS)
    points = tuple(max(samples[i:i + size]) for i in range(0, len(samples), size))
    return points, {name: min(start // size, len(points) - 1) for name, start in starts.items()}


def attach_saved(records: tuple[LayerRecord, ...],
                 saved: dict[tuple[str, int], int]) -> tuple[LayerRecord, ...]:
    """Each row's ``saved_bytes``: what its forward (children included) kept for backward.
    A parent's own ops go to its "ops" row of the same gap."""
    from dataclasses import replace

    by_module: dict[str, int] = {}
    for (name, _gap), nbytes in saved.items():
        by_module[name] = by_module.get(name, 0) + nbytes
    out = []
    for rec in records:
        if rec.kind == "ops":
            key = (str(rec.attributes.get("parent", "")), int(rec.attributes.get("segment", -1)))
            value = saved.get(key, 0)
        else:
            prefix = rec.name + "."
            value = sum(v for n, v in by_module.items()
                        if n == rec.name or not rec.name or n.startswith(prefix))
        out.append(replace(rec, saved_bytes=value))
    return tuple(out)
