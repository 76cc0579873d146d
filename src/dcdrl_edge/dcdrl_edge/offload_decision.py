"""Observing and deciding one offloading task (no ROS): the env's observation from what the device
measures (``TaskObserver``), and the policy that decides local or offload (``DecisionMaker``)."""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from dcdrl_sim.face.model import LOCAL, OFFLOAD, FaceOffloadModel

from .offload_config import OffloadConfig


# ------------------------------------------------------------------------------ observation
class TaskObserver:
    """The env's 8 observation features from what the device measures.

    Estimates (seconds are ``time.monotonic`` values handed in by the caller):

    * worker backlog: when the local worker will be free. Each queued local task adds its
      expected compute time (the model's time for its megapixels and the face-count estimate,
      times the measured local slow-down); each finished one resets the estimate to now + the
      expected time of the tasks still pending.
    * radio (in-flight offload) backlog: when the uploads queued so far will have been sent,
      each adding bytes * 8 / bandwidth estimate; back to now when nothing is in flight.
    * server backlog: when the server will have answered the offloads in flight, each adding
      its expected server time (model time x slow-down estimate) after its upload; reset to now
      + what is still in flight at every answer. Other clients' load is invisible to the device.
    * bandwidth: exponential average of bytes * 8 / (round trip - server compute time), from
      offloads that were alone in flight when sent (otherwise the round trip holds another
      request's server time). Starts at ``initial_bandwidth_mbps``.
    * server slow-down: exponential average of the server's compute time / the model's nominal
      time for that task (1 = as the model says). The same for the device (local slow-down),
      used only for the worker backlog.
    * face-count estimate: the faces found in the previous finished frame.
    """

    def __init__(self, config: OffloadConfig, model: FaceOffloadModel | None = None) -> None:
        self.config = config
        self.model = model if model is not None else config.model_env()
        self.bandwidth_mbps = self._clip_bandwidth(config.initial_bandwidth_mbps)
        self.server_slowdown = 1.0
        self.local_slowdown = 1.0
        self.faces_estimate = 0
        self.worker_free_at = -math.inf
        self.radio_free_at = -math.inf
        self.server_free_at = -math.inf
        self._local: dict[int, float] = {}     # task id -> expected local compute (s)
        self._remote: dict[int, float] = {}    # task id -> expected server time (s)
        self.bandwidth_samples = 0

    def _clip_bandwidth(self, mbps: float) -> float:
        return min(max(mbps, self.config.bandwidth_min_mbps), self.config.bandwidth_max_mbps)

    # ---- model times
    def local_time(self, megapixels: float, faces: float) -> float:
        c = self.config
        return self.local_slowdown * (c.device_seconds_per_megapixel * megapixels + c.device_seconds_per_face * faces)

    def nominal_server_time(self, megapixels: float, faces: float) -> float:
        c = self.config
        return c.server_seconds_per_megapixel * megapixels + c.server_seconds_per_face * faces

    def upload_time(self, image_bytes: int) -> float:
        return image_bytes * 8.0 / (self.bandwidth_mbps * 1e6)

    # ---- the observation
    def observe(self, now: float, megapixels: float, deadline_s: float | None = None) -> np.ndarray:
        """float32 [8], normalised and clipped exactly as FaceOffloadModel's observation."""
        if not (math.isfinite(megapixels) and megapixels > 0):
            raise ValueError(f'megapixels must be a finite number > 0, got {megapixels!r}')
        m = self.model
        deadline = self.config.deadline_s if deadline_s is None else float(deadline_s)
        values = (max(self.worker_free_at - now, 0.0) / m.deadline_s,
                  max(self.radio_free_at - now, 0.0) / m.deadline_s,
                  max(self.server_free_at - now, 0.0) / m.deadline_s,
                  self.bandwidth_mbps / m.bandwidth_max_mbps,
                  self.server_slowdown / 4.0,
                  megapixels / m.megapixel_scale,
                  self.faces_estimate / m.face_scale,
                  deadline / m.deadline_scale)
        return np.array([min(max(v, 0.0), m.obs_clip) for v in values], dtype=np.float32)

    # ---- events
    def local_queued(self, task_id: int, now: float, megapixels: float) -> None:
        expected = self.local_time(megapixels, self.faces_estimate)
        self._local[task_id] = expected
        self.worker_free_at = max(now, self.worker_free_at) + expected

    def local_done(self, task_id: int, now: float, megapixels: float, faces: int, compute_time_s: float,
                   ok: bool) -> None:
        self._local.pop(task_id, None)
        if ok:
            self.faces_estimate = int(faces)
            c = self.config
            nominal = c.device_seconds_per_megapixel * megapixels + c.device_seconds_per_face * faces
            if compute_time_s > 0 and nominal > 0:
                a = c.local_estimate_smoothing
                self.local_slowdown += a * (compute_time_s / nominal - self.local_slowdown)
        self.worker_free_at = now + sum(self._local.values())

    def local_dropped(self, task_id: int, now: float) -> None:
        """A task announced with local_queued never reached the worker."""
        expected = self._local.pop(task_id, None)
        if expected is not None:
            self.worker_free_at = max(self.worker_free_at - expected, now)

    def offload_queued(self, task_id: int, now: float, megapixels: float, image_bytes: int) -> None:
        server = self.server_slowdown * self.nominal_server_time(megapixels, self.faces_estimate)
        self._remote[task_id] = server
        self.radio_free_at = max(now, self.radio_free_at) + self.upload_time(image_bytes)
        self.server_free_at = max(self.radio_free_at, self.server_free_at) + server

    def offload_done(self, task_id: int, now: float, megapixels: float, *, ok: bool, faces: int = 0,
                     server_compute_s: float = 0.0, round_trip_s: float = 0.0, image_bytes: int = 0,
                     clean: bool = False) -> None:
        """An offload ended (answered, or failed when ok is False). ``clean``: it was alone in flight."""
        self._remote.pop(task_id, None)
        c = self.config
        if ok:
            self.faces_estimate = int(faces)
            nominal = self.nominal_server_time(megapixels, faces)
            if server_compute_s > 0 and nominal > 0:
                a = c.server_estimate_smoothing
                self.server_slowdown += a * (server_compute_s / nominal - self.server_slowdown)
            transfer = round_trip_s - server_compute_s
            if clean and image_bytes > 0 and transfer > 0:
                sample = self._clip_bandwidth(image_bytes * 8.0 / transfer / 1e6)
                self.bandwidth_mbps += c.bandwidth_smoothing * (sample - self.bandwidth_mbps)
                self.bandwidth_samples += 1
        self.server_free_at = now + sum(self._remote.values())
        if not self._remote:
            self.radio_free_at = min(self.radio_free_at, now)


