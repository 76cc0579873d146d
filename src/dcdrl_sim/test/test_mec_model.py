"""Physics of the MEC model on hand-computed cases (scalar math, independent of the numpy code)."""
import math

import numpy as np
import pytest

from dcdrl_sim.mec.model import (
    KB_BITS,
    MecParams,
    MecState,
    build_observation,
    channel_gain,
    decode_continuous,
    decode_scores,
    encode_continuous,
    encode_scores,
    evaluate_decisions,
    state_from_observation,
    total_cost,
)

P, ALPHA, NOISE, B = 0.1, 4.0, 1e-13, 5e6


def make_state(positions, cycles, size_kb, local_backlog=None, edge_backlog=0.0, deadline=2.0,
               params=None):
    params = params or MecParams(num_users=len(cycles))
    n = len(cycles)
    return MecState(
        gain_w=channel_gain(params, np.asarray(positions, dtype=float)),
        cycles_g=np.asarray(cycles, dtype=float),
        size_kb=np.asarray(size_kb, dtype=float),
        deadline_s=np.full(n, deadline),
        local_backlog_s=np.zeros(n) if local_backlog is None else np.asarray(local_backlog, float),
        edge_backlog_s=np.asarray(edge_backlog, dtype=float),
    )


def received(x, y):
    return P * math.hypot(x, y) ** -ALPHA


def tx_time(size_kb, sinr):
    return size_kb * 8 * 1024 / (B * math.log2(1 + sinr))


def test_one_user_alone_on_a_channel_has_no_interference():
    params = MecParams(num_users=3, num_channels=3)
    # user 0 offloads on channel 0; user 1 on channel 1; user 2 computes locally
    state = make_state([(10, 0), (0, 20), (30, 40)], [0.7, 0.6, 0.8], [6000, 5000, 7000],
                       edge_backlog=0.25, params=params)
    out = evaluate_decisions(params, state, np.array([1, 2, 0]))
    t_tx = tx_time(6000, received(10, 0) / NOISE)
    expected_latency = t_tx + 0.25 + 2 * 0.7 / 5.0          # k = 2 offloaders share the edge
    assert out.latency_s[0] == pytest.approx(expected_latency, rel=1e-12)
    assert out.energy_j[0] == pytest.approx(P * t_tx, rel=1e-12)
    missed = expected_latency > 2.0
    assert out.cost[0] == pytest.approx(0.1 * P * t_tx + 0.05 * 0.7 + 1.0 * missed, rel=1e-12)
    # the other offloader also sees only noise
    t_tx1 = tx_time(5000, received(0, 20) / NOISE)
    assert out.latency_s[1] == pytest.approx(t_tx1 + 0.25 + 2 * 0.6 / 5.0, rel=1e-12)


def test_two_users_on_one_channel_interfere():
    params = MecParams(num_users=3, num_channels=2)
    state = make_state([(10, 0), (0, 20), (5, 5)], [0.7, 0.6, 0.8], [6000, 5000, 7000],
                       params=params)
    out = evaluate_decisions(params, state, np.array([2, 2, 0]))   # both on channel 1
    g0, g1 = received(10, 0), received(0, 20)
    t0 = tx_time(6000, g0 / (NOISE + g1))
    t1 = tx_time(5000, g1 / (NOISE + g0))
    assert out.latency_s[0] == pytest.approx(t0 + 2 * 0.7 / 5.0, rel=1e-12)
    assert out.latency_s[1] == pytest.approx(t1 + 2 * 0.6 / 5.0, rel=1e-12)
    # the local user (very close to the server) never interferes; a user on another channel neither
    out_apart = evaluate_decisions(params, state, np.array([1, 2, 0]))
    assert out_apart.latency_s[0] < out.latency_s[0]
    assert out_apart.latency_s[0] == pytest.approx(tx_time(6000, g0 / NOISE) + 2 * 0.7 / 5.0,
                                                   rel=1e-12)


