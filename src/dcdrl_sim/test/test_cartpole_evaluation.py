"""Swing-up time and the 'converged after k successes in a row' rule."""
import math

import numpy as np
import pytest

from dcdrl_sim.cartpole.env import CartPoleSwingUpEnv
from dcdrl_sim.cartpole.evaluation import ConvergenceTracker, SwingUpResult, evaluate_swing_up, swing_up_time


def zero_policy(obs):
    return np.zeros(1, dtype=np.float32)


def test_swing_up_time_on_flags_and_infos():
    assert swing_up_time([False, False, True, True]) == 3
    assert swing_up_time([{'on_target': False}, {'on_target': True}]) == 2
    assert swing_up_time([False] * 10) is None
    assert swing_up_time([]) is None


def test_swing_up_time_with_hold():
    flags = [False, True, False, True, True, True, False]
    assert swing_up_time(flags, hold_steps=1) == 2
    assert swing_up_time(flags, hold_steps=3) == 4     # the stay that lasted began at step 4
    assert swing_up_time(flags, hold_steps=4) is None
    with pytest.raises(ValueError, match='hold_steps'):
        swing_up_time(flags, hold_steps=0)


def test_evaluate_upright_start_is_immediate_success():
    env = CartPoleSwingUpEnv(target_steps_to_stop=None, max_steps=20)
    result = evaluate_swing_up(env, zero_policy, reset_options={'state': (0.0, 0.0, 0.0, 0.0)})
    assert result == SwingUpResult(swing_up_steps=1, success=True, episode_return=pytest.approx(10.0),
                                   steps=20, failed=False)


def test_evaluate_hanging_still_never_swings_up():
    env = CartPoleSwingUpEnv(target_steps_to_stop=None, max_steps=300)
    result = evaluate_swing_up(env, zero_policy, reset_options={'state': (0.0, 0.0, math.pi, 0.0)})
    assert result.swing_up_steps is None and not result.success and result.steps == 300


class ScriptedEnv:
    """Stand-in env whose on-target flags follow a script (reward 1 per step)."""

    def __init__(self, flags):
        self.flags = flags

    def reset(self, seed=None, options=None):
        self.t = 0
        return np.zeros(10, np.float32), {}

    def step(self, action):
        self.t += 1
        done = self.t >= len(self.flags)
        return np.zeros(10, np.float32), 1.0, False, done, {'on_target': self.flags[self.t - 1]}


def test_evaluate_late_swing_up_is_not_a_success():
    flags = [False] * 260 + [True] * 5
    result = evaluate_swing_up(ScriptedEnv(flags), zero_policy)
    assert result.swing_up_steps == 261 and not result.success and result.steps == 265
    assert evaluate_swing_up(ScriptedEnv(flags), zero_policy, max_swing_up_steps=261).success


def test_evaluate_hold_steps_and_stop_on_success():
    flags = [False, True, False, True, True, True, False, False]
    result = evaluate_swing_up(ScriptedEnv(flags), zero_policy, hold_steps=3, stop_on_success=True)
    assert result.swing_up_steps == 4 and result.steps == 6 and result.episode_return == 6.0
    assert evaluate_swing_up(ScriptedEnv(flags), zero_policy, max_steps=3).steps == 3


def test_evaluate_reports_failure():
    env = CartPoleSwingUpEnv(action_delay_steps=0)
    result = evaluate_swing_up(env, lambda obs: np.ones(1, np.float32),
                               reset_options={'state': (0.2, 0.0, math.pi, 0.0)})
    assert result.failed and not result.success and result.steps < 30


def test_convergence_needs_k_successes_in_a_row():
    tracker = ConvergenceTracker(k=3, max_swing_up_steps=250)
    assert not tracker.update(100)
    assert not tracker.update(200)
    assert not tracker.update(251)     # too slow: streak broken
    assert tracker.streak == 0
    assert not tracker.update(None)    # no swing-up
    assert not tracker.update(50)
    assert not tracker.update(SwingUpResult(250, True, 0.0, 1000, False))
    assert tracker.update(120)
    assert tracker.converged_at == 7 and tracker.evaluations == 7
    assert tracker.update(None)        # convergence is kept once reached
    tracker.reset()
    assert not tracker.converged and tracker.history == []


@pytest.mark.parametrize('bad', [0, -3, float('nan'), 'fast', True])
def test_convergence_rejects_bad_evaluations(bad):
    with pytest.raises(ValueError, match='evaluation'):
        ConvergenceTracker().update(bad)


def test_convergence_rejects_bad_config():
    with pytest.raises(ValueError, match='k'):
        ConvergenceTracker(k=0)
