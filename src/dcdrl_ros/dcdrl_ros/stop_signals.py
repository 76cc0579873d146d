"""SIGINT and SIGTERM as a request to stop, the same under rclpy and our runtime (no ROS import).

A node process gets Ctrl-C twice under ``ros2 launch`` (once from the terminal, once relayed by the
launcher), then SIGTERM and SIGKILL if it is still running. rclpy's own handlers shut the context
down from the signal (worker threads then fail to publish) and raise KeyboardInterrupt wherever the
main thread is (the second one lands in the clean-up and cuts the final snapshot short); Python's
default handler does the latter too. ``StopSignals`` replaces both while a node runs: the first
SIGINT or SIGTERM only records that a stop was asked for (ros.run_node's spin loop sees it and
returns), and every later one is only counted, so the clean-up that follows runs to its end.
SIGKILL (or Ctrl-\\, SIGQUIT) still ends a process whose clean-up hangs.
"""
from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# A spin loop's longest wait between two checks for a stop request: a Python signal handler runs
# only once the main thread is back from the executor's wait (rclpy's own handler wakes that wait from
# C, and is the one we turn off).
STOP_CHECK_PERIOD_S = 0.2


class StopSignals:
    """Turns SIGINT/SIGTERM into ``requested`` (an Event); install() from the main thread only."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.first: signal.Signals | None = None   # the signal that asked for the stop
        self.absorbed = 0                             # signals that arrived after it
        self._previous: dict[int, Any] = {}

    def install(self) -> bool:
        """Takes SIGINT and SIGTERM; False (nothing changed) outside the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)
        return True

    def uninstall(self) -> None:
        """Puts back the handlers install() replaced (for callers that go on after the node)."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()

    def ignore_from_now(self) -> None:
        """SIG_IGN for both: nothing is left to stop once the node is cleaned up, and Python puts
        back the default handlers (exit -2 / -15) while the interpreter finalises, but not SIG_IGN."""
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous.setdefault(signum, signal.signal(signum, signal.SIG_IGN))

    def request(self, signum: int = signal.SIGINT) -> None:
        """What a signal does; also callable directly (a node that decides to end itself)."""
        if self.requested.is_set():
            self.absorbed += 1   # counted, not logged here: the handler may run in the middle of a print
            return
        self.first = signal.Signals(signum)
        self.requested.set()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.request(signum)
