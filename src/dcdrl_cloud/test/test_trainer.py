"""The shared trainer life cycle: the order of the hooks, versions across resume and a hard kill, the
finiteness guard, stats periods and rates, live changes, wake-up and the idempotent end."""
import json
import math
import threading
from dataclasses import dataclass

import pytest

from dcdrl_cloud.trainer import CHECKPOINT_NAME, SUMMARY_NAME, LagStats, Period, Trainer, next_due
from dcdrl_learning.agents import AgentConfig


@dataclass
class Config:
    env_id: str = 'dcdrl_sim/CartPoleSwingUp-v0'
    seed: int = 0
    output_dir: str = ''
    duration_s: float = 0.0
    stats_period_s: float = 1.0
    checkpoint_period_s: float = 10.0
    resume: bool = True
    tensorboard: bool = False
    progress_period_s: float = 0.0

    def agent_config(self) -> AgentConfig:
        return AgentConfig.preset('cloud_edge', device='cpu', seed=self.seed, torch_threads=1)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Outputs:
    def __init__(self):
        self.weights, self.stats, self.lines = [], [], []

    def publish_weights(self, payload):
        self.weights.append(payload)

    def publish_stats(self, stats):
        self.stats.append(stats)

    def log(self, level, text):
        self.lines.append((level, text))


