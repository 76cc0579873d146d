"""ROS 2 parameter files (``node: ros__parameters: ...``) and parameter types, without ROS.

This module reproduces what rcl_yaml_param_parser and rclpy do with ``--params-file`` and
``-p name:=value`` so that one YAML file gives the same parameters under rclpy and under the
ROS-free runtime:

- Values are typed the way rcl types them (not the way PyYAML does): quoted or ``!!str`` ->
  string; ``true/True/TRUE/yes/on/y`` (and the false forms) -> bool; a C ``strtoll`` integer
  (``10``, ``0x1f``, ``017``) -> integer; a C ``strtod`` number (``1.5``, ``1e3``, ``.inf``,
  ``nan``) -> double; anything else -> string. Lists must be non-empty and of one type.
  Anchors/aliases are rejected (rcl does not support them).
- Top-level keys name nodes: ``/**``, ``/ns/node``, ``node``, ``ns/node``, ``/**/node``,
  ``/*/node``; keys nest (``/ns: {node: {ros__parameters: ...}}`` is ``/ns/node``).
  ``*`` matches one namespace token, ``**`` zero or more; partial wildcards (``client_*``) are
  not supported by ROS 2 and are rejected with a clear error.
- Nested maps inside ``ros__parameters`` become dotted names (``a: {b: 1}`` -> ``a.b``).
- Precedence, as rcl + rclpy do it: all files are merged into one table keyed by the node key
  string, in order of each key's first appearance; a later file overwrites a parameter under the
  same key. A node gets the entries whose key matches its fully qualified name, applied in table
  order (so a ``/**`` block written before ``/node`` is overridden by it, and vice versa).
  ``-p`` overrides are applied last and always win (docs/decisions.md, "Area: launch files, parameters and building").
"""
from __future__ import annotations

import enum
import json
import math
import numbers
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = [
    'PARAMS_KEY',
    'PARAMETER_TYPES',
    'ParameterFileError',
    'InvalidParameterTypeError',
    'ParameterOverride',
    'ParameterTable',
    'parse_parameter_file',
    'parse_parameter_text',
    'parse_parameter_value',
    'load_parameter_files',
    'node_key_matches',
    'fully_qualified_name',
    'parameter_value_type',
    'check_parameter_type',
    'format_parameter_value',
]

PARAMS_KEY = 'ros__parameters'

# The names rcl_interfaces/ParameterType uses, lower case (what users see in messages).
PARAMETER_TYPES = (
    'bool', 'integer', 'double', 'string', 'byte_array',
    'bool_array', 'integer_array', 'double_array', 'string_array',
)
_SCALAR_OF_ARRAY = {
    'bool_array': 'bool', 'integer_array': 'integer',
    'double_array': 'double', 'string_array': 'string',
}
_TYPE_ALIASES = {
    'int': 'integer', 'float': 'double', 'str': 'string', 'bytes': 'byte_array',
    'not_set': 'not_set',
}

_YAML_STR_TAG = 'tag:yaml.org,2002:str'
_TRUE_WORDS = frozenset({'Y', 'y', 'yes', 'Yes', 'YES', 'true', 'True', 'TRUE', 'on', 'On', 'ON'})
_FALSE_WORDS = frozenset({'N', 'n', 'no', 'No', 'NO', 'false', 'False', 'FALSE', 'off', 'Off', 'OFF'})
_YAML_SPECIAL_FLOATS = {
    '.nan': math.nan, '.NaN': math.nan, '.NAN': math.nan,
    '.inf': math.inf, '.Inf': math.inf, '.INF': math.inf,
    '+.inf': math.inf, '+.Inf': math.inf, '+.INF': math.inf,
    '-.inf': -math.inf, '-.Inf': -math.inf, '-.INF': -math.inf,
}
# C strtoll(base 0) consuming the whole string: decimal, 0x hex, 0 octal.
_C_INT = re.compile(r'^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$')
# C strtod consuming the whole string (glibc): decimal, hex float, inf/infinity, nan(...).
_C_DEC_FLOAT = re.compile(r'^[ \t\n\v\f\r]*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$')
_C_HEX_FLOAT = re.compile(
    r'^[ \t\n\v\f\r]*([+-]?)0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)([pP][+-]?\d+)?$')
