"""Learning curve of the end-to-end cloud-edge run that test/test_edge_control.py judges.

Starts the same two processes as the test (controller: 150 Hz loop over the 30 Hz simulated
cart-pole; segment_learner: DDPG, critic from 1,000 transitions, actor from 2,000) on a
private loopback DDS domain and, every `--every` gradient updates, notes the policies received so
far. After the run, each mark is judged by the best of `--judged` policies spread over the later
half of the run so far, each by its mean return over the same 10 start states (hanging down) on
the Euler plant, as the test does. Prints one line per mark and, last, one JSON line.

    .venv/bin/python experiments/cloud_edge_learning_curve.py [--updates 16000] [--seed 1] \
        [--judged 5] [--learner-param algorithm:=td3] [--controller-param noise_sigma:=0.3]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from dcdrl_learning.inference import NumpyActor
from dcdrl_ros.runtime.qos import qos_profile_sensor_data, qos_profile_transient_local
from dcdrl_ros.testing import TopicRecorder, fresh_domain_id, node_process
from dcdrl_sim.cartpole.env import CartPoleSwingUpEnv
from dcdrl_sim.evaluation import evaluate_policy

CONFIG = Path(__file__).resolve().parents[1] / 'config' / 'cloud_edge.yaml'


def mean_return(payload, episodes: int = 10) -> float:
    """Mean return of the actor in `payload` on the Euler plant, from the same start states every time."""
    actor = NumpyActor.from_payload(payload, 'cloud_edge', 10, 1)
    return evaluate_policy(CartPoleSwingUpEnv(integrator='euler'), actor, episodes, seed=10_000).summary['return']


def later_half(policies: list, judged: int) -> list:
    """`judged` policies spread over the later half of `policies`."""
    half = policies[len(policies) // 2:]
    return half[::max(1, len(half) // judged)][-judged:]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--updates', type=int, default=16_000)
    parser.add_argument('--every', type=int, default=2_000)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--judged', type=int, default=5, help='policies judged per mark')
    parser.add_argument('--learner-param', action='append', default=[], help='extra name:=value for the learner')
    parser.add_argument('--controller-param', action='append', default=[],
                        help='extra name:=value for the controller')
    parser.add_argument('--timeout-s', type=float, default=900.0)
    args = parser.parse_args(argv)

    from dcdrl_learning.weights_msg import read_weights

    from dcdrl_msgs.msg import PolicyWeights, TrainingStats
    domain = fresh_domain_id()
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'   # this process's recorder, like the nodes
    monitor = TopicRecorder(domain, namespace='/dcdrl')
    policies = monitor.record(PolicyWeights, 'policy', qos_profile_transient_local, read_weights)
    stats = monitor.record(TrainingStats, 'learner/stats', qos_profile_sensor_data)
    marks = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as output_dir:
        learner = node_process('dcdrl_cloud', 'segment_learner', 'segment_learner', domain, CONFIG,
                               f'output_dir:={output_dir}', 'critic_start:=1000', 'actor_start:=2000',
                               'eval_every_episodes:=5', 'publish_period_s:=0.25', 'stats_period_s:=0.5',
                               'tensorboard:=false', f'seed:={args.seed}', 'device:=cpu',
                               'stop_when_converged:=false', *args.learner_param)
        controller = node_process('dcdrl_edge', 'controller', 'controller', domain, CONFIG, 'rate_hz:=150.0',
                                  'sim_rate_hz:=30.0', f'seed:={args.seed}', *args.controller_param)
        try:
            for target in range(args.every, args.updates + 1, args.every):
                monitor.wait_for(lambda target=target: stats and stats[-1].updates >= target, args.timeout_s,
                                 f'{target} updates')
                with monitor.changed:
                    marks.append({'updates': target, 'transitions': int(stats[-1].env_steps),
                                  'wall_s': round(time.monotonic() - started, 1), 'policies': list(policies)})
                print(f'{target} updates, {marks[-1]["transitions"]} transitions, {marks[-1]["wall_s"]} s',
                      flush=True)
        finally:
            controller.stop()
            learner.stop()
            monitor.close()

    returns: dict[int, float] = {}   # by version: each policy is evaluated once

    def judged_return(payload) -> float:
        if payload.version not in returns:
            returns[payload.version] = round(mean_return(payload), 1)
        return returns[payload.version]

    first = judged_return(policies[0])
    print(f'first policy (version {policies[0].version}): {first}')
    curve = []
    for mark in marks:
        candidates = [judged_return(p) for p in later_half(mark['policies'], args.judged)]
        curve.append({'updates': mark['updates'], 'transitions': mark['transitions'], 'wall_s': mark['wall_s'],
                      'best': max(candidates), 'judged': candidates})
        print(f'{mark["updates"]:>6} updates: best {max(candidates):6.1f} of {candidates}')
    print(json.dumps({'experiment': 'cloud_edge_learning_curve', 'seed': args.seed,
                      'learner_params': args.learner_param,
                      'controller_params': args.controller_param, 'first': first, 'curve': curve}))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
