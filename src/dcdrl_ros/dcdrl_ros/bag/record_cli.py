"""`dcdrl bag record`: registered by the recorder's module (placeholder until it lands)."""
from __future__ import annotations

from typing import Any


def add_arguments(bag_verbs: Any) -> None:
    pass
