"""Ctrl-C that never lands inside a Cyclone DDS take.

cyclonedds-python (11.0.1) builds each sample's SampleInfo by calling Python from C in the middle
of a take and does not check the result: when the default SIGINT handler raises KeyboardInterrupt
inside that call, the C code dereferences NULL and the process dies with SIGSEGV instead of
stopping cleanly. Our SIGINT handler therefore defers the interrupt while the main thread is inside
a take and raises it as soon as the take has returned; everywhere else it raises at once, exactly as
Python's default handler does, so ``except KeyboardInterrupt`` in tools keeps working. Nodes
started by ros.run_node take SIGINT and SIGTERM with their own handler instead (stop_signals.py),
which never raises.
"""
from __future__ import annotations

import enum
import signal
import threading
from typing import Any

import cyclonedds._clayer as clayer

_MAIN_THREAD_ID = threading.main_thread().ident


class _InterruptState:
    depth = 0          # how many deferring sections the main thread is in
    pending = False    # a SIGINT arrived inside one


_state = _InterruptState()


class SignalHandlerOptions(enum.IntEnum):
    """rclpy.signals.SignalHandlerOptions: which handlers init() installs for the default context."""
    NO = 0
    SIGINT = 1
    SIGTERM = 2
    ALL = 3


class deferred_interrupts:
    """A section of the main thread where SIGINT is held back and raised at its end.

    Other threads are never interrupted by signals, so the section costs them nothing.
    """

    __slots__ = ('_main',)

    def __enter__(self) -> None:
        self._main = threading.get_ident() == _MAIN_THREAD_ID
        if self._main:
            _state.depth += 1

    def __exit__(self, *exc_info: Any) -> None:
        if self._main:
            _state.depth -= 1
            if _state.depth == 0 and _state.pending:
                _state.pending = False
                raise KeyboardInterrupt


def take_serialized(reader_ref: int, mask: int, max_samples: int) -> Any:
    """ddspy_take with SIGINT deferred: a list of (serialized bytes, SampleInfo) or a DDS error code."""
    with deferred_interrupts():
        return clayer.ddspy_take(reader_ref, mask, max_samples)  # looked up here: scripts/secure_dds.py adapts it


def on_sigint(_signum: int, _frame: object | None) -> None:
    """The SIGINT handler: KeyboardInterrupt now, or at the end of the take it arrived in."""
    if _state.depth:
        _state.pending = True
        return
    raise KeyboardInterrupt


def install_sigint_handler() -> bool:
    """Installs on_sigint unless the program chose its own handler; only from the main thread."""
    current = signal.getsignal(signal.SIGINT)
    # A process started in the background by a non-interactive shell inherits SIGINT *ignored*; a
    # launcher's SIGINT must still stop the node, as it stops an rclpy node (rclpy installs its own).
    if current not in (signal.default_int_handler, signal.SIG_IGN, on_sigint):
        return False
    signal.signal(signal.SIGINT, on_sigint)
    return True