def test_local_backlog_arithmetic_and_deadline():
    params = MecParams(num_users=3)
    state = make_state([(10, 0)] * 3, [0.8, 0.8, 0.4], [5000] * 3,
                       local_backlog=[0.5, 1.5, 0.3], params=params)
    out = evaluate_decisions(params, state, np.array([0, 0, 1]))
    # user 0: t = 0.8 / 0.8 = 1.0 s, waits 0.5 s -> 1.5 s, in time; backlog 0.5 + 1.0 - 0.6
    assert out.latency_s[0] == pytest.approx(1.5)
    assert not out.missed[0]
    assert out.cost[0] == pytest.approx(0.025 * 0.8)
    assert out.next_local_backlog_s[0] == pytest.approx(0.9)
    # user 1: 1.5 + 1.0 = 2.5 s > 2 s deadline -> penalty Theta = 1
    assert out.missed[1]
    assert out.cost[1] == pytest.approx(0.025 * 0.8 + 1.0)
    assert out.next_local_backlog_s[1] == pytest.approx(1.9)
    # user 2 offloads: its local queue drains by one step, never below 0
    assert out.next_local_backlog_s[2] == 0.0
    # local energy is kappa f^2 cycles (reported, not part of the cost)
    assert out.energy_j[0] == pytest.approx(1e-27 * (0.8e9) ** 2 * 0.8e9)


def test_deadline_is_strict():
    params = MecParams(num_users=1)
    state = make_state([(10, 0)], [0.8], [5000], local_backlog=[1.0], params=params)
    out = evaluate_decisions(params, state, np.array([0]))
    assert out.latency_s[0] == pytest.approx(2.0) and not out.missed[0]


def test_edge_share_and_edge_backlog_carry_over():
    params = MecParams(num_users=4, num_channels=4)
    state = make_state([(10, 0), (0, 10), (-10, 0), (0, -10)], [0.6, 0.7, 0.8, 0.5],
                       [5000] * 4, edge_backlog=0.4, params=params)
    out = evaluate_decisions(params, state, np.array([1, 2, 3, 0]))
    t_tx = tx_time(5000, received(10, 0) / NOISE)
    assert out.latency_s[0] == pytest.approx(t_tx + 0.4 + 3 * 0.6 / 5.0, rel=1e-12)
    assert out.next_edge_backlog_s == pytest.approx(max(0.0, 0.4 + (0.6 + 0.7 + 0.8) / 5.0 - 0.6))
    idle = evaluate_decisions(params, state, np.zeros(4, dtype=int))
    assert idle.next_edge_backlog_s == 0.0


def test_result_independent_of_user_order():
    params = MecParams(num_users=5, num_channels=2)
    rng = np.random.default_rng(0)
    state = make_state(rng.integers(-80, 80, (5, 2)), rng.uniform(0.6, 0.8, 5),
                       rng.uniform(5000, 8000, 5), local_backlog=rng.uniform(0, 1, 5),
                       edge_backlog=0.3, params=params)
    decisions = np.array([1, 2, 1, 0, 2])
    out = evaluate_decisions(params, state, decisions)
    perm = rng.permutation(5)
    permuted = MecState(state.gain_w[perm], state.cycles_g[perm], state.size_kb[perm],
                        state.deadline_s[perm], state.local_backlog_s[perm], state.edge_backlog_s)
    out_p = evaluate_decisions(params, permuted, decisions[perm])
    np.testing.assert_allclose(out_p.cost, out.cost[perm], rtol=1e-12)
    np.testing.assert_allclose(out_p.latency_s, out.latency_s[perm], rtol=1e-12)
    assert out_p.next_edge_backlog_s == pytest.approx(out.next_edge_backlog_s)


def test_paper_compat_reproduces_the_original_quirks():
    params = MecParams(num_users=3, num_channels=5, paper_compat=True)
    state = make_state([(10, 0), (0, 20), (5, 5)], [0.7, 0.6, 0.8], [6000, 5000, 7000],
                       edge_backlog=0.1, params=params)
    g = [received(10, 0), received(0, 20), received(5, 5)]
    # users 0 and 1 offload on channel 0; user 2 is local but its decoded channel is also 0
    out = evaluate_decisions(params, state, np.array([1, 1, 0]), ghost_channels=np.array([-1, -1, 0]))
    sinr0 = g[0] / (NOISE + g[0] + g[1] + g[2])          # own power and the local user included
    assert out.latency_s[0] == pytest.approx(tx_time(6000, sinr0) + 0.1 + 2 * 0.7 / 5.0, rel=1e-12)
    # user 1 sees the edge backlog already grown by user 0 in this step (order dependence)
    sinr1 = g[1] / (NOISE + g[0] + g[1] + g[2])
    assert out.latency_s[1] == pytest.approx(tx_time(5000, sinr1) + 0.1 + 0.7 / 5.0 + 2 * 0.6 / 5.0,
                                             rel=1e-12)


