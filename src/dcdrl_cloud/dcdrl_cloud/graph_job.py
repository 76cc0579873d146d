"""Runs the launched graph of a job (main_job) to its end: a readable screen, per-node log files,
one stop path, nothing left running. No ROS import.

The graph runs under `dcdrl launch` in a child process (its own session, so a Ctrl-C in the
terminal reaches only this job, which then stops the graph in order). Every line the launcher
relays goes to a log file of its node under ``log_dir`` (``<label>.log``, ``launch.log`` for the
launcher's own lines, as ros2 launch keeps them in ~/.ros/log); the screen gets, by ``screen``:

- 'verbose': every line, as `dcdrl launch` prints it;
- 'progress' (default): the focus node's lines (the learner: its start, its progress line, what it
  waits for), warnings and errors of every node, and this job's own lines;
- 'quiet': warnings, errors and this job's own lines.

The graph stops (SIGINT to the launcher, which stops its nodes: SIGINT, SIGTERM, SIGKILL) when the
done marker appears, after ``stop_after`` seconds, on SIGINT or SIGTERM to this process (a second
one escalates), or at once when a node ends before the done marker (its exit code and the last
telling line of its output become the one-line reason). When the launcher has ended, every node
pid it started is checked and any survivor is killed with its process group.
"""
from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from dcdrl_ros.processes import pid_alive

SCREEN_MODES = ('quiet', 'progress', 'verbose')
STOP_TIMEOUT_S = 75.0   # after the stop began: the learner's 30 s sigterm_timeout + 5 s + the others, with margin
POLL_S = 0.25           # how soon a signal or a deadline is noticed
LEFTOVER_GRACE_S = 35.0  # a node the launcher left behind gets this long after SIGINT (the learner's stop)

_LEVELS = '(DEBUG|INFO|WARN|WARNING|ERROR|FATAL)'
_LAUNCH_LINE = re.compile(rf'^\[{_LEVELS}\] \[([^\]]+)\]: (.*)$')      # the launcher's own lines
_NODE_LINE = re.compile(r'^\[([^\]\s]+)\] ?(.*)$')                       # '[label] text'
_ROS_LOG = re.compile(rf'^\[{_LEVELS}\](?: \[[\d.]+\])? \[([^\]]+)\]: (.*)$')  # rclpy / our logger
_PLAIN_LEVEL = re.compile(rf'^\[{_LEVELS}\] (.*)$')                        # '[FATAL] LearnerNode: ...'
_STARTED = re.compile(r'process started with pid \[(\d+)\]')
_DIED = re.compile(r'process has died \[pid (\d+), exit code (-?\d+)')
_FINISHED = re.compile(r'process has finished cleanly \[pid (\d+)\]')
_EXCEPTION = re.compile(r'^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b')
_SEVERE = ('WARN', 'ERROR', 'FATAL')


@dataclass(frozen=True)
class Line:
    """One line the launcher relayed: from the launcher itself or from one of its processes."""

    source: str        # 'launch' or a process label ('learner-1')
    level: str         # 'DEBUG' ... 'FATAL', or '' for a print or a traceback line
    text: str          # the message (log timestamps and logger names dropped)
    raw: str           # the line as relayed
    from_launcher: bool = False


def parse_line(raw: str) -> Line:
    """Classifies a line of `dcdrl launch` output."""
    match = _LAUNCH_LINE.match(raw)
    if match:
        return Line(match.group(2), _level(match.group(1)), match.group(3), raw, from_launcher=True)
    match = _NODE_LINE.match(raw)
    if not match:
        return Line('launch', '', raw, raw, from_launcher=True)
    label, text = match.groups()
    for pattern, group in ((_ROS_LOG, 3), (_PLAIN_LEVEL, 2)):
        log = pattern.match(text)
        if log:
            return Line(label, _level(log.group(1)), log.group(group), raw)
    return Line(label, '', text, raw)


def _level(name: str) -> str:
    return 'WARN' if name == 'WARNING' else name


def short_label(label: str) -> str:
    """'learner-1' -> 'learner' (the launcher numbers its processes as ros2 launch does)."""
    base, _, number = label.rpartition('-')
    return base if base and number.isdigit() else label


