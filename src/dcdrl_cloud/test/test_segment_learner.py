"""The segments-mode learner: storing, the update ratio, publishing, evaluation requests, convergence,
best weights, checkpoint resume, fine-tuning from a checkpoint, refused segments."""
import json
import re
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dcdrl_cloud.segment_learner import MAX_UPDATES_PER_STEP, SegmentLearner, SegmentLearnerConfig
from dcdrl_cloud.segments import SegmentView
from dcdrl_core.protocol import EdgeCommandKind, SegmentFlag
from dcdrl_learning.agents import Agent, AgentConfig
from dcdrl_learning.checkpoint import save_checkpoint
from dcdrl_learning.codec import decode_weights, payload_from_bytes
from dcdrl_learning.inference import actor_shapes
from dcdrl_learning.networks import architecture_id, network_config
from dcdrl_sim.cartpole.env import CartPoleSwingUpEnv

OBS, ACT = 10, 1
HANGING = np.array([0.0, 0.0, 0.0, -1.0, 0.0] + [0.0] * 5, np.float32)
UPRIGHT = np.array([0.0, 0.0, 0.0, 1.0, 0.0] + [0.0] * 5, np.float32)
TRAINING_STATS_MSG = Path(__file__).resolve().parents[2] / 'dcdrl_msgs' / 'msg' / 'TrainingStats.msg'


class Recorder:
    """SegmentLearnerOutputs that keeps everything."""

    def __init__(self):
        self.weights, self.stats, self.episodes, self.commands, self.lines = [], [], [], [], []

    def publish_weights(self, payload):
        self.weights.append(payload)

    def publish_stats(self, stats):
        self.stats.append(stats)

    def publish_episode(self, summary):
        self.episodes.append(summary)

    def send_command(self, kind):
        self.commands.append(kind)

    def log(self, level, text):
        self.lines.append((level, text))


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def make_learner(tmp_path, clock=None, out_dir='out', **overrides):
    settings = dict(output_dir=str(tmp_path / out_dir), tensorboard=False, progress_period_s=0.0, device='cpu',
                    batch_size=8, buffer_size=5000, critic_start=20, actor_start=20, publish_period_s=0.5,
                    checkpoint_period_s=0.0, stats_period_s=1.0, eval_every_episodes=2)
    settings.update(overrides)
    out = Recorder()
    learner = SegmentLearner(SegmentLearnerConfig(**settings), out, clock=clock or Clock())
    return learner, out


class Edge:
    """A simulated edge controller: drives CartPoleSwingUpEnv and emits segments per the contract."""

    def __init__(self, device='d0', max_steps=30, seed=0):
        self.env = CartPoleSwingUpEnv(max_steps=max_steps)
        self.rng = np.random.default_rng(seed)
        self.device, self.sequence, self.episode, self.seed = device, 0, 0, seed
        self.rewards = []

    def episode_segments(self, version=1, evaluation=False):
        extra = SegmentFlag.EVALUATION if evaluation else 0
        obs, _ = self.env.reset(seed=self.seed + self.episode)
        flags = SegmentFlag.EPISODE_START | extra
        out = []
        while True:
            action = self.rng.uniform(-1, 1, 1).astype(np.float32)
            out.append(SegmentView(self.device, self.sequence, self.episode, version, obs, action, flags, 0.0))
            self.sequence += 1
            obs, reward, terminated, truncated, _ = self.env.step(action)
            self.rewards.append(reward)
            flags = extra
            if terminated or truncated:
                end = SegmentFlag.TERMINATED if terminated else SegmentFlag.TRUNCATED
                out.append(SegmentView(self.device, self.sequence, self.episode, version, obs,
                                       np.zeros(1, np.float32), extra | end, 0.0))
                self.sequence += 1
                self.episode += 1
                return out


def feed(learner, segments):
    for seg in segments:
        learner.receive(seg)


