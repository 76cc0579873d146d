"""Physics of the multi-user MEC offloading model: ONE definition, used by the env, the
baselines and the oracle.

Everything here is a pure numpy function of (parameters, state, decisions). Decisions are
integer vectors with one entry per user: 0 = compute locally, k >= 1 = offload on radio
channel k - 1. Every function broadcasts over leading axes, so the same code scores one
decision vector for one environment, a batch of environments, or millions of candidate
decision vectors for the oracle.

Units: time in s, CPU in Gcycles and GHz (so cycles / frequency is seconds), task size in KB
(1 KB = 8 * 1024 bit, as the original divides the rate by 8 * 1024), power in W, energy in J.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

KB_BITS = 8.0 * 1024.0

# Observation scales of the original code (get_normalized_state); kept so that the
# observation is "normalised as in the paper".
BACKLOG_SCALE_S = 2.0
DEADLINE_SCALE_S = 5.0
SIZE_SCALE_KB = 1e4
F_EDGE_SCALE_GHZ = 8.0
PAPER_EPISODE_SCALE = 50.0
USER_FEATURES = 7
GLOBAL_FEATURES = 3
# The original decodes a channel as int((a + 1) * 2.5) whatever the channel count: labels
# 0..5 can occur (5 only at a == +1 exactly); paper_compat keeps that decoder.
PAPER_CHANNEL_FACTOR = 2.5


@dataclass(frozen=True)
class MecParams:
    """Every constant of the model. Defaults: see docs/simulation-mec.md for the sources."""

    num_users: int = 10
    num_channels: int = 5
    step_s: float = 0.6                       # slot length (reference)
    f_local_ghz: float = 0.8                  # user CPU (reference)
    f_edge_ghz: float = 5.0                   # edge CPU, shared by the offloaders (reference)
    cycles_range_g: tuple[float, float] = (0.6, 0.8)       # task cycles (reference)
    size_range_kb: tuple[float, float] = (5000.0, 8000.0)  # task input size (reference)
    deadline_s: float = 2.0                   # task deadline (reference)
    unit_cost_local: float = 0.025            # cost per Gcycle run locally (reference)
    unit_cost_edge: float = 0.05              # cost per Gcycle run on the edge (reference)
    unit_cost_energy: float = 0.1             # cost per joule of transmit energy (reference)
    deadline_penalty: float = 1.0             # Theta (reference)
    bandwidth_hz: float = 5e6                 # per channel; Chen et al. 2016
    tx_power_w: float = 0.1                   # 100 mW; Chen et al. 2016
    path_loss_exponent: float = 4.0           # channel gain d^-alpha; Chen et al. 2016
    noise_w: float = 1e-13                    # -100 dBm; Chen et al. 2016
    cover_radius_m: float = 80.0              # positions in [-R, R)^2 (implied by the original)
    min_distance_m: float = 1.0               # avoids d = 0 (a user on the server's spot)
    kappa_local: float = 1e-27                # switched capacitance, for reported local energy
    paper_compat: bool = False

    def __post_init__(self) -> None:
        for name in ('num_users', 'num_channels'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f'{name} must be an integer >= 1, got {value!r}')
        for f in fields(self):
            if f.name in ('num_users', 'num_channels', 'paper_compat'):
                continue
            value = getattr(self, f.name)
            values = value if isinstance(value, tuple) else (value,)
            for v in values:
                if not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v):
                    raise ValueError(f'{f.name} must be finite numbers, got {value!r}')
            if f.name.endswith('_range_g') or f.name.endswith('_range_kb'):
                if len(values) != 2 or not 0 < values[0] <= values[1]:
                    raise ValueError(f'{f.name} must be (low, high) with 0 < low <= high, got {value!r}')
            elif f.name in ('unit_cost_local', 'unit_cost_edge', 'unit_cost_energy',
                            'deadline_penalty', 'kappa_local'):
                if value < 0:
                    raise ValueError(f'{f.name} must be >= 0, got {value!r}')
            elif value <= 0:
                raise ValueError(f'{f.name} must be > 0, got {value!r}')
        if not isinstance(self.paper_compat, (bool, np.bool_)):
            raise TypeError(f'paper_compat must be a bool, got {self.paper_compat!r}')

    @property
    def obs_size(self) -> int:
        return USER_FEATURES * self.num_users + GLOBAL_FEATURES


@dataclass
class MecState:
    """What a decision is scored against; arrays have shape (..., N), edge backlog (...)."""

    gain_w: np.ndarray            # received power at the server when the user transmits
    cycles_g: np.ndarray
    size_kb: np.ndarray
    deadline_s: np.ndarray
    local_backlog_s: np.ndarray
    edge_backlog_s: np.ndarray | float   # one server: a float in MecOffloadEnv, [n_envs] in the vector env

    def copy(self) -> MecState:
        return MecState(*(np.array(getattr(self, f.name), dtype=np.float64) for f in fields(self)))


@dataclass
class StepOutcome:
    """Result of applying decisions to a state; per-user arrays have shape (..., N)."""

    cost: np.ndarray
    latency_s: np.ndarray
    energy_j: np.ndarray
    missed: np.ndarray
    offloaded: np.ndarray
    next_local_backlog_s: np.ndarray
    next_edge_backlog_s: np.ndarray

    @property
    def total_cost(self) -> np.ndarray:
        return self.cost.sum(axis=-1)


def channel_gain(params: MecParams, positions_m: np.ndarray) -> np.ndarray:
    """Received power P * d^-alpha at the server (origin) for positions of shape (..., N, 2)."""
    distance = np.hypot(positions_m[..., 0], positions_m[..., 1])
    distance = np.maximum(distance, params.min_distance_m)
    return params.tx_power_w * distance ** (-params.path_loss_exponent)


def evaluate_decisions(params: MecParams, state: MecState, decisions: np.ndarray,
                       ghost_channels: np.ndarray | None = None) -> StepOutcome:
    """Scores decisions (..., N) against a state; broadcasts state against decisions.

    Corrected physics (default): a user's interference is the received power of the OTHER users
    offloading on the same channel; every offloader sees the edge backlog carried from earlier
    steps and an equal share f_edge / k of the edge CPU, so the result does not depend on the
    order of the users.

    paper_compat: as the original code. Interference on a channel sums every user whose decoded
    channel label matches, the user itself and local users included (their labels are
    ``ghost_channels``, -1 for none); the edge backlog seen by user i includes the work of the
    offloaders with a lower index in this same step.

    Written as few whole-array operations as possible: at N = 10 numpy's per-call overhead,
    not arithmetic, is the cost of a step.
    """
    d = np.asarray(decisions)
    if d.shape[-1:] != (params.num_users,):
        raise ValueError(f'decisions must have last axis {params.num_users}, got shape {d.shape}')
    offloaded = d > 0
    gain = state.gain_w
    cycles = state.cycles_g
    edge_backlog = np.asarray(state.edge_backlog_s, dtype=np.float64)

    # Local execution waits for the user's own backlog.
    t_local = cycles * (1.0 / params.f_local_ghz)

    # Radio: received power of every user on the same channel label (the user included),
    # as a (..., N, N) same-label matrix times the gains.
    labels = d - 1                                   # -1 for local users
    if params.paper_compat:
        if ghost_channels is not None:
            labels = np.where(offloaded, labels, ghost_channels)
        interference = np.matmul(labels[..., :, None] == labels[..., None, :],
                                 gain[..., :, None])[..., 0]   # quirk: own power included
    else:
        # A local user's label (-1) never matches an offloader's, so local users and other
        # channels drop out; subtracting the own gain leaves the other offloaders exactly
        # (0 when alone: g - g). Values for local users are masked below.
        same_label = np.matmul(labels[..., :, None] == labels[..., None, :], gain[..., :, None])
        interference = same_label[..., 0] - gain
    rate_bps = params.bandwidth_hz * np.log2(1.0 + gain / (params.noise_w + interference))
    t_tx = state.size_kb * KB_BITS / rate_bps

    # Edge: equal share among the k offloaders, after the backlog already queued there.
    t_edge_alone = cycles * (1.0 / params.f_edge_ghz)
    edge_work = t_edge_alone * offloaded               # seconds of edge CPU added this step
    k = offloaded.sum(axis=-1, keepdims=True)
    if params.paper_compat:
        # quirk: the backlog grows user by user inside the step (result depends on order)
        edge_seen = edge_backlog[..., None] + (np.cumsum(edge_work, axis=-1) - edge_work)
    else:
        edge_seen = edge_backlog[..., None]
    latency = np.where(offloaded, t_tx + edge_seen + k * t_edge_alone,
                       state.local_backlog_s + t_local)
    missed = latency > state.deadline_s

    tx_energy = params.tx_power_w * t_tx
    local_energy_per_g = params.kappa_local * (params.f_local_ghz * 1e9) ** 2 * 1e9
    energy = np.where(offloaded, tx_energy, local_energy_per_g * cycles)
    cost = np.where(offloaded,
                    params.unit_cost_energy * tx_energy + params.unit_cost_edge * cycles,
                    params.unit_cost_local * cycles)
    cost += params.deadline_penalty * missed

    next_local = np.maximum(state.local_backlog_s + np.where(offloaded, 0.0, t_local)
                            - params.step_s, 0.0)
    next_edge = np.maximum(edge_backlog + edge_work.sum(axis=-1) - params.step_s, 0.0)
    return StepOutcome(cost=cost, latency_s=latency, energy_j=energy, missed=missed,
                       offloaded=offloaded, next_local_backlog_s=next_local,
                       next_edge_backlog_s=next_edge)


def total_cost(params: MecParams, state: MecState, decisions: np.ndarray) -> np.ndarray:
    """Sum of user costs for each decision vector (..., N) -> (...)."""
    return evaluate_decisions(params, state, decisions).total_cost


# --- action encodings -------------------------------------------------------------------

def check_box_action(action: np.ndarray, shape: tuple[int, ...], mode: str) -> None:
    """Refuses a continuous or scores action of another shape, non-numbers, NaN or inf (ValueError)."""
    if action.shape != tuple(shape):
        raise ValueError(f'{mode} action must have shape {tuple(shape)}, got {action.shape}')
    # One reduction catches NaN and inf (huge finite values that overflow the sum are refused too).
    if action.dtype.kind not in 'fiu' or not math.isfinite(action.sum()):
        raise ValueError(f'{mode} action must be finite numbers (got NaN/inf or non-numeric)')


def decode_continuous(params: MecParams, action: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Paper encoding (..., 2N) in [-1, 1] -> (decisions, ghost channel labels or None).

    a[2i] < 0 means local; a[2i+1] picks the channel. Corrected: the interval [-1, 1] is cut
    into C equal bins (int((a+1)*2.5) for C = 5 except that a = +1 maps to the last channel).
    paper_compat: int((a+1)*2.5) whatever C is, and local users keep their decoded label.
    """
    a = np.asarray(action, dtype=np.float64)
    offload = a[..., 0::2] >= 0.0
    # Clip to [-1, 1] first (exploration noise may leave the box), then cut into bins.
    unit = np.minimum(np.maximum(a[..., 1::2], -1.0), 1.0) + 1.0      # in [0, 2]
    if params.paper_compat:
        channel = (unit * PAPER_CHANNEL_FACTOR).astype(np.int64)
    else:
        c = params.num_channels
        channel = np.minimum((unit * (0.5 * c)).astype(np.int64), c - 1)
    decisions = np.where(offload, channel + 1, 0)
    ghost = np.where(offload, -1, channel) if params.paper_compat else None
    return decisions, ghost