def is_traceback_line(text: str) -> bool:
    """A line of a Python traceback (its header, a frame, a source line, the exception)."""
    return text.startswith(('Traceback (most recent call last)', ' ', '\t')) or bool(_EXCEPTION.match(text))


def screen_text(line: Line, mode: str, focus: str | None, stopping: bool = False) -> str | None:
    """What the screen shows of ``line`` in ``mode`` (None: the log file only). While the graph stops,
    the focus node's tracebacks stay in its log (a SIGINT during its imports ends in one)."""
    if mode == 'verbose':
        return line.raw
    if line.from_launcher:
        # Starts, stops and deaths are told by the job in its own words; escalations and errors are not.
        if line.level in ('WARN', 'ERROR', 'FATAL') and not _DIED.search(line.text) \
                and 'user interrupted' not in line.text and not line.text.startswith('received SIG'):
            return f'[launch] {line.level}: {line.text}'
        return None
    if line.level in _SEVERE:
        return f'[{line.source}] {line.level}: {line.text}'  # the label names its log file
    name = short_label(line.source)
    if mode == 'progress' and name == focus and line.level in ('', 'INFO') and line.text.strip() \
            and not (stopping and is_traceback_line(line.text)):
        return f'[{name}] {line.text}'
    return None


def failure_reason(lines: Sequence[str]) -> str:
    """The most telling of a dead node's last output lines: a FATAL/ERROR message, else the last
    line of a traceback, else its last line."""
    parsed = [parse_line(raw) for raw in lines]
    for line in reversed(parsed):
        if line.level in ('FATAL', 'ERROR') and line.text.strip():
            return line.text.strip()
    for line in reversed(parsed):
        if _EXCEPTION.match(line.text.strip()):
            return line.text.strip()
    texts = [line.text.strip() for line in parsed if line.text.strip()]
    return texts[-1] if texts else 'no output'