_C_INF = re.compile(r'^[ \t\n\v\f\r]*([+-]?)(inf|infinity)$', re.IGNORECASE)
_C_NAN = re.compile(r'^[ \t\n\v\f\r]*[+-]?nan(\([0-9A-Za-z_]*\))?$', re.IGNORECASE)
_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1

# Names as rmw validates them: node names and namespace tokens.
_NODE_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
_NS_TOKEN = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')


class ParameterFileError(ValueError):
    """A parameter file (or ``-p`` value) that ROS 2 would not accept; names file and line."""


class InvalidParameterTypeError(TypeError):
    """A parameter value whose ROS type does not match the declared type."""


@dataclass(frozen=True)
class ParameterOverride:
    """One parameter value with where it came from (for error messages)."""

    value: Any
    source: str  # e.g. "file config/x.yaml, line 4" or "-p rate:=abc"


# ---------------------------------------------------------------------------------------------
# Scalar typing, as rcl_yaml_param_parser's get_value() does it
# ---------------------------------------------------------------------------------------------

def _c_strtoll(text: str) -> int | None:
    match = _C_INT.match(text)
    if match is None:
        return None
    sign, digits = match.groups()
    if digits[:2] in ('0x', '0X'):
        value = int(digits[2:], 16)
    elif len(digits) > 1 and digits[0] == '0':
        value = int(digits[1:], 8)
    else:
        value = int(digits, 10)
    value = -value if sign == '-' else value
    if not _INT64_MIN <= value <= _INT64_MAX:
        return None  # strtoll sets ERANGE; rcl then tries strtod
    return value


def _c_strtod(text: str) -> float | None:
    if text in _YAML_SPECIAL_FLOATS:
        return _YAML_SPECIAL_FLOATS[text]
    if _C_INF.match(text):
        return -math.inf if text.strip().startswith('-') else math.inf
    if _C_NAN.match(text):
        return math.nan
    hex_match = _C_HEX_FLOAT.match(text)
    if hex_match is not None:
        sign, mantissa, exponent = hex_match.groups()
        if mantissa.startswith('.'):
            mantissa = '0' + mantissa
        try:
            value = float.fromhex(mantissa + (exponent or 'p0'))
        except OverflowError:
            return None
        return -value if sign == '-' else value
    if _C_DEC_FLOAT.match(text):
        value = float(text)
        if math.isinf(value):
            return None  # ERANGE overflow: rcl keeps the text as a string
        if value == 0.0 and re.search(r'[1-9]', text.split('e')[0].split('E')[0]):
            return None  # ERANGE underflow
        return value
    return None


def _type_scalar(value: str, style: str | None, tag: str | None, where: str) -> Any:
    """Type one YAML scalar the way rcl does (see module docstring)."""
    if tag == _YAML_STR_TAG or (tag is not None and tag.endswith(':str')):
        return value
    if style in ("'", '"'):
        return value
    if value == '':
        raise ParameterFileError(f'{where}: no value (write \'\' for an empty string)')
    if value in _TRUE_WORDS:
        return True
    if value in _FALSE_WORDS:
        return False
    as_int = _c_strtoll(value)
    if as_int is not None:
        return as_int
    as_float = _c_strtod(value)
    if as_float is not None:
        return as_float
    return value


# ---------------------------------------------------------------------------------------------
# A small YAML tree that keeps scalar style, tag and line (PyYAML's loader drops them)
# ---------------------------------------------------------------------------------------------

@dataclass
class _Scalar:
    value: str
    style: str | None
    tag: str | None
    line: int


@dataclass
class _Seq:
    items: list
    line: int


@dataclass
class _Map:
    items: list  # list of (key node, value node)
    line: int


