"""The controller node's parameters: ControllerConfig's (the loop's) and the node's own; no ROS import."""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

from dcdrl_ros.parameter_dataclass import parameter
from dcdrl_sim.cartpole.dynamics import INTEGRATORS

from .controller import ControllerConfig

PLANTS = ('sim', 'topic')


@dataclass
class ControllerParameters(ControllerConfig):
    """Every parameter of `ros2 run dcdrl_edge controller` (dcdrl_ros.parameter_dataclass)."""

    plant: str = parameter('sim', "'sim' (the dcdrl_sim cart-pole in real time) or 'topic' (a robot behind "
                                  "plant/state and plant/command)", choices=PLANTS)
    network_preset: str = parameter('cloud_edge', "actor network preset; with the plant's sizes it fixes the "
                                                  "architecture id")
    weights_file: str = parameter('', 'actor weights (codec safetensors, e.g. best_actor.safetensors): required in '
                                      'eval mode, a start policy in train mode')
    eval_episodes: int = parameter(0, 'eval mode: stop after this many episodes (final report, exit 0); 0 = until '
                                      'stopped', low=0)
    segment_depth: int = parameter(1000, 'keep-last depth of the segments publisher', low=1)
    switch_interval_s: float = parameter(0.0, 'sys.setswitchinterval: how long another thread may hold the GIL; 0 = '
                                              'a tenth of the period, within 0.1-5 ms', low=0.0)
    loop_process: bool = parameter(False, 'run the loop in its own process (simulated plant only; recommended from '
                                          '~500 Hz up)')
    realtime_priority: int = parameter(0, 'SCHED_FIFO priority of the loop (needs root, CAP_SYS_NICE or an rtprio '
                                          'limit); 0 = normal scheduling', low=0, high=99)
    stats_period_s: float = parameter(0.5, 'edge/stats period', above=0.0, live=True)
    diagnostics_period_s: float = parameter(1.0, '/diagnostics period', above=0.0, live=True)
    warn_period_error_us: float = parameter(1000.0, 'p99 period error above this: diagnostics WARN (misses too)',
                                            low=0.0, live=True)
    cloud_timeout_s: float = parameter(5.0, 'diagnostics WARN when training and the cloud has been silent this long',
                                       above=0.0, live=True)
    sim_rate_hz: float = parameter(0.0, "simulated plant's rate (dt = 1 / sim_rate_hz); 0 = rate_hz (real time); "
                                        "lower than rate_hz = faster than real time", low=0.0)
    sim_cart_friction: float = parameter(10.0, 'simulated plant: cart friction')
    sim_pole_friction: float = parameter(0.0011, 'simulated plant: pole friction')
    sim_integrator: str = parameter('euler', "simulated plant: integrator (euler: the original simulator's)",
                                    choices=INTEGRATORS)
    sim_max_steps: int = parameter(1000, 'simulated plant: steps per episode')
    sim_target_steps_to_stop: int = parameter(100, 'simulated plant: steps on target that end an episode; < 0 = '
                                                   'never')
    action_history: int = parameter(5, 'past actions in the observation')
    sim_init_theta_mean: float = parameter(math.pi, 'simulated plant: mean initial angle (pi = hanging down)')
    sim_init_theta_std: float = parameter(0.8, 'simulated plant: initial angle spread; 0 = always the mean')
    x_limit: float = parameter(0.3, 'topic plant: |x| beyond this ends the episode (safety)')
    theta_dot_limit: float = parameter(15.0, 'topic plant: |theta_dot| beyond this ends the episode (safety)')
    max_episode_steps: int = parameter(1000, 'topic plant: steps per episode')
    stale_after_s: float = parameter(0.1, 'topic plant: a state older than this is stale')
    settle_theta_dot: float = parameter(0.5, 'topic plant: |theta_dot| below which a reset has settled')

    def _check_device_id(self) -> None:
        pass   # '' = the node's name: config() fills it in

    def config(self, node_name: str) -> ControllerConfig:
        """The loop's ControllerConfig (device_id '' becomes ``node_name``)."""
        values = {item.name: getattr(self, item.name) for item in fields(ControllerConfig)}
        values['device_id'] = self.device_id or node_name
        return ControllerConfig(**values)


__all__ = ['PLANTS', 'ControllerParameters']
