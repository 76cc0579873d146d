"""Cart-pole swing-up with DDPG (cloud-edge preset): from scratch, then fine-tuning on another plant.

CleanRL-style: read top to bottom. One process, one simulated plant, no network.

Phase 1 (scratch): DDPG on `CartPoleSwingUpEnv` (cart friction 10, the seed's value) until the
evaluator says "converged": `ConvergenceTracker(k=3, max_swing_up_steps=250)`, i.e. three
evaluations in a row whose noise-free episode reaches the target (tip within 5 cm) within 250
steps. One evaluation (one episode from a fresh random start, no exploration noise, no on-target
early stop) runs every `--eval-every-episodes` training episodes. Steps to convergence = env
steps (= stored transitions) at the third success.

Phase 2 (fine-tune): the converged agent is saved with `dcdrl_learning.checkpoint`, loaded
back (networks, Adam state, noise state), and trained on a plant whose cart friction is
`--finetune-friction-factor` times the original (default 1.5, i.e. 15 N s/m: a slower cart), with a fresh replay
buffer (the new plant's data only, as the cloud starts collecting on a new rig) and the same
start thresholds. Before any fine-tuning step the loaded policy is evaluated on the new plant the
same way (zero-shot evaluations count towards the new tracker). Steps to re-converge = fine-tuning
env steps at the third success in a row.

After each phase the policy is tested on `--test-episodes` full episodes (1000 steps, no early
stop): successes, failures (rail end / spin limit) and the median swing-up time, the seed paper's
quality measures (0-3 failures in 30 episodes; median swing-up 160-190 steps on the real rig).

    .venv/bin/python experiments/cartpole_swingup.py --seed 1
    .venv/bin/python experiments/cartpole_swingup.py --quick          # seconds; smoke test
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from dcdrl_learning.agents import ALGORITHMS, Agent, AgentConfig
from dcdrl_learning.checkpoint import load_checkpoint, save_checkpoint
from dcdrl_learning.noise import NOISE_KINDS
from dcdrl_learning.replay import NStepWriter, ReplayBuffer
from dcdrl_learning.runlog import RunLogger
from dcdrl_sim.cartpole.env import CartPoleSwingUpEnv
from dcdrl_sim.cartpole.evaluation import ConvergenceTracker, evaluate_swing_up

ENV_ID = 'dcdrl_sim/CartPoleSwingUp-v0'
EVAL_SEED_BASE = 1_000_000   # evaluation starts come from seeds never used by training resets
TEST_SEED_BASE = 2_000_000


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    d = AgentConfig.preset('cloud_edge')
    plant_defaults = CartPoleSwingUpEnv()   # the plant's own start spread and episode length are the defaults
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--total-steps', type=int, default=200_000, help='cap on scratch training env steps')
    p.add_argument('--finetune-steps', type=int, default=100_000, help='cap on fine-tuning env steps (0: skip)')
    p.add_argument('--exp-name', default='cartpole_swingup')
    p.add_argument('--quick', action='store_true', help='tiny run for smoke tests (300 + 200 steps)')
    p.add_argument('--runs-dir', default='runs')
    p.add_argument('--tensorboard', action=argparse.BooleanOptionalAction, default=True,
                   help='also write TensorBoard event files (scalars.csv is always written)')
    g = p.add_argument_group('agent (defaults: cloud-edge preset)')
    g.add_argument('--algorithm', default=d.algorithm, choices=ALGORITHMS)
    g.add_argument('--actor-lr', type=float, default=d.actor_lr)
    g.add_argument('--critic-lr', type=float, default=d.critic_lr)
    g.add_argument('--gamma', type=float, default=d.gamma)
    g.add_argument('--tau', type=float, default=d.tau)
    g.add_argument('--batch-size', type=int, default=d.batch_size)
    g.add_argument('--buffer-size', type=int, default=d.buffer_size)
    g.add_argument('--critic-start', type=int, default=d.critic_start, help='stored transitions before critic updates')
    g.add_argument('--actor-start', type=int, default=d.actor_start, help='stored transitions before actor updates')
    g.add_argument('--updates-per-step', type=float, default=d.updates_per_step)
    g.add_argument('--combined-replay', action=argparse.BooleanOptionalAction, default=d.combined_replay)
    g.add_argument('--exploration', default=d.exploration, choices=NOISE_KINDS,
                   help="DDPG/TD3: the action noise; SAC: 'pink' samples its policy with pink noise, else white")
    g.add_argument('--alpha', type=float, default=d.alpha, help='SAC: initial entropy temperature')
    g.add_argument('--autotune-alpha', action=argparse.BooleanOptionalAction, default=d.autotune_alpha,
                   help='SAC: learn the temperature (else it stays at --alpha)')
    g.add_argument('--target-entropy-per-action', type=float, default=d.target_entropy_per_action,
                   help='SAC: the entropy the temperature steers to, per action dimension')
    g.add_argument('--noise-sigma', type=float, default=d.noise_sigma)
    g.add_argument('--noise-theta', type=float, default=d.noise_theta)
    g.add_argument('--noise-scale', type=float, default=d.noise_scale)
    g.add_argument('--noise-half-life', type=float, default=d.noise_half_life, help='steps for the OU scale to halve')
    g.add_argument('--torch-threads', type=int, default=1)
    g.add_argument('--device', default='cpu')
    g = p.add_argument_group('plant and evaluation')
    g.add_argument('--cart-friction', type=float, default=10.0, help='pretraining plant (seed value)')
    g.add_argument('--integrator', default='semi_implicit_euler', choices=('semi_implicit_euler', 'euler'),
                   help="plant integrator (both phases); 'euler' = the original simulator's explicit Euler, "
                        'which adds energy to the pendulum at 30 Hz')
    g.add_argument('--finetune-integrator', default=None, choices=('semi_implicit_euler', 'euler'),
                   help='fine-tuning plant integrator (default: --integrator); pretrain on the original '
                        "simulator's explicit Euler, fine-tune on the corrected plant, as sim-to-real")
    g.add_argument('--finetune-friction-factor', type=float, default=1.5,
                   help='fine-tuning plant cart friction = this x --cart-friction')
    g.add_argument('--train-init-theta-std', type=float, default=plant_defaults.init_theta_std,
                   help='training resets only: std (rad) of the start angle around hanging; 3 or more starts '
                        'training episodes anywhere on the circle (exploring starts). Evaluations and tests '
                        'always start from the plant default N(pi, 0.8)')
    g.add_argument('--train-episode-steps', type=int, default=plant_defaults.max_steps,
                   help='training episodes only: steps before truncation (the plant default 1000, 33 s); '
                        'evaluations and tests keep their own lengths')
    g.add_argument('--eval-every-episodes', type=int, default=5, help='training episodes between evaluations')
    g.add_argument('--converge-k', type=int, default=3, help='successful evaluations in a row')
    g.add_argument('--max-swing-up-steps', type=int, default=250)
    g.add_argument('--test-episodes', type=int, default=20)
    args = p.parse_args(argv)
    if args.quick:
        args.total_steps = min(args.total_steps, 300)
        args.finetune_steps = min(args.finetune_steps, 200)
        args.critic_start, args.actor_start = min(args.critic_start, 100), min(args.actor_start, 150)
        args.eval_every_episodes = 1
        args.test_episodes = 2
    return args


def agent_config(args: argparse.Namespace) -> AgentConfig:
    return AgentConfig.preset(
        'cloud_edge', algorithm=args.algorithm, actor_lr=args.actor_lr, critic_lr=args.critic_lr,
        gamma=args.gamma, tau=args.tau, batch_size=args.batch_size, buffer_size=args.buffer_size,
        critic_start=args.critic_start, actor_start=args.actor_start, updates_per_step=args.updates_per_step,
        combined_replay=args.combined_replay, exploration=args.exploration, noise_sigma=args.noise_sigma,
        noise_theta=args.noise_theta, noise_scale=args.noise_scale, noise_half_life=args.noise_half_life,
        torch_threads=args.torch_threads, device=args.device, seed=args.seed, alpha=args.alpha,
        autotune_alpha=args.autotune_alpha, target_entropy_per_action=args.target_entropy_per_action)


def test_policy(agent: Agent, friction: float, episodes: int, seed: int, max_swing_up_steps: int,
                integrator: str) -> dict[str, Any]:
    """Full noise-free episodes (1000 steps, no early stop): the seed paper's quality measures."""
    env = CartPoleSwingUpEnv(cart_friction=friction, integrator=integrator, target_steps_to_stop=None)
    results = [evaluate_swing_up(env, lambda o: agent.act(o), seed=seed + k, max_swing_up_steps=max_swing_up_steps)
               for k in range(episodes)]
    times = [r.swing_up_steps for r in results if r.swing_up_steps is not None]
    return {'episodes': episodes, 'successes': sum(r.success for r in results),
            'failures': sum(r.failed for r in results),
            'median_swing_up_steps': float(np.median(times)) if times else None,
            'mean_return': float(np.mean([r.episode_return for r in results]))}


