"""Multi-user MEC computation offloading (DC-DRL): env, vector env, physics, baselines, oracle.

See docs/simulation-mec.md.
"""
from dcdrl_sim.mec.baselines import (
    BASELINES,
    FullOffloadPolicy,
    GreedyPolicy,
    LocalOnlyPolicy,
    MecPolicy,
    RandomPolicy,
    make_baseline,
)
from dcdrl_sim.mec.env import MecOffloadEnv
from dcdrl_sim.mec.model import MecParams, MecState, StepOutcome, evaluate_decisions, total_cost
from dcdrl_sim.mec.oracle import MecOracle
from dcdrl_sim.mec.vector import MecOffloadVectorEnv

__all__ = [
    'BASELINES', 'FullOffloadPolicy', 'GreedyPolicy', 'LocalOnlyPolicy', 'MecOffloadEnv',
    'MecOffloadVectorEnv', 'MecOracle', 'MecParams', 'MecPolicy', 'MecState', 'RandomPolicy',
    'StepOutcome', 'evaluate_decisions', 'make_baseline', 'total_cost',
]
