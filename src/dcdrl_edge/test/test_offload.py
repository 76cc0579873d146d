"""The offloading logic without ROS: config, observation, decisions, outcomes, experience, link emulation."""
import math
import threading

import numpy as np
import pytest

from dcdrl_edge.link_emulator import LinkEmulator, parse_schedule
from dcdrl_edge.offload import OffloadController
from dcdrl_edge.offload_config import POLICIES, OffloadConfig
from dcdrl_edge.offload_decision import DecisionMaker, TaskObserver
from dcdrl_edge.offload_records import EXTRA_NAMES, TransitionAssembler
from dcdrl_sim.face.env import LOCAL, OFFLOAD, FaceOffloadEnv

MP = 640 * 480 / 1e6


def constant_actor(value):
    return lambda obs: np.array([value], np.float32)


# ------------------------------------------------------------------------------ config
def test_config_defaults_are_the_face_envs_constants():
    config = OffloadConfig()
    env = FaceOffloadEnv()
    model = config.model_env()
    for name in ('deadline_s', 'latency_weight', 'energy_weight', 'miss_penalty', 'device_cpu_power_w',
                 'radio_power_w', 'bandwidth_max_mbps', 'megapixel_scale', 'face_scale', 'deadline_scale'):
        assert getattr(model, name) == getattr(env, name), name
    assert OffloadConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize('changes,match', [
    ({'policy': 'smart'}, 'policy must be one of'), ({'initial_policy': 'learned'}, 'initial_policy'),
    ({'deadline_s': 0.0}, 'deadline_s must be > 0'), ({'exploration_noise': -0.1}, 'exploration_noise'),
    ({'bandwidth_smoothing': 0.0}, 'bandwidth_smoothing'), ({'random_offload_probability': 1.5}, 'must be \\[0, 1\\]'),
    ({'max_in_flight': 0}, 'max_in_flight'), ({'episode_tasks': 2.5}, 'episode_tasks'),
    ({'offload_timeout_s': math.nan}, 'offload_timeout_s'), ({'device_id': ''}, 'device_id'),
    ({'megapixels_per_frame': []}, 'megapixels_per_frame'), ({'bandwidth_max_mbps': 0.1}, 'bandwidth_max_mbps'),
    ({'training': 'yes'}, 'training must be a bool')])
def test_bad_config_values_are_refused_with_the_field_name(changes, match):
    with pytest.raises((ValueError, TypeError), match=match):
        OffloadConfig(**changes)


def test_unknown_config_keys_are_refused():
    with pytest.raises(ValueError, match='unknown OffloadConfig fields'):
        OffloadConfig.from_dict({'polcy': 'local'})


# ------------------------------------------------------------------------------ observation
def test_initial_observation_decodes_to_the_measured_values():
    config = OffloadConfig()
    observer = TaskObserver(config)
    obs = observer.observe(100.0, MP)
    assert obs.shape == (8,) and obs.dtype == np.float32
    values = config.model_env().decode_observation(obs)
    assert values['megapixels'] == pytest.approx(MP, rel=1e-6)
    assert values['deadline_s'] == pytest.approx(2.0)
    assert values['bandwidth_mbps'] == pytest.approx(8.0)
    assert values['server_slowdown'] == pytest.approx(1.0)
    assert obs[0] == obs[1] == obs[2] == obs[6] == 0.0


def test_worker_backlog_adds_queued_tasks_and_resets_at_each_finish():
    config = OffloadConfig()
    observer = TaskObserver(config)
    expected = config.device_seconds_per_megapixel * MP   # no faces seen yet
    observer.local_queued(0, 10.0, MP)
    observer.local_queued(1, 10.0, MP)
    obs = observer.observe(10.0, MP)
    assert obs[0] * config.deadline_s == pytest.approx(2 * expected, rel=1e-5)
    obs = observer.observe(10.5, MP)      # time passes: less left
    assert obs[0] * config.deadline_s == pytest.approx(2 * expected - 0.5, rel=1e-5)
    observer.local_done(0, 11.0, MP, faces=2, compute_time_s=expected, ok=True)
    assert observer.faces_estimate == 2
    remaining = observer.worker_free_at - 11.0
    assert remaining == pytest.approx(expected, rel=1e-6)   # task 1's estimate (made with 0 faces)
    observer.local_done(1, 11.4, MP, faces=1, compute_time_s=expected, ok=True)
    assert observer.observe(11.4, MP)[0] == 0.0


