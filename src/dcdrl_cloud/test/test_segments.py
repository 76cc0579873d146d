"""Segments -> transitions: validation, the cloud-side reward, pairing rules, episode summaries."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

from dcdrl_cloud.segments import SegmentPairer, SegmentRejected, SegmentView, SwingUpReward, read_segment
from dcdrl_core.protocol import SegmentFlag
from dcdrl_sim.cartpole.env import CartPoleSwingUpEnv
from dcdrl_sim.cartpole.task import SwingUpTask

OBS, ACT = 10, 1
HANGING = np.array([0.0, 0.0, 0.0, -1.0, 0.0] + [0.0] * 5, np.float32)   # tip 2 L below the target
UPRIGHT = np.array([0.0, 0.0, 0.0, 1.0, 0.0] + [0.0] * 5, np.float32)    # tip on the target


def view(sequence, episode=0, flags=0, obs=None, action=0.0, device='d0', version=1, stamp=0.0):
    return SegmentView(device, sequence, episode, version, HANGING.copy() if obs is None else obs,
                       np.array([action], np.float32), flags, stamp)


def rollout(env, episodes, policy, device='d0', sequence=0, episode=0, evaluation=False, seed=0, version=1):
    """Segments exactly as the edge contract says, and the env's (reward, terminated, truncated) per step."""
    segments, steps = [], []
    extra = SegmentFlag.EVALUATION if evaluation else 0
    for e in range(episode, episode + episodes):
        obs, _ = env.reset(seed=seed + e)
        flags = SegmentFlag.EPISODE_START | extra
        while True:
            action = np.clip(np.asarray(policy(obs), np.float32).reshape(1), -1, 1)
            segments.append(SegmentView(device, sequence, e, version, obs, action, flags, 0.0))
            sequence += 1
            obs, reward, terminated, truncated, _ = env.step(action)
            steps.append((reward, terminated, truncated))
            flags = extra
            if terminated or truncated:
                end = SegmentFlag.TERMINATED if terminated else SegmentFlag.TRUNCATED
                segments.append(SegmentView(device, sequence, e, version, obs, np.zeros(1, np.float32),
                                            extra | end, 0.0))
                sequence += 1
                break
    return segments, steps


# ---------------------------------------------------------------------------------- reward
@pytest.mark.parametrize('integrator', ['semi_implicit_euler', 'euler'])
def test_reward_equals_env_step_reward(integrator):
    env = CartPoleSwingUpEnv(integrator=integrator, max_steps=150)
    reward = SwingUpReward(pole_length=env.dynamics.pole_length, task=env.task)
    rng = np.random.default_rng(3)
    obs, _ = env.reset(seed=1)
    checked = failed = 0
    for step in range(900):
        # Random actions, sometimes a hard push so that some episodes end at the rail (failure penalty).
        action = np.array([1.0 if step % 300 < 40 else rng.uniform(-1.2, 1.2)], np.float32)
        next_obs, env_reward, terminated, truncated, info = env.step(action)
        ours = reward(next_obs, np.clip(action, -1, 1), terminated)
        assert ours == pytest.approx(env_reward, abs=1e-5)
        assert reward.tip_distance(next_obs) == pytest.approx(info['tip_distance'], abs=1e-5)
        checked += 1
        failed += terminated
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
    assert checked == 900 and failed >= 1


def test_reward_constants_and_target():
    task = SwingUpTask(target_x=0.1, target_distance=0.05, failure_penalty=3.0)
    reward = SwingUpReward(0.5, task)
    at_target = np.array([0.1, 0, 0, 1, 0], np.float32)
    assert reward.tip_distance(at_target) == pytest.approx(0.0, abs=1e-7)
    assert reward.on_target(at_target)
    assert not reward.on_target(np.array([0.0, 0, 0, 1, 0], np.float32))  # 10 cm off
    assert reward(at_target, np.array([0.0]), False) == pytest.approx(0.5)
    assert reward(at_target, np.array([1.0]), True) == pytest.approx(0.5 - 0.05 - 3.0)
    with pytest.raises(ValueError, match='pole_length'):
        SwingUpReward(0.0)
    with pytest.raises(TypeError, match='SwingUpTask'):
        SwingUpReward(0.64, task={'target_x': 0})


