"""Run the processes of an evaluated launch description, like ``ros2 launch`` does.

- Each process starts in its own session (``start_new_session``), so a Ctrl-C in the terminal
  reaches only the launcher, which then stops the processes in order, and so a signal can be
  sent to a process together with the children it started (its process group).
- Output is read by one thread per pipe and printed line by line as ``[label] line``, with
  labels ``talker-1``, ``talker-2``... as ros2 launch numbers them. ``output: screen`` prints
  stdout and stderr; ``log`` writes both to a file under the log directory and prints stderr;
  ``both`` does both.
- On SIGINT or SIGTERM (or when a process with ``on_exit: shutdown`` ends): SIGINT to every
  process group, then SIGTERM after the grace period (``sigterm_timeout``, default 5 s), then
  SIGKILL after ``sigkill_timeout`` (default 5 s). A second Ctrl-C skips to the next step.
- A process that ends on its own is reported with its exit code; the others keep running
  (as in ros2 launch) and the launcher exits when all have ended. ``respawn`` restarts it.

Exit status of :meth:`LaunchRunner.run`: 0, or 1 if a process failed to start or ended on its
own with a non-zero code.
"""
from __future__ import annotations

import datetime
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .context import ProcessSpec

__all__ = ['LaunchRunner', 'default_log_root']

_POLL_S = 0.1  # how often lingering process groups are checked while stopping


def default_log_root() -> Path:
    """ROS_LOG_DIR, else $ROS_HOME/log, else ~/.ros/log (where ros2 launch writes)."""
    if os.environ.get('ROS_LOG_DIR'):
        return Path(os.environ['ROS_LOG_DIR']).expanduser()
    return Path(os.environ.get('ROS_HOME', '~/.ros')).expanduser() / 'log'


@dataclass
class _Process:
    spec: ProcessSpec
    label: str
    popen: subprocess.Popen
    respawns: int = 0
    returncode: int | None = None
    lingering: bool = False  # leader gone, other members of its group still alive (stopping)
    stage: int = 0  # 0 running, 1 SIGINT sent, 2 SIGTERM sent, 3 SIGKILL sent
    deadline: float = 0.0
    waited: float = 0.0  # the timeout of the current stage (for the escalation message)
    log_file: IO[str] | None = None
    threads: list = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.returncode is None or self.lingering


