"""DDPG on the multi-user MEC offloading env (DC-DRL preset), one agent, one process.

CleanRL-style: read top to bottom. Trains one DDPG agent on `dcdrl_sim/MecOffload-v0`
(N = 10 users, C = 5 channels, continuous 2N actions), then compares the trained actor with
the four baselines (local-only, full-offload, random, greedy) and the per-step oracle
(`MecOracle`, iterated best response at N = 10) on the SAME evaluation episodes: every policy
is reset with the same seeds, and the env draws its tasks whatever the action, so all policies
see the same task sequence. Two oracle gaps are reported:

- episode gap: mean cost per step of the actor's own trajectories vs the oracle run as a policy
  on the same seeds (queues then evolve differently; the oracle is myopic, so it is a strong
  reference, not a bound);
- same-state gap: on every state the actor visits, the actor's step cost vs the oracle's cost
  for that very state (a per-step regret; >= 0 up to the best-response search's inexactness).

Writes runs/<env>__<exp>__<seed>__<time>/ (TensorBoard, scalars.csv, config.json,
eval.json, agent.safetensors) and prints one JSON summary as the last line.

    .venv/bin/python experiments/mec_ddpg.py --seed 1 --total-steps 30000
    .venv/bin/python experiments/mec_ddpg.py --quick          # seconds; smoke test
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

import dcdrl_sim  # noqa: F401  (registers the env ids)
from dcdrl_learning.agents import ALGORITHMS, Agent, AgentConfig
from dcdrl_learning.checkpoint import save_checkpoint
from dcdrl_learning.replay import NStepWriter, ReplayBuffer
from dcdrl_learning.runlog import RunLogger
from dcdrl_sim.evaluation import evaluate_policy
from dcdrl_sim.mec.baselines import FullOffloadPolicy, GreedyPolicy, LocalOnlyPolicy, RandomPolicy
from dcdrl_sim.mec.env import MecOffloadEnv
from dcdrl_sim.mec.model import total_cost
from dcdrl_sim.mec.oracle import MecOracle

ENV_ID = 'dcdrl_sim/MecOffload-v0'
# Evaluation seeds never used for training: validation (periodic evaluation, model selection)
# and test (the final table) are disjoint, so the reported numbers are not selected on.
VALIDATION_SEED = 20_000
TEST_SEED = 10_000


def add_agent_args(p: argparse.ArgumentParser) -> None:
    """The DC-DRL preset (the DC-DRL paper's settings) as flags; mec_collective.py reuses them."""
    d = AgentConfig.preset('dcdrl')
    g = p.add_argument_group('agent (defaults: DC-DRL preset)')
    g.add_argument('--algorithm', default=d.algorithm, choices=ALGORITHMS)
    g.add_argument('--actor-lr', type=float, default=d.actor_lr)
    g.add_argument('--critic-lr', type=float, default=d.critic_lr)
    g.add_argument('--gamma', type=float, default=d.gamma)
    g.add_argument('--tau', type=float, default=d.tau)
    g.add_argument('--batch-size', type=int, default=d.batch_size)
    g.add_argument('--buffer-size', type=int, default=d.buffer_size)
    g.add_argument('--learning-starts', type=int, default=d.critic_start,
                   help='stored transitions before critic and actor updates')
    g.add_argument('--n-step', type=int, default=d.n_step)
    g.add_argument('--updates-per-step', type=float, default=d.updates_per_step,
                   help='gradient steps per environment step (per agent)')
    g.add_argument('--exploration', default=d.exploration, choices=('ou', 'gaussian', 'none'))
    g.add_argument('--noise-sigma', type=float, default=d.noise_sigma)
    g.add_argument('--noise-theta', type=float, default=d.noise_theta)
    g.add_argument('--noise-scale', type=float, default=d.noise_scale)
    g.add_argument('--noise-half-life', type=float, default=d.noise_half_life,
                   help='steps for the noise scale to halve (default: constant, as DC-DRL)')
    g.add_argument('--hidden', type=int, nargs='+', default=list(d.network.actor_hidden),
                   help='hidden layer widths of the actor and the critic')
    g.add_argument('--layer-norm', action=argparse.BooleanOptionalAction, default=d.network.actor_layer_norm,
                   help='layer norm in the hidden layers (without it, relu/tanh nets take the hand-written '
                        'gradient passes, manual_grad.py)')
    g.add_argument('--critic-action-layer', type=int, default=d.network.critic_action_layer,
                   help="the critic layer whose input the action joins (0: with the observation, SB3's way)")
    g.add_argument('--final-init', type=float, default=d.network.final_init,
                   help="output layers' initial weights uniform in +-final_init (DDPG paper: 3e-3; PyTorch's "
                        'default for a 256-wide input, as SB3: 0.0625)')
    g.add_argument('--alpha', type=float, default=d.alpha, help="SAC: the entropy temperature's start (learned)")
    g.add_argument('--torch-threads', type=int, default=1)
    g.add_argument('--device', default='cpu')


def add_env_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group('environment')
    g.add_argument('--num-users', type=int, default=10)
    g.add_argument('--num-channels', type=int, default=5)
    g.add_argument('--episode-length', type=int, default=50)
    g.add_argument('--action-mode', default='continuous', choices=('continuous', 'scores'),
                   help="continuous: the paper's 2N actions (offload flag, channel bin per user); scores: N offload "
                        'scores, channels assigned without needless sharing (docs/simulation-mec.md)')
    g.add_argument('--eval-every', type=int, default=2000, help='env steps between validation evaluations')
    g.add_argument('--eval-episodes', type=int, default=5, help='validation episodes per evaluation')
    g.add_argument('--test-episodes', type=int, default=10, help='episodes of the final comparison')
    g.add_argument('--runs-dir', default='runs')
    g.add_argument('--tensorboard', action=argparse.BooleanOptionalAction, default=True,
                   help='also write TensorBoard event files (scalars.csv is always written)')


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--total-steps', type=int, default=30_000, help='environment steps')
    p.add_argument('--exp-name', default='mec_ddpg')
    p.add_argument('--quick', action='store_true',
                   help='tiny run for smoke tests (300 steps, updates from 100, 1-2 episodes per evaluation)')
    p.add_argument('--save-model', action=argparse.BooleanOptionalAction, default=True)
    add_agent_args(p)
    add_env_args(p)
    args = p.parse_args(argv)
    if args.quick:
        apply_quick(args)
    return args


def apply_quick(args: argparse.Namespace) -> None:
    args.total_steps = min(args.total_steps, 300)
    args.learning_starts = min(args.learning_starts, 100)
    args.eval_every = min(args.eval_every, 150)
    args.eval_episodes = 1
    args.test_episodes = 2


def agent_config(args: argparse.Namespace, seed: int) -> AgentConfig:
    network = AgentConfig.preset('dcdrl').network.with_changes(
        actor_hidden=tuple(args.hidden), critic_hidden=tuple(args.hidden), actor_layer_norm=args.layer_norm,
        critic_layer_norm=args.layer_norm, critic_action_layer=args.critic_action_layer,
        final_init=args.final_init)
    return AgentConfig.preset(
        'dcdrl', network=network, algorithm=args.algorithm, actor_lr=args.actor_lr, critic_lr=args.critic_lr,
        gamma=args.gamma, tau=args.tau, batch_size=args.batch_size, buffer_size=args.buffer_size,
        critic_start=args.learning_starts, actor_start=args.learning_starts, n_step=args.n_step,
        updates_per_step=args.updates_per_step, exploration=args.exploration, noise_sigma=args.noise_sigma,
        noise_theta=args.noise_theta, noise_scale=args.noise_scale, noise_half_life=args.noise_half_life,
        alpha=args.alpha, torch_threads=args.torch_threads, device=args.device, seed=seed)


def env_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {'num_users': args.num_users, 'num_channels': args.num_channels, 'episode_length': args.episode_length,
            'action_mode': args.action_mode}


# ------------------------------------------------------------------------------- evaluation helpers
class ActorPolicy:
    """obs -> deterministic action of an agent's actor (no exploration noise)."""

    name = 'ddpg'

    def __init__(self, agent: Agent, name: str = 'ddpg') -> None:
        self.agent, self.name = agent, name

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.agent.act(obs, explore=False)


def mean_cost(env_kw: dict[str, Any], policy: Callable[[np.ndarray], Any], seed: int, episodes: int) -> float:
    """Mean system cost per step of `policy` over `episodes` episodes reset with seed, seed+1, ..."""
    result = evaluate_policy(MecOffloadEnv(**env_kw), policy, episodes=episodes, seed=seed)
    return float(result.summary['cost'])


def same_state_gap(env_kw: dict[str, Any], policy: Callable[[np.ndarray], Any], seed: int,
                   episodes: int) -> dict[str, float]:
    """Policy cost vs oracle cost on the states the policy itself visits (per-step regret)."""
    env = MecOffloadEnv(**env_kw)
    oracle = MecOracle(env)
    policy_costs, oracle_costs = [], []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        done = False
        while not done:
            state = env.decision_state()
            oracle_costs.append(float(total_cost(env.params, state, oracle.decide(state))))
            obs, _, terminated, truncated, info = env.step(policy(obs))
            policy_costs.append(float(info['cost']))
            done = terminated or truncated
    pc, oc = float(np.mean(policy_costs)), float(np.mean(oracle_costs))
    return {'policy_cost': pc, 'oracle_cost': oc, 'gap_pct': 100.0 * (pc - oc) / oc}


def compare_with_baselines(env_kw: dict[str, Any], policies: dict[str, Callable[[np.ndarray], Any]],
                           seed: int = TEST_SEED, episodes: int = 10) -> dict[str, Any]:
    """Every policy (learned ones in `policies`, the four baselines, the oracle) on the same seeds.

    Returns {'table': [summary rows], 'cost': {name: mean cost per step}, 'oracle_gap_pct': {name: %},
    'same_state': {name: same_state_gap(...)}} for the learned policies.
    """
    env = MecOffloadEnv(**env_kw)
    factories: dict[str, Callable[[Any], Any]] = {name: (lambda e, p=p: p) for name, p in policies.items()}
    factories.update({'local_only': LocalOnlyPolicy, 'full_offload': FullOffloadPolicy,
                      'random': lambda e: RandomPolicy(e, seed=seed), 'greedy': GreedyPolicy,
                      'oracle': MecOracle})
    table, cost = [], {}
    for name, factory in factories.items():
        result = evaluate_policy(env, policy_factory=factory, episodes=episodes, seed=seed, name=name)
        row = {'policy': name, **{k: float(v) for k, v in result.summary.items() if isinstance(v, (int, float))}}
        table.append(row)
        cost[name] = row['cost']
    gaps = {name: 100.0 * (cost[name] - cost['oracle']) / cost['oracle'] for name in cost}
    same = {name: same_state_gap(env_kw, p, seed, episodes) for name, p in policies.items()}
    return {'table': table, 'cost': cost, 'oracle_gap_pct': gaps, 'same_state': same,
            'test_seed': seed, 'test_episodes': episodes}


def markdown(table: list[dict[str, Any]], columns: Sequence[str] = ('policy', 'cost', 'return',
                                                                    'deadline_miss_ratio', 'offload_fraction',
                                                                    'decision_ms')) -> str:
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    for row in table:
        cells = [row[c] if isinstance(row.get(c), str) else f'{row.get(c, float("nan")):.4g}' for c in columns]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


# ------------------------------------------------------------------------------------- training
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    start_time = time.time()
    torch.set_num_threads(args.torch_threads)
    env_kw = env_kwargs(args)
    cfg = agent_config(args, args.seed)

    env = MecOffloadEnv(**env_kw)
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    agent = Agent(cfg, obs_dim, action_dim)
    buffer = ReplayBuffer(min(cfg.buffer_size, max(args.total_steps, 1)), obs_dim, action_dim, seed=args.seed)
    writer = NStepWriter(1, obs_dim, action_dim, n_step=cfg.n_step, gamma=cfg.gamma)

    log = RunLogger(ENV_ID, args.exp_name, args.seed, root=args.runs_dir, tensorboard=args.tensorboard,
                    progress_tags=('charts/episodic_cost', 'eval/cost', 'losses/critic_loss', 'losses/q_mean'))
    log.write_config({**vars(args), 'agent': cfg.to_dict(), 'env_kwargs': env_kw})

    obs, _ = env.reset(seed=args.seed)
    episode_cost, exploration_cost, update_debt = 0.0, 0.0, 0.0
    best_val, best_actor = math.inf, agent.actor_state()
    stats: dict[str, Any] | None = None
    for global_step in range(1, args.total_steps + 1):
        # Act with exploration noise, store the transition (a time limit is a truncation: it bootstraps).
        action = agent.act(obs, explore=True)
        next_obs, reward, terminated, truncated, info = env.step(action)
        episode_cost += info['cost']
        exploration_cost += info['cost']
        buffer.add(**writer.step(obs[None], action[None], np.array([reward]), next_obs[None],
                                 np.array([terminated]), np.array([truncated])))
        obs = next_obs
        if terminated or truncated:
            log.log_scalars({'charts/episodic_cost': episode_cost / env.episode_length,
                             'charts/exploration_cost': exploration_cost}, global_step)
            episode_cost = 0.0
            agent.reset_noise()
            obs, _ = env.reset()

        # Learn: `updates_per_step` gradient steps per env step once enough transitions are stored.
        if agent.ready(len(buffer)):
            update_debt += cfg.updates_per_step
            while update_debt >= 1.0:
                update_debt -= 1.0
                stats = agent.update(buffer.sample(cfg.batch_size), stored_transitions=len(buffer))
            if stats is not None and global_step % 100 == 0:
                log.log_scalars({'losses/critic_loss': stats['critic_loss'], 'losses/actor_loss': stats['actor_loss'],
                                 'losses/q_mean': stats['q_mean']}, global_step)

        # Validate on held-out seeds; keep the best actor (model selection on validation only).
        if global_step % args.eval_every == 0 or global_step == args.total_steps:
            val = mean_cost(env_kw, ActorPolicy(agent), VALIDATION_SEED, args.eval_episodes)
            log.log_scalar('eval/cost', val, global_step)
            if val < best_val:
                best_val, best_actor = val, agent.actor_state()
        log.progress(global_step)

    train_s = time.time() - start_time
    # Final comparison on the test seeds: the final actor and the best validated actor.
    final_agent = ActorPolicy(agent, 'ddpg_final')
    best_agent = Agent(cfg, obs_dim, action_dim)
    best_agent.load_actor_state(best_actor)
    comparison = compare_with_baselines(env_kw, {'ddpg_final': final_agent,
                                                 'ddpg_best': ActorPolicy(best_agent, 'ddpg_best')},
                                        episodes=args.test_episodes)
    (log.run_dir / 'eval.json').write_text(json.dumps(comparison, indent=2), encoding='utf-8')
    if args.save_model:
        save_checkpoint(log.run_dir / 'agent.safetensors', agent, version=0,
                        extra={'env_steps': args.total_steps, 'best_validation_cost': best_val})
    print(markdown(comparison['table']))
    log.close()

    cost = comparison['cost']
    baselines = ('local_only', 'full_offload', 'random', 'greedy')
    summary = {
        'experiment': 'mec_ddpg', 'run_dir': str(log.run_dir), 'seed': args.seed, 'total_steps': args.total_steps,
        'final_cost': cost['ddpg_final'], 'best_cost': cost['ddpg_best'],
        'baseline_cost': {b: cost[b] for b in baselines}, 'oracle_cost': cost['oracle'],
        'oracle_gap_pct': comparison['oracle_gap_pct']['ddpg_final'],
        'best_oracle_gap_pct': comparison['oracle_gap_pct']['ddpg_best'],
        'same_state_gap_pct': comparison['same_state']['ddpg_final']['gap_pct'],
        'beats_all_baselines': all(cost['ddpg_final'] < cost[b] for b in baselines),
        'within_5pct_of_oracle': comparison['oracle_gap_pct']['ddpg_final'] <= 5.0,
        'exploration_cost': exploration_cost, 'best_validation_cost': best_val,
        'gradient_updates': agent.critic_updates,
        'train_s': round(train_s, 1), 'wall_s': round(time.time() - start_time, 1),
    }
    print(json.dumps(summary))
    return summary


if __name__ == '__main__':
    main(sys.argv[1:])
