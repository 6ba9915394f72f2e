"""The observers of a trace.

``ModuleObserver`` keeps the stack of running modules (each module's ``forward`` wrapped for
the run, or a pre/post hook pair on a module with hooks of its own); ``OpObserver`` (a
``TorchDispatchMode``) costs every aten op and charges it to the module on top of that
stack; ``FusedFunctionObserver`` (a ``TorchFunctionMode``) costs fused functions (attention,
recurrent layers) where they are called, so the kernel a backend picks (a fused CPU kernel,
cuDNN, or the decomposition the meta device runs) cannot change the count.
"""

from __future__ import annotations

import sys
import weakref
from dataclasses import dataclass
from types import CodeType
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.hooks import RemovableHandle

from cnnprof.counting import REGISTRY, FormulaRegistry, OpKind, OpTrait
from cnnprof.counting import formulas as _formulas  # noqa: F401  (registers the built-ins)
from cnnprof.counting import vision_ops as _vision_ops  # noqa: F401
from cnnprof.report import Cost
from cnnprof.trace import leaf_memo
from cnnprof.trace.leaf_memo import LeafCall, LeafPlan
from cnnprof.trace.meta_cache import MAX_ENTRIES, rebuilt, run_op_keyed
from cnnprof.trace.structure import (
    call_shapes,
    iter_tensors,
    shapes_and_dtypes,
    tensor_bytes,
    walk_modules,
)


@dataclass(frozen=True, slots=True)
class OpCharge:
    """What one op call adds to the module, or the gap of a parent's own ops, it runs in.

    Worked out once per op-call key (shapes, strides, dtypes, arguments: everything a formula
    reads) and registry version, and memoised: every later call with the same key adds the
    same record. A slots dataclass: reading five fields off it per op costs less than
    unpacking a NamedTuple (a tuple subclass misses CPython's fast path), measured in
    docs/performance.md."""

    macs: int = 0
    flops: int = 0
    #: bytes of newly produced tensors (in-place ops and views produce none)
    act: int = 0
    read: int = 0
    write: int = 0
    #: the op's name when it has no formula (or ``"NAME (formula failed)"``), else None
    unsupported: str | None = None


#: views: nothing at all (compared by identity)
FREE = OpCharge()


class Tally:
    """Running sums of op charges, in ``Cost``'s order: MACs, FLOPs, activation, read and
    write bytes."""

    __slots__ = ("act", "flops", "macs", "read", "write")

    def __init__(self) -> None:
        self.macs = 0
        self.flops = 0
        self.act = 0
        self.read = 0
        self.write = 0

    def add(self, charge: OpCharge) -> None:
        self.macs += charge.macs
        self.flops += charge.flops
        self.act += charge.act
        self.read += charge.read
        self.write += charge.write

    def cost(self) -> Cost:
        if not (self.macs or self.flops or self.act or self.read or self.write):
            return _ZERO  # a parent's own cost, mostly: Cost is frozen, one serves all
        return Cost(self.macs, self.flops, self.act, self.read, self.write)


_ZERO = Cost()


class Charged(Tally):
    """What the op observers charge ops to: a module's own costs (``Node``) or one gap of a
    parent's own ops (``Stretch``)."""

    __slots__ = ("bwd", "unsupported")

    def __init__(self) -> None:
        super().__init__()
        #: op name → calls without a formula
        self.unsupported: dict[str, int] = {}
        #: backward self cost; None without --backward
        self.bwd: Tally | None = None

    def charge(self, charge: OpCharge) -> None:
        self.macs += charge.macs
        self.flops += charge.flops
        self.act += charge.act
        self.read += charge.read
        self.write += charge.write
        missing = charge.unsupported
        if missing is not None:
            self.unsupported[missing] = self.unsupported.get(missing, 0) + 1

    def count_unsupported(self, name: str) -> None:
        self.unsupported[name] = self.unsupported.get(name, 0) + 1


