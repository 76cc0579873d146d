"""The edge real-time controller, without ROS: a fixed-rate loop that reads the plant, runs the
active actor (plus exploration noise when training), writes the actuator and queues one trajectory
segment per control step for a sender thread. It never waits on the network or the learner.

    plant = SimulatedCartPolePlant()
    actor = DoubleBufferedActor('cloud_edge', plant.observation_dim, plant.action_dim)
    controller = EdgeController(ControllerConfig(rate_hz=30.0), plant, actor)
    sender = controller.make_sender(publish_batch)      # drains controller.queue
    actor.start(); sender.start()
    controller.run(stop_event)                          # blocks until stop_event is set
    # any thread, any time: actor.offer(payload), controller.command(RESET), controller.stats()

One step (step()), in this order:
 1. swap in newly staged weights (DoubleBufferedActor.swap_if_ready), unless an evaluation
    episode is running (swap_during_evaluation=False keeps one version per evaluation episode);
 2. take the pending commands (RESET, EVALUATE, TRAIN, HOLD, RESUME);
 3. holding: read the plant (for the stats), write the safe action; nothing else;
    resetting: plant.reset_step(); when it returns True the next episode starts in this step;
 4. read the plant; if the reading ends the episode (or RESET / HOLD was requested): queue the final
    segment (TERMINATED or TRUNCATED, the safe action), write the safe action, start the reset;
 5. otherwise act: actor(o_k) (+ noise unless evaluating, clipped to [-1, 1]) -> write -> queue
    the segment (drop-oldest when the sender lags). With no weights yet: write the safe action and
    queue nothing (LoopMode.FALLBACK).
The loop thread takes no lock shared with another thread and does no I/O besides the plant.
"""
from __future__ import annotations

import numbers
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from dcdrl_core.protocol import EdgeCommandKind, LoopMode, SegmentFlag, parse_edge_command
from dcdrl_learning.noise import NOISE_KINDS, make_noise
from dcdrl_ros.parameter_dataclass import check_limits, parameter

from .actor_buffer import DoubleBufferedActor
from .plant import Plant
from .segment_queue import DropOldestQueue, Segment, SegmentSender
from .timing import MAX_RATE_HZ, MIN_RATE_HZ, RateLoop, WindowStats

CONTROLLER_MODES = ('train', 'eval')

# Internal phases of the loop.
_RUNNING, _RESETTING, _HOLDING = 'running', 'resetting', 'holding'


