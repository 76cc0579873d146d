"""The learner's logic: credits, publish schedule, versions across resume, lag, bad batches, the table."""
import json
import math

import numpy as np
import pytest

from dcdrl_cloud.batches import (
    BatchQueue,
    BatchRejected,
    CreditTracker,
    EnvStepCounter,
    SampledArrays,
    read_sampled_batch,
)
from dcdrl_cloud.learner import Learner, LearnerConfig
from dcdrl_cloud.trainer import LagStats
from dcdrl_learning.codec import decode_weights
from dcdrl_learning.inference import actor_shapes
from dcdrl_learning.networks import architecture_id, network_config
from dcdrl_learning.runlog import read_scalars_csv
from dcdrl_ros import runtime  # noqa: F401  (interface import hook)
from dcdrl_ros.msg_arrays import set_array

from dcdrl_msgs.msg import SampledBatch

MEC = 'dcdrl_sim/MecOffload-v0'  # the paper's encoding; with N = 10 users:
OBS, ACT = 73, 20                 # 7N + 3 observations, 2N actions


class Recorder:
    """LearnerOutputs that keeps everything."""

    def __init__(self):
        self.requests, self.weights, self.priorities, self.stats, self.models, self.lines = [], [], [], [], [], []

    def request_batches(self, count, batch_size):
        self.requests.append((count, batch_size))

    def publish_weights(self, payload):
        self.weights.append(payload)

    def send_priorities(self, indices, priorities):
        self.priorities.append((indices, priorities))

    def publish_stats(self, stats):
        self.stats.append(stats)

    def submit_model(self, payload, fitness, generation):
        self.models.append((payload, fitness, generation))

    def log(self, level, text):
        self.lines.append((level, text))


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make_learner(tmp_path, clock=None, **overrides):
    settings = dict(env_id=MEC, output_dir=str(tmp_path / 'out'), tensorboard=False, progress_period_s=0.0,
                    eval_period_s=0.0, checkpoint_period_s=0.0, stats_period_s=1.0, publish_every_updates=5,
                    actor_start=0, final_eval_episodes=1, oracle_episodes=1, eval_episodes=1, report=False)
    settings.update(overrides)
    out = Recorder()
    learner = Learner(LearnerConfig(**settings), out, name='learner', clock=clock or Clock())
    return learner, out


def arrays(sequence, batch=16, versions=None, replay_size=5000, seed=None):
    rng = np.random.default_rng(sequence if seed is None else seed)
    return SampledArrays(
        sequence=sequence, obs=rng.random((batch, OBS), dtype=np.float32),
        actions=rng.uniform(-1, 1, (batch, ACT)).astype(np.float32), rewards=-rng.random(batch, dtype=np.float32),
        next_obs=rng.random((batch, OBS), dtype=np.float32), discounts=np.full(batch, 0.9, np.float32),
        weights=np.ones(batch, np.float32), indices=np.arange(batch, dtype=np.uint64),
        policy_versions=np.zeros(batch, np.uint64) if versions is None else np.asarray(versions, np.uint64),
        replay_size=replay_size)


def feed(learner, count, start=0, **kwargs):
    for sequence in range(start, start + count):
        learner.receive_batch(arrays(sequence, **kwargs))
        learner.step(0.0)


def message(batch=4, requester='learner', obs_dim=OBS, action_dim=ACT, **changes):
    rng = np.random.default_rng(0)
    m = SampledBatch(requester=requester, sequence=3, batch_size=batch, obs_dim=obs_dim, action_dim=action_dim,
                     replay_size=100)
    fields = {'obs': rng.random(batch * obs_dim), 'actions': rng.random(batch * action_dim),
              'rewards': rng.random(batch), 'next_obs': rng.random(batch * obs_dim),
              'discounts': np.full(batch, 0.9), 'weights': np.ones(batch)}
    fields.update({k: v for k, v in changes.items() if k in fields})
    for name, values in fields.items():
        set_array(m, name, values, np.float32)
    set_array(m, 'indices', changes.get('indices', np.arange(batch)), np.uint64)
    set_array(m, 'policy_versions', changes.get('policy_versions', np.full(batch, 2)), np.uint64)
    return m


