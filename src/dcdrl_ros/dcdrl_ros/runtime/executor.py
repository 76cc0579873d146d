"""Executors: wait on the context's DDS WaitSet, then run ready readers and due timers."""
from __future__ import annotations

import time
from typing import Any

from dcdrl_ros.runtime.context import Context
from dcdrl_ros.runtime.node import Node
from dcdrl_ros.runtime.task import Future

_INFINITE_NS = 0x7FFFFFFFFFFFFFFF


class SingleThreadedExecutor:
    def __init__(self, *, context: Context | None = None) -> None:
        self._nodes: list[Node] = []
        self._context = context

    @property
    def context(self) -> Context:
        if self._context is None:
            if not self._nodes:
                from dcdrl_ros.runtime.context import default_context
                return default_context
            return self._nodes[0].context
        return self._context

    def add_node(self, node: Node) -> bool:
        if node in self._nodes:
            return False
        self._nodes.append(node)
        node.context.wake()
        return True

    def remove_node(self, node: Node) -> None:
        if node in self._nodes:
            self._nodes.remove(node)

    def get_nodes(self) -> list[Node]:
        return list(self._nodes)

    def _due_timer_wait(self) -> float | None:
        """Fires due timers; returns seconds until the next one (None: no timers)."""
        now = time.monotonic()
        wait: float | None = None
        for node in self._nodes:
            for timer in list(node.timers):
                if timer.is_canceled():
                    continue
                if timer.next_call <= now:
                    timer._fire(now)
                    now = time.monotonic()
                remaining = max(0.0, timer.next_call - now)
                wait = remaining if wait is None else min(wait, remaining)
        return wait

    def spin_once(self, timeout_sec: float | None = None) -> None:
        """Runs due timers, waits (up to the next timer or the time-out) for data, dispatches it."""
        context = self.context
        wait = self._due_timer_wait()
        if timeout_sec is not None and timeout_sec >= 0:
            wait = timeout_sec if wait is None else min(wait, timeout_sec)
        waitset = context.waitset
        if waitset is None:
            return
        waitset.wait(_INFINITE_NS if wait is None else max(0, int(wait * 1e9)))
        context.clear_wake()
        for readable in list(context.readables):
            condition = readable.condition
            if condition is not None and condition.triggered:
                readable._dispatch()
        self._due_timer_wait()

    def spin(self) -> None:
        while self.context.ok():
            self.spin_once(timeout_sec=0.5)

    def spin_until_future_complete(self, future: Future, timeout_sec: float | None = None) -> None:
        deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
        while self.context.ok() and not future.done():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            self.spin_once(timeout_sec=min(0.1, remaining) if remaining is not None else 0.1)

    def shutdown(self, timeout_sec: float | None = None) -> bool:
        self._nodes.clear()
        return True


# rclpy has a thread-pool executor; our nodes keep callbacks short and hand slow work to
# their own threads, so the single-threaded one serves for both names.
MultiThreadedExecutor = SingleThreadedExecutor


def _executor_for(node: Node, executor: Any | None) -> SingleThreadedExecutor:
    executor = executor or SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    return executor


def spin(node: Node, executor: SingleThreadedExecutor | None = None) -> None:
    _executor_for(node, executor).spin()


def spin_once(node: Node, *, executor: SingleThreadedExecutor | None = None,
              timeout_sec: float | None = None) -> None:
    _executor_for(node, executor).spin_once(timeout_sec)


def spin_until_future_complete(node: Node, future: Future, executor: SingleThreadedExecutor | None = None,
                               timeout_sec: float | None = None) -> None:
    _executor_for(node, executor).spin_until_future_complete(future, timeout_sec)