def _compose(text: str, source: str) -> list:
    """Parse YAML text into one tree per document, keeping what rcl's typing needs."""
    documents: list = []
    stack: list = []  # open _Map/_Seq containers
    pending_key: list = []  # per open map: key waiting for its value (or None)

    def add(node: Any) -> None:
        if not stack:
            documents.append(node)
            return
        parent = stack[-1]
        if isinstance(parent, _Seq):
            parent.items.append(node)
        elif pending_key[-1] is None:
            pending_key[-1] = node
        else:
            parent.items.append((pending_key[-1], node))
            pending_key[-1] = None

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            line = event.start_mark.line + 1 if event.start_mark is not None else 0
            if isinstance(event, yaml.AliasEvent) or getattr(event, 'anchor', None):
                raise ParameterFileError(
                    f'{source}, line {line}: YAML anchors and aliases are not supported '
                    '(ROS 2 rejects them); repeat the values instead')
            if isinstance(event, yaml.ScalarEvent):
                add(_Scalar(event.value, event.style, event.tag, line))
            elif isinstance(event, yaml.SequenceStartEvent):
                sequence = _Seq([], line)
                add(sequence)
                stack.append(sequence)
                pending_key.append(None)
            elif isinstance(event, yaml.MappingStartEvent):
                mapping = _Map([], line)
                add(mapping)
                stack.append(mapping)
                pending_key.append(None)
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                stack.pop()
                pending_key.pop()
    except yaml.YAMLError as err:
        raise ParameterFileError(f'{source}: not valid YAML: {err}') from None
    return documents


# ---------------------------------------------------------------------------------------------
# Node keys
# ---------------------------------------------------------------------------------------------

def _validate_node_key(key: str, where: str) -> None:
    """Check a node key the way rcl's _validate_name does, with clearer messages."""
    if key in ('/**', '/*'):
        return
    body = key[1:] if key.startswith('/') else key
    if body == '' or '//' in key or key.endswith('/'):
        raise ParameterFileError(f"{where}: invalid node name '{key}' (empty token or repeated '/')")
    tokens = body.split('/')
    for index, token in enumerate(tokens):
        if token in ('*', '**'):
            continue
        if '*' in token:
            raise ParameterFileError(
                f"{where}: invalid node name '{key}': partial wildcards like '{token}' are not "
                "supported by ROS 2; use '*' or '**' as a whole token, or name each node")
        pattern = _NODE_NAME if index == len(tokens) - 1 else _NS_TOKEN
        if not pattern.match(token):
            raise ParameterFileError(
                f"{where}: invalid node name '{key}': '{token}' must start with a letter or '_' "
                'and contain only letters, digits and _')


def fully_qualified_name(node_name: str, namespace: str | None) -> str:
    """'/ns/node' from a node name and a namespace ('' or '/' is the root)."""
    namespace = (namespace or '/').rstrip('/')
    if namespace and not namespace.startswith('/'):
        namespace = '/' + namespace
    return f'{namespace}/{node_name}'


def _key_regex(key: str) -> re.Pattern:
    # rclpy/rclcpp: prefix '/', then '/*' -> '(/\w+)' (so '/**' becomes '(/\w+)*').
    key = key if key.startswith('/') else '/' + key
    return re.compile(key.replace('/*', r'(/\w+)'))


def node_key_matches(key: str, node_fqn: str) -> bool:
    """True if a parameter-file node key (``/**``, ``ns/node``, ``/*/node``) selects the node."""
    return _key_regex(key).fullmatch(node_fqn) is not None


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

def _array_value(seq: _Seq, source: str, name: str) -> list:
    if not seq.items:
        raise ParameterFileError(
            f"{source}, line {seq.line}: parameter '{name}' is an empty list; ROS 2 cannot type "
            'an empty array (leave it out to keep the default)')
    values, kind = [], None
    for item in seq.items:
        if not isinstance(item, _Scalar):
            raise ParameterFileError(
                f"{source}, line {item.line}: parameter '{name}': lists may hold only scalars "
                '(no nested lists or maps)')
        value = _type_scalar(item.value, item.style, item.tag, f"{source}, line {item.line}")
        this_kind = parameter_value_type(value)
        if kind is None:
            kind = this_kind
        elif this_kind != kind:
            raise ParameterFileError(
                f"{source}, line {item.line}: parameter '{name}': all list items must have one "
                f"type; found {kind} and {this_kind} ({item.value!r}); write 1.0 rather than 1 "
                'in a list of doubles')
        values.append(value)
    return values


