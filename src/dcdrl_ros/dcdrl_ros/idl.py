"""Parser for ROS 2 interface definitions (.msg and .srv files).

The ROS-free runtime builds its message classes and CDR codecs from the same .msg/.srv
files that rosidl generates code from, so there is one source of truth for every type.
Grammar: https://docs.ros.org/en/rolling/Concepts/Basic/About-Interfaces.html
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# ROS primitive type -> (numpy dtype string, size in bytes). 'bool', 'byte', 'char' are 1 byte.
PRIMITIVES: dict[str, tuple[str, int]] = {
    'bool': ('?', 1),
    'byte': ('u1', 1),
    'char': ('u1', 1),
    'int8': ('i1', 1),
    'uint8': ('u1', 1),
    'int16': ('<i2', 2),
    'uint16': ('<u2', 2),
    'int32': ('<i4', 4),
    'uint32': ('<u4', 4),
    'int64': ('<i8', 8),
    'uint64': ('<u8', 8),
    'float32': ('<f4', 4),
    'float64': ('<f8', 8),
}
STRING_TYPES = ('string', 'wstring')
INTEGER_RANGES = {
    'byte': (0, 255), 'char': (0, 255), 'int8': (-128, 127), 'uint8': (0, 255),
    'int16': (-2**15, 2**15 - 1), 'uint16': (0, 2**16 - 1),
    'int32': (-2**31, 2**31 - 1), 'uint32': (0, 2**32 - 1),
    'int64': (-2**63, 2**63 - 1), 'uint64': (0, 2**64 - 1),
}

_NAME_RE = re.compile(r'^[a-z][a-z0-9_]*$')
_TYPE_RE = re.compile(
    r'^(?:(?P<pkg>[A-Za-z][A-Za-z0-9_]*)/(?:msg/)?)?(?P<base>[A-Za-z][A-Za-z0-9_]*)'
    r'(?:<=(?P<strbound>\d+))?'
    r'(?P<array>\[(?P<arrbound><=)?(?P<arrsize>\d*)\])?$')


class InterfaceSyntaxError(ValueError):
    """A .msg/.srv file that is not valid ROS 2 interface syntax."""


@dataclass(frozen=True)
class FieldType:
    """The type of one field: a primitive, a string, or a nested message, maybe in an array."""

    base: str                       # primitive name, 'string'/'wstring', or message name
    package: str | None = None   # set for nested messages
    string_bound: int | None = None
    is_array: bool = False
    array_size: int | None = None  # fixed-size array length
    upper_bound: int | None = None  # bounded sequence

    @property
    def is_primitive(self) -> bool:
        return self.package is None and self.base in PRIMITIVES

    @property
    def is_string(self) -> bool:
        return self.package is None and self.base in STRING_TYPES

    @property
    def is_message(self) -> bool:
        return self.package is not None

    @property
    def is_sequence(self) -> bool:
        return self.is_array and self.array_size is None

    @property
    def element_name(self) -> str:
        """The ROS name of the element type ('float32', 'std_msgs/Header', 'string<=5')."""
        if self.is_message:
            return f'{self.package}/{self.base}'
        if self.string_bound is not None:
            return f'{self.base}<={self.string_bound}'
        return self.base

    def __str__(self) -> str:
        name = self.element_name
        if not self.is_array:
            return name
        if self.array_size is not None:
            return f'{name}[{self.array_size}]'
        if self.upper_bound is not None:
            return f'{name}[<={self.upper_bound}]'
        return f'{name}[]'


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    default: Any = None  # parsed default value, or None


@dataclass(frozen=True)
class Constant:
    name: str
    type: str
    value: Any


@dataclass
class MessageSpec:
    package: str
    name: str
    fields: list[Field] = field(default_factory=list)
    constants: list[Constant] = field(default_factory=list)
    kind: str = 'msg'  # 'msg', or 'srv' for the Request/Response halves of a service

    @property
    def full_name(self) -> str:
        """'pkg/msg/Name' (for services: 'pkg/srv/Name_Request')."""
        return f'{self.package}/{self.kind}/{self.name}'

    @property
    def dds_type_name(self) -> str:
        """The DDS type name that rmw_cyclonedds_cpp gives this type."""
        return f'{self.package}::{self.kind}::dds_::{self.name}_'

    def nested_types(self) -> list[tuple[str, str]]:
        return [(f.type.package, f.type.base) for f in self.fields if f.type.is_message]


@dataclass
class ServiceSpec:
    package: str
    name: str
    request: MessageSpec
    response: MessageSpec

    @property
    def full_name(self) -> str:
        return f'{self.package}/srv/{self.name}'


def parse_field_type(text: str, package: str) -> FieldType:
    match = _TYPE_RE.match(text)
    if not match:
        raise InterfaceSyntaxError(f'invalid type {text!r}')
    pkg, base = match.group('pkg'), match.group('base')
    strbound = match.group('strbound')
    if strbound is not None and base not in STRING_TYPES:
        raise InterfaceSyntaxError(f'only strings can be bounded with <=: {text!r}')
    if pkg is None and base not in PRIMITIVES and base not in STRING_TYPES:
        if base == 'Header':  # ROS 1 shorthand that ROS 2 still accepts
            pkg = 'std_msgs'
        elif base in ('time', 'duration'):
            raise InterfaceSyntaxError(f'{base!r} is ROS 1; use builtin_interfaces/{base.title()}')
        else:
            pkg = package  # a message of the same package
    is_array = match.group('array') is not None
    array_size = upper_bound = None
    if is_array:
        size = match.group('arrsize')
        if match.group('arrbound'):
            if not size:
                raise InterfaceSyntaxError(f'bounded sequence needs a bound: {text!r}')
            upper_bound = int(size)
        elif size:
            array_size = int(size)
            if array_size == 0:
                raise InterfaceSyntaxError(f'fixed-size array of length 0: {text!r}')
    return FieldType(base=base, package=pkg, string_bound=int(strbound) if strbound else None,
                     is_array=is_array, array_size=array_size, upper_bound=upper_bound)


def _parse_scalar(value: str, type_name: str) -> Any:
    if type_name == 'bool':
        lowered = value.strip().lower()
        if lowered in ('true', '1'):
            return True
        if lowered in ('false', '0'):
            return False
        raise InterfaceSyntaxError(f'invalid bool value {value!r}')
    if type_name in ('float32', 'float64'):
        return float(value)
    if type_name in INTEGER_RANGES:
        number = int(value, 0)
        low, high = INTEGER_RANGES[type_name]
        if not low <= number <= high:
            raise InterfaceSyntaxError(f'{number} out of range for {type_name}')
        return number
    if type_name in STRING_TYPES:
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in '"\'':
            return value[1:-1].encode().decode('unicode_escape')
        return value
    raise InterfaceSyntaxError(f'type {type_name} cannot have a constant or default value')


def _parse_value(text: str, field_type: FieldType) -> Any:
    if field_type.is_message:
        raise InterfaceSyntaxError('nested message fields cannot have default values')
    if not field_type.is_array:
        return _parse_scalar(text, field_type.base)
    text = text.strip()
    if not (text.startswith('[') and text.endswith(']')):
        raise InterfaceSyntaxError(f'array default must be [..]: {text!r}')
    inner = text[1:-1].strip()
    items = [item for item in _split_list(inner)] if inner else []
    return [_parse_scalar(item, field_type.base) for item in items]


def _split_list(text: str) -> list[str]:
    """Splits '1, "a,b", 3' on commas outside quotes."""
    items, current, quote = [], '', None
    for char in text:
        if quote:
            current += char
            if char == quote:
                quote = None
        elif char in '"\'':
            quote = char
            current += char
        elif char == ',':
            items.append(current.strip())
            current = ''
        else:
            current += char
    items.append(current.strip())
    return items


def _strip_comment(line: str) -> str:
    """Removes a '#' comment that is not inside a quoted string."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in '"\'':
            quote = char
        elif char == '#':
            return line[:index]
    return line


