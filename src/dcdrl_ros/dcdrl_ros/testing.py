"""Test support shared by package and system tests: random messages, DDS domains, child processes."""
from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from dcdrl_ros import idl
from dcdrl_ros.messages import InterfaceRegistry, Message
from dcdrl_ros.processes import stop_session


def use_our_runtime() -> None:
    """For a package's test/conftest.py: the tests drive our runtime with our message classes, also
    under `colcon test` on a sourced ROS 2, where rclpy and the rosidl-generated classes are
    importable (they would win otherwise). What must run on rclpy runs in child processes on the
    real ROS 2 (dcdrl_ros.ros2_install), whose environment drops DCDRL_BACKEND."""
    from dcdrl_ros.messages import install_interface_import_hook
    os.environ['DCDRL_BACKEND'] = 'cyclone'
    install_interface_import_hook()


def random_scalar(base: str, rng: np.random.Generator) -> Any:
    if base == 'bool':
        return bool(rng.integers(2))
    if base.startswith('float'):
        return float(np.asarray(rng.normal() * 100, dtype='f4' if base == 'float32' else 'f8'))
    low, high = idl.INTEGER_RANGES[base]
    if base == 'byte':  # rosbags reads 'byte' as int8, ROS 2 as octet: same bytes for 0..127
        high = 127
    return int(rng.integers(low, high, endpoint=True, dtype=np.int64 if high < 2**63 else np.uint64))


def random_string(rng: np.random.Generator) -> str:
    return ''.join(rng.choice(list('abcXYZ _/é0123')) for _ in range(rng.integers(0, 12)))


def random_message(cls: type[Message], rng: np.random.Generator, registry: InterfaceRegistry | None = None,
                   max_length: int = 5) -> Message:
    """An instance of ``cls`` with every field random (arrays of 0..max_length elements)."""
    from dcdrl_ros.messages import default_registry
    registry = registry or default_registry()
    values: dict[str, Any] = {}
    for field in cls._spec.fields:
        ftype = field.type
        count = ftype.array_size or int(rng.integers(0, min(max_length, ftype.upper_bound or max_length) + 1))
        if ftype.is_primitive:
            if ftype.is_array:
                dtype = np.dtype(idl.PRIMITIVES[ftype.base][0])
                values[field.name] = np.array([random_scalar(ftype.base, rng) for _ in range(count)], dtype=dtype)
            else:
                values[field.name] = random_scalar(ftype.base, rng)
        elif ftype.is_string:
            def text(ftype: Any = ftype) -> str:
                return random_string(rng)[:ftype.string_bound]  # bound None: the whole string
            values[field.name] = [text() for _ in range(count)] if ftype.is_array else text()
        else:
            nested = registry.message(ftype.package, ftype.base)
            if ftype.is_array:
                values[field.name] = [random_message(nested, rng, registry, max_length) for _ in range(min(count, 3))]
            else:
                values[field.name] = random_message(nested, rng, registry, max_length)
    return cls(**values)


def all_message_types(registry: InterfaceRegistry | None = None, package: str | None = None) -> list[str]:
    """'pkg/msg/Name' of every message, services' halves as 'pkg/srv/Name_Request'/'_Response'."""
    from dcdrl_ros.messages import default_registry
    registry = registry or default_registry()
    names = []
    for type_name in registry.list_types():
        pkg, kind, name = type_name.split('/')
        if package is not None and pkg != package:
            continue
        if kind == 'msg':
            names.append(type_name)
        else:
            names += [f'{pkg}/srv/{name}_Request', f'{pkg}/srv/{name}_Response']
    return names


def message_class(type_name: str, registry: InterfaceRegistry | None = None) -> type[Message]:
    from dcdrl_ros.messages import default_registry
    registry = registry or default_registry()
    package, kind, name = type_name.split('/')
    if kind == 'srv':
        service_name, half = name.rsplit('_', 1)
        return getattr(registry.service(package, service_name), half)
    return registry.message(package, name)


