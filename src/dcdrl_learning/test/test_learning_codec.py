"""Weight codec: round trips (module, state_dict, bytes) and every refusal, each with its reason code."""
import dataclasses

import numpy as np
import pytest
import torch

from dcdrl_learning.codec import (
    WeightsPayload,
    WeightsRejected,
    decode_weights,
    encode_weights,
    make_payload,
    payload_from_bytes,
    payload_to_bytes,
)
from dcdrl_learning.networks import PRESETS, architecture_id, build_actor, build_critic
from dcdrl_learning.torch_codec import load_payload, payload_to_state_dict

CFG = PRESETS['dcdrl']
OBS, ACT = 9, 3
ARCH = architecture_id(CFG, OBS, ACT)


@pytest.fixture
def actor():
    return build_actor(CFG, OBS, ACT, seed=0)


@pytest.fixture
def payload(actor):
    return encode_weights(actor, ARCH, version=5)


def rejected(reason: str):
    return pytest.raises(WeightsRejected, match=rf'\({reason}\)')


def replace_array(payload: WeightsPayload, name: str, array: np.ndarray, shape=None) -> WeightsPayload:
    i = payload.names.index(name)
    arrays = list(payload.arrays)
    arrays[i] = array
    shapes = list(payload.shapes)
    if shape is not None:
        shapes[i] = shape
    return dataclasses.replace(payload, arrays=tuple(arrays), shapes=tuple(shapes))


def test_round_trip_into_a_fresh_module(actor, payload):
    assert payload.architecture_id == ARCH and payload.version == 5
    assert all(a.dtype == np.float32 and a.ndim == 1 for a in payload.arrays)
    assert payload.nbytes == 4 * sum(p.numel() for p in actor.parameters())
    assert dict(zip(payload.names, payload.shapes))['weight_1'] == (400, 300)
    fresh = build_actor(CFG, OBS, ACT, seed=1)
    assert load_payload(fresh, payload, ARCH, active_version=4) == 5
    for (k, v), (k2, v2) in zip(actor.state_dict().items(), fresh.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)


def test_numpy_half_decodes_exactly_what_the_torch_half_loads(actor, payload):
    """The edge decodes with codec.py alone (numpy); the cloud loads with torch_codec: the same numbers, bit for bit,
    from the payload and from its bytes form, and the numpy actor acts as the torch actor."""
    from dcdrl_learning.inference import NumpyActor, actor_shapes
    for received in (payload, payload_from_bytes(payload_to_bytes(payload))):
        arrays = decode_weights(received, ARCH, actor_shapes(CFG, OBS, ACT), active_version=4)
        tensors = payload_to_state_dict(received, ARCH, actor, active_version=4)
        assert list(arrays) == list(tensors) == list(actor.state_dict())
        for name, tensor in tensors.items():
            assert arrays[name].dtype == np.float32 and np.array_equal(arrays[name], tensor.numpy())
            assert np.array_equal(arrays[name], actor.state_dict()[name].numpy())
    obs = np.random.default_rng(0).standard_normal((5, OBS)).astype(np.float32)
    edge = NumpyActor.from_payload(payload, CFG, OBS, ACT)
    with torch.no_grad():
        np.testing.assert_allclose(edge(obs), actor(torch.from_numpy(obs)).numpy(), atol=1e-5)


def test_payload_arrays_are_copies(actor, payload):
    with torch.no_grad():
        actor.weight_0.add_(1.0)
    assert not np.array_equal(payload.named_arrays()['weight_0'], actor.weight_0.detach().numpy())


def test_state_dict_and_numpy_sources_and_critic(actor):
    from_sd = encode_weights(actor.state_dict(), ARCH, 1)
    from_np = encode_weights({k: v.numpy().astype(np.float64) for k, v in actor.state_dict().items()}, ARCH, 1)
    for a, b in zip(from_sd.arrays, from_np.arrays):
        assert np.array_equal(a, b)
    critic = build_critic(CFG, OBS, ACT, n_critics=2, seed=0)
    state = payload_to_state_dict(encode_weights(critic, ARCH, 0), ARCH, critic)
    critic.load_state_dict(state)


def test_bytes_round_trip_is_safetensors_not_pickle(payload):
    blob = payload_to_bytes(payload)
    header_len = int.from_bytes(blob[:8], 'little')
    assert blob[8:9] == b'{' and b'dcdrl-weights' in blob[8:8 + header_len]
    assert b'\x80\x04' not in blob[:2]  # no pickle protocol header
    back = payload_from_bytes(blob)
    assert (back.architecture_id, back.version, back.names, back.shapes) == \
        (payload.architecture_id, payload.version, payload.names, payload.shapes)
    for a, b in zip(back.arrays, payload.arrays):
        assert np.array_equal(a, b)
    decode_weights(back, ARCH, dict(zip(payload.names, payload.shapes)))


@pytest.mark.parametrize('blob', [b'', b'\x05\x00\x00\x00\x00\x00\x00\x00{', b'not safetensors at all'])
def test_corrupt_bytes_are_malformed(blob):
    with rejected('malformed'):
        payload_from_bytes(blob)


