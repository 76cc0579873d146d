"""The cloud-edge sim-to-real workflow end to end, as a user runs it, timed: pretrain, then fine-tune.

Runs `dcdrl launch dcdrl_cloud cartpole_pretrain.launch.yaml` until the learner prints TRAINING
DONE (converged: 3 evaluation episodes in a row with swing-up <= 250 steps), stops the launch
(Ctrl-C), then `cartpole_finetune.launch.yaml init_checkpoint:=<pretrain>/learner.ckpt` the same
way, on the "real" plant (cart friction 15 instead of 10, in real time at 30 Hz). Prints both
summaries and, last, one JSON line. Each step runs on a private loopback DDS domain.

    .venv/bin/python experiments/cloud_edge_workflow.py [--runs-dir runs/workflow] [--pretrain-rate-hz 120]
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from dcdrl_ros.testing import ChildProcess, fresh_domain_id, loopback_env

DCDRL = [sys.executable, '-m', 'dcdrl_ros.cli', 'launch', 'dcdrl_cloud']


def run_step(launch_file: str, timeout_s: float, *args: str) -> dict:
    child = ChildProcess([*DCDRL, launch_file, *args], env=loopback_env(fresh_domain_id()))
    started = time.monotonic()
    try:
        line = child.wait_for_line('TRAINING DONE', timeout_s)
    finally:
        child.stop(timeout=30.0)
    summary = json.loads(re.search(r'TRAINING DONE (\{.*\})', line).group(1))
    summary['launch_wall_s'] = time.monotonic() - started
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--runs-dir', default='runs/workflow')
    parser.add_argument('--pretrain-rate-hz', type=float, default=120.0, help='loop rate over the 30 Hz simulation')
    parser.add_argument('--pretrain-friction', type=float, default=10.0)
    parser.add_argument('--finetune-friction', type=float, default=15.0)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--timeout-s', type=float, default=3600.0, help='per step')
    args = parser.parse_args(argv)
    root = Path(args.runs_dir) / time.strftime('%Y%m%d-%H%M%S')
    pretrain_dir, finetune_dir = root / 'pretrain', root / 'finetune'
    pretrain = run_step('cartpole_pretrain.launch.yaml', args.timeout_s, f'output_dir:={pretrain_dir}',
                        f'rate_hz:={args.pretrain_rate_hz}', f'sim_cart_friction:={args.pretrain_friction}',
                        f'seed:={args.seed}', 'exit_when_done:=true')
    print('pretrain: ' + json.dumps(pretrain), flush=True)
    finetune = run_step('cartpole_finetune.launch.yaml', args.timeout_s, f'output_dir:={finetune_dir}',
                        f'init_checkpoint:={pretrain_dir / "learner.ckpt"}',
                        f'sim_cart_friction:={args.finetune_friction}', f'seed:={args.seed}', 'scope:=false',
                        'exit_when_done:=true')
    print('finetune: ' + json.dumps(finetune), flush=True)
    print(json.dumps({'experiment': 'cloud_edge_workflow', 'pretrain': pretrain, 'finetune': finetune,
                      'output': str(root)}))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