def drain(learner, limit=1000):
    """step(0) until no gradient step is owed; returns the number of step calls."""
    for calls in range(1, limit):
        before = learner.updates
        learner.step(0.0)
        if learner.updates == before:
            return calls
    raise AssertionError('training never caught up')


def evaluation_episode(sequence, episode, version, swing_up_at, steps=10, device='d0', upright_steps=1):
    """Stubbed evaluation episode: the tip is on target at step swing_up_at (for upright_steps steps)."""
    segments = []
    for k in range(steps + 1):
        flags = (SegmentFlag.EVALUATION | (SegmentFlag.EPISODE_START if k == 0 else 0)
                 | (SegmentFlag.TRUNCATED if k == steps else 0))
        on = swing_up_at is not None and swing_up_at <= k < swing_up_at + upright_steps
        segments.append(SegmentView(device, sequence + k, episode, version, (UPRIGHT if on else HANGING).copy(),
                                    np.zeros(1, np.float32), flags, 0.0))
    return segments


def stored_rows(learner):
    storage = learner.buffer._storage
    return storage.split(storage.gather(storage.chronological_indices()))


# ---------------------------------------------------------------------------------- config
@pytest.mark.parametrize('changes, match', [
    ({'algorithm': 'ppo'}, 'algorithm'),
    ({'network_preset': 'huge'}, 'network_preset'),
    ({'batch_size': 0}, 'batch_size'),
    ({'updates_per_transition': 0.0}, 'updates_per_transition'),
    ({'eval_every_episodes': -1}, 'eval_every_episodes'),
    ({'convergence_evals': 0}, 'convergence_evals'),
    ({'publish_period_s': float('nan')}, 'publish_period_s'),
    ({'gamma': 1.5}, 'gamma'),
    ({'resume': 'yes'}, 'resume'),
    ({'target_distance': 0.0}, 'target_distance'),
    ({'pole_length': -1.0}, 'pole_length'),
    ({'critic_start': 100, 'buffer_size': 50}, 'critic_start'),
    ({'init_checkpoint': None}, 'init_checkpoint'),
])
def test_config_refuses_bad_values(changes, match):
    with pytest.raises(ValueError, match=match):
        SegmentLearnerConfig(**changes)


def test_config_presets_and_overrides():
    agent = SegmentLearnerConfig().agent_config()
    assert (agent.batch_size, agent.critic_start, agent.actor_start, agent.gamma) == (128, 3500, 5000, 0.99)
    agent = SegmentLearnerConfig(batch_size=32, critic_start=10, actor_start=20, gamma=0.9,
                                 buffer_size=1000).agent_config()
    assert (agent.batch_size, agent.critic_start, agent.actor_start, agent.gamma, agent.buffer_size) == \
        (32, 10, 20, 0.9, 1000)


# ---------------------------------------------------------------------------------- storing, ratio
def test_start_publishes_version_1_and_transitions_are_stored(tmp_path):
    learner, out = make_learner(tmp_path, critic_start=100)
    assert learner.weights_for_request() is None  # nothing published before start()
    learner.start()
    assert [p.version for p in out.weights] == [1]
    arch = architecture_id(network_config('cloud_edge'), OBS, ACT)
    decode_weights(out.weights[0], arch, actor_shapes(network_config('cloud_edge'), OBS, ACT))
    assert learner.weights_for_request(0) is out.weights[0]
    assert learner.weights_for_request(2) is None
    edge = Edge()
    segments = edge.episode_segments() + edge.episode_segments()
    feed(learner, segments)
    assert learner.env_steps == len(learner.buffer) == 60
    learner.step(0.0)
    assert learner.updates == 0  # below critic_start
    rows = stored_rows(learner)
    np.testing.assert_allclose(rows['rewards'].reshape(-1), edge.rewards, atol=1e-5)
    np.testing.assert_array_equal(rows['obs'][0], segments[0].observation)
    np.testing.assert_array_equal(rows['next_obs'][0], segments[1].observation)
    # Truncated ends bootstrap (gamma), terminated ones would not.
    np.testing.assert_allclose(rows['discounts'], 0.99)
    learner.close()