def parse_message(text: str, package: str, name: str, kind: str = 'msg') -> MessageSpec:
    """Parses the text of one .msg file (or one half of a .srv file)."""
    spec = MessageSpec(package=package, name=name, kind=kind)
    seen: set[str] = set()
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith('#'):
            continue
        try:
            type_text, rest = _split_type(line)
            const_name, has_equals, value = rest.partition('=')
            const_name = const_name.strip()
            if has_equals and const_name and not any(c in const_name for c in ' \t"\''):
                if not re.match(r'^[A-Z][A-Z0-9_]*$', const_name):
                    raise InterfaceSyntaxError(f'constant name {const_name!r} must be UPPER_CASE')
                if type_text not in PRIMITIVES and type_text not in STRING_TYPES:
                    raise InterfaceSyntaxError(f'constants must be primitive or string, got {type_text}')
                value = value if type_text in STRING_TYPES else _strip_comment(value)
                spec.constants.append(Constant(const_name, type_text, _parse_scalar(value, type_text)))
                continue
            rest = _strip_comment(rest).strip()
            field_name, _, default_text = rest.partition(' ')
            if not _NAME_RE.match(field_name) or '__' in field_name or field_name.endswith('_'):
                raise InterfaceSyntaxError(f'invalid field name {field_name!r}')
            if field_name in seen:
                raise InterfaceSyntaxError(f'duplicate field {field_name!r}')
            seen.add(field_name)
            field_type = parse_field_type(type_text, package)
            default = _parse_value(default_text, field_type) if default_text.strip() else None
            spec.fields.append(Field(field_name, field_type, default))
        except (InterfaceSyntaxError, ValueError) as error:
            raise InterfaceSyntaxError(f'{package}/{kind}/{name} line {number}: {error} in {raw_line!r}') from None
    return spec


def _split_type(line: str) -> tuple[str, str]:
    parts = line.split(None, 1)
    if len(parts) != 2:
        raise InterfaceSyntaxError('expected "<type> <name>"')
    return parts[0], parts[1]


def parse_service(text: str, package: str, name: str) -> ServiceSpec:
    """Parses a .srv file: request fields, '---', response fields."""
    sections = re.split(r'^\s*---\s*$', text, flags=re.MULTILINE)
    if len(sections) != 2:
        raise InterfaceSyntaxError(f'{package}/srv/{name}: a service needs exactly one --- separator')
    return ServiceSpec(
        package=package, name=name,
        request=parse_message(sections[0], package, f'{name}_Request', kind='srv'),
        response=parse_message(sections[1], package, f'{name}_Response', kind='srv'))