# ------------------------------------------------------------------ credits
def test_credits_keep_prefetch_in_flight_and_are_sent_in_chunks():
    credits = CreditTracker(prefetch=8, chunk=2, timeout_s=10.0)
    assert credits.take_request(0.0) == 8
    assert credits.take_request(0.1) == 0             # all 8 out
    for _ in range(3):
        credits.received(0.2)
    credits.consumed()
    assert credits.take_request(0.3) == 0             # one missing: below the chunk of 2
    credits.consumed()
    assert credits.take_request(0.4) == 2             # two missing: request two
    assert credits.in_flight == 8
    assert credits.requested_total == 10


def test_credits_lost_to_a_timeout_or_a_new_replay_are_requested_again():
    credits = CreditTracker(prefetch=4, chunk=2, timeout_s=5.0)
    assert credits.take_request(0.0) == 4
    assert credits.take_request(4.9) == 0
    assert credits.take_request(5.0) == 4             # nothing came for 5 s: written off, asked again
    assert credits.written_off == 4
    credits.received(6.0)
    credits.peer_joined()                             # a restarted replay holds none of our credits
    assert credits.outstanding == 0 and credits.queued == 1
    credits.consumed()
    assert credits.take_request(6.1) == 4
    credits.received(6.2, count=3)                    # a sequence gap: two batches lost on the way
    assert credits.outstanding == 1


def test_learner_requests_credits_at_start_and_as_it_consumes(tmp_path):
    learner, out = make_learner(tmp_path, prefetch_batches=4, credit_batch=2, batch_size=16)
    learner.start()
    assert out.requests == [(4, 16)]
    feed(learner, 4)
    assert [count for count, _ in out.requests] == [4, 2, 2]
    assert learner.credits.in_flight == 4


def test_full_queue_drops_the_oldest_batch():
    queue = BatchQueue(maxlen=2)
    for sequence in range(3):
        queue.put(arrays(sequence, batch=2))
    assert queue.dropped == 1
    assert [queue.get(0).sequence, queue.get(0).sequence, queue.get(0)] == [1, 2, None]


# ------------------------------------------------------------------ versions
def test_weights_are_published_every_p_updates_with_increasing_versions(tmp_path):
    learner, out = make_learner(tmp_path, publish_every_updates=5)
    learner.start()
    assert [p.version for p in out.weights] == [1]    # the initial policy, at once
    feed(learner, 12)
    assert learner.updates == 12
    assert [p.version for p in out.weights] == [1, 2, 3]
    arch = architecture_id(network_config('dcdrl'), OBS, ACT)
    weights = decode_weights(out.weights[-1], arch, actor_shapes(network_config('dcdrl'), OBS, ACT))
    first = decode_weights(out.weights[0], arch)
    assert any(not np.array_equal(weights[k], first[k]) for k in weights)  # training changed the actor
    learner.close(evaluate=False)


def test_versions_continue_upward_after_resume(tmp_path):
    learner, out = make_learner(tmp_path, publish_every_updates=5)
    learner.start()
    feed(learner, 7)
    learner.close(evaluate=False)                     # checkpoint at version 2, 7 updates
    last = out.weights[-1].version
    assert last == 2

    resumed, out2 = make_learner(tmp_path, publish_every_updates=5)
    assert resumed.resumed_from == last and resumed.updates == 7
    resumed.start()
    assert out2.weights[0].version == last + 1
    arch = resumed.architecture_id
    restored = decode_weights(out2.weights[0], arch)
    saved = {k: v.numpy() for k, v in learner.agent.actor_state().items()}
    assert all(np.array_equal(restored[k], saved[k]) for k in saved)  # the checkpoint's actor
    feed(resumed, 3, start=100)
    assert resumed.updates == 10 and out2.weights[-1].version == last + 2  # update 10 publishes
    resumed.close(evaluate=False)

    fresh, out3 = make_learner(tmp_path, resume=False)
    fresh.start()
    # Fresh networks, but versions continue above everything published from this output_dir:
    # consumers holding a newer version would refuse a restart at 1.
    assert out3.weights[0].version == 5 and fresh.updates == 0
    fresh.close(evaluate=False)


