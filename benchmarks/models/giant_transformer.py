"""A 51.5-billion-parameter ``nn.TransformerEncoder``: 206 GB in fp32, more than any laptop has.

cnnprof builds a user file's model under the meta device, so counting it needs no parameter
memory: ``cnnprof benchmarks/models/giant_transformer.py:giant_transformer --input 128x8192``.
"""

from __future__ import annotations

from torch import nn

#: The model's shape, read by benchmarks/giant.py for its analytic expectations.
LAYERS = 64
D_MODEL = 8192
HEADS = 64
FEEDFORWARD = 32768


def giant_transformer() -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        d_model=D_MODEL, nhead=HEADS, dim_feedforward=FEEDFORWARD, batch_first=True
    )
    # enable_nested_tensor=False: nested tensors need real padding masks, not a meta model
    return nn.TransformerEncoder(layer, num_layers=LAYERS, enable_nested_tensor=False)
