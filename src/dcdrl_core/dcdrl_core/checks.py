"""Checks of single arguments (config fields, constructor arguments): one definition, one wording.

``check_number`` and ``check_int`` return the value as a float / int, or raise with a message that
names the argument, the allowed range and the value given:

    rate_hz must be a finite number > 0 and <= 10000, got 0.0
    capacity must be an integer >= 1, got 0

A value of the wrong type (a string, None, a bool) raises ``NotANumber``, which is both a TypeError
(Python's convention) and a ValueError (what callers catch as bad input: ros.run_node turns either
into one [FATAL] line). numpy scalars count as numbers (numpy registers them with ``numbers``).
Standard library only: the edge imports this without numpy or torch.
"""
from __future__ import annotations

import math
import numbers
from typing import Any


class NotANumber(TypeError, ValueError):
    """The value is not a number of the expected kind."""


def _bounds(minimum: float, maximum: float, above: bool) -> str:
    low = (f'> {minimum:g}' if above else f'>= {minimum:g}') if minimum > -math.inf else ''
    high = f'<= {maximum:g}' if maximum < math.inf else ''
    return ' and '.join(part for part in (low, high) if part)


def check_number(name: str, value: Any, minimum: float = -math.inf, maximum: float = math.inf, *,
                 above: bool = False) -> float:
    """``value`` as a float: a finite real number >= minimum (> minimum when ``above``) and <= maximum."""
    bounds = _bounds(minimum, maximum, above)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise NotANumber(f'{name} must be a finite number {bounds}'.rstrip() + f', got {value!r}')
    number = float(value)
    if not (math.isfinite(number) and (number > minimum if above else number >= minimum) and number <= maximum):
        raise ValueError(f'{name} must be a finite number {bounds}'.rstrip() + f', got {value!r}')
    return number


def check_int(name: str, value: Any, minimum: float = -math.inf, maximum: float = math.inf) -> int:
    """``value`` as an int: an integer (not a bool, not a float) with minimum <= value <= maximum."""
    bounds = _bounds(minimum, maximum, above=False)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise NotANumber(f'{name} must be an integer {bounds}'.rstrip() + f', got {value!r}')
    if not minimum <= int(value) <= maximum:
        raise ValueError(f'{name} must be an integer {bounds}'.rstrip() + f', got {value!r}')
    return int(value)


__all__ = ['NotANumber', 'check_int', 'check_number']
