"""Run logging shared by every trainer: TensorBoard scalars, a CSV of the same scalars, progress lines.

Layout (CleanRL's): runs/<env>__<exp>__<seed>__<unix time>/
    events.out.tfevents.*   TensorBoard scalars (`tensorboard --logdir runs`)
    scalars.csv             wall_time,step,tag,value  (one row per scalar, long format: tags may
                            appear at different rates, e.g. losses every update, returns per episode)
    config.json             whatever the trainer passes to write_config (hyperparameters, versions)

Suggested tags: charts/episodic_return, charts/episodic_length, charts/SPS, charts/version_lag,
losses/critic_loss, losses/actor_loss, losses/q_mean. `progress()` prints one line at most every
`print_every_s` seconds with the step, SPS and the latest value of each tag named in `progress_tags`.
"""
from __future__ import annotations

import csv
import json
import math
import re
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

DEFAULT_PROGRESS_TAGS = ('charts/episodic_return', 'losses/critic_loss', 'losses/actor_loss', 'charts/version_lag')


def _safe_part(value: Any) -> str:
    """File-name-safe piece of the run name ('dcdrl_sim/MecOffload-v0' -> 'dcdrl_sim-MecOffload-v0')."""
    text = re.sub(r'[^A-Za-z0-9_.\-]+', '-', str(value)).strip('-.')
    return text or 'none'


def run_name(env_id: str, exp_name: str, seed: int, unix_time: int | None = None) -> str:
    started = int(time.time() if unix_time is None else unix_time)
    return f'{_safe_part(env_id)}__{_safe_part(exp_name)}__{int(seed)}__{started}'


class RunLogger:
    """Writes scalars to TensorBoard and CSV under runs/<env>__<exp>__<seed>__<time>, prints progress.

    Args:
        env_id, exp_name, seed: name the run directory.
        root: parent directory of all runs (default 'runs').
        tensorboard: write TensorBoard event files (needs the tensorboard package).
        csv_file: write scalars.csv.
        print_every_s: minimum seconds between progress lines; 0 prints every call, None never.
        progress_tags: tags shown in the progress line (their latest values).
        stream: where progress lines go (default stdout).
        clock: seconds clock (monotonic), replaceable in tests.
    """

    def __init__(self, env_id: str, exp_name: str, seed: int, root: str | Path = 'runs', *,
                 tensorboard: bool = True, csv_file: bool = True, print_every_s: float | None = 10.0,
                 progress_tags: tuple[str, ...] = DEFAULT_PROGRESS_TAGS, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if print_every_s is not None and (not isinstance(print_every_s, (int, float)) or print_every_s < 0):
            raise ValueError(f'print_every_s must be >= 0 seconds or None, got {print_every_s!r}')
        base = run_name(env_id, exp_name, seed)
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        # Two runs started in the same second get distinct directories.
        self.run_dir = root / base
        suffix = 1
        while True:
            try:
                self.run_dir.mkdir()
                break
            except FileExistsError:
                suffix += 1
                self.run_dir = root / f'{base}-{suffix}'
        self.name = self.run_dir.name
        self.print_every_s, self.progress_tags = print_every_s, tuple(progress_tags)
        self.stream = stream if stream is not None else sys.stdout
        self.clock = clock
        self.latest: dict[str, float] = {}
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # lazy: importing tensorboard takes ~1 s
            self._writer = SummaryWriter(log_dir=str(self.run_dir))
        self._csv_handle = None
        self._csv = None
        if csv_file:
            self._csv_handle = open(self.run_dir / 'scalars.csv', 'w', newline='', encoding='utf-8')
            self._csv = csv.writer(self._csv_handle)
            self._csv.writerow(['wall_time', 'step', 'tag', 'value'])
        now = clock()
        self._start_time = now
        self._last_print: float | None = None
        self._sps_time = now
        self._sps_step: int | None = None
        self.closed = False

    # ---------------------------------------------------------------- writing
    def write_config(self, config: Mapping[str, Any]) -> Path:
        """config.json in the run directory (and a markdown table in TensorBoard's text tab)."""
        path = self.run_dir / 'config.json'
        path.write_text(json.dumps(dict(config), indent=2, sort_keys=True, default=str), encoding='utf-8')
        if self._writer is not None:
            rows = '\n'.join(f'|{k}|{v}|' for k, v in sorted(dict(config).items()))
            self._writer.add_text('hyperparameters', f'|param|value|\n|-|-|\n{rows}')
        return path

    def log_scalar(self, tag: str, value: float, step: int) -> None:
        self.log_scalars({tag: value}, step)

    def log_scalars(self, scalars: Mapping[str, float | None], step: int) -> None:
        """Write each (tag, value) at `step`. None values are skipped (e.g. actor_loss when the actor
        was not updated); NaN/Inf are written as they are, so a diverging loss stays visible."""
        if self.closed:
            raise RuntimeError('RunLogger is closed')
        if isinstance(step, bool) or not isinstance(step, int):
            raise TypeError(f'step must be an int, got {type(step).__name__}')
        wall = time.time()
        for tag, value in scalars.items():
            if value is None:
                continue
            value = float(value)
            self.latest[tag] = value
            if self._writer is not None:
                self._writer.add_scalar(tag, value, step, walltime=wall)
            if self._csv is not None:
                self._csv.writerow([f'{wall:.3f}', step, tag, repr(value)])

    def sps(self, step: int) -> float | None:
        """Steps per second since the previous call (None on the first call)."""
        now = self.clock()
        rate = None
        if self._sps_step is not None and now > self._sps_time:
            rate = (step - self._sps_step) / (now - self._sps_time)
        self._sps_time, self._sps_step = now, step
        return rate

    def progress(self, step: int, force: bool = False) -> bool:
        """Print one progress line if print_every_s has passed since the last; returns whether it printed.
        Also logs charts/SPS at that moment."""
        if self.print_every_s is None and not force:
            return False
        now = self.clock()
        if (not force and self._last_print is not None and self.print_every_s is not None
                and now - self._last_print < self.print_every_s):
            return False
        rate = self.sps(step)
        if rate is not None:
            self.log_scalars({'charts/SPS': rate}, step)
        parts = [f'step {step}', f'{now - self._start_time:7.1f}s']
        if rate is not None:
            parts.append(f'SPS {rate:.0f}')
        for tag in self.progress_tags:
            if tag in self.latest:
                parts.append(f'{tag.rsplit("/", 1)[-1]} {_fmt(self.latest[tag])}')
        print(' | '.join(parts), file=self.stream, flush=True)
        self._last_print = now
        return True

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()
        if self._csv_handle is not None:
            self._csv_handle.flush()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._writer is not None:
            self._writer.close()
        if self._csv_handle is not None:
            self._csv_handle.close()

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f'{value:.4g}'


def read_scalars_csv(path: str | Path) -> list[tuple[int, str, float]]:
    """(step, tag, value) rows of a scalars.csv, for tests and plotting scripts."""
    with open(path, newline='', encoding='utf-8') as handle:
        reader = csv.DictReader(handle)
        return [(int(r['step']), r['tag'], float(r['value'])) for r in reader]


__all__ = ['DEFAULT_PROGRESS_TAGS', 'RunLogger', 'read_scalars_csv', 'run_name']
