"""Configurable MLP actor and critic networks in torch (config, presets and architecture id: network_spec.py).

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

import math

import torch
from torch import nn
from torch.nn import functional as F

# The config, presets and id live in network_spec (no torch: the edge uses them); re-exported here.
from .network_spec import (  # noqa: F401
    ACTIVATIONS,
    LAYER_NORM_EPS,
    NETWORK_FORMAT,
    PRESETS,
    NetworkConfig,
    architecture_id,
    check_dims,
    network_config,
)


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
        check_dims(obs_dim, action_dim)
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
        return torch.tanh(self.pre_tanh(self.features(obs)))

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's output (SAC's log-std head reads it too)."""
        params = self._parameters
        x = obs
        for i in range(self.n_layers - 1):
            x = self._linear(x, i)
            if self.config.actor_layer_norm:
                x = F.layer_norm(x, x.shape[-1:], params[f'norm_weight_{i}'], params[f'norm_bias_{i}'],
                                 eps=LAYER_NORM_EPS)
            x = self._act(x)
        return x

    def pre_tanh(self, features: torch.Tensor) -> torch.Tensor:
        """The output layer before the tanh (SAC: the Gaussian's mean)."""
        return self._linear(features, self.n_layers - 1)

    def _linear(self, x: torch.Tensor, i: int) -> torch.Tensor:
        params = self._parameters
        return torch.addmm(params[f'bias_{i}'], x, params[f'weight_{i}']) if x.dim() == 2 \
            else torch.matmul(x, params[f'weight_{i}']) + params[f'bias_{i}']


class CriticEnsemble(nn.Module):
    """n independent Q(obs, action) networks evaluated together with batched matmuls.

    forward(obs [B, O], action [B, A]) -> [n, B] Q-values. Each member is initialised like
    nn.Linear (uniform +-1/sqrt(fan_in)); the output layer like the actor's (final_init).
    """

    def __init__(self, config: NetworkConfig, obs_dim: int, action_dim: int, n_critics: int = 1) -> None:
        super().__init__()
        check_dims(obs_dim, action_dim)
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
            weight: torch.Tensor = params[f'weight_{i}']
            bias: torch.Tensor = params[f'bias_{i}']
            if n != self.n_critics:
                weight, bias = weight[:n], bias[:n]
            x = torch.baddbmm(bias, x, weight)
            if i < self.n_layers - 1:
                if cfg.critic_layer_norm:
                    gain: torch.Tensor = params[f'norm_weight_{i}']
                    shift: torch.Tensor = params[f'norm_bias_{i}']
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
