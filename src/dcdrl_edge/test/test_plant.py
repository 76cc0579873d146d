"""Plants: the simulated cart-pole (one env step per write) and the ROS-topic plant's observation,
safety rules, staleness and reset."""
import math

import numpy as np
import pytest

from dcdrl_edge.plant import Plant, PlantReading, SimulatedCartPolePlant, TopicPlant
from dcdrl_sim.cartpole.env import CartPoleSwingUpEnv


class ManualClock:
    def __init__(self, now=100.0):
        self.now = now

    def __call__(self):
        return self.now


def test_plant_is_abstract():
    with pytest.raises(TypeError):
        Plant()

    class Minimal(Plant):
        observation_dim, action_dim = 3, 2

        def begin_reset(self, seed):
            pass

        def reset_step(self):
            return True

        def read(self):
            return PlantReading(np.zeros(3, np.float32))

        def write(self, action):
            pass

    plant = Minimal()
    assert np.array_equal(plant.safe_action(), np.zeros(2, np.float32)) and plant.nominal_rate_hz is None
    plant.close()


def test_simulated_plant_matches_the_env_step_by_step():
    plant = SimulatedCartPolePlant(seed=3)
    env = CartPoleSwingUpEnv()
    assert plant.observation_dim == 10 and plant.action_dim == 1 and plant.nominal_rate_hz == 30.0
    with pytest.raises(RuntimeError, match='begin_reset'):
        plant.read()
    plant.begin_reset(None)                    # first reset uses the plant's seed
    assert plant.reset_step()
    obs, _ = env.reset(seed=3)
    reading = plant.read()
    np.testing.assert_array_equal(reading.observation, obs)
    assert not reading.terminated and not reading.truncated and 'tip_distance' in reading.info
    rng = np.random.default_rng(0)
    for _ in range(20):
        action = rng.uniform(-1, 1, size=1).astype(np.float32)
        plant.write(action)
        obs, reward, term, trunc, info = env.step(action)
        reading = plant.read()
        np.testing.assert_array_equal(reading.observation, obs)
        assert (reading.terminated, reading.truncated) == (term, trunc)
        assert reading.info['reward'] == pytest.approx(reward)
        assert reading.info['tip_distance'] == pytest.approx(info['tip_distance'])
        assert reading.info['on_target'] == info['on_target']


def test_simulated_plant_ends_episodes_and_stops_stepping():
    plant = SimulatedCartPolePlant({'max_steps': 3})
    plant.begin_reset(7)
    for _ in range(3):
        plant.write(np.zeros(1, np.float32))
    reading = plant.read()
    assert reading.truncated and not reading.terminated
    steps = plant.env.elapsed_steps
    plant.write(np.zeros(1, np.float32))       # after the end: the env is left alone
    assert plant.env.elapsed_steps == steps
    plant.begin_reset(None)
    assert not plant.read().truncated and plant.resets == 2
    with pytest.raises(ValueError, match='render'):
        SimulatedCartPolePlant({'render_mode': 'rgb_array'})


def test_simulated_plant_terminates_at_the_rail_end():
    plant = SimulatedCartPolePlant(seed=0)
    plant.begin_reset(None)
    plant.env.set_state(0.299, 1.0, math.pi, 0.0)
    plant.write(np.ones(1, np.float32))
    assert plant.read().terminated


def make_topic_plant(**kwargs):
    sent, clock = [], ManualClock()
    plant = TopicPlant(sent.append, clock=clock, **kwargs)
    return plant, sent, clock


def test_topic_plant_observation_like_the_simulator():
    plant, sent, clock = make_topic_plant(obs_history=3)
    assert plant.observation_dim == 8 and plant.action_dim == 1
    plant.begin_reset(None)
    plant.update_state([0.1, -0.2, 0.5, 1.5])
    assert plant.reset_step() is False        # pole still swinging (|theta_dot| > 0.5)
    plant.update_state([0.1, -0.2, 0.5, 0.1])
    assert plant.reset_step() is True
    plant.write(np.array([0.25], np.float32))
    plant.write(np.array([-0.5], np.float32))
    reading = plant.read()
    expected = np.array([0.1, -0.2, math.sin(0.5), math.cos(0.5), 0.1, -0.5, 0.25, 0.0], np.float32)
    np.testing.assert_allclose(reading.observation, expected)
    assert reading.observation.dtype == np.float32
    assert not reading.terminated and not reading.truncated and reading.info['stale'] is False
    assert [float(a[0]) for a in sent] == [0.25, -0.5]
    plant.begin_reset(None)                   # history cleared
    plant.update_state([0.0, 0.0, 3.0, 0.0])
    assert np.array_equal(plant.read().observation[5:], np.zeros(3, np.float32))


