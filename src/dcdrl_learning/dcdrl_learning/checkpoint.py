"""Checkpoints: one safetensors file holding every tensor plus JSON metadata; no pickle.

A checkpoint stores an Agent's full state (online and target networks, both Adam states, the
smoothing-noise generator, the exploration-noise RNG and OU state, update counters), the weights
version and any extra JSON the caller adds (e.g. environment steps, best return). Loading it into an
agent built from the same config continues bit-identically on CPU: the next update equals the one the
original agent would have made.

File layout: safetensors (an 8-byte header length, a JSON header, raw little-endian tensor data;
nothing executable). Tensor keys are paths into the nested state ('actor/weight_0',
'critic_optim/state/3/exp_avg', 'generator'); the non-tensor rest of the state is the JSON string
in header metadata key 'dcdrl_checkpoint', where each tensor appears as {"__tensor__": key}.
Writes are atomic: a temporary file in the same directory, fsync, os.replace.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dcdrl_core.files import atomic_write_bytes

CHECKPOINT_FORMAT = 'dcdrl-checkpoint'
CHECKPOINT_FORMAT_VERSION = 1
_META_KEY = 'dcdrl_checkpoint'


@dataclass(frozen=True)
class CheckpointInfo:
    """What load_checkpoint returns besides the restored agent state."""

    version: int
    extra: dict[str, Any]
    architecture_id: str
    config: dict[str, Any]
    obs_dim: int
    action_dim: int


# ---------------------------------------------------------------- nested state <-> tensors + JSON
def flatten_state(state: Any, prefix: str = '') -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nested structure into (JSON-able skeleton, {path: tensor}).

    dicts with int keys (torch optimizer state) and tuples are tagged so that unflatten_state
    restores them exactly.
    """
    tensors: dict[str, torch.Tensor] = {}

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, torch.Tensor):
            # clone: safetensors refuses tensors that share storage (views of one buffer).
            tensors[path] = value.detach().to('cpu').contiguous().clone()
            return {'__tensor__': path}
        if isinstance(value, Mapping):
            if value and all(isinstance(k, int) and not isinstance(k, bool) for k in value):
                return {'__int_keys__': [[k, walk(v, f'{path}/{k}')] for k, v in value.items()]}
            for key in value:
                if not isinstance(key, str):
                    raise TypeError(f'checkpoint state keys must be str or int, got {key!r} at {path!r}')
                if key.startswith('__'):
                    raise ValueError(f'checkpoint state key {key!r} at {path!r} is reserved')
            return {k: walk(v, f'{path}/{k}' if path else k) for k, v in value.items()}
        if isinstance(value, tuple):
            return {'__tuple__': [walk(v, f'{path}/{i}') for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [walk(v, f'{path}/{i}') for i, v in enumerate(value)]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f'cannot store {type(value).__name__} at {path!r} in a checkpoint')

    return walk(state, prefix), tensors


def unflatten_state(skeleton: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(skeleton, dict):
        if set(skeleton) == {'__tensor__'}:
            key = skeleton['__tensor__']
            if key not in tensors:
                raise ValueError(f'checkpoint is missing tensor {key!r}')
            return tensors[key]
        if set(skeleton) == {'__int_keys__'}:
            return {int(k): unflatten_state(v, tensors) for k, v in skeleton['__int_keys__']}
        if set(skeleton) == {'__tuple__'}:
            return tuple(unflatten_state(v, tensors) for v in skeleton['__tuple__'])
        return {k: unflatten_state(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [unflatten_state(v, tensors) for v in skeleton]
    return skeleton


# ---------------------------------------------------------------- files
def save_state(path: str | Path, state: Mapping[str, Any]) -> None:
    """Atomically write any nested state of tensors and JSON values as one safetensors file."""
    from safetensors.torch import save
    skeleton, tensors = flatten_state(dict(state))
    meta = json.dumps({'format': CHECKPOINT_FORMAT, 'format_version': CHECKPOINT_FORMAT_VERSION,
                       'state': skeleton}, allow_nan=True)
    atomic_write_bytes(path, save(tensors, metadata={_META_KEY: meta}))


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a save_state file back into the nested state (CPU tensors). No code is executed."""
    from safetensors import safe_open
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'no checkpoint at {path}')
    try:
        with safe_open(str(path), framework='pt', device='cpu') as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as exc:  # safetensors' own error types for a corrupt header
        raise ValueError(f'{path} is not a readable safetensors checkpoint: {exc}') from exc
    if _META_KEY not in metadata:
        raise ValueError(f'{path} has no {_META_KEY!r} metadata: not a dcdrl checkpoint')
    meta = json.loads(metadata[_META_KEY])
    if meta.get('format') != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
    if meta.get('format_version') != CHECKPOINT_FORMAT_VERSION:
        raise ValueError(f"{path}: format version {meta.get('format_version')!r}, "
                         f'this code reads {CHECKPOINT_FORMAT_VERSION}')
    return unflatten_state(meta['state'], tensors)


def save_checkpoint(path: str | Path, agent: Any, version: int, extra: Mapping[str, Any] | None = None) -> None:
    """Save an Agent (anything with state_dict()) with the current weights version and extra JSON."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f'version must be an int >= 0, got {version!r}')
    extra = dict(extra or {})
    json.dumps(extra)  # fail here, with the caller's data in the message, not halfway through a write
    save_state(path, {'agent': agent.state_dict(), 'version': version, 'extra': extra})


def load_checkpoint(path: str | Path, agent: Any = None) -> tuple[Any, CheckpointInfo]:
    """Restore a checkpoint into `agent`, or into a new Agent built from the stored config.

    Returns (agent, info); resume publishing at info.version + 1. Raises ValueError when the
    stored architecture differs from the agent's.
    """
    state = load_state(path)
    agent_state = state['agent']
    if agent is None:
        from .agents import Agent, AgentConfig  # local import: checkpoint.py works for any state holder
        agent = Agent(AgentConfig.from_dict(agent_state['config']), int(agent_state['obs_dim']),
                      int(agent_state['action_dim']))
    agent.load_state_dict(agent_state)
    info = CheckpointInfo(version=int(state['version']), extra=dict(state['extra']),
                          architecture_id=str(agent_state['architecture_id']), config=dict(agent_state['config']),
                          obs_dim=int(agent_state['obs_dim']), action_dim=int(agent_state['action_dim']))
    return agent, info


class PublishedVersion:
    """The last weights version a learner published, kept in a small file next to its checkpoint.

    A learner killed between two checkpoints has published versions its checkpoint does not know;
    resuming from the checkpoint alone would publish those numbers again, and every consumer would
    refuse them as old. Recording each published version (a few bytes, written atomically) lets the
    restarted learner continue above it: versions stay strictly increasing across hard kills.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def last(self) -> int:
        """The recorded version, 0 when there is none (or the file is unreadable: it is only a hint)."""
        try:
            value = int(self.path.read_text().strip())
        except (OSError, ValueError):
            return 0
        return value if value >= 0 else 0

    def record(self, version: int) -> None:
        atomic_write_bytes(self.path, f'{int(version)}\n'.encode())


__all__ = ['CHECKPOINT_FORMAT', 'CheckpointInfo', 'PublishedVersion', 'flatten_state', 'load_checkpoint',
           'load_state', 'save_checkpoint', 'save_state', 'unflatten_state']