def encode_continuous(params: MecParams, decisions: np.ndarray) -> np.ndarray:
    """Decisions (..., N) -> a continuous action that decodes back to them (float32).

    Local users get the channel component of channel 0 (matters only for paper_compat).
    """
    d = np.asarray(decisions)
    bins = params.num_channels
    channel = np.maximum(d - 1, 0)
    action = np.empty(d.shape[:-1] + (2 * d.shape[-1],), dtype=np.float32)
    action[..., 0::2] = np.where(d > 0, 1.0, -1.0)
    action[..., 1::2] = -1.0 + (2.0 * channel + 1.0) / bins
    return action


def decode_scores(params: MecParams, action: np.ndarray) -> np.ndarray:
    """Offload scores (..., N) in [-1, 1] -> decisions (..., N); no channel is ever shared needlessly.

    A user offloads when its score is >= 0; the offloaders take channels in order of decreasing
    score (the highest gets channel 0, the next channel 1, ..., wrapping after C). Channels are
    identical, so which one a user gets never matters, only who shares: with at most C
    offloaders nobody does, and every collision-free decision vector is reachable up to a
    relabelling of channels (same cost). The policy learns only who offloads.
    """
    a = np.asarray(action, dtype=np.float64)
    order = np.argsort(-a, axis=-1, kind='stable')
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(a.shape[-1]), a.shape), axis=-1)
    return np.where(a >= 0.0, rank % params.num_channels + 1, 0)


