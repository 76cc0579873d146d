"""The swing-up task on top of the plant: reward, failure and on-target rules.

Kept apart from the physics (dynamics.py) and written over plain arithmetic plus the
``exp``/``sqrt`` it is handed, so the single environment (floats) and the batched
vector environment (numpy arrays) share one definition.

Reward per step (cloud-edge paper)::

    r = 0.5 * exp(-5 * d_tip) - 0.05 * a^2 - 10 * failed

where ``d_tip`` is the distance (m) from the pole tip to the target point (above
``target_x`` at the height of the upright tip) and ``a`` the commanded action.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dcdrl_core.checks import check_number


@dataclass(frozen=True)
class SwingUpTask:
    """Reward, failure and early-stop constants of the swing-up task."""

    x_limit: float = 0.3              # m; |x| >= x_limit fails (end of the rail)
    theta_dot_limit: float = 15.0     # rad/s; |theta_dot| > limit fails
    target_x: float = 0.0             # m; the target point is (target_x, pole_length)
    target_distance: float = 0.05     # m; tip within this distance = on target
    target_steps_to_stop: int | None = 100  # stop after MORE than this many consecutive on-target steps
    tip_reward_scale: float = 0.5
    tip_reward_decay: float = 5.0     # 1/m
    action_cost: float = 0.05
    failure_penalty: float = 10.0

    def __post_init__(self) -> None:
        check_number('x_limit', self.x_limit, 0.0, above=True)
        check_number('theta_dot_limit', self.theta_dot_limit, 0.0, above=True)
        check_number('target_x', self.target_x)
        check_number('target_distance', self.target_distance, 0.0, above=True)
        for name in ('tip_reward_scale', 'tip_reward_decay', 'action_cost', 'failure_penalty'):
            check_number(name, getattr(self, name), 0.0)
        steps = self.target_steps_to_stop
        if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 0):
            raise ValueError(f'target_steps_to_stop must be None or an int >= 0, got {steps!r}')


def tip_distance(tip_x: Any, tip_y: Any, pole_length: float, target_x: float,
                 sqrt: Callable[[Any], Any] = math.sqrt) -> Any:
    """Euclidean distance (m) from the tip to the target point (target_x, pole_length)."""
    dx = tip_x - target_x
    dy = tip_y - pole_length
    return sqrt(dx * dx + dy * dy)


def failed(x: Any, theta_dot: Any, task: SwingUpTask) -> Any:
    """True where the cart left the rail or the pole spins too fast (works on arrays too)."""
    return (abs(x) >= task.x_limit) | (abs(theta_dot) > task.theta_dot_limit)


def reward(distance: Any, action: Any, is_failed: Any, task: SwingUpTask,
           exp: Callable[[Any], Any] = math.exp) -> Any:
    """0.5 * exp(-5 d_tip) - 0.05 a^2 - 10 * failed (constants from ``task``)."""
    return (task.tip_reward_scale * exp(-task.tip_reward_decay * distance)
            - task.action_cost * action * action - task.failure_penalty * is_failed)
