"""The cloud half of the weight codec: a validated payload into torch tensors or a live module.

codec.py validates and decodes with numpy only (what the edge runs); this module adds torch on top.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .codec import WeightsPayload, decode_weights


def payload_to_state_dict(payload: WeightsPayload, expected_architecture: str | None,
                          expected_shapes: Any = None,
                          active_version: int | None = None) -> dict[str, torch.Tensor]:
    """Validate and return a torch state_dict (CPU float32 tensors) ready for load_state_dict."""
    arrays = decode_weights(payload, expected_architecture, expected_shapes, active_version)
    return {n: torch.from_numpy(a) for n, a in arrays.items()}


def load_payload(module: nn.Module, payload: WeightsPayload, expected_architecture: str,
                 active_version: int | None = None) -> int:
    """Validate against the module's own shapes and load; returns the payload's version.

    Nothing is written to the module unless the whole payload passes.
    """
    state = payload_to_state_dict(payload, expected_architecture, module, active_version)
    module.load_state_dict(state, strict=True)
    return int(payload.version)


__all__ = ['load_payload', 'payload_to_state_dict']
