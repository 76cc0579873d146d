"""Strict JSON for run files and result lines: NaN/Inf become null (the standard has no NaN), numpy
scalars become Python numbers, and a file is written whole or not at all."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from dcdrl_core.files import atomic_write_bytes


def json_safe(value: Any) -> Any:
    """NaN/Inf -> None, numpy scalars -> Python, recursively (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def write_json(path: str | Path, data: Any) -> Path:
    """``data`` made strict (json_safe), indented, written atomically; returns the path."""
    path = Path(path)
    atomic_write_bytes(path, json.dumps(json_safe(data), indent=2, allow_nan=False).encode())
    return path


__all__ = ['json_safe', 'write_json']