@dataclass
class ControllerConfig:
    """The edge controller's settings (dcdrl_ros.parameter_dataclass); the node adds its own
    (dcdrl_edge.controller_parameters.ControllerParameters)."""

    device_id: str = parameter('edge', "name of this controller in segments and stats (the node: '' = its name)")
    rate_hz: float = parameter(30.0, 'control loop rate (the paper runs 30 Hz, tests 200 Hz, the bench 1 kHz)',
                               low=MIN_RATE_HZ, high=MAX_RATE_HZ)
    mode: str = parameter('train', "'train' (explore, stream segments) or 'eval' (every episode noise-free, flagged "
                                   "EVALUATION)", choices=CONTROLLER_MODES)
    exploration: str = parameter('ou', 'exploration noise: Ornstein-Uhlenbeck, Gaussian, pink (1/f) or none',
                                 choices=NOISE_KINDS)
    noise_sigma: float = parameter(0.1, "the noise's sigma", low=0.0)
    noise_theta: float = parameter(0.15, 'OU mean reversion per step', low=0.0)
    noise_scale: float = parameter(1.0, 'factor on the noise', low=0.0)
    noise_half_life_steps: float = parameter(0.0, 'the factor halves every that many exploring steps; 0 = constant',
                                             low=0.0)
    queue_capacity: int = parameter(1024, 'segments waiting for the sender; when full the oldest is dropped '
                                          '(counted)', low=1)
    stats_window: int = parameter(1000, 'control steps in the period-error and inference-time windows (p50, p99, '
                                        'max)', low=1)
    seed: int = parameter(0, "noise seed and the first episode's initial state (simulated plants)", low=0)
    spin_s: float = parameter(0.0002, 'the last spin_s of every period are busy-waited for a punctual start (0 = '
                                      'sleep only)', low=0.0, high=0.1)
    send_period_s: float = parameter(0.005, "the sender thread's period", above=0.0, high=10.0)
    swap_during_evaluation: bool = parameter(False, 'false: new weights wait for the end of an evaluation episode '
                                                    '(one policy version per evaluation episode)')

    def __post_init__(self) -> None:
        for item in fields(self):   # numbers of numpy or int type given for a float field become floats
            value = getattr(self, item.name)
            if isinstance(item.default, float) and isinstance(value, numbers.Real) and not isinstance(value, bool):
                setattr(self, item.name, float(value))
            elif type(item.default) is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
                setattr(self, item.name, int(value))
        check_limits(self)
        self._check_device_id()

    def _check_device_id(self) -> None:
        if not self.device_id.strip():
            raise ValueError(f'device_id must be a non-empty string, got {self.device_id!r}')

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ControllerConfig:
        """From a YAML / parameter mapping; unknown keys are an error (typos must not pass silently)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f'unknown ControllerConfig fields {unknown}; known: {sorted(known)}')
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def counted_command(owner: Any, kind: object) -> EdgeCommandKind:
    """``kind`` as a command; an unknown one is counted in ``owner.commands_refused`` and raised (ValueError)."""
    try:
        return parse_edge_command(kind)
    except ValueError:
        owner.commands_refused += 1
        raise


@dataclass(frozen=True, slots=True)
class LoopEpisodeSummary:
    """One finished episode, as the node may log or publish it.

    length: actions chosen by the policy (= segments before the final one = transitions the cloud
        can form when none was dropped). end_reason: 'terminated', 'truncated', 'reset' (RESET
        command) or 'hold' (HOLD command). episode_return: sum of the plant's info['reward'] when
        the plant reports one (the simulator does), else None. swing_up_steps: control steps until
        the plant first reported info['on_target'] (1 = after the first action; the cart-pole env's
        definition, as the cloud counts it), None when never on target or the plant does not say.
    """

    episode: int
    length: int
    evaluation: bool
    terminated: bool
    truncated: bool
    end_reason: str
    policy_version: int
    first_sequence: int
    last_sequence: int
    episode_return: float | None
    swing_up_steps: int | None = None


class EdgeController:
    """The control loop's logic: step() is one control step, run() paces it with a RateLoop.

    clock_ns: monotonic clock (deadlines, inference time, cloud silence); wall_clock_ns: segment
    stamps; sleep: the RateLoop's sleep (None = wait on run()'s stop event, so stop() is prompt).
    on_episode_end: optional callback(LoopEpisodeSummary), called on the loop thread (keep it short);
    the last 256 summaries also wait in a lock-free deque for pop_finished_episodes().
    """

    def __init__(self, config: ControllerConfig, plant: Plant, actor: DoubleBufferedActor,
                 clock_ns: Callable[[], int] = time.monotonic_ns,
                 wall_clock_ns: Callable[[], int] = time.time_ns,
                 sleep: Callable[[float], Any] | None = None,
                 on_episode_end: Callable[[LoopEpisodeSummary], None] | None = None,
                 queue: Any = None, stats_buffers: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        if not isinstance(config, ControllerConfig):
            raise TypeError(f'config must be a ControllerConfig, got {type(config).__name__}')
        for name in ('active', 'version', 'swap_if_ready', 'obs_dim', 'action_dim'):
            if not hasattr(actor, name):   # a DoubleBufferedActor, or the loop process's side of one
                raise TypeError(f'actor must be a DoubleBufferedActor, got {type(actor).__name__}')
        for name in ('begin_reset', 'reset_step', 'read', 'write', 'safe_action'):
            if not callable(getattr(plant, name, None)):
                raise TypeError(f'plant must implement the Plant interface; {type(plant).__name__} lacks {name}()')
        if (actor.obs_dim, actor.action_dim) != (plant.observation_dim, plant.action_dim):
            raise ValueError(f'actor is for obs_dim={actor.obs_dim}, action_dim={actor.action_dim} but the plant '
                             f'has observation_dim={plant.observation_dim}, action_dim={plant.action_dim}')
        self.config = config
        self.plant = plant
        self.actor = actor
        self.obs_dim, self.action_dim = plant.observation_dim, plant.action_dim
        safe = np.array(plant.safe_action(), dtype=np.float32).reshape(-1)
        if safe.shape != (self.action_dim,) or not np.isfinite(safe).all() or np.abs(safe).max(initial=0) > 1:
            raise ValueError(f'plant.safe_action() must be {self.action_dim} finite values in [-1, 1], got {safe}')
        safe.flags.writeable = False   # shared by segments and writes: nobody may change it
        self._safe = safe
        self._clock_ns = clock_ns
        self._wall_clock_ns = wall_clock_ns
        self._sleep = sleep
        self.on_episode_end = on_episode_end
        # queue: where segments go (default a DropOldestQueue; the loop process passes its shared ring).
        self.queue: DropOldestQueue[Segment] = queue if queue is not None else DropOldestQueue(config.queue_capacity)
        half_life = config.noise_half_life_steps if config.noise_half_life_steps > 0 else None
        self._noise = make_noise(config.exploration, self.action_dim, config.noise_sigma, theta=config.noise_theta,
                                 scale=config.noise_scale, half_life=half_life, seed=config.seed)
        self._commands: deque[int] = deque()        # mailbox: command() appends, step() pops
        # stats_buffers: arrays the windows live in (shared memory in the loop process), else private.
        period_buffer, inference_buffer = stats_buffers or (None, None)
        self._period_us = WindowStats(config.stats_window, period_buffer)
        self._inference_us = WindowStats(config.stats_window, inference_buffer)
        self._rate_loop: RateLoop | None = None
        self._action = np.zeros(self.action_dim, np.float32)
        self.finished: deque[LoopEpisodeSummary] = deque(maxlen=256)
        # Loop state (loop thread only).
        self._phase = _RESETTING
        self._reset_begun = False
        self._first_reset = True
        self._plant_started = False    # begin_reset() was called once: the plant accepts read/write
        self._steps = 0
        self._episode = 0
        self._episode_step = 0
        self._episode_first_sequence = 0
        self._episode_return: float | None = None
        self._swing_up_steps: int | None = None
        self._evaluation = False
        self._evaluate_next = False
        self._fallback_episode = False
        self._end_requested = False
        self._hold_requested = False
        self._last_observation: np.ndarray | None = None
        self._last_action = 0.0
        self._last_cloud_ns: int | None = None
        # Counters.
        self.episodes_finished = 0
        self.fallback_episodes = 0
        self.commands_taken = 0
        self.commands_refused = 0   # unknown command kinds from edge/command
        self.nonfinite_actions = 0
        self.callback_errors = 0

    # ------------------------------------------------------------------ any thread
    def command(self, kind: int) -> None:
        """Request RESET / EVALUATE / TRAIN / HOLD / RESUME; taken at the start of the next step."""
        self._commands.append(int(counted_command(self, kind)))

    def note_cloud_message(self) -> None:
        """Record that a message from the cloud (weights, command) arrived now (for cloud_silent_s)."""
        self._last_cloud_ns = self._clock_ns()

    def pop_finished_episodes(self) -> list[LoopEpisodeSummary]:
        out = []
        while True:
            try:
                out.append(self.finished.popleft())
            except IndexError:
                return out

    def make_sender(self, send: Callable[[list[Segment]], None],
                    on_error: Callable[[BaseException], None] | None = None) -> SegmentSender:
        """A SegmentSender on this controller's queue with the configured send period."""
        return SegmentSender(self.queue, send, period_s=self.config.send_period_s, on_error=on_error)

    @property
    def mode(self) -> int:
        """The LoopStats mode now."""
        if self._phase == _HOLDING:
            return LoopMode.HOLD
        if self._phase == _RESETTING:
            return LoopMode.RESETTING
        if self._fallback_episode or self.actor.active is None:
            return LoopMode.FALLBACK
        return LoopMode.EVAL if self._evaluation else LoopMode.TRAIN

    @property
    def steps(self) -> int:
        return self._steps

    @property
    def episode(self) -> int:
        """Number of the current (or last) episode; 0 before the first one started."""
        return self._episode

    @property
    def evaluating(self) -> bool:
        """True while an evaluation episode runs."""
        return self._phase == _RUNNING and self._evaluation

    @property
    def misses(self) -> int:
        return 0 if self._rate_loop is None else self._rate_loop.misses

    def stats(self) -> dict[str, Any]:
        """The LoopStats.msg fields this logic can fill (same names; the node adds header/device_id)."""
        period, inference = self._period_us.summary(), self._inference_us.summary()
        observation = self._last_observation
        last_cloud = self._last_cloud_ns
        return {
            'mode': self.mode,
            'rate_hz': float(self.config.rate_hz),
            'steps': self._steps,
            'episode': self._episode,
            'policy_version': max(self.actor.version, 0),
            'period_error_p50_us': period['p50'],
            'period_error_p99_us': period['p99'],
            'period_error_max_us': period['max'],
            'misses': self.misses,
            'inference_p50_us': inference['p50'],
            'inference_max_us': inference['max'],
            'segments_queued': self.queue.pushed,
            'segments_dropped': self.queue.dropped,
            'weights_swapped': self.actor.swapped,
            'weights_rejected': self.actor.rejected_total,
            'cloud_silent_s': -1.0 if last_cloud is None else (self._clock_ns() - last_cloud) * 1e-9,
            'last_action': float(self._last_action),
            'observation': [] if observation is None else [float(v) for v in observation],
        }

    def counters(self) -> dict[str, Any]:
        """The raw numbers behind stats(), cheap enough for the loop thread (no percentiles): what the
        loop process writes to its board for the node to report."""
        loop = self._rate_loop
        return {
            'steps': self._steps, 'episode': self._episode, 'mode': self.mode,
            'policy_version': max(self.actor.version, 0),
            'misses': 0 if loop is None else loop.misses, 'skipped': 0 if loop is None else loop.skipped,
            'period_total': self._period_us.total, 'inference_total': self._inference_us.total,
            'episodes_finished': self.episodes_finished, 'fallback_episodes': self.fallback_episodes,
            'commands_taken': self.commands_taken, 'nonfinite_actions': self.nonfinite_actions,
            'evaluation_pending': self._evaluate_next, 'last_action': self._last_action,
            'observation': self._last_observation,
        }

    def diagnostics(self) -> dict[str, Any]:
        """More counters for /diagnostics and logs (not in LoopStats)."""
        loop = self._rate_loop
        plant_rate = getattr(self.plant, 'nominal_rate_hz', None)
        return {
            'device_id': self.config.device_id,
            'mode_name': LoopMode(self.mode).label,
            'episodes_finished': self.episodes_finished,
            'fallback_episodes': self.fallback_episodes,
            'evaluation_pending': self._evaluate_next,
            'deadlines_skipped': 0 if loop is None else loop.skipped,
            'period_error_p99_us': self._period_us.summary()['p99'],
            'inference_p99_us': self._inference_us.summary()['p99'],
            'queue_length': len(self.queue),
            'weights_offered': self.actor.offered,
            'weights_superseded': self.actor.superseded,
            'weights_rejected_by_reason': dict(self.actor.rejected),
            'last_rejection': self.actor.last_rejection,
            'pending_version': max(self.actor.pending_version, 0),
            'commands_taken': self.commands_taken,
            'commands_refused': self.commands_refused,
            'nonfinite_actions': self.nonfinite_actions,
            'callback_errors': self.callback_errors,
            'plant_rate_hz': plant_rate,
            'plant_rate_matches': plant_rate is None or abs(plant_rate - self.config.rate_hz) < 1e-9,
        }

    # ------------------------------------------------------------------ the loop thread
    def run(self, stop: threading.Event, before_step: Callable[[], None] | None = None) -> None:
        """Step at config.rate_hz on absolute deadlines until `stop` is set; writes the safe action
        to the plant when it ends (also when a step raised: the error is re-raised after that).
        before_step: called on the loop thread right before every step (the loop process takes its
        commands and writes its statistics there); it may set `stop`."""
        sleep = self._sleep if self._sleep is not None else stop.wait
        loop = RateLoop(self.config.rate_hz, self.config.spin_s, clock_ns=self._clock_ns, sleep=sleep)
        self._rate_loop = loop
        period_us = self._period_us
        try:
            while not stop.is_set():
                late_ns = loop.wait_next()
                if before_step is not None:
                    before_step()
                if stop.is_set():
                    break
                period_us.add(late_ns * 1e-3)
                self.step()
        except BaseException:
            if self._plant_started:
                try:
                    self.plant.write(self._safe)
                except Exception:
                    pass
            raise
        if self._plant_started:   # leave the actuator at the safe action
            self.plant.write(self._safe)

    def step(self) -> Segment | None:
        """One control step (see the module doc). Returns the segment queued in this step, if any."""
        actor = self.actor
        if self.config.swap_during_evaluation or not self._evaluation or self._phase != _RUNNING \
                or actor.active is None:
            actor.swap_if_ready()
        if self._commands:
            self._take_commands()
        sequence = self._steps
        self._steps += 1
        plant = self.plant

        if self._phase == _HOLDING:
            self._last_observation = np.array(plant.read().observation, dtype=np.float32)
            self._write_safe()
            return None
        if self._phase == _RESETTING:
            if not self._reset_begun:
                self._begin_reset()
            if self._hold_requested:   # HOLD wins over a reset in progress
                self._enter_hold()
                self._write_safe()
                return None
            if not plant.reset_step():
                return None
            self._start_episode(sequence)

        reading = plant.read()
        observation = np.array(reading.observation, dtype=np.float32)   # o_k, owned by the segment
        if observation.shape != (self.obs_dim,) or not np.isfinite(observation).all():
            self._write_safe()
            raise ValueError(f'plant observation must be {self.obs_dim} finite values, got {reading.observation!r}')
        stamp_ns = self._wall_clock_ns()
        self._last_observation = observation
        info = reading.info
        if info:   # a plant that knows the task (the simulator): r(o_k, a_{k-1}) and whether the tip is up
            reward = info.get('reward')
            if reward is not None:
                self._episode_return = float(reward) + (self._episode_return or 0.0)
            if self._swing_up_steps is None and self._episode_step > 0 and info.get('on_target'):
                self._swing_up_steps = self._episode_step
        active = actor.active

        if active is not None and self._fallback_episode:
            # Weights arrived during an episode run on the safe action (it sent no segments): drop it
            # and start a clean episode, so the cloud gets whole episodes from their first step.
            self._write_safe()
            self.fallback_episodes += 1
            self._begin_reset()
            return None

        ended = reading.terminated or reading.truncated or self._end_requested or self._hold_requested
        if ended:
            return self._end_episode(sequence, observation, stamp_ns, reading.terminated, reading.truncated)

        if active is None:
            self._write_safe()   # LoopMode.FALLBACK: no policy, no segment
            self._episode_step += 1
            return None

        start_ns = self._clock_ns()
        action = self._action
        np.copyto(action, active(observation))
        if self._noise is not None and not self._evaluation:
            action += self._noise.sample()
        np.clip(action, -1.0, 1.0, out=action)
        self._inference_us.add((self._clock_ns() - start_ns) * 1e-3)
        if not np.isfinite(action).all():
            self.nonfinite_actions += 1
            self._write_safe()
            return None
        plant.write(action)
        self._last_action = float(action[0])
        flags = SegmentFlag.EPISODE_START if self._episode_step == 0 else 0
        if self._evaluation:
            flags |= SegmentFlag.EVALUATION
        segment = Segment(sequence, self._episode, active.version, observation, action.copy(), flags, stamp_ns)
        self.queue.put(segment)
        self._episode_step += 1
        return segment

    # ------------------------------------------------------------------ helpers (loop thread)
    def _write_safe(self) -> None:
        self.plant.write(self._safe)
        self._last_action = float(self._safe[0])

    def _take_commands(self) -> None:
        commands = self._commands
        while True:
            try:
                kind = commands.popleft()
            except IndexError:
                return
            self.commands_taken += 1
            if kind == EdgeCommandKind.RESET:
                if self._phase == _RUNNING:
                    self._end_requested = True
            elif kind == EdgeCommandKind.EVALUATE:
                self._evaluate_next = True
            elif kind == EdgeCommandKind.TRAIN:
                self._evaluate_next = False
            elif kind == EdgeCommandKind.HOLD:
                if self._phase != _HOLDING:
                    self._hold_requested = True
            elif kind == EdgeCommandKind.RESUME:
                self._hold_requested = False
                if self._phase == _HOLDING:
                    self._phase = _RESETTING
                    self._reset_begun = False

    def _begin_reset(self) -> None:
        self._phase = _RESETTING
        seed = self.config.seed if self._first_reset else None
        self._first_reset = False
        self.plant.begin_reset(seed)
        self._reset_begun = True
        self._plant_started = True

    def _enter_hold(self) -> None:
        self._phase = _HOLDING
        self._hold_requested = False
        self._end_requested = False

    def _start_episode(self, sequence: int) -> None:
        self._phase = _RUNNING
        self._episode += 1
        self._episode_step = 0
        self._episode_first_sequence = sequence
        self._episode_return = None
        self._swing_up_steps = None
        self._evaluation = self.config.mode == 'eval' or self._evaluate_next
        self._evaluate_next = False
        self._fallback_episode = self.actor.active is None
        self._end_requested = False
        if self._noise is not None:
            self._noise.reset()

    def _end_episode(self, sequence: int, observation: np.ndarray, stamp_ns: int, terminated: bool,
                     truncated: bool) -> Segment | None:
        self._write_safe()
        segment = None
        if self._fallback_episode:
            self.fallback_episodes += 1
        else:
            flags = SegmentFlag.TERMINATED if terminated else SegmentFlag.TRUNCATED
            if self._episode_step == 0:
                flags |= SegmentFlag.EPISODE_START
            if self._evaluation:
                flags |= SegmentFlag.EVALUATION
            version = max(self.actor.version, 0)
            segment = Segment(sequence, self._episode, version, observation, self._safe.copy(), flags, stamp_ns)
            self.queue.put(segment)
            if terminated:
                reason = 'terminated'
            elif truncated:
                reason = 'truncated'
            else:
                reason = 'hold' if self._hold_requested else 'reset'
            summary = LoopEpisodeSummary(self._episode, self._episode_step, self._evaluation, bool(terminated),
                                     not terminated, reason, version, self._episode_first_sequence, sequence,
                                     self._episode_return, self._swing_up_steps)
            self.episodes_finished += 1
            self.finished.append(summary)
            if self.on_episode_end is not None:
                try:
                    self.on_episode_end(summary)
                except Exception:
                    self.callback_errors += 1
        if self._hold_requested:
            self._enter_hold()
        else:
            self._begin_reset()
        self._end_requested = False
        self._evaluation = False
        return segment


__all__ = ['CONTROLLER_MODES', 'ControllerConfig', 'EdgeController', 'LoopEpisodeSummary', 'counted_command']
