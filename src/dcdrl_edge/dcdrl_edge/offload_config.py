"""The offloading controller's configuration (no ROS): its policies and every tunable number.

The task model's numbers (``MODEL_FIELDS``) are ``FaceOffloadModel``'s constructor arguments, so the
device's observation scales and greedy rule are those of the env the cloud trains on.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from dcdrl_ros.parameter_dataclass import check_limits, parameter
from dcdrl_sim.face.model import OBS_SIZE, FaceOffloadModel

POLICIES = ('learned', 'local', 'offload', 'random', 'greedy')
BASELINE_POLICIES = POLICIES[1:]


# The envs the cloud can train the offload policy on -> the actor's (observation, action) sizes: the
# learned decision is action > 0 on FaceOffloadModel's observation. A table, not gymnasium.make, so a
# device needs no gymnasium (test_offload checks it against the registered env's spaces).
ACTOR_ENV_DIMS = {'dcdrl_sim/FaceOffloadContinuous-v0': (OBS_SIZE, 1)}


def actor_dims(env_id: str) -> tuple[int, int]:
    """(obs_dim, action_dim) of the offload actor for the env id the cloud trains it on."""
    if env_id not in ACTOR_ENV_DIMS:
        raise ValueError(f'env_id {env_id!r} is not an offload policy env; known: {sorted(ACTOR_ENV_DIMS)}')
    return ACTOR_ENV_DIMS[env_id]


# OffloadConfig fields that are FaceOffloadModel constructor arguments of the same meaning: the
# device builds the env with them, so its observation scales and the greedy rule are the env's.
MODEL_FIELDS = ('deadline_s', 'latency_weight', 'energy_weight', 'miss_penalty', 'device_cpu_power_w',
                'radio_power_w', 'device_seconds_per_megapixel', 'device_seconds_per_face',
                'device_encode_seconds_per_megapixel', 'server_seconds_per_megapixel', 'server_seconds_per_face',
                'bytes_per_megapixel', 'round_trip_s', 'bandwidth_min_mbps', 'bandwidth_max_mbps', 'frames_max',
                'megapixels_per_frame', 'max_faces_per_frame', 'server_estimate_smoothing')


@dataclass
class OffloadConfig:
    """Every tunable number of the offloading controller (dcdrl_ros.parameter_dataclass); the node adds
    its own (dcdrl_edge.offload_parameters.OffloadParameters). The task model's defaults are
    FaceOffloadModel's (MODEL_FIELDS): keep them equal to the env the cloud trains on."""

    device_id: str = parameter('device', 'name in experience, records and stats')
    policy: str = parameter('learned', 'how each task is decided', choices=POLICIES)
    initial_policy: str = parameter('greedy', "what 'learned' does until weights of min_policy_version arrive",
                                    choices=BASELINE_POLICIES)
    min_policy_version: int = parameter(2, "usable weights' least version (the learner's version 1 is its "
                                           "untrained initial actor)", low=0)
    training: bool = parameter(True, "'learned' adds exploration noise to the actor's output")
    exploration_noise: float = parameter(0.3, "Gaussian sigma on the actor's output (before clipping to [-1, 1])",
                                         low=0.0)
    random_offload_probability: float = parameter(0.5, "offload probability of policy 'random'", low=0.0, high=1.0)
    seed: int = parameter(0, "noise, 'random' decisions, baseline action draws", low=0)
    deadline_s: float = parameter(2.0, 'per frame (a task is one frame)', above=0.0)
    latency_weight: float = parameter(1.0, 'cost weight of the latency (s)', low=0.0)
    energy_weight: float = parameter(0.1, 'cost weight of the energy (J)', low=0.0)
    miss_penalty: float = parameter(2.0, 'cost of a missed deadline', low=0.0)
    device_cpu_power_w: float = parameter(2.5, 'energy model: device CPU power while recognising', low=0.0)
    radio_power_w: float = parameter(1.3, 'energy model: radio power while transferring', low=0.0)
    device_seconds_per_megapixel: float = parameter(2.0, 'task model: local recognition time per megapixel',
                                                    above=0.0)
    device_seconds_per_face: float = parameter(0.4, 'task model: local recognition time per face', low=0.0)
    device_encode_seconds_per_megapixel: float = parameter(0.1, 'task model: JPEG encoding time per megapixel',
                                                           low=0.0)
    server_seconds_per_megapixel: float = parameter(0.5, 'task model: server recognition time per megapixel',
                                                    above=0.0)
    server_seconds_per_face: float = parameter(0.1, 'task model: server recognition time per face', low=0.0)
    bytes_per_megapixel: float = parameter(150_000.0, 'task model: JPEG bytes per megapixel', above=0.0)
    round_trip_s: float = parameter(0.02, 'task model: network round trip', low=0.0)
    bandwidth_min_mbps: float = parameter(0.5, "task model: the observation's lowest bandwidth", above=0.0)
    bandwidth_max_mbps: float = parameter(25.0, "task model: the observation's highest bandwidth", above=0.0)
    frames_max: int = parameter(4, "task model: the observation's scale of queued frames", low=1)
    megapixels_per_frame: tuple[float, ...] = parameter((0.3072, 0.9216), 'task model: the frame sizes',
                                                        above=0.0)
    max_faces_per_frame: int = parameter(8, "task model: the observation's scale of faces", low=1)
    initial_bandwidth_mbps: float = parameter(8.0, 'bandwidth estimate before the first clean measurement',
                                              above=0.0)
    bandwidth_smoothing: float = parameter(0.3, 'weight of the newest bandwidth sample (exponential average)',
                                           above=0.0, high=1.0)
    server_estimate_smoothing: float = parameter(0.3, 'weight of the newest server slow-down sample', above=0.0,
                                                 high=1.0)
    local_estimate_smoothing: float = parameter(0.3, 'weight of the newest local slow-down sample', above=0.0,
                                                high=1.0)
    offload_timeout_s: float = parameter(2.0, 'from the decision; then the task runs locally (fell back)',
                                         above=0.0)
    max_in_flight: int = parameter(2, 'offloads outstanding (link queue and timed-out requests the server may '
                                      'still work on included)', low=1)
    worker_queue_size: int = parameter(2, 'local tasks pending (waiting + running) in the FaceWorker', low=1)
    publish_experience: bool = parameter(True, 'send transitions to the cloud')
    experience_batch_size: int = parameter(16, 'transitions per ExperienceBatch', low=1)
    episode_tasks: int = parameter(50, 'tasks per episode (EpisodeStats; the last transition is truncated)', low=1)
    stats_window: int = parameter(10_000, 'latency samples kept per mode for the percentiles', low=1)

    def __post_init__(self) -> None:
        for item in fields(self):   # numpy numbers, ints for floats and lists for the sizes: the field's type
            value = getattr(self, item.name)
            if isinstance(item.default, float) and isinstance(value, numbers.Real) and not isinstance(value, bool):
                setattr(self, item.name, float(value))
            elif type(item.default) is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
                setattr(self, item.name, int(value))
            elif isinstance(item.default, tuple) and isinstance(value, (list, np.ndarray)):
                setattr(self, item.name, tuple(float(size) for size in value))
        check_limits(self)
        self._check_device_id()
        if self.bandwidth_max_mbps < self.bandwidth_min_mbps:
            raise ValueError(f'bandwidth_max_mbps ({self.bandwidth_max_mbps}) must be >= bandwidth_min_mbps '
                             f'({self.bandwidth_min_mbps})')

    def _check_device_id(self) -> None:
        if not self.device_id:
            raise ValueError(f'device_id must be a non-empty string, got {self.device_id!r}')

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> OffloadConfig:
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f'unknown OffloadConfig fields: {sorted(unknown)}')
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data['megapixels_per_frame'] = list(self.megapixels_per_frame)
        return data

    def model_env(self) -> FaceOffloadModel:
        """The FaceOffloadModel with this config's constants: observation scales and the greedy rule."""
        return FaceOffloadModel(**{name: getattr(self, name) for name in MODEL_FIELDS})
