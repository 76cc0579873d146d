"""The bench suite's pure parts: summary adapters, last-JSON-line parsing, the generated page.

Hand-written JSON samples in the layout each bench script writes; no benchmark runs here.
"""
from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / 'bench'


def _load(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))   # the bench scripts import each other by module name
    spec = importlib.util.spec_from_file_location(f'bench_{name}', BENCH / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


summary = _load('summary')

TRANSPORT = {
    'benchmark': 'transport', 'quick': True,
    'results': {
        'experience/raw': {'bytes': 812, 'msgs_per_s': 5000.0, 'mb_per_s': 4.1, 'latency_p50_ms': 0.5,
                           'latency_p99_ms': 0.9},
        'experience/ours': {'bytes': 812, 'msgs_per_s': 10000.0, 'mb_per_s': 8.1, 'latency_p50_ms': 0.4,
                            'latency_p99_ms': 0.6},
        'weights/raw': {'bytes': 178444, 'msgs_per_s': 300.0, 'mb_per_s': 53.5, 'latency_p50_ms': 4.5,
                        'latency_p99_ms': 7.0},
        'weights/ours': {'bytes': 178444, 'msgs_per_s': 200.0, 'mb_per_s': 35.7, 'latency_p50_ms': 6.0,
                         'latency_p99_ms': 8.0},
    },
    'goals': {'throughput_ratio_min': 0.8, 'weights_latency_p50_ms_max': 5.0},
}
LEARNER = {'bench': 'learner', 'learner': {
    'dcdrl_ddpg': {'updates_per_s': 300.0}, 'sb3_ddpg': {'updates_per_s': 150.0},
    'dcdrl_td3': {'updates_per_s': 280.0, 'runs': [270.0, 300.0, 100.0]},
    'sb3_td3': {'updates_per_s': 200.0, 'runs': [100.0, 200.0, 100.0]},
    'dcdrl_sac': {'updates_per_s': 200.0}, 'sb3_sac': {'updates_per_s': 50.0}}}
REPLAY = {'capacity': 100000,
          'uniform': {'dcdrl': {'iter_us': 50.0, 'iters_per_s': 20000.0},
                      'cpprb': {'iter_us': 100.0, 'iters_per_s': 10000.0}, 'speedup_vs_cpprb': 2.0},
          'prioritized': {'dcdrl': {'iter_us': 200.0, 'iters_per_s': 5000.0},
                          'cpprb': 'skipped: cpprb not installed'}}
SCALING = {'benchmark': 'scaling', 'collection_steps_per_s': {'1': 10000.0, '2': 18000.0},
           'collection_efficiency_vs_linear': 0.9,
           'learner_updates_per_s': {'in_process': 100.0, 'replay_node': 95.0},
           'replay_node_loss': 0.05, 'time_to_target': None,
           'goals': {'collection_efficiency_min': 0.85, 'replay_node_loss_max': 0.10}}
EDGE_LOOP = {'benchmark': 'edge_loop', 'inference': {'numpy_us': 12.0, 'torch_eager_us': 30.0, 'ratio': 0.4},
             'goals_at': 1000.0,
             'loops': [{'rate_hz': 1000.0, 'steps': 10000, 'period_error_p99_us': 150.0, 'misses': 3,
                        'weight_delivery_p50_ms': 3.0},
                       {'rate_hz': 30.0, 'steps': 150, 'period_error_p99_us': 900.0, 'misses': 0,
                        'weight_delivery_p50_ms': 18.0}]}
ENVS = {'envs': {'dcdrl_sim/MecOffload-v0': {'single_steps_per_s': 10000.0, 'sync_x8_steps_per_s': 7000.0,
                                             'native_x8_steps_per_s': 40000.0, 'goal_vector_steps_per_s': 20000,
                                             'goal_met': True},
                 'dcdrl_sim/FaceOffload-v0': {'single_steps_per_s': 5000.0, 'sync_x8_steps_per_s': 4000.0}},
        'mec_oracle_ms_per_step': {'exact_symmetry': {'4': 1.0, '8': 4.0}, 'exact_full': {'4': 10.0},
                                   'best_response': {'4': 0.5, '10': 2.0}}}

FACE_OFFLOAD = {'bench': 'face_offload',
                'transport': {'local_wall_s': 0.5, 'round_trip_s': 1.0, 'server_compute_s': 0.4, 'overhead_ratio': 1.0,
                              'overhead_ratio_transport_probe': 0.05, 'goal_overhead_max': 0.1},
                'policy': {'policies': {'learned': {'latency_s': 3.0, 'cost': 4.0},
                                        'oracle': {'latency_s': 2.0, 'cost': 3.0},
                                        'full_offload': {'latency_s': 3.5, 'cost': 5.0}},
                           'best_fixed': 'full_offload', 'goal_oracle_gap_max': 0.05}}


def _by_measure(rows, text):
    found = [r for r in rows if text in r['measure']]
    assert len(found) == 1, (text, [r['measure'] for r in rows])
    return found[0]


def test_row_keys_are_uniform():
    rows = summary.summarise({'transport': TRANSPORT, 'learner': LEARNER, 'replay': REPLAY, 'scaling': SCALING,
                              'edge_loop': EDGE_LOOP, 'envs': ENVS})
    assert rows
    keys = {'bench', 'measure', 'ours', 'unit', 'reference', 'reference_name', 'ratio', 'ratio_method', 'goal',
            'met', 'note'}
    assert all(set(r) == keys for r in rows)
    json.dumps(rows)   # JSON-serialisable as they are


def test_transport_pairs_rounds_when_runs_are_given():
    # The layout bench/transport.py writes: every round's values under 'runs' on both sides.
    ours_runs = {'msgs_per_s': [100.0, 300.0, 200.0], 'latency_p50_ms': [1.0, 2.0, 1.0],
                 'latency_p99_ms': [2.0, 2.0, 2.0]}
    raw_runs = {'msgs_per_s': [100.0, 100.0, 50.0], 'latency_p50_ms': [2.0, 2.0, 4.0],
                'latency_p99_ms': [4.0, 1.0, 8.0]}
    result = {'results': {
        'experience/ours': {'bytes': 812, 'msgs_per_s': 200.0, 'latency_p50_ms': 1.0, 'latency_p99_ms': 2.0,
                            'runs': ours_runs},
        'experience/raw': {'bytes': 812, 'msgs_per_s': 100.0, 'latency_p50_ms': 2.0, 'latency_p99_ms': 4.0,
                           'runs': raw_runs}}}
    rows = summary.transport_rows(result)
    throughput = _by_measure(rows, 'throughput')   # ratios 1, 3, 4 -> 3 (medians would give 2)
    assert throughput['ratio'] == pytest.approx(3.0) and throughput['ratio_method'] == 'paired'
    p50 = _by_measure(rows, 'latency p50')   # 0.5, 1, 0.25 -> 0.5
    assert p50['ratio'] == pytest.approx(0.5) and p50['ratio_method'] == 'paired'
    p99 = _by_measure(rows, 'latency p99')   # 0.5, 2, 0.25 -> 0.5
    assert p99['ratio'] == pytest.approx(0.5) and p99['ratio_method'] == 'paired'


def test_transport_ratios_and_goals():
    rows = summary.transport_rows(TRANSPORT)
    experience = _by_measure(rows, 'one MEC transition (812 B): throughput')
    assert experience['ratio'] == pytest.approx(2.0)
    assert experience['reference_name'] == 'raw cyclonedds-python'
    assert experience['met'] is True and experience['goal'] == 'ratio >= 0.8'
    weights = _by_measure(rows, 'actor weights (178444 B): throughput')
    assert weights['ratio'] == pytest.approx(2 / 3) and weights['met'] is False
    latency = _by_measure(rows, 'actor weights (178444 B): latency p50')
    assert latency['goal'] == '<= 5 ms' and latency['met'] is False   # 6 ms
    assert _by_measure(rows, 'one MEC transition (812 B): latency p50')['met'] is None   # no goal there


def test_transport_rows_against_rclpy_and_the_mixed_pairs():
    # The layout bench/transport.py writes with a ROS 2: 'PAYLOAD/rclpy' and the mixed pairs beside ours.
    result = {**TRANSPORT, 'rclpy': {'rmw': 'rmw_cyclonedds_cpp', 'ros_distro': 'jazzy'},
              'goals': {**TRANSPORT['goals'], 'rclpy_throughput_ratio_min': 1.0, 'rclpy_latency_p50_ratio_max': 1.0},
              'results': {**TRANSPORT['results'],
                          'weights/rclpy': {'bytes': 178444, 'msgs_per_s': 250.0, 'mb_per_s': 44.6,
                                            'latency_p50_ms': 5.0, 'latency_p99_ms': 9.0},
                          'weights/ours->rclpy': {'bytes': 178444, 'msgs_per_s': 225.0, 'mb_per_s': 40.1,
                                                  'latency_p50_ms': 5.5, 'latency_p99_ms': 9.0}}}
    rows = summary.transport_rows(result)
    throughput = _by_measure(rows, 'actor weights (178444 B) vs rclpy: throughput')   # 200 / 250
    assert throughput['ratio'] == pytest.approx(0.8) and throughput['met'] is False
    assert throughput['goal'] == 'ratio >= 1' and '35.7 MB/s vs 44.6 MB/s' in throughput['note']
    assert throughput['reference_name'] == 'rclpy, rmw_cyclonedds_cpp (jazzy)'
    p50 = _by_measure(rows, 'actor weights (178444 B) vs rclpy: latency p50')   # 6 / 5
    assert p50['ratio'] == pytest.approx(1.2) and p50['goal'] == 'ratio <= 1' and p50['met'] is False
    mixed = _by_measure(rows, 'actor weights (178444 B) ours -> rclpy: throughput')
    assert mixed['ratio'] == pytest.approx(0.9) and mixed['met'] is None
    assert not [r for r in rows if 'one MEC transition' in r['measure'] and 'rclpy' in r['measure']]   # not run


def test_learner_paired_ratio_when_runs_are_given():
    rows = summary.learner_rows(LEARNER)
    ddpg, td3 = _by_measure(rows, 'DDPG'), _by_measure(rows, 'TD3')
    assert ddpg['ratio'] == pytest.approx(2.0) and ddpg['ratio_method'] == 'medians' and ddpg['met'] is None
    # Pairs 2.7, 1.5, 1.0 -> median 1.5 (the ratio of medians would be 1.4).
    assert td3['ratio'] == pytest.approx(1.5) and td3['ratio_method'] == 'paired'
    assert td3['met'] is False and td3['reference_name'] == 'stable-baselines3'   # the goal is >= 3x
    sac = _by_measure(rows, 'SAC')
    assert sac['ratio'] == pytest.approx(4.0) and sac['met'] is True


def test_learner_missing_sb3_keeps_the_reason():
    result = {'learner': {'dcdrl_td3': {'updates_per_s': 250.0},
                          'sb3_td3': 'skipped: stable_baselines3 not installed'}}
    (row,) = summary.learner_rows(result)
    assert row['reference'] is None and row['ratio'] is None and row['met'] is None
    assert 'not installed' in row['note']


def test_learner_cuda_rows():
    result = {'learner': {'dcdrl_td3': {'updates_per_s': 250.0}},
              'cuda': {'device_name': 'H100', 'dcdrl_td3': {'updates_per_s': 1000.0}, 'matches_cpu': False,
                       'max_abs_diff': 0.5}}
    rows = summary.learner_rows(result)
    assert _by_measure(rows, 'on H100')['ratio'] == pytest.approx(4.0)
    assert _by_measure(rows, 'CUDA path')['met'] is False


def test_learner_cuda_rows_pair_with_cpu_and_sb3_runs():
    # The layout bench/learner.py writes with a GPU: cuda runs took turns with the cpu ones.
    result = {'learner': {'dcdrl_td3': {'updates_per_s': 200.0, 'runs': [100.0, 200.0, 400.0]}},
              'cuda': {'device_name': 'H200', 'dcdrl_td3': {'updates_per_s': 1000.0, 'runs': [300.0, 1000.0, 800.0]},
                       'sb3_td3': {'updates_per_s': 500.0, 'runs': [300.0, 500.0, 200.0]},
                       'matches_cpu': True, 'max_abs_diff': 1e-6}}
    rows = summary.learner_rows(result)
    on_gpu = _by_measure(rows, 'TD3 updates/s on H200')   # ratios 3, 5, 2 -> 3 (medians: 5)
    assert on_gpu['ratio'] == pytest.approx(3.0) and on_gpu['ratio_method'] == 'paired'
    assert on_gpu['reference_name'] == 'ours on cpu'
    versus = _by_measure(rows, 'both on H200')   # ratios 1, 2, 4 -> 2
    assert versus['ratio'] == pytest.approx(2.0) and versus['reference_name'] == 'stable-baselines3 on H200'
    check = _by_measure(rows, 'CUDA path')
    assert check['met'] is True and check['ours'] == pytest.approx(1e-6)


def test_replay_rows_and_skipped_library():
    rows = summary.replay_rows(REPLAY)
    uniform = _by_measure(rows, 'uniform')
    assert uniform['ratio'] == pytest.approx(2.0) and uniform['met'] is True and uniform['reference_name'] == 'cpprb'
    prioritised = _by_measure(rows, 'prioritised')
    assert prioritised['reference'] is None and prioritised['met'] is None and 'skipped' in prioritised['note']


def test_replay_rows_come_from_the_learner_when_replay_did_not_run():
    rows = summary.summarise({'learner': {**LEARNER, 'replay': REPLAY}})
    assert any(r['bench'] == 'replay' for r in rows)


def test_scaling_against_linear_and_in_process():
    rows = summary.scaling_rows(SCALING)
    two = _by_measure(rows, 'collection, 2 clients')
    assert two['reference'] == 20000.0 and two['ratio'] == pytest.approx(0.9) and two['met'] is True
    node = _by_measure(rows, 'replay node')
    assert node['ratio'] == pytest.approx(0.95) and node['met'] is True and node['goal'] == 'ratio >= 0.9'
    slow = {**SCALING, 'learner_updates_per_s': {'in_process': 100.0, 'replay_node': 85.0}}
    assert _by_measure(summary.scaling_rows(slow), 'replay node')['met'] is False


def test_scaling_pairs_rounds_when_runs_are_given():
    runs = {'collection_1': [100.0, 200.0, 100.0], 'collection_2': [200.0, 200.0, 150.0],
            'in_process': [10.0, 20.0, 10.0], 'replay_node': [10.0, 10.0, 8.0]}
    result = {**SCALING, 'collection_steps_per_s': {'1': 100.0, '2': 200.0},
              'learner_updates_per_s': {'in_process': 10.0, 'replay_node': 10.0}, 'runs': runs}
    rows = summary.scaling_rows(result)
    two = _by_measure(rows, 'collection, 2 clients')   # 200/200, 200/400, 150/200 -> 0.75 (medians: 1.0)
    assert two['ratio'] == pytest.approx(0.75) and two['ratio_method'] == 'paired' and two['met'] is False
    node = _by_measure(rows, 'replay node')   # 1.0, 0.5, 0.8 -> 0.8 (medians: 1.0)
    assert node['ratio'] == pytest.approx(0.8) and node['ratio_method'] == 'paired' and node['met'] is False
    # A round without a number (NaN from a window with too few stats messages): medians instead.
    nan_runs = {**runs, 'collection_1': [100.0, float('nan'), 100.0]}
    two = _by_measure(summary.scaling_rows({**result, 'runs': nan_runs}), 'collection, 2 clients')
    assert two['ratio_method'] == 'medians' and two['ratio'] == pytest.approx(1.0)


def test_envs_native_vs_sync_pairs_when_runs_are_given():
    entry = {'native_x8_steps_per_s': 300.0, 'sync_x8_steps_per_s': 100.0,
             'runs': {'native_x8': [300.0, 200.0, 400.0], 'sync_x8': [100.0, 100.0, 200.0]}}
    rows = summary.envs_rows({'envs': {'dcdrl_sim/MecOffload-v0': entry}})
    native = _by_measure(rows, 'native vector env')   # 3, 2, 2 -> 2 (medians: 3)
    assert native['ratio'] == pytest.approx(2.0) and native['ratio_method'] == 'paired'


def test_edge_loop_goals_only_at_the_judged_rate():
    rows = summary.edge_loop_rows(EDGE_LOOP)
    inference = _by_measure(rows, 'inference')
    assert inference['ratio'] == pytest.approx(0.4) and inference['met'] is False
    assert inference['goal'] == 'ratio <= 0.3'
    assert _by_measure(rows, '1000 Hz: period error p99')['met'] is True
    assert _by_measure(rows, '1000 Hz: deadline misses')['met'] is False
    assert _by_measure(rows, '1000 Hz: weight delivery')['met'] is True
    assert _by_measure(rows, '30 Hz: period error p99')['met'] is None
    assert _by_measure(rows, '30 Hz: weight delivery')['goal'] is None


def test_edge_loop_goals_only_for_the_judged_loop_variant_and_the_floor_is_shown():
    result = {**EDGE_LOOP, 'goals_loop': 'process',
              'loops': [{**EDGE_LOOP['loops'][0], 'loop': 'process', 'misses': 0},
                        {**EDGE_LOOP['loops'][0], 'loop': 'thread', 'period_error_p99_us': 700.0}],
              'platform_floor': [{'rate_hz': 1000.0, 'steps': 10000, 'misses': 2, 'period_error_p99_us': 90.0,
                                  'cpu_steal_s': 0.1}]}
    rows = summary.edge_loop_rows(result)
    assert _by_measure(rows, '1000 Hz loop process: deadline misses')['met'] is True
    assert _by_measure(rows, '1000 Hz loop thread: period error p99')['met'] is None
    floor = _by_measure(rows, '1000 Hz platform floor: deadline misses')
    assert floor['ours'] == 2 and floor['met'] is None and 'steal' in floor['note']


def test_envs_native_vs_sync_and_oracle():
    rows = summary.envs_rows(ENVS)
    mec = _by_measure(rows, 'MecOffload-v0: native vector env x8')
    assert mec['ratio'] == pytest.approx(40000 / 7000) and mec['met'] is True
    face = _by_measure(rows, 'FaceOffload-v0: SyncVectorEnv x8')
    assert face['reference'] is None and face['goal'] is None
    assert _by_measure(rows, 'exact search N=4')['ratio'] == pytest.approx(0.1)
    assert _by_measure(rows, 'exact search N=8')['reference'] is None
    assert _by_measure(rows, 'best response N=10')['ours'] == 2.0
    assert not [r for r in rows if r['measure'] == 'MEC oracle, best response N=4']   # exact rows cover N=4


def test_face_offload_against_local_the_oracle_and_the_seed():
    rows = summary.face_offload_rows(FACE_OFFLOAD)
    frame = _by_measure(rows, 'frame offloaded')
    assert frame['ratio'] == pytest.approx(2.0) and frame['reference_name'].startswith('recognised locally')
    assert _by_measure(rows, 'overhead')['met'] is True
    seed = _by_measure(rows, 'offloaded / local')
    assert seed['ours'] == pytest.approx(2.0) and seed['reference'] == pytest.approx(1644 / 4891)
    assert seed['ratio'] is None   # a published figure on other hardware: shown, not divided
    oracle = [r for r in rows if r['reference_name'] == 'the true-cost oracle' and r['unit'] == 's']
    assert len(oracle) == 1 and oracle[0]['ratio'] == pytest.approx(1.5) and oracle[0]['met'] is False
    assert oracle[0]['goal'] == 'ratio <= 1.05'
    fixed = [r for r in rows if r['reference_name'] == 'best fixed policy (full_offload)']
    assert fixed[0]['ratio'] == pytest.approx(3.0 / 3.5)


def test_recording_rows_judge_throughput_drops_and_cpu_against_ros2_bag():
    side = {'msgs_per_s': 176.0, 'mb_per_s': 11.8, 'dropped': 0, 'cpu_s_per_mb': 0.006}
    result = {'duration_s': 30.0, 'record': {'ours': side, 'ros2': dict(side, msgs_per_s=160.0, cpu_s_per_mb=0.004)},
              'play': {'ours': {'error_p99_ms': 8.0, 'received': 10, 'expected': 10},
                       'ros2': {'error': 'ros2: nothing received'}}}
    rows = summary.recording_rows(result)
    assert _by_measure(rows, 'messages/s written')['ratio'] == pytest.approx(1.1)
    assert _by_measure(rows, 'messages/s written')['met'] is True
    assert _by_measure(rows, 'dropped')['met'] is True
    cpu = _by_measure(rows, 'CPU per MB')
    assert cpu['ratio'] == pytest.approx(1.5) and cpu['met'] is False and cpu['goal'] == 'ratio <= 1'
    play = _by_measure(rows, 'timing error p99')
    assert play['reference'] is None and 'nothing received' in play['note'] and '10 of 10' in play['note']
    assert _by_measure(summary.recording_rows({'record': {'ours': dict(side, dropped=3)}}), 'dropped')['met'] is False


def test_unknown_and_missing_benches_are_skipped_but_own_rows_pass_through():
    own = {'summary': [{'measure': 'weights over 0.06 Mbit/s', 'ours': 0.3, 'unit': '', 'reference': 0.336,
                        'reference_name': 'DC-DRL testbed', 'goal': '<= 0.5', 'met': True},
                       {'no measure': 1}]}
    rows = summary.summarise({'bandwidth': own, 'mystery': {'x': 1}, 'transport': None, 'envs': 'text'})
    assert len(rows) == 1
    assert rows[0]['bench'] == 'bandwidth' and rows[0]['ratio'] == pytest.approx(0.3 / 0.336)
    assert rows[0]['met'] is True and rows[0]['goal'] == '<= 0.5'


def test_a_changed_layout_gives_an_error_row_not_an_exception(monkeypatch):
    def broken(result):
        return result['renamed_key']
    monkeypatch.setitem(summary.ADAPTERS, 'edge_loop', broken)
    rows = summary.summarise({'edge_loop': EDGE_LOOP, 'scaling': SCALING})
    failed = [r for r in rows if r['bench'] == 'edge_loop']
    assert len(failed) == 1 and failed[0]['measure'] == 'adapter failed' and 'renamed_key' in failed[0]['note']
    assert any(r['bench'] == 'scaling' for r in rows)   # the others still summarised


def test_values_that_are_not_numbers_are_none():
    r = summary.row('x', 'm', float('nan'), 'u', 'skipped', 'ref', goal_on='value', goal=1.0)
    assert r['ours'] is None and r['reference'] is None and r['ratio'] is None and r['met'] is None
    with pytest.raises(ValueError, match='goal_on'):
        summary.row('x', 'm', 1.0, 'u', goal_on='ours', goal=1.0)
    with pytest.raises(ValueError, match='operator'):
        summary.judge(1.0, '>', 0.0)


def test_paired_ratio_needs_equal_length_numeric_runs():
    assert summary.paired_ratio([2.0, 4.0], [1.0, 1.0]) == pytest.approx(3.0)
    assert summary.paired_ratio([2.0], [1.0, 1.0]) is None
    assert summary.paired_ratio([2.0, 'x'], [1.0, 1.0]) is None
    assert summary.paired_ratio([2.0], [0.0]) is None


def test_seed_figures_have_sources():
    for figure in summary.SEED_FIGURES.values():
        assert figure['source'] and figure['unit'] and figure['what']
    assert summary.DCDRL_OFFLOAD_OVER_LOCAL == pytest.approx(1644 / 4891)


def test_last_json_line_skips_trailing_noise():
    run_all = _load('run_all')
    text = 'human line\n{"a": 1}\n{not json\n[1, 2]\n'
    assert run_all.last_json_line(text) == {'a': 1}
    assert run_all.last_json_line('no json here') is None


def test_rendered_page_has_a_table_per_bench(tmp_path):
    render = _load('render_results')
    results = {'started': '2026-11-22T00:00:00+00:00', 'quick': True, 'git_commit': 'abc', 'wall_s': 100.0,
               'machine': {'cpus': 2, 'cpu': 'Test CPU', 'platform': 'Linux', 'load_average': [1.0, 1.0, 1.0],
                           'cuda': None},
               'interpreters': {'comparison': {'path': '/x/python', 'python': '3.11.7', 'torch': '2.13.0',
                                               'stable-baselines3': '2.3'}},
               'benches': {'transport': {'ok': True, 'wall_s': 20.0, 'json': TRANSPORT},
                           'learner': {'ok': False, 'wall_s': 5.0, 'json': None, 'error': 'exit code 1: boom'},
                           'bandwidth': {'ok': False, 'skipped': 'needs root', 'wall_s': None, 'json': None}}}
    page = render.render(results, {'transport': 'img/bench/transport.png'}, None)
    assert 'Test CPU' in page and 'quick' in page and 'stable-baselines3 2.3' in page
    assert '| transport | ok | 20 s | 1 of 3 |' in page
    assert 'failed**: exit code 1: boom' in page and 'skipped: needs root' in page
    assert '![transport](img/bench/transport.png)' in page
    assert '| one MEC transition (812 B): throughput | 10,000 msg/s | 5,000 (raw cyclonedds-python) | 2.00x' in page
    assert '4,891' in page   # the seeds' published figures


def test_one_bench_run_updates_only_its_section_and_overview_row():
    render = _load('render_results')
    machine = {'cpus': 2, 'cpu': 'Test CPU', 'platform': 'Linux', 'load_average': [1.0, 1.0, 1.0], 'cuda': None}
    full = {'started': '2026-11-22T00:00:00+00:00', 'machine': machine,
            'benches': {'transport': {'ok': True, 'wall_s': 20.0, 'json': TRANSPORT}}}
    page = render.render(full, {}, None)
    side = {'msgs_per_s': 100.0, 'mb_per_s': 5.0, 'dropped': 0, 'cpu_s_per_mb': 0.01}
    alone = {'started': '2026-12-06T00:00:00+00:00', 'machine': dict(machine, cpu='Other CPU'),
             'benches': {'recording': {'ok': True, 'wall_s': 60.0, 'json': {'record': {'ours': side, 'ros2': side}}}}}
    once = render.update_bench(page, alone, 'recording', 'runs/bench/x/results.json')
    assert once.startswith(page.split('## Overview')[0])   # the full run's header stays
    assert '| transport | ok | 20 s |' in once and '| recording | ok | 60 s | 3 of 3 |' in once
    section = once.split('## Recording and playback')[1].split('## Published figures')[0]
    assert 'Other CPU' in section and 'runs/bench/x/results.json' in section and '| bag record: MB/s' in section
    again = render.update_bench(once, alone, 'recording', 'runs/bench/x/results.json')
    assert again == once   # replaced, not added twice


def test_copy_charts_refuses_files_over_1_mb(tmp_path):
    render = _load('render_results')
    run_dir, images = tmp_path / 'run', tmp_path / 'img'
    run_dir.mkdir()
    (run_dir / 'small.png').write_bytes(b'x' * 10)
    (run_dir / 'huge.png').write_bytes(b'x' * (render.PNG_MAX_BYTES + 1))
    copied = render.copy_charts(run_dir, images)
    assert copied == {'small': 'img/bench/small.png'}
    assert not (images / 'huge.png').exists()


def test_run_all_records_failures_and_goes_on(tmp_path, monkeypatch):
    run_all = _load('run_all')
    scripts = {
        'good': 'import json, sys\nprint("human line")\nprint(json.dumps({"quick": "--quick" in sys.argv}))\n',
        'broken': 'raise SystemExit("something went wrong")\n',
        'silent': 'print("no json")\n',
    }
    benches = []
    for name, code in scripts.items():
        (tmp_path / f'{name}.py').write_text(code)
        benches.append(run_all.Bench(name, script_path=tmp_path / f'{name}.py'))
    benches.append(run_all.Bench('absent', script_path=tmp_path / 'absent.py'))
    benches.append(run_all.Bench('needs_root', script_path=tmp_path / 'good.py', unavailable=lambda: 'needs root'))
    monkeypatch.setattr(run_all, 'BENCHES', tuple(benches))
    monkeypatch.setattr(run_all, 'machine_info', lambda: {'cpus': 1})
    out = tmp_path / 'runs'
    code = run_all.main(['--quick', '--no-charts', '--out', str(out), '--python', sys.executable,
                         '--product-python', sys.executable, '--timeout-s', '60'])
    assert code == 0   # one bench succeeded
    (run_dir,) = out.iterdir()
    results = json.loads((run_dir / 'results.json').read_text())
    records = results['benches']
    assert records['good']['ok'] is True and records['good']['json'] == {'quick': True}
    assert records['broken']['ok'] is False and 'something went wrong' in records['broken']['error']
    assert records['silent']['ok'] is False and 'no JSON' in records['silent']['error']
    assert 'not found' in records['absent']['skipped'] and records['needs_root']['skipped'] == 'needs root'
    assert 'human line' in (run_dir / 'good.log').read_text()
    assert results['quick'] is True and results['interpreters']['comparison']['path'] == sys.executable

    broken_only = tuple(b for b in run_all.BENCHES if b.name == 'broken')
    monkeypatch.setattr(run_all, 'BENCHES', broken_only)
    assert run_all.main(['--no-charts', '--out', str(out), '--python', sys.executable,
                         '--product-python', sys.executable]) == 1   # every bench that ran failed
    assert len(list(out.iterdir())) == 2   # a second run in the same second gets its own folder


def test_run_all_ends_a_bench_past_its_time_limit(tmp_path, monkeypatch):
    run_all = _load('run_all')
    # The bench starts a child in its own process group: both must be gone after the time limit.
    (tmp_path / 'slow.py').write_text(
        'import subprocess, sys, time\n'
        'child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])\n'
        'print(child.pid, flush=True)\n'
        'time.sleep(120)\n')
    monkeypatch.setattr(run_all, 'BENCHES', (run_all.Bench('slow', script_path=tmp_path / 'slow.py'),))
    monkeypatch.setattr(run_all, 'machine_info', lambda: {'cpus': 1})
    out = tmp_path / 'runs'
    assert run_all.main(['--no-charts', '--out', str(out), '--python', sys.executable, '--product-python',
                         sys.executable, '--timeout-s', '3']) == 1
    (run_dir,) = out.iterdir()
    record = json.loads((run_dir / 'results.json').read_text())['benches']['slow']
    assert record['ok'] is False and record['error'] == 'timed out after 3 s'
    child_pid = int((run_dir / 'slow.log').read_text().splitlines()[1])
    assert _ended_within(child_pid, 10.0), f"the bench's child {child_pid} is still running"


def _ended_within(pid: int, timeout_s: float) -> bool:
    """True once pid is gone or a zombie (the signal may take a moment to land on a loaded machine)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with open(f'/proc/{pid}/stat') as stat:
                if stat.read().rsplit(')', 1)[1].split()[0] in ('Z', 'X'):
                    return True
        except (FileNotFoundError, ProcessLookupError):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)   # polling interval of a bounded wait