def test_local_slowdown_follows_measured_compute_time():
    config = OffloadConfig(local_estimate_smoothing=0.5)
    observer = TaskObserver(config)
    nominal = config.device_seconds_per_megapixel * MP
    observer.local_queued(0, 0.0, MP)
    observer.local_done(0, 1.0, MP, faces=0, compute_time_s=3 * nominal, ok=True)
    assert observer.local_slowdown == pytest.approx(2.0)      # 1 + 0.5 * (3 - 1)
    assert observer.local_time(MP, 0) == pytest.approx(2 * nominal)


def test_bandwidth_estimate_from_clean_offloads_only():
    config = OffloadConfig(bandwidth_smoothing=0.5)
    observer = TaskObserver(config)
    observer.offload_queued(0, 0.0, MP, 100_000)
    observer.offload_done(0, 1.0, MP, ok=True, faces=1, server_compute_s=0.1, round_trip_s=0.5,
                          image_bytes=100_000, clean=True)   # 800 kbit in 0.4 s = 2 Mbit/s
    assert observer.bandwidth_mbps == pytest.approx(8.0 + 0.5 * (2.0 - 8.0))
    observer.offload_queued(1, 1.0, MP, 100_000)
    observer.offload_done(1, 2.0, MP, ok=True, faces=1, server_compute_s=0.1, round_trip_s=5.0,
                          image_bytes=100_000, clean=False)  # shared the server with another request
    assert observer.bandwidth_mbps == pytest.approx(5.0) and observer.bandwidth_samples == 1
    # an absurdly fast sample is clipped to the model's range
    observer.offload_done(2, 2.0, MP, ok=True, server_compute_s=0.1, round_trip_s=0.1001, image_bytes=10**6,
                          clean=True)
    assert observer.bandwidth_mbps <= config.bandwidth_max_mbps


def test_server_slowdown_and_backlogs_of_offloads():
    config = OffloadConfig(server_estimate_smoothing=1.0, initial_bandwidth_mbps=8.0)
    observer = TaskObserver(config)
    nbytes = 40_000
    upload = nbytes * 8 / 8e6
    server = config.server_seconds_per_megapixel * MP
    observer.offload_queued(0, 0.0, MP, nbytes)
    obs = observer.observe(0.0, MP)
    assert obs[1] * config.deadline_s == pytest.approx(upload, rel=1e-5)
    assert obs[2] * config.deadline_s == pytest.approx(upload + server, rel=1e-5)
    observer.offload_done(0, 0.5, MP, ok=True, faces=0, server_compute_s=2 * server, round_trip_s=0.5,
                          image_bytes=nbytes, clean=True)
    assert observer.server_slowdown == pytest.approx(2.0)
    obs = observer.observe(0.5, MP)
    assert obs[4] == pytest.approx(0.5)   # slow-down 2 / 4
    assert obs[1] == obs[2] == 0.0        # nothing in flight


def test_observation_refuses_a_bad_size():
    with pytest.raises(ValueError, match='megapixels'):
        TaskObserver(OffloadConfig()).observe(0.0, math.nan)


# ------------------------------------------------------------------------------ decisions
@pytest.mark.parametrize('policy,decision', [('local', LOCAL), ('offload', OFFLOAD)])
def test_fixed_baselines_and_their_action_halves(policy, decision):
    maker = DecisionMaker(OffloadConfig(policy=policy))
    obs = TaskObserver(OffloadConfig()).observe(0.0, MP)
    for _ in range(50):
        got, action, who = maker.decide(obs, constant_actor(0.9))   # the actor is ignored
        assert got == decision and who == policy
        assert (0.0 < action <= 1.0) if decision == OFFLOAD else (-1.0 < action <= 0.0)


def test_random_baseline_is_seeded_and_follows_its_probability():
    obs = np.zeros(8, np.float32)
    runs = []
    for _ in range(2):
        maker = DecisionMaker(OffloadConfig(policy='random', random_offload_probability=0.25, seed=4))
        runs.append([maker.decide(obs)[0] for _ in range(2000)])
    assert runs[0] == runs[1]
    assert 0.2 < np.mean(runs[0]) < 0.3


