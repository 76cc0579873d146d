"""rclpy.logging: severities and the node logger, written as rcutils' console output."""
from __future__ import annotations

import enum
import sys
import threading
import time
from typing import Any


class LoggingSeverity(enum.IntEnum):
    UNSET = 0
    DEBUG = 10
    INFO = 20
    WARN = 30
    ERROR = 40
    FATAL = 50


class Logger:
    """rclpy's logger: '[LEVEL] [time] [name]: message' on stderr, with once/throttle/skip_first."""

    def __init__(self, name: str, level: LoggingSeverity = LoggingSeverity.INFO) -> None:
        self.name = name
        self.level = level
        self._once: set[tuple[str, int]] = set()
        self._last: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()

    def get_child(self, suffix: str) -> Logger:
        return Logger(f'{self.name}.{suffix}', self.level)

    def set_level(self, level: LoggingSeverity) -> None:
        self.level = LoggingSeverity(level)

    def get_effective_level(self) -> LoggingSeverity:
        return self.level

    def is_enabled_for(self, severity: LoggingSeverity) -> bool:
        return severity >= self.level

    def log(self, message: Any, severity: LoggingSeverity, *, once: bool = False,
            throttle_duration_sec: float | None = None, skip_first: bool = False,
            throttle_time_source_type: Any = None) -> bool:
        if severity < self.level:
            return False
        caller = sys._getframe(2)
        key = (caller.f_code.co_filename, caller.f_lineno)
        with self._lock:
            if once:
                if key in self._once:
                    return False
                self._once.add(key)
            if skip_first and key not in self._last:
                self._last[key] = time.monotonic()
                return False
            if throttle_duration_sec is not None:
                now = time.monotonic()
                last = self._last.get(key)
                if last is not None and now - last < throttle_duration_sec:
                    return False
                self._last[key] = now
        stamp = time.time()
        sys.stderr.write(f'[{severity.name}] [{stamp:.9f}] [{self.name}]: {message}\n')
        sys.stderr.flush()
        return True

    def debug(self, message: Any, **kwargs: Any) -> bool:
        return self.log(message, LoggingSeverity.DEBUG, **kwargs)

    def info(self, message: Any, **kwargs: Any) -> bool:
        return self.log(message, LoggingSeverity.INFO, **kwargs)

    def warning(self, message: Any, **kwargs: Any) -> bool:
        return self.log(message, LoggingSeverity.WARN, **kwargs)

    warn = warning

    def error(self, message: Any, **kwargs: Any) -> bool:
        return self.log(message, LoggingSeverity.ERROR, **kwargs)

    def fatal(self, message: Any, **kwargs: Any) -> bool:
        return self.log(message, LoggingSeverity.FATAL, **kwargs)


def parse_log_level(text: str) -> LoggingSeverity:
    level = text.rsplit(':=', 1)[-1].strip().upper()
    if level == 'WARNING':
        level = 'WARN'
    try:
        return LoggingSeverity[level]
    except KeyError:
        raise ValueError(f'unknown log level {text!r}: use debug, info, warn, error or fatal') from None
