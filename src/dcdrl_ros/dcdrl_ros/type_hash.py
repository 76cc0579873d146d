"""ROS 2 type hashes (REP-2011, version RIHS01) of our parsed .msg/.srv definitions.

Since Jazzy every ROS 2 endpoint announces the hash of its type in USER_DATA as
``typehash=RIHS01_<64 hex>;``; rmw_cyclonedds_cpp warns once per endpoint that has no USER_DATA
("Failed to parse type hash ..."), and `ros2 topic info -v` prints the hash. rosidl computes it at
build time (rosidl_generator_type_description); we compute the same from the same definitions:

1. A type description: the type and every type it references (transitively, sorted by name), each
   as its name and fields; a field as name and type {type_id, capacity, string_capacity,
   nested_type_name} with the ids of type_description_interfaces/msg/FieldType. The .msg -> IDL
   step of rosidl decides some of it: ``char`` is uint8, ``byte`` is octet, an empty message has
   one uint8 field ``structure_needs_at_least_one_member``. Default values are not hashed.
2. That description as JSON with Python's json.dumps, separators ', ' and ': ', keys in the order
   above (not sorted), ASCII only.
3. RIHS01_ + the SHA-256 of it in hex.

No ROS import: works from .msg/.srv files alone (tests check it against rosidl's generated JSON).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from dcdrl_ros import idl

RIHS01_PREFIX = 'RIHS01_'
USER_DATA_KEY = 'typehash'

# type_description_interfaces/msg/FieldType: element ids, and what an array kind adds to them.
_ELEMENT_TYPE_IDS = {
    'nested': 1, 'int8': 2, 'uint8': 3, 'char': 3, 'int16': 4, 'uint16': 5, 'int32': 6, 'uint32': 7,
    'int64': 8, 'uint64': 9, 'float32': 10, 'float64': 11, 'bool': 15, 'byte': 16,
    'string': 17, 'wstring': 18, 'bounded string': 21, 'bounded wstring': 22,
}
_FIXED_ARRAY, _BOUNDED_SEQUENCE, _UNBOUNDED_SEQUENCE = 48, 96, 144
# What rosidl puts into a message without fields (DDS structs need a member).
_PLACEHOLDER_FIELD = idl.Field('structure_needs_at_least_one_member', idl.FieldType('uint8'))

SpecResolver = Callable[[str, str], idl.MessageSpec]  # (package, message name) -> its spec


def field_type_description(ftype: idl.FieldType) -> dict:
    if ftype.is_message:
        element = 'nested'
    elif ftype.is_string and ftype.string_bound is not None:
        element = f'bounded {ftype.base}'
    else:
        element = ftype.base
    type_id = _ELEMENT_TYPE_IDS[element]
    capacity = 0
    if ftype.array_size is not None:
        type_id, capacity = type_id + _FIXED_ARRAY, ftype.array_size
    elif ftype.upper_bound is not None:
        type_id, capacity = type_id + _BOUNDED_SEQUENCE, ftype.upper_bound
    elif ftype.is_array:
        type_id += _UNBOUNDED_SEQUENCE
    return {
        'type_id': type_id,
        'capacity': capacity,
        'string_capacity': ftype.string_bound or 0,
        'nested_type_name': nested_type_name(ftype) if ftype.is_message else '',
    }


def nested_type_name(ftype: idl.FieldType) -> str:
    return f'{ftype.package}/msg/{ftype.base}'


def individual_type_description(spec: idl.MessageSpec) -> dict:
    """One type, without default values (which the hash leaves out)."""
    return {
        'type_name': spec.full_name,
        'fields': [{'name': f.name, 'type': field_type_description(f.type)}
                   for f in spec.fields or [_PLACEHOLDER_FIELD]],
    }


def type_description(spec: idl.MessageSpec, resolve: SpecResolver) -> dict:
    """The hashed form of ``spec``'s full type description (REP-2011 TypeDescription)."""
    referenced: dict[str, dict] = {}
    pending = [f.type for f in spec.fields if f.type.is_message]
    while pending:
        ftype = pending.pop()
        name = nested_type_name(ftype)
        if name in referenced:
            continue
        nested = resolve(ftype.package, ftype.base)
        referenced[name] = individual_type_description(nested)
        pending.extend(f.type for f in nested.fields if f.type.is_message)
    return {
        'type_description': individual_type_description(spec),
        'referenced_type_descriptions': [referenced[name] for name in sorted(referenced)],
    }


def type_hash(spec: idl.MessageSpec, resolve: SpecResolver) -> str:
    """'RIHS01_<sha256 hex>' of the message (or service request/response) ``spec``."""
    text = json.dumps(type_description(spec, resolve), ensure_ascii=True, separators=(', ', ': '),
                      sort_keys=False, allow_nan=False)
    return RIHS01_PREFIX + hashlib.sha256(text.encode('utf-8')).hexdigest()


def user_data_entry(hash_string: str) -> str:
    """The USER_DATA item an endpoint of this type carries, as rmw_dds_common encodes it."""
    return f'{USER_DATA_KEY}={hash_string};'