def test_greedy_is_the_envs_estimate_costs_rule():
    config = OffloadConfig(policy='greedy')
    maker = DecisionMaker(config)
    env = FaceOffloadEnv()
    rng = np.random.default_rng(0)
    chosen = set()
    for _ in range(200):
        obs = rng.uniform(0, 1, 8).astype(np.float32)
        local, offload = env.estimate_costs(obs)
        decision = maker.decide(obs)[0]
        assert decision == (OFFLOAD if offload < local else LOCAL)
        chosen.add(decision)
    assert chosen == {LOCAL, OFFLOAD}


def test_learned_policy_uses_the_actor_sign_with_noise_only_when_training():
    obs = np.zeros(8, np.float32)
    quiet = DecisionMaker(OffloadConfig(policy='learned', training=False))
    assert quiet.decide(obs, constant_actor(0.3)) == (OFFLOAD, pytest.approx(0.3), 'learned')
    assert quiet.decide(obs, constant_actor(-0.05))[0] == LOCAL
    noisy = DecisionMaker(OffloadConfig(policy='learned', training=True, exploration_noise=0.5, seed=1))
    draws = [noisy.decide(obs, constant_actor(0.1)) for _ in range(500)]
    values = np.array([d[1] for d in draws])
    assert values.min() >= -1.0 and values.max() <= 1.0 and values.std() > 0.3
    assert all(d[0] == (OFFLOAD if d[1] > 0 else LOCAL) for d in draws)
    assert 0.5 < np.mean([d[0] for d in draws]) < 0.75     # P(0.1 + N(0, 0.5) > 0) = 0.58


def test_learned_policy_without_weights_acts_with_the_initial_baseline():
    maker = DecisionMaker(OffloadConfig(policy='learned', initial_policy='offload'))
    assert maker.decide(np.zeros(8, np.float32), None)[0::2] == (OFFLOAD, 'offload')


def test_an_actor_returning_nan_is_an_error():
    with pytest.raises(ValueError, match='one finite number'):
        DecisionMaker(OffloadConfig()).decide(np.zeros(8, np.float32), constant_actor(math.nan))


# ------------------------------------------------------------------------------ the controller
def test_local_task_outcome_and_cost():
    config = OffloadConfig(policy='local')
    controller = OffloadController(config)
    task = controller.begin_task(10.0, 640, 480, 30_000, local_pending=0)
    assert task.decision == LOCAL and task.task_id == 0
    controller.local_started(task.task_id, 10.0)
    outcome = controller.local_finished(task.task_id, 10.8, ok=True, faces=2, compute_time_s=0.6)
    assert outcome.mode == 'local' and not outcome.fell_back and outcome.faces_found == 2
    assert outcome.latency_s == pytest.approx(0.8)
    assert outcome.energy_j == pytest.approx(2.5 * 0.6)
    assert outcome.cost == pytest.approx(0.8 + 0.1 * 1.5) and outcome.reward == -outcome.cost
    assert not outcome.deadline_missed
    np.testing.assert_array_equal(outcome.observation, task.observation)


def test_offloaded_task_outcome_transfer_time_and_energy():
    controller = OffloadController(OffloadConfig(policy='offload'))
    task = controller.begin_task(0.0, 640, 480, 30_000, local_pending=0)
    assert task.decision == OFFLOAD and controller.in_flight == 1
    assert controller.offload_sent(task.task_id, 0.1)
    outcome, fall_back = controller.offload_answered(task.task_id, 0.9, ok=True, faces=1, server_compute_s=0.5)
    assert not fall_back and outcome.mode == 'offloaded'
    assert outcome.latency_s == pytest.approx(0.9)
    assert outcome.transfer_time_s == pytest.approx(0.3)         # 0.8 round trip - 0.5 at the server
    assert outcome.compute_time_s == pytest.approx(0.5)
    assert outcome.energy_j == pytest.approx(1.3 * 0.3)
    assert controller.in_flight == 0
    assert controller.observer.bandwidth_samples == 1           # alone in flight: a clean sample


