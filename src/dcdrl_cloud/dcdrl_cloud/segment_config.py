"""The segment learner's parameters (cloud-edge workflow), validated; no ROS import."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dcdrl_core.checks import check_int, check_number
from dcdrl_core.learning.agents import AGENT_PRESETS, ALGORITHMS, AgentConfig
from dcdrl_sim.cartpole.task import SwingUpTask

CARTPOLE_ENV_ID = 'dcdrl_sim/CartPoleSwingUp-v0'


# ---------------------------------------------------------------------------------- config
@dataclass
class SegmentLearnerConfig:
    """The segments-mode learner's parameters (one ROS parameter per field, same name and default)."""

    env_id: str = CARTPOLE_ENV_ID        # env whose spaces size the networks (obs_dim, action_dim)
    network_preset: str = 'cloud_edge'   # AgentConfig preset: 'cloud_edge' or 'dcdrl'
    algorithm: str = 'ddpg'              # 'ddpg' or 'td3'
    device: str = 'auto'                 # 'cpu', 'cuda', 'cuda:N' or 'auto'
    seed: int = 0                        # network init and replay sampling seeds
    gamma: float = -1.0                  # discount; < 0: the preset's (0.99)
    output_dir: str = 'runs/edge'        # checkpoint, replay, weights files, learner.json, run logs
    duration_s: float = 0.0              # training time of this process; 0 = until converged or stopped
    batch_size: int = -1                 # transitions per gradient step; < 0: the preset's (128)
    buffer_size: int = -1                # replay capacity; < 0: the preset's (1 000 000)
    critic_start: int = -1               # stored transitions before the first update; < 0: the preset's (3500)
    actor_start: int = -1                # stored transitions before actor updates; < 0: the preset's (5000)
    updates_per_transition: float = 1.0  # gradient steps per stored transition (an upper bound: see docs)
    publish_period_s: float = 0.5        # publish the actor at most this often, only when it changed
    eval_every_episodes: int = 5         # send EVALUATE after this many training episodes; 0 = never
    initial_evaluations: int = 0         # evaluation episodes asked for before training episodes count
    convergence_evals: int = 3           # successful evaluations in a row = converged
    max_swing_up_steps: int = 250        # an evaluation succeeds when the tip is on target by this step
    stop_when_converged: bool = True     # at convergence: send HOLD and finish
    pole_length: float = 0.64            # m; reward geometry (must match the plant)
    target_x: float = 0.0                # m; the target point is (target_x, pole_length)
    target_distance: float = 0.05        # m; tip within this distance = on target
    tip_reward_scale: float = 0.5        # r = scale * exp(-decay * d_tip) - cost * a^2 - penalty * failed
    tip_reward_decay: float = 5.0        # 1/m
    action_cost: float = 0.05
    failure_penalty: float = 10.0
    max_devices: int = 16                # edge devices paired at once; more are refused and counted
    kept_versions: int = 128             # published payloads kept by version (best weights, requests)
    checkpoint_period_s: float = 30.0    # learner.ckpt (+ replay, actor file, learner.json); 0 = only at the end
    checkpoint_replay: bool = True       # save the replay buffer with each checkpoint (resume keeps it)
    resume: bool = True                  # continue from output_dir/learner.ckpt when present
    init_checkpoint: str = ''            # fine-tuning: start from this checkpoint's networks and optimizers
    stats_period_s: float = 1.0          # TrainingStats and run-log scalars
    tensorboard: bool = True             # TensorBoard event files besides scalars.csv
    torch_threads: int = 1               # torch.set_num_threads
    progress_period_s: float = 10.0      # progress line on stdout; 0 = off

    def __post_init__(self) -> None:
        for name in ('env_id', 'network_preset', 'algorithm', 'device', 'output_dir'):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f'{name} must be a non-empty string, got {value!r}')
        if not isinstance(self.init_checkpoint, str):
            raise ValueError(f"init_checkpoint must be a path string ('' = none), got {self.init_checkpoint!r}")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f'algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}')
        if self.network_preset not in AGENT_PRESETS:
            raise ValueError(f'network_preset must be one of {sorted(AGENT_PRESETS)}, got {self.network_preset!r}')
        for name in ('convergence_evals', 'max_swing_up_steps', 'max_devices', 'kept_versions', 'torch_threads'):
            check_int(name, getattr(self, name), 1)
        for name in ('seed', 'eval_every_episodes', 'initial_evaluations'):
            check_int(name, getattr(self, name), 0)
        for name in ('batch_size', 'buffer_size', 'critic_start', 'actor_start'):
            check_int(name, getattr(self, name))  # any int: < 0 selects the preset
        if self.batch_size == 0 or self.buffer_size == 0:
            raise ValueError('batch_size and buffer_size must be > 0 (or < 0 for the preset value)')
        for name in ('duration_s', 'publish_period_s', 'checkpoint_period_s', 'progress_period_s'):
            check_number(name, getattr(self, name), 0.0)
        for name in ('updates_per_transition', 'stats_period_s', 'pole_length'):
            check_number(name, getattr(self, name), 0.0, above=True)
        for name in ('stop_when_converged', 'checkpoint_replay', 'resume', 'tensorboard'):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f'{name} must be a bool, got {getattr(self, name)!r}')
        if isinstance(self.gamma, bool) or not isinstance(self.gamma, (int, float)) or math.isnan(self.gamma) \
                or self.gamma > 1:
            raise ValueError(f'gamma must be in [0, 1] (or < 0 for the preset value), got {self.gamma!r}')
        self.task()  # SwingUpTask checks the reward constants
        agent = self.agent_config()
        if agent.critic_start > agent.buffer_size:
            raise ValueError(f'critic_start ({agent.critic_start}) must be <= buffer_size ({agent.buffer_size}): '
                             'training would never start')

    def task(self) -> SwingUpTask:
        """The reward constants as a SwingUpTask (raises on bad values)."""
        return SwingUpTask(target_x=self.target_x, target_distance=self.target_distance,
                           tip_reward_scale=self.tip_reward_scale, tip_reward_decay=self.tip_reward_decay,
                           action_cost=self.action_cost, failure_penalty=self.failure_penalty)

    def agent_config(self) -> AgentConfig:
        """The preset named by network_preset with this learner's overrides (< 0 keeps the preset's)."""
        overrides: dict[str, Any] = {'algorithm': self.algorithm, 'device': self.device, 'seed': self.seed,
                                     'torch_threads': self.torch_threads,
                                     'updates_per_step': float(self.updates_per_transition)}
        if self.gamma >= 0:
            overrides['gamma'] = float(self.gamma)
        for name in ('batch_size', 'buffer_size', 'critic_start', 'actor_start'):
            if getattr(self, name) >= 0:
                overrides[name] = getattr(self, name)
        return AgentConfig.preset(self.network_preset, **overrides)


__all__ = ['CARTPOLE_ENV_ID', 'SegmentLearnerConfig']