def first_difference(a: Any, b: Any, path: str = '') -> str | None:
    """Where two plain values (dicts, lists, numbers, strings) first differ, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f'{path}.{key}: only on one side'
            found = first_difference(a[key], b[key], f'{path}.{key}')
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f'{path}: {len(a)} != {len(b)} elements'
        for index, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f'{path}[{index}]')
            if found:
                return found
        return None
    return None if a == b and type(a) is type(b) else f'{path}: {a!r} != {b!r}'


def _domain_range() -> tuple[int, int]:
    """(first, count) of the domain ids this test process may use. Under pytest-xdist (`make test` runs
    workers gw0, gw1, ...) each worker gets its own slice of 1..230, so two tests running at once never
    share a domain; a lone process starts at a pid-spread offset of the whole range."""
    worker, workers = os.environ.get('PYTEST_XDIST_WORKER', ''), os.environ.get('PYTEST_XDIST_WORKER_COUNT', '')
    if worker.startswith('gw') and worker[2:].isdigit() and workers.isdigit() and int(workers) > 0:
        count = 230 // int(workers)
        return 1 + int(worker[2:]) * count, count
    return 1, 230


_DOMAIN_FIRST, _DOMAIN_COUNT = _domain_range()
_next_domain = [0 if _DOMAIN_COUNT < 230 else 10 + (os.getpid() % 40) * 5]
_domain_lock = threading.Lock()


def fresh_domain_id() -> int:
    """A DDS domain id no other test in this process used (cycling through this process's range)."""
    with _domain_lock:
        value = _next_domain[0]
        _next_domain[0] += 1
    return _DOMAIN_FIRST + value % _DOMAIN_COUNT


def loopback_env(domain_id: int, **extra: str) -> dict[str, str]:
    """Environment for a child node: this domain, discovery on this machine only."""
    env = dict(os.environ)
    env.update({'ROS_DOMAIN_ID': str(domain_id), 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
                'PYTHONUNBUFFERED': '1', 'DCDRL_BACKEND': 'cyclone',
                'PYTHONFAULTHANDLER': '1'})  # a crash in C code prints every thread's Python stack
    env.update(extra)
    return env


@contextlib.contextmanager
def parameter_session(monkeypatch: Any) -> Iterator[tuple[int, Any]]:
    """A parameter client of ours (dcdrl_ros.param_cli.Session, what `dcdrl param` uses) on a fresh
    loopback domain: yields (domain, Session), closed after. ``monkeypatch`` (pytest's) points this
    process's ROS_DOMAIN_ID and discovery range at that domain, where the Session's context joins."""
    from dcdrl_ros.param_cli import Session
    domain = fresh_domain_id()
    monkeypatch.setenv('ROS_DOMAIN_ID', str(domain))
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    made = Session()
    try:
        yield domain, made
    finally:
        made.close()


def spin_until(executor: Any, condition: Any, timeout: float, what: str) -> None:
    """Spin ``executor`` until ``condition()`` holds; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out after {timeout} s waiting for {what}')
        executor.spin_once(timeout_sec=0.1)


def wait_matched(publishers: Sequence[Any], readers: int = 1, timeout: float = 60.0) -> None:
    """Until each of our runtime's ``publishers`` has matched ``readers`` readers; TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    for publisher in publishers:
        while publisher.get_subscription_count() < readers:
            if time.monotonic() > deadline:
                raise TimeoutError(f'{publisher.topic_name}: {publisher.get_subscription_count()} of {readers} '
                                   f'readers matched within {timeout} s')
            time.sleep(0.05)  # polling DDS's matched status: the runtime offers no event for it


def wait_acked(publishers: Sequence[Any], timeout: float = 60.0) -> None:
    """Until every reader matched by each of our runtime's reliable ``publishers`` acknowledged every sample
    (DDS wait_for_acks), so a recorder or echo holds all that was published; TimeoutError after ``timeout`` s."""
    from cyclonedds.util import duration
    deadline = time.monotonic() + timeout
    for publisher in publishers:
        remaining = max(0.1, deadline - time.monotonic())
        if not publisher.writer.wait_for_acks(duration(seconds=remaining)):
            raise TimeoutError(f'{publisher.topic_name}: samples not acknowledged within {timeout} s')


class ChildProcess:
    """A child in its own session whose output lines can be awaited; stopped by its pid."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None,
                 cwd: str | None = None) -> None:
        self.argv = list(argv)
        self.process = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.PIPE,
            env=env, cwd=cwd, text=True, start_new_session=True)
        self.pid = self.process.pid
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip('\n'))
        self._queue.put(None)

    def wait_for_line(self, text: str, timeout: float) -> str:
        """Returns the first output line containing ``text``; fails after ``timeout`` seconds."""
        for line in self.lines:
            if text in line:
                return line
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f'no line with {text!r} within {timeout} s from {self.argv}; '
                                   f'output so far:\n' + '\n'.join(self.lines[-30:]))
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f'{self.argv} exited ({self.process.wait()}) before printing {text!r}; '
                                   f'output:\n' + '\n'.join(self.lines[-30:]))
            self.lines.append(line)
            if text in line:
                return line

    def send_line(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + '\n')
        self.process.stdin.flush()

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT to the child's process group, then SIGKILL if it does not exit in time."""
        stop_session(self.process, timeout)
        self._reader.join(timeout)
        while True:  # keep the rest of the output for error messages
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return self.process.returncode

    def __enter__(self) -> ChildProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def node_process(package: str, executable: str, name: str, domain_id: int, params_file: str | None = None,
                 *params: str, namespace: str = '/dcdrl') -> ChildProcess:
    """`dcdrl run PACKAGE EXECUTABLE` as node NAME in NAMESPACE on a loopback domain, with an optional
    parameter file and `name:=value` overrides: how the system tests start one node."""
    argv = [sys.executable, '-m', 'dcdrl_ros.cli', 'run', package, executable, '--ros-args',
            '-r', f'__node:={name}', '-r', f'__ns:={namespace}']
    if params_file:
        argv += ['--params-file', str(params_file)]
    for param in params:
        argv += ['-p', param]
    return ChildProcess(argv, env=loopback_env(domain_id))


def python_child(module_or_script: Sequence[str], domain_id: int, **env: str) -> ChildProcess:
    return ChildProcess([sys.executable, *module_or_script], env=loopback_env(domain_id, **env))


class TopicRecorder:
    """A node in this process that records what flows on some topics, for tests and benchmarks.

    ``record`` subscribes and returns the list it fills (with ``extract(message)``); ``wait_for``
    blocks until a predicate over those lists holds, woken by each new message, with a time-out.
    """

    def __init__(self, domain_id: int, namespace: str = '/') -> None:
        from dcdrl_ros import runtime
        from dcdrl_ros.runtime.context import Context
        self._runtime = runtime
        self.context = Context()
        self.context.init([], domain_id=domain_id)
        self.node = runtime.Node('topic_recorder', context=self.context, namespace=namespace)
        self.changed = threading.Condition()
        self._executor = runtime.SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            self._executor.spin_once(timeout_sec=0.2)

    def record(self, msg_type: Any, topic: str, qos: Any, extract: Any = lambda message: message) -> list:
        values: list = []

        def on_message(message: Any) -> None:
            with self.changed:
                values.append(extract(message))
                self.changed.notify_all()
        self.node.create_subscription(msg_type, topic, on_message, qos)
        return values

    def wait_for(self, predicate: Any, timeout: float, what: str = 'condition') -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f'{what} not met within {timeout} s')
                self.changed.wait(remaining)

    def close(self) -> None:
        self.context.request_shutdown()
        self._thread.join(10)
        self.context.shutdown()