@pytest.mark.parametrize('reason', ['no_server', 'timeout', 'error'])
def test_failed_offload_falls_back_to_local_and_is_counted(reason):
    controller = OffloadController(OffloadConfig(policy='offload'))
    task = controller.begin_task(0.0, 320, 240, 8_000, local_pending=0)
    assert controller.offload_failed(task.task_id, 0.05, reason)
    assert not controller.offload_failed(task.task_id, 0.06, reason)   # once only
    controller.local_started(task.task_id, 0.05)
    outcome = controller.local_finished(task.task_id, 0.3, ok=True, faces=0, compute_time_s=0.2)
    assert outcome.mode == 'fell_back' and outcome.fell_back and outcome.decision == OFFLOAD
    assert outcome.detail == reason
    report = controller.report()
    assert report['fell_back'] == 1 and report['fell_back_by_reason'] == {reason: 1}
    assert report['ran'] == {'local': 0, 'offloaded': 0, 'fell_back': 1}
    assert report['latency']['fell_back']['count'] == 1 and report['latency']['fell_back']['mean_s'] == 0.3


def test_timeouts_are_found_and_a_late_reply_is_ignored():
    controller = OffloadController(OffloadConfig(policy='offload', offload_timeout_s=1.0))
    first = controller.begin_task(0.0, 320, 240, 8_000, local_pending=0)
    second = controller.begin_task(0.5, 320, 240, 8_000, local_pending=0)
    assert controller.expired(0.9) == []
    assert controller.expired(1.2) == [first.task_id]
    assert controller.offload_failed(first.task_id, 1.2, 'timeout')
    assert controller.offload_answered(first.task_id, 1.5, ok=True, faces=1) == (None, False)
    assert controller.report()['late_replies'] == 1
    outcome, _ = controller.offload_answered(second.task_id, 1.4, ok=True, faces=1, server_compute_s=0.2)
    assert outcome.mode == 'offloaded'


def test_timed_out_requests_hold_a_slot_until_answered_or_forgotten():
    controller = OffloadController(OffloadConfig(policy='offload', max_in_flight=1, offload_timeout_s=1.0))
    first = controller.begin_task(0.0, 320, 240, 8_000, local_pending=0)
    controller.offload_sent(first.task_id, 0.0)
    controller.offload_failed(first.task_id, 1.1, 'timeout')
    assert controller.report()['abandoned'] == 1
    # the server may still be busy with it: the next offload runs locally instead of queueing there
    second = controller.begin_task(1.5, 320, 240, 8_000, local_pending=0)
    assert second.fell_back and second.fallback_reason == 'in_flight_full'
    controller.offload_answered(first.task_id, 1.6, ok=True, faces=1)     # late, but the slot is free again
    third = controller.begin_task(1.7, 320, 240, 8_000, local_pending=0)
    assert not third.fell_back
    controller.offload_sent(third.task_id, 1.7)
    controller.offload_failed(third.task_id, 2.8, 'timeout')               # never answered (server gone)
    assert controller.begin_task(3.0, 320, 240, 8_000, local_pending=0).fell_back
    assert not controller.begin_task(3.9, 320, 240, 8_000, local_pending=0).fell_back   # forgotten after 1 s
    assert controller.report()['late_replies'] == 1


def test_no_bandwidth_sample_while_the_server_may_hold_another_request():
    controller = OffloadController(OffloadConfig(policy='offload', max_in_flight=3, offload_timeout_s=1.0))
    first = controller.begin_task(0.0, 320, 240, 8_000, local_pending=0)
    controller.offload_sent(first.task_id, 0.0)
    controller.offload_failed(first.task_id, 1.1, 'timeout')      # abandoned: maybe still at the server
    second = controller.begin_task(1.2, 320, 240, 8_000, local_pending=0)
    controller.offload_sent(second.task_id, 1.2)
    controller.offload_answered(second.task_id, 1.6, ok=True, faces=1, server_compute_s=0.2)
    assert controller.observer.bandwidth_samples == 0


def test_a_refused_request_falls_back():
    controller = OffloadController(OffloadConfig(policy='offload'))
    task = controller.begin_task(0.0, 320, 240, 8_000, local_pending=0)
    controller.offload_sent(task.task_id, 0.0)
    assert controller.offload_answered(task.task_id, 0.1, ok=False, error='server busy') == (None, True)
    assert controller.report()['fell_back_by_reason'] == {'refused': 1}