def test_paper_compat_depends_on_user_order_corrected_does_not():
    # Two users at the same spot offload on different channels with 1-KB inputs, so the edge
    # queue decides: cycles 0.5 and 0.8 G, edge backlog 1.55 s, k = 2, deadline 1.8 s.
    def latency_of_small_task(params, small_first):
        cycles = [0.5, 0.8] if small_first else [0.8, 0.5]
        state = make_state([(10, 0), (10, 0)], cycles, [1.0, 1.0], edge_backlog=1.55,
                           deadline=1.8, params=params)
        out = evaluate_decisions(params, state, np.array([1, 2]))
        i = 0 if small_first else 1
        return out.latency_s[i], bool(out.missed[i]), float(out.total_cost)

    compat = MecParams(num_users=2, num_channels=2, paper_compat=True)
    t_tx = 1.0 * 8192 / (B * math.log2(1 + 1e-5 / (NOISE + 1e-5)))     # own power counted
    first = latency_of_small_task(compat, small_first=True)
    second = latency_of_small_task(compat, small_first=False)
    assert first[0] == pytest.approx(t_tx + 1.55 + 2 * 0.5 / 5.0)           # 1.75 s + t_tx
    assert second[0] == pytest.approx(t_tx + 1.55 + 0.8 / 5.0 + 2 * 0.5 / 5.0)  # 1.91 s + t_tx
    assert (first[1], second[1]) == (False, True)
    assert second[2] == pytest.approx(first[2] + 1.0)                       # one more penalty

    corrected = MecParams(num_users=2, num_channels=2)
    a = latency_of_small_task(corrected, small_first=True)
    b = latency_of_small_task(corrected, small_first=False)
    assert a[0] == pytest.approx(b[0]) and a[2] == pytest.approx(b[2])


def test_vectorised_over_candidate_decisions_matches_rows():
    params = MecParams(num_users=4, num_channels=3)
    rng = np.random.default_rng(1)
    state = make_state(rng.integers(-80, 80, (4, 2)), rng.uniform(0.6, 0.8, 4),
                       rng.uniform(5000, 8000, 4), local_backlog=rng.uniform(0, 2, 4),
                       edge_backlog=0.7, params=params)
    candidates = rng.integers(0, 4, (50, 4))
    batch = total_cost(params, state, candidates)
    rows = [float(total_cost(params, state, c)) for c in candidates]
    np.testing.assert_allclose(batch, rows, rtol=1e-12)


def test_continuous_decoding():
    params = MecParams(num_users=2, num_channels=5)
    grid = np.linspace(-1, 0.999, 201)
    for a in grid:
        d, ghost = decode_continuous(params, np.array([0.5, a, -0.5, a]))
        assert ghost is None
        assert d[0] == int((a + 1) * 2.5) + 1                # the paper's rule for C = 5
        assert d[1] == 0
    d, _ = decode_continuous(params, np.array([0.0, 1.0, 0.0, 7.0]))   # a = +1 and beyond
    assert d.tolist() == [5, 5]
    three = MecParams(num_users=1, num_channels=3)
    assert [decode_continuous(three, np.array([1.0, a]))[0][0] for a in (-1, -0.4, 0.0, 0.5, 1.0)] \
        == [1, 1, 2, 3, 3]
    compat = MecParams(num_users=1, num_channels=3, paper_compat=True)
    d, ghost = decode_continuous(compat, np.array([1.0, 1.0]))
    assert d[0] == 6                                         # the sixth label of int((a+1)*2.5)
    d, ghost = decode_continuous(compat, np.array([-1.0, 0.9]))
    assert d[0] == 0 and ghost[0] == 4


def test_encode_decode_round_trip_all_decisions():
    for c in (1, 2, 5, 7):
        params = MecParams(num_users=3, num_channels=c)
        grid = np.stack(np.meshgrid(*[np.arange(c + 1)] * 3, indexing='ij'), -1).reshape(-1, 3)
        decoded, _ = decode_continuous(params, encode_continuous(params, grid))
        np.testing.assert_array_equal(decoded, grid)


