"""Run every benchmark in bench/ and collect their results in one folder.

Each bench script runs as a subprocess (its own process group, a time limit each), prints
human lines and, as its last line, one JSON object. This script keeps each one's stdout/stderr
as a log, parses that JSON, and writes

    runs/bench/<YYYYmmdd-HHMMSS>/results.json
        {machine, started, finished, quick, interpreters, benches: {name: {ok, wall_s, json, error, ...}},
         summary: [rows from bench/summary.py]}
    runs/bench/<...>/<name>.log        (stdout + stderr of each bench)
    runs/bench/<...>/*.png             (charts from bench/charts.py)

A failing or timed-out bench is recorded (ok=false, error) and the others still run; a bench
that cannot run here (its file is missing, bandwidth without root/netns) is recorded as skipped.
Exit code 0 unless every bench that ran failed.

Interpreters: the benches that compare with stable-baselines3 / cpprb (learner, replay) run with
--python (default: .venv-bench/bin/python when it exists, else this interpreter); the others need
the installed product (node entry points) and run with --product-python (default .venv/bin/python
when it exists, else this interpreter). Both get src/<package> on PYTHONPATH.

    .venv/bin/python bench/run_all.py [--quick] [--only transport,envs] [--python PATH]
    .venv/bin/python bench/render_results.py          # then: docs/results-bench.md
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import summary as summary_module  # noqa: E402
from machine import machine_info  # noqa: E402

PACKAGES = ('dcdrl_core', 'dcdrl_ros', 'dcdrl_learning', 'dcdrl_sim', 'dcdrl_edge', 'dcdrl_cloud')


def _bandwidth_unavailable() -> str | None:
    """Why the bandwidth bench (network namespaces + tc netem) cannot run here, or None."""
    missing = [tool for tool in ('ip', 'tc') if shutil.which(tool) is None]
    if missing:
        return f'needs iproute2 ({", ".join(missing)} not found)'
    if os.geteuid() == 0:
        return None
    if shutil.which('unshare') is None:
        return 'needs root or unprivileged network namespaces (unshare not found)'
    try:  # unprivileged user + network namespace: enough for a private netns with tc
        probe = subprocess.run(['unshare', '-rn', 'true'], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f'needs root or network namespaces ({type(exc).__name__})'
    if probe.returncode != 0:
        return 'needs root or unprivileged network namespaces (unshare -rn failed)'
    return None


@dataclass(frozen=True)
class Bench:
    name: str
    args: tuple[str, ...] = ()            # extra arguments, always passed
    comparison: bool = False              # needs the comparison packages (bench/requirements.txt)
    quick_timeout_s: float = 180.0
    full_timeout_s: float = 1800.0
    unavailable: Callable[[], str | None] | None = field(default=None, compare=False)
    script_path: Path | None = None    # default bench/<name>.py

    @property
    def script(self) -> Path:
        return self.script_path or BENCH_DIR / f'{self.name}.py'


# The fixed order. learner runs with --skip-replay: its second half is bench/replay.py, run on its own.
BENCHES: tuple[Bench, ...] = (
    Bench('transport', quick_timeout_s=420.0),   # may first colcon-build the workspace for its rclpy side
    Bench('envs'),
    Bench('learner', args=('--skip-replay',), comparison=True),
    Bench('replay', comparison=True),
    Bench('scaling', full_timeout_s=2400.0),   # the full run includes a 900 s time-to-target training
    Bench('edge_loop'),
    Bench('face_offload'),
    Bench('bandwidth', unavailable=_bandwidth_unavailable),
    Bench('recording', quick_timeout_s=420.0),   # may first colcon-build the workspace for ros2 bag record
)


def last_json_line(text: str) -> dict[str, Any] | None:
    """The last line of `text` that is a JSON object (the bench's result), or None."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if not line.startswith('{'):
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def default_python(candidate: Path) -> str:
    return str(candidate) if os.access(candidate, os.X_OK) else sys.executable


def interpreter_info(python: str) -> dict[str, Any]:
    """Versions seen by an interpreter (python, torch, numpy, comparison packages)."""
    code = ('import json, platform, importlib.metadata as m\n'
            'out = {"python": platform.python_version()}\n'
            'for name in ("torch", "numpy", "cyclonedds", "stable-baselines3", "cpprb", "torchrl"):\n'
            '    try: out[name] = m.version(name)\n'
            '    except m.PackageNotFoundError: out[name] = None\n'
            'print(json.dumps(out))\n')
    try:
        probe = subprocess.run([python, '-c', code], capture_output=True, text=True, timeout=60, cwd=ROOT)
        info = last_json_line(probe.stdout) or {'error': probe.stderr[-300:]}
    except (OSError, subprocess.TimeoutExpired) as exc:
        info = {'error': f'{type(exc).__name__}: {exc}'}
    info['path'] = python
    return info


def bench_env(base: dict[str, str]) -> dict[str, str]:
    """The environment for a bench: src/<package> importable, unbuffered output, no BLAS oversubscription."""
    env = dict(base)
    paths = [str(ROOT / 'src' / package) for package in PACKAGES]
    if env.get('PYTHONPATH'):
        paths.append(env['PYTHONPATH'])
    env['PYTHONPATH'] = os.pathsep.join(paths)
    env['PYTHONUNBUFFERED'] = '1'
    env.setdefault('MPLBACKEND', 'Agg')
    return env


def _stop_group(process: subprocess.Popen) -> None:
    """Ends a still-running bench and the children it started (its own process group), TERM then KILL."""
    for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def run_bench(bench: Bench, python: str, quick: bool, timeout_s: float, out_dir: Path) -> dict[str, Any]:
    """Runs one bench script; returns {ok, wall_s, json, error, python, argv, log}."""
    argv = [python, str(bench.script), *(['--quick'] if quick else []), *bench.args]
    log_path = out_dir / f'{bench.name}.log'
    record: dict[str, Any] = {'ok': False, 'wall_s': None, 'json': None, 'error': None, 'python': python,
                              'argv': argv[1:], 'log': log_path.name}
    start = time.monotonic()
    with open(log_path, 'w') as log:   # the bench writes straight into its log: readable while it runs
        log.write('$ ' + ' '.join(argv) + '\n')
        log.flush()
        try:
            process = subprocess.Popen(argv, cwd=ROOT, env=bench_env(dict(os.environ)), stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            record['error'] = f'could not start: {exc}'
            return record
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            record['error'] = f'timed out after {timeout_s:.0f} s'
            _stop_group(process)   # the bench and its children (while it is unreaped the group is surely ours)
        except BaseException:      # Ctrl-C: do not leave the bench running
            _stop_group(process)
            raise
        record['wall_s'] = round(time.monotonic() - start, 1)
    output = log_path.read_text(errors='replace')
    result = last_json_line(output or '')
    record['returncode'] = process.returncode
    record['json'] = result
    if record['error'] is None:
        if process.returncode != 0:
            tail = (output or '').strip().splitlines()[-3:]
            record['error'] = f'exit code {process.returncode}: ' + ' | '.join(tail)[-600:]
        elif result is None:
            record['error'] = 'no JSON object on the last lines of its output'
        else:
            record['ok'] = True
    return record


def write_json(path: Path, value: Any) -> None:
    tmp = path.with_suffix('.tmp')
    tmp.write_text(json.dumps(value, indent=1, default=str))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='run each bench with --quick (whole suite < 5 min)')
    parser.add_argument('--only', default='', help='comma-separated bench names (default: all)')
    parser.add_argument('--python', default=None,
                        help='interpreter for the comparison benches (default .venv-bench/bin/python if present)')
    parser.add_argument('--product-python', default=None,
                        help='interpreter for the other benches (default .venv/bin/python if present)')
    parser.add_argument('--timeout-s', type=float, default=None,
                        help='time limit per bench (default 180 s quick, 1800-2400 s full)')
    parser.add_argument('--out', default=str(ROOT / 'runs' / 'bench'), help='parent folder of the run folder')
    parser.add_argument('--no-charts', action='store_true', help='skip the PNG charts')
    args = parser.parse_args(argv)

    known = {bench.name for bench in BENCHES}
    only = [name for name in args.only.split(',') if name]
    unknown = sorted(set(only) - known)
    if unknown:
        parser.error(f'unknown bench(es) {unknown}; expected some of {sorted(known)}')
    if args.timeout_s is not None and args.timeout_s <= 0:
        parser.error(f'--timeout-s must be > 0, got {args.timeout_s}')
    python = args.python or default_python(ROOT / '.venv-bench' / 'bin' / 'python')
    product_python = args.product_python or default_python(ROOT / '.venv' / 'bin' / 'python')

    started = dt.datetime.now(dt.timezone.utc)
    out_dir = Path(args.out) / started.strftime('%Y%m%d-%H%M%S')
    for suffix in range(2, 100):   # two runs started in the same second get their own folders
        try:
            out_dir.mkdir(parents=True, exist_ok=False)
            break
        except FileExistsError:
            out_dir = out_dir.with_name(started.strftime('%Y%m%d-%H%M%S') + f'-{suffix}')
    results: dict[str, Any] = {
        'machine': machine_info(), 'started': started.isoformat(timespec='seconds'), 'finished': None,
        'quick': args.quick, 'git_commit': _git_commit(),
        'interpreters': {'comparison': interpreter_info(python), 'product': interpreter_info(product_python)},
        'benches': {}, 'summary': [],
    }
    print(f'bench run -> {out_dir} ({"quick" if args.quick else "full"}); comparison python {python}, '
          f'product python {product_python}', flush=True)
    suite_start = time.monotonic()
    for bench in BENCHES:
        if only and bench.name not in only:
            continue
        reason = None
        if not bench.script.exists():
            reason = f'{_relative(bench.script)} not found'
        elif bench.unavailable is not None:
            reason = bench.unavailable()
        if reason is not None:
            results['benches'][bench.name] = {'ok': False, 'skipped': reason, 'wall_s': None, 'json': None,
                                              'error': None}
            print(f'{bench.name:13s} skipped: {reason}', flush=True)
            continue
        timeout = args.timeout_s or (bench.quick_timeout_s if args.quick else bench.full_timeout_s)
        interpreter = python if bench.comparison else product_python
        print(f'{bench.name:13s} running (limit {timeout:.0f} s) ...', flush=True)
        record = run_bench(bench, interpreter, args.quick, timeout, out_dir)
        results['benches'][bench.name] = record
        status = 'ok' if record['ok'] else f'FAILED: {record["error"]}'
        print(f'{bench.name:13s} {record["wall_s"]:7.1f} s  {status}', flush=True)
        write_json(out_dir / 'results.json', results)  # partial results survive a later crash

    results['summary'] = summary_module.summarise(
        {name: record['json'] for name, record in results['benches'].items() if record.get('ok')})
    results['finished'] = dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')
    results['wall_s'] = round(time.monotonic() - suite_start, 1)
    write_json(out_dir / 'results.json', results)
    if not args.no_charts:
        try:
            import charts
            made = charts.make_charts(results, out_dir)
            print(f'charts: {", ".join(path.name for path in made) or "none"}', flush=True)
        except Exception as exc:  # charts are a convenience: the numbers are already saved
            print(f'charts failed: {type(exc).__name__}: {exc}', flush=True)
    print(summary_module.format_rows(results['summary']), flush=True)
    print(f'total {results["wall_s"]:.1f} s; results: {out_dir / "results.json"}', flush=True)
    ran = [record for record in results['benches'].values() if not record.get('skipped')]
    return 0 if any(record['ok'] for record in ran) else 1


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _git_commit() -> str | None:
    try:
        probe = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True,
                               timeout=10)
        return probe.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


if __name__ == '__main__':
    raise SystemExit(main())
