"""DDPG and TD3 in one agent class, CleanRL-like: read `update` top to bottom.

TD3 = DDPG + twin critics (min of two target Qs) + target-policy smoothing (clipped Gaussian
noise on the target action) + delayed actor and target updates. `AgentConfig(algorithm='td3')`
switches all three on; each one is also a separate field, so the cloud-edge seed's variants
(DDPG with only target smoothing, or only delayed actor updates) are a config away.

Batches come from the replay buffer (dcdrl_learning.replay) as numpy arrays:
    obs [B, O], actions [B, A], rewards [B] (already the n-step discounted sum), next_obs [B, O],
    discounts [B] (gamma**k for a k-step transition that bootstraps, 0 where the episode terminated),
    weights [B] (importance weights; 1 for uniform sampling).
So the critic target is   y = rewards + discounts * min_i Q'_i(next_obs, pi'(next_obs) [+ smoothing]).
The n-step sum, gamma**k and the cut at episode ends are the replay's job; the agent never
multiplies by gamma itself (config.gamma / n_step are handed to the replay by the trainer).

Start thresholds are counted in *stored transitions*, which the caller passes:
    if agent.ready(len(buffer)):
        stats = agent.update(buffer.sample(cfg.batch_size), stored_transitions=len(buffer))
`ready` is true from `critic_start` stored transitions on; the actor (and its target) are updated
only once `stored_transitions >= actor_start`, and then every `policy_delay`-th critic update.

Speed (small MLPs on a CPU are dispatch-bound, see docs/learning.md): the critics are one batched
ensemble, every network's parameters live in one flat buffer (so fused Adam, called without
Adam.step's Python (flat_adam.py), and the soft target update are one kernel per network), plain
MLPs run hand-written backward passes (manual_grad.py) instead of autograd, the actor loss
back-propagates into the actor's parameters only, all statistics leave the device in one transfer,
and on CUDA the whole update can be replayed as a CUDA graph (cuda_graph.py).
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Protocol

import numpy as np
import torch

from dcdrl_core.checks import check_int, check_number

from . import manual_grad
from .cuda_graph import GraphedStep
from .flat_adam import adam_step
from .flat_adam import make_adam as _make_adam
from .networks import PRESETS, NetworkConfig, architecture_id, build_actor, build_critic, network_config
from .noise import NOISE_KINDS, ExplorationNoise, make_noise

ALGORITHMS = ('ddpg', 'td3', 'sac')
UPDATE_IMPLS = ('manual', 'autograd')
# TD3 paper values, used when the algorithm is 'td3' and the field is left at None; SAC (dcdrl_learning.sac)
# uses twin critics, an actor step per critic step and no smoothing noise (its target samples the policy).
_ALGO_DEFAULTS = {
    'ddpg': {'n_critics': 1, 'policy_delay': 1, 'target_noise': 0.0},
    'td3': {'n_critics': 2, 'policy_delay': 2, 'target_noise': 0.2},
    'sac': {'n_critics': 2, 'policy_delay': 1, 'target_noise': 0.0},
}


class Batch(Protocol):
    """What `Agent.update` reads (dcdrl_learning.replay.TransitionBatch has these fields), read-only."""

    @property
    def obs(self) -> np.ndarray: ...
    @property
    def actions(self) -> np.ndarray: ...
    @property
    def rewards(self) -> np.ndarray: ...
    @property
    def next_obs(self) -> np.ndarray: ...
    @property
    def discounts(self) -> np.ndarray: ...
    @property
    def weights(self) -> np.ndarray: ...


@dataclass
class AgentConfig:
    """Every hyperparameter of the DDPG/TD3 agent. Defaults: the cloud-edge seed (DDPG, 256-128-64).

    Fields marked (trainer) are not read by the agent itself but belong to the same experiment
    config: the trainer passes them to the replay buffer and its loop.
    """

    algorithm: str = 'ddpg'                 # 'ddpg', 'td3' or 'sac'
    network: NetworkConfig = field(default_factory=lambda: PRESETS['cloud_edge'])
    actor_lr: float = 3e-4                  # Adam learning rate of the actor
    critic_lr: float = 3e-4                 # Adam learning rate of the critic(s)
    adam_eps: float = 1e-8
    critic_weight_decay: float = 0.0        # L2 on the critic (Adam weight_decay); 0 = off
    max_grad_norm: float | None = None      # clip the global gradient norm of each net; None = off
    tau: float = 0.005                      # soft target update: target += tau * (online - target)
    n_critics: int | None = None            # None: 1 for ddpg, 2 for td3 (the min is used in the target)
    policy_delay: int | None = None         # actor + target update every k critic updates; None: 1 ddpg, 2 td3
    target_noise: float | None = None       # std of the target-policy smoothing noise; None: 0 ddpg, 0.2 td3
    target_noise_clip: float = 0.5          # the smoothing noise is clipped to +-this
    critic_start: int = 3500                # stored transitions before the first update (see `ready`)
    actor_start: int = 5000                 # stored transitions before the first actor update
    exploration: str = 'ou'                 # 'ou', 'gaussian' or 'none'
    noise_sigma: float = 0.1                # OU / Gaussian sigma
    noise_theta: float = 0.15               # OU mean reversion
    noise_scale: float = 1.0                # multiplies the noise
    noise_half_life: float | None = 20_000  # steps for the noise scale to halve; None = constant
    noise_min_scale: float = 0.0            # the decay stops here
    gamma: float = 0.99                     # (trainer) discount for the replay's n-step returns
    n_step: int = 1                         # (trainer) n-step return length
    batch_size: int = 128                   # (trainer) transitions per update
    buffer_size: int = 1_000_000            # (trainer) replay capacity
    updates_per_step: float = 1.0           # (trainer) gradient steps per stored transition
    combined_replay: bool = False           # (trainer) put the newest transition in every batch
    device: str = 'auto'                    # 'cpu', 'cuda', 'cuda:N' or 'auto' (cuda when available)
    seed: int = 0                           # network init, smoothing noise and exploration noise
    torch_threads: int | None = None        # torch.set_num_threads at construction (process-wide); None = leave
    optimizer_impl: str = 'fused'           # Adam kernels: 'fused' (one kernel per tensor), 'foreach' or 'default'
    update_impl: str = 'manual'             # gradients (all algorithms): 'manual' (hand-written passes where the nets
    #                                         allow, see manual_grad.py) or 'autograd'
    cuda_graph: bool = False                # on a CUDA device: replay each DDPG/TD3 update as a CUDA graph
    alpha: float = 0.2                      # (sac) entropy temperature at the start (fixed without autotune_alpha)
    autotune_alpha: bool = True             # (sac) learn the temperature so the entropy tracks the target
    target_entropy_per_action: float = -1.0  # (sac) target entropy / action_dim (SAC v2: -1)
    alpha_lr: float = 3e-4                  # (sac) Adam learning rate of log(alpha)

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f'algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}')
        self.network = network_config(self.network)
        for name, value in _ALGO_DEFAULTS[self.algorithm].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        check_number('actor_lr', self.actor_lr, 0.0, above=True)
        check_number('critic_lr', self.critic_lr, 0.0, above=True)
        check_number('adam_eps', self.adam_eps, 0.0, above=True)
        check_number('critic_weight_decay', self.critic_weight_decay, 0.0)
        if self.max_grad_norm is not None:
            check_number('max_grad_norm', self.max_grad_norm, 0.0, above=True)
        if not (isinstance(self.tau, (int, float)) and 0 < self.tau <= 1):
            raise ValueError(f'tau must be in (0, 1], got {self.tau!r}')
        check_int('n_critics', self.n_critics, 1)
        check_int('policy_delay', self.policy_delay, 1)
        check_number('target_noise', self.target_noise, 0.0)
        check_number('target_noise_clip', self.target_noise_clip, 0.0)
        check_int('critic_start', self.critic_start, 0)
        check_int('actor_start', self.actor_start, 0)
        if self.exploration not in NOISE_KINDS:
            raise ValueError(f'exploration must be one of {NOISE_KINDS}, got {self.exploration!r}')
        check_number('noise_sigma', self.noise_sigma, 0.0)
        check_number('noise_theta', self.noise_theta, 0.0)
        check_number('noise_scale', self.noise_scale, 0.0)
        if self.noise_half_life is not None:
            check_number('noise_half_life', self.noise_half_life, 0.0, above=True)
        check_number('noise_min_scale', self.noise_min_scale, 0.0)
        if not (isinstance(self.gamma, (int, float)) and 0 <= self.gamma <= 1):
            raise ValueError(f'gamma must be in [0, 1], got {self.gamma!r}')
        check_int('n_step', self.n_step, 1)
        check_int('batch_size', self.batch_size, 1)
        check_int('buffer_size', self.buffer_size, 1)
        check_number('updates_per_step', self.updates_per_step, 0.0, above=True)
        check_int('seed', self.seed, 0)
        if self.torch_threads is not None:
            check_int('torch_threads', self.torch_threads, 1)
        if self.optimizer_impl not in ('foreach', 'fused', 'default'):
            raise ValueError(f"optimizer_impl must be 'foreach', 'fused' or 'default', got {self.optimizer_impl!r}")
        if not isinstance(self.cuda_graph, bool):
            raise TypeError(f'cuda_graph must be a bool, got {self.cuda_graph!r}')
        if self.update_impl not in UPDATE_IMPLS:
            raise ValueError(f'update_impl must be one of {UPDATE_IMPLS}, got {self.update_impl!r}')
        if not isinstance(self.device, str):
            raise TypeError(f'device must be a string, got {type(self.device).__name__}')
        check_number('alpha', self.alpha, 0.0, above=True)
        check_number('alpha_lr', self.alpha_lr, 0.0, above=True)
        check_number('target_entropy_per_action', self.target_entropy_per_action)
        if not isinstance(self.autotune_alpha, bool):
            raise TypeError(f'autotune_alpha must be a bool, got {self.autotune_alpha!r}')

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> AgentConfig:
        """'cloud_edge' (the IROS 2022 seed) or 'dcdrl' (the TPDS 2021 seed); overrides win."""
        if name not in AGENT_PRESETS:
            raise ValueError(f'unknown agent preset {name!r}; known: {sorted(AGENT_PRESETS)}')
        return cls(**{**AGENT_PRESETS[name], **overrides})

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data['network'] = self.network.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f'unknown AgentConfig fields: {sorted(unknown)}')
        return cls(**dict(data))

    def with_changes(self, **changes: Any) -> AgentConfig:
        """A copy with some fields changed; switching the algorithm resets its dependent fields
        (n_critics, policy_delay, target_noise) to the new algorithm's defaults unless given."""
        if 'algorithm' in changes and changes['algorithm'] != self.algorithm:
            for name in _ALGO_DEFAULTS['ddpg']:
                changes.setdefault(name, None)
        return replace(self, **changes)


