"""`make run`: the main job, ROS-free, on loopback DDS, ending in a report.

Default: collective-capable DRL training (launch/train.launch.yaml): the replay buffer, the
master learner, the parameter server and simulated clients exploring the multi-user MEC
offloading environment. The learner trains for --duration seconds, evaluates itself against the
baselines and the oracle, and prints TRAINING DONE; the job then stops the graph (Ctrl-C
semantics) and writes runs/<name>/report.md with PNG plots (learning curve vs baselines, version
lag, throughput) and the final evaluation table.

`--graph stream` runs the pre-training stream demo instead (clients -> replay buffer, random actions).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import selectors
import signal
import subprocess
import sys
import time
from typing import Any, Optional, Sequence

from dcdrl_core.workspace import find_workspace_root


def _report_line(line: str, marker: str) -> Optional[dict[str, Any]]:
    """The JSON after ``marker`` when a node's output line (after the launch prefix) starts with it."""
    text = line.split('] ', 1)[-1] if line.startswith('[') else line
    if text.startswith(marker + ' '):
        return json.loads(text[len(marker) + 1:])
    return None


def run_graph(command: list[str], env: dict[str, str], stop_after: float, done_marker: Optional[str],
              echo: bool = True) -> dict[str, dict[str, Any]]:
    """Runs a launch command, shows its output, stops it (SIGINT) when ``done_marker`` appears or
    ``stop_after`` seconds pass; returns the REPORT / done JSON lines it saw."""
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                start_new_session=True)
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + stop_after
    stopping = False
    try:
        assert launcher.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(launcher.stdout, selectors.EVENT_READ)
        while True:
            timeout = None if stopping else max(0.0, deadline - time.monotonic())
            if selector.select(timeout):
                line = launcher.stdout.readline()
                if not line:  # the launcher exited
                    break
                if echo:
                    print(line, end='', flush=True)
                for marker in ('REPORT', done_marker):
                    if marker and (data := _report_line(line.rstrip('\n'), marker)) is not None:
                        found[marker] = data
                if done_marker in found and not stopping:
                    os.killpg(launcher.pid, signal.SIGINT)  # the launcher stops its nodes cleanly
                    stopping = True
            elif not stopping:
                print(f'main job: no {done_marker or "end"} within {stop_after:.0f} s; stopping the graph',
                      flush=True)
                os.killpg(launcher.pid, signal.SIGINT)
                stopping = True
        launcher.wait(60)
    except KeyboardInterrupt:
        os.killpg(launcher.pid, signal.SIGINT)
        launcher.wait(60)
        raise
    return found


def _stream_table(report: dict[str, Any]) -> str:
    lines = [
        f"transitions received : {report['transitions']} in {report['elapsed_s']:.1f} s",
        f"throughput           : {report['transitions_per_s']:.0f} transitions/s, "
        f"{report['megabytes_per_s']:.2f} MB/s",
        f"batches              : {report['batches']} (rejected {report['rejected']})",
        f"replay buffer size   : {report['replay_size']}",
    ]
    for client, stats in report['clients'].items():
        lines.append(f"  {client:18s} : {stats['transitions']} transitions in {stats['batches']} batches, "
                     f"{stats['lost_batches']} lost")
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--graph', choices=['train', 'stream'], default='train')
    parser.add_argument('--duration', type=float, default=240.0, help='seconds of training (stream: of streaming)')
    parser.add_argument('--num-clients', type=int, default=2, choices=[1, 2, 3, 4])
    parser.add_argument('--mode', choices=['central', 'collective'], default='central')
    parser.add_argument('--env-id', default='dcdrl_sim/MecOffloadScores-v0',
                        help='MecOffload-v0: the paper\'s 2N action encoding, which DDPG learns far slower')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-envs', type=int, default=8, help='stream demo: environment copies per client')
    parser.add_argument('--runs-dir', default=None, help='where run folders go (default: <workspace>/runs)')
    parser.add_argument('--quiet', action='store_true', help='do not echo the nodes\' output')
    args = parser.parse_args(argv)

    env = dict(os.environ, PYTHONUNBUFFERED='1')
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')  # loopback only unless told otherwise
    runs = Path(args.runs_dir) if args.runs_dir else (find_workspace_root() or Path.cwd()) / 'runs'
    env_tag = args.env_id.replace('/', '-')
    stamp = int(time.time())
    launch = [sys.executable, '-m', 'dcdrl_core.cli', 'launch', 'dcdrl_cloud']
    where = f"ROS_DOMAIN_ID={env.get('ROS_DOMAIN_ID', '0')}, discovery {env['ROS_AUTOMATIC_DISCOVERY_RANGE']}"

    if args.graph == 'stream':
        run_dir = runs / f'stream_demo__{env_tag}__{stamp}'
        command = launch + ['stream_demo.launch.yaml', f'num_envs:={args.num_envs}', f'env_id:={args.env_id}']
        print(f"make run (stream demo): {' '.join(command[3:])} for {args.duration:.0f} s ({where})", flush=True)
        found = run_graph(command, env, args.duration, None, echo=not args.quiet)
        if 'REPORT' not in found:
            print('main job: no report from the replay buffer (see the output above)', file=sys.stderr)
            return 1
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / 'report.json').write_text(json.dumps(found['REPORT'], indent=2))
        print('\n=== DC-DRL stream demo report ===')
        print(_stream_table(found['REPORT']))
        print(f'report saved to {run_dir / "report.json"}')
        return 0

    run_dir = (runs / f'{env_tag}__{args.mode}__{args.seed}__{stamp}').resolve()
    command = launch + ['train.launch.yaml', f'num_clients:={args.num_clients}', f'mode:={args.mode}',
                        f'env_id:={args.env_id}', f'seed:={args.seed}', f'duration_s:={float(args.duration)}',
                        f'output_dir:={run_dir}', f'expected_models:={args.num_clients + 1}']
    print(f"make run: {args.mode} training, {args.num_clients} clients, {args.duration:.0f} s of training "
          f"({where})\n  {' '.join(command[3:])}", flush=True)
    # Start-up (imports, discovery) and the final evaluation take time beyond the training itself.
    found = run_graph(command, env, args.duration + 180.0, 'TRAINING DONE', echo=not args.quiet)
    done = found.get('TRAINING DONE')
    if done is None:
        print('main job: the learner did not finish (see the output above)', file=sys.stderr)
        return 1
    from dcdrl_cloud.report import build_report
    report = build_report(run_dir, replay_summary=found.get('REPORT'), done=done,
                          title=f'DC-DRL {args.mode} training on {args.env_id}')
    print('\n=== DC-DRL training report ===')
    evaluation = run_dir / 'evaluation.md'
    if evaluation.exists():
        print(evaluation.read_text())
    print(f'report: {report}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
