"""FaceOffloadEnv with a Box action, so that DDPG (the cloud's learner) can train on it.

``FaceOffloadContinuousEnv`` is the same task model as ``FaceOffloadEnv`` (same observation,
same costs, same random draws for the same seed); only the action differs: one number in
[-1, 1], and the task is offloaded iff it is > 0 (``decision_of``). The device's actor (tanh
output) gives exactly such a number, so its decision rule is ``a > 0`` too.

Two additions for experiments:

* ``bandwidth_schedule``: a piecewise-constant bandwidth, ``[(time_s, mbps), ...]`` sorted by
  time and starting at 0, replaces the random walk (the walk's random draws still happen, so
  the task sequence of a seed does not change). For runs in which the link changes at known
  times (the cloud-edge paper emulated bandwidth the same way).
* ``true_costs()``: the cost each decision would *really* get for the current task (with the
  compute-time noise, the true bandwidth and face count and the hidden server state), without
  changing the env. It runs ``step`` for each choice from a snapshot of the state and restores
  the snapshot (the random generator included), so ``true_costs()[d]`` equals the cost
  ``step(d)`` reports next. An oracle that takes the cheaper one per task knows what no device
  can know; it is myopic (it ignores the queue a choice leaves for later tasks).
"""
from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from dcdrl_sim.face.env import LOCAL, OFFLOAD, FaceOffloadEnv

ENV_ID = 'dcdrl_sim/FaceOffloadContinuous-v0'


def decision_of(action: Any) -> int:
    """OFFLOAD (1) when the action's single value is > 0, else LOCAL (0); ValueError for bad input."""
    arr = np.asarray(action)
    if arr.size != 1 or arr.dtype.kind not in 'iuf':
        raise ValueError(f'action must be one number in [-1, 1], got {action!r}')
    value = float(arr.reshape(-1)[0])
    if not math.isfinite(value):
        raise ValueError(f'action must be finite, got {value!r}')
    return OFFLOAD if value > 0.0 else LOCAL


def check_schedule(schedule: Any) -> tuple[tuple[float, float], ...]:
    """A validated ((time_s, mbps), ...): times start at 0 and increase, bandwidths > 0."""
    try:
        pairs = tuple((float(t), float(b)) for t, b in schedule)
    except (TypeError, ValueError) as error:
        raise ValueError(f'bandwidth schedule must be a list of (time_s, mbps) pairs, got {schedule!r}') from error
    if not pairs:
        raise ValueError('bandwidth schedule must have at least one (time_s, mbps) pair')
    if pairs[0][0] != 0.0:
        raise ValueError(f'bandwidth schedule must start at time 0, got {pairs[0][0]}')
    for (t0, _), (t1, _) in zip(pairs, pairs[1:]):
        if not t1 > t0:
            raise ValueError(f'bandwidth schedule times must increase, got {t0} then {t1}')
    for t, b in pairs:
        if not (math.isfinite(t) and math.isfinite(b) and b > 0.0):
            raise ValueError(f'bandwidth schedule entries must be finite with mbps > 0, got ({t}, {b})')
    return pairs


def schedule_value(schedule: Sequence[tuple[float, float]], time_s: float) -> float:
    """The bandwidth of a checked schedule at ``time_s`` (the last entry at or before it)."""
    index = bisect.bisect_right([t for t, _ in schedule], time_s) - 1
    return schedule[max(index, 0)][1]


class FaceOffloadContinuousEnv(FaceOffloadEnv):
    """FaceOffloadEnv with action Box(-1, 1, (1,)): offload iff the action is > 0."""

    def __init__(self, *, bandwidth_schedule: Sequence[tuple[float, float]] | None = None,
                 **kwargs: Any) -> None:
        self.bandwidth_schedule = None if bandwidth_schedule is None else check_schedule(bandwidth_schedule)
        super().__init__(**kwargs)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    # ------------------------------------------------------------------ bandwidth schedule
    def _apply_schedule(self) -> None:
        if self.bandwidth_schedule is not None:
            value = schedule_value(self.bandwidth_schedule, self.now)
            self.bandwidth_mbps = min(max(value, self.bandwidth_min_mbps), self.bandwidth_max_mbps)

    def _reset_state(self) -> None:
        super()._reset_state()
        self._apply_schedule()

    def _advance(self, dt: float) -> None:
        super()._advance(dt)   # the walk's draws still happen: same task sequence per seed
        self._apply_schedule()

    # ------------------------------------------------------------------ gymnasium API
    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return super().step(decision_of(action))

    # ------------------------------------------------------------------ the oracle's knowledge
    def _snapshot(self) -> dict[str, Any]:
        return {'now': self.now, '_worker_done': deque(self._worker_done), '_radio_done': deque(self._radio_done),
                '_server_free_at': self._server_free_at, '_server_slow': self._server_slow,
                'bandwidth_mbps': self.bandwidth_mbps, '_bandwidth_estimate': self._bandwidth_estimate,
                '_slowdown_estimate': self._slowdown_estimate, '_tasks_done': self._tasks_done,
                'task': dict(self.task), 'rng': self._rng.getstate()}

    def _restore(self, snapshot: dict[str, Any]) -> None:
        for name, value in snapshot.items():
            if name == 'rng':
                self._rng.setstate(value)
            elif name in ('_worker_done', '_radio_done'):
                setattr(self, name, deque(value))
            elif name == 'task':
                self.task = dict(value)
            else:
                setattr(self, name, value)

    def true_outcomes(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The info dicts ``step(LOCAL)`` and ``step(OFFLOAD)`` would return now; the env is unchanged."""
        if not self.task:
            raise RuntimeError('call reset() before true_outcomes()')
        snapshot = self._snapshot()
        outcomes = []
        for decision in (LOCAL, OFFLOAD):
            _, _, _, _, info = FaceOffloadEnv.step(self, decision)
            outcomes.append(info)
            self._restore(snapshot)
        return outcomes[0], outcomes[1]

    def true_costs(self) -> tuple[float, float]:
        """(local cost, offload cost) the current task would really get; the env is unchanged."""
        local, offload = self.true_outcomes()
        return float(local['cost']), float(offload['cost'])


class TrueCostOracle:
    """Per task, the decision with the lower true cost (``env.true_costs()``), as a Box action.

    Needs the env itself (it reads hidden state): ``policy_factory=TrueCostOracle`` in
    ``dcdrl_sim.evaluation.evaluate_policy``. Ignores the observation it is called with.
    """

    def __init__(self, env: Any) -> None:
        model = getattr(env, 'unwrapped', env)
        if not isinstance(model, FaceOffloadContinuousEnv):
            raise TypeError(f'TrueCostOracle needs a FaceOffloadContinuousEnv, got {type(model).__name__}')
        self.env = model

    def __call__(self, obs: Any) -> np.ndarray:
        local, offload = self.env.true_costs()
        return np.array([1.0 if offload < local else -1.0], np.float32)


def box_action(decision: int) -> np.ndarray:
    """The Box action that means ``decision`` (-1 local, +1 offload), for the discrete baselines."""
    if decision not in (LOCAL, OFFLOAD):
        raise ValueError(f'decision must be 0 (local) or 1 (offload), got {decision!r}')
    return np.array([1.0 if decision == OFFLOAD else -1.0], np.float32)
