"""Launch arguments on the command line: their syntax, choices, and the names a launch file accepts.

``ros2 launch`` (Jazzy) refuses a malformed ``name:=value`` and a value outside an argument's
``choice`` list, but silently ignores an argument no file declares (``num_clent:=2`` starts the
default graph). ``dcdrl launch`` refuses that too, naming the closest declared argument: a strict
subset of what ``ros2 launch`` accepts (docs/launch-and-params.md).
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from .substitutions import LaunchError

__all__ = ['parse_launch_arguments', 'described', 'check_known_arguments', 'ALWAYS_ACCEPTED']

# Read by launch itself (as LaunchConfiguration defaults of every process), declared by no file.
ALWAYS_ACCEPTED = frozenset({'sigterm_timeout', 'sigkill_timeout'})


def parse_launch_arguments(items: Sequence[str]) -> dict[str, str]:
    """``['a:=1', 'b:=x']`` -> ``{'a': '1', 'b': 'x'}`` (the last of one name wins, as in ros2 launch).
    Raises LaunchError for what ros2 launch refuses: no ``:=``, no name, or ``name:=`` with no value."""
    arguments: dict[str, str] = {}
    for item in items:
        count = item.count(':=')
        if count == 0 or item.startswith(':=') or (count == 1 and item.endswith(':=')):
            raise LaunchError(f"malformed launch argument {item!r}: launch arguments look like 'name:=value'")
        name, value = item.split(':=', 1)
        arguments[name] = value
    return arguments


def described(description: str, choices: Sequence[str] | None) -> str:
    """An argument's description as launch shows it (``ros2 launch -s``): the choices appended."""
    if choices is None:
        return description or 'no description given'
    if not description:
        return f'One of: {list(choices)}'
    return description + ('' if description.endswith('.') else '.') + f' Valid choices are: {list(choices)}'


def check_known_arguments(given: Iterable[str], declared: Iterable[str], launch_file: str,
                          show_command: str) -> None:
    """Raise LaunchError naming the first argument in ``given`` that no declaration in ``declared`` has;
    ``show_command`` lists the declared ones (``dcdrl launch -s PKG FILE``)."""
    names = sorted(set(declared))
    for name in given:
        if name in ALWAYS_ACCEPTED or name in names:
            continue
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'? " if close else ''
        raise LaunchError(
            f"{launch_file} declares no launch argument '{name}' ({hint}{show_command} lists them; "
            "ros2 launch would ignore it)")
