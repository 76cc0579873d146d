"""Configurable MLP actor and critic networks, their presets and a stable architecture id.

The actor maps an observation to an action in [-1, 1] (tanh output). The critic is an
*ensemble* of Q-functions stored as stacked weight tensors, so TD3's twin critics run as one
batched matmul per layer instead of two separate networks (half the operator dispatches,
which dominate the cost of small networks on a CPU). DDPG uses an ensemble of one.

Layer layout (the codec and the numpy inference actor rely on these names); layer i computes
x @ weight_i + bias_i, the last layer (i = number of hidden layers) is the output:
    actor:  weight_{i} [in, out], bias_{i} [out],
            norm_weight_{i} [out], norm_bias_{i} [out]  (hidden layers, only with layer norm),
    critic: weight_{i} [n, in, out], bias_{i} [n, 1, out],
            norm_weight_{i} [n, 1, out], norm_bias_{i} [n, 1, out]  (only with layer norm),
            layer i == action_layer takes cat(h, action) as input; the last layer has out = 1.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping

import torch
from torch import nn
from torch.nn import functional as F

# Bumped whenever the meaning of a config field or the layer layout changes, so that an old
# architecture id can never match weights laid out differently.
NETWORK_FORMAT = 1
ACTIVATIONS = ('relu', 'tanh', 'elu')
LAYER_NORM_EPS = 1e-5


@dataclass(frozen=True)
class NetworkConfig:
    """Shapes and options of the actor and critic MLPs.

    actor_hidden / critic_hidden: hidden layer widths, input side first.
    actor_layer_norm / critic_layer_norm: LayerNorm after every hidden linear layer (before the activation).
    critic_action_layer: index of the critic layer whose input is cat(h, action); 0 feeds
        cat(obs, action) to the first layer, 1 concatenates after the first hidden layer (DDPG paper).
    activation: hidden activation, one of relu, tanh, elu. The actor output is always tanh.
    final_init: output layers are initialised uniform in [-final_init, final_init] (DDPG paper: 3e-3),
        so the initial policy is near 0 and the initial Q near 0.
    """

    actor_hidden: tuple[int, ...] = (256, 128, 64)
    critic_hidden: tuple[int, ...] = (256, 128, 64)
    actor_layer_norm: bool = False
    critic_layer_norm: bool = False
    critic_action_layer: int = 0
    activation: str = 'relu'
    final_init: float = 3e-3

    def __post_init__(self) -> None:
        # Accept lists (from YAML/JSON) but store tuples so the config stays hashable and frozen.
        object.__setattr__(self, 'actor_hidden', tuple(self.actor_hidden))
        object.__setattr__(self, 'critic_hidden', tuple(self.critic_hidden))
        for name in ('actor_hidden', 'critic_hidden'):
            sizes = getattr(self, name)
            if len(sizes) == 0:
                raise ValueError(f'{name} must have at least one hidden layer, got {sizes!r}')
            for size in sizes:
                if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                    raise ValueError(f'{name} must hold positive ints, got {sizes!r}')
        if not isinstance(self.critic_action_layer, int) or not 0 <= self.critic_action_layer <= len(self.critic_hidden):
            raise ValueError(
                f'critic_action_layer must be an int in [0, {len(self.critic_hidden)}] '
                f'(number of critic hidden layers), got {self.critic_action_layer!r}')
        if self.activation not in ACTIVATIONS:
            raise ValueError(f'activation must be one of {ACTIVATIONS}, got {self.activation!r}')
        if not (isinstance(self.final_init, (int, float)) and math.isfinite(self.final_init) and self.final_init > 0):
            raise ValueError(f'final_init must be a positive finite number, got {self.final_init!r}')

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data['actor_hidden'] = list(self.actor_hidden)
        data['critic_hidden'] = list(self.critic_hidden)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> 'NetworkConfig':
        unknown = set(data) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ValueError(f'unknown NetworkConfig fields: {sorted(unknown)}')
        return cls(**dict(data))

    def with_changes(self, **changes: Any) -> 'NetworkConfig':
        return replace(self, **changes)


# The two seeds' networks. DC-DRL: obs -> 400 -> 300 with LayerNorm + ReLU, critic concatenates
# the action after the first layer (LayerNorm in the critic too, as in the PyTorch DDPG code the
# original follows). Cloud-edge: 256 -> 128 -> 64 ReLU, critic takes (obs, action) at the input.
PRESETS: dict[str, NetworkConfig] = {
    'dcdrl': NetworkConfig(actor_hidden=(400, 300), critic_hidden=(400, 300), actor_layer_norm=True,
                           critic_layer_norm=True, critic_action_layer=1),
    'cloud_edge': NetworkConfig(actor_hidden=(256, 128, 64), critic_hidden=(256, 128, 64)),
}


def network_config(preset_or_config: str | NetworkConfig | Mapping[str, Any]) -> NetworkConfig:
    """Resolve a preset name, a dict (from YAML) or a NetworkConfig into a NetworkConfig."""
    if isinstance(preset_or_config, NetworkConfig):
        return preset_or_config
    if isinstance(preset_or_config, str):
        if preset_or_config not in PRESETS:
            raise ValueError(f'unknown network preset {preset_or_config!r}; known: {sorted(PRESETS)}')
        return PRESETS[preset_or_config]
    if isinstance(preset_or_config, Mapping):
        return NetworkConfig.from_dict(preset_or_config)
    raise TypeError(f'expected a preset name, a mapping or a NetworkConfig, got {type(preset_or_config).__name__}')


def _check_dims(obs_dim: int, action_dim: int) -> None:
    for name, value in (('obs_dim', obs_dim), ('action_dim', action_dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f'{name} must be a positive int, got {value!r}')


def architecture_id(config: NetworkConfig, obs_dim: int, action_dim: int) -> str:
    """A short, stable id such as 'mlp-a400x300ln-tanh-o73-a20-1f2e3d4c'.

    The readable part names the actor (what the edge runs); the 8 hex digits are a SHA-256 of the
    canonical JSON of the whole config (critic included), the dimensions and NETWORK_FORMAT, so the
    id is identical across processes and machines (no Python hash()).
    """
    _check_dims(obs_dim, action_dim)
    canonical = json.dumps({'format': NETWORK_FORMAT, 'config': config.to_dict(), 'obs_dim': obs_dim,
                            'action_dim': action_dim}, sort_keys=True, separators=(',', ':'))
    digest = hashlib.sha256(canonical.encode('utf-8')).hexdigest()[:8]
    actor = 'x'.join(str(s) for s in config.actor_hidden) + ('ln' if config.actor_layer_norm else '')
    act = '' if config.activation == 'relu' else f'-{config.activation}'
    return f'mlp-a{actor}{act}-tanh-o{obs_dim}-a{action_dim}-{digest}'


def _activation(name: str):
    return {'relu': F.relu, 'tanh': torch.tanh, 'elu': F.elu}[name]


class Actor(nn.Module):
    """Deterministic policy: obs -> [x @ W + b (-> LayerNorm) -> act]* -> x @ W + b -> tanh.

    Weights are stored [in, out] (x @ W), not nn.Linear's [out, in] (x @ W.T): forward+backward of
    these small layers measured ~25 % faster on a CPU in that layout (docs/learning.md), and the
    numpy inference actor uses the arrays as they are.
    """

    def __init__(self, config: NetworkConfig, obs_dim: int, action_dim: int) -> None:
        super().__init__()
        _check_dims(obs_dim, action_dim)
        self.config, self.obs_dim, self.action_dim = config, obs_dim, action_dim
        sizes = (obs_dim,) + config.actor_hidden + (action_dim,)
        self.n_layers = len(sizes) - 1
        for i, (in_size, out_size) in enumerate(zip(sizes[:-1], sizes[1:])):
            # nn.Linear's default range for hidden layers; final_init for the output layer.
            bound = 1.0 / math.sqrt(in_size) if i < self.n_layers - 1 else config.final_init
            self.register_parameter(f'weight_{i}', nn.Parameter(torch.empty(in_size, out_size).uniform_(-bound, bound)))
            self.register_parameter(f'bias_{i}', nn.Parameter(torch.empty(out_size).uniform_(-bound, bound)))
            if config.actor_layer_norm and i < self.n_layers - 1:
                self.register_parameter(f'norm_weight_{i}', nn.Parameter(torch.ones(out_size)))
                self.register_parameter(f'norm_bias_{i}', nn.Parameter(torch.zeros(out_size)))
        self._act = _activation(config.activation)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        params = self._parameters
        x = obs
        for i in range(self.n_layers):
            x = torch.addmm(params[f'bias_{i}'], x, params[f'weight_{i}']) if x.dim() == 2 \
                else torch.matmul(x, params[f'weight_{i}']) + params[f'bias_{i}']
            if i < self.n_layers - 1:
                if self.config.actor_layer_norm:
                    x = F.layer_norm(x, x.shape[-1:], params[f'norm_weight_{i}'], params[f'norm_bias_{i}'],
                                     eps=LAYER_NORM_EPS)
                x = self._act(x)
        return torch.tanh(x)


class CriticEnsemble(nn.Module):
    """n independent Q(obs, action) networks evaluated together with batched matmuls.

    forward(obs [B, O], action [B, A]) -> [n, B] Q-values. Each member is initialised like
    nn.Linear (uniform +-1/sqrt(fan_in)); the output layer like the actor's (final_init).
    """

    def __init__(self, config: NetworkConfig, obs_dim: int, action_dim: int, n_critics: int = 1) -> None:
        super().__init__()
        _check_dims(obs_dim, action_dim)
        if isinstance(n_critics, bool) or not isinstance(n_critics, int) or n_critics < 1:
            raise ValueError(f'n_critics must be a positive int, got {n_critics!r}')
        self.config, self.obs_dim, self.action_dim, self.n_critics = config, obs_dim, action_dim, n_critics
        widths = config.critic_hidden + (1,)
        in_size = obs_dim
        self.in_sizes: list[int] = []
        for i, out_size in enumerate(widths):
            if i == config.critic_action_layer:
                in_size += action_dim
            self.in_sizes.append(in_size)
            bound = 1.0 / math.sqrt(in_size) if i < len(widths) - 1 else config.final_init
            w = torch.empty(n_critics, in_size, out_size).uniform_(-bound, bound)
            b = torch.empty(n_critics, 1, out_size).uniform_(-bound, bound)
            self.register_parameter(f'weight_{i}', nn.Parameter(w))
            self.register_parameter(f'bias_{i}', nn.Parameter(b))
            if config.critic_layer_norm and i < len(widths) - 1:
                self.register_parameter(f'norm_weight_{i}', nn.Parameter(torch.ones(n_critics, 1, out_size)))
                self.register_parameter(f'norm_bias_{i}', nn.Parameter(torch.zeros(n_critics, 1, out_size)))
            in_size = out_size
        self.n_layers = len(widths)
        self._act = _activation(config.activation)

    def forward(self, obs: torch.Tensor, action: torch.Tensor, members: int | None = None) -> torch.Tensor:
        """Q-values [n, B]; members=k evaluates only the first k critics (TD3's actor loss uses Q1)."""
        n, cfg = self.n_critics, self.config
        if members is not None and members != n:
            if not 1 <= members <= n:
                raise ValueError(f'members must be in [1, {n}], got {members}')
            n = members
        params = self._parameters
        x = obs
        for i in range(self.n_layers):
            if i == cfg.critic_action_layer:
                a = action if i == 0 else action.unsqueeze(0).expand(n, -1, -1)
                x = torch.cat((x, a), dim=-1)
            if x.dim() == 2:  # shared input of the first layer: broadcast over the ensemble
                x = x.unsqueeze(0).expand(n, -1, -1)
            weight, bias = params[f'weight_{i}'], params[f'bias_{i}']
            if n != self.n_critics:
                weight, bias = weight[:n], bias[:n]
            x = torch.baddbmm(bias, x, weight)
            if i < self.n_layers - 1:
                if cfg.critic_layer_norm:
                    gain, shift = params[f'norm_weight_{i}'], params[f'norm_bias_{i}']
                    if n != self.n_critics:
                        gain, shift = gain[:n], shift[:n]
                    x = torch.addcmul(shift, F.layer_norm(x, x.shape[-1:], eps=LAYER_NORM_EPS), gain)
                x = self._act(x)
        return x.squeeze(-1)


def build_actor(config: NetworkConfig, obs_dim: int, action_dim: int, seed: int | None = None) -> Actor:
    """An Actor; with a seed, its initial weights are reproducible and the global RNG is untouched."""
    if seed is None:
        return Actor(config, obs_dim, action_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Actor(config, obs_dim, action_dim)


def build_critic(config: NetworkConfig, obs_dim: int, action_dim: int, n_critics: int = 1,
                 seed: int | None = None) -> CriticEnsemble:
    if seed is None:
        return CriticEnsemble(config, obs_dim, action_dim, n_critics)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CriticEnsemble(config, obs_dim, action_dim, n_critics)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ['NETWORK_FORMAT', 'NetworkConfig', 'PRESETS', 'network_config', 'architecture_id', 'Actor',
           'CriticEnsemble', 'build_actor', 'build_critic', 'count_parameters']
