"""Which policy is "the best" of a segments-mode run (best_actor.safetensors), no ROS import.

The file only ever holds a policy that (1) was trained (published after at least one actor update,
or loaded from a checkpoint that had them: a pretrained policy being fine-tuned counts), (2) was
scored by a complete evaluation episode and (3) had the highest evaluation return so far. The
untrained initial actor is evaluated like any version (its score goes into the convergence rule)
but never becomes "best": a run stopped before any trained policy was evaluated leaves no
best_actor.safetensors and says so (``stop_note``), pointing at actor.safetensors, the latest policy.

    best = BestPolicy(best_path, write_payload)
    best.note_published(version, trained)            # every published version
    text, level = best.consider(summary, number, payload_for_version)   # every scored evaluation
    best.stop_note(actor_path, latest_version)       # the line a stopping learner logs
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dcdrl_learning.codec import WeightsPayload

from .segments import SegmentEpisodeSummary


class BestPolicy:
    """The best evaluated trained policy so far, and writing it to ``path``.

    path: where the best payload goes (output_dir/best_actor.safetensors).
    write: write(path, payload), atomically.
    """

    def __init__(self, path: Path, write: Callable[[Path, WeightsPayload], None]) -> None:
        self.path = Path(path)
        self._write = write
        self.eval_return = -math.inf         # its evaluation return
        self.version: int | None = None   # its policy version (None: no best yet)
        self.evaluation: int | None = None   # which evaluation (1 = the run's first scored one)
        self.missing = 0                     # better evaluations whose weights were no longer kept
        self.untrained_evaluations = 0       # evaluations of a policy without any actor update
        self.first_trained_version: int | None = None
        # A best_actor file left by an earlier run that this one did not resume (set by the learner).
        self.earlier_file = False

    # ------------------------------------------------------------------ bookkeeping
    def note_published(self, version: int, trained: bool) -> None:
        """A version was published; ``trained``: the actor had at least one update behind it."""
        if trained and self.first_trained_version is None:
            self.first_trained_version = int(version)

    def is_trained(self, version: int) -> bool:
        first = self.first_trained_version
        return first is not None and int(version) >= first

    def consider(self, summary: SegmentEpisodeSummary, evaluation: int,
                 payload_for_version: Callable[[int], WeightsPayload | None]) -> tuple[str, str]:
        """A complete evaluation episode was scored (``evaluation``: its number in this run's count).
        Writes best_actor when it is the new best. Returns (text about the best for the log, level)."""
        version = int(summary.policy_version)
        if version == 0:
            return 'the safe action (version 0) is not a policy', 'info'
        if not self.is_trained(version):
            self.untrained_evaluations += 1
            return f'version {version} is the untrained initial actor: never kept as best', 'info'
        if summary.episode_return <= self.eval_return:
            return (f'best stays version {self.version} (evaluation {self.evaluation}, return '
                    f'{self.eval_return:.2f})', 'info')
        payload = payload_for_version(version)
        if payload is None:
            self.missing += 1
            return (f'the best return so far, but version {version} is no longer kept: {self.path.name} '
                    'unchanged', 'warning')
        self._write(self.path, payload)
        previous = (f' (previous best: version {self.version}, evaluation {self.evaluation}, return '
                    f'{self.eval_return:.2f})' if self.version is not None else '')
        self.eval_return, self.version, self.evaluation = float(summary.episode_return), version, int(evaluation)
        self.earlier_file = False
        return f'new best: version {version} written to {self.path}{previous}', 'info'

    def stop_note(self, actor_path: Path, latest_version: int) -> str:
        """Which weights file to deploy, for the log of a stopping learner."""
        latest = f'{actor_path} holds the latest policy (version {latest_version})'
        if self.version is not None:
            return (f'best policy: {self.path} (version {self.version}, evaluation {self.evaluation}, return '
                    f'{self.eval_return:.2f}); {latest}')
        why = ('only the untrained initial actor was evaluated' if self.untrained_evaluations
               else 'no evaluation of a trained policy happened')
        earlier = f' (the {self.path.name} there is from an earlier run)' if self.earlier_file else ''
        return f'{why}: no best policy from this run{earlier}; {latest}, not evaluated'

    # ------------------------------------------------------------------ checkpoint
    def state(self) -> dict[str, Any]:
        return {'best_eval_return': self.eval_return, 'best_version': self.version,
                'best_evaluation': self.evaluation, 'best_missing': self.missing,
                'untrained_evaluations': self.untrained_evaluations}

    def load_state(self, extra: Mapping[str, Any]) -> None:
        value = extra.get('best_eval_return')
        self.eval_return = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
            else -math.inf
        self.version = extra.get('best_version')
        self.evaluation = extra.get('best_evaluation')
        self.missing = int(extra.get('best_missing', 0))
        self.untrained_evaluations = int(extra.get('untrained_evaluations', 0))


__all__ = ['BestPolicy']