def test_terminated_transitions_do_not_bootstrap(tmp_path):
    learner, _ = make_learner(tmp_path)
    feed(learner, [SegmentView('d0', 0, 0, 1, HANGING, np.zeros(1, np.float32), SegmentFlag.EPISODE_START, 0.0),
                   SegmentView('d0', 1, 0, 1, HANGING, np.zeros(1, np.float32), 0, 0.0),
                   SegmentView('d0', 2, 0, 1, HANGING, np.zeros(1, np.float32), SegmentFlag.TERMINATED, 0.0)])
    discounts = stored_rows(learner)['discounts'].reshape(-1)
    np.testing.assert_allclose(discounts, [0.99, 0.0])
    assert stored_rows(learner)['rewards'][-1] < -9.0  # the failure penalty


@pytest.mark.parametrize('ratio, expected', [(1.0, 11), (2.0, 22), (0.5, 5)])
def test_trains_at_the_ratio_after_critic_start(tmp_path, ratio, expected):
    learner, _ = make_learner(tmp_path, updates_per_transition=ratio)
    learner.start()
    edge = Edge(max_steps=30)
    feed(learner, edge.episode_segments())          # 30 transitions; critic_start 20 -> 11 eligible
    drain(learner)
    assert learner.updates == expected
    learner.step(0.0)
    assert learner.updates == expected              # never ahead of the ratio
    feed(learner, edge.episode_segments()[:11])     # 10 more transitions
    drain(learner)
    assert learner.updates == int((11 + 10) * ratio)
    learner.close()


def test_a_backlog_is_counted_and_worked_off(tmp_path):
    learner, _ = make_learner(tmp_path, critic_start=5, max_devices=1)
    learner.start()
    feed(learner, Edge(max_steps=60).episode_segments())   # 60 transitions: 56 updates owed at once
    learner.step(0.0)
    assert learner.updates == MAX_UPDATES_PER_STEP
    assert learner.updates_behind == 56 - MAX_UPDATES_PER_STEP and learner.max_updates_behind == 24
    learner.step(0.0)
    assert learner.updates == 56 and learner.updates_behind == 0
    assert learner.summary()['max_updates_behind'] == 24
    learner.close()


def test_step_waits_for_data_and_wakes(tmp_path):
    learner, _ = make_learner(tmp_path, critic_start=1)
    learner.start()
    segments = Edge().episode_segments()

    def producer():
        feed(learner, segments[:2])

    thread = threading.Thread(target=producer)
    thread.start()
    # Waits (bounded) until the producer's transition arrives, then trains once.
    deadline = 0
    while learner.updates == 0 and deadline < 200:
        learner.step(timeout=0.05)
        deadline += 1
    thread.join(timeout=5)
    assert learner.updates == 1
    learner.wake()
    learner.step(timeout=10.0)  # returns at once after wake(), nothing owed
    learner.close()


# ---------------------------------------------------------------------------------- publishing
def test_publishes_increasing_versions_at_the_period_only_when_changed(tmp_path):
    clock = Clock()
    learner, out = make_learner(tmp_path, clock=clock, critic_start=5, actor_start=5)
    learner.start()
    edge = Edge()
    feed(learner, edge.episode_segments())
    drain(learner)
    assert [p.version for p in out.weights] == [1]         # the period has not passed yet
    clock.now += 0.6
    learner.step(0.0)
    assert [p.version for p in out.weights] == [1, 2]
    clock.now += 0.6
    learner.step(0.0)
    assert [p.version for p in out.weights] == [1, 2]      # the actor did not change
    assert learner.weights_for_request(3) is None          # asks for a publish as soon as it changed
    feed(learner, edge.episode_segments())
    learner.step(0.0)
    assert [p.version for p in out.weights] == [1, 2, 3]   # on request, before the period
    assert learner.weights_for_request(3) is out.weights[-1]
    assert not np.array_equal(out.weights[0].arrays[0], out.weights[2].arrays[0])
    learner.close()


