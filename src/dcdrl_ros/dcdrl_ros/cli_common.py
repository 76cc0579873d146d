"""What the `dcdrl` verbs share: the graph arguments, a runtime to query the graph with, rosidl-style repr."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

DEFAULT_SPIN_TIME = 1.5  # seconds of discovery before answering (ros2 without its daemon waits 0.5 s)


def add_graph_arguments(parser: argparse.ArgumentParser, spin_time: float = DEFAULT_SPIN_TIME) -> None:
    """ros2cli's node-strategy arguments: --spin-time, and --no-daemon accepted (there is no daemon here)."""
    parser.add_argument('--spin-time', type=float, default=spin_time,
                        help=f'seconds to wait for discovery (default: {spin_time})')
    parser.add_argument('--no-daemon', action='store_true', help='accepted for ros2 compatibility (no daemon)')


def positive_float(text: str) -> float:
    """argparse type: a float > 0 (rates, frequencies, time-outs)."""
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f'{text} is not positive')
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a float >= 0 (offsets, delays), as the ros2 verbs refuse negative ones."""
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'{text} is negative')
    return value


def fail(message: str) -> int:
    """What ros2cli does with an error string a verb returns: print it to stderr, exit code 1."""
    sys.stderr.write(message.rstrip('\n') + '\n')
    return 1


@contextmanager
def graph_session(node_name: str | None = None) -> Iterator[tuple[Any, Any | None, Any]]:
    """(runtime, node or None, GraphWatcher) on a fresh runtime context, shut down afterwards.

    A hidden node name ('_dcdrl_...') keeps the tool itself out of `node list`, as ros2cli's '_ros2cli_' does.
    """
    from dcdrl_ros import runtime
    from dcdrl_ros.graph import GraphWatcher
    runtime.init(args=[])
    watcher = None
    try:
        node = runtime.Node(node_name) if node_name else None
        watcher = GraphWatcher(runtime.default_context)
        yield runtime, node, watcher
    finally:
        if watcher is not None and runtime.ok():
            watcher.close()
        runtime.try_shutdown()


# --- repr as rosidl-generated Python classes print themselves (`ros2 service call`, `ros2 topic pub`) ---
_NUMERIC = {'float32', 'float64', 'int8', 'uint8', 'char', 'int16', 'uint16', 'int32', 'uint32', 'int64',
            'uint64'}


def ros_repr(message: Any) -> str:
    """``pkg.msg.Name(field=value, ...)`` the way rosidl_generator_py's __repr__ writes it: numeric
    sequences as plain lists of Python numbers, fixed-size numeric arrays as numpy arrays."""
    spec = message._spec
    parts = [f'{f.name}={_field_repr(getattr(message, f.name), f.type)}' for f in spec.fields]
    return f'{spec.package}.{spec.kind}.{spec.name}({", ".join(parts)})'


def _field_repr(value: Any, ftype: Any) -> str:
    if ftype.is_message:
        if ftype.is_array:
            return '[' + ', '.join(ros_repr(v) for v in value) + ']'
        return ros_repr(value)
    if not ftype.is_array:
        if ftype.base == 'byte':
            return repr(bytes([int(value)]))
        return repr(_python_scalar(value))
    if ftype.base in _NUMERIC:
        if ftype.array_size is not None:  # rclpy keeps fixed-size numeric arrays as numpy arrays
            from dcdrl_ros import idl
            return repr(np.asarray(value, dtype=np.dtype(idl.PRIMITIVES[ftype.base][0]).newbyteorder('=')))
        return '[' + ', '.join(repr(_python_scalar(v)) for v in value) + ']'
    if ftype.base == 'byte':
        return repr([bytes([int(v)]) for v in value])
    return repr([_python_scalar(v) for v in value])


_ARRAY_TYPECODES = {'float32': 'f', 'float64': 'd', 'int8': 'b', 'uint8': 'B', 'char': 'B', 'int16': 'h',
                    'uint16': 'H', 'int32': 'i', 'uint32': 'I', 'int64': 'q', 'uint64': 'Q'}


def field_str(value: Any, ftype: Any) -> str:
    """str() of a field value as rclpy holds it (what `ros2 topic echo --field` prints for a field that
    is not a message): numeric sequences are array.array, fixed numeric arrays numpy arrays."""
    if ftype.is_array and not ftype.is_message and ftype.base in _NUMERIC:
        if ftype.array_size is not None:
            from dcdrl_ros import idl
            return str(np.asarray(value, dtype=np.dtype(idl.PRIMITIVES[ftype.base][0]).newbyteorder('=')))
        items = ', '.join(repr(_python_scalar(v)) for v in value)
        return f"array('{_ARRAY_TYPECODES[ftype.base]}'" + (f', [{items}])' if items else ')')
    if ftype.is_array or ftype.base == 'byte':
        return _field_repr(value, ftype)
    return str(_python_scalar(value))


def _python_scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
