"""Face-recognition offloading task model: the testbed's per-task decision, in plain Python and numpy.

FaceOffloadModel has the gymnasium API's reset/step but imports no gymnasium (the edge's offload
controller builds its observation and greedy rule from it with numpy alone); env.FaceOffloadEnv
adds the spaces and is what gymnasium.make builds.

A device (a Raspberry Pi with a camera) receives tasks, each a frame or a short clip
with a number of faces; for each one the agent decides to run it locally (action 0)
or to offload it to the edge server (action 1). One step = one task decision.

Time model (all times in seconds, one simulated clock):
- Tasks arrive as a Poisson process (``arrival_rate_hz``). A task has ``frames``
  frames of ``megapixels_per_frame`` each (drawn per task) and a Poisson number of
  faces; the device only knows a noisy face-count estimate before processing.
- Local: the task waits for the device's recognition worker (FIFO, one at a time),
  then takes ``device_seconds_per_megapixel * MP + device_seconds_per_face * faces``.
- Offload: JPEG encoding on another core (``device_encode_seconds_per_megapixel``),
  then the upload waits for the radio (FIFO) and takes ``bytes / bandwidth``; the
  server queues it behind earlier work (FIFO, including other clients' background
  load) and runs it at ``server_seconds_per_*`` (times a slow-down factor while the
  server is in its "slow" state); the result comes back after ``round_trip_s``.
- Compute times carry log-normal noise (``compute_time_noise``).
- Bandwidth (Mbit/s) follows a mean-reverting random walk clipped to
  [bandwidth_min_mbps, bandwidth_max_mbps]; the device observes it with noise.
- Energy (J) on the device = CPU power * CPU time + radio power * transmit time.
- cost = latency_weight * latency + energy_weight * energy + miss_penalty * [latency > deadline];
  reward = -cost. A task that finds ``max_queue`` tasks ahead of it in its queue
  (worker or radio) is dropped: it counts as a miss with latency = its deadline.

Observation (float32, 8 values, each normalised and clipped to [0, obs_clip]):
  0 device worker backlog / deadline_s      4 server slow-down estimate (1 = nominal) / 4
  1 radio backlog / deadline_s              5 task megapixels / largest possible
  2 server backlog / deadline_s             6 face-count estimate / largest possible
  3 bandwidth estimate / bandwidth_max      7 task deadline / largest possible
``decode_observation`` turns an observation back into named physical values and
``estimate_costs`` gives the model's expected cost of each choice (used by the greedy
baseline). Defaults are estimates; the testbed can calibrate every constant from
measured runs (see docs/simulation-cartpole-face.md).
"""
from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from dcdrl_core.checks import check_int, check_number
from dcdrl_sim.seeding import Seeded