def test_critic_only_updates_do_not_publish(tmp_path):
    clock = Clock()
    learner, out = make_learner(tmp_path, clock=clock, critic_start=5, actor_start=1000)
    learner.start()
    feed(learner, Edge().episode_segments())
    drain(learner)
    clock.now += 1.0
    learner.step(0.0)
    assert learner.updates > 0 and [p.version for p in out.weights] == [1]
    learner.close()


def test_stats_carry_the_training_stats_fields_and_version_lag(tmp_path):
    clock = Clock()
    learner, out = make_learner(tmp_path, clock=clock, critic_start=5, actor_start=5, publish_period_s=0.0)
    learner.start()
    edge = Edge()
    feed(learner, edge.episode_segments(version=1))
    drain(learner)                                         # publishes version 2
    feed(learner, edge.episode_segments(version=1))        # data from version 1 while 2 is out: lag 1
    learner.reject('not_finite')
    clock.now += 1.0
    learner.step(0.0)
    stats = out.stats[-1]
    fields = {line.split()[1] for line in TRAINING_STATS_MSG.read_text().splitlines()
              if line.strip() and not line.startswith('#') and not line.startswith('std_msgs')}
    assert set(stats) == fields
    assert stats['env_steps'] == 60 and stats['replay_size'] == 60 and stats['rejected_batches'] == 1
    assert stats['version_lag_min'] >= 0 and stats['version_lag_max'] >= 1
    assert stats['updates'] == learner.updates and np.isfinite(stats['critic_loss'])
    assert np.isnan(stats['eval_return']) and np.isnan(stats['eval_cost'])
    run_lag = learner.summary()['version_lag_mean']     # whole run, not reset by the stats period
    assert run_lag is not None and 0.0 <= run_lag <= stats['version_lag_max']
    learner.step(0.0)
    assert learner.summary()['version_lag_mean'] == run_lag
    learner.close()


# ---------------------------------------------------------------------------------- evaluation
def test_sends_evaluate_every_n_training_episodes(tmp_path):
    learner, out = make_learner(tmp_path, eval_every_episodes=2)
    learner.start()
    edge = Edge(max_steps=10)
    for _ in range(5):
        feed(learner, edge.episode_segments())
        learner.step(0.0)
    assert out.commands == [EdgeCommandKind.EVALUATE, EdgeCommandKind.EVALUATE]
    assert [s.episode for s in out.episodes] == [0, 1, 2, 3, 4] and learner.episodes == 5
    learner.close()


def test_initial_evaluations_are_requested_until_done(tmp_path):
    learner, out = make_learner(tmp_path, initial_evaluations=2, eval_every_episodes=0)
    learner.start()
    assert out.commands == [EdgeCommandKind.EVALUATE]
    edge = Edge(max_steps=10)
    feed(learner, edge.episode_segments())           # the edge was mid-episode: ask again
    learner.step(0.0)
    assert out.commands == [EdgeCommandKind.EVALUATE, EdgeCommandKind.EVALUATE]
    feed(learner, evaluation_episode(edge.sequence, edge.episode, 1, swing_up_at=None))
    learner.step(0.0)
    assert out.commands == [EdgeCommandKind.EVALUATE] * 3            # one more evaluation owed
    feed(learner, evaluation_episode(edge.sequence + 20, edge.episode + 1, 1, swing_up_at=None))
    learner.step(0.0)
    assert out.commands == [EdgeCommandKind.EVALUATE] * 3 and learner.tracker.evaluations == 2
    learner.close()