# ------------------------------------------------------------------------------ decisions
class DecisionMaker:
    """The policy: the learned actor or a baseline. Returns (decision, action value, who decided).

    The action value is what goes into the experience: the actor's output (plus noise) for the
    learned policy; for a baseline a uniform draw from the half of [-1, 1] that means its
    decision ((0, 1] offload, [-1, 0] local), so the critic sees the whole action range.
    """

    def __init__(self, config: OffloadConfig, model: FaceOffloadModel | None = None) -> None:
        self.config = config
        self.model = model if model is not None else config.model_env()
        self.rng = np.random.default_rng(config.seed)

    def _baseline(self, name: str, obs: np.ndarray) -> int:
        if name == 'local':
            return LOCAL
        if name == 'offload':
            return OFFLOAD
        if name == 'random':
            return OFFLOAD if self.rng.random() < self.config.random_offload_probability else LOCAL
        local, offload = self.model.estimate_costs(obs)
        return OFFLOAD if float(offload) < float(local) else LOCAL

    def _action_for(self, decision: int) -> float:
        draw = float(self.rng.random())          # [0, 1)
        return 1.0 - draw if decision == OFFLOAD else -draw   # (0, 1] or (-1, 0]

    def decide(self, obs: np.ndarray, actor: Callable[[np.ndarray], np.ndarray] | None = None
               ) -> tuple[int, float, str]:
        c = self.config
        if c.policy == 'learned' and actor is not None:
            raw = np.asarray(actor(obs), dtype=np.float64).reshape(-1)
            if raw.size != 1 or not math.isfinite(raw[0]):
                raise ValueError(f'the actor must return one finite number, got {raw!r}')
            value = float(raw[0])
            if c.training and c.exploration_noise > 0:
                value += float(self.rng.normal(0.0, c.exploration_noise))
            value = min(max(value, -1.0), 1.0)
            return (OFFLOAD if value > 0.0 else LOCAL), value, 'learned'
        name = c.initial_policy if c.policy == 'learned' else c.policy
        decision = self._baseline(name, obs)
        return decision, self._action_for(decision), name
