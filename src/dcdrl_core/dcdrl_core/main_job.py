"""`make run`: the main job, ROS-free, on loopback DDS, ending in a report.

Today it runs the most complete graph that exists: launch/stream_demo.launch.yaml, where
simulated clients explore MEC offloading environments and stream their experience over
DDS into the replay buffer, which reports throughput. It becomes collective training
(launch/train) when the distributed-training nodes land.
"""
from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from dcdrl_core.workspace import find_workspace_root


def _report_table(report: dict[str, Any]) -> str:
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
    parser.add_argument('--duration', type=float, default=20.0, help='seconds to run the graph')
    parser.add_argument('--num-envs', type=int, default=8, help='environment copies per client')
    parser.add_argument('--env-id', default='dcdrl_sim/MecOffload-v0')
    args = parser.parse_args(argv)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')  # loopback only unless told otherwise
    command = [sys.executable, '-m', 'dcdrl_core.cli', 'launch', 'dcdrl_cloud', 'stream_demo.launch.yaml',
               f'num_envs:={args.num_envs}', f'env_id:={args.env_id}']
    print(f"make run: {' '.join(command[2:])} for {args.duration:.0f} s "
          f"(ROS_DOMAIN_ID={env.get('ROS_DOMAIN_ID', '0')}, discovery {env['ROS_AUTOMATIC_DISCOVERY_RANGE']})",
          flush=True)
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                start_new_session=True)
    report: Optional[dict[str, Any]] = None
    deadline = time.monotonic() + args.duration
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
                if line.split('] ', 1)[-1].startswith('REPORT '):  # the replay buffer's, not a client's
                    report = json.loads(line.split('REPORT ', 1)[1])
                print(line, end='', flush=True)
            elif not stopping:
                os.killpg(launcher.pid, signal.SIGINT)  # the launcher stops its nodes cleanly
                stopping = True
        launcher.wait(30)
    except KeyboardInterrupt:
        os.killpg(launcher.pid, signal.SIGINT)
        launcher.wait(30)
    if report is None:
        print('make run: no report from the replay buffer (see the output above)', file=sys.stderr)
        return 1
    root = find_workspace_root() or Path.cwd()
    run_dir = root / 'runs' / f"stream_demo__{args.env_id.replace('/', '-')}__{int(time.time())}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / 'report.json').write_text(json.dumps(report, indent=2))
    print('\n=== DC-DRL stream demo report ===')
    print(_report_table(report))
    print(f'report saved to {run_dir / "report.json"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
