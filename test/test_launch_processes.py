"""System test of `dcdrl launch`: it starts a graph, and Ctrl-C leaves no process behind.

The launcher runs in its own session; the test reads its output (no sleeps), sends it SIGINT
like a terminal would, and checks in /proc that every process it reported has gone.
"""
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / 'test' / 'fixtures' / 'two_sleepers.launch.yaml'
START_TIMEOUT = 40.0  # generous: the 2-core CI machine runs other tests at the same time
GRACE = 5.0
PID_LINE = re.compile(r'^\[INFO\] \[([\w.-]+)\]: process started with pid \[(\d+)\]')


class Launcher:
    """`python -m dcdrl_ros.cli launch ...` in its own session, with its output in a queue."""

    def __init__(self, args, env=None):
        self.lines: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, '-m', 'dcdrl_ros.cli', 'launch', *args], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, start_new_session=True,
            env=env if env is not None else dict(os.environ), cwd=str(ROOT))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.children: dict[str, int] = {}

    def _read(self):
        for line in self.process.stdout:
            self._queue.put(line.rstrip('\n'))
        self._queue.put(None)

    def wait_for(self, predicate, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f'timed out waiting for {what}; output so far:\n' + '\n'.join(self.lines))
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f'launcher ended before {what}; output:\n' + '\n'.join(self.lines))
            self.lines.append(line)
            match = PID_LINE.match(line)
            if match:
                self.children[match.group(1)] = int(match.group(2))
            if predicate(line):
                return line

    def wait_for_all(self, needles, timeout: float) -> None:
        missing = set(needles)
        deadline = time.monotonic() + timeout
        while missing:
            line = self.wait_for(lambda text, missing=missing: any(n in text for n in missing),
                                 deadline - time.monotonic(),
                                 f'lines containing {sorted(missing)}')
            missing = {n for n in missing if n not in line}

    def interrupt_and_wait(self, timeout: float) -> float:
        """Ctrl-C: SIGINT to the launcher only (its children live in their own sessions)."""
        start = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=timeout)
        elapsed = time.monotonic() - start
        self._reader.join(timeout=5.0)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return elapsed

    def cleanup(self):
        """Stop, by pid, whatever this test started and is still alive (only after a failure)."""
        for pid in [self.process.pid, *self.children.values()]:
            if alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5.0)