def test_algorithm_sac_trains_publishes_and_resumes_with_its_temperature(tmp_path):
    learner, out = make_learner(tmp_path, algorithm='sac', publish_every_updates=5)
    learner.start()
    feed(learner, 7)
    assert type(learner.agent).__name__ == 'SacAgent' and learner.agent.actor_updates == 7
    learner.close(evaluate=False)
    arch = architecture_id(network_config('dcdrl'), OBS, ACT)
    decode_weights(out.weights[-1], arch, actor_shapes(network_config('dcdrl'), OBS, ACT))   # the edge's actor
    resumed, _ = make_learner(tmp_path, algorithm='sac', publish_every_updates=5)
    assert resumed.updates == 7 and resumed.agent.alpha == learner.agent.alpha != 0.2
    resumed.close(evaluate=False)


def test_resume_refuses_a_checkpoint_of_another_architecture(tmp_path):
    learner, _ = make_learner(tmp_path)
    learner.start()
    learner.close(evaluate=False)
    with pytest.raises(ValueError, match='cannot resume'):
        make_learner(tmp_path, network_preset='cloud_edge')


# ------------------------------------------------------------------ lag, stats, priorities
def test_lag_stats_min_mean_max_and_reset():
    lag = LagStats()
    assert all(math.isnan(v) for v in lag.snapshot())
    lag.add(5, np.array([5, 4, 1], np.uint64))
    lag.add(6, np.array([7], np.uint64))              # newer data (a merged generation): negative, no wrap
    assert lag.snapshot() == (-1.0, (0 + 1 + 4 - 1) / 4, 4.0)
    assert math.isnan(lag.snapshot()[1])


def test_training_stats_carry_lag_losses_rates_and_counts(tmp_path):
    clock = Clock()
    learner, out = make_learner(tmp_path, clock=clock, publish_every_updates=100)
    learner.start()                                   # version 1
    feed(learner, 3, versions=[0] * 8 + [1] * 8)
    learner.reject('non_finite')
    learner.observe_replay(transitions_received=12_000, size=9_000)
    clock.now += 2.0
    learner.step(0.0)
    stats = out.stats[-1]
    assert (stats['version_lag_min'], stats['version_lag_mean'], stats['version_lag_max']) == (0.0, 0.5, 1.0)
    assert stats['updates'] == 3 and stats['policy_version'] == 1 and stats['rejected_batches'] == 1
    assert stats['env_steps'] == 12_000 and stats['replay_size'] == 9_000
    assert stats['updates_per_sec'] == pytest.approx(1.5)
    assert math.isfinite(stats['critic_loss']) and math.isfinite(stats['q_mean'])
    assert math.isnan(stats['eval_return'])           # no evaluation yet
    learner.close(evaluate=False)


def test_priorities_follow_td_errors_only_when_prioritized(tmp_path):
    learner, out = make_learner(tmp_path, prioritized=True)
    learner.start()
    feed(learner, 2)
    assert len(out.priorities) == 2
    indices, priorities = out.priorities[0]
    assert indices.tolist() == list(range(16)) and priorities.dtype == np.float32 and (priorities >= 0).all()
    learner.close(evaluate=False)
    uniform, out2 = make_learner(tmp_path / 'u')
    uniform.start()
    feed(uniform, 2)
    assert out2.priorities == []
    uniform.close(evaluate=False)


def test_sequence_gaps_count_lost_batches(tmp_path):
    learner, _ = make_learner(tmp_path)
    learner.start()
    for sequence in (0, 1, 5):
        learner.receive_batch(arrays(sequence))
    assert learner.lost_batches == 3
    learner.close(evaluate=False)


def test_episode_stats_with_nan_or_an_overlong_client_id_are_ignored_and_counted(tmp_path):
    learner, _ = make_learner(tmp_path)
    assert learner.record_episode('client_0', -3.0, 1.5, 20) == ''
    assert learner.record_episode('client_0', math.nan, 1.5, 20) == 'NaN/Inf'
    assert learner.record_episode('c' * 65, -3.0, 1.5, 20) == 'a client_id of 65 characters (at most 64)'
    assert learner.summary()['episodes_refused'] == 2 and len(learner._episodes) == 1
    learner.close(evaluate=False)


def test_env_step_counter_survives_a_replay_restart_and_a_resume():
    counter = EnvStepCounter(start=500)
    assert counter.observe(100) == 500                # the checkpoint's total is a floor
    assert counter.observe(900) == 900
    assert counter.observe(50) == 950                 # the replay restarted from 0
    assert counter.observe(200) == 1100


