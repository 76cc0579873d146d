"""`make run` = `dcdrl run dcdrl_cloud train` = `ros2 run dcdrl_cloud train`: DC-DRL training on loopback
DDS, ending in a report.

Launches launch/train.launch.yaml (replay buffer, master learner, parameter server, simulated
clients exploring the multi-user MEC offloading environment). The learner trains for --duration
seconds, evaluates itself against the baselines and the oracle, writes report.md with PNG plots
into the run folder and prints TRAINING DONE; the job then stops the graph and shows the table.

The screen shows the learner's progress, warnings and errors; every node's full output is in the
run folder's log/ (--verbose shows it here too). Ctrl-C or SIGTERM stops the whole graph; the
learner still writes the report of what was done so far (exit 0 once it is written, 1 without one).
A node that ends early ends the job at once, with its reason (exit 1). Bad arguments: one line,
exit 2, nothing started. --graph stream runs the pre-training stream demo instead (clients ->
replay buffer, random actions).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from dcdrl_core import training_defaults
from dcdrl_ros.workspace import find_workspace_root

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of argparse's usage block
        self.exit(EXIT_BAD_INPUT, f'{self.prog}: error: {message} (see --help)\n')


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:  # the help says what happens without them
            return action.help or ''
        return super()._get_help_string(action)


def _program_name() -> str:
    """How the user started this job, for --help and the error lines."""
    if Path(sys.argv[0]).name == 'train':  # the console script (ros2 run / dcdrl run)
        return 'ros2 run dcdrl_cloud train' if os.environ.get('ROS_DISTRO') else 'dcdrl run dcdrl_cloud train'
    return 'python -m dcdrl_cloud.main_job'


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=_program_name(), description=__doc__, formatter_class=_HelpFormatter)
    parser.add_argument('--graph', choices=['train', 'stream'], default='train',
                        help='train: the training graph; stream: the stream demo')
    parser.add_argument('--duration', type=float, default=training_defaults.DURATION_S, metavar='SECONDS',
                        help='seconds of training (stream: of streaming); 0 = until Ctrl-C or SIGTERM')
    parser.add_argument('--num-clients', type=int, default=training_defaults.NUM_CLIENTS, choices=[1, 2, 3, 4],
                        help='simulated clients')
    parser.add_argument('--mode', choices=['central', 'collective'], default=training_defaults.MODE,
                        help='central: clients act, the learner trains; collective: clients train too, '
                             'the parameter server merges')
    parser.add_argument('--env-id', default=training_defaults.ENV_ID,
                        help=f"gymnasium id; {training_defaults.PAPER_ENV_ID} is the paper's 2N action encoding, "
                             'which DDPG learns far slower')
    parser.add_argument('--seed', type=int, default=training_defaults.SEED, help='seed of the run (>= 0)')
    parser.add_argument('--num-envs', type=int, default=training_defaults.STREAM_NUM_ENVS,
                        help='stream demo: environment copies per client')
    parser.add_argument('--params-file', default=None, metavar='YAML',
                        help='ROS 2 parameter file instead of config/train.yaml (copy it and edit, e.g. the '
                             "learner's actor_lr and critic_lr)")
    parser.add_argument('--runs-dir', default=None, help='where run folders go (default: <workspace>/runs)')
    screen = parser.add_mutually_exclusive_group()
    screen.add_argument('-v', '--verbose', action='store_true', help="also show every node's output line")
    screen.add_argument('-q', '--quiet', action='store_true',
                        help="show only warnings, errors and the result, not the learner's progress")
    return parser


def check_arguments(args: argparse.Namespace) -> str | None:
    """What can be checked before anything starts; returns why the arguments are refused, or None."""
    if not math.isfinite(args.duration) or args.duration < 0:
        return f'--duration must be a number of seconds >= 0 (0 = until stopped), got {args.duration:g}'
    if args.seed < 0:
        return f'--seed must be >= 0, got {args.seed}'
    if args.num_envs < 1:
        return f'--num-envs must be >= 1, got {args.num_envs}'
    problem = _check_env(args.env_id)
    if problem:
        return problem
    if args.params_file is not None:
        from dcdrl_ros.param_files import ParameterFileError, parse_parameter_file
        try:
            parse_parameter_file(args.params_file)
        except (OSError, ParameterFileError) as error:
            return f'--params-file {args.params_file}: {error}'
    runs = _runs_dir(args)
    try:
        runs.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f'--runs-dir {runs}: {error.strerror or error}'
    if not os.access(runs, os.W_OK):
        return f'--runs-dir {runs}: not writable'
    return None


def _check_env(env_id: str) -> str | None:
    import gymnasium

    import dcdrl_sim  # noqa: F401  (registers the environments)
    try:
        gymnasium.spec(env_id)
    except gymnasium.error.Error:
        known = sorted(name for name in gymnasium.registry if name.startswith('dcdrl_sim/'))
        return f"--env-id {env_id!r} is not a registered environment (dcdrl_sim's: {', '.join(known)})"
    from dcdrl_cloud.learner import env_dims
    env = gymnasium.make(env_id)
    try:
        env_dims(env)
    except ValueError as error:
        return f'--env-id {env_id}: {error}'
    finally:
        env.close()
    return None


def _runs_dir(args: argparse.Namespace) -> Path:
    return Path(args.runs_dir) if args.runs_dir else (find_workspace_root() or Path.cwd()) / 'runs'


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


def describe_done(done: dict[str, Any]) -> str:
    """The TRAINING DONE line in words."""
    table = done.get('table') or {}
    learned, greedy = (table.get(name, {}).get('cost') for name in ('learned', 'greedy'))
    text = (f"[learner] TRAINING DONE after {done.get('wall_s', 0):.0f} s: policy version {done.get('version')}, "
            f"{done.get('updates', 0):,} updates, {done.get('env_steps', 0):,} environment steps")
    if isinstance(learned, (int, float)):
        text += f'; cost per step: learned {learned:.3g}'
        if isinstance(greedy, (int, float)):
            text += f', greedy {greedy:.3g}'
    return text + '; stopping the graph'


def _tensorboard() -> str:
    """The tensorboard command as the user can type it: the one on PATH, else the one next to this Python
    (.venv/bin/tensorboard for make run, where the venv is not activated)."""
    import shutil
    beside = Path(sys.executable).parent / 'tensorboard'
    if shutil.which('tensorboard') or not beside.is_file():
        return 'tensorboard'
    return os.path.relpath(beside) if beside.is_relative_to(Path.cwd()) else str(beside)


def _screen(args: argparse.Namespace) -> str:
    return 'verbose' if args.verbose else 'quiet' if args.quiet else 'progress'


def _launch_command(arguments: list[str]) -> list[str]:
    return [sys.executable, '-m', 'dcdrl_ros.cli', 'launch', 'dcdrl_cloud', *arguments]


def run_stream(args: argparse.Namespace, env: dict[str, str], runs: Path, where: str) -> int:
    from dcdrl_cloud.graph_job import GraphJob
    run_dir = runs / f"stream_demo__{args.env_id.replace('/', '-')}__{int(time.time())}"
    arguments = ['stream_demo.launch.yaml', f'num_envs:={args.num_envs}', f'env_id:={args.env_id}']
    print(f"stream demo: {' '.join(arguments)} for {args.duration:.0f} s ({where})", flush=True)
    job = GraphJob(_launch_command(arguments), env, run_dir / 'log', screen=_screen(args), focus=None)
    result = job.run(stop_after=args.duration or None)
    report = result.markers.get('REPORT')
    if result.stop_reason == 'failure' or report is None:
        why = result.failure or f'no report from the replay buffer (its output: {run_dir / "log"})'
        print(f'main job: failed: {why}', file=sys.stderr, flush=True)
        return EXIT_FAILED
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / 'report.json').write_text(json.dumps(report, indent=2))
    print('\n=== DC-DRL stream demo report ===')
    print(_stream_table(report))
    print(f'report saved to {run_dir / "report.json"}', flush=True)
    return 0


def run_training(args: argparse.Namespace, env: dict[str, str], runs: Path, where: str) -> int:
    from dcdrl_cloud.graph_job import GraphJob
    run_dir = (runs / f"{args.env_id.replace('/', '-')}__{args.mode}__{args.seed}__{int(time.time())}").resolve()
    arguments = ['train.launch.yaml', f'num_clients:={args.num_clients}', f'mode:={args.mode}',
                 f'env_id:={args.env_id}', f'seed:={args.seed}', f'duration_s:={float(args.duration)}',
                 f'output_dir:={run_dir}', f'expected_models:={args.num_clients + 1}']
    if args.params_file:
        arguments.append(f'params_file:={Path(args.params_file).resolve()}')
    how_long = f'{args.duration:.0f} s of training' if args.duration else 'training until Ctrl-C'
    print(f'DC-DRL {args.mode} training on {args.env_id}: {args.num_clients} clients, {how_long} ({where})\n'
          f'  run folder: {run_dir}\n  dcdrl launch dcdrl_cloud {" ".join(arguments)}', flush=True)
    job = GraphJob(_launch_command(arguments), env, run_dir / 'log', screen=_screen(args),
                   done_marker='TRAINING DONE', describe_done=describe_done)
    # Start-up (imports, discovery) and the final evaluation take time beyond the training itself.
    result = job.run(stop_after=args.duration + 180.0 if args.duration else None)

    report = run_dir / 'report.md'
    has_report = report.is_file()
    evaluation = run_dir / 'evaluation.md'
    if has_report:
        print('\n=== DC-DRL training report ===')
        if evaluation.is_file():
            print(evaluation.read_text().strip() + '\n')
        plots = ', '.join(p.name for p in sorted(run_dir.glob('*.png')))
        print(f'report: {report}' + (f' (plots: {plots})' if plots else ''))
        print(f'TensorBoard: {_tensorboard()} --logdir {runs}')
    print(f'node logs: {run_dir / "log"}', flush=True)
    trained = f'after {result.elapsed_s:.0f} s'
    if result.stop_reason == 'failure':
        print(f'main job: failed: {result.failure}', file=sys.stderr, flush=True)
        return EXIT_FAILED
    if result.stop_reason == 'signal':
        if has_report:
            print(f'main job: stopped by {result.signal_name} {trained}; the report covers the training so far',
                  flush=True)
            return 0
        print(f'main job: stopped by {result.signal_name} {trained}, before the learner wrote a report',
              file=sys.stderr, flush=True)
        return EXIT_FAILED
    if result.stop_reason == 'done' and has_report:
        print(f'main job: done {trained}', flush=True)
        return 0
    why = ('the learner did not finish in time' if result.stop_reason == 'timeout'
           else 'the learner wrote no report')
    print(f'main job: failed: {why} (see {run_dir / "log"})', file=sys.stderr, flush=True)
    return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        problem = check_arguments(args)
        if problem:
            parser.error(problem)
        env = dict(os.environ, PYTHONUNBUFFERED='1')
        env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')  # loopback only unless told otherwise
        where = f"ROS_DOMAIN_ID={env.get('ROS_DOMAIN_ID', '0')}, discovery {env['ROS_AUTOMATIC_DISCOVERY_RANGE']}"
        runner = run_stream if args.graph == 'stream' else run_training
        return runner(args, env, _runs_dir(args), where)  # the graph's run handles SIGINT/SIGTERM itself
    except KeyboardInterrupt:  # Ctrl-C before the graph started or after it ended: nothing runs
        print('main job: interrupted', file=sys.stderr, flush=True)
        return 130


if __name__ == '__main__':
    sys.exit(main())