def test_convergence_time_to_converge_hold_and_best_weights(tmp_path):
    clock = Clock()
    learner, out = make_learner(tmp_path, clock=clock, critic_start=5, actor_start=5, convergence_evals=3,
                                max_swing_up_steps=5, publish_period_s=0.0)
    learner.start()
    edge = Edge(max_steps=20)
    feed(learner, edge.episode_segments())
    drain(learner)
    assert [p.version for p in out.weights] == [1, 2]
    seq, ep = edge.sequence, edge.episode
    # (version, swing-up step, steps upright): a late swing-up resets the streak; version 2's long
    # stay on target gives the highest return.
    plan = [(1, 2, 1), (2, 8, 1), (2, 3, 6), (1, 4, 1), (1, 2, 2)]
    for i, (version, at, upright) in enumerate(plan):
        clock.now += 10.0
        feed(learner, evaluation_episode(seq + 20 * i, ep + i, version, at, upright_steps=upright))
        done = learner.step(0.0)
        assert done == (i == len(plan) - 1)
    assert learner.tracker.history == [2, 8, 3, 4, 2]
    assert learner.converged and learner.steps_to_converge == 20 + 5 * 10
    assert learner.updates_to_converge == learner.updates and learner.wall_s_to_converge == pytest.approx(50.0)
    assert out.commands[-1] == EdgeCommandKind.HOLD
    returns = [s.episode_return for s in out.episodes if s.evaluation]
    assert learner.best_version == 2 and learner.best_eval_return == pytest.approx(max(returns))
    best = payload_from_bytes((tmp_path / 'out' / 'best_actor.safetensors').read_bytes())
    assert best.version == 2
    arch = architecture_id(network_config('cloud_edge'), OBS, ACT)
    arrays = decode_weights(best, arch, actor_shapes(network_config('cloud_edge'), OBS, ACT))
    np.testing.assert_array_equal(arrays['weight_0'].reshape(-1), out.weights[1].arrays[0])
    summary = learner.finish()
    saved = json.loads((tmp_path / 'out' / 'learner.json').read_text())
    assert saved['converged'] and saved['steps_to_converge'] == 70 and saved['best_version'] == 2
    assert summary['finished_reason'] == 'converged' and summary['evaluations'] == 5
    latest = payload_from_bytes((tmp_path / 'out' / 'actor.safetensors').read_bytes())
    assert latest.version == learner.version
    learner.close()


def test_incomplete_evaluations_are_not_scored(tmp_path):
    learner, out = make_learner(tmp_path, max_swing_up_steps=5)
    learner.start()
    segments = evaluation_episode(0, 0, 1, swing_up_at=2)
    feed(learner, segments[:4] + segments[6:])          # a gap
    learner.step(0.0)
    assert learner.tracker.evaluations == 0 and learner.evaluations_incomplete == 1
    assert not (tmp_path / 'out' / 'best_actor.safetensors').exists()
    assert any(level == 'warning' for level, _ in out.lines)
    learner.close()


def test_run_returns_the_summary_at_convergence(tmp_path):
    learner, out = make_learner(tmp_path, convergence_evals=2, max_swing_up_steps=5)
    feed(learner, evaluation_episode(0, 0, 1, swing_up_at=2))
    feed(learner, evaluation_episode(20, 1, 1, swing_up_at=3))
    summary = learner.run(threading.Event())
    assert summary['converged'] and summary['steps_to_converge'] == 20
    # Version 1 is the untrained initial actor: it counts for convergence but is never "best".
    assert out.commands == [EdgeCommandKind.HOLD] and summary['best_version'] is None and summary['best_actor'] is None
    learner.close()
    # Started again in the same output_dir: it resumes a converged run, says so and finishes at once.
    again, out = make_learner(tmp_path, convergence_evals=2, max_swing_up_steps=5)
    assert again.run(threading.Event())['finished_reason'] == 'converged'
    assert any('this run converged already (version 1): it finishes at once' in text for _, text in out.lines)
    again.close()