# ------------------------------------------------------------------ bad batches
def test_valid_message_is_read():
    batch = read_sampled_batch(message(batch=4), 'learner', OBS, ACT)
    assert batch.obs.shape == (4, OBS) and batch.actions.shape == (4, ACT)
    assert batch.policy_versions.tolist() == [2] * 4 and batch.sequence == 3 and batch.replay_size == 100


@pytest.mark.parametrize('changes, reason', [
    ({'requester': 'other'}, 'wrong_requester'),
    ({'obs_dim': 9}, 'wrong_dims'),
    ({'batch': 0}, 'bad_length'),
    ({'rewards': np.ones(3)}, 'bad_length'),
    ({'indices': np.arange(2)}, 'bad_length'),
    ({'policy_versions': np.arange(3)}, 'bad_length'),
    ({'obs': np.full(4 * OBS, np.nan)}, 'non_finite'),
    ({'weights': np.array([1, 1, np.inf, 1])}, 'non_finite'),
    ({'discounts': np.full(4, 1.5)}, 'bad_values'),
    ({'weights': np.full(4, -1.0)}, 'bad_values'),
])
def test_bad_batches_are_refused_with_a_reason(changes, reason):
    changes = dict(changes)
    batch = changes.pop('batch', 4)
    requester = changes.pop('requester', 'learner')
    obs_dim = changes.pop('obs_dim', OBS)
    with pytest.raises(BatchRejected) as info:
        read_sampled_batch(message(batch=batch, requester=requester, obs_dim=obs_dim, **changes),
                           'learner', OBS, ACT)
    assert info.value.reason == reason


def test_batches_without_versions_are_accepted_and_skip_the_lag():
    batch = read_sampled_batch(message(policy_versions=np.zeros(0)), 'learner', OBS, ACT)
    lag = LagStats()
    lag.add(3, batch.policy_versions)
    assert lag.count == 0


# ------------------------------------------------------------------ evaluation, duration, collective
def test_final_evaluation_table_has_every_baseline_row(tmp_path):
    clock = Clock()
    learner, out = make_learner(tmp_path, clock=clock, duration_s=10.0, publish_every_updates=100)
    learner.start()
    feed(learner, 3)
    assert not learner.step(0.0)
    clock.now += 10.0
    assert learner.step(0.0)                          # duration elapsed
    summary = learner.finish()
    assert out.weights[-1].version == summary['version'] == 2  # the final weights were published
    for key in ('version', 'updates', 'env_steps', 'eval_cost', 'eval_return', 'output_dir', 'wall_s'):
        assert key in summary
    data = json.loads((tmp_path / 'out' / 'evaluation.json').read_text())
    names = [row['policy'] for row in data['rows']]
    assert names == ['learned', 'local_only', 'full_offload', 'random', 'greedy', 'oracle']
    for row in data['rows']:
        for column in ('return', 'cost', 'latency_s', 'energy_j', 'deadline_miss_ratio', 'offload_fraction',
                       'decision_ms'):
            assert math.isfinite(row[column]), (row['policy'], column)
    assert summary['eval_cost'] == pytest.approx(data['rows'][0]['cost'])
    table = (tmp_path / 'out' / 'evaluation.md').read_text()
    assert all(f'| {name} |' in table for name in names)
    assert json.loads((tmp_path / 'out' / 'learner.json').read_text())['version'] == 2
    learner.close()
    again = learner.finish()                          # idempotent: no second publish or evaluation
    assert again['version'] == summary['version'] and len(out.weights) == 2


def test_the_scores_mec_env_is_compared_with_the_same_baselines_and_the_oracle():
    from dcdrl_sim.comparison import baseline_factories, final_evaluation
    assert list(baseline_factories('dcdrl_sim/MecOffloadScores-v0')) == ['local_only', 'full_offload', 'random',
                                                                        'greedy']
    results = final_evaluation('dcdrl_sim/MecOffloadScores-v0', lambda obs: np.zeros(10, dtype=np.float32),
                               episodes=1, oracle_episodes=1, seed=0)
    assert [r.name for r in results] == ['learned', 'local_only', 'full_offload', 'random', 'greedy', 'oracle']


