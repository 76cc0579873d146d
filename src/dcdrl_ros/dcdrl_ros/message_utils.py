"""Messages to and from plain data (YAML/dicts), as rosidl_runtime_py does for rclpy messages."""
from __future__ import annotations

from typing import Any

import numpy as np

from dcdrl_ros.messages import Message


def message_to_dict(message: Message, truncate_length: int | None = None) -> dict[str, Any]:
    """Plain Python data for YAML output; arrays longer than truncate_length are elided."""
    out: dict[str, Any] = {}
    for field in message._spec.fields:
        out[field.name] = _to_plain(getattr(message, field.name), truncate_length)
    return out


def _to_plain(value: Any, truncate_length: int | None) -> Any:
    if isinstance(value, Message):
        return message_to_dict(value, truncate_length)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        if truncate_length is not None and len(value) > truncate_length:
            return [_to_plain(v, truncate_length) for v in value[:truncate_length]] + ['...']
        return [_to_plain(v, truncate_length) for v in value]
    if isinstance(value, str) and truncate_length is not None and len(value) > truncate_length:
        return value[:truncate_length] + '...'
    if isinstance(value, np.generic):
        return value.item()
    return value


def set_message_fields(message: Message, values: Any) -> Message:
    """Fills a message from a dict (what `topic pub` reads from YAML); unknown fields are errors."""
    if values is None:
        return message
    if not isinstance(values, dict):
        raise ValueError(f'{message._spec.full_name}: expected a mapping of field values, got {values!r}')
    fields = {f.name: f for f in message._spec.fields}
    for name, value in values.items():
        if name not in fields:
            raise ValueError(f'{message._spec.full_name} has no field {name!r}; fields: {list(fields)}')
        ftype = fields[name].type
        if ftype.is_message:
            nested_class = type(getattr(message, name)) if not ftype.is_array else None
            if ftype.is_array:
                from dcdrl_ros.messages import get_interface
                element = get_interface(f'{ftype.package}/msg/{ftype.base}')
                setattr(message, name, [set_message_fields(element(), item) for item in value or []])
            else:
                setattr(message, name, set_message_fields(nested_class(), value))
        elif ftype.is_primitive and ftype.is_array:
            setattr(message, name, np.asarray(value, dtype=getattr(message, name).dtype))
        elif ftype.is_primitive and ftype.base.startswith('float'):
            setattr(message, name, float(value))
        else:
            setattr(message, name, value)
    return message
