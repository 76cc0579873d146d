"""FaceOffloadEnv: API, determinism, the latency/energy/cost model on hand-computed cases."""
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import dcdrl_sim  # noqa: F401  (registers the environments)
from dcdrl_sim.face.env import LOCAL, OFFLOAD, FaceOffloadEnv

ENV_ID = 'dcdrl_sim/FaceOffload-v0'

# Everything random switched off and one fixed task: 1 frame of 0.5 MP with no faces.
NOISELESS = dict(compute_time_noise=0.0, bandwidth_measurement_noise=0.0, face_estimate_noise=0.0,
                 server_background_load=0.0, server_slow_switch_rate_hz=0.0,
                 bandwidth_volatility_mbps=0.0, frames_min=1, frames_max=1,
                 megapixels_per_frame=(0.5,), faces_per_frame_mean=0.0)


def test_check_env_passes_without_warnings():
    env = gymnasium.make(ENV_ID).unwrapped
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        check_env(env)


def test_spaces_and_info_keys():
    env = gymnasium.make(ENV_ID)
    assert env.action_space == gymnasium.spaces.Discrete(2)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (8,) and obs.dtype == np.float32
    _, reward, terminated, truncated, info = env.step(1)
    for key in ('cost', 'latency_s', 'energy_j', 'deadline_miss_ratio', 'offload_fraction'):
        assert isinstance(info[key], float), key
    assert info['decision'] == 1 and info['offload_fraction'] == 1.0
    assert info['deadline_miss_ratio'] in (0.0, 1.0)
    assert reward == -info['cost'] and not terminated and not truncated


def test_same_seed_same_trajectory_other_seed_differs():
    def rollout(seed):
        env = FaceOffloadEnv()
        obs, _ = env.reset(seed=seed)
        out = [np.append(obs, 0.0)]
        for i in range(60):
            obs, reward, *_ = env.step(i % 2)
            out.append(np.append(obs, reward))
        return np.array(out)

    assert np.array_equal(rollout(5), rollout(5))
    assert not np.array_equal(rollout(5), rollout(6))


def test_local_latency_energy_cost_hand_computed():
    env = FaceOffloadEnv(**NOISELESS)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(LOCAL)
    # 2.0 s/MP * 0.5 MP = 1.0 s on the device; 2.5 W * 1.0 s = 2.5 J; cost 1.0 + 0.1 * 2.5.
    assert info['latency_s'] == pytest.approx(1.0)
    assert info['energy_j'] == pytest.approx(2.5)
    assert info['cost'] == pytest.approx(1.25) and reward == pytest.approx(-1.25)
    assert info['deadline_miss_ratio'] == 0.0


def test_offload_latency_energy_cost_hand_computed():
    env = FaceOffloadEnv(**NOISELESS)
    env.reset(seed=0)
    _, _, _, _, info = env.step(OFFLOAD)
    # encode 0.1*0.5 = 0.05 s; upload 0.5 MP * 150 kB * 8 / 8 Mbit/s = 0.075 s;
    # server 0.5*0.5 = 0.25 s; round trip 0.02 s  -> 0.395 s
    # energy 2.5 W * 0.05 s + 1.3 W * 0.075 s = 0.2225 J
    assert info['latency_s'] == pytest.approx(0.395)
    assert info['energy_j'] == pytest.approx(0.2225)
    assert info['cost'] == pytest.approx(0.395 + 0.02225)


def test_transfer_time_scales_with_bandwidth():
    latencies = []
    for mbps in (2.0, 8.0):
        env = FaceOffloadEnv(**dict(NOISELESS, bandwidth_mean_mbps=mbps))
        env.reset(seed=0)
        latencies.append(env.step(OFFLOAD)[4]['latency_s'])
    # 0.5 MP * 150 kB = 0.6 Mbit: 0.3 s of upload at 2 Mbit/s, 0.075 s at 8 Mbit/s
    assert latencies[0] - latencies[1] == pytest.approx(0.3 - 0.075)