def test_only_an_evaluated_trained_policy_becomes_best_and_the_log_says_which(tmp_path):
    learner, out = make_learner(tmp_path, critic_start=5, actor_start=5, publish_period_s=0.0,
                                eval_every_episodes=0, max_swing_up_steps=5)
    best_file = tmp_path / 'out' / 'best_actor.safetensors'
    learner.start()
    edge = Edge(max_steps=20)
    # The untrained version 1 swings up in an evaluation: scored, logged, not kept.
    feed(learner, evaluation_episode(0, 0, 1, swing_up_at=2, upright_steps=5))
    learner.step(0.0)
    assert learner.tracker.evaluations == 1 and learner.best_version is None and not best_file.exists()
    assert 'version 1 is the untrained initial actor' in out.lines[-1][1]
    edge.sequence, edge.episode = 100, 1
    feed(learner, edge.episode_segments())
    drain(learner)
    trained = learner.version
    assert trained > 1 and learner.agent.actor_updates > 0
    for k, (at, upright) in enumerate([(3, 1), (2, 4), (4, 1)]):
        feed(learner, evaluation_episode(200 + 20 * k, 10 + k, trained, swing_up_at=at, upright_steps=upright))
        learner.step(0.0)
    lines = [text for level, text in out.lines if text.startswith('evaluation ')]
    assert len(lines) == 4
    assert re.search(rf'evaluation 2 \(d0 episode 10, version {trained}\): return [-0-9.]+, swing-up at step 3, .*'
                     rf'new best: version {trained} written to .*best_actor.safetensors$', lines[1])
    assert re.search(r'evaluation 3 .* swing-up at step 2, .*new best: .*\(previous best: version \d+, '
                     r'evaluation 2, return', lines[2])
    assert re.search(r'evaluation 4 .*best stays version \d+ \(evaluation 3, return', lines[3])
    assert learner.best_version == trained and payload_from_bytes(best_file.read_bytes()).version == trained
    learner.close()
    note = out.lines[-1][1]
    assert note.startswith(f'best policy: {best_file} (version {trained}, evaluation 3, return ')
    assert f"{tmp_path / 'out' / 'actor.safetensors'} holds the latest policy (version {learner.version})" in note
    assert json.loads((tmp_path / 'out' / 'learner.json').read_text())['best_evaluation'] == 3


@pytest.mark.parametrize('evaluate_untrained', [False, True], ids=['no-evaluation', 'untrained-only'])
def test_a_run_stopped_before_a_trained_policy_was_evaluated_says_so_and_writes_no_best(tmp_path,
                                                                                       evaluate_untrained):
    learner, out = make_learner(tmp_path, max_swing_up_steps=5)
    learner.start()
    if evaluate_untrained:
        feed(learner, evaluation_episode(0, 0, 1, swing_up_at=2))
        learner.step(0.0)
    learner.close()
    assert not (tmp_path / 'out' / 'best_actor.safetensors').exists()
    assert (tmp_path / 'out' / 'actor.safetensors').exists()
    why = 'only the untrained initial actor was evaluated' if evaluate_untrained else \
        'no evaluation of a trained policy happened'
    assert out.lines[-1] == ('info', f"{why}: no best policy from this run; {tmp_path / 'out' / 'actor.safetensors'} "
                                     'holds the latest policy (version 1), not evaluated')
    assert json.loads((tmp_path / 'out' / 'learner.json').read_text())['best_actor'] is None


def test_a_best_actor_of_an_earlier_run_is_named_as_such(tmp_path):
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'best_actor.safetensors').write_bytes(b'earlier')
    learner, out = make_learner(tmp_path, resume=False)
    learner.start()
    assert any(level == 'warning' and 'is from an earlier run' in text for level, text in out.lines)
    learner.close()
    assert '(the best_actor.safetensors there is from an earlier run)' in out.lines[-1][1]


def test_run_stops_on_the_event_and_after_duration(tmp_path):
    stop = threading.Event()
    stop.set()
    learner, _ = make_learner(tmp_path)
    assert learner.run(stop) is None
    learner.close()
    assert json.loads((tmp_path / 'out' / 'learner.json').read_text())['finished_reason'] == 'stopped'
    clock = Clock()
    learner, _ = make_learner(tmp_path, clock=clock, out_dir='out2', duration_s=5.0)
    learner.start()
    assert not learner.step(0.0)
    clock.now += 5.0
    assert learner.step(0.0) and learner.finish()['finished_reason'] == 'duration'
    learner.close()