def wait_gone(pids: Sequence[int], timeout: float) -> list[int]:
    """Waits until every pid has ended (they need not be our children: a pidfd tells, Linux >= 5.3;
    elsewhere they are polled); returns those still running after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    left = [pid for pid in pids if pid_alive(pid)]
    while left:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            fd = os.pidfd_open(left[0])
        except (AttributeError, OSError):
            fd = None
        if fd is not None:
            with selectors.DefaultSelector() as selector:
                selector.register(fd, selectors.EVENT_READ)
                selector.select(min(remaining, POLL_S))
            os.close(fd)
        else:
            time.sleep(min(remaining, 0.05))
        left = [pid for pid in left if pid_alive(pid)]
    return left


def _end_with_this_process() -> Callable[[], None] | None:
    """For the launcher's child process (Linux): it gets SIGTERM when this job dies, even by SIGKILL,
    so the launcher still stops its nodes. Prepared here, called in the child between fork and exec."""
    if not sys.platform.startswith('linux'):
        return None
    import ctypes
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


@dataclass
class JobResult:
    """How the graph ended."""

    stop_reason: str                               # 'done', 'signal', 'failure' or 'timeout'
    markers: dict[str, Any] = field(default_factory=dict)   # JSON of the marker lines seen
    failure: str = ''                              # one line: which node ended how, and why
    signal_name: str = ''                          # the first signal that stopped the job
    pids: dict[str, int] = field(default_factory=dict)      # label -> pid of every process started
    leftovers: list[str] = field(default_factory=list)      # processes the launcher left running, stopped here
    launcher_code: int | None = None
    elapsed_s: float = 0.0


class GraphJob:
    """Runs ``command`` (a `dcdrl launch` command line) as described in the module docstring."""

    def __init__(self, command: Sequence[str], env: dict[str, str], log_dir: Path, *, screen: str = 'progress',
                 focus: str | None = 'learner', done_marker: str | None = None,
                 markers: Sequence[str] = ('REPORT',), describe_done: Callable[[dict], str] | None = None,
                 out: IO[str] | None = None) -> None:
        if screen not in SCREEN_MODES:
            raise ValueError(f'screen must be one of {SCREEN_MODES}, got {screen!r}')
        self.command, self.env, self.log_dir = list(command), env, Path(log_dir)
        self.screen, self.focus, self.done_marker = screen, focus, done_marker
        self.markers = tuple(markers) + ((done_marker,) if done_marker else ())
        self.describe_done = describe_done
        self.out = out if out is not None else sys.stdout
        self.result = JobResult('')
        self._recent: dict[str, deque] = {}
        self._logs: dict[str, IO[str]] = {}
        self._signals: list[int] = []
        self._graph_announced = False
        self._stop_started: float | None = None
        self._launcher: subprocess.Popen | None = None

    # -- output -----------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        try:
            self.out.write(text + '\n')
            self.out.flush()
        except (BrokenPipeError, ValueError):
            pass  # the terminal is gone; the graph still has to stop

    def _log(self, source: str, text: str) -> None:
        handle = self._logs.get(source)
        if handle is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            handle = self._logs[source] = open(self.log_dir / f'{source}.log', 'a', encoding='utf-8')
        handle.write(text + '\n')
        handle.flush()

    def _announce_graph(self) -> None:
        if not self._graph_announced and self.result.pids:
            self._graph_announced = True
            if self.screen != 'verbose':
                self.say('graph: ' + ', '.join(f'{label} pid {pid}' for label, pid in self.result.pids.items())
                         + f' (their output: {self.log_dir})')

    # -- lines ------------------------------------------------------------------------------------
    def _handle(self, raw: str) -> None:
        line = parse_line(raw)
        if line.from_launcher:
            self._log('launch', raw)
        else:
            self._log(line.source, raw[len(line.source) + 3:])  # the node's own line, after '[label] '
        self._recent.setdefault('launch' if line.from_launcher else line.source, deque(maxlen=30)).append(raw)
        started = _STARTED.search(line.text) if line.from_launcher else None
        if started:
            self.result.pids[line.source] = int(started.group(1))
            # A node's first output can come before the launcher reports the next process: the 'graph:' line
            # then lacks it, so a process started after the announcement gets a line of its own.
            if self._graph_announced and self.screen != 'verbose':
                self.say(f'graph: {line.source} pid {started.group(1)} (started after the others)')
        else:
            self._announce_graph()
        marker = self._marker(line)
        if marker is not None:
            name, data = marker
            self.result.markers[name] = data
            if name == self.done_marker:
                if self.screen != 'verbose':
                    self.say(self.describe_done(data) if self.describe_done else f'[{short_label(line.source)}] {name}')
                self._begin_stop('done')
            if self.screen != 'verbose':
                return
        shown = screen_text(line, self.screen, self.focus, stopping=self._stop_started is not None)
        if shown is not None:
            self.say(shown)
        if line.from_launcher:
            self._process_ended(line)

    def _marker(self, line: Line) -> tuple[str, Any] | None:
        if line.from_launcher or line.level:
            return None
        for name in self.markers:
            if line.text.startswith(name + ' '):
                try:
                    return name, json.loads(line.text[len(name) + 1:])
                except ValueError:
                    return None
        return None

    def _process_ended(self, line: Line) -> None:
        died, finished = _DIED.search(line.text), _FINISHED.search(line.text)
        if not (died or finished) or self._stop_started is not None:
            return
        label = line.source
        if died:
            how = f'exit code {died.group(2)}'
            reason = failure_reason(self._recent.get(label, ()))
            self.result.failure = f'{label} ended (exit code {died.group(2)}): {reason}'
        else:
            how = 'exit code 0'
            self.result.failure = f'{label} ended by itself (exit code 0) before the job was done'
        self.say(f'main job: {label} (pid {self.result.pids.get(label, "?")}) ended with {how}; stopping the graph')
        self._begin_stop('failure')

    # -- stopping ---------------------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._signals.append(signum)  # handled by the loop (printing here could re-enter a write)

    def _send_launcher(self, signum: int) -> None:
        if self._launcher is None:
            return
        try:
            os.killpg(self._launcher.pid, signum)
        except ProcessLookupError:
            pass

    def _begin_stop(self, reason: str) -> None:
        if self._stop_started is not None:
            return
        self._stop_started = time.monotonic()
        self.result.stop_reason = reason
        self._send_launcher(signal.SIGINT)  # the launcher stops its nodes in order

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            name = signal.Signals(signum).name
            if self._stop_started is None:
                self.result.signal_name = name
                self.say(f'main job: {name}: stopping the graph (the learner writes its checkpoint, the final '
                         f'table and the report first; {name} again escalates)')
                self._begin_stop('signal')
            else:
                self.say(f'main job: {name} again: escalating the stop')
                self._send_launcher(signal.SIGINT)  # the launcher's second signal escalates

    def _stop_leftovers(self) -> None:
        """Whatever the launcher left running (it crashed or was killed): SIGINT, so that the learner
        still writes its files, then SIGKILL; by pid, with the process group each node leads."""
        left = {pid: label for label, pid in self.result.pids.items() if pid_alive(pid)}
        if not left:
            return
        self.result.leftovers = [f'{label} (pid {pid})' for pid, label in left.items()]
        self.say(f'main job: still running after the launcher ended: {", ".join(self.result.leftovers)}; stopping them')
        for signum, wait_s in ((signal.SIGINT, LEFTOVER_GRACE_S), (signal.SIGKILL, 5.0)):
            for pid in left:
                try:
                    os.killpg(pid, signum)  # each node leads its own session
                except ProcessLookupError:
                    pass
                except PermissionError:
                    os.kill(pid, signum)
            still = wait_gone(list(left), wait_s)
            if not still:
                return
            left = {pid: left[pid] for pid in still}
        self.say(f'main job: could not stop pids {", ".join(map(str, left))}')

    # -- the loop ---------------------------------------------------------------------------------
    def run(self, stop_after: float | None = None) -> JobResult:
        """Start the graph and return when the launcher and all its processes have ended."""
        started = time.monotonic()
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                handlers[signum] = signal.signal(signum, self._on_signal)
        try:
            self._launcher = launcher = subprocess.Popen(
                self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                text=True, errors='replace', env=self.env, start_new_session=True,
                preexec_fn=_end_with_this_process())
            assert launcher.stdout is not None
            selector = selectors.DefaultSelector()
            selector.register(launcher.stdout, selectors.EVENT_READ)
            while True:
                self._handle_signals()
                now = time.monotonic()
                if self._stop_started is None and stop_after is not None and now - started >= stop_after:
                    self.say(f'main job: no {self.done_marker or "end"} within {stop_after:.0f} s; stopping the graph'
                             if self.done_marker else f'main job: {stop_after:.0f} s are up; stopping the graph')
                    self._begin_stop('timeout' if self.done_marker else 'done')
                if self._stop_started is not None and now - self._stop_started > STOP_TIMEOUT_S \
                        and launcher.poll() is None:
                    self.say(f'main job: the launcher did not stop within {STOP_TIMEOUT_S:.0f} s; killing it')
                    self._send_launcher(signal.SIGKILL)
                if not selector.select(POLL_S):
                    continue
                raw = launcher.stdout.readline()
                if not raw:  # the launcher exited
                    break
                self._handle(raw.rstrip('\n'))
            selector.close()
            try:  # its output ended: it is exiting (a launcher that closed its output early is killed)
                self.result.launcher_code = launcher.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._send_launcher(signal.SIGKILL)
                self.result.launcher_code = launcher.wait(STOP_TIMEOUT_S)
            self._handle_signals()
            if self._stop_started is None:  # it ended by itself: refused its arguments, or every process ended
                self.result.stop_reason = 'failure'
                self.result.failure = (f'dcdrl launch ended by itself (exit code {self.result.launcher_code}): '
                                       + failure_reason(self._recent.get('launch', ())))
        finally:
            if self._launcher is not None and self._launcher.poll() is None:  # only after an internal error
                self._send_launcher(signal.SIGKILL)
                self._launcher.wait()
            self._stop_leftovers()
            for handle in self._logs.values():
                handle.close()
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        self.result.elapsed_s = time.monotonic() - started
        return self.result


__all__ = ['GraphJob', 'JobResult', 'Line', 'SCREEN_MODES', 'failure_reason', 'is_traceback_line', 'parse_line',
           'pid_alive', 'screen_text', 'short_label', 'wait_gone']