def train_until_converged(agent: Agent, friction: float, integrator: str, max_steps: int, args: argparse.Namespace,
                          log: RunLogger, phase: str, step_offset: int, env_seed: int,
                          initial_evaluations: int) -> dict[str, Any]:
    """DDPG on one plant until ConvergenceTracker says converged or max_steps env steps.

    `initial_evaluations` evaluations run before the first step (fine-tuning: k, so a loaded policy
    that already swings up on the new plant needs 0 steps). Returns steps, convergence step and the
    evaluation history.
    """
    cfg = agent.config
    env = CartPoleSwingUpEnv(cart_friction=friction, integrator=integrator, init_theta_std=args.train_init_theta_std,
                             max_steps=args.train_episode_steps)
    eval_env = CartPoleSwingUpEnv(cart_friction=friction, integrator=integrator, target_steps_to_stop=None)
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    buffer = ReplayBuffer(min(cfg.buffer_size, max(max_steps, 1)), obs_dim, action_dim,
                          combined=cfg.combined_replay, seed=env_seed)
    writer = NStepWriter(1, obs_dim, action_dim, n_step=cfg.n_step, gamma=cfg.gamma)
    tracker = ConvergenceTracker(k=args.converge_k, max_swing_up_steps=args.max_swing_up_steps)
    eval_seed = EVAL_SEED_BASE + 10_000 * env_seed

    def evaluate(step: int) -> bool:
        result = evaluate_swing_up(eval_env, lambda o: agent.act(o), seed=eval_seed + tracker.evaluations,
                                   max_swing_up_steps=args.max_swing_up_steps,
                                   max_steps=args.max_swing_up_steps + 1, stop_on_success=True)
        shown = result.swing_up_steps if result.swing_up_steps is not None else args.max_swing_up_steps + 1
        log.log_scalars({f'{phase}/swing_up_steps': shown, f'{phase}/success': float(result.success)},
                        step_offset + step)
        return tracker.update(result)

    converged_at = None
    for _ in range(initial_evaluations):
        if converged_at is None and evaluate(0):
            converged_at = 0
    obs, _ = env.reset(seed=env_seed)
    episode_return, episode_len, episodes, update_debt, step = 0.0, 0, 0, 0.0, 0
    stats: dict[str, Any] | None = None
    while converged_at is None and step < max_steps:
        step += 1
        action = agent.act(obs, explore=True)
        next_obs, reward, terminated, truncated, info = env.step(action)
        buffer.add(**writer.step(obs[None], action[None], np.array([reward]), next_obs[None],
                                 np.array([terminated]), np.array([truncated])))
        obs = next_obs
        episode_return += reward
        episode_len += 1

        if agent.ready(len(buffer)):
            update_debt += cfg.updates_per_step
            while update_debt >= 1.0:
                update_debt -= 1.0
                stats = agent.update(buffer.sample(cfg.batch_size), stored_transitions=len(buffer))
            if stats is not None and step % 100 == 0:
                log.log_scalars({'losses/critic_loss': stats['critic_loss'], 'losses/actor_loss': stats['actor_loss'],
                                 'losses/q_mean': stats['q_mean'], 'losses/alpha': stats.get('alpha')},
                                step_offset + step)

        if terminated or truncated:
            episodes += 1
            scalars = {'charts/episodic_return': episode_return, 'charts/episodic_length': episode_len}
            if agent.noise is not None:   # SAC explores with its own samples
                scalars['charts/noise_scale'] = agent.noise.current_scale()
            log.log_scalars(scalars, step_offset + step)
            episode_return, episode_len = 0.0, 0
            agent.reset_noise()
            obs, _ = env.reset()
            if episodes % args.eval_every_episodes == 0 and evaluate(step):
                converged_at = step
        log.progress(step_offset + step)
    return {'steps': step, 'converged': converged_at is not None, 'converged_at_steps': converged_at,
            'episodes': episodes, 'evaluations': tracker.evaluations, 'history': tracker.history}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    start_time = time.time()
    torch.set_num_threads(args.torch_threads)
    cfg = agent_config(args)
    obs_dim, action_dim = CartPoleSwingUpEnv().observation_space.shape[0], 1
    agent = Agent(cfg, obs_dim, action_dim)
    log = RunLogger(ENV_ID, args.exp_name, args.seed, root=args.runs_dir, tensorboard=args.tensorboard,
                    progress_tags=('charts/episodic_return', 'scratch/swing_up_steps', 'finetune/swing_up_steps',
                                   'losses/critic_loss'))
    log.write_config({**vars(args), 'agent': cfg.to_dict()})

    # Phase 1: from scratch on the seed's plant.
    scratch = train_until_converged(agent, args.cart_friction, args.integrator, args.total_steps, args, log,
                                    'scratch', 0, args.seed, initial_evaluations=1)
    scratch_s = time.time() - start_time
    scratch['test'] = test_policy(agent, args.cart_friction, args.test_episodes, TEST_SEED_BASE + args.seed,
                                  args.max_swing_up_steps, args.integrator)
    checkpoint = log.run_dir / 'scratch.safetensors'
    save_checkpoint(checkpoint, agent, version=0, extra={'env_steps': scratch['steps'],
                                                         'converged': scratch['converged'],
                                                         'cart_friction': args.cart_friction})
    print(f"scratch: converged={scratch['converged']} at {scratch['converged_at_steps']} steps "
          f"({scratch['evaluations']} evaluations, {scratch_s:.0f} s); test {scratch['test']}", flush=True)

    # Phase 2: fine-tune the saved policy on a plant with another cart friction (and/or integrator).
    finetune: dict[str, Any] | None = None
    new_friction = args.cart_friction * args.finetune_friction_factor
    new_integrator = args.finetune_integrator or args.integrator
    if args.finetune_steps > 0:
        tuned, info = load_checkpoint(checkpoint)
        finetune_start = time.time()
        finetune = {'cart_friction': new_friction, 'integrator': new_integrator,
                    'zero_shot_test': test_policy(tuned, new_friction, args.test_episodes,
                                                  TEST_SEED_BASE + args.seed, args.max_swing_up_steps,
                                                  new_integrator)}
        finetune.update(train_until_converged(tuned, new_friction, new_integrator, args.finetune_steps, args, log,
                                              'finetune', info.extra['env_steps'], args.seed + 7919,
                                              initial_evaluations=args.converge_k))
        finetune['wall_s'] = round(time.time() - finetune_start, 1)
        finetune['test'] = test_policy(tuned, new_friction, args.test_episodes, TEST_SEED_BASE + args.seed,
                                       args.max_swing_up_steps, new_integrator)
        save_checkpoint(log.run_dir / 'finetuned.safetensors', tuned, version=1,
                        extra={'env_steps': finetune['steps'], 'cart_friction': new_friction,
                               'integrator': new_integrator})
        print(f"finetune: converged={finetune['converged']} at {finetune['converged_at_steps']} steps; "
              f"test {finetune['test']}", flush=True)

    result = {'scratch': scratch, 'finetune': finetune}
    (log.run_dir / 'result.json').write_text(json.dumps(result, indent=2), encoding='utf-8')
    log.close()
    summary = {
        'experiment': 'cartpole_swingup', 'run_dir': str(log.run_dir), 'seed': args.seed,
        'cart_friction': args.cart_friction, 'finetune_cart_friction': new_friction, 'integrator': args.integrator,
        'finetune_integrator': new_integrator, 'train_init_theta_std': args.train_init_theta_std,
        'train_episode_steps': args.train_episode_steps,
        'converged': scratch['converged'], 'steps_to_converge': scratch['converged_at_steps'],
        'scratch_steps': scratch['steps'], 'scratch_evaluations': scratch['evaluations'],
        'scratch_test': scratch['test'], 'scratch_s': round(scratch_s, 1),
        'finetune_converged': None if finetune is None else finetune['converged'],
        'steps_to_reconverge': None if finetune is None else finetune['converged_at_steps'],
        'finetune_steps': None if finetune is None else finetune['steps'],
        'zero_shot_test': None if finetune is None else finetune['zero_shot_test'],
        'finetune_test': None if finetune is None else finetune['test'],
        'wall_s': round(time.time() - start_time, 1),
    }
    print(json.dumps(summary))
    return summary


if __name__ == '__main__':
    main(sys.argv[1:])