def test_saturated_device_skips_frames_and_full_queues_drop_tasks():
    config = OffloadConfig(policy='offload', max_in_flight=1, worker_queue_size=1)
    controller = OffloadController(config)
    task = controller.begin_task(0.0, 320, 240, 8_000, local_pending=0)
    assert controller.begin_task(0.1, 320, 240, 8_000, local_pending=1) is None   # worker and link full
    assert controller.report()['refused_frames'] == 1
    # not saturated (the worker has room) but the policy's path is full: offload decided, in flight full
    local = OffloadController(OffloadConfig(policy='local', worker_queue_size=1))
    dropped_task = local.begin_task(0.0, 320, 240, 8_000, local_pending=1)
    assert dropped_task is not None and dropped_task.decision == LOCAL
    local.local_started(dropped_task.task_id, 0.0)       # announced, then the worker refuses it
    assert local.observer.worker_free_at > 0.0
    outcome = local.local_refused(dropped_task.task_id, 0.0)
    assert local.observer.observe(0.0, MP)[0] == 0.0     # its estimate is withdrawn
    assert outcome.mode == 'dropped' and outcome.deadline_missed
    assert outcome.latency_s == config.deadline_s and outcome.energy_j == 0.0
    assert outcome.cost == pytest.approx(config.deadline_s + config.miss_penalty)
    report = local.report()
    assert report['dropped'] == 1 and report['dropped_by_reason'] == {'worker_queue_full': 1}
    assert report['ran'] == {'local': 0, 'offloaded': 0, 'fell_back': 0}
    assert controller.is_in_flight(task.task_id)


def test_an_offload_beyond_max_in_flight_runs_locally_at_once():
    controller = OffloadController(OffloadConfig(policy='offload', max_in_flight=1))
    first = controller.begin_task(0.0, 320, 240, 8_000, local_pending=0)
    second = controller.begin_task(0.1, 320, 240, 8_000, local_pending=0)
    assert not first.fell_back and second.fell_back and second.fallback_reason == 'in_flight_full'
    assert controller.in_flight == 1 and not controller.is_in_flight(second.task_id)
    controller.local_started(second.task_id, 0.1)
    outcome = controller.local_finished(second.task_id, 0.4, ok=True, faces=1, compute_time_s=0.25)
    assert outcome.mode == 'fell_back' and outcome.decision == OFFLOAD and outcome.transfer_time_s == 0.0
    assert controller.report()['fell_back_by_reason'] == {'in_flight_full': 1}


def test_a_failed_local_task_is_a_miss():
    controller = OffloadController(OffloadConfig(policy='local'))
    task = controller.begin_task(0.0, 320, 240, 8_000, local_pending=0)
    controller.local_started(task.task_id, 0.0)
    outcome = controller.local_finished(task.task_id, 0.2, ok=False, error='face worker crashed')
    assert outcome.deadline_missed and not outcome.ok and outcome.detail == 'face worker crashed'
    assert controller.local_finished(task.task_id, 0.3, ok=True) is None   # unknown now


def test_policy_version_is_recorded_for_learned_decisions_only():
    controller = OffloadController(OffloadConfig(policy='learned', training=False, min_policy_version=2))
    untrained = controller.begin_task(0.0, 320, 240, 8_000, local_pending=0, actor=constant_actor(0.5),
                                      policy_version=1)
    assert untrained.decided_by == 'greedy'   # below min_policy_version: the initial policy acts
    task = controller.begin_task(0.0, 320, 240, 8_000, local_pending=0, actor=constant_actor(0.5), policy_version=7)
    assert task.decided_by == 'learned' and task.policy_version == 7 and task.decision == OFFLOAD
    baseline = controller.begin_task(0.0, 320, 240, 8_000, local_pending=0, actor=None, policy_version=7)
    assert baseline.decided_by == 'greedy' and baseline.policy_version == 0
    assert controller.report()['decided_by'] == {'greedy': 2, 'learned': 1}


def test_bad_frame_sizes_are_refused():
    with pytest.raises(ValueError, match='frame size'):
        OffloadController(OffloadConfig()).begin_task(0.0, 0, 240, 10, local_pending=0)


