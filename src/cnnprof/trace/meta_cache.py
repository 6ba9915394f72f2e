"""Memoised meta kernels: the output layout of an aten op on the meta device, by input layout.

On the meta device most aten ops run Python reference implementations (``torch._refs``,
``torch._decomp``) to work out output shapes: 0.1-3 ms per call for an ``add``, a batch norm or
a ``hardswish_``, against about 5 µs to allocate a meta tensor. That per-op cost is what makes
meta counting slower than a CPU forward on small models with many ops. On meta a kernel's
result is a pure function of its inputs' metadata (shapes, strides, dtypes, storage offsets)
and its non-tensor arguments, so the result's metadata is kept after the first call and later
calls with the same key get fresh ``empty_strided`` tensors without running the kernel.
Repeated blocks (ResNet stages, transformer layers) hit within one run, and a second profile
of a model in the same process hits throughout.

Only what can be reproduced exactly is cached:

* ops whose every return is a fresh ``Tensor`` (no alias annotation) or the very tensor an
  in-place/``out=`` op wrote (``Tensor(a!)``); views (``Tensor(a)``), lists, optionals and
  scalars are never cached, since a new tensor could not share the input's storage;
* calls whose tensors are all plain, strided, non-complex meta tensors: real tensors carry
  data, and a subclass may dispatch differently;
* non-tensor arguments keyed with their type: ``1``, ``1.0`` and ``True`` promote differently.

A call that raises stores nothing, so an error (a shape mismatch) is raised every time.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

#: Entries kept before the cache is dropped and refilled (each is a few hundred bytes).
MAX_ENTRIES = 50_000

_META = torch.device("meta")
_STRIDED = torch.strided
_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)

#: per op overload, from its schema (computed once): None when its result cannot be rebuilt
#: from metadata, else the op's number in keys (an int hashes without calling
#: ``OpOverload.__hash__``, a Python method) and per return whether it is an input written
#: in place
_CACHEABLE: dict[Any, tuple[int, tuple[bool, ...]] | None] = {}
#: key → (the entry's number, per return: the flat tensor index of an in-place result, else
#: (shape, stride, dtype))
_RESULTS: dict[tuple[Any, ...], tuple[int, tuple[Any, ...]]] = {}
#: numbers entries (never reused, also after a clear)
_NUMBERS = itertools.count()


class NotCacheable(Exception):
    """A call's arguments cannot be keyed (a real tensor, a subclass, an unhashable value)."""


def clear() -> None:
    """Forget every stored result (tests; the cache never goes stale on its own)."""
    _RESULTS.clear()


def size() -> int:
    return len(_RESULTS)


def _schema_cacheable(func: Any) -> tuple[bool, ...] | None:
    schema = getattr(func, "_schema", None)
    if schema is None or not schema.returns:
        return None
    written: list[bool] = []
    for ret in schema.returns:
        if not isinstance(ret.type, torch._C.TensorType):
            return None
        alias = ret.alias_info
        if alias is not None and not alias.is_write:
            return None  # a view: it must share the input's storage
        written.append(alias is not None)
    return tuple(written)


_SCALARS = frozenset({type(None), bool, int, float, str, torch.dtype, torch.device,
                      torch.memory_format, torch.layout})
#: marks a tensor in a key: its shape, stride, dtype and storage offset follow
_T = object()
#: marks a list of ints in a key: the tuple of its values follows
_INTS = object()
_INT = frozenset({int})


def flatten(value: Any, key: list[Any], tensors: list[torch.Tensor]) -> None:
    """Append an unambiguous flat encoding of ``value`` to ``key`` (types and lengths are part
    of it, so nesting cannot collide); meta tensors go to ``tensors`` as well."""
    kind = type(value)
    if kind in _SCALARS:
        key.append(kind)
        key.append(value)
    elif kind in _PLAIN_TYPES:
        if not value.is_meta or value.layout is not torch.strided or value.is_complex():
            raise NotCacheable
        tensors.append(value)
        key += (_T, value.shape, value.stride(), value.dtype, value.storage_offset())
    elif kind is list or kind is tuple:
        key.append(kind)
        key.append(len(value))
        for item in value:
            flatten(item, key, tensors)
    else:
        raise NotCacheable