class Node(Charged):
    """Mutable per-module state while tracing; frozen into a LayerRecord afterwards. Its
    charged costs are what ran in the module's own forward outside any child (for a parent:
    only ops outside every module call; its own ops go to its ``stretches``)."""

    __slots__ = (
        "calls", "children", "depth", "input_dtypes", "input_shapes", "input_variants",
        "module", "name", "order", "output_dtypes", "output_shapes", "output_variants", "parent",
        "stretches", "type",
    )

    def __init__(self, name: str, module: torch.nn.Module, parent: Node | None) -> None:
        # Charged's fields set here, not by super().__init__(): one Node per module per count
        self.macs = self.flops = self.act = self.read = self.write = 0
        self.unsupported: dict[str, int] = {}
        self.bwd: Tally | None = None
        self.name = name
        self.module = module
        self.type = type(module).__name__
        self.parent = parent
        self.depth: int = 0 if parent is None else parent.depth + 1
        self.children: list[Node] = []
        self.calls = 0
        self.order = -1
        self.input_shapes: tuple[tuple[int, ...], ...] = ()
        self.input_dtypes: tuple[str, ...] = ()
        self.output_shapes: tuple[tuple[int, ...], ...] = ()
        self.output_dtypes: tuple[str, ...] = ()
        #: a module called again with other shapes (resnet's shared ``relu``): every distinct
        #: input and output signature, first call's first; empty while all calls agree
        self.input_variants: list[tuple[tuple[int, ...], ...]] = []
        self.output_variants: list[tuple[tuple[int, ...], ...]] = []
        #: ops run in this (parent) module's own forward, by the gap between child calls
        #: they ran in (``Stretch.segment``)
        self.stretches: dict[int, Stretch] = {}


def op_label(name: str) -> str:
    """An op's short name for rows: ``aten.add_`` → ``add_``; other namespaces keep theirs
    with ``::`` (a row name must not contain dots: they separate the module path)."""
    return name.removeprefix("aten.").removeprefix("function.").replace(".", "::")


class Stretch(Charged):
    """The ops a parent module ran in its own ``forward`` in one gap between child calls.

    Gap ``segment`` of a call is what ran after its ``segment``-th direct child call returned
    (0: before the first child call). Summed over the parent's calls, it becomes a row of its
    own (kind ``"ops"``): a residual ``out += identity`` or an attention's ``q @ k.T`` then has
    a name, shapes and a cost beside the modules, instead of hiding in the parent's self cost,
    and the timing pass times the same gap (``cnnprof.timing.stretches``).
    """

    __slots__ = (
        "calls", "input_dtypes", "input_shapes", "last_call", "op_flops", "ops", "order",
        "output_dtypes", "output_shapes", "parent", "segment",
    )

    def __init__(self, parent: Node, segment: int, order: int) -> None:
        super().__init__()
        self.parent = parent
        self.segment = segment
        self.order = order
        self.calls = 0
        self.last_call = -1
        #: op label → calls, over all of the parent's calls, in the order first run
        self.ops: dict[str, int] = {}
        #: op label → FLOPs (what a long stretch's row name picks its ops by)
        self.op_flops: dict[str, int] = {}
        self.input_shapes: tuple[tuple[int, ...], ...] = ()
        self.input_dtypes: tuple[str, ...] = ()
        self.output_shapes: tuple[tuple[int, ...], ...] = ()
        self.output_dtypes: tuple[str, ...] = ()

    def saw(self, label: str, args: Any, out: Any, flops: int) -> None:
        """One op of the gap (``label``: ``op_label`` of its name): its FLOPs, and (first
        call only) the shapes going in and out."""
        ops = self.ops
        ops[label] = ops.get(label, 0) + 1
        self.op_flops[label] = self.op_flops.get(label, 0) + flops
        if self.calls == 1:
            if not self.input_shapes:  # the gap's inputs: the first op's tensor arguments
                self.input_shapes, self.input_dtypes = shapes_and_dtypes(args)
            self.output_shapes, self.output_dtypes = shapes_and_dtypes(out)


def _add_variant(variants: list[tuple[tuple[int, ...], ...]], first: tuple[tuple[int, ...], ...],
                 shapes: tuple[tuple[int, ...], ...]) -> None:
    """Remember ``shapes`` when no earlier call of the module had them."""
    if shapes == first or shapes in variants:
        return
    if not variants:
        variants.append(first)
    variants.append(shapes)


#: ``torch.nn`` classes whose ``forward`` calls no fused function (attention, recurrent
#: layers) and no other module: while one runs as a leaf, the function mode is taken off the
#: stack, so the torch functions it calls (``F.conv2d``, ``F.batch_norm``, ``F.relu``) skip a
#: Python round trip each that could change nothing (a leaf has no gap to claim for)
_PLAIN_LEAVES: frozenset[type] = frozenset(
    getattr(torch.nn, name) for name in (
        "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
        "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm",
        "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LocalResponseNorm",
        "Linear", "Bilinear", "Identity", "Flatten", "Unflatten", "Embedding",
        "ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish",
        "Sigmoid", "Tanh", "Hardswish", "Hardsigmoid", "Hardtanh", "Softplus", "Softmax",
        "LogSoftmax", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
        "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
        "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
        "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "Upsample", "PixelShuffle", "ZeroPad2d",
        "ConstantPad1d", "ConstantPad2d", "ConstantPad3d", "ReflectionPad2d",
        "ChannelShuffle",
    ) if hasattr(torch.nn, name))


