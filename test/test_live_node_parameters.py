"""Each DC-DRL node, started as a process, takes its live parameters while it runs and refuses the others.

For every node kind: `set_parameters` (what `ros2 param set` calls) with a live value is accepted and
reaches the node's logic (its log says "parameter X is now V"), a live value out of range is refused
with the node's own reason, and a parameter read at start is refused as read-only. The table of live
parameters is in docs/runtime.md ("Live parameters"); test_ros2_param.py does the same through the
real `ros2 param` on both backends.
"""
import sys

import pytest

from dcdrl_ros.testing import ChildProcess, loopback_env, parameter_session

pytestmark = [pytest.mark.dds]
TIMEOUT = 90.0   # torch and the environments load in each child on a shared 2-core machine

# kind: (package, executable, node name, started line, extra -p settings (with {out}), live: (name, value),
#        refused live value: (name, value, fragment of the reason), read-only: (name, value))
NODES = {
    'replay_buffer': ('dcdrl_cloud', 'replay_buffer', 'replay_buffer', 'replay_buffer started', ['output_dir:={out}'],
                      ('report_period_s', 0.5), ('snapshot_period_s', -1.0, 'Parameter snapshot_period_s out of range'),
                      ('capacity', 10)),
    'learner': ('dcdrl_cloud', 'learner', 'learner', 'learner started',
                ['output_dir:={out}', 'tensorboard:=false', 'eval_period_s:=0.0'],
                ('eval_period_s', 5.0), ('publish_every_updates', 0, 'Parameter publish_every_updates out of range'),
                ('batch_size', 32)),
    'segment_learner': ('dcdrl_cloud', 'segment_learner', 'segment_learner', 'segment learner started',
                        ['output_dir:={out}', 'tensorboard:=false', 'device:=cpu'],
                         ('publish_period_s', 1.0), ('stats_period_s', 0.0, 'stats_period_s'), ('buffer_size', 10)),
    'parameter_server': ('dcdrl_cloud', 'parameter_server', 'parameter_server', 'parameter_server started',
                         ['output_dir:={out}'], ('poll_period_s', 0.25), ('poll_period_s', 0.0, 'must be'),
                         ('expected_models', 5)),
    'client': ('dcdrl_sim', 'client', 'client', 'client client started', ['num_envs:=1', 'batch_steps:=2'],
               ('exploration_noise', 0.1), ('publish_rate_hz', 0.0, 'publish_rate_hz must be'), ('num_envs', 3)),
    'controller': ('dcdrl_edge', 'controller', 'controller', 'started: train', [],
                   ('stats_period_s', 1.0), ('cloud_timeout_s', -1.0, 'cloud_timeout_s must be'), ('rate_hz', 50.0)),
    'camera': ('dcdrl_edge', 'camera', 'camera', 'camera started', ['rate_hz:=2.0'],
               ('jpeg_quality', 50), ('jpeg_quality', 101, 'Parameter jpeg_quality out of range'), ('width', 320)),
    'face_server': ('dcdrl_edge', 'face_server', 'face_server', 'face_server started', [],
                    ('tolerance', 0.4), ('tolerance', 1.5, 'Parameter tolerance out of range'), ('model', 'cnn')),
}


@pytest.fixture
def session(monkeypatch):
    """A parameter client of ours on a fresh loopback domain: (domain, Session)."""
    with parameter_session(monkeypatch) as made:
        yield made


def _set(client, name, value):
    from dcdrl_ros.runtime.parameters import Parameter
    result = client.call('set_parameters', parameters=[Parameter(name, value=value).to_parameter_msg()]).results[0]
    return result.successful, result.reason


@pytest.mark.parametrize('kind', sorted(NODES))
def test_live_parameters_change_and_the_others_are_refused(kind, session, tmp_path):
    domain, params = session
    package, executable, name, started, settings, live, bad, fixed = NODES[kind]
    argv = [sys.executable, '-m', 'dcdrl_ros.cli', 'run', package, executable, '--ros-args', '-r', '__ns:=/dcdrl']
    for setting in settings:
        argv += ['-p', setting.format(out=tmp_path / 'out')]
    with ChildProcess(argv, env=loopback_env(domain)) as node:
        node.wait_for_line(started, TIMEOUT)
        client = params.client(f'/dcdrl/{name}')
        assert _set(client, *live) == (True, '')
        node.wait_for_line(f'parameter {live[0]} is now {live[1]!r}', TIMEOUT)
        successful, reason = _set(client, bad[0], bad[1])
        assert not successful and bad[2] in reason, reason
        assert _set(client, *fixed) == (False, f'Trying to set a read-only parameter: {fixed[0]}.')
        from dcdrl_ros.runtime.parameters import value_from_message
        now = [value_from_message(v)[1] for v in client.call('get_parameters', names=[live[0], fixed[0]]).values]
        assert now[0] == live[1] and now[1] != fixed[1]   # the live value is in, the refused one is not
