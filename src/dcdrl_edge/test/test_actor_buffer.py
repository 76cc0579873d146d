"""DoubleBufferedActor: swaps only in swap_if_ready, refuses bad payloads and keeps the old actor,
newest offer wins; load_weights_file."""
import numpy as np
import pytest
import torch

from dcdrl_edge.actor_buffer import DoubleBufferedActor, load_weights_file
from dcdrl_learning.codec import WeightsRejected, encode_weights, make_payload, payload_to_bytes
from dcdrl_learning.networks import PRESETS, NetworkConfig, architecture_id, build_actor

CONFIG = PRESETS['cloud_edge']
OBS_DIM, ACTION_DIM = 10, 1
ARCH = architecture_id(CONFIG, OBS_DIM, ACTION_DIM)
OBS = np.random.default_rng(0).standard_normal((8, OBS_DIM)).astype(np.float32)


def payload(version, seed=None, config=CONFIG, obs_dim=OBS_DIM, arch=None):
    """Weights that give clearly different outputs per seed (perturbed away from the init scale)."""
    actor = build_actor(config, obs_dim, ACTION_DIM, seed=version if seed is None else seed)
    gen = torch.Generator().manual_seed(1000 + (version if seed is None else seed))
    with torch.no_grad():
        for p in actor.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.2)
    return encode_weights(actor, arch or architecture_id(config, obs_dim, ACTION_DIM), version)


def outputs(actor):
    return np.array([actor(o).copy() for o in OBS])


@pytest.fixture
def buffer():
    buf = DoubleBufferedActor(network_config=CONFIG, obs_dim=OBS_DIM, action_dim=ACTION_DIM)
    yield buf
    assert buf.stop(timeout=5.0)


def stage(buf, p):
    buf.offer(p)
    assert buf.wait_idle(timeout=5.0)


def test_no_actor_before_weights(buffer):
    assert buffer.active is None and buffer.version == -1 and buffer.pending_version == -1
    assert buffer.swap_if_ready() is False
    assert buffer.architecture_id == ARCH


def test_swap_happens_only_in_swap_if_ready(buffer):
    buffer.start()
    stage(buffer, payload(1))
    assert buffer.active is None and buffer.version == -1 and buffer.pending_version == 1
    assert buffer.swap_if_ready() is True
    assert buffer.version == 1 and buffer.swapped == 1 and buffer.pending_version == -1
    first = buffer.active
    before = outputs(first)
    stage(buffer, payload(2))
    assert buffer.active is first and buffer.version == 1          # still the old one ...
    np.testing.assert_array_equal(outputs(first), before)          # ... and untouched by the load
    assert buffer.swap_if_ready() and buffer.version == 2 and buffer.active is not first
    assert not np.allclose(outputs(buffer.active), before)
    assert buffer.swap_if_ready() is False


def test_outputs_equal_the_published_weights(buffer):
    from dcdrl_learning.inference import NumpyActor
    p = payload(3)
    buffer.load_payload_now(p)
    reference = NumpyActor.from_payload(p, CONFIG, OBS_DIM, ACTION_DIM)
    np.testing.assert_array_equal(outputs(buffer.active), outputs(reference))


def bad_payloads():
    good = payload(5)
    other_cfg = NetworkConfig(actor_hidden=(32, 16), critic_hidden=(32, 16))
    nan_arrays = [a.copy() for a in good.arrays]
    nan_arrays[2][0] = np.nan
    wrong_shape = make_payload(ARCH, 6, ['weight_0'] + list(good.names[1:]),
                               [(OBS_DIM + 1, 256)] + list(good.shapes[1:]),
                               [np.zeros((OBS_DIM + 1) * 256, np.float32)] + list(good.arrays[1:]))
    return {
        'wrong_architecture': payload(6, config=other_cfg),
        'wrong_architecture_obs': payload(6, obs_dim=OBS_DIM + 2),
        'wrong_shape': wrong_shape,
        'non_finite': make_payload(ARCH, 6, good.names, good.shapes, nan_arrays),
        'stale_version': payload(1, seed=77),
        'bad_version': payload(0, seed=78),
        'missing_names': make_payload(ARCH, 6, good.names[:-1], good.shapes[:-1], good.arrays[:-1]),
    }


