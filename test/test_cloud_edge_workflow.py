"""The cloud-edge workflow's commands as a user meets them, in processes:

- a missing weights file ends the controller with one [FATAL] line and exit 2 (`dcdrl run`, `dcdrl
  launch`, and `ros2 run` on the real ROS 2), before any loop or plant starts;
- eval mode logs every episode's return and swing-up steps, publishes them on episode_stats, stops
  after eval_episodes and sums them in its final report (both backends);
- a segments-mode learner stopped before it evaluated a trained policy writes no best_actor and says
  which file holds the latest policy.
"""
import json
import math
import re
import sys

import pytest

from dcdrl_ros.testing import ChildProcess, TopicRecorder, fresh_domain_id, loopback_env

pytestmark = [pytest.mark.dds, pytest.mark.slow]
TIMEOUT = 90.0   # torch imports and discovery on a loaded 2-core machine
DCDRL = [sys.executable, '-m', 'dcdrl_ros.cli']
MISSING = 'runs/finetune/best_actor.safetensors'   # the README's path, relative to a fresh directory


def _finish(child: ChildProcess, timeout: float = TIMEOUT) -> int:
    """Wait for a child that ends by itself; stop it (and fail) if it does not."""
    try:
        code = child.process.wait(timeout)
    finally:
        child.stop()
    return code


def _fatal_lines(lines):
    return [line for line in lines if '[FATAL]' in line]


def _assert_one_fatal_line(lines):
    assert not any('Traceback' in line for line in lines), '\n'.join(lines)
    (fatal,) = _fatal_lines(lines)
    assert f"weights_file '{MISSING}' does not exist, nor does 'runs/finetune'" in fatal
    assert 'actor.safetensors (its latest policy)' in fatal


def test_a_missing_weights_file_is_one_fatal_line_and_exit_2_with_dcdrl_run(tmp_path):
    child = ChildProcess([*DCDRL, 'run', 'dcdrl_edge', 'controller', '--ros-args', '-p', 'mode:=eval',
                          '-p', f'weights_file:={MISSING}'], env=loopback_env(fresh_domain_id()), cwd=str(tmp_path))
    assert _finish(child) == 2
    assert len(child.lines) == 1, child.lines     # nothing but the one line
    _assert_one_fatal_line(child.lines)


def test_a_missing_weights_file_is_one_fatal_line_with_dcdrl_launch(tmp_path):
    child = ChildProcess([*DCDRL, 'launch', 'dcdrl_edge', 'edge.launch.yaml', 'mode:=eval',
                          f'weights_file:={MISSING}'], env=loopback_env(fresh_domain_id()), cwd=str(tmp_path))
    assert _finish(child) != 0
    _assert_one_fatal_line(child.lines)
    assert any(re.search(r'\[controller-1\]: process has died \[pid \d+, exit code 2,', line) for line in child.lines)


