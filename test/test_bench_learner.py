"""bench/learner.py's accelerator path without a GPU: the cpu-vs-device check and --device handling.

The check trains two agents with the same seed on the same batches and compares their actors; on
a machine with CUDA the bench runs it cpu vs cuda. Here it runs cpu vs cpu (must match exactly),
and a different seed shows that a real difference is reported.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip('torch')

BENCH = Path(__file__).resolve().parents[1] / 'bench'


def _load_learner():
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))   # bench/learner.py imports bench/machine.py by module name
    spec = importlib.util.spec_from_file_location('bench_learner', BENCH / 'learner.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


learner = _load_learner()


def test_cpu_against_cpu_matches_exactly():
    # The block bench/learner.py writes under "cuda" (here the "device" is the cpu again).
    block = learner.correctness('cpu', updates=3)
    assert block['matches_cpu'] is True and block['max_abs_diff'] == 0.0
    assert set(block['correctness']) == {'updates', 'tolerance', 'ddpg', 'td3'}
    for algorithm in ('ddpg', 'td3'):
        assert block['correctness'][algorithm] == {'max_abs_diff': 0.0, 'matches': True, 'updates': 3,
                                                   'tolerance': 1e-3}


def test_a_real_difference_is_reported():
    batches = learner.fixed_batches(3, seed=0)
    a = learner.train_actor('td3', 'cpu', batches, seed=0)
    b = learner.train_actor('td3', 'cpu', batches, seed=1)   # other initial weights
    assert learner.max_abs_difference(a, b) > 1e-3
    assert learner.max_abs_difference(a, a) == 0.0
    renamed = {f'x{name}': value for name, value in b.items()}
    with pytest.raises(ValueError, match='parameter names differ'):
        learner.max_abs_difference(a, renamed)


def test_the_batches_train_the_actor():
    # Otherwise a check that compares untouched initial weights would always "match".
    batches = learner.fixed_batches(4, seed=0)
    trained = learner.train_actor('ddpg', 'cpu', batches, seed=0)
    untrained = learner.train_actor('ddpg', 'cpu', [], seed=0)
    assert learner.max_abs_difference(trained, untrained) > 0.0


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match='algorithm'):
        learner.compare_devices('sac', 'cpu', 'cpu')
    with pytest.raises(ValueError, match='updates'):
        learner.compare_devices('ddpg', 'cpu', 'cpu', updates=0)
    with pytest.raises(ValueError, match='tolerance'):
        learner.compare_devices('ddpg', 'cpu', 'cpu', tolerance=float('nan'))
    with pytest.raises(ValueError, match='device must be one of'):
        learner.accelerator('tpu')
    with pytest.raises(ValueError, match='equally long'):
        learner.paired_ratio([1.0], [1.0, 2.0])


def test_device_choice():
    assert learner.accelerator('cpu') is None
    if torch.cuda.is_available():
        assert learner.accelerator('auto') == learner.accelerator('cuda') == 'cuda'
    else:
        assert learner.accelerator('auto') is None
        with pytest.raises(ValueError, match='not available|is False'):
            learner.accelerator('cuda')


def test_paired_ratio_is_the_median_of_per_repeat_ratios():
    assert learner.paired_ratio([2.0, 9.0, 4.0], [1.0, 3.0, 4.0]) == pytest.approx(2.0)   # 2, 3, 1