# ---------------------------------------------------------------------------------- read_segment
def message(**changes):
    fields = dict(device_id='edge-1', sequence=7, episode=2, policy_version=3,
                  observation=np.arange(OBS, dtype=np.float32) / 10, action=np.array([0.5], np.float32),
                  flags=SegmentFlag.EPISODE_START | SegmentFlag.EVALUATION,
                  header=SimpleNamespace(stamp=SimpleNamespace(sec=12, nanosec=500_000_000)))
    fields.update(changes)
    return SimpleNamespace(**fields)


def test_read_segment_accepts_a_good_message_and_copies_arrays():
    msg = message(observation=[0.1] * OBS)  # plain lists (the rclpy path gives array.array) work too
    seg = read_segment(msg, OBS, ACT)
    assert (seg.device_id, seg.sequence, seg.episode, seg.policy_version) == ('edge-1', 7, 2, 3)
    assert seg.episode_start and seg.evaluation and not seg.final
    assert seg.stamp_s == pytest.approx(12.5)
    assert seg.observation.dtype == np.float32 and seg.observation.shape == (OBS,)
    source = np.zeros(ACT, np.float32)
    seg2 = read_segment(message(action=source), OBS, ACT)
    source[0] = 0.9
    assert seg2.action[0] == 0.0  # the view owns its arrays


@pytest.mark.parametrize('changes, reason', [
    ({'observation': np.zeros(OBS - 1, np.float32)}, 'wrong_size'),
    ({'action': np.zeros(2, np.float32)}, 'wrong_size'),
    ({'observation': np.full(OBS, np.nan, np.float32)}, 'not_finite'),
    ({'action': np.array([np.inf], np.float32)}, 'not_finite'),
    ({'action': np.array([1.5], np.float32)}, 'out_of_range'),
    ({'flags': 16}, 'bad_flags'),
    ({'flags': SegmentFlag.TERMINATED | SegmentFlag.TRUNCATED}, 'bad_flags'),
    ({'flags': 300}, 'bad_flags'),
    ({'device_id': ''}, 'device_id'),
    ({'device_id': 'x' * 65}, 'device_id'),
    ({'device_id': 5}, 'malformed'),
    ({'sequence': -1}, 'out_of_range'),
    ({'episode': 1.5}, 'malformed'),
    ({'header': SimpleNamespace()}, 'malformed'),
])
def test_read_segment_refusals(changes, reason):
    with pytest.raises(SegmentRejected) as info:
        read_segment(message(**changes), OBS, ACT)
    assert info.value.reason == reason
    assert isinstance(info.value, ValueError) and reason in str(info.value)


def test_read_segment_missing_field_is_malformed():
    msg = message()
    del msg.action
    with pytest.raises(SegmentRejected) as info:
        read_segment(msg, OBS, ACT)
    assert info.value.reason == 'malformed'


# ---------------------------------------------------------------------------------- pairing
def test_consecutive_segments_make_transitions_with_the_env_rewards():
    env = CartPoleSwingUpEnv(max_steps=40)
    rng = np.random.default_rng(0)
    segments, steps = rollout(env, 3, lambda o: rng.uniform(-1, 1))
    pairer = SegmentPairer(SwingUpReward())
    transitions = [t for t in map(pairer.add, segments) if t is not None]
    assert len(transitions) == len(steps) == 3 * 40
    for t, (env_reward, terminated, truncated) in zip(transitions, steps):
        assert t.reward == pytest.approx(env_reward, abs=1e-5)
        assert (t.terminated, t.truncated) == (terminated, truncated)
    # obs / next_obs / action come from segments k and k+1 of the same episode.
    first, second = transitions[0], transitions[1]
    np.testing.assert_array_equal(first.obs, segments[0].observation)
    np.testing.assert_array_equal(first.action, segments[0].action)
    np.testing.assert_array_equal(first.next_obs, segments[1].observation)
    np.testing.assert_array_equal(second.obs, segments[1].observation)
    assert transitions[39].truncated and not transitions[39].terminated
    counters = pairer.counters()
    assert counters['segments'] == len(segments) and counters['transitions'] == 120
    assert counters['gaps'] == counters['stale'] == counters['episode_mismatch'] == 0
    assert counters['episodes'] == 3 and counters['incomplete_episodes'] == 0