class LaunchRunner:
    """Starts ProcessSpecs, relays their output, and stops them all on request."""

    def __init__(self, specs: list[ProcessSpec], *, grace_period: float = 5.0, kill_timeout: float = 5.0,
                 out: IO[str] | None = None, err: IO[str] | None = None,
                 log_root: Path | None = None) -> None:
        if grace_period < 0 or kill_timeout < 0:
            raise ValueError(f'grace_period and kill_timeout must be >= 0, got {grace_period}, {kill_timeout}')
        self.specs = list(specs)
        self.grace_period = grace_period
        self.kill_timeout = kill_timeout
        self._out = out if out is not None else sys.stdout
        self._err = err if err is not None else sys.stderr
        self._log_root = log_root
        self._log_dir: Path | None = None
        self._write_lock = threading.Lock()
        self._events: queue.SimpleQueue = queue.SimpleQueue()  # put() is safe in signal handlers
        self._processes: list[_Process] = []
        self._counters: dict[str, int] = {}
        self._pending_respawns: list[tuple[float, _Process]] = []
        self._stopping = False
        self._failed = False

    # -- output ---------------------------------------------------------------------------------
    def _write(self, stream: IO[str], text: str) -> None:
        with self._write_lock:
            try:
                stream.write(text)
                stream.flush()
            except (BrokenPipeError, ValueError):
                pass  # the terminal or pipe is gone; keep stopping the processes anyway

    def log(self, level: str, who: str, message: str) -> None:
        self._write(self._out, f'[{level}] [{who}]: {message}\n')

    def _open_log(self, label: str) -> IO[str]:
        if self._log_dir is None:
            stamp = datetime.datetime.now().strftime('%Y-%m-%d-%H-%M-%S-%f')
            self._log_dir = (self._log_root or default_log_root()) / f'{stamp}-dcdrl-launch-{os.getpid()}'
            self._log_dir.mkdir(parents=True, exist_ok=True)
            self.log('INFO', 'launch', f'All log files can be found below {self._log_dir}')
        return open(self._log_dir / f'{label}.log', 'a', encoding='utf-8')

    def _pump(self, process: _Process, pipe: IO[bytes], is_stderr: bool) -> None:
        output = process.spec.output
        for raw in iter(pipe.readline, b''):
            line = f'[{process.label}] ' + raw.decode('utf-8', 'replace').rstrip('\r\n') + '\n'
            if output in ('screen', 'both') or is_stderr:
                self._write(self._err if is_stderr else self._out, line)
            if output in ('log', 'both') and process.log_file is not None:
                with self._write_lock:
                    process.log_file.write(line)
                    process.log_file.flush()
        pipe.close()

    def _wait(self, process: _Process) -> None:
        code = process.popen.wait()
        for thread in process.threads:
            thread.join(timeout=2.0)  # let the last lines out before 'process has finished'
        self._events.put(('exit', process, code))

    # -- processes ------------------------------------------------------------------------------
    def _label(self, base: str) -> str:
        self._counters[base] = self._counters.get(base, 0) + 1
        return f'{base}-{self._counters[base]}'

    def _start(self, spec: ProcessSpec, label: str | None = None, previous: _Process | None = None) -> None:
        label = label or self._label(spec.label)
        try:
            popen = subprocess.Popen(spec.cmd, env=spec.env, cwd=spec.cwd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as err:
            self._failed = True
            self.log('ERROR', label, f'failed to start {shlex.join(spec.cmd)}: {err}')
            return
        process = _Process(spec, label, popen, respawns=previous.respawns if previous else 0)
        if spec.output in ('log', 'both'):
            process.log_file = previous.log_file if previous and previous.log_file else self._open_log(label)
        self._processes.append(process)
        self.log('INFO', label, f'process started with pid [{popen.pid}]')
        for pipe, is_stderr in ((popen.stdout, False), (popen.stderr, True)):
            thread = threading.Thread(target=self._pump, args=(process, pipe, is_stderr), daemon=True,
                                      name=f'launch-output-{label}')
            thread.start()
            process.threads.append(thread)
        threading.Thread(target=self._wait, args=(process,), daemon=True, name=f'launch-wait-{label}').start()

    def _signal(self, process: _Process, signum: int) -> None:
        try:
            os.killpg(process.pid, signum)  # the process and whatever it started
        except ProcessLookupError:
            pass
        except PermissionError:
            try:
                os.kill(process.pid, signum)
            except ProcessLookupError:
                pass

    def _group_alive(self, process: _Process) -> bool:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _on_exit(self, process: _Process, code: int) -> None:
        process.returncode = code
        if code == 0:
            self.log('INFO', process.label, f'process has finished cleanly [pid {process.pid}]')
        else:
            self.log('ERROR', process.label, f'process has died [pid {process.pid}, exit code {code}, '
                                             f"cmd '{shlex.join(process.spec.cmd)}'].")
        if self._stopping:
            process.lingering = self._group_alive(process)
            return
        if code != 0:
            self._failed = True
        spec = process.spec
        if spec.on_exit_shutdown:
            self._begin_shutdown(f"process[{process.label}] ended and has on_exit: shutdown")
        elif spec.respawn and (spec.respawn_max_retries < 0 or process.respawns < spec.respawn_max_retries):
            process.respawns += 1
            self._pending_respawns.append((time.monotonic() + spec.respawn_delay, process))

    # -- stopping -------------------------------------------------------------------------------
    def request_shutdown(self, reason: str = 'shutdown requested') -> None:
        """Stop every process (thread-safe; also what SIGINT/SIGTERM do)."""
        self._events.put(('shutdown', reason))

    def _begin_shutdown(self, reason: str) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._pending_respawns.clear()
        self.log('INFO', 'launch', f'stopping: {reason}')
        for process in self._processes:
            if process.alive and process.stage == 0:
                self._advance(process)

    def _advance(self, process: _Process) -> None:
        """Send the next signal of SIGINT -> SIGTERM -> SIGKILL to a process group."""
        now = time.monotonic()
        if process.stage == 0:
            self.log('INFO', process.label, f"sending signal 'SIGINT' to process[{process.label}]")
            self._signal(process, signal.SIGINT)
            timeout = process.spec.sigterm_timeout
            process.waited = self.grace_period if timeout is None else timeout
            process.deadline = now + process.waited
        elif process.stage == 1:
            self._signal(process, signal.SIGTERM)
            timeout = process.spec.sigkill_timeout
            process.waited = self.kill_timeout if timeout is None else timeout
            process.deadline = now + process.waited
        elif process.stage == 2:
            self._signal(process, signal.SIGKILL)
            process.deadline = float('inf')
        else:
            return
        process.stage += 1

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for process in self._processes:
            if process.lingering and not self._group_alive(process):
                process.lingering = False
            if not process.alive or process.stage == 0 or now < process.deadline:
                continue
            names = {1: ('SIGINT', 'SIGTERM'), 2: ('SIGTERM', 'SIGKILL')}.get(process.stage)
            if names:
                self.log('ERROR', process.label,
                         f"process[{process.label}] failed to terminate '{process.waited:g}' seconds after "
                         f"receiving '{names[0]}', escalating to '{names[1]}'")
            self._advance(process)

    def _handle_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if not self._stopping:
            self.log('WARNING', 'launch', f'user interrupted with ctrl-c ({name})' if signum == signal.SIGINT
                     else f'received {name}')
            self._begin_shutdown(name)
            return
        self.log('WARNING', 'launch', f'{name} again: escalating now')
        for process in self._processes:
            if process.alive:
                self._advance(process)

    # -- main loop ------------------------------------------------------------------------------
    def _timeout(self) -> float:
        now = time.monotonic()
        deadlines = [p.deadline for p in self._processes if p.alive and 0 < p.stage < 3]
        deadlines += [when for when, _ in self._pending_respawns]
        timeout = min(deadlines) - now if deadlines else 1.0
        if any(p.lingering for p in self._processes):
            timeout = min(timeout, _POLL_S)
        return max(0.0, min(timeout, 1.0))

    def _respawn_due(self) -> None:
        now = time.monotonic()
        due = [item for item in self._pending_respawns if item[0] <= now]
        self._pending_respawns = [item for item in self._pending_respawns if item[0] > now]
        for _, process in due:
            self.log('INFO', process.label, f'respawning (attempt {process.respawns})')
            self._processes.remove(process)
            self._start(process.spec, process.label, process)

    def run(self) -> int:
        """Start everything, relay output, stop on a signal; returns the exit status."""
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                handlers[signum] = signal.signal(signum, lambda s, _f: self._events.put(('signal', s)))
        try:
            for spec in self.specs:
                self._start(spec)
            while any(p.alive for p in self._processes) or self._pending_respawns:
                try:
                    event = self._events.get(timeout=self._timeout())
                except queue.Empty:
                    event = None
                if event is not None:
                    kind = event[0]
                    if kind == 'exit':
                        self._on_exit(event[1], event[2])
                    elif kind == 'signal':
                        self._handle_signal(event[1])
                    elif kind == 'shutdown':
                        self._begin_shutdown(event[1])
                self._respawn_due()
                self._check_deadlines()
        finally:
            for process in self._processes:  # only after an internal error: never leave orphans
                if process.returncode is None:
                    self._signal(process, signal.SIGKILL)
                if process.log_file is not None and not process.log_file.closed:
                    process.log_file.close()
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        return 1 if self._failed else 0

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes]