def _collect_params(mapping: _Map, prefix: str, source: str, out: dict) -> None:
    for key, value in mapping.items:
        if not isinstance(key, _Scalar) or key.value == '':
            raise ParameterFileError(f'{source}, line {key.line}: parameter names must be non-empty text')
        name = f'{prefix}.{key.value}' if prefix else key.value
        if isinstance(value, _Map):
            if not value.items:
                raise ParameterFileError(
                    f"{source}, line {value.line}: parameter '{name}' is an empty map")
            _collect_params(value, name, source, out)
        elif isinstance(value, _Seq):
            out[name] = ParameterOverride(_array_value(value, source, name), f'file {source}, line {value.line}')
        else:
            where = f'{source}, line {value.line}'
            try:
                typed = _type_scalar(value.value, value.style, value.tag, where)
            except ParameterFileError:
                raise ParameterFileError(
                    f"{where}: parameter '{name}' has no value (write '' for an empty string)") from None
            out[name] = ParameterOverride(typed, f'file {where}')


def _walk_node_level(mapping: _Map, path: list[str], source: str, entries: list) -> None:
    for key, value in mapping.items:
        if not isinstance(key, _Scalar) or key.value == '':
            raise ParameterFileError(f'{source}, line {key.line}: node names must be non-empty text')
        if key.value.startswith(PARAMS_KEY):
            if not path:
                raise ParameterFileError(
                    f'{source}, line {key.line}: there is no node name before {PARAMS_KEY}; '
                    "write e.g. '/**:' (all nodes) or 'my_node:' above it")
            node_key = '/'.join(path)
            _validate_node_key(node_key, f'{source}, line {key.line}')
            if not isinstance(value, _Map):
                if isinstance(value, _Scalar) and value.value == '' and value.style is None:
                    params: dict = {}  # 'ros__parameters:' with nothing under it
                    entries.append((node_key, params))
                    continue
                raise ParameterFileError(
                    f'{source}, line {value.line}: {PARAMS_KEY} of {node_key} must be a map of '
                    'parameter names to values')
            params = {}
            _collect_params(value, '', source, params)
            entries.append((node_key, params))
        elif isinstance(value, _Map):
            _walk_node_level(value, path + [key.value], source, entries)
        else:
            raise ParameterFileError(
                f"{source}, line {key.line}: '{key.value}' has a value before {PARAMS_KEY}; "
                f"expected 'node_name: {{{PARAMS_KEY}: {{name: value}}}}'")


def parse_parameter_text(text: str, source: str = '<string>') -> list[tuple[str, dict[str, ParameterOverride]]]:
    """Parse parameter-file text into ``[(node_key, {name: ParameterOverride})]`` in file order."""
    entries: list = []
    for document in _compose(text, source):
        if isinstance(document, _Scalar) and document.value == '' and document.style is None:
            continue  # empty document
        if not isinstance(document, _Map):
            raise ParameterFileError(
                f'{source}, line {document.line}: the top level must be a map of node names, '
                f"e.g. '/**: {{{PARAMS_KEY}: {{name: value}}}}'")
        _walk_node_level(document, [], source, entries)
    return entries


def parse_parameter_file(path: str | os.PathLike) -> list[tuple[str, dict[str, ParameterOverride]]]:
    """Read one parameter file; see :func:`parse_parameter_text`."""
    path = os.fspath(path)
    try:
        with open(path, encoding='utf-8') as handle:
            text = handle.read()
    except OSError as err:
        raise ParameterFileError(f'parameter file {path}: cannot read it: {err.strerror}') from None
    return parse_parameter_text(text, path)