def test_foreign_safetensors_blob_is_malformed():
    from safetensors.numpy import save
    with rejected('malformed'):
        payload_from_bytes(save({'x': np.zeros(3, np.float32)}))


def test_make_payload_from_message_parts(payload, actor):
    # As a PolicyWeights message carries them: name, uint32 shape list, float32 data list.
    parts = make_payload(ARCH, 6, list(payload.names), [list(s) for s in payload.shapes],
                         [a.tolist() for a in payload.arrays])
    with rejected('bad_dtype'):  # python lists become float64: refused, the sender must send float32
        decode_weights(parts, ARCH, actor)
    parts = make_payload(ARCH, 6, payload.names, payload.shapes, [np.asarray(a, np.float32) for a in payload.arrays])
    decode_weights(parts, ARCH, actor, active_version=5)


# ---------------------------------------------------------------- refusals
def test_wrong_architecture(payload, actor):
    other = architecture_id(PRESETS['cloud_edge'], OBS, ACT)
    with rejected('wrong_architecture'):
        decode_weights(payload, other, actor)


@pytest.mark.parametrize('arch', ['', 'pickle', 'mlp-a1-zzzzzzzz', None])
def test_unknown_architecture(payload, actor, arch):
    with rejected('unknown_architecture'):
        decode_weights(dataclasses.replace(payload, architecture_id=arch), None, actor)


def test_encode_refuses_unknown_architecture(actor):
    with rejected('unknown_architecture'):
        encode_weights(actor, 'anything', 0)


def test_missing_and_extra_names(payload, actor):
    keep = [i for i, n in enumerate(payload.names) if n != 'bias_2']
    missing = dataclasses.replace(payload, names=tuple(payload.names[i] for i in keep),
                                  shapes=tuple(payload.shapes[i] for i in keep),
                                  arrays=tuple(payload.arrays[i] for i in keep))
    with rejected('missing_names'):
        decode_weights(missing, ARCH, actor)
    extra = dataclasses.replace(payload, names=payload.names + ('bonus',), shapes=payload.shapes + ((1,),),
                                arrays=payload.arrays + (np.zeros(1, np.float32),))
    with rejected('extra_names'):
        decode_weights(extra, ARCH, actor)


def test_duplicate_names(payload, actor):
    names = list(payload.names)
    names[1] = names[0]
    with rejected('duplicate_names'):
        decode_weights(dataclasses.replace(payload, names=tuple(names)), ARCH, actor)


def test_wrong_shape_with_right_length(payload, actor):
    with rejected('wrong_shape'):
        decode_weights(replace_array(payload, 'weight_1', payload.named_arrays()['weight_1'].reshape(-1), (300, 400)),
                       ARCH, actor)


def test_wrong_length(payload, actor):
    with rejected('bad_length'):
        decode_weights(replace_array(payload, 'bias_0', np.zeros(399, np.float32)), ARCH, actor)


def test_count_mismatch(payload, actor):
    with rejected('malformed'):
        decode_weights(dataclasses.replace(payload, shapes=payload.shapes[:-1]), ARCH, actor)


@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
def test_non_finite_values(payload, actor, bad):
    array = payload.named_arrays()['weight_2'].reshape(-1).copy()
    array[17] = bad
    with rejected('non_finite'):
        decode_weights(replace_array(payload, 'weight_2', array), ARCH, actor)
    with torch.no_grad():
        actor.bias_1[0] = bad
    with rejected('non_finite'):
        encode_weights(actor, ARCH, 1)


def test_bad_dtype(payload, actor):
    with rejected('bad_dtype'):
        decode_weights(replace_array(payload, 'bias_0', np.zeros(400, np.float64)), ARCH, actor)
    with rejected('bad_dtype'):
        encode_weights({'x': torch.zeros(3, dtype=torch.int64)}, ARCH, 0)


@pytest.mark.parametrize('active', [5, 6, 100])
def test_stale_version(payload, actor, active):
    with rejected('stale_version'):
        decode_weights(payload, ARCH, actor, active_version=active)


@pytest.mark.parametrize('version', [-1, 2 ** 64, 1.5, True, '3'])
def test_bad_version(payload, actor, version):
    with rejected('bad_version'):
        decode_weights(dataclasses.replace(payload, version=version), ARCH, actor)


def test_rejection_leaves_module_untouched(actor, payload):
    target = build_actor(CFG, OBS, ACT, seed=3)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    array = payload.named_arrays()['bias_2'].reshape(-1).copy()
    array[0] = np.nan  # the last tensor is bad: nothing before it may be loaded either
    with rejected('non_finite'):
        load_payload(target, replace_array(payload, 'bias_2', array), ARCH)
    for k, v in target.state_dict().items():
        assert torch.equal(v, before[k])


def test_weights_rejected_is_a_value_error_with_reason(payload, actor):
    with pytest.raises(ValueError) as info:
        decode_weights(payload, ARCH, actor, active_version=9)
    assert isinstance(info.value, WeightsRejected) and info.value.reason == 'stale_version'
    assert 'not newer' in str(info.value)
    with pytest.raises(TypeError):
        decode_weights({'weight_0': np.zeros(1)}, ARCH, actor)
    with pytest.raises(TypeError):
        encode_weights([1, 2, 3], ARCH, 0)