def test_periodic_evaluation_sets_eval_return_and_cost(tmp_path):
    clock = Clock()
    learner, out = make_learner(tmp_path, clock=clock, eval_period_s=5.0)
    learner.start()
    clock.now += 5.0
    learner.step(0.0)
    clock.now += 1.0
    learner.step(0.0)
    assert math.isfinite(out.stats[-1]['eval_return']) and out.stats[-1]['eval_cost'] > 0
    learner.close(evaluate=False)


def test_the_first_evaluation_scores_the_initial_policy_before_any_update(tmp_path):
    # A batch is already waiting when the learner starts (a seeded or busy replay buffer): the learning curve's first
    # point must still be the initial policy, not one moved by an update (one Adam step can flip MEC decisions).
    learner, _ = make_learner(tmp_path, eval_period_s=600.0, eval_episodes=2)
    initial = learner.evaluate().summary['cost']
    learner.receive_batch(arrays(0))
    learner.start()
    learner.step(0.0)
    assert learner.updates == 1
    learner.close(evaluate=False)
    scalars = read_scalars_csv(next((tmp_path / 'out').glob('*/scalars.csv')))
    evaluations = [(step, value) for step, tag, value in scalars if tag == 'eval/cost']
    assert evaluations[0] == (0, pytest.approx(initial))


def test_max_updates_ends_the_run_like_the_duration_and_counts_this_process_only(tmp_path):
    learner, _ = make_learner(tmp_path, max_updates=3)
    learner.start()
    done = []
    for sequence in range(3):
        learner.receive_batch(arrays(sequence))
        done.append(learner.step(0.0))
    assert done == [False, False, True] and learner.updates == 3
    assert learner.finish()['finished_reason'] == 'updates'
    learner.close(evaluate=False)
    resumed, _ = make_learner(tmp_path, max_updates=2)   # resumes at 3 updates: two more
    resumed.start()
    for sequence in range(5, 7):
        resumed.receive_batch(arrays(sequence))
        assert resumed.step(0.0) == (sequence == 6)
    assert resumed.updates == 5
    resumed.close(evaluate=False)


def test_collective_mode_submits_the_model_for_the_next_generation(tmp_path):
    clock = Clock()
    learner, out = make_learner(tmp_path, clock=clock, mode='collective', generation_period_s=5.0)
    learner.start()
    learner.observe_generation(3)
    clock.now += 5.0
    learner.step(0.0)
    payload, fitness, generation = out.models[0]
    assert generation == 4 and math.isfinite(fitness) and payload.version == learner.version
    learner.close(evaluate=False)


@pytest.mark.parametrize('kwargs', [
    {'batch_size': 0}, {'prefetch_batches': 2, 'credit_batch': 3}, {'algorithm': 'ppo'}, {'mode': 'solo'},
    {'duration_s': -1.0}, {'stats_period_s': 0.0}, {'gamma': 1.5}, {'max_queued_batches': 4},
    {'eval_episodes': 0}, {'env_id': ''},
])
def test_bad_configuration_is_refused(kwargs):
    with pytest.raises(ValueError):
        LearnerConfig(**kwargs)


def test_discrete_action_env_is_refused(tmp_path):
    with pytest.raises(ValueError, match='Box action space'):
        make_learner(tmp_path, env_id='dcdrl_sim/FaceOffload-v0')


def test_updates_per_sec_limit_paces_training(tmp_path):
    clock = Clock()
    learner, _ = make_learner(tmp_path, clock=clock, updates_per_sec_limit=10.0)
    learner.start()
    for sequence in range(3):
        learner.receive_batch(arrays(sequence))
    learner.step(0.0)
    learner.step(0.0)                                 # 0 s later: the limiter holds the next update
    assert learner.updates == 1
    clock.now += 0.1
    learner.step(0.0)
    assert learner.updates == 2
    learner.close(evaluate=False)


def test_a_diverged_agent_does_not_overwrite_the_checkpoint(tmp_path):
    learner, out = make_learner(tmp_path)
    learner.start()
    feed(learner, 2)
    assert learner.save_checkpoint()
    good = (tmp_path / 'out' / 'learner.ckpt').read_bytes()
    with np.errstate(all='ignore'):
        next(learner.agent.actor.parameters()).data.fill_(float('nan'))
    assert not learner.save_checkpoint()
    assert (tmp_path / 'out' / 'learner.ckpt').read_bytes() == good
    assert out.lines[-1][0] == 'error'
    learner.close(evaluate=False)
