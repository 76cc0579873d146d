"""The segment learner's parameters (cloud-edge workflow), validated; no ROS import."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from dcdrl_learning.agents import AGENT_PRESETS, ALGORITHMS, AgentConfig
from dcdrl_ros.parameter_dataclass import check_limits, parameter
from dcdrl_sim.cartpole.task import SwingUpTask

CARTPOLE_ENV_ID = 'dcdrl_sim/CartPoleSwingUp-v0'


# ---------------------------------------------------------------------------------- config
@dataclass
class SegmentLearnerConfig:
    """The segment learner's parameters (dcdrl_ros.parameter_dataclass); the node adds its own
    (SegmentLearnerParameters)."""

    env_id: str = parameter(CARTPOLE_ENV_ID, 'env whose spaces size the networks (obs 10, action 1); segments of '
                                             'other sizes are refused')
    network_preset: str = parameter('cloud_edge', 'agent and network preset; the edge builds its actor from the '
                                                  'same one', choices=tuple(AGENT_PRESETS))
    algorithm: str = parameter('ddpg', 'learning algorithm', choices=ALGORITHMS)
    device: str = parameter('auto', "torch device: 'cpu', 'cuda', 'cuda:N' or 'auto' (cuda when present)")
    seed: int = parameter(0, 'network init and replay sampling seeds', low=0)
    gamma: float = parameter(-1.0, "discount; < 0 = the preset's (0.99)", high=1.0)
    output_dir: str = parameter('runs/edge', 'checkpoint, replay, weights files, learner.json, the run-log folder')
    duration_s: float = parameter(0.0, 'training time of this process; 0 = until converged (with '
                                       'stop_when_converged) or stopped', low=0.0, live=True)
    batch_size: int = parameter(-1, "transitions per gradient step; < 0 = the preset's (128); not 0")
    buffer_size: int = parameter(-1, "replay capacity; < 0 = the preset's (1 000 000, 92 bytes per transition); "
                                     "not 0")
    critic_start: int = parameter(-1, "stored transitions before the first gradient step; < 0 = the preset's (3500)")
    actor_start: int = parameter(-1, "stored transitions before actor steps; < 0 = the preset's (5000)")
    updates_per_transition: float = parameter(1.0, 'gradient steps allowed per stored transition (an upper bound: '
                                                   'the trainer never runs ahead)', above=0.0, live=True)
    publish_period_s: float = parameter(0.5, 'publish the actor at most this often, only when it changed',
                                        low=0.0, live=True)
    eval_every_episodes: int = parameter(5, 'send EVALUATE after this many training episodes; 0 = never', low=0)
    initial_evaluations: int = parameter(0, 'evaluation episodes asked for before training episodes count '
                                            '(fine-tuning: 3)', low=0)
    convergence_evals: int = parameter(3, 'successful evaluations in a row = converged', low=1)
    max_swing_up_steps: int = parameter(250, 'an evaluation succeeds when the tip is on target by this step', low=1)
    stop_when_converged: bool = parameter(True, 'at convergence: send HOLD and finish', live=True)
    pole_length: float = parameter(0.64, "m; reward geometry (the rig's pole)", above=0.0)
    target_x: float = parameter(0.0, 'm; the target point is (target_x, pole_length)')
    target_distance: float = parameter(0.05, 'm; tip within this distance = on target')
    tip_reward_scale: float = parameter(0.5, 'r = scale * exp(-decay * d_tip) - cost * a^2 - penalty * failed')
    tip_reward_decay: float = parameter(5.0, '1/m; the decay of the reward above')
    action_cost: float = parameter(0.05, 'the cost of the reward above')
    failure_penalty: float = parameter(10.0, 'the penalty of the reward above')
    max_devices: int = parameter(16, 'edge devices paired at once; more are refused and counted', low=1)
    kept_versions: int = parameter(128, 'published payloads kept by version (best weights, requests)', low=1)
    checkpoint_period_s: float = parameter(30.0, 'learner.ckpt (+ replay, actor file, learner.json) period; 0 = '
                                                 'only at the end', low=0.0, live=True)
    checkpoint_replay: bool = parameter(True, 'save the replay buffer with each checkpoint (a resume keeps it)')
    resume: bool = parameter(True, 'continue from output_dir/learner.ckpt when it exists')
    init_checkpoint: str = parameter('', "fine-tuning: start from this checkpoint's networks and optimizers "
                                         "('' = none)")
    stats_period_s: float = parameter(1.0, 'TrainingStats and run-log scalars period', above=0.0, live=True)
    tensorboard: bool = parameter(True, 'TensorBoard event files besides scalars.csv')
    torch_threads: int = parameter(1, 'torch.set_num_threads', low=1)
    progress_period_s: float = parameter(10.0, 'progress line on stdout; 0 = off', low=0.0)
    alpha: float = parameter(0.2, 'SAC: entropy temperature at the start (all along without autotune_alpha)',
                             above=0.0)
    autotune_alpha: bool = parameter(True, 'SAC: learn the temperature so that the entropy tracks the target')
    target_entropy_per_action: float = parameter(-1.0, 'SAC: target entropy per action dimension')
    alpha_lr: float = parameter(3e-4, 'SAC: Adam learning rate of log(alpha)', above=0.0)

    def __post_init__(self) -> None:
        check_limits(self)
        for name in ('env_id', 'device', 'output_dir'):
            if not getattr(self, name):
                raise ValueError(f'{name} must be a non-empty string')
        if self.batch_size == 0 or self.buffer_size == 0:
            raise ValueError('batch_size and buffer_size must be > 0 (or < 0 for the preset value)')
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
                                     'updates_per_step': float(self.updates_per_transition), 'alpha': self.alpha,
                                     'autotune_alpha': self.autotune_alpha,
                                     'target_entropy_per_action': self.target_entropy_per_action,
                                     'alpha_lr': self.alpha_lr}
        if self.gamma >= 0:
            overrides['gamma'] = float(self.gamma)
        for name in ('batch_size', 'buffer_size', 'critic_start', 'actor_start'):
            if getattr(self, name) >= 0:
                overrides[name] = getattr(self, name)
        return AgentConfig.preset(self.network_preset, **overrides)


@dataclass
class SegmentLearnerParameters(SegmentLearnerConfig):
    """The segment learner node's parameters: the config's and the node's own."""

    segment_depth: int = parameter(1000, 'keep-last depth of the segments subscription', low=1)
    exit_when_done: bool = parameter(False, 'exit after TRAINING DONE instead of idling', live=True)
    seed_bags: tuple[str, ...] = parameter((), 'rosbag2 folders whose TrajectorySegment messages (any topic) are '
                                               'paired and stored at start, validated as live ones; not read when '
                                               'resumed with a stored replay')

    def config(self) -> SegmentLearnerConfig:
        return SegmentLearnerConfig(**{item.name: getattr(self, item.name) for item in fields(SegmentLearnerConfig)})


__all__ = ['CARTPOLE_ENV_ID', 'SegmentLearnerConfig', 'SegmentLearnerParameters']
