"""Clocks the timer reads through slots, so hooks only record and never wait.

A clock owns a pool of *slots*. ``record(slot)`` stamps "now" into a pre-allocated slot (a
float for ``perf_counter``, a pre-created ``torch.cuda.Event`` for CUDA); ``sync()`` waits
for the device once per iteration; ``elapsed_s(a, b)`` is read only after that. Tests inject a
clock whose time advances only when the test says so (torch.utils.benchmark's
``Timer(timer=...)`` idea), which makes per-layer times exact.
"""

from __future__ import annotations

import time
from typing import Any, Protocol, runtime_checkable

from cnnprof.device import Device, parse


@runtime_checkable
class Clock(Protocol):
    """Where per-call marks come from. ``record`` must be cheap: it runs inside hooks."""

    name: str

    def reserve(self, slots: int) -> None:
        """Make sure ``slots`` marks exist (allocation happens here, never in ``record``)."""

    def record(self, slot: int) -> None:
        """Stamp the current time into ``slot``."""

    def sync(self) -> None:
        """Wait until every recorded mark has its time (once per iteration)."""

    def elapsed_s(self, start: int, end: int) -> float:
        """Seconds between two recorded slots; valid after ``sync``."""


class _StampClock:
    """Slots that hold host-side float stamps: what the perf-counter and fake clocks share
    (they differ only in where a stamp's time comes from)."""

    def __init__(self) -> None:
        self._stamps: list[float] = []

    def reserve(self, slots: int) -> None:
        if slots > len(self._stamps):
            self._stamps.extend([0.0] * (slots - len(self._stamps)))

    def elapsed_s(self, start: int, end: int) -> float:
        return self._stamps[end] - self._stamps[start]


class PerfCounterClock(_StampClock):
    """Host wall clock (``time.perf_counter``): right for CPU models, where work is synchronous."""

    name = "perf_counter"

    def __init__(self) -> None:
        super().__init__()
        self._now = time.perf_counter

    def record(self, slot: int) -> None:
        self._stamps[slot] = self._now()

    def sync(self) -> None:
        return None


class CudaEventClock:
    """CUDA events on the current stream: the GPU's own timestamps of when work reached them.

    Events are created up front (``reserve``) and reused every iteration; recording one does
    not synchronize, so the CPU keeps queueing kernels while hooks run.
    """

    name = "cuda_event"

    def __init__(self, device: Any = None, *, external: bool = False) -> None:
        import torch

        self._torch = torch
        self._device = device
        #: external events, when recorded during a CUDA-graph capture, become event-record
        #: nodes whose timestamps every replay rewrites (cnnprof.timing.ingraph)
        self._external = external
        self._events: list[Any] = []
        # Event.record() without a stream builds a Stream object per call (microseconds of
        # host time in every hook); the stream is looked up once per iteration instead, and
        # the C++ method is called directly when this torch exposes it.
        self._stream: Any = None
        base = getattr(torch._C, "_CudaEventBase", None)
        self._record: Any = getattr(base, "record", None) or torch.cuda.Event.record

    def reserve(self, slots: int) -> None:
        torch = self._torch
        while len(self._events) < slots:
            self._events.append(torch.cuda.Event(enable_timing=True, external=True)
                                if self._external else torch.cuda.Event(enable_timing=True))

    def begin(self) -> None:
        """Called before each iteration: the stream marks go to (the current one)."""
        self._stream = self._torch.cuda.current_stream(self._device)

    def record(self, slot: int) -> None:
        self._record(self._events[slot], self._stream)

    def sync(self) -> None:
        self._torch.cuda.synchronize(self._device)

    def elapsed_s(self, start: int, end: int) -> float:
        return float(self._events[start].elapsed_time(self._events[end])) / 1000.0


class FakeClock(_StampClock):
    """A clock that moves only when ``advance`` is called: exact times for tests and dry runs.

    Models used with it call ``advance(seconds)`` in their forward, so each layer "takes"
    exactly the time the test gives it, and hook overhead can be simulated with
    ``per_record_s`` (time that passes every time a mark is recorded).
    """

    name = "manual"

    def __init__(self, per_record_s: float = 0.0) -> None:
        super().__init__()
        self.now = 0.0
        self.per_record_s = per_record_s
        self.syncs = 0

    def __deepcopy__(self, memo: dict[int, Any]) -> FakeClock:
        # a time source is shared state: a deep-copied model must keep advancing this clock
        return self

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def record(self, slot: int) -> None:
        self._stamps[slot] = self.now
        self.now += self.per_record_s

    def sync(self) -> None:
        self.syncs += 1


def clock_for(device: str | Device) -> Clock:
    """The right clock for a device (``cpu``, ``cuda``, ``cuda:1``)."""
    named = parse(device)
    if named is not None and named.is_cuda:
        return CudaEventClock(str(named))
    return PerfCounterClock()
