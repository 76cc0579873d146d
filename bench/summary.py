"""Uniform summary rows from the benches' JSON results, one small adapter per bench.

A row: {bench, measure, ours, unit, reference, reference_name, ratio, ratio_method, goal, met, note}.
- `ours` and `reference` are in `unit`; `reference` was measured in the same run (or is a
  published figure, named in `reference_name`); None when the bench has no side-by-side.
- `ratio` is always ours / reference in that unit (so > 1 is better for rates, < 1 for times).
  `ratio_method` says how: 'paired' = median over repeats of each repeat's own ratio (when the
  bench reports per-repeat values under 'runs' on both sides), 'medians' = median / median of the
  same run (where a bench or a row has no per-repeat values), 'bench' = taken from the bench's own JSON.
- `goal` is the row's goal in words ('ratio >= 0.8', '<= 5 ms'); `met` True/False, None when no goal.

Each adapter reads the keys its script writes (see bench/<name>.py); a bench missing from the
input, or one without an adapter and without its own 'summary' list, gives no rows. A bench
script may also emit `"summary": [{measure, ours, unit, reference, reference_name, goal, met}]`
itself (face_offload, bandwidth): those rows are taken as they are.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from typing import Any

Row = dict[str, Any]

# ---------------------------------------------------------------------------
# The seeds' published figures (references where a bench measures the same thing)
# ---------------------------------------------------------------------------
CLOUD_EDGE_SOURCE = ('Cao, Theile, Wyrwal, Caccamo, "Cloud-Edge Training Architecture for Sim-to-Real Deep '
                     'Reinforcement Learning", IROS 2022 (arXiv 2203.02230), paper and repository plots')
DCDRL_SOURCE = ('"Distributed and Collective Deep Reinforcement Learning for Computation Offloading: '
                'A Practical Perspective", IEEE TPDS 2021, the repository\'s testbed logs')
SEED_FIGURES: dict[str, dict[str, Any]] = {
    'cloud_edge_weights_transfer_s': {
        'value': 23.0, 'unit': 's', 'source': CLOUD_EDGE_SOURCE,
        'what': 'a ~179 KB actor sent at 0.06 Mbit/s (bandwidth emulated by delaying the send)',
        'conditions': {'payload_bytes': 179_000, 'bandwidth_mbit_s': 0.06}},
    'cloud_edge_convergence_steps': {
        'value': (13_000, 18_000), 'unit': 'steps', 'source': CLOUD_EDGE_SOURCE,
        'what': 'steps to converge on the real rig after sim pretraining (well-chosen friction), 5 runs'},
    'cloud_edge_convergence_steps_low_bandwidth': {
        'value': (24_000, 55_000), 'unit': 'steps', 'source': CLOUD_EDGE_SOURCE,
        'what': 'steps to converge at 0.06 to 15 Mbit/s (above 50 Mbit/s: 18 k to 25 k)'},
    'dcdrl_face_local_s': {
        'value': 4891.0, 'unit': 's', 'source': DCDRL_SOURCE,
        'what': '23 face-recognition clips, all processed locally on the Raspberry Pi 3B'},
    'dcdrl_face_offloaded_s': {
        'value': 1644.0, 'unit': 's', 'source': DCDRL_SOURCE,
        'what': 'the same 23 clips, all offloaded to the edge server'},
}
# Offloaded / local time of the seed's testbed: 0.336 (offloading made the clips 2.97x faster).
DCDRL_OFFLOAD_OVER_LOCAL = SEED_FIGURES['dcdrl_face_offloaded_s']['value'] / SEED_FIGURES['dcdrl_face_local_s']['value']


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    """A finite float, or None (missing, a 'skipped: ...' string, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def paired_ratio(ours_runs: Any, reference_runs: Any) -> float | None:
    """Median over repeats of ours_i / reference_i (the repeats took turns, so pair i saw the same load)."""
    if not isinstance(ours_runs, list) or not isinstance(reference_runs, list):
        return None
    if len(ours_runs) != len(reference_runs) or not ours_runs:
        return None
    ratios = []
    for mine, theirs in zip(ours_runs, reference_runs):
        mine, theirs = _number(mine), _number(theirs)
        if mine is None or not theirs:
            return None
        ratios.append(mine / theirs)
    return statistics.median(ratios)


def judge(value: float | None, op: str, threshold: float) -> bool | None:
    if value is None:
        return None
    if op == '>=':
        return value >= threshold
    if op == '<=':
        return value <= threshold
    if op == '<':
        return value < threshold
    if op == '==':
        return value == threshold
    raise ValueError(f"goal operator must be one of '>=', '<=', '<', '==', got {op!r}")


def row(bench: str, measure: str, ours: Any, unit: str, reference: Any = None, reference_name: str | None = None,
        *, ratio: float | None = None, ratio_method: str | None = None,
        goal_on: str | None = None, goal_op: str = '>=', goal: float | None = None,
        goal_unit: str = '', note: str | None = None,
        ours_runs: Any = None, reference_runs: Any = None) -> Row:
    """One summary row. goal_on: 'ratio' or 'value' (ours) or None; the row's `goal` is its text."""
    ours_n, reference_n = _number(ours), _number(reference)
    if ratio is None:
        ratio = paired_ratio(ours_runs, reference_runs)
        if ratio is not None:
            ratio_method = 'paired'
        elif ours_n is not None and reference_n:
            ratio, ratio_method = ours_n / reference_n, 'medians'
    elif ratio_method is None:
        ratio_method = 'bench'
    goal_text, met = None, None
    if goal_on is not None and goal is not None:
        if goal_on == 'ratio':
            goal_text, met = f'ratio {goal_op} {goal:,g}', judge(ratio, goal_op, goal)
        elif goal_on == 'value':
            goal_text, met = f'{goal_op} {goal:,g} {goal_unit or unit}'.strip(), judge(ours_n, goal_op, goal)
        else:
            raise ValueError(f"goal_on must be 'ratio' or 'value', got {goal_on!r}")
    return {'bench': bench, 'measure': measure, 'ours': ours_n, 'unit': unit, 'reference': reference_n,
            'reference_name': reference_name if reference_n is not None else None,
            'ratio': ratio, 'ratio_method': ratio_method if ratio is not None else None,
            'goal': goal_text, 'met': met, 'note': note}


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _runs(entry: Any) -> Any:
    return _dict(entry).get('runs')


# ---------------------------------------------------------------------------
# Adapters, one per bench script (keys as each script writes them)
# ---------------------------------------------------------------------------
def transport_rows(result: dict) -> list[Row]:
    rows = []
    results = _dict(result.get('results'))
    goals = _dict(result.get('goals'))
    throughput_goal = _number(goals.get('throughput_ratio_min')) or 0.8
    latency_goal = _number(goals.get('weights_latency_p50_ms_max')) or 5.0
    names = {'experience': 'one MEC transition', 'weights': 'actor weights'}
    for payload in ('experience', 'weights'):
        ours, raw = _dict(results.get(f'{payload}/ours')), _dict(results.get(f'{payload}/raw'))
        if not ours:
            continue
        label = f'{names[payload]} ({ours.get("bytes", "?")} B)'
        reference_name = 'raw cyclonedds-python'
        ours_runs, raw_runs = _dict(ours.get('runs')), _dict(raw.get('runs'))
        rows.append(row('transport', f'{label}: throughput', ours.get('msgs_per_s'), 'msg/s',
                        raw.get('msgs_per_s'), reference_name, goal_on='ratio', goal=throughput_goal,
                        ours_runs=ours_runs.get('msgs_per_s'), reference_runs=raw_runs.get('msgs_per_s')))
        rows.append(row('transport', f'{label}: latency p50', ours.get('latency_p50_ms'), 'ms',
                        raw.get('latency_p50_ms'), reference_name,
                        ours_runs=ours_runs.get('latency_p50_ms'), reference_runs=raw_runs.get('latency_p50_ms'),
                        **({'goal_on': 'value', 'goal_op': '<=', 'goal': latency_goal}
                           if payload == 'weights' else {})))
        rows.append(row('transport', f'{label}: latency p99', ours.get('latency_p99_ms'), 'ms',
                        raw.get('latency_p99_ms'), reference_name,
                        ours_runs=ours_runs.get('latency_p99_ms'), reference_runs=raw_runs.get('latency_p99_ms')))
        rows += _transport_rclpy_rows(result, payload, label, ours)
    return rows


def _transport_rclpy_rows(result: dict, payload: str, label: str, ours: dict) -> list[Row]:
    """ours -> ours against rclpy -> rclpy (the wire goals), and the mixed pairs against rclpy -> rclpy."""
    results, goals = _dict(result.get('results')), _dict(result.get('goals'))
    rclpy = _dict(results.get(f'{payload}/rclpy'))
    if not rclpy:
        return []
    info = _dict(result.get('rclpy'))
    reference_name = f'rclpy, {info.get("rmw") or "rmw"} ({info.get("ros_distro") or "ROS 2"})'
    throughput_goal = _number(goals.get('rclpy_throughput_ratio_min')) or 1.0
    latency_goal = _number(goals.get('rclpy_latency_p50_ratio_max')) or 1.0
    ours_runs, rclpy_runs = _dict(ours.get('runs')), _dict(rclpy.get('runs'))

    def mb_note(side: dict) -> str | None:
        mine, theirs = _number(side.get('mb_per_s')), _number(rclpy.get('mb_per_s'))
        return f'{mine:.1f} MB/s vs {theirs:.1f} MB/s' if mine is not None and theirs is not None else None

    rows = [
        row('transport', f'{label} vs rclpy: throughput', ours.get('msgs_per_s'), 'msg/s', rclpy.get('msgs_per_s'),
            reference_name, goal_on='ratio', goal=throughput_goal, note=mb_note(ours),
            ours_runs=ours_runs.get('msgs_per_s'), reference_runs=rclpy_runs.get('msgs_per_s')),
        row('transport', f'{label} vs rclpy: latency p50', ours.get('latency_p50_ms'), 'ms',
            rclpy.get('latency_p50_ms'), reference_name, goal_on='ratio', goal_op='<=', goal=latency_goal,
            ours_runs=ours_runs.get('latency_p50_ms'), reference_runs=rclpy_runs.get('latency_p50_ms')),
        row('transport', f'{label} vs rclpy: latency p99', ours.get('latency_p99_ms'), 'ms',
            rclpy.get('latency_p99_ms'), reference_name,
            ours_runs=ours_runs.get('latency_p99_ms'), reference_runs=rclpy_runs.get('latency_p99_ms')),
    ]
    for mixed in ('ours->rclpy', 'rclpy->ours'):
        side = _dict(results.get(f'{payload}/{mixed}'))
        if not side:
            continue
        side_runs = _dict(side.get('runs'))
        rows.append(row('transport', f'{label} {mixed.replace("->", " -> ")}: throughput', side.get('msgs_per_s'),
                        'msg/s', rclpy.get('msgs_per_s'), reference_name, note=mb_note(side),
                        ours_runs=side_runs.get('msgs_per_s'), reference_runs=rclpy_runs.get('msgs_per_s')))
        rows.append(row('transport', f'{label} {mixed.replace("->", " -> ")}: latency p50',
                        side.get('latency_p50_ms'), 'ms', rclpy.get('latency_p50_ms'), reference_name,
                        ours_runs=side_runs.get('latency_p50_ms'), reference_runs=rclpy_runs.get('latency_p50_ms')))
    return rows


def envs_rows(result: dict) -> list[Row]:
    rows = []
    for env_id, entry in _dict(result.get('envs')).items():
        entry = _dict(entry)
        short = env_id.split('/')[-1]
        native, sync = entry.get('native_x8_steps_per_s'), entry.get('sync_x8_steps_per_s')
        goal = _number(entry.get('goal_vector_steps_per_s'))
        goal_args = {'goal_on': 'value', 'goal_op': '>=', 'goal': goal} if goal is not None else {}
        if _number(native) is not None:
            # The goal is on the best vectorised rate; the native vector env is the one built for it.
            best = max(_number(native), _number(sync) or 0.0)
            runs = _dict(entry.get('runs')) if best == _number(native) else {}   # pairs: native vs sync
            rows.append(row('envs', f'{short}: native vector env x8', best, 'steps/s', sync,
                            'gymnasium SyncVectorEnv x8', ours_runs=runs.get('native_x8'),
                            reference_runs=runs.get('sync_x8'), **goal_args))
        elif _number(sync) is not None:
            rows.append(row('envs', f'{short}: SyncVectorEnv x8', sync, 'steps/s', **goal_args))
        if _number(entry.get('single_steps_per_s')) is not None:
            rows.append(row('envs', f'{short}: one env', entry['single_steps_per_s'], 'steps/s'))
    oracle = _dict(result.get('mec_oracle_ms_per_step'))
    symmetry, full = _dict(oracle.get('exact_symmetry')), _dict(oracle.get('exact_full'))
    for n, ms in symmetry.items():
        rows.append(row('envs', f'MEC oracle, exact search N={n}', ms, 'ms/step', full.get(n),
                        'exact search over all (C+1)^N vectors'))
    for n, ms in _dict(oracle.get('best_response')).items():
        if n not in symmetry:
            rows.append(row('envs', f'MEC oracle, best response N={n}', ms, 'ms/step'))
    return rows


LEARNER_GOAL_VS_SB3 = 3.0   # the learning core's goal: >= 3x SB3's updates/s for TD3 and SAC


def learner_rows(result: dict) -> list[Row]:
    rows = []
    learner = _dict(result.get('learner'))
    for algorithm in ('ddpg', 'td3', 'sac'):
        ours, theirs = _dict(learner.get(f'dcdrl_{algorithm}')), learner.get(f'sb3_{algorithm}')
        if not ours:
            continue
        note = theirs if isinstance(theirs, str) else None
        goal = {'goal_on': 'ratio', 'goal': LEARNER_GOAL_VS_SB3} if algorithm != 'ddpg' else {}
        rows.append(row('learner', f'{algorithm.upper()} updates/s (batch 128, 256-128-64, cpu)',
                        ours.get('updates_per_s'), 'updates/s', _dict(theirs).get('updates_per_s'),
                        'stable-baselines3', note=note, ours_runs=_runs(ours), reference_runs=_runs(theirs),
                        **goal))
    # With a GPU: {"cuda": {"device_name", "dcdrl_td3": {"updates_per_s", "runs"}, "sb3_td3": {...},
    # "matches_cpu": bool, "max_abs_diff": float}}; its runs took turns with the cpu ones.
    cuda = _dict(result.get('cuda'))
    gpu = cuda.get('device_name', 'cuda')
    for algorithm in ('ddpg', 'td3', 'sac'):
        entry = _dict(cuda.get(f'dcdrl_{algorithm}'))
        if entry:
            on_cpu = _dict(learner.get(f'dcdrl_{algorithm}'))
            rows.append(row('learner', f'{algorithm.upper()} updates/s on {gpu}', entry.get('updates_per_s'),
                            'updates/s', on_cpu.get('updates_per_s'), 'ours on cpu', ours_runs=_runs(entry),
                            reference_runs=_runs(on_cpu)))
            theirs = _dict(cuda.get(f'sb3_{algorithm}'))
            if theirs:
                rows.append(row('learner', f'{algorithm.upper()} updates/s vs stable-baselines3, both on {gpu}',
                                entry.get('updates_per_s'), 'updates/s', theirs.get('updates_per_s'),
                                f'stable-baselines3 on {gpu}', ours_runs=_runs(entry), reference_runs=_runs(theirs)))
    if 'matches_cpu' in cuda:
        rows.append(row('learner', 'CUDA path: max |cuda - cpu| after the same updates', cuda.get('max_abs_diff'),
                        '', note='matches cpu' if cuda['matches_cpu'] else 'DIFFERS from cpu'))
        rows[-1]['goal'], rows[-1]['met'] = 'matches cpu', bool(cuda['matches_cpu'])
    return rows


REPLAY_GOAL_VS_CPPRB = 1.0


def replay_rows(result: dict) -> list[Row]:
    rows = []
    names = {'uniform': 'uniform', 'prioritized': 'prioritised (+ update_priorities)'}
    for mode in ('uniform', 'prioritized'):
        entry = _dict(result.get(mode))
        ours = _dict(entry.get('dcdrl'))
        if not ours:
            continue
        for library in ('cpprb', 'torchrl'):
            theirs = entry.get(library)
            if theirs is None and library == 'torchrl':
                continue
            goal = {'goal_on': 'ratio', 'goal': REPLAY_GOAL_VS_CPPRB} if library == 'cpprb' else {}
            rows.append(row('replay', f'{names[mode]}: add 64 + sample 128', ours.get('iters_per_s'), 'iterations/s',
                            _dict(theirs).get('iters_per_s'), library, note=theirs if isinstance(theirs, str) else None,
                            ours_runs=_runs(ours), reference_runs=_runs(theirs), **goal))
    return rows


def scaling_rows(result: dict) -> list[Row]:
    rows = []
    goals = _dict(result.get('goals'))
    runs = _dict(result.get('runs'))   # per round, the two sides of a comparison taking turns
    collection = _dict(result.get('collection_steps_per_s'))
    one, two = _number(collection.get('1')), _number(collection.get('2'))
    if one is not None:
        rows.append(row('scaling', 'collection, 1 client at full speed', one, 'steps/s'))
    if two is not None:
        ones = runs.get('collection_1')
        linear = [2 * x for x in ones] if isinstance(ones, list) and all(_number(x) is not None for x in ones) \
            else None
        rows.append(row('scaling', 'collection, 2 clients', two, 'steps/s', 2 * one if one else None,
                        'linear scaling (2 x 1 client)', goal_on='ratio',
                        goal=_number(goals.get('collection_efficiency_min')) or 0.85,
                        ours_runs=runs.get('collection_2'), reference_runs=linear))
    learner = _dict(result.get('learner_updates_per_s'))
    in_process = learner.get('in_process')
    loss_max = _number(goals.get('replay_node_loss_max')) or 0.10
    if _number(learner.get('replay_node')) is not None:
        rows.append(row('scaling', 'learner sampling from the replay node over DDS', learner['replay_node'],
                        'updates/s', in_process, 'in-process ReplayBuffer', goal_on='ratio', goal_op='>=',
                        goal=1.0 - loss_max, ours_runs=runs.get('replay_node'),
                        reference_runs=runs.get('in_process')))
    for key, value in learner.items():
        if key.endswith('_clients'):
            rows.append(row('scaling', f'learner over DDS with {key.split("_")[0]} client(s) at the default rate',
                            value, 'updates/s', in_process, 'in-process ReplayBuffer'))
    target = _dict(result.get('time_to_target'))
    if 'seconds' in target:
        rows.append(row('scaling', f'time to MEC eval cost <= {target.get("target_cost")} (`make run`)',
                        target.get('seconds'), 's', note=f'{target.get("updates")} updates; '
                                                          f'final cost {target.get("final_cost")}'))
    return rows


def edge_loop_rows(result: dict) -> list[Row]:
    rows = []
    inference = _dict(result.get('inference'))
    if inference:
        rows.append(row('edge_loop', 'actor inference, one observation (NumpyActor)', inference.get('numpy_us'), 'us',
                        inference.get('torch_eager_us'), 'torch eager forward (no_grad)',
                        goal_on='ratio', goal_op='<=', goal=0.3))
    goals_at = _number(result.get('goals_at'))
    goals_loop = result.get('goals_loop')   # which loop variant the goals are for (absent: the only one)
    for loop in result.get('loops') or []:
        loop = _dict(loop)
        rate = _number(loop.get('rate_hz'))
        variant = loop.get('loop')
        judged = rate is not None and rate == goals_at and (goals_loop is None or variant == goals_loop)
        label = (f'{rate:g} Hz' if rate is not None else '? Hz') + (f' loop {variant}' if variant else '')
        rows.append(row('edge_loop', f'{label}: period error p99', loop.get('period_error_p99_us'), 'us',
                        **({'goal_on': 'value', 'goal_op': '<=', 'goal': 200.0} if judged else {})))
        rows.append(row('edge_loop', f'{label}: deadline misses', loop.get('misses'), 'steps',
                        note=f'of {loop.get("steps")} steps',
                        **({'goal_on': 'value', 'goal_op': '==', 'goal': 0.0} if judged else {})))
        rows.append(row('edge_loop', f'{label}: weight delivery p50 (publish to swap)',
                        loop.get('weight_delivery_p50_ms'), 'ms',
                        **({'goal_on': 'value', 'goal_op': '<=', 'goal': 5.0} if judged else {})))
    for floor in result.get('platform_floor') or []:
        floor = _dict(floor)
        rate = _number(floor.get('rate_hz'))
        label = f'{rate:g} Hz' if rate is not None else '? Hz'
        note = f'the same deadlines with no work; CPU steal {floor.get("cpu_steal_s")} s'
        rows.append(row('edge_loop', f'{label} platform floor: period error p99', floor.get('period_error_p99_us'),
                        'us', note=note))
        rows.append(row('edge_loop', f'{label} platform floor: deadline misses', floor.get('misses'), 'steps',
                        note=f'of {floor.get("steps")} steps; {note}'))
    return rows


def face_offload_rows(result: dict) -> list[Row]:
    rows = []
    transport = _dict(result.get('transport'))
    local, offloaded = _number(transport.get('local_wall_s')), _number(transport.get('round_trip_s'))
    if offloaded is not None:
        rows.append(row('face_offload', 'one 640x480 frame offloaded (round trip over loopback DDS)', offloaded, 's',
                        local, 'recognised locally, in process',
                        note=f'server compute {format_value(_number(transport.get("server_compute_s")))} s'))
    probe = _number(transport.get('overhead_ratio_transport_probe'))
    if probe is not None:
        limit = _number(transport.get('goal_overhead_max')) or 0.10
        rows.append(row('face_offload', 'offload overhead: frame transport / server compute', probe, '',
                        goal_on='value', goal_op='<=', goal=limit,
                        note='round trip over local wall time: '
                             f'+{100 * (_number(transport.get("overhead_ratio")) or 0.0):.0f} %'))
    if local and offloaded is not None:
        # The seed's published testbed figure, on other hardware: a reference without a ratio.
        published = row('face_offload', 'time per task, offloaded / local', offloaded / local, 'x',
                        DCDRL_OFFLOAD_OVER_LOCAL, 'DC-DRL testbed, published: 1644 s / 4891 s for 23 clips',
                        note='here device and server share one machine; the seed offloaded from a Pi 3B to a PC')
        published['ratio'] = published['ratio_method'] = None
        rows.append(published)
    policy = _dict(result.get('policy'))
    policies = _dict(policy.get('policies'))
    learned, oracle = _dict(policies.get('learned')), _dict(policies.get('oracle'))
    if learned:
        gap = _number(policy.get('goal_oracle_gap_max'))
        goal = {'goal_on': 'ratio', 'goal_op': '<=', 'goal': 1.0 + gap} if gap is not None else {}
        rows.append(row('face_offload', 'learned policy: mean latency per task', learned.get('latency_s'), 's',
                        oracle.get('latency_s'), 'the true-cost oracle', **goal))
        rows.append(row('face_offload', 'learned policy: mean cost per step', learned.get('cost'), '',
                        oracle.get('cost'), 'the true-cost oracle'))
        best = policy.get('best_fixed')
        if isinstance(best, str) and isinstance(policies.get(best), dict):
            rows.append(row('face_offload', 'learned policy: mean latency per task', learned.get('latency_s'), 's',
                            policies[best].get('latency_s'), f'best fixed policy ({best})'))
    return rows


def recording_rows(result: dict) -> list[Row]:
    record, play = _dict(result.get('record')), _dict(result.get('play'))
    ours, theirs = _dict(record.get('ours')), _dict(record.get('ros2'))
    load = f"{result.get('duration_s')} s of the make-run stand-in + 178 KB weights at 50 Hz"
    rows = [
        row('recording', f'bag record: messages/s written ({load})', ours.get('msgs_per_s'), 'msg/s',
            theirs.get('msgs_per_s'), 'ros2 bag record -s mcap', goal_on='ratio', goal_op='>=', goal=1.0),
        row('recording', 'bag record: MB/s written', ours.get('mb_per_s'), 'MB/s', theirs.get('mb_per_s'),
            'ros2 bag record -s mcap'),
        row('recording', 'bag record: dropped messages (published - recorded)', ours.get('dropped'), 'messages',
            theirs.get('dropped'), 'ros2 bag record -s mcap', goal_on='value', goal_op='==', goal=0.0),
        row('recording', 'bag record: CPU per MB written (recorder process)', ours.get('cpu_s_per_mb'), 's/MB',
            theirs.get('cpu_s_per_mb'), 'ros2 bag record -s mcap', goal_on='ratio', goal_op='<=', goal=1.0),
    ]
    mine, other = _dict(play.get('ours')), _dict(play.get('ros2'))
    rows.append(row('recording', 'bag play: timing error p99 (against the recorded stamps)',
                    mine.get('error_p99_ms'), 'ms', other.get('error_p99_ms'), 'ros2 bag play',
                    note=f"{mine.get('received')} of {mine.get('expected')} messages received"
                    + (f"; ros2 bag play: {other['error']}" if other.get('error') else '')))
    return rows


def own_summary_rows(bench: str, result: dict) -> list[Row]:
    """Rows a bench wrote itself under 'summary' (any bench without an adapter here)."""
    rows = []
    for item in result.get('summary') or []:
        if not isinstance(item, dict) or 'measure' not in item:
            continue
        base = row(bench, str(item['measure']), item.get('ours'), str(item.get('unit', '')),
                   item.get('reference'), item.get('reference_name'), ratio=_number(item.get('ratio')),
                   note=item.get('note'))
        base['goal'] = item.get('goal')
        base['met'] = item['met'] if isinstance(item.get('met'), bool) else None
        rows.append(base)
    return rows


ADAPTERS: dict[str, Callable[[dict], list[Row]]] = {
    'transport': transport_rows,
    'envs': envs_rows,
    'learner': learner_rows,
    'replay': replay_rows,
    'scaling': scaling_rows,
    'edge_loop': edge_loop_rows,
    'face_offload': face_offload_rows,
    'recording': recording_rows,
}
ORDER = ('transport', 'envs', 'learner', 'replay', 'scaling', 'edge_loop', 'face_offload', 'bandwidth', 'recording')


def summarise(benches: dict[str, dict | None]) -> list[Row]:
    """Rows for every bench result given (name -> its JSON; None or non-dict entries are skipped)."""
    benches = {name: value for name, value in benches.items() if isinstance(value, dict)}
    if 'replay' not in benches and isinstance(_dict(benches.get('learner')).get('replay'), dict):
        benches['replay'] = benches['learner']['replay']   # learner.py ran its replay half
    rows: list[Row] = []
    for name in sorted(benches, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n)):
        adapter = ADAPTERS.get(name)
        try:
            produced = adapter(benches[name]) if adapter else []
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a changed JSON layout
            produced = [row(name, 'adapter failed', None, '', note=f'{type(exc).__name__}: {exc}')]
        rows += produced + own_summary_rows(name, benches[name])
    return rows


