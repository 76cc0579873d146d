"""The replay_buffer node's parameters, each declared once (dcdrl_ros.parameter_dataclass; no ROS).

The node declares these fields, docs/replay-node.md's table is generated from them, and
ReplayServiceConfig (the logic's settings) takes its defaults from them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

from dcdrl_core import training_defaults
from dcdrl_ros.parameter_dataclass import parameter


@dataclass(frozen=True)
class ReplayBufferParameters:
    env_id: str = parameter(training_defaults.ENV_ID, "tags snapshots; a snapshot of another env is not restored")
    seed: int = parameter(training_defaults.SEED, 'sampling seed', low=0)
    gamma: float = parameter(training_defaults.GAMMA, "discount stored with each 1-step transition (the dcdrl "
                                                      "preset's gamma)", low=0.0, high=1.0)
    output_dir: str = parameter(training_defaults.OUTPUT_DIR, 'folder of replay.npz and replay.journal')
    capacity: int = parameter(200_000, 'transitions kept; the oldest are overwritten', low=1)
    prioritized: bool = parameter(False, "proportional prioritised replay instead of uniform (the learner's "
                                         "prioritized must be the same)")
    alpha: float = parameter(0.6, 'PER priority exponent', low=0.0)
    beta: float = parameter(0.4, 'PER importance-weight exponent at the start', low=0.0, high=1.0)
    beta_end: float = parameter(1.0, 'PER beta after annealing', low=0.0, high=1.0)
    beta_steps: int = parameter(100_000, 'sampled batches over which beta anneals', low=1)
    priority_eps: float = parameter(1e-6, 'added to |TD error| so no priority is 0', above=0.0)
    samples_per_insert: float = parameter(0.0, 'most sampled / inserted transitions the learner may reach; '
                                               '0 = no limit', low=0.0)
    sample_error_buffer: float = parameter(0.0, 'slack of that ratio in transitions; 0 = max(spi * min size, '
                                                '256 * max(1, spi))', low=0.0)
    min_size_to_sample: int = parameter(1000, 'no batch is served below this many stored transitions', low=1)
    max_batch_size: int = parameter(4096, 'larger sample requests are refused', low=1)
    max_outstanding_batches: int = parameter(64, 'credits one requester may hold; more are dropped (counted); 64 = '
                                                 "the depth of replay/batches", low=1)
    max_requesters: int = parameter(16, 'distinct requesters served; more are refused', low=1)
    max_clients: int = parameter(256, 'distinct client ids whose experience is kept; batches of new ones '
                                      'beyond are refused', low=1)
    # A string, not a string array: rclpy types an empty-list default as a byte array, and a ROS
    # parameter file cannot hold an empty list.
    allowed_clients: str = parameter('', "the only client ids accepted, separated by commas or spaces; '' = any")
    lag_window: int = parameter(100, 'received batches the version-lag statistics cover', low=1)
    snapshot_period_s: float = parameter(60.0, 'seconds between snapshots (only when something changed); '
                                               '0 = only at exit', low=0.0, live=True)
    restore: bool = parameter(True, 'load output_dir/replay.npz on start')
    journal: bool = parameter(True, 'append every stored batch to output_dir/replay.journal until the next '
                                    'snapshot: nothing received is lost when the process is killed')
    report_period_s: float = parameter(2.0, 'seconds between replay/stats messages and log lines', above=0.0,
                                       live=True)
    experience_depth: int = parameter(100, 'keep-last depth of the experience subscription', low=1)
    inbox_size: int = parameter(256, 'experience batches queued for the intake thread; more are dropped '
                                     '(counted)', low=1)
    seed_bags: tuple[str, ...] = parameter((), 'rosbag2 folders whose ExperienceBatch messages (any topic) are '
                                               'stored at start, validated as live ones; not read when a '
                                               'snapshot or journal was restored')

    def allowed_client_ids(self) -> tuple[str, ...]:
        """'client_0, client_1' -> ('client_0', 'client_1'); '' -> () (any client)."""
        return tuple(name for name in re.split(r'[,\s]+', self.allowed_clients) if name)

    def service_config(self) -> Any:
        """The ReplayServiceConfig of these values (its own checks run)."""
        from dcdrl_cloud.replay_service_config import ReplayServiceConfig
        values = {item.name: getattr(self, item.name) for item in fields(ReplayServiceConfig)}
        return ReplayServiceConfig(**dict(values, allowed_clients=self.allowed_client_ids()))
