"""`make run`'s job end to end (dcdrl_cloud/main_job.py): the launched graph streams experience and the
report adds up; bad arguments are refused before anything starts; a signal stops the whole graph and
still leaves the report; a node that fails at start ends the job at once; --help names the console
script and shows the defaults."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dcdrl_cloud.graph_job import pid_alive
from dcdrl_ros.testing import ChildProcess, fresh_domain_id, loopback_env

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120.0   # torch, the environments and DDS discovery in five children on a shared 2-core machine
JOB = [sys.executable, '-m', 'dcdrl_cloud.main_job']


def graph_pids(lines):
    """label -> pid from the job's 'graph: replay_buffer-1 pid 123, ...' line."""
    line = next(line for line in lines if line.startswith('graph: '))
    return {label: int(pid) for label, pid in re.findall(r'([\w.]+-\d+) pid (\d+)', line)}


@pytest.mark.dds
@pytest.mark.slow
def test_main_job_reports_experience_from_both_clients(tmp_path):
    env = loopback_env(fresh_domain_id())
    result = subprocess.run([*JOB, '--graph', 'stream', '--duration', '6', '--num-envs', '2',
                             '--runs-dir', str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    saved = [line for line in result.stdout.splitlines() if line.startswith('report saved to ')][0]
    report = json.loads(open(saved.split('report saved to ', 1)[1]).read())
    assert report['rejected'] == 0 and report['transitions'] > 0
    assert set(report['clients']) == {'client_0', 'client_1'}
    assert all(c['transitions'] > 0 and c['lost_batches'] == 0 for c in report['clients'].values())
    assert report['replay_size'] == report['transitions']
    assert 'DC-DRL stream demo report' in result.stdout


@pytest.mark.parametrize('arguments, message', [
    (['--duration', '-5'], '--duration must be a number of seconds >= 0 (0 = until stopped), got -5'),
    (['--env-id', 'dcdrl_sim/Nope-v0'], "--env-id 'dcdrl_sim/Nope-v0' is not a registered environment"),
    (['--seed', '-1'], '--seed must be >= 0, got -1'),
    (['--params-file', 'no_such_file.yaml'], '--params-file no_such_file.yaml: '),
], ids=['duration', 'env-id', 'seed', 'params-file'])
def test_bad_arguments_are_refused_in_one_line_before_anything_starts(tmp_path, arguments, message):
    result = subprocess.run([*JOB, *arguments, '--runs-dir', str(tmp_path)], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ''
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith('python -m dcdrl_cloud.main_job: error: ' + message), lines
    assert list(tmp_path.iterdir()) == []   # no run folder: nothing started


def test_help_names_the_console_script_and_shows_the_defaults():
    result = subprocess.run([sys.executable, '-m', 'dcdrl_ros.cli', 'run', 'dcdrl_cloud', 'train', '--help'],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('usage: dcdrl run dcdrl_cloud train ') and 'main_job.py' not in result.stdout
    for default in ('(default: 240.0)', '(default: 2)', '(default: dcdrl_sim/MecOffloadScores-v0)',
                    '(default: central)', '(default: <workspace>/runs)'):
        assert default in result.stdout
    plain = subprocess.run([*JOB, '--help'], capture_output=True, text=True, timeout=60)
    assert plain.stdout.startswith('usage: python -m dcdrl_cloud.main_job ')


@pytest.mark.dds
@pytest.mark.slow
@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT], ids=['sigterm', 'ctrl-c'])
def test_a_signal_stops_the_whole_graph_and_the_report_is_still_written(tmp_path, signum):
    name = signal.Signals(signum).name
    with ChildProcess([*JOB, '--duration', '120', '--runs-dir', str(tmp_path)],
                      env=loopback_env(fresh_domain_id())) as job:
        job.wait_for_line('[learner] step ', TIMEOUT)   # the learner trains
        pids = graph_pids(job.lines)
        os.kill(job.pid, signum)   # the job alone: `kill`, timeout, systemd, a CI runner (Ctrl-C: the same pid)
        assert job.process.wait(TIMEOUT) == 0
        job.wait_for_line(f'main job: stopped by {name}', 10.0)
    output = '\n'.join(job.lines)
    assert 'Traceback' not in output and 'KeyboardInterrupt' not in output
    assert set(pids) == {'replay_buffer-1', 'learner-1', 'parameter_server-1', 'client-1', 'client-2'}
    assert not [label for label, pid in pids.items() if pid_alive(pid)]
    report = Path(job.wait_for_line('report: ', 1.0).split('report: ', 1)[1].split(' (plots', 1)[0])
    assert '## Final evaluation' in report.read_text() and (report.parent / 'learning_curve.png').is_file()
    # The screen is the learner's; every node's INFO lines are in its own log file.
    assert 'acting with policy version' not in output
    assert 'acting with policy version' in (report.parent / 'log' / 'client-1.log').read_text()


@pytest.mark.dds
@pytest.mark.slow
def test_a_node_that_fails_at_start_ends_the_job_at_once(tmp_path):
    params = yaml.safe_load((ROOT / 'config' / 'train.yaml').read_text())
    params.setdefault('/**/learner', {'ros__parameters': {}})['ros__parameters']['batch_size'] = 0
    params_file = tmp_path / 'bad_learner.yaml'
    params_file.write_text(yaml.safe_dump(params))
    started = time.monotonic()
    result = subprocess.run([*JOB, '--duration', '600', '--params-file', str(params_file), '--runs-dir',
                             str(tmp_path / 'runs')], env=loopback_env(fresh_domain_id()), capture_output=True,
                            text=True, timeout=TIMEOUT)
    assert time.monotonic() - started < TIMEOUT and result.returncode == 1, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]  # the node's one [FATAL] line: the range rclpy refuses
    assert last.startswith('main job: failed: learner-1 ended (exit code 2): LearnerNode: ') and \
        'batch_size out of range' in last, last
    pids = graph_pids(result.stdout.splitlines())
    assert len(pids) == 5 and not [label for label, pid in pids.items() if pid_alive(pid)]
    assert 'Traceback' not in result.stdout + result.stderr