def encode_scores(params: MecParams, decisions: np.ndarray) -> np.ndarray:
    """Decisions (..., N) -> scores that decode to the same decisions up to a channel relabelling
    (exactly the same when the channels used are 1..k, each once); float32."""
    d = np.asarray(decisions)
    return np.where(d > 0, 1.0 - 0.5 * (d - 1) / params.num_channels, -1.0).astype(np.float32)


# --- observation ------------------------------------------------------------------------

def observation_template(params: MecParams, positions_m: np.ndarray) -> np.ndarray:
    """The parts of the observation that do not change within an episode, (..., 7N + 3).

    fill_observation writes the rest; the env keeps one template and copies it each step.
    """
    n = params.num_users
    r = params.cover_radius_m
    lead = np.shape(positions_m)[:-2]
    obs = np.zeros(lead + (USER_FEATURES * n + GLOBAL_FEATURES,), dtype=np.float32)
    end = USER_FEATURES * n
    obs[..., 0:end:USER_FEATURES] = params.f_local_ghz
    obs[..., 2:end:USER_FEATURES] = (positions_m[..., 0] + r) * (0.5 / r)
    obs[..., 3:end:USER_FEATURES] = (positions_m[..., 1] + r) * (0.5 / r)
    obs[..., -3] = params.f_edge_ghz / F_EDGE_SCALE_GHZ
    return obs


