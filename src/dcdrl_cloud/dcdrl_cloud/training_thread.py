"""The learner nodes' training thread: a trainer's ``run(stop)`` off the executor, its end and its stop.

Both learner nodes (learner_node, segment_learner_node) start their trainer here. When ``run``
returns a summary, the thread prints one line ``TRAINING DONE {json}`` and, when the node's
``exit_when_done`` says so, sends the process SIGINT (run_node's Ctrl-C path: destroy_node, exit 0).
``stop`` (from destroy_node) ends the run, waits for it, checkpoints (``trainer.close``) and prints
the node's "stopped" line. No ROS import: the node hands in its logger and its sample counter.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import traceback
from collections.abc import Callable
from typing import Any

from dcdrl_core.strict_json import json_safe

STOP_TIMEOUT_S = 120.0   # a final evaluation or checkpoint may take this long on a busy machine


class TrainingThread:
    def __init__(self, trainer: Any, logger: Any, malformed_samples: Callable[[], int | None],
                 exit_when_done: Callable[[], bool], name: str) -> None:
        self.trainer = trainer
        self.logger = logger
        self.malformed_samples = malformed_samples
        self.exit_when_done = exit_when_done
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            summary = self.trainer.run(self._stop)
        except Exception:  # a bug or a diverged agent: say so loudly, keep the process for inspection
            self.logger.error('training stopped by an error:\n' + traceback.format_exc())
            return
        if summary is None:
            return  # stopped by stop()
        summary['malformed_samples'] = self.malformed_samples()
        print('TRAINING DONE ' + json.dumps(json_safe(summary), allow_nan=False), flush=True)
        if self.exit_when_done():
            os.kill(os.getpid(), signal.SIGINT)

    def stop(self, stopped_line: Callable[[dict], str]) -> None:
        """End the run, checkpoint, and print ``stopped_line(trainer.summary())``."""
        self._stop.set()
        self.trainer.wake()
        self._thread.join(timeout=STOP_TIMEOUT_S)
        if self._thread.is_alive():
            self.logger.error('training thread did not stop; no final checkpoint written')
            return
        try:
            self.trainer.close()
            print(stopped_line(self.trainer.summary()), flush=True)
        except Exception:
            self.logger.error('final checkpoint failed:\n' + traceback.format_exc())


__all__ = ['STOP_TIMEOUT_S', 'TrainingThread']
