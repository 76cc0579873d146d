"""PolicyWeights <-> WeightsPayload through the wire format, and refusals after transport."""
import numpy as np
import pytest

from dcdrl_learning.agents import Agent, AgentConfig
from dcdrl_learning.codec import WeightsRejected, decode_weights, encode_weights
from dcdrl_learning.networks import architecture_id
from dcdrl_learning.weights_msg import MAX_TENSORS, fill_weights, fitness_of, read_weights
from dcdrl_ros import runtime  # noqa: F401  (interface import hook)

from dcdrl_msgs.msg import PolicyWeights, Tensor


def _agent():
    config = AgentConfig.preset('cloud_edge', seed=0)
    return config, Agent(config, obs_dim=12, action_dim=1)


def test_actor_weights_survive_the_message_round_trip():
    config, agent = _agent()
    arch = architecture_id(config.network, 12, 1)
    payload = encode_weights(agent.actor_state(), arch, version=7)
    message = fill_weights(PolicyWeights(), payload, Tensor, producer='learner', generation=3, fitness=-12.5)
    received = PolicyWeights.deserialize(message.serialize())
    assert (received.producer, received.generation, fitness_of(received)) == ('learner', 3, -12.5)
    back = read_weights(received)
    state = decode_weights(back, arch, agent.actor_state(), active_version=6)
    for name, value in agent.actor_state().items():
        np.testing.assert_array_equal(np.asarray(state[name]), value.detach().numpy())
    assert sum(a.size for a in back.arrays) == 44545


def test_tampered_weights_are_refused_after_transport():
    config, agent = _agent()
    arch = architecture_id(config.network, 12, 1)
    message = fill_weights(PolicyWeights(), encode_weights(agent.actor_state(), arch, 5), Tensor)
    message.tensors[0].data[3] = np.nan
    with pytest.raises(WeightsRejected, match='nan|NaN|finite'):
        decode_weights(read_weights(message), arch, agent.actor_state())
    message = fill_weights(PolicyWeights(), encode_weights(agent.actor_state(), arch, 5), Tensor)
    with pytest.raises(WeightsRejected, match='stale_version'):
        decode_weights(read_weights(message), arch, agent.actor_state(), active_version=5)
    assert fitness_of(message) is None


@pytest.mark.parametrize('field, value, count', [
    ('producer', 'p' * 65, '65, 36 and 8'),
    ('architecture_id', 'a' * 129, '1, 129 and 8'),
    ('tensors', [Tensor() for _ in range(MAX_TENSORS + 1)], f'1, 36 and {MAX_TENSORS + 1}'),
])
def test_overlong_strings_and_too_many_tensors_are_malformed(field, value, count):
    """Refused before any tensor is read (docs/robustness.md, G8)."""
    config, agent = _agent()
    arch = architecture_id(config.network, 12, 1)
    message = fill_weights(PolicyWeights(), encode_weights(agent.actor_state(), arch, 5), Tensor, producer='l')
    setattr(message, field, value)
    with pytest.raises(WeightsRejected, match=f'got {count}') as refused:
        read_weights(message)
    assert refused.value.reason == 'malformed'
