"""The networks' description without torch: NetworkConfig, the presets and the stable architecture id.

The edge (numpy inference, weight checks) needs only this module; networks.py builds the torch
modules from the same config. Layer layout: see networks.py.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

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
        if (not isinstance(self.critic_action_layer, int)
                or not 0 <= self.critic_action_layer <= len(self.critic_hidden)):
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
    def from_dict(cls, data: Mapping[str, Any]) -> NetworkConfig:
        unknown = set(data) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ValueError(f'unknown NetworkConfig fields: {sorted(unknown)}')
        return cls(**dict(data))

    def with_changes(self, **changes: Any) -> NetworkConfig:
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


def check_dims(obs_dim: int, action_dim: int) -> None:
    for name, value in (('obs_dim', obs_dim), ('action_dim', action_dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f'{name} must be a positive int, got {value!r}')


def architecture_id(config: NetworkConfig, obs_dim: int, action_dim: int) -> str:
    """A short, stable id such as 'mlp-a400x300ln-tanh-o73-a20-1f2e3d4c'.

    The readable part names the actor (what the edge runs); the 8 hex digits are a SHA-256 of the
    canonical JSON of the whole config (critic included), the dimensions and NETWORK_FORMAT, so the
    id is identical across processes and machines (no Python hash()).
    """
    check_dims(obs_dim, action_dim)
    canonical = json.dumps({'format': NETWORK_FORMAT, 'config': config.to_dict(), 'obs_dim': obs_dim,
                            'action_dim': action_dim}, sort_keys=True, separators=(',', ':'))
    digest = hashlib.sha256(canonical.encode('utf-8')).hexdigest()[:8]
    actor = 'x'.join(str(s) for s in config.actor_hidden) + ('ln' if config.actor_layer_norm else '')
    act = '' if config.activation == 'relu' else f'-{config.activation}'
    return f'mlp-a{actor}{act}-tanh-o{obs_dim}-a{action_dim}-{digest}'


__all__ = ['ACTIVATIONS', 'LAYER_NORM_EPS', 'NETWORK_FORMAT', 'NetworkConfig', 'PRESETS', 'architecture_id',
           'check_dims', 'network_config']
