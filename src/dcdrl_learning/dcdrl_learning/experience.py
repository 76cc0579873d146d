"""ExperienceBatch messages to and from validated numpy arrays (no ROS import).

Receivers call ``read_experience``: a batch with inconsistent sizes, non-finite values
or unexpected dimensions raises ExperienceRejected with the reason, so the node can
count it, log it and keep running with nothing already stored lost.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dcdrl_ros.msg_arrays import get_array, set_array

# Size limits of the variable-length strings (the arrays are fixed by batch_size x dims): the
# client_id becomes a key of the replay's per-client records and appears in log lines.
MAX_ID_LENGTH = 64   # characters of client_id and of each extra name
MAX_EXTRAS = 32      # extra columns per batch (the face offload controller sends 6)


class ExperienceRejected(ValueError):
    """An experience batch that must not be stored; the message says why."""


@dataclass
class Experience:
    client_id: str
    sequence: int
    policy_version: int
    obs: np.ndarray          # [B, obs_dim] float32
    actions: np.ndarray      # [B, action_dim] float32
    rewards: np.ndarray      # [B] float32
    next_obs: np.ndarray     # [B, obs_dim] float32
    terminated: np.ndarray   # [B] bool
    truncated: np.ndarray    # [B] bool
    extra_names: tuple[str, ...]
    extras: np.ndarray       # [B, len(extra_names)] float32

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    def extra(self, name: str) -> np.ndarray | None:
        return self.extras[:, self.extra_names.index(name)] if name in self.extra_names else None


def fill_experience(message: Any, *, client_id: str, sequence: int, policy_version: int,
                    obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
                    terminated: np.ndarray, truncated: np.ndarray, extra_names: Sequence[str] = (),
                    extras: np.ndarray | None = None) -> Any:
    """Fills an ExperienceBatch message (either backend) from arrays shaped [B, ...]."""
    obs = np.asarray(obs, np.float32)
    batch = obs.shape[0]
    actions = np.asarray(actions, np.float32).reshape(batch, -1)
    message.client_id = client_id
    message.sequence = int(sequence)
    message.policy_version = int(policy_version)
    message.batch_size = batch
    message.obs_dim = obs.reshape(batch, -1).shape[1]
    message.action_dim = actions.shape[1]
    set_array(message, 'obs', obs, np.float32)
    set_array(message, 'actions', actions, np.float32)
    set_array(message, 'rewards', rewards, np.float32)
    set_array(message, 'next_obs', next_obs, np.float32)
    set_array(message, 'terminated', terminated, np.bool_)
    set_array(message, 'truncated', truncated, np.bool_)
    message.extra_names = list(extra_names)
    set_array(message, 'extras', np.zeros((batch, 0)) if extras is None else extras, np.float32)
    return message


def read_experience(message: Any, obs_dim: int | None = None,
                    action_dim: int | None = None) -> Experience:
    """Validates an ExperienceBatch and returns its arrays; raises ExperienceRejected."""
    batch, o_dim, a_dim = int(message.batch_size), int(message.obs_dim), int(message.action_dim)
    client_id = message.client_id
    if not isinstance(client_id, str) or not 1 <= len(client_id) <= MAX_ID_LENGTH:
        got = f'{len(client_id)} characters' if isinstance(client_id, str) else type(client_id).__name__
        raise ExperienceRejected(f'batch {message.sequence}: client_id must have 1 to {MAX_ID_LENGTH} characters, '
                                 f'got {got}')
    source = f'batch {message.sequence} from {client_id}'
    if batch <= 0 or o_dim <= 0 or a_dim <= 0:
        raise ExperienceRejected(f'{source}: batch_size, obs_dim and action_dim must be > 0, '
                                 f'got {batch}, {o_dim}, {a_dim}')
    if obs_dim is not None and o_dim != obs_dim:
        raise ExperienceRejected(f'{source}: obs_dim {o_dim}, expected {obs_dim}')
    if action_dim is not None and a_dim != action_dim:
        raise ExperienceRejected(f'{source}: action_dim {a_dim}, expected {action_dim}')
    if len(message.extra_names) > MAX_EXTRAS:
        raise ExperienceRejected(f'{source}: {len(message.extra_names)} extra_names, at most {MAX_EXTRAS}')
    names = tuple(message.extra_names)
    if any(not isinstance(name, str) or not 1 <= len(name) <= MAX_ID_LENGTH for name in names):
        raise ExperienceRejected(f'{source}: each extra name must have 1 to {MAX_ID_LENGTH} characters')
    arrays = {
        'obs': (get_array(message, 'obs', np.float32), batch * o_dim),
        'actions': (get_array(message, 'actions', np.float32), batch * a_dim),
        'rewards': (get_array(message, 'rewards', np.float32), batch),
        'next_obs': (get_array(message, 'next_obs', np.float32), batch * o_dim),
        'terminated': (get_array(message, 'terminated', np.bool_), batch),
        'truncated': (get_array(message, 'truncated', np.bool_), batch),
        'extras': (get_array(message, 'extras', np.float32), batch * len(names)),
    }
    for name, (values, expected) in arrays.items():
        if values.size != expected:
            raise ExperienceRejected(f'{source}: {name} has {values.size} values, expected {expected}')
        if values.dtype.kind == 'f' and not np.isfinite(values).all():
            raise ExperienceRejected(f'{source}: {name} contains NaN or Inf')
    return Experience(
        client_id=client_id, sequence=int(message.sequence), policy_version=int(message.policy_version),
        obs=arrays['obs'][0].reshape(batch, o_dim), actions=arrays['actions'][0].reshape(batch, a_dim),
        rewards=arrays['rewards'][0], next_obs=arrays['next_obs'][0].reshape(batch, o_dim),
        terminated=arrays['terminated'][0], truncated=arrays['truncated'][0], extra_names=names,
        extras=arrays['extras'][0].reshape(batch, len(names)))
