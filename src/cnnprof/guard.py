"""The one guard user code runs inside: a model file's import, a constructor or factory, and
the forward (and backward) pass.

User code is a program (docs/safety.md) and may do what a program does at its top level:
``sys.exit(0)``, ``argparse.parse_args()`` of a ``train.py``, raise ``GeneratorExit`` or
``asyncio.CancelledError`` (``BaseException`` subclasses that ``except Exception`` misses),
print, read ``sys.argv``. Left alone, a ``SystemExit`` from a model ends cnnprof as if it were
cnnprof's own exit: with code 0, ``cnnprof check`` passed a CI budget gate it never checked.

Inside :func:`user_code`:

* every ``BaseException`` except ``KeyboardInterrupt`` leaves as :class:`UserCodeExit`, an
  ``Exception``, so the callers that treat a model's failure as data (a row of the report, a
  failed budget row, a one-line error) see it like any other error. Ctrl-C stays Ctrl-C;
* ``sys.argv`` is ``[the program's path]`` — what ``python net.py`` gives it — so an
  ``argparse`` at import parses no cnnprof options (and its defaults usually just work);
* process-wide state is changed under one re-entrant lock (:data:`PROCESS_LOCK`), so that
  ``profile()`` from several threads runs one at a time instead of interleaving the save and
  restore of ``sys.stdout``, the MultiheadAttention fast-path flag and the RNG.
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
from collections.abc import Iterator

from cnnprof.errors import first_line

#: Held while cnnprof changes process-wide state (``sys.stdout``, ``sys.argv``, torch's global
#: flags and RNG). Re-entrant: a guarded import may build a model that runs a guarded forward.
PROCESS_LOCK = threading.RLock()


class Captured(io.StringIO):
    """What user code prints while cnnprof holds ``sys.stdout``: a buffer it cannot close
    (``sys.stdout.close()`` in a model would lose what it printed and fail the read-back)."""

    def close(self) -> None:
        pass


class UserCodeExit(Exception):
    """User code raised a ``BaseException`` that is not an ``Exception``.

    ``original`` is what it raised; the message says what ran and how it ended, in words a
    user recognises: ``the model's forward called sys.exit(0)``.
    """

    def __init__(self, what: str, original: BaseException) -> None:
        self.what = what
        self.original = original
        super().__init__(f"{what} {describe_exit(original)}")


def describe_exit(exc: BaseException) -> str:
    """``called sys.exit(2)`` or ``raised GeneratorExit: why``."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})" if exc.code is not None else "called sys.exit()"
    text = str(exc).strip()
    return f"raised {type(exc).__name__}" + (f": {first_line(exc)}" if text else "")


@contextlib.contextmanager
def user_code(what: str, program: str | None = None) -> Iterator[None]:
    """Run the block as user code described by ``what`` ("importing net.py", "the model's
    forward"). ``program``: the path ``sys.argv[0]`` shows while it runs (default: keep
    ``sys.argv[0]``, drop cnnprof's own options)."""
    with PROCESS_LOCK:
        argv = sys.argv
        sys.argv = [program if program is not None else (argv[0] if argv else "")]
        try:
            yield
        except (Exception, KeyboardInterrupt):
            raise
        except BaseException as exc:  # SystemExit, GeneratorExit, CancelledError, ...
            raise UserCodeExit(what, exc) from exc
        finally:
            sys.argv = argv


#: The seed of every random tensor cnnprof makes (weights of zoo models, example inputs) and of
#: the RNG a counted forward draws from (dropout): data-dependent models (detection: how many
#: boxes survive) count the same every run.
SEED = 0


@contextlib.contextmanager
def seeded_rng(seed: int = SEED) -> Iterator[None]:
    """Seed torch's RNG for the block and give the caller's RNG state back afterwards (CPU,
    and CUDA where it is already initialised: initialising it costs seconds)."""
    import torch

    devices = (list(range(torch.cuda.device_count()))
               if torch.cuda.is_available() and torch.cuda.is_initialized() else [])
    with PROCESS_LOCK, torch.random.fork_rng(devices=devices):
        if devices:
            torch.manual_seed(seed)
        else:  # torch.manual_seed would also queue a seed for CUDA's future initialisation
            torch.default_generator.manual_seed(seed)
        yield
