"""``device="auto"``: count on the device that is faster for this model in this process.

Two costs decide it (measured in docs/performance.md):

* the meta device's **start-up**, paid once per process: the first meta op imports sympy
  and ``torch._dynamo`` (which wraps torch's Python reference kernels), 1-2 s on a small
  machine, unless something (torchvision, torch.compile) imported them already. After
  that, meta kernels are memoised per input layout (``trace/meta_cache.py``) and counting on
  meta beats a CPU count on every torchvision classifier measured, small depthwise ones
  included;
* the **CPU forward**, paid per call: it grows with the model, allocates its weights and
  activations, and a model given as a spec must first be built with real (random) weights.

So, for a model instance: meta once meta has started (or something else in the process,
torchvision or torch.compile, started it); before that, a model small enough that a real
forward costs less than the start-up counts on the CPU. Giant models, models not on the CPU
and low-precision dtypes (slow or missing CPU kernels) always count on meta, which needs no
memory. A spec (a seed model, a user file, ``module:factory``) follows the same rule: it is
first built on meta (no weight initialisation) to learn its size, and only a small one in a
process where meta has not started is built again on the CPU (``api._auto_device``). So
``cnnprof lenet`` costs little more than ``import torch``; a torchvision spec imports
torchvision, which starts meta, and counts there. The counts are the same on every device
(tests/test_device_choice.py, tests/test_startup.py); ``report.device`` says which ran.
"""

from __future__ import annotations

import sys

#: Above these a cold process still counts on meta: a batch-1 forward of a 50 M-parameter
#: CNN takes a few hundred ms on two CPU cores, the meta start-up 1-2 s; bigger models
#: (and anything giant) would spend more than that and the memory it needs.
COLD_CPU_MAX_PARAMS = 50_000_000
#: elements of all inputs together (batch included): 4 M is a batch of 26 ImageNet crops
COLD_CPU_MAX_INPUT_ELEMENTS = 4_000_000


def meta_started() -> bool:
    """Has this process paid the meta device's start-up? Its cost is imports: sympy (symbolic
    shapes, by the first meta kernel) and ``torch._dynamo`` (by the first reference kernel).
    Importing torchvision imports both, so any process that has it counts on meta."""
    return "torch._dynamo" in sys.modules and "sympy" in sys.modules


def choose(*, params: int | None, input_elements: int, model_device: str | None,
           dtype: str | None = None) -> tuple[str, str]:
    """The device for ``device="auto"`` and why, from what is known before counting.

    ``params``: parameter elements (None when unknown); ``model_device``: where the model's
    tensors live ("cpu", "meta", "cuda:0"; None when it has none).
    """
    if meta_started():
        return "meta", "meta kernels already started in this process"
    if model_device not in (None, "cpu"):
        return "meta", f"the model lives on {model_device}"
    if dtype not in (None, "float32", "float64"):
        return "meta", f"{dtype} kernels are slow or missing on the CPU"
    if params is None or params > COLD_CPU_MAX_PARAMS:
        return "meta", "large model: meta needs no memory"
    if input_elements > COLD_CPU_MAX_INPUT_ELEMENTS:
        return "meta", "large input: meta needs no memory"
    return "cpu", "small model in a fresh process: a CPU forward is faster than meta's start-up"
