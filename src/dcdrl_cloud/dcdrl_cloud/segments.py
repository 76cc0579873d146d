"""Trajectory segments from edge controllers -> transitions and episode summaries (no ROS import).

An edge controller sends ONE segment per control step k (TrajectorySegment.msg): sequence k
(+1 every step for the life of the controller), episode e (+1 at every reset), the version of
the actor that chose the action (0 = safe action), the observation o_k read at step k, the
action a_k written at step k, and flags (EPISODE_START on the first step after a reset,
TERMINATED / TRUNCATED on the step whose reading ends the episode, EVALUATION on every step of
a noise-free evaluation episode). Read top to bottom:

1. ``read_segment``: a message (duck-typed, either backend) -> ``SegmentView``, validated
   (``SegmentRejected`` with a short reason for counting).
2. ``SwingUpReward``: the cart-pole swing-up reward computed on the cloud side from o_{k+1}
   and a_k, equal to CartPoleSwingUpEnv's step reward.
3. ``SegmentPairer``: per device, segment k (not final) + segment k+1 (sequence exactly k+1,
   same episode) -> ``Transition`` (o_k, a_k, r, o_{k+1}, terminated/truncated of k+1); any
   other pairing (gap, duplicate, older sequence, other episode) gives none and is counted.
   It also keeps each device's running episode (return, length, first on-target step) and
   hands out an ``SegmentEpisodeSummary`` when the episode closes.
"""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from dcdrl_core.protocol import KNOWN_SEGMENT_FLAGS, SegmentFlag
from dcdrl_ros.msg_arrays import get_array
from dcdrl_sim.cartpole import task as task_rules
from dcdrl_sim.cartpole.task import SwingUpTask

MAX_DEVICE_ID_LENGTH = 64
_UINT64_LIMIT = 2 ** 64


class SegmentRejected(ValueError):
    """A segment that must not be used. ``reason`` is a short code for counting:

    'malformed' (a field is missing or has the wrong type), 'device_id' (empty or longer than
    64 characters), 'wrong_size' (observation / action length), 'not_finite' (NaN or Inf),
    'out_of_range' (an action outside [-1, 1] or a negative counter), 'bad_flags' (unknown bits,
    or TERMINATED and TRUNCATED together).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f'segment rejected ({reason}): {message}')
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class SegmentView:
    """One validated segment; the arrays are the view's own copies (float32, 1-D)."""

    device_id: str
    sequence: int
    episode: int
    policy_version: int
    observation: np.ndarray    # float32 [obs_dim]: o_k
    action: np.ndarray         # float32 [action_dim]: a_k
    flags: int
    stamp_s: float             # header stamp in seconds (the edge's clock)

    @property
    def episode_start(self) -> bool:
        return bool(self.flags & SegmentFlag.EPISODE_START)

    @property
    def terminated(self) -> bool:
        return bool(self.flags & SegmentFlag.TERMINATED)

    @property
    def truncated(self) -> bool:
        return bool(self.flags & SegmentFlag.TRUNCATED)

    @property
    def final(self) -> bool:
        """The episode ends at this segment (terminated or truncated)."""
        return bool(self.flags & (SegmentFlag.TERMINATED | SegmentFlag.TRUNCATED))

    @property
    def evaluation(self) -> bool:
        return bool(self.flags & SegmentFlag.EVALUATION)