LOCAL = 0
OFFLOAD = 1
OBS_SIZE = 8
SLOWDOWN_SCALE = 4.0   # observation 4 = slow-down estimate / 4


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method; fine for the small means used here (a few faces per task)."""
    if mean <= 0.0:
        return 0
    limit = math.exp(-mean)
    count = 0
    product = rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


class FaceOffloadModel(Seeded):
    """Per-task local-vs-offload decision for face recognition on a camera device."""

    def __init__(
        self,
        *,
        # Device (Raspberry Pi 3B class) speeds.
        device_seconds_per_megapixel: float = 2.0,
        device_seconds_per_face: float = 0.4,
        device_encode_seconds_per_megapixel: float = 0.1,
        # Edge server (PC) speeds and load.
        server_seconds_per_megapixel: float = 0.5,
        server_seconds_per_face: float = 0.1,
        server_background_load: float = 0.2,
        server_slow_factor: float = 2.0,
        server_slow_switch_rate_hz: float = 0.005,
        compute_time_noise: float = 0.1,
        # Network.
        bytes_per_megapixel: float = 150_000.0,
        round_trip_s: float = 0.02,
        bandwidth_mean_mbps: float = 8.0,
        bandwidth_min_mbps: float = 0.5,
        bandwidth_max_mbps: float = 25.0,
        bandwidth_volatility_mbps: float = 1.5,
        bandwidth_reversion_per_s: float = 0.05,
        bandwidth_measurement_noise: float = 0.1,
        # Power (W).
        device_cpu_power_w: float = 2.5,
        radio_power_w: float = 1.3,
        # Tasks.
        arrival_rate_hz: float = 0.2,
        frames_min: int = 1,
        frames_max: int = 4,
        megapixels_per_frame: Sequence[float] = (0.3072, 0.9216),
        faces_per_frame_mean: float = 1.5,
        max_faces_per_frame: int = 8,
        face_estimate_noise: float = 0.5,
        deadline_s: float = 2.0,
        # Cost and episode.
        latency_weight: float = 1.0,
        energy_weight: float = 0.1,
        miss_penalty: float = 2.0,
        max_queue: int = 10,
        episode_tasks: int = 200,
        server_estimate_smoothing: float = 0.3,
        obs_clip: float = 10.0,
    ) -> None:
        self.device_seconds_per_megapixel = check_number('device_seconds_per_megapixel',
                                                         device_seconds_per_megapixel, 0.0, above=True)
        self.device_seconds_per_face = check_number('device_seconds_per_face', device_seconds_per_face, 0.0)
        self.device_encode_seconds_per_megapixel = check_number('device_encode_seconds_per_megapixel',
                                                                device_encode_seconds_per_megapixel, 0.0)
        self.server_seconds_per_megapixel = check_number('server_seconds_per_megapixel',
                                                         server_seconds_per_megapixel, 0.0, above=True)
        self.server_seconds_per_face = check_number('server_seconds_per_face', server_seconds_per_face, 0.0)
        self.server_background_load = check_number('server_background_load', server_background_load, 0.0, 0.95)
        self.server_slow_factor = check_number('server_slow_factor', server_slow_factor, 1.0)
        self.server_slow_switch_rate_hz = check_number('server_slow_switch_rate_hz', server_slow_switch_rate_hz, 0.0)
        self.compute_time_noise = check_number('compute_time_noise', compute_time_noise, 0.0)
        self.bytes_per_megapixel = check_number('bytes_per_megapixel', bytes_per_megapixel, 0.0, above=True)
        self.round_trip_s = check_number('round_trip_s', round_trip_s, 0.0)
        self.bandwidth_min_mbps = check_number('bandwidth_min_mbps', bandwidth_min_mbps, 0.0, above=True)
        self.bandwidth_max_mbps = check_number('bandwidth_max_mbps', bandwidth_max_mbps, self.bandwidth_min_mbps)
        self.bandwidth_mean_mbps = check_number('bandwidth_mean_mbps',
                                                bandwidth_mean_mbps, self.bandwidth_min_mbps, self.bandwidth_max_mbps)
        self.bandwidth_volatility_mbps = check_number('bandwidth_volatility_mbps', bandwidth_volatility_mbps, 0.0)
        self.bandwidth_reversion_per_s = check_number('bandwidth_reversion_per_s', bandwidth_reversion_per_s, 0.0)
        self.bandwidth_measurement_noise = check_number('bandwidth_measurement_noise',
                                                        bandwidth_measurement_noise, 0.0, 1.0)
        self.device_cpu_power_w = check_number('device_cpu_power_w', device_cpu_power_w, 0.0)
        self.radio_power_w = check_number('radio_power_w', radio_power_w, 0.0)
        self.arrival_rate_hz = check_number('arrival_rate_hz', arrival_rate_hz, 0.0, above=True)
        self.frames_min = check_int('frames_min', frames_min, 1)
        self.frames_max = check_int('frames_max', frames_max, self.frames_min)
        sizes = tuple(megapixels_per_frame) if isinstance(megapixels_per_frame, (list, tuple)) else None
        if not sizes:
            raise ValueError(f'megapixels_per_frame must be a non-empty list of sizes, got {megapixels_per_frame!r}')
        self.megapixels_per_frame = tuple(check_number('megapixels_per_frame', s, 0.0, above=True) for s in sizes)
        self.faces_per_frame_mean = check_number('faces_per_frame_mean', faces_per_frame_mean, 0.0, 30.0)
        self.max_faces_per_frame = check_int('max_faces_per_frame', max_faces_per_frame, 1)
        self.face_estimate_noise = check_number('face_estimate_noise', face_estimate_noise, 0.0)
        self.deadline_s = check_number('deadline_s', deadline_s, 0.0, above=True)
        self.latency_weight = check_number('latency_weight', latency_weight, 0.0)
        self.energy_weight = check_number('energy_weight', energy_weight, 0.0)
        self.miss_penalty = check_number('miss_penalty', miss_penalty, 0.0)
        self.max_queue = check_int('max_queue', max_queue, 1)
        self.episode_tasks = check_int('episode_tasks', episode_tasks, 1)
        self.server_estimate_smoothing = check_number('server_estimate_smoothing',
                                                      server_estimate_smoothing, 0.0, 1.0, above=True)
        self.obs_clip = check_number('obs_clip', obs_clip, 1.0)
        # Normalisation scales (largest possible task).
        self.megapixel_scale = self.frames_max * max(self.megapixels_per_frame)
        self.face_scale = float(self.frames_max * self.max_faces_per_frame)
        self.deadline_scale = self.frames_max * self.deadline_s

        self._rng = random.Random(0)
        self._reset_state()

    # ------------------------------------------------------------------ model pieces
    def _reset_state(self) -> None:
        self.now = 0.0
        self._worker_done: deque = deque()    # finish times of local tasks, FIFO
        self._radio_done: deque = deque()     # finish times of uploads, FIFO
        self._server_free_at = 0.0
        self._server_slow = False
        self.bandwidth_mbps = self.bandwidth_mean_mbps
        self._bandwidth_estimate = self.bandwidth_mean_mbps
        self._slowdown_estimate = 1.0
        self._tasks_done = 0
        self.task: dict[str, float] = {}

    def _new_task(self) -> None:
        rng = self._rng
        frames = rng.randint(self.frames_min, self.frames_max)
        megapixels = frames * rng.choice(self.megapixels_per_frame)
        faces = min(_poisson(rng, self.faces_per_frame_mean * frames), frames * self.max_faces_per_frame)
        estimate = faces
        if self.face_estimate_noise > 0.0:
            estimate = max(0, min(round(faces + rng.gauss(0.0, self.face_estimate_noise)),
                                  frames * self.max_faces_per_frame))
        self.task = {'frames': frames, 'megapixels': megapixels, 'faces': faces,
                     'faces_estimate': estimate, 'deadline_s': frames * self.deadline_s,
                     'bytes': megapixels * self.bytes_per_megapixel}
        noise = self.bandwidth_measurement_noise
        measured = self.bandwidth_mbps * (1.0 + noise * rng.gauss(0.0, 1.0)) if noise > 0 else self.bandwidth_mbps
        self._bandwidth_estimate = min(max(measured, self.bandwidth_min_mbps), self.bandwidth_max_mbps)

    def _noisy(self, seconds: float) -> float:
        sigma = self.compute_time_noise
        if sigma <= 0.0:
            return seconds
        # Log-normal with mean 1: the expected time stays the nominal one.
        return seconds * math.exp(self._rng.gauss(-0.5 * sigma * sigma, sigma))

    def _advance(self, dt: float) -> None:
        """Move the clock by dt: bandwidth walk, server background work, server state."""
        rng = self._rng
        start = self.now
        self.now = start + dt
        # Mean-reverting random walk (Euler-Maruyama over the gap), clipped to the range.
        bw = self.bandwidth_mbps
        bw += self.bandwidth_reversion_per_s * (self.bandwidth_mean_mbps - bw) * dt
        bw += self.bandwidth_volatility_mbps * math.sqrt(dt) * rng.gauss(0.0, 1.0)
        self.bandwidth_mbps = min(max(bw, self.bandwidth_min_mbps), self.bandwidth_max_mbps)
        # Other clients' work: exponential amount with mean load * dt, served FIFO
        # after what is already queued.
        if self.server_background_load > 0.0:
            work = rng.expovariate(1.0 / (self.server_background_load * dt)) if dt > 0 else 0.0
            self._server_free_at = max(self._server_free_at, start) + work
        # Two-state (nominal / slow) server, switching at a constant rate.
        rate = self.server_slow_switch_rate_hz
        if rate > 0.0 and rng.random() < 1.0 - math.exp(-rate * dt):
            self._server_slow = not self._server_slow
        while self._worker_done and self._worker_done[0] <= self.now:
            self._worker_done.popleft()
        while self._radio_done and self._radio_done[0] <= self.now:
            self._radio_done.popleft()

    def _observation(self) -> np.ndarray:
        task = self.task
        now = self.now
        clip = self.obs_clip
        worker = self._worker_done[-1] - now if self._worker_done else 0.0
        radio = self._radio_done[-1] - now if self._radio_done else 0.0
        server = self._server_free_at - now
        values = (worker / self.deadline_s, radio / self.deadline_s, server / self.deadline_s,
                  self._bandwidth_estimate / self.bandwidth_max_mbps,
                  self._slowdown_estimate / SLOWDOWN_SCALE,
                  task['megapixels'] / self.megapixel_scale,
                  task['faces_estimate'] / self.face_scale,
                  task['deadline_s'] / self.deadline_scale)
        return np.array([min(max(v, 0.0), clip) for v in values], dtype=np.float32)

    # ------------------------------------------------------------------ estimates (baselines)
    def decode_observation(self, obs: Any) -> dict[str, np.ndarray]:
        """Physical values behind an observation (works on one obs or a batch (n, 8))."""
        obs = np.asarray(obs, dtype=np.float64)
        if obs.shape[-1:] != (OBS_SIZE,):
            raise ValueError(f'observation must have {OBS_SIZE} values in its last axis, got shape {obs.shape}')
        return {
            'worker_backlog_s': obs[..., 0] * self.deadline_s,
            'radio_backlog_s': obs[..., 1] * self.deadline_s,
            'server_backlog_s': obs[..., 2] * self.deadline_s,
            'bandwidth_mbps': np.maximum(obs[..., 3] * self.bandwidth_max_mbps, self.bandwidth_min_mbps),
            'server_slowdown': obs[..., 4] * SLOWDOWN_SCALE,
            'megapixels': obs[..., 5] * self.megapixel_scale,
            'faces_estimate': obs[..., 6] * self.face_scale,
            'deadline_s': obs[..., 7] * self.deadline_scale,
        }

    def estimate_costs(self, obs: Any) -> tuple[np.ndarray, np.ndarray]:
        """Expected (local cost, offload cost) of the task in ``obs`` under the nominal model.

        Uses only what the observation holds (noisy bandwidth and face estimates, the
        server slow-down estimate) and the env's constants; noise terms at their mean.
        """
        v = self.decode_observation(obs)
        mp, faces, deadline = v['megapixels'], v['faces_estimate'], v['deadline_s']
        local_compute = self.device_seconds_per_megapixel * mp + self.device_seconds_per_face * faces
        local_latency = v['worker_backlog_s'] + local_compute
        local_energy = self.device_cpu_power_w * local_compute
        encode = self.device_encode_seconds_per_megapixel * mp
        transfer = mp * self.bytes_per_megapixel * 8.0 / (v['bandwidth_mbps'] * 1e6)
        at_server = np.maximum(encode, v['radio_backlog_s']) + transfer   # upload done
        server_compute = v['server_slowdown'] * (self.server_seconds_per_megapixel * mp
                                                 + self.server_seconds_per_face * faces)
        offload_latency = (np.maximum(at_server, v['server_backlog_s']) + server_compute
                           + self.round_trip_s)
        offload_energy = self.device_cpu_power_w * encode + self.radio_power_w * transfer
        local = self._cost(local_latency, local_energy, local_latency > deadline)
        offload = self._cost(offload_latency, offload_energy, offload_latency > deadline)
        return local, offload

    def _cost(self, latency: Any, energy: Any, missed: Any) -> Any:
        return self.latency_weight * latency + self.energy_weight * energy + self.miss_penalty * missed

    # ------------------------------------------------------------------ the gymnasium API (reset, step)
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        self.seed_rng(seed)
        # A fast Python RNG for the per-step draws, seeded from the episode generator (as gymnasium's).
        self._rng = random.Random(int(self.np_random.integers(0, 2**63 - 1)))
        self._reset_state()
        self._new_task()
        return self._observation(), {'bandwidth_mbps': self.bandwidth_mbps}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        decision = self._parse_action(action)
        task = self.task
        now = self.now
        deadline = task['deadline_s']
        dropped = False
        if decision == LOCAL:
            if len(self._worker_done) >= self.max_queue:
                dropped = True
            else:
                compute = self._noisy(self.device_seconds_per_megapixel * task['megapixels']
                                      + self.device_seconds_per_face * task['faces'])
                start = self._worker_done[-1] if self._worker_done else now
                finish = max(start, now) + compute
                self._worker_done.append(finish)
                latency = finish - now
                energy = self.device_cpu_power_w * compute
        else:
            if len(self._radio_done) >= self.max_queue:
                dropped = True
            else:
                encode = self._noisy(self.device_encode_seconds_per_megapixel * task['megapixels'])
                transfer = task['bytes'] * 8.0 / (self.bandwidth_mbps * 1e6)
                radio_start = max(now + encode, self._radio_done[-1] if self._radio_done else now)
                uploaded = radio_start + transfer
                self._radio_done.append(uploaded)
                nominal = (self.server_seconds_per_megapixel * task['megapixels']
                           + self.server_seconds_per_face * task['faces'])
                slowdown = self.server_slow_factor if self._server_slow else 1.0
                compute = self._noisy(nominal * slowdown)
                finish = max(uploaded, self._server_free_at) + compute
                self._server_free_at = finish
                latency = finish + self.round_trip_s - now
                energy = self.device_cpu_power_w * encode + self.radio_power_w * transfer
                # The server reports its CPU time; the device tracks the slow-down ratio.
                # (Updated at decision time: a simplification, the reply comes `latency` later.)
                a = self.server_estimate_smoothing
                self._slowdown_estimate += a * (compute / nominal - self._slowdown_estimate)
        if dropped:
            latency, energy = deadline, 0.0
        missed = dropped or latency > deadline
        cost = self._cost(latency, energy, 1.0 if missed else 0.0)
        info = {'cost': cost, 'latency_s': latency, 'energy_j': energy,
                'deadline_miss_ratio': 1.0 if missed else 0.0,
                'offload_fraction': float(decision), 'decision': decision,
                'dropped': 1.0 if dropped else 0.0, 'bandwidth_mbps': self.bandwidth_mbps}

        self._tasks_done += 1
        self._advance(self._rng.expovariate(self.arrival_rate_hz))
        self._new_task()
        truncated = self._tasks_done >= self.episode_tasks
        return self._observation(), -cost, False, truncated, info

    @staticmethod
    def _parse_action(action: Any) -> int:
        if isinstance(action, (int, np.integer)) and not isinstance(action, bool):
            value = int(action)
        else:
            arr = np.asarray(action)
            if arr.size != 1 or arr.dtype.kind not in 'iuf':
                raise ValueError(f'action must be 0 (local) or 1 (offload), got {action!r}')
            raw = arr.reshape(-1)[0]
            if arr.dtype.kind == 'f' and (not math.isfinite(raw) or raw != int(raw)):
                raise ValueError(f'action must be 0 (local) or 1 (offload), got {action!r}')
            value = int(raw)
        if value not in (LOCAL, OFFLOAD):
            raise ValueError(f'action must be 0 (local) or 1 (offload), got {value}')
        return value