def _top_function_mode() -> Any:
    return torch._C._get_function_stack_at(torch._C._len_torch_function_stack() - 1)


#: the code that runs a module's hooks when its forward returns (``_call_impl``'s ``inner``);
#: None on a torch without it (then any exception being handled counts as a failure)
_HOOKS_CALLER: Any = next((c for c in torch.nn.Module._call_impl.__code__.co_consts
                           if isinstance(c, CodeType) and c.co_name == "inner"), None)

_GLOBAL_HOOKS = ("_global_forward_pre_hooks", "_global_forward_hooks",
                 "_global_backward_pre_hooks", "_global_backward_hooks")
#: (the code objects, their ids) of ``_forward_callers``, found once
_callers: tuple[tuple[Any, ...], frozenset[int]] | None = None


def _forward_callers() -> frozenset[int]:
    """The ids of the code objects of torch's functions that call a module's ``forward``
    (``_call_impl``, the ``inner`` of its hooked path, ``_slow_forward``); empty when a probe
    module's forward is called from anywhere else (another torch): then every module is
    hooked instead. An observed ``forward`` called from elsewhere is a direct
    ``module.forward(x)`` call, which no hook sees either, and is passed through unobserved.
    Ids, not the code objects: hashing a code object hashes its contents (~0.8 µs for
    ``_call_impl``), and this is asked on every module call; the objects are kept alive."""
    global _callers
    if _callers is None:
        module_cls = torch.nn.Module
        impl = module_cls._call_impl.__code__
        codes = {impl, module_cls._slow_forward.__code__}
        codes.update(c for c in impl.co_consts if isinstance(c, CodeType))
        seen: list[Any] = []
        probe = module_cls()
        vars(probe)["forward"] = lambda: seen.append(sys._getframe(1).f_code)
        probe()
        handle = probe.register_forward_pre_hook(lambda module, args: None)
        try:
            probe()
        finally:
            handle.remove()
        found = tuple(codes) if len(seen) == 2 and codes.issuperset(seen) else ()
        _callers = found, frozenset(map(id, found))
    return _callers[1]


def _global_hooks() -> bool:
    """Does any process-wide module hook exist (or can this torch not say)?"""
    table = torch.nn.modules.module.__dict__
    return any(table.get(name, True) for name in _GLOBAL_HOOKS)


def _hook_ids() -> tuple[int, int]:
    """Two hook ids no ``RemovableHandle`` will ever use (taken from its counter, as
    ``Module.register_forward_hook`` does)."""
    first = RemovableHandle.next_id
    RemovableHandle.next_id += 2
    return first, first + 1