# ---------------------------------------------------------------------------------- resume, fine-tuning
def test_checkpoint_resume_continues_versions_counters_and_replay(tmp_path):
    clock = Clock()
    learner, out = make_learner(tmp_path, clock=clock, critic_start=5, actor_start=5, publish_period_s=0.0,
                                max_swing_up_steps=5)
    learner.start()
    edge = Edge()
    feed(learner, edge.episode_segments())
    drain(learner)
    evaluated = learner.version
    feed(learner, evaluation_episode(edge.sequence, edge.episode, evaluated, swing_up_at=2))
    learner.step(0.0)
    version, updates, steps = learner.version, learner.updates, learner.env_steps
    actor = learner.agent.actor_state()
    learner.close()

    resumed, out2 = make_learner(tmp_path, clock=clock, critic_start=5, actor_start=5, publish_period_s=0.0)
    assert resumed.resumed_from == version
    assert (resumed.updates, resumed.env_steps, len(resumed.buffer)) == (updates, steps, steps)
    assert resumed.tracker.evaluations == 1 and resumed.tracker.streak == 1
    assert resumed.best_version == evaluated and evaluated < version
    for name, tensor in resumed.agent.actor_state().items():
        assert np.array_equal(tensor.numpy(), actor[name].numpy())
    resumed.start()
    assert out2.weights[0].version == version + 1
    resumed.close()

    fresh, out3 = make_learner(tmp_path, resume=False)
    fresh.start()
    # Fresh networks, but versions continue above everything published from this output_dir:
    # consumers holding a newer version would refuse a restart at 1.
    assert out3.weights[0].version == 5 and fresh.updates == 0
    fresh.close()


def test_algorithm_sac_trains_and_publishes_the_edge_actor(tmp_path):
    learner, out = make_learner(tmp_path, algorithm='sac', critic_start=5, actor_start=5, publish_period_s=0.0)
    learner.start()
    feed(learner, Edge(max_steps=30).episode_segments())
    drain(learner)
    assert type(learner.agent).__name__ == 'SacAgent' and learner.agent.actor_updates > 0
    learner.step(0.0)
    arch = architecture_id(network_config('cloud_edge'), OBS, ACT)
    newest = out.weights[-1]
    assert newest.version > 1   # the trained policy, as the edge decodes it
    decode_weights(newest, arch, actor_shapes(network_config('cloud_edge'), OBS, ACT))
    learner.close()


def test_init_checkpoint_fine_tuning_loads_weights_with_a_fresh_buffer(tmp_path):
    pretrained = Agent(AgentConfig.preset('cloud_edge', seed=7, device='cpu'), OBS, ACT)
    path = tmp_path / 'scratch.safetensors'
    save_checkpoint(path, pretrained, version=7, extra={'env_steps': 123})
    learner, out = make_learner(tmp_path, init_checkpoint=str(path))
    assert learner.init_version == 7 and len(learner.buffer) == 0 and learner.updates == 0
    learner.start()
    assert out.weights[0].version == 8
    expected = pretrained.actor_state()
    for name, array in out.weights[0].named_arrays().items():
        np.testing.assert_array_equal(array, expected[name].numpy())
    assert learner.summary()['init_version'] == 7
    learner.close()

    # A pretrained actor (actor updates in its checkpoint) is a trained policy: its zero-shot
    # evaluation on the new plant can be the fine-tuning run's first best.
    pretrained.actor_updates = 50
    save_checkpoint(path, pretrained, version=7, extra={})
    tuned, out = make_learner(tmp_path, out_dir='o1', init_checkpoint=str(path), max_swing_up_steps=5)
    tuned.start()
    feed(tuned, evaluation_episode(0, 0, 8, swing_up_at=2))
    tuned.step(0.0)
    assert tuned.best_version == 8 and (tmp_path / 'o1' / 'best_actor.safetensors').exists()
    tuned.close()

    with pytest.raises(ValueError, match='does not exist'):
        make_learner(tmp_path, out_dir='o2', init_checkpoint=str(tmp_path / 'missing.ckpt'))
    with pytest.raises(ValueError, match='cannot fine-tune'):
        make_learner(tmp_path, out_dir='o3', init_checkpoint=str(path), network_preset='dcdrl')