def _counter(message: Any, name: str) -> int:
    value = getattr(message, name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SegmentRejected('malformed', f'{name} must be an integer, got {type(value).__name__}')
    if not 0 <= int(value) < _UINT64_LIMIT:
        raise SegmentRejected('out_of_range', f'{name} must be in [0, 2**64), got {value}')
    return int(value)


def _vector(message: Any, name: str, size: int) -> np.ndarray:
    try:
        array = get_array(message, name, np.float32)
    except (TypeError, ValueError) as error:
        raise SegmentRejected('malformed', f'{name} is not a float array: {error}') from None
    if array.ndim != 1 or array.size != size:
        raise SegmentRejected('wrong_size', f'{name} has {array.size} values, expected {size}')
    if not np.isfinite(array).all():
        raise SegmentRejected('not_finite', f'{name} contains NaN or Inf')
    return np.array(array, dtype=np.float32, copy=True)  # own copy: the message buffer may be reused


def read_segment(message: Any, obs_dim: int, action_dim: int) -> SegmentView:
    """Validate a TrajectorySegment message (duck-typed) and return its contents as a SegmentView.

    Raises SegmentRejected (see its reasons) and never anything else for bad content.
    """
    try:
        device_id = message.device_id
        if not isinstance(device_id, str):
            raise SegmentRejected('malformed', f'device_id must be a string, got {type(device_id).__name__}')
        if not device_id or len(device_id) > MAX_DEVICE_ID_LENGTH:
            raise SegmentRejected('device_id', f'device_id must have 1 to {MAX_DEVICE_ID_LENGTH} characters, '
                                               f'got {len(device_id)}')
        sequence = _counter(message, 'sequence')
        episode = _counter(message, 'episode')
        policy_version = _counter(message, 'policy_version')
        flags = message.flags
        if isinstance(flags, bool) or not isinstance(flags, (int, np.integer)) or not 0 <= flags <= 255:
            raise SegmentRejected('bad_flags', f'flags must be a uint8, got {flags!r}')
        flags = int(flags)
        if flags & ~KNOWN_SEGMENT_FLAGS:
            unknown = flags & ~KNOWN_SEGMENT_FLAGS
            raise SegmentRejected('bad_flags', f'unknown flag bits {unknown:#x} in {flags:#x}')
        if flags & SegmentFlag.TERMINATED and flags & SegmentFlag.TRUNCATED:
            raise SegmentRejected('bad_flags', 'TERMINATED and TRUNCATED are both set')
        observation = _vector(message, 'observation', obs_dim)
        action = _vector(message, 'action', action_dim)
        if np.abs(action).max(initial=0.0) > 1.0 + 1e-6:
            raise SegmentRejected('out_of_range', f'action must lie in [-1, 1] (after clipping), got {action}')
        stamp = message.header.stamp
        stamp_s = float(stamp.sec) + 1e-9 * float(stamp.nanosec)
    except AttributeError as error:
        raise SegmentRejected('malformed', f'not a TrajectorySegment: {error}') from None
    return SegmentView(device_id, sequence, episode, policy_version, observation, action, flags, stamp_s)


# ---------------------------------------------------------------------------------- reward
class SwingUpReward:
    """The swing-up reward from a segment observation (dcdrl_sim.cartpole.task.reward):

        r = 0.5 exp(-5 d_tip) - 0.05 |a|^2 - 10 failed

    d_tip = distance from the pole tip (x + L sin(theta), L cos(theta)) to the target point
    (target_x, L), read from obs[0] = x, obs[2] = sin(theta), obs[3] = cos(theta). The constants
    come from ``task`` (SwingUpTask) and ``pole_length``; ``failed`` is the TERMINATED flag of
    the segment that carries next_obs. Equals CartPoleSwingUpEnv's step reward up to the float32
    rounding of the observation (about 1e-7).
    """

    def __init__(self, pole_length: float = 0.64, task: SwingUpTask = SwingUpTask()) -> None:
        if isinstance(pole_length, bool) or not isinstance(pole_length, (int, float)) \
                or not math.isfinite(pole_length) or pole_length <= 0:
            raise ValueError(f'pole_length must be a finite number > 0 (m), got {pole_length!r}')
        if not isinstance(task, SwingUpTask):
            raise TypeError(f'task must be a SwingUpTask, got {type(task).__name__}')
        self.pole_length = float(pole_length)
        self.task = task

    def tip_distance(self, obs: np.ndarray) -> float:
        """Distance (m) from the pole tip to the target point."""
        length = self.pole_length
        dx = float(obs[0]) + length * float(obs[2]) - self.task.target_x
        dy = length * float(obs[3]) - length
        return math.sqrt(dx * dx + dy * dy)

    def on_target(self, obs: np.ndarray) -> bool:
        return self.tip_distance(obs) <= self.task.target_distance

    def __call__(self, next_obs: np.ndarray, action: np.ndarray, failed: bool) -> float:
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        # For one action a*a is exactly the env's term; for several, |a|^2 (the natural extension).
        magnitude = float(a[0]) if a.size == 1 else math.sqrt(float(np.dot(a, a)))
        return float(task_rules.reward(self.tip_distance(next_obs), magnitude, bool(failed), self.task))


# ---------------------------------------------------------------------------------- pairing
@dataclass
class Transition:
    """One stored step: (o_k, a_k, r, o_{k+1}) with the end flags of segment k+1."""

    obs: np.ndarray
    action: np.ndarray
    reward: float
    next_obs: np.ndarray
    terminated: bool        # segment k+1 carries TERMINATED: no bootstrap
    truncated: bool         # segment k+1 carries TRUNCATED: bootstrap from next_obs
    device_id: str
    episode: int
    policy_version: int     # the actor that chose a_k (0 = safe action)
    evaluation: bool        # a_k came from a noise-free evaluation episode


@dataclass(frozen=True)
class SegmentEpisodeSummary:
    """One episode of one device, as the cloud saw it.

    episode_return: sum of the rewards of the episode's transitions; length: their number.
    swing_up_steps: steps from the episode's start (its EPISODE_START segment) to the first
        observation with the tip within target_distance (1 = after the first step), None when
        never on target or when the start was not seen.
    complete: the EPISODE_START segment and every later segment up to the final one arrived
        (no gap), so return and length cover the whole episode.
    policy_version: the version that chose most of the episode's actions (ties: the newest).
    """

    device_id: str
    episode: int
    episode_return: float
    length: int
    swing_up_steps: int | None
    evaluation: bool
    failed: bool
    complete: bool
    policy_version: int


class _OpenEpisode:
    """Running bookkeeping of a device's current episode."""

    __slots__ = ('episode', 'start_sequence', 'episode_return', 'length', 'swing_up_steps', 'evaluation',
                 'complete', 'versions', 'first_version')

    def __init__(self, seg: SegmentView) -> None:
        self.episode = seg.episode
        self.start_sequence: int | None = seg.sequence if seg.episode_start else None
        self.episode_return = 0.0
        self.length = 0
        self.swing_up_steps: int | None = None
        self.evaluation = seg.evaluation
        self.complete = seg.episode_start
        self.versions: dict[int, int] = {}
        self.first_version = seg.policy_version

    def summary(self, device_id: str, failed: bool, complete: bool) -> SegmentEpisodeSummary:
        if self.versions:
            # Most actions; ties go to the newest version.
            version = max(self.versions.items(), key=lambda item: (item[1], item[0]))[0]
        else:
            version = self.first_version
        return SegmentEpisodeSummary(device_id, self.episode, self.episode_return, self.length, self.swing_up_steps,
                              self.evaluation, failed, complete, version)


_COUNTER_NAMES = ('segments', 'transitions', 'gaps', 'lost_segments', 'stale', 'episode_mismatch', 'restarts',
                  'episodes', 'incomplete_episodes')


class _Device:
    __slots__ = ('last', 'open', 'counts')

    def __init__(self) -> None:
        self.last: SegmentView | None = None
        self.open: _OpenEpisode | None = None
        self.counts = dict.fromkeys(_COUNTER_NAMES, 0)


class SegmentPairer:
    """Turns each device's segment stream into transitions and episode summaries.

    ``add(seg)`` returns the transition that seg completes, or None. Rules, per device, with
    ``prev`` the newest segment seen before:
    - seg.sequence <= prev.sequence: stale (duplicate or reordered), dropped and counted. The one
      exception is a controller restart: an older-or-equal sequence that starts an episode
      (EPISODE_START) and carries a later header stamp than prev; the device starts over
      (counted in ``restarts``).
    - prev is final (TERMINATED/TRUNCATED): no transition is expected (the edge resets); a jump
      in sequence here is not a gap. A segment of the same episode after its final one is counted
      as episode_mismatch.
    - seg.sequence > prev.sequence + 1: a gap (``gaps`` events, ``lost_segments`` missing numbers);
      the open episode becomes incomplete.
    - seg.episode != prev.episode: episode_mismatch (the previous episode never sent its final
      segment).
    - otherwise: Transition(prev.obs, prev.action, reward(seg.obs, prev.action, seg.terminated),
      seg.obs, seg.terminated, seg.truncated).
    An episode closes at its final segment, or, incomplete, when a segment of another episode of
    the same device arrives first; closed episodes wait in ``pop_finished()``.

    Devices beyond ``max_devices`` are refused (``unknown_device_refused``). At most
    ``max_finished`` summaries wait for ``pop_finished`` (the oldest go first). Not thread-safe:
    the learner calls it under its lock.
    """

    def __init__(self, reward: SwingUpReward, max_devices: int = 16, max_finished: int = 10_000) -> None:
        if not isinstance(reward, SwingUpReward):
            raise TypeError(f'reward must be a SwingUpReward, got {type(reward).__name__}')
        if isinstance(max_devices, bool) or not isinstance(max_devices, int) or max_devices < 1:
            raise ValueError(f'max_devices must be an int >= 1, got {max_devices!r}')
        self.reward = reward
        self.max_devices = max_devices
        self._devices: dict[str, _Device] = {}
        # Bounded: a caller that never pops loses the oldest summaries, not memory.
        self._finished: collections.deque[SegmentEpisodeSummary] = collections.deque(maxlen=max_finished)
        self.unknown_device_refused = 0
        self.refused_by_device: dict[str, int] = {}

    # Totals over all devices (attributes, as the brief names them).
    def _total(self, name: str) -> int:
        return sum(d.counts[name] for d in self._devices.values())

    segments = property(lambda self: self._total('segments'))
    transitions = property(lambda self: self._total('transitions'))
    gaps = property(lambda self: self._total('gaps'))
    lost_segments = property(lambda self: self._total('lost_segments'))
    stale = property(lambda self: self._total('stale'))
    episode_mismatch = property(lambda self: self._total('episode_mismatch'))
    restarts = property(lambda self: self._total('restarts'))

    @property
    def devices(self) -> list[str]:
        return list(self._devices)

    def counters(self) -> dict[str, int]:
        """Totals: segments, transitions, gaps, lost_segments, stale, episode_mismatch, restarts,
        episodes, incomplete_episodes, unknown_device_refused, devices."""
        totals = {name: self._total(name) for name in _COUNTER_NAMES}
        totals['unknown_device_refused'] = self.unknown_device_refused
        totals['devices'] = len(self._devices)
        return totals

    def device_counters(self) -> dict[str, dict[str, int]]:
        """The same counters per device id (copies)."""
        return {device_id: dict(device.counts) for device_id, device in self._devices.items()}

    def forget(self, device_id: str) -> bool:
        """Drop a device's state (e.g. its controller restarted); its open episode is discarded."""
        return self._devices.pop(device_id, None) is not None

    def pop_finished(self) -> list[SegmentEpisodeSummary]:
        """Episodes closed since the last call, oldest first."""
        finished = list(self._finished)
        self._finished.clear()
        return finished

    def add(self, seg: SegmentView) -> Transition | None:
        device = self._devices.get(seg.device_id)
        if device is None:
            if len(self._devices) >= self.max_devices:
                self.unknown_device_refused += 1
                self.refused_by_device[seg.device_id] = self.refused_by_device.get(seg.device_id, 0) + 1
                if len(self.refused_by_device) > 4 * self.max_devices:  # bounded, whatever the ids
                    self.refused_by_device.pop(next(iter(self.refused_by_device)))
                return None
            device = self._devices[seg.device_id] = _Device()
        counts = device.counts
        counts['segments'] += 1
        prev = device.last

        if prev is not None and seg.sequence <= prev.sequence:
            if seg.episode_start and seg.stamp_s > prev.stamp_s:
                counts['restarts'] += 1
                self._close(seg.device_id, device, failed=False, complete=False)
                prev = None
            else:
                counts['stale'] += 1
                return None

        transition = None
        if prev is not None:
            if prev.final:
                if seg.episode == prev.episode:
                    counts['episode_mismatch'] += 1
            elif seg.sequence > prev.sequence + 1:
                counts['gaps'] += 1
                counts['lost_segments'] += seg.sequence - prev.sequence - 1
                if device.open is not None:
                    device.open.complete = False
            elif seg.episode != prev.episode:
                counts['episode_mismatch'] += 1
            else:
                transition = Transition(
                    obs=prev.observation, action=prev.action,
                    reward=self.reward(seg.observation, prev.action, seg.terminated),
                    next_obs=seg.observation, terminated=seg.terminated, truncated=seg.truncated,
                    device_id=seg.device_id, episode=seg.episode, policy_version=prev.policy_version,
                    evaluation=prev.evaluation)
                counts['transitions'] += 1
        device.last = seg
        self._track_episode(device, seg, transition)
        return transition

    def _track_episode(self, device: _Device, seg: SegmentView, transition: Transition | None) -> None:
        episode = device.open
        if episode is not None and episode.episode != seg.episode:
            self._close(seg.device_id, device, failed=False, complete=False)  # its final segment never came
            episode = None
        if episode is None:
            episode = device.open = _OpenEpisode(seg)
        if not seg.evaluation:
            episode.evaluation = False  # an evaluation episode has the flag on every segment
        if transition is not None:
            episode.episode_return += transition.reward
            episode.length += 1
            episode.versions[transition.policy_version] = episode.versions.get(transition.policy_version, 0) + 1
        if episode.swing_up_steps is None and episode.start_sequence is not None \
                and seg.sequence > episode.start_sequence and self.reward.on_target(seg.observation):
            episode.swing_up_steps = seg.sequence - episode.start_sequence
        if seg.final:
            self._close(seg.device_id, device, failed=seg.terminated, complete=episode.complete)

    def _close(self, device_id: str, device: _Device, failed: bool, complete: bool) -> None:
        episode = device.open
        if episode is None:
            return
        device.open = None
        device.counts['episodes'] += 1
        if not complete:
            device.counts['incomplete_episodes'] += 1
        self._finished.append(episode.summary(device_id, failed, complete))


__all__ = ['SegmentEpisodeSummary', 'MAX_DEVICE_ID_LENGTH', 'SegmentPairer', 'SegmentRejected', 'SegmentView',
           'SwingUpReward', 'Transition', 'read_segment']