class ModuleObserver:
    """Observes every module call; tracks the running-module stack and first-call shapes.

    With ``track_grad`` it also records which module created each autograd node, so a later
    backward pass can charge its ops to the module whose forward they differentiate.

    A module without hooks of its own (and no process-wide hooks) is observed by an instance
    ``forward`` that wraps its class's: ``Module._call_impl`` then keeps its fast path, which
    any hook switches off (~8 µs a call: a closure, a set, the hook loops), and a plain
    ``torch.nn`` leaf (``_PLAIN_LEAVES``) runs with the function mode off the stack. The
    wrapper does what the hooks do, at the same moments (the module has no other hooks to run
    before or after it). A module that has hooks gets a pre/post hook pair
    instead, one bound method pair shared by every such module, put straight into its hook
    dicts under two reserved ids (what ``register_forward_pre_hook(..., with_kwargs=True)``
    and ``register_forward_hook(..., always_call=True)`` do, without a ``RemovableHandle``
    and a closure per module and hook): they run after the module's own hooks, as
    registered hooks would.
    """

    def __init__(self, model: torch.nn.Module, *, track_grad: bool = False) -> None:
        self.nodes: dict[int, Node] = {}
        self.track_grad = track_grad
        #: autograd node → the module, or the gap of a parent's own ops, whose forward
        #: created it (``track_grad`` only)
        self.grad_owner: dict[Any, Charged] = {}
        #: leaf tensors (parameters, inputs that require grad) the forward's graph reaches
        self.grad_leaves: list[torch.Tensor] = []
        self.root = self._build_tree(model)
        self.stack: list[Node] = []
        #: per open call (parallel to ``stack``): direct child calls that have returned
        self.segments: list[int] = []
        self._hook_ids: tuple[int, int] | None = None
        #: each hooked module's four hook tables (pre, pre with kwargs, post, always called)
        self._hooked: list[tuple[dict[int, Any], ...]] = []
        #: each wrapped module's ``__dict__`` and the ``forward`` put there
        self._wrapped: list[tuple[dict[str, Any], Any]] = []
        #: the trace's function mode (set by ``FusedFunctionObserver``): taken off the stack
        #: while a plain ``torch.nn`` leaf runs
        self.function_mode: TorchFunctionMode | None = None
        #: the op observer while it is on the dispatch stack (it keeps the leaf memo)
        self.ops: OpObserver | None = None
        #: modules hooked through the public API (their class has no hook dicts of its own)
        self._handles: list[Any] = []
        self._next_order = 0
        #: innermost module that was running when the forward raised, and the last that ran
        self.failed_node: Node | None = None
        self.last_finished: Node | None = None
        #: the aten op that raised, its args and the exception (set by OpObserver), so a
        #: failure in a parent's own forward (a ``view``) can be named
        self.failed_op: tuple[str, tuple[Any, ...], dict[str, Any], BaseException] | None = None

    def _build_tree(self, model: torch.nn.Module) -> Node:
        nodes = self.nodes
        root = None
        for name, module, parent in walk_modules(model):
            if parent is None:
                node = root = Node(name, module, None)
            else:
                owner = nodes[id(parent)]
                node = Node(name, module, owner)
                owner.children.append(node)
            nodes[id(module)] = node
        assert root is not None
        return root

    def modules(self) -> list[torch.nn.Module]:
        """Every module of the model, each once (the tree's)."""
        return [node.module for node in self.nodes.values()]

    def attach(self) -> None:
        """Observe every module; a module that cannot be observed (a ``ScriptModule`` inside
        the model) raises, with everything attached so far taken off again."""
        try:
            self._attach()
        except BaseException:
            self.detach()
            raise

    def _attach(self) -> None:
        pre, post = (self._pre_grad, self._post) if self.track_grad else (self._pre, self._post)
        pre_id, post_id = self._hook_ids = _hook_ids()
        hooked = self._hooked
        wrap = not _global_hooks() and bool(_forward_callers())
        for node in self.nodes.values():
            module = node.module
            try:
                if isinstance(module, torch.jit.ScriptModule):
                    raise AttributeError  # the public API says it cannot hook one
                tables = (module._forward_pre_hooks, module._forward_pre_hooks_with_kwargs,
                          module._forward_hooks, module._forward_hooks_always_called)
                own_hooks = bool(tables[0] or tables[2] or module._backward_hooks
                                 or module._backward_pre_hooks)
            except AttributeError:  # not set up by Module.__init__: the public API
                self._handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
                self._handles.append(module.register_forward_hook(post, always_call=True))
                continue
            state = vars(module)
            if wrap and not own_hooks and "forward" not in state:
                observed = self._observed(node)
                state["forward"] = observed
                self._wrapped.append((state, observed))
                continue
            tables[0][pre_id] = pre
            tables[1][pre_id] = True
            tables[2][post_id] = post
            tables[3][post_id] = True
            hooked.append(tables)

    def detach(self) -> None:
        for state, observed in self._wrapped:
            if state.get("forward") is observed:
                del state["forward"]
        self._wrapped.clear()
        if self._hook_ids is not None:
            pre_id, post_id = self._hook_ids
            self._hook_ids = None
            for pre_hooks, pre_kwargs, post_hooks, always in self._hooked:
                pre_hooks.pop(pre_id, None)
                pre_kwargs.pop(pre_id, None)
                post_hooks.pop(post_id, None)
                always.pop(post_id, None)
            self._hooked.clear()
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.stack.clear()
        self.segments.clear()

    def _observed(self, node: Node) -> Any:
        """``node.module``'s forward, observed as its pre and post hooks would observe it
        (``_entered`` and ``_returned``, as ``_pre`` and ``_post`` do)."""
        module = node.module
        forward = module.forward  # the class's, bound (nothing in the instance's __dict__)
        callers = _forward_callers()
        frame = sys._getframe
        # a plain leaf: torch's own class and forward, no children (trace/leaf_memo.py)
        plain = (type(module) in _PLAIN_LEAVES and not node.children
                 and leaf_memo.torch_forward(type(module)))
        leaf = leaf_memo.plan(module) if plain else None
        run_leaf, entered, returned = self._run_leaf, self._entered, self._returned
        observer = self
        track_grad = self.track_grad

        def observed(*args: Any, **kwargs: Any) -> Any:
            if id(frame(1).f_code) not in callers:  # module.forward(x): not a module call
                return forward(*args, **kwargs)
            if track_grad:
                observer.claim((args, kwargs), observer.current)
            entered(node, args, kwargs)
            if plain:
                out = run_leaf(node, leaf, forward, args, kwargs)
            else:
                try:
                    out = forward(*args, **kwargs)
                except Exception:
                    observer._finished(node, failed=True)
                    raise
            returned(node, out)
            return out

        observed.__wrapped__ = forward  # type: ignore[attr-defined]  # inspect.signature
        return observed

    def _run_leaf(self, node: Node, leaf: LeafPlan | None, forward: Any,
                  args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A plain leaf's call: with the trace's function mode off the stack (the functions
        it calls cannot be fused ones, and a leaf has no gap to claim for), and answered
        from the leaf memo (trace/leaf_memo.py, ``leaf``: its plan) where the op observer
        allows it."""
        mode = self.function_mode
        if (mode is None or not torch._C._len_torch_function_stack()
                or _top_function_mode() is not mode):  # a mode the model pushed sees them
            try:
                return forward(*args, **kwargs)
            except Exception:
                self._finished(node, failed=True)
                raise
        # off the stack before the memo reads a tensor too: each ``.stride()`` would be a
        # round trip through the mode
        torch._C._pop_torch_function_stack()
        try:
            ops = self.ops
            keyed = None
            if leaf is not None and ops is not None and ops.leaf_memo():
                keyed = leaf_memo.key(leaf, vars(node.module), args, kwargs)
                if keyed is not None:
                    remembered = ops.leaves.get(keyed[0])
                    if remembered is not None:
                        return _replay(node, remembered, keyed[1])
                    before = (node.macs, node.flops, node.act, node.read, node.write,
                              dict(node.unsupported))
            try:
                out = forward(*args, **kwargs)
            except Exception:
                self._finished(node, failed=True)
                raise
            if keyed is not None and ops is not None:
                ops.remember(keyed, out, node, before)
            return out
        finally:
            torch._C._push_on_torch_function_stack(mode)

    def _entered(self, node: Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """``node``'s call begins: counted, ordered and shaped (later calls' other input
        shapes as variants), on top of the stack."""
        node.calls += 1
        if node.calls == 1:
            node.order = self._next_order
            self._next_order += 1
            node.input_shapes, node.input_dtypes = call_shapes(args, kwargs)
        else:
            _add_variant(node.input_variants, node.input_shapes, call_shapes(args, kwargs)[0])
        self.stack.append(node)
        self.segments.append(0)

    def _returned(self, node: Node, output: Any) -> None:
        """``node``'s call returned ``output``: off the stack, its output shapes, and (with
        ``track_grad``) the autograd nodes its forward created claimed."""
        self._finished(node, failed=False)
        if node.calls == 1:
            node.output_shapes, node.output_dtypes = shapes_and_dtypes(output)
        else:
            _add_variant(node.output_variants, node.output_shapes,
                         shapes_and_dtypes(output)[0])
        if self.track_grad:
            self.claim(output, node)
        self.last_finished = node

    def _pre(self, module: torch.nn.Module, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> None:
        self._entered(self.nodes[id(module)], args, kwargs)

    def _pre_grad(self, module: torch.nn.Module, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> None:
        # whatever produced the inputs and is still unclaimed ran in the caller's own
        # forward (children claim theirs when they finish)
        self.claim((args, kwargs), self.current)
        self._pre(module, args, kwargs)

    def _post(self, module: torch.nn.Module, args: tuple[Any, ...], output: Any) -> None:
        node = self.nodes[id(module)]
        # an always-called hook runs from _call_impl's own ``except`` when the forward raised;
        # a module called while user code handles an exception sees sys.exc_info() set too,
        # but runs its hooks from ``inner`` as usual
        if sys.exc_info()[1] is not None and sys._getframe(1).f_code is not _HOOKS_CALLER:
            self._finished(node, failed=True)
            return
        self._returned(node, output)

    def _finished(self, node: Node, *, failed: bool) -> None:
        """``node``'s call returned (or raised, when ``failed``): off the stack."""
        stack = self.stack
        if stack and stack[-1] is node:
            stack.pop()
            segments = self.segments
            segments.pop()
            if segments:
                segments[-1] += 1  # the caller's next gap starts
        if failed and self.failed_node is None:
            self.failed_node = node

    def place_failure(self) -> None:
        """The forward raised: when no hook or wrapper saw it (a ``sys.exit()``: no
        ``Exception``, so ``_call_impl`` runs no always-called hook), the innermost call
        still open is where it happened."""
        if self.failed_node is None and self.stack:
            self.failed_node = self.stack[-1]

    @property
    def current(self) -> Node:
        return self.stack[-1] if self.stack else self.root

    def sink(self) -> Charged:
        """Where an op running now is charged: the running module when it has no children
        (a leaf's own ops), else the gap of the running parent's call the op falls in.
        Outside every module call (nothing on the stack): the root itself."""
        if not self.stack:
            return self.root
        node = self.stack[-1]
        if not node.children:
            return node
        return self.stretch(node)

    def stretch(self, node: Node) -> Stretch:
        """The gap of ``node``'s running call (on top of the stack) that runs now."""
        segment = self.segments[-1]
        stretch = node.stretches.get(segment)
        if stretch is None:
            stretch = node.stretches[segment] = Stretch(node, segment, self._next_order)
            self._next_order += 1  # placed among the parent's children by first run
        if stretch.last_call != node.calls:
            stretch.last_call = node.calls
            stretch.calls += 1
        return stretch

    def open_stretch(self) -> Stretch | None:
        """The gap of a parent's own ops running now, if it has charged any op yet (unlike
        ``sink``, never creates one: a gap of free ops such as views gets no row)."""
        if not self.stack or not self.stack[-1].children:
            return None
        return self.stack[-1].stretches.get(self.segments[-1])

    def claim(self, obj: Any, node: Charged) -> None:
        """Attribute the not yet claimed autograd nodes behind the tensors in ``obj`` to ``node``.

        Walks ``grad_fn.next_functions`` back to nodes claimed earlier: a child module claims
        what its forward created when it returns, so what is left belongs to ``node``. Each
        autograd node is visited once over the whole forward.
        """
        owner = self.grad_owner
        todo = [t.grad_fn for t in iter_tensors(obj) if t.grad_fn is not None]
        while todo:
            fn = todo.pop()
            if fn in owner:
                continue
            owner[fn] = node
            variable = getattr(fn, "variable", None)  # AccumulateGrad: a leaf tensor
            if isinstance(variable, torch.Tensor):
                self.grad_leaves.append(variable)
            for nxt, _ in fn.next_functions:
                if nxt is not None and nxt not in owner:
                    todo.append(nxt)


