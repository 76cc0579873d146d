"""rclpy.task.Future."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Future:
    """rclpy.task.Future: a result that a callback sets later."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._result: Any = None
        self._exception: BaseException | None = None
        self._cancelled = False
        self._callbacks: list[Callable[[Future], None]] = []
        self._lock = threading.Lock()

    def done(self) -> bool:
        return self._done.is_set()

    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        self._finish(cancelled=True)

    def result(self) -> Any:
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self) -> BaseException | None:
        return self._exception

    def set_result(self, result: Any) -> None:
        self._result = result
        self._finish()

    def set_exception(self, exception: BaseException) -> None:
        self._exception = exception
        self._finish()

    def add_done_callback(self, callback: Callable[[Future], None]) -> None:
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(callback)
                return
        callback(self)

    def wait(self, timeout_sec: float | None) -> bool:
        return self._done.wait(timeout_sec)

    def _finish(self, cancelled: bool = False) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._cancelled = cancelled
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)
