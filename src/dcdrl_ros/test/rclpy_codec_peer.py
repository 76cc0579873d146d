"""The rclpy side of test_wire_conformance: run on the real ROS 2 (rclpy and rosidl classes), never in
the test process, which stays on our runtime.

Reads JSON {"cases": [{"type": "pkg/msg/Name", "values": {...}, "ours": "<hex>"}, ...]} from the file
named by argv[1] and prints one JSON line per case:
{"serialized": hex of rclpy serialising a message built from "values",
 "read": the fields rclpy reads from our bytes "ours" (plain data), "reserialized": hex of that
 message serialised again} or {"error": "..."}.
"""
import importlib
import json
import sys

from rclpy.serialization import deserialize_message, serialize_message
from rosidl_parser.definition import AbstractNestedType, BasicType, NamespacedType


def interface_class(type_name):
    package, kind, name = type_name.split('/')
    if kind == 'srv':
        service, half = name.rsplit('_', 1)
        return getattr(getattr(importlib.import_module(f'{package}.srv'), service), half)
    return getattr(importlib.import_module(f'{package}.msg'), name)


def nested_class(slot):
    return getattr(importlib.import_module('.'.join(slot.namespaces)), slot.name)


def is_octet(slot):
    return isinstance(slot, BasicType) and slot.typename == 'octet'


def to_field(slot, value):
    """Plain data as rclpy wants it; 'byte' (octet) fields take bytes of length 1, not ints."""
    if isinstance(slot, AbstractNestedType):
        return [to_field(slot.value_type, item) for item in value]
    if isinstance(slot, NamespacedType):
        return build(nested_class(slot), value)
    if is_octet(slot):
        return bytes([value])
    return value


def build(cls, values):
    message = cls()
    for (name, _), slot in zip(cls.get_fields_and_field_types().items(), cls.SLOT_TYPES):
        setattr(message, name, to_field(slot, values[name]))
    return message


def to_plain(slot, value):
    if isinstance(slot, AbstractNestedType):
        return [to_plain(slot.value_type, item) for item in value]
    if isinstance(slot, NamespacedType):
        return plain(value)
    if is_octet(slot):
        return value[0]
    if hasattr(value, 'item'):  # numpy scalars
        return value.item()
    return value


def plain(message):
    return {name: to_plain(slot, getattr(message, name))
            for (name, _), slot in zip(message.get_fields_and_field_types().items(), message.SLOT_TYPES)}


def run_case(case):
    cls = interface_class(case['type'])
    theirs = serialize_message(build(cls, case['values']))
    read = deserialize_message(bytes.fromhex(case['ours']), cls)
    return {'serialized': bytes(theirs).hex(), 'read': plain(read),
            'reserialized': bytes(serialize_message(read)).hex()}


def main():
    with open(sys.argv[1], encoding='utf-8') as handle:
        cases = json.load(handle)['cases']
    for case in cases:
        try:
            result = run_case(case)
        except Exception as error:  # reported per case: the test names the type that failed
            result = {'error': f'{type(error).__name__}: {error}'}
        print(json.dumps(result), flush=True)


if __name__ == '__main__':
    main()
