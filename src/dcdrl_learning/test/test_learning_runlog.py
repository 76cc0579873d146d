"""RunLogger: run directory layout, CSV and TensorBoard scalars, throttled progress lines."""
import io
import json
import re

import pytest

from dcdrl_learning.runlog import RunLogger, read_scalars_csv, run_name


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_run_name_layout_and_sanitising():
    assert run_name('Pendulum-v1', 'td3', 3, unix_time=1700000000) == 'Pendulum-v1__td3__3__1700000000'
    assert run_name('dcdrl_sim/MecOffload-v0', 'my exp', 0, 5) == 'dcdrl_sim-MecOffload-v0__my-exp__0__5'


def test_scalars_go_to_csv_and_tensorboard(tmp_path):
    with RunLogger('Pendulum-v1', 'ddpg', 1, root=tmp_path, print_every_s=None) as log:
        assert re.fullmatch(r'Pendulum-v1__ddpg__1__\d+', log.name)
        assert log.run_dir.parent == tmp_path
        log.log_scalars({'losses/critic_loss': 0.5, 'losses/actor_loss': None, 'charts/version_lag': 2}, step=10)
        log.log_scalar('charts/episodic_return', -123.25, step=200)
        log.write_config({'algorithm': 'ddpg', 'tau': 0.005})
    rows = read_scalars_csv(log.run_dir / 'scalars.csv')
    assert rows == [(10, 'losses/critic_loss', 0.5), (10, 'charts/version_lag', 2.0),
                    (200, 'charts/episodic_return', -123.25)]
    assert json.loads((log.run_dir / 'config.json').read_text()) == {'algorithm': 'ddpg', 'tau': 0.005}
    events = list(log.run_dir.glob('events.out.tfevents.*'))
    assert len(events) == 1

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(log.run_dir))
    acc.Reload()
    assert set(acc.Tags()['scalars']) == {'losses/critic_loss', 'charts/version_lag', 'charts/episodic_return'}
    (event,) = acc.Scalars('charts/episodic_return')
    assert event.step == 200 and event.value == pytest.approx(-123.25)
    with pytest.raises(RuntimeError, match='closed'):
        log.log_scalar('x', 1.0, 1)


def test_runs_in_the_same_second_get_distinct_directories(tmp_path):
    a = RunLogger('E', 'x', 0, root=tmp_path, tensorboard=False, print_every_s=None)
    b = RunLogger('E', 'x', 0, root=tmp_path, tensorboard=False, print_every_s=None)
    assert a.run_dir != b.run_dir and a.run_dir.exists() and b.run_dir.exists()
    a.close()
    b.close()


def test_progress_is_throttled_and_reports_sps(tmp_path):
    clock, out = FakeClock(), io.StringIO()
    log = RunLogger('E', 'x', 0, root=tmp_path, tensorboard=False, print_every_s=5.0, stream=out, clock=clock)
    log.log_scalars({'charts/episodic_return': -10.0, 'losses/critic_loss': 0.25}, step=0)
    assert log.progress(0)  # the first call prints
    clock.now += 1.0
    assert not log.progress(100)  # 1 s < 5 s: quiet
    clock.now += 4.0
    assert log.progress(1000)  # 5 s after the first line; 1000 steps in 5 s
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert 'SPS 200' in lines[1] and 'episodic_return -10' in lines[1] and 'critic_loss 0.25' in lines[1]
    assert log.progress(1001, force=True)
    log.close()
    assert ('charts/SPS' in {tag for _, tag, _ in read_scalars_csv(log.run_dir / 'scalars.csv')})


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='print_every_s'):
        RunLogger('E', 'x', 0, root=tmp_path, tensorboard=False, print_every_s=-1)
    log = RunLogger('E', 'x', 0, root=tmp_path, tensorboard=False, print_every_s=None)
    with pytest.raises(TypeError, match='step'):
        log.log_scalar('a', 1.0, step=1.5)
    assert not log.progress(5)  # printing disabled
    log.close()
