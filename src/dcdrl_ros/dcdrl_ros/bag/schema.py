"""The ros2msg schema text of a message type, byte for byte as rosbag2 writes it into MCAP schema records.

rosbag2 (rosbag2_cpp's LocalMessageDefinitionSource) takes the .msg file as it is, comments included, and
appends each nested type once, depth first, the nested types of one file in sorted order, each after a
line of 80 '=' and `MSG: pkg/Name`. mcap_ros2, rosbags and Foxglove parse that text to decode the CDR.
"""
from __future__ import annotations

from typing import Any

from dcdrl_ros.cli_interface import nested_type

SEPARATOR = '=' * 80
ENCODING = 'ros2msg'  # the MCAP schema encoding of this text


def _file_text(registry: Any, type_name: str) -> str:
    package, kind, name = type_name.split('/')
    with open(registry.find_file(package, kind, name), encoding='utf-8') as handle:
        return handle.read()


def _dependencies(text: str, package: str) -> list[str]:
    """The nested message types a .msg text names, as 'pkg/msg/Name', sorted (rosbag2 keeps a std::set
    of 'pkg/Name', so that is the order to sort by)."""
    found = set()
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith('#'):
            continue
        nested = nested_type(line, package)
        if nested:
            found.add(nested)
    return sorted(found, key=short_name)


def short_name(type_name: str) -> str:
    """'pkg/msg/Name' -> 'pkg/Name', the form after `MSG:`."""
    package, _, name = type_name.split('/')
    return f'{package}/{name}'


def message_definition(type_name: str, registry: Any = None) -> str:
    """The complete ros2msg text of 'pkg/msg/Name'; LookupError (InterfaceNotFoundError) for an unknown type."""
    if registry is None:
        from dcdrl_ros.messages import default_registry
        registry = default_registry()
    seen: set[str] = set()

    def append(name: str) -> str:
        text = _file_text(registry, name)
        for dependency in _dependencies(text, name.split('/')[0]):
            if dependency not in seen:
                seen.add(dependency)
                text += f'\n{SEPARATOR}\nMSG: {short_name(dependency)}\n' + append(dependency)
        return text
    return append(type_name)