class ParameterTable:
    """The merged table rcl builds from several files: node key -> parameters, ordered."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, ParameterOverride]] = {}

    def add_entries(self, entries: Iterable[tuple[str, dict[str, ParameterOverride]]]) -> None:
        for node_key, params in entries:
            self._entries.setdefault(node_key, {}).update(params)

    def add_file(self, path: str | os.PathLike) -> None:
        self.add_entries(parse_parameter_file(path))

    @property
    def keys(self) -> list[str]:
        return list(self._entries)

    def for_node(self, node_name: str, namespace: str | None = '/') -> dict[str, ParameterOverride]:
        """Parameters for one node: matching entries applied in table order."""
        fqn = fully_qualified_name(node_name, namespace)
        result: dict[str, ParameterOverride] = {}
        for node_key, params in self._entries.items():
            if node_key_matches(node_key, fqn):
                result.update(params)
        return result


def load_parameter_files_with_sources(
    paths: Sequence[str | os.PathLike], node_name: str, namespace: str | None = '/',
) -> dict[str, ParameterOverride]:
    """Like :func:`load_parameter_files`, keeping each value's source for error messages."""
    table = ParameterTable()
    for path in paths:
        table.add_file(path)
    return table.for_node(node_name, namespace)


def load_parameter_files(
    paths: Sequence[str | os.PathLike], node_name: str, namespace: str | None = '/',
) -> dict[str, Any]:
    """Parameter values for node ``namespace/node_name`` from ROS 2 parameter files.

    Files are merged in order (later files win for the same node key); raises
    ParameterFileError naming the file and line when a file is not valid ROS 2 parameter YAML.
    """
    return {name: item.value for name, item in
            load_parameter_files_with_sources(paths, node_name, namespace).items()}


# ---------------------------------------------------------------------------------------------
# -p values
# ---------------------------------------------------------------------------------------------

def parse_parameter_value(text: str, where: str = '-p', name: str = 'value') -> Any:
    """Type the value of ``-p name:=value`` as rcl does (YAML scalar or flow list).

    ``where`` starts error messages (e.g. "-p 'rate:=abc'"); ``name`` is the parameter's name.
    """
    if text == '':
        raise ParameterFileError(f"{where}: no value (write '' for an empty string)")
    documents = _compose(text, where)
    if len(documents) != 1:
        raise ParameterFileError(f'{where}: expected one value, got {len(documents)} YAML documents')
    node = documents[0]
    if isinstance(node, _Scalar):
        return _type_scalar(node.value, node.style, node.tag, where)
    if isinstance(node, _Seq):
        return _array_value(node, where, name)
    raise ParameterFileError(
        f'{where}: a parameter value must be a scalar or a list like [1, 2]; maps are not allowed')