def test_a_missing_weights_file_is_one_fatal_line_and_exit_2_with_ros2_run(ros2_ws, tmp_path):
    env = ros2_ws.environment(ROS_DOMAIN_ID=str(fresh_domain_id()), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    child = ChildProcess(['ros2', 'run', 'dcdrl_edge', 'controller', '--ros-args', '-p',
                          f'weights_file:={MISSING}'], env=env, cwd=str(tmp_path))
    assert _finish(child) == 2
    _assert_one_fatal_line(child.lines)


def _write_actor_file(path):
    from dcdrl_learning.codec import encode_weights, payload_to_bytes
    from dcdrl_learning.networks import PRESETS, architecture_id, build_actor
    config = PRESETS['cloud_edge']
    payload = encode_weights(build_actor(config, 10, 1, seed=3), architecture_id(config, 10, 1), 12)
    path.write_bytes(payload_to_bytes(payload))


@pytest.mark.parametrize('backend', ['cyclone', 'rclpy'])
def test_eval_mode_reports_returns_and_swing_up_steps_and_stops_after_eval_episodes(request, tmp_path, domain,
                                                                                    backend):
    from dcdrl_ros import runtime  # first: its import hook provides dcdrl_msgs

    from dcdrl_msgs.msg import EpisodeStats
    weights = tmp_path / 'best_actor.safetensors'
    _write_actor_file(weights)
    if backend == 'rclpy':
        ws = request.getfixturevalue('ros2_ws')
        env = ws.environment(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
                             DCDRL_BACKEND='rclpy')
        python = ws.python()
    else:
        env, python = loopback_env(domain), sys.executable
    # 10x real time, short episodes that start with the pole upright (some on target at once).
    params = ['mode:=eval', f'weights_file:={weights}', 'eval_episodes:=3', 'rate_hz:=300.0', 'sim_rate_hz:=30.0',
              'sim_max_steps:=40', 'sim_init_theta_mean:=0.0', 'sim_init_theta_std:=0.0', 'stats_period_s:=0.2',
              'device_id:=edge_e']
    argv = [python, '-m', 'dcdrl_ros.cli', 'run', 'dcdrl_edge', 'controller', '--ros-args']
    for param in params:
        argv += ['-p', param]
    recorder = TopicRecorder(domain, namespace='/dcdrl')
    try:
        episodes = recorder.record(EpisodeStats, 'episode_stats', runtime.qos_profile_sensor_data,
                                   lambda m: (m.client_id, m.episode, m.episode_return, m.cost, m.length))
        child = ChildProcess(argv, env=env)
        child.wait_for_line('controller edge_e started: eval at 300 Hz', TIMEOUT)
        assert _finish(child) == 0, '\n'.join(child.lines)
        logged = [re.search(r'evaluation episode (\d+) \(#(\d+)\): return ([-0-9.]+), '
                            r'(?:swung up after (\d+) steps \([0-9.]+ s\)|never swung up), (\d+) steps', line)
                  for line in child.lines if ': evaluation episode ' in line]
        assert len(logged) >= 3 and all(logged), child.lines
        assert [int(m.group(2)) for m in logged] == list(range(1, len(logged) + 1))
        swing_ups = [int(m.group(4)) if m.group(4) else None for m in logged]
        assert any('3 evaluation episodes done: stopping' in line for line in child.lines)
        final = next(line for line in child.lines if line.startswith('evaluation: '))
        assert final.startswith(f'evaluation: {len(logged)} episodes, return mean ')
        shown = ', '.join('-' if steps is None else str(steps) for steps in swing_ups)
        assert final.endswith(f'swung up in {sum(s is not None for s in swing_ups)} of {len(logged)} '
                              f'(swing-up steps: {shown})')
        report = json.loads(next(line for line in child.lines if line.startswith('CONTROLLER REPORT '))
                            [len('CONTROLLER REPORT '):])['evaluation']
        assert report['episodes'] == len(logged) and report['swing_up_steps'] == swing_ups
        assert report['returns'] == pytest.approx([float(m.group(3)) for m in logged], abs=0.01)
        # The same episodes on episode_stats (cost = swing-up steps, NaN = never), as scope and rqt_plot read them.
        recorder.wait_for(lambda: len(episodes) >= 3, TIMEOUT, 'episode_stats from the controller')
        by_episode = {int(m.group(1)): (float(m.group(3)), steps, int(m.group(5)))
                      for m, steps in zip(logged, swing_ups)}
        for device, episode, episode_return, cost, length in list(episodes):
            expected_return, steps, expected_length = by_episode[episode]
            assert device == 'edge_e' and length == expected_length <= 40
            assert episode_return == pytest.approx(expected_return, abs=0.01)
            assert cost == steps if steps is not None else math.isnan(cost)
    finally:
        recorder.close()


def test_a_learner_stopped_before_evaluating_a_trained_policy_writes_no_best_and_says_so(tmp_path, domain):
    out = tmp_path / 'pretrain'
    child = ChildProcess([*DCDRL, 'run', 'dcdrl_cloud', 'segment_learner', '--ros-args',
                          '-p', f'output_dir:={out}', '-p', 'tensorboard:=false'], env=loopback_env(domain))
    with child:
        child.wait_for_line('segment learner started', TIMEOUT)
        assert child.stop(TIMEOUT) == 0
    note = next((line for line in child.lines if 'no best policy from this run' in line), None)
    assert note is not None, '\n'.join(child.lines)
    assert note.endswith(f'no evaluation of a trained policy happened: no best policy from this run; '
                         f'{out}/actor.safetensors holds the latest policy (version 1), not evaluated')
    assert (out / 'actor.safetensors').is_file() and not (out / 'best_actor.safetensors').exists()
    assert json.loads((out / 'learner.json').read_text())['best_actor'] is None