def test_scores_offload_the_non_negative_users_on_channels_in_score_order():
    params = MecParams(num_users=6, num_channels=2)
    scores = np.array([0.5, -0.1, 0.9, 0.0, -1.0, 0.7])
    # offloaders by decreasing score: 2 (0.9), 5 (0.7), 0 (0.5), 3 (0.0); channels 1, 2, then wrap
    np.testing.assert_array_equal(decode_scores(params, scores), [1, 0, 1, 2, 0, 2])
    batch = np.stack([scores, -scores])
    np.testing.assert_array_equal(decode_scores(params, batch)[0], [1, 0, 1, 2, 0, 2])
    # -0.0 counts as >= 0: users 4 (1.0), 1 (0.1), 3 (-0.0) offload
    np.testing.assert_array_equal(decode_scores(params, batch)[1], [0, 2, 0, 1, 1, 0])


def test_scores_never_share_a_channel_while_channels_are_free_and_reach_every_such_decision():
    n, c = 4, 3
    params = MecParams(num_users=n, num_channels=c)
    rng = np.random.default_rng(0)
    decoded = decode_scores(params, rng.uniform(-1, 1, (5000, n)))
    for row in decoded:
        used = row[row > 0]
        assert len(set(used.tolist())) == min(len(used), c)   # shared only when offloaders > C
    # every decision without a shared channel comes back from its encoding, up to channel labels
    grid = np.stack(np.meshgrid(*[np.arange(c + 1)] * n, indexing='ij'), -1).reshape(-1, n)
    for d in grid:
        used = d[d > 0]
        if len(set(used.tolist())) != len(used):
            continue
        back = decode_scores(params, encode_scores(params, d))
        np.testing.assert_array_equal(back > 0, d > 0)
        state = make_state([(5, 0), (0, 9), (-12, 3), (20, 20)], [0.6, 0.7, 0.65, 0.8],
                           [5000, 6000, 7000, 8000], params=params)
        assert total_cost(params, state, back) == pytest.approx(total_cost(params, state, d))


def test_observation_normalisation_and_inverse():
    params = MecParams(num_users=2)
    state = make_state([(-80, 40), (79, -1)], [0.6, 0.75], [5000, 8000],
                       local_backlog=[0.4, 1.0], edge_backlog=0.9, params=params)
    obs = build_observation(params, state, np.array([[-80.0, 40.0], [79.0, -1.0]]), 10, 50)
    assert obs.dtype == np.float32 and obs.shape == (17,)
    np.testing.assert_allclose(obs[:7], [0.8, 0.2, 0.0, 0.75, 0.6, 0.4, 0.5], rtol=1e-6)
    np.testing.assert_allclose(obs[-3:], [5 / 8, 0.45, 0.2], rtol=1e-6)
    back, positions = state_from_observation(params, obs)
    np.testing.assert_allclose(positions, [[-80, 40], [79, -1]], atol=1e-4)
    np.testing.assert_allclose(back.size_kb, state.size_kb, rtol=1e-6)
    np.testing.assert_allclose(back.local_backlog_s, state.local_backlog_s, rtol=1e-6)
    assert float(back.edge_backlog_s) == pytest.approx(0.9, rel=1e-6)
    compat = MecParams(num_users=2, paper_compat=True)
    obs_c = build_observation(compat, state, np.zeros((2, 2)), 0, 50)
    np.testing.assert_allclose(obs_c[-2:], [0.9, 1 / 50], rtol=1e-6)   # raw backlog, count from 1


def test_kb_and_units():
    assert KB_BITS == 8192.0
    with pytest.raises(ValueError):
        state_from_observation(MecParams(num_users=2), np.zeros(5))
    with pytest.raises(ValueError):
        state_from_observation(MecParams(num_users=2), np.full(17, np.nan))
    with pytest.raises(ValueError):
        evaluate_decisions(MecParams(num_users=2), make_state([(1, 1)] * 2, [0.7] * 2, [5000] * 2),
                           np.zeros(3, dtype=int))


@pytest.mark.parametrize('kwargs', [
    {'num_users': 0}, {'num_channels': 0}, {'num_users': 2.5}, {'bandwidth_hz': 0.0},
    {'noise_w': -1.0}, {'cycles_range_g': (0.8, 0.6)}, {'deadline_s': float('nan')},
    {'unit_cost_local': -0.1}, {'size_range_kb': (1.0,)}, {'num_users': True},
])
def test_bad_parameters_are_rejected(kwargs):
    with pytest.raises(ValueError):
        MecParams(**kwargs)