# ---------------------------------------------------------------------------------- bad input
def message(sequence, flags=0, observation=None, device_id='edge-1', action=0.1):
    return SimpleNamespace(device_id=device_id, sequence=sequence, episode=0, policy_version=1,
                           observation=HANGING.copy() if observation is None else observation,
                           action=np.array([action], np.float32), flags=flags,
                           header=SimpleNamespace(stamp=SimpleNamespace(sec=1, nanosec=0)))


def test_bad_segments_are_counted_and_nothing_stored_is_lost(tmp_path):
    learner, _ = make_learner(tmp_path)
    good = [message(0, SegmentFlag.EPISODE_START)] + [message(k) for k in range(1, 11)]
    bad = [message(3, observation=np.full(OBS, np.nan, np.float32)), message(4, flags=64),
           message(5, device_id=''), message(6, observation=np.zeros(3, np.float32))]
    stream = good[:3] + bad[:2] + good[3:6] + bad[2:] + good[6:] + [good[4]]   # and a late duplicate
    for msg in stream:
        learner.receive_message(msg)
    assert learner.env_steps == len(learner.buffer) == 10
    assert learner.rejected == {'not_finite': 1, 'bad_flags': 1, 'device_id': 1, 'wrong_size': 1}
    wrong = SegmentView('edge-1', 11, 0, 1, np.zeros(3, np.float32), np.zeros(1, np.float32), 0, 0.0)
    assert learner.receive(wrong) is None and learner.rejected['wrong_size'] == 2
    summary = learner.summary()
    assert summary['rejected'] == 5 and summary['pairer']['stale'] == 1 and summary['pairer']['transitions'] == 10
    learner.close()


def test_run_in_a_thread_while_segments_arrive_from_another(tmp_path):
    learner, out = make_learner(tmp_path, critic_start=10, actor_start=10, convergence_evals=2,
                                max_swing_up_steps=5, eval_every_episodes=0)
    stop, result = threading.Event(), []
    trainer = threading.Thread(target=lambda: result.append(learner.run(stop)))
    trainer.start()
    edge = Edge(max_steps=25)
    for _ in range(4):
        feed(learner, edge.episode_segments())
    feed(learner, evaluation_episode(edge.sequence, edge.episode, 1, swing_up_at=2))
    feed(learner, evaluation_episode(edge.sequence + 20, edge.episode + 1, 1, swing_up_at=2))
    trainer.join(timeout=60)
    stop.set()
    assert not trainer.is_alive()
    (summary,) = result
    assert summary['converged'] and summary['steps_to_converge'] == 4 * 25 + 20
    # Never more gradient steps than the ratio allows (1 per transition from critic_start on).
    assert summary['env_steps'] == 120 and summary['updates'] <= 120 - 10 + 1
    assert out.commands == [EdgeCommandKind.HOLD] and out.weights[0].version == 1
    learner.close()


def test_versions_published_after_the_last_checkpoint_are_not_reused(tmp_path):
    """A learner killed between checkpoints resumes above the last version it published."""
    from dcdrl_cloud.learner import PUBLISHED_VERSION_NAME
    from dcdrl_learning.checkpoint import PublishedVersion
    PublishedVersion(tmp_path / PUBLISHED_VERSION_NAME).record(41)
    learner = SegmentLearner(SegmentLearnerConfig(output_dir=str(tmp_path), device='cpu', tensorboard=False),
                             Recorder())
    learner.start()
    assert learner.version == 42 and (tmp_path / PUBLISHED_VERSION_NAME).read_text().strip() == '42'