def alive(pid: int) -> bool:
    """True if /proc/<pid> is a live (not zombie) process."""
    try:
        with open(f'/proc/{pid}/stat') as handle:
            state = handle.read().rsplit(')', 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ('Z', 'X')


def test_ctrl_c_stops_both_processes_in_the_grace_period():
    launcher = Launcher([str(FIXTURE), f'python:={sys.executable}'])
    try:
        launcher.wait_for_all(['[alpha-1] alpha started', '[beta-1] beta started'], START_TIMEOUT)
        assert set(launcher.children) == {'alpha-1', 'beta-1'}
        assert all(alive(pid) for pid in launcher.children.values())
        launcher.interrupt_and_wait(GRACE + 5.0)
        output = '\n'.join(launcher.lines)
        assert launcher.process.returncode == 0, output
        assert '[alpha-1] alpha stopping' in output and '[beta-1] beta stopping' in output
        assert 'escalating' not in output  # both stopped on SIGINT, no SIGTERM needed
        assert [name for name, pid in launcher.children.items() if alive(pid)] == []
    finally:
        launcher.cleanup()


def test_a_process_ignoring_sigint_is_terminated_after_the_grace_period():
    launcher = Launcher([str(FIXTURE), f'python:={sys.executable}', 'stubborn:=true', '--grace-period', '0.5'])
    try:
        launcher.wait_for_all(['alpha started', 'beta started'], START_TIMEOUT)
        launcher.interrupt_and_wait(0.5 + 5.0 + 5.0)
        output = '\n'.join(launcher.lines)
        assert ("process[beta-1] failed to terminate '0.5' seconds after receiving 'SIGINT', escalating to 'SIGTERM'"
                in output)
        assert 'exit code -15' in output
        assert [name for name, pid in launcher.children.items() if alive(pid)] == []
    finally:
        launcher.cleanup()


@pytest.mark.dds
def test_talker_listener_graph_starts_talks_and_stops_cleanly():
    from dcdrl_ros.testing import fresh_domain_id, loopback_env
    env = loopback_env(fresh_domain_id())
    launcher = Launcher(['dcdrl_ros', 'talker_listener.launch.yaml', 'period_s:=0.1'], env=env)
    try:
        launcher.wait_for_all(['talker started', 'listener started'], START_TIMEOUT)
        launcher.wait_for(lambda line: 'I heard: [Hello World' in line, START_TIMEOUT,
                          'the listener hearing the talker')
        assert {name.rsplit('-', 1)[0] for name in launcher.children} == {'talker', 'listener'}
        launcher.interrupt_and_wait(GRACE + 5.0)
        output = '\n'.join(launcher.lines)
        assert launcher.process.returncode == 0, output
        assert 'escalating' not in output, output
        assert 'process has finished cleanly' in output
        assert [name for name, pid in launcher.children.items() if alive(pid)] == []
    finally:
        launcher.cleanup()


# -- the runner on its own (in this process, short-lived children) ------------------------------

def _spec(label, code, **options):
    from dcdrl_ros.launch import ProcessSpec
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    return ProcessSpec(label=label, cmd=[sys.executable, '-c', code], env=env, output='screen', **options)


def _run(specs, **kwargs):
    import io

    from dcdrl_ros.launch import LaunchRunner
    out, err = io.StringIO(), io.StringIO()
    runner = LaunchRunner(specs, out=out, err=err, **kwargs)
    code = runner.run()
    assert [pid for pid in runner.pids if alive(pid)] == []
    return code, out.getvalue(), err.getvalue()


def test_runner_reports_a_failed_process_and_exits_1():
    code, out, err = _run([_spec('ok', 'print("fine")'),
                           _spec('bad', 'import sys; sys.stderr.write("boom\\n"); sys.exit(3)')])
    assert code == 1
    assert '[ok-1] fine' in out and '[bad-1] boom' in err
    assert re.search(r"\[ERROR\] \[bad-1\]: process has died \[pid \d+, exit code 3, cmd '.*'\]", out)
    assert re.search(r'\[INFO\] \[ok-1\]: process has finished cleanly', out)


def test_runner_respawns_up_to_the_limit():
    code, out, _ = _run([_spec('again', 'print("run")', respawn=True, respawn_max_retries=2)])
    assert code == 0
    assert out.count('[again-1] run') == 3  # the first run and two respawns, same label
    assert 'respawning (attempt 2)' in out and 'respawning (attempt 3)' not in out


def test_on_exit_shutdown_stops_the_others(tmp_path):
    ready = tmp_path / 'ready'
    waiter = ('import pathlib, signal, threading; e = threading.Event(); '
              'signal.signal(signal.SIGINT, lambda *a: e.set()); '
              f'pathlib.Path({str(ready)!r}).touch(); print("waiting"); e.wait(); print("stopped")')
    # The leader ends once the waiter has its SIGINT handler (a handshake, not a fixed delay).
    leader = ('import pathlib, time\n'
              f'deadline = time.monotonic() + 30\n'
              f'while not pathlib.Path({str(ready)!r}).exists() and time.monotonic() < deadline:\n'
              '    time.sleep(0.01)\n')
    code, out, _ = _run([_spec('waiter', waiter), _spec('leader', leader, on_exit_shutdown=True)],
                        grace_period=10.0)
    assert code == 0
    assert 'process[leader-1] ended and has on_exit: shutdown' in out
    assert "sending signal 'SIGINT' to process[waiter-1]" in out and '[waiter-1] stopped' in out


def test_runner_rejects_negative_timeouts():
    from dcdrl_ros.launch import LaunchRunner
    with pytest.raises(ValueError, match='must be >= 0'):
        LaunchRunner([], grace_period=-1.0)
