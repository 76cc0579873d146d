"""Success measures of the swing-up task (cloud-edge paper).

- Swing-up time: the number of control steps until the pole tip first comes within
  ``target_distance`` of the target point (optionally: and stays there ``hold_steps``
  steps). An evaluation succeeds when this happens within 250 steps.
- Convergence: training has converged after ``k = 3`` successful evaluations in a row.

Evaluation episodes should run without the on-target early stop and without
exploration noise: make the env with ``target_steps_to_stop=None``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Policy = Callable[[np.ndarray], Any]


def swing_up_time(trajectory: Iterable[bool | Mapping[str, Any]],
                  hold_steps: int = 1) -> int | None:
    """Steps until the tip first reached the target, or None if it never did.

    ``trajectory`` holds, per step, either the on-target flag or the step's info dict
    (its ``'on_target'`` entry). The answer is 1-based: 1 means on target after the
    first step. With ``hold_steps > 1`` the tip must stay on target that many
    consecutive steps; the answer is still the step at which that stay began.
    """
    if not isinstance(hold_steps, int) or isinstance(hold_steps, bool) or hold_steps < 1:
        raise ValueError(f'hold_steps must be an int >= 1, got {hold_steps!r}')
    run = 0
    for step, item in enumerate(trajectory, start=1):
        flag = item['on_target'] if isinstance(item, Mapping) else item
        run = run + 1 if bool(flag) else 0
        if run >= hold_steps:
            return step - hold_steps + 1
    return None


@dataclass
class SwingUpResult:
    """Outcome of one evaluation episode."""

    swing_up_steps: int | None   # steps until the tip first reached the target (None: never)
    success: bool                   # swing_up_steps is not None and <= max_swing_up_steps
    episode_return: float
    steps: int                      # steps run
    failed: bool                    # the episode terminated (rail end or spin limit)


def evaluate_swing_up(env: Any, policy: Policy, *, seed: int | None = None,
                      max_swing_up_steps: int = 250, max_steps: int | None = None,
                      hold_steps: int = 1, stop_on_success: bool = False,
                      reset_options: Mapping[str, Any] | None = None) -> SwingUpResult:
    """Run one episode of ``policy`` (obs -> action) on ``env`` and measure the swing-up.

    The episode runs until the env ends it, until ``max_steps`` (if given), or, with
    ``stop_on_success``, as soon as the swing-up is reached.
    """
    if not isinstance(max_swing_up_steps, int) or max_swing_up_steps < 1:
        raise ValueError(f'max_swing_up_steps must be an int >= 1, got {max_swing_up_steps!r}')
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
        raise ValueError(f'max_steps must be None or an int >= 1, got {max_steps!r}')
    if not isinstance(hold_steps, int) or isinstance(hold_steps, bool) or hold_steps < 1:
        raise ValueError(f'hold_steps must be an int >= 1, got {hold_steps!r}')
    obs, _ = env.reset(seed=seed, options=dict(reset_options) if reset_options else None)
    steps = 0
    run = 0
    total = 0.0
    failed = False
    swing_up: int | None = None
    while max_steps is None or steps < max_steps:
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        steps += 1
        total += float(reward)
        run = run + 1 if info['on_target'] else 0
        if swing_up is None and run >= hold_steps:  # same rule as swing_up_time()
            swing_up = steps - hold_steps + 1
        if terminated:
            failed = True
            break
        if truncated or (stop_on_success and swing_up is not None):
            break
    success = swing_up is not None and swing_up <= max_swing_up_steps
    return SwingUpResult(swing_up, success, total, steps, failed)


@dataclass
class ConvergenceTracker:
    """'Converged after k successful evaluations in a row' (k = 3, swing-up within 250 steps).

    Feed it one evaluation at a time (swing-up steps, None for no swing-up, or a
    SwingUpResult); ``update`` returns whether training has converged. Once reached,
    convergence stays (training stops there); ``reset()`` starts over.
    """

    k: int = 3
    max_swing_up_steps: int = 250
    streak: int = 0
    converged: bool = False
    evaluations: int = 0
    converged_at: int | None = None   # evaluation count at which convergence was reached
    history: list[int | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ('k', 'max_swing_up_steps'):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'{name} must be an int >= 1, got {value!r}')

    def is_success(self, swing_up_steps: int | None) -> bool:
        return swing_up_steps is not None and swing_up_steps <= self.max_swing_up_steps

    def update(self, evaluation: None | int | float | SwingUpResult) -> bool:
        if isinstance(evaluation, SwingUpResult):
            steps = evaluation.swing_up_steps
        elif evaluation is None:
            steps = None
        elif isinstance(evaluation, (int, float, np.integer, np.floating)) \
                and not isinstance(evaluation, bool) and math.isfinite(evaluation) and evaluation >= 1:
            steps = int(evaluation)
        else:
            raise ValueError('evaluation must be None, a swing-up step count >= 1 or a '
                             f'SwingUpResult, got {evaluation!r}')
        self.evaluations += 1
        self.history.append(steps)
        self.streak = self.streak + 1 if self.is_success(steps) else 0
        if not self.converged and self.streak >= self.k:
            self.converged = True
            self.converged_at = self.evaluations
        return self.converged

    def reset(self) -> None:
        self.streak = 0
        self.converged = False
        self.evaluations = 0
        self.converged_at = None
        self.history.clear()