def format_parameter_value(value: Any) -> str:
    """Render a value as YAML flow text that :func:`parse_parameter_value` types back the same."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            return '.nan'
        if math.isinf(value):
            return '.inf' if value > 0 else '-.inf'
        text = repr(value)
        return text if ('.' in text or 'e' in text) else text + '.0'
    if isinstance(value, str):
        if any(ord(ch) < 32 for ch in value):
            return json.dumps(value, ensure_ascii=False)  # a valid YAML double-quoted scalar
        try:  # plain when it reads back as the same text (easier to read in ps and logs)
            if value and type(parse_parameter_value(value)) is str and parse_parameter_value(value) == value:
                return value
        except ParameterFileError:
            pass
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError('an empty list cannot be passed as a ROS 2 parameter value')
        return '[' + ', '.join(format_parameter_value(v) for v in value) + ']'
    raise TypeError(f'cannot render {type(value).__name__} {value!r} as a ROS 2 parameter value')


# ---------------------------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------------------------

def parameter_value_type(value: Any) -> str:
    """The ROS parameter type name of a Python value: 'bool', 'integer', 'double', 'string',
    'byte_array', 'bool_array', 'integer_array', 'double_array', 'string_array' (or 'not_set'
    for None). Raises TypeError for values ROS 2 cannot hold (mixed or empty lists, dicts...)."""
    if value is None:
        return 'not_set'
    if isinstance(value, bool):
        return 'bool'
    if isinstance(value, numbers.Integral):
        return 'integer'
    if isinstance(value, numbers.Real):
        return 'double'
    if isinstance(value, str):
        return 'string'
    if isinstance(value, (bytes, bytearray)):
        return 'byte_array'
    if isinstance(value, (list, tuple)):
        if not value:
            raise TypeError(
                'an empty list has no ROS 2 parameter type; declare the parameter with a typed '
                "default (e.g. [0.0]) or a type name ('double_array')")
        if all(isinstance(v, bytes) and len(v) == 1 for v in value):
            return 'byte_array'
        kinds = {parameter_value_type(v) for v in value}
        if len(kinds) == 1 and next(iter(kinds)) in _SCALAR_OF_ARRAY.values():
            return next(iter(kinds)) + '_array'
        raise TypeError(
            f'a ROS 2 array parameter holds one type (bool, integer, double or string); '
            f'got {sorted(kinds)} in {value!r}')
    raise TypeError(
        f'{type(value).__name__} {value!r} is not a ROS 2 parameter type '
        f'(one of: {", ".join(PARAMETER_TYPES)})')


def _expected_type(declared: Any) -> str:
    if isinstance(declared, enum.Enum):  # rclpy's Parameter.Type.DOUBLE and look-alikes
        name = declared.name.lower()
        if name in PARAMETER_TYPES or name == 'not_set':
            return name
        raise TypeError(f'{declared!r} is not a ROS 2 parameter type')
    if isinstance(declared, str) and (declared in PARAMETER_TYPES or declared in _TYPE_ALIASES):
        return _TYPE_ALIASES.get(declared, declared)
    if isinstance(declared, type):
        for python_type, name in ((bool, 'bool'), (int, 'integer'), (float, 'double'),
                                  (str, 'string'), (bytes, 'byte_array')):
            if issubclass(declared, python_type):
                return name
        raise TypeError(f'{declared.__name__} is not a ROS 2 parameter type')
    return parameter_value_type(declared)


def _describe(value: Any) -> str:
    try:
        kind = parameter_value_type(value)
    except TypeError:
        kind = type(value).__name__
    shown = repr(value) if not isinstance(value, str) else "'" + value + "'"
    if len(shown) > 60:
        shown = shown[:57] + '...'
    return f'{kind.replace("_", " ")} {shown}'


def check_parameter_type(
    name: str, declared: Any, value: Any, source: str | None = None, *, int_as_double: bool = True,
) -> Any:
    """Return ``value`` if it fits the declared type, else raise InvalidParameterTypeError.

    ``declared`` is the declared default value, a type name from PARAMETER_TYPES, a Python
    type, or a parameter-type enum member (rclpy's ``Parameter.Type.DOUBLE``). An integer is accepted
    (and converted) for a double parameter, and an integer list for
    a double array, when ``int_as_double`` (the default, because YAML users write 1 for 1.0;
    rclpy would reject it). ``source`` ("file F, line 3", "-p x:=1") goes into the message.
    """
    expected = _expected_type(declared)
    if expected == 'not_set':
        parameter_value_type(value)  # any ROS type is fine; still reject non-ROS values
        return value
    try:
        actual = parameter_value_type(value)
    except TypeError as err:
        raise InvalidParameterTypeError(
            f"parameter '{name}' expects {expected.replace('_', ' ')}, got {err}"
            + (f' (from {source})' if source else '')) from None
    if actual == expected:
        return value
    if int_as_double and expected == 'double' and actual == 'integer':
        return float(value)
    if int_as_double and expected == 'double_array' and actual == 'integer_array':
        return [float(v) for v in value]
    raise InvalidParameterTypeError(
        f"parameter '{name}' expects {expected.replace('_', ' ')}, got {_describe(value)}"
        + (f' (from {source})' if source else ''))