def format_value(value: float | None) -> str:
    if value is None:
        return ''
    magnitude = abs(value)
    if value == int(value) and magnitude < 1e15:   # counts (misses, steps) and round numbers
        return f'{int(value):,}'
    if magnitude >= 1000:
        return f'{value:,.0f}'
    if magnitude >= 100:
        return f'{value:.0f}'
    if magnitude >= 10:
        return f'{value:.1f}'
    if magnitude >= 1 or value == 0:
        return f'{value:.2f}'
    return f'{value:.3g}'


def format_ratio(ratio: float | None) -> str:
    return f'{ratio:.2f}x' if ratio is not None else ''


def format_met(met: bool | None) -> str:
    return {True: 'met', False: 'NOT met', None: ''}[met]


def format_rows(rows: Iterable[Row]) -> str:
    """A plain-text table for the terminal."""
    lines = [f'{"bench":12s} {"measure":55s} {"ours":>10s} {"reference":>10s} {"ratio":>7s}  goal / met']
    for r in rows:
        reference = format_value(r['reference'])
        lines.append(f'{r["bench"]:12s} {r["measure"][:55]:55s} {format_value(r["ours"]):>10s} {reference:>10s} '
                     f'{format_ratio(r["ratio"]):>7s}  {r["goal"] or ""} {format_met(r["met"])}'.rstrip())
    return '\n'.join(lines)