def _replay(node: Node, call: LeafCall, tensors: list[torch.Tensor]) -> Any:
    """A remembered leaf call again: its charges on ``node``, fresh results of its layouts."""
    node.macs += call.macs
    node.flops += call.flops
    node.act += call.act
    node.read += call.read
    node.write += call.write
    if call.unsupported:
        unsupported = node.unsupported
        for name, calls in call.unsupported:
            unsupported[name] = unsupported.get(name, 0) + calls
    with torch._C._DisableTorchDispatch():  # making the results is no op of the model's
        out = rebuilt(call.outputs, tensors)
    return out[0] if call.single else out


def _unsupported_since(before: dict[str, int], now: dict[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple((name, calls - before.get(name, 0)) for name, calls in now.items()
                 if calls != before.get(name, 0))


#: is any autocast on (torch >= 2.4 has one call for every device; without it the memo is off)
_any_autocast = getattr(torch._C, "_is_any_autocast_enabled", lambda: True)


class _OpInfo:
    __slots__ = ("formula", "kind", "label", "mutable", "name", "primary_only")

    def __init__(self, name: str, kind: OpKind, formula: Any, mutable: bool,
                 primary_only: bool) -> None:
        self.name = name
        #: the op's name in an ``"ops"`` row (``op_label``)
        self.label = op_label(name)
        self.kind = kind
        self.formula = formula
        self.mutable = mutable
        #: OpTrait.PRIMARY_OUTPUT_ONLY: only the first output counts as written
        self.primary_only = primary_only

    def written(self, out: Any) -> int:
        """Bytes the op writes: its outputs (the first only for ``primary_only`` ops)."""
        if isinstance(out, torch.Tensor):
            return out.numel() * out.element_size()
        if self.primary_only and isinstance(out, (tuple, list)) and out:
            return tensor_bytes(out[0])
        return tensor_bytes(out)


#: per registry: (its version, number of an op call's key (meta_cache) → charge, leaf call
#: key (leaf_memo) → what it returned and charged); weak, so a test's registry goes with it
_COST_MEMO: weakref.WeakKeyDictionary[
    FormulaRegistry, tuple[int, dict[int, OpCharge], dict[tuple[Any, ...], LeafCall]]
] = weakref.WeakKeyDictionary()


class OpObserver(TorchDispatchMode):
    """Costs each aten op and charges it to the innermost running module."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # torch wraps a mode's __torch_dispatch__ in torch._dynamo.disable unless this says
        # False; a count never runs under torch.compile, and the wrapper costs an import of
        # torch._dynamo on the first op (1-2 s of CLI time) and a call per op.
        return False

    def __init__(self, modules: ModuleObserver, registry: FormulaRegistry = REGISTRY) -> None:
        super().__init__()
        self.modules = modules
        self.registry = registry
        self.suppress = 0
        self._cache: dict[Any, _OpInfo] = {}
        self._version = registry.version
        #: the charge memo and leaf memo of ``registry`` at ``_memo_version``
        self._charges: dict[int, OpCharge] = {}
        self.leaves: dict[tuple[Any, ...], LeafCall] = {}
        self._memo_version = -1
        #: the dispatch mode stack's length with this observer on top (set on entering)
        self._depth = -1

    def __enter__(self) -> OpObserver:
        entered = super().__enter__()
        self._depth = torch._C._len_torch_dispatch_stack()
        self.modules.ops = self
        return entered

    def __exit__(self, *exc: Any) -> None:
        self.modules.ops = None
        super().__exit__(*exc)

    def leaf_memo(self) -> bool:
        """May a plain leaf called now be answered from the leaf memo (trace/leaf_memo.py)?
        Not with grad or autocast on, inside a fused function, or under a dispatch mode the
        model pushed."""
        if self._memo_version != self.registry.version:
            self._memo()
        return (not self.suppress and not torch.is_grad_enabled() and not _any_autocast()
                and torch._C._len_torch_dispatch_stack() == self._depth)

    def remember(self, keyed: tuple[tuple[Any, ...], list[torch.Tensor]], out: Any, node: Node,
                 before: tuple[int, int, int, int, int, dict[str, int]]) -> None:
        """Keep a plain leaf's call that ran for real: its results' layouts and what its ops
        charged ``node`` since ``before`` (its sums and unsupported ops then)."""
        found = leaf_memo.outputs(out, keyed[1])
        if found is None:
            return
        if len(self.leaves) >= MAX_ENTRIES:
            self.leaves.clear()
        self.leaves[keyed[0]] = LeafCall(
            found[0], found[1], node.macs - before[0], node.flops - before[1],
            node.act - before[2], node.read - before[3], node.write - before[4],
            _unsupported_since(before[5], node.unsupported))

    def _info(self, func: Any) -> _OpInfo:
        if self._version != self.registry.version:
            self._cache.clear()
            self._version = self.registry.version
        info = self._cache.get(func)
        if info is None:
            name = str(func.overloadpacket) if hasattr(func, "overloadpacket") else str(func)
            schema = getattr(func, "_schema", None)
            mutable = bool(schema is not None and schema.is_mutable)
            registry = self.registry
            info = _OpInfo(name, registry.kind(name), registry.formula(name), mutable,
                           registry.has(name, OpTrait.PRIMARY_OUTPUT_ONLY))
            self._cache[func] = info
        return info

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        if kwargs is None:
            kwargs = {}
        try:
            # memoised on meta (trace/meta_cache.py); ``key`` is set when the call was keyed
            out, key = run_op_keyed(func, args, kwargs)
        except Exception as exc:  # zero cost unless raised; the failure report names the op
            self.modules.failed_op = (self._info(func).name, args, kwargs, exc)
            raise
        if self.suppress:
            return out
        # the key holds everything a formula reads (shapes, strides, dtypes, arguments), so a
        # charge worked out once per key and registry version holds for every later call
        if self._memo_version != self.registry.version:
            self._memo()
        charge = self._charges.get(key) if key is not None else None
        if charge is None:
            charge = self._charge(func, args, kwargs, out)
            if key is not None:
                if len(self._charges) >= MAX_ENTRIES:  # bounded as the kernel memo is
                    self._charges.clear()
                self._charges[key] = charge
        if charge is FREE:
            return out
        modules = self.modules
        stack = modules.stack
        if not stack:
            modules.root.charge(charge)
            return out
        node = stack[-1]
        if node.children:  # a parent's own op: the gap it runs in
            stretch = modules.stretch(node)
            stretch.saw(self._info(func).label, args, out, charge.flops)
            stretch.charge(charge)
        else:
            node.charge(charge)
        return out

    def _memo(self) -> None:
        """Take the registry's memos at its current version (fresh ones after a change)."""
        registry = self.registry
        memos = _COST_MEMO.get(registry)
        if memos is None or memos[0] != registry.version:
            memos = _COST_MEMO[registry] = (registry.version, {}, {})
        self._memo_version, self._charges, self.leaves = memos

    def _charge(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                out: Any) -> OpCharge:
        info = self._info(func)
        if info.kind is OpKind.VIEW:
            return FREE
        written = info.written(out)
        read, act = tensor_bytes(args), (0 if info.mutable else written)
        if info.kind is OpKind.COMPUTE:
            try:
                cost = info.formula(args, kwargs, out)
            except Exception:  # a formula bug must never break the user's forward
                return OpCharge(0, 0, act, read, written, f"{info.name} (formula failed)")
            return OpCharge(cost.macs, cost.flops, act, read, written)
        return OpCharge(0, 0, act, read, written,
                        info.name if info.kind is OpKind.UNSUPPORTED else None)


#: ``torch._C._current_autograd_node`` (the node the engine is running) is private API; when a
#: torch build lacks it, every backward op is charged to the root.
_current_autograd_node = getattr(torch._C, "_current_autograd_node", lambda: None)


class BackwardOpObserver(OpObserver):
    """Costs the ops of a backward pass, charging each to the module that created the autograd
    node being run (``ModuleObserver.grad_owner``); nodes outside any module go to the root."""

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        charge = self._charge(func, args, kwargs, out)
        if charge is FREE:
            return out
        modules = self.modules
        node = modules.grad_owner.get(_current_autograd_node(), modules.root)
        assert node.bwd is not None  # _run_backward zeroes every module and gap before it starts
        node.bwd.add(charge)
        if charge.unsupported is not None:
            node.count_unsupported(charge.unsupported)
        return out


def _fused_functions() -> dict[Any, str]:
    import torch.nn.functional as F

    table: dict[Any, str] = {
        F.scaled_dot_product_attention: "function.scaled_dot_product_attention",
        # A TorchFunctionMode never sees the calls nested inside a function it handles, so the
        # attention inside multi_head_attention_forward would run as whatever kernel the
        # device picks (a fused CPU kernel, or mul/bmm/softmax on meta) and cost differently
        # per device. Costing the whole function by formula keeps meta, cpu and cuda equal.
        F.multi_head_attention_forward: "function.multi_head_attention_forward",
    }
    for name in ("lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell",
                 "rnn_tanh_cell", "rnn_relu_cell"):
        table[getattr(torch, name)] = f"function.{name}"
    return table


class FusedFunctionObserver(TorchFunctionMode):
    """Costs fused functions once, where they are called, and hides their inner ops.

    With ``--backward`` (``ModuleObserver.track_grad``) it also claims the autograd nodes each
    call in a parent's own forward creates for that call's gap, so the backward of a residual
    add lands on its ``"ops"`` row. A dispatch mode cannot do this: it runs below autograd,
    before an op's output has its ``grad_fn``.
    """

    def __init__(self, ops: OpObserver) -> None:
        super().__init__()
        self.ops = ops
        self.table = _fused_functions()
        self.claims = ops.modules.track_grad
        ops.modules.function_mode = self

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        if kwargs is None:
            kwargs = {}
        name = self.table.get(func)
        if name is None or self.ops.suppress:
            out = func(*args, **kwargs)
            if self.claims:
                self._claim_for_gap(out)
            return out
        self.ops.suppress += 1
        try:
            out = func(*args, **kwargs)
        finally:
            self.ops.suppress -= 1
        formula = self.ops.registry.formula(name)
        node = self.ops.modules.sink()
        written = tensor_bytes(out)
        node.read += tensor_bytes(args) + tensor_bytes(tuple(kwargs.values()))
        node.write += written
        node.act += written
        flops = 0
        if formula is None:
            node.count_unsupported(name)
        else:
            try:
                cost = formula(args, kwargs, out)
            except Exception:  # a formula bug must never break the user's forward
                node.count_unsupported(f"{name} (formula failed)")
            else:
                flops = cost.flops
                node.macs += cost.macs
                node.flops += flops
        if type(node) is Stretch:
            node.saw(op_label(name), args, out, flops)
        if self.claims:
            self._claim_for_gap(out)
        return out

    def _claim_for_gap(self, out: Any) -> None:
        modules = self.ops.modules
        stretch = modules.open_stretch()
        if stretch is not None:
            modules.claim(out, stretch)
