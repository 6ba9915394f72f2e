"""A graph backend for tests without a GPU (``cnnprof.timing.graph_capture.GraphBackend``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cnnprof.timing.graph_capture import CaptureError, capture_reason


class FakeGraphBackend:
    """A backend for tests: "replaying" calls the function again, and time is read from a
    clock with a ``now`` attribute (``FakeClock``) that the model's layers advance.

    ``capturing`` is true while a capture runs, so a test layer can refuse capture the way
    a host sync (``.item()``) does on a real GPU.
    """

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.capturing = False
        self.captures: list[int] = []  # copies of every successful capture
        self.closed = False

    def __deepcopy__(self, memo: dict[int, Any]) -> FakeGraphBackend:
        # shared state, like FakeClock: a deep-copied test model must see this `capturing`
        return self

    def capture(self, fn: Callable[[], Any], copies: int, warmup: int,
                warm: Callable[[], Any] | None = None) -> Any:
        for _ in range(warmup):
            (warm or fn)()
        self.capturing = True
        try:
            for _ in range(copies):
                fn()
        except Exception as exc:
            raise CaptureError(capture_reason(exc)) from exc
        finally:
            self.capturing = False
        self.captures.append(copies)
        return (fn, copies)

    def replay_s(self, graph: Any, replays: int) -> float:
        fn, copies = graph
        start = self.clock.now
        for _ in range(replays * copies):
            fn()
        return float(self.clock.now - start)

    def release(self, graph: Any) -> None:
        return None

    def close(self) -> None:
        self.closed = True
