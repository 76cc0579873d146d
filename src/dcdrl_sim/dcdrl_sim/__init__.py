"""DC-DRL simulation: gymnasium environments with no ROS import.

Importing this package registers the environments, so that
``gymnasium.make("dcdrl_sim/MecOffload-v0")`` works.
"""
from dcdrl_sim.registration import register_envs

register_envs()