def append_call(parts: list[Any], tensors: list[torch.Tensor], args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> None:
    """Append the key of a call's arguments to ``parts`` and its meta tensors to ``tensors``,
    or raise ``NotCacheable``: the arguments of every op, and of a whole leaf module's call
    (trace/leaf_memo.py)."""
    parts.append(len(args))
    for value in args:  # flatten inlined for the common arguments: this is per op
        kind = type(value)
        if kind in _PLAIN_TYPES:
            dtype = value.dtype
            if not value.is_meta or value.layout is not _STRIDED or dtype.is_complex:
                raise NotCacheable
            tensors.append(value)
            parts += (_T, value.shape, value.stride(), dtype, value.storage_offset())
        elif kind in _SCALARS:
            parts.append(kind)
            parts.append(value)
        elif kind is list and _INT.issuperset(map(type, value)):
            # an int[] (stride, padding, shape): one tuple, tagged apart from flatten's
            # own list encoding so the two cannot collide
            parts.append(_INTS)
            parts.append(tuple(value))
        else:
            flatten(value, parts, tensors)
    for name, value in kwargs.items():
        parts.append(name)
        flatten(value, parts, tensors)


def run_op(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``func(*args, **kwargs)``, answered from the cache when the call is on meta tensors."""
    return run_op_keyed(func, args, kwargs)[0]


def run_op_keyed(func: Any, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> tuple[Any, int | None]:
    """``run_op`` and the number of the call's key (None when it was not memoised): whatever
    is a pure function of the call's metadata, such as its cost, can be memoised under that
    number (an int: hashed and compared at no cost, where the key is a long tuple)."""
    try:
        op = _CACHEABLE[func]
    except KeyError:
        written = _schema_cacheable(func)
        op = _CACHEABLE[func] = None if written is None else (len(_CACHEABLE), written)
    if op is None:
        return func(*args, **kwargs), None
    tensors: list[torch.Tensor] = []
    parts: list[Any] = [op[0]]
    try:
        append_call(parts, tensors, args, kwargs)
    except NotCacheable:
        return func(*args, **kwargs), None
    if not tensors:
        if kwargs.get("device") != _META:
            # factories: cached only with an explicit meta device (a default device may change)
            return func(*args, **kwargs), None
        parts.append(torch.get_default_dtype())  # what a factory without a dtype makes
    key = tuple(parts)
    entry = _RESULTS.get(key)
    if entry is not None:
        number, stored = entry
        if len(stored) == 1:  # most ops
            spec = stored[0]
            return (tensors[spec] if type(spec) is int else
                    torch.empty_strided(spec[0], spec[1], dtype=spec[2], device=_META)), number
        return rebuilt(stored, tensors), number
    out = func(*args, **kwargs)
    return out, _store(key, out, tensors, op[1])


def rebuilt(stored: tuple[Any, ...], tensors: list[torch.Tensor]) -> tuple[Any, ...]:
    """The results of a memoised call: per stored spec, the input tensor it names (an int, the
    call's flat tensor index) or a fresh meta tensor of that (shape, stride, dtype)."""
    return tuple(tensors[spec] if type(spec) is int else
                 torch.empty_strided(spec[0], spec[1], dtype=spec[2], device=_META)
                 for spec in stored)


def _store(key: tuple[Any, ...], out: Any, tensors: list[torch.Tensor],
           written: tuple[bool, ...]) -> int | None:
    """Keep ``out``'s layout under ``key`` when it can be rebuilt; the entry's number."""
    results = out if isinstance(out, tuple) else (out,)
    if len(results) != len(written):
        return None
    specs: list[int | tuple[Any, ...]] = []
    for result, in_place in zip(results, written, strict=True):
        if type(result) not in _PLAIN_TYPES:
            return None
        if in_place:  # must be one of the inputs, returned as itself
            same = [i for i, t in enumerate(tensors) if t is result]
            if not same:
                return None
            specs.append(same[0])
        elif (result.device == _META and result.layout == _STRIDED
              and all(t is not result for t in tensors)):
            specs.append((tuple(result.shape), result.stride(), result.dtype))
        else:
            return None
    if len(_RESULTS) >= MAX_ENTRIES:
        _RESULTS.clear()
    number = next(_NUMBERS)
    _RESULTS[key] = (number, tuple(specs))
    return number
