"""Collective DDPG on MEC (DC-DRL): K agents with shared experience and model merging, one process.

CleanRL-style: read top to bottom. K agents (default 4), each with its own env copy (own task
seed; same user positions, so every agent faces the same cell) and its own DDPG agent (own
initial weights), step in turn; `--num-agents 1` is the single-agent baseline run by the very same
loop (no sharing, no merging), so the two arms differ only in the collective parts.

Experience sharing (`--sharing`):
- `master` (default, the paper's roles): agent 0 is the master learner; it stores its own
  transitions AND every worker's ("uploaded experience"); each worker stores and trains on its
  own transitions only.
- `all`: one buffer shared by all agents (every agent trains on everybody's data).
- `none`: independent learners (only the merge connects them).
Gradient steps: each worker makes `--updates-per-step` per env step of its own; the master makes
`--master-updates-per-transition` per transition stored in its buffer (own or uploaded; default 1,
the cloud learner's "one gradient step per stored transition"), so in `master` mode it trains on
the whole data flow as fast as the single agent trains on its own (same number of master updates
as single-agent updates for the same total env steps). The collective's total gradient compute is
then (1 + (K-1)/K) times the single agent's (the workers' local training on top), which is what
K machines give; `--master-updates-per-transition 0.25` with K = 4 makes the master's share equal
to a worker's; `--worker-updates-per-step 0` leaves the learning to the master (workers explore
with the model they pulled), so the collective costs the single agent's gradient compute. In `all` and
`none` mode every agent uses `--updates-per-step`.

Every generation (`--generation-steps` env steps per agent) the "parameter server" part runs:
1. fitness of each agent = minus its mean cost per step on the validation seeds (noise-free);
2. merged actor = `dcdrl_learning.merge.merge_models` of the agents' actors
   (`--merge-method` rank or softmax weights over the elite: fitness >= mean, or the best
   `--elite-fraction`), and its own validation fitness;
3. pull rule (`merge.should_pull`): an agent whose fitness is below the merged model's loads the
   merged actor (online and target) and, with `--merge-critic` (default), the merged critic too
   (the critics are merged with the actors' weights), so a worker continues from a consistent
   actor-critic pair; with `--no-merge-critic` it keeps its own critic, which then drags the
   pulled actor back towards its own, worse, estimate (measured: see docs/results-learning.md);
4. mutation (`merge.mutate`): a worker that did not pull perturbs its actor with probability
   `--mutation-prob` (per-tensor Gaussian noise, `--mutation-scale` x the tensor's std).

Measures: exploration cost = the sum of the system cost over every training step of every
agent (what exploring costs the users); final cost = the mean cost per step, on the test seeds,
of the final policy = the candidate with the best validation fitness among the K agents and the
last merged model (K = 1: the agent itself). Also the merged model's and the master's own costs.

    .venv/bin/python experiments/mec_collective.py --seed 1 --num-agents 4 --total-steps 40000
    .venv/bin/python experiments/mec_collective.py --seed 1 --num-agents 4 --total-steps 40000 --no-merge-critic
    .venv/bin/python experiments/mec_collective.py --seed 1 --num-agents 1 --total-steps 40000
    .venv/bin/python experiments/mec_collective.py --quick
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared MEC helpers of mec_ddpg.py
from mec_ddpg import (  # noqa: E402
    ENV_ID,
    TEST_SEED,
    VALIDATION_SEED,
    ActorPolicy,
    add_agent_args,
    add_env_args,
    agent_config,
    apply_quick,
    compare_with_baselines,
    env_kwargs,
    markdown,
    mean_cost,
)

from dcdrl_learning.agents import Agent  # noqa: E402
from dcdrl_learning.merge import merge_models, merge_weights, mutate, should_pull  # noqa: E402
from dcdrl_learning.replay import NStepWriter, ReplayBuffer  # noqa: E402
from dcdrl_learning.runlog import RunLogger  # noqa: E402
from dcdrl_sim.mec.env import MecOffloadEnv  # noqa: E402


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--total-steps', type=int, default=40_000, help='env steps of ALL agents together')
    p.add_argument('--exp-name', default=None, help='default: collective<K> or single')
    p.add_argument('--quick', action='store_true', help='tiny run for smoke tests')
    g = p.add_argument_group('collective')
    g.add_argument('--num-agents', type=int, default=4, help='K; 1 = the single-agent baseline')
    g.add_argument('--sharing', default='master', choices=('master', 'all', 'none'))
    g.add_argument('--generation-steps', type=int, default=1000, help='env steps per agent between merges')
    g.add_argument('--merge-method', default='rank', choices=('rank', 'softmax'))
    g.add_argument('--merge-temperature', type=float, default=1.0, help='softmax only')
    g.add_argument('--elite-fraction', type=float, default=None, help='None: fitness >= mean (paper)')
    g.add_argument('--merge-critic', action=argparse.BooleanOptionalAction, default=True,
                   help='merge and pull the critics along with the actors (same weights)')
    g.add_argument('--pull-margin', type=float, default=0.0, help='pull when merged fitness > own + margin')
    g.add_argument('--master-updates-per-transition', type=float, default=1.0,
                   help="sharing 'master': master gradient steps per transition stored in its buffer")
    g.add_argument('--worker-updates-per-step', type=float, default=None,
                   help="sharing 'master': workers' gradient steps per own env step (default: --updates-per-step; "
                        '0: workers only explore with the model they pulled, the master does all the learning)')
    g.add_argument('--master-pull', action=argparse.BooleanOptionalAction, default=True,
                   help="sharing 'master': the master too may pull the merged model (--no-master-pull: only "
                        'workers pull; the master keeps its own, freshest, actor and critic)')
    g.add_argument('--mutation-prob', type=float, default=0.1)
    g.add_argument('--mutation-scale', type=float, default=0.01)
    add_agent_args(p)
    add_env_args(p)
    args = p.parse_args(argv)
    if args.quick:
        apply_quick(args)
        args.total_steps = min(args.total_steps, 400)
        args.generation_steps = min(args.generation_steps, 50)
    if args.num_agents < 1:
        p.error('--num-agents must be >= 1')
    if args.worker_updates_per_step is not None and args.worker_updates_per_step < 0:
        p.error('--worker-updates-per-step must be >= 0')
    if args.exp_name is None:
        args.exp_name = 'single' if args.num_agents == 1 else f'collective{args.num_agents}'
    return args


def numpy_actor(agent: Agent) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in agent.actor_state().items()}


def numpy_critic(agent: Agent) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in agent.critic_state().items()}


def load_actor(agent: Agent, model: dict[str, np.ndarray]) -> None:
    """Online actor and its target take the model (the critic and its target stay)."""
    agent.load_actor_state(model)
    agent.actor_target.load_state_dict(agent.actor.state_dict())


def load_critic(agent: Agent, model: dict[str, np.ndarray]) -> None:
    """Online critic and its target take the model."""
    agent.load_critic_state(model, with_target=True)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    start_time = time.time()
    torch.set_num_threads(args.torch_threads)
    env_kw = env_kwargs(args)
    K = args.num_agents
    rng = np.random.default_rng(args.seed)   # mutation draws

    # One env, agent and buffer per agent; agent i uses seed 1000 * seed + i (envs and weights differ).
    seeds = [1000 * args.seed + i for i in range(K)]
    envs = [MecOffloadEnv(**env_kw) for _ in range(K)]
    obs_dim, action_dim = envs[0].observation_space.shape[0], envs[0].action_space.shape[0]
    agents = [Agent(agent_config(args, s), obs_dim, action_dim) for s in seeds]
    cfg = agents[0].config
    capacity = min(cfg.buffer_size, max(args.total_steps, 1))
    if args.sharing == 'all' and K > 1:
        shared = ReplayBuffer(capacity, obs_dim, action_dim, seed=args.seed)
        buffers = [shared] * K
    else:
        buffers = [ReplayBuffer(capacity, obs_dim, action_dim, seed=s) for s in seeds]
    # Who receives agent i's transitions: its own buffer, plus the master's in 'master' mode.
    receivers = [[buffers[i]] + ([buffers[0]] if args.sharing == 'master' and i > 0 else []) for i in range(K)]
    # Gradient steps per own env step: the master also trains on the workers' uploaded transitions.
    rates = [cfg.updates_per_step] * K
    if args.sharing == 'master' and K > 1:
        rates[0] = args.master_updates_per_transition * K
        if args.worker_updates_per_step is not None:
            rates[1:] = [args.worker_updates_per_step] * (K - 1)
    writers = [NStepWriter(1, obs_dim, action_dim, n_step=cfg.n_step, gamma=cfg.gamma) for _ in range(K)]
    scratch_agent = Agent(cfg, obs_dim, action_dim)   # holds the merged actor for evaluation

    log = RunLogger(ENV_ID, args.exp_name, args.seed, root=args.runs_dir, tensorboard=args.tensorboard,
                    progress_tags=('charts/episodic_cost', 'eval/best_cost', 'eval/merged_cost', 'losses/critic_loss'))
    log.write_config({**vars(args), 'agent': cfg.to_dict(), 'env_kwargs': env_kw, 'agent_seeds': seeds,
                      'updates_per_own_step': rates})

    obs = [env.reset(seed=s)[0] for env, s in zip(envs, seeds)]
    episode_cost = [0.0] * K
    exploration_cost, update_debt = 0.0, [0.0] * K
    stats: dict[str, Any] | None = None
    updates = 0
    merged_model: dict[str, np.ndarray] | None = None
    history: list[dict[str, Any]] = []
    steps_per_agent = args.total_steps // K
    global_step = 0
    for t in range(1, steps_per_agent + 1):
        # ---- every agent makes one env step and its gradient steps
        for i in range(K):
            agent, env = agents[i], envs[i]
            action = agent.act(obs[i], explore=True)
            next_obs, reward, terminated, truncated, info = env.step(action)
            global_step += 1
            episode_cost[i] += info['cost']
            exploration_cost += info['cost']
            transition = writers[i].step(obs[i][None], action[None], np.array([reward]), next_obs[None],
                                         np.array([terminated]), np.array([truncated]))
            for buffer in receivers[i]:
                buffer.add(**transition)
            obs[i] = next_obs
            if terminated or truncated:
                log.log_scalars({'charts/episodic_cost': episode_cost[i] / env.episode_length,
                                 'charts/exploration_cost': exploration_cost}, global_step)
                episode_cost[i] = 0.0
                agent.reset_noise()
                obs[i], _ = env.reset()
            if agent.ready(len(buffers[i])):
                update_debt[i] += rates[i]
                while update_debt[i] >= 1.0:
                    update_debt[i] -= 1.0
                    stats = agent.update(buffers[i].sample(cfg.batch_size), stored_transitions=len(buffers[i]))
                    updates += 1
        if stats is not None and t % 100 == 0:
            log.log_scalars({'losses/critic_loss': stats['critic_loss'], 'losses/q_mean': stats['q_mean']},
                            global_step)

        # ---- generation: fitness, merge, pull, mutate
        if t % args.generation_steps == 0 or t == steps_per_agent:
            fitness = [-mean_cost(env_kw, ActorPolicy(a), VALIDATION_SEED, args.eval_episodes) for a in agents]
            record: dict[str, Any] = {'step': global_step, 'agent_steps': t, 'fitness': fitness,
                                      'exploration_cost': exploration_cost}
            if K > 1:
                models = [numpy_actor(a) for a in agents]
                weights = merge_weights(fitness, args.merge_method, args.merge_temperature, args.elite_fraction)
                merged_model = merge_models(models, fitness, method=args.merge_method,
                                            temperature=args.merge_temperature, elite_fraction=args.elite_fraction)
                # The critics get the same merge weights as their actors (merge_models with equal fitness).
                merged_critic = (merge_models([numpy_critic(a) for a in agents], fitness, method=args.merge_method,
                                              temperature=args.merge_temperature,
                                              elite_fraction=args.elite_fraction)
                                 if args.merge_critic else None)
                load_actor(scratch_agent, merged_model)
                merged_fitness = -mean_cost(env_kw, ActorPolicy(scratch_agent), VALIDATION_SEED, args.eval_episodes)
                pulled, mutated = [], []
                for i, agent in enumerate(agents):
                    may_pull = i > 0 or args.master_pull or args.sharing != 'master'
                    if may_pull and should_pull(fitness[i], merged_fitness, args.pull_margin):
                        load_actor(agent, merged_model)
                        if merged_critic is not None:
                            load_critic(agent, merged_critic)
                        pulled.append(i)
                    elif i > 0 and rng.random() < args.mutation_prob:
                        load_actor(agent, mutate(models[i], args.mutation_scale, rng))
                        mutated.append(i)
                record.update({'merge_weights': weights.tolist(), 'merged_fitness': merged_fitness,
                               'pulled': pulled, 'mutated': mutated})
                log.log_scalars({'eval/merged_cost': -merged_fitness, 'charts/pulled': len(pulled)}, global_step)
            best = max(fitness + ([record['merged_fitness']] if K > 1 else []))
            log.log_scalars({'eval/best_cost': -best, 'eval/master_cost': -fitness[0],
                             'eval/mean_agent_cost': -float(np.mean(fitness))}, global_step)
            history.append(record)
        log.progress(global_step)

    train_s = time.time() - start_time
    # ---- final policy: best validation fitness among the agents and the last merged model
    last = history[-1]
    candidates = {f'agent{i}': (last['fitness'][i], agents[i]) for i in range(K)}
    if K > 1:
        candidates['merged'] = (last['merged_fitness'], scratch_agent)   # scratch_agent holds the last merge
    final_name = max(candidates, key=lambda name: candidates[name][0])
    policies = {'final': ActorPolicy(candidates[final_name][1], 'final'),
                'master': ActorPolicy(agents[0], 'master')}
    if K > 1:
        policies['merged'] = ActorPolicy(scratch_agent, 'merged')
    comparison = compare_with_baselines(env_kw, policies, seed=TEST_SEED, episodes=args.test_episodes)
    print(markdown(comparison['table']))
    (log.run_dir / 'eval.json').write_text(json.dumps({'comparison': comparison, 'history': history,
                                                       'final_policy': final_name}, indent=2), encoding='utf-8')
    log.close()

    cost = comparison['cost']
    summary = {
        'experiment': 'mec_collective', 'run_dir': str(log.run_dir), 'seed': args.seed, 'num_agents': K,
        'sharing': args.sharing if K > 1 else 'none', 'merge_critic': args.merge_critic and K > 1,
        'total_steps': global_step,
        'exploration_cost': exploration_cost, 'exploration_cost_per_step': exploration_cost / max(global_step, 1),
        'final_cost': cost['final'], 'final_policy': final_name, 'master_cost': cost['master'],
        'merged_cost': cost.get('merged'), 'oracle_cost': cost['oracle'], 'greedy_cost': cost['greedy'],
        'oracle_gap_pct': comparison['oracle_gap_pct']['final'],
        'gradient_updates': updates,
        'pulls': sum(len(r.get('pulled', [])) for r in history),
        'mutations': sum(len(r.get('mutated', [])) for r in history),
        'train_s': round(train_s, 1), 'wall_s': round(time.time() - start_time, 1),
    }
    print(json.dumps(summary))
    return summary


if __name__ == '__main__':
    main(sys.argv[1:])