def test_local_queueing_adds_waiting_time():
    env = FaceOffloadEnv(**dict(NOISELESS, arrival_rate_hz=1000.0))   # tasks ~1 ms apart
    env.reset(seed=0)
    first = env.step(LOCAL)[4]
    gap = env.now
    second = env.step(LOCAL)[4]
    assert first['latency_s'] == pytest.approx(1.0)
    assert second['latency_s'] == pytest.approx(2.0 - gap)       # waits for the first one
    obs = env.step(LOCAL)[0]
    assert obs[0] > 0.5      # worker backlog is visible (normalised by the 2 s deadline)


def test_deadline_miss_penalised():
    env = FaceOffloadEnv(**dict(NOISELESS, deadline_s=0.5))
    env.reset(seed=0)
    info = env.step(LOCAL)[4]
    assert info['deadline_miss_ratio'] == 1.0
    assert info['cost'] == pytest.approx(1.0 + 0.25 + 2.0)


def test_full_queue_drops_the_task():
    env = FaceOffloadEnv(**dict(NOISELESS, arrival_rate_hz=1000.0, max_queue=1))
    env.reset(seed=0)
    assert env.step(LOCAL)[4]['dropped'] == 0.0
    info = env.step(LOCAL)[4]
    assert info['dropped'] == 1.0 and info['deadline_miss_ratio'] == 1.0
    assert info['latency_s'] == pytest.approx(2.0) and info['energy_j'] == 0.0


def test_bandwidth_varies_and_stays_in_bounds():
    env = FaceOffloadEnv(bandwidth_min_mbps=1.0, bandwidth_max_mbps=12.0)
    env.reset(seed=1)
    seen = [env.step(OFFLOAD)[4]['bandwidth_mbps'] for _ in range(200)]
    assert min(seen) >= 1.0 and max(seen) <= 12.0
    assert np.std(seen) > 0.5


def test_estimates_match_realised_costs_without_noise():
    env = FaceOffloadEnv(**dict(NOISELESS, arrival_rate_hz=2.0))
    obs, _ = env.reset(seed=0)
    for action in (LOCAL, OFFLOAD, LOCAL, OFFLOAD, OFFLOAD):
        local, offload = env.estimate_costs(obs)
        expected = local if action == LOCAL else offload
        obs, _, _, _, info = env.step(action)
        assert info['cost'] == pytest.approx(float(expected), rel=1e-5)


def test_observations_stay_in_space_under_overload():
    env = FaceOffloadEnv(arrival_rate_hz=5.0)
    obs, _ = env.reset(seed=0)
    for _ in range(300):
        obs, *_ = env.step(LOCAL)
        assert env.observation_space.contains(obs)
    assert obs[0] == pytest.approx(env.obs_clip)    # backlog beyond the clip is clipped


def test_episode_length():
    env = FaceOffloadEnv(episode_tasks=7)
    env.reset(seed=0)
    truncated = [env.step(0)[3] for _ in range(7)]
    assert truncated == [False] * 6 + [True]


@pytest.mark.parametrize('action', [2, -1, 0.5, np.array([0, 1]), 'local', np.nan, True])
def test_bad_actions_rejected(action):
    env = FaceOffloadEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match='action'):
        env.step(action)


def test_numpy_and_array_actions_accepted():
    env = FaceOffloadEnv()
    env.reset(seed=0)
    assert env.step(np.int64(1))[4]['decision'] == 1
    assert env.step(np.array(0))[4]['decision'] == 0
    assert env.step(np.array([1.0]))[4]['decision'] == 1


@pytest.mark.parametrize('kwargs,match', [
    ({'device_seconds_per_megapixel': 0.0}, 'device_seconds_per_megapixel'),
    ({'server_seconds_per_face': -1.0}, 'server_seconds_per_face'),
    ({'server_background_load': 1.0}, 'server_background_load'),
    ({'frames_min': 3, 'frames_max': 2}, 'frames_max'),
    ({'megapixels_per_frame': ()}, 'megapixels_per_frame'),
    ({'bandwidth_mean_mbps': 100.0}, 'bandwidth_mean_mbps'),
    ({'deadline_s': float('nan')}, 'deadline_s'),
    ({'max_queue': 0}, 'max_queue'),
    ({'render_mode': 'rgb_array'}, 'render_mode'),
])
def test_bad_config_rejected(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        FaceOffloadEnv(**kwargs)


def test_decode_observation_rejects_wrong_shape():
    with pytest.raises(ValueError, match='observation'):
        FaceOffloadEnv().decode_observation(np.zeros(5))
