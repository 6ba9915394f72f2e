"""CUDA graph primitives shared by both graph timing strategies.

``cnnprof.timing.ingraph`` (marks inside one whole-model graph) and
``cnnprof.timing.isolated`` (every module call replayed in its own graph) both capture
through a ``GraphBackend``, raise ``CaptureError`` when a forward cannot be captured, and
hand back one ``Measured`` per module ``Call``; ``cnnprof.timing.graphs`` runs the pass and
combines those into per-module times. The backend is injected (``CudaGraphBackend`` on a
GPU, a fake that reads a ``FakeClock`` in the tests), so everything above it is testable on
any machine.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from cnnprof.errors import named_line


class CaptureError(Exception):
    """A call could not be captured into (or replayed from) a CUDA graph."""


class GraphBackend(Protocol):
    """Captures a function into a replayable graph and times replays of it."""

    def capture(self, fn: Callable[[], Any], copies: int, warmup: int,
                warm: Callable[[], Any] | None = None) -> Any:
        """Run ``warm`` (default ``fn``) ``warmup`` times, then capture ``copies``
        back-to-back calls of ``fn``. Raises ``CaptureError`` when ``fn`` cannot be
        captured."""

    def replay_s(self, graph: Any, replays: int) -> float:
        """Seconds (device time) of ``replays`` back-to-back replays of ``graph``."""

    def release(self, graph: Any) -> None:
        """Free the graph and its memory pool."""

    def close(self) -> None:
        """Return cached memory after the whole pass."""


@dataclass
class _Captured:
    graph: Any
    output: Any  # kept alive with the graph: its memory is the graph's to write


class CudaGraphBackend:
    """``torch.cuda.CUDAGraph`` capture on a side stream, replays timed by one event pair.

    ``capture_begin``/``capture_end`` are called directly rather than through the
    ``torch.cuda.graph`` context manager, which runs ``gc.collect()`` and ``empty_cache()``
    before every capture: hundreds of captures per model would spend most of their time
    there. The device is synchronized before each capture instead.
    """

    #: a released graph's private memory pool is only returned by ``empty_cache``
    EMPTY_CACHE_EVERY = 32

    def __init__(self, device: str | torch.device) -> None:
        self.device = torch.device(device)
        self.stream = torch.cuda.Stream(device=self.device)
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)
        self._released = 0

    def capture(self, fn: Callable[[], Any], copies: int, warmup: int,
                warm: Callable[[], Any] | None = None) -> _Captured:
        cuda = torch.cuda
        prev = cuda.current_stream(self.device)
        graph = cuda.CUDAGraph()
        out: Any = None
        try:
            # warm-up on the capture stream itself: cuBLAS/cuDNN create their per-stream
            # workspaces and pick algorithms outside the capture (PyTorch's documented recipe)
            self.stream.wait_stream(prev)
            with cuda.stream(self.stream):
                for _ in range(warmup):
                    (warm or fn)()
            prev.wait_stream(self.stream)
            cuda.synchronize(self.device)
            with warnings.catch_warnings(), cuda.stream(self.stream):
                warnings.simplefilter("ignore")  # "the CUDA Graph is empty" for Dropout etc.
                graph.capture_begin()
                try:
                    for _ in range(copies):
                        out = fn()
                finally:
                    # ends the capture even when fn raised (then capture_end may raise too:
                    # the capture was invalidated; fn's error stays chained to it)
                    graph.capture_end()
        except Exception as exc:
            cuda.set_stream(prev)  # never leave later work on the capture stream
            self._absorb_error()
            del graph, out
            raise CaptureError(capture_reason(exc)) from exc
        return _Captured(graph, out)

    def _absorb_error(self) -> None:
        # an invalidated capture can leave CUDA's "last error" set; the next kernel launch
        # check would report it against an innocent layer, so take it here
        for _ in range(2):
            try:
                torch.cuda.synchronize(self.device)
                torch.zeros(1, device=self.device).add_(1)
                return
            except Exception:
                continue

    def replay_s(self, graph: Any, replays: int) -> float:
        stream = torch.cuda.current_stream(self.device)
        try:
            # an untimed replay first: the GPU is busy with it while the host queues the
            # timed ones, so the window does not start with a host-side gap
            graph.graph.replay()
            self._start.record(stream)
            for _ in range(replays):
                graph.graph.replay()
            self._end.record(stream)
            self._end.synchronize()
        except Exception as exc:
            self._absorb_error()
            raise CaptureError(capture_reason(exc)) from exc
        return float(self._start.elapsed_time(self._end)) / 1000.0

    def release(self, graph: Any) -> None:
        if graph is None:
            return
        graph.output = None
        graph.graph = None
        self._released += 1
        if self._released % self.EMPTY_CACHE_EVERY == 0:
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()

    def close(self) -> None:
        torch.cuda.synchronize(self.device)
        torch.cuda.empty_cache()


def capture_reason(exc: BaseException) -> str:
    """One line naming why a capture failed (a backend's ``CaptureError`` message)."""
    # when the captured code raised, capture_end raises too ("invalidated"): the first
    # error in the chain is the one that names the cause (a sync, a missing op)
    for _ in range(3):
        if exc.__context__ is None:
            break
        exc = exc.__context__
    return named_line(exc)[:200]


@dataclass(frozen=True)
class Measured:
    #: seconds per call, one value per window
    samples_s: list[float]
    #: calls per timed window (copies captured in the graph × replays in the window)
    per_window: int


@dataclass
class Call:
    """One module call seen in the recording forward."""

    module: int  # index into the timer's module list
    parent: int  # index of the enclosing call, -1 for the outermost
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    children: list[int] = field(default_factory=list)