@pytest.mark.parametrize('state, terminated', [
    ([0.3, 0, 0, 0], True), ([-0.31, 0, 0, 0], True), ([0.29, 0, 0, 0], False),
    ([0, 0, 0, 15.01], True), ([0, 0, 0, -16], True), ([0, 0, 0, 15.0], False)])
def test_topic_plant_safety_limits(state, terminated):
    plant, _, _ = make_topic_plant()
    plant.begin_reset(None)
    plant.update_state(state)
    assert plant.read().terminated is terminated


def test_topic_plant_truncates_after_max_steps():
    plant, _, _ = make_topic_plant(max_steps=2)
    plant.begin_reset(None)
    plant.update_state([0, 0, math.pi, 0])
    plant.write(np.zeros(1, np.float32))
    assert not plant.read().truncated
    plant.write(np.zeros(1, np.float32))
    assert plant.read().truncated


def test_topic_plant_stale_state_truncates_and_is_counted():
    plant, _, clock = make_topic_plant(stale_after_s=0.1)
    reading = plant.read()                    # nothing ever arrived
    assert reading.truncated and reading.info['stale'] and plant.stale_reads == 1
    plant.update_state([0, 0, math.pi, 0])
    clock.now += 0.05
    assert not plant.read().truncated
    clock.now += 0.06
    reading = plant.read()
    assert reading.truncated and not reading.terminated and reading.info['stale']
    assert reading.info['state_age_s'] == pytest.approx(0.11) and plant.stale_reads == 2


def test_topic_plant_reset_waits_for_a_fresh_settled_state():
    plant, _, clock = make_topic_plant()
    plant.update_state([0.0, 0.0, math.pi, 0.0])
    clock.now += 0.01
    plant.begin_reset(None)
    assert plant.reset_step() is False        # that state is older than the reset
    clock.now += 0.01
    plant.update_state([0.35, 0.0, math.pi, 0.0])
    assert plant.reset_step() is False        # cart not homed yet
    plant.update_state([0.0, 0.0, math.pi, 0.0])
    assert plant.reset_step() is True
    clock.now += 0.2
    assert plant.reset_step() is False        # stale again


@pytest.mark.parametrize('bad', [[0, 0, 0], [0, 0, 0, 0, 0], [0, float('nan'), 0, 0], [0, 0, float('inf'), 0],
                                 ['a', 0, 0, 0], None])
def test_topic_plant_rejects_bad_states(bad):
    plant, _, _ = make_topic_plant()
    plant.update_state([0.125, 0.0, 1.0, 0.0])
    with pytest.raises(ValueError, match='state'):
        plant.update_state(bad)
    assert plant.rejected_states == 1 and plant.states_received == 1
    assert plant.read().observation[0] == 0.125   # the last good state is kept


def test_topic_plant_checks_the_length_before_converting_values():
    """A long plant/state array is refused without touching its values (docs/robustness.md, G11)."""
    class Long:
        def __len__(self):
            return 10_000_000

        def __iter__(self):
            raise AssertionError('values converted before the length check')
    plant, _, _ = make_topic_plant()
    with pytest.raises(ValueError, match='got 10000000'):
        plant.update_state(Long())
    assert plant.rejected_states == 1


def test_topic_plant_write_and_constructor_validation():
    plant, sent, _ = make_topic_plant()
    with pytest.raises(ValueError, match='action'):
        plant.write(np.array([np.nan], np.float32))
    with pytest.raises(ValueError, match='action'):
        plant.write(np.zeros(2, np.float32))
    assert sent == []
    with pytest.raises(TypeError, match='callable'):
        TopicPlant(None)
    with pytest.raises(ValueError, match='obs_history'):
        TopicPlant(print, obs_history=-1)
    with pytest.raises(ValueError, match='stale_after_s'):
        TopicPlant(print, stale_after_s=0)
    with pytest.raises(ValueError, match='x_limit'):
        TopicPlant(print, x_limit=float('nan'))