@pytest.mark.parametrize('case', sorted(bad_payloads()))
def test_bad_payload_is_refused_and_the_old_actor_kept(buffer, case):
    reasons = []
    buffer.on_rejected = lambda reason, message: reasons.append(reason)
    buffer.load_payload_now(payload(4))
    first = buffer.active
    before = outputs(first)
    buffer.start()
    stage(buffer, bad_payloads()[case])
    expected = case.replace('_obs', '')
    assert reasons == [expected] and buffer.rejected == {expected: 1} and buffer.rejected_total == 1
    assert expected in buffer.last_rejection
    assert buffer.swap_if_ready() is False
    assert buffer.active is first and buffer.version == 4
    np.testing.assert_array_equal(outputs(buffer.active), before)
    stage(buffer, payload(9))                     # a good one still goes through afterwards
    assert buffer.swap_if_ready() and buffer.version == 9


def test_newest_offer_wins(buffer):
    for version in (1, 2, 3):
        buffer.offer(payload(version))             # loader not running yet: 1 and 2 are superseded
    buffer.start()
    assert buffer.wait_idle(timeout=5.0)
    assert buffer.superseded == 2 and buffer.offered == 3 and buffer.staged == 1
    assert buffer.swap_if_ready() and buffer.version == 3


def test_newer_offer_waits_for_the_pending_copy_then_loads(buffer):
    buffer.start()
    stage(buffer, payload(1))
    assert buffer.pending_version == 1
    buffer.offer(payload(2))                       # the only free copy is pending: 2 must wait
    buffer.offer(payload(3))                       # ... and 3 supersedes it
    assert not buffer.wait_idle(timeout=0.05)      # nothing can be staged until the loop swaps
    assert buffer.pending_version == 1
    assert buffer.swap_if_ready() and buffer.version == 1
    assert buffer.wait_idle(timeout=5.0)
    assert buffer.pending_version == 3 and buffer.superseded == 1
    assert buffer.swap_if_ready() and buffer.version == 3
    assert buffer.staged == 2 and buffer.swapped == 2


def test_load_payload_now_rejects_and_raises(buffer):
    with pytest.raises(WeightsRejected) as info:
        buffer.load_payload_now(bad_payloads()['non_finite'])
    assert info.value.reason == 'non_finite' and buffer.active is None and buffer.rejected == {'non_finite': 1}
    with pytest.raises(TypeError, match='WeightsPayload'):
        buffer.load_payload_now({'weight_0': 1})
    with pytest.raises(TypeError, match='WeightsPayload'):
        buffer.offer(b'bytes')
    buffer.start()
    with pytest.raises(RuntimeError, match='loader thread is running'):
        buffer.load_payload_now(payload(1))


def test_load_weights_file(tmp_path, buffer):
    path = tmp_path / 'best_actor.safetensors'
    path.write_bytes(payload_to_bytes(payload(7)))
    loaded = load_weights_file(path)
    assert loaded.version == 7 and loaded.architecture_id == ARCH
    assert buffer.load_payload_now(loaded) == 7
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_weights_file(tmp_path / 'missing.safetensors')
    corrupt = tmp_path / 'corrupt.safetensors'
    corrupt.write_bytes(b'\x10\x00\x00\x00\x00\x00\x00\x00not json at all!')
    with pytest.raises(WeightsRejected, match='corrupt.safetensors') as info:
        load_weights_file(corrupt)
    assert info.value.reason == 'malformed'


def test_constructor_validation():
    with pytest.raises(ValueError, match='unknown network preset'):
        DoubleBufferedActor('nope', OBS_DIM, ACTION_DIM)
    with pytest.raises(ValueError, match='obs_dim'):
        DoubleBufferedActor(CONFIG, 0, ACTION_DIM)
    with pytest.raises(ValueError, match='poll_s'):
        DoubleBufferedActor(CONFIG, OBS_DIM, ACTION_DIM, poll_s=0)


def test_record_rejection_counts_refusals_made_outside_the_buffer(buffer):
    seen = []
    buffer.on_rejected = lambda reason, message: seen.append((reason, message))
    buffer.record_rejection('malformed', 'PolicyWeights message: 3 names, 2 shapes')
    assert buffer.rejected == {'malformed': 1} and buffer.rejected_total == 1
    assert seen == [('malformed', 'PolicyWeights message: 3 names, 2 shapes')]
    assert 'names' in buffer.last_rejection