# ------------------------------------------------------------------------------ experience and episodes
def _run_local_tasks(controller, count, order=None):
    tasks = [controller.begin_task(float(k), 320, 240, 8_000, local_pending=0) for k in range(count)]
    for task in tasks:
        controller.local_started(task.task_id, task.decided_at)
    outcomes = {}
    for k in (order if order is not None else range(count)):
        outcomes[k] = controller.local_finished(tasks[k].task_id, k + 0.5, ok=True, faces=1,
                                                compute_time_s=0.1 * (k + 1))
    return tasks, outcomes


def test_transitions_pair_each_task_with_the_next_decision_even_when_finishing_out_of_order():
    controller = OffloadController(OffloadConfig(policy='random', experience_batch_size=4, episode_tasks=3))
    tasks, outcomes = _run_local_tasks(controller, 6, order=[3, 1, 0, 2, 5, 4])
    chunks = controller.take_experience()
    assert len(chunks) == 1 and len(chunks[0]) == 4             # 5 complete transitions (task 5 has no successor)
    rest = controller.take_experience(flush=True)
    assert [len(c) for c in rest] == [1]
    rows = {}
    for chunk in chunks + rest:
        assert chunk.extra_names == EXTRA_NAMES and chunk.extras.shape == (len(chunk), len(EXTRA_NAMES))
        for i in range(len(chunk)):
            k = next(j for j, t in enumerate(tasks) if np.array_equal(t.observation, chunk.obs[i])
                     and t.action == pytest.approx(chunk.actions[i, 0]))
            rows[k] = (chunk.next_obs[i], chunk.rewards[i], chunk.truncated[i], chunk.extras[i])
    assert sorted(rows) == [0, 1, 2, 3, 4]
    assert controller.assembler.held == 1          # only task 5's observation, waiting for task 6
    for k, (next_obs, reward, truncated, extras) in rows.items():
        np.testing.assert_array_equal(next_obs, tasks[k + 1].observation)
        assert reward == pytest.approx(outcomes[k].reward)
        assert truncated == ((k + 1) % 3 == 0)
        assert extras[EXTRA_NAMES.index('latency_s')] == pytest.approx(outcomes[k].latency_s)
    report = controller.report()
    assert report['experience'] == {'transitions': 5, 'batches': 2}


def test_no_experience_when_switched_off():
    controller = OffloadController(OffloadConfig(policy='local', publish_experience=False, experience_batch_size=1))
    _run_local_tasks(controller, 3)
    assert controller.take_experience(flush=True) == []


def test_episode_summaries_every_episode_tasks_finished_tasks():
    controller = OffloadController(OffloadConfig(policy='local', episode_tasks=2))
    _, outcomes = _run_local_tasks(controller, 5)
    episodes = controller.take_episodes()
    assert [e.episode for e in episodes] == [1, 2] and controller.take_episodes() == []
    first = episodes[0]
    assert first.length == 2 and first.offload_fraction == 0.0
    assert first.latency_mean_s == pytest.approx(0.5)
    assert first.energy_mean_j == pytest.approx(2.5 * (0.1 + 0.2) / 2)
    assert first.episode_return == pytest.approx(outcomes[0].reward + outcomes[1].reward)
    assert first.cost == pytest.approx(-first.episode_return) and first.deadline_miss_ratio == 0.0


def test_assembler_alone():
    assembler = TransitionAssembler(batch_size=2, episode_tasks=100)
    assembler.finished(0, -1.0, [0] * 6)
    assembler.decided(0, np.zeros(8), 0.5, 1)
    assert assembler.pending == 0
    assembler.decided(1, np.ones(8), -0.5, 2)
    assert assembler.pending == 1
    assert assembler.take() == []
    (chunk,) = assembler.take(flush=True)
    assert chunk.policy_version == 1 and chunk.next_obs[0].tolist() == [1.0] * 8 and chunk.rewards[0] == -1.0


def test_report_has_latency_per_mode():
    controller = OffloadController(OffloadConfig(policy='local'))
    _run_local_tasks(controller, 20)
    latency = controller.report()['latency']
    assert set(latency) == {'local', 'offloaded', 'fell_back'}
    assert latency['local']['count'] == 20 and latency['local']['p50_s'] == pytest.approx(0.5)
    assert latency['offloaded'] == {'count': 0, 'mean_s': None, 'p50_s': None, 'p95_s': None}