def fill_observation(params: MecParams, obs: np.ndarray, state: MecState,
                     step_index: int | np.ndarray, episode_length: int) -> np.ndarray:
    """Writes the state-dependent entries of a template in place and returns it."""
    end = USER_FEATURES * params.num_users
    obs[..., 1:end:USER_FEATURES] = state.local_backlog_s
    obs[..., 1:end:USER_FEATURES] *= 1.0 / BACKLOG_SCALE_S
    obs[..., 4:end:USER_FEATURES] = state.cycles_g
    obs[..., 5:end:USER_FEATURES] = state.deadline_s
    obs[..., 5:end:USER_FEATURES] *= 1.0 / DEADLINE_SCALE_S
    obs[..., 6:end:USER_FEATURES] = state.size_kb
    obs[..., 6:end:USER_FEATURES] *= 1.0 / SIZE_SCALE_KB
    if params.paper_compat:
        obs[..., -2] = state.edge_backlog_s
        obs[..., -1] = (np.asarray(step_index) + 1) * (1.0 / PAPER_EPISODE_SCALE)
    else:
        obs[..., -2] = np.asarray(state.edge_backlog_s) * (1.0 / BACKLOG_SCALE_S)
        obs[..., -1] = np.asarray(step_index) * (1.0 / episode_length)
    return obs


def build_observation(params: MecParams, state: MecState, positions_m: np.ndarray,
                      step_index: int | np.ndarray, episode_length: int) -> np.ndarray:
    """State (..., N) -> float32 observation (..., 7N + 3), normalised as the original code.

    Per user [f_local, local backlog / 2, (x + R) / 2R, (y + R) / 2R, cycles, deadline / 5,
    size / 1e4]; then [f_edge / 8, edge backlog / 2, step / episode_length]. paper_compat keeps
    the original's raw edge backlog and its step counter (starting at 1) / 50.
    """
    return fill_observation(params, observation_template(params, positions_m), state,
                            step_index, episode_length)


def observation_bounds(params: MecParams, episode_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact (low, high) of build_observation over an episode, as float32 arrays.

    The backlogs are bounded because each step adds at most (max work - step length).
    """
    n = params.num_users
    c_max = params.cycles_range_g[1]
    local_growth = max(0.0, c_max / params.f_local_ghz - params.step_s)
    edge_growth = max(0.0, n * c_max / params.f_edge_ghz - params.step_s)
    user_high = [params.f_local_ghz, episode_length * local_growth / BACKLOG_SCALE_S, 1.0, 1.0,
                 c_max, params.deadline_s / DEADLINE_SCALE_S,
                 params.size_range_kb[1] / SIZE_SCALE_KB]
    if params.paper_compat:
        tail = [episode_length * edge_growth,
                max(1.0, (episode_length + 1) / PAPER_EPISODE_SCALE)]
    else:
        tail = [episode_length * edge_growth / BACKLOG_SCALE_S, 1.0]
    high = np.array(user_high * n + [params.f_edge_ghz / F_EDGE_SCALE_GHZ] + tail)
    return np.zeros(high.shape, dtype=np.float32), high.astype(np.float32)


def state_from_observation(params: MecParams, obs: np.ndarray) -> tuple[MecState, np.ndarray]:
    """Inverse of build_observation for (..., 7N + 3) -> (state, positions (..., N, 2)).

    Lets a policy that sees only observations (a baseline, the oracle, a remote client)
    rebuild the state exactly up to float32 rounding.
    """
    o = np.asarray(obs, dtype=np.float64)
    n = params.num_users
    if o.shape[-1:] != (params.obs_size,):
        raise ValueError(f'observation must have last axis {params.obs_size}, got shape {o.shape}')
    if not np.all(np.isfinite(o)):
        raise ValueError('observation contains NaN or inf')
    users = o[..., :USER_FEATURES * n].reshape(o.shape[:-1] + (n, USER_FEATURES))
    r = params.cover_radius_m
    positions = users[..., 2:4] * (2.0 * r) - r
    edge_scale = 1.0 if params.paper_compat else BACKLOG_SCALE_S
    state = MecState(
        gain_w=channel_gain(params, positions),
        cycles_g=users[..., 4],
        size_kb=users[..., 6] * SIZE_SCALE_KB,
        deadline_s=users[..., 5] * DEADLINE_SCALE_S,
        local_backlog_s=users[..., 1] * BACKLOG_SCALE_S,
        edge_backlog_s=o[..., -2] * edge_scale,
    )
    return state, positions
