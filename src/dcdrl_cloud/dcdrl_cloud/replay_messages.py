"""The replay node's messages from and to arrays (either backend, no ROS): SampledBatch, PriorityUpdate."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dcdrl_ros.msg_arrays import get_array, set_array

if TYPE_CHECKING:   # the service imports nothing from here; only the annotation needs it
    from dcdrl_cloud.replay_service import ServedBatch


def fill_sampled_batch(message: Any, served: ServedBatch) -> Any:
    """Fills a SampledBatch message (either backend) from a ServedBatch."""
    batch = served.batch
    message.requester = served.requester
    message.sequence = int(served.sequence)
    message.batch_size = len(batch)
    message.obs_dim = int(batch.obs.shape[1])
    message.action_dim = int(batch.actions.shape[1])
    set_array(message, 'obs', batch.obs, np.float32)
    set_array(message, 'actions', batch.actions, np.float32)
    set_array(message, 'rewards', batch.rewards, np.float32)
    set_array(message, 'next_obs', batch.next_obs, np.float32)
    set_array(message, 'discounts', batch.discounts, np.float32)
    set_array(message, 'weights', batch.weights, np.float32)
    set_array(message, 'indices', batch.indices, np.uint64)
    set_array(message, 'policy_versions', served.policy_versions, np.uint64)
    message.replay_size = int(served.replay_size)
    return message


def fill_priority_update(message: Any, indices: Any, priorities: Any) -> Any:
    """Fills a PriorityUpdate message (either backend): slots and their |TD errors|."""
    set_array(message, 'indices', indices, np.uint64)
    set_array(message, 'priorities', priorities, np.float32)
    return message


def read_priority_update(message: Any) -> tuple[np.ndarray, np.ndarray]:
    """(indices uint64 [N], priorities float32 [N]) of a PriorityUpdate (checked by update_priorities)."""
    return get_array(message, 'indices', np.uint64), get_array(message, 'priorities', np.float32)


__all__ = ['fill_priority_update', 'fill_sampled_batch', 'read_priority_update']