def test_terminated_next_segment_gives_a_terminal_transition_with_the_penalty():
    pairer = SegmentPairer(SwingUpReward())
    assert pairer.add(view(0, flags=SegmentFlag.EPISODE_START)) is None
    t = pairer.add(view(1, flags=SegmentFlag.TERMINATED, action=0.0))
    assert t.terminated and not t.truncated
    assert t.reward == pytest.approx(0.5 * math.exp(-5 * 1.28) - 10.0, abs=1e-6)
    # The next episode's first segment pairs with nothing (a reset lies between them), not even
    # when the sequence jumped over the reset: that is not a gap.
    assert pairer.add(view(5, episode=1, flags=SegmentFlag.EPISODE_START)) is None
    assert pairer.add(view(6, episode=1)) is not None
    assert pairer.counters()['gaps'] == 0 and pairer.counters()['episode_mismatch'] == 0


def test_gap_duplicate_reordering_and_other_episode_give_no_transition():
    pairer = SegmentPairer(SwingUpReward())
    pairer.add(view(10, flags=SegmentFlag.EPISODE_START))
    assert pairer.add(view(11)) is not None
    assert pairer.add(view(11)) is None                      # duplicate
    assert pairer.add(view(14)) is None                      # gap: 12, 13 lost
    assert pairer.add(view(13)) is None                      # late (reordered): older than 14
    assert pairer.add(view(15)) is not None                  # consecutive again
    assert pairer.add(view(16, episode=1)) is None           # other episode without a final segment
    counters = pairer.counters()
    assert counters['stale'] == 2 and counters['gaps'] == 1 and counters['lost_segments'] == 2
    assert counters['episode_mismatch'] == 1 and counters['transitions'] == 2
    # Episode 0 closed (incomplete: the gap, and no final segment) when episode 1 began.
    (summary,) = pairer.pop_finished()
    assert summary.episode == 0 and not summary.complete and summary.length == 2
    assert pairer.pop_finished() == []


def test_interleaved_devices_are_paired_separately():
    env_a, env_b = CartPoleSwingUpEnv(max_steps=20), CartPoleSwingUpEnv(max_steps=25)
    seg_a, steps_a = rollout(env_a, 2, lambda o: 0.3, device='a', sequence=100)
    seg_b, steps_b = rollout(env_b, 2, lambda o: -0.3, device='b', sequence=0, seed=50)
    stream = []
    for i in range(max(len(seg_a), len(seg_b))):
        stream += seg_a[i:i + 1] + seg_b[i:i + 1]
    pairer = SegmentPairer(SwingUpReward())
    transitions = [t for t in map(pairer.add, stream) if t is not None]
    by_device = {d: [t for t in transitions if t.device_id == d] for d in 'ab'}
    assert len(by_device['a']) == len(steps_a) and len(by_device['b']) == len(steps_b)
    for device, steps in (('a', steps_a), ('b', steps_b)):
        for t, (r, _, _) in zip(by_device[device], steps):
            assert t.reward == pytest.approx(r, abs=1e-5)
    per_device = pairer.device_counters()
    assert per_device['a']['transitions'] == 40 and per_device['b']['transitions'] == 50
    assert pairer.counters()['gaps'] == 0


def test_max_devices_refuses_new_devices_only():
    pairer = SegmentPairer(SwingUpReward(), max_devices=2)
    pairer.add(view(0, device='a', flags=SegmentFlag.EPISODE_START))
    pairer.add(view(0, device='b', flags=SegmentFlag.EPISODE_START))
    assert pairer.add(view(0, device='c', flags=SegmentFlag.EPISODE_START)) is None
    assert pairer.add(view(1, device='c')) is None
    assert pairer.unknown_device_refused == 2 and pairer.devices == ['a', 'b']
    assert pairer.add(view(1, device='a')) is not None
    assert pairer.forget('a') and pairer.add(view(0, device='c', flags=SegmentFlag.EPISODE_START)) is None
    assert pairer.devices == ['b', 'c']


