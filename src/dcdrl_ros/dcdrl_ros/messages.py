"""Message classes and their CDR codec, built at import time from .msg/.srv files.

Used by the ROS-free backend. Classes look like rclpy's generated ones (keyword
constructor, attributes, constants as class attributes, ``Service.Request``), and
serialise to exactly the bytes rmw_cyclonedds_cpp puts on the wire: XCDR1,
little-endian, with the 4-byte encapsulation header 00 01 00 00.

Numeric arrays (float32[], uint8[] ...) are numpy arrays; they are written and read
with one ``tobytes``/``frombuffer`` each, never element by element.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import struct
import sys
import threading
import types
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from dcdrl_ros import idl

ENCAPSULATION_CDR_LE = b'\x00\x01\x00\x00'
HEADER_SIZE = len(ENCAPSULATION_CDR_LE)

_SCALAR_FORMATS = {
    'bool': '?', 'byte': 'B', 'char': 'B', 'int8': 'b', 'uint8': 'B', 'int16': '<h',
    'uint16': '<H', 'int32': '<i', 'uint32': '<I', 'int64': '<q', 'uint64': '<Q',
    'float32': '<f', 'float64': '<d',
}
_UINT32 = struct.Struct('<I')


class InterfaceNotFoundError(LookupError):
    """No .msg/.srv definition for the requested type on the interface search path."""


class SerializationError(ValueError):
    """A message field holds a value that cannot be serialised as its declared type."""


class Message:
    """Base of every generated message class."""

    __slots__ = ()
    _spec: idl.MessageSpec
    _field_names: tuple[str, ...] = ()
    _defaults: tuple[Callable[[], Any], ...] = ()
    _codec: Codec
    _type_hash: str  # set on each class by get_type_hash, the first time

    def __init__(self, **kwargs: Any) -> None:
        for name, make_default in zip(self._field_names, self._defaults):
            setattr(self, name, kwargs.pop(name) if name in kwargs else make_default())
        if kwargs:
            raise TypeError(f'{self._spec.full_name} has no field(s) {sorted(kwargs)}; '
                            f'fields are {list(self._field_names)}')

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        for name in self._field_names:
            mine, theirs = getattr(self, name), getattr(other, name)
            if isinstance(mine, np.ndarray) or isinstance(theirs, np.ndarray):
                if not np.array_equal(np.asarray(mine), np.asarray(theirs)):
                    return False
            elif mine != theirs:
                return False
        return True

    __hash__ = None  # mutable, like rclpy messages

    def __repr__(self) -> str:
        parts = ', '.join(f'{name}={_short_repr(getattr(self, name))}' for name in self._field_names)
        return f'{self._spec.package}.{self._spec.kind}.{self._spec.name}({parts})'

    @classmethod
    def get_fields_and_field_types(cls) -> dict[str, str]:
        return {f.name: str(f.type) for f in cls._spec.fields}

    def serialize(self) -> bytes:
        return self._codec.encode(self)

    @classmethod
    def deserialize(cls, data: bytes) -> Message:
        return cls._codec.decode(data)

    @classmethod
    def get_type_hash(cls) -> str:
        """'RIHS01_<hex>': the REP-2011 hash rosidl gives this type (endpoints announce it in USER_DATA)."""
        cached = cls.__dict__.get('_type_hash')
        if cached is None:
            from dcdrl_ros.type_hash import type_hash
            resolve = cls._codec.resolve
            cached = type_hash(cls._spec, lambda package, name: resolve(package, name)._spec)
            cls._type_hash = cached
        return cached


def _short_repr(value: Any) -> str:
    if isinstance(value, np.ndarray) and value.size > 8:
        return f'array(shape={value.shape}, dtype={value.dtype})'
    return repr(value)


class ServiceType:
    """Base of generated service classes: ``Service.Request`` and ``Service.Response``."""

    Request: type[Message]
    Response: type[Message]
    _spec: idl.ServiceSpec


# ---------------------------------------------------------------------------
# Codec: per-field writers and readers built once per type.
# ---------------------------------------------------------------------------
Writer = Callable[[bytearray, Any], None]
Reader = Callable[[bytes, int], tuple[Any, int]]


def _pad(buffer: bytearray, alignment: int) -> None:
    remainder = (len(buffer) - HEADER_SIZE) % alignment
    if remainder:
        buffer.extend(b'\x00' * (alignment - remainder))


def _aligned(pos: int, alignment: int) -> int:
    """Aligns an absolute position in a stream that starts with the 4-byte header."""
    remainder = (pos - HEADER_SIZE) % alignment
    return pos + (alignment - remainder if remainder else 0)


class Codec:
    """Encodes and decodes one message type to and from CDR bytes."""

    def __init__(self, spec: idl.MessageSpec, resolve: Callable[[str, str], type[Message]],
                 header_fields: Iterable[tuple[str, str]] = ()) -> None:
        self.spec = spec
        self.resolve = resolve  # (package, name) -> message class, for nested types
        self._writers: list[tuple[str, Writer]] = []
        self._readers: list[tuple[str, Reader]] = []
        for field in spec.fields:
            writer, reader = self._field_codec(field)
            self._writers.append((field.name, writer))
            self._readers.append((field.name, reader))
        if not spec.fields:  # DDS needs at least one member
            writer, reader = _scalar_codec('uint8')
            self._writers.append(('', lambda buffer, _value: writer(buffer, 0)))
            self._readers.append(('', reader))

    # -- public API ------------------------------------------------------------------
    def encode(self, message: Message, prefix: bytes = b'') -> bytes:
        """Serialises with the encapsulation header; ``prefix`` is raw bytes after it
        (the service request header)."""
        return bytes(self.encode_for_dds(message, prefix, pad=False))

    def encode_for_dds(self, message: Message, prefix: bytes = b'', pad: bool = True) -> bytearray:
        """The bytes a DDS write takes, built in one buffer and not copied again: ``pad`` appends the
        zeros that make the length a multiple of 4, as Cyclone wants a serialized sample."""
        buffer = bytearray(ENCAPSULATION_CDR_LE)
        buffer += prefix
        self.write(buffer, message)
        if pad and len(buffer) % 4:
            buffer += bytes(-len(buffer) % 4)
        return buffer

    def decode(self, data: bytes, offset: int = HEADER_SIZE) -> Message:
        if len(data) < HEADER_SIZE or data[1] != 1:
            raise SerializationError(
                f'{self.spec.full_name}: not little-endian plain CDR (encapsulation {bytes(data[:4]).hex()})')
        try:
            message, _ = self.read(data, offset)
        except (struct.error, ValueError, IndexError, UnicodeDecodeError) as error:
            raise SerializationError(f'{self.spec.full_name}: malformed CDR data: {error}') from None
        return message

    def write(self, buffer: bytearray, message: Message) -> None:
        for name, writer in self._writers:
            try:
                writer(buffer, getattr(message, name) if name else None)
            except SerializationError as error:
                raise SerializationError(f'{name}.{error}') from None
            except (struct.error, TypeError, ValueError, OverflowError, AttributeError) as error:
                raise SerializationError(
                    f'{name}: {error} (field type {self._type_of(name)})') from None

    def read(self, data: bytes, pos: int) -> tuple[Message, int]:
        message_class = self.resolve(self.spec.package, self.spec.name)
        message = message_class.__new__(message_class)
        for name, reader in self._readers:
            value, pos = reader(data, pos)
            if name:
                setattr(message, name, value)
        return message, pos

    def _type_of(self, name: str) -> str:
        for field in self.spec.fields:
            if field.name == name:
                return str(field.type)
        return '?'

    # -- building ----------------------------------------------------------------
    def _field_codec(self, field: idl.Field) -> tuple[Writer, Reader]:
        ftype = field.type
        if ftype.is_primitive:
            if ftype.is_array:
                return _primitive_array_codec(ftype)
            return _scalar_codec(ftype.base)
        if ftype.is_string:
            if ftype.base == 'wstring':
                raise NotImplementedError('wstring fields are not supported by the ROS-free runtime')
            element = _string_codec(ftype.string_bound)
        else:
            element = self._message_codec(ftype.package, ftype.base)
        if not ftype.is_array:
            return element
        return _list_codec(element, ftype.array_size, ftype.upper_bound)

    def _message_codec(self, package: str, name: str) -> tuple[Writer, Reader]:
        # Resolved lazily: nested types are loaded on first use, not at class build time.
        def write(buffer: bytearray, value: Any) -> None:
            nested = self.resolve(package, name)
            if not isinstance(value, nested):
                raise SerializationError(f'expected {nested._spec.full_name}, got {type(value).__name__}')
            nested._codec.write(buffer, value)

        def read(data: bytes, pos: int) -> tuple[Any, int]:
            return self.resolve(package, name)._codec.read(data, pos)
        return write, read


def _scalar_codec(type_name: str) -> tuple[Writer, Reader]:
    packer = struct.Struct(_SCALAR_FORMATS[type_name])
    size = packer.size
    pack, unpack_from = packer.pack, packer.unpack_from
    is_float = type_name.startswith('float')

    def write(buffer: bytearray, value: Any) -> None:
        if size > 1:
            _pad(buffer, size)
        if type_name == 'bool':
            if not isinstance(value, (bool, np.bool_)):
                raise SerializationError(f'expected bool, got {type(value).__name__}')
        elif type_name == 'byte' and isinstance(value, bytes) and len(value) == 1:
            value = value[0]  # rclpy represents 'byte' as bytes of length 1
        elif not is_float and isinstance(value, float):
            raise SerializationError(f'expected integer ({type_name}), got float {value!r}')
        buffer += pack(value)

    def read(data: bytes, pos: int) -> tuple[Any, int]:
        if size > 1:
            pos = _aligned(pos, size)
        return unpack_from(data, pos)[0], pos + size
    return write, read


def _string_codec(bound: int | None) -> tuple[Writer, Reader]:
    def write(buffer: bytearray, value: Any) -> None:
        if not isinstance(value, str):
            raise SerializationError(f'expected str, got {type(value).__name__}')
        encoded = value.encode('utf-8')
        if bound is not None and len(value) > bound:
            raise SerializationError(f'string longer than its bound {bound}')
        _pad(buffer, 4)
        buffer += _UINT32.pack(len(encoded) + 1)
        buffer += encoded
        buffer += b'\x00'

    def read(data: bytes, pos: int) -> tuple[Any, int]:
        pos = _aligned(pos, 4)
        (length,) = _UINT32.unpack_from(data, pos)
        pos += 4
        if length == 0:  # tolerated: some writers send 0 for an empty string
            return '', pos
        end = pos + length
        if end > len(data):
            raise ValueError('string runs past the end of the data')
        return bytes(data[pos:end - 1]).decode('utf-8'), end
    return write, read


def _primitive_array_codec(ftype: idl.FieldType) -> tuple[Writer, Reader]:
    dtype = np.dtype(idl.PRIMITIVES[ftype.base][0])
    itemsize = dtype.itemsize
    fixed, bound = ftype.array_size, ftype.upper_bound

    def write(buffer: bytearray, value: Any) -> None:
        if isinstance(value, (bytes, bytearray, memoryview)) and itemsize == 1:
            array = np.frombuffer(value, dtype=dtype)
        else:
            if isinstance(value, str):
                raise SerializationError(f'expected a sequence of {ftype.base}, got str')
            array = np.asarray(value)
            if array.ndim != 1:
                raise SerializationError(f'expected a flat sequence of {ftype.base}, got shape {array.shape}')
            if array.dtype != dtype:
                # np.asarray([]) is float64: an empty list is an empty sequence of any type, as in rclpy.
                if dtype.kind in 'iu' and array.dtype.kind == 'f' and array.size:
                    raise SerializationError(f'expected integers ({ftype.base}), got floats')
                array = array.astype(dtype)
        count = array.shape[0]
        if fixed is not None:
            if count != fixed:
                raise SerializationError(f'expected exactly {fixed} elements, got {count}')
        else:
            if bound is not None and count > bound:
                raise SerializationError(f'{count} elements exceed the bound {bound}')
            _pad(buffer, 4)
            buffer += _UINT32.pack(count)
        if count:
            if itemsize > 1:
                _pad(buffer, itemsize)
            # The array's own buffer, not tobytes(): one copy of a 178 KB tensor instead of two.
            buffer += np.ascontiguousarray(array).data

    def read(data: bytes, pos: int) -> tuple[Any, int]:
        if fixed is None:
            pos = _aligned(pos, 4)
            (count,) = _UINT32.unpack_from(data, pos)
            pos += 4
        else:
            count = fixed
        if count and itemsize > 1:
            pos = _aligned(pos, itemsize)
        end = pos + count * itemsize
        if end > len(data):
            raise ValueError(f'array of {count} elements runs past the end of the data')
        return np.frombuffer(data, dtype=dtype, count=count, offset=pos).copy(), end
    return write, read


def _list_codec(element: tuple[Writer, Reader], fixed: int | None,
                bound: int | None) -> tuple[Writer, Reader]:
    write_element, read_element = element

    def write(buffer: bytearray, value: Any) -> None:
        if isinstance(value, (str, bytes)):
            raise SerializationError(f'expected a list, got {type(value).__name__}')
        items = list(value)
        if fixed is not None:
            if len(items) != fixed:
                raise SerializationError(f'expected exactly {fixed} elements, got {len(items)}')
        else:
            if bound is not None and len(items) > bound:
                raise SerializationError(f'{len(items)} elements exceed the bound {bound}')
            _pad(buffer, 4)
            buffer += _UINT32.pack(len(items))
        for index, item in enumerate(items):
            try:
                write_element(buffer, item)
            except SerializationError as error:
                raise SerializationError(f'[{index}] {error}') from None

    def read(data: bytes, pos: int) -> tuple[Any, int]:
        if fixed is None:
            pos = _aligned(pos, 4)
            (count,) = _UINT32.unpack_from(data, pos)
            pos += 4
            if count > len(data) - pos:  # every element takes at least one byte
                raise ValueError(f'sequence length {count} exceeds the data')
        else:
            count = fixed
        items = []
        for _ in range(count):
            item, pos = read_element(data, pos)
            items.append(item)
        return items, pos
    return write, read


# ---------------------------------------------------------------------------
# Class building and lookup.
# ---------------------------------------------------------------------------
def _default_factory(field: idl.Field, resolve: Callable[[str, str], type[Message]]) -> Callable[[], Any]:
    ftype = field.type
    if ftype.is_primitive:
        dtype = np.dtype(idl.PRIMITIVES[ftype.base][0])
        if ftype.is_array:
            initial = field.default if field.default is not None else (
                [0] * ftype.array_size if ftype.array_size else [])
            return lambda: np.array(initial, dtype=dtype)
        value = field.default
        if value is None:
            value = False if ftype.base == 'bool' else (0.0 if dtype.kind == 'f' else 0)
        return lambda: value
    if ftype.is_string:
        if ftype.is_array:
            initial = field.default or ([''] * ftype.array_size if ftype.array_size else [])
            return lambda: list(initial)
        text = field.default if field.default is not None else ''
        return lambda: text
    if ftype.is_array:
        if ftype.array_size:
            return lambda: [resolve(ftype.package, ftype.base)() for _ in range(ftype.array_size)]
        return list
    return lambda: resolve(ftype.package, ftype.base)()


class InterfaceRegistry:
    """Finds .msg/.srv files on a search path and builds classes once, thread-safely."""

    def __init__(self, search_path: list[str] | None = None) -> None:
        self._explicit_path = search_path
        self._messages: dict[tuple[str, str, str], type[Message]] = {}
        self._services: dict[tuple[str, str], type[ServiceType]] = {}
        self._lock = threading.RLock()

    @property
    def search_path(self) -> list[str]:
        if self._explicit_path is not None:
            return self._explicit_path
        from dcdrl_ros.workspace import interface_search_path
        return [str(p) for p in interface_search_path()]

    def find_file(self, package: str, kind: str, name: str) -> str:
        for root in self.search_path:
            candidate = os.path.join(root, package, kind, f'{name}.{kind}')
            if os.path.isfile(candidate):
                return candidate
        raise InterfaceNotFoundError(
            f'no definition of {package}/{kind}/{name} on the interface path {self.search_path}')

    def list_types(self, kind: str | None = None) -> list[str]:
        names: set[str] = set()
        for root in self.search_path:
            if not os.path.isdir(root):
                continue
            for package in os.listdir(root):
                for sub in ('msg', 'srv') if kind is None else (kind,):
                    folder = os.path.join(root, package, sub)
                    if os.path.isdir(folder):
                        names.update(f'{package}/{sub}/{f[:-4]}' for f in os.listdir(folder)
                                     if f.endswith('.' + sub))
        return sorted(names)

    def message(self, package: str, name: str) -> type[Message]:
        """The class of ``package/msg/name`` (or a service half such as ``Name_Request``)."""
        key = (package, 'msg', name)
        cls = self._messages.get(key)
        if cls is not None:
            return cls
        with self._lock:
            if key not in self._messages:
                for suffix in ('_Request', '_Response'):
                    if name.endswith(suffix):
                        service = self.service(package, name[:-len(suffix)])
                        return getattr(service, suffix[1:])
                with open(self.find_file(package, 'msg', name), encoding='utf-8') as handle:
                    spec = idl.parse_message(handle.read(), package, name)
                self._messages[key] = self._build(spec)
            return self._messages[key]

    def service(self, package: str, name: str) -> type[ServiceType]:
        key = (package, name)
        if key not in self._services:
            with self._lock:
                if key not in self._services:
                    with open(self.find_file(package, 'srv', name), encoding='utf-8') as handle:
                        spec = idl.parse_service(handle.read(), package, name)
                    request, response = self._build(spec.request), self._build(spec.response)
                    self._messages[(package, 'msg', spec.request.name)] = request
                    self._messages[(package, 'msg', spec.response.name)] = response
                    self._services[key] = type(name, (ServiceType,), {
                        'Request': request, 'Response': response, '_spec': spec,
                        '__module__': f'{package}.srv'})
        return self._services[key]

    def get(self, type_name: str) -> Any:
        """Looks up 'pkg/msg/Name', 'pkg/srv/Name' or 'pkg/Name' (a message)."""
        parts = type_name.strip('/').split('/')
        if len(parts) == 2:
            parts = [parts[0], 'msg', parts[1]]
        if len(parts) != 3 or parts[1] not in ('msg', 'srv'):
            raise InterfaceNotFoundError(f'invalid interface name {type_name!r}: use pkg/msg/Name or pkg/srv/Name')
        package, kind, name = parts
        return self.message(package, name) if kind == 'msg' else self.service(package, name)

    def _build(self, spec: idl.MessageSpec) -> type[Message]:
        def resolve(package: str, name: str) -> type[Message]:
            if (package, name) == (spec.package, spec.name):
                return cls
            return self.message(package, name)
        namespace: dict[str, Any] = {
            '__slots__': tuple(f.name for f in spec.fields),
            '__module__': f'{spec.package}.{spec.kind}',
            '_spec': spec,
            '_field_names': tuple(f.name for f in spec.fields),
            '_defaults': tuple(_default_factory(f, resolve) for f in spec.fields),
        }
        for constant in spec.constants:
            namespace[constant.name] = constant.value
        cls: type[Message] = type(spec.name, (Message,), namespace)
        cls._codec = Codec(spec, resolve)
        return cls


_default_registry = InterfaceRegistry()


def default_registry() -> InterfaceRegistry:
    return _default_registry


def get_interface(type_name: str) -> Any:
    """The class for 'pkg/msg/Name' or 'pkg/srv/Name' from the default registry."""
    return _default_registry.get(type_name)


# ---------------------------------------------------------------------------
# 'from <pkg>.msg import Name' without ROS.
# ---------------------------------------------------------------------------
class _InterfaceModule(types.ModuleType):
    """'<pkg>.msg' or '<pkg>.srv': classes are built on first attribute access."""

    def __init__(self, name: str, package: str, kind: str) -> None:
        super().__init__(name)
        self.__package__ = name
        self._interface_package = package
        self._interface_kind = kind

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith('__'):
            raise AttributeError(attribute)
        try:
            value = get_interface(f'{self._interface_package}/{self._interface_kind}/{attribute}')
        except InterfaceNotFoundError as error:
            raise AttributeError(str(error)) from None
        setattr(self, attribute, value)
        return value

    def __dir__(self) -> list[str]:
        prefix = f'{self._interface_package}/{self._interface_kind}/'
        return [t[len(prefix):] for t in default_registry().list_types(self._interface_kind)
                if t.startswith(prefix)]


class _InterfaceFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes 'from dcdrl_msgs.msg import X' work without ROS, for any interface package
    on the search path. It sits last on sys.meta_path, so real packages always win."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        parts = fullname.split('.')
        if len(parts) > 2 or (len(parts) == 2 and parts[1] not in ('msg', 'srv')):
            return None
        if not self._has_interfaces(parts[0]):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=len(parts) == 1)

    @staticmethod
    def _has_interfaces(package: str) -> bool:
        return any(os.path.isdir(os.path.join(root, package, kind))
                   for root in default_registry().search_path for kind in ('msg', 'srv'))

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        parts = spec.name.split('.')
        if len(parts) == 1:
            module = types.ModuleType(spec.name)
            module.__path__ = []
            return module
        return _InterfaceModule(spec.name, parts[0], parts[1])

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def install_interface_import_hook() -> None:
    """Lets ``from dcdrl_msgs.msg import X`` (and std_msgs, ...) import our generated classes.

    Normally last on sys.meta_path, so rosidl-generated packages win where ROS 2 is sourced.
    With DCDRL_BACKEND=cyclone it goes first: a process forced onto our runtime must get our
    classes even when ROS 2's packages are importable.
    """
    ours = [f for f in sys.meta_path if isinstance(f, _InterfaceFinder)]
    first = os.environ.get('DCDRL_BACKEND', '').strip().lower() == 'cyclone'
    if ours and (not first or sys.meta_path[0] is ours[0]):
        return
    finder = ours[0] if ours else _InterfaceFinder()
    if ours:  # installed last before DCDRL_BACKEND=cyclone was set: move it first
        sys.meta_path.remove(finder)
    if first:
        sys.meta_path.insert(0, finder)
    else:
        sys.meta_path.append(finder)