def test_concurrent_callers_keep_the_counts_consistent():
    controller = OffloadController(OffloadConfig(policy='random', max_in_flight=10_000, worker_queue_size=10_000))
    errors = []

    def run(offset):
        try:
            for k in range(200):
                now = offset + k * 0.01
                task = controller.begin_task(now, 320, 240, 8_000, local_pending=0)
                if task.decision == OFFLOAD:
                    controller.offload_sent(task.task_id, now)
                    controller.offload_answered(task.task_id, now + 0.2, ok=True, faces=1, server_compute_s=0.1)
                else:
                    controller.local_started(task.task_id, now)
                    controller.local_finished(task.task_id, now + 0.3, ok=True, faces=1, compute_time_s=0.2)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
    threads = [threading.Thread(target=run, args=(100.0 * i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    report = controller.report()
    assert report['tasks'] == report['finished'] == 800
    assert report['ran']['local'] + report['ran']['offloaded'] == 800 and report['unfinished'] == 0


# ------------------------------------------------------------------------------ link emulation
class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.waits = []

    def __call__(self):
        return self.now

    def wait(self, seconds):
        self.waits.append(seconds)
        self.now += seconds


def test_link_emulator_delays_sends_first_in_first_out():
    clock = FakeClock()
    link = LinkEmulator(8.0, clock=clock, wait=clock.wait)   # 1 MB/s
    assert link.active
    assert link.reserve(100_000, now=0.0) == pytest.approx((0.0, 0.1))
    assert link.reserve(100_000, now=0.0) == pytest.approx((0.1, 0.2))   # behind the first
    assert link.reserve(100_000, now=1.0) == pytest.approx((1.0, 1.1))   # idle link again
    clock.now = 2.0
    assert link.transmit(50_000) == pytest.approx(0.05) and clock.now == pytest.approx(2.05)


def test_link_schedule_changes_the_bandwidth_during_the_run():
    clock = FakeClock()
    link = LinkEmulator(schedule=parse_schedule('0:8,10:0.8,20:0'), clock=clock, wait=clock.wait)
    link.start()
    assert link.bandwidth_at(5.0) == 8.0 and link.bandwidth_at(10.0) == 0.8 and link.bandwidth_at(99.0) == 0.0
    clock.now = 12.0
    assert link.transmit(100_000) == pytest.approx(1.0)
    clock.now = 25.0
    assert link.transmit(100_000) == 0.0 and clock.waits == [pytest.approx(1.0)]   # 0 = no emulation


def test_no_emulation_by_default():
    link = LinkEmulator()
    assert not link.active and link.transmit(10**6) == 0.0


@pytest.mark.parametrize('text,match', [('0-8', 'seconds:Mbit/s'), ('5:8', 'start at time 0'),
                                        ('0:8,0:9', 'increase'), ('0:-1', '>= 0'), ('0:nan', 'finite')])
def test_bad_link_schedules_are_refused(text, match):
    with pytest.raises(ValueError, match=match):
        parse_schedule(text)


def test_bad_link_bandwidth_is_refused():
    with pytest.raises(ValueError, match='>= 0 Mbit/s'):
        LinkEmulator(-1.0)
    assert parse_schedule('') == ()
    assert POLICIES == ('learned', 'local', 'offload', 'random', 'greedy')


def test_actor_dims_match_the_registered_envs_spaces():
    """The device sizes its actor from a table (no gymnasium there); the table agrees with the env the cloud
    trains on."""
    import gymnasium

    import dcdrl_sim  # noqa: F401  (registers the environments)
    from dcdrl_edge.offload_config import ACTOR_ENV_DIMS, actor_dims
    for env_id, dims in ACTOR_ENV_DIMS.items():
        env = gymnasium.make(env_id)
        assert isinstance(env.action_space, gymnasium.spaces.Box) and env.action_space.shape == (1,)
        assert dims == (env.observation_space.shape[0], env.action_space.shape[0]) == actor_dims(env_id)
        env.close()
    with pytest.raises(ValueError, match='not an offload policy env'):
        actor_dims('dcdrl_sim/CartPoleSwingUp-v0')