class RecordingTrainer(Trainer):
    """A trainer whose hooks record their calls; ``_train`` counts one fake update per step."""

    LIVE_FIELDS = ('duration_s', 'stats_period_s', 'checkpoint_period_s')

    def __init__(self, config, outputs, clock):
        super().__init__(config, outputs, 'tester', clock)
        self.calls, self.steps, self.restored = [], 0, None
        self._load_saved_state()

    def _restore(self, extra):
        self.restored = dict(extra)
        self.steps = int(extra['steps'])

    def _config_record(self):
        self.calls.append('config_record')
        return {'tester': True}

    def _on_start(self, now):
        self.calls.append('on_start')
        self.publish_weights()

    def _train(self, timeout):
        self.calls.append('train')
        self.steps += 10
        self._count_update({'critic_loss': 2.0, 'q_mean': 1.0, 'actor_loss': -3.0 if self.steps % 20 == 0 else None})
        self._period.lag.add_one(float(self.steps // 10))

    def _before_stats(self, now):
        self.calls.append('before_stats')

    def _after_stats(self, now):
        self.calls.append('after_stats')

    def _reschedule(self, changes, now):
        self.calls.append(('reschedule', tuple(sorted(changes))))

    def _env_step_count(self):
        return self.steps

    def _replay_size(self):
        return self.steps

    def _checkpoint_extra(self):
        self.calls.append('checkpoint_extra')
        return {'steps': self.steps, 'nan': math.nan}

    def _save_files(self):
        self.calls.append('save_files')

    def summary(self):
        return {'version': self.version, 'updates': self.updates, 'steps': self.steps, 'reason': self.finished_reason}

    def _unpublished_changes(self):
        self.calls.append('unpublished_changes')
        return True

    def _finish_work(self):
        self.calls.append('finish_work')
        super()._finish_work()

    def _close_unfinished(self):
        self.calls.append('close_unfinished')
        super()._close_unfinished()

    def _release(self):
        self.calls.append('release')


def make(tmp_path, clock=None, **fields):
    clock = clock or Clock()
    out = Outputs()
    trainer = RecordingTrainer(Config(output_dir=str(tmp_path / 'out'), **fields), out, clock)
    return trainer, out, clock


def test_step_runs_the_hooks_in_order_and_the_periodic_work_when_due(tmp_path):
    trainer, out, clock = make(tmp_path, stats_period_s=1.0, checkpoint_period_s=2.0)
    with pytest.raises(RuntimeError, match='call start'):
        trainer.step(0.0)
    trainer.start()
    trainer.start()   # idempotent
    assert trainer.calls == ['config_record', 'on_start'] and trainer.version == 1
    trainer.calls.clear()
    assert trainer.step(0.0) is False
    assert trainer.calls == ['train', 'before_stats', 'after_stats'] and out.stats == []
    clock.now += 1.0
    trainer.step(0.0)
    assert len(out.stats) == 1 and 'checkpoint_extra' not in trainer.calls
    clock.now += 1.0
    trainer.calls.clear()
    trainer.step(0.0)
    assert trainer.calls == ['train', 'before_stats', 'after_stats', 'checkpoint_extra', 'save_files']
    saved = json.loads((tmp_path / 'out' / SUMMARY_NAME).read_text())
    assert saved == {'version': 1, 'updates': 3, 'steps': 30, 'reason': None}


def test_stats_average_the_period_and_rate_since_the_last_call(tmp_path):
    trainer, out, clock = make(tmp_path)
    trainer.start()
    first = trainer.stats(clock.now)
    assert math.isnan(first['critic_loss']) and math.isnan(first['version_lag_mean'])
    for _ in range(4):
        trainer.step(0.0)            # 4 updates, 40 steps, actor updated at steps 20 and 40
    clock.now += 2.0
    stats = trainer.stats(clock.now)
    assert stats['updates'] == 4 and stats['env_steps'] == 40 and stats['replay_size'] == 40
    assert stats['critic_loss'] == 2.0 and stats['q_mean'] == 1.0 and stats['actor_loss'] == -3.0
    assert stats['updates_per_sec'] == pytest.approx(2.0) and stats['env_steps_per_sec'] == pytest.approx(20.0)
    assert (stats['version_lag_min'], stats['version_lag_mean'], stats['version_lag_max']) == (1.0, 2.5, 4.0)
    clock.now += 1.0
    again = trainer.stats(clock.now)   # a new period: no updates, the last losses are kept
    assert again['updates_per_sec'] == 0.0 and again['critic_loss'] == 2.0 and math.isnan(again['version_lag_mean'])


def test_duration_finishes_once_with_a_last_publish_and_close_does_not_repeat_it(tmp_path):
    trainer, out, clock = make(tmp_path, duration_s=5.0)
    trainer.start()
    clock.now += 5.0
    assert trainer.step(0.0) is True and trainer.finished_reason == 'duration'
    trainer.calls.clear()
    summary = trainer.finish()
    assert trainer.calls == ['unpublished_changes', 'finish_work', 'checkpoint_extra', 'save_files']
    assert summary['version'] == 2 and len(out.weights) == 2
    assert trainer.finish() == summary and len(out.weights) == 2      # idempotent
    trainer.close()
    trainer.close()
    assert trainer.calls[-1] == 'release' and 'close_unfinished' not in trainer.calls


def test_run_returns_the_summary_when_done_and_none_when_stopped_first(tmp_path):
    trainer, _out, clock = make(tmp_path / 'a', duration_s=5.0)
    stop = threading.Event()
    trainer.start()
    clock.now += 5.0
    assert trainer.run(stop, timeout=0.0) == trainer.summary() and trainer.finished
    trainer.close()
    stopped, _out, _clock = make(tmp_path / 'b', duration_s=5.0)
    stop.set()
    assert stopped.run(stop, timeout=0.0) is None and stopped.started_at is not None and not stopped.finished
    stopped.close()


def test_close_before_done_checkpoints_what_was_done(tmp_path):
    trainer, _out, _clock = make(tmp_path)
    trainer.start()
    trainer.step(0.0)
    trainer.close()
    assert trainer.calls[-4:] == ['close_unfinished', 'checkpoint_extra', 'save_files', 'release']
    assert (tmp_path / 'out' / CHECKPOINT_NAME).is_file() and not trainer.finished
    never_started, _out, _clock = make(tmp_path / 'other')
    never_started.close()
    assert never_started.calls == ['release']


def test_versions_continue_after_resume_and_after_a_hard_kill(tmp_path):
    trainer, out, _clock = make(tmp_path)
    trainer.start()
    trainer.step(0.0)
    assert trainer.save_checkpoint() is True
    trainer.publish_weights()
    trainer.publish_weights()                  # versions 2 and 3 published after the checkpoint, then a kill
    resumed, out2, _clock = make(tmp_path)
    assert resumed.resumed_from == 1 and resumed.updates == 1 and resumed.steps == 10
    assert resumed.restored['nan'] is None     # the checkpoint's extra data is strict JSON
    resumed.start()
    assert out2.weights[0].version == 4       # never a version a client may already hold
    fresh, _out, _clock = make(tmp_path, resume=False)
    assert fresh.resumed_from is None and fresh.updates == 0 and fresh.version == 4


def test_a_diverged_agent_is_neither_saved_nor_published(tmp_path):
    trainer, out, _clock = make(tmp_path)
    trainer.start()
    assert trainer.save_checkpoint() is True
    before = (tmp_path / 'out' / CHECKPOINT_NAME).read_bytes()
    next(trainer.agent.actor.parameters()).data.fill_(float('nan'))
    assert trainer.agent_is_finite() is False
    assert trainer.save_checkpoint() is False
    assert (tmp_path / 'out' / CHECKPOINT_NAME).read_bytes() == before
    assert trainer.publish_weights() is None and trainer.version == 1 and len(out.weights) == 1
    assert [level for level, _ in out.lines] == ['error', 'error']


def test_reconfigure_reschedules_from_now_and_refuses_fields_read_at_start(tmp_path):
    trainer, _out, clock = make(tmp_path)
    trainer.start()
    clock.now += 3.0
    config = trainer.reconfigure(stats_period_s=4.0, checkpoint_period_s=0.0)
    assert trainer.config is config and trainer._next_stats == clock.now + 4.0
    assert trainer._next_checkpoint == math.inf
    assert trainer.calls[-1] == ('reschedule', ('checkpoint_period_s', 'stats_period_s'))
    with pytest.raises(ValueError, match='seed cannot change while the learner runs'):
        trainer.reconfigure(seed=3)


def test_wake_ends_a_pause_at_once(tmp_path):
    trainer, _out, _clock = make(tmp_path)
    paused = threading.Event()
    done = threading.Event()

    def pause():
        paused.set()
        trainer._pause(30.0)
        done.set()

    thread = threading.Thread(target=pause, daemon=True)
    thread.start()
    assert paused.wait(5.0)
    trainer.wake()
    assert done.wait(5.0)
    thread.join(5.0)
    trainer._pause(30.0, ready=lambda: True)   # work ready: no wait at all


def test_small_parts():
    assert next_due(5.0, 0.0) == math.inf and next_due(5.0, 2.0) == 7.0
    period = Period()
    period.add_update({'critic_loss': 1.0, 'q_mean': 0.5, 'actor_loss': None})
    period.add_update({'critic_loss': 3.0, 'q_mean': 0.5, 'actor_loss': 2.0})
    assert (period.updates, period.critic_loss, period.actor_updates, period.actor_loss) == (2, 4.0, 1, 2.0)
    lag = LagStats()
    lag.add_one(2.0)
    lag.add_one(4.0)
    assert lag.snapshot() == (2.0, 3.0, 4.0) and all(math.isnan(v) for v in lag.snapshot())