def test_controller_restart_starts_over():
    pairer = SegmentPairer(SwingUpReward())
    pairer.add(view(500, flags=SegmentFlag.EPISODE_START, stamp=10.0))
    pairer.add(view(501, stamp=10.1))
    # Same numbers again from a restarted controller (later stamp, EPISODE_START): a new start.
    assert pairer.add(view(0, flags=SegmentFlag.EPISODE_START, stamp=20.0)) is None
    assert pairer.add(view(1, stamp=20.1)) is not None
    # An old EPISODE_START delivered late (earlier stamp) is only stale.
    assert pairer.add(view(0, flags=SegmentFlag.EPISODE_START, stamp=5.0)) is None
    counters = pairer.counters()
    assert counters['restarts'] == 1 and counters['stale'] == 1
    (summary,) = pairer.pop_finished()
    assert not summary.complete and summary.length == 1


# ---------------------------------------------------------------------------------- episodes
def test_episode_summary_return_swing_up_and_flags():
    pairer = SegmentPairer(SwingUpReward())
    reward = SwingUpReward()
    observations = [HANGING, HANGING, HANGING, UPRIGHT, HANGING, UPRIGHT]
    total = 0.0
    for k, obs in enumerate(observations):
        flags = (SegmentFlag.EVALUATION | (SegmentFlag.EPISODE_START if k == 0 else 0)
                 | (SegmentFlag.TRUNCATED if k == len(observations) - 1 else 0))
        t = pairer.add(view(20 + k, episode=4, flags=flags, obs=obs, action=0.2, version=9))
        if t is not None:
            total += t.reward
            assert t.evaluation and t.policy_version == 9
    (summary,) = pairer.pop_finished()
    assert summary.episode_return == pytest.approx(total)
    assert total == pytest.approx(sum(reward(o, np.array([0.2]), False) for o in observations[1:]))
    assert summary.length == 5 and summary.swing_up_steps == 3  # o_3 is the first on target
    assert summary.evaluation and summary.complete and not summary.failed
    assert summary.policy_version == 9 and summary.device_id == 'd0' and summary.episode == 4


def test_failed_training_episode_and_mixed_versions():
    pairer = SegmentPairer(SwingUpReward())
    pairer.add(view(0, flags=SegmentFlag.EPISODE_START, version=1))
    pairer.add(view(1, version=2))
    pairer.add(view(2, version=2))
    pairer.add(view(3, flags=SegmentFlag.TERMINATED, version=2))
    (summary,) = pairer.pop_finished()
    assert summary.failed and summary.complete and not summary.evaluation
    assert summary.swing_up_steps is None and summary.length == 3
    assert summary.policy_version == 2  # chose two of the three actions


def test_gap_makes_the_episode_incomplete_and_swing_up_counts_from_the_start():
    pairer = SegmentPairer(SwingUpReward())
    pairer.add(view(0, flags=SegmentFlag.EPISODE_START | SegmentFlag.EVALUATION))
    pairer.add(view(1, flags=SegmentFlag.EVALUATION))
    pairer.add(view(4, flags=SegmentFlag.EVALUATION, obs=UPRIGHT))   # 2, 3 lost
    pairer.add(view(5, flags=SegmentFlag.EVALUATION | SegmentFlag.TRUNCATED))
    (summary,) = pairer.pop_finished()
    assert not summary.complete and summary.evaluation
    assert summary.swing_up_steps == 4 and summary.length == 2


def test_episode_seen_from_the_middle_is_incomplete_and_has_no_swing_up_time():
    pairer = SegmentPairer(SwingUpReward())
    pairer.add(view(30, obs=UPRIGHT))            # the learner joined mid-episode
    pairer.add(view(31, obs=UPRIGHT, flags=SegmentFlag.TRUNCATED))
    (summary,) = pairer.pop_finished()
    assert not summary.complete and summary.swing_up_steps is None and summary.length == 1


def test_a_segment_without_the_evaluation_flag_makes_the_episode_a_training_one():
    pairer = SegmentPairer(SwingUpReward())
    pairer.add(view(0, flags=SegmentFlag.EPISODE_START | SegmentFlag.EVALUATION))
    pairer.add(view(1))
    pairer.add(view(2, flags=SegmentFlag.EVALUATION | SegmentFlag.TRUNCATED))
    (summary,) = pairer.pop_finished()
    assert not summary.evaluation


def test_pairer_argument_checks():
    with pytest.raises(TypeError, match='SwingUpReward'):
        SegmentPairer(lambda *a: 0.0)
    with pytest.raises(ValueError, match='max_devices'):
        SegmentPairer(SwingUpReward(), max_devices=0)