# The seeds' hyperparameters (as the two papers publish them). The cloud-edge seed does not give its noise
# half-life; 20 000 steps (about 11 minutes at 30 Hz) is our choice.
AGENT_PRESETS: dict[str, dict[str, Any]] = {
    'cloud_edge': {},
    'dcdrl': {
        'network': 'dcdrl', 'actor_lr': 1e-4, 'critic_lr': 1e-3, 'gamma': 0.9, 'tau': 0.001, 'batch_size': 64,
        'critic_start': 1000, 'actor_start': 1000, 'exploration': 'ou', 'noise_sigma': 0.2, 'noise_theta': 0.15,
        'noise_scale': 0.3, 'noise_half_life': None,
    },
}


def resolve_device(device: str) -> torch.device:
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}") from exc
    if resolved.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'device {device!r} asked for but CUDA is not available')
    return resolved


def _checked_state(module: torch.nn.Module, state: Mapping[str, Any], what: str) -> dict[str, torch.Tensor]:
    """``state`` as tensors of ``module``'s dtypes; refuses other names, other shapes, NaN/Inf."""
    own = module.state_dict()
    missing, extra = set(own) - set(state), set(state) - set(own)
    if missing or extra:
        raise ValueError(f'{what} state mismatch: missing {sorted(missing)}, unexpected {sorted(extra)}')
    converted = {}
    for name, value in state.items():
        tensor = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value)
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise ValueError(f'{what} state {name!r}: shape {tuple(tensor.shape)}, expected {tuple(own[name].shape)}')
        if not torch.isfinite(tensor).all():
            raise ValueError(f'{what} state {name!r} contains NaN or Inf')
        converted[name] = tensor.to(dtype=own[name].dtype)
    return converted


