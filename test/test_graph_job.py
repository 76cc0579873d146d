"""The job runner under `make run` (dcdrl_cloud/graph_job.py) with the real `dcdrl launch` and stand-in
processes (no DDS): a signal to the job stops the whole graph without a traceback, processes the launcher
leaves behind are killed by their pids, and a process that fails at start ends the job at once with its
reason."""
import io
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from dcdrl_cloud.graph_job import GraphJob, pid_alive
from dcdrl_ros.testing import ChildProcess

FIXTURES = Path(__file__).parent / 'fixtures'
TIMEOUT = 60.0

# Runs a GraphJob in a child process, so that the test can signal it as a terminal or `kill` would.
JOB_SCRIPT = '''
import json, sys
from pathlib import Path
from dcdrl_cloud.graph_job import GraphJob
result = GraphJob(sys.argv[2:], None, Path(sys.argv[1]), focus='alpha').run()
print('RESULT ' + json.dumps({'stop_reason': result.stop_reason, 'signal': result.signal_name,
                              'pids': result.pids, 'leftovers': result.leftovers}), flush=True)
'''


def launch_command(fixture):
    return [sys.executable, '-m', 'dcdrl_ros.cli', 'launch', str(FIXTURES / fixture), f'python:={sys.executable}']


def wait_until(condition, what):
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out waiting for {what}')
        time.sleep(0.05)


def started(log_dir, name):
    log = log_dir / f'{name}-1.log'
    return log.exists() and f'{name} started' in log.read_text()


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM], ids=['ctrl-c', 'sigterm'])
def test_a_signal_to_the_job_stops_the_whole_graph_without_a_traceback(tmp_path, signum):
    argv = [sys.executable, '-c', JOB_SCRIPT, str(tmp_path / 'log'), *launch_command('two_sleepers.launch.yaml')]
    with ChildProcess(argv) as job:
        # Each pid is on the 'graph:' line, or on a line of its own when the process started after it.
        assert job.wait_for_line('graph: ', TIMEOUT) and job.wait_for_line('alpha-1 pid', TIMEOUT)
        assert job.wait_for_line('beta-1 pid', TIMEOUT).startswith('graph: ')
        # 'graph:' comes with the pids, before the interpreters finish starting: a signal during Python's
        # start-up ends it with "Fatal Python error" instead of the stand-in's clean stop. Wait for both.
        wait_until(lambda: all(started(tmp_path / 'log', n) for n in ('alpha', 'beta')), 'both stand-ins to start')
        os.kill(job.pid, signum)   # the job alone, as `kill` does (the launcher has its own session)
        assert job.process.wait(TIMEOUT) == 0
        result = json.loads(job.wait_for_line('RESULT ', TIMEOUT).split('RESULT ', 1)[1])
    output = '\n'.join(job.lines)
    assert result['stop_reason'] == 'signal' and result['signal'] == signal.Signals(signum).name
    assert f'main job: {signal.Signals(signum).name}: stopping the graph' in output
    assert 'Traceback' not in output and 'KeyboardInterrupt' not in output
    assert result['leftovers'] == [] and not any(pid_alive(pid) for pid in result['pids'].values())
    # Each process stopped cleanly; its output is in its own log file, not on the screen.
    for name in ('alpha', 'beta'):
        assert f'{name} stopping' in (tmp_path / 'log' / f'{name}-1.log').read_text()
    assert 'beta started' not in output and '[alpha] alpha started' in output   # alpha: the focus


def test_processes_the_launcher_leaves_behind_are_killed_by_their_pids(tmp_path):
    out = io.StringIO()
    job = GraphJob(launch_command('two_sleepers.launch.yaml'), None, tmp_path / 'log', focus=None, out=out)

    def kill_the_launcher():
        wait_until(lambda: 'alpha-1 pid' in out.getvalue() and 'beta-1 pid' in out.getvalue(),
                   'both stand-ins to start')
        os.kill(job._launcher.pid, signal.SIGKILL)   # a crashed launcher: its processes live on

    killer = threading.Thread(target=kill_the_launcher, daemon=True)
    killer.start()
    result = job.run(stop_after=TIMEOUT)
    killer.join(TIMEOUT)
    assert sorted(result.leftovers) == sorted(f'{label} (pid {pid})' for label, pid in result.pids.items())
    assert len(result.leftovers) == 2 and not any(pid_alive(pid) for pid in result.pids.values())
    assert 'still running after the launcher ended' in out.getvalue()


def test_a_process_that_fails_at_start_ends_the_job_at_once_with_its_reason(tmp_path):
    out = io.StringIO()
    job = GraphJob(launch_command('sleeper_and_failure.launch.yaml'), None, tmp_path / 'log', focus=None, out=out)
    started = time.monotonic()
    result = job.run(stop_after=600.0)
    assert time.monotonic() - started < TIMEOUT   # not after stop_after
    assert result.stop_reason == 'failure'
    assert result.failure == 'broken-1 ended (exit code 2): StandIn: threshold must be >= 1, got 0'
    assert not any(pid_alive(pid) for pid in result.pids.values()) and result.leftovers == []
    assert '[broken-1] FATAL: StandIn: threshold must be >= 1, got 0' in out.getvalue()


def test_a_launch_that_refuses_to_start_is_a_failure_with_the_launchers_reason(tmp_path):
    out = io.StringIO()
    command = launch_command('two_sleepers.launch.yaml')[:-1]   # without the required argument 'python'
    result = GraphJob(command, None, tmp_path / 'log', out=out).run(stop_after=TIMEOUT)
    assert result.stop_reason == 'failure' and result.pids == {}
    assert result.failure.startswith('dcdrl launch ended by itself (exit code 1): ') and 'python' in result.failure