def flatten_parameters(module: torch.nn.Module, with_grad: bool = True) -> torch.nn.Parameter:
    """Move all of `module`'s parameters into one contiguous buffer and return it as a Parameter.

    Each module parameter becomes a view into the buffer (module code, state_dict and
    load_state_dict work as before). With with_grad, each parameter's .grad is pre-set to a view
    into the flat parameter's .grad, so backward accumulates in place and an optimizer over the
    single flat parameter updates the whole network; zero the flat .grad before each backward.
    """
    params = list(module.parameters())
    first = params[0]
    total = sum(p.numel() for p in params)
    flat = torch.empty(total, dtype=first.dtype, device=first.device)
    grad = torch.zeros_like(flat) if with_grad else None
    offset = 0
    with torch.no_grad():
        for p in params:
            n = p.numel()
            flat[offset:offset + n].copy_(p.reshape(-1))
            p.data = flat[offset:offset + n].view_as(p)
            if grad is not None:
                p.grad = grad[offset:offset + n].view_as(p)
            offset += n
    flat_param = torch.nn.Parameter(flat, requires_grad=with_grad)
    if grad is not None:
        flat_param.grad = grad
    return flat_param


class Agent:
    """A DDPG or TD3 learner (actor, critic ensemble, their targets and optimizers, exploration noise).

    act(obs, explore) -> action(s) in [-1, 1]; update(batch, stored_transitions) -> statistics.
    Counters: `critic_updates`, `actor_updates`; `state_dict()`/`load_state_dict()` hold everything a
    checkpoint needs for a bit-identical continuation (nets, targets, Adam state, RNGs, noise, counters).
    """

    def __new__(cls, config: AgentConfig, obs_dim: int, action_dim: int) -> Agent:
        # Agent(config) with algorithm 'sac' is a SacAgent, so every caller selects SAC by config alone.
        if cls is Agent and isinstance(config, AgentConfig) and config.algorithm == 'sac':
            from .sac import SacAgent  # local import: sac.py subclasses Agent
            return super().__new__(SacAgent)
        return super().__new__(cls)

    def __init__(self, config: AgentConfig, obs_dim: int, action_dim: int) -> None:
        if not isinstance(config, AgentConfig):
            raise TypeError(f'config must be an AgentConfig, got {type(config).__name__}')
        self.config = config
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.architecture_id = architecture_id(config.network, obs_dim, action_dim)
        if config.torch_threads is not None:
            torch.set_num_threads(config.torch_threads)
        self.device = resolve_device(config.device)
        net = config.network
        # Separate seeds per part so that adding a part never changes another's initial weights.
        self.actor = build_actor(net, obs_dim, action_dim, seed=config.seed).to(self.device)
        self.critic = build_critic(net, obs_dim, action_dim, config.n_critics, seed=config.seed + 1).to(self.device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self._actor_params = list(self.actor.parameters())
        # One flat buffer per network (parameters become views into it): Adam, zeroing the
        # gradients and the soft target update are then one kernel per network, not one per tensor.
        self._actor_flat = flatten_parameters(self.actor)
        self._critic_flat = flatten_parameters(self.critic)
        self._actor_target_flat = flatten_parameters(self.actor_target, with_grad=False)
        self._critic_target_flat = flatten_parameters(self.critic_target, with_grad=False)
        self._critic_targets: list[torch.Tensor] = [self._critic_target_flat]
        self._critic_onlines: list[torch.Tensor] = [self._critic_flat]
        self._all_targets: list[torch.Tensor] = [self._actor_target_flat, self._critic_target_flat]
        self._all_onlines: list[torch.Tensor] = [self._actor_flat, self._critic_flat]
        self.actor_optim = _make_adam([self._actor_flat], config.actor_lr, config.adam_eps, 0.0,
                                      config.optimizer_impl)
        self.critic_optim = _make_adam([self._critic_flat], config.critic_lr, config.adam_eps,
                                       config.critic_weight_decay, config.optimizer_impl)
        # Own generator for the smoothing noise: reproducible and checkpointable, global RNG untouched.
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(config.seed + 2)
        self.noise: ExplorationNoise | None = self._make_noise((action_dim,), config.seed + 3)
        self.critic_updates = 0
        self.actor_updates = 0
        self._manual = config.update_impl == 'manual' and manual_grad.supported(config.network)
        self._pinned: dict[str, torch.Tensor] = {}   # cuda: host staging buffers of the batch fields
        # Only DDPG/TD3's hand-written path is captured (no autograd state inside the graph); cpu: eager.
        graphed = config.cuda_graph and self.device.type == 'cuda' and self._manual and config.algorithm != 'sac'
        self._graphs = GraphedStep(self._step, ('actor_due', 'targets_due')) if graphed else None

    # ---------------------------------------------------------------- acting
    def _make_noise(self, shape: tuple[int, ...], seed: int | None) -> ExplorationNoise | None:
        c = self.config
        return make_noise(c.exploration, shape, sigma=c.noise_sigma, theta=c.noise_theta, scale=c.noise_scale,
                          half_life=c.noise_half_life, min_scale=c.noise_min_scale, seed=seed)

    def act(self, obs: np.ndarray, explore: bool = False) -> np.ndarray:
        """Action(s) for obs [O] or [N, O], float32 in [-1, 1]; explore=True adds the exploration noise."""
        obs_tensor = self._checked_obs(obs)
        with torch.inference_mode():
            action = self.actor(obs_tensor).cpu().numpy()
        if explore and self.noise is not None:
            if self.noise.shape != action.shape:
                # A vector of environments: one noise row per environment, same RNG stream and decay.
                old = self.noise
                self.noise = self._make_noise(action.shape, None)
                self.noise.rng, self.noise.steps = old.rng, old.steps
            action = np.clip(action + self.noise.sample(), -1.0, 1.0, dtype=np.float32)
        return action

    def _checked_obs(self, obs: np.ndarray) -> torch.Tensor:
        obs_arr = np.asarray(obs, dtype=np.float32)
        if obs_arr.ndim not in (1, 2) or obs_arr.shape[-1] != self.obs_dim:
            raise ValueError(f'obs must have shape [{self.obs_dim}] or [N, {self.obs_dim}], got {obs_arr.shape}')
        if not np.isfinite(obs_arr).all():
            raise ValueError('obs contains NaN or Inf')
        return torch.from_numpy(obs_arr).to(self.device)

    def reset_noise(self, index: int | None = None) -> None:
        """Call at an episode end (index: which environment of a vector; None: all)."""
        if self.noise is not None:
            self.noise.reset(index)

    def ready(self, stored_transitions: int) -> bool:
        """True when the buffer holds enough transitions (critic_start) for updates to begin."""
        return stored_transitions >= self.config.critic_start

    # ---------------------------------------------------------------- learning
    def _batch_tensors(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """(obs, actions, rewards, next_obs, discounts, weights) of a batch, shapes checked, on the device."""
        b = batch.obs.shape[0] if isinstance(batch.obs, np.ndarray) and batch.obs.ndim == 2 else -1
        if b <= 0:
            raise ValueError(f'batch.obs must be a [B, {self.obs_dim}] array with B > 0')
        return (self._tensor(batch.obs, 'obs', (b, self.obs_dim)),
                self._tensor(batch.actions, 'actions', (b, self.action_dim)),
                self._tensor(batch.rewards, 'rewards', (b,)),
                self._tensor(batch.next_obs, 'next_obs', (b, self.obs_dim)),
                self._tensor(batch.discounts, 'discounts', (b,)),
                self._tensor(batch.weights, 'weights', (b,)))

    def _tensor(self, array: np.ndarray, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        if not isinstance(array, np.ndarray) or array.shape != shape:
            got = array.shape if isinstance(array, np.ndarray) else type(array).__name__
            raise ValueError(f'batch.{name} must be a numpy array of shape {shape}, got {got}')
        if self.device.type == 'cuda':   # via a reused pinned buffer: an asynchronous copy, no allocation
            staging = self._pinned.get(name)
            if staging is None or tuple(staging.shape) != shape:
                staging = self._pinned[name] = torch.empty(shape, dtype=torch.float32, pin_memory=True)
            # Safe to overwrite: every update ends with a device->host copy of its statistics (a sync).
            staging.numpy()[...] = array
            return staging.to(self.device, non_blocking=True)
        return torch.from_numpy(array if array.dtype == np.float32 else array.astype(np.float32))

    def update(self, batch: Batch, stored_transitions: int | None = None) -> dict[str, Any]:
        """One critic step, and an actor step when it is due. Returns floats:
        critic_loss (sum over the ensemble of the weighted MSE), actor_loss (None when the actor
        was not updated), q_mean (mean online Q1 of the batch), and td_errors (np.float32 [B],
        Q1 - target, for priority updates). stored_transitions=None skips the actor_start gate.
        """
        c = self.config
        obs, actions, rewards, next_obs, discounts, weights = self._batch_tensors(batch)
        b = obs.shape[0]

        self.critic_updates += 1
        targets_due = self.critic_updates % c.policy_delay == 0
        actor_due = targets_due and (stored_transitions is None or stored_transitions >= c.actor_start)
        # The smoothing noise is drawn here, outside a CUDA graph, so both paths use the same stream.
        eps = None if c.target_noise <= 0 else torch.randn((b, self.action_dim), generator=self._generator,
                                                            device=self.device)
        inputs = (obs, actions, rewards, next_obs, discounts, weights) + ((eps,) if eps is not None else ())
        if self._graphs is not None:
            outputs = self._graphs.run((actor_due, targets_due), inputs)
        else:
            outputs = self._step(*inputs, actor_due=actor_due, targets_due=targets_due)
        if actor_due:
            self.actor_updates += 1
        # All statistics in one device->host transfer (one sync on CUDA, not one per .item()).
        host = torch.cat(outputs).cpu().numpy()
        return {
            'critic_loss': float(host[0]),
            'actor_loss': float(host[2]) if actor_due else None,
            'q_mean': float(host[1]),
            'td_errors': host[2 + actor_due:].astype(np.float32),
        }

    def _critic_gradients(self, obs: torch.Tensor, actions: torch.Tensor, target: torch.Tensor,
                          weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Writes d critic_loss / d parameters into the critic's .grad views (hand-written passes where
        the nets allow, else autograd); returns (critic_loss, Q [n_critics, B], Q - target).
        critic_loss = sum_i mean(w * (Q_i(s, a) - y)^2)."""
        if self._manual:   # the backward writes every element of the .grad views: no zeroing
            with torch.no_grad():
                q, inputs = manual_grad.critic_forward(self.critic, obs, actions)
                td = q - target
                critic_loss = (td.square() * weights).mean(dim=1).sum()
                manual_grad.critic_backward(self.critic, inputs, td * (weights * (2.0 / obs.shape[0])))
            return critic_loss, q, td
        q = self.critic(obs, actions)
        td = q - target
        critic_loss = (td.square() * weights).mean(dim=1).sum()
        self._critic_flat.grad.zero_()  # the parameters' .grad are views into this buffer
        critic_loss.backward()
        return critic_loss, q, td

    def _step(self, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, next_obs: torch.Tensor,
              discounts: torch.Tensor, weights: torch.Tensor, eps: torch.Tensor | None = None, *,
              actor_due: bool, targets_due: bool) -> tuple[torch.Tensor, ...]:
        """The update's tensor work (no host sync, so a CUDA graph can capture it): the critic step, then
        the actor step if actor_due and the soft target update(s) if targets_due. Returns
        (stack(critic_loss, q_mean[, actor_loss]), td_errors of Q1)."""
        c, b = self.config, obs.shape[0]
        # Critic target: y = r + discount * min_i Q'_i(s', clip(pi'(s') + clip(eps)))
        with torch.no_grad():
            next_actions = self.actor_target(next_obs)
            if eps is not None:
                eps = eps.mul(c.target_noise).clamp_(-c.target_noise_clip, c.target_noise_clip)
                next_actions = (next_actions + eps).clamp_(-1.0, 1.0)
            next_q = self.critic_target(next_obs, next_actions)
            next_q = next_q.amin(dim=0) if c.n_critics > 1 else next_q[0]
            target = torch.addcmul(rewards, discounts, next_q)

        critic_loss, q, td = self._critic_gradients(obs, actions, target, weights)
        if c.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self._critic_flat, c.max_grad_norm)
        adam_step(self.critic_optim)

        scalars = [critic_loss.detach(), q[0].detach().mean()]
        if actor_due:
            if self._manual:
                with torch.no_grad():
                    pi, actor_inputs = manual_grad.actor_forward(self.actor, obs)
                    q_pi, critic_inputs = manual_grad.critic_forward(self.critic, obs, pi, members=1)
                    actor_loss = -q_pi[0].mean()
                    grad_q = torch.full_like(q_pi, -1.0 / b)
                    grad_pi = manual_grad.critic_backward(self.critic, critic_inputs, grad_q, weight_grads=False,
                                                          action_grad=True)
                    manual_grad.actor_backward(self.actor, actor_inputs, pi, grad_pi)
            else:
                actor_loss = -self.critic(obs, self.actor(obs), members=1)[0].mean()
                self._actor_flat.grad.zero_()
                # inputs=: gradients for the actor only; the critic's weight gradients are not needed.
                actor_loss.backward(inputs=self._actor_params)
            if c.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(self._actor_flat, c.max_grad_norm)
            adam_step(self.actor_optim)
            scalars.append(actor_loss.detach())
        if targets_due:
            targets, onlines = ((self._all_targets, self._all_onlines) if actor_due
                                else (self._critic_targets, self._critic_onlines))
            with torch.no_grad():  # the soft target update(s) in one kernel call
                torch._foreach_lerp_(targets, onlines, c.tau)
        return torch.stack(scalars), td[0].detach()

    # ---------------------------------------------------------------- weights and state
    def actor_state(self) -> dict[str, torch.Tensor]:
        """The online actor's weights (detached CPU copies): what the learner publishes."""
        return {k: v.detach().cpu().clone() for k, v in self.actor.state_dict().items()}

    def load_actor_state(self, state: Mapping[str, Any]) -> None:
        """Replace the online actor's weights (e.g. a merged model); targets are left as they are.

        Accepts torch tensors or numpy arrays; names and shapes must match exactly.
        """
        self.actor.load_state_dict(_checked_state(self.actor, state, 'actor'))

    def critic_state(self) -> dict[str, torch.Tensor]:
        """The online critic's weights (detached CPU copies; twin critics as one ensemble)."""
        return {k: v.detach().cpu().clone() for k, v in self.critic.state_dict().items()}

    def load_critic_state(self, state: Mapping[str, Any], with_target: bool = False) -> None:
        """Replace the online critic's weights (a merged critic), and its target too if asked.

        Same checks as load_actor_state; the values are copied into the flat parameter buffer.
        """
        self.critic.load_state_dict(_checked_state(self.critic, state, 'critic'))
        if with_target:
            self.critic_target.load_state_dict(self.critic.state_dict())

    def sync_targets(self) -> None:
        """Copy the online networks into the targets (hard update), e.g. after loading merged weights."""
        with torch.no_grad():
            self._actor_target_flat.copy_(self._actor_flat)
            self._critic_target_flat.copy_(self._critic_flat)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically: a nested dict of tensors and plain values."""
        return {
            'architecture_id': self.architecture_id,
            'config': self.config.to_dict(),
            'obs_dim': self.obs_dim,
            'action_dim': self.action_dim,
            'actor': self.actor.state_dict(),
            'critic': self.critic.state_dict(),
            'actor_target': self.actor_target.state_dict(),
            'critic_target': self.critic_target.state_dict(),
            'actor_optim': self.actor_optim.state_dict(),
            'critic_optim': self.critic_optim.state_dict(),
            'counters': {'critic_updates': self.critic_updates, 'actor_updates': self.actor_updates},
            'generator': self._generator.get_state(),
            'noise': None if self.noise is None else {'shape': list(self.noise.shape), **self.noise.state_dict()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get('architecture_id') != self.architecture_id:
            raise ValueError(f"checkpoint architecture {state.get('architecture_id')!r} does not match "
                             f'this agent {self.architecture_id!r}')
        for name in ('actor', 'critic', 'actor_target', 'critic_target'):
            getattr(self, name).load_state_dict(state[name])
        self.actor_optim.load_state_dict(state['actor_optim'])
        self.critic_optim.load_state_dict(state['critic_optim'])
        if self._graphs is not None:   # the optimizers' state tensors are new ones now
            self._graphs.reset()
        self.critic_updates = int(state['counters']['critic_updates'])
        self.actor_updates = int(state['counters']['actor_updates'])
        generator_state = state['generator']
        # A CPU and a CUDA generator have different state sizes: across devices the smoothing
        # noise stream restarts from the seed (the continuation is then not bit-identical anyway).
        if generator_state.numel() == self._generator.get_state().numel():
            self._generator.set_state(generator_state.cpu())
        noise_state = state.get('noise')
        if noise_state is not None and self.noise is not None:
            shape = tuple(noise_state['shape'])
            if shape != self.noise.shape:
                self.noise = self._make_noise(shape, None)
            self.noise.load_state_dict(noise_state)


def make_agent(config: AgentConfig | str | None, obs_dim: int, action_dim: int, **overrides: Any) -> Agent:
    """Convenience: an Agent from a config, a preset name or None (defaults), plus overrides."""
    if config is None:
        config = AgentConfig(**overrides)
    elif isinstance(config, str):
        config = AgentConfig.preset(config, **overrides)
    elif overrides:
        config = config.with_changes(**overrides)
    return Agent(config, obs_dim, action_dim)


__all__ = ['ALGORITHMS', 'AGENT_PRESETS', 'AgentConfig', 'Agent', 'Batch', 'flatten_parameters', 'make_agent',
           'resolve_device']
